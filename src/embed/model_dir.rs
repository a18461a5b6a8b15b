//! Reading a sentence-transformers model folder: configs, tokenizer, weight bytes, fingerprint.
//!
//! The folder layout is the one sentence-transformers saves and `models/fetch.sh` provisions:
//!
//! ```text
//! config.json                  the transformer (BERT family) → [`BertConfig`]
//! model.safetensors            its weights (read into memory; no mmap, so no `unsafe`)
//! tokenizer.json               the Hugging Face tokenizer
//! sentence_bert_config.json    max_seq_length (and do_lower_case)
//! 1_Pooling/config.json        pooling mode (mean or CLS)
//! config_sentence_transformers.json   optional: "prompts" for queries / passages
//! ```
//!
//! Every required file that is missing becomes [`EmbedError::MissingFile`] with the path and
//! the command that provisions it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::kernels::Activation;
use super::pooling::Pooling;
use super::EmbedError;

/// The subset of a Hugging Face BERT-family `config.json` the forward pass needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl BertConfig {
    /// The activation named by `hidden_act`.
    pub fn activation(&self) -> Option<Activation> {
        match self.hidden_act.as_str() {
            "gelu" => Some(Activation::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" => Some(Activation::GeluTanh),
            "relu" => Some(Activation::Relu),
            _ => None,
        }
    }

    /// RoBERTa-style models number positions from `pad_token_id + 1`; BERT from 0.
    pub fn position_offset(&self) -> usize {
        match self.model_type.as_deref() {
            Some("roberta" | "xlm-roberta" | "camembert") => self.pad_token_id + 1,
            _ => 0,
        }
    }

    fn validate(&self, path: &Path) -> Result<(), EmbedError> {
        let bad = |reason: String| {
            Err(EmbedError::InvalidConfig {
                path: path.to_path_buf(),
                reason,
            })
        };
        match self.model_type.as_deref() {
            None | Some("bert" | "roberta" | "xlm-roberta" | "camembert") => {}
            Some(other) => {
                return bad(format!(
                    "model_type \"{other}\" is not a BERT-family encoder verbatim can run"
                ))
            }
        }
        if let Some(kind) = self.position_embedding_type.as_deref() {
            if kind != "absolute" {
                return bad(format!(
                    "position_embedding_type \"{kind}\" is not supported (only \"absolute\")"
                ));
            }
        }
        if self.activation().is_none() {
            return bad(format!(
                "hidden_act \"{}\" is not supported",
                self.hidden_act
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.type_vocab_size == 0 {
            return bad("type_vocab_size is 0".into());
        }
        Ok(())
    }
}

/// Optional text prefixes from `config_sentence_transformers.json` ("prompts"), the way
/// sentence-transformers applies them: e5 models use "query: " / "passage: ".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Prompts {
    pub query: Option<String>,
    pub passage: Option<String>,
}

/// Everything read from a model folder, ready for an engine to build on.
pub(crate) struct ModelDir {
    pub config: BertConfig,
    pub config_json: String,
    pub weights: Vec<u8>,
    pub weights_path: PathBuf,
    pub tokenizer: Tokenizer,
    pub pooling: Pooling,
    pub max_seq_length: usize,
    pub do_lower_case: bool,
    pub prompts: Prompts,
    pub fingerprint: String,
}

fn fetch_hint(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| super::DEFAULT_MODEL.to_string());
    format!("run `models/fetch.sh {name}` (or `make models`) to provision it")
}

fn read(dir: &Path, file: &str) -> Result<Vec<u8>, EmbedError> {
    let path = dir.join(file);
    std::fs::read(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            EmbedError::MissingFile {
                path: path.clone(),
                hint: fetch_hint(dir),
            }
        } else {
            EmbedError::Io {
                path: path.clone(),
                source,
            }
        }
    })
}

fn read_text(dir: &Path, file: &str) -> Result<String, EmbedError> {
    let bytes = read(dir, file)?;
    String::from_utf8(bytes).map_err(|e| EmbedError::InvalidConfig {
        path: dir.join(file),
        reason: format!("not UTF-8: {e}"),
    })
}

fn parse_json<T: for<'de> Deserialize<'de>>(path: PathBuf, text: &str) -> Result<T, EmbedError> {
    serde_json::from_str(text).map_err(|e| EmbedError::InvalidConfig {
        path,
        reason: e.to_string(),
    })
}

impl ModelDir {
    /// Reads and checks every file; does not build the network yet.
    pub fn read(dir: &Path) -> Result<Self, EmbedError> {
        if !dir.is_dir() {
            return Err(EmbedError::MissingFile {
                path: dir.to_path_buf(),
                hint: fetch_hint(dir),
            });
        }
        let config_json = read_text(dir, "config.json")?;
        let config: BertConfig = parse_json(dir.join("config.json"), &config_json)?;
        config.validate(&dir.join("config.json"))?;

        #[derive(Deserialize)]
        struct SbertConfig {
            max_seq_length: Option<usize>,
            #[serde(default)]
            do_lower_case: bool,
        }
        let sbert_path = dir.join("sentence_bert_config.json");
        let sbert: SbertConfig = parse_json(
            sbert_path.clone(),
            &read_text(dir, "sentence_bert_config.json")?,
        )?;
        let positions = config
            .max_position_embeddings
            .saturating_sub(config.position_offset());
        let max_seq_length = sbert.max_seq_length.unwrap_or(positions);
        if max_seq_length < 2 || max_seq_length > positions {
            return Err(EmbedError::InvalidConfig {
                path: sbert_path,
                reason: format!(
                    "max_seq_length {max_seq_length} must be between 2 and the model's {positions} positions"
                ),
            });
        }

        let pooling_path = dir.join("1_Pooling").join("config.json");
        let pooling =
            Pooling::from_config(&pooling_path, &read_text(dir, "1_Pooling/config.json")?)?;

        let prompts = Self::read_prompts(dir)?;
        let prompts = match super::catalog::profile_for(dir)? {
            Some((manifest, profile)) => Self::apply_profile(
                &manifest,
                &profile,
                prompts,
                config.hidden_size,
                max_seq_length,
            )?,
            None => prompts,
        };

        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer_json = read(dir, "tokenizer.json")?;
        let tokenizer = Self::tokenizer(&tokenizer_path, &tokenizer_json, max_seq_length)?;
        if tokenizer.get_vocab_size(true) > config.vocab_size {
            return Err(EmbedError::InvalidConfig {
                path: tokenizer_path,
                reason: format!(
                    "the tokenizer knows {} tokens but config.json's vocab_size is {}",
                    tokenizer.get_vocab_size(true),
                    config.vocab_size
                ),
            });
        }

        let weights_path = dir.join("model.safetensors");
        let weights = read(dir, "model.safetensors")?;

        let fingerprint = {
            let mut h = Sha256::new();
            for part in [config_json.as_bytes(), &tokenizer_json, &weights] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part);
            }
            if prompts != Prompts::default() {
                h.update(format!("{prompts:?}").as_bytes());
            }
            if sbert.do_lower_case {
                h.update(b"do_lower_case");
            }
            let digest = hex::encode(h.finalize());
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!(
                "{name}/sha256:{}/pool={}/max_seq={max_seq_length}/dim={}",
                &digest[..16],
                pooling.name(),
                config.hidden_size
            )
        };

        Ok(Self {
            config,
            config_json,
            weights,
            weights_path,
            tokenizer,
            pooling,
            max_seq_length,
            do_lower_case: sbert.do_lower_case,
            prompts,
            fingerprint,
        })
    }

    /// The shipped tokenizer.json of many models pads every text to a fixed 128 tokens and cuts
    /// at 128; sentence-transformers instead pads to the longest text of the batch and cuts at
    /// `max_seq_length`. We do the same (and pad nothing at all: the CPU forward pass runs each
    /// sequence at its own length; the candle engine pads per batch itself).
    fn tokenizer(path: &Path, json: &[u8], max_seq_length: usize) -> Result<Tokenizer, EmbedError> {
        let err = |reason: String| EmbedError::Tokenizer {
            path: path.to_path_buf(),
            reason,
        };
        let mut tokenizer = Tokenizer::from_bytes(json).map_err(|e| err(e.to_string()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_seq_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| err(e.to_string()))?;
        Ok(tokenizer)
    }

    /// The manifest's profile is authoritative for prompts: it fills them in where the folder
    /// has none (upstream e5 folders carry none), and a folder that disagrees is refused rather
    /// than embedded in a way the workspace's other vectors were not.
    fn apply_profile(
        manifest: &Path,
        profile: &super::catalog::Profile,
        folder: Prompts,
        hidden_size: usize,
        max_seq_length: usize,
    ) -> Result<Prompts, EmbedError> {
        let want = |p: &str| (!p.is_empty()).then(|| p.to_string());
        let from_profile = Prompts {
            query: want(&profile.query_prompt),
            passage: want(&profile.passage_prompt),
        };
        if profile.dim != hidden_size {
            return Err(EmbedError::InvalidConfig {
                path: manifest.to_path_buf(),
                reason: format!(
                    "the profile says {} dimensions but the model folder's config.json has {hidden_size}",
                    profile.dim
                ),
            });
        }
        if profile.max_seq_length != max_seq_length {
            return Err(EmbedError::InvalidConfig {
                path: manifest.to_path_buf(),
                reason: format!(
                    "the profile says max_seq_length {} but the model folder's \
                     sentence_bert_config.json says {max_seq_length}",
                    profile.max_seq_length
                ),
            });
        }
        if folder != Prompts::default() && folder != from_profile {
            return Err(EmbedError::InvalidConfig {
                path: manifest.to_path_buf(),
                reason: format!(
                    "the profile's prompts ({from_profile:?}) differ from the model folder's \
                     config_sentence_transformers.json ({folder:?})"
                ),
            });
        }
        Ok(from_profile)
    }

    fn read_prompts(dir: &Path) -> Result<Prompts, EmbedError> {
        let file = "config_sentence_transformers.json";
        let text = match read_text(dir, file) {
            Ok(text) => text,
            Err(EmbedError::MissingFile { .. }) => return Ok(Prompts::default()),
            Err(e) => return Err(e),
        };
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            prompts: HashMap<String, String>,
        }
        let raw: Raw = parse_json(dir.join(file), &text)?;
        let pick = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| raw.prompts.get(*n))
                .filter(|p| !p.is_empty())
                .cloned()
        };
        Ok(Prompts {
            query: pick(&["query"]),
            passage: pick(&["passage", "document"]),
        })
    }
}
