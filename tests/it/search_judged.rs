//! The judged queries on the demo data (issue 15): hybrid search must keep the precision it was
//! measured at, and stay at least as good as text and vector search alone.
//!
//! The queries, rules and judgments are `tests/fixtures/search_judged/` (the demo data ships
//! with the project, so its judgments carry the text). The same files score Amazon and the
//! airline tweets in `examples/search_eval.rs`, which needs `../shared`; this test does not.

use std::sync::Arc;

use verbatim::access::Caller;
use verbatim::embed::{EmbedOptions, Embedder, SentenceTransformer};
use verbatim::retrieve::judged::{ndcg_at, precision_at, read_jsonl, Grades, JudgedQuery};
use verbatim::retrieve::Mode;
use verbatim::service::{Models, SearchRequest, Session, Settings, Via};
use verbatim::workspace::Workspace;

use crate::common::*;

/// Hybrid P@5 over the 17 demo queries, measured when the test was written (0.824: text 0.694,
/// vector 0.753; main before issue 15's ranking change: 0.741), less a margin of one relevant
/// hit in one query's top 5 (0.2 / 17 = 0.012).
const HYBRID_P5_FLOOR: f64 = 0.81;

/// Ingests the demo data as the Makefile's `demo` target does.
fn ingest_demo(ws: &std::path::Path) {
    let s = json(
        verbatim(ws)
            .args(["ingest", "--text", "text", "--id", "id"])
            .args(["--field", "sentiment", "--field", "domain"])
            .arg(repo().join("data/uci_sentiment.csv")),
    );
    assert_eq!(s["rejected"], 0, "{s}");
    let s = json(
        verbatim(ws)
            .arg("ingest")
            .args(DEMO_MAPPING)
            .arg(demo_csv()),
    );
    assert_eq!(s["stored"], 30, "{s}");
}

#[test]
fn hybrid_search_keeps_its_measured_precision_on_the_judged_demo_queries() {
    let dir = workspace();
    ingest_demo(dir.path());
    let judged = fixture("search_judged");
    let queries: Vec<JudgedQuery> = read_jsonl(&judged.join("queries.jsonl")).unwrap();
    let queries: Vec<&JudgedQuery> = queries.iter().filter(|q| q.set == "demo").collect();
    assert!(queries.len() >= 15, "{} demo queries", queries.len());
    let grades = Grades::read(&judged.join("judgments.jsonl")).unwrap();
    let model: Arc<dyn Embedder> =
        Arc::new(SentenceTransformer::load(&model_dir(), &EmbedOptions::default()).unwrap());
    let models = Models::loaded(Some(model_dir()), Some(model));
    let settings = Settings::default();
    let mut ws = Workspace::open(dir.path()).unwrap();
    let mut session = Session::new(
        &mut ws,
        Caller::Owner,
        Via::cli("search"),
        &models,
        &settings,
    );
    let mut p5 = [0.0f64; 3];
    let mut ndcg = [0.0f64; 3];
    let mut unjudged = Vec::new();
    for q in &queries {
        for (m, mode) in [Mode::Text, Mode::Vector, Mode::Hybrid]
            .into_iter()
            .enumerate()
        {
            let hits = session
                .search(SearchRequest {
                    text: q.text.clone(),
                    mode: Some(mode),
                    filter: Default::default(),
                    limit: Some(10),
                    query_vector: None,
                    sentiment: None,
                    // Judged hit by hit, copies included (the set's numbers in BENCHMARKS).
                    keep_copies: true,
                })
                .unwrap()
                .hits
                .unwrap();
            let g: Vec<Option<u8>> = hits
                .iter()
                .map(|h| grades.get(&q.qid, &h.verbatim.id))
                .collect();
            for (h, g) in hits.iter().zip(&g).take(5) {
                if g.is_none() {
                    unjudged.push(format!(
                        "{} {mode:?} {}: {}",
                        q.qid, h.verbatim.id, h.verbatim.text
                    ));
                }
            }
            if mode == Mode::Hybrid {
                let top: Vec<String> = hits
                    .iter()
                    .zip(&g)
                    .take(5)
                    .map(|(h, g)| {
                        format!(
                            "{}={}",
                            h.verbatim.id,
                            g.map_or("?".into(), |g| g.to_string())
                        )
                    })
                    .collect();
                eprintln!(
                    "{} hybrid P@5 {:.1} {:?} [{}]",
                    q.qid,
                    precision_at(&g, 5),
                    q.text,
                    top.join(" ")
                );
            }
            p5[m] += precision_at(&g, 5) / queries.len() as f64;
            ndcg[m] += ndcg_at(&g, &grades.all_for(&q.qid), 10) / queries.len() as f64;
        }
    }
    eprintln!("P@5 text/vector/hybrid {p5:.3?}, nDCG@10 {ndcg:.3?}");
    eprintln!("unjudged in a top 5 (counted as not relevant): {unjudged:#?}");
    let [text, vector, hybrid] = p5;
    assert!(
        hybrid >= HYBRID_P5_FLOOR,
        "hybrid P@5 {hybrid:.3} < {HYBRID_P5_FLOOR}"
    );
    assert!(
        hybrid >= text && hybrid >= vector,
        "hybrid P@5 {hybrid:.3} below text {text:.3} or vector {vector:.3}"
    );
    assert_eq!(
        Mode::default(),
        Mode::Hybrid,
        "the default mode is the best one"
    );
}
