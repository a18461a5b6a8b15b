//! CPU kernels for the BERT forward pass: matrix multiply, layer norm, softmax, GELU.
//!
//! Why hand-written: candle's CPU ops each allocate a fresh tensor and run one element-wise pass,
//! its layouts force `contiguous()` copies around attention, and its matmul always asks gemm for
//! the process-wide thread count. Here the forward owns its buffers, fuses bias / residual /
//! normalisation into the passes that must touch the data anyway, and picks gemm's parallelism
//! per call (one thread per batch when batches already run in parallel).
//!
//! The element-wise kernels are written over fixed-width lanes so that LLVM vectorises them
//! (AVX2/FMA per `.cargo/config.toml`); their transcendental functions follow the same
//! approximations PyTorch's vectorised CPU kernels use, so results agree with
//! sentence-transformers to ~1e-6.

/// Lane width for the element-wise loops: one AVX2 register of f32.
const LANES: usize = 8;

/// The strided matrix multiply lives in [`crate::vecmath`] (the dot-product matrix of the
/// theme stages uses it too); the forward pass calls it from here.
pub(crate) use crate::vecmath::matmul;

/// `e^x` for f32, vectorisable: Cephes' `expf` (range reduction by ln 2, degree-6 polynomial,
/// ~1 ulp), which is what PyTorch's `Vectorized<float>::exp` implements too.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Round to nearest by the 1.5·2^23 trick (vectorises, unlike `f32::round`).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.336_55, 88.376_26);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let y = p.mul_add(r * r, r) + 1.0;
    // 2^n from the exponent bits. n + 127 is an integer in [1, 254] after the clamp; adding
    // 2^23 puts it in the low mantissa bits, and `<< 23` moves those into the exponent field
    // (the 2^23's own bits shift out). Unlike `n as i32`, this has no saturating-cast branches
    // and vectorises.
    const BIAS: f32 = 127.0 + 8_388_608.0;
    let pow2n = f32::from_bits((n + BIAS).to_bits() << 23);
    y * pow2n
}

/// `erf(x)` by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), as in PyTorch's vectorised erf.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152_1;
    const A5: f32 = 1.061_405_4;
    let ax = x.abs();
    let t = 1.0 / P.mul_add(ax, 1.0);
    let mut poly = A5;
    poly = poly.mul_add(t, A4);
    poly = poly.mul_add(t, A3);
    poly = poly.mul_add(t, A2);
    poly = poly.mul_add(t, A1);
    let y = 1.0 - poly * t * exp(-ax * ax);
    y.copysign(x)
}

/// Activations BERT-family configs name in `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `0.5·x·(1 + erf(x/√2))` — BERT's "gelu".
    GeluErf,
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` — "gelu_new" / "gelu_pytorch_tanh".
    GeluTanh,
    /// `max(x, 0)`.
    Relu,
}

/// Adds `bias` to every row of `x` (rows of `bias.len()`) and applies `act`, in place.
pub(crate) fn bias_activation(x: &mut [f32], bias: &[f32], act: Activation) {
    const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for row in x.chunks_exact_mut(bias.len()) {
        match act {
            Activation::GeluErf => {
                for (v, b) in row.iter_mut().zip(bias) {
                    let z = *v + b;
                    *v = 0.5 * z * (1.0 + erf(z * FRAC_1_SQRT_2));
                }
            }
            Activation::GeluTanh => {
                for (v, b) in row.iter_mut().zip(bias) {
                    let z = *v + b;
                    // tanh(u) = 1 - 2/(e^{2u} + 1)
                    let u = SQRT_2_OVER_PI * (z + 0.044_715 * z * z * z);
                    let tanh = 1.0 - 2.0 / (exp(2.0 * u) + 1.0);
                    *v = 0.5 * z * (1.0 + tanh);
                }
            }
            Activation::Relu => {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v = (*v + b).max(0.0);
                }
            }
        }
    }
}

/// Sum of a slice in `LANES` independent accumulators (vectorises; a plain fold does not,
/// because float addition is not associative).
#[inline(always)]
fn lane_sum(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

#[inline(always)]
fn lane_max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a = a.max(*v);
        }
    }
    acc.iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, v| m.max(*v))
}

/// Layer normalisation of every row of `x` (rows of `gamma.len()`), after adding `bias` to it:
/// `x = LN(x + bias) · gamma + beta`. Two-pass mean / variance, like PyTorch.
pub(crate) fn bias_layer_norm(x: &mut [f32], bias: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let h = gamma.len();
    for row in x.chunks_exact_mut(h) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
        layer_norm_row(row, gamma, beta, eps);
    }
}

/// Layer normalisation of one row in place.
#[inline]
pub(crate) fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let h = row.len() as f32;
    let mean = lane_sum(row) / h;
    let mut acc = [0.0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            let d = v - mean;
            *a += d * d;
        }
    }
    let var =
        (acc.iter().sum::<f32>() + tail.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>()) / h;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

/// Softmax of one row in place (max-subtracted, like every stable implementation).
#[inline]
pub(crate) fn softmax_row(row: &mut [f32]) {
    let max = lane_max(row);
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / lane_sum(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gemm::Parallelism;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst = 0.0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let rel = ((exp(x) - x.exp()) / x.exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert!(exp(-1000.0) < 1e-37);
    }

    #[test]
    fn erf_matches_reference_values() {
        // erf values from Abramowitz & Stegun table 7.1.
        for (x, want) in [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
            (-1.0, -0.842_700_8),
            (4.0, 1.0),
        ] {
            // A&S 7.1.26 is within 1.5e-7; evaluating it in f32 adds a few ulp.
            assert!(
                (erf(x) - want).abs() < 4e-7,
                "erf({x}) = {} want {want}",
                erf(x)
            );
        }
    }

    #[test]
    fn layer_norm_row_has_zero_mean_unit_variance() {
        let mut row: Vec<f32> = (0..19)
            .map(|i| (i as f32 * 0.37).sin() * 3.0 + 1.0)
            .collect();
        let ones = vec![1.0; row.len()];
        let zeros = vec![0.0; row.len()];
        layer_norm_row(&mut row, &ones, &zeros, 1e-12);
        let n = row.len() as f32;
        let mean = row.iter().sum::<f32>() / n;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        assert!(
            mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
            "{mean} {var}"
        );
    }

    #[test]
    fn softmax_row_sums_to_one_and_keeps_order() {
        let mut row = vec![1.0, 3.0, -2.0, 0.5, 10.0, 10.0, -50.0, 2.0, 7.0, 0.0];
        let orig = row.clone();
        softmax_row(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let want: Vec<f32> = {
            let m = 10.0f32;
            let e: Vec<f32> = orig.iter().map(|v| (v - m).exp()).collect();
            let s: f32 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        };
        for (a, b) in row.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn gelu_erf_matches_definition() {
        let mut x: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.2).collect();
        let want: Vec<f32> = x
            .iter()
            .map(|&v| {
                let v = v as f64;
                (0.5 * v * (1.0 + libm_erf(v / std::f64::consts::SQRT_2))) as f32
            })
            .collect();
        let zeros = vec![0.0; x.len()];
        bias_activation(&mut x, &zeros, Activation::GeluErf);
        for (a, b) in x.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    /// erf in f64 by its Taylor series (converges fast for |x| ≤ 6), independent of `erf` above.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() > 5.0 {
            return x.signum();
        }
        let mut sum = 0.0;
        let mut term = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 || n < 5.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
            if n > 200.0 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn matmul_with_strides_and_accumulation() {
        // lhs 2×3, rhs given transposed (3×2 read from a 2×3 buffer), dst with a wider row stride.
        let lhs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let rhs_t = [1.0, 0.0, -1.0, 2.0, 1.0, 0.5];
        let mut dst = vec![10.0; 2 * 4];
        matmul(
            (2, 2, 3),
            &mut dst,
            4,
            true,
            (&lhs, 3, 1),
            (&rhs_t, 1, 3),
            2.0,
            Parallelism::None,
        );
        // lhs·rhs = [[-2, 5.5], [-2, 16]]; ×2 + 10
        assert_eq!(dst, vec![6.0, 21.0, 10.0, 10.0, 6.0, 42.0, 10.0, 10.0]);
    }

    #[test]
    #[should_panic(expected = "lhs out of bounds")]
    fn matmul_rejects_out_of_bounds_views() {
        let mut dst = vec![0.0; 4];
        matmul(
            (2, 2, 3),
            &mut dst,
            2,
            false,
            (&[0.0; 5], 3, 1),
            (&[0.0; 6], 2, 1),
            1.0,
            Parallelism::None,
        );
    }
}
