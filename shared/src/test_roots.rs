//! Root fixtures for the unit tests of this crate.

use crate::keys::PrivateKey;
use crate::metadata::{RoleKeys, Root, SignedRoot};

/// A root v1 (expiring 2027-01-01) whose roles root, targets, snapshot and timestamp each
/// have one Ed25519 key, from the seeds 1, 2, 3 and 4, threshold 1.
pub(crate) fn v1_with_one_key_per_role() -> Root {
    let doc = serde_json::json!({
        "signatures": [],
        "signed": {"_type": "Root", "consistent_snapshot": false,
                   "expires": "2027-01-01T00:00:00Z", "keys": {}, "roles": {}, "version": 1}
    });
    let mut root = SignedRoot::from_json(doc.to_string().as_bytes())
        .expect("fixture parses")
        .signed;
    for (i, role) in ["root", "targets", "snapshot", "timestamp"]
        .iter()
        .enumerate()
    {
        let k = PrivateKey::ed25519_from_seed(&[i as u8 + 1; 32]);
        root.keys.insert(k.keyid().clone(), k.public_key().clone());
        root.roles.insert(
            role.to_string(),
            RoleKeys {
                keyids: vec![k.keyid().clone()],
                threshold: 1,
                extra: Default::default(),
            },
        );
    }
    root
}
