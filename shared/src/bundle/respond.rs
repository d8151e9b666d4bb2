//! Answering a bundle: [`TransferBundle::respond`] adds one signer step to a request or
//! response, recording per document the key ids whose signatures are new and the digest they
//! cover, the drafts the step produced and the changes its signer authorized, and signs that
//! record with the signer's identity ([`crate::attestation`]); [`TransferBundle::step_auth`]
//! checks such a signature. [`combine`] merges two responses to one request, and
//! [`TransferBundle::check_answers`] checks that a response answers a given request.
//!
//! The new bundle is assembled and validated by [`super::codec`] like any other.

use std::collections::BTreeMap;
use std::path::Path;

use super::codec::{signed_digest, Known, Prepared};
use super::error::BundleError;
use super::schema::*;
use super::stream::{MemberBytes, Members};
use super::TransferBundle;
use crate::archive::Compression;
use crate::attestation::{self, SigningIdentity};
use crate::canonical;
use crate::keys::{KeyId, Signature};
use crate::metadata::Timestamp;

impl Step {
    /// The bytes this step's attestation signs (see [`crate::attestation`]): the step
    /// without its attestation, bound to the factory, transaction and request.
    pub fn attestation_payload(
        &self,
        factory: &str,
        txid: &str,
        request_sha256: &Sha256Digest,
    ) -> Result<Vec<u8>, BundleError> {
        let mut body = self.clone();
        body.attestation = None;
        attestation::payload(factory, txid, &request_sha256.to_string(), &body)
            .map_err(|e| BundleError::Invalid(format!("step record: {e}")))
    }
}

/// Signatures in `new` that are not (identically) in `old`, as key ids.
fn new_keyids(new: &[Signature], old: &[Signature]) -> Vec<KeyId> {
    new.iter()
        .filter(|s| !old.contains(s))
        .map(|s| s.keyid.clone())
        .collect()
}

/// `a` with `b`'s signatures merged in ([`crate::keys::merge_signatures`]).
fn merge_sigs(a: &[Signature], b: &[Signature]) -> Vec<Signature> {
    let mut out = a.to_vec();
    crate::keys::merge_signatures(&mut out, b.iter().cloned());
    out
}

impl TransferBundle {
    /// How each step of the record is authenticated (empty for a request).
    pub fn record_steps_auth(&self) -> Vec<StepAuth> {
        let Some(record) = &self.record else {
            return Vec::new();
        };
        record
            .steps
            .iter()
            .map(|s| self.step_auth(s, &record.request_sha256))
            .collect()
    }

    /// Checks the attestation of `step` (a step of this response's record).
    pub fn step_auth(&self, step: &Step, request_sha256: &Sha256Digest) -> StepAuth {
        let Some(att) = &step.attestation else {
            return StepAuth::Unsigned;
        };
        let verified = step
            .attestation_payload(&self.manifest.factory, &self.manifest.txid, request_sha256)
            .map_err(|e| e.to_string())
            .and_then(|p| att.verify(&p).map_err(|e| e.to_string()));
        match verified {
            Ok(()) => StepAuth::Signed(att.identity),
            Err(reason) => StepAuth::Broken {
                identity: att.identity,
                reason,
            },
        }
    }

    /// Produces a response with one more signer step: the request's members are kept,
    /// `upload.json` becomes `step.upload`, and a record step is appended that lists, per
    /// document, the key ids whose signatures are new compared with this bundle's upload
    /// (all of them for a request) and the digest they signed.
    pub fn respond(
        &self,
        step: StepInput,
        identity: &SigningIdentity,
    ) -> Result<TransferBundle, BundleError> {
        let (manifest, members, known) = self.respond_parts(step, identity)?;
        TransferBundle::assemble(manifest, members, known)
    }

    /// Like [`respond`](Self::respond), writing the response to `path` (atomically, replacing
    /// an existing file, like [`write_atomic`](Self::write_atomic)) as it is made: the request's documents are copied from where
    /// they are (checked against their digests) and the response's digest is computed from
    /// what is written, in one pass.
    pub fn respond_to_file(
        &self,
        step: StepInput,
        identity: &SigningIdentity,
        path: &Path,
        compression: Compression,
    ) -> Result<TransferBundle, BundleError> {
        let (manifest, members, known) = self.respond_parts(step, identity)?;
        Prepared::new(manifest, members, known)?.write(path, compression)
    }

    /// The manifest, members and what is known of them of the response [`respond`](Self::respond)
    /// makes.
    fn respond_parts(
        &self,
        step: StepInput,
        identity: &SigningIdentity,
    ) -> Result<(Manifest, Members, Known<'_>), BundleError> {
        if step.upload.txid != self.manifest.txid {
            return Err(BundleError::Invalid(format!(
                "upload txid {:?} differs from the bundle's {:?}",
                step.upload.txid, self.manifest.txid
            )));
        }
        for op in &step.operations {
            op.validate().map_err(BundleError::Invalid)?;
        }
        let prev = self.upload.as_ref();
        let mut signatures = Vec::new();
        let roots = [
            ("ci-root", &step.upload.ci_root, prev.map(|u| &u.ci_root)),
            (
                "prod-root",
                &step.upload.prod_root,
                prev.map(|u| &u.prod_root),
            ),
        ];
        for (what, new, old) in roots {
            let digest = signed_digest(new, what)?;
            let old_sigs = match old {
                Some(o) if signed_digest(o, what)? == digest => o.signatures.as_slice(),
                _ => &[],
            };
            let keyids = new_keyids(&new.signatures, old_sigs);
            if !keyids.is_empty() {
                signatures.push(SignedDocument {
                    document: what.to_string(),
                    sha256: digest,
                    keyids,
                });
            }
        }
        let groups = [
            (
                PROD_TARGETS_DIR,
                &step.upload.targets_signatures,
                prev.map(|u| &u.targets_signatures),
            ),
            (
                WAVES_DIR,
                &step.upload.waves_signatures,
                prev.map(|u| &u.waves_signatures),
            ),
        ];
        for (dir, new, old) in groups {
            for (name, sigs) in new {
                let member = format!("{dir}{name}.json");
                if !self.members.contains_key(&member) {
                    return Err(BundleError::Invalid(format!(
                        "upload has signatures for {name:?} but the bundle has no {member}"
                    )));
                }
                let old_sigs = old
                    .and_then(|o| o.get(name))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let keyids = new_keyids(sigs, old_sigs);
                if !keyids.is_empty() {
                    signatures.push(SignedDocument {
                        document: format!("{dir}{name}"),
                        sha256: self.targets_signed_digest(&member)?,
                        keyids,
                    });
                }
            }
        }
        let mut record = self.record.clone().unwrap_or(Record {
            request_sha256: self.digest,
            steps: Vec::new(),
        });
        let mut new_step = Step {
            input_sha256: self.digest,
            signer: step.signer.clone(),
            time: step.time,
            operations: step.operations,
            signatures,
            output: Some(StepOutput {
                ci_root: signed_digest(&step.upload.ci_root, "ci-root")?,
                prod_root: signed_digest(&step.upload.prod_root, "prod-root")?,
            }),
            authorized: Some(step.authorized),
            attestation: None,
        };
        let payload = new_step.attestation_payload(
            &self.manifest.factory,
            &self.manifest.txid,
            &record.request_sha256,
        )?;
        new_step.attestation = Some(identity.attest(&payload));
        record.steps.push(new_step);
        self.response_parts(step.signer, step.time, &step.upload, &record)
    }

    /// A response with this bundle's request members, the given upload and record.
    pub(super) fn with_response(
        &self,
        writer: Writer,
        created: Timestamp,
        upload: &Upload,
        record: &Record,
    ) -> Result<TransferBundle, BundleError> {
        let (manifest, members, known) = self.response_parts(writer, created, upload, record)?;
        TransferBundle::assemble(manifest, members, known)
    }

    /// The parts of [`with_response`](Self::with_response)'s bundle.
    fn response_parts(
        &self,
        writer: Writer,
        created: Timestamp,
        upload: &Upload,
        record: &Record,
    ) -> Result<(Manifest, Members, Known<'_>), BundleError> {
        let mut members: Members = self
            .members
            .iter()
            .filter(|(n, _)| n.as_str() != UPLOAD && n.as_str() != RECORD)
            .map(|(n, d)| (n.clone(), d.clone()))
            .collect();
        let upload_bytes = canonical::to_canonical(upload)
            .map_err(|e| BundleError::Invalid(format!("{UPLOAD}: {e}")))?;
        let record_bytes = canonical::to_canonical(record)
            .map_err(|e| BundleError::Invalid(format!("{RECORD}: {e}")))?;
        members.insert(UPLOAD.to_string(), MemberBytes::own(upload_bytes));
        members.insert(RECORD.to_string(), MemberBytes::own(record_bytes));
        let manifest = Manifest {
            format: FORMAT_NAME.to_string(),
            format_version: FORMAT_VERSION,
            kind: BundleKind::Response,
            factory: self.manifest.factory.clone(),
            txid: self.manifest.txid.clone(),
            writer,
            created,
            operations: self.manifest.operations.clone(),
            members: Vec::new(),
            request_sha256: Some(record.request_sha256),
            steps: record.steps.iter().map(Step::summary).collect(),
            checksum: None,
            extensions: BTreeMap::new(),
        };
        // The request members are this (validated) bundle's, byte for byte.
        let known = Known {
            members: self
                .manifest
                .members
                .iter()
                .filter(|m| m.name != UPLOAD && m.name != RECORD)
                .map(|m| (m.name.as_str(), m))
                .collect(),
            docs_checked: true,
            signed_digests: self.known_digests(),
        };
        Ok((manifest, members, known))
    }

    /// Checks that this response answers `request`: same request digest, factory, txid and
    /// operations, and byte-identical request members.
    pub fn check_answers(&self, request: &TransferBundle) -> Result<(), BundleError> {
        self.check_answers_manifest(&request.digest(), request.manifest())
    }

    /// [`check_answers`](Self::check_answers) against what stands for the whole request:
    /// its digest and its manifest (which lists every member's size and SHA-256 digest, so
    /// that equal entries are byte-identical members — this bundle's members were checked
    /// against its own manifest when it was read).
    pub fn check_answers_manifest(
        &self,
        request_digest: &Sha256Digest,
        request: &Manifest,
    ) -> Result<(), BundleError> {
        if self.kind() != BundleKind::Response {
            return Err(BundleError::Mismatch(
                "this bundle is not a response".into(),
            ));
        }
        if request.kind != BundleKind::Request {
            return Err(BundleError::Mismatch(
                "the other bundle is not a request".into(),
            ));
        }
        if self.request_digest() != *request_digest {
            return Err(BundleError::Mismatch(format!(
                "the response answers request {} but this request is {}",
                self.request_digest().fingerprint(),
                request_digest.fingerprint()
            )));
        }
        same_request_part(&self.manifest, request)
    }
}

/// Merges two responses to the same request (see the module documentation). The result's
/// writer is `a`'s, its time the later of the two; steps are `a`'s followed by those of
/// `b` that `a` does not have.
pub fn combine(a: &TransferBundle, b: &TransferBundle) -> Result<TransferBundle, BundleError> {
    let (Some(ua), Some(ub), Some(ra), Some(rb)) = (&a.upload, &b.upload, &a.record, &b.record)
    else {
        return Err(BundleError::Mismatch(
            "only two responses can be combined".into(),
        ));
    };
    if a.request_digest() != b.request_digest() {
        return Err(BundleError::Mismatch(format!(
            "they answer different requests ({} and {})",
            a.request_digest().fingerprint(),
            b.request_digest().fingerprint()
        )));
    }
    same_request_part(&a.manifest, &b.manifest)?;
    let mut upload = ua.clone();
    for (what, x, y, out) in [
        ("ci-root", &ua.ci_root, &ub.ci_root, 0),
        ("prod-root", &ua.prod_root, &ub.prod_root, 1),
    ] {
        if signed_digest(x, what)? != signed_digest(y, what)? || x.extra != y.extra {
            return Err(BundleError::Conflict {
                document: what.to_string(),
            });
        }
        let merged = merge_sigs(&x.signatures, &y.signatures);
        if out == 0 {
            upload.ci_root.signatures = merged;
        } else {
            upload.prod_root.signatures = merged;
        }
    }
    for (name, sigs) in &ub.targets_signatures {
        let entry = upload.targets_signatures.entry(name.clone()).or_default();
        *entry = merge_sigs(entry, sigs);
    }
    for (name, sigs) in &ub.waves_signatures {
        let entry = upload.waves_signatures.entry(name.clone()).or_default();
        *entry = merge_sigs(entry, sigs);
    }
    let mut record = ra.clone();
    for step in &rb.steps {
        if !record.steps.contains(step) {
            record.steps.push(step.clone());
        }
    }
    let created = a.manifest.created.max(b.manifest.created);
    a.with_response(a.manifest.writer.clone(), created, &upload, &record)
}

/// Same factory, txid, operations and request members.
fn same_request_part(a: &Manifest, b: &Manifest) -> Result<(), BundleError> {
    if a.factory != b.factory {
        return Err(BundleError::Mismatch(format!(
            "factory {:?} vs {:?}",
            a.factory, b.factory
        )));
    }
    if a.txid != b.txid {
        return Err(BundleError::Mismatch(format!(
            "transaction {:?} vs {:?}",
            a.txid, b.txid
        )));
    }
    if a.operations != b.operations {
        return Err(BundleError::Mismatch(
            "the requested operations differ".into(),
        ));
    }
    // Both bundles were validated: each member's bytes are the size and digest listed.
    fn request_part(m: &Manifest) -> BTreeMap<&str, (u64, Sha256Digest)> {
        m.members
            .iter()
            .filter(|m| m.name != UPLOAD && m.name != RECORD)
            .map(|m| (m.name.as_str(), (m.size, m.sha256)))
            .collect()
    }
    let (pa, pb) = (request_part(a), request_part(b));
    for name in pa.keys().chain(pb.keys()) {
        if pa.get(name) != pb.get(name) {
            return Err(BundleError::Mismatch(format!("member {name} differs")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Compression;
    use crate::authority::Change;
    use crate::bundle::fixtures::*;
    use serde_json::json;

    #[test]
    fn steps_are_attested_and_bound_to_their_output() {
        let req = request();
        let upload = upload_signed_by(&req, &[&key(1)]);
        let mut st = step(upload.clone(), vec![Operation::SignRoot]);
        st.authorized = vec![Change::Expires {
            expires: ts("2028-01-01T00:00:00Z"),
        }];
        let resp = req.respond_test(st).unwrap();
        assert_eq!(resp.manifest().format_version, FORMAT_VERSION);
        let auth = resp.record_steps_auth();
        assert_eq!(auth, vec![StepAuth::Signed(test_identity().public())]);
        let rec = resp.record().unwrap().clone();
        let out = rec.steps[0].output.unwrap();
        assert_eq!(
            out.ci_root,
            Sha256Digest::of(&upload.ci_root.canonical_signed().unwrap())
        );
        // The claim of a step is covered by its attestation: an edited claim breaks it.
        let mut edited = rec.steps[0].clone();
        edited.authorized = Some(vec![]);
        assert!(matches!(
            resp.step_auth(&edited, &rec.request_sha256),
            StepAuth::Broken { .. }
        ));
        // So is the binding to the request.
        assert!(matches!(
            resp.step_auth(&rec.steps[0], &Sha256Digest([9; 32])),
            StepAuth::Broken { .. }
        ));
        let mut stripped = rec.steps[0].clone();
        stripped.attestation = None;
        assert_eq!(
            resp.step_auth(&stripped, &rec.request_sha256),
            StepAuth::Unsigned
        );
        // Drafts changed after the step: refused on read (the output no longer matches).
        let mut other = upload.clone();
        other.ci_root.signed.expires = ts("2029-01-01T00:00:00Z");
        other.prod_root.signed.expires = ts("2029-01-01T00:00:00Z");
        let (w, t) = (resp.manifest().writer.clone(), resp.manifest().created);
        let err = req.with_response(w, t, &other, &rec).unwrap_err();
        assert!(err.to_string().contains("changed after the step"), "{err}");
        // Format 1 responses have none of these members.
        let v1 = repack(&resp, false, |m, _| {
            m.insert("format-version".into(), json!(1));
        });
        let err = TransferBundle::from_bytes(&v1).unwrap_err();
        assert!(err.to_string().contains("format 2 members"), "{err}");
    }

    #[test]
    fn respond_records_new_signatures() {
        let req = request();
        let k1 = key(1);
        let k2 = key(2);
        let mut upload = upload_signed_by(&req, &[&k1]);
        let prod = req.prod_targets().unwrap();
        let msg = prod["production"].canonical_signed().unwrap();
        upload
            .targets_signatures
            .insert("production".into(), vec![k2.sign(&msg)]);
        let resp = req
            .respond_test(step(upload.clone(), vec![Operation::SignRoot]))
            .unwrap();
        assert_eq!(resp.kind(), BundleKind::Response);
        assert_eq!(resp.request_digest(), req.digest());
        resp.check_answers(&req).unwrap();
        let record = resp.record().unwrap();
        assert_eq!(record.steps.len(), 1);
        let s = &record.steps[0];
        assert_eq!(s.input_sha256, req.digest());
        let docs: Vec<_> = s.signatures.iter().map(|d| d.document.as_str()).collect();
        assert_eq!(docs, ["ci-root", "prod-root", "prod-targets/production"]);
        assert_eq!(s.signatures[0].keyids, vec![k1.keyid().clone()]);
        assert_eq!(
            s.signatures[0].sha256,
            Sha256Digest::of(&upload.ci_root.canonical_signed().unwrap())
        );
        assert_eq!(s.signatures[2].sha256, Sha256Digest::of(&msg));
        assert_eq!(resp.manifest().steps.len(), 1);
        // Round trip through bytes.
        let back = TransferBundle::from_bytes(&resp.to_bytes(Compression::Gzip).unwrap()).unwrap();
        assert_eq!(back.digest(), resp.digest());
        assert_eq!(back.upload(), Some(&upload));

        // A second step only records what it added.
        let mut upload2 = upload.clone();
        let msg = upload2.ci_root.canonical_signed().unwrap();
        upload2.ci_root.add_signature(k2.sign(&msg));
        let resp2 = resp
            .respond_test(step(upload2, vec![Operation::SignRoot]))
            .unwrap();
        let steps = &resp2.record().unwrap().steps;
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1].input_sha256, resp.digest());
        assert_eq!(steps[1].signatures.len(), 1);
        assert_eq!(steps[1].signatures[0].keyids, vec![k2.keyid().clone()]);
        assert_eq!(resp2.request_digest(), req.digest());
        resp2.check_answers(&req).unwrap();
        // A response does not answer another request.
        let mut other_input = request_input();
        other_input.txid = "tx-2".into();
        let other = TransferBundle::new_request(other_input).unwrap();
        assert!(matches!(
            resp2.check_answers(&other),
            Err(BundleError::Mismatch(_))
        ));
        assert!(matches!(
            req.check_answers(&req),
            Err(BundleError::Mismatch(_))
        ));
    }

    #[test]
    fn a_response_written_as_it_is_made_is_the_response() {
        let dir = tempfile::tempdir().unwrap();
        let req_path = dir.path().join("req.tufbundle");
        request()
            .write_atomic(&req_path, Compression::None)
            .unwrap();
        // The request's documents stay in its file and are copied from there.
        let req = TransferBundle::read(&req_path).unwrap();
        let st = || {
            step(
                upload_signed_by(&req, &[&key(1)]),
                vec![Operation::SignRoot],
            )
        };
        let out = dir.path().join("resp.tufbundle");
        let written = req
            .respond_to_file(st(), &test_identity(), &out, Compression::None)
            .unwrap();
        let made = req.respond_test(st()).unwrap();
        assert_eq!(written.digest(), made.digest());
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(Sha256Digest::of(&bytes), written.digest());
        assert_eq!(bytes, made.to_bytes(Compression::None).unwrap());
        // An invalid step writes nothing.
        let bad_out = dir.path().join("bad.tufbundle");
        let mut bad = st();
        bad.upload.txid = "other".into();
        assert!(req
            .respond_to_file(bad, &test_identity(), &bad_out, Compression::None)
            .is_err());
        assert!(!bad_out.exists());
    }

    #[test]
    fn respond_refuses_bad_uploads() {
        let req = request();
        let mut upload = upload_signed_by(&req, &[]);
        upload.txid = "other".into();
        assert!(matches!(
            req.respond_test(step(upload, vec![])),
            Err(BundleError::Invalid(_))
        ));
        let mut upload = upload_signed_by(&req, &[]);
        upload.waves_signatures.insert("ghost".into(), vec![]);
        let err = req.respond_test(step(upload, vec![])).unwrap_err();
        assert!(err.to_string().contains("ghost"), "{err}");
    }

    #[test]
    fn combine_merges_and_refuses_conflicts() {
        let req = request();
        let (k1, k2) = (key(1), key(2));
        let a = req
            .respond_test(step(
                upload_signed_by(&req, &[&k1]),
                vec![Operation::SignRoot],
            ))
            .unwrap();
        let mut ub = upload_signed_by(&req, &[&k2]);
        let msg = req.waves().unwrap()["wave1"].canonical_signed().unwrap();
        ub.waves_signatures
            .insert("wave1".into(), vec![k2.sign(&msg)]);
        let mut sb = step(
            ub,
            vec![Operation::SignWave {
                name: "wave1".into(),
            }],
        );
        sb.time = ts("2026-03-03T09:00:00Z");
        let b = req.respond_test(sb).unwrap();
        let c = combine(&a, &b).unwrap();
        let up = c.upload().unwrap();
        let ids: Vec<_> = up
            .ci_root
            .signatures
            .iter()
            .map(|s| s.keyid.clone())
            .collect();
        assert_eq!(ids, vec![k1.keyid().clone(), k2.keyid().clone()]);
        assert_eq!(up.prod_root.signatures.len(), 2);
        assert_eq!(up.waves_signatures["wave1"].len(), 1);
        assert_eq!(c.record().unwrap().steps.len(), 2);
        assert_eq!(c.manifest().created, ts("2026-03-03T09:00:00Z"));
        c.check_answers(&req).unwrap();
        // Combining again is idempotent.
        assert_eq!(combine(&c, &b).unwrap().digest(), c.digest());
        // Different signed content.
        let mut uc = upload_signed_by(&req, &[&k2]);
        uc.ci_root.signed.version += 1;
        uc.ci_root.signatures.clear();
        let conflicting = req.respond_test(step(uc, vec![])).unwrap();
        let err = combine(&a, &conflicting).unwrap_err();
        assert!(
            matches!(err, BundleError::Conflict { ref document } if document == "ci-root"),
            "{err}"
        );
        // Not responses / different requests.
        assert!(matches!(combine(&req, &a), Err(BundleError::Mismatch(_))));
        let mut other_input = request_input();
        other_input.created = ts("2026-03-01T10:00:01Z");
        let other = TransferBundle::new_request(other_input).unwrap();
        let o = other
            .respond_test(step(upload_signed_by(&other, &[&k1]), vec![]))
            .unwrap();
        assert!(matches!(combine(&a, &o), Err(BundleError::Mismatch(_))));
    }
}
