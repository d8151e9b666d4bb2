//! Building request bundles: everything the signer needs to check and sign, in one
//! [`TransferBundle`] written for the USB stick.
//!
//! * [`plan`] — the `pull` arguments turned into operations and the documents to carry;
//! * [`gather`] — the transaction, root chain, production and wave targets and the
//!   encrypted initial root key, fetched and checked;
//! * [`write_request`] — the bundle built, its copy and record kept in the state directory
//!   first (so that a response to it can be compared with it), then written atomically and
//!   never over an existing file, with its fingerprint printed;
//! * [`pull`] — `courier updates pull` (and `prod-targets pull`, [`crate::targets`]).
//!
//! `rotate-offline-key` ([`crate::rotate`]) and the wave requests ([`crate::waves::request`])
//! use the same [`write_request`].

pub mod gather;
pub mod plan;

use std::path::Path;

use shared::bundle::{self, RequestInput, TransferBundle, Writer};

use crate::cli::{OpArg, PullArgs};
use crate::error::{CourierError, Result};
use crate::state::{RequestRecord, WaveRecord};
use crate::transaction::resolve_txid;
use crate::Ctx;

pub use gather::{fetch_chain, gather_request};
pub use plan::{plan_pull, DocPlan, Plan};

/// The writer recorded in bundles this courier writes.
pub fn writer() -> Writer {
    Writer::new("courier", env!("CARGO_PKG_VERSION"))
}

/// Refuses to overwrite an existing bundle file (checked before any change on the server).
pub fn check_new_file(path: &Path) -> Result<()> {
    if path.exists() {
        return Err(CourierError::Usage(format!(
            "{} already exists; choose another file name (bundles are never overwritten)",
            path.display()
        )));
    }
    Ok(())
}

/// The scratch file the documents of a request to be written at `path` are gathered in: in
/// the same directory, so that they are on the medium the bundle goes to (and a full disk
/// shows before anything is sent). It leaves nothing behind.
pub fn spool_beside(path: &Path) -> Result<bundle::Spool> {
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(bundle::Spool::new_in(dir)?)
}

/// Builds, writes, keeps and records a request bundle; prints its fingerprint.
pub fn write_request(
    ctx: &Ctx,
    input: RequestInput,
    path: &Path,
    purpose: &str,
    wave: Option<WaveRecord>,
) -> Result<TransferBundle> {
    let b = TransferBundle::new_request(input)?;
    check_new_file(path)?;
    let store = ctx.state()?;
    let digest = b.digest().to_string();
    // Keep the copy and the record first: a bundle on disk that push would not accept is useless.
    store.save_request_manifest(&b)?;
    store.record_request(&RequestRecord {
        digest: digest.clone(),
        fingerprint: b.fingerprint(),
        factory: b.factory().to_string(),
        txid: b.txid().to_string(),
        purpose: purpose.to_string(),
        operations: b.operations().iter().map(|o| o.to_string()).collect(),
        path: path.display().to_string(),
        created_at: ctx.now.to_string(),
        wave,
    })?;
    b.write_atomic_new(path, bundle::WRITE_COMPRESSION)?;
    ctx.out
        .line(&format!("Wrote request bundle {}", path.display()));
    ctx.out.line(&format!("  factory:     {}", b.factory()));
    if !b.txid().is_empty() {
        ctx.out.line(&format!("  transaction: {}", b.txid()));
    }
    for op in b.operations() {
        ctx.out.line(&format!("  operation:   {op}"));
    }
    let tags = b.prod_targets_docs();
    if !tags.is_empty() {
        ctx.out.line(&format!(
            "  production targets: {}",
            tags.keys().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    let w = b.waves_docs();
    if !w.is_empty() {
        ctx.out.line(&format!(
            "  wave targets:       {}",
            w.keys().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    if b.first_root_secret().is_some() {
        ctx.out
            .line("  initial root key:   included, encrypted to the signer's age recipient");
    }
    if let Some(current) = b.chain().ok().and_then(|c| c.last().cloned()) {
        ctx.out.line(&format!(
            "  current root:       version {}, fingerprint {}",
            current.signed.version,
            crate::root::root_fingerprint(&current)?
        ));
    }
    ctx.out.line(&format!("Fingerprint: {}", b.fingerprint()));
    ctx.out
        .line("Check that the signer shows the same fingerprint before signing.");
    Ok(b)
}

/// `courier updates pull`: the request bundle for the open transaction.
pub fn pull(ctx: &Ctx, args: &PullArgs) -> Result<()> {
    let mut plan = plan_pull(args)?;
    check_new_file(&args.bundle)?;
    let client = ctx.client()?;
    if args.ops.is_empty() {
        // In a first-time transaction whose initial key this courier holds, that is the job.
        let txn = client.updates()?;
        if txn.wire.first_time && ctx.state()?.first_root(client.factory())?.is_some() {
            plan.ops = vec![OpArg::FirstTimeRootRotation];
        }
    }
    let txid = resolve_txid(ctx, args.txid.as_deref())?;
    let mut spool = spool_beside(&args.bundle)?;
    let input = gather_request(ctx, &client, &plan, &txid, &mut spool)?;
    write_request(ctx, input, &args.bundle, "root-updates", None)?;
    Ok(())
}
