//! What an operation answers: a JSON value, raw JSON bytes, or a streamed concatenation of
//! byte strings and files (for large targets documents).

use std::pin::Pin;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::ReaderStream;

/// A piece of a streamed response.
pub(crate) enum Segment {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// An open file and its length (opened while the factory was locked, so a concurrent
    /// commit that deletes it cannot break the response).
    File(std::fs::File, u64),
}

/// A successful answer.
pub(crate) enum Reply {
    /// A JSON value, serialized compactly.
    Json(StatusCode, serde_json::Value),
    /// JSON text already serialized.
    Raw(Vec<u8>),
    /// JSON text streamed from segments.
    Stream(Vec<Segment>),
}

impl Reply {
    /// `200` with a JSON value.
    pub fn ok(v: serde_json::Value) -> Reply {
        Reply::Json(StatusCode::OK, v)
    }
}

fn json_headers(mut resp: Response, len: Option<u64>) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    resp
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Json(status, v) => (status, axum::Json(v)).into_response(),
            Reply::Raw(bytes) => json_headers(Body::from(bytes).into_response(), None),
            Reply::Stream(segments) => {
                let total: u64 = segments
                    .iter()
                    .map(|s| match s {
                        Segment::Bytes(b) => b.len() as u64,
                        Segment::File(_, n) => *n,
                    })
                    .sum();
                let mut reader: Pin<Box<dyn AsyncRead + Send>> = Box::pin(tokio::io::empty());
                for seg in segments {
                    reader = match seg {
                        Segment::Bytes(b) => Box::pin(reader.chain(std::io::Cursor::new(b))),
                        Segment::File(f, n) => {
                            Box::pin(reader.chain(tokio::fs::File::from_std(f).take(n)))
                        }
                    };
                }
                let body = Body::from_stream(ReaderStream::with_capacity(reader, 64 * 1024));
                json_headers(body.into_response(), Some(total))
            }
        }
    }
}
