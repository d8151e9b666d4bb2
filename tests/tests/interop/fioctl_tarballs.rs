//! Keys tarballs crossing between the real `fioctl` and the toolkit, both ways, on one
//! factory whose ceremonies alternate between the two tools:
//!
//! - tarballs **fioctl wrote** (its first-time root rotation, its targets rotation into a
//!   separate tarball) are listed, backed up, printed and restored by `signer keys`, and used
//!   by the signer for every rotation and signing command: root and targets rotations, `sign`,
//!   `sign-prod-targets`, `sign-wave`, `rotate-online-key`;
//! - tarballs **the signer wrote** (plain `.tgz`, and `.tgz.age` once decrypted with
//!   `signer keys decrypt`) are used by fioctl for its root and targets rotations and its
//!   waves, and fioctl's updated tarball is encrypted again with `signer keys encrypt`.
//!
//! After every applied change the served chain verifies as a device verifies it.
//!
//! Ignored, with the reason, where fioctl is not available (see `tests::tools`).

use std::path::Path;

use shared::metadata::Role;
use tests::harness::{path_str, tarball_keyids, tarball_keys, Machine, World, WorldOptions};

use crate::fioctl_support::{fioctl_release, fioctl_rotated, role_keys, served};

/// Carries `from` (one machine) to `to` (another) over the USB stick, byte for byte.
fn carry(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

/// A courier request, then each signer step on its machine (`--yes OP... IN -o OUT`), then
/// `courier updates push --apply`.
fn ceremony(w: &World, name: &str, request: &[&str], steps: &[(&Machine, Vec<&str>)]) {
    let req = w.usb(&format!("{name}.req.tufbundle"));
    let mut args = request.to_vec();
    args.extend(["--bundle", path_str(&req)]);
    w.courier(&args).ok();
    let mut input = req;
    for (i, (machine, op)) in steps.iter().enumerate() {
        // 0: verifies; 5: verifies, the operation's own command authorizes what it changes.
        let inspected = w.signer(machine, ["inspect", path_str(&input)]);
        assert!([0, 5].contains(&inspected.code), "{}", inspected.stdout);
        let out = w.usb(&format!("{name}.step{}.tufbundle", i + 1));
        let mut a = vec!["--yes"];
        a.extend(op.iter().copied());
        a.extend([path_str(&input), "-o", path_str(&out)]);
        let run = w.signer(machine, &a).ok();
        if op.first() == Some(&"rotate-offline-key") && op.contains(&"targets") {
            let keys = op[op.iter().position(|a| *a == "--targets-keys").unwrap() + 1];
            w.endorse_left_targets(machine, Path::new(keys), &run, &out, &[]);
        }
        input = out;
    }
    w.push_apply(&input).says("root is now version");
}

#[test]
#[cfg_attr(
    not(has_fioctl),
    ignore = "fioctl not installed: set OFFLINE_TUF_FIOCTL to a fioctl binary (README: Tests)"
)]
fn fioctl_tarballs_serve_the_signer() {
    let w = World::new(WorldOptions {
        targets: 6,
        prod_behind: 1,
        ..WorldOptions::default()
    });
    // fioctl takes the factory offline and releases a wave: its tarballs are the input here.
    let fio_root = w.online.path("fioctl-root.keys.tgz");
    let fio_targets = w.online.path("fioctl-targets.keys.tgz");
    fioctl_rotated(&w, "root", true, &fio_root, None);
    fioctl_rotated(&w, "targets", false, &fio_root, Some(&fio_targets));
    fioctl_release(&w, &fio_targets, ("w5", "5", "production"));
    served(&w, 3);
    let k1 = role_keys(&w, Role::Root);
    let t1 = w.offline_targets();

    // The root key holder's laptop gets fioctl's root tarball, the targets key holder's
    // laptop its targets tarball.
    let root_keys = w.offline.path("root.keys.tgz");
    let targets_keys = w.offline2.path("targets.keys.tgz");
    carry(&fio_root, &root_keys);
    carry(&fio_targets, &targets_keys);

    // keys list: the active keys, by the root they are active in.
    let current = w.write_usb("current-root.json", w.courier(["show-root"]).ok().stdout);
    w.signer(
        &w.offline,
        [
            "keys",
            "list",
            "--keys",
            path_str(&root_keys),
            "--root",
            path_str(&current),
        ],
    )
    .ok()
    .says(k1[0].as_str());
    w.signer(
        &w.offline2,
        [
            "keys",
            "list",
            "--keys",
            path_str(&targets_keys),
            "--root",
            path_str(&current),
        ],
    )
    .ok()
    .says(t1[0].as_str());
    // keys backup: a verified byte-identical copy.
    let media = w.root.join("backup-media");
    let copy = w.backup_keys(&w.offline, &root_keys, &media);
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&root_keys).unwrap()
    );
    // keys print → keys restore: the paper sheet rebuilds the same key.
    let sheet = w.offline.path("sheet.txt");
    w.signer(
        &w.offline,
        [
            "keys",
            "print",
            "--keys",
            path_str(&root_keys),
            "--root",
            path_str(&current),
            "--out",
            path_str(&sheet),
        ],
    )
    .ok();
    let typed = w.write_usb("typed-sheet.txt", std::fs::read(&sheet).unwrap());
    let restored = w.offline2.path("restored.keys.tgz");
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
    assert_eq!(tarball_keyids(&restored, Role::Root), k1);

    // The toolkit's ceremonies with fioctl's tarballs.
    w.connect_identity(&w.offline);
    w.pin_trust(&w.offline, &[]);
    w.pin_trust(&w.offline2, &[]);
    w.pin_cosigners();

    // A root rotation: the new key goes into fioctl's tarball next to the old one.
    let rk = path_str(&root_keys);
    let tk = path_str(&targets_keys);
    ceremony(
        &w,
        "root",
        &["rotate-offline-key", "--role", "root"],
        &[(
            &w.offline,
            vec!["rotate-offline-key", "--role", "root", "--keys", rk],
        )],
    );
    served(&w, 4);
    let k2 = role_keys(&w, Role::Root);
    assert_ne!(k2, k1);
    let held = tarball_keyids(&root_keys, Role::Root);
    assert!(held.contains(&k1[0]) && held.contains(&k2[0]), "{held:?}");

    // A targets rotation: the targets holder rotates within fioctl's targets tarball, the
    // production tag fioctl's wave created is re-signed (it carries a verified signature by
    // the previous offline targets key), the root holder signs the roots.
    ceremony(
        &w,
        "targets",
        &["rotate-offline-key", "--role", "targets"],
        &[
            (
                &w.offline2,
                vec![
                    "rotate-offline-key",
                    "--role",
                    "targets",
                    "--targets-keys",
                    tk,
                ],
            ),
            (&w.offline, vec!["sign", "--keys", rk]),
        ],
    );
    served(&w, 5);
    let t2 = w.offline_targets();
    assert_ne!(t2, t1);
    w.assert_targets_signed_by(&t2[0]);
    let held = tarball_keyids(&targets_keys, Role::Targets);
    assert!(held.contains(&t1[0]) && held.contains(&t2[0]), "{held:?}");

    // A wave signed offline with it.
    w.release_wave(&w.offline2, &targets_keys, ("w6", 6, "production"), &[]);
    w.assert_targets_signed_by(&t2[0]);
    assert_eq!(
        w.view()
            .prod_targets("production")
            .unwrap()
            .unwrap()
            .signed
            .version,
        6
    );

    // Expert mode: production targets re-signed in a transaction, and new online keys
    // accepted with the roots signed by fioctl's root tarball.
    w.courier(["updates", "init", "-m", "re-sign production targets"])
        .ok();
    ceremony(
        &w,
        "resign",
        &["prod-targets", "pull", "--tags", "production"],
        &[
            (&w.offline2, vec!["sign-prod-targets", "--targets-keys", tk]),
            (&w.offline, vec!["sign", "--keys", rk]),
        ],
    );
    served(&w, 6);
    let before = w.view().online_keys().clone();
    w.courier(["updates", "init", "-m", "new online keys"]).ok();
    w.courier([
        "updates",
        "rotate-online-key",
        "--role",
        "targets,snapshot,timestamp",
    ])
    .ok();
    ceremony(
        &w,
        "online",
        &["updates", "pull"],
        &[(
            &w.offline,
            vec![
                "rotate-online-key",
                "--role",
                "targets,snapshot,timestamp",
                "--keys",
                rk,
            ],
        )],
    );
    served(&w, 7);
    assert_ne!(w.view().online_keys().targets, before.targets);
    w.assert_targets_signed_by(&w.view().online_keys().targets.clone());

    // fioctl takes its (now updated) tarballs back: the toolkit's keys are fioctl's keys.
    carry(&root_keys, &fio_root);
    carry(&targets_keys, &fio_targets);
    fioctl_rotated(&w, "targets", false, &fio_root, Some(&fio_targets));
    served(&w, 8);
    w.assert_targets_signed_by(&w.offline_targets()[0]);
    assert!(tarball_keys(&fio_targets).len() >= 3);
}

#[test]
#[cfg_attr(
    not(has_fioctl),
    ignore = "fioctl not installed: set OFFLINE_TUF_FIOCTL to a fioctl binary (README: Tests)"
)]
fn signer_tarballs_serve_fioctl_in_a_mixed_ceremony() {
    let w = World::new(WorldOptions {
        targets: 6,
        prod_behind: 2,
        ..WorldOptions::default()
    });
    let passphrase = "correct horse battery staple";
    let pass = w.offline2.path("passphrase.txt");
    std::fs::create_dir_all(pass.parent().unwrap()).unwrap();
    std::fs::write(&pass, format!("{passphrase}\n")).unwrap();
    let pf = path_str(&pass);

    // The toolkit takes the factory offline: the root key in a plain tarball, the targets
    // key passphrase-encrypted on the targets holder's laptop; a wave releases tag
    // production.
    let root_keys = w.offline.path("root.keys.tgz");
    let targets_age = w.offline2.path("targets.keys.tgz.age");
    w.first_time_rotation(&w.offline, &root_keys);
    w.pin_trust(&w.offline2, &[]);
    w.pin_cosigners();
    let rk = path_str(&root_keys);
    let tk = path_str(&targets_age);
    ceremony(
        &w,
        "targets",
        &["rotate-offline-key", "--role", "targets"],
        &[
            (
                &w.offline2,
                vec![
                    "rotate-offline-key",
                    "--role",
                    "targets",
                    "--targets-keys",
                    tk,
                    "--passphrase-file",
                    pf,
                ],
            ),
            (&w.offline, vec!["sign", "--keys", rk]),
        ],
    );
    w.release_wave(
        &w.offline2,
        &targets_age,
        ("w4", 4, "production"),
        &["--passphrase-file", pf],
    );
    served(&w, 3);
    let k1 = role_keys(&w, Role::Root);
    let t1 = w.offline_targets();

    // fioctl's turn, with the signer's tarballs: the plain one as it is, the encrypted one
    // decrypted by `signer keys decrypt` (read back and checked before it says so). A root
    // rotation, a targets rotation that re-signs the tag (its offline signature was made by
    // the signer), a wave.
    let fio_root = w.online.path("root.keys.tgz");
    let fio_targets = w.online.path("targets.keys.tgz");
    carry(&root_keys, &fio_root);
    let decrypted = w.offline2.path("for-fioctl.keys.tgz");
    w.signer(
        &w.offline2,
        [
            "keys",
            "decrypt",
            "--keys",
            tk,
            "--out",
            path_str(&decrypted),
            "--passphrase-file",
            pf,
        ],
    )
    .ok()
    .says("UNENCRYPTED");
    assert!(targets_age.exists(), "the encrypted file is kept");
    carry(&decrypted, &fio_targets);
    assert_eq!(tarball_keyids(&fio_targets, Role::Targets), t1);
    fioctl_rotated(&w, "root", false, &fio_root, None).says("= New root keyid");
    served(&w, 4);
    let k2 = role_keys(&w, Role::Root);
    assert_ne!(k2, k1);
    fioctl_rotated(&w, "targets", false, &fio_root, Some(&fio_targets))
        .says("= Re-signing prod Targets");
    served(&w, 5);
    let t2 = w.offline_targets();
    assert_ne!(t2, t1);
    w.assert_targets_signed_by(&t2[0]);
    fioctl_release(&w, &fio_targets, ("w5", "5", "production"));
    served(&w, 5);

    // The toolkit's turn again, with the tarballs fioctl updated: the signer's trusted root
    // is v3, the chain fioctl extended verifies from it. The targets holder encrypts
    // fioctl's tarball at rest again, removing the plain copy once the encrypted one checks.
    carry(&fio_root, &root_keys);
    let targets_plain = w.offline2.path("targets.keys.tgz");
    carry(&fio_targets, &targets_plain);
    let targets_again = w.offline2.path("targets-2.keys.tgz.age");
    w.signer(
        &w.offline2,
        [
            "keys",
            "encrypt",
            "--keys",
            path_str(&targets_plain),
            "--out",
            path_str(&targets_again),
            "--passphrase-file",
            pf,
            "--remove-source",
        ],
    )
    .ok()
    .says("Verified:");
    assert!(!targets_plain.exists());
    ceremony(
        &w,
        "root-again",
        &["rotate-offline-key", "--role", "root"],
        &[(
            &w.offline,
            vec!["rotate-offline-key", "--role", "root", "--keys", rk],
        )],
    );
    served(&w, 6);
    let k3 = role_keys(&w, Role::Root);
    assert!(k3 != k2 && k3 != k1);
    w.release_wave(
        &w.offline2,
        &targets_again,
        ("w6", 6, "production"),
        &["--passphrase-file", pf],
    );
    w.assert_targets_signed_by(&t2[0]);
    assert_eq!(
        w.view()
            .prod_targets("production")
            .unwrap()
            .unwrap()
            .signed
            .version,
        6
    );
    // One tarball holds every root key either tool created.
    let held = tarball_keyids(&root_keys, Role::Root);
    for k in [&k1[0], &k2[0], &k3[0]] {
        assert!(held.contains(k), "{k} not in {held:?}");
    }
}
