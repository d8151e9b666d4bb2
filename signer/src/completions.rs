//! `signer completions SHELL` and `signer man`: generated from the clap definition by
//! `shared::cli` (the same for both programs), so they always match the real command
//! line. They need no state directory (they run where `HOME` is unset), so they take only
//! the output, not a whole [`crate::ctx::Ctx`].

use clap::CommandFactory;
use shared::cli::{CompletionsArgs, ManArgs};

use crate::cli::Cli;
use crate::error::{Result, SignerError};
use crate::ui::Ui;

/// Prints the completion script for the shell.
pub fn completions(ui: &mut Ui, args: &CompletionsArgs) -> Result<()> {
    ui.bytes(&shared::cli::completion_script(
        Cli::command(),
        "signer",
        args.shell,
    ));
    Ok(())
}

/// Prints `signer.1`, or writes one page per command into `--dir` and says how many.
pub fn man(ui: &mut Ui, args: &ManArgs) -> Result<()> {
    let failed = |e: std::io::Error| SignerError::Other(format!("cannot write the man pages: {e}"));
    let Some(dir) = &args.dir else {
        ui.bytes(&shared::cli::man_page(Cli::command()).map_err(failed)?);
        return Ok(());
    };
    let written = shared::cli::write_man_pages(Cli::command(), "signer", dir).map_err(|e| {
        failed(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", dir.display()),
        ))
    })?;
    ui.line(format!(
        "Wrote {} man pages to {}.",
        written.len(),
        dir.display()
    ));
    Ok(())
}
