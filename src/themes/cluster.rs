//! Theme discovery on unit-length embeddings: spherical k-means with the number of themes chosen
//! by silhouette, then an explicit "other".
//!
//! Why this algorithm (prototyped and compared in `benches/peers/proto/FINDINGS.md`, measured in
//! Rust in `benches/themes.rs`): against BERTopic (UMAP + HDBSCAN) on the same embeddings it has
//! the higher NMI *and* ARI on 20 Newsgroups and the UCI 3-domain set while giving 5–40 themes
//! (BERTopic: 117 themes and 29% outliers on 20NG-6k, 1,766 on 100k chit-chat), it is
//! deterministic given its seed, and its cost is a few gemms per iteration. The other candidates
//! lost: micro-clusters + agglomerative merging (the automatic cut picks k at either end of the
//! range, or one giant theme) and HDBSCAN on a PCA-reduced space (40–80% noise without UMAP).
//!
//! * **Seeding**: k-means++ over cosine distance, with a SplitMix64 stream from a fixed seed.
//! * **k**: every k of [`K_GRID`] (5 to 40: analysts want at least 5, and a floor of 5 stops the
//!   flat silhouette curve from collapsing to 3 on some seeds) is fitted on a seeded sample of at
//!   most [`SELECT_SAMPLE`] points and scored by mean cosine silhouette on a second sample of at
//!   most [`SILHOUETTE_SAMPLE`]; the best wins (ties: the smaller k). The final fit runs on all
//!   points, warm-started from the sample's centroids, to a fixed point (no point moves). The
//!   previous run's centroids compete too, with a hysteresis (stability across runs).
//! * **Other**: a verbatim is "other" when its cosine to its theme's centroid is more than 2
//!   standard deviations under the theme's mean *and* in the lowest 10% overall — real outliers
//!   only (2–4% on the shared sets), and never more than 10%.

use rayon::prelude::*;

use crate::vecmath::{dot_matrix, l2_normalize as normalize};

/// Candidate numbers of themes.
pub const K_GRID: &[usize] = &[5, 6, 7, 8, 10, 12, 15, 18, 20, 25, 30, 35, 40];
/// Points the candidate fits run on.
pub const SELECT_SAMPLE: usize = 10_000;
/// Points the silhouette is measured on.
pub const SILHOUETTE_SAMPLE: usize = 2_000;
/// A theme must be able to have this many members on average for its k to be tried.
pub const MIN_PER_THEME: usize = 10;
/// "Other": this many standard deviations under the theme's mean cosine.
pub const OTHER_Z: f32 = 2.0;
/// At most this share of verbatims is "other".
pub const OTHER_MAX_SHARE: f64 = 0.10;

/// Deterministic pseudo-random numbers (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize % n.max(1)
    }
}

/// Result of a k-means fit.
#[derive(Clone, Debug)]
pub struct Fit {
    /// k unit centroids, row-major (k×dim).
    pub centroids: Vec<f32>,
    /// Nearest centroid of each point.
    pub assign: Vec<usize>,
    /// Cosine of each point to its centroid.
    pub sim: Vec<f32>,
}

impl Fit {
    /// Number of clusters.
    pub fn k(&self, dim: usize) -> usize {
        self.centroids.len() / dim
    }
}

/// Nearest and runner-up centroid of each point: (best, best sim, second, second sim).
pub fn nearest2(x: &[f32], centroids: &[f32], dim: usize) -> Vec<(usize, f32, usize, f32)> {
    let k = centroids.len() / dim;
    let sims = dot_matrix(x, centroids, dim);
    sims.par_chunks(k.max(1))
        .map(|row| {
            let (mut b, mut bs, mut s, mut ss) = (0, f32::MIN, 0, f32::MIN);
            for (j, &v) in row.iter().enumerate() {
                if v > bs {
                    (s, ss) = (b, bs);
                    (b, bs) = (j, v);
                } else if v > ss {
                    (s, ss) = (j, v);
                }
            }
            (b, bs, s, ss)
        })
        .collect()
}

/// k-means++ seeds (cosine distance), deterministic for a seed.
fn seeds(x: &[f32], dim: usize, k: usize, rng: &mut Rng) -> Vec<f32> {
    let n = x.len() / dim;
    let mut c = Vec::with_capacity(k * dim);
    let first = rng.below(n);
    c.extend_from_slice(&x[first * dim..(first + 1) * dim]);
    let mut best: Vec<f32> = dot_matrix(x, &c, dim);
    while c.len() / dim < k {
        let d: Vec<f64> = best.iter().map(|&s| (1.0 - s as f64).max(0.0)).collect();
        let total: f64 = d.iter().sum();
        let pick = if total <= 0.0 {
            rng.below(n)
        } else {
            let mut r = rng.next_f64() * total;
            let mut i = 0;
            while i + 1 < n && r >= d[i] {
                r -= d[i];
                i += 1;
            }
            i
        };
        let row = &x[pick * dim..(pick + 1) * dim];
        c.extend_from_slice(row);
        let s = dot_matrix(x, row, dim);
        for (b, v) in best.iter_mut().zip(s) {
            *b = b.max(v);
        }
    }
    c
}

/// Spherical k-means from given initial centroids: assign to the nearest (cosine), move each
/// centroid to its members' normalised mean, until fewer than 0.1% of points move (`exact`: none
/// moves) or `max_iter`. An emptied cluster takes the point farthest from its centroid.
/// Deterministic.
pub fn kmeans_from(
    x: &[f32],
    dim: usize,
    mut centroids: Vec<f32>,
    max_iter: usize,
    exact: bool,
) -> Fit {
    let n = x.len() / dim;
    let k = centroids.len() / dim;
    let mut assign = vec![usize::MAX; n];
    let mut sim = vec![0f32; n];
    for _ in 0..max_iter.max(1) {
        let near = nearest2(x, &centroids, dim);
        let mut moved = 0;
        for (i, &(b, bs, _, _)) in near.iter().enumerate() {
            if assign[i] != b {
                moved += 1;
                assign[i] = b;
            }
            sim[i] = bs;
        }
        // Sums in point order: deterministic.
        let mut sums = vec![0f32; k * dim];
        let mut counts = vec![0usize; k];
        for (i, &a) in assign.iter().enumerate() {
            counts[a] += 1;
            let s = &mut sums[a * dim..(a + 1) * dim];
            for (acc, v) in s.iter_mut().zip(&x[i * dim..(i + 1) * dim]) {
                *acc += v;
            }
        }
        for j in 0..k {
            if counts[j] == 0 {
                // Re-seed on the worst-fitting point.
                let far = (0..n)
                    .min_by(|&a, &b| sim[a].total_cmp(&sim[b]).then(a.cmp(&b)))
                    .unwrap_or(0);
                sums[j * dim..(j + 1) * dim].copy_from_slice(&x[far * dim..(far + 1) * dim]);
                sim[far] = 1.0;
            }
            normalize(&mut sums[j * dim..(j + 1) * dim]);
        }
        centroids = sums;
        if moved == 0 || (!exact && moved * 1000 <= n) {
            break;
        }
    }
    let near = nearest2(x, &centroids, dim);
    for (i, &(b, bs, _, _)) in near.iter().enumerate() {
        assign[i] = b;
        sim[i] = bs;
    }
    Fit {
        centroids,
        assign,
        sim,
    }
}

/// Spherical k-means with k-means++ seeding.
pub fn kmeans(x: &[f32], dim: usize, k: usize, seed: u64, max_iter: usize) -> Fit {
    let mut rng = Rng::new(seed);
    let c = seeds(x, dim, k, &mut rng);
    kmeans_from(x, dim, c, max_iter, false)
}

/// Mean silhouette (cosine distance) of a clustering of `x`.
pub fn silhouette(x: &[f32], dim: usize, assign: &[usize], k: usize) -> f64 {
    silhouette_with(&dot_matrix(x, x, dim), assign, k)
}

/// How k was chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// The chosen k.
    pub k: usize,
    /// (k, mean silhouette on the sample) for every k tried.
    pub curve: Vec<(usize, f64)>,
    /// Points in the sample.
    pub sample: usize,
}

/// A seeded sample of at most `m` of `0..n`, in index order.
pub(crate) fn sample(n: usize, m: usize, rng: &mut Rng) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    if m < n {
        for i in 0..m {
            let j = i + rng.below(n - i);
            idx.swap(i, j);
        }
        idx.truncate(m);
        idx.sort_unstable();
    }
    idx
}

pub(crate) fn rows(x: &[f32], dim: usize, idx: &[usize]) -> Vec<f32> {
    idx.iter()
        .flat_map(|&i| x[i * dim..(i + 1) * dim].iter().copied())
        .collect()
}

/// Mean cosine silhouette of the points `sil` (row-major) labelled by their nearest centroid,
/// given their pairwise cosines `sims`.
fn silhouette_of(sil: &[f32], sims: &[f32], dim: usize, centroids: &[f32]) -> f64 {
    let k = centroids.len() / dim;
    let assign: Vec<usize> = nearest2(sil, centroids, dim).iter().map(|m| m.0).collect();
    silhouette_with(sims, &assign, k)
}

pub(crate) fn silhouette_with(sims: &[f32], assign: &[usize], k: usize) -> f64 {
    let n = assign.len();
    if n < 2 || k < 2 {
        return 0.0;
    }
    let mut counts = vec![0usize; k];
    for &a in assign {
        counts[a] += 1;
    }
    let parts: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let row = &sims[i * n..(i + 1) * n];
            let mut dist = vec![0f64; k];
            for (j, &s) in row.iter().enumerate() {
                if j != i {
                    dist[assign[j]] += 1.0 - s as f64;
                }
            }
            let own = assign[i];
            if counts[own] <= 1 {
                return 0.0;
            }
            let a = dist[own] / (counts[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && counts[c] > 0)
                .map(|c| dist[c] / counts[c] as f64)
                .fold(f64::INFINITY, f64::min);
            if !b.is_finite() {
                return 0.0;
            }
            (b - a) / a.max(b).max(1e-12)
        })
        .collect();
    parts.iter().sum::<f64>() / n as f64
}

/// A new k must beat the previous run's k by this much mean silhouette to replace it.
pub const K_HYSTERESIS: f64 = 0.01;

/// Fits k-means for each candidate k on a sample and picks the best silhouette; then fits all
/// points from that fit's centroids. `k_fixed` skips the selection (still warm-started from a
/// sample fit).
///
/// `previous`: the last run's cluster centroids. They compete as a candidate of their own (refined
/// on the sample from where they were), and win unless another k scores [`K_HYSTERESIS`] better;
/// when they win, the final fit starts from them. New verbatims then move themes a little instead
/// of reshuffling them: what stability across runs needs.
pub fn discover(
    x: &[f32],
    dim: usize,
    seed: u64,
    k_fixed: Option<usize>,
    previous: Option<&[f32]>,
) -> (Fit, Selection) {
    let n = x.len() / dim;
    let mut rng = Rng::new(seed ^ 0x5A5A);
    let sel_idx = sample(n, SELECT_SAMPLE, &mut rng);
    let sil_idx = sample(n, SILHOUETTE_SAMPLE, &mut Rng::new(seed.wrapping_add(1)));
    let sel = rows(x, dim, &sel_idx);
    let sil = rows(x, dim, &sil_idx);
    let max_k = (n / MIN_PER_THEME).max(1);
    let candidates: Vec<usize> = match k_fixed {
        Some(k) => vec![k.clamp(1, n.max(1))],
        None => {
            let c: Vec<usize> = K_GRID.iter().copied().filter(|&k| k <= max_k).collect();
            if c.is_empty() {
                vec![max_k.min(K_GRID[0]).max(1)]
            } else {
                c
            }
        }
    };
    // Pairwise cosines of the silhouette sample, for every candidate and the previous run's.
    let sims = if candidates.len() > 1 || (previous.is_some() && k_fixed.is_none()) {
        dot_matrix(&sil, &sil, dim)
    } else {
        Vec::new()
    };
    let mut curve = Vec::new();
    let mut best: Option<(f64, usize, Vec<f32>)> = None;
    for &k in &candidates {
        let f = kmeans(&sel, dim, k.min(sel_idx.len()), seed, 25);
        let s = if candidates.len() > 1 {
            silhouette_of(&sil, &sims, dim, &f.centroids)
        } else {
            0.0
        };
        curve.push((k, (s * 1e4).round() / 1e4));
        if best.as_ref().is_none_or(|b| s > b.0 + 1e-12) {
            best = Some((s, k, f.centroids));
        }
    }
    let (best_s, mut k, mut init) = best.expect("at least one k");
    if let Some(prev) =
        previous.filter(|p| !p.is_empty() && p.len() % dim == 0 && k_fixed.is_none())
    {
        let kp = prev.len() / dim;
        let f = kmeans_from(&sel, dim, prev.to_vec(), 25, false);
        let s = if kp > 1 {
            silhouette_of(&sil, &sims, dim, &f.centroids)
        } else {
            0.0
        };
        curve.push((kp, (s * 1e4).round() / 1e4));
        if s + K_HYSTERESIS >= best_s {
            (k, init) = (kp, prev.to_vec());
        }
    }
    // To a fixed point, so that a re-run starting from these centroids changes nothing.
    let fit = kmeans_from(x, dim, init, 100, true);
    (
        fit,
        Selection {
            k,
            curve,
            sample: sel_idx.len(),
        },
    )
}

/// Which points are "other": more than [`OTHER_Z`] standard deviations under their theme's mean
/// cosine and in the lowest [`OTHER_MAX_SHARE`] overall. `assign[i]`, `sim[i]`: theme and cosine.
pub fn others(assign: &[usize], sim: &[f32], k: usize) -> Vec<bool> {
    let (cut, global) = other_cuts(assign, sim, k);
    assign
        .iter()
        .zip(sim)
        .map(|(&a, &s)| s < cut[a] && s < global)
        .collect()
}

/// The two thresholds [`others`] applies: per theme, its mean cosine minus [`OTHER_Z`] standard
/// deviations (`f32::MIN` for a theme of fewer than 2 points), and the cosine under which the
/// lowest [`OTHER_MAX_SHARE`] of all points lie (`f32::MIN` when that share is no point). A point
/// is "other" when under both; kept so that points assigned later (a theme model,
/// [`super::model`]) are judged by the thresholds of the run that found the themes.
pub fn other_cuts(assign: &[usize], sim: &[f32], k: usize) -> (Vec<f32>, f32) {
    let n = assign.len();
    let mut sum = vec![0f64; k];
    let mut sq = vec![0f64; k];
    let mut cnt = vec![0usize; k];
    for (&a, &s) in assign.iter().zip(sim) {
        sum[a] += s as f64;
        sq[a] += (s as f64) * (s as f64);
        cnt[a] += 1;
    }
    let cut: Vec<f32> = (0..k)
        .map(|t| {
            if cnt[t] < 2 {
                return f32::MIN;
            }
            let m = sum[t] / cnt[t] as f64;
            let var = (sq[t] / cnt[t] as f64 - m * m).max(0.0);
            (m - OTHER_Z as f64 * var.sqrt()) as f32
        })
        .collect();
    let cap = (n as f64 * OTHER_MAX_SHARE).floor() as usize;
    let global = if cap == 0 {
        f32::MIN
    } else {
        let mut s: Vec<f32> = sim.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        s[cap - 1]
    };
    (cut, global)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points around `centers` unit directions in `dim` dimensions, with noise.
    fn blobs(
        centers: usize,
        per: usize,
        dim: usize,
        noise: f32,
        seed: u64,
    ) -> (Vec<f32>, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for c in 0..centers {
            for _ in 0..per {
                let mut v: Vec<f32> = (0..dim)
                    .map(|d| {
                        let base = if d == c { 1.0 } else { 0.0 };
                        base + noise * (rng.next_f64() as f32 - 0.5)
                    })
                    .collect();
                normalize(&mut v);
                x.extend(v);
                y.push(c);
            }
        }
        (x, y)
    }

    #[test]
    fn finds_the_number_of_well_separated_groups_and_is_deterministic() {
        let (x, y) = blobs(6, 40, 16, 0.6, 1);
        let (fit, sel) = discover(&x, 16, 42, None, None);
        assert_eq!(sel.k, 6, "{:?}", sel.curve);
        // Every group maps to one cluster.
        for c in 0..6 {
            let first = fit.assign[y.iter().position(|&v| v == c).unwrap()];
            assert!(y
                .iter()
                .zip(&fit.assign)
                .filter(|(&v, _)| v == c)
                .all(|(_, &a)| a == first));
        }
        let (again, _) = discover(&x, 16, 42, None, None);
        // Starting from its own centroids, a re-run keeps them.
        let (kept, sel2) = discover(&x, 16, 7, None, Some(&fit.centroids));
        assert_eq!(sel2.k, 6);
        assert_eq!(kept.assign, fit.assign);
        assert_eq!(fit.assign, again.assign);
        assert_eq!(fit.centroids, again.centroids);
    }

    #[test]
    fn tiny_inputs_do_not_panic() {
        let (x, _) = blobs(1, 3, 8, 0.1, 2);
        let (fit, sel) = discover(&x, 8, 1, None, None);
        assert_eq!(fit.assign.len(), 3);
        assert!(sel.k >= 1);
        let (fit, _) = discover(&x[..8], 8, 1, None, None);
        assert_eq!(fit.assign, vec![0]);
    }
}
