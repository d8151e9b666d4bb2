//! End to end, waves (issue 8, workflow 6): `courier waves init` builds the unsigned wave
//! targets, the targets key holder signs them offline (`signer sign-wave`), `courier waves
//! push` creates the wave; the wave verifies under the production root like a device checks.

use shared::metadata::Role;
use shared::verify;
use tests::harness::{path_str, World, WorldOptions};

#[test]
fn wave_init_sign_offline_push() {
    // A new factory with six CI builds; production tags come from waves once the factory
    // has an offline targets key.
    let w = World::new(WorldOptions {
        targets: 6,
        ..WorldOptions::default()
    });
    let tag = "production".to_string();
    let root_keys = w.offline.path("root.keys.tgz");
    // The targets holder keeps the targets key passphrase-encrypted.
    let targets_keys = w.offline2.path("targets.keys.tgz.age");
    let pass = w.offline2.path("passphrase.txt");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    w.first_time_rotation(&w.offline, &root_keys);

    // A wave needs an offline targets key: refused before one exists.
    let early = w.usb("early.req.tufbundle");
    w.courier([
        "waves",
        "init",
        "early",
        "6",
        &tag,
        "--bundle",
        path_str(&early),
    ])
    .fails();
    assert!(w.view().waves().is_empty());

    // The targets key lives on the second offline machine (targets holder); the root holder
    // signs the roots.
    w.pin_trust(&w.offline2, &[]);
    // Two key holders' laptops: they pin each other's signing identities.
    w.pin_cosigners();
    let req = w.usb("t.req.tufbundle");
    let step = w.usb("t.step1.tufbundle");
    let resp = w.usb("t.resp.tufbundle");
    w.request_rotation("targets", &req);
    let rotation = w
        .signer(
            &w.offline2,
            [
                "--yes",
                "rotate-offline-key",
                "--role",
                "targets",
                "--targets-keys",
                path_str(&targets_keys),
                "--passphrase-file",
                path_str(&pass),
                path_str(&req),
                "-o",
                path_str(&step),
            ],
        )
        .ok();
    // The production tag was signed by the online key only: endorsed explicitly.
    w.endorse_left_targets(
        &w.offline2,
        &targets_keys,
        &rotation,
        &step,
        &["--passphrase-file", path_str(&pass)],
    );
    w.sign_with(&w.offline, &root_keys, &step, &resp);
    w.push_apply(&resp);
    let view = w.view();
    let t1: Vec<_> = view
        .prod_root()
        .unwrap()
        .unwrap()
        .signed
        .role_keyids(Role::Targets)
        .iter()
        .filter(|k| **k != view.online_keys().targets)
        .cloned()
        .collect();
    assert_eq!(t1.len(), 1);
    // Encrypted with the passphrase (age, scrypt): each open costs about a second, so the
    // suite opens it only a few times more.
    assert!(std::fs::read(&targets_keys)
        .unwrap()
        .starts_with(b"age-encryption.org/v1"));
    // The first wave (build 5) creates the production tag.
    w.release_wave(
        &w.offline2,
        &targets_keys,
        ("wave-5", 5, &tag),
        &["--passphrase-file", path_str(&pass)],
    );

    // The wave.
    let req = w.usb("wave.req.tufbundle");
    let resp = w.usb("wave.resp.tufbundle");
    w.courier(["waves", "init", "wave-6", "6", &tag, "--dry-run"])
        .ok()
        .says("\"version\"");
    w.courier([
        "waves",
        "init",
        "wave-6",
        "6",
        &tag,
        "--bundle",
        path_str(&req),
    ])
    .ok();
    assert_eq!(w.view().waves().len(), 1, "nothing created before the push");
    w.signer(&w.offline2, ["inspect", path_str(&req)])
        .ok()
        .says("wave-6");
    let sign_wave = |passphrase: &std::path::Path| {
        w.signer(
            &w.offline2,
            [
                "--yes",
                "sign-wave",
                "wave-6",
                "--targets-keys",
                path_str(&targets_keys),
                "--passphrase-file",
                path_str(passphrase),
                path_str(&req),
                "-o",
                path_str(&resp),
            ],
        )
    };
    // A wrong passphrase: refused, nothing written.
    let wrong = w.offline2.path("wrong.txt");
    std::fs::write(&wrong, "incorrect\n").unwrap();
    let watch = w.watch(&[&targets_keys, &resp]);
    sign_wave(&wrong).fails().says("passphrase");
    watch.assert_unchanged();
    sign_wave(&pass).ok();
    let version = w.view().version();
    w.courier(["waves", "push", path_str(&resp)])
        .ok()
        .says("wave-6");
    w.courier(["waves", "list"]).ok().says("wave-6");

    let view = w.view();
    assert_eq!(view.version(), version, "a wave does not touch the root");
    let waves = view.waves();
    assert_eq!(waves.len(), 2);
    assert_eq!(
        (
            waves[1].name.as_str(),
            waves[1].version.as_str(),
            waves[1].tag.as_str()
        ),
        ("wave-6", "6", tag.as_str())
    );
    let doc = view.wave_targets("wave-6").unwrap().unwrap();
    let signers: Vec<_> = doc.signatures.iter().map(|s| s.keyid.clone()).collect();
    assert!(signers.contains(&t1[0]), "{signers:?}");
    assert!(signers.contains(&view.online_keys().targets), "{signers:?}");
    // The wave holds build 6 for the tag, plus what production already has.
    let custom_has = |name: &str, version: &str| {
        doc.signed.targets.get(name).is_some_and(|t| {
            let c = t.custom.as_ref().unwrap();
            c["version"] == version && c["tags"].as_array().unwrap().iter().any(|x| x == &tag)
        })
    };
    assert!(
        doc.signed.targets.keys().any(|n| custom_has(n, "6")),
        "no target of version 6 tagged {tag}: {:?}",
        doc.signed.targets.keys().collect::<Vec<_>>()
    );
    let prod = view.prod_targets(&tag).unwrap().unwrap();
    for name in prod.signed.targets.keys() {
        assert!(doc.signed.targets.contains_key(name), "{name} dropped");
    }
    let prod_root = view.prod_root().unwrap().unwrap();
    verify::verify_targets(&prod_root.signed, &doc, "wave-6").unwrap();

    let report = w.device_check();
    assert!(
        report.targets_checked.contains(&"wave:wave-6".to_string()),
        "{report:?}"
    );
}
