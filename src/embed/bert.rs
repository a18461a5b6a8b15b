//! The BERT encoder forward pass on the CPU, written for throughput.
//!
//! Shape of the computation (per batch of sequences, `T` = their total token count):
//!
//! ```text
//! x[T×H]   = LN(word[id] + position[p] + token_type[t])
//! per layer:
//!   qkv[T×3H] = x·Wqkv + b                      one fused gemm for Q, K and V
//!   per sequence, per head:                     attention only within the sequence
//!     P = softmax(Q·Kᵀ/√d)   ctx[rows, head] = P·V
//!   x = LN(x + ctx·Wo + bo)                     residual accumulated by gemm in place
//!   x = LN(x + act(x·W1 + b1)·W2 + b2)
//! ```
//!
//! Sequences are packed back to back, never padded: a sequence's attention only ever sees its
//! own rows, which is exactly what the attention mask achieves in the padded PyTorch version
//! (masked keys get weight 0), without computing the padding. Weights are stored transposed
//! (`in × out`) so gemm reads them with unit column stride.
//!
//! With `--precision bf16` the four linear layers' weights are instead packed in bf16 at load
//! and their products run in `bf16.rs` (AMX or AVX512-BF16, fp32 accumulation); everything
//! else here — embeddings, attention, softmax, GELU, layer norm, pooling — stays fp32.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use gemm::Parallelism;
use rayon::prelude::*;

use super::bf16::{self, PackedB};
use super::kernels::{self, matmul, Activation};
use super::model_dir::BertConfig;
use super::pooling::{l2_normalize, Pooling};
use super::EmbedError;

/// A linear layer's weight, `in × out`: fp32, or packed in bf16 for [`bf16::matmul`].
enum Linear {
    F32 { w: Vec<f32>, n: usize },
    Bf16(PackedB),
}

impl Linear {
    /// Keeps `w` (`k × n`) as it is, or packs it in bf16 when `bf16`.
    fn new(w: Vec<f32>, k: usize, n: usize, bf16: bool) -> Self {
        if bf16 {
            Linear::Bf16(PackedB::pack(&w, k, n))
        } else {
            Linear::F32 { w, n }
        }
    }

    /// `dst (+)= a·W` for `m` rows of `a` (row stride `a_rs`) into `dst` (row stride `dst_rs`).
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        (m, k): (usize, usize),
        dst: &mut [f32],
        dst_rs: usize,
        accumulate: bool,
        (a, a_rs): (&[f32], usize),
        par: Parallelism,
    ) {
        match self {
            Linear::F32 { w, n } => matmul(
                (m, *n, k),
                dst,
                dst_rs,
                accumulate,
                (a, a_rs, 1),
                (w, *n, 1),
                1.0,
                par,
            ),
            Linear::Bf16(p) => bf16::matmul(m, dst, dst_rs, accumulate, (a, a_rs), p, par),
        }
    }
}

struct Layer {
    qkv_w: Linear,
    qkv_b: Vec<f32>,
    out_w: Linear,
    out_b: Vec<f32>,
    ln1_g: Vec<f32>,
    ln1_b: Vec<f32>,
    ffn_in_w: Linear,
    ffn_in_b: Vec<f32>,
    ffn_out_w: Linear,
    ffn_out_b: Vec<f32>,
    ln2_g: Vec<f32>,
    ln2_b: Vec<f32>,
}

/// A BERT-family encoder's weights in the layout the CPU forward pass wants.
pub(crate) struct CpuBert {
    hidden: usize,
    heads: usize,
    intermediate: usize,
    eps: f32,
    act: Activation,
    position_offset: usize,
    max_positions: usize,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    type_vocab: usize,
    emb_ln_g: Vec<f32>,
    emb_ln_b: Vec<f32>,
    layers: Vec<Layer>,
}

/// One tokenised sequence: token ids and token-type ids, same length, specials included.
pub(crate) struct Tokens {
    pub ids: Vec<u32>,
    pub types: Vec<u32>,
}

/// Finds the prefix under which the encoder's tensors live: checkpoints saved from
/// `BertModel` have none, those saved from a task model (`BertForMaskedLM`, …) have `bert.`
/// (or `roberta.`, …).
pub(crate) fn weight_prefix(vb: &VarBuilder, config: &BertConfig) -> Option<String> {
    let mut candidates = vec![String::new(), "bert.".to_string(), "roberta.".to_string()];
    if let Some(t) = &config.model_type {
        candidates.push(format!("{t}."));
    }
    candidates
        .into_iter()
        .find(|p| vb.contains_tensor(&format!("{p}embeddings.word_embeddings.weight")))
}

impl CpuBert {
    /// Builds the encoder from safetensors bytes (already read into memory, so no mmap); with
    /// `bf16`, the linear layers' weights are packed in bf16 (the caller has checked that the
    /// CPU runs [`bf16::matmul`]).
    pub fn load(
        weights: Vec<u8>,
        config: &BertConfig,
        path: &std::path::Path,
        bf16: bool,
    ) -> Result<Self, EmbedError> {
        let werr = |source: candle_core::Error| EmbedError::Weights {
            path: path.to_path_buf(),
            source,
        };
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(werr)?;
        let prefix = weight_prefix(&vb, config).ok_or_else(|| EmbedError::Weights {
            path: path.to_path_buf(),
            source: candle_core::Error::Msg(
                "no embeddings.word_embeddings.weight tensor (with or without a bert. prefix)"
                    .into(),
            ),
        })?;
        let vb = if prefix.is_empty() {
            vb
        } else {
            vb.pp(prefix.trim_end_matches('.'))
        };
        let (h, i) = (config.hidden_size, config.intermediate_size);

        let flat = |t: Tensor| -> candle_core::Result<Vec<f32>> { t.flatten_all()?.to_vec1() };
        // Linear weights are stored `out × in`; we keep them transposed (`in × out`).
        let linear_t = |vb: &VarBuilder, out: usize, inp: usize| -> candle_core::Result<Tensor> {
            vb.get((out, inp), "weight")?.t()?.contiguous()
        };
        let vector = |vb: &VarBuilder, name: &str, n: usize| -> candle_core::Result<Vec<f32>> {
            flat(vb.get(n, name)?)
        };
        // LayerNorm parameters are `weight`/`bias`, or `gamma`/`beta` in old TF conversions.
        let layer_norm = |vb: &VarBuilder| -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
            if vb.contains_tensor("weight") {
                Ok((vector(vb, "weight", h)?, vector(vb, "bias", h)?))
            } else {
                Ok((vector(vb, "gamma", h)?, vector(vb, "beta", h)?))
            }
        };

        let build = || -> candle_core::Result<Self> {
            let emb = vb.pp("embeddings");
            let (emb_ln_g, emb_ln_b) = layer_norm(&emb.pp("LayerNorm"))?;
            let mut layers = Vec::with_capacity(config.num_hidden_layers);
            for l in 0..config.num_hidden_layers {
                let lv = vb.pp(format!("encoder.layer.{l}"));
                let att = lv.pp("attention");
                let q = linear_t(&att.pp("self.query"), h, h)?;
                let k = linear_t(&att.pp("self.key"), h, h)?;
                let v = linear_t(&att.pp("self.value"), h, h)?;
                let qkv_w = flat(Tensor::cat(&[q, k, v], 1)?)?;
                let mut qkv_b = vector(&att.pp("self.query"), "bias", h)?;
                qkv_b.extend(vector(&att.pp("self.key"), "bias", h)?);
                qkv_b.extend(vector(&att.pp("self.value"), "bias", h)?);
                let (ln1_g, ln1_b) = layer_norm(&att.pp("output.LayerNorm"))?;
                let (ln2_g, ln2_b) = layer_norm(&lv.pp("output.LayerNorm"))?;
                let lin = |w: Vec<f32>, k: usize, n: usize| Linear::new(w, k, n, bf16);
                layers.push(Layer {
                    qkv_w: lin(qkv_w, h, 3 * h),
                    qkv_b,
                    out_w: lin(flat(linear_t(&att.pp("output.dense"), h, h)?)?, h, h),
                    out_b: vector(&att.pp("output.dense"), "bias", h)?,
                    ln1_g,
                    ln1_b,
                    ffn_in_w: lin(flat(linear_t(&lv.pp("intermediate.dense"), i, h)?)?, h, i),
                    ffn_in_b: vector(&lv.pp("intermediate.dense"), "bias", i)?,
                    ffn_out_w: lin(flat(linear_t(&lv.pp("output.dense"), h, i)?)?, i, h),
                    ffn_out_b: vector(&lv.pp("output.dense"), "bias", h)?,
                    ln2_g,
                    ln2_b,
                });
            }
            Ok(Self {
                hidden: h,
                heads: config.num_attention_heads,
                intermediate: i,
                eps: config.layer_norm_eps as f32,
                act: config.activation().unwrap_or(Activation::GeluErf),
                position_offset: config.position_offset(),
                max_positions: config.max_position_embeddings,
                word: flat(emb.get((config.vocab_size, h), "word_embeddings.weight")?)?,
                position: flat(emb.get(
                    (config.max_position_embeddings, h),
                    "position_embeddings.weight",
                )?)?,
                token_type: flat(
                    emb.get((config.type_vocab_size, h), "token_type_embeddings.weight")?,
                )?,
                type_vocab: config.type_vocab_size,
                emb_ln_g,
                emb_ln_b,
                layers,
            })
        };
        build().map_err(werr)
    }

    /// Hidden size (= embedding dimension).
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Encodes `seqs` and pools each into a unit-length vector.
    ///
    /// `parallelism` is gemm's: `None` when the caller already runs batches on every thread,
    /// `Rayon(n)` when this is the only batch in flight. Token ids must be below the vocabulary
    /// size and sequences no longer than the position table (the tokenizer guarantees both).
    pub fn embed(
        &self,
        seqs: &[&Tokens],
        pooling: Pooling,
        parallelism: Parallelism,
    ) -> Vec<Vec<f32>> {
        let h = self.hidden;
        let lens: Vec<usize> = seqs.iter().map(|s| s.ids.len()).collect();
        let total: usize = lens.iter().sum();
        let parallel = !matches!(parallelism, Parallelism::None);

        let mut x = vec![0.0f32; total * h];
        self.embeddings(seqs, &mut x);
        let mut qkv = vec![0.0f32; total * 3 * h];
        let mut ctx = vec![0.0f32; total * h];
        let mut inter = vec![0.0f32; total * self.intermediate];
        for layer in &self.layers {
            self.layer(
                layer,
                &lens,
                &mut x,
                &mut qkv,
                &mut ctx,
                &mut inter,
                parallelism,
                parallel,
            );
        }

        let mut out = Vec::with_capacity(seqs.len());
        let mut start = 0;
        for len in lens {
            let mut v = vec![0.0f32; h];
            pooling.pool_into(&x[start * h..(start + len) * h], h, &mut v);
            l2_normalize(&mut v);
            out.push(v);
            start += len;
        }
        out
    }

    fn embeddings(&self, seqs: &[&Tokens], x: &mut [f32]) {
        let h = self.hidden;
        let mut rows = x.chunks_exact_mut(h);
        for seq in seqs {
            assert!(seq.ids.len() + self.position_offset <= self.max_positions);
            for (p, (&id, &tt)) in seq.ids.iter().zip(&seq.types).enumerate() {
                let row = rows.next().expect("x has a row per token");
                let id = id as usize;
                let tt = (tt as usize).min(self.type_vocab - 1);
                let pos = p + self.position_offset;
                let w = &self.word[id * h..(id + 1) * h];
                let pe = &self.position[pos * h..(pos + 1) * h];
                let te = &self.token_type[tt * h..(tt + 1) * h];
                for (((o, a), b), c) in row.iter_mut().zip(w).zip(pe).zip(te) {
                    *o = a + b + c;
                }
                kernels::layer_norm_row(row, &self.emb_ln_g, &self.emb_ln_b, self.eps);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        w: &Layer,
        lens: &[usize],
        x: &mut [f32],
        qkv: &mut [f32],
        ctx: &mut [f32],
        inter: &mut [f32],
        par: Parallelism,
        parallel: bool,
    ) {
        let (h, i) = (self.hidden, self.intermediate);
        let t = x.len() / h;

        // Q, K, V in one gemm, bias added after.
        w.qkv_w.apply((t, h), qkv, 3 * h, false, (x, h), par);
        rows_apply(qkv, 3 * h, parallel, |row| {
            for (v, b) in row.iter_mut().zip(&w.qkv_b) {
                *v += b;
            }
        });

        self.attention(lens, qkv, ctx, parallel);

        // x = LN(x + ctx·Wo + bo): gemm accumulates onto the residual in place.
        w.out_w.apply((t, h), x, h, true, (ctx, h), par);
        rows_apply(x, h, parallel, |row| {
            kernels::bias_layer_norm(row, &w.out_b, &w.ln1_g, &w.ln1_b, self.eps)
        });

        // x = LN(x + act(x·W1 + b1)·W2 + b2)
        w.ffn_in_w.apply((t, h), inter, i, false, (x, h), par);
        rows_apply(inter, i, parallel, |row| {
            kernels::bias_activation(row, &w.ffn_in_b, self.act)
        });
        w.ffn_out_w.apply((t, i), x, h, true, (inter, i), par);
        rows_apply(x, h, parallel, |row| {
            kernels::bias_layer_norm(row, &w.ffn_out_b, &w.ln2_g, &w.ln2_b, self.eps)
        });
    }

    /// Multi-head self-attention of every sequence over its own rows of `qkv`, into `ctx`.
    fn attention(&self, lens: &[usize], qkv: &[f32], ctx: &mut [f32], parallel: bool) {
        let h = self.hidden;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        // Split ctx into one mutable slab per sequence so sequences can run in parallel.
        let mut slabs = Vec::with_capacity(lens.len());
        let mut rest = ctx;
        let mut start = 0;
        for &len in lens {
            let (slab, tail) = rest.split_at_mut(len * h);
            slabs.push((start, len, slab));
            rest = tail;
            start += len;
        }
        let one = |scores: &mut Vec<f32>, (start, len, slab): (usize, usize, &mut [f32])| {
            scores.resize(len * len, 0.0);
            let q0 = start * 3 * h;
            for head in 0..self.heads {
                let q = &qkv[q0 + head * d..];
                let k = &qkv[q0 + h + head * d..];
                let v = &qkv[q0 + 2 * h + head * d..];
                // scores = scale · Q·Kᵀ   (Kᵀ read in place: row stride 1, column stride 3H)
                matmul(
                    (len, len, d),
                    scores,
                    len,
                    false,
                    (q, 3 * h, 1),
                    (k, 1, 3 * h),
                    scale,
                    Parallelism::None,
                );
                for row in scores.chunks_exact_mut(len) {
                    kernels::softmax_row(row);
                }
                matmul(
                    (len, d, len),
                    &mut slab[head * d..],
                    h,
                    false,
                    (scores, len, 1),
                    (v, 3 * h, 1),
                    1.0,
                    Parallelism::None,
                );
            }
        };
        if parallel {
            slabs.into_par_iter().for_each_init(Vec::new, one);
        } else {
            let mut scores = Vec::new();
            for slab in slabs {
                one(&mut scores, slab);
            }
        }
    }
}

/// Applies `f` to every row (of `width`) of `x`, on the rayon pool when `parallel`.
fn rows_apply(x: &mut [f32], width: usize, parallel: bool, f: impl Fn(&mut [f32]) + Sync) {
    if parallel {
        // Blocks of rows, so each task is big enough to be worth scheduling.
        let block = width * 32;
        x.par_chunks_mut(block)
            .for_each(|b| b.chunks_exact_mut(width).for_each(&f));
    } else {
        x.chunks_exact_mut(width).for_each(f);
    }
}
