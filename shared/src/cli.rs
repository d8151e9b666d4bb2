//! What the two programs' command lines share (feature `cli`): the offline role argument
//! ([`OfflineRole`]), and shell completions and man pages generated from a program's clap
//! definition, so that both document their real command line the same way: `courier
//! completions SHELL` / `signer completions SHELL` and `courier man` / `signer man`; and the
//! memory allocator's set-up both run first ([`tune_allocator`]).

use std::path::{Path, PathBuf};

/// An offline role, as both programs take it (`--role root|targets`, any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OfflineRole {
    /// The root role (signs root.json).
    Root,
    /// The offline targets role (signs production and wave targets).
    Targets,
}

impl From<OfflineRole> for crate::metadata::Role {
    fn from(r: OfflineRole) -> crate::metadata::Role {
        match r {
            OfflineRole::Root => crate::metadata::Role::Root,
            OfflineRole::Targets => crate::metadata::Role::Targets,
        }
    }
}

/// Options of `completions` (both programs).
#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Options of `man` (both programs).
#[derive(Debug, Clone, clap::Args)]
pub struct ManArgs {
    /// Write the main page and one page per subcommand into this directory instead of
    /// printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `completions`: prints the script of `cmd` (installed as `bin`) for the shell on stdout.
pub fn print_completions(
    cmd: clap::Command,
    bin: &str,
    args: &CompletionsArgs,
) -> std::io::Result<()> {
    std::io::Write::write_all(
        &mut std::io::stdout(),
        &completion_script(cmd, bin, args.shell),
    )
}

/// `man`: prints the main page of `cmd` on stdout, or writes every page into `--dir` and
/// says how many.
pub fn print_or_write_man(cmd: clap::Command, bin: &str, args: &ManArgs) -> std::io::Result<()> {
    match &args.dir {
        None => std::io::Write::write_all(&mut std::io::stdout(), &man_page(cmd)?),
        Some(dir) => {
            let written = write_man_pages(cmd, bin, dir)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
            println!("Wrote {} man pages to {}.", written.len(), dir.display());
            Ok(())
        }
    }
}

/// The completion script of `cmd` (installed as `bin`) for `shell`.
pub fn completion_script(
    mut cmd: clap::Command,
    bin: &str,
    shell: clap_complete::Shell,
) -> Vec<u8> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, bin, &mut buf);
    buf
}

/// The man page of `cmd` in roff.
pub fn man_page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    Ok(buf)
}

/// Writes one man page per command into `dir` (`BIN.1`, `BIN-SUB.1`, `BIN-SUB-SUBSUB.1`, …),
/// each replaced atomically; returns the files written, in order.
pub fn write_man_pages(cmd: clap::Command, bin: &str, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut cmd = cmd;
    cmd.build();
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    write_pages(&cmd, bin, dir, &mut written)?;
    Ok(written)
}

fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let page = man_page(cmd.clone().name(name.to_string()))?;
    let path = dir.join(format!("{name}.1"));
    crate::fsutil::write_atomic(&path, &page, 0o644).map_err(std::io::Error::other)?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

/// Sets the C allocator up for what both programs do with documents: buffers of up to a
/// member's size (32 MiB) that live for one document and are freed on another thread. With
/// glibc's defaults, each such buffer above its dynamic threshold is a fresh `mmap` whose
/// pages the kernel zeroes on first touch, and the heap is trimmed back after each; measured
/// on the signer's re-signing of 213 MB of targets, that was a quarter of its time (system
/// time 1.2 s → 0.2 s with the thresholds below). The price is memory the heap keeps between
/// documents: the signer's peak RSS went from 29 to 35–40 MB at 213 MB of documents and from
/// 40 to 59 MB at 855 MB (BENCHMARKS.md). Call it first in `main`, before any thread starts.
/// Elsewhere than glibc it does nothing.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// Allocations up to this size come from the heap (glibc's largest allowed value).
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        /// Free memory at the top of the heap is returned to the system beyond this.
        const TRIM_THRESHOLD: libc::c_int = 16 << 20;
        // SAFETY: `mallopt` only sets parameters of the allocator; called before any other
        // thread exists, so no allocation races with the change. A refused value (0) leaves
        // glibc's default, which is correct, only slower.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> clap::Command {
        clap::Command::new("demo")
            .about("A demo program")
            .subcommand(
                clap::Command::new("alpha")
                    .about("First")
                    .subcommand(clap::Command::new("deep").about("Nested")),
            )
            .subcommand(clap::Command::new("beta").about("Second"))
    }

    #[test]
    fn every_shell_gets_a_script_naming_the_subcommands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let text = String::from_utf8(completion_script(demo(), "demo", shell)).unwrap();
            assert!(text.contains("alpha") && text.contains("beta"), "{shell}");
        }
    }

    #[test]
    fn one_page_per_command() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(demo(), "demo", dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["demo.1", "demo-alpha.1", "demo-alpha-deep.1", "demo-beta.1"]
        );
        let page = std::fs::read_to_string(&written[1]).unwrap();
        assert!(page.contains(".TH") && page.contains("First"), "{page}");
    }
}
