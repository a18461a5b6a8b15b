//! Trains the sentiment head of one embedding model on the UCI sentences shipped in
//! `data/uci_sentiment.csv` (CC BY 4.0), and its subjectivity part on those against
//! `data/neutral_sentences.txt` (written for the project), and writes
//! `models/sentiment/<model>.json`.
//!
//! ```sh
//! cargo run --release --example train_sentiment -- all-MiniLM-L6-v2
//! cargo run --release --example train_sentiment -- multilingual-e5-small
//! ```
//!
//! Deterministic: the embeddings are the model's, the solver is Newton's method with no random
//! start. Before training on everything it evaluates leave-one-domain-out (train on two of
//! amazon / imdb / yelp, test on the third) and records those accuracies in the file. Accuracy
//! on data never trained on (Amazon Fine Foods) and the comparison with VADER are in
//! `benches/sentiment.rs`.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use verbatim::embed::{catalog, EmbedOptions, Embedder, SentenceTransformer, TextKind};
use verbatim::sentiment::{train_logistic, SentimentHead, Subjectivity};

/// sklearn's C; chosen on the leave-one-domain-out mean (benches/peers/proto/FINDINGS.md).
const C: f64 = 1.0;
const NEUTRAL_BAND: f32 = 0.2;
/// P(opinion) under which a unit with no clear lexicon word is neutral, and what is left of its
/// score then; chosen on the `dev` half of SemEval-2014 laptops (3 classes) with
/// `examples/neutral_eval.rs` (BENCHMARKS.md, "A neutral class").
const SUBJECTIVITY_THRESHOLD: f32 = 0.4;
const SUBJECTIVITY_DAMP: f32 = 0.3;

fn main() -> anyhow::Result<()> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| verbatim::embed::DEFAULT_MODEL.to_string());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("data/uci_sentiment.csv");
    let bytes = std::fs::read(&data)?;
    let mut rdr = csv::Reader::from_reader(bytes.as_slice());
    let (mut texts, mut labels, mut domains) = (Vec::new(), Vec::new(), Vec::new());
    for rec in rdr.deserialize::<std::collections::HashMap<String, String>>() {
        let rec = rec?;
        texts.push(rec["text"].clone());
        labels.push(rec["sentiment"] == "positive");
        domains.push(rec["domain"].clone());
    }
    let dir = catalog::resolve(&name)?;
    let model = SentenceTransformer::load(&dir, &EmbedOptions::default())?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vecs = model.embed(&refs, TextKind::Passage)?;
    let dim = model.dim();
    let flat =
        |idx: &[usize]| -> Vec<f32> { idx.iter().flat_map(|&i| vecs[i].iter().copied()).collect() };

    let mut evaluation = serde_json::Map::new();
    let mut accs = Vec::new();
    for held in ["amazon", "imdb", "yelp"] {
        let train: Vec<usize> = (0..texts.len()).filter(|&i| domains[i] != held).collect();
        let test: Vec<usize> = (0..texts.len()).filter(|&i| domains[i] == held).collect();
        let y: Vec<bool> = train.iter().map(|&i| labels[i]).collect();
        let (w, b) = train_logistic(&flat(&train), dim, &y, C);
        let ok = test
            .iter()
            .filter(|&&i| {
                let z: f32 = w.iter().zip(&vecs[i]).map(|(a, x)| a * x).sum::<f32>() + b;
                (z > 0.0) == labels[i]
            })
            .count();
        let acc = ok as f64 / test.len() as f64;
        eprintln!("held-out {held}: accuracy {acc:.4} ({} texts)", test.len());
        evaluation.insert(
            format!("heldout_{held}"),
            serde_json::json!((acc * 1e4).round() / 1e4),
        );
        accs.push(acc);
    }
    let mean = accs.iter().sum::<f64>() / accs.len() as f64;
    evaluation.insert(
        "heldout_mean".into(),
        serde_json::json!((mean * 1e4).round() / 1e4),
    );

    let all: Vec<usize> = (0..texts.len()).collect();
    let (weights, bias) = train_logistic(&flat(&all), dim, &labels, C);

    // Subjectivity: every UCI sentence (opinion) against the written neutral sentences, the
    // neutral rows repeated so that both classes weigh the same.
    let neutral_path = root.join("data/neutral_sentences.txt");
    let neutral_bytes = std::fs::read(&neutral_path)?;
    let neutral_text = String::from_utf8(neutral_bytes.clone())?;
    let neutral: Vec<&str> = neutral_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let nvecs = model.embed(&neutral, TextKind::Passage)?;
    let repeat = (texts.len() / neutral.len()).max(1);
    let mut sx = flat(&all);
    let mut sy = vec![true; texts.len()];
    for _ in 0..repeat {
        for v in &nvecs {
            sx.extend_from_slice(v);
            sy.push(false);
        }
    }
    let (sw, sb) = train_logistic(&sx, dim, &sy, C);
    let subjectivity = Subjectivity {
        weights: sw,
        bias: sb,
        threshold: SUBJECTIVITY_THRESHOLD,
        damp: SUBJECTIVITY_DAMP,
        trained_on: format!(
            "data/uci_sentiment.csv (opinion) against data/neutral_sentences.txt (sha256 {}, {} sentences written for the project, repeated {repeat}x)",
            hex::encode(Sha256::digest(&neutral_bytes)),
            neutral.len()
        ),
    };
    let head = SentimentHead {
        model: name.clone(),
        fingerprint: model.fingerprint().to_string(),
        weights,
        bias,
        neutral_band: NEUTRAL_BAND,
        c: C,
        trained_on: "data/uci_sentiment.csv (UCI Sentiment Labelled Sentences, CC BY 4.0)".into(),
        data_sha256: hex::encode(Sha256::digest(&bytes)),
        evaluation: serde_json::Value::Object(evaluation),
        subjectivity: Some(subjectivity),
    };
    let out = SentimentHead::path_for(&dir);
    std::fs::create_dir_all(out.parent().unwrap())?;
    std::fs::write(&out, serde_json::to_string_pretty(&head)? + "\n")?;
    eprintln!("held-out mean {mean:.4}; wrote {}", out.display());
    Ok(())
}
