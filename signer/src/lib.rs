//! # signer — the offline half of the offline TUF toolkit
//!
//! Runs on the air-gapped machine. It reads transfer bundles written by the courier,
//! verifies them against the root pinned on this machine, shows what would change, and
//! creates keys and signatures. It never links network code (a test checks
//! `cargo tree -p signer -e normal`).
//!
//! Modules, one per command group:
//!
//! * [`cli`] — the command line (clap), [`error`] — errors and exit codes,
//!   [`state`] — the state directory, [`ui`] — output and confirmation;
//! * [`trust`] — `signer trust init|show`, and the chain check from the pinned root;
//! * [`session`] — reading a bundle and the checks every command makes;
//! * [`authority`] — who authorized each change of the drafts (operator, cosigner,
//!   typed confirmation); [`memory`] — the roots this signer signed or pinned (forks);
//! * [`inspect`] — `signer inspect`;
//! * [`ops`] — rotate/add/delete keys, set thresholds, accept online keys, sign, combine;
//! * [`identity`] — the age and signing identities; [`cosigner`] — the other key
//!   holders' pinned signing identities; [`keystore`] — plain and encrypted keys files;
//!   [`keys_cmd`] — `signer keys …`; [`keys_split`] — `keys split` / `keys combine` (Shamir
//!   shares of the root key); [`keys_drill`] — `keys drill` (restore drill of a backup);
//!   [`keys_at_rest`] — `keys encrypt` / `keys decrypt`; [`audit`] — the append-only audit log;
//! * [`wrong_file`] — one line when a person gives the wrong file (a bundle, a keys tarball,
//!   a root.json in each other's place);
//! * [`status`] — `signer status`, the missing-signature checklist.

pub mod audit;
pub mod authority;
pub mod cli;
pub mod completions;
pub mod cosigner;
pub mod error;
pub mod habits;
pub mod identity;
pub mod inspect;
pub mod keys_at_rest;
pub mod keys_cmd;
pub mod keys_drill;
pub mod keys_split;
pub mod keyset;
pub mod keysource;
pub mod keystore;
pub mod memory;
pub mod ops;
pub mod pkcs11;
pub mod session;
pub mod state;
pub mod status;
pub mod trust;
pub mod ui;
pub mod wrong_file;

#[cfg(test)]
#[path = "../tests/common/factory.rs"]
pub(crate) mod testutil;

use shared::metadata::Timestamp;

use crate::cli::{Cli, Command, TrustCommand};
use crate::state::StateDir;
use crate::ui::Ui;

/// Runs a parsed command line with the real terminal; returns the exit status.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let mut ui = Ui::terminal(cli.yes);
    run_with(cli, &mut ui, Timestamp::now())
}

/// Runs a parsed command line with the given UI and time (for tests and embedding).
pub fn run_with(cli: Cli, ui: &mut Ui, now: Timestamp) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Completions(a) => return Ok(completions::completions(a).map(|_| 0)?),
        Command::Man(a) => return Ok(completions::man(a).map(|_| 0)?),
        _ => {}
    }
    let state = StateDir::resolve(cli.state.as_deref())?;
    ui.set_digest_confirmation(cli.root_confirmation == cli::RootConfirmation::Digest);
    let dir = state.path().to_path_buf();
    let mut ctx = ops::Ctx { state, ui, now };
    match cli.command {
        Command::Inspect(a) => return Ok(inspect::run(&ctx.state, ctx.ui, &now, &a)?),
        Command::Status(a) => return Ok(status::run(&ctx.state, ctx.ui, &a)?),
        Command::Trust(TrustCommand::Init(a)) => {
            trust::init(
                &ctx.state,
                ctx.ui,
                &a.root,
                a.factory.as_deref(),
                a.allow_expired,
                &now,
            )?;
        }
        Command::Trust(TrustCommand::Show(a)) => trust::show(&ctx.state, ctx.ui, a.json)?,
        Command::RotateOfflineKey(a) => {
            ops::rotate_offline_key(&mut ctx, &a)?;
        }
        Command::AddOfflineKey(a) => {
            ops::add_offline_key(&mut ctx, &a)?;
        }
        Command::DeleteOfflineKey(a) => {
            ops::delete_offline_key(&mut ctx, &a)?;
        }
        Command::SetThreshold(a) => {
            ops::set_threshold(&mut ctx, &a)?;
        }
        Command::RotateOnlineKey(a) => {
            ops::rotate_online_key(&mut ctx, &a)?;
        }
        Command::Cosigner(c) => cosigner::run(&c, &ctx.state, ctx.ui, &now)?,
        Command::Sign(a) => {
            ops::sign(&mut ctx, &a)?;
        }
        Command::SignProdTargets(a) => {
            ops::sign_prod_targets(&mut ctx, &a)?;
        }
        Command::SignWave(a) => {
            ops::sign_wave(&mut ctx, &a)?;
        }
        Command::Combine(a) => {
            ops::combine(&mut ctx, &a)?;
        }
        Command::Identity(c) => identity::run(&c, &dir)?,
        Command::Keys(c) => keys_cmd::run(&c, &dir)?,
        Command::Audit(c) => audit::run(&c, &dir)?,
        Command::Completions(_) | Command::Man(_) => {}
    }
    Ok(0)
}
