//! Test fixtures: a fake factory built with `shared`'s transforms and test builders
//! (`shared::test_support`), and request bundles made from its state the way the courier
//! makes them. Deterministic keys (`shared::test_support::key`); times relative to the real
//! clock so that the binary (which always uses the real clock) accepts them too.

// Shared by the library's unit tests and the binary tests; not every user needs every helper.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::json;

use shared::bundle::{Operation, RequestInput, TransferBundle, Writer};
use shared::keys::PrivateKey;
use shared::metadata::{KeyOwner, Role, Root, SignedRoot, SignedTargets, Timestamp};
use shared::test_support::{FactoryKeys, TargetsBuilder};
use shared::transform;

/// A key owner entry as the signer writes it.
pub fn owner(now: &Timestamp) -> KeyOwner {
    KeyOwner {
        polis_id: "admin".into(),
        created_at: *now,
        extra: BTreeMap::new(),
    }
}

/// A deterministic key ([`shared::test_support::key`]).
pub fn key(seed: u8) -> PrivateKey {
    shared::test_support::key(seed)
}

/// The server side of a factory: its root chain, production root, prod and wave targets.
pub struct Factory {
    /// "Now" for the fixture (the real clock, whole seconds).
    pub now: Timestamp,
    /// The initial Foundries-held root key.
    pub first_root: PrivateKey,
    /// Online targets key.
    pub online_targets: PrivateKey,
    /// Online snapshot key.
    pub online_snapshot: PrivateKey,
    /// The CI root chain, version 1 first.
    pub chain: Vec<SignedRoot>,
    /// The current production root (none before the first rotation).
    pub prod: Option<SignedRoot>,
    /// Production targets per tag.
    pub prod_targets: BTreeMap<String, SignedTargets>,
    /// Wave targets per wave.
    pub waves: BTreeMap<String, SignedTargets>,
    /// Offline root keys the test holds (to apply rotations "elsewhere").
    pub root_keys: Vec<PrivateKey>,
    /// The offline targets key the test holds, if any.
    pub targets_key: Option<PrivateKey>,
}

impl Factory {
    /// A factory fresh from Foundries: root v1 signed by the initial root key.
    pub fn new() -> Factory {
        Factory::with_seed(1)
    }

    /// Like [`Factory::new`] with other keys (another factory).
    pub fn with_seed(seed: u8) -> Factory {
        let now = Timestamp::now();
        let keys = FactoryKeys::from_seed(seed);
        let v1 = keys
            .root_v1()
            .expires(now.plus_days(300))
            .signed_by(&[&keys.root]);
        let FactoryKeys {
            root: first_root,
            targets: online_targets,
            snapshot: online_snapshot,
            ..
        } = keys;
        Factory {
            now,
            first_root,
            online_targets,
            online_snapshot,
            chain: vec![v1],
            prod: None,
            prod_targets: BTreeMap::new(),
            waves: BTreeMap::new(),
            root_keys: Vec::new(),
            targets_key: None,
        }
    }

    /// The current CI root.
    pub fn current(&self) -> &SignedRoot {
        self.chain.last().unwrap()
    }

    /// What the server stages on `init`: the current root at version + 1 with a changelog.
    pub fn server_draft(&self) -> SignedRoot {
        let mut d = self.current().clone();
        d.signatures.clear();
        d.signed.version += 1;
        d.signed.changelog = Some(json!({
            "polis-id": "admin",
            "message": "test transaction",
            "timestamp": self.now.to_string(),
        }));
        d
    }

    /// The server's staged production root after `init` (a copy of the current one, or none).
    pub fn server_prod_draft(&self) -> Option<SignedRoot> {
        self.prod.as_ref().map(|p| {
            let mut d = p.clone();
            d.signatures.clear();
            d.signed.version += 1;
            d.signed.changelog = self.server_draft().signed.changelog;
            d
        })
    }

    /// Applies a new root pair (what the server does on `apply`).
    pub fn apply(&mut self, ci: SignedRoot, prod: SignedRoot) {
        shared::verify::verify_root_step(self.current(), &ci).unwrap();
        self.chain.push(ci);
        self.prod = Some(prod);
    }

    /// The first-time root rotation done "elsewhere" (root key seed 100).
    pub fn apply_first_time_rotation(&mut self) {
        let new = key(100);
        let draft = self.server_draft();
        let rotated = transform::rotate_offline_root_key(
            &draft.signed,
            self.first_root.keyid(),
            new.public_key(),
            Some(owner(&self.now)),
            &self.now,
        )
        .unwrap();
        let (ci, prod) = transform::finalize(&rotated, None);
        let ci = transform::sign_root(&ci, &[&new, &self.first_root]).unwrap();
        let prod = transform::sign_root(&prod, &[&new, &self.first_root]).unwrap();
        self.apply(ci, prod);
        self.root_keys.push(new);
    }

    /// The first targets rotation done "elsewhere" (targets key seed 110); signs every
    /// production target with it.
    pub fn apply_first_targets_rotation(&mut self) {
        let new = key(110);
        let root_key = self.root_keys.last().unwrap();
        let draft = self.server_draft();
        let rotated = transform::rotate_offline_targets_key(
            &draft.signed,
            None,
            new.public_key(),
            Some(owner(&self.now)),
            self.online_targets.keyid(),
        )
        .unwrap();
        let prev = self.prod.as_ref().map(|p| p.signed.clone());
        let (ci, prod) = transform::finalize(&rotated, prev.as_ref());
        let ci = transform::sign_root(&ci, &[root_key]).unwrap();
        let prod = transform::sign_root(&prod, &[root_key]).unwrap();
        self.apply(ci, prod);
        for doc in self.prod_targets.values_mut() {
            let sig = transform::sign_targets(doc, &new).unwrap();
            doc.add_signature(sig);
        }
        self.targets_key = Some(new);
    }

    /// A production targets document for `tag` at `version`, signed by the online key and
    /// the offline targets key if there is one.
    pub fn add_prod_targets(&mut self, tag: &str, version: u64) {
        let doc = self.targets_doc(tag, version);
        self.prod_targets.insert(tag.to_string(), doc);
    }

    /// A wave targets document.
    pub fn add_wave(&mut self, name: &str, tag: &str, version: u64) {
        let doc = self.targets_doc(tag, version);
        self.waves.insert(name.to_string(), doc);
    }

    fn targets_doc(&self, tag: &str, version: u64) -> SignedTargets {
        let doc = ["intel-corei7-64", "raspberrypi4-64"].into_iter().fold(
            TargetsBuilder::new(version).expires(self.now.plus_days(200)),
            |doc, hw| {
                doc.target(
                    &format!("{hw}-lmp-{version}"),
                    json!({
                        "name": format!("{hw}-lmp"), "version": version.to_string(),
                        "hardwareIds": [hw], "tags": [tag], "targetFormat": "OSTREE"
                    }),
                )
            },
        );
        let signers: Vec<&PrivateKey> = std::iter::once(&self.online_targets)
            .chain(self.targets_key.as_ref())
            .collect();
        doc.signed_by(&signers)
    }

    /// `transaction.json` of a STARTED transaction with the given drafts.
    pub fn transaction(
        &self,
        first_time: bool,
        ci: &SignedRoot,
        prod: Option<&SignedRoot>,
    ) -> Vec<u8> {
        let s = |r: &SignedRoot| String::from_utf8(r.to_json().unwrap()).unwrap();
        let online = |r: &Root| {
            let mut m = serde_json::Map::new();
            for role in [Role::Targets, Role::Snapshot, Role::Timestamp] {
                let ids = r.role_keyids(role);
                let id = if role == Role::Targets {
                    ids.iter()
                        .find(|k| *k == self.online_targets.keyid())
                        .or(ids.first())
                } else {
                    ids.first()
                };
                if let Some(id) = id {
                    m.insert(role.as_str().into(), json!(id));
                }
            }
            serde_json::Value::Object(m)
        };
        let tx = json!({
            "status": "STARTED",
            "first-time": first_time,
            "current": {
                "ci-root": s(self.current()),
                "prod-root": self.prod.as_ref().map(s).unwrap_or_default(),
                "online-keys": online(&self.current().signed),
            },
            "updated": {
                "ci-root": s(ci),
                "prod-root": prod.map(s).unwrap_or_default(),
                "online-keys": online(&ci.signed),
            },
            "change-meta": {"created-by": "admin"},
        });
        serde_json::to_vec(&tx).unwrap()
    }

    /// A request bundle for `operations` with the server's untouched drafts.
    pub fn request(&self, operations: Vec<Operation>, secret: Option<Vec<u8>>) -> TransferBundle {
        let ci = self.server_draft();
        let prod = self.server_prod_draft();
        let first_time = operations.contains(&Operation::FirstTimeRootRotation);
        self.request_with(
            operations,
            secret,
            &self.transaction(first_time, &ci, prod.as_ref()),
        )
    }

    /// A request bundle with a given `transaction.json`.
    pub fn request_with(
        &self,
        operations: Vec<Operation>,
        secret: Option<Vec<u8>>,
        transaction: &[u8],
    ) -> TransferBundle {
        TransferBundle::new_request(RequestInput {
            factory: "acme".into(),
            txid: "tx-1".into(),
            writer: Writer::new("courier", "0.1.0"),
            created: self.now,
            operations,
            transaction: transaction.to_vec(),
            chain: self
                .chain
                .iter()
                .map(|r| r.to_canonical().unwrap())
                .collect(),
            prod_targets: self
                .prod_targets
                .iter()
                .map(|(t, d)| (t.clone(), d.to_canonical().unwrap().into()))
                .collect(),
            waves: self
                .waves
                .iter()
                .map(|(t, d)| (t.clone(), d.to_canonical().unwrap().into()))
                .collect(),
            docs_checked: false,
            first_root_secret: secret,
        })
        .unwrap()
    }
}
