//! Errors of the courier, written for the person at the terminal, and their exit codes.
//!
//! Every error says what went wrong and, where there is one, what to do next. The exit code
//! tells scripts which kind of failure happened:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | any other error (bad input file, configuration, local verification failure, ...) |
//! | 2 | usage error (unknown flag, missing argument, invalid value) |
//! | 3 | the server refused the request (HTTP 4xx): nothing was changed by it |
//! | 4 | network or server failure (no connection, timeout, HTTP 5xx, an answer that makes no sense; an apply that may be partially done): try again later |
//! | 5 | stale bundle: the bundle no longer matches the factory's transaction; pull and sign again |
//! | 6 | `courier expiry`: a document is expired or expires within the critical horizon |
//!
//! Every failure of every command is one [`CourierError`]; its variant decides the code
//! ([`CourierError::exit_code`]), and [`CourierError::context`] adds words without changing
//! it. The binary prints it as one `error: ...` line (see [`crate::main_with_args`]).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::api::ApiError;

/// Process exit codes, as documented in `courier --help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// Any other error.
    Error = 1,
    /// Usage error (bad flags or arguments).
    Usage = 2,
    /// The server refused the request (HTTP 4xx).
    Refused = 3,
    /// Network failure or server error (HTTP 5xx, timeout, an unusable answer).
    Network = 4,
    /// The bundle is stale: the transaction changed since the request was pulled.
    Stale = 5,
    /// `courier expiry`: something expires within the critical horizon (or has expired).
    Expiring = 6,
}

impl ExitCode {
    /// The numeric process exit status.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The text of the exit-code table shown at the end of `courier --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  error (bad file, configuration, local verification failure, ...)
  2  usage error (unknown flag, missing or invalid argument)
  3  the server refused the request (HTTP 4xx); it changed nothing
  4  network or server failure (no connection, timeout, HTTP 5xx, an unusable answer); try again later
  5  stale bundle: the transaction changed since the request was pulled; pull and sign again
  6  expiry: a document is expired or expires within the critical horizon";

/// Everything that can make a courier command fail.
#[derive(Debug, thiserror::Error)]
pub enum CourierError {
    /// The command line or configuration is incomplete or contradictory.
    #[error("{0}")]
    Usage(String),
    /// A configuration file could not be read or written, or a setting is missing.
    #[error("{0}")]
    Config(String),
    /// An HTTP request failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A file could not be written atomically (or read within its size limit); the message
    /// names the file.
    #[error(transparent)]
    File(#[from] shared::fsutil::FsError),
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot read", "cannot write", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A bundle is not usable (corrupt, wrong kind, not ours, ...).
    #[error("{0}")]
    Bundle(String),
    /// A file given as a bundle is something else (a keys tarball, a root.json, ...).
    #[error("{}: {what}", path.display())]
    WrongFile {
        /// The file.
        path: PathBuf,
        /// What it is.
        what: crate::sniff::NotABundle,
    },
    /// A flag or subcommand of fioctl that belongs to the other program (the signer).
    #[error("{0}")]
    WrongHalf(#[from] crate::habits::WrongHalf),
    /// A signature, threshold or chain check failed locally; nothing was uploaded.
    #[error("verification failed, nothing was uploaded: {0}")]
    Verify(String),
    /// The bundle no longer matches the server's transaction.
    #[error("stale bundle: {reason}\n{advice}")]
    Stale {
        /// What differs.
        reason: String,
        /// How to redo the work.
        advice: String,
    },
    /// The server's answer does not make sense (unexpected state, unreadable document, a
    /// chain that changed while it was read): a server failure, exit code 4.
    #[error("{0}")]
    Server(String),
    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Other(String),
    /// A state-changing request failed in a way that leaves the server state unknown
    /// (e.g. an apply that may be partially done); exit code 4.
    #[error("{0}")]
    Uncertain(String),
    /// `courier expiry` found documents expired or within the critical horizon (exit 6).
    #[error("{0}")]
    Expiring(String),
    /// An error with extra context in front of it; the exit code is the inner error's.
    #[error("{context}: {source}")]
    Context {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: Box<CourierError>,
    },
}

impl CourierError {
    /// The exit code for this error (see the module docs).
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CourierError::Usage(_) | CourierError::WrongHalf(_) => ExitCode::Usage,
            CourierError::Api(e) => e.exit_code(),
            CourierError::Stale { .. } => ExitCode::Stale,
            CourierError::Uncertain(_) | CourierError::Server(_) => ExitCode::Network,
            CourierError::Expiring(_) => ExitCode::Expiring,
            CourierError::Context { source, .. } => source.exit_code(),
            CourierError::Config(_)
            | CourierError::File(_)
            | CourierError::Io { .. }
            | CourierError::Bundle(_)
            | CourierError::WrongFile { .. }
            | CourierError::Verify(_)
            | CourierError::Other(_) => ExitCode::Error,
        }
    }

    /// A file error.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> CourierError {
        CourierError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The standard stale-bundle error with the advice how to redo the work.
    pub fn stale(reason: impl fmt::Display) -> CourierError {
        CourierError::Stale {
            reason: reason.to_string(),
            advice: "Nothing was uploaded. Pull a new request bundle (`courier updates pull --bundle FILE`), \
                     sign it again on the offline machine, and push the new response."
                .to_string(),
        }
    }

    /// Puts `context` in front of this error, keeping its exit code.
    pub fn context(self, context: impl Into<String>) -> CourierError {
        CourierError::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }
}

impl From<shared::bundle::BundleError> for CourierError {
    /// A bundle that cannot be read, built or written is a [`CourierError::Bundle`].
    fn from(e: shared::bundle::BundleError) -> CourierError {
        CourierError::Bundle(e.to_string())
    }
}

/// Adds context to results, keeping the exit code of the error.
pub trait ResultExt<T> {
    /// Prefixes the error (if any) with `context`.
    fn context(self, context: impl Into<String>) -> Result<T, CourierError>;
}

impl<T, E: Into<CourierError>> ResultExt<T> for Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T, CourierError> {
        self.map_err(|e| e.into().context(context))
    }
}

/// Shorthand for courier results.
pub type Result<T, E = CourierError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_kind() {
        for (e, code) in [
            (CourierError::Usage("x".into()), ExitCode::Usage),
            (CourierError::stale("changed"), ExitCode::Stale),
            (CourierError::Other("x".into()), ExitCode::Error),
            (CourierError::Verify("x".into()), ExitCode::Error),
            (CourierError::Server("unreadable".into()), ExitCode::Network),
            (CourierError::Uncertain("maybe".into()), ExitCode::Network),
            (CourierError::Expiring("x".into()), ExitCode::Expiring),
        ] {
            assert_eq!(e.exit_code(), code, "{e:?}");
        }
        let wrapped = CourierError::stale("changed").context("pushing");
        assert_eq!(wrapped.exit_code(), ExitCode::Stale);
        assert!(wrapped
            .to_string()
            .starts_with("pushing: stale bundle: changed"));
    }

    #[test]
    fn help_lists_every_code() {
        for code in [
            ExitCode::Ok,
            ExitCode::Error,
            ExitCode::Usage,
            ExitCode::Refused,
            ExitCode::Network,
            ExitCode::Stale,
            ExitCode::Expiring,
        ] {
            assert!(EXIT_CODES_HELP.contains(&format!("  {}  ", code.code())));
        }
    }
}
