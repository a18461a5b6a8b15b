//! Pooling token vectors into one sentence vector, and L2 normalisation.
//!
//! Both work on the token rows of *one* sequence with no padding rows, so "masked" pooling is
//! simply pooling over the rows given: the forward passes hand over exactly the real tokens.

use std::path::Path;

use serde::Deserialize;

use super::EmbedError;

/// How token vectors become one sentence vector (`1_Pooling/config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Average of all token vectors (`[CLS]` and `[SEP]` included, padding excluded).
    Mean,
    /// The first token's (`[CLS]`) vector.
    Cls,
}

impl Pooling {
    /// The name used in fingerprints and messages.
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
        }
    }

    /// Reads a sentence-transformers `1_Pooling/config.json`. Exactly one mode must be on, and
    /// it must be one verbatim implements; anything else is an error rather than a silent mean.
    pub(crate) fn from_config(path: &Path, json: &str) -> Result<Self, EmbedError> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            pooling_mode_cls_token: bool,
            #[serde(default)]
            pooling_mode_mean_tokens: bool,
            #[serde(default)]
            pooling_mode_max_tokens: bool,
            #[serde(default)]
            pooling_mode_mean_sqrt_len_tokens: bool,
            #[serde(default)]
            pooling_mode_weightedmean_tokens: bool,
            #[serde(default)]
            pooling_mode_lasttoken: bool,
        }
        let raw: Raw = serde_json::from_str(json).map_err(|e| EmbedError::InvalidConfig {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let modes = [
            ("cls_token", raw.pooling_mode_cls_token),
            ("mean_tokens", raw.pooling_mode_mean_tokens),
            ("max_tokens", raw.pooling_mode_max_tokens),
            (
                "mean_sqrt_len_tokens",
                raw.pooling_mode_mean_sqrt_len_tokens,
            ),
            ("weightedmean_tokens", raw.pooling_mode_weightedmean_tokens),
            ("lasttoken", raw.pooling_mode_lasttoken),
        ];
        let on: Vec<&str> = modes
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect();
        match on.as_slice() {
            ["mean_tokens"] => Ok(Pooling::Mean),
            ["cls_token"] => Ok(Pooling::Cls),
            [] => Err(EmbedError::UnsupportedPooling {
                path: path.to_path_buf(),
                mode: "none enabled".into(),
            }),
            other => Err(EmbedError::UnsupportedPooling {
                path: path.to_path_buf(),
                mode: other.join(" + "),
            }),
        }
    }

    /// Pools the `rows.len() / hidden` token rows of one sequence into `out` (length `hidden`).
    pub(crate) fn pool_into(self, rows: &[f32], hidden: usize, out: &mut [f32]) {
        debug_assert_eq!(out.len(), hidden);
        debug_assert!(rows.len() >= hidden && rows.len().is_multiple_of(hidden));
        match self {
            Pooling::Cls => out.copy_from_slice(&rows[..hidden]),
            Pooling::Mean => {
                // Matches sentence-transformers' masked mean: sum of the token vectors whose
                // attention mask is 1, divided by the number of such tokens. Padding rows never
                // reach this function, so every row given is a masked-in token.
                out.fill(0.0);
                let n = rows.len() / hidden;
                for row in rows.chunks_exact(hidden) {
                    for (o, v) in out.iter_mut().zip(row) {
                        *o += v;
                    }
                }
                let inv = 1.0 / n as f32;
                for o in out.iter_mut() {
                    *o *= inv;
                }
            }
        }
    }
}

/// One normalisation for the crate ([`crate::vecmath::l2_normalize`]): a zero vector stays zero,
/// as `torch.nn.functional.normalize` leaves it; any other gets unit norm.
pub use crate::vecmath::l2_normalize;

#[cfg(test)]
mod tests {
    use super::*;

    fn config(modes: &[(&str, bool)]) -> String {
        let fields: Vec<String> = modes
            .iter()
            .map(|(m, on)| format!("\"pooling_mode_{m}\": {on}"))
            .collect();
        format!("{{\"word_embedding_dimension\": 4, {}}}", fields.join(", "))
    }

    #[test]
    fn reads_mean_and_cls_configs() {
        let p = Path::new("1_Pooling/config.json");
        let mean = config(&[
            ("cls_token", false),
            ("mean_tokens", true),
            ("max_tokens", false),
        ]);
        assert_eq!(Pooling::from_config(p, &mean).unwrap(), Pooling::Mean);
        let cls = config(&[("cls_token", true), ("mean_tokens", false)]);
        assert_eq!(Pooling::from_config(p, &cls).unwrap(), Pooling::Cls);
    }

    #[test]
    fn rejects_unsupported_and_ambiguous_modes() {
        let p = Path::new("x/1_Pooling/config.json");
        for modes in [
            vec![("max_tokens", true)],
            vec![("mean_tokens", true), ("cls_token", true)],
            vec![("mean_tokens", false)],
            vec![("lasttoken", true)],
        ] {
            let err = Pooling::from_config(p, &config(&modes)).unwrap_err();
            assert!(
                matches!(err, EmbedError::UnsupportedPooling { .. }),
                "{err}"
            );
            assert!(err.to_string().contains("x/1_Pooling/config.json"), "{err}");
        }
        assert!(matches!(
            Pooling::from_config(p, "not json"),
            Err(EmbedError::InvalidConfig { .. })
        ));
    }

    #[test]
    fn mean_pooling_averages_rows_and_cls_takes_the_first() {
        let rows = [1.0, 2.0, 3.0, 5.0, 6.0, 7.0, -3.0, 1.0, 2.0];
        let mut out = [0.0; 3];
        Pooling::Mean.pool_into(&rows, 3, &mut out);
        assert_eq!(out, [1.0, 3.0, 4.0]);
        Pooling::Cls.pool_into(&rows, 3, &mut out);
        assert_eq!(out, [1.0, 2.0, 3.0]);
        // A single token (never happens with [CLS]/[SEP], but must not divide by zero).
        Pooling::Mean.pool_into(&rows[..3], 3, &mut out);
        assert_eq!(out, [1.0, 2.0, 3.0]);
    }

    #[test]
    fn normalize_gives_unit_norm_and_keeps_zero_vectors_finite() {
        let mut v = [3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut z = [0.0; 4];
        l2_normalize(&mut z);
        assert_eq!(z, [0.0; 4]);
    }
}
