//! Sentiment accuracy against VADER on the same data (positive / negative labels).
//!
//! * UCI sentences (3,000, 3 domains): leave-one-domain-out — the head is trained on two domains
//!   and tested on the third, so no test sentence was trained on. VADER scored on all 3,000.
//! * Amazon Fine Foods (5,000 reviews, `great` → positive, `other` → negative): never trained on;
//!   the shipped head (trained on all of UCI) reads the mean of each review's sentence vectors,
//!   as `verbatim themes` does. The whole-text vector is shown too.
//! * With multilingual-e5-small, the bilingual fixture: how often a French text and its English
//!   translation get the same polarity.
//!
//! ```sh
//! cargo bench --bench sentiment                     # both models
//! VERBATIM_BENCH_MODELS=all-MiniLM-L6-v2 cargo bench --bench sentiment
//! ```
//! VADER runs through `../shared/tools/peers/peers.py sentiment` (peers venv at
//! `~/.cache/peers-venv` or `$PEERS_PYTHON`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use verbatim::embed::{set_threads, EmbedOptions, Embedder, SentenceTransformer, TextKind};
use verbatim::sentiment::{train_logistic, SentimentHead};
use verbatim::themes::sentences::split;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rows(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn vader(input: &Path) -> Option<f64> {
    let py = std::env::var_os("PEERS_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let p = PathBuf::from(std::env::var_os("HOME")?).join(".cache/peers-venv/bin/python");
            p.is_file().then_some(p)
        })?;
    let out = Command::new(py)
        .arg(repo().join("../shared/tools/peers/peers.py"))
        .args(["sentiment", "--input"])
        .arg(input)
        .output()
        .ok()?;
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last()?).ok()?;
    v["accuracy"].as_f64()
}

/// Mean of each text's sentence vectors (one vector when it has one sentence).
fn sentence_means(model: &SentenceTransformer, texts: &[&str]) -> Vec<Vec<f32>> {
    let split: Vec<Vec<String>> = texts.iter().map(|t| split(t)).collect();
    let flat: Vec<&str> = split
        .iter()
        .flat_map(|s| s.iter().map(String::as_str))
        .collect();
    let mut vecs = Vec::with_capacity(flat.len());
    for chunk in flat.chunks(2048) {
        vecs.extend(model.embed(chunk, TextKind::Passage).unwrap());
    }
    let mut it = vecs.into_iter();
    split
        .iter()
        .map(|s| {
            let mut m = vec![0f32; model.dim()];
            for _ in 0..s.len().max(1) {
                if s.is_empty() {
                    break;
                }
                for (a, b) in m.iter_mut().zip(it.next().unwrap()) {
                    *a += b;
                }
            }
            verbatim::embed::l2_normalize(&mut m);
            m
        })
        .collect()
}

fn accuracy(head: &SentimentHead, x: &[Vec<f32>], y: &[bool]) -> f64 {
    let ok = x
        .iter()
        .zip(y)
        .filter(|(v, &l)| (head.score(v) > 0.0) == l)
        .count();
    ok as f64 / y.len() as f64
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let data = repo().join("../shared/data");
    if !data.is_dir() {
        eprintln!("sentiment bench: {} not found, skipping", data.display());
        return;
    }
    set_threads(Some(
        std::env::var("VERBATIM_BENCH_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(2),
    ))
    .unwrap();
    let uci = rows(&data.join("uci_sentiment_sentences.jsonl"));
    let amazon = rows(&data.join("amazon_fine_foods.jsonl"));
    // VADER: UCI as is; Amazon with great/other mapped to positive/negative.
    let tmp = tempfile::tempdir().unwrap();
    let mapped = tmp.path().join("amazon_pn.jsonl");
    {
        let mut f = std::fs::File::create(&mapped).unwrap();
        for r in &amazon {
            let label = if r["label"] == "great" {
                "positive"
            } else {
                "negative"
            };
            writeln!(
                f,
                "{}",
                serde_json::json!({"text": r["text"], "label": label})
            )
            .unwrap();
        }
    }
    let v_uci = vader(&data.join("uci_sentiment_sentences.jsonl"));
    let v_amz = vader(&mapped);
    let show = |x: Option<f64>| x.map_or("?".to_string(), |v| format!("{v:.4}"));
    println!("| model | UCI held-out domain (mean) | Amazon, sentence mean | Amazon, whole text | FR/EN polarity agreement |");
    println!("|---|---|---|---|---|");
    println!(
        "| VADER (peers.py) | {} | {} | {} | - |",
        show(v_uci),
        show(v_amz),
        show(v_amz)
    );

    let wanted = std::env::var("VERBATIM_BENCH_MODELS")
        .unwrap_or_else(|_| "all-MiniLM-L6-v2,multilingual-e5-small".into());
    for name in wanted.split(',').map(str::trim) {
        let dir = repo().join("models").join(name);
        let Ok(model) = SentenceTransformer::load(&dir, &EmbedOptions::default()) else {
            eprintln!("{name}: not installed, skipped");
            continue;
        };
        let (head, _) = SentimentHead::load(&SentimentHead::path_for(&dir), model.fingerprint())
            .expect("shipped head");
        // UCI leave-one-domain-out with the same trainer and C as the shipped head.
        let texts: Vec<&str> = uci.iter().map(|r| r["text"].as_str().unwrap()).collect();
        let y: Vec<bool> = uci.iter().map(|r| r["label"] == "positive").collect();
        let x = model.embed(&texts, TextKind::Passage).unwrap();
        let mut accs = Vec::new();
        for d in ["amazon", "imdb", "yelp"] {
            let tr: Vec<usize> = (0..uci.len()).filter(|&i| uci[i]["domain"] != d).collect();
            let te: Vec<usize> = (0..uci.len()).filter(|&i| uci[i]["domain"] == d).collect();
            let flat: Vec<f32> = tr.iter().flat_map(|&i| x[i].iter().copied()).collect();
            let ytr: Vec<bool> = tr.iter().map(|&i| y[i]).collect();
            let (w, b) = train_logistic(&flat, model.dim(), &ytr, head.c);
            let h = SentimentHead {
                weights: w,
                bias: b,
                ..head.clone()
            };
            let xs: Vec<Vec<f32>> = te.iter().map(|&i| x[i].clone()).collect();
            let ys: Vec<bool> = te.iter().map(|&i| y[i]).collect();
            accs.push(accuracy(&h, &xs, &ys));
        }
        let lodo = accs.iter().sum::<f64>() / 3.0;
        // Amazon: never trained on.
        let at: Vec<&str> = amazon.iter().map(|r| r["text"].as_str().unwrap()).collect();
        let ay: Vec<bool> = amazon.iter().map(|r| r["label"] == "great").collect();
        let means = sentence_means(&model, &at);
        let whole = model.embed(&at, TextKind::Passage).unwrap();
        // Bilingual agreement (e5's point): same polarity for a text and its translation.
        let agree = {
            let pairs = rows(&repo().join("tests/fixtures/e5/bilingual_pairs.jsonl"));
            let fr: Vec<&str> = pairs.iter().map(|p| p["fr"].as_str().unwrap()).collect();
            let en: Vec<&str> = pairs.iter().map(|p| p["en"].as_str().unwrap()).collect();
            let (f, e) = (sentence_means(&model, &fr), sentence_means(&model, &en));
            let same = f
                .iter()
                .zip(&e)
                .filter(|(a, b)| head.polarity(head.score(a)) == head.polarity(head.score(b)))
                .count();
            same as f64 / pairs.len() as f64
        };
        println!(
            "| {name} + logistic head | {lodo:.4} ({:.3} / {:.3} / {:.3}) | {:.4} | {:.4} | {agree:.3} |",
            accs[0],
            accs[1],
            accs[2],
            accuracy(&head, &means, &ay),
            accuracy(&head, &whole, &ay)
        );
        std::io::stdout().flush().unwrap();
    }
}
