//! # courier — the online half of the offline TUF key workflow
//!
//! The courier talks to the Foundries.io API for one factory and carries transfer bundles to
//! and from the air-gapped `signer`. It never holds an offline private key and never signs.
//!
//! Each command is parse → plan → act: arguments and configuration are resolved and checked
//! before the first request that changes anything, so every refusal happens before a change.
//!
//! Modules:
//! * [`cli`] — the command line (clap derive; the doc comments are the help text);
//! * [`config`] — fioctl-compatible connection settings and the courier's own settings;
//! * [`api`] — the HTTP client (timeouts, retries for idempotent requests, error bodies);
//! * [`state`] — records of the request bundles this courier wrote;
//! * [`bundles`] — building request bundles and pushing response bundles;
//! * [`response`] (reading a response: its steps' signers, the local copy of its request),
//!   [`live`] (a response checked against the factory's live transaction), [`sniff`] (a
//!   keys tarball or a root.json given as a bundle is named for what it is);
//! * [`habits`] — fioctl flags and subcommands given to the courier that belong to the
//!   signer, answered with the signer command that takes them;
//! * [`root`] (`show-root`), [`updates`] (the `updates` expert commands), [`rotate`]
//!   (`rotate-offline-key`), [`targets`] (`prod-targets`), [`waves`] (`waves`),
//!   [`completions`] (`completions`, `man`), [`expiry`] (`expiry`, the expiry radar);
//! * [`error`] — errors and exit codes.

pub mod api;
pub mod bundles;
pub mod cli;
pub mod completions;
pub mod config;
pub mod error;
pub mod expiry;
pub mod habits;
pub mod live;
pub mod response;
pub mod review;
pub mod root;
pub mod rotate;
pub mod sniff;
pub mod state;
pub mod targets;
pub mod updates;
pub mod waves;

use std::ffi::OsString;
use std::io::Write;
use std::time::Duration;

use clap::Parser;

use crate::api::{Client, ClientOptions, RetryPolicy};
use crate::cli::{Cli, Command, ConfigCommand};
use crate::config::{EnvLookup, GlobalOpts, Paths, Settings};
use crate::error::{ExitCode, Result};
use crate::state::StateStore;

/// Everything a command needs: resolved settings, file locations and client options.
pub struct Ctx {
    /// Connection settings.
    pub settings: Settings,
    /// Where the courier's own files live.
    pub paths: Paths,
    /// Log requests.
    pub verbose: bool,
    /// HTTP client options.
    pub client_options: ClientOptions,
}

impl Ctx {
    /// Builds the context from the global flags and an environment.
    pub fn new(global: &cli::GlobalArgs, env: EnvLookup<'_>) -> Result<Ctx> {
        let opts = GlobalOpts {
            factory: global.factory.clone(),
            token: global.token.clone(),
            api_url: global.api_url.clone(),
            config: global.config.clone(),
        };
        let settings = config::resolve(&opts, env)?;
        let paths = Paths::from_env(env)?;
        let mut retry = RetryPolicy::default();
        // For tests and impatient people: the first retry delay in milliseconds.
        if let Some(ms) = env("COURIER_RETRY_DELAY_MS").and_then(|v| v.parse::<u64>().ok()) {
            retry.base_delay = Duration::from_millis(ms);
            retry.max_delay = Duration::from_millis(ms.saturating_mul(8));
        }
        Ok(Ctx {
            settings,
            paths,
            verbose: global.verbose > 0,
            client_options: ClientOptions {
                verbose: global.verbose > 0,
                timeout: Duration::from_secs(global.timeout.max(1)),
                retry,
            },
        })
    }

    /// An API client for the configured factory.
    pub fn client(&self) -> Result<Client> {
        Client::new(&self.settings, self.client_options.clone())
    }

    /// The state store.
    pub fn state(&self) -> StateStore {
        StateStore::new(self.paths.state_dir.clone())
    }
}

/// Prints a line to stdout, ignoring a closed pipe (`courier ... | head`).
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}

/// Prints a value as pretty JSON on stdout.
pub fn out_json(value: &serde_json::Value) {
    out(&serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Runs one command line with the process environment and returns the exit code.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let words: Vec<String> = args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            if let Some(habit) = habits::explain(&words, &e) {
                eprintln!("error: {habit}");
                return ExitCode::Usage.code();
            }
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::Usage.code()
            } else {
                ExitCode::Ok.code()
            };
        }
    };
    match run(cli, &config::process_env) {
        Ok(()) => ExitCode::Ok.code(),
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code().code()
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli, env: EnvLookup<'_>) -> Result<()> {
    match cli.command {
        Command::Completions(args) => return completions::completions(&args),
        Command::Man(args) => return completions::man(&args),
        _ => {}
    }
    let ctx = Ctx::new(&cli.global, env)?;
    match cli.command {
        Command::ShowRoot(args) => root::show_root(&ctx, &args),
        Command::RotateOfflineKey(args) => rotate::rotate_offline_key(&ctx, &args),
        Command::Updates(cmd) => updates::run(&ctx, cmd),
        Command::ProdTargets(cmd) => targets::run(&ctx, cmd),
        Command::Waves(cmd) => waves::run(&ctx, cmd),
        Command::Expiry(args) => expiry::run(&ctx, &args),
        Command::Config(ConfigCommand::SetRecipient(args)) => {
            config::set_recipient(&ctx.paths, &args.recipient)
        }
        Command::Config(ConfigCommand::Show(args)) => {
            config::show(&ctx.settings, &ctx.paths, args.json)
        }
        Command::Config(ConfigCommand::AddSigner(args)) => {
            config::add_signer(&ctx.paths, &args.name, &args.identity)
        }
        Command::Config(ConfigCommand::RemoveSigner(args)) => {
            config::remove_signer(&ctx.paths, &args.name)
        }
        Command::Completions(_) | Command::Man(_) => Ok(()),
    }
}
