//! Vector maths on `f32` slices: dot product, norm, L2 normalisation, cosine, the dot-product
//! matrix, the normalised mean and per-language mean centring ([`LanguageMeans`]) — once, for every stage that compares embeddings (vector
//! search, clustering, sentence vectors, quotes, citations, sentiment).
//!
//! **Why one module.** These were written five times with different answers at the edges (one
//! normalisation turned a zero vector into NaN-free zeros by clamping the norm at 1e-12, another
//! skipped it); a change of one copy silently made two stages disagree. Here there is one policy:
//!
//! - **Zero vectors stay zero.** [`l2_normalize`] leaves a vector whose norm is 0 (or not finite)
//!   as it is, never NaN; every other vector gets unit norm. A zero vector's cosine with anything
//!   is therefore 0 — "unrelated", which is what an empty text or a cancelled mean should be.
//! - **Determinism.** Every sum runs in a fixed order that depends only on the length, never on
//!   the thread count, so the same inputs give the same bits on every run.
//!
//! [`dot`] is the hot loop of vector search (the HNSW distance and the exact scan): it keeps
//! eight independent accumulators so that LLVM vectorises it (a plain `zip().sum()` is a serial
//! dependency chain that does not vectorise). [`dot_matrix`] is one gemm call for all pairs.
//!
//! This is the bottom layer: it imports nothing from the rest of the crate.

use gemm::Parallelism;

/// Dot product of two vectors of the same length (extra elements of the longer are ignored),
/// with eight accumulators so it vectorises.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Euclidean (L2) norm. The squares are summed in order: normalisation is not a hot loop, and
/// this order is the one the embeddings already stored were normalised with (bit for bit).
pub fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// Scales `v` to unit L2 norm in place. A zero vector (or one whose norm is not finite) is left
/// as it is: see the module docs.
pub fn l2_normalize(v: &mut [f32]) {
    let n = norm(v);
    if n > 0.0 && n.is_finite() {
        for x in v.iter_mut() {
            *x /= n;
        }
    }
}

/// Cosine similarity; 0 when either vector is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    dot(a, b) / (na * nb)
}

/// The element-wise mean of `rows` (each `dim` long), L2-normalised: the centroid direction of
/// unit vectors (a zero vector when there are no rows or they cancel out).
pub fn normalized_mean<'a>(rows: impl IntoIterator<Item = &'a [f32]>, dim: usize) -> Vec<f32> {
    let mut m = vec![0f32; dim];
    for v in rows {
        for (a, b) in m.iter_mut().zip(v) {
            *a += b;
        }
    }
    // Dividing by the count would not change the direction.
    l2_normalize(&mut m);
    m
}

/// Languages with at least this many vectors count for per-language centring.
pub const MIN_LANGUAGE_DOCS: usize = 10;

/// The mean vector of each language of a multilingual pool, to take out of every vector of that
/// language before vectors are compared ([`LanguageMeans::center`]).
///
/// **Why.** Multilingual models (multilingual-e5) put a language component into every vector:
/// texts in the query's own language get a bonus, so in a French/English pool a French text
/// finds its English translation at rank 1 only 88% of the time, and k-means splits by language
/// before topic (240 texts, 120 translation pairs: 0 pairs in one theme). Subtracting each
/// language's mean and renormalising removes that component (BENCHMARKS.md). Themes centre the
/// vectors they cluster, the vector index the vectors it holds and the query it is asked.
///
/// Only pools with at least two languages of [`MIN_LANGUAGE_DOCS`] vectors each get means
/// ([`LanguageMeans::compute`] gives `None` otherwise): a one-language pool is left as it is.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct LanguageMeans {
    /// Language code → the (unnormalised) mean of its vectors.
    means: std::collections::BTreeMap<String, Vec<f32>>,
}

impl LanguageMeans {
    /// The mean of each language over `rows` (language, vector of `dim`); `None` unless two or
    /// more languages have at least [`MIN_LANGUAGE_DOCS`] vectors (smaller ones get no mean).
    pub fn compute<'a, L: AsRef<str>>(
        rows: impl IntoIterator<Item = (L, &'a [f32])>,
        dim: usize,
    ) -> Option<LanguageMeans> {
        let mut sums: std::collections::BTreeMap<String, (Vec<f64>, usize)> = Default::default();
        for (lang, v) in rows {
            let e = match sums.get_mut(lang.as_ref()) {
                Some(e) => e,
                None => sums
                    .entry(lang.as_ref().to_string())
                    .or_insert_with(|| (vec![0f64; dim], 0)),
            };
            for (a, b) in e.0.iter_mut().zip(v) {
                *a += f64::from(*b);
            }
            e.1 += 1;
        }
        let means: std::collections::BTreeMap<String, Vec<f32>> = sums
            .into_iter()
            .filter(|(_, (_, n))| *n >= MIN_LANGUAGE_DOCS)
            .map(|(l, (s, n))| (l, s.iter().map(|v| (v / n as f64) as f32).collect()))
            .collect();
        (means.len() >= 2).then_some(LanguageMeans { means })
    }

    /// The languages that have a mean.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.means.keys().map(String::as_str)
    }

    /// The mean of `lang`, if it has one.
    pub fn get(&self, lang: &str) -> Option<&[f32]> {
        self.means.get(lang).map(Vec::as_slice)
    }

    /// `v − mean(lang)`, renormalised; `v` unchanged when `lang` has no mean.
    pub fn center(&self, lang: &str, v: &mut [f32]) {
        center(v, self.get(lang));
    }

    /// Centres a query vector: with the mean of `lang` (the language the query is written in)
    /// when it has one, else with the mean closest to the vector (the language the model reads
    /// in it), so a query is always compared in the centred space the indexed vectors live in.
    pub fn center_query(&self, lang: &str, v: &mut [f32]) {
        let mean = self.get(lang).or_else(|| {
            self.means
                .values()
                .max_by(|a, b| dot(v, a).total_cmp(&dot(v, b)))
                .map(Vec::as_slice)
        });
        center(v, mean);
    }
}

/// `v − mean`, renormalised (no-op without a mean).
pub fn center(v: &mut [f32], mean: Option<&[f32]>) {
    if let Some(m) = mean {
        for (a, b) in v.iter_mut().zip(m) {
            *a -= b;
        }
        l2_normalize(v);
    }
}

/// Dot products of every row of `a` (n×dim, row-major) with every row of `b` (k×dim): an n×k
/// row-major matrix (cosines, for unit vectors). One gemm, parallel over blocks of the output;
/// each element is summed in a fixed order, so results do not depend on the thread count.
pub fn dot_matrix(a: &[f32], b: &[f32], dim: usize) -> Vec<f32> {
    assert!(dim > 0 && a.len().is_multiple_of(dim) && b.len().is_multiple_of(dim));
    let (n, k) = (a.len() / dim, b.len() / dim);
    let mut out = vec![0.0f32; n * k];
    if n == 0 || k == 0 {
        return out;
    }
    let par = if n * k * dim > 1 << 20 {
        Parallelism::Rayon(rayon::current_num_threads())
    } else {
        Parallelism::None
    };
    matmul(
        (n, k, dim),
        &mut out,
        k,
        false,
        (a, dim, 1),
        (b, 1, dim),
        1.0,
        par,
    );
    out
}

/// `dst[m×n] (+)= scale · lhs[m×k] · rhs[k×n]`, all row-major-ish with explicit strides.
///
/// Strides are in elements. `dst` has unit column stride and row stride `dst_rs`; the operands
/// may be arbitrary (non-negative) strided views, e.g. one attention head inside the fused QKV
/// buffer, or a weight read transposed. With `accumulate` the product is added to what `dst`
/// holds (the residual connection), otherwise it overwrites it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (&[f32], usize, usize),
    (rhs, rhs_rs, rhs_cs): (&[f32], usize, usize),
    scale: f32,
    parallelism: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(m == 1 || dst_rs >= n, "matmul: dst rows overlap");
    assert!(
        (m - 1) * dst_rs + n <= dst.len(),
        "matmul: dst out of bounds"
    );
    if k == 0 {
        if !accumulate {
            for row in 0..m {
                dst[row * dst_rs..row * dst_rs + n].fill(0.0);
            }
        }
        return;
    }
    assert!(
        (m - 1) * lhs_rs + (k - 1) * lhs_cs < lhs.len(),
        "matmul: lhs out of bounds"
    );
    assert!(
        (k - 1) * rhs_rs + (n - 1) * rhs_cs < rhs.len(),
        "matmul: rhs out of bounds"
    );
    let stride = |s: usize| isize::try_from(s).expect("matmul: stride overflows isize");
    #[allow(unsafe_code)]
    // SAFETY: gemm reads lhs at `i*lhs_rs + p*lhs_cs` (i < m, p < k), rhs at `p*rhs_rs + j*rhs_cs`
    // (j < n) and writes dst at `i*dst_rs + j` — the asserts above bound every such index by the
    // slice lengths, and `dst_rs >= n` keeps distinct (i, j) on distinct elements. `dst` is a
    // unique borrow, so it cannot alias `lhs` or `rhs`. gemm keeps no pointer after returning.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            stride(dst_rs),
            accumulate,
            lhs.as_ptr(),
            stride(lhs_cs),
            stride(lhs_rs),
            rhs.as_ptr(),
            stride(rhs_cs),
            stride(rhs_rs),
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    #[test]
    fn zero_vectors_stay_zero_and_others_get_unit_norm() {
        let mut v = [3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut z = [0.0; 5];
        l2_normalize(&mut z);
        assert_eq!(z, [0.0; 5]);
        assert_eq!(cosine(&z, &v), 0.0);
        assert!(normalized_mean([&[1.0, 0.0][..], &[-1.0, 0.0][..]], 2) == vec![0.0, 0.0]);
        assert!(normalized_mean(std::iter::empty::<&[f32]>(), 3) == vec![0.0; 3]);
        // A tiny but non-zero vector still gets unit norm (no clamp at 1e-12).
        let mut tiny = [3e-15f32, 4e-15];
        l2_normalize(&mut tiny);
        assert!(
            (tiny[0] - 0.6).abs() < 1e-6 && (tiny[1] - 0.8).abs() < 1e-6,
            "{tiny:?}"
        );
    }

    #[test]
    fn dot_matrix_matches_dot() {
        let a: Vec<f32> = (0..3 * 17).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..4 * 17).map(|i| (i as f32 * 0.11).cos()).collect();
        let m = dot_matrix(&a, &b, 17);
        for i in 0..3 {
            for j in 0..4 {
                let d = dot(&a[i * 17..(i + 1) * 17], &b[j * 17..(j + 1) * 17]);
                assert!((m[i * 4 + j] - d).abs() < 1e-5, "{i},{j}");
            }
        }
        assert!(dot_matrix(&[], &b, 17).is_empty());
    }

    fn vector() -> impl Strategy<Value = Vec<f32>> {
        (0usize..70).prop_flat_map(|n| prop::collection::vec(-100f32..100f32, n))
    }

    fn pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (0usize..70).prop_flat_map(|n| {
            (
                prop::collection::vec(-100f32..100f32, n),
                prop::collection::vec(-100f32..100f32, n),
            )
        })
    }

    proptest! {
        #[test]
        fn normalisation_gives_unit_norm_or_leaves_zero(mut v in vector()) {
            let before = v.clone();
            let zero = before.iter().all(|x| *x == 0.0);
            l2_normalize(&mut v);
            prop_assert!(v.iter().all(|x| x.is_finite()));
            if zero {
                prop_assert_eq!(&v, &before);
            } else {
                prop_assert!((norm(&v) - 1.0).abs() < 1e-5, "norm {}", norm(&v));
                // Same direction: the cosine with the original is 1.
                prop_assert!((cosine(&v, &before) - 1.0).abs() < 1e-4);
                // Idempotent, up to rounding.
                let mut again = v.clone();
                l2_normalize(&mut again);
                for (a, b) in again.iter().zip(&v) {
                    prop_assert!((a - b).abs() < 1e-6);
                }
            }
        }

        #[test]
        fn dot_is_symmetric_and_close_to_exact((a, b) in pair()) {
            prop_assert_eq!(dot(&a, &b).to_bits(), dot(&b, &a).to_bits());
            let exact = naive_dot(&a, &b);
            let scale: f64 = a.iter().zip(&b).map(|(x, y)| f64::from((x * y).abs())).sum();
            prop_assert!((f64::from(dot(&a, &b)) - exact).abs() <= 1e-5 * scale.max(1.0));
            prop_assert!((f64::from(dot(&a, &a)) - f64::from(norm(&a)).powi(2)).abs()
                <= 1e-4 * f64::from(norm(&a)).powi(2).max(1.0));
        }

        #[test]
        fn cosine_is_symmetric_and_bounded((a, b) in pair()) {
            let c = cosine(&a, &b);
            prop_assert!((c - cosine(&b, &a)).abs() < 1e-6);
            prop_assert!((-1.0001..=1.0001).contains(&c), "{c}");
        }
    }

    /// A pool where every vector is `topic + language offset`: the raw nearest neighbour of a
    /// French text is another French text (the offset dominates), the centred one its
    /// translation; one language, or a second one under the minimum, gives no means.
    #[test]
    fn centring_per_language_takes_the_language_out_of_the_comparison() {
        let dim = 10;
        let topic = |i: usize| -> Vec<f32> {
            let mut v = vec![0f32; dim];
            v[i % 4] = 1.0;
            v[4 + i / 4] = 0.4;
            v
        };
        let with = |mut v: Vec<f32>, lang: usize| {
            v[if lang == 0 { 8 } else { 9 }] += 3.0;
            l2_normalize(&mut v);
            v
        };
        let fr: Vec<Vec<f32>> = (0..12).map(|i| with(topic(i), 0)).collect();
        let en: Vec<Vec<f32>> = (0..12).map(|i| with(topic(i), 1)).collect();
        let rows = || {
            fr.iter()
                .map(|v| ("fr", v.as_slice()))
                .chain(en.iter().map(|v| ("en", v.as_slice())))
        };
        let means = LanguageMeans::compute(rows(), dim).expect("two languages of 12");
        assert_eq!(means.languages().collect::<Vec<_>>(), ["en", "fr"]);
        // Raw: French text 0's nearest other text is French.
        let nearest = |q: &[f32], pool: &[(usize, Vec<f32>)]| {
            pool.iter()
                .max_by(|a, b| dot(q, &a.1).total_cmp(&dot(q, &b.1)))
                .unwrap()
                .0
        };
        let pool_raw: Vec<(usize, Vec<f32>)> = (1..12)
            .map(|i| (100 + i, fr[i].clone()))
            .chain((0..12).map(|i| (i, en[i].clone())))
            .collect();
        assert!(nearest(&fr[0], &pool_raw) >= 100, "raw: the language wins");
        let centred = |lang: &str, v: &[f32]| {
            let mut c = v.to_vec();
            means.center(lang, &mut c);
            c
        };
        let pool: Vec<(usize, Vec<f32>)> = (1..12)
            .map(|i| (100 + i, centred("fr", &fr[i])))
            .chain((0..12).map(|i| (i, centred("en", &en[i]))))
            .collect();
        for i in 0..12 {
            let mut q = fr[i].clone();
            means.center_query("fr", &mut q);
            let pool_i: Vec<(usize, Vec<f32>)> =
                pool.iter().filter(|p| p.0 != 100 + i).cloned().collect();
            assert_eq!(nearest(&q, &pool_i), i, "French {i} finds its translation");
            // A language without a mean: the nearest mean (French) is used.
            let mut q2 = fr[i].clone();
            means.center_query("de", &mut q2);
            assert_eq!(q2, q);
        }
        assert!((norm(&pool[0].1) - 1.0).abs() < 1e-5);
        // One language, or a second one under the minimum: no means.
        assert!(LanguageMeans::compute(fr.iter().map(|v| ("fr", v.as_slice())), dim).is_none());
        let few = fr.iter().map(|v| ("fr", v.as_slice())).chain(
            en[..MIN_LANGUAGE_DOCS - 1]
                .iter()
                .map(|v| ("en", v.as_slice())),
        );
        assert!(LanguageMeans::compute(few, dim).is_none());
        // Without a mean nothing moves.
        let mut v = fr[0].clone();
        means.center("de", &mut v);
        assert_eq!(v, fr[0]);
    }
}
