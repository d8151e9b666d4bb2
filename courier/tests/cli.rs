//! The `courier` binary's own surface: help, version, completions, man page, and the errors a
//! user sees before any request is made. (Workflows against the simulator live in `tests/`.)

use std::process::Command;

fn courier(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(args)
        .env_remove("FIOCTL_FACTORY")
        .env_remove("FIOCTL_TOKEN")
        .env_remove("FIOCTL_CONFIG")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .env(
            "XDG_CONFIG_HOME",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/courier-cli-config"),
        )
        .output()
        .expect("run courier");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_documents_commands_and_exit_codes() {
    let (code, out, _) = courier(&["--help"]);
    assert_eq!(code, 0);
    for needle in [
        "rotate-offline-key",
        "updates",
        "waves",
        "show-root",
        "--factory",
        "--token",
    ] {
        assert!(out.contains(needle), "--help lacks {needle}:\n{out}");
    }
    assert!(
        out.to_lowercase().contains("exit"),
        "--help documents exit codes:\n{out}"
    );
    let (code, out, _) = courier(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("courier "), "{out}");
}

#[test]
fn completions_and_man_page_are_generated() {
    let (code, out, _) = courier(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("courier") && out.contains("rotate-offline-key"),
        "{out}"
    );
    let (code, out, _) = courier(&["man"]);
    assert_eq!(code, 0);
    assert!(out.contains(".TH"), "man page is roff: {out}");
}

#[test]
fn missing_factory_is_a_clear_usage_error() {
    let (code, out, err) = courier(&["--api-url", "http://127.0.0.1:9", "show-root"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.to_lowercase().contains("factory"),
        "error names the missing setting: {err}"
    );
    let (code, _, err) = courier(&["rotate-offline-key", "--role", "nope", "--bundle", "x"]);
    assert_eq!(code, 2, "bad argument is a usage error: {err}");
}
