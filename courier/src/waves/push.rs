//! `courier waves push`: a signed wave response checked and sent — the wave created (a
//! `waves init` response) or the new signatures added to it (a `waves sign` response) —
//! from any online machine.
//!
//! The response is read like every response ([`crate::push::response::load`]: the right
//! factory, authenticated signer steps, the local copy when there is one). Then every wave
//! signature must be by an offline targets key of the factory's current root and verify
//! over the carried draft; a new wave's draft must be exactly what `waves init` builds from
//! the factory's data now (from the recorded arguments, or the ones
//! [`super::build::request_candidates`] infers); an existing wave must serve the same
//! targets. The `POST` is sent once; a lost answer is recognised by reading the wave back.

use serde_json::value::RawValue;
use shared::bundle;
use shared::keys::{KeyId, Signature};
use shared::metadata::{SignedTargets, Timestamp};

use super::build::{self, wave_of, WaveRequest, NO_STATIC_DELTA_WARNING};
use super::factory::{
    build_draft, current_offline_targets_keys, current_prod_targets, signature_count,
};
use crate::api::{self, Client, WaveCreate, WaveTargets};
use crate::cli::WavesPushArgs;
use crate::error::{CourierError, Result};
use crate::push::response;
use crate::state::WaveRecord;
use crate::Ctx;

/// `courier waves push`: creates the wave of a `waves init` response, or adds the
/// signatures of a `waves sign` response to the existing wave. Works without the local copy
/// of the request: everything is checked against the factory's data now.
pub fn push(ctx: &Ctx, args: &WavesPushArgs) -> Result<()> {
    let file = args.file.as_path();
    let client = ctx.client()?;
    let response::Response {
        bundle: resp,
        local,
    } = response::load(ctx, file, client.factory())?;
    let name = wave_of(&resp)
        .filter(|_| local.record().is_none_or(|r| r.purpose.starts_with("wave")))
        .ok_or_else(|| {
            CourierError::Usage(format!(
                "{} does not answer a wave request; upload it with `courier updates push {}`",
                file.display(),
                file.display()
            ))
        })?;
    let upload = resp
        .upload()
        .ok_or_else(|| CourierError::Bundle("the response carries no upload".into()))?;
    let sigs = upload
        .waves_signatures
        .get(&name)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            CourierError::Bundle(format!("the response has no signature for wave {name:?}"))
        })?;
    let member = format!("{}{name}.json", bundle::WAVES_DIR);
    let (draft, _) = resp.targets_signed(&member)?;
    let doc = resp
        .waves()?
        .remove(&name)
        .ok_or_else(|| CourierError::Bundle(format!("the response has no {member}")))?;
    // The signing keys: offline targets keys of the factory's current CI root (fioctl's rule).
    let (root, offline) = current_offline_targets_keys(&client)?;
    let mut good = Vec::new();
    for sig in sigs {
        if !offline.contains(&sig.keyid) {
            return Err(CourierError::stale(format!(
                "wave signature by {} is not from an offline targets key of the current root (v{})",
                sig.keyid.short(),
                root.signed.version
            )));
        }
        let key = root.signed.keys.get(&sig.keyid).ok_or_else(|| {
            CourierError::Verify(format!(
                "key {} is not in the current root",
                sig.keyid.short()
            ))
        })?;
        key.verify(&draft, sig).map_err(|e| {
            CourierError::Verify(format!("wave signature by {}: {e}", sig.keyid.short()))
        })?;
        good.push(sig.clone());
    }
    ctx.out.line("  every signature verifies locally");
    match client.wave(&name)? {
        Some(live) => add_wave_signatures(
            ctx,
            &client,
            &name,
            &draft,
            &good,
            live,
            doc.signatures.is_empty(),
        ),
        None if !doc.signatures.is_empty() => Err(CourierError::stale(format!(
            "wave {name} no longer exists on the factory (the request was made to sign it)"
        ))),
        None => {
            let record = local.record().and_then(|r| r.wave.clone());
            create_wave(ctx, &client, &name, &draft, &good, record)
        }
    }
}

/// The `waves init` arguments a new wave's `draft` must be rebuilt from: the recorded ones
/// when this machine wrote the request, else those [`build::request_candidates`] infers.
fn wave_requests(
    client: &Client,
    name: &str,
    draft: &[u8],
    record: Option<WaveRecord>,
) -> Result<Vec<WaveRequest>> {
    if let Some(wave) = record {
        return Ok(vec![WaveRequest {
            name: wave.name,
            version: wave.version,
            tag: wave.tag,
            expires: Timestamp::parse(&wave.expires)
                .map_err(|e| CourierError::Bundle(e.to_string()))?,
            prune: wave.prune,
            source_tag: wave.source_tag,
        }]);
    }
    let signed: shared::metadata::Targets = serde_json::from_slice(draft)
        .map_err(|e| CourierError::Bundle(format!("the wave targets are unreadable: {e}")))?;
    let ci = client.targets_of_version(&signed.version.to_string())?;
    // The tag is only known after looking at the draft; fetch its production targets then.
    let first = build::request_candidates(name, &signed, &ci, None);
    let tag = match &first {
        Ok(c) => c[0].tag.clone(),
        Err(e) => {
            return Err(CourierError::stale(format!(
                "the wave targets do not match the factory's CI targets of version {}: {e}",
                signed.version
            )))
        }
    };
    let current = current_prod_targets(client, &tag)?;
    build::request_candidates(name, &signed, &ci, current.as_ref())
        .map_err(|e| CourierError::stale(e.to_string()))
}

/// Creates a new wave from its verified draft and signatures, after checking that the draft
/// is what `waves init` builds from the factory's data now.
fn create_wave(
    ctx: &Ctx,
    client: &Client,
    name: &str,
    draft: &[u8],
    sigs: &[Signature],
    record: Option<WaveRecord>,
) -> Result<()> {
    let mut fresh = None;
    for req in wave_requests(client, name, draft, record)? {
        let built = build_draft(client, &req).map_err(|e| match e {
            CourierError::Other(m) => {
                CourierError::stale(format!("the wave can no longer be built: {m}"))
            }
            other => other,
        })?;
        if built.canonical == draft {
            fresh = Some((req, built));
            break;
        }
    }
    let Some((req, built)) = fresh else {
        return Err(CourierError::Stale {
            reason: "the wave targets are not what `courier waves init` builds from the factory's production and CI targets now (they changed since the request was written)".into(),
            advice: "Nothing was created. Run `courier waves init` again, sign the new request, and push the new \
                     response."
                .into(),
        });
    };
    let signed = RawValue::from_string(String::from_utf8_lossy(draft).into_owned())
        .map_err(|e| CourierError::Other(e.to_string()))?;
    let body = WaveCreate {
        name,
        version: &req.version,
        tag: &req.tag,
        targets: WaveTargets {
            signed: &signed,
            signatures: sigs,
        },
    };
    ctx.out.line(&format!("= Creating wave {name}"));
    if let Err(e) = client.create_wave(&body) {
        if matches!(e.status(), Some(s) if s < 500) {
            return Err(CourierError::from(e).context("Failed to create a Wave"));
        }
        // Did it take effect? The wave exists with our targets → yes.
        match client.wave(name) {
            Ok(Some(w)) if served_signed(&w.targets).as_deref() == Some(draft) => {
                ctx.out.line(&format!(
                    "Wave {name} was created (the answer was lost, but the wave exists)."
                ));
            }
            Ok(None) => {
                return Err(CourierError::from(e).context("the wave was not created; push again"))
            }
            _ => {
                return Err(CourierError::Uncertain(format!(
                    "creating the wave failed ({e}); check with `courier waves list` before pushing again"
                )))
            }
        }
    }
    ctx.out.line(&format!(
        "Wave {name} created for version {} and tag {}. Roll it out with `courier waves rollout {name} --group GROUP` (or --limit, --uuids), then complete it with `courier waves complete {name}`.",
        req.version, req.tag
    ));
    if let Some(w) = client.wave(name)? {
        if let Ok(doc) = SignedTargets::from_json(&w.targets) {
            ctx.out
                .line(&format!("  It is {}.", signature_count(client, &doc)?));
        }
    }
    if !built.has_static_deltas {
        ctx.out.line("");
        ctx.out.line(NO_STATIC_DELTA_WARNING);
    }
    Ok(())
}

/// The canonical `signed` bytes of a served targets document.
fn served_signed(doc: &[u8]) -> Option<Vec<u8>> {
    SignedTargets::from_json(doc).ok()?.canonical_signed().ok()
}

/// Adds verified signatures of `draft` to the existing wave `name` (`live`), once: key ids
/// whose signature the wave already carries are not sent again. `new_wave`: the response
/// answers a `waves init` request (a repeated push of it finds the wave created).
fn add_wave_signatures(
    ctx: &Ctx,
    client: &Client,
    name: &str,
    draft: &[u8],
    sigs: &[Signature],
    live: api::Wave,
    new_wave: bool,
) -> Result<()> {
    let doc = SignedTargets::from_json(&live.targets).map_err(|e| {
        CourierError::Server(format!("the targets of wave {name} are unreadable: {e}"))
    })?;
    if doc.canonical_signed().ok().as_deref() != Some(draft) {
        return Err(CourierError::stale(format!(
            "wave {name} on the factory has other targets than the ones this response signs"
        )));
    }
    let have: Vec<&KeyId> = doc.signatures.iter().map(|s| &s.keyid).collect();
    let new: Vec<Signature> = sigs
        .iter()
        .filter(|s| !have.contains(&&s.keyid))
        .cloned()
        .collect();
    if new.is_empty() {
        ctx.out.line(&format!(
            "Wave {name} {} (this response was pushed before); nothing to upload. It is {}.",
            if new_wave {
                "already exists with these targets and signatures"
            } else {
                "already carries the signatures of this response"
            },
            signature_count(client, &doc)?
        ));
        return Ok(());
    }
    if live.status != "active" {
        return Err(CourierError::Other(format!(
            "wave {name} is {}: its targets can no longer be signed; nothing was uploaded",
            api::one_line(&live.status)
        )));
    }
    let ids: Vec<String> = new.iter().map(|s| s.keyid.short()).collect();
    ctx.out
        .line(&format!("= Signing wave {name} with {}", ids.join(", ")));
    if let Err(e) = client.sign_wave(name, &new) {
        if matches!(e.status(), Some(s) if s < 500) {
            return Err(CourierError::from(e)
                .context("the server refused the signatures; the wave is unchanged"));
        }
        let landed = client
            .wave(name)
            .ok()
            .flatten()
            .and_then(|w| SignedTargets::from_json(&w.targets).ok());
        match landed {
            Some(d) if new.iter().all(|n| d.signatures.iter().any(|s| s.keyid == n.keyid)) => {
                ctx.out
                    .note("the answer was lost, but the wave carries the new signatures");
            }
            Some(_) => {
                return Err(CourierError::from(e)
                    .context("the signatures were not added; the wave is unchanged; push again"))
            }
            None => {
                return Err(CourierError::Uncertain(format!(
                    "signing the wave failed ({e}) and the server cannot be reached to tell whether it took effect; push again (it will not sign twice)"
                )))
            }
        }
    }
    let signed = client
        .wave(name)?
        .and_then(|w| SignedTargets::from_json(&w.targets).ok())
        .unwrap_or(doc);
    ctx.out.line(&format!(
        "Signed wave {name}: it is {}.",
        signature_count(client, &signed)?
    ));
    Ok(())
}
