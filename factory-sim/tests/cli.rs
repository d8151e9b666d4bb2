//! The `factory-sim` binary as a user runs it: `init` of a factory that went offline (the
//! admin's keys tarballs written), `serve` refusing bad options and an empty state directory,
//! serving the factory API on a free loopback port (the URL as the first line of stdout, one
//! log line per request on stderr) and stopping cleanly on SIGTERM. The API itself is tested
//! in the workspace's `tests` crate (`tests/tests/api/sim_api.rs`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

/// The API token of the factory's first user.
const TOKEN: &str = "token-acme";

#[test]
fn binary_init_serve_and_sigterm() {
    let exe = env!("CARGO_BIN_EXE_factory-sim");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let out = Command::new(exe)
        .args([
            "init",
            "--state",
            state,
            "--factory",
            "acme",
            "--token",
            TOKEN,
            "--targets",
            "2",
            "--tags",
            "1",
            "--offline-keys",
            dir.path().join("admin").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("production") && printed.contains("root v3"),
        "{printed}"
    );
    assert!(dir.path().join("admin/root.keys.tgz").is_file());
    assert!(dir.path().join("admin/targets.keys.tgz").is_file());
    let bad = Command::new(exe)
        .args(["serve", "--state", state, "--faults", "rate=7"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("rate"));
    let empty = tempfile::tempdir().unwrap();
    let none = Command::new(exe)
        .args(["serve", "--state", empty.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("factory-sim init"));

    let mut child = Command::new(exe)
        .args(["serve", "--state", state, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let resp = Client::new()
        .get(format!(
            "{url}/ota/factories/acme/prod-targets/?tag=production"
        ))
        .header("OSF-TOKEN", TOKEN)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "factory-sim did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(
        log.contains("GET /ota/factories/acme/prod-targets/?tag=production -> 200"),
        "{log}"
    );
}
