//! `courier expiry`: the expiry radar of the factory, from what the Factory API serves —
//! the current CI and production roots (`root/updates`), production targets of every tag
//! (`prod-targets/`) and the targets of every active wave (`wave-targets/`). Snapshot,
//! timestamp and CI targets metadata are signed by the server's online keys and not served
//! by this API; the server renews them itself.
//!
//! The days-left arithmetic, horizons and the calendar are [`shared::expiry`]; this module
//! fetches, prints, writes the `--ics` file atomically and turns "critical" into exit 6.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use serde_json::value::RawValue;
use shared::expiry::{self, Horizons};
use shared::metadata::{TargetsSummary, Timestamp};

use crate::error::{CourierError, Result};
use crate::Ctx;

/// Options of `courier expiry`.
#[derive(Debug, Args)]
pub struct ExpiryArgs {
    /// Warn about documents that expire within this horizon (`60d`, `8w`, or days).
    #[arg(long, value_name = "DAYS", default_value = "60d")]
    pub warn: String,
    /// Exit with status 6 when a document expires within this horizon (or has expired).
    #[arg(long, value_name = "DAYS", default_value = "14d")]
    pub critical: String,
    /// Write calendar reminders (RFC 5545 .ics) for the ceremonies that renew each document:
    /// one all-day event on the day the critical horizon starts, with an alarm a week before.
    #[arg(long, value_name = "FILE")]
    pub ics: Option<PathBuf>,
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    pub json: bool,
    /// Pretend the time is this (RFC 3339; for tests and planning).
    #[arg(long, value_name = "TIME", hide = true)]
    pub now: Option<String>,
}

/// What the radar needs of a served targets document (version, expiry), read without
/// building the document.
fn read_targets(name: &str, raw: &str) -> Result<TargetsSummary> {
    TargetsSummary::from_json(raw.as_bytes()).map_err(|e| {
        CourierError::Server(format!("the server sent unreadable targets {name}: {e}"))
    })
}

/// `courier expiry`.
pub fn run(ctx: &Ctx, args: &ExpiryArgs) -> Result<()> {
    let usage = |e: expiry::ExpiryError| CourierError::Usage(e.to_string());
    let days = |flag: &str, value: &str| {
        expiry::parse_days(value).map_err(|e| CourierError::Usage(format!("{flag} {value}: {e}")))
    };
    let h = Horizons::new(
        days("--warn", &args.warn)?,
        days("--critical", &args.critical)?,
    )
    .map_err(usage)?;
    let now = match &args.now {
        Some(t) => {
            Timestamp::parse(t).map_err(|e| CourierError::Usage(format!("--now {t}: {e}")))?
        }
        None => ctx.now,
    };
    let client = ctx.client()?;
    let txn = client.updates()?;
    let mut docs = expiry::root_docs("", &txn.current_ci, txn.current_prod.as_ref());
    let parse_all = |served: Option<BTreeMap<String, Box<RawValue>>>| {
        served
            .unwrap_or_default()
            .into_iter()
            .map(|(name, raw)| Ok((name.clone(), read_targets(&name, raw.get())?)))
            .collect::<Result<Vec<(String, TargetsSummary)>>>()
    };
    let tags = parse_all(client.prod_targets(&[])?)?;
    docs.extend(expiry::production_targets_docs(
        tags.iter().map(|(k, t)| (k.as_str(), t)),
    ));
    let waves = parse_all(client.wave_targets(&[])?)?;
    docs.extend(expiry::wave_docs(
        waves.iter().map(|(k, t)| (k.as_str(), t)),
    ));
    let items = expiry::assess(docs, &now, &h);
    if let Some(path) = &args.ics {
        let cal = expiry::ics(&items, client.factory(), &now, &h);
        shared::fsutil::write_atomic(path, cal.as_bytes(), 0o644)?;
    }
    if args.json {
        ctx.out.json(&serde_json::json!({
            "factory": client.factory(),
            "now": now.to_string(),
            "horizons": h,
            "items": items,
            "not-served": ["snapshot", "timestamp", "ci-targets"],
        }));
    } else {
        ctx.out.line(&format!(
            "Expiry radar for {} at {} (warn within {} days, critical within {}):",
            client.factory(),
            now,
            h.warn_days,
            h.critical_days
        ));
        for l in expiry::lines(&items) {
            ctx.out.line(&format!("  {l}"));
        }
        ctx.out.line("  snapshot, timestamp and CI targets: signed and renewed by the server's online keys (not served by the API)");
        if let Some(path) = &args.ics {
            ctx.out.line(&format!(
                "Calendar reminders written to {}.",
                path.display()
            ));
        }
    }
    if expiry::any_critical(&items) {
        let names: Vec<&str> = items
            .iter()
            .filter(|i| i.level <= expiry::Level::Critical)
            .map(|i| i.what.as_str())
            .collect();
        return Err(CourierError::Expiring(format!(
            "{} document(s) expired or expiring within {} days: {}",
            names.len(),
            h.critical_days,
            names.join(", ")
        )));
    }
    Ok(())
}
