//! # signer — the offline half of the offline TUF toolkit
//!
//! Runs on the air-gapped machine. It reads transfer bundles written by the courier,
//! verifies them against the root pinned on this machine, shows what would change, and
//! creates keys and signatures. It never links network code (a test checks
//! `cargo tree -p signer -e normal`).
//!
//! [`run`] is the entry point: it is the only place that reads the clock, opens the
//! terminal and takes the operating system's random number generator, and hands them to
//! every command in a [`Ctx`]. Every command is `fn(&mut Ctx, &Args) -> Result<_,
//! SignerError>`; `main` prints the one-line error and exits with
//! [`SignerError::exit_code`](error::SignerError::exit_code).
//!
//! Modules, one per command group:
//!
//! * [`cli`] — the command line (clap), [`ctx`] — what a command runs with, [`error`] —
//!   errors and exit codes, [`state`] — the state directory, [`ui`] — output and
//!   confirmation;
//! * [`trust`] — `signer trust init|show`, and the chain check from the pinned root;
//! * [`session`] — reading a bundle and the checks every command makes;
//! * [`authority`] — who authorized each change of the drafts (operator, cosigner,
//!   typed confirmation); [`memory`] — the roots this signer signed or pinned (forks);
//! * [`inspect`] — `signer inspect`; [`status`] — `signer status`, the missing-signature
//!   checklist;
//! * [`ops`] — the operations that create keys and sign, one file per command group
//!   (rotate, expert, sign, combine) around the shared plan and act phases;
//! * [`keys`] — `signer keys …`, one file per command group (list, backup, export, paper,
//!   split, drill, at_rest) around the shared reference root, sheet format and files;
//! * [`identity`] — the age and signing identities; [`cosigner`] — the other key
//!   holders' pinned signing identities; [`audit`] — the append-only audit log;
//! * key sources: [`keysource`] (`--keys` values), [`keyset`] (the sources of one run),
//!   [`keystore`] (plain and encrypted keys files), [`pkcs11`] (tokens, `keys generate`);
//! * [`wrong_file`] — one line when a person gives the wrong file (a bundle, a keys tarball,
//!   a root.json in each other's place); [`habits`] — fioctl flags given to the signer;
//! * [`completions`] — `signer completions` and `signer man`.

pub mod audit;
pub mod authority;
pub mod cli;
pub mod completions;
pub mod cosigner;
pub mod ctx;
pub mod error;
pub mod habits;
pub mod identity;
pub mod inspect;
pub mod keys;
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

use rand_core::CryptoRngCore;
use shared::metadata::Timestamp;

use crate::cli::{Cli, Command};
use crate::ctx::Ctx;
use crate::error::SignerError;
use crate::state::StateDir;
use crate::ui::Ui;

/// Runs a parsed command line with the real terminal, the current time and the operating
/// system's random number generator; returns the exit status.
pub fn run(cli: Cli) -> Result<u8, SignerError> {
    let mut ui = Ui::terminal(cli.yes);
    run_with(cli, &mut ui, Timestamp::now(), &mut rand_core::OsRng)
}

/// Runs a parsed command line with the given UI, time and random number generator (for
/// tests and embedding); returns the exit status.
pub fn run_with(
    cli: Cli,
    ui: &mut Ui,
    now: Timestamp,
    rng: &mut dyn CryptoRngCore,
) -> Result<u8, SignerError> {
    // Generated documentation needs no state directory.
    match &cli.command {
        Command::Completions(a) => return completions::completions(ui, a).map(|()| 0),
        Command::Man(a) => return completions::man(ui, a).map(|()| 0),
        _ => {}
    }
    let state = StateDir::resolve(cli.state.as_deref())?;
    ui.set_digest_confirmation(cli.root_confirmation == cli::RootConfirmation::Digest);
    let mut ctx = Ctx::new(state, ui, now, rng);
    dispatch(&mut ctx, &cli.command)
}

/// The exit status of a command that went through and whose status means nothing more.
fn done<T>(_: T) -> u8 {
    0
}

/// Runs one command in `ctx`: the exit status it says (`inspect`, `status`), else 0.
fn dispatch(ctx: &mut Ctx<'_>, command: &Command) -> Result<u8, SignerError> {
    match command {
        Command::Inspect(a) => inspect::run(ctx, a),
        Command::Status(a) => status::run(ctx, a),
        Command::Trust(c) => trust::run(ctx, c).map(done),
        Command::RotateOfflineKey(a) => ops::rotate::rotate_offline_key(ctx, a).map(done),
        Command::AddOfflineKey(a) => ops::expert::add_offline_key(ctx, a).map(done),
        Command::DeleteOfflineKey(a) => ops::expert::delete_offline_key(ctx, a).map(done),
        Command::SetThreshold(a) => ops::expert::set_threshold(ctx, a).map(done),
        Command::RotateOnlineKey(a) => ops::expert::rotate_online_key(ctx, a).map(done),
        Command::Sign(a) => ops::sign::sign(ctx, a).map(done),
        Command::SignProdTargets(a) => ops::sign::sign_prod_targets(ctx, a).map(done),
        Command::SignWave(a) => ops::sign::sign_wave(ctx, a).map(done),
        Command::Combine(a) => ops::combine::combine(ctx, a).map(done),
        Command::Cosigner(c) => cosigner::run(ctx, c).map(done),
        Command::Identity(c) => identity::run(ctx, c).map(done),
        Command::Keys(c) => keys::run(ctx, c).map(done),
        Command::Audit(c) => audit::run(ctx, c).map(done),
        Command::Completions(a) => completions::completions(ctx.ui, a).map(done),
        Command::Man(a) => completions::man(ctx.ui, a).map(done),
    }
}
