//! The signer's decision about a draft root pair: every change, who authorized it, and the
//! operator's typed confirmation of what nothing else authorized.
//!
//! A change of the drafts against the roots in force ([`shared::authority::diff_drafts`]) is
//! signed only when one of these authorizes it:
//!
//! 1. **the operator's command** on this signer (the run's own [`Grant`]: the exact keys,
//!    threshold and expiry the operation produces);
//! 2. **an authenticated step** of a pinned cosigner (or of this signer itself) whose signed
//!    record states exactly that change ([`steps`], [`shared::attestation`]);
//! 3. **the operator's typed confirmation** of that one change on a terminal, after seeing
//!    it ([`Decision::settle`]: the first 8 hex digits of a key id, or the code shown).
//!
//! What the request lists is a proposal by the online side and is shown as such, never
//! counted. With `--yes` a change that needs a confirmation is refused, naming it and how
//! to authorize it. A step whose attestation does not verify, or that carries none, makes
//! the whole bundle unsignable: someone changed it after its signer made it.
//!
//! `inspect` builds the same [`Decision`] a signing command acts on.

use std::path::Path;

use shared::attestation::IdentityKey;
use shared::authority::{self, Authority, AuthorizedChange, Change, DraftDiff, Grant};
use shared::bundle::{Operation, StepAuth, Writer};
use shared::metadata::{Root, Timestamp};

use crate::audit::{self, AuditEvent};
use crate::cosigner::{Cosigners, Known};
use crate::ctx::Ctx;
use crate::error::{Result, SignerError};
use crate::identity;
use crate::session::Loaded;

/// Who made an earlier step of a response, as far as this signer can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepTrust {
    /// This signer (an earlier step on this laptop).
    ThisSigner,
    /// A pinned cosigner.
    Cosigner(String),
    /// A valid attestation by an identity nobody pinned here.
    Unknown(IdentityKey),
    /// No attestation.
    Unsigned,
    /// An attestation that does not verify.
    Broken {
        /// The identity it names.
        identity: IdentityKey,
        /// Why it fails.
        reason: String,
    },
}

/// One earlier step of a response.
#[derive(Debug, Clone)]
pub struct StepView {
    /// Its number in the record (1-based).
    pub number: usize,
    /// The program that made it.
    pub writer: Writer,
    /// When.
    pub time: Timestamp,
    /// What it says it did.
    pub operations: Vec<Operation>,
    /// Whether its record is authentic, and whose.
    pub trust: StepTrust,
    /// The changes it says it authorized.
    pub claims: Vec<Change>,
}

impl StepView {
    /// The grant of an authenticated step (none for the others).
    pub fn grant(&self) -> Option<Grant> {
        let name = match &self.trust {
            StepTrust::ThisSigner => None,
            StepTrust::Cosigner(n) => Some(n.clone()),
            _ => return None,
        };
        Some(Grant {
            authority: Authority::Cosigner {
                name,
                step: self.number,
            },
            changes: self.claims.clone(),
        })
    }

    /// One line for the person.
    pub fn describe(&self) -> String {
        let who = match &self.trust {
            StepTrust::ThisSigner => "made on this laptop (authenticated)".to_string(),
            StepTrust::Cosigner(n) => format!("by cosigner {n} (authenticated)"),
            StepTrust::Unknown(id) => format!(
                "signed by an identity nobody pinned here ({}): its claims count as unauthenticated",
                id.fingerprint()
            ),
            StepTrust::Unsigned => "NOT SIGNED by the signer that made it".to_string(),
            StepTrust::Broken { identity, reason } => format!(
                "its signature by {} DOES NOT VERIFY ({reason})",
                identity.fingerprint()
            ),
        };
        format!(
            "step {} ({} {}, {}): {} — {who}",
            self.number,
            self.writer.tool,
            self.writer.version,
            self.time,
            if self.operations.is_empty() {
                "no operation".to_string()
            } else {
                self.operations
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )
    }
}

/// The earlier steps of `l` (none for a request), each checked against this signer's
/// identity and its pinned cosigners.
pub fn steps(l: &Loaded, state: &Path) -> Result<Vec<StepView>> {
    let Some(record) = l.bundle.record() else {
        return Ok(Vec::new());
    };
    let cosigners = Cosigners::load(state)?;
    let own = identity::load_signing_identity(state)?.map(|i| i.public());
    Ok(record
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let trust = match l.bundle.step_auth(s, &record.request_sha256) {
                StepAuth::Signed(id) => match cosigners.who(&id, own.as_ref()) {
                    Known::ThisSigner => StepTrust::ThisSigner,
                    Known::Cosigner(n) => StepTrust::Cosigner(n),
                    Known::Unknown => StepTrust::Unknown(id),
                },
                StepAuth::Unsigned => StepTrust::Unsigned,
                StepAuth::Broken { identity, reason } => StepTrust::Broken { identity, reason },
            };
            StepView {
                number: i + 1,
                writer: s.signer.clone(),
                time: s.time,
                operations: s.operations.clone(),
                trust,
                claims: s.authorized.clone().unwrap_or_default(),
            }
        })
        .collect())
}

/// The decision about one draft pair: every change with its authority, and what makes the
/// drafts unsignable whatever anyone confirms.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Every change of the drafts with its authority (or none).
    pub changes: Vec<AuthorizedChange>,
    /// Reasons the drafts must not be signed at all.
    pub refusals: Vec<String>,
    /// Things worth showing that need no authority.
    pub notes: Vec<String>,
}

impl Decision {
    /// Decides on `draft_ci`/`draft_prod` of bundle `l` given the earlier `steps`, this
    /// run's own `grants` and the changes the operator already `confirmed` in this run.
    pub fn new(
        l: &Loaded,
        steps: &[StepView],
        draft_ci: &Root,
        draft_prod: &Root,
        grants: &[Grant],
        confirmed: &[Change],
    ) -> Decision {
        let diff: DraftDiff = authority::diff_drafts(
            &l.tx.current_ci.signed,
            l.tx.current_prod.as_ref().map(|p| &p.signed),
            draft_ci,
            draft_prod,
        );
        let mut all: Vec<Grant> = grants.to_vec();
        all.extend(steps.iter().filter_map(StepView::grant));
        if !confirmed.is_empty() {
            all.push(Grant {
                authority: Authority::Confirmed,
                changes: confirmed.to_vec(),
            });
        }
        let mut refusals = diff.forbidden.clone();
        for s in steps {
            match &s.trust {
                StepTrust::Unsigned => refusals.push(format!(
                    "step {} carries no signature of the signer that made it: it may have been written or rewritten anywhere between the laptops (a format-1 response, or an attestation stripped on the way); ask its signer to redo the step with this version",
                    s.number
                )),
                StepTrust::Broken { identity, reason } => refusals.push(format!(
                    "step {} was changed after its signer ({}) signed it: {reason}",
                    s.number,
                    identity.fingerprint()
                )),
                _ => {}
            }
        }
        Decision {
            changes: authority::authorize(&diff, &all, l.bundle.operations()),
            refusals,
            notes: diff.notes,
        }
    }

    /// The changes nothing authorized.
    pub fn unauthorized(&self) -> Vec<&AuthorizedChange> {
        authority::unauthorized(&self.changes)
    }

    /// The changes this run vouches for, as its step records them.
    pub fn authorized(&self) -> Vec<Change> {
        self.changes
            .iter()
            .filter(|c| c.authority.is_some())
            .map(|c| c.change.clone())
            .collect()
    }

    /// The authority table: one line per change (and the notes).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.changes.is_empty() {
            out.push("Changes of the staged roots: none besides the version (the drafts are the roots in force, one version on).".into());
        } else {
            out.push("Changes of the staged roots and who authorized each:".into());
        }
        for c in &self.changes {
            let who = match &c.authority {
                Some(a) => a.to_string(),
                None => format!(
                    "NOT AUTHORIZED — needs your typed confirmation ({})",
                    c.change.confirmation_code()
                ),
            };
            let proposed = if c.proposed_by.is_empty() {
                String::new()
            } else {
                format!(
                    "; proposed by the online side: {}",
                    c.proposed_by.join(", ")
                )
            };
            out.push(format!("  - {}: {who}{proposed}", c.change));
        }
        for n in &self.notes {
            out.push(format!("  note: {n}"));
        }
        out
    }

    /// Before roots are signed: refuses when something makes them unsignable; asks the
    /// operator to confirm, one by one, each change nothing authorized (with `--yes` or
    /// without a terminal: refused). Confirmed changes are added to `confirmed` and to the
    /// audit log.
    pub fn settle(&mut self, ctx: &mut Ctx<'_>, confirmed: &mut Vec<Change>) -> Result<()> {
        let ui = &mut *ctx.ui;
        if !self.refusals.is_empty() {
            return Err(SignerError::MustNotSign(self.refusals.clone()));
        }
        let open: Vec<AuthorizedChange> = self.unauthorized().into_iter().cloned().collect();
        if open.is_empty() {
            return Ok(());
        }
        if ui.yes() || !ui.interactive() {
            return Err(SignerError::NeedsAuthority(
                open.iter().map(describe_open).collect(),
            ));
        }
        for c in open {
            let code = c.change.confirmation_code();
            ui.line(format!("! {}", describe_open(&c)));
            let what = match c.change.key_role() {
                Some(_) => {
                    "the first 8 hex digits of the key id (check them with the key's holder)"
                }
                None => "the code shown",
            };
            ui.confirm_code(
                &format!("Authorize this change yourself? Type {what} to accept it, anything else refuses:"),
                &code,
            )?;
            audit::record(
                ctx.state.path(),
                &ctx.now,
                AuditEvent::ChangeConfirmed {
                    change: c.change.to_string(),
                    code: code.clone(),
                },
            )?;
            confirmed.push(c.change.clone());
            if let Some(entry) = self.changes.iter_mut().find(|x| x.change == c.change) {
                entry.authority = Some(Authority::Confirmed);
            }
        }
        Ok(())
    }
}

/// An unauthorized change, with where it came from and how to authorize it.
fn describe_open(c: &AuthorizedChange) -> String {
    let from = if c.proposed_by.is_empty() {
        "nothing this signer trusts made it".to_string()
    } else {
        format!(
            "proposed by the online side ({}), which is not an authority",
            c.proposed_by.join(", ")
        )
    };
    format!(
        "{} — {from}. To authorize it: run the operation yourself on this signer, pin the cosigner whose step made it (`signer cosigner add`), or confirm it on a terminal without --yes (code {})",
        c.change,
        c.change.confirmation_code()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::testing::run_with;
    use crate::testutil::*;
    use crate::ui::Ui;
    use shared::bundle::Operation;
    use shared::keys::PrivateKey;
    use shared::metadata::Role;
    use shared::transform;

    fn loaded(f: &Factory, ops: Vec<Operation>) -> Loaded {
        crate::session::from_bundle(Path::new("r"), f.request(ops, None)).unwrap()
    }

    #[test]
    fn requested_operations_are_proposals_and_yes_refuses() {
        let mut f = Factory::new();
        f.apply_first_time_rotation();
        let extra = PrivateKey::ed25519_from_seed(&[77; 32]);
        let l = loaded(
            &f,
            vec![Operation::AddOfflineKey {
                role: Role::Root,
                keyid: Some(extra.keyid().clone()),
            }],
        );
        let d =
            transform::add_offline_key(&l.draft_ci.signed, Role::Root, extra.public_key(), None)
                .unwrap();
        let (ci, prod) = transform::finalize(&d, Some(&l.draft_prod.signed));
        let mut dec = Decision::new(&l, &[], &ci.signed, &prod.signed, &[], &[]);
        assert_eq!(dec.unauthorized().len(), 1);
        let text = dec.lines().join("\n");
        assert!(
            text.contains("NOT AUTHORIZED") && text.contains("proposed by the online side"),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut confirmed = Vec::new();
        // --yes: refused, naming the change.
        let (mut ui, _) = Ui::scripted("", false, true);
        let err = run_with(dir.path(), &mut ui, |ctx| dec.settle(ctx, &mut confirmed)).unwrap_err();
        assert!(matches!(err, SignerError::NeedsAuthority(_)));
        assert!(err.to_string().contains(extra.keyid().as_str()), "{err}");
        // A terminal: a wrong code refuses, the key id prefix accepts.
        let (mut ui, _) = Ui::scripted("yes\n", true, false);
        assert!(run_with(dir.path(), &mut ui, |ctx| dec.settle(ctx, &mut confirmed)).is_err());
        assert!(confirmed.is_empty());
        let code = &extra.keyid().as_str()[..8];
        let (mut ui, _) = Ui::scripted(&format!("{code}\n"), true, false);
        run_with(dir.path(), &mut ui, |ctx| dec.settle(ctx, &mut confirmed)).unwrap();
        assert_eq!(confirmed.len(), 1);
        assert!(dec.unauthorized().is_empty());
        assert_eq!(dec.authorized().len(), 1);
        // The same decision made again with the confirmation carried over is settled.
        let again = Decision::new(&l, &[], &ci.signed, &prod.signed, &[], &confirmed);
        assert!(again.unauthorized().is_empty());
    }

    #[test]
    fn the_operators_command_is_an_authority_and_forbidden_is_final() {
        let mut f = Factory::new();
        f.apply_first_time_rotation();
        let l = loaded(
            &f,
            vec![Operation::SetThreshold {
                role: Role::Root,
                threshold: 1,
            }],
        );
        let mut ci = l.draft_ci.signed.clone();
        ci.roles.get_mut("root").unwrap().threshold = 1;
        let grant = Grant {
            authority: Authority::Operator {
                command: "set-threshold".into(),
            },
            changes: vec![],
        };
        let d = Decision::new(&l, &[], &ci, &l.draft_prod.signed, &[grant], &[]);
        assert!(d.unauthorized().is_empty());
        // A production draft that is not the CI draft's twin is refused, whatever is confirmed.
        let mut prod = l.draft_prod.signed.clone();
        prod.consistent_snapshot = !prod.consistent_snapshot;
        let mut d = Decision::new(&l, &[], &ci, &prod, &[], &[]);
        let (mut ui, _) = Ui::scripted("", true, false);
        let err = run_with(Path::new("/nonexistent"), &mut ui, |ctx| {
            d.settle(ctx, &mut Vec::new())
        })
        .unwrap_err();
        assert!(matches!(err, SignerError::MustNotSign(_)), "{err}");
    }
}
