//! The wave request bundles: `courier waves init` (the unsigned targets of a new wave, built
//! as fioctl builds them) and `courier waves sign` (an existing wave's targets, for one more
//! offline targets key). Both carry the transaction snapshot and the root chain, so the
//! signer verifies them from its pinned root like every request, and are written with
//! [`crate::request::write_request`].

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use shared::bundle::{self, Operation, RequestInput};
use shared::metadata::SignedTargets;
use time::OffsetDateTime;

use super::build::{self, WaveRequest};
use super::factory::{build_draft, current_offline_targets_keys, signature_count};
use crate::api::{one_line, Client, WaveCreate, WaveTargets};
use crate::cli::{WavesInitArgs, WavesSignArgs};
use crate::error::{CourierError, Result};
use crate::request::gather::check_chain;
use crate::request::{check_new_file, fetch_chain, write_request, writer};
use crate::state::WaveRecord;
use crate::Ctx;

/// The `waves init` arguments checked and turned into a [`WaveRequest`] (expiry from the
/// run's clock), before any request.
fn wave_request(ctx: &Ctx, args: &WavesInitArgs) -> Result<WaveRequest> {
    bundle::validate_doc_name(&args.name)
        .map_err(|e| CourierError::Usage(format!("wave name {e}")))?;
    build::parse_version(&args.version).map_err(|e| CourierError::Usage(e.to_string()))?;
    let now = OffsetDateTime::from_unix_timestamp(ctx.now.unix())
        .map_err(|e| CourierError::Other(format!("the clock is out of range: {e}")))?;
    let expires = build::expiry(now, args.expires_days, args.expires_at.as_deref())
        .map_err(|e| CourierError::Usage(e.to_string()))?;
    if expires <= ctx.now {
        ctx.out.warning(&format!(
            "the wave targets expire at {expires}, which is not in the future"
        ));
    }
    Ok(WaveRequest {
        name: args.name.clone(),
        version: args.version.clone(),
        tag: args.tag.clone(),
        expires,
        prune: args.prune.clone(),
        source_tag: args.source_tag.clone(),
    })
}

/// The request to sign the targets document `doc` of wave `name`: besides the wave, the
/// transaction snapshot and the root chain. Refuses a factory without an offline targets
/// key to sign with (fioctl checks the same).
fn wave_request_input(
    ctx: &Ctx,
    client: &Client,
    name: &str,
    doc: Vec<u8>,
) -> Result<RequestInput> {
    if current_offline_targets_keys(client)?.1.is_empty() {
        return Err(CourierError::Other(
            "Root role is not configured to sign Targets offline. Please, run `courier rotate-offline-key \
             --role targets` in order to create offline Targets keys."
                .into(),
        ));
    }
    let txn = client.updates()?;
    let chain = fetch_chain(client, txn.current_ci.signed.version)?;
    check_chain(ctx, &chain, &txn.current_ci)?;
    Ok(RequestInput {
        factory: client.factory().to_string(),
        txid: String::new(),
        writer: writer(),
        created: ctx.now,
        operations: vec![Operation::SignWave {
            name: name.to_string(),
        }],
        transaction: txn.raw,
        chain,
        prod_targets: BTreeMap::new(),
        waves: BTreeMap::from([(name.to_string(), doc.into())]),
        docs_checked: false,
        first_root_secret: None,
    })
}

/// `courier waves init`.
pub fn init(ctx: &Ctx, args: &WavesInitArgs) -> Result<()> {
    let req = wave_request(ctx, args)?;
    if let Some(path) = &args.bundle {
        if !args.dry_run {
            check_new_file(path)?;
        }
    }
    let client = ctx.client()?;
    let draft = build_draft(&client, &req)?;
    let doc = SignedTargets {
        signatures: Vec::new(),
        signed: draft.signed.clone(),
        extra: BTreeMap::new(),
    };
    if args.dry_run {
        let signed = RawValue::from_string(String::from_utf8_lossy(&draft.canonical).into_owned())
            .map_err(|e| CourierError::Other(e.to_string()))?;
        let body = WaveCreate {
            name: &req.name,
            version: &req.version,
            tag: &req.tag,
            targets: WaveTargets {
                signed: &signed,
                signatures: &[],
            },
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| CourierError::Other(e.to_string()))?;
        ctx.out.line(
            &shared::canonical::to_pretty(&bytes)
                .map_err(|e| CourierError::Other(e.to_string()))?,
        );
        return Ok(());
    }
    let Some(path) = &args.bundle else {
        return Err(CourierError::Usage(
            "--bundle FILE is required without --dry-run".into(),
        ));
    };
    let doc_bytes = doc
        .to_canonical()
        .map_err(|e| CourierError::Other(e.to_string()))?;
    let input = wave_request_input(ctx, &client, &req.name, doc_bytes)?;
    let record = WaveRecord {
        name: req.name.clone(),
        version: req.version.clone(),
        tag: req.tag.clone(),
        expires: req.expires.to_string(),
        prune: req.prune.clone(),
        source_tag: req.source_tag.clone(),
        has_static_deltas: draft.has_static_deltas,
    };
    ctx.out.line(&format!(
        "Wave {} for version {} and tag {}: {} target(s), {} new, expires {}",
        req.name,
        req.version,
        req.tag,
        draft.signed.targets.len(),
        draft.added.len(),
        req.expires
    ));
    write_request(ctx, input, path, "wave", Some(record))?;
    ctx.out.line(&format!(
        "Sign it offline (`signer sign-wave {} ...`), then create the wave with `courier waves push RESPONSE`.",
        req.name
    ));
    Ok(())
}

/// `courier waves sign`: a request bundle to sign an existing wave's targets with one more
/// offline targets key.
pub fn sign(ctx: &Ctx, args: &WavesSignArgs) -> Result<()> {
    bundle::validate_doc_name(&args.name)
        .map_err(|e| CourierError::Usage(format!("wave name {e}")))?;
    check_new_file(&args.bundle)?;
    let client = ctx.client()?;
    let wave = client.wave(&args.name)?.ok_or_else(|| {
        CourierError::Other(format!(
            "the factory has no wave named {:?} (see `courier waves list`)",
            args.name
        ))
    })?;
    if wave.status != "active" {
        return Err(CourierError::Other(format!(
            "wave {} is {}: only an active wave can be signed",
            args.name,
            one_line(&wave.status)
        )));
    }
    let doc = SignedTargets::from_json(&wave.targets).map_err(|e| {
        CourierError::Server(format!(
            "the targets of wave {} are unreadable: {e}",
            args.name
        ))
    })?;
    let input = wave_request_input(ctx, &client, &args.name, wave.targets)?;
    ctx.out.line(&format!(
        "Wave {} for version {} and tag {}: {} target(s), expires {}; {}",
        args.name,
        one_line(&wave.version),
        one_line(&wave.tag),
        doc.signed.targets.len(),
        doc.signed.expires,
        signature_count(&client, &doc)?
    ));
    write_request(ctx, input, &args.bundle, "wave-sign", None)?;
    ctx.out.line(&format!(
        "Sign it offline with an offline targets key that has not signed the wave yet (`signer sign-wave {} \
         --targets-keys FILE ...`), then push the response with `courier waves push RESPONSE`.",
        args.name
    ));
    Ok(())
}
