//! Ingest wall time vs pure embedding time, on 20 Newsgroups and on 100k chit-chat utterances.
//!
//! The question: how much does everything around the model (reading, hashing, SQLite commits,
//! tantivy, HNSW, persistence) add to the embedding work that any system must do? The bar is
//! ingest ≤ 1.3 × embedding. Each data set is measured once end to end (a full ingest is minutes,
//! so criterion's repeated sampling would be the wrong tool); run-to-run noise is a few percent.
//!
//! ```sh
//! cargo bench --bench ingest                       # both data sets, all cores
//! VERBATIM_BENCH_THREADS=2 VERBATIM_BENCH_LIMIT=20000 cargo bench --bench ingest
//! ```
//! Needs `../shared/data` (skipped with a message otherwise) and the model (`make models`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use verbatim::embed::{set_threads, EmbedOptions, Embedder, SentenceTransformer, TextKind};
use verbatim::ingest::Mapping;
use verbatim::workspace::ingest::{ingest_file, IngestOptions, NoProgress};
use verbatim::workspace::Workspace;

struct Set {
    name: &'static str,
    file: &'static str,
    limit: usize,
    mapping: Mapping,
}

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// Decompresses (if needed) and cuts a JSON Lines data set to `limit` rows in a temp file.
fn prepare(src: &Path, limit: usize, out: &Path) -> Vec<String> {
    let raw = if src.extension().is_some_and(|e| e == "gz") {
        let o = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(src)
            .output()
            .expect("gzip");
        String::from_utf8(o.stdout).expect("utf-8")
    } else {
        std::fs::read_to_string(src).expect("read data")
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let mut texts = Vec::new();
    for line in raw.lines().filter(|l| !l.trim().is_empty()).take(limit) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        texts.push(v["text"].as_str().unwrap_or("").to_string());
        writeln!(f, "{line}").unwrap();
    }
    texts
}

fn main() {
    // `cargo test --benches` runs this with --bench absent; only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let data = shared();
    if !data.is_dir() {
        eprintln!("ingest bench: {} not found, skipping", data.display());
        return;
    }
    let threads = std::env::var("VERBATIM_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok());
    set_threads(threads).unwrap();
    let limit_override: Option<usize> = std::env::var("VERBATIM_BENCH_LIMIT")
        .ok()
        .and_then(|t| t.parse().ok());
    let model_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2");
    let model = SentenceTransformer::load(&model_dir, &EmbedOptions::default())
        .expect("model (make models)");
    let sets = [
        Set {
            name: "20 Newsgroups",
            file: "20newsgroups.jsonl.gz",
            limit: 18_821,
            mapping: Mapping {
                text: vec!["text".into()],
                id: Some("id".into()),
                fields: vec!["label".into(), "split".into()],
                ..Mapping::default()
            },
        },
        Set {
            name: "chit-chat 100k",
            file: "chitchat_utterances.jsonl.gz",
            limit: 100_000,
            mapping: Mapping {
                text: vec!["text".into()],
                id: Some("id".into()),
                date: Some("date".into()),
                fields: vec!["label".into()],
                ..Mapping::default()
            },
        },
    ];
    println!("| data set | verbatims | pure embedding (s) | ingest (s) | ratio | read | redact | embed | store | index |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // VERBATIM_BENCH_SETS=chit (a substring of the name) runs only the matching sets.
    let only = std::env::var("VERBATIM_BENCH_SETS").ok();
    for set in sets {
        if only
            .as_deref()
            .is_some_and(|o| !set.name.to_lowercase().contains(&o.to_lowercase()))
        {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("input.jsonl");
        let limit = limit_override.map_or(set.limit, |l| l.min(set.limit));
        let texts = prepare(&data.join(set.file), limit, &file);

        // Pure embedding: the same texts, the same chunking as ingest, nothing else.
        let t = Instant::now();
        for chunk in texts.chunks(256) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            std::hint::black_box(model.embed(&refs, TextKind::Passage).unwrap());
        }
        let embed_s = t.elapsed().as_secs_f64();

        let ws_dir = tmp.path().join("ws");
        let mut ws = Workspace::init(&ws_dir).unwrap();
        let opts = IngestOptions {
            mapping: Some(set.mapping),
            ..Default::default()
        };
        let t = Instant::now();
        let s = ingest_file(&mut ws, &model, &file, &opts, &NoProgress).unwrap();
        let ingest_s = t.elapsed().as_secs_f64();
        let tm = &s.timings;
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.2}× | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            set.name,
            s.stored,
            embed_s,
            ingest_s,
            ingest_s / embed_s,
            tm.read,
            tm.redact,
            tm.embed,
            tm.store,
            tm.index
        );
    }
}
