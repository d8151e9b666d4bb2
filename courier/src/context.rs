//! What every command is given besides its arguments: the [`Ctx`].
//!
//! A command is `fn(&Ctx, &Args) -> Result<(), CourierError>`. The context carries
//!
//! * the connection settings and the courier's own paths, resolved from the global flags
//!   and the environment on first use ([`Ctx::settings`], [`Ctx::paths`]), and the factory
//!   of API clients built from them ([`Ctx::client`]);
//! * the run's [`Output`] (`ctx.out`): the only way a command prints;
//! * the run's clock (`ctx.now`): the one time a run stamps on what it writes and checks
//!   expiry against.
//!
//! The state directory ([`Ctx::state`]) and the courier's config file are found through the
//! paths.

use std::cell::OnceCell;
use std::time::Duration;

use shared::metadata::Timestamp;

use crate::api::{Client, ClientOptions, RetryPolicy};
use crate::cli::GlobalArgs;
use crate::config::{self, EnvLookup, GlobalOpts, Paths, Settings};
use crate::error::Result;
use crate::output::Output;
use crate::state::StateStore;

/// Everything a command needs besides its arguments (see the module docs).
pub struct Ctx<'env> {
    /// Where the run writes (results on stdout, warnings and logs on stderr).
    pub out: Output,
    /// The time of this run.
    pub now: Timestamp,
    global: GlobalOpts,
    verbose: bool,
    timeout: Duration,
    env: EnvLookup<'env>,
    settings: OnceCell<Settings>,
    paths: OnceCell<Paths>,
}

impl<'env> Ctx<'env> {
    /// A context for the global flags `global` in the environment `env`; nothing is resolved
    /// yet.
    pub fn new(global: &GlobalArgs, env: EnvLookup<'env>, out: Output, now: Timestamp) -> Self {
        Ctx {
            out,
            now,
            global: GlobalOpts {
                factory: global.factory.clone(),
                token: global.token.clone(),
                api_url: global.api_url.clone(),
                config: global.config.clone(),
            },
            verbose: global.verbose > 0,
            timeout: Duration::from_secs(global.timeout.max(1)),
            env,
            settings: OnceCell::new(),
            paths: OnceCell::new(),
        }
    }

    /// The connection settings (flags, environment, fioctl config, defaults), resolved once.
    pub fn settings(&self) -> Result<&Settings> {
        if let Some(s) = self.settings.get() {
            return Ok(s);
        }
        let resolved = config::resolve(&self.global, self.env)?;
        Ok(self.settings.get_or_init(|| resolved))
    }

    /// Where the courier's own files live, resolved once.
    pub fn paths(&self) -> Result<&Paths> {
        if let Some(p) = self.paths.get() {
            return Ok(p);
        }
        let resolved = Paths::from_env(self.env)?;
        Ok(self.paths.get_or_init(|| resolved))
    }

    /// The HTTP client options: `--timeout`, `-v`, and the first retry delay from
    /// `COURIER_RETRY_DELAY_MS` (for tests and impatient people).
    pub fn client_options(&self) -> ClientOptions {
        let mut retry = RetryPolicy::default();
        if let Some(ms) = (self.env)("COURIER_RETRY_DELAY_MS").and_then(|v| v.parse::<u64>().ok()) {
            retry.base_delay = Duration::from_millis(ms);
            retry.max_delay = Duration::from_millis(ms.saturating_mul(8));
        }
        ClientOptions {
            verbose: self.verbose,
            timeout: self.timeout,
            retry,
        }
    }

    /// An API client for the configured factory, logging through this run's output.
    pub fn client(&self) -> Result<Client> {
        Client::new(self.settings()?, self.client_options(), self.out.clone())
    }

    /// The state directory.
    pub fn state(&self) -> Result<StateStore> {
        Ok(StateStore::new(self.paths()?.state_dir.clone()))
    }
}
