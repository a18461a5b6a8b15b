//! Sentences of a verbatim, for the two things a whole-text embedding does poorly: the sentiment
//! of a long review (mean of its sentence embeddings: Amazon Fine Foods accuracy 0.734 → 0.778,
//! `benches/peers/proto/FINDINGS.md`), and a second theme when one sentence speaks of another
//! theme than the verbatim as a whole.
//!
//! Split on `.`, `!`, `?`, `…` followed by a space or the end, and on line breaks and `<br>`;
//! fragments under 3 words are glued to the sentence before. At most [`MAX_SENTENCES`] are kept
//! (long texts are truncated by the model anyway).

use std::collections::HashMap;

use crate::embed::{EmbedError, Embedder, TextKind};
use crate::store::{SentenceVector, Store, StoreError};

/// Sentences embedded per verbatim at most.
pub const MAX_SENTENCES: usize = 8;

/// The sentences of `text` (trimmed, non-empty).
pub fn split(text: &str) -> Vec<String> {
    let text = text
        .replace("<br>", "\n")
        .replace("<br />", "\n")
        .replace("<br/>", "\n");
    let mut raw: Vec<String> = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '\n' || c == '\r' {
            raw.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
        let end = matches!(c, '.' | '!' | '?' | '…')
            && chars.get(i + 1).is_none_or(|n| n.is_whitespace())
            && !matches!(chars.get(i + 1), Some('.') | Some('!') | Some('?'));
        if end {
            raw.push(std::mem::take(&mut cur));
        }
    }
    raw.push(cur);
    let mut out: Vec<String> = Vec::new();
    for s in raw {
        let s = s.trim();
        if s.is_empty() {
            continue;
        }
        let words = s.split_whitespace().count();
        match out.last_mut() {
            Some(prev) if words < 3 => {
                prev.push(' ');
                prev.push_str(s);
            }
            _ => out.push(s.to_string()),
        }
    }
    // A short first fragment joins the next one.
    if out.len() > 1 && out[0].split_whitespace().count() < 3 {
        let first = out.remove(0);
        out[0] = format!("{first} {}", out[0]);
    }
    out.truncate(MAX_SENTENCES);
    out
}

/// Embeds the sentences of every verbatim among `docs` (doc, text) that has none stored yet
/// and stores them; verbatims of one sentence get a marker. Returns how many were embedded.
pub fn ensure_sentences(
    store: &mut Store,
    embedder: &dyn Embedder,
    docs: &[(i64, &str)],
    progress: &dyn crate::progress::Progress,
) -> Result<usize, SentencesError> {
    let ids: Vec<i64> = docs.iter().map(|d| d.0).collect();
    let missing: std::collections::HashSet<i64> =
        store.docs_without_sentences(&ids)?.into_iter().collect();
    let todo: Vec<(i64, &str)> = docs
        .iter()
        .copied()
        .filter(|d| missing.contains(&d.0))
        .collect();
    if todo.is_empty() {
        return Ok(0);
    }
    progress.start("embedding sentences", todo.len() as u64);
    let mut done = 0;
    for chunk in todo.chunks(512) {
        let split: Vec<Vec<String>> = chunk.iter().map(|d| split(d.1)).collect();
        let flat: Vec<&str> = split
            .iter()
            .filter(|s| s.len() > 1)
            .flat_map(|s| s.iter().map(String::as_str))
            .collect();
        let vecs = embedder.embed(&flat, TextKind::Passage)?;
        let mut it = vecs.into_iter();
        let batch: Vec<(i64, Vec<SentenceVector>)> = chunk
            .iter()
            .zip(&split)
            .map(|(d, s)| {
                let v = if s.len() > 1 {
                    s.iter()
                        .map(|t| SentenceVector {
                            words: t.split_whitespace().count(),
                            vector: it.next().expect("one vector per sentence"),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                (d.0, v)
            })
            .collect();
        store.put_sentence_vectors(&batch)?;
        done += chunk.len();
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    Ok(done)
}

/// Errors of [`ensure_sentences`].
#[derive(Debug, thiserror::Error)]
pub enum SentencesError {
    /// Store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Model.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// Opinion units ([`super::units::ensure_units`], run beside the sentences).
    #[error(transparent)]
    Units(#[from] super::units::UnitsError),
}

/// Normalised mean of sentence vectors: the vector sentiment reads for a multi-sentence text.
pub fn mean_vector(s: &[SentenceVector], dim: usize) -> Vec<f32> {
    crate::vecmath::normalized_mean(s.iter().map(|v| v.vector.as_slice()), dim)
}

/// For tests and callers that want the sentences by doc.
pub type SentenceMap = HashMap<i64, Vec<SentenceVector>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sentences_and_glues_fragments() {
        assert_eq!(
            split("The taste is great. It arrived very late!! Will I buy again? Yes.\nThe box was missing<br>and nothing else."),
            [
                "The taste is great.",
                "It arrived very late!!",
                "Will I buy again? Yes.",
                "The box was missing",
                "and nothing else."
            ]
        );
        assert_eq!(split("one sentence only"), ["one sentence only"]);
        assert_eq!(
            split("Version 2.5 is out. It works fine now."),
            ["Version 2.5 is out.", "It works fine now."]
        );
        assert!(split("").is_empty());
        let long: String = (0..20)
            .map(|i| format!("Sentence number {i} here. "))
            .collect();
        assert_eq!(split(&long).len(), MAX_SENTENCES);
    }
}
