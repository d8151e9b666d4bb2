//! Read access to a factory's committed state, for tests (what the server would serve, without
//! going through HTTP).

use std::path::Path;

use shared::keys::{KeyId, PrivateKey, Signature};
use shared::metadata::{SignedRoot, SignedTargets};
use shared::transaction::TxStatus;

use super::docs::TargetsDoc;
use super::error::SimError;
use super::state::{Factory, FactoryRecord, OnlineKeyIds, WaveStatus};

/// Signatures and the exact canonical `signed` bytes of a targets document.
pub type SignedBytes = (Vec<Signature>, Vec<u8>);

/// A wave as the server knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaveInfo {
    /// Wave name.
    pub name: String,
    /// Version string as posted.
    pub version: String,
    /// Production tag.
    pub tag: String,
    /// Status.
    pub status: WaveStatus,
    /// UUIDs of the devices it was rolled out to, in rollout order.
    pub rolled_out: Vec<String>,
}

/// The open root-update transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxInfo {
    /// Transaction id.
    pub txid: String,
    /// `STARTED` or `APPLYING`.
    pub status: TxStatus,
    /// Whether it is the first-time rotation.
    pub first_time: bool,
    /// Staged online key ids.
    pub online_keys: OnlineKeyIds,
}

/// A snapshot of one factory's committed state.
#[derive(Debug)]
pub struct FactoryView {
    f: Factory,
}

fn parse_root(text: &str) -> Result<SignedRoot, SimError> {
    Ok(SignedRoot::from_json(text.as_bytes())?)
}

impl FactoryView {
    /// Loads factory `name` from `state_dir` (safe while a server runs: commits are atomic).
    pub fn load(state_dir: &Path, name: &str) -> Result<FactoryView, SimError> {
        Ok(FactoryView {
            f: Factory::load(state_dir, name)?,
        })
    }

    fn rec(&self) -> &FactoryRecord {
        &self.f.rec
    }

    /// Factory name.
    pub fn name(&self) -> &str {
        &self.rec().name
    }

    /// polis-ids of the factory's users (the first one created the factory).
    pub fn polis_ids(&self) -> Vec<String> {
        self.rec()
            .users
            .iter()
            .map(|u| u.polis_id.clone())
            .collect()
    }

    /// Latest root version.
    pub fn version(&self) -> u64 {
        self.rec().latest().version
    }

    /// The current CI root.
    pub fn ci_root(&self) -> Result<SignedRoot, SimError> {
        parse_root(self.rec().current_ci())
    }

    /// The current CI root as served (canonical JSON text).
    pub fn ci_root_json(&self) -> &str {
        self.rec().current_ci()
    }

    /// The current production root; `None` before the factory's first offline rotation.
    pub fn prod_root(&self) -> Result<Option<SignedRoot>, SimError> {
        self.rec().current_prod().map(parse_root).transpose()
    }

    /// Root `version` as `N.root.json[?production=1]` serves it (`None` beyond the latest).
    pub fn root(&self, version: u64, production: bool) -> Result<Option<SignedRoot>, SimError> {
        let Some(e) = self.rec().chain.iter().find(|e| e.version == version) else {
            return Ok(None);
        };
        let text = match (production, &e.prod) {
            (true, Some(p)) => p,
            _ => &e.ci,
        };
        parse_root(text).map(Some)
    }

    /// The whole chain (1..=latest) as served, CI or production.
    pub fn chain(&self, production: bool) -> Result<Vec<SignedRoot>, SimError> {
        (1..=self.version())
            .map(|v| {
                self.root(v, production)
                    .map(|r| r.expect("version in chain"))
            })
            .collect()
    }

    /// Current online key ids.
    pub fn online_keys(&self) -> &OnlineKeyIds {
        &self.rec().online
    }

    /// Whether the first-time root rotation has been applied.
    pub fn root_offline(&self) -> bool {
        self.rec().root_offline
    }

    /// Key id of the initial (Foundries-generated) root key.
    pub fn initial_root_keyid(&self) -> &KeyId {
        &self.rec().initial_root_keyid
    }

    /// A private key the server holds (online keys; the initial root key until the root goes
    /// offline). For tests that need to act as the server.
    pub fn server_key(&self, keyid: &KeyId) -> Option<PrivateKey> {
        self.rec().server_key(keyid).ok()
    }

    /// Production tags.
    pub fn tags(&self) -> Vec<String> {
        self.rec().tags.keys().cloned().collect()
    }

    fn targets_doc(&self, blob: Option<&String>) -> Result<Option<TargetsDoc>, SimError> {
        let Some(blob) = blob else { return Ok(None) };
        let bytes = self.f.blobs().get(blob)?;
        TargetsDoc::parse_stored(&bytes)
            .map(Some)
            .map_err(SimError::Invalid)
    }

    fn to_signed(doc: Option<TargetsDoc>) -> Result<Option<SignedTargets>, SimError> {
        doc.map(|d| Ok(SignedTargets::from_json(&d.to_bytes())?))
            .transpose()
    }

    /// Production targets of `tag`.
    pub fn prod_targets(&self, tag: &str) -> Result<Option<SignedTargets>, SimError> {
        Self::to_signed(self.targets_doc(self.rec().tags.get(tag).map(|t| &t.blob))?)
    }

    /// Signatures and exact canonical `signed` bytes of the production targets of `tag`.
    pub fn prod_targets_signed(&self, tag: &str) -> Result<Option<SignedBytes>, SimError> {
        Ok(self
            .targets_doc(self.rec().tags.get(tag).map(|t| &t.blob))?
            .map(|d| (d.signatures, d.signed_bytes)))
    }

    /// All waves, in creation order.
    pub fn waves(&self) -> Vec<WaveInfo> {
        self.rec()
            .waves
            .iter()
            .map(|w| WaveInfo {
                name: w.name.clone(),
                version: w.version.clone(),
                tag: w.tag.clone(),
                status: w.status,
                rolled_out: w
                    .rollouts
                    .iter()
                    .flat_map(|r| r.devices.iter().cloned())
                    .collect(),
            })
            .collect()
    }

    /// The production devices: (name, UUID, tag, device group).
    pub fn devices(&self) -> Vec<(String, String, String, Option<String>)> {
        self.rec()
            .devices
            .iter()
            .map(|d| {
                (
                    d.name.clone(),
                    d.uuid.clone(),
                    d.tag.clone(),
                    d.group.clone(),
                )
            })
            .collect()
    }

    fn wave_blob(&self, name: &str) -> Option<&String> {
        self.rec()
            .waves
            .iter()
            .find(|w| w.name == name)
            .map(|w| &w.blob)
    }

    /// Targets of wave `name`.
    pub fn wave_targets(&self, name: &str) -> Result<Option<SignedTargets>, SimError> {
        Self::to_signed(self.targets_doc(self.wave_blob(name))?)
    }

    /// Signatures and exact canonical `signed` bytes of the targets of wave `name`.
    pub fn wave_targets_signed(&self, name: &str) -> Result<Option<SignedBytes>, SimError> {
        Ok(self
            .targets_doc(self.wave_blob(name))?
            .map(|d| (d.signatures, d.signed_bytes)))
    }

    /// The open transaction, if any.
    pub fn transaction(&self) -> Option<TxInfo> {
        self.rec().tx.as_ref().map(|t| TxInfo {
            txid: t.txid.clone(),
            status: t.status,
            first_time: t.first_time,
            online_keys: t.online.clone(),
        })
    }

    /// Number of CI builds.
    pub fn ci_builds(&self) -> u64 {
        self.rec().ci.builds
    }

    /// The CI targets manifest (canonical JSON) and its signatures by the online targets key
    /// (re-signed when that key is rotated).
    pub fn ci_targets_manifest(&self) -> (Vec<u8>, Vec<Signature>) {
        let ci = &self.rec().ci;
        (ci.manifest.as_bytes().to_vec(), ci.signatures.clone())
    }
}
