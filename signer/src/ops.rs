//! The operations that create keys and sign: rotate, add, delete, threshold, accept new
//! online keys, sign, sign production targets, sign a wave, combine.
//!
//! Every operation is parse → plan → show → confirm → act, and the plan is a value
//! ([`Work`]) before anything is written:
//!
//! 1. **plan**: refuse leftover temporary files of an interrupted run; read and verify the
//!    bundle (integrity, transaction state, chain from the pinned root, no fork from a root
//!    this signer signed or pinned, expiry) — the trust pin advances here when the chain
//!    proves a newer root was applied ([`session::trust`]); check that the bundle requests this operation;
//!    open the key sources; compute the new drafts and signatures in memory, with this
//!    run's own [`Grant`] (the exact changes the typed command makes). A new key for a
//!    keys tarball is generated in memory; a new key on a PKCS#11 token is **not** created
//!    yet (a [`Deferred`] step).
//! 2. **show**: the key-change table, and every change of the drafts with its authority
//!    ([`Decision`]: this command, an authenticated cosigner step, or nothing), the
//!    documents to sign with what they endorse, the files to write.
//! 3. **confirm**: a run that signs roots refuses what must not be signed and asks the
//!    operator to type the code of each change nothing authorized (`--yes` refuses instead);
//!    then `Proceed?` (or the draft digest with `--root-confirmation digest`). Only now is a
//!    token key created, the drafts completed with it and shown again.
//! 4. **act**, in this order: write every changed keys file atomically — **before** the
//!    response, so no signed root can ever reference a key the person does not hold — and
//!    record the created keys in the audit log; remember the signed roots and endorsed
//!    targets ([`crate::memory`]); write the response bundle (its step signed with this
//!    signer's identity) atomically and record its signatures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use shared::authority::{Authority, Change, Grant};
use shared::bundle::{self, Operation, StepInput, TransferBundle, Upload, Writer};
use shared::fsutil;
use shared::keys::{KeyId, KeyType, PrivateKey, Signature};
use shared::metadata::{KeyOwner, Role, Root, SignedRoot, TargetsSummary, Timestamp};
use shared::tarball::KeysTarball;
use shared::transform;
use shared::verify;

use crate::audit::{self, AuditEvent};
use crate::authority::{self, Decision, StepView};
use crate::cli::{
    AddKeyArgs, BundleIo, CheckArgs, CombineArgs, DeleteKeyArgs, RotateArgs, RotateOnlineArgs,
    SignArgs, SignTargetsArgs, SignWaveArgs, ThresholdArgs,
};
use crate::error::{Result, SignerError};
use crate::identity;
use crate::keyset::{tar_err, Found, HeldKey, KeySet};
use crate::keysource::{KeyArgs, KeySigner, KeySource};
use crate::memory::{Endorsement, How};
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

/// What a run does with the new key it creates.
#[derive(Debug, Clone)]
enum NewKeyUse {
    /// Replace root key `old`; sign the roots with the new key and the sources `signers`.
    RotateRoot { old: KeyId, signers: Vec<usize> },
    /// Replace the offline targets key `old` (none: the first one); re-sign what
    /// `resign_by` verifiably signed; sign the roots with `root_keys` when given.
    RotateTargets {
        old: Option<KeyId>,
        resign_by: Vec<KeyId>,
        root_keys: Option<usize>,
    },
    /// Add a key to `role`; targets: sign what a current offline key verifiably signed;
    /// sign the roots with `root_keys` when given.
    Add {
        role: Role,
        resign_by: Vec<KeyId>,
        root_keys: Option<usize>,
    },
}

/// A new key to create in source `dest` of the run's key set; on a PKCS#11 token this waits
/// for the person's confirmation.
#[derive(Debug, Clone)]
struct Deferred {
    dest: usize,
    dest_src: KeySource,
    role: Role,
    keytype: KeyType,
    object: Option<String>,
    then: NewKeyUse,
    op: Operation,
}

/// How a carried production targets (or wave) document is treated by a run.
enum Carried {
    /// Its signature by one of these offline keys must verify; without one it is left
    /// (listed) for an explicit `sign-prod-targets`/`sign-wave`.
    SignedBy(Vec<KeyId>),
    /// The person asked to sign it (`sign-prod-targets`, `sign-wave`): every signature it
    /// carries by a current targets key must verify.
    Explicit,
}

/// The plan of one run: drafts, signatures, grants and lines to show, all in memory.
struct Work<'l> {
    l: &'l Loaded,
    opname: String,
    ci: SignedRoot,
    prod: SignedRoot,
    targets_sigs: BTreeMap<String, Vec<Signature>>,
    waves_sigs: BTreeMap<String, Vec<Signature>>,
    /// This run's own authority: the exact changes the typed command makes.
    grants: Vec<Change>,
    step_ops: Vec<Operation>,
    signed: Vec<SigEvent>,
    plan: Vec<String>,
    /// Documents not signed, with why (shown).
    left: Vec<String>,
    /// What the offline targets key endorsed in this run (remembered in the act phase).
    endorsed: Vec<(String, Endorsement)>,
    /// What this signer endorsed before (from its memory of the factory).
    known: BTreeMap<String, Endorsement>,
    /// The time of this run.
    now: Timestamp,
    tarballs: KeySet,
    roots_changed: bool,
    signs_roots: bool,
    first_time: bool,
    deferred: Option<Deferred>,
}

impl<'l> Work<'l> {
    fn new(
        l: &'l Loaded,
        trusted: &Trusted,
        now: Timestamp,
        opname: impl Into<String>,
        keys: KeySet,
    ) -> Work<'l> {
        Work {
            known: trusted.memory.endorsed.clone(),
            now,
            l,
            opname: opname.into(),
            ci: l.draft_ci.clone(),
            prod: l.draft_prod.clone(),
            targets_sigs: l.targets_sigs.clone(),
            waves_sigs: l.waves_sigs.clone(),
            grants: Vec::new(),
            step_ops: Vec::new(),
            signed: Vec::new(),
            plan: Vec::new(),
            left: Vec::new(),
            endorsed: Vec::new(),
            tarballs: keys,
            roots_changed: false,
            signs_roots: false,
            first_time: false,
            deferred: None,
        }
    }

    /// Applies a changed CI root: fioctl's finalize (unused keys dropped, signatures
    /// cleared, production root derived keeping the staged production targets threshold).
    fn finalize(&mut self, ci: &Root) {
        let prev_prod = self.prod.signed.clone();
        let (ci, prod) = transform::finalize(ci, Some(&prev_prod));
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
    /// sources, then the current root's key if different. Returns whether anything signed.
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
                let all: Vec<KeyId> = self
                    .ci
                    .signed
                    .role_keyids(Role::Root)
                    .iter()
                    .chain(cur.role_keyids(Role::Root))
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                return Err(SignerError::NoKey {
                    path: self.tarballs.paths(idx),
                    role: Role::Root,
                    which: "the staged or the current root",
                    keyids: format!(
                        "{}{}",
                        all.iter().map(KeyId::short).collect::<Vec<_>>().join(", "),
                        self.tarballs.recorded(&all)
                    ),
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
        self.signs_roots = true;
        Ok(true)
    }

    /// The offline targets key of `root` held in sources `idx` (exactly one).
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

    /// The offline targets keys of the current root (its targets keys except the online
    /// one): the keys whose signatures on carried documents mean "approved offline".
    fn current_offline_targets(&self) -> Vec<KeyId> {
        let online = self.l.current_online_targets().cloned();
        self.l
            .current_ci
            .signed
            .role_keyids(Role::Targets)
            .iter()
            .filter(|k| Some(*k) != online.as_ref())
            .cloned()
            .collect()
    }

    /// Whether carried document `dir/name` is to be signed under `how`: `Ok(true)` when a
    /// signature by one of the offline keys verifies (or, explicit, when every signature by
    /// a current targets key verifies); `Ok(false)` when it carries no signature by those
    /// offline keys; an error naming the document when a signature that should verify
    /// does not — its content was changed after it was signed.
    fn carried_ok(
        &self,
        dir: &str,
        name: &str,
        doc: &TargetsSummary,
        msg: &[u8],
        how: &Carried,
    ) -> Result<bool> {
        let roots = std::iter::once(&self.l.current_ci.signed)
            .chain(self.l.current_prod.as_ref().map(|p| &p.signed));
        let mut keys = BTreeMap::new();
        for root in roots {
            for id in root.role_keyids(Role::Targets) {
                if let Some(k) = root.keys.get(id) {
                    keys.insert(id.clone(), k.clone());
                }
            }
        }
        // Every signature it carries by a targets key of the current roots must verify: one
        // that does not means the content changed after that key signed it.
        let offline: &[KeyId] = match how {
            Carried::SignedBy(ids) => ids,
            Carried::Explicit => &[],
        };
        let mut valid_offline = 0;
        for sig in doc
            .signatures
            .iter()
            .filter(|s| keys.contains_key(&s.keyid))
        {
            let ok = keys
                .get(&sig.keyid)
                .is_some_and(|k| k.verify(msg, sig).is_ok());
            let is_offline = offline.contains(&sig.keyid);
            if !ok {
                return Err(SignerError::Refused(format!(
                    "{dir}/{name}.json: its signature by {} {} does not verify: the content was changed after that key signed it{}. Nothing was signed; do not use this bundle",
                    if is_offline {
                        "the offline targets key"
                    } else {
                        "targets key"
                    },
                    sig.keyid.short(),
                    if is_offline {
                        " (e.g. re-signed by the online key alone)"
                    } else {
                        ""
                    }
                )));
            }
            if is_offline {
                valid_offline += 1;
            }
        }
        Ok(match how {
            Carried::SignedBy(_) => valid_offline > 0,
            Carried::Explicit => true,
        })
    }

    /// Signs production targets `tag` (or wave `name` when `wave`) with `key`, after
    /// checking the document under `how`. Returns whether it was signed (a document that
    /// `how` leaves unsigned is listed in the plan instead).
    fn sign_targets(
        &mut self,
        wave: bool,
        name: &str,
        key: &HeldKey,
        how: &Carried,
    ) -> Result<bool> {
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
        if !self.carried_ok(dir, name, doc, &msg, how)? {
            self.left.push(format!(
                "{dir}/{name} (version {}, {} targets) unsigned: it carries no verified signature by an offline targets key, so nothing offline approved its content. Review it, then sign it explicitly (`signer {}`)",
                doc.version,
                doc.targets,
                if wave {
                    format!("sign-wave {name}")
                } else {
                    format!("sign-prod-targets --tags {name}")
                }
            ));
            return Ok(false);
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
        let document = format!("{dir}/{name}");
        self.signed.push(SigEvent {
            document: document.clone(),
            keyids: vec![key.keyid().clone()],
            sha256: digest.to_string(),
        });
        let builds = doc.build_versions.clone();
        let since = endorsement_note(&self.known, &document, doc);
        self.plan.push(format!(
            "sign {document} with targets key {}: version {}, {} targets, builds {}, expires {}{since}",
            key.describe(),
            doc.version,
            doc.targets,
            if builds.is_empty() {
                "-".to_string()
            } else {
                builds.iter().cloned().collect::<Vec<_>>().join(",")
            },
            doc.expires,
        ));
        self.endorsed.push((
            document,
            Endorsement {
                version: doc.version,
                builds,
                sha256: digest.to_string(),
                at: self.now,
            },
        ));
        Ok(true)
    }

    /// Re-signs the carried documents with `key` under `how` (rotations and additions of
    /// an offline targets key).
    fn sign_carried(&mut self, key: &HeldKey, resign_by: &[KeyId]) -> Result<()> {
        let how = Carried::SignedBy(resign_by.to_vec());
        let tags: Vec<String> = self.l.prod_targets.keys().cloned().collect();
        let waves: Vec<String> = self.l.waves.keys().cloned().collect();
        for t in &tags {
            self.sign_targets(false, t, key, &how)?;
        }
        for w in &waves {
            self.sign_targets(true, w, key, &how)?;
        }
        if self.l.waves.values().any(|w| !w.signatures.is_empty()) {
            self.plan.push(
                "note: a wave is active; the server may refuse a targets key rotation until it is complete"
                    .into(),
            );
        }
        Ok(())
    }

    /// Creates the new key now (a tarball key in memory, a token key prepared earlier) or,
    /// for a new key on a token, after the person confirmed ([`Deferred`]).
    fn new_key(&mut self, d: Deferred, now: &Timestamp) -> Result<()> {
        if self
            .tarballs
            .creates_on_token(d.dest, d.object.as_deref())?
        {
            self.plan.push(format!(
                "create a new {} {} key on {} once you confirm (its key id is shown then)",
                d.keytype,
                d.role,
                self.tarballs.name(d.dest)
            ));
            self.deferred = Some(d);
            return Ok(());
        }
        self.create_and_use(d, now)
    }

    /// Generates the deferred (or immediate) new key and completes the drafts with it.
    fn create_and_use(&mut self, d: Deferred, now: &Timestamp) -> Result<()> {
        let (new_id, new_key) =
            self.tarballs
                .generate(d.dest, d.role, d.keytype, d.object.as_deref())?;
        check_new_key(&self.l.current_ci.signed, &new_id, &d.dest_src)?;
        let owner = self.owner(now);
        match d.then {
            NewKeyUse::RotateRoot { old, signers } => {
                let rotated = transform::rotate_offline_root_key(
                    &self.ci.signed,
                    &old,
                    new_key.public_key(),
                    owner,
                    now,
                )?;
                self.finalize(&rotated);
                self.plan.push(format!(
                    "replace root key {} by the new key {} and renew the expiry to {}",
                    old.short(),
                    new_id.short(),
                    self.ci.signed.expires
                ));
                self.grants.extend([
                    Change::KeyAdded {
                        role: Role::Root,
                        keyid: new_id.clone(),
                    },
                    Change::KeyRemoved {
                        role: Role::Root,
                        keyid: old,
                    },
                    Change::Expires {
                        expires: transform::one_year_after(now),
                    },
                ]);
                let mut idx = vec![d.dest];
                idx.extend(signers.into_iter().filter(|i| *i != d.dest));
                self.sign_roots(&idx, true)?;
            }
            NewKeyUse::RotateTargets {
                old,
                resign_by,
                root_keys,
            } => {
                let online = self.l.online_targets()?;
                let rotated = transform::rotate_offline_targets_key(
                    &self.ci.signed,
                    old.as_ref(),
                    new_key.public_key(),
                    owner,
                    &online,
                )?;
                self.finalize(&rotated);
                self.plan.push(match &old {
                    Some(o) => format!(
                        "replace offline targets key {} by the new key {}",
                        o.short(),
                        new_id.short()
                    ),
                    None => format!("add the first offline targets key {}", new_id.short()),
                });
                self.grants.push(Change::KeyAdded {
                    role: Role::Targets,
                    keyid: new_id.clone(),
                });
                if let Some(o) = old {
                    self.grants.push(Change::KeyRemoved {
                        role: Role::Targets,
                        keyid: o,
                    });
                }
                self.sign_carried(&new_key, &resign_by)?;
                if let Some(r) = root_keys {
                    self.sign_roots(&[r], true)?;
                }
            }
            NewKeyUse::Add {
                role,
                resign_by,
                root_keys,
            } => {
                let added =
                    transform::add_offline_key(&self.ci.signed, role, new_key.public_key(), owner)?;
                self.finalize(&added);
                self.plan
                    .push(format!("add the new {role} key {}", new_id.short()));
                self.grants.push(Change::KeyAdded {
                    role,
                    keyid: new_id.clone(),
                });
                if role == Role::Targets {
                    self.sign_carried(&new_key, &resign_by)?;
                }
                if let Some(r) = root_keys {
                    self.sign_roots(&[r], true)?;
                }
            }
        }
        self.step_ops.push(match d.op {
            Operation::AddOfflineKey { role, .. } => Operation::AddOfflineKey {
                role,
                keyid: Some(new_id),
            },
            other => other,
        });
        Ok(())
    }

    /// The decision about the drafts as they stand, with this run's grants and the changes
    /// already confirmed.
    fn decide(&self, steps: &[StepView], confirmed: &[Change]) -> Decision {
        let grant = Grant {
            authority: Authority::Operator {
                command: self.opname.clone(),
            },
            changes: self.grants.clone(),
        };
        Decision::new(
            self.l,
            steps,
            &self.ci.signed,
            &self.prod.signed,
            std::slice::from_ref(&grant),
            confirmed,
        )
    }
}

/// "; new since v11 (endorsed here on …): 43, 44" for a document this signer endorsed
/// before, or a note that it never did.
fn endorsement_note(
    known: &BTreeMap<String, Endorsement>,
    document: &str,
    doc: &TargetsSummary,
) -> String {
    match known.get(document) {
        Some(e) => {
            let new: Vec<&String> = doc.build_versions.difference(&e.builds).collect();
            let gone: Vec<&String> = e.builds.difference(&doc.build_versions).collect();
            format!(
                "; since version {} endorsed here on {}: builds added {}, removed {}",
                e.version,
                e.at,
                if new.is_empty() {
                    "none".to_string()
                } else {
                    new.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
                },
                if gone.is_empty() {
                    "none".to_string()
                } else {
                    gone.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                }
            )
        }
        None => "; this signer has not endorsed this document before".to_string(),
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
    if let Some(a) = &trusted.advanced {
        ctx.ui.line(a.line());
    }
    ctx.ui
        .line(format!("Memory: {}", trusted.memory.describe()));
    Ok((loaded, trusted))
}

/// Refuses an operation the bundle does not request, unless `--allow-unrequested` and the
/// person confirms.
fn require_requested(
    ctx: &mut Ctx<'_>,
    l: &Loaded,
    what: &str,
    allow: bool,
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
    if !allow {
        return Err(SignerError::refused(format!(
            "this bundle does not request {what} (it requests: {requested}): is it the right bundle? Ask the online side for a request \
             with this operation, or re-run with --allow-unrequested"
        )));
    }
    ctx.ui.line(format!(
        "! The bundle does not request {what} (it requests: {requested})."
    ));
    ctx.ui.confirm("Perform it anyway?")
}

/// Shows the drafts' changes with their authority; for a run that signs roots, refuses
/// what must not be signed and has the person confirm what nothing authorized.
fn show_and_settle(
    ctx: &mut Ctx<'_>,
    work: &Work<'_>,
    steps: &[StepView],
    confirmed: &mut Vec<Change>,
) -> Result<()> {
    let l = work.l;
    for s in steps {
        ctx.ui.line(format!("  {}", s.describe()));
    }
    if !l.has_draft {
        return Ok(());
    }
    for line in crate::inspect::key_changes_table(&l.current_ci.signed, &work.ci.signed) {
        ctx.ui.line(line);
    }
    ctx.ui.line(format!(
        "  production targets threshold: {}",
        work.prod.signed.threshold(Role::Targets)
    ));
    let mut decision = work.decide(steps, confirmed);
    for line in decision.lines() {
        ctx.ui.line(line);
    }
    if work.signs_roots || work.deferred_signs_roots() {
        decision.settle(ctx.ui, ctx.state.path(), confirmed)?;
    } else {
        // This run signs no root: it vouches only for what it authorized, and says so.
        if !decision.refusals.is_empty() {
            return Err(SignerError::MustNotSign(decision.refusals));
        }
        let open = decision.unauthorized();
        if !open.is_empty() {
            ctx.ui.line(format!(
                "This run signs no root: the {} change(s) marked NOT AUTHORIZED are not vouched for by its step; the root key holder must authorize or refuse them.",
                open.len()
            ));
        }
    }
    Ok(())
}

impl Work<'_> {
    /// Whether the deferred key's use signs roots.
    fn deferred_signs_roots(&self) -> bool {
        match &self.deferred {
            Some(d) => match &d.then {
                NewKeyUse::RotateRoot { .. } => true,
                NewKeyUse::RotateTargets { root_keys, .. } | NewKeyUse::Add { root_keys, .. } => {
                    root_keys.is_some()
                }
            },
            None => false,
        }
    }
}

/// Show, confirm and act: common to all operations that write a response.
fn finish(
    ctx: &mut Ctx<'_>,
    mut trusted: Trusted,
    mut work: Work<'_>,
    out: &Path,
) -> Result<Outcome> {
    let l = work.l;
    let steps = authority::steps(l, ctx.state.path())?;
    let mut confirmed = Vec::new();
    show_and_settle(ctx, &work, &steps, &mut confirmed)?;
    let show_plan = |ui: &mut Ui, work: &Work<'_>| {
        ui.line("This will:");
        for p in work.tarballs.plan() {
            ui.line(format!("  - {p}"));
        }
        for p in &work.plan {
            ui.line(format!("  - {p}"));
        }
        for p in &work.left {
            ui.line(format!("  - leave {p}"));
        }
        ui.line(format!(
            "  - write the response {} (its step signed with this signer's identity)",
            out.display()
        ));
    };
    show_plan(ctx.ui, &work);
    if let Some(d) = work.deferred.take() {
        // A key on a token is created only now, after the person confirmed the plan.
        ctx.ui.confirm(&format!(
            "Create the new {} key on {} and continue?",
            d.role,
            work.tarballs.name(d.dest)
        ))?;
        work.create_and_use(d, &ctx.now)?;
        ctx.ui.line("Created; the completed plan:");
        show_and_settle(ctx, &work, &steps, &mut confirmed)?;
        show_plan(ctx.ui, &work);
        if let Some(ci) = work.signed.iter().find(|e| e.document == "ci-root") {
            let digest = ci.sha256.clone();
            ctx.ui.line(format!(
                "Draft CI root v{} digest (SHA-256 of its signed part): {digest}",
                work.ci.signed.version
            ));
            if ctx.ui.digest_confirmation() {
                ctx.ui.confirm_digest("Sign it?", &digest)?;
            }
        }
    } else {
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
    }
    // What this step vouches for: every change of its output drafts that is authorized.
    let authorized = work.decide(&steps, &confirmed).authorized();
    // A response that cannot be written must fail before any keys file changes.
    fsutil::probe_writable(out)?;
    let (signing_identity, created_identity) = identity::ensure_signing_identity(ctx.state.path())?;
    if created_identity {
        ctx.ui.line(format!(
            "Created this signer's signing identity {} (fingerprint {}); pin it on the other key holders' laptops (`signer cosigner add`).",
            signing_identity.public(),
            signing_identity.public().fingerprint()
        ));
    }

    // Act 1: keys files.
    let state = ctx.state.path().to_path_buf();
    let mut outcome = Outcome {
        out: out.to_path_buf(),
        ..Outcome::default()
    };
    // Acts 1 (keys files), 2 (memory) and 3 (the response). If the response cannot be
    // written (a full disk), keys files this run created are removed again: no response
    // references them.
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
        // Act 2: remember what this run signs (before it leaves the laptop).
        if work.signs_roots || !work.endorsed.is_empty() {
            let how = if work.first_time {
                How::SignedFirstTime
            } else {
                How::Signed
            };
            if work.signs_roots {
                trusted.memory.remember("ci-root", &work.ci, how, ctx.now)?;
                trusted
                    .memory
                    .remember("prod-root", &work.prod, how, ctx.now)?;
            }
            for (doc, e) in std::mem::take(&mut work.endorsed) {
                trusted.memory.endorse(&doc, e);
            }
            trusted.memory.save(&state)?;
        }
        // Act 3: the response.
        let upload = Upload {
            txid: l.bundle.txid().to_string(),
            ci_root: work.ci.clone(),
            prod_root: work.prod.clone(),
            targets_signatures: work.targets_sigs.clone(),
            waves_signatures: work.waves_sigs.clone(),
        };
        let response = l
            .bundle
            .respond(
                StepInput {
                    signer: writer(),
                    time: ctx.now,
                    operations: std::mem::take(&mut work.step_ops),
                    authorized,
                    upload,
                },
                &signing_identity,
            )
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
    outcome.pin_advanced = trusted.advanced.is_some();
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

/// The `object=` label of a token destination.
fn object_of(src: &KeySource) -> Option<String> {
    match src {
        KeySource::Pkcs11(u) => u.object.clone(),
        KeySource::Tarball(_) => None,
    }
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
    if args.lost_key.is_some() {
        return Err(SignerError::Usage(
            "--lost-key is only for --role targets: a lost root key cannot be replaced (the \
             root needs its signature); restore it from a backup (`signer keys restore`, \
             `signer keys combine`)"
                .into(),
        ));
    }
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
    require_requested(ctx, &l, &op_name, args.check.allow_unrequested, |o| {
        *o == op
    })?;
    if args.first_time {
        if let Some(done) = trusted.memory.first_time_rotation() {
            return Err(SignerError::refused(format!(
                "this signer already took factory {}'s initial root key offline: it signed the first-time rotation to root v{} on {} (sha256 {}). A second first-time rotation means the online side replays or forges one; do not sign it",
                l.bundle.factory(),
                done.version,
                done.at,
                done.sha256
            )));
        }
    }
    let now = ctx.now;
    let mut work = Work::new(
        &l,
        &trusted,
        ctx.now,
        format!(
            "rotate-offline-key --role root{}",
            if args.first_time { " --first-time" } else { "" }
        ),
        keyset(ctx, k),
    );
    work.first_time = args.first_time;
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
    work.new_key(
        Deferred {
            dest: new_src,
            dest_src: dest_src.clone(),
            role: Role::Root,
            keytype: args.key_type.into(),
            object: object_of(dest_src),
            then: NewKeyUse::RotateRoot {
                old,
                signers: vec![old_src],
            },
            op,
        },
        &now,
    )?;
    let out = finish(ctx, trusted, work, &args.io.out)?;
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
    if args.lost_key.is_some() && root_src.is_none() {
        return Err(SignerError::Usage(
            "--lost-key needs the root keys (--keys): the root key holder authorizes removing \
             a key nobody can show, and signs the roots"
                .into(),
        ));
    }
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
        args.check.allow_unrequested,
        |o| *o == op,
    )?;
    let online = l.online_targets()?;
    let now = ctx.now;
    let mut work = Work::new(
        &l,
        &trusted,
        ctx.now,
        "rotate-offline-key --role targets",
        keyset(ctx, k),
    );
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
    // The offline targets key being replaced in the staged root, and the one of the
    // *current* root whose verified signatures mark the documents to re-sign: found in the
    // targets keys source, or named by --lost-key when that source is gone.
    let cur_online = l
        .current_online_targets()
        .cloned()
        .unwrap_or(online.clone());
    let (old, resign_by) = match &args.lost_key {
        Some(lost) => {
            let lost = lost_targets_key(&l, lost, &online)?;
            work.plan.push(format!(
                "the offline targets key {} is lost: it is removed from the targets role by your \
                 command, and what it signed is re-signed by the new key",
                lost.short()
            ));
            (Some(lost.clone()), Some(lost))
        }
        None => {
            let lost_hint = |e: SignerError| match e {
                SignerError::NoKey { .. } => {
                    SignerError::LostTargetsKeyHint(Box::new(e), tk_hint(&args.src))
                }
                other => other,
            };
            let old = work
                .tarballs
                .offline_targets_key(tk, &work.ci.signed, &online, "the staged root")
                .map_err(lost_hint)?;
            let resign_by = work
                .tarballs
                .offline_targets_key(tk, &l.current_ci.signed, &cur_online, "the current root")
                .map_err(lost_hint)?;
            (old, resign_by)
        }
    };
    work.new_key(
        Deferred {
            dest,
            dest_src: dest_src.clone(),
            role: Role::Targets,
            keytype: args.key_type.into(),
            object: object_of(dest_src),
            then: NewKeyUse::RotateTargets {
                old,
                resign_by: resign_by.into_iter().collect(),
                root_keys: root_file,
            },
            op,
        },
        &now,
    )?;
    let signs_roots = root_file.is_some();
    let out = finish(ctx, trusted, work, &args.io.out)?;
    if !signs_roots {
        ctx.ui.line(
            "The roots are not signed (no --keys): hand the response to the root key holder for `signer sign`.",
        );
    }
    new_key_hint(ctx.ui, dest_src);
    Ok(out)
}

/// The command that replaces a lost offline targets key, for the hint after a targets
/// rotation found none in the keys file.
fn tk_hint(k: &KeyArgs) -> String {
    let root = k
        .root()
        .ok()
        .flatten()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "root.keys.tgz".to_string());
    format!(
        "`signer rotate-offline-key --role targets --lost-key KEYID --keys {root} --targets-keys \
         NEW-targets.keys.tgz BUNDLE -o RESPONSE`"
    )
}

/// Checks `--lost-key`: it names an offline targets key of both the staged and the current
/// root (the one being replaced).
fn lost_targets_key(l: &Loaded, lost: &KeyId, online: &KeyId) -> Result<KeyId> {
    let refuse = |problem: String| SignerError::LostKey {
        keyid: lost.to_string(),
        problem,
    };
    if lost == online {
        return Err(refuse(
            "that is the online targets key, which the server holds; it cannot be lost offline"
                .into(),
        ));
    }
    let current_online = l.current_online_targets().unwrap_or(online);
    for (root, which, online) in [
        (&l.draft_ci.signed, "the staged root", online),
        (&l.current_ci.signed, "the current root", current_online),
    ] {
        let offline: Vec<&KeyId> = root
            .role_keyids(Role::Targets)
            .iter()
            .filter(|k| *k != online)
            .collect();
        if !offline.contains(&lost) {
            return Err(refuse(format!(
                "not an offline targets key of {which} (its offline targets keys: {})",
                if offline.is_empty() {
                    "none".to_string()
                } else {
                    offline
                        .iter()
                        .map(|k| k.short())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        }
    }
    Ok(lost.clone())
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
        args.check.allow_unrequested,
        |o| matches!(o, Operation::AddOfflineKey { role: r, .. } if *r == role),
    )?;
    let now = ctx.now;
    let mut work = Work::new(
        &l,
        &trusted,
        ctx.now,
        format!("add-offline-key --role {role}"),
        keyset(ctx, k),
    );
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
    let root_file = match root_keys {
        Some(r) => Some(work.tarballs.open(r, false)?),
        None => None,
    };
    let resign_by = work.current_offline_targets();
    work.new_key(
        Deferred {
            dest: d,
            dest_src: dest.clone(),
            role,
            keytype: args.key_type.into(),
            object: object_of(dest),
            then: NewKeyUse::Add {
                role,
                resign_by,
                root_keys: root_file,
            },
            op: Operation::AddOfflineKey { role, keyid: None },
        },
        &now,
    )?;
    let out = finish(ctx, trusted, work, &args.io.out)?;
    if root_file.is_none() {
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
        args.check.allow_unrequested,
        |o| *o == op,
    )?;
    let online = match role {
        Role::Targets => Some(l.online_targets()?),
        _ => None,
    };
    let mut work = Work::new(
        &l,
        &trusted,
        ctx.now,
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
    work.finalize(&removed);
    work.plan.push(format!("remove {role} key {}", args.keyid));
    work.grants.push(Change::KeyRemoved {
        role,
        keyid: args.keyid.clone(),
    });
    sign_if_given(ctx, &mut work, keys)?;
    work.step_ops.push(op);
    finish(ctx, trusted, work, &args.io.out)
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
        args.check.allow_unrequested,
        |o| *o == op,
    )?;
    let mut work = Work::new(
        &l,
        &trusted,
        ctx.now,
        format!("set-threshold --role {role} {}", args.threshold),
        keyset(ctx, &args.src),
    );
    let (ci, prod) =
        transform::set_threshold(&work.ci.signed, &work.prod.signed, role, args.threshold)?;
    // fioctl's finalize after the change keeps the new production targets threshold.
    work.prod.signed = prod;
    work.finalize(&ci);
    work.plan.push(format!(
        "set the {} threshold to {}",
        if role == Role::Targets {
            "production targets"
        } else {
            "root"
        },
        args.threshold
    ));
    work.grants.push(match role {
        Role::Targets => Change::ProdThreshold {
            threshold: args.threshold,
        },
        r => Change::Threshold {
            role: r,
            threshold: args.threshold,
        },
    });
    sign_if_given(ctx, &mut work, keys)?;
    work.step_ops.push(op);
    finish(ctx, trusted, work, &args.io.out)
}

/// `signer rotate-online-key`: the operator authorizes the online keys the server
/// generated for these roles (`courier updates rotate-online-key`) and signs the roots.
pub fn rotate_online_key(ctx: &mut Ctx<'_>, args: &RotateOnlineArgs) -> Result<Outcome> {
    args.src.refuse(
        true,
        true,
        "is not used by rotate-online-key (give root keys with --keys)",
    )?;
    let keys = args.src.root()?.ok_or_else(|| {
        SignerError::Usage(
            "rotate-online-key needs --keys SOURCE (root keys) to sign the new roots".into(),
        )
    })?;
    let roles: Vec<Role> = args.roles.iter().map(|r| Role::from(*r)).collect();
    let (l, trusted) = prepare(ctx, &args.io, &tarball_paths(&[keys]), &args.check)?;
    l.require_draft()?;
    require_requested(
        ctx,
        &l,
        "rotate-online-key",
        args.check.allow_unrequested,
        |o| matches!(o, Operation::RotateOnlineKey { roles: r } if roles.iter().all(|x| r.contains(x))),
    )?;
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    let mut work = Work::new(
        &l,
        &trusted,
        ctx.now,
        format!("rotate-online-key --role {}", names.join(",")),
        keyset(ctx, &args.src),
    );
    let cur = &l.current_ci.signed;
    let draft = &work.ci.signed;
    let own_offline = offline_targets_created_here(ctx.state.path())?;
    for role in &roles {
        let (Some(old), Some(new)) = (
            l.online.current.get(role.as_str()),
            l.online.updated.get(role.as_str()),
        ) else {
            return Err(SignerError::refused(format!(
                "the transaction names no current and staged online {role} key (online-keys): nothing to authorize"
            )));
        };
        if old == new {
            return Err(SignerError::refused(format!(
                "the online {role} key is not rotated in this transaction (staged and current are both {}); run `courier updates rotate-online-key --role {role}` first",
                old.short()
            )));
        }
        if !cur.role_keyids(*role).contains(old)
            || draft.role_keyids(*role).contains(old)
            || !draft.role_keyids(*role).contains(new)
            || cur.keys.contains_key(new)
        {
            return Err(SignerError::refused(format!(
                "the staged root does not replace the online {role} key {} by the new one {} the transaction names; do not sign it",
                old.short(),
                new.short()
            )));
        }
        if *role == Role::Targets && own_offline.contains(old) {
            return Err(SignerError::refused(format!(
                "the online side calls targets key {} its online key, but this signer created it as an OFFLINE targets key: replacing it would hand production targets to online keys. Do not sign",
                old.short()
            )));
        }
        work.plan.push(format!(
            "accept the server's new online {role} key {} in place of {} (the online side says which key is online; an offline signer cannot check that)",
            new.short(),
            old.short()
        ));
        work.grants.extend([
            Change::KeyRemoved {
                role: *role,
                keyid: old.clone(),
            },
            Change::KeyAdded {
                role: *role,
                keyid: new.clone(),
            },
        ]);
    }
    let i = work.tarballs.open(keys, false)?;
    work.sign_roots(&[i], true)?;
    work.step_ops.push(Operation::RotateOnlineKey { roles });
    finish(ctx, trusted, work, &args.io.out)
}

/// The offline targets keys this signer created (from its audit log): a key the online
/// side calls "online" must not be one of them.
fn offline_targets_created_here(state: &Path) -> Result<BTreeSet<KeyId>> {
    Ok(audit::read_records(state)?
        .into_iter()
        .filter_map(|r| r.ok())
        .filter_map(|r| match r.event {
            AuditEvent::KeyCreated { keyid, role, .. } if role == "targets" => Some(keyid),
            _ => None,
        })
        .collect())
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
    let mut work = Work::new(&l, &trusted, ctx.now, "sign", keyset(ctx, &args.src));
    let mut idx = Vec::new();
    for f in &srcs {
        idx.push(work.tarballs.open(f, false)?);
    }
    work.sign_roots(&idx, true)?;
    work.step_ops.push(Operation::SignRoot);
    finish(ctx, trusted, work, &args.io.out)
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
    let mut work = Work::new(
        &l,
        &trusted,
        ctx.now,
        "sign-prod-targets",
        keyset(ctx, &args.src),
    );
    let i = work.tarballs.open(file, false)?;
    let key = work.targets_signer(&[i], &l.draft_ci.signed)?.key;
    for t in &tags {
        work.sign_targets(false, t, &key, &Carried::Explicit)?;
    }
    work.step_ops.push(Operation::SignProdTargets { tags });
    finish(ctx, trusted, work, &args.io.out)
}

/// `signer sign-wave`.
pub fn sign_wave(ctx: &mut Ctx<'_>, args: &SignWaveArgs) -> Result<Outcome> {
    let file = targets_source(&args.src)?;
    let (l, trusted) = prepare(ctx, &args.io, &tarball_paths(&[file]), &args.check)?;
    let mut work = Work::new(&l, &trusted, ctx.now, "sign-wave", keyset(ctx, &args.src));
    let i = work.tarballs.open(file, false)?;
    let key = work.targets_signer(&[i], &l.draft_ci.signed)?.key;
    work.sign_targets(true, &args.name, &key, &Carried::Explicit)?;
    work.step_ops.push(Operation::SignWave {
        name: args.name.clone(),
    });
    finish(ctx, trusted, work, &args.io.out)
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
    let l = session::from_bundle(&args.out, combined)?;
    // What the combined response carries, and who authorized each change (combining signs
    // nothing, but a step that was changed on the way is refused here already).
    let steps = authority::steps(&l, ctx.state.path())?;
    for s in &steps {
        ctx.ui.line(format!("  {}", s.describe()));
    }
    let decision = Decision::new(
        &l,
        &steps,
        &l.draft_ci.signed,
        &l.draft_prod.signed,
        &[],
        &[],
    );
    if l.has_draft {
        for line in crate::inspect::key_changes_table(&l.current_ci.signed, &l.draft_ci.signed) {
            ctx.ui.line(line);
        }
        for line in decision.lines() {
            ctx.ui.line(line);
        }
    }
    if !decision.refusals.is_empty() {
        return Err(SignerError::MustNotSign(decision.refusals));
    }
    ctx.ui.line(format!(
        "This will write the combined response {} (fingerprint {}).",
        args.out.display(),
        l.bundle.fingerprint()
    ));
    ctx.ui.confirm("Proceed?")?;
    let bytes = l
        .bundle
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
        l.bundle.fingerprint()
    ));
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
