//! The plan of one operation (`Work`): the drafts as the typed command changes them, the
//! signatures made in memory, the run's own grant (the exact changes the command
//! authorizes), what is left unsigned and why, and the new key — created at once in a keys
//! tarball, or `Deferred` until the person confirmed when it goes on a PKCS#11 token.
//! Nothing here writes a file: `super::finish` shows, confirms and acts on a `Work`.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRngCore;
use shared::authority::{Authority, Change, Grant};
use shared::bundle::Operation;
use shared::keys::{merge_signatures, KeyId, KeyType, PublicKey, Signature};
use shared::metadata::{KeyOwner, Role, Root, SignedRoot, TargetsSummary, Timestamp};
use shared::transform;

use crate::authority::{Decision, StepView};
use crate::error::{Result, SignerError};
use crate::keyset::{Found, HeldKey, KeySet};
use crate::keysource::KeySource;
use crate::memory::Endorsement;
use crate::session::{Loaded, Trusted};
use shared::keys::KeySigner;

use super::sha256_hex;

/// One signature event, for the plan, the audit log and the outcome.
#[derive(Debug, Clone)]
pub(super) struct SigEvent {
    /// `ci-root`, `prod-root`, `prod-targets/TAG` or `waves/NAME`.
    pub(super) document: String,
    /// The keys that signed it.
    pub(super) keyids: Vec<KeyId>,
    /// SHA-256 of the signed bytes.
    pub(super) sha256: String,
}

/// What a run does with the new key it creates.
#[derive(Debug, Clone)]
pub(super) enum NewKeyUse {
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
pub(super) struct Deferred {
    /// Index of the source the key goes into.
    pub(super) dest: usize,
    /// That source as given on the command line.
    pub(super) dest_src: KeySource,
    /// The role of the new key.
    pub(super) role: Role,
    /// Its algorithm.
    pub(super) keytype: KeyType,
    /// The `object=` label of a token key.
    pub(super) object: Option<String>,
    /// What the run does with it.
    pub(super) then: NewKeyUse,
    /// The operation recorded in the step.
    pub(super) op: Operation,
}

/// How a carried production targets (or wave) document is treated by a run.
pub(super) enum Carried {
    /// Its signature by one of these offline keys must verify; without one it is left
    /// (listed) for an explicit `sign-prod-targets`/`sign-wave`.
    SignedBy(Vec<KeyId>),
    /// The person asked to sign it (`sign-prod-targets`, `sign-wave`): every signature it
    /// carries by a current targets key must verify.
    Explicit,
}

/// The plan of one run: drafts, signatures, grants and lines to show, all in memory.
pub(super) struct Work<'l> {
    /// The bundle as loaded and checked.
    pub(super) l: &'l Loaded,
    /// The command as the audit log and the grant name it.
    pub(super) opname: String,
    /// The CI root draft as this run leaves it.
    pub(super) ci: SignedRoot,
    /// The production root draft as this run leaves it.
    pub(super) prod: SignedRoot,
    /// Signatures of the production targets, per tag.
    pub(super) targets_sigs: BTreeMap<String, Vec<Signature>>,
    /// Signatures of the wave targets, per wave.
    pub(super) waves_sigs: BTreeMap<String, Vec<Signature>>,
    /// This run's own authority: the exact changes the typed command makes.
    pub(super) grants: Vec<Change>,
    /// The operations recorded in the response step.
    pub(super) step_ops: Vec<Operation>,
    /// Signatures made.
    pub(super) signed: Vec<SigEvent>,
    /// Lines of the plan shown before confirmation.
    pub(super) plan: Vec<String>,
    /// Documents not signed, with why (shown).
    pub(super) left: Vec<String>,
    /// What the offline targets key endorsed in this run (remembered in the act phase).
    pub(super) endorsed: Vec<(String, Endorsement)>,
    /// What this signer endorsed before (from its memory of the factory).
    pub(super) known: BTreeMap<String, Endorsement>,
    /// The time of this run.
    pub(super) now: Timestamp,
    /// The key sources of this run.
    pub(super) tarballs: KeySet,
    /// Whether the drafts changed.
    pub(super) roots_changed: bool,
    /// Whether this run signs the roots.
    pub(super) signs_roots: bool,
    /// Whether this is the first-time root rotation.
    pub(super) first_time: bool,
    /// A new key waiting for the person's confirmation (token keys).
    pub(super) deferred: Option<Deferred>,
}

impl<'l> Work<'l> {
    /// A plan starting from the staged drafts and documents of `l`, for the command
    /// `opname` run at `now` with the key sources `keys`.
    pub(super) fn new(
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
    pub(super) fn finalize(&mut self, ci: &Root) {
        let prev_prod = self.prod.signed.clone();
        let (ci, prod) = transform::finalize(ci, Some(&prev_prod));
        self.ci = ci;
        self.prod = prod;
        self.roots_changed = true;
    }

    /// The owner entry for keys created now.
    fn owner(&self, now: &Timestamp) -> Option<KeyOwner> {
        let ext = self.l.bundle.manifest().extensions.get("x-polis-id");
        let meta = self.l.tx.wire.change_meta.as_ref().map(|m| {
            if m.updated_by.is_empty() {
                m.created_by.as_str()
            } else {
                m.updated_by.as_str()
            }
        });
        ext.and_then(|v| v.as_str())
            .or(meta)
            .filter(|s| !s.is_empty())
            .map(|polis| KeyOwner {
                polis_id: polis.to_string(),
                created_at: *now,
                extra: BTreeMap::new(),
            })
    }

    /// Signs both roots (fioctl's `signNewTufRoot`): the staged root's key found in the
    /// sources, then the current root's key if different. Returns whether anything signed.
    pub(super) fn sign_roots(&mut self, idx: &[usize], required: bool) -> Result<bool> {
        let new = self.tarballs.find(
            idx,
            &self.ci.signed,
            self.ci.signed.role_keyids(Role::Root),
            Role::Root,
        )?;
        let cur = &self.l.tx.current_ci.signed;
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
    pub(super) fn targets_signer(&self, idx: &[usize], root: &Root) -> Result<Found> {
        let online = self.l.online_targets()?;
        let candidates = root.offline_targets_keys([&online]);
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
    pub(super) fn current_offline_targets(&self) -> Vec<KeyId> {
        self.l
            .tx
            .current_ci
            .signed
            .offline_targets_keys(self.l.current_online_targets())
    }

    /// The targets keys of the current roots (CI and production), by key id: the keys
    /// whose signatures on a carried document must verify.
    fn current_targets_keys(&self) -> BTreeMap<KeyId, PublicKey> {
        let roots = std::iter::once(&self.l.tx.current_ci.signed)
            .chain(self.l.tx.current_prod.as_ref().map(|p| &p.signed));
        let mut keys = BTreeMap::new();
        for root in roots {
            for id in root.role_keyids(Role::Targets) {
                if let Some(k) = root.keys.get(id) {
                    keys.insert(id.clone(), k.clone());
                }
            }
        }
        keys
    }

    /// Signs production targets `tag` (or wave `name` when `wave`) with `key`, after
    /// checking the document under `how`. Returns whether it was signed (a document that
    /// `how` leaves unsigned is listed in the plan instead).
    pub(super) fn sign_targets(
        &mut self,
        wave: bool,
        name: &str,
        key: &HeldKey,
        how: &Carried,
    ) -> Result<bool> {
        let keys = self.current_targets_keys();
        let checked = check_doc(self.l, &keys, wave, name, how, key)?;
        self.record_doc(wave, name, key, checked)
    }

    /// Takes in the outcome of [`check_doc`] for one document: its signature, the plan line,
    /// the audit event and the endorsement, or the line saying why it is left unsigned.
    fn record_doc(
        &mut self,
        wave: bool,
        name: &str,
        key: &HeldKey,
        checked: CheckedDoc,
    ) -> Result<bool> {
        let l = self.l;
        let (docs, dir) = if wave {
            (&l.waves, "waves")
        } else {
            (&l.prod_targets, "prod-targets")
        };
        let doc = summary(docs, dir, name)?;
        let Some(sig) = checked.sig else {
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
        };
        let digest = checked.digest;
        let sigs = if wave {
            &mut self.waves_sigs
        } else {
            &mut self.targets_sigs
        };
        merge_signatures(sigs.entry(name.to_string()).or_default(), [sig]);
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
    /// an offline targets key). The documents are independent: with a key in memory they
    /// are read, canonicalized, checked and signed on every core (each thread holding one
    /// document at a time); the results are taken in, in name order, so the plan and the
    /// response do not depend on the threads.
    fn sign_carried(&mut self, key: &HeldKey, resign_by: &[KeyId]) -> Result<()> {
        let how = Carried::SignedBy(resign_by.to_vec());
        let docs: Vec<(bool, String)> = self
            .l
            .prod_targets
            .keys()
            .map(|t| (false, t.clone()))
            .chain(self.l.waves.keys().map(|w| (true, w.clone())))
            .collect();
        let keys = self.current_targets_keys();
        let l = self.l;
        let checked: Vec<Result<CheckedDoc>> = match key {
            HeldKey::Memory(k) => parallel_map(&docs, |(wave, name)| {
                check_doc(l, &keys, *wave, name, &how, k)
            }),
            // A token signs one request at a time.
            HeldKey::Token(_) => docs
                .iter()
                .map(|(wave, name)| check_doc(l, &keys, *wave, name, &how, key))
                .collect(),
        };
        for ((wave, name), checked) in docs.iter().zip(checked) {
            self.record_doc(*wave, name, key, checked?)?;
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
    pub(super) fn new_key(&mut self, d: Deferred, rng: &mut dyn CryptoRngCore) -> Result<()> {
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
        self.create_and_use(d, rng)
    }

    /// Generates the deferred (or immediate) new key and completes the drafts with it.
    pub(super) fn create_and_use(
        &mut self,
        d: Deferred,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<()> {
        let now = self.now;
        let (new_id, new_key) =
            self.tarballs
                .generate(d.dest, d.role, d.keytype, d.object.as_deref(), rng)?;
        check_new_key(&self.l.tx.current_ci.signed, &new_id, &d.dest_src)?;
        let owner = self.owner(&now);
        match d.then {
            NewKeyUse::RotateRoot { old, signers } => {
                let rotated = transform::rotate_offline_root_key(
                    &self.ci.signed,
                    &old,
                    new_key.public_key(),
                    owner,
                    &now,
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
                        expires: transform::one_year_after(&now),
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
    pub(super) fn decide(&self, steps: &[StepView], confirmed: &[Change]) -> Decision {
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

impl Work<'_> {
    /// Whether the deferred key's use signs roots.
    pub(super) fn deferred_signs_roots(&self) -> bool {
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

/// One carried document checked under a [`Carried`] rule, and signed when the rule allows
/// it ([`check_doc`]).
pub(super) struct CheckedDoc {
    /// SHA-256 of its canonical `signed` bytes (what the signature covers).
    digest: shared::bundle::Sha256Digest,
    /// The new signature; `None` when the document is left unsigned.
    sig: Option<Signature>,
}

/// The summary of carried document `dir/name`, or the usage error listing what the bundle has.
fn summary<'a>(
    docs: &'a BTreeMap<String, TargetsSummary>,
    dir: &str,
    name: &str,
) -> Result<&'a TargetsSummary> {
    docs.get(name).ok_or_else(|| {
        SignerError::Usage(format!(
            "the bundle has no {dir}/{name}.json (it has: {})",
            docs.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })
}

/// Checks production targets `name` (or wave `name` when `wave`) under `how`, and signs it
/// with `key` when `how` allows: the document is read from the bundle and canonicalized
/// once, so the check, the signature and the digest cover the same bytes. Safe to run on
/// any thread (nothing is recorded: [`Work::record_doc`] takes the result in).
///
/// Under `how`: every signature it carries by a current targets key (`keys`) must verify —
/// one that does not means its content was changed after that key signed it, an error
/// naming the document; with [`Carried::SignedBy`] it is signed only when a signature by one
/// of those offline keys verifies (otherwise it is left, `sig: None`).
fn check_doc<K: KeySigner + ?Sized>(
    l: &Loaded,
    keys: &BTreeMap<KeyId, PublicKey>,
    wave: bool,
    name: &str,
    how: &Carried,
    key: &K,
) -> Result<CheckedDoc> {
    let (docs, dir) = if wave {
        (&l.waves, "waves")
    } else {
        (&l.prod_targets, "prod-targets")
    };
    let doc = summary(docs, dir, name)?;
    let (msg, digest) = l
        .bundle
        .targets_signed(&format!("{dir}/{name}.json"))
        .map_err(SignerError::bundle)?;
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
            .is_some_and(|k| k.verify(&msg, sig).is_ok());
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
    let approved = match how {
        Carried::SignedBy(_) => valid_offline > 0,
        Carried::Explicit => true,
    };
    let sig = if approved {
        Some(key.sign(&msg)?)
    } else {
        None
    };
    Ok(CheckedDoc { digest, sig })
}

/// `f` over `items` on up to as many threads as the machine has cores (at most 8), each
/// taking the next item when it is done; the results come back in the order of `items`.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(item)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
