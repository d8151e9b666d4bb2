//! `signer keys drill`: proves that a backup of the root key works, without touching it.
//!
//! The backup — a copy of the keys tarball, an exported key file, a paper sheet, or Shamir
//! share sheets — is restored into a keys tarball in a fresh temporary directory (mode 0700,
//! removed afterwards); the active root key is looked up there against the factory's
//! **current** root, which comes from a request bundle (verified from the pinned root like
//! every bundle, which advances the pin) or from the root pinned on this machine (refused when
//! the pin may lag behind a root this signer signed, like the other `keys` commands); a throwaway draft of the next root
//! version is signed with it and the signature verified against the current root's root
//! keys. The draft is discarded, nothing is written outside the temporary directory, and the
//! backup itself is only read (a tarball is copied first and the copy opened). A passed drill
//! is recorded in the audit log (`backup-drilled`).

use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};
use shared::fsutil;
use shared::keys::PrivateKey;
use shared::metadata::{Role, SignedRoot, Timestamp};
use shared::tarball::KeysTarball;
use shared::{transform, verify};

use super::files::add_restored_key;
use super::reference::{ReferenceRoot, RootArgs};
use super::{paper, split, tarball_err, KeysError};
use crate::audit::{self, AuditEvent};
use crate::ctx::Ctx;
use crate::error::SignerError;
use crate::keystore::{self, PassphraseArgs, PassphraseSource};
use crate::state::StateDir;
use crate::{session, trust};

/// Largest exported key file read.
const MAX_KEY_FILE: u64 = 1024 * 1024;

/// Options of `signer keys drill`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("backup").required(true).args(["keys", "key_file", "sheet", "shares"])))]
#[command(group(ArgGroup::new("against").args(["bundle", "factory"])))]
pub struct DrillArgs {
    /// A copy of the keys tarball (as written by `keys backup`; *.tgz.age is decrypted).
    #[arg(long, value_name = "TARBALL")]
    pub keys: Option<PathBuf>,
    /// An exported root key file (`keys export-root`).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// A paper sheet (`keys print`), typed lines or scanned QR texts.
    #[arg(long, value_name = "SHEET")]
    pub sheet: Option<PathBuf>,
    /// Share sheets (`keys split`), at least the threshold of them.
    #[arg(long, value_name = "SHEET", num_args = 1..)]
    pub shares: Vec<PathBuf>,
    /// A request bundle from the courier: its current root (verified from the root pinned
    /// on this machine, which advances to it) is the factory's current root.
    #[arg(long, value_name = "BUNDLE")]
    pub bundle: Option<PathBuf>,
    /// Without --bundle: the factory whose pinned root to use (needed only when roots of
    /// several factories are pinned here). The pin may be older than the factory's current
    /// root; a fresh bundle is better.
    #[arg(long, value_name = "NAME")]
    pub factory: Option<String>,
    /// Passphrase options for an encrypted tarball copy.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// Why a drill failed. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// Restoring or reading failed.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// Restoring from shares failed.
    #[error(transparent)]
    Shares(#[from] split::SplitError),
    /// The factory's current root could not be established (boxed: a [`SignerError`] holds
    /// a `DrillError`).
    #[error(transparent)]
    Trust(Box<SignerError>),
    /// The backup is not of this factory's active root key.
    #[error(
        "DRILL FAILED: {backup} holds none of the root keys of {factory}'s current root v{version} \
         ({keyids}): it is not a backup of this factory's active root key (another factory's, or \
         a key rotated out since)"
    )]
    WrongKey {
        /// The backup.
        backup: String,
        /// The factory.
        factory: String,
        /// Current root version.
        version: u64,
        /// Its root keyids (short).
        keyids: String,
    },
    /// The signature over the throwaway draft did not verify.
    #[error("DRILL FAILED: the signature of the restored key {keyid} over a draft root does not verify against the current root: {reason}")]
    Signature {
        /// The key.
        keyid: String,
        /// Why.
        reason: String,
    },
    /// Temporary directory or file problems.
    #[error("cannot use a temporary directory for the drill: {0}")]
    Temp(#[from] std::io::Error),
}

impl From<SignerError> for DrillError {
    fn from(e: SignerError) -> DrillError {
        DrillError::Trust(Box::new(e))
    }
}

impl DrillError {
    /// Whether the command line itself is wrong (exit status 2): only a usage error in
    /// finding the factory's current root (several pins and no `--factory`). Whatever the
    /// backup holds is a failed drill (exit status 1), even where the message of a restore
    /// would name a flag.
    pub fn is_usage(&self) -> bool {
        match self {
            DrillError::Trust(e) => e.is_usage(),
            DrillError::Keys(KeysError::Pin(e)) => e.is_usage(),
            _ => false,
        }
    }
}

/// What a passed drill showed.
#[derive(Debug)]
pub struct DrillReport {
    /// The factory.
    pub factory: String,
    /// The current root's version.
    pub version: u64,
    /// Where the current root came from.
    pub root_source: String,
    /// The restored key.
    pub keyid: shared::keys::KeyId,
    /// The current root's root threshold.
    pub threshold: u64,
    /// What the backup was.
    pub backup: String,
    /// The pin advanced to the bundle's current root.
    pub advanced: Option<trust::Advance>,
}

/// The factory's current root as the drill knows it.
struct Current {
    factory: String,
    root: SignedRoot,
    source: String,
    advanced: Option<trust::Advance>,
    /// The pinned root, when it is the current root used (not a bundle's).
    pinned: Option<ReferenceRoot>,
}

/// The factory's current root: from the bundle (chain verified from the pin, which advances
/// to it) or the pin ([`trust::default_pin`]).
fn current_root(a: &DrillArgs, state: &StateDir, now: &Timestamp) -> Result<Current, DrillError> {
    if let Some(b) = &a.bundle {
        let loaded = session::load(b)?;
        // Expiry does not matter for a drill: the key must work whatever the date.
        let trusted = session::trust(&loaded, state, now, true)?;
        return Ok(Current {
            factory: loaded.bundle.factory().to_string(),
            root: loaded.tx.current_ci.clone(),
            source: format!("the bundle {}", b.display()),
            advanced: trusted.advanced,
            pinned: None,
        });
    }
    let reference = ReferenceRoot::resolve(
        state.path(),
        &RootArgs {
            root: None,
            factory: a.factory.clone(),
        },
    )?;
    Ok(Current {
        factory: reference.memory.as_ref().map_or_else(
            || {
                a.factory
                    .clone()
                    .unwrap_or_else(|| "the pinned factory".to_string())
            },
            |m| m.factory.clone(),
        ),
        root: reference.root.clone(),
        source: reference.source.clone(),
        advanced: None,
        pinned: Some(reference),
    })
}

/// Restores the backup into a tarball at `into` (a temporary directory); returns it opened
/// and a description of the backup.
fn restore_into(a: &DrillArgs, dir: &Path) -> Result<(PathBuf, KeysTarball, String), DrillError> {
    let plain = PassphraseSource::auto(None);
    let restored = dir.join("drill.keys.tgz");
    if let Some(src) = &a.keys {
        // Open a copy: the real file is only read.
        let name = src
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| "copy.tgz".into());
        let copy = dir.join(name);
        std::fs::copy(src, &copy)?;
        let t = keystore::open(&copy, &a.passphrase.source()).map_err(KeysError::from)?;
        return Ok((copy, t, format!("the tarball copy {}", src.display())));
    }
    let what = if let Some(f) = &a.key_file {
        let bytes = zeroize::Zeroizing::new(
            fsutil::read_limited(f, MAX_KEY_FILE).map_err(KeysError::from)?,
        );
        let key = PrivateKey::from_json(&bytes).map_err(|e| KeysError::Root {
            path: f.clone(),
            reason: format!("not a private key file ({e})"),
        })?;
        add_restored_key(&key, &restored, Role::Root, &plain)?;
        format!("the key file {}", f.display())
    } else if let Some(s) = &a.sheet {
        paper::restore(s, None, &restored, Role::Root, &plain)?;
        format!("the paper sheet {}", s.display())
    } else {
        let (key, _) = split::rebuild(&a.shares, None)?;
        add_restored_key(&key, &restored, Role::Root, &plain)?;
        format!(
            "the share sheets {}",
            a.shares
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let t = keystore::open(&restored, &plain).map_err(KeysError::from)?;
    Ok((restored, t, what))
}

/// Runs the drill (see the module documentation).
pub fn drill(a: &DrillArgs, state: &StateDir, now: &Timestamp) -> Result<DrillReport, DrillError> {
    let Current {
        factory,
        root: current,
        source: root_source,
        advanced,
        pinned,
    } = current_root(a, state, now)?;
    let tmp = tempfile::Builder::new().prefix("signer-drill-").tempdir()?;
    let (restored, tarball, backup) = restore_into(a, tmp.path())?;
    if let Some(reference) = &pinned {
        // Messages name the backup as the person gave it, not the temporary copy.
        reference.check_not_lagging(Path::new(&backup), &tarball)?;
    }
    let ids = current.signed.role_keyids(Role::Root).to_vec();
    let found = match tarball.find_one_signer(&current.signed, &ids) {
        Ok(f) => f,
        Err(e) if e.is_not_found() => {
            return Err(DrillError::WrongKey {
                backup,
                factory,
                version: current.signed.version,
                keyids: ids.iter().map(|k| k.short()).collect::<Vec<_>>().join(", "),
            })
        }
        Err(e) => return Err(tarball_err(&restored)(e).into()),
    };
    // A throwaway draft of the next version, signed by the restored key only.
    let mut draft = current.clone();
    draft.signatures.clear();
    draft.signed.version += 1;
    draft.signed.expires = transform::one_year_after(now);
    let signed =
        transform::sign_root(&draft, &[&found.key]).map_err(|e| DrillError::Signature {
            keyid: found.keyid.to_string(),
            reason: e.to_string(),
        })?;
    let msg = signed
        .canonical_signed()
        .map_err(|e| DrillError::Signature {
            keyid: found.keyid.to_string(),
            reason: e.to_string(),
        })?;
    let report = verify::signature_report(&current.signed, Role::Root, &msg, &signed.signatures);
    if !report.valid.contains(&found.keyid) {
        return Err(DrillError::Signature {
            keyid: found.keyid.to_string(),
            reason: report
                .ignored
                .iter()
                .map(|(_, why)| why.clone())
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    drop(tarball);
    tmp.close()?;
    Ok(DrillReport {
        factory,
        version: current.signed.version,
        root_source,
        keyid: found.keyid,
        threshold: report.threshold,
        backup,
        advanced,
    })
}

/// Runs `signer keys drill` at the run's time, printing the result; a passed drill is
/// recorded in the audit log.
pub fn run(ctx: &mut Ctx<'_>, a: &DrillArgs) -> Result<DrillReport, SignerError> {
    audit::verify(ctx.state.path())?;
    let r = drill(a, &ctx.state, &ctx.now)?;
    if let Some(advance) = &r.advanced {
        ctx.ui.line(advance.line());
    }
    audit::record(
        ctx.state.path(),
        &ctx.now,
        AuditEvent::BackupDrilled {
            keyid: r.keyid.clone(),
            backup: r.backup.clone(),
            factory: r.factory.clone(),
            root_version: r.version,
        },
    )?;
    ctx.ui.line(format!(
        "Drill passed: restored {} in a temporary directory; its key {} is a root key of {}'s \
         current root v{} (from {}).",
        r.backup, r.keyid, r.factory, r.version, r.root_source
    ));
    ctx.ui.line(format!(
        "A throwaway draft root v{} signed with it verifies against the current root (root \
         threshold {}). The draft and the temporary directory were discarded; the backup was \
         only read.",
        r.version + 1,
        r.threshold
    ));
    Ok(r)
}
