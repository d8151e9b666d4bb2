//! Pushing a response (`courier updates push`): verifying it and uploading it, from any
//! online machine. The path, in the order [`push`] takes it; nothing is uploaded unless
//! every step passes:
//!
//! 1. [`response::load`]: the file is a response bundle for the configured factory (the
//!    wrong file is named, [`crate::sniff`]); its signer steps are authenticated (pinned
//!    signers); when this machine wrote the request, its request part is byte-identical to
//!    the kept copy; a wave response is sent to `waves push` instead;
//! 2. [`verify::verify_upload`]: every signature in the upload verifies locally (roots
//!    against the current and new root keys, targets against the new production root's
//!    targets keys); thresholds are met (or `--allow-partial`);
//! 3. [`live::already_applied`]: a response whose roots are already published says
//!    "already applied as version N" (exit 0) — or "stale bundle" when that version was
//!    published with other content;
//! 4. [`live`]: the request it carries is the factory's live transaction (snapshot, staged
//!    drafts, root chain, production and wave targets) — otherwise "stale bundle" (exit
//!    code 5) with how to redo it;
//! 5. [`upload_once`]: one `PUT` (never repeated: a lost answer is recognised by re-reading the
//!    staged roots); with `--apply`, [`crate::transaction::apply`] and the new root read
//!    back.
//!
//! `courier waves push` ([`crate::waves::push`]) reads the response with the same
//! [`response::load`].

pub mod live;
pub mod response;
pub mod verify;

use std::path::Path;

use shared::bundle::{TransferBundle, Upload};
use shared::transaction::{ParsedTransaction, TxStatus};

use crate::api::{self, Client};
use crate::cli::PushArgs;
use crate::error::{CourierError, Result};
use crate::state::RequestRecord;
use crate::transaction;
use crate::waves::build::wave_of;
use crate::Ctx;
use live::Freshness;

/// `courier updates push` (see the module docs for the order of the checks).
pub fn push(ctx: &Ctx, args: &PushArgs) -> Result<()> {
    let client = ctx.client()?;
    let response::Response {
        bundle: resp,
        local,
    } = response::load(ctx, &args.file, client.factory())?;
    refuse_wave_response(&args.file, &resp, local.record())?;
    let upload = resp
        .upload()
        .ok_or_else(|| CourierError::Bundle("the response carries no upload".into()))?
        .clone();
    // The response carries the request it answers: its members are what the signer saw.
    let incomplete = verify::verify_upload(&resp, &upload)?;
    ctx.out.line("  every signature verifies locally");
    if !incomplete.is_empty() {
        let list = incomplete.join(", ");
        if !args.allow_partial {
            return Err(CourierError::Verify(format!(
                "not enough signatures yet for: {list}. Have the other key holders sign (and `signer combine` the \
                 responses), or upload anyway with --allow-partial"
            )));
        }
        if args.apply {
            return Err(CourierError::Usage(format!(
                "--apply with --allow-partial: {list} would not pass the server's checks; push without --apply"
            )));
        }
        ctx.out
            .warning(&format!("uploading although these lack signatures: {list}"));
    }
    let live = client.updates()?;
    if let Some(applied) = live::already_applied(&client, &live, &upload)? {
        ctx.out.line(&format!(
            "This response was already applied as version {}{}; nothing was uploaded.",
            applied.version,
            if applied.current > applied.version {
                format!(" (the factory's root is now version {})", applied.current)
            } else {
                String::new()
            }
        ));
        return Ok(());
    }
    let freshness = live::check_fresh(&resp, &live, &upload)?;
    live::check_drafts(&live, &upload)?;
    live::check_chain(&client, &resp, &live)?;
    live::check_docs(&client, &resp)?;
    ctx.out.line(
        "  it answers the factory's live transaction (roots, staged drafts, root chain, targets)",
    );
    match freshness {
        Freshness::AlreadyUploaded
            if upload.targets_signatures.is_empty() && upload.waves_signatures.is_empty() =>
        {
            ctx.out
                .line("This response was already uploaded; nothing to upload again.");
        }
        _ => upload_once(ctx, &client, &upload, &live)?,
    }
    if args.apply {
        ctx.out.line("= Applying staged TUF root changes");
        transaction::apply(ctx, &client, &upload.txid)?;
    } else {
        ctx.out
            .line("Review with `courier updates review`, then apply with `courier updates apply`.");
    }
    Ok(())
}

/// Uploads the signed roots and targets signatures (one `PUT`, never repeated) and says what
/// was uploaded. A failed `PUT` whose upload the server nevertheless holds (its answer was
/// lost) counts as done.
pub fn upload_once(
    ctx: &Ctx,
    client: &Client,
    upload: &Upload,
    before: &ParsedTransaction,
) -> Result<()> {
    ctx.out.line("= Uploading the signed TUF root");
    if let Err(e) = client.put_updates(upload) {
        put_failure(client, e, upload, before)?;
        ctx.out
            .note("the answer to the upload was lost, but the server holds the uploaded roots");
    }
    let names = |m: &std::collections::BTreeMap<String, Vec<shared::keys::Signature>>| {
        m.keys().cloned().collect::<Vec<_>>().join(",")
    };
    ctx.out.line(&format!(
        "Uploaded: CI root v{} and production root v{}{}{}.",
        upload.ci_root.signed.version,
        upload.prod_root.signed.version,
        if upload.targets_signatures.is_empty() {
            String::new()
        } else {
            format!(
                ", signatures for production targets {}",
                names(&upload.targets_signatures)
            )
        },
        if upload.waves_signatures.is_empty() {
            String::new()
        } else {
            format!(", signatures for waves {}", names(&upload.waves_signatures))
        }
    ));
    Ok(())
}

/// The wave a response answers when it can only be a `courier waves init`/`waves sign`
/// response: its record says so, or (not written here) it asks for one wave signature only
/// and was made without an open transaction or for a wave that does not exist yet.
fn refuse_wave_response(
    file: &Path,
    resp: &TransferBundle,
    record: Option<&RequestRecord>,
) -> Result<()> {
    let wave = match record {
        Some(r) => r
            .purpose
            .starts_with("wave")
            .then(|| wave_of(resp))
            .flatten(),
        None => wave_of(resp).filter(|name| {
            let no_txn = resp
                .transaction()
                .is_ok_and(|t| t.status != TxStatus::Started);
            let new_wave = resp
                .waves()
                .ok()
                .and_then(|w| w.get(name).map(|d| d.signatures.is_empty()))
                .unwrap_or(false);
            no_txn || new_wave
        }),
    };
    match wave {
        Some(name) => Err(CourierError::Usage(format!(
            "{} answers a wave request (wave {name}); push it with `courier waves push {}`",
            file.display(),
            file.display()
        ))),
        None => Ok(()),
    }
}

/// Explains a failed PUT: a refusal changed nothing; otherwise re-reads the state to tell
/// whether the upload took effect (`Ok` when it did: the answer was lost).
fn put_failure(
    client: &Client,
    e: api::ApiError,
    upload: &Upload,
    before: &ParsedTransaction,
) -> Result<()> {
    if matches!(e.status(), Some(s) if s < 500) {
        return Err(CourierError::from(e)
            .context("the server refused the upload; the transaction is unchanged"));
    }
    let roots_change = before.updated_ci.as_ref() != Some(&upload.ci_root)
        || before.updated_prod.as_ref() != Some(&upload.prod_root);
    match client.updates() {
        Ok(live)
            if roots_change
                && live.updated_ci.as_ref() == Some(&upload.ci_root)
                && live.updated_prod.as_ref() == Some(&upload.prod_root) =>
        {
            Ok(())
        }
        Ok(_) => Err(CourierError::from(e)
            .context("the upload did not take effect; the transaction is unchanged; run the same push again")),
        Err(_) => Err(CourierError::Uncertain(format!(
            "the upload failed ({e}) and the server cannot be reached to tell whether it took effect; check with \
             `courier updates status`, then run the same push again (it will not upload twice)"
        ))),
    }
}
