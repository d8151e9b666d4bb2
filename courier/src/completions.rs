//! `courier completions SHELL` and `courier man`: generated from the clap definition by
//! `shared::cli_docs` (the same for both programs), so they always match the real command
//! line.

use clap::CommandFactory;
use shared::cli_docs::{CompletionsArgs, ManArgs};

use crate::cli::Cli;
use crate::error::{CourierError, Result};

/// Prints the completion script for the shell on stdout.
pub fn completions(args: &CompletionsArgs) -> Result<()> {
    shared::cli_docs::print_completions(Cli::command(), "courier", args)
        .map_err(|e| CourierError::Other(format!("cannot write the completion script: {e}")))
}

/// Prints `courier.1` on stdout, or writes one page per command into `--dir`.
pub fn man(args: &ManArgs) -> Result<()> {
    shared::cli_docs::print_or_write_man(Cli::command(), "courier", args)
        .map_err(|e| CourierError::Other(format!("cannot write the man pages: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_cover_every_command_and_the_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let written =
            shared::cli_docs::write_man_pages(Cli::command(), "courier", dir.path()).unwrap();
        assert!(written
            .iter()
            .any(|p| p.ends_with("courier-rotate-offline-key.1")));
        let main = String::from_utf8(shared::cli_docs::man_page(Cli::command()).unwrap()).unwrap();
        assert!(main.contains("Exit codes"));
        let bash = shared::cli_docs::completion_script(
            Cli::command(),
            "courier",
            clap_complete::Shell::Bash,
        );
        assert!(String::from_utf8(bash)
            .unwrap()
            .contains("rotate-offline-key"));
    }
}
