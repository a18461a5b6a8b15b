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
//! Fusion is reciprocal-rank fusion (Cormack et al. 2009): `Σ 1 / (k + rank)` with k = 60, over the
//! top [`fusion_depth`] of each list. It needs no score calibration between BM25 and cosine.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::access::{Door, Grant};
use crate::embed::{Embedder, TextKind};
use crate::index::{IndexError, Indexes};
use crate::store::{Filter, Store, Verbatim};

/// Filtered vector searches switch to an exact scan when at most this many verbatims pass.
pub const EXACT_SCAN_LIMIT: usize = 20_000;
/// RRF constant.
pub const RRF_K: f32 = 60.0;

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
#[derive(Clone, Debug, Serialize, Deserialize)]
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
}

fn default_limit() -> usize {
    10
}

/// What an aggregates-only caller (marketing) gets for a search: how many of the top `limit`
/// results fall in each segment value and theme, never the verbatims. Counts under the grant's
/// k are `None` (suppressed).
#[derive(Clone, Debug, Serialize)]
pub struct SearchAggregate {
    /// Results considered (`None`: fewer than k).
    pub matches: Option<usize>,
    /// The smallest count shown.
    pub min_cell: usize,
    /// field → (value, count) by count.
    pub segments: std::collections::BTreeMap<String, Vec<(String, Option<usize>)>>,
    /// (theme id, label, count) by count, from the last themes run.
    pub themes: Vec<(String, String, Option<usize>)>,
}

/// One result.
#[derive(Clone, Debug, Serialize)]
pub struct Hit {
    /// 1-based rank.
    pub rank: usize,
    /// Fused score (hybrid), BM25 (text) or cosine (vector).
    pub score: f32,
    /// BM25 score when the text retriever found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bm25: Option<f32>,
    /// Cosine similarity when the vector retriever found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cosine: Option<f32>,
    /// The verbatim.
    pub verbatim: Verbatim,
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
}

/// How deep each list goes before fusion.
pub fn fusion_depth(limit: usize) -> usize {
    (limit * 5).max(100)
}

/// Runs a query. Every read of verbatims passes through `grant` (the one door).
pub fn search(
    grant: &Grant,
    store: &Store,
    indexes: &Indexes,
    embedder: Option<&dyn Embedder>,
    q: &Query,
) -> Result<Vec<Hit>, RetrieveError> {
    if !grant.may_read_text() {
        return Err(RetrieveError::TextNotAllowed);
    }
    run(grant, store, indexes, embedder, q)
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
    let hits = run(grant, store, indexes, embedder, q)?;
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
    Ok(SearchAggregate {
        matches: grant.cell(hits.len()),
        min_cell: grant.min_cell(),
        segments: segs.into_iter().map(|(k, m)| (k, sorted(m))).collect(),
        themes: themes
            .into_iter()
            .map(|(id, l, n)| (id, l, grant.cell(n)))
            .collect(),
    })
}

fn run(
    grant: &Grant,
    store: &Store,
    indexes: &Indexes,
    embedder: Option<&dyn Embedder>,
    q: &Query,
) -> Result<Vec<Hit>, RetrieveError> {
    let filter = grant.restrict(&q.filter);
    let limit = q.limit.max(1);
    let depth = match q.mode {
        Mode::Hybrid => fusion_depth(limit),
        _ => limit,
    };
    let text_hits = match q.mode {
        Mode::Text | Mode::Hybrid => indexes.text.search(&q.text, &filter, depth)?,
        Mode::Vector => Vec::new(),
    };
    let vec_hits = match q.mode {
        Mode::Vector | Mode::Hybrid => {
            let e = embedder.ok_or(RetrieveError::NoModel(q.mode))?;
            store.check_model(e.fingerprint())?;
            let qv = e
                .embed(&[q.text.as_str()], TextKind::Query)?
                .pop()
                .expect("one vector per text");
            vector_search(store, indexes, &qv, &filter, depth)?
        }
        Mode::Text => Vec::new(),
    };
    let ranked: Vec<(i64, f32, Option<f32>, Option<f32>)> = match q.mode {
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
    let ranked: Vec<_> = ranked.into_iter().take(limit).collect();
    let docs: Vec<i64> = ranked.iter().map(|r| r.0).collect();
    let mut by_doc: HashMap<i64, Verbatim> = store
        .get_docs(&docs)?
        .into_iter()
        .map(|v| (v.doc, v))
        .collect();
    Ok(ranked
        .into_iter()
        .filter_map(|(doc, score, bm25, cosine)| {
            by_doc
                .remove(&doc)
                .map(|verbatim| (score, bm25, cosine, verbatim))
        })
        .enumerate()
        .map(|(i, (score, bm25, cosine, verbatim))| Hit {
            rank: i + 1,
            score,
            bm25,
            cosine,
            verbatim,
        })
        .collect())
}

/// Reciprocal-rank fusion of two best-first lists of `(doc, score)`. Ties broken by doc number
/// so results are deterministic.
pub fn fuse(
    text: &[(i64, f32)],
    vector: &[(i64, f32)],
) -> Vec<(i64, f32, Option<f32>, Option<f32>)> {
    let mut acc: HashMap<i64, (f32, Option<f32>, Option<f32>)> = HashMap::new();
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

/// Nearest verbatims to `qv` among those passing `filter`: `(doc, cosine)`, best first.
pub fn vector_search(
    store: &Store,
    indexes: &Indexes,
    qv: &[f32],
    filter: &Filter,
    k: usize,
) -> Result<Vec<(i64, f32)>, RetrieveError> {
    use crate::vecmath::dot;
    let allowed: Vec<i64> = if filter.is_empty() {
        store.live_vec_ids()?
    } else {
        store.filtered_vec_ids(filter)?
    };
    if allowed.is_empty() {
        return Ok(Vec::new());
    }
    // Up to EXACT_SCAN_LIMIT candidates, filtered or not, an exact scan is both exact and cheap
    // (milliseconds); the graph is for larger sets. (A graph built by parallel insertion can
    // leave a point unreachable; on a small workspace an exact answer costs nothing.)
    let by_slot: Vec<(i64, f32)> =
        if allowed.len() <= EXACT_SCAN_LIMIT || indexes.vectors.points() == 0 {
            let mut scored: Vec<(i64, f32)> = store
                .filtered_vectors(filter)?
                .into_iter()
                .map(|(doc, _, v)| (doc, dot(qv, &v)))
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            scored.truncate(k);
            return Ok(scored);
        } else {
            let allowed_usize: Vec<usize> = allowed.iter().map(|&v| v as usize).collect();
            let accept = move |id: usize| allowed_usize.binary_search(&id).is_ok();
            let ef = (k * 2).max(128);
            indexes.vectors.search(qv, k, ef, accept)
        };
    let slots: Vec<i64> = by_slot.iter().map(|h| h.0).collect();
    let docs = store.docs_for_vec_ids(&slots)?;
    Ok(by_slot
        .iter()
        .zip(docs)
        .filter_map(|(&(_, cos), doc)| doc.map(|d| (d, cos)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_prefers_agreement_and_is_deterministic() {
        let text = [(1, 9.0), (2, 5.0), (3, 1.0)];
        let vector = [(2, 0.9), (4, 0.8), (1, 0.7)];
        let f = fuse(&text, &vector);
        // 2 is 2nd and 1st (1/62 + 1/61), 1 is 1st and 3rd (1/61 + 1/63).
        assert_eq!(f[0].0, 2);
        assert_eq!(f[1].0, 1);
        assert_eq!(f.len(), 4);
        assert_eq!(f[1].2, Some(9.0));
        assert_eq!(f[1].3, Some(0.7));
        // 3 and 4 tie on one appearance each at rank 3 / rank 2: 4 is ahead.
        assert_eq!(f[2].0, 4);
        assert_eq!(fuse(&text, &vector), f);
    }
}
