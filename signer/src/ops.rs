//! The operations that create keys and sign: rotate, add, delete, threshold, sign,
//! sign production targets, sign a wave, combine.
//!
//! Every operation is parse → plan → act:
//!
//! 1. **plan** (nothing is written): refuse leftover temporary files of an interrupted run;
//!    read and verify the bundle (integrity, transaction state, chain from the pinned root,
//!    expiry); check that the bundle requests this operation; open the keys files; compute
//!    the new drafts and signatures in memory; run the intent check; show the plan and ask
//!    for confirmation (or `--yes`);
//! 2. **act**, in this order: write every changed keys file atomically — **before** the
//!    response, so no signed root can ever reference a key the person does not hold — and
//!    record the created keys in the audit log; write the response bundle atomically and
//!    record its signatures; advance the trust pin if the bundle proved a newer root was
//!    applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use shared::archive::Compression;
use shared::bundle::{self, Operation, StepInput, TransferBundle, Upload, Writer};
use shared::fsutil;
use shared::keys::{KeyId, KeyType, PrivateKey, Signature};
use shared::metadata::{KeyOwner, Role, Root, SignedRoot, SignedTargets, Timestamp};
use shared::tarball::{FoundKey, KeysTarball, TarballError};
use shared::transform;
use shared::verify;

use crate::audit::{self, AuditEvent};
use crate::cli::{
    AddKeyArgs, BundleIo, CheckArgs, CombineArgs, DeleteKeyArgs, RotateArgs, SignArgs,
    SignTargetsArgs, SignWaveArgs, ThresholdArgs,
};
use crate::error::{Result, SignerError};
use crate::identity;
use crate::intent::{self, Explanation};
use crate::keystore::{self, KeystoreError, PassphraseSource};
use crate::session::{self, Loaded, Trusted};
use crate::state::StateDir;
use crate::ui::Ui;

/// Name and version recorded in response bundles and signing records.
pub fn writer() -> Writer {
    Writer::new("signer", env!("CARGO_PKG_VERSION"))
}

/// What a command needs besides its arguments.
pub struct Ctx<'a> {
    /// The state directory.
    pub state: StateDir,
    /// Output and confirmation.
    pub ui: &'a mut Ui,
    /// The time of this run.
    pub now: Timestamp,
}

/// What an operation did (for tests and callers).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The response written.
    pub out: PathBuf,
    /// Its fingerprint.
    pub fingerprint: String,
    /// Keys created: (key id, role, keys file).
    pub created: Vec<(KeyId, Role, PathBuf)>,
    /// Signatures made: (document, key ids).
    pub signed: Vec<(String, Vec<KeyId>)>,
    /// Whether the trust pin advanced.
    pub pin_advanced: bool,
}

/// One signature event, for the plan, the audit log and the outcome.
#[derive(Debug, Clone)]
struct SigEvent {
    document: String,
    keyids: Vec<KeyId>,
    sha256: String,
}

/// A keys file opened for this run.
struct Tarball {
    path: PathBuf,
    keys: KeysTarball,
    existed: bool,
    dirty: bool,
    created: Vec<(KeyId, Role, KeyType)>,
}

/// The keys files of one run (the same path opened twice is one file).
struct Tarballs {
    files: Vec<Tarball>,
    /// Passphrase of encrypted files (asked once, reused when saving).
    pass: PassphraseSource,
}

fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

impl Tarballs {
    fn index(&self, path: &Path) -> Option<usize> {
        self.files.iter().position(|t| same_file(&t.path, path))
    }

    /// Opens `path` (once); a missing file is an error unless `create`.
    fn open(&mut self, path: &Path, create: bool) -> Result<usize> {
        if let Some(i) = self.index(path) {
            return Ok(i);
        }
        let (keys, existed) = if create {
            keystore::open_or_empty(path, &self.pass)?
        } else {
            (keystore::open(path, &self.pass)?, true)
        };
        self.files.push(Tarball {
            path: path.to_path_buf(),
            keys,
            existed,
            dirty: false,
            created: Vec::new(),
        });
        Ok(self.files.len() - 1)
    }

    /// A brand-new keys file (first-time rotation).
    fn create(&mut self, path: &Path, keys: KeysTarball) -> usize {
        self.files.push(Tarball {
            path: path.to_path_buf(),
            keys,
            existed: false,
            dirty: true,
            created: Vec::new(),
        });
        self.files.len() - 1
    }

    fn paths(&self, idx: &[usize]) -> String {
        idx.iter()
            .map(|i| self.files[*i].path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The one private key among `candidates` of `root` that the files `idx` hold: per
    /// file at most one (fioctl's rule), the first file that has one wins.
    /// The one offline targets key of `root` (its targets keys other than `online`) held in
    /// tarball `idx`: `None` when the root has no offline targets key, an error naming the
    /// file when the root has one but the file does not hold it.
    fn offline_targets_key(
        &self,
        idx: usize,
        path: &Path,
        root: &Root,
        online: &KeyId,
        which: &'static str,
    ) -> Result<Option<KeyId>> {
        let offline: Vec<KeyId> = root
            .role_keyids(Role::Targets)
            .iter()
            .filter(|k| *k != online)
            .cloned()
            .collect();
        if offline.is_empty() {
            return Ok(None);
        }
        let found = self
            .find(&[idx], root, &offline, Role::Targets)?
            .ok_or_else(|| SignerError::NoKey {
                path: path.display().to_string(),
                role: Role::Targets,
                which,
                keyids: offline
                    .iter()
                    .map(KeyId::short)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        Ok(Some(found.keyid))
    }

    fn find(
        &self,
        idx: &[usize],
        root: &Root,
        candidates: &[KeyId],
        role: Role,
    ) -> Result<Option<FoundKey>> {
        for i in idx {
            let t = &self.files[*i];
            let mut found = t
                .keys
                .find_signers(root, candidates)
                .map_err(|e| tar_err(&t.path, e))?;
            match found.len() {
                0 => continue,
                1 => return Ok(found.pop()),
                _ => {
                    return Err(SignerError::TwoActiveKeys {
                        path: t.path.clone(),
                        role,
                        keyids: found
                            .iter()
                            .map(|f| f.keyid.short())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            }
        }
        Ok(None)
    }

    /// Generates a key of `role` into file `i`.
    fn generate(&mut self, i: usize, role: Role, keytype: KeyType) -> Result<(KeyId, PrivateKey)> {
        let t = &mut self.files[i];
        let (keyid, _) = t
            .keys
            .add_generated_key(role, keytype)
            .map_err(|e| tar_err(&t.path, e))?;
        let key = t
            .keys
            .private_key(&keyid)
            .map_err(|e| tar_err(&t.path, e))?
            .ok_or_else(|| SignerError::Other("the generated key vanished".into()))?
            .key;
        t.dirty = true;
        t.created.push((keyid.clone(), role, keytype));
        Ok((keyid, key))
    }
}

fn tar_err(path: &Path, e: TarballError) -> SignerError {
    SignerError::Tarball {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The work of one run: drafts, signatures and the plan, all in memory.
struct Work<'l> {
    l: &'l Loaded,
    opname: String,
    ci: SignedRoot,
    prod: SignedRoot,
    targets_sigs: BTreeMap<String, Vec<Signature>>,
    waves_sigs: BTreeMap<String, Vec<Signature>>,
    explanations: Vec<Explanation>,
    step_ops: Vec<Operation>,
    signed: Vec<SigEvent>,
    plan: Vec<String>,
    tarballs: Tarballs,
    roots_changed: bool,
}

impl<'l> Work<'l> {
    fn new(l: &'l Loaded, opname: impl Into<String>, pass: PassphraseSource) -> Work<'l> {
        Work {
            l,
            opname: opname.into(),
            ci: l.draft_ci.clone(),
            prod: l.draft_prod.clone(),
            targets_sigs: l.targets_sigs.clone(),
            waves_sigs: l.waves_sigs.clone(),
            explanations: Vec::new(),
            step_ops: Vec::new(),
            signed: Vec::new(),
            plan: Vec::new(),
            tarballs: Tarballs {
                files: Vec::new(),
                pass,
            },
            roots_changed: false,
        }
    }

    /// Applies a changed CI root: fioctl's finalize (unused keys dropped, signatures
    /// cleared, production root derived keeping the staged production targets threshold).
    fn finalize(&mut self, ci: &Root, prev_prod: &Root) {
        let (ci, prod) = transform::finalize(ci, Some(prev_prod));
        self.ci = ci;
        self.prod = prod;
        self.roots_changed = true;
    }

    /// The owner entry for keys created now.
    fn owner(&self, now: &Timestamp) -> Option<KeyOwner> {
        let ext = self.l.bundle.manifest().extensions.get("x-polis-id");
        let meta = self
            .l
            .tx
            .extra
            .get("change-meta")
            .and_then(|m| m.get("updated-by").or_else(|| m.get("created-by")));
        ext.or(meta)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(|polis| KeyOwner {
                polis_id: polis.to_string(),
                created_at: *now,
                extra: BTreeMap::new(),
            })
    }

    /// Signs both roots (fioctl's `signNewTufRoot`): the staged root's key found in the
    /// files, then the current root's key if different. Returns whether anything signed.
    fn sign_roots(&mut self, idx: &[usize], required: bool) -> Result<bool> {
        let new = self.tarballs.find(
            idx,
            &self.ci.signed,
            self.ci.signed.role_keyids(Role::Root),
            Role::Root,
        )?;
        let cur = &self.l.current_ci.signed;
        let old = self
            .tarballs
            .find(idx, cur, cur.role_keyids(Role::Root), Role::Root)?;
        let mut signers: Vec<&PrivateKey> = Vec::new();
        if let Some(n) = &new {
            signers.push(&n.key);
        }
        if let Some(o) = &old {
            if new.as_ref().is_none_or(|n| n.keyid != o.keyid) {
                signers.push(&o.key);
            }
        }
        if signers.is_empty() {
            if required {
                let mut ids: Vec<String> = self
                    .ci
                    .signed
                    .role_keyids(Role::Root)
                    .iter()
                    .chain(cur.role_keyids(Role::Root))
                    .map(|k| k.short())
                    .collect();
                ids.dedup();
                return Err(SignerError::NoKey {
                    path: self.tarballs.paths(idx),
                    role: Role::Root,
                    which: "the staged or the current root",
                    keyids: ids.join(", "),
                });
            }
            return Ok(false);
        }
        let keyids: Vec<KeyId> = signers.iter().map(|k| k.keyid().clone()).collect();
        self.ci = transform::sign_root(&self.ci, &signers)?;
        self.prod = transform::sign_root(&self.prod, &signers)?;
        for (doc, root) in [("ci-root", &self.ci), ("prod-root", &self.prod)] {
            self.signed.push(SigEvent {
                document: doc.to_string(),
                keyids: keyids.clone(),
                sha256: sha256_hex(&root.canonical_signed()?),
            });
        }
        self.plan.push(format!(
            "sign the CI and production roots v{} with root key(s) {}",
            self.ci.signed.version,
            keyids
                .iter()
                .map(KeyId::short)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(true)
    }

    /// The offline targets key of `root` held in files `idx` (exactly one).
    fn targets_signer(&self, idx: &[usize], root: &Root) -> Result<FoundKey> {
        let online = self.l.online_targets()?;
        let candidates: Vec<KeyId> = root
            .role_keyids(Role::Targets)
            .iter()
            .filter(|k| **k != online)
            .cloned()
            .collect();
        if candidates.is_empty() {
            return Err(SignerError::refused(
                "the staged root has no offline targets key yet: run `signer rotate-offline-key --role targets` first",
            ));
        }
        self.tarballs
            .find(idx, root, &candidates, Role::Targets)?
            .ok_or_else(|| SignerError::NoKey {
                path: self.tarballs.paths(idx),
                role: Role::Targets,
                which: "the staged root",
                keyids: candidates
                    .iter()
                    .map(KeyId::short)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Refuses to re-sign a carried production targets (or wave) document unless at least
    /// one of its signatures, by a targets key of the current CI or production root, verifies:
    /// re-signing must never turn altered content into content signed by an offline key.
    fn check_carried_targets(&self, wave: bool, name: &str) -> Result<()> {
        let (docs, dir) = if wave {
            (&self.l.waves, "waves")
        } else {
            (&self.l.prod_targets, "prod-targets")
        };
        let Some(doc) = docs.get(name) else {
            return Ok(());
        };
        let msg = doc.canonical_signed()?;
        let roots = std::iter::once(&self.l.current_ci.signed)
            .chain(self.l.current_prod.as_ref().map(|p| &p.signed));
        let verified = roots.into_iter().any(|root| {
            doc.signatures.iter().any(|sig| {
                root.role_keyids(Role::Targets).contains(&sig.keyid)
                    && root
                        .keys
                        .get(&sig.keyid)
                        .is_some_and(|k| k.verify(&msg, sig).is_ok())
            })
        });
        if verified {
            Ok(())
        } else {
            Err(SignerError::Refused(format!(
                "{dir}/{name}.json carries no valid signature by a targets key of the current root: its content was altered after the server signed it (or it is not this factory's). Nothing was signed; do not use this bundle"
            )))
        }
    }

    /// Signs production targets `tag` (or wave `name` when `wave`) with `key`.
    fn sign_targets(&mut self, wave: bool, name: &str, key: &PrivateKey) -> Result<()> {
        let (docs, sigs, dir) = if wave {
            (&self.l.waves, &mut self.waves_sigs, "waves")
        } else {
            (&self.l.prod_targets, &mut self.targets_sigs, "prod-targets")
        };
        let doc: &SignedTargets = docs.get(name).ok_or_else(|| {
            SignerError::Usage(format!(
                "the bundle has no {dir}/{name}.json (it has: {})",
                docs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        // Canonicalize once: the signature and the audit digest cover the same bytes.
        let msg = doc.canonical_signed()?;
        let sig = key.sign(&msg);
        let entry = sigs.entry(name.to_string()).or_default();
        entry.retain(|s| s.keyid != sig.keyid);
        entry.push(sig);
        self.signed.push(SigEvent {
            document: format!("{dir}/{name}"),
            keyids: vec![key.keyid().clone()],
            sha256: sha256_hex(&msg),
        });
        self.plan.push(format!(
            "sign {dir}/{name} (version {}, {} targets, expires {}) with targets key {}",
            doc.signed.version,
            doc.signed.targets.len(),
            doc.signed.expires,
            key.keyid().short()
        ));
        Ok(())
    }

    fn explain(&mut self, op: &Operation, now: Timestamp, keys: (Option<KeyId>, Option<KeyId>)) {
        let changes = intent::changes_of(
            op,
            &self.l.current_ci.signed,
            &self.l.online,
            now,
            Some((&keys.0, &keys.1)),
        );
        self.explanations.push(Explanation {
            source: format!("this run: {op}"),
            required: true,
            changes,
        });
    }
}

/// Plan phase common to all operations: leftover files, bundle, trust.
fn prepare(
    ctx: &mut Ctx<'_>,
    io: &BundleIo,
    keyfiles: &[&Path],
    check: &CheckArgs,
) -> Result<(Loaded, Trusted)> {
    for k in keyfiles {
        let left = fsutil::leftover_temp_files(k)?;
        if !left.is_empty() {
            return Err(SignerError::LeftoverTemp {
                target: k.to_path_buf(),
                paths: left,
            });
        }
    }
    let left = fsutil::leftover_temp_files(&io.out)?;
    if !left.is_empty() {
        ctx.ui.line(format!(
            "Note: an earlier run left temporary file(s) next to {}: {}. They hold an unfinished response bundle (no keys) and can be deleted.",
            io.out.display(),
            left.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    audit::verify(ctx.state.path())?;
    let loaded = session::load(&io.bundle)?;
    ctx.ui.line(format!("Bundle: {}", loaded.describe()));
    let trusted = session::trust(&loaded, &ctx.state, &ctx.now, check.allow_expired)?;
    ctx.ui.line(format!(
        "Trust: root chain verified from the pinned version {} to the current version {} ({})",
        trusted.check.pinned_version,
        trusted.check.current_version,
        trusted.check.current_fingerprint
    ));
    Ok((loaded, trusted))
}

/// Refuses an operation the bundle does not request, unless accepted and confirmed.
fn require_requested(
    ctx: &mut Ctx<'_>,
    l: &Loaded,
    what: &str,
    accept: bool,
    matches: impl Fn(&Operation) -> bool,
) -> Result<()> {
    if l.bundle.operations().iter().any(matches) {
        return Ok(());
    }
    let requested = l
        .bundle
        .operations()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if !accept {
        return Err(SignerError::refused(format!(
            "this bundle does not request {what} (it requests: {requested}). Ask the online side for a request \
             with this operation, or re-run with --accept-unexplained"
        )));
    }
    ctx.ui.line(format!(
        "! The bundle does not request {what} (it requests: {requested})."
    ));
    ctx.ui.confirm("Perform it anyway?")
}

/// Act phase common to all operations.
fn finish(
    ctx: &mut Ctx<'_>,
    trusted: &Trusted,
    mut work: Work<'_>,
    out: &Path,
    check: &CheckArgs,
) -> Result<Outcome> {
    let l = work.l;
    // Intent.
    if l.has_draft {
        let mut explanations = l.explanations();
        explanations.append(&mut work.explanations);
        let report = intent::check(
            &l.current_ci.signed,
            l.current_prod.as_ref().map(|p| &p.signed),
            &work.ci.signed,
            &work.prod.signed,
            &explanations,
        );
        if work.roots_changed || !report.is_clean() {
            for line in crate::inspect::key_changes_table(&l.current_ci.signed, &work.ci.signed) {
                ctx.ui.line(line);
            }
        }
        intent::enforce(&report, check.accept_unexplained, ctx.ui)?;
    }
    // Plan.
    ctx.ui.line("This will:");
    for t in work.tarballs.files.iter().filter(|t| t.dirty) {
        for (id, role, kt) in &t.created {
            ctx.ui.line(format!(
                "  - create a new {kt} {role} key {id} in {}",
                t.path.display()
            ));
        }
        ctx.ui.line(format!(
            "  - {} {} (atomically, before the response is written)",
            if t.existed { "update" } else { "create" },
            t.path.display()
        ));
    }
    for p in &work.plan {
        ctx.ui.line(format!("  - {p}"));
    }
    ctx.ui
        .line(format!("  - write the response {}", out.display()));
    ctx.ui.confirm("Proceed?")?;

    // Act 1: keys files.
    let state = ctx.state.path().to_path_buf();
    let mut outcome = Outcome {
        out: out.to_path_buf(),
        ..Outcome::default()
    };
    fsutil::crash_point("signer:before-keys-save");
    for t in work.tarballs.files.iter().filter(|t| t.dirty) {
        // The passphrase of an encrypted file was cached when it was opened; a new
        // encrypted file asks for one (twice on a terminal).
        let pass = &work.tarballs.pass;
        let res = if t.existed {
            keystore::save(&t.path, &t.keys, pass)
        } else {
            keystore::save_new(&t.path, &t.keys, pass)
        };
        res.map_err(|e| match e {
            KeystoreError::AlreadyExists { path } => SignerError::KeysFileExists(path),
            other => other.into(),
        })?;
        for (id, role, kt) in &t.created {
            audit::record(
                &state,
                AuditEvent::KeyCreated {
                    keyid: id.clone(),
                    role: role.to_string(),
                    keytype: kt.to_string(),
                    tarball: t.path.display().to_string(),
                },
            )?;
            outcome.created.push((id.clone(), *role, t.path.clone()));
        }
        ctx.ui.line(format!("Wrote {}", t.path.display()));
    }
    fsutil::crash_point("signer:after-keys-save");
    // Act 2: the response.
    let upload = Upload {
        txid: l.bundle.txid().to_string(),
        ci_root: work.ci.clone(),
        prod_root: work.prod.clone(),
        targets_signatures: work.targets_sigs.clone(),
        waves_signatures: work.waves_sigs.clone(),
    };
    let response = l
        .bundle
        .respond(StepInput {
            signer: writer(),
            time: ctx.now,
            operations: std::mem::take(&mut work.step_ops),
            upload,
        })
        .map_err(SignerError::bundle)?;
    let bytes = response
        .to_bytes(Compression::Gzip)
        .map_err(SignerError::bundle)?;
    fsutil::crash_point("signer:before-response-write");
    fsutil::write_atomic(out, &bytes, bundle::FILE_MODE)?;
    fsutil::crash_point("signer:after-response-write");
    for s in &work.signed {
        audit::record(
            &state,
            AuditEvent::SignatureMade {
                operation: work.opname.clone(),
                document: s.document.clone(),
                keyids: s.keyids.clone(),
                sha256: s.sha256.clone(),
            },
        )?;
        outcome.signed.push((s.document.clone(), s.keyids.clone()));
    }
    audit::record(
        &state,
        AuditEvent::BundleWritten {
            path: out.display().to_string(),
            sha256: sha256_hex(&bytes),
        },
    )?;
    outcome.fingerprint = response.fingerprint();
    ctx.ui.line(format!(
        "Wrote the response {} (fingerprint {})",
        out.display(),
        outcome.fingerprint
    ));
    // Act 3: trust.
    outcome.pin_advanced = trusted.advance(l, &ctx.now)?;
    if outcome.pin_advanced {
        ctx.ui.line(format!(
            "The trusted root advanced to the applied version {}.",
            l.current_ci.signed.version
        ));
    }
    report_status(ctx.ui, l, &work.ci, &work.prod);
    Ok(outcome)
}

/// Says whether the roots now carry enough signatures, and what is still needed.
fn report_status(ui: &mut Ui, l: &Loaded, ci: &SignedRoot, prod: &SignedRoot) {
    if !l.has_draft {
        return;
    }
    let ok_ci = verify::verify_root_step(&l.current_ci, ci);
    let ok_prod = match &l.current_prod {
        Some(p) => verify::verify_root_step(p, prod),
        None => verify::verify_root_step(&l.current_ci, prod),
    };
    match (ok_ci, ok_prod) {
        (Ok(()), Ok(())) => ui.line(
            "The staged roots are signed by enough root keys: take the response to the courier (`courier updates push`).",
        ),
        (a, b) => {
            let why = a.err().or(b.err()).map(|e| e.to_string()).unwrap_or_default();
            ui.line(format!(
                "The staged roots still need root signatures ({why}). Take the response to the root key holder(s): \
                 `signer sign --keys <root keys file> {} -o <out>`.",
                "<this response>"
            ));
        }
    }
}

fn new_key_hint(ui: &mut Ui, path: &Path) {
    ui.line(format!(
        "Back up {} now (`signer keys backup --keys {} --to <dir>`): it holds a new private key.",
        path.display(),
        path.display()
    ));
}

/// `signer rotate-offline-key`.
pub fn rotate_offline_key(ctx: &mut Ctx<'_>, args: &RotateArgs) -> Result<Outcome> {
    match args.role.into() {
        Role::Root => rotate_root(ctx, args),
        _ => rotate_targets(ctx, args),
    }
}

fn rotate_root(ctx: &mut Ctx<'_>, args: &RotateArgs) -> Result<Outcome> {
    if args.targets_keys.is_some() {
        return Err(SignerError::Usage(
            "--targets-keys is only for --role targets".into(),
        ));
    }
    let keys_path = args
        .keys
        .as_deref()
        .ok_or_else(|| SignerError::Usage("--role root needs --keys FILE".into()))?;
    let (l, trusted) = prepare(ctx, &args.io, &[keys_path], &args.check)?;
    l.require_draft()?;
    let first_requested = l
        .bundle
        .operations()
        .contains(&Operation::FirstTimeRootRotation);
    let op = if args.first_time {
        Operation::FirstTimeRootRotation
    } else {
        if first_requested {
            return Err(SignerError::Usage(
                "this bundle requests the first-time root rotation: add --first-time".into(),
            ));
        }
        Operation::RootRotation
    };
    let op_name = op.to_string();
    require_requested(ctx, &l, &op_name, args.check.accept_unexplained, |o| {
        *o == op
    })?;
    let pass = args.passphrase.source();
    let now = ctx.now;
    let mut work = Work::new(
        &l,
        format!(
            "rotate-offline-key --role root{}",
            if args.first_time { " --first-time" } else { "" }
        ),
        pass,
    );
    let (file, old) = if args.first_time {
        if std::fs::symlink_metadata(keys_path).is_ok() {
            return Err(SignerError::KeysFileExists(keys_path.to_path_buf()));
        }
        let secret = l.bundle.first_root_secret().ok_or_else(|| {
            SignerError::refused(
                "the bundle carries no initial root key (secrets/first-root.sec.age); the courier must make the \
                 first-time request with `--first-time` after `courier config set-recipient`",
            )
        })?;
        let id = identity::load_identity(ctx.state.path())?;
        let plain = identity::decrypt(&id, secret)?;
        let key = PrivateKey::from_json(&plain).map_err(|e| {
            SignerError::refused(format!(
                "the decrypted initial root key is not a key file: {e}"
            ))
        })?;
        let cur = &l.current_ci.signed;
        let kid = key.keyid().clone();
        let matches = cur.role_keyids(Role::Root).contains(&kid)
            && cur
                .keys
                .get(&kid)
                .is_some_and(|p| p.same_key(key.public_key()));
        if !matches {
            return Err(SignerError::refused(format!(
                "the initial root key in the bundle ({}) is not the root key of the current root ({}); do not use this bundle",
                kid.short(),
                cur.role_keyids(Role::Root).iter().map(KeyId::short).collect::<Vec<_>>().join(", ")
            )));
        }
        let public = cur.keys[&kid].to_json();
        let mut tb = KeysTarball::new();
        tb.add_first_root(&public, &plain)
            .map_err(|e| tar_err(keys_path, e))?;
        (work.tarballs.create(keys_path, tb), kid)
    } else {
        let i = work.tarballs.open(keys_path, false)?;
        let found = work
            .tarballs
            .find(
                &[i],
                &work.ci.signed,
                work.ci.signed.role_keyids(Role::Root),
                Role::Root,
            )?
            .ok_or_else(|| SignerError::NoKey {
                path: keys_path.display().to_string(),
                role: Role::Root,
                which: "the staged root",
                keyids: work
                    .ci
                    .signed
                    .role_keyids(Role::Root)
                    .iter()
                    .map(KeyId::short)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        (i, found.keyid)
    };
    let (new_id, new_key) = work
        .tarballs
        .generate(file, Role::Root, args.key_type.into())?;
    let owner = work.owner(&now);
    let rotated = transform::rotate_offline_root_key(
        &work.ci.signed,
        &old,
        new_key.public_key(),
        owner,
        &now,
    )?;
    let prev_prod = work.prod.signed.clone();
    work.finalize(&rotated, &prev_prod);
    work.plan.push(format!(
        "replace root key {} by the new key {} and renew the expiry to {}",
        old.short(),
        new_id.short(),
        work.ci.signed.expires
    ));
    work.explain(&op, now, (Some(new_id), Some(old)));
    work.sign_roots(&[file], true)?;
    work.step_ops.push(op);
    let out = finish(ctx, &trusted, work, &args.io.out, &args.check)?;
    new_key_hint(ctx.ui, keys_path);
    Ok(out)
}

fn rotate_targets(ctx: &mut Ctx<'_>, args: &RotateArgs) -> Result<Outcome> {
    if args.first_time {
        return Err(SignerError::Usage(
            "--first-time is only for --role root".into(),
        ));
    }
    let tk_path = args
        .targets_keys
        .as_deref()
        .or(args.keys.as_deref())
        .ok_or_else(|| {
            SignerError::Usage("--role targets needs --targets-keys FILE and/or --keys FILE".into())
        })?;
    let mut files: Vec<&Path> = vec![tk_path];
    if let Some(k) = args.keys.as_deref() {
        files.push(k);
    }
    let (l, trusted) = prepare(ctx, &args.io, &files, &args.check)?;
    l.require_draft()?;
    let op = Operation::TargetsRotation;
    require_requested(
        ctx,
        &l,
        "targets-rotation",
        args.check.accept_unexplained,
        |o| *o == op,
    )?;
    let online = l.online_targets()?;
    let pass = args.passphrase.source();
    let now = ctx.now;
    let mut work = Work::new(&l, "rotate-offline-key --role targets", pass);
    let tk = work.tarballs.open(tk_path, true)?;
    let root_file = match args.keys.as_deref() {
        Some(k) => Some(work.tarballs.open(k, false)?),
        None => None,
    };
    if root_file == Some(tk) || args.targets_keys.is_none() {
        work.plan.push(
            "note: the targets key goes into the root keys file; separate files (--targets-keys) let you share the targets key without the root key"
                .to_string(),
        );
    }
    // The offline targets key being replaced in the staged root.
    let old = work.tarballs.offline_targets_key(
        tk,
        tk_path,
        &work.ci.signed,
        &online,
        "the staged root",
    )?;
    // Which documents the old key (of the *current* root) signed.
    let cur_online = l
        .current_online_targets()
        .cloned()
        .unwrap_or(online.clone());
    let resign_by = work.tarballs.offline_targets_key(
        tk,
        tk_path,
        &l.current_ci.signed,
        &cur_online,
        "the current root",
    )?;
    let (new_id, new_key) = work
        .tarballs
        .generate(tk, Role::Targets, args.key_type.into())?;
    let owner = work.owner(&now);
    let rotated = transform::rotate_offline_targets_key(
        &work.ci.signed,
        old.as_ref(),
        new_key.public_key(),
        owner,
        &online,
    )?;
    let prev_prod = work.prod.signed.clone();
    work.finalize(&rotated, &prev_prod);
    work.plan.push(match &old {
        Some(o) => format!(
            "replace offline targets key {} by the new key {}",
            o.short(),
            new_id.short()
        ),
        None => format!("add the first offline targets key {}", new_id.short()),
    });
    let signed_by_old = |d: &SignedTargets| match &resign_by {
        Some(id) => d.signatures.iter().any(|s| &s.keyid == id),
        // First targets rotation: every production target must reach threshold 2.
        None => true,
    };
    let tags: Vec<String> = l
        .prod_targets
        .iter()
        .filter(|(_, d)| signed_by_old(d))
        .map(|(t, _)| t.clone())
        .collect();
    let waves: Vec<String> = l
        .waves
        .iter()
        .filter(|(_, d)| signed_by_old(d))
        .map(|(t, _)| t.clone())
        .collect();
    for t in &tags {
        work.check_carried_targets(false, t)?;
        work.sign_targets(false, t, &new_key)?;
    }
    for w in &waves {
        work.check_carried_targets(true, w)?;
        work.sign_targets(true, w, &new_key)?;
    }
    if !waves.is_empty() {
        work.plan.push("note: a wave is active; the server may refuse a targets key rotation until it is complete".into());
    }
    work.explain(&op, now, (Some(new_id), old));
    let signed_roots = match root_file {
        Some(r) => work.sign_roots(&[r], true)?,
        None => false,
    };
    work.step_ops.push(op);
    let out = finish(ctx, &trusted, work, &args.io.out, &args.check)?;
    if !signed_roots {
        ctx.ui.line(
            "The roots are not signed (no --keys): hand the response to the root key holder for `signer sign`.",
        );
    }
    new_key_hint(ctx.ui, tk_path);
    Ok(out)
}

/// `signer add-offline-key`.
pub fn add_offline_key(ctx: &mut Ctx<'_>, args: &AddKeyArgs) -> Result<Outcome> {
    let role: Role = args.role.into();
    let (dest, root_keys): (&Path, Option<&Path>) = match role {
        Role::Root => {
            if args.targets_keys.is_some() {
                return Err(SignerError::Usage(
                    "--targets-keys is only for --role targets".into(),
                ));
            }
            let k = args.keys.as_deref().ok_or_else(|| {
                SignerError::Usage(
                    "--role root needs --keys FILE (the file for the new root key)".into(),
                )
            })?;
            (k, None)
        }
        _ => {
            let dest = args
                .targets_keys
                .as_deref()
                .or(args.keys.as_deref())
                .ok_or_else(|| {
                    SignerError::Usage(
                        "--role targets needs --targets-keys FILE and/or --keys FILE".into(),
                    )
                })?;
            (dest, args.keys.as_deref())
        }
    };
    let mut files = vec![dest];
    files.extend(root_keys);
    let (l, trusted) = prepare(ctx, &args.io, &files, &args.check)?;
    l.require_draft()?;
    require_requested(
        ctx,
        &l,
        &format!("add-offline-key {role}"),
        args.check.accept_unexplained,
        |o| matches!(o, Operation::AddOfflineKey { role: r, .. } if *r == role),
    )?;
    let pass = args.passphrase.source();
    let now = ctx.now;
    let mut work = Work::new(&l, format!("add-offline-key --role {role}"), pass);
    let d = work.tarballs.open(dest, true)?;
    let existing: Vec<KeyId> = match role {
        Role::Targets => {
            let online = l.online_targets()?;
            work.ci
                .signed
                .role_keyids(Role::Targets)
                .iter()
                .filter(|k| **k != online)
                .cloned()
                .collect()
        }
        _ => work.ci.signed.role_keyids(Role::Root).to_vec(),
    };
    if let Some(f) = work.tarballs.find(&[d], &work.ci.signed, &existing, role)? {
        return Err(SignerError::ActiveKeyPresent {
            path: dest.to_path_buf(),
            role,
            keyid: f.keyid,
        });
    }
    let (new_id, new_key) = work.tarballs.generate(d, role, args.key_type.into())?;
    let owner = work.owner(&now);
    let added = transform::add_offline_key(&work.ci.signed, role, new_key.public_key(), owner)?;
    let prev_prod = work.prod.signed.clone();
    work.finalize(&added, &prev_prod);
    work.plan
        .push(format!("add the new {role} key {}", new_id.short()));
    let op = Operation::AddOfflineKey {
        role,
        keyid: Some(new_id.clone()),
    };
    work.explain(&op, now, (Some(new_id), None));
    if role == Role::Targets {
        let tags: Vec<String> = l.prod_targets.keys().cloned().collect();
        let waves: Vec<String> = l.waves.keys().cloned().collect();
        for t in &tags {
            work.sign_targets(false, t, &new_key)?;
        }
        for w in &waves {
            work.sign_targets(true, w, &new_key)?;
        }
    }
    let signed_roots = match root_keys {
        Some(r) => {
            let i = work.tarballs.open(r, false)?;
            work.sign_roots(&[i], true)?
        }
        None => false,
    };
    work.step_ops.push(op);
    let out = finish(ctx, &trusted, work, &args.io.out, &args.check)?;
    if !signed_roots {
        ctx.ui.line("The roots are not signed yet: the holder of a current root key signs them with `signer sign`.");
    }
    new_key_hint(ctx.ui, dest);
    Ok(out)
}

/// `signer delete-offline-key`.
pub fn delete_offline_key(ctx: &mut Ctx<'_>, args: &DeleteKeyArgs) -> Result<Outcome> {
    let role: Role = args.role.into();
    let files: Vec<&Path> = args.keys.as_deref().into_iter().collect();
    let (l, trusted) = prepare(ctx, &args.io, &files, &args.check)?;
    l.require_draft()?;
    let op = Operation::DeleteOfflineKey {
        role,
        keyid: args.keyid.clone(),
    };
    require_requested(
        ctx,
        &l,
        &op.to_string(),
        args.check.accept_unexplained,
        |o| *o == op,
    )?;
    let online = match role {
        Role::Targets => Some(l.online_targets()?),
        _ => None,
    };
    let mut work = Work::new(
        &l,
        format!("delete-offline-key --role {role}"),
        args.passphrase.source(),
    );
    let removed =
        transform::remove_offline_key(&work.ci.signed, role, &args.keyid, online.as_ref())?;
    // The transform checks the CI threshold; the production targets threshold must stay
    // reachable too, or production targets could never be signed again.
    let left = removed.role_keyids(role).len() as u64;
    let prod_threshold = work.prod.signed.threshold(role);
    if left < prod_threshold {
        return Err(SignerError::refused(format!(
            "removing {} would leave {left} {role} key(s) but the production threshold is {prod_threshold}: \
             lower it first (`set-threshold --role {role}`) or add another key",
            args.keyid.short()
        )));
    }
    let prev_prod = work.prod.signed.clone();
    work.finalize(&removed, &prev_prod);
    work.plan.push(format!("remove {role} key {}", args.keyid));
    work.explain(&op, ctx.now, (None, None));
    sign_if_given(ctx, &mut work, args.keys.as_deref())?;
    work.step_ops.push(op);
    finish(ctx, &trusted, work, &args.io.out, &args.check)
}

fn sign_if_given(ctx: &mut Ctx<'_>, work: &mut Work<'_>, keys: Option<&Path>) -> Result<()> {
    match keys {
        Some(k) => {
            let i = work.tarballs.open(k, false)?;
            work.sign_roots(&[i], true)?;
        }
        None => ctx
            .ui
            .line("No --keys: the new roots stay unsigned; sign them with `signer sign --keys <root keys file>`."),
    }
    Ok(())
}

/// `signer set-threshold`.
pub fn set_threshold(ctx: &mut Ctx<'_>, args: &ThresholdArgs) -> Result<Outcome> {
    let role: Role = args.role.into();
    let files: Vec<&Path> = args.keys.as_deref().into_iter().collect();
    let (l, trusted) = prepare(ctx, &args.io, &files, &args.check)?;
    l.require_draft()?;
    let op = Operation::SetThreshold {
        role,
        threshold: args.threshold,
    };
    require_requested(
        ctx,
        &l,
        &op.to_string(),
        args.check.accept_unexplained,
        |o| *o == op,
    )?;
    let mut work = Work::new(
        &l,
        format!("set-threshold --role {role} {}", args.threshold),
        args.passphrase.source(),
    );
    let (ci, prod) =
        transform::set_threshold(&work.ci.signed, &work.prod.signed, role, args.threshold)?;
    work.finalize(&ci, &prod);
    work.plan.push(format!(
        "set the {} threshold to {}",
        if role == Role::Targets {
            "production targets"
        } else {
            "root"
        },
        args.threshold
    ));
    work.explain(&op, ctx.now, (None, None));
    sign_if_given(ctx, &mut work, args.keys.as_deref())?;
    work.step_ops.push(op);
    finish(ctx, &trusted, work, &args.io.out, &args.check)
}

/// `signer sign`.
pub fn sign(ctx: &mut Ctx<'_>, args: &SignArgs) -> Result<Outcome> {
    let files: Vec<&Path> = args.keys.iter().map(PathBuf::as_path).collect();
    let (l, trusted) = prepare(ctx, &args.io, &files, &args.check)?;
    l.require_draft()?;
    let mut work = Work::new(&l, "sign", args.passphrase.source());
    let mut idx = Vec::new();
    for f in &files {
        idx.push(work.tarballs.open(f, false)?);
    }
    work.sign_roots(&idx, true)?;
    work.step_ops.push(Operation::SignRoot);
    finish(ctx, &trusted, work, &args.io.out, &args.check)
}

/// `signer sign-prod-targets`.
pub fn sign_prod_targets(ctx: &mut Ctx<'_>, args: &SignTargetsArgs) -> Result<Outcome> {
    let file = targets_file(args.targets_keys.as_deref(), args.keys.as_deref())?;
    let (l, trusted) = prepare(ctx, &args.io, &[file], &args.check)?;
    let tags: Vec<String> = if args.tags.is_empty() {
        l.prod_targets.keys().cloned().collect()
    } else {
        args.tags.clone()
    };
    if tags.is_empty() {
        return Err(SignerError::refused(
            "the bundle has no production targets to sign",
        ));
    }
    let mut work = Work::new(&l, "sign-prod-targets", args.passphrase.source());
    let i = work.tarballs.open(file, false)?;
    let key = work.targets_signer(&[i], &l.draft_ci.signed)?.key;
    for t in &tags {
        work.sign_targets(false, t, &key)?;
    }
    work.step_ops.push(Operation::SignProdTargets { tags });
    finish(ctx, &trusted, work, &args.io.out, &args.check)
}

/// `signer sign-wave`.
pub fn sign_wave(ctx: &mut Ctx<'_>, args: &SignWaveArgs) -> Result<Outcome> {
    let file = targets_file(args.targets_keys.as_deref(), args.keys.as_deref())?;
    let (l, trusted) = prepare(ctx, &args.io, &[file], &args.check)?;
    let mut work = Work::new(&l, "sign-wave", args.passphrase.source());
    let i = work.tarballs.open(file, false)?;
    let key = work.targets_signer(&[i], &l.draft_ci.signed)?.key;
    work.sign_targets(true, &args.name, &key)?;
    work.step_ops.push(Operation::SignWave {
        name: args.name.clone(),
    });
    finish(ctx, &trusted, work, &args.io.out, &args.check)
}

fn targets_file<'a>(targets_keys: Option<&'a Path>, keys: Option<&'a Path>) -> Result<&'a Path> {
    targets_keys.or(keys).ok_or_else(|| {
        SignerError::Usage("give the targets keys file with --targets-keys FILE".into())
    })
}

/// `signer combine`.
pub fn combine(ctx: &mut Ctx<'_>, args: &CombineArgs) -> Result<Outcome> {
    let a = session::load(&args.a)?;
    let b = session::load(&args.b)?;
    for l in [&a, &b] {
        session::trust(l, &ctx.state, &ctx.now, args.allow_expired)?;
        ctx.ui
            .line(format!("{}: {}", l.path.display(), l.describe()));
    }
    let combined: TransferBundle =
        bundle::combine(&a.bundle, &b.bundle).map_err(SignerError::bundle)?;
    let bytes = combined
        .to_bytes(Compression::Gzip)
        .map_err(SignerError::bundle)?;
    fsutil::write_atomic(&args.out, &bytes, bundle::FILE_MODE)?;
    audit::record(
        ctx.state.path(),
        AuditEvent::BundleWritten {
            path: args.out.display().to_string(),
            sha256: sha256_hex(&bytes),
        },
    )?;
    ctx.ui.line(format!(
        "Wrote the combined response {} (fingerprint {})",
        args.out.display(),
        combined.fingerprint()
    ));
    let l = session::from_bundle(&args.out, combined)?;
    report_status(ctx.ui, &l, &l.draft_ci, &l.draft_prod);
    Ok(Outcome {
        out: args.out.clone(),
        fingerprint: l.bundle.fingerprint(),
        ..Outcome::default()
    })
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
