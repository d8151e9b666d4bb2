//! End to end, root key workflows (issue 8, workflows 1 and 2): the first-time rotation that
//! takes the initial online root key offline, then two later rotations. After each, the
//! served chain is checked the way a device checks it, plus what the keys tarball, the
//! roots and the signer's pin say.

use std::os::unix::fs::PermissionsExt;

use shared::metadata::{Role, SignedRoot};
use tests::harness::{path_str, tarball_keys, World, WorldOptions};

/// The pinned root version `signer trust show` reports on a machine.
fn pinned_version(w: &World, m: &tests::harness::Machine) -> String {
    let out = w.signer(m, ["trust", "show"]).ok().stdout;
    out.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("version:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no version in `signer trust show`:\n{out}"))
}

#[test]
fn first_time_then_two_more_root_rotations() {
    let w = World::new(WorldOptions::default());
    let initial = w.init.root_keyid.clone();
    let report = w.device_check();
    assert_eq!((report.ci_version, report.prod_version), (1, 1));

    // 1. First-time rotation: the initial online root key goes offline.
    let keys = w.offline.path("root.keys.tgz");
    let k1 = w.first_time_rotation(&w.offline, &keys);
    let report = w.device_check();
    assert_eq!((report.ci_version, report.prod_version), (2, 2));
    // A factory that never went offline has no production tags yet.
    assert!(report.targets_checked.is_empty(), "{report:?}");
    let view = w.view();
    assert!(view.root_offline());
    assert!(view.transaction().is_none());
    assert_ne!(k1, initial);
    let held = tarball_keys(&keys);
    assert_eq!(held.len(), 2, "first-root and the new key: {held:?}");
    let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "keys tarball readable by others: {mode:o}");
    assert!(held
        .iter()
        .any(|k| k.first_root && k.keyid == initial && k.has_private));
    assert!(held
        .iter()
        .any(|k| !k.first_root && k.keyid == k1 && k.role == Some(Role::Root) && k.has_private));
    // The new root: only the offline key in the root role, signed by the old and the new key,
    // its owner recorded; CI and production roots differ only in the targets threshold.
    let v2 = view.ci_root().unwrap();
    assert_eq!(v2.signed.role_keyids(Role::Root), std::slice::from_ref(&k1));
    assert!(
        !v2.signed.keys.contains_key(&initial),
        "initial key dropped"
    );
    let sigs: Vec<_> = v2.signatures.iter().map(|s| s.keyid.clone()).collect();
    assert!(sigs.contains(&k1) && sigs.contains(&initial), "{sigs:?}");
    let owner = &v2.signed.key_owners.as_ref().expect("x-key-owners")[&k1];
    assert_eq!(owner.polis_id, w.init.polis_id);
    let prod = view.prod_root().unwrap().expect("prod root");
    assert_eq!(prod.signed.threshold(Role::Targets), 2);
    assert_eq!(v2.signed.threshold(Role::Targets), 1);
    // The initial key is gone from the server.
    assert!(view.server_key(&initial).is_none());
    // The courier kept no secret after apply.
    let leftovers: Vec<_> = walk(&w.online.home)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("first-root"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // 2. A later rotation, then a third one.
    let mut previous = k1.clone();
    let mut all = vec![initial.clone(), k1.clone()];
    for (round, version) in [(2, 3u64), (3, 4u64)] {
        let req = w.usb(&format!("root{round}.req.tufbundle"));
        let resp = w.usb(&format!("root{round}.resp.tufbundle"));
        let before = std::fs::read(&keys).unwrap();
        let out = w
            .courier([
                "rotate-offline-key",
                "--role",
                "root",
                "--bundle",
                path_str(&req),
            ])
            .ok();
        out.says(&format!("version {}", version - 1));
        w.signer(&w.offline, ["inspect", path_str(&req)])
            .ok()
            .says("root-rotation");
        w.signer(
            &w.offline,
            [
                "--yes",
                "rotate-offline-key",
                "--role",
                "root",
                "--keys",
                path_str(&keys),
                path_str(&req),
                "-o",
                path_str(&resp),
            ],
        )
        .ok();
        assert_ne!(before, std::fs::read(&keys).unwrap(), "new key stored");
        w.push_apply(&resp)
            .says(&format!("root is now version {version}"));

        let report = w.device_check();
        assert_eq!((report.ci_version, report.prod_version), (version, version));
        let root = w.view().ci_root().unwrap();
        let ids = root.signed.role_keyids(Role::Root).to_vec();
        assert_eq!(ids.len(), 1);
        let new = ids[0].clone();
        assert!(!all.contains(&new), "a fresh key each time");
        let sigs: Vec<_> = root.signatures.iter().map(|s| s.keyid.clone()).collect();
        assert!(sigs.contains(&new) && sigs.contains(&previous), "{sigs:?}");
        assert_eq!(
            root.signed.key_owners.as_ref().unwrap()[&new].polis_id,
            w.init.polis_id
        );
        all.push(new.clone());
        previous = new;
        // The tarball keeps every key (rotated-out keys too).
        let held: Vec<_> = tarball_keys(&keys).into_iter().map(|k| k.keyid).collect();
        for id in &all {
            assert!(held.contains(id), "{id} missing from {held:?}");
        }
    }

    // The whole chain: v1 → v4, each step signed by the previous root key and the new one.
    let chain = w.view().chain(false).unwrap();
    assert_eq!(chain.len(), 4);
    for (i, root) in chain.iter().enumerate().skip(1) {
        let signers: Vec<_> = root.signatures.iter().map(|s| s.keyid.clone()).collect();
        assert!(signers.contains(&all[i - 1]), "v{} by v{} key", i + 1, i);
        assert!(signers.contains(&all[i]), "v{} by its own key", i + 1);
    }
    // The signer advanced its pin when it saw the applied roots (at the latest with the next
    // bundle), and a fresh bundle still verifies from it.
    let pinned: u64 = pinned_version(&w, &w.offline).parse().unwrap();
    assert!((3..=4).contains(&pinned), "pinned v{pinned}");
    let req = w.usb("check.req.tufbundle");
    w.courier(["updates", "init"]).ok();
    w.courier(["updates", "pull", "--bundle", path_str(&req)])
        .ok();
    w.signer(&w.offline, ["inspect", path_str(&req)])
        .ok()
        .says("chain verifies");
    w.courier(["updates", "cancel"]).ok();
    // show-root --prod differs from show-root only in the targets threshold.
    assert_only_targets_threshold_differs(&w);
    w.device_check();
}

/// Parses `courier show-root` and `show-root --prod` and checks that the `signed` parts
/// differ only in the targets threshold (1 vs 2).
pub fn assert_only_targets_threshold_differs(w: &World) {
    let ci = SignedRoot::from_json(w.courier(["show-root"]).ok().stdout.as_bytes()).unwrap();
    let prod =
        SignedRoot::from_json(w.courier(["show-root", "--prod"]).ok().stdout.as_bytes()).unwrap();
    assert_eq!(ci.signed.threshold(Role::Targets), 1);
    assert_eq!(prod.signed.threshold(Role::Targets), 2);
    let mut normalized = prod.signed.clone();
    normalized.role_mut(Role::Targets).unwrap().threshold = 1;
    assert_eq!(normalized, ci.signed);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
