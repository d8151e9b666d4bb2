//! `courier updates ...`: the root updates transaction, step by step (fioctl's expert mode).
//!
//! `init`, `status`, `apply`, `cancel` and `rotate-online-key` are here; `review` is
//! [`crate::review`], `pull` builds a request bundle ([`crate::request::pull`]) and `push`
//! uploads a response ([`crate::push::push`]). The transaction itself (its state, starting
//! and applying it) is [`crate::transaction`].

use shared::metadata::{Role, SignedRoot};
use shared::transaction::TxStatus;
use shared::verify;

use crate::api::one_line;
use crate::cli::{CancelArgs, InitArgs, JsonArg, OnlineRole, RotateOnlineKeyArgs, TxidArg};
use crate::error::{CourierError, Result};
use crate::transaction::{self, require_started, resolve_txid};
use crate::Ctx;

/// `courier updates init`.
pub fn init(ctx: &Ctx, args: &InitArgs) -> Result<()> {
    let client = ctx.client()?;
    let txid = transaction::start_transaction(ctx, &client, &args.message, args.first_time, false)?;
    ctx.out.line(&format!(
        "A new transaction to update TUF root keys started.\n\
         Your transaction ID is {txid} .\n\
         Please, keep it secret and only share with participants of the transaction.\n\
         Only the user who initiated the transaction can make changes to it without the transaction ID.\n\
         Other users are required to supply this transaction ID for all commands except review and cancel."
    ));
    if args.first_time {
        ctx.out.line(
            "The initial root key was encrypted to the signer's recipient; it will be in the next request bundle \
             (`courier updates pull --op first-time-root-rotation --bundle FILE`).",
        );
    }
    Ok(())
}

/// Human summary of a signature report: "2 of 3 (threshold 2)".
fn sig_summary(root: &SignedRoot, keys_of: &SignedRoot) -> String {
    match root.canonical_signed() {
        Ok(msg) => {
            let r = verify::signature_report(&keys_of.signed, Role::Root, &msg, &root.signatures);
            format!(
                "{} of {} needed{}",
                r.valid.len(),
                r.threshold,
                if r.satisfied() { " (ok)" } else { "" }
            )
        }
        Err(e) => format!("cannot check: {e}"),
    }
}

fn root_json(r: &SignedRoot) -> serde_json::Value {
    serde_json::json!({
        "version": r.signed.version,
        "expires": r.signed.expires.to_string(),
        "root-keyids": r.signed.role_keyids(Role::Root),
        "root-threshold": r.signed.threshold(Role::Root),
        "targets-keyids": r.signed.role_keyids(Role::Targets),
        "targets-threshold": r.signed.threshold(Role::Targets),
        "signatures": r.signatures.len(),
    })
}

/// `courier updates status`.
pub fn status(ctx: &Ctx, args: &JsonArg) -> Result<()> {
    let client = ctx.client()?;
    let txn = client.updates()?;
    let s = &txn.wire;
    if args.json {
        let staged_sigs = txn.updated_ci.as_ref().map(|ci| {
            let prod = txn.effective_updated_prod();
            serde_json::json!({
                "ci-by-current-root-keys": sig_summary(ci, &txn.current_ci),
                "ci-by-new-root-keys": sig_summary(ci, ci),
                "prod-by-current-root-keys": prod.as_ref().map(|p| sig_summary(p, txn.current_prod_or_ci())),
                "prod-by-new-root-keys": prod.as_ref().map(|p| sig_summary(p, p)),
            })
        });
        ctx.out.json(&serde_json::json!({
            "factory": client.factory(),
            "status": s.status,
            "first-time": s.first_time,
            "current": {
                "ci-root": root_json(&txn.current_ci),
                "prod-root": txn.current_prod.as_ref().map(root_json),
                "online-keys": txn.current_online_keys(),
            },
            "updated": txn.updated_ci.as_ref().map(|ci| serde_json::json!({
                "ci-root": root_json(ci),
                "prod-root": txn.updated_prod.as_ref().map(root_json),
                "online-keys": txn.updated_online_keys(),
            })),
            "signatures": staged_sigs,
            "change-meta": s.change_meta,
            "amendments": s.amendments.iter().map(|a| &a.message).collect::<Vec<_>>(),
            "errors": s.issues.errors.iter().map(|a| &a.message).collect::<Vec<_>>(),
            "warnings": s.issues.warnings.iter().map(|a| &a.message).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let mut lines = vec![format!("Factory:      {}", client.factory())];
    let mut st = s.status.to_string();
    if s.first_time && s.status != TxStatus::None {
        st.push_str(" (first-time rotation)");
    }
    lines.push(format!("Status:       {st}"));
    let cur = &txn.current_ci.signed;
    lines.push(format!(
        "Current root: version {}, expires {}{}",
        cur.version,
        cur.expires,
        if txn.current_prod.is_some() {
            ""
        } else {
            " (no production root yet)"
        }
    ));
    if let Some(ci) = &txn.updated_ci {
        lines.push(format!(
            "Staged root:  version {}, expires {}{}",
            ci.signed.version,
            ci.signed.expires,
            if txn.updated_prod.is_some() {
                ""
            } else {
                " (no production root staged)"
            }
        ));
        lines.push(format!(
            "  CI root signatures:   current root keys {}, new root keys {}",
            sig_summary(ci, &txn.current_ci),
            sig_summary(ci, ci)
        ));
        if let Some(prod) = txn.effective_updated_prod() {
            lines.push(format!(
                "  prod root signatures: current root keys {}, new root keys {}",
                sig_summary(&prod, txn.current_prod_or_ci()),
                sig_summary(&prod, &prod)
            ));
        }
    }
    let online = txn.updated_online_keys();
    for role in ["targets", "snapshot", "timestamp"] {
        if let Some(id) = online.get(role) {
            let changed = txn.current_online_keys().get(role) != Some(id);
            lines.push(format!(
                "Online {role:<9} {id}{}",
                if changed { " (new)" } else { "" }
            ));
        }
    }
    if let Some(meta) = s.change_meta.as_ref().filter(|m| !m.updated_by.is_empty()) {
        lines.push(format!(
            "Last change:  {} {}",
            one_line(&meta.updated_by),
            one_line(&meta.updated_at)
        ));
    }
    if s.status != TxStatus::None {
        lines.push(format!(
            "Staged changes: {}, errors: {}, warnings: {} (details: `courier updates review`)",
            s.amendments.len(),
            s.issues.errors.len(),
            s.issues.warnings.len()
        ));
    }
    if let Some(ci) = &txn.updated_ci {
        let mut c = shared::status::Checklist::default();
        c.add_root("CI root", ci, &txn.current_ci.signed)
            .map_err(|e| CourierError::Server(format!("cannot check the staged CI root: {e}")))?;
        if let Some(prod) = txn.effective_updated_prod() {
            c.add_root("production root", &prod, &txn.current_prod_or_ci().signed)
                .map_err(|e| {
                    CourierError::Server(format!("cannot check the staged production root: {e}"))
                })?;
        }
        lines.push("Missing-signature checklist (owners from x-key-owners):".to_string());
        lines.extend(
            c.lines(&std::collections::BTreeMap::new())
                .into_iter()
                .map(|l| format!("  {l}")),
        );
    }
    for l in lines {
        ctx.out.line(&l);
    }
    Ok(())
}

/// `courier updates apply`.
pub fn apply(ctx: &Ctx, args: &TxidArg) -> Result<()> {
    let client = ctx.client()?;
    let txid = resolve_txid(ctx, args.txid.as_deref())?;
    transaction::apply(ctx, &client, &txid)
}

/// `courier updates cancel`.
pub fn cancel(ctx: &Ctx, _args: &CancelArgs) -> Result<()> {
    let client = ctx.client()?;
    client.cancel()?;
    let store = ctx.state()?;
    let _ = store.clear_transaction(client.factory());
    let _ = store.clear_first_root(client.factory());
    ctx.out.line(
        "The staged TUF root updates were canceled.\nNo other changes were made to your Factory.",
    );
    Ok(())
}

/// `courier updates rotate-online-key`.
pub fn rotate_online_key(ctx: &Ctx, args: &RotateOnlineKeyArgs) -> Result<()> {
    let client = ctx.client()?;
    let txid = resolve_txid(ctx, args.txid.as_deref())?;
    let mut roles = args.roles.clone();
    roles.sort();
    roles.dedup();
    let names: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
    // Preliminary check for a clearer message before the server generates keys.
    require_started(&client.updates()?)?;
    ctx.out.line("= Generating new online TUF keys");
    client.gen_online_keys(&txid, args.key_type.api_name(), &names)?;
    let txn = client
        .updates()
        .map_err(|e| CourierError::from(e).context("Failed to fetch new online TUF keys"))?;
    for role in [
        OnlineRole::Targets,
        OnlineRole::Snapshot,
        OnlineRole::Timestamp,
    ] {
        if roles.contains(&role) {
            let id = txn
                .updated_online_keys()
                .get(role.as_str())
                .map(|k| k.to_string())
                .unwrap_or_default();
            ctx.out
                .line(&format!("= New online {} keyid: {id}", role.as_str()));
        }
    }
    ctx.out.line(
        "The new root is staged but not signed. Write a request bundle for the root key holder with \
         `courier updates pull --op sign-root --bundle FILE`.",
    );
    Ok(())
}
