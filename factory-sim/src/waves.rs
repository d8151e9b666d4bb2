//! Waves: create (offline-signed targets for one tag), show, sign, roll out, complete, cancel,
//! list.
//!
//! Rollout and completion need the wave's targets to meet the current production root's
//! targets threshold (fioctl's `waves sign` help: "you cannot roll out or complete a wave
//! before it has enough signatures"); otherwise 422 naming how many signatures it has.
//!
//! `POST waves/{wave}/rollout/` (body: `group`, `limit`, `percentage`, `uuids`, `dry-run`,
//! `return-uuids`, `return-names`, fioctl's `WaveRolloutOptions`) picks production devices
//! of the wave's tag: in `group` if given (404 for a group no device is in), among `uuids`
//! if given (422 for a UUID that is no device of the tag, or not in the group), never one the
//! wave was rolled out to before, then the first `limit` of them by name or `percentage` %
//! (rounded down). At least one of the four is required; `limit` and `percentage` exclude
//! each other; `limit` 1–10000, `percentage` 1–100, at most 10000 UUIDs of at most 60
//! characters (400 otherwise). The wave must be active (409). The answer is the wave plus
//! `device-num` and, when asked, `device-uuids` / `device-names`; `dry-run` changes nothing.
//! The rollouts show in the wave's `rollout-history` and `rollout-groups`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use shared::keys::Signature;
use shared::metadata::{Role, SignedRoot, Targets, Timestamp};
use shared::transaction::TxStatus;

use super::docs::TargetsDoc;
use super::error::ApiError;
use super::reply::Reply;
use super::state::{
    DeviceRecord, Factory, FactoryRecord, RolloutRecord, TagRecord, UserRecord, WaveRecord,
    WaveStatus,
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
    let offline = root.offline_targets_keys([&rec.online.targets]);
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
        rollouts: Vec::new(),
    });
    f.commit(rec)?;
    let w = &f.rec.waves[f.rec.waves.len() - 1];
    Ok(Reply::Json(StatusCode::CREATED, wave_json(w)))
}

/// A wave without its targets.
fn wave_json(w: &WaveRecord) -> serde_json::Value {
    let history: Vec<serde_json::Value> = w
        .rollouts
        .iter()
        .map(|r| {
            json!({
                "group-name": r.group.clone().unwrap_or_default(),
                "rollout-by": r.by, "rollout-at": r.at,
                "is-full-group": r.full_group, "is-factory-wide": r.group.is_none(),
                "num-devices": r.devices.len(),
            })
        })
        .collect();
    let mut groups = serde_json::Map::new();
    for r in &w.rollouts {
        if let Some(g) = &r.group {
            groups.entry(g.clone()).or_insert_with(|| {
                json!({"group-id": groups_id(g), "group-name": g, "created-at": r.at, "created-by": r.by})
            });
        }
    }
    json!({
        "name": w.name,
        "version": w.version,
        "tag": w.tag,
        "status": w.status.as_str(),
        "rollout-groups": groups,
        "rollout-history": history,
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

/// A stable small id for a device group name.
fn groups_id(name: &str) -> u64 {
    name.bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 100_000
}

/// Refuses (422) unless the wave's targets meet the current production root's targets
/// threshold: a wave is rolled out or completed only with enough signatures.
fn require_threshold(f: &Factory, w: &WaveRecord, doing: &str) -> Result<(), ApiError> {
    let doc = TargetsDoc::parse_stored(&f.blobs().get(&w.blob)?).map_err(ApiError::internal)?;
    let root = current_prod_root(&f.rec)?.signed;
    let need = root.threshold(Role::Targets);
    let have = valid_signers(
        &root.keys,
        root.role_keyids(Role::Targets),
        &doc.signed_bytes,
        &doc.signatures,
    )
    .len() as u64;
    if have < need {
        return Err(ApiError::invalid(
            format!("Wave {} cannot be {doing} before it has enough signatures", w.name),
            vec![format!(
                "its targets carry {have} of the {need} valid signatures the production root requires; sign them with another offline targets key (waves sign)"
            )],
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutBody {
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    percentage: Option<u64>,
    #[serde(default)]
    uuids: Option<Vec<String>>,
    #[serde(rename = "dry-run", default)]
    dry_run: bool,
    #[serde(rename = "return-uuids", default)]
    return_uuids: bool,
    #[serde(rename = "return-names", default)]
    return_names: bool,
}

/// Most devices one rollout may name or reach.
const MAX_ROLLOUT: u64 = 10_000;

/// `POST /ota/factories/{F}/waves/{wave}/rollout/` (see the module docs).
pub(crate) fn rollout(
    f: &mut Factory,
    user: &UserRecord,
    name: &str,
    body: &[u8],
    now: &Timestamp,
) -> Result<Reply, ApiError> {
    let body: RolloutBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid rollout body: {e}")))?;
    let (i, w) = active(f, name)?;
    let group = body.group.filter(|g| !g.is_empty());
    let uuids = body.uuids.unwrap_or_default();
    if group.is_none() && body.limit.is_none() && body.percentage.is_none() && uuids.is_empty() {
        return Err(ApiError::bad_request(
            "One of the following must be set: group, limit, percentage, uuids",
        ));
    }
    if body.limit.is_some() && body.percentage.is_some() {
        return Err(ApiError::bad_request(
            "limit and percentage exclude each other",
        ));
    }
    if body.limit.is_some_and(|l| l == 0 || l > MAX_ROLLOUT) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_ROLLOUT}"
        )));
    }
    if body.percentage.is_some_and(|p| p == 0 || p > 100) {
        return Err(ApiError::bad_request("percentage must be 1 to 100"));
    }
    if uuids.len() as u64 > MAX_ROLLOUT
        || uuids.iter().any(|u| u.is_empty() || u.chars().count() > 60)
    {
        return Err(ApiError::bad_request(format!(
            "uuids: at most {MAX_ROLLOUT} device UUIDs of 1 to 60 characters"
        )));
    }
    if let Some(g) = &group {
        if !f.rec.devices.iter().any(|d| d.group.as_ref() == Some(g)) {
            return Err(ApiError::not_found(format!("Device group {g} not found")));
        }
    }
    let mut errors = Vec::new();
    for u in &uuids {
        match f.rec.devices.iter().find(|d| &d.uuid == u) {
            None => errors.push(format!("device {u} is not a device of this factory")),
            Some(d) if d.tag != w.tag => errors.push(format!(
                "device {u} follows tag {}, not the wave's tag {}",
                d.tag, w.tag
            )),
            Some(d) if group.is_some() && d.group != group => errors.push(format!(
                "device {u} is not in device group {}",
                group.as_deref().unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid("Invalid rollout devices", errors));
    }
    require_threshold(f, w, "rolled out")?;
    let done: BTreeSet<&str> = w
        .rollouts
        .iter()
        .flat_map(|r| r.devices.iter().map(String::as_str))
        .collect();
    let mut chosen: Vec<&DeviceRecord> = f
        .rec
        .devices
        .iter()
        .filter(|d| d.tag == w.tag && !done.contains(d.uuid.as_str()))
        .filter(|d| group.is_none() || d.group == group)
        .filter(|d| uuids.is_empty() || uuids.contains(&d.uuid))
        .collect();
    chosen.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(l) = body.limit {
        chosen.truncate(l as usize);
    }
    if let Some(p) = body.percentage {
        let n = chosen.len() * p as usize / 100;
        chosen.truncate(n);
    }
    let uuids_out: Vec<String> = chosen.iter().map(|d| d.uuid.clone()).collect();
    let names_out: Vec<String> = chosen.iter().map(|d| d.name.clone()).collect();
    let full_group =
        group.is_some() && uuids.is_empty() && body.limit.is_none() && body.percentage.is_none();
    let mut answer = if body.dry_run {
        wave_json(w)
    } else {
        let mut rec = f.rec.clone();
        rec.waves[i].rollouts.push(RolloutRecord {
            group: group.clone(),
            devices: uuids_out.clone(),
            full_group,
            by: user.polis_id.clone(),
            at: *now,
        });
        rec.waves[i].updated_by = user.polis_id.clone();
        rec.waves[i].updated_at = *now;
        f.commit(rec)?;
        wave_json(&f.rec.waves[i])
    };
    if let Some(o) = answer.as_object_mut() {
        o.insert("device-num".into(), json!(uuids_out.len()));
        o.insert(
            "device-uuids".into(),
            if body.return_uuids {
                json!(uuids_out)
            } else {
                serde_json::Value::Null
            },
        );
        o.insert(
            "device-names".into(),
            if body.return_names {
                json!(names_out)
            } else {
                serde_json::Value::Null
            },
        );
    }
    Ok(Reply::ok(answer))
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
    require_threshold(f, w, "completed")?;
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
