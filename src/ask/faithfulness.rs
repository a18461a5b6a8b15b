//! The labelled faithfulness set the support check ([`super::support`]) is measured on: (claim,
//! cited verbatims, supported yes/no) triples from real `verbatim ask` outputs, judged by hand
//! under written rules (`tests/fixtures/faithfulness/RULES.md`).
//!
//! Why the text is not always in the file: some sets are evaluation-only (airline tweets, Amazon
//! fine foods: their licences forbid copying them into the project), so their triples hold the
//! verbatim ids, the claim (model output) and a digest of the redacted text the model saw; the
//! text is read back from `../shared/data` at evaluation time and redacted again, and the digest
//! proves it is the text that was judged. Triples over the demo data (redistributable) carry
//! their text, so a test can run without `../shared`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::support::{self, Cited, Polarities};
use crate::embed::EmbedError;

/// One cited verbatim of a triple.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CitedRef {
    /// Its number in the answer's context (`[n]`).
    pub n: usize,
    /// Verbatim id in the data set.
    pub id: String,
    /// Its date as the context showed it (a source of numbers), or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub date: String,
    /// First 16 hex digits of the SHA-256 of the redacted text the model saw.
    pub sha256: String,
    /// The redacted text, for redistributable sets only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One judged claim.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Triple {
    /// `amazon_fine_foods`, `airline_tweets` (evaluation-only) or `demo`.
    pub dataset: String,
    /// The question asked.
    pub question: String,
    /// The generated sentence, with its citations as the answer had them.
    pub claim: String,
    /// The verbatims it cites.
    pub cited: Vec<CitedRef>,
    /// The hand judgment: does the claim stand in the cited verbatims?
    pub supported: bool,
    /// The rule of RULES.md the judgment rests on (`R1`…).
    pub rule: String,
    /// Why, briefly.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl Triple {
    /// The cited verbatims as the support check reads them (texts loaded).
    pub fn context(&self) -> Vec<Cited<'_>> {
        self.cited
            .iter()
            .map(|c| Cited {
                n: c.n,
                text: c.text.as_deref().unwrap_or(""),
                meta: &c.date,
            })
            .collect()
    }
}

/// Errors reading a set.
#[derive(Debug, thiserror::Error)]
pub enum FaithfulnessError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a triple.
    #[error("{path}:{line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A cited verbatim's text is missing or not the one judged.
    #[error("{path}:{line}: verbatim {id}: {reason}")]
    Text {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Verbatim id.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

/// The digest stored for a redacted text.
pub fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))[..16].to_string()
}

/// Reads a set (JSON Lines). Texts that are not in the file are looked up in `texts` (id →
/// raw text of the data set; redacted here, as at ingest) and checked against their digest.
pub fn load(
    path: &Path,
    texts: Option<&HashMap<String, String>>,
) -> Result<Vec<Triple>, FaithfulnessError> {
    let body = std::fs::read_to_string(path).map_err(|source| FaithfulnessError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, l) in body.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let mut t: Triple = serde_json::from_str(l).map_err(|e| FaithfulnessError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        for c in &mut t.cited {
            let err = |reason: String| FaithfulnessError::Text {
                path: path.to_path_buf(),
                line: i + 1,
                id: c.id.clone(),
                reason,
            };
            let text = match (&c.text, texts) {
                (Some(t), _) => t.clone(),
                (None, Some(all)) => match all.get(&c.id) {
                    Some(raw) => crate::pii::redact(raw).as_str().to_string(),
                    None => return Err(err("not in the data set".into())),
                },
                (None, None) => {
                    return Err(err(
                        "no text in the file and no data set given (evaluation-only set)".into(),
                    ))
                }
            };
            if digest(&text) != c.sha256 {
                return Err(err(format!(
                    "its text has digest {}, the judged one {}",
                    digest(&text),
                    c.sha256
                )));
            }
            c.text = Some(text);
        }
        out.push(t);
    }
    Ok(out)
}

/// Confusion counts of the support check against the hand labels ("supported" is positive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Scores {
    /// Kept, and judged supported.
    pub true_positive: usize,
    /// Kept, but judged unsupported: what precision counts against.
    pub false_positive: usize,
    /// Dropped, but judged supported.
    pub false_negative: usize,
    /// Dropped, and judged unsupported.
    pub true_negative: usize,
}

impl Scores {
    /// Of the sentences the check keeps, the share judged supported (1 when none is kept).
    pub fn precision(&self) -> f64 {
        let kept = self.true_positive + self.false_positive;
        if kept == 0 {
            1.0
        } else {
            self.true_positive as f64 / kept as f64
        }
    }

    /// Of the sentences judged supported, the share the check keeps.
    pub fn recall(&self) -> f64 {
        let good = self.true_positive + self.false_negative;
        if good == 0 {
            1.0
        } else {
            self.true_positive as f64 / good as f64
        }
    }

    /// Triples counted.
    pub fn total(&self) -> usize {
        self.true_positive + self.false_positive + self.false_negative + self.true_negative
    }

    /// Adds one outcome.
    pub fn add(&mut self, kept: bool, judged: bool) {
        match (kept, judged) {
            (true, true) => self.true_positive += 1,
            (true, false) => self.false_positive += 1,
            (false, true) => self.false_negative += 1,
            (false, false) => self.true_negative += 1,
        }
    }
}

/// Runs the support check on each triple (texts loaded): the checked sentence for each, in
/// order, and the scores.
pub fn evaluate(
    triples: &[Triple],
    polarities: &Polarities<'_>,
) -> Result<(Scores, Vec<support::Checked>), EmbedError> {
    let mut scores = Scores::default();
    let mut checked = Vec::with_capacity(triples.len());
    for t in triples {
        let c = support::check(&t.claim, &t.context(), polarities)?;
        scores.add(c.supported(), t.supported);
        checked.push(c);
    }
    Ok((scores, checked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_and_recall_count_what_is_kept() {
        let mut s = Scores::default();
        for (kept, judged) in [(true, true), (true, true), (true, false), (false, true)] {
            s.add(kept, judged);
        }
        assert!((s.precision() - 2.0 / 3.0).abs() < 1e-9);
        assert!((s.recall() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.total(), 4);
    }

    #[test]
    fn an_evaluation_only_triple_needs_its_data_set_and_the_judged_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("set.jsonl");
        let line = serde_json::json!({
            "dataset": "airline_tweets", "question": "q", "claim": "The flight was late [1].",
            "cited": [{"n": 1, "id": "tw-1", "sha256": digest("My flight was late.")}],
            "supported": true, "rule": "R1"
        });
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let e = load(&path, None).unwrap_err().to_string();
        assert!(e.contains("set.jsonl:1: verbatim tw-1"), "{e}");
        let mut texts = HashMap::new();
        texts.insert("tw-1".to_string(), "My flight was late!".to_string());
        let e = load(&path, Some(&texts)).unwrap_err().to_string();
        assert!(e.contains("digest"), "{e}");
        texts.insert("tw-1".to_string(), "My flight was late.".to_string());
        let t = load(&path, Some(&texts)).unwrap();
        let (s, _) = evaluate(&t, &Polarities::rule_only()).unwrap();
        assert_eq!(s.true_positive, 1, "{s:?}");
    }
}
