//! End to end, offline targets key workflows (issue 8, workflows 3 and 4): targets key
//! rotations with a separate targets tarball and with the single tarball (production and
//! wave targets re-signed; `show-root` vs `show-root --prod`), and root and targets key
//! holders on different machines with one upload.

use std::path::Path;

use shared::keys::KeyId;
use shared::metadata::Role;
use tests::harness::{path_str, tarball_keyids, tarball_keys, History, World, WorldOptions};

/// Parses `courier show-root` and `show-root --prod` and checks that the `signed` parts
/// differ only in the targets threshold (1 vs 2).
fn assert_only_targets_threshold_differs(w: &World) {
    use shared::metadata::SignedRoot;
    let ci = SignedRoot::from_json(w.courier(["show-root"]).ok().stdout.as_bytes()).unwrap();
    let prod =
        SignedRoot::from_json(w.courier(["show-root", "--prod"]).ok().stdout.as_bytes()).unwrap();
    assert_eq!(ci.signed.threshold(Role::Targets), 1);
    assert_eq!(prod.signed.threshold(Role::Targets), 2);
    assert_ne!(ci.signed, prod.signed);
    let mut normalized = prod.signed.clone();
    normalized.role_mut(Role::Targets).unwrap().threshold = 1;
    assert_eq!(
        normalized, ci.signed,
        "CI and production roots differ elsewhere"
    );
}

/// Key ids that signed every production tag and every wave of the factory.
fn assert_all_targets_signed_by(w: &World, key: &KeyId, not: Option<&KeyId>) {
    let view = w.view();
    let mut docs = Vec::new();
    for tag in view.tags() {
        docs.push((
            format!("tag {tag}"),
            view.prod_targets(&tag).unwrap().unwrap(),
        ));
    }
    // Active waves (a completed wave's targets are the tag's now).
    for wave in view
        .waves()
        .into_iter()
        .filter(|w| w.status == factory_sim::WaveStatus::Active)
    {
        docs.push((
            format!("wave {}", wave.name),
            view.wave_targets(&wave.name).unwrap().unwrap(),
        ));
    }
    assert!(!docs.is_empty());
    for (what, doc) in docs {
        let ids: Vec<_> = doc.signatures.iter().map(|s| &s.keyid).collect();
        assert!(ids.contains(&key), "{what} not signed by {key}: {ids:?}");
        assert!(
            ids.contains(&&view.online_keys().targets),
            "{what} lost the online signature"
        );
        if let Some(old) = not {
            assert!(!ids.contains(&old), "{what} still signed by the old key");
        }
    }
}

/// A targets key rotation: the request from `courier rotate-offline-key --role targets`
/// (the shortcut), or with `expert` from `courier updates init` + `updates pull --op
/// rotate-targets` (the route while a wave is active); then `signer rotate-offline-key
/// --role targets` and `courier updates push --apply`.
fn rotate_targets(w: &World, name: &str, keys: &Path, targets_keys: Option<&Path>, expert: bool) {
    let req = w.usb(&format!("{name}.req.tufbundle"));
    let resp = w.usb(&format!("{name}.resp.tufbundle"));
    if expert {
        w.courier([
            "updates",
            "init",
            "-m",
            "Rotate TUF targets offline signing key",
        ])
        .ok();
        w.courier([
            "updates",
            "pull",
            "--op",
            "rotate-targets",
            "--bundle",
            path_str(&req),
        ])
        .ok()
        .says("targets-rotation");
    } else {
        w.request_rotation("targets", &req).says("targets-rotation");
    }
    w.signer(&w.offline, ["inspect", path_str(&req)]).ok();
    let mut args = vec![
        "--yes",
        "rotate-offline-key",
        "--role",
        "targets",
        "--keys",
        path_str(keys),
    ];
    if let Some(t) = targets_keys {
        args.extend(["--targets-keys", path_str(t)]);
    }
    args.extend([path_str(&req), "-o", path_str(&resp)]);
    let run = w.signer(&w.offline, &args).ok();
    // Documents the rotation could not carry over (no verified signature by the previous
    // offline key: all of them on the first rotation) are endorsed explicitly.
    w.endorse_left_targets(&w.offline, targets_keys.unwrap_or(keys), &run, &resp, &[]);
    w.push_apply(&resp);
}

#[test]
fn targets_rotation_with_a_separate_targets_tarball() {
    // A factory that went offline (root v3, an offline targets key t1 in its own tarball):
    // two production tags and an active wave, all signed by the online key and t1.
    let w = World::new(WorldOptions {
        tags: 2,
        waves: 1,
        prod_behind: 1,
        history: History::Offline,
        ..WorldOptions::default()
    });
    let keys = w.offline.path("root.keys.tgz");
    let targets = w.offline.path("targets.keys.tgz");
    w.pin_trust(&w.offline, &[]);
    let root_tarball = std::fs::read(&keys).unwrap();
    let t1 = w.offline_targets();
    assert_eq!(t1.len(), 1);
    assert_eq!(tarball_keyids(&targets, Role::Targets), t1);
    assert_all_targets_signed_by(&w, &t1[0], None);

    // The shortcut refuses while a wave is active (as fioctl's help says), before anything
    // is started on the server.
    let server = w.server_state();
    let refused = w.usb("refused.req.tufbundle");
    w.courier([
        "rotate-offline-key",
        "--role",
        "targets",
        "--bundle",
        path_str(&refused),
    ])
    .fails()
    .says("not allowed while a wave is active");
    assert_eq!(w.server_state(), server);
    assert!(!refused.exists());

    // The expert route gets as far as apply, where the server refuses it; the transaction is
    // cancelled and the targets key stays t1.
    let req = w.usb("early.req.tufbundle");
    let resp = w.usb("early.resp.tufbundle");
    w.courier([
        "updates",
        "init",
        "-m",
        "Rotate TUF targets offline signing key",
    ])
    .ok();
    w.courier([
        "updates",
        "pull",
        "--op",
        "rotate-targets",
        "--bundle",
        path_str(&req),
    ])
    .ok();
    w.rotate_targets(&w.offline, &keys, &targets, &req, &resp);
    w.courier(["updates", "push", path_str(&resp), "--apply"])
        .fails()
        .says("not allowed while a wave is active")
        .says("complete or cancel the wave");
    w.courier(["updates", "cancel"]).ok();
    assert_eq!(w.offline_targets(), t1);

    // Once the wave is complete, the rotation re-signs every production tag with the new
    // key (their t1 signatures verify).
    let wave = w.init.waves[0].clone();
    w.complete_wave(&wave);
    rotate_targets(&w, "targets2", &keys, Some(&targets), false);
    let report = w.device_check();
    assert_eq!(report.ci_version, 4);
    assert_eq!(report.targets_checked.len(), 2, "{report:?}");
    let t2 = w.offline_targets();
    assert_eq!(t2.len(), 1);
    assert_ne!(t2, t1);
    let held = tarball_keyids(&targets, Role::Targets);
    assert!(held.contains(&t1[0]) && held.contains(&t2[0]), "{held:?}");
    assert_all_targets_signed_by(&w, &t2[0], Some(&t1[0]));
    assert!(!w.view().ci_root().unwrap().signed.keys.contains_key(&t1[0]));
    assert_eq!(
        std::fs::read(&keys).unwrap(),
        root_tarball,
        "the root tarball is not touched"
    );
    assert_only_targets_threshold_differs(&w);

    // And once more, through the expert route (no wave is active now).
    rotate_targets(&w, "targets3", &keys, Some(&targets), true);
    assert_eq!(w.device_check().ci_version, 5);
    let t3 = w.offline_targets();
    assert_ne!(t3, t2);
    assert_all_targets_signed_by(&w, &t3[0], Some(&t2[0]));
}

#[test]
fn targets_rotation_with_the_single_tarball() {
    // A new factory: no production tags until the first wave after the targets key exists.
    let w = World::new(WorldOptions::default());
    let keys = w.offline.path("root.keys.tgz");
    let k1 = w.first_time_rotation(&w.offline, &keys);
    rotate_targets(&w, "targets1", &keys, None, false);
    let report = w.device_check();
    assert_eq!(report.ci_version, 3);
    let t1 = w.offline_targets();
    assert_eq!(t1.len(), 1);
    // One tarball: first-root, the root key and the targets key.
    assert_eq!(tarball_keyids(&keys, Role::Targets), t1);
    assert!(tarball_keyids(&keys, Role::Root).contains(&k1));
    assert_eq!(tarball_keys(&keys).len(), 3);
    assert_only_targets_threshold_differs(&w);
    // The first production tag comes from a wave signed with that tarball.
    let newest = w.init.builds;
    w.release_wave(&w.offline, &keys, ("first-wave", newest, "production"), &[]);
    assert_eq!(w.device_check().targets_checked.len(), 1);
    assert_all_targets_signed_by(&w, &t1[0], None);
}

#[test]
fn root_and_targets_holders_on_different_machines() {
    // A new factory: the first production tag comes from a wave after the targets key exists.
    let w = World::new(WorldOptions::default());
    let root_keys = w.offline.path("root.keys.tgz");
    let targets_keys = w.offline2.path("targets.keys.tgz");
    w.first_time_rotation(&w.offline, &root_keys);
    // The targets holder pins the factory's root on their own machine.
    w.pin_trust(&w.offline2, &[]);
    let pushes = |w: &World| {
        w.transcript()
            .iter()
            .filter(|r| r.command_line.starts_with("courier updates push"))
            .count()
    };

    // A. The targets holder adds the first offline targets key (expert: init + pull).
    w.courier(["updates", "init", "-m", "first offline targets key"])
        .ok();
    let req = w.usb("add-targets.req.tufbundle");
    let step = w.usb("add-targets.step1.tufbundle");
    let resp = w.usb("add-targets.resp.tufbundle");
    w.courier([
        "updates",
        "pull",
        "--op",
        "add-targets-key",
        "--bundle",
        path_str(&req),
    ])
    .ok();
    w.signer(&w.offline2, ["inspect", path_str(&req)]).ok();
    let added = w
        .signer(
            &w.offline2,
            [
                "--yes",
                "add-offline-key",
                "--role",
                "targets",
                "--targets-keys",
                path_str(&targets_keys),
                path_str(&req),
                "-o",
                path_str(&step),
            ],
        )
        .ok()
        .says("signer sign");
    // The production tags were signed by the online key only: the targets holder endorses
    // them explicitly, after seeing what they hold.
    w.endorse_left_targets(&w.offline2, &targets_keys, &added, &step, &[]);
    let root_before = std::fs::read(&root_keys).unwrap();
    // The root holder sees what the targets holder did. Until the targets holder's signing
    // identity is pinned here, the new key is authorized by nothing this laptop trusts:
    // inspect says signing needs a typed confirmation, and `sign --yes` refuses.
    let before = w.signer(&w.offline, ["inspect", path_str(&step)]);
    assert_eq!(before.code, 5, "{}", before.stdout);
    before
        .says("identity nobody pinned here")
        .says("NOT AUTHORIZED");
    w.signer(
        &w.offline,
        [
            "--yes",
            "sign",
            "--keys",
            path_str(&root_keys),
            path_str(&step),
            "-o",
            path_str(&resp),
        ],
    )
    .fails()
    .says("refusing to sign");
    assert!(!resp.exists());
    // The two key holders pin each other (fingerprints compared in person); now the step
    // is authenticated and its claim authorizes the new key.
    w.pin_cosigners();
    w.signer(&w.offline, ["inspect", path_str(&step)])
        .ok()
        .says("add-offline-key targets")
        .says("cosigner targets-holder (step 1, authenticated)");
    w.sign_with(&w.offline, &root_keys, &step, &resp);
    assert_eq!(std::fs::read(&root_keys).unwrap(), root_before);
    let n = pushes(&w);
    w.push_apply(&resp);
    assert_eq!(pushes(&w), n + 1, "one upload");
    let report = w.device_check();
    assert_eq!(report.ci_version, 3);
    let t1 = w.offline_targets();
    assert_eq!(t1.len(), 1);
    assert_eq!(tarball_keyids(&targets_keys, Role::Targets), t1);
    assert!(tarball_keyids(&root_keys, Role::Targets).is_empty());
    // The targets holder releases the first wave: the production tag it creates carries the
    // online and the offline signature.
    w.release_wave(
        &w.offline2,
        &targets_keys,
        ("wave-1", w.init.builds, "production"),
        &[],
    );
    assert_all_targets_signed_by(&w, &t1[0], None);

    // B. Later the targets holder rotates the targets key (expert route); the root holder
    // signs; the production tag is re-signed with the new key.
    let req = w.usb("rot-targets.req.tufbundle");
    let step = w.usb("rot-targets.step1.tufbundle");
    let resp = w.usb("rot-targets.resp.tufbundle");
    w.courier([
        "updates",
        "init",
        "-m",
        "Rotate TUF targets offline signing key",
    ])
    .ok();
    w.courier([
        "updates",
        "pull",
        "--op",
        "rotate-targets",
        "--bundle",
        path_str(&req),
    ])
    .ok();
    w.rotate_targets_half(&w.offline2, &targets_keys, &req, &step);
    w.sign_with(&w.offline, &root_keys, &step, &resp);
    w.push_apply(&resp);
    let report = w.device_check();
    assert_eq!(report.ci_version, 4);
    let t2 = w.offline_targets();
    assert_eq!(t2.len(), 1);
    assert_ne!(t2, t1);
    assert_all_targets_signed_by(&w, &t2[0], Some(&t1[0]));
    assert_only_targets_threshold_differs(&w);
}

#[test]
fn a_lost_targets_key_is_replaced_by_the_root_key_holder() {
    // A factory that went offline with two production tags; the targets key holder's
    // tarball (t1) is lost.
    let w = World::new(WorldOptions::offline(2));
    let keys = w.offline.path("root.keys.tgz");
    std::fs::remove_file(w.offline.path("targets.keys.tgz")).unwrap();
    let new = w.offline.path("new-targets.keys.tgz");
    w.pin_trust(&w.offline, &[]);
    let t1 = w.offline_targets();
    let req = w.usb("lost.req.tufbundle");
    let resp = w.usb("lost.resp.tufbundle");
    w.request_rotation("targets", &req);
    let rotate = |extra: &[&str]| {
        let mut args = vec!["--yes", "rotate-offline-key", "--role", "targets"];
        args.extend_from_slice(extra);
        args.extend([path_str(&req), "-o", path_str(&resp)]);
        w.signer(&w.offline, &args)
    };
    let untouched = w.watch(&[&keys, &new, &resp]);

    // A rotation with a new tarball finds no key to replace, and says what to do.
    let run = rotate(&["--keys", path_str(&keys), "--targets-keys", path_str(&new)]).fails();
    w.snapshot_run("lost-targets-key-hint", &run);
    // --lost-key needs the root keys, must name the current offline targets key, and is not
    // for root keys.
    let run = rotate(&[
        "--lost-key",
        t1[0].as_str(),
        "--targets-keys",
        path_str(&new),
    ])
    .fails();
    w.snapshot_run("lost-targets-key-needs-root-keys", &run);
    let online = w.view().online_keys().targets.clone();
    let run = rotate(&[
        "--lost-key",
        online.as_str(),
        "--keys",
        path_str(&keys),
        "--targets-keys",
        path_str(&new),
    ])
    .fails();
    w.snapshot_run("lost-targets-key-is-online", &run);
    let root_key = tarball_keyids(&keys, Role::Root)[0].clone();
    let run = w
        .signer(
            &w.offline,
            [
                "--yes",
                "rotate-offline-key",
                "--role",
                "root",
                "--lost-key",
                root_key.as_str(),
                "--keys",
                path_str(&keys),
                path_str(&req),
                "-o",
                path_str(&resp),
            ],
        )
        .fails();
    assert_eq!(run.code, 2);
    w.snapshot_run("lost-key-not-for-root", &run);
    untouched.assert_unchanged();

    // The documented path: the root key holder replaces it.
    rotate(&[
        "--lost-key",
        t1[0].as_str(),
        "--keys",
        path_str(&keys),
        "--targets-keys",
        path_str(&new),
    ])
    .ok()
    .says("is lost");
    w.push_apply(&resp);
    let t2 = w.offline_targets();
    assert_eq!(t2.len(), 1);
    assert_ne!(t2, t1);
    assert_eq!(tarball_keyids(&new, Role::Targets), t2);
    // What the lost key signed is re-signed by the new one; devices accept it.
    w.assert_targets_signed_by(&t2[0]);
    let report = w.device_check();
    assert_eq!((report.ci_version, report.targets_checked.len()), (4, 2));
}
