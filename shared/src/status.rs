//! The missing-signature checklist: for every document a root-update transaction must get
//! signed (the CI and production root drafts, production targets per tag, wave targets),
//! which signatures are present, the threshold, and for each missing one which key is
//! needed and who holds it.
//!
//! Pure computation over [`Root`]/[`Targets`](crate::metadata::Targets) documents and
//! [`verify::signature_report`]; who holds a key comes from two places: the root's
//! `x-key-owners` member (`polis-id` and `created-at`, written by fioctl for every key it
//! generates) and [`KeyHolder`] hints the caller knows (e.g. the signer's audit log names
//! the keys file a key was created in). Printing is left to the programs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::keys::{KeyId, Signature};
use crate::metadata::{KeyOwner, MetadataError, Role, Root, SignedRoot};
use crate::verify;

/// Where a key is kept, as far as the caller knows (never secret material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct KeyHolder {
    /// The keys file (or token) that holds the private key, e.g. `root.keys.tgz`.
    pub location: String,
    /// When it was created or put there (`YYYY-MM-DD` or RFC 3339), if known.
    pub since: Option<String>,
}

/// One threshold a document must meet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Requirement {
    /// The document, e.g. `CI root`, `production root`, `production targets main`, `wave w1`.
    pub document: String,
    /// Whose signatures count, e.g. `root signatures` or `root signatures of the current root (v3)`.
    pub authority: String,
    /// How many distinct listed keys must sign.
    pub threshold: u64,
    /// Listed keys with a valid signature.
    pub present: Vec<KeyId>,
    /// Listed keys without a valid signature.
    pub missing: Vec<KeyId>,
}

impl Requirement {
    /// Whether the threshold is met.
    pub fn satisfied(&self) -> bool {
        self.threshold > 0 && self.present.len() as u64 >= self.threshold
    }

    /// How many more signatures are needed (0 when satisfied).
    pub fn still_needed(&self) -> u64 {
        self.threshold.saturating_sub(self.present.len() as u64)
    }

    fn from_report(document: &str, authority: String, r: verify::SignatureReport) -> Requirement {
        Requirement {
            document: document.to_string(),
            authority,
            threshold: r.threshold,
            present: r.valid,
            missing: r.missing,
        }
    }
}

/// The checklist of one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Checklist {
    /// Every threshold, in the order roots, production targets, waves.
    pub items: Vec<Requirement>,
    /// `x-key-owners` of the drafts (and current roots) merged: keyid → owner.
    #[serde(skip)]
    pub owners: BTreeMap<KeyId, KeyOwner>,
}

impl Checklist {
    /// Whether every threshold is met.
    pub fn complete(&self) -> bool {
        self.items.iter().all(Requirement::satisfied)
    }

    /// Adds the requirements of a root draft: a threshold of its own root keys and, when it
    /// replaces `previous` (a different version), a threshold of `previous`'s root keys
    /// (the chain rule). `label` names it (`CI root`, `production root`).
    pub fn add_root(
        &mut self,
        label: &str,
        draft: &SignedRoot,
        previous: &Root,
    ) -> Result<(), MetadataError> {
        let msg = draft.canonical_signed()?;
        let own = verify::signature_report(&draft.signed, Role::Root, &msg, &draft.signatures);
        self.items.push(Requirement::from_report(
            label,
            "root signatures".to_string(),
            own,
        ));
        let same_keys = previous.role(Role::Root) == draft.signed.role(Role::Root);
        if previous.version != draft.signed.version && !same_keys {
            let old = verify::signature_report(previous, Role::Root, &msg, &draft.signatures);
            self.items.push(Requirement::from_report(
                label,
                format!(
                    "root signatures of the current root (v{})",
                    previous.version
                ),
                old,
            ));
        }
        self.merge_owners(&draft.signed);
        self.merge_owners(previous);
        Ok(())
    }

    /// Adds the requirement of a production or wave targets document under `root` (the
    /// production root draft); `extra` are signatures collected outside the document (by
    /// earlier signer steps).
    pub fn add_targets(
        &mut self,
        label: &str,
        root: &Root,
        signed: &[u8],
        signatures: &[Signature],
        extra: &[Signature],
    ) {
        let msg = signed;
        let mut sigs = signatures.to_vec();
        for s in extra {
            if !sigs.iter().any(|t| t.keyid == s.keyid) {
                sigs.push(s.clone());
            }
        }
        let report = verify::signature_report(root, Role::Targets, msg, &sigs);
        self.items.push(Requirement::from_report(
            label,
            "targets signatures".to_string(),
            report,
        ));
        self.merge_owners(root);
    }

    fn merge_owners(&mut self, root: &Root) {
        if let Some(o) = &root.key_owners {
            for (k, v) in o {
                self.owners.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }

    /// Who holds `keyid`, in words: the keys file and date from `holders`, else the
    /// creation date from `x-key-owners`, and the owner's `polis-id`.
    pub fn describe_holder(&self, keyid: &KeyId, holders: &BTreeMap<KeyId, KeyHolder>) -> String {
        let owner = self.owners.get(keyid);
        let mut parts = Vec::new();
        match holders.get(keyid) {
            Some(h) => {
                let since = h
                    .since
                    .clone()
                    .or_else(|| owner.map(|o| o.created_at.date()));
                parts.push(match since {
                    Some(d) => format!("{}, created {}", h.location, short_date(&d)),
                    None => h.location.clone(),
                });
            }
            None => {
                let created = owner
                    .map(|o| format!(", created {}", o.created_at.date()))
                    .unwrap_or_default();
                parts.push(format!("keys file unknown here{created}"));
            }
        }
        if let Some(o) = owner {
            parts.push(format!("owner {}", o.polis_id));
        }
        parts.join("; ")
    }

    /// One line per requirement, e.g. `CI root: 1 of 2 root signatures, missing
    /// 3f12ab34…a9 (root.keys.tgz, created 2026-03-01)`.
    pub fn lines(&self, holders: &BTreeMap<KeyId, KeyHolder>) -> Vec<String> {
        self.items
            .iter()
            .map(|r| {
                let head = format!(
                    "{}: {} of {} {}",
                    r.document,
                    r.present.len(),
                    r.threshold,
                    r.authority
                );
                if r.satisfied() {
                    return format!("{head} — complete");
                }
                let missing: Vec<String> = r
                    .missing
                    .iter()
                    .map(|k| format!("{} ({})", k.short(), self.describe_holder(k, holders)))
                    .collect();
                let need = r.still_needed();
                let any = if (need as usize) < r.missing.len() {
                    format!(", {need} more from: ")
                } else {
                    ", missing ".to_string()
                };
                format!("{head}{any}{}", missing.join(", "))
            })
            .collect()
    }
}

fn short_date(d: &str) -> &str {
    d.get(..10).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;
    use crate::test_support::{at, key, RootBuilder};

    /// An unsigned root whose root role is `root_keys` (`threshold` of them; alice created
    /// the first) and whose online roles are key 200.
    fn root(version: u64, root_keys: &[&PrivateKey], threshold: u64) -> SignedRoot {
        RootBuilder::new(version)
            .expires_at("2027-01-01T00:00:00Z")
            .role(Role::Root, root_keys, threshold)
            .online(&key(200))
            .owner(root_keys[0], "alice", at("2026-03-01T10:00:00Z"))
            .unsigned()
    }

    fn sign(doc: &mut SignedRoot, k: &PrivateKey) {
        let msg = doc.canonical_signed().unwrap();
        doc.add_signature(k.sign(&msg));
    }

    #[test]
    fn draft_needs_new_and_old_keys_and_names_holders() {
        let (old, a, b) = (key(1), key(2), key(3));
        let current = root(1, &[&old], 1);
        let mut draft = root(2, &[&a, &b], 2);
        sign(&mut draft, &a);
        let mut c = Checklist::default();
        c.add_root("CI root", &draft, &current.signed).unwrap();
        assert_eq!(c.items.len(), 2);
        assert!(!c.complete());
        assert_eq!(c.items[0].present, vec![a.keyid().clone()]);
        assert_eq!(c.items[0].missing, vec![b.keyid().clone()]);
        assert_eq!(c.items[1].missing, vec![old.keyid().clone()]);
        let mut holders = BTreeMap::new();
        holders.insert(
            b.keyid().clone(),
            KeyHolder {
                location: "b.keys.tgz".into(),
                since: Some("2026-03-02T01:02:03Z".into()),
            },
        );
        let lines = c.lines(&holders);
        assert_eq!(
            lines[0],
            format!(
                "CI root: 1 of 2 root signatures, missing {} (b.keys.tgz, created 2026-03-02)",
                b.keyid().short()
            )
        );
        assert_eq!(
            lines[1],
            format!(
                "CI root: 0 of 1 root signatures of the current root (v1), missing {} (keys file unknown here, created 2026-03-01; owner alice)",
                old.keyid().short()
            )
        );
        sign(&mut draft, &b);
        sign(&mut draft, &old);
        let mut c = Checklist::default();
        c.add_root("CI root", &draft, &current.signed).unwrap();
        assert!(c.complete());
        assert!(c.lines(&holders)[0].ends_with("— complete"));
    }

    #[test]
    fn same_keys_need_one_threshold_and_signature_by_other_key_does_not_count() {
        let (a, b, stranger) = (key(1), key(2), key(9));
        let current = root(3, &[&a, &b], 1);
        let mut draft = root(4, &[&a, &b], 1);
        sign(&mut draft, &stranger);
        let mut c = Checklist::default();
        c.add_root("production root", &draft, &current.signed)
            .unwrap();
        assert_eq!(c.items.len(), 1);
        assert!(c.items[0].present.is_empty());
        assert!(c.lines(&BTreeMap::new())[0].contains(", 1 more from: "));
    }
}
