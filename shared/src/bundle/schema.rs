//! The bundle format as data: the format's names and versions, the member layout's names,
//! and the types of `manifest.json`, `upload.json` and `record.json` with their serde
//! (member names, strict operation lists, the hex form of [`Sha256Digest`]).
//! `transaction.json` is the Factory API's answer as received; its type is
//! [`crate::transaction::Transaction`] (re-exported as `shared::bundle::Transaction`).
//!
//! Nothing here reads or writes a bundle ([`super::codec`] does) or checks one member against
//! another ([`super::validate`] does); the only checks are those of deserializing one value
//! (unknown members refused where the format says so, `x-` extensions kept).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::stream::MemberData;
use crate::attestation::{Attestation, IdentityKey};
use crate::authority::Change;
use crate::keys::{KeyId, Signature};
use crate::metadata::{Role, SignedRoot, Timestamp};

/// `format` value of every bundle manifest.
pub const FORMAT_NAME: &str = "offline-tuf-bundle";
/// The newest bundle format version this code reads and writes. Version 2 adds the
/// attested signer steps (`output`, `authorized`, `attestation` in `record.json`); requests
/// need none of it and are written as [`REQUEST_FORMAT_VERSION`], responses as version 2.
pub const FORMAT_VERSION: u64 = 2;
/// The format version requests are written in (the oldest that expresses them).
pub const REQUEST_FORMAT_VERSION: u64 = 1;
/// Every format version this code reads.
pub const READABLE_VERSIONS: [u64; 2] = [1, 2];
/// Name of the manifest member (always first).
pub const MANIFEST: &str = "manifest.json";
/// Name of the transaction snapshot member.
pub const TRANSACTION: &str = "transaction.json";
/// Name of the PUT body member (responses).
pub const UPLOAD: &str = "upload.json";
/// Name of the signing record member (responses).
pub const RECORD: &str = "record.json";
/// Name of the encrypted initial root key member (first-time rotation requests).
pub const FIRST_ROOT_SECRET: &str = "secrets/first-root.sec.age";
/// Directory of the root chain members.
pub const CHAIN_DIR: &str = "chain/";
/// Directory of the production targets members.
pub const PROD_TARGETS_DIR: &str = "prod-targets/";
/// Directory of the wave targets members.
pub const WAVES_DIR: &str = "waves/";

/// A SHA-256 digest, written as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256Digest {
        Sha256Digest(Sha256::digest(bytes).into())
    }

    /// The short human fingerprint: the first 80 bits as four groups of five lowercase hex
    /// digits joined by `-`.
    pub fn fingerprint(&self) -> String {
        let hex = hex::encode(&self.0[..10]);
        format!(
            "{}-{}-{}-{}",
            &hex[0..5],
            &hex[5..10],
            &hex[10..15],
            &hex[15..20]
        )
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

impl FromStr for Sha256Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!("{s:?} is not 64 lowercase hex characters"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|e| e.to_string())?;
        Ok(Sha256Digest(out))
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether a bundle asks for signatures or carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleKind {
    /// Written by the courier: what the signer needs.
    Request,
    /// Written by the signer: what the courier uploads.
    Response,
}

impl fmt::Display for BundleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BundleKind::Request => "request",
            BundleKind::Response => "response",
        })
    }
}

/// One operation of a transaction, with stable serialized names (`"op"` member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Operation {
    /// Replace the initial Foundries-held root key by an offline key (first time only).
    FirstTimeRootRotation,
    /// Replace the offline root key by a new one.
    RootRotation,
    /// Replace (or create) the offline targets key and re-sign production targets.
    TargetsRotation,
    /// Add an offline key to a role. `keyid` is absent in a request and names the created
    /// key in a signer step.
    AddOfflineKey {
        /// `root` or `targets`.
        role: Role,
        /// The key created, once known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keyid: Option<KeyId>,
    },
    /// Remove an offline key from a role.
    DeleteOfflineKey {
        /// `root` or `targets`.
        role: Role,
        /// The key removed.
        keyid: KeyId,
    },
    /// Change a role's signature threshold.
    SetThreshold {
        /// `root` or `targets`.
        role: Role,
        /// New threshold (at least 1).
        threshold: u64,
    },
    /// Sign the staged CI and production roots.
    SignRoot,
    /// Sign the production targets of these tags.
    SignProdTargets {
        /// Tags; each has a `prod-targets/<tag>.json` member.
        tags: Vec<String>,
    },
    /// Sign one wave's targets.
    SignWave {
        /// Wave name; there is a `waves/<name>.json` member.
        name: String,
    },
    /// The server rotated online keys of these roles in this transaction.
    RotateOnlineKey {
        /// Some of `targets`, `snapshot`, `timestamp`.
        roles: Vec<Role>,
    },
}

impl Operation {
    /// The stable name (`"op"` value), e.g. `sign-prod-targets`.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::FirstTimeRootRotation => "first-time-root-rotation",
            Operation::RootRotation => "root-rotation",
            Operation::TargetsRotation => "targets-rotation",
            Operation::AddOfflineKey { .. } => "add-offline-key",
            Operation::DeleteOfflineKey { .. } => "delete-offline-key",
            Operation::SetThreshold { .. } => "set-threshold",
            Operation::SignRoot => "sign-root",
            Operation::SignProdTargets { .. } => "sign-prod-targets",
            Operation::SignWave { .. } => "sign-wave",
            Operation::RotateOnlineKey { .. } => "rotate-online-key",
        }
    }

    /// Parses one operation from JSON, refusing members the operation does not have
    /// (serde's `deny_unknown_fields` does not cover unit variants of tagged enums).
    pub fn from_value_strict(value: Value) -> Result<Operation, String> {
        let op: Operation = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        let known = serde_json::to_value(&op).map_err(|e| e.to_string())?;
        if let (Some(given), Some(known)) = (value.as_object(), known.as_object()) {
            for k in given.keys() {
                if !known.contains_key(k) {
                    return Err(format!("operation {}: unknown member {k:?}", op.name()));
                }
            }
        }
        Ok(op)
    }
}

fn strict_operations<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Operation>, D::Error> {
    Vec::<Value>::deserialize(d)?
        .into_iter()
        .map(|v| Operation::from_value_strict(v).map_err(serde::de::Error::custom))
        .collect()
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::AddOfflineKey { role, keyid } => match keyid {
                Some(k) => write!(f, "add-offline-key {role} {k}"),
                None => write!(f, "add-offline-key {role}"),
            },
            Operation::DeleteOfflineKey { role, keyid } => {
                write!(f, "delete-offline-key {role} {keyid}")
            }
            Operation::SetThreshold { role, threshold } => {
                write!(f, "set-threshold {role} {threshold}")
            }
            Operation::SignProdTargets { tags } => {
                write!(f, "sign-prod-targets {}", tags.join(","))
            }
            Operation::SignWave { name } => write!(f, "sign-wave {name}"),
            Operation::RotateOnlineKey { roles } => {
                let r: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
                write!(f, "rotate-online-key {}", r.join(","))
            }
            other => f.write_str(other.name()),
        }
    }
}

/// Which program wrote a bundle or performed a step.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Writer {
    /// Program name (`courier`, `signer`).
    pub tool: String,
    /// Program version.
    pub version: String,
}

impl Writer {
    /// Convenience constructor.
    pub fn new(tool: impl Into<String>, version: impl Into<String>) -> Writer {
        Writer {
            tool: tool.into(),
            version: version.into(),
        }
    }
}

/// Size and digest of one member, as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberDigest {
    /// Member name.
    pub name: String,
    /// SHA-256 of the member bytes.
    pub sha256: Sha256Digest,
    /// Size in bytes.
    pub size: u64,
}

/// The manifest's summary of one signer step (details in `record.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSummary {
    /// Digest of the bundle this step consumed.
    #[serde(rename = "input-sha256")]
    pub input_sha256: Sha256Digest,
    /// Program that performed the step.
    pub signer: Writer,
    /// When.
    pub time: Timestamp,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// One of [`READABLE_VERSIONS`].
    #[serde(rename = "format-version")]
    pub format_version: u64,
    /// Request or response.
    pub kind: BundleKind,
    /// Factory name.
    pub factory: String,
    /// Transaction id (may be empty for the transaction's initiator).
    pub txid: String,
    /// Program that wrote this bundle.
    pub writer: Writer,
    /// When it was written.
    pub created: Timestamp,
    /// The operations requested (copied unchanged into responses).
    #[serde(deserialize_with = "strict_operations")]
    pub operations: Vec<Operation>,
    /// Every member except the manifest, in archive order.
    pub members: Vec<MemberDigest>,
    /// Responses: digest of the request answered.
    #[serde(
        rename = "request-sha256",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub request_sha256: Option<Sha256Digest>,
    /// Responses: the signer steps so far, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepSummary>,
    /// SHA-256 of the canonical manifest without this member.
    #[serde(
        rename = "manifest-checksum",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub checksum: Option<Sha256Digest>,
    /// Extension members; names must start with `x-`. Readers ignore them.
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

/// `upload.json`: the body of `PUT root/updates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// Transaction id (equal to the manifest's).
    pub txid: String,
    /// The new CI root.
    #[serde(rename = "ci-root")]
    pub ci_root: SignedRoot,
    /// The new production root.
    #[serde(rename = "prod-root")]
    pub prod_root: SignedRoot,
    /// New signatures of production targets, per tag.
    #[serde(
        rename = "targets-signatures",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub targets_signatures: BTreeMap<String, Vec<Signature>>,
    /// New signatures of wave targets, per wave.
    #[serde(
        rename = "waves-signatures",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub waves_signatures: BTreeMap<String, Vec<Signature>>,
}

/// Which key ids signed one document in a step, and the digest they signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedDocument {
    /// `ci-root`, `prod-root`, `prod-targets/<tag>` or `waves/<name>`.
    pub document: String,
    /// SHA-256 of the canonical `signed` bytes the signatures cover.
    pub sha256: Sha256Digest,
    /// Key ids that signed, in signature order.
    pub keyids: Vec<KeyId>,
}

/// One signer step of `record.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Digest of the bundle this step consumed.
    #[serde(rename = "input-sha256")]
    pub input_sha256: Sha256Digest,
    /// Program that performed the step.
    pub signer: Writer,
    /// When.
    pub time: Timestamp,
    /// What the step did.
    #[serde(deserialize_with = "strict_operations")]
    pub operations: Vec<Operation>,
    /// New signatures made in this step.
    pub signatures: Vec<SignedDocument>,
    /// Format 2: the digests of the drafts this step's upload holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<StepOutput>,
    /// Format 2: every change of the drafts (against the roots in force) that this step's
    /// signer authorized — by its operator's command, an authenticated cosigner step, or a
    /// typed confirmation. Changes it did not authorize are not listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized: Option<Vec<Change>>,
    /// Format 2: the signature of the signer that made the step over
    /// [`Step::attestation_payload`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attestation>,
}

impl Step {
    /// The manifest's summary of this step ([`Manifest::steps`]).
    pub(super) fn summary(&self) -> StepSummary {
        StepSummary {
            input_sha256: self.input_sha256,
            signer: self.signer.clone(),
            time: self.time,
        }
    }
}

/// The drafts a step produced: SHA-256 of the canonical `signed` bytes of each root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepOutput {
    /// The CI root draft.
    #[serde(rename = "ci-root")]
    pub ci_root: Sha256Digest,
    /// The production root draft.
    #[serde(rename = "prod-root")]
    pub prod_root: Sha256Digest,
}

/// How a step of a response is authenticated (see [`TransferBundle::step_auth`](super::TransferBundle::step_auth)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepAuth {
    /// The attestation verifies: the step was made by the holder of this identity.
    Signed(IdentityKey),
    /// The step carries no attestation (a format-1 response, or one stripped on the way).
    Unsigned,
    /// The attestation does not verify: the step was changed after it was signed.
    Broken {
        /// The identity the attestation names.
        identity: IdentityKey,
        /// Why it fails.
        reason: String,
    },
}

/// `record.json`: the signing record of a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Digest of the request answered.
    #[serde(rename = "request-sha256")]
    pub request_sha256: Sha256Digest,
    /// Steps, oldest first.
    pub steps: Vec<Step>,
}

/// Everything a request carries, as given to [`TransferBundle::new_request`](super::TransferBundle::new_request).
#[derive(Debug, Clone)]
pub struct RequestInput {
    /// Factory name.
    pub factory: String,
    /// Transaction id.
    pub txid: String,
    /// Program writing the request.
    pub writer: Writer,
    /// Creation time.
    pub created: Timestamp,
    /// Operations requested (at least one).
    pub operations: Vec<Operation>,
    /// `transaction.json` bytes (the server's answer, stored as given).
    pub transaction: Vec<u8>,
    /// Root chain: element `i` is `chain/<i+1>.root.json` (at least one).
    pub chain: Vec<Vec<u8>>,
    /// Production targets per tag (`prod-targets/<tag>.json`): bytes, or a [`Spool`]'s.
    ///
    /// [`Spool`]: super::Spool
    pub prod_targets: BTreeMap<String, MemberData>,
    /// Wave targets per wave (`waves/<name>.json`).
    pub waves: BTreeMap<String, MemberData>,
    /// Whether the caller already checked every targets document to parse
    /// ([`SignedTargets::check_json`](crate::metadata::SignedTargets::check_json)) as it
    /// arrived; otherwise building the request checks them. (Any reader checks them again.)
    pub docs_checked: bool,
    /// The age-encrypted initial root key (first-time rotation only).
    pub first_root_secret: Option<Vec<u8>>,
}

/// What a signer step adds, as given to [`TransferBundle::respond`](super::TransferBundle::respond).
#[derive(Debug, Clone)]
pub struct StepInput {
    /// Program performing the step.
    pub signer: Writer,
    /// When.
    pub time: Timestamp,
    /// What the step did.
    pub operations: Vec<Operation>,
    /// The changes of the drafts the step's signer authorized ([`Step::authorized`]).
    pub authorized: Vec<Change>,
    /// The complete new PUT body (previous signatures included).
    pub upload: Upload,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::fixtures::key;
    use crate::canonical;

    #[test]
    fn operation_names_are_stable() {
        let k = key(1).keyid().clone();
        let ops = vec![
            Operation::FirstTimeRootRotation,
            Operation::RootRotation,
            Operation::TargetsRotation,
            Operation::AddOfflineKey {
                role: Role::Targets,
                keyid: None,
            },
            Operation::DeleteOfflineKey {
                role: Role::Root,
                keyid: k.clone(),
            },
            Operation::SetThreshold {
                role: Role::Targets,
                threshold: 2,
            },
            Operation::SignRoot,
            Operation::SignProdTargets {
                tags: vec!["main".into()],
            },
            Operation::SignWave { name: "w".into() },
            Operation::RotateOnlineKey {
                roles: vec![Role::Snapshot],
            },
        ];
        let text = String::from_utf8(canonical::to_canonical(&ops).unwrap()).unwrap();
        assert_eq!(
            text,
            format!(
                "[{{\"op\":\"first-time-root-rotation\"}},{{\"op\":\"root-rotation\"}},{{\"op\":\"targets-rotation\"}},\
                 {{\"op\":\"add-offline-key\",\"role\":\"targets\"}},{{\"keyid\":\"{k}\",\"op\":\"delete-offline-key\",\"role\":\"root\"}},\
                 {{\"op\":\"set-threshold\",\"role\":\"targets\",\"threshold\":2}},{{\"op\":\"sign-root\"}},\
                 {{\"op\":\"sign-prod-targets\",\"tags\":[\"main\"]}},{{\"name\":\"w\",\"op\":\"sign-wave\"}},\
                 {{\"op\":\"rotate-online-key\",\"roles\":[\"snapshot\"]}}]"
            )
        );
        for op in &ops {
            assert!(text.contains(op.name()));
            let _ = op.to_string();
        }
        let back: Vec<Operation> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ops);
        let strict = |s: &str| Operation::from_value_strict(serde_json::from_str(s).unwrap());
        assert!(strict("{\"op\":\"sign-root\",\"extra\":1}").is_err());
        assert!(strict("{\"op\":\"sign-root\",\"keyid\":null}").is_err());
        assert!(
            strict("{\"op\":\"set-threshold\",\"role\":\"root\",\"threshold\":1,\"x\":1}").is_err()
        );
        assert!(strict("{\"op\":\"launch-missiles\"}").is_err());
        assert!(strict("{\"op\":\"add-offline-key\",\"role\":\"root\"}").is_ok());
    }
}
