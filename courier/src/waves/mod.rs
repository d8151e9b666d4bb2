//! `courier waves ...`: everything about waves, so that an operator never needs fioctl.
//!
//! Command handling (API calls, here and in [`rollout`]):
//! * [`complete`], [`cancel`], [`list`] — `waves complete`, `cancel`, `list`;
//! * [`rollout`] — `waves rollout`, its arguments read like fioctl's.
//!
//! Wave bundles (what crosses the air gap):
//! * [`build`] — the unsigned wave targets built exactly as `fioctl waves init` does, and
//!   the arguments that can have built a given draft (pure);
//! * [`factory`] — what the factory serves that waves are built from and checked against;
//! * [`request`] — `waves init` and `waves sign`: the request bundles for the signer;
//! * [`push`] — `waves push`: the signed response checked, the wave created or signed.

pub mod build;
pub mod factory;
pub mod push;
pub mod request;
pub mod rollout;

use crate::api::{one_line, Client};
use crate::cli::{WaveNameArg, WavesListArgs};
use crate::error::{CourierError, Result};
use crate::Ctx;

/// `courier waves complete`: the wave's targets become the production targets of its tag.
pub fn complete(ctx: &Ctx, args: &WaveNameArg) -> Result<()> {
    let client = ctx.client()?;
    client.complete_wave(&args.name)?;
    ctx.out.line(&format!(
        "Wave {} is complete: its targets are now the production targets of its tag.",
        args.name
    ));
    if let Some(note) = rotation_note(&client, &args.name) {
        ctx.out.line(&note);
    }
    Ok(())
}

/// `courier waves cancel`: the wave is no longer offered to devices.
pub fn cancel(ctx: &Ctx, args: &WaveNameArg) -> Result<()> {
    ctx.client()?.cancel_wave(&args.name)?;
    ctx.out.line(&format!("Wave {} is canceled.", args.name));
    Ok(())
}

/// After a wave was completed while a transaction stages other offline targets keys: the
/// tag's production targets are now the wave's, which the staged rotation has not signed
/// with the new key, so say how to finish (best effort: `None` when nothing is staged or
/// the state cannot be read).
fn rotation_note(client: &Client, wave: &str) -> Option<String> {
    let txn = client.updates().ok()?;
    if !txn.changes_offline_targets_keys() {
        return None;
    }
    let tag = client
        .wave(wave)
        .ok()
        .flatten()
        .map(|w| w.tag)
        .unwrap_or_else(|| "TAG".into());
    let tag = one_line(&tag);
    Some(format!(
        "A targets key rotation is staged: the production targets of tag {tag} are now the wave's, which it has \
         not signed with the new targets key. Before applying, have them signed in this transaction: `courier \
         prod-targets pull --tags {tag} --bundle FILE`, `signer sign-prod-targets --targets-keys FILE ...` \
         offline, then `courier updates push RESPONSE --apply`."
    ))
}

/// `courier waves list`.
pub fn list(ctx: &Ctx, args: &WavesListArgs) -> Result<()> {
    let client = ctx.client()?;
    let page = client.waves(
        args.limit,
        args.page,
        args.status.as_deref(),
        args.tag.as_deref(),
    )?;
    if args.json {
        ctx.out
            .json(&serde_json::to_value(&page).map_err(|e| CourierError::Other(e.to_string()))?);
        return Ok(());
    }
    if page.waves.is_empty() {
        ctx.out.line("No waves found.");
        return Ok(());
    }
    ctx.out.line(&format!(
        "{:<24} {:<10} {:<16} {:<10} CREATED",
        "NAME", "VERSION", "TAG", "STATUS"
    ));
    for w in &page.waves {
        let s = |k: &str| one_line(w.get(k).and_then(|v| v.as_str()).unwrap_or("-"));
        let created = w
            .get("change-meta")
            .and_then(|m| m.get("created-at"))
            .and_then(|v| v.as_str())
            .map(one_line)
            .unwrap_or_default();
        ctx.out.line(&format!(
            "{:<24} {:<10} {:<16} {:<10} {created}",
            s("name"),
            s("version"),
            s("tag"),
            s("status")
        ));
    }
    if page.next.is_some() {
        ctx.out.line(&format!("(more: --page {})", args.page + 1));
    }
    Ok(())
}
