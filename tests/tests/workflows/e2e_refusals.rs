//! End to end, refusals (issue 8, workflow 8): a tampered bundle, a stale bundle (the server
//! changed since the pull), the wrong keys tarball, a bundle for another factory, a root
//! draft with a change nobody asked for, an expired pin. Each is refused with a clear error
//! and a non-zero exit status, the server's state is byte-identical before and after, the
//! keys tarballs are byte-identical, and no response is written.

use shared::bundle::{StepInput, TransferBundle};
use shared::keys::{KeyType, PrivateKey};
use shared::metadata::{Role, SignedRoot, Timestamp};
use shared::transform;
use tests::harness::{
    path_str, replace_first, tamper_member, History, Machine, World, WorldOptions,
};

/// `signer --yes rotate-offline-key --role root --keys KEYS IN -o OUT` on machine `m`.
fn rotate_root(
    w: &World,
    m: &Machine,
    keys: &std::path::Path,
    input: &std::path::Path,
    out: &std::path::Path,
) -> tests::harness::Run {
    w.rotate_root(m, keys, input, out, false)
}

/// A factory with its root key offline and an offline targets key in a separate tarball
/// (root v3, made by `factory-sim init --offline-keys`), pinned on the root key holder's
/// laptop.
fn factory(name: &str) -> (World, std::path::PathBuf, std::path::PathBuf) {
    let w = World::new(WorldOptions {
        factory: name.to_string(),
        tags: 1,
        history: History::Offline,
        ..WorldOptions::default()
    });
    let keys = w.offline.path("root.keys.tgz");
    let targets = w.offline.path("targets.keys.tgz");
    w.pin_trust(&w.offline, &[]);
    assert_eq!(w.device_check().ci_version, 3);
    (w, keys, targets)
}

#[test]
fn tampered_stale_wrong_keys_and_foreign_bundles_are_refused() {
    let (w, keys, targets) = factory("acme");
    let (other, other_keys, _) = factory("globex");
    let req = w.usb("rotate.req.tufbundle");
    let resp = w.usb("rotate.resp.tufbundle");
    w.request_rotation("root", &req);

    // Tampered request: the staged root's version changed inside transaction.json.
    let tampered = w.usb("tampered.req.tufbundle");
    tamper_member(&req, &tampered, "transaction.json", |d| {
        replace_first(d, "\\\"version\\\":4", "\\\"version\\\":5")
    });
    let watch = w.watch(&[&keys, &targets, &resp]);
    rotate_root(&w, &w.offline, &keys, &tampered, &resp)
        .fails()
        .says("was altered");
    w.signer(&w.offline, ["inspect", path_str(&tampered)])
        .fails();
    watch.assert_unchanged();

    // Wrong keys tarball: the targets tarball, and another factory's root tarball.
    let watch = w.watch(&[&keys, &targets, &other_keys, &resp]);
    rotate_root(&w, &w.offline, &targets, &req, &resp)
        .fails()
        .says("root key");
    rotate_root(&w, &w.offline, &other_keys, &req, &resp)
        .fails()
        .says("root key");
    watch.assert_unchanged();

    // The genuine response...
    rotate_root(&w, &w.offline, &keys, &req, &resp).ok();
    let keys_after = std::fs::read(&keys).unwrap();

    // ...tampered on its way back (bytes changed: digests break).
    let bad = w.usb("tampered.resp.tufbundle");
    tamper_member(&resp, &bad, "upload.json", |d| {
        replace_first(d, "\"version\":4", "\"version\":5")
    });
    let watch = w.watch(&[&keys, &targets]);
    w.courier(["updates", "push", path_str(&bad), "--apply"])
        .fails()
        .says("was altered");
    watch.assert_unchanged();

    // ...or rebuilt as a well-formed response whose roots were changed after signing (an
    // attacker's key added to the root role, the signatures kept).
    let forged = w.usb("forged.resp.tufbundle");
    {
        let genuine = TransferBundle::read(&resp).unwrap();
        let mut upload = genuine.upload().unwrap().clone();
        let attacker = PrivateKey::generate(KeyType::Ed25519).unwrap();
        for root in [&mut upload.ci_root, &mut upload.prod_root] {
            root.signed =
                transform::add_offline_key(&root.signed, Role::Root, attacker.public_key(), None)
                    .unwrap();
        }
        let step = StepInput {
            signer: shared::bundle::Writer::new("signer", "0.1.0"),
            time: Timestamp::now(),
            operations: vec![shared::bundle::Operation::SignRoot],
            authorized: vec![],
            upload,
        };
        let attacker_identity = shared::attestation::SigningIdentity::generate();
        std::fs::write(
            &forged,
            genuine
                .respond(step, &attacker_identity)
                .unwrap()
                .to_bytes(shared::archive::Compression::Gzip)
                .unwrap(),
        )
        .unwrap();
    }
    let watch = w.watch(&[&keys, &targets]);
    let run = w
        .courier(["updates", "push", path_str(&forged), "--apply"])
        .fails();
    run.says("signature");
    watch.assert_unchanged();

    // A response from another factory (its own genuine rotation) is not for this courier.
    let foreign_req = other.usb("rotate.req.tufbundle");
    let foreign_resp = other.usb("rotate.resp.tufbundle");
    other
        .courier([
            "rotate-offline-key",
            "--role",
            "root",
            "--bundle",
            path_str(&foreign_req),
        ])
        .ok();
    // Our signer, pinned to acme's root, refuses globex's request.
    let watch = w.watch(&[&keys, &targets, &resp]);
    let mine = w.usb("foreign-signed-here.tufbundle");
    rotate_root(&w, &w.offline, &keys, &foreign_req, &mine)
        .fails()
        .says("pinned");
    assert!(!mine.exists());
    watch.assert_unchanged();
    rotate_root(
        &other,
        &other.offline,
        &other_keys,
        &foreign_req,
        &foreign_resp,
    )
    .ok();
    let watch = w.watch(&[&keys, &targets]);
    w.courier(["updates", "push", path_str(&foreign_resp), "--apply"])
        .fails()
        .says("globex");
    watch.assert_unchanged();
    other
        .courier(["updates", "push", path_str(&foreign_resp), "--apply"])
        .ok();

    // Stale: the server's transaction changes after the pull (another admin stages new
    // online keys); the signed response no longer matches it.
    w.courier(["updates", "rotate-online-key", "--role", "timestamp"])
        .ok();
    let watch = w.watch(&[&keys, &targets]);
    let run = w
        .courier(["updates", "push", path_str(&resp), "--apply"])
        .fails()
        .says("stale bundle");
    assert_eq!(run.code, 5);
    watch.assert_unchanged();
    assert_eq!(std::fs::read(&keys).unwrap(), keys_after);

    // Nothing of it reached the server: cancel, and the factory is still version 3.
    w.courier(["updates", "cancel"]).ok();
    let report = w.device_check();
    assert_eq!(report.ci_version, 3);
    assert_eq!(other.device_check().ci_version, 4);
}

#[test]
fn an_unauthorized_change_in_the_staged_root_is_refused() {
    let (w, keys, targets) = factory("acme");
    w.courier([
        "updates",
        "init",
        "-m",
        "Rotate TUF root offline signing key",
    ])
    .ok();
    // Someone with API access slips an extra root key into the staged draft with a plain
    // HTTP PUT.
    let updates = format!("/ota/repo/{}/api/v1/user_repo/root/updates", w.factory);
    let state: serde_json::Value = serde_json::from_slice(&w.api_get(&updates).unwrap()).unwrap();
    let staged =
        |k: &str| SignedRoot::from_json(state["updated"][k].as_str().unwrap().as_bytes()).unwrap();
    let attacker = PrivateKey::generate(KeyType::Ed25519).unwrap();
    let mut ci = staged("ci-root");
    let mut prod = staged("prod-root");
    for root in [&mut ci, &mut prod] {
        root.signed =
            transform::add_offline_key(&root.signed, Role::Root, attacker.public_key(), None)
                .unwrap();
    }
    let txid = w.view().transaction().unwrap().txid;
    let body = serde_json::json!({
        "txid": txid,
        "ci-root": serde_json::from_slice::<serde_json::Value>(&ci.to_json().unwrap()).unwrap(),
        "prod-root": serde_json::from_slice::<serde_json::Value>(&prod.to_json().unwrap()).unwrap(),
    });
    let (status, text) = w.api_send(reqwest::Method::PUT, &updates, &body);
    assert!((200..300).contains(&status), "PUT refused: {status} {text}");

    let req = w.usb("unexplained.req.tufbundle");
    let resp = w.usb("unexplained.resp.tufbundle");
    w.courier([
        "updates",
        "pull",
        "--op",
        "rotate-root",
        "--bundle",
        path_str(&req),
    ])
    .ok();
    let watch = w.watch(&[&keys, &targets, &resp]);
    let run = w.signer(&w.offline, ["inspect", path_str(&req)]).fails();
    assert_eq!(run.code, 5, "inspect: signing needs a typed confirmation");
    run.says(attacker.keyid().as_str().get(..8).unwrap())
        .says("NOT AUTHORIZED");
    rotate_root(&w, &w.offline, &keys, &req, &resp)
        .fails()
        .says("refusing to sign")
        .says(attacker.keyid().as_str());
    w.signer(
        &w.offline,
        [
            "--yes",
            "sign",
            "--keys",
            path_str(&keys),
            path_str(&req),
            "-o",
            path_str(&resp),
        ],
    )
    .fails()
    .says("refusing to sign");
    watch.assert_unchanged();
    w.courier(["updates", "cancel"]).ok();
    assert_eq!(w.device_check().ci_version, 3);
}

#[test]
fn an_expired_pin_is_refused() {
    // A factory created 400 days ago whose root v1 expired after 30 days.
    let created = Timestamp::now().plus_days(-400);
    let w = World::new(WorldOptions {
        root_expires_days: 30,
        created: Some(created),
        ..WorldOptions::default()
    });
    let keys = w.offline.path("root.keys.tgz");
    w.connect_identity(&w.offline);
    let req = w.usb("first.req.tufbundle");
    let resp = w.usb("first.resp.tufbundle");
    w.courier([
        "rotate-offline-key",
        "--role",
        "root",
        "--first-time",
        "--bundle",
        path_str(&req),
    ])
    .ok();
    // Pinning an expired root needs an explicit override...
    let root_file = w.write_usb("root.json", w.courier(["show-root"]).ok().stdout);
    w.signer(&w.offline, ["--yes", "trust", "init", path_str(&root_file)])
        .fails()
        .says("expired");
    w.pin_trust(&w.offline, &["--allow-expired"]);
    // ...and signing against an expired pin is refused: no tarball, no response.
    let watch = w.watch(&[&keys, &resp]);
    let run = w.signer(&w.offline, ["inspect", path_str(&req)]).fails();
    assert_eq!(run.code, 3);
    run.says("expired");
    w.signer(
        &w.offline,
        [
            "--yes",
            "rotate-offline-key",
            "--role",
            "root",
            "--first-time",
            "--keys",
            path_str(&keys),
            path_str(&req),
            "-o",
            path_str(&resp),
        ],
    )
    .fails()
    .says("expired");
    watch.assert_unchanged();
    assert!(!keys.exists() && !resp.exists());
    assert_eq!(w.view().version(), 1);
}
