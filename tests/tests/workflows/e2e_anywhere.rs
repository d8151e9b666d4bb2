//! What an operator hits in a real ceremony (issue 19, the courier side): a response pushed
//! from another online machine or after the courier's state was lost, pushed twice or after
//! apply; waves signed, rolled out, completed and canceled without fioctl; a targets key
//! rotation waiting for the active waves; fioctl's flags given to the courier; the wrong
//! file given as a bundle. Every message a person reads here is a snapshot
//! (`tests/snapshots/`).

use std::path::Path;

use shared::metadata::Role;
use tests::harness::{path_str, History, World, WorldOptions};

fn p(path: &Path) -> &str {
    path_str(path)
}

#[test]
fn a_response_is_pushed_from_any_online_machine() {
    let w = World::new(WorldOptions::offline(1));
    let root_keys = w.offline.path("root.keys.tgz");
    w.pin_trust(&w.offline, &[]);

    // A root rotation requested on the online machine, signed offline, pushed from a second
    // online machine whose courier never saw the request.
    let (req, resp) = (w.usb("rot.req.tufbundle"), w.usb("rot.resp.tufbundle"));
    w.request_rotation("root", &req);
    w.rotate_root_with(&w.offline, &root_keys, &req, &resp);
    let run = w
        .courier_on(&w.online2, ["updates", "push", p(&resp), "--apply"])
        .ok()
        .says("was not written on this machine")
        .says("root is now version 4");
    w.snapshot_run("push-from-another-machine", &run);

    // Pushed again, on either machine: already applied, nothing uploaded.
    let before = w.server_state();
    let run = w
        .courier_on(&w.online2, ["updates", "push", p(&resp), "--apply"])
        .ok();
    w.snapshot_run("push-already-applied", &run);
    w.courier(["updates", "push", p(&resp)])
        .ok()
        .says("byte-identical to the copy kept here")
        .says("already applied as version 4");
    assert_eq!(w.server_state(), before, "nothing was uploaded again");

    // The online machine loses its courier state between pull and push.
    let (req2, resp2) = (w.usb("rot2.req.tufbundle"), w.usb("rot2.resp.tufbundle"));
    w.request_rotation("root", &req2);
    let state = w.online.path(".local/state/offline-tuf");
    assert!(
        state.join("courier/requests").is_dir(),
        "{}",
        state.display()
    );
    std::fs::remove_dir_all(&state).expect("lose the courier state");
    w.rotate_root_with(&w.offline, &root_keys, &req2, &resp2);
    w.courier(["updates", "push", p(&resp2), "--apply"])
        .ok()
        .says("was not written on this machine")
        .says("root is now version 5");

    // A response pushed without --apply twice, from two machines, then applied.
    w.courier(["updates", "init", "-m", "re-sign"]).ok();
    let (req3, resp3) = (w.usb("sign.req.tufbundle"), w.usb("sign.resp.tufbundle"));
    w.courier(["updates", "pull", "--bundle", p(&req3)]).ok();
    w.sign_with(&w.offline, &root_keys, &req3, &resp3);
    w.courier_on(&w.online2, ["updates", "push", p(&resp3)])
        .ok()
        .says("Uploaded");
    w.courier(["updates", "push", p(&resp3), "--apply"])
        .ok()
        .says("already uploaded")
        .says("root is now version 6");
    assert_eq!(w.device_check().ci_version, 6);
}

#[test]
fn waves_are_signed_rolled_out_and_completed_without_fioctl() {
    // An offline factory whose production targets need three signatures (the online key and
    // two offline targets keys, held on two laptops); the newest CI build is not in
    // production yet; four devices follow the tag.
    let tag = "production".to_string();
    let w = World::new(WorldOptions {
        tags: 1,
        prod_behind: 1,
        history: History::Offline,
        device_tags: vec![tag.clone()],
        ..WorldOptions::default()
    });
    assert_eq!(w.init.tags, vec![tag.clone()]);
    let root_keys = w.offline.path("root.keys.tgz");
    let targets_keys = w.offline.path("targets.keys.tgz");
    let targets2_keys = w.offline2.path("targets2.keys.tgz");
    w.pin_trust(&w.offline, &[]);
    w.pin_trust(&w.offline2, &[]);
    w.pin_cosigners();
    w.courier(["updates", "init", "-m", "second targets key"])
        .ok();
    let (req, step, resp) = (
        w.usb("t2.req.tufbundle"),
        w.usb("t2.step.tufbundle"),
        w.usb("t2.resp.tufbundle"),
    );
    w.courier([
        "updates",
        "pull",
        "--op",
        "add-targets-key,set-targets-threshold",
        "--threshold",
        "3",
        "--bundle",
        p(&req),
    ])
    .ok();
    w.signer(
        &w.offline2,
        [
            "--yes",
            "add-offline-key",
            "--role",
            "targets",
            "--targets-keys",
            p(&targets2_keys),
            p(&req),
            "-o",
            p(&step),
        ],
    )
    .ok();
    w.signer(
        &w.offline,
        [
            "--yes",
            "set-threshold",
            "--role",
            "targets",
            "3",
            "--keys",
            p(&root_keys),
            p(&step),
            "-o",
            p(&resp),
        ],
    )
    .ok();
    w.push_apply(&resp);
    let prod = w.view().prod_root().unwrap().unwrap();
    assert_eq!(prod.signed.threshold(Role::Targets), 3);

    // waves init here, signed with the first targets key, created from the second machine.
    let version = WorldOptions::default().targets.to_string();
    let (wreq, wresp) = (w.usb("w1.req.tufbundle"), w.usb("w1.resp.tufbundle"));
    w.courier(["waves", "init", "w1", &version, &tag, "--bundle", p(&wreq)])
        .ok();
    w.signer(
        &w.offline,
        [
            "--yes",
            "sign-wave",
            "w1",
            "--targets-keys",
            p(&targets_keys),
            p(&wreq),
            "-o",
            p(&wresp),
        ],
    )
    .ok();
    let run = w
        .courier_on(&w.online2, ["waves", "push", p(&wresp)])
        .ok()
        .says("Wave w1 created");
    w.snapshot_run("waves-push-created-elsewhere", &run);

    // Two signatures of three: no rollout, no completion yet.
    let before = w.server_state();
    let run = w.courier(["waves", "rollout", "w1", "--group", "east"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    w.snapshot_run("waves-rollout-needs-signatures", &run);
    let run = w.courier(["waves", "complete", "w1"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(w.server_state(), before);

    // waves sign: the second targets key holder signs the existing wave.
    let (sreq, sresp) = (
        w.usb("w1.sign.req.tufbundle"),
        w.usb("w1.sign.resp.tufbundle"),
    );
    let run = w
        .courier_on(&w.online2, ["waves", "sign", "w1", "--bundle", p(&sreq)])
        .ok();
    w.snapshot_run("waves-sign-request", &run);
    w.signer(
        &w.offline2,
        [
            "--yes",
            "sign-wave",
            "w1",
            "--targets-keys",
            p(&targets2_keys),
            p(&sreq),
            "-o",
            p(&sresp),
        ],
    )
    .ok();
    let run = w.courier(["waves", "push", p(&sresp)]).ok();
    w.snapshot_run("waves-push-signatures", &run);
    let before = w.server_state();
    w.courier_on(&w.online2, ["waves", "push", p(&sresp)])
        .ok()
        .says("already carries the signatures");
    assert_eq!(w.server_state(), before);

    // Rollouts: a dry run changes nothing; then one device anywhere, then group west.
    let run = w
        .courier([
            "waves",
            "rollout",
            "w1",
            "--group",
            "east",
            "--dry-run",
            "--print-names",
        ])
        .ok();
    w.snapshot_run("waves-rollout-dry-run", &run);
    assert_eq!(w.server_state(), before);
    let run = w.courier(["waves", "rollout", "w1", "--limit", "1"]).ok();
    w.snapshot_run("waves-rollout-limit", &run);
    w.courier(["waves", "rollout", "w1", "-g", "west", "--print-uuids"])
        .ok()
        .says("2 devices in group \"west\"");
    let run = w.courier(["waves", "rollout", "w1"]);
    assert_eq!(run.code, 2);
    w.snapshot_run("waves-rollout-without-devices", &run);
    let rolled = w
        .view()
        .waves()
        .into_iter()
        .find(|x| x.name == "w1")
        .unwrap()
        .rolled_out;
    assert_eq!(rolled.len(), 3, "{rolled:?}");

    // Completed: the tag now serves the wave's targets, with three signatures.
    let run = w.courier(["waves", "complete", "w1"]).ok();
    w.snapshot_run("waves-complete", &run);
    let doc = w.view().prod_targets(&tag).unwrap().unwrap();
    assert_eq!(doc.signed.version.to_string(), version);
    assert_eq!(doc.signatures.len(), 3);
    w.device_check();
}

#[test]
fn a_targets_rotation_waits_for_the_active_waves() {
    // Two tags, each with an active wave.
    let w = World::new(WorldOptions {
        tags: 2,
        waves: 2,
        history: History::Offline,
        ..WorldOptions::default()
    });
    let root_keys = w.offline.path("root.keys.tgz");
    let targets_keys = w.offline.path("targets.keys.tgz");
    w.pin_trust(&w.offline, &[]);
    let waves: Vec<_> = w.view().waves();
    assert_eq!(waves.len(), 2);
    let (req, resp) = (w.usb("t.req.tufbundle"), w.usb("t.resp.tufbundle"));
    // The shortcut refuses before it starts anything, naming what to do.
    let before = w.server_state();
    let run = w.courier([
        "rotate-offline-key",
        "--role",
        "targets",
        "--bundle",
        p(&req),
    ]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    w.snapshot_run("rotation-request-while-a-wave-is-active", &run);
    assert_eq!(w.server_state(), before);
    // Expert mode gets as far as the apply, which the server refuses.
    w.courier(["updates", "init", "-m", "rotate the targets key"])
        .ok();
    w.courier([
        "updates",
        "pull",
        "--op",
        "rotate-targets",
        "--bundle",
        p(&req),
    ])
    .ok();
    w.rotate_targets(&w.offline, &root_keys, &targets_keys, &req, &resp);
    let run = w.courier(["updates", "push", p(&resp), "--apply"]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    let run = run.says("complete or cancel the wave");
    w.snapshot_run("rotation-refused-while-a-wave-is-active", &run);

    // One wave canceled: still refused for the other.
    w.courier(["waves", "cancel", &waves[0].name])
        .ok()
        .says("canceled");
    w.courier(["updates", "apply"]).fails().says(&waves[1].name);
    // The other completed: its targets became the tag's, which the staged rotation has not
    // signed with the new key; the courier says how to finish.
    let run = w.courier(["waves", "complete", &waves[1].name]).ok();
    w.snapshot_run("waves-complete-during-a-rotation", &run);
    let tag = waves[1].tag.clone();
    let (preq, presp) = (w.usb("tag.req.tufbundle"), w.usb("tag.resp.tufbundle"));
    w.courier(["prod-targets", "pull", "--tags", &tag, "--bundle", p(&preq)])
        .ok();
    w.signer(
        &w.offline,
        [
            "--yes",
            "sign-prod-targets",
            "--targets-keys",
            p(&targets_keys),
            p(&preq),
            "-o",
            p(&presp),
        ],
    )
    .ok();
    w.push_apply(&presp).says("root is now version 4");
    let new_key = w.offline_targets();
    assert_eq!(new_key.len(), 1);
    w.assert_targets_signed_by(&new_key[0]);
    w.device_check();
}

#[test]
fn fioctl_habits_and_wrong_files_are_explained() {
    let w = World::new(WorldOptions {
        history: History::Offline,
        ..WorldOptions::default()
    });
    // fioctl flags that belong to the signer (usage errors, exit 2, nothing sent).
    let before = w.server_state();
    for (name, args) in [
        (
            "habit-rotate-keys",
            vec![
                "rotate-offline-key",
                "--role",
                "root",
                "--keys",
                "root.keys.tgz",
            ],
        ),
        (
            "habit-rotate-targets-keys",
            vec![
                "rotate-offline-key",
                "-r",
                "targets",
                "-K",
                "targets.keys.tgz",
            ],
        ),
        (
            "habit-rotate-key-type",
            vec!["rotate-offline-key", "-r", "root", "-y", "RSA"],
        ),
        (
            "habit-online-key-sign",
            vec![
                "updates",
                "rotate-online-key",
                "-r",
                "timestamp",
                "--sign",
                "-k",
                "k.tgz",
            ],
        ),
        (
            "habit-waves-init-keys",
            vec![
                "waves",
                "init",
                "w",
                "6",
                "production",
                "-k",
                "targets.keys.tgz",
            ],
        ),
        (
            "habit-updates-sign",
            vec!["updates", "sign", "-k", "root.keys.tgz"],
        ),
        ("habit-keys-tuf", vec!["keys", "tuf", "show-root"]),
    ] {
        let run = w.courier(&args);
        assert_eq!(run.code, 2, "{}: {}", run.command_line, run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        w.snapshot_run(name, &run);
    }
    assert_eq!(w.server_state(), before);
    // fioctl's spellings the courier takes as they are.
    w.courier([
        "updates",
        "rotate-online-key",
        "-r",
        "timestamp",
        "-y",
        "RSA",
    ])
    .fails()
    .says("no TUF root updates in progress");
    w.courier(["waves", "list", "-S", "active", "-T", "production"])
        .ok();

    // The wrong file given as a bundle.
    let keys = w.online.path("root.keys.tgz");
    std::fs::copy(w.offline.path("root.keys.tgz"), &keys).expect("copy");
    let root = w.online.path("root.json");
    std::fs::write(&root, w.courier(["show-root"]).ok().stdout).expect("root.json");
    let other = w.online.path("notes.json");
    std::fs::write(&other, br#"{"hello": "world"}"#).expect("json");
    let secret = shared::keys::PrivateKey::generate(shared::keys::KeyType::Ed25519).unwrap();
    let secret_json = secret.to_json();
    let private = w.online.path("first-root.sec");
    std::fs::write(&private, &*secret_json).expect("key");
    let recipient = age::x25519::Identity::generate().to_public();
    let sealed = age::encrypt(&recipient, &std::fs::read(&keys).unwrap()).expect("age");
    let encrypted = w.online.path("root.keys.tgz.age");
    std::fs::write(&encrypted, sealed).expect("age file");
    for (name, cmd, file) in [
        ("wrong-file-keys-tarball", "updates", &keys),
        ("wrong-file-keys-tarball-waves", "waves", &keys),
        ("wrong-file-encrypted-keys", "updates", &encrypted),
        ("wrong-file-root-json", "updates", &root),
        ("wrong-file-other-json", "updates", &other),
        ("wrong-file-private-key", "updates", &private),
    ] {
        let run = w.courier([cmd, "push", p(file)]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        let parsed: serde_json::Value = serde_json::from_slice(&secret_json).unwrap();
        let private_hex = parsed["keyval"]["private"].as_str().unwrap();
        assert!(!run.stderr.contains(private_hex) && !run.stdout.contains(private_hex));
        w.snapshot_run(name, &run);
    }
    assert_eq!(w.server_state(), before);
}
