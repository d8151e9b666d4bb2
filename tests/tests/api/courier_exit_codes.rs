//! The courier's exit codes, through the binary: one named case per row, for every class of
//! the documented table (`courier --help`, `courier/README.md`, `courier::error`): 0 ok,
//! 1 error, 2 usage, 3 server refused, 4 network or server failure, 5 stale bundle,
//! 6 expiry. Every failing case says why in an `error:` line on stderr, never on stdout, and
//! never shows the token.

use std::net::TcpListener;
use std::path::PathBuf;

use assert_cmd::Command;
use factory_sim::FaultKind;
use shared::bundle::{Operation, TransferBundle};
use shared::keys::{KeyType, PrivateKey};

use crate::courier_support::{respond, sign_staged, take_root_offline, Env};

/// What the cases run against: a factory whose root key is offline, with an open
/// transaction that changed after two responses were made for it.
struct Fixture {
    env: Env,
    /// A response whose staged roots carry a signature by a key that is no root key.
    stray_signature: PathBuf,
    /// A correctly signed response to the transaction before it changed.
    stale: PathBuf,
    /// The factory's root.json (not a bundle).
    root_json: PathBuf,
    /// A file that exists.
    existing: PathBuf,
    /// A fioctl config whose `server.url` is plain http to a remote host.
    bad_server_url: PathBuf,
    /// An API URL where nothing listens.
    closed_url: String,
}

fn fixture() -> Fixture {
    let env = Env::new();
    let root_key = take_root_offline(&env);
    env.ok(&["updates", "init", "-m", "exit codes"]);
    let req = env.path("req.tufbundle");
    env.ok(&["updates", "pull", "--bundle", req.to_str().unwrap()]);
    let b = TransferBundle::read(&req).unwrap();
    let stranger = PrivateKey::generate(KeyType::Ed25519).unwrap();
    let stray_signature = env.path("stray.tufbundle");
    respond(
        &b,
        vec![Operation::SignRoot],
        sign_staged(&b, &[&root_key, &stranger]),
        &stray_signature,
    );
    let stale = env.path("stale.tufbundle");
    respond(
        &b,
        vec![Operation::SignRoot],
        sign_staged(&b, &[&root_key]),
        &stale,
    );
    // Someone stages another change: the responses no longer answer the transaction.
    env.ok(&["updates", "rotate-online-key", "--role", "timestamp"]);
    let root_json = env.path("root.json");
    std::fs::write(&root_json, env.ok(&["show-root"])).unwrap();
    let existing = env.path("existing.tufbundle");
    std::fs::write(&existing, b"taken").unwrap();
    let bad_server_url = env.path("fioctl.yaml");
    std::fs::write(&bad_server_url, "server:\n  url: http://api.example.test\n").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    Fixture {
        env,
        stray_signature,
        stale,
        root_json,
        existing,
        bad_server_url,
        closed_url,
    }
}

/// One row: what is run, the exit code the documentation promises, and a part of what it
/// says on stderr.
struct Case {
    name: &'static str,
    code: i32,
    says: &'static str,
    command: Box<dyn Fn(&Fixture) -> Command>,
}

fn case(
    name: &'static str,
    code: i32,
    says: &'static str,
    command: impl Fn(&Fixture) -> Command + 'static,
) -> Case {
    Case {
        name,
        code,
        says,
        command: Box::new(command),
    }
}

/// The courier against the fixture's factory with `args`.
fn courier(fx: &Fixture, args: &[&str]) -> Command {
    let mut cmd = fx.env.courier();
    cmd.args(args);
    cmd
}

fn path(p: &std::path::Path) -> String {
    p.to_str().unwrap().to_string()
}

fn cases() -> Vec<Case> {
    vec![
        // 0: success.
        case("help", 0, "", |fx| courier(fx, &["--help"])),
        case("a read command", 0, "", |fx| {
            courier(fx, &["show-root", "--fingerprint"])
        }),
        // 2: usage.
        case("an unknown flag", 2, "--nope", |fx| {
            courier(fx, &["show-root", "--nope"])
        }),
        case("a missing argument", 2, "--bundle", |fx| {
            courier(fx, &["updates", "pull"])
        }),
        case("an invalid value", 2, "nope", |fx| {
            courier(
                fx,
                &["rotate-offline-key", "--role", "nope", "--bundle", "x"],
            )
        }),
        case(
            "a fioctl flag that belongs to the signer",
            2,
            "keys stay on the offline machine",
            |fx| {
                courier(
                    fx,
                    &["rotate-offline-key", "--role", "root", "--keys", "k.tgz"],
                )
            },
        ),
        case("no factory configured", 2, "no factory configured", |fx| {
            let mut cmd = courier(fx, &["show-root"]);
            cmd.env_remove("FIOCTL_FACTORY");
            cmd
        }),
        case("a bundle file that exists", 2, "already exists", |fx| {
            courier(fx, &["updates", "pull", "--bundle", &path(&fx.existing)])
        }),
        case("options that need each other", 2, "prod", |fx| {
            courier(fx, &["updates", "review", "--prod"])
        }),
        case(
            "a plain-http API URL to a remote host",
            2,
            "plain-http",
            |fx| {
                let mut cmd = fx.env.courier_at("http://api.example.test");
                cmd.arg("show-root");
                cmd
            },
        ),
        case("an invalid age recipient", 2, "age recipient", |fx| {
            courier(fx, &["config", "set-recipient", "age1nope"])
        }),
        case("expiry horizons in the wrong order", 2, "", |fx| {
            courier(fx, &["expiry", "--warn", "1d", "--critical", "9d"])
        }),
        case("a rollout to no devices", 2, "--group", |fx| {
            courier(fx, &["waves", "rollout", "w"])
        }),
        // 1: any other error (files, configuration, local verification).
        case("a bundle that does not exist", 1, "nonexistent", |fx| {
            courier(fx, &["updates", "push", "/nonexistent/resp.tufbundle"])
        }),
        case(
            "a root.json given as a bundle",
            1,
            "TUF root metadata",
            |fx| courier(fx, &["updates", "push", &path(&fx.root_json)]),
        ),
        case(
            "a fioctl config file that does not exist",
            1,
            "does not exist",
            |fx| courier(fx, &["--config", "/nonexistent/fioctl.yaml", "show-root"]),
        ),
        case(
            "a plain-http server.url in the fioctl config",
            1,
            "server.url in",
            |fx| {
                let mut cmd = Command::new(tests::harness::bin_path("courier"));
                cmd.env_clear()
                    .env("HOME", &fx.env.home)
                    .env("FIOCTL_FACTORY", &fx.env.factory)
                    .env("FIOCTL_CONFIG", &fx.bad_server_url)
                    .arg("show-root");
                cmd
            },
        ),
        case(
            "a device list file that cannot be read",
            1,
            "cannot read the device UUIDs",
            |fx| {
                courier(
                    fx,
                    &[
                        "waves",
                        "rollout",
                        "w",
                        "--uuids",
                        "@/nonexistent/uuids.txt",
                    ],
                )
            },
        ),
        case(
            "a signature by a key that is no root key",
            1,
            "not from a root key",
            |fx| courier(fx, &["updates", "push", &path(&fx.stray_signature)]),
        ),
        // 3: the server refused (4xx), nothing changed.
        case("a wrong token", 3, "HTTP 401", |fx| {
            courier(fx, &["--token", "wrong-token", "show-root"])
        }),
        case("a second transaction", 3, "HTTP 409", |fx| {
            courier(fx, &["updates", "init", "-m", "again"])
        }),
        case("a wave that does not exist", 3, "HTTP 404", |fx| {
            courier(fx, &["waves", "complete", "no-such-wave"])
        }),
        case(
            "an apply of unsigned roots",
            3,
            "No changes were made",
            |fx| courier(fx, &["updates", "apply"]),
        ),
        // 4: network or server failure.
        case("no server listening", 4, "network error", |fx| {
            let mut cmd = fx.env.courier_at(&fx.closed_url);
            cmd.arg("show-root");
            cmd
        }),
        case(
            "a server error on a request sent once",
            4,
            "HTTP 500",
            |fx| {
                fx.env
                    .server
                    .inject_fault(FaultKind::Status500, Some("/root/updates/cancel"));
                courier(fx, &["updates", "cancel"])
            },
        ),
        // 5: stale bundle.
        case(
            "a response to a transaction that changed",
            5,
            "stale bundle",
            |fx| courier(fx, &["updates", "push", &path(&fx.stale)]),
        ),
        // 6: expiry radar.
        case(
            "documents within the critical horizon",
            6,
            "expiring within",
            |fx| courier(fx, &["expiry", "--warn", "5000d", "--critical", "5000d"]),
        ),
    ]
}

#[test]
fn every_documented_exit_code_has_its_cases() {
    let fx = fixture();
    let cases = cases();
    let mut wrong = Vec::new();
    for c in &cases {
        let out = (c.command)(&fx).output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut problems = Vec::new();
        if code != c.code {
            problems.push(format!("exit {code}, documented {}", c.code));
        }
        if !stderr.contains(c.says) {
            problems.push(format!("stderr does not say {:?}", c.says));
        }
        if c.code != 0 && !stderr.contains("error: ") {
            problems.push("no `error:` line on stderr".to_string());
        }
        if c.code != 0 && stdout.contains("error: ") {
            problems.push("an error on stdout".to_string());
        }
        if stdout.contains(&fx.env.token) || stderr.contains(&fx.env.token) {
            problems.push("the token is shown".to_string());
        }
        println!("case {:<45} exit {code}", c.name);
        if !problems.is_empty() {
            wrong.push(format!(
                "{}: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
                c.name,
                problems.join("; ")
            ));
        }
    }
    // The table covers every class of the documentation, so none can drift unnoticed.
    for code in 0..=6 {
        assert!(
            cases.iter().any(|c| c.code == code),
            "no case for exit code {code}"
        );
    }
    println!("{} cases, every exit code 0 to 6", cases.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    // Nothing the refused and failed cases did changed the factory's transaction.
    assert_eq!(fx.env.view().version(), 2);
}
