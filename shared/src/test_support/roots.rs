//! [`RootBuilder`]: root documents for tests, key by key and role by role.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::keys::PrivateKey;
use crate::metadata::{KeyOwner, Role, RoleKeys, Root, SignedRoot, Timestamp};
use crate::transform;

/// A `root.json` under construction. It starts with no keys and no roles, version as given,
/// expiring 2030-01-01T00:00:00Z, `consistent_snapshot` false, no changelog and no key
/// owners; each method sets one thing and returns the builder.
///
/// ```
/// use shared::metadata::Role;
/// use shared::test_support::{key, RootBuilder};
///
/// let (root_key, online) = (key(1), key(2));
/// let v1 = RootBuilder::new(1)
///     .role(Role::Root, &[&root_key], 1)
///     .online(&online)
///     .signed_by(&[&root_key]);
/// shared::verify::verify_self_signed(&v1, "root v1").unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct RootBuilder {
    root: Root,
}

impl RootBuilder {
    /// An empty root of `version` (see the type's defaults).
    pub fn new(version: u64) -> RootBuilder {
        RootBuilder {
            root: Root {
                type_: "Root".into(),
                consistent_snapshot: false,
                expires: super::at("2030-01-01T00:00:00Z"),
                keys: BTreeMap::new(),
                roles: BTreeMap::new(),
                version,
                changelog: None,
                key_owners: None,
                extra: BTreeMap::new(),
            },
        }
    }

    /// Expires at `expires`.
    pub fn expires(mut self, expires: Timestamp) -> RootBuilder {
        self.root.expires = expires;
        self
    }

    /// Expires at the RFC 3339 time `text` (see [`super::at`]).
    pub fn expires_at(self, text: &str) -> RootBuilder {
        self.expires(super::at(text))
    }

    /// `role` is signed by `keys` (listed in this order), `threshold` of them; the keys are
    /// added to `keys`. A role set twice keeps the second setting (the first one's keys stay
    /// listed, as in a draft before fioctl's finalize).
    pub fn role(mut self, role: Role, keys: &[&PrivateKey], threshold: u64) -> RootBuilder {
        for k in keys {
            self.root
                .keys
                .insert(k.keyid().clone(), k.public_key().clone());
        }
        self.root.roles.insert(
            role.as_str().to_string(),
            RoleKeys {
                keyids: keys.iter().map(|k| k.keyid().clone()).collect(),
                threshold,
                extra: BTreeMap::new(),
            },
        );
        self
    }

    /// The online roles (targets, snapshot, timestamp) are all signed by `key`, threshold 1.
    pub fn online(self, key: &PrivateKey) -> RootBuilder {
        [Role::Targets, Role::Snapshot, Role::Timestamp]
            .into_iter()
            .fold(self, |b, role| b.role(role, &[key], 1))
    }

    /// Lists `key` in `keys` without giving it a role (an unused key).
    pub fn unused_key(mut self, key: &PrivateKey) -> RootBuilder {
        self.root
            .keys
            .insert(key.keyid().clone(), key.public_key().clone());
        self
    }

    /// Records in `x-key-owners` that `polis_id` created `key` at `created_at`.
    pub fn owner(mut self, key: &PrivateKey, polis_id: &str, created_at: Timestamp) -> RootBuilder {
        self.root
            .key_owners
            .get_or_insert_with(BTreeMap::new)
            .insert(
                key.keyid().clone(),
                KeyOwner {
                    polis_id: polis_id.to_string(),
                    created_at,
                    extra: BTreeMap::new(),
                },
            );
        self
    }

    /// Sets `x-changelog` (what the server writes from a transaction's message).
    pub fn changelog(mut self, changelog: Value) -> RootBuilder {
        self.root.changelog = Some(changelog);
        self
    }

    /// The `signed` part.
    pub fn build(self) -> Root {
        self.root
    }

    /// The document without signatures.
    pub fn unsigned(self) -> SignedRoot {
        SignedRoot {
            signatures: Vec::new(),
            signed: self.root,
            extra: BTreeMap::new(),
        }
    }

    /// The document signed by `signers`, in this order ([`transform::sign_root`]).
    pub fn signed_by(self, signers: &[&PrivateKey]) -> SignedRoot {
        transform::sign_root(&self.unsigned(), signers).expect("an in-memory key signs")
    }

    /// The CI root and its production root (the same root with the targets threshold
    /// `prod_targets_threshold`, [`transform::derive_prod_root`]), each signed by `signers`.
    pub fn ci_and_prod_signed_by(
        self,
        prod_targets_threshold: u64,
        signers: &[&PrivateKey],
    ) -> (SignedRoot, SignedRoot) {
        let ci = self.unsigned();
        let prod = transform::derive_prod_root(&ci, prod_targets_threshold);
        let sign =
            |doc: &SignedRoot| transform::sign_root(doc, signers).expect("an in-memory key signs");
        (sign(&ci), sign(&prod))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{at, key, FactoryKeys};
    use crate::verify;

    #[test]
    fn a_factory_root_v1_verifies_and_lists_each_key_once() {
        let ks = FactoryKeys::from_seed(1);
        let v1 = ks.root_v1().signed_by(&[&ks.root]);
        verify::verify_self_signed(&v1, "v1").unwrap();
        assert_eq!(v1.signed.keys.len(), 4);
        assert_eq!(
            v1.signed.role_keyids(Role::Snapshot),
            &[key(3).keyid().clone()]
        );
        assert_eq!(v1.signed.version, 1);
        assert_eq!(v1.signed.expires, at("2030-01-01T00:00:00Z"));
    }

    #[test]
    fn the_builder_writes_what_a_hand_written_root_says() {
        let (a, b, online) = (key(1), key(2), key(9));
        let built = RootBuilder::new(3)
            .expires_at("2027-01-01T00:00:00Z")
            .role(Role::Root, &[&b, &a], 2)
            .online(&online)
            .owner(&a, "alice", at("2026-03-01T10:00:00Z"))
            .changelog(serde_json::json!({"message": "m"}))
            .build();
        let (ia, ib, io) = (
            a.keyid().as_str(),
            b.keyid().as_str(),
            online.keyid().as_str(),
        );
        let k = |k: &PrivateKey| serde_json::json!({"keytype": "ED25519", "keyval": {"public": k.public_key().public()}});
        let by_hand = serde_json::json!({"signatures": [], "signed": {
            "_type": "Root", "consistent_snapshot": false, "expires": "2027-01-01T00:00:00Z",
            "keys": {ia: k(&a), ib: k(&b), io: k(&online)},
            "roles": {
                "root": {"keyids": [ib, ia], "threshold": 2},
                "snapshot": {"keyids": [io], "threshold": 1},
                "targets": {"keyids": [io], "threshold": 1},
                "timestamp": {"keyids": [io], "threshold": 1}
            },
            "version": 3,
            "x-changelog": {"message": "m"},
            "x-key-owners": {ia: {"polis-id": "alice", "created-at": "2026-03-01T10:00:00Z"}}
        }});
        let parsed = SignedRoot::from_json(by_hand.to_string().as_bytes()).unwrap();
        assert_eq!(built, parsed.signed);
    }

    #[test]
    fn ci_and_prod_differ_only_in_the_targets_threshold() {
        let (root_key, online) = (key(1), key(2));
        let (ci, prod) = RootBuilder::new(2)
            .role(Role::Root, &[&root_key], 1)
            .online(&online)
            .ci_and_prod_signed_by(2, &[&root_key]);
        verify::verify_ci_prod_pair(&ci.signed, &prod.signed).unwrap();
        assert_eq!(
            (
                ci.signed.threshold(Role::Targets),
                prod.signed.threshold(Role::Targets)
            ),
            (1, 2)
        );
        verify::verify_self_signed(&prod, "prod").unwrap();
    }
}
