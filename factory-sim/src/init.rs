//! Creating a factory the way the real service does at factory creation: an initial root
//! key held by the server, online targets/snapshot/timestamp keys, root v1 signed by the
//! initial root key, CI targets for a number of builds.
//!
//! Production tags and waves exist on a real Factory only after it went offline with an
//! offline targets key: production targets come from waves, and a wave needs offline
//! signatures. So `--tags`/`--waves` need `--offline-keys DIR`: init then runs, with fioctl's
//! algorithms, what the factory's admin would have run — the first-time root rotation (root
//! v2: the initial key replaced by an offline root key, expiry one year on) and the first
//! targets key rotation (root v3: an offline targets key added) — writes the two keys
//! tarballs the admin would hold into `DIR` (`root.keys.tgz` with `first-root.{pub,sec}` and
//! the root key, `targets.keys.tgz` with the targets key; fioctl's layout), and signs the
//! tags and waves with the online *and* the offline targets key.
//!
//! `--legacy-online-only-tags` keeps the other shape, production tags signed by the online
//! key alone on a factory that never went offline: a state the real Factory does not
//! produce, kept for the tests that check the toolkit never endorses such content by itself.
//!
//! `--device-tags TAG,...` registers production devices following those tags (four per tag,
//! in device groups `east` and `west`) for wave rollouts; a tag need not exist yet (its
//! devices wait for the first wave of it).
//!
//! Everything except timestamps is reproducible from `(seed, factory name)`: keys, polis-id,
//! hashes and custom data come from a seeded RNG (one stream per build, so any build can be
//! regenerated on its own). Timestamps are relative to [`InitOptions::now`] (default: now).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use shared::canonical;
use shared::keys::{KeyId, PrivateKey};
use shared::metadata::{RoleKeys, Root, Timestamp};

use super::ci;
use super::docs::{canonical_json, RootDoc, TargetsDoc};
use super::error::SimError;
use super::state::{
    self, check_factory_name, factory_names, ChainEntry, CiRecord, DeviceRecord, Factory,
    FactoryRecord, OnlineKeyIds, TagRecord, UserRecord, WaveRecord, WaveStatus, FORMAT,
};
use super::store::{self, Blobs};

/// Options of [`init_factory`] (and `factory-sim init`).
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// State directory (created if missing); several factories may share one.
    pub state_dir: PathBuf,
    /// Factory name (letters, digits, `-`, `_`).
    pub factory: String,
    /// API token of the factory's first user (sent as `OSF-TOKEN`).
    pub token: String,
    /// Seed of everything random.
    pub seed: u64,
    /// Number of CI builds (versions 1..=N).
    pub targets: u64,
    /// Hardware ids per build (one target per hardware id).
    pub hardware_ids: usize,
    /// Docker compose apps per target (scales the size of `custom`).
    pub apps: usize,
    /// Number of production tags.
    pub tags: usize,
    /// Number of active waves (one per tag, for the first tags; needs `targets >= 2`).
    pub waves: usize,
    /// How many of the latest builds a production tag holds.
    pub prod_window: u64,
    /// How many of the newest CI builds are not in production yet (candidates for a wave).
    pub prod_behind: u64,
    /// polis-id of the first user (default: derived from the seed).
    pub polis_id: Option<String>,
    /// Display name of the first user.
    pub user_name: String,
    /// Creation time (default: now). Fix it for byte-identical factories.
    pub now: Option<Timestamp>,
    /// Days until root v1 expires.
    pub root_expires_days: i64,
    /// Days until generated targets expire.
    pub targets_expires_days: i64,
    /// Take the factory offline first (see the module documentation): the keys tarballs
    /// go into this directory, which must not hold them yet.
    pub offline_keys: Option<PathBuf>,
    /// Production tags and waves signed by the online targets key alone, on a factory that
    /// never went offline (a legacy state, for tests).
    pub legacy_online_only_tags: bool,
    /// Production tags that devices follow: [`DEVICES_PER_TAG`] devices each (see
    /// [`devices`]), for wave rollouts.
    pub device_tags: Vec<String>,
}

/// How many production devices init registers per tag of [`InitOptions::device_tags`].
pub const DEVICES_PER_TAG: usize = 4;

/// The devices init registers: for each tag of `device_tags`, `<tag>-device-1` ..
/// `-4`, the first half in device group `east`, the rest in `west`, with UUIDs derived from
/// the seed, factory and name.
fn devices(opts: &InitOptions) -> Vec<DeviceRecord> {
    let mut out = Vec::new();
    for tag in &opts.device_tags {
        for i in 1..=DEVICES_PER_TAG {
            let name = format!("{tag}-device-{i}");
            let h = hex::encode(Sha256::digest(
                format!("device:{}:{}:{name}", opts.seed, opts.factory).as_bytes(),
            ));
            out.push(DeviceRecord {
                uuid: format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                ),
                name,
                tag: tag.clone(),
                group: Some(
                    if i <= DEVICES_PER_TAG / 2 {
                        "east"
                    } else {
                        "west"
                    }
                    .to_string(),
                ),
            });
        }
    }
    out
}

impl InitOptions {
    /// Defaults: seed 1, 3 builds on 2 hardware ids with 2 apps each, no tags or waves, root
    /// v1 valid for 365 days.
    pub fn new(
        state_dir: impl Into<PathBuf>,
        factory: impl Into<String>,
        token: impl Into<String>,
    ) -> InitOptions {
        InitOptions {
            state_dir: state_dir.into(),
            factory: factory.into(),
            token: token.into(),
            seed: 1,
            targets: 3,
            hardware_ids: 2,
            apps: 2,
            tags: 0,
            waves: 0,
            prod_window: 5,
            prod_behind: 0,
            polis_id: None,
            user_name: "Factory Admin".to_string(),
            now: None,
            root_expires_days: 365,
            targets_expires_days: 365,
            offline_keys: None,
            legacy_online_only_tags: false,
            device_tags: Vec::new(),
        }
    }
}

/// What [`init_factory`] created.
#[derive(Clone, Debug)]
pub struct InitReport {
    /// Factory name.
    pub factory: String,
    /// polis-id of the first user.
    pub polis_id: String,
    /// Key id of the initial (server-held) root key.
    pub root_keyid: KeyId,
    /// Online key ids.
    pub online_keys: OnlineKeyIds,
    /// Number of CI builds.
    pub builds: u64,
    /// Size of the CI targets file in bytes.
    pub ci_targets_bytes: u64,
    /// Production tags created.
    pub tags: Vec<String>,
    /// Waves created (all active).
    pub waves: Vec<String>,
    /// With `--offline-keys`: what init created offline.
    pub offline: Option<OfflineHistory>,
}

/// The offline keys init created with `--offline-keys` (the factory's history up to root v3).
#[derive(Clone, Debug)]
pub struct OfflineHistory {
    /// `DIR/root.keys.tgz`: the initial root key (`first-root.*`) and the offline root key.
    pub root_keys: PathBuf,
    /// `DIR/targets.keys.tgz`: the offline targets key.
    pub targets_keys: PathBuf,
    /// The offline root key.
    pub root_keyid: KeyId,
    /// The offline targets key.
    pub targets_keyid: KeyId,
}

const TAG_NAMES: [&str; 8] = [
    "production",
    "stable",
    "beta",
    "qa",
    "staging",
    "canary",
    "lts",
    "edge",
];
const HW_IDS: [(&str, &str); 8] = [
    ("raspberrypi4-64", "aarch64"),
    ("intel-corei7-64", "x86_64"),
    ("imx8mm-lpddr4-evk", "aarch64"),
    ("qemuarm64-secureboot", "aarch64"),
    ("stm32mp15-disco", "armv7"),
    ("jetson-agx-xavier-devkit", "aarch64"),
    ("imx6ullevk", "armv7"),
    ("beaglebone-yocto", "armv7"),
];
const APPS: [&str; 8] = [
    "shellhttpd",
    "fiotest",
    "mosquitto",
    "nginx",
    "grafana",
    "influxdb",
    "node-red",
    "telegraf",
];

/// The name of production tag `i`.
fn tag_name(i: usize) -> String {
    TAG_NAMES
        .get(i)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("prod-{i}"))
}

/// Hardware id and architecture `i`.
fn hardware(i: usize) -> (String, &'static str) {
    HW_IDS
        .get(i)
        .map(|(h, a)| (h.to_string(), *a))
        .unwrap_or_else(|| (format!("board-{i}"), "aarch64"))
}

/// Seeded generator for `(label, n)`, independent of every other label/number.
struct Seeds([u8; 32]);

impl Seeds {
    fn new(seed: u64, factory: &str) -> Seeds {
        let mut h = Sha256::new();
        h.update(b"factory-sim/v1\0");
        h.update(seed.to_le_bytes());
        h.update(factory.as_bytes());
        Seeds(h.finalize().into())
    }

    fn rng(&self, label: &str, n: u64) -> StdRng {
        let mut h = Sha256::new();
        h.update(self.0);
        h.update(label.as_bytes());
        h.update([0]);
        h.update(n.to_le_bytes());
        StdRng::from_seed(h.finalize().into())
    }

    fn key(&self, label: &str) -> PrivateKey {
        PrivateKey::ed25519_from_seed(&self.rng(label, 0).gen())
    }
}

fn hex_bytes(rng: &mut StdRng, n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
    hex::encode(bytes)
}

/// Generator of CI builds.
struct Builds<'a> {
    seeds: &'a Seeds,
    factory: &'a str,
    hardware_ids: usize,
    apps: usize,
    count: u64,
    now: Timestamp,
}

impl Builds<'_> {
    /// Target name → meta of build `v`, with `custom.tags` = `tags`.
    fn targets(&self, v: u64, tags: &[&str]) -> Map<String, Value> {
        let mut rng = self.seeds.rng("build", v);
        // One build per hour, the last one an hour before `now`.
        let created = self.now.plus_seconds(-3600 * (self.count + 1 - v) as i64);
        let lmp_sha = hex_bytes(&mut rng, 20);
        let overrides_sha = hex_bytes(&mut rng, 20);
        let containers_sha = hex_bytes(&mut rng, 20);
        let mut apps = Map::new();
        for a in 0..self.apps {
            let name = APPS
                .get(a)
                .map(|s| s.to_string())
                .unwrap_or_else(|| format!("app-{a}"));
            let uri = format!(
                "hub.foundries.io/{}/{name}@sha256:{}",
                self.factory,
                hex_bytes(&mut rng, 32)
            );
            apps.insert(name, json!({ "uri": uri }));
        }
        let mut out = Map::new();
        for h in 0..self.hardware_ids {
            let (hwid, arch) = hardware(h);
            let name = format!("{hwid}-lmp");
            let custom = json!({
                "arch": arch,
                "containers-sha": containers_sha,
                "createdAt": created.to_string(),
                "delta-stats": {"sha256": hex_bytes(&mut rng, 32), "size": rng.gen_range(1_000_000u64..50_000_000)},
                "docker_compose_apps": apps,
                "hardwareIds": [hwid],
                "image-file": format!("lmp-factory-image-{hwid}.wic.gz"),
                "lmp-manifest-sha": lmp_sha,
                "lmp-ver": "95",
                "meta-subscriber-overrides-sha": overrides_sha,
                "name": name,
                "tags": tags,
                "targetFormat": "OSTREE",
                "updatedAt": created.to_string(),
                "uri": format!("https://ci.foundries.io/projects/{}/lmp/builds/{v}", self.factory),
                "version": v.to_string(),
            });
            out.insert(
                format!("{name}-{v}"),
                json!({"custom": custom, "hashes": {"sha256": hex_bytes(&mut rng, 32)}, "length": 0}),
            );
        }
        out
    }
}

/// Signs a targets `signed` value with `keys` and returns the stored document.
fn signed_targets(signed: &Value, keys: &[&PrivateKey]) -> Result<TargetsDoc, SimError> {
    let text = serde_json::to_vec(signed).map_err(|e| SimError::Invalid(e.to_string()))?;
    let signed_bytes = canonical_json(&text).map_err(SimError::Invalid)?;
    Ok(TargetsDoc {
        signatures: keys.iter().map(|k| k.sign(&signed_bytes)).collect(),
        signed_bytes,
    })
}

/// Takes a new factory offline the way its admin would with fioctl: the first-time root
/// rotation (root v2) and the first targets key rotation (root v3) are appended to `chain`,
/// and the keys tarballs are written into `dir`. Returns the history and the offline
/// targets key (which signs the production tags and waves init creates).
fn take_offline(
    dir: &Path,
    seeds: &Seeds,
    v1: &Root,
    (initial, online_targets): (&PrivateKey, &KeyId),
    polis_id: &str,
    now: Timestamp,
    chain: &mut Vec<ChainEntry>,
) -> Result<(OfflineHistory, PrivateKey), SimError> {
    use shared::metadata::KeyOwner;
    use shared::tarball::KeysTarball;
    use shared::transform;
    let root_keys = dir.join("root.keys.tgz");
    let targets_keys = dir.join("targets.keys.tgz");
    for p in [&root_keys, &targets_keys] {
        if p.exists() {
            return Err(SimError::Invalid(format!(
                "{} exists: --offline-keys needs a directory without keys tarballs",
                p.display()
            )));
        }
    }
    store::create_dir(dir)?;
    let offline_root = seeds.key("offline-root");
    let offline_targets = seeds.key("offline-targets");
    let owner = || {
        Some(KeyOwner {
            polis_id: polis_id.to_string(),
            created_at: now,
            extra: Default::default(),
        })
    };
    let changelog = |msg: &str| Some(super::updates::changelog_of(msg, polis_id, &now));
    let tf = |e: transform::TransformError| SimError::Invalid(e.to_string());
    // v2: the first-time root rotation, signed by the initial and the new root key.
    let mut draft = v1.clone();
    draft.version = 2;
    draft.changelog = changelog("Rotate TUF root offline signing key");
    let rotated = transform::rotate_offline_root_key(
        &draft,
        initial.keyid(),
        offline_root.public_key(),
        owner(),
        &now,
    )
    .map_err(tf)?;
    let (ci2, prod2) = transform::finalize(&rotated, None);
    let ci2 = transform::sign_root(&ci2, &[&offline_root, initial]).map_err(tf)?;
    let prod2 = transform::sign_root(&prod2, &[&offline_root, initial]).map_err(tf)?;
    // v3: the first offline targets key, signed by the root key.
    let mut draft = ci2.signed.clone();
    draft.version = 3;
    draft.changelog = changelog("Rotate TUF targets offline signing key");
    let rotated = transform::rotate_offline_targets_key(
        &draft,
        None,
        offline_targets.public_key(),
        owner(),
        online_targets,
    )
    .map_err(tf)?;
    let (ci3, prod3) = transform::finalize(&rotated, Some(&prod2.signed));
    let ci3 = transform::sign_root(&ci3, &[&offline_root]).map_err(tf)?;
    let prod3 = transform::sign_root(&prod3, &[&offline_root]).map_err(tf)?;
    for (version, ci, prod) in [(2, &ci2, &prod2), (3, &ci3, &prod3)] {
        let text = |r: &shared::metadata::SignedRoot| -> Result<String, SimError> {
            Ok(String::from_utf8_lossy(&r.to_canonical()?).into_owned())
        };
        chain.push(ChainEntry {
            version,
            ci: text(ci)?,
            prod: Some(text(prod)?),
        });
    }
    // The admin's keys tarballs, as fioctl leaves them.
    let tar_err = |p: &Path, e: shared::tarball::TarballError| {
        SimError::Invalid(format!("{}: {e}", p.display()))
    };
    let mut rk = KeysTarball::new();
    rk.add_first_root(&v1.keys[initial.keyid()].to_json(), &initial.to_json())
        .map_err(|e| tar_err(&root_keys, e))?;
    rk.add_private_key(shared::metadata::Role::Root, &offline_root)
        .map_err(|e| tar_err(&root_keys, e))?;
    rk.write_new(&root_keys)
        .map_err(|e| tar_err(&root_keys, e))?;
    let mut tk = KeysTarball::new();
    tk.add_private_key(shared::metadata::Role::Targets, &offline_targets)
        .map_err(|e| tar_err(&targets_keys, e))?;
    tk.write_new(&targets_keys)
        .map_err(|e| tar_err(&targets_keys, e))?;
    Ok((
        OfflineHistory {
            root_keys,
            targets_keys,
            root_keyid: offline_root.keyid().clone(),
            targets_keyid: offline_targets.keyid().clone(),
        },
        offline_targets,
    ))
}

/// The CI targets manifest and its signature by the online targets key.
pub(crate) fn ci_manifest(
    written_builds: u64,
    length: u64,
    sha256: &str,
) -> Result<Vec<u8>, SimError> {
    Ok(canonical::to_canonical(&json!({
        "_type": "CiTargets", "builds": written_builds, "length": length, "sha256": sha256,
    }))?)
}

/// Creates a factory in `opts.state_dir` (refused if it exists or the token is taken).
pub fn init_factory(opts: &InitOptions) -> Result<InitReport, SimError> {
    check_factory_name(&opts.factory)?;
    if opts.token.is_empty() {
        return Err(SimError::Invalid("the API token must not be empty".into()));
    }
    if opts.tags > 0 && opts.targets < 1 {
        return Err(SimError::Invalid(
            "production tags need at least one build (--targets)".into(),
        ));
    }
    if opts.waves > opts.tags {
        return Err(SimError::Invalid(format!(
            "--waves {} needs at least as many production tags (--tags {}): one active wave per tag",
            opts.waves, opts.tags
        )));
    }
    if opts.tags > 0 && opts.prod_behind >= opts.targets {
        return Err(SimError::Invalid(
            "production tags need at least one build older than --prod-behind".into(),
        ));
    }
    if opts.waves > 0 && opts.targets.saturating_sub(opts.prod_behind) < 2 {
        return Err(SimError::Invalid(
            "waves need at least two builds (--targets 2)".into(),
        ));
    }
    if (opts.tags > 0 || opts.waves > 0)
        && opts.offline_keys.is_none()
        && !opts.legacy_online_only_tags
    {
        return Err(SimError::Invalid(
            "production tags and waves exist only after a factory went offline with an offline targets key (production targets come from waves, which need offline signatures): give --offline-keys DIR so that init takes the factory offline first and writes the keys tarballs there (or --legacy-online-only-tags for the legacy state of online-only tags)".into(),
        ));
    }
    if opts.offline_keys.is_some() && opts.legacy_online_only_tags {
        return Err(SimError::Invalid(
            "--offline-keys and --legacy-online-only-tags exclude each other".into(),
        ));
    }
    if opts.hardware_ids == 0 {
        return Err(SimError::Invalid(
            "--hardware-ids must be at least 1".into(),
        ));
    }
    let dir = Factory::dir_of(&opts.state_dir, &opts.factory);
    if dir.join("factory.json").exists() {
        return Err(SimError::Invalid(format!(
            "factory {:?} already exists in {}",
            opts.factory,
            opts.state_dir.display()
        )));
    }
    ensure_token_free(&opts.state_dir, &opts.token)?;

    let seeds = Seeds::new(opts.seed, &opts.factory);
    let now = opts.now.unwrap_or_else(Timestamp::now);
    let root_key = seeds.key("root");
    let targets_key = seeds.key("targets");
    let snapshot_key = seeds.key("snapshot");
    let timestamp_key = seeds.key("timestamp");
    let polis_id = opts
        .polis_id
        .clone()
        .unwrap_or_else(|| hex_bytes(&mut seeds.rng("polis-id", 0), 12));

    // Root v1, signed by the initial (server-held) root key.
    let mut keys = BTreeMap::new();
    let mut roles = BTreeMap::new();
    for (role, key) in [
        ("root", &root_key),
        ("targets", &targets_key),
        ("snapshot", &snapshot_key),
        ("timestamp", &timestamp_key),
    ] {
        keys.insert(key.keyid().clone(), key.public_key().clone());
        roles.insert(
            role.to_string(),
            RoleKeys {
                keyids: vec![key.keyid().clone()],
                threshold: 1,
                extra: Default::default(),
            },
        );
    }
    let root = Root {
        type_: "Root".to_string(),
        consistent_snapshot: false,
        expires: now.plus_days(opts.root_expires_days),
        keys,
        roles,
        version: 1,
        changelog: None,
        key_owners: None,
        extra: Default::default(),
    };
    let sig = root_key.sign(&canonical::to_canonical(&root)?);
    let root_doc = RootDoc::from_parts(&root, vec![sig]).map_err(SimError::Invalid)?;
    let mut chain = vec![ChainEntry {
        version: 1,
        ci: root_doc.text,
        prod: None,
    }];
    // The history of a factory that went offline: what its admin ran with fioctl.
    let offline = match &opts.offline_keys {
        Some(dir) => Some(take_offline(
            dir,
            &seeds,
            &root,
            (&root_key, targets_key.keyid()),
            &polis_id,
            now,
            &mut chain,
        )?),
        None => None,
    };
    let offline_targets = offline.as_ref().map(|(_, t)| t);

    // CI targets, streamed build by build.
    let builds = Builds {
        seeds: &seeds,
        factory: &opts.factory,
        hardware_ids: opts.hardware_ids,
        apps: opts.apps,
        count: opts.targets,
        now,
    };
    store::create_dir(&dir)?;
    let written = ci::write(&dir, 1..=opts.targets, |v| {
        Ok(canonical::to_canonical(&builds.targets(v, &["main"]))?)
    })?;
    let manifest = ci_manifest(written.builds, written.length, &written.sha256)?;
    let ci = CiRecord {
        builds: written.builds,
        signatures: vec![targets_key.sign(&manifest)],
        manifest: String::from_utf8_lossy(&manifest).into_owned(),
    };

    // Production tags and waves, signed by the online and (but for the legacy state) the
    // offline targets key.
    let tag_signers: Vec<&PrivateKey> = std::iter::once(&targets_key)
        .chain(offline_targets)
        .collect();
    let blobs = Blobs::new(dir.join("blobs"));
    let expires = now.plus_days(opts.targets_expires_days).to_string();
    let mut tags = BTreeMap::new();
    let mut waves = Vec::new();
    for i in 0..opts.tags {
        let tag = tag_name(i);
        let with_wave = i < opts.waves;
        let newest = opts.targets.saturating_sub(opts.prod_behind).max(1);
        let pv = if with_wave { newest - 1 } else { newest };
        let first = pv.saturating_sub(opts.prod_window.max(1) - 1).max(1);
        let mut targets = Map::new();
        for v in first..=pv {
            targets.extend(builds.targets(v, &[tag.as_str()]));
        }
        let doc = signed_targets(
            &json!({"_type": "Targets", "expires": expires, "targets": targets, "version": pv}),
            &tag_signers,
        )?;
        tags.insert(
            tag.clone(),
            TagRecord {
                blob: blobs.put(&doc.to_bytes())?,
                version: pv,
            },
        );
        if with_wave {
            let wv = opts.targets;
            targets.extend(builds.targets(wv, &[tag.as_str()]));
            let doc = signed_targets(
                &json!({"_type": "Targets", "expires": expires, "targets": targets, "version": wv}),
                &tag_signers,
            )?;
            waves.push(WaveRecord {
                name: format!("{tag}-v{wv}"),
                version: wv.to_string(),
                tag: tag.clone(),
                status: WaveStatus::Active,
                blob: blobs.put(&doc.to_bytes())?,
                created_by: polis_id.clone(),
                created_at: now,
                updated_by: polis_id.clone(),
                updated_at: now,
                rollouts: Vec::new(),
            });
        }
    }

    let online = OnlineKeyIds {
        targets: targets_key.keyid().clone(),
        snapshot: snapshot_key.keyid().clone(),
        timestamp: timestamp_key.keyid().clone(),
    };
    let mut server_keys = BTreeMap::new();
    // The server forgets the initial root key once the factory took its root offline.
    let held: Vec<&PrivateKey> = if offline.is_some() {
        vec![&targets_key, &snapshot_key, &timestamp_key]
    } else {
        vec![&root_key, &targets_key, &snapshot_key, &timestamp_key]
    };
    for k in held {
        server_keys.insert(
            k.keyid().clone(),
            String::from_utf8_lossy(&k.to_json()).into_owned(),
        );
    }
    let rec = FactoryRecord {
        format: FORMAT,
        name: opts.factory.clone(),
        created_at: now,
        users: vec![UserRecord {
            token_sha256: store::sha256_hex(opts.token.as_bytes()),
            polis_id: polis_id.clone(),
            name: opts.user_name.clone(),
            role: "admin".to_string(),
        }],
        server_keys,
        initial_root_keyid: root_key.keyid().clone(),
        root_offline: offline.is_some(),
        online: online.clone(),
        chain,
        tags,
        waves,
        ci,
        tx: None,
        devices: devices(opts),
    };
    state::write_record(&dir, &rec)?;
    Ok(InitReport {
        factory: opts.factory.clone(),
        polis_id,
        root_keyid: root_key.keyid().clone(),
        online_keys: online,
        builds: written.builds,
        ci_targets_bytes: written.length,
        tags: rec.tags.keys().cloned().collect(),
        waves: rec.waves.iter().map(|w| w.name.clone()).collect(),
        offline: offline.map(|(h, _)| h),
    })
}

/// Refuses a token that a user of any factory in `state_dir` already has.
fn ensure_token_free(state_dir: &Path, token: &str) -> Result<(), SimError> {
    for name in factory_names(state_dir)? {
        if Factory::load(state_dir, &name)?
            .rec
            .user_by_token(token)
            .is_some()
        {
            return Err(SimError::Invalid(format!(
                "this token already belongs to a user of factory {name:?}"
            )));
        }
    }
    Ok(())
}

/// Adds a user (another admin with its own token) to an existing factory. Do it while no
/// server runs on the state directory (a running server does not see the new token).
pub fn add_user(
    state_dir: &Path,
    factory: &str,
    token: &str,
    name: &str,
    polis_id: &str,
) -> Result<(), SimError> {
    if token.is_empty() || polis_id.is_empty() {
        return Err(SimError::Invalid(
            "token and polis-id must not be empty".into(),
        ));
    }
    let mut f = Factory::load(state_dir, factory)?;
    ensure_token_free(state_dir, token)?;
    if f.rec.users.iter().any(|u| u.polis_id == polis_id) {
        return Err(SimError::Invalid(format!(
            "factory {factory:?} already has a user {polis_id:?}"
        )));
    }
    let mut rec = f.rec.clone();
    rec.users.push(UserRecord {
        token_sha256: store::sha256_hex(token.as_bytes()),
        polis_id: polis_id.to_string(),
        name: name.to_string(),
        role: "admin".to_string(),
    });
    f.commit(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_reproducible_and_distinct() {
        let a = Seeds::new(7, "acme");
        let b = Seeds::new(7, "acme");
        let c = Seeds::new(7, "other");
        assert_eq!(a.key("root").keyid(), b.key("root").keyid());
        assert_ne!(a.key("root").keyid(), a.key("targets").keyid());
        assert_ne!(a.key("root").keyid(), c.key("root").keyid());
    }

    #[test]
    fn builds_have_realistic_custom_data() {
        let seeds = Seeds::new(1, "acme");
        let b = Builds {
            seeds: &seeds,
            factory: "acme",
            hardware_ids: 2,
            apps: 3,
            count: 10,
            now: Timestamp::from_unix(1_800_000_000),
        };
        let t = b.targets(4, &["main"]);
        assert_eq!(t.len(), 2);
        let meta = &t["raspberrypi4-64-lmp-4"];
        assert_eq!(meta["custom"]["version"], "4");
        assert_eq!(meta["custom"]["hardwareIds"][0], "raspberrypi4-64");
        assert_eq!(
            meta["custom"]["docker_compose_apps"]
                .as_object()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(meta["hashes"]["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(b.targets(4, &["main"]), t);
    }
}
