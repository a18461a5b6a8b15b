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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::label::{label_themes, Phraser, Vocab};
use super::run::MATCH_MIN;
use super::tree::{self, TreeError, TreeParams};
use crate::sentiment::SentimentHead;
use crate::store::{AspectNode, AspectUnit, Store, StoreError, ThemeState, Verbatim};
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

/// Label shown for a node: the user's, else the automatic one.
pub fn node_label(n: &AspectNode) -> &str {
    n.user_label.as_deref().unwrap_or(&n.label)
}

fn run_key(store: &Store) -> Result<String, StoreError> {
    let fp = store.model_fingerprint()?.unwrap_or_default();
    Ok(format!(
        "seq={};model={fp};tree={};units={}",
        store.seq()?,
        tree::VERSION,
        super::units::UNIT_INPUT
    ))
}

/// Loads the last tree when current (same store sequence and model, no edit since); otherwise
/// builds it on the stored units of `docs` (made by [`super::run::ensure`] with a model) and
/// saves it. `force` always rebuilds.
pub fn ensure(
    store: &mut Store,
    docs: &[Verbatim],
    head: &SentimentHead,
    force: bool,
) -> Result<AspectRun, AspectError> {
    let key = run_key(store)?;
    if !force && store.aspect_run_key()?.as_deref() == Some(key.as_str()) {
        return Ok(AspectRun {
            nodes: store.aspect_nodes()?,
            units: store.aspect_units()?,
            ran: false,
        });
    }
    let ids: Vec<i64> = docs.iter().map(|d| d.doc).collect();
    let stored = store.units_of(&ids)?;
    let previous = store.aspect_nodes()?;
    let run = build(docs, &stored, &previous, head)?;
    store.save_aspect_run(&run.nodes, &run.units, &key)?;
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
            if u.vector.is_empty()
                || u.end > d.text.len()
                || !d.text.is_char_boundary(u.start)
                || !d.text.is_char_boundary(u.end)
            {
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
        let t = tree::build(&rows, dim, Some(&owner), &params)?;
        let x = tree::aspect_vectors(&rows, dim, Some(&owner), params.aspect_alpha);
        Some((t, x))
    };
    if let Some((t, x)) = &t {
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
        let prev_children: Vec<&AspectNode> = previous.iter().filter(|n| !n.is_parent).collect();
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
    }

    // Sizes (units and distinct verbatims) and labels.
    let mut unit_count: BTreeMap<i64, i64> = BTreeMap::new();
    let mut doc_sets: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for u in &place {
        for id in [u.child, u.parent].into_iter().flatten() {
            *unit_count.entry(id).or_default() += 1;
            doc_sets.entry(id).or_default().insert(u.doc);
        }
    }
    let live: Vec<i64> = unit_count.keys().copied().collect();
    let mut phraser = Phraser::default();
    let mut vocab = Vocab::default();
    let doc_of: HashMap<i64, &Verbatim> = docs.iter().map(|d| (d.doc, d)).collect();
    let phrases: Vec<_> = place
        .iter()
        .map(|u| {
            let d = doc_of[&u.doc];
            phraser.phrases(&d.text[u.start..u.end], &d.language, &mut vocab)
        })
        .collect();
    let mut labels: HashMap<i64, super::label::Labelled> = HashMap::new();
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
            labels.insert(*id, l);
        }
    }
    // The tree's own labels (aspect nouns for parents, issue phrases that agree with the
    // child's sentiment for children, none used twice); the c-TF-IDF keyphrase above stays
    // where they find nothing (a parent whose units all sit in "other").
    let tree_labels = tree_labels(
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
        if units > 0 {
            n.state = ThemeState::Active;
            if let Some(l) = tree_labels.get(&n.id).filter(|l| !l.is_empty()) {
                n.label = l.clone();
            } else if let Some(l) = labels.get(&n.id) {
                n.label = l.label.clone();
            }
            if !n.is_parent {
                n.parent = child_parent_final.get(&n.id).copied();
            }
        } else {
            n.state = ThemeState::Vanished;
        }
    }
    Ok(AspectRun {
        nodes: by_id.into_values().collect(),
        units: place,
        ran: true,
    })
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
    /// Direction of the node's weekly verbatim share ("up", "down", "flat"; `-` when dates
    /// are missing or too few).
    pub trend: String,
    /// Children (for a parent).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub children: Vec<NodeSummary>,
}

/// The tree as shown: parents (largest first) with their children.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TreeSummary {
    /// Verbatims in scope (the denominator of every share).
    pub verbatims: usize,
    /// Verbatims in scope with no unit in any node.
    pub other: usize,
    /// What the shares count.
    pub share_of: &'static str,
    /// Parents with their children.
    pub parents: Vec<NodeSummary>,
}

/// Summarises the tree over the verbatims `in_scope` accepts; nodes with fewer than
/// `min_cell` verbatims or units in scope are left out (k-suppression; 0: none).
pub fn summarize(
    run: &AspectRun,
    docs: &[Verbatim],
    head: &SentimentHead,
    in_scope: impl Fn(&Verbatim) -> bool,
    min_cell: usize,
) -> TreeSummary {
    let scope: HashMap<i64, &Verbatim> = docs
        .iter()
        .filter(|d| in_scope(d))
        .map(|d| (d.doc, d))
        .collect();
    // Per node: doc → (sum of unit scores, units).
    let mut per: BTreeMap<i64, BTreeMap<i64, (f32, usize)>> = BTreeMap::new();
    let mut placed: BTreeSet<i64> = BTreeSet::new();
    for u in run.units.iter().filter(|u| scope.contains_key(&u.doc)) {
        for id in [u.child, u.parent].into_iter().flatten() {
            let e = per.entry(id).or_default().entry(u.doc).or_default();
            e.0 += u.score;
            e.1 += 1;
            placed.insert(u.doc);
        }
    }
    let total = scope.len();
    let node = |n: &AspectNode| -> Option<NodeSummary> {
        let m = per.get(&n.id)?;
        let units: usize = m.values().map(|x| x.1).sum();
        if m.len() < min_cell.max(1) || units < min_cell.max(1) {
            return None;
        }
        let negative = m
            .values()
            .filter(|(s, k)| head.polarity(s / *k as f32) == Polarity::Negative)
            .count();
        let ts: Vec<i64> = m.keys().filter_map(|d| scope[d].ts).collect();
        Some(NodeSummary {
            id: node_id(n),
            level: if n.is_parent { "parent" } else { "child" },
            parent: n.parent.filter(|_| !n.is_parent).map(|p| format!("P{p}")),
            label: node_label(n).to_string(),
            verbatims: m.len(),
            units,
            share_of_verbatims: m.len() as f64 / total.max(1) as f64,
            negative: negative as f64 / m.len() as f64,
            trend: trend(&ts, &scope),
            children: Vec::new(),
        })
    };
    let mut parents: Vec<NodeSummary> = run
        .parents()
        .filter_map(|p| {
            let mut s = node(p)?;
            s.children = run.children_of(p.id).filter_map(node).collect();
            s.children
                .sort_by(|a, b| b.verbatims.cmp(&a.verbatims).then(a.id.cmp(&b.id)));
            Some(s)
        })
        .collect();
    parents.sort_by(|a, b| b.verbatims.cmp(&a.verbatims).then(a.id.cmp(&b.id)));
    TreeSummary {
        verbatims: total,
        other: total - placed.len(),
        share_of: "verbatims",
        parents,
    }
}

/// "up" / "down" / "flat" from the node's share of the verbatims in the first and second half
/// of the dated period; "-" with fewer than 10 dated verbatims in the node.
fn trend(ts: &[i64], scope: &HashMap<i64, &Verbatim>) -> String {
    let all: Vec<i64> = scope.values().filter_map(|d| d.ts).collect();
    if ts.len() < 10 || all.len() < 20 {
        return "-".into();
    }
    let (lo, hi) = (
        *all.iter().min().expect("non-empty"),
        *all.iter().max().expect("non-empty"),
    );
    if hi <= lo {
        return "-".into();
    }
    let mid = lo + (hi - lo) / 2;
    let half = |v: &[i64]| {
        let late = v.iter().filter(|&&t| t > mid).count();
        (v.len() - late, late)
    };
    let (a0, a1) = half(&all);
    let (n0, n1) = half(ts);
    if a0 == 0 || a1 == 0 {
        return "-".into();
    }
    let (s0, s1) = (n0 as f64 / a0 as f64, n1 as f64 / a1 as f64);
    if s1 > s0 * 1.25 {
        "up".into()
    } else if s1 < s0 * 0.8 {
        "down".into()
    } else {
        "flat".into()
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
}
