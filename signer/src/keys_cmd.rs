//! `signer keys …`: looking after the offline keys tarballs.
//!
//! The three backups `offline-tuf-keys.rst` recommends, done carefully:
//!
//! * `keys backup --keys T --to DIR` — copy the whole tarball (as is: an encrypted
//!   `*.tgz.age` stays encrypted), `fsync` it, drop it from the page cache, read it back and
//!   check it is byte-for-byte the original and opens with the same keys;
//! * `keys export-root --keys T --out FILE --i-understand-this-exports-a-private-key` — the
//!   active root private key as a plain fioctl key file (`.sec` JSON), mode 0600;
//! * `keys print --keys T --out FILE` — a paper backup of the active root private key: hex
//!   groups with a check code per line, the keyid, key type and dates, and QR codes; restored
//!   with `keys restore`, which verifies every line and the rebuilt key's keyid.
//!
//! Plus `keys list` (keyids, roles, which are active; never private bytes) and, in
//! [`crate::keys_at_rest`], `keys encrypt` / `keys decrypt`.
//!
//! # Which root key is "active"
//!
//! The active root key is the one private key in the tarball whose public key is listed in
//! the `root` role of the factory's current root — fioctl's own key search. That root is the
//! one **pinned** on this machine ([`crate::trust::default_pin`]: the pin of `--factory`, or
//! the only pin), which advances whenever the signer sees a newer applied root in a bundle;
//! `--root ROOT.json` overrides it. The tarball alone cannot tell: fioctl keeps rotated-out
//! keys and writes every entry with the same time stamp (0). Without a pin and without
//! `--root` the commands that need the active key refuse, saying how to pin.
//!
//! A pin can lag: after a rotation is applied, the pin advances only when the signer sees
//! the next bundle. So when the tarball holds a root key that this signer signed into a
//! root **newer** than the pin (its memory, [`crate::memory`]), `export-root`, `print` and
//! `split` refuse rather than pick the older key, and say how to advance the pin.
//!
//! # Keys `list` marks
//!
//! Each key is compared with the reference root and with what this signer remembers of the
//! factory's roots ([`KeyState`]): active (and in which roles), rotated out (last in an
//! applied root vN), **never applied** (generated here and signed into a root vN by a
//! response, while the root the server applied as vN is another: the response was never
//! pushed or was cancelled), or not applied yet (signed into a root newer than the pin).
//! Active keys are listed first, then those, then rotated-out keys, newest first.
//!
//! # The paper format (`offline-tuf paper key v1`)
//!
//! The payload is the ED25519 32-byte seed, or for RSA the bytes of the PKCS#1 PEM (exactly
//! the `private` value of the `.sec` file). Its lowercase hex is cut into lines of
//! [`paper::GROUPS_PER_LINE`] groups of [`paper::GROUP_CHARS`] hex digits (16 bytes a line):
//!
//! ```text
//! 001: 0001 0203 0405 0607 0809 0a0b 0c0d 0e0f | 5e2c
//! ```
//!
//! The check code after `|` is the first 4 hex digits of
//! `SHA-256("<line number in decimal>:<the line's hex digits>")`, so a mistyped digit, a
//! skipped group or two swapped lines are reported with the line number. The keyid of the
//! rebuilt key must equal the sheet's `keyid:` line, which protects the whole. Each QR code
//! holds `OTK1 <KEYTYPE> <KEYID> <part>/<parts> <HEX>` (upper case, QR alphanumeric mode,
//! error correction M, at most 69 modules wide so that it prints in 80 columns), where HEX is
//! the ED25519 seed or, for RSA, the PKCS#1 DER (smaller than the PEM: fewer codes);
//! `keys restore --groups-file` also accepts the scanned texts of all parts.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde::Serialize;
use sha2::{Digest, Sha256};
use shared::fsutil::{self, FsError};
use shared::keys::{KeyId, PrivateKey};
use shared::metadata::{Role, SignedRoot};
use shared::tarball::{KeyFileKind, KeysTarball, TarballError};
use zeroize::Zeroizing;

use crate::audit::{self, AuditEvent};
use crate::error::SignerError;
use crate::keystore::{self, KeystoreError, PassphraseArgs, PassphraseSource};
use crate::memory::{self, FactoryMemory};
use crate::state::StateDir;
use crate::trust;

/// Largest paper sheet / groups file read.
const MAX_SHEET_FILE: u64 = 4 * 1024 * 1024;

/// The flag that confirms `export-root`.
pub const EXPORT_FLAG: &str = "--i-understand-this-exports-a-private-key";

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
        /// The root compared with ([`ReferenceRoot::source`]).
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
        problem: paper::SheetError,
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

impl From<SignerError> for KeysError {
    fn from(e: SignerError) -> KeysError {
        KeysError::Pin(Box::new(e))
    }
}

pub(crate) fn tarball_err(path: &Path) -> impl FnOnce(TarballError) -> KeysError + '_ {
    move |source| KeysError::Tarball {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

/// An offline role given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OfflineRole {
    /// The root role.
    Root,
    /// The targets role (offline targets key).
    Targets,
}

impl From<OfflineRole> for Role {
    fn from(r: OfflineRole) -> Role {
        match r {
            OfflineRole::Root => Role::Root,
            OfflineRole::Targets => Role::Targets,
        }
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
    List(ListArgs),
    /// Encrypt a keys tarball at rest with a passphrase (age, scrypt): root.keys.tgz →
    /// root.keys.tgz.age.
    ///
    /// The passphrase is asked twice on a terminal (or --passphrase-file FILE, or
    /// SIGNER_KEYS_PASSPHRASE). The new file (mode 0600, never over an existing file) is
    /// written to a temporary file, synced and renamed, then read back and decrypted: it
    /// must hold exactly the bytes and keys of the source. The source is kept unless
    /// --remove-source is given (removed only after that check).
    Encrypt(crate::keys_at_rest::ConvertArgs),
    /// Decrypt a passphrase-encrypted keys tarball: root.keys.tgz.age → root.keys.tgz (the
    /// tarball fioctl reads).
    ///
    /// The plain file (mode 0600, never over an existing file) holds the private keys
    /// UNENCRYPTED. It is written to a temporary file, synced and renamed, then read back:
    /// it must hold exactly what the encrypted file held. The encrypted file is kept unless
    /// --remove-source is given.
    Decrypt(crate::keys_at_rest::ConvertArgs),
    /// Copy a keys tarball to backup media and verify the copy by reading it back.
    ///
    /// The copy keeps the file name (an encrypted *.tgz.age stays encrypted), is written
    /// with mode 0600 and synced, then read back from the medium and compared byte for
    /// byte; it must also open with the same keys. An existing file is never overwritten.
    Backup(BackupArgs),
    /// Write the active root PRIVATE key as a plain key file (fioctl .sec JSON, mode 0600).
    ///
    /// Requires --i-understand-this-exports-a-private-key. The active key is the one the
    /// root pinned on this machine lists (or --root ROOT.json).
    ExportRoot(ExportRootArgs),
    /// Write a paper backup of the active root private key, for printing.
    ///
    /// The key is written as numbered lines of hex groups, each line with a check code, plus
    /// the keyid, key type and dates, and QR codes. Restore it with `signer keys restore`.
    /// The file (mode 0600) is as secret as the key: print it and delete it.
    Print(PrintArgs),
    /// Rebuild a private key from a paper backup and add it to a keys tarball.
    ///
    /// Every line's check code is verified (a wrong line is reported by its number), the
    /// rebuilt key's keyid must equal the sheet's, and the pair is stored as
    /// tufrepo/keys/fioctl-<role>-<keyid>.{pub,sec}. The tarball is created if missing.
    Restore(RestoreArgs),
    /// Create a key pair on a PKCS#11 token (YubiKey, Nitrokey, HSM): Ed25519 where the
    /// token supports it, else RSA-4096. Only the public key leaves the token; a later
    /// rotation with `--new-keys` naming the same `object=` uses it as the new key.
    Generate(crate::pkcs11::GenerateArgs),
    /// Split the active root key into printable Shamir shares: any K of N sheets restore it.
    ///
    /// One sheet per share (mode 0600, for printing), each with the factory, keyid, share
    /// number, threshold, numbered hex lines with a check code each and QR codes. Fewer than
    /// K sheets reveal nothing about the key. Restore with `signer keys combine`.
    Split(crate::keys_split::SplitArgs),
    /// Rebuild the root key from at least K share sheets into a keys tarball.
    ///
    /// Every line's check code is verified (a wrong line is reported with its sheet and
    /// number), sheets of another factory or another split are refused, and the rebuilt key
    /// must have the sheets' keyid.
    Combine(crate::keys_split::CombineArgs),
    /// Prove that a backup of the root key works, without touching it.
    ///
    /// Restores the backup (tarball copy, exported key file, paper sheet or share sheets) in
    /// a temporary directory, signs a throwaway draft of the next root version with the
    /// active root key it holds and verifies that signature against the factory's current
    /// root (from --bundle, verified from the pinned root, or the root pinned for --factory).
    Drill(crate::keys_drill::DrillArgs),
}

/// Which root a keys file is compared with: the pinned one, or `--root`.
#[derive(Debug, Clone, Default, Args)]
pub struct RootArgs {
    /// Compare with this root.json instead of the root pinned on this machine (e.g. the
    /// factory's current root from `courier show-root`).
    #[arg(long, value_name = "ROOT.json")]
    pub root: Option<PathBuf>,
    /// The factory whose pinned root to use (needed only when roots of several factories are
    /// pinned here).
    #[arg(long, value_name = "NAME", conflicts_with = "root")]
    pub factory: Option<String>,
}

/// Options of `signer keys list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// The keys tarball (*.tgz, or *.tgz.age encrypted with a passphrase).
    #[arg(long, value_name = "TARBALL")]
    pub keys: PathBuf,
    /// The root compared with (default: the pinned root).
    #[command(flatten)]
    pub root: RootArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Passphrase options for encrypted tarballs.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

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

/// Options of `signer keys export-root`.
#[derive(Debug, Clone, Args)]
pub struct ExportRootArgs {
    /// The keys tarball holding the root key.
    #[arg(long, value_name = "TARBALL")]
    pub keys: PathBuf,
    /// The root whose root role names the active key (default: the pinned root).
    #[command(flatten)]
    pub root: RootArgs,
    /// The key file to write (must not exist).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Confirms that a private key is to be written unencrypted.
    #[arg(long = "i-understand-this-exports-a-private-key")]
    pub confirmed: bool,
    /// Passphrase options for encrypted tarballs.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// Options of `signer keys print`.
#[derive(Debug, Clone, Args)]
pub struct PrintArgs {
    /// The keys tarball holding the root key.
    #[arg(long, value_name = "TARBALL")]
    pub keys: PathBuf,
    /// The root whose root role names the active key, and its x-key-owners the creation
    /// date (default: the pinned root).
    #[command(flatten)]
    pub root: RootArgs,
    /// The sheet to write (a text file for printing; must not exist).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Passphrase options for encrypted tarballs.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// Options of `signer keys restore`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["from", "groups_file"])))]
pub struct RestoreArgs {
    /// The paper sheet as written by `keys print` (or retyped, in full).
    #[arg(long, value_name = "SHEET")]
    pub from: Option<PathBuf>,
    /// A file with only the typed lines (`001: xxxx … | cccc`) or the scanned QR texts;
    /// give --keyid if it has no `keyid:` line.
    #[arg(long, value_name = "FILE")]
    pub groups_file: Option<PathBuf>,
    /// The keyid printed on the sheet (required if the file has none; must match if it has).
    #[arg(long, value_name = "KEYID")]
    pub keyid: Option<KeyId>,
    /// The keys tarball to add the key to (created if missing; *.tgz.age is encrypted).
    #[arg(long, value_name = "TARBALL")]
    pub keys: PathBuf,
    /// The role the key is stored for (file name fioctl-<role>-<keyid>).
    #[arg(long, value_enum, default_value = "root")]
    pub role: OfflineRole,
    /// Passphrase options for encrypted tarballs.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// The root a keys file is compared with.
#[derive(Debug, Clone)]
pub struct ReferenceRoot {
    /// Where it came from, for messages: the file given with `--root`, or `the root pinned
    /// in PIN FILE`.
    pub source: String,
    /// The root.
    pub root: SignedRoot,
    /// The pinned root's version when it is the pinned root (what this signer knows as
    /// applied); `None` for `--root`.
    pub pinned: Option<u64>,
    /// What this signer remembers of the root's factory (the roots it signed and saw
    /// applied), when it knows the root.
    pub memory: Option<FactoryMemory>,
}

impl ReferenceRoot {
    /// `--root FILE` when given, else the root pinned on this machine for `--factory` (or
    /// the only pin); with the memory of its factory.
    pub fn resolve(state: &Path, args: &RootArgs) -> Result<ReferenceRoot, KeysError> {
        let (source, root, pinned, factory) = match &args.root {
            Some(path) => (
                path.display().to_string(),
                trust::read_root_file(path)?,
                None,
                None,
            ),
            None => {
                let (path, pin) =
                    trust::default_pin(&StateDir::at(state), args.factory.as_deref())?;
                let version = pin.root.signed.version;
                (
                    format!("the root pinned in {}", path.display()),
                    pin.root,
                    Some(version),
                    pin.factory.or_else(|| args.factory.clone()),
                )
            }
        };
        let memory = match factory {
            Some(f) => Some(FactoryMemory::load(state, &f)?),
            None => memory::of_root(state, &root)?,
        };
        Ok(ReferenceRoot {
            source,
            root,
            pinned,
            memory,
        })
    }

    /// "the root pinned in FILE (v4, expires …)" or "FILE (v4, expires …)", for output.
    pub fn describe(&self) -> String {
        format!(
            "{} (v{}, expires {})",
            self.source, self.root.signed.version, self.root.signed.expires
        )
    }

    /// [`ReferenceRoot::resolve`], or `None` when nothing is pinned and no `--root` given.
    pub fn resolve_if_pinned(
        state: &Path,
        args: &RootArgs,
    ) -> Result<Option<ReferenceRoot>, KeysError> {
        match ReferenceRoot::resolve(state, args) {
            Ok(r) => Ok(Some(r)),
            Err(KeysError::Pin(e)) if matches!(*e, SignerError::NoPinForKeys { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The state of a key with id `keyid` against this root and this signer's memory.
    pub fn state_of(&self, keyid: &KeyId, public: &shared::keys::PublicKey) -> KeyState {
        let root = &self.root.signed;
        let listed = root.keys.get(keyid).is_some_and(|k| k.same_key(public));
        let roles: Vec<String> = root
            .roles
            .iter()
            .filter(|(_, rk)| listed && rk.keyids.contains(keyid))
            .map(|(name, _)| name.clone())
            .collect();
        if !roles.is_empty() {
            return KeyState::Active { roles };
        }
        let Some(memory) = &self.memory else {
            return KeyState::NotInRoot;
        };
        let ci_roots = || memory.roots.iter().filter(|r| r.document == "ci-root");
        let applied_in = ci_roots()
            .filter(|r| r.applied() && !r.roles_of(keyid).is_empty())
            .map(|r| r.version)
            .max();
        if let Some(version) = applied_in {
            return KeyState::RotatedOut {
                last_applied_version: version,
            };
        }
        let Some(signed) = ci_roots()
            .filter(|r| !r.applied() && !r.roles_of(keyid).is_empty())
            .max_by_key(|r| r.version)
        else {
            return KeyState::NotInRoot;
        };
        let created = signed.at.to_string();
        if signed.version > root.version {
            return KeyState::NotYetApplied {
                signed_version: signed.version,
                created,
            };
        }
        // The root applied at that version is known (with its keys) and does not list it.
        let applied_other =
            ci_roots().any(|r| r.applied() && r.version == signed.version && !r.roles.is_empty());
        if applied_other {
            KeyState::NeverApplied {
                signed_version: signed.version,
                created,
            }
        } else {
            KeyState::NotInRoot
        }
    }

    /// Refuses when the tarball at `path` holds a root key that this signer signed into a
    /// root newer than the pinned one and that the pinned root does not list: the pin may
    /// lag behind an applied rotation ([`KeysError::PinMayLag`]).
    pub fn check_not_lagging(&self, path: &Path, tarball: &KeysTarball) -> Result<(), KeysError> {
        let Some(pinned) = self.pinned else {
            return Ok(());
        };
        let root_keys = self.root.signed.role_keyids(Role::Root);
        for info in tarball.keys().map_err(tarball_err(path))? {
            if info.sec_file.is_none() || root_keys.contains(&info.keyid) {
                continue;
            }
            let newer = self.memory.iter().flat_map(|m| &m.roots).find(|r| {
                r.document == "ci-root"
                    && !r.applied()
                    && r.version > pinned
                    && r.roles_of(&info.keyid).contains(&Role::Root.as_str())
            });
            if let Some(r) = newer {
                return Err(KeysError::PinMayLag {
                    tarball: path.to_path_buf(),
                    pinned,
                    signed: r.version,
                    keyid: info.keyid,
                });
            }
        }
        Ok(())
    }
}

impl KeyState {
    /// The order of `keys list`: active keys, keys not applied yet, keys never applied,
    /// rotated-out keys (newest first), the rest.
    fn rank(&self) -> (u8, std::cmp::Reverse<u64>) {
        use std::cmp::Reverse;
        match self {
            KeyState::Active { .. } => (0, Reverse(0)),
            KeyState::NotYetApplied { .. } => (1, Reverse(0)),
            KeyState::NeverApplied { .. } => (2, Reverse(0)),
            KeyState::RotatedOut {
                last_applied_version,
            } => (3, Reverse(*last_applied_version)),
            KeyState::NotInRoot | KeyState::Unknown => (4, Reverse(0)),
        }
    }
}

/// What a key of a tarball is to the factory, as `keys list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "state",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case"
)]
pub enum KeyState {
    /// No root to compare with (nothing pinned, no `--root`).
    Unknown,
    /// Listed in the reference root, in these roles.
    Active {
        /// The roles that list it.
        roles: Vec<String>,
    },
    /// Not in the reference root, but in an applied root this signer saw.
    RotatedOut {
        /// The newest applied root that listed it.
        last_applied_version: u64,
    },
    /// Generated here and signed into root vN by a response of this signer; the server
    /// applied another root as vN (the response was never pushed, or was cancelled).
    NeverApplied {
        /// The version of the root it was signed into.
        signed_version: u64,
        /// When that root was signed here (the key was created in the same run).
        created: String,
    },
    /// Signed into a root newer than the reference root by a response of this signer, not
    /// seen applied yet.
    NotYetApplied {
        /// The version of the root it was signed into.
        signed_version: u64,
        /// When that root was signed here.
        created: String,
    },
    /// Not in the reference root, and nothing else known of it here.
    NotInRoot,
}

/// One key of a tarball, as `keys list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct KeyListing {
    /// The key id (computed from the public key).
    pub keyid: KeyId,
    /// Key type as written (`ED25519`, `RSA`).
    pub keytype: String,
    /// `first-root`, `generated` or `other` (from the file name).
    pub kind: String,
    /// Role from the file name (`root`, `targets`), if any.
    pub role: Option<String>,
    /// The `.pub` entry.
    pub pub_file: String,
    /// The `.sec` entry, if the private key is held.
    pub sec_file: Option<String>,
    /// Roles of the reference root that list this key (`None` without a root).
    pub active_in: Option<Vec<String>>,
    /// `created-at` from the root's `x-key-owners`, if known.
    pub created_at: Option<String>,
    /// What the key is to the factory (active, rotated out, never applied, …).
    pub status: KeyState,
}

impl KeyListing {
    /// What the file name says the key is ("offline root key", "initial Foundries root key
    /// (first-root)", …).
    pub fn what(&self) -> String {
        match (self.kind.as_str(), self.role.as_deref()) {
            ("first-root", _) => "initial Foundries root key (first-root)".to_string(),
            ("generated", Some(role)) => format!("offline {role} key"),
            _ => "key of unknown role (file name not fioctl's)".to_string(),
        }
    }
}

/// Lists the keys of `tarball`, relating them to `reference` (and what this signer
/// remembers of its factory) if given.
pub fn list_keys(
    tarball: &KeysTarball,
    reference: Option<&ReferenceRoot>,
) -> Result<Vec<KeyListing>, TarballError> {
    let mut out = Vec::new();
    for info in tarball.keys()? {
        let (kind, role) = match &info.kind {
            KeyFileKind::FirstRoot => ("first-root", Some("root".to_string())),
            KeyFileKind::Generated { role } => ("generated", Some(role.as_str().to_string())),
            KeyFileKind::Other => ("other", None),
        };
        let status = reference.map_or(KeyState::Unknown, |r| r.state_of(&info.keyid, &info.public));
        let active_in = reference.map(|_| match &status {
            KeyState::Active { roles } => roles.clone(),
            _ => Vec::new(),
        });
        let created_at = reference
            .and_then(|r| r.root.signed.key_owners.as_ref())
            .and_then(|o| o.get(&info.keyid))
            .map(|o| o.created_at.to_string());
        out.push(KeyListing {
            keyid: info.keyid.clone(),
            keytype: info.public.keytype().to_string(),
            kind: kind.to_string(),
            role,
            pub_file: info.pub_file.clone(),
            sec_file: info.sec_file.clone(),
            active_in,
            created_at,
            status,
        });
    }
    // Active keys first, then what a person should look at, then history.
    out.sort_by_key(|k| k.status.rank());
    Ok(out)
}

/// The active root key of a tarball (see the module documentation for the rule).
#[derive(Debug)]
pub struct ActiveRootKey {
    /// Its keyid.
    pub keyid: KeyId,
    /// The `.sec` entry.
    pub sec_file: String,
    /// The private key.
    pub key: PrivateKey,
    /// `created-at` from the root's `x-key-owners`, if a root was given and lists it.
    pub created_at: Option<String>,
}

/// Finds the active root private key of `tarball` (at `path`, for messages): the one the
/// reference root's root role lists. Refuses when the pinned root may lag behind a root
/// this signer signed ([`KeysError::PinMayLag`]).
pub fn active_root_key(
    path: &Path,
    tarball: &KeysTarball,
    reference: &ReferenceRoot,
) -> Result<ActiveRootKey, KeysError> {
    reference.check_not_lagging(path, tarball)?;
    let root = &reference.root.signed;
    let candidates = root.role_keyids(Role::Root).to_vec();
    let found = match tarball.find_one_signer(root, &candidates) {
        Ok(f) => f,
        Err(e) if e.is_not_found() => {
            return Err(KeysError::NoActiveRootKey {
                tarball: path.to_path_buf(),
                root: reference.source.clone(),
                keyids: candidates,
            })
        }
        Err(e) => return Err(tarball_err(path)(e)),
    };
    let created_at = root
        .key_owners
        .as_ref()
        .and_then(|o| o.get(&found.keyid))
        .map(|o| o.created_at.to_string());
    Ok(ActiveRootKey {
        keyid: found.keyid,
        sec_file: found.sec_file,
        key: found.key,
        created_at,
    })
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

/// Asks the kernel to drop `path` from the page cache so that the next read comes from the
/// medium (best effort; Linux and other POSIX systems with `posix_fadvise`).
fn drop_from_cache(path: &Path) {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        use std::os::unix::io::AsRawFd;
        if let Ok(f) = std::fs::File::open(path) {
            let _ = f.sync_all();
            // SAFETY: `f` is an open file descriptor for the duration of the call;
            // posix_fadvise only reads its arguments.
            unsafe {
                libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            }
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let _ = path;
}

/// Reads the file `path` back from its medium (dropped from the page cache first); the
/// error is the reason, for a mismatch message.
pub fn read_back(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    drop_from_cache(path);
    fsutil::read_limited(path, shared::tarball::MAX_FILE_SIZE)
        .map(Zeroizing::new)
        .map_err(|e| format!("it cannot be read back ({e})"))
}

/// Opens the bytes `raw` read back from the keys file `path` (decrypting a `*.tgz.age` with
/// `pass`): its plaintext and keys; the error is the reason, for a mismatch message.
pub fn open_back(
    path: &Path,
    raw: &[u8],
    pass: &PassphraseSource,
) -> Result<(Zeroizing<Vec<u8>>, KeysTarball), String> {
    keystore::plaintext(path, raw, pass)
        .and_then(|plain| {
            let tarball = keystore::parse(path, &plain)?;
            Ok((plain, tarball))
        })
        .map_err(|e| format!("it does not open as a keys tarball ({e})"))
}

/// Where `actual` differs from `expected` ("it has N bytes, the original M", "it differs
/// from the original at byte N of M"), or `None` when they are equal.
pub fn first_difference(actual: &[u8], expected: &[u8]) -> Option<String> {
    if actual.len() != expected.len() {
        return Some(format!(
            "it has {} bytes, the original {}",
            actual.len(),
            expected.len()
        ));
    }
    actual
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .map(|offset| {
            format!(
                "it differs from the original at byte {offset} of {}",
                expected.len()
            )
        })
}

/// Whether two tarballs hold exactly the same entries (`path` names the second, for errors).
pub fn same_keys(a: &KeysTarball, b: &KeysTarball, path: &Path) -> Result<bool, KeysError> {
    let a = a.to_bytes().map_err(tarball_err(path))?;
    let b = b.to_bytes().map_err(tarball_err(path))?;
    Ok(a.as_slice() == b.as_slice())
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

pub(crate) fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<(), KeysError> {
    fsutil::write_atomic_new(path, bytes, 0o600).map_err(|e| match e {
        FsError::AlreadyExists { path } => KeysError::OutputExists { path },
        other => other.into(),
    })
}

pub(crate) fn refuse_existing(path: &Path) -> Result<(), KeysError> {
    if std::fs::symlink_metadata(path).is_ok() {
        Err(KeysError::OutputExists {
            path: path.to_path_buf(),
        })
    } else {
        Ok(())
    }
}

/// Writes the active root private key of the tarball at `keys` (per `reference`) to `out`
/// (fioctl `.sec` JSON, mode 0600, never over an existing file). `confirmed` is the explicit
/// flag.
pub fn export_root(
    keys: &Path,
    reference: &ReferenceRoot,
    out: &Path,
    confirmed: bool,
    pass: &PassphraseSource,
) -> Result<ActiveRootKey, KeysError> {
    if !confirmed {
        return Err(KeysError::ExportNotConfirmed {
            out: out.to_path_buf(),
        });
    }
    refuse_existing(out)?;
    let tarball = keystore::open(keys, pass)?;
    let active = active_root_key(keys, &tarball, reference)?;
    write_secret_file(out, &active.key.to_json())?;
    Ok(active)
}

/// Writes a paper sheet for the active root key of the tarball at `keys` (per `reference`)
/// to `out`.
pub fn print_sheet(
    keys: &Path,
    reference: &ReferenceRoot,
    out: &Path,
    pass: &PassphraseSource,
) -> Result<ActiveRootKey, KeysError> {
    refuse_existing(out)?;
    let tarball = keystore::open(keys, pass)?;
    let active = active_root_key(keys, &tarball, reference)?;
    let info = paper::SheetInfo {
        role: "root".to_string(),
        created_at: active.created_at.clone(),
        printed_at: shared::metadata::Timestamp::now().to_string(),
        source: keys
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let sheet = paper::render(&active.key, &info).map_err(|problem| KeysError::Sheet {
        source_file: keys.to_path_buf(),
        problem,
    })?;
    write_secret_file(out, sheet.as_bytes())?;
    Ok(active)
}

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The restored key's id.
    pub keyid: KeyId,
    /// Key type as written.
    pub keytype: String,
    /// The `.sec` entry added.
    pub sec_file: String,
    /// Whether the tarball was created.
    pub created_tarball: bool,
    /// Whether the key came from scanned QR texts (not from numbered lines).
    pub from_qr: bool,
}

/// Reads and parses a paper sheet, groups file or scanned QR texts (every line's check code
/// verified; errors name the file and the line).
pub fn read_sheet(source: &Path) -> Result<paper::ParsedSheet, KeysError> {
    read_sheet_text(source).map(|(_, parsed)| parsed)
}

/// [`read_sheet`], also returning the sheet's text (secret: zeroized on drop).
pub fn read_sheet_text(
    source: &Path,
) -> Result<(Zeroizing<String>, paper::ParsedSheet), KeysError> {
    let sheet_err = |problem| KeysError::Sheet {
        source_file: source.to_path_buf(),
        problem,
    };
    let bytes = Zeroizing::new(fsutil::read_limited(source, MAX_SHEET_FILE)?);
    let text = std::str::from_utf8(&bytes).map_err(|_| sheet_err(paper::SheetError::NotText))?;
    let parsed = paper::parse(text).map_err(sheet_err)?;
    Ok((Zeroizing::new(text.to_string()), parsed))
}

/// Rebuilds the key on the sheet / groups file `source` and adds it to the tarball at
/// `keys` (created if missing) for `role`. `expected` is a keyid given on the command line.
pub fn restore(
    source: &Path,
    expected: Option<&KeyId>,
    keys: &Path,
    role: Role,
    pass: &PassphraseSource,
) -> Result<RestoreReport, KeysError> {
    let parsed = read_sheet(source)?;
    let key = parsed
        .rebuild(expected)
        .map_err(|problem| KeysError::Sheet {
            source_file: source.to_path_buf(),
            problem,
        })?;
    let (sec_file, created_tarball) = add_restored_key(&key, keys, role, pass)?;
    Ok(RestoreReport {
        sec_file,
        keyid: key.keyid().clone(),
        keytype: key.public_key().keytype().to_string(),
        created_tarball,
        from_qr: parsed.from_qr,
    })
}

/// Adds a restored private key to the tarball at `keys` (created if missing) for `role`,
/// refusing a key it already holds. Returns the `.sec` entry and whether the tarball was
/// created.
pub fn add_restored_key(
    key: &PrivateKey,
    keys: &Path,
    role: Role,
    pass: &PassphraseSource,
) -> Result<(String, bool), KeysError> {
    let (mut tarball, existed) = keystore::open_or_empty(keys, pass)?;
    if let Some(found) = tarball
        .private_key(key.keyid())
        .map_err(tarball_err(keys))?
    {
        return Err(KeysError::AlreadyHeld {
            tarball: keys.to_path_buf(),
            keyid: found.keyid,
            file: found.sec_file,
        });
    }
    let (keyid, _) = tarball
        .add_private_key(role, key)
        .map_err(tarball_err(keys))?;
    if existed {
        keystore::save(keys, &tarball, pass)?;
    } else {
        keystore::save_new(keys, &tarball, pass)?;
    }
    let sec_file = format!(
        "{}fioctl-{}-{}.sec",
        shared::tarball::KEYS_DIR,
        role.as_str(),
        keyid
    );
    Ok((sec_file, !existed))
}

/// Prints where a restored key went: "Created|Updated TARBALL with ENTRY.".
pub fn print_restored(
    out: &mut dyn Write,
    created: bool,
    tarball: &Path,
    sec_file: &str,
) -> std::io::Result<()> {
    let verb = if created { "Created" } else { "Updated" };
    writeln!(out, "{verb} {} with {sec_file}.", tarball.display())
}

/// Runs `signer keys …`, printing to stdout.
pub fn run(cmd: &KeysCommand, state_dir: &Path) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_with_output(cmd, state_dir, &mut out)
}

/// Runs `signer keys …`, printing to `out`. Exports, backups and restores are recorded in
/// the audit log of `state_dir` (which must verify before anything is done).
pub fn run_with_output(
    cmd: &KeysCommand,
    state_dir: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Generate(a) => crate::pkcs11::generate_cmd(a, state_dir, out)?,
        KeysCommand::List(a) => {
            let pass = a.passphrase.source();
            let tarball = keystore::open(&a.keys, &pass)?;
            let reference = ReferenceRoot::resolve_if_pinned(state_dir, &a.root)?;
            let listing = list_keys(&tarball, reference.as_ref()).map_err(tarball_err(&a.keys))?;
            if a.json {
                serde_json::to_writer_pretty(&mut *out, &listing)?;
                writeln!(out)?;
            } else {
                print_listing(out, &a.keys, reference.as_ref(), &listing)?;
            }
        }
        KeysCommand::Encrypt(a) => {
            crate::keys_at_rest::run(a, crate::keys_at_rest::Form::Encrypted, state_dir, out)?
        }
        KeysCommand::Decrypt(a) => {
            crate::keys_at_rest::run(a, crate::keys_at_rest::Form::Plain, state_dir, out)?
        }
        KeysCommand::Backup(a) => {
            audit::verify(state_dir)?;
            let report = backup(&a.keys, &a.to, &a.passphrase.source())?;
            audit::record(
                state_dir,
                AuditEvent::TarballBackedUp {
                    source: a.keys.display().to_string(),
                    copy: report.copy.display().to_string(),
                    sha256: report.sha256.clone(),
                },
            )?;
            writeln!(
                out,
                "Copied {} to {} ({} bytes, sha256 {}).",
                a.keys.display(),
                report.copy.display(),
                report.size,
                report.sha256
            )?;
            writeln!(
                out,
                "Verified: the copy was read back from the medium, is identical byte for byte \
                 and opens with the same {} key(s):",
                report.keyids.len()
            )?;
            for k in &report.keyids {
                writeln!(out, "  {k}")?;
            }
        }
        KeysCommand::ExportRoot(a) => {
            if !a.confirmed {
                return Err(KeysError::ExportNotConfirmed { out: a.out.clone() }.into());
            }
            audit::verify(state_dir)?;
            let reference = ReferenceRoot::resolve(state_dir, &a.root)?;
            let active = export_root(
                &a.keys,
                &reference,
                &a.out,
                a.confirmed,
                &a.passphrase.source(),
            )?;
            audit::record(
                state_dir,
                AuditEvent::KeyExported {
                    keyid: active.keyid.clone(),
                    form: "json-file".to_string(),
                    path: a.out.display().to_string(),
                },
            )?;
            writeln!(
                out,
                "Wrote the root private key {} ({}) to {} (mode 0600): the active root key of {}.",
                active.keyid,
                active.key.public_key().keytype(),
                a.out.display(),
                reference.describe()
            )?;
            writeln!(
                out,
                "It has the content of {} in the tarball. Anyone who can read this file can sign \
                 your factory's TUF root: move it to its safe place now and delete it here.",
                active.sec_file
            )?;
        }
        KeysCommand::Print(a) => {
            audit::verify(state_dir)?;
            let reference = ReferenceRoot::resolve(state_dir, &a.root)?;
            let active = print_sheet(&a.keys, &reference, &a.out, &a.passphrase.source())?;
            audit::record(
                state_dir,
                AuditEvent::KeyExported {
                    keyid: active.keyid.clone(),
                    form: "paper".to_string(),
                    path: a.out.display().to_string(),
                },
            )?;
            writeln!(
                out,
                "Wrote the paper backup of root key {} to {} (mode 0600): the active root key of {}.",
                active.keyid,
                a.out.display(),
                reference.describe()
            )?;
            writeln!(
                out,
                "Print it (monospaced font, no scaling), check it with `signer keys restore \
                 --from {} --keys /tmp/check.keys.tgz`, then delete the file.",
                a.out.display()
            )?;
        }
        KeysCommand::Split(a) => crate::keys_split::run_split(a, state_dir, out)?,
        KeysCommand::Combine(a) => crate::keys_split::run_combine(a, state_dir, out)?,
        KeysCommand::Drill(a) => crate::keys_drill::run(a, state_dir, out)?,
        KeysCommand::Restore(a) => {
            let source = a.from.as_ref().or(a.groups_file.as_ref()).ok_or_else(|| {
                anyhow::anyhow!(
                    "give the sheet with --from SHEET or the lines with --groups-file FILE"
                )
            })?;
            audit::verify(state_dir)?;
            let report = restore(
                source,
                a.keyid.as_ref(),
                &a.keys,
                a.role.into(),
                &a.passphrase.source(),
            )?;
            audit::record(
                state_dir,
                AuditEvent::KeyRestored {
                    keyid: report.keyid.clone(),
                    role: Role::from(a.role).as_str().to_string(),
                    tarball: a.keys.display().to_string(),
                    source: source.display().to_string(),
                },
            )?;
            let how = if report.from_qr {
                "All QR parts were read"
            } else {
                "Every line's check code matched"
            };
            writeln!(
                out,
                "{how} and the rebuilt {} key has the sheet's keyid {}.",
                report.keytype, report.keyid
            )?;
            print_restored(out, report.created_tarball, &a.keys, &report.sec_file)?;
        }
    }
    Ok(())
}

fn print_listing(
    out: &mut dyn Write,
    keys: &Path,
    reference: Option<&ReferenceRoot>,
    listing: &[KeyListing],
) -> std::io::Result<()> {
    let private = listing.iter().filter(|k| k.sec_file.is_some()).count();
    writeln!(
        out,
        "{}: {} key(s), {} with a private key",
        keys.display(),
        listing.len(),
        private
    )?;
    match reference {
        Some(r) => writeln!(out, "compared with {}", r.describe())?,
        None => writeln!(
            out,
            "not compared with any root: no trusted root is pinned here (`signer trust init ROOT.json`, the root.json from `courier show-root`), and no --root ROOT.json was given"
        )?,
    }
    for k in listing {
        writeln!(out)?;
        writeln!(out, "{}", k.keyid)?;
        writeln!(out, "  {} {}", k.keytype, k.what())?;
        writeln!(
            out,
            "  private key: {}",
            k.sec_file.as_deref().unwrap_or("NO (public key only)")
        )?;
        match &k.status {
            KeyState::Unknown => writeln!(out, "  active: unknown (no root to compare with)")?,
            KeyState::Active { roles } => {
                writeln!(out, "  active: yes, role(s) {}", roles.join(", "))?
            }
            KeyState::RotatedOut {
                last_applied_version,
            } => writeln!(
                out,
                "  active: no (rotated out: last in the applied root v{last_applied_version})"
            )?,
            KeyState::NeverApplied {
                signed_version,
                created,
            } => writeln!(
                out,
                "  active: NO, NEVER APPLIED: created {created} by a response that was never applied (this signer signed it into root v{signed_version}; the server applied another root v{signed_version}). It signs nothing for the factory"
            )?,
            KeyState::NotYetApplied {
                signed_version,
                created,
            } => writeln!(
                out,
                "  active: not yet: created {created} by a response that signed it into root v{signed_version}, not seen applied (compared with v{}); once it is applied, the next request bundle this signer sees advances the pin",
                reference.map_or(0, |r| r.root.signed.version)
            )?,
            KeyState::NotInRoot => writeln!(
                out,
                "  active: no (not in the root; rotated out or never used)"
            )?,
        }
        if let Some(c) = &k.created_at {
            writeln!(out, "  created: {c}")?;
        }
    }
    Ok(())
}

/// The paper backup format: rendering and parsing (see the module documentation).
pub mod paper {
    use std::fmt::Write as _;

    use qrcode::bits::Bits;
    use qrcode::render::unicode::Dense1x2;
    use qrcode::{EcLevel, QrCode, Version};
    use sha2::{Digest, Sha256};
    use shared::keys::{KeyId, KeyType, PrivateKey};
    use zeroize::Zeroizing;

    /// Format line of the sheet.
    pub const FORMAT: &str = "offline-tuf paper key v1";
    /// Hex digits per group.
    pub const GROUP_CHARS: usize = 4;
    /// Groups per line.
    pub const GROUPS_PER_LINE: usize = 8;
    /// Hex digits per line.
    pub const LINE_CHARS: usize = GROUP_CHARS * GROUPS_PER_LINE;
    /// Hex digits of a line's check code.
    pub const CHECK_CHARS: usize = 4;
    /// Prefix of QR code texts.
    pub const QR_PREFIX: &str = "OTK1";
    /// Largest QR symbol (in modules) rendered: with its 4-module quiet zone on each side and a
    /// 2-column indent it fits 79 columns.
    pub const QR_MAX_MODULES: usize = 69;
    /// The QR version of [`QR_MAX_MODULES`] (17 + 4 × 13 = 69).
    pub const QR_MAX_VERSION: i16 = 13;

    /// What is wrong with a sheet. Never contains key material.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum SheetError {
        /// The file is not UTF-8 text.
        #[error("not a text file")]
        NotText,
        /// No group lines and no QR texts.
        #[error("no key lines found (expected lines like `001: xxxx xxxx … | cccc`)")]
        NoLines,
        /// Lines with problems (each says which and what).
        #[error("{}", .0.join("; "))]
        BadLines(Vec<String>),
        /// The keyid is missing.
        #[error("no keyid: the sheet's `keyid:` line is missing; give --keyid KEYID as printed on the sheet")]
        NoKeyId,
        /// Two different keyids (sheet vs command line, or QR parts).
        #[error("the keyid given ({given}) differs from the sheet's ({sheet})")]
        KeyIdConflict {
            /// From the command line.
            given: String,
            /// From the sheet.
            sheet: String,
        },
        /// The keyid line is malformed.
        #[error("the `keyid:` line does not hold a keyid (64 hex digits)")]
        BadKeyId,
        /// The key type is not supported.
        #[error("unsupported key type `{0}` (expected ED25519 or RSA)")]
        BadKeyType(String),
        /// The payload does not form a key of the type.
        #[error(
            "all check codes match but the content is not a valid {keytype} private key ({reason})"
        )]
        BadKey {
            /// The key type.
            keytype: String,
            /// Why (no key material).
            reason: String,
        },
        /// The rebuilt key is not the one named on the sheet.
        #[error(
            "the key rebuilt from the lines has keyid {actual}, but the sheet names {expected}: \
             the lines belong to another key (sheets mixed up?) or the keyid was copied wrongly"
        )]
        KeyIdMismatch {
            /// From the sheet / command line.
            expected: KeyId,
            /// Of the rebuilt key.
            actual: KeyId,
        },
        /// Rendering the QR code failed.
        #[error("cannot make the QR code: {0}")]
        Qr(String),
    }

    /// Header data of a sheet.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SheetInfo {
        /// `root` (or `targets`).
        pub role: String,
        /// `created-at` of the key, if known.
        pub created_at: Option<String>,
        /// When the sheet was made.
        pub printed_at: String,
        /// Where the key came from (the tarball's file name).
        pub source: String,
    }

    /// The check code of line `number` holding `hex` (lowercase, no spaces).
    pub fn check_code(number: usize, hex: &str) -> String {
        let digest = Sha256::digest(format!("{number}:{hex}").as_bytes());
        hex::encode(digest)[..CHECK_CHARS].to_string()
    }

    /// The payload of a key: ED25519 seed, or RSA PKCS#1 PEM bytes.
    pub fn payload(key: &PrivateKey) -> Result<Zeroizing<Vec<u8>>, SheetError> {
        #[derive(serde::Deserialize)]
        struct Sec {
            keyval: Val,
        }
        #[derive(serde::Deserialize)]
        struct Val {
            private: String,
        }
        let json = key.to_json();
        let bad = |reason: &str| SheetError::BadKey {
            keytype: key.public_key().keytype().to_string(),
            reason: reason.to_string(),
        };
        let sec: Sec = serde_json::from_slice(&json).map_err(|_| bad("unreadable key JSON"))?;
        let private = Zeroizing::new(sec.keyval.private);
        match key.key_type() {
            KeyType::Ed25519 => {
                let seed = Zeroizing::new(
                    hex::decode(private.trim()).map_err(|_| bad("seed is not hex"))?,
                );
                if seed.len() != 32 {
                    return Err(bad("seed is not 32 bytes"));
                }
                Ok(seed)
            }
            KeyType::Rsa => Ok(Zeroizing::new(private.as_bytes().to_vec())),
        }
    }

    fn describe_payload(kt: KeyType, len: usize) -> String {
        match kt {
            KeyType::Ed25519 => format!("ED25519 private key seed, {len} bytes"),
            KeyType::Rsa => format!("RSA private key, PKCS#1 PEM text, {len} bytes"),
        }
    }

    /// PEM armour of a PKCS#1 RSA private key.
    const RSA_PEM_BEGIN: &str = "-----BEGIN RSA PRIVATE KEY-----";
    const RSA_PEM_END: &str = "-----END RSA PRIVATE KEY-----";

    /// The DER inside a PKCS#1 PEM text.
    fn rsa_pem_to_der(pem: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        use base64::Engine as _;
        let text = std::str::from_utf8(pem).ok()?;
        let body = text
            .trim()
            .strip_prefix(RSA_PEM_BEGIN)?
            .strip_suffix(RSA_PEM_END)?;
        let mut b64 = Zeroizing::new(String::with_capacity(body.len()));
        b64.extend(body.chars().filter(|c| !c.is_ascii_whitespace()));
        let mut der = Zeroizing::new(Vec::with_capacity(b64.len()));
        base64::engine::general_purpose::STANDARD
            .decode_vec(b64.as_bytes(), &mut der)
            .ok()?;
        Some(der)
    }

    /// The PKCS#1 PEM text (64-character lines, LF, final newline) of RSA key DER — the
    /// form fioctl and this toolkit write in `.sec` files.
    fn rsa_der_to_pem(der: &[u8]) -> Zeroizing<Vec<u8>> {
        use base64::Engine as _;
        let mut b64 = Zeroizing::new(String::with_capacity(der.len() * 4 / 3 + 4));
        base64::engine::general_purpose::STANDARD.encode_string(der, &mut b64);
        let mut pem = Zeroizing::new(Vec::with_capacity(b64.len() + b64.len() / 64 + 80));
        pem.extend_from_slice(RSA_PEM_BEGIN.as_bytes());
        pem.push(b'\n');
        for line in b64.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(RSA_PEM_END.as_bytes());
        pem.push(b'\n');
        pem
    }

    /// The hex the QR codes carry: the ED25519 seed, or for RSA the PKCS#1 **DER** (a third
    /// smaller than the PEM text, so fewer codes).
    fn qr_hex(key: &PrivateKey, payload: &[u8]) -> Result<Zeroizing<String>, SheetError> {
        match key.key_type() {
            KeyType::Ed25519 => Ok(Zeroizing::new(hex::encode(payload))),
            KeyType::Rsa => {
                let der = rsa_pem_to_der(payload).ok_or_else(|| SheetError::BadKey {
                    keytype: key.public_key().keytype().to_string(),
                    reason: "the private key is not a PKCS#1 PEM text".to_string(),
                })?;
                Ok(Zeroizing::new(hex::encode(&der[..])))
            }
        }
    }

    /// `content` (upper-case QR alphanumeric characters) as one alphanumeric segment in the
    /// smallest QR version up to [`QR_MAX_VERSION`] that holds it at error correction M.
    ///
    /// A single forced segment keeps the size predictable (the automatic mode optimizer may
    /// split hex into numeric and alphanumeric runs and need a larger version).
    fn alnum_bits(content: &str) -> Option<Bits> {
        (1..=QR_MAX_VERSION).find_map(|v| {
            let mut bits = Bits::new(Version::Normal(v));
            bits.push_alphanumeric_data(content.as_bytes()).ok()?;
            bits.push_terminator(EcLevel::M).ok()?;
            Some(bits)
        })
    }

    /// One QR code: its text and its rendering (both secret).
    type QrPart = (Zeroizing<String>, Zeroizing<String>);

    /// Renders the QR code texts and images for `hex` (lowercase payload hex).
    fn qr_parts(keytype: &str, keyid: &KeyId, hex: &str) -> Result<Vec<QrPart>, SheetError> {
        let kt = keytype.to_ascii_uppercase();
        let kid = keyid.as_str().to_ascii_uppercase();
        let fits = |content: &str| alnum_bits(content).is_some();
        // The largest chunk (even number of hex digits) that fits with a worst-case part
        // counter (binary search); small payloads fit in one part.
        let probe = |chunk: usize| {
            fits(&format!(
                "{QR_PREFIX} {kt} {kid} 99/99 {}",
                "A".repeat(chunk)
            ))
        };
        let mut chunk = hex.len().max(2);
        if !probe(chunk) {
            let (mut lo, mut hi) = (2, chunk); // lo fits, hi does not
            while hi - lo > 2 {
                let mid = ((lo + hi) / 2) & !1;
                if probe(mid) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            chunk = lo;
        }
        let upper = Zeroizing::new(hex.to_ascii_uppercase());
        let pieces: Vec<&str> = upper
            .as_bytes()
            .chunks(chunk)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        let n = pieces.len();
        let mut out = Vec::with_capacity(n);
        for (i, piece) in pieces.iter().enumerate() {
            let content = Zeroizing::new(format!("{QR_PREFIX} {kt} {kid} {}/{n} {piece}", i + 1));
            let bits = alnum_bits(&content)
                .ok_or_else(|| SheetError::Qr("the text does not fit one QR code".to_string()))?;
            let code =
                QrCode::with_bits(bits, EcLevel::M).map_err(|e| SheetError::Qr(e.to_string()))?;
            let image = Zeroizing::new(code.render::<Dense1x2>().quiet_zone(true).build());
            out.push((content, image));
        }
        Ok(out)
    }

    /// The texts of the sheet's QR codes for `key`, in part order (secret: zeroized on
    /// drop). `keys restore --groups-file` accepts them, one a line, in any order.
    pub fn qr_texts(key: &PrivateKey) -> Result<Vec<Zeroizing<String>>, SheetError> {
        let payload = payload(key)?;
        let hex = qr_hex(key, &payload)?;
        qr_texts_for(key.public_key().keytype(), key.keyid(), &hex)
    }

    /// The QR texts of a sheet whose QR type field is `qr_type` and whose QR codes carry
    /// `hex` (e.g. a share sheet: `SHARE` and its payload), in part order.
    pub fn qr_texts_for(
        qr_type: &str,
        keyid: &KeyId,
        hex: &str,
    ) -> Result<Vec<Zeroizing<String>>, SheetError> {
        Ok(qr_parts(qr_type, keyid, hex)?
            .into_iter()
            .map(|(text, _)| text)
            .collect())
    }

    /// What a printed sheet shows around its numbered lines: used for whole keys
    /// ([`render`]) and for Shamir shares (`crate::keys_split`).
    pub struct SheetLayout<'a> {
        /// The title (upper case), e.g. `OFFLINE TUF ROOT KEY - PAPER BACKUP`.
        pub title: String,
        /// Lines under the title saying why the sheet is secret and where to keep it.
        pub warning: Vec<String>,
        /// `name: value` header lines (`keyid`, `key type` and `lines` are read back).
        pub headers: Vec<(&'a str, String)>,
        /// How to restore, printed before the lines.
        pub restore: Vec<String>,
        /// The payload as lowercase hex: cut into the numbered, checked lines.
        pub hex: &'a str,
        /// The type field of the QR texts (`ED25519`, `RSA`, `SHARE`).
        pub qr_type: &'a str,
        /// The hex the QR codes carry (may differ from `hex`, e.g. RSA DER).
        pub qr_hex: &'a str,
        /// The keyid in the QR texts.
        pub keyid: &'a KeyId,
    }

    /// Renders a sheet (a secret: the result is zeroized on drop): title, headers, the
    /// numbered lines with their check codes, and the QR codes.
    pub fn render_layout(l: &SheetLayout<'_>) -> Result<Zeroizing<String>, SheetError> {
        let lines: Vec<&str> = l
            .hex
            .as_bytes()
            .chunks(LINE_CHARS)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        let qrs = qr_parts(l.qr_type, l.keyid, l.qr_hex)?;
        let long = qrs.len() > 1;

        let qr_size: usize = qrs.iter().map(|(c, i)| c.len() + i.len() + 200).sum();
        let mut s = Zeroizing::new(String::with_capacity(4096 + lines.len() * 64 + qr_size));
        let rule = "=".repeat(76);
        // Writing to a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(s, "{rule}");
        let _ = writeln!(s, " {}", l.title);
        let _ = writeln!(s, "{rule}");
        for w in &l.warning {
            let _ = writeln!(s, " {w}");
        }
        let _ = writeln!(s);
        let width = l.headers.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 3;
        for (k, v) in &l.headers {
            let _ = writeln!(s, " {:<width$}{v}", format!("{k}:"));
        }
        let _ = writeln!(s, " {:<width$}{}", "lines:", lines.len());
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            " Each line: its number, {GROUPS_PER_LINE} groups of {GROUP_CHARS} hex digits, and after \"|\" a"
        );
        let _ = writeln!(
            s,
            " check code: the first {CHECK_CHARS} hex digits of SHA-256(\"<number>:<line's digits>\")."
        );
        for r in &l.restore {
            let _ = writeln!(s, " {r}");
        }
        let _ = writeln!(s);
        for (i, line) in lines.iter().enumerate() {
            let n = i + 1;
            let _ = write!(s, " {n:03}:");
            for g in line.as_bytes().chunks(GROUP_CHARS) {
                let _ = write!(s, " {}", std::str::from_utf8(g).unwrap_or_default());
            }
            // Pad a short last line so that the check codes stay in one column.
            let groups = line.len().div_ceil(GROUP_CHARS);
            let missing = (GROUPS_PER_LINE - groups) * (GROUP_CHARS + 1)
                + (groups * GROUP_CHARS - line.len());
            let _ = writeln!(s, "{} | {}", " ".repeat(missing), check_code(n, line));
        }
        let _ = writeln!(s);
        let _ = writeln!(s, " end of key lines ({} lines)", lines.len());
        let total = qrs.len();
        for (i, (content, image)) in qrs.iter().enumerate() {
            if long {
                s.push('\u{0c}');
                s.push('\n');
            }
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                " QR code {} of {total}: keyid {}, text `{QR_PREFIX} {} …` ({} characters)",
                i + 1,
                l.keyid.short(),
                l.qr_type.to_ascii_uppercase(),
                content.len()
            );
            let _ = writeln!(s);
            for row in image.lines() {
                let _ = writeln!(s, "  {row}");
            }
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "{rule}");
        Ok(s)
    }

    /// Renders the sheet for `key` (a secret: the result is zeroized on drop).
    pub fn render(key: &PrivateKey, info: &SheetInfo) -> Result<Zeroizing<String>, SheetError> {
        let payload = payload(key)?;
        let hex = Zeroizing::new(hex::encode(&payload[..]));
        let keytype = key.public_key().keytype().to_string();
        let qr_hex = qr_hex(key, &payload)?;
        render_layout(&SheetLayout {
            title: format!(
                "OFFLINE TUF {} KEY - PAPER BACKUP",
                info.role.to_uppercase()
            ),
            warning: vec![
                format!(
                    "SECRET. Whoever holds this sheet can sign your factory's TUF {} metadata.",
                    info.role
                ),
                "Keep it in a safe. Never photograph or scan it with a networked device."
                    .to_string(),
            ],
            headers: vec![
                ("format", FORMAT.to_string()),
                ("keyid", key.keyid().to_string()),
                ("key type", keytype.clone()),
                ("role", info.role.clone()),
                ("content", describe_payload(key.key_type(), payload.len())),
                (
                    "created",
                    info.created_at.as_deref().unwrap_or("unknown").to_string(),
                ),
                ("printed", info.printed_at.clone()),
                ("from", info.source.clone()),
            ],
            restore: vec![
                "To restore (every line and the keyid are verified):".to_string(),
                format!(
                    "  signer keys restore --from SHEET.txt --keys root.keys.tgz --role {}",
                    info.role
                ),
                "  (only the numbered lines, typed into a file: --groups-file FILE --keyid ID)"
                    .to_string(),
            ],
            hex: &hex,
            qr_type: &keytype,
            qr_hex: &qr_hex,
            keyid: key.keyid(),
        })
    }

    /// A parsed sheet (secret: the payload is zeroized on drop).
    #[derive(Default)]
    pub struct ParsedSheet {
        /// The keyid on the sheet, if any.
        pub keyid: Option<String>,
        /// The key type on the sheet, if any.
        pub keytype: Option<String>,
        /// Whether the key came from scanned QR texts (not from numbered lines).
        pub from_qr: bool,
        payload: Zeroizing<Vec<u8>>,
    }

    impl std::fmt::Debug for ParsedSheet {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ParsedSheet")
                .field("keyid", &self.keyid)
                .field("keytype", &self.keytype)
                .field(
                    "payload",
                    &format_args!("{} bytes, redacted", self.payload.len()),
                )
                .finish()
        }
    }

    /// The value of a `name: value` line (name compared without case), if `line` is one.
    pub fn header_value<'a>(line: &'a str, name: &str) -> Option<&'a str> {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    }

    /// Splits `"007: xxxx … | cccc"` into (7, rest) if the line starts with a number and `:`.
    fn group_line(line: &str) -> Option<(&str, &str)> {
        let digits = line
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(line.len());
        if digits == 0 {
            return None;
        }
        let rest = line[digits..].trim_start();
        let rest = rest.strip_prefix(':').or_else(|| rest.strip_prefix('.'))?;
        Some((&line[..digits], rest))
    }

    /// Parses a sheet, a file of typed lines, or scanned QR texts.
    pub fn parse(text: &str) -> Result<ParsedSheet, SheetError> {
        let mut sheet = ParsedSheet::default();
        let mut declared_lines: Option<usize> = None;
        let mut groups: Vec<(usize, Zeroizing<String>)> = Vec::new();
        let mut qr: Vec<(usize, usize, Zeroizing<String>)> = Vec::new();
        let mut problems = Vec::new();
        let mut qr_keyid: Option<String> = None;
        let mut qr_type: Option<String> = None;

        for raw in text.lines() {
            let line = raw.trim().trim_start_matches('\u{0c}').trim();
            if line.is_empty() {
                continue;
            }
            if let Some(v) = header_value(line, "keyid") {
                sheet.keyid = Some(v.to_ascii_lowercase());
                continue;
            }
            if let Some(v) = header_value(line, "key type") {
                sheet.keytype = Some(v.to_string());
                continue;
            }
            if let Some(v) = header_value(line, "lines") {
                declared_lines = v.parse().ok();
                continue;
            }
            let upper_prefix = line
                .get(..QR_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(QR_PREFIX));
            if upper_prefix
                && line
                    .get(QR_PREFIX.len()..)
                    .is_some_and(|r| r.starts_with(' '))
            {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let part = fields.get(3).and_then(|p| {
                    let (i, n) = p.split_once('/')?;
                    Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?))
                });
                match (fields.len(), part) {
                    (5, Some((i, n))) if i >= 1 && i <= n => {
                        let kid = fields[2].to_ascii_lowercase();
                        let kt = fields[1].to_string();
                        if qr_keyid.get_or_insert_with(|| kid.clone()) != &kid
                            || qr_type.get_or_insert_with(|| kt.clone()) != &kt
                        {
                            problems.push(format!(
                                "QR part {i}/{n} belongs to another key than the other parts"
                            ));
                        }
                        qr.push((i, n, Zeroizing::new(fields[4].to_ascii_lowercase())));
                    }
                    _ => problems.push(
                        "a QR text is not `OTK1 <TYPE> <KEYID> <part>/<parts> <HEX>`".to_string(),
                    ),
                }
                continue;
            }
            let Some((num, rest)) = group_line(line) else {
                continue;
            };
            let Ok(n) = num.parse::<usize>() else {
                problems.push(format!("line number `{num}` is too large"));
                continue;
            };
            let Some((digits, check)) = rest.rsplit_once('|') else {
                problems.push(format!(
                    "line {n}: no check code (expected `| cccc` at the end of the line)"
                ));
                continue;
            };
            let mut hex = Zeroizing::new(String::with_capacity(LINE_CHARS));
            let mut group_count = 0;
            let mut bad_char = false;
            for g in digits.split_whitespace() {
                group_count += 1;
                for c in g.chars() {
                    if c.is_ascii_hexdigit() {
                        hex.push(c.to_ascii_lowercase());
                    } else {
                        bad_char = true;
                    }
                }
            }
            if bad_char {
                problems.push(format!(
                    "line {n}: contains a character that is not a hex digit (0-9, a-f); re-read \
                     line {n} on the sheet"
                ));
                continue;
            }
            let check = check.trim().to_ascii_lowercase();
            if check != check_code(n, &hex) {
                let mut msg = format!(
                    "line {n}: check code does not match; re-read line {n} on the sheet (a digit \
                     or its check code was copied wrongly"
                );
                if hex.len() != LINE_CHARS && group_count != GROUPS_PER_LINE {
                    let _ = write!(
                        msg,
                        ", and it has {group_count} groups where a full line has {GROUPS_PER_LINE}"
                    );
                }
                msg.push(')');
                problems.push(msg);
                continue;
            }
            groups.push((n, hex));
        }

        if !qr.is_empty() && groups.is_empty() {
            return finish_qr(sheet, qr, qr_keyid, qr_type, problems);
        }
        if groups.is_empty() {
            return Err(if problems.is_empty() {
                SheetError::NoLines
            } else {
                SheetError::BadLines(problems)
            });
        }
        groups.sort_by_key(|(n, _)| *n);
        let highest = groups.last().map(|(n, _)| *n).unwrap_or(0);
        let expected = declared_lines.unwrap_or(highest).max(highest);
        let bad: std::collections::BTreeSet<usize> = problems
            .iter()
            .filter_map(|p| p.strip_prefix("line ")?.split(':').next()?.parse().ok())
            .collect();
        for w in groups.windows(2) {
            if w[0].0 == w[1].0 {
                problems.push(format!("line {} appears twice", w[0].0));
            }
        }
        for n in 1..=expected {
            if !groups.iter().any(|(g, _)| *g == n) && !bad.contains(&n) {
                problems.push(format!("line {n} is missing"));
            }
        }
        for (n, hex) in &groups {
            if *n < expected && hex.len() != LINE_CHARS {
                problems.push(format!(
                    "line {n}: has {} hex digits where a full line has {LINE_CHARS}",
                    hex.len()
                ));
            }
        }
        if let Some((n, hex)) = groups.last() {
            if hex.len() % 2 != 0 || hex.is_empty() {
                problems.push(format!("line {n}: has an odd number of hex digits"));
            }
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| line_number_of(p));
            return Err(SheetError::BadLines(problems));
        }
        let total: usize = groups.iter().map(|(_, h)| h.len()).sum();
        let mut all = Zeroizing::new(String::with_capacity(total));
        for (_, h) in &groups {
            all.push_str(h);
        }
        sheet.payload = Zeroizing::new(hex::decode(all.as_bytes()).map_err(|_| {
            SheetError::BadLines(vec!["the lines do not form whole bytes".to_string()])
        })?);
        Ok(sheet)
    }

    fn line_number_of(problem: &str) -> usize {
        problem
            .strip_prefix("line ")
            .and_then(|r| {
                let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                r[..end].parse().ok()
            })
            .unwrap_or(usize::MAX)
    }

    fn finish_qr(
        mut sheet: ParsedSheet,
        mut qr: Vec<(usize, usize, Zeroizing<String>)>,
        qr_keyid: Option<String>,
        qr_type: Option<String>,
        mut problems: Vec<String>,
    ) -> Result<ParsedSheet, SheetError> {
        qr.sort_by_key(|(i, _, _)| *i);
        let n = qr[0].1;
        if qr.iter().any(|(_, m, _)| *m != n) {
            problems.push("the QR parts disagree on how many parts there are".to_string());
        }
        for i in 1..=n {
            match qr.iter().filter(|(j, _, _)| *j == i).count() {
                0 => problems.push(format!("QR part {i} of {n} is missing")),
                1 => {}
                _ => problems.push(format!("QR part {i} of {n} appears twice")),
            }
        }
        if !problems.is_empty() {
            return Err(SheetError::BadLines(problems));
        }
        let mut all = Zeroizing::new(String::new());
        for (_, _, h) in &qr {
            all.push_str(h);
        }
        let decoded = Zeroizing::new(hex::decode(all.as_bytes()).map_err(|_| {
            SheetError::BadLines(vec!["the QR texts are not whole hex bytes".to_string()])
        })?);
        let is_rsa = qr_type
            .as_deref()
            .is_some_and(|t| KeyType::parse(t).ok() == Some(KeyType::Rsa));
        sheet.from_qr = true;
        sheet.payload = if is_rsa {
            rsa_der_to_pem(&decoded)
        } else {
            decoded
        };
        match (&sheet.keyid, qr_keyid) {
            (Some(a), Some(b)) if *a != b => {
                return Err(SheetError::KeyIdConflict {
                    given: a.clone(),
                    sheet: b,
                })
            }
            (None, b) => sheet.keyid = b,
            _ => {}
        }
        if sheet.keytype.is_none() {
            sheet.keytype = qr_type;
        }
        Ok(sheet)
    }

    impl ParsedSheet {
        /// A sheet read by other means (e.g. Shamir shares combined): `payload` as
        /// [`payload`] makes it.
        pub fn new(keyid: &KeyId, keytype: &str, payload: Zeroizing<Vec<u8>>) -> ParsedSheet {
            ParsedSheet {
                keyid: Some(keyid.to_string()),
                keytype: Some(keytype.to_string()),
                from_qr: false,
                payload,
            }
        }

        /// The bytes the lines (or QR texts) hold (secret).
        pub fn payload(&self) -> &[u8] {
            &self.payload
        }

        /// Rebuilds the private key and checks its keyid against the sheet and `expected`
        /// (from the command line; at least one of the two is required).
        pub fn rebuild(&self, expected: Option<&KeyId>) -> Result<PrivateKey, SheetError> {
            let sheet_id = match &self.keyid {
                Some(k) => Some(KeyId::parse(k).map_err(|_| SheetError::BadKeyId)?),
                None => None,
            };
            let want = match (expected, sheet_id) {
                (Some(e), Some(s)) if *e != s => {
                    return Err(SheetError::KeyIdConflict {
                        given: e.to_string(),
                        sheet: s.to_string(),
                    })
                }
                (Some(e), _) => e.clone(),
                (None, Some(s)) => s,
                (None, None) => return Err(SheetError::NoKeyId),
            };
            let rsa_pem = self.payload.starts_with(b"-----BEGIN");
            let keytype = match &self.keytype {
                Some(t) => t.clone(),
                None if rsa_pem => "RSA".to_string(),
                None => "ED25519".to_string(),
            };
            if keytype.is_empty() || !keytype.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(SheetError::BadKeyType(keytype));
            }
            let kt =
                KeyType::parse(&keytype).map_err(|_| SheetError::BadKeyType(keytype.clone()))?;
            let bad = |reason: &str| SheetError::BadKey {
                keytype: keytype.clone(),
                reason: reason.to_string(),
            };
            // The `.sec` JSON, built in a buffer sized up front (no stray copies).
            let mut json = Zeroizing::new(Vec::with_capacity(self.payload.len() * 2 + 128));
            json.extend_from_slice(b"{\"keytype\":");
            shared::canonical::write_string(keytype.as_bytes(), &mut json);
            json.extend_from_slice(b",\"keyval\":{\"private\":");
            match kt {
                KeyType::Ed25519 => {
                    if self.payload.len() != 32 {
                        return Err(bad(&format!(
                            "an ED25519 seed is 32 bytes, the lines hold {}",
                            self.payload.len()
                        )));
                    }
                    let hex = Zeroizing::new(hex::encode(&self.payload[..]));
                    shared::canonical::write_string(hex.as_bytes(), &mut json);
                }
                KeyType::Rsa => {
                    if !rsa_pem || std::str::from_utf8(&self.payload).is_err() {
                        return Err(bad("the content is not a PEM text"));
                    }
                    shared::canonical::write_string(&self.payload, &mut json);
                }
            }
            json.extend_from_slice(b"}}");
            let key = PrivateKey::from_json(&json).map_err(|e| bad(&e.to_string()))?;
            if *key.keyid() != want {
                return Err(SheetError::KeyIdMismatch {
                    expected: want,
                    actual: key.keyid().clone(),
                });
            }
            Ok(key)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn info() -> SheetInfo {
            SheetInfo {
                role: "root".into(),
                created_at: Some("2026-03-01T10:20:30Z".into()),
                printed_at: "2026-04-01T00:00:00Z".into(),
                source: "root.keys.tgz".into(),
            }
        }

        fn seed_key() -> PrivateKey {
            let mut seed = [0u8; 32];
            for (i, b) in seed.iter_mut().enumerate() {
                *b = i as u8;
            }
            PrivateKey::ed25519_from_seed(&seed)
        }

        #[test]
        fn ed25519_round_trip_and_layout() {
            let key = seed_key();
            let sheet = render(&key, &info()).unwrap();
            assert!(sheet.contains(
                "keyid:     a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5"
            ));
            let first = format!(
                " 001: 0001 0203 0405 0607 0809 0a0b 0c0d 0e0f | {}",
                check_code(1, "000102030405060708090a0b0c0d0e0f")
            );
            assert!(sheet.lines().any(|l| l == first), "{}", &sheet[..]);
            assert!(sheet.contains("QR code 1 of 1"));
            assert!(!sheet.contains('\u{0c}'));
            for l in sheet.lines() {
                assert!(l.chars().count() <= 80, "line too wide: {l}");
            }
            let parsed = parse(&sheet).unwrap();
            let back = parsed.rebuild(None).unwrap();
            assert_eq!(back.keyid(), key.keyid());
            assert_eq!(&back.to_json()[..], &key.to_json()[..]);
        }

        #[test]
        fn check_codes_catch_typos_by_line() {
            let key = seed_key();
            let sheet = render(&key, &info()).unwrap();
            // Change one digit of line 2.
            let edited: String = sheet
                .lines()
                .map(|l| {
                    if l.starts_with(" 002:") {
                        l.replacen("1011", "1012", 1)
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            match parse(&edited).unwrap_err() {
                SheetError::BadLines(p) => {
                    assert_eq!(p.len(), 1, "{p:?}");
                    assert!(p[0].starts_with("line 2: check code"), "{p:?}");
                }
                other => panic!("{other}"),
            }
        }

        #[test]
        fn missing_and_swapped_lines() {
            let key = seed_key();
            let sheet = render(&key, &info()).unwrap();
            let without: String = sheet
                .lines()
                .filter(|l| !l.starts_with(" 001:"))
                .collect::<Vec<_>>()
                .join("\n");
            assert_eq!(
                parse(&without).unwrap_err(),
                SheetError::BadLines(vec!["line 1 is missing".into()])
            );
            // Swapping the numbers of two lines breaks both check codes.
            let swapped = sheet
                .replace(" 001:", " 00X:")
                .replace(" 002:", " 001:")
                .replace(" 00X:", " 002:");
            match parse(&swapped).unwrap_err() {
                SheetError::BadLines(p) => assert_eq!(p.len(), 2, "{p:?}"),
                other => panic!("{other}"),
            }
        }

        #[test]
        fn typed_groups_without_header_need_keyid() {
            let key = seed_key();
            let sheet = render(&key, &info()).unwrap();
            let typed: String = sheet
                .lines()
                .filter(|l| l.trim_start().starts_with("00"))
                .map(|l| l.to_uppercase())
                .collect::<Vec<_>>()
                .join("\n");
            let parsed = parse(&typed).unwrap();
            assert_eq!(parsed.rebuild(None).unwrap_err(), SheetError::NoKeyId);
            let back = parsed.rebuild(Some(key.keyid())).unwrap();
            assert_eq!(back.keyid(), key.keyid());
            let other = PrivateKey::ed25519_from_seed(&[9; 32]);
            assert!(matches!(
                parsed.rebuild(Some(other.keyid())).unwrap_err(),
                SheetError::KeyIdMismatch { .. }
            ));
        }

        #[test]
        fn qr_text_restores() {
            let key = seed_key();
            let sheet = render(&key, &info()).unwrap();
            let hex = hex::encode(super::payload(&key).unwrap().as_slice());
            let text = format!(
                "{QR_PREFIX} ED25519 {} 1/1 {}\n",
                key.keyid().as_str().to_uppercase(),
                hex.to_uppercase()
            );
            assert!(sheet.contains(&format!("{} characters", text.trim_end().len())));
            let back = parse(&text).unwrap().rebuild(None).unwrap();
            assert_eq!(back.keyid(), key.keyid());
            let broken = format!("{QR_PREFIX} ED25519 {} 2/2 AB\n", key.keyid());
            assert!(matches!(
                parse(&broken).unwrap_err(),
                SheetError::BadLines(_)
            ));
        }

        #[test]
        fn non_hex_is_reported_without_echo() {
            let text = "keyid: 00\n001: 00g1 | abcd\n";
            match parse(text).unwrap_err() {
                SheetError::BadLines(p) => {
                    assert!(p[0].contains("line 1") && !p[0].contains("00g1"), "{p:?}")
                }
                other => panic!("{other}"),
            }
            assert_eq!(parse("hello\n").unwrap_err(), SheetError::NoLines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::SecretString;

    fn pass() -> PassphraseSource {
        PassphraseSource::value(SecretString::from("pw")).with_work_factor(10)
    }

    fn tarball_with(keys: &[(Role, [u8; 32])]) -> KeysTarball {
        let mut t = KeysTarball::new();
        for (role, seed) in keys {
            t.add_private_key(*role, &PrivateKey::ed25519_from_seed(seed))
                .unwrap();
        }
        t
    }

    /// A factory at v2 (first-time rotation applied: key 1 → key 100) and a tarball holding
    /// both root keys, as a first-time rotation leaves it.
    fn rotated() -> (crate::testutil::Factory, KeysTarball) {
        let mut f = crate::testutil::Factory::new();
        f.apply_first_time_rotation();
        let mut t = KeysTarball::new();
        t.add_private_key(Role::Root, &f.first_root).unwrap();
        t.add_private_key(Role::Root, &f.root_keys[0]).unwrap();
        (f, t)
    }

    fn reference(root: &SignedRoot, pinned: bool, memory: Option<FactoryMemory>) -> ReferenceRoot {
        ReferenceRoot {
            source: "the test root".to_string(),
            root: root.clone(),
            pinned: pinned.then_some(root.signed.version),
            memory,
        }
    }

    #[test]
    fn the_reference_root_names_the_active_root_key() {
        let (f, t) = rotated();
        let p = Path::new("root.keys.tgz");
        let v2 = reference(&f.chain[1], true, None);
        let k = active_root_key(p, &t, &v2).unwrap();
        assert_eq!(&k.keyid, f.root_keys[0].keyid());
        // An older root names the older key: with --root that is what was asked for.
        let v1 = reference(&f.chain[0], false, None);
        assert_eq!(
            &active_root_key(p, &t, &v1).unwrap().keyid,
            f.first_root.keyid()
        );
        // A pin at v1 while this signer signed v2 with the new key may lag: refused.
        let mut m = FactoryMemory::default();
        m.remember("ci-root", &f.chain[1], memory::How::SignedFirstTime, f.now)
            .unwrap();
        let lagging = reference(&f.chain[0], true, Some(m));
        let err = active_root_key(p, &t, &lagging).unwrap_err();
        assert!(
            matches!(
                err,
                KeysError::PinMayLag {
                    signed: 2,
                    pinned: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("signer inspect BUNDLE"), "{err}");
        // A tarball without the key the root lists.
        let other = tarball_with(&[(Role::Root, [9; 32])]);
        let err = active_root_key(p, &other, &v2).unwrap_err();
        assert!(matches!(err, KeysError::NoActiveRootKey { .. }), "{err}");
    }

    #[test]
    fn key_states_from_the_pin_and_the_memory() {
        let (mut f, _) = rotated();
        let (first, k100) = (f.first_root.keyid().clone(), f.root_keys[0].keyid().clone());
        let public = |k: &PrivateKey| k.public_key().clone();
        let mut m = FactoryMemory::default();
        for r in &f.chain {
            m.remember("ci-root", r, memory::How::Pinned, f.now)
                .unwrap();
        }
        // This signer signed a v3 with key 7 that was never applied (v3 was applied with
        // key 8), and a v4 with key 9 that is not applied yet.
        let signed_with = |base: &SignedRoot, version: u64, k: &PrivateKey| {
            let mut r = base.clone();
            r.signed.version = version;
            r.signed
                .keys
                .insert(k.keyid().clone(), k.public_key().clone());
            r.signed.roles.get_mut("root").unwrap().keyids = vec![k.keyid().clone()];
            r
        };
        let (k7, k8, k9) = (
            PrivateKey::ed25519_from_seed(&[7; 32]),
            PrivateKey::ed25519_from_seed(&[8; 32]),
            PrivateKey::ed25519_from_seed(&[9; 32]),
        );
        let v2 = f.chain[1].clone();
        m.remember(
            "ci-root",
            &signed_with(&v2, 3, &k7),
            memory::How::Signed,
            f.now,
        )
        .unwrap();
        let applied_v3 = signed_with(&v2, 3, &k8);
        m.remember("ci-root", &applied_v3, memory::How::Pinned, f.now)
            .unwrap();
        m.remember(
            "ci-root",
            &signed_with(&applied_v3, 4, &k9),
            memory::How::Signed,
            f.now,
        )
        .unwrap();
        f.chain.push(applied_v3.clone());
        let r = reference(&applied_v3, true, Some(m));
        assert_eq!(
            r.state_of(k8.keyid(), &public(&k8)),
            KeyState::Active {
                roles: vec!["root".to_string()]
            }
        );
        assert_eq!(
            r.state_of(&k100, &public(&f.root_keys[0])),
            KeyState::RotatedOut {
                last_applied_version: 2
            }
        );
        assert_eq!(
            r.state_of(&first, &public(&f.first_root)),
            KeyState::RotatedOut {
                last_applied_version: 1
            }
        );
        assert!(matches!(
            r.state_of(k7.keyid(), &public(&k7)),
            KeyState::NeverApplied {
                signed_version: 3,
                ..
            }
        ));
        assert!(matches!(
            r.state_of(k9.keyid(), &public(&k9)),
            KeyState::NotYetApplied {
                signed_version: 4,
                ..
            }
        ));
        let stranger = PrivateKey::ed25519_from_seed(&[42; 32]);
        assert_eq!(
            r.state_of(stranger.keyid(), &public(&stranger)),
            KeyState::NotInRoot
        );
        // Without memory, only the root speaks.
        let bare = reference(&applied_v3, true, None);
        assert_eq!(bare.state_of(k7.keyid(), &public(&k7)), KeyState::NotInRoot);
    }

    #[test]
    fn export_needs_flag_and_refuses_overwrite() {
        let (f, t) = rotated();
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("root.keys.tgz");
        keystore::save_new(&keys, &t, &pass()).unwrap();
        let v2 = reference(&f.chain[1], true, None);
        let out = dir.path().join("root.sec");
        let err = export_root(&keys, &v2, &out, false, &pass()).unwrap_err();
        assert!(err.to_string().contains(EXPORT_FLAG));
        assert!(!out.exists());
        let k = export_root(&keys, &v2, &out, true, &pass()).unwrap();
        let back = PrivateKey::from_json(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(back.keyid(), &k.keyid);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            export_root(&keys, &v2, &out, true, &pass()).unwrap_err(),
            KeysError::OutputExists { .. }
        ));
    }

    #[test]
    fn without_a_pin_export_refuses_and_list_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("root.keys.tgz");
        keystore::save_new(&keys, &tarball_with(&[(Role::Root, [1; 32])]), &pass()).unwrap();
        let err = ReferenceRoot::resolve(dir.path(), &RootArgs::default()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("signer trust init") && msg.contains("--root"),
            "{msg}"
        );
        let mut out = Vec::new();
        let cmd = KeysCommand::List(ListArgs {
            keys,
            root: RootArgs::default(),
            json: false,
            passphrase: PassphraseArgs::default(),
        });
        run_with_output(&cmd, dir.path(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("not compared with any root"), "{text}");
        assert!(text.contains("active: unknown"), "{text}");
    }

    #[test]
    fn list_never_shows_private_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("root.keys.tgz");
        let t = tarball_with(&[(Role::Root, [1; 32])]);
        keystore::save_new(&keys, &t, &pass()).unwrap();
        let cmd = KeysCommand::List(ListArgs {
            keys: keys.clone(),
            root: RootArgs::default(),
            json: false,
            passphrase: PassphraseArgs::default(),
        });
        let mut out = Vec::new();
        run_with_output(&cmd, dir.path(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let key = PrivateKey::ed25519_from_seed(&[1; 32]);
        assert!(text.contains(key.keyid().as_str()), "{text}");
        assert!(text.contains("offline root key"), "{text}");
        assert!(!text.contains(&hex::encode([1u8; 32])), "{text}");
    }
}
