//! A theme run over the whole workspace: discovery, stable ids, user edits, persistence.
//!
//! Themes are discovered on every stored verbatim (a filter narrows what is *shown*, not what is
//! discovered, so ids mean the same thing in every view). Each run:
//!
//! 1. clusters the stored embeddings ([`super::cluster::discover`]); clusters smaller than
//!    `min_size` are dissolved into their neighbours;
//! 2. adds the user's seeded themes as fixed centroids and assigns every verbatim to its nearest
//!    centroid, or to "other", with an optional second theme (rules in `cluster`);
//! 3. matches each discovered cluster to the previous run's themes by centroid (cosine ≥
//!    [`MATCH_MIN`], best pairs first, one to one): a match keeps its id, a cluster matching a
//!    merged theme goes to the theme it was merged into, an unmatched cluster gets the next
//!    unused id, a previous theme left unmatched is "vanished" (its id is never reused);
//! 4. labels the final themes (c-TF-IDF, [`super::label`]); a user label wins;
//! 5. writes themes and membership in one transaction, and reports what is new, grew, shrank or
//!    vanished.
//!
//! The same store and parameters give the same ids, labels and membership: every step is
//! deterministic (seeded RNG, fixed iteration orders, ties broken by id).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cluster::{self, nearest2, Selection};
use super::label::{label_themes, Phraser, Vocab};
use super::sentences::{ensure_sentences, SentenceMap, SentencesError};
use super::Change;
use crate::store::{Store, StoreError, StoredTheme, ThemeMember, ThemeState, Verbatim};
use crate::vecmath::LanguageMeans;

/// Cosine between a new cluster's centroid and a previous theme's for them to be the same theme.
pub const MATCH_MIN: f32 = 0.80;

/// Settings of a run (all recorded in the run key and the report manifest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Params {
    /// Seed of k-means++ and of the k-selection sample.
    pub seed: u64,
    /// Number of discovered themes; `None`: chosen by silhouette.
    pub k: Option<usize>,
    /// Discovered themes smaller than this are dissolved into their neighbours.
    pub min_size: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            seed: 42,
            k: None,
            min_size: 10,
        }
    }
}

/// Everything a run loaded and decided, for the summaries.
pub struct RunData {
    /// Verbatims with vectors, in doc order.
    pub docs: Vec<Verbatim>,
    /// Their vectors, row-major.
    pub vectors: Vec<f32>,
    /// Vector length.
    pub dim: usize,
    /// Themes after the run (every state), by id.
    pub themes: Vec<StoredTheme>,
    /// Membership, parallel to `docs`.
    pub members: Vec<ThemeMember>,
    /// Sentence vectors of the multi-sentence verbatims, by doc (may be empty when no model
    /// was available to make them).
    pub sentences: SentenceMap,
    /// What changed since the previous run, by theme id (vanished included).
    pub changes: BTreeMap<i64, Change>,
    /// How k was chosen (None when the run was loaded, not computed).
    pub selection: Option<Selection>,
    /// True when this call ran discovery; false when the stored run was current.
    pub ran: bool,
}

impl RunData {
    /// Active themes (with members or seeded), by id.
    pub fn active(&self) -> impl Iterator<Item = &StoredTheme> {
        self.themes.iter().filter(|t| t.state == ThemeState::Active)
    }
}

/// Display id of a theme number.
pub fn theme_id(n: i64) -> String {
    format!("T{n}")
}

/// Parses `T12` / `t12` / `12`.
pub fn parse_theme_id(s: &str) -> Option<i64> {
    let t = s.trim();
    let t = t.strip_prefix(['T', 't']).unwrap_or(t);
    t.parse().ok().filter(|&n: &i64| n > 0)
}

/// Label shown for a theme: the user's, else the automatic one.
pub fn display_label(t: &StoredTheme) -> &str {
    t.user_label.as_deref().unwrap_or(&t.label)
}

fn run_key(store: &Store, params: &Params) -> Result<String, StoreError> {
    let fp = store.model_fingerprint()?.unwrap_or_default();
    Ok(format!(
        "seq={};model={fp};params={}",
        store.seq()?,
        serde_json::to_string(params).expect("params serialise")
    ))
}

fn load(store: &Store) -> Result<(Vec<Verbatim>, Vec<f32>, usize), StoreError> {
    let mut docs = Vec::new();
    let mut x = Vec::new();
    let mut dim = 0;
    store.for_each(|v, _, vec| {
        dim = vec.len();
        x.extend_from_slice(&vec);
        docs.push(v);
        Ok(())
    })?;
    Ok((docs, x, dim))
}

/// Loads the last run when it is current (same store sequence, model and parameters, no edit
/// since); otherwise runs discovery and saves it. `force` always re-runs. With `embedder` (the
/// workspace's model), sentences of new multi-sentence verbatims are embedded first (once; they
/// are stored), for sentiment and second themes, and so are the opinion units of new or changed
/// verbatims ([`super::units::ensure_units`]).
pub fn ensure(
    store: &mut Store,
    params: &Params,
    force: bool,
    embedder: Option<&dyn crate::embed::Embedder>,
    progress: &dyn crate::progress::Progress,
) -> Result<RunData, SentencesError> {
    let mut steps = crate::progress::Steps::start();
    let (docs, vectors, dim) = load(store)?;
    steps.done(format_args!(
        "themes: verbatims and vectors read ({} verbatims)",
        docs.len()
    ));
    if let Some(e) = embedder {
        let pairs: Vec<(i64, &str)> = docs.iter().map(|d| (d.doc, d.text.as_str())).collect();
        ensure_sentences(store, e, &pairs, progress)?;
        embed_units(store, e, &docs, &vectors, dim, progress)?;
    }
    steps.done(format_args!("themes: sentences and units embedded"));
    let sentences = store.sentence_vectors()?;
    steps.done(format_args!("themes: sentence vectors read"));
    let key = run_key(store, params)?;
    if !force && store.theme_run_key()?.as_deref() == Some(key.as_str()) {
        let themes = store.themes()?;
        let by_doc: HashMap<i64, ThemeMember> = store
            .theme_members()?
            .into_iter()
            .map(|m| (m.doc, m))
            .collect();
        let members = docs
            .iter()
            .map(|d| {
                by_doc.get(&d.doc).copied().unwrap_or(ThemeMember {
                    doc: d.doc,
                    theme: None,
                    second: None,
                    sim: 0.0,
                })
            })
            .collect();
        return Ok(RunData {
            docs,
            vectors,
            dim,
            themes,
            members,
            sentences,
            changes: BTreeMap::new(),
            selection: None,
            ran: false,
        });
    }
    let previous = store.themes()?;
    let n = docs.len() as u64;
    if n > 0 {
        progress.start("finding themes", n);
    }
    let mut data = discover(docs, vectors, dim, &previous, params, sentences);
    if n > 0 {
        progress.advance(n);
        progress.finish();
    }
    steps.done(format_args!("themes: discovered"));
    store.save_theme_run(&data.themes, &data.members, &key)?;
    steps.done(format_args!("themes: saved"));
    data.ran = true;
    Ok(data)
}

/// The verbatims an aspect-tree run reads (those with vectors, in doc order), their opinion
/// units embedded first with `embedder` when given ([`super::units::ensure_units`]). Neither the
/// topic run nor the sentence vectors (which only the topic themes read) are touched: the tree
/// does not wait for a discovery it does not use.
pub fn tree_docs(
    store: &mut Store,
    embedder: Option<&dyn crate::embed::Embedder>,
    progress: &dyn crate::progress::Progress,
) -> Result<Vec<Verbatim>, SentencesError> {
    let (docs, vectors, dim) = load(store)?;
    if let Some(e) = embedder {
        embed_units(store, e, &docs, &vectors, dim, progress)?;
    }
    Ok(docs)
}

/// The opinion units of `docs` not yet made, made and embedded (a one-unit verbatim reuses its
/// own vector: `vectors`, row-major, `dim` wide, parallel to `docs`).
fn embed_units(
    store: &mut Store,
    e: &dyn crate::embed::Embedder,
    docs: &[Verbatim],
    vectors: &[f32],
    dim: usize,
    progress: &dyn crate::progress::Progress,
) -> Result<(), SentencesError> {
    let unit_docs: Vec<super::units::UnitDoc<'_>> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let v = (dim > 0).then(|| &vectors[i * dim..(i + 1) * dim]);
            (d.doc, d.text.as_str(), v)
        })
        .collect();
    super::units::ensure_units(store, e, &unit_docs, progress)?;
    Ok(())
}

/// Follows merge links to the theme that receives a merged theme's verbatims.
fn resolve_merge(id: i64, themes: &BTreeMap<i64, StoredTheme>) -> i64 {
    let mut cur = id;
    for _ in 0..themes.len() + 1 {
        match themes.get(&cur) {
            Some(t) if t.state == ThemeState::Merged => match t.merged_into {
                Some(next) => cur = next,
                None => return cur,
            },
            _ => return cur,
        }
    }
    cur
}

/// One discovery over `docs` and their vectors (row-major, `dim` wide), given the previous
/// themes: what [`ensure`] runs and saves. Public for the benches.
pub fn discover(
    docs: Vec<Verbatim>,
    x: Vec<f32>,
    dim: usize,
    previous: &[StoredTheme],
    params: &Params,
    sentences: SentenceMap,
) -> RunData {
    let n = docs.len();
    let mut by_id: BTreeMap<i64, StoredTheme> =
        previous.iter().map(|t| (t.id, t.clone())).collect();
    let prev_size: BTreeMap<i64, (ThemeState, i64)> =
        previous.iter().map(|t| (t.id, (t.state, t.size))).collect();
    if n == 0 || dim == 0 {
        let mut changes = BTreeMap::new();
        for t in by_id.values_mut() {
            if t.state == ThemeState::Active && !t.seeded {
                t.state = ThemeState::Vanished;
                changes.insert(t.id, Change::Vanished);
            }
            t.size = 0;
        }
        return RunData {
            docs,
            vectors: x,
            dim,
            themes: by_id.into_values().collect(),
            members: Vec::new(),
            sentences,
            changes,
            selection: None,
            ran: true,
        };
    }

    // 0. Several languages: cluster on language-centred vectors (below); `raw` stays for
    //    sentiment and quotes.
    let means = language_means(&docs, &x, dim);
    let raw = x;
    let x = match &means {
        Some(m) => {
            let mut c = raw.clone();
            for (i, d) in docs.iter().enumerate() {
                m.center(&d.language, &mut c[i * dim..(i + 1) * dim]);
            }
            c
        }
        None => raw.clone(),
    };
    let sentences_c: SentenceMap = match &means {
        Some(m) => docs
            .iter()
            .filter_map(|d| {
                let ss = sentences.get(&d.doc)?;
                let mut ss = ss.clone();
                for s in &mut ss {
                    m.center(&d.language, &mut s.vector);
                }
                Some((d.doc, ss))
            })
            .collect(),
        None => SentenceMap::default(),
    };
    let sentences_for_rules = if means.is_some() {
        &sentences_c
    } else {
        &sentences
    };

    // 1. Discovery (the last run's clusters compete as a candidate), then dissolve small
    //    clusters.
    let prev_centroids: Vec<f32> = by_id
        .values()
        .filter(|t| {
            !t.seeded
                && matches!(t.state, ThemeState::Active | ThemeState::Merged)
                && t.centroid.len() == dim
        })
        .flat_map(|t| t.centroid.iter().copied())
        .collect();
    let (fit, selection) = cluster::discover(
        &x,
        dim,
        params.seed,
        params.k,
        (!prev_centroids.is_empty()).then_some(prev_centroids.as_slice()),
    );
    let k = fit.k(dim);
    let mut counts = vec![0usize; k];
    for &a in &fit.assign {
        counts[a] += 1;
    }
    let keep: Vec<usize> = (0..k)
        .filter(|&j| counts[j] >= params.min_size.max(1))
        .collect();
    let keep = if keep.is_empty() {
        // Everything is small: keep the largest so there is at least one theme.
        vec![(0..k)
            .max_by_key(|&j| (counts[j], usize::MAX - j))
            .unwrap_or(0)]
    } else {
        keep
    };
    let kept: Vec<f32> = keep
        .iter()
        .flat_map(|&j| fit.centroids[j * dim..(j + 1) * dim].iter().copied())
        .collect();
    // Dissolved clusters' members move to their nearest kept theme: refit to a fixed point, so
    // the stored centroids are the ones a re-run starts from and keeps.
    let discovered = if keep.len() < k {
        cluster::kmeans_from(&x, dim, kept, 100, true).centroids
    } else {
        kept
    };
    let kd = keep.len();

    // 2. Seeded themes join as fixed centroids.
    let seeded: Vec<i64> = by_id
        .values()
        .filter(|t| t.seeded && t.state == ThemeState::Active && t.centroid.len() == dim)
        .map(|t| t.id)
        .collect();
    let mut all = discovered.clone();
    for id in &seeded {
        // Seeds are stored as the raw mean of their examples; centred like the verbatims.
        let mut c = by_id[id].centroid.clone();
        if let Some(m) = &means {
            let text = by_id[id].examples.join(" ");
            m.center(crate::lang::detect(&text).code(), &mut c);
        }
        all.extend_from_slice(&c);
    }

    // 3. Match discovered clusters to previous (non-seeded) themes.
    let candidates: Vec<i64> = by_id
        .values()
        .filter(|t| !t.seeded && t.centroid.len() == dim)
        .map(|t| t.id)
        .collect();
    let mut cluster_id: Vec<Option<i64>> = vec![None; kd];
    if !candidates.is_empty() {
        let prev: Vec<f32> = candidates
            .iter()
            .flat_map(|id| by_id[id].centroid.iter().copied())
            .collect();
        let sims = crate::vecmath::dot_matrix(&discovered, &prev, dim);
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for j in 0..kd {
            for (p, _) in candidates.iter().enumerate() {
                let s = sims[j * candidates.len() + p];
                if s >= MATCH_MIN {
                    pairs.push((s, j, p));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut used = vec![false; candidates.len()];
        for (_, j, p) in pairs {
            if cluster_id[j].is_none() && !used[p] {
                cluster_id[j] = Some(candidates[p]);
                used[p] = true;
            }
        }
    }
    // Assignment over all centroids (discovered, then seeded).
    let near = nearest2(&x, &all, dim);
    let mut size_of = vec![0usize; all.len() / dim];
    for &(b, _, _, _) in &near {
        size_of[b] += 1;
    }
    // New ids for unmatched clusters: largest first, ties by the first member's doc.
    let mut next_id = by_id.keys().max().copied().unwrap_or(0) + 1;
    let mut first_doc = vec![usize::MAX; kd];
    for (i, &(b, _, _, _)) in near.iter().enumerate() {
        if b < kd && first_doc[b] == usize::MAX {
            first_doc[b] = i;
        }
    }
    let mut unmatched: Vec<usize> = (0..kd).filter(|&j| cluster_id[j].is_none()).collect();
    unmatched.sort_by_key(|&j| (usize::MAX - size_of[j], first_doc[j]));
    for j in unmatched {
        cluster_id[j] = Some(next_id);
        by_id.insert(
            next_id,
            StoredTheme {
                id: next_id,
                label: String::new(),
                keywords: Vec::new(),
                user_label: None,
                centroid: Vec::new(),
                size: 0,
                seeded: false,
                examples: Vec::new(),
                merged_into: None,
                state: ThemeState::Active,
            },
        );
        next_id += 1;
    }
    // Centroid index → final theme id (merges followed).
    let mut final_of: Vec<i64> = cluster_id
        .iter()
        .map(|c| resolve_merge(c.expect("every cluster has an id"), &by_id))
        .collect();
    final_of.extend(seeded.iter().copied());
    // Matched themes track their cluster's centroid.
    for (j, c) in cluster_id.iter().enumerate() {
        let t = by_id.get_mut(&c.expect("id")).expect("theme");
        t.centroid = discovered[j * dim..(j + 1) * dim].to_vec();
    }

    // 4. Membership: first theme, "other", second theme.
    let k_all = all.len() / dim;
    let assign: Vec<usize> = near.iter().map(|m| m.0).collect();
    let sim: Vec<f32> = near.iter().map(|m| m.1).collect();
    let other = cluster::others(&assign, &sim, k_all);
    // Mean member cosine per centroid: a sentence must be at least that close to count.
    let mut mean = vec![0f64; k_all];
    for (&a, &s) in assign.iter().zip(&sim) {
        mean[a] += s as f64;
    }
    for (m, &c) in mean.iter_mut().zip(&size_of) {
        *m /= c.max(1) as f64;
    }
    // Second theme (sentence rule): a sentence of 6+ words whose nearest theme is another one,
    // at least as close to it as that theme's members are on average; the closest such wins.
    let mut sent_rows: Vec<f32> = Vec::new();
    let mut sent_owner: Vec<usize> = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        if other[i] {
            continue;
        }
        if let Some(ss) = sentences_for_rules.get(&d.doc) {
            for s in ss.iter().filter(|s| s.words >= 6 && s.vector.len() == dim) {
                sent_rows.extend_from_slice(&s.vector);
                sent_owner.push(i);
            }
        }
    }
    let mut second: Vec<Option<(f32, i64)>> = vec![None; n];
    if !sent_owner.is_empty() {
        for (&i, &(b, bs, _, _)) in sent_owner.iter().zip(&nearest2(&sent_rows, &all, dim)) {
            let t = final_of[b];
            if t != final_of[assign[i]]
                && bs as f64 >= mean[b]
                && second[i].is_none_or(|s| bs > s.0)
            {
                second[i] = Some((bs, t));
            }
        }
    }
    let members: Vec<ThemeMember> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| ThemeMember {
            doc: d.doc,
            theme: (!other[i]).then_some(final_of[assign[i]]),
            second: second[i].map(|s| s.1),
            sim: sim[i],
        })
        .collect();

    // 5. Labels over the final themes.
    let ids: Vec<i64> = {
        let mut v: Vec<i64> = final_of.clone();
        v.sort_unstable();
        v.dedup();
        v
    };
    let index: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut phraser = Phraser::default();
    let mut vocab = Vocab::default();
    let phrases: Vec<_> = docs
        .iter()
        .map(|d| phraser.phrases(&d.text, &d.language, &mut vocab))
        .collect();
    let theme_idx: Vec<Option<usize>> =
        members.iter().map(|m| m.theme.map(|t| index[&t])).collect();
    let labels = label_themes(&phrases, &theme_idx, ids.len(), &vocab);
    let mut sizes: BTreeMap<i64, i64> = BTreeMap::new();
    for m in &members {
        if let Some(t) = m.theme {
            *sizes.entry(t).or_default() += 1;
        }
    }

    // 6. States and changes.
    let mut changes = BTreeMap::new();
    for t in by_id.values_mut() {
        let now = sizes.get(&t.id).copied().unwrap_or(0);
        if let Some(&i) = index.get(&t.id) {
            t.label = labels[i].label.clone();
            t.keywords = labels[i].keywords.clone();
        }
        let is_final = index.contains_key(&t.id);
        if t.state == ThemeState::Merged {
            t.size = 0;
            continue;
        }
        let was = prev_size.get(&t.id).copied();
        if is_final || t.seeded {
            t.state = ThemeState::Active;
            t.size = now;
            let change = match was {
                Some((ThemeState::Active, before)) if before > 0 => {
                    Change::from_ratio(now as f64 / before as f64)
                }
                Some((ThemeState::Active, _)) => Change::Grew,
                _ => Change::New,
            };
            changes.insert(t.id, change);
        } else {
            if was.is_some_and(|w| w.0 == ThemeState::Active) {
                changes.insert(t.id, Change::Vanished);
            }
            t.state = ThemeState::Vanished;
        }
    }
    RunData {
        docs,
        vectors: raw,
        dim,
        themes: by_id.into_values().collect(),
        members,
        sentences,
        changes,
        selection: Some(selection),
        ran: true,
    }
}

/// Languages with at least this many verbatims count for centring (the shared rule:
/// [`crate::vecmath::LanguageMeans`]).
pub use crate::vecmath::MIN_LANGUAGE_DOCS;

/// Mean vector per language when the verbatims are in several languages (each with at least
/// [`MIN_LANGUAGE_DOCS`]); `None` for a one-language workspace (why: [`LanguageMeans`]; the same
/// fix takes French→English rank-1 retrieval among mixed-language distractors from 0.875 to 0.99).
fn language_means(docs: &[Verbatim], x: &[f32], dim: usize) -> Option<LanguageMeans> {
    LanguageMeans::compute(
        docs.iter()
            .enumerate()
            .map(|(i, d)| (d.language.as_str(), &x[i * dim..(i + 1) * dim])),
        dim,
    )
}

/// sha256 over the ids of `docs` and their text, in id order: identifies the data a run or a
/// report was made from.
pub fn snapshot_hash<'a>(docs: impl Iterator<Item = &'a Verbatim>) -> String {
    let mut v: Vec<(&str, &str)> = docs.map(|d| (d.id.as_str(), d.text.as_str())).collect();
    v.sort_unstable();
    let mut h = Sha256::new();
    for (id, text) in v {
        h.update((id.len() as u64).to_le_bytes());
        h.update(id.as_bytes());
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theme_ids_parse_and_print() {
        assert_eq!(parse_theme_id("T12"), Some(12));
        assert_eq!(parse_theme_id("t3"), Some(3));
        assert_eq!(parse_theme_id("7"), Some(7));
        assert_eq!(parse_theme_id("T0"), None);
        assert_eq!(parse_theme_id("x"), None);
        assert_eq!(theme_id(5), "T5");
    }
}
