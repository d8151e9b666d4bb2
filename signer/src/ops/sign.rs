//! Signing what is there, without changing a root: `sign` (the staged roots, with the root
//! keys given), `sign-prod-targets` and `sign-wave` (explicit endorsements by the offline
//! targets key, shown with what they endorse).

use shared::bundle::Operation;

use crate::cli::{SignArgs, SignTargetsArgs, SignWaveArgs};
use crate::ctx::Ctx;
use crate::error::{Result, SignerError};
use crate::keysource::{KeyArgs, KeySource};

use super::plan::{Carried, Work};
use super::{finish, keyset, prepare, tarball_paths, Outcome};

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
