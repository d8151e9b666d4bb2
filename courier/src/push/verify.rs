//! Local verification of a response's upload, before anything is sent: every signature in
//! it must verify, and the roots and targets documents must meet their thresholds (or the
//! push says which do not, for `--allow-partial`).
//!
//! * a new root ([`verify_new_root`]): the step from the current root is
//!   [`shared::verify::verify_root_step`] (version + 1, honest key ids, the thresholds of the
//!   current and of its own root keys); on top, no signature the courier uploads may be
//!   stray or broken;
//! * production and wave targets ([`verify_targets_sigs`]): each new signature by a targets
//!   key of the new production root, verified over the carried document;
//! * [`verify_upload`]: both roots, the CI/production pair ([`shared::verify`]) and every
//!   targets signature, against the request the response carries.

use shared::bundle::{self, TransferBundle, Upload};
use shared::keys::Signature;
use shared::metadata::{Role, SignedRoot};
use shared::verify::{self, VerifyError};

use crate::error::{CourierError, Result};

/// Verifies a new root against the previous one with [`verify::verify_root_step`] and
/// checks that every signature it carries is a valid one by a root key of either (nothing
/// stray or broken is uploaded). Returns whether both thresholds are met; any other failure
/// is an error.
pub fn verify_new_root(new: &SignedRoot, prev: &SignedRoot, what: &str) -> Result<bool> {
    let complete = match verify::verify_root_step(prev, new) {
        Ok(()) => true,
        Err(VerifyError::Threshold { .. }) => false,
        Err(e) => return Err(CourierError::Verify(format!("{what}: {e}"))),
    };
    let msg = new
        .canonical_signed()
        .map_err(|e| CourierError::Verify(format!("{what}: {e}")))?;
    for sig in &new.signatures {
        let listed = prev.signed.role_keyids(Role::Root).contains(&sig.keyid)
            || new.signed.role_keyids(Role::Root).contains(&sig.keyid);
        let key = new
            .signed
            .keys
            .get(&sig.keyid)
            .or_else(|| prev.signed.keys.get(&sig.keyid));
        match (listed, key) {
            (true, Some(key)) => key.verify(&msg, sig).map_err(|e| {
                CourierError::Verify(format!("{what}: signature by {}: {e}", sig.keyid.short()))
            })?,
            _ => {
                return Err(CourierError::Verify(format!(
                    "{what}: signature by {} is not from a root key of v{} or v{}",
                    sig.keyid.short(),
                    prev.signed.version,
                    new.signed.version
                )))
            }
        }
    }
    Ok(complete)
}

/// Verifies new targets signatures over a document (`msg`: its canonical `signed` bytes,
/// `carried`: the signatures it carries) against the new production root; every given
/// signature must verify; returns whether the document then meets the threshold.
pub fn verify_targets_sigs(
    msg: &[u8],
    carried: &[Signature],
    sigs: &[Signature],
    prod: &SignedRoot,
    what: &str,
) -> Result<bool> {
    if sigs.is_empty() {
        return Err(CourierError::Verify(format!(
            "{what}: the upload has an empty signature list"
        )));
    }
    for sig in sigs {
        let key = prod
            .signed
            .role_keyids(Role::Targets)
            .contains(&sig.keyid)
            .then(|| prod.signed.keys.get(&sig.keyid))
            .flatten()
            .ok_or_else(|| {
                CourierError::Verify(format!(
                    "{what}: signature by {} is not from a targets key of the new production root",
                    sig.keyid.short()
                ))
            })?;
        key.verify(msg, sig).map_err(|e| {
            CourierError::Verify(format!("{what}: signature by {}: {e}", sig.keyid.short()))
        })?;
    }
    // Merge the signatures only (the same rule as `Signed::add_signature`), not the document.
    let mut merged = carried.to_vec();
    shared::keys::merge_signatures(&mut merged, sigs.iter().cloned());
    Ok(verify::signature_report(&prod.signed, Role::Targets, msg, &merged).satisfied())
}

/// Local verification of a response's upload against its request. Returns the list of
/// documents that do not yet meet their thresholds.
pub fn verify_upload(request: &TransferBundle, upload: &Upload) -> Result<Vec<String>> {
    let tx = request.parsed_transaction()?;
    let mut incomplete = Vec::new();
    if !verify_new_root(&upload.ci_root, &tx.current_ci, "the new CI root")? {
        incomplete.push("CI root".to_string());
    }
    if !verify_new_root(
        &upload.prod_root,
        tx.current_prod_or_ci(),
        "the new production root",
    )? {
        incomplete.push("production root".to_string());
    }
    verify::verify_ci_prod_pair(&upload.ci_root.signed, &upload.prod_root.signed)
        .map_err(|e| CourierError::Verify(e.to_string()))?;
    // The signatures a (validated) targets member carries, without parsing `signed`.
    #[derive(serde::Deserialize)]
    struct Carried {
        #[serde(default)]
        signatures: Option<Vec<Signature>>,
    }
    for (kind, sigs, dir) in [
        (
            "production targets",
            &upload.targets_signatures,
            bundle::PROD_TARGETS_DIR,
        ),
        ("wave targets", &upload.waves_signatures, bundle::WAVES_DIR),
    ] {
        for (name, list) in sigs {
            let member = format!("{dir}{name}.json");
            let what = format!("{kind} {name:?}");
            let data = request
                .member(&member)
                .map_err(|e| CourierError::Verify(format!("{what}: {e}")))?
                .ok_or_else(|| {
                    CourierError::Verify(format!("{kind} {name:?} are not in the request"))
                })?;
            let carried: Carried = serde_json::from_slice(&data)
                .map_err(|e| CourierError::Verify(format!("{what}: {e}")))?;
            let (msg, _) = request
                .targets_signed(&member)
                .map_err(|e| CourierError::Verify(format!("{what}: {e}")))?;
            let carried = carried.signatures.unwrap_or_default();
            if !verify_targets_sigs(&msg, &carried, list, &upload.prod_root, &what)? {
                incomplete.push(format!("{kind} {name}"));
            }
        }
    }
    Ok(incomplete)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::keys::PrivateKey;
    use shared::metadata::Timestamp;
    use shared::test_support::{key, RootBuilder};

    /// An unsigned root whose only role, root, is `root_keys` (threshold 1).
    fn root(version: u64, root_keys: &[&PrivateKey]) -> SignedRoot {
        RootBuilder::new(version)
            .role(Role::Root, root_keys, 1)
            .unsigned()
    }

    #[test]
    fn new_roots_are_verified_against_both_key_sets() {
        let (old, new, stranger) = (key(1), key(2), key(3));
        let prev = root(1, &[&old]);
        let next = root(2, &[&new]);
        let both = shared::transform::sign_root(&next, &[&new, &old]).unwrap();
        assert!(verify_new_root(&both, &prev, "r").unwrap());
        let only_new = shared::transform::sign_root(&next, &[&new]).unwrap();
        assert!(!verify_new_root(&only_new, &prev, "r").unwrap());
        let bad = shared::transform::sign_root(&next, &[&new, &old, &stranger]).unwrap();
        assert!(verify_new_root(&bad, &prev, "r")
            .unwrap_err()
            .to_string()
            .contains("not from a root key"));
        let wrong_version = shared::transform::sign_root(&root(3, &[&new]), &[&new, &old]).unwrap();
        assert!(verify_new_root(&wrong_version, &prev, "r").is_err());
        let mut tampered = both.clone();
        tampered.signed.expires = Timestamp::parse("2031-01-01T00:00:00Z").unwrap();
        assert!(matches!(
            verify_new_root(&tampered, &prev, "r"),
            Err(CourierError::Verify(_))
        ));
    }
}
