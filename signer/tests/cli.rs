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
use shared::test_support::cases::{run_cases, Case};
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

/// Every file under `dir` with its content (to tell that a refused command wrote nothing).
fn files_under(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut all = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let content = std::fs::read(&p).unwrap();
                all.insert(p, content);
            }
        }
    }
    all
}

/// Usage errors of the `signer keys` commands exit with status 2, as `signer --help` says:
/// those clap finds, and those found once the command runs (a flag that must be given, K and
/// N that make no split, a keyid the file does not carry, a pin to choose). Each says what to
/// give, the ones found at run time in one line, and none writes or changes a file.
#[test]
fn usage_errors_of_the_keys_commands_exit_2() {
    let f = Factory::new();
    let m = Machine::new();
    m.set_up(&f);
    // A second pin (for factory globex): the commands that use the pin need --factory now.
    m.signer()
        .args(["trust", "init", "--yes", "--factory", "globex"])
        .arg(m.path("root.json"))
        .assert()
        .success();
    let keys = m.path("root.keys.tgz");
    let mut tarball = shared::tarball::KeysTarball::new();
    tarball.add_private_key(Role::Root, &f.first_root).unwrap();
    signer::keystore::save_new(
        &keys,
        &tarball,
        &signer::keystore::PassphraseSource::auto(None),
    )
    .unwrap();
    // The numbered lines of a paper sheet of that key, without its `keyid:` line.
    let sheet = signer::keys::sheet::render(
        &f.first_root,
        &signer::keys::sheet::SheetInfo {
            role: "root".into(),
            created_at: None,
            printed_at: "2026-01-01T00:00:00Z".into(),
            source: "root.keys.tgz".into(),
        },
    )
    .unwrap();
    let lines: Vec<&str> = sheet
        .lines()
        .filter(|l| {
            l.trim_start()
                .split_once(": ")
                .is_some_and(|(n, _)| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    assert!(!lines.is_empty(), "{}", &*sheet);
    std::fs::write(m.path("groups.txt"), lines.join("\n")).unwrap();
    let (k, root, groups) = ("root.keys.tgz", "root.json", "groups.txt");
    let no_label = "pkcs11:token=factory-root?module-path=/nonexistent/libmodule.so";
    let split = |shares, threshold| {
        [
            "split",
            "--keys",
            k,
            "--factory",
            "acme",
            "--shares",
            shares,
            "--threshold",
            threshold,
            "--out",
            "sheets",
        ]
    };

    // (case, arguments after `keys`, what the message names; None: clap's usage message)
    let cases: &[(&str, &[&str], Option<&str>)] = &[
        (
            "export-root without its acknowledgement",
            &["export-root", "--keys", k, "--root", root, "--out", "k.sec"],
            Some("--i-understand-this-exports-a-private-key"),
        ),
        (
            "split with a threshold of 1",
            &split("3", "1"),
            Some("need 2 ≤ threshold ≤ shares ≤ 255"),
        ),
        (
            "split with a threshold above the shares",
            &split("3", "4"),
            Some("need 2 ≤ threshold ≤ shares ≤ 255"),
        ),
        (
            "split into more than 255 shares",
            &split("256", "2"),
            Some("need 2 ≤ threshold ≤ shares ≤ 255"),
        ),
        (
            "restore lines without a keyid and no --keyid",
            &[
                "restore",
                "--groups-file",
                groups,
                "--keys",
                "restored.keys.tgz",
            ],
            Some("give --keyid KEYID"),
        ),
        (
            "list with two pins and no --factory",
            &["list", "--keys", k],
            Some("give --factory NAME"),
        ),
        (
            "print with two pins and no --factory",
            &["print", "--keys", k, "--out", "sheet.txt"],
            Some("give --factory NAME"),
        ),
        (
            "export-root with two pins and no --factory",
            &[
                "export-root",
                "--keys",
                k,
                "--out",
                "k.sec",
                "--i-understand-this-exports-a-private-key",
            ],
            Some("give --factory NAME"),
        ),
        (
            "drill with two pins and no --factory",
            &["drill", "--keys", k],
            Some("give --factory NAME"),
        ),
        (
            "generate with a URI that names no key label",
            &["generate", "--role", "root", "--pkcs11", no_label],
            Some("add ;object=<label>"),
        ),
        (
            "restore without a sheet",
            &["restore", "--keys", "restored.keys.tgz"],
            None,
        ),
        (
            "restore with both a sheet and lines",
            &[
                "restore",
                "--from",
                "a.txt",
                "--groups-file",
                groups,
                "--keys",
                "restored.keys.tgz",
            ],
            None,
        ),
        (
            "restore with a keyid that is none",
            &[
                "restore",
                "--groups-file",
                groups,
                "--keyid",
                "nothex",
                "--keys",
                "restored.keys.tgz",
            ],
            None,
        ),
        (
            "combine without sheets",
            &["combine", "--out", "restored.keys.tgz"],
            None,
        ),
        ("drill without a backup", &["drill"], None),
        (
            "drill with a bundle and a factory",
            &["drill", "--keys", k, "--bundle", "b", "--factory", "acme"],
            None,
        ),
        (
            "export-root without --out",
            &["export-root", "--keys", k],
            None,
        ),
        ("encrypt without --keys", &["encrypt"], None),
        (
            "split with a number that is none",
            &split("three", "2"),
            None,
        ),
        (
            "list with fioctl's --sign",
            &["list", "--keys", k, "--sign"],
            Some("there is no --sign"),
        ),
        (
            "list with an unknown flag",
            &["list", "--keys", k, "--all-keys"],
            None,
        ),
        ("an unknown keys command", &["shred", "--keys", k], None),
    ];
    let before = files_under(m.tmp.path());
    let cases: Vec<Case<_>> = cases
        .iter()
        .map(|&(case, args, says)| Case::new(case, (args, says)))
        .collect();
    run_cases("signer keys usage errors", &cases, |case, &(args, says)| {
        let out = m.signer().arg("keys").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{case}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        match says {
            Some(text) => {
                assert_eq!(stderr.lines().count(), 1, "{case}: {stderr}");
                assert!(
                    stderr.starts_with("error: ") && stderr.contains(text),
                    "{case}: {stderr}"
                );
            }
            // clap's own message: the error, then the usage or where to read more.
            None => assert!(
                stderr.starts_with("error: ")
                    && (stderr.contains("Usage: signer keys") || stderr.contains("--help")),
                "{case}: {stderr}"
            ),
        }
        assert_eq!(
            files_under(m.tmp.path()),
            before,
            "{case}: a file was written or changed"
        );
    });
    println!(
        "{} usage errors of `signer keys` exited with status 2",
        cases.len()
    );
}
