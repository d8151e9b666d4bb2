//! Tampering with bundles the way an attacker holding the USB stick would: a bundle taken
//! apart into its members, edited, and re-packed properly (member digests, sizes and the
//! manifest checksum recomputed, canonical tar), so that only a semantic check can catch
//! the change. Used by the hostile suites.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::archive::{self, MemberRef};
use shared::bundle;
use shared::canonical;

/// A bundle as an editable list of members (manifest JSON plus the other members).
#[derive(Clone)]
pub struct Parts {
    /// `manifest.json`, parsed.
    pub manifest: Value,
    /// Every other member by name.
    pub members: BTreeMap<String, Vec<u8>>,
}

/// Takes a bundle (plain tar) apart.
pub fn parts(bytes: &[u8]) -> Parts {
    let read = archive::read(bytes, &bundle::LIMITS).expect("golden bundle reads");
    let mut it = read.into_iter();
    let first = it.next().expect("manifest");
    assert_eq!(first.name, bundle::MANIFEST);
    let manifest: Value = serde_json::from_slice(&first.data).expect("manifest json");
    let members = it.map(|m| (m.name.clone(), m.data.to_vec())).collect();
    Parts { manifest, members }
}

/// Canonical rank of a member name (SPEC §3), so re-packed bundles keep the order.
pub fn rank(name: &str) -> (u8, u64, String) {
    let n = |p: &str| {
        name.strip_prefix(p)
            .and_then(|r| r.strip_suffix(".root.json"))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let r = match name {
        bundle::TRANSACTION => 1,
        _ if name.starts_with(bundle::CHAIN_DIR) => 2,
        _ if name.starts_with(bundle::PROD_TARGETS_DIR) => 3,
        _ if name.starts_with(bundle::WAVES_DIR) => 4,
        bundle::FIRST_ROOT_SECRET => 5,
        bundle::UPLOAD => 6,
        bundle::RECORD => 7,
        _ => 8,
    };
    (r, n(bundle::CHAIN_DIR), name.to_string())
}

/// Re-packs: member list, digests, sizes and manifest checksum recomputed; canonical tar.
pub fn pack(p: &Parts) -> Vec<u8> {
    let mut names: Vec<&String> = p.members.keys().collect();
    names.sort_by_key(|n| rank(n));
    let mut manifest = p.manifest.clone();
    let list: Vec<Value> = names
        .iter()
        .map(|n| {
            let d = &p.members[*n];
            serde_json::json!({"name": n, "sha256": hex::encode(Sha256::digest(d)), "size": d.len()})
        })
        .collect();
    let obj = manifest.as_object_mut().expect("manifest object");
    obj.insert("members".into(), Value::Array(list));
    obj.remove("manifest-checksum");
    let sum = hex::encode(Sha256::digest(
        canonical::to_canonical(&manifest).expect("canonical"),
    ));
    manifest
        .as_object_mut()
        .expect("object")
        .insert("manifest-checksum".into(), Value::String(sum));
    let mbytes = canonical::to_canonical(&manifest).expect("canonical");
    let mut refs = vec![MemberRef {
        name: bundle::MANIFEST,
        data: &mbytes,
        mode: bundle::MEMBER_MODE,
    }];
    for n in names {
        refs.push(MemberRef {
            name: n,
            data: &p.members[n],
            mode: bundle::MEMBER_MODE,
        });
    }
    archive::write_tar(&refs).expect("tar").to_vec()
}

impl Parts {
    /// Reads a bundle file (plain tar or gzip) and takes it apart.
    pub fn read(path: &std::path::Path) -> Parts {
        let b = bundle::TransferBundle::read(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        parts(&b.to_bytes(archive::Compression::None).expect("plain tar"))
    }

    /// A JSON member, parsed.
    pub fn json(&self, name: &str) -> Value {
        serde_json::from_slice(
            self.members
                .get(name)
                .unwrap_or_else(|| panic!("no member {name}")),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Replaces a JSON member with the canonical form of `value`.
    pub fn set_json(&mut self, name: &str, value: &Value) {
        self.members.insert(
            name.to_string(),
            canonical::to_canonical(value).expect("canonical"),
        );
    }

    /// Re-packs and writes the bundle to `path`.
    pub fn write(&self, path: &std::path::Path) {
        std::fs::write(path, pack(self)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
