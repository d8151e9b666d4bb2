//! `signer combine`: two responses to one request, signed on different machines, merged
//! into one. Combining signs nothing, but every step is checked (a step changed on the way
//! is refused) and the result shown before it is written.

use shared::bundle::{self, TransferBundle};

use crate::audit::{self, AuditEvent};
use crate::authority::{self, Decision};
use crate::cli::CombineArgs;
use crate::ctx::Ctx;
use crate::error::{Result, SignerError};
use crate::session;

use super::{report_status, Outcome};

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
        for line in crate::inspect::key_changes_table(&l.tx.current_ci.signed, &l.draft_ci.signed) {
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
    l.bundle
        .write_atomic(&args.out, bundle::WRITE_COMPRESSION)
        .map_err(SignerError::bundle)?;
    audit::record(
        ctx.state.path(),
        &ctx.now,
        AuditEvent::BundleWritten {
            path: args.out.display().to_string(),
            // The file is the plain tar stream the bundle digest covers.
            sha256: l.bundle.digest().to_string(),
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
