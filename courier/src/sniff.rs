//! The wrong file says so: a keys tarball, a key file, a backup sheet, a root.json or any
//! other JSON given where a transfer bundle is expected is named for what it is.
//!
//! A keys tarball (or anything holding a private key) on the online machine is itself the
//! problem, so the message says it must not be there. Nothing of the file's content is ever
//! printed: only what kind of file it is (and, for metadata, its version).

use std::path::{Path, PathBuf};

use shared::bundle::{self, TransferBundle};
use shared::filekind::{self, FileKind};

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
    /// TUF metadata (a root.json, targets metadata, …).
    #[error(
        "this is TUF {kind} metadata, not a transfer bundle: give the response bundle the signer \
         wrote (`signer ... -o FILE`)"
    )]
    Metadata {
        /// The `_type`, lower case (`root`, `targets`, …).
        kind: String,
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

/// Reads a transfer bundle from `path`; a file that is something else
/// ([`shared::filekind`]) is named for what it is ([`NotABundle`]), other damage is reported
/// with the bundle reader's reason.
pub fn read_bundle(path: &Path) -> Result<TransferBundle> {
    // Told from the file's first bytes; the bundle itself is read in one pass, its
    // documents left in the file (never the whole bundle in memory).
    if let Some(what) = filekind::sniff_file(path).and_then(not_a_bundle) {
        return Err(CourierError::WrongFile {
            path: PathBuf::from(path),
            what,
        });
    }
    TransferBundle::read(path).map_err(|e| match e {
        // The file system's errors name the file already.
        bundle::BundleError::File(e) => CourierError::Bundle(e.to_string()),
        e => CourierError::Bundle(format!("{}: {e}", path.display())),
    })
}

/// What to say about a file of `kind` given as a bundle; `None` when it may be one (its
/// reader says best what is wrong).
pub fn not_a_bundle(kind: FileKind) -> Option<NotABundle> {
    Some(match kind {
        FileKind::TransferBundle | FileKind::Tar => return None,
        FileKind::KeysTarball => NotABundle::KeysTarball,
        FileKind::Age => NotABundle::EncryptedKeys,
        FileKind::KeySheet => NotABundle::KeySheet,
        FileKind::PrivateKey => NotABundle::PrivateKey,
        FileKind::PublicKey => NotABundle::PublicKey,
        FileKind::Root => NotABundle::Metadata {
            kind: "root".into(),
        },
        FileKind::Metadata(t) => NotABundle::Metadata {
            kind: t.to_ascii_lowercase(),
        },
        FileKind::TransactionState => NotABundle::TransactionState,
        FileKind::Json => NotABundle::Json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::archive::{self, Compression, MemberRef};

    fn said(bytes: &[u8]) -> Option<NotABundle> {
        filekind::sniff(bytes).and_then(not_a_bundle)
    }

    #[test]
    fn names_what_is_not_a_bundle_without_showing_it() {
        assert_eq!(
            said(b"age-encryption.org/v1\n-> scrypt abc\n"),
            Some(NotABundle::EncryptedKeys)
        );
        assert_eq!(
            said(br#"{"keytype":"ED25519","keyval":{"private":"00aa"}}"#),
            Some(NotABundle::PrivateKey)
        );
        assert_eq!(
            said(br#" {"signatures":[],"signed":{"_type":"Root","version":4}}"#),
            Some(NotABundle::Metadata {
                kind: "root".into()
            })
        );
        assert_eq!(
            said(br#"{"status":"STARTED","current":{}}"#),
            Some(NotABundle::TransactionState)
        );
        assert_eq!(said(b"[1,2]"), Some(NotABundle::Json));
        assert_eq!(
            said(b"Factory acme\n 1  3f2a  ok\nOTK1 SHARE 3f2a 1/2 ABCD\n"),
            Some(NotABundle::KeySheet)
        );
        let keys = archive::write(
            &[MemberRef {
                name: "tufrepo/keys/fioctl-root-ab.sec",
                data: b"{}",
                mode: 0o600,
            }],
            Compression::Gzip,
        )
        .unwrap();
        assert_eq!(said(&keys), Some(NotABundle::KeysTarball));
        // The message names the kind only, never the secret.
        assert!(!NotABundle::PrivateKey.to_string().contains("00aa"));
    }
}
