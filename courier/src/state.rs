//! The courier's state directory: copies and records of the request bundles it wrote, the
//! txid of transactions it started, and the age-encrypted initial root key of a first-time
//! transaction until it is applied or canceled.
//!
//! A kept copy is an extra check, not a requirement: when a response comes back to the
//! machine that wrote its request, `courier updates push` compares the response's request
//! part with it ([`crate::push::response`]); any online machine can push. What is kept is
//! the request's manifest: it lists every member's size and SHA-256 digest, so comparing
//! it is comparing the members byte for byte, without a second copy of a bundle that can
//! be a gigabyte (earlier versions kept the whole bundle, `<sha256>.tufbundle`; such copies
//! are still read).
//!
//! Layout under the state directory (every file written by [`keep`]: atomically, through
//! `shared::fsutil`, mode 0600):
//!
//! ```text
//! requests/<sha256 of the request>.json       one RequestRecord per request bundle written
//! requests/<sha256 of the request>.manifest.json  its manifest.json, as written in the bundle
//! transactions/<factory>.json                 the txid returned by the last `init` of this courier
//! secrets/<factory>.first-root.{sec.age,pub}  the initial root key, encrypted to the signer
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shared::bundle::TransferBundle;

use crate::error::{CourierError, Result};

/// Extension of a kept request manifest.
const MANIFEST_EXT: &str = "manifest.json";

/// What is kept of a request bundle written here ([`StateStore::request_copy`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeptRequest {
    /// Its manifest (what this version keeps).
    Manifest(PathBuf),
    /// The whole bundle (what earlier versions kept).
    Bundle(PathBuf),
}

/// Unix mode of every file the courier keeps (readable by the owner only).
pub const PRIVATE_MODE: u32 = 0o600;

/// Keeps `bytes` in `path`, a file of the courier's own (state or config): its directory is
/// created if needed, then the file is replaced atomically by [`shared::fsutil::write_atomic`]
/// (temporary file in the same directory, fsync, rename, fsync of the directory), readable
/// by the owner only.
pub fn keep(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| CourierError::io("cannot create directory", dir, e))?;
    }
    Ok(shared::fsutil::write_atomic(path, bytes, PRIVATE_MODE)?)
}

/// What the courier remembers about a request bundle it wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Lower-case hex SHA-256 identifying the request (as responses name it).
    pub digest: String,
    /// The human fingerprint printed when it was written.
    pub fingerprint: String,
    /// Factory name.
    pub factory: String,
    /// Transaction id (empty when the request is not tied to a transaction, e.g. a wave).
    pub txid: String,
    /// What the request is for: `root-updates`, `prod-targets` or `wave`.
    pub purpose: String,
    /// The operations requested, as written in the manifest.
    pub operations: Vec<String>,
    /// Where the bundle was written.
    pub path: String,
    /// When it was written (RFC 3339).
    pub created_at: String,
    /// For `waves init` requests: what is needed to create the wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<WaveRecord>,
}

/// What `courier waves push` needs to know about a wave request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveRecord {
    /// Wave name.
    pub name: String,
    /// Version as typed (sent as a string).
    pub version: String,
    /// Production tag.
    pub tag: String,
    /// Expiry of the wave targets (RFC 3339).
    pub expires: String,
    /// Versions pruned.
    #[serde(default)]
    pub prune: Vec<String>,
    /// `--source-tag`, if given.
    #[serde(default)]
    pub source_tag: Option<String>,
    /// Whether every new target had static deltas.
    pub has_static_deltas: bool,
}

/// A txid remembered from `courier updates init` or `rotate-offline-key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionNote {
    /// Factory name.
    pub factory: String,
    /// Transaction id returned by the server.
    pub txid: String,
    /// When the transaction was started (RFC 3339).
    pub started_at: String,
    /// The changelog message.
    pub message: String,
}

/// The state directory.
#[derive(Clone, Debug)]
pub struct StateStore {
    dir: PathBuf,
}

/// Turns a factory name into a safe file name component.
fn file_component(name: &str) -> String {
    if !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        name.to_string()
    } else {
        format!("x-{}", hex::encode(name.as_bytes()))
    }
}

fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl StateStore {
    /// A store rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> StateStore {
        StateStore { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn request_path(&self, digest: &str) -> PathBuf {
        self.dir.join("requests").join(format!("{digest}.json"))
    }

    fn txn_path(&self, factory: &str) -> PathBuf {
        self.dir
            .join("transactions")
            .join(format!("{}.json", file_component(factory)))
    }

    /// Records a request bundle that was written.
    pub fn record_request(&self, rec: &RequestRecord) -> Result<()> {
        if !is_digest(&rec.digest) {
            return Err(CourierError::Other(format!(
                "invalid request digest {:?}",
                rec.digest
            )));
        }
        let bytes =
            serde_json::to_vec_pretty(rec).map_err(|e| CourierError::Other(e.to_string()))?;
        keep(&self.request_path(&rec.digest), &bytes)
    }

    fn request_copy_path(&self, digest: &str, ext: &str) -> PathBuf {
        self.dir.join("requests").join(format!("{digest}.{ext}"))
    }

    /// Keeps the manifest of a request bundle written here (so that a response can be
    /// checked against it).
    pub fn save_request_manifest(&self, bundle: &TransferBundle) -> Result<()> {
        let path = self.request_copy_path(&bundle.digest().to_string(), MANIFEST_EXT);
        keep(&path, bundle.manifest_bytes())
    }

    /// What is kept of the request with this digest, if anything: its manifest, or the
    /// whole bundle an earlier version kept.
    pub fn request_copy(&self, digest: &str) -> Option<KeptRequest> {
        if !is_digest(digest) {
            return None;
        }
        let manifest = self.request_copy_path(digest, MANIFEST_EXT);
        if manifest.is_file() {
            return Some(KeptRequest::Manifest(manifest));
        }
        Some(self.request_copy_path(digest, "tufbundle"))
            .filter(|p| p.is_file())
            .map(KeptRequest::Bundle)
    }

    /// The record of the request with this digest, if this courier wrote it.
    pub fn find_request(&self, digest: &str) -> Result<Option<RequestRecord>> {
        if !is_digest(digest) {
            return Ok(None);
        }
        let path = self.request_path(digest);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                CourierError::Config(format!("corrupt request record {}: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CourierError::io("cannot read", &path, e)),
        }
    }

    /// Remembers the txid of a transaction this courier started.
    pub fn save_transaction(&self, note: &TransactionNote) -> Result<()> {
        let bytes =
            serde_json::to_vec_pretty(note).map_err(|e| CourierError::Other(e.to_string()))?;
        keep(&self.txn_path(&note.factory), &bytes)
    }

    /// The remembered transaction of `factory`, if any.
    pub fn transaction(&self, factory: &str) -> Result<Option<TransactionNote>> {
        let path = self.txn_path(factory);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CourierError::io("cannot read", &path, e)),
        }
    }

    fn secret_path(&self, factory: &str, ext: &str) -> PathBuf {
        self.dir
            .join("secrets")
            .join(format!("{}.first-root.{ext}", file_component(factory)))
    }

    /// Keeps the age-encrypted initial root key (and its public half) of a first-time
    /// transaction until it is pulled into a request bundle. Only ciphertext is stored.
    pub fn save_first_root(&self, factory: &str, sec_age: &[u8], public: &[u8]) -> Result<()> {
        keep(&self.secret_path(factory, "sec.age"), sec_age)?;
        keep(&self.secret_path(factory, "pub"), public)
    }

    /// The stored encrypted initial root key and its public half, if any.
    pub fn first_root(&self, factory: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let sec = self.secret_path(factory, "sec.age");
        let public = self.secret_path(factory, "pub");
        match (std::fs::read(&sec), std::fs::read(&public)) {
            (Ok(s), Ok(p)) => Ok(Some((s, p))),
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            (Err(e), _) => Err(CourierError::io("cannot read", &sec, e)),
            (_, Err(e)) => Err(CourierError::io("cannot read", &public, e)),
        }
    }

    /// Removes the stored initial root key files of `factory`.
    pub fn clear_first_root(&self, factory: &str) -> Result<()> {
        for ext in ["sec.age", "pub"] {
            let path = self.secret_path(factory, ext);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(CourierError::io("cannot remove", &path, e)),
            }
        }
        Ok(())
    }

    /// Forgets the remembered transaction of `factory` (after apply or cancel).
    pub fn clear_transaction(&self, factory: &str) -> Result<()> {
        let path = self.txn_path(factory);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CourierError::io("cannot remove", &path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_recorded_and_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state"));
        let rec = RequestRecord {
            digest: "ab".repeat(32),
            fingerprint: "ABCD-EFGH".into(),
            factory: "acme".into(),
            txid: "tx1".into(),
            purpose: "root-updates".into(),
            operations: vec!["rotate-root-key".into()],
            path: "/tmp/req.tufbundle".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            wave: None,
        };
        store.record_request(&rec).unwrap();
        // A whole bundle kept by an earlier version is found; a manifest kept by this one
        // is preferred.
        let bundle_path = store.request_copy_path(&rec.digest, "tufbundle");
        keep(&bundle_path, b"bundle").unwrap();
        assert_eq!(
            store.request_copy(&rec.digest),
            Some(KeptRequest::Bundle(bundle_path))
        );
        let manifest_path = store.request_copy_path(&rec.digest, MANIFEST_EXT);
        keep(&manifest_path, b"{}").unwrap();
        assert_eq!(
            store.request_copy(&rec.digest),
            Some(KeptRequest::Manifest(manifest_path))
        );
        assert_eq!(store.request_copy(&"cd".repeat(32)), None);
        assert_eq!(store.request_copy("../../etc/passwd"), None);
        assert_eq!(store.find_request(&rec.digest).unwrap(), Some(rec.clone()));
        assert_eq!(store.find_request(&"cd".repeat(32)).unwrap(), None);
        assert_eq!(store.find_request("../../etc/passwd").unwrap(), None);
        let bad = RequestRecord {
            digest: "nope".into(),
            ..rec
        };
        assert!(store.record_request(&bad).is_err());
    }

    #[test]
    fn transactions_are_remembered_per_factory() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        assert_eq!(store.transaction("acme").unwrap(), None);
        let note = TransactionNote {
            factory: "acme".into(),
            txid: "tx".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            message: "m".into(),
        };
        store.save_transaction(&note).unwrap();
        assert_eq!(store.transaction("acme").unwrap(), Some(note));
        assert_eq!(store.transaction("other").unwrap(), None);
        store.clear_transaction("acme").unwrap();
        store.clear_transaction("acme").unwrap();
        assert_eq!(store.transaction("acme").unwrap(), None);
        assert_eq!(file_component("../x"), format!("x-{}", hex::encode("../x")));
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/c.json");
        keep(&p, b"one").unwrap();
        keep(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
    }
}
