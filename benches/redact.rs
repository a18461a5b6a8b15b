//! PII detection throughput (`verbatim::pii::detect`), one core, in MB/s of text.
//!
//! `cargo bench --bench redact` measures, for each data set, `detect` over every text (after a
//! warm-up; the best of 5 timed passes, each at least half a second) and prints a markdown row
//! `| data | texts | MB | MB/s | spans found |`, then a criterion group per data set (regression
//! tracking; throughput in bytes). With `PRESIDIO_PYTHON` set to a Python that has
//! presidio-analyzer (see `benches/peers/presidio_eval.py`), the peer runs on the same texts in
//! the same run and the ratio is printed.
//!
//! Data: (a) the 3,000 UCI sentences of `data/uci_sentiment.csv` (always present); (b)
//! `../shared/data/amazon_fine_foods.jsonl` when present; (c) the texts of the PII evaluation set
//! `tests/fixtures/pii/eval.jsonl` (dense in PII, so the slow paths run). Under `cargo test` (no
//! `--bench`) it only checks that detection runs on a few texts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use verbatim::pii::{detect, PiiKind};

struct DataSet {
    name: &'static str,
    texts: Vec<String>,
}

impl DataSet {
    fn bytes(&self) -> usize {
        self.texts.iter().map(String::len).sum()
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn uci() -> DataSet {
    let mut r = csv::Reader::from_path(repo().join("data/uci_sentiment.csv")).expect("UCI csv");
    let headers = r.headers().expect("header").clone();
    let col = headers
        .iter()
        .position(|h| h == "text")
        .expect("text column");
    let texts = r
        .records()
        .map(|rec| rec.expect("csv row")[col].to_string())
        .collect();
    DataSet {
        name: "UCI sentences (3,000)",
        texts,
    }
}

fn jsonl(name: &'static str, path: &Path) -> Option<DataSet> {
    let raw = std::fs::read_to_string(path).ok()?;
    let texts = raw
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["text"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    Some(DataSet { name, texts })
}

fn detect_all(texts: &[String]) -> usize {
    texts.iter().map(|t| detect(t).len()).sum()
}

/// Best MB/s over 5 timed passes of at least half a second each (one core: `detect` is
/// single-threaded).
fn throughput(set: &DataSet) -> f64 {
    std::hint::black_box(detect_all(&set.texts));
    let mut best = 0.0f64;
    for _ in 0..5 {
        let t = Instant::now();
        let mut bytes = 0usize;
        while t.elapsed() < Duration::from_millis(500) {
            std::hint::black_box(detect_all(&set.texts));
            bytes += set.bytes();
        }
        best = best.max(bytes as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
    best
}

/// Runs the Presidio peer on the same texts; its MB/s.
fn presidio(python: &str, set: &DataSet) -> Option<f64> {
    let dir = tempfile::tempdir().ok()?;
    let file = dir.path().join("texts.jsonl");
    let lines: Vec<String> = set
        .texts
        .iter()
        .map(|t| serde_json::json!({ "text": t }).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).ok()?;
    let out = Command::new(python)
        .arg(repo().join("benches/peers/presidio_eval.py"))
        .arg("--speed")
        .arg(&file)
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("MB/s "))
        .and_then(|v| v.trim().parse().ok())
}

fn main() {
    let eval = jsonl(
        "PII eval set",
        &repo().join("tests/fixtures/pii/eval.jsonl"),
    )
    .expect("tests/fixtures/pii/eval.jsonl");
    // `cargo test --benches` runs this without --bench: a quick check only.
    if !std::env::args().any(|a| a == "--bench") {
        let found = detect_all(&eval.texts[..50.min(eval.texts.len())]);
        assert!(found > 0, "no PII found in the first eval texts");
        return;
    }
    let mut sets = vec![uci()];
    let amazon = repo().join("../shared/data/amazon_fine_foods.jsonl");
    match jsonl("Amazon Fine Foods reviews", &amazon) {
        Some(s) => sets.push(s),
        None => eprintln!("redact bench: {} not found, skipping", amazon.display()),
    }
    sets.push(eval);
    let peer = std::env::var("PRESIDIO_PYTHON").ok();

    println!("| data | texts | MB | MB/s (one core) | spans found | Presidio MB/s | ratio |");
    println!("|---|---:|---:|---:|---|---:|---:|");
    for set in &sets {
        let mbs = throughput(set);
        let mut kinds = std::collections::BTreeMap::new();
        for t in &set.texts {
            for s in detect(t) {
                *kinds.entry(s.kind).or_insert(0usize) += 1;
            }
        }
        let found: Vec<String> = PiiKind::ALL
            .iter()
            .filter_map(|k| kinds.get(k).map(|n| format!("{k} {n}")))
            .collect();
        let (p, ratio) = match peer.as_deref().and_then(|py| presidio(py, set)) {
            Some(p) => (format!("{p:.3}"), format!("{:.0}×", mbs / p)),
            None => ("–".into(), "–".into()),
        };
        println!(
            "| {} | {} | {:.2} | {:.1} | {} | {p} | {ratio} |",
            set.name,
            set.texts.len(),
            set.bytes() as f64 / 1e6,
            mbs,
            if found.is_empty() {
                "none".into()
            } else {
                found.join(", ")
            }
        );
        if std::env::var_os("VERBATIM_BENCH_SHOW").is_some() {
            for t in &set.texts {
                for s in detect(t) {
                    eprintln!("{:<6} {:?}  in {:?}", s.kind.name(), &t[s.start..s.end], t);
                }
            }
        }
    }
    println!();

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("redact");
    for set in &sets {
        group.throughput(Throughput::Bytes(set.bytes() as u64));
        group.bench_with_input(BenchmarkId::new("detect", set.name), &set.texts, |b, t| {
            b.iter(|| detect_all(t))
        });
    }
    group.finish();
    c.final_summary();
}
