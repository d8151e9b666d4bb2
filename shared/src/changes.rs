//! What a draft root changes compared with the root it replaces, as structured data.
//!
//! The signer shows this to the person before anything is signed, and checks that every
//! change is explained by the operations the bundle requests; the courier's review uses it
//! too. Nothing here decides whether a change is acceptable.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::keys::KeyId;
use crate::metadata::{Role, Root, Timestamp};

/// How one role differs between two roots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RoleChange {
    /// Role name.
    pub role: String,
    /// Key ids the draft adds to the role.
    pub added: Vec<KeyId>,
    /// Key ids the draft removes from the role.
    pub removed: Vec<KeyId>,
    /// (before, after) when the threshold changes.
    pub threshold: Option<(u64, u64)>,
    /// Whether only the order of the key ids changed.
    pub reordered: bool,
}

impl RoleChange {
    /// Whether the role changes at all.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.threshold.is_none()
            && !self.reordered
    }
}

/// Every difference between a root and its successor draft.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RootChanges {
    /// (before, after) versions.
    pub version: (u64, u64),
    /// (before, after) expiry.
    pub expires: (Timestamp, Timestamp),
    /// Roles whose keys or threshold change (roles that appear or vanish included).
    pub roles: Vec<RoleChange>,
    /// Keys whose public value changes under the same id (never legitimate).
    pub keys_replaced: Vec<KeyId>,
    /// Keys in `keys` that no role uses in the draft.
    pub unused_keys: Vec<KeyId>,
    /// Whether `x-changelog` changes.
    pub changelog_changed: bool,
    /// Key ids whose `x-key-owners` entry is added, removed or changed.
    pub key_owners_changed: Vec<KeyId>,
    /// Names of any other members that differ (`consistent_snapshot`, `_type`, custom ones).
    pub other_fields: Vec<String>,
}

impl RootChanges {
    /// The change of `role`, if any.
    pub fn role(&self, role: Role) -> Option<&RoleChange> {
        self.roles.iter().find(|r| r.role == role.as_str())
    }

    /// Key ids added to `role`.
    pub fn added(&self, role: Role) -> &[KeyId] {
        self.role(role).map(|r| r.added.as_slice()).unwrap_or(&[])
    }

    /// Key ids removed from `role`.
    pub fn removed(&self, role: Role) -> &[KeyId] {
        self.role(role).map(|r| r.removed.as_slice()).unwrap_or(&[])
    }
}

/// Compares `before` with `after`.
pub fn root_changes(before: &Root, after: &Root) -> RootChanges {
    let names: BTreeSet<&String> = before.roles.keys().chain(after.roles.keys()).collect();
    let mut roles = Vec::new();
    for name in names {
        let b = before.roles.get(name);
        let a = after.roles.get(name);
        let bk: Vec<KeyId> = b.map(|r| r.keyids.clone()).unwrap_or_default();
        let ak: Vec<KeyId> = a.map(|r| r.keyids.clone()).unwrap_or_default();
        let added: Vec<KeyId> = ak.iter().filter(|k| !bk.contains(k)).cloned().collect();
        let removed: Vec<KeyId> = bk.iter().filter(|k| !ak.contains(k)).cloned().collect();
        let (bt, at) = (b.map(|r| r.threshold), a.map(|r| r.threshold));
        let threshold = if bt != at {
            Some((bt.unwrap_or(0), at.unwrap_or(0)))
        } else {
            None
        };
        let reordered = added.is_empty() && removed.is_empty() && bk != ak;
        let extra_changed = b.map(|r| &r.extra) != a.map(|r| &r.extra);
        let change = RoleChange {
            role: name.clone(),
            added,
            removed,
            threshold,
            reordered: reordered || extra_changed,
        };
        if !change.is_empty() {
            roles.push(change);
        }
    }
    let keys_replaced = before
        .keys
        .iter()
        .filter(|(id, k)| after.keys.get(*id).is_some_and(|n| n != *k))
        .map(|(id, _)| id.clone())
        .collect();
    let used: BTreeSet<&KeyId> = after.roles.values().flat_map(|r| r.keyids.iter()).collect();
    let unused_keys = after
        .keys
        .keys()
        .filter(|id| !used.contains(id))
        .cloned()
        .collect();
    let empty = Default::default();
    let bo = before.key_owners.as_ref().unwrap_or(&empty);
    let ao = after.key_owners.as_ref().unwrap_or(&empty);
    let owner_ids: BTreeSet<&KeyId> = bo.keys().chain(ao.keys()).collect();
    let key_owners_changed = owner_ids
        .into_iter()
        .filter(|id| bo.get(*id) != ao.get(*id))
        .cloned()
        .collect();
    let mut other_fields = Vec::new();
    if before.type_ != after.type_ {
        other_fields.push("_type".to_string());
    }
    if before.consistent_snapshot != after.consistent_snapshot {
        other_fields.push("consistent_snapshot".to_string());
    }
    let extra_names: BTreeSet<&String> = before.extra.keys().chain(after.extra.keys()).collect();
    for name in extra_names {
        if before.extra.get(name) != after.extra.get(name) {
            other_fields.push(name.clone());
        }
    }
    RootChanges {
        version: (before.version, after.version),
        expires: (before.expires, after.expires),
        roles,
        keys_replaced,
        unused_keys,
        changelog_changed: before.changelog != after.changelog,
        key_owners_changed,
        other_fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::key;
    use crate::transform;

    fn sample() -> Root {
        crate::test_support::FactoryKeys::from_seed(1)
            .root_v1()
            .expires_at("2027-01-01T00:00:00Z")
            .build()
    }

    #[test]
    fn identical_roots_have_no_changes() {
        let r = sample();
        let c = root_changes(&r, &r);
        assert!(c.roles.is_empty() && c.other_fields.is_empty() && !c.changelog_changed);
        assert!(c.keys_replaced.is_empty() && c.unused_keys.is_empty());
    }

    #[test]
    fn rotation_shows_one_key_out_one_in() {
        let r = sample();
        let old = r.role_keyids(Role::Root)[0].clone();
        let new = key(42);
        let now = Timestamp::parse("2026-06-01T00:00:00Z").unwrap();
        let mut d =
            transform::rotate_offline_root_key(&r, &old, new.public_key(), None, &now).unwrap();
        d.version = 2;
        d.consistent_snapshot = true;
        let c = root_changes(&r, &d);
        assert_eq!(c.added(Role::Root), &[new.keyid().clone()]);
        assert_eq!(c.removed(Role::Root), std::slice::from_ref(&old));
        assert_eq!(c.unused_keys, vec![old]);
        assert_eq!(c.version, (1, 2));
        assert_eq!(c.other_fields, vec!["consistent_snapshot".to_string()]);
        assert!(c.role(Role::Targets).is_none());
    }
}
