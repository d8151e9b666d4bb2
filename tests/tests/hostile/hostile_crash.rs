//! Crash injection (issue 10, part 4): the signer is killed at named crash points
//! (`OFFLINE_TUF_CRASH_AT`: before/after the keys file save, before/after the response
//! write, inside the atomic write) and by SIGKILL after varying delays, during a targets
//! key rotation. After every run: the root keys file is byte-identical, the targets keys
//! file is absent (old state) or readable and holding the new key (new state), and if a
//! response exists every key it references is in the keys files.
//!
//! The named points act only in a signer built with `shared`'s `test-hooks` feature, which
//! this crate turns on as a dev-dependency (so `cargo test --workspace` builds the signer
//! with it); [`shipped_builds_have_no_crash_hook`] checks that other builds never have it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shared::bundle::TransferBundle;
use shared::metadata::Role;
use shared::tarball::KeysTarball;
use shared::test_support::cases::{Case, Tables};
use tests::harness::{bin_path, path_str, World, WorldOptions};

/// Checks the invariants after one (possibly killed or failed) run in `dir` whose response
/// goes to `out`; returns whether the run reached the new state.
pub(crate) fn check(dir: &Path, out: &Path, root_keys_before: &[u8], label: &str) -> bool {
    let root_keys = dir.join("root.keys.tgz");
    let tk = dir.join("targets.keys.tgz");
    assert_eq!(
        std::fs::read(&root_keys).expect("root keys"),
        root_keys_before,
        "{label}: root keys file changed"
    );
    let targets = if tk.exists() {
        let t = KeysTarball::read(&tk)
            .unwrap_or_else(|e| panic!("{label}: targets keys file unreadable: {e}"));
        let keys = t.keys().expect("keys");
        assert_eq!(keys.len(), 1, "{label}: one new targets key");
        assert!(keys[0].sec_file.is_some(), "{label}: private half present");
        Some(keys[0].keyid.clone())
    } else {
        None
    };
    if out.exists() {
        let resp = TransferBundle::read(out)
            .unwrap_or_else(|e| panic!("{label}: response unreadable: {e}"));
        let up = resp.upload().expect("upload");
        for id in up.ci_root.signed.role_keyids(Role::Targets) {
            if up.ci_root.signed.keys.contains_key(id) && Some(id) != targets.as_ref() {
                // Keys already in the current root are the server's (online) keys.
                let current = resp.chain().expect("chain");
                let last = current.last().expect("chain tip");
                assert!(
                    last.signed.keys.contains_key(id),
                    "{label}: response references targets key {id} that no keys file holds"
                );
            }
        }
        assert!(targets.is_some(), "{label}: response without the keys file");
    }
    targets.is_some()
}

/// A factory whose root key was taken offline, with a targets-rotation request on the USB
/// stick: the signer's rotation is then run many times, each run in a directory of its own
/// holding a copy of the root keys file and of the signer state.
pub(crate) struct Rotation {
    /// The factory and its machines.
    pub w: World,
    /// The targets-rotation request.
    pub req: PathBuf,
    /// The root keys file as it was before any run.
    pub root_bytes: Vec<u8>,
}

impl Rotation {
    pub(crate) fn new() -> Rotation {
        let w = World::new(WorldOptions::default());
        let root_keys = w.offline.path("root.keys.tgz");
        w.first_time_rotation(&w.offline, &root_keys);
        let req = w.usb("targets.req.tufbundle");
        w.request_rotation("targets", &req);
        let root_bytes = std::fs::read(&root_keys).expect("root keys");
        Rotation { w, req, root_bytes }
    }

    /// Fills `dir` with a copy of the root keys and of the signer state, and returns the
    /// command rotating the targets key into `dir/targets.keys.tgz`, response to `out`.
    pub(crate) fn command(&self, dir: &Path, out: &Path) -> Command {
        std::fs::create_dir_all(dir).expect("run dir");
        std::fs::write(dir.join("root.keys.tgz"), &self.root_bytes).expect("copy");
        copy_dir(&self.w.offline.signer_home(), &dir.join("state"));
        self.command_again(dir, out)
    }

    /// The same command in a `dir` prepared by [`Rotation::command`], as it is after the
    /// earlier runs there (a retry).
    pub(crate) fn command_again(&self, dir: &Path, out: &Path) -> Command {
        let st = dir.join("state");
        let mut cmd = Command::new(bin_path("signer"));
        cmd.args([
            "--yes",
            "rotate-offline-key",
            "--role",
            "targets",
            "--keys",
            path_str(&dir.join("root.keys.tgz")),
            "--targets-keys",
            path_str(&dir.join("targets.keys.tgz")),
            path_str(&self.req),
            "-o",
            path_str(out),
        ])
        .env("SIGNER_HOME", &st)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        cmd
    }
}

#[test]
fn killed_signer_never_loses_a_key() {
    let r = Rotation::new();
    let root_bytes = &r.root_bytes;
    let runs_dir = r.w.root.join("crash-runs");
    let mut n = 0usize;
    let mut new_state = 0usize;
    let run =
        |n: usize, crash: Option<&str>, kill_after: Option<Duration>| -> (PathBuf, Duration) {
            let dir = runs_dir.join(format!("run-{n}"));
            let mut cmd = r.command(&dir, &dir.join("resp.tufbundle"));
            if let Some(p) = crash {
                cmd.env(shared::fsutil::CRASH_ENV, p);
            }
            let start = Instant::now();
            let mut child = cmd.spawn().expect("spawn signer");
            if let Some(d) = kill_after {
                std::thread::sleep(d);
                let _ = child.kill();
            }
            let status = child.wait().expect("wait");
            if crash.is_some() {
                assert!(
                    !status.success(),
                    "run {n}: crash point {crash:?} not reached (a signer built without shared's \
                     `test-hooks` feature ignores {}: `cargo test --workspace` builds it with the \
                     feature, a plain `cargo build` without)",
                    shared::fsutil::CRASH_ENV
                );
            }
            (dir, start.elapsed())
        };
    // Named crash points.
    let points: Vec<Case<()>> = [
        "signer:before-keys-save",
        shared::fsutil::CRASH_AFTER_WRITE,
        shared::fsutil::CRASH_AFTER_RENAME,
        "signer:after-keys-save",
        "signer:before-response-write",
        "signer:after-response-write",
    ]
    .into_iter()
    .map(|p| Case::new(p, ()))
    .collect();
    let mut tables = Tables::default();
    tables.run("crash points", &points, |p, _| {
        // Each case its own run directory, whatever the case before it left.
        n += 1;
        let (dir, _) = run(n - 1, Some(p), None);
        if check(&dir, &dir.join("resp.tufbundle"), root_bytes, p) {
            new_state += 1;
        }
    });
    // An uninterrupted run gives the time scale for the timed kills.
    let (dir, full) = run(n, None, None);
    assert!(
        check(
            &dir,
            &dir.join("resp.tufbundle"),
            root_bytes,
            "uninterrupted"
        ),
        "uninterrupted run completes"
    );
    n += 1;
    let kills: usize = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let timed: Vec<Case<Duration>> = (0..kills)
        .map(|i| {
            let d = full.mul_f64(i as f64 / kills as f64 * 1.1);
            Case::new(format!("SIGKILL after {d:?}"), d)
        })
        .collect();
    tables.run("timed kills", &timed, |label, d| {
        n += 1;
        let (dir, _) = run(n - 1, None, Some(*d));
        if check(&dir, &dir.join("resp.tufbundle"), root_bytes, label) {
            new_state += 1;
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
    tables.finish();
    tests::report!(
        "hostile_crash: {n} runs ({kills} timed SIGKILLs over {full:?}, 6 named crash points, 1 clean): keys never lost; {new_state} ended in the new state, {} in the old",
        n - new_state - 1
    );
}

/// The crash hook is a seam of test builds only: `cargo build` or `cargo install` of the
/// courier and the signer resolve `shared` without its `test-hooks` feature (so their binaries
/// hold no `OFFLINE_TUF_CRASH_AT` and no abort), while the build of these suites has it (the
/// control: the same query does see the feature where it is on). The same holds for the
/// test fixtures (`test-support`: keys from fixed seeds).
#[test]
fn shipped_builds_have_no_crash_hook() {
    let features_of_shared = |packages: &[&str], edges: &str| -> String {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args([
            "tree",
            "--offline",
            "--prefix",
            "none",
            "-i",
            "shared",
            "-e",
            edges,
        ]);
        for p in packages {
            cmd.args(["-p", p]);
        }
        let out = cmd
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .expect("run cargo tree");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let hook = "shared feature \"test-hooks\"";
    let support = "shared feature \"test-support\"";
    let shipped = features_of_shared(&["signer", "courier"], "normal,features");
    assert!(shipped.contains("shared feature \"cli\""), "{shipped}");
    assert!(
        !shipped.contains(hook),
        "a non-test build of the courier or the signer would have the crash hook:\n{shipped}"
    );
    assert!(
        !shipped.contains(support),
        "a non-test build of the courier or the signer would have the test fixtures:\n{shipped}"
    );
    let tested = features_of_shared(&["tests"], "features");
    assert!(tested.contains(hook), "{tested}");
    assert!(tested.contains(support), "{tested}");
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).expect("copy");
        }
    }
}
