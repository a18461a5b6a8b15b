//! [`HashEmbedder`]: a tiny deterministic [`Embedder`] for tests of the stages after `embed`.
//!
//! It hashes character trigrams of the lower-cased text into a 64-dimensional vector (the
//! "hashing trick", with a sign bit per feature so collisions cancel rather than pile up) and
//! L2-normalises it. Texts that share many trigrams get similar vectors, which is enough for
//! index / retrieval / theme tests to mean something without loading a 90 MB model.

use super::pooling::l2_normalize;
use super::{EmbedError, Embedder, TextKind};

/// Deterministic trigram-hashing embedder; see the module docs.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dim: usize,
    fingerprint: String,
}

impl HashEmbedder {
    /// Dimension of [`HashEmbedder::new`]'s vectors.
    pub const DEFAULT_DIM: usize = 64;
    /// Texts are cut at this many characters, the way a model truncates at its token limit.
    pub const MAX_CHARS: usize = 512;

    /// A 64-dimensional hashing embedder.
    pub fn new() -> Self {
        Self::with_dim(Self::DEFAULT_DIM)
    }

    /// A hashing embedder with `dim` dimensions (at least 1).
    pub fn with_dim(dim: usize) -> Self {
        let dim = dim.max(1);
        Self {
            dim,
            fingerprint: format!("hash-trigram-v1/dim={dim}/max_chars={}", Self::MAX_CHARS),
        }
    }

    fn embed_one(&self, text: &str) -> Vec<f32> {
        // \u{2} / \u{3} mark start and end, so "cat" and "scatter" differ at the edges.
        let chars: Vec<char> = std::iter::once('\u{2}')
            .chain(
                text.chars()
                    .take(Self::MAX_CHARS)
                    .flat_map(char::to_lowercase),
            )
            .chain(std::iter::once('\u{3}'))
            .collect();
        let mut v = vec![0.0f32; self.dim];
        let mut add = |feature: &[char]| {
            let h = fnv1a(feature);
            let bucket = (h % self.dim as u64) as usize;
            v[bucket] += if h >> 63 == 0 { 1.0 } else { -1.0 };
        };
        if chars.len() < 3 {
            add(&chars);
        } else {
            chars.windows(3).for_each(&mut add);
        }
        if v.iter().all(|x| *x == 0.0) {
            // Every feature cancelled out: fall back to a fixed direction rather than a zero
            // vector, so the output is always unit length.
            v[0] = 1.0;
        }
        l2_normalize(&mut v);
        v
    }
}

impl Default for HashEmbedder {
    fn default() -> Self {
        Self::new()
    }
}

/// 64-bit FNV-1a over the chars' UTF-32 values: stable across platforms and releases.
/// 64-bit FNV-1a over the chars' UTF-32 little-endian bytes (the `fnv` crate's hasher).
fn fnv1a(chars: &[char]) -> u64 {
    use std::hash::Hasher as _;
    let mut h = fnv::FnvHasher::default();
    for c in chars {
        h.write(&(*c as u32).to_le_bytes());
    }
    h.finish()
}

impl Embedder for HashEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }

    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn max_seq_length(&self) -> usize {
        Self::MAX_CHARS
    }

    fn embed(&self, texts: &[&str], _kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn fnv_hash_is_the_fnv1a_the_vectors_were_made_with() {
        // The hand-written FNV-1a this replaced: the same bits, so hashed vectors do not change.
        fn reference(chars: &[char]) -> u64 {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for c in chars {
                for b in (*c as u32).to_le_bytes() {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0100_0000_01b3);
                }
            }
            h
        }
        for s in ["", "a", "#liv", "ré", "œuvre", "日本語", "emoji 🙂"] {
            let c: Vec<char> = s.chars().collect();
            assert_eq!(fnv1a(&c), reference(&c), "{s}");
        }
        assert_eq!(fnv1a(&[]), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        let e = HashEmbedder::new();
        let texts = [
            "",
            "a",
            "ab",
            "The delivery was late again.",
            "Привет, мир 👋",
        ];
        let a = e.embed(&texts, TextKind::Passage).unwrap();
        let b = HashEmbedder::new().embed(&texts, TextKind::Query).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), texts.len());
        for v in &a {
            assert_eq!(v.len(), e.dim());
            let norm = cos(v, v).sqrt();
            assert!((norm - 1.0).abs() < 1e-6, "norm {norm}");
        }
    }

    #[test]
    fn similar_texts_are_closer_than_unrelated_ones() {
        let e = HashEmbedder::new();
        let v = e
            .embed(
                &[
                    "the delivery was late and the box was damaged",
                    "delivery was late, box damaged",
                    "great customer service, friendly staff",
                ],
                TextKind::Passage,
            )
            .unwrap();
        let near = cos(&v[0], &v[1]);
        let far = cos(&v[0], &v[2]);
        assert!(near > far + 0.2, "near {near} far {far}");
        assert!(near > 0.6, "near {near}");
    }

    #[test]
    fn case_is_ignored_and_length_is_capped() {
        let e = HashEmbedder::new();
        let v = e
            .embed(&["Late Delivery", "late delivery"], TextKind::Passage)
            .unwrap();
        assert_eq!(v[0], v[1]);
        let long_a = "x".repeat(HashEmbedder::MAX_CHARS) + "tail one";
        let long_b = "x".repeat(HashEmbedder::MAX_CHARS) + "something else";
        let v = e.embed(&[&long_a, &long_b], TextKind::Passage).unwrap();
        assert_eq!(v[0], v[1]);
    }

    #[test]
    fn fingerprint_names_the_dimension() {
        assert_ne!(
            HashEmbedder::with_dim(64).fingerprint(),
            HashEmbedder::with_dim(32).fingerprint()
        );
        assert_eq!(HashEmbedder::with_dim(0).dim(), 1);
    }
}
