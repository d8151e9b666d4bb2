//! The `signer` binary, driven as a person would: help, trust, identity, inspect, the
//! first-time rotation, a targets rotation, and the refusals (no terminal without --yes,
//! tampered bundle, leftover temporary file, unexplained change, usage errors).

#[path = "common/factory.rs"]
mod factory;
#[path = "common/machine.rs"]
mod machine;

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use shared::archive::Compression;
use shared::bundle::{Operation, TransferBundle};
use shared::metadata::Role;
use shared::verify;

use factory::Factory;
use machine::{first_time_request, Machine};

fn rotate_root_first(m: &Machine, req: &Path, keys: &Path, out: &Path) -> Command {
    let mut c = m.signer();
    c.args([
        "rotate-offline-key",
        "--role",
        "root",
        "--first-time",
        "--keys",
    ])
    .arg(keys)
    .arg(req)
    .arg("-o")
    .arg(out);
    c
}

#[test]
fn help_reads_well() {
    let m = Machine::new();
    m.signer()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("rotate-offline-key"))
        .stdout(predicate::str::contains("inspect"))
        .stdout(predicate::str::contains("Exit codes"));
    m.signer()
        .args(["rotate-offline-key", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--first-time"))
        .stdout(predicate::str::contains("--targets-keys"));
    // Usage errors exit with 2.
    m.signer()
        .args(["rotate-offline-key", "--role", "snapshot"])
        .assert()
        .code(2);
}

#[test]
fn first_time_then_targets_rotation_through_the_binary() {
    let mut f = Factory::new();
    let m = Machine::new();
    let recipient = m.set_up(&f);
    let req = first_time_request(&m, &f, &recipient);

    m.signer()
        .arg("inspect")
        .arg(&req)
        .assert()
        .success()
        .stdout(predicate::str::contains("Fingerprint"))
        .stdout(predicate::str::contains("--- ci-root v1 (current)"))
        .stdout(predicate::str::contains("Verdict: the bundle verifies"));
    let json = m
        .signer()
        .args(["inspect", "--json"])
        .arg(&req)
        .output()
        .unwrap();
    assert!(json.status.success());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["must-not-sign"], false);
    assert_eq!(v["factory"], "acme");

    let keys = m.path("root.keys.tgz");
    let out = m.path("resp.tufbundle");
    // No terminal, no --yes: refused, nothing written.
    rotate_root_first(&m, &req, &keys, &out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("needs confirmation"));
    assert!(!keys.exists() && !out.exists());

    rotate_root_first(&m, &req, &keys, &out)
        .arg("--yes")
        .assert()
        .success()
        .stdout(predicate::str::contains("Wrote the response"));
    assert!(keys.exists() && out.exists());
    let resp = TransferBundle::read(&out).unwrap();
    let up = resp.upload().unwrap().clone();
    verify::verify_root_step(f.current(), &up.ci_root).unwrap();

    // Again: this signer remembers that it took the initial key offline already.
    rotate_root_first(&m, &req, &keys, &m.path("again"))
        .arg("--yes")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "already took factory acme's initial root key offline",
        ));

    // The server applies it; the next bundle is a targets rotation.
    f.apply(up.ci_root, up.prod_root);
    f.add_prod_targets("main", 7);
    let req2 = m.write_bundle("req2", &f.request(vec![Operation::TargetsRotation], None));
    let tk = m.path("targets.keys.tgz");
    let out2 = m.path("resp2");
    m.signer()
        .args(["rotate-offline-key", "--role", "targets", "--keys"])
        .arg(&keys)
        .arg("--targets-keys")
        .arg(&tk)
        .arg(&req2)
        .args(["-o"])
        .arg(&out2)
        .arg("--yes")
        .assert()
        .success()
        .stdout(predicate::str::contains("leave prod-targets/main"))
        .stdout(predicate::str::contains("trusted root advanced"));
    let up2 = TransferBundle::read(&out2)
        .unwrap()
        .upload()
        .unwrap()
        .clone();
    assert_eq!(up2.prod_root.signed.role_keyids(Role::Targets).len(), 2);
    // Signed by the online key only: endorsed explicitly, not by the rotation.
    assert!(up2.targets_signatures.is_empty());
    let out3 = m.path("resp3");
    m.signer()
        .args(["sign-prod-targets", "--tags", "main", "--targets-keys"])
        .arg(&tk)
        .arg(&out2)
        .arg("-o")
        .arg(&out3)
        .arg("--yes")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "sign prod-targets/main with targets key",
        ));
    let up3 = TransferBundle::read(&out3)
        .unwrap()
        .upload()
        .unwrap()
        .clone();
    assert!(up3.targets_signatures.contains_key("main"));
    m.signer().args(["audit", "verify"]).assert().success();
}

#[test]
fn refusals_through_the_binary() {
    let f = Factory::new();
    let m = Machine::new();
    let recipient = m.set_up(&f);
    let req = first_time_request(&m, &f, &recipient);

    // Tampered bundle: one byte of transaction.json changed.
    let mut bytes = TransferBundle::read(&req)
        .unwrap()
        .to_bytes(Compression::None)
        .unwrap();
    let pos = bytes.windows(7).position(|w| w == b"STARTED").unwrap();
    bytes[pos + 1] = b'X';
    let bad = m.path("tampered.tufbundle");
    std::fs::write(&bad, &bytes).unwrap();
    m.signer()
        .arg("inspect")
        .arg(&bad)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("transaction.json"));

    // Leftover temporary file next to the keys file.
    let keys = m.path("root.keys.tgz");
    std::fs::write(m.path(".root.keys.tgz.0123456789abcdef.tmp"), b"x").unwrap();
    rotate_root_first(&m, &req, &keys, &m.path("out"))
        .arg("--yes")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("interrupted"))
        .stderr(predicate::str::contains("NEW PRIVATE KEY"));
    assert!(!keys.exists());

    // A staged draft with an extra root key: inspect says it needs a typed confirmation,
    // sign --yes refuses it.
    let mut ci = f.server_draft();
    let extra = factory::key(44);
    ci.signed =
        shared::transform::add_offline_key(&ci.signed, Role::Root, extra.public_key(), None)
            .unwrap();
    let tx = f.transaction(false, &ci, None);
    let odd = m.write_bundle("odd", &f.request_with(vec![Operation::SignRoot], None, &tx));
    m.signer()
        .arg("inspect")
        .arg(&odd)
        .assert()
        .code(5)
        .stdout(predicate::str::contains("NOT AUTHORIZED"))
        .stdout(predicate::str::contains(extra.keyid().as_str()));
    let mut tb = shared::tarball::KeysTarball::new();
    tb.add_private_key(Role::Root, &f.first_root).unwrap();
    let k2 = m.path("k2.tgz");
    tb.write_new(&k2).unwrap();
    m.signer()
        .arg("sign")
        .arg("--keys")
        .arg(&k2)
        .arg(&odd)
        .arg("-o")
        .arg(m.path("o2"))
        .arg("--yes")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("refusing to sign"))
        .stderr(predicate::str::contains(extra.keyid().as_str()));
    assert!(!m.path("o2").exists());
}

#[test]
fn status_lists_missing_signatures_and_who_holds_the_keys() {
    let mut f = Factory::new();
    let m = Machine::new();
    let recipient = m.set_up(&f);
    let req = first_time_request(&m, &f, &recipient);
    // Nothing signed yet: the initial key is needed, no keys file on this machine has it.
    m.signer()
        .arg("status")
        .arg(&req)
        .assert()
        .code(4)
        .stdout(predicate::str::contains(format!(
            "CI root: 0 of 1 root signatures, missing {} (keys file unknown here",
            f.first_root.keyid().short()
        )));

    let keys = m.path("root.keys.tgz");
    let out = m.path("resp.tufbundle");
    rotate_root_first(&m, &req, &keys, &out)
        .arg("--yes")
        .assert()
        .success();
    m.signer()
        .arg("status")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "CI root: 1 of 1 root signatures — complete",
        ))
        .stdout(predicate::str::contains("Every threshold is met."));

    // Applied; the next transaction only re-signs: the new key is named with the keys file
    // it was created in (audit log), its date and owner (x-key-owners).
    let up = TransferBundle::read(&out)
        .unwrap()
        .upload()
        .unwrap()
        .clone();
    let new_key = up.ci_root.signed.role_keyids(Role::Root)[0].clone();
    f.apply(up.ci_root, up.prod_root);
    f.add_prod_targets("main", 7);
    let req2 = m.write_bundle("req2", &f.request(vec![Operation::SignRoot], None));
    let today = f.now.date();
    m.signer()
        .arg("status")
        .arg(&req2)
        .assert()
        .code(4)
        .stdout(predicate::str::contains(format!(
            "CI root: 0 of 1 root signatures, missing {} (root.keys.tgz, created {today}; owner ",
            new_key.short()
        )))
        .stdout(predicate::str::contains(
            "production root: 0 of 1 root signatures",
        ))
        .stdout(predicate::str::contains("production targets main: "));
    // inspect shows the same checklist.
    m.signer()
        .arg("inspect")
        .arg(&req2)
        .assert()
        .stdout(predicate::str::contains(
            "Signatures (missing-signature checklist):",
        ))
        .stdout(predicate::str::contains(format!(
            "CI root: 0 of 1 root signatures, missing {}",
            new_key.short()
        )));
}

#[test]
fn digest_confirmation_is_configured_per_machine_and_yes_still_works() {
    let f = Factory::new();
    let m = Machine::new();
    let recipient = m.set_up(&f);
    let req = first_time_request(&m, &f, &recipient);
    let keys = m.path("root.keys.tgz");
    let out = m.path("resp.tufbundle");
    // An unknown mode is a usage error naming the variable's values.
    rotate_root_first(&m, &req, &keys, &out)
        .env("SIGNER_ROOT_CONFIRMATION", "maybe")
        .arg("--yes")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("possible values: yes, digest"));
    // Digest confirmation without a terminal and without --yes: refused, nothing written.
    rotate_root_first(&m, &req, &keys, &out)
        .env("SIGNER_ROOT_CONFIRMATION", "digest")
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "Draft CI root v2 digest (SHA-256 of its signed part): ",
        ))
        .stderr(predicate::str::contains("needs confirmation"));
    assert!(!keys.exists() && !out.exists());
    // --yes answers it for scripts.
    rotate_root_first(&m, &req, &keys, &out)
        .env("SIGNER_ROOT_CONFIRMATION", "digest")
        .arg("--yes")
        .assert()
        .success()
        .stdout(predicate::str::contains("Proceed? yes (--yes)"));
    assert!(out.exists());
}
