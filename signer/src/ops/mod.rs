//! The operations that create keys and sign, one file per command group, and what they
//! share: the plan phase (`prepare`), the run's plan (`plan::Work`) and the show, confirm
//! and act phases (`finish`).
//!
//! | file | commands |
//! |---|---|
//! | [`rotate`] | `rotate-offline-key` (root, targets, `--lost-key`) |
//! | [`expert`] | `add-offline-key`, `delete-offline-key`, `set-threshold`, `rotate-online-key` |
//! | [`sign`] | `sign`, `sign-prod-targets`, `sign-wave` |
//! | [`combine`] | `combine` |
//! | [`plan`] | `plan::Work`: drafts, signatures, grants, the new key (not a command) |
//!
//! Every operation is `fn(&mut Ctx, &Args) -> Result<Outcome>` and runs parse → plan → show →
//! confirm → act, and the plan is a value (`plan::Work`) before anything is written:
//!
//! 1. **plan**: refuse leftover temporary files of an interrupted run; read and verify the
//!    bundle (integrity, transaction state, chain from the pinned root, no fork from a root
//!    this signer signed or pinned, expiry) — the trust pin advances here when the chain
//!    proves a newer root was applied ([`session::trust`]); check that the bundle requests this operation;
//!    open the key sources; compute the new drafts and signatures in memory, with this
//!    run's own [`Grant`](shared::authority::Grant) (the exact changes the typed command
//!    makes). A new key for a keys tarball is generated in memory with the run's random
//!    number generator ([`Ctx::rng`]); a new key on a PKCS#11 token is **not** created yet
//!    (a `plan::Deferred` step).
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

pub mod combine;
pub mod expert;
pub mod plan;
pub mod rotate;
pub mod sign;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use shared::bundle::{self, Operation, StepInput, Upload, Writer};
use shared::fsutil;
use shared::keys::KeyId;
use shared::metadata::{Role, SignedRoot};
use shared::verify;

use crate::audit::{self, AuditEvent};
#[cfg(doc)]
use crate::authority::Decision;
use crate::authority::{self, StepView};
use crate::cli::{BundleIo, CheckArgs};
use crate::ctx::Ctx;
use crate::error::{Result, SignerError};
use crate::identity;
use crate::keyset::KeySet;
use crate::keysource::{KeyArgs, KeySource};
use crate::memory::How;
use crate::session::{self, Loaded, Trusted};
use crate::ui::Ui;

use plan::Work;

/// Name and version recorded in response bundles and signing records.
pub fn writer() -> Writer {
    Writer::new("signer", env!("CARGO_PKG_VERSION"))
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

/// Lowercase hex SHA-256 of `bytes` (documents signed, files written).
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
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
    confirmed: &mut Vec<shared::authority::Change>,
) -> Result<()> {
    let l = work.l;
    for s in steps {
        ctx.ui.line(format!("  {}", s.describe()));
    }
    if !l.has_draft {
        return Ok(());
    }
    for line in crate::inspect::key_changes_table(&l.tx.current_ci.signed, &work.ci.signed) {
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
        decision.settle(ctx, confirmed)?;
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
        work.create_and_use(d, &mut *ctx.rng)?;
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
    let (signing_identity, created_identity) =
        identity::ensure_signing_identity(ctx.state.path(), &ctx.now, &mut *ctx.rng)?;
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
                        &ctx.now,
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
        fsutil::crash_point("signer:before-response-write");
        // Made and written in one pass: the request's documents are copied (and checked)
        // piece by piece, and the response's digest is that of the plain tar stream written.
        let response = l
            .bundle
            .respond_to_file(
                StepInput {
                    signer: writer(),
                    time: ctx.now,
                    operations: std::mem::take(&mut work.step_ops),
                    authorized,
                    upload,
                },
                &signing_identity,
                out,
                bundle::WRITE_COMPRESSION,
            )
            .map_err(SignerError::bundle)?;
        let file_sha256 = response.digest().to_string();
        Ok((response, file_sha256))
    })();
    let (response, file_sha256) = match acted {
        Ok(written) => written,
        Err(e) => return Err(discard_created_keys(ctx, &work.tarballs, e)),
    };
    fsutil::crash_point("signer:after-response-write");
    // One append for the run's signatures and the response (one read and one sync of the
    // log, however many documents were signed).
    let mut events = Vec::with_capacity(work.signed.len() + 1);
    for s in &work.signed {
        events.push(AuditEvent::SignatureMade {
            operation: work.opname.clone(),
            document: s.document.clone(),
            keyids: s.keyids.clone(),
            sha256: s.sha256.clone(),
        });
        outcome.signed.push((s.document.clone(), s.keyids.clone()));
    }
    events.push(AuditEvent::BundleWritten {
        path: out.display().to_string(),
        sha256: file_sha256,
    });
    audit::record_all(&state, &ctx.now, events)?;
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
    let ok_ci = verify::verify_root_step(&l.tx.current_ci, ci);
    let ok_prod = match &l.tx.current_prod {
        Some(p) => verify::verify_root_step(p, prod),
        None => verify::verify_root_step(&l.tx.current_ci, prod),
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

/// After a run that created a key: how to keep it (back up the tarball; a token key cannot
/// be copied).
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

/// The error of a run that failed after it may have saved keys files: removes the keys files
/// the run created (their keys are referenced by no response) and says so in the error.
fn discard_created_keys(ctx: &Ctx<'_>, tarballs: &KeySet, e: SignerError) -> SignerError {
    let discarded = tarballs.discard_created_files();
    if discarded.is_empty() {
        return e;
    }
    let mut said = Vec::new();
    for (path, removed) in discarded {
        match removed {
            Ok(()) => {
                let _ = audit::record(
                    ctx.state.path(),
                    &ctx.now,
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
mod tests;
