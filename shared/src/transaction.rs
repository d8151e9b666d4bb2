//! The factory's root updates transaction (`GET root/updates`, `foundries-api.md` §5.3), in
//! one place for every program: the courier reads it from the Factory API, a request bundle
//! carries that answer as received (`transaction.json`), the signer reads it from there and
//! `factory-sim` answers with it.
//!
//! * [`TxStatus`]: `NONE`, `STARTED` or `APPLYING`. Any other status is refused, as fioctl
//!   refuses it ("Unexpected TUF root updates status") and as the bundle schema allows only
//!   these three;
//! * [`Transaction`] with [`RootPair`], [`ChangeMeta`], [`Issue`] and [`Issues`]: the wire
//!   form. Like fioctl's Go types, a `null` member reads as empty; members this toolkit does
//!   not know are kept (`extra`), so parsing and writing back loses nothing it read;
//! * [`ParsedTransaction`]: the answer as received with its roots parsed under fioctl's
//!   consistency rules (`checkTufRootUpdatesStatus`), and what the programs ask of it;
//! * [`derive_missing_prod_root`]: the production root of a CI root when the server staged
//!   none — fioctl's `genProdTufRoot`, the CI root with production targets threshold 2. This
//!   is the one rule; [`ParsedTransaction::effective_updated_prod`] applies it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::keys::KeyId;
use crate::metadata::{MetadataError, Role, SignedRoot};
use crate::transform::{derive_prod_root, DEFAULT_PROD_TARGETS_THRESHOLD};

/// Why a transaction cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    /// A status other than `NONE`, `STARTED` and `APPLYING` (fioctl's words).
    #[error("Unexpected TUF root updates status: {0:?} (known: NONE, STARTED, APPLYING)")]
    UnknownStatus(String),
    /// The text is not a transaction (not JSON, or members of the wrong type).
    #[error("the TUF root updates transaction is unreadable: {0}")]
    Json(#[from] serde_json::Error),
    /// `current.ci-root` is empty or absent (fioctl's words).
    #[error("Current TUF CI root not set")]
    NoCurrentCiRoot,
    /// `updated.ci-root` is empty or absent while a transaction is open (fioctl's words).
    #[error("Updated TUF CI root not set (status {0})")]
    NoUpdatedCiRoot(TxStatus),
    /// An embedded root document does not parse.
    #[error("{member}: {source}")]
    Root {
        /// Which one: `current.ci-root`, `current.prod-root`, `updated.ci-root` or
        /// `updated.prod-root`.
        member: &'static str,
        /// Why it does not parse.
        source: MetadataError,
    },
}

/// A serde `deserialize_with` helper for the Factory API's answers: `null` reads as the
/// type's empty value, as Go's `json.Unmarshal` leaves a field alone (used by the types here
/// and the courier's other API types).
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The status of the factory's root updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxStatus {
    /// No transaction is open.
    None,
    /// A transaction is open for changes.
    Started,
    /// The transaction is being applied (a failed apply stays here until it is re-run).
    Applying,
}

impl TxStatus {
    /// Every status, in the order of a transaction's life.
    pub const ALL: [TxStatus; 3] = [TxStatus::None, TxStatus::Started, TxStatus::Applying];

    /// The wire name: `NONE`, `STARTED` or `APPLYING`.
    pub fn as_str(self) -> &'static str {
        match self {
            TxStatus::None => "NONE",
            TxStatus::Started => "STARTED",
            TxStatus::Applying => "APPLYING",
        }
    }

    /// The status of a wire name (exact, upper case); any other name is
    /// [`TransactionError::UnknownStatus`].
    pub fn parse(s: &str) -> Result<TxStatus, TransactionError> {
        TxStatus::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| TransactionError::UnknownStatus(s.to_string()))
    }
}

impl fmt::Display for TxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TxStatus {
    type Err = TransactionError;
    fn from_str(s: &str) -> Result<TxStatus, TransactionError> {
        TxStatus::parse(s)
    }
}

impl Serialize for TxStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TxStatus {
    /// A `null` status is the empty name, refused like any unknown one (as fioctl does).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TxStatus, D::Error> {
        let name: String = null_default(d)?;
        TxStatus::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// `current` or `updated` of a transaction: the CI and production roots, each a root
/// document JSON-encoded inside a string (empty = absent), and the online key ids.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RootPair {
    /// The CI root document, JSON-encoded in a string (empty = absent).
    #[serde(rename = "ci-root", default, deserialize_with = "null_default")]
    pub ci_root: String,
    /// The production root document, JSON-encoded in a string (empty = absent).
    #[serde(rename = "prod-root", default, deserialize_with = "null_default")]
    pub prod_root: String,
    /// Lower-case online role name (`targets`, `snapshot`, `timestamp`) → key id of the
    /// server-held key.
    #[serde(rename = "online-keys", default, deserialize_with = "null_default")]
    pub online_keys: BTreeMap<String, KeyId>,
    /// Other members, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn parse_embedded(text: &str) -> Result<Option<SignedRoot>, MetadataError> {
    if text.is_empty() {
        return Ok(None);
    }
    SignedRoot::from_json(text.as_bytes()).map(Some)
}

impl RootPair {
    /// The CI root, parsed; `None` when the string is empty.
    pub fn ci_root(&self) -> Result<Option<SignedRoot>, MetadataError> {
        parse_embedded(&self.ci_root)
    }

    /// The production root, parsed; `None` when the string is empty.
    pub fn prod_root(&self) -> Result<Option<SignedRoot>, MetadataError> {
        parse_embedded(&self.prod_root)
    }

    /// The online key id of `role`, if the pair names one.
    pub fn online_key(&self, role: Role) -> Option<&KeyId> {
        self.online_keys.get(role.as_str())
    }
}

/// `change-meta`: who started and who last changed the transaction, and when (server
/// strings, shown as they are).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeMeta {
    /// polis-id of the user who started the transaction.
    #[serde(rename = "created-by", default, deserialize_with = "null_default")]
    pub created_by: String,
    /// When it was started.
    #[serde(rename = "created-at", default, deserialize_with = "null_default")]
    pub created_at: String,
    /// polis-id of the user who changed it last.
    #[serde(rename = "updated-by", default, deserialize_with = "null_default")]
    pub updated_by: String,
    /// When it was changed last.
    #[serde(rename = "updated-at", default, deserialize_with = "null_default")]
    pub updated_at: String,
    /// Other members, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A staged change, error or recommendation the server reports (`{"kind", "message",
/// "args"}`). `args` is a map of strings, as fioctl decodes it (and so as the real server
/// must send it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Server-defined kind.
    #[serde(default, deserialize_with = "null_default")]
    pub kind: String,
    /// Text for people.
    #[serde(default, deserialize_with = "null_default")]
    pub message: String,
    /// Server-defined arguments.
    #[serde(default, deserialize_with = "null_default")]
    pub args: BTreeMap<String, String>,
}

impl Issue {
    /// An issue of `kind` without arguments.
    pub fn new(kind: &str, message: impl Into<String>) -> Issue {
        Issue {
            kind: kind.to_string(),
            message: message.into(),
            args: BTreeMap::new(),
        }
    }

    /// The issue with argument `name` set to `value`.
    pub fn arg(mut self, name: &str, value: impl ToString) -> Issue {
        self.args.insert(name.to_string(), value.to_string());
        self
    }
}

/// `issues`: what must be fixed before apply, and recommendations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issues {
    /// Must be fixed before apply.
    #[serde(default, deserialize_with = "null_default")]
    pub errors: Vec<Issue>,
    /// Recommendations (also when no transaction is open, for the metadata in force).
    #[serde(default, deserialize_with = "null_default")]
    pub warnings: Vec<Issue>,
}

/// The transaction as the server answers `GET root/updates` (and as `transaction.json`
/// carries it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Where the transaction is in its life.
    pub status: TxStatus,
    /// Whether this is the first rotation of the initial root key.
    #[serde(rename = "first-time", default, deserialize_with = "null_default")]
    pub first_time: bool,
    /// The roots in force.
    #[serde(default)]
    pub current: Option<RootPair>,
    /// The staged drafts (`null` when no transaction is open).
    #[serde(default)]
    pub updated: Option<RootPair>,
    /// Who started and changed the transaction, and when.
    #[serde(rename = "change-meta", default)]
    pub change_meta: Option<ChangeMeta>,
    /// The staged changes, described by the server.
    #[serde(default, deserialize_with = "null_default")]
    pub amendments: Vec<Issue>,
    /// Problems and recommendations.
    #[serde(default, deserialize_with = "null_default")]
    pub issues: Issues,
    /// Other members, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Transaction {
    /// Reads the wire form from JSON text.
    pub fn from_json(bytes: &[u8]) -> Result<Transaction, TransactionError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// The production root of `ci` when none is staged: fioctl's `genProdTufRoot`, a copy of the
/// CI root with the production targets threshold 2
/// ([`DEFAULT_PROD_TARGETS_THRESHOLD`]), whatever the threshold of the production root in
/// force. The courier shows, the signer signs and compares with exactly this document.
pub fn derive_missing_prod_root(ci: &SignedRoot) -> SignedRoot {
    derive_prod_root(ci, DEFAULT_PROD_TARGETS_THRESHOLD)
}

/// An empty online keys map, for pairs that are absent.
static NO_ONLINE_KEYS: BTreeMap<String, KeyId> = BTreeMap::new();

/// A transaction as received, with its roots parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedTransaction {
    /// The JSON exactly as received (the API's answer; a bundle's `transaction.json`).
    pub raw: Vec<u8>,
    /// The wire form.
    pub wire: Transaction,
    /// The published CI root.
    pub current_ci: SignedRoot,
    /// The published production root (absent before the first offline rotation).
    pub current_prod: Option<SignedRoot>,
    /// The staged CI root (absent when the status is `NONE`).
    pub updated_ci: Option<SignedRoot>,
    /// The staged production root (absent until the server stages one, and when the status
    /// is `NONE`).
    pub updated_prod: Option<SignedRoot>,
}

impl ParsedTransaction {
    /// Reads a transaction under fioctl's rules (`checkTufRootUpdatesStatus`): a known status,
    /// a current CI root in every status, a staged CI root whenever the status is not `NONE`,
    /// and every embedded root readable (including staged ones the status makes irrelevant).
    /// With status `NONE` nothing counts as staged.
    pub fn from_json(raw: Vec<u8>) -> Result<ParsedTransaction, TransactionError> {
        let wire = Transaction::from_json(&raw)?;
        let root = |pair: Option<&RootPair>, prod: bool, member: &'static str| {
            let Some(pair) = pair else {
                return Ok(None);
            };
            let parsed = if prod {
                pair.prod_root()
            } else {
                pair.ci_root()
            };
            parsed.map_err(|source| TransactionError::Root { member, source })
        };
        let current_ci = root(wire.current.as_ref(), false, "current.ci-root")?
            .ok_or(TransactionError::NoCurrentCiRoot)?;
        let current_prod = root(wire.current.as_ref(), true, "current.prod-root")?;
        let updated_ci = root(wire.updated.as_ref(), false, "updated.ci-root")?;
        let updated_prod = root(wire.updated.as_ref(), true, "updated.prod-root")?;
        let (updated_ci, updated_prod) = match wire.status {
            TxStatus::None => (None, None),
            status => (
                Some(updated_ci.ok_or(TransactionError::NoUpdatedCiRoot(status))?),
                updated_prod,
            ),
        };
        Ok(ParsedTransaction {
            raw,
            wire,
            current_ci,
            current_prod,
            updated_ci,
            updated_prod,
        })
    }

    /// The status.
    pub fn status(&self) -> TxStatus {
        self.wire.status
    }

    /// The staged production root, or — when the server staged none — the one fioctl
    /// derives from the staged CI root ([`derive_missing_prod_root`]). `None` when nothing is
    /// staged.
    pub fn effective_updated_prod(&self) -> Option<SignedRoot> {
        let ci = self.updated_ci.as_ref()?;
        Some(
            self.updated_prod
                .clone()
                .unwrap_or_else(|| derive_missing_prod_root(ci)),
        )
    }

    /// What a staged production root is compared with: the production root in force, else
    /// (before the first offline rotation) the current CI root.
    pub fn current_prod_or_ci(&self) -> &SignedRoot {
        self.current_prod.as_ref().unwrap_or(&self.current_ci)
    }

    /// `current.online-keys`.
    pub fn current_online_keys(&self) -> &BTreeMap<String, KeyId> {
        self.wire
            .current
            .as_ref()
            .map_or(&NO_ONLINE_KEYS, |p| &p.online_keys)
    }

    /// `updated.online-keys` while a transaction is open, else (status `NONE`, or no staged
    /// pair) `current.online-keys`: the server stages the current online keys until
    /// `gen-online-keys` replaces some.
    pub fn updated_online_keys(&self) -> &BTreeMap<String, KeyId> {
        match (&self.wire.updated, self.status()) {
            (Some(p), TxStatus::Started | TxStatus::Applying) => &p.online_keys,
            _ => self.current_online_keys(),
        }
    }

    /// Whether the staged CI root has other offline targets keys (its targets keys but the
    /// staged online one) than the current CI root: a targets key rotation, addition or
    /// removal, which the server refuses to apply while a wave is active.
    pub fn changes_offline_targets_keys(&self) -> bool {
        let Some(staged) = &self.updated_ci else {
            return false;
        };
        let offline = |root: &SignedRoot, online: &BTreeMap<String, KeyId>| {
            root.signed
                .offline_targets_keys(online.get(Role::Targets.as_str()))
                .into_iter()
                .collect::<BTreeSet<_>>()
        };
        offline(&self.current_ci, self.current_online_keys())
            != offline(staged, self.updated_online_keys())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{key, FactoryKeys};
    use serde_json::json;

    /// Root v1 of the factory of seed 1 (initial root key 1, online keys 2, 3, 4), unsigned,
    /// made `version` and with `prod_targets_threshold` when given.
    fn signed(version: u64, prod_targets_threshold: Option<u64>) -> SignedRoot {
        let mut root = FactoryKeys::from_seed(1)
            .root_v1()
            .expires_at("2027-01-01T00:00:00Z")
            .build();
        root.version = version;
        if let Some(t) = prod_targets_threshold {
            root.role_mut(Role::Targets).unwrap().threshold = t;
        }
        SignedRoot {
            signatures: Vec::new(),
            signed: root,
            extra: BTreeMap::new(),
        }
    }

    fn text(root: &SignedRoot) -> String {
        String::from_utf8(root.to_canonical().unwrap()).unwrap()
    }

    fn online_targets() -> KeyId {
        key(2).keyid().clone()
    }

    /// A full answer as the server sends it.
    fn answer(status: &str, current: (&str, &str), updated: Option<(&str, &str)>) -> Value {
        let online = json!({"targets": online_targets()});
        json!({
            "status": status,
            "first-time": false,
            "current": {"ci-root": current.0, "prod-root": current.1, "online-keys": online},
            "updated": updated.map(|(ci, prod)| json!({"ci-root": ci, "prod-root": prod, "online-keys": online})),
            "change-meta": {"created-by": "u1", "created-at": "2026-01-01T00:00:00Z",
                            "updated-by": "u2", "updated-at": "2026-01-02T00:00:00Z"},
            "amendments": [{"kind": "k", "message": "m", "args": {"a": "b"}}],
            "issues": {"errors": [], "warnings": [{"kind": "w", "message": "soon", "args": {}}]},
        })
    }

    fn parse(v: &Value) -> Result<ParsedTransaction, TransactionError> {
        ParsedTransaction::from_json(serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn statuses_are_the_three_fioctl_knows() {
        for s in TxStatus::ALL {
            assert_eq!(TxStatus::parse(s.as_str()).unwrap(), s);
            assert_eq!(s.to_string().parse::<TxStatus>().unwrap(), s);
            let v = serde_json::to_value(s).unwrap();
            assert_eq!(v, Value::String(s.as_str().to_string()));
            assert_eq!(serde_json::from_value::<TxStatus>(v).unwrap(), s);
        }
        for bad in ["started", "WEIRD", "", "NONE "] {
            let err = TxStatus::parse(bad).unwrap_err();
            assert!(
                matches!(&err, TransactionError::UnknownStatus(s) if s == bad),
                "{err}"
            );
            assert!(err
                .to_string()
                .starts_with("Unexpected TUF root updates status: "));
        }
        // On the wire too, null included (Go reads it as the empty status).
        for v in [json!("WEIRD"), Value::Null] {
            let mut a = answer("NONE", ("x", ""), None);
            a["status"] = v;
            let err = parse(&a).unwrap_err();
            assert!(
                err.to_string()
                    .contains("Unexpected TUF root updates status"),
                "{err}"
            );
        }
        let mut a = answer("NONE", ("x", ""), None);
        a.as_object_mut().unwrap().remove("status");
        assert!(parse(&a).unwrap_err().to_string().contains("status"));
    }

    #[test]
    fn the_wire_form_round_trips_and_keeps_unknown_members() {
        let (c, u) = (text(&signed(2, None)), text(&signed(3, None)));
        let mut a = answer("STARTED", (&c, &c), Some((&u, "")));
        a["x-future"] = json!({"kept": [1, 2]});
        a["current"]["x-pair"] = json!("kept too");
        a["change-meta"]["x-meta"] = json!(7);
        let tx: Transaction = serde_json::from_value(a.clone()).unwrap();
        assert_eq!(tx.status, TxStatus::Started);
        assert_eq!(tx.extra["x-future"], json!({"kept": [1, 2]}));
        assert_eq!(
            tx.current.as_ref().unwrap().extra["x-pair"],
            json!("kept too")
        );
        assert_eq!(tx.change_meta.as_ref().unwrap().updated_by, "u2");
        assert_eq!(tx.amendments[0].args["a"], "b");
        assert_eq!(serde_json::to_value(&tx).unwrap(), a);
        // What the bundle carries: the bytes as received, parsed again to the same value.
        let p = ParsedTransaction::from_json(serde_json::to_vec(&a).unwrap()).unwrap();
        assert_eq!(Transaction::from_json(&p.raw).unwrap(), tx);
        assert_eq!(p.wire, tx);
    }

    #[test]
    fn null_reads_as_empty_like_fioctl() {
        let c = text(&signed(1, None));
        let raw = json!({
            "status": "NONE", "first-time": null,
            "current": {"ci-root": c, "prod-root": null, "online-keys": null},
            "updated": null, "change-meta": null, "amendments": null,
            "issues": {"errors": null, "warnings": [{"message": "w", "kind": null, "args": null}]},
        });
        let p = parse(&raw).unwrap();
        assert!(!p.wire.first_time);
        assert!(p.current_prod.is_none() && p.updated_ci.is_none());
        assert!(p.current_online_keys().is_empty() && p.updated_online_keys().is_empty());
        assert!(p.wire.change_meta.is_none() && p.wire.amendments.is_empty());
        assert_eq!(p.wire.issues.warnings, vec![Issue::new("", "w")]);
    }

    #[test]
    fn fioctl_consistency_rules() {
        let (c, u) = (text(&signed(1, None)), text(&signed(2, None)));
        let none = parse(&answer("NONE", (&c, ""), None)).unwrap();
        assert_eq!(none.status(), TxStatus::None);
        assert!(none.updated_ci.is_none() && none.effective_updated_prod().is_none());
        // NONE: a staged pair left behind does not count, but must still be readable.
        let stale = parse(&answer("NONE", (&c, ""), Some((&u, &u)))).unwrap();
        assert!(stale.updated_ci.is_none() && stale.updated_prod.is_none());
        let err = parse(&answer("NONE", (&c, ""), Some(("{", "")))).unwrap_err();
        assert!(
            matches!(
                err,
                TransactionError::Root {
                    member: "updated.ci-root",
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            parse(&answer("NONE", ("", ""), None)).unwrap_err(),
            TransactionError::NoCurrentCiRoot
        ));
        for status in ["STARTED", "APPLYING"] {
            let err = parse(&answer(status, (&c, ""), Some(("", "")))).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("Updated TUF CI root not set (status {status})")
            );
            assert!(matches!(
                parse(&answer(status, (&c, ""), None)).unwrap_err(),
                TransactionError::NoUpdatedCiRoot(_)
            ));
            let p = parse(&answer(status, (&c, ""), Some((&u, "")))).unwrap();
            assert_eq!(p.updated_ci.as_ref().unwrap().signed.version, 2);
        }
        let err = parse(&answer("STARTED", (&c, "[]"), Some((&u, "")))).unwrap_err();
        assert!(err.to_string().starts_with("current.prod-root: "), "{err}");
    }

    #[test]
    fn a_missing_staged_production_root_is_derived_with_threshold_2() {
        // The production root in force has targets threshold 3; the server staged a CI root
        // and no production root. fioctl's genProdTufRoot (and so the courier, the signer and
        // factory-sim) derives threshold 2 from the staged CI root, not the 3 in force: the
        // signer then shows the lowered threshold as a change that needs an authority.
        let cur_ci = signed(2, None);
        let cur_prod = signed(2, Some(3));
        let staged = signed(3, None);
        let p = parse(&answer(
            "STARTED",
            (&text(&cur_ci), &text(&cur_prod)),
            Some((&text(&staged), "")),
        ))
        .unwrap();
        assert!(p.updated_prod.is_none());
        let derived = p.effective_updated_prod().unwrap();
        assert_eq!(derived.signed.threshold(Role::Targets), 2);
        assert_eq!(derived, derive_missing_prod_root(&staged));
        let mut expected = staged.clone();
        expected.signed.role_mut(Role::Targets).unwrap().threshold = 2;
        assert_eq!(derived, expected, "a copy of the CI root but the threshold");
        assert_eq!(p.current_prod_or_ci(), &cur_prod);
        // A staged production root is used as staged (threshold 3 kept).
        let staged_prod = signed(3, Some(3));
        let p = parse(&answer(
            "STARTED",
            (&text(&cur_ci), &text(&cur_prod)),
            Some((&text(&staged), &text(&staged_prod))),
        ))
        .unwrap();
        assert_eq!(p.effective_updated_prod().unwrap(), staged_prod);
        // Before the first offline rotation the CI root is the production root's base.
        let p = parse(&answer("NONE", (&text(&cur_ci), ""), None)).unwrap();
        assert_eq!(p.current_prod_or_ci(), &cur_ci);
    }

    #[test]
    fn offline_targets_key_changes_ignore_the_online_key_and_order() {
        let cur = signed(1, None);
        let offline = key(9);
        let mut with_offline = signed(2, None);
        with_offline
            .signed
            .keys
            .insert(offline.keyid().clone(), offline.public_key().clone());
        with_offline
            .signed
            .role_mut(Role::Targets)
            .unwrap()
            .keyids
            .insert(0, offline.keyid().clone());
        let p = |staged: &SignedRoot| {
            parse(&answer(
                "STARTED",
                (&text(&cur), ""),
                Some((&text(staged), "")),
            ))
            .unwrap()
        };
        assert!(!p(&signed(2, None)).changes_offline_targets_keys());
        assert!(p(&with_offline).changes_offline_targets_keys());
        // The same offline keys in another order change nothing.
        let mut from = with_offline.clone();
        from.signed.version = 1;
        let mut reordered = with_offline.clone();
        reordered
            .signed
            .role_mut(Role::Targets)
            .unwrap()
            .keyids
            .reverse();
        let t = parse(&answer(
            "STARTED",
            (&text(&from), ""),
            Some((&text(&reordered), "")),
        ))
        .unwrap();
        assert!(!t.changes_offline_targets_keys());
        // No transaction: nothing changes.
        let none = parse(&answer("NONE", (&text(&cur), ""), None)).unwrap();
        assert!(!none.changes_offline_targets_keys());
    }
}
