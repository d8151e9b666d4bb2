//! A response checked against the factory's live transaction, before anything is uploaded.
//!
//! The request part of a response (transaction snapshot, root chain, production and wave
//! targets) is what the signer saw and signed against. Whichever online machine pushes it,
//! and whether or not it has the copy of the request it wrote ([`super::response`]), the
//! courier checks that this request part **is** the factory's transaction as it is now:
//!
//! * [`already_applied`]: the response's roots may already be published — then the push
//!   says "already applied as version N" (exit 0) when the published roots are the
//!   response's drafts byte for byte, and "stale bundle" otherwise;
//! * [`check_fresh`]: the snapshot equals the live transaction — status `STARTED`, the same
//!   published roots, creation time, online keys and staged roots, and everything else the
//!   server answered but its `issues` (the server's current opinion, which may change with
//!   time) — or the staged roots already are the upload (a repeated push);
//! * [`check_chain`]: the root chain is the factory's, version 1 to the current one;
//! * [`check_docs`]: every production and wave targets document carried is the one the
//!   factory serves now (same signed content), and a targets key rotation or addition
//!   carries all of them (fioctl's rule: every tag and every active wave);
//! * [`check_drafts`]: the upload's roots are built on this transaction's staged drafts: the
//!   same version and the same `x-changelog` (the server's stamp of the transaction, which
//!   no signer changes), so a response signed for another transaction is refused even if its
//!   request part was rewritten to look like this one.
//!
//! The transaction id is checked by the server itself (a `PUT` with another transaction's id
//! is refused and changes nothing).

use std::collections::BTreeSet;

use shared::bundle::{Operation, TransferBundle, Upload};
use shared::metadata::{Role, SignedRoot, SignedTargets};
use shared::transaction::{ParsedTransaction, TxStatus};

use crate::api::Client;
use crate::error::{CourierError, Result};
use crate::request::fetch_chain;

/// How the server's transaction compares with the one a request was made for.
#[derive(Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Unchanged: the upload can go.
    Unchanged,
    /// The staged roots already are the upload's (it was pushed before).
    AlreadyUploaded,
}

/// A response whose roots the factory already publishes.
#[derive(Debug, PartialEq, Eq)]
pub struct Applied {
    /// The version the response's roots were published as.
    pub version: u64,
    /// The factory's current root version.
    pub current: u64,
}

/// Whether the upload's roots are published already: `Some` when the factory's CI and
/// production roots of the upload's version have exactly the upload's signed content, a
/// stale-bundle error when that version was published with other content, `None` when the
/// version is not published yet.
pub fn already_applied(
    client: &Client,
    live: &ParsedTransaction,
    upload: &Upload,
) -> Result<Option<Applied>> {
    let version = upload.ci_root.signed.version;
    let current = live.current_ci.signed.version;
    if current < version {
        return Ok(None);
    }
    for (prod, ours, what) in [
        (false, &upload.ci_root, "CI root"),
        (true, &upload.prod_root, "production root"),
    ] {
        let served = client.root_version(version, prod)?.ok_or_else(|| {
            CourierError::Server(format!(
                "the factory's root is version {current} but it serves no {what} version {version}"
            ))
        })?;
        let served = SignedRoot::from_json(&served).map_err(|e| {
            CourierError::Server(format!(
                "the served {what} version {version} is unreadable: {e}"
            ))
        })?;
        let same = match (served.canonical_signed(), ours.canonical_signed()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same {
            return Err(CourierError::stale(format!(
                "version {version} was published with another {what} than this response's (the factory's root is now version {current})"
            )));
        }
    }
    Ok(Some(Applied { version, current }))
}

/// The snapshot member of `request` as a transaction.
fn snapshot(request: &TransferBundle) -> Result<ParsedTransaction> {
    request
        .parsed_transaction()
        .map_err(|e| CourierError::Bundle(format!("the request's {e}")))
}

/// The answer without `issues`, for comparing a snapshot with the live answer.
fn without_issues(raw: &[u8]) -> Option<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    v.as_object_mut()?.remove("issues");
    Some(v)
}

/// Compares the live transaction with the request's snapshot ("is the bundle stale?").
pub fn check_fresh(
    request: &TransferBundle,
    live: &ParsedTransaction,
    upload: &Upload,
) -> Result<Freshness> {
    let snap = snapshot(request)?;
    match live.status() {
        TxStatus::Started => {}
        TxStatus::None => {
            return Err(CourierError::stale(
                "the transaction was applied or canceled since the request was pulled",
            ))
        }
        TxStatus::Applying => return Err(CourierError::stale("the transaction is being applied")),
    }
    if live.current_ci != snap.current_ci || live.current_prod != snap.current_prod {
        return Err(CourierError::stale(format!(
            "a new root was published since the request was pulled (current version {}, request made for {})",
            live.current_ci.signed.version, snap.current_ci.signed.version
        )));
    }
    let meta = |t: &ParsedTransaction| {
        t.wire
            .change_meta
            .as_ref()
            .map(|m| m.created_at.clone())
            .filter(|at| !at.is_empty())
    };
    if meta(live).is_some() && meta(live) != meta(&snap) {
        return Err(CourierError::stale(
            "the transaction was restarted since the request was pulled (it was created at another time)",
        ));
    }
    if live.updated_online_keys() != snap.updated_online_keys() {
        return Err(CourierError::stale(
            "the staged online keys changed since the request was pulled",
        ));
    }
    let uploaded = live.updated_ci.as_ref() == Some(&upload.ci_root)
        && live.updated_prod.as_ref() == Some(&upload.prod_root);
    if live.updated_ci != snap.updated_ci || live.updated_prod != snap.updated_prod {
        if uploaded {
            return Ok(Freshness::AlreadyUploaded);
        }
        return Err(CourierError::stale(
            "the staged roots changed since the request was pulled (someone staged other changes)",
        ));
    }
    if without_issues(&snap.raw) != without_issues(&live.raw) {
        return Err(CourierError::stale(
            "the transaction the request carries is not the factory's live transaction (its snapshot differs from what the server answers now)",
        ));
    }
    Ok(if uploaded {
        Freshness::AlreadyUploaded
    } else {
        Freshness::Unchanged
    })
}

/// Checks that the request's root chain is `1..=N`, N the factory's current version, and the
/// one the factory serves.
pub fn check_chain(
    client: &Client,
    request: &TransferBundle,
    live: &ParsedTransaction,
) -> Result<()> {
    let carried = request.chain_bytes();
    let current = live.current_ci.signed.version;
    let versions: Vec<u64> = carried.iter().map(|(v, _)| *v).collect();
    if versions != (1..=current).collect::<Vec<u64>>() {
        return Err(CourierError::stale(format!(
            "the request's root chain is not versions 1 to {current}, the factory's chain"
        )));
    }
    let served = fetch_chain(client, current)?;
    for ((v, ours), theirs) in carried.iter().zip(&served) {
        if *ours == theirs.as_slice() {
            continue;
        }
        let same = match (SignedRoot::from_json(ours), SignedRoot::from_json(theirs)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same {
            return Err(CourierError::stale(format!(
                "the request's root version {v} is not the one the factory serves"
            )));
        }
    }
    Ok(())
}

/// Whether the operations (requested, and performed by the signer steps) re-sign every
/// production tag and active wave (a targets key rotation or addition, fioctl's selection).
fn covers_all_docs(request: &TransferBundle) -> bool {
    let performed = request
        .record()
        .into_iter()
        .flat_map(|r| r.steps.iter().flat_map(|s| s.operations.iter()));
    request.operations().iter().chain(performed).any(|op| {
        matches!(
            op,
            Operation::TargetsRotation
                | Operation::AddOfflineKey {
                    role: Role::Targets,
                    ..
                }
        )
    })
}

/// Re-fetches the production and wave targets the request carries and checks their signed
/// content is the factory's now; with a targets key rotation or addition, also that the
/// request carries every tag and every active wave.
pub fn check_docs(client: &Client, request: &TransferBundle) -> Result<()> {
    let all = covers_all_docs(request);
    for (waves, docs) in [
        (false, request.prod_targets_docs()),
        (true, request.waves_docs()),
    ] {
        if docs.is_empty() && !all {
            continue;
        }
        let kind = if waves { "wave" } else { "production" };
        let names: Vec<String> = if all {
            Vec::new()
        } else {
            docs.keys().map(|n| n.to_string()).collect()
        };
        // Each served document is compared as it arrives: never all of them in memory.
        let mut served: BTreeSet<String> = BTreeSet::new();
        client.docs_each::<CourierError>(waves, &names, &mut |name, text| {
            let Some(ours) = docs.get(name.as_str()) else {
                if all {
                    return Err(CourierError::stale(format!(
                        "the factory has {kind} targets {name:?} which the request does not carry (a targets key rotation must re-sign them all)"
                    )));
                }
                return Ok(());
            };
            if !same_signed(Some(&text), &ours.bytes()?)? {
                return Err(changed(kind, &name));
            }
            served.insert(name);
            Ok(())
        })?;
        if let Some(name) = docs.keys().find(|n| !served.contains(**n)) {
            return Err(changed(kind, name));
        }
    }
    Ok(())
}

fn changed(kind: &str, name: &str) -> CourierError {
    CourierError::stale(format!(
        "the {kind} targets {name:?} changed (or disappeared) since the request was pulled"
    ))
}

/// Whether a served document has the signed content of the carried one (identical bytes
/// need no parsing; otherwise compare what a signature covers).
fn same_signed(served: Option<&[u8]>, ours: &[u8]) -> Result<bool> {
    let Some(theirs) = served else {
        return Ok(false);
    };
    if theirs == ours {
        return Ok(true);
    }
    let theirs = SignedTargets::from_json(theirs)
        .map_err(|e| CourierError::Server(format!("the server sent unreadable targets: {e}")))?;
    let ours = SignedTargets::from_json(ours)
        .map_err(|e| CourierError::Verify(format!("targets in the request: {e}")))?;
    Ok(theirs.canonical_signed().ok() == ours.canonical_signed().ok())
}

/// Checks that the upload's roots are built on the live transaction's staged drafts: same
/// version and the same `x-changelog`, the server's stamp of this transaction.
pub fn check_drafts(live: &ParsedTransaction, upload: &Upload) -> Result<()> {
    let (Some(ci), Some(prod)) = (live.updated_ci.as_ref(), live.effective_updated_prod()) else {
        return Err(CourierError::stale("the factory has no staged roots"));
    };
    for (what, ours, theirs) in [
        ("CI root", &upload.ci_root, ci),
        ("production root", &upload.prod_root, &prod),
    ] {
        if ours.signed.version != theirs.signed.version {
            return Err(CourierError::stale(format!(
                "the response's {what} is version {} but this transaction stages version {}",
                ours.signed.version, theirs.signed.version
            )));
        }
        if ours.signed.changelog != theirs.signed.changelog {
            return Err(CourierError::stale(format!(
                "the response's {what} was not made from this transaction's staged draft (its x-changelog differs: it was signed for another transaction)"
            )));
        }
    }
    Ok(())
}
