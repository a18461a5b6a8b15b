//! The llama forward pass (SmolLM2, Llama, Mistral GGUFs): a small fork of candle-transformers'
//! `models/quantized_llama.rs` (candle 0.11.1, © the candle authors, Apache-2.0 OR MIT — the
//! same terms as this crate's use of it), rewritten for the speed of one CPU answer.
//!
//! **Why a fork.** candle's version is written for clarity and many devices, and on a CPU with a
//! ~700-token prompt it ran at 0.58× llama.cpp's prompt speed and 0.42× its decode speed
//! (BENCHMARKS "Side by side with llama.cpp"). What this version changes, each measured there:
//!
//! 1. **The key/value cache is appended in place.** candle concatenates each layer's cache with
//!    the new token at every step (`Tensor::cat`: a copy of the whole cache per token per layer)
//!    and repeats the key/value heads for grouped-query attention (another copy); here each
//!    layer's cache is one growing `Vec` of rows (position-major: a row is what the key/value
//!    projection wrote for one token), reserved for the whole answer up front, and attention
//!    reads the shared key/value head in place. [`Llama::truncate`] rolls it back, so a prefix
//!    (the system prompt) computed once serves every later answer (`Generator::generate`).
//! 2. **Decode attention on slices**: one query row against the cache, per head, with no tensor
//!    allocated, no mask built, no transposed copy.
//! 3. **The prompt pass runs on dequantised weights with a plain f32 gemm**
//!    ([`DENSE_MIN_TOKENS`] tokens or more). candle's fast quantised kernel (AVX-512 VNNI on
//!    repacked Q8_0) needs the inner dimension to be a multiple of 256; SmolLM2's hidden size is
//!    576, so six of its seven matmuls per layer fell to a 256-bit dot product per (row, token).
//!    Each weight is dequantised into one scratch buffer just before its gemm (no memory kept:
//!    dequantising costs a few percent of the gemm it feeds), and attention over the prompt is
//!    one gemm per head and row block, skipping the keys the causal mask hides. The activations
//!    are not quantised on this path (the quantised kernels round them to 8 bits), so its
//!    logits differ from the quantised path's by that rounding (tested: a small tolerance).
//! 4. **Projections that read the same input are one matmul** (query/key/value; gate/up) when
//!    their blocks have one type: one activation quantisation and one parallel region instead of
//!    three or two. Each output is still the dot product of one weight row with the input, so
//!    the numbers are those of separate matmuls.
//! 5. **The token embedding stays quantised** (rows dequantised when looked up): candle kept a
//!    dequantised f32 copy (113 MB for SmolLM2's 49k × 576) beside the quantised one it uses as
//!    the tied output matrix.
//!
//! 6. **Q4_1 matrices (the default model's) run on our own kernel** ([`super::q4_1`]: the
//!    blocks read as the file stores them, AVX2 integer dot products) for decode and short
//!    prompt segments; candle's is scalar for Q4_1 and the file used to be re-encoded as Q8_0
//!    (143 MB read per token instead of 98 MB). Other block types keep candle's `QMatMul`.
//!
//! Decode does the arithmetic of candle's quantised matmuls (for Q4_1 the same Q8_1 input
//! blocks and integer sums, the f32 sums over blocks in another order), so its logits are those
//! of `quantized_llama` to float rounding, and so are its greedy tokens except at near ties
//! (tested on random weights and on SmolLM2 where present). The
//! mixture-of-experts variant and the GGML (pre-GGUF) loader of the original are not carried
//! over: `general.architecture = llama` GGUFs with one feed-forward network per layer only.

use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{bail, Device, Module, Result, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use super::q4_1::{self, f16_to_f32};
use crate::vecmath::{dot, matmul};

/// Prompts (or prompt segments) of this many tokens or more run their matmuls on dequantised
/// weights ([`Llama`] item 3); shorter ones, and every decoded token, on the quantised kernels.
pub const DENSE_MIN_TOKENS: usize = 32;

/// Rows of queries per attention gemm on the prompt path: a block attends to the keys up to its
/// last row only, which skips about half the masked products of a long prompt.
const ATTN_ROW_BLOCK: usize = 64;

/// Hyper-parameters read from the GGUF metadata.
#[derive(Clone, Debug)]
pub struct Config {
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (grouped-query attention when fewer than `n_head`).
    pub n_kv_head: usize,
    /// Dimension of one head.
    pub head_dim: usize,
    /// Hidden size.
    pub dim: usize,
    /// Feed-forward width.
    pub ffn: usize,
    /// RMS norm epsilon.
    pub eps: f32,
    /// Longest context (positions for which the rotary tables are built).
    pub context: usize,
}

/// One linear layer, or several that read the same input fused into one (their rows stacked).
struct Proj {
    w: Arc<QTensor>,
    mm: QMatMul,
    /// Output width.
    n: usize,
    /// Input width.
    k: usize,
}

impl Proj {
    /// Q4_1 weights, which [`q4_1`]'s kernels read in place.
    fn is_q4_1(&self) -> bool {
        self.w.dtype() == GgmlDType::Q4_1 && self.k % q4_1::QK == 0
    }

    fn new(w: QTensor) -> Result<Self> {
        Self::from_arc(Arc::new(w))
    }

    fn from_arc(w: Arc<QTensor>) -> Result<Self> {
        let (n, k) = w.shape().dims2()?;
        Ok(Proj {
            mm: QMatMul::from_arc(w.clone())?,
            w,
            n,
            k,
        })
    }

    /// The weights stacked row-wise into one matrix when they share a block type (a GGUF row is
    /// whole blocks, so stacking is concatenating the raw bytes); else each on its own.
    fn fused(parts: Vec<QTensor>) -> Result<Vec<Proj>> {
        let same = parts.windows(2).all(|w| w[0].dtype() == w[1].dtype())
            && parts
                .iter()
                .all(|p| p.shape().dims().last() == parts[0].shape().dims().last());
        if parts.len() < 2 || !same {
            return parts.into_iter().map(Proj::new).collect();
        }
        let dtype = parts[0].dtype();
        let k = parts[0].shape().dims2()?.1;
        let mut bytes = Vec::new();
        let mut n = 0;
        for p in &parts {
            bytes.extend_from_slice(&p.data()?);
            n += p.shape().dims2()?.0;
        }
        let w = candle_core::quantized::ggml_file::qtensor_from_ggml(
            dtype,
            &bytes,
            vec![n, k],
            &Device::Cpu,
        )?;
        Ok(vec![Proj::new(w)?])
    }

    /// `x` (m × k) times the weights' transpose, on the quantised kernels: Q4_1 blocks on ours
    /// ([`q4_1`]), other types on candle's.
    fn forward_quantized(&self, x: &[f32], m: usize) -> Result<Vec<f32>> {
        if self.is_q4_1() {
            return Ok(q4_1::matmul(&self.w.data()?, self.n, self.k, x, m));
        }
        let t = Tensor::from_slice(x, (m, self.k), &Device::Cpu)?;
        self.mm.forward(&t)?.flatten_all()?.to_vec1::<f32>()
    }

    /// The same product on the weights dequantised into `scratch`, by gemm.
    fn forward_dense(&self, x: &[f32], m: usize, scratch: &mut Vec<f32>) -> Result<Vec<f32>> {
        dequantize_into(&self.w, scratch)?;
        let mut y = vec![0f32; m * self.n];
        matmul(
            (m, self.n, self.k),
            &mut y,
            self.n,
            false,
            (x, self.k, 1),
            (scratch, 1, self.k),
            1.0,
            Parallelism::Rayon(rayon::current_num_threads()),
        );
        Ok(y)
    }
}

/// A group of [`Proj`]s reading one input; their outputs side by side (m × Σn).
struct Projs(Vec<Proj>);

impl Projs {
    fn width(&self) -> usize {
        self.0.iter().map(|p| p.n).sum()
    }

    fn forward(&self, x: &[f32], m: usize, dense: Option<&mut Vec<f32>>) -> Result<Vec<f32>> {
        let mut dense = dense;
        let mut outs = Vec::with_capacity(self.0.len());
        for p in &self.0 {
            outs.push(match dense.as_deref_mut() {
                Some(scratch) => p.forward_dense(x, m, scratch)?,
                None => p.forward_quantized(x, m)?,
            });
        }
        if outs.len() == 1 {
            return Ok(outs.pop().unwrap_or_default());
        }
        let w = self.width();
        let mut y = Vec::with_capacity(m * w);
        for i in 0..m {
            for (p, o) in self.0.iter().zip(&outs) {
                y.extend_from_slice(&o[i * p.n..(i + 1) * p.n]);
            }
        }
        Ok(y)
    }
}

/// Dequantises `w` into `out` (resized to its element count). Q4_1 (the default model's type)
/// and Q8_0 are decoded here, in parallel, into the reused buffer; other types through candle's
/// `dequantize` (the same arithmetic: scale × quant (+ min) per block).
fn dequantize_into(w: &QTensor, out: &mut Vec<f32>) -> Result<()> {
    const QK: usize = 32;
    const BLOCK: usize = 2 + QK;
    let n = w.shape().elem_count();
    out.resize(n, 0.0);
    if w.dtype() == GgmlDType::Q4_1 && n % q4_1::QK == 0 {
        let data = w.data()?;
        if data.len() != n / q4_1::QK * q4_1::BLOCK_BYTES {
            bail!("Q4_1 tensor of {n} values has {} bytes", data.len());
        }
        q4_1::dequantize(&data, out);
    } else if w.dtype() == GgmlDType::Q8_0 {
        let data = w.data()?;
        if data.len() != n / QK * BLOCK {
            bail!("Q8_0 tensor of {n} values has {} bytes", data.len());
        }
        const CHUNK: usize = 1024;
        out.par_chunks_mut(CHUNK * QK)
            .zip(data.par_chunks(CHUNK * BLOCK))
            .for_each(|(o, d)| {
                for (ob, db) in o.chunks_exact_mut(QK).zip(d.chunks_exact(BLOCK)) {
                    let scale = f16_to_f32(u16::from_le_bytes([db[0], db[1]]));
                    for (x, q) in ob.iter_mut().zip(&db[2..]) {
                        *x = f32::from(*q as i8) * scale;
                    }
                }
            });
    } else {
        let t = w
            .dequantize(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        out.copy_from_slice(&t);
    }
    Ok(())
}

struct Layer {
    attn_norm: Vec<f32>,
    ffn_norm: Vec<f32>,
    /// Query, key, value (fused when one type).
    qkv: Projs,
    wo: Projs,
    /// Gate then up (fused when one type).
    gate_up: Projs,
    down: Projs,
}

/// One layer's key/value cache: rows of `n_kv_head × head_dim`, one per position.
#[derive(Default)]
struct KvCache {
    k: Vec<f32>,
    v: Vec<f32>,
}

/// A llama-architecture GGUF model with its key/value cache.
pub struct Llama {
    cfg: Config,
    embed: Arc<QTensor>,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    /// The output matrix (the token embedding's when the file ties them).
    output: Proj,
    /// cos and sin of position × frequency, `head_dim / 2` per position.
    cos: Vec<f32>,
    sin: Vec<f32>,
    cache: Vec<KvCache>,
    /// Positions in the cache.
    len: usize,
    /// The dense path's dequantisation buffer (the largest matrix; kept between calls).
    scratch: Vec<f32>,
    /// Dense prompt pass on (default) or off (every matmul quantised: for tests and measures).
    dense_prefill: bool,
}

fn vec_of(q: QTensor) -> Result<Vec<f32>> {
    q.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()
}

impl Llama {
    /// Loads the model from GGUF content (as candle's `ModelWeights::from_gguf`).
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
    ) -> Result<Self> {
        let md = |s: &str| match ct.metadata.get(s) {
            None => bail!("cannot find {s} in metadata"),
            Some(v) => Ok(v),
        };
        if md("llama.expert_count")
            .and_then(|v| v.to_u32())
            .unwrap_or(0)
            > 1
        {
            bail!("mixture-of-experts llama models are not supported");
        }
        let n_head = md("llama.attention.head_count")?.to_u32()? as usize;
        let n_kv_head = md("llama.attention.head_count_kv")?.to_u32()? as usize;
        let n_layer = md("llama.block_count")?.to_u32()? as usize;
        let dim = md("llama.embedding_length")?.to_u32()? as usize;
        let rope_dim = md("llama.rope.dimension_count")?.to_u32()? as usize;
        let eps = md("llama.attention.layer_norm_rms_epsilon")?.to_f32()?;
        let freq_base = md("llama.rope.freq_base")
            .and_then(|m| m.to_f32())
            .unwrap_or(10000f32);
        let context = md("llama.context_length")
            .and_then(|m| m.to_u32())
            .map_or(4096, |c| c as usize);
        if n_head == 0 || n_kv_head == 0 || n_head % n_kv_head != 0 || dim % n_head != 0 {
            bail!("{n_head} query heads, {n_kv_head} key/value heads and width {dim} do not fit");
        }
        let head_dim = dim / n_head;
        if rope_dim != head_dim {
            bail!("rotary dimension {rope_dim} is not the head dimension {head_dim}");
        }
        let dev = Device::Cpu;
        let mut t = |name: &str| ct.tensor(reader, name, &dev);
        let embed = Arc::new(t("token_embd.weight")?);
        let norm = vec_of(t("output_norm.weight")?)?;
        let output = match t("output.weight") {
            Ok(w) => Proj::new(w)?,
            Err(_) => Proj::from_arc(embed.clone())?,
        };
        let mut layers = Vec::with_capacity(n_layer);
        let mut ffn = 0;
        for i in 0..n_layer {
            let p = format!("blk.{i}");
            let gate = t(&format!("{p}.ffn_gate.weight"))?;
            ffn = gate.shape().dims2()?.0;
            layers.push(Layer {
                attn_norm: vec_of(t(&format!("{p}.attn_norm.weight"))?)?,
                ffn_norm: vec_of(t(&format!("{p}.ffn_norm.weight"))?)?,
                qkv: Projs(Proj::fused(vec![
                    t(&format!("{p}.attn_q.weight"))?,
                    t(&format!("{p}.attn_k.weight"))?,
                    t(&format!("{p}.attn_v.weight"))?,
                ])?),
                wo: Projs(vec![Proj::new(t(&format!("{p}.attn_output.weight"))?)?]),
                gate_up: Projs(Proj::fused(vec![gate, t(&format!("{p}.ffn_up.weight"))?])?),
                down: Projs(vec![Proj::new(t(&format!("{p}.ffn_down.weight"))?)?]),
            });
        }
        let cfg = Config {
            n_head,
            n_kv_head,
            head_dim,
            dim,
            ffn,
            eps,
            context,
        };
        for l in &layers {
            let qkv = (n_head + 2 * n_kv_head) * head_dim;
            if l.qkv.width() != qkv || l.gate_up.width() != 2 * ffn || l.attn_norm.len() != dim {
                bail!("a layer's tensors do not have the shapes the metadata gives");
            }
        }
        // As candle's `precomput_freqs_cis`: θ_i = base^(−2i/d), angle = position × θ_i.
        let half = head_dim / 2;
        let theta: Vec<f32> = (0..head_dim)
            .step_by(2)
            .map(|i| 1f32 / freq_base.powf(i as f32 / head_dim as f32))
            .collect();
        let mut cos = Vec::with_capacity(context * half);
        let mut sin = Vec::with_capacity(context * half);
        for p in 0..context {
            for th in &theta {
                let a = p as f32 * th;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        Ok(Llama {
            cache: (0..n_layer).map(|_| KvCache::default()).collect(),
            cfg,
            embed,
            layers,
            norm,
            output,
            cos,
            sin,
            len: 0,
            scratch: Vec::new(),
            dense_prefill: true,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Positions held in the key/value cache.
    pub fn cached(&self) -> usize {
        self.len
    }

    /// Keeps the first `len` positions of the cache (a prefix to reuse), drops the rest.
    pub fn truncate(&mut self, len: usize) {
        let len = len.min(self.len);
        let row = self.cfg.n_kv_head * self.cfg.head_dim;
        for c in &mut self.cache {
            c.k.truncate(len * row);
            c.v.truncate(len * row);
        }
        self.len = len;
    }

    /// Reserves the cache for `positions` in all, so that appending never moves it.
    pub fn reserve(&mut self, positions: usize) {
        let row = self.cfg.n_kv_head * self.cfg.head_dim;
        let extra = positions.saturating_sub(self.len) * row;
        for c in &mut self.cache {
            c.k.reserve(extra);
            c.v.reserve(extra);
        }
    }

    /// Turns the dense prompt pass ([`DENSE_MIN_TOKENS`]) on or off.
    pub fn set_dense_prefill(&mut self, on: bool) {
        self.dense_prefill = on;
    }

    /// Runs `tokens` at positions `pos..` (the cache is first cut to `pos`, which must not be
    /// past what it holds) and returns the logits of the last one, `(1, vocab)`.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor> {
        let m = tokens.len();
        if m == 0 {
            bail!("no tokens to run");
        }
        if pos > self.len {
            bail!("position {pos} is past the {} cached", self.len);
        }
        if pos + m > self.cfg.context {
            bail!(
                "{} positions exceed the model's context of {}",
                pos + m,
                self.cfg.context
            );
        }
        self.truncate(pos);
        let dense = self.dense_prefill && m >= DENSE_MIN_TOKENS;
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = self
            .embed
            .embedding(&ids)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let cfg = self.cfg.clone();
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut h = vec![0f32; m * cfg.dim];
        for (layer, cache) in self.layers.iter().zip(self.cache.iter_mut()) {
            let sc = if dense { Some(&mut scratch) } else { None };
            rms_norm_rows(&x, &layer.attn_norm, cfg.eps, &mut h);
            let qkv = layer.qkv.forward(&h, m, sc)?;
            let q = rope_and_append(&cfg, &self.cos, &self.sin, &qkv, pos, m, cache);
            let att = attention(&cfg, &q, cache, pos, m);
            let sc = if dense { Some(&mut scratch) } else { None };
            add_into(&mut x, &layer.wo.forward(&att, m, sc)?);
            rms_norm_rows(&x, &layer.ffn_norm, cfg.eps, &mut h);
            let sc = if dense { Some(&mut scratch) } else { None };
            let gu = layer.gate_up.forward(&h, m, sc)?;
            let act = silu_mul(&gu, m, cfg.ffn);
            let sc = if dense { Some(&mut scratch) } else { None };
            add_into(&mut x, &layer.down.forward(&act, m, sc)?);
        }
        self.scratch = scratch;
        self.len = pos + m;
        let last = &x[(m - 1) * cfg.dim..];
        let mut normed = vec![0f32; cfg.dim];
        rms_norm_rows(last, &self.norm, cfg.eps, &mut normed);
        let logits = self.output.forward_quantized(&normed, 1)?;
        Tensor::from_vec(logits, (1, self.output.n), &Device::Cpu)
    }
}

/// `a += b`, element-wise.
fn add_into(a: &mut [f32], b: &[f32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// RMS norm of each row of `x` into `out`, as candle's `rms_norm`: the squares summed in order,
/// `x / sqrt(mean + eps) × weight`.
fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let n = w.len();
    let row = |src: &[f32], dst: &mut [f32]| {
        let sum2: f32 = src.iter().map(|v| v * v).sum();
        let m = (sum2 / n as f32 + eps).sqrt();
        for ((d, s), a) in dst.iter_mut().zip(src).zip(w) {
            *d = *s / m * *a;
        }
    };
    if x.len() / n > 32 {
        x.par_chunks(n)
            .zip(out.par_chunks_mut(n))
            .for_each(|(s, d)| row(s, d));
    } else {
        for (s, d) in x.chunks(n).zip(out.chunks_mut(n)) {
            row(s, d);
        }
    }
}

/// `silu(gate) × up` for rows laid out `[gate (ffn), up (ffn)]`; silu as candle's
/// (`v / (1 + e^−v)`).
fn silu_mul(gu: &[f32], m: usize, ffn: usize) -> Vec<f32> {
    let mut out = vec![0f32; m * ffn];
    let row = |src: &[f32], dst: &mut [f32]| {
        let (g, u) = src.split_at(ffn);
        for ((d, g), u) in dst.iter_mut().zip(g).zip(u) {
            *d = g / (1.0 + (-g).exp()) * u;
        }
    };
    if m > 4 {
        gu.par_chunks(2 * ffn)
            .zip(out.par_chunks_mut(ffn))
            .for_each(|(s, d)| row(s, d));
    } else {
        for (s, d) in gu.chunks(2 * ffn).zip(out.chunks_mut(ffn)) {
            row(s, d);
        }
    }
    out
}

/// Rotates a row of heads in place (interleaved pairs, llama.cpp's "normal" rope, candle's
/// `rope_i`) at one position.
fn rope_row(row: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = cos.len();
    for head in row.chunks_exact_mut(2 * half) {
        for ((pair, c), s) in head.chunks_exact_mut(2).zip(cos).zip(sin) {
            let (a, b) = (pair[0], pair[1]);
            pair[0] = a * c - b * s;
            pair[1] = a * s + b * c;
        }
    }
}

/// Splits the projection rows into queries (returned, rotated) and keys/values (the keys
/// rotated), appending the keys and values to the cache.
fn rope_and_append(
    cfg: &Config,
    cos: &[f32],
    sin: &[f32],
    qkv: &[f32],
    pos: usize,
    m: usize,
    cache: &mut KvCache,
) -> Vec<f32> {
    let half = cfg.head_dim / 2;
    let qd = cfg.n_head * cfg.head_dim;
    let kvd = cfg.n_kv_head * cfg.head_dim;
    let w = qd + 2 * kvd;
    let mut q = Vec::with_capacity(m * qd);
    for (i, row) in qkv.chunks_exact(w).enumerate() {
        let p = pos + i;
        let (c, s) = (
            &cos[p * half..(p + 1) * half],
            &sin[p * half..(p + 1) * half],
        );
        let start = q.len();
        q.extend_from_slice(&row[..qd]);
        rope_row(&mut q[start..], c, s);
        let start = cache.k.len();
        cache.k.extend_from_slice(&row[qd..qd + kvd]);
        rope_row(&mut cache.k[start..], c, s);
        cache.v.extend_from_slice(&row[qd + kvd..]);
    }
    q
}

/// Causal attention of `m` query rows at positions `pos..pos + m` over the cache (which holds
/// positions `0..pos + m`): `m × (n_head × head_dim)`.
fn attention(cfg: &Config, q: &[f32], cache: &KvCache, pos: usize, m: usize) -> Vec<f32> {
    if m >= DENSE_MIN_TOKENS {
        attention_blocks(cfg, q, cache, pos, m)
    } else {
        attention_rows(cfg, q, cache, pos, m)
    }
}

/// Softmax in place, as candle's `softmax_last_dim`: `e^(x − max) / Σ`.
fn softmax(s: &mut [f32]) {
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for x in s.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in s.iter_mut() {
        *x /= sum;
    }
}

/// Attention row by row on slices of the cache: the decode path (one row), and short prompt
/// segments.
///
/// The query heads that share a key/value head are taken together, so each cached key and
/// value row is read once for all of them (at a 700-token context the f32 cache a decoded token
/// reads is 40 MB over SmolLM2's 30 layers, as much as its weights, and reading it once per
/// query head made attention as slow as the matmuls). Each head's arithmetic is unchanged —
/// the same `dot` per key, the same softmax, the values summed in position order — so the
/// result is bit for bit that of one head at a time. Parallel (long contexts): the scores over
/// ranges of positions, the weighted sums over (key/value head, half of the head's dimensions).
fn attention_rows(cfg: &Config, q: &[f32], cache: &KvCache, pos: usize, m: usize) -> Vec<f32> {
    let d = cfg.head_dim;
    let qd = cfg.n_head * d;
    let kvd = cfg.n_kv_head * d;
    let nh = cfg.n_head;
    let group = nh / cfg.n_kv_head;
    // As candle: (q·k) × (1/√d), the factor rounded to f32 first.
    let scale = (1.0 / (d as f64).sqrt()) as f32;
    let mut out = vec![0f32; m * qd];
    // Positions per parallel task when scoring.
    const KEY_CHUNK: usize = 128;
    for i in 0..m {
        let keys = pos + i + 1;
        let qrow = &q[i * qd..(i + 1) * qd];
        let parallel = keys * nh >= 2048;
        // Scores position-major (`nh` per position), then each head's row, softmaxed.
        let mut st = vec![0f32; keys * nh];
        let score = |t0: usize, chunk: &mut [f32]| {
            for (j, sc) in chunk.chunks_exact_mut(nh).enumerate() {
                let krow = &cache.k[(t0 + j) * kvd..(t0 + j + 1) * kvd];
                for (h, sc) in sc.iter_mut().enumerate() {
                    let g = h / group;
                    *sc = dot(&qrow[h * d..(h + 1) * d], &krow[g * d..(g + 1) * d]) * scale;
                }
            }
        };
        if parallel {
            st.par_chunks_mut(KEY_CHUNK * nh)
                .enumerate()
                .for_each(|(c, chunk)| score(c * KEY_CHUNK, chunk));
        } else {
            score(0, &mut st);
        }
        let mut p = vec![0f32; nh * keys];
        for (h, ph) in p.chunks_exact_mut(keys).enumerate() {
            for (t, x) in ph.iter_mut().enumerate() {
                *x = st[t * nh + h];
            }
            softmax(ph);
        }
        // Weighted sums of values: a task is one key/value head's query heads over a range of
        // the head's dimensions, accumulated position by position.
        let halves = if parallel { 2 } else { 1 };
        let span = d.div_ceil(halves);
        let sums = |task: usize| -> (usize, usize, Vec<f32>) {
            let (g, part) = (task / halves, task % halves);
            let (lo, hi) = (part * span, ((part + 1) * span).min(d));
            let w = hi - lo;
            let mut o = vec![0f32; group * w];
            for t in 0..keys {
                let v = &cache.v[t * kvd + g * d + lo..t * kvd + g * d + hi];
                for (k, oh) in o.chunks_exact_mut(w).enumerate() {
                    let pt = p[(g * group + k) * keys + t];
                    for (a, b) in oh.iter_mut().zip(v) {
                        *a += pt * b;
                    }
                }
            }
            (g, lo, o)
        };
        let tasks = cfg.n_kv_head * halves;
        let parts: Vec<(usize, usize, Vec<f32>)> = if parallel {
            (0..tasks).into_par_iter().map(sums).collect()
        } else {
            (0..tasks).map(sums).collect()
        };
        let orow = &mut out[i * qd..(i + 1) * qd];
        for (g, lo, o) in parts {
            let w = o.len() / group;
            for (k, oh) in o.chunks_exact(w).enumerate() {
                let h = g * group + k;
                orow[h * d + lo..h * d + lo + w].copy_from_slice(oh);
            }
        }
    }
    out
}

/// Attention over a long prompt: per head (in parallel) and block of [`ATTN_ROW_BLOCK`] query
/// rows, scores = Q·Kᵀ by gemm over the keys up to the block's last row, the causal mask, the
/// softmax, then P·V by gemm.
fn attention_blocks(cfg: &Config, q: &[f32], cache: &KvCache, pos: usize, m: usize) -> Vec<f32> {
    let d = cfg.head_dim;
    let qd = cfg.n_head * d;
    let kvd = cfg.n_kv_head * d;
    let group = cfg.n_head / cfg.n_kv_head;
    let scale = (1.0 / (d as f64).sqrt()) as f32;
    let heads: Vec<Vec<f32>> = (0..cfg.n_head)
        .into_par_iter()
        .map(|h| {
            let g = h / group;
            let mut oh = vec![0f32; m * d];
            let mut s = Vec::new();
            for r0 in (0..m).step_by(ATTN_ROW_BLOCK) {
                let rows = ATTN_ROW_BLOCK.min(m - r0);
                let keys = pos + r0 + rows;
                s.clear();
                s.resize(rows * keys, 0f32);
                matmul(
                    (rows, keys, d),
                    &mut s,
                    keys,
                    false,
                    (&q[r0 * qd + h * d..], qd, 1),
                    (&cache.k[g * d..], 1, kvd),
                    scale,
                    Parallelism::None,
                );
                for (i, srow) in s.chunks_mut(keys).enumerate() {
                    // Row r0 + i sees positions 0..=pos + r0 + i.
                    let seen = pos + r0 + i + 1;
                    softmax(&mut srow[..seen]);
                    srow[seen..].fill(0.0);
                }
                matmul(
                    (rows, d, keys),
                    &mut oh[r0 * d..],
                    d,
                    false,
                    (&s, keys, 1),
                    (&cache.v[g * d..], kvd, 1),
                    1.0,
                    Parallelism::None,
                );
            }
            oh
        })
        .collect();
    let mut out = vec![0f32; m * qd];
    for (h, oh) in heads.iter().enumerate() {
        for (i, row) in oh.chunks_exact(d).enumerate() {
            out[i * qd + h * d..i * qd + (h + 1) * d].copy_from_slice(row);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::gguf_file::Value;
    use candle_transformers::models::quantized_llama;

    const DIM: usize = 64;
    const HEADS: usize = 4;
    const KV_HEADS: usize = 2;
    const FFN: usize = 96;
    const VOCAB: usize = 128;

    /// A random llama GGUF in memory: matrices in Q8_0, norms in F32 (a fixed LCG, so the same
    /// file every run), two layers, grouped-query attention.
    fn tiny_gguf(seed: u64) -> Vec<u8> {
        tiny_gguf_as(seed, GgmlDType::Q8_0, "llama")
    }

    /// The same with matrices in `dtype` and `general.architecture = arch`.
    fn tiny_gguf_as(seed: u64, matrices: GgmlDType, arch: &str) -> Vec<u8> {
        let mut seed = seed;
        let mut weight = |shape: &[usize], amp: f32| {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    ((seed >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * amp
                })
                .collect();
            let t = Tensor::from_vec(data, shape, &Device::Cpu).unwrap();
            let dtype = if shape.len() == 2 {
                matrices
            } else {
                GgmlDType::F32
            };
            QTensor::quantize(&t, dtype).unwrap()
        };
        let hd = DIM / HEADS;
        let mut tensors = vec![
            ("token_embd.weight".to_string(), weight(&[VOCAB, DIM], 2.0)),
            ("output_norm.weight".to_string(), weight(&[DIM], 2.0)),
        ];
        for b in 0..2 {
            for (name, shape) in [
                ("attn_q.weight", vec![DIM, DIM]),
                ("attn_k.weight", vec![KV_HEADS * hd, DIM]),
                ("attn_v.weight", vec![KV_HEADS * hd, DIM]),
                ("attn_output.weight", vec![DIM, DIM]),
                ("ffn_gate.weight", vec![FFN, DIM]),
                ("ffn_up.weight", vec![FFN, DIM]),
                ("ffn_down.weight", vec![DIM, FFN]),
                ("attn_norm.weight", vec![DIM]),
                ("ffn_norm.weight", vec![DIM]),
            ] {
                tensors.push((format!("blk.{b}.{name}"), weight(&shape, 0.5)));
            }
        }
        let u = |n: usize| Value::U32(n as u32);
        let md: Vec<(&str, Value)> = vec![
            ("general.architecture", Value::String(arch.into())),
            ("llama.context_length", u(512)),
            ("llama.block_count", u(2)),
            ("llama.embedding_length", u(DIM)),
            ("llama.feed_forward_length", u(FFN)),
            ("llama.attention.head_count", u(HEADS)),
            ("llama.attention.head_count_kv", u(KV_HEADS)),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
            ("llama.rope.freq_base", Value::F32(10_000.0)),
            ("llama.rope.dimension_count", u(hd)),
        ];
        let md: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
        let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut cur = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut cur, &md, &ts).unwrap();
        cur.into_inner()
    }

    fn load_both(bytes: &[u8]) -> (Llama, quantized_llama::ModelWeights) {
        let mut cur = std::io::Cursor::new(bytes.to_vec());
        let ct = gguf_file::Content::read(&mut cur).unwrap();
        let ours = Llama::from_gguf(&ct, &mut cur).unwrap();
        let theirs = quantized_llama::ModelWeights::from_gguf(ct, &mut cur, &Device::Cpu).unwrap();
        (ours, theirs)
    }

    fn argmax(v: &[f32]) -> u32 {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i as u32)
    }

    fn logits(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// The same GGUF with every tensor stored as F32 (the values the Q8_0 blocks decode to):
    /// candle then runs plain f32 matmuls, the arithmetic of the dense prompt pass.
    fn as_f32(bytes: &[u8]) -> Vec<u8> {
        let mut cur = std::io::Cursor::new(bytes.to_vec());
        let ct = gguf_file::Content::read(&mut cur).unwrap();
        let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
        names.sort();
        let tensors: Vec<(String, QTensor)> = names
            .into_iter()
            .map(|n| {
                let q = ct.tensor(&mut cur, n, &Device::Cpu).unwrap();
                let t = q.dequantize(&Device::Cpu).unwrap();
                (n.clone(), QTensor::quantize(&t, GgmlDType::F32).unwrap())
            })
            .collect();
        let md: Vec<(&str, &Value)> = ct.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut out = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut out, &md, &ts).unwrap();
        out.into_inner()
    }

    #[test]
    fn quantized_path_matches_candles_quantized_llama_on_random_weights() {
        let bytes = tiny_gguf(7);
        let (mut ours, mut theirs) = load_both(&bytes);
        ours.set_dense_prefill(false);
        let prompt: Vec<u32> = (0..20).map(|i| (i * 37 + 5) % VOCAB as u32).collect();
        let input = Tensor::new(prompt.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let a = logits(&ours.forward(&prompt, 0).unwrap());
        let b = logits(&theirs.forward(&input, 0).unwrap());
        assert!(max_diff(&a, &b) < 1e-3, "prompt: {}", max_diff(&a, &b));
        // Then 40 decode steps on fixed tokens (a random model's greedy output loops on one
        // token, which would test little): the logits of each step agree to float rounding.
        for i in 0..40u32 {
            let tok = (i * 29 + 11) % VOCAB as u32;
            let pos = prompt.len() + i as usize;
            let a = logits(&ours.forward(&[tok], pos).unwrap());
            let input = Tensor::new(&[tok], &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let b = logits(&theirs.forward(&input, pos).unwrap());
            assert!(max_diff(&a, &b) < 1e-3, "step {i}: {}", max_diff(&a, &b));
            assert_eq!(argmax(&a), argmax(&b), "step {i}");
        }
    }

    #[test]
    fn q4_1_kernel_path_matches_candles_quantized_llama_on_random_weights() {
        // Q4_1 matrices: ours run on `q4_1`'s kernel, candle's on its scalar Q4_1 × Q8_1
        // `vec_dot`; the same integer sums per block, so the logits agree to float rounding.
        let bytes = tiny_gguf_as(13, GgmlDType::Q4_1, "llama");
        let (mut ours, mut theirs) = load_both(&bytes);
        assert!(ours.layers[0].qkv.0[0].is_q4_1() && ours.output.is_q4_1());
        ours.set_dense_prefill(false);
        let prompt: Vec<u32> = (0..20).map(|i| (i * 41 + 3) % VOCAB as u32).collect();
        let input = Tensor::new(prompt.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let a = logits(&ours.forward(&prompt, 0).unwrap());
        let b = logits(&theirs.forward(&input, 0).unwrap());
        assert!(max_diff(&a, &b) < 1e-3, "prompt: {}", max_diff(&a, &b));
        for i in 0..40u32 {
            let tok = (i * 23 + 7) % VOCAB as u32;
            let pos = prompt.len() + i as usize;
            let a = logits(&ours.forward(&[tok], pos).unwrap());
            let input = Tensor::new(&[tok], &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let b = logits(&theirs.forward(&input, pos).unwrap());
            assert!(max_diff(&a, &b) < 1e-3, "step {i}: {}", max_diff(&a, &b));
            assert_eq!(argmax(&a), argmax(&b), "step {i}");
        }
        // The dense prompt pass on Q4_1 weights: dequantised as candle does, so on a prompt
        // this long it is within the 8-bit input rounding of the quantised pass.
        let long: Vec<u32> = (0..60).map(|i| (i * 17 + 1) % VOCAB as u32).collect();
        let mut dense = load_both(&bytes).0;
        ours.truncate(0);
        let a = logits(&dense.forward(&long, 0).unwrap());
        let b = logits(&ours.forward(&long, 0).unwrap());
        let scale = b.iter().map(|x| x.abs()).fold(0.0, f32::max);
        assert!(
            max_diff(&a, &b) < 0.02 * scale,
            "{} of {scale}",
            max_diff(&a, &b)
        );
    }

    #[test]
    fn q4_1_is_kept_for_llama_and_re_encoded_for_other_architectures() {
        let dir = std::env::temp_dir().join(format!("verbatim-q41-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (arch, want) in [("llama", GgmlDType::Q4_1), ("qwen2", GgmlDType::Q8_0)] {
            let path = dir.join(format!("{arch}.gguf"));
            std::fs::write(&path, tiny_gguf_as(1, GgmlDType::Q4_1, arch)).unwrap();
            let mut f = std::fs::File::open(&path).unwrap();
            let ct = gguf_file::Content::read(&mut f).unwrap();
            let (ct, _) = super::super::llm::requantize(ct, &mut f, &path).unwrap();
            assert_eq!(
                ct.tensor_infos["blk.0.attn_q.weight"].ggml_dtype, want,
                "{arch}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dense_path_is_candles_f32_arithmetic() {
        // On F32 weights candle runs plain f32 matmuls everywhere (the output matrix too), so
        // the dense prompt pass — gemm projections, block attention — must agree with it to
        // float rounding. (On a quantised file the output matrix stays quantised, its input
        // rounded to 8 bits: that is the tolerance of the next test.)
        let bytes = as_f32(&tiny_gguf(5));
        let (mut ours, mut theirs) = load_both(&bytes);
        for n in [DENSE_MIN_TOKENS, 100] {
            let prompt: Vec<u32> = (0..n as u32).map(|i| (i * 31 + 9) % VOCAB as u32).collect();
            let input = Tensor::new(prompt.as_slice(), &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let a = logits(&ours.forward(&prompt, 0).unwrap());
            let b = logits(&theirs.forward(&input, 0).unwrap());
            assert!(max_diff(&a, &b) < 1e-4, "{n} tokens: {}", max_diff(&a, &b));
        }
    }

    #[test]
    fn dense_prompt_pass_is_within_rounding_of_the_quantized_one() {
        let bytes = tiny_gguf(11);
        let (mut dense, _) = load_both(&bytes);
        let (mut quant, _) = load_both(&bytes);
        quant.set_dense_prefill(false);
        let prompt: Vec<u32> = (0..100).map(|i| (i * 53 + 3) % VOCAB as u32).collect();
        let a = logits(&dense.forward(&prompt, 0).unwrap());
        let b = logits(&quant.forward(&prompt, 0).unwrap());
        let scale = b.iter().map(|x| x.abs()).fold(0.0, f32::max);
        assert!(
            max_diff(&a, &b) < 0.02 * scale,
            "dense {} vs quantized, max |logit| {scale}",
            max_diff(&a, &b)
        );
        assert_eq!(argmax(&a), argmax(&b));
        // And the caches they left agree: the next decoded token's logits too.
        let a = logits(&dense.forward(&[5], 100).unwrap());
        let b = logits(&quant.forward(&[5], 100).unwrap());
        assert!(max_diff(&a, &b) < 0.02 * scale);
    }

    #[test]
    fn a_prefix_kept_in_the_cache_gives_the_same_logits_as_running_it_again() {
        let bytes = tiny_gguf(3);
        let (mut m, _) = load_both(&bytes);
        let prefix: Vec<u32> = (0..40).map(|i| (i * 7 + 1) % VOCAB as u32).collect();
        let rest_a: Vec<u32> = (0..35).map(|i| (i * 11 + 2) % VOCAB as u32).collect();
        let rest_b: Vec<u32> = (0..5).map(|i| (i * 13 + 4) % VOCAB as u32).collect();
        // Fresh: prefix, then the rest.
        m.forward(&prefix, 0).unwrap();
        let fresh_a = logits(&m.forward(&rest_a, 40).unwrap());
        m.truncate(0);
        m.forward(&prefix, 0).unwrap();
        let fresh_b = logits(&m.forward(&rest_b, 40).unwrap());
        // Reused: the prefix stays, each rest runs from position 40.
        let (mut r, _) = load_both(&bytes);
        r.forward(&prefix, 0).unwrap();
        assert_eq!(logits(&r.forward(&rest_a, 40).unwrap()), fresh_a);
        assert_eq!(r.cached(), 75);
        assert_eq!(logits(&r.forward(&rest_b, 40).unwrap()), fresh_b);
        assert_eq!(r.cached(), 45);
        assert!(
            r.forward(&rest_b, 46).is_err(),
            "a gap in the cache is refused"
        );
    }

    /// SmolLM2 as `Generator::load` runs it (Q4_1 blocks as the file stores them), loaded twice
    /// — ours (our Q4_1 kernel) and candle's (its scalar Q4_1 × Q8_1 `vec_dot`, the reference
    /// arithmetic) — with a ChatML prompt's tokens; `None` (and a line saying why) without the
    /// file.
    fn smollm2() -> Option<(Llama, quantized_llama::ModelWeights, Vec<u32>)> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/SmolLM2-135M-Instruct/model.gguf");
        if !path.is_file() {
            eprintln!("skipped: {} is missing (make models)", path.display());
            return None;
        }
        let mut f = std::fs::File::open(&path).unwrap();
        let ct = gguf_file::Content::read(&mut f).unwrap();
        let (ct, mut cur) = super::super::llm::requantize(ct, &mut f, &path).unwrap();
        let tk = super::super::llm::tokenizer_from_gguf(&ct, &path).unwrap();
        let prompt = super::super::llm::ChatTemplate::ChatMl.render(
            "You summarise customer feedback evidence for an analyst. Use only the evidence you \
             are given.",
            "[1] The battery died after two days and support never answered.\n[2] Great sound, \
             but the battery life is short.\n[3] Shipping was fast.\nQuestion: What do \
             customers say about the battery?",
        );
        let ids = tk.encode(prompt, false).unwrap().get_ids().to_vec();
        let ours = Llama::from_gguf(&ct, &mut cur).unwrap();
        let theirs = quantized_llama::ModelWeights::from_gguf(ct, &mut cur, &Device::Cpu).unwrap();
        Some((ours, theirs, ids))
    }

    #[test]
    fn smollm2_greedy_tokens_are_candles() {
        let Some((mut ours, mut theirs, prompt)) = smollm2() else {
            return;
        };
        assert!(prompt.len() >= DENSE_MIN_TOKENS, "{} tokens", prompt.len());
        // Every matmul quantised, both engines fed candle's greedy tokens for 48 steps: the
        // logits agree to rounding at every step, and so does the greedy choice, except where
        // candle's own top two logits are closer than that rounding (a near tie that the
        // order of the f32 additions over blocks — ours in sixteen lanes, candle's one by
        // one — may tip either way).
        ours.set_dense_prefill(false);
        let input = Tensor::new(prompt.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let mut b = logits(&theirs.forward(&input, 0).unwrap());
        let mut a = logits(&ours.forward(&prompt, 0).unwrap());
        let scale = b.iter().map(|x| x.abs()).fold(0.0, f32::max);
        let (mut worst, mut ties) = (0f32, 0);
        for i in 0..48 {
            let diff = max_diff(&a, &b);
            worst = worst.max(diff);
            let next = argmax(&b);
            if argmax(&a) != next {
                let mut sorted = b.clone();
                sorted.sort_by(|x, y| y.total_cmp(x));
                let margin = sorted[0] - sorted[1];
                assert!(
                    margin <= 2.0 * diff,
                    "step {i}: {} against candle's {next}, its margin {margin} > 2 × {diff}",
                    argmax(&a)
                );
                ties += 1;
            }
            let input = Tensor::new(&[next], &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            b = logits(&theirs.forward(&input, prompt.len() + i).unwrap());
            a = logits(&ours.forward(&[next], prompt.len() + i).unwrap());
        }
        eprintln!(
            "quantised vs candle: max |Δlogit| {worst} (max |logit| {scale}), {ties} near ties"
        );
        // Measured: 1.97 of 32.1, one near tie in 48 steps. Not float rounding alone: a
        // one-ulp difference can move an activation across a Q8_1 rounding boundary, and 30
        // layers carry it on (the quantised path itself is 1.27 from f32 arithmetic, above).
        assert!(worst < 0.08 * scale, "{worst} of {scale}");
        assert!(ties <= 2, "{ties} steps chose differently");
        // The dense prompt pass: logits within rounding of candle's quantised ones.
        let b = logits(&theirs.forward(&input_of(&prompt), 0).unwrap());
        ours.set_dense_prefill(true);
        let a = logits(&ours.forward(&prompt, 0).unwrap());
        eprintln!(
            "dense vs candle: max |Δlogit| {} (max |logit| {scale})",
            max_diff(&a, &b)
        );
        // Measured on Q8_0-re-encoded weights: 1.41 of 32.4. The dense pass does not round
        // activations to 8 bits, and is the closer to f32 arithmetic throughout (0.35 from
        // candle on F32 weights, where the quantised path is 1.27 away).
        assert!(max_diff(&a, &b) < 0.08 * scale);
        assert_eq!(argmax(&a), argmax(&b));
    }

    fn input_of(tokens: &[u32]) -> Tensor {
        Tensor::new(tokens, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap()
    }

    #[test]
    fn q8_0_is_dequantized_as_candle_does() {
        let data: Vec<f32> = (0..32 * 70)
            .map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 13.0)
            .collect();
        let t = Tensor::from_vec(data, (70, 32), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, GgmlDType::Q8_0).unwrap();
        let mut ours = Vec::new();
        dequantize_into(&q, &mut ours).unwrap();
        let theirs = vec_of(q).unwrap();
        assert_eq!(ours, theirs);
        // Every class of half: normal, subnormal, zero, infinite.
        for (bits, v) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x0001, 5.960_464_5e-8),
            (0x8000, -0.0),
            (0x7c00, f32::INFINITY),
            (0x3555, 0.333_251_95),
        ] {
            assert_eq!(f16_to_f32(bits), v, "{bits:#x}");
        }
    }

    /// Attention one query head at a time, each reading its key/value head from the cache (the
    /// version before heads were grouped): the reference for `attention_rows`.
    fn attention_per_head(
        cfg: &Config,
        q: &[f32],
        cache: &KvCache,
        pos: usize,
        m: usize,
    ) -> Vec<f32> {
        let d = cfg.head_dim;
        let qd = cfg.n_head * d;
        let kvd = cfg.n_kv_head * d;
        let group = cfg.n_head / cfg.n_kv_head;
        let scale = (1.0 / (d as f64).sqrt()) as f32;
        let mut out = vec![0f32; m * qd];
        for i in 0..m {
            let keys = pos + i + 1;
            let qrow = &q[i * qd..(i + 1) * qd];
            for (h, o) in out[i * qd..(i + 1) * qd].chunks_mut(d).enumerate() {
                let g = h / group;
                let qh = &qrow[h * d..(h + 1) * d];
                let mut s: Vec<f32> = (0..keys)
                    .map(|t| dot(qh, &cache.k[t * kvd + g * d..t * kvd + (g + 1) * d]) * scale)
                    .collect();
                softmax(&mut s);
                for (t, p) in s.iter().enumerate() {
                    let v = &cache.v[t * kvd + g * d..t * kvd + (g + 1) * d];
                    for (a, b) in o.iter_mut().zip(v) {
                        *a += p * b;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn grouped_decode_attention_is_bit_for_bit_one_head_at_a_time() {
        // SmolLM2's shape (9 query heads on 3 key/value heads of 64); short contexts run on one
        // thread, long ones (≥ 2048 / 9 positions) in parallel tasks.
        let cfg = Config {
            n_head: 9,
            n_kv_head: 3,
            head_dim: 64,
            dim: 576,
            ffn: 0,
            eps: 1e-5,
            context: 2048,
        };
        let mut seed = 5u64;
        let mut r = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        };
        for (pos, m) in [(0, 1), (10, 3), (300, 1), (777, 2)] {
            let cache = KvCache {
                k: r((pos + m) * 192),
                v: r((pos + m) * 192),
            };
            let q = r(m * 576);
            assert_eq!(
                attention_rows(&cfg, &q, &cache, pos, m),
                attention_per_head(&cfg, &q, &cache, pos, m),
                "{pos} cached, {m} rows"
            );
        }
    }

    #[test]
    fn row_and_block_attention_agree() {
        let cfg = Config {
            n_head: 4,
            n_kv_head: 2,
            head_dim: 8,
            dim: 32,
            ffn: 0,
            eps: 1e-5,
            context: 512,
        };
        let (pos, m) = (70, 100);
        let mut seed = 1u64;
        let mut r = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        };
        let cache = KvCache {
            k: r((pos + m) * 16),
            v: r((pos + m) * 16),
        };
        let q = r(m * 32);
        let a = attention_rows(&cfg, &q, &cache, pos, m);
        let b = attention_blocks(&cfg, &q, &cache, pos, m);
        assert!(max_diff(&a, &b) < 1e-5, "{}", max_diff(&a, &b));
        // The last row sees every key; the first only up to its own position.
        let c = attention_rows(&cfg, &q[..32], &cache, pos, 1);
        assert!(max_diff(&c, &a[..32]) < 1e-6);
    }
}
