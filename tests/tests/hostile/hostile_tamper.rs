//! Tamper matrix through the binaries (issue 10, part 3).
//!
//! Every member of a request (read by the signer) and of a response (uploaded by the
//! courier) is modified, removed, swapped with the member of another bundle, and members
//! are added; whole bundles of an older transaction are replayed; and the staged root draft
//! inside a request is changed to add an unexplained key, lower a threshold, shorten or
//! extend the expiry, or roll the version back. Every tampered bundle is re-packed properly
//! (member digests, sizes and the manifest checksum recomputed, canonical tar), so only a
//! semantic check can catch it. Each must be refused with a non-zero exit and an error
//! message, leaving the keys tarballs byte-identical, no response written, and the
//! server's committed state unchanged. The genuine bundles are accepted afterwards (the
//! refusals were about the tampering, and a push after refused pushes is safe).
//!
//! The two matrices (requests through the signer, responses through the courier) are
//! tables of named cases: every case is tried, and the test fails naming each one that was
//! accepted or refused the wrong way.
//!
//! The workflow-level refusals (wrong factory, stale bundle, missing trust, …) are in
//! `e2e_refusals.rs`; this file is the exhaustive per-member matrix.

use std::path::{Path, PathBuf};

use serde_json::Value;
use shared::archive;
use shared::bundle::{self, TransferBundle};
use shared::canonical;
use shared::test_support::cases::{Case, Tables};
use tests::harness::{path_str, snapshot_files, History, Run, World, WorldOptions};
use tests::tamper::{pack, parts, rank};

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("member is JSON")
}

fn to_bytes(v: &Value) -> Vec<u8> {
    canonical::to_canonical(v).expect("canonical")
}

/// Flips the last hex digit of the first signature of a signed document.
fn break_first_signature_of(doc: &mut Value) -> bool {
    let Some(sig) = doc
        .pointer_mut("/signatures/0/sig")
        .and_then(|s| s.as_str().map(str::to_string))
    else {
        return false;
    };
    let mut s = sig.into_bytes();
    let last = s.len() - 1;
    s[last] = if s[last] == b'0' { b'1' } else { b'0' };
    *doc.pointer_mut("/signatures/0/sig").expect("sig") =
        Value::String(String::from_utf8(s).expect("utf8"));
    true
}

/// A semantic modification of one member (keeps it valid JSON where it was JSON).
fn modify(name: &str, data: &[u8]) -> Vec<u8> {
    if name == bundle::TRANSACTION {
        // The current CI root as the server served it: break its signature.
        let mut tx = json(data);
        let cur = tx["current"]["ci-root"]
            .as_str()
            .expect("current ci")
            .to_string();
        let mut root = json(cur.as_bytes());
        root["signed"]["version"] = Value::from(root["signed"]["version"].as_u64().expect("v") + 1);
        tx["current"]["ci-root"] = Value::String(serde_json::to_string(&root).expect("json"));
        return to_bytes(&tx);
    }
    if name == bundle::RECORD {
        // The digest a step claims its signatures cover.
        let mut rec = json(data);
        let p = "/steps/0/signatures/0/sha256";
        let v = rec
            .pointer(p)
            .and_then(Value::as_str)
            .expect("record digest");
        let other = if v.starts_with('0') { "1" } else { "0" };
        *rec.pointer_mut(p).expect("digest") = Value::String(format!("{other}{}", &v[1..]));
        return to_bytes(&rec);
    }
    if name == bundle::UPLOAD {
        let mut up = json(data);
        assert!(break_first_signature_of(&mut up["ci-root"]));
        return to_bytes(&up);
    }
    if name.ends_with(".json") {
        let mut doc = json(data);
        if name.starts_with(bundle::CHAIN_DIR) {
            // Signed content changed (one second more), signatures kept.
            let e = doc["signed"]["expires"]
                .as_str()
                .expect("expires")
                .to_string();
            let mut b = e.into_bytes();
            let i = b.len() - 2;
            b[i] = if b[i] == b'9' { b'8' } else { b[i] + 1 };
            let bumped = String::from_utf8(b).expect("utf8");
            doc["signed"]["expires"] = Value::String(bumped);
        } else {
            // Targets: content changed under the existing signatures (one more byte).
            let len = doc["signed"]["targets"]
                .as_object_mut()
                .and_then(|t| t.values_mut().next())
                .expect("a target");
            let l = len["length"].as_u64().expect("length");
            len["length"] = Value::from(l + 1);
        }
        return serde_json::to_vec(&doc).expect("json");
    }
    let mut d = data.to_vec();
    let mid = d.len() / 2;
    d[mid] ^= 0x01;
    d
}

/// Applies `f` to every staged (updated) root in a transaction.json.
fn edit_draft(tx: &[u8], f: &dyn Fn(&mut Value)) -> Vec<u8> {
    let mut tx = json(tx);
    let mut edited = 0;
    for which in ["ci-root", "prod-root"] {
        let Some(s) = tx["updated"][which].as_str().filter(|s| !s.is_empty()) else {
            continue;
        };
        let mut root = json(s.as_bytes());
        f(&mut root);
        tx["updated"][which] = Value::String(serde_json::to_string(&root).expect("json"));
        edited += 1;
    }
    assert!(edited > 0, "the request has a staged draft");
    to_bytes(&tx)
}

fn refused(run: Run) -> Run {
    let run = run.fails();
    assert!(
        !run.stderr.trim().is_empty(),
        "refusal without an error message: {}\n{}",
        run.command_line,
        run.stdout
    );
    assert!(
        !run.stderr.contains("panicked"),
        "panic instead of a clean refusal: {}\n{}",
        run.command_line,
        run.stderr
    );
    run
}

/// An edit of a staged root draft.
type DraftEdit = Box<dyn Fn(&mut Value)>;

/// A tampered bundle: what was done to it, and its bytes.
type Tampered = (String, Vec<u8>);

/// The per-member matrix of `base`: modify, remove, swap with `other`'s member, plus
/// additions.
fn member_matrix(base: &[u8], other: &[u8]) -> Vec<Tampered> {
    let p = parts(base);
    let o = parts(other);
    let mut cases = Vec::new();
    for name in p.members.keys() {
        let mut m = p.clone();
        let data = m.members[name].clone();
        m.members.insert(name.clone(), modify(name, &data));
        cases.push((format!("modified {name}"), pack(&m)));

        let mut m = p.clone();
        m.members.remove(name);
        cases.push((format!("removed {name}"), pack(&m)));

        if let Some(theirs) = o.members.get(name).filter(|t| **t != data) {
            let mut m = p.clone();
            m.members.insert(name.clone(), theirs.clone());
            cases.push((format!("{name} swapped from another bundle"), pack(&m)));
        }
    }
    // Members of the other bundle that this one does not have.
    for (name, data) in &o.members {
        if !p.members.contains_key(name) {
            let mut m = p.clone();
            m.members.insert(name.clone(), data.clone());
            cases.push((format!("added {name} from another bundle"), pack(&m)));
        }
    }
    // A next chain element (a copy of the last one), an extra tag, an unknown member.
    let last_chain = p
        .members
        .keys()
        .filter(|n| n.starts_with(bundle::CHAIN_DIR))
        .max_by_key(|n| rank(n))
        .cloned()
        .expect("chain");
    let next = rank(&last_chain).1 + 1;
    for (name, data) in [
        (
            format!("{}{next}.root.json", bundle::CHAIN_DIR),
            p.members[&last_chain].clone(),
        ),
        (
            format!("{}sneaky.json", bundle::PROD_TARGETS_DIR),
            p.members
                .iter()
                .find(|(n, _)| n.starts_with(bundle::PROD_TARGETS_DIR))
                .map(|(_, d)| d.clone())
                .unwrap_or_else(|| b"{}".to_vec()),
        ),
        ("notes.txt".to_string(), b"hello".to_vec()),
    ] {
        let mut m = p.clone();
        m.members.insert(name.clone(), data);
        cases.push((format!("added {name}"), pack(&m)));
    }
    // The manifest itself: another factory, another txid, other operations.
    for (field, value) in [
        ("factory", Value::from("other-factory")),
        ("txid", Value::from("0000-other-transaction")),
        ("operations", serde_json::json!([{"op": "sign-root"}])),
    ] {
        let mut m = p.clone();
        m.manifest[field] = value;
        cases.push((format!("manifest {field} changed"), pack(&m)));
    }
    cases
}

fn keys_snapshot(files: &[&Path]) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    snapshot_files(files)
}

#[test]
fn every_tampered_member_is_refused() {
    // A factory that went offline (root v3, targets key t1) with two production tags signed
    // by the online key and t1: a targets rotation request carries every kind of member.
    let w = World::new(WorldOptions {
        tags: 2,
        prod_behind: 1,
        history: History::Offline,
        ..WorldOptions::default()
    });
    let root_keys = w.offline.path("root.keys.tgz");
    let targets_keys = w.offline.path("targets.keys.tgz");
    // The laptop under attack trusts root v1 (so every chain member matters to it); a second
    // laptop with copies of the keys makes the genuine bundles.
    let v1 = w.write_usb(
        "v1-root.json",
        w.courier(["show-root", "--version", "1"]).ok().stdout,
    );
    w.signer(&w.offline, ["--yes", "trust", "init", path_str(&v1)])
        .ok();
    w.pin_trust(&w.offline2, &[]);
    let genuine_root_keys = w.offline2.path("root.keys.tgz");
    std::fs::copy(&root_keys, &genuine_root_keys).expect("copy");
    // An older genuine ceremony (a root rotation), for the swap and replay cases.
    let (old_req_path, old_resp_path) = (w.usb("old.req.tufbundle"), w.usb("old.resp.tufbundle"));
    w.request_rotation("root", &old_req_path);
    w.rotate_root_with(
        &w.offline2,
        &genuine_root_keys,
        &old_req_path,
        &old_resp_path,
    );
    w.push_apply(&old_resp_path);
    // The root key holder's laptop holds the new root key too.
    std::fs::copy(&genuine_root_keys, &root_keys).expect("copy");
    let old_req = std::fs::read(&old_req_path).expect("old request");
    let old_resp = std::fs::read(&old_resp_path).expect("old response");
    // The attacked laptop's state, restored after a run that went through (whose response the
    // courier then refuses), so that every case meets the same laptop.
    let state_files: Vec<PathBuf> = vec![
        w.offline.signer_home().join("trust/_any.json"),
        w.offline.signer_home().join("memory/acme.json"),
    ];
    let state_paths: Vec<&Path> = state_files.iter().map(PathBuf::as_path).collect();
    let state_before = snapshot_files(&state_paths);
    let restore_state = || {
        for (p, bytes) in &state_before {
            match bytes {
                Some(b) => std::fs::write(p, b).expect("restore"),
                None => {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
    };

    let req_path = w.usb("targets.req.tufbundle");
    w.courier([
        "rotate-offline-key",
        "--role",
        "targets",
        "--bundle",
        path_str(&req_path),
    ])
    .ok();
    let req = std::fs::read(&req_path).expect("request");
    let req_plain = TransferBundle::from_bytes(&req)
        .expect("request")
        .to_bytes(archive::Compression::None)
        .expect("plain");
    let tampered = w.usb("tampered.tufbundle");
    let out = w.usb("tampered.resp.tufbundle");
    let signer_args = |bundle: &Path, out: &Path, tk: &Path| -> Vec<String> {
        [
            "--yes",
            "rotate-offline-key",
            "--role",
            "targets",
            "--keys",
            path_str(&root_keys),
            "--targets-keys",
            path_str(tk),
            path_str(bundle),
            "-o",
            path_str(out),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };

    // Control: our re-packing of the untouched request is the same bundle and is accepted
    // (into scratch files that are removed again).
    assert_eq!(
        pack(&parts(&req_plain)),
        req_plain,
        "re-packing is canonical"
    );
    let scratch_keys = w.offline2.path("scratch-targets.keys.tgz");
    std::fs::copy(&targets_keys, &scratch_keys).expect("copy");
    let good_resp = w.usb("targets.resp.tufbundle");
    let mut genuine_args = signer_args(&req_path, &good_resp, &scratch_keys);
    genuine_args[5] = path_str(&genuine_root_keys).to_string();
    w.signer(&w.offline2, genuine_args).ok();
    let resp = std::fs::read(&good_resp).expect("response");

    // The request matrix, through the signer.
    let mut cases = member_matrix(&req_plain, &old_req_plain(&old_req));
    cases.push((
        "replayed older request (a root rotation)".into(),
        old_req.clone(),
    ));
    // Drafts that the requested operation (targets-rotation) does not explain.
    let tx_name = bundle::TRANSACTION.to_string();
    let drafts: Vec<(&str, DraftEdit)> = vec![
        (
            "draft adds an unexplained root key",
            Box::new(|r: &mut Value| {
                let k = shared::keys::PrivateKey::generate(shared::keys::KeyType::Ed25519)
                    .expect("key");
                let id = k.keyid().to_string();
                r["signed"]["keys"][&id] = json(&k.public_key().to_json());
                r["signed"]["roles"]["root"]["keyids"]
                    .as_array_mut()
                    .expect("keyids")
                    .push(Value::String(id));
            }),
        ),
        (
            "draft lowers the root threshold",
            Box::new(|r: &mut Value| {
                let t = r["signed"]["roles"]["root"]["threshold"]
                    .as_u64()
                    .expect("t");
                r["signed"]["roles"]["root"]["threshold"] = Value::from(t.saturating_sub(1));
            }),
        ),
        (
            "draft lowers the targets threshold",
            Box::new(|r: &mut Value| {
                let t = r["signed"]["roles"]["targets"]["threshold"]
                    .as_u64()
                    .expect("t");
                r["signed"]["roles"]["targets"]["threshold"] = Value::from(t.saturating_sub(1));
            }),
        ),
        (
            "draft shortens the expiry",
            Box::new(|r: &mut Value| {
                r["signed"]["expires"] = Value::from("2020-01-01T00:00:00Z");
            }),
        ),
        (
            "draft extends the expiry",
            Box::new(|r: &mut Value| {
                r["signed"]["expires"] = Value::from("2099-01-01T00:00:00Z");
            }),
        ),
        (
            "draft rolls the version back",
            Box::new(|r: &mut Value| {
                let v = r["signed"]["version"].as_u64().expect("v");
                r["signed"]["version"] = Value::from(v - 1);
            }),
        ),
        (
            "draft version skips ahead",
            Box::new(|r: &mut Value| {
                let v = r["signed"]["version"].as_u64().expect("v");
                r["signed"]["version"] = Value::from(v + 1);
            }),
        ),
        (
            "draft adds a snapshot key",
            Box::new(|r: &mut Value| {
                let k = shared::keys::PrivateKey::generate(shared::keys::KeyType::Ed25519)
                    .expect("key");
                let id = k.keyid().to_string();
                r["signed"]["keys"][&id] = json(&k.public_key().to_json());
                r["signed"]["roles"]["snapshot"]["keyids"]
                    .as_array_mut()
                    .expect("keyids")
                    .push(Value::String(id));
            }),
        ),
    ];
    for (label, f) in &drafts {
        let mut p = parts(&req_plain);
        let tx = p.members[&tx_name].clone();
        p.members
            .insert(tx_name.clone(), edit_draft(&tx, f.as_ref()));
        cases.push((label.to_string(), pack(&p)));
    }

    let server_before = w.server_state();
    let files = [root_keys.as_path(), targets_keys.as_path()];
    let keys_before = keys_snapshot(&files);
    let targets_keys_before = std::fs::read(&targets_keys).expect("targets keys");
    // Puts the attacked laptop back as it was before a run that went through.
    let reset_laptop = || {
        let _ = std::fs::remove_file(&out);
        std::fs::write(&targets_keys, &targets_keys_before).expect("restore targets keys");
        restore_state();
    };
    // Control: the attacked laptop accepts the genuine request (then it is put back as it
    // was), so every refusal below is about the tampering.
    w.signer(&w.offline, signer_args(&req_path, &out, &targets_keys))
        .ok();
    assert!(out.exists(), "the control run wrote its response");
    reset_laptop();
    let mut tables = Tables::default();
    let mut signer_cases = 0;
    let mut courier_caught = 0;
    let cases: Vec<Case<Vec<u8>>> = cases
        .into_iter()
        .map(|(label, bytes)| Case::new(label, bytes))
        .collect();
    tables.run("tampered requests", &cases, |label, bytes| {
        // Every case meets the same laptop, whatever the case before it did.
        reset_laptop();
        std::fs::write(&tampered, bytes).expect("write tampered");
        let run = w.signer(&w.offline, signer_args(&tampered, &out, &targets_keys));
        if run.code == 0 {
            // What the signer cannot know offline (which tags exist, the factory name and
            // transaction id the courier used) must be caught by the courier before upload.
            let offline_unknowable = label.starts_with("removed prod-targets/")
                || label == "added prod-targets/sneaky.json"
                || label.starts_with("manifest factory")
                || label.starts_with("manifest txid");
            assert!(
                offline_unknowable,
                "the signer accepted a request with {label}"
            );
            // By the courier that wrote the request, and by one that did not (another
            // online machine: only the live transaction to check against).
            for machine in [&w.online, &w.online2] {
                refused(w.courier_on(machine, ["updates", "push", path_str(&out), "--apply"]));
                assert_eq!(
                    w.server_state(),
                    server_before,
                    "{label} on {}: server state changed",
                    machine.name
                );
            }
            courier_caught += 1;
            return;
        }
        refused(run);
        assert!(!out.exists(), "{label}: a response was written");
        assert_eq!(
            keys_snapshot(&files),
            keys_before,
            "{label}: a keys file changed"
        );
        assert_eq!(
            w.server_state(),
            server_before,
            "{label}: server state changed"
        );
        signer_cases += 1;
    });
    reset_laptop();

    // The response matrix, through the courier (push with --apply).
    let resp_plain = TransferBundle::from_bytes(&resp)
        .expect("response")
        .to_bytes(archive::Compression::None)
        .expect("plain");
    let mut cases = member_matrix(&resp_plain, &old_req_plain(&old_resp));
    cases.push((
        "replayed older response (a root rotation)".into(),
        old_resp.clone(),
    ));
    cases.push(("the request instead of a response".into(), req.clone()));
    let cases: Vec<Case<Vec<u8>>> = cases
        .into_iter()
        .map(|(label, bytes)| Case::new(label, bytes))
        .collect();
    let courier_cases = tables.run("tampered responses", &cases, |label, bytes| {
        assert_ne!(bytes, &resp_plain, "{label}: the tampering changed nothing");
        std::fs::write(&tampered, bytes).expect("write tampered");
        for machine in [&w.online, &w.online2] {
            if machine.name == w.online2.name && label == "manifest operations changed" {
                // The operations a request lists are proposals, never an authority, and a
                // response copies them: without the copy of the request only its writer
                // could tell them apart. Everything uploaded (the genuine rotation here) is
                // checked; the machine that wrote the request refuses the relabelled one.
                continue;
            }
            let run = w.courier_on(machine, ["updates", "push", path_str(&tampered), "--apply"]);
            if label.starts_with("replayed older response") {
                // Genuine and applied long ago: recognised as such, nothing uploaded.
                run.ok().says("already applied as version");
            } else {
                assert_ne!(
                    run.code, 0,
                    "the courier on {} accepted a response with {label}",
                    machine.name
                );
                refused(run);
            }
            assert_eq!(
                w.server_state(),
                server_before,
                "{label} on {}: server state changed",
                machine.name
            );
        }
    });
    tables.finish();

    // The genuine response still goes through after all the refusals, from the machine
    // that did not write its request.
    w.courier_on(
        &w.online2,
        ["updates", "push", path_str(&good_resp), "--apply"],
    )
    .ok();
    assert_ne!(w.server_state(), server_before);
    w.device_check();
    tests::report!(
        "hostile_tamper: {} cases tried: {signer_cases} tampered requests refused by the signer, {courier_caught} more signed (offline-unknowable) but refused by the courier, {courier_cases} tampered responses refused by the courier (each with and without the request's local copy, but the relabelled operations list without it, which only the writer of the request can tell); genuine bundles accepted",
        signer_cases + courier_caught + courier_cases
    );
}

fn old_req_plain(b: &[u8]) -> Vec<u8> {
    TransferBundle::from_bytes(b)
        .expect("old bundle")
        .to_bytes(archive::Compression::None)
        .expect("plain")
}
