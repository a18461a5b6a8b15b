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

use std::fs;
use std::path::{Path, PathBuf};

use hnsw_rs::prelude::*;
use serde::{Deserialize, Serialize};

use super::IndexError;
use crate::store::Store;

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

type Graph = Hnsw<'static, f32, CosineNormalized>;

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

#[derive(Clone, Debug, Serialize, Deserialize)]
struct GenMeta {
    seq: i64,
    points: usize,
    dim: usize,
    model: Option<String>,
    params: HnswParams,
}

/// The persisted HNSW index of one workspace.
pub struct VectorIndex {
    dir: PathBuf,
    graph: Option<Graph>,
    meta: GenMeta,
    params: HnswParams,
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
        let empty = GenMeta {
            seq: 0,
            points: 0,
            dim: 0,
            model: None,
            params,
        };
        let (graph, meta) = match fs::read_to_string(&current) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, empty),
            Err(e) => return Err(io(&current)(e)),
            Ok(name) => {
                let gen = dir.join(name.trim());
                let meta_path = gen.join("meta.json");
                let meta: GenMeta = fs::read(&meta_path).map_err(io(&meta_path)).and_then(|b| {
                    serde_json::from_slice(&b).map_err(|e| IndexError::Corrupt {
                        path: meta_path.clone(),
                        message: e.to_string(),
                    })
                })?;
                let graph = if meta.points == 0 {
                    None
                } else {
                    Some(load_graph(&gen)?)
                };
                (graph, meta)
            }
        };
        Ok(VectorIndex {
            dir: dir.to_path_buf(),
            graph,
            meta,
            params,
        })
    }

    /// An empty index in `dir` that ignores whatever generation is there (for rebuilds: the old
    /// graph is replaced when the new one is persisted).
    pub fn empty(dir: &Path, params: HnswParams) -> Result<Self, IndexError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        Ok(VectorIndex {
            dir: dir.to_path_buf(),
            graph: None,
            meta: GenMeta {
                seq: 0,
                points: 0,
                dim: 0,
                model: None,
                params,
            },
            params,
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

    fn new_graph(&self, expected: usize) -> Graph {
        Hnsw::new(
            self.params.m,
            expected.max(1024),
            16,
            self.params.ef_construction,
            CosineNormalized,
        )
    }

    fn insert(&mut self, items: &[(Vec<f32>, usize)]) {
        if items.is_empty() {
            return;
        }
        if self.graph.is_none() {
            self.graph = Some(self.new_graph(items.len()));
        }
        let g = self.graph.as_ref().expect("just created");
        let refs: Vec<(&Vec<f32>, usize)> = items.iter().map(|(v, id)| (v, *id)).collect();
        g.parallel_insert(&refs);
        self.meta.dim = items[0].0.len();
        self.meta.points += items.len();
    }

    /// Inserts the vectors of every store change after the covered sequence, then persists a new
    /// generation. Rebuilds instead when stale points would outnumber live ones.
    pub fn catch_up(&mut self, store: &Store) -> Result<usize, IndexError> {
        let target = store.seq()?;
        if target <= self.meta.seq {
            return Ok(0);
        }
        let items: Vec<(Vec<f32>, usize)> = store
            .vectors_since(self.meta.seq)?
            .into_iter()
            .map(|(vec_id, vector)| (vector, vec_id as usize))
            .collect();
        let live = store.live_vec_ids()?.len();
        if self.meta.points + items.len() > 2 * live.max(1) + 1024 {
            return self.rebuild(store);
        }
        let n = items.len();
        let t = std::time::Instant::now();
        self.insert(&items);
        tracing::debug!(n, secs = t.elapsed().as_secs_f64(), "index: hnsw insert");
        self.meta.seq = target;
        self.meta.model = store.model_fingerprint()?;
        self.persist()?;
        Ok(n)
    }

    /// Rebuilds the graph from the store's current vectors and persists it.
    pub fn rebuild(&mut self, store: &Store) -> Result<usize, IndexError> {
        let target = store.seq()?;
        let mut items = Vec::new();
        store.for_each(|_, vec_id, vector| {
            items.push((vector, vec_id as usize));
            Ok(())
        })?;
        self.graph = None;
        self.meta = GenMeta {
            seq: target,
            points: 0,
            dim: 0,
            model: store.model_fingerprint()?,
            params: self.params,
        };
        let n = items.len();
        self.insert(&items);
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
        if let Some(g) = &self.graph {
            g.file_dump(&tmp, "vectors")
                .map_err(|e| IndexError::Vector {
                    path: tmp.clone(),
                    message: e.to_string(),
                })?;
            for f in ["vectors.hnsw.graph", "vectors.hnsw.data"] {
                crate::fs::sync_file(&tmp.join(f))?;
            }
        }
        let meta = serde_json::to_vec_pretty(&self.meta).expect("meta serialises");
        write_atomic(&tmp.join("meta.json"), &meta)?;
        fs::rename(&tmp, &gen).map_err(io(&gen))?;
        crate::fs::sync_dir(&self.dir)?;
        write_atomic(&self.dir.join("CURRENT"), name.as_bytes())?;
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
        accept: &dyn Fn(usize) -> bool,
    ) -> Vec<(i64, f32)> {
        let Some(g) = &self.graph else {
            return Vec::new();
        };
        let filter = |id: &usize| accept(*id);
        g.search_filter(query, k, ef.max(k), Some(&filter))
            .into_iter()
            .map(|n| (n.d_id as i64, 1.0 - n.distance))
            .collect()
    }
}

fn load_graph(gen: &Path) -> Result<Graph, IndexError> {
    for f in ["vectors.hnsw.graph", "vectors.hnsw.data"] {
        let p = gen.join(f);
        if !p.is_file() {
            return Err(IndexError::Corrupt {
                path: p,
                message: "missing file of the vector index (run `verbatim reindex`)".into(),
            });
        }
    }
    // hnsw_rs ties the loaded graph's lifetime to its loader (for the mmap mode, which we do not
    // use). The loader is a few paths and options; leaking one per opened index lets the graph
    // be 'static, at the cost of a few hundred bytes per process.
    // hnsw_rs asserts (panics) on some malformed files instead of returning an error; a damaged
    // derived index must be a reported error that `reindex` repairs, not a crash. The panic hook
    // is silenced for the duration so the user sees our message, not hnsw_rs's.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let dir = gen.to_path_buf();
    let loaded = std::panic::catch_unwind(move || {
        let loader: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&dir, "vectors")));
        loader.load_hnsw::<f32, CosineNormalized>()
    });
    std::panic::set_hook(hook);
    let corrupt = |message: String| IndexError::Corrupt {
        path: gen.join("vectors.hnsw.graph"),
        message: format!("{message} (run `verbatim reindex` to rebuild it from the store)"),
    };
    match loaded {
        Ok(Ok(g)) => Ok(g),
        Ok(Err(e)) => Err(corrupt(e.to_string())),
        Err(_) => Err(corrupt("malformed HNSW dump".into())),
    }
}
