//! Keys, key ids and signatures in the ota-tuf dialect Foundries uses.
//!
//! * Key JSON (`AtsKey`): `{"keytype":"ED25519","keyval":{"public":"<hex>"}}` for public keys
//!   and `{"keytype":"ED25519","keyval":{"private":"<hex>"}}` for `.sec` files. ED25519
//!   public keys are the lowercase hex of the 32 raw bytes; private keys the hex of the
//!   32-byte seed (the 64-byte seed‖public form is accepted on read). RSA public keys are a
//!   PKIX `PUBLIC KEY` PEM, private keys a PKCS#1 `RSA PRIVATE KEY` PEM, both ending in `\n`.
//! * Key id: lowercase hex SHA-256 of the public key's X.509 SubjectPublicKeyInfo DER (the
//!   ota-tuf convention, not the TUF specification's).
//! * Signatures: `{"keyid","method","sig"}` with method `ed25519` (pure Ed25519) or
//!   `rsassa-pss-sha256` (PSS, SHA-256, MGF1-SHA-256, salt 32), `sig` standard base64.
//!
//! Secret material lives in [`zeroize::Zeroizing`] buffers and never shows in `Debug`.

use std::fmt;

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Size of the RSA keys this toolkit generates (fioctl's choice).
pub const RSA_BITS: usize = 4096;

/// Signature method name for Ed25519 signatures.
pub const METHOD_ED25519: &str = "ed25519";
/// Signature method name for RSASSA-PSS/SHA-256 signatures.
pub const METHOD_RSA_PSS: &str = "rsassa-pss-sha256";

/// What went wrong with a key or a signature.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key JSON could not be parsed.
    #[error("invalid key JSON: {0}")]
    Json(String),
    /// The key type is neither ED25519 nor RSA.
    #[error("unsupported key type {0:?}: only ED25519 and RSA keys are supported")]
    UnsupportedType(String),
    /// The key JSON has no `keyval.public` (or `keyval.private`) member.
    #[error("key JSON has no keyval.{0} value")]
    MissingValue(&'static str),
    /// The key material does not decode.
    #[error("invalid {keytype} {part} key: {reason}")]
    BadKey {
        /// `ED25519` or `RSA`.
        keytype: &'static str,
        /// `public` or `private`.
        part: &'static str,
        /// Why it does not decode.
        reason: String,
    },
    /// A key id is not 64 lowercase hex characters.
    #[error("invalid key id {0:?}: expected 64 lowercase hex characters")]
    BadKeyId(String),
    /// The signature method does not match the key type.
    #[error("signature by {keyid} uses method {method:?}, but the key is {keytype} (expected {expected:?})")]
    MethodMismatch {
        /// Key id of the signature.
        keyid: String,
        /// Method found in the signature.
        method: String,
        /// Type of the key.
        keytype: &'static str,
        /// Method that key type requires.
        expected: &'static str,
    },
    /// The `sig` value is not valid base64 or has the wrong length.
    #[error("signature by {0} is not valid base64 of the right length")]
    BadSignatureEncoding(String),
    /// The signature does not verify.
    #[error("signature by {0} does not verify")]
    BadSignature(String),
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    Generate(String),
}

/// The two key algorithms Foundries supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// Ed25519 (fioctl's default).
    Ed25519,
    /// RSA-4096 with RSASSA-PSS/SHA-256 signatures.
    Rsa,
}

impl KeyType {
    /// Parses a key type name case-insensitively (`ed25519`, `RSA`, ...).
    pub fn parse(s: &str) -> Result<KeyType, KeyError> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ED25519" => Ok(KeyType::Ed25519),
            "RSA" => Ok(KeyType::Rsa),
            _ => Err(KeyError::UnsupportedType(s.to_string())),
        }
    }

    /// The `keytype` string fioctl writes (`ED25519` or `RSA`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ED25519",
            KeyType::Rsa => "RSA",
        }
    }

    /// The signature `method` name used with this key type.
    pub fn method(self) -> &'static str {
        match self {
            KeyType::Ed25519 => METHOD_ED25519,
            KeyType::Rsa => METHOD_RSA_PSS,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key id: 64 lowercase hex characters (SHA-256 of the SPKI DER).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// Validates a key id string.
    pub fn parse(s: &str) -> Result<KeyId, KeyError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(KeyId(s.to_string()))
        } else {
            Err(KeyError::BadKeyId(s.to_string()))
        }
    }

    /// The key id of the given SPKI DER bytes.
    pub fn of_spki(der: &[u8]) -> KeyId {
        KeyId(hex::encode(Sha256::digest(der)))
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short form for humans: first 8 and last 4 hex digits (`5d7397a7…93b1`).
    pub fn short(&self) -> String {
        format!("{}…{}", &self.0[..8], &self.0[60..])
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for KeyId {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyId::parse(s)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KeyId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `keyval` of a key JSON document.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
struct KeyVal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    private: Option<String>,
}

/// A public key as it appears in `root.json` `keys` and in `.pub` files.
///
/// The `keytype` and `public` strings are kept exactly as written so that a key read and
/// written again is byte-identical.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    keytype: String,
    keyval: PublicKeyVal,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PublicKeyVal {
    public: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({} {})",
            self.keytype,
            self.keyval.public.trim()
        )
    }
}

impl PublicKey {
    /// Builds a public key from its type and encoded public value.
    pub fn new(keytype: KeyType, public: String) -> PublicKey {
        PublicKey {
            keytype: keytype.as_str().to_string(),
            keyval: PublicKeyVal { public },
        }
    }

    /// An Ed25519 public key from its 32 raw bytes (as a PKCS#11 token returns them).
    pub fn ed25519_from_bytes(raw: &[u8]) -> Result<PublicKey, KeyError> {
        let arr: [u8; 32] = raw
            .try_into()
            .map_err(|_| bad("ED25519", "public", "expected 32 bytes"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&arr).map_err(|e| bad("ED25519", "public", e))?;
        Ok(PublicKey::new(KeyType::Ed25519, hex::encode(arr)))
    }

    /// An RSA public key from its big-endian modulus and public exponent, encoded as the
    /// PKIX PEM that generated tarball keys use (so equal keys get equal key ids).
    pub fn rsa_from_components(modulus: &[u8], exponent: &[u8]) -> Result<PublicKey, KeyError> {
        let key = rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(modulus),
            rsa::BigUint::from_bytes_be(exponent),
        )
        .map_err(|e| bad("RSA", "public", e))?;
        let pem = key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| bad("RSA", "public", e))?;
        Ok(PublicKey::new(KeyType::Rsa, pem))
    }

    /// Parses a `.pub` file or a `root.json` key entry.
    pub fn from_json(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let raw: RawKey =
            serde_json::from_slice(bytes).map_err(|e| KeyError::Json(e.to_string()))?;
        let public = raw.keyval.public.ok_or(KeyError::MissingValue("public"))?;
        Ok(PublicKey {
            keytype: raw.keytype,
            keyval: PublicKeyVal { public },
        })
    }

    /// The key JSON as fioctl writes it: compact, `keytype` then `keyval`.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialization of two strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The `keytype` string as written.
    pub fn keytype(&self) -> &str {
        &self.keytype
    }

    /// The encoded public value as written (hex or PEM).
    pub fn public(&self) -> &str {
        &self.keyval.public
    }

    /// The key type, if supported.
    pub fn key_type(&self) -> Result<KeyType, KeyError> {
        KeyType::parse(&self.keytype)
    }

    /// Whether two keys are the same key (fioctl's rule: same type, trimmed public values equal).
    pub fn same_key(&self, other: &PublicKey) -> bool {
        self.keytype.eq_ignore_ascii_case(&other.keytype)
            && self.keyval.public.trim() == other.keyval.public.trim()
    }

    /// The X.509 SubjectPublicKeyInfo DER of this key.
    pub fn spki_der(&self) -> Result<Vec<u8>, KeyError> {
        match self.key_type()? {
            KeyType::Ed25519 => {
                let raw = self.ed25519()?;
                let mut der = ED25519_SPKI_PREFIX.to_vec();
                der.extend_from_slice(raw.as_bytes());
                Ok(der)
            }
            KeyType::Rsa => {
                let key = self.rsa()?;
                key.to_public_key_der()
                    .map(|d| d.as_bytes().to_vec())
                    .map_err(|e| bad("RSA", "public", e))
            }
        }
    }

    /// The key id: SHA-256 of the SPKI DER.
    pub fn keyid(&self) -> Result<KeyId, KeyError> {
        Ok(KeyId::of_spki(&self.spki_der()?))
    }

    fn ed25519(&self) -> Result<ed25519_dalek::VerifyingKey, KeyError> {
        let bytes =
            hex::decode(self.keyval.public.trim()).map_err(|e| bad("ED25519", "public", e))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("ED25519", "public", "expected 32 bytes"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&arr).map_err(|e| bad("ED25519", "public", e))
    }

    fn rsa(&self) -> Result<rsa::RsaPublicKey, KeyError> {
        rsa::RsaPublicKey::from_public_key_pem(self.keyval.public.trim())
            .map_err(|e| bad("RSA", "public", e))
    }

    /// Verifies `sig` over `msg` with this key. The caller checks that `sig.keyid` is this
    /// key's id; this checks the method and the signature bytes.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), KeyError> {
        let kt = self.key_type()?;
        if sig.method != kt.method() {
            return Err(KeyError::MethodMismatch {
                keyid: sig.keyid.to_string(),
                method: sig.method.clone(),
                keytype: kt.as_str(),
                expected: kt.method(),
            });
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sig.sig.as_bytes())
            .map_err(|_| KeyError::BadSignatureEncoding(sig.keyid.to_string()))?;
        match kt {
            KeyType::Ed25519 => {
                let key = self.ed25519()?;
                let s = ed25519_dalek::Signature::from_slice(&raw)
                    .map_err(|_| KeyError::BadSignatureEncoding(sig.keyid.to_string()))?;
                key.verify_strict(msg, &s)
                    .map_err(|_| KeyError::BadSignature(sig.keyid.to_string()))
            }
            KeyType::Rsa => {
                let key = rsa::pss::VerifyingKey::<Sha256>::new(self.rsa()?);
                let s = rsa::pss::Signature::try_from(raw.as_slice())
                    .map_err(|_| KeyError::BadSignatureEncoding(sig.keyid.to_string()))?;
                key.verify(msg, &s)
                    .map_err(|_| KeyError::BadSignature(sig.keyid.to_string()))
            }
        }
    }
}

#[derive(Deserialize)]
struct RawKey {
    keytype: String,
    #[serde(default)]
    keyval: KeyVal,
}

enum Secret {
    Ed25519(Box<ed25519_dalek::SigningKey>),
    Rsa(Box<rsa::RsaPrivateKey>),
}

/// A private key from a `.sec` file or freshly generated.
///
/// The secret is zeroized on drop (by `ed25519-dalek` and `rsa`), and neither `Debug` nor
/// any error message ever includes it.
pub struct PrivateKey {
    secret: Secret,
    keytype: String,
    public: PublicKey,
    keyid: KeyId,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey({} {}, secret redacted)",
            self.keytype, self.keyid
        )
    }
}

impl PrivateKey {
    /// Generates a new key pair (RSA keys are 4096 bits) with the operating system's random
    /// number generator ([`PrivateKey::generate_with`] takes the generator).
    pub fn generate(keytype: KeyType) -> Result<PrivateKey, KeyError> {
        Self::generate_with(keytype, &mut rand::rngs::OsRng)
    }

    /// Generates a new key pair (RSA keys are 4096 bits) with `rng`: the caller chooses the
    /// randomness (a program its operating system's, a test a seeded generator).
    pub fn generate_with<R>(keytype: KeyType, rng: &mut R) -> Result<PrivateKey, KeyError>
    where
        R: rand_core::CryptoRngCore + ?Sized,
    {
        let secret = match keytype {
            KeyType::Ed25519 => Secret::Ed25519(Box::new(ed25519_dalek::SigningKey::generate(rng))),
            KeyType::Rsa => Secret::Rsa(Box::new(
                rsa::RsaPrivateKey::new(rng, RSA_BITS)
                    .map_err(|e| KeyError::Generate(e.to_string()))?,
            )),
        };
        Self::from_secret(secret, keytype.as_str().to_string())
    }

    /// Builds an Ed25519 key from a 32-byte seed (deterministic; for tests and fixtures).
    pub fn ed25519_from_seed(seed: &[u8; 32]) -> PrivateKey {
        let secret = Secret::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(seed)));
        // An Ed25519 key always has a valid public half and SPKI.
        Self::from_secret(secret, "ED25519".to_string()).expect("ed25519 public key encodes")
    }

    fn from_secret(secret: Secret, keytype: String) -> Result<PrivateKey, KeyError> {
        let public_value = match &secret {
            Secret::Ed25519(k) => hex::encode(k.verifying_key().as_bytes()),
            Secret::Rsa(k) => k
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| bad("RSA", "public", e))?,
        };
        let public = PublicKey {
            keytype: keytype.clone(),
            keyval: PublicKeyVal {
                public: public_value,
            },
        };
        let keyid = public.keyid()?;
        Ok(PrivateKey {
            secret,
            keytype,
            public,
            keyid,
        })
    }

    /// Parses a `.sec` file: `{"keytype":..,"keyval":{"private":..}}`.
    pub fn from_json(bytes: &[u8]) -> Result<PrivateKey, KeyError> {
        let raw: RawKey = serde_json::from_slice(bytes).map_err(|_| {
            // Never echo serde's message: it may quote secret bytes.
            KeyError::Json("not a key JSON document with keytype and keyval.private".into())
        })?;
        let private = Zeroizing::new(
            raw.keyval
                .private
                .ok_or(KeyError::MissingValue("private"))?,
        );
        let kt = KeyType::parse(&raw.keytype)?;
        let secret = match kt {
            KeyType::Ed25519 => {
                let bytes = Zeroizing::new(
                    hex::decode(private.trim())
                        .map_err(|_| bad("ED25519", "private", "not hex"))?,
                );
                let mut seed = Zeroizing::new([0u8; 32]);
                match bytes.len() {
                    32 => seed.copy_from_slice(&bytes),
                    64 => seed.copy_from_slice(&bytes[..32]),
                    _ => return Err(bad("ED25519", "private", "wrong Ed25519 private key size")),
                }
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                if bytes.len() == 64 && key.verifying_key().as_bytes()[..] != bytes[32..] {
                    return Err(bad(
                        "ED25519",
                        "private",
                        "the public half of the 64-byte key does not match its seed",
                    ));
                }
                Secret::Ed25519(Box::new(key))
            }
            KeyType::Rsa => {
                let pem = private.trim_start();
                let start = pem.find("-----BEGIN").unwrap_or(0);
                let key = rsa::RsaPrivateKey::from_pkcs1_pem(&pem[start..])
                    .map_err(|_| bad("RSA", "private", "not a PKCS#1 RSA PRIVATE KEY PEM"))?;
                Secret::Rsa(Box::new(key))
            }
        };
        Self::from_secret(secret, raw.keytype)
    }

    /// The `.sec` file content fioctl writes: `{"keytype":..,"keyval":{"private":..}}`.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let private: Zeroizing<String> = match &self.secret {
            Secret::Ed25519(k) => Zeroizing::new(hex::encode(k.to_bytes())),
            Secret::Rsa(k) => k
                .to_pkcs1_pem(LineEnding::LF)
                .unwrap_or_else(|_| Zeroizing::new(String::new())),
        };
        let mut out = Zeroizing::new(Vec::with_capacity(private.len() + 64));
        out.extend_from_slice(b"{\"keytype\":");
        crate::canonical::write_string(self.keytype.as_bytes(), &mut out);
        out.extend_from_slice(b",\"keyval\":{\"private\":");
        crate::canonical::write_string(private.as_bytes(), &mut out);
        out.extend_from_slice(b"}}");
        out
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key id of the public half.
    pub fn keyid(&self) -> &KeyId {
        &self.keyid
    }

    /// The algorithm.
    pub fn key_type(&self) -> KeyType {
        match self.secret {
            Secret::Ed25519(_) => KeyType::Ed25519,
            Secret::Rsa(_) => KeyType::Rsa,
        }
    }

    /// Signs `msg` and returns the signature object.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        let raw: Vec<u8> = match &self.secret {
            Secret::Ed25519(k) => k.sign(msg).to_bytes().to_vec(),
            Secret::Rsa(k) => {
                let signer = rsa::pss::SigningKey::<Sha256>::new_with_salt_len((**k).clone(), 32);
                signer.sign_with_rng(&mut rand::rngs::OsRng, msg).to_vec()
            }
        };
        Signature {
            keyid: self.keyid.clone(),
            method: self.key_type().method().to_string(),
            sig: base64::engine::general_purpose::STANDARD.encode(raw),
        }
    }
}

/// Why a key could not sign (a hardware token refusing, a token signature that does not
/// verify, …): the holder's own error, shown as it is.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SignError(pub Box<dyn std::error::Error + Send + Sync>);

/// Two sign errors are equal when they say the same (for comparing results in tests).
impl PartialEq for SignError {
    fn eq(&self, other: &SignError) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for SignError {}

impl SignError {
    /// Wraps the holder's error.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> SignError {
        SignError(Box::new(e))
    }
}

/// Something that holds one private key and signs with it: a key in memory
/// ([`PrivateKey`]), a key on a PKCS#11 token (the signer's), … The one signing seam: every
/// signature the toolkit makes goes through it ([`crate::transform::sign_root`],
/// [`crate::transform::sign_targets`], the signer's targets signing).
pub trait KeySigner {
    /// The key id (SHA-256 of the SubjectPublicKeyInfo DER, as in `root.json`).
    fn keyid(&self) -> &KeyId;
    /// The public key in fioctl key JSON form.
    fn public_key(&self) -> &PublicKey;
    /// Signs `msg`: `ed25519`, or `rsassa-pss-sha256` with a 32-byte salt, like a tarball key.
    fn sign(&self, msg: &[u8]) -> Result<Signature, SignError>;
}

impl KeySigner for PrivateKey {
    fn keyid(&self) -> &KeyId {
        PrivateKey::keyid(self)
    }
    fn public_key(&self) -> &PublicKey {
        PrivateKey::public_key(self)
    }
    fn sign(&self, msg: &[u8]) -> Result<Signature, SignError> {
        Ok(PrivateKey::sign(self, msg))
    }
}

/// A signature object: `{"keyid": .., "method": .., "sig": <base64>}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Key id of the signing key.
    pub keyid: KeyId,
    /// `ed25519` or `rsassa-pss-sha256`.
    pub method: String,
    /// Standard base64 (with padding) of the raw signature bytes.
    pub sig: String,
}

impl Signature {
    /// The signature object for raw signature bytes made elsewhere (e.g. on a PKCS#11 token)
    /// by a key of type `keytype`.
    pub fn from_raw(keyid: KeyId, keytype: KeyType, raw: &[u8]) -> Signature {
        Signature {
            keyid,
            method: keytype.method().to_string(),
            sig: base64::engine::general_purpose::STANDARD.encode(raw),
        }
    }
}

/// Adds signatures to a document's list, one per key id: a signature by a key id already in
/// the list replaces it where it stands, a new key id is appended. The one rule every crate
/// uses to collect signatures (targets documents, uploads, the server's merge). Signing a
/// root in fioctl's order is [`crate::transform::add_root_signatures`].
pub fn merge_signatures(list: &mut Vec<Signature>, new: impl IntoIterator<Item = Signature>) {
    for sig in new {
        match list.iter_mut().find(|s| s.keyid == sig.keyid) {
            Some(old) => *old = sig,
            None => list.push(sig),
        }
    }
}

fn bad(keytype: &'static str, part: &'static str, reason: impl fmt::Display) -> KeyError {
    KeyError::BadKey {
        keytype,
        part,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seed() -> [u8; 32] {
        let mut s = [0u8; 32];
        for (i, b) in s.iter_mut().enumerate() {
            *b = i as u8;
        }
        s
    }

    /// Vector from the formats reference (computed independently with Python `cryptography`).
    #[test]
    fn signatures_merge_one_per_key_id() {
        let sig = |id: u8, s: &str| Signature {
            keyid: KeyId::parse(&hex::encode([id; 32])).unwrap(),
            method: "ed25519".into(),
            sig: s.into(),
        };
        let mut list = vec![sig(1, "a"), sig(2, "b")];
        merge_signatures(&mut list, [sig(2, "B"), sig(3, "c"), sig(3, "C")]);
        assert_eq!(list, [sig(1, "a"), sig(2, "B"), sig(3, "C")]);
    }

    #[test]
    fn ed25519_reference_vector() {
        let key = PrivateKey::ed25519_from_seed(&seed());
        assert_eq!(
            key.public_key().public(),
            "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
        );
        assert_eq!(
            hex::encode(key.public_key().spki_der().unwrap()),
            "302a300506032b657003210003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
        );
        assert_eq!(
            key.keyid().as_str(),
            "a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5"
        );
        let sig = key.sign(br#"{"_type":"Targets"}"#);
        assert_eq!(sig.method, "ed25519");
        assert_eq!(
            sig.sig,
            "ZtiITnXYWv+xJQbNkWiuIsLapunhNkpNfUiky1PIY0ydnj75URS82cHVkoeTsweJ8+004o1w/iyJ231fw+Z7CQ=="
        );
        key.public_key()
            .verify(br#"{"_type":"Targets"}"#, &sig)
            .unwrap();
        assert!(key
            .public_key()
            .verify(br#"{"_type":"Root"}"#, &sig)
            .is_err());
    }

    #[test]
    fn key_json_matches_fioctl() {
        let key = PrivateKey::ed25519_from_seed(&seed());
        assert_eq!(
            &key.to_json()[..],
            br#"{"keytype":"ED25519","keyval":{"private":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}}"#
        );
        assert_eq!(
            key.public_key().to_json(),
            br#"{"keytype":"ED25519","keyval":{"public":"03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"}}"#
        );
        let back = PrivateKey::from_json(&key.to_json()).unwrap();
        assert_eq!(back.keyid(), key.keyid());
    }

    /// The ota-tuf credentials sample: 64-byte seed‖public private key form.
    #[test]
    fn reads_ota_tuf_ed25519_credentials() {
        let public = PublicKey::from_json(include_bytes!(
            "../tests/vectors/ota-tuf-credentials_ed25519-targets.pub"
        ))
        .unwrap();
        let key = PrivateKey::from_json(include_bytes!(
            "../tests/vectors/ota-tuf-credentials_ed25519-targets.sec"
        ))
        .unwrap();
        assert!(public.same_key(key.public_key()));
        assert!(public.keyid().unwrap().as_str().starts_with("5959a686"));
        assert_eq!(key.keyid(), &public.keyid().unwrap());
    }

    #[test]
    fn rejects_bad_private_keys_without_leaking() {
        let secret = "deadbeef".repeat(5);
        let doc = format!(r#"{{"keytype":"ED25519","keyval":{{"private":"{secret}"}}}}"#);
        let err = PrivateKey::from_json(doc.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("size"), "{err}");
        assert!(!err.contains("deadbeef"));
        let err = PrivateKey::from_json(b"{\"keytype\":\"DSA\",\"keyval\":{\"private\":\"00\"}}")
            .unwrap_err();
        assert!(matches!(err, KeyError::UnsupportedType(_)));
        let err = PrivateKey::from_json(b"{\"keytype\":\"ED25519\",\"keyval\":{}}").unwrap_err();
        assert!(matches!(err, KeyError::MissingValue("private")));
        // 64-byte form whose public half does not match the seed.
        let bad64 = format!(
            r#"{{"keytype":"ED25519","keyval":{{"private":"{}{}"}}}}"#,
            hex::encode(seed()),
            "11".repeat(32)
        );
        assert!(PrivateKey::from_json(bad64.as_bytes()).is_err());
    }

    #[test]
    fn debug_never_shows_secret() {
        let key = PrivateKey::ed25519_from_seed(&seed());
        let dbg = format!("{key:?}");
        assert!(!dbg.contains("000102030405"));
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn method_mismatch_and_garbage_signatures_fail() {
        let key = PrivateKey::ed25519_from_seed(&seed());
        let mut sig = key.sign(b"m");
        sig.method = METHOD_RSA_PSS.into();
        assert!(matches!(
            key.public_key().verify(b"m", &sig),
            Err(KeyError::MethodMismatch { .. })
        ));
        let mut sig = key.sign(b"m");
        sig.sig = "not base64!".into();
        assert!(key.public_key().verify(b"m", &sig).is_err());
        let mut sig = key.sign(b"m");
        sig.sig = base64::engine::general_purpose::STANDARD.encode([0u8; 63]);
        assert!(key.public_key().verify(b"m", &sig).is_err());
    }

    #[test]
    fn keyid_parse() {
        assert!(KeyId::parse(&"a".repeat(64)).is_ok());
        assert!(KeyId::parse(&"A".repeat(64)).is_err());
        assert!(KeyId::parse(&"a".repeat(63)).is_err());
        assert!(KeyId::parse("../../etc/passwd").is_err());
        assert!(serde_json::from_str::<KeyId>("\"xyz\"").is_err());
    }

    #[test]
    fn key_type_parse_is_case_insensitive() {
        assert_eq!(KeyType::parse("ed25519").unwrap(), KeyType::Ed25519);
        assert_eq!(KeyType::parse("rsa").unwrap(), KeyType::Rsa);
        assert!(KeyType::parse("ecdsa").is_err());
    }

    /// The aktualizr sample root: RSA-2048 PEM keys whose keyids are the SPKI SHA-256.
    #[test]
    fn rsa_keyids_of_real_root() {
        let root: serde_json::Value = serde_json::from_slice(include_bytes!(
            "../tests/vectors/aktualizr-prov-repo-root.json"
        ))
        .unwrap();
        let keys = root["signed"]["keys"].as_object().unwrap();
        assert!(!keys.is_empty());
        for (id, key) in keys {
            let pk: PublicKey = serde_json::from_value(key.clone()).unwrap();
            assert_eq!(pk.keyid().unwrap().as_str(), id);
        }
    }

    #[test]
    fn generation_takes_the_callers_randomness() {
        use rand::SeedableRng as _;
        let seeded = |n| rand::rngs::StdRng::seed_from_u64(n);
        let a = PrivateKey::generate_with(KeyType::Ed25519, &mut seeded(7)).unwrap();
        let b = PrivateKey::generate_with(KeyType::Ed25519, &mut seeded(7)).unwrap();
        let c = PrivateKey::generate_with(KeyType::Ed25519, &mut seeded(8)).unwrap();
        assert_eq!(a.keyid(), b.keyid());
        assert_ne!(a.keyid(), c.keyid());
        // A generator behind a trait object works as well (how the signer hands it on).
        let mut rng = seeded(7);
        let dynamic: &mut dyn rand_core::CryptoRngCore = &mut rng;
        let d = PrivateKey::generate_with(KeyType::Ed25519, dynamic).unwrap();
        assert_eq!(d.keyid(), a.keyid());
        let sig = d.sign(b"hello");
        d.public_key().verify(b"hello", &sig).unwrap();
    }

    #[test]
    #[ignore = "RSA-4096 generation takes seconds in debug builds; run with --ignored"]
    fn rsa_4096_round_trip() {
        let key = PrivateKey::generate(KeyType::Rsa).unwrap();
        let sig = key.sign(b"hello");
        assert_eq!(sig.method, METHOD_RSA_PSS);
        key.public_key().verify(b"hello", &sig).unwrap();
        let back = PrivateKey::from_json(&key.to_json()).unwrap();
        assert_eq!(back.keyid(), key.keyid());
        assert!(key
            .public_key()
            .public()
            .ends_with("-----END PUBLIC KEY-----\n"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// A signature verifies only for the exact message and the signing key.
        #[test]
        fn ed25519_sign_verify(s in any::<[u8; 32]>(), msg in prop::collection::vec(any::<u8>(), 0..200), flip in any::<usize>()) {
            let key = PrivateKey::ed25519_from_seed(&s);
            let sig = key.sign(&msg);
            prop_assert!(key.public_key().verify(&msg, &sig).is_ok());
            if !msg.is_empty() {
                let mut m2 = msg.clone();
                let i = flip % m2.len();
                m2[i] ^= 1;
                prop_assert!(key.public_key().verify(&m2, &sig).is_err());
            }
        }
    }
}
