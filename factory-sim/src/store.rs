//! Crash-safe files: every state file is written with [`shared::fsutil`]'s atomic replace
//! (a temporary file in the same directory, `fsync`, `rename`, `fsync` of the directory — the
//! same code the courier and the signer write their files with), and targets documents live in
//! a content-addressed blob store.
//!
//! Every state change of a factory writes its new blobs first and then replaces
//! `factory.json` in one atomic rename: that rename is the commit point, so a crash leaves
//! either the old or the new state, never a mix. Blobs no longer referenced are deleted after
//! the commit (and orphans of an interrupted commit, with temporary files left by a write that
//! was cut short, are swept when the state is loaded).

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use shared::fsutil;

use super::error::SimError;

/// Permission bits of every state file: what `File::create` gave them under the usual umask
/// before the simulator wrote through `shared::fsutil` (which sets exact bits). The state
/// directory is the operator's own; API tokens in it are stored hashed.
pub(crate) const STATE_FILE_MODE: u32 = 0o644;

/// Creates `dir` (and its parents) if it does not exist yet.
pub(crate) fn create_dir(dir: &Path) -> Result<(), SimError> {
    fs::create_dir_all(dir).map_err(|e| SimError::io(format!("creating {}", dir.display()), e))
}

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Content-addressed storage: `<dir>/<sha256>.json`.
#[derive(Clone, Debug)]
pub(crate) struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    /// The blob store in `dir`.
    pub fn new(dir: PathBuf) -> Blobs {
        Blobs { dir }
    }

    /// The file of blob `digest`.
    pub fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.json"))
    }

    /// Stores `bytes` (durably) and returns their digest; an existing blob is kept.
    pub fn put(&self, bytes: &[u8]) -> Result<String, SimError> {
        let digest = sha256_hex(bytes);
        let path = self.path(&digest);
        if !path.exists() {
            create_dir(&self.dir)?;
            fsutil::write_atomic(&path, bytes, STATE_FILE_MODE)?;
        }
        Ok(digest)
    }

    /// Reads blob `digest`.
    pub fn get(&self, digest: &str) -> Result<Vec<u8>, SimError> {
        let path = self.path(digest);
        fs::read(&path).map_err(|e| SimError::io(format!("reading {}", path.display()), e))
    }

    /// Opens blob `digest` for streaming; returns the file and its length.
    pub fn open(&self, digest: &str) -> Result<(File, u64), SimError> {
        let path = self.path(digest);
        let ctx = || format!("opening {}", path.display());
        let file = File::open(&path).map_err(|e| SimError::io(ctx(), e))?;
        let len = file.metadata().map_err(|e| SimError::io(ctx(), e))?.len();
        Ok((file, len))
    }

    /// Deletes blob `digest` (missing is fine).
    pub fn remove(&self, digest: &str) {
        let _ = fs::remove_file(self.path(digest));
    }

    /// Deletes every blob (and stale temp file) whose digest is not in `keep`.
    pub fn sweep(&self, keep: &std::collections::BTreeSet<String>) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale = match name.strip_suffix(".json") {
                Some(d) if !name.starts_with('.') => !keep.contains(d),
                _ => name.ends_with(".tmp"),
            };
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_content_addressed_and_swept() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(dir.path().join("blobs"));
        let a = blobs.put(b"{\"a\":1}").unwrap();
        let b = blobs.put(b"{\"b\":2}").unwrap();
        assert_eq!(a, blobs.put(b"{\"a\":1}").unwrap());
        assert_eq!(blobs.get(&a).unwrap(), b"{\"a\":1}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(blobs.path(&a)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, STATE_FILE_MODE);
        }
        // What an atomic write cut short leaves (shared::fsutil's temporary file name).
        let leftover = dir
            .path()
            .join("blobs")
            .join(format!(".{a}.json.0123456789abcdef.tmp"));
        fs::write(&leftover, b"partial").unwrap();
        assert_eq!(
            fsutil::leftover_temp_files(blobs.path(&a)).unwrap(),
            vec![leftover.clone()]
        );
        blobs.sweep(&[a.clone()].into_iter().collect());
        assert!(blobs.path(&a).exists());
        assert!(!blobs.path(&b).exists());
        assert!(!leftover.exists());
    }
}
