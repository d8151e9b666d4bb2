//! [`BundleError`]: everything that can go wrong building, reading, answering and combining
//! transfer bundles, one variant per kind of refusal, each naming the member or the value at
//! fault. Every other module of [`crate::bundle`] returns it.

use std::fmt;

use serde_json::Value;

use super::schema::Sha256Digest;
use super::FORMAT_VERSION;
use crate::archive::ArchiveError;
use crate::fsutil::FsError;

/// Errors of building, reading and combining bundles.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The archive layer refused the file (callers name the file).
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The bundle file could not be read or written (the message names the file).
    #[error(transparent)]
    File(#[from] FsError),
    /// Not a bundle at all.
    #[error("not an offline TUF bundle: {0}")]
    NotABundle(String),
    /// A format version this code does not know.
    #[error("bundle format version {found} is not supported (this program reads versions 1 and {FORMAT_VERSION}); use a matching version of the toolkit")]
    UnsupportedVersion {
        /// Version found in the manifest.
        found: Value,
    },
    /// A kind other than request/response.
    #[error("unknown bundle kind {0}; expected \"request\" or \"response\"")]
    UnknownKind(Value),
    /// The manifest does not match the format.
    #[error("manifest.json: {0}")]
    Manifest(String),
    /// The manifest checksum does not match its content.
    #[error("manifest.json: checksum mismatch (the file is damaged or was edited)")]
    ManifestChecksum,
    /// The archive differs from the canonical encoding of its content.
    #[error("the bundle is not in canonical form ({0}); the file is damaged or was altered")]
    NotCanonical(String),
    /// A member is not listed in the manifest.
    #[error("member {0} is not listed in manifest.json")]
    UnlistedMember(String),
    /// A listed member is missing.
    #[error("member {0} is listed in manifest.json but missing from the bundle")]
    MissingMember(String),
    /// A member name outside the bundle layout.
    #[error("member {0} is not part of the bundle layout")]
    UnexpectedMember(String),
    /// A member's size differs from the manifest.
    #[error("member {name}: size {actual} differs from {expected} in manifest.json")]
    SizeMismatch {
        /// Member name.
        name: String,
        /// Size in the manifest.
        expected: u64,
        /// Real size.
        actual: u64,
    },
    /// A member's digest differs from the manifest.
    #[error("member {name}: sha256 {actual} differs from {expected} in manifest.json (the file is damaged or was altered)")]
    DigestMismatch {
        /// Member name.
        name: String,
        /// Digest in the manifest.
        expected: Sha256Digest,
        /// Real digest.
        actual: Sha256Digest,
    },
    /// A member left in the bundle file read differently the second time: the medium
    /// changed (or lies) after the bundle was checked.
    #[error("member {name} of {path} changed after the bundle was checked (its sha256 no longer matches manifest.json): the medium is failing or was tampered with; nothing was signed or written from it; copy the bundle again from a trusted copy")]
    ChangedOnMedium {
        /// Member name.
        name: String,
        /// The file it is in.
        path: std::path::PathBuf,
    },
    /// Writing the bundle stream failed.
    #[error("cannot write the bundle: {0}")]
    Write(std::io::Error),
    /// A member's content is invalid.
    #[error("member {name}: {reason}")]
    Member {
        /// Member name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The content is inconsistent or an argument is invalid.
    #[error("invalid bundle: {0}")]
    Invalid(String),
    /// Two bundles do not belong together.
    #[error("the bundles do not belong together: {0}")]
    Mismatch(String),
    /// Two responses signed different content for the same document.
    #[error("cannot combine: the two responses changed {document} differently; each holder must sign the same content")]
    Conflict {
        /// Document (`ci-root`, `prod-root`, `prod-targets/<tag>`, `waves/<name>`).
        document: String,
    },
}

/// A [`BundleError::Member`] naming `name`.
pub(super) fn member_err(name: &str, reason: impl fmt::Display) -> BundleError {
    BundleError::Member {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}
