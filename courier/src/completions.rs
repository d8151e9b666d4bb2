//! `courier completions SHELL` and `courier man`: generated from the clap definition, so
//! they always match the real command line.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{CourierError, Result};

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "courier", &mut buf);
    std::io::stdout()
        .write_all(&buf)
        .map_err(|e| CourierError::Other(format!("cannot write to stdout: {e}")))
}

/// Renders the man page of `cmd` in roff.
fn render(cmd: clap::Command) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .map_err(|e| CourierError::Other(format!("cannot render the man page: {e}")))?;
    Ok(buf)
}

/// Prints `courier.1` on stdout, or writes one page per command into `dir`
/// (`courier.1`, `courier-updates.1`, `courier-updates-push.1`, ...).
pub fn man(dir: Option<&Path>) -> Result<()> {
    let mut cmd = Cli::command();
    cmd.build();
    match dir {
        None => std::io::stdout()
            .write_all(&render(cmd)?)
            .map_err(|e| CourierError::Other(format!("cannot write to stdout: {e}"))),
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| CourierError::io("cannot create directory", dir, e))?;
            let mut written = Vec::new();
            write_pages(&cmd, "courier", dir, &mut written)?;
            crate::out(&format!(
                "Wrote {} man pages to {}.",
                written.len(),
                dir.display()
            ));
            Ok(())
        }
    }
}

fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<String>,
) -> Result<()> {
    let page = cmd.clone().name(name.to_string());
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, render(page)?).map_err(|e| CourierError::io("cannot write", &path, e))?;
    written.push(name.to_string());
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut cmd = Cli::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "courier", &mut buf);
            let text = String::from_utf8(buf).unwrap();
            assert!(text.contains("rotate-offline-key"), "{shell}");
        }
    }

    #[test]
    fn man_pages_cover_every_command() {
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
        let main = String::from_utf8(render(Cli::command()).unwrap()).unwrap();
        assert!(main.contains("Exit codes"));
    }
}
