//! Crash-safe files: atomic replace (temp file in the same directory, `fsync`, `rename`,
//! `fsync` of the directory) and a content-addressed blob store for targets documents.
//!
//! Every state change of a factory writes its new blobs first and then replaces
//! `factory.json` in one atomic rename: that rename is the commit point, so a crash leaves
//! either the old or the new state, never a mix. Blobs no longer referenced are deleted after
//! the commit (and orphans of an interrupted commit are swept when the state is loaded).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::error::SimError;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temp file name next to `path` that no other writer uses.
fn temp_path(path: &Path) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("file");
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// `fsync`s a directory so that a rename inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` atomically with the bytes `fill` writes (streamed through a buffer).
pub(crate) fn write_atomic_with<F>(path: &Path, fill: F) -> Result<(), SimError>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    let ctx = || format!("writing {}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| SimError::io(ctx(), e))?;
    let tmp = temp_path(path);
    let result = (|| -> io::Result<()> {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| SimError::io(ctx(), e))
}

/// Replaces `path` atomically with `bytes`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    write_atomic_with(path, |w| w.write_all(bytes))
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
            write_atomic(&path, bytes)?;
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
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn blobs_are_content_addressed_and_swept() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(dir.path().join("blobs"));
        let a = blobs.put(b"{\"a\":1}").unwrap();
        let b = blobs.put(b"{\"b\":2}").unwrap();
        assert_eq!(a, blobs.put(b"{\"a\":1}").unwrap());
        assert_eq!(blobs.get(&a).unwrap(), b"{\"a\":1}");
        blobs.sweep(&[a.clone()].into_iter().collect());
        assert!(blobs.path(&a).exists());
        assert!(!blobs.path(&b).exists());
    }
}
