//! Root transforms as pure functions, following fioctl's algorithms (formats reference §6).
//!
//! Each function takes the staged draft (and whatever else it needs) by reference and returns
//! a new value or an error; none of them panics on an impossible request, and none bumps the
//! version: the server stages the draft at current + 1 with its changelog, and
//! [`check_draft_version`] makes sure it did.

use std::collections::BTreeMap;

use time::{Month, OffsetDateTime};

use crate::keys::{KeyId, KeySigner, PublicKey, SignError, Signature};
use crate::metadata::{KeyOwner, MetadataError, Role, Root, SignedRoot, SignedTargets, Timestamp};

/// Lowest root threshold fioctl accepts.
pub const MIN_ROOT_THRESHOLD: u64 = 1;
/// Lowest production targets threshold fioctl accepts.
pub const MIN_PROD_TARGETS_THRESHOLD: u64 = 2;
/// Production targets threshold of a freshly derived production root.
pub const DEFAULT_PROD_TARGETS_THRESHOLD: u64 = 2;

/// Why a transform is impossible.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransformError {
    /// A key could not sign.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The draft's version is not current + 1.
    #[error("the staged root has version {draft}, expected {expected} (current {current} + 1); re-pull the transaction")]
    DraftVersion {
        /// Current version.
        current: u64,
        /// Draft version.
        draft: u64,
        /// Required version.
        expected: u64,
    },
    /// The role does not exist in the root.
    #[error("the root has no {0} role")]
    NoRole(Role),
    /// The operation only applies to offline roles.
    #[error("offline keys exist only for the root and targets roles, not {0}")]
    NotOfflineRole(Role),
    /// The key is not one of the role's keys.
    #[error("key {keyid} is not a {role} key of the staged root")]
    NotInRole {
        /// The role.
        role: Role,
        /// The key id.
        keyid: KeyId,
    },
    /// The key is already in the role.
    #[error("key {keyid} is already a {role} key")]
    AlreadyInRole {
        /// The role.
        role: Role,
        /// The key id.
        keyid: KeyId,
    },
    /// Removing the key would leave the role without keys.
    #[error("cannot remove {keyid}: it is the last {role} key")]
    LastKey {
        /// The role.
        role: Role,
        /// The key id.
        keyid: KeyId,
    },
    /// The online targets key cannot be removed or replaced offline.
    #[error("key {0} is the online targets key; it is not allowed to delete or rotate it offline")]
    OnlineKey(KeyId),
    /// The threshold is out of range.
    #[error("threshold {threshold} for {role} is not possible: it must be between {min} and {max} (the number of {role} keys)")]
    Threshold {
        /// The role.
        role: Role,
        /// Requested threshold.
        threshold: u64,
        /// Minimum allowed.
        min: u64,
        /// Number of keys.
        max: u64,
    },
    /// A key id in the request does not match the key.
    #[error("key id mismatch: {0}")]
    KeyId(String),
    /// Canonical encoding failed.
    #[error("{0}")]
    Metadata(String),
}

impl From<MetadataError> for TransformError {
    fn from(e: MetadataError) -> Self {
        TransformError::Metadata(e.to_string())
    }
}

/// Fails unless `draft.version == current.version + 1`.
pub fn check_draft_version(current: &Root, draft: &Root) -> Result<(), TransformError> {
    let expected = current.version + 1;
    if draft.version == expected {
        Ok(())
    } else {
        Err(TransformError::DraftVersion {
            current: current.version,
            draft: draft.version,
            expected,
        })
    }
}

/// fioctl's root expiry: `now + 1 year` (Go `AddDate(1, 0, 0)`, so 29 February becomes
/// 1 March), UTC, whole seconds.
pub fn one_year_after(now: &Timestamp) -> Timestamp {
    let t = OffsetDateTime::from_unix_timestamp(now.unix()).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let next = t.replace_year(t.year() + 1).unwrap_or_else(|_| {
        // Only 29 February has no counterpart next year: Go normalizes to 1 March.
        t.replace_day(1)
            .and_then(|d| d.replace_month(Month::March))
            .and_then(|d| d.replace_year(t.year() + 1))
            .unwrap_or(t)
    });
    Timestamp::from_unix(next.unix_timestamp())
}

fn role_keys_mut(
    root: &mut Root,
    role: Role,
) -> Result<&mut crate::metadata::RoleKeys, TransformError> {
    root.role_mut(role).ok_or(TransformError::NoRole(role))
}

fn require_offline_role(role: Role) -> Result<(), TransformError> {
    match role {
        Role::Root | Role::Targets => Ok(()),
        other => Err(TransformError::NotOfflineRole(other)),
    }
}

fn insert_key(
    root: &mut Root,
    key: &PublicKey,
    owner: Option<KeyOwner>,
) -> Result<KeyId, TransformError> {
    let id = key
        .keyid()
        .map_err(|e| TransformError::KeyId(e.to_string()))?;
    root.keys.insert(id.clone(), key.clone());
    if let Some(owner) = owner {
        root.key_owners
            .get_or_insert_with(BTreeMap::new)
            .insert(id.clone(), owner);
    }
    Ok(id)
}

/// Adds a new offline key to `role` (appended last, like fioctl), recording its owner.
pub fn add_offline_key(
    draft: &Root,
    role: Role,
    key: &PublicKey,
    owner: Option<KeyOwner>,
) -> Result<Root, TransformError> {
    require_offline_role(role)?;
    let mut root = draft.clone();
    let id = key
        .keyid()
        .map_err(|e| TransformError::KeyId(e.to_string()))?;
    if root.role_keyids(role).contains(&id) {
        return Err(TransformError::AlreadyInRole { role, keyid: id });
    }
    role_keys_mut(&mut root, role)?;
    insert_key(&mut root, key, owner)?;
    role_keys_mut(&mut root, role)?.keyids.push(id);
    Ok(root)
}

/// Removes offline key `keyid` from `role`. Refuses the online targets key, the last key of
/// a role, and a removal that would leave fewer keys than the role's threshold.
pub fn remove_offline_key(
    draft: &Root,
    role: Role,
    keyid: &KeyId,
    online_targets: Option<&KeyId>,
) -> Result<Root, TransformError> {
    require_offline_role(role)?;
    if role == Role::Targets && online_targets == Some(keyid) {
        return Err(TransformError::OnlineKey(keyid.clone()));
    }
    let mut root = draft.clone();
    let rk = role_keys_mut(&mut root, role)?;
    if !rk.keyids.contains(keyid) {
        return Err(TransformError::NotInRole {
            role,
            keyid: keyid.clone(),
        });
    }
    if rk.keyids.len() == 1 {
        return Err(TransformError::LastKey {
            role,
            keyid: keyid.clone(),
        });
    }
    rk.keyids.retain(|k| k != keyid);
    let remaining = rk.keyids.len() as u64;
    if rk.threshold > remaining {
        return Err(TransformError::Threshold {
            role,
            threshold: rk.threshold,
            min: if role == Role::Root {
                MIN_ROOT_THRESHOLD
            } else {
                1
            },
            max: remaining,
        });
    }
    Ok(root)
}

/// Replaces the offline root key `old` with `new_key` and sets the expiry one year after
/// `now` (fioctl's `rotate-offline-key --role root`). Other root keys (other admins') stay.
pub fn rotate_offline_root_key(
    draft: &Root,
    old: &KeyId,
    new_key: &PublicKey,
    owner: Option<KeyOwner>,
    now: &Timestamp,
) -> Result<Root, TransformError> {
    let new_id = new_key
        .keyid()
        .map_err(|e| TransformError::KeyId(e.to_string()))?;
    if draft.role_keyids(Role::Root).contains(&new_id) {
        return Err(TransformError::AlreadyInRole {
            role: Role::Root,
            keyid: new_id,
        });
    }
    let mut root = draft.clone();
    let rk = role_keys_mut(&mut root, Role::Root)?;
    if !rk.keyids.contains(old) {
        return Err(TransformError::NotInRole {
            role: Role::Root,
            keyid: old.clone(),
        });
    }
    rk.keyids.retain(|k| k != old);
    rk.keyids.push(new_id);
    insert_key(&mut root, new_key, owner)?;
    root.expires = one_year_after(now);
    Ok(root)
}

/// Replaces the offline targets key `old` (or adds the first offline targets key when `old`
/// is `None`) with `new_key` (fioctl's `rotate-offline-key --role targets`; expiry is not
/// touched). The online key `online` must stay.
pub fn rotate_offline_targets_key(
    draft: &Root,
    old: Option<&KeyId>,
    new_key: &PublicKey,
    owner: Option<KeyOwner>,
    online: &KeyId,
) -> Result<Root, TransformError> {
    if old == Some(online) {
        return Err(TransformError::OnlineKey(online.clone()));
    }
    if !draft.role_keyids(Role::Targets).contains(online) {
        return Err(TransformError::NotInRole {
            role: Role::Targets,
            keyid: online.clone(),
        });
    }
    let mut root = draft.clone();
    if let Some(old) = old {
        let rk = role_keys_mut(&mut root, Role::Targets)?;
        if !rk.keyids.contains(old) {
            return Err(TransformError::NotInRole {
                role: Role::Targets,
                keyid: old.clone(),
            });
        }
        rk.keyids.retain(|k| k != old);
    }
    add_offline_key(&root, Role::Targets, new_key, owner)
}

/// Replaces online key `old` of `role` by `new_key` (what the server does on
/// `gen-online-keys`).
pub fn replace_online_key(
    draft: &Root,
    role: Role,
    old: &KeyId,
    new_key: &PublicKey,
) -> Result<Root, TransformError> {
    let mut root = draft.clone();
    let new_id = new_key
        .keyid()
        .map_err(|e| TransformError::KeyId(e.to_string()))?;
    let rk = role_keys_mut(&mut root, role)?;
    let Some(pos) = rk.keyids.iter().position(|k| k == old) else {
        return Err(TransformError::NotInRole {
            role,
            keyid: old.clone(),
        });
    };
    rk.keyids[pos] = new_id;
    insert_key(&mut root, new_key, None)?;
    Ok(root)
}

/// Sets the threshold of `role`. Root: CI and production share it (min 1). Targets: only
/// the production root changes (min 2); the CI targets threshold stays. The threshold may
/// not exceed the number of keys of the role. Returns the new (CI, production) pair.
pub fn set_threshold(
    ci: &Root,
    prod: &Root,
    role: Role,
    threshold: u64,
) -> Result<(Root, Root), TransformError> {
    require_offline_role(role)?;
    let min = if role == Role::Root {
        MIN_ROOT_THRESHOLD
    } else {
        MIN_PROD_TARGETS_THRESHOLD
    };
    let max = ci.role_keyids(role).len() as u64;
    if threshold < min || threshold > max {
        return Err(TransformError::Threshold {
            role,
            threshold,
            min,
            max,
        });
    }
    let (mut ci, mut prod) = (ci.clone(), prod.clone());
    if role == Role::Root {
        role_keys_mut(&mut ci, role)?.threshold = threshold;
    }
    role_keys_mut(&mut prod, role)?.threshold = threshold;
    Ok((ci, prod))
}

/// The production root of a CI root: a copy with the targets threshold set.
pub fn derive_prod_root(ci: &SignedRoot, prod_targets_threshold: u64) -> SignedRoot {
    let mut prod = ci.clone();
    if let Some(t) = prod.signed.role_mut(Role::Targets) {
        t.threshold = prod_targets_threshold;
    }
    prod
}

/// fioctl's finalize: drop every key no role uses (and its owner entry), clear the
/// signatures, and derive the production root keeping the previous production targets
/// threshold (or the default 2). Returns (CI, production).
pub fn finalize(ci: &Root, previous_prod: Option<&Root>) -> (SignedRoot, SignedRoot) {
    let mut root = ci.clone();
    let used: std::collections::BTreeSet<KeyId> = root
        .roles
        .values()
        .flat_map(|r| r.keyids.iter().cloned())
        .collect();
    root.keys.retain(|id, _| used.contains(id));
    if let Some(owners) = root.key_owners.as_mut() {
        owners.retain(|id, _| used.contains(id));
        if owners.is_empty() {
            root.key_owners = None;
        }
    }
    let threshold = previous_prod
        .map(|p| p.threshold(Role::Targets))
        .filter(|&t| t >= MIN_PROD_TARGETS_THRESHOLD)
        .unwrap_or(DEFAULT_PROD_TARGETS_THRESHOLD);
    let ci = SignedRoot {
        signatures: Vec::new(),
        signed: root,
        extra: BTreeMap::new(),
    };
    let prod = derive_prod_root(&ci, threshold);
    (ci, prod)
}

/// Signs a root with `signers` (fioctl's `signNewTufRoot` step 6): one new signature per
/// signer in order, then every earlier signature whose key id is not among the new ones.
pub fn sign_root<S: KeySigner + ?Sized>(
    doc: &SignedRoot,
    signers: &[&S],
) -> Result<SignedRoot, TransformError> {
    let msg = doc.canonical_signed()?;
    let signatures = signers
        .iter()
        .map(|s| s.sign(&msg))
        .collect::<Result<Vec<Signature>, SignError>>()?;
    Ok(add_root_signatures(doc, signatures))
}

/// Adds signatures made elsewhere (over `doc.canonical_signed()`, e.g. on a hardware token)
/// to a root: the first signature per key id wins, earlier signatures by other keys are kept.
pub fn add_root_signatures(doc: &SignedRoot, new: Vec<Signature>) -> SignedRoot {
    let mut signatures: Vec<Signature> = Vec::new();
    for s in new {
        if !signatures.iter().any(|x| x.keyid == s.keyid) {
            signatures.push(s);
        }
    }
    for old in &doc.signatures {
        if !signatures.iter().any(|x| x.keyid == old.keyid) {
            signatures.push(old.clone());
        }
    }
    let mut out = doc.clone();
    out.signatures = signatures;
    out
}

/// Signs a targets document's canonical `signed` bytes with `key`.
pub fn sign_targets<S: KeySigner + ?Sized>(
    doc: &SignedTargets,
    key: &S,
) -> Result<Signature, TransformError> {
    Ok(key.sign(&doc.canonical_signed()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;
    use crate::test_support::{key, RootBuilder};
    use crate::verify;

    /// A root of `version` whose root key is `root_key` and whose online roles are `online`.
    fn root_at(version: u64, root_key: &PrivateKey, online: &PrivateKey) -> RootBuilder {
        RootBuilder::new(version)
            .expires_at("2027-01-01T00:00:00Z")
            .role(Role::Root, &[root_key], 1)
            .online(online)
    }

    /// The server's staged draft (version 2) of [`root_at`].
    fn base(root_key: &PrivateKey, online: &PrivateKey) -> Root {
        root_at(2, root_key, online).build()
    }

    fn owner() -> KeyOwner {
        KeyOwner {
            polis_id: "u1".into(),
            created_at: Timestamp::parse("2026-03-01T10:20:30Z").unwrap(),
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn one_year_like_go() {
        let t = Timestamp::parse("2026-03-01T10:20:30Z").unwrap();
        assert_eq!(one_year_after(&t).to_string(), "2027-03-01T10:20:30Z");
        let leap = Timestamp::parse("2028-02-29T01:02:03Z").unwrap();
        assert_eq!(one_year_after(&leap).to_string(), "2029-03-01T01:02:03Z");
    }

    #[test]
    fn root_rotation_then_finalize_and_sign_verifies() {
        let (old, online, new) = (key(1), key(2), key(3));
        let current = root_at(1, &old, &online).signed_by(&[&old]);
        let draft = base(&old, &online);
        check_draft_version(&current.signed, &draft).unwrap();
        let now = Timestamp::parse("2026-05-01T00:00:00Z").unwrap();
        let rotated =
            rotate_offline_root_key(&draft, old.keyid(), new.public_key(), Some(owner()), &now)
                .unwrap();
        assert_eq!(rotated.role_keyids(Role::Root), &[new.keyid().clone()]);
        assert_eq!(rotated.expires.to_string(), "2027-05-01T00:00:00Z");
        let (ci, prod) = finalize(&rotated, None);
        assert!(
            !ci.signed.keys.contains_key(old.keyid()),
            "unused key dropped"
        );
        assert_eq!(prod.signed.threshold(Role::Targets), 2);
        let ci = sign_root(&ci, &[&new, &old]).unwrap();
        let prod = sign_root(&prod, &[&new, &old]).unwrap();
        assert_eq!(ci.signatures[0].keyid, *new.keyid(), "new key signs first");
        verify::verify_root_step(&current, &ci).unwrap();
        verify::verify_root_step(&current, &prod).unwrap();
        verify::verify_ci_prod_pair(&ci.signed, &prod.signed).unwrap();
    }

    #[test]
    fn sign_root_keeps_other_signatures() {
        let (a, b, online) = (key(1), key(2), key(9));
        let doc = root_at(2, &a, &online).unsigned();
        let once = sign_root(&doc, &[&a]).unwrap();
        let twice = sign_root(&once, &[&b, &a]).unwrap();
        assert_eq!(twice.signatures.len(), 2);
        let again = sign_root(&twice, &[&a]).unwrap();
        assert_eq!(again.signatures.len(), 2);
        assert_eq!(again.signatures[0].keyid, *a.keyid());
    }

    #[test]
    fn impossible_requests_are_errors() {
        let (r, online, other) = (key(1), key(2), key(3));
        let draft = base(&r, &online);
        assert!(matches!(
            remove_offline_key(&draft, Role::Root, r.keyid(), None),
            Err(TransformError::LastKey { .. })
        ));
        assert!(matches!(
            remove_offline_key(&draft, Role::Targets, online.keyid(), Some(online.keyid())),
            Err(TransformError::OnlineKey(_))
        ));
        assert!(matches!(
            remove_offline_key(&draft, Role::Root, other.keyid(), None),
            Err(TransformError::NotInRole { .. })
        ));
        assert!(matches!(
            add_offline_key(&draft, Role::Snapshot, other.public_key(), None),
            Err(TransformError::NotOfflineRole(Role::Snapshot))
        ));
        assert!(matches!(
            add_offline_key(&draft, Role::Root, r.public_key(), None),
            Err(TransformError::AlreadyInRole { .. })
        ));
        assert!(matches!(
            set_threshold(&draft, &draft, Role::Root, 2),
            Err(TransformError::Threshold { max: 1, .. })
        ));
        assert!(matches!(
            set_threshold(&draft, &draft, Role::Targets, 1),
            Err(TransformError::Threshold { min: 2, .. })
        ));
        let mut stale = draft.clone();
        stale.version = 4;
        assert!(check_draft_version(&base(&r, &online), &stale).is_err());
    }

    #[test]
    fn targets_rotation_and_threshold() {
        let (r, online, t1, t2) = (key(1), key(2), key(3), key(4));
        let draft = base(&r, &online);
        let first = rotate_offline_targets_key(
            &draft,
            None,
            t1.public_key(),
            Some(owner()),
            online.keyid(),
        )
        .unwrap();
        assert_eq!(
            first.role_keyids(Role::Targets),
            &[online.keyid().clone(), t1.keyid().clone()]
        );
        assert!(first.key_owners.as_ref().unwrap().contains_key(t1.keyid()));
        let second = rotate_offline_targets_key(
            &first,
            Some(t1.keyid()),
            t2.public_key(),
            None,
            online.keyid(),
        )
        .unwrap();
        assert_eq!(
            second.role_keyids(Role::Targets),
            &[online.keyid().clone(), t2.keyid().clone()]
        );
        let (ci, prod) = finalize(&second, None);
        assert!(!ci.signed.keys.contains_key(t1.keyid()));
        assert!(!ci
            .signed
            .key_owners
            .as_ref()
            .is_some_and(|o| o.contains_key(t1.keyid())));
        let (ci2, prod2) = set_threshold(&ci.signed, &prod.signed, Role::Targets, 2).unwrap();
        assert_eq!(ci2.threshold(Role::Targets), 1);
        assert_eq!(prod2.threshold(Role::Targets), 2);
        assert!(set_threshold(&ci.signed, &prod.signed, Role::Targets, 3).is_err());
        // Finalize keeps a raised production threshold.
        let with3 = add_offline_key(&ci2, Role::Targets, t1.public_key(), None).unwrap();
        let (_, p3) = set_threshold(&with3, &prod2, Role::Targets, 3).unwrap();
        let (_, p3f) = finalize(&with3, Some(&p3));
        assert_eq!(p3f.signed.threshold(Role::Targets), 3);
    }

    #[test]
    fn online_key_replacement() {
        let (r, online, fresh) = (key(1), key(2), key(5));
        let draft = base(&r, &online);
        let out =
            replace_online_key(&draft, Role::Snapshot, online.keyid(), fresh.public_key()).unwrap();
        assert_eq!(out.role_keyids(Role::Snapshot), &[fresh.keyid().clone()]);
        assert_eq!(out.role_keyids(Role::Targets), &[online.keyid().clone()]);
        assert!(replace_online_key(&draft, Role::Snapshot, fresh.keyid(), r.public_key()).is_err());
    }
}
