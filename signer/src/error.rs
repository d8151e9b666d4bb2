//! Errors of the signer, written for the person at the offline machine, and exit codes.
//!
//! Every error says what went wrong and, where there is one, what to do next. Nothing is
//! ever written (keys tarball, response bundle, trust pin) when a command fails before its
//! "act" phase; the messages say so where it matters.
//!
//! One error path: every command returns [`SignerError`]; the errors of a module that has
//! its own (keys files, identities, the audit log, tokens, the `keys` commands) convert into
//! it with `#[from]`, and [`SignerError::exit_code`] asks them whether the command line was
//! at fault ([`SignerError::is_usage`]). `main` prints [`one_line`] and exits with that code.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | error: nothing was signed (bad input, failed verification, refused change, ...) |
//! | 2 | usage error (unknown flag, missing or invalid argument) |
//! | 3 | `inspect`: the bundle must not be signed as it is |
//! | 4 | `status`: signatures are still missing |
//! | 5 | `inspect`: signing the roots needs the operator's typed confirmation of changes nothing authorized (`--yes` refuses them) |

use std::path::PathBuf;

use shared::canonical::CanonicalError;
use shared::fsutil::FsError;
use shared::keys::{KeyError, KeyId};
use shared::metadata::{MetadataError, Role};
use shared::transform::TransformError;
use shared::verify::VerifyError;

/// Exit status of a failed command (nothing signed unless the message says so).
pub const EXIT_ERROR: u8 = 1;

/// Exit status of a usage error (the command line itself is wrong).
pub const EXIT_USAGE: u8 = 2;

/// Exit status of `signer inspect` when the bundle must not be signed.
pub const EXIT_MUST_NOT_SIGN: u8 = 3;

/// Exit status of `signer inspect` when signing the roots needs typed confirmations.
pub const EXIT_NEEDS_CONFIRMATION: u8 = 5;

/// The text of the exit-code table shown at the end of `signer --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  error; nothing was signed and no keys file was changed unless the message says so
  2  usage error (unknown flag, missing or invalid argument)
  3  inspect: the bundle must not be signed as it is
  4  status: signatures are still missing
  5  inspect: signing the roots needs your typed confirmation of changes nothing authorized";

/// Shorthand for results of signer functions.
pub type Result<T, E = SignerError> = std::result::Result<T, E>;

/// Everything that can make a signer command fail.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The command line is incomplete or contradictory.
    #[error("{0}")]
    Usage(String),
    /// The response could not be written after the keys files were saved; `cleanup` says
    /// what was undone (keys files this run created and no response references).
    #[error("{cause}; {cleanup}")]
    ResponseNotWritten {
        /// Why the response could not be written (shown in the message, not as a source, so
        /// that it is said once).
        cause: Box<SignerError>,
        /// What happened to the keys saved before, and what to do.
        cleanup: String,
    },
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot read", "cannot create", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// An atomic file operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// A key could not be parsed, generated or used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Metadata could not be parsed or encoded.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// Canonical JSON failed.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// A root transform is impossible.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// The bundle is unusable (corrupt, wrong kind, inconsistent).
    #[error("bundle: {0}")]
    Bundle(String),
    /// A keys tarball is unusable.
    #[error("keys file {path}: {reason}")]
    Tarball {
        /// The keys file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No trust is pinned for this factory yet.
    #[error("no trusted root is pinned for factory {factory:?} in {dir}.\nPin one first: `signer trust init ROOT.json` (compare its fingerprint with what the courier printed)")]
    NoPin {
        /// The factory of the bundle.
        factory: String,
        /// The trust directory that was searched.
        dir: PathBuf,
    },
    /// A `keys` command compares a keys file with the pinned root, and none is pinned.
    #[error("no trusted root is pinned{} in {dir}, so which keys are active cannot be told: pin the factory's root with `signer trust init ROOT.json` (the root.json from `courier show-root`, fingerprints compared), or give --root ROOT.json", .factory.as_ref().map(|f| format!(" for factory {f:?}")).unwrap_or_default())]
    NoPinForKeys {
        /// The trust directory that was searched.
        dir: PathBuf,
        /// The factory asked for (`--factory`), if any.
        factory: Option<String>,
    },
    /// A trust pin already exists.
    #[error("a trusted root is already pinned in {path} (version {version}); refusing to replace it.\nRemove that file by hand if you really mean to start over")]
    PinExists {
        /// The pin file.
        path: PathBuf,
        /// Version of the pinned root.
        version: u64,
    },
    /// The bundle's roots do not chain from the pinned root.
    #[error("the bundle's root chain does not verify from the pinned root (version {pinned}): {reason}.\nDo not sign this bundle: it may not come from your factory")]
    Chain {
        /// Version of the pinned root.
        pinned: u64,
        /// Why.
        reason: String,
    },
    /// A verification failed.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// A root is expired and `--allow-expired` was not given.
    #[error("{what} expired at {expires}; refusing to continue.\nIf you understand why (e.g. the factory was idle for a long time), re-run with --allow-expired")]
    Expired {
        /// Which root.
        what: String,
        /// Its expiry.
        expires: String,
    },
    /// Changes of the drafts that nothing this signer trusts authorized, in a run that cannot
    /// ask (`--yes`, or no terminal).
    #[error("refusing to sign: the staged roots make changes that nothing this signer trusts authorized (your command, a pinned cosigner's authenticated step, or your typed confirmation):\n{}\nNothing was signed and no keys file changed", .0.iter().map(|s| format!("  - {s}")).collect::<Vec<_>>().join("\n"))]
    NeedsAuthority(Vec<String>),
    /// The drafts (or an earlier step) are unsignable whatever anyone confirms.
    #[error("must not sign:\n{}\nNothing was signed; do not use this bundle (`signer inspect` shows it whole)", .0.iter().map(|s| format!("  - {s}")).collect::<Vec<_>>().join("\n"))]
    MustNotSign(Vec<String>),
    /// The bundle's root chain forks from a root this signer signed or pinned.
    #[error("{0}")]
    Fork(String),
    /// The code typed to accept a change is not the one shown.
    #[error("`{typed}` is not {expected}, the code of that change; it was not accepted and nothing was changed")]
    CodeMismatch {
        /// What the person typed.
        typed: String,
        /// The code shown.
        expected: String,
    },
    /// A targets rotation found no current offline targets key in the keys file: the
    /// error, and the command that replaces a lost key.
    #[error("{0}; if that key is lost, the root key holder replaces it: {1}")]
    LostTargetsKeyHint(Box<SignerError>, String),
    /// `--lost-key` names no offline targets key of the roots in force, or is used wrongly.
    #[error("--lost-key {keyid}: {problem}")]
    LostKey {
        /// The key id given.
        keyid: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The keys file holds no key for the role.
    #[error("{path} holds no private key for any {role} key of {which} ({keyids}); use the keys file that holds it")]
    NoKey {
        /// The keys file(s).
        path: String,
        /// The role.
        role: Role,
        /// Which root was searched ("the staged root", "the current root").
        which: &'static str,
        /// The candidate key ids, short form.
        keyids: String,
    },
    /// The keys file holds more than one active key of a role.
    #[error("{path} holds more than one active {role} private key ({keyids}); this is unsupported and insecure: keep a single active {role} key per keys file")]
    TwoActiveKeys {
        /// The keys file.
        path: PathBuf,
        /// The role.
        role: Role,
        /// The key ids found.
        keyids: String,
    },
    /// A key would be generated into a file that already holds an active key of the role.
    #[error("{path} already holds an active {role} key ({keyid}); it is not allowed to store more than one active private key per file. Use another --keys/--targets-keys file")]
    ActiveKeyPresent {
        /// The keys file.
        path: PathBuf,
        /// The role.
        role: Role,
        /// The active key.
        keyid: KeyId,
    },
    /// A file that must be new exists.
    #[error("{0} already exists; refusing to overwrite it. The first-time rotation creates a new keys file: choose another path (or move the existing file somewhere safe if it is not needed)")]
    KeysFileExists(PathBuf),
    /// A previous run was interrupted and left temporary files.
    #[error("a previous run was interrupted and left temporary file(s) next to {target}:\n{}\nThey may hold a NEW PRIVATE KEY that a signed root already references. Do not delete them: inspect them (e.g. `signer keys list --keys <file>`), keep the one that holds the newest key as your keys file, move the others somewhere safe, then re-run", .paths.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"))]
    LeftoverTemp {
        /// The keys file or bundle the temp files belong to.
        target: PathBuf,
        /// The temporary files.
        paths: Vec<PathBuf>,
    },
    /// Confirmation is needed but stdin is not a terminal and `--yes` was not given.
    #[error("this command changes keys or signs, and needs confirmation: run it on a terminal, or pass --yes after checking `signer inspect` output")]
    NeedsConfirmation,
    /// The person declined.
    #[error("not confirmed; nothing was changed")]
    Declined,
    /// The characters typed to confirm a root signature are not the start of the draft's
    /// digest.
    #[error("`{typed}` is not the start of the draft digest {expected}…; nothing was changed (read the digest shown above and type its first 8 characters)")]
    DigestMismatch {
        /// What the person typed.
        typed: String,
        /// The 8 characters that were expected.
        expected: String,
    },
    /// The operation is not possible for this bundle.
    #[error("{0}")]
    Refused(String),
    /// A file of another kind than the command expected (a keys tarball given as a bundle,
    /// a bundle given to `trust init`, …).
    #[error(transparent)]
    WrongFile(#[from] crate::wrong_file::WrongFile),
    /// A keys tarball could not be opened or saved.
    #[error(transparent)]
    Keystore(#[from] crate::keystore::KeystoreError),
    /// The signer identity could not be used.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The audit log refused a record.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// A PKCS#11 token refused or failed.
    #[error(transparent)]
    Pkcs11(#[from] crate::pkcs11::Pkcs11Error),
    /// A key could not sign (a token refusing, a token signature that does not verify).
    #[error(transparent)]
    Sign(#[from] shared::keys::SignError),
    /// A `signer keys` command failed (list, backup, export, print, restore).
    #[error(transparent)]
    Keys(#[from] crate::keys::KeysError),
    /// `signer keys split` or `combine` failed.
    #[error(transparent)]
    Split(#[from] crate::keys::split::SplitError),
    /// `signer keys drill` failed.
    #[error(transparent)]
    Drill(#[from] crate::keys::drill::DrillError),
    /// `signer keys encrypt` or `decrypt` failed.
    #[error(transparent)]
    AtRest(#[from] crate::keys::at_rest::AtRestError),
    /// An error from a module of another part of the signer.
    #[error("{0}")]
    Other(String),
}

impl SignerError {
    /// An I/O error about `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SignerError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A refusal with a message.
    pub fn refused(msg: impl Into<String>) -> Self {
        SignerError::Refused(msg.into())
    }

    /// A bundle problem with a message.
    pub fn bundle(msg: impl std::fmt::Display) -> Self {
        SignerError::Bundle(msg.to_string())
    }

    /// Whether the command line itself is wrong: a [`SignerError::Usage`], or a usage error
    /// of a module's own error.
    pub fn is_usage(&self) -> bool {
        match self {
            SignerError::Usage(_) => true,
            SignerError::Keys(e) => e.is_usage(),
            SignerError::Split(e) => e.is_usage(),
            SignerError::Drill(e) => e.is_usage(),
            SignerError::AtRest(e) => e.is_usage(),
            _ => false,
        }
    }

    /// The exit status for this error: [`EXIT_USAGE`] for a usage error, else
    /// [`EXIT_ERROR`] (the table in the module documentation and `signer --help`).
    pub fn exit_code(&self) -> u8 {
        if self.is_usage() {
            EXIT_USAGE
        } else {
            EXIT_ERROR
        }
    }
}

/// The one line a failed command prints after `error: `: the error and its causes joined
/// by `: `, leaving out a cause whose text the line already holds (most messages here name
/// their cause themselves, and saying it twice only hides what to do).
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        next = cause.source();
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_says_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let fs = FsError::Read {
            path: "/x".into(),
            source: io,
        };
        // The I/O cause is in the message already: said once.
        assert_eq!(
            one_line(&SignerError::Fs(fs)),
            "cannot read /x: No such file"
        );
        // A cause the message does not hold is added after it.
        let e = SignerError::io(
            "cannot open",
            "/k",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        );
        assert_eq!(one_line(&e), "cannot open /k: denied");
        // Through a module's own error, wrapped twice.
        let e = SignerError::from(crate::keys::KeysError::Pin(Box::new(SignerError::Usage(
            "give --factory NAME".into(),
        ))));
        assert_eq!(one_line(&e), "give --factory NAME");
    }

    #[test]
    fn usage_errors_of_every_module_exit_2() {
        use crate::keys::at_rest::AtRestError;
        use crate::keys::drill::DrillError;
        use crate::keys::sheet::SheetError;
        use crate::keys::split::SplitError;
        use crate::keys::KeysError;
        let usage = || SignerError::Usage("x".into());
        let sheet = |problem| KeysError::Sheet {
            source_file: "sheet.txt".into(),
            problem,
        };
        for (name, e, code) in [
            ("usage", usage(), 2),
            ("declined", SignerError::Declined, 1),
            (
                "export without its flag",
                KeysError::ExportNotConfirmed { out: "k".into() }.into(),
                2,
            ),
            (
                "restore: no keyid anywhere",
                sheet(SheetError::NoKeyId).into(),
                2,
            ),
            ("restore: a bad line", sheet(SheetError::NoLines).into(), 1),
            (
                "several pins, no --factory",
                KeysError::Pin(Box::new(usage())).into(),
                2,
            ),
            (
                "no pin",
                KeysError::Pin(Box::new(SignerError::NoPinForKeys {
                    dir: "t".into(),
                    factory: None,
                }))
                .into(),
                1,
            ),
            (
                "split: K and N",
                SplitError::Parameters {
                    threshold: 1,
                    shares: 3,
                    reason: "x".into(),
                }
                .into(),
                2,
            ),
            (
                "combine: mixed sheets",
                SplitError::Set("x".into()).into(),
                1,
            ),
            (
                "drill: several pins",
                DrillError::from(KeysError::Pin(Box::new(usage()))).into(),
                2,
            ),
            (
                "drill: a sheet without keyid is a failed drill",
                DrillError::from(sheet(SheetError::NoKeyId)).into(),
                1,
            ),
            (
                "encrypt: pin usage",
                AtRestError::Keys(KeysError::Pin(Box::new(usage()))).into(),
                2,
            ),
        ] {
            let e: SignerError = e;
            assert_eq!(e.exit_code(), code, "{name}: {e}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = SignerError::NeedsAuthority(vec!["a".into(), "b".into()]);
        let s = e.to_string();
        assert!(s.contains("  - a\n  - b"));
        assert!(s.contains("Nothing was signed"));
        let e = SignerError::LeftoverTemp {
            target: "k.tgz".into(),
            paths: vec!["./.k.tgz.0123456789abcdef.tmp".into()],
        };
        assert!(e.to_string().contains("NEW PRIVATE KEY"));
        assert_eq!(SignerError::Usage("x".into()).exit_code(), 2);
        assert_eq!(SignerError::Declined.exit_code(), 1);
    }
}
