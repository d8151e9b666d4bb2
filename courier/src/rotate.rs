//! `courier rotate-offline-key`: the online half of `fioctl keys tuf rotate-offline-key`.
//!
//! Plan (every refusal before any change): the bundle file must not exist; `--first-time`
//! only with `--role root` and needs the signer's recipient; a targets rotation is refused
//! while a wave is active. Then: start the transaction (shortcut, default changelog),
//! write the request bundle for the rotation and print its fingerprint. If anything fails
//! after the transaction started, the user is told how to continue or cancel.

use crate::cli::{OfflineRole, OpArg, RotateOfflineKeyArgs};
use crate::config::CourierConfig;
use crate::error::{CourierError, Result};
use crate::request::{self, DocPlan, Plan};
use crate::transaction;
use crate::Ctx;

/// fioctl's default changelog for a root key rotation.
pub const ROOT_MESSAGE: &str = "Rotate TUF root offline signing key";
/// fioctl's default changelog for a targets key rotation.
pub const TARGETS_MESSAGE: &str = "Rotate TUF targets offline signing key";

/// `courier rotate-offline-key`.
pub fn rotate_offline_key(ctx: &Ctx, args: &RotateOfflineKeyArgs) -> Result<()> {
    if args.first_time && args.role != OfflineRole::Root {
        return Err(CourierError::Usage(
            "The --first-time option is only valid for the first TUF root key rotation.".into(),
        ));
    }
    request::check_new_file(&args.bundle)?;
    if args.first_time {
        CourierConfig::load(ctx.paths()?)?.require_recipient()?;
    }
    let message = args.message.clone().unwrap_or_else(|| {
        match args.role {
            OfflineRole::Root => ROOT_MESSAGE,
            OfflineRole::Targets => TARGETS_MESSAGE,
        }
        .to_string()
    });
    let (op, docs) = match (args.role, args.first_time) {
        (OfflineRole::Root, true) => (OpArg::FirstTimeRootRotation, DocPlan::default()),
        (OfflineRole::Root, false) => (OpArg::RotateRoot, DocPlan::default()),
        (OfflineRole::Targets, _) => (
            OpArg::RotateTargets,
            DocPlan {
                tags: Some(Vec::new()),
                waves: Some(Vec::new()),
                ..DocPlan::default()
            },
        ),
    };
    let plan = Plan {
        ops: vec![op],
        keyid: None,
        threshold: None,
        docs,
    };
    let client = ctx.client()?;
    if args.role == OfflineRole::Targets {
        if let Some(active) = client.wave_targets(&[])? {
            if !active.is_empty() {
                let names = active.keys().cloned().collect::<Vec<_>>();
                return Err(CourierError::Other(format!(
                    "The TUF targets key rotation is not allowed while a Wave is active: {}. Complete or cancel \
                     the wave first (`courier waves complete {}` or `courier waves cancel {}`).",
                    names.join(", "),
                    names[0],
                    names[0]
                )));
            }
        }
    }
    ctx.out.line("= Creating new TUF updates transaction");
    let txid = transaction::start_transaction(ctx, &client, &message, args.first_time, true)?;
    let advice = |e: CourierError| {
        e.context(format!(
            "The TUF root updates transaction was started but no request bundle was written. Try again with \
             `courier updates pull --op {} --bundle FILE`, or cancel it with `courier updates cancel`",
            match op {
                OpArg::FirstTimeRootRotation => "first-time-root-rotation",
                OpArg::RotateRoot => "rotate-root",
                _ => "rotate-targets",
            }
        ))
    };
    let mut spool = request::spool_beside(&args.bundle).map_err(advice)?;
    let input = request::gather_request(ctx, &client, &plan, &txid, &mut spool).map_err(advice)?;
    request::write_request(ctx, input, &args.bundle, "root-updates", None).map_err(advice)?;
    ctx.out.line(&format!(
        "Next: on the offline machine run `signer rotate-offline-key --role {}{} ... {}`, then bring the response \
         back and run `courier updates push RESPONSE --apply`.",
        match args.role {
            OfflineRole::Root => "root",
            OfflineRole::Targets => "targets",
        },
        if args.first_time { " --first-time" } else { "" },
        args.bundle.display()
    ));
    Ok(())
}
