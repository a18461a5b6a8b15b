//! The reference engine: candle-transformers' `BertModel`, on any candle device.
//!
//! It is how verbatim runs on CUDA, and on the CPU it is the baseline the fast engine
//! (`bert.rs`) is checked and benchmarked against. Batches are padded to their longest
//! sequence with an attention mask, exactly like sentence-transformers; pooling then looks only
//! at each sequence's real tokens.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

use super::bert::{weight_prefix, Tokens};
use super::model_dir::ModelDir;
use super::pooling::{l2_normalize, Pooling};
use super::EmbedError;

pub(crate) struct CandleBert {
    model: BertModel,
    device: Device,
    hidden: usize,
}

impl CandleBert {
    pub fn load(model: &ModelDir, weights: Vec<u8>, device: Device) -> Result<Self, EmbedError> {
        let path = &model.weights_path;
        let werr = |source: candle_core::Error| EmbedError::Weights {
            path: path.clone(),
            source,
        };
        if model.config.position_offset() != 0 {
            return Err(EmbedError::InvalidConfig {
                path: path.with_file_name("config.json"),
                reason: "the candle engine runs BERT position numbering only; RoBERTa-style \
                         models need the CPU engine"
                    .into(),
            });
        }
        let config: Config =
            serde_json::from_str(&model.config_json).map_err(|e| EmbedError::InvalidConfig {
                path: path.with_file_name("config.json"),
                reason: format!("candle-transformers' BERT config: {e}"),
            })?;
        let vb =
            VarBuilder::from_buffered_safetensors(weights, DType::F32, &device).map_err(werr)?;
        let vb = match weight_prefix(&vb, &model.config).as_deref() {
            Some("") | None => vb,
            Some(prefix) => vb.pp(prefix.trim_end_matches('.')),
        };
        let bert = BertModel::load(vb, &config).map_err(werr)?;
        Ok(Self {
            model: bert,
            device,
            hidden: model.config.hidden_size,
        })
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Encodes one padded batch and pools each sequence over its own tokens.
    pub fn embed(&self, seqs: &[&Tokens], pooling: Pooling) -> Result<Vec<Vec<f32>>, EmbedError> {
        let fail = |source: candle_core::Error| EmbedError::Inference { source };
        let max_len = seqs.iter().map(|s| s.ids.len()).max().unwrap_or(0);
        let b = seqs.len();
        let mut ids = vec![0u32; b * max_len];
        let mut types = vec![0u32; b * max_len];
        let mut mask = vec![0u32; b * max_len];
        for (r, s) in seqs.iter().enumerate() {
            let row = r * max_len;
            ids[row..row + s.ids.len()].copy_from_slice(&s.ids);
            types[row..row + s.types.len()].copy_from_slice(&s.types);
            mask[row..row + s.ids.len()].fill(1);
        }
        let run = || -> candle_core::Result<Vec<f32>> {
            let t = |v: Vec<u32>| Tensor::from_vec(v, (b, max_len), &self.device);
            let out = self.model.forward(&t(ids)?, &t(types)?, Some(&t(mask)?))?;
            out.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()
        };
        let hidden_states = run().map_err(fail)?;
        let h = self.hidden;
        Ok(seqs
            .iter()
            .enumerate()
            .map(|(r, s)| {
                let start = r * max_len * h;
                let mut v = vec![0.0f32; h];
                pooling.pool_into(&hidden_states[start..start + s.ids.len() * h], h, &mut v);
                l2_normalize(&mut v);
                v
            })
            .collect())
    }
}
