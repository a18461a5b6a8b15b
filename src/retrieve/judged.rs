//! Scores of a ranking against hand judgments: P@k and nDCG@k over graded relevance (0, 1, 2).
//!
//! Why it lives in the library: the judged query set (`tests/fixtures/search_judged`) is scored
//! by two programs — the evaluator on real data (`examples/search_eval.rs`, which needs
//! `../shared`) and the demo-data test (`tests/it/search_judged.rs`, which must not) — and both
//! must count the same way. A hit with no judgment counts as not relevant: the evaluator lists
//! such hits so that they get judged, and a score never rises because a hit was not looked at.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A query of the judged set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JudgedQuery {
    /// Stable id (`a01`, `t07`, `d15`): what the judgments refer to.
    pub qid: String,
    /// The data set it runs on (`amazon`, `airline`, `demo`).
    pub set: String,
    /// What the analyst types.
    pub text: String,
    /// `complaint`, `praise`, `negated`, `french`, `name`, `topic` (see RULES.md).
    pub kind: String,
    /// `tune` (used while changing the ranking) or `heldout` (never tuned on).
    pub split: String,
}

/// One judgment: a verbatim's relevance to a query.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Judgment {
    /// The query's id.
    pub qid: String,
    /// The data set.
    pub set: String,
    /// The verbatim's id as ingested.
    pub id: String,
    /// 0 not relevant, 1 partly, 2 relevant.
    pub grade: u8,
    /// The verbatim's text, for data that may be redistributed (the demo data) only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Errors reading a judged set.
#[derive(Debug, thiserror::Error)]
pub enum JudgedError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not the expected JSON object.
    #[error("{}:{line}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Why.
        source: serde_json::Error,
    },
    /// A grade outside 0..=2.
    #[error("{}:{line}: grade {grade} is not 0, 1 or 2", path.display())]
    Grade {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The grade found.
        grade: u8,
    },
}

/// Reads a JSON Lines file of `T` (blank lines skipped), naming file and line on error.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, JudgedError> {
    Ok(numbered(path)?.into_iter().map(|(_, t)| t).collect())
}

/// [`read_jsonl`] with each value's 1-based line number.
fn numbered<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<(usize, T)>, JudgedError> {
    let text = std::fs::read_to_string(path).map_err(|source| JudgedError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map(|t| (i + 1, t))
                .map_err(|source| JudgedError::Parse {
                    path: path.to_path_buf(),
                    line: i + 1,
                    source,
                })
        })
        .collect()
}

/// Grades by `(qid, verbatim id)`.
#[derive(Clone, Debug, Default)]
pub struct Grades {
    by_pair: HashMap<(String, String), u8>,
}

impl Grades {
    /// Reads `judgments.jsonl`; grades must be 0, 1 or 2. A pair judged twice keeps the last
    /// line (a re-judgment appended later wins).
    pub fn read(path: &Path) -> Result<Grades, JudgedError> {
        let rows: Vec<(usize, Judgment)> = numbered(path)?;
        let mut by_pair = HashMap::new();
        for (line, j) in rows {
            if j.grade > 2 {
                return Err(JudgedError::Grade {
                    path: path.to_path_buf(),
                    line,
                    grade: j.grade,
                });
            }
            by_pair.insert((j.qid, j.id), j.grade);
        }
        Ok(Grades { by_pair })
    }

    /// The grade of `id` for `qid`, `None` when not judged.
    pub fn get(&self, qid: &str, id: &str) -> Option<u8> {
        self.by_pair
            .get(&(qid.to_string(), id.to_string()))
            .copied()
    }

    /// Every grade given for `qid` (the pool's relevant verbatims make the ideal ranking).
    pub fn all_for(&self, qid: &str) -> Vec<u8> {
        self.by_pair
            .iter()
            .filter(|((q, _), _)| q == qid)
            .map(|(_, &g)| g)
            .collect()
    }
}

/// Share of the first `k` positions holding a hit of grade ≥ 1 (unjudged and missing hits
/// count as not relevant; the denominator is `k` even when fewer hits came back).
pub fn precision_at(grades: &[Option<u8>], k: usize) -> f64 {
    let hits = grades
        .iter()
        .take(k)
        .filter(|g| g.is_some_and(|g| g >= 1))
        .count();
    hits as f64 / k as f64
}

/// nDCG@k with gain `2^grade − 1` and discount `log2(rank + 1)`; the ideal ranking is made of
/// `pool`, every grade judged for the query. 0 when nothing in the pool is relevant.
pub fn ndcg_at(grades: &[Option<u8>], pool: &[u8], k: usize) -> f64 {
    let dcg = |gs: &mut dyn Iterator<Item = u8>| -> f64 {
        gs.take(k)
            .enumerate()
            .map(|(i, g)| (2f64.powi(g as i32) - 1.0) / (i as f64 + 2.0).log2())
            .sum()
    };
    let mut ideal: Vec<u8> = pool.to_vec();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let best = dcg(&mut ideal.into_iter());
    if best == 0.0 {
        return 0.0;
    }
    dcg(&mut grades.iter().map(|g| g.unwrap_or(0))) / best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_counts_grade_one_and_up_and_unjudged_as_misses() {
        let g = [Some(2), Some(0), None, Some(1), Some(2), Some(2)];
        assert_eq!(precision_at(&g, 5), 3.0 / 5.0);
        // Fewer hits than k: the missing positions are misses.
        assert_eq!(precision_at(&[Some(2)], 5), 0.2);
    }

    #[test]
    fn ndcg_is_one_for_the_ideal_order_and_less_otherwise() {
        let pool = [2, 1, 0, 0];
        assert!((ndcg_at(&[Some(2), Some(1), Some(0)], &pool, 10) - 1.0).abs() < 1e-12);
        let swapped = ndcg_at(&[Some(1), Some(2), Some(0)], &pool, 10);
        // (1/1 + 3/log2 3) / (3/1 + 1/log2 3)
        let want = (1.0 + 3.0 / 3f64.log2()) / (3.0 + 1.0 / 3f64.log2());
        assert!((swapped - want).abs() < 1e-12, "{swapped} vs {want}");
        assert_eq!(ndcg_at(&[None, Some(0)], &pool, 10), 0.0);
        assert_eq!(ndcg_at(&[Some(0)], &[0, 0], 10), 0.0);
    }

    #[test]
    fn a_bad_grade_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        std::fs::write(
            &p,
            "{\"qid\":\"a\",\"set\":\"s\",\"id\":\"1\",\"grade\":2}\n\n{\"qid\":\"a\",\"set\":\"s\",\"id\":\"2\",\"grade\":3}\n",
        )
        .unwrap();
        let e = Grades::read(&p).unwrap_err().to_string();
        assert!(e.ends_with("j.jsonl:3: grade 3 is not 0, 1 or 2"), "{e}");
    }
}
