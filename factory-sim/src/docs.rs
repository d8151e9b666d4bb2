//! Signed documents as the server handles them: parsed once, kept as canonical JSON text,
//! with the exact bytes their signatures cover.
//!
//! The server verifies signatures over the canonical form of the `signed` member *as it was
//! received* (not over a re-serialization of a typed model), so whatever a client signed is
//! what gets checked.

use serde::Deserialize;
use serde_json::value::RawValue;
use shared::canonical;
use shared::keys::Signature;
use shared::metadata::{Root, SignedRoot, Targets};

/// Canonicalizes JSON text and makes sure the result is still JSON for strict parsers (the
/// canonical form writes control characters raw, which no JSON parser accepts back).
pub(crate) fn canonical_json(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let canon = canonical::canonicalize(bytes).map_err(|e| e.to_string())?;
    serde_json::from_slice::<serde::de::IgnoredAny>(&canon).map_err(|_| {
        "strings must not contain control characters other than \\n, \\r and \\t".to_string()
    })?;
    Ok(canon)
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    signatures: Option<Vec<Signature>>,
    #[serde(borrow)]
    signed: &'a RawValue,
}

/// A root document: canonical text, the canonical bytes of `signed`, and the parsed model.
#[derive(Clone, Debug)]
pub(crate) struct RootDoc {
    /// The whole document, canonical JSON.
    pub text: String,
    /// Canonical `signed` (what signatures cover).
    pub signed_bytes: Vec<u8>,
    /// Parsed document.
    pub doc: SignedRoot,
}

impl RootDoc {
    /// Parses and canonicalizes a root document.
    pub fn parse(bytes: &[u8]) -> Result<RootDoc, String> {
        let canon = canonical_json(bytes)?;
        let env: Envelope<'_> = serde_json::from_slice(&canon).map_err(|e| e.to_string())?;
        let signed_bytes = env.signed.get().as_bytes().to_vec();
        let doc = SignedRoot::from_json(&canon).map_err(|e| e.to_string())?;
        let text = String::from_utf8(canon).map_err(|_| "root is not valid UTF-8".to_string())?;
        Ok(RootDoc {
            text,
            signed_bytes,
            doc,
        })
    }

    /// `signed`.
    pub fn root(&self) -> &Root {
        &self.doc.signed
    }

    /// `signed` as a generic JSON value (for whole-document comparisons).
    pub fn signed_value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.signed_bytes).unwrap_or(serde_json::Value::Null)
    }

    /// Builds a document from a model and signatures (canonical text).
    pub fn from_parts(root: &Root, signatures: Vec<Signature>) -> Result<RootDoc, String> {
        let doc = SignedRoot {
            signatures,
            signed: root.clone(),
            extra: Default::default(),
        };
        let bytes = doc.to_canonical().map_err(|e| e.to_string())?;
        RootDoc::parse(&bytes)
    }
}

/// A targets document (production tag or wave): signatures and canonical `signed` bytes.
#[derive(Clone, Debug)]
pub(crate) struct TargetsDoc {
    /// Signatures, in order.
    pub signatures: Vec<Signature>,
    /// Canonical `signed`.
    pub signed_bytes: Vec<u8>,
}

impl TargetsDoc {
    /// Parses a document from a client, canonicalizing `signed`.
    pub fn parse(bytes: &[u8]) -> Result<TargetsDoc, String> {
        let env: Envelope<'_> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        Ok(TargetsDoc {
            signatures: env.signatures.unwrap_or_default(),
            signed_bytes: canonical_json(env.signed.get().as_bytes())?,
        })
    }

    /// Parses a stored document (already canonical).
    pub fn parse_stored(bytes: &[u8]) -> Result<TargetsDoc, String> {
        let env: Envelope<'_> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        Ok(TargetsDoc {
            signatures: env.signatures.unwrap_or_default(),
            signed_bytes: env.signed.get().as_bytes().to_vec(),
        })
    }

    /// The canonical document `{"signatures":[...],"signed":{...}}`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let sigs = canonical::to_canonical(&self.signatures).unwrap_or_else(|_| b"[]".to_vec());
        let mut out = Vec::with_capacity(self.signed_bytes.len() + sigs.len() + 32);
        out.extend_from_slice(b"{\"signatures\":");
        out.extend_from_slice(&sigs);
        out.extend_from_slice(b",\"signed\":");
        out.extend_from_slice(&self.signed_bytes);
        out.push(b'}');
        out
    }

    /// The parsed `signed` member.
    pub fn targets(&self) -> Result<Targets, String> {
        serde_json::from_slice(&self.signed_bytes).map_err(|e| format!("invalid targets: {e}"))
    }

    /// Adds `sig`, replacing an earlier signature by the same key id.
    pub fn merge(&mut self, sig: Signature) {
        shared::keys::merge_signatures(&mut self.signatures, [sig]);
    }

    /// `signed` as a raw JSON value for embedding in a response.
    pub fn signed_raw(&self) -> Box<RawValue> {
        let text = String::from_utf8_lossy(&self.signed_bytes).into_owned();
        RawValue::from_string(text)
            .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_doc_round_trip_is_canonical() {
        let doc = TargetsDoc::parse(
            br#"{"signed": {"version": 3, "_type": "Targets"}, "signatures": null}"#,
        )
        .unwrap();
        assert_eq!(doc.signed_bytes, br#"{"_type":"Targets","version":3}"#);
        assert_eq!(
            doc.to_bytes(),
            br#"{"signatures":[],"signed":{"_type":"Targets","version":3}}"#
        );
        let again = TargetsDoc::parse_stored(&doc.to_bytes()).unwrap();
        assert_eq!(again.signed_bytes, doc.signed_bytes);
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(canonical_json(b"{\"a\":\"\\u001b\"}").is_err());
        assert!(canonical_json(b"{\"a\":\"x\\ny\"}").is_ok());
    }
}
