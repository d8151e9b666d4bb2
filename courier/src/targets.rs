//! `courier prod-targets pull`: a request bundle for signing production targets (and
//! optionally wave targets) inside the open root updates transaction, like the online half
//! of `fioctl keys tuf updates sign-prod-targets`. The signatures travel in the
//! transaction's upload and take effect when it is applied.

use crate::cli::{OpArg, ProdTargetsPullArgs, PullArgs};
use crate::error::Result;
use crate::request;
use crate::Ctx;

/// `courier prod-targets pull`: `updates pull --op sign-prod-targets` with these tags and
/// waves.
pub fn pull(ctx: &Ctx, args: &ProdTargetsPullArgs) -> Result<()> {
    request::pull(
        ctx,
        &PullArgs {
            bundle: args.bundle.clone(),
            ops: vec![OpArg::SignProdTargets],
            keyid: None,
            threshold: None,
            tags: args.tags.clone(),
            waves: args.waves.clone(),
            txid: args.txid.clone(),
        },
    )
}
