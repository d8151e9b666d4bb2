//! [`TargetsBuilder`]: production and wave targets documents for tests.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::keys::PrivateKey;
use crate::metadata::{SignedTargets, TargetFile, Targets, Timestamp};
use crate::transform;

/// A `targets.json` under construction: no targets, version as given, expiring
/// 2030-01-01T00:00:00Z until said otherwise.
///
/// ```
/// use shared::test_support::{key, TargetsBuilder};
///
/// let online = key(2);
/// let doc = TargetsBuilder::new(3)
///     .target("rpi-42", serde_json::json!({"name": "rpi", "version": "42", "tags": ["production"]}))
///     .signed_by(&[&online]);
/// assert_eq!(doc.signatures.len(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct TargetsBuilder {
    targets: Targets,
}

impl TargetsBuilder {
    /// An empty targets document of `version`.
    pub fn new(version: u64) -> TargetsBuilder {
        TargetsBuilder {
            targets: Targets {
                type_: "Targets".into(),
                expires: super::at("2030-01-01T00:00:00Z"),
                targets: BTreeMap::new(),
                version,
                extra: BTreeMap::new(),
            },
        }
    }

    /// Expires at `expires`.
    pub fn expires(mut self, expires: Timestamp) -> TargetsBuilder {
        self.targets.expires = expires;
        self
    }

    /// Expires at the RFC 3339 time `text` (see [`super::at`]).
    pub fn expires_at(self, text: &str) -> TargetsBuilder {
        self.expires(super::at(text))
    }

    /// Adds the target `name`: length 0, SHA-256 `abab…ab`, and Foundries' `custom` data
    /// (`name`, `version`, `hardwareIds`, `tags`, … as the test needs them).
    pub fn target(mut self, name: &str, custom: Value) -> TargetsBuilder {
        self.targets.targets.insert(
            name.to_string(),
            TargetFile {
                length: 0,
                hashes: BTreeMap::from([("sha256".to_string(), "ab".repeat(32))]),
                custom: Some(custom),
                extra: BTreeMap::new(),
            },
        );
        self
    }

    /// The `signed` part.
    pub fn build(self) -> Targets {
        self.targets
    }

    /// The document signed by `signers`, in this order.
    pub fn signed_by(self, signers: &[&PrivateKey]) -> SignedTargets {
        let mut doc = SignedTargets {
            signatures: Vec::new(),
            signed: self.targets,
            extra: BTreeMap::new(),
        };
        for k in signers {
            let sig = transform::sign_targets(&doc, *k).expect("an in-memory key signs");
            doc.add_signature(sig);
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::key;

    #[test]
    fn every_signature_verifies_over_the_canonical_document() {
        let (a, b) = (key(1), key(2));
        let doc = TargetsBuilder::new(7)
            .expires_at("2027-01-01T00:00:00Z")
            .target("rpi-7", serde_json::json!({"version": "7"}))
            .signed_by(&[&a, &b]);
        let msg = doc.canonical_signed().unwrap();
        for (sig, k) in doc.signatures.iter().zip([&a, &b]) {
            assert_eq!(&sig.keyid, k.keyid());
            k.public_key().verify(&msg, sig).unwrap();
        }
        assert_eq!(doc.signed.targets["rpi-7"].build_version(), Some("7"));
    }
}
