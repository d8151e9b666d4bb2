//! HTTP routing: exact paths of `foundries-api.md` §4 and §9, token authentication, the
//! fault and logging middleware. Handlers are thin: authenticate, then run the operation on
//! the locked factory in a blocking task.

use std::collections::HashMap;
use std::future::Future as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use shared::metadata::Timestamp;

use tokio::io::AsyncReadExt as _;
use tokio::sync::Notify;
use tokio_util::io::ReaderStream;

use super::error::{ApiError, SimError};
use super::faults::{FaultConfig, FaultKind, Faults};
use super::reply::Reply;
use super::state::{lock, lock_read, Caller, Factory, Registry, UserRecord};
use super::{repo, updates, waves};

/// Shared server state.
#[derive(Debug)]
pub(crate) struct Sim {
    pub registry: Registry,
    pub faults: Mutex<Faults>,
    pub log: bool,
}

impl Sim {
    /// Loads every factory of `dir`.
    pub fn load(dir: PathBuf, faults: Option<FaultConfig>, log: bool) -> Result<Sim, SimError> {
        let registry = Registry::load(&dir)?;
        if registry.factories.is_empty() {
            return Err(SimError::Invalid(format!(
                "no factory in {}: create one with `factory-sim init --state {} --factory NAME --token TOKEN`",
                dir.display(),
                dir.display()
            )));
        }
        Ok(Sim {
            registry,
            faults: Mutex::new(Faults::new(faults)),
            log,
        })
    }

    /// The fault state.
    pub fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&self, line: impl FnOnce() -> String) {
        if self.log {
            eprintln!("factory-sim: {}", line());
        }
    }
}

/// Shared state of the router.
pub(crate) type AppState = Arc<Sim>;

/// Per-connection control, put into every request's extensions by the accept loop.
#[derive(Clone, Debug)]
pub(crate) struct ConnCtl {
    /// Notified to drop the connection without a response.
    pub abort: Arc<Notify>,
}

/// Marker extension: the `apply-interrupt` fault hit this request.
#[derive(Clone, Copy, Debug)]
struct InterruptApply;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, st)
            .await
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let factory = params
            .get("factory")
            .map(String::as_str)
            .unwrap_or_default();
        st.registry.authenticate(&parts.headers, factory)
    }
}

fn query(uri: &Uri) -> Result<HashMap<String, String>, ApiError> {
    Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))
}

fn truthy(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key)
        .is_some_and(|v| !matches!(v.as_str(), "0" | "false"))
}

/// Runs `op` on the caller's locked factory in a blocking task.
async fn run<F>(caller: Caller, op: F) -> Response
where
    F: FnOnce(&mut Factory, &UserRecord, &Timestamp) -> Result<Reply, ApiError> + Send + 'static,
{
    let result = tokio::task::spawn_blocking(move || {
        let mut f = lock(&caller.factory);
        op(&mut f, &caller.user, &Timestamp::now())
    })
    .await;
    match result {
        Ok(Ok(reply)) => reply.into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(format!("request handler failed: {e}")).into_response(),
    }
}

/// Like [`run`] for a request that only reads the factory (shared with other readers).
async fn run_read<F>(caller: Caller, op: F) -> Response
where
    F: FnOnce(&Factory, &Timestamp) -> Result<Reply, ApiError> + Send + 'static,
{
    let result = tokio::task::spawn_blocking(move || {
        let f = lock_read(&caller.factory);
        op(&f, &Timestamp::now())
    })
    .await;
    match result {
        Ok(Ok(reply)) => reply.into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(format!("request handler failed: {e}")).into_response(),
    }
}

/// Builds the router with all endpoints and middleware.
pub(crate) fn router(sim: AppState) -> Router {
    let r = "/ota/repo/{factory}/api/v1/user_repo";
    let fa = "/ota/factories/{factory}";
    Router::new()
        .route(&format!("{r}/{{file}}"), get(root_file))
        .route(
            &format!("{r}/root/updates"),
            get(updates_get).post(updates_init).put(updates_put),
        )
        .route(
            &format!("{r}/root/updates/gen-online-keys"),
            post(updates_gen),
        )
        .route(&format!("{r}/root/updates/apply"), post(updates_apply))
        .route(&format!("{r}/root/updates/cancel"), post(updates_cancel))
        .route(&format!("{fa}/users/self/"), get(users_self))
        .route(&format!("{fa}/prod-targets/"), get(prod_targets))
        .route(&format!("{fa}/wave-targets/"), get(wave_targets))
        .route(&format!("{fa}/ci-targets.pub"), get(ci_targets_pub))
        .route(&format!("{fa}/targets/"), get(ci_targets))
        .route(&format!("{fa}/waves/"), get(waves_list).post(waves_create))
        .route(&format!("{fa}/waves/{{wave}}/"), get(wave_get))
        .route(&format!("{fa}/waves/{{wave}}/sign/"), post(wave_sign))
        .route(&format!("{fa}/waves/{{wave}}/rollout/"), post(wave_rollout))
        .route(
            &format!("{fa}/waves/{{wave}}/complete/"),
            post(wave_complete),
        )
        .route(&format!("{fa}/waves/{{wave}}/cancel/"), post(wave_cancel))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(1 << 30))
        .layer(middleware::from_fn_with_state(sim.clone(), faults_mw))
        .layer(middleware::from_fn_with_state(sim.clone(), log_mw))
        .with_state(sim)
}

async fn root_file(caller: Caller, Path(p): Path<HashMap<String, String>>, uri: Uri) -> Response {
    let file = p.get("file").cloned().unwrap_or_default();
    let production = match query(&uri) {
        Ok(q) => q.get("production").is_some_and(|v| v == "1" || v == "true"),
        Err(e) => return e.into_response(),
    };
    run_read(caller, move |f, _| repo::root_file(f, &file, production)).await
}

async fn updates_get(caller: Caller) -> Response {
    run_read(caller, updates::get).await
}

async fn updates_init(caller: Caller, body: Bytes) -> Response {
    run(caller, move |f, u, now| updates::init(f, u, &body, now)).await
}

async fn updates_put(caller: Caller, body: Bytes) -> Response {
    run(caller, move |f, u, now| updates::put(f, u, &body, now)).await
}

async fn updates_gen(caller: Caller, body: Bytes) -> Response {
    run(caller, move |f, u, now| {
        updates::gen_online_keys(f, u, &body, now)
    })
    .await
}

async fn updates_apply(
    caller: Caller,
    interrupt: Option<Extension<InterruptApply>>,
    body: Bytes,
) -> Response {
    let interrupt = interrupt.is_some();
    run(caller, move |f, u, now| {
        updates::apply(f, u, &body, interrupt, now)
    })
    .await
}

async fn updates_cancel(caller: Caller) -> Response {
    run(caller, |f, _, _| updates::cancel(f)).await
}

async fn users_self(caller: Caller) -> Response {
    repo::users_self(&caller.user).into_response()
}

async fn prod_targets(caller: Caller, uri: Uri) -> Response {
    match query(&uri) {
        Ok(q) => run_read(caller, move |f, _| repo::prod_targets(f, &q)).await,
        Err(e) => e.into_response(),
    }
}

async fn wave_targets(caller: Caller, uri: Uri) -> Response {
    match query(&uri) {
        Ok(q) => run_read(caller, move |f, _| repo::wave_targets(f, &q)).await,
        Err(e) => e.into_response(),
    }
}

async fn ci_targets_pub(caller: Caller) -> Response {
    run_read(caller, |f, _| repo::ci_targets_pub(f)).await
}

async fn ci_targets(caller: Caller, uri: Uri) -> Response {
    match query(&uri) {
        Ok(q) => run_read(caller, move |f, _| repo::ci_targets(f, &q)).await,
        Err(e) => e.into_response(),
    }
}

async fn waves_list(caller: Caller, uri: Uri) -> Response {
    let path = uri.path().to_string();
    match query(&uri) {
        Ok(q) => run_read(caller, move |f, _| waves::list(f, &q, &path)).await,
        Err(e) => e.into_response(),
    }
}

async fn waves_create(caller: Caller, body: Bytes) -> Response {
    run(caller, move |f, u, now| waves::create(f, u, &body, now)).await
}

fn wave_name(p: &HashMap<String, String>) -> String {
    p.get("wave").cloned().unwrap_or_default()
}

async fn wave_get(caller: Caller, Path(p): Path<HashMap<String, String>>, uri: Uri) -> Response {
    let name = wave_name(&p);
    match query(&uri) {
        Ok(q) => {
            let show = truthy(&q, "show-targets");
            run_read(caller, move |f, _| waves::get(f, &name, show)).await
        }
        Err(e) => e.into_response(),
    }
}

async fn wave_sign(
    caller: Caller,
    Path(p): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let name = wave_name(&p);
    run(caller, move |f, u, now| {
        waves::sign(f, u, &name, &body, now)
    })
    .await
}

async fn wave_rollout(
    caller: Caller,
    Path(p): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let name = wave_name(&p);
    run(caller, move |f, u, now| {
        waves::rollout(f, u, &name, &body, now)
    })
    .await
}

async fn wave_complete(caller: Caller, Path(p): Path<HashMap<String, String>>) -> Response {
    let name = wave_name(&p);
    run(caller, move |f, u, now| waves::complete(f, u, &name, now)).await
}

async fn wave_cancel(caller: Caller, Path(p): Path<HashMap<String, String>>) -> Response {
    let name = wave_name(&p);
    run(caller, move |f, u, now| waves::cancel(f, u, &name, now)).await
}

async fn not_found(method: Method, uri: Uri) -> Response {
    ApiError::not_found(format!("Not found: {method} {}", uri.path())).into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {method} is not allowed on {}", uri.path()),
    )
    .into_response()
}

/// Logs each request to stderr (when logging is on).
async fn log_mw(State(sim): State<AppState>, req: Request, next: Next) -> Response {
    if !sim.log {
        return next.run(req).await;
    }
    let start = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let resp = next.run(req).await;
    let fault = resp
        .extensions()
        .get::<FaultKind>()
        .map(|k| format!(" [fault {k}]"))
        .unwrap_or_default();
    sim.log(|| {
        format!(
            "{method} {uri} -> {} ({} ms){fault}",
            resp.status().as_u16(),
            start.elapsed().as_millis()
        )
    });
    resp
}

/// Injects faults (see [`super::faults`] for when each kind acts).
async fn faults_mw(State(sim): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let decided = sim.faults().decide_and_record(method.as_str(), &path);
    let Some((kind, delay)) = decided else {
        return next.run(req).await;
    };
    let ctl = req.extensions().get::<ConnCtl>().cloned();
    let drop_connection = |ctl: Option<ConnCtl>| {
        sim.log(|| format!("{method} {path} -> connection dropped [fault {kind}]"));
        if let Some(ctl) = ctl {
            ctl.abort.notify_one();
        }
    };
    let mut resp = match kind {
        FaultKind::Status500 => {
            ApiError::internal("Internal server error (simulated fault)").into_response()
        }
        FaultKind::Reset => {
            drop_connection(ctl);
            return std::future::pending().await;
        }
        FaultKind::ResetAfter => {
            let _ = next.run(req).await;
            drop_connection(ctl);
            return std::future::pending().await;
        }
        FaultKind::Delay => {
            tokio::time::sleep(delay).await;
            next.run(req).await
        }
        FaultKind::ApplyInterrupt => {
            req.extensions_mut().insert(InterruptApply);
            next.run(req).await
        }
        FaultKind::Truncate => truncate(next.run(req).await).await,
    };
    resp.extensions_mut().insert(kind);
    resp
}

/// A response whose body stops halfway through its announced Content-Length. The body pauses
/// before it ends, so the head and the first half are flushed; then hyper finds the body short
/// and closes the connection.
async fn truncate(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let announced = bytes.len().max(16);
    let half = bytes.slice(0..bytes.len() / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(announced));
    let pause = Box::pin(tokio::time::sleep(std::time::Duration::from_millis(100)));
    let reader = std::io::Cursor::new(half).chain(PausedEof(pause));
    Response::from_parts(parts, Body::from_stream(ReaderStream::new(reader)))
}

/// A reader that reaches end-of-file only after a pause.
struct PausedEof(std::pin::Pin<Box<tokio::time::Sleep>>);

impl tokio::io::AsyncRead for PausedEof {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        _buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.0.as_mut().poll(cx).map(Ok)
    }
}
