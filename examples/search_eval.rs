//! Search quality on the judged query set (issue 15): P@5 and nDCG@10 per mode, per data set.
//!
//! ```sh
//! make eval-search                   # or:
//! cargo build --release --locked --bin verbatim
//! cargo run --release --locked --example search_eval -- [--data DIR] [--ws DIR] [--sets amazon,airline,demo]
//!     [--rebuild] [--per-query] [--todo FILE] [--dump FILE]
//! ```
//!
//! The queries, rules and judgments are in `tests/fixtures/search_judged/` (RULES.md says how a
//! hit is graded). Two of the three data sets — Amazon Fine Foods (5,000 reviews) and the
//! airline tweets (14,640) — are evaluation-only: the project keeps only judgments keyed by
//! verbatim id, and this program ingests the text from `../shared/data` (`--data`) at run time.
//! That is why it is an example and not a test; the demo data (`data/`), which ships with the
//! project, has its own test (`tests/it/search_judged.rs`).
//!
//! Workspaces are built once, by the `verbatim` binary next to this example (the same ingest
//! commands as BENCHMARKS.md and the Makefile's `demo`), under `target/search-eval/` (`--ws`),
//! and reused; `--rebuild` re-ingests (after a change to ingest, the store or the indexes).
//!
//! Every query runs in every mode through the service layer (the CLI's path: settings, the
//! sentiment head, the audit entry), top 10. Printed: a table of mean P@5 (grade ≥ 1) and
//! nDCG@10 per data set, split (tune / heldout / all) and mode, the number of hits in the top 10
//! with no judgment, the hybrid search's median time, and then every unjudged hit (query, id,
//! text) so it can be judged with the rules (`--todo FILE` also writes them as JSON Lines, the
//! judgment file's shape with `grade` missing). An unjudged hit counts as not relevant.
//! `--dump FILE` writes what the ranking is made of (each retriever's top 100 with scores, the
//! query's polarity, each verbatim's polarity and contradiction flag; see [`dump_set`]) so that
//! fusion variants can be replayed offline without rebuilding.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use verbatim::access::Caller;
use verbatim::embed::{EmbedOptions, Embedder, SentenceTransformer};
use verbatim::retrieve::judged::{ndcg_at, precision_at, read_jsonl, Grades, JudgedQuery};
use verbatim::retrieve::Mode;
use verbatim::service::{Models, SearchRequest, Session, Settings, Via};
use verbatim::store::Filter;
use verbatim::workspace::Workspace;

const MODES: [Mode; 3] = [Mode::Text, Mode::Vector, Mode::Hybrid];
/// Written in a workspace once its ingest finished: a workspace without it is rebuilt.
const DONE: &str = ".search-eval-done";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("search_eval: {msg}");
    std::process::exit(2)
}

struct Args {
    data: PathBuf,
    ws: PathBuf,
    sets: Vec<String>,
    rebuild: bool,
    per_query: bool,
    todo: Option<PathBuf>,
    dump: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        data: std::env::var_os("VERBATIM_SHARED_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("../shared/data")),
        ws: repo().join("target/search-eval"),
        sets: vec!["amazon".into(), "airline".into(), "demo".into()],
        rebuild: false,
        per_query: false,
        todo: None,
        dump: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| die(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--data" => a.data = PathBuf::from(value()),
            "--ws" => a.ws = PathBuf::from(value()),
            "--sets" => a.sets = value().split(',').map(String::from).collect(),
            "--todo" => a.todo = Some(PathBuf::from(value())),
            "--dump" => a.dump = Some(PathBuf::from(value())),
            "--rebuild" => a.rebuild = true,
            "--per-query" => a.per_query = true,
            other => die(format!(
                "unknown flag {other} (--data DIR, --ws DIR, --sets a,b, --rebuild, --per-query, --todo FILE, --dump FILE)"
            )),
        }
    }
    a
}

/// The ingest commands of a data set: `(file, arguments after "ingest")`.
fn ingests(set: &str, data: &Path) -> Vec<(PathBuf, Vec<&'static str>)> {
    match set {
        "amazon" => vec![(
            data.join("amazon_fine_foods.jsonl"),
            vec![
                "--text",
                "text",
                "--id",
                "id",
                "--score",
                "label",
                "--score-map",
                "great=5,other=1",
                "--field",
                "split",
            ],
        )],
        "airline" => vec![(
            data.join("airline_tweets.jsonl"),
            vec![
                "--text",
                "text",
                "--id",
                "id",
                "--date",
                "date",
                "--date-format",
                "%d-%m-%Y %H.%M",
                "--field",
                "airline",
                "--respondent",
                "user",
            ],
        )],
        // As the Makefile's `demo` target.
        "demo" => vec![
            (
                repo().join("data/uci_sentiment.csv"),
                vec![
                    "--text",
                    "text",
                    "--id",
                    "id",
                    "--field",
                    "sentiment",
                    "--field",
                    "domain",
                ],
            ),
            (
                repo().join("data/demo_feedback.csv"),
                vec![
                    "--text",
                    "comment",
                    "--id",
                    "response_id",
                    "--respondent",
                    "customer",
                    "--date",
                    "submitted",
                    "--score",
                    "nps",
                    "--field",
                    "country",
                    "--field",
                    "channel",
                ],
            ),
        ],
        other => die(format!(
            "unknown data set {other:?} (amazon, airline, demo)"
        )),
    }
}

/// The workspace of `set`, ingested by the `verbatim` binary unless a finished one is there.
fn workspace(a: &Args, set: &str) -> PathBuf {
    let ws = a.ws.join(set);
    if ws.join(DONE).exists() && !a.rebuild {
        return ws;
    }
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("verbatim")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| {
            die("no verbatim binary next to this example: cargo build --release --locked --bin verbatim")
        });
    if ws.exists() {
        std::fs::remove_dir_all(&ws)
            .unwrap_or_else(|e| die(format!("cannot remove {}: {e}", ws.display())));
    }
    let run = |args: Vec<std::ffi::OsString>| {
        let t = Instant::now();
        let st = Command::new(&exe)
            .current_dir(repo())
            .arg("-w")
            .arg(&ws)
            .args(&args)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| die(format!("cannot run {}: {e}", exe.display())));
        if !st.success() {
            die(format!(
                "verbatim -w {} {args:?} failed: {st}",
                ws.display()
            ));
        }
        eprintln!(
            "search_eval: {set}: {args:?} in {:.0} s",
            t.elapsed().as_secs_f64()
        );
    };
    run(vec!["init".into(), ws.clone().into()]);
    for (file, flags) in ingests(set, &a.data) {
        if !file.exists() {
            die(format!(
                "{} not found (pass --data DIR, the folder of the shared evaluation data)",
                file.display()
            ));
        }
        let mut args: Vec<std::ffi::OsString> = vec!["ingest".into()];
        args.extend(flags.iter().map(|f| f.into()));
        args.push(file.into());
        run(args);
    }
    std::fs::write(ws.join(DONE), "")
        .unwrap_or_else(|e| die(format!("cannot write in {}: {e}", ws.display())));
    ws
}

/// One query's top 10 in one mode: `(verbatim id, text)`.
type Ranking = Vec<(String, String)>;

/// Runs every query of `set` in every mode; also returns the hybrid searches' times (ms).
fn run_set(
    ws_dir: &Path,
    model: &Arc<dyn Embedder>,
    queries: &[&JudgedQuery],
) -> (HashMap<(String, &'static str), Ranking>, Vec<f64>) {
    let mut ws =
        Workspace::open(ws_dir).unwrap_or_else(|e| die(format!("{}: {e}", ws_dir.display())));
    let model_dir = repo().join("models/all-MiniLM-L6-v2");
    let models = Models::loaded(Some(model_dir), Some(model.clone()));
    let settings = Settings::default();
    let mut session = Session::new(
        &mut ws,
        Caller::Owner,
        Via::cli("search"),
        &models,
        &settings,
    );
    let (mut out, mut times) = (HashMap::new(), Vec::new());
    for q in queries {
        for mode in MODES {
            let t = Instant::now();
            let r = session
                .search(SearchRequest {
                    text: q.text.clone(),
                    mode: Some(mode),
                    filter: Filter::default(),
                    limit: Some(10),
                    query_vector: None,
                    sentiment: None,
                    // Judged hit by hit, copies included.
                    keep_copies: true,
                })
                .unwrap_or_else(|e| die(format!("{} {mode:?}: {e}", q.qid)));
            if mode == Mode::Hybrid {
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let hits = r.hits.unwrap_or_default();
            let ranking = hits
                .into_iter()
                .map(|h| (h.verbatim.id, h.verbatim.text))
                .collect();
            out.insert((q.qid.clone(), mode_name(mode)), ranking);
        }
    }
    (out, times)
}

/// What ranking is made of, per query, for tuning the fusion outside the binary: the top
/// [`DUMP_DEPTH`] of each retriever with its score, whether the query states a problem, and per
/// verbatim its id, text, polarity and whether it contradicts the query. One JSON object per
/// query. It holds the text of evaluation-only data: keep it under `target/`.
const DUMP_DEPTH: usize = 100;

fn dump_set(ws_dir: &Path, model: &dyn Embedder, queries: &[&JudgedQuery]) -> Vec<String> {
    use verbatim::retrieve::{
        contradicting, ensure_sentiments, query_states_problem, vector_search,
    };
    use verbatim::sentiment::SentimentHead;
    let ws = Workspace::open(ws_dir).unwrap_or_else(|e| die(format!("{}: {e}", ws_dir.display())));
    let store = ws.raw_store();
    let (ix, _) = ws.indexes().unwrap_or_else(|e| die(e));
    let fp = store.model_fingerprint().ok().flatten().unwrap_or_default();
    let head_path = SentimentHead::path_for(&repo().join("models/all-MiniLM-L6-v2"));
    let (head, _) = SentimentHead::load(&head_path, &fp).unwrap_or_else(|e| die(e));
    let all = Filter::default();
    // Sentiment as search reads it: stored once per verbatim (computed here if missing).
    ensure_sentiments(store, &head).unwrap_or_else(|e| die(e));
    let mut lines = Vec::new();
    for q in queries {
        let qv = model
            .embed(&[q.text.as_str()], verbatim::embed::TextKind::Query)
            .unwrap_or_else(|e| die(e))
            .remove(0);
        let text = ix
            .text
            .search(&q.text, &all, DUMP_DEPTH)
            .unwrap_or_else(|e| die(e));
        let vector = vector_search(store, &ix, &qv, &all, DUMP_DEPTH).unwrap_or_else(|e| die(e));
        let docs: Vec<i64> = text
            .iter()
            .chain(&vector)
            .map(|h| h.0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let bad = contradicting(store, &q.text, &docs).unwrap_or_else(|e| die(e));
        let polarity: std::collections::HashMap<i64, _> = store
            .sentiments_of(&docs)
            .unwrap_or_else(|e| die(e))
            .into_iter()
            .map(|(d, s)| (d, head.polarity(s)))
            .collect();
        let verbatims: serde_json::Map<String, serde_json::Value> = store
            .get_docs(&docs)
            .unwrap_or_else(|e| die(e))
            .into_iter()
            .map(|v| {
                let p = polarity.get(&v.doc).map(|p| format!("{p:?}").to_lowercase());
                let info = serde_json::json!({"id": v.id, "text": v.text, "polarity": p, "contradicts": bad.contains(&v.doc)});
                (v.doc.to_string(), info)
            })
            .collect();
        lines.push(
            serde_json::json!({
                "qid": q.qid,
                "problem": query_states_problem(&head, &q.text, Some(&qv)),
                "query_polarity": format!("{:?}", verbatim::sentiment::unit(&head, &q.text, &qv).polarity).to_lowercase(),
                "text": text,
                "vector": vector,
                "docs": verbatims,
            })
            .to_string(),
        );
    }
    lines
}

/// Sums of P@5, nDCG@10, unjudged hits and queries, per (set, split, mode).
#[derive(Default)]
struct Cell {
    p5: f64,
    ndcg: f64,
    unjudged: usize,
    n: usize,
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Text => "text",
        Mode::Vector => "vector",
        Mode::Hybrid => "hybrid",
    }
}

fn main() {
    let a = args();
    let dir = repo().join("tests/fixtures/search_judged");
    let queries: Vec<JudgedQuery> =
        read_jsonl(&dir.join("queries.jsonl")).unwrap_or_else(|e| die(e));
    let grades = Grades::read(&dir.join("judgments.jsonl")).unwrap_or_else(|e| die(e));
    let model: Arc<dyn Embedder> = Arc::new(
        SentenceTransformer::load(
            &repo().join("models/all-MiniLM-L6-v2"),
            &EmbedOptions::default(),
        )
        .unwrap_or_else(|e| die(format!("model: {e}"))),
    );
    let mut cells: BTreeMap<(String, String, &str), Cell> = BTreeMap::new();
    let mut todo: BTreeMap<(String, String), (String, String, BTreeSet<String>)> = BTreeMap::new();
    let mut per_query = Vec::new();
    let mut dump = Vec::new();
    for set in &a.sets {
        let qs: Vec<&JudgedQuery> = queries.iter().filter(|q| &q.set == set).collect();
        let ws = workspace(&a, set);
        if a.dump.is_some() {
            dump.extend(dump_set(&ws, model.as_ref(), &qs));
        }
        let (rankings, mut times) = run_set(&ws, &model, &qs);
        times.sort_by(f64::total_cmp);
        if let Some(p50) = times.get(times.len() / 2) {
            eprintln!(
                "search_eval: {set}: hybrid search p50 {p50:.1} ms over {} queries",
                times.len()
            );
        }
        for q in &qs {
            let pool = grades.all_for(&q.qid);
            let mut line = format!("{:4} {:9} {:42}", q.qid, q.kind, q.text);
            for mode in MODES {
                let ranking = &rankings[&(q.qid.clone(), mode_name(mode))];
                let g: Vec<Option<u8>> = ranking
                    .iter()
                    .map(|(id, _)| grades.get(&q.qid, id))
                    .collect();
                let (p5, nd) = (precision_at(&g, 5), ndcg_at(&g, &pool, 10));
                let missing = g.iter().filter(|g| g.is_none()).count();
                line.push_str(&format!("  {}: P@5 {p5:.1} nDCG {nd:.2}", mode_name(mode)));
                for (i, (id, text)) in ranking.iter().enumerate() {
                    if g[i].is_none() {
                        todo.entry((q.qid.clone(), id.clone()))
                            .or_insert_with(|| (set.clone(), text.clone(), BTreeSet::new()))
                            .2
                            .insert(format!("{}#{}", mode_name(mode), i + 1));
                    }
                }
                for split in [q.split.as_str(), "all"] {
                    for s in [set.as_str(), "all"] {
                        let c = cells
                            .entry((s.to_string(), split.to_string(), mode_name(mode)))
                            .or_default();
                        c.p5 += p5;
                        c.ndcg += nd;
                        c.unjudged += missing;
                        c.n += 1;
                    }
                }
            }
            per_query.push(line);
        }
    }
    if a.per_query {
        for l in &per_query {
            println!("{l}");
        }
        println!();
    }
    println!("| data set | split | queries | text P@5 | vector P@5 | hybrid P@5 | text nDCG@10 | vector nDCG@10 | hybrid nDCG@10 | unjudged in top 10 |");
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut keys: Vec<(String, String)> = cells
        .keys()
        .map(|(s, sp, _)| (s.clone(), sp.clone()))
        .collect();
    keys.dedup();
    for (s, sp) in keys {
        let c = |m: &'static str| &cells[&(s.clone(), sp.clone(), m)];
        let n = c("text").n;
        let f = |m: &'static str, which: fn(&Cell) -> f64| which(c(m)) / n as f64;
        println!(
            "| {s} | {sp} | {n} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
            f("text", |c| c.p5),
            f("vector", |c| c.p5),
            f("hybrid", |c| c.p5),
            f("text", |c| c.ndcg),
            f("vector", |c| c.ndcg),
            f("hybrid", |c| c.ndcg),
            c("text").unjudged + c("vector").unjudged + c("hybrid").unjudged,
        );
    }
    println!("\ndefault mode: {}", mode_name(Mode::default()));
    if !todo.is_empty() {
        println!(
            "\n{} unjudged hits (judge them with tests/fixtures/search_judged/RULES.md):",
            todo.len()
        );
        for ((qid, id), (set, text, at)) in &todo {
            let q = queries
                .iter()
                .find(|q| &q.qid == qid)
                .map(|q| q.text.as_str())
                .unwrap_or("");
            let at: Vec<&str> = at.iter().map(String::as_str).collect();
            println!(
                "{qid} {q:?} [{set}] {id} ({}): {}",
                at.join(" "),
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
    }
    if let Some(path) = &a.dump {
        std::fs::write(path, dump.join("\n") + "\n")
            .unwrap_or_else(|e| die(format!("{}: {e}", path.display())));
    }
    if let Some(path) = &a.todo {
        let lines: String = todo
            .iter()
            .map(|((qid, id), (set, text, _))| {
                serde_json::json!({"qid": qid, "set": set, "id": id, "text": text}).to_string()
                    + "\n"
            })
            .collect();
        std::fs::write(path, lines).unwrap_or_else(|e| die(format!("{}: {e}", path.display())));
    }
}
