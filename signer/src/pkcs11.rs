//! Offline keys on a PKCS#11 token (YubiKey, Nitrokey, an HSM, SoftHSM): the private key is
//! created on the token and never leaves it.
//!
//! * A token is opened from a [`Pkcs11Uri`]: the module (a local shared library, loaded with
//!   `dlopen`; no network code) is loaded once per process, the token is found by its label
//!   (and serial), the user logs in with a PIN from `--pin-file`, the URI's `pin-source`, or
//!   a prompt on the terminal (no echo). The PIN lives in a zeroized buffer and is never
//!   printed or logged.
//! * Keys are found by their **key id** (SHA-256 of the SPKI DER, computed exactly as for
//!   tarball keys): the public half of every private key on the token is read and hashed; a
//!   match must equal the key in the root. A generated pair also gets `CKA_ID` = the key id
//!   where the token allows it, and the label of the URI's `object=`.
//! * Generation prefers Ed25519 (`CKM_EC_EDWARDS_KEY_PAIR_GEN`, signing with `CKM_EDDSA`) and
//!   falls back to RSA-4096 (`CKM_RSA_PKCS_KEY_PAIR_GEN`, signing with
//!   `CKM_SHA256_RSA_PKCS_PSS`, salt 32) when the token has no EdDSA. Keys generated while a
//!   command plans are destroyed again unless the command goes through ([`Token::commit`]).
//! * Which token (label, serial) holds which key id is recorded in the signer state
//!   (`tokens.json`), so that messages can say "insert the token labelled factory-root".

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use shared::keys::{KeyId, KeyType, PublicKey, Signature};
use shared::metadata::{Role, Root};

use crate::ctx::Ctx;
use crate::error::SignerError;
use crate::keysource::Pkcs11Uri;
use shared::keys::{KeySigner, SignError};

/// File in the signer state directory recording which token holds which key.
pub const TOKENS_FILE: &str = "tokens.json";

/// DER of the Ed25519 curve OID 1.3.101.112 (`CKA_EC_PARAMS` of an Ed25519 key).
const ED25519_OID_DER: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

/// RSA key size of generated keys (as for tarball keys).
const RSA_BITS: u64 = 4096;

/// Largest PIN file read.
const MAX_PIN_FILE: u64 = 1024;

/// Errors of PKCS#11 tokens: one line naming the token and what to do. Never contains a PIN.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Error {
    /// The module could not be loaded or initialised.
    #[error("cannot load the PKCS#11 module {module}: {reason} (check module-path= in the URI)")]
    Module {
        /// The module path.
        module: PathBuf,
        /// Why.
        reason: String,
    },
    /// No token with the label is present.
    #[error("no token labelled {label:?} is present (module {module}){hint}: insert the token labelled {label:?} and run the command again")]
    TokenMissing {
        /// The label asked for.
        label: String,
        /// The module.
        module: PathBuf,
        /// Which labels are present.
        hint: String,
    },
    /// The PIN was wrong.
    #[error("wrong PIN for the token labelled {label:?}; nothing was changed (the token locks after a few wrong PINs)")]
    WrongPin {
        /// The token label.
        label: String,
    },
    /// The user PIN is locked.
    #[error("the PIN of the token labelled {label:?} is locked after too many wrong PINs: unlock it with the security officer PIN (PUK) using the token vendor's tool, then run the command again")]
    PinLocked {
        /// The token label.
        label: String,
    },
    /// No PIN could be obtained.
    #[error("no PIN for the token labelled {label:?}: {reason}")]
    NoPin {
        /// The token label.
        label: String,
        /// Why.
        reason: String,
    },
    /// The token lacks a mechanism.
    #[error("the token labelled {label:?} does not support {mechanism}; {advice}")]
    Mechanism {
        /// The token label.
        label: String,
        /// The mechanism(s).
        mechanism: String,
        /// What to do.
        advice: &'static str,
    },
    /// A key object on the token does not match what the root says.
    #[error("the token labelled {label:?}: {reason}")]
    BadKey {
        /// The token label.
        label: String,
        /// What is wrong.
        reason: String,
    },
    /// Any other PKCS#11 failure.
    #[error("the token labelled {label:?}: {what} failed: {reason}")]
    Call {
        /// The token label.
        label: String,
        /// What was being done.
        what: &'static str,
        /// The module's return value, described.
        reason: String,
    },
    /// The token record file could not be read or written.
    #[error("{path}: {reason}")]
    Record {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Maps a PKCS#11 return value to the error a person can act on.
pub fn map_error(label: &str, what: &'static str, e: CkError) -> Pkcs11Error {
    let label = label.to_string();
    match e {
        CkError::Pkcs11(RvError::PinIncorrect, _) => Pkcs11Error::WrongPin { label },
        CkError::Pkcs11(RvError::PinLocked, _) => Pkcs11Error::PinLocked { label },
        CkError::Pkcs11(RvError::TokenNotPresent | RvError::DeviceRemoved, _) => {
            Pkcs11Error::TokenMissing {
                label: label.clone(),
                module: PathBuf::new(),
                hint: " (it was removed)".into(),
            }
        }
        CkError::Pkcs11(RvError::MechanismInvalid | RvError::MechanismParamInvalid, _) => {
            Pkcs11Error::Mechanism {
                label,
                mechanism: what.to_string(),
                advice: "use another token, or keep this key in a keys tarball",
            }
        }
        CkError::Pkcs11(RvError::PinLenRange, _) => Pkcs11Error::WrongPin { label },
        other => Pkcs11Error::Call {
            label,
            what,
            reason: match other {
                CkError::Pkcs11(rv, _) => format!("{rv:?}"),
                o => o.to_string(),
            },
        },
    }
}

/// Loaded modules, one per path (`C_Initialize` may run once per process).
fn module(path: &Path) -> Result<Pkcs11, Pkcs11Error> {
    static MODULES: Mutex<Option<HashMap<PathBuf, Pkcs11>>> = Mutex::new(None);
    let mut guard = MODULES.lock().unwrap_or_else(|p| p.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(m) = map.get(path) {
        return Ok(m.clone());
    }
    let err = |reason: String| Pkcs11Error::Module {
        module: path.to_path_buf(),
        reason,
    };
    if !path.is_file() {
        return Err(err("no such file".into()));
    }
    let ctx = Pkcs11::new(path).map_err(|e| err(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::OsThreads) {
        Ok(()) | Err(CkError::AlreadyInitialized) => {}
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(err(e.to_string())),
    }
    map.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// Reads the PIN: `pin_file`, else the URI's pin-source, else a terminal prompt.
fn read_pin(uri: &Pkcs11Uri, pin_file: Option<&Path>) -> Result<Zeroizing<String>, Pkcs11Error> {
    let no_pin = |reason: String| Pkcs11Error::NoPin {
        label: uri.token.clone(),
        reason,
    };
    if let Some(file) = pin_file.or(uri.pin_source.as_deref()) {
        use std::io::Read;
        let f = std::fs::File::open(file)
            .map_err(|e| no_pin(format!("cannot read the PIN file {}: {e}", file.display())))?;
        let mut buf = Zeroizing::new(String::new());
        f.take(MAX_PIN_FILE)
            .read_to_string(&mut buf)
            .map_err(|e| no_pin(format!("cannot read the PIN file {}: {e}", file.display())))?;
        let pin = Zeroizing::new(buf.lines().next().unwrap_or("").to_string());
        if pin.is_empty() {
            return Err(no_pin(format!("the PIN file {} is empty", file.display())));
        }
        return Ok(pin);
    }
    if !std::io::stdin().is_terminal() {
        return Err(no_pin(
            "no terminal to ask on: give --pin-file FILE or pin-source=file:FILE in the URI".into(),
        ));
    }
    let pin = rpassword::prompt_password(format!("PIN of the token labelled {:?}: ", uri.token))
        .map_err(|e| no_pin(e.to_string()))?;
    Ok(Zeroizing::new(pin))
}

/// The slot holding the token `uri` names; with a terminal, asks once to insert it.
fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri, hint: &str) -> Result<Slot, Pkcs11Error> {
    let mut asked = false;
    loop {
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| map_error(&uri.token, "listing the slots", e))?;
        let mut labels = Vec::new();
        for slot in slots {
            let Ok(info) = ctx.get_token_info(slot) else {
                continue;
            };
            let label = info.label().trim_end().to_string();
            let serial_ok = uri
                .serial
                .as_deref()
                .is_none_or(|s| info.serial_number().trim_end() == s);
            if label == uri.token && serial_ok {
                return Ok(slot);
            }
            labels.push(format!("{label:?}"));
        }
        if asked || !std::io::stdin().is_terminal() {
            return Err(Pkcs11Error::TokenMissing {
                label: uri.token.clone(),
                module: uri.module_path.clone(),
                hint: if labels.is_empty() {
                    format!("{hint}; no token is present")
                } else {
                    format!("{hint}; present: {}", labels.join(", "))
                },
            });
        }
        eprint!(
            "Insert the token labelled {:?}{hint} and press Enter: ",
            uri.token
        );
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        asked = true;
    }
}

/// An open, logged-in token.
pub struct Token {
    uri: Pkcs11Uri,
    ctx: Pkcs11,
    slot: Slot,
    session: Rc<Session>,
    /// Key pairs generated in this run (private, public), destroyed unless committed.
    created: Vec<(ObjectHandle, ObjectHandle)>,
}

impl Token {
    /// Loads the module, finds the token and logs in. `hint` is added to the "insert the
    /// token" message (e.g. which key it holds).
    pub fn open(
        uri: &Pkcs11Uri,
        pin_file: Option<&Path>,
        hint: &str,
    ) -> Result<Token, Pkcs11Error> {
        let ctx = module(&uri.module_path)?;
        let slot = find_slot(&ctx, uri, hint)?;
        let label = uri.token.as_str();
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| map_error(label, "reading the token information", e))?;
        if info.user_pin_locked() {
            return Err(Pkcs11Error::PinLocked {
                label: label.to_string(),
            });
        }
        let session = ctx
            .open_rw_session(slot)
            .map_err(|e| map_error(label, "opening a session", e))?;
        let pin = read_pin(uri, pin_file)?;
        let auth = AuthPin::from(pin.as_str().to_string());
        match session.login(UserType::User, Some(&auth)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(map_error(label, "logging in", e)),
        }
        Ok(Token {
            uri: uri.clone(),
            ctx,
            slot,
            session: Rc::new(session),
            created: Vec::new(),
        })
    }

    /// The URI this token was opened with.
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.uri.token
    }

    /// Whether `uri` names this token (same module, label and serial).
    pub fn is(&self, uri: &Pkcs11Uri) -> bool {
        self.uri.module_path == uri.module_path
            && self.uri.token == uri.token
            && self.uri.serial == uri.serial
    }

    fn err(&self, what: &'static str) -> impl Fn(CkError) -> Pkcs11Error + '_ {
        move |e| map_error(&self.uri.token, what, e)
    }

    /// The keys among `candidates` (key ids of `root`) that this token holds a private key
    /// for. Every private key's public half (the public key object with the same `CKA_ID`) is
    /// read and hashed, so keys are found by their real key id whatever `CKA_ID` a token
    /// assigns (a YubiKey's ids are its PIV slots); a match must equal the root's key.
    pub fn find(&self, root: &Root, candidates: &[KeyId]) -> Result<Vec<TokenKey>, Pkcs11Error> {
        let privates = self
            .session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .map_err(self.err("searching for keys"))?;
        let mut out = Vec::new();
        for private in privates {
            let Some(public) = self.public_for(private)? else {
                continue;
            };
            let Ok(id) = public.keyid() else {
                continue;
            };
            if !candidates.contains(&id) {
                continue;
            }
            if !root.keys.get(&id).is_some_and(|k| k.same_key(&public)) {
                return Err(self.bad(format!(
                    "key {} on the token differs from the key of that id in the root",
                    id.short()
                )));
            }
            out.push(self.key(private, id, public)?);
        }
        Ok(out)
    }

    /// The public key of private key `private` (the public key object with its `CKA_ID`), or
    /// `None` for a key this signer cannot use (no public object, unsupported type).
    fn public_for(&self, private: ObjectHandle) -> Result<Option<PublicKey>, Pkcs11Error> {
        let id = match self
            .session
            .get_attributes(private, &[AttributeType::Id])
            .map_err(self.err("reading a key id"))?
            .pop()
        {
            Some(Attribute::Id(id)) => id,
            _ => return Ok(None),
        };
        match self.public_of(&id) {
            Ok(p) => Ok(Some(p)),
            Err(Pkcs11Error::BadKey { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn bad(&self, reason: String) -> Pkcs11Error {
        Pkcs11Error::BadKey {
            label: self.uri.token.clone(),
            reason,
        }
    }

    fn key(
        &self,
        handle: ObjectHandle,
        keyid: KeyId,
        public: PublicKey,
    ) -> Result<TokenKey, Pkcs11Error> {
        let keytype = public.key_type().map_err(|e| self.bad(e.to_string()))?;
        let mechanisms = self
            .ctx
            .get_mechanism_list(self.slot)
            .map_err(self.err("listing the mechanisms"))?;
        let mechanism = match keytype {
            KeyType::Ed25519 if mechanisms.contains(&MechanismType::EDDSA) => SignMechanism::Eddsa,
            KeyType::Rsa if mechanisms.contains(&MechanismType::SHA256_RSA_PKCS_PSS) => {
                SignMechanism::Sha256RsaPss
            }
            KeyType::Rsa if mechanisms.contains(&MechanismType::RSA_PKCS_PSS) => {
                SignMechanism::RsaPssOfDigest
            }
            _ => {
                return Err(Pkcs11Error::Mechanism {
                    label: self.uri.token.clone(),
                    mechanism: match keytype {
                        KeyType::Ed25519 => "CKM_EDDSA".into(),
                        KeyType::Rsa => "CKM_SHA256_RSA_PKCS_PSS or CKM_RSA_PKCS_PSS".into(),
                    },
                    advice: "it cannot sign with this key",
                })
            }
        };
        Ok(TokenKey {
            session: Rc::clone(&self.session),
            label: self.uri.token.clone(),
            handle,
            keyid,
            public,
            keytype,
            mechanism,
            object: String::new(),
        })
    }

    /// Reads the public key stored with `CKA_ID` = `id`.
    fn public_of(&self, id: &[u8]) -> Result<PublicKey, Pkcs11Error> {
        let handle = self
            .session
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Id(id.to_vec()),
            ])
            .map_err(self.err("searching for public keys"))?
            .first()
            .copied()
            .ok_or_else(|| {
                self.bad("a private key has no public key object with the same id".into())
            })?;
        self.read_public(handle)
    }

    fn read_public(&self, handle: ObjectHandle) -> Result<PublicKey, Pkcs11Error> {
        let attrs = self
            .session
            .get_attributes(
                handle,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcPoint,
                    AttributeType::Modulus,
                    AttributeType::PublicExponent,
                ],
            )
            .map_err(self.err("reading a public key"))?;
        let (mut kt, mut point, mut n, mut e) = (None, None, None, None);
        for a in attrs {
            match a {
                Attribute::KeyType(k) => kt = Some(k),
                Attribute::EcPoint(p) => point = Some(p),
                Attribute::Modulus(m) => n = Some(m),
                Attribute::PublicExponent(x) => e = Some(x),
                _ => {}
            }
        }
        let res = match (kt, point, n, e) {
            (Some(k), Some(p), _, _) if k == CkKeyType::EC_EDWARDS => {
                // CKA_EC_POINT is a DER OCTET STRING (04 20 ‖ key); some modules give it raw.
                let raw = match p.as_slice() {
                    [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
                    other => other,
                };
                PublicKey::ed25519_from_bytes(raw)
            }
            (Some(k), _, Some(n), Some(e)) if k == CkKeyType::RSA => {
                PublicKey::rsa_from_components(&n, &e)
            }
            (k, ..) => {
                return Err(self.bad(format!(
                    "key type {} is not supported (only Ed25519 and RSA)",
                    k.map(|k| k.to_string()).unwrap_or_default()
                )))
            }
        };
        res.map_err(|e| self.bad(e.to_string()))
    }

    /// The key pair labelled `object` on the token, if there is one (e.g. made earlier with
    /// `signer keys generate`); its `CKA_ID` must be its key id.
    pub fn find_label(&self, object: &str) -> Result<Option<TokenKey>, Pkcs11Error> {
        let found = self
            .session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(object.as_bytes().to_vec()),
            ])
            .map_err(self.err("searching for keys"))?;
        let handle = match found.as_slice() {
            [] => return Ok(None),
            [one] => *one,
            _ => {
                return Err(self.bad(format!(
                    "more than one private key is labelled {object:?}; use a unique object= label"
                )))
            }
        };
        let public = self.public_for(handle)?.ok_or_else(|| {
            self.bad(format!(
                "the key labelled {object:?} has no usable public key (Ed25519 or RSA) with the same id"
            ))
        })?;
        let keyid = public.keyid().map_err(|e| self.bad(e.to_string()))?;
        let mut key = self.key(handle, keyid, public)?;
        key.object = object.to_string();
        Ok(Some(key))
    }

    /// Generates a key pair for `role` on the token: Ed25519 if `prefer` is Ed25519 and the
    /// token has EdDSA, else RSA-4096. Labels it with the URI's `object=` (default
    /// `<role>-<short key id>`) and sets `CKA_ID` to the key id. The pair is destroyed again
    /// when this token is dropped without [`Token::commit`]. The token makes the key with
    /// its own generator; `rng` only gives the pair a temporary `CKA_ID` until its key id is
    /// known.
    pub fn generate(
        &mut self,
        role: Role,
        prefer: KeyType,
        object: Option<&str>,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<TokenKey, Pkcs11Error> {
        let mechanisms = self
            .ctx
            .get_mechanism_list(self.slot)
            .map_err(self.err("listing the mechanisms"))?;
        let has = |m: MechanismType| mechanisms.contains(&m);
        let ed = has(MechanismType::ECC_EDWARDS_KEY_PAIR_GEN) && has(MechanismType::EDDSA);
        let rsa = has(MechanismType::RSA_PKCS_KEY_PAIR_GEN)
            && (has(MechanismType::SHA256_RSA_PKCS_PSS) || has(MechanismType::RSA_PKCS_PSS));
        let keytype = match (prefer, ed, rsa) {
            (KeyType::Ed25519, true, _) => KeyType::Ed25519,
            (_, _, true) => KeyType::Rsa,
            (KeyType::Rsa, true, false) => {
                return Err(Pkcs11Error::Mechanism {
                    label: self.uri.token.clone(),
                    mechanism: "RSA-4096 key generation with RSA-PSS signing".into(),
                    advice: "generate an Ed25519 key instead (--key-type ed25519)",
                })
            }
            _ => return Err(Pkcs11Error::Mechanism {
                label: self.uri.token.clone(),
                mechanism:
                    "CKM_EC_EDWARDS_KEY_PAIR_GEN+CKM_EDDSA nor CKM_RSA_PKCS_KEY_PAIR_GEN+RSA-PSS"
                        .into(),
                advice: "use another token, or keep this key in a keys tarball",
            }),
        };
        // A temporary id until the key id is known (unique, not secret).
        let temp_id: Vec<u8> = {
            let mut b = vec![0u8; 16];
            rng.fill_bytes(&mut b);
            b
        };
        let object = object
            .map(str::to_string)
            .or_else(|| self.uri.object.clone());
        let label = object.clone().unwrap_or_else(|| format!("{role}-new"));
        let common_pub = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(temp_id.clone()),
        ];
        let common_priv = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(temp_id),
        ];
        let (mech, mut pub_t) = match keytype {
            KeyType::Ed25519 => (
                Mechanism::EccEdwardsKeyPairGen,
                vec![Attribute::EcParams(ED25519_OID_DER.to_vec())],
            ),
            KeyType::Rsa => (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits(RSA_BITS.into()),
                    Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                ],
            ),
        };
        pub_t.extend(common_pub);
        let (public, private) = self
            .session
            .generate_key_pair(&mech, &pub_t, &common_priv)
            .map_err(self.err("generating a key pair"))?;
        self.created.push((private, public));
        let pk = self.read_public(public)?;
        let keyid = pk.keyid().map_err(|e| self.bad(e.to_string()))?;
        let raw = hex::decode(keyid.as_str()).unwrap_or_default();
        let mut update = vec![Attribute::Id(raw)];
        let label = object.unwrap_or_else(|| format!("{role}-{}", keyid.short()));
        update.push(Attribute::Label(label.clone().into_bytes()));
        // Best effort: some tokens fix CKA_ID and labels (a YubiKey's are its PIV slot); keys
        // are found by the hash of their public key, so the key works either way.
        for h in [public, private] {
            let _ = self.session.update_attributes(h, &update);
        }
        let mut key = self.key(private, keyid, pk)?;
        key.object = label;
        Ok(key)
    }

    /// Keeps the keys generated in this run (called once the command goes through).
    pub fn commit(&mut self) {
        self.created.clear();
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        for (private, public) in self.created.drain(..) {
            let _ = self.session.destroy_object(private);
            let _ = self.session.destroy_object(public);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum SignMechanism {
    Eddsa,
    Sha256RsaPss,
    RsaPssOfDigest,
}

/// A private key on a token (a handle; the key bytes stay on the token).
pub struct TokenKey {
    session: Rc<Session>,
    label: String,
    handle: ObjectHandle,
    keyid: KeyId,
    public: PublicKey,
    keytype: KeyType,
    mechanism: SignMechanism,
    /// The object label given at generation (empty for keys found).
    object: String,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKey({} on {:?})", self.keyid.short(), self.label)
    }
}

impl TokenKey {
    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.keytype
    }

    /// The object label it was generated with (empty for a key found on the token).
    pub fn object_label(&self) -> &str {
        &self.object
    }

    /// The label of the token holding it.
    pub fn token_label(&self) -> &str {
        &self.label
    }
}

impl KeySigner for TokenKey {
    fn keyid(&self) -> &KeyId {
        &self.keyid
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Signature, SignError> {
        self.sign_on_token(msg).map_err(SignError::new)
    }
}

impl TokenKey {
    /// Signs on the token and checks the signature like a tarball signature.
    fn sign_on_token(&self, msg: &[u8]) -> Result<Signature, Pkcs11Error> {
        let pss = || PkcsPssParams {
            hash_alg: MechanismType::SHA256,
            mgf: PkcsMgfType::MGF1_SHA256,
            s_len: 32.into(),
        };
        let digest;
        let (mech, data, what): (Mechanism, &[u8], &'static str) = match self.mechanism {
            SignMechanism::Eddsa => (
                Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                msg,
                "signing with CKM_EDDSA",
            ),
            SignMechanism::Sha256RsaPss => (
                Mechanism::Sha256RsaPkcsPss(pss()),
                msg,
                "signing with CKM_SHA256_RSA_PKCS_PSS",
            ),
            SignMechanism::RsaPssOfDigest => {
                use sha2::{Digest, Sha256};
                digest = Sha256::digest(msg);
                (
                    Mechanism::RsaPkcsPss(pss()),
                    digest.as_slice(),
                    "signing with CKM_RSA_PKCS_PSS",
                )
            }
        };
        let raw = self
            .session
            .sign(&mech, self.handle, data)
            .map_err(|e| map_error(&self.label, what, e))?;
        let sig = Signature::from_raw(self.keyid.clone(), self.keytype, &raw);
        // A token signature must verify exactly like a tarball signature.
        self.public
            .verify(msg, &sig)
            .map_err(|e| Pkcs11Error::BadKey {
                label: self.label.clone(),
                reason: format!(
                    "its signature with key {} does not verify: {e}",
                    self.keyid.short()
                ),
            })?;
        Ok(sig)
    }
}

/// One record of `tokens.json`: a key generated on a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The token label.
    pub token: String,
    /// The key's object label.
    pub object: String,
    /// The role the key was generated for.
    pub role: String,
    /// `ED25519` or `RSA`.
    pub keytype: String,
}

/// Reads `tokens.json` (key id → record); a missing file is empty.
pub fn read_records(state: &Path) -> Result<BTreeMap<String, TokenRecord>, Pkcs11Error> {
    let path = state.join(TOKENS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Pkcs11Error::Record {
            path,
            reason: format!("not a token record file ({e}); move it away"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(Pkcs11Error::Record {
            path,
            reason: e.to_string(),
        }),
    }
}

/// Records that the token `label` holds key `keyid` (atomic write of `tokens.json`).
pub fn record(state: &Path, keyid: &KeyId, rec: TokenRecord) -> Result<(), Pkcs11Error> {
    let mut all = read_records(state)?;
    all.insert(keyid.as_str().to_string(), rec);
    let path = state.join(TOKENS_FILE);
    let mut bytes = serde_json::to_vec_pretty(&all).unwrap_or_default();
    bytes.push(b'\n');
    shared::fsutil::write_atomic(&path, &bytes, 0o600).map_err(|e| Pkcs11Error::Record {
        path,
        reason: e.to_string(),
    })
}

/// "the token labelled X" hints for the key ids recorded in `state` (for messages).
pub fn hint_for(state: &Path, keyids: &[KeyId]) -> String {
    let Ok(all) = read_records(state) else {
        return String::new();
    };
    let labels: Vec<String> = keyids
        .iter()
        .filter_map(|k| all.get(k.as_str()).map(|r| (k, r)))
        .map(|(k, r)| {
            format!(
                "{} key {} is on the token labelled {:?}",
                r.role,
                k.short(),
                r.token
            )
        })
        .collect();
    if labels.is_empty() {
        String::new()
    } else {
        format!(" ({})", labels.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    #[test]
    fn return_values_map_to_actionable_errors() {
        let e = |rv| CkError::Pkcs11(rv, Function::Login);
        assert!(matches!(
            map_error("t", "x", e(RvError::PinIncorrect)),
            Pkcs11Error::WrongPin { .. }
        ));
        assert!(matches!(
            map_error("t", "x", e(RvError::PinLocked)),
            Pkcs11Error::PinLocked { .. }
        ));
        assert!(matches!(
            map_error("t", "x", e(RvError::TokenNotPresent)),
            Pkcs11Error::TokenMissing { .. }
        ));
        let locked = map_error("factory-root", "x", e(RvError::PinLocked)).to_string();
        assert!(
            locked.contains("\"factory-root\" is locked")
                && locked.contains("security officer PIN"),
            "{locked}"
        );
        let m = map_error("t", "signing with CKM_EDDSA", e(RvError::MechanismInvalid)).to_string();
        assert!(m.contains("does not support signing with CKM_EDDSA"), "{m}");
        assert!(!m.contains('\n'));
    }
}

/// Options of `signer keys generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// The token and the label of the new key:
    /// `pkcs11:token=LABEL;object=KEY-LABEL?module-path=/path/to/module.so`.
    #[arg(long, value_name = "URI")]
    pub pkcs11: Pkcs11Uri,
    /// The role the key is for.
    #[arg(long, short = 'r', value_enum)]
    pub role: crate::cli::OfflineRole,
    /// Algorithm: Ed25519 when the token supports CKM_EDDSA (else RSA-4096 with a note), or RSA-4096.
    #[arg(long, value_enum, default_value_t)]
    pub key_type: crate::cli::KeyTypeArg,
    /// Also write the public key (fioctl `.pub` JSON) to this file (must not exist).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// PIN of the token.
    #[command(flatten)]
    pub pin: crate::keysource::PinArgs,
}

/// `signer keys generate --pkcs11 URI --role ROLE`: creates a key pair on the token (the
/// private key never leaves it), prints the key id and public key, records which token
/// holds it and writes the audit log. A later rotation with `--new-keys URI` (same
/// `object=`) uses this key as the new key. Returns the new key's id.
pub fn generate_cmd(ctx: &mut Ctx<'_>, args: &GenerateArgs) -> crate::error::Result<KeyId> {
    let uri = &args.pkcs11;
    let object = uri.object.as_deref().ok_or_else(|| {
        SignerError::Usage(
            "the URI names no key label: add ;object=<label> (e.g. root-2026) so that a rotation can find the key"
                .into(),
        )
    })?;
    let state = ctx.state.path();
    ctx.state.ensure()?;
    crate::audit::verify(state)?;
    if let Some(o) = &args.out {
        if std::fs::symlink_metadata(o).is_ok() {
            return Err(SignerError::refused(format!(
                "{} already exists; choose another --out file",
                o.display()
            )));
        }
    }
    let mut token = Token::open(uri, args.pin.pin_file.as_deref(), "")?;
    if token.find_label(object)?.is_some() {
        return Err(SignerError::refused(format!(
            "the token labelled {:?} already holds a key labelled {object:?}; choose another object= label",
            uri.token
        )));
    }
    let role: Role = args.role.into();
    let wanted: KeyType = args.key_type.into();
    let key = token.generate(role, wanted, Some(object), &mut *ctx.rng)?;
    let keyid = key.keyid().clone();
    let public = KeySigner::public_key(&key).to_json();
    if let Some(o) = &args.out {
        shared::fsutil::write_atomic_new(o, &public, 0o644)?;
    }
    token.commit();
    record(
        state,
        &keyid,
        TokenRecord {
            token: uri.token.clone(),
            object: object.to_string(),
            role: role.to_string(),
            keytype: key.key_type().to_string(),
        },
    )?;
    crate::audit::record(
        state,
        &ctx.now,
        crate::audit::AuditEvent::KeyCreated {
            keyid: keyid.clone(),
            role: role.to_string(),
            keytype: key.key_type().to_string(),
            tarball: uri.to_string(),
        },
    )?;
    if key.key_type() != wanted {
        ctx.ui.line(
            "Note: the token has no EdDSA (CKM_EC_EDWARDS_KEY_PAIR_GEN/CKM_EDDSA); the key is RSA-4096 (RSA-PSS SHA-256).",
        );
    }
    ctx.ui.line(format!(
        "Created {} {role} key {keyid} on the token labelled {:?} (object {object:?}); the private key cannot leave the token.",
        key.key_type(),
        uri.token
    ));
    ctx.ui
        .line(format!("Public key: {}", String::from_utf8_lossy(&public)));
    if let Some(o) = &args.out {
        ctx.ui
            .line(format!("Wrote the public key to {}", o.display()));
    }
    Ok(keyid)
}
