//! The intent check: a draft root may differ from the current root only by what the
//! operations explain.
//!
//! Before anything is signed, the difference between the current (applied) root and the
//! draft(s) is computed ([`shared::changes::root_changes`]) and every part of it must be
//! explained:
//!
//! * **always** (the server's staging): version exactly current + 1; `x-changelog` (set by
//!   the server from the transaction message);
//! * **root rotation** (first-time or later): one root key replaced by a new one, expiry
//!   renewed to about one year after the rotation (± [`EXPIRY_TOLERANCE_DAYS`]);
//! * **targets rotation**: the offline targets key replaced (or the first one added); the
//!   online targets key stays;
//! * **add-offline-key** / **delete-offline-key**: exactly that key added to / removed from
//!   that role;
//! * **set-threshold**: root → the root threshold of both roots; targets → the production
//!   targets threshold only;
//! * **rotate-online-key** (done by the server): the online key of each named role replaced
//!   by the staged one (`updated.online-keys`); online keys change with nothing else;
//! * `x-key-owners` entries may appear only for added keys and disappear only for removed
//!   keys.
//!
//! Anything else (an extra root key, a changed threshold, a shortened or renewed expiry
//! without a rotation, a key whose public value changes under the same id, unknown members,
//! a key no role uses, a production root that differs from the CI root in more than the
//! targets threshold) is *unexplained*: it is shown and refused unless the person passes
//! `--accept-unexplained` and confirms.
//!
//! Operations come from three places. Operations this run performs and operations recorded
//! by earlier signer steps in the bundle are **required**: the draft must show them. Fully
//! specified operations the request asks for (delete a given key, set a given threshold,
//! rotate online keys) are **optional**: they explain a change when it is there (someone
//! may have staged it already) but do not demand it. Requested operations that need a new
//! key (rotations, add-offline-key) explain nothing until a signer step performed them.

use std::collections::{BTreeMap, BTreeSet};

use shared::bundle::Operation;
use shared::changes::root_changes;
use shared::keys::KeyId;
use shared::metadata::{Role, Root, Timestamp};
use shared::transform::{one_year_after, DEFAULT_PROD_TARGETS_THRESHOLD};
use shared::verify::verify_ci_prod_pair;

use crate::error::{Result, SignerError};
use crate::ui::Ui;

/// How far (in days) a renewed expiry may be from "one year after the rotation".
pub const EXPIRY_TOLERANCE_DAYS: i64 = 2;

/// One elementary change an operation explains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A key joins a role (`None`: some new key, not known by id).
    AddKey {
        /// The role.
        role: Role,
        /// The key, when known.
        keyid: Option<KeyId>,
    },
    /// A key leaves a role (`None`: one key, not known by id).
    RemoveKey {
        /// The role.
        role: Role,
        /// The key, when known.
        keyid: Option<KeyId>,
    },
    /// The threshold of a role changes (root: both roots; targets: production root only).
    Threshold {
        /// The role.
        role: Role,
        /// The new threshold.
        threshold: u64,
    },
    /// The expiry is renewed to about one year after `at`.
    RenewExpiry {
        /// When the rotation happened.
        at: Timestamp,
    },
}

/// The changes one operation explains, and where the operation comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// What the person sees ("requested: set-threshold root 2", "step 1: root-rotation", ...).
    pub source: String,
    /// Whether the draft must show these changes.
    pub required: bool,
    /// The changes.
    pub changes: Vec<Change>,
}

/// What the explanations need to know about the transaction.
#[derive(Clone, Debug, Default)]
pub struct OnlineKeys {
    /// `current.online-keys`.
    pub current: BTreeMap<String, KeyId>,
    /// `updated.online-keys`.
    pub updated: BTreeMap<String, KeyId>,
}

/// The elementary changes of `op`, as far as the operation says. `keys` gives the created
/// and replaced key of a rotation when known (this run, or a recorded step that names them).
pub fn changes_of(
    op: &Operation,
    current: &Root,
    online: &OnlineKeys,
    at: Timestamp,
    rotation_keys: Option<(&Option<KeyId>, &Option<KeyId>)>,
) -> Vec<Change> {
    let (new, old) = match rotation_keys {
        Some((n, o)) => (n.clone(), o.clone()),
        None => (None, None),
    };
    match op {
        Operation::FirstTimeRootRotation | Operation::RootRotation => {
            // The first-time rotation replaces the single initial root key.
            let old = old.or_else(|| match current.role_keyids(Role::Root) {
                [only] if matches!(op, Operation::FirstTimeRootRotation) => Some(only.clone()),
                _ => None,
            });
            vec![
                Change::RemoveKey {
                    role: Role::Root,
                    keyid: old,
                },
                Change::AddKey {
                    role: Role::Root,
                    keyid: new,
                },
                Change::RenewExpiry { at },
            ]
        }
        Operation::TargetsRotation => {
            let online_t = online.updated.get("targets");
            let offline_before = current
                .role_keyids(Role::Targets)
                .iter()
                .filter(|k| Some(*k) != online_t && Some(*k) != online.current.get("targets"))
                .count();
            let mut out = Vec::new();
            if old.is_some() || offline_before > 0 {
                out.push(Change::RemoveKey {
                    role: Role::Targets,
                    keyid: old,
                });
            }
            out.push(Change::AddKey {
                role: Role::Targets,
                keyid: new,
            });
            out
        }
        Operation::AddOfflineKey { role, keyid } => vec![Change::AddKey {
            role: *role,
            keyid: keyid.clone().or(new),
        }],
        Operation::DeleteOfflineKey { role, keyid } => vec![Change::RemoveKey {
            role: *role,
            keyid: Some(keyid.clone()),
        }],
        Operation::SetThreshold { role, threshold } => vec![Change::Threshold {
            role: *role,
            threshold: *threshold,
        }],
        Operation::RotateOnlineKey { roles } => roles
            .iter()
            .flat_map(|r| {
                [
                    Change::RemoveKey {
                        role: *r,
                        keyid: online.current.get(r.as_str()).cloned(),
                    },
                    Change::AddKey {
                        role: *r,
                        keyid: online.updated.get(r.as_str()).cloned(),
                    },
                ]
            })
            .collect(),
        Operation::SignRoot | Operation::SignProdTargets { .. } | Operation::SignWave { .. } => {
            Vec::new()
        }
    }
}

/// Whether a requested (not yet performed) operation explains something on its own: only
/// fully specified operations do.
pub fn request_explains(op: &Operation) -> bool {
    matches!(
        op,
        Operation::DeleteOfflineKey { .. }
            | Operation::SetThreshold { .. }
            | Operation::RotateOnlineKey { .. }
            | Operation::AddOfflineKey { keyid: Some(_), .. }
    )
}

/// The outcome of the intent check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntentReport {
    /// Changes nothing explains (empty: the draft is exactly what was asked for).
    pub unexplained: Vec<String>,
    /// Things worth showing that are explained (changelog text, renewed expiry, ...).
    pub notes: Vec<String>,
}

impl IntentReport {
    /// Whether everything is explained.
    pub fn is_clean(&self) -> bool {
        self.unexplained.is_empty()
    }
}

/// Which roles [`check`] compares (roles present in either root).
fn role_names<'a>(a: &'a Root, b: &'a Root) -> BTreeSet<&'a str> {
    a.roles
        .keys()
        .chain(b.roles.keys())
        .map(String::as_str)
        .collect()
}

/// Checks `draft_ci`/`draft_prod` against `current_ci`/`current_prod` under `explanations`.
pub fn check(
    current_ci: &Root,
    current_prod: Option<&Root>,
    draft_ci: &Root,
    draft_prod: &Root,
    explanations: &[Explanation],
) -> IntentReport {
    let mut report = IntentReport::default();
    let un = &mut report.unexplained;

    if draft_ci.version != current_ci.version + 1 {
        un.push(format!(
            "version: the draft is version {}, it must be exactly {} (current {} + 1)",
            draft_ci.version,
            current_ci.version + 1,
            current_ci.version
        ));
    }
    if draft_prod.version != draft_ci.version {
        un.push(format!(
            "version: the production draft is version {}, the CI draft {}",
            draft_prod.version, draft_ci.version
        ));
    }
    if let Err(e) = verify_ci_prod_pair(draft_ci, draft_prod) {
        un.push(e.to_string());
    }

    let changes = root_changes(current_ci, draft_ci);
    let all: Vec<(&Explanation, &Change)> = explanations
        .iter()
        .flat_map(|e| e.changes.iter().map(move |c| (e, c)))
        .collect();

    // Keys per role.
    let mut added_keys: BTreeSet<KeyId> = BTreeSet::new();
    let mut removed_keys: BTreeSet<KeyId> = BTreeSet::new();
    for name in role_names(current_ci, draft_ci) {
        let Some(role) = Role::parse(name).filter(|r| r.as_str() == name) else {
            if current_ci.roles.get(name) != draft_ci.roles.get(name) {
                un.push(format!("role {name:?} changes (not a TUF top-level role)"));
            }
            continue;
        };
        let cur: Vec<KeyId> = current_ci.role_keyids(role).to_vec();
        let draft: Vec<KeyId> = draft_ci.role_keyids(role).to_vec();
        let mut expected: BTreeSet<KeyId> = cur.iter().cloned().collect();
        let mut add_any: Vec<&Explanation> = Vec::new();
        let mut remove_any: Vec<&Explanation> = Vec::new();
        for (e, c) in all.iter().filter(|(e, _)| e.required) {
            match c {
                Change::AddKey { role: r, keyid } if *r == role => match keyid {
                    Some(k) => {
                        expected.insert(k.clone());
                    }
                    None => add_any.push(e),
                },
                Change::RemoveKey { role: r, keyid } if *r == role => match keyid {
                    Some(k) => {
                        expected.remove(k);
                    }
                    None => remove_any.push(e),
                },
                _ => {}
            }
        }
        let draft_set: BTreeSet<KeyId> = draft.iter().cloned().collect();
        let mut extra: Vec<KeyId> = draft
            .iter()
            .filter(|k| !expected.contains(*k))
            .cloned()
            .collect();
        let mut missing: Vec<KeyId> = cur
            .iter()
            .chain(expected.iter())
            .filter(|k| expected.contains(*k) && !draft_set.contains(*k))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Optional, fully specified explanations.
        extra.retain(|k| {
            !all.iter().any(|(e, c)| {
                !e.required
                    && matches!(c, Change::AddKey { role: r, keyid: Some(x) } if *r == role && x == k)
            })
        });
        missing.retain(|k| {
            !all.iter().any(|(e, c)| {
                !e.required
                    && matches!(c, Change::RemoveKey { role: r, keyid: Some(x) } if *r == role && x == k)
            })
        });
        // Wildcards: each explains exactly one key, and must explain one.
        for e in add_any {
            if extra.is_empty() {
                un.push(format!(
                    "{}: a new {role} key should be in the draft, but it adds none",
                    e.source
                ));
            } else {
                extra.remove(0);
            }
        }
        for e in remove_any {
            if missing.is_empty() {
                un.push(format!(
                    "{}: a {role} key should have been removed, but none was",
                    e.source
                ));
            } else {
                missing.remove(0);
            }
        }
        for k in extra {
            un.push(format!(
                "{role} role: key {k} is added, and no operation adds it"
            ));
        }
        for k in missing {
            un.push(format!(
                "{role} role: key {k} is removed, and no operation removes it"
            ));
        }
        for k in draft.iter().filter(|k| !cur.contains(k)) {
            added_keys.insert(k.clone());
        }
        for k in cur.iter().filter(|k| !draft.contains(k)) {
            removed_keys.insert(k.clone());
        }
        if let Some(rc) = changes.role(role) {
            if rc.reordered && rc.added.is_empty() && rc.removed.is_empty() {
                un.push(format!(
                    "{role} role: the order of its keys (or other role members) changes"
                ));
            }
        }
    }

    // Thresholds.
    let mut expected_ci: BTreeMap<String, u64> = current_ci
        .roles
        .iter()
        .map(|(n, r)| (n.clone(), r.threshold))
        .collect();
    let mut expected_prod_targets = current_prod
        .map(|p| p.threshold(Role::Targets))
        .unwrap_or(DEFAULT_PROD_TARGETS_THRESHOLD);
    for (_, c) in all.iter().filter(|(e, _)| e.required) {
        if let Change::Threshold { role, threshold } = c {
            match role {
                Role::Targets => expected_prod_targets = *threshold,
                other => {
                    expected_ci.insert(other.as_str().to_string(), *threshold);
                }
            }
        }
    }
    let optional_threshold = |role: Role, value: u64| {
        all.iter().any(|(e, c)| {
            !e.required
                && matches!(c, Change::Threshold { role: r, threshold } if *r == role && *threshold == value)
        })
    };
    for (name, rk) in &draft_ci.roles {
        let want = expected_ci.get(name).copied().unwrap_or(0);
        if rk.threshold != want {
            let explained = Role::parse(name)
                .filter(|r| *r == Role::Root)
                .is_some_and(|r| optional_threshold(r, rk.threshold));
            if !explained {
                un.push(format!(
                    "{name} threshold: {} in the draft, expected {want}",
                    rk.threshold
                ));
            }
        }
    }
    let prod_t = draft_prod.threshold(Role::Targets);
    if prod_t != expected_prod_targets && !optional_threshold(Role::Targets, prod_t) {
        un.push(format!(
            "production targets threshold: {prod_t} in the draft, expected {expected_prod_targets}"
        ));
    }

    // Expiry.
    let (before, after) = changes.expires;
    if before != after {
        let renewals: Vec<Timestamp> = all
            .iter()
            .filter_map(|(_, c)| match c {
                Change::RenewExpiry { at } => Some(*at),
                _ => None,
            })
            .collect();
        let ok = renewals.iter().any(|at| {
            let target = one_year_after(at);
            (after.unix() - target.unix()).abs() <= EXPIRY_TOLERANCE_DAYS * 86_400
        });
        if ok {
            report
                .notes
                .push(format!("expiry renewed: {before} → {after}"));
        } else if renewals.is_empty() {
            let how = if after < before {
                "shortened"
            } else {
                "changed"
            };
            un.push(format!(
                "expiry {how} from {before} to {after}, and no root rotation renews it"
            ));
        } else {
            un.push(format!(
                "expiry changes from {before} to {after}, but a root rotation sets it to one year after the rotation ({})",
                renewals
                    .iter()
                    .map(|t| one_year_after(t).to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
    }

    // Keys, owners, other members.
    let un = &mut report.unexplained;
    for k in &changes.keys_replaced {
        un.push(format!("key {k} keeps its id but its public key changes"));
    }
    let cur_used: BTreeSet<&KeyId> = current_ci
        .roles
        .values()
        .flat_map(|r| r.keyids.iter())
        .collect();
    for k in &changes.unused_keys {
        // Already unused in the current root: not this draft's doing.
        let was_unused = current_ci.keys.contains_key(k) && !cur_used.contains(k);
        if !was_unused {
            un.push(format!("key {k} is in keys but no role uses it"));
        }
    }
    for k in &changes.key_owners_changed {
        let in_draft = draft_ci
            .key_owners
            .as_ref()
            .is_some_and(|o| o.contains_key(k));
        let ok = if in_draft {
            added_keys.contains(k) && !current_ci.keys.contains_key(k)
        } else {
            removed_keys.contains(k) || !draft_ci.keys.contains_key(k)
        };
        if !ok {
            un.push(format!(
                "x-key-owners entry of key {k} changes, but the key is not added or removed"
            ));
        }
    }
    for f in &changes.other_fields {
        un.push(format!("member {f:?} changes"));
    }
    if changes.changelog_changed {
        let text = draft_ci
            .changelog
            .as_ref()
            .and_then(|c| c.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or("(no message)");
        report.notes.push(format!("changelog: {text}"));
    }
    report
}

/// Shows unexplained changes and refuses, unless `accept` and the person confirms.
pub fn enforce(report: &IntentReport, accept: bool, ui: &mut Ui) -> Result<()> {
    for n in &report.notes {
        ui.line(format!("  {n}"));
    }
    if report.is_clean() {
        ui.line("Intent check: every change of the draft is explained by the operations.");
        return Ok(());
    }
    if !accept {
        return Err(SignerError::Unexplained(report.unexplained.clone()));
    }
    ui.line("UNEXPLAINED changes (accepted with --accept-unexplained):");
    for u in &report.unexplained {
        ui.line(format!("  ! {u}"));
    }
    ui.confirm("Sign a draft with these unexplained changes?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use shared::keys::PrivateKey;
    use shared::transform;

    fn required(source: &str, changes: Vec<Change>) -> Explanation {
        Explanation {
            source: source.into(),
            required: true,
            changes,
        }
    }

    #[test]
    fn untouched_draft_is_clean() {
        let f = Factory::new();
        let cur = &f.current().signed;
        let draft = f.server_draft();
        let prod = transform::derive_prod_root(&draft, 2);
        let r = check(cur, None, &draft.signed, &prod.signed, &[]);
        assert!(r.is_clean(), "{r:?}");
        assert!(r.notes.iter().any(|n| n.contains("changelog")));
    }

    #[test]
    fn root_rotation_is_explained_and_extra_key_is_not() {
        let f = Factory::new();
        let cur = &f.current().signed;
        let draft = f.server_draft();
        let new = PrivateKey::ed25519_from_seed(&[50; 32]);
        let rotated = transform::rotate_offline_root_key(
            &draft.signed,
            f.first_root.keyid(),
            new.public_key(),
            Some(owner(&f.now)),
            &f.now,
        )
        .unwrap();
        let (ci, prod) = transform::finalize(&rotated, None);
        let op = Operation::FirstTimeRootRotation;
        let ex = required(
            "this run",
            changes_of(
                &op,
                cur,
                &OnlineKeys::default(),
                f.now,
                Some((&Some(new.keyid().clone()), &None)),
            ),
        );
        let r = check(
            cur,
            None,
            &ci.signed,
            &prod.signed,
            std::slice::from_ref(&ex),
        );
        assert!(r.is_clean(), "{r:?}");

        // Same with the wildcard form (a recorded step without key ids).
        let wild = required(
            "step 1",
            changes_of(&op, cur, &OnlineKeys::default(), f.now, None),
        );
        assert!(check(
            cur,
            None,
            &ci.signed,
            &prod.signed,
            std::slice::from_ref(&wild)
        )
        .is_clean());

        // An extra root key.
        let extra = PrivateKey::ed25519_from_seed(&[51; 32]);
        let sneaky =
            transform::add_offline_key(&ci.signed, Role::Root, extra.public_key(), None).unwrap();
        let (ci2, prod2) = transform::finalize(&sneaky, None);
        let r = check(
            cur,
            None,
            &ci2.signed,
            &prod2.signed,
            std::slice::from_ref(&ex),
        );
        assert_eq!(r.unexplained.len(), 1, "{r:?}");
        assert!(r.unexplained[0].contains(extra.keyid().as_str()));
        let r = check(cur, None, &ci2.signed, &prod2.signed, &[wild]);
        assert!(!r.is_clean());

        // Rotation that does not remove the old key.
        let kept =
            transform::add_offline_key(&draft.signed, Role::Root, new.public_key(), None).unwrap();
        let mut kept = kept;
        kept.expires = transform::one_year_after(&f.now);
        let (ci3, prod3) = transform::finalize(&kept, None);
        let r = check(cur, None, &ci3.signed, &prod3.signed, &[ex]);
        assert!(
            r.unexplained
                .iter()
                .any(|u| u.contains("removed") || u.contains("is added")),
            "{r:?}"
        );
    }

    #[test]
    fn threshold_and_expiry_changes_need_operations() {
        let mut f = Factory::new();
        f.apply_first_time_rotation();
        let cur = f.current().signed.clone();
        let cur_prod = f.prod.clone().unwrap().signed;
        let draft = f.server_draft();
        let prod = transform::derive_prod_root(&draft, 2);

        // Changed production targets threshold, no operation.
        let mut p3 = prod.clone();
        p3.signed.roles.get_mut("targets").unwrap().threshold = 3;
        let r = check(&cur, Some(&cur_prod), &draft.signed, &p3.signed, &[]);
        assert!(r
            .unexplained
            .iter()
            .any(|u| u.contains("production targets threshold")));
        // Explained by a (requested, optional) set-threshold.
        let ex = Explanation {
            source: "requested".into(),
            required: false,
            changes: vec![Change::Threshold {
                role: Role::Targets,
                threshold: 3,
            }],
        };
        assert!(check(
            &cur,
            Some(&cur_prod),
            &draft.signed,
            &p3.signed,
            std::slice::from_ref(&ex)
        )
        .is_clean());
        // The optional explanation does not demand the change.
        assert!(check(&cur, Some(&cur_prod), &draft.signed, &prod.signed, &[ex]).is_clean());

        // Root threshold changed without an operation.
        let mut d = draft.clone();
        d.signed.roles.get_mut("root").unwrap().threshold = 2;
        let dp = transform::derive_prod_root(&d, 2);
        let r = check(&cur, Some(&cur_prod), &d.signed, &dp.signed, &[]);
        assert!(r.unexplained.iter().any(|u| u.contains("root threshold")));

        // Shortened expiry.
        let mut d = draft.clone();
        d.signed.expires = cur.expires.plus_days(-30);
        let dp = transform::derive_prod_root(&d, 2);
        let r = check(&cur, Some(&cur_prod), &d.signed, &dp.signed, &[]);
        assert!(
            r.unexplained.iter().any(|u| u.contains("shortened")),
            "{r:?}"
        );

        // Renewed expiry far from now + 1 year, with a rotation.
        let rot = required("this run", vec![Change::RenewExpiry { at: f.now }]);
        let r = check(&cur, Some(&cur_prod), &d.signed, &dp.signed, &[rot]);
        assert!(
            r.unexplained.iter().any(|u| u.contains("one year after")),
            "{r:?}"
        );
    }

    #[test]
    fn online_keys_change_only_with_rotate_online_key() {
        let mut f = Factory::new();
        f.apply_first_time_rotation();
        let cur = f.current().signed.clone();
        let cur_prod = f.prod.clone().unwrap().signed;
        let draft = f.server_draft();
        let fresh = PrivateKey::ed25519_from_seed(&[60; 32]);
        let replaced = transform::replace_online_key(
            &draft.signed,
            Role::Snapshot,
            f.online_snapshot.keyid(),
            fresh.public_key(),
        )
        .unwrap();
        let (ci, prod) = transform::finalize(&replaced, Some(&cur_prod));
        let r = check(&cur, Some(&cur_prod), &ci.signed, &prod.signed, &[]);
        assert_eq!(r.unexplained.len(), 2, "{r:?}");
        let online = OnlineKeys {
            current: [("snapshot".to_string(), f.online_snapshot.keyid().clone())].into(),
            updated: [("snapshot".to_string(), fresh.keyid().clone())].into(),
        };
        let op = Operation::RotateOnlineKey {
            roles: vec![Role::Snapshot],
        };
        let ex = Explanation {
            source: "requested".into(),
            required: request_explains(&op),
            changes: changes_of(&op, &cur, &online, f.now, None),
        };
        let ex = Explanation {
            required: false,
            ..ex
        };
        assert!(check(&cur, Some(&cur_prod), &ci.signed, &prod.signed, &[ex]).is_clean());
    }

    #[test]
    fn owners_may_change_only_for_added_keys() {
        let mut f = Factory::new();
        f.apply_first_time_rotation();
        let cur = f.current().signed.clone();
        let cur_prod = f.prod.clone().unwrap().signed;
        let mut draft = f.server_draft();
        let owners = draft.signed.key_owners.as_mut().unwrap();
        for o in owners.values_mut() {
            o.polis_id = "mallory".into();
        }
        let prod = transform::derive_prod_root(&draft, 2);
        let r = check(&cur, Some(&cur_prod), &draft.signed, &prod.signed, &[]);
        assert!(
            r.unexplained.iter().any(|u| u.contains("x-key-owners")),
            "{r:?}"
        );
    }

    #[test]
    fn enforce_refuses_or_asks() {
        let report = IntentReport {
            unexplained: vec!["x".into()],
            notes: vec![],
        };
        let (mut ui, _) = Ui::scripted("", false, false);
        assert!(matches!(
            enforce(&report, false, &mut ui),
            Err(SignerError::Unexplained(_))
        ));
        let (mut ui, _) = Ui::scripted("", false, false);
        assert!(matches!(
            enforce(&report, true, &mut ui),
            Err(SignerError::NeedsConfirmation)
        ));
        let (mut ui, out) = Ui::scripted("", false, true);
        enforce(&report, true, &mut ui).unwrap();
        assert!(out.text().contains("UNEXPLAINED"));
    }
}
