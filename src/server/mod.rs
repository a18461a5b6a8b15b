//! `verbatim serve`: the self-hosted HTTP JSON API (axum on tokio, optional rustls).
//!
//! The server is transport only. Every route calls the same library operation as the CLI
//! (`crate::service`, with `Via::Http(route)` so the audit trail names the route): the access
//! door, the audit and the durability rules are the library's, never re-implemented here. What
//! the server adds is what HTTP needs:
//!
//! * **Who**: bearer tokens, verified once with Argon2id and cached by digest, re-checked for
//!   revocation and expiry on every request ([`auth`]).
//! * **How much**: body limits (JSON and uploads separately, 413), per-token token buckets (429
//!   with `Retry-After`), a bounded Argon2 budget for unknown tokens.
//! * **One error shape**: `{"error": {"code", "message"}}` for every failure ([`ApiError`]),
//!   unknown routes and malformed bodies included.
//! * **State**: the [`Workspace`] holds a SQLite connection and is not `Sync`, so it sits behind a
//!   mutex and all work runs on tokio's blocking pool. The embedding model is loaded once; the
//!   indexes are loaded on first use and kept: an ingest or an erasure through the server
//!   catches them up *in place* (tantivy commits the changes and reloads its reader, the HNSW
//!   graph in memory takes the new vectors), persisting the sequence they cover as the CLI
//!   does, so neither a search nor an ingest reads the graph back from disk. Only a change
//!   another process persisted (a CLI `ingest` or `forget` beside the server) makes them reload.
//!   A second connection serves token checks, so they never wait behind a long ingest.
//! * **Shutdown** (SIGINT / SIGTERM, or [`RunningServer::shutdown`]): stop accepting, let every
//!   request in flight finish — an ingest is acknowledged only after its commit, so none is lost
//!   — wait for the blocking work, return.
//! * **Retention**: when the workspace sets a retention period, it is applied at start-up and
//!   every 24 hours on the same mutex as everything else.

mod auth;
mod door;
mod error;
mod listener;
pub mod openapi;
mod routes;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{oneshot, Semaphore};

pub use error::ApiError;
pub use routes::{Route, ROUTES};

use crate::embed::Embedder;
use crate::index::Indexes;
use crate::workspace::{ServeConfig, Workspace, WorkspaceError};

/// Blocking jobs (requests doing work, retention) that may run at once; shutdown waits for all.
const MAX_WORK: u32 = 1024;
/// How often retention is applied.
const RETENTION_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key is unreadable or does not fit.
    #[error("{path}: {message}")]
    Tls {
        /// The PEM file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The workspace did not open.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// The async runtime could not start.
    #[error("starting the server runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// PEM files for TLS.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Every setting, resolved once as for any command (flags > env > `verbatim.toml` >
    /// defaults): `serve` says where to listen (port 0 picks a free one: see
    /// [`RunningServer::addr`]), with which TLS files and limits; every request's session runs
    /// with them (search defaults, `ask`), so a request gets what the same command would.
    pub settings: crate::settings::Settings,
    /// Shut down gracefully on SIGINT / SIGTERM (the CLI); tests stop the server by its handle.
    pub handle_signals: bool,
    /// The embedding model's folder (its sentiment head serves themes and reports; its profile
    /// gives `ask` its thresholds).
    pub model_dir: Option<PathBuf>,
}

impl ServeOptions {
    /// The TLS files the settings name (both, or none: plain HTTP).
    pub fn tls(&self) -> Option<TlsFiles> {
        let s = &self.settings.serve;
        match (&s.tls_cert.value, &s.tls_key.value) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }
}

/// True when `bind` exposes plain HTTP beyond this machine: tokens and verbatims would cross
/// the network in clear. The CLI prints a loud warning.
pub fn exposed_without_tls(bind: &SocketAddr, tls: bool) -> bool {
    !tls && !bind.ip().is_loopback()
}

/// The workspace and its open indexes.
pub(crate) struct Core {
    pub(crate) ws: Workspace,
    /// Opened on first use, then kept and caught up in place ([`Indexes::refresh`]).
    indexes: Option<Indexes>,
    /// HNSW graphs read from disk so far ([`RunningServer::graph_loads`]).
    graph_loads: Arc<AtomicU64>,
}

impl Core {
    /// The workspace and indexes that cover the store's sequence: opened on first use, then
    /// brought up to date in place when the store moved (module docs).
    pub(crate) fn with_indexes(&mut self) -> Result<(&mut Workspace, &mut Indexes), ApiError> {
        if self.indexes.is_none() {
            let (ix, _) = self.ws.indexes().map_err(ApiError::internal)?;
            self.graph_loads
                .fetch_add(ix.vectors.loads(), Ordering::Relaxed);
            self.indexes = Some(ix);
        }
        let ix = self.indexes.as_mut().expect("opened above");
        let before = ix.vectors.loads();
        let r = ix.refresh(&self.ws.store);
        self.graph_loads
            .fetch_add(ix.vectors.loads() - before, Ordering::Relaxed);
        if let Err(e) = r {
            // Half caught up, perhaps: the next request opens them afresh from disk.
            self.indexes = None;
            return Err(ApiError::internal(e));
        }
        Ok((&mut self.ws, self.indexes.as_mut().expect("kept above")))
    }

    /// Runs `f`, a write (an ingest, an erasure) that brings the open indexes up to the store
    /// itself, in place; counts the graph it may have had to reload. When `f` fails after the
    /// store moved, the indexes are dropped: the next request opens them afresh.
    pub(crate) fn write_with_indexes<T>(
        &mut self,
        f: impl FnOnce(&mut Workspace, &mut Indexes) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let loads = self.graph_loads.clone();
        let (ws, ix) = self.with_indexes()?;
        let before = ix.vectors.loads();
        let r = f(ws, &mut *ix);
        loads.fetch_add(ix.vectors.loads() - before, Ordering::Relaxed);
        if r.is_err() {
            let seq = self.ws.store.seq().ok();
            let ix = self.indexes.as_ref().expect("kept by with_indexes");
            if seq != Some(ix.text.covered()) || seq != Some(ix.vectors.covered()) {
                self.indexes = None;
            }
        }
        r
    }
}

/// What every request shares.
pub(crate) struct Shared {
    core: Mutex<Core>,
    /// A second connection for token checks.
    pub(crate) auth_ws: Mutex<Workspace>,
    pub(crate) embedder: Option<Arc<dyn Embedder>>,
    /// The models every request's session uses (the embedding model loaded once, at start).
    pub(crate) models: crate::service::Models<'static>,
    /// The settings every request's session runs with: the resolved settings the server was
    /// started with, and `ask`'s generator file and thresholds derived from them once.
    pub(crate) settings: crate::service::Settings,
    /// The `ask` generator: `None` until first used, then loaded, or why not (said in every
    /// extractive answer).
    #[allow(clippy::type_complexity)]
    pub(crate) generator: Mutex<Option<Result<crate::ask::llm::Generator, crate::ask::Fallback>>>,
    tokens: auth::TokenCache,
    limiter: auth::RateLimiter,
    pub(crate) limits: ServeConfig,
    work: Arc<Semaphore>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking request leaves nothing half-done in memory: the store is transactional.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` on the blocking pool with the workspace; counted for shutdown.
pub(crate) async fn blocking<T: Send + 'static>(
    s: &Arc<Shared>,
    f: impl FnOnce(&mut Core, &Shared) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let permit = s
        .work
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::unavailable())?;
    let s = s.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut core = lock(&s.core);
        f(&mut core, &s)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Runs `f` on the blocking pool with the token-checking connection.
pub(crate) async fn blocking_auth<T: Send + 'static>(
    s: &Arc<Shared>,
    f: impl FnOnce(&Workspace) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let permit = s
        .work
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::unavailable())?;
    let s = s.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let ws = lock(&s.auth_ws);
        f(&ws)
    })
    .await
    .map_err(ApiError::internal)?
}

/// A server running on its own thread. Dropping it shuts it down gracefully.
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    work: Arc<Semaphore>,
    graph_loads: Arc<AtomicU64>,
}

impl RunningServer {
    /// How many HNSW graphs this server has read from disk: one when it first needs its indexes
    /// (none for an empty workspace), more only when another process rewrote them. Ingests and
    /// erasures through the server catch the graph it holds up in place.
    pub fn graph_loads(&self) -> u64 {
        self.graph_loads.load(Ordering::Relaxed)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Blocking jobs running now (requests doing work, retention).
    pub fn in_flight(&self) -> usize {
        MAX_WORK as usize - self.work.available_permits()
    }

    /// Stops accepting, lets requests in flight finish, and returns when all work is done.
    pub fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.join();
    }

    /// Runs until a signal (with `handle_signals`) or until another thread calls
    /// [`RunningServer::shutdown`] — i.e., in the CLI, until SIGINT / SIGTERM.
    pub fn wait(mut self) {
        self.join();
    }

    fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.join();
    }
}

/// Opens the workspace in `root`, binds `opts.bind` and serves on a thread of its own. Errors
/// (address in use, bad certificate, no workspace) come back here, before anything is served.
pub fn start(
    root: &Path,
    embedder: Option<Arc<dyn Embedder>>,
    opts: ServeOptions,
) -> Result<RunningServer, ServerError> {
    let ws = Workspace::open(root)?;
    let auth_ws = Workspace::open(root)?;
    let tls = opts
        .tls()
        .map(|t| listener::tls_acceptor(&t.cert, &t.key))
        .transpose()?;
    let (bind, limits) = (opts.settings.serve.bind.value, opts.settings.serve.limits());
    let std_listener = std::net::TcpListener::bind(bind)
        .map_err(|source| ServerError::Bind { addr: bind, source })?;
    let addr = std_listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr: bind, source })?;
    std_listener
        .set_nonblocking(true)
        .map_err(|source| ServerError::Bind { addr, source })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("verbatim-serve")
        .build()
        .map_err(ServerError::Runtime)?;
    let work = Arc::new(Semaphore::new(MAX_WORK as usize));
    let graph_loads = Arc::new(AtomicU64::new(0));
    let shared = Arc::new(Shared {
        core: Mutex::new(Core {
            ws,
            indexes: None,
            graph_loads: graph_loads.clone(),
        }),
        auth_ws: Mutex::new(auth_ws),
        models: door::models(opts.model_dir.clone(), embedder.clone()),
        embedder,
        settings: crate::service::Settings::with_model(&opts.settings, opts.model_dir.as_deref()),
        generator: Mutex::new(None),
        tokens: auth::TokenCache::default(),
        limiter: auth::RateLimiter::new(limits.rate_per_second, limits.burst),
        limits,
        work: work.clone(),
    });
    let listener = {
        let _guard = runtime.enter();
        let l = tokio::net::TcpListener::from_std(std_listener)
            .map_err(|source| ServerError::Bind { addr, source })?;
        listener::incoming(l, tls.clone()).map_err(|source| ServerError::Bind { addr, source })?
    };
    let (stop_tx, stop_rx) = oneshot::channel();
    let handle_signals = opts.handle_signals;
    let thread = std::thread::Builder::new()
        .name("verbatim-serve".into())
        .spawn(move || {
            runtime.block_on(serve(shared, listener, stop_rx, handle_signals));
            // Blocking jobs were awaited in `serve`; nothing is left to cut short here.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(ServerError::Runtime)?;
    Ok(RunningServer {
        addr,
        tls: tls.is_some(),
        stop: Some(stop_tx),
        thread: Some(thread),
        work,
        graph_loads,
    })
}

async fn serve(
    shared: Arc<Shared>,
    listener: listener::Incoming,
    stop: oneshot::Receiver<()>,
    handle_signals: bool,
) {
    tokio::spawn(retention_loop(shared.clone()));
    let app = routes::router(shared.clone());
    let signal = async move {
        if handle_signals {
            tokio::select! {
                _ = stop => {}
                _ = shutdown_signal() => {
                    tracing::warn!("shutting down: finishing requests in flight (signal again to quit at once)");
                    tokio::spawn(async {
                        shutdown_signal().await;
                        tracing::error!("second signal: quitting without waiting");
                        std::process::exit(130);
                    });
                }
            }
        } else {
            let _ = stop.await;
        }
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await
    {
        tracing::error!("server: {e}");
    }
    // Work whose client went away still runs to its end (an ingest commits or rolls back whole).
    let _all = shared.work.acquire_many(MAX_WORK).await;
    shared.work.close();
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Applies the workspace's retention period now and every 24 hours (nothing when it sets none).
async fn retention_loop(shared: Arc<Shared>) {
    loop {
        match blocking(&shared, |core, _| door::apply_retention(core)).await {
            Ok(Some(msg)) => tracing::info!("retention: {msg}"),
            Ok(None) => {}
            Err(e) => tracing::error!("retention: {e}"),
        }
        tokio::time::sleep(RETENTION_EVERY).await;
    }
}
