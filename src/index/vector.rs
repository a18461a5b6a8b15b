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
//! **Erasure masks, compaction rebuilds.** Rebuilding the graph after every erasure cost 35 s at
//! 100k points (minutes at 1M). An erasure ([`VectorIndex::erase`]) instead *masks* every slot of
//! the graph the store no longer holds (erased verbatims and stale slots of earlier updates):
//! searches never return a masked slot (the graph still walks through it, so recall holds), its
//! vector is overwritten with zeros *in place* in the data file, and the mask is recorded in the
//! generation's `meta.json`. The cost grows with the number of slots (one pass over an 8-byte-per-
//! slot id list, and the store's list of live slots) and the erased slots (one positioned write
//! each), not with the graph's size in bytes or its build time. When masked slots exceed
//! [`COMPACT_SHARE`] of the graph the erasure rebuilds it (*compaction*), as `verbatim reindex`
//! does; a rebuild starts with no mask. The graph file keeps a masked slot's topology (its id, its
//! neighbours' ids and the distances to them) until then; no vector coordinate, no text.
//!
//! **Files of a generation** (for readers such as `verbatim check`):
//!
//! - `vectors.hnsw.graph`, `vectors.hnsw.data`: hnsw_rs's dump (native byte order). The data file
//!   is a 12-byte header (`0xa67f0000` as u32, the dimension as u64), then one record per point:
//!   `0xa67f0000` (u32), the slot id (u64), the byte length `4 × dim` (u64), the f32 values. Every
//!   record has the same size, so record `i` starts at `12 + i × (20 + 4 × dim)`. The records of
//!   masked slots hold zeros (their header is kept).
//! - `vectors.slots`: the slot id of each data record, in record order (u64, little-endian): how
//!   an erasure finds the records to zero without reading the data file. Absent in generations
//!   written before masking existed (the data file is scanned instead).
//! - `meta.json`: covered sequence, point count, dimension, model, parameters, layout, language
//!   means, and `masked` (sorted slot ids; absent when none).
//! - `SUMS.json` ([`seal_generation`]): the SHA-256 of the graph, slots and `meta.json` files,
//!   and for the data file the SHA-256 of its 1 MiB blocks' SHA-256s, which
//!   `vectors.hnsw.data.blocks` keeps (32 bytes a block) so that masking hashes only the blocks
//!   it zeroed.
//!
//! Masking in place still switches generations: the new one hard-links the two dump files (no
//! copy) beside a new `meta.json`, so another process holding the graph open (the server) sees
//! `CURRENT` change and reloads rather than dumping the vectors it still holds in memory; a
//! dump of a graph with masked slots zeroes their records before it is published.
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
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, Once};

use hnsw_rs::prelude::*;
use serde::{Deserialize, Serialize};

use super::IndexError;
use crate::store::Store;
use crate::vecmath::LanguageMeans;

/// Cosine distance for L2-normalised vectors: `1 - a·b`, written so the compiler vectorises it
/// (hnsw_rs's scalar fold does not). It keeps 32 accumulators — four AVX2 registers, four
/// independent add chains — where [`dot`]'s eight make one register and one chain that waits
/// on each add: 1.3× the build speed and 1.4× the queries per second of the graph on 86k real
/// vectors (BENCHMARKS "The graph against hnswlib"). Same value as `1 - dot` up to rounding.
#[derive(Clone, Copy, Debug, Default)]
pub struct CosineNormalized;

/// `a·b` with 32 accumulators (see [`CosineNormalized`]); the tail (length not a multiple of
/// 32) goes through [`dot`].
#[inline]
fn dot_wide(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 32];
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..32 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + dot(ra, rb)
}

/// The vectorised dot product, from [`crate::vecmath`] (kept here for callers of
/// `index::vector::dot`).
pub use crate::vecmath::dot;

impl Distance<f32> for CosineNormalized {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - dot_wide(va, vb)).max(0.0)
    }
}

/// The graph, borrowing from the `HnswIo` loader it was read with (`'io`; hnsw_rs ties the two for
/// its mmap mode, which we do not use).
type Graph<'io> = Hnsw<'io, f32, CosineNormalized>;

/// HNSW build parameters.
///
/// M = 16 and ef_construction = 100 (hnswlib's defaults are 16 and 200). Measured with
/// `cargo run --release --example hnsw_params -- 40000 EFC 16 WS/store.sqlite` on 40k real
/// chit-chat embeddings, 2 threads, recall@10 by distance at ef 128 (verbatim searches with
/// ef ≥ 128), with the published hnsw_rs: ef_construction 200 → 26.2 s, 0.9985; 100 → 12.6 s,
/// 0.9945; 80 → 10.7 s, 0.9915; 64 → 7.7 s, 0.9835. It was 80 while hnsw_rs built ~3× slower
/// than hnswlib; the patched hnsw_rs (`vendor/hnsw_rs/PATCHES.md`) builds ~2× faster, so 100
/// now costs less than 80 did (BENCHMARKS.md, "The graph, patched").
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
            ef_construction: 100,
        }
    }
}

/// What the points of a generation are: 1 = each vector centred on its language's mean when
/// the workspace has means (0, absent in older `meta.json`: raw vectors; rebuilt on catch-up).
pub const LAYOUT: u32 = 1;

/// Share of the graph's slots that may be masked before an erasure compacts it (rebuilds it from
/// the store, with no mask). At 20% a search walks at most one dead point in five, which keeps
/// recall@10 within a hair of a clean graph (`masking_keeps_recall_and_survives_a_reopen`), and a
/// rebuild, whose cost grows with the graph, is paid once per fifth of the graph erased.
pub const COMPACT_SHARE: f64 = 0.2;

/// The dump's file names inside a generation folder (module docs: their layout).
pub const GRAPH_FILE: &str = "vectors.hnsw.graph";
/// See [`GRAPH_FILE`].
pub const DATA_FILE: &str = "vectors.hnsw.data";
/// The slot id of each data record, in record order (u64 little-endian).
pub const SLOTS_FILE: &str = "vectors.slots";
/// hnsw_rs's marker at the head of the data file and of each of its records.
const DATA_MAGIC: u32 = 0xa67f_0000;
/// The data file's header: magic (u32) and dimension (u64).
const DATA_HEADER: u64 = 12;
/// A record's header: magic (u32), slot id (u64), byte length (u64).
const RECORD_HEADER: u64 = 20;

/// The masked slots of a generation, sorted; shared with searches running on the graph thread.
#[derive(Clone, Debug, Default)]
struct Masked(Arc<Vec<usize>>);

impl Masked {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn contains(&self, slot: usize) -> bool {
        self.0.binary_search(&slot).is_ok()
    }
}

impl Serialize for Masked {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Masked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut v = Vec::<usize>::deserialize(d)?;
        v.sort_unstable();
        v.dedup();
        Ok(Masked(Arc::new(v)))
    }
}

/// What [`VectorIndex::erase`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Erasure {
    /// Slots taken out of the graph's answers: masked now, or left out of a rebuild.
    pub removed: usize,
    /// The graph was rebuilt (masked slots over [`COMPACT_SHARE`], or an outdated generation).
    pub compacted: bool,
    /// Masked slots before the compaction (0 when none ran).
    pub masked_before_compaction: usize,
    /// Slots of the graph before the compaction.
    pub slots_before_compaction: usize,
}

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
    /// Slots masked by erasures since the last rebuild (never returned; zeros in the data file).
    #[serde(default, skip_serializing_if = "Masked::is_empty")]
    masked: Masked,
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
            masked: Masked::default(),
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
    /// The generation's graph is not read yet ([`VectorIndex::open_unloaded`]).
    unloaded: bool,
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
        VectorIndex::open_with(dir, params, true)
    }

    /// Opens the index in `dir` without reading its graph: what an erasure needs (masking works
    /// on the files, and at a million points reading the graph costs ~20 s). The graph is read
    /// when a catch-up has vectors to insert or a dump is written; searching such an index
    /// before [`VectorIndex::load`] is a bug (it panics).
    pub fn open_unloaded(dir: &Path, params: HnswParams) -> Result<Self, IndexError> {
        VectorIndex::open_with(dir, params, false)
    }

    /// Reads the graph of an index opened by [`VectorIndex::open_unloaded`] (nothing otherwise).
    pub fn load(&mut self) -> Result<(), IndexError> {
        if let (true, Some(gen)) = (self.unloaded, self.gen.as_ref()) {
            self.graph = GraphThread::start(Some(&self.dir.join(gen)))?;
            self.loads += 1;
        }
        self.unloaded = false;
        Ok(())
    }

    fn open_with(dir: &Path, params: HnswParams, load: bool) -> Result<Self, IndexError> {
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
                let graph = if meta.points == 0 || !load {
                    GraphThread::start(None)?
                } else {
                    GraphThread::start(Some(&gen))?
                };
                (graph, meta, Some(name))
            }
        };
        let held = gen_name.is_some() && meta.points > 0;
        Ok(VectorIndex {
            dir: dir.to_path_buf(),
            graph,
            meta,
            params,
            gen: gen_name,
            loads: u64::from(held && load),
            unloaded: held && !load,
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
            unloaded: false,
        })
    }

    /// The store sequence this index covers.
    pub fn covered(&self) -> i64 {
        self.meta.seq
    }

    /// Points in the graph that searches may return: every slot but the masked ones (live
    /// slots, and stale slots of updates not yet masked by an erasure).
    pub fn points(&self) -> usize {
        self.meta.points - self.meta.masked.0.len()
    }

    /// Slots in the graph, masked ones included.
    pub fn slots(&self) -> usize {
        self.meta.points
    }

    /// Masked slots (erased since the last rebuild; never returned by a search).
    pub fn masked(&self) -> usize {
        self.meta.masked.0.len()
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
        if items.is_empty() {
            // Only deletions (their slots are filtered by the store): record the sequence in a
            // generation that links the same dump, rather than dumping the graph again.
            self.meta.model = store.model_fingerprint()?;
            return self.mask(Vec::new(), target).map(|_| 0);
        }
        self.load()?;
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
        self.unloaded = false;
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
        self.load()?;
        let name = self.generation_name();
        let tmp = self.dir.join(format!("{name}.partial"));
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
            // The graph in memory still holds the vectors of masked slots: zero their records
            // before the generation is published.
            let (dim, slots) = scan_data(&tmp.join(DATA_FILE))?;
            let masked = &self.meta.masked;
            zero_records(&tmp.join(DATA_FILE), dim, &slots, |s| masked.contains(s))?;
            write_slots(&tmp.join(SLOTS_FILE), &slots)?;
            for f in [GRAPH_FILE, DATA_FILE] {
                crate::fs::sync_file(&tmp.join(f))?;
            }
        }
        self.publish(&name, &tmp, None)
    }

    /// A new generation's name, for the sequence covered now.
    fn generation_name(&self) -> String {
        format!(
            "gen-{:012}-{}",
            self.meta.seq,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        )
    }

    /// Writes `meta.json` into the prepared folder `tmp`, renames it to the generation `name`,
    /// points `CURRENT` at it and deletes every other generation.
    /// `resealed_from`: the generation whose dump files `tmp` hard-links, and the data-file
    /// blocks zeroed since it was sealed (only those are hashed again: [`reseal`]).
    fn publish(
        &mut self,
        name: &str,
        tmp: &Path,
        resealed_from: Option<(&Path, &[u64])>,
    ) -> Result<(), IndexError> {
        let gen = self.dir.join(name);
        let meta = serde_json::to_vec_pretty(&self.meta).expect("meta serialises");
        write_atomic(&tmp.join("meta.json"), &meta)?;
        reseal(tmp, resealed_from)?;
        fs::rename(tmp, &gen).map_err(io(&gen))?;
        crate::fs::sync_dir(&self.dir)?;
        write_atomic(&self.dir.join("CURRENT"), name.as_bytes())?;
        self.gen = Some(name.to_string());
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

    /// Takes every slot the store no longer holds out of the graph (module docs: *Erasure
    /// masks, compaction rebuilds*): masks it, zeroes its vector in the data file and publishes
    /// the mask with the store's sequence, so the next open has nothing to catch up. Compacts
    /// (rebuilds) when masked slots then exceed [`COMPACT_SHARE`], or when the generation is
    /// outdated ([`VectorIndex::stale`], or ahead of the store). Vectors the graph has not seen
    /// yet are inserted first ([`VectorIndex::catch_up`]).
    pub fn erase(&mut self, store: &Store) -> Result<Erasure, IndexError> {
        let seq = store.seq()?;
        if !self.stale() && self.meta.seq <= seq && !store.vectors_since(self.meta.seq)?.is_empty()
        {
            self.catch_up(store)?;
        }
        if self.stale() || self.meta.seq > seq {
            return self.compact(store);
        }
        let live = store.live_vec_ids()?;
        let slots = self.slot_ids()?;
        let dead: Vec<usize> = slots
            .iter()
            .map(|&s| s as usize)
            .filter(|&s| live.binary_search(&(s as i64)).is_err() && !self.meta.masked.contains(s))
            .collect();
        let removed = self.mask(dead, seq)?;
        if self.meta.points > 0 && self.masked() as f64 > COMPACT_SHARE * self.meta.points as f64 {
            let mut e = self.compact(store)?;
            e.removed = removed;
            return Ok(e);
        }
        Ok(Erasure {
            removed,
            ..Erasure::default()
        })
    }

    /// Rebuilds from the store (dropping every masked and stale slot), saying how many slots
    /// were masked before.
    fn compact(&mut self, store: &Store) -> Result<Erasure, IndexError> {
        let (masked, slots) = (self.masked(), self.meta.points);
        let live_before = self.points();
        self.rebuild(store)?;
        Ok(Erasure {
            removed: live_before.saturating_sub(self.points()),
            compacted: true,
            masked_before_compaction: masked,
            slots_before_compaction: slots,
        })
    }

    /// Masks `slots` (those in the graph and not masked yet): zeroes their records in the
    /// current generation's data file, then publishes a generation that hard-links the same dump
    /// files beside a `meta.json` with the larger mask and the sequence `seq`. Returns how many
    /// slots it masked. The graph is not rebuilt: the cost is one positioned write per slot plus
    /// reading the slot list.
    pub fn mask(&mut self, slots: Vec<usize>, seq: i64) -> Result<usize, IndexError> {
        let Some(current) = self.gen.clone().filter(|_| self.meta.points > 0) else {
            // Nothing dumped yet: no slot to mask, only the sequence to record.
            self.meta.seq = seq;
            return self.persist().map(|()| 0);
        };
        let old = self.dir.join(&current);
        let (dim, order) = read_slots_or_scan(&old)?;
        let mut in_graph = order.clone();
        in_graph.sort_unstable();
        let mut add = slots;
        add.sort_unstable();
        add.dedup();
        add.retain(|&s| {
            !self.meta.masked.contains(s) && in_graph.binary_search(&(s as u64)).is_ok()
        });
        let data = old.join(DATA_FILE);
        let mut touched = Vec::new();
        if !add.is_empty() {
            for (start, len) in zero_records(&data, dim, &order, |s| add.binary_search(&s).is_ok())?
            {
                touched.extend(start / SUM_BLOCK..=(start + len - 1) / SUM_BLOCK);
            }
            crate::fs::sync_file(&data)?;
        }
        let mut masked: Vec<usize> = self.meta.masked.0.as_ref().clone();
        masked.extend(add.iter().copied());
        masked.sort_unstable();
        self.meta.masked = Masked(Arc::new(masked));
        self.meta.seq = seq;
        let name = self.generation_name();
        let tmp = self.dir.join(format!("{name}.partial"));
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        for f in [GRAPH_FILE, DATA_FILE] {
            fs::hard_link(old.join(f), tmp.join(f)).map_err(io(&tmp.join(f)))?;
        }
        // A generation from before masking has no slots file: write the order scanned above.
        match fs::hard_link(old.join(SLOTS_FILE), tmp.join(SLOTS_FILE)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_slots(&tmp.join(SLOTS_FILE), &order)?
            }
            r => r.map_err(io(&tmp.join(SLOTS_FILE)))?,
        }
        self.publish(&name, &tmp, Some((&old, &touched)))?;
        Ok(add.len())
    }

    /// The slot ids of the current generation's dump, in record order (empty when nothing is
    /// dumped).
    fn slot_ids(&self) -> Result<Vec<u64>, IndexError> {
        let Some(gen) = self.gen.as_ref().filter(|_| self.meta.points > 0) else {
            return Ok(Vec::new());
        };
        Ok(read_slots_or_scan(&self.dir.join(gen))?.1)
    }

    /// An index of the given vectors (already centred, if centring applies), persisted in `dir`
    /// as covering sequence `seq`: how benchmarks and tools build a graph without a store.
    pub fn from_vectors(
        dir: &Path,
        params: HnswParams,
        items: Vec<(Vec<f32>, usize)>,
        seq: i64,
    ) -> Result<Self, IndexError> {
        let mut ix = VectorIndex::empty(dir, params)?;
        ix.insert(items);
        ix.meta.seq = seq;
        ix.persist()?;
        Ok(ix)
    }

    /// Approximate nearest neighbours among every slot searches may return (all but the masked
    /// ones): `(vec_id, cosine)`, best first. Without masked slots the graph is walked with no
    /// filter at all — hnsw_rs then stops as soon as no candidate can improve the answer, where
    /// a filtered walk explores until its candidates run out (2–3× the time at 100k).
    pub fn search_all(&self, query: &[f32], k: usize, ef: usize) -> Vec<(i64, f32)> {
        self.walk(query, k, ef, None)
    }

    /// Approximate nearest neighbours among the slots `accept` allows: `(vec_id, cosine)`, best first.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: impl Fn(usize) -> bool + Send + 'static,
    ) -> Vec<(i64, f32)> {
        self.walk(query, k, ef, Some(Box::new(accept)))
    }

    /// The graph walk of [`VectorIndex::search`] and [`VectorIndex::search_all`]: masked slots
    /// and those `accept` refuses are never returned; with neither, no filter is given.
    fn walk(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Option<Box<dyn Fn(usize) -> bool + Send>>,
    ) -> Vec<(i64, f32)> {
        if self.meta.points == 0 {
            return Vec::new();
        }
        assert!(
            !self.unloaded,
            "a vector index opened unloaded is searched before VectorIndex::load"
        );
        let query = query.to_vec();
        let masked = self.meta.masked.clone();
        self.graph.run(move |graph| {
            let Some(g) = graph.as_ref() else {
                return Vec::new();
            };
            let filter =
                |id: &usize| !masked.contains(*id) && accept.as_ref().is_none_or(|a| a(*id));
            let filtered = accept.is_some() || !masked.is_empty();
            let filter: Option<&dyn FilterT> = filtered.then_some(&filter as &dyn FilterT);
            g.search_filter(&query, k, ef.max(k), filter)
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

/// Set by [`free_graphs_in_background`].
static DETACH_GRAPHS: AtomicBool = AtomicBool::new(false);

/// From now on, a dropped graph is freed by its own thread while the caller goes on, instead of
/// being waited for. For the command-line binary, whose process ends right after its command:
/// at a million points freeing a graph's ~1M neighbour lists takes ~8 s (a third of a CLI
/// `stats` there), work the process's exit does for nothing. A graph replaced mid-command
/// (a reload, a rebuild) is still freed, beside what follows.
pub fn free_graphs_in_background() {
    DETACH_GRAPHS.store(true, std::sync::atomic::Ordering::Relaxed);
}

impl Drop for GraphThread {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop (every job has answered: `run` waits for
        // its result), which then frees the graph and touches no file; joining waits for that.
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            if !DETACH_GRAPHS.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = t.join();
            }
        }
    }
}

/// Both dump files must be there before hnsw_rs is asked to read them.
/// The file beside a generation's dump that holds the SHA-256 of each of its files.
pub const SUMS_FILE: &str = "SUMS.json";

/// The files of a generation a [`SUMS_FILE`] covers (those present).
const SEALED_FILES: [&str; 4] = [GRAPH_FILE, DATA_FILE, SLOTS_FILE, "meta.json"];

/// Writes [`SUMS_FILE`] for the generation folder `gen`: the SHA-256 of each of its files, so
/// `verbatim check` can tell a changed byte in the graph (neighbour lists, which nothing else
/// verifies) from a sound file. Whoever rewrites a generation's files in place calls it again.
///
/// The data file's sum is the SHA-256 of its 1 MiB blocks' SHA-256s ([`SUM_BLOCK`]), kept in
/// [`BLOCK_SUMS_FILE`], so that masking, which zeroes a few records in place, hashes again only
/// the blocks it wrote ([`reseal`]) rather than the whole file (1.5 GB at a million points).
pub fn seal_generation(gen: &Path) -> Result<(), IndexError> {
    reseal(gen, None)
}

/// Block size of the data file's sums.
const SUM_BLOCK: u64 = 1 << 20;

/// The data file's block sums (32 bytes of SHA-256 per [`SUM_BLOCK`] block, in order): derived
/// from the data file, kept so masking hashes only the blocks it zeroed; trusted only when they
/// hash to the data file's entry in [`SUMS_FILE`].
pub const BLOCK_SUMS_FILE: &str = "vectors.hnsw.data.blocks";

fn sha_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The SHA-256 of each [`SUM_BLOCK`] block of `path`, read as a stream.
fn block_sums(path: &Path) -> Result<Vec<[u8; 32]>, IndexError> {
    use sha2::Digest;
    let mut file = fs::File::open(path).map_err(io(path))?;
    let mut buf = vec![0u8; SUM_BLOCK as usize];
    let mut out = Vec::new();
    loop {
        let mut n = 0;
        while n < buf.len() {
            match file.read(&mut buf[n..]).map_err(io(path))? {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            return Ok(out);
        }
        out.push(sha2::Sha256::digest(&buf[..n]).into());
        if n < buf.len() {
            return Ok(out);
        }
    }
}

/// What [`SUMS_FILE`] records for the data file: the SHA-256 of its block sums, concatenated.
fn blocks_digest(blocks: &[[u8; 32]]) -> String {
    sha_hex(&blocks.concat())
}

fn read_sums(gen: &Path) -> Option<std::collections::BTreeMap<String, String>> {
    serde_json::from_slice(&fs::read(gen.join(SUMS_FILE)).ok()?).ok()
}

/// [`seal_generation`], or, with `from` (the generation whose dump files `gen` hard-links, and
/// the data-file blocks zeroed since it was sealed), reuses what did not change: the graph's
/// and slots' sums, and the data file's block sums but for `touched`. Falls back to hashing
/// everything when `from`'s sums are missing or do not agree with its block sums.
fn reseal(gen: &Path, from: Option<(&Path, &[u64])>) -> Result<(), IndexError> {
    let carried = from.and_then(|(old, touched)| {
        let sums = read_sums(old)?;
        let bytes = fs::read(old.join(BLOCK_SUMS_FILE)).ok()?;
        let blocks: Vec<[u8; 32]> = bytes
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        (bytes.len() % 32 == 0 && sums.get(DATA_FILE) == Some(&blocks_digest(&blocks)))
            .then_some((sums, blocks, touched))
    });
    let mut sums = std::collections::BTreeMap::new();
    for f in SEALED_FILES {
        let p = gen.join(f);
        if !p.exists() {
            continue;
        }
        let carried_sum = carried.as_ref().and_then(|(old, _, _)| old.get(f));
        let sum = match (f, &carried) {
            (DATA_FILE, Some((_, old_blocks, touched)))
                if fs::metadata(&p).map_err(io(&p))?.len().div_ceil(SUM_BLOCK)
                    == old_blocks.len() as u64 =>
            {
                let mut blocks = old_blocks.clone();
                let file = fs::File::open(&p).map_err(io(&p))?;
                let mut buf = vec![0u8; SUM_BLOCK as usize];
                for &b in touched.iter() {
                    let len = (fs::metadata(&p).map_err(io(&p))?.len() - b * SUM_BLOCK)
                        .min(SUM_BLOCK) as usize;
                    file.read_exact_at(&mut buf[..len], b * SUM_BLOCK)
                        .map_err(io(&p))?;
                    use sha2::Digest;
                    blocks[b as usize] = sha2::Sha256::digest(&buf[..len]).into();
                }
                write_atomic(&gen.join(BLOCK_SUMS_FILE), &blocks.concat())?;
                blocks_digest(&blocks)
            }
            (DATA_FILE, _) => {
                let blocks = block_sums(&p)?;
                write_atomic(&gen.join(BLOCK_SUMS_FILE), &blocks.concat())?;
                blocks_digest(&blocks)
            }
            // Hard-linked from `from`, unchanged: its sum still holds (or still exposes damage).
            (GRAPH_FILE | SLOTS_FILE, _) if carried_sum.is_some() => {
                carried_sum.expect("checked").clone()
            }
            _ => sha_hex(&fs::read(&p).map_err(io(&p))?),
        };
        sums.insert(f.to_string(), sum);
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
        let now = match f {
            DATA_FILE => block_sums(&p).ok().map(|b| blocks_digest(&b)),
            _ => fs::read(&p).ok().map(|b| sha_hex(&b)),
        };
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

/// Reads a data file's dimension and the slot id of each record, in record order, checking every
/// record's header (module docs: the layout).
fn scan_data(path: &Path) -> Result<(usize, Vec<u64>), IndexError> {
    let file = fs::File::open(path).map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let corrupt = |message: String| IndexError::Corrupt {
        path: path.to_path_buf(),
        message: format!("{message} (run `verbatim reindex` to rebuild it from the store)"),
    };
    let mut header = [0u8; DATA_HEADER as usize];
    r.read_exact(&mut header).map_err(io(path))?;
    if u32::from_ne_bytes(header[..4].try_into().expect("4 bytes")) != DATA_MAGIC {
        return Err(corrupt(
            "not an hnsw_rs data file (bad magic at offset 0)".into(),
        ));
    }
    let dim = u64::from_ne_bytes(header[4..].try_into().expect("8 bytes")) as usize;
    let record = RECORD_HEADER + 4 * dim as u64;
    let body = len - DATA_HEADER;
    if body % record != 0 {
        return Err(corrupt(format!(
            "{body} bytes of records is not a whole number of {record}-byte records"
        )));
    }
    let mut ids = Vec::with_capacity((body / record) as usize);
    let mut head = [0u8; RECORD_HEADER as usize];
    let mut values = vec![0u8; 4 * dim];
    for i in 0..body / record {
        let at = DATA_HEADER + i * record;
        r.read_exact(&mut head).map_err(io(path))?;
        let (magic, id, n) = record_header(&head);
        if magic != DATA_MAGIC || n != 4 * dim as u64 {
            return Err(corrupt(format!("bad record header at offset {at}")));
        }
        r.read_exact(&mut values).map_err(io(path))?;
        ids.push(id);
    }
    Ok((dim, ids))
}

fn record_header(head: &[u8; RECORD_HEADER as usize]) -> (u32, u64, u64) {
    (
        u32::from_ne_bytes(head[..4].try_into().expect("4 bytes")),
        u64::from_ne_bytes(head[4..12].try_into().expect("8 bytes")),
        u64::from_ne_bytes(head[12..].try_into().expect("8 bytes")),
    )
}

/// The dimension and record-order slot ids of a generation: from its slots file when it has
/// one (the dimension from the data file's header), else by scanning the data file.
fn read_slots_or_scan(gen: &Path) -> Result<(usize, Vec<u64>), IndexError> {
    let path = gen.join(SLOTS_FILE);
    let bytes = match fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return scan_data(&gen.join(DATA_FILE))
        }
        r => r.map_err(io(&path))?,
    };
    if bytes.len() % 8 != 0 {
        return Err(IndexError::Corrupt {
            path,
            message: format!(
                "{} bytes is not a list of 8-byte slot ids (run `verbatim reindex`)",
                bytes.len()
            ),
        });
    }
    let data = gen.join(DATA_FILE);
    let mut header = [0u8; DATA_HEADER as usize];
    fs::File::open(&data)
        .and_then(|f| f.read_exact_at(&mut header, 0))
        .map_err(io(&data))?;
    let dim = u64::from_ne_bytes(header[4..].try_into().expect("8 bytes")) as usize;
    let ids = bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    Ok((dim, ids))
}

/// Writes the record-order slot ids (u64 little-endian), durably.
fn write_slots(path: &Path, ids: &[u64]) -> Result<(), IndexError> {
    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
    write_atomic(path, &bytes)?;
    Ok(())
}

/// Overwrites with zeros the values of each record whose slot `zero` selects (`order`: the
/// slot of each record), after checking the record's header names that slot. Returns the byte
/// ranges (offset, length) it zeroed; the caller syncs the file.
fn zero_records(
    path: &Path,
    dim: usize,
    order: &[u64],
    zero: impl Fn(usize) -> bool,
) -> Result<Vec<(u64, u64)>, IndexError> {
    let picked: Vec<(u64, u64)> = order
        .iter()
        .enumerate()
        .filter(|(_, &s)| zero(s as usize))
        .map(|(i, &s)| (i as u64, s))
        .collect();
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io(path))?;
    let record = RECORD_HEADER + 4 * dim as u64;
    let zeros = vec![0u8; 4 * dim];
    let mut head = [0u8; RECORD_HEADER as usize];
    for &(i, slot) in &picked {
        let at = DATA_HEADER + i * record;
        file.read_exact_at(&mut head, at).map_err(io(path))?;
        let (magic, id, n) = record_header(&head);
        if magic != DATA_MAGIC || id != slot || n != 4 * dim as u64 {
            return Err(IndexError::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "record {i} at offset {at} is not slot {slot}'s (the slots file disagrees with the data file; run `verbatim reindex`)"
                ),
            });
        }
        file.write_all_at(&zeros, at + RECORD_HEADER)
            .map_err(io(path))?;
    }
    Ok(picked
        .iter()
        .map(|&(i, _)| (DATA_HEADER + i * record + RECORD_HEADER, 4 * dim as u64))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_distance_is_one_minus_the_dot_product() {
        for dim in [1, 7, 31, 32, 33, 384, 390] {
            let v = sample(2, dim);
            let (a, b) = (&v[0].0, &v[1].0);
            let d = CosineNormalized.eval(a, b);
            assert!((d - (1.0 - dot(a, b)).max(0.0)).abs() < 1e-5, "{dim}: {d}");
            assert!(CosineNormalized.eval(a, a) < 1e-5, "{dim}");
        }
    }
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    /// Exact top-`k` by cosine among the slots `keep` allows.
    fn exact(
        items: &[(Vec<f32>, usize)],
        q: &[f32],
        k: usize,
        keep: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        let mut scored: Vec<(f32, usize)> = items
            .iter()
            .filter(|(_, id)| keep(*id))
            .map(|(v, id)| (dot(v, q), *id))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(k).map(|(_, id)| id).collect()
    }

    /// Recall@10 of the index at ef 128 (what vector search uses) against exact search over the
    /// unmasked slots, and whether a masked slot was returned.
    fn recall(
        ix: &VectorIndex,
        items: &[(Vec<f32>, usize)],
        queries: &[(Vec<f32>, usize)],
        masked: &HashSet<usize>,
    ) -> (f64, bool) {
        let (mut found, mut total, mut leaked) = (0, 0, false);
        for (q, _) in queries {
            let truth = exact(items, q, 10, |id| !masked.contains(&id));
            let got: Vec<usize> = ix
                .search(q, 10, 128, |_| true)
                .iter()
                .map(|h| h.0 as usize)
                .collect();
            leaked |= got.iter().any(|id| masked.contains(id));
            found += truth.iter().filter(|id| got.contains(id)).count();
            total += truth.len();
        }
        (found as f64 / total as f64, leaked)
    }

    /// 10% of 4,000 random 48-dimensional unit vectors masked: recall@10 against exact search
    /// over the rest stays ≥ 0.95 and no masked slot comes back, in the process that masked
    /// (vectors still in memory) and after a reopen (their records zeroed on disk, so the walk
    /// sees them as far away); the mask is read back with the generation.
    #[test]
    fn masking_keeps_recall_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let vdir = dir.path().join("vectors");
        let all = sample(4100, 48);
        let (items, queries) = (all[..4000].to_vec(), all[4000..].to_vec());
        let mut ix =
            VectorIndex::from_vectors(&vdir, HnswParams::default(), items.clone(), 1).unwrap();
        let none = HashSet::new();
        let masked: HashSet<usize> = (0..4000).filter(|i| i % 10 == 3).collect();
        let (clean, _) = recall(&ix, &items, &queries, &none);
        let (_, leaked) = recall(&ix, &items, &queries, &masked);
        assert!(
            leaked,
            "unmasked, the graph returns the slots about to be masked"
        );
        assert_eq!(ix.mask(masked.iter().copied().collect(), 2).unwrap(), 400);
        assert_eq!(
            (ix.points(), ix.slots(), ix.masked(), ix.covered()),
            (3600, 4000, 400, 2)
        );
        let (in_memory, leaked) = recall(&ix, &items, &queries, &masked);
        assert!(!leaked);
        let mut ix = VectorIndex::open(&vdir, HnswParams::default()).unwrap();
        assert_eq!((ix.points(), ix.masked(), ix.covered()), (3600, 400, 2));
        let (reopened, leaked) = recall(&ix, &items, &queries, &masked);
        assert!(!leaked);
        eprintln!("recall@10: clean {clean:.4}, masked {in_memory:.4}, reopened {reopened:.4}");
        assert!(
            in_memory >= 0.95 && reopened >= 0.95,
            "{clean} {in_memory} {reopened}"
        );
        // Masking again what is masked, or a slot the graph never held, changes nothing.
        assert_eq!(ix.mask(vec![3, 13, 99_999], 3).unwrap(), 0);
        assert_eq!(ix.masked(), 400);
    }

    /// The bytes of a masked slot's vector are nowhere under the index folder after masking, nor
    /// after a later dump of the graph still held in memory (a server's catch-up), while an
    /// unmasked vector's bytes are still in the data file.
    #[test]
    fn a_masked_vector_leaves_no_byte_in_the_index_files() {
        let dir = tempfile::tempdir().unwrap();
        let vdir = dir.path().join("vectors");
        let items = sample(300, 16);
        let mut ix =
            VectorIndex::from_vectors(&vdir, HnswParams::default(), items[..200].to_vec(), 1)
                .unwrap();
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>();
        let (gone, kept) = (bytes(&items[17].0), bytes(&items[18].0));
        let everywhere = |needle: &[u8]| -> Vec<PathBuf> {
            walk(&vdir)
                .into_iter()
                .filter(|f| {
                    fs::read(f)
                        .unwrap()
                        .windows(needle.len())
                        .any(|w| w == needle)
                })
                .collect()
        };
        assert_eq!(
            everywhere(&gone).len(),
            1,
            "the dump holds the vector before"
        );
        let before = ix.gen.clone();
        assert_eq!(ix.mask(vec![17], 2).unwrap(), 1);
        assert_ne!(
            ix.gen, before,
            "a new generation name, so other holders reload"
        );
        assert!(everywhere(&gone).is_empty(), "{:?}", everywhere(&gone));
        assert_eq!(everywhere(&kept).len(), 1);
        // The graph held here still has slot 17's vector in memory: a dump must not bring it back.
        ix.insert(items[200..].to_vec());
        ix.meta.seq = 3;
        ix.persist().unwrap();
        assert!(everywhere(&gone).is_empty(), "{:?}", everywhere(&gone));
        assert_eq!(everywhere(&kept).len(), 1);
        let ix = VectorIndex::open(&vdir, HnswParams::default()).unwrap();
        assert_eq!((ix.points(), ix.masked()), (299, 1));
        assert!(ix
            .search(&items[17].0, 5, 64, |_| true)
            .iter()
            .all(|h| h.0 != 17));
        assert_eq!(ix.search(&items[18].0, 1, 64, |_| true)[0].0, 18);
    }

    /// An erasure masks without reading the graph: opened unloaded, masking reads no dump; the
    /// graph is read on [`VectorIndex::load`] (or a dump), with the mask in force.
    #[test]
    fn masking_an_unloaded_index_reads_no_graph() {
        let (_dir, vdir) = persisted(200);
        let items = sample(200, 16);
        let mut ix = VectorIndex::open_unloaded(&vdir, HnswParams::default()).unwrap();
        assert_eq!(ix.mask(vec![42], 2).unwrap(), 1);
        assert_eq!((ix.loads(), ix.points(), ix.covered()), (0, 199, 2));
        ix.load().unwrap();
        assert_eq!(ix.loads(), 1);
        assert!(ix
            .search(&items[42].0, 5, 64, |_| true)
            .iter()
            .all(|h| h.0 != 42));
        assert_eq!(ix.search(&items[43].0, 1, 64, |_| true)[0].0, 43);
        // A dump from an unloaded index reads the graph first: nothing is lost.
        let mut ix = VectorIndex::open_unloaded(&vdir, HnswParams::default()).unwrap();
        ix.meta.seq = 3;
        ix.persist().unwrap();
        let ix = VectorIndex::open(&vdir, HnswParams::default()).unwrap();
        assert_eq!((ix.slots(), ix.points(), ix.covered()), (200, 199, 3));
        assert_eq!(ix.search(&items[43].0, 1, 64, |_| true)[0].0, 43);
    }

    /// Masking reseals the generation hashing only the data blocks it zeroed: the new sums hold
    /// (`verbatim check` finds nothing), and damage elsewhere in the data file from before the
    /// masking is still exposed, not sealed over.
    #[test]
    fn masking_reseals_only_what_it_wrote_and_keeps_exposing_damage() {
        let dir = tempfile::tempdir().unwrap();
        let vdir = dir.path().join("vectors");
        // 2,000 × 820-byte records: two 1 MiB blocks.
        let mut ix =
            VectorIndex::from_vectors(&vdir, HnswParams::default(), sample(2000, 200), 1).unwrap();
        let gen = |ix: &VectorIndex| ix.generation_dir().unwrap();
        assert_eq!(unsealed_files(&gen(&ix)).unwrap(), Some(vec![]));
        let (_, order) = read_slots_or_scan(&gen(&ix)).unwrap();
        let record = RECORD_HEADER + 4 * 200;
        let offset_of = |slot: u64| {
            DATA_HEADER + order.iter().position(|&s| s == slot).unwrap() as u64 * record
        };
        // The last record is in block 1, the first in block 0.
        let (late, early) = (order[order.len() - 1], order[0]);
        assert_eq!(
            (offset_of(late) / SUM_BLOCK, offset_of(early) / SUM_BLOCK),
            (1, 0)
        );
        assert_eq!(ix.mask(vec![late as usize], 2).unwrap(), 1);
        assert_eq!(unsealed_files(&gen(&ix)).unwrap(), Some(vec![]));
        assert_eq!(
            fs::read(gen(&ix).join(BLOCK_SUMS_FILE)).unwrap(),
            block_sums(&gen(&ix).join(DATA_FILE)).unwrap().concat()
        );
        // A flipped value byte in block 0, then a masking that writes only block 1.
        let data = gen(&ix).join(DATA_FILE);
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&data)
            .unwrap();
        let mut b = [0u8; 1];
        let at = offset_of(early) + RECORD_HEADER + 5;
        f.read_exact_at(&mut b, at).unwrap();
        f.write_all_at(&[b[0] ^ 0x10], at).unwrap();
        let second_last = order[order.len() - 2];
        assert_eq!(ix.mask(vec![second_last as usize], 3).unwrap(), 1);
        assert_eq!(
            unsealed_files(&gen(&ix)).unwrap(),
            Some(vec![gen(&ix).join(DATA_FILE)])
        );
    }

    /// A generation written before masking existed (no slots file) is masked by scanning its
    /// data file, and gets a slots file; a slots file that disagrees with the data file is an
    /// error naming the file and offset, and nothing is zeroed.
    #[test]
    fn slots_come_from_the_data_file_when_the_slots_file_is_missing_or_wrong() {
        let (_dir, vdir) = persisted(100);
        let gen = |vdir: &Path| vdir.join(fs::read_to_string(vdir.join("CURRENT")).unwrap().trim());
        fs::remove_file(gen(&vdir).join(SLOTS_FILE)).unwrap();
        let mut ix = VectorIndex::open(&vdir, HnswParams::default()).unwrap();
        assert_eq!(ix.mask(vec![5, 6], 2).unwrap(), 2);
        let (_, order) = scan_data(&gen(&vdir).join(DATA_FILE)).unwrap();
        assert_eq!(read_slots_or_scan(&gen(&vdir)).unwrap().1, order);
        // Swap two ids in the slots file: the header check refuses to zero the wrong record.
        let mut wrong = order.clone();
        let i = wrong.iter().position(|&s| s == 7).unwrap();
        let j = (i + 1) % wrong.len();
        wrong.swap(i, j);
        let slots = gen(&vdir).join(SLOTS_FILE);
        fs::remove_file(&slots).unwrap();
        write_slots(&slots, &wrong).unwrap();
        let data_before = fs::read(gen(&vdir).join(DATA_FILE)).unwrap();
        match ix.mask(vec![7], 3) {
            Err(IndexError::Corrupt { path, message }) => {
                assert!(
                    path.ends_with(DATA_FILE) && message.contains("offset"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fs::read(gen(&vdir).join(DATA_FILE)).unwrap(), data_before);
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
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
