//! The Foundries.io API client: the calls fioctl makes for TUF key management and waves.
//!
//! * blocking `reqwest` over rustls; the token goes in the `OSF-TOKEN` header (or the header
//!   named by `TOKEN_HEADER`) and is never logged;
//! * connect and request timeouts; idempotent requests (GET) are retried with exponential
//!   backoff on connection failures, timeouts and HTTP 429/500/502/503/504; requests that
//!   change state (POST, PUT) are sent **once** — callers that need to know whether a failed
//!   one took effect re-read the server state instead of re-sending;
//! * success is exactly HTTP 200, 201, 202 or 204, like fioctl; any other status becomes an
//!   [`ApiError::Status`] whose one-line message carries the server's reason, decoded from
//!   the JSON error body `{"message"|"msg": .., "errors": [..] | {field: ..}}`;
//! * `-v` logs each request and response line (method, URL, status, time, size) on stderr.
//!
//! Endpoint paths are exactly fioctl's (see `foundries-api.md` §4).

use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::blocking::{Client as HttpClient, Response};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use shared::keys::Signature;
use zeroize::Zeroizing;

use crate::config::Settings;
use crate::error::ExitCode;

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
    /// The exit code: 3 for a refusal (4xx), 4 for network and server failures.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ApiError::Status { status, .. } if *status < 500 => ExitCode::Refused,
            ApiError::Status { .. } | ApiError::Network { .. } => ExitCode::Network,
            ApiError::Decode { .. } | ApiError::Request(_) => ExitCode::Error,
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

/// A successful response.
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// Body bytes (zeroized on drop: some bodies carry a private key).
    pub body: Zeroizing<Vec<u8>>,
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
    /// Builds a client from resolved settings. Fails without a factory.
    pub fn new(
        settings: &Settings,
        opts: ClientOptions,
    ) -> Result<Client, crate::error::CourierError> {
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
            let pem = std::fs::read(ca)
                .map_err(|e| crate::error::CourierError::io("cannot read CACERT", ca, e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ApiError::Request(format!("invalid CACERT bundle {}: {e}", ca.display()))
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if settings.insecure_skip_verify {
            eprintln!(
                "warning: TLS certificate verification is disabled (server.insecure_skip_verify)"
            );
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

    fn repo(&self) -> String {
        format!("/ota/repo/{}/api/v1/user_repo", self.factory)
    }

    fn factories(&self) -> String {
        format!("/ota/factories/{}", self.factory)
    }

    /// Sends one request (retrying idempotent ones) and returns a successful response.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<ApiResponse, ApiError> {
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
                eprintln!(
                    "> {method} {url}{}",
                    body.map(|b| format!(" ({} bytes)", b.len()))
                        .unwrap_or_default()
                );
            }
            let mut req = self.http.request(method.clone(), &url);
            if let Some(b) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.to_vec());
            }
            let outcome = req.send().and_then(|resp| {
                let status = resp.status().as_u16();
                let retry_after = retry_after(&resp);
                resp.bytes().map(|b| (status, retry_after, b.to_vec()))
            });
            let (error, retry_after) = match outcome {
                Ok((status, retry_after, bytes)) => {
                    if self.opts.verbose {
                        eprintln!(
                            "< {status} {method} {url} ({} ms, {} bytes)",
                            started.elapsed().as_millis(),
                            bytes.len()
                        );
                    }
                    if matches!(status, 200 | 201 | 202 | 204) {
                        return Ok(ApiResponse {
                            status,
                            body: Zeroizing::new(bytes),
                        });
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
                        eprintln!(
                            "< {method} {url} failed after {} ms",
                            started.elapsed().as_millis()
                        );
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
                eprintln!("  retrying in {} ms ({error})", delay.as_millis());
            }
            std::thread::sleep(delay);
        }
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

    fn decode<T: serde::de::DeserializeOwned>(
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

    /// `GET R/root.json[?production=1]`: the current CI (or production) root, as served.
    pub fn root(&self, prod: bool) -> Result<Vec<u8>, ApiError> {
        let path = format!(
            "{}/root.json{}",
            self.repo(),
            if prod { "?production=1" } else { "" }
        );
        Ok(self.get(&path)?.body.to_vec())
    }

    /// `GET R/{N}.root.json[?production=1]`: root version `n`, or `None` on 404.
    pub fn root_version(&self, n: u64, prod: bool) -> Result<Option<Vec<u8>>, ApiError> {
        let path = format!(
            "{}/{n}.root.json{}",
            self.repo(),
            if prod { "?production=1" } else { "" }
        );
        Ok(self.get_optional(&path)?.map(|r| r.body.to_vec()))
    }

    /// `GET R/root/updates`: the transaction state, raw and parsed.
    pub fn updates(&self) -> Result<(Vec<u8>, UpdatesState), ApiError> {
        let path = format!("{}/root/updates", self.repo());
        let resp = self.get(&path)?;
        let state: UpdatesState = self.decode("GET", &path, &resp.body)?;
        Ok((resp.body.to_vec(), state))
    }

    /// `POST R/root/updates`: starts a transaction.
    pub fn init(
        &self,
        message: &str,
        first_time: bool,
        shortcut: bool,
    ) -> Result<InitResponse, ApiError> {
        let path = format!("{}/root/updates", self.repo());
        let body =
            serde_json::json!({"message": message, "first-time": first_time, "shortcut": shortcut});
        let resp = self.send(Method::POST, &path, Some(body.to_string().as_bytes()))?;
        InitResponse::parse(&resp.body).map_err(|detail| ApiError::Decode {
            method: "POST".into(),
            url: format!("{}{}", self.base, path),
            detail,
        })
    }

    /// `PUT R/root/updates` with a prepared body (sent once, never retried).
    pub fn put_updates(&self, body: &[u8]) -> Result<(), ApiError> {
        let path = format!("{}/root/updates", self.repo());
        self.send(Method::PUT, &path, Some(body)).map(|_| ())
    }

    /// `POST R/root/updates/gen-online-keys`.
    pub fn gen_online_keys(
        &self,
        txid: &str,
        key_type: &str,
        roles: &[String],
    ) -> Result<(), ApiError> {
        let path = format!("{}/root/updates/gen-online-keys", self.repo());
        let mut body = serde_json::Map::new();
        body.insert("txid".into(), Value::String(txid.to_string()));
        body.insert("key-type".into(), Value::String(key_type.to_string()));
        for r in roles {
            body.insert(r.clone(), Value::Bool(true));
        }
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        self.send(Method::POST, &path, Some(&bytes)).map(|_| ())
    }

    /// `POST R/root/updates/apply`.
    pub fn apply(&self, txid: &str) -> Result<(), ApiError> {
        let path = format!("{}/root/updates/apply", self.repo());
        let body = serde_json::json!({ "txid": txid }).to_string();
        self.send(Method::POST, &path, Some(body.as_bytes()))
            .map(|_| ())
    }

    /// `POST R/root/updates/cancel` (no body).
    pub fn cancel(&self) -> Result<(), ApiError> {
        let path = format!("{}/root/updates/cancel", self.repo());
        self.send(Method::POST, &path, None).map(|_| ())
    }

    /// `GET /ota/factories/{F}/users/self/`: the caller's polis-id.
    pub fn polis_id(&self) -> Result<String, ApiError> {
        let path = "/ota/factories/".to_string() + &self.factory + "/users/self/";
        let resp = self.get(&path)?;
        #[derive(Deserialize)]
        struct User {
            #[serde(rename = "polis-id", default)]
            polis_id: Option<String>,
        }
        let user: User = self.decode("GET", &path, &resp.body)?;
        user.polis_id
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ApiError::Decode {
                method: "GET".into(),
                url: format!("{}{}", self.base, path),
                detail: "no polis-id in the answer".into(),
            })
    }

    /// `GET prod-targets/?tag=a,b` (empty list = all tags); `None` on 404 (no production targets).
    pub fn prod_targets(
        &self,
        tags: &[String],
    ) -> Result<Option<BTreeMap<String, Box<RawValue>>>, ApiError> {
        let path = format!(
            "{}/prod-targets/?tag={}",
            self.factories(),
            escape(&tags.join(","))
        );
        self.get_map(&path)
    }

    /// `GET wave-targets/?name=a,b` (empty list = all active waves); `None` on 404.
    pub fn wave_targets(
        &self,
        names: &[String],
    ) -> Result<Option<BTreeMap<String, Box<RawValue>>>, ApiError> {
        let path = format!(
            "{}/wave-targets/?name={}",
            self.factories(),
            escape(&names.join(","))
        );
        self.get_map(&path)
    }

    fn get_map(&self, path: &str) -> Result<Option<BTreeMap<String, Box<RawValue>>>, ApiError> {
        match self.get_optional(path)? {
            None => Ok(None),
            Some(resp) => {
                let map: Option<BTreeMap<String, Box<RawValue>>> =
                    self.decode("GET", path, &resp.body)?;
                Ok(Some(map.unwrap_or_default()))
            }
        }
    }

    /// `GET ci-targets.pub`: the online targets public key, as served.
    pub fn ci_targets_pub(&self) -> Result<Vec<u8>, ApiError> {
        let path = format!("{}/ci-targets.pub", self.factories());
        Ok(self.get(&path)?.body.to_vec())
    }

    /// `GET targets/?version=N`: CI targets of a build version (name → target, raw).
    pub fn targets_of_version(
        &self,
        version: &str,
    ) -> Result<BTreeMap<String, Box<RawValue>>, ApiError> {
        let path = format!("{}/targets/?version={}", self.factories(), escape(version));
        let resp = self.get(&path)?;
        let map: Option<BTreeMap<String, Box<RawValue>>> = self.decode("GET", &path, &resp.body)?;
        Ok(map.unwrap_or_default())
    }

    /// `POST waves/` with a prepared body (sent once).
    pub fn create_wave(&self, body: &[u8]) -> Result<(), ApiError> {
        let path = format!("{}/waves/", self.factories());
        self.send(Method::POST, &path, Some(body)).map(|_| ())
    }

    /// `POST waves/{name}/complete/` (sent once): the wave's targets become the tag's
    /// production targets.
    pub fn complete_wave(&self, name: &str) -> Result<(), ApiError> {
        let path = format!("{}/waves/{}/complete/", self.factories(), escape(name));
        self.send(Method::POST, &path, None).map(|_| ())
    }

    /// `POST waves/{name}/cancel/` (sent once).
    pub fn cancel_wave(&self, name: &str) -> Result<(), ApiError> {
        let path = format!("{}/waves/{}/cancel/", self.factories(), escape(name));
        self.send(Method::POST, &path, None).map(|_| ())
    }

    /// `GET waves/{name}/?show-targets=1`: the wave with its targets document as served, or
    /// `None` on 404.
    pub fn wave(&self, name: &str) -> Result<Option<Wave>, ApiError> {
        let path = format!(
            "{}/waves/{}/?show-targets=1",
            self.factories(),
            escape(name)
        );
        match self.get_optional(&path)? {
            None => Ok(None),
            Some(resp) => {
                let w: WaveAnswer = self.decode("GET", &path, &resp.body)?;
                Ok(Some(Wave {
                    version: match w.version {
                        Value::String(s) => s,
                        other => other.to_string(),
                    },
                    name: w.name,
                    tag: w.tag,
                    status: w.status,
                    targets: Box::<str>::from(w.targets).into_string().into_bytes(),
                }))
            }
        }
    }

    /// `POST waves/{name}/sign/` with `{"signatures": [...]}` (sent once): more offline
    /// signatures of an existing wave's targets.
    pub fn sign_wave(&self, name: &str, signatures: &[Signature]) -> Result<(), ApiError> {
        let path = format!("{}/waves/{}/sign/", self.factories(), escape(name));
        let body = serde_json::to_vec(&serde_json::json!({ "signatures": signatures }))
            .map_err(|e| ApiError::Request(e.to_string()))?;
        self.send(Method::POST, &path, Some(&body)).map(|_| ())
    }

    /// `POST waves/{name}/rollout/` with a prepared body (sent once): the devices it was (or,
    /// with `dry-run`, would be) rolled out to.
    pub fn rollout_wave(&self, name: &str, body: &[u8]) -> Result<RolloutResult, ApiError> {
        let path = format!("{}/waves/{}/rollout/", self.factories(), escape(name));
        let resp = self.send(Method::POST, &path, Some(body))?;
        self.decode("POST", &path, &resp.body)
    }

    /// `GET waves/?limit=&page=[&status=][&tag=]`.
    pub fn waves(
        &self,
        limit: u32,
        page: u32,
        status: Option<&str>,
        tag: Option<&str>,
    ) -> Result<WaveList, ApiError> {
        let mut path = format!("{}/waves/?limit={limit}&page={page}", self.factories());
        if let Some(s) = status {
            path.push_str(&format!("&status={}", escape(s)));
        }
        if let Some(t) = tag {
            path.push_str(&format!("&tag={}", escape(t)));
        }
        let resp = self.get(&path)?;
        self.decode("GET", &path, &resp.body)
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

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `current` / `updated` of the transaction state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RootPair {
    /// The CI root, JSON-encoded inside a string; empty = absent.
    #[serde(rename = "ci-root", default, deserialize_with = "null_default")]
    pub ci_root: String,
    /// The production root, JSON-encoded inside a string; empty = absent.
    #[serde(rename = "prod-root", default, deserialize_with = "null_default")]
    pub prod_root: String,
    /// Lower-case role → online key id.
    #[serde(rename = "online-keys", default, deserialize_with = "null_default")]
    pub online_keys: BTreeMap<String, String>,
}

/// An amendment or issue reported by the server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// Server-defined kind.
    #[serde(default, deserialize_with = "null_default")]
    pub kind: String,
    /// Text for people.
    #[serde(default, deserialize_with = "null_default")]
    pub message: String,
    /// Server-defined arguments.
    #[serde(default)]
    pub args: Value,
}

/// `issues` of the transaction state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Issues {
    /// Must be fixed before apply.
    #[serde(default, deserialize_with = "null_default")]
    pub errors: Vec<Issue>,
    /// Recommendations.
    #[serde(default, deserialize_with = "null_default")]
    pub warnings: Vec<Issue>,
}

/// The answer of `GET R/root/updates`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdatesState {
    /// `NONE`, `STARTED` or `APPLYING`.
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    /// Whether the transaction is the first-time rotation.
    #[serde(rename = "first-time", default, deserialize_with = "null_default")]
    pub first_time: bool,
    /// The published roots.
    #[serde(default, deserialize_with = "null_default")]
    pub current: RootPair,
    /// The staged roots.
    #[serde(default, deserialize_with = "null_default")]
    pub updated: RootPair,
    /// Who changed the transaction when.
    #[serde(rename = "change-meta", default)]
    pub change_meta: Value,
    /// The staged changes.
    #[serde(default, deserialize_with = "null_default")]
    pub amendments: Vec<Issue>,
    /// Problems and recommendations.
    #[serde(default, deserialize_with = "null_default")]
    pub issues: Issues,
}

/// The status values of a transaction.
pub mod status {
    /// No transaction.
    pub const NONE: &str = "NONE";
    /// A transaction is open for changes.
    pub const STARTED: &str = "STARTED";
    /// The transaction is being applied.
    pub const APPLYING: &str = "APPLYING";
}

/// The answer of `POST R/root/updates`.
pub struct InitResponse {
    /// The transaction id.
    pub txid: String,
    /// `first_root.sec` exactly as received (first-time only); zeroized on drop.
    pub first_root_sec: Option<Zeroizing<Vec<u8>>>,
    /// `first_root.pub` exactly as received (first-time only).
    pub first_root_pub: Option<Vec<u8>>,
}

impl fmt::Debug for InitResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitResponse")
            .field("txid", &self.txid)
            .field(
                "first_root_sec",
                &self.first_root_sec.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "first_root_pub",
                &self
                    .first_root_pub
                    .as_ref()
                    .map(|p| String::from_utf8_lossy(p)),
            )
            .finish()
    }
}

impl InitResponse {
    /// Parses the init answer, keeping the key values byte-for-byte.
    pub fn parse(body: &[u8]) -> Result<InitResponse, String> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(default)]
            txid: Option<String>,
            #[serde(rename = "first_root.sec", borrow, default)]
            sec: Option<&'a RawValue>,
            #[serde(rename = "first_root.pub", borrow, default)]
            public: Option<&'a RawValue>,
        }
        let raw: Raw<'_> =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
        let keep = |v: Option<&RawValue>| {
            v.map(|v| v.get())
                .filter(|s| *s != "null")
                .map(|s| s.as_bytes().to_vec())
        };
        Ok(InitResponse {
            txid: raw.txid.unwrap_or_default(),
            first_root_sec: keep(raw.sec).map(Zeroizing::new),
            first_root_pub: keep(raw.public),
        })
    }
}

/// A wave with its targets (`GET waves/{name}/?show-targets=1`).
#[derive(Clone, Debug)]
pub struct Wave {
    /// Wave name.
    pub name: String,
    /// Version, as the API wrote it (a string, or a number turned into one).
    pub version: String,
    /// Production tag.
    pub tag: String,
    /// `active`, `complete` or `canceled`.
    pub status: String,
    /// The targets document (`{"signed": ..., "signatures": [...]}`) exactly as served.
    pub targets: Vec<u8>,
}

/// The members of a wave answer the courier reads.
#[derive(Deserialize)]
struct WaveAnswer {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: Value,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    status: String,
    targets: Box<RawValue>,
}

/// The answer of `POST waves/{name}/rollout/` (the wave's members are not needed).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RolloutResult {
    /// How many devices it was (or would be) rolled out to.
    #[serde(rename = "device-num", default)]
    pub device_num: u64,
    /// Their UUIDs, when asked for (`None` when the list is too long to return).
    #[serde(rename = "device-uuids", default)]
    pub device_uuids: Option<Vec<String>>,
    /// Their names, when asked for.
    #[serde(rename = "device-names", default)]
    pub device_names: Option<Vec<String>>,
}

/// The answer of `GET waves/`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WaveList {
    /// The waves of this page.
    #[serde(default, deserialize_with = "null_default")]
    pub waves: Vec<Value>,
    /// Total number of waves matching.
    #[serde(default)]
    pub total: u64,
    /// URL of the next page, if any.
    #[serde(default)]
    pub next: Option<String>,
}

/// A progress bar on stderr, drawn only when stderr is a terminal and not in verbose mode.
pub fn progress_bar(len: u64, message: &str, verbose: bool) -> indicatif::ProgressBar {
    if verbose || !std::io::stderr().is_terminal() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{GlobalOpts, Token};
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

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

    /// A tiny HTTP server answering each connection with the next canned response and
    /// recording the request heads.
    fn serve(responses: Vec<&'static str>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for resp in responses {
                let Ok((mut sock, _)) = listener.accept() else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head and any body announced by Content-Length.
                loop {
                    let n = sock.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).into_owned());
                if resp == "DROP" {
                    drop(sock);
                    continue;
                }
                let _ = sock.write_all(resp.as_bytes());
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn client(url: &str, attempts: u32) -> Client {
        let mut settings = crate::config::resolve(
            &GlobalOpts {
                factory: Some("acme".into()),
                api_url: Some(url.into()),
                ..Default::default()
            },
            &|_: &str| None,
        )
        .unwrap();
        settings.token = Some(Token::new("tok-123"));
        Client::new(
            &settings,
            ClientOptions {
                verbose: false,
                timeout: Duration::from_secs(5),
                retry: RetryPolicy {
                    attempts,
                    base_delay: Duration::from_millis(5),
                    max_delay: Duration::from_millis(20),
                },
            },
        )
        .unwrap()
    }

    const OK_ROOT: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    const UNAVAILABLE: &str =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    const CONFLICT: &str = "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: 29\r\nConnection: close\r\n\r\n{\"message\":\"already started\"}";

    #[test]
    fn get_is_retried_until_it_succeeds() {
        let (url, seen) = serve(vec![UNAVAILABLE, "DROP", OK_ROOT]);
        let c = client(&url, 4);
        assert_eq!(c.root(false).unwrap(), b"{}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        let head = seen[0].to_lowercase();
        assert!(head.starts_with("get /ota/repo/acme/api/v1/user_repo/root.json http/1.1"));
        assert!(head.contains("osf-token: tok-123"));
        assert!(head.contains("user-agent: offline-tuf-courier/"));
    }

    #[test]
    fn get_gives_up_after_the_last_attempt() {
        let (url, seen) = serve(vec![UNAVAILABLE, UNAVAILABLE]);
        let err = client(&url, 2).root(true).unwrap_err();
        assert_eq!(err.status(), Some(503));
        assert_eq!(err.exit_code(), ExitCode::Network);
        assert_eq!(seen.lock().unwrap().len(), 2);
        assert!(seen.lock().unwrap()[0].contains("root.json?production=1"));
    }

    #[test]
    fn refusals_are_not_retried() {
        let (url, seen) = serve(vec![CONFLICT, OK_ROOT]);
        let err = client(&url, 4).root(false).unwrap_err();
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
        let c = client(&url, 4);
        assert_eq!(c.put_updates(b"{}").unwrap_err().status(), Some(503));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].starts_with("PUT /ota/repo/acme/api/v1/user_repo/root/updates"));
        assert!(seen[0]
            .to_lowercase()
            .contains("content-type: application/json"));
    }

    #[test]
    fn cancel_has_no_body_and_network_errors_are_reported() {
        let (url, seen) = serve(vec![OK_ROOT]);
        let c = client(&url, 1);
        c.cancel().unwrap();
        let head = seen.lock().unwrap()[0].to_lowercase();
        assert!(!head.contains("content-type"), "{head}");
        // Nothing listens on the old port after the server thread ended: a network error.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = client(&format!("http://{addr}"), 2)
            .root(false)
            .unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::Network);
        assert!(
            err.to_string().contains("network error during GET"),
            "{err}"
        );
    }

    #[test]
    fn not_found_is_none_where_allowed() {
        const NOT_FOUND: &str =
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let (url, seen) = serve(vec![NOT_FOUND, NOT_FOUND]);
        let c = client(&url, 3);
        assert!(c.prod_targets(&["prod uction".into()]).unwrap().is_none());
        assert!(c.root_version(7, true).unwrap().is_none());
        let seen = seen.lock().unwrap();
        assert!(seen[0].starts_with("GET /ota/factories/acme/prod-targets/?tag=prod%20uction HTTP"));
        assert!(seen[1]
            .starts_with("GET /ota/repo/acme/api/v1/user_repo/7.root.json?production=1 HTTP"));
    }

    #[test]
    fn init_response_keeps_key_bytes() {
        let r = InitResponse::parse(
            br#"{"txid":"t1","first_root.sec":{"keytype":"ED25519","keyval":{"private":"ab"}},"first_root.pub":{"keytype":"ED25519","keyval":{"public":"cd"}}}"#,
        )
        .unwrap();
        assert_eq!(r.txid, "t1");
        assert_eq!(
            r.first_root_sec.as_deref().map(|v| v.as_slice()),
            Some(&br#"{"keytype":"ED25519","keyval":{"private":"ab"}}"#[..])
        );
        assert!(!format!("{r:?}").contains("\"ab\""));
        let r = InitResponse::parse(br#"{"txid":"t2","first_root.sec":null}"#).unwrap();
        assert!(r.first_root_sec.is_none() && r.first_root_pub.is_none());
    }

    #[test]
    fn updates_state_tolerates_nulls() {
        let s: UpdatesState = serde_json::from_str(
            r#"{"status":"NONE","current":{"ci-root":"{}","prod-root":null,"online-keys":null},"updated":null,"amendments":null,"issues":{"errors":null,"warnings":[{"message":"w"}]}}"#,
        )
        .unwrap();
        assert_eq!(s.status, status::NONE);
        assert_eq!(s.current.ci_root, "{}");
        assert!(s.updated.ci_root.is_empty());
        assert_eq!(s.issues.warnings[0].message, "w");
    }

    #[test]
    fn names_are_checked_and_escaped() {
        assert!(check_factory_name("acme-1").is_ok());
        assert!(check_factory_name("../x").is_err());
        assert!(check_factory_name("").is_err());
        assert_eq!(escape("a,b c/d"), "a,b%20c%2Fd");
    }
}
