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

/// Parents tried (the cut of the first level).
pub const PARENT_K: RangeInclusive<usize> = 4..=12;
/// Children tried inside each parent.
pub const CHILD_K: RangeInclusive<usize> = 2..=8;
/// A parent with fewer units than this is not split (it is one child).
pub const MIN_SPLIT: usize = 40;
/// Micro-clusters per level: √n clamped to this range (and at most n/3).
pub const MICRO: RangeInclusive<usize> = 30..=200;
/// Micro-clusters are fitted on at most this many units, then every unit joins its nearest.
pub const MICRO_SAMPLE: usize = 20_000;
/// Units the silhouette of a cut is measured on.
pub const SILHOUETTE_SAMPLE: usize = 2_000;

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
}

impl Default for TreeParams {
    fn default() -> Self {
        TreeParams {
            seed: 42,
            parent_k: PARENT_K,
            child_k: CHILD_K,
            aspect_alpha: 0.5,
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
        });
    }
    let x = aspect_vectors(units, dim, groups, params.aspect_alpha);
    let (parent_of, parents, parent_curve) = level(&x, dim, &params.parent_k, params.seed);

    // Children inside each parent, numbered parent by parent.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); parents];
    for (i, &p) in parent_of.iter().enumerate() {
        members[p].push(i);
    }
    let mut child_of = vec![0usize; n];
    let mut child_parent = Vec::new();
    for (p, idx) in members.iter().enumerate() {
        let sub = cluster::rows(&x, dim, idx);
        let (lab, k, _) = if idx.len() >= MIN_SPLIT {
            level(
                &sub,
                dim,
                &params.child_k,
                params.seed.wrapping_add(1 + p as u64),
            )
        } else {
            (vec![0; idx.len()], 1, Vec::new())
        };
        let base = child_parent.len();
        for (&i, &c) in idx.iter().zip(&lab) {
            child_of[i] = base + c;
        }
        child_parent.extend(std::iter::repeat_n(p, k));
    }
    let kc = child_parent.len();
    let child_centroids = centroids(&x, dim, &child_of, kc);
    let sim: Vec<f32> = (0..n)
        .map(|i| {
            let c = child_of[i];
            crate::vecmath::dot(
                &x[i * dim..(i + 1) * dim],
                &child_centroids[c * dim..(c + 1) * dim],
            )
        })
        .collect();
    let other = cluster::others(&child_of, &sim, kc);
    let unit_child = child_of
        .iter()
        .zip(&other)
        .map(|(&c, &o)| (!o).then_some(c))
        .collect();
    Ok(Tree {
        parents,
        child_parent,
        unit_child,
        child_centroids,
        parent_curve,
    })
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
    let mut c = vec![0f32; k * dim];
    for (i, &l) in lab.iter().enumerate() {
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
    let m = ((n as f64).sqrt().round() as usize)
        .clamp(*MICRO.start(), *MICRO.end())
        .min(n / 3);
    // Too few rows for micro-clusters above the largest cut: the cut is over single rows' k-means.
    let micro_assign: Vec<usize>;
    let mk: usize;
    if m <= *ks.end() {
        mk = n.min(*ks.end() * 3);
        micro_assign = kmeans(x, dim, mk, seed, 25).assign;
    } else {
        mk = m;
        let mut rng = Rng::new(seed ^ 0x7EE);
        let idx = cluster::sample(n, MICRO_SAMPLE, &mut rng);
        let fit = if idx.len() < n {
            let s = cluster::rows(x, dim, &idx);
            let f = kmeans(&s, dim, mk, seed, 25);
            kmeans_from(x, dim, f.centroids, 3, false)
        } else {
            kmeans(x, dim, mk, seed, 25)
        };
        micro_assign = fit.assign;
    }
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
        let tree = build(&x, dim, None, &TreeParams::default()).unwrap();
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
