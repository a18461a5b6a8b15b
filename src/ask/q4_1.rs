//! Matrix × vector products on Q4_1 weights as the GGUF stores them — the default model's type
//! (issue 16 item 4: decode speed).
//!
//! **Why our own kernel.** candle 0.11's `vec_dot` for Q4_1 is scalar, so the generator used to
//! re-encode every Q4_1 matrix as Q8_0 at load (candle has an AVX2 kernel for that): 143 MB read
//! per decoded token instead of 98 MB, and 8-bit weights multiplied where 4-bit ones would do.
//! Here the 20-byte blocks are read in place: per block of 32 weights, the 16 bytes of nibbles
//! are split into 32 small integers, multiplied with the activation block's 32 signed bytes into
//! sixteen exact 16-bit sums, and the block's two scales are
//! applied in f32 — llama.cpp's `ggml_vec_dot_q4_1_q8_1`, in safe Rust that the compiler
//! vectorises (std::arch intrinsics would need `unsafe` at the call: a function enabling AVX2
//! is unsafe to call from one that does not declare it, even with AVX2 on for the whole build).
//!
//! **The arithmetic** is candle's and llama.cpp's: a Q4_1 block is `d`, `m` (f16) and 32 4-bit
//! `q` (element `j < 16` in the low nibble of byte `j`, element `j + 16` in its high nibble), its
//! values `d·q + m`; the input row is quantised to Q8_1 blocks (`dₓ = amax / 127` rounded to f16,
//! `qₓ = round(x / dₓ)`, `sₓ = dₓ · Σqₓ` in f16), and one block's product is
//! `d·dₓ·Σ q·qₓ + m·sₓ`, the integer sum exact. So a row's dot product differs from candle's Q4_1
//! path only by the order of the f32 additions over blocks (tested against a plain
//! dequantise-then-dot reference below, and against candle's `quantized_llama` on whole models
//! in `ask::llama`).

use std::sync::LazyLock;

use rayon::prelude::*;

/// Weights per block.
pub const QK: usize = 32;
/// Bytes per Q4_1 block: `d` and `m` as f16, 16 bytes of nibbles.
pub const BLOCK_BYTES: usize = 20;

/// Rows of the output a parallel task computes at least (a task is then several microseconds
/// of work, well above rayon's cost of handing it out).
const MIN_ROWS_PER_TASK: usize = 32;

/// One input row quantised to Q8_1 blocks: the 32 signed bytes of each block, its scale `dₓ` and
/// `sₓ = dₓ · Σqₓ`, both as the f32 values of their f16 roundings.
pub struct Q8_1Row {
    qs: Vec<[i8; QK]>,
    d: Vec<f32>,
    s: Vec<f32>,
}

impl Q8_1Row {
    /// Quantises `x` (a multiple of [`QK`] long) as candle's and llama.cpp's `quantize_row_q8_1`.
    pub fn new(x: &[f32]) -> Self {
        debug_assert_eq!(x.len() % QK, 0);
        let nb = x.len() / QK;
        let mut row = Q8_1Row {
            qs: Vec::with_capacity(nb),
            d: Vec::with_capacity(nb),
            s: Vec::with_capacity(nb),
        };
        for b in x.chunks_exact(QK) {
            let amax = b.iter().fold(0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let d16 = f16_to_f32(f32_to_f16(d));
            let mut q = [0i8; QK];
            let mut sum = 0i32;
            for (q, v) in q.iter_mut().zip(b) {
                *q = (v * id).round() as i8;
                sum += i32::from(*q);
            }
            // f16 × f16 rounded to f16, as `half`'s multiplication that candle uses.
            let s = f16_to_f32(f32_to_f16(f16_to_f32(f32_to_f16(sum as f32)) * d16));
            row.qs.push(q);
            row.d.push(d16);
            row.s.push(s);
        }
        row
    }

    /// Blocks in the row.
    pub fn blocks(&self) -> usize {
        self.qs.len()
    }
}

/// Every half-precision number's f32 value, by bit pattern: a block's two scales are two
/// loads (256 KB, built once; the entries a model uses stay in cache).
static F16_TABLE: LazyLock<Box<[f32; 65536]>> = LazyLock::new(|| {
    let mut t = Box::new([0f32; 65536]);
    for (h, v) in t.iter_mut().enumerate() {
        *v = f16_to_f32(h as u16);
    }
    t
});

/// The dot product of one Q4_1 weight row (`x.blocks()` blocks of [`BLOCK_BYTES`]) with a
/// quantised input row: the AVX2 kernel ([`dot_avx2`]) where the CPU has AVX2 and FMA, else the
/// portable one ([`dot_portable`]). The two differ only in the order of the f32 additions
/// (eight lanes against sixteen; tested against the same reference).
pub fn dot(w: &[u8], x: &Q8_1Row) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if *HAS_AVX2_FMA {
        #[allow(unsafe_code)]
        // SAFETY: `dot_avx2` is safe code except that it may only run on a CPU with AVX2 and
        // FMA (its `#[target_feature]`); `HAS_AVX2_FMA` is true only where the running CPU
        // reports both (`is_x86_feature_detected!`).
        return unsafe { dot_avx2(w, x) };
    }
    dot_portable(w, x)
}

/// Whether this CPU runs [`dot_avx2`] (checked once).
#[cfg(target_arch = "x86_64")]
static HAS_AVX2_FMA: LazyLock<bool> = LazyLock::new(|| {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
});

/// [`dot_portable`] with AVX2 instructions, as llama.cpp's `ggml_vec_dot_q4_1_q8_1`: per block,
/// the 16 bytes of nibbles split into 32 unsigned bytes (low nibbles, then high), multiplied
/// with the activation's 32 signed bytes and summed in pairs (`vpmaddubsw`: at most
/// 2 × 15 × 127, no saturation), pairs of those summed into eight 32-bit integers (`vpmaddwd`),
/// converted to f32 and added with the block's scale `d·dₓ` (one `vfmadd231ps`); `m·sₓ` summed
/// apart. The integer sums are exact, as in the portable kernel; only the f32 additions differ
/// in order. 1.4–2× the portable kernel's speed on one core (a 1536 × 576 matrix from cache:
/// 6–8.8 GB/s against 4.4).
///
/// Everything in it is safe code; std::arch's intrinsics are `#[target_feature]` functions,
/// callable without `unsafe` from a function that enables the same features — this one, which
/// must therefore only be called where the CPU has them ([`dot`] checks).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(w: &[u8], x: &Q8_1Row) -> f32 {
    use std::arch::x86_64::*;
    debug_assert_eq!(w.len(), x.blocks() * BLOCK_BYTES);
    let table: &[f32; 65536] = &F16_TABLE;
    let (blocks, _) = w.as_chunks::<BLOCK_BYTES>();
    let low_nibbles = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    let mut mins = 0f32;
    // Eight bytes as one little-endian i64 (the compiler makes each set of them one load).
    let le = |b: &[u8]| i64::from_le_bytes(std::array::from_fn(|i| b[i]));
    let le_i8 = |b: &[i8]| i64::from_le_bytes(std::array::from_fn(|i| b[i] as u8));
    for (blk, ((xq, &xd), &xs)) in blocks.iter().zip(x.qs.iter().zip(&x.d).zip(&x.s)) {
        let d = table[usize::from(u16::from_le_bytes([blk[0], blk[1]]))];
        let m = table[usize::from(u16::from_le_bytes([blk[2], blk[3]]))];
        let packed = _mm_set_epi64x(le(&blk[12..20]), le(&blk[4..12]));
        // Bytes 0–15: the low nibbles (elements 0–15); bytes 16–31: the high ones (16–31).
        let q = _mm256_and_si256(
            _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed),
            low_nibbles,
        );
        let y = _mm256_set_epi64x(
            le_i8(&xq[24..32]),
            le_i8(&xq[16..24]),
            le_i8(&xq[8..16]),
            le_i8(&xq[0..8]),
        );
        let sums = _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), ones);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * xd), _mm256_cvtepi32_ps(sums), acc);
        mins = m.mul_add(xs, mins);
    }
    let four = _mm_add_ps(_mm256_extractf128_ps(acc, 1), _mm256_castps256_ps128(acc));
    let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
    let one = _mm_add_ss(two, _mm_shuffle_ps(two, two, 1));
    _mm_cvtss_f32(one) + mins
}

/// [`dot`] in portable safe Rust.
///
/// Written for the auto-vectoriser (checked in the assembly with AVX2: one 16-byte load of
/// nibbles per block, `vpmovzxbw` / `vpmovsxbw` widening, two `vpmullw` and a `vpaddw` for the
/// sixteen exact 16-bit sums `q_j·x_j + q_{j+16}·x_{j+16}` (at most 2 × 15 × 128 in size),
/// two `vcvtdq2ps` and two `vfmadd231ps` into sixteen f32 lanes; no horizontal work until the
/// row's end). The block scale cannot wait for the row's end — it differs per block — so each
/// block's sums are converted to f32 and scaled as they come, as llama.cpp does.
pub fn dot_portable(w: &[u8], x: &Q8_1Row) -> f32 {
    debug_assert_eq!(w.len(), x.blocks() * BLOCK_BYTES);
    let table: &[f32; 65536] = &F16_TABLE;
    let (blocks, _) = w.as_chunks::<BLOCK_BYTES>();
    let mut acc = [0f32; QK / 2];
    let mut mins = 0f32;
    for (blk, ((xq, &xd), &xs)) in blocks.iter().zip(x.qs.iter().zip(&x.d).zip(&x.s)) {
        let d = table[usize::from(u16::from_le_bytes([blk[0], blk[1]]))];
        let m = table[usize::from(u16::from_le_bytes([blk[2], blk[3]]))];
        let mut p = [0i16; QK / 2];
        for (j, p) in p.iter_mut().enumerate() {
            let b = blk[4 + j];
            *p = i16::from(b & 0x0f) * i16::from(xq[j]) + i16::from(b >> 4) * i16::from(xq[j + 16]);
        }
        let scale = d * xd;
        for (a, p) in acc.iter_mut().zip(p) {
            *a = f32::from(p).mul_add(scale, *a);
        }
        mins = m.mul_add(xs, mins);
    }
    acc.iter().sum::<f32>() + mins
}

/// `y = x · Wᵀ` for `m` input rows of `k` (a multiple of [`QK`]) and a Q4_1 matrix of `n` rows
/// (`w`: `n × k / QK` blocks): `m × n`, parallel over the weight rows, so each weight block is
/// read once for all the input rows.
pub fn matmul(w: &[u8], n: usize, k: usize, x: &[f32], m: usize) -> Vec<f32> {
    debug_assert_eq!(k % QK, 0);
    debug_assert_eq!(w.len(), n * k / QK * BLOCK_BYTES);
    debug_assert_eq!(x.len(), m * k);
    let rows: Vec<Q8_1Row> = x.chunks_exact(k).map(Q8_1Row::new).collect();
    let row_bytes = k / QK * BLOCK_BYTES;
    let tasks = (n / MIN_ROWS_PER_TASK).max(1);
    let per_task = n.div_ceil(tasks.min(4 * rayon::current_num_threads()).max(1));
    // Computed weight-row-major (n × m), so that a task writes one contiguous stretch.
    let mut yt = vec![0f32; n * m];
    yt.par_chunks_mut(per_task * m)
        .zip(w.par_chunks(per_task * row_bytes))
        .for_each(|(out, wt)| {
            for (o, wr) in out.chunks_exact_mut(m).zip(wt.chunks_exact(row_bytes)) {
                for (o, r) in o.iter_mut().zip(&rows) {
                    *o = dot(wr, r);
                }
            }
        });
    if m == 1 {
        return yt;
    }
    let mut y = vec![0f32; m * n];
    for (j, col) in yt.chunks_exact(m).enumerate() {
        for (i, v) in col.iter().enumerate() {
            y[i * n + j] = *v;
        }
    }
    y
}

/// Decodes Q4_1 blocks into `out` (`d·q + m` per weight, as candle's `to_float`), in parallel.
pub fn dequantize(w: &[u8], out: &mut [f32]) {
    debug_assert_eq!(w.len() / BLOCK_BYTES * QK, out.len());
    const CHUNK: usize = 1024;
    let table: &[f32; 65536] = &F16_TABLE;
    out.par_chunks_mut(CHUNK * QK)
        .zip(w.par_chunks(CHUNK * BLOCK_BYTES))
        .for_each(|(o, w)| {
            for (ob, blk) in o.chunks_exact_mut(QK).zip(w.chunks_exact(BLOCK_BYTES)) {
                let d = table[usize::from(u16::from_le_bytes([blk[0], blk[1]]))];
                let m = table[usize::from(u16::from_le_bytes([blk[2], blk[3]]))];
                let (lo, hi) = ob.split_at_mut(QK / 2);
                for ((l, h), byte) in lo.iter_mut().zip(hi).zip(&blk[4..]) {
                    *l = f32::from(byte & 0x0f) * d + m;
                    *h = f32::from(byte >> 4) * d + m;
                }
            }
        });
}

/// An IEEE half-precision number's value, exactly.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    match exp {
        // Zero and subnormals: man × 2^−24.
        0 => sign * man as f32 * f32::from_bits(0x3380_0000),
        31 if man == 0 => sign * f32::INFINITY,
        31 => f32::NAN,
        _ => f32::from_bits((u32::from(h & 0x8000) << 16) | ((exp + 112) << 23) | (man << 13)),
    }
}

/// The nearest half-precision number to `x` (ties to even; overflow to infinity), as `half`'s
/// `f16::from_f32` and the F16C instruction round.
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    // The significand with its implicit bit, and how many of its low bits a half cannot keep:
    // 13 for a normal half, more for a subnormal one (whose unit is 2^−24).
    let (sig, shift) = if e > 0 {
        (man, 13u32)
    } else if e >= -10 {
        (man | 0x80_0000, (14 - e) as u32)
    } else {
        return sign;
    };
    let kept = sig >> shift;
    let rest = sig & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    let round = u32::from(rest > half || (rest == half && kept & 1 == 1));
    let bits = if e > 0 {
        ((e as u32) << 10) + kept + round
    } else {
        kept + round
    };
    // A carry out of the significand steps into the next exponent (or to infinity): the bit
    // layout makes that the right encoding.
    sign | bits as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A Q4_1 block from its parts.
    fn block(d: u16, m: u16, q: &[u8; QK]) -> Vec<u8> {
        let mut b = Vec::with_capacity(BLOCK_BYTES);
        b.extend_from_slice(&d.to_le_bytes());
        b.extend_from_slice(&m.to_le_bytes());
        for j in 0..QK / 2 {
            b.push(q[j] | (q[j + QK / 2] << 4));
        }
        b
    }

    /// The reference: weights dequantised to f32, the input's Q8_1 blocks dequantised to f32,
    /// then a plain dot product in f64.
    fn reference(w: &[u8], x: &Q8_1Row) -> f64 {
        let mut wf = vec![0f32; w.len() / BLOCK_BYTES * QK];
        dequantize(w, &mut wf);
        let mut s = 0f64;
        for (b, q) in x.qs.iter().enumerate() {
            for j in 0..QK {
                s += f64::from(wf[b * QK + j]) * f64::from(q[j]) * f64::from(x.d[b]);
            }
        }
        s
    }

    /// The half-precision values a test draws scales from: finite, of either sign, from
    /// subnormal to ~100 (a weight block's `d` and `m` are small in practice).
    fn scale() -> impl Strategy<Value = u16> {
        (any::<bool>(), 0u16..0x5600).prop_map(|(neg, h)| h | if neg { 0x8000 } else { 0 })
    }

    fn blocks(nb: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec((scale(), scale(), proptest::array::uniform32(0u8..16)), nb)
            .prop_map(|bs| bs.iter().flat_map(|(d, m, q)| block(*d, *m, q)).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The kernel against dequantise-then-dot (in f64, on the input's Q8_1 values).
        /// Tolerance: 1e-5 of Σ|wᵢ·xᵢ| — the kernel's f32 rounding (the product d·dₓ, the
        /// exact integer sums converted, one multiply-add per block, the sixteen lanes summed at
        /// the end) is a few ulps of the magnitudes summed — plus 2e-3 of Σ|m·dₓ·Σqₓ| for
        /// the f16 roundings of sₓ (Σqₓ, then dₓ·Σqₓ: 2^−11 each, twice that for margin), which
        /// the Q8_1 format (candle's, llama.cpp's) stores.
        #[test]
        fn kernel_is_dequantize_then_dot(
            nb in 1usize..40,
            seed in any::<u64>(),
            wbytes in blocks(40),
        ) {
            let w = &wbytes[..nb * BLOCK_BYTES];
            let mut s = seed;
            let x: Vec<f32> = (0..nb * QK)
                .map(|_| {
                    s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 8.0
                })
                .collect();
            let xq = Q8_1Row::new(&x);
            let want = reference(w, &xq);
            // What the rounding scales with: the products summed, and the m·sₓ terms, whose
            // sₓ is rounded to f16 (twice: Σqₓ above 2048, then dₓ·Σqₓ) — 2 × 2^−11 relative.
            let mut wf = vec![0f32; nb * QK];
            dequantize(w, &mut wf);
            let products: f64 = (0..nb * QK)
                .map(|i| (f64::from(wf[i]) * f64::from(xq.qs[i / QK][i % QK]) * f64::from(xq.d[i / QK])).abs())
                .sum();
            let mins: f64 = (0..nb)
                .map(|b| {
                    let m = f16_to_f32(u16::from_le_bytes([w[b * BLOCK_BYTES + 2], w[b * BLOCK_BYTES + 3]]));
                    let sq: i32 = xq.qs[b].iter().map(|&q| i32::from(q)).sum();
                    f64::from(m).abs() * f64::from(xq.d[b]) * f64::from(sq).abs()
                })
                .sum();
            let tol = 1e-5 * products + 2e-3 * mins + 1e-30;
            // Both kernels: the one this CPU runs and the portable one.
            for got in [dot(w, &xq), dot_portable(w, &xq)] {
                let err = (f64::from(got) - want).abs();
                prop_assert!(err <= tol, "got {got}, want {want}, err {err}, tolerance {tol}");
            }
        }

        /// A matrix product is each row's dot product, whatever the number of input rows.
        #[test]
        fn matmul_is_rows_of_dots(n in 1usize..80, m in 1usize..4, nb in 1usize..4, seed in any::<u64>()) {
            let mut s = seed;
            let mut r = || {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (s >> 33) as u32
            };
            let w: Vec<u8> = (0..n * nb)
                .flat_map(|_| {
                    let q: [u8; QK] = std::array::from_fn(|_| (r() % 16) as u8);
                    block(0x2000 + (r() % 0x1000) as u16, 0xa000 + (r() % 0x1000) as u16, &q)
                })
                .collect();
            let x: Vec<f32> = (0..m * nb * QK).map(|_| (r() % 2000) as f32 / 100.0 - 10.0).collect();
            let y = matmul(&w, n, nb * QK, &x, m);
            let rb = nb * BLOCK_BYTES;
            for i in 0..m {
                let xq = Q8_1Row::new(&x[i * nb * QK..(i + 1) * nb * QK]);
                for j in 0..n {
                    prop_assert_eq!(y[i * n + j], dot(&w[j * rb..(j + 1) * rb], &xq));
                }
            }
        }
    }

    #[test]
    fn f16_rounding_is_to_nearest_even() {
        // Every finite half converts back to itself, and each midpoint between neighbours
        // rounds to the one with an even significand.
        for h in 0u16..=0xffff {
            let exp = (h >> 10) & 0x1f;
            if exp == 31 {
                continue;
            }
            let v = f16_to_f32(h);
            assert_eq!(f32_to_f16(v), h, "{h:#x}");
            if h & 0x7fff < 0x7bff {
                let next = f16_to_f32(h + 1);
                let mid = (f64::from(v) + f64::from(next)) / 2.0;
                let even = if h & 1 == 0 { h } else { h + 1 };
                assert_eq!(f32_to_f16(mid as f32), even, "midpoint above {h:#x}");
                let below = f32::from_bits((mid as f32).to_bits() - 1);
                let above = f32::from_bits((mid as f32).to_bits() + 1);
                // `mid` lies strictly between two halves; its f32 neighbours do not tie.
                if v >= 0.0 {
                    assert_eq!(f32_to_f16(below), h, "below the midpoint above {h:#x}");
                    assert_eq!(f32_to_f16(above), h + 1, "above the midpoint above {h:#x}");
                }
            }
        }
        assert_eq!(
            f32_to_f16(65520.0),
            0x7c00,
            "rounds up past the largest half"
        );
        assert_eq!(f32_to_f16(65519.0), 0x7bff);
        assert_eq!(f32_to_f16(1e-9), 0);
        assert_eq!(f32_to_f16(-f32::INFINITY), 0xfc00);
    }

    #[test]
    fn q8_1_quantization_is_candles() {
        // Values of either sign and a block of zeros: q = round(x / d), s = d·Σq (f16).
        let mut x: Vec<f32> = (0..QK).map(|i| (i as f32 - 11.3) * 0.37).collect();
        x.extend(std::iter::repeat_n(0.0, QK));
        let r = Q8_1Row::new(&x);
        let amax = (31.0 - 11.3f32) * 0.37;
        assert_eq!(r.d[0], f16_to_f32(f32_to_f16(amax / 127.0)));
        assert_eq!(r.qs[0][31], 127);
        assert_eq!(
            r.qs[0][0],
            ((-11.3f32 * 0.37) * (1.0 / (amax / 127.0))).round() as i8
        );
        let sum: i32 = r.qs[0].iter().map(|&q| i32::from(q)).sum();
        assert!((r.s[0] - sum as f32 * r.d[0]).abs() <= (sum as f32 * r.d[0]).abs() * 1e-3);
        assert_eq!((r.d[1], r.s[1], r.qs[1]), (0.0, 0.0, [0; QK]));
    }
}
