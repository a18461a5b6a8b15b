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
//! The **theme tree** (issue 14, `themes::tree`) is measured on `airline-tree`: the negative airline
//! tweets with a complaint reason (`reason_confidence` ≥ 0.7, "Can't Tell" left out: 3,489 tweets,
//! 9 reasons), split into opinion units (`themes::units::split`, @handles blanked first: they
//! address the airline, they say nothing), units embedded once (cached). NMI against the reason at
//! verbatim level, one theme per tweet: the child (or parent) nearest to the mean of the tweet's
//! unit vectors (`tree::dominant_child`), "other" when all its units are. Side by side: today's
//! verbatim-level themes on the whole tweets, and BERTopic on the same unit vectors with the same
//! verbatim rule (`benches/peers/proto/tree.py --variants bertopic`, peers.py's settings).
//!
//! Rows: children by size (`tree::CHILD_CAP`, the default) against children by silhouette (the
//! rule before), both views, and multilingual-e5-small unit vectors centred (the mean removed) in
//! the aspect view; per row the share of tweets each child holds (median, max, how many hold
//! 1–10 %) and Other as units and as tweets (a tweet all of whose units are Other; it is one more
//! label in the NMI).
//!
//! `tree-speed` times `tree::build` on 128,000 × 384 synthetic unit vectors (400 directions with
//! noise, 30 units a verbatim): the shape of the units of 100k chit-chat + all of Amazon, whose
//! real unit embeddings take hours on 2 cores; the tree's cost depends on the shape, not the text.
//!
//! ```sh
//! cargo bench --bench themes                                   # all sets, with BERTopic
//! VERBATIM_BENCH_SETS=airline-tree cargo bench --bench themes  # the theme tree only
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
use verbatim::themes::tree;
use verbatim::themes::units::split;

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
    if want.as_ref().is_none_or(|w| w.contains("tree-speed")) {
        tree_speed();
    }
    if want.as_ref().is_none_or(|w| w.contains("airline-tree")) {
        airline_tree(&data, &cache, &model, threads, with_peers);
    }
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

/// Embeds `texts` with `model`, cached as `npy`.
fn embed_cached(npy: &Path, texts: &[String], model: &SentenceTransformer) -> Vec<f32> {
    let dim = model.dim();
    if let Some(x) = read_npy(npy).filter(|x| x.len() == texts.len() * dim) {
        return x;
    }
    eprintln!("embedding {} texts into {} …", texts.len(), npy.display());
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut x = Vec::with_capacity(texts.len() * dim);
    for chunk in refs.chunks(4096) {
        for v in model.embed(chunk, TextKind::Passage).unwrap() {
            x.extend(v);
        }
    }
    write_npy(npy, &x, texts.len(), dim);
    x
}

/// NMI of `pred` (one theme per tweet, "other" included) against the reasons, by peers.py score.
fn score_pred(
    cache: &Path,
    name: &str,
    ids: &[String],
    pred: &[String],
    input: &Path,
    threads: usize,
) -> String {
    let path = cache.join(format!("{name}.pred.jsonl"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for (id, t) in ids.iter().zip(pred) {
        writeln!(f, "{}", serde_json::json!({"id": id, "theme": t})).unwrap();
    }
    drop(f);
    peers(
        &[
            "score",
            "--pred",
            path.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ],
        threads,
    )
    .map_or("?".into(), |s| s["nmi"].to_string())
}

/// The theme tree on airline complaint units against the complaint reason (see the module docs).
fn airline_tree(
    data: &Path,
    cache: &Path,
    model: &SentenceTransformer,
    threads: usize,
    with_peers: bool,
) {
    let rows: Vec<serde_json::Value> = read_rows(&data.join("airline_tweets.jsonl"))
        .into_iter()
        .filter(|r| {
            r["sentiment"] == "negative"
                && r["reason"].as_str().is_some_and(|x| x != "Can't Tell")
                && r["reason_confidence"].as_f64().is_some_and(|c| c >= 0.7)
        })
        .collect();
    let handle = regex::Regex::new(r"@\w+").unwrap();
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let texts: Vec<String> = rows
        .iter()
        .map(|r| {
            let t = r["text"].as_str().unwrap_or("");
            handle
                .replace_all(t, |c: &regex::Captures| " ".repeat(c[0].len()))
                .into_owned()
        })
        .collect();
    let (mut unit_texts, mut groups, mut spans) = (Vec::new(), Vec::new(), Vec::new());
    for (v, t) in texts.iter().enumerate() {
        for u in split(t) {
            let piece = t[u.start..u.end].trim();
            if piece.is_empty() {
                continue;
            }
            unit_texts.push(piece.to_string());
            groups.push(v);
            spans.push((u.start, u.end));
        }
    }
    let input = cache.join("airline_docs.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for (r, t) in rows.iter().zip(&texts) {
            writeln!(
                f,
                "{}",
                serde_json::json!({"id": r["id"], "text": t, "label": r["reason"]})
            )
            .unwrap();
        }
        // tree.py's unit file: vid, offsets, text.
        let mut u = std::io::BufWriter::new(
            std::fs::File::create(cache.join("airline_units.jsonl")).unwrap(),
        );
        for ((t, g), (a, b)) in unit_texts.iter().zip(&groups).zip(&spans) {
            writeln!(
                u,
                "{}",
                serde_json::json!({"vid": g, "start": a, "end": b, "text": t})
            )
            .unwrap();
        }
    }
    let dim = model.dim();
    let x = embed_cached(&cache.join("airline_minilm.npy"), &unit_texts, model);
    let xt = embed_cached(&cache.join("airline_tweets.npy"), &texts, model);
    // multilingual-e5-small, centred (its vectors are anisotropic: the mean is removed first,
    // as `themes::run` does per language).
    let e5 = SentenceTransformer::load(
        &repo().join("models/multilingual-e5-small"),
        &EmbedOptions::default(),
    )
    .ok()
    .map(|m| {
        let mut v = embed_cached(&cache.join("airline_e5.npy"), &unit_texts, &m);
        let d = m.dim();
        let n = v.len() / d;
        let mut mean = vec![0f64; d];
        for row in v.chunks(d) {
            for (a, b) in mean.iter_mut().zip(row) {
                *a += *b as f64 / n as f64;
            }
        }
        for row in v.chunks_mut(d) {
            for (a, b) in row.iter_mut().zip(&mean) {
                *a -= *b as f32;
            }
        }
        (v, d)
    });
    let (n, nv) = (unit_texts.len(), texts.len());
    println!();
    println!("| airline-tree ({nv} tweets, {n} units) | parents | children | child share of tweets: median / max / in 1–10 % | other units / tweets | NMI parent | NMI child | seconds | memory MB |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let cap = tree::CHILD_CAP;
    let rows_run: Vec<(&str, f32, usize, f64, bool)> = vec![
        (
            "tree, aspect view (α = 0.5), children by size (default)",
            0.5f32,
            tree::CHILD_REFINE,
            cap,
            false,
        ),
        (
            "tree, aspect view, children by silhouette (before)",
            0.5,
            tree::CHILD_REFINE,
            0.0,
            false,
        ),
        (
            "tree, aspect view, children by size, cap 5 %",
            0.5,
            tree::CHILD_REFINE,
            0.05,
            false,
        ),
        (
            "tree, topic view (α = 0), children by size",
            0.0,
            tree::CHILD_REFINE,
            cap,
            false,
        ),
        (
            "tree, topic view, children by silhouette (before)",
            0.0,
            tree::CHILD_REFINE,
            0.0,
            false,
        ),
        (
            "e5 centred, aspect view, children by size",
            0.5,
            tree::CHILD_REFINE,
            cap,
            true,
        ),
        (
            "e5 centred, aspect view, children by silhouette",
            0.5,
            tree::CHILD_REFINE,
            0.0,
            true,
        ),
    ];
    for (name, alpha, refine, child_cap, use_e5) in rows_run {
        let (x, dim) = match (use_e5, &e5) {
            (false, _) => (&x, dim),
            (true, Some((v, d))) => (v, *d),
            (true, None) => continue,
        };
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let base = status_mb("VmRSS:");
        let t = Instant::now();
        let params = tree::TreeParams {
            aspect_alpha: alpha,
            child_refine: refine,
            child_cap,
            ..Default::default()
        };
        let tr = tree::build(x, dim, Some(&groups), &params).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let mem = status_mb("VmHWM:") - base;
        // Share of tweets in each child (a tweet is in every child one of its units is in).
        let mut members: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); tr.children()];
        for (c, &g) in tr.unit_child.iter().zip(&groups) {
            if let Some(c) = c {
                members[*c].insert(g);
            }
        }
        let mut shares: Vec<f64> = members.iter().map(|m| m.len() as f64 / nv as f64).collect();
        shares.sort_by(f64::total_cmp);
        let in_range = shares
            .iter()
            .filter(|&&s| (0.01..=0.10).contains(&s))
            .count();
        let share_text = format!(
            "{:.1} % / {:.1} % / {in_range} of {}",
            100.0 * shares.get(shares.len() / 2).copied().unwrap_or(0.0),
            100.0 * shares.last().copied().unwrap_or(0.0),
            shares.len()
        );
        let xs = tree::aspect_vectors(x, dim, Some(&groups), alpha);
        let dom = tree::dominant_child(&xs, dim, &groups, nv, &tr);
        let other_tweets = dom.iter().filter(|d| d.is_none()).count() as f64 / nv as f64;
        let child: Vec<String> = dom
            .iter()
            .map(|c| c.map_or("other".into(), |c| format!("c{c}")))
            .collect();
        let parent: Vec<String> = dom
            .iter()
            .map(|c| c.map_or("other".into(), |c| format!("p{}", tr.child_parent[c])))
            .collect();
        let nmi_c = score_pred(cache, "airline-tree-child", &ids, &child, &input, threads);
        let nmi_p = score_pred(cache, "airline-tree-parent", &ids, &parent, &input, threads);
        println!(
            "| {name} | {} | {} | {share_text} | {:.1} % / {:.1} % | {nmi_p} | {nmi_c} | {secs:.2} | {mem:.0} |",
            tr.parents,
            tr.children(),
            100.0 * tr.other_share(),
            100.0 * other_tweets
        );
        std::io::stdout().flush().unwrap();
    }
    // Today's verbatim-level themes on the whole tweets (handles blanked).
    let docs: Vec<Verbatim> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Verbatim {
            doc: i as i64 + 1,
            id: ids[i].clone(),
            text: t.clone(),
            respondent: None,
            ts: None,
            score: None,
            language: "en".into(),
            fields: Default::default(),
            source: String::new(),
            seq: 0,
        })
        .collect();
    let t = Instant::now();
    let run = discover(docs, xt, dim, &[], &Params::default(), Default::default());
    let secs = t.elapsed().as_secs_f64();
    let pred: Vec<String> = run
        .members
        .iter()
        .map(|m| m.theme.map(theme_id).unwrap_or_else(|| "other".into()))
        .collect();
    let other = pred.iter().filter(|p| *p == "other").count() as f64 / nv as f64;
    let nmi = score_pred(cache, "airline-verbatim", &ids, &pred, &input, threads);
    println!(
        "| today's verbatim themes (whole tweets) | - | {} | - | {:.1} % of tweets | - | {nmi} | {secs:.2} | - |",
        run.active().count(),
        100.0 * other
    );
    if with_peers {
        let Some(py) = python() else { return };
        let t = threads.to_string();
        let out = Command::new(py)
            .arg(repo().join("benches/peers/proto/tree.py"))
            .args([
                "--name",
                "airline",
                "--model",
                "minilm",
                "--variants",
                "bertopic",
                "--dir",
            ])
            .arg(cache)
            .env("OMP_NUM_THREADS", &t)
            .env("NUMBA_NUM_THREADS", &t)
            .env("OPENBLAS_NUM_THREADS", &t)
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                if let Some(b) = text
                    .lines()
                    .last()
                    .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                {
                    println!(
                        "| BERTopic on the same unit vectors | - | {} | - | {:.1} % of units | - | {} | {} | - |",
                        b["children"],
                        100.0 * b["other_units"].as_f64().unwrap_or(0.0),
                        b["nmi_child_mean"],
                        b["seconds"]
                    );
                }
            }
            Ok(o) => eprintln!("tree.py bertopic: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => eprintln!("tree.py bertopic: {e}"),
        }
    }
}

/// Time and peak memory of `tree::build` at the scale of 100k chit-chat + Amazon units.
fn tree_speed() {
    let (n, dim, centres) = (128_000usize, 384usize, 400usize);
    let mut rng = verbatim::themes::cluster::Rng::new(7);
    let dirs: Vec<f32> = (0..centres * dim)
        .map(|_| rng.next_f64() as f32 - 0.5)
        .collect();
    let mut x = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.below(centres);
        for d in 0..dim {
            x.push(dirs[c * dim + d] + 0.6 * (rng.next_f64() as f32 - 0.5));
        }
    }
    let groups: Vec<usize> = (0..n).map(|i| i / 30).collect();
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let base = status_mb("VmRSS:");
    let t = Instant::now();
    let tr = tree::build(&x, dim, Some(&groups), &tree::TreeParams::default()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!();
    println!(
        "tree-speed: {n} × {dim} synthetic units → {} parents, {} children, {:.1}% other in {secs:.1} s, peak memory {:.0} MB above the input",
        tr.parents,
        tr.children(),
        100.0 * tr.other_share(),
        status_mb("VmHWM:") - base
    );
    std::io::stdout().flush().unwrap();
}
