//! Keys on a real PKCS#11 module (SoftHSM2), through the `signer` binary: key generation on
//! the token, the first-time rotation into a token-held root key, a later rotation token →
//! token, moving the root key tarball → token (a key prepared with `keys generate`, RSA)
//! and back, a targets rotation with the targets key in a tarball and the root key on the
//! token, and the errors (wrong PIN, missing token, locked PIN). Every response is checked
//! with `shared::verify` exactly as a tarball-signed one.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use shared::bundle::{Operation, TransferBundle, Upload};
use shared::keys::{KeyId, PublicKey};
use shared::metadata::Role;
use shared::verify;

use crate::factory::Factory;
use crate::machine::{first_time_request, Machine};
use tests::softhsm::SoftHsm;

/// `signer` on machine `m` seeing the SoftHSM configuration `hsm`.
fn signer(m: &Machine, hsm: &SoftHsm) -> Command {
    let mut c = m.signer();
    c.env("SOFTHSM2_CONF", hsm.conf());
    c
}

/// `signer keys generate` on `token` with label `object`; returns the key id printed.
fn generate(m: &Machine, hsm: &SoftHsm, token: &str, object: &str, extra: &[&str]) -> KeyId {
    let out = signer(m, hsm)
        .args(["keys", "generate", "--role", "root", "--pkcs11"])
        .arg(hsm.uri(token, Some(object)))
        .arg("--pin-file")
        .arg(hsm.pin_file())
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = text
        .split_whitespace()
        .find(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no key id in {text}"));
    id.parse().unwrap()
}

/// Runs a signer operation that must succeed; returns its upload.
fn run_ok(mut c: Command, out: &Path) -> Upload {
    let o = c.arg("--yes").output().unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    TransferBundle::read(out).unwrap().upload().unwrap().clone()
}

/// Runs a signer operation that must fail with exit 1; returns its stderr.
fn run_err(c: Command) -> String {
    run_code(c, 1)
}

/// Runs a signer operation that must fail with exit `code`; returns its stderr.
fn run_code(mut c: Command, code: i32) -> String {
    let o = c.arg("--yes").output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(code),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!err.contains(tests::softhsm::PIN), "the PIN leaked: {err}");
    err
}

/// `rotate-offline-key --role ROLE` with the given key-source arguments.
fn rotate(
    m: &Machine,
    hsm: &SoftHsm,
    role: &str,
    req: &Path,
    out: &Path,
    args: &[String],
) -> Command {
    let mut c = signer(m, hsm);
    c.args(["rotate-offline-key", "--role", role])
        .args(args)
        .arg(req)
        .arg("-o")
        .arg(out);
    c
}

/// A rotation that must succeed, with `args` (plus `--pin-file` when `pin`); the staged
/// root must verify as the next root of `f`'s current one.
fn rotate_ok(
    f: &Factory,
    (m, hsm): (&Machine, &SoftHsm),
    role: &str,
    (req, out): (&Path, &Path),
    mut args: Vec<String>,
    pin: bool,
) -> Upload {
    if pin {
        args.extend(["--pin-file".to_string(), s(&hsm.pin_file())]);
    }
    let up = run_ok(rotate(m, hsm, role, req, out, &args), out);
    verify::verify_root_step(f.current(), &up.ci_root).unwrap();
    up
}

/// The one root key id of the staged CI root in `up`.
fn root_key(up: &Upload) -> KeyId {
    let ids = up.ci_root.signed.role_keyids(Role::Root);
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

/// Every root signature's method, checked to be the one of its key's type.
fn methods(up: &Upload) -> Vec<String> {
    up.ci_root
        .signatures
        .iter()
        .map(|s| s.method.clone())
        .collect()
}

fn tokens_json(m: &Machine) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(m.state().join("tokens.json")).unwrap()).unwrap()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
#[cfg_attr(
    not(has_softhsm2),
    ignore = "SoftHSM2 not installed: apt-get install softhsm2, or set OFFLINE_TUF_SOFTHSM2_MODULE (README: Tests)"
)]
fn generate_on_token_exports_only_the_public_key() {
    let m = Machine::new();
    let hsm = SoftHsm::create();
    hsm.init_token("factory-root");
    let pubfile = m.path("root-2026.pub");
    let id = generate(
        &m,
        &hsm,
        "factory-root",
        "root-2026",
        &["--out", &s(&pubfile)],
    );
    // The exported public key hashes to the printed key id, exactly as for tarball keys.
    let public = PublicKey::from_json(&std::fs::read(&pubfile).unwrap()).unwrap();
    assert_eq!(public.keyid().unwrap(), id);
    // Debian's SoftHSM 2.6.1 has EdDSA: the default key is Ed25519.
    assert_eq!(public.keytype(), "ED25519");
    let rec = &tokens_json(&m)[id.as_str()];
    assert_eq!(rec["token"], "factory-root");
    assert_eq!(rec["object"], "root-2026");
    assert_eq!(rec["role"], "root");
    m.signer().args(["audit", "verify"]).assert().success();
    // The label is taken now.
    signer(&m, &hsm)
        .args(["keys", "generate", "--role", "root", "--pkcs11"])
        .arg(hsm.uri_with_pin("factory-root", Some("root-2026")))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already holds a key labelled"));
    // RSA on request: RSA-4096.
    let rsa = generate(&m, &hsm, "factory-root", "rsa", &["--key-type", "rsa"]);
    let rec = &tokens_json(&m)[rsa.as_str()];
    assert_eq!(rec["keytype"], "RSA");
}

#[test]
#[cfg_attr(
    not(has_softhsm2),
    ignore = "SoftHSM2 not installed: apt-get install softhsm2, or set OFFLINE_TUF_SOFTHSM2_MODULE (README: Tests)"
)]
fn first_time_into_a_token_then_token_to_token_then_targets_in_a_tarball() {
    let mut f = Factory::new();
    let m = Machine::new();
    let hsm = SoftHsm::create();
    hsm.init_token("factory-root");
    hsm.init_token("factory-root-2");
    let recipient = m.set_up(&f);

    // First-time rotation: the new root key is created on the token.
    let req = first_time_request(&m, &f, &recipient);
    let out = m.path("resp1");
    let up = rotate_ok(
        &f,
        (&m, &hsm),
        "root",
        (&req, &out),
        vec![
            "--first-time".to_string(),
            "--keys".into(),
            hsm.uri("factory-root", Some("root-2026")),
        ],
        true,
    );
    let first = root_key(&up);
    assert_eq!(tokens_json(&m)[first.as_str()]["token"], "factory-root");
    assert_eq!(methods(&up), vec!["ed25519", "ed25519"]);
    f.apply(up.ci_root, up.prod_root);

    // Later rotation token → another token (its PIN from the URI's pin-source).
    let req = m.write_bundle("req2", &f.request(vec![Operation::RootRotation], None));
    // `inspect` finds the active root key on the token, like in a keys tarball.
    let shown = signer(&m, &hsm)
        .args([
            "inspect",
            &s(&req),
            "--keys",
            &hsm.uri("factory-root", None),
        ])
        .args(["--pin-file", &s(&hsm.pin_file())])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains(&format!(
            "the token labelled \"factory-root\": 1 key(s); active root: {}",
            first.short()
        )),
        "{text}"
    );
    // `status` says which token holds the missing root signatures' key (from tokens.json).
    let status = signer(&m, &hsm)
        .args(["status", &s(&req)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(4), "{text}");
    assert!(
        text.contains(&format!("missing {}", first.short()))
            && text.contains("token \"factory-root\""),
        "{text}"
    );
    let out = m.path("resp2");
    let up = rotate_ok(
        &f,
        (&m, &hsm),
        "root",
        (&req, &out),
        vec![
            "--keys".to_string(),
            hsm.uri_with_pin("factory-root", None),
            "--new-keys".into(),
            hsm.uri_with_pin("factory-root-2", Some("root-2027")),
        ],
        false,
    );
    let second = root_key(&up);
    assert_ne!(second, first);
    assert_eq!(tokens_json(&m)[second.as_str()]["token"], "factory-root-2");
    // Signed by the old key (first token) and the new key (second token).
    let signers: Vec<&KeyId> = up.ci_root.signatures.iter().map(|s| &s.keyid).collect();
    assert!(signers.contains(&&first) && signers.contains(&&second));
    f.apply(up.ci_root, up.prod_root);

    // Targets rotation: the targets key in a tarball, the root key on the token.
    f.add_prod_targets("main", 7);
    let req = m.write_bundle("req3", &f.request(vec![Operation::TargetsRotation], None));
    let out = m.path("resp3");
    let tk = m.path("targets.keys.tgz");
    let up = rotate_ok(
        &f,
        (&m, &hsm),
        "targets",
        (&req, &out),
        vec![
            "--keys".to_string(),
            hsm.uri("factory-root-2", None),
            "--targets-keys".into(),
            s(&tk),
        ],
        true,
    );
    assert!(tk.exists());
    let new_targets = up.ci_root.signed.role_keyids(Role::Targets).to_vec();
    assert_eq!(new_targets.len(), 2);
    // The online-signed production targets are endorsed explicitly, not by the rotation.
    assert!(up.targets_signatures.is_empty());
    let endorsed = m.path("resp4");
    signer(&m, &hsm)
        .args(["--yes", "sign-prod-targets", "--targets-keys"])
        .arg(&tk)
        .arg(&out)
        .arg("-o")
        .arg(&endorsed)
        .assert()
        .success();
    let up = TransferBundle::read(&endorsed)
        .unwrap()
        .upload()
        .unwrap()
        .clone();
    let doc = &f.prod_targets["main"];
    let msg = doc.canonical_signed().unwrap();
    let sig = &up.targets_signatures["main"][0];
    up.ci_root.signed.keys[&sig.keyid]
        .verify(&msg, sig)
        .expect("the targets signature verifies");
    m.signer().args(["audit", "verify"]).assert().success();
}

#[test]
#[cfg_attr(
    not(has_softhsm2),
    ignore = "SoftHSM2 not installed: apt-get install softhsm2, or set OFFLINE_TUF_SOFTHSM2_MODULE (README: Tests)"
)]
fn root_key_moves_from_a_tarball_to_a_token_rsa_and_back() {
    let mut f = Factory::new();
    let m = Machine::new();
    let hsm = SoftHsm::create();
    hsm.init_token("factory-root");
    let recipient = m.set_up(&f);
    let pin = ["--pin-file".to_string(), s(&hsm.pin_file())];
    let keys = m.path("root.keys.tgz");
    let req = first_time_request(&m, &f, &recipient);
    let out = m.path("resp1");
    let up = run_ok(
        rotate(
            &m,
            &hsm,
            "root",
            &req,
            &out,
            &["--first-time".into(), "--keys".into(), s(&keys)],
        ),
        &out,
    );
    let in_tarball = root_key(&up);
    f.apply(up.ci_root, up.prod_root);

    // Prepare an RSA key on the token, then rotate into it (tarball → token).
    let prepared = generate(&m, &hsm, "factory-root", "root-rsa", &["--key-type", "rsa"]);
    let req = m.write_bundle("req2", &f.request(vec![Operation::RootRotation], None));
    let out = m.path("resp2");
    let up = rotate_ok(
        &f,
        (&m, &hsm),
        "root",
        (&req, &out),
        vec![
            "--keys".to_string(),
            s(&keys),
            "--new-keys".into(),
            hsm.uri("factory-root", Some("root-rsa")),
        ],
        true,
    );
    assert_eq!(root_key(&up), prepared);
    let mut ms = methods(&up);
    ms.sort();
    assert_eq!(ms, vec!["ed25519", "rsassa-pss-sha256"]);
    f.apply(up.ci_root, up.prod_root);

    // Giving the same label again for the next key is refused (it names the current key).
    let req = m.write_bundle("req3", &f.request(vec![Operation::RootRotation], None));
    let out = m.path("resp3");
    let mut args = vec![
        "--keys".to_string(),
        hsm.uri("factory-root", Some("root-rsa")),
    ];
    args.extend(pin.clone());
    let err = run_code(rotate(&m, &hsm, "root", &req, &out, &args), 2);
    assert!(err.contains("already lists"), "{err}");
    assert!(!out.exists());

    // And back: token → a new tarball.
    let back = m.path("root2.keys.tgz");
    let up = rotate_ok(
        &f,
        (&m, &hsm),
        "root",
        (&req, &out),
        vec![
            "--keys".to_string(),
            hsm.uri("factory-root", None),
            "--new-keys".into(),
            s(&back),
        ],
        true,
    );
    assert!(back.exists());
    assert_ne!(root_key(&up), in_tarball);
    assert_ne!(root_key(&up), prepared);
}

#[test]
#[cfg_attr(
    not(has_softhsm2),
    ignore = "SoftHSM2 not installed: apt-get install softhsm2, or set OFFLINE_TUF_SOFTHSM2_MODULE (README: Tests)"
)]
fn token_errors_are_one_clear_line() {
    let f = Factory::new();
    let m = Machine::new();
    let hsm = SoftHsm::create();
    hsm.init_token("factory-root");
    let recipient = m.set_up(&f);
    let req = first_time_request(&m, &f, &recipient);
    let out = m.path("resp");
    let first = |uri: String, pin: &Path| {
        rotate(
            &m,
            &hsm,
            "root",
            &req,
            &out,
            &[
                "--first-time".into(),
                "--keys".into(),
                uri,
                "--pin-file".into(),
                s(pin),
            ],
        )
    };

    // Missing token.
    let err = run_err(first(hsm.uri("no-such-token", None), &hsm.pin_file()));
    assert!(
        err.contains("no token labelled \"no-such-token\" is present")
            && err.contains("insert the token labelled \"no-such-token\"")
            && err.contains("\"factory-root\""),
        "{err}"
    );
    // Wrong PIN.
    let err = run_err(first(hsm.uri("factory-root", None), &hsm.wrong_pin_file()));
    assert!(
        err.contains("wrong PIN for the token labelled \"factory-root\""),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Missing module.
    let bad = "pkcs11:token=factory-root?module-path=/nonexistent/module.so".to_string();
    let err = run_err(first(bad, &hsm.pin_file()));
    assert!(
        err.contains("cannot load the PKCS#11 module /nonexistent/module.so"),
        "{err}"
    );
    // No PIN source and no terminal.
    let o = rotate(
        &m,
        &hsm,
        "root",
        &req,
        &out,
        &[
            "--first-time".into(),
            "--keys".into(),
            hsm.uri("factory-root", None),
        ],
    );
    let err = run_err(o);
    assert!(
        err.contains("no PIN for the token labelled") && err.contains("--pin-file"),
        "{err}"
    );
    // Nothing was written, and no key was left on the token by the failed runs.
    assert!(!out.exists());
    assert!(!m.state().join("tokens.json").exists());

    // Declining (no --yes, no terminal) creates no key on the token at all: a token key is
    // created only after the plan is confirmed. The label is still free afterwards.
    let mut c = first(hsm.uri("factory-root", Some("declined")), &hsm.pin_file());
    c.assert()
        .code(1)
        .stderr(predicate::str::contains("needs confirmation"))
        .stdout(predicate::str::contains("once you confirm"));
    let fresh = generate(&m, &hsm, "factory-root", "declined", &[]);
    assert_eq!(fresh.as_str().len(), 64);

    // SoftHSM2 2.6.1 never locks the user PIN (no retry counter): after many wrong PINs
    // the right one still works. (A token that locks answers CKR_PIN_LOCKED or sets
    // CKF_USER_PIN_LOCKED; that message is checked in the unit tests of `signer::pkcs11`.)
    for _ in 0..10 {
        let err = run_err(first(hsm.uri("factory-root", None), &hsm.wrong_pin_file()));
        assert!(err.contains("wrong PIN"), "{err}");
    }
    let up = run_ok(
        first(hsm.uri("factory-root", Some("after")), &hsm.pin_file()),
        &out,
    );
    verify::verify_root_step(f.current(), &up.ci_root).unwrap();
}
