//! A local generator: a GGUF model run by candle's quantized models, its tokenizer rebuilt from the
//! GGUF metadata, its chat template chosen from the metadata.
//!
//! * **Architectures**: `general.architecture` = `llama` (SmolLM2, Llama, Mistral) by this
//!   crate's [`super::llama`] (a fork of candle-transformers' `quantized_llama` with an in-place
//!   key/value cache and a dense prompt pass: 2-3× faster on a long prompt), `qwen2` and
//!   `gemma3` by candle-transformers' `quantized_qwen2` and `quantized_gemma3`.
//! * **The system prompt is computed once**: on a llama model, the rendered prompt's prefix up
//!   to the user's text ([`ChatTemplate::system_prefix`]) stays in the key/value cache, and the
//!   next answer with the same system prompt starts after it. The prompt always runs as those
//!   two segments, cached or not, so an answer does not depend on what was asked before.
//! * **Tokenizer**: a `tokenizer.json` beside the file when there is one; else rebuilt from
//!   `tokenizer.ggml.*`: byte-level BPE (`model = gpt2`: SmolLM2, Qwen2, Llama 3) from the token
//!   list and merges, with the pre-tokenizer `tokenizer.ggml.pre` names (GPT-2 / SmolLM digit
//!   splitting, or the Llama 3 / Qwen2 split pattern); SentencePiece (`model = llama`: Gemma,
//!   Llama 2, Mistral) as the BPE SentencePiece runs, its merges derived from the pieces'
//!   scores, bytes as `<0xNN>` pieces; control tokens as special tokens either way.
//! * **Chat template**: recognised from `tokenizer.chat_template` by its markers — ChatML
//!   (`<|im_start|>`: SmolLM2, Qwen2), Llama 3 headers, Gemma turns, Mistral `[INST]` — and
//!   written out here (no Jinja engine).
//! * **Sampling**: greedy by default (reproducible); with a temperature, seeded.

use std::path::{Path, PathBuf};

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::{quantized_gemma3, quantized_qwen2};

use super::llama;
use tokenizers::Tokenizer;

/// Errors loading or running a generator.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The file is missing.
    #[error("generator model missing: {path}; run `models/fetch.sh {name}` (or `make models`), or answer without it (--extractive)")]
    Missing {
        /// The GGUF path.
        path: PathBuf,
        /// Catalogue name.
        name: String,
    },
    /// The GGUF cannot be used.
    #[error("{path}: {reason}")]
    Invalid {
        /// The GGUF path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// candle failed while running.
    #[error("generation failed: {0}")]
    Run(String),
}

/// Which network.
enum Net {
    Llama(llama::Llama),
    Qwen2(quantized_qwen2::ModelWeights),
    Gemma3(quantized_gemma3::ModelWeights),
}

impl Net {
    /// Logits `(1, vocab)` of the last of `tokens`, run at positions `pos..`.
    fn forward(&mut self, tokens: &[u32], pos: usize) -> candle_core::Result<Tensor> {
        let x = || Tensor::new(tokens, &Device::Cpu).and_then(|t| t.unsqueeze(0));
        match self {
            Net::Llama(m) => m.forward(tokens, pos),
            Net::Qwen2(m) => m.forward(&x()?, pos),
            Net::Gemma3(m) => m.forward(&x()?, pos),
        }
    }
}

/// How a conversation is laid out for the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>role\n…<|im_end|>` (SmolLM2, Qwen2).
    ChatMl,
    /// Llama 3 `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`.
    Llama3,
    /// Gemma `<start_of_turn>user\n…<end_of_turn>`.
    Gemma,
    /// Mistral `[INST] … [/INST]`.
    Mistral,
}

impl ChatTemplate {
    /// Recognises the template from the GGUF's Jinja source.
    pub fn detect(jinja: &str) -> Option<ChatTemplate> {
        if jinja.contains("<|im_start|>") {
            Some(ChatTemplate::ChatMl)
        } else if jinja.contains("<|start_header_id|>") {
            Some(ChatTemplate::Llama3)
        } else if jinja.contains("<start_of_turn>") {
            Some(ChatTemplate::Gemma)
        } else if jinja.contains("[INST]") {
            Some(ChatTemplate::Mistral)
        } else {
            None
        }
    }

    /// The prompt for a system message and a user message, ready for the assistant's answer.
    pub fn render(self, system: &str, user: &str) -> String {
        match self {
            ChatTemplate::ChatMl => format!(
                "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
            ),
            ChatTemplate::Llama3 => format!(
                "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
            ),
            ChatTemplate::Gemma => format!(
                "<bos><start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n<start_of_turn>model\n"
            ),
            ChatTemplate::Mistral => format!("<s>[INST] {system}\n\n{user} [/INST]"),
        }
    }

    /// The start of [`ChatTemplate::render`]'s prompt up to the user's text: what stays the
    /// same from one question to the next under one system prompt.
    pub fn system_prefix(self, system: &str) -> String {
        match self {
            ChatTemplate::ChatMl => {
                format!("<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n")
            }
            ChatTemplate::Llama3 => format!(
                "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
            ),
            ChatTemplate::Gemma => format!("<bos><start_of_turn>user\n{system}\n\n"),
            ChatTemplate::Mistral => format!("<s>[INST] {system}\n\n"),
        }
    }

    /// Tokens that end the assistant's turn.
    pub fn stop_tokens(self) -> &'static [&'static str] {
        match self {
            ChatTemplate::ChatMl => &["<|im_end|>", "<|endoftext|>"],
            ChatTemplate::Llama3 => &["<|eot_id|>", "<|end_of_text|>"],
            ChatTemplate::Gemma => &["<end_of_turn>", "<eos>"],
            ChatTemplate::Mistral => &["</s>"],
        }
    }
}

/// Generation settings (`[ask]` in verbatim.toml).
#[derive(Clone, Debug, PartialEq)]
pub struct GenOptions {
    /// Most new tokens.
    pub max_tokens: usize,
    /// 0: greedy. Else sampled with `seed`.
    pub temperature: f64,
    /// Seed of the sampler.
    pub seed: u64,
    /// Penalty on tokens already generated (1.0: none).
    pub repeat_penalty: f32,
    /// No n-gram of this many tokens is generated twice (0 or 1: off): a token that would
    /// complete an n-gram already in the answer is never chosen, unless the n-gram has no letter
    /// (citations "[1]." recur by design). Stops the loops a small model falls into ("dog food
    /// isn't good for dogs" three times over).
    pub no_repeat_ngram: usize,
    /// Generate exactly `max_tokens`, past the template's stop tokens (llama.cpp's
    /// `ignore_eos`): for speed measurements over a fixed number of tokens
    /// (`examples/generate_speed.rs`), never for answers.
    pub ignore_stop: bool,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            max_tokens: 256,
            temperature: 0.0,
            seed: 42,
            repeat_penalty: 1.1,
            no_repeat_ngram: 5,
            ignore_stop: false,
        }
    }
}

/// Counts and timings of one generation.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GenStats {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub generated_tokens: usize,
    /// Seconds spent on the prompt.
    pub prompt_s: f64,
    /// Seconds spent generating.
    pub decode_s: f64,
    /// Prompt tokens not run because the key/value cache held them (the system prompt, from an
    /// earlier answer); `prompt_s` covers the others.
    pub cached_tokens: usize,
}

/// A loaded GGUF generator.
pub struct Generator {
    net: Net,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    stop: Vec<u32>,
    device: Device,
    /// `general.architecture`.
    pub architecture: String,
    /// Longest context the model takes.
    pub context_length: usize,
    /// The GGUF file.
    pub path: PathBuf,
    /// Bytes of the model in memory (after any re-encoding): what one decoded token reads, about.
    weight_bytes: usize,
    /// The tokens of the system-prompt prefix held at the start of the key/value cache (llama
    /// models; empty when nothing reusable is there).
    cached_prefix: Vec<u32>,
}

fn invalid(path: &Path, reason: impl std::fmt::Display) -> LlmError {
    LlmError::Invalid {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn md_str(ct: &gguf_file::Content, key: &str) -> Option<String> {
    ct.metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .cloned()
}

fn md_u32(ct: &gguf_file::Content, key: &str) -> Option<u32> {
    ct.metadata.get(key).and_then(|v| v.to_u32().ok())
}

fn md_strings(ct: &gguf_file::Content, key: &str) -> Option<Vec<String>> {
    let arr = ct.metadata.get(key)?.to_vec().ok()?;
    arr.iter().map(|v| v.to_string().ok().cloned()).collect()
}

/// Pre-tokenizer regex of Llama 3 / Qwen2 BPE vocabularies.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Token → id, in the GGUF's order.
fn vocab_of(tokens: &[String]) -> tokenizers::models::bpe::Vocab {
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect()
}

/// Rebuilds a SentencePiece tokenizer of a GGUF (`tokenizer.ggml.model = llama`: Gemma, Llama 2,
/// Mistral), as the BPE SentencePiece runs: merges derived from the pieces' scores as Hugging
/// Face's converter derives them (every split of a normal piece into two pieces of the
/// vocabulary, the merged piece's score first), unknown bytes as `<0xNN>` pieces, spaces as `▁`,
/// a leading `▁` when `tokenizer.ggml.add_space_prefix` says so (Llama 2; not Gemma).
fn spm_tokenizer(
    ct: &gguf_file::Content,
    path: &Path,
    tokens: &[String],
    types: &[i32],
) -> Result<Tokenizer, LlmError> {
    use tokenizers::decoders::byte_fallback::ByteFallback;
    use tokenizers::decoders::fuse::Fuse;
    use tokenizers::decoders::sequence::Sequence as Decoders;
    use tokenizers::decoders::strip::Strip;
    use tokenizers::decoders::DecoderWrapper;
    use tokenizers::models::bpe::BPE;
    use tokenizers::normalizers::NormalizerWrapper;
    use tokenizers::normalizers::{Prepend, Replace, Sequence as Normalizers};

    let scores: Vec<f32> = ct
        .metadata
        .get("tokenizer.ggml.scores")
        .and_then(|v| v.to_vec().ok())
        .map(|a| a.iter().map(|v| v.to_f32().unwrap_or(0.0)).collect())
        .ok_or_else(|| invalid(path, "no tokenizer.ggml.scores in the metadata"))?;
    let vocab = vocab_of(tokens);
    let mut merges: Vec<(f32, u32, u32, &str, &str)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        // Normal pieces only (type 1): control, byte and user pieces are never merged into.
        if types.get(id).is_some_and(|t| *t != 1) {
            continue;
        }
        for (i, _) in piece.char_indices().skip(1) {
            let (a, b) = piece.split_at(i);
            if let (Some(&ia), Some(&ib)) = (vocab.get(a), vocab.get(b)) {
                merges.push((scores.get(id).copied().unwrap_or(0.0), ia, ib, a, b));
            }
        }
    }
    merges.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let merges: Vec<(String, String)> = merges
        .into_iter()
        .map(|m| (m.3.to_string(), m.4.to_string()))
        .collect();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) =
        md_u32(ct, "tokenizer.ggml.unknown_token_id").and_then(|i| tokens.get(i as usize))
    {
        builder = builder.unk_token(unk.clone());
    }
    let bpe = builder
        .build()
        .map_err(|e| invalid(path, format!("BPE: {e}")))?;
    let mut tk = Tokenizer::new(bpe);
    let prefix = ct
        .metadata
        .get("tokenizer.ggml.add_space_prefix")
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(true);
    let space = |from: &str, to: &str| Replace::new(from, to).map_err(|e| invalid(path, e));
    let mut norms: Vec<NormalizerWrapper> = Vec::new();
    if prefix {
        norms.push(Prepend::new("▁".into()).into());
    }
    norms.push(space(" ", "▁")?.into());
    tk.with_normalizer(Some(Normalizers::new(norms)))
        .map_err(|e| invalid(path, format!("normalizer: {e}")))?;
    let mut decoders: Vec<DecoderWrapper> = vec![
        space("▁", " ")?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    tk.with_decoder(Some(Decoders::new(decoders)));
    Ok(tk)
}

/// Rebuilds the tokenizer of a GGUF from its metadata: byte-level BPE (`model = gpt2`), or
/// SentencePiece (`model = llama`, [`spm_tokenizer`]).
pub fn tokenizer_from_gguf(ct: &gguf_file::Content, path: &Path) -> Result<Tokenizer, LlmError> {
    let model = md_str(ct, "tokenizer.ggml.model").unwrap_or_default();
    let tokens = md_strings(ct, "tokenizer.ggml.tokens")
        .ok_or_else(|| invalid(path, "no tokenizer.ggml.tokens in the metadata"))?;
    let types: Vec<i32> = ct
        .metadata
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
        .map(|a| a.iter().map(|v| v.to_i32().unwrap_or(1)).collect())
        .unwrap_or_default();
    let mut tk = match model.as_str() {
        "gpt2" => bpe_tokenizer(ct, path, &tokens)?,
        "llama" => spm_tokenizer(ct, path, &tokens, &types)?,
        other => {
            return Err(invalid(
                path,
                format!(
                    "its tokenizer is '{other}'; verbatim rebuilds gpt2 (BPE) and llama \
                     (SentencePiece) ones: put the model's tokenizer.json beside the file"
                ),
            ))
        }
    };
    // Control tokens (type 3) and user-defined ones (type 4) are matched whole.
    let specials: Vec<tokenizers::AddedToken> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(types.get(*i), Some(3) | Some(4)))
        .map(|(_, t)| tokenizers::AddedToken::from(t.clone(), true))
        .collect();
    tk.add_special_tokens(specials)
        .map_err(|e| invalid(path, format!("special tokens: {e}")))?;
    Ok(tk)
}

/// A byte-level BPE tokenizer (`tokenizer.ggml.model = gpt2`) from the token list and merges,
/// with the pre-tokenizer `tokenizer.ggml.pre` names.
fn bpe_tokenizer(
    ct: &gguf_file::Content,
    path: &Path,
    tokens: &[String],
) -> Result<Tokenizer, LlmError> {
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
    use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};

    let merges = md_strings(ct, "tokenizer.ggml.merges")
        .ok_or_else(|| invalid(path, "no tokenizer.ggml.merges in the metadata"))?;
    let vocab = vocab_of(tokens);
    let merges: Vec<(String, String)> = merges
        .iter()
        .filter_map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| invalid(path, format!("BPE: {e}")))?;
    let mut tk = Tokenizer::new(bpe);
    let pre = md_str(ct, "tokenizer.ggml.pre").unwrap_or_default();
    let byte_level = ByteLevel::new(false, true, true);
    let pre_tok: PreTokenizerWrapper = match pre.as_str() {
        "llama-bpe" | "llama3" | "qwen2" | "smaug-bpe" => Sequence::new(vec![
            Split::new(
                SplitPattern::Regex(LLAMA3_SPLIT.into()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| invalid(path, e))?
            .into(),
            ByteLevel::new(false, true, false).into(),
        ])
        .into(),
        // SmolLM / StarCoder: digits one by one, then GPT-2's byte-level split.
        "smollm" | "starcoder" | "refact" => {
            Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
        }
        _ => byte_level.into(),
    };
    tk.with_pre_tokenizer(Some(pre_tok));
    tk.with_decoder(Some(ByteLevel::default()));
    Ok(tk)
}

/// Block types candle runs without SIMD (scalar `vec_dot`): re-encoded at load.
const SLOW_TYPES: &[GgmlDType] = &[GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1];

/// candle's CPU kernels have AVX2 paths for Q4_0, Q8_0 and the k-quants, but not for Q4_1, Q5_0
/// or Q5_1: their matmuls run scalar. Such tensors are re-encoded as Q8_0 in memory (every 4-
/// or 5-bit value of a block is exactly representable in 8 bits up to the block scale's
/// rounding), and the model is built from that — except Q4_1 (the default model's type) in a
/// `llama` model, whose forward pass ([`llama`]) has its own Q4_1 kernel ([`super::q4_1`]) and
/// reads the blocks as the file stores them (98 MB per decoded token for SmolLM2, not 143).
/// Other files are passed through untouched.
pub(crate) fn requantize(
    ct: gguf_file::Content,
    file: &mut std::fs::File,
    path: &Path,
) -> Result<(gguf_file::Content, std::io::Cursor<Vec<u8>>), LlmError> {
    use std::io::{Read, Seek};
    let own_q4_1 = md_str(&ct, "general.architecture").as_deref() == Some("llama");
    let slow_types: Vec<GgmlDType> = SLOW_TYPES
        .iter()
        .copied()
        .filter(|t| !(own_q4_1 && *t == GgmlDType::Q4_1))
        .collect();
    let slow = ct
        .tensor_infos
        .values()
        .any(|t| slow_types.contains(&t.ggml_dtype));
    if !slow {
        let mut bytes = Vec::new();
        file.rewind().map_err(|e| invalid(path, e))?;
        file.read_to_end(&mut bytes).map_err(|e| invalid(path, e))?;
        let mut cur = std::io::Cursor::new(bytes);
        let ct = gguf_file::Content::read(&mut cur).map_err(|e| invalid(path, e))?;
        return Ok((ct, cur));
    }
    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let q = ct
            .tensor(file, name, &Device::Cpu)
            .map_err(|e| invalid(path, e))?;
        let q = if slow_types.contains(&q.dtype()) && q.shape().elem_count() % 32 == 0 {
            let t = q.dequantize(&Device::Cpu).map_err(|e| invalid(path, e))?;
            QTensor::quantize(&t, GgmlDType::Q8_0).map_err(|e| invalid(path, e))?
        } else {
            q
        };
        tensors.push((name.clone(), q));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> =
        ct.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut cur = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut cur, &metadata, &refs).map_err(|e| invalid(path, e))?;
    cur.set_position(0);
    let ct = gguf_file::Content::read(&mut cur).map_err(|e| invalid(path, e))?;
    Ok((ct, cur))
}

impl Generator {
    /// Loads a GGUF file (and a `tokenizer.json` beside it, if any) on the CPU.
    pub fn load(path: &Path) -> Result<Self, LlmError> {
        let mut file = std::fs::File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                LlmError::Missing {
                    path: path.to_path_buf(),
                    name: path
                        .parent()
                        .and_then(|p| p.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                }
            } else {
                invalid(path, e)
            }
        })?;
        let ct = gguf_file::Content::read(&mut file).map_err(|e| invalid(path, e))?;
        let (ct, mut file) = requantize(ct, &mut file, path)?;
        let weight_bytes = file.get_ref().len() - ct.tensor_data_offset as usize;
        let architecture = md_str(&ct, "general.architecture").unwrap_or_default();
        let context_length =
            md_u32(&ct, &format!("{architecture}.context_length")).unwrap_or(2048) as usize;
        let template = match md_str(&ct, "tokenizer.chat_template") {
            Some(j) => ChatTemplate::detect(&j).ok_or_else(|| {
                invalid(
                    path,
                    "its chat template is none verbatim knows (ChatML, Llama 3, Gemma, Mistral)",
                )
            })?,
            None => match architecture.as_str() {
                "gemma3" => ChatTemplate::Gemma,
                _ => ChatTemplate::ChatMl,
            },
        };
        let beside = path.with_file_name("tokenizer.json");
        let tokenizer = if beside.is_file() {
            Tokenizer::from_file(&beside).map_err(|e| invalid(&beside, e))?
        } else {
            tokenizer_from_gguf(&ct, path)?
        };
        let device = Device::Cpu;
        let net = match architecture.as_str() {
            "llama" => {
                Net::Llama(llama::Llama::from_gguf(&ct, &mut file).map_err(|e| invalid(path, e))?)
            }
            "qwen2" => Net::Qwen2(
                quantized_qwen2::ModelWeights::from_gguf(ct, &mut file, &device)
                    .map_err(|e| invalid(path, e))?,
            ),
            "gemma3" => Net::Gemma3(
                quantized_gemma3::ModelWeights::from_gguf(ct, &mut file, &device)
                    .map_err(|e| invalid(path, e))?,
            ),
            other => {
                return Err(invalid(
                    path,
                    format!("architecture '{other}' is not supported (llama, qwen2, gemma3)"),
                ))
            }
        };
        let stop = template
            .stop_tokens()
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        Ok(Generator {
            net,
            tokenizer,
            template,
            stop,
            device,
            architecture,
            context_length,
            path: path.to_path_buf(),
            weight_bytes,
            cached_prefix: Vec::new(),
        })
    }

    /// Bytes of weights in memory (after re-encoding): the data one decoded token reads.
    pub fn weight_bytes(&self) -> usize {
        self.weight_bytes
    }

    /// The chat template in use.
    pub fn template(&self) -> ChatTemplate {
        self.template
    }

    /// Token count of a text (no special tokens added).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.len())
            .unwrap_or(text.len() / 3)
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Generates the assistant's answer to (system, user), calling `on_text` with each new piece
    /// of decoded text as it comes. Returns the whole answer.
    pub fn generate(
        &mut self,
        system: &str,
        user: &str,
        opts: &GenOptions,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<(String, GenStats), LlmError> {
        let prompt = self.template.render(system, user);
        let enc = self
            .tokenizer
            .encode(prompt, false)
            .map_err(|e| LlmError::Run(e.to_string()))?;
        let mut tokens: Vec<u32> = enc.get_ids().to_vec();
        let budget = self.context_length.saturating_sub(opts.max_tokens).max(16);
        if tokens.len() > budget {
            return Err(LlmError::Run(format!(
                "the prompt has {} tokens; the model takes {} with room for the answer",
                tokens.len(),
                budget
            )));
        }
        let run = |e: candle_core::Error| LlmError::Run(e.to_string());
        let mut sampler = LogitsProcessor::from_sampling(
            opts.seed,
            if opts.temperature <= 0.0 {
                Sampling::ArgMax
            } else {
                Sampling::All {
                    temperature: opts.temperature,
                }
            },
        );
        let mut stats = GenStats {
            prompt_tokens: tokens.len(),
            ..GenStats::default()
        };
        let t0 = std::time::Instant::now();
        let prefix = self.prefix_split(system, &tokens);
        if let Net::Llama(m) = &mut self.net {
            m.reserve(tokens.len() + opts.max_tokens);
        }
        let mut logits = if prefix > 0 {
            // Two segments, always (so the numbers do not depend on the cache's state): the
            // system prefix, unless the cache holds it already, then the rest.
            if self.cached_prefix.as_slice() == &tokens[..prefix] {
                stats.cached_tokens = prefix;
            } else {
                self.cached_prefix.clear();
                self.net.forward(&tokens[..prefix], 0).map_err(run)?;
                self.cached_prefix = tokens[..prefix].to_vec();
            }
            self.net.forward(&tokens[prefix..], prefix).map_err(run)?
        } else {
            self.clear();
            self.net.forward(&tokens, 0).map_err(run)?
        };
        stats.prompt_s = t0.elapsed().as_secs_f64();
        let t1 = std::time::Instant::now();
        let mut generated: Vec<u32> = Vec::new();
        let mut printed = 0usize;
        let mut text = String::new();
        for _ in 0..opts.max_tokens {
            let mut l = logits.squeeze(0).map_err(run)?;
            if opts.repeat_penalty != 1.0 && !generated.is_empty() {
                let start = generated.len().saturating_sub(64);
                l = candle_transformers::utils::apply_repeat_penalty(
                    &l,
                    opts.repeat_penalty,
                    &generated[start..],
                )
                .map_err(run)?;
            }
            if opts.no_repeat_ngram > 1 {
                let tk = &self.tokenizer;
                let banned = repeated_ngram_ends(&generated, opts.no_repeat_ngram, &|id| {
                    tk.id_to_token(id)
                        .is_some_and(|t| t.chars().any(char::is_alphabetic))
                });
                if !banned.is_empty() {
                    let mut v = l.to_vec1::<f32>().map_err(run)?;
                    for b in banned {
                        if let Some(x) = v.get_mut(b as usize) {
                            *x = f32::NEG_INFINITY;
                        }
                    }
                    l = Tensor::new(v, &self.device).map_err(run)?;
                }
            }
            let next = sampler.sample(&l).map_err(run)?;
            if self.stop.contains(&next) && !opts.ignore_stop {
                break;
            }
            generated.push(next);
            tokens.push(next);
            // Decode the whole answer and emit what is new (BPE pieces can split characters).
            let all = self
                .tokenizer
                .decode(&generated, true)
                .map_err(|e| LlmError::Run(e.to_string()))?;
            if all.len() > printed && !all.ends_with('\u{FFFD}') {
                on_text(&all[printed..]);
                printed = all.len();
            }
            text = all;
            logits = self.net.forward(&[next], tokens.len() - 1).map_err(run)?;
        }
        stats.generated_tokens = generated.len();
        stats.decode_s = t1.elapsed().as_secs_f64();
        Ok((text, stats))
    }

    /// Where the system prefix ends in `tokens` (0: no reusable prefix): on llama models only,
    /// when the prefix tokenises to a proper prefix of the whole prompt's tokens.
    fn prefix_split(&self, system: &str, tokens: &[u32]) -> usize {
        if !matches!(self.net, Net::Llama(_)) {
            return 0;
        }
        let Ok(enc) = self
            .tokenizer
            .encode(self.template.system_prefix(system), false)
        else {
            return 0;
        };
        let ids = enc.get_ids();
        if ids.len() < tokens.len() && tokens.starts_with(ids) {
            ids.len()
        } else {
            0
        }
    }

    /// Runs long prompts on dequantised weights (the default) or on the quantised kernels
    /// ([`llama::DENSE_MIN_TOKENS`]; llama models only): for measurements.
    pub fn set_dense_prefill(&mut self, on: bool) {
        if let Net::Llama(m) = &mut self.net {
            m.set_dense_prefill(on);
        }
    }

    /// Forgets the cached system prompt: the next answer runs its whole prompt (for speed
    /// measurements that must count every prompt token).
    pub fn forget(&mut self) {
        self.clear();
    }

    fn clear(&mut self) {
        // A fresh conversation: the caches restart at position 0.
        self.cached_prefix.clear();
        match &mut self.net {
            Net::Llama(m) => m.truncate(0),
            Net::Qwen2(_) | Net::Gemma3(_) => {}
        }
    }
}

/// The tokens that would complete an `n`-gram already in `generated` (after its last `n − 1`
/// tokens): the no-repeat-n-gram rule of [`GenOptions::no_repeat_ngram`]. An n-gram none of
/// whose tokens `wordy` accepts (punctuation, digits, citation brackets) may repeat.
pub fn repeated_ngram_ends(generated: &[u32], n: usize, wordy: &dyn Fn(u32) -> bool) -> Vec<u32> {
    if n < 2 || generated.len() < n {
        return Vec::new();
    }
    let prefix = &generated[generated.len() - (n - 1)..];
    let mut out = Vec::new();
    for w in generated.windows(n) {
        if w[..n - 1] == *prefix && w.iter().any(|&t| wordy(t)) && !out.contains(&w[n - 1]) {
            out.push(w[n - 1]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_n_gram_is_generated_twice_except_citations() {
        // Tokens: 1 "dog", 2 " food", 3 " isn't", 4 " good", 9 "[", 8 "1", 7 "]".
        let wordy = |t: u32| t < 7;
        // "dog food isn't" then "dog food": " isn't" would repeat the 3-gram.
        assert_eq!(repeated_ngram_ends(&[1, 2, 3, 4, 1, 2], 3, &wordy), vec![3]);
        // A 4-gram rule: the same 2 tokens are not enough context to ban anything.
        assert!(repeated_ngram_ends(&[1, 2, 3, 4, 1, 2], 4, &wordy).is_empty());
        // "[1]" may come again and again.
        assert!(repeated_ngram_ends(&[9, 8, 7, 4, 9, 8], 3, &wordy).is_empty());
        // Off.
        assert!(repeated_ngram_ends(&[1, 2, 1, 2], 1, &wordy).is_empty());
    }

    #[test]
    fn templates_are_recognised_and_rendered() {
        assert_eq!(
            ChatTemplate::detect("{% for m in messages %}<|im_start|>{{m.role}}"),
            Some(ChatTemplate::ChatMl)
        );
        assert_eq!(
            ChatTemplate::detect("<start_of_turn>"),
            Some(ChatTemplate::Gemma)
        );
        assert_eq!(ChatTemplate::detect("plain"), None);
        let p = ChatTemplate::ChatMl.render("S", "U");
        assert!(p.starts_with("<|im_start|>system\nS<|im_end|>"));
        assert!(p.ends_with("<|im_start|>assistant\n"));
    }
}
