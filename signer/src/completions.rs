//! `signer completions SHELL` and `signer man`: generated from the clap definition by
//! `shared::cli_docs` (the same for both programs), so they always match the real command
//! line.

use clap::CommandFactory;
use shared::cli_docs::{CompletionsArgs, ManArgs};

use crate::cli::Cli;
use crate::error::{Result, SignerError};

/// Prints the completion script for the shell on stdout.
pub fn completions(args: &CompletionsArgs) -> Result<()> {
    shared::cli_docs::print_completions(Cli::command(), "signer", args)
        .map_err(|e| SignerError::Other(format!("cannot write the completion script: {e}")))
}

/// Prints `signer.1` on stdout, or writes one page per command into `--dir`.
pub fn man(args: &ManArgs) -> Result<()> {
    shared::cli_docs::print_or_write_man(Cli::command(), "signer", args)
        .map_err(|e| SignerError::Other(format!("cannot write the man pages: {e}")))
}
