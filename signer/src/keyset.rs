//! The key sources one signer command works with: keys tarballs and PKCS#11 tokens opened
//! once each, key search by key id among a root's keys, key generation, and the saving (or,
//! for a token, keeping) of new keys in the act phase.
//!
//! Every key found or generated is a [`HeldKey`], which signs through
//! [`KeySigner`](shared::keys::KeySigner) whatever holds it.

use std::path::{Path, PathBuf};

use rand_core::CryptoRngCore;
use shared::keys::{KeyId, KeyType, PrivateKey, PublicKey, Signature};
use shared::metadata::{Role, Root};
use shared::tarball::{KeysTarball, TarballError};

use crate::error::{Result, SignerError};
use crate::keysource::{KeySource, Pkcs11Uri};
use crate::keystore::{self, KeystoreError, PassphraseSource};
use crate::pkcs11::{self, Token, TokenKey, TokenRecord};
use shared::keys::{KeySigner, SignError};

/// A private key found or generated in one of the sources.
#[derive(Debug)]
pub enum HeldKey {
    /// From a keys tarball (or the bundle's initial root key), in memory.
    Memory(PrivateKey),
    /// On a PKCS#11 token.
    Token(TokenKey),
}

impl KeySigner for HeldKey {
    fn keyid(&self) -> &KeyId {
        match self {
            HeldKey::Memory(k) => k.keyid(),
            HeldKey::Token(k) => k.keyid(),
        }
    }
    fn public_key(&self) -> &PublicKey {
        match self {
            HeldKey::Memory(k) => k.public_key(),
            HeldKey::Token(k) => KeySigner::public_key(k),
        }
    }
    fn sign(&self, msg: &[u8]) -> std::result::Result<Signature, SignError> {
        match self {
            HeldKey::Memory(k) => Ok(k.sign(msg)),
            HeldKey::Token(k) => k.sign(msg),
        }
    }
}

impl HeldKey {
    /// The short key id, and for a token key which token holds it (for plans).
    pub fn describe(&self) -> String {
        match self {
            HeldKey::Memory(k) => k.keyid().short(),
            HeldKey::Token(k) => format!(
                "{} (on the token labelled {:?})",
                k.keyid().short(),
                k.token_label()
            ),
        }
    }
}

/// A key found in a source.
#[derive(Debug)]
pub struct Found {
    /// Its key id (equal to the root's and to the computed one).
    pub keyid: KeyId,
    /// The key.
    pub key: HeldKey,
}

/// A keys file opened for this run.
pub struct Tarball {
    /// Its path.
    pub path: PathBuf,
    /// Its content (changed in memory until saved).
    pub keys: KeysTarball,
    /// Whether the file existed when opened.
    pub existed: bool,
    /// Whether it must be saved.
    pub dirty: bool,
    /// Keys created in it in this run.
    pub created: Vec<(KeyId, Role, KeyType)>,
}

/// A token opened for this run.
pub struct TokenSource {
    /// The open token.
    pub token: Token,
    /// Keys generated on it in this run (key id, role, type, object label).
    pub created: Vec<(KeyId, Role, KeyType, String)>,
    /// Keys prepared earlier on it and used as new keys in this run.
    pub prepared: Vec<(KeyId, Role)>,
}

/// One opened source.
pub enum Source {
    /// A keys tarball.
    File(Tarball),
    /// A PKCS#11 token.
    Token(TokenSource),
    /// A key handed over in memory (the first-time rotation's initial root key), never saved.
    Memory(PrivateKey),
}

impl Source {
    /// How messages name this source.
    pub fn name(&self) -> String {
        match self {
            Source::File(t) => t.path.display().to_string(),
            Source::Token(t) => format!("the token labelled {:?}", t.token.label()),
            Source::Memory(_) => "the bundle's initial root key".to_string(),
        }
    }
}

/// The key sources of one run (the same file or token opened twice is one source).
pub struct KeySet {
    /// Opened sources, indexed by the values [`KeySet::open`] returns.
    pub sources: Vec<Source>,
    /// Passphrase of encrypted files (asked once, reused when saving).
    pub pass: PassphraseSource,
    /// PIN file for tokens (`--pin-file`).
    pub pin_file: Option<PathBuf>,
    /// The signer state directory (token records).
    pub state: PathBuf,
}

fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// The error of a tarball-level failure.
pub fn tar_err(path: &Path, e: TarballError) -> SignerError {
    SignerError::Tarball {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl KeySet {
    /// An empty set.
    pub fn new(pass: PassphraseSource, pin_file: Option<PathBuf>, state: PathBuf) -> KeySet {
        KeySet {
            sources: Vec::new(),
            pass,
            pin_file,
            state,
        }
    }

    fn index(&self, src: &KeySource) -> Option<usize> {
        self.sources.iter().position(|s| match (s, src) {
            (Source::File(t), KeySource::Tarball(p)) => same_file(&t.path, p),
            (Source::Token(t), KeySource::Pkcs11(u)) => t.token.is(u),
            _ => false,
        })
    }

    /// Opens `src` (once). A missing tarball is an error unless `create`; a token must be
    /// present (with a terminal, the person is asked to insert it).
    pub fn open(&mut self, src: &KeySource, create: bool) -> Result<usize> {
        if let Some(i) = self.index(src) {
            return Ok(i);
        }
        let source = match src {
            KeySource::Tarball(path) => {
                let (keys, existed) = if create {
                    keystore::open_or_empty(path, &self.pass)?
                } else {
                    (keystore::open(path, &self.pass)?, true)
                };
                Source::File(Tarball {
                    path: path.clone(),
                    keys,
                    existed,
                    dirty: false,
                    created: Vec::new(),
                })
            }
            KeySource::Pkcs11(uri) => {
                let hint = self.token_hint(uri);
                Source::Token(TokenSource {
                    token: Token::open(uri, self.pin_file.as_deref(), &hint)?,
                    created: Vec::new(),
                    prepared: Vec::new(),
                })
            }
        };
        self.sources.push(source);
        Ok(self.sources.len() - 1)
    }

    /// " (it holds root key …)" from the token records, for the "insert the token" prompt.
    fn token_hint(&self, uri: &Pkcs11Uri) -> String {
        let recs = pkcs11::read_records(&self.state).unwrap_or_default();
        let held: Vec<String> = recs
            .iter()
            .filter(|(_, r)| r.token == uri.token)
            .map(|(k, r)| format!("{} key {}", r.role, &k[..8.min(k.len())]))
            .collect();
        if held.is_empty() {
            String::new()
        } else {
            format!(" (it holds {})", held.join(", "))
        }
    }

    /// A brand-new keys file (first-time rotation).
    pub fn create(&mut self, path: &Path, keys: KeysTarball) -> usize {
        self.sources.push(Source::File(Tarball {
            path: path.to_path_buf(),
            keys,
            existed: false,
            dirty: true,
            created: Vec::new(),
        }));
        self.sources.len() - 1
    }

    /// A key held in memory only (never saved).
    pub fn memory(&mut self, key: PrivateKey) -> usize {
        self.sources.push(Source::Memory(key));
        self.sources.len() - 1
    }

    /// The names of sources `idx`, for messages.
    pub fn paths(&self, idx: &[usize]) -> String {
        idx.iter()
            .map(|i| self.sources[*i].name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// "; root key abc is on the token labelled X" for recorded key ids (for NoKey errors).
    pub fn recorded(&self, keyids: &[KeyId]) -> String {
        pkcs11::hint_for(&self.state, keyids)
    }

    /// The one offline targets key of `root` (its targets keys other than `online`) held in
    /// source `idx`: `None` when the root has no offline targets key, an error naming the
    /// source when the root has one but the source does not hold it.
    pub fn offline_targets_key(
        &self,
        idx: usize,
        root: &Root,
        online: &KeyId,
        which: &'static str,
    ) -> Result<Option<KeyId>> {
        let offline = root.offline_targets_keys([online]);
        if offline.is_empty() {
            return Ok(None);
        }
        let found = self
            .find(&[idx], root, &offline, Role::Targets)?
            .ok_or_else(|| self.no_key(&[idx], Role::Targets, which, &offline))?;
        Ok(Some(found.keyid))
    }

    /// The "holds no key" error for sources `idx`.
    pub fn no_key(
        &self,
        idx: &[usize],
        role: Role,
        which: &'static str,
        ids: &[KeyId],
    ) -> SignerError {
        SignerError::NoKey {
            path: self.paths(idx),
            role,
            which,
            keyids: format!(
                "{}{}",
                ids.iter().map(KeyId::short).collect::<Vec<_>>().join(", "),
                self.recorded(ids)
            ),
        }
    }

    /// The one private key among `candidates` of `root` that the sources `idx` hold: per
    /// source at most one (fioctl's rule), the first source that has one wins.
    pub fn find(
        &self,
        idx: &[usize],
        root: &Root,
        candidates: &[KeyId],
        role: Role,
    ) -> Result<Option<Found>> {
        for i in idx {
            let mut found: Vec<Found> = match &self.sources[*i] {
                Source::File(t) => t
                    .keys
                    .find_signers(root, candidates)
                    .map_err(|e| tar_err(&t.path, e))?
                    .into_iter()
                    .map(|f| Found {
                        keyid: f.keyid,
                        key: HeldKey::Memory(f.key),
                    })
                    .collect(),
                Source::Token(t) => t
                    .token
                    .find(root, candidates)?
                    .into_iter()
                    .map(|k| Found {
                        keyid: k.keyid().clone(),
                        key: HeldKey::Token(k),
                    })
                    .collect(),
                Source::Memory(k) => {
                    if candidates.contains(k.keyid()) {
                        // PrivateKey is not Clone (secret bytes): a copy through its key JSON.
                        vec![Found {
                            keyid: k.keyid().clone(),
                            key: HeldKey::Memory(PrivateKey::from_json(&k.to_json())?),
                        }]
                    } else {
                        Vec::new()
                    }
                }
            };
            match found.len() {
                0 => continue,
                1 => return Ok(found.pop()),
                _ => {
                    return Err(SignerError::TwoActiveKeys {
                        path: PathBuf::from(self.sources[*i].name()),
                        role,
                        keyids: found
                            .iter()
                            .map(|f| f.keyid.short())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            }
        }
        Ok(None)
    }

    /// Whether [`KeySet::generate`] into source `i` would create a key on a PKCS#11 token
    /// (not a key prepared earlier under the `object` label). Such a key is created only
    /// after the person confirmed the plan.
    pub fn creates_on_token(&self, i: usize, object: Option<&str>) -> Result<bool> {
        match &self.sources[i] {
            Source::Token(t) => match object {
                Some(obj) => Ok(t.token.find_label(obj)?.is_none()),
                None => Ok(true),
            },
            _ => Ok(false),
        }
    }

    /// How messages name source `i`.
    pub fn name(&self, i: usize) -> String {
        self.sources[i].name()
    }

    /// Generates a key of `role` into source `i` (a token: on the token, labelled with the
    /// `object=` of `uri_object` when given).
    pub fn generate(
        &mut self,
        i: usize,
        role: Role,
        keytype: KeyType,
        object: Option<&str>,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(KeyId, HeldKey)> {
        match &mut self.sources[i] {
            Source::File(t) => {
                let key = PrivateKey::generate_with(keytype, rng)
                    .map_err(|e| tar_err(&t.path, TarballError::Generate(e)))?;
                let (keyid, _) = t
                    .keys
                    .add_private_key(role, &key)
                    .map_err(|e| tar_err(&t.path, e))?;
                t.dirty = true;
                t.created.push((keyid.clone(), role, keytype));
                Ok((keyid, HeldKey::Memory(key)))
            }
            Source::Token(t) => {
                // A key prepared earlier under this label (`signer keys generate`) is used
                // as the new key; otherwise one is generated now.
                if let Some(obj) = object {
                    if let Some(key) = t.token.find_label(obj)? {
                        let keyid = key.keyid().clone();
                        t.prepared.push((keyid.clone(), role));
                        return Ok((keyid, HeldKey::Token(key)));
                    }
                }
                let key = t.token.generate(role, keytype, object, rng)?;
                let keyid = key.keyid().clone();
                t.created.push((
                    keyid.clone(),
                    role,
                    key.key_type(),
                    key.object_label().to_string(),
                ));
                Ok((keyid, HeldKey::Token(key)))
            }
            Source::Memory(_) => Err(SignerError::Other(
                "cannot create a key in the bundle's initial key".into(),
            )),
        }
    }

    /// Plan lines for the keys this run creates and the files it writes.
    pub fn plan(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.sources {
            match s {
                Source::File(t) if t.dirty => {
                    for (id, role, kt) in &t.created {
                        out.push(format!(
                            "create a new {kt} {role} key {id} in {}",
                            t.path.display()
                        ));
                    }
                    out.push(format!(
                        "{} {} (atomically, before the response is written)",
                        if t.existed { "update" } else { "create" },
                        t.path.display()
                    ));
                }
                Source::Token(t) => {
                    for (id, role, kt, _) in &t.created {
                        out.push(format!(
                            "keep the new {kt} {role} key {id} generated on the token labelled {:?} (it never leaves the token; declining removes it)",
                            t.token.label()
                        ));
                    }
                    for (id, role) in &t.prepared {
                        out.push(format!(
                            "use the {role} key {id} prepared earlier on the token labelled {:?}",
                            t.token.label()
                        ));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Undoes [`KeySet::save`] for the keys files this run created (none existed before),
    /// when what was to reference their keys could not be written: removes them and syncs
    /// their directories. Returns each such file with the outcome of its removal.
    pub fn discard_created_files(&self) -> Vec<(PathBuf, std::io::Result<()>)> {
        self.sources
            .iter()
            .filter_map(|s| match s {
                Source::File(t) if !t.existed && t.dirty && t.path.exists() => Some(&t.path),
                _ => None,
            })
            .map(|path| (path.clone(), shared::fsutil::remove_durably(path)))
            .collect()
    }

    /// Act phase: saves every changed keys file atomically and keeps the keys generated on
    /// tokens (recording which token holds them). `saved` is called once per created key
    /// with (key id, role, type, where) and once per written file with `None`.
    pub fn save(
        &mut self,
        mut saved: impl FnMut(Option<(&KeyId, Role, KeyType)>, &str) -> Result<()>,
    ) -> Result<()> {
        let pass = &self.pass;
        for s in self.sources.iter_mut() {
            match s {
                Source::File(t) if t.dirty => {
                    // The passphrase of an encrypted file was cached when it was opened; a
                    // new encrypted file asks for one (twice on a terminal).
                    let res = if t.existed {
                        keystore::save(&t.path, &t.keys, pass)
                    } else {
                        keystore::save_new(&t.path, &t.keys, pass)
                    };
                    res.map_err(|e| match e {
                        KeystoreError::AlreadyExists { path } => SignerError::KeysFileExists(path),
                        other => other.into(),
                    })?;
                    let name = t.path.display().to_string();
                    for (id, role, kt) in &t.created {
                        saved(Some((id, *role, *kt)), &name)?;
                    }
                    saved(None, &name)?;
                }
                Source::Token(t) if !t.created.is_empty() => {
                    t.token.commit();
                    let name = t.token.uri().to_string();
                    for (id, role, kt, object) in &t.created {
                        pkcs11::record(
                            &self.state,
                            id,
                            TokenRecord {
                                token: t.token.label().to_string(),
                                object: object.clone(),
                                role: role.to_string(),
                                keytype: kt.to_string(),
                            },
                        )?;
                        saved(Some((id, *role, *kt)), &name)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}
