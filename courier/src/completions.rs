//! `courier completions SHELL` and `courier man`: generated from the clap definition by
//! `shared::cli` (the same for both programs), so they always match the real command
//! line. Neither needs the connection settings.

use clap::CommandFactory;
use shared::cli::{self, CompletionsArgs, ManArgs};

use crate::cli::Cli;
use crate::error::{CourierError, Result};
use crate::Ctx;

/// `courier completions SHELL`: the completion script for the shell on stdout.
pub fn completions(ctx: &Ctx, args: &CompletionsArgs) -> Result<()> {
    ctx.out.bytes(&cli::completion_script(
        Cli::command(),
        "courier",
        args.shell,
    ));
    Ok(())
}

/// `courier man`: `courier.1` on stdout, or one page per command written into `--dir`.
pub fn man(ctx: &Ctx, args: &ManArgs) -> Result<()> {
    let failed =
        |e: std::io::Error| CourierError::Other(format!("cannot write the man pages: {e}"));
    match &args.dir {
        None => ctx
            .out
            .bytes(&cli::man_page(Cli::command()).map_err(failed)?),
        Some(dir) => {
            let written = cli::write_man_pages(Cli::command(), "courier", dir).map_err(|e| {
                failed(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", dir.display()),
                ))
            })?;
            ctx.out.line(&format!(
                "Wrote {} man pages to {}.",
                written.len(),
                dir.display()
            ));
        }
    }
    Ok(())
}
