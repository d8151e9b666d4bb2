//! # courier — the online half of the offline TUF key workflow
//!
//! The courier talks to the Foundries.io API for one factory and carries transfer bundles to
//! and from the air-gapped `signer`. It never holds an offline private key and never signs.
//!
//! Each command is parse → plan → act: arguments and configuration are resolved and checked
//! before the first request that changes anything, so every refusal happens before a change.
//! Every command has one shape, `fn(&Ctx, &Args) -> Result<(), CourierError>`: the
//! [`Ctx`] carries the settings and the API client factory, the output and the clock; the
//! one error type carries the exit code ([`error`]). Only [`main_with_args`] touches the
//! process (arguments, environment, streams, clock, exit code).
//!
//! Modules, by what they own:
//! * [`cli`] — the command line (clap derive; the doc comments are the help text);
//! * [`context`] ([`Ctx`]) and [`output`] ([`output::Output`]) — what a command is given;
//! * [`error`] — the error type and the exit codes;
//! * [`config`] — fioctl-compatible connection settings and the courier's own settings
//!   (`config` commands);
//! * [`state`] — the state directory: copies and records of the request bundles written,
//!   transactions started, the encrypted initial root key (atomic writes via
//!   `shared::fsutil`);
//! * [`api`] — the Factory API client ([`api::transport`], [`api::endpoints`],
//!   [`api::types`]);
//! * [`transaction`] — changing the root updates transaction: fioctl's "not started"
//!   refusals, the txid to send, starting and applying it (the transaction itself, parsed
//!   with fioctl's rules, is `shared::transaction::ParsedTransaction`);
//! * [`request`] — building request bundles (what the signer needs): `updates pull`,
//!   `prod-targets pull`, and the requests of `rotate-offline-key`;
//! * [`push`] — verifying and uploading a response (`updates push`): reading it, the signer
//!   steps, local signature checks, the live transaction, the upload;
//! * [`waves`] — waves: command handling (`rollout`, `complete`, `cancel`, `list`) and wave
//!   bundles (building wave targets, `waves init`/`sign` requests, `waves push`);
//! * [`sniff`] (a keys tarball or a root.json given as a bundle is named for what it is),
//!   [`habits`] (fioctl flags and subcommands that belong to the signer, answered with the
//!   signer command that takes them);
//! * commands: [`root`] (`show-root`), [`rotate`] (`rotate-offline-key`), [`updates`] (the
//!   `updates` expert commands), [`review`] (`updates review`), [`targets`]
//!   (`prod-targets`), [`expiry`] (`expiry`, the expiry radar), [`completions`]
//!   (`completions`, `man`).

pub mod api;
pub mod cli;
pub mod completions;
pub mod config;
pub mod context;
pub mod error;
pub mod expiry;
pub mod habits;
pub mod output;
pub mod push;
pub mod request;
pub mod review;
pub mod root;
pub mod rotate;
pub mod sniff;
pub mod state;
pub mod targets;
pub mod transaction;
pub mod updates;
pub mod waves;

use std::ffi::OsString;

use clap::Parser;
use shared::metadata::Timestamp;

use crate::cli::{Cli, Command, ConfigCommand, ProdTargetsCommand, UpdatesCommand, WavesCommand};
use crate::config::EnvLookup;
pub use crate::context::Ctx;
use crate::error::{ExitCode, Result};
use crate::output::Output;

/// Runs one command line with the process environment, streams and clock, and returns the
/// exit code.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let out = Output::process();
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let words: Vec<String> = args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            if let Some(habit) = habits::explain(&words, &e) {
                out.error(&habit.to_string());
                return ExitCode::Usage.code();
            }
            // clap prints its own message (help and version on stdout, errors on stderr).
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::Usage.code()
            } else {
                ExitCode::Ok.code()
            };
        }
    };
    match run(cli, &config::process_env, out.clone(), Timestamp::now()) {
        Ok(()) => ExitCode::Ok.code(),
        Err(e) => {
            out.error(&e.to_string());
            e.exit_code().code()
        }
    }
}

/// Runs a parsed command line in the environment `env`, writing to `out`, at time `now`.
pub fn run(cli: Cli, env: EnvLookup<'_>, out: Output, now: Timestamp) -> Result<()> {
    let ctx = Ctx::new(&cli.global, env, out, now);
    if !matches!(cli.command, Command::Completions(_) | Command::Man(_)) {
        // Settings and paths are checked before any command (a broken configuration is
        // reported first); completions and man pages need neither.
        ctx.settings()?;
        ctx.paths()?;
    }
    match &cli.command {
        Command::ShowRoot(a) => root::show_root(&ctx, a),
        Command::RotateOfflineKey(a) => rotate::rotate_offline_key(&ctx, a),
        Command::Updates(cmd) => match cmd {
            UpdatesCommand::Init(a) => updates::init(&ctx, a),
            UpdatesCommand::Status(a) => updates::status(&ctx, a),
            UpdatesCommand::Review(a) => review::review(&ctx, a),
            UpdatesCommand::Pull(a) => request::pull(&ctx, a),
            UpdatesCommand::Push(a) => push::push(&ctx, a),
            UpdatesCommand::Apply(a) => updates::apply(&ctx, a),
            UpdatesCommand::Cancel(a) => updates::cancel(&ctx, a),
            UpdatesCommand::RotateOnlineKey(a) => updates::rotate_online_key(&ctx, a),
        },
        Command::ProdTargets(ProdTargetsCommand::Pull(a)) => targets::pull(&ctx, a),
        Command::Waves(cmd) => match cmd {
            WavesCommand::Init(a) => waves::request::init(&ctx, a),
            WavesCommand::Sign(a) => waves::request::sign(&ctx, a),
            WavesCommand::Push(a) => waves::push::push(&ctx, a),
            WavesCommand::Rollout(a) => waves::rollout::rollout(&ctx, a),
            WavesCommand::List(a) => waves::list(&ctx, a),
            WavesCommand::Complete(a) => waves::complete(&ctx, a),
            WavesCommand::Cancel(a) => waves::cancel(&ctx, a),
        },
        Command::Expiry(a) => expiry::run(&ctx, a),
        Command::Config(cmd) => match cmd {
            ConfigCommand::SetRecipient(a) => config::set_recipient(&ctx, a),
            ConfigCommand::Show(a) => config::show(&ctx, a),
            ConfigCommand::AddSigner(a) => config::add_signer(&ctx, a),
            ConfigCommand::RemoveSigner(a) => config::remove_signer(&ctx, a),
        },
        Command::Completions(a) => completions::completions(&ctx, a),
        Command::Man(a) => completions::man(&ctx, a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Runs a command line in-process with a fake environment and a captured output.
    fn run_captured(args: &[&str], env: &BTreeMap<&str, String>) -> (Result<()>, output::Captured) {
        let cli = Cli::try_parse_from(args).expect("parses");
        let (out, seen) = Output::captured();
        let lookup = |k: &str| env.get(k).cloned();
        let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        (run(cli, &lookup, out, now), seen)
    }

    #[test]
    fn commands_print_through_the_context_only() {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::from([
            ("HOME", dir.path().display().to_string()),
            ("FIOCTL_FACTORY", "acme".to_string()),
            ("FIOCTL_TOKEN", "s3cret-token".to_string()),
        ]);
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        let (r, seen) = run_captured(&["courier", "config", "set-recipient", &recipient], &env);
        r.unwrap();
        assert!(
            seen.stdout()
                .starts_with(&format!("Signer recipient set to {recipient}")),
            "{}",
            seen.stdout()
        );
        let (r, seen) = run_captured(&["courier", "config", "show", "--json"], &env);
        r.unwrap();
        let shown: serde_json::Value = serde_json::from_str(&seen.stdout()).unwrap();
        assert_eq!(shown["factory"], "acme");
        assert_eq!(shown["recipient"], recipient.as_str());
        assert!(!seen.stdout().contains("s3cret-token"));
        let (r, seen) = run_captured(&["courier", "completions", "bash"], &BTreeMap::new());
        r.unwrap();
        assert!(seen.stdout().contains("rotate-offline-key"));
    }

    #[test]
    fn a_broken_configuration_is_reported_before_the_command_runs() {
        let env = BTreeMap::from([("FIOCTL_CONFIG", "/nonexistent/fioctl.yaml".to_string())]);
        let (r, seen) = run_captured(&["courier", "show-root"], &env);
        let err = r.unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::Error);
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert_eq!(seen.stdout(), "");
        // Completions need no configuration at all.
        let (r, _) = run_captured(&["courier", "man"], &env);
        r.unwrap();
    }
}
