//! End to end, backups (issue 8, workflow 7): a verified copy of the keys tarball, the
//! active root key exported as a key file and printed on paper, the paper restored on a
//! fresh machine into a new tarball, and a root rotation signed with the restored key.

use std::os::unix::fs::PermissionsExt;

use shared::keys::PrivateKey;
use shared::metadata::Role;
use tests::harness::{path_str, tarball_keys, World, WorldOptions};

#[test]
fn backup_export_print_restore_then_rotate_with_the_restored_key() {
    let w = World::new(WorldOptions::default());
    let keys = w.offline.path("root.keys.tgz");
    let k1 = w.first_time_rotation(&w.offline, &keys);
    let current = w.write_usb("current-root.json", w.courier(["show-root"]).ok().stdout);

    // 1. A copy of the tarball on backup media, verified by reading it back.
    let media = w.root.join("backup-media");
    let copy = w.backup_keys(&w.offline, &keys, &media);
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&keys).unwrap());
    // ...and never over an existing file.
    w.signer(
        &w.offline,
        [
            "keys",
            "backup",
            "--keys",
            path_str(&keys),
            "--to",
            path_str(&media),
        ],
    )
    .fails();
    w.signer(&w.offline, ["keys", "list", "--keys", path_str(&copy)])
        .ok()
        .says(k1.as_str());

    // 2. The active root key as a plain key file: only with the explicit acknowledgement.
    let exported = w.offline.path("root-key.sec");
    let export = |confirm: bool| {
        let mut a = vec![
            "keys",
            "export-root",
            "--keys",
            path_str(&keys),
            "--root",
            path_str(&current),
            "--out",
            path_str(&exported),
        ];
        if confirm {
            a.push("--i-understand-this-exports-a-private-key");
        }
        w.signer(&w.offline, &a)
    };
    export(false).fails();
    assert!(!exported.exists());
    export(true).ok();
    let key = PrivateKey::from_json(&std::fs::read(&exported).unwrap()).unwrap();
    assert_eq!(key.keyid(), &k1);
    let mode = std::fs::metadata(&exported).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "exported key readable by others: {mode:o}");

    // 3. Paper: print on the offline machine, restore on a fresh machine.
    let sheet = w.offline.path("root-key-sheet.txt");
    w.signer(
        &w.offline,
        [
            "keys",
            "print",
            "--keys",
            path_str(&keys),
            "--root",
            path_str(&current),
            "--out",
            path_str(&sheet),
        ],
    )
    .ok();
    let text = std::fs::read_to_string(&sheet).unwrap();
    assert!(text.contains(k1.as_str()), "the sheet names the key id");
    // The typed-in copy (carried by hand, here on the USB stick).
    let typed = w.write_usb("typed-sheet.txt", &text);
    let restored = w.offline2.path("restored.keys.tgz");

    // A typo is reported by line, and nothing is created.
    let line_no = text
        .lines()
        .position(|l| l.trim_start().starts_with("001:"))
        .expect("numbered lines");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Change the first hex digit after `001: `.
    let l = &mut lines[line_no];
    let at = l.find("001:").unwrap() + 5;
    let flipped = if &l[at..at + 1] == "a" { "b" } else { "a" };
    l.replace_range(at..at + 1, flipped);
    let typo = w.write_usb("typo-sheet.txt", lines.join("\n") + "\n");
    w.signer(
        &w.offline2,
        [
            "keys",
            "restore",
            "--from",
            path_str(&typo),
            "--keys",
            path_str(&restored),
            "--role",
            "root",
        ],
    )
    .fails()
    .says("line 1");
    assert!(!restored.exists());

    w.signer(
        &w.offline2,
        [
            "keys",
            "restore",
            "--from",
            path_str(&typed),
            "--keys",
            path_str(&restored),
            "--role",
            "root",
        ],
    )
    .ok();
    let held = tarball_keys(&restored);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].keyid, k1);
    assert_eq!(held[0].role, Some(Role::Root));
    assert!(held[0].has_private && !held[0].first_root);

    // 4. A root rotation on the fresh machine, signed with the restored key.
    w.pin_trust(&w.offline2, &[]);
    let req = w.usb("rotate.req.tufbundle");
    let resp = w.usb("rotate.resp.tufbundle");
    w.request_rotation("root", &req);
    w.rotate_root_with(&w.offline2, &restored, &req, &resp);
    w.push_apply(&resp).says("root is now version 3");
    let report = w.device_check();
    assert_eq!(report.ci_version, 3);
    let v3 = w.view().ci_root().unwrap();
    let k2 = v3.signed.role_keyids(Role::Root)[0].clone();
    assert_ne!(k2, k1);
    let signers: Vec<_> = v3.signatures.iter().map(|s| s.keyid.clone()).collect();
    assert!(
        signers.contains(&k1) && signers.contains(&k2),
        "{signers:?}"
    );
    let held: Vec<_> = tarball_keys(&restored)
        .into_iter()
        .map(|k| k.keyid)
        .collect();
    assert!(held.contains(&k1) && held.contains(&k2));
    // The original tarball was not involved.
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&keys).unwrap());
    // Both machines' audit logs verify.
    for m in [&w.offline, &w.offline2] {
        w.signer(m, ["audit", "verify"]).ok();
    }
}
