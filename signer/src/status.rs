//! `signer status BUNDLE` (and the checklist section of `signer inspect`): which signatures
//! the bundle's drafts, production targets and waves still need, and who holds the keys.
//!
//! The counting is [`shared::status`]; this module gathers what only the offline machine
//! knows about where keys are: the audit log (every key this signer created or restored,
//! with the keys file it went into and when) and any keys files given with `--keys`.
//!
//! It also owns the expiry radar section of `signer inspect` ([`expiry_section`], over
//! [`shared::expiry`]): days left for the bundle's current and staged roots, production
//! targets per tag and waves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use shared::expiry::{self, Horizons};
use shared::keys::KeyId;
use shared::metadata::Timestamp;
use shared::status::{Checklist, KeyHolder};

use crate::audit::{self, AuditEvent};
use crate::ctx::Ctx;
use crate::error::{Result, SignerError};
use crate::inspect::HeldKeys;
use crate::session::{self, Loaded};

/// Exit status of `signer status` when signatures are still missing.
pub const EXIT_SIGNATURES_MISSING: u8 = 4;

/// Options of `signer status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The bundle (request or response).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Key sources to look in for the missing keys (repeatable): keys tarballs or PKCS#11
    /// URIs; the audit log and token records of this machine are always consulted.
    #[arg(long, short = 'k', value_name = "SOURCE")]
    pub keys: Vec<crate::keysource::KeySource>,
    /// Passphrase of encrypted keys files.
    #[command(flatten)]
    pub passphrase: crate::keystore::PassphraseArgs,
    /// PIN of PKCS#11 tokens.
    #[command(flatten)]
    pub pin: crate::keysource::PinArgs,
    /// Print JSON for scripts: the bundle, `complete`, and per threshold the document, whose
    /// signatures count, the threshold, the key ids present and missing, and what is known
    /// of who holds each missing key (`holders`). The exit status is the same.
    #[arg(long)]
    pub json: bool,
}

/// The checklist of a loaded bundle: both root drafts (when a transaction is open),
/// production targets per tag and waves (under the production draft).
pub fn checklist(l: &Loaded) -> Result<Checklist> {
    let meta = |e: shared::metadata::MetadataError| SignerError::Other(e.to_string());
    let mut c = Checklist::default();
    if l.has_draft || l.bundle.upload().is_some() {
        c.add_root("CI root", &l.draft_ci, &l.tx.current_ci.signed)
            .map_err(meta)?;
        let prev_prod = l.tx.current_prod.as_ref().unwrap_or(&l.tx.current_ci);
        c.add_root("production root", &l.draft_prod, &prev_prod.signed)
            .map_err(meta)?;
    }
    let docs = l
        .prod_targets
        .iter()
        .map(|(n, t)| ("prod-targets", n, t, &l.targets_sigs, "production targets"));
    let waves = l
        .waves
        .iter()
        .map(|(n, t)| ("waves", n, t, &l.waves_sigs, "wave"));
    for (dir, name, t, sigs, label) in docs.chain(waves) {
        let extra = sigs.get(name).map(Vec::as_slice).unwrap_or(&[]);
        let (msg, _) = l
            .bundle
            .targets_signed(&format!("{dir}/{name}.json"))
            .map_err(SignerError::bundle)?;
        c.add_targets(
            &format!("{label} {name}"),
            &l.draft_prod.signed,
            &msg,
            &t.signatures,
            extra,
        );
    }
    Ok(c)
}

/// Where keys are: from the audit log of `state_dir` (latest event wins), then the PKCS#11
/// token records of this machine, then the key sources given (which win: they were opened
/// just now).
pub fn holders(state_dir: &Path, held: &[HeldKeys]) -> BTreeMap<KeyId, KeyHolder> {
    let mut out = BTreeMap::new();
    // A missing or unreadable log only means fewer hints.
    for rec in audit::read_records(state_dir)
        .unwrap_or_default()
        .into_iter()
        .flatten()
    {
        let (keyid, tarball) = match rec.event {
            AuditEvent::KeyCreated { keyid, tarball, .. }
            | AuditEvent::KeyRestored { keyid, tarball, .. } => (keyid, tarball),
            _ => continue,
        };
        out.insert(
            keyid,
            KeyHolder {
                location: file_name(&tarball),
                since: Some(rec.time.get(..10).unwrap_or(&rec.time).to_string()),
            },
        );
    }
    for (id, rec) in crate::pkcs11::read_records(state_dir).unwrap_or_default() {
        let Ok(keyid) = id.parse::<KeyId>() else {
            continue;
        };
        let since = out.get(&keyid).and_then(|h| h.since.clone());
        out.insert(
            keyid,
            KeyHolder {
                location: format!("token {:?}", rec.token),
                since,
            },
        );
    }
    for h in held {
        for keyid in &h.private {
            let since = out.get(keyid).and_then(|k| k.since.clone());
            out.insert(
                keyid.clone(),
                KeyHolder {
                    location: h.location.clone(),
                    since,
                },
            );
        }
    }
    out
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

/// The checklist as lines, with a heading, for `status` and `inspect`.
pub fn section(c: &Checklist, holders: &BTreeMap<KeyId, KeyHolder>) -> Vec<String> {
    let mut lines = vec!["Signatures (missing-signature checklist):".to_string()];
    if c.items.is_empty() {
        lines.push("  nothing to sign in this bundle".to_string());
    }
    lines.extend(c.lines(holders).into_iter().map(|l| format!("  {l}")));
    lines
}

/// Warning horizon of the expiry section of `signer inspect`, in days.
pub const EXPIRY_WARN_DAYS: i64 = 60;
/// Critical horizon of the expiry section of `signer inspect`, in days.
pub const EXPIRY_CRITICAL_DAYS: i64 = 14;

/// The expiry radar of a bundle at `now`: current roots, staged roots, production targets
/// per tag and waves (snapshot and timestamp are online-signed and not in bundles).
pub fn expiry_section(l: &Loaded, now: &Timestamp) -> Vec<String> {
    let h = Horizons {
        warn_days: EXPIRY_WARN_DAYS,
        critical_days: EXPIRY_CRITICAL_DAYS,
    };
    let mut docs = expiry::root_docs("current ", &l.tx.current_ci, l.tx.current_prod.as_ref());
    if l.has_draft || l.bundle.upload().is_some() {
        docs.extend(expiry::root_docs(
            "staged ",
            &l.draft_ci,
            Some(&l.draft_prod),
        ));
    }
    docs.extend(expiry::production_targets_docs(
        l.prod_targets.iter().map(|(k, t)| (k.as_str(), t)),
    ));
    docs.extend(expiry::wave_docs(
        l.waves.iter().map(|(k, t)| (k.as_str(), t)),
    ));
    let mut lines = vec![format!(
        "Expiry (warning within {EXPIRY_WARN_DAYS} days, critical within {EXPIRY_CRITICAL_DAYS}; `courier expiry` for the live factory):"
    )];
    lines.extend(
        expiry::lines(&expiry::assess(docs, now, &h))
            .into_iter()
            .map(|l| format!("  {l}")),
    );
    lines
}

/// `signer status`: prints the checklist; exit 0 when every threshold is met, else
/// [`EXIT_SIGNATURES_MISSING`].
pub fn run(ctx: &mut Ctx<'_>, args: &StatusArgs) -> Result<u8> {
    let (state, ui) = (&ctx.state, &mut *ctx.ui);
    let l = session::load(&args.bundle)?;
    let pass = args.passphrase.source();
    let mut files = Vec::new();
    for src in &args.keys {
        files.push(HeldKeys::of(&l, src, &pass, args.pin.pin_file.as_deref())?);
    }
    let c = checklist(&l)?;
    let holders = holders(state.path(), &files);
    let code = if c.complete() {
        0
    } else {
        EXIT_SIGNATURES_MISSING
    };
    if args.json {
        let missing: std::collections::BTreeSet<&KeyId> =
            c.items.iter().flat_map(|i| &i.missing).collect();
        let value = serde_json::json!({
            "bundle": args.bundle,
            "factory": l.bundle.factory(),
            "fingerprint": l.bundle.fingerprint(),
            "complete": c.complete(),
            "items": c.items.iter().map(|i| serde_json::json!({
                "document": i.document,
                "authority": i.authority,
                "threshold": i.threshold,
                "present": i.present,
                "missing": i.missing,
                "still-needed": i.still_needed(),
            })).collect::<Vec<_>>(),
            "holders": holders
                .iter()
                .filter(|(k, _)| missing.contains(k))
                .map(|(k, h)| (k.to_string(), serde_json::json!({"location": h.location, "since": h.since})))
                .collect::<serde_json::Map<_, _>>(),
        });
        ui.line(serde_json::to_string_pretty(&value).unwrap_or_default());
        return Ok(code);
    }
    ui.line(format!(
        "Bundle {} (factory {}, fingerprint {})",
        args.bundle.display(),
        l.bundle.factory(),
        l.bundle.fingerprint()
    ));
    for line in section(&c, &holders) {
        ui.line(line);
    }
    if code == 0 {
        ui.line("Every threshold is met.");
    }
    Ok(code)
}
