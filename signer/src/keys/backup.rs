//! `signer keys backup --keys T --to DIR`: the whole keys file copied as it is (an
//! encrypted `*.tgz.age` stays encrypted), synced, dropped from the page cache, read back
//! from the medium and checked to be byte for byte the original and to open with the same
//! keys; a copy that fails the check is removed again.

use std::path::{Path, PathBuf};

use clap::Args;
use sha2::{Digest, Sha256};
use shared::fsutil::{self, FsError};
use shared::keys::KeyId;
use shared::tarball::KeysTarball;
use zeroize::Zeroizing;

use super::files::{first_difference, open_back, read_back, same_keys};
use super::{tarball_err, KeysError};
use crate::audit::{self, AuditEvent};
use crate::ctx::Ctx;
use crate::error::SignerError;
use crate::keystore::{self, PassphraseArgs, PassphraseSource};

/// Options of `signer keys backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The keys tarball to back up.
    #[arg(long, value_name = "TARBALL")]
    pub keys: PathBuf,
    /// The directory to copy it into (e.g. a mounted USB stick).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Passphrase options for encrypted tarballs (the copy is opened to check it).
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// What [`backup`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The copy.
    pub copy: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 (hex) of original and copy.
    pub sha256: String,
    /// Keyids in the tarball.
    pub keyids: Vec<KeyId>,
}

/// Checks that the file `copy` is byte-for-byte `original` and opens to the same keys as
/// `original_tarball`.
pub fn verify_copy(
    original: &[u8],
    original_tarball: &KeysTarball,
    copy: &Path,
    pass: &PassphraseSource,
) -> Result<(), KeysError> {
    let mismatch = |reason: String| KeysError::CopyMismatch {
        copy: copy.to_path_buf(),
        reason,
        action: "the copy was left in place; delete it and try another medium".to_string(),
    };
    let back = read_back(copy).map_err(mismatch)?;
    if let Some(reason) = first_difference(&back, original) {
        return Err(mismatch(reason));
    }
    let (_, copy_tarball) = open_back(copy, &back, pass).map_err(mismatch)?;
    if !same_keys(original_tarball, &copy_tarball, copy)? {
        return Err(mismatch("it opens to different keys".to_string()));
    }
    Ok(())
}

/// Copies the tarball `src` into `dir` (same file name), then verifies the copy
/// ([`verify_copy`]). A copy that fails verification is removed.
pub fn backup(src: &Path, dir: &Path, pass: &PassphraseSource) -> Result<BackupReport, KeysError> {
    if !dir.is_dir() {
        return Err(KeysError::NotADirectory {
            dir: dir.to_path_buf(),
        });
    }
    let name = src.file_name().ok_or_else(|| {
        KeysError::Fs(FsError::NotAFilePath {
            path: src.to_path_buf(),
        })
    })?;
    let copy = dir.join(name);
    if std::fs::symlink_metadata(&copy).is_ok() {
        return Err(KeysError::OutputExists { path: copy });
    }
    let original = Zeroizing::new(keystore::read_raw(src)?);
    // The original must be sound before it is worth copying.
    let tarball = keystore::open_bytes(src, &original, pass)?;
    let keyids = tarball
        .keys()
        .map_err(tarball_err(src))?
        .into_iter()
        .map(|k| k.keyid)
        .collect();
    fsutil::write_atomic_new(&copy, &original, shared::tarball::MODE).map_err(|e| match e {
        FsError::AlreadyExists { path } => KeysError::OutputExists { path },
        other => other.into(),
    })?;
    if let Err(e) = verify_copy(&original, &tarball, &copy, pass) {
        let _ = std::fs::remove_file(&copy);
        return Err(match e {
            KeysError::CopyMismatch { copy, reason, .. } => KeysError::CopyMismatch {
                copy,
                reason,
                action: "the bad copy was deleted; try another medium".to_string(),
            },
            other => other,
        });
    }
    Ok(BackupReport {
        copy,
        size: original.len() as u64,
        sha256: hex::encode(Sha256::digest(&original[..])),
        keyids,
    })
}

/// Runs `signer keys backup`: copies and verifies, records the backup in the audit log and
/// says what was checked.
pub fn run(ctx: &mut Ctx<'_>, a: &BackupArgs) -> Result<BackupReport, SignerError> {
    let state_dir = ctx.state.path();
    audit::verify(state_dir)?;
    let report = backup(&a.keys, &a.to, &a.passphrase.source())?;
    audit::record(
        state_dir,
        &ctx.now,
        AuditEvent::TarballBackedUp {
            source: a.keys.display().to_string(),
            copy: report.copy.display().to_string(),
            sha256: report.sha256.clone(),
        },
    )?;
    ctx.ui.line(format!(
        "Copied {} to {} ({} bytes, sha256 {}).",
        a.keys.display(),
        report.copy.display(),
        report.size,
        report.sha256
    ));
    ctx.ui.line(format!(
        "Verified: the copy was read back from the medium, is identical byte for byte \
         and opens with the same {} key(s):",
        report.keyids.len()
    ));
    for k in &report.keyids {
        ctx.ui.line(format!("  {k}"));
    }
    Ok(report)
}
