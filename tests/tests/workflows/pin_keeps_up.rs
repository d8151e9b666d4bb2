//! The pin keeps up (issue 19): after a rotation is applied, the signer's trusted root
//! advances when it next sees the applied root in a bundle — said in one line and recorded in
//! the audit log — and the `keys` commands compare keys files with that pinned root without
//! `--root`. A rotation whose response was never pushed leaves a key that `keys list` marks
//! as never applied. Without a pin, the commands that need the active key say how to pin.

use tests::harness::{path_str, World, WorldOptions};

/// `signer keys list --keys KEYS` on the root key holder's laptop (no `--root`).
fn list(w: &World, keys: &std::path::Path) -> String {
    w.signer_keys(&w.offline, "list", keys, &[]).ok().stdout
}

/// `text` with each key id of `names` replaced by its name (so that a snapshot says which
/// key is which).
fn named(text: &str, names: &[(&shared::keys::KeyId, &str)]) -> String {
    names.iter().fold(text.to_string(), |t, (id, name)| {
        t.replace(id.as_str(), name)
    })
}

/// The line of `text` that says the pin advanced.
fn advance_line(text: &str) -> String {
    text.lines()
        .find(|l| l.starts_with("The trusted root advanced"))
        .unwrap_or_else(|| panic!("no advance line in:\n{text}"))
        .to_string()
}

#[test]
fn an_applied_rotation_advances_the_pin_and_a_never_pushed_one_is_marked() {
    let w = World::new(WorldOptions::default());
    let keys = w.offline.path("root.keys.tgz");
    let k1 = w.first_time_rotation(&w.offline, &keys);
    let first = w.init.root_keyid.clone();

    // A laptop with no pin: the commands that need the active key say how to pin; the list
    // still lists, compared with nothing.
    let elsewhere = w.offline2.path("root.keys.tgz");
    std::fs::copy(&keys, &elsewhere).unwrap();
    let out = w.offline2.path("out.txt");
    let m2 = &w.offline2;
    for (name, run) in [
        (
            "keys-export-root-no-pin",
            w.keys_export_root(m2, &elsewhere, &out, &[]),
        ),
        ("keys-print-no-pin", w.keys_print(m2, &elsewhere, &out, &[])),
        (
            "keys-drill-no-pin",
            w.signer_keys(m2, "drill", &elsewhere, &[]),
        ),
    ] {
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        w.snapshot_text(name, &run.stderr);
        assert!(!out.exists());
    }
    w.signer_keys(m2, "list", &elsewhere, &[])
        .ok()
        .says("not compared with any root")
        .says("active: unknown");

    // The first-time rotation was applied, but this laptop has seen no bundle since: its pin
    // is v1. The new key is "not yet" applied, and a backup of "the active key" is refused
    // rather than taken from the stale pin.
    let ids = [(&k1, "[K1]"), (&first, "[FIRST]")];
    w.snapshot_text("keys-list-pin-behind", &named(&list(&w, &keys), &ids));
    let sheet = w.offline.path("sheet.txt");
    let run = w.keys_print(&w.offline, &keys, &sheet, &[]).fails();
    w.snapshot_text("keys-print-pin-behind", &named(&run.stderr, &ids));
    assert!(!sheet.exists());

    // The next request bundle: inspecting it advances the pin to the applied v2.
    let req_a = w.usb("a.req.tufbundle");
    w.request_rotation("root", &req_a);
    let run = w.signer(&w.offline, ["inspect", path_str(&req_a)]).ok();
    w.snapshot_text("pin-advanced", &format!("{}\n", advance_line(&run.stdout)));
    w.signer(&w.offline, ["trust", "show"])
        .ok()
        .says("version:      2");
    w.signer(&w.offline, ["audit", "show"])
        .ok()
        .says("trusted root of acme advanced from v1 to v2");
    // Seen once is enough: the same bundle again moves nothing.
    let again = w.signer(&w.offline, ["inspect", path_str(&req_a)]).ok();
    assert!(!again.stdout.contains("advanced"), "{}", again.stdout);
    assert!(list(&w, &keys).contains("active: yes, role(s) root"));

    // Rotation A: the response is written but never pushed; the transaction is cancelled.
    let resp_a = w.usb("a.resp.tufbundle");
    w.rotate_root_with(&w.offline, &keys, &req_a, &resp_a);
    let k2 = tests::harness::tarball_keyids(&keys, shared::metadata::Role::Root)
        .into_iter()
        .find(|k| *k != k1 && *k != first)
        .unwrap();
    w.courier(["updates", "cancel"]).ok();
    assert!(list(&w, &keys).contains("active: not yet: created"));

    // Rotation B is pushed and applied as v3, with another new key.
    let req_b = w.usb("b.req.tufbundle");
    let resp_b = w.usb("b.resp.tufbundle");
    w.request_rotation("root", &req_b);
    w.rotate_root_with(&w.offline, &keys, &req_b, &resp_b);
    w.push_apply(&resp_b);
    let k3 = w
        .view()
        .ci_root()
        .unwrap()
        .signed
        .role_keyids(shared::metadata::Role::Root)[0]
        .clone();
    assert!(k3 != k2 && k3 != k1);

    // The next bundle advances the pin to v3; rotation A's key is marked as never applied.
    let req_c = w.usb("c.req.tufbundle");
    w.courier(["updates", "init"]).ok();
    w.courier(["updates", "pull", "--bundle", path_str(&req_c)])
        .ok();
    let run = w.signer(&w.offline, ["inspect", path_str(&req_c)]).ok();
    assert!(advance_line(&run.stdout).contains("from v2 to v3"));
    w.courier(["updates", "cancel"]).ok();
    let ids = [
        (&k1, "[K1]"),
        (&k2, "[K2]"),
        (&k3, "[K3]"),
        (&first, "[FIRST]"),
    ];
    w.snapshot_text("keys-list-never-applied", &named(&list(&w, &keys), &ids));
    let json = w
        .signer_keys(&w.offline, "list", &keys, &["--json"])
        .ok()
        .stdout;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let state_of = |k: &shared::keys::KeyId| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|e| e["keyid"] == k.as_str())
            .map(|e| e["status"]["state"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(state_of(&k3), "active");
    assert_eq!(state_of(&k2), "never-applied");
    assert_eq!(state_of(&k1), "rotated-out");
    assert_eq!(state_of(&first), "rotated-out");

    // Without --root, the backup commands take the active key from the pin: k3.
    w.keys_print(&w.offline, &keys, &sheet, &[])
        .ok()
        .says(k3.as_str())
        .says("the active root key of the root pinned in");
    w.signer_keys(&w.offline, "drill", &keys, &[])
        .ok()
        .says(&format!(
            "its key {k3} is a root key of acme's current root v3"
        ));
}
