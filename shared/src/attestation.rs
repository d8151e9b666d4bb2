//! Signer identities and step attestations: how one offline laptop knows that a step of a
//! response was made by another pinned laptop and not rewritten on the USB stick.
//!
//! Every signer has a **signing identity**, an Ed25519 key pair kept in its state directory
//! (separate from the offline TUF keys: it signs only step records, never metadata). Its
//! public half is written `ed25519:<64 hex digits>` ([`IdentityKey`]) and compared between
//! people by its [`IdentityKey::fingerprint`]. A key holder pins the others' identities
//! (`signer cosigner add`), the courier may pin them too (`courier config add-signer`).
//!
//! Each step a signer appends to a response carries an [`Attestation`]: the identity and an
//! Ed25519 signature over [`payload`], the canonical JSON of
//!
//! ```json
//! {"attestation": "offline-tuf-step-v1", "factory": "…", "txid": "…",
//!  "request-sha256": "…", "step": {<the step record without its attestation>}}
//! ```
//!
//! The step record names the digests of the drafts the step produced (`output`), the
//! documents it signed with their digests, and the exact changes it authorized; so the
//! signature binds all of them to this factory, transaction and request.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The `attestation` member of every payload (domain separation).
pub const PAYLOAD_KIND: &str = "offline-tuf-step-v1";

/// Errors of identities and attestations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// An identity string is not `ed25519:` followed by 64 hex digits of a valid key.
    #[error("{0:?} is not a signer identity (expected ed25519: followed by 64 hex digits, as `signer identity show` prints it)")]
    BadIdentity(String),
    /// The signature is not valid base64 of 64 bytes.
    #[error("the attestation signature is not 64 bytes of base64")]
    BadSignature,
    /// The signature does not verify.
    #[error("the attestation signature does not verify: the step was changed after it was signed, or signed by another key")]
    Invalid,
}

/// The public half of a signer identity.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdentityKey([u8; 32]);

impl IdentityKey {
    /// The short form people compare out of band: the first 80 bits of the SHA-256 of the
    /// 32 key bytes as four groups of five hex digits.
    pub fn fingerprint(&self) -> String {
        let hex = hex::encode(Sha256::digest(self.0));
        hex.as_bytes()[..20]
            .chunks(5)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn verifying(&self) -> Result<VerifyingKey, AttestationError> {
        VerifyingKey::from_bytes(&self.0)
            .map_err(|_| AttestationError::BadIdentity(self.to_string()))
    }
}

impl fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKey({})", self.fingerprint())
    }
}

impl FromStr for IdentityKey {
    type Err = AttestationError;
    fn from_str(s: &str) -> Result<IdentityKey, AttestationError> {
        let bad = || AttestationError::BadIdentity(s.chars().take(80).collect());
        let hex_part = s.trim().strip_prefix("ed25519:").ok_or_else(bad)?;
        if hex_part.len() != 64 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut raw = [0u8; 32];
        hex::decode_to_slice(hex_part.to_ascii_lowercase(), &mut raw).map_err(|_| bad())?;
        let key = IdentityKey(raw);
        key.verifying().map_err(|_| bad())?;
        Ok(key)
    }
}

impl Serialize for IdentityKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for IdentityKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IdentityKey, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A signer's private signing identity. The secret is zeroized when dropped and never
/// printed (`Debug` shows the fingerprint only).
pub struct SigningIdentity(SigningKey);

impl SigningIdentity {
    /// A new identity from the operating system's random generator.
    pub fn generate() -> SigningIdentity {
        SigningIdentity(SigningKey::generate(&mut rand_core::OsRng))
    }

    /// The identity with this 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> SigningIdentity {
        SigningIdentity(SigningKey::from_bytes(seed))
    }

    /// The secret seed, for storing it (zeroized when dropped).
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> IdentityKey {
        IdentityKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `payload` (see [`payload`]).
    pub fn attest(&self, payload: &[u8]) -> Attestation {
        Attestation {
            identity: self.public(),
            sig: base64::engine::general_purpose::STANDARD.encode(self.0.sign(payload).to_bytes()),
        }
    }
}

impl fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningIdentity({}, secret redacted)",
            self.public().fingerprint()
        )
    }
}

/// A signer's signature over one step (the `attestation` member of a step, format 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// Who signed.
    pub identity: IdentityKey,
    /// Standard base64 of the 64-byte Ed25519 signature over the payload.
    pub sig: String,
}

impl Attestation {
    /// Verifies the signature over `payload`.
    pub fn verify(&self, payload: &[u8]) -> Result<(), AttestationError> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&self.sig)
            .map_err(|_| AttestationError::BadSignature)?;
        let raw: [u8; 64] = raw.try_into().map_err(|_| AttestationError::BadSignature)?;
        let sig = ed25519_dalek::Signature::from_bytes(&raw);
        self.identity
            .verifying()?
            .verify_strict(payload, &sig)
            .map_err(|_| AttestationError::Invalid)
    }
}

/// The bytes a step attestation signs: canonical JSON binding the step record (`step`,
/// already without its attestation) to the factory, transaction and request.
pub fn payload<T: Serialize>(
    factory: &str,
    txid: &str,
    request_sha256: &str,
    step: &T,
) -> Result<Vec<u8>, crate::canonical::CanonicalError> {
    #[derive(Serialize)]
    struct Payload<'a, T> {
        attestation: &'static str,
        factory: &'a str,
        txid: &'a str,
        #[serde(rename = "request-sha256")]
        request_sha256: &'a str,
        step: &'a T,
    }
    crate::canonical::to_canonical(&Payload {
        attestation: PAYLOAD_KIND,
        factory,
        txid,
        request_sha256,
        step,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_print_parse_and_fingerprint() {
        let id = SigningIdentity::from_seed(&[7; 32]);
        let public = id.public();
        let text = public.to_string();
        assert!(text.starts_with("ed25519:") && text.len() == 8 + 64);
        assert_eq!(text.parse::<IdentityKey>().unwrap(), public);
        assert_eq!(
            text.to_uppercase()
                .replace("ED25519", "ed25519")
                .parse::<IdentityKey>()
                .unwrap(),
            public
        );
        let fp = public.fingerprint();
        assert_eq!(fp.len(), 23);
        assert_eq!(fp.matches('-').count(), 3);
        for bad in ["", "ed25519:", "ed25519:zz", &text[..70], "rsa:00"] {
            assert!(bad.parse::<IdentityKey>().is_err(), "{bad}");
        }
        assert!(!format!("{id:?}").contains(&hex::encode([7u8; 32])));
    }

    #[test]
    fn an_attestation_verifies_only_its_payload_and_identity() {
        let id = SigningIdentity::from_seed(&[1; 32]);
        let step = serde_json::json!({"operations": [{"op": "sign-root"}]});
        let p = payload("acme", "tx1", "00", &step).unwrap();
        let a = id.attest(&p);
        a.verify(&p).unwrap();
        let other = payload("acme", "tx2", "00", &step).unwrap();
        assert_eq!(a.verify(&other), Err(AttestationError::Invalid));
        let mut forged = a.clone();
        forged.identity = SigningIdentity::from_seed(&[2; 32]).public();
        assert_eq!(forged.verify(&p), Err(AttestationError::Invalid));
        let mut broken = a.clone();
        broken.sig = "AAAA".into();
        assert_eq!(broken.verify(&p), Err(AttestationError::BadSignature));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Attestation>(&json).unwrap(), a);
        assert!(String::from_utf8(p)
            .unwrap()
            .contains("\"attestation\":\"offline-tuf-step-v1\""));
    }
}
