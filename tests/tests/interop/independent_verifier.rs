//! Roots and targets produced and signed by `shared` must verify with an independent
//! verifier written from the format reference (`verify_roots.py` beside this file: Python's
//! standard library only, Ed25519 and RSASSA-PSS written from RFC 8032 and RFC 8017; no code
//! shared with the Rust crates). A tampered chain must fail it.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use shared::keys::{KeyType, PrivateKey};
use shared::metadata::{Role, SignedRoot, SignedTargets, Timestamp};
use shared::test_support::{key, RootBuilder};
use shared::transform;

/// Root v1 of a fresh factory: `initial` is the root key, `online` every online role's key.
fn v1(initial: &PrivateKey, online: &PrivateKey) -> SignedRoot {
    RootBuilder::new(1)
        .expires(Timestamp::now().plus_days(300))
        .role(Role::Root, &[initial], 1)
        .online(online)
        .signed_by(&[initial])
}

fn run(py: &Path, doc: &serde_json::Value, dir: &Path) -> (bool, String) {
    let path = dir.join("chain.json");
    std::fs::write(&path, serde_json::to_vec(doc).unwrap()).unwrap();
    let out = Command::new(py)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/interop/verify_roots.py"
        ))
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
#[cfg_attr(
    not(has_python3),
    ignore = "Python 3 not installed: apt-get install python3, or set OFFLINE_TUF_PYTHON (README: Tests)"
)]
fn independent_verifier_accepts_shared_output_and_rejects_tampering() {
    let py = tests::tools::PYTHON3.require().path;
    let dir = tempfile::tempdir().unwrap();
    let (initial, online, offline1, t1) = (key(1), key(2), key(3), key(4));
    let offline2 = PrivateKey::generate(KeyType::Rsa).unwrap();
    let now = Timestamp::now();
    let r1 = v1(&initial, &online);

    // First-time rotation: the initial online root key is replaced by an offline key.
    let mut draft = r1.signed.clone();
    draft.version = 2;
    let d = transform::rotate_offline_root_key(
        &draft,
        initial.keyid(),
        offline1.public_key(),
        None,
        &now,
    )
    .unwrap();
    let (ci, prod) = transform::finalize(&d, None);
    let r2 = transform::sign_root(&ci, &[&offline1, &initial]).unwrap();
    let p2 = transform::sign_root(&prod, &[&offline1, &initial]).unwrap();

    // Second rotation to an RSA-4096 key plus the first offline targets key.
    let mut draft = r2.signed.clone();
    draft.version = 3;
    let d = transform::rotate_offline_root_key(
        &draft,
        offline1.keyid(),
        offline2.public_key(),
        None,
        &now,
    )
    .unwrap();
    let d = transform::rotate_offline_targets_key(&d, None, t1.public_key(), None, online.keyid())
        .unwrap();
    let (ci, prod) = transform::finalize(&d, Some(&p2.signed));
    let r3 = transform::sign_root(&ci, &[&offline2, &offline1]).unwrap();
    let p3 = transform::sign_root(&prod, &[&offline2, &offline1]).unwrap();

    // Production targets with tricky custom data, signed by the online and offline keys.
    let mut targets = SignedTargets::from_json(
        "{\"signatures\":[],\"signed\":{\"_type\":\"Targets\",\"expires\":\"2030-01-01T00:00:00Z\",\"version\":7,\
         \"targets\":{\"rpi-7\":{\"length\":0,\"hashes\":{\"sha256\":\"4f1c\"},\"custom\":{\"uri\":\"https://h/x?a=1&b=<2>\",\
         \"note\":\"line\\nnext\\ttab \\u001b é 日本\",\"big\":18446744073709551615,\"version\":\"7\"}}}}}"
            .as_bytes(),
    )
    .unwrap();
    for k in [&online, &t1] {
        let sig = transform::sign_targets(&targets, k).unwrap();
        targets.add_signature(sig);
    }

    let chain = |roots: &[&SignedRoot]| -> Vec<serde_json::Value> {
        roots
            .iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect()
    };
    let good = serde_json::json!({
        "chain": chain(&[&r1, &r2, &r3]),
        "prod": chain(&[&p3]),
        "targets": [{"prod": true, "doc": serde_json::to_value(&targets).unwrap()}],
    });
    let (ok, text) = run(&py, &good, dir.path());
    assert!(ok, "independent verifier refused shared's output: {text}");
    assert!(text.contains("OK 3 roots"), "{text}");

    // Tampering is caught: v3 without the previous root key's signature.
    let mut r3_bad = r3.clone();
    r3_bad.signatures.retain(|s| &s.keyid != offline1.keyid());
    let bad = serde_json::json!({"chain": chain(&[&r1, &r2, &r3_bad])});
    let (ok, text) = run(&py, &bad, dir.path());
    assert!(!ok, "tampered chain accepted: {text}");

    // An RSA signature with one bit flipped (the only signature of v3's new root key).
    let mut r3_bad = r3.clone();
    for s in r3_bad.signatures.iter_mut() {
        if &s.keyid == offline2.keyid() {
            let mut raw = base64::engine::general_purpose::STANDARD
                .decode(&s.sig)
                .unwrap();
            raw[100] ^= 0x01;
            s.sig = base64::engine::general_purpose::STANDARD.encode(raw);
        }
    }
    let bad = serde_json::json!({"chain": chain(&[&r1, &r2, &r3_bad])});
    let (ok, text) = run(&py, &bad, dir.path());
    assert!(!ok, "a corrupted RSA signature was accepted: {text}");

    // And one changed byte of the targets content.
    let mut t_bad = targets.clone();
    t_bad.signed.version = 8;
    let bad = serde_json::json!({
        "chain": chain(&[&r1, &r2, &r3]), "prod": chain(&[&p3]),
        "targets": [{"prod": true, "doc": serde_json::to_value(&t_bad).unwrap()}],
    });
    let (ok, text) = run(&py, &bad, dir.path());
    assert!(!ok, "tampered targets accepted: {text}");
}
