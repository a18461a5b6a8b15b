//! The theme tree on opinion units: parents are aspects (what is talked about), children are what
//! is said about them. A pure function from a matrix of unit vectors (and, optionally, which
//! verbatim each unit comes from) to a two-level assignment; nothing here reads the store.
//!
//! Why this algorithm (prototypes compared in `benches/peers/proto/tree.py`, numbers in
//! `benches/peers/proto/FINDINGS.md` § "Issue 14: the theme tree", Rust measured in
//! `benches/themes.rs`):
//!
//! * **Each level is micro-clusters grouped by Ward linkage.** Spherical k-means cuts the units
//!   into `m ≈ √n` micro-clusters (30–200); their mean vectors are merged by Ward (the merge
//!   that adds the least within-group sum of squares, exact at point level); the cut is the
//!   number of groups in a fixed range with the best mean cosine silhouette on a seeded sample.
//!   Average linkage, which the issue's restaurant measurement favoured, collapses into one giant
//!   parent on tweets (airline NMI 0.01); plain k-means at both levels is 3–5× slower and no
//!   better (airline child NMI 0.28 against 0.335, laptop aspect consistency 0.529 against 0.562). The range keeps the flat silhouette
//!   curve from collapsing to 2 groups: 4–12 parents (analysts read a handful of aspects), 2–8
//!   children per parent.
//! * **Children are found inside each parent**, afresh (their own micro-clusters), so a child
//!   never straddles two aspects; a parent with fewer than [`MIN_SPLIT`] units is one child.
//! * **How many children: by size, not silhouette** (issue 14, third pass; `tree_t2.py`,
//!   FINDINGS § "Issue 14, third pass"). On a parent's units the silhouette curve favours two
//!   broad groups, so children held 35–60% of the verbatims and mixed several issues. The
//!   parent's Ward dendrogram is now split top down while a node holds more units than
//!   [`CHILD_CAP`] × the number of verbatims (a child's verbatims are at most its units, so no
//!   child holds more than that share of them); a branch under [`CHILD_MIN`] × the verbatims is
//!   not a child of its own (its units join the nearest child). On the airline complaints this
//!   gives 28–33 children holding at most 10% of the tweets each, instead of 16–20 holding up
//!   to 20–24%, at −0.015 (prototype) to −0.028 (Rust bench) child NMI (more, smaller groups
//!   cost NMI against 9 reasons); laptop aspect
//!   consistency is unchanged (parents are untouched). `child_cap = 0` restores the silhouette
//!   rule.
//! * **Then the children are refined by spherical k-means inside their parent**
//!   ([`TreeParams::child_refine`] rounds): Ward merges whole micro-clusters, so units at a
//!   micro-cluster's edge can end in a child whose centroid is not their nearest. The one change of
//!   the second pass (FINDINGS § "Issue 14, second pass") that was never worse: airline child NMI
//!   +0.006 on both halves of the tweets, fewer "other", parents (so laptop consistency) untouched.
//! * **The product/brand axis**: with a grouping, a unit's vector becomes `x − α·mean(its
//!   verbatim's units)`, renormalised ([`TreeParams::aspect_alpha`]); what all units of a verbatim
//!   share (the product it is about) weighs less, what this unit says weighs more. `0` turns it
//!   off (the "topic" view).
//! * **Other**: a unit more than 2 standard deviations under its child's mean cosine *and* in the
//!   lowest 10% overall ([`cluster::others`]): at most 10% of units, by construction.
//!
//! Deterministic given the seed: every random choice comes from [`Rng`] streams derived from it,
//! and every sum runs in a fixed order.

use std::ops::RangeInclusive;

use crate::themes::cluster::{self, kmeans, kmeans_from, Rng};
use crate::vecmath::{dot_matrix, l2_normalize};

/// Version of the tree's rules: stored trees built under another one are rebuilt. 4: units of
/// vector-cut parents go to the nearest parent centroid ([`super::anchor::anchor`]).
pub const VERSION: u32 = 4;
/// Parents tried (the cut of the first level).
pub const PARENT_K: RangeInclusive<usize> = 4..=12;
/// Children tried inside each parent.
pub const CHILD_K: RangeInclusive<usize> = 2..=8;
/// A parent with fewer units than this is not split (it is one child); nor, under the size
/// rule, is a group of this many units or fewer.
pub const MIN_SPLIT: usize = 40;
/// Micro-clusters per level: √n clamped to this range (and at most n/3).
pub const MICRO: RangeInclusive<usize> = 30..=200;
/// Micro-clusters are fitted on at most this many units, then every unit joins its nearest.
pub const MICRO_SAMPLE: usize = 20_000;
/// Units the silhouette of a cut is measured on.
pub const SILHOUETTE_SAMPLE: usize = 2_000;
/// Default rounds of k-means refinement of the children inside each parent.
pub const CHILD_REFINE: usize = 10;
/// Default [`TreeParams::child_cap`]: no child holds more units than this share of the
/// verbatims (so no child holds more than this share of them).
pub const CHILD_CAP: f64 = 0.10;
/// Default [`TreeParams::child_min`]: a branch with fewer units than this share of the
/// verbatims is not a child of its own (its units join their nearest child).
pub const CHILD_MIN: f64 = 0.02;

/// What [`build`] is asked to do.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeParams {
    /// Seed of every random choice.
    pub seed: u64,
    /// Numbers of parents tried.
    pub parent_k: RangeInclusive<usize>,
    /// Numbers of children tried inside a parent.
    pub child_k: RangeInclusive<usize>,
    /// Weight of the verbatim's mean removed from each unit (0: none; used only with a grouping).
    pub aspect_alpha: f32,
    /// Rounds of spherical k-means that refine the children of each parent after the Ward cut,
    /// inside the parent (0: none). The parents are not changed.
    pub child_refine: usize,
    /// How the children of a parent are cut from its Ward dendrogram: a node with more units
    /// than `child_cap ×` the number of verbatims is split into its two branches, top down
    /// (issue-size children). `0` chooses the number of children by silhouette in
    /// [`TreeParams::child_k`] instead (the rule before issue 14's third pass).
    pub child_cap: f64,
    /// With `child_cap`: a branch with fewer units than `child_min ×` the number of verbatims
    /// is not a child (its units join their nearest child).
    pub child_min: f64,
}

impl Default for TreeParams {
    fn default() -> Self {
        TreeParams {
            seed: 42,
            parent_k: PARENT_K,
            child_k: CHILD_K,
            aspect_alpha: 0.5,
            child_refine: CHILD_REFINE,
            child_cap: CHILD_CAP,
            child_min: CHILD_MIN,
        }
    }
}

/// A two-level assignment of units.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    /// Number of parents (aspects).
    pub parents: usize,
    /// The parent of each child; children of one parent are numbered consecutively.
    pub child_parent: Vec<usize>,
    /// The child of each unit, `None` for "other".
    pub unit_child: Vec<Option<usize>>,
    /// Unit centroids of the children (children × dim), in the vectors the tree was built on.
    pub child_centroids: Vec<f32>,
    /// (k, mean silhouette) of every parent cut tried.
    pub parent_curve: Vec<(usize, f64)>,
    /// The "other" thresholds of the children ([`cluster::other_cuts`]): per child, then over
    /// all units (what a theme model judges later units by).
    pub other_cuts: (Vec<f32>, f32),
}

impl Tree {
    /// Number of children.
    pub fn children(&self) -> usize {
        self.child_parent.len()
    }
    /// The parent of each unit, `None` for "other".
    pub fn unit_parent(&self) -> Vec<Option<usize>> {
        self.unit_child
            .iter()
            .map(|c| c.map(|c| self.child_parent[c]))
            .collect()
    }
    /// Share of units in "other".
    pub fn other_share(&self) -> f64 {
        let n = self.unit_child.len().max(1);
        self.unit_child.iter().filter(|c| c.is_none()).count() as f64 / n as f64
    }
}

/// Why a tree cannot be built: the caller's input does not fit together.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TreeError {
    /// The vector matrix is not a whole number of rows.
    #[error("unit vectors: {len} floats is not a whole number of rows of dimension {dim}")]
    Shape {
        /// Floats given.
        len: usize,
        /// Dimension given.
        dim: usize,
    },
    /// The grouping does not have one entry per unit.
    #[error("unit grouping: {groups} entries for {units} units (one verbatim index per unit)")]
    Grouping {
        /// Entries in the grouping.
        groups: usize,
        /// Units.
        units: usize,
    },
    /// A range of k is empty or starts at 0.
    #[error("tree parameters: {field} must be a non-empty range of positive numbers, got {start}..={end}")]
    Range {
        /// Which parameter.
        field: &'static str,
        /// Its start.
        start: usize,
        /// Its end.
        end: usize,
    },
}

/// Builds the two-level tree of `units` (row-major, `dim` columns, unit length or not: rows are
/// normalised here). `groups[i]`: the verbatim unit `i` comes from (any numbering), for the
/// product/brand correction; `None` skips it.
pub fn build(
    units: &[f32],
    dim: usize,
    groups: Option<&[usize]>,
    params: &TreeParams,
) -> Result<Tree, TreeError> {
    if dim == 0 || !units.len().is_multiple_of(dim) {
        return Err(TreeError::Shape {
            len: units.len(),
            dim,
        });
    }
    let n = units.len() / dim;
    if let Some(g) = groups {
        if g.len() != n {
            return Err(TreeError::Grouping {
                groups: g.len(),
                units: n,
            });
        }
    }
    for (field, r) in [("parent_k", &params.parent_k), ("child_k", &params.child_k)] {
        if r.is_empty() || *r.start() == 0 {
            return Err(TreeError::Range {
                field,
                start: *r.start(),
                end: *r.end(),
            });
        }
    }
    if n == 0 {
        return Ok(Tree {
            parents: 0,
            child_parent: Vec::new(),
            unit_child: Vec::new(),
            child_centroids: Vec::new(),
            parent_curve: Vec::new(),
            other_cuts: (Vec::new(), f32::MIN),
        });
    }
    let x = aspect_vectors(units, dim, groups, params.aspect_alpha);
    let (parent_of, parents, parent_curve) = level(&x, dim, &params.parent_k, params.seed);
    let mut t = children_under(&x, dim, groups, &parent_of, parents, params);
    t.parent_curve = parent_curve;
    Ok(t)
}

/// The children of given parents: `x` the tree's vectors ([`aspect_vectors`], unit length),
/// `parent_of[i]` the parent of unit `i` in `0..parents`, `groups` as for [`build`]. What
/// [`build`] does after its parent cut, for callers that choose the parents another way
/// ([`super::anchor`]: parents by the aspect words units use).
pub fn children_under(
    x: &[f32],
    dim: usize,
    groups: Option<&[usize]>,
    parent_of: &[usize],
    parents: usize,
    params: &TreeParams,
) -> Tree {
    // Verbatims: the base of the children's size rule.
    let verbatims = groups.map_or(parent_of.len(), |g| {
        let mut ids = g.to_vec();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }) as f64;
    children_with(x, dim, parent_of, parents, |p, idx| {
        let seed = params.seed.wrapping_add(1 + p as u64);
        split_units(x, dim, idx, verbatims, params, seed)
    })
}

/// The children of given parents, each parent's units `idx` (in unit order) grouped by `split`
/// (`(group of each of idx, number of groups)`, every group used); then centroids and "other"
/// as [`build`] has them.
pub fn children_with<F>(
    x: &[f32],
    dim: usize,
    parent_of: &[usize],
    parents: usize,
    mut split: F,
) -> Tree
where
    F: FnMut(usize, &[usize]) -> (Vec<usize>, usize),
{
    let n = parent_of.len();
    // Children inside each parent, numbered parent by parent.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); parents];
    for (i, &p) in parent_of.iter().enumerate() {
        members[p].push(i);
    }
    let mut child_of = vec![0usize; n];
    let mut child_parent = Vec::new();
    for (p, idx) in members.iter().enumerate() {
        if idx.is_empty() {
            continue;
        }
        let (lab, k) = split(p, idx);
        let base = child_parent.len();
        for (&i, &c) in idx.iter().zip(&lab) {
            child_of[i] = base + c;
        }
        child_parent.extend(std::iter::repeat_n(p, k));
    }
    let kc = child_parent.len();
    let child_centroids = centroids(x, dim, &child_of, kc);
    let sim: Vec<f32> = (0..n)
        .map(|i| {
            let c = child_of[i];
            crate::vecmath::dot(
                &x[i * dim..(i + 1) * dim],
                &child_centroids[c * dim..(c + 1) * dim],
            )
        })
        .collect();
    let (cut, global) = cluster::other_cuts(&child_of, &sim, kc);
    let unit_child = child_of
        .iter()
        .zip(&sim)
        .map(|(&c, &s)| (!(s < cut[c] && s < global)).then_some(c))
        .collect();
    Tree {
        parents,
        child_parent,
        unit_child,
        child_centroids,
        parent_curve: Vec::new(),
        other_cuts: (cut, global),
    }
}

/// Groups of the units `idx` of one parent by their vectors (`verbatims`: the number of
/// verbatims of the whole tree, the base of the size rule): one group under [`MIN_SPLIT`] units,
/// else by size ([`TreeParams::child_cap`]) or silhouette, then refined. Returns (group of each
/// of `idx`, number of groups).
pub fn split_units(
    x: &[f32],
    dim: usize,
    idx: &[usize],
    verbatims: f64,
    params: &TreeParams,
    seed: u64,
) -> (Vec<usize>, usize) {
    let sub = cluster::rows(x, dim, idx);
    let (mut lab, mut k) = if idx.len() < MIN_SPLIT {
        (vec![0; idx.len()], 1)
    } else if params.child_cap > 0.0 {
        // Small workspaces: a child is not split below MIN_SPLIT units, nor is a branch
        // under a fifth of that kept apart.
        capped(
            &sub,
            dim,
            (params.child_cap * verbatims).max(MIN_SPLIT as f64),
            (params.child_min * verbatims).max(MIN_SPLIT as f64 / 5.0),
            seed,
        )
    } else {
        let (lab, k, _) = level(&sub, dim, &params.child_k, seed);
        (lab, k)
    };
    if k > 1 && params.child_refine > 0 {
        (lab, k) = refine(&sub, dim, &lab, k, params.child_refine);
    }
    (lab, k)
}

/// The vectors [`build`] clusters: unit-length rows, with `alpha ×` the mean of the row's group
/// (its verbatim) removed first when grouped, renormalised. [`Tree::child_centroids`] live in this
/// space.
pub fn aspect_vectors(units: &[f32], dim: usize, groups: Option<&[usize]>, alpha: f32) -> Vec<f32> {
    let mut x = units.to_vec();
    for row in x.chunks_mut(dim) {
        l2_normalize(row);
    }
    let Some(g) = groups.filter(|_| alpha != 0.0) else {
        return x;
    };
    // Group means in unit order (deterministic sums).
    let mut ids: Vec<usize> = g.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let slot = |v: usize| ids.binary_search(&v).expect("id from the grouping");
    let mut sums = vec![0f32; ids.len() * dim];
    let mut counts = vec![0f32; ids.len()];
    for (i, &v) in g.iter().enumerate() {
        let s = slot(v);
        counts[s] += 1.0;
        for (a, b) in sums[s * dim..(s + 1) * dim]
            .iter_mut()
            .zip(&x[i * dim..(i + 1) * dim])
        {
            *a += b;
        }
    }
    let mut out = x.clone();
    for (i, &v) in g.iter().enumerate() {
        let s = slot(v);
        let row = &mut out[i * dim..(i + 1) * dim];
        for (o, m) in row.iter_mut().zip(&sums[s * dim..(s + 1) * dim]) {
            *o -= alpha * m / counts[s];
        }
        // A verbatim of one unit would vanish at alpha = 1: keep its own direction then.
        if crate::vecmath::norm(row) < 1e-6 {
            row.copy_from_slice(&x[i * dim..(i + 1) * dim]);
        }
        l2_normalize(row);
    }
    out
}

/// Normalised mean of each label's rows.
fn centroids(x: &[f32], dim: usize, lab: &[usize], k: usize) -> Vec<f32> {
    centroids_of(x, dim, lab.iter().copied().enumerate(), k)
}

/// Normalised mean of the rows of each of `k` groups, given as (row of `x`, group) pairs (rows
/// in no group are left out); summed in the pairs' order. A group without rows stays zero.
pub fn centroids_of(
    x: &[f32],
    dim: usize,
    members: impl IntoIterator<Item = (usize, usize)>,
    k: usize,
) -> Vec<f32> {
    let mut c = vec![0f32; k * dim];
    for (i, l) in members {
        for (a, b) in c[l * dim..(l + 1) * dim]
            .iter_mut()
            .zip(&x[i * dim..(i + 1) * dim])
        {
            *a += b;
        }
    }
    for row in c.chunks_mut(dim) {
        l2_normalize(row);
    }
    c
}

/// Spherical k-means started from the groups `lab` (their unit centroids), at most `rounds`
/// rounds, exact (it stops when no row moves). Ward merges whole micro-clusters, so rows at a
/// micro-cluster's edge can sit nearer another group's centroid; this moves them. Returns the new
/// groups, renumbered by first appearance, and their number.
fn refine(x: &[f32], dim: usize, lab: &[usize], k: usize, rounds: usize) -> (Vec<usize>, usize) {
    let fit = kmeans_from(x, dim, centroids(x, dim, lab, k), rounds, true);
    renumber(&fit.assign)
}

/// Children by size: the parent's micro-clusters merged by Ward, then the dendrogram split top
/// down while a node holds more than `cap` units; a branch under `min` units is not a group
/// (its rows join the nearest group's centroid). Silhouette on a parent's units keeps falling
/// as k grows (it favours 2 broad groups: "delivery" and "everything else"), so the number of
/// children follows from the size a child a team can act on may have, not from the curve.
/// Returns (group of each row, number of groups), numbered by first appearance.
fn capped(x: &[f32], dim: usize, cap: f64, min: f64, seed: u64) -> (Vec<usize>, usize) {
    let n = x.len() / dim;
    if (n as f64) <= cap || n < 6 {
        return (vec![0; n], 1);
    }
    let (micro_assign, mk) = micro(x, dim, micro_count(n), seed);
    let merges = ward_linkage(x, dim, &micro_assign, mk);
    let mut size = vec![0f64; mk];
    for &a in &micro_assign {
        size[a] += 1.0;
    }
    let group = split_by_size(&merges, &size, cap, min);
    let k = group.iter().flatten().max().map_or(0, |g| g + 1);
    if k <= 1 {
        return (vec![0; n], 1);
    }
    let mut lab: Vec<Option<usize>> = micro_assign.iter().map(|&a| group[a]).collect();
    if lab.iter().any(Option::is_none) {
        let kept: Vec<usize> = (0..n).filter(|&i| lab[i].is_some()).collect();
        let kl: Vec<usize> = kept.iter().map(|&i| lab[i].expect("kept")).collect();
        let c = centroids(&cluster::rows(x, dim, &kept), dim, &kl, k);
        let orphans: Vec<usize> = (0..n).filter(|&i| lab[i].is_none()).collect();
        let near = cluster::nearest2(&cluster::rows(x, dim, &orphans), &c, dim);
        for (&i, m) in orphans.iter().zip(&near) {
            lab[i] = Some(m.0);
        }
    }
    let raw: Vec<usize> = lab
        .into_iter()
        .map(|l| l.expect("every row placed"))
        .collect();
    renumber(&raw)
}

/// The groups of a top-down split of the Ward dendrogram of `size.len()` micro-clusters
/// (`merges` as [`ward_linkage`] returns them): from the root, a node of more than `cap` units
/// is replaced by its two branches; a branch under `min` units is dropped (`None`: its
/// micro-clusters belong to no group) and the split goes on in the other one. Groups are
/// numbered in the order they are found.
fn split_by_size(
    merges: &[(usize, usize)],
    size: &[f64],
    cap: f64,
    min: f64,
) -> Vec<Option<usize>> {
    let m = size.len();
    // Node ids: micro-clusters 0..m, merge t is node m + t with branches `kids[t]`.
    let mut node_of: Vec<usize> = (0..m).collect();
    let mut kids: Vec<(usize, usize)> = Vec::with_capacity(merges.len());
    let mut weight: Vec<f64> = size.to_vec();
    for (t, &(a, b)) in merges.iter().enumerate() {
        let (l, r) = (node_of[a], node_of[b]);
        kids.push((l, r));
        weight.push(weight[l] + weight[r]);
        node_of[a] = m + t;
    }
    let mut groups: Vec<usize> = Vec::new();
    let mut stack = vec![weight.len() - 1];
    while let Some(v) = stack.pop() {
        if weight[v] > cap && v >= m {
            let (l, r) = kids[v - m];
            match (weight[l] >= min, weight[r] >= min) {
                (true, true) => stack.extend([r, l]),
                (true, false) => stack.push(l),
                (false, true) => stack.push(r),
                (false, false) => groups.push(v),
            }
        } else if weight[v] >= min || (groups.is_empty() && stack.is_empty()) {
            groups.push(v);
        }
    }
    let mut out = vec![None; m];
    for (g, &v) in groups.iter().enumerate() {
        let mut todo = vec![v];
        while let Some(u) = todo.pop() {
            if u < m {
                out[u] = Some(g);
            } else {
                let (l, r) = kids[u - m];
                todo.extend([l, r]);
            }
        }
    }
    out
}

/// Micro-clusters for `n` rows: √n clamped to [`MICRO`], at most n/3.
fn micro_count(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize)
        .clamp(*MICRO.start(), *MICRO.end())
        .min(n / 3)
        .max(1)
}

/// Spherical k-means into `mk` micro-clusters, fitted on at most [`MICRO_SAMPLE`] rows (every
/// row then joins its nearest). Returns (micro-cluster of each row, `mk`).
fn micro(x: &[f32], dim: usize, mk: usize, seed: u64) -> (Vec<usize>, usize) {
    let n = x.len() / dim;
    let mut rng = Rng::new(seed ^ 0x7EE);
    let idx = cluster::sample(n, MICRO_SAMPLE, &mut rng);
    let fit = if idx.len() < n {
        let s = cluster::rows(x, dim, &idx);
        let f = kmeans(&s, dim, mk, seed, 25);
        kmeans_from(x, dim, f.centroids, 3, false)
    } else {
        kmeans(x, dim, mk, seed, 25)
    };
    (fit.assign, mk)
}

/// One level: micro-clusters, Ward linkage, the cut in `ks` with the best silhouette.
/// Returns (group of each row, number of groups, silhouette curve). Groups are numbered by first
/// appearance in row order, so the numbering does not depend on the merge order.
fn level(
    x: &[f32],
    dim: usize,
    ks: &RangeInclusive<usize>,
    seed: u64,
) -> (Vec<usize>, usize, Vec<(usize, f64)>) {
    let n = x.len() / dim;
    let kmin = *ks.start();
    if n < 2 * kmin.max(2) {
        return (vec![0; n], 1, Vec::new());
    }
    let m = micro_count(n);
    // Too few rows for micro-clusters above the largest cut: the cut is over single rows' k-means.
    let (micro_assign, mk) = if m <= *ks.end() {
        let mk = n.min(*ks.end() * 3);
        (kmeans(x, dim, mk, seed, 25).assign, mk)
    } else {
        micro(x, dim, m, seed)
    };
    let merges = ward_linkage(x, dim, &micro_assign, mk);
    let sil_idx = cluster::sample(n, SILHOUETTE_SAMPLE, &mut Rng::new(seed.wrapping_add(1)));
    let sil = cluster::rows(x, dim, &sil_idx);
    let sims = dot_matrix(&sil, &sil, dim);
    let mut curve = Vec::new();
    let mut best: Option<(f64, Vec<usize>, usize)> = None;
    for k in ks.clone().filter(|&k| k <= mk && k < n) {
        let map = cut(&merges, mk, k);
        let lab: Vec<usize> = sil_idx.iter().map(|&i| map[micro_assign[i]]).collect();
        let s = cluster::silhouette_with(&sims, &lab, k);
        curve.push((k, (s * 1e4).round() / 1e4));
        if best.as_ref().is_none_or(|b| s > b.0 + 1e-9) {
            best = Some((s, map, k));
        }
    }
    let Some((_, map, _)) = best else {
        return (vec![0; n], 1, curve);
    };
    let raw: Vec<usize> = micro_assign.iter().map(|&a| map[a]).collect();
    let (lab, k) = renumber(&raw);
    (lab, k, curve)
}

/// Labels renumbered by first appearance; (labels, count).
fn renumber(raw: &[usize]) -> (Vec<usize>, usize) {
    let mut seen: Vec<(usize, usize)> = Vec::new();
    let lab = raw
        .iter()
        .map(|&r| match seen.iter().find(|s| s.0 == r) {
            Some(s) => s.1,
            None => {
                seen.push((r, seen.len()));
                seen.len() - 1
            }
        })
        .collect();
    (lab, seen.len())
}

/// Ward merges of the `k` micro-clusters of `assign`: each merge joins the two groups whose union
/// adds the least within-group sum of squares, `wa·wb/(wa+wb)·‖ma − mb‖²` over their mean vectors
/// (exact at point level). Returns the merges in order, as (kept, absorbed).
fn ward_linkage(x: &[f32], dim: usize, assign: &[usize], k: usize) -> Vec<(usize, usize)> {
    let mut mean = vec![0f64; k * dim];
    let mut w = vec![0f64; k];
    for (i, &a) in assign.iter().enumerate() {
        w[a] += 1.0;
        for (m, &v) in mean[a * dim..(a + 1) * dim]
            .iter_mut()
            .zip(&x[i * dim..(i + 1) * dim])
        {
            *m += v as f64;
        }
    }
    for j in 0..k {
        let d = w[j].max(1.0);
        for m in &mut mean[j * dim..(j + 1) * dim] {
            *m /= d;
        }
    }
    let cost = |mean: &[f64], w: &[f64], a: usize, b: usize| {
        let d2: f64 = mean[a * dim..(a + 1) * dim]
            .iter()
            .zip(&mean[b * dim..(b + 1) * dim])
            .map(|(p, q)| (p - q) * (p - q))
            .sum();
        w[a] * w[b] / (w[a] + w[b]) * d2
    };
    let mut g = vec![f64::INFINITY; k * k];
    for a in 0..k {
        for b in a + 1..k {
            if w[a] > 0.0 && w[b] > 0.0 {
                let v = cost(&mean, &w, a, b);
                g[a * k + b] = v;
                g[b * k + a] = v;
            }
        }
    }
    let mut alive: Vec<bool> = w.iter().map(|&c| c > 0.0).collect();
    let mut merges = Vec::with_capacity(k);
    // Empty micro-clusters merge first, into the first live one, so cut() still counts groups.
    let first_live = alive.iter().position(|&a| a).unwrap_or(0);
    for j in 0..k {
        if !alive[j] && j != first_live {
            merges.push((first_live, j));
        }
    }
    while alive.iter().filter(|&&a| a).count() > 1 {
        let (mut ba, mut bb, mut bv) = (0, 0, f64::INFINITY);
        for a in (0..k).filter(|&a| alive[a]) {
            for b in (a + 1..k).filter(|&b| alive[b]) {
                if g[a * k + b] < bv {
                    (ba, bb, bv) = (a, b, g[a * k + b]);
                }
            }
        }
        let nw = w[ba] + w[bb];
        for d in 0..dim {
            mean[ba * dim + d] = (w[ba] * mean[ba * dim + d] + w[bb] * mean[bb * dim + d]) / nw;
        }
        w[ba] = nw;
        alive[bb] = false;
        for c in (0..k).filter(|&c| alive[c] && c != ba) {
            let v = cost(&mean, &w, ba, c);
            g[ba * k + c] = v;
            g[c * k + ba] = v;
        }
        merges.push((ba, bb));
    }
    merges
}

/// Micro-cluster → group after all but the last `k − 1` merges.
fn cut(merges: &[(usize, usize)], m: usize, k: usize) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..m).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let take = merges.len().saturating_sub(k.saturating_sub(1));
    for &(a, b) in &merges[..take] {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        parent[rb] = ra;
    }
    let roots: Vec<usize> = (0..m).map(|i| find(&mut parent, i)).collect();
    renumber(&roots).0
}

/// One theme per verbatim, for measures that need one (NMI against a single label): the child
/// nearest to the mean of the verbatim's unit vectors (`x`: [`aspect_vectors`], as built), among
/// children; `None` when every unit of the verbatim is "other". `groups` numbers verbatims
/// `0..verbatims`. Reports use every theme a unit of the verbatim is in, not this.
pub fn dominant_child(
    x: &[f32],
    dim: usize,
    groups: &[usize],
    verbatims: usize,
    tree: &Tree,
) -> Vec<Option<usize>> {
    let mut mean = vec![0f32; verbatims * dim];
    let mut any = vec![false; verbatims];
    for (i, &g) in groups.iter().enumerate() {
        any[g] |= tree.unit_child[i].is_some();
        for (a, b) in mean[g * dim..(g + 1) * dim]
            .iter_mut()
            .zip(&x[i * dim..(i + 1) * dim])
        {
            *a += b;
        }
    }
    if tree.children() == 0 {
        return vec![None; verbatims];
    }
    let near = cluster::nearest2(&mean, &tree.child_centroids, dim);
    near.iter()
        .zip(&any)
        .map(|(m, &a)| a.then_some(m.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::themes::cluster::Rng;
    use proptest::prelude::*;

    /// `aspects` × `issues` groups: unit i is about aspect a (dimension a, strong) and says issue
    /// s of it (dimension `aspects + a * issues + s`, weaker), plus noise.
    fn two_level(
        aspects: usize,
        issues: usize,
        per: usize,
        noise: f32,
        seed: u64,
    ) -> (Vec<f32>, usize, Vec<(usize, usize)>) {
        let dim = aspects + aspects * issues + 4;
        let mut rng = Rng::new(seed);
        let mut x = Vec::new();
        let mut truth = Vec::new();
        for a in 0..aspects {
            for s in 0..issues {
                for _ in 0..per {
                    let mut v: Vec<f32> = (0..dim)
                        .map(|_| noise * (rng.next_f64() as f32 - 0.5))
                        .collect();
                    v[a] += 1.0;
                    v[aspects + a * issues + s] += 0.7;
                    l2_normalize(&mut v);
                    x.extend(v);
                    truth.push((a, s));
                }
            }
        }
        (x, dim, truth)
    }

    #[test]
    fn recovers_aspects_and_what_is_said_about_them() {
        let (x, dim, truth) = two_level(5, 3, 30, 0.5, 3);
        // Each issue holds 30 of 450 verbatims (6.7%): a cap of 10% keeps an issue whole and
        // splits any two.
        let params = TreeParams {
            child_cap: 0.10,
            ..TreeParams::default()
        };
        let tree = build(&x, dim, None, &params).unwrap();
        assert_eq!(tree.parents, 5, "{:?}", tree.parent_curve);
        assert_eq!(tree.children(), 15);
        let parent = tree.unit_parent();
        // Every true aspect maps to one parent, every (aspect, issue) to one child (other aside).
        for a in 0..5 {
            let ps: std::collections::BTreeSet<usize> = truth
                .iter()
                .zip(&parent)
                .filter(|(t, _)| t.0 == a)
                .filter_map(|(_, p)| *p)
                .collect();
            assert_eq!(ps.len(), 1, "aspect {a} split over parents {ps:?}");
            for s in 0..3 {
                let cs: std::collections::BTreeSet<usize> = truth
                    .iter()
                    .zip(&tree.unit_child)
                    .filter(|(t, _)| **t == (a, s))
                    .filter_map(|(_, c)| *c)
                    .collect();
                assert_eq!(cs.len(), 1, "issue {a}/{s} split over children {cs:?}");
            }
        }
        assert!(tree.other_share() <= 0.10);
    }

    #[test]
    fn children_are_issue_size_where_silhouette_stops_at_its_range() {
        // 4 aspects × 9 issues of 25 units each (2.8% of 900; two issues 5.6%): more issues than
        // the silhouette rule may cut (2..=8 per parent). The size rule (cap 5%, min 1%) finds
        // every issue.
        let (x, dim, truth) = two_level(4, 9, 25, 0.3, 8);
        let n = truth.len();
        let params = TreeParams {
            child_cap: 0.05,
            child_min: 0.01,
            ..TreeParams::default()
        };
        let sized = build(&x, dim, None, &params).unwrap();
        assert_eq!(sized.parents, 4, "{:?}", sized.parent_curve);
        assert_eq!(sized.children(), 36);
        let mut size = vec![0usize; sized.children()];
        for c in sized.unit_child.iter().flatten() {
            size[*c] += 1;
        }
        assert!(
            size.iter().all(|&s| s as f64 <= 0.05 * n as f64),
            "{size:?}"
        );
        for t in truth.iter().collect::<std::collections::BTreeSet<_>>() {
            let cs: std::collections::BTreeSet<usize> = truth
                .iter()
                .zip(&sized.unit_child)
                .filter(|(u, _)| *u == t)
                .filter_map(|(_, c)| *c)
                .collect();
            assert_eq!(cs.len(), 1, "issue {t:?} split over children {cs:?}");
        }
        let by_silhouette = build(
            &x,
            dim,
            None,
            &TreeParams {
                child_cap: 0.0,
                ..TreeParams::default()
            },
        )
        .unwrap();
        assert!(
            by_silhouette.children() <= 32,
            "{}",
            by_silhouette.children()
        );
    }

    #[test]
    fn the_dendrogram_is_split_top_down_until_nodes_fit_the_cap() {
        // Micro-clusters of 10, 10, 50 and 5 units; merges {0,1} = 20, {2,3} = 55, root 75.
        let merges = [(0, 1), (2, 3), (0, 2)];
        let size = [10.0, 10.0, 50.0, 5.0];
        // Cap 30, min 8: the root splits; {0,1} fits; {2,3} splits into 2 (a leaf: a group
        // even above the cap) and 3 (under the minimum: no group).
        assert_eq!(
            split_by_size(&merges, &size, 30.0, 8.0),
            [Some(0), Some(0), Some(1), None]
        );
        // A cap above the whole: one group of everything.
        assert_eq!(split_by_size(&merges, &size, 100.0, 8.0), [Some(0); 4]);
        // A minimum above every branch: the root stays whole.
        assert_eq!(split_by_size(&merges, &size, 30.0, 60.0), [Some(0); 4]);
    }

    #[test]
    fn a_verbatim_takes_the_child_of_its_units_mean() {
        let (x, dim, truth) = two_level(3, 2, 30, 0.4, 11);
        let tree = build(&x, dim, None, &TreeParams::default()).unwrap();
        let xs = aspect_vectors(&x, dim, None, 0.0);
        // Verbatims of two units from the same (aspect, issue): their child is the units' child.
        let groups: Vec<usize> = (0..truth.len()).map(|i| i / 2).collect();
        let dom = dominant_child(&xs, dim, &groups, truth.len() / 2, &tree);
        for (v, d) in dom.iter().enumerate() {
            let units = [tree.unit_child[2 * v], tree.unit_child[2 * v + 1]];
            match (units, d) {
                ([None, None], d) => assert_eq!(*d, None),
                ([Some(a), Some(b)], Some(d)) if a == b => assert_eq!(a, *d),
                (_, d) => assert!(d.is_some()),
            }
        }
    }

    #[test]
    fn deterministic_given_the_seed() {
        let (x, dim, _) = two_level(4, 2, 40, 0.8, 5);
        let p = TreeParams::default();
        assert_eq!(build(&x, dim, None, &p), build(&x, dim, None, &p));
    }

    #[test]
    fn the_verbatim_axis_is_taken_out_with_a_grouping() {
        // Each verbatim is about one of 2 products (a strong shared direction) and has one unit
        // about each of 4 aspects. Without the grouping the products dominate the first level;
        // with it the parents follow the aspects.
        let (dim, products, aspects, verbatims) = (12, 2, 4, 80);
        let mut rng = Rng::new(9);
        let (mut x, mut groups, mut aspect_of) = (Vec::new(), Vec::new(), Vec::new());
        for v in 0..verbatims {
            let p = v % products;
            for a in 0..aspects {
                let mut u: Vec<f32> = (0..dim)
                    .map(|_| 0.3 * (rng.next_f64() as f32 - 0.5))
                    .collect();
                u[p] += 1.6;
                u[products + a] += 1.0;
                l2_normalize(&mut u);
                x.extend(u);
                groups.push(v);
                aspect_of.push(a);
            }
        }
        let purity = |tree: &Tree| {
            let parent = tree.unit_parent();
            let mut hit = 0;
            for p in 0..tree.parents {
                let mut counts = [0usize; 4];
                for (q, &a) in parent.iter().zip(&aspect_of) {
                    if *q == Some(p) {
                        counts[a] += 1;
                    }
                }
                hit += counts.iter().max().unwrap();
            }
            hit as f64 / aspect_of.len() as f64
        };
        let params = TreeParams {
            parent_k: 2..=6,
            ..TreeParams::default()
        };
        let with = build(&x, dim, Some(&groups), &params).unwrap();
        assert!(purity(&with) > 0.85, "aspect purity {}", purity(&with));
        let topic = build(
            &x,
            dim,
            Some(&groups),
            &TreeParams {
                aspect_alpha: 0.0,
                ..params
            },
        )
        .unwrap();
        assert!(
            purity(&with) > purity(&topic),
            "{} vs {}",
            purity(&with),
            purity(&topic)
        );
    }

    /// Units of each parent that sit nearer another child's centroid of the same parent than
    /// their own (the tree's own vectors: no grouping, so they are the normalised rows).
    fn misplaced(x: &[f32], dim: usize, tree: &Tree) -> usize {
        let c = &tree.child_centroids;
        let cos = |i: usize, k: usize| {
            crate::vecmath::dot(&x[i * dim..(i + 1) * dim], &c[k * dim..(k + 1) * dim])
        };
        tree.unit_child
            .iter()
            .enumerate()
            .filter_map(|(i, ch)| ch.map(|ch| (i, ch)))
            .filter(|&(i, ch)| {
                (0..tree.children())
                    .filter(|&k| tree.child_parent[k] == tree.child_parent[ch])
                    .any(|k| cos(i, k) > cos(i, ch) + 1e-5)
            })
            .count()
    }

    #[test]
    fn children_are_refined_to_their_nearest_centroid_inside_the_parent() {
        // Noisy issues: Ward merges whole micro-clusters, so some units end in a child whose
        // centroid is not their nearest; the k-means rounds move them, parents untouched.
        let (x, dim, _) = two_level(4, 3, 60, 1.6, 11);
        let raw = build(
            &x,
            dim,
            None,
            &TreeParams {
                child_refine: 0,
                ..TreeParams::default()
            },
        )
        .unwrap();
        let refined = build(
            &x,
            dim,
            None,
            &TreeParams {
                child_refine: 50,
                ..TreeParams::default()
            },
        )
        .unwrap();
        assert!(misplaced(&x, dim, &raw) > 0, "the case must need refining");
        assert_eq!(misplaced(&x, dim, &refined), 0);
        assert_eq!(raw.parents, refined.parents);
        let parents = |t: &Tree| -> Vec<usize> {
            t.unit_child
                .iter()
                .map(|c| c.map_or(usize::MAX, |c| t.child_parent[c]))
                .collect()
        };
        // Same parents for every unit outside "other" in both.
        for (a, b) in parents(&raw).iter().zip(parents(&refined)) {
            assert!(*a == b || *a == usize::MAX || b == usize::MAX);
        }
    }

    #[test]
    fn bad_input_is_named() {
        let p = TreeParams::default();
        assert_eq!(
            build(&[0.0; 5], 2, None, &p),
            Err(TreeError::Shape { len: 5, dim: 2 })
        );
        assert_eq!(
            build(&[1.0; 4], 2, Some(&[0]), &p),
            Err(TreeError::Grouping {
                groups: 1,
                units: 2
            })
        );
        let bad = TreeParams {
            child_k: 0..=3,
            ..TreeParams::default()
        };
        assert!(matches!(
            build(&[1.0; 4], 2, None, &bad),
            Err(TreeError::Range {
                field: "child_k",
                ..
            })
        ));
        assert!(build(&[1.0; 4], 2, None, &p).unwrap().child_parent.len() == 1);
        assert_eq!(build(&[], 3, None, &p).unwrap().parents, 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Every unit is assigned once (a child or other); children partition the non-other
        /// units; every child belongs to one existing parent; other ≤ 10%.
        #[test]
        fn every_unit_once_children_partition_other_at_most_a_tenth(
            aspects in 1usize..6, issues in 1usize..4, per in 3usize..25,
            noise in 0.1f32..1.5, seed in 0u64..1000, grouped in any::<bool>(),
        ) {
            let (x, dim, _) = two_level(aspects, issues, per, noise, seed);
            let n = x.len() / dim;
            let groups: Vec<usize> = (0..n).map(|i| i / 3).collect();
            let tree = build(&x, dim, grouped.then_some(&groups[..]), &TreeParams { seed, ..TreeParams::default() }).unwrap();
            prop_assert_eq!(tree.unit_child.len(), n);
            prop_assert!(tree.parents >= 1);
            prop_assert!(tree.child_parent.iter().all(|&p| p < tree.parents));
            // Children of a parent are numbered consecutively and every parent has one.
            prop_assert!(tree.child_parent.windows(2).all(|w| w[0] <= w[1]));
            prop_assert_eq!(tree.child_parent.iter().copied().collect::<std::collections::BTreeSet<_>>().len(), tree.parents);
            let mut size = vec![0usize; tree.children()];
            for c in tree.unit_child.iter().flatten() {
                prop_assert!(*c < tree.children());
                size[*c] += 1;
            }
            prop_assert_eq!(size.iter().sum::<usize>() + tree.unit_child.iter().filter(|c| c.is_none()).count(), n);
            prop_assert!(tree.other_share() <= 0.10 + 1e-9, "other {}", tree.other_share());
            prop_assert_eq!(tree.child_centroids.len(), tree.children() * dim);
        }
    }
}
