//! Server faults (issue 10, part 5): the real courier against factory-sim injecting faults
//! into 25% of the requests (500s, connection resets before and after the commit, delays,
//! truncated bodies, an apply interrupted while publishing), one fixed RNG seed per case so
//! a failure reproduces.
//!
//! A root-signing transaction runs under faults: `updates init`, `show-root`, `updates
//! status`, `updates pull`, `updates push` (then pushed again), `updates apply`. Every
//! attempt either succeeds or fails with exactly one `error: ...` line and a documented exit
//! code; the command is then run again, like a user would. Checked after every attempt:
//!
//! * only idempotent requests are retried: within one command no non-GET request is sent
//!   twice (the simulator's request journal);
//! * read-only commands change nothing on the server;
//! * a push is never half-applied: the staged CI and production roots are either both as
//!   before or both exactly the uploaded ones;
//! * a repeated push (after a failure or after success) never uploads twice: it succeeds
//!   or says the response was already uploaded, and the staged roots stay the uploaded ones;
//! * apply publishes the new version exactly once (version 2 → 3, never 4).

use std::collections::BTreeMap;

use crate::courier_support::*;
use factory_sim::{FaultConfig, FaultKind, RequestRecord};
use shared::bundle::{Operation, TransferBundle};
use shared::metadata::SignedRoot;
use shared::test_support::cases::{run_cases, Case};

/// Fault kinds injected at random.
const KINDS: &str = "500|reset|reset-after|delay|truncate|apply-interrupt";
/// Share of requests that get a fault.
const RATE: f64 = 0.25;
/// Cases (one seed each).
const SEEDS: std::ops::Range<u64> = 1..21;
/// Attempts of one command before the test gives up.
const MAX_ATTEMPTS: usize = 15;

/// Exit codes a command may end with under server faults (see `courier --help`): 3 the
/// server refused (e.g. a second `updates init` whose first answer was lost), 4 network or
/// server failure.
const FAULT_EXIT_CODES: &[i32] = &[3, 4];

/// Counters printed at the end.
#[derive(Default)]
struct Tally {
    commands: usize,
    attempts: usize,
    failed_attempts: usize,
    faults: BTreeMap<String, usize>,
    get_retries: usize,
}

/// The staged roots of the open transaction, as the server committed them
/// (`factory.json`): `(ci, prod)`, or `None` without a transaction.
fn staged(env: &Env) -> Option<(SignedRoot, SignedRoot)> {
    let path = env
        .server
        .state_dir()
        .join("factories")
        .join(&env.factory)
        .join("factory.json");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("factory.json")).expect("json");
    let tx = state.get("tx").filter(|t| !t.is_null())?;
    let parse = |v: &serde_json::Value| {
        SignedRoot::from_json(v.as_str().expect("staged root text").as_bytes()).expect("root")
    };
    Some((parse(&tx["ci"]), parse(&tx["prod"])))
}

fn factory_json(env: &Env) -> Vec<u8> {
    std::fs::read(
        env.server
            .state_dir()
            .join("factories")
            .join(&env.factory)
            .join("factory.json"),
    )
    .expect("factory.json")
}

/// Checks the requests one attempt sent: no non-GET request twice; counts faults and the
/// GETs retried after one.
fn check_requests(requests: &[RequestRecord], label: &str, tally: &mut Tally) {
    let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (i, r) in requests.iter().enumerate() {
        if let Some(kind) = r.fault {
            *tally.faults.entry(kind.to_string()).or_default() += 1;
            let retried = requests[i + 1..]
                .iter()
                .any(|l| l.method == r.method && l.path == r.path);
            if retried && r.method == "GET" {
                tally.get_retries += 1;
            }
        }
        if r.method != "GET" && r.method != "HEAD" {
            let n = seen.entry((&r.method, &r.path)).or_default();
            *n += 1;
            assert!(
                *n == 1,
                "{label}: non-idempotent {} {} sent more than once in one command: {requests:#?}",
                r.method,
                r.path
            );
        }
    }
}

/// Runs `args` until `done` holds after a successful attempt (or after a failed one whose
/// effect is already there); `invariant` is checked after every attempt.
fn until_done(
    env: &Env,
    seed: u64,
    args: &[&str],
    tally: &mut Tally,
    mut invariant: impl FnMut(&Env, &str),
    done: impl Fn(&Env) -> bool,
) -> String {
    tally.commands += 1;
    for attempt in 1..=MAX_ATTEMPTS {
        let label = format!("seed {seed}, courier {args:?}, attempt {attempt}");
        let (code, out, err) = env.run(args);
        tally.attempts += 1;
        check_requests(&env.server.take_requests(), &label, tally);
        invariant(env, &label);
        if code == 0 {
            assert!(
                done(env),
                "{label}: succeeded without its effect\n{out}\n{err}"
            );
            return format!("{out}\n{err}");
        }
        tally.failed_attempts += 1;
        assert!(
            FAULT_EXIT_CODES.contains(&code),
            "{label}: undocumented exit code {code} under faults\n--- stdout\n{out}\n--- stderr\n{err}"
        );
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("error: "),
            "{label}: expected one `error:` line\n--- stderr\n{err}"
        );
        if code == 3 && done(env) {
            // Refused because an earlier attempt's lost answer had already done it.
            return format!("{out}\n{err}");
        }
    }
    panic!("seed {seed}: courier {args:?} did not succeed in {MAX_ATTEMPTS} attempts");
}

/// A read-only command: must not change the server.
fn read_only(env: &Env, seed: u64, args: &[&str], tally: &mut Tally) -> String {
    let before = factory_json(env);
    until_done(
        env,
        seed,
        args,
        tally,
        |env, label| {
            assert!(
                factory_json(env) == before,
                "{label}: a read-only command changed the server"
            )
        },
        |_| true,
    )
}

fn one_case(seed: u64, tally: &mut Tally) {
    let env = Env::new();
    let root_key = take_root_offline(&env);
    let _ = env.server.take_requests();
    env.server.set_faults(Some(
        FaultConfig::parse(&format!(
            "rate={RATE},kinds={KINDS},seed={seed},delay-ms=150"
        ))
        .expect("fault spec"),
    ));

    until_done(
        &env,
        seed,
        &["updates", "init", "-m", "sign under faults"],
        tally,
        |_, _| {},
        |env| env.view().transaction().is_some(),
    );
    read_only(&env, seed, &["show-root", "--fingerprint"], tally);
    read_only(&env, seed, &["updates", "status"], tally);
    let req = env.path("req.tufbundle");
    read_only(
        &env,
        seed,
        &["updates", "pull", "--bundle", req.to_str().unwrap()],
        tally,
    );
    let request = TransferBundle::read(&req).expect("pulled request");
    let resp = env.path("resp.tufbundle");
    let upload = sign_staged(&request, &[&root_key]);
    respond(&request, vec![Operation::SignRoot], upload.clone(), &resp);
    let before = staged(&env).expect("open transaction");
    let uploaded = (upload.ci_root.clone(), upload.prod_root.clone());
    let whole = |env: &Env, label: &str| {
        let now = staged(env).unwrap_or_else(|| panic!("{label}: transaction gone"));
        assert!(
            now == before || now == uploaded,
            "{label}: staged roots are neither the old nor the uploaded ones (half applied)"
        );
    };
    let push = ["updates", "push", resp.to_str().unwrap()];
    until_done(&env, seed, &push, tally, whole, |env| {
        staged(env) == Some(uploaded.clone())
    });
    // A repeated push never uploads twice.
    let again = until_done(&env, seed, &push, tally, whole, |env| {
        staged(env) == Some(uploaded.clone())
    });
    assert!(
        again.contains("already uploaded"),
        "seed {seed}: repeated push: {again}"
    );
    let version = env.view().version();
    until_done(
        &env,
        seed,
        &["updates", "apply"],
        tally,
        |env, label| {
            let v = env.view().version();
            assert!(
                v == version || v == version + 1,
                "{label}: version {v} after apply from {version}"
            );
        },
        |env| env.view().version() == version + 1 && env.view().transaction().is_none(),
    );
    env.server.set_faults(None);
    assert_eq!(env.view().ci_root().unwrap(), uploaded.0, "seed {seed}");
    // Once published, the response is recognised as applied, and nothing changes.
    let before = factory_json(&env);
    let (code, out, err) = env.run(&push);
    assert_eq!(code, 0, "seed {seed}: push after apply: {err}");
    assert!(
        out.contains(&format!("already applied as version {}", version + 1)),
        "seed {seed}: push after apply: {out}"
    );
    assert!(factory_json(&env) == before, "seed {seed}");
}

#[test]
fn courier_survives_or_reports_server_faults() {
    let mut tally = Tally::default();
    let seeds: Vec<Case<u64>> = SEEDS
        .map(|seed| Case::new(format!("seed {seed}"), seed))
        .collect();
    run_cases("hostile_faults", &seeds, |_, &seed| {
        one_case(seed, &mut tally)
    });
    let total: usize = tally.faults.values().sum();
    tests::report!(
        "hostile_faults: {} cases (seeds {SEEDS:?}, rate {RATE}), {} commands, {} attempts ({} failed cleanly), {total} faults seen {:?}, {} GET retries",
        SEEDS.end - SEEDS.start,
        tally.commands,
        tally.attempts,
        tally.failed_attempts,
        tally.faults,
        tally.get_retries
    );
    assert!(total > 0, "no fault was injected");
    assert!(
        tally.faults.contains_key(FaultKind::ResetAfter.as_str()),
        "no lost answer was exercised: {:?}",
        tally.faults
    );
}
