//! `courier waves init|push|list` against factory-sim through the real binary.

use crate::courier_support::*;
use factory_sim::WaveStatus;
use shared::bundle::{Operation, TransferBundle};
use shared::metadata::SignedTargets;

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn wave_from_request_to_creation() {
    let env = Env::with(Opts {
        tags: 1,
        waves: 0,
        targets: 3,
    });
    // Without an offline targets key there is nothing to sign the wave with.
    let req = env.path("w.req.tufbundle");
    let err = env.fails(
        &["waves", "init", "wave-1", "3", "beta", "--bundle", s(&req)],
        1,
    );
    assert!(
        err.contains("not configured to sign Targets offline"),
        "{err}"
    );

    let root_key = take_root_offline(&env);
    let targets_key = add_targets_key(&env, &root_key);

    // Refusals of fioctl's wave rules.
    let err = env.fails(
        &[
            "waves",
            "init",
            "wave-0",
            "3",
            "production",
            "--bundle",
            s(&req),
        ],
        1,
    );
    assert!(
        err.contains("lower than or equal to production Targets"),
        "{err}"
    );
    let err = env.fails(
        &["waves", "init", "wave-0", "99", "beta", "--bundle", s(&req)],
        1,
    );
    assert!(err.contains("No targets found for version 99"), "{err}");
    env.fails(
        &["waves", "init", "wave-0", "x", "beta", "--bundle", s(&req)],
        2,
    );
    env.fails(
        &[
            "waves",
            "init",
            "wave-0",
            "3",
            "beta",
            "-E",
            "soon",
            "--bundle",
            s(&req),
        ],
        2,
    );

    // Dry run: the unsigned body, nothing written.
    let dry = env.ok(&[
        "waves",
        "init",
        "wave-1",
        "3",
        "beta",
        "-E",
        "2030-01-01T00:00:00Z",
        "--dry-run",
    ]);
    let body: serde_json::Value = serde_json::from_str(&dry).unwrap();
    assert_eq!(body["name"], "wave-1");
    assert_eq!(body["version"], "3");
    assert_eq!(body["targets"]["signed"]["expires"], "2030-01-01T00:00:00Z");
    assert_eq!(body["targets"]["signatures"], serde_json::json!([]));
    assert!(!req.exists());

    let out = env.ok(&[
        "waves",
        "init",
        "wave-1",
        "3",
        "beta",
        "-e",
        "30",
        "--bundle",
        s(&req),
    ]);
    let b = TransferBundle::read(&req).unwrap();
    assert_eq!(printed_fingerprint(&out), b.fingerprint());
    assert_eq!(
        b.operations(),
        &[Operation::SignWave {
            name: "wave-1".into()
        }]
    );
    let draft = &b.waves().unwrap()["wave-1"];
    assert!(draft.signatures.is_empty());
    assert_eq!(draft.signed.version, 3);
    for t in draft.signed.targets.values() {
        assert_eq!(
            t.custom.as_ref().unwrap()["tags"],
            serde_json::json!(["beta"])
        );
    }

    // A root-updates push of a wave response is pointed to `waves push`, and vice versa.
    let resp = env.path("w.resp.tufbundle");
    sign_wave(&req, &targets_key, &resp);
    let err = env.fails(&["updates", "push", s(&resp)], 2);
    assert!(err.contains("courier waves push"), "{err}");

    let out = env.ok(&["waves", "push", s(&resp)]);
    assert!(out.contains("Wave wave-1 created"), "{out}");
    let waves = env.view().waves();
    let w = waves
        .iter()
        .find(|w| w.name == "wave-1")
        .expect("the wave exists");
    assert_eq!(
        (w.version.as_str(), w.tag.as_str(), w.status),
        ("3", "beta", WaveStatus::Active)
    );
    // The server holds exactly the signed draft, with our signature.
    let served: SignedTargets = env.view().wave_targets("wave-1").unwrap().unwrap();
    assert_eq!(served.signed, draft.signed);
    assert!(served
        .signatures
        .iter()
        .any(|s| &s.keyid == targets_key.keyid()));

    let list = env.ok(&["waves", "list"]);
    assert!(list.contains("wave-1") && list.contains("beta"), "{list}");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["waves", "list", "--json"])).unwrap();
    assert_eq!(json["waves"][0]["name"], "wave-1");

    // Pushing it again: recognised, nothing sent.
    let before = env.view().waves();
    let out = env.ok(&["waves", "push", s(&resp)]);
    assert!(out.contains("this response was pushed before"), "{out}");
    assert_eq!(env.view().waves(), before);
}

#[test]
fn wave_response_signed_by_the_wrong_key_is_refused() {
    let env = Env::new();
    let root_key = take_root_offline(&env);
    add_targets_key(&env, &root_key);
    let req = env.path("w.req.tufbundle");
    env.ok(&["waves", "init", "wave-2", "2", "beta", "--bundle", s(&req)]);
    let resp = env.path("w.resp.tufbundle");
    // The root key is not a targets key.
    sign_wave(&req, &root_key, &resp);
    let err = env.fails(&["waves", "push", s(&resp)], 5);
    assert!(err.contains("not from an offline targets key"), "{err}");
    assert!(env.view().waves().is_empty());
}
