//! `courier completions SHELL` and `courier man`: generated from the clap definition
//! (`shared::cli_docs`), so they always match the real command line.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{CourierError, Result};

fn to_stdout(bytes: &[u8]) -> Result<()> {
    std::io::stdout()
        .write_all(bytes)
        .map_err(|e| CourierError::Other(format!("cannot write to stdout: {e}")))
}

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    to_stdout(&shared::cli_docs::completion_script(
        Cli::command(),
        "courier",
        shell,
    ))
}

/// Prints `courier.1` on stdout, or writes one page per command into `dir`
/// (`courier.1`, `courier-updates.1`, `courier-updates-push.1`, ...).
pub fn man(dir: Option<&Path>) -> Result<()> {
    match dir {
        None => to_stdout(
            &shared::cli_docs::man_page(Cli::command())
                .map_err(|e| CourierError::Other(format!("cannot render the man page: {e}")))?,
        ),
        Some(dir) => {
            let written = shared::cli_docs::write_man_pages(Cli::command(), "courier", dir)
                .map_err(|e| CourierError::io("cannot write the man pages to", dir, e))?;
            crate::out(&format!(
                "Wrote {} man pages to {}.",
                written.len(),
                dir.display()
            ));
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
            "courier.1",
            "courier-updates.1",
            "courier-updates-push.1",
            "courier-waves-init.1",
        ] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
            assert!(text.contains(".TH"), "{page}");
        }
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
