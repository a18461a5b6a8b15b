//! Theme discovery: quality (NMI / ARI against the data's labels) and speed, against BERTopic
//! (UMAP + HDBSCAN) on the same embeddings, same machine.
//!
//! Sets (from `../shared/data`):
//! * `uci3` — the 3,000 UCI sentences, labels = their domain (amazon / imdb / yelp);
//! * `20ng-6k` — every third 20 Newsgroups post (first 6,000 of them), labels = newsgroup;
//! * `20ng` — all 18,821 posts;
//! * `chitchat-100k` — the first 100,000 chit-chat utterances, labels = opening prompt.
//!
//! For each set the embeddings (all-MiniLM-L6-v2, made by verbatim, cached as .npy under
//! `target/bench-themes/`) go to both systems. verbatim's run is `themes::run::discover` (what
//! `verbatim themes` runs: clustering, k selection, "other", second themes, labels), timed
//! alone; NMI/ARI come from `peers.py score` (the same metric code BERTopic's numbers use), with
//! "other" as one more label. A second verbatim line fixes k to the number of labels, as a
//! reference for what the automatic choice of k costs or gains. Memory: the peak resident set
//! during the run above what the bench held before it (its input vectors and texts included in
//! the run's copy).
//!
//! ```sh
//! cargo bench --bench themes                                   # all sets, with BERTopic
//! VERBATIM_BENCH_SETS=uci3,20ng-6k VERBATIM_BENCH_PEERS=0 cargo bench --bench themes
//! ```
//! Threads: `VERBATIM_BENCH_THREADS` (default 2); BERTopic runs with the same limit
//! (OMP/NUMBA/OPENBLAS threads). Needs `../shared` and the peers venv
//! (`../shared/tools/peers/setup.sh`, at `~/.cache/peers-venv` or `$PEERS_PYTHON`).

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use verbatim::embed::{set_threads, EmbedOptions, Embedder, SentenceTransformer, TextKind};
use verbatim::store::Verbatim;
use verbatim::themes::run::{discover, theme_id, Params};

struct Set {
    name: &'static str,
    file: &'static str,
    label: &'static str,
    /// Keep row i when this says so (before `limit`).
    keep: fn(usize) -> bool,
    limit: usize,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_rows(path: &Path) -> Vec<serde_json::Value> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(path)
            .output()
            .expect("gzip");
        Box::new(std::io::Cursor::new(out.stdout))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    reader
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(&l).expect("json"))
        .collect()
}

fn write_npy(path: &Path, x: &[f32], n: usize, dim: usize) {
    let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {dim}), }}");
    let unpadded = 10 + header.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let mut buf = Vec::with_capacity(unpadded + pad + x.len() * 4);
    buf.extend_from_slice(b"\x93NUMPY\x01\x00");
    buf.extend_from_slice(&((header.len() + pad + 1) as u16).to_le_bytes());
    buf.extend_from_slice(header.as_bytes());
    buf.extend(std::iter::repeat_n(b' ', pad));
    buf.push(b'\n');
    for v in x {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, buf).unwrap();
}

fn read_npy(path: &Path) -> Option<Vec<f32>> {
    let b = std::fs::read(path).ok()?;
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    Some(
        b[10 + hl..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// A /proc/self/status field in MB (VmHWM: peak resident, VmRSS: current).
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PEERS_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from(std::env::var_os("HOME")?).join(".cache/peers-venv/bin/python");
    p.is_file().then_some(p)
}

fn peers(args: &[&str], threads: usize) -> Option<serde_json::Value> {
    let py = python()?;
    let script = repo().join("../shared/tools/peers/peers.py");
    let t = threads.to_string();
    let out = Command::new(py)
        .arg(script)
        .args(args)
        .env("OMP_NUM_THREADS", &t)
        .env("NUMBA_NUM_THREADS", &t)
        .env("OPENBLAS_NUM_THREADS", &t)
        .env("MKL_NUM_THREADS", &t)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "peers.py {}: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last()?).ok()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let data = repo().join("../shared/data");
    if !data.is_dir() {
        eprintln!("themes bench: {} not found, skipping", data.display());
        return;
    }
    let threads: usize = std::env::var("VERBATIM_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    set_threads(Some(threads)).unwrap();
    let want: Option<BTreeSet<String>> = std::env::var("VERBATIM_BENCH_SETS")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let with_peers = std::env::var("VERBATIM_BENCH_PEERS").map_or(true, |v| v != "0");
    let sets = [
        Set {
            name: "uci3",
            file: "uci_sentiment_sentences.jsonl",
            label: "domain",
            keep: |_| true,
            limit: usize::MAX,
        },
        Set {
            name: "20ng-6k",
            file: "20newsgroups.jsonl.gz",
            label: "label",
            keep: |i| i % 3 == 0,
            limit: 6000,
        },
        Set {
            name: "20ng",
            file: "20newsgroups.jsonl.gz",
            label: "label",
            keep: |_| true,
            limit: usize::MAX,
        },
        Set {
            name: "chitchat-100k",
            file: "chitchat_utterances.jsonl.gz",
            label: "label",
            keep: |_| true,
            limit: 100_000,
        },
    ];
    let cache = repo().join("target/bench-themes");
    std::fs::create_dir_all(&cache).unwrap();
    let model = SentenceTransformer::load(
        &repo().join("models/all-MiniLM-L6-v2"),
        &EmbedOptions::default(),
    )
    .expect("model (make models)");
    println!("| set | n | system | themes | other | NMI | ARI | seconds | memory MB |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for set in sets
        .iter()
        .filter(|s| want.as_ref().is_none_or(|w| w.contains(s.name)))
    {
        let rows: Vec<serde_json::Value> = read_rows(&data.join(set.file))
            .into_iter()
            .enumerate()
            .filter(|(i, _)| (set.keep)(*i))
            .map(|(_, r)| r)
            .take(set.limit)
            .collect();
        // The set as peers.py reads it: id, text, label.
        let input = cache.join(format!("{}.jsonl", set.name));
        {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
            for (i, r) in rows.iter().enumerate() {
                let id = r["id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string());
                // peers.py's metrics need a label on every row (chit-chat has some null).
                let label = match &r[set.label] {
                    serde_json::Value::Null => serde_json::json!("(none)"),
                    v => v.clone(),
                };
                let line = serde_json::json!({"id": id, "text": r["text"], "label": label});
                writeln!(f, "{line}").unwrap();
            }
        }
        let texts: Vec<String> = rows
            .iter()
            .map(|r| r["text"].as_str().unwrap_or("").to_string())
            .collect();
        let npy = cache.join(format!("{}.npy", set.name));
        let dim = model.dim();
        let x = match read_npy(&npy).filter(|x| x.len() == texts.len() * dim) {
            Some(x) => x,
            None => {
                eprintln!(
                    "{}: embedding {} texts (cached afterwards)…",
                    set.name,
                    texts.len()
                );
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let mut x = Vec::with_capacity(texts.len() * dim);
                for chunk in refs.chunks(4096) {
                    for v in model.embed(chunk, TextKind::Passage).unwrap() {
                        x.extend(v);
                    }
                }
                write_npy(&npy, &x, texts.len(), dim);
                x
            }
        };
        let labels: BTreeSet<String> = rows.iter().map(|r| r[set.label].to_string()).collect();
        let docs: Vec<Verbatim> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| Verbatim {
                doc: i as i64 + 1,
                id: r["id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string()),
                text: texts[i].clone(),
                respondent: None,
                ts: None,
                score: None,
                language: "en".into(),
                fields: Default::default(),
                source: String::new(),
                seq: 0,
            })
            .collect();
        for (system, k) in [
            ("verbatim (k by silhouette)", None),
            ("verbatim (k = #labels)", Some(labels.len())),
        ] {
            // Memory of the run alone: reset the high-water mark (Linux), note what the bench
            // itself holds (data, model), report the peak above it.
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            let base = status_mb("VmRSS:");
            let t = Instant::now();
            let run = discover(
                docs.clone(),
                x.clone(),
                dim,
                &[],
                &Params {
                    k,
                    ..Params::default()
                },
                // Sentence vectors (second themes) are an embedding pass, not timed here.
                Default::default(),
            );
            let secs = t.elapsed().as_secs_f64();
            let pred = cache.join(format!("{}.pred.jsonl", set.name));
            {
                let mut f = std::io::BufWriter::new(std::fs::File::create(&pred).unwrap());
                for (d, m) in run.docs.iter().zip(&run.members) {
                    let theme = m.theme.map(theme_id).unwrap_or_else(|| "other".into());
                    writeln!(f, "{}", serde_json::json!({"id": d.id, "theme": theme})).unwrap();
                }
            }
            let themes = run.active().count();
            let other = run.members.iter().filter(|m| m.theme.is_none()).count() as f64
                / run.members.len() as f64;
            let score = peers(
                &[
                    "score",
                    "--pred",
                    pred.to_str().unwrap(),
                    "--input",
                    input.to_str().unwrap(),
                ],
                threads,
            );
            let (nmi, ari) = score
                .as_ref()
                .map(|s| (s["nmi"].to_string(), s["ari"].to_string()))
                .unwrap_or(("?".into(), "?".into()));
            println!(
                "| {} | {} | {system} | {themes} | {:.1}% | {nmi} | {ari} | {secs:.2} | {:.0} |",
                set.name,
                docs.len(),
                100.0 * other,
                status_mb("VmHWM:") - base
            );
            std::io::stdout().flush().unwrap();
        }
        if with_peers {
            let t = Instant::now();
            match peers(
                &[
                    "themes",
                    "--vectors",
                    npy.to_str().unwrap(),
                    "--input",
                    input.to_str().unwrap(),
                ],
                threads,
            ) {
                Some(b) => println!(
                    "| {} | {} | BERTopic (UMAP+HDBSCAN) | {} | {:.1}% | {} | {} | {} | - |",
                    set.name,
                    docs.len(),
                    b["themes"],
                    100.0 * b["outlier_share"].as_f64().unwrap_or(0.0),
                    b["nmi"],
                    b["ari"],
                    b["seconds"]
                ),
                None => eprintln!(
                    "{}: BERTopic did not run ({:.0} s)",
                    set.name,
                    t.elapsed().as_secs_f64()
                ),
            }
            std::io::stdout().flush().unwrap();
        }
    }
}
