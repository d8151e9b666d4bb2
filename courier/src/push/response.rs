//! Reading a response bundle to push: what it is, who signed its steps, and whether this
//! machine wrote the request it answers.
//!
//! A response can be pushed from any online machine: everything that decides whether it is
//! uploaded is checked against the factory's live transaction ([`super::live`]). What this
//! module adds:
//!
//! 1. the file is a response bundle for the configured factory (a keys tarball, a root.json
//!    or a request given by mistake is named as such, see [`crate::sniff`]);
//! 2. every signer step's attestation verifies (a step changed after it was signed is
//!    refused whatever is pinned) and, once signer identities are pinned (`courier config
//!    add-signer`), every step is signed by one of them;
//! 3. when this machine wrote the request (its record and its copy are in the state
//!    directory), the response's request part must be byte-identical to that copy and name
//!    the same factory and transaction — an extra check, not a requirement.

use std::path::Path;

use shared::bundle::{BundleKind, Manifest, StepAuth, TransferBundle};

use crate::error::{CourierError, Result};
use crate::state::{KeptRequest, RequestRecord};
use crate::{sniff, Ctx};

/// What the kept copy of the request said about a response.
#[derive(Debug)]
pub enum LocalCopy {
    /// This machine wrote the request; the response's request part is byte-identical to it.
    Matches(RequestRecord),
    /// This machine recorded the request but its copy is gone (only the record is left).
    RecordOnly(RequestRecord),
    /// This machine did not write the request (another online machine did, or the state
    /// directory was lost).
    Absent,
}

impl LocalCopy {
    /// The record of the request, when this machine wrote it.
    pub fn record(&self) -> Option<&RequestRecord> {
        match self {
            LocalCopy::Matches(r) | LocalCopy::RecordOnly(r) => Some(r),
            LocalCopy::Absent => None,
        }
    }
}

/// A response bundle read for pushing.
#[derive(Debug)]
pub struct Response {
    /// The bundle (its request members are the request it answers).
    pub bundle: TransferBundle,
    /// What the local copy of the request said.
    pub local: LocalCopy,
}

/// Reads `file`, refusing anything but a response for `factory` whose steps are
/// authenticated (see the module docs), and compares its request part with the local copy
/// when there is one. Prints what it found.
pub fn load(ctx: &Ctx, file: &Path, factory: &str) -> Result<Response> {
    let resp = sniff::read_bundle(file)?;
    if resp.kind() != BundleKind::Response {
        return Err(CourierError::Bundle(format!(
            "{} is a {} bundle (fingerprint {}); sign it with the signer and push the response it writes",
            file.display(),
            resp.kind(),
            resp.fingerprint()
        )));
    }
    ctx.out.line(&format!(
        "Response bundle {} (fingerprint {})",
        file.display(),
        resp.fingerprint()
    ));
    if resp.factory() != factory {
        return Err(CourierError::Bundle(format!(
            "the response is for factory {:?} but the courier is working on {factory:?}",
            resp.factory()
        )));
    }
    check_steps(ctx, file, &resp)?;
    let local = compare_with_local_copy(ctx, &resp, factory)?;
    match &local {
        LocalCopy::Matches(rec) => ctx.out.line(&format!(
            "  request {} was written on this machine ({}); the response's request part is byte-identical to the copy kept here",
            rec.fingerprint, rec.created_at
        )),
        LocalCopy::RecordOnly(rec) => ctx.out.line(&format!(
            "  request {} was written on this machine but its copy is gone; checking the response against the factory's live transaction only",
            rec.fingerprint
        )),
        LocalCopy::Absent => ctx.out.line(&format!(
            "  request {} was not written on this machine; checking the response against the factory's live transaction",
            resp.request_digest().fingerprint()
        )),
    }
    Ok(Response {
        bundle: resp,
        local,
    })
}

/// Refuses a step whose attestation is broken, and (once signers are pinned) any step not
/// signed by a pinned signer. Prints who signed each step.
fn check_steps(ctx: &Ctx, file: &Path, resp: &TransferBundle) -> Result<()> {
    let pinned = crate::config::CourierConfig::load(ctx.paths()?)?.signers;
    let Some(rec) = resp.record() else {
        return Ok(());
    };
    let mut refused = Vec::new();
    for (i, step) in rec.steps.iter().enumerate() {
        let ops: Vec<String> = step.operations.iter().map(|o| o.to_string()).collect();
        let who = match resp.step_auth(step, &rec.request_sha256) {
            StepAuth::Signed(id) => match pinned.iter().find(|(_, k)| **k == id) {
                Some((name, _)) => format!(", pinned signer {name}"),
                None => {
                    refused.push(format!(
                        "step {} is signed by {} ({}), which is not a pinned signer",
                        i + 1,
                        id,
                        id.fingerprint()
                    ));
                    format!(", signer identity {} (not pinned)", id.fingerprint())
                }
            },
            StepAuth::Unsigned => {
                refused.push(format!("step {} carries no signature of its signer", i + 1));
                ", NOT SIGNED by its signer".to_string()
            }
            StepAuth::Broken { identity, reason } => {
                refused.push(format!(
                    "step {} was changed after {} signed it ({reason})",
                    i + 1,
                    identity.fingerprint()
                ));
                ", its signature DOES NOT VERIFY".to_string()
            }
        };
        ctx.out.line(&format!(
            "  signed by {} {} at {}: {}{}",
            step.signer.tool,
            step.signer.version,
            step.time,
            ops.join(", "),
            who
        ));
    }
    if let Some(broken) = refused.iter().find(|r| r.contains("was changed after")) {
        // Tampering whatever is pinned: a step no longer matches its own signature.
        return Err(CourierError::Verify(format!(
            "{}: {broken}. The response was changed after it was signed; nothing was uploaded",
            file.display()
        )));
    }
    if !pinned.is_empty() && !refused.is_empty() {
        return Err(CourierError::Verify(format!(
            "{}: the response's steps must be signed by the signers pinned here (`courier config show`), and they are not: {}. It may have been changed on its way from the offline laptops; nothing was uploaded",
            file.display(),
            refused.join("; ")
        )));
    }
    Ok(())
}

/// The extra check a kept copy allows: byte-identical request members, same factory and
/// transaction as recorded.
fn compare_with_local_copy(ctx: &Ctx, resp: &TransferBundle, factory: &str) -> Result<LocalCopy> {
    let store = ctx.state()?;
    let digest = resp.request_digest().to_string();
    let Some(record) = store.find_request(&digest)? else {
        return Ok(LocalCopy::Absent);
    };
    let Some(kept) = store.request_copy(&digest) else {
        return Ok(LocalCopy::RecordOnly(record));
    };
    let damaged = |path: &std::path::Path, e: String| {
        CourierError::Bundle(format!(
            "the kept copy of request {} ({}) is damaged: {e}",
            record.fingerprint,
            path.display()
        ))
    };
    let answers = match &kept {
        KeptRequest::Manifest(path) => {
            let bytes = std::fs::read(path).map_err(|e| damaged(path, e.to_string()))?;
            let manifest =
                Manifest::from_bytes(&bytes).map_err(|e| damaged(path, e.to_string()))?;
            // Found by the digest the response names: the manifest is what is compared.
            resp.check_answers_manifest(&resp.request_digest(), &manifest)
        }
        KeptRequest::Bundle(path) => {
            let request = TransferBundle::read(path).map_err(|e| damaged(path, e.to_string()))?;
            resp.check_answers(&request)
        }
    };
    answers.map_err(|e| {
        CourierError::Bundle(format!(
            "the response does not answer request {} as this machine wrote it: {e}; nothing was uploaded",
            record.fingerprint
        ))
    })?;
    if record.factory != factory || record.txid != resp.txid() {
        return Err(CourierError::Bundle(
            "the response's factory or transaction differs from the recorded request".into(),
        ));
    }
    Ok(LocalCopy::Matches(record))
}
