//! The JSON the Factory API speaks: answers as the courier reads them (members it does not
//! use are ignored, `null` reads as empty) and the bodies it sends, in Go's member order.
//! The root updates transaction (`GET root/updates`) is [`shared::transaction`]'s.
//!
//! Documents the courier must keep byte for byte (roots, targets, the initial root key) are
//! kept as the server wrote them ([`RawValue`], byte vectors), never re-encoded.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use shared::keys::Signature;
use shared::transaction::null_default;
use zeroize::Zeroizing;

/// The answer of `POST R/root/updates`.
pub struct InitResponse {
    /// The transaction id.
    pub txid: String,
    /// `first_root.sec` exactly as received (first-time only); zeroized on drop.
    pub first_root_sec: Option<Zeroizing<Vec<u8>>>,
    /// `first_root.pub` exactly as received (first-time only).
    pub first_root_pub: Option<Vec<u8>>,
}

impl fmt::Debug for InitResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitResponse")
            .field("txid", &self.txid)
            .field(
                "first_root_sec",
                &self.first_root_sec.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "first_root_pub",
                &self
                    .first_root_pub
                    .as_ref()
                    .map(|p| String::from_utf8_lossy(p)),
            )
            .finish()
    }
}

impl InitResponse {
    /// Parses the init answer, keeping the key values byte-for-byte.
    pub fn parse(body: &[u8]) -> Result<InitResponse, String> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(default)]
            txid: Option<String>,
            #[serde(rename = "first_root.sec", borrow, default)]
            sec: Option<&'a RawValue>,
            #[serde(rename = "first_root.pub", borrow, default)]
            public: Option<&'a RawValue>,
        }
        let raw: Raw<'_> =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
        let keep = |v: Option<&RawValue>| {
            v.map(|v| v.get())
                .filter(|s| *s != "null")
                .map(|s| s.as_bytes().to_vec())
        };
        Ok(InitResponse {
            txid: raw.txid.unwrap_or_default(),
            first_root_sec: keep(raw.sec).map(Zeroizing::new),
            first_root_pub: keep(raw.public),
        })
    }
}

/// A wave with its targets (`GET waves/{name}/?show-targets=1`).
#[derive(Clone, Debug)]
pub struct Wave {
    /// Wave name.
    pub name: String,
    /// Version, as the API wrote it (a string, or a number turned into one).
    pub version: String,
    /// Production tag.
    pub tag: String,
    /// `active`, `complete` or `canceled`.
    pub status: String,
    /// The targets document (`{"signed": ..., "signatures": [...]}`) exactly as served.
    pub targets: Vec<u8>,
}

/// The members of a wave answer the courier reads.
#[derive(Deserialize)]
pub(super) struct WaveAnswer {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: Value,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    status: String,
    targets: Box<RawValue>,
}

impl From<WaveAnswer> for Wave {
    fn from(w: WaveAnswer) -> Wave {
        Wave {
            version: match w.version {
                Value::String(s) => s,
                other => other.to_string(),
            },
            name: w.name,
            tag: w.tag,
            status: w.status,
            targets: Box::<str>::from(w.targets).into_string().into_bytes(),
        }
    }
}

/// The answer of `POST waves/{name}/rollout/` (the wave's members are not needed).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RolloutResult {
    /// How many devices it was (or would be) rolled out to.
    #[serde(rename = "device-num", default)]
    pub device_num: u64,
    /// Their UUIDs, when asked for (`None` when the list is too long to return).
    #[serde(rename = "device-uuids", default)]
    pub device_uuids: Option<Vec<String>>,
    /// Their names, when asked for.
    #[serde(rename = "device-names", default)]
    pub device_names: Option<Vec<String>>,
}

/// The answer of `GET waves/`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WaveList {
    /// The waves of this page.
    #[serde(default, deserialize_with = "null_default")]
    pub waves: Vec<Value>,
    /// Total number of waves matching.
    #[serde(default)]
    pub total: u64,
    /// URL of the next page, if any.
    #[serde(default)]
    pub next: Option<String>,
}

/// The body of `POST waves/` (a new wave with its signed targets), in Go's member order.
#[derive(Debug, Serialize)]
pub struct WaveCreate<'a> {
    /// Wave name.
    pub name: &'a str,
    /// Version, as typed to `waves init` (a string).
    pub version: &'a str,
    /// Production tag.
    pub tag: &'a str,
    /// The wave's targets document.
    pub targets: WaveTargets<'a>,
}

/// The targets document of [`WaveCreate`]: the canonical `signed` bytes as they were signed,
/// and the signatures.
#[derive(Debug, Serialize)]
pub struct WaveTargets<'a> {
    /// The `signed` part, exactly the bytes the signatures cover.
    pub signed: &'a RawValue,
    /// The offline signatures.
    pub signatures: &'a [Signature],
}

/// The body of `POST waves/{name}/sign/`: more offline signatures of a wave's targets.
#[derive(Debug, Serialize)]
pub struct WaveSign<'a> {
    /// The new signatures.
    pub signatures: &'a [Signature],
}

/// The body of `POST waves/{name}/rollout/`, in Go's member order (fioctl's
/// `WaveRolloutOptions`: the first four omitted when empty).
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct RolloutOptions {
    /// Device group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// An exact number of devices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// A percentage of the matching devices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<u32>,
    /// Exact device UUIDs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uuids: Vec<String>,
    /// Only say what would happen.
    #[serde(rename = "dry-run")]
    pub dry_run: bool,
    /// Return the devices' UUIDs.
    #[serde(rename = "return-uuids")]
    pub return_uuids: bool,
    /// Return the devices' names.
    #[serde(rename = "return-names")]
    pub return_names: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_response_keeps_key_bytes() {
        let r = InitResponse::parse(
            br#"{"txid":"t1","first_root.sec":{"keytype":"ED25519","keyval":{"private":"ab"}},"first_root.pub":{"keytype":"ED25519","keyval":{"public":"cd"}}}"#,
        )
        .unwrap();
        assert_eq!(r.txid, "t1");
        assert_eq!(
            r.first_root_sec.as_deref().map(|v| v.as_slice()),
            Some(&br#"{"keytype":"ED25519","keyval":{"private":"ab"}}"#[..])
        );
        assert!(!format!("{r:?}").contains("\"ab\""));
        let r = InitResponse::parse(br#"{"txid":"t2","first_root.sec":null}"#).unwrap();
        assert!(r.first_root_sec.is_none() && r.first_root_pub.is_none());
    }

    #[test]
    fn request_bodies_keep_go_member_order() {
        let signed = RawValue::from_string(r#"{"_type":"Targets"}"#.into()).unwrap();
        let body = WaveCreate {
            name: "w",
            version: "42",
            tag: "prod",
            targets: WaveTargets {
                signed: &signed,
                signatures: &[],
            },
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"name":"w","version":"42","tag":"prod","targets":{"signed":{"_type":"Targets"},"signatures":[]}}"#
        );
        let opts = RolloutOptions {
            limit: Some(3),
            ..RolloutOptions::default()
        };
        assert_eq!(
            serde_json::to_string(&opts).unwrap(),
            r#"{"limit":3,"dry-run":false,"return-uuids":false,"return-names":false}"#
        );
    }
}
