//! The wrong file says so: a keys tarball, a key file, a backup sheet, a root.json or any
//! other JSON given where a transfer bundle is expected is named for what it is.
//!
//! A keys tarball (or anything holding a private key) on the online machine is itself the
//! problem, so the message says it must not be there. Nothing of the file's content is ever
//! printed: only what kind of file it is (and, for metadata, its version).

use std::path::{Path, PathBuf};

use serde_json::Value;
use shared::archive;
use shared::bundle::{self, TransferBundle};
use shared::fsutil;

use crate::error::{CourierError, Result};

/// What a file given as a bundle turned out to be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotABundle {
    /// A gzip tar (or plain tar) in fioctl's keys layout (`tufrepo/keys/...`, `*.sec`).
    #[error(
        "this is a keys tarball, not a transfer bundle — and keys tarballs must never be carried to the \
         online machine: take it back to the offline machine and delete every copy on this one"
    )]
    KeysTarball,
    /// An age-encrypted file: how the signer keeps keys tarballs at rest (`*.tgz.age`).
    #[error(
        "this is an age-encrypted file (a passphrase-protected keys tarball, `*.tgz.age`), not a transfer \
         bundle — and keys tarballs must never be carried to the online machine: take it back to the \
         offline machine and delete every copy on this one"
    )]
    EncryptedKeys,
    /// A paper backup or Shamir share sheet of `signer keys print` / `signer keys split`.
    #[error(
        "this is a key backup sheet (`signer keys print` or `signer keys split`), not a transfer bundle — it \
         holds a private key or a share of one and must never be on the online machine: take it back to \
         the offline machine and delete every copy on this one"
    )]
    KeySheet,
    /// A private key in fioctl's key JSON.
    #[error(
        "this is a private key file, not a transfer bundle — private keys must never be carried to the \
         online machine: take it back to the offline machine and delete every copy on this one"
    )]
    PrivateKey,
    /// A public key in fioctl's key JSON.
    #[error("this is a public key file, not a transfer bundle")]
    PublicKey,
    /// TUF metadata (`_type` Root or Targets).
    #[error(
        "this is TUF {kind} metadata (version {version}), not a transfer bundle: give the response bundle \
         the signer wrote (`signer ... -o FILE`)"
    )]
    Metadata {
        /// `root` or `targets`.
        kind: &'static str,
        /// Its `signed.version` (0 when absent).
        version: u64,
    },
    /// The Factory API's transaction state (`GET root/updates`).
    #[error(
        "this is a root updates transaction state (what `GET root/updates` answers), not a transfer bundle"
    )]
    TransactionState,
    /// Any other JSON.
    #[error(
        "this is a JSON file, not a transfer bundle (bundles are tar archives that `courier` and `signer` \
         write, `*.tufbundle`)"
    )]
    Json,
}

/// Reads a transfer bundle from `path`; a file that is something else is named for what it
/// is ([`NotABundle`]), other damage is reported with the bundle reader's reason.
pub fn read_bundle(path: &Path) -> Result<TransferBundle> {
    let unreadable =
        |e: &dyn std::fmt::Display| CourierError::Bundle(format!("{}: {e}", path.display()));
    // The file system's errors name the file already.
    let read = || {
        fsutil::read_limited(path, bundle::MAX_FILE_SIZE)
            .map_err(|e| CourierError::Bundle(e.to_string()))
    };
    let bytes = read()?;
    if let Some(what) = identify(&bytes) {
        return Err(wrong_file(path, what));
    }
    match TransferBundle::from_vec(bytes) {
        Ok(b) => Ok(b),
        Err(e) => {
            // Only now (the bundle reader refused it) look inside the archive.
            if is_keys_archive(&read()?) {
                Err(wrong_file(path, NotABundle::KeysTarball))
            } else {
                Err(unreadable(&e))
            }
        }
    }
}

fn wrong_file(path: &Path, what: NotABundle) -> CourierError {
    CourierError::WrongFile {
        path: PathBuf::from(path),
        what,
    }
}

/// What `bytes` are, when that is clear without reading them as an archive: age files,
/// backup sheets and JSON. `None` for everything else (archives included).
pub fn identify(bytes: &[u8]) -> Option<NotABundle> {
    if bytes.starts_with(b"age-encryption.org/")
        || bytes.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
    {
        return Some(NotABundle::EncryptedKeys);
    }
    let text_start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    match bytes[text_start] {
        b'{' | b'[' => Some(identify_json(bytes)),
        _ if looks_like_sheet(bytes) => Some(NotABundle::KeySheet),
        _ => None,
    }
}

/// A paper sheet or share sheet: text whose lines carry the `OTK1` QR payloads.
fn looks_like_sheet(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1 << 20)];
    std::str::from_utf8(head).is_ok_and(|t| t.lines().any(|l| l.trim_start().starts_with("OTK1 ")))
}

fn identify_json(bytes: &[u8]) -> NotABundle {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return NotABundle::Json;
    };
    if let Some(keyval) = v.get("keyval") {
        return if keyval.get("private").is_some() {
            NotABundle::PrivateKey
        } else {
            NotABundle::PublicKey
        };
    }
    if let Some(signed) = v.get("signed") {
        let version = signed.get("version").and_then(Value::as_u64).unwrap_or(0);
        match signed.get("_type").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case("root") => {
                return NotABundle::Metadata {
                    kind: "root",
                    version,
                }
            }
            Some(t) if t.eq_ignore_ascii_case("targets") => {
                return NotABundle::Metadata {
                    kind: "targets",
                    version,
                }
            }
            _ => {}
        }
    }
    if v.get("status").is_some() && v.get("current").is_some() {
        return NotABundle::TransactionState;
    }
    NotABundle::Json
}

/// Whether `bytes` are a (gzip) tar whose members follow fioctl's keys layout: anything under
/// `tufrepo/keys/`, or a `*.sec` member. Only member names are looked at.
pub fn is_keys_archive(bytes: &[u8]) -> bool {
    match archive::read(bytes, &bundle::LIMITS) {
        Ok(members) => members
            .iter()
            .any(|m| m.name.starts_with(shared::tarball::KEYS_DIR) || m.name.ends_with(".sec")),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::archive::{Compression, MemberRef};

    #[test]
    fn names_what_is_not_a_bundle_without_showing_it() {
        assert_eq!(
            identify(b"age-encryption.org/v1\n-> scrypt abc\n"),
            Some(NotABundle::EncryptedKeys)
        );
        assert_eq!(
            identify(br#"{"keytype":"ED25519","keyval":{"private":"00aa"}}"#),
            Some(NotABundle::PrivateKey)
        );
        assert_eq!(
            identify(br#"{"keytype":"ED25519","keyval":{"public":"00aa"}}"#),
            Some(NotABundle::PublicKey)
        );
        assert_eq!(
            identify(br#" {"signatures":[],"signed":{"_type":"Root","version":4}}"#),
            Some(NotABundle::Metadata {
                kind: "root",
                version: 4
            })
        );
        assert_eq!(
            identify(br#"{"signed":{"_type":"Targets","version":12}}"#),
            Some(NotABundle::Metadata {
                kind: "targets",
                version: 12
            })
        );
        assert_eq!(
            identify(br#"{"status":"STARTED","current":{}}"#),
            Some(NotABundle::TransactionState)
        );
        assert_eq!(identify(b"[1,2]"), Some(NotABundle::Json));
        assert_eq!(identify(b"{not json"), Some(NotABundle::Json));
        assert_eq!(
            identify(b"Factory acme\n 1  3f2a  ok\nOTK1 SHARE 3f2a 1/2 ABCD\n"),
            Some(NotABundle::KeySheet)
        );
        assert_eq!(identify(b"\x1f\x8b\x08rest"), None);
        // The message names the kind only, never the secret.
        let msg = NotABundle::PrivateKey.to_string();
        assert!(!msg.contains("00aa"));
    }

    #[test]
    fn recognises_fioctl_keys_layout() {
        let keys = archive::write(
            &[
                MemberRef {
                    name: "tufrepo/keys/fioctl-root-ab.pub",
                    data: b"{}",
                    mode: 0o600,
                },
                MemberRef {
                    name: "tufrepo/keys/fioctl-root-ab.sec",
                    data: b"{}",
                    mode: 0o600,
                },
            ],
            Compression::Gzip,
        )
        .unwrap();
        assert!(is_keys_archive(&keys));
        let other = archive::write(
            &[MemberRef {
                name: "notes.txt",
                data: b"hello",
                mode: 0o644,
            }],
            Compression::Gzip,
        )
        .unwrap();
        assert!(!is_keys_archive(&other));
        assert!(!is_keys_archive(b"not an archive"));
    }
}
