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
//! VERBATIM_BENCH_PARTS=units cargo bench --bench sentiment   # unit level (issue 14), below
//! VERBATIM_BENCH_PARTS=units VERBATIM_BENCH_AMAZON=1 cargo bench --bench sentiment
//! ```
//! Unit level: SemEval-2014 laptops aspect terms scored through their opinion unit, see
//! `units_bench`. `VERBATIM_SHARED_DATA` points at the data folder when the checkout has no
//! `../shared` (a git worktree).
//!
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

/// `peers.py`, beside the data folder (`../shared/tools/peers/peers.py`).
fn peers_py() -> PathBuf {
    std::env::var_os("VERBATIM_SHARED_DATA")
        .map(|d| PathBuf::from(d).join("../tools/peers/peers.py"))
        .unwrap_or_else(|| repo().join("../shared/tools/peers/peers.py"))
}

fn vader(input: &Path) -> Option<f64> {
    let py = std::env::var_os("PEERS_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let p = PathBuf::from(std::env::var_os("HOME")?).join(".cache/peers-venv/bin/python");
            p.is_file().then_some(p)
        })?;
    let out = Command::new(py)
        .arg(peers_py())
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
    // `../shared/data` beside the checkout; `VERBATIM_SHARED_DATA` for a checkout elsewhere
    // (a git worktree).
    let data = std::env::var_os("VERBATIM_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
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
    if std::env::var("VERBATIM_BENCH_PARTS").as_deref() == Ok("units") {
        units_bench(&data);
        return;
    }
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

/// Accuracy of `score > 0` against `y` over the indices in `mask` (all when `None`).
fn acc_of(scores: &[f32], y: &[bool], mask: Option<&[bool]>) -> f64 {
    let (mut ok, mut n) = (0usize, 0usize);
    for i in 0..y.len() {
        if mask.is_some_and(|m| !m[i]) {
            continue;
        }
        n += 1;
        ok += usize::from((scores[i] > 0.0) == y[i]);
    }
    ok as f64 / n.max(1) as f64
}

/// VADER accuracy on `(text, positive?)` pairs, through a temporary JSON Lines file.
fn vader_on(pairs: &[(&str, bool)]) -> Option<f64> {
    let tmp = tempfile::NamedTempFile::new().ok()?;
    {
        let mut f = std::fs::File::create(tmp.path()).ok()?;
        for (t, y) in pairs {
            let label = if *y { "positive" } else { "negative" };
            writeln!(f, "{}", serde_json::json!({"text": t, "label": label})).ok()?;
        }
    }
    vader(tmp.path())
}

/// Unit-level sentiment (issue 14): SemEval-2014 laptops aspect terms (positive / negative),
/// each scored through the opinion unit that holds it (`themes::units::split`). Sentences are
/// split by their line number in the file: even lines are `dev` (the blend weights and
/// negation factors were chosen there), odd lines `test` (never read while choosing). Variants:
/// head alone, rule alone, the blend (`sentiment::unit`); UCI leave-one-domain-out for the same
/// variants; with `VERBATIM_BENCH_AMAZON=1`, Amazon Fine Foods reviews scored from their units
/// (`sentiment::of_verbatim`).
fn units_bench(data: &Path) {
    use verbatim::sentiment::{of_verbatim, rule, unit, UnitSentiment};
    use verbatim::themes::units;
    let sem = rows(&data.join("semeval14_laptops.jsonl"));
    let (mut texts, mut y, mut dev, mut wholes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut multi = 0usize;
    for (line, r) in sem.iter().enumerate() {
        let text = r["text"].as_str().unwrap();
        let spans = units::split(text);
        for a in r["aspect_terms"].as_array().unwrap() {
            let pos = match a["polarity"].as_str() {
                Some("positive") => true,
                Some("negative") => false,
                _ => continue,
            };
            // SemEval offsets count characters; units are byte spans.
            let from = a["from"].as_u64().unwrap() as usize;
            let b = text.char_indices().nth(from).map_or(text.len(), |(i, _)| i);
            let unit_text = spans
                .iter()
                .rev()
                .find(|s| s.start <= b)
                .or(spans.first())
                .map_or(text, |s| s.slice(text));
            multi += usize::from(spans.len() > 1);
            texts.push(unit_text);
            wholes.push(text);
            y.push(pos);
            dev.push(line % 2 == 0);
        }
    }
    let test: Vec<bool> = dev.iter().map(|d| !d).collect();
    eprintln!(
        "SemEval laptops: {} aspect terms (positive/negative), {} dev, {} in a sentence of several units",
        y.len(),
        dev.iter().filter(|d| **d).count(),
        multi
    );
    let show = |x: Option<f64>| x.map_or("?".to_string(), |v| format!("{v:.4}"));
    let pick = |m: &[bool]| -> Vec<(&str, bool)> {
        (0..y.len())
            .filter(|&i| m[i])
            .map(|i| (texts[i], y[i]))
            .collect()
    };
    let all = vec![true; y.len()];
    println!("| model | variant | SemEval units, all | dev | test | UCI held-out domain | Amazon, from units |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let whole_pairs: Vec<(&str, bool)> = wholes.iter().zip(&y).map(|(t, l)| (*t, *l)).collect();
    println!(
        "| – | VADER on the whole sentence | {} | – | – | – | – |",
        show(vader_on(&whole_pairs))
    );
    println!(
        "| – | VADER on the unit | {} | {} | {} | – | – |",
        show(vader_on(&pick(&all))),
        show(vader_on(&pick(&dev))),
        show(vader_on(&pick(&test)))
    );
    let rule_scores: Vec<f32> = texts.iter().map(|t| rule::score(t).score).collect();
    let uci = rows(&data.join("uci_sentiment_sentences.jsonl"));
    let uci_texts: Vec<&str> = uci.iter().map(|r| r["text"].as_str().unwrap()).collect();
    let uci_y: Vec<bool> = uci.iter().map(|r| r["label"] == "positive").collect();
    let uci_rule: Vec<f32> = uci_texts.iter().map(|t| rule::score(t).score).collect();
    println!(
        "| – | lexicon + negation rule alone | {:.4} | {:.4} | {:.4} | {:.4} | – |",
        acc_of(&rule_scores, &y, None),
        acc_of(&rule_scores, &y, Some(&dev)),
        acc_of(&rule_scores, &y, Some(&test)),
        acc_of(&uci_rule, &uci_y, None)
    );
    let amazon = (std::env::var("VERBATIM_BENCH_AMAZON").as_deref() == Ok("1"))
        .then(|| rows(&data.join("amazon_fine_foods.jsonl")));
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
        let t0 = std::time::Instant::now();
        let x = model.embed(&texts, TextKind::Passage).unwrap();
        eprintln!("{name}: {} units embedded in {:.1?}", x.len(), t0.elapsed());
        let head_s: Vec<f32> = x.iter().map(|v| head.score(v)).collect();
        let blend_s: Vec<f32> = x
            .iter()
            .zip(&texts)
            .map(|(v, t)| unit(&head, t, v).score)
            .collect();
        // UCI leave-one-domain-out: the head trained on two domains, both variants on the third.
        let ux = model.embed(&uci_texts, TextKind::Passage).unwrap();
        let (mut uh, mut ub) = (vec![0f32; uci.len()], vec![0f32; uci.len()]);
        for d in ["amazon", "imdb", "yelp"] {
            let tr: Vec<usize> = (0..uci.len()).filter(|&i| uci[i]["domain"] != d).collect();
            let flat: Vec<f32> = tr.iter().flat_map(|&i| ux[i].iter().copied()).collect();
            let ytr: Vec<bool> = tr.iter().map(|&i| uci_y[i]).collect();
            let (w, b) = train_logistic(&flat, model.dim(), &ytr, head.c);
            let h = SentimentHead {
                weights: w,
                bias: b,
                ..head.clone()
            };
            for i in (0..uci.len()).filter(|&i| uci[i]["domain"] == d) {
                uh[i] = h.score(&ux[i]);
                ub[i] = unit(&h, uci_texts[i], &ux[i]).score;
            }
        }
        // Amazon: each review's units, the verbatim from its units.
        let (amz_head, amz_blend) = match &amazon {
            None => ("–".to_string(), "–".to_string()),
            Some(amz) => {
                let at: Vec<&str> = amz.iter().map(|r| r["text"].as_str().unwrap()).collect();
                let ay: Vec<bool> = amz.iter().map(|r| r["label"] == "great").collect();
                let spans: Vec<Vec<units::UnitSpan>> = at.iter().map(|t| units::split(t)).collect();
                let flat: Vec<&str> = spans
                    .iter()
                    .zip(&at)
                    .flat_map(|(s, t)| s.iter().map(move |u| u.slice(t)))
                    .collect();
                let mut vecs = Vec::with_capacity(flat.len());
                for chunk in flat.chunks(2048) {
                    vecs.extend(model.embed(chunk, TextKind::Passage).unwrap());
                }
                let (mut k, mut sh, mut sb) = (0usize, Vec::new(), Vec::new());
                for s in &spans {
                    let lens: Vec<usize> = s.iter().map(|u| u.end - u.start).collect();
                    let hu: Vec<UnitSentiment> = (k..k + s.len())
                        .map(|i| {
                            let score = head.score(&vecs[i]);
                            UnitSentiment {
                                polarity: head.polarity(score),
                                score,
                            }
                        })
                        .collect();
                    let bu: Vec<UnitSentiment> = (k..k + s.len())
                        .map(|i| unit(&head, flat[i], &vecs[i]))
                        .collect();
                    k += s.len();
                    sh.push(of_verbatim(&head, &hu, &lens).score);
                    sb.push(of_verbatim(&head, &bu, &lens).score);
                }
                (
                    format!("{:.4}", acc_of(&sh, &ay, None)),
                    format!("{:.4}", acc_of(&sb, &ay, None)),
                )
            }
        };
        for (variant, s, u, a) in [
            ("head alone", &head_s, &uh, &amz_head),
            (
                "**head + negation rule (`sentiment::unit`)**",
                &blend_s,
                &ub,
                &amz_blend,
            ),
        ] {
            println!(
                "| {name} | {variant} | {:.4} | {:.4} | {:.4} | {:.4} | {a} |",
                acc_of(s, &y, None),
                acc_of(s, &y, Some(&dev)),
                acc_of(s, &y, Some(&test)),
                acc_of(u, &uci_y, None)
            );
        }
        std::io::stdout().flush().unwrap();
    }
}
