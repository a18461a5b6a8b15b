//! Sentiment per verbatim: a logistic-regression head on the stored embedding. Per opinion unit:
//! the head blended with a negation-aware lexicon rule ([`unit`], [`rule`]).
//!
//! Why: the embedding is already computed and stored for every verbatim, so a linear head costs
//! one dot product (≈0.1 µs) and no text is re-read. Measured against VADER (`benches/
//! sentiment.rs`, BENCHMARKS.md): trained only on the UCI sentences (CC BY 4.0, shipped in
//! `data/`), it beats VADER on UCI (held-out domains) and on Amazon Fine Foods (never trained on).
//!
//! A head belongs to one embedding model: it is trained by `examples/train_sentiment.rs`
//! (deterministic: L2-regularised logistic regression solved by Newton's method) and shipped as
//! `models/sentiment/<model>.json` with the fingerprint of the model it was trained on; loading
//! checks the fingerprint, so a head is never applied to another model's vectors.
//!
//! Output: `score = 2·p − 1` in [−1, 1]; neutral when `|score| < neutral_band` (0.2, i.e. p
//! within 0.1 of 0.5 — about 5–7% of the evaluation texts; accuracy on the rest rises ~3 points).

use std::path::{Path, PathBuf};

pub mod rule;
pub mod unit;

pub use unit::{of_verbatim, unit, UnitSentiment, VerbatimSentiment};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::themes::Polarity;

/// Errors loading a sentiment head.
#[derive(Debug, thiserror::Error)]
pub enum SentimentError {
    /// No head for this model.
    #[error("no sentiment model for {model} ({path} missing); train one with `cargo run --release --example train_sentiment -- {model}`")]
    Missing {
        /// Embedding model name.
        model: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file is unreadable or malformed.
    #[error("{path}: {reason}")]
    Invalid {
        /// The head file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Trained on another model's vectors.
    #[error("{path} was trained on {trained}, but the workspace's vectors come from {actual}; retrain it")]
    WrongModel {
        /// The head file.
        path: PathBuf,
        /// Fingerprint it was trained on.
        trained: String,
        /// Fingerprint of the vectors.
        actual: String,
    },
}

/// A trained head, as shipped in `models/sentiment/<model>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentimentHead {
    /// Embedding model name (folder name).
    pub model: String,
    /// Fingerprint of the embedding model it was trained on.
    pub fingerprint: String,
    /// One weight per embedding dimension.
    pub weights: Vec<f32>,
    /// Intercept.
    pub bias: f32,
    /// |score| under this is neutral.
    pub neutral_band: f32,
    /// L2 strength used (sklearn's C).
    pub c: f64,
    /// Training data: file and sha256.
    pub trained_on: String,
    /// sha256 of the training file.
    pub data_sha256: String,
    /// Evaluation at training time (held-out accuracies), for the record.
    pub evaluation: serde_json::Value,
    /// Whether a unit states an opinion at all (heads trained before it have none: every unit
    /// is then read for polarity, as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subjectivity: Option<Subjectivity>,
}

/// A second logistic head on the same vectors: P(the text states an opinion). Trained on the
/// UCI sentences (every one carries a polarity) against `data/neutral_sentences.txt` (factual
/// statements, questions and requests, EN/FR, written for the project), the neutral rows
/// repeated to balance the classes.
///
/// Why: the polarity head was trained on two classes only, so it reads a factual unit ("I
/// bought this for my dog", "the box holds 12 bars") as mildly positive or negative, and 24% of
/// Amazon's units came out negative on reviews 65% of which are five-star. Measured on
/// SemEval-2014 laptops' aspect terms (3 classes) and the airline tweets' 3-class labels
/// (`examples/neutral_eval.rs`, BENCHMARKS.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subjectivity {
    /// One weight per embedding dimension.
    pub weights: Vec<f32>,
    /// Intercept.
    pub bias: f32,
    /// A unit with P(opinion) under this, and no clear lexicon word, is read as neutral.
    pub threshold: f32,
    /// What is left of its polarity score then (0 = neutral; kept small, not zero, so that a
    /// verbatim of only such units still leans the way its words do).
    pub damp: f32,
    /// Training data: files and sha256.
    pub trained_on: String,
}

impl Subjectivity {
    /// P(opinion) of a unit embedding, in (0, 1).
    pub fn p_opinion(&self, v: &[f32]) -> f32 {
        let z = crate::vecmath::dot(&self.weights, v) + self.bias;
        1.0 / (1.0 + (-z).exp())
    }
}

impl SentimentHead {
    /// A head for unit tests: `weights` and `bias` on a model "t" of fingerprint `fingerprint`,
    /// neutral band 0.2, no subjectivity part.
    #[cfg(test)]
    pub(crate) fn for_test(fingerprint: &str, weights: Vec<f32>, bias: f32) -> Self {
        SentimentHead {
            model: "t".into(),
            fingerprint: fingerprint.into(),
            weights,
            bias,
            neutral_band: 0.2,
            c: 1.0,
            trained_on: String::new(),
            data_sha256: String::new(),
            evaluation: serde_json::Value::Null,
            subjectivity: None,
        }
    }

    /// Where the head for model folder `model_dir` lives: `models/sentiment/<name>.json` beside
    /// the model folders.
    pub fn path_for(model_dir: &Path) -> PathBuf {
        let name = model_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        model_dir
            .parent()
            .unwrap_or(Path::new("."))
            .join("sentiment")
            .join(format!("{name}.json"))
    }

    /// Loads the head at `path` and checks it was trained on vectors with `fingerprint`.
    /// Returns it with the sha256 of the file (for report manifests).
    pub fn load(path: &Path, fingerprint: &str) -> Result<(Self, String), SentimentError> {
        let bytes = std::fs::read(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                SentimentError::Missing {
                    model: fingerprint.split('/').next().unwrap_or("?").to_string(),
                    path: path.to_path_buf(),
                }
            } else {
                SentimentError::Invalid {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }
            }
        })?;
        let head: SentimentHead =
            serde_json::from_slice(&bytes).map_err(|e| SentimentError::Invalid {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        if head.fingerprint != fingerprint {
            return Err(SentimentError::WrongModel {
                path: path.to_path_buf(),
                trained: head.fingerprint,
                actual: fingerprint.to_string(),
            });
        }
        Ok((head, hex::encode(Sha256::digest(&bytes))))
    }

    /// Score in [−1, 1] of a unit embedding.
    pub fn score(&self, v: &[f32]) -> f32 {
        let z = crate::vecmath::dot(&self.weights, v) + self.bias;
        2.0 / (1.0 + (-z).exp()) - 1.0
    }

    /// Class of a score.
    pub fn polarity(&self, score: f32) -> Polarity {
        band_polarity(score, self.neutral_band)
    }
}

/// Class of a score under a neutral band (what [`SentimentHead::polarity`] does with its own):
/// for scores stored with the band they were classed under, without the head.
pub fn band_polarity(score: f32, neutral_band: f32) -> Polarity {
    if score >= neutral_band {
        Polarity::Positive
    } else if score <= -neutral_band {
        Polarity::Negative
    } else {
        Polarity::Neutral
    }
}

/// L2-regularised logistic regression, `min Σ logloss + ‖w‖²/(2C)` (intercept not penalised),
/// solved by Newton's method with a Cholesky solve: exact and deterministic. `x` is n×dim.
#[allow(clippy::needless_range_loop)] // index-heavy linear algebra reads clearer with indices
pub fn train_logistic(x: &[f32], dim: usize, y: &[bool], c: f64) -> (Vec<f32>, f32) {
    let n = y.len();
    assert_eq!(x.len(), n * dim);
    let p = dim + 1; // last coordinate: intercept
    let mut w = vec![0f64; p];
    let row = |i: usize, j: usize| -> f64 {
        if j == dim {
            1.0
        } else {
            x[i * dim + j] as f64
        }
    };
    for _ in 0..50 {
        let mut grad = vec![0f64; p];
        let mut hess = vec![0f64; p * p];
        for i in 0..n {
            let z: f64 = (0..p).map(|j| w[j] * row(i, j)).sum();
            let pr = 1.0 / (1.0 + (-z).exp());
            let t = if y[i] { 1.0 } else { 0.0 };
            let s = pr * (1.0 - pr);
            for a in 0..p {
                let ra = row(i, a);
                grad[a] += (pr - t) * ra;
                let sa = s * ra;
                for b in a..p {
                    hess[a * p + b] += sa * row(i, b);
                }
            }
        }
        for a in 0..p {
            for b in 0..a {
                hess[a * p + b] = hess[b * p + a];
            }
            if a < dim {
                grad[a] += w[a] / c;
                hess[a * p + a] += 1.0 / c;
            } else {
                hess[a * p + a] += 1e-9;
            }
        }
        let step = cholesky_solve(&hess, &grad, p);
        let mut change = 0f64;
        for j in 0..p {
            w[j] -= step[j];
            change = change.max(step[j].abs());
        }
        if change < 1e-8 {
            break;
        }
    }
    (w[..dim].iter().map(|&v| v as f32).collect(), w[dim] as f32)
}

/// Solves `a · x = b` for a symmetric positive-definite `a` (p×p).
#[allow(clippy::needless_range_loop)]
fn cholesky_solve(a: &[f64], b: &[f64], p: usize) -> Vec<f64> {
    let mut l = vec![0f64; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                l[i * p + i] = s.max(1e-12).sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    let mut y = vec![0f64; p];
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * p + k] * y[k];
        }
        y[i] = s / l[i * p + i];
    }
    let mut x = vec![0f64; p];
    for i in (0..p).rev() {
        let mut s = y[i];
        for k in i + 1..p {
            s -= l[k * p + i] * x[k];
        }
        x[i] = s / l[i * p + i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_heads_match_the_manifest_checksums() {
        #[derive(Deserialize)]
        struct M {
            sentiment: Vec<Entry>,
        }
        #[derive(Deserialize)]
        struct Entry {
            model: String,
            path: String,
            sha256: String,
        }
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let m: M = toml::from_str(&std::fs::read_to_string(models.join("manifest.toml")).unwrap())
            .unwrap();
        assert_eq!(m.sentiment.len(), 2);
        for e in m.sentiment {
            let bytes = std::fs::read(models.join(&e.path)).unwrap();
            assert_eq!(hex::encode(Sha256::digest(&bytes)), e.sha256, "{}", e.path);
            let head: SentimentHead = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(head.model, e.model);
            assert!(head.fingerprint.starts_with(&format!("{}/", e.model)));
        }
    }

    #[test]
    fn logistic_regression_separates_and_is_deterministic() {
        // Two clouds along dimension 0.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..200 {
            let pos = i % 2 == 0;
            let jitter = ((i * 37 % 17) as f32 / 17.0 - 0.5) * 0.4;
            x.extend([if pos { 0.8 } else { -0.8 } + jitter, 0.3 + jitter, -jitter]);
            y.push(pos);
        }
        let (w, b) = train_logistic(&x, 3, &y, 1.0);
        let head = SentimentHead::for_test("t", w.clone(), b);
        let ok = (0..200)
            .filter(|&i| (head.score(&x[i * 3..i * 3 + 3]) > 0.0) == y[i])
            .count();
        assert_eq!(ok, 200);
        assert_eq!(head.polarity(0.1), Polarity::Neutral);
        assert_eq!(head.polarity(-0.5), Polarity::Negative);
        assert_eq!(train_logistic(&x, 3, &y, 1.0), (w, b));
    }

    #[test]
    fn cholesky_solves_a_small_system() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let x = cholesky_solve(&a, &[2.0, 1.0], 2);
        assert!((4.0 * x[0] + 2.0 * x[1] - 2.0).abs() < 1e-12);
        assert!((2.0 * x[0] + 3.0 * x[1] - 1.0).abs() < 1e-12);
    }
}
