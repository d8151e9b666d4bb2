//! `courier updates review`: the server's view of the transaction (amendments, errors,
//! warnings — printed exactly like `fioctl keys tuf updates review`) plus the courier's own
//! local recommendations, computed from the roots the server sent.

use serde::Serialize;
use shared::canonical;
use shared::keys::KeyType;
use shared::metadata::{Role, Root, SignedRoot, Timestamp};
use shared::transaction::{ParsedTransaction, TxStatus};
use shared::verify;

use crate::api::one_line;
use crate::cli::ReviewArgs;
use crate::error::{CourierError, Result};
use crate::Ctx;

/// How serious a local finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Must be fixed before apply (or the factory is at risk).
    Error,
    /// Should be fixed.
    Warning,
    /// Good to know.
    Info,
}

/// One local recommendation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How serious it is.
    pub level: Level,
    /// What to do, for people.
    pub message: String,
}

fn finding(level: Level, message: impl Into<String>) -> Finding {
    Finding {
        level,
        message: message.into(),
    }
}

/// Days before expiry below which a root is flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Checks of one root's content (keys, roles, expiry), independent of signatures.
pub fn check_root_content(root: &Root, what: &str, now: &Timestamp, findings: &mut Vec<Finding>) {
    let days = now.days_until(&root.expires);
    if root.expires <= *now {
        findings.push(finding(
            Level::Error,
            format!(
                "{what} expired on {}: devices refuse it; {}",
                root.expires,
                shared::expiry::RENEW_ROOT
            ),
        ));
    } else if days < EXPIRY_WARNING_DAYS {
        findings.push(finding(
            Level::Warning,
            format!(
                "{what} expires in {days} day(s) ({}): {}",
                root.expires.date(),
                shared::expiry::RENEW_ROOT
            ),
        ));
    }
    if let Err(e) = verify::check_key_ids(root, what) {
        findings.push(finding(Level::Error, e.to_string()));
    }
    for role in Role::ALL {
        for id in root.role_keyids(role) {
            if !root.keys.contains_key(id) {
                findings.push(finding(
                    Level::Error,
                    format!("{what}: role {role} lists key {id}, which is not in keys"),
                ));
            }
        }
    }
    let used: std::collections::BTreeSet<_> =
        root.roles.values().flat_map(|r| r.keyids.iter()).collect();
    for id in root.keys.keys().filter(|id| !used.contains(id)) {
        findings.push(finding(
            Level::Info,
            format!(
                "{what}: key {} is not used by any role and will be removed by the next change",
                id.short()
            ),
        ));
    }
    let root_ids = root.role_keyids(Role::Root);
    let owned = root
        .key_owners
        .as_ref()
        .is_some_and(|o| root_ids.iter().any(|id| o.contains_key(id)));
    if !owned {
        findings.push(finding(
            Level::Warning,
            format!(
                "{what}: the root key does not look like an offline key created by an admin (no x-key-owners entry); \
                 if it is still the initial key held by Foundries.io, take it offline with \
                 `courier rotate-offline-key --role root --first-time`"
            ),
        ));
    } else if root_ids.len() == 1 {
        findings.push(finding(
            Level::Info,
            format!(
                "{what}: there is a single offline root key; consider a second one kept by another admin \
                 (`courier updates pull --op add-root-key`) so that losing one key is not fatal"
            ),
        ));
    }
    let targets_ids = root.role_keyids(Role::Targets);
    if targets_ids.len() <= 1 {
        findings.push(finding(
            Level::Warning,
            format!(
                "{what}: no offline targets key: production targets and waves cannot be signed; create one with \
                 `courier rotate-offline-key --role targets`"
            ),
        ));
    }
    for role in [Role::Root, Role::Targets] {
        for id in root.role_keyids(role) {
            if root.keys.get(id).and_then(|k| k.key_type().ok()) == Some(KeyType::Rsa) {
                findings.push(finding(
                    Level::Info,
                    format!(
                        "{what}: {role} key {} is RSA; Ed25519 keys are smaller and faster",
                        id.short()
                    ),
                ));
            }
        }
    }
}

/// Checks that a staged root is signed by the threshold of the base root's root keys and of
/// its own; reports what is missing.
fn check_signed(staged: &SignedRoot, base: &SignedRoot, what: &str, findings: &mut Vec<Finding>) {
    let msg = match staged.canonical_signed() {
        Ok(m) => m,
        Err(e) => {
            findings.push(finding(Level::Error, format!("{what}: {e}")));
            return;
        }
    };
    for (keys_of, whose) in [(&base.signed, "current"), (&staged.signed, "new")] {
        let r = verify::signature_report(keys_of, Role::Root, &msg, &staged.signatures);
        if !r.satisfied() {
            findings.push(finding(
                Level::Error,
                format!(
                    "{what} has {} of {} required signature(s) by the {whose} root keys: sign it offline \
                     (`courier updates pull --op sign-root --bundle FILE`, then the signer)",
                    r.valid.len(),
                    r.threshold
                ),
            ));
        }
    }
}

/// All local recommendations for a transaction state.
pub fn recommendations(txn: &ParsedTransaction, now: &Timestamp) -> Vec<Finding> {
    let mut f = Vec::new();
    match &txn.updated_ci {
        None => {
            check_root_content(&txn.current_ci.signed, "the current root", now, &mut f);
            if let Some(prod) = &txn.current_prod {
                if let Err(e) = verify::verify_ci_prod_pair(&txn.current_ci.signed, &prod.signed) {
                    f.push(finding(Level::Warning, format!("the current roots: {e}")));
                }
            }
        }
        Some(ci) => {
            check_root_content(&ci.signed, "the staged root", now, &mut f);
            let expected = txn.current_ci.signed.version + 1;
            if ci.signed.version != expected {
                f.push(finding(
                    Level::Error,
                    format!(
                        "the staged root has version {}, expected {expected} (current + 1)",
                        ci.signed.version
                    ),
                ));
            }
            let prod = txn.effective_updated_prod();
            if let Some(prod) = &prod {
                if let Err(e) = verify::verify_ci_prod_pair(&ci.signed, &prod.signed) {
                    f.push(finding(Level::Error, format!("the staged roots: {e}")));
                }
                let offline_targets =
                    ci.signed.role_keyids(Role::Targets).len().saturating_sub(1) as u64;
                let needed = prod.signed.threshold(Role::Targets);
                if offline_targets > 0 && needed > offline_targets + 1 {
                    f.push(finding(
                        Level::Error,
                        format!(
                            "the production targets threshold is {needed} but there are only {} targets key(s) \
                             (online + {offline_targets} offline): production targets could never be signed",
                            offline_targets + 1
                        ),
                    ));
                }
            }
            check_signed(ci, &txn.current_ci, "the staged CI root", &mut f);
            if let Some(prod) = &prod {
                check_signed(
                    prod,
                    txn.current_prod_or_ci(),
                    "the staged production root",
                    &mut f,
                );
            }
            if txn.updated_prod.is_none() {
                f.push(finding(
                    Level::Info,
                    "no production root is staged yet; the signer derives it from the staged CI root",
                ));
            }
        }
    }
    f.sort_by_key(|x| x.level);
    f
}

fn pretty(root: &SignedRoot) -> Result<String> {
    let bytes = root
        .to_canonical()
        .map_err(|e| CourierError::Server(format!("cannot serialize a root: {e}")))?;
    canonical::to_pretty(&bytes).map_err(|e| CourierError::Server(e.to_string()))
}

/// `courier updates review`.
pub fn review(ctx: &Ctx, args: &ReviewArgs) -> Result<()> {
    if args.prod && !args.raw && !args.diff {
        return Err(CourierError::Usage(
            "If the flag 'prod' is set then one of the flags [raw diff] must also be set".into(),
        ));
    }
    let client = ctx.client()?;
    let txn = client.updates()?;
    let s = &txn.wire;
    if args.raw || args.diff {
        let Some(ci) = &txn.updated_ci else {
            return Err(CourierError::Other(
                "There are no TUF root updates in progress.".into(),
            ));
        };
        let (after, before) = if args.prod {
            let prod = txn.effective_updated_prod().unwrap_or_else(|| ci.clone());
            (prod, txn.current_prod_or_ci().clone())
        } else {
            (ci.clone(), txn.current_ci.clone())
        };
        let after = pretty(&after)?;
        if args.raw {
            ctx.out.line(&after);
            return Ok(());
        }
        let before = pretty(&before)?;
        let color = ctx.out.stdout_is_terminal();
        let diff = similar::TextDiff::from_lines(&before, &after);
        for group in diff.grouped_ops(3) {
            for op in group {
                for change in diff.iter_changes(&op) {
                    let (sign, code) = match change.tag() {
                        similar::ChangeTag::Delete => ("-", "\x1b[31m"),
                        similar::ChangeTag::Insert => ("+", "\x1b[32m"),
                        similar::ChangeTag::Equal => (" ", ""),
                    };
                    let line = change.value().trim_end_matches('\n');
                    if color && !code.is_empty() {
                        ctx.out.line(&format!("{code}{sign}{line}\x1b[0m"));
                    } else {
                        ctx.out.line(&format!("{sign}{line}"));
                    }
                }
            }
        }
        return Ok(());
    }
    let local = recommendations(&txn, &ctx.now);
    if args.json {
        ctx.out.json(&serde_json::json!({
            "status": s.status,
            "amendments": s.amendments.iter().map(|a| one_line(&a.message)).collect::<Vec<_>>(),
            "errors": s.issues.errors.iter().map(|a| one_line(&a.message)).collect::<Vec<_>>(),
            "warnings": s.issues.warnings.iter().map(|a| one_line(&a.message)).collect::<Vec<_>>(),
            "local": local,
        }));
        return Ok(());
    }
    let mut lines: Vec<String> = Vec::new();
    if s.status == TxStatus::None {
        lines.push("There are no TUF root updates in progress.".into());
        if !s.issues.warnings.is_empty() {
            lines.push(String::new());
            lines.push("These updates to your existing TUF metadata are recommended:".into());
            lines.extend(
                s.issues
                    .warnings
                    .iter()
                    .map(|i| format!(" - {}", one_line(&i.message))),
            );
        }
    } else {
        lines.push("The following TUF root updates are staged for your Factory:".into());
        lines.extend(
            s.amendments
                .iter()
                .map(|i| format!(" - {}", one_line(&i.message))),
        );
        if !s.issues.errors.is_empty() {
            lines.push(String::new());
            lines.push(
                "These updates to your staged TUF root are mandatory before applying it:".into(),
            );
            lines.extend(
                s.issues
                    .errors
                    .iter()
                    .map(|i| format!(" - {}", one_line(&i.message))),
            );
        }
        if !s.issues.warnings.is_empty() {
            lines.push(String::new());
            lines.push("These updates to your staged TUF root are recommended:".into());
            lines.extend(
                s.issues
                    .warnings
                    .iter()
                    .map(|i| format!(" - {}", one_line(&i.message))),
            );
        }
    }
    if !local.is_empty() {
        lines.push(String::new());
        lines.push("Local checks by the courier:".into());
        for f in &local {
            let tag = match f.level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Info => "note",
            };
            lines.push(format!(" - [{tag}] {}", f.message));
        }
    }
    if s.status == TxStatus::Applying {
        lines.push(String::new());
        lines.push(
            "These changes are currently being applied. No more changes can be staged.".into(),
        );
        lines.push(
            "If the previous `courier updates apply` command failed, please, try to run it again."
                .into(),
        );
    } else if s.status == TxStatus::Started {
        lines.push(String::new());
        lines.push(
            "Once you are satisfied with your TUF updates, please, run `courier updates apply`."
                .into(),
        );
        lines.push(
            "If you want to cancel staged TUF updates, please, run `courier updates cancel`."
                .into(),
        );
    }
    for l in lines {
        ctx.out.line(&l);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::keys::PrivateKey;
    use shared::test_support::{key, RootBuilder};

    /// A root v1 whose root key is `root_key` and whose targets key is `targets_key`.
    fn root_with(root_key: &PrivateKey, targets_key: &PrivateKey, expires: &str) -> RootBuilder {
        RootBuilder::new(1)
            .expires_at(expires)
            .role(Role::Root, &[root_key], 1)
            .role(Role::Targets, &[targets_key], 1)
    }

    #[test]
    fn findings_for_a_fresh_factory() {
        let (a, b) = (key(1), key(2));
        let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        let root = root_with(&a, &b, "2026-01-10T00:00:00Z").build();
        let mut f = Vec::new();
        check_root_content(&root, "the current root", &now, &mut f);
        let text: Vec<_> = f.iter().map(|x| x.message.as_str()).collect();
        assert!(
            text.iter().any(|m| m.contains("expires in 9 day(s)")),
            "{text:?}"
        );
        assert!(text.iter().any(|m| m.contains("--first-time")), "{text:?}");
        assert!(
            text.iter().any(|m| m.contains("no offline targets key")),
            "{text:?}"
        );

        let owned = root_with(&a, &b, "2030-01-01T00:00:00Z")
            .owner(&a, "p", now)
            .build();
        let mut f = Vec::new();
        check_root_content(&owned, "r", &now, &mut f);
        assert!(f.iter().all(|x| !x.message.contains("--first-time")));
        assert!(f
            .iter()
            .any(|x| x.message.contains("single offline root key")));
        let mut expired = owned.clone();
        expired.expires = Timestamp::parse("2025-01-01T00:00:00Z").unwrap();
        let mut f = Vec::new();
        check_root_content(&expired, "r", &now, &mut f);
        assert_eq!(f[0].level, Level::Error);
    }

    #[test]
    fn unsigned_staged_root_is_an_error() {
        let (a, b) = (key(1), key(2));
        let cur = root_with(&a, &b, "2030-01-01T00:00:00Z").unsigned();
        let mut staged = cur.clone();
        staged.signed.version = 2;
        let mut f = Vec::new();
        check_signed(&staged, &cur, "the staged CI root", &mut f);
        assert_eq!(f.len(), 2);
        let signed = shared::transform::sign_root(&staged, &[&a]).unwrap();
        let mut f = Vec::new();
        check_signed(&signed, &cur, "the staged CI root", &mut f);
        assert!(f.is_empty(), "{f:?}");
    }
}
