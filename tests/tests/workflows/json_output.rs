//! One JSON style for both programs: every `--json` output is checked to use kebab-case
//! member names (the documented style: README "JSON output"), except in documents carried
//! verbatim (TUF metadata, objects as the Factory API returns them) and in maps keyed by data
//! (key ids, tag, wave or role names). The member names of each output are snapshot-tested
//! (`tests/snapshots/json-keys.txt`), so a renamed or added member is a reviewed change.

use std::collections::BTreeSet;

use serde_json::Value;
use tests::harness::{path_str, History, World, WorldOptions};

/// Members whose value is a document carried verbatim (not ours to name).
const VERBATIM: &[&str] = &["change-meta", "waves"];
/// Members whose value is a map keyed by data (names, key ids), not by member names.
const DATA_MAPS: &[&str] = &["holders", "online-keys", "signatures"];

fn kebab(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Collects the member paths of `v` into `paths`, and those not in kebab-case into `bad`.
fn walk(v: &Value, path: &str, paths: &mut BTreeSet<String>, bad: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let leaf = path.rsplit('.').next().unwrap_or("");
            let leaf = leaf.trim_end_matches("[]");
            if VERBATIM.contains(&leaf) {
                return;
            }
            let data_map = DATA_MAPS.contains(&leaf);
            for (k, child) in map {
                let name = if data_map { "<name>" } else { k.as_str() };
                let p = format!("{path}.{name}");
                if !data_map && !kebab(k) {
                    bad.push(p.clone());
                }
                paths.insert(p.clone());
                walk(child, &p, paths, bad);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, &format!("{path}[]"), paths, bad);
            }
        }
        _ => {}
    }
}

#[test]
fn every_json_output_uses_kebab_case_member_names() {
    let w = World::new(WorldOptions {
        history: History::Offline,
        tags: 1,
        waves: 1,
        targets: 4,
        ..WorldOptions::default()
    });
    w.pin_trust(&w.offline, &[]);
    w.pin_cosigners();
    // A targets rotation: its request, and its response with a step, key changes and
    // re-signed production targets.
    w.complete_wave(&w.init.waves[0]);
    let req = w.usb("json.req.tufbundle");
    let resp = w.usb("json.resp.tufbundle");
    w.request_rotation("targets", &req);
    w.rotate_targets(
        &w.offline,
        w.offline.path("root.keys.tgz"),
        &w.offline.path("targets.keys.tgz"),
        &req,
        &resp,
    );
    let (req, resp) = (path_str(&req), path_str(&resp));
    let runs = vec![
        (
            "courier updates status",
            w.courier(["updates", "status", "--json"]),
        ),
        (
            "courier updates review",
            w.courier(["updates", "review", "--json"]),
        ),
        ("courier expiry", w.courier(["expiry", "--json"])),
        (
            "courier config show",
            w.courier(["config", "show", "--json"]),
        ),
        ("courier waves list", w.courier(["waves", "list", "--json"])),
        (
            "signer inspect (request)",
            w.signer(&w.offline, ["inspect", "--json", req]),
        ),
        (
            "signer inspect (response)",
            w.signer(&w.offline, ["inspect", "--json", resp]),
        ),
        (
            "signer status",
            w.signer(&w.offline, ["status", "--json", req]),
        ),
        (
            "signer identity show",
            w.signer(&w.offline, ["identity", "show", "--json"]),
        ),
        (
            "signer cosigner list",
            w.signer(&w.offline, ["cosigner", "list", "--json"]),
        ),
        (
            "signer audit verify",
            w.signer(&w.offline, ["audit", "verify", "--json"]),
        ),
        (
            "signer trust show",
            w.signer(&w.offline, ["trust", "show", "--json"]),
        ),
        (
            "signer keys list",
            w.signer(
                &w.offline,
                [
                    "keys",
                    "list",
                    "--json",
                    "--keys",
                    path_str(&w.offline.path("targets.keys.tgz")),
                ],
            ),
        ),
    ];
    let audit = w.signer(&w.offline, ["audit", "show", "--json"]).ok();
    let mut all_paths = String::new();
    let mut bad = Vec::new();
    for (name, run) in runs {
        let v: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {}\n{}", run.stdout, run.stderr));
        let mut paths = BTreeSet::new();
        walk(&v, "", &mut paths, &mut bad);
        if name == "signer audit verify" {
            // `audit show --json`: the log's own JSON lines, one record each.
            for line in audit.stdout.lines() {
                let record: Value = serde_json::from_str(line).expect("an audit record");
                walk(&record, ".<record>", &mut paths, &mut bad);
            }
        }
        all_paths.push_str(&format!("{name}\n"));
        for p in paths {
            all_paths.push_str(&format!("  {p}\n"));
        }
    }
    assert!(bad.is_empty(), "members not in kebab-case: {bad:#?}");
    w.snapshot_text("json-keys", &all_paths);
}
