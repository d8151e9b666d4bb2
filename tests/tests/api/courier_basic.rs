//! The courier's read commands, transaction basics, configuration and refusals, against
//! factory-sim through the real binary.

use crate::courier_support::{printed_fingerprint, respond, sign_staged, take_root_offline, Env};
use factory_sim::TxStatus;
use shared::bundle::{Operation, TransferBundle};
use shared::canonical;
use shared::metadata::SignedRoot;

#[test]
fn show_root_prints_the_served_root_canonically() {
    let env = Env::new();
    let out = env.ok(&["show-root"]);
    let view = env.view();
    let want = canonical::to_pretty(view.ci_root_json().as_bytes()).unwrap();
    assert_eq!(out.trim_end(), want.trim_end());
    assert!(out.contains("\n  \"signatures\": ["), "{out}");
    let v1 = env.ok(&["show-root", "--version", "1"]);
    assert_eq!(v1, out);
    let prod = env.ok(&["show-root", "--prod"]);
    let root = SignedRoot::from_json(prod.as_bytes()).unwrap();
    assert_eq!(root.signed.version, 1);
    let err = env.fails(&["show-root", "--version", "7"], 1);
    assert!(err.contains("no CI root version 7"), "{err}");
    env.fails(&["show-root", "--version", "0"], 2);
}

#[test]
fn connection_settings_and_errors() {
    let env = Env::new();
    // A wrong token: refused (exit 3) with the server's reason; the token is never echoed.
    let (code, out, err) = env.run(&["-v", "--token", "wrong-secret-token", "show-root"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(!out.contains("wrong-secret-token") && !err.contains("wrong-secret-token"));
    assert!(err.contains("> GET "), "verbose logging: {err}");
    // The real token is not printed in verbose logs either.
    let (code, _, err) = env.run(&["-v", "updates", "status"]);
    assert_eq!(code, 0);
    assert!(!err.contains(&env.token), "{err}");
    // No factory anywhere: usage error.
    let out = env
        .courier()
        .env_remove("FIOCTL_FACTORY")
        .arg("show-root")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no factory configured"));
    // The fioctl config file is read.
    let cfg = env.path("fioctl.yaml");
    std::fs::write(
        &cfg,
        format!("factory: {}\ntoken: {}\n", env.factory, env.token),
    )
    .unwrap();
    let out = env
        .courier()
        .env_remove("FIOCTL_FACTORY")
        .env_remove("FIOCTL_TOKEN")
        .env("FIOCTL_CONFIG", &cfg)
        .args(["updates", "status"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing listening: network error, exit 4.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = env
        .courier_at(&format!("http://127.0.0.1:{port}"))
        .arg("show-root")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Plain http to a non-local host is refused before anything is sent.
    let out = env
        .courier_at("http://api.example.invalid")
        .arg("show-root")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn status_and_review_of_a_fresh_factory() {
    let env = Env::new();
    let out = env.ok(&["updates", "status"]);
    assert!(out.contains("Status:       NONE"), "{out}");
    assert!(out.contains("Current root: version 1"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["updates", "status", "--json"])).unwrap();
    assert_eq!(json["status"], "NONE");
    assert_eq!(json["current"]["ci-root"]["version"], 1);
    let review = env.ok(&["updates", "review"]);
    assert!(
        review.starts_with("There are no TUF root updates in progress."),
        "{review}"
    );
    assert!(
        review.contains("--first-time"),
        "local recommendation to take the root offline: {review}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["updates", "review", "--json"])).unwrap();
    assert!(json["local"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["level"] == "warning"));
    let err = env.fails(&["updates", "review", "--raw"], 1);
    assert!(err.contains("There are no TUF root updates in progress."));
    env.fails(&["updates", "review", "--prod"], 2);
}

#[test]
fn init_status_review_cancel() {
    let env = Env::new();
    let err = env.fails(&["updates", "init", "-m", "first", "--first-time"], 1);
    assert!(err.contains("no signer recipient configured"), "{err}");
    assert!(
        env.view().transaction().is_none(),
        "refused before any change"
    );
    env.set_recipient();

    let out = env.ok(&[
        "updates",
        "init",
        "-m",
        "Take the root offline",
        "--first-time",
    ]);
    assert!(out.contains("Your transaction ID is"), "{out}");
    let tx = env.view().transaction().expect("a transaction");
    assert_eq!(tx.status, TxStatus::Started);
    let status = env.ok(&["updates", "status"]);
    assert!(status.contains("STARTED (first-time rotation)"), "{status}");
    assert!(status.contains("Staged root:  version 2"), "{status}");
    assert!(
        status.contains("current root keys 0 of 1 needed"),
        "{status}"
    );
    let review = env.ok(&["updates", "review"]);
    assert!(
        review.contains("The following TUF root updates are staged"),
        "{review}"
    );
    assert!(review.contains("courier updates apply"), "{review}");
    let raw = env.ok(&["updates", "review", "--raw"]);
    assert_eq!(
        SignedRoot::from_json(raw.as_bytes())
            .unwrap()
            .signed
            .version,
        2
    );
    let diff = env.ok(&["updates", "review", "--diff", "--prod"]);
    assert!(
        diff.contains("-    \"version\": 1") && diff.contains("+    \"version\": 2"),
        "{diff}"
    );

    // Only one transaction at a time: refused with the server's reason.
    let err = env.fails(&["updates", "init", "-m", "again"], 3);
    assert!(err.contains("HTTP 409"), "{err}");
    assert!(
        err.contains("Only one TUF root updates transaction"),
        "{err}"
    );

    // Applying an unsigned root is refused without changes (non-fatal).
    let err = env.fails(&["updates", "apply"], 3);
    assert!(
        err.contains("No changes were made to your Factory"),
        "{err}"
    );
    assert_eq!(env.view().version(), 1);

    let out = env.ok(&["updates", "cancel"]);
    assert!(out.contains("canceled"), "{out}");
    assert!(env.view().transaction().is_none());
    let err = env.fails(&["updates", "apply"], 1);
    assert!(
        err.contains("There are no TUF root updates in progress."),
        "{err}"
    );
    let err = env.fails(
        &[
            "updates",
            "pull",
            "--bundle",
            env.path("x").to_str().unwrap(),
        ],
        1,
    );
    assert!(
        err.contains("There are no TUF root updates in progress."),
        "{err}"
    );
}

#[test]
fn config_completions_and_man() {
    let env = Env::new();
    env.fails(&["config", "set-recipient", "age1notarecipient"], 2);
    env.set_recipient();
    let show = env.ok(&["config", "show"]);
    assert!(
        show.contains(&env.identity.to_public().to_string()),
        "{show}"
    );
    assert!(show.contains("environment variable FIOCTL_TOKEN"), "{show}");
    assert!(
        !show.contains(&env.token),
        "the token is never shown: {show}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["config", "show", "--json"])).unwrap();
    assert_eq!(json["token"], true);
    for shell in ["bash", "zsh", "fish"] {
        let out = env.ok(&["completions", shell]);
        assert!(out.contains("rotate-offline-key"), "{shell}");
    }
    let man = env.ok(&["man"]);
    assert!(man.contains(".TH") && man.contains("Exit codes"), "{man}");
    let dir = env.path("man");
    env.ok(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(dir.join("courier-updates-push.1").exists());
    let help = env.ok(&["--help"]);
    assert!(
        help.contains("Exit codes:") && help.contains("5  stale bundle"),
        "{help}"
    );
}

#[test]
fn rotate_online_key_then_sign_root() {
    let env = Env::new();
    let root_key = take_root_offline(&env);
    assert_eq!(env.view().version(), 2);
    env.ok(&["updates", "init", "-m", "rotate online keys"]);
    let before = env.view().online_keys().clone();
    let out = env.ok(&[
        "updates",
        "rotate-online-key",
        "--role",
        "snapshot,timestamp",
    ]);
    assert!(out.contains("= New online snapshot keyid:"), "{out}");
    assert!(out.contains("= New online timestamp keyid:"), "{out}");
    let req = env.path("online.req.tufbundle");
    let out = env.ok(&["updates", "pull", "--bundle", req.to_str().unwrap()]);
    let b = TransferBundle::read(&req).unwrap();
    assert_eq!(printed_fingerprint(&out), b.fingerprint());
    assert!(
        out.contains("rotate-online-key snapshot,timestamp"),
        "{out}"
    );
    assert_eq!(b.chain_bytes().len(), 2);
    // A bundle file is never overwritten.
    let err = env.fails(&["updates", "pull", "--bundle", req.to_str().unwrap()], 2);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(env.view().online_keys(), &before, "nothing applied yet");

    let resp = env.path("online.resp.tufbundle");
    let upload = sign_staged(&b, &[&root_key]);
    respond(&b, vec![Operation::SignRoot], upload, &resp);
    let out = env.ok(&["updates", "push", resp.to_str().unwrap(), "--apply"]);
    assert!(out.contains("The factory's root is now version 3"), "{out}");
    let after = env.view().online_keys().clone();
    assert_eq!(after.targets, before.targets);
    assert_ne!(after.snapshot, before.snapshot);
    assert_ne!(after.timestamp, before.timestamp);
}
