//! Structural validation: what a bundle's content must satisfy before a
//! [`TransferBundle`](super::TransferBundle) exists, whether it is being built or read.
//!
//! The member layout (which names exist, their canonical order, tag and wave names), the
//! manifest's text fields and operations (parameters, the documents they name, the initial
//! root key only with a first-time rotation and only age-encrypted), the root chain `1..N`,
//! that targets documents parse, and for a response the agreement of manifest, `upload.json`
//! and `record.json`: the same txid and steps, the format-2 step members (the last step's
//! `output` is the upload's drafts), and every digest and key id a step records against what
//! the response carries (SPEC §5.4, §7). The signatures themselves are the readers' to verify
//! (`shared::verify`, the signer's authority check, the courier).

use std::collections::{BTreeMap, BTreeSet};

use super::codec::{signed_digest, targets_signed_bytes, Known};
use super::error::{member_err, BundleError};
use super::schema::*;
use super::stream::Members;
use crate::keys::Signature;
use crate::metadata::{Role, SignedRoot, SignedTargets};
use crate::transaction::ParsedTransaction;

/// Longest tag or wave name accepted.
pub const MAX_DOC_NAME: usize = 128;

impl Operation {
    /// Checks the parameters (offline roles, threshold, names).
    pub fn validate(&self) -> Result<(), String> {
        let offline = |role: &Role| match role {
            Role::Root | Role::Targets => Ok(()),
            other => Err(format!(
                "{}: {other} is an online role; only root and targets keys are offline",
                self.name()
            )),
        };
        match self {
            Operation::AddOfflineKey { role, .. } | Operation::DeleteOfflineKey { role, .. } => {
                offline(role)
            }
            Operation::SetThreshold { role, threshold } => {
                offline(role)?;
                if *threshold == 0 {
                    return Err("set-threshold: the threshold must be at least 1".into());
                }
                Ok(())
            }
            Operation::SignProdTargets { tags } => {
                if tags.is_empty() {
                    return Err("sign-prod-targets: no tags given".into());
                }
                let mut seen = BTreeSet::new();
                for t in tags {
                    validate_doc_name(t).map_err(|e| format!("sign-prod-targets: tag {e}"))?;
                    if !seen.insert(t) {
                        return Err(format!("sign-prod-targets: tag {t:?} listed twice"));
                    }
                }
                Ok(())
            }
            Operation::SignWave { name } => {
                validate_doc_name(name).map_err(|e| format!("sign-wave: wave {e}"))
            }
            Operation::RotateOnlineKey { roles } => {
                if roles.is_empty() {
                    return Err("rotate-online-key: no roles given".into());
                }
                let mut seen = BTreeSet::new();
                for r in roles {
                    if *r == Role::Root {
                        return Err("rotate-online-key: the root key is not an online key".into());
                    }
                    if !seen.insert(r) {
                        return Err(format!("rotate-online-key: role {r} listed twice"));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Where a member sits in the canonical order, or `None` if the name is not in the layout.
pub(super) fn member_rank(name: &str) -> Option<(u8, u64, String)> {
    match name {
        MANIFEST => return Some((0, 0, String::new())),
        TRANSACTION => return Some((1, 0, String::new())),
        FIRST_ROOT_SECRET => return Some((5, 0, String::new())),
        UPLOAD => return Some((6, 0, String::new())),
        RECORD => return Some((7, 0, String::new())),
        _ => {}
    }
    if let Some(n) = chain_index(name) {
        return Some((2, n, String::new()));
    }
    if let Some(tag) = doc_name(name, PROD_TARGETS_DIR) {
        return Some((3, 0, tag.to_string()));
    }
    if let Some(wave) = doc_name(name, WAVES_DIR) {
        return Some((4, 0, wave.to_string()));
    }
    None
}

/// `chain/<N>.root.json` → N (decimal, no leading zeros, at least 1).
pub(super) fn chain_index(name: &str) -> Option<u64> {
    let n = name.strip_prefix(CHAIN_DIR)?.strip_suffix(".root.json")?;
    if n.is_empty() || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|&n| n >= 1)
}

/// `<dir><name>.json` → name, if `name` is a valid tag or wave name.
pub(super) fn doc_name<'a>(member: &'a str, dir: &str) -> Option<&'a str> {
    let n = member.strip_prefix(dir)?.strip_suffix(".json")?;
    validate_doc_name(n).ok().map(|()| n)
}

/// Checks a tag or wave name: 1–128 characters from `A-Z a-z 0-9 . _ + -`, starting with a
/// letter or digit.
pub fn validate_doc_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_DOC_NAME
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name (1-{MAX_DOC_NAME} of A-Z a-z 0-9 . _ + -, starting with a letter or digit)"
        ))
    }
}

fn validate_text(what: &str, s: &str, allow_empty: bool) -> Result<(), BundleError> {
    if (!allow_empty && s.is_empty()) || s.len() > 256 || s.chars().any(char::is_control) {
        return Err(BundleError::Invalid(format!(
            "{what} {s:?} must be {}at most 256 characters without control characters",
            if allow_empty { "" } else { "non-empty, " }
        )));
    }
    Ok(())
}

fn looks_like_age(bytes: &[u8]) -> bool {
    bytes.starts_with(b"age-encryption.org/v1\n")
        || bytes.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
}

/// Member names (except the manifest) in canonical order; refuses names outside the
/// layout.
pub(super) fn canonical_order(members: &Members) -> Result<Vec<&str>, BundleError> {
    let mut ranked = Vec::with_capacity(members.len());
    for name in members.keys() {
        match member_rank(name) {
            Some(r) if r.0 != 0 => ranked.push((r, name.as_str())),
            _ => return Err(BundleError::UnexpectedMember(name.clone())),
        }
    }
    ranked.sort();
    Ok(ranked.into_iter().map(|(_, n)| n).collect())
}

/// Semantic checks shared by building and reading; returns the parsed upload and record of
/// a response.
pub(super) fn validate_content(
    manifest: &Manifest,
    members: &Members,
    known: &mut Known<'_>,
) -> Result<(Option<Upload>, Option<Record>), BundleError> {
    validate_text("factory", &manifest.factory, false)?;
    validate_text("txid", &manifest.txid, true)?;
    validate_text("writer tool", &manifest.writer.tool, false)?;
    validate_text("writer version", &manifest.writer.version, false)?;
    if manifest.operations.is_empty() {
        return Err(BundleError::Invalid("no operations requested".into()));
    }
    for op in &manifest.operations {
        op.validate().map_err(BundleError::Invalid)?;
    }
    // transaction.json
    let tx_bytes = members
        .get(TRANSACTION)
        .ok_or_else(|| BundleError::MissingMember(TRANSACTION.into()))?
        .load(TRANSACTION)?;
    // A known status, every embedded root readable, the roots fioctl requires present.
    ParsedTransaction::from_json(tx_bytes.to_vec()).map_err(|e| member_err(TRANSACTION, e))?;
    // Chain: 1..=N, each a root of that version.
    let chain_len = members.keys().filter(|n| chain_index(n).is_some()).count() as u64;
    if chain_len == 0 {
        return Err(BundleError::MissingMember(format!(
            "{CHAIN_DIR}1.root.json"
        )));
    }
    for v in 1..=chain_len {
        let name = format!("{CHAIN_DIR}{v}.root.json");
        let data = members
            .get(&name)
            .ok_or_else(|| BundleError::MissingMember(name.clone()))?
            .load(&name)?;
        let root = SignedRoot::from_json(&data).map_err(|e| member_err(&name, e))?;
        if root.signed.version != v {
            return Err(member_err(
                &name,
                format!("holds root version {}, expected {v}", root.signed.version),
            ));
        }
    }
    // Targets documents parse.
    if !known.docs_checked {
        for (name, data) in members {
            if doc_name(name, PROD_TARGETS_DIR).is_some() || doc_name(name, WAVES_DIR).is_some() {
                SignedTargets::check_json(&data.load(name)?).map_err(|e| member_err(name, e))?;
            }
        }
    }
    // Operations refer to documents present; the secret comes with first-time only.
    let first_time = manifest
        .operations
        .contains(&Operation::FirstTimeRootRotation);
    for op in &manifest.operations {
        match op {
            Operation::SignProdTargets { tags } => {
                for t in tags {
                    let m = format!("{PROD_TARGETS_DIR}{t}.json");
                    if !members.contains_key(&m) {
                        return Err(BundleError::Invalid(format!(
                            "sign-prod-targets names tag {t:?} but {m} is missing"
                        )));
                    }
                }
            }
            Operation::SignWave { name } => {
                let m = format!("{WAVES_DIR}{name}.json");
                if !members.contains_key(&m) {
                    return Err(BundleError::Invalid(format!(
                        "sign-wave names wave {name:?} but {m} is missing"
                    )));
                }
            }
            _ => {}
        }
    }
    match members.get(FIRST_ROOT_SECRET) {
        Some(_) if !first_time => {
            return Err(BundleError::Invalid(format!(
                "{FIRST_ROOT_SECRET} is only allowed with first-time-root-rotation"
            )));
        }
        Some(secret) if !looks_like_age(&secret.load(FIRST_ROOT_SECRET)?) => {
            return Err(member_err(
                FIRST_ROOT_SECRET,
                "is not an age-encrypted file; the initial root key must never travel in clear",
            ));
        }
        None if first_time => {
            return Err(BundleError::MissingMember(FIRST_ROOT_SECRET.into()));
        }
        _ => {}
    }
    // Kind-specific members.
    match manifest.kind {
        BundleKind::Request => {
            for name in [UPLOAD, RECORD] {
                if members.contains_key(name) {
                    return Err(BundleError::Invalid(format!(
                        "a request must not contain {name}"
                    )));
                }
            }
            if manifest.request_sha256.is_some() || !manifest.steps.is_empty() {
                return Err(BundleError::Manifest(
                    "request-sha256 and steps belong to responses only".into(),
                ));
            }
            Ok((None, None))
        }
        BundleKind::Response => {
            let upload_bytes = members
                .get(UPLOAD)
                .ok_or_else(|| BundleError::MissingMember(UPLOAD.into()))?
                .load(UPLOAD)?;
            let upload: Upload =
                serde_json::from_slice(&upload_bytes).map_err(|e| member_err(UPLOAD, e))?;
            let record_bytes = members
                .get(RECORD)
                .ok_or_else(|| BundleError::MissingMember(RECORD.into()))?
                .load(RECORD)?;
            let record: Record =
                serde_json::from_slice(&record_bytes).map_err(|e| member_err(RECORD, e))?;
            if upload.txid != manifest.txid {
                return Err(member_err(
                    UPLOAD,
                    format!(
                        "txid {:?} differs from the manifest's {:?}",
                        upload.txid, manifest.txid
                    ),
                ));
            }
            for (dir, sigs) in [
                (PROD_TARGETS_DIR, &upload.targets_signatures),
                (WAVES_DIR, &upload.waves_signatures),
            ] {
                for name in sigs.keys() {
                    let m = format!("{dir}{name}.json");
                    if !members.contains_key(&m) {
                        return Err(member_err(
                            UPLOAD,
                            format!("has signatures for {name:?} but {m} is missing"),
                        ));
                    }
                }
            }
            if manifest.request_sha256 != Some(record.request_sha256) {
                return Err(BundleError::Manifest(
                    "request-sha256 is missing or differs from record.json".into(),
                ));
            }
            if record.steps.is_empty() {
                return Err(member_err(RECORD, "has no steps"));
            }
            let summaries: Vec<StepSummary> = record.steps.iter().map(Step::summary).collect();
            if summaries != manifest.steps {
                return Err(BundleError::Manifest(
                    "steps differ from the steps in record.json".into(),
                ));
            }
            for step in &record.steps {
                for op in &step.operations {
                    op.validate().map_err(|e| member_err(RECORD, e))?;
                }
            }
            check_step_fields(manifest.format_version, &record, &upload)?;
            check_record_digests(&record, &upload, members, &mut known.signed_digests)?;
            Ok((Some(upload), Some(record)))
        }
    }
}

/// The format-2 members of steps (SPEC §5.4): absent in format 1; in format 2 the last step
/// names the drafts it produced and the changes it authorized, and its `output` is the
/// digest of the roots `upload.json` carries (the step produced this upload).
fn check_step_fields(version: u64, record: &Record, upload: &Upload) -> Result<(), BundleError> {
    if version < 2 {
        if record
            .steps
            .iter()
            .any(|s| s.output.is_some() || s.authorized.is_some() || s.attestation.is_some())
        {
            return Err(member_err(
                RECORD,
                "output, authorized and attestation are format 2 members, but the manifest says format 1",
            ));
        }
        return Ok(());
    }
    let last = record
        .steps
        .last()
        .ok_or_else(|| member_err(RECORD, "has no steps"))?;
    let (Some(output), Some(_)) = (&last.output, &last.authorized) else {
        return Err(member_err(
            RECORD,
            format!(
                "step {} has no output or authorized member (required in format 2)",
                record.steps.len()
            ),
        ));
    };
    let actual = StepOutput {
        ci_root: signed_digest(&upload.ci_root, "ci-root")?,
        prod_root: signed_digest(&upload.prod_root, "prod-root")?,
    };
    if *output != actual {
        return Err(member_err(
            RECORD,
            format!(
                "step {} says it produced the drafts {} (CI) and {} (production), but upload.json holds {} and {}: the drafts were changed after the step",
                record.steps.len(),
                output.ci_root,
                output.prod_root,
                actual.ci_root,
                actual.prod_root
            ),
        ));
    }
    Ok(())
}

/// Checks that what `record.json` says was signed is what the response carries (SPEC §5.4,
/// §7: record and upload must agree): every signature entry of every step names a known
/// document, targets and wave digests match the carried documents, and the last step's root
/// digests match the roots of `upload.json` (earlier steps may have signed an earlier draft,
/// whose signatures were then dropped). Every key id the last step lists has a signature on
/// that document in the upload.
fn check_record_digests(
    record: &Record,
    upload: &Upload,
    members: &Members,
    signed_digests: &mut BTreeMap<String, Sha256Digest>,
) -> Result<(), BundleError> {
    let last = record.steps.len().saturating_sub(1);
    let empty: Vec<Signature> = Vec::new();
    for (i, step) in record.steps.iter().enumerate() {
        for entry in &step.signatures {
            let (digest, sigs) = match entry.document.as_str() {
                "ci-root" | "prod-root" if i != last => continue,
                "ci-root" => (
                    signed_digest(&upload.ci_root, "ci-root")?,
                    &upload.ci_root.signatures,
                ),
                "prod-root" => (
                    signed_digest(&upload.prod_root, "prod-root")?,
                    &upload.prod_root.signatures,
                ),
                doc => {
                    let (dir, sigs, name) = if let Some(n) = doc.strip_prefix(PROD_TARGETS_DIR) {
                        (PROD_TARGETS_DIR, &upload.targets_signatures, n)
                    } else if let Some(n) = doc.strip_prefix(WAVES_DIR) {
                        (WAVES_DIR, &upload.waves_signatures, n)
                    } else {
                        return Err(member_err(RECORD, format!("unknown document {doc:?}")));
                    };
                    let member = format!("{dir}{name}.json");
                    let data = members.get(&member).ok_or_else(|| {
                        member_err(RECORD, format!("lists {doc:?} but {member} is missing"))
                    })?;
                    let digest = match signed_digests.get(&member) {
                        Some(d) => *d,
                        None => {
                            let data = data.load(&member)?;
                            let d = Sha256Digest::of(&targets_signed_bytes(&member, &data)?);
                            signed_digests.insert(member, d);
                            d
                        }
                    };
                    (digest, sigs.get(name).unwrap_or(&empty))
                }
            };
            if entry.sha256 != digest {
                return Err(member_err(
                    RECORD,
                    format!(
                        "step {} says its signatures on {} cover sha256 {}, but the document carried has {}",
                        i + 1,
                        entry.document,
                        entry.sha256,
                        digest
                    ),
                ));
            }
            if i == last {
                if let Some(k) = entry
                    .keyids
                    .iter()
                    .find(|k| !sigs.iter().any(|s| &s.keyid == *k))
                {
                    return Err(member_err(
                        RECORD,
                        format!(
                            "step {} lists a signature by {k} on {} that upload.json does not have",
                            i + 1,
                            entry.document
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::fixtures::*;
    use crate::bundle::TransferBundle;
    use serde_json::json;

    #[test]
    fn request_content_rules() {
        let mut input = request_input();
        input.first_root_secret = Some(b"age-encryption.org/v1\n-> X25519 abc\n".to_vec());
        let err = TransferBundle::new_request(input).unwrap_err();
        assert!(
            err.to_string().contains("first-time-root-rotation"),
            "{err}"
        );

        let mut input = request_input();
        input.operations = vec![Operation::FirstTimeRootRotation];
        assert!(matches!(
            TransferBundle::new_request(input.clone()),
            Err(BundleError::MissingMember(ref n)) if n == FIRST_ROOT_SECRET
        ));
        input.first_root_secret =
            Some(b"{\"keytype\":\"ED25519\",\"keyval\":{\"private\":\"00\"}}".to_vec());
        let err = TransferBundle::new_request(input.clone()).unwrap_err();
        assert!(err.to_string().contains("never travel in clear"), "{err}");
        input.first_root_secret = Some(b"-----BEGIN AGE ENCRYPTED FILE-----\nxx\n".to_vec());
        let b = TransferBundle::new_request(input).unwrap();
        assert!(b.first_root_secret().is_some());

        let mut input = request_input();
        input.operations = vec![Operation::SignProdTargets {
            tags: vec!["nope".into()],
        }];
        assert!(TransferBundle::new_request(input).is_err());
        let mut input = request_input();
        input.operations = vec![];
        assert!(TransferBundle::new_request(input).is_err());
        let mut input = request_input();
        input.operations = vec![Operation::SetThreshold {
            role: Role::Snapshot,
            threshold: 1,
        }];
        assert!(TransferBundle::new_request(input).is_err());
        let mut input = request_input();
        input
            .prod_targets
            .insert("../x".into(), b"{}".to_vec().into());
        assert!(TransferBundle::new_request(input).is_err());
        let mut input = request_input();
        input.chain.swap(0, 1);
        let err = TransferBundle::new_request(input).unwrap_err();
        assert!(err.to_string().contains("chain/1.root.json"), "{err}");
        let mut input = request_input();
        input.chain.clear();
        assert!(TransferBundle::new_request(input).is_err());
        let mut input = request_input();
        input.transaction = b"[]".to_vec();
        let err = TransferBundle::new_request(input).unwrap_err();
        assert!(err.to_string().contains(TRANSACTION), "{err}");
    }

    #[test]
    fn record_digests_must_match_the_upload() {
        let req = request();
        let k1 = key(1);
        let upload = upload_signed_by(&req, &[&k1]);
        let resp = req
            .respond_test(step(upload.clone(), vec![Operation::SignRoot]))
            .unwrap();
        let good = resp.record().unwrap().clone();
        let (w, t) = (resp.manifest().writer.clone(), resp.manifest().created);
        // A digest that does not match what was signed.
        let mut bad = good.clone();
        bad.steps[0].signatures[0].sha256 = Sha256Digest([7; 32]);
        let err = req.with_response(w.clone(), t, &upload, &bad).unwrap_err();
        assert!(err.to_string().contains("cover sha256"), "{err}");
        // A key id without a signature in the upload.
        let mut bad = good.clone();
        bad.steps[0].signatures[0]
            .keyids
            .push(key(9).keyid().clone());
        let err = req.with_response(w.clone(), t, &upload, &bad).unwrap_err();
        assert!(err.to_string().contains("does not have"), "{err}");
        // An unknown document.
        let mut bad = good.clone();
        bad.steps[0].signatures[0].document = "snapshot".into();
        assert!(req.with_response(w.clone(), t, &upload, &bad).is_err());
        // The genuine record passes.
        req.with_response(w, t, &upload, &good).unwrap();
    }

    #[test]
    fn response_consistency_checks_on_read() {
        let req = request();
        let resp = req
            .respond_test(step(
                upload_signed_by(&req, &[&key(1)]),
                vec![Operation::SignRoot],
            ))
            .unwrap();
        // Steps in the manifest must match record.json.
        let bad = repack(&resp, false, |m, _| {
            m.remove("steps");
        });
        assert!(matches!(
            TransferBundle::from_bytes(&bad),
            Err(BundleError::Manifest(_))
        ));
        // A request must not carry upload.json.
        let bad = repack(&resp, false, |m, _| {
            m.insert("kind".into(), json!("request"));
            m.remove("steps");
            m.remove("request-sha256");
        });
        assert!(matches!(
            TransferBundle::from_bytes(&bad),
            Err(BundleError::Invalid(_))
        ));
        // A response missing record.json.
        let bad = repack(&resp, false, |m, ms| {
            ms.retain(|(n, _)| n != RECORD);
            m["members"]
                .as_array_mut()
                .unwrap()
                .retain(|e| e["name"] != RECORD);
        });
        assert!(
            matches!(TransferBundle::from_bytes(&bad), Err(BundleError::MissingMember(ref n)) if n == RECORD)
        );
    }
}
