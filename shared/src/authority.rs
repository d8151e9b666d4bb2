//! Who authorized each change of a draft root: the pure core of the signer's decision.
//!
//! The air gap exists for one promise: the offline keys sign only what the people holding
//! them asked for. A draft root pair (CI and production) is compared with the roots in force
//! ([`diff_drafts`]), giving a list of elementary [`Change`]s (a key added to or removed
//! from a role, a threshold, the expiry, an owner entry, any other member) plus the
//! differences no authority can make acceptable ([`DraftDiff::forbidden`]: a version that
//! is not current + 1, a production root that is not the CI root's twin, a key whose public
//! value changes under the same id).
//!
//! Every change must then be covered by a [`Grant`]: a set of exact changes vouched for by
//! an [`Authority`] — the operation the operator typed on this signer's command line, an
//! authenticated step of a pinned cosigner whose record states exactly that change, or the
//! operator's typed confirmation of that one change. [`authorize`] pairs each change with
//! its authority (or none). What the online side *requested* is only a proposal: it is shown
//! next to a change ([`proposals`]) but never covers it.
//!
//! Matching is exact: a grant covers `KeyAdded{root, 3f2a…}` only if it names that key id;
//! a threshold or expiry grant covers only the final value it names. Nothing here does I/O.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::changes::root_changes;
use crate::keys::KeyId;
use crate::metadata::{Role, Root, Timestamp};
use crate::transform::DEFAULT_PROD_TARGETS_THRESHOLD;
use crate::verify::verify_ci_prod_pair;

/// One elementary change of a draft root pair compared with the roots in force. Its JSON
/// form (`{"change": "key-added", "role": "root", "keyid": "…"}`) is what a signer step
/// records as the changes it authorized (`record.json`, bundle format 2).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Change {
    /// A key joins a role (of both roots).
    KeyAdded {
        /// The role.
        role: Role,
        /// The key.
        keyid: KeyId,
    },
    /// A key leaves a role (of both roots).
    KeyRemoved {
        /// The role.
        role: Role,
        /// The key.
        keyid: KeyId,
    },
    /// The threshold of a role of the CI root becomes `threshold` (for `root`, of the
    /// production root too; the production targets threshold is [`Change::ProdThreshold`]).
    Threshold {
        /// The role.
        role: Role,
        /// The new threshold.
        threshold: u64,
    },
    /// The production root's targets threshold becomes `threshold`.
    ProdThreshold {
        /// The new threshold.
        threshold: u64,
    },
    /// The expiry becomes `expires`.
    Expires {
        /// The new expiry.
        expires: Timestamp,
    },
    /// The `x-key-owners` entry of a key that is neither added nor removed changes.
    KeyOwner {
        /// The key.
        keyid: KeyId,
    },
    /// A key is listed in `keys` but no role uses it.
    UnusedKey {
        /// The key.
        keyid: KeyId,
    },
    /// The order of a role's key ids, or another member of the role, changes.
    RoleReordered {
        /// The role.
        role: Role,
    },
    /// Another member of `signed` changes (`consistent_snapshot`, a custom member, a role
    /// that is not one of the four TUF roles, …).
    Member {
        /// The member's name (`roles.<name>` for a role).
        name: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::KeyAdded { role, keyid } => write!(f, "{role} key {keyid} added"),
            Change::KeyRemoved { role, keyid } => write!(f, "{role} key {keyid} removed"),
            Change::Threshold { role, threshold } => {
                write!(f, "{role} threshold set to {threshold}")
            }
            Change::ProdThreshold { threshold } => {
                write!(f, "production targets threshold set to {threshold}")
            }
            Change::Expires { expires } => write!(f, "expiry set to {expires}"),
            Change::KeyOwner { keyid } => {
                write!(f, "x-key-owners entry of key {keyid} changed")
            }
            Change::UnusedKey { keyid } => {
                write!(f, "key {keyid} listed in keys but used by no role")
            }
            Change::RoleReordered { role } => {
                write!(f, "{role} role: key order or other members changed")
            }
            Change::Member { name } => write!(f, "member {name:?} changed"),
        }
    }
}

impl Change {
    /// What the operator types to confirm this change on a terminal: the first 8 hex digits
    /// of the key id for a key change (compare it with the key's holder), otherwise the
    /// first 8 hex digits of the SHA-256 of the change's description (shown next to it).
    pub fn confirmation_code(&self) -> String {
        match self {
            Change::KeyAdded { keyid, .. }
            | Change::KeyRemoved { keyid, .. }
            | Change::KeyOwner { keyid }
            | Change::UnusedKey { keyid } => keyid.as_str().chars().take(8).collect(),
            other => hex::encode(Sha256::digest(other.to_string().as_bytes()))[..8].to_string(),
        }
    }

    /// The role whose keys this change adds or removes, if any.
    pub fn key_role(&self) -> Option<(Role, &KeyId)> {
        match self {
            Change::KeyAdded { role, keyid } | Change::KeyRemoved { role, keyid } => {
                Some((*role, keyid))
            }
            _ => None,
        }
    }
}

/// The difference between the roots in force and a draft pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DraftDiff {
    /// Every change, in a stable order (roles first, then thresholds, expiry, the rest).
    pub changes: Vec<Change>,
    /// Differences that no authority can make acceptable; the drafts must not be signed.
    pub forbidden: Vec<String>,
    /// Things worth showing that need no authority (the changelog text).
    pub notes: Vec<String>,
}

/// Compares the draft pair with the roots in force. `current_prod` is `None` before the
/// first rotation (the production targets threshold then starts at fioctl's default, 2).
pub fn diff_drafts(
    current_ci: &Root,
    current_prod: Option<&Root>,
    draft_ci: &Root,
    draft_prod: &Root,
) -> DraftDiff {
    let mut diff = DraftDiff::default();
    if draft_ci.version != current_ci.version + 1 {
        diff.forbidden.push(format!(
            "the draft is version {}; it must be exactly {} (the current version {} + 1)",
            draft_ci.version,
            current_ci.version + 1,
            current_ci.version
        ));
    }
    if draft_prod.version != draft_ci.version {
        diff.forbidden.push(format!(
            "the production draft is version {}, the CI draft {}",
            draft_prod.version, draft_ci.version
        ));
    }
    if let Err(e) = verify_ci_prod_pair(draft_ci, draft_prod) {
        diff.forbidden.push(format!(
            "the staged production root is not the CI root's twin (fioctl's finalize derives it from the CI root, changing only the targets threshold): {e}"
        ));
    }
    let c = root_changes(current_ci, draft_ci);
    for k in &c.keys_replaced {
        diff.forbidden.push(format!(
            "key {k} keeps its id but its public key changes (a key id is the hash of the key: this root lies)"
        ));
    }
    let mut added_somewhere = BTreeSet::new();
    let mut removed_somewhere = BTreeSet::new();
    for rc in &c.roles {
        let Some(role) = Role::parse(&rc.role).filter(|r| r.as_str() == rc.role) else {
            diff.changes.push(Change::Member {
                name: format!("roles.{}", rc.role),
            });
            continue;
        };
        for k in &rc.added {
            added_somewhere.insert(k.clone());
            diff.changes.push(Change::KeyAdded {
                role,
                keyid: k.clone(),
            });
        }
        for k in &rc.removed {
            removed_somewhere.insert(k.clone());
            diff.changes.push(Change::KeyRemoved {
                role,
                keyid: k.clone(),
            });
        }
        if rc.reordered {
            diff.changes.push(Change::RoleReordered { role });
        }
        if let Some((_, to)) = rc.threshold {
            // The production targets threshold is compared separately below.
            diff.changes.push(Change::Threshold {
                role,
                threshold: to,
            });
        }
    }
    let prod_before = current_prod
        .map(|p| p.threshold(Role::Targets))
        .unwrap_or(DEFAULT_PROD_TARGETS_THRESHOLD);
    let prod_after = draft_prod.threshold(Role::Targets);
    if prod_before != prod_after {
        diff.changes.push(Change::ProdThreshold {
            threshold: prod_after,
        });
    }
    if c.expires.0 != c.expires.1 {
        diff.changes.push(Change::Expires {
            expires: c.expires.1,
        });
    }
    // An owner entry belongs to the key it describes: it may appear with an added key and
    // disappear with a key that leaves `keys`; anything else is a change of its own.
    for k in &c.key_owners_changed {
        let in_draft = draft_ci
            .key_owners
            .as_ref()
            .is_some_and(|o| o.contains_key(k));
        let part_of_key_change = if in_draft {
            added_somewhere.contains(k) && !current_ci.keys.contains_key(k)
        } else {
            removed_somewhere.contains(k) || !draft_ci.keys.contains_key(k)
        };
        if !part_of_key_change {
            diff.changes.push(Change::KeyOwner { keyid: k.clone() });
        }
    }
    let used_before: BTreeSet<&KeyId> = current_ci
        .roles
        .values()
        .flat_map(|r| r.keyids.iter())
        .collect();
    for k in &c.unused_keys {
        // Already listed and unused in the current root: not this draft's doing.
        let was_unused = current_ci.keys.contains_key(k) && !used_before.contains(k);
        if !was_unused {
            diff.changes.push(Change::UnusedKey { keyid: k.clone() });
        }
    }
    for f in &c.other_fields {
        diff.changes.push(Change::Member { name: f.clone() });
    }
    if c.changelog_changed {
        let text = draft_ci
            .changelog
            .as_ref()
            .and_then(|c| c.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or("(no message)");
        diff.notes.push(format!(
            "changelog (set by the server, read by no device): {text}"
        ));
    }
    diff
}

/// Who vouches for a set of changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Authority {
    /// The operation the operator typed on this signer's command line.
    Operator {
        /// The command, as the person would recognise it.
        command: String,
    },
    /// An authenticated step of a pinned cosigner, or of this signer itself.
    Cosigner {
        /// The name it was pinned under; `None` for this signer's own earlier step.
        name: Option<String>,
        /// The step's number in the record (1-based).
        step: usize,
    },
    /// The operator typed this change's confirmation code on a terminal after seeing it.
    Confirmed,
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authority::Operator { command } => write!(f, "your command ({command})"),
            Authority::Cosigner {
                name: Some(name),
                step,
            } => write!(f, "cosigner {name} (step {step}, authenticated)"),
            Authority::Cosigner { name: None, step } => {
                write!(f, "this laptop's own step {step} (authenticated)")
            }
            Authority::Confirmed => f.write_str("confirmed by you on this terminal"),
        }
    }
}

/// Exact changes vouched for by one authority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Who vouches.
    pub authority: Authority,
    /// What exactly.
    pub changes: Vec<Change>,
}

/// One change with the authority that covers it (the first grant that names it), if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuthorizedChange {
    /// The change.
    pub change: Change,
    /// Who authorized it; `None`: nobody (it needs the operator's confirmation).
    pub authority: Option<Authority>,
    /// Operations of the request (the online side) that would make such a change: shown,
    /// never an authority.
    pub proposed_by: Vec<String>,
}

/// Pairs every change of `diff` with the first grant that covers it exactly.
/// `requested` are the request's operations, rendered for [`AuthorizedChange::proposed_by`].
pub fn authorize(
    diff: &DraftDiff,
    grants: &[Grant],
    requested: &[crate::bundle::Operation],
) -> Vec<AuthorizedChange> {
    diff.changes
        .iter()
        .map(|c| AuthorizedChange {
            change: c.clone(),
            authority: grants
                .iter()
                .find(|g| g.changes.contains(c))
                .map(|g| g.authority.clone()),
            proposed_by: proposals(c, requested),
        })
        .collect()
}

/// The requested operations that would make a change like `change` (for display only).
pub fn proposals(change: &Change, requested: &[crate::bundle::Operation]) -> Vec<String> {
    use crate::bundle::Operation as Op;
    requested
        .iter()
        .filter(|op| match (op, change) {
            (
                Op::FirstTimeRootRotation | Op::RootRotation,
                Change::KeyAdded {
                    role: Role::Root, ..
                }
                | Change::KeyRemoved {
                    role: Role::Root, ..
                }
                | Change::Expires { .. },
            ) => true,
            (
                Op::TargetsRotation,
                Change::KeyAdded {
                    role: Role::Targets,
                    ..
                }
                | Change::KeyRemoved {
                    role: Role::Targets,
                    ..
                },
            ) => true,
            (Op::AddOfflineKey { role, .. }, Change::KeyAdded { role: r, .. }) => role == r,
            (Op::DeleteOfflineKey { role, keyid }, Change::KeyRemoved { role: r, keyid: k }) => {
                role == r && keyid == k
            }
            (
                Op::SetThreshold { role, threshold },
                Change::Threshold {
                    role: r,
                    threshold: t,
                },
            ) => role == r && threshold == t,
            (
                Op::SetThreshold {
                    role: Role::Targets,
                    threshold,
                },
                Change::ProdThreshold { threshold: t },
            ) => threshold == t,
            (
                Op::RotateOnlineKey { roles },
                Change::KeyAdded { role, .. } | Change::KeyRemoved { role, .. },
            ) => roles.contains(role),
            _ => false,
        })
        .map(ToString::to_string)
        .collect()
}

/// The changes of `authorized` that no authority covers.
pub fn unauthorized(authorized: &[AuthorizedChange]) -> Vec<&AuthorizedChange> {
    authorized
        .iter()
        .filter(|a| a.authority.is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::Operation;
    use crate::test_support::key;
    use crate::transform;

    /// A root v1 with the initial root key 1 and online keys 2, 3, 4.
    fn v1() -> Root {
        crate::test_support::FactoryKeys::from_seed(1)
            .root_v1()
            .expires_at("2027-01-01T00:00:00Z")
            .build()
    }

    fn staged(cur: &Root) -> Root {
        let mut d = cur.clone();
        d.version += 1;
        d
    }

    #[test]
    fn an_untouched_draft_has_no_changes() {
        let cur = v1();
        let d = staged(&cur);
        let (ci, prod) = transform::finalize(&d, None);
        let diff = diff_drafts(&cur, None, &ci.signed, &prod.signed);
        assert_eq!(diff, DraftDiff::default());
    }

    #[test]
    fn a_rotation_is_three_exact_changes_covered_only_by_an_exact_grant() {
        let cur = v1();
        let now = Timestamp::parse("2026-06-01T00:00:00Z").unwrap();
        let new = key(50);
        let rotated = transform::rotate_offline_root_key(
            &staged(&cur),
            key(1).keyid(),
            new.public_key(),
            None,
            &now,
        )
        .unwrap();
        let (ci, prod) = transform::finalize(&rotated, None);
        let diff = diff_drafts(&cur, None, &ci.signed, &prod.signed);
        assert!(diff.forbidden.is_empty(), "{diff:?}");
        let expected = vec![
            Change::KeyAdded {
                role: Role::Root,
                keyid: new.keyid().clone(),
            },
            Change::KeyRemoved {
                role: Role::Root,
                keyid: key(1).keyid().clone(),
            },
            Change::Expires {
                expires: transform::one_year_after(&now),
            },
        ];
        assert_eq!(diff.changes, expected);
        let op = Grant {
            authority: Authority::Operator {
                command: "rotate-offline-key --role root".into(),
            },
            changes: expected.clone(),
        };
        let a = authorize(&diff, &[op], &[Operation::FirstTimeRootRotation]);
        assert!(unauthorized(&a).is_empty());
        assert_eq!(a[0].proposed_by, vec!["first-time-root-rotation"]);

        // A grant for another key id covers nothing of the key change.
        let other = Grant {
            authority: Authority::Confirmed,
            changes: vec![Change::KeyAdded {
                role: Role::Root,
                keyid: key(51).keyid().clone(),
            }],
        };
        let a = authorize(&diff, &[other], &[]);
        assert_eq!(unauthorized(&a).len(), 3);
    }

    #[test]
    fn a_request_is_a_proposal_never_an_authority() {
        let cur = v1();
        let extra = key(60);
        let d = transform::add_offline_key(&staged(&cur), Role::Root, extra.public_key(), None)
            .unwrap();
        let (ci, prod) = transform::finalize(&d, None);
        let diff = diff_drafts(&cur, None, &ci.signed, &prod.signed);
        let requested = [Operation::AddOfflineKey {
            role: Role::Root,
            keyid: Some(extra.keyid().clone()),
        }];
        let a = authorize(&diff, &[], &requested);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].authority, None);
        assert_eq!(a[0].proposed_by.len(), 1);
        assert_eq!(
            a[0].change.confirmation_code(),
            extra.keyid().as_str()[..8].to_string()
        );
    }

    #[test]
    fn forbidden_differences_are_not_changes() {
        let cur = v1();
        // Version skips ahead, and a production root that is not the CI root's twin.
        let mut d = staged(&cur);
        d.version += 1;
        let (ci, mut prod) = transform::finalize(&d, None);
        prod.signed.consistent_snapshot = true;
        let diff = diff_drafts(&cur, None, &ci.signed, &prod.signed);
        assert_eq!(diff.forbidden.len(), 2, "{diff:?}");
        // A key whose public value changes under its id.
        let mut d = staged(&cur);
        let id = key(1).keyid().clone();
        d.keys.insert(id, key(70).public_key().clone());
        let (ci, prod) = transform::finalize(&d, None);
        let diff = diff_drafts(&cur, None, &ci.signed, &prod.signed);
        assert!(diff.forbidden.iter().any(|f| f.contains("keeps its id")));
    }

    #[test]
    fn thresholds_expiry_owners_and_members_are_changes_of_their_own() {
        let cur = v1();
        let mut d = staged(&cur);
        d.roles.get_mut("root").unwrap().threshold = 2;
        d.expires = Timestamp::parse("2030-01-01T00:00:00Z").unwrap();
        d.consistent_snapshot = true;
        let (ci, mut prod) = transform::finalize(&d, None);
        prod.signed.roles.get_mut("targets").unwrap().threshold = 3;
        let diff = diff_drafts(&cur, None, &ci.signed, &prod.signed);
        assert!(diff.changes.contains(&Change::Threshold {
            role: Role::Root,
            threshold: 2
        }));
        assert!(diff
            .changes
            .contains(&Change::ProdThreshold { threshold: 3 }));
        assert!(diff.changes.contains(&Change::Member {
            name: "consistent_snapshot".into()
        }));
        assert!(diff
            .changes
            .iter()
            .any(|c| matches!(c, Change::Expires { .. })));
        // Codes are stable and 8 hex digits.
        let code = Change::ProdThreshold { threshold: 3 }.confirmation_code();
        assert_eq!(code.len(), 8);
        assert_eq!(
            code,
            Change::ProdThreshold { threshold: 3 }.confirmation_code()
        );
        assert_ne!(
            code,
            Change::ProdThreshold { threshold: 2 }.confirmation_code()
        );
    }

    #[test]
    fn changes_round_trip_through_their_json_form() {
        let c = Change::KeyAdded {
            role: Role::Targets,
            keyid: key(9).keyid().clone(),
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.starts_with("{\"change\":\"key-added\""), "{json}");
        assert_eq!(serde_json::from_str::<Change>(&json).unwrap(), c);
        assert!(serde_json::from_str::<Change>(
            "{\"change\":\"key-added\",\"role\":\"root\",\"keyid\":\"00\",\"x\":1}"
        )
        .is_err());
    }
}
