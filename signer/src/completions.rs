//! `signer completions SHELL` and `signer man`: generated from the clap definition
//! (`shared::cli_docs`), like the courier's, so they always match the real command line.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Result, SignerError};

fn to_stdout(bytes: &[u8]) -> Result<()> {
    std::io::stdout()
        .write_all(bytes)
        .map_err(|e| SignerError::Other(format!("cannot write to stdout: {e}")))
}

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    to_stdout(&shared::cli_docs::completion_script(
        Cli::command(),
        "signer",
        shell,
    ))
}

/// Prints `signer.1` on stdout, or writes one page per command into `dir` (`signer.1`,
/// `signer-keys.1`, `signer-keys-list.1`, ...) and says how many.
pub fn man(dir: Option<&Path>) -> Result<()> {
    match dir {
        None => to_stdout(
            &shared::cli_docs::man_page(Cli::command())
                .map_err(|e| SignerError::Other(format!("cannot render the man page: {e}")))?,
        ),
        Some(dir) => {
            let written = shared::cli_docs::write_man_pages(Cli::command(), "signer", dir)
                .map_err(|e| {
                    SignerError::Other(format!(
                        "cannot write the man pages to {}: {e}",
                        dir.display()
                    ))
                })?;
            println!("Wrote {} man pages to {}.", written.len(), dir.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_cover_every_command_and_the_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        man(Some(dir.path())).unwrap();
        for page in [
            "signer.1",
            "signer-rotate-offline-key.1",
            "signer-keys.1",
            "signer-keys-list.1",
            "signer-completions.1",
        ] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
            assert!(text.contains(".TH"), "{page}");
        }
        let main = String::from_utf8(shared::cli_docs::man_page(Cli::command()).unwrap()).unwrap();
        assert!(main.contains("Exit codes"));
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh] {
            let script = shared::cli_docs::completion_script(Cli::command(), "signer", shell);
            assert!(String::from_utf8(script)
                .unwrap()
                .contains("rotate-offline-key"));
        }
    }
}
