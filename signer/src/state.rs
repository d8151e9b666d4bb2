//! The signer's state directory on the offline machine.
//!
//! Chosen, in this order, by `--state DIR`, the environment variable `SIGNER_HOME`,
//! `$XDG_DATA_HOME/offline-tuf-signer`, or `~/.local/share/offline-tuf-signer`. It is created
//! with mode 0700 on first use. Layout:
//!
//! ```text
//! trust/<factory>.json    the pinned trusted root of a factory (see `trust`)
//! trust/_any.json         a pin made without --factory (used for any factory without its own pin)
//! identity / audit files  owned by the identity and audit modules
//! ```
//!
//! The keys tarballs are **not** kept here: they are files the person names with
//! `--keys`/`--targets-keys`, typically on removable media.

use std::path::{Path, PathBuf};

use crate::error::{Result, SignerError};

/// Environment variable naming the state directory.
pub const STATE_ENV: &str = "SIGNER_HOME";

/// Directory name under the XDG data directory.
pub const APP_DIR: &str = "offline-tuf-signer";

/// The signer state directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// A state directory at `path` (not created yet).
    pub fn at(path: impl Into<PathBuf>) -> StateDir {
        StateDir { root: path.into() }
    }

    /// Resolves the directory from the `--state` flag (which clap already fills from
    /// `SIGNER_HOME`) or the XDG defaults.
    pub fn resolve(flag: Option<&Path>) -> Result<StateDir> {
        if let Some(p) = flag {
            return Ok(StateDir::at(p));
        }
        default_dir(
            std::env::var_os(STATE_ENV).map(PathBuf::from),
            std::env::var_os("XDG_DATA_HOME").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )
        .map(StateDir::at)
        .ok_or_else(|| {
            SignerError::Usage(
                "cannot find a state directory: set --state DIR or SIGNER_HOME (HOME is not set)"
                    .into(),
            )
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// A file directly under the state directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The directory holding trust pins.
    pub fn trust_dir(&self) -> PathBuf {
        self.root.join("trust")
    }

    /// Creates the state directory (0700) and its `trust/` subdirectory if missing.
    pub fn ensure(&self) -> Result<()> {
        create_private_dir(&self.root)?;
        create_private_dir(&self.trust_dir())
    }
}

fn default_dir(
    signer_home: Option<PathBuf>,
    xdg: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    if let Some(p) = signer_home.filter(|p| !p.as_os_str().is_empty()) {
        return Some(p);
    }
    if let Some(x) = xdg.filter(|p| p.is_absolute()) {
        return Some(x.join(APP_DIR));
    }
    home.filter(|p| !p.as_os_str().is_empty())
        .map(|h| h.join(".local").join("share").join(APP_DIR))
}

/// Creates `dir` (and parents) with mode 0700 where it is created.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| SignerError::io("cannot create directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_order() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(default_dir(p("/s"), p("/x"), p("/h")), p("/s"));
        assert_eq!(
            default_dir(None, p("/x"), p("/h")),
            p("/x/offline-tuf-signer")
        );
        // A relative XDG_DATA_HOME is ignored, as the XDG spec says.
        assert_eq!(
            default_dir(None, p("rel"), p("/h")),
            p("/h/.local/share/offline-tuf-signer")
        );
        assert_eq!(default_dir(None, None, None), None);
    }

    #[test]
    fn ensure_creates_private_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::at(tmp.path().join("a/b"));
        s.ensure().unwrap();
        assert!(s.trust_dir().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(s.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        assert_eq!(s.file("audit.log"), tmp.path().join("a/b/audit.log"));
    }
}
