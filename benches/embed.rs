//! Embedding throughput, side by side with sentence-transformers (PyTorch, fp32 and bf16).
//!
//! `cargo bench --bench embed` does, for each data set:
//!
//! 1. embeds every text with verbatim's CPU engine (3 timed runs after a warm-up; the median is
//!    reported) — in fp32 and, where the CPU has AVX512-BF16, in bf16, the two taking turns, with
//!    the min cosine between their vectors — and, with `VERBATIM_BENCH_CANDLE=1`, with the
//!    candle-transformers baseline;
//! 2. when the peers venv exists (`$PEERS_VENV`, else `~/.cache/peers-venv`; built by
//!    `../shared/tools/peers/setup.sh`), runs `peers.py embed` on the *same file* with the same
//!    thread count and batch size, in this same run (`--dtype bf16` for the bf16 row), and prints
//!    the ratio;
//! 3. runs a criterion group on a fixed slice of the data (regression tracking; elements =
//!    sentences).
//!
//! Data: `../shared/data/uci_sentiment_sentences.jsonl` (3,000 short sentences) and the first
//! 1,000 texts of `../shared/data/20newsgroups.jsonl.gz` (long texts, 171 tokens on average);
//! without `../shared`, the 304 texts of `tests/fixtures/all-MiniLM-L6-v2.reference.jsonl`.
//! Threads: `VERBATIM_BENCH_THREADS` (default 2). Under `cargo test` (no `--bench`) it only
//! checks that one small batch embeds.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput};
use verbatim::embed::{
    set_threads, Device, EmbedOptions, Embedder, Engine, Precision, SentenceTransformer, TextKind,
};

const BATCH: usize = 32;

struct DataSet {
    name: &'static str,
    /// A JSON Lines file with a `text` field: what both engines read.
    file: PathBuf,
    texts: Vec<String>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_texts(path: &Path) -> Vec<String> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    BufReader::new(f)
        .lines()
        .map(|l| l.expect("read line"))
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).expect("JSON line");
            v["text"].as_str().expect("text field").to_string()
        })
        .collect()
}

/// The first `n` lines of a gzipped JSON Lines file, written to `out` (uncompressed, because the
/// peer reads plain JSON Lines).
fn gunzip_head(gz: &Path, n: usize, out: &Path) -> bool {
    let Ok(mut child) = Command::new("gzip")
        .arg("-dc")
        .arg(gz)
        .stdout(Stdio::piped())
        .spawn()
    else {
        return false;
    };
    let stdout = child.stdout.take().expect("piped stdout");
    let mut w = std::fs::File::create(out).expect("create sample file");
    for line in BufReader::new(stdout).lines().take(n) {
        writeln!(w, "{}", line.expect("gzip output")).expect("write sample");
    }
    let _ = child.kill();
    let _ = child.wait();
    true
}

fn data_sets(tmp: &Path) -> Vec<DataSet> {
    let shared = repo().join("../shared/data");
    let mut sets = Vec::new();
    let uci = shared.join("uci_sentiment_sentences.jsonl");
    if uci.is_file() {
        sets.push(DataSet {
            name: "UCI sentences (3,000, short)",
            texts: read_texts(&uci),
            file: uci,
        });
    }
    let ng = shared.join("20newsgroups.jsonl.gz");
    let ng_sample = tmp.join("20newsgroups-1000.jsonl");
    if ng.is_file() && gunzip_head(&ng, 1000, &ng_sample) {
        sets.push(DataSet {
            name: "20 Newsgroups (first 1,000, long)",
            texts: read_texts(&ng_sample),
            file: ng_sample,
        });
    }
    if sets.is_empty() {
        let fixture = repo().join("tests/fixtures/all-MiniLM-L6-v2.reference.jsonl");
        sets.push(DataSet {
            name: "reference fixture (304, mixed)",
            texts: read_texts(&fixture),
            file: fixture,
        });
    }
    sets
}

struct Peer {
    sent_per_s: f64,
    tok_per_s: f64,
    tokens: u64,
}

/// Runs `peers.py embed` on `file`; `None` when the venv or the script is absent.
fn run_peer(file: &Path, threads: usize, model: &Path, dtype: &str) -> Option<Peer> {
    let venv = std::env::var_os("PEERS_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/peers-venv")))?;
    let python = venv.join("bin/python");
    let script = repo().join("../shared/tools/peers/peers.py");
    if !python.is_file() || !script.is_file() {
        eprintln!(
            "peer: no {} or {}; ratio skipped",
            python.display(),
            script.display()
        );
        return None;
    }
    let out = Command::new(&python)
        .arg(&script)
        .args(["embed", "--input"])
        .arg(file)
        .arg("--model")
        .arg(model)
        .args([
            "--threads",
            &threads.to_string(),
            "--batch",
            &BATCH.to_string(),
            "--dtype",
            dtype,
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().rev().find(|l| l.starts_with('{')) else {
        eprintln!("peer failed ({}): {stdout}", out.status);
        return None;
    };
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(Peer {
        sent_per_s: v["sent_per_s"].as_f64()?,
        tok_per_s: v["tok_per_s"].as_f64()?,
        tokens: v["tokens"].as_u64()?,
    })
}

/// The peer's columns of a table row (`sent/s | tok/s`) and verbatim's ratio to it at `sps`.
fn peer_columns(peer: Option<&Peer>, sps: f64) -> (String, String) {
    match peer {
        Some(p) => (
            format!("{:.1} | {:.0}", p.sent_per_s, p.tok_per_s),
            format!("{:.2}×", sps / p.sent_per_s),
        ),
        None => ("– | –".to_string(), "–".to_string()),
    }
}

/// Median seconds of `runs` full passes over `texts`, after a warm-up.
fn time_embed(model: &SentenceTransformer, texts: &[&str], runs: usize) -> f64 {
    time_embed_interleaved(&[model], texts, runs).0[0]
}

/// Median seconds of `runs` full passes over `texts` for each model, the models taking turns
/// (A, B, A, B, …) so that a change in the machine's load hits both alike; also the vectors of
/// each model's last pass.
fn time_embed_interleaved(
    models: &[&SentenceTransformer],
    texts: &[&str],
    runs: usize,
) -> (Vec<f64>, Vec<Vec<Vec<f32>>>) {
    for model in models {
        model
            .embed(&texts[..texts.len().min(64)], TextKind::Passage)
            .expect("warm-up");
    }
    let mut secs = vec![Vec::new(); models.len()];
    let mut vectors = vec![Vec::new(); models.len()];
    for _ in 0..runs {
        for (i, model) in models.iter().enumerate() {
            let t = Instant::now();
            let v = model.embed(texts, TextKind::Passage).expect("embed");
            secs[i].push(t.elapsed().as_secs_f64());
            assert_eq!(v.len(), texts.len());
            vectors[i] = v;
        }
    }
    let medians = secs
        .iter_mut()
        .map(|s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect();
    (medians, vectors)
}

/// The smallest cosine between corresponding unit vectors of `a` and `b`.
fn min_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>())
        .fold(f32::INFINITY, f32::min)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let threads: usize = std::env::var("VERBATIM_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    set_threads(Some(threads)).expect("thread pool");
    // VERBATIM_BENCH_MODEL: a model name from models/ (default all-MiniLM-L6-v2). The peer loads
    // the same folder with sentence-transformers (for e5: the imported folder, no prompt; verbatim
    // adds "passage: ", ~3 more tokens a text).
    let model_name = std::env::var("VERBATIM_BENCH_MODEL")
        .unwrap_or_else(|_| verbatim::embed::DEFAULT_MODEL.to_string());
    let model_dir = repo().join("models").join(&model_name);
    if !model_dir.join("model.safetensors").is_file() {
        eprintln!(
            "embed bench: no model in {} (run `models/fetch.sh {model_name}`); skipped",
            model_dir.display()
        );
        return;
    }
    let opts = |engine| EmbedOptions {
        batch_size: BATCH,
        device: Device::Cpu,
        engine,
        ..EmbedOptions::default()
    };
    let model = SentenceTransformer::load(&model_dir, &opts(Engine::Auto)).expect("load model");
    // The bf16 path (issue 19), where this CPU has AVX512-BF16.
    let bf16 = verbatim::embed::bf16_available().then(|| {
        let o = EmbedOptions {
            precision: Precision::Bf16,
            ..opts(Engine::Auto)
        };
        SentenceTransformer::load(&model_dir, &o).expect("load model (bf16)")
    });
    if !bench_mode {
        let v = model
            .embed(&["smoke test", ""], TextKind::Passage)
            .expect("embed");
        assert_eq!(v.len(), 2);
        return;
    }

    let tmp = tempfile::tempdir().expect("tempdir");
    let sets = data_sets(tmp.path());
    let with_candle = std::env::var_os("VERBATIM_BENCH_CANDLE").is_some_and(|v| v == "1");
    let candle = with_candle
        .then(|| SentenceTransformer::load(&model_dir, &opts(Engine::Candle)).expect("load"));

    println!(
        "\nEmbedding throughput: {model_name}, {threads} threads, batch {BATCH}, {} ({} CPUs, AVX512-BF16: {}), load average {}",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if bf16.is_some() { "yes" } else { "no" },
        load_average()
    );
    println!(
        "| data | texts | tokens | verbatim sent/s | verbatim tok/s | peer sent/s | peer tok/s | ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for set in &sets {
        let texts: Vec<&str> = set.texts.iter().map(String::as_str).collect();
        let tokens: usize = model
            .token_counts(&texts, TextKind::Passage)
            .expect("tokenize")
            .iter()
            .sum();
        let mut models = vec![&model];
        models.extend(&bf16);
        let (secs, vectors) = time_embed_interleaved(&models, &texts, 3);
        let (sps, tps) = (texts.len() as f64 / secs[0], tokens as f64 / secs[0]);
        let peer = run_peer(&set.file, threads, &model_dir, "fp32");
        let peer_bf16 = bf16
            .as_ref()
            .and_then(|_| run_peer(&set.file, threads, &model_dir, "bf16"));
        if let Some(p) = peer.as_ref().filter(|p| p.tokens as usize != tokens) {
            eprintln!("note: peer counted {} tokens, verbatim {tokens}", p.tokens);
        }
        let (peer_cols, ratio) = peer_columns(peer.as_ref(), sps);
        println!(
            "| {} | {} | {tokens} | {sps:.1} | {tps:.0} | {peer_cols} | {ratio} |",
            set.name,
            texts.len()
        );
        if bf16.is_some() {
            let bsps = texts.len() as f64 / secs[1];
            let (peer_cols, ratio) = peer_columns(peer_bf16.as_ref(), bsps);
            println!(
                "| {} — bf16 (peer: PyTorch bf16; min cosine to fp32 {:.5}; {:.2}× verbatim fp32) | {} | {tokens} | {bsps:.1} | {:.0} | {peer_cols} | {ratio} |",
                set.name,
                min_cosine(&vectors[0], &vectors[1]),
                secs[0] / secs[1],
                texts.len(),
                tokens as f64 / secs[1],
            );
        }
        if let Some(candle) = &candle {
            let secs = time_embed(candle, &texts, 1);
            let csps = texts.len() as f64 / secs;
            let ratio = peer.as_ref().map_or("–".to_string(), |p| {
                format!("{:.2}×", csps / p.sent_per_s)
            });
            println!(
                "| {} — candle-transformers BertModel (baseline) | {} | {tokens} | {csps:.1} | {:.0} | | | {ratio} |",
                set.name,
                texts.len(),
                tokens as f64 / secs
            );
        }
    }
    println!();

    // Criterion on a fixed slice: regression tracking between runs on one machine.
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group("embed");
    for set in &sets {
        let n = if set.texts.iter().map(String::len).sum::<usize>() / set.texts.len() > 400 {
            64
        } else {
            512
        };
        let slice: Vec<&str> = set.texts.iter().take(n).map(String::as_str).collect();
        group.throughput(Throughput::Elements(slice.len() as u64));
        group.bench_with_input(BenchmarkId::new("cpu", set.name), &slice, |b, s| {
            b.iter(|| model.embed(s, TextKind::Passage).expect("embed"))
        });
    }
    group.finish();
    c.final_summary();
}
