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

use shared::bundle::{self, Operation, StepInput, TransferBundle, Upload, Writer};
use shared::fsutil;
use shared::keys::{KeyId, PrivateKey, Signature};
use shared::metadata::{KeyOwner, Role, Root, SignedRoot, TargetsSummary, Timestamp};
use shared::tarball::KeysTarball;
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
use crate::keyset::{tar_err, Found, HeldKey, KeySet};
use crate::keysource::{KeyArgs, KeySigner, KeySource};
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
    tarballs: KeySet,
    roots_changed: bool,
}

impl<'l> Work<'l> {
    fn new(l: &'l Loaded, opname: impl Into<String>, keys: KeySet) -> Work<'l> {
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
            tarballs: keys,
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
        let mut signers: Vec<&HeldKey> = Vec::new();
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
                let all: Vec<KeyId> = self
                    .ci
                    .signed
                    .role_keyids(Role::Root)
                    .iter()
                    .chain(cur.role_keyids(Role::Root))
                    .cloned()
                    .collect();
                return Err(SignerError::NoKey {
                    path: self.tarballs.paths(idx),
                    role: Role::Root,
                    which: "the staged or the current root",
                    keyids: format!("{}{}", ids.join(", "), self.tarballs.recorded(&all)),
                });
            }
            return Ok(false);
        }
        let keyids: Vec<KeyId> = signers.iter().map(|k| k.keyid().clone()).collect();
        // Every signer (a tarball key or a token key) signs the canonical bytes of each root.
        let sign_all = |doc: &SignedRoot| -> Result<SignedRoot> {
            let msg = doc.canonical_signed()?;
            let sigs = signers
                .iter()
                .map(|k| k.sign(&msg))
                .collect::<Result<Vec<Signature>>>()?;
            Ok(transform::add_root_signatures(doc, sigs))
        };
        self.ci = sign_all(&self.ci)?;
        self.prod = sign_all(&self.prod)?;
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
            signers
                .iter()
                .map(|k| k.describe())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(true)
    }

    /// The offline targets key of `root` held in files `idx` (exactly one).
    fn targets_signer(&self, idx: &[usize], root: &Root) -> Result<Found> {
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
            .ok_or_else(|| {
                self.tarballs
                    .no_key(idx, Role::Targets, "the staged root", &candidates)
            })
    }

    /// Refuses to re-sign a carried production targets (or wave) document unless at least
    /// one of its signatures, by a targets key of the current CI or production root, verifies
    /// over `msg` (its canonical `signed` bytes): re-signing must never turn altered content
    /// into content signed by an offline key.
    fn check_carried_targets(
        &self,
        dir: &str,
        name: &str,
        doc: &TargetsSummary,
        msg: &[u8],
    ) -> Result<()> {
        let roots = std::iter::once(&self.l.current_ci.signed)
            .chain(self.l.current_prod.as_ref().map(|p| &p.signed));
        let verified = roots.into_iter().any(|root| {
            doc.signatures.iter().any(|sig| {
                root.role_keyids(Role::Targets).contains(&sig.keyid)
                    && root
                        .keys
                        .get(&sig.keyid)
                        .is_some_and(|k| k.verify(msg, sig).is_ok())
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

    /// Signs production targets `tag` (or wave `name` when `wave`) with `key`; first, when
    /// `check_carried`, checks the signature it carries (see `check_carried_targets`).
    fn sign_targets(
        &mut self,
        wave: bool,
        name: &str,
        key: &HeldKey,
        check_carried: bool,
    ) -> Result<()> {
        let l = self.l;
        let (docs, dir) = if wave {
            (&l.waves, "waves")
        } else {
            (&l.prod_targets, "prod-targets")
        };
        let doc: &TargetsSummary = docs.get(name).ok_or_else(|| {
            SignerError::Usage(format!(
                "the bundle has no {dir}/{name}.json (it has: {})",
                docs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        // Canonicalize once, from the member text: the check, the signature and the audit
        // digest cover the same bytes (and the response reuses their digest).
        let (msg, digest) = l
            .bundle
            .targets_signed(&format!("{dir}/{name}.json"))
            .map_err(SignerError::bundle)?;
        if check_carried {
            self.check_carried_targets(dir, name, doc, &msg)?;
        }
        let sig = key.sign(&msg)?;
        let sigs = if wave {
            &mut self.waves_sigs
        } else {
            &mut self.targets_sigs
        };
        let entry = sigs.entry(name.to_string()).or_default();
        entry.retain(|s| s.keyid != sig.keyid);
        entry.push(sig);
        self.signed.push(SigEvent {
            document: format!("{dir}/{name}"),
            keyids: vec![key.keyid().clone()],
            sha256: digest.to_string(),
        });
        self.plan.push(format!(
            "sign {dir}/{name} (version {}, {} targets, expires {}) with targets key {}",
            doc.version,
            doc.targets,
            doc.expires,
            key.describe()
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
    for p in work.tarballs.plan() {
        ctx.ui.line(format!("  - {p}"));
    }
    for p in &work.plan {
        ctx.ui.line(format!("  - {p}"));
    }
    ctx.ui
        .line(format!("  - write the response {}", out.display()));
    match work.signed.iter().find(|e| e.document == "ci-root") {
        Some(ci) => {
            ctx.ui.line(format!(
                "Draft CI root v{} digest (SHA-256 of its signed part): {}",
                work.ci.signed.version, ci.sha256
            ));
            ctx.ui.confirm_digest("Proceed?", &ci.sha256)?;
        }
        None => ctx.ui.confirm("Proceed?")?,
    }
    // A response that cannot be written must fail before any keys file changes.
    fsutil::probe_writable(out)?;

    // Act 1: keys files.
    let state = ctx.state.path().to_path_buf();
    let mut outcome = Outcome {
        out: out.to_path_buf(),
        ..Outcome::default()
    };
    // Acts 1 (keys files) and 2 (the response). If the response cannot be written (a full
    // disk), keys files this run created are removed again: no response references them.
    let acted = (|| {
        fsutil::crash_point("signer:before-keys-save");
        work.tarballs.save(|created, name| {
            match created {
                Some((id, role, kt)) => {
                    audit::record(
                        &state,
                        AuditEvent::KeyCreated {
                            keyid: id.clone(),
                            role: role.to_string(),
                            keytype: kt.to_string(),
                            tarball: name.to_string(),
                        },
                    )?;
                    outcome
                        .created
                        .push((id.clone(), role, PathBuf::from(name)));
                }
                None => ctx.ui.line(format!("Wrote {name}")),
            }
            Ok(())
        })?;
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
            .encoded(bundle::WRITE_COMPRESSION)
            .map_err(SignerError::bundle)?;
        fsutil::crash_point("signer:before-response-write");
        fsutil::write_atomic(out, &bytes, bundle::FILE_MODE)?;
        // A plain-tar file is the stream the response digest covers.
        let file_sha256 = match &bytes {
            std::borrow::Cow::Borrowed(_) => response.digest().to_string(),
            std::borrow::Cow::Owned(b) => sha256_hex(b),
        };
        Ok((response, file_sha256))
    })();
    let (response, file_sha256) = match acted {
        Ok(written) => written,
        Err(e) => return Err(discard_created_keys(&state, &work.tarballs, e)),
    };
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
            sha256: file_sha256,
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

fn new_key_hint(ui: &mut Ui, src: &KeySource) {
    match src {
        KeySource::Tarball(path) => ui.line(format!(
            "Back up {} now (`signer keys backup --keys {} --to <dir>`): it holds a new private key.",
            path.display(),
            path.display()
        )),
        KeySource::Pkcs11(uri) => ui.line(format!(
            "The new private key is on the token labelled {:?} and cannot be copied: keep the token safe, and add a second key on another token or in a backed-up tarball (`add-offline-key`) so that losing it does not lock you out.",
            uri.token
        )),
    }
}

/// The key sources of a command, before anything is opened.
fn keyset(ctx: &Ctx<'_>, k: &KeyArgs) -> KeySet {
    KeySet::new(
        k.passphrase.source(),
        k.pin.pin_file.clone(),
        ctx.state.path().to_path_buf(),
    )
}

/// Refuses a "new" key that the root already lists (a token `object=` label that names a
/// key in use, e.g. the same URI given for the old and the new key).
fn check_new_key(root: &Root, new_id: &KeyId, dest: &KeySource) -> Result<()> {
    if root.keys.contains_key(new_id) {
        return Err(SignerError::Usage(format!(
            "{dest} names key {} that the root already lists, not a new key: give the new key another object= label (--new-keys pkcs11:...;object=NEW-LABEL)",
            new_id.short()
        )));
    }
    Ok(())
}

/// The tarball paths among `srcs` (for the leftover-temporary-file check).
fn tarball_paths<'a>(srcs: &[&'a KeySource]) -> Vec<&'a Path> {
    srcs.iter().filter_map(|s| s.tarball()).collect()
}

/// `signer rotate-offline-key`.
pub fn rotate_offline_key(ctx: &mut Ctx<'_>, args: &RotateArgs) -> Result<Outcome> {
    match args.role.into() {
        Role::Root => rotate_root(ctx, args),
        _ => rotate_targets(ctx, args),
    }
}

fn rotate_root(ctx: &mut Ctx<'_>, args: &RotateArgs) -> Result<Outcome> {
    let k = &args.src;
    k.refuse(true, false, "is only for --role targets")?;
    if args.first_time {
        k.refuse(
            false,
            true,
            "does not go with --first-time: --keys names where the new root key goes",
        )?;
    }
    let keys_src = k
        .root()?
        .ok_or_else(|| SignerError::Usage("--role root needs --keys SOURCE".into()))?;
    // Where the new key goes: --new-keys (moving the root key), else where the old one is.
    let dest_src = k.new_keys.as_ref().unwrap_or(keys_src);
    let (l, trusted) = prepare(
        ctx,
        &args.io,
        &tarball_paths(&[keys_src, dest_src]),
        &args.check,
    )?;
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
    let now = ctx.now;
    let mut work = Work::new(
        &l,
        format!(
            "rotate-offline-key --role root{}",
            if args.first_time { " --first-time" } else { "" }
        ),
        keyset(ctx, k),
    );
    // (source of the old key, source of the new key, old key id)
    let (old_src, new_src, old) = if args.first_time {
        let secret = l.bundle.first_root_secret().ok_or_else(|| {
            SignerError::refused(
                "the bundle carries no initial root key (secrets/first-root.sec.age); the courier must make the \
                 first-time request with `--first-time` after `courier config set-recipient`",
            )
        })?;
        if let Some(path) = keys_src.tarball() {
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(SignerError::KeysFileExists(path.to_path_buf()));
            }
        }
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
        match keys_src {
            KeySource::Tarball(keys_path) => {
                let public = cur.keys[&kid].to_json();
                let mut tb = KeysTarball::new();
                tb.add_first_root(&public, &plain)
                    .map_err(|e| tar_err(keys_path, e))?;
                let i = work.tarballs.create(keys_path, tb);
                (i, i, kid)
            }
            KeySource::Pkcs11(_) => {
                // The initial key signs this rotation from memory and stops being a root
                // key with it; only the new key is kept, on the token.
                work.plan.push(
                    "use the initial root key from the bundle for this one signature (it is not stored: it stops being a root key with this rotation)"
                        .into(),
                );
                let m = work.tarballs.memory(key);
                let t = work.tarballs.open(keys_src, false)?;
                (m, t, kid)
            }
        }
    } else {
        let i = work.tarballs.open(keys_src, false)?;
        let staged = work.ci.signed.role_keyids(Role::Root).to_vec();
        let found = work
            .tarballs
            .find(&[i], &work.ci.signed, &staged, Role::Root)?
            .ok_or_else(|| {
                work.tarballs
                    .no_key(&[i], Role::Root, "the staged root", &staged)
            })?;
        let d = work.tarballs.open(dest_src, true)?;
        (i, d, found.keyid)
    };
    let object = match dest_src {
        KeySource::Pkcs11(u) => u.object.as_deref(),
        KeySource::Tarball(_) => None,
    };
    let (new_id, new_key) =
        work.tarballs
            .generate(new_src, Role::Root, args.key_type.into(), object)?;
    check_new_key(&l.current_ci.signed, &new_id, dest_src)?;
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
    let mut idx = vec![new_src];
    if old_src != new_src {
        idx.push(old_src);
    }
    work.sign_roots(&idx, true)?;
    work.step_ops.push(op);
    let out = finish(ctx, &trusted, work, &args.io.out, &args.check)?;
    new_key_hint(ctx.ui, dest_src);
    Ok(out)
}

fn rotate_targets(ctx: &mut Ctx<'_>, args: &RotateArgs) -> Result<Outcome> {
    if args.first_time {
        return Err(SignerError::Usage(
            "--first-time is only for --role root".into(),
        ));
    }
    let k = &args.src;
    let tk_src = k.targets_or_root()?.ok_or_else(|| {
        SignerError::Usage("--role targets needs --targets-keys SOURCE and/or --keys SOURCE".into())
    })?;
    let root_src = k.root()?;
    let dest_src = k.new_keys.as_ref().unwrap_or(tk_src);
    let mut srcs: Vec<&KeySource> = vec![tk_src, dest_src];
    srcs.extend(root_src);
    let (l, trusted) = prepare(ctx, &args.io, &tarball_paths(&srcs), &args.check)?;
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
    let now = ctx.now;
    let mut work = Work::new(&l, "rotate-offline-key --role targets", keyset(ctx, k));
    let tk = work.tarballs.open(tk_src, true)?;
    let dest = work.tarballs.open(dest_src, true)?;
    let root_file = match root_src {
        Some(r) => Some(work.tarballs.open(r, false)?),
        None => None,
    };
    if root_file == Some(dest) || (k.targets_keys.is_none() && k.new_keys.is_none()) {
        work.plan.push(
            "note: the targets key goes into the root keys source; separate sources (--targets-keys) let you share the targets key without the root key"
                .to_string(),
        );
    }
    // The offline targets key being replaced in the staged root.
    let old = work
        .tarballs
        .offline_targets_key(tk, &work.ci.signed, &online, "the staged root")?;
    // Which documents the old key (of the *current* root) signed.
    let cur_online = l
        .current_online_targets()
        .cloned()
        .unwrap_or(online.clone());
    let resign_by = work.tarballs.offline_targets_key(
        tk,
        &l.current_ci.signed,
        &cur_online,
        "the current root",
    )?;
    let object = match dest_src {
        KeySource::Pkcs11(u) => u.object.as_deref(),
        KeySource::Tarball(_) => None,
    };
    let (new_id, new_key) =
        work.tarballs
            .generate(dest, Role::Targets, args.key_type.into(), object)?;
    check_new_key(&l.current_ci.signed, &new_id, dest_src)?;
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
    let signed_by_old = |d: &TargetsSummary| match &resign_by {
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
        work.sign_targets(false, t, &new_key, true)?;
    }
    for w in &waves {
        work.sign_targets(true, w, &new_key, true)?;
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
    new_key_hint(ctx.ui, dest_src);
    Ok(out)
}

/// `signer add-offline-key`.
pub fn add_offline_key(ctx: &mut Ctx<'_>, args: &AddKeyArgs) -> Result<Outcome> {
    let role: Role = args.role.into();
    let k = &args.src;
    k.refuse(false, true, "is only for rotate-offline-key")?;
    let (dest, root_keys): (&KeySource, Option<&KeySource>) = match role {
        Role::Root => {
            k.refuse(true, false, "is only for --role targets")?;
            let d = k.root()?.ok_or_else(|| {
                SignerError::Usage(
                    "--role root needs --keys SOURCE (where the new root key goes)".into(),
                )
            })?;
            (d, None)
        }
        _ => {
            let dest = k.targets_or_root()?.ok_or_else(|| {
                SignerError::Usage(
                    "--role targets needs --targets-keys SOURCE and/or --keys SOURCE".into(),
                )
            })?;
            (dest, k.root()?)
        }
    };
    let mut srcs = vec![dest];
    srcs.extend(root_keys);
    let (l, trusted) = prepare(ctx, &args.io, &tarball_paths(&srcs), &args.check)?;
    l.require_draft()?;
    require_requested(
        ctx,
        &l,
        &format!("add-offline-key {role}"),
        args.check.accept_unexplained,
        |o| matches!(o, Operation::AddOfflineKey { role: r, .. } if *r == role),
    )?;
    let now = ctx.now;
    let mut work = Work::new(&l, format!("add-offline-key --role {role}"), keyset(ctx, k));
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
            path: PathBuf::from(work.tarballs.paths(&[d])),
            role,
            keyid: f.keyid,
        });
    }
    let object = match dest {
        KeySource::Pkcs11(u) => u.object.as_deref(),
        KeySource::Tarball(_) => None,
    };
    let (new_id, new_key) = work
        .tarballs
        .generate(d, role, args.key_type.into(), object)?;
    check_new_key(&l.current_ci.signed, &new_id, dest)?;
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
            work.sign_targets(false, t, &new_key, false)?;
        }
        for w in &waves {
            work.sign_targets(true, w, &new_key, false)?;
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
    args.src.refuse(
        true,
        true,
        "is not used by delete-offline-key (only --keys)",
    )?;
    let keys = args.src.root()?;
    let srcs: Vec<&KeySource> = keys.into_iter().collect();
    let (l, trusted) = prepare(ctx, &args.io, &tarball_paths(&srcs), &args.check)?;
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
        keyset(ctx, &args.src),
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
    sign_if_given(ctx, &mut work, keys)?;
    work.step_ops.push(op);
    finish(ctx, &trusted, work, &args.io.out, &args.check)
}

fn sign_if_given(ctx: &mut Ctx<'_>, work: &mut Work<'_>, keys: Option<&KeySource>) -> Result<()> {
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
    args.src
        .refuse(true, true, "is not used by set-threshold (only --keys)")?;
    let keys = args.src.root()?;
    let srcs: Vec<&KeySource> = keys.into_iter().collect();
    let (l, trusted) = prepare(ctx, &args.io, &tarball_paths(&srcs), &args.check)?;
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
        keyset(ctx, &args.src),
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
    sign_if_given(ctx, &mut work, keys)?;
    work.step_ops.push(op);
    finish(ctx, &trusted, work, &args.io.out, &args.check)
}

/// `signer sign`.
pub fn sign(ctx: &mut Ctx<'_>, args: &SignArgs) -> Result<Outcome> {
    args.src.refuse(
        true,
        true,
        "is not used by sign (give root keys with --keys)",
    )?;
    if args.src.keys.is_empty() {
        return Err(SignerError::Usage(
            "sign needs --keys SOURCE (a root keys file or a pkcs11: URI; repeat for several)"
                .into(),
        ));
    }
    let srcs: Vec<&KeySource> = args.src.keys.iter().collect();
    let (l, trusted) = prepare(ctx, &args.io, &tarball_paths(&srcs), &args.check)?;
    l.require_draft()?;
    let mut work = Work::new(&l, "sign", keyset(ctx, &args.src));
    let mut idx = Vec::new();
    for f in &srcs {
        idx.push(work.tarballs.open(f, false)?);
    }
    work.sign_roots(&idx, true)?;
    work.step_ops.push(Operation::SignRoot);
    finish(ctx, &trusted, work, &args.io.out, &args.check)
}

/// `signer sign-prod-targets`.
pub fn sign_prod_targets(ctx: &mut Ctx<'_>, args: &SignTargetsArgs) -> Result<Outcome> {
    let file = targets_source(&args.src)?;
    let (l, trusted) = prepare(ctx, &args.io, &tarball_paths(&[file]), &args.check)?;
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
    let mut work = Work::new(&l, "sign-prod-targets", keyset(ctx, &args.src));
    let i = work.tarballs.open(file, false)?;
    let key = work.targets_signer(&[i], &l.draft_ci.signed)?.key;
    for t in &tags {
        work.sign_targets(false, t, &key, false)?;
    }
    work.step_ops.push(Operation::SignProdTargets { tags });
    finish(ctx, &trusted, work, &args.io.out, &args.check)
}

/// `signer sign-wave`.
pub fn sign_wave(ctx: &mut Ctx<'_>, args: &SignWaveArgs) -> Result<Outcome> {
    let file = targets_source(&args.src)?;
    let (l, trusted) = prepare(ctx, &args.io, &tarball_paths(&[file]), &args.check)?;
    let mut work = Work::new(&l, "sign-wave", keyset(ctx, &args.src));
    let i = work.tarballs.open(file, false)?;
    let key = work.targets_signer(&[i], &l.draft_ci.signed)?.key;
    work.sign_targets(true, &args.name, &key, false)?;
    work.step_ops.push(Operation::SignWave {
        name: args.name.clone(),
    });
    finish(ctx, &trusted, work, &args.io.out, &args.check)
}

/// The targets key source of sign-prod-targets / sign-wave: --targets-keys, or one --keys.
fn targets_source(k: &KeyArgs) -> Result<&KeySource> {
    k.refuse(false, true, "is only for rotate-offline-key")?;
    if k.targets_keys.is_some() && !k.keys.is_empty() {
        return Err(SignerError::Usage(
            "give the targets key with either --targets-keys or --keys, not both".into(),
        ));
    }
    k.targets_or_root()?.ok_or_else(|| {
        SignerError::Usage("give the targets keys source with --targets-keys SOURCE".into())
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
        .encoded(bundle::WRITE_COMPRESSION)
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

/// The error of a run that failed after it may have saved keys files: removes the keys files
/// the run created (their keys are referenced by no response) and says so in the error.
fn discard_created_keys(state: &Path, tarballs: &KeySet, e: SignerError) -> SignerError {
    let discarded = tarballs.discard_created_files();
    if discarded.is_empty() {
        return e;
    }
    let mut said = Vec::new();
    for (path, removed) in discarded {
        match removed {
            Ok(()) => {
                let _ = audit::record(
                    state,
                    AuditEvent::KeysFileDiscarded {
                        tarball: path.display().to_string(),
                    },
                );
                said.push(format!(
                    "{} (created by this run, referenced by no response) was removed again",
                    path.display()
                ));
            }
            Err(err) => said.push(format!(
                "{} (created by this run, referenced by no response) could not be removed ({err}); delete it before running again",
                path.display()
            )),
        }
    }
    SignerError::ResponseNotWritten {
        cause: Box::new(e),
        cleanup: format!(
            "{}; nothing else changed, run the command again once the problem is fixed",
            said.join("; ")
        ),
    }
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
