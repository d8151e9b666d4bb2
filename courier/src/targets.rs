//! `courier prod-targets pull`: a request bundle for signing production targets (and
//! optionally wave targets) inside the open root updates transaction, like the online half
//! of `fioctl keys tuf updates sign-prod-targets`. The signatures travel in the
//! transaction's upload and take effect when it is applied.

use crate::bundles;
use crate::cli::{OpArg, ProdTargetsCommand, PullArgs};
use crate::error::Result;
use crate::Ctx;

/// Runs a `prod-targets` subcommand.
pub fn run(ctx: &Ctx, cmd: ProdTargetsCommand) -> Result<()> {
    match cmd {
        ProdTargetsCommand::Pull(args) => bundles::pull(
            ctx,
            &PullArgs {
                bundle: args.bundle,
                ops: vec![OpArg::SignProdTargets],
                keyid: None,
                threshold: None,
                tags: args.tags,
                waves: args.waves,
                txid: args.txid,
            },
        ),
    }
}
