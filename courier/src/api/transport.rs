//! The HTTP side of the Factory API client: connection, authentication, retries, timeouts,
//! error mapping and progress.
//!
//! * blocking `reqwest` over rustls; the token goes in the `OSF-TOKEN` header (or the header
//!   named by `TOKEN_HEADER`) and is never logged (its header value is marked sensitive);
//! * connect and request timeouts; idempotent requests (GET) are retried with exponential
//!   backoff on connection failures, timeouts and HTTP 429/500/502/503/504; requests that
//!   change state (POST, PUT) are sent **once** — callers that need to know whether a failed
//!   one took effect re-read the server state instead of re-sending;
//! * success is exactly HTTP 200, 201, 202 or 204, like fioctl; any other status becomes an
//!   [`ApiError::Status`] whose one-line message carries the server's reason, decoded from
//!   the JSON error body `{"message"|"msg": .., "errors": [..] | {field: ..}}`; every
//!   [`ApiError`] knows its exit code ([`ApiError::exit_code`]);
//! * `-v` logs each request and response line (method, URL, status, time, size) on stderr,
//!   through the run's [`Output`];
//! * [`Client::progress_bar`]: a bar on a terminal's stderr for a long series of requests.
//!
//! What each Factory endpoint is lives in [`super::endpoints`]; this module knows methods,
//! paths and bodies only.

use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::blocking::{Client as HttpClient, Response};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::config::Settings;
use crate::error::{CourierError, ExitCode};
use crate::output::Output;

/// Why an HTTP request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with a status other than 200/201/202/204.
    #[error("{}", status_line(.method, .url, *.status, .reason))]
    Status {
        /// HTTP method.
        method: String,
        /// Full URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The server's reason, decoded from the error body (may be empty).
        reason: String,
    },
    /// No usable answer: connection failure, timeout, TLS error, ...
    #[error("network error during {method} {url}: {detail}")]
    Network {
        /// HTTP method.
        method: String,
        /// Full URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The answer could not be understood.
    #[error("unexpected answer to {method} {url}: {detail}")]
    Decode {
        /// HTTP method.
        method: String,
        /// Full URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The request could not be built (bad header value, bad name in the path, ...).
    #[error("cannot build the request: {0}")]
    Request(String),
}

fn status_line(method: &str, url: &str, status: u16, reason: &str) -> String {
    let text = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let what = if status >= 500 {
        "server error on"
    } else {
        "server refused"
    };
    let mut line = format!("{what} {method} {url}: HTTP {status}");
    if !text.is_empty() {
        line.push(' ');
        line.push_str(text);
    }
    if !reason.is_empty() {
        line.push_str(": ");
        line.push_str(reason);
    }
    line
}

impl ApiError {
    /// The exit code: 3 for a refusal (4xx: the server changed nothing), 4 for network and
    /// server failures (no answer, 5xx, an answer that cannot be understood), 1 for a request
    /// that could not be built from the settings.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ApiError::Status { status, .. } if *status < 500 => ExitCode::Refused,
            ApiError::Status { .. } | ApiError::Network { .. } | ApiError::Decode { .. } => {
                ExitCode::Network
            }
            ApiError::Request(_) => ExitCode::Error,
        }
    }

    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Replaces control characters (which could play tricks on a terminal) with spaces and
/// collapses runs of whitespace, so server text fits on one line.
pub fn one_line(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes an error body into a one-line reason, the way fioctl reads it: `msg` or
/// `message`, then each of `errors` (a list, or an object of field → error); a body that is
/// not such JSON is shown raw when shorter than 512 bytes.
pub fn decode_error_body(body: &[u8]) -> String {
    let raw = || {
        if body.len() < 512 {
            one_line(&String::from_utf8_lossy(body))
        } else {
            String::new()
        }
    };
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return raw();
    };
    let text = |v: &Value| match v {
        Value::String(s) => one_line(s),
        other => one_line(&other.to_string()),
    };
    let message = ["message", "msg", "detail", "error"]
        .iter()
        .find_map(|k| {
            obj.get(*k)
                .and_then(|v| v.as_str())
                .filter(|s| !s.trim().is_empty())
        })
        .map(one_line);
    let mut errors = Vec::new();
    match obj.get("errors") {
        Some(Value::Array(list)) => errors.extend(list.iter().map(text)),
        Some(Value::Object(map)) => {
            for (field, err) in map {
                match err {
                    Value::Array(list) => {
                        for e in list {
                            errors.push(format!("{field}: {}", text(e)));
                        }
                    }
                    e => errors.push(format!("{field}: {}", text(e))),
                }
            }
        }
        Some(Value::String(s)) => errors.push(one_line(s)),
        _ => {}
    }
    errors.retain(|e| !e.is_empty());
    match (message, errors.is_empty()) {
        (Some(m), true) => m,
        (Some(m), false) => format!("{m} ({})", errors.join("; ")),
        (None, false) => errors.join("; "),
        (None, true) => raw(),
    }
}

/// How idempotent requests are retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubles for each further one.
    pub base_delay: Duration,
    /// Upper bound of one delay (also caps `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay before retry number `retry` (1-based), honouring a `Retry-After` hint.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.base_delay.saturating_mul(
            1u32.checked_shl(retry.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        retry_after.unwrap_or(exp).min(self.max_delay)
    }

    /// Whether a response status is worth retrying (for idempotent requests only).
    pub fn retryable_status(status: u16) -> bool {
        matches!(status, 429 | 500 | 502 | 503 | 504)
    }
}

/// Whether a method may be retried: only requests that change nothing.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// What came back before its body was read: a success (the body for the caller) or a
/// failure status with its (small) body.
enum Answer {
    Success(u16, Response),
    Failure(u16, Option<Duration>, Vec<u8>),
}

/// A successful response.
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// Body bytes (zeroized on drop: some bodies carry a private key).
    pub body: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for ApiResponse {
    /// The status and size only: a body may carry a private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Options of the client beyond the resolved settings.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Log requests on stderr.
    pub verbose: bool,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Retry policy for idempotent requests.
    pub retry: RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            verbose: false,
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }
}

/// The API client of one factory.
pub struct Client {
    http: HttpClient,
    base: String,
    factory: String,
    opts: ClientOptions,
    out: Output,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("factory", &self.factory)
            .finish_non_exhaustive()
    }
}

/// Checks a factory name before it goes into URL paths (fioctl does not escape it).
pub fn check_factory_name(name: &str) -> Result<(), ApiError> {
    if !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != ".."
    {
        Ok(())
    } else {
        Err(ApiError::Request(format!(
            "invalid factory name {name:?}: only letters, digits, '-', '_' and '.' are allowed"
        )))
    }
}

/// Percent-encodes a path segment or query value (keeps unreserved characters and `,`).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b',') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The User-Agent sent on every request.
pub fn user_agent() -> String {
    format!("offline-tuf-courier/{}", env!("CARGO_PKG_VERSION"))
}
impl Client {
    /// Builds a client from resolved settings; logs (`-v`) and warnings go to `out`. Fails
    /// without a factory.
    pub fn new(
        settings: &Settings,
        opts: ClientOptions,
        out: Output,
    ) -> Result<Client, CourierError> {
        let factory = settings.require_factory()?.to_string();
        check_factory_name(&factory)?;
        let mut headers = HeaderMap::new();
        let bad = |what: &str| ApiError::Request(format!("invalid value for header {what}"));
        if let Some(token) = &settings.token {
            let name = HeaderName::from_bytes(settings.token_header.as_bytes()).map_err(|_| {
                ApiError::Request(format!("invalid TOKEN_HEADER {:?}", settings.token_header))
            })?;
            let mut value =
                HeaderValue::from_str(token.expose()).map_err(|_| bad("of the API token"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        for (k, v) in &settings.extra_headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| ApiError::Request(format!("invalid extra header name {k:?}")))?;
            headers.insert(name, HeaderValue::from_str(v).map_err(|_| bad(k))?);
        }
        if settings.token.is_none() {
            if let Some(access) = &settings.access_token {
                let encoded = base64::engine::general_purpose::STANDARD.encode(access.expose());
                let mut value = HeaderValue::from_str(&format!("Bearer {encoded}"))
                    .map_err(|_| bad("Authorization"))?;
                value.set_sensitive(true);
                headers.insert(reqwest::header::AUTHORIZATION, value);
            }
        }
        let mut builder = HttpClient::builder()
            .user_agent(user_agent())
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(15).min(opts.timeout))
            .timeout(opts.timeout)
            .no_gzip()
            .https_only(false);
        if let Some(ca) = &settings.ca_cert {
            let pem =
                std::fs::read(ca).map_err(|e| CourierError::io("cannot read CACERT", ca, e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ApiError::Request(format!("invalid CACERT bundle {}: {e}", ca.display()))
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if settings.insecure_skip_verify {
            out.warning("TLS certificate verification is disabled (server.insecure_skip_verify)");
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| ApiError::Request(format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            http,
            base: settings.api_url.clone(),
            factory,
            opts,
            out,
        })
    }

    /// The factory this client talks about.
    pub fn factory(&self) -> &str {
        &self.factory
    }

    /// The API base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one request (retrying idempotent ones) and returns a successful response.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<ApiResponse, ApiError> {
        let name = method.to_string();
        self.send_with(method, path, body, &mut |status, resp| {
            let url = resp.url().to_string();
            // A body cut short is retried like a failed connection (idempotent requests).
            let bytes = resp.bytes().map_err(|e| {
                let err = ApiError::Network {
                    method: name.clone(),
                    url,
                    detail: describe_reqwest_error(&e),
                };
                (err, true)
            })?;
            Ok(ApiResponse {
                status,
                body: Zeroizing::new(bytes.to_vec()),
            })
        })
    }

    /// `GET path` whose successful body is given to `read` as it arrives, never held whole
    /// in memory; `None` on 404. Retried like [`Client::send`] until a body starts; a failure
    /// while `read` consumes it is not retried (`read` may have acted on part of it).
    pub fn get_streamed<T>(
        &self,
        path: &str,
        read: &mut dyn FnMut(&mut dyn std::io::Read) -> Result<T, ApiError>,
    ) -> Result<Option<T>, ApiError> {
        let result = self.send_with(Method::GET, path, None, &mut |_, mut resp| {
            read(&mut resp).map_err(|e| (e, false))
        });
        match result {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The request loop of [`Client::send`]: `on_success` gets the status and the response
    /// of a successful answer (its body unread) and says, when it fails, whether the request
    /// may be sent again; any other answer is an error as described in the module
    /// documentation.
    fn send_with<T>(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        on_success: &mut dyn FnMut(u16, Response) -> Result<T, (ApiError, bool)>,
    ) -> Result<T, ApiError> {
        let url = format!("{}{}", self.base, path);
        let attempts = if is_idempotent(&method) {
            self.opts.retry.attempts.max(1)
        } else {
            1
        };
        let mut retry = 0;
        loop {
            let started = Instant::now();
            if self.opts.verbose {
                self.out.log(&format!(
                    "> {method} {url}{}",
                    body.map(|b| format!(" ({} bytes)", b.len()))
                        .unwrap_or_default()
                ));
            }
            let mut req = self.http.request(method.clone(), &url);
            if let Some(b) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.to_vec());
            }
            let outcome = req.send().and_then(|resp| {
                let status = resp.status().as_u16();
                if matches!(status, 200 | 201 | 202 | 204) {
                    return Ok(Answer::Success(status, resp));
                }
                let retry_after = retry_after(&resp);
                resp.bytes()
                    .map(|b| Answer::Failure(status, retry_after, b.to_vec()))
            });
            let (error, retry_after) = match outcome {
                Ok(Answer::Success(status, resp)) => {
                    let size = resp.content_length();
                    let answer = on_success(status, resp);
                    if self.opts.verbose {
                        self.out.log(&format!(
                            "< {status} {method} {url} ({} ms{})",
                            started.elapsed().as_millis(),
                            size.map(|n| format!(", {n} bytes")).unwrap_or_default()
                        ));
                    }
                    match answer {
                        Ok(t) => return Ok(t),
                        Err((e, false)) => return Err(e),
                        Err((e, true)) => (e, None),
                    }
                }
                Ok(Answer::Failure(status, retry_after, bytes)) => {
                    if self.opts.verbose {
                        self.out.log(&format!(
                            "< {status} {method} {url} ({} ms, {} bytes)",
                            started.elapsed().as_millis(),
                            bytes.len()
                        ));
                    }
                    let err = ApiError::Status {
                        method: method.to_string(),
                        url: url.clone(),
                        status,
                        reason: decode_error_body(&bytes),
                    };
                    if !RetryPolicy::retryable_status(status) {
                        return Err(err);
                    }
                    (err, retry_after)
                }
                Err(e) => {
                    if self.opts.verbose {
                        self.out.log(&format!(
                            "< {method} {url} failed after {} ms",
                            started.elapsed().as_millis()
                        ));
                    }
                    (
                        ApiError::Network {
                            method: method.to_string(),
                            url: url.clone(),
                            detail: describe_reqwest_error(&e),
                        },
                        None,
                    )
                }
            };
            retry += 1;
            if retry >= attempts {
                return Err(error);
            }
            let delay = self.opts.retry.delay(retry, retry_after);
            if self.opts.verbose {
                self.out
                    .log(&format!("  retrying in {} ms ({error})", delay.as_millis()));
            }
            std::thread::sleep(delay);
        }
    }

    /// Sends `body` as JSON (a state-changing request is sent once, see [`Client::send`]).
    pub fn send_json<T: serde::Serialize>(
        &self,
        method: Method,
        path: &str,
        body: &T,
    ) -> Result<ApiResponse, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Request(e.to_string()))?;
        self.send(method, path, Some(&bytes))
    }

    /// GET returning the body.
    pub fn get(&self, path: &str) -> Result<ApiResponse, ApiError> {
        self.send(Method::GET, path, None)
    }

    /// GET where 404 means "none".
    pub fn get_optional(&self, path: &str) -> Result<Option<ApiResponse>, ApiError> {
        match self.get(path) {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Decodes a JSON answer of `method path`; what does not decode is an
    /// [`ApiError::Decode`] naming the request.
    pub(super) fn decode<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<T, ApiError> {
        serde_json::from_slice(body).map_err(|e| ApiError::Decode {
            method: method.to_string(),
            url: format!("{}{}", self.base, path),
            detail: e.to_string(),
        })
    }

    /// Builds the [`ApiError::Decode`] of an answer to `method path` that makes no sense.
    pub(super) fn undecodable(&self, method: &str, path: &str, detail: String) -> ApiError {
        ApiError::Decode {
            method: method.to_string(),
            url: format!("{}{}", self.base, path),
            detail,
        }
    }

    /// A progress bar on stderr for `len` steps, drawn only when stderr is a terminal and
    /// requests are not logged (`-v`).
    pub fn progress_bar(&self, len: u64, message: &str) -> indicatif::ProgressBar {
        if self.opts.verbose || !self.out.stderr_is_terminal() {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(len);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

fn retry_after(resp: &Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "connection broken while reading the answer"
    } else {
        "request failed"
    };
    // The innermost cause carries the useful part ("connection refused", "certificate ...").
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    match last {
        Some(cause) => format!("{kind}: {}", one_line(&cause)),
        None => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_server::{client, serve, CONFLICT, OK_ROOT, UNAVAILABLE};
    use std::net::TcpListener;

    #[test]
    fn error_bodies_decode_to_one_line() {
        assert_eq!(
            decode_error_body(br#"{"message":"Only one transaction","errors":["a","b"]}"#),
            "Only one transaction (a; b)"
        );
        assert_eq!(decode_error_body(br#"{"msg":"nope"}"#), "nope");
        assert_eq!(
            decode_error_body(
                br#"{"message":"bad","errors":{"txid":"mismatch","ci-root":["x","y"]}}"#
            ),
            "bad (ci-root: x; ci-root: y; txid: mismatch)"
        );
        assert_eq!(decode_error_body(br#"{"errors":["only"]}"#), "only");
        assert_eq!(decode_error_body(b"plain\ntext\x1b[31m"), "plain text [31m");
        assert_eq!(decode_error_body(&vec![b'x'; 600]), "");
        assert_eq!(decode_error_body(br#"{"other":1}"#), r#"{"other":1}"#);
        assert_eq!(decode_error_body(b""), "");
    }

    #[test]
    fn status_errors_read_well_and_map_to_exit_codes() {
        let e = ApiError::Status {
            method: "POST".into(),
            url: "https://x/ota".into(),
            status: 409,
            reason: "Only one TUF root updates transaction can be active at a time".into(),
        };
        assert_eq!(
            e.to_string(),
            "server refused POST https://x/ota: HTTP 409 Conflict: Only one TUF root updates transaction can be active at a time"
        );
        assert_eq!(e.exit_code(), ExitCode::Refused);
        let e = ApiError::Status {
            method: "GET".into(),
            url: "u".into(),
            status: 503,
            reason: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "server error on GET u: HTTP 503 Service Unavailable"
        );
        assert_eq!(e.exit_code(), ExitCode::Network);
        let e = ApiError::Decode {
            method: "GET".into(),
            url: "u".into(),
            detail: "EOF".into(),
        };
        assert_eq!(e.exit_code(), ExitCode::Network);
        assert_eq!(ApiError::Request("x".into()).exit_code(), ExitCode::Error);
    }

    #[test]
    fn retry_delays_back_off() {
        let p = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        assert_eq!(p.delay(1, None), Duration::from_millis(100));
        assert_eq!(p.delay(2, None), Duration::from_millis(200));
        assert_eq!(p.delay(3, None), Duration::from_millis(350));
        assert_eq!(p.delay(40, None), Duration::from_millis(350));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(60))),
            Duration::from_millis(350)
        );
        assert!(RetryPolicy::retryable_status(503));
        assert!(!RetryPolicy::retryable_status(404));
        assert!(is_idempotent(&Method::GET));
        assert!(!is_idempotent(&Method::PUT));
        assert!(!is_idempotent(&Method::POST));
    }

    #[test]
    fn get_is_retried_until_it_succeeds() {
        let (url, seen) = serve(vec![UNAVAILABLE, "DROP", OK_ROOT]);
        let (c, log) = client(&url, 4);
        assert_eq!(c.get("/x/root.json").unwrap().body.as_slice(), b"{}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        let head = seen[0].to_lowercase();
        assert!(head.starts_with("get /x/root.json http/1.1"));
        assert!(head.contains("osf-token: tok-123"));
        assert!(head.contains("user-agent: offline-tuf-courier/"));
        assert_eq!(log.stderr(), "", "nothing is logged without -v");
    }

    #[test]
    fn get_gives_up_after_the_last_attempt() {
        let (url, seen) = serve(vec![UNAVAILABLE, UNAVAILABLE]);
        let (c, _) = client(&url, 2);
        let err = c.get("/x?production=1").unwrap_err();
        assert_eq!(err.status(), Some(503));
        assert_eq!(err.exit_code(), ExitCode::Network);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn refusals_are_not_retried() {
        let (url, seen) = serve(vec![CONFLICT, OK_ROOT]);
        let (c, _) = client(&url, 4);
        let err = c.get("/x").unwrap_err();
        assert_eq!(err.status(), Some(409));
        assert!(
            err.to_string()
                .ends_with("HTTP 409 Conflict: already started"),
            "{err}"
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn state_changing_requests_are_sent_once() {
        let (url, seen) = serve(vec![UNAVAILABLE, OK_ROOT]);
        let (c, _) = client(&url, 4);
        let err = c
            .send_json(Method::PUT, "/x/root/updates", &serde_json::json!({}))
            .unwrap_err();
        assert_eq!(err.status(), Some(503));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].starts_with("PUT /x/root/updates"));
        assert!(seen[0]
            .to_lowercase()
            .contains("content-type: application/json"));
    }

    #[test]
    fn network_errors_are_reported_and_logged_without_the_token() {
        // Nothing listens on a port that was just closed: a network error.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let (mut c, log) = client(&format!("http://{addr}"), 2);
        c.opts.verbose = true;
        let err = c.get("/x").unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::Network);
        assert!(
            err.to_string().contains("network error during GET"),
            "{err}"
        );
        let said = log.stderr();
        assert!(
            said.contains("> GET http://") && said.contains("retrying in"),
            "{said}"
        );
        assert!(!said.contains("tok-123"), "{said}");
    }

    #[test]
    fn names_are_checked_and_escaped() {
        assert!(check_factory_name("acme-1").is_ok());
        assert!(check_factory_name("../x").is_err());
        assert!(check_factory_name("").is_err());
        assert_eq!(escape("a,b c/d"), "a,b%20c%2Fd");
    }
}
