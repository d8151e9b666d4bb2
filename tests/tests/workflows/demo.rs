//! The README's first command, `cargo run --release --bin demo`, the way a new user runs it:
//! the demo binary plays the whole workflow against the embedded simulator and must end with
//! a verified device view. (Run here from the test build; the release build is the same code.)

use std::process::Command;

#[test]
fn the_readme_demo_runs_the_whole_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .arg("--dir")
        .arg(dir.path().join("demo"))
        // Not under `cargo run`: the demo uses the binaries built for this test run.
        .env_remove("CARGO")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for step in [
        "1. Once, offline",
        "3. First-time root key rotation",
        "4. Targets key rotation",
        "5. A wave",
        "6. Back up the root key",
        "7. What a device sees",
        "CI root chain 1..3 and production root chain 1..3 verify from version 1",
        "verified targets: prod:production",
        "Where everything is",
    ] {
        assert!(
            stdout.contains(step),
            "the demo did not print {step:?}:\n{stdout}"
        );
    }
    assert!(dir.path().join("demo/offline/root.keys.tgz").is_file());
}
