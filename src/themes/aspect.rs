//! The aspect tree as a product run: what `verbatim themes` shows by default (`--by aspect`).
//!
//! Why units and not verbatims: a review that praises the taste and complains about the box is
//! about two things; themed whole, it lands in one of them and the other is lost. Here every
//! opinion unit ([`super::units`]) gets a place in the two-level tree ([`super::tree`]: parents
//! are aspects, children what is said about them) and a sentiment ([`crate::sentiment::unit`]),
//! and a verbatim belongs to every node one of its units belongs to. Shares therefore count
//! **verbatims** (a verbatim counted once per node, possibly in several nodes), so they do not
//! add up to 100%.
//!
//! Each run (only when the store changed, or an edit or `--refresh` asks):
//!
//! 1. builds the tree on the stored unit vectors (grouped by verbatim, for the aspect view);
//! 2. keeps ids **per level**: a new parent (child) takes the id of the previous parent (child)
//!    whose centroid it matches (cosine ≥ [`super::run::MATCH_MIN`], best pairs first, one to
//!    one), like the topic themes; an unmatched node gets the next unused id (one id space for
//!    both levels, shown `P<n>` / `C<n>`); a previous node left unmatched vanishes, its id never
//!    reused;
//! 3. re-applies the user's edits: a node matching a merged node goes to the node it was merged
//!    into; a child the user moved keeps its new parent; user labels win;
//! 4. labels the nodes (c-TF-IDF on the units' text) and stores nodes and unit places in one
//!    transaction ([`crate::store::Store::save_aspect_run`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::analytics::{date_of, lead_polarity, sentiment_of, ScopeFacts};
use super::label::{label_themes, Phraser, Vocab};
use super::priority::Priority;
use super::run::MATCH_MIN;
use super::tree::{self, TreeError, TreeParams};
use super::types::{Highlight, Quote, SentimentSummary, ThemeSummary};
use crate::sentiment::SentimentHead;
use crate::store::{AspectNode, AspectUnit, Filter, Store, StoreError, ThemeState, Verbatim};
use crate::themes::Polarity;

/// Why a tree run failed.
#[derive(Debug, thiserror::Error)]
pub enum AspectError {
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tree's input did not fit together (a damaged unit table).
    #[error("the aspect tree: {0}")]
    Tree(#[from] TreeError),
    /// The imported theme model cannot place these units.
    #[error("{0}")]
    Model(String),
}

/// The tree after a run (or as loaded when current).
#[derive(Clone, Debug)]
pub struct AspectRun {
    /// Every node (every state), by id.
    pub nodes: Vec<AspectNode>,
    /// Every unit's place, by doc then unit.
    pub units: Vec<AspectUnit>,
    /// True when this call built the tree; false when the stored one was current.
    pub ran: bool,
    /// The decisions of the discovery, for a theme model ([`super::model`]); `None` when the
    /// tree was loaded, assigned from a model, or empty.
    pub rule: Option<super::model::Rule>,
}

impl AspectRun {
    /// The node with this id.
    pub fn node(&self, id: i64) -> Option<&AspectNode> {
        self.nodes.iter().find(|n| n.id == id)
    }
    /// Active parents, by id.
    pub fn parents(&self) -> impl Iterator<Item = &AspectNode> {
        self.nodes
            .iter()
            .filter(|n| n.is_parent && n.state == ThemeState::Active)
    }
    /// Active children of `parent`, by id.
    pub fn children_of(&self, parent: i64) -> impl Iterator<Item = &AspectNode> {
        self.nodes.iter().filter(move |n| {
            !n.is_parent && n.state == ThemeState::Active && n.parent == Some(parent)
        })
    }
}

/// Display id of a node: `P<n>` for a parent, `C<n>` for a child.
pub fn node_id(n: &AspectNode) -> String {
    format!("{}{}", if n.is_parent { 'P' } else { 'C' }, n.id)
}

/// Parses `P3` / `C12` (either case): (is_parent, number).
pub fn parse_node_id(s: &str) -> Option<(bool, i64)> {
    let t = s.trim();
    let (is_parent, rest) = match t.chars().next()? {
        'P' | 'p' => (true, &t[1..]),
        'C' | 'c' => (false, &t[1..]),
        _ => return None,
    };
    rest.parse()
        .ok()
        .filter(|&n: &i64| n > 0)
        .map(|n| (is_parent, n))
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// Label shown for a node: the user's, else the automatic one.
pub fn node_label(n: &AspectNode) -> &str {
    n.user_label.as_deref().unwrap_or(&n.label)
}

/// The key a tree run is stored under: the store sequence, model and rules it was built on.
pub fn run_key(store: &Store) -> Result<String, StoreError> {
    run_key_at(store, store.seq()?)
}

/// [`run_key`] at store sequence `seq` (an erasure keeps a current tree current: the key it will
/// be current under once the erasure has taken its sequences).
pub fn run_key_at(store: &Store, seq: i64) -> Result<String, StoreError> {
    let fp = store.model_fingerprint()?.unwrap_or_default();
    Ok(format!(
        "seq={seq};model={fp};tree={};units={}",
        tree::VERSION,
        super::units::UNIT_INPUT
    ))
}

/// Store meta key of the neutral band the last tree run classed its units' scores with (the
/// sentiment head's): an erasure relabels the tree without loading the head.
const BAND_KEY: &str = "aspects_neutral_band";

/// The band of a tree stored before [`BAND_KEY`] was recorded: that of every head shipped then.
const UNRECORDED_BAND: f32 = 0.2;

/// The neutral band the stored tree was labelled under.
pub fn labelled_band(store: &Store) -> Result<f32, StoreError> {
    Ok(store
        .meta(BAND_KEY)?
        .and_then(|b| b.parse().ok())
        .unwrap_or(UNRECORDED_BAND))
}

/// Store meta key of the theme model imported into this workspace (`themes import`), as its
/// JSON: while it is there, every run assigns the units with it instead of discovering.
pub const MODEL_KEY: &str = "aspects_model";

/// The theme model imported into this workspace, if any.
pub fn imported_model(store: &Store) -> Result<Option<super::model::ThemeModel>, AspectError> {
    let Some(json) = store.meta(MODEL_KEY)? else {
        return Ok(None);
    };
    super::model::ThemeModel::from_json(json.as_bytes(), "the workspace's imported theme model")
        .map(Some)
        .map_err(|e| AspectError::Model(e.to_string()))
}

/// When a run discovers its tree on a uniform sample instead of on every unit (the
/// workspace's `[themes]` settings): above `above` units, on the `size` verbatims of smallest
/// [`super::model::sample_rank`] under `seed` — the rows a Spark job picks for
/// `themes export-model --sample` — and every unit is then placed by that tree's model rule.
/// One node and a cluster so give the same themes, and discovery time stays bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sampling {
    /// Units (with a vector) above which the tree is discovered on the sample.
    pub above: usize,
    /// Verbatims in the sample.
    pub size: usize,
    /// Key of the sample's hash.
    pub seed: u64,
}

impl Sampling {
    /// Never sample (every unit discovers).
    pub const NEVER: Sampling = Sampling {
        above: usize::MAX,
        size: 0,
        seed: 0,
    };

    /// The sample a run over `units` units discovers on, if any.
    pub fn sample_for(&self, units: usize) -> Option<super::model::Sample> {
        (units > self.above).then_some(super::model::Sample {
            size: self.size,
            seed: self.seed,
        })
    }
}

/// Loads the last tree when current (same store sequence and model, no edit since); otherwise
/// builds it on the stored units of `docs` (made by [`super::run::ensure`] with a model) and
/// saves it — or, when a theme model was imported ([`MODEL_KEY`]), assigns the units with it
/// ([`assign_run`]); or, above `sampling.above` units, discovers on the sample and assigns
/// every unit with the model of that discovery ([`sampled_run`]); the units counted are the
/// store's current ones (`docs` are every verbatim of the workspace). `force` always rebuilds.
pub fn ensure(
    store: &mut Store,
    docs: &[Verbatim],
    head: &SentimentHead,
    force: bool,
    sampling: &Sampling,
    progress: &dyn crate::progress::Progress,
) -> Result<AspectRun, AspectError> {
    let model = imported_model(store)?;
    // Counted in SQL: a current tree is answered without reading a vector.
    let sample = sampling.sample_for(store.count_units()?);
    let key = match (&model, sample) {
        // The model's digest in the key: a later import (other labels, ids) is a new run.
        (Some(m), _) => format!("{};theme-model={}", run_key(store)?, m.digest()),
        (None, Some(s)) => format!("{};sample={}@{}", run_key(store)?, s.size, s.seed),
        (None, None) => run_key(store)?,
    };
    if !force && store.aspect_run_key()?.as_deref() == Some(key.as_str()) {
        return Ok(AspectRun {
            nodes: store.aspect_nodes()?,
            units: store.aspect_units()?,
            ran: false,
            rule: None,
        });
    }
    let n = docs.len() as u64;
    if n > 0 {
        progress.start("finding themes", n);
    }
    let mut steps = crate::progress::Steps::start();
    let ids: Vec<i64> = docs.iter().map(|d| d.doc).collect();
    let stored = store.units_of(&ids)?;
    steps.done(format_args!(
        "aspects: units read ({} verbatims)",
        stored.len()
    ));
    let run = match (&model, sample) {
        (Some(m), _) => assign_run(docs, &stored, m, head)?,
        (None, Some(s)) => {
            let fp = store.model_fingerprint()?.unwrap_or_default();
            sampled_run(docs, &stored, &store.aspect_nodes()?, head, &fp, s)?
        }
        (None, None) => build(docs, &stored, &store.aspect_nodes()?, head)?,
    };
    steps.done(format_args!(
        "aspects: tree built ({} units)",
        run.units.len()
    ));
    store.save_aspect_run(&run.nodes, &run.units, &key)?;
    steps.done(format_args!("aspects: tree saved"));
    store.set_meta(BAND_KEY, &head.neutral_band.to_string())?;
    if n > 0 {
        progress.advance(n);
        progress.finish();
    }
    Ok(run)
}

/// Follows merge links to the node that receives a merged node's units.
fn resolve(id: i64, by_id: &BTreeMap<i64, AspectNode>) -> i64 {
    let mut cur = id;
    for _ in 0..=by_id.len() {
        match by_id.get(&cur) {
            Some(n) if n.state == ThemeState::Merged => match n.merged_into {
                Some(next) => cur = next,
                None => return cur,
            },
            _ => return cur,
        }
    }
    cur
}

/// Greedy one-to-one matching of new centroids to previous nodes' (cosine ≥ MATCH_MIN).
fn match_ids(new: &[f32], dim: usize, prev: &[&AspectNode]) -> Vec<Option<i64>> {
    let k = new.len() / dim.max(1);
    let mut out = vec![None; k];
    let prev: Vec<&&AspectNode> = prev.iter().filter(|p| p.centroid.len() == dim).collect();
    if prev.is_empty() || k == 0 {
        return out;
    }
    let flat: Vec<f32> = prev
        .iter()
        .flat_map(|p| p.centroid.iter().copied())
        .collect();
    let sims = crate::vecmath::dot_matrix(new, &flat, dim);
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for j in 0..k {
        for p in 0..prev.len() {
            let s = sims[j * prev.len() + p];
            if s >= MATCH_MIN {
                pairs.push((s, j, p));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut used = vec![false; prev.len()];
    for (_, j, p) in pairs {
        if out[j].is_none() && !used[p] {
            out[j] = Some(prev[p].id);
            used[p] = true;
        }
    }
    out
}

/// Normalised mean of the rows of `x` in each of `k` groups.
fn means(x: &[f32], dim: usize, group: &[usize], k: usize) -> Vec<f32> {
    let mut c = vec![0f32; k * dim];
    for (i, &g) in group.iter().enumerate() {
        for (a, b) in c[g * dim..(g + 1) * dim]
            .iter_mut()
            .zip(&x[i * dim..(i + 1) * dim])
        {
            *a += b;
        }
    }
    for g in 0..k {
        crate::vecmath::l2_normalize(&mut c[g * dim..(g + 1) * dim]);
    }
    c
}

fn new_node(id: i64, is_parent: bool) -> AspectNode {
    AspectNode {
        id,
        is_parent,
        parent: None,
        user_parent: None,
        label: String::new(),
        user_label: None,
        centroid: Vec::new(),
        units: 0,
        verbatims: 0,
        merged_into: None,
        state: ThemeState::Active,
        seed: None,
    }
}

/// One tree run over the stored units of `docs` given the previous nodes: what [`ensure`]
/// saves. Public for the benches.
pub fn build(
    docs: &[Verbatim],
    stored: &HashMap<i64, Vec<crate::store::StoredUnit>>,
    previous: &[AspectNode],
    head: &SentimentHead,
) -> Result<AspectRun, AspectError> {
    // Units with a vector, in doc order.
    let mut rows: Vec<f32> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    let mut place: Vec<AspectUnit> = Vec::new();
    // Each placed unit's polarity, beside `place` (the labels read it).
    let mut polarity: Vec<crate::themes::Polarity> = Vec::new();
    let mut dim = 0;
    for (i, d) in docs.iter().enumerate() {
        for u in stored.get(&d.doc).map(|v| v.as_slice()).unwrap_or_default() {
            if u.vector.is_empty() || !span_fits(&d.text, u.start, u.end) {
                continue;
            }
            if dim == 0 {
                dim = u.vector.len();
            }
            if u.vector.len() != dim {
                continue;
            }
            let s = crate::sentiment::unit(head, &d.text[u.start..u.end], &u.vector);
            rows.extend_from_slice(&u.vector);
            owner.push(i);
            polarity.push(s.polarity);
            place.push(AspectUnit {
                doc: d.doc,
                idx: u.idx,
                start: u.start,
                end: u.end,
                child: None,
                parent: None,
                score: s.score,
            });
        }
    }
    let mut by_id: BTreeMap<i64, AspectNode> = previous.iter().map(|n| (n.id, n.clone())).collect();
    let mut next_id = by_id.keys().max().copied().unwrap_or(0) + 1;
    let mut child_parent_final: BTreeMap<i64, i64> = BTreeMap::new();
    let t = if place.is_empty() {
        None
    } else {
        let params = TreeParams::default();
        let texts: Vec<&str> = place
            .iter()
            .zip(&owner)
            .map(|(u, &i)| &docs[i].text[u.start..u.end])
            .collect();
        let x = tree::aspect_vectors(&rows, dim, Some(&owner), params.aspect_alpha);
        let french: Vec<bool> = owner.iter().map(|&i| docs[i].language == "fr").collect();
        let signs: Vec<i8> = polarity
            .iter()
            .map(|p| match p {
                Polarity::Negative => -1,
                Polarity::Positive => 1,
                Polarity::Neutral => 0,
            })
            .collect();
        let (t, a, parts) =
            super::anchor::build_with_rule(&x, dim, &owner, &texts, &french, &signs, &params)?;
        Some((t, x, a, parts))
    };
    let mut rule_parts = None;
    if let Some((t, x, a, parts)) = &t {
        // Parents: centroids over every unit of the parent (other included: the aspect is
        // what the units are about).
        let parent_of_unit: Vec<usize> = t
            .unit_child
            .iter()
            .enumerate()
            .map(|(i, c)| match c {
                Some(c) => t.child_parent[*c],
                None => nearest_parent(t, &x[i * dim..(i + 1) * dim], dim),
            })
            .collect();
        let pc = means(x, dim, &parent_of_unit, t.parents);
        let prev_parents: Vec<&AspectNode> = previous.iter().filter(|n| n.is_parent).collect();
        let pm = match_ids(&pc, dim, &prev_parents);
        let mut unmatched: Vec<usize> = (0..t.parents).filter(|&j| pm[j].is_none()).collect();
        let mut psize = vec![0usize; t.parents];
        for &p in &parent_of_unit {
            psize[p] += 1;
        }
        unmatched.sort_by_key(|&j| (usize::MAX - psize[j], j));
        let mut pid = pm.clone();
        for j in unmatched {
            pid[j] = Some(next_id);
            by_id.insert(next_id, new_node(next_id, true));
            next_id += 1;
        }
        for (j, id) in pid.iter().enumerate() {
            let n = by_id
                .get_mut(&id.expect("every parent has an id"))
                .expect("node");
            n.centroid = pc[j * dim..(j + 1) * dim].to_vec();
        }
        let final_parent_of: Vec<i64> = pid
            .iter()
            .map(|id| resolve(id.expect("id"), &by_id))
            .collect();

        // Children.
        let kc = t.children();
        let cc = &t.child_centroids;
        // A seeded child keeps its own centroid (the examples', in the model's space): it is
        // never matched to a discovered cluster.
        let prev_children: Vec<&AspectNode> = previous
            .iter()
            .filter(|n| !n.is_parent && n.seed.is_none())
            .collect();
        let cm = match_ids(cc, dim, &prev_children);
        let mut csize = vec![0usize; kc];
        for c in t.unit_child.iter().flatten() {
            csize[*c] += 1;
        }
        let mut unmatched: Vec<usize> = (0..kc).filter(|&j| cm[j].is_none()).collect();
        unmatched.sort_by_key(|&j| (usize::MAX - csize[j], j));
        let mut cid = cm.clone();
        for j in unmatched {
            cid[j] = Some(next_id);
            by_id.insert(next_id, new_node(next_id, false));
            next_id += 1;
        }
        for (j, id) in cid.iter().enumerate() {
            let n = by_id
                .get_mut(&id.expect("every child has an id"))
                .expect("node");
            n.centroid = cc[j * dim..(j + 1) * dim].to_vec();
        }
        let final_child_of: Vec<i64> = cid
            .iter()
            .map(|id| resolve(id.expect("id"), &by_id))
            .collect();
        // A child's parent: the user's move wins, else the tree's (merges followed).
        for (j, &c) in final_child_of.iter().enumerate() {
            let computed = final_parent_of[t.child_parent[j]];
            let node = &by_id[&c];
            let p = node
                .user_parent
                .map(|p| resolve(p, &by_id))
                .filter(|p| {
                    by_id
                        .get(p)
                        .is_some_and(|n| n.is_parent && n.state != ThemeState::Vanished)
                })
                .unwrap_or(computed);
            // The node that keeps its own id decides; a merged-in cluster follows its target.
            if cid[j] == Some(c) || !child_parent_final.contains_key(&c) {
                child_parent_final.insert(c, p);
            }
        }
        for (u, c) in place.iter_mut().zip(&t.unit_child) {
            if let Some(c) = c {
                let child = final_child_of[*c];
                u.child = Some(child);
                u.parent = child_parent_final.get(&child).copied();
            }
        }
        let nearest: Vec<i64> = parent_of_unit.iter().map(|&p| final_parent_of[p]).collect();
        let absorbed = apply_seeds(
            &rows,
            dim,
            &mut place,
            &nearest,
            &by_id,
            &mut child_parent_final,
        );
        // The node each tree child became, for a theme model: merges followed, a child a seed
        // absorbed is the seed.
        let node_of: Vec<i64> = final_child_of
            .iter()
            .map(|c| absorbed.get(c).copied().unwrap_or(*c))
            .collect();
        rule_parts = Some((t, a, parts, node_of));
    }

    // Sizes (units and distinct verbatims) and labels.
    let (unit_count, doc_sets) = node_sizes(&place);
    let live: Vec<i64> = unit_count.keys().copied().collect();
    let doc_of: HashMap<i64, &Verbatim> = docs.iter().map(|d| (d.doc, d)).collect();
    let labels = node_labels(
        &live,
        &by_id,
        &child_parent_final,
        &place,
        &polarity,
        &doc_of,
    );
    for n in by_id.values_mut() {
        if n.state == ThemeState::Merged {
            n.units = 0;
            n.verbatims = 0;
            continue;
        }
        let units = unit_count.get(&n.id).copied().unwrap_or(0);
        n.units = units;
        n.verbatims = doc_sets.get(&n.id).map_or(0, |s| s.len() as i64);
        if units > 0 || (n.seed.is_some() && n.state == ThemeState::Active) {
            n.state = ThemeState::Active;
            if let Some(l) = labels.get(&n.id) {
                n.label = l.clone();
            }
            if !n.is_parent {
                n.parent = child_parent_final.get(&n.id).copied();
            }
        } else {
            n.state = ThemeState::Vanished;
        }
    }
    // The model rule names only nodes that stay active.
    let rule = rule_parts.map(|(t, a, parts, node_of)| {
        let node_of: Vec<Option<i64>> = node_of
            .iter()
            .map(|c| {
                Some(*c).filter(|c| {
                    by_id
                        .get(c)
                        .is_some_and(|n| n.state == ThemeState::Active && !n.is_parent)
                })
            })
            .collect();
        super::model::rule_of(t, &a.rule, parts, &node_of, dim)
    });
    Ok(AspectRun {
        nodes: by_id.into_values().collect(),
        units: place,
        ran: true,
        rule,
    })
}

/// Discovers the tree on `docs` — or on the uniform `sample` of them ([`super::model::sample`]
/// over their ids) — as a run would (ids matched to `previous`, user edits applied), and makes
/// its theme model. Nothing is stored: the caller writes the file. `fingerprint`: the
/// embedding model's. Fails when there is no unit to discover on.
pub fn discover_model(
    docs: &[Verbatim],
    stored: &HashMap<i64, Vec<crate::store::StoredUnit>>,
    previous: &[AspectNode],
    head: &SentimentHead,
    fingerprint: &str,
    sample: Option<super::model::Sample>,
) -> Result<(super::model::ThemeModel, AspectRun), AspectError> {
    let chosen: Vec<Verbatim> = match sample {
        Some(s) => {
            let keep = super::model::sample(docs.iter().map(|d| d.id.as_str()), s.size, s.seed);
            docs.iter()
                .filter(|d| keep.contains(d.id.as_str()))
                .cloned()
                .collect()
        }
        None => docs.to_vec(),
    };
    let run = build(&chosen, stored, previous, head)?;
    let Some(rule) = run.rule.clone() else {
        return Err(AspectError::Model(format!(
            "no opinion units to discover a tree on ({} verbatims{})",
            chosen.len(),
            if sample.is_some() {
                " in the sample"
            } else {
                ""
            }
        )));
    };
    let dim = rule.children.first().map_or(0, |c| c.centroid.0.len());
    let model = super::model::ThemeModel {
        format: super::model::FORMAT.into(),
        version: super::model::VERSION,
        model: fingerprint.to_string(),
        tree_version: tree::VERSION,
        units_input: super::units::UNIT_INPUT.into(),
        dim,
        alpha: TreeParams::default().aspect_alpha,
        discovered_on: super::model::DiscoveredOn {
            verbatims: run
                .units
                .iter()
                .map(|u| u.doc)
                .collect::<BTreeSet<_>>()
                .len(),
            units: run.units.len(),
            sample,
        },
        nodes: super::model::model_nodes(&run.nodes),
        rule,
    };
    Ok((model, run))
}

/// A run that discovers its tree on the uniform `sample` of `docs` and places every unit with
/// that discovery's model: the placement `themes export-model --sample` + `themes import`
/// gives, with the nodes of the discovery (merges, seeds and vanished ids kept for the next
/// run) counted over every unit.
pub fn sampled_run(
    docs: &[Verbatim],
    stored: &HashMap<i64, Vec<crate::store::StoredUnit>>,
    previous: &[AspectNode],
    head: &SentimentHead,
    fingerprint: &str,
    sample: super::model::Sample,
) -> Result<AspectRun, AspectError> {
    let mut steps = crate::progress::Steps::start();
    let (model, found) = discover_model(docs, stored, previous, head, fingerprint, Some(sample))?;
    steps.done(format_args!(
        "aspects: discovered on the sample ({} units)",
        found.units.len()
    ));
    let placed = assign_run(docs, stored, &model, head)?;
    steps.done(format_args!(
        "aspects: every unit placed ({} units)",
        placed.units.len()
    ));
    let (unit_count, doc_sets) = node_sizes(&placed.units);
    let nodes = found
        .nodes
        .into_iter()
        .map(|mut n| {
            if n.state == ThemeState::Active {
                n.units = unit_count.get(&n.id).copied().unwrap_or(0);
                n.verbatims = doc_sets.get(&n.id).map_or(0, |s| s.len() as i64);
                if n.units == 0 && n.seed.is_none() {
                    n.state = ThemeState::Vanished;
                }
            }
            n
        })
        .collect();
    Ok(AspectRun {
        nodes,
        units: placed.units,
        ran: true,
        rule: found.rule,
    })
}

/// The tree of a theme model over the stored units of `docs`: every unit placed by the model's
/// rule ([`super::model::Assigner`]), the nodes the model's (ids, labels, centroids), their
/// sizes counted here. A node with no unit here is kept, vanished, so its id and label stay
/// known. Fails when the model was made with another embedding model or unit rule.
pub fn assign_run(
    docs: &[Verbatim],
    stored: &HashMap<i64, Vec<crate::store::StoredUnit>>,
    model: &super::model::ThemeModel,
    head: &SentimentHead,
) -> Result<AspectRun, AspectError> {
    if model.units_input != super::units::UNIT_INPUT {
        return Err(AspectError::Model(format!(
            "the theme model cut its units by rule {:?}, this verbatim by {:?}: export it again with this version",
            model.units_input,
            super::units::UNIT_INPUT
        )));
    }
    let assigner = model
        .assigner("the theme model")
        .map_err(|e| AspectError::Model(e.to_string()))?;
    // Each verbatim's units are placed on their own: the verbatims are shared among the
    // cores (in order: the placements come back in doc order), one reader per share.
    use rayon::prelude::*;
    let share = docs
        .len()
        .div_ceil(rayon::current_num_threads() * 8)
        .max(256);
    let place: Vec<AspectUnit> = docs
        .par_chunks(share)
        .map_init(super::label::OpinionReader::default, |reader, part| {
            let mut out = Vec::new();
            for d in part {
                let units = stored.get(&d.doc).map(|v| v.as_slice()).unwrap_or_default();
                out.extend(place_units(
                    &assigner,
                    reader,
                    head,
                    d.doc,
                    &d.text,
                    &d.language,
                    units,
                ));
            }
            out
        })
        .collect::<Vec<_>>()
        .concat();
    let (unit_count, doc_sets) = node_sizes(&place);
    let nodes = model
        .nodes
        .iter()
        .map(|m| {
            let units = unit_count.get(&m.id).copied().unwrap_or(0);
            AspectNode {
                parent: m.parent,
                label: m.label.clone(),
                user_label: m.user_label.clone(),
                centroid: m.centroid.0.clone(),
                units,
                verbatims: doc_sets.get(&m.id).map_or(0, |s| s.len() as i64),
                state: if units > 0 {
                    ThemeState::Active
                } else {
                    ThemeState::Vanished
                },
                ..new_node(m.id, m.is_parent)
            }
        })
        .collect();
    Ok(AspectRun {
        nodes,
        units: place,
        ran: true,
        rule: None,
    })
}

/// The units of one verbatim (`doc`, its redacted `text` and `language`) placed by a theme
/// model's rule: each unit's sentiment read ([`crate::sentiment::unit`]), then its child and
/// parent. Units without a vector or whose span no longer cuts the text are left out. What
/// `themes import` does per verbatim in a workspace and `verbatim assign` per row on a machine
/// without one.
pub fn place_units(
    assigner: &super::model::Assigner<'_>,
    reader: &mut super::label::OpinionReader,
    head: &SentimentHead,
    doc: i64,
    text: &str,
    language: &str,
    units: &[crate::store::StoredUnit],
) -> Vec<AspectUnit> {
    let units: Vec<&crate::store::StoredUnit> = units
        .iter()
        .filter(|u| !u.vector.is_empty() && span_fits(text, u.start, u.end))
        .collect();
    let scores: Vec<crate::sentiment::UnitSentiment> = units
        .iter()
        .map(|u| crate::sentiment::unit(head, &text[u.start..u.end], &u.vector))
        .collect();
    let input: Vec<super::model::UnitInput<'_>> = units
        .iter()
        .zip(&scores)
        .map(|(u, s)| super::model::UnitInput {
            text: &text[u.start..u.end],
            vector: &u.vector,
            french: language == "fr",
            class: match s.polarity {
                Polarity::Negative => -1,
                Polarity::Positive => 1,
                Polarity::Neutral => 0,
            },
        })
        .collect();
    units
        .iter()
        .zip(&scores)
        .zip(assigner.assign(&input, reader))
        .map(|((u, s), child)| AspectUnit {
            doc,
            idx: u.idx,
            start: u.start,
            end: u.end,
            child,
            parent: child.and_then(|c| assigner.parent(c)),
            score: s.score,
        })
        .collect()
}

/// A unit's span still cuts its verbatim's text (the text may have changed since the units were
/// made).
fn span_fits(text: &str, start: usize, end: usize) -> bool {
    start <= end && end <= text.len() && text.is_char_boundary(start) && text.is_char_boundary(end)
}

/// What an erasure does to the stored tree ([`without_erased`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TreeErasure {
    /// The store's part: the nodes rewritten and the children folded (the run key is the
    /// caller's to set, it knows the sequence the erasure ends at).
    pub patch: crate::store::AspectPatch,
    /// Automatic labels the erasure replaced or took away: a report showing one may show words
    /// only the erased verbatims used.
    pub stale_labels: Vec<String>,
}

/// The stored tree (`nodes`, `units`) without the units of the `erased` verbatims (store doc
/// numbers), as a run would leave it on the units that remain — GDPR erasure reaches every
/// derived artefact, and a node's label is drawn from its units' words:
///
/// * every node loses the erased units; its counts (units, distinct verbatims) follow;
/// * a child that held at least the run's minimum ([`TreeParams::child_min`] × the verbatims, at least
///   [`tree::MIN_SPLIT`] / 5 units, as [`tree::build`] cuts) and falls under it is folded, as the
///   run folds a branch that small: its units join the sibling whose centroid is nearest to its
///   own, and it vanishes (a seeded or renamed child is the user's and stays);
/// * a node left with no unit vanishes (a seeded child stays, as in a run); its id is never
///   reused, and its automatic label and centroid, made of erased units only, are cleared (so
///   no later run matches it);
/// * labels come from [`node_labels`], the run's labeller, over the remaining units (scores
///   classed under `neutral_band`, the band the run used): every node is relabelled, so labels
///   stay unique across the tree; user labels, seeds, parents and moves are kept (centroids of
///   surviving nodes too: [`recentre_children`] recentres those that lost units, on their vectors).
///
/// `docs` are the verbatims of the remaining units (their text is what is labelled). Node ids
/// do not change. Nothing to do (no erased unit) gives an empty [`TreeErasure`].
pub fn without_erased(
    nodes: &[AspectNode],
    units: &[AspectUnit],
    erased: &HashSet<i64>,
    docs: &[Verbatim],
    neutral_band: f32,
) -> TreeErasure {
    if !units.iter().any(|u| erased.contains(&u.doc)) {
        return TreeErasure::default();
    }
    let by_id: BTreeMap<i64, AspectNode> = nodes.iter().map(|n| (n.id, n.clone())).collect();
    let affected: BTreeSet<i64> = units
        .iter()
        .filter(|u| erased.contains(&u.doc))
        .flat_map(|u| [u.child, u.parent])
        .flatten()
        .collect();
    let before = node_sizes(units).0;
    let mut place: Vec<AspectUnit> = units
        .iter()
        .filter(|u| !erased.contains(&u.doc))
        .copied()
        .collect();
    let folded = fold_small_children(&mut place, &by_id, &affected, &before);
    let (unit_count, doc_sets) = node_sizes(&place);

    // Labels, on the units whose span still cuts their text (as a run reads them).
    let doc_of: HashMap<i64, &Verbatim> = docs.iter().map(|d| (d.doc, d)).collect();
    let labelled: Vec<AspectUnit> = place
        .iter()
        .filter(|u| {
            doc_of
                .get(&u.doc)
                .is_some_and(|d| span_fits(&d.text, u.start, u.end))
        })
        .copied()
        .collect();
    let polarity: Vec<Polarity> = labelled
        .iter()
        .map(|u| crate::sentiment::band_polarity(u.score, neutral_band))
        .collect();
    let live: Vec<i64> = node_sizes(&labelled).0.keys().copied().collect();
    let child_parent: BTreeMap<i64, i64> = by_id
        .values()
        .filter(|n| !n.is_parent && n.state == ThemeState::Active)
        .filter_map(|n| Some((n.id, n.parent?)))
        .collect();
    let labels = node_labels(&live, &by_id, &child_parent, &labelled, &polarity, &doc_of);

    let mut out = TreeErasure {
        patch: crate::store::AspectPatch {
            folded,
            ..Default::default()
        },
        stale_labels: Vec::new(),
    };
    for n in by_id.values().filter(|n| n.state != ThemeState::Merged) {
        let mut m = n.clone();
        m.units = unit_count.get(&n.id).copied().unwrap_or(0);
        m.verbatims = doc_sets.get(&n.id).map_or(0, |s| s.len() as i64);
        if m.units > 0 || (n.seed.is_some() && n.state == ThemeState::Active) {
            m.state = ThemeState::Active;
            if let Some(l) = labels.get(&n.id) {
                m.label = l.clone();
            }
        } else {
            m.state = ThemeState::Vanished;
            if n.state != ThemeState::Vanished {
                // Emptied by the erasure: its label and centroid came from erased units only.
                m.label.clear();
                m.centroid.clear();
            }
        }
        if m == *n {
            continue;
        }
        let gone = m.state == ThemeState::Vanished && n.state != ThemeState::Vanished;
        if !n.label.is_empty() && (m.label != n.label || gone) {
            out.stale_labels.push(n.label.clone());
        }
        out.patch.nodes.push(m);
    }
    out
}

/// Recentres the children of `out.patch` that lost units of the `erased` verbatims (`units`:
/// the stored places, erased ones included) on the units they keep: the normalised mean of
/// those units' vectors in the tree's space ([`tree::aspect_vectors`], grouped by verbatim as a
/// run groups them), so no erased vector stays inside a centroid. `load` reads the unit vectors
/// of the verbatims it is given (theirs). A folded child or one that took a fold, and a child whose unit
/// vectors are not all in `stored`, keeps its centroid (parents do too: a run's parent centroid
/// also counts the "other" units nearest to it, which the stored places do not name).
pub fn recentre_children<E>(
    out: &mut TreeErasure,
    units: &[AspectUnit],
    erased: &HashSet<i64>,
    load: impl FnOnce(&[i64]) -> Result<HashMap<i64, Vec<crate::store::StoredUnit>>, E>,
) -> Result<(), E> {
    let lost: BTreeSet<i64> = units
        .iter()
        .filter(|u| erased.contains(&u.doc))
        .filter_map(|u| u.child)
        .collect();
    let remaining: Vec<AspectUnit> = units
        .iter()
        .filter(|u| !erased.contains(&u.doc))
        .copied()
        .collect();
    let folds: BTreeSet<i64> = out.patch.folded.iter().flat_map(|&(a, b)| [a, b]).collect();
    let targets: BTreeSet<i64> = out
        .patch
        .nodes
        .iter()
        .filter(|n| !n.is_parent && n.state == ThemeState::Active && n.units > 0)
        .map(|n| n.id)
        .filter(|id| lost.contains(id) && !folds.contains(id))
        .collect();
    let docs: BTreeSet<i64> = remaining
        .iter()
        .filter(|u| u.child.is_some_and(|c| targets.contains(&c)))
        .map(|u| u.doc)
        .collect();
    if docs.is_empty() {
        return Ok(());
    }
    let stored = load(&docs.iter().copied().collect::<Vec<_>>())?;
    let (mut rows, mut owner, mut row_of) = (Vec::new(), Vec::new(), HashMap::new());
    let mut dim = 0;
    for (i, doc) in docs.iter().enumerate() {
        for u in stored.get(doc).map(Vec::as_slice).unwrap_or_default() {
            if dim == 0 {
                dim = u.vector.len();
            }
            if u.vector.is_empty() || u.vector.len() != dim {
                continue;
            }
            row_of.insert((*doc, u.idx), owner.len());
            rows.extend_from_slice(&u.vector);
            owner.push(i);
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let x = tree::aspect_vectors(&rows, dim, Some(&owner), TreeParams::default().aspect_alpha);
    for n in out.patch.nodes.iter_mut() {
        if !targets.contains(&n.id) || n.centroid.len() != dim {
            continue;
        }
        let mut c = vec![0f32; dim];
        let mut whole = true;
        for u in remaining.iter().filter(|u| u.child == Some(n.id)) {
            match row_of.get(&(u.doc, u.idx)) {
                Some(&r) => {
                    for (a, b) in c.iter_mut().zip(&x[r * dim..(r + 1) * dim]) {
                        *a += b;
                    }
                }
                None => whole = false,
            }
        }
        if whole {
            crate::vecmath::l2_normalize(&mut c);
            n.centroid = c;
        }
    }
    Ok(())
}

/// The lower-cased words (runs of letters and digits, three characters or more) of `text`: what
/// [`clear_erased_words`] compares.
pub fn label_words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
}

/// Clears the automatic label of every node that is not active after the erasure (vanished in
/// an earlier run, merged) and uses one of `erased_only` — words only the erased verbatims used
/// ([`label_words`]). Such a node's members went with the run that had them, so [`without_erased`]
/// cannot see that the erased units were among them; its label can still carry their words.
/// Active nodes were relabelled from the remaining units. The cleared labels join `stale_labels`.
pub fn clear_erased_words(
    out: &mut TreeErasure,
    nodes: &[AspectNode],
    erased_only: &HashSet<String>,
) {
    if erased_only.is_empty() {
        return;
    }
    let patched: HashSet<i64> = out.patch.nodes.iter().map(|n| n.id).collect();
    let shows = |label: &str| label_words(label).any(|w| erased_only.contains(&w));
    for n in out.patch.nodes.iter_mut() {
        if n.state != ThemeState::Active && shows(&n.label) {
            out.stale_labels.push(std::mem::take(&mut n.label));
        }
    }
    for n in nodes {
        if !patched.contains(&n.id) && n.state != ThemeState::Active && shows(&n.label) {
            out.stale_labels.push(n.label.clone());
            out.patch.nodes.push(AspectNode {
                label: String::new(),
                ..n.clone()
            });
        }
    }
}

/// The folding rule of [`without_erased`]: children among `affected` that held at least the
/// run's minimum size (`before`: units per node) and hold fewer now join their nearest sibling
/// (centroid cosine; ties to the lower id). Returns (folded child, sibling) pairs, in id order.
fn fold_small_children(
    place: &mut [AspectUnit],
    by_id: &BTreeMap<i64, AspectNode>,
    affected: &BTreeSet<i64>,
    before: &BTreeMap<i64, i64>,
) -> Vec<(i64, i64)> {
    let verbatims = place.iter().map(|u| u.doc).collect::<BTreeSet<_>>().len() as f64;
    let min = (TreeParams::default().child_min * verbatims).max(tree::MIN_SPLIT as f64 / 5.0);
    let mut count = node_sizes(place).0;
    let mut folded = Vec::new();
    for &c in affected {
        let Some(n) = by_id.get(&c) else { continue };
        if n.is_parent
            || n.state != ThemeState::Active
            || n.seed.is_some()
            || n.user_label.is_some()
        {
            continue;
        }
        let was = before.get(&c).copied().unwrap_or(0) as f64;
        let left = count.get(&c).copied().unwrap_or(0);
        if left == 0 || left as f64 >= min || was < min {
            continue;
        }
        let near = |s: &AspectNode| crate::vecmath::dot(&s.centroid, &n.centroid);
        let sibling = by_id
            .values()
            .filter(|s| {
                !s.is_parent
                    && s.id != c
                    && s.state == ThemeState::Active
                    && s.parent == n.parent
                    && s.centroid.len() == n.centroid.len()
                    && count.get(&s.id).is_some_and(|&k| k > 0)
            })
            .max_by(|a, b| near(a).total_cmp(&near(b)).then(b.id.cmp(&a.id)));
        let Some(s) = sibling else { continue };
        for u in place.iter_mut().filter(|u| u.child == Some(c)) {
            u.child = Some(s.id);
        }
        *count.entry(s.id).or_default() += left;
        count.remove(&c);
        folded.push((c, s.id));
    }
    folded
}

/// Units and distinct verbatims of each node (child and parent) with a unit in `place`.
fn node_sizes(place: &[AspectUnit]) -> (BTreeMap<i64, i64>, BTreeMap<i64, BTreeSet<i64>>) {
    let mut unit_count: BTreeMap<i64, i64> = BTreeMap::new();
    let mut doc_sets: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for u in place {
        for id in [u.child, u.parent].into_iter().flatten() {
            *unit_count.entry(id).or_default() += 1;
            doc_sets.entry(id).or_default().insert(u.doc);
        }
    }
    (unit_count, doc_sets)
}

/// The automatic label of each `live` node, from the text of the units `place` puts in it: the
/// tree's own labels ([`tree_labels`]: aspect nouns for parents, issue phrases that agree with
/// the child's sentiment for children, none used twice), else the c-TF-IDF keyphrase of its
/// level (a parent whose units all sit in "other"). One labeller for a run and for an erasure
/// ([`without_erased`]), so a node relabelled after an erasure reads as a run would label it.
fn node_labels(
    live: &[i64],
    by_id: &BTreeMap<i64, AspectNode>,
    child_parent: &BTreeMap<i64, i64>,
    place: &[AspectUnit],
    polarity: &[Polarity],
    doc_of: &HashMap<i64, &Verbatim>,
) -> HashMap<i64, String> {
    let mut phraser = Phraser::default();
    let mut vocab = Vocab::default();
    let phrases: Vec<_> = place
        .iter()
        .map(|u| {
            let d = doc_of[&u.doc];
            phraser.phrases(&d.text[u.start..u.end], &d.language, &mut vocab)
        })
        .collect();
    let mut labels: HashMap<i64, String> = HashMap::new();
    for level_parent in [true, false] {
        let ids: Vec<i64> = live
            .iter()
            .copied()
            .filter(|id| by_id.get(id).is_some_and(|n| n.is_parent == level_parent))
            .collect();
        let local: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let theme: Vec<Option<usize>> = place
            .iter()
            .map(|u| {
                let id = if level_parent { u.parent } else { u.child };
                id.and_then(|id| local.get(&id).copied())
            })
            .collect();
        for (id, l) in ids
            .iter()
            .zip(label_themes(&phrases, &theme, ids.len(), &vocab))
        {
            labels.insert(*id, l.label);
        }
    }
    for (id, l) in tree_labels(live, by_id, child_parent, place, polarity, doc_of) {
        if !l.is_empty() {
            labels.insert(id, l);
        }
    }
    labels
}

/// Seeded children ([`AspectNode::seed`]) as fixed centroids, the way seeded topic themes are:
/// a discovered child whose centroid is at cosine ≥ [`MATCH_MIN`] of a seed's *is* that seed
/// (its units all go to it: the data already had the child the user asked for); any other unit
/// joins the seed nearest to it when that seed is nearer (cosine, in the model's space) than the
/// centroid of the child the tree gave it — or, for a unit in "other", than every child's. The seed's parent is the user's (`themes move`), else the parent most of its units
/// came from (`nearest` is each unit's parent, "other" units counted in their nearest), else
/// the one it had. So a seed phrase becomes a child under the aspect its units fall in; it never
/// makes a parent of its own (a parent is an aspect the data shows; `themes move` places a seed
/// elsewhere).
fn apply_seeds(
    rows: &[f32],
    dim: usize,
    place: &mut [AspectUnit],
    nearest: &[i64],
    by_id: &BTreeMap<i64, AspectNode>,
    child_parent: &mut BTreeMap<i64, i64>,
) -> BTreeMap<i64, i64> {
    let seeds: Vec<&AspectNode> = by_id
        .values()
        .filter(|n| {
            !n.is_parent
                && n.seed.is_some()
                && n.state == ThemeState::Active
                && n.centroid.len() == dim
        })
        .collect();
    if seeds.is_empty() || dim == 0 {
        return BTreeMap::new();
    }
    // Each discovered child's centroid in the model's space (the units' own vectors).
    let mut sums: BTreeMap<i64, Vec<f32>> = BTreeMap::new();
    for (i, u) in place.iter().enumerate() {
        if let Some(c) = u.child {
            let s = sums.entry(c).or_insert_with(|| vec![0.0; dim]);
            for (a, b) in s.iter_mut().zip(&rows[i * dim..(i + 1) * dim]) {
                *a += b;
            }
        }
    }
    for v in sums.values_mut() {
        crate::vecmath::l2_normalize(v);
    }
    // A discovered child that says what a seed says (centroids at cosine ≥ MATCH_MIN) is the
    // seed: all its units go to it (best pairs first, one child per seed).
    let mut pairs: Vec<(f32, i64, i64)> = Vec::new();
    for s in &seeds {
        for (&c, v) in &sums {
            let sim = crate::vecmath::dot(&s.centroid, v);
            if sim >= MATCH_MIN {
                pairs.push((sim, s.id, c));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut absorbed: BTreeMap<i64, i64> = BTreeMap::new(); // discovered child → seed
    let mut taken: BTreeSet<i64> = BTreeSet::new();
    for (_, s, c) in pairs {
        if !absorbed.contains_key(&c) && taken.insert(s) {
            absorbed.insert(c, s);
        }
    }
    let mut votes: BTreeMap<i64, BTreeMap<i64, usize>> = BTreeMap::new();
    for (i, u) in place.iter_mut().enumerate() {
        if let Some(&s) = u.child.and_then(|c| absorbed.get(&c)) {
            *votes.entry(s).or_default().entry(nearest[i]).or_default() += 1;
            u.child = Some(s);
            continue;
        }
        let row = &rows[i * dim..(i + 1) * dim];
        let (best, sim) = seeds
            .iter()
            .map(|s| (s.id, crate::vecmath::dot(row, &s.centroid)))
            .fold((0, f32::MIN), |b, x| if x.1 > b.1 { x } else { b });
        let own = match u.child {
            Some(c) => sums
                .get(&c)
                .map_or(f32::MIN, |v| crate::vecmath::dot(row, v)),
            None => sums
                .values()
                .map(|v| crate::vecmath::dot(row, v))
                .fold(f32::MIN, f32::max),
        };
        if sim > own {
            *votes
                .entry(best)
                .or_default()
                .entry(nearest[i])
                .or_default() += 1;
            u.child = Some(best);
        }
    }
    for s in seeds {
        let live_parent = |p: &i64| {
            by_id
                .get(p)
                .is_some_and(|n| n.is_parent && n.state != ThemeState::Vanished)
        };
        let voted = votes.get(&s.id).and_then(|v| {
            v.iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(p, _)| *p)
        });
        let p = s
            .user_parent
            .map(|p| resolve(p, by_id))
            .filter(live_parent)
            .or(voted)
            .or(s.parent.map(|p| resolve(p, by_id)).filter(live_parent));
        if let Some(p) = p {
            child_parent.insert(s.id, p);
        }
    }
    for u in place.iter_mut() {
        if let Some(c) = u
            .child
            .filter(|c| by_id.get(c).is_some_and(|n| n.seed.is_some()))
        {
            u.parent = child_parent.get(&c).copied();
        }
    }
    absorbed
}

/// Labels of the live nodes by [`super::label::label_tree`]: parents in id order, each with its
/// live children (their final parent) and the units placed in them.
fn tree_labels(
    live: &[i64],
    by_id: &BTreeMap<i64, AspectNode>,
    child_parent: &BTreeMap<i64, i64>,
    place: &[AspectUnit],
    polarity: &[crate::themes::Polarity],
    doc_of: &HashMap<i64, &Verbatim>,
) -> HashMap<i64, String> {
    use super::label::{label_tree, UnitText};
    let parents: Vec<i64> = live
        .iter()
        .copied()
        .filter(|id| by_id.get(id).is_some_and(|n| n.is_parent))
        .collect();
    let pidx: HashMap<i64, usize> = parents.iter().enumerate().map(|(i, &p)| (p, i)).collect();
    let mut kids: Vec<Vec<i64>> = vec![Vec::new(); parents.len()];
    let mut cidx: HashMap<i64, (usize, usize)> = HashMap::new();
    for &id in live {
        if by_id.get(&id).is_some_and(|n| !n.is_parent) {
            if let Some(&pi) = child_parent.get(&id).and_then(|p| pidx.get(p)) {
                cidx.insert(id, (pi, kids[pi].len()));
                kids[pi].push(id);
            }
        }
    }
    let mut input: Vec<Vec<Vec<UnitText<'_>>>> =
        kids.iter().map(|k| vec![Vec::new(); k.len()]).collect();
    for (u, pol) in place.iter().zip(polarity) {
        if let Some(&(pi, ci)) = u.child.and_then(|c| cidx.get(&c)) {
            let d = doc_of[&u.doc];
            input[pi][ci].push(UnitText {
                text: &d.text[u.start..u.end],
                language: &d.language,
                polarity: *pol,
            });
        }
    }
    let out = label_tree(&input);
    let mut labels = HashMap::new();
    for (pi, p) in parents.iter().enumerate() {
        if let Some(l) = out.parents.get(pi) {
            labels.insert(*p, l.label.clone());
        }
        for (ci, c) in kids[pi].iter().enumerate() {
            if let Some(l) = out.children.get(pi).and_then(|v| v.get(ci)) {
                labels.insert(*c, l.label.clone());
            }
        }
    }
    labels
}

/// The parent whose children's centroids are nearest to `v` (for units in "other").
fn nearest_parent(t: &tree::Tree, v: &[f32], dim: usize) -> usize {
    let mut best = (f32::MIN, 0);
    for (c, &p) in t.child_parent.iter().enumerate() {
        let s = crate::vecmath::dot(v, &t.child_centroids[c * dim..(c + 1) * dim]);
        if s > best.0 {
            best = (s, p);
        }
    }
    best.1
}

/// One node as shown: sizes count verbatims (a verbatim is in every node one of its units is
/// in), the share is of the verbatims in scope.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct NodeSummary {
    /// `P<n>` or `C<n>`.
    pub id: String,
    /// `parent` or `child`.
    pub level: &'static str,
    /// A child's parent (`P<n>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Label (the user's if any).
    pub label: String,
    /// Verbatims with at least one unit in the node (in scope).
    pub verbatims: usize,
    /// Units in the node (in scope).
    pub units: usize,
    /// `verbatims` over the verbatims in scope ("% of verbatims").
    pub share_of_verbatims: f64,
    /// Share of the node's verbatims whose units in it read negative.
    pub negative: f64,
    /// Direction of the node's share of verbatims per period, by the one rule of
    /// [`crate::themes::analytics::trend_direction`] ("rising", "falling", "flat"; `-` when
    /// dates are missing or too few periods).
    pub trend: String,
    /// The node's effect on the mean score, in words ("−0.42 points of mean score (1–5)"), when
    /// there is a score and the effect is larger than its uncertainty
    /// ([`super::priority::significant`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// Children (for a parent).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub children: Vec<NodeSummary>,
}

/// The tree as shown: what to fix first, then parents (largest first) with their children.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TreeSummary {
    /// What to fix first: the children ranked by [`super::priority::priorities`] (volume ×
    /// negativity × (1 + score drag)), each with its parent.
    pub priorities: Vec<Priority>,
    /// The priority formula and who is listed, as printed under the list.
    pub formula: &'static str,
    /// Verbatims in scope (the denominator of every share).
    pub verbatims: usize,
    /// Verbatims in scope with no unit in any node.
    pub other: usize,
    /// What the shares count.
    pub share_of: &'static str,
    /// Parents with their children.
    pub parents: Vec<NodeSummary>,
    /// Set when the tree was discovered on a uniform sample and every unit assigned by its rule
    /// (the workspace's `[themes] sample_above_units`); absent when discovered on every unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovered_on: Option<TreeSample>,
}

/// The sample a stored tree was discovered on ([`Sampling`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TreeSample {
    /// The sample: verbatims asked for and the key of the hash.
    pub sample: SampleShown,
}

/// A sample as shown: `size` verbatims of smallest keyed rank under `seed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SampleShown {
    /// Verbatims asked for.
    pub size: usize,
    /// Key of the hash.
    pub seed: u64,
}

/// The sample the stored tree was discovered on, read from its run key ([`ensure`]); `None`
/// when it was discovered on every unit or assigned from an imported model.
pub fn stored_sample(store: &Store) -> Result<Option<TreeSample>, StoreError> {
    let key = store.aspect_run_key()?.unwrap_or_default();
    Ok(key
        .split(';')
        .find_map(|part| part.strip_prefix("sample="))
        .and_then(|v| v.split_once('@'))
        .and_then(|(size, seed)| {
            Some(TreeSample {
                sample: SampleShown {
                    size: size.parse().ok()?,
                    seed: seed.parse().ok()?,
                },
            })
        }))
}

/// What the tree's outputs read about a scope: per node, a [`ThemeSummary`] (the report's unit
/// of a theme: size, share, sentiment mix, trend, segments, score driver, quotes, drill-down),
/// parents each followed by their children.
#[derive(Clone, Debug)]
pub struct TreeThemes {
    /// Verbatims in scope.
    pub verbatims: usize,
    /// Verbatims in scope with no unit in any node.
    pub other: usize,
    /// Sentiment over the scope (each verbatim's from its units, [`crate::sentiment::of_verbatim`]).
    pub sentiment: SentimentSummary,
    /// Mean score over the scope.
    pub score_mean: Option<f64>,
    /// Segment fields in scope.
    pub segment_fields: Vec<String>,
    /// First and last date in scope.
    pub period: Option<(String, String)>,
    /// Parents (largest first), each followed by its children (largest first).
    pub themes: Vec<ThemeSummary>,
    /// Units per node in scope, parallel to `themes`.
    pub units: Vec<usize>,
    /// What to fix first: the children by priority, each with its parent.
    pub priorities: Vec<Priority>,
}

/// What [`tree_themes`] includes besides the counts.
#[derive(Clone, Copy, Debug, Default)]
pub struct TreeOptions {
    /// Nodes with fewer verbatims or units than this in scope are left out (k-suppression; also
    /// the trend's and segments' cells). 0: none.
    pub min_cell: usize,
    /// Quotes per node (0 for aggregates-only callers).
    pub quotes: usize,
    /// Every unit of each child, for the drill-down (false for aggregates-only callers).
    pub units: bool,
}

/// Characters of a verbatim kept on each side of a unit in a quote or the drill-down.
pub const UNIT_CONTEXT: usize = 80;

/// The tree's nodes over the verbatims `filter` keeps: sizes, sentiment, trend (the one rule),
/// segments, score driver and, as asked, quotes and every unit of each child. See
/// [`TreeOptions`]. The priorities rank the children (the issues a team acts on; a parent is
/// the sum of its children and would always outrank them).
pub fn tree_themes(
    run: &AspectRun,
    docs: &[Verbatim],
    head: &SentimentHead,
    filter: &Filter,
    opts: TreeOptions,
) -> TreeThemes {
    let facts = ScopeFacts::new(docs, filter, opts.min_cell);
    let index: HashMap<i64, usize> = facts.scope.iter().map(|&i| (docs[i].doc, i)).collect();
    // Per node: doc index → (sum of unit scores, units); per verbatim: its units' sentiments.
    let mut per: BTreeMap<i64, BTreeMap<usize, (f32, usize)>> = BTreeMap::new();
    let mut node_units: BTreeMap<i64, Vec<&AspectUnit>> = BTreeMap::new();
    let mut of_doc: BTreeMap<usize, (Vec<crate::sentiment::UnitSentiment>, Vec<usize>)> =
        BTreeMap::new();
    let mut placed: BTreeSet<usize> = BTreeSet::new();
    for u in &run.units {
        let Some(&i) = index.get(&u.doc) else {
            continue;
        };
        let e = of_doc.entry(i).or_default();
        e.0.push(crate::sentiment::UnitSentiment {
            polarity: head.polarity(u.score),
            score: u.score,
        });
        e.1.push(u.end.saturating_sub(u.start));
        for id in [u.child, u.parent].into_iter().flatten() {
            let e = per.entry(id).or_default().entry(i).or_default();
            e.0 += u.score;
            e.1 += 1;
            node_units.entry(id).or_default().push(u);
            placed.insert(i);
        }
    }
    let doc_score = |i: usize| -> f32 {
        of_doc.get(&i).map_or(0.0, |(u, l)| {
            crate::sentiment::of_verbatim(head, u, l).score
        })
    };
    let overall = sentiment_of(
        &facts
            .scope
            .iter()
            .map(|&i| doc_score(i))
            .collect::<Vec<_>>(),
        head,
    );
    let n = facts.scope.len();
    let node = |x: &AspectNode| -> Option<(ThemeSummary, usize)> {
        let m = per.get(&x.id)?;
        let units: usize = m.values().map(|v| v.1).sum();
        if m.len() < opts.min_cell.max(1) || units < opts.min_cell.max(1) {
            return None;
        }
        let members: Vec<usize> = m.keys().copied().collect();
        let scores: Vec<f32> = m.values().map(|(s, k)| s / *k as f32).collect();
        let sentiment = sentiment_of(&scores, head);
        let lead = lead_polarity(&sentiment, &overall);
        let mine = node_units.get(&x.id).map(Vec::as_slice).unwrap_or_default();
        let quote = |u: &AspectUnit| {
            let i = index[&u.doc];
            unit_quote(&docs[i], u, head, head.polarity(doc_score(i)))
        };
        let quotes = pick_unit_quotes(mine, lead, head, opts.quotes)
            .into_iter()
            .map(quote)
            .collect();
        let units_shown = if opts.units && !x.is_parent {
            let mut all: Vec<&AspectUnit> = mine.to_vec();
            all.sort_by_key(|u| {
                (
                    Some(head.polarity(u.score)) != lead,
                    docs[index[&u.doc]].id.clone(),
                    u.idx,
                )
            });
            all.into_iter().map(quote).collect()
        } else {
            Vec::new()
        };
        Some((
            ThemeSummary {
                id: node_id(x),
                label: node_label(x).to_string(),
                keywords: Vec::new(),
                size: m.len(),
                share: round4(m.len() as f64 / n.max(1) as f64),
                secondary: 0,
                seeded: x.seed.is_some(),
                sentiment,
                quotes,
                trend: facts.trend(&members),
                segments: facts.segments(&members),
                score: facts.driver(&members, |i| m.contains_key(&i)),
                change: None,
                parent: x.parent.filter(|_| !x.is_parent).map(|p| format!("P{p}")),
                units: units_shown,
            },
            units,
        ))
    };
    let by_size = |a: &(ThemeSummary, usize), b: &(ThemeSummary, usize)| {
        b.0.size
            .cmp(&a.0.size)
            .then(a.0.id.len().cmp(&b.0.id.len()))
            .then(a.0.id.cmp(&b.0.id))
    };
    let mut parents: Vec<(&AspectNode, (ThemeSummary, usize))> =
        run.parents().filter_map(|p| Some((p, node(p)?))).collect();
    // Aspects by size; General (what names no aspect) after them: it is the rest.
    parents.sort_by(|a, b| {
        super::anchor::is_general(&a.0.label)
            .cmp(&super::anchor::is_general(&b.0.label))
            .then_with(|| by_size(&a.1, &b.1))
    });
    let (mut themes, mut units) = (Vec::new(), Vec::new());
    let mut children_all: Vec<ThemeSummary> = Vec::new();
    for (p, summary) in parents {
        let mut kids: Vec<(ThemeSummary, usize)> =
            run.children_of(p.id).filter_map(|c| node(c)).collect();
        kids.sort_by(by_size);
        themes.push(summary.0);
        units.push(summary.1);
        let owned = !super::anchor::is_general(&p.label);
        for (k, u) in kids {
            if owned {
                children_all.push(k.clone());
            }
            themes.push(k);
            units.push(u);
        }
    }
    let labels: HashMap<&str, &str> = themes
        .iter()
        .map(|t| (t.id.as_str(), t.label.as_str()))
        .collect();
    let mut priorities = super::priority::priorities(&children_all, &overall);
    for p in &mut priorities {
        p.parent_label = p
            .parent
            .as_deref()
            .and_then(|id| labels.get(id))
            .map(|l| l.to_string());
    }
    TreeThemes {
        verbatims: n,
        other: n - placed.len(),
        sentiment: overall,
        score_mean: facts.score_mean.map(round4),
        segment_fields: facts.fields.clone(),
        period: facts.span.map(|(a, b)| {
            (
                date_of(Some(a)).unwrap_or_default(),
                date_of(Some(b)).unwrap_or_default(),
            )
        }),
        themes,
        units,
        priorities,
    }
}

/// A unit as a quote: its verbatim cut to [`UNIT_CONTEXT`] characters on each side of it, the
/// unit highlighted with its own sentiment; the quote's sentiment is the verbatim's (`whole`).
fn unit_quote(d: &Verbatim, u: &AspectUnit, head: &SentimentHead, whole: Polarity) -> Quote {
    let (text, start, end) = super::report::cut_around(&d.text, u.start, u.end, UNIT_CONTEXT);
    Quote {
        id: d.id.clone(),
        text,
        date: date_of(d.ts),
        sentiment: whole,
        highlight: Some(Highlight {
            start,
            end,
            sentiment: head.polarity(u.score),
        }),
    }
}

/// Up to `k` of a node's units to quote: those of its lead polarity first, strongest sentiment
/// first (a problem child opens with its complaints), one per verbatim and no repeated text;
/// ties by verbatim id and position.
fn pick_unit_quotes<'u>(
    units: &[&'u AspectUnit],
    lead: Option<Polarity>,
    head: &SentimentHead,
    k: usize,
) -> Vec<&'u AspectUnit> {
    let mut order: Vec<&AspectUnit> = units.to_vec();
    order.sort_by(|a, b| {
        (Some(head.polarity(a.score)) != lead)
            .cmp(&(Some(head.polarity(b.score)) != lead))
            .then(b.score.abs().total_cmp(&a.score.abs()))
            .then(a.doc.cmp(&b.doc))
            .then(a.idx.cmp(&b.idx))
    });
    let mut seen = BTreeSet::new();
    order
        .into_iter()
        .filter(|u| seen.insert(u.doc))
        .take(k)
        .collect()
}

/// sha256 over the user's edits of the tree — renames, merges, moves, seeds (label, examples) —
/// in id order: a run re-applies them, so a report depends on them as on its parameters.
pub fn tree_edits(nodes: &[AspectNode]) -> String {
    use sha2::{Digest, Sha256};
    let edited: Vec<serde_json::Value> = nodes
        .iter()
        .filter(|n| {
            n.user_label.is_some()
                || n.user_parent.is_some()
                || n.seed.is_some()
                || n.state == ThemeState::Merged
        })
        .map(|n| {
            serde_json::json!({
                "id": node_id(n),
                "label": n.user_label,
                "parent": n.user_parent,
                "seed": n.seed,
                "merged_into": if n.state == ThemeState::Merged { n.merged_into } else { None },
            })
        })
        .collect();
    hex::encode(Sha256::digest(serde_json::Value::Array(edited).to_string()))
}

/// sha256 over a tree run's outcome: each node's id, label, parent and state, and each unit's
/// place, in doc order (what a re-made report must stand on to be the same).
pub fn tree_fingerprint(run: &AspectRun, docs: &[Verbatim]) -> String {
    use sha2::{Digest, Sha256};
    let ids: HashMap<i64, &str> = docs.iter().map(|d| (d.doc, d.id.as_str())).collect();
    let mut h = Sha256::new();
    for n in &run.nodes {
        h.update(format!(
            "{}\t{}\t{:?}\t{:?}\n",
            node_id(n),
            node_label(n),
            n.parent,
            n.state
        ));
    }
    for u in &run.units {
        h.update(format!(
            "{}\t{}\t{}\t{:?}\t{:?}\n",
            ids.get(&u.doc).copied().unwrap_or(""),
            u.start,
            u.end,
            u.child,
            u.parent
        ));
    }
    hex::encode(h.finalize())
}

/// Summarises the tree over the verbatims `filter` keeps, what to fix first at the top; nodes
/// with fewer than `min_cell` verbatims or units in scope are left out (k-suppression; 0: none).
pub fn summarize(
    run: &AspectRun,
    docs: &[Verbatim],
    head: &SentimentHead,
    filter: &Filter,
    min_cell: usize,
) -> TreeSummary {
    let t = tree_themes(
        run,
        docs,
        head,
        filter,
        TreeOptions {
            min_cell,
            ..TreeOptions::default()
        },
    );
    let node = |x: &ThemeSummary, units: usize| NodeSummary {
        id: x.id.clone(),
        level: if x.id.starts_with('P') {
            "parent"
        } else {
            "child"
        },
        parent: x.parent.clone(),
        label: x.label.clone(),
        verbatims: x.size,
        units,
        share_of_verbatims: x.size as f64 / t.verbatims.max(1) as f64,
        negative: x.sentiment.negative as f64 / x.size.max(1) as f64,
        trend: x
            .trend
            .direction
            .map_or_else(|| "-".to_string(), |d| d.word().to_string()),
        effect: x
            .score
            .as_ref()
            .filter(|d| super::priority::significant(d) && d.scale.is_some())
            .map(|d| {
                super::priority::effect_value(
                    super::priority::effect(d),
                    &d.scale.expect("filtered"),
                )
            }),
        children: Vec::new(),
    };
    let mut parents: Vec<NodeSummary> = Vec::new();
    for (x, &u) in t.themes.iter().zip(&t.units) {
        if x.parent.is_none() {
            parents.push(node(x, u));
        } else if let Some(p) = parents.last_mut() {
            p.children.push(node(x, u));
        }
    }
    TreeSummary {
        priorities: t.priorities,
        formula: super::priority::FORMULA,
        verbatims: t.verbatims,
        other: t.other,
        share_of: "verbatims",
        parents,
        discovered_on: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_parse_and_print() {
        assert_eq!(parse_node_id("P3"), Some((true, 3)));
        assert_eq!(parse_node_id("c12"), Some((false, 12)));
        assert_eq!(parse_node_id("T3"), None);
        assert_eq!(parse_node_id("P0"), None);
        let mut n = new_node(7, false);
        assert_eq!(node_id(&n), "C7");
        n.is_parent = true;
        assert_eq!(node_id(&n), "P7");
    }

    #[test]
    fn matching_keeps_ids_one_to_one_and_follows_merges() {
        let mut a = new_node(1, true);
        a.centroid = vec![1.0, 0.0];
        let mut b = new_node(2, true);
        b.centroid = vec![0.0, 1.0];
        b.state = ThemeState::Merged;
        b.merged_into = Some(1);
        // Two new centroids near a and b, one far from both.
        let new = vec![0.99, 0.14, 0.1, 0.995, -1.0, 0.0];
        let m = match_ids(&new, 2, &[&a, &b]);
        assert_eq!(m, vec![Some(1), Some(2), None]);
        let by: BTreeMap<i64, AspectNode> = [(1, a), (2, b)].into_iter().collect();
        assert_eq!(resolve(2, &by), 1);
        assert_eq!(resolve(1, &by), 1);
    }

    #[test]
    fn a_seed_takes_the_units_nearer_to_it_under_the_parent_they_fall_in() {
        let node = |id: i64, is_parent: bool, parent: Option<i64>| AspectNode {
            parent,
            ..new_node(id, is_parent)
        };
        let mut seed = node(5, false, None);
        seed.seed = Some(vec!["arrived crushed".into()]);
        seed.centroid = vec![0.0, 0.0, 1.0];
        let by: BTreeMap<i64, AspectNode> = [
            node(1, true, None),
            node(2, true, None),
            node(3, false, Some(1)),
            node(4, false, Some(2)),
            seed.clone(),
        ]
        .into_iter()
        .map(|n| (n.id, n))
        .collect();
        // Units: two of child 3 ([1,0,0]), two of child 4 ([0,1,0]), and two that the tree put
        // in child 4 but read like the seed; one in "other" near the seed.
        let rows: Vec<f32> = [
            [1.0, 0.0, 0.0],
            [0.99, 0.1, 0.0],
            [0.0, 1.0, 0.0],
            [0.1, 0.99, 0.0],
            [0.0, 0.3, 0.95],
            [0.0, 0.2, 0.98],
            [0.0, 0.1, 0.99],
        ]
        .concat();
        let place_of = |child: Option<i64>, parent: Option<i64>, idx: usize| AspectUnit {
            doc: idx as i64,
            idx: 0,
            start: 0,
            end: 1,
            child,
            parent,
            score: 0.0,
        };
        let base: Vec<AspectUnit> = [
            (Some(3), Some(1)),
            (Some(3), Some(1)),
            (Some(4), Some(2)),
            (Some(4), Some(2)),
            (Some(4), Some(2)),
            (Some(4), Some(2)),
            (None, None),
        ]
        .iter()
        .enumerate()
        .map(|(i, &(c, p))| place_of(c, p, i))
        .collect();
        let nearest = vec![1, 1, 2, 2, 2, 2, 2];
        let mut place = base.clone();
        let mut cp: BTreeMap<i64, i64> = [(3, 1), (4, 2)].into_iter().collect();
        apply_seeds(&rows, 3, &mut place, &nearest, &by, &mut cp);
        let children: Vec<Option<i64>> = place.iter().map(|u| u.child).collect();
        assert_eq!(
            children,
            [
                Some(3),
                Some(3),
                Some(4),
                Some(4),
                Some(5),
                Some(5),
                Some(5)
            ]
        );
        assert_eq!(cp[&5], 2, "under the parent its units fell in");
        assert!(place[4..].iter().all(|u| u.parent == Some(2)));
        // The user's parent wins.
        let mut moved = by.clone();
        moved.get_mut(&5).unwrap().user_parent = Some(1);
        let mut place = base.clone();
        let mut cp: BTreeMap<i64, i64> = [(3, 1), (4, 2)].into_iter().collect();
        apply_seeds(&rows, 3, &mut place, &nearest, &moved, &mut cp);
        assert_eq!(cp[&5], 1);
        assert!(place[4..].iter().all(|u| u.parent == Some(1)));
        // No seed: nothing moves.
        let mut plain = by.clone();
        plain.remove(&5);
        let mut place = base.clone();
        apply_seeds(&rows, 3, &mut place, &nearest, &plain, &mut BTreeMap::new());
        assert_eq!(place, base);
    }

    /// A tree as a run leaves it: docs with one unit each, labelled by the run's labeller.
    fn erasure_fixture() -> (Vec<AspectNode>, Vec<AspectUnit>, Vec<Verbatim>) {
        let node = |id: i64, parent: Option<i64>, c: [f32; 3]| AspectNode {
            parent,
            centroid: c.to_vec(),
            ..new_node(id, parent.is_none())
        };
        let mut nodes = vec![
            node(1, None, [1.0, 0.0, 0.0]),
            node(2, Some(1), [1.0, 0.0, 0.0]),
            node(3, Some(1), [0.0, 1.0, 0.0]),
            node(4, None, [0.0, 0.0, 1.0]),
            node(5, Some(4), [0.0, 0.0, 1.0]),
            node(6, Some(4), [0.0, 0.6, 0.8]),
            node(7, Some(4), [0.0, 0.8, 0.6]),
            node(8, Some(1), [0.9, 0.1, 0.0]),
        ];
        nodes[5].seed = Some(vec!["too salty".into()]);
        nodes[6].user_label = Some("My own label".into());
        // (child, parent, text, score) per verbatim; docs 100–102 are the respondent's.
        let mut rows: Vec<(i64, Option<i64>, String, f32)> = Vec::new();
        for i in 0..5 {
            rows.push((
                2,
                Some(1),
                format!("the delivery was late again, day {i}"),
                -0.6,
            ));
        }
        for text in ["a lid came dented", "one jar smashed inside"] {
            rows.push((3, Some(1), text.to_string(), -0.5));
        }
        for i in 0..9 {
            rows.push((
                8,
                Some(1),
                format!("the price is too high for week {i}"),
                -0.4,
            ));
        }
        for i in 0..10 {
            rows.push((5, Some(4), format!("the taste is lovely in batch {i}"), 0.7));
        }
        rows.push((7, Some(4), "odd flavour note here".into(), 0.0));
        let mut docs = Vec::new();
        let mut units = Vec::new();
        let mut push = |doc: i64, child: Option<i64>, parent: Option<i64>, text: &str, score| {
            docs.push(Verbatim {
                doc,
                id: format!("V{doc}"),
                text: text.to_string(),
                respondent: None,
                ts: None,
                score: None,
                language: "en".into(),
                fields: BTreeMap::new(),
                source: format!("t.csv:{doc}"),
                seq: doc,
            });
            units.push(AspectUnit {
                doc,
                idx: 0,
                start: 0,
                end: text.len(),
                child,
                parent,
                score,
            });
        };
        for (i, (c, p, text, score)) in rows.iter().enumerate() {
            push(i as i64 + 1, Some(*c), *p, text, *score);
        }
        push(50, None, None, "nothing much to say", 0.0);
        // The respondent: three zorblax units in child 3, four more in child 2, one in child 7.
        for (doc, c, p, text) in [
            (100, 3, 1, "the zorblax wrapper came open"),
            (101, 3, 1, "zorblax wrapper open on arrival"),
            (102, 3, 1, "my zorblax wrapper came open again"),
            (103, 2, 1, "the delivery was late by a week"),
            (104, 2, 1, "delivery late, no tracking"),
            (105, 2, 1, "late delivery as always"),
            (106, 2, 1, "the delivery came late"),
            (107, 7, 4, "odd flavour from the zorblax jar"),
        ] {
            push(doc, Some(c), Some(p), text, -0.5);
        }
        units.sort_by_key(|u| (u.doc, u.idx));
        docs.sort_by_key(|d| d.doc);
        // Labelled and counted as a run does.
        let doc_of: HashMap<i64, &Verbatim> = docs.iter().map(|d| (d.doc, d)).collect();
        let by_id: BTreeMap<i64, AspectNode> = nodes.iter().map(|n| (n.id, n.clone())).collect();
        let cp: BTreeMap<i64, i64> = nodes
            .iter()
            .filter_map(|n| Some((n.id, n.parent?)))
            .collect();
        let pol: Vec<Polarity> = units
            .iter()
            .map(|u| crate::sentiment::band_polarity(u.score, 0.2))
            .collect();
        let (count, sets) = node_sizes(&units);
        let live: Vec<i64> = count.keys().copied().collect();
        let labels = node_labels(&live, &by_id, &cp, &units, &pol, &doc_of);
        for n in &mut nodes {
            n.units = count.get(&n.id).copied().unwrap_or(0);
            n.verbatims = sets.get(&n.id).map_or(0, |s| s.len() as i64);
            n.label = labels.get(&n.id).cloned().unwrap_or_default();
        }
        (nodes, units, docs)
    }

    #[test]
    fn an_erasure_takes_its_units_out_of_the_tree_and_relabels_from_what_remains() {
        let (nodes, units, docs) = erasure_fixture();
        let label = |id: i64| nodes.iter().find(|n| n.id == id).unwrap().label.clone();
        let all: Vec<(i64, String)> = nodes.iter().map(|n| (n.id, n.label.clone())).collect();
        assert!(label(3).contains("zorblax"), "the fixture's point: {all:?}");
        // Nothing of the tree erased: nothing changes.
        let none = without_erased(&nodes, &units, &[999].into_iter().collect(), &docs, 0.2);
        assert_eq!(none, TreeErasure::default());

        let erased: HashSet<i64> = (100..=107).collect();
        let remaining: Vec<Verbatim> = docs
            .iter()
            .filter(|d| !erased.contains(&d.doc))
            .cloned()
            .collect();
        let out = without_erased(&nodes, &units, &erased, &remaining, 0.2);
        let mut after: BTreeMap<i64, AspectNode> =
            nodes.iter().map(|n| (n.id, n.clone())).collect();
        for n in &out.patch.nodes {
            after.insert(n.id, n.clone());
        }
        // Same ids; no automatic label keeps the erased word; the old one is stale.
        assert_eq!(after.len(), nodes.len());
        for n in after.values() {
            assert!(!n.label.contains("zorblax"), "C{}: {}", n.id, n.label);
        }
        assert!(
            out.stale_labels.contains(&label(3)),
            "{:?}",
            out.stale_labels
        );
        // Child 3 keeps its two other units; child 2 (9 units, ≥ the run's minimum of 8) is
        // left with 5 and folds into its nearest sibling, child 8.
        assert_eq!((after[&3].units, after[&3].verbatims), (2, 2));
        assert_eq!(out.patch.folded, vec![(2, 8)]);
        assert_eq!(after[&2].state, ThemeState::Vanished);
        assert_eq!((after[&8].units, after[&8].verbatims), (14, 14));
        assert_eq!((after[&1].units, after[&1].verbatims), (16, 16));
        // The renamed child kept its user label through vanishing; the seed stays as it was.
        assert_eq!(after[&7].units, 1);
        assert_eq!(after[&7].user_label.as_deref(), Some("My own label"));
        assert!(!out.patch.nodes.iter().any(|n| n.id == 6));
        assert_eq!(after[&6].state, ThemeState::Active);
        // Every changed node is in the patch, and only those.
        for n in &out.patch.nodes {
            assert_ne!(Some(n), nodes.iter().find(|m| m.id == n.id));
        }
        // Erasing the last unit of the renamed child: it vanishes, label and all kept.
        // (Doc 27: the renamed child's other unit.)
        let all7: HashSet<i64> = [27, 107].into_iter().collect();
        let out = without_erased(&nodes, &units, &all7, &docs, 0.2);
        let c7 = out.patch.nodes.iter().find(|n| n.id == 7).unwrap();
        assert_eq!((c7.state, c7.units), (ThemeState::Vanished, 0));
        assert_eq!(c7.user_label.as_deref(), Some("My own label"));
        assert!(c7.label.is_empty() && c7.centroid.is_empty(), "{c7:?}");
        // A node vanished in an earlier run, labelled with the erased word: cleared; a user
        // label is the user's; an active node is left to the relabelling.
        let mut old = new_node(9, false);
        old.state = ThemeState::Vanished;
        old.label = "zorblax wrapper".into();
        let mut mine = old.clone();
        mine.id = 10;
        mine.label = "wrapper".into();
        mine.user_label = Some("zorblax issues".into());
        let mut with_old = nodes.clone();
        with_old.extend([old, mine]);
        let mut out = without_erased(&with_old, &units, &erased, &remaining, 0.2);
        let only: HashSet<String> = ["zorblax".to_string()].into_iter().collect();
        let before = out.patch.nodes.len();
        clear_erased_words(&mut out, &with_old, &only);
        assert_eq!(out.patch.nodes.len(), before + 1);
        let c9 = out.patch.nodes.last().unwrap();
        assert_eq!((c9.id, c9.label.as_str()), (9, ""));
        assert!(out.stale_labels.contains(&"zorblax wrapper".to_string()));
    }

    #[test]
    fn a_child_that_lost_units_is_recentred_on_those_it_keeps() {
        let unit = |doc: i64, child: Option<i64>| AspectUnit {
            doc,
            idx: 0,
            start: 0,
            end: 1,
            child,
            parent: Some(1),
            score: 0.0,
        };
        let mut kept = new_node(3, false);
        kept.centroid = vec![0.0, 1.0, 0.0];
        kept.units = 2;
        let mut folded_into = new_node(8, false);
        folded_into.centroid = vec![1.0, 0.0, 0.0];
        folded_into.units = 5;
        let mut out = TreeErasure {
            patch: crate::store::AspectPatch {
                nodes: vec![kept, folded_into],
                folded: vec![(2, 8)],
                run_key: None,
            },
            stale_labels: Vec::new(),
        };
        // Docs 4 and 5 are erased (one unit each in children 3 and 8).
        let units = [
            unit(4, Some(3)),
            unit(5, Some(8)),
            unit(6, Some(3)),
            unit(7, Some(3)),
            unit(9, Some(8)),
        ];
        let erased: HashSet<i64> = [4, 5].into_iter().collect();
        // One unit per verbatim: its vector in the tree's space is its own direction.
        let stored: HashMap<i64, Vec<crate::store::StoredUnit>> = [
            (6, vec![0.6, 0.8, 0.0]),
            (7, vec![0.0, 0.8, 0.6]),
            (9, vec![0.0, 0.0, 1.0]),
        ]
        .into_iter()
        .map(|(doc, v)| {
            let u = crate::store::StoredUnit {
                idx: 0,
                start: 0,
                end: 1,
                vector: v,
                sentiment: None,
            };
            (doc, vec![u])
        })
        .collect();
        let mut asked = Vec::new();
        recentre_children(&mut out, &units, &erased, |docs| {
            asked = docs.to_vec();
            Ok::<_, ()>(stored)
        })
        .unwrap();
        assert_eq!(
            asked,
            [6, 7],
            "only the recentred child's verbatims are read"
        );
        let c = &out.patch.nodes[0].centroid;
        let want = [0.6, 1.6, 0.6].map(|x: f32| x / (0.36f32 + 2.56 + 0.36).sqrt());
        for (a, b) in c.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{c:?} vs {want:?}");
        }
        // A child that took a fold keeps its centroid.
        assert_eq!(out.patch.nodes[1].centroid, vec![1.0, 0.0, 0.0]);
    }
}
