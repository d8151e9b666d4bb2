//! End to end, expert mode (issue 8, workflow 5): `courier updates init/pull/push/apply`
//! with the signer's granular operations — add-offline-key, set-threshold,
//! delete-offline-key (root and targets), rotate-online-key, sign-prod-targets — and
//! `courier updates cancel`. One factory goes through all of them; a device check follows
//! every applied change.

use std::path::Path;

use shared::bundle::TransferBundle;
use shared::keys::KeyId;
use shared::metadata::Role;
use tests::harness::{path_str, tarball_keyids, tarball_keys, Machine, World, WorldOptions};

/// One expert round: `courier updates init -m MSG`, `courier updates pull --bundle REQ
/// PULL...`, then each signer step `(machine, args)` reading the previous bundle and writing
/// the next (`{in}`/`{out}` are appended), then `courier updates push --apply`. Returns the
/// final response bundle's path.
fn round(w: &World, name: &str, msg: &str, pull: &[&str], steps: &[(&Machine, Vec<&str>)]) {
    w.courier(["updates", "init", "-m", msg]).ok();
    let req = w.usb(&format!("{name}.req.tufbundle"));
    let mut args = vec!["updates", "pull", "--bundle", path_str(&req)];
    args.extend_from_slice(pull);
    w.courier(&args).ok();
    let mut input = req.clone();
    for (i, (machine, step)) in steps.iter().enumerate() {
        w.signer(machine, ["inspect", path_str(&input)]).ok();
        let out = w.usb(&format!("{name}.step{}.tufbundle", i + 1));
        let mut a: Vec<&str> = vec!["--yes"];
        a.extend(step.iter().copied());
        a.extend([path_str(&input), "-o", path_str(&out)]);
        w.signer(machine, &a).ok();
        input = out;
    }
    w.push_apply(&input).says("root is now version");
}

fn root_role(w: &World) -> (Vec<KeyId>, u64) {
    let ci = w.view().ci_root().unwrap();
    (
        ci.signed.role_keyids(Role::Root).to_vec(),
        ci.signed.threshold(Role::Root),
    )
}

fn prod_signers(w: &World, tag: &str) -> Vec<KeyId> {
    w.view()
        .prod_targets(tag)
        .unwrap()
        .unwrap()
        .signatures
        .iter()
        .map(|s| s.keyid.clone())
        .collect()
}

fn signers_of_ci_root(w: &World) -> Vec<KeyId> {
    w.view()
        .ci_root()
        .unwrap()
        .signatures
        .iter()
        .map(|s| s.keyid.clone())
        .collect()
}

fn p(path: &Path) -> &str {
    path_str(path)
}

#[test]
fn expert_mode_operations() {
    // A factory that went offline (root v3: root key k1 in root.keys.tgz, targets key t1 in
    // targets.keys.tgz) with a production tag signed by the online key and t1.
    let w = World::new(WorldOptions::offline(1));
    let tag = w.init.tags[0].clone();
    let root_keys = w.offline.path("root.keys.tgz");
    let targets_keys = w.offline.path("targets.keys.tgz");
    let root2_keys = w.offline2.path("root2.keys.tgz");
    let targets2_keys = w.offline2.path("targets2.keys.tgz");
    let k1 = tarball_keyids(&root_keys, Role::Root)
        .into_iter()
        .next()
        .expect("the offline root key");
    w.pin_trust(&w.offline, &[]);
    w.pin_trust(&w.offline2, &[]);
    // Two key holders' laptops: they pin each other's signing identities.
    w.pin_cosigners();
    let t1 = w.offline_targets();
    assert_eq!(t1.len(), 1);
    let t1 = t1[0].clone();
    assert_eq!(
        tarball_keyids(&targets_keys, Role::Targets),
        vec![t1.clone()]
    );
    assert_eq!(w.device_check().ci_version, 3);

    // add-offline-key --role root: a second root key held by another person (offline2), the
    // roots signed by the current root key holder.
    round(
        &w,
        "add-root",
        "second offline root key",
        &["--op", "add-root-key"],
        &[
            (
                &w.offline2,
                vec![
                    "add-offline-key",
                    "--role",
                    "root",
                    "--keys",
                    p(&root2_keys),
                ],
            ),
            (&w.offline, vec!["sign", "--keys", p(&root_keys)]),
        ],
    );
    assert_eq!(w.device_check().ci_version, 4);
    let k2 = tarball_keyids(&root2_keys, Role::Root);
    assert_eq!(k2.len(), 1);
    let k2 = k2[0].clone();
    assert_eq!(tarball_keys(&root2_keys).len(), 1, "only the new key");
    assert_eq!(root_role(&w), (vec![k1.clone(), k2.clone()], 1));
    let ci = w.view().ci_root().unwrap();
    assert_eq!(
        ci.signed.key_owners.as_ref().unwrap()[&k2].polis_id,
        w.init.polis_id
    );

    // set-threshold --role root 2: both root key holders sign.
    round(
        &w,
        "root-threshold",
        "two root signatures from now on",
        &["--op", "set-root-threshold", "--threshold", "2"],
        &[
            (
                &w.offline,
                vec![
                    "set-threshold",
                    "--role",
                    "root",
                    "2",
                    "--keys",
                    p(&root_keys),
                ],
            ),
            (&w.offline2, vec!["sign", "--keys", p(&root2_keys)]),
        ],
    );
    assert_eq!(w.device_check().ci_version, 5);
    assert_eq!(root_role(&w), (vec![k1.clone(), k2.clone()], 2));
    let sigs = signers_of_ci_root(&w);
    assert!(sigs.contains(&k1) && sigs.contains(&k2), "{sigs:?}");

    // delete-offline-key --role root (threshold back to 1 first, in the same transaction):
    // the current root (threshold 2) needs both holders once more.
    round(
        &w,
        "delete-root",
        "back to one root key",
        &[
            "--op",
            "set-root-threshold,delete-root-key",
            "--threshold",
            "1",
            "--keyid",
            k2.as_str(),
        ],
        &[
            (&w.offline, vec!["set-threshold", "--role", "root", "1"]),
            (
                &w.offline,
                vec![
                    "delete-offline-key",
                    "--role",
                    "root",
                    "--keyid",
                    k2.as_str(),
                    "--keys",
                    p(&root_keys),
                ],
            ),
            (&w.offline2, vec!["sign", "--keys", p(&root2_keys)]),
        ],
    );
    assert_eq!(w.device_check().ci_version, 6);
    assert_eq!(root_role(&w), (vec![k1.clone()], 1));
    assert!(!w.view().ci_root().unwrap().signed.keys.contains_key(&k2));

    // add-offline-key --role targets (a second targets key, on offline2) with the production
    // targets threshold raised to 3: production targets now carry 3 signatures.
    round(
        &w,
        "add-targets",
        "second offline targets key",
        &[
            "--op",
            "add-targets-key,set-targets-threshold",
            "--threshold",
            "3",
        ],
        &[
            (
                &w.offline2,
                vec![
                    "add-offline-key",
                    "--role",
                    "targets",
                    "--targets-keys",
                    p(&targets2_keys),
                ],
            ),
            (
                &w.offline,
                vec![
                    "set-threshold",
                    "--role",
                    "targets",
                    "3",
                    "--keys",
                    p(&root_keys),
                ],
            ),
        ],
    );
    assert_eq!(w.device_check().ci_version, 7);
    let t2 = tarball_keyids(&targets2_keys, Role::Targets);
    assert_eq!(t2.len(), 1);
    let t2 = t2[0].clone();
    assert_eq!(w.offline_targets(), vec![t1.clone(), t2.clone()]);
    let prod = w.view().prod_root().unwrap().unwrap();
    assert_eq!(prod.signed.threshold(Role::Targets), 3);
    assert_eq!(
        w.view().ci_root().unwrap().signed.threshold(Role::Targets),
        1
    );
    let signers = prod_signers(&w, &tag);
    assert!(
        signers.contains(&t1) && signers.contains(&t2),
        "{signers:?}"
    );

    // delete-offline-key --role targets (T1), threshold back to 2: T1's signatures go.
    round(
        &w,
        "delete-targets",
        "retire the first targets key",
        &[
            "--op",
            "set-targets-threshold,delete-targets-key",
            "--threshold",
            "2",
            "--keyid",
            t1.as_str(),
        ],
        &[
            (&w.offline, vec!["set-threshold", "--role", "targets", "2"]),
            (
                &w.offline,
                vec![
                    "delete-offline-key",
                    "--role",
                    "targets",
                    "--keyid",
                    t1.as_str(),
                    "--keys",
                    p(&root_keys),
                ],
            ),
        ],
    );
    assert_eq!(w.device_check().ci_version, 8);
    assert_eq!(w.offline_targets(), vec![t2.clone()]);
    let signers = prod_signers(&w, &tag);
    assert!(
        !signers.contains(&t1) && signers.contains(&t2),
        "{signers:?}"
    );

    // rotate-online-key: the server stages new online targets and snapshot keys. That is a
    // proposal of the online side: `inspect` shows the new online keys as not authorized,
    // `sign --yes` refuses them, and the root key holder authorizes them by typing the
    // operation (`signer rotate-online-key`), which signs the staged roots; production
    // targets carry the new online signature.
    let old_online = w.view().online_keys().clone();
    w.courier(["updates", "init", "-m", "rotate online keys"])
        .ok();
    w.courier(["updates", "rotate-online-key", "--role", "targets,snapshot"])
        .ok();
    let req = w.usb("online.req.tufbundle");
    let resp = w.usb("online.resp.tufbundle");
    w.courier(["updates", "pull", "--bundle", p(&req)])
        .ok()
        .says("rotate-online-key");
    let inspected = w.signer(&w.offline, ["inspect", p(&req)]);
    assert_eq!(inspected.code, 5, "{}", inspected.stdout);
    inspected
        .says("NOT AUTHORIZED")
        .says("proposed by the online side: rotate-online-key targets,snapshot");
    w.signer(
        &w.offline,
        [
            "--yes",
            "sign",
            "--keys",
            p(&root_keys),
            p(&req),
            "-o",
            p(&resp),
        ],
    )
    .fails()
    .says("refusing to sign");
    assert!(!resp.exists());
    w.signer(
        &w.offline,
        [
            "--yes",
            "rotate-online-key",
            "--role",
            "targets,snapshot",
            "--keys",
            p(&root_keys),
            p(&req),
            "-o",
            p(&resp),
        ],
    )
    .ok()
    .says("your command (rotate-online-key --role targets,snapshot)");
    w.push_apply(&resp);
    assert_eq!(w.device_check().ci_version, 9);
    let new_online = w.view().online_keys().clone();
    assert_ne!(new_online.targets, old_online.targets);
    assert_ne!(new_online.snapshot, old_online.snapshot);
    assert_eq!(new_online.timestamp, old_online.timestamp);
    let signers = prod_signers(&w, &tag);
    assert!(signers.contains(&new_online.targets), "{signers:?}");
    assert!(!signers.contains(&old_online.targets), "{signers:?}");
    assert!(signers.contains(&t2));

    // sign-prod-targets: the targets key holder signs production targets within a
    // transaction; the root holder signs the roots; one upload.
    w.courier(["updates", "init", "-m", "re-sign production targets"])
        .ok();
    let req = w.usb("prod.req.tufbundle");
    let step = w.usb("prod.step1.tufbundle");
    let resp = w.usb("prod.resp.tufbundle");
    w.courier([
        "prod-targets",
        "pull",
        "--tags",
        tag.as_str(),
        "--bundle",
        p(&req),
    ])
    .ok();
    w.signer(
        &w.offline2,
        [
            "--yes",
            "sign-prod-targets",
            "--targets-keys",
            p(&targets2_keys),
            p(&req),
            "-o",
            p(&step),
        ],
    )
    .ok();
    let signed = TransferBundle::read(&step).unwrap();
    let upload = signed.upload().expect("upload");
    let sigs = &upload.targets_signatures[&tag];
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].keyid, t2);
    w.sign_with(&w.offline, &root_keys, &step, &resp);
    w.push_apply(&resp);
    assert_eq!(w.device_check().ci_version, 10);
    assert!(prod_signers(&w, &tag).contains(&t2));

    // cancel: a transaction started and pulled, then cancelled: nothing changes, and a
    // response to the cancelled request is refused as stale.
    let version = w.view().version();
    let chain = w.view().chain(true).unwrap();
    w.courier(["updates", "init", "-m", "changed my mind"]).ok();
    let req = w.usb("cancel.req.tufbundle");
    let resp = w.usb("cancel.resp.tufbundle");
    w.courier(["updates", "pull", "--bundle", p(&req)]).ok();
    assert!(w.view().transaction().is_some());
    w.courier(["updates", "cancel"]).ok();
    let view = w.view();
    assert!(view.transaction().is_none());
    assert_eq!(view.version(), version);
    assert_eq!(view.chain(true).unwrap(), chain);
    w.courier(["updates", "status"]).ok();
    w.sign_with(&w.offline, &root_keys, &req, &resp);
    let state = w.server_state();
    let run = w.courier(["updates", "push", p(&resp), "--apply"]).fails();
    assert_eq!(run.code, 5, "stale bundle exit code");
    run.says("stale bundle");
    assert_eq!(w.server_state(), state);
    let report = w.device_check();
    assert_eq!(report.ci_version, version);
}
