//! Retrieval: text (BM25), vector (HNSW) and hybrid (reciprocal-rank fusion), with filters.
//!
//! Filters never cost recall:
//! * text mode runs them inside tantivy (segment terms, date and score ranges);
//! * vector mode asks the store which vector slots pass; when few do (≤ [`EXACT_SCAN_LIMIT`], filtered or
//!   not) it scores them exactly, otherwise it runs a filtered HNSW search restricted to those slots;
//! * hybrid fuses the two filtered lists, so both already respect the filter.
//!
//! Stale vector slots (left by updated verbatims) are excluded by the same slot filter.
//!
//! Fusion is reciprocal-rank fusion (Cormack et al. 2009): `Σ 1 / (k + rank)` over the top
//! [`fusion_depth`] of each list, k = 30 rather than the paper's 60: a smaller k gives the first
//! places of each list more weight against agreement further down, and 30 scored better than 60
//! (and than 5–20) on the tuning half of the judged query set (BENCHMARKS, "Search quality on
//! judged queries"). It needs no score calibration between BM25 and cosine.
//!
//! Both languages: in a workspace of several languages the vector index holds vectors centred
//! per language ([`crate::vecmath::LanguageMeans`]); the query is centred with the mean of its
//! own language ([`index_space_query`]) and exact scans centre each stored vector the same way.
//!
//! Opinion units ([`units`]): candidates are read as their units once they have some — the
//! vector side ranks a verbatim by its best unit, each hit names the unit it answers with, and a
//! verbatim appears once.
//!
//! Sentiment (needs the workspace model's sentiment head, [`Query::head`]), read from the store
//! where it is kept once per verbatim and unit ([`ensure_sentiments`]):
//! * `--sentiment negative|neutral|positive` keeps only verbatims of that sentiment, read as the
//!   themes read it (the head on the verbatim vector, or on the mean of its sentence vectors when
//!   it has several). The allowed set is read first and passed to both retrievers (a doc-set
//!   clause inside tantivy, a slot restriction on the vector side), so it costs no recall.
//! * Negation on the vector side: the embedding reads "arrived with no damage" as close to
//!   "arrived damaged". Vector hits whose best unit (or text) holds a query word only with the
//!   other polarity (as the text index reads it: `NOT_damag` against `damag`, see
//!   [`contradicts`]) are moved after the other hits, in every mode and after the polarity
//!   boost, so they never lead a search for the opposite statement.
//! * Polarity-aware ranking (hybrid): when the query itself states an opinion — a problem or
//!   praise, its unit sentiment ([`crate::sentiment::unit`]) is negative or positive — a fused
//!   hit of the same polarity (the polarity of its unit holding most query words, else of the
//!   verbatim) has its score multiplied by `1 + `[`POLARITY_BOOST`] before the
//!   final sort: "too salty" ranks the complaints about salt before "not too salty, great",
//!   "my dog loves these treats" the praise before the dog that turned away. The unit a hit
//!   *shows* is then one of the query's polarity where the verbatim has one. A neutral query
//!   is ranked by fusion alone. Text and vector modes stay the plain retrievers (BM25, cosine):
//!   they are what hybrid is measured against.

pub mod judged;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::access::{Door, Grant};
use crate::embed::{Embedder, TextKind};
use crate::index::{IndexError, Indexes};
use crate::sentiment::SentimentHead;
use crate::store::{Filter, Store, Verbatim};
use crate::themes::Polarity;

mod units;
pub use units::HitUnit;

/// Filtered vector searches switch to an exact scan when at most this many verbatims pass.
pub const EXACT_SCAN_LIMIT: usize = 20_000;
/// RRF constant (see the module docs for why 30).
pub const RRF_K: f32 = 30.0;
/// Relative score bonus of a hit whose polarity is the query's, for a query that states an
/// opinion (see the module docs). With k = 30, a same-polarity hit at rank 3 of both lists
/// (2/33 × 1.3) passes an other-polarity one at rank 1 of both (2/31); at rank 11 of both
/// (2/41 × 1.3) it no longer does. Chosen on the tuning half of the judged query set (0.03, 0.1,
/// 0.2, 0.3, 0.5 tried).
pub const POLARITY_BOOST: f32 = 0.3;

/// Search mode.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BM25 over stemmed words.
    Text,
    /// Nearest neighbours of the query embedding.
    Vector,
    /// Both, fused by reciprocal rank.
    #[default]
    Hybrid,
}

/// A search request.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = SearchQuery)]
pub struct Query {
    /// What the user typed.
    pub text: String,
    /// Which retriever(s).
    #[serde(default)]
    pub mode: Mode,
    /// Metadata filter.
    #[serde(default)]
    pub filter: Filter,
    /// How many results.
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// Only verbatims of this sentiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Polarity>,
    /// The sentiment head of the workspace's model, set by the caller that can load it: needed
    /// by [`Query::sentiment`] and by polarity-aware ranking (skipped without it).
    #[serde(skip)]
    #[schema(ignore)]
    pub head: Option<std::sync::Arc<SentimentHead>>,
}

fn default_limit() -> usize {
    10
}

/// What an aggregates-only caller (marketing) gets for a search: how many of the top `limit`
/// results fall in each segment value and theme, never the verbatims. Counts under the grant's
/// k are `None` (suppressed).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SearchAggregate {
    /// Results considered (`None`: fewer than k).
    pub matches: Option<usize>,
    /// The smallest count shown.
    pub min_cell: usize,
    /// field → (value, count) by count.
    pub segments: std::collections::BTreeMap<String, Vec<(String, Option<usize>)>>,
    /// (theme id, label, count) by count, from the last themes run.
    pub themes: Vec<(String, String, Option<usize>)>,
    /// Why `themes` is empty when it is not for lack of a run: several workspaces served as
    /// one do not count themes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub themes_note: Option<String>,
}

/// One result.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Hit {
    /// 1-based rank.
    pub rank: usize,
    /// Fused score (hybrid), BM25 (text) or cosine (vector).
    pub score: f32,
    /// BM25 score when the text retriever found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bm25: Option<f32>,
    /// Cosine similarity of the query and the hit's best unit (or whole text), as embedded —
    /// not centred per language, whatever the ranking used — when the vector retriever found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cosine: Option<f32>,
    /// The verbatim.
    pub verbatim: Verbatim,
    /// The opinion unit it answers with, once the verbatim has units (`units` module docs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<HitUnit>,
    /// The workspace it is stored in, when several are served as one (`verbatim serve
    /// --workspace A --workspace B`): its place among them, from 0. Verbatim ids are unique
    /// across them (keyed content ids, or the file's ids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<usize>,
    /// Other verbatims with the same text (case and spacing aside), ranked below this one and
    /// folded into it ([`fold_copies`]: what `search` shows unless asked to keep copies): their
    /// ids, best first. Copy-pasted feedback, a template answer, a repeated review.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<String>,
}

/// Folds each hit whose text is the same as a better-ranked one's (letter case and spacing
/// aside) into that one, listed in its [`Hit::copies`], and keeps the first `limit` distinct
/// texts, ranks renumbered. A hit below the first `limit` distinct texts still folds into one
/// of them. Searches ask for [`copies_window`] hits so that folding still fills `limit`.
pub fn fold_copies(hits: Vec<Hit>, limit: usize) -> Vec<Hit> {
    let mut out: Vec<Hit> = Vec::new();
    let mut first: HashMap<String, usize> = HashMap::new();
    for h in hits {
        let key = h
            .verbatim
            .text
            .split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" ");
        match first.get(&key) {
            Some(&i) => out[i].copies.push(h.verbatim.id),
            None if out.len() < limit => {
                first.insert(key, out.len());
                out.push(h);
            }
            None => {}
        }
    }
    for (i, h) in out.iter_mut().enumerate() {
        h.rank = i + 1;
    }
    out
}

/// How many hits to rank first for `limit` distinct texts once copies are folded: three times
/// as many, at most 200 more.
pub fn copies_window(limit: usize) -> usize {
    (limit * 3).min(limit + 200)
}

/// The most hits [`search_folded`] ranks to fill its limit.
pub const MAX_COPIES_WINDOW: usize = 5000;

/// Ranks hits with `search` (given how many to rank) and folds copies ([`fold_copies`]) until
/// `limit` distinct texts are found or the ranking has no more: [`copies_window`] hits first,
/// then four times as many while the window came back full, up to [`MAX_COPIES_WINDOW`]. (A text
/// repeated more often than the window allows — four copies each, in the 1M benchmark — would
/// otherwise leave fewer than `limit` results.)
pub fn search_folded<E>(
    limit: usize,
    mut search: impl FnMut(usize) -> Result<Vec<Hit>, E>,
) -> Result<Vec<Hit>, E> {
    let mut window = copies_window(limit);
    loop {
        let hits = search(window)?;
        let full = hits.len() >= window;
        let folded = fold_copies(hits, limit);
        if folded.len() >= limit || !full || window >= MAX_COPIES_WINDOW {
            return Ok(folded);
        }
        window = (window * 4).min(MAX_COPIES_WINDOW);
    }
}

/// "Needs the model" in the words of `door`: the flag (CLI) or the JSON field (HTTP) that asks
/// for a text search instead.
fn no_model(mode: &Mode, door: Door) -> String {
    let text = match door {
        Door::Cli => "--mode text",
        Door::Http => "\"mode\": \"text\"",
    };
    format!("mode {mode:?} needs the embedding model; use {text} or install the model")
}

impl RetrieveError {
    /// The message as `door` says it (errors naming no flag read the same through both).
    pub fn message_for(&self, door: Door) -> String {
        match self {
            RetrieveError::NoModel(mode) => no_model(mode, door),
            e => e.to_string(),
        }
    }
}

/// Errors from retrieval.
#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    /// Index failure.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// Store failure.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Embedding the query failed.
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    /// Vector or hybrid search without a model. Shown in the CLI's words; the HTTP door says
    /// it in its own ([`RetrieveError::message_for`]).
    #[error("{}", no_model(.0, Door::Cli))]
    NoModel(Mode),
    /// The grant does not allow reading text.
    #[error("this grant does not allow reading verbatims")]
    TextNotAllowed,
    /// A sentiment filter without the sentiment head.
    #[error("--sentiment needs the sentiment model of the workspace's embedding model (models/sentiment/<model>.json); none is loaded")]
    NoSentimentModel,
}

/// How deep each list goes before fusion.
pub fn fusion_depth(limit: usize) -> usize {
    (limit * 5).max(100)
}

/// Where one search's time went: its stages in order, milliseconds each
/// ([`search_profiled`]). A stage run once per shard is summed over the shards.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Profile {
    /// (stage, ms), in the order the stages ran.
    pub stages: Vec<(&'static str, f64)>,
}

impl Profile {
    /// The milliseconds of `stage` (0 when it did not run).
    pub fn ms(&self, stage: &str) -> f64 {
        self.stages
            .iter()
            .filter(|s| s.0 == stage)
            .map(|s| s.1)
            .sum()
    }
}

/// Laps of a search's stages into a [`Profile`] when one is asked for (else nothing is kept).
struct Clock<'a> {
    last: std::time::Instant,
    out: Option<&'a mut Profile>,
}

impl<'a> Clock<'a> {
    fn new(out: Option<&'a mut Profile>) -> Self {
        Clock {
            last: std::time::Instant::now(),
            out,
        }
    }

    /// Ends `stage` (the time since the previous lap).
    fn lap(&mut self, stage: &'static str) {
        let Some(p) = self.out.as_deref_mut() else {
            return;
        };
        let now = std::time::Instant::now();
        let ms = (now - self.last).as_secs_f64() * 1000.0;
        self.last = now;
        match p.stages.iter_mut().find(|s| s.0 == stage) {
            Some(s) => s.1 += ms,
            None => p.stages.push((stage, ms)),
        }
    }
}

/// One workspace's part of a search: its store, its indexes and the filter as resolved against
/// it. One shard is a plain search; several ([`search_shards`]) are one corpus split by
/// `ingest --shard`, served together by `verbatim serve --workspace A --workspace B`.
#[derive(Clone, Copy)]
pub struct Shard<'a> {
    /// The number hits name ([`Hit::shard`]): the workspace's place on the command line.
    pub id: usize,
    /// Its store.
    pub store: &'a Store,
    /// Its indexes.
    pub indexes: &'a Indexes,
    /// The query's filter resolved against this store (values are matched to the stored ones
    /// per store); `None`: [`Query::filter`] as it is.
    pub filter: Option<&'a Filter>,
}

/// Runs a query. Every read of verbatims passes through `grant` (the one door).
pub fn search(
    grant: &Grant,
    store: &Store,
    indexes: &Indexes,
    embedder: Option<&dyn Embedder>,
    q: &Query,
) -> Result<Vec<Hit>, RetrieveError> {
    search_shards(grant, &[one(store, indexes)], embedder, q)
}

fn one<'a>(store: &'a Store, indexes: &'a Indexes) -> Shard<'a> {
    Shard {
        id: 0,
        store,
        indexes,
        filter: None,
    }
}

/// Runs a query over several workspaces as one corpus: the query is embedded once, each shard
/// gives its top candidates of each retriever, and the lists are merged exactly before the
/// same fusion, boost and ordering as one workspace's ([`run`]). Exact means: the merged text
/// list is the top of the union by BM25 scored with the corpus's statistics
/// ([`crate::index::text::CorpusStats`]), the merged vector list the top of the union by cosine
/// — each shard returns as many as the whole list holds, so the global top-n is among them.
/// Hits name their shard ([`Hit::shard`]) when there are several.
pub fn search_shards(
    grant: &Grant,
    shards: &[Shard],
    embedder: Option<&dyn Embedder>,
    q: &Query,
) -> Result<Vec<Hit>, RetrieveError> {
    if !grant.may_read_text() {
        return Err(RetrieveError::TextNotAllowed);
    }
    run(grant, shards, embedder, q, &mut Clock::new(None))
}

/// [`search`], and where its time went, stage by stage: query embedding, the sentiment and
/// filter sets, BM25, the graph walk, reading the candidates as their units, ranking (fusion,
/// polarity) and reading the hits. For benches (`benches/retrieval.rs`, the latency part).
pub fn search_profiled(
    grant: &Grant,
    store: &Store,
    indexes: &Indexes,
    embedder: Option<&dyn Embedder>,
    q: &Query,
) -> Result<(Vec<Hit>, Profile), RetrieveError> {
    if !grant.may_read_text() {
        return Err(RetrieveError::TextNotAllowed);
    }
    let mut profile = Profile::default();
    let hits = run(
        grant,
        &[one(store, indexes)],
        embedder,
        q,
        &mut Clock::new(Some(&mut profile)),
    )?;
    Ok((hits, profile))
}

/// A search for an aggregates-only grant: counts by segment and theme over the results, cells
/// under the grant's k suppressed. No text, no ids.
pub fn aggregate(
    grant: &Grant,
    store: &Store,
    indexes: &Indexes,
    embedder: Option<&dyn Embedder>,
    q: &Query,
) -> Result<SearchAggregate, RetrieveError> {
    aggregate_shards(grant, &[one(store, indexes)], embedder, q)
}

/// [`aggregate`] over several workspaces ([`search_shards`]): the segment counts are counted
/// over the merged results (exact); themes are not counted (each workspace's themes are its
/// own, their ids mean nothing in another), and [`SearchAggregate::themes_note`] says so.
pub fn aggregate_shards(
    grant: &Grant,
    shards: &[Shard],
    embedder: Option<&dyn Embedder>,
    q: &Query,
) -> Result<SearchAggregate, RetrieveError> {
    let hits = run(grant, shards, embedder, q, &mut Clock::new(None))?;
    let mut segs: std::collections::BTreeMap<String, HashMap<String, usize>> = Default::default();
    for h in &hits {
        for (k, v) in &h.verbatim.fields {
            *segs
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default() += 1;
        }
    }
    let sorted = |m: HashMap<String, usize>| {
        let mut v: Vec<(String, usize)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.into_iter()
            .map(|(k, n)| (k, grant.cell(n)))
            .collect::<Vec<_>>()
    };
    let (themes, themes_note) = match shards {
        [s] => (theme_counts(s.store, &hits)?, None),
        _ => (
            Vec::new(),
            Some(
                "themes are not counted across shards: each workspace's themes are its own".into(),
            ),
        ),
    };
    Ok(SearchAggregate {
        matches: grant.cell(hits.len()),
        min_cell: grant.min_cell(),
        segments: segs.into_iter().map(|(k, m)| (k, sorted(m))).collect(),
        themes: themes
            .into_iter()
            .map(|(id, l, n)| (id, l, grant.cell(n)))
            .collect(),
        themes_note,
    })
}

/// (theme id, label, hits in it) of the store's last topic run, most first.
fn theme_counts(
    store: &Store,
    hits: &[Hit],
) -> Result<Vec<(String, String, usize)>, RetrieveError> {
    let docs: std::collections::HashSet<i64> = hits.iter().map(|h| h.verbatim.doc).collect();
    let mut per_theme: HashMap<i64, usize> = HashMap::new();
    for m in store.theme_members()? {
        if docs.contains(&m.doc) {
            if let Some(t) = m.theme {
                *per_theme.entry(t).or_default() += 1;
            }
        }
    }
    let labels: HashMap<i64, String> = store
        .themes()?
        .into_iter()
        .map(|t| (t.id, t.user_label.clone().unwrap_or(t.label)))
        .collect();
    let mut themes: Vec<(String, String, usize)> = per_theme
        .into_iter()
        .map(|(t, n)| {
            (
                format!("T{t}"),
                labels.get(&t).cloned().unwrap_or_default(),
                n,
            )
        })
        .collect();
    themes.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    Ok(themes)
}

/// A candidate: (its shard's place in the slice given to [`run`], doc). Orders by shard, then
/// doc: with one shard, by doc, as before shards existed.
type Key = (usize, i64);

/// The docs of `keys`, by shard.
fn group(keys: impl IntoIterator<Item = Key>) -> std::collections::BTreeMap<usize, Vec<i64>> {
    let mut by: std::collections::BTreeMap<usize, Vec<i64>> = Default::default();
    for (s, d) in keys {
        by.entry(s).or_default().push(d);
    }
    by
}

/// `f(shard, its docs)` for the docs of `keys` grouped by shard, results gathered by key.
fn per_shard<T, I: IntoIterator<Item = (i64, T)>>(
    shards: &[Shard],
    keys: impl IntoIterator<Item = Key>,
    mut f: impl FnMut(&Shard, &[i64]) -> Result<I, RetrieveError>,
) -> Result<HashMap<Key, T>, RetrieveError> {
    let mut out = HashMap::new();
    for (s, docs) in group(keys) {
        for (d, t) in f(&shards[s], &docs)? {
            out.insert((s, d), t);
        }
    }
    Ok(out)
}

/// The best `n` of per-shard best-first lists, best first (ties by shard, then doc). One list
/// is returned as it is (its own order, ties included).
fn merge_top(mut lists: Vec<Vec<(Key, f32)>>, n: usize) -> Vec<(Key, f32)> {
    if lists.len() == 1 {
        return lists.pop().unwrap_or_default();
    }
    let mut all: Vec<(Key, f32)> = lists.into_iter().flatten().collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(n);
    all
}

/// One shard's candidates: its BM25 and vector lists (each `depth` / fusion-deep), keyed.
#[allow(clippy::type_complexity)]
fn shard_candidates<'a>(
    grant: &Grant,
    (i, shard): (usize, &Shard<'a>),
    q: &Query,
    corpus: Option<&crate::index::text::CorpusStats>,
    query_vector: Option<&[f32]>,
    depth: usize,
    clock: &mut Clock,
) -> Result<
    (
        Vec<(Key, f32)>,
        Vec<(Key, f32)>,
        Option<Vec<f32>>,
        crate::store::ReadSnapshot<'a>,
    ),
    RetrieveError,
> {
    let (store, indexes) = (shard.store, shard.indexes);
    let filter = grant.restrict(shard.filter.unwrap_or(&q.filter));
    let head = q.head.as_deref();
    // Stored sentiment (computed once per verbatim and unit: `ensure_sentiments`; one meta
    // read when nothing is missing), for the filter, the boost and the hits' units.
    if let Some(h) = head {
        ensure_sentiments(store, h)?;
    }
    // From here on the search only reads this store: one snapshot for all of it (held by the
    // caller until the hits are read).
    let snapshot = store.read_snapshot()?;
    let allowed: Option<HashSet<i64>> = match (q.sentiment, head) {
        (Some(want), Some(h)) => Some(docs_of_polarity(store, h, want)?),
        _ => None,
    };
    // A theme filter (`theme=C12`, resolved to its verbatims) narrows the same doc set.
    let allowed = match (&filter.docs, allowed) {
        (None, a) => a,
        (Some(d), None) => Some(d.iter().copied().collect()),
        (Some(d), Some(a)) => Some(a.into_iter().filter(|x| d.contains(x)).collect()),
    };
    clock.lap("sentiment and filter sets");
    let text_hits = match q.mode {
        Mode::Text | Mode::Hybrid => {
            indexes
                .text
                .search_in_corpus(&q.text, &filter, allowed.as_ref(), depth, corpus)?
        }
        Mode::Vector => Vec::new(),
    };
    clock.lap("text (BM25)");
    let qv = query_vector.map(|v| index_space_query(indexes, &q.text, v));
    // The vector side always looks fusion-deep: a verbatim whose own vector is diluted (praise
    // around one complaint) can still rank by its best unit.
    let vec_hits = match &qv {
        Some(qv) => vector_search_within(
            store,
            indexes,
            qv,
            &filter,
            allowed.as_ref(),
            fusion_depth(q.limit.max(1)),
        )?,
        None => Vec::new(),
    };
    clock.lap("vector (graph walk, slots to verbatims)");
    let key = |v: Vec<(i64, f32)>| v.into_iter().map(|(d, s)| ((i, d), s)).collect();
    Ok((key(text_hits), key(vec_hits), qv, snapshot))
}

fn run(
    grant: &Grant,
    shards: &[Shard],
    embedder: Option<&dyn Embedder>,
    q: &Query,
    clock: &mut Clock,
) -> Result<Vec<Hit>, RetrieveError> {
    let limit = q.limit.max(1);
    let depth = match q.mode {
        Mode::Hybrid => fusion_depth(limit),
        _ => limit,
    };
    let head = q.head.as_deref();
    if q.sentiment.is_some() && head.is_none() {
        return Err(RetrieveError::NoSentimentModel);
    }
    let mut query_vector = None;
    if matches!(q.mode, Mode::Vector | Mode::Hybrid) {
        let e = embedder.ok_or(RetrieveError::NoModel(q.mode))?;
        for s in shards {
            s.store.check_model(e.fingerprint())?;
        }
        query_vector = e.embed(&[q.text.as_str()], TextKind::Query)?.pop();
    }
    clock.lap("query embedding");
    // The opinion the query states, when hybrid ranking will use it.
    let opinion = match (head, &query_vector) {
        (Some(h), Some(v)) if q.mode == Mode::Hybrid => {
            Some(query_polarity(h, &q.text, v)).filter(|p| *p != Polarity::Neutral)
        }
        _ => None,
    };
    // Several shards score BM25 with the whole corpus's statistics (`CorpusStats`).
    let corpus = (shards.len() > 1)
        .then(|| crate::index::text::CorpusStats::new(shards.iter().map(|s| &s.indexes.text)));
    let (mut texts, mut vectors, mut qvs) = (Vec::new(), Vec::new(), Vec::new());
    let mut snapshots = Vec::new();
    for (i, shard) in shards.iter().enumerate() {
        let (t, v, qv, snapshot) = shard_candidates(
            grant,
            (i, shard),
            q,
            corpus.as_ref(),
            query_vector.as_deref(),
            depth,
            clock,
        )?;
        texts.push(t);
        vectors.push(v);
        qvs.push(qv);
        snapshots.push(snapshot);
    }
    let text_hits = merge_top(texts, depth);
    let vec_hits = merge_top(vectors, fusion_depth(limit));
    // Every candidate read as its opinion units (or its whole text): the vector side is
    // ranked by best unit, contradicting ones last; each hit names its unit.
    let candidates: HashSet<Key> = text_hits.iter().chain(&vec_hits).map(|h| h.0).collect();
    let mut segments = HashMap::new();
    for (s, mut docs) in group(candidates.iter().copied()) {
        docs.sort_unstable();
        let both = qvs[s].as_deref().zip(query_vector.as_deref());
        let shard = &shards[s];
        for (d, seg) in units::segments(shard.store, shard.indexes, &docs, &q.text, both)? {
            segments.insert((s, d), seg);
        }
    }
    clock.lap("candidates read as units");
    let vec_hits = units::rank_vector(&vec_hits, &segments);
    // Ranked on centred cosines; reported with the raw ones (thresholds are calibrated on them).
    let raw = units::raw_cosines(&segments);
    // The unit that ranks a hit for the polarity boost: by the query's words (measured on the
    // judged set); the unit shown may differ (below).
    let ranking_unit = units::shown_units(&segments, q.mode == Mode::Vector, &HashSet::new());
    // The stored sentiment of every candidate's units, read with the units.
    let unit_scores: HashMap<(Key, usize), f32> = match head {
        Some(_) => units::unit_sentiments(&segments),
        None => HashMap::new(),
    };
    // The units of the polarity the query states (hybrid, with a head): shown first.
    let agrees: HashSet<(Key, usize)> = match (opinion, head) {
        (Some(want), Some(h)) => unit_scores
            .iter()
            .filter(|(_, s)| h.polarity(**s) == want)
            .map(|(k, _)| *k)
            .collect(),
        _ => HashSet::new(),
    };
    let shown = if agrees.is_empty() {
        ranking_unit.clone()
    } else {
        units::shown_units(&segments, q.mode == Mode::Vector, &agrees)
    };
    let ranked: Vec<(Key, f32, Option<f32>, Option<f32>)> = match q.mode {
        Mode::Text => text_hits
            .iter()
            .map(|&(d, s)| (d, s, Some(s), None))
            .collect(),
        Mode::Vector => vec_hits
            .iter()
            .map(|&(d, s)| (d, s, None, Some(s)))
            .collect(),
        Mode::Hybrid => fuse(&text_hits, &vec_hits),
    };
    // The sentiment of each ranked verbatim's ranking unit (else of the verbatim).
    let polarity = |keys: &[Key]| -> Result<HashMap<Key, Polarity>, RetrieveError> {
        let Some(h) = head else {
            return Ok(HashMap::new());
        };
        let mut out: HashMap<Key, Polarity> =
            per_shard(shards, keys.iter().copied(), |s, docs| {
                Ok(s.store.sentiments_of(docs)?)
            })?
            .into_iter()
            .map(|(k, s)| (k, h.polarity(s)))
            .collect();
        for k in keys {
            if let Some(s) = ranking_unit
                .get(k)
                .and_then(|u| unit_scores.get(&(*k, u.0)))
            {
                out.insert(*k, h.polarity(*s));
            }
        }
        Ok(out)
    };
    let ranked = match opinion {
        Some(want) => {
            // Only the hits are looked up: the boost reorders them, nothing else.
            let keys: Vec<Key> = ranked.iter().map(|r| r.0).collect();
            boost_polarity(ranked, &polarity(&keys)?, want)
        }
        None => ranked,
    };
    // A verbatim that only says the opposite of the query comes after every other, whatever
    // its score (the order is otherwise kept).
    let (mut ranked, after): (Vec<_>, Vec<_>) = ranked
        .into_iter()
        .partition(|r| !units::contradicts_query(&segments, r.0));
    ranked.extend(after);
    let ranked: Vec<_> = ranked.into_iter().take(limit).collect();
    clock.lap("ranking (fusion, polarity)");
    let keys: Vec<Key> = ranked.iter().map(|r| r.0).collect();
    let unit_polarity: HashMap<(Key, usize), Polarity> = match head {
        Some(h) => {
            let hits: HashSet<Key> = keys.iter().copied().collect();
            unit_scores
                .iter()
                .filter(|((k, _), _)| hits.contains(k))
                .map(|(&k, &s)| (k, h.polarity(s)))
                .collect()
        }
        None => HashMap::new(),
    };
    let mut by_key: HashMap<Key, Verbatim> = per_shard(shards, keys.iter().copied(), |s, docs| {
        Ok(s.store.get_docs(docs)?.into_iter().map(|v| (v.doc, v)))
    })?;
    let sharded = shards.len() > 1;
    drop(snapshots);
    clock.lap("hits read");
    Ok(ranked
        .into_iter()
        .filter_map(|(key, score, bm25, cosine)| {
            by_key.remove(&key).map(|verbatim| {
                (
                    key,
                    score,
                    bm25,
                    cosine.map(|c| raw.get(&key).copied().unwrap_or(c)),
                    verbatim,
                )
            })
        })
        .enumerate()
        .map(|(i, (key, score, bm25, cosine, verbatim))| Hit {
            rank: i + 1,
            score,
            bm25,
            cosine,
            unit: shown.get(&key).map(|&(idx, start, end)| HitUnit {
                start,
                end,
                sentiment: unit_polarity.get(&(key, idx)).copied(),
            }),
            shard: sharded.then(|| shards[key.0].id),
            verbatim,
            copies: Vec::new(),
        })
        .collect())
}

/// Reciprocal-rank fusion of two best-first lists of `(doc, score)`. Ties broken by doc number
/// so results are deterministic.
///
/// Generic over the key: a doc, or a (shard, doc) pair when several workspaces answer as one.
#[allow(clippy::type_complexity)]
pub fn fuse<K: Copy + Eq + std::hash::Hash + Ord>(
    text: &[(K, f32)],
    vector: &[(K, f32)],
) -> Vec<(K, f32, Option<f32>, Option<f32>)> {
    let mut acc: HashMap<K, (f32, Option<f32>, Option<f32>)> = HashMap::new();
    for (rank, &(doc, s)) in text.iter().enumerate() {
        let e = acc.entry(doc).or_insert((0.0, None, None));
        e.0 += 1.0 / (RRF_K + rank as f32 + 1.0);
        e.1 = Some(s);
    }
    for (rank, &(doc, s)) in vector.iter().enumerate() {
        let e = acc.entry(doc).or_insert((0.0, None, None));
        e.0 += 1.0 / (RRF_K + rank as f32 + 1.0);
        e.2 = Some(s);
    }
    let mut out: Vec<_> = acc.into_iter().map(|(d, (s, b, c))| (d, s, b, c)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// The polarity of the opinion a query states: head and lexicon rule as for a unit, without
/// the subjectivity part ([`crate::sentiment::unit::stated`]: a query describes the opinion
/// sought, "service client réactif" is praise however factual its shape).
pub fn query_polarity(head: &SentimentHead, text: &str, vector: &[f32]) -> Polarity {
    crate::sentiment::unit::stated(head, text, vector).polarity
}

/// Whether a query states a problem: its polarity ([`query_polarity`]) is negative; without a
/// query vector (text mode), the lexicon rule alone.
pub fn query_states_problem(head: &SentimentHead, text: &str, vector: Option<&[f32]>) -> bool {
    match vector {
        Some(v) => query_polarity(head, text, v) == Polarity::Negative,
        None => crate::sentiment::rule::score(text).score < -head.neutral_band,
    }
}

/// The sentiment score of a verbatim as the themes read it: the head on the mean of its
/// sentence vectors when it has several, else on its own vector.
pub fn verbatim_score(
    head: &SentimentHead,
    sentences: Option<&Vec<crate::store::SentenceVector>>,
    vector: &[f32],
) -> f32 {
    match sentences {
        Some(s) if s.len() > 1 => {
            head.score(&crate::themes::sentences::mean_vector(s, vector.len()))
        }
        _ => head.score(vector),
    }
}

/// An identity of a sentiment head's weights and of the lexicon rule beside it: the stored
/// scores were computed by this head and this rule. Its subjectivity part counts (it changes
/// unit scores), so a workspace scored before a head gained one is scored again; so does the
/// rule's [`crate::sentiment::rule::VERSION`] (a rule that reads more complaints).
fn head_id(head: &SentimentHead) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(head.fingerprint.as_bytes());
    if crate::sentiment::rule::VERSION > 1 {
        h.update(b"rule");
        h.update(crate::sentiment::rule::VERSION.to_le_bytes());
    }
    for w in head.weights.iter().chain([&head.bias]) {
        h.update(w.to_le_bytes());
    }
    if let Some(sub) = &head.subjectivity {
        h.update(b"subjectivity");
        for w in sub
            .weights
            .iter()
            .chain([&sub.bias, &sub.threshold, &sub.damp])
        {
            h.update(w.to_le_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// Makes sure every verbatim and every opinion unit has its sentiment score from `head` in the
/// store ([`crate::store`]'s `sentiments`): computed for those that lack one (after an ingest, a
/// theme run that made units, or with another head), else one meta read.
pub fn ensure_sentiments(store: &Store, head: &SentimentHead) -> Result<(), RetrieveError> {
    let id = head_id(head);
    if store.sentiments_complete(&id)? {
        return Ok(());
    }
    let seq = store.seq()?;
    let pending = store.sentiments_pending(&id)?;
    let sentences = if pending.is_empty() {
        HashMap::new()
    } else {
        store.sentence_vectors()?
    };
    let scores: Vec<(i64, f32)> = pending
        .iter()
        .map(|(doc, v)| (*doc, verbatim_score(head, sentences.get(doc), v)))
        .collect();
    let units = store.units_without_sentiment()?;
    if !units.is_empty() {
        let docs: Vec<i64> = units.iter().map(|u| u.0).collect();
        let texts: HashMap<i64, String> = store
            .get_docs(&docs)?
            .into_iter()
            .map(|v| (v.doc, v.text))
            .collect();
        let unit_scores: Vec<(i64, usize, f32)> = units
            .iter()
            .filter_map(|(doc, idx, start, end, v)| {
                let text = texts.get(doc)?.get(*start..*end)?;
                Some((*doc, *idx, crate::sentiment::unit(head, text, v).score))
            })
            .collect();
        store.put_unit_sentiments(&unit_scores)?;
    }
    store.put_sentiments(&scores, seq)?;
    Ok(())
}

/// The verbatims whose stored sentiment (`ensure_sentiments` first) is `want`.
fn docs_of_polarity(
    store: &Store,
    head: &SentimentHead,
    want: Polarity,
) -> Result<HashSet<i64>, RetrieveError> {
    // `SentimentHead::polarity`: positive from +band, negative to −band, neutral strictly
    // between (the bounds nudged one ulp inwards).
    let band = head.neutral_band;
    let (lo, hi) = match want {
        Polarity::Positive => (band, f32::INFINITY),
        Polarity::Negative => (f32::NEG_INFINITY, -band),
        Polarity::Neutral => (next_up(-band), next_down(band)),
    };
    Ok(store.docs_with_sentiment(lo, hi)?.into_iter().collect())
}

fn next_up(x: f32) -> f32 {
    if x >= 0.0 {
        f32::from_bits(x.to_bits() + 1)
    } else {
        f32::from_bits(x.to_bits() - 1)
    }
}

fn next_down(x: f32) -> f32 {
    -next_up(-x)
}

/// Whether a text says the opposite of the query about one of its words: it holds a query term
/// only with the other polarity (`NOT_damag` for a query on "damaged", or `damag` for "not
/// damaged") — the text index's reading of negation, which the embedding lacks.
pub fn contradicts(query_terms: &HashSet<String>, text_terms: &HashSet<String>) -> bool {
    use crate::index::text::NEGATED;
    query_terms.iter().any(|q| {
        let opposite = match q.strip_prefix(NEGATED) {
            Some(plain) => plain.to_string(),
            None => format!("{NEGATED}{q}"),
        };
        text_terms.contains(&opposite) && !text_terms.contains(q)
    })
}

/// The docs among `docs` whose text contradicts `query` ([`contradicts`]), each read with the
/// analyser of its own language.
pub fn contradicting(
    store: &Store,
    query: &str,
    docs: &[i64],
) -> Result<HashSet<i64>, RetrieveError> {
    use crate::index::text::tokens;
    use crate::lang::Lang;
    let (en, fr) = crate::index::TextIndex::query_terms(query);
    let q_en: HashSet<String> = en.into_iter().collect();
    let q_fr: HashSet<String> = fr.into_iter().collect();
    if docs.is_empty() || (q_en.is_empty() && q_fr.is_empty()) {
        return Ok(HashSet::new());
    }
    Ok(store
        .get_docs(docs)?
        .into_iter()
        .filter(|v| {
            let lang = Lang::from_code(&v.language).unwrap_or(Lang::En);
            let terms: HashSet<String> = tokens(lang, &v.text).into_iter().map(|t| t.0).collect();
            contradicts(if lang == Lang::Fr { &q_fr } else { &q_en }, &terms)
        })
        .map(|v| v.doc)
        .collect())
}

/// Multiplies the score of hits of polarity `want` by `1 + POLARITY_BOOST` and sorts again
/// (ties by doc).
#[allow(clippy::type_complexity)]
fn boost_polarity<K: Copy + Eq + std::hash::Hash + Ord>(
    mut ranked: Vec<(K, f32, Option<f32>, Option<f32>)>,
    polarity: &HashMap<K, Polarity>,
    want: Polarity,
) -> Vec<(K, f32, Option<f32>, Option<f32>)> {
    let key = |r: &(K, f32, Option<f32>, Option<f32>)| {
        if polarity.get(&r.0) == Some(&want) {
            r.1 * (1.0 + POLARITY_BOOST)
        } else {
            r.1
        }
    };
    ranked.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.0.cmp(&b.0)));
    ranked
}

/// The query vector in the space the vector index holds: centred on the mean of the query's
/// language (`crate::lang::detect`) when the workspace is centred per language
/// ([`crate::index::VectorIndex::means`]), else as it is. Sentiment reads the raw vector.
pub fn index_space_query(indexes: &Indexes, text: &str, qv: &[f32]) -> Vec<f32> {
    let mut v = qv.to_vec();
    if let Some(m) = indexes.vectors.means() {
        m.center_query(crate::lang::detect(text).code(), &mut v);
    }
    v
}

/// Nearest verbatims to `qv` (in the index's space: [`index_space_query`]) among those passing
/// `filter`: `(doc, cosine)`, best first.
pub fn vector_search(
    store: &Store,
    indexes: &Indexes,
    qv: &[f32],
    filter: &Filter,
    k: usize,
) -> Result<Vec<(i64, f32)>, RetrieveError> {
    vector_search_within(store, indexes, qv, filter, None, k)
}

/// [`vector_search`] restricted to the docs in `docs` when given.
///
/// Unrestricted (no filter, no doc set) on a graph larger than [`EXACT_SCAN_LIMIT`]: the graph
/// is walked over every slot it may return and the slots found are mapped to verbatims; only
/// when a stale slot (of an updated verbatim) was among them is the walk repeated restricted to
/// the live slots — reading every live slot costs more than the walk (3.5 ms of a 21 ms search
/// at 100k, BENCHMARKS). Restricted: the allowed slots are read (the filter's, those of `docs`),
/// scored exactly when few, else the graph is walked restricted to them — a sentiment filter
/// at 100k no longer reads every vector.
pub fn vector_search_within(
    store: &Store,
    indexes: &Indexes,
    qv: &[f32],
    filter: &Filter,
    docs: Option<&std::collections::HashSet<i64>>,
    k: usize,
) -> Result<Vec<(i64, f32)>, RetrieveError> {
    let points = indexes.vectors.points();
    // No filter, and no doc set or one holding most verbatims (a sentiment, a theme): the
    // nearest of all — oversampled for the set's share — and only the slots found mapped to
    // verbatims (stale slots, of updated verbatims, map to none). Every allowed slot is read
    // (below) only when that left fewer than k: at 1M reading the slots of the 39% negative
    // verbatims cost 173 ms a query, every live slot 3.5 ms of a 21 ms search at 100k.
    if points > EXACT_SCAN_LIMIT && filter.is_empty() {
        let (share, want) = match docs {
            None => (1.0, k),
            Some(d) => {
                let share = d.len() as f64 / points as f64;
                (share, oversampled(k, share))
            }
        };
        if share >= OVERSAMPLE_SHARE {
            // Once more, deeper, when too few of the nearest are in the set (a query far from
            // it: praise searched among the negatives): as deep as the set's density among the
            // nearest says would hold k (×1.5), when that is at most VECTOR_RETRY_DEPTH times
            // the first depth; else, or when that falls short too, every allowed slot is read
            // and the walk restricted to them (~250 ms at 1M: the p99 of a negative search).
            // The cap: a walk's cost grows faster than its depth (at 1M, k = 100 of a 41% set:
            // 365 deep 23 ms, 944 deep 78, 1,888 deep 282, 5,475 deep 4.7 s).
            let mut want = want;
            for retry in [false, true] {
                let by_slot = indexes.vectors.search_all(qv, want, ef_for(want));
                let exhausted = by_slot.len() < want;
                let slots: Vec<i64> = by_slot.iter().map(|h| h.0).collect();
                let hits: Vec<(i64, f32)> = by_slot
                    .iter()
                    .zip(store.docs_for_vec_ids(&slots)?)
                    .filter_map(|(&(_, cos), doc)| {
                        doc.filter(|x| docs.is_none_or(|d| d.contains(x)))
                            .map(|x| (x, cos))
                    })
                    .take(k)
                    .collect();
                if hits.len() >= k {
                    return Ok(hits);
                }
                let deeper = (want as f64 * k as f64 / hits.len().max(1) as f64 * 1.5).ceil();
                if retry || exhausted || deeper > (want * VECTOR_RETRY_DEPTH) as f64 {
                    break;
                }
                want = deeper as usize;
            }
        }
    }
    let allowed: HashMap<i64, i64> = store
        .filtered_slots(filter)?
        .into_iter()
        .filter(|(doc, _)| docs.is_none_or(|d| d.contains(doc)))
        .map(|(doc, slot)| (slot, doc))
        .collect();
    if allowed.is_empty() {
        return Ok(Vec::new());
    }
    // Up to EXACT_SCAN_LIMIT candidates, filtered or not, an exact scan is both exact and cheap
    // (milliseconds); the graph is for larger sets. (A graph built by parallel insertion can
    // leave a point unreachable; on a small workspace an exact answer costs nothing.)
    if allowed.len() <= EXACT_SCAN_LIMIT || points == 0 {
        let only: Option<Vec<i64>> = docs.map(|_| allowed.values().copied().collect());
        return exact_scan(store, indexes, qv, filter, only.as_deref(), k);
    }
    let keep = |by_slot: Vec<(i64, f32)>| -> Vec<(i64, f32)> {
        by_slot
            .into_iter()
            .filter_map(|(slot, cos)| allowed.get(&slot).map(|&d| (d, cos)))
            .take(k)
            .collect()
    };
    // Most slots allowed (a sentiment or a broad segment): the nearest of all, oversampled for
    // the share allowed, then kept — an unfiltered walk; the filtered walk below only when that
    // left fewer than k.
    let share = allowed.len() as f64 / points.max(1) as f64;
    if share >= OVERSAMPLE_SHARE {
        let want = oversampled(k, share);
        let hits = keep(indexes.vectors.search_all(qv, want, ef_for(want)));
        if hits.len() >= k {
            return Ok(hits);
        }
    }
    let mut slots: Vec<usize> = allowed.keys().map(|&v| v as usize).collect();
    slots.sort_unstable();
    Ok(keep(indexes.vectors.search(qv, k, ef_for(k), move |id| {
        slots.binary_search(&id).is_ok()
    })))
}

/// The share of the graph's slots allowed from which a restricted vector search walks the
/// whole graph, oversampled, rather than a filtered walk (which explores until its candidates
/// run out): the text side's threshold, for the same reason.
use crate::index::text::OVERSAMPLE_SHARE;

/// At most how many times deeper the oversampled vector search of a large doc set is tried
/// again before the search restricted to the set.
const VECTOR_RETRY_DEPTH: usize = 3;

/// How many nearest slots of the whole graph to walk for `k` of a set holding `share` of it.
fn oversampled(k: usize, share: f64) -> usize {
    ((k as f64 / share) * 1.5).ceil() as usize
}

/// The graph's search breadth for `k` neighbours.
fn ef_for(k: usize) -> usize {
    (k * 2).max(128)
}

/// Exact cosine of `qv` with every verbatim passing `filter` — or, when given, with each of
/// `only` (already filtered: only their vectors are read) — each stored vector centred as the
/// graph holds it: the `k` best, best first (ties by doc).
fn exact_scan(
    store: &Store,
    indexes: &Indexes,
    qv: &[f32],
    filter: &Filter,
    only: Option<&[i64]>,
    k: usize,
) -> Result<Vec<(i64, f32)>, RetrieveError> {
    use crate::vecmath::dot;
    let means = indexes.vectors.means();
    let langs = match means {
        Some(_) => store.filtered_languages(filter)?,
        None => HashMap::new(),
    };
    let vectors: Vec<(i64, Vec<f32>)> = match only {
        Some(docs) => store.vectors_of(docs)?.into_iter().collect(),
        None => store
            .filtered_vectors(filter)?
            .into_iter()
            .map(|(doc, _, v)| (doc, v))
            .collect(),
    };
    let mut scored: Vec<(i64, f32)> = vectors
        .into_iter()
        .map(|(doc, mut v)| {
            if let (Some(m), Some(lang)) = (means, langs.get(&doc)) {
                m.center(lang, &mut v);
            }
            (doc, dot(qv, &v))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    Ok(scored)
}

/// A hit on a bare verbatim (`id`, `text`, English, nothing else), for tests.
#[cfg(test)]
pub(crate) fn test_hit(id: &str, text: &str) -> Hit {
    Hit {
        rank: 0,
        score: 1.0,
        bm25: None,
        cosine: None,
        unit: None,
        shard: None,
        copies: Vec::new(),
        verbatim: Verbatim::bare(0, id, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str, text: &str) -> Hit {
        test_hit(id, text)
    }

    #[test]
    fn copies_fold_into_the_best_ranked_hit_and_the_limit_counts_distinct_texts() {
        let hits = vec![
            hit("a", "Late parcel, again."),
            hit("b", "late  PARCEL, again. "),
            hit("c", "Rude driver."),
            hit("d", "Late parcel again."),
            hit("e", "Wrong size."),
            // Past the two distinct texts kept, still a copy of one of them.
            hit("f", "Late parcel, again."),
        ];
        let folded = fold_copies(hits.clone(), 2);
        let got: Vec<(usize, &str, Vec<&str>)> = folded
            .iter()
            .map(|h| {
                (
                    h.rank,
                    h.verbatim.id.as_str(),
                    h.copies.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        // "Late parcel again." differs by a comma: another text.
        assert_eq!(got, [(1, "a", vec!["b", "f"]), (2, "c", vec![])]);
        assert_eq!(fold_copies(hits.clone(), 10).len(), 4);
        assert!(fold_copies(Vec::new(), 3).is_empty());
        assert_eq!(copies_window(10), 30);
        assert_eq!(copies_window(1000), 1200);
    }

    #[test]
    fn a_folded_search_ranks_more_until_the_limit_is_filled_or_the_ranking_ends() {
        // Every text four times, as in the 1M benchmark: 30 hits fold to 8 texts, 120 to 30.
        let corpus: Vec<Hit> = (0..400)
            .map(|i| hit(&format!("v{i}"), &format!("text {}", i / 4)))
            .collect();
        let mut asked = Vec::new();
        let got = search_folded::<()>(10, |n| {
            asked.push(n);
            Ok(corpus.iter().take(n).cloned().collect())
        })
        .unwrap();
        assert_eq!(asked, [30, 120]);
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|h| h.copies.len() == 3), "{got:?}");
        // A ranking that runs out is not asked again.
        let mut asked = Vec::new();
        let few = search_folded::<()>(10, |n| {
            asked.push(n);
            Ok(corpus.iter().take(n.min(12)).cloned().collect())
        })
        .unwrap();
        assert_eq!((asked.as_slice(), few.len()), (&[30][..], 3));
    }

    #[test]
    fn stored_scores_are_redone_when_the_head_gains_a_subjectivity_part() {
        let mut head = SentimentHead::for_test("t/fp", vec![1.0, -1.0], 0.1);
        let plain = head_id(&head);
        let sub = crate::sentiment::Subjectivity {
            weights: vec![0.5, 0.5],
            bias: 0.0,
            threshold: 0.4,
            damp: 0.3,
            trained_on: String::new(),
        };
        head.subjectivity = Some(sub.clone());
        let with = head_id(&head);
        assert_ne!(plain, with, "unit scores of the old head would be kept");
        head.subjectivity = Some(crate::sentiment::Subjectivity {
            threshold: 0.5,
            ..sub
        });
        assert_ne!(head_id(&head), with);
        head.subjectivity = None;
        assert_eq!(head_id(&head), plain, "a plain head keeps its identity");
    }

    #[test]
    fn a_query_keeps_the_polarity_it_states_however_factual_its_shape() {
        // Polarity reads coordinate 0, P(opinion) coordinate 1 (as in sentiment::unit's tests).
        let head = SentimentHead {
            subjectivity: Some(crate::sentiment::Subjectivity {
                weights: vec![0.0, 1.0],
                bias: 0.0,
                threshold: 0.4,
                damp: 0.3,
                trained_on: String::new(),
            }),
            ..SentimentHead::for_test("t", vec![4.0, 0.0], 0.0)
        };
        // A short praise query with no lexicon word, which the subjectivity part reads as a
        // statement of fact: as a unit of feedback it is neutral…
        let (text, v) = ("service client réactif", [0.3f32, -5.0]);
        assert_eq!(
            crate::sentiment::unit(&head, text, &v).polarity,
            Polarity::Neutral
        );
        // …as a query it asks for praise, and a complaint query for complaints.
        assert_eq!(query_polarity(&head, text, &v), Polarity::Positive);
        assert!(query_states_problem(
            &head,
            "battery life",
            Some(&[-0.3, -5.0])
        ));
        assert_eq!(
            query_polarity(&head, "Motorola", &[0.0, -5.0]),
            Polarity::Neutral
        );
    }

    #[test]
    fn fusion_prefers_agreement_and_is_deterministic() {
        let text = [(1, 9.0), (2, 5.0), (3, 1.0)];
        let vector = [(2, 0.9), (4, 0.8), (1, 0.7)];
        let f = fuse(&text, &vector);
        // 2 is 2nd and 1st (1/32 + 1/31), 1 is 1st and 3rd (1/31 + 1/33).
        assert_eq!(f[0].0, 2);
        assert_eq!(f[1].0, 1);
        assert_eq!(f.len(), 4);
        assert_eq!(f[1].2, Some(9.0));
        assert_eq!(f[1].3, Some(0.7));
        // 3 and 4 tie on one appearance each at rank 3 / rank 2: 4 is ahead.
        assert_eq!(f[2].0, 4);
        assert_eq!(fuse(&text, &vector), f);
    }

    #[test]
    fn an_opinion_query_lifts_hits_of_its_polarity_over_near_ties_only() {
        let ranked = vec![
            (1, 1.00, None, None), // neutral, best
            (2, 0.90, None, None), // positive, 10% above the negative one
            (3, 0.80, None, None), // negative: 0.80 × 1.3 = 1.04 passes both
            (4, 0.50, None, None), // negative, far behind: 0.65, stays behind 5
            (5, 0.70, None, None), // neutral
        ];
        let pol: HashMap<i64, Polarity> = [
            (1, Polarity::Neutral),
            (2, Polarity::Positive),
            (3, Polarity::Negative),
            (4, Polarity::Negative),
            (5, Polarity::Neutral),
        ]
        .into_iter()
        .collect();
        let order = |want| -> Vec<i64> {
            boost_polarity(ranked.clone(), &pol, want)
                .iter()
                .map(|r| r.0)
                .collect()
        };
        assert_eq!(order(Polarity::Negative), [3, 1, 2, 5, 4]);
        // Praise: the positive hit passes the neutral one (0.9 × 1.3 = 1.17), negatives do not move.
        assert_eq!(order(Polarity::Positive), [2, 1, 3, 5, 4]);
    }

    #[test]
    fn a_text_contradicts_a_query_when_it_holds_a_query_word_only_negated_or_only_affirmed() {
        use crate::index::text::tokens;
        use crate::lang::Lang;
        let terms =
            |t: &str| -> HashSet<String> { tokens(Lang::En, t).into_iter().map(|x| x.0).collect() };
        let query = |t: &str| -> HashSet<String> {
            crate::index::TextIndex::query_terms(t)
                .0
                .into_iter()
                .collect()
        };
        let complaint = query("package arrived damaged");
        assert!(contradicts(
            &complaint,
            &terms("The package arrived with no damage")
        ));
        assert!(contradicts(&complaint, &terms("not damaged at all")));
        assert!(!contradicts(
            &complaint,
            &terms("The package arrived damaged")
        ));
        // Both readings present: not a contradiction.
        assert!(!contradicts(
            &complaint,
            &terms("The box was damaged, the jar not damaged")
        ));
        assert!(!contradicts(&complaint, &terms("Great coffee")));
        let reassurance = query("not damaged");
        assert!(contradicts(&reassurance, &terms("arrived damaged")));
        assert!(!contradicts(
            &reassurance,
            &terms("never damaged in shipping")
        ));
    }

    /// Above [`EXACT_SCAN_LIMIT`] verbatims the vector side walks the graph: unrestricted (no
    /// filter built), restricted to a large doc set (an oversampled unrestricted walk, kept),
    /// and with a stale slot among the nearest (an updated verbatim: the walk is repeated over
    /// live slots). Each against the exact scan of the same set: the same cosines for the same
    /// verbatims, nearly the same top 10, only live verbatims, each once.
    #[test]
    fn large_workspaces_search_the_graph_unrestricted_restricted_and_past_stale_slots() {
        use crate::embed::HashEmbedder;
        use crate::ingest::Mapping;
        use crate::workspace::ingest::{ingest_file, IngestOptions, NoProgress};
        use crate::workspace::Workspace;
        const WORDS: &[&str] = &[
            "delivery",
            "late",
            "box",
            "crushed",
            "taste",
            "great",
            "refund",
            "slow",
            "agent",
            "rude",
            "price",
            "cheap",
            "fresh",
            "stale",
            "seat",
            "comfortable",
            "flight",
            "delayed",
            "bag",
            "lost",
            "coffee",
            "strong",
            "bitter",
            "sweet",
            "order",
            "missing",
        ];
        let n = EXACT_SCAN_LIMIT + 600;
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        let mut lines: Vec<String> = (0..n)
            .map(|i| {
                let text: Vec<&str> = (0..6).map(|_| WORDS[next() % WORDS.len()]).collect();
                format!("{{\"id\": \"r{i}\", \"text\": \"{}\"}}", text.join(" "))
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rows.jsonl");
        std::fs::write(&file, lines.join("\n")).unwrap();
        let mut ws = Workspace::init(&dir.path().join("ws")).unwrap();
        let e = HashEmbedder::new();
        let opts = IngestOptions {
            mapping: Some(Mapping {
                text: vec!["text".into()],
                id: Some("id".into()),
                ..Mapping::default()
            }),
            ..IngestOptions::default()
        };
        ingest_file(&mut ws, &e, &file, &opts, &NoProgress).unwrap();
        // r5 changes text: its first slot stays in the graph, stale, until a rebuild.
        let old = "refund refund refund lost bag lost";
        lines[5] = format!("{{\"id\": \"r5\", \"text\": \"{old} again\"}}");
        lines[6] = format!("{{\"id\": \"r6\", \"text\": \"{old}\"}}");
        std::fs::write(&file, lines.join("\n")).unwrap();
        ingest_file(&mut ws, &e, &file, &opts, &NoProgress).unwrap();
        lines[6] = "{\"id\": \"r6\", \"text\": \"coffee sweet order\"}".to_string();
        std::fs::write(&file, lines.join("\n")).unwrap();
        ingest_file(&mut ws, &e, &file, &opts, &NoProgress).unwrap();
        let (ix, _) = ws.indexes().unwrap();
        let store = ws.raw_store();
        assert!(ix.vectors.points() > EXACT_SCAN_LIMIT);
        let all = Filter::default();
        // More than EXACT_SCAN_LIMIT allowed (every verbatim but one in 50): the graph, walked
        // unrestricted for k ÷ share × 1.5 and kept.
        let most: HashSet<i64> = store
            .all_docs()
            .unwrap()
            .into_iter()
            .filter(|d| d % 50 != 0)
            .collect();
        assert!(most.len() > EXACT_SCAN_LIMIT);
        let most_docs: Vec<i64> = most.iter().copied().collect();
        let qv = e.embed(&[old], TextKind::Query).unwrap().pop().unwrap();
        let check = |got: &[(i64, f32)], exact: &[(i64, f32)], set: Option<&HashSet<i64>>| {
            let docs: HashSet<i64> = got.iter().map(|h| h.0).collect();
            assert_eq!(docs.len(), got.len(), "a verbatim appears once");
            let truth: HashMap<i64, f32> = store
                .vectors_of(&docs.iter().copied().collect::<Vec<_>>())
                .unwrap()
                .into_iter()
                .map(|(d, v)| (d, crate::vecmath::dot(&qv, &v)))
                .collect();
            for (d, c) in got {
                assert!(
                    set.is_none_or(|s| s.contains(d)),
                    "{d} is outside the allowed set"
                );
                let t = truth
                    .get(d)
                    .unwrap_or_else(|| panic!("{d} is not a live verbatim"));
                assert!(
                    (t - c).abs() < 1e-4,
                    "{d}: cosine {c}, its current vector {t}"
                );
            }
            let top: HashSet<i64> = exact.iter().take(10).map(|h| h.0).collect();
            let found = got.iter().take(10).filter(|h| top.contains(&h.0)).count();
            assert!(found >= 8, "{found}/10 of the exact top 10");
        };
        // The nearest slot is r5's stale one (its old text is the query, word for word).
        let stale = ix.vectors.search_all(&qv, 1, 128);
        assert!(store.docs_for_vec_ids(&[stale[0].0]).unwrap()[0].is_none());
        let got = vector_search_within(store, &ix, &qv, &all, None, 50).unwrap();
        check(
            &got,
            &exact_scan(store, &ix, &qv, &all, None, 50).unwrap(),
            None,
        );
        assert_eq!(
            got.len(),
            50,
            "stale slots are not returned in place of live ones"
        );
        let got = vector_search_within(store, &ix, &qv, &all, Some(&most), 50).unwrap();
        let exact = exact_scan(store, &ix, &qv, &all, Some(&most_docs), 50).unwrap();
        check(&got, &exact, Some(&most));
        assert_eq!(got.len(), 50);
    }
}
