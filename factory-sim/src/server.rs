//! The accept loop (hyper HTTP/1.1 per connection, so a fault can drop a connection) and
//! [`SimServer`], the in-process handle tests use.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::error::SimError;
use super::faults::{FaultConfig, FaultKind, RequestRecord};
use super::inspect::FactoryView;
use super::routes::{self, ConnCtl, Sim};

/// How the server is run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// State directory (made by [`init_factory`](super::init_factory) / `factory-sim init`).
    pub state_dir: PathBuf,
    /// Address to listen on (`127.0.0.1:0` = an ephemeral port).
    pub listen: SocketAddr,
    /// Random fault injection, if any.
    pub faults: Option<FaultConfig>,
    /// Log every request to stderr.
    pub log: bool,
}

impl SimConfig {
    /// Listen on an ephemeral loopback port, no faults; logging when `FACTORY_SIM_LOG` is set.
    pub fn new(state_dir: impl Into<PathBuf>) -> SimConfig {
        SimConfig {
            state_dir: state_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            faults: None,
            log: std::env::var_os("FACTORY_SIM_LOG").is_some(),
        }
    }
}

/// Serves connections from `listener` until `shutdown` resolves, then lets open connections
/// finish their current request (at most 5 s).
pub(crate) async fn serve(
    sim: Arc<Sim>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let app = routes::router(sim.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_connection(app.clone(), stream, stop_rx.clone()));
                }
                Err(e) => {
                    if sim.log {
                        eprintln!("factory-sim: accept failed: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    let _ = stop_tx.send(true);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        conns.abort_all();
    }
}

async fn serve_connection(app: Router, stream: TcpStream, mut stop: watch::Receiver<bool>) {
    let abort = Arc::new(Notify::new());
    let ctl = ConnCtl {
        abort: abort.clone(),
    };
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ctl.clone());
        app.clone().oneshot(req)
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        // Dropping the connection closes the socket without writing a response.
        _ = abort.notified() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = abort.notified() => {}
            }
        }
    }
}

/// A simulator running in this process on its own thread and tokio runtime; usable from
/// plain `#[test]` functions. Dropping it stops it.
#[derive(Debug)]
pub struct SimServer {
    url: String,
    addr: SocketAddr,
    dir: PathBuf,
    sim: Arc<Sim>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimServer {
    /// Starts a server on an ephemeral loopback port for the factories of `state_dir`.
    pub fn start(state_dir: impl AsRef<Path>) -> Result<SimServer, SimError> {
        SimServer::start_with(SimConfig::new(state_dir.as_ref()))
    }

    /// Starts a server with explicit settings.
    pub fn start_with(cfg: SimConfig) -> Result<SimServer, SimError> {
        let sim = Arc::new(Sim::load(
            cfg.state_dir.clone(),
            cfg.faults.clone(),
            cfg.log,
        )?);
        let listener = std::net::TcpListener::bind(cfg.listen)
            .map_err(|e| SimError::io(format!("binding {}", cfg.listen), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| SimError::io("configuring the listener", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| SimError::io("reading the listen address", e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("factory-sim-worker")
            .enable_all()
            .build()
            .map_err(|e| SimError::io("starting the tokio runtime", e))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let served = sim.clone();
        let thread = std::thread::Builder::new()
            .name("factory-sim".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            serve(served, listener, async { drop(stopped.await) }).await
                        }
                        Err(e) => eprintln!("factory-sim: cannot use the listener: {e}"),
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(5));
            })
            .map_err(|e| SimError::io("spawning the server thread", e))?;
        Ok(SimServer {
            url: format!("http://{addr}"),
            addr,
            dir: cfg.state_dir,
            sim,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces the random fault injection settings (`None` = off).
    pub fn set_faults(&self, cfg: Option<FaultConfig>) {
        self.sim.faults().set(cfg);
    }

    /// Queues a one-shot fault for the next request whose path contains `path_contains`
    /// (any request when `None`).
    pub fn inject_fault(&self, kind: FaultKind, path_contains: Option<&str>) {
        self.sim
            .faults()
            .queue(kind, path_contains.map(String::from));
    }

    /// Number of faults injected so far.
    pub fn faults_injected(&self) -> u64 {
        self.sim.faults().injected()
    }

    /// The requests received since the last call (method, path, injected fault), oldest
    /// first.
    pub fn take_requests(&self) -> Vec<RequestRecord> {
        self.sim.faults().take_journal()
    }

    /// A snapshot of a factory's committed state.
    pub fn factory(&self, name: &str) -> Result<FactoryView, SimError> {
        FactoryView::load(&self.dir, name)
    }

    /// Stops the server and waits for it (open requests get up to 5 s).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
