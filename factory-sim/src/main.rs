//! `factory-sim`: create simulated Foundries factories and serve the factory API for them.
//!
//! ```text
//! factory-sim init --state DIR --factory NAME --token TOKEN [--seed N] [--targets N]
//!                  [--offline-keys DIR --tags N --waves N] [--device-tags TAG,...]
//! factory-sim add-user --state DIR --factory NAME --token TOKEN --polis-id ID [--name NAME]
//! factory-sim serve --state DIR [--listen 127.0.0.1:0] [--faults rate=0.2,kinds=500|reset|delay|truncate,seed=N]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use factory_sim::{FaultConfig, InitOptions, SimConfig};
use shared::metadata::Timestamp;

/// A Foundries-API-compatible factory server for tests, demos and benchmarks.
#[derive(Parser, Debug)]
#[command(name = "factory-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a factory (keys, root v1, CI targets, optional production tags and waves).
    Init(InitArgs),
    /// Add another user (API token) to an existing factory; run it while no server runs.
    AddUser(AddUserArgs),
    /// Serve the factory API; prints the base URL as the first line of stdout.
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
struct InitArgs {
    /// State directory (created if missing; may hold several factories).
    #[arg(long)]
    state: PathBuf,
    /// Factory name.
    #[arg(long)]
    factory: String,
    /// API token of the first user (clients send it as OSF-TOKEN).
    #[arg(long, env = "FACTORY_SIM_TOKEN")]
    token: String,
    /// Seed: the same seed and factory name give the same keys and targets.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of production tags. Tags exist only on a factory that went offline: needs
    /// --offline-keys (they are signed by the online and the offline targets key).
    #[arg(long, default_value_t = 0)]
    tags: usize,
    /// Number of CI builds.
    #[arg(long, default_value_t = 3)]
    targets: u64,
    /// Number of active waves (one per tag; needs --tags >= N and --targets >= 2).
    #[arg(long, default_value_t = 0)]
    waves: usize,
    /// Hardware ids per build (one target each).
    #[arg(long, default_value_t = 2)]
    hardware_ids: usize,
    /// Docker apps per target (scales the size of each target's custom data).
    #[arg(long, default_value_t = 2)]
    apps: usize,
    /// How many of the latest builds each production tag holds.
    #[arg(long, default_value_t = 5)]
    prod_window: u64,
    /// How many of the newest CI builds are not in production yet (wave candidates).
    #[arg(long, default_value_t = 0)]
    prod_behind: u64,
    /// polis-id of the first user (default: derived from the seed).
    #[arg(long)]
    polis_id: Option<String>,
    /// Display name of the first user.
    #[arg(long, default_value = "Factory Admin")]
    user_name: String,
    /// Creation time, RFC 3339 (default: now); fix it for byte-identical factories.
    #[arg(long)]
    now: Option<String>,
    /// Days until root v1 expires.
    #[arg(long, default_value_t = 365)]
    root_expires_days: i64,
    /// Take the factory offline first, as its admin would with fioctl: the first-time root
    /// rotation (root v2) and the first targets key rotation (root v3); the admin's keys
    /// tarballs (root.keys.tgz, targets.keys.tgz, fioctl's layout) are written into DIR.
    #[arg(long, value_name = "DIR")]
    offline_keys: Option<PathBuf>,
    /// Legacy state for tests: production tags and waves signed by the online targets key
    /// alone on a factory that never went offline (the real Factory does not produce it).
    #[arg(long, conflicts_with = "offline_keys")]
    legacy_online_only_tags: bool,
    /// Production tags that devices follow (comma-separated): four devices per tag, in
    /// device groups east and west, for wave rollouts.
    #[arg(long, value_delimiter = ',', value_name = "TAGS")]
    device_tags: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct AddUserArgs {
    /// State directory.
    #[arg(long)]
    state: PathBuf,
    /// Factory name.
    #[arg(long)]
    factory: String,
    /// API token of the new user.
    #[arg(long)]
    token: String,
    /// polis-id of the new user.
    #[arg(long)]
    polis_id: String,
    /// Display name.
    #[arg(long, default_value = "Second Admin")]
    name: String,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// State directory made by `factory-sim init`.
    #[arg(long)]
    state: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Fault injection, e.g. rate=0.2,kinds=500|reset|delay|truncate,seed=7. Kinds: 500, reset,
    /// reset-after, delay, truncate, apply-interrupt; optional delay-ms=N and match=PATH-SUBSTRING.
    #[arg(long)]
    faults: Option<FaultConfig>,
    /// Do not log requests to stderr.
    #[arg(long)]
    quiet: bool,
}

fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Command::Init(a) => init(a),
        Command::AddUser(a) => add_user(a),
        Command::Serve(a) => serve(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("factory-sim: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn add_user(a: AddUserArgs) -> Result<()> {
    factory_sim::add_user(&a.state, &a.factory, &a.token, &a.name, &a.polis_id)
        .with_context(|| format!("adding a user to factory {}", a.factory))?;
    println!("added user {} to factory {}", a.polis_id, a.factory);
    Ok(())
}

fn init(a: InitArgs) -> Result<()> {
    let mut opts = InitOptions::new(&a.state, &a.factory, &a.token);
    opts.seed = a.seed;
    opts.tags = a.tags;
    opts.targets = a.targets;
    opts.waves = a.waves;
    opts.hardware_ids = a.hardware_ids;
    opts.apps = a.apps;
    opts.prod_window = a.prod_window;
    opts.prod_behind = a.prod_behind;
    opts.polis_id = a.polis_id;
    opts.user_name = a.user_name;
    opts.root_expires_days = a.root_expires_days;
    opts.offline_keys = a.offline_keys;
    opts.legacy_online_only_tags = a.legacy_online_only_tags;
    opts.device_tags = a.device_tags.clone();
    opts.now = a
        .now
        .map(|s| Timestamp::parse(&s))
        .transpose()
        .context("--now must be RFC 3339, e.g. 2026-01-01T00:00:00Z")?;
    let r = factory_sim::init_factory(&opts)
        .with_context(|| format!("creating factory {}", a.factory))?;
    println!("factory:        {}", r.factory);
    println!("polis-id:       {}", r.polis_id);
    println!(
        "root key:       {} (initial{})",
        r.root_keyid,
        if r.offline.is_some() {
            ", rotated out: the factory went offline"
        } else {
            ", online"
        }
    );
    println!("online targets: {}", r.online_keys.targets);
    println!(
        "CI builds:      {} ({} bytes of targets)",
        r.builds, r.ci_targets_bytes
    );
    if let Some(h) = &r.offline {
        println!(
            "offline:        root v3; root key {} in {}, targets key {} in {}",
            h.root_keyid,
            h.root_keys.display(),
            h.targets_keyid,
            h.targets_keys.display()
        );
    }
    println!("tags:           {}", r.tags.join(", "));
    println!("waves:          {}", r.waves.join(", "));
    Ok(())
}

fn serve(a: ServeArgs) -> Result<()> {
    let cfg = SimConfig {
        state_dir: a.state.clone(),
        listen: a.listen,
        faults: a.faults,
        log: !a.quiet,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("listening on {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        // Load before announcing the URL, so a bad state directory fails first.
        let serving = factory_sim::serve(&cfg, listener, shutdown_signal())?;
        {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            writeln!(out, "http://{addr}")?;
            out.flush()?;
        }
        eprintln!(
            "factory-sim: serving {} on http://{addr} (Ctrl-C to stop)",
            cfg.state_dir.display()
        );
        serving.await;
        eprintln!("factory-sim: stopped");
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let int = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = int.await;
                    return;
                }
            };
        tokio::select! {
            _ = int => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = int.await;
    }
}
