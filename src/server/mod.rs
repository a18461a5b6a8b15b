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
//! * **State** (who locks what): a [`Workspace`] holds one SQLite connection and is not `Sync`,
//!   so the server keeps several, each used by one request at a time on tokio's blocking pool:
//!   - a **read pool** (`serve.readers`, default the machine's cores; also the async worker
//!     threads) for quick reads — search, stats, originals, the audit list, token checks. A
//!     request waits for a free connection without holding a thread. SQLite in WAL mode lets
//!     them read at once, beside a writer.
//!   - the **writer**, one connection behind a mutex: ingest, retention, theme runs and
//!     reports (they store their runs and units), `check`. Writers are serialised here, so
//!     they never race for the workspace's `.lock` file.
//!   - the **ask** connection, with the generator: one answer at a time, beside the others.
//!   - the **audit** connection: every entry of the read and ask lanes is appended through it,
//!     locked for that one append (an IMMEDIATE transaction committed with
//!     `synchronous=FULL`), so the entry is on disk before the response is sent.
//!   Every store transaction begins IMMEDIATE (`store::Store::open`): connections that write
//!   wait for each other (busy timeout) instead of failing.
//!
//!   The embedding model is loaded once and queries are embedded before any connection is
//!   taken. The **indexes** (tantivy reader, HNSW graph) are loaded on first use and shared by
//!   every reader under a read lock (`SharedIndexes`). An erasure (retention) takes the write
//!   lock for its whole run (store commit, then the indexes caught up *in place*: tantivy
//!   commits and reloads its reader, the HNSW graph masks the erased slots), so a reader sees
//!   the workspace before or after it, never a respondent half erased. An HTTP ingest stores
//!   its chunks while readers go on searching the indexes as they were (its verbatims become
//!   searchable when it is done), then takes the write lock once to catch them up in place
//!   (tantivy commits, the graph takes the new vectors). A reader that finds the store ahead of the indexes (a CLI
//!   `ingest` or `forget` beside the server) catches them up under the write lock first. The
//!   lock prefers writers: an erasure is never starved, and readers arriving while one waits
//!   queue behind it — and it waits for the `ask`s in flight, which read the indexes while
//!   they generate.
//! * **Shutdown** (SIGINT / SIGTERM, or [`RunningServer::shutdown`]): stop accepting, let every
//!   request in flight finish — an ingest is acknowledged only after its commit, so none is lost
//!   — wait for the blocking work, return.
//! * **Retention**: when the workspace sets a retention period, it is applied at start-up and
//!   every 24 hours by the writer, as an erasure.

mod auth;
mod door;
mod error;
mod listener;
pub mod openapi;
mod routes;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::{oneshot, Semaphore};

pub use error::ApiError;
pub use routes::{Route, ROUTES};

use crate::embed::Embedder;
use crate::index::{Indexes, SyncReport};
use crate::service::CatchUp;
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
    /// A workspace given with others cannot be served with them (another model or key, the
    /// same folder twice): they would not make one corpus.
    #[error("{}: {message}", workspace.display())]
    Shard {
        /// The workspace refused.
        workspace: PathBuf,
        /// Why.
        message: String,
    },
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

/// The indexes every request shares: opened on first use, then kept and caught up in place
/// ([`Indexes::refresh`]). Readers share them under the read lock; catching up, an ingest
/// and an erasure take the write lock, so no reader sees an index half caught up or a
/// respondent half erased (module docs: who locks what).
pub(crate) struct SharedIndexes {
    slot: RwLock<Option<Indexes>>,
    /// HTTP ingests storing their chunks now ([`SharedIndexes::ingesting`]).
    ingesting: AtomicUsize,
    /// HNSW graphs read from disk so far ([`RunningServer::graph_loads`]).
    graph_loads: Arc<AtomicU64>,
}

/// Indexes that covered the store's sequence when taken, shared with other readers.
pub(crate) struct IndexRead<'a>(RwLockReadGuard<'a, Option<Indexes>>);

impl std::ops::Deref for IndexRead<'_> {
    type Target = Indexes;
    fn deref(&self) -> &Indexes {
        self.0
            .as_ref()
            .expect("opened before the read lock is handed out")
    }
}

impl SharedIndexes {
    /// The indexes, caught up to `ws`'s store first (under the write lock) when the store
    /// moved: an ingest or erasure by another process, or none opened yet.
    ///
    /// While an HTTP ingest stores its chunks, the store is ahead because of it: readers use
    /// the indexes as they are (the verbatims of an ingest not finished are not searchable
    /// yet) rather than catch up chunk by chunk; the ingest catches them up once, at its end.
    /// (No other process writes meanwhile: the ingest holds the workspace's `.lock`.)
    pub(crate) fn read(&self, ws: &Workspace) -> Result<IndexRead<'_>, ApiError> {
        {
            let g = self.slot.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(ix) = g.as_ref() {
                if self.ingesting.load(Ordering::SeqCst) > 0 {
                    return Ok(IndexRead(g));
                }
                let seq = ws.store.seq().map_err(ApiError::internal)?;
                if ix.text.covered() == seq && ix.vectors.covered() == seq {
                    return Ok(IndexRead(g));
                }
            }
        }
        drop(self.write(ws)?);
        // A writer may have moved them on meanwhile: then they are newer still, never older.
        Ok(IndexRead(
            self.slot.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }

    /// The indexes alone, opened if need be and caught up to `ws`'s store: readers wait.
    fn write(&self, ws: &Workspace) -> Result<RwLockWriteGuard<'_, Option<Indexes>>, ApiError> {
        self.caught_up(ws)
            .map(|(g, _)| g)
            .map_err(ApiError::internal)
    }

    /// [`SharedIndexes::write`], with what the catch-up applied.
    #[allow(clippy::type_complexity)]
    fn caught_up(
        &self,
        ws: &Workspace,
    ) -> Result<(RwLockWriteGuard<'_, Option<Indexes>>, SyncReport), WorkspaceError> {
        let mut g = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        let mut opened = SyncReport::default();
        if g.is_none() {
            let (ix, sync) = ws.indexes()?;
            self.graph_loads
                .fetch_add(ix.vectors.loads(), Ordering::Relaxed);
            *g = Some(ix);
            opened = sync;
        }
        let ix = g.as_mut().expect("opened above");
        let before = ix.vectors.loads();
        let r = ix.refresh(&ws.store);
        self.graph_loads
            .fetch_add(ix.vectors.loads() - before, Ordering::Relaxed);
        match r {
            Ok(sync) => Ok((
                g,
                SyncReport {
                    text: opened.text + sync.text,
                    vectors: opened.vectors + sync.vectors,
                },
            )),
            Err(e) => {
                // Half caught up, perhaps: the next request opens them afresh from disk.
                *g = None;
                Err(e.into())
            }
        }
    }

    /// Runs `f`, an HTTP ingest, which stores its chunks while readers go on searching the
    /// indexes as they were, and gives it [`SharedIndexes::catch_up`] for its last step.
    pub(crate) fn ingest<T>(&self, f: impl FnOnce(&CatchUp<'_>) -> T) -> T {
        struct Ingesting<'a>(&'a AtomicUsize);
        impl Drop for Ingesting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.ingesting.fetch_add(1, Ordering::SeqCst);
        let _ingesting = Ingesting(&self.ingesting);
        f(&|ws: &Workspace| self.caught_up(ws).map(|(_, sync)| sync))
    }

    /// Runs `f`, an erasure (retention), which brings the indexes up to the store itself, in
    /// place, with readers excluded until it is done (no reader sees a respondent half erased);
    /// counts the graph it may have had to reload. When `f` fails after the store moved, the
    /// indexes are dropped: the next request opens them afresh.
    pub(crate) fn write_with<T>(
        &self,
        ws: &mut Workspace,
        f: impl FnOnce(&mut Workspace, &mut Indexes) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut g = self.write(ws)?;
        let ix = g.as_mut().expect("opened by write");
        let before = ix.vectors.loads();
        let r = f(ws, &mut *ix);
        self.graph_loads
            .fetch_add(ix.vectors.loads() - before, Ordering::Relaxed);
        if r.is_err() {
            let seq = ws.store.seq().ok();
            if seq != Some(ix.text.covered()) || seq != Some(ix.vectors.covered()) {
                *g = None;
            }
        }
        r
    }
}

/// Where a request's work runs, and on which connection (module docs: who locks what).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    /// A connection of the read pool: quick reads (search, stats, originals, the audit list,
    /// token checks). Their audit entries go through the audit connection.
    Read,
    /// The writer: ingest, retention, theme runs and reports (they store their runs), check.
    Write,
    /// The `ask` connection, with the generator: one answer at a time, beside the readers.
    Ask,
}

/// The read connections, each lent to one request at a time.
struct ReadPool {
    free: Mutex<Vec<Workspace>>,
    /// One permit per connection: a request waits here, not on a thread, for one.
    permits: Arc<Semaphore>,
}

/// A read connection lent to one request; given back when dropped (a panicking request too).
struct Lent<'a> {
    pool: &'a ReadPool,
    ws: Option<Workspace>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(ws) = self.ws.take() {
            lock(&self.pool.free).push(ws);
        }
    }
}

/// A workspace served beside the door's as part of one corpus (`verbatim serve --workspace A
/// --workspace B`): read connections and indexes of its own; its users and audit trail are
/// not used (the door's are).
pub(crate) struct ShardState {
    /// Its place among the served workspaces (the door is 0).
    pub(crate) id: usize,
    root: PathBuf,
    /// Read connections, one per reader of the door's pool (a request holds a door reader
    /// first, so there is always one free; another is opened if not).
    free: Mutex<Vec<Workspace>>,
    pub(crate) indexes: SharedIndexes,
}

/// A shard's read connection lent to one request; given back when dropped.
pub(crate) struct ShardLent<'a> {
    shard: &'a ShardState,
    ws: Option<Workspace>,
}

impl ShardLent<'_> {
    pub(crate) fn ws(&self) -> &Workspace {
        self.ws.as_ref().expect("held until dropped")
    }
}

impl Drop for ShardLent<'_> {
    fn drop(&mut self) {
        if let Some(ws) = self.ws.take() {
            lock(&self.shard.free).push(ws);
        }
    }
}

impl ShardState {
    /// A read connection to this shard.
    pub(crate) fn lend(&self) -> Result<ShardLent<'_>, ApiError> {
        let ws = match lock(&self.free).pop() {
            Some(ws) => ws,
            None => Workspace::open(&self.root).map_err(ApiError::internal)?,
        };
        Ok(ShardLent {
            shard: self,
            ws: Some(ws),
        })
    }
}

/// What every request shares.
pub(crate) struct Shared {
    /// The workspaces served with the door's as one corpus (none: one workspace).
    pub(crate) shards: Vec<ShardState>,
    readers: ReadPool,
    /// The writer's connection: whoever holds it may change the store (one at a time).
    writer: Mutex<Workspace>,
    /// The `ask` lane's connection (lock order: ask, generator, indexes, audit).
    asker: Mutex<Workspace>,
    /// The connection that appends the audit entries of the read and ask lanes, locked for
    /// one append (an IMMEDIATE transaction, fsynced: durable before the response).
    pub(crate) audit: Mutex<Workspace>,
    pub(crate) indexes: SharedIndexes,
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

/// Runs `f` on the blocking pool with a connection of `lane` (a read connection is awaited
/// without holding a thread); counted for shutdown.
pub(crate) async fn blocking<T: Send + 'static>(
    s: &Arc<Shared>,
    lane: Lane,
    f: impl FnOnce(&mut Workspace, &Shared) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let permit = s
        .work
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::unavailable())?;
    let reader = match lane {
        Lane::Read => Some(
            s.readers
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| ApiError::unavailable())?,
        ),
        Lane::Write | Lane::Ask => None,
    };
    let s = s.clone();
    tokio::task::spawn_blocking(move || {
        let (_permit, _reader) = (permit, reader);
        match lane {
            Lane::Read => {
                let mut lent = Lent {
                    pool: &s.readers,
                    ws: lock(&s.readers.free).pop(),
                };
                let ws = lent.ws.as_mut().expect("one connection per permit");
                f(ws, &s)
            }
            Lane::Write => f(&mut lock(&s.writer), &s),
            Lane::Ask => f(&mut lock(&s.asker), &s),
        }
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
    start_shards(&[root.to_path_buf()], embedder, opts)
}

/// Serves the workspaces in `roots` as one corpus (`verbatim serve --workspace A --workspace
/// B`): the shards of `ingest --shard i/S`. The first is the *door*: its users and tokens
/// authenticate every request, its audit trail records each request once, its settings
/// (`verbatim.toml`) and retention apply. Searches fan out to every shard and merge exactly;
/// stats sum; routes that cannot fan out yet (themes, reports, ask, ingest, originals, check)
/// answer 400 naming themselves. Refused before anything is served ([`ServerError::Shard`],
/// naming the workspace): a folder given twice, or a shard whose vectors come from another
/// model or whose key file is another (pseudonyms and ids would not agree).
pub fn start_shards(
    roots: &[PathBuf],
    embedder: Option<Arc<dyn Embedder>>,
    opts: ServeOptions,
) -> Result<RunningServer, ServerError> {
    let (root, others) = roots.split_first().ok_or_else(|| ServerError::Shard {
        workspace: PathBuf::from("."),
        message: "no workspace to serve".into(),
    })?;
    let root = root.as_path();
    let writer = Workspace::open(root)?;
    let shards = open_shards(&writer, others, opts.settings.serve.readers.value)?;
    let (bind, limits) = (opts.settings.serve.bind.value, opts.settings.serve.limits());
    let readers = opts.settings.serve.readers.value;
    let pool = (0..readers)
        .map(|_| Workspace::open(root))
        .collect::<Result<Vec<_>, _>>()?;
    let tls = opts
        .tls()
        .map(|t| listener::tls_acceptor(&t.cert, &t.key))
        .transpose()?;
    let std_listener = std::net::TcpListener::bind(bind)
        .map_err(|source| ServerError::Bind { addr: bind, source })?;
    let addr = std_listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr: bind, source })?;
    std_listener
        .set_nonblocking(true)
        .map_err(|source| ServerError::Bind { addr, source })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(readers)
        .enable_all()
        .thread_name("verbatim-serve")
        .build()
        .map_err(ServerError::Runtime)?;
    let work = Arc::new(Semaphore::new(MAX_WORK as usize));
    let graph_loads = Arc::new(AtomicU64::new(0));
    let shared = Arc::new(Shared {
        shards,
        readers: ReadPool {
            free: Mutex::new(pool),
            permits: Arc::new(Semaphore::new(readers)),
        },
        writer: Mutex::new(writer),
        asker: Mutex::new(Workspace::open(root)?),
        audit: Mutex::new(Workspace::open(root)?),
        indexes: SharedIndexes {
            slot: RwLock::new(None),
            ingesting: AtomicUsize::new(0),
            graph_loads: graph_loads.clone(),
        },
        models: door::models(opts.model_dir.clone(), embedder.clone()),
        embedder,
        settings: crate::service::Settings::with_model(&opts.settings, opts.model_dir.as_deref()),
        generator: Mutex::new(None),
        tokens: auth::TokenCache::default(),
        limiter: auth::RateLimiter::new(limits.rate_per_second, limits.burst),
        limits,
        work: work.clone(),
    });
    // The indexes are opened and caught up now, before the caller says "listening": at a
    // million verbatims reading the graph takes ~15 s, which the first analyst's request paid.
    {
        let ws = lock(&shared.writer);
        drop(shared.indexes.caught_up(&ws)?);
    }
    for shard in &shared.shards {
        let lent = shard.lend().map_err(|e| ServerError::Shard {
            workspace: shard.root.clone(),
            message: e.to_string(),
        })?;
        drop(shard.indexes.caught_up(lent.ws())?);
    }
    let listener = {
        let _guard = runtime.enter();
        let l = tokio::net::TcpListener::from_std(std_listener)
            .map_err(|source| ServerError::Bind { addr, source })?;
        listener::incoming(l, tls.clone()).map_err(|source| ServerError::Bind { addr, source })?
    };
    let (stop_tx, stop_rx) = oneshot::channel();
    // Registered now, before `start` returns and the CLI prints the address: a signal sent as
    // soon as it is printed stops the server gracefully instead of killing the process.
    let signals = opts.handle_signals.then(|| {
        let _guard = runtime.enter();
        Signals::register()
    });
    let thread = std::thread::Builder::new()
        .name("verbatim-serve".into())
        .spawn(move || {
            runtime.block_on(serve(shared, listener, stop_rx, signals));
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

/// Opens the shards served beside `door`, each checked against it: another folder, the same
/// model's vectors (an empty shard has none yet) and the same key ([`ServerError::Shard`]).
fn open_shards(
    door: &Workspace,
    roots: &[PathBuf],
    readers: usize,
) -> Result<Vec<ShardState>, ServerError> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let refuse = |root: &Path, message: String| ServerError::Shard {
        workspace: root.to_path_buf(),
        message,
    };
    let model = door
        .store
        .model_fingerprint()
        .map_err(WorkspaceError::from)?;
    let key = door.vault.hash_keys().key_id();
    let mut seen = vec![canonical(door.root())];
    let mut out = Vec::new();
    for (i, root) in roots.iter().enumerate() {
        let ws = Workspace::open(root)?;
        if seen.contains(&canonical(root)) {
            return Err(refuse(
                root,
                "given twice: each shard is served once".into(),
            ));
        }
        seen.push(canonical(root));
        let theirs = ws.store.model_fingerprint().map_err(WorkspaceError::from)?;
        if let (Some(a), Some(b)) = (&model, &theirs) {
            if a != b {
                return Err(refuse(
                    root,
                    format!(
                        "its vectors come from model {b}, those of {} from {a}: shards must \
                         share one model (`verbatim reindex --model`)",
                        door.root().display()
                    ),
                ));
            }
        }
        let their_key = ws.vault.hash_keys().key_id();
        if their_key != key {
            return Err(refuse(
                root,
                format!(
                    "its key file is {their_key}, that of {} is {key}: shards must share one key \
                     (pseudonyms and ids are made with it; copy verbatim.key before `init`)",
                    door.root().display()
                ),
            ));
        }
        let mut free = vec![ws];
        for _ in 1..readers {
            free.push(Workspace::open(root)?);
        }
        out.push(ShardState {
            id: i + 1,
            root: root.clone(),
            free: Mutex::new(free),
            indexes: SharedIndexes {
                slot: RwLock::new(None),
                ingesting: AtomicUsize::new(0),
                graph_loads: Arc::new(AtomicU64::new(0)),
            },
        });
    }
    Ok(out)
}

async fn serve(
    shared: Arc<Shared>,
    listener: listener::Incoming,
    stop: oneshot::Receiver<()>,
    signals: Option<Signals>,
) {
    tokio::spawn(retention_loop(shared.clone()));
    let app = routes::router(shared.clone());
    let signal = async move {
        let Some(mut signals) = signals else {
            let _ = stop.await;
            return;
        };
        let signalled = tokio::select! {
            _ = stop => false,
            _ = signals.recv() => true,
        };
        if signalled {
            tracing::warn!(
                "shutting down: finishing requests in flight (signal again to quit at once)"
            );
            tokio::spawn(async move {
                signals.recv().await;
                tracing::error!("second signal: quitting without waiting");
                std::process::exit(130);
            });
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

/// SIGINT (Ctrl-C) and SIGTERM, listened for from [`Signals::register`] on.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Installs the handlers (inside the runtime: `Runtime::enter`). From here on the signals
    /// are queued for [`Signals::recv`] rather than killing the process.
    fn register() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next SIGINT or SIGTERM.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            let Signals { term, int } = self;
            let term = async {
                match term {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int {
                    Some(i) => {
                        i.recv().await;
                    }
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            tokio::select! {
                _ = term => {}
                _ = int => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Applies the workspace's retention period now and every 24 hours (nothing when it sets none).
async fn retention_loop(shared: Arc<Shared>) {
    loop {
        match blocking(&shared, Lane::Write, door::apply_retention).await {
            Ok(Some(msg)) => tracing::info!("retention: {msg}"),
            Ok(None) => {}
            Err(e) => tracing::error!("retention: {e}"),
        }
        tokio::time::sleep(RETENTION_EVERY).await;
    }
}
