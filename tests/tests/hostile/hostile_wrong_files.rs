//! The wrong file says so (issue 19, signer side): every mix-up of the files a person
//! carries between machines — a transfer bundle, a keys tarball (plain or encrypted), a
//! root.json, an exported key — given where another is expected, and a keys tarball whose
//! public key files carry private material. Each case is refused with exit status 1 and one
//! line naming the file, what it is and what to give instead (the whole table is one
//! snapshot); nothing is written, no pin is made, and no private material is printed. The
//! mix-ups are a table of named cases: every one is tried, and all that fail are named.

use std::path::Path;

use shared::archive::{self, Compression, MemberRef};
use shared::tarball::KeysTarball;
use shared::test_support::cases::{run_cases, Case};
use tests::harness::{path_str, World, WorldOptions};

/// A copy of the keys tarball `src` in which one public key file (`.pub`) holds its private
/// key file's content (`.sec`): what a hand-edited or badly exported tarball looks like.
/// Returns the path and the private value that must never be printed.
fn private_in_public(src: &Path, dst: &Path) -> String {
    let t = KeysTarball::read(src).unwrap();
    let keys = t.keys().unwrap();
    let victim = keys.iter().find(|k| k.sec_file.is_some()).unwrap();
    let sec_file = victim.sec_file.clone().unwrap();
    let members = archive::read(&std::fs::read(src).unwrap(), &shared::tarball::LIMITS).unwrap();
    let sec = members
        .iter()
        .find(|m| m.name == sec_file)
        .unwrap()
        .data
        .to_vec();
    let edited: Vec<MemberRef<'_>> = members
        .iter()
        .map(|m| MemberRef {
            name: &m.name,
            data: if m.name == victim.pub_file {
                &sec
            } else {
                &m.data
            },
            mode: 0o600,
        })
        .collect();
    std::fs::write(dst, archive::write(&edited, Compression::Gzip).unwrap()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&sec).unwrap();
    v["keyval"]["private"].as_str().unwrap().to_string()
}

#[test]
fn every_mix_up_of_files_is_one_clear_line() {
    let w = World::new(WorldOptions::offline(1));
    w.pin_trust(&w.offline, &[]);
    let keys = w.offline.path("root.keys.tgz");
    let root_json = w.write_usb("root.json", w.courier(["show-root"]).ok().stdout);
    // An exported key (before any signing, so the pin names the active key).
    let exported = w.offline.path("root.sec");
    w.keys_export_root(&w.offline, &keys, &exported, &[]).ok();
    let pass = w.offline.path("passphrase.txt");
    std::fs::write(&pass, "correct horse\n").unwrap();
    let encrypted = w.offline.path("root.keys.tgz.age");
    w.signer_keys(
        &w.offline,
        "encrypt",
        &keys,
        &["--passphrase-file", path_str(&pass)],
    )
    .ok();
    let req = w.usb("rotate.req.tufbundle");
    let resp = w.usb("rotate.resp.tufbundle");
    w.request_rotation("root", &req);
    w.rotate_root_with(&w.offline, &keys, &req, &resp);
    let bad_keys = w.offline.path("bad.keys.tgz");
    let secret = private_in_public(&keys, &bad_keys);

    let out = w.usb("out.tufbundle");
    let backups = w.root.join("backup-media");
    std::fs::create_dir_all(&backups).unwrap();
    let (k, r, q, j) = (
        path_str(&keys),
        path_str(&resp),
        path_str(&req),
        path_str(&root_json),
    );
    let o = path_str(&out);
    let rotate = |keys, bundle| {
        vec![
            "--yes",
            "rotate-offline-key",
            "--role",
            "root",
            "--keys",
            keys,
            bundle,
            "-o",
            o,
        ]
    };
    let cases: Vec<(&str, &tests::harness::Machine, Vec<&str>)> = vec![
        (
            "a transfer bundle given to trust init",
            &w.offline2,
            vec!["--yes", "trust", "init", q],
        ),
        (
            "a keys tarball given to trust init",
            &w.offline2,
            vec!["--yes", "trust", "init", k],
        ),
        (
            "an exported key given to trust init",
            &w.offline2,
            vec!["--yes", "trust", "init", path_str(&exported)],
        ),
        (
            "a keys tarball given to inspect",
            &w.offline,
            vec!["inspect", k],
        ),
        (
            "an encrypted keys file given to inspect",
            &w.offline,
            vec!["inspect", path_str(&encrypted)],
        ),
        (
            "a root.json given to inspect",
            &w.offline,
            vec!["inspect", j],
        ),
        (
            "a keys tarball given to status",
            &w.offline,
            vec!["status", k],
        ),
        (
            "a keys tarball as the bundle of sign",
            &w.offline,
            vec!["--yes", "sign", "--keys", k, k, "-o", o],
        ),
        (
            "a root.json as the bundle of rotate-offline-key",
            &w.offline,
            rotate(k, j),
        ),
        (
            "a keys tarball as a response to combine",
            &w.offline,
            vec!["combine", r, k, "-o", o],
        ),
        (
            "a keys tarball as the bundle of keys drill",
            &w.offline,
            vec!["keys", "drill", "--keys", k, "--bundle", k],
        ),
        ("a request bundle given as --keys", &w.offline, rotate(q, q)),
        (
            "a response bundle given as --targets-keys",
            &w.offline,
            vec!["inspect", q, "--targets-keys", r],
        ),
        (
            "a response bundle given to keys list",
            &w.offline,
            vec!["keys", "list", "--keys", r],
        ),
        (
            "a response bundle given to keys backup",
            &w.offline,
            vec!["keys", "backup", "--keys", r, "--to", path_str(&backups)],
        ),
        (
            "a root.json given as --keys",
            &w.offline,
            vec!["keys", "list", "--keys", j],
        ),
        (
            "an exported key given as --keys",
            &w.offline,
            vec!["inspect", q, "--keys", path_str(&exported)],
        ),
        (
            "a bundle given as --root",
            &w.offline,
            vec!["keys", "list", "--keys", k, "--root", q],
        ),
        (
            "a keys tarball given as --root",
            &w.offline,
            vec!["keys", "print", "--keys", k, "--root", k, "--out", o],
        ),
        (
            "private material in a .pub, listed",
            &w.offline,
            vec!["keys", "list", "--keys", path_str(&bad_keys)],
        ),
        (
            "private material in a .pub, used to sign",
            &w.offline,
            vec!["--yes", "sign", "--keys", path_str(&bad_keys), q, "-o", o],
        ),
    ];

    let watch = w.watch(&[
        &keys, &encrypted, &req, &resp, &root_json, &exported, &bad_keys,
    ]);
    let cases: Vec<Case<(&tests::harness::Machine, Vec<&str>)>> = cases
        .into_iter()
        .map(|(name, machine, args)| Case::new(name, (machine, args)))
        .collect();
    let mut table = String::new();
    run_cases("hostile_wrong_files", &cases, |name, (machine, args)| {
        let run = w.signer(machine, args);
        table.push_str(&format!(
            "## {name}\n$ {}\n{}\n",
            run.command_line, run.stderr
        ));
        assert_eq!(run.code, 1, "{name}: exit {}\n{}", run.code, run.stderr);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: not one line:\n{}", run.stderr);
        assert!(lines[0].starts_with("error: "), "{name}: {}", run.stderr);
        for said in [&run.stdout, &run.stderr] {
            assert!(!said.contains(&secret), "{name}: private material printed");
        }
    });
    w.snapshot_text("hostile-wrong-files", &table);
    watch.assert_unchanged();
    assert!(!out.exists(), "a refused command wrote {}", out.display());
    assert!(
        !w.offline2.signer_home().join("trust").exists()
            || std::fs::read_dir(w.offline2.signer_home().join("trust"))
                .unwrap()
                .next()
                .is_none(),
        "a wrong file was pinned"
    );
    assert_eq!(std::fs::read_dir(&backups).unwrap().count(), 0);
    tests::report!(
        "hostile_wrong_files: {} mix-ups refused, each with one line and nothing written",
        cases.len()
    );
}
