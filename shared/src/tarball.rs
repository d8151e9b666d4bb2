//! Offline keys tarballs (`root.keys.tgz`, `targets.keys.tgz`) in fioctl's layout.
//!
//! A keys tarball is a gzip-compressed tar of key files:
//!
//! | entry | content |
//! |-------|---------|
//! | `tufrepo/keys/first-root.pub` / `.sec` | the initial Foundries root key pair, bytes exactly as the server sent them |
//! | `tufrepo/keys/fioctl-root-<keyid>.pub` / `.sec` | every offline root key generated |
//! | `tufrepo/keys/fioctl-targets-<keyid>.pub` / `.sec` | every offline targets key generated |
//!
//! Keys are never removed: rotated-out keys stay, which is how "find the current key"
//! works. Other entries (legacy garage-sign files, notes) are kept untouched and written
//! back as they were.
//!
//! # Checks on read ([`KeysTarball::from_bytes`])
//!
//! Besides the archive hardening of [`crate::archive`] (no links, devices, path tricks,
//! duplicates, size limits):
//!
//! * every `*.pub` entry must parse as a public key JSON (fioctl's key search would fail
//!   on it later otherwise) and hold no private key material (a `keyval.private` member, a
//!   PEM private key, a 64-byte Ed25519 private key as the public value): such a tarball is
//!   refused naming the entry, never the material;
//! * every `*.sec` entry must parse as a private key, have a `*.pub` partner, and its public
//!   half must be that partner's key;
//! * for `fioctl-<role>-<keyid>.{pub,sec}` names, `<keyid>` must be the key's real id.
//!
//! Every error names the entry. Private key bytes are held in [`Zeroizing`] buffers and
//! never appear in `Debug` output or error messages.
//!
//! # Key search ([`KeysTarball::find_signers`], [`KeysTarball::find_one_signer`])
//!
//! fioctl's `findTufSigners`: for each candidate key id of a root, take the root's public
//! key, and look for `.pub` entries (anywhere in the tarball) whose trimmed public value
//! equals it; the private key is the partner `.sec`. The `.sec` `keytype` must equal the
//! root's byte for byte. Unlike fioctl, a private key whose computed key id differs from
//! the root's key id is refused (it would sign with the wrong id), and the same key stored
//! under two names counts once.
//!
//! # Writing
//!
//! [`KeysTarball::to_bytes`] is deterministic: entries sorted by name, mode `0600`, mtime 0,
//! gzip with a fixed header. [`KeysTarball::write_atomic`] replaces the file atomically
//! ([`crate::fsutil`]) with mode `0600`; [`KeysTarball::write_new`] refuses to replace an
//! existing file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::archive::{self, ArchiveError, Compression, Limits, MemberRef};
use crate::fsutil::{self, FsError};
use crate::keys::{KeyError, KeyId, KeyType, PrivateKey, PublicKey};
use crate::metadata::{Role, Root};

/// Directory of fioctl's key files inside the tarball.
pub const KEYS_DIR: &str = "tufrepo/keys/";
/// The initial Foundries root public key (first-time rotation).
pub const FIRST_ROOT_PUB: &str = "tufrepo/keys/first-root.pub";
/// The initial Foundries root private key (first-time rotation).
pub const FIRST_ROOT_SEC: &str = "tufrepo/keys/first-root.sec";

/// Limits applied when reading a keys tarball: 4096 entries, 1 MiB per entry, 64 MiB in all.
pub const LIMITS: Limits = Limits::new(4096, 1024 * 1024, 64 * 1024 * 1024);

/// Largest keys tarball file accepted (compressed), in bytes.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Unix mode of the tarball file and of its entries.
pub const MODE: u32 = 0o600;

/// Errors of keys tarball handling. Every variant names the file or entry concerned.
#[derive(Debug, thiserror::Error)]
pub enum TarballError {
    /// The archive itself was refused.
    #[error("keys tarball: {0}")]
    Archive(#[from] ArchiveError),
    /// The tarball file could not be read or written.
    #[error("keys tarball: {0}")]
    File(#[from] FsError),
    /// A `.pub` entry is not a valid public key file.
    #[error("keys tarball entry {file}: not a valid public key file: {source}")]
    BadPublicKey {
        /// Entry name.
        file: String,
        /// Why.
        source: KeyError,
    },
    /// A public key entry (`*.pub`) holds private key material: refused so that the secret
    /// is never handled (listed, compared, copied into a root) as a public key. The message
    /// names the entry and what was found, never the material.
    #[error(
        "keys tarball entry {file} is a public key file but holds private key material \
         ({found}); the tarball is refused so that the secret is not handled as a public key. \
         Rebuild the tarball with a .pub file that holds only keytype and keyval.public (a \
         restore from a backup, or `signer keys restore`)"
    )]
    PrivateInPublic {
        /// Entry name.
        file: String,
        /// What private material was found (never the material itself).
        found: &'static str,
    },
    /// A `.sec` entry is not a valid private key file.
    #[error("keys tarball entry {file}: not a valid private key file: {source}")]
    BadPrivateKey {
        /// Entry name.
        file: String,
        /// Why (never contains key material).
        source: KeyError,
    },
    /// A `.sec` entry has no `.pub` partner.
    #[error("keys tarball entry {sec_file} has no public key partner {pub_file}")]
    MissingPublic {
        /// The private key entry.
        sec_file: String,
        /// The expected public key entry.
        pub_file: String,
    },
    /// A `.pub` entry that matched a root key has no `.sec` partner.
    #[error("keys tarball has {pub_file} for key {keyid} but no private key {sec_file}")]
    MissingPrivate {
        /// The matching public key entry.
        pub_file: String,
        /// The expected private key entry.
        sec_file: String,
        /// The root's key id.
        keyid: KeyId,
    },
    /// A private key does not belong to its `.pub` partner.
    #[error("keys tarball entry {sec_file} holds a different key than {pub_file}; the tarball is corrupt or was edited by hand")]
    KeyMismatch {
        /// The private key entry.
        sec_file: String,
        /// Its public partner.
        pub_file: String,
    },
    /// A `fioctl-<role>-<keyid>` file name does not carry the key's real id.
    #[error(
        "keys tarball entry {file}: the file name says key id {named} but the key's id is {actual}"
    )]
    FileNameKeyId {
        /// Entry name.
        file: String,
        /// Key id in the name.
        named: String,
        /// Computed key id.
        actual: KeyId,
    },
    /// A candidate key id is not in the root.
    #[error("Unable to find key {0} in root.json")]
    UnknownKeyId(KeyId),
    /// The `.sec` key type differs from the root's (byte comparison, like fioctl).
    #[error(
        "Mismatch in key type for {file}: root.json says {root:?}, the file says {file_keytype:?}"
    )]
    KeyTypeMismatch {
        /// The private key entry.
        file: String,
        /// Key type string in root.json.
        root: String,
        /// Key type string in the file.
        file_keytype: String,
    },
    /// A private key matched by public value has another key id than the root claims.
    #[error("root.json lists key {root_keyid} whose private key in {file} has key id {actual}; refusing to sign with a mislabelled key")]
    RootKeyIdMismatch {
        /// The private key entry.
        file: String,
        /// Key id in the root.
        root_keyid: KeyId,
        /// Computed key id.
        actual: KeyId,
    },
    /// No private key for any candidate key id (distinguishable "not found").
    #[error("No private key found for key IDs: [{}]", join_ids(.keyids))]
    NoPrivateKey {
        /// The candidate key ids.
        keyids: Vec<KeyId>,
    },
    /// More than one active private key for the role in one tarball.
    #[error("more than one active private key for the same role in one file ({}): this is unsupported and insecure; provide a file with a single active signing key", .files.join(", "))]
    MultipleActiveKeys {
        /// The matching private key entries.
        files: Vec<String>,
    },
    /// An active private key is already present where none may be.
    #[error("It is not allowed to store more than one active private key per file (found {})", .files.join(", "))]
    ActiveKeyPresent {
        /// The matching private key entries.
        files: Vec<String>,
    },
    /// Only root and targets keys are offline keys.
    #[error("{0} keys are online keys held by Foundries; only root and targets keys can be stored in a keys tarball")]
    NotOfflineRole(Role),
    /// The entry to add exists already.
    #[error("keys tarball already contains {0}")]
    AlreadyPresent(String),
    /// Key generation failed.
    #[error("cannot generate a key: {0}")]
    Generate(KeyError),
}

impl TarballError {
    /// Whether this is the "no private key found" case (fioctl's distinguishable error).
    pub fn is_not_found(&self) -> bool {
        matches!(self, TarballError::NoPrivateKey { .. })
    }
}

fn join_ids(ids: &[KeyId]) -> String {
    ids.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" ")
}

/// What a key file name says about the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFileKind {
    /// `tufrepo/keys/first-root.{pub,sec}`: the initial Foundries root key.
    FirstRoot,
    /// `tufrepo/keys/fioctl-<role>-<keyid>.{pub,sec}`: a key generated by fioctl or this
    /// toolkit.
    Generated {
        /// Role from the file name.
        role: Role,
    },
    /// Any other `*.pub`: legacy or hand-made.
    Other,
}

/// One key pair (or lone public key) in a tarball, as listed by [`KeysTarball::keys`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's id (computed from the public key).
    pub keyid: KeyId,
    /// What the file name says.
    pub kind: KeyFileKind,
    /// The `.pub` entry.
    pub pub_file: String,
    /// The `.sec` entry, if present.
    pub sec_file: Option<String>,
    /// The public key.
    pub public: PublicKey,
}

impl KeyInfo {
    /// The role from the file name (`first-root` → root), if any.
    pub fn role(&self) -> Option<Role> {
        match self.kind {
            KeyFileKind::FirstRoot => Some(Role::Root),
            KeyFileKind::Generated { role } => Some(role),
            KeyFileKind::Other => None,
        }
    }
}

/// A private key found for a root key id.
#[derive(Debug)]
pub struct FoundKey {
    /// The key id (as in the root, equal to the key's computed id).
    pub keyid: KeyId,
    /// The `.sec` entry it came from.
    pub sec_file: String,
    /// The private key.
    pub key: PrivateKey,
}

/// An offline keys tarball held in memory.
#[derive(Clone, Default)]
pub struct KeysTarball {
    entries: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for KeysTarball {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: never the bytes.
        f.debug_struct("KeysTarball")
            .field("entries", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `name` without `.pub` / `.sec` if it ends with that suffix.
fn stem<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    name.strip_suffix(suffix)
}

/// Parses `tufrepo/keys/fioctl-<role>-<keyid>.<ext>` into (role, keyid text).
fn parse_generated_name(name: &str) -> Option<(Role, &str)> {
    let base = name.strip_prefix(KEYS_DIR)?;
    let base = base
        .strip_suffix(".pub")
        .or_else(|| base.strip_suffix(".sec"))?;
    let rest = base.strip_prefix("fioctl-")?;
    let (role, keyid) = rest.split_once('-')?;
    let role = match role {
        "root" => Role::Root,
        "targets" => Role::Targets,
        _ => return None,
    };
    Some((role, keyid))
}

fn kind_of(pub_name: &str) -> KeyFileKind {
    if pub_name == FIRST_ROOT_PUB {
        KeyFileKind::FirstRoot
    } else if let Some((role, _)) = parse_generated_name(pub_name) {
        KeyFileKind::Generated { role }
    } else {
        KeyFileKind::Other
    }
}

impl KeysTarball {
    /// An empty tarball.
    pub fn new() -> KeysTarball {
        KeysTarball::default()
    }

    /// Parses and checks a keys tarball (gzip or plain tar).
    pub fn from_bytes(bytes: &[u8]) -> Result<KeysTarball, TarballError> {
        let members = archive::read(bytes, &LIMITS)?;
        let mut entries = BTreeMap::new();
        for m in members {
            entries.insert(m.name, m.data);
        }
        let tarball = KeysTarball { entries };
        tarball.check()?;
        Ok(tarball)
    }

    /// Reads and checks a keys tarball file (at most [`MAX_FILE_SIZE`] bytes).
    pub fn read(path: impl AsRef<Path>) -> Result<KeysTarball, TarballError> {
        let bytes = Zeroizing::new(fsutil::read_limited(path, MAX_FILE_SIZE)?);
        KeysTarball::from_bytes(&bytes)
    }

    /// The deterministic gzip-compressed tarball bytes.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, TarballError> {
        let members: Vec<MemberRef<'_>> = self
            .entries
            .iter()
            .map(|(name, data)| MemberRef {
                name,
                data,
                mode: MODE,
            })
            .collect();
        Ok(archive::write(&members, Compression::Gzip)?)
    }

    /// Atomically replaces (or creates) the tarball file at `path` (mode `0600`).
    pub fn write_atomic(&self, path: impl AsRef<Path>) -> Result<(), TarballError> {
        let bytes = self.to_bytes()?;
        Ok(fsutil::write_atomic(path, &bytes, MODE)?)
    }

    /// Atomically creates the tarball file at `path` (mode `0600`), refusing to replace an
    /// existing file.
    pub fn write_new(&self, path: impl AsRef<Path>) -> Result<(), TarballError> {
        let bytes = self.to_bytes()?;
        Ok(fsutil::write_atomic_new(path, &bytes, MODE)?)
    }

    /// All entry names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Whether an entry exists.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Whether the tarball has no entries at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys (every `.pub` entry and its `.sec` partner if any), sorted by `.pub` name.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, TarballError> {
        let mut out = Vec::new();
        for (name, data) in &self.entries {
            let Some(base) = stem(name, ".pub") else {
                continue;
            };
            let public = parse_public(name, data)?;
            let keyid = public
                .keyid()
                .map_err(|source| TarballError::BadPublicKey {
                    file: name.clone(),
                    source,
                })?;
            let sec = format!("{base}.sec");
            out.push(KeyInfo {
                keyid,
                kind: kind_of(name),
                pub_file: name.clone(),
                sec_file: self.entries.contains_key(&sec).then_some(sec),
                public,
            });
        }
        Ok(out)
    }

    /// The private key with computed key id `keyid`, if the tarball holds it.
    pub fn private_key(&self, keyid: &KeyId) -> Result<Option<FoundKey>, TarballError> {
        for info in self.keys()? {
            if &info.keyid == keyid {
                if let Some(sec_file) = info.sec_file {
                    let key = self.load_private(&info.pub_file, &sec_file, keyid)?;
                    return Ok(Some(FoundKey {
                        keyid: keyid.clone(),
                        sec_file,
                        key,
                    }));
                }
            }
        }
        Ok(None)
    }

    /// fioctl's `findTufSigners`: the private keys of the tarball that match any of
    /// `candidates` in `root` (see the module documentation).
    pub fn find_signers(
        &self,
        root: &Root,
        candidates: &[KeyId],
    ) -> Result<Vec<FoundKey>, TarballError> {
        let mut wanted = Vec::new();
        for id in candidates {
            let key = root
                .keys
                .get(id)
                .ok_or_else(|| TarballError::UnknownKeyId(id.clone()))?;
            wanted.push((id, key));
        }
        let mut found: Vec<FoundKey> = Vec::new();
        for (name, data) in &self.entries {
            let Some(base) = stem(name, ".pub") else {
                continue;
            };
            let public = parse_public(name, data)?;
            let Some((root_keyid, root_key)) = wanted
                .iter()
                .find(|(_, k)| k.public().trim() == public.public().trim())
            else {
                continue;
            };
            let sec_file = format!("{base}.sec");
            let key = self.load_private(name, &sec_file, root_keyid)?;
            if key.public_key().keytype() != root_key.keytype() {
                return Err(TarballError::KeyTypeMismatch {
                    file: sec_file,
                    root: root_key.keytype().to_string(),
                    file_keytype: key.public_key().keytype().to_string(),
                });
            }
            if key.keyid() != *root_keyid {
                return Err(TarballError::RootKeyIdMismatch {
                    file: sec_file,
                    root_keyid: (*root_keyid).clone(),
                    actual: key.keyid().clone(),
                });
            }
            if found.iter().any(|f| &f.keyid == *root_keyid) {
                continue; // Same key stored twice: one signer.
            }
            found.push(FoundKey {
                keyid: (*root_keyid).clone(),
                sec_file,
                key,
            });
        }
        Ok(found)
    }

    /// fioctl's `FindOneTufSigner`: exactly one match required; none is
    /// [`TarballError::NoPrivateKey`] (see [`TarballError::is_not_found`]), more is
    /// [`TarballError::MultipleActiveKeys`].
    pub fn find_one_signer(
        &self,
        root: &Root,
        candidates: &[KeyId],
    ) -> Result<FoundKey, TarballError> {
        let mut found = self.find_signers(root, candidates)?;
        match found.len() {
            0 => Err(TarballError::NoPrivateKey {
                keyids: candidates.to_vec(),
            }),
            1 => Ok(found.remove(0)),
            _ => Err(TarballError::MultipleActiveKeys {
                files: found.into_iter().map(|f| f.sec_file).collect(),
            }),
        }
    }

    /// fioctl's `checkNoTufSigner`: refuses if the tarball holds a private key for any of
    /// `candidates` (used before adding a key of the same role to this file).
    pub fn check_no_signer(&self, root: &Root, candidates: &[KeyId]) -> Result<(), TarballError> {
        let found = self.find_signers(root, candidates)?;
        if found.is_empty() {
            Ok(())
        } else {
            Err(TarballError::ActiveKeyPresent {
                files: found.into_iter().map(|f| f.sec_file).collect(),
            })
        }
    }

    /// Generates a new key pair for `role` (root or targets) and stores it as
    /// `tufrepo/keys/fioctl-<role>-<keyid>.{pub,sec}`.
    pub fn add_generated_key(
        &mut self,
        role: Role,
        keytype: KeyType,
    ) -> Result<(KeyId, PublicKey), TarballError> {
        offline_role(role)?;
        let key = PrivateKey::generate(keytype).map_err(TarballError::Generate)?;
        self.add_private_key(role, &key)
    }

    /// Stores an existing private key for `role` (root or targets) under fioctl's name;
    /// deterministic, for fixtures and tests.
    pub fn add_private_key(
        &mut self,
        role: Role,
        key: &PrivateKey,
    ) -> Result<(KeyId, PublicKey), TarballError> {
        offline_role(role)?;
        let keyid = key.keyid().clone();
        let base = format!("{KEYS_DIR}fioctl-{}-{}", role.as_str(), keyid.as_str());
        let pub_file = format!("{base}.pub");
        let sec_file = format!("{base}.sec");
        for f in [&pub_file, &sec_file] {
            if self.entries.contains_key(f) {
                return Err(TarballError::AlreadyPresent(f.clone()));
            }
        }
        let public = key.public_key().clone();
        self.entries
            .insert(pub_file, Zeroizing::new(public.to_json()));
        self.entries.insert(sec_file, key.to_json());
        Ok((keyid, public))
    }

    /// Stores the initial Foundries root key pair exactly as received from the server
    /// (`first_root.pub` / `first_root.sec` of the init response) as
    /// `tufrepo/keys/first-root.{pub,sec}`, after checking that the two belong together.
    pub fn add_first_root(
        &mut self,
        pub_json: &[u8],
        sec_json: &[u8],
    ) -> Result<KeyId, TarballError> {
        for f in [FIRST_ROOT_PUB, FIRST_ROOT_SEC] {
            if self.entries.contains_key(f) {
                return Err(TarballError::AlreadyPresent(f.to_string()));
            }
        }
        let public = parse_public(FIRST_ROOT_PUB, pub_json)?;
        let key = parse_private(FIRST_ROOT_SEC, sec_json)?;
        if !key.public_key().same_key(&public) {
            return Err(TarballError::KeyMismatch {
                sec_file: FIRST_ROOT_SEC.to_string(),
                pub_file: FIRST_ROOT_PUB.to_string(),
            });
        }
        self.entries.insert(
            FIRST_ROOT_PUB.to_string(),
            Zeroizing::new(pub_json.to_vec()),
        );
        self.entries.insert(
            FIRST_ROOT_SEC.to_string(),
            Zeroizing::new(sec_json.to_vec()),
        );
        Ok(key.keyid().clone())
    }

    /// Runs the read-time checks (see the module documentation).
    fn check(&self) -> Result<(), TarballError> {
        for (name, data) in &self.entries {
            if stem(name, ".pub").is_some() {
                let public = parse_public(name, data)?;
                if let Some((_, named)) = parse_generated_name(name) {
                    let actual = public
                        .keyid()
                        .map_err(|source| TarballError::BadPublicKey {
                            file: name.clone(),
                            source,
                        })?;
                    if named != actual.as_str() {
                        return Err(TarballError::FileNameKeyId {
                            file: name.clone(),
                            named: named.to_string(),
                            actual,
                        });
                    }
                }
            } else if let Some(base) = stem(name, ".sec") {
                let key = parse_private(name, data)?;
                let pub_file = format!("{base}.pub");
                let Some(pub_data) = self.entries.get(&pub_file) else {
                    return Err(TarballError::MissingPublic {
                        sec_file: name.clone(),
                        pub_file,
                    });
                };
                let public = parse_public(&pub_file, pub_data)?;
                if !key.public_key().same_key(&public) {
                    return Err(TarballError::KeyMismatch {
                        sec_file: name.clone(),
                        pub_file,
                    });
                }
                if let Some((_, named)) = parse_generated_name(name) {
                    if named != key.keyid().as_str() {
                        return Err(TarballError::FileNameKeyId {
                            file: name.clone(),
                            named: named.to_string(),
                            actual: key.keyid().clone(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Parses the `.sec` entry `sec_file`, which belongs to `pub_file` (key id `keyid`).
    fn load_private(
        &self,
        pub_file: &str,
        sec_file: &str,
        keyid: &KeyId,
    ) -> Result<PrivateKey, TarballError> {
        match self.entries.get(sec_file) {
            Some(data) => parse_private(sec_file, data),
            None => Err(TarballError::MissingPrivate {
                pub_file: pub_file.to_string(),
                sec_file: sec_file.to_string(),
                keyid: keyid.clone(),
            }),
        }
    }
}

fn offline_role(role: Role) -> Result<(), TarballError> {
    match role {
        Role::Root | Role::Targets => Ok(()),
        other => Err(TarballError::NotOfflineRole(other)),
    }
}

/// PEM labels of private keys (`-----BEGIN … PRIVATE KEY-----`: PKCS#1, PKCS#8, encrypted
/// PKCS#8, SEC 1, OpenSSH).
const PEM_PRIVATE: &[u8] = b"PRIVATE KEY-----";

/// What private key material a public key entry holds, if any: a `keyval.private` member,
/// a PEM private key anywhere in it, or an Ed25519 "public" value of 64 bytes (the seed and
/// public key, as Go's `ed25519.PrivateKey` encodes a private key).
fn private_material(data: &[u8]) -> Option<&'static str> {
    if data.windows(PEM_PRIVATE.len()).any(|w| w == PEM_PRIVATE) {
        return Some("a PEM private key");
    }
    let doc: serde_json::Value = serde_json::from_slice(data).ok()?;
    let val = doc.get("keyval")?;
    if val.get("private").is_some_and(|p| !p.is_null()) {
        return Some("a keyval.private member");
    }
    let ed25519 = doc
        .get("keytype")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("ed25519"));
    let public = val.get("public").and_then(serde_json::Value::as_str)?;
    let public = public.trim();
    (ed25519 && public.len() == 128 && public.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some("a 64-byte Ed25519 private key as its public value")
}

/// Parses a public key entry, refusing private material in it. A JSON syntax error is
/// reported without serde's text, which may quote the entry's content.
fn parse_public(file: &str, data: &[u8]) -> Result<PublicKey, TarballError> {
    if let Some(found) = private_material(data) {
        return Err(TarballError::PrivateInPublic {
            file: file.to_string(),
            found,
        });
    }
    PublicKey::from_json(data).map_err(|source| TarballError::BadPublicKey {
        file: file.to_string(),
        source: match source {
            KeyError::Json(_) => {
                KeyError::Json("not a key JSON document with keytype and keyval.public".into())
            }
            other => other,
        },
    })
}

fn parse_private(file: &str, data: &[u8]) -> Result<PrivateKey, TarballError> {
    PrivateKey::from_json(data).map_err(|source| TarballError::BadPrivateKey {
        file: file.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{key, RootBuilder};

    fn pub_json(k: &PrivateKey) -> Vec<u8> {
        k.public_key().to_json()
    }

    /// A root v2 whose root role is `root` and that also lists `others`.
    fn root_with(root: &PrivateKey, others: &[&PrivateKey]) -> Root {
        others
            .iter()
            .fold(RootBuilder::new(2).role(Role::Root, &[root], 1), |b, k| {
                b.unused_key(k)
            })
            .build()
    }

    fn raw_tarball(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let refs: Vec<_> = entries
            .iter()
            .map(|(n, d)| MemberRef {
                name: n,
                data: d,
                mode: 0,
            })
            .collect();
        archive::write(&refs, Compression::Gzip).unwrap().to_vec()
    }

    #[test]
    fn build_write_read_round_trip() {
        let first = key(1);
        let mut t = KeysTarball::new();
        let first_pub = pub_json(&first);
        let first_sec = first.to_json();
        assert_eq!(
            t.add_first_root(&first_pub, &first_sec).unwrap(),
            *first.keyid()
        );
        let (root_id, root_pub) = t.add_private_key(Role::Root, &key(2)).unwrap();
        let (tgt_id, _) = t.add_private_key(Role::Targets, &key(3)).unwrap();
        assert_eq!(&root_id, key(2).keyid());
        assert_eq!(root_pub, *key(2).public_key());

        let bytes = t.to_bytes().unwrap();
        assert_eq!(*bytes, *t.to_bytes().unwrap(), "deterministic");
        assert_eq!(bytes[..10], archive::FIXED_GZIP_HEADER);
        let back = KeysTarball::from_bytes(&bytes).unwrap();
        let names: Vec<_> = back.names().collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), 6);

        let keys = back.keys().unwrap();
        assert_eq!(keys.len(), 3);
        let by_id = |id: &KeyId| keys.iter().find(|k| &k.keyid == id).unwrap();
        assert_eq!(by_id(first.keyid()).kind, KeyFileKind::FirstRoot);
        assert_eq!(by_id(first.keyid()).role(), Some(Role::Root));
        assert_eq!(
            by_id(&root_id).kind,
            KeyFileKind::Generated { role: Role::Root }
        );
        assert_eq!(by_id(&tgt_id).role(), Some(Role::Targets));
        assert_eq!(
            by_id(&tgt_id).pub_file,
            format!("tufrepo/keys/fioctl-targets-{tgt_id}.pub")
        );
        assert!(by_id(&tgt_id).sec_file.is_some());
        // Entries read back are the bytes stored.
        let entry = |n: &str| back.entries.get(n).unwrap().to_vec();
        assert_eq!(entry(FIRST_ROOT_PUB), first_pub);
        assert_eq!(entry(FIRST_ROOT_SEC), first_sec.to_vec());
        assert!(back.private_key(&tgt_id).unwrap().is_some());
        assert!(back.private_key(key(9).keyid()).unwrap().is_none());
    }

    #[test]
    fn first_root_bytes_kept_exactly_and_checked() {
        let k = key(1);
        let pub_bytes = format!(
            "{{ \"keytype\": \"ED25519\", \"keyval\": {{\"public\": \"{}\"}} }}",
            k.public_key().public()
        );
        let mut t = KeysTarball::new();
        t.add_first_root(pub_bytes.as_bytes(), &k.to_json())
            .unwrap();
        assert_eq!(
            **t.entries.get(FIRST_ROOT_PUB).unwrap(),
            pub_bytes.as_bytes()
        );
        assert!(matches!(
            t.add_first_root(pub_bytes.as_bytes(), &k.to_json()),
            Err(TarballError::AlreadyPresent(_))
        ));
        let mut t = KeysTarball::new();
        let err = t
            .add_first_root(&pub_json(&key(2)), &k.to_json())
            .unwrap_err();
        assert!(matches!(err, TarballError::KeyMismatch { .. }), "{err}");
        assert!(t.is_empty());
    }

    #[test]
    fn files_mode_and_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.keys.tgz");
        let mut t = KeysTarball::new();
        t.add_private_key(Role::Root, &key(2)).unwrap();
        t.write_new(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(matches!(
            t.write_new(&p),
            Err(TarballError::File(FsError::AlreadyExists { .. }))
        ));
        t.add_private_key(Role::Targets, &key(3)).unwrap();
        t.write_atomic(&p).unwrap();
        let back = KeysTarball::read(&p).unwrap();
        assert_eq!(back.keys().unwrap().len(), 2);
    }

    #[test]
    fn unknown_entries_preserved() {
        let legacy = key(5);
        let tar = raw_tarball(&[
            ("tufrepo/roles/root.json", b"{\"not\":\"a key\"}"),
            ("tufrepo/keys/targets.pub", &pub_json(&legacy)),
            ("tufrepo/keys/targets.sec", &legacy.to_json()),
            ("README", b"hello"),
        ]);
        let t = KeysTarball::from_bytes(&tar).unwrap();
        let again = KeysTarball::from_bytes(&t.to_bytes().unwrap()).unwrap();
        assert_eq!(
            **again.entries.get("tufrepo/roles/root.json").unwrap(),
            b"{\"not\":\"a key\"}"
        );
        assert_eq!(**again.entries.get("README").unwrap(), b"hello");
        let keys = again.keys().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kind, KeyFileKind::Other);
        assert_eq!(keys[0].role(), None);
    }

    #[test]
    fn read_time_checks_name_the_file() {
        let a = key(1);
        let b = key(2);
        let pa = pub_json(&a);
        let sa = a.to_json();
        let name =
            |k: &PrivateKey, ext: &str| format!("tufrepo/keys/fioctl-root-{}.{ext}", k.keyid());

        let err = KeysTarball::from_bytes(&raw_tarball(&[("x/k.pub", b"{}")])).unwrap_err();
        assert!(
            matches!(err, TarballError::BadPublicKey { ref file, .. } if file == "x/k.pub"),
            "{err}"
        );

        let err = KeysTarball::from_bytes(&raw_tarball(&[
            ("x/k.pub", &pa),
            (
                "x/k.sec",
                b"{\"keytype\":\"ED25519\",\"keyval\":{\"private\":\"zz\"}}",
            ),
        ]))
        .unwrap_err();
        assert!(
            matches!(err, TarballError::BadPrivateKey { ref file, .. } if file == "x/k.sec"),
            "{err}"
        );
        assert!(!err.to_string().contains("zz"));

        let err = KeysTarball::from_bytes(&raw_tarball(&[("x/k.sec", &sa)])).unwrap_err();
        assert!(matches!(err, TarballError::MissingPublic { .. }), "{err}");

        let err = KeysTarball::from_bytes(&raw_tarball(&[
            ("x/k.pub", &pub_json(&b)),
            ("x/k.sec", &sa),
        ]))
        .unwrap_err();
        assert!(
            matches!(err, TarballError::KeyMismatch { ref sec_file, .. } if sec_file == "x/k.sec"),
            "{err}"
        );

        // fioctl name with another key's id.
        let wrong_pub = format!("tufrepo/keys/fioctl-root-{}.pub", b.keyid());
        let err = KeysTarball::from_bytes(&raw_tarball(&[(&wrong_pub, &pa)])).unwrap_err();
        assert!(
            matches!(err, TarballError::FileNameKeyId { ref file, .. } if *file == wrong_pub),
            "{err}"
        );
        let bad_id = "tufrepo/keys/fioctl-targets-nothex.pub";
        let err = KeysTarball::from_bytes(&raw_tarball(&[(bad_id, &pa)])).unwrap_err();
        assert!(matches!(err, TarballError::FileNameKeyId { .. }), "{err}");

        // The good case with fioctl names passes.
        KeysTarball::from_bytes(&raw_tarball(&[
            (&name(&a, "pub"), &pa),
            (&name(&a, "sec"), &sa),
        ]))
        .unwrap();
        // Archive-level refusals surface as Archive errors.
        let err = KeysTarball::from_bytes(b"not a tarball at all").unwrap_err();
        assert!(matches!(err, TarballError::Archive(_)), "{err}");
    }

    #[test]
    fn private_material_in_a_public_key_file_is_refused_without_echo() {
        let k = key(6);
        let seed_hex = hex::encode([6u8; 32]);
        let public = k.public_key().public().to_string();
        let sec = k.to_json();
        let both = format!(
            "{{\"keytype\":\"ED25519\",\"keyval\":{{\"public\":\"{public}\",\"private\":\"{seed_hex}\"}}}}"
        );
        let pem = "{\"keytype\":\"RSA\",\"keyval\":{\"public\":\"-----BEGIN RSA PRIVATE KEY-----\\nMIIsecret\\n-----END RSA PRIVATE KEY-----\"}}";
        let long =
            format!("{{\"keytype\":\"ED25519\",\"keyval\":{{\"public\":\"{seed_hex}{public}\"}}}}");
        let cases: [(&str, &[u8], &str); 4] = [
            ("the .sec content as .pub", &sec[..], "keyval.private"),
            (
                "public and private members",
                both.as_bytes(),
                "keyval.private",
            ),
            (
                "a PEM private key as public value",
                pem.as_bytes(),
                "PEM private key",
            ),
            (
                "seed and public key as public value",
                long.as_bytes(),
                "64-byte Ed25519",
            ),
        ];
        for (name, pub_bytes, found) in cases {
            let file = "tufrepo/keys/fioctl-root-x.pub";
            let err = KeysTarball::from_bytes(&raw_tarball(&[(file, pub_bytes)])).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, TarballError::PrivateInPublic { ref file, .. } if file.ends_with("x.pub")),
                "{name}: {msg}"
            );
            assert!(msg.contains(found) && msg.contains(file), "{name}: {msg}");
            for secret in [&seed_hex[..], "MIIsecret"] {
                assert!(!msg.contains(secret), "{name}: {msg}");
            }
        }
        // A JSON syntax error in a .pub never quotes the entry.
        let err = KeysTarball::from_bytes(&raw_tarball(&[(
            "a/k.pub",
            format!("{{\"keytype\":\"ED25519\",\"keyval\":\"{seed_hex}\"}}").as_bytes(),
        )]))
        .unwrap_err();
        assert!(matches!(err, TarballError::BadPublicKey { .. }), "{err}");
        assert!(!err.to_string().contains(&seed_hex), "{err}");
        // The .sec partner of a good .pub is not concerned.
        KeysTarball::from_bytes(&raw_tarball(&[
            ("a/k.pub", &pub_json(&k)),
            ("a/k.sec", &sec),
        ]))
        .unwrap();
    }

    #[test]
    fn key_search_like_fioctl() {
        let old = key(1);
        let new = key(2);
        let other = key(3);
        let mut t = KeysTarball::new();
        t.add_first_root(&pub_json(&old), &old.to_json()).unwrap();
        t.add_private_key(Role::Root, &new).unwrap();
        let root = root_with(&new, &[&old, &other]);

        let found = t.find_one_signer(&root, &[new.keyid().clone()]).unwrap();
        assert_eq!(&found.keyid, new.keyid());
        assert_eq!(
            found.sec_file,
            format!("tufrepo/keys/fioctl-root-{}.sec", new.keyid())
        );
        assert_eq!(found.key.keyid(), new.keyid());

        let err = t
            .find_one_signer(&root, &[other.keyid().clone()])
            .unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(err.to_string().contains(other.keyid().as_str()));

        let err = t
            .find_one_signer(&root, &[old.keyid().clone(), new.keyid().clone()])
            .unwrap_err();
        assert!(
            matches!(err, TarballError::MultipleActiveKeys { ref files } if files.len() == 2),
            "{err}"
        );
        assert!(err.to_string().contains("more than one active"));

        let err = t
            .find_signers(&root, &[key(9).keyid().clone()])
            .unwrap_err();
        assert!(matches!(err, TarballError::UnknownKeyId(_)), "{err}");

        assert!(t.check_no_signer(&root, &[other.keyid().clone()]).is_ok());
        assert!(matches!(
            t.check_no_signer(&root, &[new.keyid().clone()]),
            Err(TarballError::ActiveKeyPresent { .. })
        ));
    }

    #[test]
    fn key_search_trims_and_compares_keytype_bytes() {
        let k = key(4);
        let spaced = format!(
            "{{\"keytype\":\"ED25519\",\"keyval\":{{\"public\":\"{}\\n\"}}}}",
            k.public_key().public()
        );
        let tar = raw_tarball(&[("a/k.pub", spaced.as_bytes()), ("a/k.sec", &k.to_json())]);
        let t = KeysTarball::from_bytes(&tar).unwrap();
        let root = root_with(&k, &[]);
        assert_eq!(
            t.find_one_signer(&root, &[k.keyid().clone()])
                .unwrap()
                .sec_file,
            "a/k.sec"
        );
        // The same key with its type spelled in lower case.
        let mut root = root_with(&k, &[]);
        let lower = format!(
            "{{\"keytype\":\"ed25519\",\"keyval\":{{\"public\":\"{}\"}}}}",
            k.public_key().public()
        );
        root.keys.insert(
            k.keyid().clone(),
            PublicKey::from_json(lower.as_bytes()).unwrap(),
        );
        let err = t.find_one_signer(&root, &[k.keyid().clone()]).unwrap_err();
        assert!(matches!(err, TarballError::KeyTypeMismatch { .. }), "{err}");
    }

    #[test]
    fn same_key_twice_counts_once() {
        let k = key(4);
        let mut t = KeysTarball::new();
        t.add_first_root(&pub_json(&k), &k.to_json()).unwrap();
        t.add_private_key(Role::Root, &k).unwrap();
        let root = root_with(&k, &[]);
        assert!(t.find_one_signer(&root, &[k.keyid().clone()]).is_ok());
    }

    #[test]
    fn generated_keys_and_roles() {
        let mut t = KeysTarball::new();
        let (id, public) = t
            .add_generated_key(Role::Targets, KeyType::Ed25519)
            .unwrap();
        assert_eq!(public.keyid().unwrap(), id);
        assert!(t.contains(&format!("tufrepo/keys/fioctl-targets-{id}.sec")));
        assert!(matches!(
            t.add_generated_key(Role::Snapshot, KeyType::Ed25519),
            Err(TarballError::NotOfflineRole(Role::Snapshot))
        ));
        let k = key(7);
        t.add_private_key(Role::Root, &k).unwrap();
        assert!(matches!(
            t.add_private_key(Role::Root, &k),
            Err(TarballError::AlreadyPresent(_))
        ));
        KeysTarball::from_bytes(&t.to_bytes().unwrap()).unwrap();
    }

    #[test]
    fn debug_never_shows_secrets() {
        let k = key(8);
        let mut t = KeysTarball::new();
        t.add_private_key(Role::Root, &k).unwrap();
        let seed_hex = hex::encode([8u8; 32]);
        let dbg = format!("{t:?}");
        assert!(!dbg.contains(&seed_hex), "{dbg}");
        let root = root_with(&k, &[]);
        let found = t.find_one_signer(&root, &[k.keyid().clone()]).unwrap();
        assert!(!format!("{found:?}").contains(&seed_hex));
    }
}
