//! A response pushed from an online machine that did not write its request (issue 19): the
//! courier has only the factory's live transaction to check the response against, and the
//! stick (and the other machine) are the attacker's. Each tampered response is refused by
//! the courier of a second online machine, and the server's state stays byte for byte.

use serde_json::Value;
use shared::archive;
use shared::bundle::{self, TransferBundle};
use shared::test_support::cases::{run_cases, Case};
use tests::harness::{path_str, Run, World, WorldOptions};
use tests::tamper::{pack, parts};

/// A bundle file's bytes as a plain tar (what [`parts`] reads).
fn plain(path: &std::path::Path) -> Vec<u8> {
    TransferBundle::read(path)
        .expect("bundle")
        .to_bytes(archive::Compression::None)
        .expect("plain")
}

/// Pushes `bytes` (written as `name` on the stick) with `--apply` from the second online
/// machine; it must be refused with one error line and change nothing on the server.
fn refused_elsewhere(w: &World, name: &str, bytes: &[u8]) -> Run {
    let before = w.server_state();
    let file = w.write_usb(name, bytes);
    let run = w
        .courier_on(&w.online2, ["updates", "push", path_str(&file), "--apply"])
        .fails();
    assert!(!run.stderr.trim().is_empty(), "{name}: no error message");
    assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
    assert_eq!(w.server_state(), before, "{name}: server state changed");
    run
}

fn edit_root_member(tx: &[u8], pair: &str, which: &str, f: impl Fn(&mut Value)) -> Vec<u8> {
    let mut tx: Value = serde_json::from_slice(tx).expect("transaction");
    let text = tx[pair][which].as_str().expect("root").to_string();
    let mut root: Value = serde_json::from_str(&text).expect("root json");
    f(&mut root);
    tx[pair][which] = Value::String(serde_json::to_string(&root).expect("json"));
    serde_json::to_vec(&tx).expect("json")
}

#[test]
fn responses_are_checked_against_the_live_transaction_without_the_local_copy() {
    let w = World::new(WorldOptions::offline(1));
    let root_keys = w.offline.path("root.keys.tgz");
    w.pin_trust(&w.offline, &[]);
    let mut cases_run = 0;

    // Transaction A: signed, then canceled. Transaction B: started by another admin.
    w.courier(["updates", "init", "-m", "transaction A"]).ok();
    let (req_a, resp_a) = (w.usb("a.req.tufbundle"), w.usb("a.resp.tufbundle"));
    w.courier(["updates", "pull", "--bundle", path_str(&req_a)])
        .ok();
    w.sign_with(&w.offline, &root_keys, &req_a, &resp_a);
    w.courier(["updates", "cancel"]).ok();
    w.courier(["updates", "init", "-m", "transaction B"]).ok();
    let (req_b, resp_b) = (w.usb("b.req.tufbundle"), w.usb("b.resp.tufbundle"));
    w.courier(["updates", "pull", "--bundle", path_str(&req_b)])
        .ok();
    let req_b_parts = parts(&plain(&req_b));

    // A's response with its request part rewritten to be B's (every request member).
    let mut swapped = parts(&plain(&resp_a));
    for (name, data) in &req_b_parts.members {
        swapped.members.insert(name.clone(), data.clone());
    }
    refused_elsewhere(&w, "a-as-b.tufbundle", &pack(&swapped))
        .says("signed for another transaction");
    // ...and by the machine that wrote both requests (the copy it kept differs).
    let run = w.courier([
        "updates",
        "push",
        path_str(&w.write_usb("a-as-b2.tufbundle", pack(&swapped))),
    ]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    cases_run += 2;
    // A's response as it is: its transaction is gone.
    refused_elsewhere(&w, "a.tufbundle", &plain(&resp_a)).says("stale bundle");
    cases_run += 1;

    // B's genuine response, then tampered request parts and uploads.
    w.sign_with(&w.offline, &root_keys, &req_b, &resp_b);
    let good = parts(&plain(&resp_b));
    let tx = good.members[bundle::TRANSACTION].clone();
    let edits: Vec<(&str, Vec<u8>)> = vec![
        (
            "staged CI draft's expiry edited",
            edit_root_member(&tx, "updated", "ci-root", |r| {
                r["signed"]["expires"] = Value::from("2099-01-01T00:00:00Z")
            }),
        ),
        (
            "staged production draft's threshold edited",
            edit_root_member(&tx, "updated", "prod-root", |r| {
                r["signed"]["roles"]["targets"]["threshold"] = Value::from(1)
            }),
        ),
        (
            "current root's version edited",
            edit_root_member(&tx, "current", "ci-root", |r| {
                r["signed"]["version"] = Value::from(99)
            }),
        ),
        ("status edited", {
            let mut v: Value = serde_json::from_slice(&tx).unwrap();
            v["status"] = Value::from("NONE");
            serde_json::to_vec(&v).unwrap()
        }),
        ("amendments edited", {
            let mut v: Value = serde_json::from_slice(&tx).unwrap();
            v["amendments"] = serde_json::json!([{"kind": "x", "message": "nothing to see"}]);
            serde_json::to_vec(&v).unwrap()
        }),
    ];
    let mut cases: Vec<Case<(String, Vec<u8>)>> = edits
        .into_iter()
        .map(|(label, data)| Case::new(label, (bundle::TRANSACTION.to_string(), data)))
        .collect();
    // The production targets of the tag edited (signatures kept).
    let tag = format!("{}{}.json", bundle::PROD_TARGETS_DIR, w.init.tags[0]);
    if let Some(doc) = good.members.get(&tag) {
        let mut v: Value = serde_json::from_slice(doc).unwrap();
        if let Some(t) = v["signed"]["targets"]
            .as_object_mut()
            .and_then(|t| t.values_mut().next())
        {
            t["length"] = Value::from(t["length"].as_u64().unwrap_or(0) + 1);
        }
        cases.push(Case::new(
            "tag edited",
            (tag.clone(), serde_json::to_vec(&v).unwrap()),
        ));
    }
    // The uploaded draft changed under its signatures.
    let mut up: Value = serde_json::from_slice(&good.members[bundle::UPLOAD]).unwrap();
    up["ci-root"]["signed"]["expires"] = Value::from("2099-01-01T00:00:00Z");
    cases.push(Case::new(
        "upload edited",
        (bundle::UPLOAD.to_string(), serde_json::to_vec(&up).unwrap()),
    ));
    cases_run += run_cases("hostile_push_anywhere", &cases, |label, (member, data)| {
        let mut p = good.clone();
        p.members.insert(member.clone(), data.clone());
        refused_elsewhere(
            &w,
            &format!("{}.tufbundle", label.replace(' ', "-")),
            &pack(&p),
        );
    });

    // The genuine response goes through from the second machine.
    w.courier_on(
        &w.online2,
        ["updates", "push", path_str(&resp_b), "--apply"],
    )
    .ok()
    .says("was not written on this machine")
    .says("root is now version 4");
    w.device_check();
    tests::report!(
        "hostile_push_anywhere: {cases_run} tampered responses refused by a courier without the request's local copy; the genuine one applied"
    );
}
