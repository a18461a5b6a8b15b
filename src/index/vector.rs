//! Vector index: an HNSW graph (hnsw_rs) over the store's embeddings, persisted in the workspace.
//!
//! HNSW graphs cannot delete points. Each embedding therefore has a *vector slot* (`vec_id`,
//! assigned by the store, never reused): when a verbatim's text changes it gets a new slot and the
//! old one becomes stale. Searches only accept live slots (a filter over the store's current
//! slots), so a stale point is never returned; when stale points outnumber live ones the graph is
//! rebuilt from the store.
//!
//! Persistence is by generations: `vectors/gen-<seq>-<n>/` holds a full dump plus `meta.json`,
//! and `vectors/CURRENT` names the generation in use. A new generation is written, fsynced, then
//! `CURRENT` is swapped by rename, so a crash leaves the old generation or the new one — never a
//! torn graph. The generation records the store sequence it covers; opening catches up.
//!
//! **Both languages.** In a workspace with two or more languages (each with
//! [`crate::vecmath::MIN_LANGUAGE_DOCS`] vectors), the graph holds each vector *centred* on its
//! language's mean ([`LanguageMeans`]): multilingual models give texts in the query's own language
//! a bonus, which centring removes (a French text finds its English translation at rank 1 in a
//! mixed pool: BENCHMARKS.md). The means are derived like the graph, computed from the store at
//! each rebuild and kept in `meta.json`; searches centre the query with them
//! ([`VectorIndex::means`]). New vectors are centred with the means in force; the graph is
//! rebuilt (fresh means) when the set of languages that qualify changes or the vectors have
//! doubled since the means were taken. A generation written before centring existed
//! ([`LAYOUT`]) is rebuilt on the next catch-up.

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Once};

use hnsw_rs::prelude::*;
use serde::{Deserialize, Serialize};

use super::IndexError;
use crate::store::Store;
use crate::vecmath::LanguageMeans;

/// Cosine distance for L2-normalised vectors: `1 - a·b`, written so the compiler vectorises it
/// (eight independent accumulators; hnsw_rs's scalar fold does not vectorise).
#[derive(Clone, Copy, Debug, Default)]
pub struct CosineNormalized;

/// The vectorised dot product, from [`crate::vecmath`] (kept here for callers of
/// `index::vector::dot`).
pub use crate::vecmath::dot;

impl Distance<f32> for CosineNormalized {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - dot(va, vb)).max(0.0)
    }
}

/// The graph, borrowing from the `HnswIo` loader it was read with (`'io`; hnsw_rs ties the two for
/// its mmap mode, which we do not use).
type Graph<'io> = Hnsw<'io, f32, CosineNormalized>;

/// HNSW build parameters.
///
/// M = 16 (hnswlib's default) and ef_construction = 80 (hnswlib's default is 200). Measured with
/// `cargo run --release --example hnsw_params -- 40000 EFC 16 WS/store.sqlite` on 40k real
/// chit-chat embeddings, 2 threads, recall@10 by distance at ef 128 (verbatim searches with
/// ef ≥ 128): ef_construction 200 → 26.2 s, 0.9985; 100 → 12.6 s, 0.9945; 80 → 10.7 s, 0.9915;
/// 64 → 7.7 s, 0.9835. Graph construction is most of an ingest's cost beyond embedding for short
/// texts (hnsw_rs builds ~3× slower than hnswlib, BENCHMARKS.md), so 80 is where recall stays
/// above 0.99.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct HnswParams {
    /// Max neighbours per node per layer (M).
    pub m: usize,
    /// Candidate list size at construction.
    pub ef_construction: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 80,
        }
    }
}

/// What the points of a generation are: 1 = each vector centred on its language's mean when
/// the workspace has means (0, absent in older `meta.json`: raw vectors; rebuilt on catch-up).
pub const LAYOUT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct GenMeta {
    seq: i64,
    points: usize,
    dim: usize,
    model: Option<String>,
    params: HnswParams,
    #[serde(default)]
    layout: u32,
    /// The per-language means the points are centred with (`None`: one language).
    #[serde(default)]
    means: Option<LanguageMeans>,
    /// How many vectors the means were computed from.
    #[serde(default)]
    means_from: usize,
}

impl GenMeta {
    fn empty(params: HnswParams) -> GenMeta {
        GenMeta {
            seq: 0,
            points: 0,
            dim: 0,
            model: None,
            params,
            layout: LAYOUT,
            means: None,
            means_from: 0,
        }
    }
}

/// The persisted HNSW index of one workspace.
pub struct VectorIndex {
    dir: PathBuf,
    graph: GraphThread,
    meta: GenMeta,
    params: HnswParams,
    /// The generation this value loaded or last wrote (what `CURRENT` named then); `None`: none.
    gen: Option<String>,
    /// Graph dumps this value has read from disk (open, then [`VectorIndex::reload`]).
    loads: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Kept here for callers that wrote files through the vector index before [`crate::fs`] existed.
pub use crate::fs::write_atomic;

impl VectorIndex {
    /// Opens the index in `dir` (empty if none was written yet).
    pub fn open(dir: &Path, params: HnswParams) -> Result<Self, IndexError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let current = dir.join("CURRENT");
        let empty = GenMeta::empty(params);
        let (graph, meta, gen_name) = match fs::read_to_string(&current) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (GraphThread::start(None)?, empty, None)
            }
            Err(e) => return Err(io(&current)(e)),
            Ok(name) => {
                let name = name.trim().to_string();
                let gen = dir.join(&name);
                let meta_path = gen.join("meta.json");
                let meta: GenMeta = fs::read(&meta_path).map_err(io(&meta_path)).and_then(|b| {
                    serde_json::from_slice(&b).map_err(|e| IndexError::Corrupt {
                        path: meta_path.clone(),
                        message: e.to_string(),
                    })
                })?;
                let graph = if meta.points == 0 {
                    GraphThread::start(None)?
                } else {
                    GraphThread::start(Some(&gen))?
                };
                (graph, meta, Some(name))
            }
        };
        let loads = u64::from(gen_name.is_some() && meta.points > 0);
        Ok(VectorIndex {
            dir: dir.to_path_buf(),
            graph,
            meta,
            params,
            gen: gen_name,
            loads,
        })
    }

    /// Whether another writer (a CLI command beside a server) persisted a generation since this
    /// value loaded or wrote its own: its in-memory graph then lacks that writer's changes, or
    /// still holds points an erasure removed, and must be reloaded rather than caught up.
    pub fn written_elsewhere(&self) -> Result<bool, IndexError> {
        let current = self.dir.join("CURRENT");
        match fs::read_to_string(&current) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(self.gen.is_some()),
            Err(e) => Err(io(&current)(e)),
            Ok(name) => Ok(self.gen.as_deref() != Some(name.trim())),
        }
    }

    /// Reads the current generation from disk again, in place of the graph held now.
    pub fn reload(&mut self) -> Result<(), IndexError> {
        let fresh = VectorIndex::open(&self.dir, self.params)?;
        let loads = self.loads + fresh.loads;
        *self = fresh;
        self.loads = loads;
        Ok(())
    }

    /// How many graph dumps this value has read from disk: 1 after opening a non-empty
    /// generation, one more per [`VectorIndex::reload`]. Catching up in place adds none.
    pub fn loads(&self) -> u64 {
        self.loads
    }

    /// An empty index in `dir` that ignores whatever generation is there (for rebuilds: the old
    /// graph is replaced when the new one is persisted).
    pub fn empty(dir: &Path, params: HnswParams) -> Result<Self, IndexError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        Ok(VectorIndex {
            dir: dir.to_path_buf(),
            graph: GraphThread::start(None)?,
            meta: GenMeta::empty(params),
            params,
            gen: None,
            loads: 0,
        })
    }

    /// The store sequence this index covers.
    pub fn covered(&self) -> i64 {
        self.meta.seq
    }

    /// Points in the graph (live and stale).
    pub fn points(&self) -> usize {
        self.meta.points
    }

    /// The per-language means the graph's points are centred with (`None`: one language, raw
    /// vectors). A query, and any vector compared with the graph's, is centred with them first.
    pub fn means(&self) -> Option<&LanguageMeans> {
        self.meta.means.as_ref()
    }

    /// Whether this generation was written under another [`LAYOUT`] (the next catch-up rebuilds).
    pub fn stale(&self) -> bool {
        self.meta.layout != LAYOUT
    }

    /// Whether the means in force no longer describe the store: the languages that qualify for
    /// a mean changed, or the vectors have doubled since the means were taken.
    fn means_outdated(&self, store: &Store) -> Result<bool, IndexError> {
        let counts = store.vector_languages()?;
        let qualify: Vec<&str> = counts
            .iter()
            .filter(|(_, &n)| n >= crate::vecmath::MIN_LANGUAGE_DOCS)
            .map(|(l, _)| l.as_str())
            .collect();
        Ok(match &self.meta.means {
            None => qualify.len() >= 2,
            Some(m) => {
                let total: usize = counts.values().sum();
                !m.languages().eq(qualify.iter().copied()) || total >= 2 * self.meta.means_from
            }
        })
    }

    fn insert(&mut self, items: Vec<(Vec<f32>, usize)>) {
        if items.is_empty() {
            return;
        }
        let (n, dim) = (items.len(), items[0].0.len());
        let params = self.params;
        self.graph.run(move |graph| {
            let g = graph.get_or_insert_with(|| {
                Hnsw::new(
                    params.m,
                    items.len().max(1024),
                    16,
                    params.ef_construction,
                    CosineNormalized,
                )
            });
            let refs: Vec<(&Vec<f32>, usize)> = items.iter().map(|(v, id)| (v, *id)).collect();
            g.parallel_insert(&refs);
        });
        self.meta.dim = dim;
        self.meta.points += n;
    }

    /// Inserts the vectors of every store change after the covered sequence, then persists a new
    /// generation. Rebuilds instead when stale points would outnumber live ones.
    pub fn catch_up(&mut self, store: &Store) -> Result<usize, IndexError> {
        if self.stale() {
            return self.rebuild(store);
        }
        let target = store.seq()?;
        if target <= self.meta.seq {
            return Ok(0);
        }
        if self.means_outdated(store)? {
            return self.rebuild(store);
        }
        let means = self.meta.means.as_ref();
        let items: Vec<(Vec<f32>, usize)> = store
            .vectors_since(self.meta.seq)?
            .into_iter()
            .map(|(vec_id, lang, mut vector)| {
                if let Some(m) = means {
                    m.center(&lang, &mut vector);
                }
                (vector, vec_id as usize)
            })
            .collect();
        let live = store.live_vec_ids()?.len();
        if self.meta.points + items.len() > 2 * live.max(1) + 1024 {
            return self.rebuild(store);
        }
        let n = items.len();
        let t = std::time::Instant::now();
        self.insert(items);
        tracing::debug!(n, secs = t.elapsed().as_secs_f64(), "index: hnsw insert");
        self.meta.seq = target;
        self.meta.model = store.model_fingerprint()?;
        self.persist()?;
        Ok(n)
    }

    /// Rebuilds the graph from the store's current vectors (centred with per-language means
    /// computed now, when the store has several languages) and persists it.
    pub fn rebuild(&mut self, store: &Store) -> Result<usize, IndexError> {
        let target = store.seq()?;
        let mut items = Vec::new();
        let mut langs = Vec::new();
        store.for_each(|v, vec_id, vector| {
            items.push((vector, vec_id as usize));
            langs.push(v.language);
            Ok(())
        })?;
        let dim = items.first().map_or(0, |i| i.0.len());
        let means = LanguageMeans::compute(
            langs
                .iter()
                .zip(&items)
                .map(|(l, (v, _))| (l.as_str(), v.as_slice())),
            dim,
        );
        if let Some(m) = &means {
            for (lang, (v, _)) in langs.iter().zip(items.iter_mut()) {
                m.center(lang, v);
            }
        }
        self.graph.run(|graph| *graph = None);
        self.meta = GenMeta {
            seq: target,
            model: store.model_fingerprint()?,
            means_from: if means.is_some() { items.len() } else { 0 },
            means,
            ..GenMeta::empty(self.params)
        };
        let n = items.len();
        self.insert(items);
        self.persist()?;
        Ok(n)
    }

    fn persist(&mut self) -> Result<(), IndexError> {
        let name = format!(
            "gen-{:012}-{}",
            self.meta.seq,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let tmp = self.dir.join(format!("{name}.partial"));
        let gen = self.dir.join(&name);
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let dump_to = tmp.clone();
        let dumped = self.graph.run(move |graph| {
            graph
                .as_ref()
                .map(|g| g.file_dump(&dump_to, "vectors").map_err(|e| e.to_string()))
        });
        if let Some(dumped) = dumped {
            dumped.map_err(|message| IndexError::Vector {
                path: tmp.clone(),
                message,
            })?;
            for f in ["vectors.hnsw.graph", "vectors.hnsw.data"] {
                crate::fs::sync_file(&tmp.join(f))?;
            }
        }
        let meta = serde_json::to_vec_pretty(&self.meta).expect("meta serialises");
        write_atomic(&tmp.join("meta.json"), &meta)?;
        seal_generation(&tmp)?;
        fs::rename(&tmp, &gen).map_err(io(&gen))?;
        crate::fs::sync_dir(&self.dir)?;
        write_atomic(&self.dir.join("CURRENT"), name.as_bytes())?;
        self.gen = Some(name.clone());
        // Old generations and leftovers of interrupted writes are garbage now.
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let p = e.path();
                let file_name = e.file_name().to_string_lossy().to_string();
                if p.is_dir() && file_name.starts_with("gen-") && file_name != name {
                    let _ = fs::remove_dir_all(&p);
                }
            }
        }
        Ok(())
    }

    /// Approximate nearest neighbours among the slots `accept` allows: `(vec_id, cosine)`, best first.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: impl Fn(usize) -> bool + Send + 'static,
    ) -> Vec<(i64, f32)> {
        if self.meta.points == 0 {
            return Vec::new();
        }
        let query = query.to_vec();
        self.graph.run(move |graph| {
            let Some(g) = graph.as_ref() else {
                return Vec::new();
            };
            let filter = |id: &usize| accept(*id);
            g.search_filter(&query, k, ef.max(k), Some(&filter))
                .into_iter()
                .map(|n| (n.d_id as i64, 1.0 - n.distance))
                .collect()
        })
    }
}

/// The name of the threads that own a graph (and, for a loaded one, its loader).
const GRAPH_THREAD: &str = "verbatim-hnsw";

/// Work for the graph thread, on whatever graph it holds (whatever its loader's lifetime).
type Job = Box<dyn for<'io> FnOnce(&mut Option<Graph<'io>>) + Send>;

fn job<F>(f: F) -> Job
where
    F: for<'io> FnOnce(&mut Option<Graph<'io>>) + Send + 'static,
{
    Box::new(f)
}

/// A thread that owns the HNSW graph and the `HnswIo` loader it was read from.
///
/// **Why a thread.** hnsw_rs ties a loaded graph's lifetime to its loader, so a graph that
/// outlives the function that loaded it needs its loader kept alive beside it: a struct holding
/// both borrows from itself, which safe Rust cannot express. The earlier code leaked one loader
/// per open (`Box::leak`) to get a `'static` graph — a leak per reopen, and the server reopens
/// after every ingest. Here the loader and the graph are locals of one thread's function, dropped
/// together (graph first) when the index is dropped; the index sends it work (insert, search,
/// dump) as closures and waits for the answer. One search costs a channel round trip (a few
/// microseconds) on top of the graph walk; the store lookups around it cost far more.
struct GraphThread {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

thread_local! {
    /// Set on a graph thread while it loads a dump: hnsw_rs asserts (panics) on some malformed
    /// files, and that panic is reported as our error, not printed as a crash.
    static LOADING: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once per process, a panic hook that stays quiet for panics of a graph thread
/// *while it loads a dump* and passes every other panic to the hook that was there before.
/// (Swapping the process-wide hook around each load raced with other threads: their panics
/// could be silenced, and two loads could restore each other's hooks.)
fn quiet_load_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !LOADING.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

impl GraphThread {
    /// Starts the thread, with the graph dumped in `gen` or none; returns once it is loaded.
    fn start(gen: Option<&Path>) -> Result<GraphThread, IndexError> {
        if let Some(gen) = gen {
            check_dump_files(gen)?;
            quiet_load_panics();
        }
        let dir = gen.map(Path::to_path_buf);
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready, loaded) = mpsc::sync_channel::<Result<(), String>>(1);
        let thread = std::thread::Builder::new()
            .name(GRAPH_THREAD.into())
            .spawn(move || {
                let mut loader = dir.as_ref().map(|d| HnswIo::new(d, "vectors"));
                let mut graph: Option<Graph<'_>> = None;
                if let Some(loader) = loader.as_mut() {
                    LOADING.with(|l| l.set(true));
                    let r = loader.load_hnsw::<f32, CosineNormalized>();
                    LOADING.with(|l| l.set(false));
                    match r {
                        Ok(g) => graph = Some(g),
                        Err(e) => {
                            let _ = ready.send(Err(e.to_string()));
                            return;
                        }
                    }
                }
                let _ = ready.send(Ok(()));
                for job in inbox {
                    job(&mut graph);
                }
            })
            .map_err(|source| IndexError::Io {
                path: gen.map(Path::to_path_buf).unwrap_or_default(),
                source,
            })?;
        let corrupt = |message: String| IndexError::Corrupt {
            path: gen.unwrap_or(Path::new(".")).join("vectors.hnsw.graph"),
            message: format!("{message} (run `verbatim reindex` to rebuild it from the store)"),
        };
        match loaded.recv() {
            Ok(Ok(())) => Ok(GraphThread {
                jobs: Some(jobs),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(corrupt(e))
            }
            // The loader panicked (the thread ended without answering).
            Err(_) => {
                let _ = thread.join();
                Err(corrupt("malformed HNSW dump".into()))
            }
        }
    }

    /// Runs `f` on the graph and returns its result.
    fn run<T, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: for<'io> FnOnce(&mut Option<Graph<'io>>) -> T + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let sent = self
            .jobs
            .as_ref()
            .expect("jobs are open until drop")
            .send(job(move |graph| {
                let _ = tx.send(f(graph));
            }));
        // Only a panic inside hnsw_rs ends the thread early; surface it as the bug it is.
        match (sent, rx.recv()) {
            (Ok(()), Ok(v)) => v,
            _ => panic!("the vector index thread ({GRAPH_THREAD}) panicked"),
        }
    }
}

impl Drop for GraphThread {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; joining frees the graph now.
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Both dump files must be there before hnsw_rs is asked to read them.
/// The file beside a generation's dump that holds the SHA-256 of each of its files.
pub const SUMS_FILE: &str = "SUMS.json";

/// The files of a generation a [`SUMS_FILE`] covers (those present).
const SEALED_FILES: [&str; 3] = ["vectors.hnsw.graph", "vectors.hnsw.data", "meta.json"];

/// Writes [`SUMS_FILE`] for the generation folder `gen`: the SHA-256 of each of its files, so
/// `verbatim check` can tell a changed byte in the graph (neighbour lists, which nothing else
/// verifies) from a sound file. Whoever rewrites a generation's files in place calls it again.
pub fn seal_generation(gen: &Path) -> Result<(), IndexError> {
    let mut sums = std::collections::BTreeMap::new();
    for f in SEALED_FILES {
        let p = gen.join(f);
        match fs::read(&p) {
            Ok(bytes) => {
                use sha2::Digest;
                sums.insert(f.to_string(), hex::encode(sha2::Sha256::digest(&bytes)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&p)(e)),
        }
    }
    let body = serde_json::to_vec_pretty(&sums).expect("a string map serialises");
    write_atomic(&gen.join(SUMS_FILE), &body)?;
    Ok(())
}

/// The files of the generation `gen` whose bytes differ from its [`SUMS_FILE`] (`Ok(None)`: a
/// generation written before sums existed). A sums file that cannot be read is itself damage.
pub fn unsealed_files(gen: &Path) -> Result<Option<Vec<PathBuf>>, IndexError> {
    let path = gen.join(SUMS_FILE);
    let body = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    let sums: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&body).map_err(|e| IndexError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let mut bad = Vec::new();
    for f in SEALED_FILES {
        let p = gen.join(f);
        let now = fs::read(&p).ok().map(|b| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&b))
        });
        if now.as_ref() != sums.get(f) {
            bad.push(p);
        }
    }
    if sums.keys().any(|k| !SEALED_FILES.contains(&k.as_str())) {
        bad.push(path);
    }
    Ok(Some(bad))
}

impl VectorIndex {
    /// The folder of the generation in use (`None`: nothing persisted yet).
    pub fn generation_dir(&self) -> Option<PathBuf> {
        self.gen.as_ref().map(|g| self.dir.join(g))
    }

    /// Every point of the graph as loaded: (vector slot, vector as stored in the graph), by
    /// slot; with the dimension and point count `meta.json` claims (`verbatim check`).
    pub fn points_snapshot(&self) -> (Vec<(i64, Vec<f32>)>, usize, usize) {
        let mut pts = self.graph.run(|graph| {
            graph.as_ref().map_or_else(Vec::new, |g| {
                g.get_point_indexation()
                    .into_iter()
                    .map(|p| (p.get_origin_id() as i64, p.get_v().to_vec()))
                    .collect::<Vec<_>>()
            })
        });
        pts.sort_by_key(|p| p.0);
        (pts, self.meta.dim, self.meta.points)
    }

    /// The model fingerprint `meta.json` records.
    pub fn model(&self) -> Option<&str> {
        self.meta.model.as_deref()
    }
}

fn check_dump_files(gen: &Path) -> Result<(), IndexError> {
    for f in ["vectors.hnsw.graph", "vectors.hnsw.data"] {
        let p = gen.join(f);
        if !p.is_file() {
            return Err(IndexError::Corrupt {
                path: p,
                message: "missing file of the vector index (run `verbatim reindex`)".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// `n` distinct unit vectors (a small LCG: no two alike).
    fn sample(n: usize, dim: usize) -> Vec<(Vec<f32>, usize)> {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..n)
            .map(|i| {
                let mut v: Vec<f32> = (0..dim)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                    })
                    .collect();
                crate::vecmath::l2_normalize(&mut v);
                (v, i)
            })
            .collect()
    }

    fn persisted(n: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let vdir = dir.path().join("vectors");
        let mut ix = VectorIndex::empty(&vdir, HnswParams::default()).unwrap();
        ix.insert(sample(n, 16));
        ix.meta.seq = 1;
        ix.persist().unwrap();
        (dir, vdir)
    }

    #[test]
    fn a_reopened_index_finds_what_was_dumped_every_time() {
        let (_dir, vdir) = persisted(300);
        let items = sample(300, 16);
        for _ in 0..20 {
            let ix = VectorIndex::open(&vdir, HnswParams::default()).unwrap();
            assert_eq!(ix.points(), 300);
            let hits = ix.search(&items[42].0, 3, 64, |_| true);
            assert_eq!(hits[0].0, 42, "{hits:?}");
            assert!((hits[0].1 - 1.0).abs() < 1e-5);
            let even = ix.search(&items[42].0, 5, 64, |id| id % 2 == 0);
            assert!(
                !even.is_empty() && even.iter().all(|h| h.0 % 2 == 0),
                "{even:?}"
            );
        }
    }

    /// A damaged dump is our error (not a crash), and loading one never hides another thread's
    /// panic from the process's hook, even with loads running on several threads at once (the
    /// per-load hook swap it replaces silenced every thread during a load, and two concurrent
    /// loads could restore each other's hooks and lose the application's).
    #[test]
    fn damaged_dumps_are_errors_and_other_threads_panics_still_reach_the_hook() {
        let (_dir, vdir) = persisted(200);
        let current = fs::read_to_string(vdir.join("CURRENT")).unwrap();
        // hnsw_rs asserts on a wrong magic number in the data file.
        fs::write(
            vdir.join(current.trim()).join("vectors.hnsw.data"),
            b"garbage!",
        )
        .unwrap();

        const PANICKER: &str = "vector-test-panicker";
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(PANICKER) {
                counter.fetch_add(1, Ordering::SeqCst);
            } else {
                previous(info);
            }
        }));

        let loaders: Vec<_> = (0..3)
            .map(|_| {
                let vdir = vdir.clone();
                std::thread::spawn(move || {
                    for _ in 0..30 {
                        match VectorIndex::open(&vdir, HnswParams::default()) {
                            Err(IndexError::Corrupt { message, .. }) => {
                                assert!(message.contains("reindex"), "{message}")
                            }
                            Err(e) => panic!("unexpected error {e}"),
                            Ok(_) => panic!("a damaged dump opened"),
                        }
                    }
                })
            })
            .collect();
        let panicker = std::thread::Builder::new()
            .name(PANICKER.into())
            .spawn(|| {
                for i in 0..300 {
                    let _ = std::panic::catch_unwind(|| panic!("test panic {i}"));
                }
            })
            .unwrap();
        for l in loaders {
            l.join().unwrap();
        }
        panicker.join().unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 300);
        // The hook is still installed after every load.
        std::thread::Builder::new()
            .name(PANICKER.into())
            .spawn(|| std::panic::catch_unwind(|| panic!("one more")).is_err())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 301);
    }

    /// An index that stays open notices a generation written by another handle (another
    /// process, in the server's case), and reloading counts one more graph read; its own
    /// writes are not "elsewhere".
    #[test]
    fn another_writers_generation_is_noticed_and_reloaded() {
        let (_dir, vdir) = persisted(100);
        let mut held = VectorIndex::open(&vdir, HnswParams::default()).unwrap();
        assert_eq!(held.loads(), 1);
        assert!(!held.written_elsewhere().unwrap());
        held.persist().unwrap();
        assert!(!held.written_elsewhere().unwrap(), "its own generation");

        let mut other = VectorIndex::open(&vdir, HnswParams::default()).unwrap();
        other.insert(sample(150, 16)[100..].to_vec());
        other.meta.seq = 2;
        other.persist().unwrap();
        assert!(held.written_elsewhere().unwrap());
        held.reload().unwrap();
        assert_eq!((held.loads(), held.points(), held.covered()), (2, 150, 2));
        assert!(!held.written_elsewhere().unwrap());
    }
}
