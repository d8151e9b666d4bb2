//! The Foundries.io API client: the calls fioctl makes for TUF key management and waves.
//!
//! * [`transport`] — the HTTP client: authentication headers, timeouts, retries of
//!   idempotent requests, error bodies and exit codes, request logs, progress;
//! * [`endpoints`] — one method of [`Client`] per Factory endpoint, with fioctl's paths;
//! * [`split`] — a JSON object of documents read member by member as it arrives;
//! * [`types`] — the JSON the API answers and the bodies the courier sends.
//!
//! Everything callers use is re-exported here (`crate::api::Client`, `crate::api::Wave`, …).

pub mod endpoints;
pub mod split;
pub mod transport;
pub mod types;

pub use endpoints::RawDocs;
pub use transport::{
    check_factory_name, decode_error_body, escape, is_idempotent, one_line, user_agent, ApiError,
    ApiResponse, Client, ClientOptions, RetryPolicy,
};
pub use types::{
    InitResponse, RolloutOptions, RolloutResult, Wave, WaveCreate, WaveList, WaveSign, WaveTargets,
};

/// A tiny HTTP server for the client's unit tests: it answers each connection with the next
/// canned response and records the requests (head and body).
#[cfg(test)]
pub(crate) mod test_server {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::{Client, ClientOptions, RetryPolicy};
    use crate::config::{GlobalOpts, Token};
    use crate::output::{Captured, Output};

    /// `200 OK` with the body `{}`.
    pub const OK_ROOT: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    /// `503` without a body.
    pub const UNAVAILABLE: &str =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    /// `409` with a JSON reason.
    pub const CONFLICT: &str = "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: 29\r\nConnection: close\r\n\r\n{\"message\":\"already started\"}";
    /// `404` without a body.
    pub const NOT_FOUND: &str =
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

    /// Serves `responses` in order (`"DROP"` closes the connection without an answer);
    /// returns the base URL and the requests seen.
    pub fn serve(responses: Vec<&'static str>) -> (String, Arc<Mutex<Vec<String>>>) {
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

    /// A client of factory `acme` at `url` with token `tok-123`, `attempts` tries per GET
    /// and short delays; its logs are captured.
    pub fn client(url: &str, attempts: u32) -> (Client, Captured) {
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
        let (out, captured) = Output::captured();
        let client = Client::new(
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
            out,
        )
        .unwrap();
        (client, captured)
    }
}
