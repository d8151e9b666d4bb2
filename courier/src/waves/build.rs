//! Wave targets built exactly as `fioctl waves init` builds them (formats doc §6.18), and
//! recognised again: pure functions over what the factory serves, no I/O.
//!
//! * [`build_wave_targets`]: the **unsigned** wave targets of a [`WaveRequest`] — the tag's
//!   current production targets plus the CI targets of the version, their tags replaced;
//! * [`request_candidates`]: the `waves init` arguments that can have built a given draft
//!   (to check a wave response on a machine that did not write its request);
//! * [`wave_of`]: the wave a bundle asks to sign, when that is all it asks.
//!
//! One deliberate difference: fioctl copies the `custom` of targets taken from the current
//! production targets as raw bytes (server member order, whitespace stripped); here every
//! member is canonicalized. Both give the same bytes whenever the server sends canonical
//! JSON (which it must, or its own signatures would not verify).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::value::RawValue;
use serde_json::Value;
use shared::bundle::{Operation, TransferBundle};
use shared::canonical;
use shared::metadata::{SignedTargets, TargetFile, Targets, Timestamp};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Why the wave targets could not be built (messages as fioctl prints them, plus what to do).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WaveError {
    /// The version argument is not a 32-bit integer.
    #[error("Version must be an integer: {0:?}")]
    BadVersion(String),
    /// `--expires-at` is not RFC 3339.
    #[error("Invalid expires-at value: {0:?} (expected RFC 3339, e.g. 2030-01-01T00:00:00Z)")]
    BadExpiry(String),
    /// No CI targets have this version.
    #[error("No targets found for version {0}")]
    NoTargets(String),
    /// The wave version is not above the tag's production version.
    #[error("Cannot create a Wave for a version lower than or equal to production Targets for the same tag (production version {current}, wave version {wave})")]
    VersionNotNewer {
        /// The production targets version.
        current: u64,
        /// The requested version.
        wave: i64,
    },
    /// A new target's name is already in the production targets.
    #[error("Target {name} already exists in production Targets for tag {tag}")]
    TargetExists {
        /// Target name.
        name: String,
        /// Tag.
        tag: String,
    },
    /// A target's `custom` cannot be used.
    #[error("Malformed CI Target custom field {name}: {reason}")]
    MalformedCustom {
        /// Target name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A target is not valid target metadata.
    #[error("Malformed target {name}: {reason}")]
    MalformedTarget {
        /// Target name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// `--prune` names the wave's own version.
    #[error("Cannot prune current version")]
    PruneCurrent,
    /// `--prune` names versions that are not in the targets.
    #[error("Unable to prune the following versions: {0}")]
    PruneMissing(String),
    /// Canonical encoding failed.
    #[error("Failed to serialize new Targets: {0}")]
    Serialize(String),
}

/// What `waves init` was asked for.
#[derive(Clone, Debug)]
pub struct WaveRequest {
    /// Wave name.
    pub name: String,
    /// Version as typed (sent to the API as a string).
    pub version: String,
    /// Production tag.
    pub tag: String,
    /// Expiry of the wave targets.
    pub expires: Timestamp,
    /// Versions to prune from the production targets.
    pub prune: Vec<String>,
    /// Only CI targets with this tag.
    pub source_tag: Option<String>,
}

/// The unsigned wave targets.
#[derive(Clone, Debug, PartialEq)]
pub struct WaveDraft {
    /// The `signed` part.
    pub signed: Targets,
    /// Its canonical bytes: exactly what the signer signs and what `waves push` sends.
    pub canonical: Vec<u8>,
    /// Whether every new target has static deltas (`custom.delta-stats`).
    pub has_static_deltas: bool,
    /// Names of the CI targets added.
    pub added: Vec<String>,
}

/// Parses the version like Go's `strconv.ParseInt(v, 10, 32)`; must also be positive
/// (a TUF version cannot be negative or zero).
pub fn parse_version(v: &str) -> Result<i32, WaveError> {
    match v.parse::<i32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(WaveError::BadVersion(v.to_string())),
    }
}

fn round_to_second(t: OffsetDateTime) -> Timestamp {
    let secs = t.unix_timestamp();
    let secs = if t.nanosecond() >= 500_000_000 {
        secs + 1
    } else {
        secs
    };
    Timestamp::from_unix(secs)
}

/// The wave expiry like fioctl: `expires_at` (RFC 3339, to UTC) wins, else now +
/// `expires_days` (default 365); rounded to whole seconds.
pub fn expiry(
    now: OffsetDateTime,
    expires_days: Option<i64>,
    expires_at: Option<&str>,
) -> Result<Timestamp, WaveError> {
    match expires_at {
        Some(at) => OffsetDateTime::parse(at, &Rfc3339)
            .map(round_to_second)
            .map_err(|_| WaveError::BadExpiry(at.to_string())),
        None => {
            let days = expires_days.unwrap_or(365);
            let t = now
                .checked_add(time::Duration::days(days))
                .ok_or_else(|| WaveError::BadExpiry(format!("{days} days")))?;
            Ok(round_to_second(t))
        }
    }
}

/// Makes numbers look the way Go's generic decode (float64) + canonical encode leaves them:
/// integers up to 2^53 unchanged, larger ones rounded through a float, integral floats
/// written as integers; a number with a fractional part is an error.
fn go_numbers(v: &mut Value) -> Result<(), String> {
    match v {
        Value::Number(n) => {
            const EXACT: u64 = 1 << 53;
            let fixed = if let Some(u) = n.as_u64() {
                if u <= EXACT {
                    return Ok(());
                }
                serde_json::Number::from((u as f64) as u64)
            } else if let Some(i) = n.as_i64() {
                if i.unsigned_abs() <= EXACT {
                    return Ok(());
                }
                serde_json::Number::from((i as f64) as i64)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() != 0.0 || !f.is_finite() {
                    return Err(format!("number {n} is not an integer"));
                }
                if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                    serde_json::Number::from(f as u64)
                } else if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                    serde_json::Number::from(f as i64)
                } else {
                    return Err(format!("number {n} is too large"));
                }
            };
            *n = fixed;
            Ok(())
        }
        Value::Array(a) => a.iter_mut().try_for_each(go_numbers),
        Value::Object(o) => o.values_mut().try_for_each(go_numbers),
        _ => Ok(()),
    }
}

/// A target as Go's `FileMeta` keeps it: length, hashes, custom (other members dropped).
fn file_meta(name: &str, raw: &RawValue) -> Result<TargetFile, WaveError> {
    let mut t: TargetFile =
        serde_json::from_str(raw.get()).map_err(|e| WaveError::MalformedTarget {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
    t.extra.clear();
    Ok(t)
}

/// Member `member` of a target's `custom` (`None` when absent or null); a target without a
/// `custom` object is malformed.
fn custom_member<'a>(
    name: &str,
    t: &'a TargetFile,
    member: &str,
) -> Result<Option<&'a Value>, WaveError> {
    let custom = t
        .custom
        .as_ref()
        .ok_or_else(|| malformed_custom(name, "no custom field"))?;
    let obj = custom
        .as_object()
        .ok_or_else(|| malformed_custom(name, "custom is not an object"))?;
    Ok(obj.get(member).filter(|v| !v.is_null()))
}

fn malformed_custom(name: &str, reason: &str) -> WaveError {
    WaveError::MalformedCustom {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

/// `custom.tags` (must be a list of strings if present).
fn custom_tags(name: &str, t: &TargetFile) -> Result<Vec<String>, WaveError> {
    let not_strings = || malformed_custom(name, "tags is not a list of strings");
    match custom_member(name, t, "tags")? {
        None => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(not_strings))
            .collect(),
        Some(_) => Err(not_strings()),
    }
}

/// `custom.version` (must be a string if present).
fn custom_version(name: &str, t: &TargetFile) -> Result<String, WaveError> {
    match custom_member(name, t, "version")? {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(malformed_custom(name, "version is not a string")),
    }
}

/// Builds the unsigned wave targets (fioctl `waves init` steps 1–8 without signing).
///
/// `new_targets` is the answer of `GET targets/?version=V`; `current` the tag's production
/// targets (`None` when the server answered 404).
pub fn build_wave_targets(
    req: &WaveRequest,
    new_targets: &BTreeMap<String, Box<RawValue>>,
    current: Option<&SignedTargets>,
) -> Result<WaveDraft, WaveError> {
    let version = parse_version(&req.version)?;
    if new_targets.is_empty() {
        return Err(WaveError::NoTargets(req.version.clone()));
    }
    let mut targets: BTreeMap<String, TargetFile> = BTreeMap::new();
    if let Some(cur) = current {
        if i64::from(version) <= cur.signed.version as i64 {
            return Err(WaveError::VersionNotNewer {
                current: cur.signed.version,
                wave: i64::from(version),
            });
        }
        for (name, t) in &cur.signed.targets {
            let mut t = t.clone();
            t.extra.clear();
            targets.insert(name.clone(), t);
        }
    }
    let mut has_static_deltas = true;
    let mut added = Vec::new();
    // BTreeMap iteration is sorted, so errors are deterministic (fioctl's order is random).
    for (name, raw) in new_targets {
        let mut file = file_meta(name, raw)?;
        let delta = file
            .custom
            .as_ref()
            .and_then(|c| c.get("delta-stats"))
            .is_some_and(|d| !d.is_null());
        if !delta {
            has_static_deltas = false;
        }
        if targets.contains_key(name) {
            return Err(WaveError::TargetExists {
                name: name.clone(),
                tag: req.tag.clone(),
            });
        }
        if let Some(source) = &req.source_tag {
            if !custom_tags(name, &file)?.iter().any(|t| t == source) {
                continue;
            }
        }
        let malformed = |reason: String| WaveError::MalformedCustom {
            name: name.clone(),
            reason,
        };
        let mut custom = match file.custom.take() {
            Some(Value::Object(o)) => o,
            Some(_) => return Err(malformed("custom is not an object".into())),
            None => return Err(malformed("no custom field".into())),
        };
        custom.insert(
            "tags".into(),
            Value::Array(vec![Value::String(req.tag.clone())]),
        );
        let mut custom = Value::Object(custom);
        go_numbers(&mut custom).map_err(malformed)?;
        file.custom = Some(custom);
        targets.insert(name.clone(), file);
        added.push(name.clone());
    }
    if !req.prune.is_empty() {
        if req.prune.iter().any(|p| p == &req.version) {
            return Err(WaveError::PruneCurrent);
        }
        let mut missing = Vec::new();
        for v in &req.prune {
            let mut doomed = Vec::new();
            for (name, t) in &targets {
                if &custom_version(name, t)? == v {
                    doomed.push(name.clone());
                }
            }
            if doomed.is_empty() {
                missing.push(v.clone());
            }
            for d in doomed {
                targets.remove(&d);
            }
        }
        if !missing.is_empty() {
            return Err(WaveError::PruneMissing(missing.join(",")));
        }
    }
    let signed = Targets {
        type_: "Targets".into(),
        expires: req.expires,
        targets,
        version: version as u64,
        extra: BTreeMap::new(),
    };
    let canonical =
        canonical::to_canonical(&signed).map_err(|e| WaveError::Serialize(e.to_string()))?;
    Ok(WaveDraft {
        signed,
        canonical,
        has_static_deltas,
        added,
    })
}

/// The static-delta warning fioctl prints after creating a wave.
pub const NO_STATIC_DELTA_WARNING: &str = "\
WARNING: You created a Wave for a Target version without static deltas.

We recommend that you generate static deltas for your production Targets to optimize OTA update downloads.
Consider generating a static delta for Targets using:
$ fioctl targets static-deltas

You can then cancel this Wave and create a new one for Target with a static delta.";

/// The wave a bundle asks to sign, when that is all it asks: exactly one operation,
/// `sign-wave NAME`, and no production targets (a `waves init` or `waves sign` request, or
/// an expert request for one wave's signature).
pub fn wave_of(b: &TransferBundle) -> Option<String> {
    match b.operations() {
        [Operation::SignWave { name }] if b.prod_targets_docs().is_empty() => Some(name.clone()),
        _ => None,
    }
}

/// The `waves init` arguments that can have built `draft` (a wave's unsigned targets) from
/// the factory's data: the CI targets of its version (`ci`) and the tag's production
/// targets (`current`). Used to check a wave response that this machine did not request:
/// the version and expiry are the draft's, the tag is the one the draft gives the new
/// targets, the pruned versions are those of the production targets it lacks, and the
/// source tag is none or one that every new target carried. Each candidate is rebuilt by
/// the caller; a draft none of them rebuilds exactly is not what `waves init` makes.
pub fn request_candidates(
    name: &str,
    draft: &Targets,
    ci: &BTreeMap<String, Box<RawValue>>,
    current: Option<&SignedTargets>,
) -> Result<Vec<WaveRequest>, WaveError> {
    let version = draft.version.to_string();
    let added: Vec<(&String, &TargetFile)> = draft
        .targets
        .iter()
        .filter(|(n, _)| ci.contains_key(*n))
        .collect();
    let mut tags = BTreeSet::new();
    for (n, t) in &added {
        tags.insert(custom_tags(n, t)?);
    }
    let tag = match (added.is_empty(), tags.len()) {
        (false, 1) => match tags.pop_first().unwrap_or_default().as_slice() {
            [tag] => tag.clone(),
            _ => return Err(WaveError::NoTargets(version)),
        },
        _ => return Err(WaveError::NoTargets(version)),
    };
    let mut prune = Vec::new();
    if let Some(cur) = current {
        for (n, t) in &cur.signed.targets {
            let v = custom_version(n, t)?;
            if !draft.targets.contains_key(n) && !v.is_empty() && !prune.contains(&v) {
                prune.push(v);
            }
        }
    }
    // Source tags every new target carried in CI (before its tags were replaced).
    let mut common: Option<BTreeSet<String>> = None;
    for (n, _) in &added {
        let carried: BTreeSet<String> = custom_tags(n, &file_meta(n, &ci[*n])?)?
            .into_iter()
            .collect();
        common = Some(match common {
            None => carried,
            Some(c) => c.intersection(&carried).cloned().collect(),
        });
    }
    let sources = std::iter::once(None).chain(common.unwrap_or_default().into_iter().map(Some));
    Ok(sources
        .map(|source_tag| WaveRequest {
            name: name.to_string(),
            version: version.clone(),
            tag: tag.clone(),
            expires: draft.expires,
            prune: prune.clone(),
            source_tag,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(v: Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    fn req(version: &str) -> WaveRequest {
        WaveRequest {
            name: "wave-42".into(),
            version: version.into(),
            tag: "production".into(),
            expires: Timestamp::parse("2027-01-31T12:00:00Z").unwrap(),
            prune: vec![],
            source_tag: None,
        }
    }

    fn ci_targets() -> BTreeMap<String, Box<RawValue>> {
        BTreeMap::from([
            (
                "intel-corei7-64-lmp-42".to_string(),
                raw(serde_json::json!({
                    "length": 0,
                    "hashes": {"sha256": "9a1e".repeat(16)},
                    "custom": {"name": "intel-corei7-64-lmp", "version": "42", "hardwareIds": ["intel-corei7-64"],
                               "tags": ["main"], "targetFormat": "OSTREE", "delta-stats": {"sha256": "ab", "size": 1234}},
                    "extra-member": "dropped"
                })),
            ),
            (
                "raspberrypi4-64-lmp-42".to_string(),
                raw(serde_json::json!({
                    "length": 0,
                    "hashes": {"sha256": "4f1c".repeat(16)},
                    "custom": {"name": "raspberrypi4-64-lmp", "version": "42", "hardwareIds": ["raspberrypi4-64"],
                               "tags": ["devel"], "targetFormat": "OSTREE", "big": 9007199254740993u64, "one": 1.0}
                })),
            ),
        ])
    }

    fn prod(version: u64) -> SignedTargets {
        SignedTargets::from_json(
            serde_json::json!({
                "signatures": [{"keyid": "a".repeat(64), "method": "ed25519", "sig": "AA=="}],
                "signed": {"_type": "Targets", "expires": "2026-01-31T12:00:00Z", "version": version,
                    "targets": {"raspberrypi4-64-lmp-12": {"length": 0, "hashes": {"sha256": "1234".repeat(16)},
                        "custom": {"name": "raspberrypi4-64-lmp", "version": "12", "tags": ["production"]}}}}
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn builds_the_exact_canonical_draft() {
        let cur = prod(12);
        let d = build_wave_targets(&req("42"), &ci_targets(), Some(&cur)).unwrap();
        let expected = concat!(
            r#"{"_type":"Targets","expires":"2027-01-31T12:00:00Z","targets":{"#,
            r#""intel-corei7-64-lmp-42":{"custom":{"delta-stats":{"sha256":"ab","size":1234},"hardwareIds":["intel-corei7-64"],"name":"intel-corei7-64-lmp","tags":["production"],"targetFormat":"OSTREE","version":"42"},"hashes":{"sha256":"9a1e9a1e9a1e9a1e9a1e9a1e9a1e9a1e9a1e9a1e9a1e9a1e9a1e9a1e9a1e9a1e"},"length":0},"#,
            r#""raspberrypi4-64-lmp-12":{"custom":{"name":"raspberrypi4-64-lmp","tags":["production"],"version":"12"},"hashes":{"sha256":"1234123412341234123412341234123412341234123412341234123412341234"},"length":0},"#,
            r#""raspberrypi4-64-lmp-42":{"custom":{"big":9007199254740992,"hardwareIds":["raspberrypi4-64"],"name":"raspberrypi4-64-lmp","one":1,"tags":["production"],"targetFormat":"OSTREE","version":"42"},"hashes":{"sha256":"4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c"},"length":0}"#,
            r#"},"version":42}"#
        );
        assert_eq!(String::from_utf8(d.canonical.clone()).unwrap(), expected);
        assert!(!d.has_static_deltas);
        assert_eq!(d.added.len(), 2);
        // Without production targets the wave holds only the new ones.
        let d = build_wave_targets(&req("42"), &ci_targets(), None).unwrap();
        assert_eq!(d.signed.targets.len(), 2);
    }

    #[test]
    fn source_tag_and_prune() {
        let cur = prod(12);
        let mut r = req("42");
        r.source_tag = Some("main".into());
        let d = build_wave_targets(&r, &ci_targets(), Some(&cur)).unwrap();
        assert_eq!(d.added, vec!["intel-corei7-64-lmp-42".to_string()]);
        assert_eq!(d.signed.targets.len(), 2);
        r.source_tag = None;
        r.prune = vec!["12".into()];
        let d = build_wave_targets(&r, &ci_targets(), Some(&cur)).unwrap();
        assert_eq!(d.signed.targets.len(), 2);
        assert!(!d.signed.targets.contains_key("raspberrypi4-64-lmp-12"));
        r.prune = vec!["42".into()];
        assert_eq!(
            build_wave_targets(&r, &ci_targets(), Some(&cur)),
            Err(WaveError::PruneCurrent)
        );
        r.prune = vec!["12".into(), "7".into(), "8".into()];
        assert_eq!(
            build_wave_targets(&r, &ci_targets(), Some(&cur)),
            Err(WaveError::PruneMissing("7,8".into()))
        );
    }

    #[test]
    fn refusals() {
        let cur = prod(42);
        assert_eq!(
            build_wave_targets(&req("42"), &ci_targets(), Some(&cur)),
            Err(WaveError::VersionNotNewer {
                current: 42,
                wave: 42
            })
        );
        assert_eq!(
            build_wave_targets(&req("x"), &ci_targets(), None),
            Err(WaveError::BadVersion("x".into()))
        );
        assert_eq!(
            build_wave_targets(&req("4294967296"), &ci_targets(), None),
            Err(WaveError::BadVersion("4294967296".into()))
        );
        assert_eq!(
            build_wave_targets(&req("43"), &BTreeMap::new(), None),
            Err(WaveError::NoTargets("43".into()))
        );
        let mut exists = ci_targets();
        exists.insert(
            "raspberrypi4-64-lmp-12".into(),
            raw(serde_json::json!({"length": 0, "hashes": {}, "custom": {"version": "42"}})),
        );
        assert_eq!(
            build_wave_targets(&req("43"), &exists, Some(&prod(12))),
            Err(WaveError::TargetExists {
                name: "raspberrypi4-64-lmp-12".into(),
                tag: "production".into()
            })
        );
        let bad = BTreeMap::from([(
            "t".to_string(),
            raw(serde_json::json!({"length": 0, "hashes": {}, "custom": {"ratio": 0.5}})),
        )]);
        assert!(matches!(
            build_wave_targets(&req("43"), &bad, None),
            Err(WaveError::MalformedCustom { .. })
        ));
        let no_custom = BTreeMap::from([(
            "t".to_string(),
            raw(serde_json::json!({"length": 0, "hashes": {}})),
        )]);
        assert!(matches!(
            build_wave_targets(&req("43"), &no_custom, None),
            Err(WaveError::MalformedCustom { .. })
        ));
    }

    #[test]
    fn expiry_like_fioctl() {
        let now = OffsetDateTime::parse("2026-03-01T10:20:30.6Z", &Rfc3339).unwrap();
        assert_eq!(
            expiry(now, None, None).unwrap().to_string(),
            "2027-03-01T10:20:31Z"
        );
        assert_eq!(
            expiry(now, Some(10), None).unwrap().to_string(),
            "2026-03-11T10:20:31Z"
        );
        assert_eq!(
            expiry(now, Some(10), Some("2030-01-01T02:00:00.4+02:00"))
                .unwrap()
                .to_string(),
            "2030-01-01T00:00:00Z"
        );
        assert!(expiry(now, None, Some("tomorrow")).is_err());
    }
}
