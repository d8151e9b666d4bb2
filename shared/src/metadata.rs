//! The TUF metadata model as Foundries (ota-tuf) uses it: `root.json` and `targets.json`.
//!
//! Every struct keeps the members it does not know in an `extra` map, so a document that is
//! parsed and serialized again differs from the original only where this code changed it
//! (custom target data, future root fields and the legacy top-level `targets-signatures`
//! all survive). Signatures always cover [`crate::canonical`] bytes of `signed`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::canonical::{self, CanonicalError};
use crate::keys::{KeyId, PublicKey, Signature};

/// Why metadata could not be parsed or serialized.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The document does not match the expected structure.
    #[error("invalid {what}: {reason}")]
    Parse {
        /// Which document (`root.json`, `targets.json`, ...).
        what: &'static str,
        /// serde's description of the problem.
        reason: String,
    },
    /// Canonical encoding failed.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// A timestamp is not RFC 3339.
    #[error("invalid timestamp {0:?}: expected RFC 3339 like 2027-03-01T10:20:30Z")]
    Timestamp(String),
}

/// An RFC 3339 point in time, formatted the way Go formats `time.Time` in JSON
/// (fraction only when non-zero, trailing zeros trimmed, `Z` for UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// Now, in UTC, truncated to whole seconds (what fioctl writes).
    pub fn now() -> Timestamp {
        Timestamp::from_unix(OffsetDateTime::now_utc().unix_timestamp())
    }

    /// A UTC time from seconds since the epoch.
    pub fn from_unix(secs: i64) -> Timestamp {
        Timestamp(OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH))
    }

    /// Parses RFC 3339.
    pub fn parse(s: &str) -> Result<Timestamp, MetadataError> {
        OffsetDateTime::parse(s, &Rfc3339)
            .map(Timestamp)
            .map_err(|_| MetadataError::Timestamp(s.to_string()))
    }

    /// Seconds since the epoch.
    pub fn unix(&self) -> i64 {
        self.0.unix_timestamp()
    }

    /// This time plus a number of days (negative goes back), in UTC, whole seconds.
    pub fn plus_days(&self, days: i64) -> Timestamp {
        Timestamp::from_unix((self.0 + Duration::days(days)).unix_timestamp())
    }

    /// This time plus a number of seconds.
    pub fn plus_seconds(&self, secs: i64) -> Timestamp {
        Timestamp(self.0 + Duration::seconds(secs))
    }

    /// Whole days from `self` until `later` (negative when `later` is earlier).
    pub fn days_until(&self, later: &Timestamp) -> i64 {
        (later.0 - self.0).whole_days()
    }

    /// The date part, `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        let d = self.0.to_offset(UtcOffset::UTC).date();
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        let d = t.date();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            d.year(),
            u8::from(d.month()),
            d.day(),
            t.hour(),
            t.minute(),
            t.second()
        )?;
        let nanos = t.nanosecond();
        if nanos != 0 {
            let frac = format!("{nanos:09}");
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        let off = t.offset();
        if off.is_utc() {
            f.write_str("Z")
        } else {
            let secs = off.whole_seconds();
            let sign = if secs < 0 { '-' } else { '+' };
            let secs = secs.abs();
            write!(f, "{sign}{:02}:{:02}", secs / 3600, (secs % 3600) / 60)
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The four top-level TUF roles of a Foundries root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Signs `root.json`; offline keys after the first rotation.
    Root,
    /// Signs `targets.json`: one online key plus the offline production keys.
    Targets,
    /// Online only.
    Snapshot,
    /// Online only.
    Timestamp,
}

impl Role {
    /// All roles, in the order fioctl prints them.
    pub const ALL: [Role; 4] = [Role::Root, Role::Targets, Role::Snapshot, Role::Timestamp];

    /// The lower-case role name used in `roles` and in key file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Targets => "targets",
            Role::Snapshot => "snapshot",
            Role::Timestamp => "timestamp",
        }
    }

    /// Parses a role name case-insensitively.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signed document: `{"signatures": [...], "signed": {...}}` plus any extra top-level
/// members (Foundries roots may carry the legacy `targets-signatures`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signed<T> {
    /// Signatures over the canonical bytes of `signed`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub signatures: Vec<Signature>,
    /// The signed content.
    pub signed: T,
    /// Top-level members this code does not interpret, kept as they came.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl<T: Serialize> Signed<T> {
    /// The bytes a signature covers: canonical JSON of `signed`.
    pub fn canonical_signed(&self) -> Result<Vec<u8>, MetadataError> {
        Ok(canonical::to_canonical(&self.signed)?)
    }

    /// The whole document in canonical form (what `show-root` and chain archives store).
    pub fn to_canonical(&self) -> Result<Vec<u8>, MetadataError> {
        Ok(canonical::to_canonical(self)?)
    }

    /// The whole document as compact JSON (Go std encoder style, for HTTP bodies).
    pub fn to_json(&self) -> Result<Vec<u8>, MetadataError> {
        serde_json::to_vec(self).map_err(|e| MetadataError::Parse {
            what: "document",
            reason: e.to_string(),
        })
    }

    /// Appends `sig`, replacing any earlier signature by the same key id.
    pub fn add_signature(&mut self, sig: Signature) {
        crate::keys::merge_signatures(&mut self.signatures, [sig]);
    }
}

/// `roles.<role>` of a root: which keys sign the role, and how many must.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// Key ids allowed to sign the role (order matters for the signed bytes).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub keyids: Vec<KeyId>,
    /// How many distinct listed keys must sign.
    pub threshold: u64,
    /// Members this code does not interpret.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `x-key-owners.<keyid>`: who created a key and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyOwner {
    /// The Foundries user id of the creator.
    #[serde(rename = "polis-id")]
    pub polis_id: String,
    /// When the key was created.
    #[serde(rename = "created-at")]
    pub created_at: Timestamp,
    /// Members this code does not interpret.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `signed` of a Foundries `root.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Root {
    /// `"Root"` in ota-tuf documents.
    #[serde(rename = "_type")]
    pub type_: String,
    /// Always present in output; false in practice.
    #[serde(default)]
    pub consistent_snapshot: bool,
    /// After this time devices refuse the root.
    pub expires: Timestamp,
    /// Public keys by key id.
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// Role name → keys and threshold.
    pub roles: BTreeMap<String, RoleKeys>,
    /// Root version; each new root is exactly one more.
    pub version: u64,
    /// Set by the server from the transaction message.
    #[serde(
        rename = "x-changelog",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub changelog: Option<Value>,
    /// Who created which offline key.
    #[serde(
        rename = "x-key-owners",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub key_owners: Option<BTreeMap<KeyId, KeyOwner>>,
    /// Members this code does not interpret.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A signed root document.
pub type SignedRoot = Signed<Root>;

impl Root {
    /// The keys and threshold of `role`, if the root defines it.
    pub fn role(&self, role: Role) -> Option<&RoleKeys> {
        self.roles.get(role.as_str())
    }

    /// Mutable access to `role`.
    pub fn role_mut(&mut self, role: Role) -> Option<&mut RoleKeys> {
        self.roles.get_mut(role.as_str())
    }

    /// The key ids of `role` (empty if the role is missing).
    pub fn role_keyids(&self, role: Role) -> &[KeyId] {
        self.role(role).map(|r| r.keyids.as_slice()).unwrap_or(&[])
    }

    /// The threshold of `role` (0 if the role is missing).
    pub fn threshold(&self, role: Role) -> u64 {
        self.role(role).map(|r| r.threshold).unwrap_or(0)
    }

    /// The offline targets keys: the targets role's key ids other than the online targets
    /// key(s) in `online` (the server's; pass an `Option` or a set; none known: every
    /// targets key counts), in the role's order. The one definition of "offline targets key"
    /// for every crate.
    pub fn offline_targets_keys<'a>(
        &self,
        online: impl IntoIterator<Item = &'a KeyId>,
    ) -> Vec<KeyId> {
        let online: Vec<&KeyId> = online.into_iter().collect();
        self.role_keyids(Role::Targets)
            .iter()
            .filter(|k| !online.contains(k))
            .cloned()
            .collect()
    }
}

impl SignedRoot {
    /// Parses a root document.
    pub fn from_json(bytes: &[u8]) -> Result<SignedRoot, MetadataError> {
        parse_signable(bytes, "root.json")
    }
}

/// Parses a signable document, refusing one that has no canonical form (duplicate member
/// names, numbers with a fractional part, nesting beyond [`canonical::MAX_DEPTH`]): serde
/// alone keeps the last of two duplicate members, so what is shown and signed could differ
/// from what another JSON parser reads from the same bytes. (The canonical form itself is
/// not parsed: it writes control characters raw, which JSON text may not contain.)
fn parse_signable<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, MetadataError> {
    let parse_err = |reason: String| MetadataError::Parse { what, reason };
    canonical::check(bytes).map_err(|e| parse_err(e.to_string()))?;
    serde_json::from_slice(bytes).map_err(|e| parse_err(e.to_string()))
}

/// What is needed of a targets document besides its canonical bytes: its signatures, version,
/// expiry, number of targets and CI build versions. Read from the document's text without
/// building its tree (the `custom` data of every target, most of a targets file, is skipped),
/// so that holding one per production tag and wave costs kilobytes, not the gigabyte the
/// parsed documents of a large factory take. The document itself must have been validated
/// (e.g. by reading its bundle); its canonical bytes come from the text
/// ([`SignedTargets::canonical_signed_from_json`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TargetsSummary {
    /// The signatures the document carries.
    pub signatures: Vec<Signature>,
    /// `signed.version`.
    pub version: u64,
    /// `signed.expires`.
    pub expires: Timestamp,
    /// How many targets it lists.
    pub targets: usize,
    /// The distinct `custom.version` strings (CI build numbers) of its targets, sorted.
    pub build_versions: std::collections::BTreeSet<String>,
}

impl TargetsSummary {
    /// Reads the summary from a targets document's JSON text.
    pub fn from_json(bytes: &[u8]) -> Result<TargetsSummary, MetadataError> {
        #[derive(Deserialize)]
        struct Doc {
            signatures: Vec<Signature>,
            signed: Signed,
        }
        #[derive(Deserialize)]
        struct Signed {
            version: u64,
            expires: Timestamp,
            #[serde(default)]
            targets: Option<BTreeMap<String, File>>,
        }
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            custom: Option<Custom>,
        }
        #[derive(Deserialize)]
        struct Custom {
            #[serde(default)]
            version: Option<Value>,
        }
        let doc: Doc = serde_json::from_slice(bytes).map_err(|e| MetadataError::Parse {
            what: "targets.json",
            reason: e.to_string(),
        })?;
        let targets = doc.signed.targets.unwrap_or_default();
        Ok(TargetsSummary {
            signatures: doc.signatures,
            version: doc.signed.version,
            expires: doc.signed.expires,
            targets: targets.len(),
            build_versions: targets
                .into_values()
                .filter_map(|f| match f.custom?.version? {
                    Value::String(v) => Some(v),
                    _ => None,
                })
                .collect(),
        })
    }
}

/// One target of a `targets.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetFile {
    /// Size in bytes.
    pub length: u64,
    /// Algorithm → digest, kept as opaque strings (never decoded and re-encoded).
    pub hashes: BTreeMap<String, String>,
    /// Free-form Foundries data (`name`, `version`, `hardwareIds`, `tags`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    /// Members this code does not interpret.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl TargetFile {
    /// `custom.version`, the CI build number, when present.
    pub fn build_version(&self) -> Option<&str> {
        self.custom.as_ref()?.get("version")?.as_str()
    }
}

/// `signed` of a `targets.json` (production tag or wave).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// `"Targets"`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// After this time devices refuse the targets.
    pub expires: Timestamp,
    /// Target name → file metadata.
    #[serde(default, deserialize_with = "null_as_empty_map")]
    pub targets: BTreeMap<String, TargetFile>,
    /// Targets version.
    pub version: u64,
    /// Members this code does not interpret.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn null_as_empty_map<'de, D: serde::Deserializer<'de>, V: Deserialize<'de>>(
    d: D,
) -> Result<BTreeMap<String, V>, D::Error> {
    Ok(Option::<BTreeMap<String, V>>::deserialize(d)?.unwrap_or_default())
}

/// A signed targets document.
pub type SignedTargets = Signed<Targets>;

impl SignedTargets {
    /// Parses a targets document.
    pub fn from_json(bytes: &[u8]) -> Result<SignedTargets, MetadataError> {
        parse_signable(bytes, "targets.json")
    }

    /// Checks that `bytes` parse as a targets document: the same verdict as
    /// [`from_json`](Self::from_json), usually without building the parsed form.
    pub fn check_json(bytes: &[u8]) -> Result<(), MetadataError> {
        if lean_targets(bytes).is_some_and(|p| canonical::is_plain(&bytes[p.signed])) {
            return Ok(());
        }
        SignedTargets::from_json(bytes).map(drop)
    }

    /// The canonical bytes of `signed` of the targets document `bytes`: always exactly
    /// `from_json(bytes)?.canonical_signed()` (the same bytes, or the same error), but
    /// canonicalized straight from the text when that cannot differ (see
    /// [`canonical::canonicalize_plain_into`]): a document whose `expires` is in the form
    /// [`Timestamp`] writes, with no `null` for `targets` or a target's `custom`, and only
    /// plain integers. Other documents take the typed path.
    pub fn canonical_signed_from_json(bytes: &[u8]) -> Result<Vec<u8>, MetadataError> {
        let mut out = Vec::with_capacity(bytes.len());
        if let Some(p) = lean_targets(bytes) {
            if matches!(
                canonical::canonicalize_plain_into(&bytes[p.signed], &mut out),
                Ok(true)
            ) {
                return Ok(out);
            }
        }
        SignedTargets::from_json(bytes)?.canonical_signed()
    }

    /// Checks `bytes` like [`check_json`](Self::check_json) and summarizes them like
    /// [`TargetsSummary::from_json`] (the same verdict and the same summary), reading a
    /// plain document's text once for both; for such a document it also tells where
    /// `signed` is, so that [`canonical_signed_of`](Self::canonical_signed_of) can
    /// canonicalize it later without reading the rest again.
    pub fn read_facts(bytes: &[u8]) -> Result<TargetsFacts, MetadataError> {
        if let Some(p) = lean_targets(bytes) {
            if let (Some(signatures), Some(expires)) = (p.signatures, p.lean.expires) {
                if canonical::is_plain(&bytes[p.signed.clone()]) {
                    return Ok(TargetsFacts {
                        summary: TargetsSummary {
                            signatures,
                            version: p.lean.version,
                            expires,
                            targets: p.lean.targets,
                            build_versions: p.lean.build_versions,
                        },
                        plain_signed: Some(p.signed),
                    });
                }
            }
        }
        SignedTargets::check_json(bytes)?;
        Ok(TargetsFacts {
            summary: TargetsSummary::from_json(bytes)?,
            plain_signed: None,
        })
    }

    /// [`canonical_signed_from_json`](Self::canonical_signed_from_json) of the document
    /// `bytes` whose facts [`read_facts`](Self::read_facts) read from these same bytes: a
    /// plain document is canonicalized from its `signed` text alone.
    pub fn canonical_signed_of(
        bytes: &[u8],
        facts: &TargetsFacts,
    ) -> Result<Vec<u8>, MetadataError> {
        if let Some(signed) = facts.plain_signed.clone().filter(|r| r.end <= bytes.len()) {
            let mut out = Vec::with_capacity(signed.len());
            if matches!(
                canonical::canonicalize_plain_into(&bytes[signed], &mut out),
                Ok(true)
            ) {
                return Ok(out);
            }
        }
        SignedTargets::canonical_signed_from_json(bytes)
    }
}

/// What one reading of a targets document learns ([`SignedTargets::read_facts`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TargetsFacts {
    /// Its summary.
    pub summary: TargetsSummary,
    /// Where its `signed` text is, when its canonical bytes come straight from that text.
    pub plain_signed: Option<std::ops::Range<usize>>,
}

/// The members of a JSON object as text, in order. Reading refuses anything but an object
/// and a member name given twice.
struct RawMembers<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawMembers<'a> {
    fn parse(text: &'a str) -> Option<RawMembers<'a>> {
        serde_json::from_str(text).ok()
    }

    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawMembers<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = RawMembers<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Self::Value, M::Error> {
                let mut out: Vec<(Cow<'a, str>, &'a RawValue)> = Vec::new();
                while let Some((k, v)) = m.next_entry::<Cow<'a, str>, &'a RawValue>()? {
                    out.push((k, v));
                }
                let mut names: Vec<&str> = out.iter().map(|(k, _)| k.as_ref()).collect();
                names.sort_unstable();
                if names.windows(2).any(|w| w[0] == w[1]) {
                    return Err(serde::de::Error::custom("a member name appears twice"));
                }
                Ok(RawMembers(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A targets document read the lean way: its signatures (`None` if absent or `null`), where
/// its `signed` text is, and what [`LeanTargets`] read there. `Some` only when the typed
/// round trip cannot change the canonical bytes of `signed` as far as the member types go
/// (see [`SignedTargets::canonical_signed_from_json`]); the caller still checks that text is
/// plain ([`canonical::is_plain`]). `None` says nothing about the document: the caller takes
/// the typed path. Every member [`SignedTargets`] requires is checked with the same type
/// here; members it does not interpret are only checked to be JSON (any JSON is accepted
/// there). Member names given twice anywhere in `signed` make the canonical parse fail, so
/// this reading need not look for them.
struct LeanDocument {
    signatures: Option<Vec<Signature>>,
    signed: std::ops::Range<usize>,
    lean: LeanTargets,
}

fn lean_targets(bytes: &[u8]) -> Option<LeanDocument> {
    let text = std::str::from_utf8(bytes).ok()?;
    let doc = RawMembers::parse(text)?;
    let signatures = match doc.get("signatures") {
        Some(s) if s.get() != "null" => Some(serde_json::from_str::<Vec<Signature>>(s.get()).ok()?),
        _ => None,
    };
    let signed = doc.get("signed")?.get();
    let lean = serde_json::from_str::<LeanTargets>(signed)
        .ok()
        .filter(|t| t.plain)?;
    // `signed` borrows from `text`: its place there.
    let start = signed.as_ptr() as usize - text.as_ptr() as usize;
    Some(LeanDocument {
        signatures,
        signed: start..start + signed.len(),
        lean,
    })
}

/// `signed` of a targets document read with the member types of [`Targets`] (an object, not
/// an array: [`Targets`] flattens), skipping what it does not interpret; `plain` is false
/// where the typed round trip would change the text: `expires` not as [`Timestamp`] writes
/// it, `targets` missing or `null`, a target's `custom` `null`. The rest is what
/// [`TargetsSummary`] reads, collected on the way.
struct LeanTargets {
    plain: bool,
    version: u64,
    expires: Option<Timestamp>,
    targets: usize,
    build_versions: BTreeSet<String>,
}

impl<'de> Deserialize<'de> for LeanTargets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = LeanTargets;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a targets object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<LeanTargets, M::Error> {
                let mut type_ = false;
                let mut version = None;
                let mut expires = None;
                let mut expires_plain = None;
                let mut targets = None;
                while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                    match k.as_ref() {
                        "_type" => {
                            type_ = {
                                m.next_value::<String>()?;
                                true
                            }
                        }
                        "version" => version = Some(m.next_value::<u64>()?),
                        "expires" => {
                            let e = m.next_value::<Cow<'de, str>>()?;
                            let t = Timestamp::parse(&e).ok();
                            expires_plain =
                                Some(t.as_ref().is_some_and(|t| t.to_string() == e.as_ref()));
                            expires = t;
                        }
                        "targets" => {
                            targets =
                                m.next_value::<Option<BTreeMap<Cow<'de, str>, LeanTarget>>>()?;
                        }
                        _ => drop(m.next_value::<serde::de::IgnoredAny>()?),
                    }
                }
                let targets_plain = targets
                    .as_ref()
                    .is_some_and(|t| t.values().all(|f| f.plain));
                let plain =
                    type_ && version.is_some() && expires_plain == Some(true) && targets_plain;
                let targets = targets.unwrap_or_default();
                Ok(LeanTargets {
                    plain,
                    version: version.unwrap_or_default(),
                    expires,
                    targets: targets.len(),
                    build_versions: targets
                        .into_values()
                        .filter_map(|t| t.build_version)
                        .collect(),
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// One target read with the member types of [`TargetFile`] (an object); `plain` is false
/// for a `null` `custom` or a member of the wrong type. `custom` must be an object or absent
/// (anything else fails this reading, and the caller takes the typed path); its `version`,
/// when a string, is kept.
struct LeanTarget {
    plain: bool,
    build_version: Option<String>,
}

impl<'de> Deserialize<'de> for LeanTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = LeanTarget;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a target object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<LeanTarget, M::Error> {
                let (mut length, mut hashes, mut custom_ok) = (false, false, true);
                let mut build_version = None;
                while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                    match k.as_ref() {
                        "length" => {
                            m.next_value::<u64>()?;
                            length = true;
                        }
                        "hashes" => {
                            m.next_value::<BTreeMap<String, String>>()?;
                            hashes = true;
                        }
                        "custom" => match m.next_value::<LeanCustom>()? {
                            LeanCustom::Null => custom_ok = false,
                            LeanCustom::Object { version } => build_version = version,
                        },
                        _ => drop(m.next_value::<serde::de::IgnoredAny>()?),
                    }
                }
                Ok(LeanTarget {
                    plain: length && hashes && custom_ok,
                    build_version,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// A target's `custom`: `null`, or an object of which only a string `version` is kept.
enum LeanCustom {
    Null,
    Object { version: Option<String> },
}

impl<'de> Deserialize<'de> for LeanCustom {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = LeanCustom;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or null")
            }
            fn visit_unit<E>(self) -> Result<LeanCustom, E> {
                Ok(LeanCustom::Null)
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<LeanCustom, M::Error> {
                let mut version = None;
                while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                    if k == "version" {
                        version = match m.next_value::<Value>()? {
                            Value::String(v) => Some(v),
                            _ => None,
                        };
                    } else {
                        m.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(LeanCustom::Object { version })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AKTUALIZR_ROOT: &[u8] = include_bytes!("../tests/vectors/aktualizr-prov-repo-root.json");
    const AKTUALIZR_TARGETS: &[u8] =
        include_bytes!("../tests/vectors/aktualizr-prov-repo-targets.json");

    #[test]
    fn timestamps_format_like_go() {
        for (input, want) in [
            ("2026-03-01T10:20:30Z", "2026-03-01T10:20:30Z"),
            ("2026-03-01T10:20:30.500Z", "2026-03-01T10:20:30.5Z"),
            ("2026-03-01T10:20:30.000Z", "2026-03-01T10:20:30Z"),
            ("2026-03-01T10:20:30+02:00", "2026-03-01T10:20:30+02:00"),
            (
                "2026-03-01T10:20:30.123456789-05:30",
                "2026-03-01T10:20:30.123456789-05:30",
            ),
        ] {
            assert_eq!(Timestamp::parse(input).unwrap().to_string(), want);
        }
        assert!(Timestamp::parse("yesterday").is_err());
        let t = Timestamp::parse("2026-03-01T10:20:30Z").unwrap();
        assert_eq!(t.plus_days(365).to_string(), "2027-03-01T10:20:30Z");
        assert_eq!(t.date(), "2026-03-01");
        assert_eq!(t.days_until(&t.plus_days(10)), 10);
    }

    #[test]
    fn offline_targets_keys_are_the_targets_keys_but_the_online_ones() {
        let mut root = SignedRoot::from_json(AKTUALIZR_ROOT).unwrap().signed;
        let online = root.role_keyids(Role::Targets)[0].clone();
        let offline = root.role_keyids(Role::Root)[0].clone();
        root.role_mut(Role::Targets)
            .unwrap()
            .keyids
            .push(offline.clone());
        assert_eq!(root.offline_targets_keys([&online]), vec![offline.clone()]);
        assert_eq!(
            root.offline_targets_keys(Some(&online)),
            vec![offline.clone()]
        );
        // Nothing known online: every targets key counts.
        assert_eq!(
            root.offline_targets_keys(None),
            [online.clone(), offline.clone()]
        );
        // Several online keys (the current and the staged one).
        assert!(root.offline_targets_keys([&online, &offline]).is_empty());
    }

    #[test]
    fn real_root_round_trips_and_verifies() {
        let root = SignedRoot::from_json(AKTUALIZR_ROOT).unwrap();
        assert_eq!(root.signed.type_, "Root");
        assert_eq!(root.signed.threshold(Role::Root), 1);
        let bytes = root.canonical_signed().unwrap();
        // The canonical bytes of a re-parsed root equal the canonical bytes of the raw text.
        let raw: Value = serde_json::from_slice(AKTUALIZR_ROOT).unwrap();
        let raw_signed = canonical::canonicalize(raw["signed"].to_string().as_bytes()).unwrap();
        assert_eq!(bytes, raw_signed);
        // PEM newlines are escaped as \n in what was signed.
        assert!(bytes.windows(2).any(|w| w == b"\\n"));
        // And the real RSA-PSS signature verifies over those bytes.
        for sig in &root.signatures {
            let key = &root.signed.keys[&sig.keyid];
            key.verify(&bytes, sig).unwrap();
        }
    }

    #[test]
    fn real_targets_keep_custom_and_verify() {
        let root = SignedRoot::from_json(AKTUALIZR_ROOT).unwrap();
        let targets = SignedTargets::from_json(AKTUALIZR_TARGETS).unwrap();
        assert_eq!(targets.signed.targets.len(), 19);
        let bytes = targets.canonical_signed().unwrap();
        let raw: Value = serde_json::from_slice(AKTUALIZR_TARGETS).unwrap();
        assert_eq!(
            bytes,
            canonical::canonicalize(raw["signed"].to_string().as_bytes()).unwrap()
        );
        for sig in &targets.signatures {
            root.signed.keys[&sig.keyid].verify(&bytes, sig).unwrap();
        }
    }

    /// Whether the lean reading takes `d` as plain (the fast path of every reading).
    fn lean_plain(d: &[u8]) -> bool {
        lean_targets(d).is_some_and(|p| canonical::is_plain(&d[p.signed]))
    }

    /// [`SignedTargets::read_facts`] says what `check_json` and [`TargetsSummary::from_json`]
    /// say of `d`, and its `canonical_signed_of` is `canonical_signed_from_json`'s.
    fn facts_agree(d: &[u8]) -> Result<(), String> {
        let facts = SignedTargets::read_facts(d);
        let two_passes = SignedTargets::check_json(d).and_then(|()| TargetsSummary::from_json(d));
        let summary = facts.as_ref().map(|f| f.summary.clone());
        if summary.as_ref().map_err(|e| e.to_string())
            != two_passes.as_ref().map_err(|e| e.to_string())
        {
            return Err(format!("summary {summary:?}"));
        }
        if let Ok(f) = &facts {
            if f.plain_signed.is_some() != lean_plain(d) {
                return Err(format!("plain {:?}", f.plain_signed));
            }
            let of = SignedTargets::canonical_signed_of(d, f).map_err(|e| e.to_string());
            let from = SignedTargets::canonical_signed_from_json(d).map_err(|e| e.to_string());
            if of != from {
                return Err(format!("canonical {of:?} != {from:?}"));
            }
        }
        Ok(())
    }

    #[test]
    fn canonical_signed_from_json_equals_the_typed_path() {
        let typed = |b: &[u8]| {
            SignedTargets::from_json(b)
                .and_then(|d| d.canonical_signed())
                .map_err(|e| e.to_string())
        };
        let fast =
            |b: &[u8]| SignedTargets::canonical_signed_from_json(b).map_err(|e| e.to_string());
        assert!(lean_plain(AKTUALIZR_TARGETS));
        assert_eq!(fast(AKTUALIZR_TARGETS), typed(AKTUALIZR_TARGETS));
        facts_agree(AKTUALIZR_TARGETS).unwrap();
        let facts = SignedTargets::read_facts(AKTUALIZR_TARGETS).unwrap();
        assert_eq!(facts.summary.targets, 19);
        let head = r#""_type":"Targets","expires":"2027-01-01T00:00:00Z""#;
        let t = r#""hashes":{"sha256":"ab"},"length":3"#;
        let cases = [
            // Plain: canonicalized from the text.
            format!(
                r#"{{{head},"targets":{{"a":{{{t},"custom":{{"z":[1,-2,"\u00e9\n"],"a":{{}}}}}}}},"version":1,"x-y":18446744073709551615}}"#
            ),
            // Typed path: each of these may change the bytes or fail.
            r#"{"_type":"Targets","expires":"2027-01-01T00:00:00.000Z","targets":{},"version":1}"#
                .to_string(),
            format!(r#"{{{head},"targets":null,"version":1}}"#),
            format!(r#"{{{head},"version":1}}"#),
            format!(r#"{{{head},"targets":{{"a":{{{t},"custom":null}}}},"version":1}}"#),
            format!(
                r#"{{{head},"targets":{{"a":{{{t},"custom":{{"n":1.0,"m":1e2}}}}}},"version":1}}"#
            ),
            format!(r#"{{{head},"targets":{{}},"version":1,"big":18446744073709551616,"neg":-0}}"#),
            format!(r#"{{{head},"targets":{{}},"version":1,"s":"\ud800"}}"#),
            format!(r#"{{{head},"targets":{{}},"version":1,"d":{{"k":1,"k":2}}}}"#),
            format!(r#"{{{head},"targets":{{}},"version":"1"}}"#),
            r#"["Targets","2027-01-01T00:00:00Z",{},1]"#.to_string(),
            format!(r#"{{{head},"targets":{{"a":[3,{{"sha256":"ab"}}]}},"version":1}}"#),
            format!(
                r#"{{{head},"targets":{{"a":{{"length":3,"hashes":{{"sha256":1}}}}}},"version":1}}"#
            ),
        ];
        for (i, signed) in cases.iter().enumerate() {
            let d = format!(r#"{{"signatures":[],"signed":{signed},"x":1}}"#);
            let d = d.as_bytes();
            assert_eq!(fast(d), typed(d), "case {i}");
            assert_eq!(
                SignedTargets::check_json(d).is_ok(),
                SignedTargets::from_json(d).is_ok(),
                "case {i}"
            );
            assert_eq!(lean_plain(d), i == 0, "case {i}");
            assert_eq!(facts_agree(d), Ok(()), "case {i}");
        }
        for d in [
            r#"{"signatures":[],"signed":{"_type":"Targets","expires":"2027-01-01T00:00:00Z","targets":{},"version":1},"signed":{}}"#,
            r#"{"signatures":[{"keyid":1}],"signed":{"_type":"Targets","expires":"2027-01-01T00:00:00Z","targets":{},"version":1}}"#,
            r#"[[],{"_type":"Targets","expires":"2027-01-01T00:00:00Z","targets":{},"version":1}]"#,
        ] {
            let d = d.as_bytes();
            assert!(!lean_plain(d));
            assert_eq!(fast(d), typed(d));
            assert_eq!(facts_agree(d), Ok(()));
            assert_eq!(
                SignedTargets::check_json(d).is_ok(),
                SignedTargets::from_json(d).is_ok()
            );
        }
    }

    #[test]
    fn read_facts_summarizes_plain_documents_in_one_reading() {
        let t = |custom: &str| format!(r#"{{"hashes":{{"sha256":"ab"}},"length":3{custom}}}"#);
        let doc = format!(
            r#"{{"signatures":[{{"keyid":"abababababababababababababababababababababababababababababababab","method":"ed25519","sig":"c2ln"}}],"signed":{{"_type":"Targets","expires":"2027-01-01T00:00:00Z","targets":{{"a":{},"b":{},"c":{},"d":{},"e":{}}},"version":7}}}}"#,
            t(r#","custom":{"version":"12","name":"x"}"#),
            t(r#","custom":{"version":12}"#),
            t(r#","custom":{"version":"9","tags":["main"]}"#),
            t(r#","custom":{"version":"12"}"#),
            t(""),
        );
        let d = doc.as_bytes();
        let facts = SignedTargets::read_facts(d).unwrap();
        assert!(facts.plain_signed.is_some());
        assert_eq!(facts.summary.version, 7);
        assert_eq!(facts.summary.targets, 5);
        assert_eq!(facts.summary.signatures.len(), 1);
        assert_eq!(
            facts.summary.build_versions.iter().collect::<Vec<_>>(),
            ["12", "9"]
        );
        assert_eq!(facts_agree(d), Ok(()));
        // Not the fast path, same answers: no signatures, `null` ones, a string `custom`.
        for other in [
            doc.replace(r#""signatures":[{"keyid":"abababababababababababababababababababababababababababababababab","method":"ed25519","sig":"c2ln"}],"#, ""),
            doc.replace(r#"[{"keyid":"abababababababababababababababababababababababababababababababab","method":"ed25519","sig":"c2ln"}]"#, "null"),
            doc.replace(r#"{"version":12}"#, r#""v12""#),
        ] {
            let d = other.as_bytes();
            assert!(SignedTargets::read_facts(d).map_or(true, |f| f.plain_signed.is_none()));
            assert_eq!(facts_agree(d), Ok(()), "{other}");
        }
    }

    /// JSON text built from pieces that the typed round trip may or may not preserve.
    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop::sample::select(vec![
            "1",
            "-7",
            "-0",
            "1.0",
            "1e2",
            "2.5",
            "18446744073709551616",
            "null",
            "true",
            r#""a\u00e9/\n""#,
            r#""\ud800""#,
            r#""\u003c""#,
            r#""2027-01-01T00:00:00.0Z""#,
        ])
        .prop_map(str::to_string);
        leaf.prop_recursive(3, 24, 4, |inner| {
            let key = prop::sample::select(vec!["a", "b", "custom", "expires", "version"]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((key, inner), 0..4).prop_map(|v| {
                    let m: Vec<String> = v.iter().map(|(k, x)| format!("\"{k}\":{x}")).collect();
                    format!("{{{}}}", m.join(","))
                }),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        #[test]
        fn fast_canonical_and_check_agree_with_the_typed_path(
            expires in proptest::sample::select(vec![
                r#""2027-01-01T00:00:00Z""#, r#""2027-01-01T00:00:00.000Z""#,
                r#""2027-01-01T02:00:00+02:00""#, "7",
            ]),
            length in proptest::sample::select(vec!["3", "3.0", "-3", r#""3""#]),
            hashes in proptest::sample::select(vec![r#"{"sha256":"ab"}"#, r#"{"sha256":1}"#, "[]"]),
            version in proptest::sample::select(vec!["1", r#""1""#]),
            custom in proptest::option::of(json_text()),
            extra in json_text(),
            targets_null in proptest::bool::ANY,
        ) {
            let custom = custom.map(|c| format!(r#","custom":{c}"#)).unwrap_or_default();
            let targets = if targets_null {
                "null".to_string()
            } else {
                format!(r#"{{"t":{{"length":{length},"hashes":{hashes}{custom},"k":{extra}}}}}"#)
            };
            let doc = format!(
                r#"{{"signatures":[],"signed":{{"_type":"Targets","expires":{expires},"targets":{targets},"version":{version},"x":{extra}}}}}"#
            );
            let d = doc.as_bytes();
            let typed = SignedTargets::from_json(d)
                .and_then(|t| t.canonical_signed())
                .map_err(|e| e.to_string());
            let fast = SignedTargets::canonical_signed_from_json(d).map_err(|e| e.to_string());
            proptest::prop_assert_eq!(fast, typed, "{}", doc);
            proptest::prop_assert_eq!(
                SignedTargets::check_json(d).is_ok(),
                SignedTargets::from_json(d).is_ok(),
                "{}", doc
            );
            proptest::prop_assert_eq!(facts_agree(d), Ok(()), "{}", doc);
        }
    }

    #[test]
    fn unknown_members_survive() {
        let doc = br#"{"signatures":[],"signed":{"_type":"Root","consistent_snapshot":false,
            "expires":"2027-01-01T00:00:00Z","keys":{},"roles":{"root":{"keyids":[],"threshold":1,"x-r":7}},
            "version":3,"x-future":{"a":[1,2]},"x-changelog":{"message":"m"}},
            "targets-signatures":{"prod":[]}}"#;
        let root = SignedRoot::from_json(doc).unwrap();
        let out = root.to_canonical().unwrap();
        assert_eq!(out, canonical::canonicalize(doc).unwrap());
    }

    #[test]
    fn add_signature_replaces_same_keyid() {
        let key = crate::keys::PrivateKey::ed25519_from_seed(&[7; 32]);
        let mut t = SignedTargets::from_json(
            br#"{"signatures":null,"signed":{"_type":"Targets","expires":"2027-01-01T00:00:00Z","targets":{},"version":1}}"#,
        )
        .unwrap();
        t.add_signature(key.sign(b"a"));
        t.add_signature(key.sign(b"b"));
        assert_eq!(t.signatures.len(), 1);
    }

    #[test]
    fn parse_errors_name_the_document() {
        let err = SignedRoot::from_json(b"{\"signed\":{}}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("root.json"), "{err}");
    }

    #[test]
    fn documents_without_a_canonical_form_are_refused() {
        let dup = br#"{"signatures":[],"signed":{"_type":"Targets","expires":"2030-01-01T00:00:00Z","version":1,"targets":{"a":{"length":1,"hashes":{}},"a":{"length":2,"hashes":{}}}}}"#;
        let err = SignedTargets::from_json(dup).unwrap_err().to_string();
        assert!(
            err.contains("targets.json") && err.contains("appears twice"),
            "{err}"
        );
        let frac = br#"{"signatures":[],"signed":{"_type":"Targets","expires":"2030-01-01T00:00:00Z","version":1,"targets":{"a":{"length":1,"hashes":{},"custom":{"x":1.5}}}}}"#;
        assert!(SignedTargets::from_json(frac).is_err());
        let ok = br#"{"signatures":[],"signed":{"_type":"Targets","expires":"2030-01-01T00:00:00Z","version":1,"targets":{"a":{"length":1,"hashes":{},"custom":{"x":1}}}}}"#;
        SignedTargets::from_json(ok).unwrap();
    }

    #[test]
    fn targets_summary_from_text_equals_the_summary_of_the_parsed_document() {
        let docs: [&[u8]; 3] = [
            AKTUALIZR_TARGETS,
            br#"{"signatures":[],"signed":{"_type":"Targets","expires":"2030-01-01T00:00:00Z","version":3}}"#,
            br#"{"signatures":[{"keyid":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","method":"ed25519","sig":"AA=="}],"signed":{"_type":"Targets","expires":"2030-01-01T00:00:00.5Z","version":9,"targets":{"a":{"length":1,"hashes":{},"custom":{"version":"12","x":[1,{"y":null}]}},"b":{"length":2,"hashes":{},"custom":{"version":12}},"c":{"length":3,"hashes":{},"custom":null},"d":{"length":4,"hashes":{}},"e":{"length":5,"hashes":{},"custom":{"version":"12"}}}}}"#,
        ];
        // The summary as read from the fully parsed document.
        let of = |doc: SignedTargets| TargetsSummary {
            signatures: doc.signatures.clone(),
            version: doc.signed.version,
            expires: doc.signed.expires,
            targets: doc.signed.targets.len(),
            build_versions: doc
                .signed
                .targets
                .values()
                .filter_map(|t| t.build_version().map(str::to_string))
                .collect(),
        };
        for d in docs {
            let typed = of(SignedTargets::from_json(d).unwrap());
            assert_eq!(TargetsSummary::from_json(d).unwrap(), typed);
        }
        let s = TargetsSummary::from_json(docs[2]).unwrap();
        assert_eq!((s.targets, s.version), (5, 9));
        assert_eq!(s.build_versions.into_iter().collect::<Vec<_>>(), vec!["12"]);
    }
}
