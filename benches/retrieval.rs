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
//!
//! **Latency at scale** (`VERBATIM_BENCH_LATENCY=N`): the first N chit-chat utterances
//! (`../shared/data/chitchat_utterances.jsonl.gz`) ingested with all-MiniLM-L6-v2 into a
//! workspace kept under the target dir (built once, reused by later runs: the ingest takes
//! minutes), then each query of [`LATENCY_QUERIES`] searched as `verbatim search` does —
//! query embedding included, the sentiment head loaded (polarity-aware ranking on) — in
//! hybrid mode, and with `--sentiment negative`; p50 and p99 per query in ms. Then each stage
//! of a search timed alone (query embedding, BM25, the graph walk, store reads, the sentiment
//! filter's set and restricted retrievers): where the time goes.
//!
//! ```sh
//! VERBATIM_BENCH_MODELS= VERBATIM_BENCH_LATENCY=100000 cargo bench --bench retrieval
//! ```

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

/// Queries of the latency run: problems (polarity-aware ranking applies), praise, neutral.
const LATENCY_QUERIES: &[&str] = &[
    "the package arrived damaged",
    "too salty",
    "my phone is broken",
    "I hate my job",
    "the food was cold and late",
    "I am so tired of this",
    "nobody answers my emails",
    "terrible weather today",
    "I love hiking in the mountains",
    "great movie last night",
    "what is your favourite book",
    "do you have any pets",
    "I work as a nurse",
    "where do you live",
    "music festival this weekend",
    "learning to play the guitar",
    "vacation in France",
    "my dog is sick",
    "not happy with the service",
    "best pizza in town",
];

/// p50 and p99 of `ms` (sorted in place).
fn percentiles(ms: &mut [f64]) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99))
}

/// The latency run (module docs): builds or reuses the workspace, prints one table.
fn latency(data: &Path, n: usize, models_dir: &Path) {
    use verbatim::sentiment::SentimentHead;
    use verbatim::themes::Polarity;
    let model_dir = models_dir.join("all-MiniLM-L6-v2");
    let model = SentenceTransformer::load(&model_dir, &EmbedOptions::default()).expect("MiniLM");
    let dir = std::env::var_os("VERBATIM_BENCH_WS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-ws-chitchat-{n}"))
        });
    let mut ws = if dir.join("store.sqlite").is_file() {
        Workspace::open(&dir).unwrap()
    } else {
        let raw = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(data.join("chitchat_utterances.jsonl.gz"))
            .output()
            .expect("gzip");
        let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("chitchat-{n}.jsonl"));
        let raw = String::from_utf8(raw.stdout).expect("utf-8");
        let lines: Vec<&str> = raw
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(n)
            .collect();
        std::fs::write(&file, lines.join("\n")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let mut ws = Workspace::init(&dir).unwrap();
        let opts = IngestOptions {
            mapping: Some(Mapping {
                text: vec!["text".into()],
                id: Some("id".into()),
                ..Mapping::default()
            }),
            ..IngestOptions::default()
        };
        let t = Instant::now();
        ingest_file(&mut ws, &model, &file, &opts, &NoProgress).unwrap();
        eprintln!(
            "latency: ingested {n} in {:.0} s",
            t.elapsed().as_secs_f64()
        );
        ws
    };
    let fp = ws.raw_store().model_fingerprint().unwrap().unwrap();
    let (head, _) = SentimentHead::load(&SentimentHead::path_for(&model_dir), &fp).unwrap();
    let head = std::sync::Arc::new(head);
    let (indexes, _) = ws.indexes().unwrap();
    let live = ws.raw_store().live_vec_ids().unwrap().len();
    let grant = authorize(&Caller::Owner, Action::Search).unwrap();
    println!(
        "{live} verbatims; ms per query, query embedding included, {} queries × 5",
        LATENCY_QUERIES.len()
    );
    println!("| search | p50 ms | p99 ms |");
    println!("|---|---|---|");
    for (label, sentiment) in [
        ("hybrid", None),
        ("hybrid --sentiment negative", Some(Polarity::Negative)),
    ] {
        let query = |text: &str| Query {
            sentiment,
            head: Some(head.clone()),
            text: text.to_string(),
            mode: Mode::Hybrid,
            filter: Filter::default(),
            limit: 10,
        };
        // Warm-up: first reads of the store and graph pages, anything computed once.
        for q in LATENCY_QUERIES.iter().take(3) {
            search(&grant, ws.raw_store(), &indexes, Some(&model), &query(q)).unwrap();
        }
        let mut ms = Vec::new();
        // The same searches' stages, as `search` ran them (`search_profiled`).
        let mut stages: Vec<(&'static str, Vec<f64>)> = Vec::new();
        for _ in 0..5 {
            for q in LATENCY_QUERIES {
                let t = Instant::now();
                let (hits, profile) = verbatim::retrieve::search_profiled(
                    &grant,
                    ws.raw_store(),
                    &indexes,
                    Some(&model),
                    &query(q),
                )
                .unwrap();
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
                assert!(!hits.is_empty(), "{q}");
                for (name, t) in profile.stages {
                    match stages.iter_mut().find(|s| s.0 == name) {
                        Some(s) => s.1.push(t),
                        None => stages.push((name, vec![t])),
                    }
                }
            }
        }
        let (p50, p99) = percentiles(&mut ms);
        println!("| {label} | {p50:.1} | {p99:.1} |");
        for (name, mut ms) in stages {
            let (p50, p99) = percentiles(&mut ms);
            println!("| — {name} | {p50:.1} | {p99:.1} |");
        }
        std::io::stdout().flush().unwrap();
    }
    // Where a search's time goes: its stages timed alone, over the same queries — what to
    // optimise next (BENCHMARKS, "Search latency at 100k").
    {
        use verbatim::embed::{Embedder, TextKind};
        use verbatim::retrieve::{fusion_depth, index_space_query, vector_search};
        let mut stage: Vec<(&str, Vec<f64>)> = [
            "query embedding",
            "text (BM25)",
            "vector (graph)",
            "every live slot read (off the path since 2026-12-06)",
            "verbatims read (10)",
            "graph walk alone",
            "slots to verbatims (100)",
            "--sentiment negative: set read",
            "--sentiment negative: text within set",
            "--sentiment negative: vector within set",
        ]
        .into_iter()
        .map(|s| (s, Vec::new()))
        .collect();
        let time = |v: &mut Vec<f64>, t: Instant| v.push(t.elapsed().as_secs_f64() * 1000.0);
        for _ in 0..5 {
            for q in LATENCY_QUERIES {
                let t = Instant::now();
                let v = model.embed(&[q], TextKind::Query).unwrap().pop().unwrap();
                time(&mut stage[0].1, t);
                let t = Instant::now();
                let th = indexes
                    .text
                    .search_within(q, &Filter::default(), None, fusion_depth(10))
                    .unwrap();
                time(&mut stage[1].1, t);
                let qv = index_space_query(&indexes, q, &v);
                let t = Instant::now();
                let vh =
                    vector_search(ws.raw_store(), &indexes, &qv, &Filter::default(), 100).unwrap();
                time(&mut stage[2].1, t);
                let t = Instant::now();
                let live = ws.raw_store().live_vec_ids().unwrap();
                time(&mut stage[3].1, t);
                assert!(!live.is_empty() && !vh.is_empty());
                let docs: Vec<i64> = th.iter().chain(&vh).take(10).map(|h| h.0).collect();
                let t = Instant::now();
                ws.raw_store().get_docs(&docs).unwrap();
                time(&mut stage[4].1, t);
                let t = Instant::now();
                let walk = indexes.vectors.search_all(&qv, 100, 200);
                time(&mut stage[5].1, t);
                let slots: Vec<i64> = walk.iter().map(|h| h.0).collect();
                let t = Instant::now();
                ws.raw_store().docs_for_vec_ids(&slots).unwrap();
                time(&mut stage[6].1, t);
                let t = Instant::now();
                let set: std::collections::HashSet<i64> = ws
                    .raw_store()
                    .docs_with_sentiment(f32::NEG_INFINITY, -head.neutral_band)
                    .unwrap()
                    .into_iter()
                    .collect();
                time(&mut stage[7].1, t);
                let t = Instant::now();
                indexes
                    .text
                    .search_within(q, &Filter::default(), Some(&set), fusion_depth(10))
                    .unwrap();
                time(&mut stage[8].1, t);
                let t = Instant::now();
                verbatim::retrieve::vector_search_within(
                    ws.raw_store(),
                    &indexes,
                    &qv,
                    &Filter::default(),
                    Some(&set),
                    100,
                )
                .unwrap();
                time(&mut stage[9].1, t);
            }
        }
        for (name, mut ms) in stage {
            let (p50, p99) = percentiles(&mut ms);
            println!("| stage: {name} | {p50:.1} | {p99:.1} |");
        }
    }
    // What each search that needed sentiment paid before scores were stored: every verbatim's
    // vector read and scored by the head (`retrieve::verbatim_polarities`, removed), timed alone.
    let mut ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let store = ws.raw_store();
        let sentences = store.sentence_vectors().unwrap();
        let n = store
            .filtered_vectors(&Filter::default())
            .unwrap()
            .into_iter()
            .map(|(doc, _, v)| {
                let s = verbatim::retrieve::verbatim_score(&head, sentences.get(&doc), &v);
                head.polarity(s)
            })
            .filter(|p| *p == Polarity::Negative)
            .count();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(n > 0);
    }
    let (p50, p99) = percentiles(&mut ms);
    println!("| before: per-query sentiment of every verbatim (alone) | {p50:.1} | {p99:.1} |");
    let _ = &mut ws;
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
    if let Some(n) = std::env::var("VERBATIM_BENCH_LATENCY")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        latency(&data, n, &models_dir);
    }
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
                    sentiment: None,
                    head: None,
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
