//! Waves: create (offline-signed targets for one tag), show, sign, complete, cancel, list.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use shared::keys::{KeyId, Signature};
use shared::metadata::{Role, SignedRoot, Targets, Timestamp};

use super::docs::TargetsDoc;
use super::error::ApiError;
use super::reply::Reply;
use super::state::{
    Factory, FactoryRecord, TagRecord, TxStatus, UserRecord, WaveRecord, WaveStatus,
};
use super::validate::valid_signers;

/// The current production root (the CI root before the factory has one).
fn current_prod_root(rec: &FactoryRecord) -> Result<SignedRoot, ApiError> {
    let text = rec.current_prod().unwrap_or(rec.current_ci());
    SignedRoot::from_json(text.as_bytes()).map_err(|e| ApiError::internal(e.to_string()))
}

/// Checks offline targets signatures over `signed` against the current production root.
fn check_offline_sigs(
    rec: &FactoryRecord,
    signed: &[u8],
    sigs: &[Signature],
) -> Result<(), ApiError> {
    let root = current_prod_root(rec)?.signed;
    let offline: Vec<KeyId> = root
        .role_keyids(Role::Targets)
        .iter()
        .filter(|k| **k != rec.online.targets)
        .cloned()
        .collect();
    if offline.is_empty() {
        return Err(ApiError::invalid(
            "This factory has no offline targets key",
            vec!["rotate the offline targets key (rotate-offline-key --role targets) before creating or signing waves".into()],
        ));
    }
    if sigs.is_empty() {
        return Err(ApiError::invalid(
            "No signatures",
            vec!["at least one offline targets signature is required".into()],
        ));
    }
    let mut errors = Vec::new();
    for sig in sigs {
        if !offline.contains(&sig.keyid) {
            errors.push(format!(
                "signature by key {}, which is not an offline targets key of the current production root",
                sig.keyid
            ));
        } else if valid_signers(&root.keys, &offline, signed, std::slice::from_ref(sig)).is_empty()
        {
            errors.push(format!(
                "signature by key {} does not verify over the canonical signed targets",
                sig.keyid
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("Invalid wave targets signatures", errors))
    }
}

#[derive(Deserialize)]
struct CreateBody<'a> {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: serde_json::Value,
    #[serde(default)]
    tag: String,
    #[serde(borrow)]
    targets: &'a RawValue,
}

fn check_name(what: &str, s: &str) -> Result<(), ApiError> {
    if s.is_empty()
        || s.len() > 128
        || s.contains(['/', ',', '?', '#'])
        || s.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(format!(
            "invalid {what} {s:?}: 1-128 characters, no '/', ',', '?', '#' or control characters"
        )));
    }
    Ok(())
}

/// Every target the wave adds (not in the tag's production targets) must be a CI target with
/// the same length and hashes.
fn check_new_targets(
    f: &Factory,
    tag: Option<&TagRecord>,
    targets: &Targets,
) -> Result<Vec<String>, ApiError> {
    let prod: BTreeMap<String, serde_json::Value> = match tag {
        Some(t) => {
            let doc =
                TargetsDoc::parse_stored(&f.blobs().get(&t.blob)?).map_err(ApiError::internal)?;
            let v: serde_json::Value = serde_json::from_slice(&doc.signed_bytes)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            serde_json::from_value(v.get("targets").cloned().unwrap_or_default())
                .unwrap_or_default()
        }
        None => BTreeMap::new(),
    };
    let mut builds: HashMap<String, BTreeMap<String, serde_json::Value>> = HashMap::new();
    let mut errors = Vec::new();
    for (name, meta) in &targets.targets {
        if prod.contains_key(name) {
            continue;
        }
        let Some(version) = meta.build_version() else {
            errors.push(format!("target {name} has no custom.version"));
            continue;
        };
        if !builds.contains_key(version) {
            let map = match version
                .parse::<u64>()
                .ok()
                .map(|v| f.ci_build(v))
                .transpose()?
            {
                Some(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
                _ => BTreeMap::new(),
            };
            builds.insert(version.to_string(), map);
        }
        match builds[version].get(name) {
            Some(ci)
                if ci.get("length") == Some(&json!(meta.length))
                    && ci.get("hashes") == Some(&json!(meta.hashes)) => {}
            Some(_) => errors.push(format!(
                "target {name} differs from the CI target of that name (length or hashes)"
            )),
            None => errors.push(format!(
                "target {name} is not a CI target of build {version}"
            )),
        }
    }
    Ok(errors)
}

/// `POST /ota/factories/{F}/waves/`.
pub(crate) fn create(
    f: &mut Factory,
    user: &UserRecord,
    body: &[u8],
    now: &Timestamp,
) -> Result<Reply, ApiError> {
    let body: CreateBody<'_> = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid wave body: {e}")))?;
    check_name("wave name", &body.name)?;
    check_name("tag", &body.tag)?;
    let version_text = match &body.version {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let version: u64 = version_text
        .parse()
        .ok()
        .filter(|v| *v >= 1 && *v <= i32::MAX as u64)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "version must be a positive 32-bit integer, not {:?}",
                body.version
            ))
        })?;
    if let Some(tx) = &f.rec.tx {
        if !tx.rotated.is_empty() || tx.status == TxStatus::Applying {
            return Err(ApiError::conflict(
                "New waves cannot be created until the staged TUF root updates (online key rotation) are applied",
            ));
        }
    }
    if f.rec.wave_index(&body.name).is_some() {
        return Err(ApiError::conflict(format!(
            "A wave named {} already exists",
            body.name
        )));
    }
    if let Some(w) = f
        .rec
        .waves
        .iter()
        .find(|w| w.tag == body.tag && w.status == WaveStatus::Active)
    {
        return Err(ApiError::conflict(format!(
            "Wave {} is already active for tag {}: complete or cancel it first",
            w.name, body.tag
        )));
    }
    let doc = TargetsDoc::parse(body.targets.get().as_bytes())
        .map_err(|e| ApiError::invalid("Invalid wave targets", vec![e]))?;
    let targets = doc
        .targets()
        .map_err(|e| ApiError::invalid("Invalid wave targets", vec![e]))?;
    let mut errors = Vec::new();
    if targets.type_ != "Targets" {
        errors.push(format!(
            "signed._type must be \"Targets\", not {:?}",
            targets.type_
        ));
    }
    if targets.version != version {
        errors.push(format!(
            "signed.version {} differs from the wave version {version}",
            targets.version
        ));
    }
    if targets.expires <= *now {
        errors.push(format!(
            "the wave targets expire in the past ({})",
            targets.expires
        ));
    }
    let tag = f.rec.tags.get(&body.tag);
    if let Some(t) = tag {
        if version <= t.version {
            errors.push(format!(
                "Cannot create a Wave for a version lower than or equal to production Targets for the same tag ({} <= {})",
                version, t.version
            ));
        }
    }
    if !targets
        .targets
        .values()
        .any(|t| t.build_version() == Some(version_text.as_str()))
    {
        errors.push(format!(
            "the wave targets contain no target of version {version}"
        ));
    }
    errors.extend(check_new_targets(f, tag, &targets)?);
    if !errors.is_empty() {
        return Err(ApiError::invalid("Invalid wave", errors));
    }
    check_offline_sigs(&f.rec, &doc.signed_bytes, &doc.signatures)?;
    let online = f.rec.online_targets_key()?;
    let mut stored = TargetsDoc {
        signatures: vec![online.sign(&doc.signed_bytes)],
        signed_bytes: doc.signed_bytes.clone(),
    };
    for sig in doc.signatures {
        stored.merge(sig);
    }
    let blob = f.blobs().put(&stored.to_bytes())?;
    let mut rec = f.rec.clone();
    rec.waves.push(WaveRecord {
        name: body.name.clone(),
        version: version_text,
        tag: body.tag,
        status: WaveStatus::Active,
        blob,
        created_by: user.polis_id.clone(),
        created_at: *now,
        updated_by: user.polis_id.clone(),
        updated_at: *now,
    });
    f.commit(rec)?;
    let w = &f.rec.waves[f.rec.waves.len() - 1];
    Ok(Reply::Json(StatusCode::CREATED, wave_json(w)))
}

/// A wave without its targets.
fn wave_json(w: &WaveRecord) -> serde_json::Value {
    json!({
        "name": w.name,
        "version": w.version,
        "tag": w.tag,
        "status": w.status.as_str(),
        "rollout-groups": {},
        "rollout-history": [],
        "change-meta": {
            "created-by": w.created_by, "created-at": w.created_at,
            "updated-by": w.updated_by, "updated-at": w.updated_at,
        },
    })
}

#[derive(Serialize)]
struct WaveTargets<'a> {
    signed: Box<RawValue>,
    signatures: &'a [Signature],
}

fn find<'a>(f: &'a Factory, name: &str) -> Result<(usize, &'a WaveRecord), ApiError> {
    let i = f
        .rec
        .wave_index(name)
        .ok_or_else(|| ApiError::not_found(format!("Wave {name} not found")))?;
    Ok((i, &f.rec.waves[i]))
}

/// `GET /ota/factories/{F}/waves/{wave}/[?show-targets=1]` (targets.signed in canonical form).
pub(crate) fn get(f: &Factory, name: &str, show_targets: bool) -> Result<Reply, ApiError> {
    let (_, w) = find(f, name)?;
    let v = wave_json(w);
    if show_targets {
        let doc = TargetsDoc::parse_stored(&f.blobs().get(&w.blob)?).map_err(ApiError::internal)?;
        let t = WaveTargets {
            signed: doc.signed_raw(),
            signatures: &doc.signatures,
        };
        // Serialize through a string so `signed` keeps its exact canonical bytes.
        let mut out = serde_json::to_vec(&v).map_err(|e| ApiError::internal(e.to_string()))?;
        let targets = serde_json::to_vec(&t).map_err(|e| ApiError::internal(e.to_string()))?;
        out.pop();
        out.extend_from_slice(b",\"targets\":");
        out.extend_from_slice(&targets);
        out.push(b'}');
        return Ok(Reply::Raw(out));
    }
    Ok(Reply::ok(v))
}

#[derive(Deserialize)]
struct SignBody {
    #[serde(default)]
    signatures: Vec<Signature>,
}

fn active<'a>(f: &'a Factory, name: &str) -> Result<(usize, &'a WaveRecord), ApiError> {
    let (i, w) = find(f, name)?;
    if w.status != WaveStatus::Active {
        return Err(ApiError::conflict(format!(
            "Wave {name} is {}, not active",
            w.status.as_str()
        )));
    }
    Ok((i, w))
}

/// `POST /ota/factories/{F}/waves/{wave}/sign/`.
pub(crate) fn sign(
    f: &mut Factory,
    user: &UserRecord,
    name: &str,
    body: &[u8],
    now: &Timestamp,
) -> Result<Reply, ApiError> {
    let body: SignBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid sign body: {e}")))?;
    let (i, w) = active(f, name)?;
    let mut doc = TargetsDoc::parse_stored(&f.blobs().get(&w.blob)?).map_err(ApiError::internal)?;
    check_offline_sigs(&f.rec, &doc.signed_bytes, &body.signatures)?;
    for sig in body.signatures {
        doc.merge(sig);
    }
    let blob = f.blobs().put(&doc.to_bytes())?;
    let mut rec = f.rec.clone();
    let w = &mut rec.waves[i];
    w.blob = blob;
    w.updated_by = user.polis_id.clone();
    w.updated_at = *now;
    f.commit(rec)?;
    Ok(Reply::ok(json!({})))
}

/// `POST /ota/factories/{F}/waves/{wave}/complete/`: the wave targets become the tag's
/// production targets.
pub(crate) fn complete(
    f: &mut Factory,
    user: &UserRecord,
    name: &str,
    now: &Timestamp,
) -> Result<Reply, ApiError> {
    let (i, w) = active(f, name)?;
    let version: u64 = w.version.parse().unwrap_or(0);
    let tag = w.tag.clone();
    let blob = w.blob.clone();
    let mut rec = f.rec.clone();
    rec.tags.insert(tag, TagRecord { blob, version });
    let w = &mut rec.waves[i];
    w.status = WaveStatus::Complete;
    w.updated_by = user.polis_id.clone();
    w.updated_at = *now;
    f.commit(rec)?;
    Ok(Reply::ok(json!({})))
}

/// `POST /ota/factories/{F}/waves/{wave}/cancel/`.
pub(crate) fn cancel(
    f: &mut Factory,
    user: &UserRecord,
    name: &str,
    now: &Timestamp,
) -> Result<Reply, ApiError> {
    let (i, _) = active(f, name)?;
    let mut rec = f.rec.clone();
    let w = &mut rec.waves[i];
    w.status = WaveStatus::Canceled;
    w.updated_by = user.polis_id.clone();
    w.updated_at = *now;
    f.commit(rec)?;
    Ok(Reply::ok(json!({})))
}

/// `GET /ota/factories/{F}/waves/?limit=&page=&status=&tag=` (newest first).
pub(crate) fn list(
    f: &Factory,
    q: &HashMap<String, String>,
    path: &str,
) -> Result<Reply, ApiError> {
    let num = |k: &str, default: usize| -> Result<usize, ApiError> {
        match q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(s) => s.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                ApiError::bad_request(format!("{k} must be a positive integer, not {s:?}"))
            }),
        }
    };
    let limit = num("limit", 20)?;
    let page = num("page", 1)?;
    let status = q.get("status").map(|s| s.trim()).filter(|s| !s.is_empty());
    if let Some(s) = status {
        if !["active", "complete", "canceled"].contains(&s) {
            return Err(ApiError::bad_request(format!(
                "status must be active, complete or canceled, not {s:?}"
            )));
        }
    }
    let tag = q.get("tag").map(|s| s.trim()).filter(|s| !s.is_empty());
    let matching: Vec<&WaveRecord> = f
        .rec
        .waves
        .iter()
        .rev()
        .filter(|w| status.is_none_or(|s| w.status.as_str() == s))
        .filter(|w| tag.is_none_or(|t| w.tag == t))
        .collect();
    let total = matching.len();
    let waves: Vec<serde_json::Value> = matching
        .iter()
        .skip((page - 1).saturating_mul(limit))
        .take(limit)
        .map(|w| wave_json(w))
        .collect();
    let next = if page.saturating_mul(limit) < total {
        let mut query = format!("limit={limit}&page={}", page + 1);
        if let Some(s) = status {
            query.push_str(&format!("&status={s}"));
        }
        if let Some(t) = tag {
            query.push_str(&format!("&tag={t}"));
        }
        json!(format!("{path}?{query}"))
    } else {
        serde_json::Value::Null
    };
    Ok(Reply::ok(
        json!({"waves": waves, "total": total, "next": next}),
    ))
}
