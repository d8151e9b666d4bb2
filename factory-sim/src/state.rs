//! The persisted model of a simulated factory and the in-memory registry of factories.
//!
//! Layout of a state directory:
//!
//! ```text
//! DIR/factories/<name>/factory.json        everything small: users, server-held keys, root chain,
//!                                          tags, waves, the open transaction (the commit point)
//! DIR/factories/<name>/blobs/<sha256>.json production and wave targets documents (canonical JSON)
//! DIR/factories/<name>/ci-targets.jsonl    CI targets, one line per build: "<version>\t<json>\n"
//! DIR/factories/<name>/ci-targets.idx.json byte offsets of each build's line (written once by init)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use shared::keys::{KeyId, PrivateKey, Signature};
use shared::metadata::{Role, Timestamp};
use shared::transaction::TxStatus;

use super::error::{ApiError, SimError};
use super::store::{self, Blobs};

/// Version of the `factory.json` layout.
pub(crate) const FORMAT: u32 = 1;

/// Key ids of the three online (server-held) keys, by lower-case role name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineKeyIds {
    /// Online targets key (signs CI targets; one of the prod targets signatures).
    pub targets: KeyId,
    /// Online snapshot key.
    pub snapshot: KeyId,
    /// Online timestamp key.
    pub timestamp: KeyId,
}

impl OnlineKeyIds {
    /// The key id of an online role (`None` for `root`).
    pub fn get(&self, role: Role) -> Option<&KeyId> {
        match role {
            Role::Targets => Some(&self.targets),
            Role::Snapshot => Some(&self.snapshot),
            Role::Timestamp => Some(&self.timestamp),
            Role::Root => None,
        }
    }

    /// Mutable access to the key id of an online role.
    pub(crate) fn get_mut(&mut self, role: Role) -> Option<&mut KeyId> {
        match role {
            Role::Targets => Some(&mut self.targets),
            Role::Snapshot => Some(&mut self.snapshot),
            Role::Timestamp => Some(&mut self.timestamp),
            Role::Root => None,
        }
    }

    /// All three key ids.
    pub fn all(&self) -> [&KeyId; 3] {
        [&self.targets, &self.snapshot, &self.timestamp]
    }

    /// The API's `online-keys` map: lower-case role name → key id.
    pub fn to_map(&self) -> BTreeMap<String, KeyId> {
        [Role::Targets, Role::Snapshot, Role::Timestamp]
            .into_iter()
            .filter_map(|r| Some((r.as_str().to_string(), self.get(r)?.clone())))
            .collect()
    }
}

/// A user of a factory (one API token each).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    /// SHA-256 (hex) of the API token; the token itself is not stored.
    pub token_sha256: String,
    pub polis_id: String,
    pub name: String,
    pub role: String,
}

/// One version of the root chain. Documents are canonical JSON text.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ChainEntry {
    pub version: u64,
    pub ci: String,
    /// `None` before the factory's first offline rotation (the CI root is served instead).
    pub prod: Option<String>,
}

/// The production targets of one tag.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TagRecord {
    /// Blob digest of the signed targets document.
    pub blob: String,
    /// `signed.version`.
    pub version: u64,
}

/// Lifecycle of a wave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaveStatus {
    /// Created, rolling out; its targets are served by `wave-targets`.
    Active,
    /// Completed: its targets became the tag's production targets.
    Complete,
    /// Canceled.
    Canceled,
}

impl WaveStatus {
    /// The API string (`active`, `complete`, `canceled`).
    pub fn as_str(self) -> &'static str {
        match self {
            WaveStatus::Active => "active",
            WaveStatus::Complete => "complete",
            WaveStatus::Canceled => "canceled",
        }
    }
}

/// A wave.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WaveRecord {
    pub name: String,
    /// The version string as posted.
    pub version: String,
    pub tag: String,
    pub status: WaveStatus,
    /// Blob digest of the signed wave targets document.
    pub blob: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_by: String,
    pub updated_at: Timestamp,
    /// Rollouts to subsets of the tag's devices, oldest first.
    #[serde(default)]
    pub rollouts: Vec<RolloutRecord>,
}

/// One rollout of a wave (`POST waves/{wave}/rollout/`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RolloutRecord {
    /// The device group, if one was given.
    pub group: Option<String>,
    /// UUIDs of the devices it reached.
    pub devices: Vec<String>,
    /// The whole group (a group and nothing narrower): new devices of it follow.
    pub full_group: bool,
    pub by: String,
    pub at: Timestamp,
}

/// A production device: it follows one production tag and may belong to a device group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DeviceRecord {
    pub name: String,
    pub uuid: String,
    pub tag: String,
    pub group: Option<String>,
}

/// What the server keeps about the CI targets (the builds themselves are in
/// `ci-targets.jsonl`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CiRecord {
    /// Number of builds.
    pub builds: u64,
    /// Manifest of the CI targets file (canonical JSON), signed by the online targets key.
    pub manifest: String,
    /// Signatures over `manifest`.
    pub signatures: Vec<Signature>,
}

/// The open root-update transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TxRecord {
    pub txid: String,
    pub status: TxStatus,
    pub first_time: bool,
    pub shortcut: bool,
    pub message: String,
    /// `x-changelog` the server set at init (both staged roots must keep it).
    pub changelog: serde_json::Value,
    /// polis-id of the user who started it (may omit the txid).
    pub initiator: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_by: String,
    pub updated_at: Timestamp,
    /// Staged CI root (canonical JSON text).
    pub ci: String,
    /// Staged production root, if any.
    pub prod: Option<String>,
    /// Staged online key ids.
    pub online: OnlineKeyIds,
    /// Roles whose online key `gen-online-keys` replaced in this transaction.
    pub rotated: BTreeSet<Role>,
    /// Private keys generated by `gen-online-keys` (keyid → `.sec` JSON).
    pub new_keys: BTreeMap<KeyId, String>,
    /// Staged production targets signatures per tag.
    pub targets_signatures: BTreeMap<String, Vec<Signature>>,
    /// Staged wave targets signatures per wave.
    pub waves_signatures: BTreeMap<String, Vec<Signature>>,
}

/// Everything about one factory except blobs and CI targets.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FactoryRecord {
    pub format: u32,
    pub name: String,
    pub created_at: Timestamp,
    pub users: Vec<UserRecord>,
    /// Private keys the server holds (keyid → `.sec` JSON): the online keys, and the initial
    /// root key until the factory takes its root offline.
    pub server_keys: BTreeMap<KeyId, String>,
    pub initial_root_keyid: KeyId,
    /// Whether the first-time root rotation has been applied.
    pub root_offline: bool,
    pub online: OnlineKeyIds,
    /// Root chain, index 0 = version 1.
    pub chain: Vec<ChainEntry>,
    pub tags: BTreeMap<String, TagRecord>,
    /// Waves in creation order.
    pub waves: Vec<WaveRecord>,
    pub ci: CiRecord,
    pub tx: Option<TxRecord>,
    /// Production devices (for wave rollouts).
    #[serde(default)]
    pub devices: Vec<DeviceRecord>,
}

impl FactoryRecord {
    /// The latest chain entry.
    pub fn latest(&self) -> &ChainEntry {
        // A factory always has root v1 (init writes it).
        self.chain.last().expect("root chain is never empty")
    }

    /// The latest CI root text.
    pub fn current_ci(&self) -> &str {
        &self.latest().ci
    }

    /// The latest production root text, if the factory has one.
    pub fn current_prod(&self) -> Option<&str> {
        self.latest().prod.as_deref()
    }

    /// A server-held private key.
    pub fn server_key(&self, keyid: &KeyId) -> Result<PrivateKey, SimError> {
        let json = self
            .server_keys
            .get(keyid)
            .ok_or_else(|| SimError::Invalid(format!("server does not hold key {keyid}")))?;
        Ok(PrivateKey::from_json(json.as_bytes())?)
    }

    /// The current online targets private key.
    pub fn online_targets_key(&self) -> Result<PrivateKey, SimError> {
        self.server_key(&self.online.targets)
    }

    /// Index of the wave called `name`.
    pub fn wave_index(&self, name: &str) -> Option<usize> {
        self.waves.iter().position(|w| w.name == name)
    }

    /// Blob digests this record references.
    pub fn blob_refs(&self) -> BTreeSet<String> {
        self.tags
            .values()
            .map(|t| t.blob.clone())
            .chain(self.waves.iter().map(|w| w.blob.clone()))
            .collect()
    }

    /// The user owning `token`.
    pub fn user_by_token(&self, token: &str) -> Option<&UserRecord> {
        let digest = store::sha256_hex(token.as_bytes());
        self.users.iter().find(|u| u.token_sha256 == digest)
    }
}

/// A factory loaded from its directory.
#[derive(Debug)]
pub(crate) struct Factory {
    pub dir: PathBuf,
    pub rec: FactoryRecord,
    /// CI targets index, read on first use (immutable after init).
    pub ci_index: std::sync::OnceLock<BTreeMap<u64, super::ci::Span>>,
}

impl Factory {
    /// `DIR/factories/<name>`.
    pub fn dir_of(state_dir: &Path, name: &str) -> PathBuf {
        state_dir.join("factories").join(name)
    }

    /// Loads `DIR/factories/<name>` (does not sweep).
    pub fn load(state_dir: &Path, name: &str) -> Result<Factory, SimError> {
        let dir = Factory::dir_of(state_dir, name);
        let path = dir.join("factory.json");
        if !path.exists() {
            return Err(SimError::NoFactory(name.to_string()));
        }
        let bytes =
            fs::read(&path).map_err(|e| SimError::io(format!("reading {}", path.display()), e))?;
        let rec: FactoryRecord = serde_json::from_slice(&bytes).map_err(|e| SimError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if rec.format != FORMAT || rec.chain.is_empty() {
            return Err(SimError::Corrupt {
                path,
                reason: format!("unsupported format {} or empty root chain", rec.format),
            });
        }
        Ok(Factory {
            dir,
            rec,
            ci_index: Default::default(),
        })
    }

    /// The blob store of this factory.
    pub fn blobs(&self) -> Blobs {
        Blobs::new(self.dir.join("blobs"))
    }

    /// Atomically replaces the persisted record with `new` (the commit point), then deletes
    /// blobs only the old record referenced.
    pub fn commit(&mut self, new: FactoryRecord) -> Result<(), SimError> {
        write_record(&self.dir, &new)?;
        let keep = new.blob_refs();
        let blobs = self.blobs();
        for old in self.rec.blob_refs().difference(&keep) {
            blobs.remove(old);
        }
        self.rec = new;
        Ok(())
    }

    /// Deletes blobs that no committed state references (left by an interrupted commit).
    pub fn sweep(&self) {
        self.blobs().sweep(&self.rec.blob_refs());
    }
}

/// Writes `factory.json` atomically.
pub(crate) fn write_record(dir: &Path, rec: &FactoryRecord) -> Result<(), SimError> {
    let bytes = serde_json::to_vec_pretty(rec).map_err(|e| SimError::Invalid(e.to_string()))?;
    shared::fsutil::write_atomic(dir.join("factory.json"), &bytes, store::STATE_FILE_MODE)?;
    Ok(())
}

/// Lists the factory names in a state directory.
pub(crate) fn factory_names(state_dir: &Path) -> Result<Vec<String>, SimError> {
    let dir = state_dir.join("factories");
    let mut names = Vec::new();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(SimError::io(format!("listing {}", dir.display()), e)),
    };
    for entry in entries.flatten() {
        if entry.path().join("factory.json").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Checks a factory name: it becomes a directory name and a URL path segment.
pub(crate) fn check_factory_name(name: &str) -> Result<(), SimError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(SimError::Invalid(format!(
            "invalid factory name {name:?}: use 1-64 letters, digits, '-' or '_', starting with a letter or digit"
        )))
    }
}

/// A shared handle to one loaded factory: requests that only read it (every GET) share it,
/// a change has it alone — like a real server, a slow read (a review of the staged roots)
/// does not hold up the other reads.
pub(crate) type FactorySlot = Arc<RwLock<Factory>>;

/// All factories of a state directory, loaded in memory, with their tokens.
#[derive(Debug)]
pub(crate) struct Registry {
    pub factories: BTreeMap<String, FactorySlot>,
    /// token SHA-256 → (factory name, user). Users only change offline (`add-user`), so the
    /// registry can answer authentication without locking a factory.
    tokens: HashMap<String, (String, UserRecord)>,
}

/// Who made an authenticated request.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub factory: FactorySlot,
    pub user: UserRecord,
}

impl Registry {
    /// Loads every factory of `state_dir` and sweeps orphaned blobs.
    pub fn load(state_dir: &Path) -> Result<Registry, SimError> {
        let mut factories = BTreeMap::new();
        let mut tokens = HashMap::new();
        for name in factory_names(state_dir)? {
            let f = Factory::load(state_dir, &name)?;
            f.sweep();
            for u in &f.rec.users {
                tokens.insert(u.token_sha256.clone(), (name.clone(), u.clone()));
            }
            factories.insert(name, Arc::new(RwLock::new(f)));
        }
        Ok(Registry { factories, tokens })
    }

    /// Authenticates a request for the factory named in its path: missing or unknown
    /// token → 401; a token of another factory (or a factory that does not exist) → 403.
    pub fn authenticate(&self, headers: &HeaderMap, factory: &str) -> Result<Caller, ApiError> {
        let token = token_from_headers(headers).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Authentication required: send your API token in the OSF-TOKEN header",
            )
        })?;
        let digest = store::sha256_hex(token.as_bytes());
        let (owner, user) = self
            .tokens
            .get(&digest)
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "Invalid API token"))?;
        if owner != factory {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("This API token does not grant access to factory {factory:?}"),
            ));
        }
        let slot = self
            .factories
            .get(factory)
            .ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, "No access to this factory"))?
            .clone();
        Ok(Caller {
            factory: slot,
            user: user.clone(),
        })
    }
}

/// Locks a factory for a change; a poisoned lock (a panic in another request) is still
/// usable because every change is committed atomically before the in-memory record is
/// replaced.
pub(crate) fn lock(slot: &FactorySlot) -> std::sync::RwLockWriteGuard<'_, Factory> {
    slot.write().unwrap_or_else(|p| p.into_inner())
}

/// Locks a factory for reading (shared with other readers), like [`lock`].
pub(crate) fn lock_read(slot: &FactorySlot) -> std::sync::RwLockReadGuard<'_, Factory> {
    slot.read().unwrap_or_else(|p| p.into_inner())
}

/// The API token of a request: `OSF-TOKEN` (or the header named by `TOKEN_HEADER`, as fioctl
/// allows), else `Authorization: Bearer <base64(token)>`.
fn token_from_headers(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("osf-token").and_then(|v| v.to_str().ok()) {
        if !v.is_empty() {
            return Some(v.to_string());
        }
    }
    let auth = headers.get("authorization")?.to_str().ok()?;
    let b64 = auth.strip_prefix("Bearer ")?.trim();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
        .ok()?;
    String::from_utf8(raw).ok().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_osf_token_or_bearer() {
        let mut h = HeaderMap::new();
        assert_eq!(token_from_headers(&h), None);
        h.insert("authorization", "Bearer dG9rZW4=".parse().unwrap());
        assert_eq!(token_from_headers(&h).as_deref(), Some("token"));
        h.insert("osf-token", "other".parse().unwrap());
        assert_eq!(token_from_headers(&h).as_deref(), Some("other"));
    }

    #[test]
    fn factory_names_are_checked() {
        assert!(check_factory_name("acme-1").is_ok());
        assert!(check_factory_name("").is_err());
        assert!(check_factory_name("../x").is_err());
        assert!(check_factory_name("-x").is_err());
    }
}
