//! Crash injection (issue 10, part 4): the signer is killed at named crash points
//! (`OFFLINE_TUF_CRASH_AT`: before/after the keys file save, before/after the response
//! write, inside the atomic write) and by SIGKILL after varying delays, during a targets
//! key rotation. After every run: the root keys file is byte-identical, the targets keys
//! file is absent (old state) or readable and holding the new key (new state), and if a
//! response exists every key it references is in the keys files.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shared::bundle::TransferBundle;
use shared::metadata::Role;
use shared::tarball::KeysTarball;
use tests::harness::{bin_path, path_str, World, WorldOptions};

/// Checks the invariants after one (possibly killed) run in `dir`; returns whether the
/// run reached the new state.
fn check(dir: &Path, root_keys_before: &[u8], label: &str) -> bool {
    let root_keys = dir.join("root.keys.tgz");
    let tk = dir.join("targets.keys.tgz");
    let out = dir.join("resp.tufbundle");
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
        let resp = TransferBundle::read(&out)
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

#[test]
fn killed_signer_never_loses_a_key() {
    let w = World::new(WorldOptions::default());
    let root_keys = w.offline.path("root.keys.tgz");
    w.first_time_rotation(&w.offline, &root_keys);
    let req = w.usb("targets.req.tufbundle");
    w.courier([
        "rotate-offline-key",
        "--role",
        "targets",
        "--bundle",
        path_str(&req),
    ])
    .ok();
    let root_bytes = std::fs::read(&root_keys).expect("root keys");
    let state = w.offline.signer_home();
    let runs_dir = w.root.join("crash-runs");
    let mut n = 0usize;
    let mut new_state = 0usize;
    let run = |n: usize,
               crash: Option<&str>,
               kill_after: Option<Duration>|
     -> (std::path::PathBuf, Duration) {
        let dir = runs_dir.join(format!("run-{n}"));
        std::fs::create_dir_all(&dir).expect("run dir");
        std::fs::write(dir.join("root.keys.tgz"), &root_bytes).expect("copy");
        // Each run has its own signer state (audit log) copied from the prepared one.
        let st = dir.join("state");
        copy_dir(&state, &st);
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
            path_str(&req),
            "-o",
            path_str(&dir.join("resp.tufbundle")),
        ])
        .env("SIGNER_HOME", &st)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
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
                "run {n}: crash point {crash:?} not reached"
            );
        }
        (dir, start.elapsed())
    };
    // Named crash points.
    for p in [
        "signer:before-keys-save",
        shared::fsutil::CRASH_AFTER_WRITE,
        shared::fsutil::CRASH_AFTER_RENAME,
        "signer:after-keys-save",
        "signer:before-response-write",
        "signer:after-response-write",
    ] {
        let (dir, _) = run(n, Some(p), None);
        if check(&dir, &root_bytes, p) {
            new_state += 1;
        }
        n += 1;
    }
    // An uninterrupted run gives the time scale for the timed kills.
    let (dir, full) = run(n, None, None);
    assert!(
        check(&dir, &root_bytes, "uninterrupted"),
        "uninterrupted run completes"
    );
    n += 1;
    let kills: usize = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    for i in 0..kills {
        let d = full.mul_f64(i as f64 / kills as f64 * 1.1);
        let (dir, _) = run(n, None, Some(d));
        if check(&dir, &root_bytes, &format!("SIGKILL after {d:?}")) {
            new_state += 1;
        }
        let _ = std::fs::remove_dir_all(&dir);
        n += 1;
    }
    eprintln!(
        "hostile_crash: {n} runs ({kills} timed SIGKILLs over {full:?}, 6 named crash points, 1 clean): keys never lost; {new_state} ended in the new state, {} in the old",
        n - new_state - 1
    );
}

fn copy_dir(from: &Path, to: &Path) {
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
