//! The real `fioctl` (unmodified upstream, `../shared/tools/fioctl/`, or `OFFLINE_TUF_FIOCTL`)
//! against `factory-sim`: every workflow of the offline-keys documentation and of fioctl's
//! expert mode. Whatever fioctl sends, the real server accepts; so the simulator must accept
//! it too, after each step the chain it serves must verify the way a device verifies it (our
//! verifier, `World::device_check`), and fioctl must print its success path.
//!
//! Covered: `show-root` (and `--prod`), `download-roots`, the first-time root rotation, later
//! root rotations, targets rotations into a separate and into the same tarball (with
//! production tags, and the server's refusal while a wave is active), `updates
//! init/review/review --diff/review --raw --prod/sign/apply/cancel`,
//! `add-offline-key`/`delete-offline-key` (root and targets), `set-threshold` (root and
//! targets), `rotate-online-key`, `sign-prod-targets` (its default: all tags and active
//! waves), `waves init/sign/complete`. fioctl 9b0a6e7 has no `updates status` command
//! (`review` is its status). What these runs taught about the real server is written down in
//! the simulator's docs (`factory-sim/src/lib.rs`, "Checked against the real fioctl").
//!
//! Ignored, with the reason, where fioctl is not available (see `tests::tools`).

use std::path::{Path, PathBuf};

use shared::metadata::{Role, SignedRoot};
use tests::harness::{path_str, tarball_keyids, History, Run, World, WorldOptions};

use crate::fioctl_support::{
    fio, fioctl_release, fioctl_rotate, fioctl_rotated, role_keys, served, APPLIED,
};

fn online(w: &World, name: &str) -> PathBuf {
    w.online.path(name)
}

#[test]
#[cfg_attr(
    not(has_fioctl),
    ignore = "fioctl not installed: set OFFLINE_TUF_FIOCTL to a fioctl binary (README: Tests)"
)]
fn fioctl_takes_a_new_factory_offline_and_rotates_its_keys() {
    let w = World::new(WorldOptions {
        targets: 6,
        ..WorldOptions::default()
    });
    let root_keys = online(&w, "root.keys.tgz");
    let targets_keys = online(&w, "targets.keys.tgz");

    // show-root: the served root, canonical JSON indented by two spaces.
    let shown = fio(&w, &["keys", "tuf", "show-root"]).stdout;
    let root = SignedRoot::from_json(shown.as_bytes()).unwrap();
    assert_eq!(root, w.view().ci_root().unwrap());
    assert!(shown.starts_with("{\n  \"signatures\": ["), "{shown}");
    let prod = SignedRoot::from_json(
        fio(&w, &["keys", "tuf", "show-root", "--prod"])
            .stdout
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(prod.signed.version, 1);

    // First-time root rotation.
    fioctl_rotated(&w, "root", true, &root_keys, None).says("= New root keyid");
    served(&w, 2);
    assert!(w.view().root_offline());

    // download-roots: every version as served.
    let roots = online(&w, "roots.tgz");
    fio(&w, &["keys", "tuf", "download-roots", path_str(&roots)]).says("= Adding 2.root.json");
    let entries = tar_entries(&roots);
    assert_eq!(
        entries.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["1.root.json", "2.root.json"]
    );
    for (i, (_, bytes)) in entries.iter().enumerate() {
        let r = SignedRoot::from_json(bytes).unwrap();
        assert_eq!(r.signed.version, i as u64 + 1);
    }

    // A later root rotation.
    fioctl_rotated(&w, "root", false, &root_keys, None);
    served(&w, 3);

    // The first targets key rotation, into a separate tarball (no production targets yet).
    fioctl_rotated(&w, "targets", false, &root_keys, Some(&targets_keys))
        .says("= New Target keyid");
    served(&w, 4);
    let t1 = w.offline_targets();
    assert_eq!(tarball_keyids(&targets_keys, Role::Targets), t1);

    // A wave: the first production tag.
    let newest = w.init.builds.to_string();
    fioctl_release(&w, &targets_keys, ("wave-1", &newest, "production"));
    w.assert_targets_signed_by(&t1[0]);
    assert_eq!(w.device_check().targets_checked, ["prod:production"]);

    // A second targets rotation re-signs the production tag with the new key.
    fioctl_rotated(&w, "targets", false, &root_keys, Some(&targets_keys))
        .says("= Re-signing prod Targets");
    served(&w, 5);
    let t2 = w.offline_targets();
    assert_ne!(t2, t1);
    w.assert_targets_signed_by(&t2[0]);

    // An active wave: the targets rotation is refused by the server at apply (fioctl's help:
    // "if there is an active Wave in your factory, the TUF targets rotation is not
    // allowed"), nothing changes; once the wave is complete it goes through.
    let run = w.fioctl(
        &w.online,
        [
            "waves",
            "init",
            "-k",
            path_str(&targets_keys),
            "wave-2",
            &(w.init.builds).to_string(),
            "qa",
        ],
    );
    run.ok();
    let server = w.server_state();
    let run = fioctl_rotate(&w, "targets", false, &root_keys, Some(&targets_keys));
    assert_ne!(run.code, 0, "{}", run.stdout);
    run.says("not allowed while a wave is active")
        .says("No changes were made to your Factory");
    assert_eq!(w.offline_targets(), t2);
    fio(&w, &["keys", "tuf", "updates", "cancel"]);
    assert_eq!(
        w.server_state(),
        server,
        "the cancel restores the state before"
    );
    fio(&w, &["waves", "complete", "wave-2"]);

    served(&w, 5);
    assert_eq!(
        w.device_check().targets_checked,
        ["prod:production", "prod:qa"]
    );
}

#[test]
#[cfg_attr(
    not(has_fioctl),
    ignore = "fioctl not installed: set OFFLINE_TUF_FIOCTL to a fioctl binary (README: Tests)"
)]
fn fioctl_with_the_targets_key_in_the_root_tarball() {
    let w = World::new(WorldOptions::default());
    let keys = online(&w, "offline-creds.tgz");
    let rotate = |role: &str, first: bool| fioctl_rotated(&w, role, first, &keys, None);
    rotate("root", true);
    rotate("targets", false);
    served(&w, 3);
    let t1 = w.offline_targets();
    assert_eq!(tarball_keyids(&keys, Role::Targets), t1);
    let newest = w.init.builds.to_string();
    fioctl_release(&w, &keys, ("w", &newest, "production"));
    rotate("targets", false);
    served(&w, 4);
    let t2 = w.offline_targets();
    assert_ne!(t1, t2);
    w.assert_targets_signed_by(&t2[0]);
    // Both targets keys stay in the one tarball, next to the root key and first-root.
    let held = tarball_keyids(&keys, Role::Targets);
    assert!(held.contains(&t1[0]) && held.contains(&t2[0]), "{held:?}");
}

/// The members of a `.tar.gz` (name and bytes).
fn tar_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
    let mut tar = tar::Archive::new(gz);
    let mut out = Vec::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        out.push((name, bytes));
    }
    out
}

/// The transaction id `fioctl keys tuf updates init` printed.
fn txid_of(run: &Run) -> String {
    let text = format!("{}\n{}", run.stdout, run.stderr);
    let (_, rest) = text
        .split_once("Your transaction ID is ")
        .unwrap_or_else(|| panic!("no transaction id in: {text}"));
    rest.split_whitespace().next().unwrap().to_string()
}

/// `fioctl keys tuf updates ARGS`, which must succeed.
fn updates(w: &World, args: &[&str]) -> Run {
    let mut all = vec!["keys", "tuf", "updates"];
    all.extend(args);
    fio(w, &all)
}

/// Starts a transaction with `changelog`; returns its id.
fn begin(w: &World, changelog: &str) -> String {
    txid_of(
        &updates(w, &["init", "-m", changelog])
            .says("A new transaction to update TUF root keys started."),
    )
}

#[test]
#[cfg_attr(
    not(has_fioctl),
    ignore = "fioctl not installed: set OFFLINE_TUF_FIOCTL to a fioctl binary (README: Tests)"
)]
fn fioctl_expert_mode_on_an_offline_factory() {
    // A factory that went offline the way fioctl takes it offline (`factory-sim init
    // --offline-keys`): its tarballs are the ones fioctl reads here.
    let w = World::new(WorldOptions {
        history: History::Offline,
        tags: 2,
        prod_behind: 1,
        ..WorldOptions::default()
    });
    let root_keys = w.offline.path("root.keys.tgz");
    let targets_keys = w.offline.path("targets.keys.tgz");
    let root2_keys = online(&w, "root2.keys.tgz");
    let targets2_keys = online(&w, "targets2.keys.tgz");
    served(&w, 3);
    let r1 = role_keys(&w, Role::Root);
    let t1 = w.offline_targets();

    // A second root key and a threshold of 2: sign with both, apply.
    let txid = begin(&w, "a second root key");
    updates(&w, &["review"])
        .says("Create TUF root version 4")
        .says("These updates to your staged TUF root are mandatory");
    let added = updates(
        &w,
        &[
            "add-offline-key",
            "--txid",
            &txid,
            "--role",
            "root",
            "--keys",
            path_str(&root2_keys),
        ],
    )
    .says("= New root keyid");
    let r2 = tarball_keyids(&root2_keys, Role::Root);
    assert_eq!(r2.len(), 1);
    assert!(added.stdout.contains(r2[0].as_str()), "{}", added.stdout);
    updates(
        &w,
        &[
            "set-threshold",
            "--txid",
            &txid,
            "--role",
            "root",
            "2",
            "--keys",
            path_str(&root_keys),
            "--sign",
        ],
    )
    .says("= Signing new TUF root");
    let diff = updates(&w, &["review", "--diff"]).stdout;
    for line in [
        "-    \"version\": 3,",
        "+    \"version\": 4,",
        "-        \"threshold\": 1",
        "+        \"threshold\": 2",
    ] {
        assert!(diff.contains(line), "{line:?} not in the diff:\n{diff}");
    }
    updates(
        &w,
        &["sign", "--txid", &txid, "--keys", path_str(&root2_keys)],
    );
    updates(&w, &["apply", "--txid", &txid]).says(APPLIED);
    served(&w, 4);
    assert_eq!(role_keys(&w, Role::Root), [r1.clone(), r2.clone()].concat());

    // Back to one root key: the old root needs both signatures.
    let txid = begin(&w, "back to one root key");
    updates(
        &w,
        &[
            "delete-offline-key",
            "--txid",
            &txid,
            "--role",
            "root",
            "--keys",
            path_str(&root2_keys),
        ],
    )
    .says(&format!("= Removing unused key: {}", r2[0].as_str()));
    updates(
        &w,
        &["set-threshold", "--txid", &txid, "--role", "root", "1"],
    );
    updates(
        &w,
        &["sign", "--txid", &txid, "--keys", path_str(&root_keys)],
    );
    updates(
        &w,
        &["sign", "--txid", &txid, "--keys", path_str(&root2_keys)],
    );
    updates(&w, &["apply", "--txid", &txid]).says(APPLIED);
    served(&w, 5);
    assert_eq!(role_keys(&w, Role::Root), r1);

    // New online keys: the server signs what it serves with them from now on.
    let before = w.view().online_keys().clone();
    let txid = begin(&w, "new online keys");
    updates(
        &w,
        &[
            "rotate-online-key",
            "--txid",
            &txid,
            "--role",
            "targets,snapshot,timestamp",
            "--keys",
            path_str(&root_keys),
            "--sign",
        ],
    )
    .says("= New online targets keyid")
    .says("= Signing new TUF root");
    updates(&w, &["apply", "--txid", &txid]).says(APPLIED);
    served(&w, 6);
    let after = w.view().online_keys().clone();
    assert_ne!(after.targets, before.targets);
    assert_ne!(after.snapshot, before.snapshot);
    assert_ne!(after.timestamp, before.timestamp);
    w.assert_targets_signed_by(&after.targets);

    // A second offline targets key, production targets threshold 3: sign-prod-targets with
    // its documented default (all tags, all active waves — there are none).
    let txid = begin(&w, "a second targets key");
    updates(
        &w,
        &[
            "add-offline-key",
            "--txid",
            &txid,
            "--role",
            "targets",
            "--keys",
            path_str(&targets2_keys),
        ],
    )
    .says("= New targets keyid");
    let t2 = tarball_keyids(&targets2_keys, Role::Targets);
    updates(
        &w,
        &["set-threshold", "--txid", &txid, "--role", "targets", "3"],
    );
    for keys in [&targets_keys, &targets2_keys] {
        updates(
            &w,
            &[
                "sign-prod-targets",
                "--txid",
                &txid,
                "--keys",
                path_str(keys),
            ],
        )
        .says("= Uploading new signatures");
    }
    updates(
        &w,
        &["sign", "--txid", &txid, "--keys", path_str(&root_keys)],
    );
    updates(&w, &["review"])
        .says("Change production TUF targets threshold from 2 to 3")
        .says("signature(s) to the production targets of tag production");
    updates(&w, &["apply", "--txid", &txid]).says(APPLIED);
    served(&w, 7);
    assert_eq!(w.offline_targets(), [t1.clone(), t2.clone()].concat());
    let prod = w.view().prod_root().unwrap().unwrap();
    assert_eq!(prod.signed.roles["targets"].threshold, 3);
    w.assert_targets_signed_by(&t1[0]);
    w.assert_targets_signed_by(&t2[0]);

    // A wave needs all three now: waves init signs with one offline key, waves sign adds the
    // other; a device accepts it only then.
    let newest = w.init.builds.to_string();
    fio(
        &w,
        &[
            "waves",
            "init",
            "-k",
            path_str(&targets_keys),
            "wave-7",
            &newest,
            "production",
        ],
    );
    let wave = w.view().wave_targets("wave-7").unwrap().unwrap();
    assert_eq!(wave.signatures.len(), 2);
    fio(
        &w,
        &["waves", "sign", "-k", path_str(&targets2_keys), "wave-7"],
    );
    let wave = w.view().wave_targets("wave-7").unwrap().unwrap();
    assert_eq!(wave.signatures.len(), 3);
    assert!(w
        .device_check()
        .targets_checked
        .contains(&"wave:wave-7".to_string()));
    fio(&w, &["waves", "complete", "wave-7"]);
    let tag = w.view().prod_targets("production").unwrap().unwrap();
    assert_eq!(tag.signed.version, w.init.builds);

    // A transaction that is cancelled leaves the factory as it was.
    let state = w.server_state();
    let txid = begin(&w, "changed my mind");
    updates(
        &w,
        &[
            "delete-offline-key",
            "--txid",
            &txid,
            "--role",
            "targets",
            "--key-id",
            t2[0].as_str(),
        ],
    );
    updates(&w, &["cancel"]);
    assert!(w.view().transaction().is_none());
    assert_eq!(w.server_state(), state);
    served(&w, 7);
}

#[test]
#[cfg_attr(
    not(has_fioctl),
    ignore = "fioctl not installed: set OFFLINE_TUF_FIOCTL to a fioctl binary (README: Tests)"
)]
fn a_production_root_not_staged_yet_is_derived_as_fioctl_derives_it() {
    // A first-time transaction: the server stages the next CI root and no production root;
    // fioctl shows (and would sign) its genProdTufRoot of the staged CI root, the courier
    // shows the same document (the signer derives it with the same shared function).
    let w = World::new(WorldOptions::default());
    let initial = online(&w, "initial.keys.tgz");
    updates(
        &w,
        &[
            "init",
            "--first-time",
            "-m",
            "first",
            "--keys",
            path_str(&initial),
        ],
    );
    let tx: serde_json::Value = serde_json::from_slice(
        &w.api_get("/ota/repo/acme/api/v1/user_repo/root/updates")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(tx["updated"]["prod-root"], "", "{tx}");
    let theirs = SignedRoot::from_json(
        updates(&w, &["review", "--raw", "--prod"])
            .stdout
            .as_bytes(),
    )
    .unwrap();
    let ours = SignedRoot::from_json(
        w.courier(["updates", "review", "--raw", "--prod"])
            .ok()
            .stdout
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(theirs.signed.roles["targets"].threshold, 2);
    assert_eq!(
        (theirs.signed.version, theirs.signed.keys.len()),
        (2, w.view().ci_root().unwrap().signed.keys.len())
    );
    updates(&w, &["cancel"]);
}

#[test]
#[cfg_attr(
    not(has_fioctl),
    ignore = "fioctl not installed: set OFFLINE_TUF_FIOCTL to a fioctl binary (README: Tests)"
)]
fn fioctl_rotates_the_targets_key_of_a_factory_with_production_tags() {
    // `factory-sim init --tags 2 --offline-keys`: the tags carry the online and the offline
    // targets signature, as on a real factory, so fioctl re-signs both and apply accepts.
    let w = World::new(WorldOptions {
        history: History::Offline,
        tags: 2,
        waves: 1,
        prod_behind: 1,
        ..WorldOptions::default()
    });
    let root_keys = w.offline.path("root.keys.tgz");
    let targets_keys = w.offline.path("targets.keys.tgz");
    let t1 = w.offline_targets();
    w.assert_targets_signed_by(&t1[0]);
    let wave = w.init.waves[0].clone();
    fio(&w, &["waves", "complete", &wave]);
    fioctl_rotated(&w, "targets", false, &root_keys, Some(&targets_keys))
        .says("= Re-signing prod Targets");
    served(&w, 4);
    let t2 = w.offline_targets();
    assert_ne!(t2, t1);
    w.assert_targets_signed_by(&t2[0]);
    assert_eq!(w.device_check().targets_checked.len(), 2);
}
