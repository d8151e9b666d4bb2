//! `courier updates ...`: the root updates transaction, step by step (fioctl's expert mode).
//!
//! `init`, `status`, `review`, `apply`, `cancel` and `rotate-online-key` talk to the API
//! directly; `pull` and `push` move bundles (see [`crate::bundles`]).

use shared::metadata::{Role, SignedRoot, Timestamp};
use shared::verify;

use crate::api::{status, Client, UpdatesState};
use crate::cli::{InitArgs, OnlineRole, RotateOnlineKeyArgs, TxidArg, UpdatesCommand};
use crate::error::{CourierError, Result};
use crate::state::TransactionNote;
use crate::{bundles, out, out_json, review, Ctx};

/// Runs an `updates` subcommand.
pub fn run(ctx: &Ctx, cmd: UpdatesCommand) -> Result<()> {
    match cmd {
        UpdatesCommand::Init(args) => init(ctx, &args),
        UpdatesCommand::Status(args) => status_cmd(ctx, args.json),
        UpdatesCommand::Review(args) => review::review(ctx, &args),
        UpdatesCommand::Pull(args) => bundles::pull(ctx, &args),
        UpdatesCommand::Push(args) => bundles::push(ctx, &args),
        UpdatesCommand::Apply(args) => {
            let client = ctx.client()?;
            let txid = resolve_txid(ctx, &args)?;
            apply(ctx, &client, &txid)
        }
        UpdatesCommand::Cancel => cancel(ctx),
        UpdatesCommand::RotateOnlineKey(args) => rotate_online_key(ctx, &args),
    }
}

/// The transaction state with its roots parsed.
#[derive(Clone, Debug)]
pub struct Txn {
    /// The answer exactly as received.
    pub raw: Vec<u8>,
    /// The answer, typed.
    pub state: UpdatesState,
    /// The published CI root.
    pub current_ci: SignedRoot,
    /// The published production root (absent before the first offline rotation).
    pub current_prod: Option<SignedRoot>,
    /// The staged CI root (absent when status is NONE).
    pub updated_ci: Option<SignedRoot>,
    /// The staged production root (absent until one is staged).
    pub updated_prod: Option<SignedRoot>,
}

fn parse_root(text: &str, what: &str) -> Result<Option<SignedRoot>> {
    if text.is_empty() {
        return Ok(None);
    }
    SignedRoot::from_json(text.as_bytes())
        .map(Some)
        .map_err(|e| CourierError::Server(format!("the server sent an unreadable {what}: {e}")))
}

impl Txn {
    /// Parses the state, with fioctl's consistency rules.
    pub fn parse(raw: Vec<u8>, state: UpdatesState) -> Result<Txn> {
        if ![status::NONE, status::STARTED, status::APPLYING].contains(&state.status.as_str()) {
            return Err(CourierError::Server(format!(
                "Unexpected TUF root updates status: {:?}",
                crate::api::one_line(&state.status)
            )));
        }
        let current_ci = parse_root(&state.current.ci_root, "current CI root")?
            .ok_or_else(|| CourierError::Server("Current TUF CI root not set".into()))?;
        let current_prod = parse_root(&state.current.prod_root, "current production root")?;
        let (updated_ci, updated_prod) = if state.status == status::NONE {
            (None, None)
        } else {
            let ci = parse_root(&state.updated.ci_root, "staged CI root")?
                .ok_or_else(|| CourierError::Server("Updated TUF CI root not set".into()))?;
            (
                Some(ci),
                parse_root(&state.updated.prod_root, "staged production root")?,
            )
        };
        Ok(Txn {
            raw,
            state,
            current_ci,
            current_prod,
            updated_ci,
            updated_prod,
        })
    }

    /// Fetches and parses the state.
    pub fn fetch(client: &Client) -> Result<Txn> {
        let (raw, state) = client.updates()?;
        Txn::parse(raw, state)
    }

    /// Fails unless changes can be staged (status STARTED), with fioctl's messages.
    pub fn require_started(&self) -> Result<()> {
        match self.state.status.as_str() {
            status::STARTED => Ok(()),
            status::NONE => Err(CourierError::Other(
                "There are no TUF root updates in progress. Please, run `courier updates init` (or \
                 `courier rotate-offline-key`) to start over."
                    .into(),
            )),
            _ => Err(CourierError::Other(
                "No modifications to TUF root updates allowed while they are being applied. If the previous \
                 apply failed, run `courier updates apply` again."
                    .into(),
            )),
        }
    }

    /// The staged production root, or the one fioctl would derive from the staged CI root.
    pub fn effective_updated_prod(&self) -> Option<SignedRoot> {
        let ci = self.updated_ci.as_ref()?;
        Some(self.updated_prod.clone().unwrap_or_else(|| {
            shared::transform::derive_prod_root(
                ci,
                shared::transform::DEFAULT_PROD_TARGETS_THRESHOLD,
            )
        }))
    }

    /// Whether the staged CI root has other offline targets keys (targets keys but the
    /// online one) than the current one: a targets key rotation, addition or removal, which
    /// the server refuses to apply while a wave is active.
    pub fn changes_offline_targets_keys(&self) -> bool {
        let Some(staged) = &self.updated_ci else {
            return false;
        };
        let offline = |root: &SignedRoot, online: Option<&String>| {
            root.signed
                .role_keyids(Role::Targets)
                .iter()
                .filter(|k| Some(&k.to_string()) != online)
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
        };
        offline(
            &self.current_ci,
            self.state.current.online_keys.get("targets"),
        ) != offline(staged, self.state.updated.online_keys.get("targets"))
    }

    /// The base the staged production root is compared with (current prod, else current CI).
    pub fn current_prod_or_ci(&self) -> &SignedRoot {
        self.current_prod.as_ref().unwrap_or(&self.current_ci)
    }
}

/// The txid to send: the flag, else the one this courier remembered, else empty (initiator).
pub fn resolve_txid(ctx: &Ctx, args: &TxidArg) -> Result<String> {
    if let Some(t) = &args.txid {
        return Ok(t.clone());
    }
    let factory = ctx.settings.require_factory()?;
    Ok(ctx
        .state()
        .transaction(factory)?
        .map(|n| n.txid)
        .unwrap_or_default())
}

/// Encrypts the initial root key to the signer's recipient, in memory.
pub fn encrypt_first_root(recipient: &age::x25519::Recipient, sec: &[u8]) -> Result<Vec<u8>> {
    age::encrypt(recipient, sec)
        .map_err(|e| CourierError::Other(format!("cannot encrypt the initial root key: {e}")))
}

/// Starts a transaction (`POST root/updates`) and records it. With `first_time`, the
/// initial root key is encrypted to the signer's recipient in memory and only the
/// ciphertext is kept (in the state directory, until it goes into a request bundle).
/// Returns the txid.
pub fn start_transaction(
    ctx: &Ctx,
    client: &Client,
    message: &str,
    first_time: bool,
    shortcut: bool,
) -> Result<String> {
    // Every refusal before the change: the recipient must be usable first.
    let recipient = if first_time {
        Some(crate::config::CourierConfig::load(&ctx.paths)?.require_recipient()?)
    } else {
        None
    };
    let resp = client.init(message, first_time, shortcut).map_err(|e| {
        let conflict = e.status() == Some(409);
        let err = CourierError::from(e);
        if conflict {
            err.context("Only one TUF root updates transaction can be active at a time (see `courier updates review`)")
        } else {
            err
        }
    })?;
    let store = ctx.state();
    let factory = client.factory();
    if let Some(recipient) = recipient {
        let sec = resp.first_root_sec.as_ref().ok_or_else(|| {
            CourierError::Server(
                "the server started a first-time transaction but sent no initial root key (first_root.sec); \
                 cancel it with `courier updates cancel`"
                    .into(),
            )
        })?;
        let public = resp.first_root_pub.clone().unwrap_or_default();
        let sealed = encrypt_first_root(&recipient, sec)?;
        store.save_first_root(factory, &sealed, &public).map_err(|e| {
            e.context("the initial root key could not be kept (encrypted); cancel the transaction with `courier updates cancel` and start again")
        })?;
    }
    store.save_transaction(&TransactionNote {
        factory: factory.to_string(),
        txid: resp.txid.clone(),
        started_at: Timestamp::now().to_string(),
        message: message.to_string(),
    })?;
    Ok(resp.txid)
}

fn init(ctx: &Ctx, args: &InitArgs) -> Result<()> {
    let client = ctx.client()?;
    let txid = start_transaction(ctx, &client, &args.message, args.first_time, false)?;
    out(&format!(
        "A new transaction to update TUF root keys started.\n\
         Your transaction ID is {txid} .\n\
         Please, keep it secret and only share with participants of the transaction.\n\
         Only the user who initiated the transaction can make changes to it without the transaction ID.\n\
         Other users are required to supply this transaction ID for all commands except review and cancel."
    ));
    if args.first_time {
        out(
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

fn status_cmd(ctx: &Ctx, json: bool) -> Result<()> {
    let client = ctx.client()?;
    let txn = Txn::fetch(&client)?;
    let s = &txn.state;
    if json {
        let staged_sigs = txn.updated_ci.as_ref().map(|ci| {
            let prod = txn.effective_updated_prod();
            serde_json::json!({
                "ci-by-current-root-keys": sig_summary(ci, &txn.current_ci),
                "ci-by-new-root-keys": sig_summary(ci, ci),
                "prod-by-current-root-keys": prod.as_ref().map(|p| sig_summary(p, txn.current_prod_or_ci())),
                "prod-by-new-root-keys": prod.as_ref().map(|p| sig_summary(p, p)),
            })
        });
        out_json(&serde_json::json!({
            "factory": client.factory(),
            "status": s.status,
            "first-time": s.first_time,
            "current": {
                "ci-root": root_json(&txn.current_ci),
                "prod-root": txn.current_prod.as_ref().map(root_json),
                "online-keys": s.current.online_keys,
            },
            "updated": txn.updated_ci.as_ref().map(|ci| serde_json::json!({
                "ci-root": root_json(ci),
                "prod-root": txn.updated_prod.as_ref().map(root_json),
                "online-keys": s.updated.online_keys,
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
    let mut st = s.status.clone();
    if s.first_time && s.status != status::NONE {
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
    let online = if s.status == status::NONE {
        &s.current.online_keys
    } else {
        &s.updated.online_keys
    };
    for role in ["targets", "snapshot", "timestamp"] {
        if let Some(id) = online.get(role) {
            let changed = s.status != status::NONE && s.current.online_keys.get(role) != Some(id);
            lines.push(format!(
                "Online {role:<9} {id}{}",
                if changed { " (new)" } else { "" }
            ));
        }
    }
    if let Some(by) = s.change_meta.get("updated-by").and_then(|v| v.as_str()) {
        let at = s
            .change_meta
            .get("updated-at")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        lines.push(format!(
            "Last change:  {} {}",
            crate::api::one_line(by),
            crate::api::one_line(at)
        ));
    }
    if s.status != status::NONE {
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
        out(&l);
    }
    Ok(())
}

/// Applies the transaction and reports the outcome per the API's rules: 400/401/403/422/423
/// changed nothing; 404 with no transaction is a clean error; anything else may have left
/// the updates partially applied. On success reads the root back and prints its version.
pub fn apply(ctx: &Ctx, client: &Client, txid: &str) -> Result<()> {
    let factory = client.factory().to_string();
    // The version the apply should publish, to recognize an apply whose answer was lost.
    let staged_version = Txn::fetch(client)
        .ok()
        .and_then(|t| t.updated_ci.map(|r| r.signed.version));
    if let Err(e) = client.apply(txid) {
        let status = e.status();
        if status == Some(404) {
            if let Ok(txn) = Txn::fetch(client) {
                if txn.state.status == status::NONE {
                    return Err(CourierError::Other(
                        "There are no TUF root updates in progress.".into(),
                    ));
                }
            }
        }
        if matches!(status, Some(400 | 401 | 403 | 422 | 423)) {
            let err = CourierError::from(e).context(
                "Failed to apply staged TUF root updates. No changes were made to your Factory. Either fix the \
                 errors (see `courier updates review`) and run `courier updates apply` again, or cancel with \
                 `courier updates cancel`. The server said",
            );
            return Err(match active_waves_blocking(client) {
                Some(advice) => CourierError::Context {
                    context: advice,
                    source: Box::new(err),
                },
                None => err,
            });
        }
        let applied = status.is_none_or(|s| s >= 500)
            && staged_version.is_some()
            && Txn::fetch(client).is_ok_and(|t| {
                t.state.status == status::NONE
                    && Some(t.current_ci.signed.version) == staged_version
            });
        if !applied {
            return Err(CourierError::Uncertain(format!(
                "Failed to apply staged TUF root updates: {e}. This is a critical error: staged TUF root updates may \
                 be only partially applied to your Factory. Please re-run `courier updates apply` soon after a short \
                 pause. If the error persists, please contact customer support."
            )));
        }
        eprintln!(
            "note: the answer to apply was lost ({e}), but the factory now serves the new root"
        );
    }
    let store = ctx.state();
    // Bookkeeping only; a failure here must not hide the successful apply.
    let _ = store.clear_transaction(&factory);
    let _ = store.clear_first_root(&factory);
    out("The staged TUF root updates were applied to your Factory.");
    match client.root(false).map(|b| SignedRoot::from_json(&b)) {
        Ok(Ok(root)) => out(&format!(
            "The factory's root is now version {} (expires {}).",
            root.signed.version, root.signed.expires
        )),
        Ok(Err(e)) => eprintln!("warning: cannot read the new root back: {e}"),
        Err(e) => eprintln!("warning: cannot read the new root back: {e}"),
    }
    out("Please, make sure that the updated TUF keys file(s) are stored in a safe place.");
    Ok(())
}

/// When the staged roots change the offline targets keys and waves are active (the server
/// refuses to apply that), what to do about them with the courier; `None` otherwise.
fn active_waves_blocking(client: &Client) -> Option<String> {
    if !Txn::fetch(client).ok()?.changes_offline_targets_keys() {
        return None;
    }
    let active: Vec<String> = client.wave_targets(&[]).ok()??.into_keys().collect();
    let first = active.first()?;
    Some(format!(
        "Active waves block the staged targets key change: {}. Complete (`courier waves complete {first}`) or \
         cancel (`courier waves cancel {first}`) each, then run `courier updates apply` again. What happened",
        active.join(", ")
    ))
}

fn cancel(ctx: &Ctx) -> Result<()> {
    let client = ctx.client()?;
    client.cancel()?;
    let store = ctx.state();
    let _ = store.clear_transaction(client.factory());
    let _ = store.clear_first_root(client.factory());
    out("The staged TUF root updates were canceled.\nNo other changes were made to your Factory.");
    Ok(())
}

fn rotate_online_key(ctx: &Ctx, args: &RotateOnlineKeyArgs) -> Result<()> {
    let client = ctx.client()?;
    let txid = resolve_txid(
        ctx,
        &TxidArg {
            txid: args.txid.clone(),
        },
    )?;
    let mut roles = args.roles.clone();
    roles.sort();
    roles.dedup();
    let names: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
    // Preliminary check for a clearer message before the server generates keys.
    Txn::fetch(&client)?.require_started()?;
    out("= Generating new online TUF keys");
    client.gen_online_keys(&txid, args.key_type.api_name(), &names)?;
    let txn = Txn::fetch(&client).map_err(|e| e.context("Failed to fetch new online TUF keys"))?;
    for role in [
        OnlineRole::Targets,
        OnlineRole::Snapshot,
        OnlineRole::Timestamp,
    ] {
        if roles.contains(&role) {
            let id = txn
                .state
                .updated
                .online_keys
                .get(role.as_str())
                .cloned()
                .unwrap_or_default();
            out(&format!("= New online {} keyid: {id}", role.as_str()));
        }
    }
    out(
        "The new root is staged but not signed. Write a request bundle for the root key holder with \
         `courier updates pull --op sign-root --bundle FILE`.",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_rules_match_fioctl() {
        let root = r#"{"signatures":[],"signed":{"_type":"Root","consistent_snapshot":false,"expires":"2030-01-01T00:00:00Z","keys":{},"roles":{},"version":1}}"#;
        let mk = |status: &str, cur: &str, upd: &str| {
            let state: UpdatesState = serde_json::from_value(serde_json::json!({
                "status": status, "current": {"ci-root": cur}, "updated": {"ci-root": upd}
            }))
            .unwrap();
            Txn::parse(Vec::new(), state)
        };
        assert!(mk("NONE", root, "").unwrap().updated_ci.is_none());
        assert!(mk("NONE", "", "")
            .unwrap_err()
            .to_string()
            .contains("Current TUF CI root not set"));
        assert!(mk("STARTED", root, "")
            .unwrap_err()
            .to_string()
            .contains("Updated TUF CI root not set"));
        assert!(mk("WEIRD", root, root)
            .unwrap_err()
            .to_string()
            .contains("Unexpected"));
        let t = mk("STARTED", root, root).unwrap();
        t.require_started().unwrap();
        assert_eq!(
            t.effective_updated_prod()
                .unwrap()
                .signed
                .threshold(Role::Targets),
            0
        );
        assert!(mk("APPLYING", root, root)
            .unwrap()
            .require_started()
            .is_err());
        assert!(mk("NONE", root, "")
            .unwrap()
            .require_started()
            .unwrap_err()
            .to_string()
            .contains("no TUF root updates"));
    }

    #[test]
    fn first_root_is_encrypted_to_the_recipient() {
        let id = age::x25519::Identity::generate();
        let secret = br#"{"keytype":"ED25519","keyval":{"private":"00"}}"#;
        let sealed = encrypt_first_root(&id.to_public(), secret).unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(age::decrypt(&id, &sealed).unwrap(), secret);
    }
}
