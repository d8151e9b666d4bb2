//! Test fixtures of the bundle modules: a small request (root chain, production and wave
//! targets), uploads signed by test keys, steps, a test signing identity, and re-packing a
//! bundle's members without validation (to build what an attacker would).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::archive::{self, MemberRef};
use crate::attestation::SigningIdentity;
use crate::canonical;
use crate::keys::PrivateKey;
use crate::metadata::{Role, SignedRoot, Timestamp};
use crate::test_support::{RootBuilder, TargetsBuilder};

pub(super) use crate::test_support::key;

pub(super) fn ts(s: &str) -> Timestamp {
    crate::test_support::at(s)
}

/// A root of `version` whose every role is `k`, signed by `signers`.
pub(super) fn root(version: u64, k: &PrivateKey, signers: &[&PrivateKey]) -> SignedRoot {
    RootBuilder::new(version)
        .expires_at("2027-01-01T00:00:00Z")
        .role(Role::Root, &[k], 1)
        .online(k)
        .signed_by(signers)
}

pub(super) fn targets_doc(k: &PrivateKey) -> Vec<u8> {
    TargetsBuilder::new(3)
        .expires_at("2027-01-01T00:00:00Z")
        .target(
            "rpi-42",
            json!({"name": "rpi", "version": "42", "tags": ["production"]}),
        )
        .signed_by(&[k])
        .to_canonical()
        .unwrap()
}

pub(super) fn transaction(current: &SignedRoot, draft: &SignedRoot) -> Vec<u8> {
    let s = |r: &SignedRoot| String::from_utf8(r.to_canonical().unwrap()).unwrap();
    serde_json::to_vec(&json!({
        "status": "STARTED", "first-time": false,
        "current": {"ci-root": s(current), "prod-root": "", "online-keys": {}},
        "updated": {"ci-root": s(draft), "prod-root": "", "online-keys": {}},
        "amendments": []
    }))
    .unwrap()
}

pub(super) fn request_input() -> RequestInput {
    let k1 = key(1);
    let r1 = root(1, &k1, &[&k1]);
    let r2 = root(2, &k1, &[&k1]);
    let r3 = root(3, &k1, &[]);
    RequestInput {
        factory: "acme".into(),
        txid: "tx-1".into(),
        writer: Writer::new("courier", "0.1.0"),
        created: ts("2026-03-01T10:00:00Z"),
        operations: vec![
            Operation::SignRoot,
            Operation::SignProdTargets {
                tags: vec!["production".into()],
            },
            Operation::SignWave {
                name: "wave1".into(),
            },
        ],
        transaction: transaction(&r2, &r3),
        chain: vec![r1.to_canonical().unwrap(), r2.to_canonical().unwrap()],
        prod_targets: BTreeMap::from([("production".to_string(), targets_doc(&k1).into())]),
        waves: BTreeMap::from([("wave1".to_string(), targets_doc(&k1).into())]),
        docs_checked: false,
        first_root_secret: None,
    }
}

pub(super) fn request() -> TransferBundle {
    TransferBundle::new_request(request_input()).unwrap()
}

/// The draft from the request, signed by `signers`, as an upload.
pub(super) fn upload_signed_by(req: &TransferBundle, signers: &[&PrivateKey]) -> Upload {
    let tx = req.transaction().unwrap();
    let mut draft = tx.updated.unwrap().ci_root().unwrap().unwrap();
    let msg = draft.canonical_signed().unwrap();
    for s in signers {
        draft.add_signature(s.sign(&msg));
    }
    Upload {
        txid: req.txid().to_string(),
        ci_root: draft.clone(),
        prod_root: draft,
        targets_signatures: BTreeMap::new(),
        waves_signatures: BTreeMap::new(),
    }
}

pub(super) fn step(upload: Upload, ops: Vec<Operation>) -> StepInput {
    StepInput {
        signer: Writer::new("signer", "0.1.0"),
        time: ts("2026-03-02T09:00:00Z"),
        operations: ops,
        authorized: vec![],
        upload,
    }
}

/// The signing identity of the test steps.
pub(super) fn test_identity() -> SigningIdentity {
    SigningIdentity::from_seed(&[0x51; 32])
}

/// `respond` with [`test_identity`].
pub(super) trait RespondTest {
    fn respond_test(&self, step: StepInput) -> Result<TransferBundle, BundleError>;
}

impl RespondTest for TransferBundle {
    fn respond_test(&self, step: StepInput) -> Result<TransferBundle, BundleError> {
        self.respond(step, &test_identity())
    }
}

/// Re-packs a bundle after `edit` changed its manifest JSON and members, recomputing
/// the manifest checksum unless `keep_checksum`; no validation.
pub(super) fn repack(
    b: &TransferBundle,
    keep_checksum: bool,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>, &mut Vec<(String, Vec<u8>)>),
) -> Vec<u8> {
    let mut m = serde_json::to_value(b.manifest()).unwrap();
    let obj = m.as_object_mut().unwrap();
    let mut members: Vec<(String, Vec<u8>)> = b
        .member_names()
        .iter()
        .map(|n| (n.to_string(), b.member(n).unwrap().unwrap().to_vec()))
        .collect();
    edit(obj, &mut members);
    if !keep_checksum {
        obj.remove("manifest-checksum");
        let sum = Sha256Digest::of(&canonical::to_canonical(&m).unwrap());
        m.as_object_mut()
            .unwrap()
            .insert("manifest-checksum".into(), json!(sum.to_string()));
    }
    let manifest = canonical::to_canonical(&m).unwrap();
    let mut refs = vec![MemberRef {
        name: MANIFEST,
        data: &manifest,
        mode: MEMBER_MODE,
    }];
    refs.extend(members.iter().map(|(n, d)| MemberRef {
        name: n,
        data: d,
        mode: MEMBER_MODE,
    }));
    archive::write_tar(&refs).unwrap().to_vec()
}

pub(super) fn listing(data: &[u8], name: &str) -> Value {
    json!({"name": name, "sha256": Sha256Digest::of(data).to_string(), "size": data.len()})
}
