//! Search on opinion units: once a verbatim has units (`themes::units`, made by the first theme
//! run), a hit is its *best unit*, not the whole text.
//!
//! **Why.** A review that says "great taste, but the package arrived damaged" answers a search
//! for damaged packages through one clause; the verbatim's own vector averages it with the
//! praise, and a negated clause elsewhere in the text ("not damaged at all") decides whether it
//! contradicts the query. Ranking the clause that answers puts such complaints next to the
//! one-line ones, and the hit can show *where* it answers.
//!
//! How (measured choice, cheap at any size): the two retrievers still find verbatims (BM25 over
//! the verbatim, the HNSW graph over verbatim vectors, `depth` deep); each candidate is then read
//! as its units:
//!
//! * the vector side scores a verbatim by its best unit — the highest cosine, among the units
//!   that do not contradict the query ([`super::contradicts`], on the unit's own words as the
//!   text index reads them), of the query with each unit vector, centred per language as the
//!   graph's vectors are. A verbatim whose every unit contradicts the query keeps its best
//!   cosine but goes after every other hit, in every mode and after the polarity boost;
//! * the text side keeps BM25's order and maps each verbatim to the unit holding most query
//!   terms (same analysis, polarity included), ties by cosine;
//! * fusion works on verbatims, so a verbatim appears once, with its best unit.
//!
//! A verbatim without units (no theme run yet, or changed since) is one segment: its whole
//! text and its own vector, which is exactly the whole-text search that came before units.
//! Polarity-aware ranking reads the best unit's stored sentiment.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use serde::Serialize;

use super::{contradicts, RetrieveError};
use crate::index::text::tokens;
use crate::index::{Indexes, TextIndex};
use crate::lang::Lang;
use crate::store::Store;
use crate::themes::Polarity;

/// The unit a hit answers with: `verbatim.text[start..end]` (bytes), and its sentiment.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HitUnit {
    /// First byte in the verbatim's text.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// The unit's sentiment (`None` when no sentiment model is loaded).
    pub sentiment: Option<Polarity>,
}

/// One candidate verbatim read as its segments (its units, or its whole text).
#[derive(Clone, Debug)]
pub(super) struct Segments {
    /// Whether the segments are units (else one segment: the whole text).
    pub units: bool,
    /// The units in order (or the whole text).
    segs: Vec<Segment>,
}

#[derive(Clone, Debug)]
struct Segment {
    idx: usize,
    start: usize,
    end: usize,
    /// Cosine in the index's space (centred per language when the index is): ranks.
    cosine: Option<f32>,
    /// Cosine of the raw vectors (what thresholds calibrated per model compare with).
    raw: Option<f32>,
    terms: usize,
    contradicts: bool,
    /// The unit's stored sentiment score (none for a whole-text segment, or a unit not scored).
    sentiment: Option<f32>,
}

impl Segments {
    /// The best segment for a vector score: highest cosine among those that do not contradict
    /// the query (all of them when every one does).
    fn best_by_cosine(&self) -> Option<&Segment> {
        let pool: Vec<&Segment> = match self.segs.iter().any(|s| !s.contradicts) {
            true => self.segs.iter().filter(|s| !s.contradicts).collect(),
            false => self.segs.iter().collect(),
        };
        pool.into_iter().max_by(|a, b| {
            a.cosine
                .unwrap_or(f32::MIN)
                .total_cmp(&b.cosine.unwrap_or(f32::MIN))
                .then(b.idx.cmp(&a.idx))
        })
    }

    /// The segment a hit shows: non-contradicting first, then (when the query states an
    /// opinion) those of its polarity (`agrees(idx)`), then most query terms, then cosine, then
    /// the first.
    fn best(&self, agrees: impl Fn(usize) -> bool) -> Option<&Segment> {
        self.segs.iter().max_by(|a, b| {
            (!a.contradicts)
                .cmp(&!b.contradicts)
                .then(agrees(a.idx).cmp(&agrees(b.idx)))
                .then(a.terms.cmp(&b.terms))
                .then(
                    a.cosine
                        .unwrap_or(f32::MIN)
                        .total_cmp(&b.cosine.unwrap_or(f32::MIN)),
                )
                .then(b.idx.cmp(&a.idx))
        })
    }

    /// Whether every segment contradicts the query.
    fn contradicts(&self) -> bool {
        !self.segs.is_empty() && self.segs.iter().all(|s| s.contradicts)
    }
}

/// Reads each of `docs` as its segments for `query` (`qv`: the query vector in the index's
/// space and as embedded, when there is one). Docs the store no longer has are absent.
pub(super) fn segments(
    store: &Store,
    indexes: &Indexes,
    docs: &[i64],
    query: &str,
    qv: Option<(&[f32], &[f32])>,
) -> Result<HashMap<i64, Segments>, RetrieveError> {
    let (en, fr) = TextIndex::query_terms(query);
    let q_en: HashSet<String> = en.into_iter().collect();
    let q_fr: HashSet<String> = fr.into_iter().collect();
    let means = indexes.vectors.means();
    let mut units = store.units_of(docs)?;
    // Whole-text segments need the verbatim's own vector (for vector scores only).
    let own: HashMap<i64, Vec<f32>> = match qv {
        Some(_) => {
            let no_units: Vec<i64> = docs
                .iter()
                .copied()
                .filter(|d| units.get(d).is_none_or(Vec::is_empty))
                .collect();
            store.vectors_of(&no_units)?
        }
        None => HashMap::new(),
    };
    let mut out = HashMap::new();
    for v in store.get_docs(docs)? {
        let lang = Lang::from_code(&v.language).unwrap_or(Lang::En);
        let q = if lang == Lang::Fr { &q_fr } else { &q_en };
        let toks = tokens(lang, &v.text);
        let read = |start: usize,
                    end: usize,
                    vector: Option<&[f32]>,
                    idx: usize,
                    sentiment: Option<f32>| {
            let terms: HashSet<String> = toks
                .iter()
                .filter(|t| t.1 >= start && t.2 <= end)
                .map(|t| t.0.clone())
                .collect();
            let (cosine, raw) = match (qv, vector) {
                (Some((qv, raw_qv)), Some(u)) => {
                    let raw = crate::vecmath::dot(raw_qv, u);
                    let centred = match means {
                        Some(m) => {
                            let mut u = u.to_vec();
                            m.center(&v.language, &mut u);
                            crate::vecmath::dot(qv, &u)
                        }
                        None => raw,
                    };
                    (Some(centred), Some(raw))
                }
                _ => (None, None),
            };
            Segment {
                idx,
                start,
                end,
                cosine,
                raw,
                terms: q.iter().filter(|t| terms.contains(*t)).count(),
                contradicts: contradicts(q, &terms),
                sentiment,
            }
        };
        let segs = match units.remove(&v.doc).filter(|u| !u.is_empty()) {
            Some(us) => Segments {
                units: true,
                segs: us
                    .iter()
                    .filter(|u| u.end <= v.text.len())
                    .map(|u| read(u.start, u.end, Some(&u.vector), u.idx, u.sentiment))
                    .collect(),
            },
            None => Segments {
                units: false,
                segs: vec![read(
                    0,
                    v.text.len(),
                    own.get(&v.doc).map(Vec::as_slice),
                    0,
                    None,
                )],
            },
        };
        out.insert(v.doc, segs);
    }
    Ok(out)
}

/// The vector hits scored by their best segment (module docs), best first, verbatims whose every
/// segment contradicts the query after the others (ties by doc).
///
/// Generic over the key: a doc, or a (shard, doc) pair when several workspaces answer as one.
pub(super) fn rank_vector<K: Copy + Eq + Hash + Ord>(
    hits: &[(K, f32)],
    segs: &HashMap<K, Segments>,
) -> Vec<(K, f32)> {
    let mut scored: Vec<(bool, K, f32)> = hits
        .iter()
        .map(|&(doc, cos)| match segs.get(&doc) {
            Some(s) => (
                s.contradicts(),
                doc,
                s.best_by_cosine().and_then(|b| b.cosine).unwrap_or(cos),
            ),
            None => (false, doc, cos),
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.total_cmp(&a.2)).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, d, s)| (d, s)).collect()
}

/// The raw cosine (not centred) of each doc's best segment for a vector score — the cosine a
/// hit reports, which per-model thresholds (`ask`'s abstention, counting) were calibrated on.
pub(super) fn raw_cosines<K: Copy + Eq + Hash>(segs: &HashMap<K, Segments>) -> HashMap<K, f32> {
    segs.iter()
        .filter_map(|(&d, s)| Some((d, s.best_by_cosine()?.raw?)))
        .collect()
}

/// The stored sentiment of every unit read (doc, idx) → score: read with the units, so a search
/// needs no second pass over its candidates' unit rows for the polarity ranking and the units
/// shown.
pub(super) fn unit_sentiments<K: Copy + Eq + Hash>(
    segs: &HashMap<K, Segments>,
) -> HashMap<(K, usize), f32> {
    segs.iter()
        .filter(|(_, s)| s.units)
        .flat_map(|(&d, s)| {
            s.segs
                .iter()
                .filter_map(move |u| Some(((d, u.idx), u.sentiment?)))
        })
        .collect()
}

/// Whether every segment of `doc` contradicts the query (it says only the opposite).
pub(super) fn contradicts_query<K: Eq + Hash>(segs: &HashMap<K, Segments>, doc: K) -> bool {
    segs.get(&doc).is_some_and(Segments::contradicts)
}

/// The unit each hit shows: (doc → (idx, start, end)), for docs read as units only. `agrees`:
/// the units (doc, idx) of the polarity the query states, when it states one — "package arrived
/// damaged" shows "…but the cookies were broken", not "The package arrived on time" of the same
/// review, though the latter holds more of the query's words.
pub(super) fn shown_units<K: Copy + Eq + Hash>(
    segs: &HashMap<K, Segments>,
    vector_only: bool,
    agrees: &HashSet<(K, usize)>,
) -> HashMap<K, (usize, usize, usize)> {
    segs.iter()
        .filter(|(_, s)| s.units)
        .filter_map(|(&d, s)| {
            let b = if vector_only {
                s.best_by_cosine()
            } else {
                s.best(|idx| agrees.contains(&(d, idx)))
            }?;
            Some((d, (b.idx, b.start, b.end)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(idx: usize, cosine: f32, terms: usize, contradicts: bool) -> Segment {
        Segment {
            idx,
            start: idx * 10,
            end: idx * 10 + 9,
            cosine: Some(cosine),
            // The raw cosine differs from the centred one (a centred workspace).
            raw: Some(cosine + 0.25),
            terms,
            contradicts,
            // Even units scored, odd ones not yet.
            sentiment: (idx % 2 == 0).then_some(idx as f32 * 0.1 - 0.5),
        }
    }

    /// The sentiments read with the units: every scored unit of a doc read as units, none of
    /// a whole-text segment (a verbatim's own score is not a unit's).
    #[test]
    fn unit_sentiments_are_the_scored_units_of_docs_read_as_units() {
        let segs: HashMap<i64, Segments> = [
            (
                1,
                Segments {
                    units: true,
                    segs: vec![
                        seg(0, 0.5, 0, false),
                        seg(1, 0.4, 0, false),
                        seg(2, 0.1, 0, true),
                    ],
                },
            ),
            (
                2,
                Segments {
                    units: false,
                    segs: vec![seg(0, 0.3, 0, false)],
                },
            ),
        ]
        .into_iter()
        .collect();
        let got = unit_sentiments(&segs);
        let want: HashMap<(i64, usize), f32> =
            [((1, 0), -0.5), ((1, 2), 0.2 - 0.5)].into_iter().collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_verbatim_is_ranked_by_its_best_unit_that_does_not_contradict_the_query() {
        let segs: HashMap<i64, Segments> = [
            // "great taste | but the package arrived damaged": the second unit answers.
            (
                1,
                Segments {
                    units: true,
                    segs: vec![seg(0, 0.2, 0, false), seg(1, 0.9, 3, false)],
                },
            ),
            // "the package arrived | not damaged at all": its closest unit contradicts.
            (
                2,
                Segments {
                    units: true,
                    segs: vec![seg(0, 0.5, 2, false), seg(1, 0.95, 1, true)],
                },
            ),
            // One unit, contradicting: after every other verbatim.
            (
                3,
                Segments {
                    units: true,
                    segs: vec![seg(0, 0.99, 2, true)],
                },
            ),
        ]
        .into_iter()
        .collect();
        // The verbatim vectors ranked 3, 2, 1.
        let hits = [(3, 0.9), (2, 0.8), (1, 0.4), (4, 0.3)];
        let ranked = rank_vector(&hits, &segs);
        let order: Vec<i64> = ranked.iter().map(|r| r.0).collect();
        assert_eq!(order, [1, 2, 4, 3]);
        assert_eq!(ranked[0].1, 0.9);
        assert_eq!(
            ranked[1].1, 0.5,
            "the contradicting unit's cosine is not used"
        );
        let shown = shown_units(&segs, false, &HashSet::new());
        assert_eq!(shown[&1], (1, 10, 19));
        assert_eq!(shown[&2], (0, 0, 9));
        assert_eq!(shown[&3], (0, 0, 9));
        assert!(!shown.contains_key(&4));
        // A query stating an opinion shows the unit of its polarity first: doc 1's first unit
        // (no query term) when it is the one that agrees.
        let agrees: HashSet<(i64, usize)> = [(1, 0)].into_iter().collect();
        assert_eq!(shown_units(&segs, false, &agrees)[&1], (0, 0, 9));
        // Never a contradicting one: doc 2's second unit agrees but contradicts the query.
        let agrees: HashSet<(i64, usize)> = [(2, 1)].into_iter().collect();
        assert_eq!(shown_units(&segs, false, &agrees)[&2], (0, 0, 9));
        assert!(contradicts_query(&segs, 3) && !contradicts_query(&segs, 2));
        assert!(!contradicts_query(&segs, 4));
        // A hit reports the raw cosine of the segment that ranked it.
        let raw = raw_cosines(&segs);
        assert_eq!(raw[&1], 0.9 + 0.25);
        assert_eq!(raw[&2], 0.5 + 0.25);
        assert!(!raw.contains_key(&4));
    }
}
