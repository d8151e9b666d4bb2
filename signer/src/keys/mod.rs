//! `signer keys …`: looking after the offline keys files, one file per command group.
//!
//! | file | commands |
//! |---|---|
//! | [`list`] | `keys list`: keyids, roles, which are active, never private bytes |
//! | [`backup`] | `keys backup`: copy the tarball, read the copy back from the medium, compare |
//! | [`export`] | `keys export-root`: the active root private key as a plain fioctl key file |
//! | [`paper`] | `keys print` / `keys restore`: a paper sheet of the active root key, and back |
//! | [`split`] | `keys split` / `keys combine`: Shamir shares of the active root key, and back |
//! | [`drill`] | `keys drill`: restore any backup in a temporary directory and sign with it |
//! | [`at_rest`] | `keys encrypt` / `keys decrypt`: a keys file encrypted at rest, and back |
//! | [`crate::pkcs11`] | `keys generate`: a key pair on a PKCS#11 token |
//!
//! What several of them share lives once: [`reference`](mod@reference) (which root a keys
//! file is compared with — the pin or `--root` — and which key is *active*), [`sheet`] (the
//! paper sheet format of `print` and `split`) and [`files`] (secret files never written over
//! an existing one, read-back checks, adding a restored key to a tarball). Errors are
//! [`KeysError`] (and the per-command errors of `split`, `drill`, `at_rest`); every command
//! is `fn(&mut Ctx, &Args) -> Result<_, SignerError>`, printing through [`Ctx::ui`] and
//! recording what it did in the audit log at [`Ctx::now`].
//!
//! The three backups `offline-tuf-keys.rst` recommends, done carefully: a copy of the
//! tarball (`backup`), the active root key as a key file (`export-root`) or on paper
//! (`print`, restored by `restore`) — plus its Shamir shares (`split`, `combine`) and the
//! drill that proves any of them works.

pub mod at_rest;
pub mod backup;
pub mod drill;
pub mod export;
pub mod files;
pub mod list;
pub mod paper;
pub mod reference;
pub mod sheet;
pub mod split;

use std::path::{Path, PathBuf};

use clap::Subcommand;
use shared::fsutil::FsError;
use shared::keys::KeyId;
use shared::tarball::TarballError;

use crate::audit;
use crate::ctx::Ctx;
use crate::error::SignerError;
use crate::keystore::KeystoreError;
use export::EXPORT_FLAG;

/// Errors of the `keys` commands. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// Opening or saving a tarball failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// A tarball-level problem (key search, adding keys).
    #[error("{path}: {source}")]
    Tarball {
        /// The tarball.
        path: PathBuf,
        /// What went wrong (boxed: keeps this error small).
        source: Box<TarballError>,
    },
    /// File helper errors.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The root file could not be read or parsed.
    #[error("{path} is not a usable root.json: {reason}")]
    Root {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The tarball holds none of the root's root keys.
    #[error(
        "{tarball} holds none of the root keys of {root} ({}); use the tarball that holds the \
         current root key",
        .keyids.iter().map(KeyId::as_str).collect::<Vec<_>>().join(", ")
    )]
    NoActiveRootKey {
        /// The tarball.
        tarball: PathBuf,
        /// The root compared with ([`reference::ReferenceRoot::source`]).
        root: String,
        /// The root's root keyids.
        keyids: Vec<KeyId>,
    },
    /// The pinned root may be out of date: this signer signed a newer root whose root key the
    /// tarball holds.
    #[error(
        "the pinned root v{pinned} may be out of date: {tarball} holds root key {keyid}, which \
         this signer signed into root v{signed} and has not seen applied. If v{signed} was \
         applied, bring a request bundle to this machine (`signer inspect BUNDLE` advances the \
         pin), or give --root ROOT.json (the factory's current root, from `courier show-root`)"
    )]
    PinMayLag {
        /// The tarball.
        tarball: PathBuf,
        /// The pinned version.
        pinned: u64,
        /// The newer root version signed here.
        signed: u64,
        /// Its root key held in the tarball.
        keyid: KeyId,
    },
    /// The pin could not be used (none pinned, several, damaged).
    #[error(transparent)]
    Pin(Box<SignerError>),
    /// `export-root` without its confirmation flag.
    #[error(
        "export-root writes the active root PRIVATE key, unencrypted, to {out}; anyone who \
         reads that file can sign your factory's TUF root. Add {EXPORT_FLAG} to confirm"
    )]
    ExportNotConfirmed {
        /// The requested output.
        out: PathBuf,
    },
    /// An output file exists.
    #[error(
        "{path} already exists; refusing to overwrite it (choose another name or move it away)"
    )]
    OutputExists {
        /// The path.
        path: PathBuf,
    },
    /// The backup destination is not a directory.
    #[error("backup destination {dir} is not a directory (mount the backup medium or create the directory first)")]
    NotADirectory {
        /// The path given.
        dir: PathBuf,
    },
    /// A backup copy differs from the original.
    #[error(
        "the copy {copy} does not match the original: {reason}. The backup medium may be \
         faulty; {action}"
    )]
    CopyMismatch {
        /// The copy.
        copy: PathBuf,
        /// What differs.
        reason: String,
        /// What was done about it.
        action: String,
    },
    /// A paper sheet or groups file could not be used.
    #[error("{source_file}: {problem}")]
    Sheet {
        /// The sheet or groups file.
        source_file: PathBuf,
        /// What is wrong.
        problem: sheet::SheetError,
    },
    /// The restored key is already in the tarball.
    #[error("{tarball} already holds key {keyid} ({file}); nothing was changed")]
    AlreadyHeld {
        /// The tarball.
        tarball: PathBuf,
        /// The key.
        keyid: KeyId,
        /// The entry holding it.
        file: String,
    },
    /// Writing output failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The audit log refused the record.
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
}

impl KeysError {
    /// Whether the command line itself is wrong (exit status 2): `export-root` without its
    /// flag, a groups file without a `keyid:` line and no `--keyid`, or a usage error of the
    /// pin (several pinned, no `--factory`).
    pub fn is_usage(&self) -> bool {
        match self {
            KeysError::ExportNotConfirmed { .. } => true,
            KeysError::Sheet { problem, .. } => *problem == sheet::SheetError::NoKeyId,
            KeysError::Pin(e) => e.is_usage(),
            _ => false,
        }
    }
}

impl From<SignerError> for KeysError {
    fn from(e: SignerError) -> KeysError {
        KeysError::Pin(Box::new(e))
    }
}

/// Maps a tarball error about the keys file `path` into a [`KeysError`] naming it.
pub(crate) fn tarball_err(path: &Path) -> impl FnOnce(TarballError) -> KeysError + '_ {
    move |source| KeysError::Tarball {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

/// `signer keys …`: list, back up, export, print and restore offline keys; encrypt and
/// decrypt keys files at rest.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// List the keys in a keys tarball: keyids, types, roles, and which are active.
    ///
    /// Compared with the root pinned on this machine (or --root ROOT.json) and with the roots
    /// this signer signed: a key generated by a response that was never applied is marked
    /// as such. Never prints private key material.
    List(list::ListArgs),
    /// Encrypt a keys tarball at rest with a passphrase (age, scrypt): root.keys.tgz →
    /// root.keys.tgz.age.
    ///
    /// The passphrase is asked twice on a terminal (or --passphrase-file FILE, or
    /// SIGNER_KEYS_PASSPHRASE). The new file (mode 0600, never over an existing file) is
    /// written to a temporary file, synced and renamed, then read back and decrypted: it
    /// must hold exactly the bytes and keys of the source. The source is kept unless
    /// --remove-source is given (removed only after that check).
    Encrypt(at_rest::ConvertArgs),
    /// Decrypt a passphrase-encrypted keys tarball: root.keys.tgz.age → root.keys.tgz (the
    /// tarball fioctl reads).
    ///
    /// The plain file (mode 0600, never over an existing file) holds the private keys
    /// UNENCRYPTED. It is written to a temporary file, synced and renamed, then read back:
    /// it must hold exactly what the encrypted file held. The encrypted file is kept unless
    /// --remove-source is given.
    Decrypt(at_rest::ConvertArgs),
    /// Copy a keys tarball to backup media and verify the copy by reading it back.
    ///
    /// The copy keeps the file name (an encrypted *.tgz.age stays encrypted), is written
    /// with mode 0600 and synced, then read back from the medium and compared byte for
    /// byte; it must also open with the same keys. An existing file is never overwritten.
    Backup(backup::BackupArgs),
    /// Write the active root PRIVATE key as a plain key file (fioctl .sec JSON, mode 0600).
    ///
    /// Requires --i-understand-this-exports-a-private-key. The active key is the one the
    /// root pinned on this machine lists (or --root ROOT.json).
    ExportRoot(export::ExportRootArgs),
    /// Write a paper backup of the active root private key, for printing.
    ///
    /// The key is written as numbered lines of hex groups, each line with a check code, plus
    /// the keyid, key type and dates, and QR codes. Restore it with `signer keys restore`.
    /// The file (mode 0600) is as secret as the key: print it and delete it.
    Print(paper::PrintArgs),
    /// Rebuild a private key from a paper backup and add it to a keys tarball.
    ///
    /// Every line's check code is verified (a wrong line is reported by its number), the
    /// rebuilt key's keyid must equal the sheet's, and the pair is stored as
    /// tufrepo/keys/fioctl-<role>-<keyid>.{pub,sec}. The tarball is created if missing.
    Restore(paper::RestoreArgs),
    /// Create a key pair on a PKCS#11 token (YubiKey, Nitrokey, HSM): Ed25519 where the
    /// token supports it, else RSA-4096. Only the public key leaves the token; a later
    /// rotation with `--new-keys` naming the same `object=` uses it as the new key.
    Generate(crate::pkcs11::GenerateArgs),
    /// Split the active root key into printable Shamir shares: any K of N sheets restore it.
    ///
    /// One sheet per share (mode 0600, for printing), each with the factory, keyid, share
    /// number, threshold, numbered hex lines with a check code each and QR codes. Fewer than
    /// K sheets reveal nothing about the key. Restore with `signer keys combine`.
    Split(split::SplitArgs),
    /// Rebuild the root key from at least K share sheets into a keys tarball.
    ///
    /// Every line's check code is verified (a wrong line is reported with its sheet and
    /// number), sheets of another factory or another split are refused, and the rebuilt key
    /// must have the sheets' keyid.
    Combine(split::CombineArgs),
    /// Prove that a backup of the root key works, without touching it.
    ///
    /// Restores the backup (tarball copy, exported key file, paper sheet or share sheets) in
    /// a temporary directory, signs a throwaway draft of the next root version with the
    /// active root key it holds and verifies that signature against the factory's current
    /// root (from --bundle, verified from the pinned root, or the root pinned for --factory).
    Drill(drill::DrillArgs),
}

/// Runs `signer keys …`.
pub fn run(ctx: &mut Ctx<'_>, cmd: &KeysCommand) -> Result<(), SignerError> {
    match cmd {
        KeysCommand::List(a) => list::run(ctx, a).map(drop),
        KeysCommand::Encrypt(a) => at_rest::run_encrypt(ctx, a).map(drop),
        KeysCommand::Decrypt(a) => at_rest::run_decrypt(ctx, a).map(drop),
        KeysCommand::Backup(a) => backup::run(ctx, a).map(drop),
        KeysCommand::ExportRoot(a) => export::run(ctx, a).map(drop),
        KeysCommand::Print(a) => paper::run_print(ctx, a).map(drop),
        KeysCommand::Restore(a) => paper::run_restore(ctx, a).map(drop),
        KeysCommand::Generate(a) => crate::pkcs11::generate_cmd(ctx, a).map(drop),
        KeysCommand::Split(a) => split::run_split(ctx, a).map(drop),
        KeysCommand::Combine(a) => split::run_combine(ctx, a).map(drop),
        KeysCommand::Drill(a) => drill::run(ctx, a).map(drop),
    }
}

/// Fixtures of the unit tests of the `keys` modules.
#[cfg(test)]
pub(crate) mod fixtures {
    use age::secrecy::SecretString;
    use shared::keys::PrivateKey;
    use shared::metadata::{Role, SignedRoot};
    use shared::tarball::KeysTarball;

    use super::reference::ReferenceRoot;
    use crate::keystore::PassphraseSource;
    use crate::memory::FactoryMemory;

    /// A passphrase source with a fast scrypt.
    pub(crate) fn pass(p: &str) -> PassphraseSource {
        PassphraseSource::value(SecretString::from(p)).with_work_factor(10)
    }

    /// A tarball holding the Ed25519 keys of these seeds for these roles.
    pub(crate) fn tarball_with(keys: &[(Role, [u8; 32])]) -> KeysTarball {
        let mut t = KeysTarball::new();
        for (role, seed) in keys {
            t.add_private_key(*role, &PrivateKey::ed25519_from_seed(seed))
                .unwrap();
        }
        t
    }

    /// A factory at v2 (first-time rotation applied: key 1 → key 100) and a tarball holding
    /// both root keys, as a first-time rotation leaves it.
    pub(crate) fn rotated() -> (crate::testutil::Factory, KeysTarball) {
        let mut f = crate::testutil::Factory::new();
        f.apply_first_time_rotation();
        let mut t = KeysTarball::new();
        t.add_private_key(Role::Root, &f.first_root).unwrap();
        t.add_private_key(Role::Root, &f.root_keys[0]).unwrap();
        (f, t)
    }

    /// `root` as the reference root (pinned or given with `--root`), with `memory`.
    pub(crate) fn reference(
        root: &SignedRoot,
        pinned: bool,
        memory: Option<FactoryMemory>,
    ) -> ReferenceRoot {
        ReferenceRoot {
            source: "the test root".to_string(),
            root: root.clone(),
            pinned: pinned.then_some(root.signed.version),
            memory,
        }
    }
}
