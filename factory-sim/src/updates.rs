//! Root-update transactions (`R/root/updates` and its sub-resources), as in
//! `foundries-api.md` §5: init, get, put, gen-online-keys, apply, cancel.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use shared::keys::{KeyType, PrivateKey, Signature};
use shared::metadata::{Role, Root, Timestamp};
use shared::transaction::{ChangeMeta, Issue, Issues, RootPair, Transaction, TxStatus};

use super::docs::{RootDoc, TargetsDoc};
use super::error::ApiError;
use super::reply::Reply;
use super::state::{Factory, FactoryRecord, TxRecord, UserRecord, WaveStatus};
use super::validate::{self, Context, DocKind, MIN_PROD_TARGETS_THRESHOLD};

fn parse_stored(text: &str) -> Result<RootDoc, ApiError> {
    RootDoc::parse(text.as_bytes())
        .map_err(|e| ApiError::internal(format!("stored root does not parse: {e}")))
}

fn no_tx() -> ApiError {
    ApiError::not_found("There are no TUF root updates in progress")
}

/// The open transaction, which must be `STARTED` (staging allowed).
fn started(rec: &FactoryRecord) -> Result<&TxRecord, ApiError> {
    let tx = rec.tx.as_ref().ok_or_else(no_tx)?;
    if tx.status == TxStatus::Applying {
        return Err(ApiError::conflict(
            "No modifications to TUF root updates allowed while they are being applied",
        ));
    }
    Ok(tx)
}

/// The txid rule: the right txid, or an empty one from the user who started the transaction.
fn check_txid(tx: &TxRecord, given: &str, user: &UserRecord) -> Result<(), ApiError> {
    if given == tx.txid || (given.is_empty() && user.polis_id == tx.initiator) {
        Ok(())
    } else if given.is_empty() {
        Err(ApiError::bad_request(
            "txid is required: only the user who started the TUF root updates may omit it",
        ))
    } else {
        Err(ApiError::bad_request(
            "txid does not match the TUF root updates in progress",
        ))
    }
}

fn bad_json(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid {what} body: {e}"))
}

fn commit(f: &mut Factory, rec: FactoryRecord) -> Result<(), ApiError> {
    f.commit(rec).map_err(ApiError::from)
}

/// `GET R/root/updates`: the transaction in the API's wire form
/// ([`shared::transaction::Transaction`], what the courier reads and a request bundle
/// carries), with the server's amendments and findings.
pub(crate) fn get(f: &Factory, now: &Timestamp) -> Result<Reply, ApiError> {
    let rec = &f.rec;
    let current = RootPair {
        ci_root: rec.current_ci().to_string(),
        prod_root: rec.current_prod().unwrap_or("").to_string(),
        online_keys: rec.online.to_map(),
        extra: BTreeMap::new(),
    };
    let answer = match &rec.tx {
        None => Transaction {
            status: TxStatus::None,
            first_time: false,
            current: Some(current),
            updated: None,
            change_meta: None,
            amendments: Vec::new(),
            issues: Issues {
                errors: Vec::new(),
                warnings: validate::current_warnings(rec, now),
            },
            extra: BTreeMap::new(),
        },
        Some(tx) => {
            let ctx = Context::new(rec, tx)?;
            let ci = parse_stored(&tx.ci)?;
            let prod = tx.prod.as_deref().map(parse_stored).transpose()?;
            let (issues, _) = validate::review(&ctx, &ci, prod.as_ref(), &f.blobs(), now)?;
            Transaction {
                status: tx.status,
                first_time: tx.first_time,
                current: Some(current),
                updated: Some(RootPair {
                    ci_root: tx.ci.clone(),
                    prod_root: tx.prod.clone().unwrap_or_default(),
                    online_keys: tx.online.to_map(),
                    extra: BTreeMap::new(),
                }),
                change_meta: Some(ChangeMeta {
                    created_by: tx.created_by.clone(),
                    created_at: tx.created_at.to_string(),
                    updated_by: tx.updated_by.clone(),
                    updated_at: tx.updated_at.to_string(),
                    extra: BTreeMap::new(),
                }),
                amendments: validate::amendments(&ctx, &ci, prod.as_ref()),
                issues,
                extra: BTreeMap::new(),
            }
        }
    };
    serde_json::to_value(&answer)
        .map(Reply::ok)
        .map_err(|e| ApiError::internal(e.to_string()))
}

#[derive(Deserialize)]
struct InitBody {
    #[serde(default)]
    message: String,
    #[serde(rename = "first-time", default)]
    first_time: bool,
    #[serde(default)]
    shortcut: bool,
}

#[derive(Serialize)]
struct InitResponse {
    txid: String,
    #[serde(rename = "first_root.sec")]
    sec: Option<Box<RawValue>>,
    #[serde(rename = "first_root.pub")]
    public: Option<Box<RawValue>>,
}

/// The `x-changelog` the server puts into a staged root.
pub(crate) fn changelog_of(message: &str, polis_id: &str, now: &Timestamp) -> serde_json::Value {
    json!({"polis-id": polis_id, "message": message, "timestamp": now.to_string()})
}

/// The next version of `root` with the server's changelog and no signatures.
fn next_version(root: &Root, changelog: &serde_json::Value) -> Result<RootDoc, ApiError> {
    let mut next = root.clone();
    next.version += 1;
    next.changelog = Some(changelog.clone());
    RootDoc::from_parts(&next, Vec::new()).map_err(ApiError::internal)
}

/// `POST R/root/updates`.
pub(crate) fn init(
    f: &mut Factory,
    user: &UserRecord,
    body: &[u8],
    now: &Timestamp,
) -> Result<Reply, ApiError> {
    let body: InitBody = serde_json::from_slice(body).map_err(|e| bad_json("init", e))?;
    if body.message.trim().is_empty() {
        return Err(ApiError::bad_request(
            "message is required: describe the change for the changelog",
        ));
    }
    if f.rec.tx.is_some() {
        return Err(ApiError::conflict(
            "A TUF root updates transaction is already in progress",
        ));
    }
    if body.first_time && f.rec.root_offline {
        return Err(ApiError::invalid(
            "The TUF root key of this factory is already offline",
            vec![
                "first-time is only allowed for the first rotation of the initial root key".into(),
            ],
        ));
    }
    if !body.first_time && !f.rec.root_offline {
        return Err(ApiError::invalid(
            "The TUF root key of this factory is still the initial online key",
            vec!["take it offline first: start the transaction with first-time".into()],
        ));
    }
    let cur_ci = parse_stored(f.rec.current_ci())?;
    let cur_prod = f.rec.current_prod().map(parse_stored).transpose()?;
    let changelog = changelog_of(&body.message, &user.polis_id, now);
    let ci = next_version(cur_ci.root(), &changelog)?;
    let prod = cur_prod
        .map(|p| next_version(p.root(), &changelog))
        .transpose()?;
    let txid = hex::encode(rand::random::<[u8; 20]>());
    let (sec, public) = if body.first_time {
        let id = &f.rec.initial_root_keyid;
        let key = f.rec.server_key(id)?;
        let public = cur_ci
            .root()
            .keys
            .get(id)
            .map(|k| k.to_json())
            .unwrap_or_else(|| key.public_key().to_json());
        let raw = |b: Vec<u8>| RawValue::from_string(String::from_utf8_lossy(&b).into_owned()).ok();
        (raw(key.to_json().to_vec()), raw(public))
    } else {
        (None, None)
    };
    let mut rec = f.rec.clone();
    rec.tx = Some(TxRecord {
        txid: txid.clone(),
        status: TxStatus::Started,
        first_time: body.first_time,
        shortcut: body.shortcut,
        message: body.message,
        changelog,
        initiator: user.polis_id.clone(),
        created_by: user.polis_id.clone(),
        created_at: *now,
        updated_by: user.polis_id.clone(),
        updated_at: *now,
        ci: ci.text,
        prod: prod.map(|p| p.text),
        online: f.rec.online.clone(),
        rotated: Default::default(),
        new_keys: BTreeMap::new(),
        targets_signatures: BTreeMap::new(),
        waves_signatures: BTreeMap::new(),
    });
    commit(f, rec)?;
    let resp = InitResponse { txid, sec, public };
    Ok(Reply::Json(
        StatusCode::CREATED,
        serde_json::to_value(resp).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}

#[derive(Deserialize)]
struct PutBody<'a> {
    #[serde(default)]
    txid: String,
    #[serde(rename = "ci-root", borrow, default)]
    ci: Option<&'a RawValue>,
    #[serde(rename = "prod-root", borrow, default)]
    prod: Option<&'a RawValue>,
    #[serde(rename = "targets-signatures", default)]
    targets: Option<BTreeMap<String, Vec<Signature>>>,
    #[serde(rename = "waves-signatures", default)]
    waves: Option<BTreeMap<String, Vec<Signature>>>,
}

fn problems(list: Vec<Issue>) -> Vec<String> {
    list.into_iter().map(|i| i.message).collect()
}

/// Checks uploaded production/wave targets signatures against the staged production root.
fn check_target_sigs(
    f: &Factory,
    tx: &TxRecord,
    prod: &Root,
    kind: DocKind,
    sigs: &BTreeMap<String, Vec<Signature>>,
    out: &mut Vec<String>,
) -> Result<(), ApiError> {
    let offline = prod.offline_targets_keys([&tx.online.targets]);
    for (name, list) in sigs {
        let blob = match kind {
            DocKind::Tag => f.rec.tags.get(name).map(|t| t.blob.clone()),
            DocKind::Wave => f
                .rec
                .waves
                .iter()
                .find(|w| &w.name == name && w.status == WaveStatus::Active)
                .map(|w| w.blob.clone()),
        };
        let what = match kind {
            DocKind::Tag => format!("production targets of tag {name}"),
            DocKind::Wave => format!("targets of wave {name}"),
        };
        let Some(blob) = blob else {
            out.push(format!(
                "{what}: no such {}",
                if kind == DocKind::Tag {
                    "tag"
                } else {
                    "active wave"
                }
            ));
            continue;
        };
        let doc = TargetsDoc::parse_stored(&f.blobs().get(&blob)?).map_err(ApiError::internal)?;
        for sig in list {
            if !offline.contains(&sig.keyid) {
                out.push(format!(
                    "{what}: signature by key {}, which is not an offline targets key of the staged production root",
                    sig.keyid
                ));
                continue;
            }
            let Some(key) = prod.keys.get(&sig.keyid) else {
                out.push(format!(
                    "{what}: key {} is not in the staged production root's keys",
                    sig.keyid
                ));
                continue;
            };
            if let Err(e) = key.verify(&doc.signed_bytes, sig) {
                out.push(format!("{what}: {e} over the canonical signed bytes"));
            }
        }
    }
    Ok(())
}

/// `PUT R/root/updates`.
pub(crate) fn put(
    f: &mut Factory,
    user: &UserRecord,
    body: &[u8],
    now: &Timestamp,
) -> Result<Reply, ApiError> {
    let body: PutBody<'_> = serde_json::from_slice(body).map_err(|e| bad_json("upload", e))?;
    let tx = started(&f.rec)?;
    check_txid(tx, &body.txid, user)?;
    let (Some(ci), Some(prod)) = (body.ci, body.prod) else {
        return Err(ApiError::bad_request(
            "both ci-root and prod-root are required",
        ));
    };
    let ci = RootDoc::parse(ci.get().as_bytes())
        .map_err(|e| ApiError::invalid("Invalid CI root", vec![format!("ci-root: {e}")]))?;
    let prod = RootDoc::parse(prod.get().as_bytes()).map_err(|e| {
        ApiError::invalid("Invalid production root", vec![format!("prod-root: {e}")])
    })?;
    let ctx = Context::new(&f.rec, tx)?;
    let mut errors = problems(validate::check_upload(&ctx, &ci, &prod));
    let targets = body.targets.unwrap_or_default();
    let waves = body.waves.unwrap_or_default();
    check_target_sigs(f, tx, prod.root(), DocKind::Tag, &targets, &mut errors)?;
    check_target_sigs(f, tx, prod.root(), DocKind::Wave, &waves, &mut errors)?;
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            "The staged TUF root updates are invalid",
            errors,
        ));
    }
    let mut rec = f.rec.clone();
    let tx = rec.tx.as_mut().expect("checked above");
    tx.ci = ci.text;
    tx.prod = Some(prod.text);
    for (staged, new) in [
        (&mut tx.targets_signatures, targets),
        (&mut tx.waves_signatures, waves),
    ] {
        for (name, sigs) in new {
            shared::keys::merge_signatures(staged.entry(name).or_default(), sigs);
        }
    }
    tx.updated_by = user.polis_id.clone();
    tx.updated_at = *now;
    commit(f, rec)?;
    Ok(Reply::ok(json!({})))
}

/// `POST R/root/updates/gen-online-keys`.
pub(crate) fn gen_online_keys(
    f: &mut Factory,
    user: &UserRecord,
    body: &[u8],
    now: &Timestamp,
) -> Result<Reply, ApiError> {
    let body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| bad_json("gen-online-keys", e))?;
    let tx = started(&f.rec)?;
    check_txid(
        tx,
        body.get("txid").and_then(|v| v.as_str()).unwrap_or(""),
        user,
    )?;
    let key_type = match body.get("key-type").and_then(|v| v.as_str()) {
        None | Some("") => KeyType::Ed25519,
        Some(s) => KeyType::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
    };
    let roles: Vec<Role> = [Role::Targets, Role::Snapshot, Role::Timestamp]
        .into_iter()
        .filter(|r| body.get(r.as_str()).and_then(|v| v.as_bool()) == Some(true))
        .collect();
    if roles.is_empty() {
        return Err(ApiError::bad_request(
            "no role requested: set at least one of targets, snapshot, timestamp to true",
        ));
    }
    if let Some(w) = f.rec.waves.iter().find(|w| w.status == WaveStatus::Active) {
        return Err(ApiError::conflict(format!(
            "Online keys cannot be rotated while a wave is active (wave {})",
            w.name
        )));
    }
    let mut staged = parse_stored(&tx.ci)?.doc.signed;
    let prod_threshold = match (tx.prod.as_deref(), f.rec.current_prod()) {
        (Some(p), _) | (None, Some(p)) => Some(parse_stored(p)?.root().threshold(Role::Targets)),
        (None, None) => None,
    };
    let mut rec = f.rec.clone();
    let tx = rec.tx.as_mut().expect("checked above");
    for role in roles {
        let key = PrivateKey::generate(key_type).map_err(|e| ApiError::internal(e.to_string()))?;
        let new_id = key.keyid().clone();
        let slot = tx.online.get_mut(role).expect("online role");
        let old_id = std::mem::replace(slot, new_id.clone());
        if let Some(r) = staged.role_mut(role) {
            for id in r.keyids.iter_mut().filter(|id| **id == old_id) {
                *id = new_id.clone();
            }
        }
        staged.keys.insert(new_id.clone(), key.public_key().clone());
        if !staged.roles.values().any(|r| r.keyids.contains(&old_id)) {
            staged.keys.remove(&old_id);
            if let Some(owners) = staged.key_owners.as_mut() {
                owners.remove(&old_id);
            }
        }
        tx.new_keys.remove(&old_id);
        tx.new_keys
            .insert(new_id, String::from_utf8_lossy(&key.to_json()).into_owned());
        tx.rotated.insert(role);
    }
    let ci = RootDoc::from_parts(&staged, Vec::new()).map_err(ApiError::internal)?;
    tx.prod = match prod_threshold {
        Some(t) => {
            let mut p = staged.clone();
            if let Some(r) = p.role_mut(Role::Targets) {
                r.threshold = t.max(MIN_PROD_TARGETS_THRESHOLD);
            }
            Some(
                RootDoc::from_parts(&p, Vec::new())
                    .map_err(ApiError::internal)?
                    .text,
            )
        }
        None => None,
    };
    tx.ci = ci.text;
    tx.updated_by = user.polis_id.clone();
    tx.updated_at = *now;
    commit(f, rec)?;
    Ok(Reply::ok(json!({})))
}

#[derive(Deserialize)]
struct ApplyBody {
    #[serde(default)]
    txid: String,
}

/// `POST R/root/updates/apply`. With `interrupt` (a simulated fault) the transaction is
/// validated and moved to `APPLYING`, then the publish "fails" with 503: nothing is
/// published and a re-run of apply finishes the job.
pub(crate) fn apply(
    f: &mut Factory,
    user: &UserRecord,
    body: &[u8],
    interrupt: bool,
    now: &Timestamp,
) -> Result<Reply, ApiError> {
    let body: ApplyBody = if body.is_empty() {
        ApplyBody {
            txid: String::new(),
        }
    } else {
        serde_json::from_slice(body).map_err(|e| bad_json("apply", e))?
    };
    let tx = f.rec.tx.as_ref().ok_or_else(no_tx)?;
    check_txid(tx, &body.txid, user)?;
    let ctx = Context::new(&f.rec, tx)?;
    let ci = parse_stored(&tx.ci)?;
    let prod = tx.prod.as_deref().map(parse_stored).transpose()?;
    let (findings, projected) = validate::review(&ctx, &ci, prod.as_ref(), &f.blobs(), now)?;
    if !findings.errors.is_empty() {
        return Err(ApiError::invalid(
            "The staged TUF root updates cannot be applied",
            problems(findings.errors),
        ));
    }
    let prod = prod.expect("review requires a production root");
    if tx.status == TxStatus::Started {
        let mut rec = f.rec.clone();
        if let Some(t) = rec.tx.as_mut() {
            t.status = TxStatus::Applying;
            t.updated_by = user.polis_id.clone();
            t.updated_at = *now;
        }
        commit(f, rec)?;
    }
    if interrupt {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Publishing the TUF root updates was interrupted (simulated fault): re-run apply",
        ));
    }
    let blobs = f.blobs();
    let mut rec = f.rec.clone();
    let tx = rec.tx.take().expect("transaction present");
    for p in projected {
        let blob = blobs.put(&p.doc.to_bytes())?;
        match p.kind {
            DocKind::Tag => {
                if let Some(t) = rec.tags.get_mut(&p.name) {
                    t.blob = blob;
                }
            }
            DocKind::Wave => {
                if let Some(i) = rec.wave_index(&p.name) {
                    rec.waves[i].blob = blob;
                }
            }
        }
    }
    rec.server_keys.extend(tx.new_keys.clone());
    if tx.rotated.contains(&Role::Targets) {
        let key = rec.server_key(&tx.online.targets)?;
        rec.ci.signatures = vec![key.sign(rec.ci.manifest.as_bytes())];
    }
    rec.online = tx.online.clone();
    let new_root = ci.root();
    rec.root_offline = rec.root_offline
        || tx.first_time
        || !new_root
            .role_keyids(Role::Root)
            .contains(&rec.initial_root_keyid);
    // The server keeps only the keys it still needs.
    let initial = rec.initial_root_keyid.clone();
    let keep_initial = !rec.root_offline;
    let online = rec.online.clone();
    rec.server_keys
        .retain(|id, _| online.all().contains(&id) || (keep_initial && *id == initial));
    let version = new_root.version;
    rec.chain.push(super::state::ChainEntry {
        version,
        ci: ci.text,
        prod: Some(prod.text),
    });
    commit(f, rec)?;
    Ok(Reply::ok(json!({"version": version})))
}

/// `POST R/root/updates/cancel`.
pub(crate) fn cancel(f: &mut Factory) -> Result<Reply, ApiError> {
    let tx = f.rec.tx.as_ref().ok_or_else(no_tx)?;
    if tx.status == TxStatus::Applying {
        return Err(ApiError::conflict(
            "The TUF root updates are being applied and cannot be canceled: re-run apply",
        ));
    }
    let mut rec = f.rec.clone();
    rec.tx = None;
    commit(f, rec)?;
    Ok(Reply::ok(json!({})))
}
