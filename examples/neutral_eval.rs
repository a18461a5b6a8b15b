//! Three-class unit sentiment (positive / neutral / negative) on labelled data nobody here wrote
//! (issue 14: the head read factual product mentions as negative). Evaluation-only data are read
//! from `../shared/data` at run time; nothing is copied.
//!
//! * SemEval-2014 laptops: every aspect term with polarity positive / negative / neutral, scored
//!   through the opinion unit that holds it; `dev` = even lines (anything tuned is tuned there),
//!   `test` = odd lines.
//! * Airline tweets: the annotators' 3-class sentiment (confidence ≥ 0.7), the tweet's sentiment
//!   derived from its units as `themes` does; dev / test by row parity.
//! * UCI sentences (positive / negative, the head's training set): how much neutral costs there.
//! * Amazon Fine Foods (`VERBATIM_NEUTRAL_AMAZON=1`): the share of units per class, and the
//!   review-level accuracy against great / other where the review is not neutral.
//!
//! ```sh
//! cargo run --release --example neutral_eval -- ../shared/data [cache-dir]
//! ```
//! Embeddings are cached in `cache-dir` (default `target/neutral-eval`) as raw f32.

use std::path::{Path, PathBuf};

use verbatim::embed::{set_threads, EmbedOptions, Embedder, SentenceTransformer, TextKind};
use verbatim::sentiment::{of_verbatim, rule, unit, SentimentHead, UnitSentiment};
use verbatim::themes::{units, Polarity};

fn rows(path: &Path) -> Vec<serde_json::Value> {
    let text = if path.extension().is_some_and(|e| e == "gz") {
        panic!("gz not needed")
    } else {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Embeds `texts`, cached under `cache/name.f32` (keyed by the count and a digest of the texts).
fn embed_cached(
    model: &SentenceTransformer,
    cache: &Path,
    name: &str,
    texts: &[&str],
) -> Vec<Vec<f32>> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for t in texts {
        h.update(t.as_bytes());
        h.update([0u8]);
    }
    let digest = hex::encode(&h.finalize()[..8]);
    let path = cache.join(format!("{name}-{}-{digest}.f32", texts.len()));
    let dim = model.dim();
    if let Ok(bytes) = std::fs::read(&path) {
        if bytes.len() == texts.len() * dim * 4 {
            let flat: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            return flat.chunks(dim).map(<[f32]>::to_vec).collect();
        }
    }
    let t0 = std::time::Instant::now();
    let x = model.embed(texts, TextKind::Passage).unwrap();
    eprintln!("{name}: {} texts embedded in {:.1?}", x.len(), t0.elapsed());
    let bytes: Vec<u8> = x.iter().flatten().flat_map(|f| f.to_le_bytes()).collect();
    std::fs::create_dir_all(cache).unwrap();
    std::fs::write(&path, bytes).unwrap();
    x
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Y {
    Pos,
    Neu,
    Neg,
}

fn y_of(p: Polarity) -> Y {
    match p {
        Polarity::Positive => Y::Pos,
        Polarity::Neutral => Y::Neu,
        Polarity::Negative => Y::Neg,
    }
}

/// Accuracy and macro-F1 over three classes, plus recall of neutral.
fn scores(pred: &[Y], gold: &[Y]) -> (f64, f64, f64) {
    let classes = [Y::Pos, Y::Neu, Y::Neg];
    let acc =
        pred.iter().zip(gold).filter(|(p, g)| p == g).count() as f64 / gold.len().max(1) as f64;
    let mut f1s = Vec::new();
    let mut neu_recall = 0.0;
    for c in classes {
        let tp = pred
            .iter()
            .zip(gold)
            .filter(|(p, g)| **p == c && **g == c)
            .count() as f64;
        let pp = pred.iter().filter(|p| **p == c).count() as f64;
        let gp = gold.iter().filter(|g| **g == c).count() as f64;
        let (pr, rc) = (tp / pp.max(1.0), tp / gp.max(1.0));
        if c == Y::Neu {
            neu_recall = rc;
        }
        f1s.push(if pr + rc > 0.0 {
            2.0 * pr * rc / (pr + rc)
        } else {
            0.0
        });
    }
    (acc, f1s.iter().sum::<f64>() / 3.0, neu_recall)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = PathBuf::from(args.first().map_or("../shared/data", String::as_str));
    let cache = PathBuf::from(args.get(1).map_or("target/neutral-eval", String::as_str));
    set_threads(2);
    let dir = PathBuf::from(std::env::var("VERBATIM_MODELS").unwrap_or_else(|_| "models".into()))
        .join("all-MiniLM-L6-v2");
    let model = SentenceTransformer::load(&dir, &EmbedOptions::default()).expect("model");
    let (head, _) =
        SentimentHead::load(&SentimentHead::path_for(&dir), model.fingerprint()).expect("head");

    // SemEval laptops, unit of each aspect term.
    let sem = rows(&data.join("semeval14_laptops.jsonl"));
    let (mut st, mut sy, mut sdev) = (Vec::new(), Vec::new(), Vec::new());
    for (line, r) in sem.iter().enumerate() {
        let text = r["text"].as_str().unwrap();
        let spans = units::split(text);
        for a in r["aspect_terms"].as_array().unwrap() {
            let y = match a["polarity"].as_str() {
                Some("positive") => Y::Pos,
                Some("negative") => Y::Neg,
                Some("neutral") => Y::Neu,
                _ => continue,
            };
            let from = a["from"].as_u64().unwrap() as usize;
            let b = text.char_indices().nth(from).map_or(text.len(), |(i, _)| i);
            let u = spans
                .iter()
                .rev()
                .find(|s| s.start <= b)
                .or(spans.first())
                .map_or(text, |s| s.slice(text));
            st.push(u);
            sy.push(y);
            sdev.push(line % 2 == 0);
        }
    }
    let sx = embed_cached(&model, &cache, "semeval", &st);

    // Airline tweets: units of each confidently labelled tweet.
    let air = rows(&data.join("airline_tweets.jsonl"));
    let air: Vec<&serde_json::Value> = air
        .iter()
        .filter(|r| r["sentiment_confidence"].as_f64().unwrap_or(0.0) >= 0.7)
        .collect();
    let air_texts: Vec<&str> = air.iter().map(|r| r["text"].as_str().unwrap()).collect();
    let air_y: Vec<Y> = air
        .iter()
        .map(|r| match r["sentiment"].as_str() {
            Some("positive") => Y::Pos,
            Some("negative") => Y::Neg,
            _ => Y::Neu,
        })
        .collect();
    let air_spans: Vec<Vec<units::UnitSpan>> = air_texts.iter().map(|t| units::split(t)).collect();
    let air_units: Vec<&str> = air_spans
        .iter()
        .zip(&air_texts)
        .flat_map(|(s, t)| s.iter().map(move |u| u.slice(t)))
        .collect();
    let ax = embed_cached(&model, &cache, "airline", &air_units);

    let uci = rows(&data.join("uci_sentiment_sentences.jsonl"));
    let uci_texts: Vec<&str> = uci.iter().map(|r| r["text"].as_str().unwrap()).collect();
    let uci_y: Vec<Y> = uci
        .iter()
        .map(|r| {
            if r["label"] == "positive" {
                Y::Pos
            } else {
                Y::Neg
            }
        })
        .collect();
    let ux = embed_cached(&model, &cache, "uci", &uci_texts);

    let amazon = (std::env::var("VERBATIM_NEUTRAL_AMAZON").as_deref() == Ok("1")).then(|| {
        let amz = rows(&data.join("amazon_fine_foods.jsonl"));
        let texts: Vec<String> = amz
            .iter()
            .map(|r| r["text"].as_str().unwrap().to_string())
            .collect();
        let y: Vec<bool> = amz.iter().map(|r| r["label"] == "great").collect();
        (texts, y)
    });
    let amz = amazon.as_ref().map(|(texts, y)| {
        let spans: Vec<Vec<units::UnitSpan>> = texts.iter().map(|t| units::split(t)).collect();
        let flat: Vec<&str> = spans
            .iter()
            .zip(texts)
            .flat_map(|(s, t)| s.iter().map(move |u| u.slice(t)))
            .collect();
        let x = embed_cached(&model, &cache, "amazon", &flat);
        (spans, flat, x, y)
    });

    let row = |name: &str, score_unit: &dyn Fn(&str, &[f32]) -> UnitSentiment| {
        let sem_pred: Vec<Y> = st
            .iter()
            .zip(&sx)
            .map(|(t, v)| y_of(score_unit(t, v).polarity))
            .collect();
        let pick = |m: bool| -> (Vec<Y>, Vec<Y>) {
            let idx: Vec<usize> = (0..sy.len()).filter(|&i| sdev[i] == m).collect();
            (
                idx.iter().map(|&i| sem_pred[i]).collect(),
                idx.iter().map(|&i| sy[i]).collect(),
            )
        };
        let (pd, gd) = pick(true);
        let (pt, gt) = pick(false);
        let (ad, fd, _) = scores(&pd, &gd);
        let (at, ft, nt) = scores(&pt, &gt);
        // Airline: tweets from units.
        let mut k = 0usize;
        let mut air_pred = Vec::new();
        for (s, t) in air_spans.iter().zip(&air_texts) {
            let us: Vec<UnitSentiment> = s
                .iter()
                .enumerate()
                .map(|(j, u)| score_unit(u.slice(t), &ax[k + j]))
                .collect();
            let lens: Vec<usize> = s.iter().map(|u| u.end - u.start).collect();
            k += s.len();
            air_pred.push(y_of(of_verbatim(&head, &us, &lens).polarity));
        }
        let test_air: Vec<usize> = (0..air_y.len()).filter(|i| i % 2 == 1).collect();
        let (aa, af, _) = scores(
            &test_air.iter().map(|&i| air_pred[i]).collect::<Vec<_>>(),
            &test_air.iter().map(|&i| air_y[i]).collect::<Vec<_>>(),
        );
        let upred: Vec<Y> = uci_texts
            .iter()
            .zip(&ux)
            .map(|(t, v)| y_of(score_unit(t, v).polarity))
            .collect();
        let un = upred.iter().filter(|p| **p == Y::Neu).count();
        let ur = upred
            .iter()
            .zip(&uci_y)
            .filter(|(p, _)| **p != Y::Neu)
            .filter(|(p, g)| p == g)
            .count() as f64
            / (upred.len() - un).max(1) as f64;
        let (amz_mix, amz_acc) = match &amz {
            None => ("–".to_string(), "–".to_string()),
            Some((spans, flat, x, y)) => {
                let up: Vec<UnitSentiment> =
                    flat.iter().zip(x).map(|(t, v)| score_unit(t, v)).collect();
                let n = up.len() as f64;
                let c =
                    |p: Polarity| up.iter().filter(|u| u.polarity == p).count() as f64 / n * 100.0;
                let mix = format!(
                    "{:.0}% / {:.0}% / {:.0}%",
                    c(Polarity::Positive),
                    c(Polarity::Neutral),
                    c(Polarity::Negative)
                );
                let (mut k, mut right, mut total) = (0usize, 0usize, 0usize);
                for (s, yy) in spans.iter().zip(y.iter()) {
                    let us = &up[k..k + s.len()];
                    let lens: Vec<usize> = s.iter().map(|u| u.end - u.start).collect();
                    k += s.len();
                    let v = of_verbatim(&head, us, &lens);
                    if v.polarity != Polarity::Neutral {
                        total += 1;
                        right += usize::from((v.polarity == Polarity::Positive) == *yy);
                    }
                }
                (
                    mix,
                    format!("{:.3} ({total})", right as f64 / total.max(1) as f64),
                )
            }
        };
        println!(
        "| {name} | {ad:.3} / {at:.3} | {fd:.3} / {ft:.3} | {nt:.3} | {aa:.3} / {af:.3} | {:.1}% / {ur:.3} | {amz_mix} | {amz_acc} |",
        un as f64 / upred.len() as f64 * 100.0
    );
    };
    println!("| variant | SemEval 3-class acc dev / test | macro-F1 dev / test | neutral recall test | airline acc / macro-F1 (test) | UCI neutral share / acc on the rest | Amazon units pos / neu / neg | Amazon reviews acc (non-neutral) |");
    println!("|---|---|---|---:|---|---|---|---:|");
    let shipped = |t: &str, v: &[f32]| unit(&head, t, v).score;
    let mut variants: Vec<(String, Box<dyn Fn(&str, &[f32]) -> f32 + '_>)> =
        vec![("shipped".to_string(), Box::new(shipped))];
    for alpha in [0.7f32, 0.5, 0.35, 0.2] {
        let head = &head;
        variants.push((
            format!("no lexicon word: ×{alpha}"),
            Box::new(move |t: &str, v: &[f32]| {
                let s = unit(head, t, v).score;
                let r = rule::score(t);
                if r.score == 0.0 && !t.contains('!') {
                    s * alpha
                } else {
                    s
                }
            }),
        ));
    }
    for (name, f) in &variants {
        row(name, &|t, v| {
            let s = f(t, v);
            UnitSentiment {
                polarity: head.polarity(s),
                score: s,
            }
        });
    }
}
