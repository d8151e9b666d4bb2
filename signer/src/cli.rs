//! The command line of `signer` (clap derive; each `///` comment is the help text).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
pub use shared::cli::OfflineRole;

use shared::keys::{KeyId, KeyType};
use shared::metadata::Role;

use crate::error::EXIT_CODES_HELP;

/// The offline half of the offline TUF toolkit, for the air-gapped machine.
///
/// It reads a request bundle written by the courier, checks it against the trusted root
/// pinned on this machine and against what was requested, shows what would change, and
/// then creates keys and signs. The response bundle goes back to the courier. This program
/// never uses the network.
///
/// First use: `signer identity init`, then `signer trust init ROOT.json`. For every
/// bundle: `signer inspect BUNDLE`, then the operation it asks for, e.g.
/// `signer rotate-offline-key --role root --keys root.keys.tgz BUNDLE -o response.tufbundle`.
#[derive(Debug, Parser)]
#[command(name = "signer", version, after_help = EXIT_CODES_HELP, max_term_width = 100)]
pub struct Cli {
    /// The signer state directory (trust pins, identity, audit log).
    /// Default: $XDG_DATA_HOME/offline-tuf-signer or ~/.local/share/offline-tuf-signer.
    #[arg(long, global = true, env = "SIGNER_HOME", value_name = "DIR")]
    pub state: Option<PathBuf>,

    /// Answer "yes" to confirmations. Without it, commands that create keys or sign ask on
    /// the terminal, and refuse when there is no terminal. (No short form: `-y` is fioctl's
    /// `--key-type`, and means that here too.)
    #[arg(long, global = true)]
    pub yes: bool,

    /// How a signature over a root draft is confirmed on the terminal: `yes` (type yes) or
    /// `digest` (type the first 8 characters of the draft's SHA-256 digest shown on screen,
    /// so the person must read what they sign). `--yes` still skips the question. Set it once
    /// for a machine with the environment variable.
    #[arg(
        long,
        global = true,
        env = "SIGNER_ROOT_CONFIRMATION",
        value_enum,
        default_value = "yes",
        value_name = "HOW"
    )]
    pub root_confirmation: RootConfirmation,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How root signatures are confirmed (`--root-confirmation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum RootConfirmation {
    /// Type `yes`.
    #[default]
    Yes,
    /// Type the first 8 characters of the draft's digest.
    Digest,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a bundle before signing it: fingerprint, transaction, requested operations, a
    /// diff of every staged root, key changes, targets to be signed, warnings and
    /// recommendations. Exits with status 3 if the bundle must not be signed as it is.
    Inspect(InspectArgs),

    /// The missing-signature checklist of a bundle: for the CI and production root drafts,
    /// every production tag and every wave, the signatures present, the threshold, and for
    /// each missing one the keyid and who holds it (keys file from this machine's audit log
    /// or --keys, owner and date from the root's `x-key-owners`). Exits with status 4 while
    /// signatures are missing.
    Status(crate::status::StatusArgs),

    /// The trusted root pinned on this machine.
    #[command(subcommand)]
    Trust(TrustCommand),

    /// Rotate (replace) an offline key: the root key, or the offline targets key.
    ///
    /// Root: `--first-time` takes the factory's initial root key out of the bundle
    /// (decrypted with this signer's identity), creates the keys file (it must not exist)
    /// with it and a new offline root key, and signs the new root with both. Later
    /// rotations add a new root key to the keys file and sign with the old and new keys.
    /// The root expiry becomes one year from now.
    ///
    /// Targets: a new offline targets key is created in --targets-keys (or in --keys if
    /// not given); with --keys the new roots are signed by the root key. Production and
    /// wave targets signed by the old offline targets key are re-signed with the new one
    /// (on the first targets rotation: all production targets).
    RotateOfflineKey(RotateArgs),

    /// Expert: add a new offline key to a role, in a keys file that holds no active key
    /// of that role. Targets: also signs the production and wave targets with it.
    AddOfflineKey(AddKeyArgs),

    /// Expert: remove an offline key from a role (the keys file is not changed).
    /// Production targets signatures by a removed targets key are dropped by the server;
    /// sign them again with another offline targets key if needed.
    DeleteOfflineKey(DeleteKeyArgs),

    /// Expert: set the signature threshold of the root role (both roots) or of the
    /// production targets role (at least 2).
    SetThreshold(ThresholdArgs),

    /// Expert: accept the new online keys the server generated for these roles (`courier
    /// updates rotate-online-key`) and sign the new roots with the root keys. Exactly the
    /// current online key of each role must be replaced by the staged one.
    RotateOnlineKey(RotateOnlineArgs),

    /// Sign the staged roots with the root keys the keys files hold: the key(s) of the
    /// staged root and the key of the current root (as the chain requires). Keeps other
    /// signatures (several admins can sign one after another).
    Sign(SignArgs),

    /// Sign production targets (all tags, or --tags) with the offline targets key.
    SignProdTargets(SignTargetsArgs),

    /// Sign one wave's targets with the offline targets key.
    SignWave(SignWaveArgs),

    /// Merge two responses to the same request (signatures made on different machines).
    Combine(CombineArgs),

    /// The signer's identities: the age identity (receives the initial root key on the first
    /// rotation) and the signing identity (signs the steps this signer adds to responses).
    #[command(subcommand)]
    Identity(crate::identity::IdentityCommand),

    /// The other key holders' signing identities pinned on this laptop: steps they signed
    /// are believed for the changes they say they authorized.
    #[command(subcommand)]
    Cosigner(crate::cosigner::CosignerCommand),

    /// Offline keys files: list, back up, export, print and restore keys; encrypt or decrypt
    /// a keys file at rest.
    #[command(subcommand)]
    Keys(crate::keys::KeysCommand),

    /// The append-only audit log of keys created and signatures made on this machine.
    #[command(subcommand)]
    Audit(crate::audit::AuditCommand),

    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(shared::cli::CompletionsArgs),

    /// Print the man page, or write one page per command into a directory.
    Man(shared::cli::ManArgs),
}

/// `signer trust …`.
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Pin ROOT.json as the trust anchor, after showing its fingerprint and asking for
    /// confirmation. Compare the fingerprint with the one the courier printed.
    Init(TrustInitArgs),
    /// Show the pinned roots.
    Show(TrustShowArgs),
}

/// Options of `signer trust show`.
#[derive(Debug, Clone, Default, Args)]
pub struct TrustShowArgs {
    /// Print JSON for scripts: per pin the factory, file, `pinned-at`, version, expiry, root
    /// and targets key ids with thresholds, and the fingerprint.
    #[arg(long)]
    pub json: bool,
}

/// Options of `signer trust init`.
#[derive(Debug, Clone, Args)]
pub struct TrustInitArgs {
    /// A complete signed root.json of the factory (e.g. `fioctl keys tuf show-root` output
    /// or `chain/1.root.json` of a bundle).
    #[arg(value_name = "ROOT.json")]
    pub root: PathBuf,
    /// Pin it for this factory only (default: for every factory without its own pin).
    #[arg(long, value_name = "NAME")]
    pub factory: Option<String>,
    /// Accept a root that has already expired.
    #[arg(long)]
    pub allow_expired: bool,
}

/// Options shared by every command that reads a bundle and may sign.
#[derive(Debug, Clone, Default, Args)]
pub struct CheckArgs {
    /// Accept expired roots (pinned or current).
    #[arg(long)]
    pub allow_expired: bool,
    /// Perform the operation even though the bundle does not request it (after it is shown
    /// and confirmed). Authority for every change still comes from this command, a pinned
    /// cosigner or your typed confirmation.
    #[arg(long)]
    pub allow_unrequested: bool,
}

/// Options of `signer inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The bundle (request or response).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Machine-readable JSON output.
    #[arg(long)]
    pub json: bool,
    /// Also check which keys this root key source holds (a keys tarball or a PKCS#11 URI).
    #[arg(long, value_name = "SOURCE")]
    pub keys: Option<crate::keysource::KeySource>,
    /// Also check which keys this targets key source holds (a keys tarball or a PKCS#11 URI).
    #[arg(long, value_name = "SOURCE")]
    pub targets_keys: Option<crate::keysource::KeySource>,
    /// Passphrase of encrypted keys files.
    #[command(flatten)]
    pub passphrase: crate::keystore::PassphraseArgs,
    /// PIN of PKCS#11 tokens.
    #[command(flatten)]
    pub pin: crate::keysource::PinArgs,
    /// Treat expired roots as warnings instead of reasons not to sign.
    #[arg(long)]
    pub allow_expired: bool,
}

/// The key algorithm of generated keys. fioctl's spellings (`ED25519`, `RSA`, any case) are
/// accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum KeyTypeArg {
    /// Ed25519 (recommended; the default here and in fioctl).
    #[default]
    Ed25519,
    /// RSA 4096 (slow; only for compatibility; fioctl's `RSA`).
    Rsa,
}

impl From<KeyTypeArg> for KeyType {
    fn from(k: KeyTypeArg) -> KeyType {
        match k {
            KeyTypeArg::Ed25519 => KeyType::Ed25519,
            KeyTypeArg::Rsa => KeyType::Rsa,
        }
    }
}

/// The bundle in, the response out.
#[derive(Debug, Clone, Args)]
pub struct BundleIo {
    /// The request bundle (or a response from an earlier signer step).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Where to write the response bundle.
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    pub out: PathBuf,
}

/// Options of `signer rotate-offline-key`.
#[derive(Debug, Clone, Args)]
pub struct RotateArgs {
    /// Which offline key to rotate.
    #[arg(long, short = 'r', value_enum, ignore_case = true)]
    pub role: OfflineRole,
    /// The first rotation of the factory's initial (Foundries-held) root key: creates the
    /// keys file, which must not exist yet.
    #[arg(long)]
    pub first_time: bool,
    /// `--role targets` only: the offline targets key being replaced is lost (its keys file
    /// is gone); KEYID is its key id as the root lists it. The new key goes into
    /// --targets-keys (a new file is fine), the root key holder's --keys signs the roots
    /// (required: removing a key nobody can show is the root key holder's decision), and the
    /// production and wave targets the lost key signed are re-signed by the new key.
    #[arg(long, value_name = "KEYID")]
    pub lost_key: Option<KeyId>,
    /// Key sources (tarballs or PKCS#11 tokens), passphrase and PIN.
    #[command(flatten)]
    pub src: crate::keysource::KeyArgs,
    /// Algorithm of the new key: ed25519 or rsa (RSA-4096), any case as in fioctl. Default
    /// ed25519 here, as in fioctl (`ED25519`).
    #[arg(long, short = 'y', value_enum, ignore_case = true, default_value_t)]
    pub key_type: KeyTypeArg,
    /// Bundle in and out.
    #[command(flatten)]
    pub io: BundleIo,
    /// Safety overrides.
    #[command(flatten)]
    pub check: CheckArgs,
}

/// Options of `signer add-offline-key`.
#[derive(Debug, Clone, Args)]
pub struct AddKeyArgs {
    /// The role that gets a new key.
    #[arg(long, short = 'r', value_enum, ignore_case = true)]
    pub role: OfflineRole,
    /// Key sources (tarballs or PKCS#11 tokens), passphrase and PIN.
    #[command(flatten)]
    pub src: crate::keysource::KeyArgs,
    /// Algorithm of the new key: ed25519 or rsa (RSA-4096), any case as in fioctl. Default
    /// ed25519 here, as in fioctl (`ED25519`).
    #[arg(long, short = 'y', value_enum, ignore_case = true, default_value_t)]
    pub key_type: KeyTypeArg,
    /// Bundle in and out.
    #[command(flatten)]
    pub io: BundleIo,
    /// Safety overrides.
    #[command(flatten)]
    pub check: CheckArgs,
}

/// Options of `signer delete-offline-key`.
#[derive(Debug, Clone, Args)]
pub struct DeleteKeyArgs {
    /// The role to remove the key from.
    #[arg(long, short = 'r', value_enum, ignore_case = true)]
    pub role: OfflineRole,
    /// The key id to remove (64 hex digits). fioctl's spelling `--key-id` works too.
    #[arg(long, visible_alias = "key-id", value_name = "KEYID")]
    pub keyid: KeyId,
    /// Key sources (tarballs or PKCS#11 tokens), passphrase and PIN.
    #[command(flatten)]
    pub src: crate::keysource::KeyArgs,
    /// Bundle in and out.
    #[command(flatten)]
    pub io: BundleIo,
    /// Safety overrides.
    #[command(flatten)]
    pub check: CheckArgs,
}

/// Options of `signer set-threshold`.
#[derive(Debug, Clone, Args)]
pub struct ThresholdArgs {
    /// The role whose threshold changes.
    #[arg(long, short = 'r', value_enum, ignore_case = true)]
    pub role: OfflineRole,
    /// The new threshold (root: at least 1; production targets: at least 2; at most the
    /// number of keys of the role).
    #[arg(value_name = "N")]
    pub threshold: u64,
    /// Key sources (tarballs or PKCS#11 tokens), passphrase and PIN.
    #[command(flatten)]
    pub src: crate::keysource::KeyArgs,
    /// Bundle in and out.
    #[command(flatten)]
    pub io: BundleIo,
    /// Safety overrides.
    #[command(flatten)]
    pub check: CheckArgs,
}

/// An online role (`rotate-online-key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnlineRoleArg {
    /// The online targets key (signs CI targets).
    Targets,
    /// The snapshot key.
    Snapshot,
    /// The timestamp key.
    Timestamp,
}

impl From<OnlineRoleArg> for Role {
    fn from(r: OnlineRoleArg) -> Role {
        match r {
            OnlineRoleArg::Targets => Role::Targets,
            OnlineRoleArg::Snapshot => Role::Snapshot,
            OnlineRoleArg::Timestamp => Role::Timestamp,
        }
    }
}

/// Options of `signer rotate-online-key`.
#[derive(Debug, Clone, Args)]
pub struct RotateOnlineArgs {
    /// The roles whose online key the server replaced (comma separated or repeated).
    #[arg(
        long = "role",
        short = 'r',
        value_enum,
        value_delimiter = ',',
        required = true
    )]
    pub roles: Vec<OnlineRoleArg>,
    /// Key sources (root keys with --keys), passphrase and PIN.
    #[command(flatten)]
    pub src: crate::keysource::KeyArgs,
    /// Bundle in and out.
    #[command(flatten)]
    pub io: BundleIo,
    /// Safety overrides.
    #[command(flatten)]
    pub check: CheckArgs,
}

/// Options of `signer sign`.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// Key sources (tarballs or PKCS#11 tokens), passphrase and PIN.
    #[command(flatten)]
    pub src: crate::keysource::KeyArgs,
    /// Bundle in and out.
    #[command(flatten)]
    pub io: BundleIo,
    /// Safety overrides.
    #[command(flatten)]
    pub check: CheckArgs,
}

/// Options of `signer sign-prod-targets`.
#[derive(Debug, Clone, Args)]
pub struct SignTargetsArgs {
    /// Only these tags (comma separated or repeated); default: every tag in the bundle.
    #[arg(long, value_delimiter = ',', value_name = "TAG")]
    pub tags: Vec<String>,
    /// Key sources (tarballs or PKCS#11 tokens), passphrase and PIN.
    #[command(flatten)]
    pub src: crate::keysource::KeyArgs,
    /// Bundle in and out.
    #[command(flatten)]
    pub io: BundleIo,
    /// Safety overrides.
    #[command(flatten)]
    pub check: CheckArgs,
}

/// Options of `signer sign-wave`.
#[derive(Debug, Clone, Args)]
pub struct SignWaveArgs {
    /// The wave name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Key sources (tarballs or PKCS#11 tokens), passphrase and PIN.
    #[command(flatten)]
    pub src: crate::keysource::KeyArgs,
    /// Bundle in and out.
    #[command(flatten)]
    pub io: BundleIo,
    /// Safety overrides.
    #[command(flatten)]
    pub check: CheckArgs,
}

/// Options of `signer combine`.
#[derive(Debug, Clone, Args)]
pub struct CombineArgs {
    /// First response.
    #[arg(value_name = "A")]
    pub a: PathBuf,
    /// Second response to the same request.
    #[arg(value_name = "B")]
    pub b: PathBuf,
    /// Where to write the combined response.
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    pub out: PathBuf,
    /// Accept expired roots.
    #[arg(long)]
    pub allow_expired: bool,
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
    fn fioctl_like_flags_parse() {
        let cli = Cli::try_parse_from([
            "signer",
            "rotate-offline-key",
            "--role",
            "root",
            "--first-time",
            "--keys",
            "root.keys.tgz",
            "req.tufbundle",
            "-o",
            "resp.tufbundle",
            "--yes",
        ])
        .unwrap();
        assert!(cli.yes);
        let Command::RotateOfflineKey(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.role, OfflineRole::Root);
        assert!(a.first_time);
        assert_eq!(a.io.out, PathBuf::from("resp.tufbundle"));

        let cli = Cli::try_parse_from([
            "signer",
            "sign-prod-targets",
            "--tags",
            "main,beta",
            "--targets-keys",
            "t.tgz",
            "b",
            "-o",
            "c",
        ])
        .unwrap();
        let Command::SignProdTargets(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.tags, vec!["main", "beta"]);

        assert!(Cli::try_parse_from([
            "signer",
            "delete-offline-key",
            "--role",
            "root",
            "--keyid",
            "nothex",
            "b",
            "-o",
            "c"
        ])
        .is_err());
    }
}
