//! `signer inspect BUNDLE`: everything the person should see before signing.
//!
//! Shows the bundle's fingerprint, factory, transaction and requested operations (as
//! proposals of the online side), the signer steps already recorded and whether each is
//! authenticated, the trust check and what this signer remembers of the factory, for every
//! staged root a unified diff against the root it replaces (pretty canonical JSON, colored
//! on a terminal) and a table of key changes, every change with the authority that covers
//! it ([`crate::authority::Decision`], the same decision a signing command acts on), the
//! production and wave targets that are to be signed, and warnings and recommendations in
//! the spirit of `fioctl keys tuf updates review`. `--json` prints the same as one JSON
//! document. The exit status is [`EXIT_MUST_NOT_SIGN`] when the bundle must not be signed
//! as it is, [`EXIT_NEEDS_CONFIRMATION`] when signing its roots needs the operator to
//! confirm changes nothing authorized (a signing command with `--yes` refuses them).

use std::collections::BTreeSet;

use serde::Serialize;
use similar::{ChangeTag, TextDiff};

use shared::canonical;
use shared::changes::{root_changes, RootChanges};
use shared::expiry;
use shared::keys::{KeyId, KeyType};
use shared::metadata::{Role, Root, SignedRoot, TargetsSummary, Timestamp};
use shared::transaction::TxStatus;
use shared::verify;

use crate::authority::{self, Decision};
use crate::cli::InspectArgs;
use crate::ctx::Ctx;
use crate::error::{Result, SignerError, EXIT_MUST_NOT_SIGN, EXIT_NEEDS_CONFIRMATION};
use crate::keysource::KeySource;
use crate::keystore;
use crate::memory::FactoryMemory;
use crate::session::{self, Loaded};
use crate::state::StateDir;
use crate::ui::Ui;
use shared::keys::KeySigner;

/// Days before expiry from which a root or targets document is flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The trust part of the report.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrustView {
    /// Whether the chain verified from the pin.
    pub ok: bool,
    /// Pinned version.
    pub pinned_version: Option<u64>,
    /// Current version.
    pub current_version: u64,
    /// Fingerprint of the current root.
    pub current_fingerprint: Option<String>,
    /// Why trust failed.
    pub error: Option<String>,
    /// The pin advanced to the current root (a root applied since it was pinned).
    pub advanced: Option<crate::trust::Advance>,
}

/// One staged root.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DraftView {
    /// `ci-root` or `prod-root`.
    pub document: String,
    /// Version of the root it replaces.
    pub replaces_version: u64,
    /// Its version.
    pub version: u64,
    /// Unified diff (plain text) of the pretty canonical `signed` parts.
    pub diff: String,
    /// Structured changes.
    pub changes: RootChanges,
    /// Valid signatures by the replaced root's root keys / its threshold.
    pub signed_by_previous: (usize, u64),
    /// Valid signatures by its own root keys / its threshold.
    pub signed_by_own: (usize, u64),
}

/// One production or wave targets document.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TargetsView {
    /// `prod-targets` or `waves`.
    pub kind: String,
    /// Tag or wave name.
    pub name: String,
    /// `signed.version`.
    pub version: u64,
    /// Number of targets.
    pub targets: usize,
    /// Distinct `custom.version` values.
    pub build_versions: Vec<String>,
    /// Expiry.
    pub expires: Timestamp,
    /// Valid signatures under the staged production root (bundle + earlier steps).
    pub valid_signatures: usize,
    /// Threshold of the staged production root.
    pub threshold: u64,
}

/// The whole report (`--json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    /// The bundle file.
    pub bundle: String,
    /// `request` or `response`.
    pub kind: String,
    /// Short fingerprint.
    pub fingerprint: String,
    /// Factory.
    pub factory: String,
    /// Transaction id.
    pub txid: String,
    /// Who wrote the bundle and when.
    pub writer: String,
    /// Creation time.
    pub created: Timestamp,
    /// Requested operations.
    pub operations: Vec<String>,
    /// Signer steps already recorded.
    pub steps: Vec<String>,
    /// Transaction status.
    pub status: TxStatus,
    /// Trust.
    pub trust: TrustView,
    /// Staged roots.
    pub drafts: Vec<DraftView>,
    /// Key changes table (text).
    pub key_changes: Vec<String>,
    /// Targets to be signed.
    pub targets: Vec<TargetsView>,
    /// Every change of the staged roots with its authority (none: needs a confirmation).
    pub changes: Vec<shared::authority::AuthorizedChange>,
    /// What this signer remembers of the factory (fork detection).
    pub memory: String,
    /// Notes.
    pub notes: Vec<String>,
    /// What the given keys files hold.
    pub keys: Vec<String>,
    /// Reasons not to sign.
    pub errors: Vec<String>,
    /// Things to look at.
    pub warnings: Vec<String>,
    /// Improvements.
    pub recommendations: Vec<String>,
    /// Whether the bundle must not be signed as it is.
    pub must_not_sign: bool,
    /// Whether signing its roots needs the operator's typed confirmation of changes nothing
    /// authorized (refused with `--yes`).
    pub needs_confirmation: bool,
}

/// A unified diff of `old` and `new`, ANSI-colored if `color`.
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str, color: bool) -> String {
    let diff = TextDiff::from_lines(old, new);
    let mut out = String::new();
    let (red, green, cyan, reset) = if color {
        ("\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    out.push_str(&format!("--- {old_name}\n+++ {new_name}\n"));
    let unified = diff.unified_diff();
    for hunk in unified.iter_hunks() {
        out.push_str(&format!("{cyan}{}{reset}\n", hunk.header()));
        for change in hunk.iter_changes() {
            let (sign, c) = match change.tag() {
                ChangeTag::Delete => ('-', red),
                ChangeTag::Insert => ('+', green),
                ChangeTag::Equal => (' ', ""),
            };
            let text = change.value();
            let text = text.strip_suffix('\n').unwrap_or(text);
            let r = if c.is_empty() { "" } else { reset };
            out.push_str(&format!("{c}{sign}{text}{r}\n"));
        }
    }
    out
}

/// Pretty canonical JSON of a root's `signed` part.
pub fn pretty_signed(root: &Root) -> Result<String> {
    Ok(canonical::to_pretty(&canonical::to_canonical(root)?)?)
}

/// A table of what the draft changes compared with the current root.
pub fn key_changes_table(current: &Root, draft: &Root) -> Vec<String> {
    let c = root_changes(current, draft);
    let mut out = vec![format!(
        "Key changes (v{} → v{}):",
        c.version.0, c.version.1
    )];
    out.push(format!(
        "  {:<10} {:<28} {:<28} {}",
        "role", "added", "removed", "threshold"
    ));
    for role in Role::ALL {
        let (added, removed, threshold) = match c.role(role) {
            Some(rc) => (
                rc.added
                    .iter()
                    .map(KeyId::short)
                    .collect::<Vec<_>>()
                    .join(" "),
                rc.removed
                    .iter()
                    .map(KeyId::short)
                    .collect::<Vec<_>>()
                    .join(" "),
                match rc.threshold {
                    Some((a, b)) => format!("{a} → {b}"),
                    None => draft.threshold(role).to_string(),
                },
            ),
            None => (
                String::new(),
                String::new(),
                draft.threshold(role).to_string(),
            ),
        };
        out.push(format!(
            "  {:<10} {:<28} {:<28} {}",
            role.as_str(),
            if added.is_empty() { "-".into() } else { added },
            if removed.is_empty() {
                "-".into()
            } else {
                removed
            },
            threshold
        ));
    }
    if c.expires.0 != c.expires.1 {
        out.push(format!("  expires: {} → {}", c.expires.0, c.expires.1));
    } else {
        out.push(format!("  expires: {} (unchanged)", c.expires.1));
    }
    out
}

fn sig_counts(prev: &Root, doc: &SignedRoot) -> Result<((usize, u64), (usize, u64))> {
    let msg = doc.canonical_signed()?;
    let p = verify::signature_report(prev, Role::Root, &msg, &doc.signatures);
    let o = verify::signature_report(&doc.signed, Role::Root, &msg, &doc.signatures);
    Ok(((p.valid.len(), p.threshold), (o.valid.len(), o.threshold)))
}

fn draft_view(
    name: &str,
    base: &SignedRoot,
    draft: &SignedRoot,
    color: bool,
) -> Result<(DraftView, String)> {
    let old = pretty_signed(&base.signed)?;
    let new = pretty_signed(&draft.signed)?;
    let a = format!("{name} v{} (current)", base.signed.version);
    let b = format!("{name} v{} (staged)", draft.signed.version);
    let plain = unified_diff(&old, &new, &a, &b, false);
    let shown = if color {
        unified_diff(&old, &new, &a, &b, true)
    } else {
        plain.clone()
    };
    let (signed_by_previous, signed_by_own) = sig_counts(&base.signed, draft)?;
    Ok((
        DraftView {
            document: name.to_string(),
            replaces_version: base.signed.version,
            version: draft.signed.version,
            diff: plain,
            changes: root_changes(&base.signed, &draft.signed),
            signed_by_previous,
            signed_by_own,
        },
        shown,
    ))
}

fn targets_view(
    l: &Loaded,
    kind: &str,
    name: &str,
    doc: &TargetsSummary,
    extra: Option<&Vec<shared::keys::Signature>>,
    prod: &Root,
) -> Result<TargetsView> {
    let mut sigs = doc.signatures.clone();
    shared::keys::merge_signatures(&mut sigs, extra.into_iter().flatten().cloned());
    let (msg, _) = l
        .bundle
        .targets_signed(&format!("{kind}/{name}.json"))
        .map_err(SignerError::bundle)?;
    let rep = verify::signature_report(prod, Role::Targets, &msg, &sigs);
    Ok(TargetsView {
        kind: kind.to_string(),
        name: name.to_string(),
        version: doc.version,
        targets: doc.targets,
        build_versions: doc.build_versions.iter().cloned().collect(),
        expires: doc.expires,
        valid_signatures: rep.valid.len(),
        threshold: rep.threshold,
    })
}

/// Builds the report (no output).
pub fn build_report(
    l: &Loaded,
    state: &StateDir,
    now: &Timestamp,
    allow_expired: bool,
    color: bool,
    keys: &[HeldKeys],
) -> Result<(Report, Vec<String>)> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut recs = Vec::new();
    let m = l.bundle.manifest();

    // Trust.
    let mut trust = TrustView {
        current_version: l.tx.current_ci.signed.version,
        ..TrustView::default()
    };
    let memory = FactoryMemory::load(state.path(), l.bundle.factory())?;
    match session::trust(l, state, now, allow_expired) {
        Ok(t) => {
            trust.ok = true;
            trust.pinned_version = Some(t.check.pinned_version);
            trust.current_fingerprint = Some(t.check.current_fingerprint);
            trust.advanced = t.advanced;
        }
        Err(e) => {
            trust.error = Some(e.to_string());
            errors.push(format!("trust: {e}"));
        }
    }
    if l.tx.current_ci.signed.expires <= *now {
        let line = format!(
            "the current root v{} expired at {}: devices refuse an expired root; the staged root must renew it: {}",
            l.tx.current_ci.signed.version, l.tx.current_ci.signed.expires, expiry::RENEW_ROOT
        );
        if allow_expired {
            warnings.push(format!("{line} (accepted with --allow-expired)"));
        } else {
            errors.push(line);
        }
    }
    if l.bundle
        .operations()
        .contains(&shared::bundle::Operation::FirstTimeRootRotation)
    {
        if let Some(done) = memory.first_time_rotation() {
            errors.push(format!(
                "a second first-time rotation: this signer already took the factory's initial root key offline (root v{} signed on {}); the online side replays or forges the first-time request",
                done.version, done.at
            ));
        }
    }

    // Drafts.
    let mut drafts = Vec::new();
    let mut shown_diffs = Vec::new();
    let mut key_changes = Vec::new();
    let mut notes = Vec::new();
    let mut changes = Vec::new();
    let mut needs_confirmation = false;
    let steps = authority::steps(l, state.path())?;
    if l.has_draft {
        let (ci_view, ci_shown) = draft_view("ci-root", &l.tx.current_ci, &l.draft_ci, color)?;
        let prod_base = l.tx.current_prod.as_ref().unwrap_or(&l.tx.current_ci);
        let (prod_view, prod_shown) = draft_view("prod-root", prod_base, &l.draft_prod, color)?;
        drafts.push(ci_view);
        drafts.push(prod_view);
        shown_diffs.push(ci_shown);
        shown_diffs.push(prod_shown);
        key_changes = key_changes_table(&l.tx.current_ci.signed, &l.draft_ci.signed);
        let decision = Decision::new(
            l,
            &steps,
            &l.draft_ci.signed,
            &l.draft_prod.signed,
            &[],
            &[],
        );
        for r in &decision.refusals {
            errors.push(r.clone());
        }
        needs_confirmation = !decision.unauthorized().is_empty();
        notes.extend(decision.notes.iter().cloned());
        changes = decision.changes;
    } else {
        warnings.push(format!(
            "the transaction status is {:?}: there is no staged root (only production/wave targets can be signed)",
            l.tx.status().as_str()
        ));
    }

    // Requested but not yet performed.
    let performed = l.performed();
    for op in l.bundle.operations() {
        let needs_key = matches!(
            op,
            shared::bundle::Operation::FirstTimeRootRotation
                | shared::bundle::Operation::RootRotation
                | shared::bundle::Operation::TargetsRotation
                | shared::bundle::Operation::AddOfflineKey { .. }
        );
        if needs_key && !performed.iter().any(|p| p.name() == op.name()) {
            notes.push(format!("requested, not yet performed: {op}"));
        }
    }

    // Review-like checks on the root that will be in force.
    let root = &l.draft_ci.signed;
    let prod = &l.draft_prod.signed;
    let days_left = now.days_until(&root.expires);
    if root.expires <= *now {
        errors.push(format!("the staged root expired at {}", root.expires));
    } else if days_left < EXPIRY_WARNING_DAYS {
        warnings.push(format!(
            "the root expires in {days_left} days ({}): {}",
            root.expires,
            expiry::RENEW_ROOT
        ));
    }
    let online_t = l.tx.updated_online_keys().get(Role::Targets.as_str());
    let offline_targets = root.offline_targets_keys(online_t);
    if root.role_keyids(Role::Root).len() == 1 {
        recs.push(
            "the root role has a single offline key: add a second offline root key kept by another person \
             (`add-offline-key --role root`) and keep backups (`signer keys backup`)"
                .to_string(),
        );
    }
    if l.tx.current_prod.is_none()
        && !l
            .bundle
            .operations()
            .contains(&shared::bundle::Operation::FirstTimeRootRotation)
    {
        recs.push(
            "the factory root key is still the initial online key held by Foundries: take it offline with \
             the first-time root rotation"
                .to_string(),
        );
    }
    if offline_targets.is_empty() {
        recs.push(
            "there is no offline targets key: create one (`rotate-offline-key --role targets`) before \
             production targets and waves are used"
                .to_string(),
        );
    }
    let prod_threshold = prod.threshold(Role::Targets);
    let targets_keys = prod.role_keyids(Role::Targets).len() as u64;
    if prod_threshold > targets_keys {
        warnings.push(format!(
            "the production targets threshold is {prod_threshold} but the targets role has {targets_keys} key(s): \
             production targets cannot be signed until an offline targets key is added \
             (`rotate-offline-key --role targets`). This is expected right after the first-time root rotation."
        ));
    }
    for (id, key) in &root.keys {
        if key.key_type().ok() == Some(KeyType::Rsa) {
            recs.push(format!(
                "key {} is RSA: ED25519 keys are recommended (smaller, faster, no padding pitfalls)",
                id.short()
            ));
        }
    }
    for id in &root_changes(root, root).unused_keys {
        warnings.push(format!("key {} is listed but no role uses it", id.short()));
    }

    // Targets.
    let mut targets = Vec::new();
    for (name, doc) in &l.prod_targets {
        targets.push(targets_view(
            l,
            "prod-targets",
            name,
            doc,
            l.targets_sigs.get(name),
            prod,
        )?);
    }
    for (name, doc) in &l.waves {
        targets.push(targets_view(
            l,
            "waves",
            name,
            doc,
            l.waves_sigs.get(name),
            prod,
        )?);
    }
    for t in &targets {
        if (t.valid_signatures as u64) < t.threshold
            && l.has_draft
            && prod_threshold <= targets_keys
        {
            warnings.push(format!(
                "{}/{} has {} valid signature(s) under the staged production root, which needs {}: \
                 the server will refuse to apply until it is signed (`sign-prod-targets`/`sign-wave`)",
                t.kind, t.name, t.valid_signatures, t.threshold
            ));
        }
        let left = now.days_until(&t.expires);
        if left < EXPIRY_WARNING_DAYS {
            let renew = if t.kind == "waves" {
                expiry::renew_wave(&t.name)
            } else {
                expiry::renew_production_targets(&t.name, t.version)
            };
            warnings.push(format!(
                "{}/{} expires in {left} days ({}): {renew}",
                t.kind, t.name, t.expires
            ));
        }
    }
    // A wave being created (a `courier waves init` draft) carries no signature yet; an active
    // wave always carries at least the server's online signature.
    if l.waves.values().any(|w| !w.signatures.is_empty()) {
        warnings.push(
            "a wave is active: a targets key rotation may be refused by the server until the wave is complete"
                .to_string(),
        );
    }

    // Keys files.
    let mut key_lines = Vec::new();
    let root_ids: BTreeSet<&KeyId> = root
        .role_keyids(Role::Root)
        .iter()
        .chain(l.tx.current_ci.signed.role_keyids(Role::Root))
        .collect();
    let offline_ids: BTreeSet<&KeyId> = offline_targets.iter().collect();
    for HeldKeys {
        name: path,
        count,
        private,
        ..
    } in keys
    {
        let mut holds_root = Vec::new();
        let mut holds_targets = Vec::new();
        for id in private {
            if root_ids.contains(id) {
                holds_root.push(id.short());
            }
            if offline_ids.contains(id) {
                holds_targets.push(id.short());
            }
        }
        key_lines.push(format!(
            "{path}: {count} key(s); active root: {}; active offline targets: {}",
            if holds_root.is_empty() {
                "none".into()
            } else {
                holds_root.join(", ")
            },
            if holds_targets.is_empty() {
                "none".into()
            } else {
                holds_targets.join(", ")
            }
        ));
        if !holds_root.is_empty() && !holds_targets.is_empty() {
            recs.push(format!(
                "{path} holds both a root key and a targets key: keep the targets key in its own file \
                 (--targets-keys) so it can be shared without the root key"
            ));
        }
    }

    let steps: Vec<String> = steps.iter().map(authority::StepView::describe).collect();

    let report = Report {
        bundle: l.path.display().to_string(),
        kind: l.bundle.kind().to_string(),
        fingerprint: l.bundle.fingerprint(),
        factory: l.bundle.factory().to_string(),
        txid: l.bundle.txid().to_string(),
        writer: format!("{} {}", m.writer.tool, m.writer.version),
        created: m.created,
        operations: m.operations.iter().map(ToString::to_string).collect(),
        steps,
        status: l.tx.status(),
        trust,
        drafts,
        key_changes,
        targets,
        changes,
        memory: memory.describe(),
        notes,
        keys: key_lines,
        must_not_sign: !errors.is_empty(),
        needs_confirmation,
        errors,
        warnings,
        recommendations: recs,
    };
    Ok((report, shown_diffs))
}

fn print_report(ui: &mut Ui, r: &Report, diffs: &[String]) {
    ui.line(format!("Bundle       {}", r.bundle));
    ui.line(format!("Fingerprint  {}", r.fingerprint));
    ui.line(format!(
        "Kind         {} (written by {} at {})",
        r.kind, r.writer, r.created
    ));
    ui.line(format!("Factory      {}", r.factory));
    ui.line(format!(
        "Transaction  {} (status {})",
        if r.txid.is_empty() {
            "(initiator)"
        } else {
            &r.txid
        },
        r.status
    ));
    ui.line(format!("Requested    {}", r.operations.join(", ")));
    for s in &r.steps {
        ui.line(format!("  {s}"));
    }
    ui.line("");
    match (&r.trust.error, r.trust.pinned_version) {
        (None, Some(p)) => ui.line(format!(
            "Trust: OK — the chain verifies from the pinned root v{p} to the current root v{} ({})",
            r.trust.current_version,
            r.trust.current_fingerprint.as_deref().unwrap_or("")
        )),
        (Some(e), _) => ui.line(format!("Trust: FAILED — {e}")),
        _ => {}
    }
    if let Some(a) = &r.trust.advanced {
        ui.line(a.line());
    }
    for (d, shown) in r.drafts.iter().zip(diffs) {
        ui.line("");
        ui.line(format!(
            "Staged {} v{} (replaces v{}); root signatures: {}/{} of the current root's keys, {}/{} of its own",
            d.document,
            d.version,
            d.replaces_version,
            d.signed_by_previous.0,
            d.signed_by_previous.1,
            d.signed_by_own.0,
            d.signed_by_own.1
        ));
        ui.print(shown);
    }
    ui.line(format!("Memory: {}", r.memory));
    if !r.key_changes.is_empty() {
        ui.line("");
        for l in &r.key_changes {
            ui.line(l);
        }
        let decision = Decision {
            changes: r.changes.clone(),
            refusals: Vec::new(),
            notes: Vec::new(),
        };
        for l in decision.lines() {
            ui.line(l);
        }
    }
    if !r.targets.is_empty() {
        ui.line("");
        ui.line("Targets in the bundle (signatures counted under the staged production root):");
        ui.line(format!(
            "  {:<14} {:<20} {:>8} {:>8}  {:<16} {:<20} {}",
            "kind", "name", "version", "targets", "builds", "expires", "signatures"
        ));
        for t in &r.targets {
            ui.line(format!(
                "  {:<14} {:<20} {:>8} {:>8}  {:<16} {:<20} {}/{}",
                t.kind,
                t.name,
                t.version,
                t.targets,
                t.build_versions.join(","),
                t.expires.to_string(),
                t.valid_signatures,
                t.threshold
            ));
        }
    }
    let section = |ui: &mut Ui, title: &str, items: &[String], mark: &str| {
        if !items.is_empty() {
            ui.line("");
            ui.line(title);
            for i in items {
                ui.line(format!("  {mark} {i}"));
            }
        }
    };
    section(ui, "Keys files:", &r.keys, "-");
    section(ui, "Notes:", &r.notes, "-");
    section(ui, "MUST NOT SIGN:", &r.errors, "!");
    section(ui, "Warnings:", &r.warnings, "-");
    section(ui, "Recommendations:", &r.recommendations, "-");
    ui.line("");
    if r.must_not_sign {
        ui.line("Verdict: do NOT sign this bundle as it is.");
    } else if r.needs_confirmation {
        ui.line(format!(
            "Verdict: the bundle verifies, but {} change(s) of the staged roots are NOT AUTHORIZED by anything this signer trusts: signing the roots needs your typed confirmation of each on a terminal (with --yes it is refused). Your own operation's changes will be authorized by your command. Fingerprint {}.",
            r.changes.iter().filter(|c| c.authority.is_none()).count(),
            r.fingerprint
        ));
    } else {
        ui.line(format!(
            "Verdict: the bundle verifies; every change of the staged roots is authorized. Fingerprint {}.",
            r.fingerprint
        ));
    }
}

/// What one key source named to `inspect` (`--keys`, `--targets-keys`) holds.
#[derive(Debug, Clone)]
pub struct HeldKeys {
    /// How the report names the source (a path, or the token's label).
    pub name: String,
    /// How checklists name where a key is: the file name, or `token "LABEL"`.
    pub location: String,
    /// How many keys it holds (for a token: of the keys of the current and staged roots).
    pub count: usize,
    /// The key ids it holds a private key for.
    pub private: Vec<KeyId>,
}

impl HeldKeys {
    /// Opens `src`: a keys tarball is read; a PKCS#11 token is searched for the private keys
    /// of the current and the staged CI root (their public halves hashed to key ids).
    pub fn of(
        l: &Loaded,
        src: &KeySource,
        pass: &keystore::PassphraseSource,
        pin_file: Option<&std::path::Path>,
    ) -> Result<HeldKeys> {
        match src {
            KeySource::Tarball(path) => {
                let tb = keystore::open(path, pass)?;
                let infos = tb.keys().map_err(|e| SignerError::Tarball {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                Ok(HeldKeys {
                    name: path.display().to_string(),
                    location: path.file_name().map_or_else(
                        || path.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    ),
                    count: infos.len(),
                    private: infos
                        .into_iter()
                        .filter(|i| i.sec_file.is_some())
                        .map(|i| i.keyid)
                        .collect(),
                })
            }
            KeySource::Pkcs11(uri) => {
                let token = crate::pkcs11::Token::open(uri, pin_file, "")?;
                let mut private = BTreeSet::new();
                for root in [&l.tx.current_ci.signed, &l.draft_ci.signed] {
                    let ids: Vec<KeyId> = root.keys.keys().cloned().collect();
                    for k in token.find(root, &ids)? {
                        private.insert(k.keyid().clone());
                    }
                }
                Ok(HeldKeys {
                    name: format!("the token labelled {:?}", token.label()),
                    location: format!("token {:?}", token.label()),
                    count: private.len(),
                    private: private.into_iter().collect(),
                })
            }
        }
    }
}

/// `signer inspect`: prints the report and returns the exit status (0,
/// [`EXIT_MUST_NOT_SIGN`] or [`EXIT_NEEDS_CONFIRMATION`]).
pub fn run(ctx: &mut Ctx<'_>, args: &InspectArgs) -> Result<u8> {
    let (state, ui, now) = (&ctx.state, &mut *ctx.ui, &ctx.now);
    let l = session::load(&args.bundle)?;
    let pass = args.passphrase.source();
    let mut keys = Vec::new();
    for src in [&args.keys, &args.targets_keys].into_iter().flatten() {
        keys.push(HeldKeys::of(&l, src, &pass, args.pin.pin_file.as_deref())?);
    }
    let (report, diffs) = build_report(&l, state, now, args.allow_expired, ui.color(), &keys)?;
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| SignerError::Other(format!("cannot encode the report: {e}")))?;
        ui.line(text);
    } else {
        print_report(ui, &report, &diffs);
        let holders = crate::status::holders(state.path(), &keys);
        ui.line("");
        for line in crate::status::section(&crate::status::checklist(&l)?, &holders) {
            ui.line(line);
        }
        ui.line("");
        for line in crate::status::expiry_section(&l, now) {
            ui.line(line);
        }
    }
    Ok(if report.must_not_sign {
        EXIT_MUST_NOT_SIGN
    } else if report.needs_confirmation {
        EXIT_NEEDS_CONFIRMATION
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_is_unified_and_colored_only_on_request() {
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\n", "old", "new", false);
        assert!(d.contains("--- old\n+++ new\n"));
        assert!(d.contains("-b\n+B\n"));
        assert!(d.contains("@@"));
        assert!(!d.contains('\x1b'));
        let c = unified_diff("a\nb\n", "a\nB\n", "old", "new", true);
        assert!(c.contains("\x1b[31m-b"));
    }
}
