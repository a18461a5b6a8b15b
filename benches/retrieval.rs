//! Retrieval quality: nDCG@10 (also MRR and recall@10) for text / vector / hybrid search, per
//! embedding model, on questions whose answer is known.
//!
//! * `debian_faq_fr` — the French Debian FAQ: each record's `question` (a real user question)
//!   must find its own section among all 146.
//!
//! Each record is ingested into a fresh workspace per model (redaction, both indexes, as a user's
//! ingest does); each question runs through `retrieve::search` like `verbatim search`. Relevance
//! is binary (one relevant section), so nDCG@10 = mean of 1/log2(1 + rank) over questions whose
//! section is in the top 10.
//!
//! ```sh
//! cargo bench --bench retrieval                        # every model installed
//! VERBATIM_BENCH_MODELS=multilingual-e5-small cargo bench --bench retrieval
//! ```
//! Needs `../shared/data` (skipped with a message otherwise) and the models (`make models`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use verbatim::access::{authorize, Action, Caller};
use verbatim::embed::{set_threads, EmbedOptions, SentenceTransformer};
use verbatim::ingest::Mapping;
use verbatim::retrieve::{search, Mode, Query};
use verbatim::store::Filter;
use verbatim::workspace::ingest::{ingest_file, IngestOptions, NoProgress};
use verbatim::workspace::Workspace;

/// A question and the id of the one record that answers it.
struct Question {
    text: String,
    relevant: String,
}

/// Rank-based metrics over a set of questions.
#[derive(Default)]
struct Metrics {
    ndcg: f64,
    mrr: f64,
    recall: f64,
    n: usize,
}

impl Metrics {
    fn add(&mut self, rank: Option<usize>) {
        self.n += 1;
        if let Some(r) = rank.filter(|&r| r <= 10) {
            self.ndcg += 1.0 / ((r + 1) as f64).log2();
            self.mrr += 1.0 / r as f64;
            self.recall += 1.0;
        }
    }
    fn mean(&self, x: f64) -> f64 {
        x / self.n.max(1) as f64
    }
}

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// debian_faq_fr.jsonl: (records file, questions).
fn debian_faq(data: &Path) -> (PathBuf, Vec<Question>) {
    let path = data.join("debian_faq_fr.jsonl");
    let text = std::fs::read_to_string(&path).expect("debian_faq_fr.jsonl");
    let questions = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some(Question {
                text: v["question"].as_str()?.to_string(),
                relevant: v["id"].as_str()?.to_string(),
            })
        })
        .collect();
    (path, questions)
}

fn main() {
    // `cargo test --benches` runs this with --bench absent; only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let data = shared();
    if !data.is_dir() {
        eprintln!("retrieval bench: {} not found, skipping", data.display());
        return;
    }
    let threads = std::env::var("VERBATIM_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok());
    set_threads(threads).unwrap();
    let models_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let wanted = std::env::var("VERBATIM_BENCH_MODELS")
        .unwrap_or_else(|_| "all-MiniLM-L6-v2,multilingual-e5-small".into());
    let (file, questions) = debian_faq(&data);
    println!(
        "debian_faq_fr: {} sections, {} questions; nDCG@10 / MRR@10 / recall@10",
        questions.len(),
        questions.len()
    );
    println!("| model | mode | nDCG@10 | MRR@10 | recall@10 | ms/query |");
    println!("|---|---|---|---|---|---|");
    for name in wanted.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let dir = models_dir.join(name);
        let model = match SentenceTransformer::load(&dir, &EmbedOptions::default()) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{name}: {e}; skipped");
                continue;
            }
        };
        let tmp = tempfile::tempdir().unwrap();
        let mut ws = Workspace::init(&tmp.path().join("ws")).unwrap();
        let opts = IngestOptions {
            mapping: Some(Mapping {
                text: vec!["text".into()],
                id: Some("id".into()),
                ..Mapping::default()
            }),
            ..IngestOptions::default()
        };
        ingest_file(&mut ws, &model, &file, &opts, &NoProgress).unwrap();
        let (indexes, _) = ws.indexes().unwrap();
        let grant = authorize(&Caller::Owner, Action::Search).unwrap();
        for mode in [Mode::Text, Mode::Vector, Mode::Hybrid] {
            let mut m = Metrics::default();
            let t = Instant::now();
            for q in &questions {
                let query = Query {
                    text: q.text.clone(),
                    mode,
                    filter: Filter::default(),
                    limit: 10,
                };
                let hits = search(&grant, ws.raw_store(), &indexes, Some(&model), &query).unwrap();
                let rank = hits
                    .iter()
                    .position(|h| h.verbatim.id == q.relevant)
                    .map(|p| p + 1);
                m.add(rank);
            }
            let ms = t.elapsed().as_secs_f64() * 1000.0 / questions.len() as f64;
            println!(
                "| {name} | {mode:?} | {:.3} | {:.3} | {:.3} | {ms:.1} |",
                m.mean(m.ndcg),
                m.mean(m.mrr),
                m.mean(m.recall)
            );
            std::io::stdout().flush().unwrap();
        }
    }
}
