//! Read-only endpoints: root versions, production/wave targets, the online targets key, CI
//! targets by version, and the caller's user record.

use std::collections::HashMap;

use serde_json::json;

use super::ci;
use super::error::ApiError;
use super::reply::{Reply, Segment};
use super::state::{Factory, UserRecord, WaveStatus};

/// `GET R/root.json` and `GET R/{N}.root.json`, with `production` selecting the production
/// chain (the CI root of a version is served for versions without a production root).
pub(crate) fn root_file(f: &Factory, file: &str, production: bool) -> Result<Reply, ApiError> {
    let entry = if file == "root.json" {
        Some(f.rec.latest())
    } else {
        let n = file
            .strip_suffix(".root.json")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| ApiError::not_found(format!("Not found: {file}")))?;
        f.rec.chain.iter().find(|e| e.version == n)
    };
    let entry =
        entry.ok_or_else(|| ApiError::not_found(format!("Root version not found: {file}")))?;
    let text = match (production, &entry.prod) {
        (true, Some(p)) => p,
        _ => &entry.ci,
    };
    Ok(Reply::Raw(text.as_bytes().to_vec()))
}

/// Splits a comma-joined query value; empty items are dropped.
fn list(q: &HashMap<String, String>, key: &str) -> Vec<String> {
    q.get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// `{"name": <doc>, ...}` streamed from blobs.
fn stream_map(f: &Factory, docs: Vec<(String, String)>) -> Result<Reply, ApiError> {
    let blobs = f.blobs();
    let mut segs = Vec::with_capacity(docs.len() * 2 + 1);
    let mut sep = "{";
    for (name, blob) in docs {
        let key = serde_json::to_string(&name).map_err(|e| ApiError::internal(e.to_string()))?;
        segs.push(Segment::Bytes(format!("{sep}{key}:").into_bytes()));
        let (file, len) = blobs.open(&blob)?;
        segs.push(Segment::File(file, len));
        sep = ",";
    }
    segs.push(Segment::Bytes(if sep == "{" {
        b"{}".to_vec()
    } else {
        b"}".to_vec()
    }));
    Ok(Reply::Stream(segs))
}

/// `GET /ota/factories/{F}/prod-targets/?tag=a,b`: the named tags' production targets, 404
/// when none of them has any. With no tag named (all tags) the answer is 200 and may be `{}`:
/// see [`all_or_named`].
pub(crate) fn prod_targets(f: &Factory, q: &HashMap<String, String>) -> Result<Reply, ApiError> {
    let wanted = list(q, "tag");
    let docs: Vec<(String, String)> = f
        .rec
        .tags
        .iter()
        .filter(|(t, _)| wanted.is_empty() || wanted.contains(t))
        .map(|(t, r)| (t.clone(), r.blob.clone()))
        .collect();
    all_or_named(f, &wanted, docs, "No production targets for tag(s)")
}

/// `GET /ota/factories/{F}/wave-targets/?name=w1,w2`: the named waves' targets, 404 when none
/// of them exists. With no name (all active waves) the answer is 200 and may be `{}`: see
/// [`all_or_named`].
pub(crate) fn wave_targets(f: &Factory, q: &HashMap<String, String>) -> Result<Reply, ApiError> {
    let wanted = list(q, "name");
    let docs: Vec<(String, String)> = f
        .rec
        .waves
        .iter()
        .filter(|w| {
            if wanted.is_empty() {
                w.status == WaveStatus::Active
            } else {
                wanted.contains(&w.name)
            }
        })
        .map(|w| (w.name.clone(), w.blob.clone()))
        .collect();
    all_or_named(f, &wanted, docs, "No such wave(s)")
}

/// The answer of a prod-targets or wave-targets query: 404 only when names were asked for
/// and none exists.
///
/// Why an empty "all" query answers `{}` rather than 404: `fioctl keys tuf updates
/// sign-prod-targets` without `--tags`/`--waves` (its documented default, "all tags" and "all
/// active Waves") fetches both lists and treats a 404 as fatal ("Failed to fetch production
/// Wave Targets"), so with a 404 the default would fail on every factory without an active
/// wave — the usual state. fioctl 9b0a6e7 works through that path against this simulator
/// (`tests/tests/interop/fioctl_conformance.rs`). A single named tag that does not exist still
/// answers 404: `fioctl waves init` relies on it (it indexes the answer by that tag).
fn all_or_named(
    f: &Factory,
    wanted: &[String],
    docs: Vec<(String, String)>,
    missing: &str,
) -> Result<Reply, ApiError> {
    if docs.is_empty() && !wanted.is_empty() {
        return Err(ApiError::not_found(format!(
            "{missing}: {}",
            wanted.join(",")
        )));
    }
    stream_map(f, docs)
}

/// `GET /ota/factories/{F}/ci-targets.pub`: the online targets key exactly as root.json
/// lists it.
pub(crate) fn ci_targets_pub(f: &Factory) -> Result<Reply, ApiError> {
    let root = shared::metadata::SignedRoot::from_json(f.rec.current_ci().as_bytes())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let key =
        root.signed.keys.get(&f.rec.online.targets).ok_or_else(|| {
            ApiError::internal("the online targets key is not in the current root")
        })?;
    Ok(Reply::Raw(key.to_json()))
}

/// `GET /ota/factories/{F}/targets/?version=N`: the CI targets of build N (`{}` if none).
pub(crate) fn ci_targets(f: &Factory, q: &HashMap<String, String>) -> Result<Reply, ApiError> {
    let raw = q
        .get("version")
        .ok_or_else(|| ApiError::bad_request("the version query parameter is required"))?;
    let version: u64 = raw.trim().parse().map_err(|_| {
        ApiError::bad_request(format!("version must be a build number, not {raw:?}"))
    })?;
    match f.ci_build(version)? {
        Some(bytes) => Ok(Reply::Raw(bytes)),
        None => Ok(Reply::Raw(b"{}".to_vec())),
    }
}

/// `GET /ota/factories/{F}/users/self/`.
pub(crate) fn users_self(user: &UserRecord) -> Reply {
    Reply::ok(json!({
        "polis-id": user.polis_id,
        "name": user.name,
        "role": user.role,
        "teams-ext": [],
        "effective-scopes": ["ci:read", "devices:read-update", "targets:read-update", "waves:read-update"],
    }))
}

impl Factory {
    /// The CI targets map of build `version`, if it exists.
    pub(crate) fn ci_build(&self, version: u64) -> Result<Option<Vec<u8>>, ApiError> {
        let index = self.ci_index.get_or_init(|| {
            ci::read_index(&self.dir)
                .map(|i| i.builds)
                .unwrap_or_default()
        });
        match index.get(&version) {
            Some(span) => Ok(Some(ci::read_build(&self.dir, *span)?)),
            None => Ok(None),
        }
    }
}
