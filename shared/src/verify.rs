//! Verification of signatures, thresholds, root chains, expiry and CI/production root pairs.
//!
//! The rules, as a device (aktualizr) and the Foundries server apply them:
//!
//! * a role is satisfied when at least `threshold` **distinct key ids listed for that role**
//!   have a valid signature over the canonical bytes; a duplicate signature, a signature by
//!   a key not listed for the role, or a key id not in `keys` never counts, and a threshold
//!   of 0 is never satisfied;
//! * a key counts only if its key id really is the SHA-256 of its SPKI (a root that maps an
//!   id to another key is refused);
//! * root N+1 must be signed by a threshold of root N's root keys **and** of its own root
//!   keys, and have version exactly N+1;
//! * the production root equals the CI root except for the targets threshold, which is at
//!   least 2 in production.

use std::collections::BTreeSet;

use crate::keys::{KeyId, Signature};
use crate::metadata::{MetadataError, Role, Root, SignedRoot, SignedTargets, Timestamp};

/// Why verification failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Not enough valid signatures.
    #[error("{what}: {valid} valid {role} signature(s), threshold is {threshold}{detail}")]
    Threshold {
        /// Which document.
        what: String,
        /// The role whose keys must sign.
        role: Role,
        /// Distinct valid signatures found.
        valid: usize,
        /// Signatures required.
        threshold: u64,
        /// Problems with individual signatures, for the user.
        detail: String,
    },
    /// The role is missing from the root or has threshold 0.
    #[error("{what}: role {role} is missing or has threshold 0")]
    BadRole {
        /// Which document.
        what: String,
        /// The role.
        role: Role,
    },
    /// A key's id is not the hash of its public key.
    #[error("{what}: key id {keyid} does not match its public key (computed {computed})")]
    KeyIdMismatch {
        /// Which document.
        what: String,
        /// The id as listed.
        keyid: KeyId,
        /// The id computed from the key.
        computed: String,
    },
    /// A role lists a key id that is not in `keys`.
    #[error("{what}: role {role} lists key {keyid}, which is not in keys")]
    MissingKey {
        /// Which document.
        what: String,
        /// The role.
        role: Role,
        /// The missing id.
        keyid: KeyId,
    },
    /// The root versions do not go up by exactly one.
    #[error("root version {next} does not follow version {prev} (expected {expected})")]
    Version {
        /// Version of the earlier root.
        prev: u64,
        /// Version found.
        next: u64,
        /// Version required.
        expected: u64,
    },
    /// The metadata has expired.
    #[error("{what} expired at {expires} (now {now})")]
    Expired {
        /// Which document.
        what: String,
        /// Its expiry.
        expires: Timestamp,
        /// The time of the check.
        now: Timestamp,
    },
    /// CI and production roots differ in more than the targets threshold.
    #[error(
        "the production root differs from the CI root in more than the targets threshold: {0}"
    )]
    PairMismatch(String),
    /// The chain is empty or does not start where trust is pinned.
    #[error("root chain: {0}")]
    Chain(String),
    /// Canonical encoding failed.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

/// The outcome of checking one document's signatures for one role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignatureReport {
    /// Distinct role keys with a valid signature.
    pub valid: Vec<KeyId>,
    /// Signatures that were ignored, with the reason.
    pub ignored: Vec<(KeyId, String)>,
    /// Role keys that have not signed.
    pub missing: Vec<KeyId>,
    /// The role's threshold.
    pub threshold: u64,
}

impl SignatureReport {
    /// Whether the threshold is met.
    pub fn satisfied(&self) -> bool {
        self.threshold > 0 && self.valid.len() as u64 >= self.threshold
    }
}

/// Checks every listed key's id against its public key.
pub fn check_key_ids(root: &Root, what: &str) -> Result<(), VerifyError> {
    for (id, key) in &root.keys {
        let computed = key.keyid().map_err(|e| VerifyError::KeyIdMismatch {
            what: what.to_string(),
            keyid: id.clone(),
            computed: e.to_string(),
        })?;
        if &computed != id {
            return Err(VerifyError::KeyIdMismatch {
                what: what.to_string(),
                keyid: id.clone(),
                computed: computed.to_string(),
            });
        }
    }
    for role in Role::ALL {
        for id in root.role_keyids(role) {
            if !root.keys.contains_key(id) {
                return Err(VerifyError::MissingKey {
                    what: what.to_string(),
                    role,
                    keyid: id.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Checks `signatures` over `msg` against the keys `root` lists for `role`, without failing.
pub fn signature_report(
    root: &Root,
    role: Role,
    msg: &[u8],
    signatures: &[Signature],
) -> SignatureReport {
    let listed: Vec<&KeyId> = root.role_keyids(role).iter().collect();
    let mut valid: BTreeSet<KeyId> = BTreeSet::new();
    let mut ignored = Vec::new();
    for sig in signatures {
        if !listed.contains(&&sig.keyid) {
            ignored.push((sig.keyid.clone(), format!("not a {role} key of this root")));
            continue;
        }
        if valid.contains(&sig.keyid) {
            ignored.push((sig.keyid.clone(), "duplicate signature".to_string()));
            continue;
        }
        let Some(key) = root.keys.get(&sig.keyid) else {
            ignored.push((sig.keyid.clone(), "key not in keys".to_string()));
            continue;
        };
        match key.keyid() {
            Ok(id) if id == sig.keyid => {}
            _ => {
                ignored.push((
                    sig.keyid.clone(),
                    "key id does not match its key".to_string(),
                ));
                continue;
            }
        }
        match key.verify(msg, sig) {
            Ok(()) => {
                valid.insert(sig.keyid.clone());
            }
            Err(e) => ignored.push((sig.keyid.clone(), e.to_string())),
        }
    }
    let mut missing = Vec::new();
    for id in listed {
        if !valid.contains(id) && !missing.contains(id) {
            missing.push(id.clone());
        }
    }
    SignatureReport {
        valid: valid.into_iter().collect(),
        ignored,
        missing,
        threshold: root.threshold(role),
    }
}

/// Verifies that a threshold of `root`'s `role` keys signed `msg`; returns how many did.
pub fn verify_role(
    root: &Root,
    role: Role,
    msg: &[u8],
    signatures: &[Signature],
    what: &str,
) -> Result<usize, VerifyError> {
    if root.threshold(role) == 0 {
        return Err(VerifyError::BadRole {
            what: what.to_string(),
            role,
        });
    }
    let report = signature_report(root, role, msg, signatures);
    if report.satisfied() {
        Ok(report.valid.len())
    } else {
        let detail = if report.ignored.is_empty() {
            String::new()
        } else {
            let parts: Vec<String> = report
                .ignored
                .iter()
                .map(|(id, why)| format!("{}: {why}", id.short()))
                .collect();
            format!(" ({})", parts.join("; "))
        };
        Err(VerifyError::Threshold {
            what: what.to_string(),
            role,
            valid: report.valid.len(),
            threshold: report.threshold,
            detail,
        })
    }
}

/// Verifies a root that signs itself (the trust anchor, or version 1): its key ids are
/// honest and a threshold of its own root keys signed it.
pub fn verify_self_signed(root: &SignedRoot, what: &str) -> Result<(), VerifyError> {
    check_key_ids(&root.signed, what)?;
    let msg = root.canonical_signed()?;
    verify_role(&root.signed, Role::Root, &msg, &root.signatures, what)?;
    Ok(())
}

/// Verifies the step from root `prev` to root `next`: version exactly +1, signed by a
/// threshold of `prev`'s root keys and of `next`'s own root keys.
pub fn verify_root_step(prev: &SignedRoot, next: &SignedRoot) -> Result<(), VerifyError> {
    let expected = prev.signed.version + 1;
    if next.signed.version != expected {
        return Err(VerifyError::Version {
            prev: prev.signed.version,
            next: next.signed.version,
            expected,
        });
    }
    let what_new = format!("root v{}", next.signed.version);
    check_key_ids(&next.signed, &what_new)?;
    let msg = next.canonical_signed()?;
    verify_role(
        &prev.signed,
        Role::Root,
        &msg,
        &next.signatures,
        &format!("{what_new} (keys of v{})", prev.signed.version),
    )?;
    verify_role(
        &next.signed,
        Role::Root,
        &msg,
        &next.signatures,
        &format!("{what_new} (its own keys)"),
    )?;
    Ok(())
}

/// Walks `chain` (consecutive versions) from the `trusted` root and returns the last root.
///
/// `trusted` must itself appear in the chain (same version and identical signed content), or
/// be the version just before the chain's first element. Every step is verified with
/// [`verify_root_step`]. Expiry is not checked here: an old root in the chain may have
/// expired long ago; check the last one with [`check_expiry`].
pub fn verify_chain<'a>(
    trusted: &'a SignedRoot,
    chain: &'a [SignedRoot],
) -> Result<&'a SignedRoot, VerifyError> {
    let mut current = trusted;
    let mut started = false;
    for root in chain {
        if !started {
            if root.signed.version < trusted.signed.version {
                continue;
            }
            if root.signed.version == trusted.signed.version {
                if root.signed != trusted.signed {
                    return Err(VerifyError::Chain(format!(
                        "version {} in the chain differs from the trusted root of the same version",
                        root.signed.version
                    )));
                }
                started = true;
                continue;
            }
            started = true;
        }
        verify_root_step(current, root)?;
        current = root;
    }
    if !started
        && chain
            .last()
            .is_some_and(|l| l.signed.version < trusted.signed.version)
    {
        return Err(VerifyError::Chain(format!(
            "the chain ends at version {} but the trusted root is version {}: this is a rollback",
            chain.last().map(|l| l.signed.version).unwrap_or(0),
            trusted.signed.version
        )));
    }
    Ok(current)
}

/// Fails if `expires` is at or before `now`.
pub fn check_expiry(what: &str, expires: &Timestamp, now: &Timestamp) -> Result<(), VerifyError> {
    if expires <= now {
        Err(VerifyError::Expired {
            what: what.to_string(),
            expires: *expires,
            now: *now,
        })
    } else {
        Ok(())
    }
}

/// Checks that `prod` equals `ci` except for the targets threshold, which must be ≥ 2.
pub fn verify_ci_prod_pair(ci: &Root, prod: &Root) -> Result<(), VerifyError> {
    let prod_threshold = prod.threshold(Role::Targets);
    if prod_threshold < 2 {
        return Err(VerifyError::PairMismatch(format!(
            "production targets threshold is {prod_threshold}, it must be at least 2"
        )));
    }
    let mut normalized = prod.clone();
    if let Some(t) = normalized.role_mut(Role::Targets) {
        t.threshold = ci.threshold(Role::Targets);
    }
    if &normalized != ci {
        let a = serde_json::to_value(ci).unwrap_or_default();
        let b = serde_json::to_value(&normalized).unwrap_or_default();
        let mut fields = Vec::new();
        if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
            for k in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
                if a.get(k) != b.get(k) {
                    fields.push(k.clone());
                }
            }
        }
        return Err(VerifyError::PairMismatch(format!(
            "members differ: {}",
            fields.join(", ")
        )));
    }
    Ok(())
}

/// Verifies production or wave targets against a (production) root's targets role.
pub fn verify_targets(
    root: &Root,
    targets: &SignedTargets,
    what: &str,
) -> Result<usize, VerifyError> {
    let msg = targets.canonical_signed()?;
    verify_role(root, Role::Targets, &msg, &targets.signatures, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;
    use crate::test_support::{key, RootBuilder};
    use proptest::prelude::*;

    /// An unsigned root whose root role is `root_keys` (`threshold` of them) and whose
    /// online roles are key 200.
    fn root_with(root_keys: &[&PrivateKey], threshold: u64, version: u64) -> SignedRoot {
        RootBuilder::new(version)
            .role(Role::Root, root_keys, threshold)
            .online(&key(200))
            .unsigned()
    }

    fn sign(root: &mut SignedRoot, keys: &[&PrivateKey]) {
        let msg = root.canonical_signed().unwrap();
        for k in keys {
            root.signatures.push(k.sign(&msg));
        }
    }

    #[test]
    fn duplicate_signatures_never_count_twice() {
        let (a, b) = (key(1), key(2));
        let mut r = root_with(&[&a, &b], 2, 1);
        sign(&mut r, &[&a, &a]);
        let err = verify_self_signed(&r, "root").unwrap_err().to_string();
        assert!(
            err.contains("1 valid root signature(s), threshold is 2"),
            "{err}"
        );
        assert!(err.contains("duplicate"), "{err}");
        sign(&mut r, &[&b]);
        verify_self_signed(&r, "root").unwrap();
    }

    #[test]
    fn unknown_and_unlisted_keys_do_not_count() {
        let (a, b, stranger) = (key(1), key(2), key(9));
        let mut r = root_with(&[&a, &b], 2, 1);
        sign(&mut r, &[&a, &stranger]);
        assert!(verify_self_signed(&r, "root").is_err());
        // A targets key listed in keys but not in the root role does not count for root.
        let t = key(200);
        sign(&mut r, &[&t]);
        assert!(verify_self_signed(&r, "root").is_err());
    }

    #[test]
    fn threshold_zero_is_never_satisfied() {
        let a = key(1);
        let mut r = root_with(&[&a], 0, 1);
        sign(&mut r, &[&a]);
        assert!(matches!(
            verify_self_signed(&r, "root"),
            Err(VerifyError::BadRole { .. })
        ));
    }

    #[test]
    fn lying_keyid_is_refused() {
        let (a, b) = (key(1), key(2));
        let mut r = root_with(&[&a], 1, 1);
        // Map a's id to b's public key.
        r.signed
            .keys
            .insert(a.keyid().clone(), b.public_key().clone());
        sign(&mut r, &[&b]);
        assert!(matches!(
            verify_self_signed(&r, "root"),
            Err(VerifyError::KeyIdMismatch { .. })
        ));
    }

    #[test]
    fn chain_steps_need_old_and_new_keys() {
        let (old, new) = (key(1), key(2));
        let mut v1 = root_with(&[&old], 1, 1);
        sign(&mut v1, &[&old]);
        let mut v2 = root_with(&[&new], 1, 2);
        sign(&mut v2, &[&new]);
        assert!(
            verify_root_step(&v1, &v2).is_err(),
            "missing old key signature"
        );
        let mut v2b = root_with(&[&new], 1, 2);
        sign(&mut v2b, &[&old]);
        assert!(
            verify_root_step(&v1, &v2b).is_err(),
            "missing new key signature"
        );
        sign(&mut v2, &[&old]);
        verify_root_step(&v1, &v2).unwrap();
        let chain = vec![v1.clone(), v2.clone()];
        assert_eq!(verify_chain(&v1, &chain).unwrap().signed.version, 2);
        // Version skip.
        let mut v4 = root_with(&[&new], 1, 4);
        sign(&mut v4, &[&new]);
        assert!(matches!(
            verify_root_step(&v2, &v4),
            Err(VerifyError::Version { expected: 3, .. })
        ));
        // Rollback: trusted v2, chain only up to v1.
        assert!(verify_chain(&v2, &chain[..1]).is_err());
        // Trusted root differing from the chain's root of the same version.
        let mut fake = v1.clone();
        fake.signed.consistent_snapshot = true;
        assert!(verify_chain(&fake, &chain).is_err());
    }

    #[test]
    fn ci_prod_pair() {
        let a = key(1);
        let ci = root_with(&[&a], 1, 2).signed;
        let mut prod = ci.clone();
        prod.role_mut(Role::Targets).unwrap().threshold = 2;
        verify_ci_prod_pair(&ci, &prod).unwrap();
        let mut bad = prod.clone();
        bad.version = 3;
        let err = verify_ci_prod_pair(&ci, &bad).unwrap_err().to_string();
        assert!(err.contains("version"), "{err}");
        assert!(verify_ci_prod_pair(&ci, &ci).is_err(), "prod threshold 1");
    }

    #[test]
    fn expiry() {
        let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        assert!(check_expiry("x", &now.plus_days(1), &now).is_ok());
        assert!(check_expiry("x", &now, &now).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Whatever subset of keys signs (with repeats), the root verifies exactly when the
        /// number of distinct listed signers reaches the threshold.
        #[test]
        fn threshold_counts_distinct_listed_signers(
            n in 1usize..5, threshold in 1u64..5, signers in prop::collection::vec(0usize..7, 0..10)
        ) {
            let keys: Vec<PrivateKey> = (0..7).map(|i| key(i as u8 + 1)).collect();
            let listed: Vec<&PrivateKey> = keys.iter().take(n).collect();
            let mut r = root_with(&listed, threshold, 1);
            let chosen: Vec<&PrivateKey> = signers.iter().map(|&i| &keys[i]).collect();
            sign(&mut r, &chosen);
            let distinct: BTreeSet<usize> = signers.iter().copied().filter(|&i| i < n).collect();
            let ok = verify_self_signed(&r, "root").is_ok();
            prop_assert_eq!(ok, distinct.len() as u64 >= threshold);
        }
    }
}
