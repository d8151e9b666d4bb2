//! The command line. Every `///` comment here is the help text people read.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::EXIT_CODES_HELP;

/// The `--help` text of the courier (kept verbatim: the example lines must not be reflowed).
pub const LONG_ABOUT: &str = "\
The courier: the online half of the offline TUF key workflow.

It talks to the Foundries.io API for your factory and carries transfer bundles to and
from the air-gapped `signer`. It never holds an offline private key and signs nothing.

A typical first-time rotation:

    offline$ signer identity init                          (prints age1...)
    online$  courier config set-recipient age1...
    online$  courier rotate-offline-key --role root --first-time --bundle req.tufbundle
    offline$ signer rotate-offline-key --role root --first-time --keys root.keys.tgz \\
                 req.tufbundle -o resp.tufbundle
    online$  courier updates push resp.tufbundle --apply

Connection settings are the ones fioctl uses (flags, FIOCTL_* environment variables,
$HOME/.config/fioctl.yaml), so an existing fioctl user needs no new setup.";

/// The courier: the online half of the offline TUF key workflow.
#[derive(Debug, Parser)]
#[command(name = "courier", version, long_about = LONG_ABOUT, after_long_help = EXIT_CODES_HELP, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Connection options, valid for every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options valid for every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Factory name [default: $FIOCTL_FACTORY, then `factory` in the fioctl config].
    #[arg(
        short = 'f',
        long,
        global = true,
        help_heading = "Global options",
        value_name = "NAME"
    )]
    pub factory: Option<String>,

    /// API token [default: $FIOCTL_TOKEN, then `token` in the fioctl config]. Prefer the
    /// environment or the config file: a flag is visible to other users of this machine.
    #[arg(
        short = 't',
        long,
        global = true,
        help_heading = "Global options",
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// API base URL [default: `server.url` in the fioctl config, then https://api.foundries.io].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "URL"
    )]
    pub api_url: Option<String>,

    /// fioctl config file [default: $FIOCTL_CONFIG, then $HOME/.config/fioctl.yaml].
    #[arg(
        short = 'c',
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Log every HTTP request and response status on stderr (the token is never shown).
    #[arg(short = 'v', long, global = true, help_heading = "Global options", action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Timeout of one HTTP request, in seconds.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "SECS",
        default_value_t = 60
    )]
    pub timeout: u64,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the factory's TUF root metadata (like `fioctl keys tuf show-root`).
    ShowRoot(ShowRootArgs),

    /// Start a transaction to rotate an offline key and write the request bundle for the signer.
    ///
    /// This is the online half of `fioctl keys tuf rotate-offline-key`: it starts a root
    /// updates transaction (with the default changelog fioctl uses) and writes a request
    /// bundle with everything the signer needs. With --first-time, the initial online root
    /// key the server hands out is encrypted to the signer's age recipient in memory (set it
    /// with `courier config set-recipient`) and travels only inside the bundle.
    ///
    /// Then: sign the bundle offline (`signer rotate-offline-key ...`) and bring the response
    /// back with `courier updates push RESPONSE --apply`.
    RotateOfflineKey(RotateOfflineKeyArgs),

    /// Expert mode: work with the factory's root updates transaction step by step.
    #[command(subcommand)]
    Updates(UpdatesCommand),

    /// Production targets: request bundles for signing them.
    #[command(subcommand)]
    ProdTargets(ProdTargetsCommand),

    /// Waves: build or fetch wave targets for offline signing, create or sign the wave, roll
    /// it out, complete or cancel it, list waves.
    #[command(subcommand)]
    Waves(WavesCommand),

    /// Expiry radar: days left for the CI and production roots, production targets per tag
    /// and wave targets; warnings at --warn, exit status 6 within --critical (for cron);
    /// --ics FILE writes calendar reminders for the renewing ceremonies.
    Expiry(crate::expiry::ExpiryArgs),

    /// The courier's own settings (the signer's age recipient).
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(shared::cli::CompletionsArgs),

    /// Print the man page (or write one page per command into a directory).
    Man(shared::cli::ManArgs),
}

/// `courier show-root`.
#[derive(Debug, Args)]
pub struct ShowRootArgs {
    /// Show the production root instead of the CI root.
    #[arg(long)]
    pub prod: bool,

    /// Show this historical version instead of the current one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub version: Option<u64>,

    /// Print only the root's fingerprint (SHA-256 of its canonical `signed` part, in groups of
    /// four hex digits), to compare with what `signer trust init` shows.
    #[arg(long)]
    pub fingerprint: bool,
}

/// The offline roles whose keys can be rotated (shared with the signer).
pub use shared::cli::OfflineRole;

/// `courier rotate-offline-key`.
#[derive(Debug, Args)]
pub struct RotateOfflineKeyArgs {
    /// The role whose offline key is rotated.
    #[arg(short = 'r', long, value_enum, ignore_case = true)]
    pub role: OfflineRole,

    /// The first rotation of the factory's initial online root key (root role only).
    #[arg(long)]
    pub first_time: bool,

    /// Where to write the request bundle (must not exist).
    #[arg(short = 'b', long, value_name = "FILE")]
    pub bundle: PathBuf,

    /// Changelog message [default: "Rotate TUF root offline signing key" or "Rotate TUF targets offline signing key"].
    #[arg(short = 'm', long = "changelog", value_name = "MSG")]
    pub message: Option<String>,
}

/// `courier updates ...`.
#[derive(Debug, Subcommand)]
pub enum UpdatesCommand {
    /// Start a new root updates transaction.
    ///
    /// Prints the transaction id; keep it secret and share it only with participants of the
    /// transaction. With --first-time the initial online root key is encrypted to the signer's
    /// recipient and kept (encrypted) until the next `courier updates pull`.
    Init(InitArgs),

    /// Show the state of the transaction: status, staged versions, online keys, signatures.
    Status(JsonArg),

    /// Review the staged changes: the server's amendments, errors and warnings, plus local
    /// recommendations (like `fioctl keys tuf updates review`).
    Review(ReviewArgs),

    /// Write a request bundle for the open transaction, for the signer.
    Pull(PullArgs),

    /// Upload a signed response bundle (after checking it carefully), optionally apply it.
    ///
    /// Before anything is uploaded: the response must answer a request this courier wrote,
    /// for this factory and transaction; every signature must verify; and the transaction on
    /// the server must still be the one the request was made for. Otherwise nothing is
    /// uploaded ("stale bundle", exit code 5).
    Push(PushArgs),

    /// Apply the staged root updates.
    Apply(TxidArg),

    /// Cancel the staged root updates.
    Cancel(CancelArgs),

    /// Stage new server-held online keys (targets, snapshot, timestamp).
    ///
    /// Not allowed while a wave is active; new waves cannot be created until the change is
    /// applied. The server stages the new root; pull a request bundle afterwards to have it
    /// signed by the root key.
    RotateOnlineKey(RotateOnlineKeyArgs),
}

/// A `--json` switch.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A `--txid` option.
#[derive(Debug, Args)]
pub struct TxidArg {
    /// Transaction id [default: the one this courier started, if any; the initiator may omit it].
    #[arg(short = 'x', long, value_name = "TXID")]
    pub txid: Option<String>,
}

/// `courier updates cancel`: no options (like fioctl's, a cancel needs no transaction id).
#[derive(Debug, Args)]
pub struct CancelArgs {}

/// `courier updates init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Reason for the change, saved in the root's changelog.
    #[arg(
        short = 'm',
        long = "changelog",
        value_name = "MSG",
        default_value = "Update TUF root keys"
    )]
    pub message: String,

    /// The first rotation of the factory's initial online root key.
    #[arg(long)]
    pub first_time: bool,
}

/// `courier updates review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Print JSON for scripts instead of text.
    #[arg(long, conflicts_with_all = ["raw", "diff"])]
    pub json: bool,

    /// Print the staged root.json.
    #[arg(long, conflicts_with = "diff")]
    pub raw: bool,

    /// Print the line diff between the current and the staged root.json.
    #[arg(long)]
    pub diff: bool,

    /// With --raw or --diff: the production root instead of the CI root.
    #[arg(long)]
    pub prod: bool,
}

/// Operations a request bundle can ask the signer for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum OpArg {
    /// First rotation of the initial online root key (needs a first-time transaction).
    FirstTimeRootRotation,
    /// Rotate the offline root key.
    RotateRoot,
    /// Rotate the offline targets key (and re-sign production and wave targets).
    RotateTargets,
    /// Add an offline root key.
    AddRootKey,
    /// Add an offline targets key (it signs the production and active wave targets too).
    AddTargetsKey,
    /// Delete an offline root key (give --keyid).
    DeleteRootKey,
    /// Delete an offline targets key (give --keyid).
    DeleteTargetsKey,
    /// Set the root threshold (give --threshold).
    SetRootThreshold,
    /// Set the production targets threshold (give --threshold).
    SetTargetsThreshold,
    /// Sign the staged roots as they are.
    SignRoot,
    /// Sign production targets (and wave targets) with the offline targets key.
    SignProdTargets,
}

/// `courier updates pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Where to write the request bundle (must not exist).
    #[arg(short = 'b', long, value_name = "FILE")]
    pub bundle: PathBuf,

    /// Operations to ask the signer for (comma-separated or repeated) [default: sign-root, or
    /// first-time-root-rotation in a first-time transaction started by this courier].
    #[arg(long = "op", value_enum, value_delimiter = ',', value_name = "OP")]
    pub ops: Vec<OpArg>,

    /// Key id for delete-root-key / delete-targets-key (fioctl's `-i/--key-id` works too).
    #[arg(long, short = 'i', visible_alias = "key-id", value_name = "KEYID")]
    pub keyid: Option<String>,

    /// Threshold for set-root-threshold / set-targets-threshold.
    #[arg(long, value_name = "N")]
    pub threshold: Option<u64>,

    /// Production tags to include for signing [default: all tags].
    #[arg(long, value_delimiter = ',', value_name = "TAGS")]
    pub tags: Vec<String>,

    /// Waves to include for signing [default: all active waves].
    #[arg(long, value_delimiter = ',', value_name = "WAVES")]
    pub waves: Vec<String>,

    /// Transaction id, written into the bundle and sent with the upload [default: the one this
    /// courier started, if any; only the initiator may omit it].
    #[arg(short = 'x', long, value_name = "TXID")]
    pub txid: Option<String>,
}

/// `courier updates push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The response bundle written by the signer.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Apply the transaction right after the upload, then read the new root back.
    #[arg(long)]
    pub apply: bool,

    /// Upload even if some documents do not have enough signatures yet (so that another
    /// admin can continue from the server's staged roots). Not with --apply.
    #[arg(long, conflicts_with = "apply")]
    pub allow_partial: bool,
}

/// The online roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum OnlineRole {
    /// The online targets key (signs CI targets).
    Targets,
    /// The snapshot key.
    Snapshot,
    /// The timestamp key.
    Timestamp,
}

impl OnlineRole {
    /// The lower-case API name.
    pub fn as_str(self) -> &'static str {
        match self {
            OnlineRole::Targets => "targets",
            OnlineRole::Snapshot => "snapshot",
            OnlineRole::Timestamp => "timestamp",
        }
    }
}

/// Key types the server can generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyTypeArg {
    /// Ed25519 (recommended).
    Ed25519,
    /// RSA 4096.
    Rsa,
}

impl KeyTypeArg {
    /// fioctl's upper-case name sent to the API.
    pub fn api_name(self) -> &'static str {
        match self {
            KeyTypeArg::Ed25519 => "ED25519",
            KeyTypeArg::Rsa => "RSA",
        }
    }
}

/// `courier updates rotate-online-key`.
#[derive(Debug, Args)]
pub struct RotateOnlineKeyArgs {
    /// Roles whose online key is replaced (comma-separated).
    #[arg(
        short = 'r',
        long = "role",
        value_enum,
        value_delimiter = ',',
        required = true,
        ignore_case = true
    )]
    pub roles: Vec<OnlineRole>,

    /// Key type of the new online keys, any letter case (fioctl's `ED25519`, `Ed25519` and
    /// `RSA` work). The default, ed25519, is fioctl's default (Ed25519) too.
    #[arg(
        short = 'y',
        long,
        value_enum,
        ignore_case = true,
        default_value = "ed25519"
    )]
    pub key_type: KeyTypeArg,

    /// Transaction id [default: the one this courier started, if any].
    #[arg(short = 'x', long, value_name = "TXID")]
    pub txid: Option<String>,
}

/// `courier prod-targets ...`.
#[derive(Debug, Subcommand)]
pub enum ProdTargetsCommand {
    /// Write a request bundle to sign production targets of some tags within the open transaction.
    ///
    /// The new signatures travel in the transaction and take effect when it is applied.
    Pull(ProdTargetsPullArgs),
}

/// `courier prod-targets pull`.
#[derive(Debug, Args)]
pub struct ProdTargetsPullArgs {
    /// Tags whose production targets are signed (comma-separated) [default: all tags].
    #[arg(long, value_delimiter = ',', value_name = "TAGS")]
    pub tags: Vec<String>,

    /// Also sign these waves' targets (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "WAVES")]
    pub waves: Vec<String>,

    /// Transaction id [default: the one this courier started, if any].
    #[arg(short = 'x', long, value_name = "TXID")]
    pub txid: Option<String>,

    /// Where to write the request bundle (must not exist).
    #[arg(short = 'b', long, value_name = "FILE")]
    pub bundle: PathBuf,
}

/// `courier waves ...`.
#[derive(Debug, Subcommand)]
pub enum WavesCommand {
    /// Build the targets of a new wave (exactly as `fioctl waves init` does) and write them,
    /// unsigned, into a request bundle for the signer.
    ///
    /// The wave targets are the tag's current production targets plus the CI targets of
    /// VERSION (with their tags replaced by TAG). Sign the bundle offline, then create the
    /// wave with `courier waves push RESPONSE`.
    Init(WavesInitArgs),

    /// Write a request bundle to sign an existing wave's targets with one more offline
    /// targets key (the online half of `fioctl waves sign`).
    ///
    /// Needed when the production root requires more signatures than the wave has (a
    /// production targets threshold above 2): a wave cannot be rolled out or completed
    /// before. Sign the bundle offline with an offline targets key that has not signed the
    /// wave yet (`signer sign-wave NAME --targets-keys FILE`), then push the response with
    /// `courier waves push RESPONSE`.
    Sign(WavesSignArgs),

    /// Push a signed wave response: creates the wave (a `waves init` request) or adds the
    /// new signatures to the existing wave (a `waves sign` request).
    ///
    /// Works from any online machine: the signatures are verified against the factory's
    /// current root, and the wave targets against the factory's data now (a new wave's
    /// targets must be what `waves init` builds from the current production and CI targets;
    /// an existing wave's must be the ones it serves).
    Push(WavesPushArgs),

    /// Roll a wave out to a subset of production devices of its tag (fioctl `waves
    /// rollout`). At least one of --group, --limit and --uuids is required; to roll out to
    /// every device of the tag, complete the wave.
    Rollout(WavesRolloutArgs),

    /// List the factory's waves.
    List(WavesListArgs),

    /// Complete a wave (fioctl `waves complete`): its targets become the production targets
    /// of its tag, for every device of that tag.
    Complete(WaveNameArg),

    /// Cancel a wave (fioctl `waves cancel`): it is no longer offered to devices.
    Cancel(WaveNameArg),
}

/// `courier waves sign`.
#[derive(Debug, Args)]
pub struct WavesSignArgs {
    /// The wave's name.
    pub name: String,

    /// Where to write the request bundle (must not exist).
    #[arg(short = 'b', long, value_name = "FILE")]
    pub bundle: PathBuf,
}

/// `courier waves rollout`.
#[derive(Debug, Args)]
pub struct WavesRolloutArgs {
    /// The wave's name.
    pub name: String,

    /// The device group (fioctl's older positional form; same as --group).
    #[arg(value_name = "GROUP", conflicts_with = "group")]
    pub group_arg: Option<String>,

    /// Roll out to the devices of this device group.
    #[arg(short = 'g', long, value_name = "GROUP")]
    pub group: Option<String>,

    /// How many devices: a number (e.g. 10) or a percentage of the matching devices (e.g.
    /// 10%). The server picks the devices; at most 10000.
    #[arg(short = 'l', long, value_name = "N|N%")]
    pub limit: Option<String>,

    /// Exact device UUIDs (separated by commas, semicolons, pipes or white space), or
    /// @FILE to read them from a file. At most 10000.
    #[arg(long, value_name = "UUIDS|@FILE")]
    pub uuids: Option<String>,

    /// Only show how many devices it would reach; roll out nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the UUIDs of the devices.
    #[arg(long)]
    pub print_uuids: bool,

    /// Print the names of the devices.
    #[arg(long)]
    pub print_names: bool,
}

/// A wave by name.
#[derive(Debug, Args)]
pub struct WaveNameArg {
    /// The wave's name.
    pub name: String,
}

/// `courier waves init`.
#[derive(Debug, Args)]
pub struct WavesInitArgs {
    /// Name of the new wave.
    pub name: String,

    /// CI target version (build number) to roll out.
    pub version: String,

    /// Production tag the wave is for.
    pub tag: String,

    /// Where to write the request bundle (must not exist). Not needed with --dry-run.
    #[arg(
        short = 'b',
        long,
        value_name = "FILE",
        required_unless_present = "dry_run"
    )]
    pub bundle: Option<PathBuf>,

    /// Expiry of the wave targets in days [default: 365]. The same expiry is used for the
    /// production targets when the wave is complete.
    #[arg(short = 'e', long, value_name = "DAYS")]
    pub expires_days: Option<i64>,

    /// Expiry as an RFC 3339 date and time (e.g. 2030-01-01T00:00:00Z); overrides --expires-days.
    #[arg(short = 'E', long, value_name = "RFC3339")]
    pub expires_at: Option<String>,

    /// Remove old versions from the production targets (comma-separated, e.g. 1,2,3).
    #[arg(long, value_delimiter = ',', value_name = "VERSIONS")]
    pub prune: Vec<String>,

    /// Take only CI targets that carry this tag.
    #[arg(long, value_name = "TAG")]
    pub source_tag: Option<String>,

    /// Print the unsigned wave targets instead of writing a bundle.
    #[arg(short = 'd', long)]
    pub dry_run: bool,
}

/// `courier waves push`.
#[derive(Debug, Args)]
pub struct WavesPushArgs {
    /// The response bundle with the signed wave targets (of a `waves init` or `waves sign`
    /// request).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// `courier waves list`.
#[derive(Debug, Args)]
pub struct WavesListArgs {
    /// Only waves with this status (active, complete, canceled).
    #[arg(short = 'S', long, value_name = "STATUS")]
    pub status: Option<String>,

    /// Only waves for this tag.
    #[arg(short = 'T', long, value_name = "TAG")]
    pub tag: Option<String>,

    /// How many waves to show.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,

    /// Which page of results.
    #[arg(long, default_value_t = 1)]
    pub page: u32,

    /// Print JSON for scripts instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `courier config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Store the signer's age recipient (the `age1...` line `signer identity init` printed).
    SetRecipient(SetRecipientArgs),

    /// Show the settings in effect and where each came from (the token is never shown).
    Show(JsonArg),

    /// Pin an offline signer's signing identity (`signer identity show --signing` on its
    /// laptop; compare the fingerprint out of band). Once any signer is pinned, `updates
    /// push` and `waves push` refuse a response with a step not signed by a pinned signer.
    AddSigner(AddSignerArgs),

    /// Unpin an offline signer.
    RemoveSigner(RemoveSignerArgs),
}

/// `courier config add-signer`.
#[derive(Debug, Args)]
pub struct AddSignerArgs {
    /// A name for the signer (its key holder).
    pub name: String,
    /// Its signing identity, `ed25519:` followed by 64 hex digits.
    pub identity: String,
}

/// `courier config remove-signer`.
#[derive(Debug, Args)]
pub struct RemoveSignerArgs {
    /// The name the signer was pinned under.
    pub name: String,
}

/// `courier config set-recipient`.
#[derive(Debug, Args)]
pub struct SetRecipientArgs {
    /// The age X25519 recipient, `age1...`.
    pub recipient: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_mentions_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes:"));
        assert!(help.contains("stale bundle"));
    }

    #[test]
    fn parses_fioctl_style_flags() {
        let cli = Cli::try_parse_from([
            "courier",
            "-f",
            "acme",
            "rotate-offline-key",
            "--role",
            "Root",
            "--first-time",
            "--bundle",
            "req.tufbundle",
        ])
        .unwrap();
        assert_eq!(cli.global.factory.as_deref(), Some("acme"));
        let Command::RotateOfflineKey(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.role, OfflineRole::Root);
        assert!(a.first_time);

        let cli = Cli::try_parse_from([
            "courier",
            "updates",
            "rotate-online-key",
            "--role",
            "targets,Snapshot",
            "-f",
            "acme",
        ])
        .unwrap();
        let Command::Updates(UpdatesCommand::RotateOnlineKey(a)) = cli.command else {
            panic!()
        };
        assert_eq!(a.roles, vec![OnlineRole::Targets, OnlineRole::Snapshot]);
        assert_eq!(a.key_type, KeyTypeArg::Ed25519);

        let cli = Cli::try_parse_from([
            "courier",
            "updates",
            "pull",
            "-b",
            "x",
            "--op",
            "rotate-root,sign-prod-targets",
        ])
        .unwrap();
        let Command::Updates(UpdatesCommand::Pull(a)) = cli.command else {
            panic!()
        };
        assert_eq!(a.ops, vec![OpArg::RotateRoot, OpArg::SignProdTargets]);

        assert!(Cli::try_parse_from(["courier", "waves", "init", "w", "1", "prod"]).is_err());
        assert!(
            Cli::try_parse_from(["courier", "waves", "init", "w", "1", "prod", "--dry-run"])
                .is_ok()
        );
        assert!(Cli::try_parse_from(["courier", "show-root", "--version", "0"]).is_err());
    }
}
