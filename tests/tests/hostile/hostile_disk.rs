//! A full disk and read-only directories (issue 10, part 4): the signer's targets-key
//! rotation runs with a file-size limit (`RLIMIT_FSIZE` with `SIGXFSZ` ignored, so a write
//! past the limit fails the way a full disk does) stepping from nothing to enough, and with
//! the keys, response and state directories read-only in turn. Every failed run exits
//! non-zero with one `error:` line naming a file, leaves no temporary file behind and keeps
//! the invariants of the crash suite (root keys byte-identical; the targets keys file absent
//! or complete; a response only with every key it references). After each failure the same
//! run, retried with room to write, completes: nothing a failure left blocks the retry.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use shared::test_support::cases::{run_cases, Case};

use crate::hostile_crash::{check, Rotation};

/// Runs `cmd` capturing stderr.
fn output(mut cmd: Command) -> Output {
    cmd.stderr(Stdio::piped()).output().expect("run signer")
}

/// Asserts a failed run ended with one clear error line; returns it.
fn one_error_line(out: &Output, label: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "{label}: expected a failure exit status, got {:?}: {err}",
        out.status
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("error: "),
        "{label}: not one error line:\n{err}"
    );
    lines[0].to_string()
}

/// The temporary files (`.NAME.RANDOM.tmp`) anywhere under `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().expect("type").is_dir() {
            found.extend(temp_files(&e.path()));
        } else if name.starts_with('.') && name.ends_with(".tmp") {
            found.push(e.path().display().to_string());
        }
    }
    found
}

/// The invariants after a failed run in `dir`; returns its error line.
fn check_clean_failure(r: &Rotation, dir: &Path, out: &Output, label: &str) -> String {
    let line = one_error_line(out, label);
    let resp = dir.join("resp.tufbundle");
    check(dir, &resp, &r.root_bytes, label);
    assert_eq!(
        temp_files(dir),
        Vec::<String>::new(),
        "{label}: temp files left"
    );
    line
}

/// Step of the file-size limit between runs (bytes): every write of the run fails somewhere.
const STEP: u64 = 256;

#[test]
fn full_disk_never_loses_a_key_and_a_retry_completes() {
    let r = Rotation::new();
    let base = r.w.root.join("full-disk");
    let mut failures = 0usize;
    let mut limit: u64 = 0;
    loop {
        let label = format!("file size limit {limit} bytes");
        let dir = base.join(format!("limit-{limit}"));
        let resp = dir.join("resp.tufbundle");
        let mut cmd = r.command(&dir, &resp);
        // SAFETY: only async-signal-safe calls (signal, setrlimit) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = output(cmd);
        if out.status.success() {
            assert!(
                check(&dir, &resp, &r.root_bytes, &label),
                "{label}: new state"
            );
            break;
        }
        let line = check_clean_failure(&r, &dir, &out, &label);
        assert!(
            line.contains("too large") || line.contains("space"),
            "{label}: the error does not say the disk is full: {line}"
        );
        failures += 1;
        // The user makes room and runs the same command again in the same place.
        let retry = output(r.command_again(&dir, &resp));
        assert!(
            retry.status.success(),
            "{label}: the retry failed: {}",
            String::from_utf8_lossy(&retry.stderr)
        );
        assert!(check(&dir, &resp, &r.root_bytes, &label), "{label}: retry");
        let _ = std::fs::remove_dir_all(&dir);
        limit += STEP;
        assert!(limit < 1 << 24, "never succeeded");
    }
    assert!(failures >= 10, "only {failures} limits failed");
    tests::report!(
        "hostile_disk: {failures} runs under a file-size limit (0 to {limit} bytes) failed cleanly and their retries completed; the run at {limit} bytes completed"
    );
}

/// Drops the permission override of root (if the tests run as root) for the child, so
/// that directory modes apply to it as to any user.
fn without_root_override(cmd: &mut Command) {
    // SAFETY: only prctl between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::geteuid() == 0 {
                for cap in [1, 2] {
                    // CAP_DAC_OVERRIDE (1), CAP_DAC_READ_SEARCH (2): gone after exec.
                    if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
            }
            Ok(())
        });
    }
}

#[test]
fn read_only_directories_fail_before_any_change() {
    let r = Rotation::new();
    let base = r.w.root.join("read-only");
    let cases: Vec<Case<()>> = ["run directory", "response directory", "signer state"]
        .into_iter()
        .map(|which| Case::new(which, ()))
        .collect();
    let cases = run_cases("hostile_disk read-only", &cases, |which, _| {
        let dir = base.join(which.replace(' ', "-"));
        let usb = dir.join("usb");
        std::fs::create_dir_all(&usb).expect("usb dir");
        let resp = usb.join("resp.tufbundle");
        let mut cmd = r.command(&dir, &resp);
        let ro = match which {
            "run directory" => dir.clone(),
            "response directory" => usb.clone(),
            _ => dir.join("state"),
        };
        let before = std::fs::read_dir(&ro).expect("list").count();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        without_root_override(&mut cmd);
        let out = output(cmd);
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let line = one_error_line(&out, which);
        assert!(
            line.contains(&ro.display().to_string()),
            "{which}: the error does not name {}: {line}",
            ro.display()
        );
        // Nothing changed at all: no targets keys file, no response, the directory as before.
        assert!(
            !check(&dir, &resp, &r.root_bytes, which),
            "{which}: a keys file was written"
        );
        assert!(!resp.exists(), "{which}: a response was written");
        assert_eq!(
            std::fs::read_dir(&ro).expect("list").count(),
            before,
            "{which}"
        );
        assert_eq!(
            temp_files(&dir),
            Vec::<String>::new(),
            "{which}: temp files left"
        );
        let retry = output(r.command_again(&dir, &resp));
        assert!(
            retry.status.success(),
            "{which}: the retry failed: {}",
            String::from_utf8_lossy(&retry.stderr)
        );
        assert!(check(&dir, &resp, &r.root_bytes, which), "{which}: retry");
    });
    tests::report!(
        "hostile_disk: {cases} read-only directories refused before any change; retries completed"
    );
}

/// A request that changes on its medium after the signer read and checked it (a failing
/// stick, or something writing to the file while the signer works): documents are left in
/// the file when it is read, and every later read of one is checked against the digest
/// the first read found, so the signer notices when it reads a document again to sign it.
/// It signs nothing, writes no response and no keys file, and says which member of which
/// file changed. The change is made by a seam of test builds (`OFFLINE_TUF_CHANGE_AFTER_READ`,
/// `shared`'s feature `test-hooks`, like the crash points) right after the bundle was read;
/// one case per production targets document of the request (the first one signed and the
/// last: a change is noticed wherever it is). The unchanged request is then signed (the
/// control).
#[test]
fn a_request_changed_on_its_medium_after_reading_is_refused() {
    use shared::bundle::{TransferBundle, CHANGE_AFTER_READ_ENV};
    use tests::harness::{bin_path, path_str, History, World, WorldOptions};

    let w = World::new(WorldOptions {
        tags: 3,
        history: History::Offline,
        ..WorldOptions::default()
    });
    w.pin_trust(&w.offline, &[]);
    let req = w.usb("targets.req.tufbundle");
    w.request_rotation("targets", &req);
    let b = TransferBundle::read(&req).expect("request");
    let all: Vec<&str> = b
        .member_names()
        .into_iter()
        .filter(|m| m.starts_with("prod-targets/"))
        .collect();
    assert_eq!(all.len(), 3, "{all:?}");
    let docs = [all[0].to_string(), all[2].to_string()];
    let keys = w.offline.path("root.keys.tgz");
    let targets = w.offline.path("targets.keys.tgz");
    let resp = w.usb("targets.resp.tufbundle");
    let cases: Vec<Case<String>> = docs
        .iter()
        .map(|m| Case::new(format!("{m} changed after reading"), m.clone()))
        .collect();
    run_cases(
        "hostile_disk changed on the medium",
        &cases,
        |label, member| {
            let changed = w.usb("changed.req.tufbundle");
            std::fs::copy(&req, &changed).expect("copy the request");
            let watch = w.watch(&[&keys, &targets, &resp]);
            let home = &w.offline.home;
            let mut cmd = Command::new(bin_path("signer"));
            cmd.args(["--yes", "rotate-offline-key", "--role", "targets", "--keys"])
                .args([path_str(&keys), "--targets-keys", path_str(&targets)])
                .args([path_str(&changed), "-o", path_str(&resp)])
                .current_dir(home)
                .env("HOME", home)
                .env("XDG_CONFIG_HOME", home.join(".config"))
                .env("XDG_DATA_HOME", home.join(".local/share"))
                .env("XDG_STATE_HOME", home.join(".local/state"))
                .env("SIGNER_HOME", w.offline.signer_home())
                .env("NO_COLOR", "1")
                .env(CHANGE_AFTER_READ_ENV, member)
                .stdin(Stdio::null())
                .stdout(Stdio::null());
            let out = output(cmd);
            let line = one_error_line(&out, label);
            assert!(
                line.contains("changed after the bundle was checked")
                    && line.contains(member.as_str())
                    && line.contains(path_str(&changed)),
                "{label}: {line}"
            );
            assert_ne!(
                std::fs::read(&changed).expect("read"),
                std::fs::read(&req).expect("read"),
                "{label}: the seam did not change the file"
            );
            assert!(!resp.exists(), "{label}: a response was written");
            watch.assert_unchanged();
            std::fs::remove_file(&changed).expect("remove");
        },
    );
    w.rotate_targets(&w.offline, &keys, &targets, &req, &resp);
    assert!(resp.exists());
}
