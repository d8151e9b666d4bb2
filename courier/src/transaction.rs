//! The factory's root updates transaction, as the courier changes it. The transaction
//! itself — its status, wire form, roots parsed under fioctl's rules and the production root
//! fioctl derives when none is staged — is [`shared::transaction`]; `Client::updates` reads
//! it ([`ParsedTransaction`]). Here:
//!
//! * [`require_started`]: fioctl's refusals of a change when no transaction is open or it is
//!   being applied, with the courier's commands;
//! * [`resolve_txid`]: the transaction id a command sends (flag, else the one this courier
//!   started);
//! * [`start_transaction`]: `POST root/updates`, keeping the first-time initial root key
//!   only age-encrypted to the signer (`updates init`, `rotate-offline-key`);
//! * [`apply`]: `POST root/updates/apply` with fioctl's reading of the outcome (`updates
//!   apply`, `updates push --apply`).

use shared::metadata::SignedRoot;
use shared::transaction::{ParsedTransaction, TxStatus};

use crate::api::Client;
use crate::error::{CourierError, Result};
use crate::state::TransactionNote;
use crate::Ctx;

/// Fails unless changes can be staged (status `STARTED`), with fioctl's messages.
pub fn require_started(txn: &ParsedTransaction) -> Result<()> {
    match txn.status() {
        TxStatus::Started => Ok(()),
        TxStatus::None => Err(CourierError::Other(
            "There are no TUF root updates in progress. Please, run `courier updates init` (or \
             `courier rotate-offline-key`) to start over."
                .into(),
        )),
        TxStatus::Applying => Err(CourierError::Other(
            "No modifications to TUF root updates allowed while they are being applied. If the previous \
             apply failed, run `courier updates apply` again."
                .into(),
        )),
    }
}

/// The txid to send: `given` (a `--txid` flag), else the one this courier remembered, else
/// empty (the initiator may omit it).
pub fn resolve_txid(ctx: &Ctx, given: Option<&str>) -> Result<String> {
    if let Some(t) = given {
        return Ok(t.to_string());
    }
    let factory = ctx.settings()?.require_factory()?;
    Ok(ctx
        .state()?
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
        Some(crate::config::CourierConfig::load(ctx.paths()?)?.require_recipient()?)
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
    let store = ctx.state()?;
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
        started_at: ctx.now.to_string(),
        message: message.to_string(),
    })?;
    Ok(resp.txid)
}

/// Applies the transaction and reports the outcome per the API's rules: 400/401/403/422/423
/// changed nothing; 404 with no transaction is a clean error; anything else may have left
/// the updates partially applied. On success reads the root back and prints its version.
pub fn apply(ctx: &Ctx, client: &Client, txid: &str) -> Result<()> {
    let factory = client.factory().to_string();
    // The version the apply should publish, to recognize an apply whose answer was lost.
    let staged_version = client
        .updates()
        .ok()
        .and_then(|t| t.updated_ci.map(|r| r.signed.version));
    if let Err(e) = client.apply(txid) {
        let status = e.status();
        if status == Some(404) {
            if let Ok(txn) = client.updates() {
                if txn.status() == TxStatus::None {
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
            && client.updates().is_ok_and(|t| {
                t.status() == TxStatus::None && Some(t.current_ci.signed.version) == staged_version
            });
        if !applied {
            return Err(CourierError::Uncertain(format!(
                "Failed to apply staged TUF root updates: {e}. This is a critical error: staged TUF root updates may \
                 be only partially applied to your Factory. Please re-run `courier updates apply` soon after a short \
                 pause. If the error persists, please contact customer support."
            )));
        }
        ctx.out.note(&format!(
            "the answer to apply was lost ({e}), but the factory now serves the new root"
        ));
    }
    // Bookkeeping only; a failure here must not hide the successful apply.
    if let Ok(store) = ctx.state() {
        let _ = store.clear_transaction(&factory);
        let _ = store.clear_first_root(&factory);
    }
    ctx.out
        .line("The staged TUF root updates were applied to your Factory.");
    match client.root(false).map(|b| SignedRoot::from_json(&b)) {
        Ok(Ok(root)) => ctx.out.line(&format!(
            "The factory's root is now version {} (expires {}).",
            root.signed.version, root.signed.expires
        )),
        Ok(Err(e)) => ctx
            .out
            .warning(&format!("cannot read the new root back: {e}")),
        Err(e) => ctx
            .out
            .warning(&format!("cannot read the new root back: {e}")),
    }
    ctx.out
        .line("Please, make sure that the updated TUF keys file(s) are stored in a safe place.");
    Ok(())
}

/// When the staged roots change the offline targets keys and waves are active (the server
/// refuses to apply that), what to do about them with the courier; `None` otherwise.
fn active_waves_blocking(client: &Client) -> Option<String> {
    if !client.updates().ok()?.changes_offline_targets_keys() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_need_a_started_transaction() {
        let root = r#"{"signatures":[],"signed":{"_type":"Root","consistent_snapshot":false,"expires":"2030-01-01T00:00:00Z","keys":{},"roles":{},"version":1}}"#;
        let txn = |status: &str| {
            ParsedTransaction::from_json(
                serde_json::to_vec(&serde_json::json!({
                    "status": status, "current": {"ci-root": root}, "updated": {"ci-root": root}
                }))
                .unwrap(),
            )
            .unwrap()
        };
        require_started(&txn("STARTED")).unwrap();
        let none = require_started(&txn("NONE")).unwrap_err().to_string();
        assert!(none.contains("no TUF root updates") && none.contains("courier updates init"));
        let applying = require_started(&txn("APPLYING")).unwrap_err().to_string();
        assert!(applying.contains("being applied") && applying.contains("courier updates apply"));
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
