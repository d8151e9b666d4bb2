//! `signer rotate-offline-key`: a new root key (the first-time rotation takes the initial
//! root key out of the bundle; later ones sign with the old and the new key), or a new
//! offline targets key that re-signs what the previous one verifiably signed — including
//! the replacement of a lost targets key by the root key holder (`--lost-key`).

use shared::bundle::Operation;
use shared::keys::{KeyId, PrivateKey};
use shared::metadata::Role;
use shared::tarball::KeysTarball;

use crate::cli::RotateArgs;
use crate::ctx::Ctx;
use crate::error::{Result, SignerError};
use crate::identity;
use crate::keyset::tar_err;
use crate::keysource::{KeyArgs, KeySource};
use crate::session::Loaded;

use super::plan::{Deferred, NewKeyUse, Work};
use super::{
    finish, keyset, new_key_hint, object_of, prepare, require_requested, tarball_paths, Outcome,
};

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
        let cur = &l.tx.current_ci.signed;
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
        &mut *ctx.rng,
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
                .offline_targets_key(tk, &l.tx.current_ci.signed, &cur_online, "the current root")
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
        &mut *ctx.rng,
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
        (&l.tx.current_ci.signed, "the current root", current_online),
    ] {
        let offline = root.offline_targets_keys([online]);
        if !offline.contains(lost) {
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
