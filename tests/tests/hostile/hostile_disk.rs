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
