//! Error types: [`SimError`] for the library API (state, init, server start) and
//! [`ApiError`] for HTTP refusals (status code + `{"message", "errors"}` body).

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What went wrong in the simulator library (not in an HTTP request).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A state file could not be written (the message names it; the previous content, if
    /// any, is untouched).
    #[error(transparent)]
    File(#[from] shared::fsutil::FsError),
    /// A state file does not parse.
    #[error("state file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why it does not parse.
        reason: String,
    },
    /// A caller-supplied option or argument is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The state directory has no factory of that name.
    #[error(
        "factory {0:?} does not exist in the state directory (create it with `factory-sim init`)"
    )]
    NoFactory(String),
    /// A key could not be built or parsed.
    #[error(transparent)]
    Key(#[from] shared::keys::KeyError),
    /// Metadata could not be built or parsed.
    #[error(transparent)]
    Metadata(#[from] shared::metadata::MetadataError),
    /// Canonical JSON encoding failed.
    #[error(transparent)]
    Canonical(#[from] shared::canonical::CanonicalError),
}

impl SimError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> SimError {
        SimError::Io {
            context: context.into(),
            source,
        }
    }
}

/// An HTTP refusal: status code plus the JSON error body fioctl understands
/// (`{"message": "...", "errors": ["...", ...]}`).
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub errors: Vec<String>,
}

impl ApiError {
    /// An error with a message and no detail list.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    /// An error with a message and a list of details.
    pub fn with_errors(
        status: StatusCode,
        message: impl Into<String>,
        errors: Vec<String>,
    ) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            errors,
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 409 Conflict.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// 422 Unprocessable Entity with the list of problems.
    pub fn invalid(message: impl Into<String>, errors: Vec<String>) -> ApiError {
        ApiError::with_errors(StatusCode::UNPROCESSABLE_ENTITY, message, errors)
    }

    /// 500 Internal Server Error (a bug or a broken state directory).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<SimError> for ApiError {
    fn from(e: SimError) -> ApiError {
        ApiError::internal(format!("factory-sim internal error: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"message": self.message, "errors": self.errors});
        (self.status, axum::Json(body)).into_response()
    }
}
