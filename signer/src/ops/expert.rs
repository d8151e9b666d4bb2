//! fioctl's expert mode offline: `add-offline-key`, `delete-offline-key`, `set-threshold`
//! and `rotate-online-key` (the operator authorizes the server's new online keys). Each makes
//! exactly the change it names — that change is the run's grant — and signs the roots when
//! root keys are given.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use shared::authority::Change;
use shared::bundle::Operation;
use shared::keys::KeyId;
use shared::metadata::Role;
use shared::transform;

use crate::audit::{self, AuditEvent};
use crate::cli::{AddKeyArgs, BundleIo, CheckArgs, DeleteKeyArgs, RotateOnlineArgs, ThresholdArgs};
use crate::ctx::Ctx;
use crate::error::{Result, SignerError};
use crate::keysource::{KeyArgs, KeySource};
use crate::session::{Loaded, Trusted};

use super::plan::{Deferred, NewKeyUse, Work};
use super::{
    finish, keyset, new_key_hint, object_of, prepare, require_requested, tarball_paths, Outcome,
};

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
            work.ci.signed.offline_targets_keys([&online])
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
        &mut *ctx.rng,
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
    let op = Operation::DeleteOfflineKey {
        role,
        keyid: args.keyid.clone(),
    };
    let (keys, l, trusted) = prepare_root_change(
        ctx,
        "delete-offline-key",
        &op,
        &args.src,
        &args.io,
        &args.check,
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

/// The plan phase of `delete-offline-key` and `set-threshold`, which change the roots
/// with at most the root keys of `--keys` (any other key source is refused as not used by
/// `command`): those keys, and the bundle checked, with a staged draft, requesting `op`.
fn prepare_root_change<'k>(
    ctx: &mut Ctx<'_>,
    command: &str,
    op: &Operation,
    src: &'k KeyArgs,
    io: &BundleIo,
    check: &CheckArgs,
) -> Result<(Option<&'k KeySource>, Loaded, Trusted)> {
    src.refuse(
        true,
        true,
        &format!("is not used by {command} (only --keys)"),
    )?;
    let keys = src.root()?;
    let srcs: Vec<&KeySource> = keys.into_iter().collect();
    let (l, trusted) = prepare(ctx, io, &tarball_paths(&srcs), check)?;
    l.require_draft()?;
    require_requested(ctx, &l, &op.to_string(), check.allow_unrequested, |o| {
        o == op
    })?;
    Ok((keys, l, trusted))
}

/// Signs the new roots with the root keys of `keys` when given; without them says that the
/// roots stay unsigned and who signs them.
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
    let op = Operation::SetThreshold {
        role,
        threshold: args.threshold,
    };
    let (keys, l, trusted) =
        prepare_root_change(ctx, "set-threshold", &op, &args.src, &args.io, &args.check)?;
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
    let cur = &l.tx.current_ci.signed;
    let draft = &work.ci.signed;
    let own_offline = offline_targets_created_here(ctx.state.path())?;
    for role in &roles {
        let (Some(old), Some(new)) = (
            l.tx.current_online_keys().get(role.as_str()),
            l.tx.updated_online_keys().get(role.as_str()),
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
