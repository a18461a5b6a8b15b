//! Person-name precision on real customer text (issue 12), judged by hand.
//!
//! ```sh
//! make eval-pii                      # or:
//! cargo run --release --example person_precision -- [--data DIR] [--todo | --sample | --heldout --seed N]
//! ```
//!
//! The texts are the Amazon Fine Foods reviews and the airline tweets of `../shared/data`: they
//! are evaluation-only, so the project keeps only the *judgments*
//! (`tests/fixtures/pii/person_judgments.jsonl`: file, record id, byte offsets, verdict,
//! category — never the text) and this program reads the text at run time. That is why it is an
//! example and not a test: the test suite must pass where `../shared` does not exist.
//!
//! **The sample** is a set of records: a seeded shuffle of the records where the detector of the
//! time (round 1) flagged at least one person span, taken in order until each file gave at least
//! [`PER_FILE`] spans; every person span flagged in those records was judged. Each later round
//! judged the spans the improved detector flags there that no earlier round had judged, so the
//! precision below is measured on *everything* the current detector flags in the sample.
//!
//! Round 3 is a held-out set judged after the tuning (`--heldout --seed N`: records no judgment
//! covers yet, drawn with the current detector, [`HELDOUT_PER_FILE`] spans per file at most).
//!
//! Prints: round 1 (the detector before issue 12: all round-1 judgments) and the current
//! detector's precision, each with a 95 % Wilson interval, per file, overall, on the round-1
//! records and on the held-out records, and the not-person categories that remain. `--todo`
//! lists (on stdout, for the judge's eyes only) the current spans with no judgment, the
//! not-person spans still flagged and the person spans no longer flagged, with their context;
//! `--sample` prints the round-1 sample itself in the same form. Exit status 1 when a current
//! span has no judgment.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use verbatim::pii::{detect, PiiKind};

/// The two evaluation files, by the name the judgments use.
const FILES: [&str; 2] = ["amazon_fine_foods", "airline_tweets"];
/// Spans judged per file at least (the issue asks for 100 per file and 300 in all).
const PER_FILE: usize = 160;
/// Spans per file in a held-out sample (`--heldout`, round 3).
const HELDOUT_PER_FILE: usize = 100;
/// The shuffle's seed: changing it draws another sample.
const SEED: u64 = 12;

#[derive(Deserialize)]
struct Record {
    id: String,
    text: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Judgment {
    file: String,
    id: String,
    start: usize,
    end: usize,
    /// `person` or `not_person`.
    verdict: String,
    /// What the span is: `first name`, `full name`, `brand`, `place`, `sentence-start word`, …
    category: String,
    /// 1: flagged by the detector before issue 12 (the tuning sample); 2: first flagged there by
    /// the improved detector; 3: a held-out sample judged after the tuning (`--heldout`).
    round: u32,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(dir: &std::path::Path, file: &str) -> Vec<Record> {
    let path = dir.join(format!("{file}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!(
            "person_precision: cannot read {}: {e} (pass --data DIR, the folder of the shared \
             evaluation data)",
            path.display()
        );
        std::process::exit(2)
    });
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                eprintln!("{}:{}: {e}", path.display(), i + 1);
                std::process::exit(2)
            })
        })
        .collect()
}

fn persons(text: &str) -> Vec<(usize, usize)> {
    detect(text)
        .into_iter()
        .filter(|s| s.kind == PiiKind::Person)
        .map(|s| (s.start, s.end))
        .collect()
}

/// xorshift64*: a shuffle that is the same on every machine.
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    let mut next = || {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for i in (1..v.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// 95 % Wilson score interval of `k` successes in `n`.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n, z) = (k as f64, n as f64, 1.96f64);
    let p = k / n;
    let centre = p + z * z / (2.0 * n);
    let margin = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    let denom = 1.0 + z * z / n;
    ((centre - margin) / denom, (centre + margin) / denom)
}

fn line(label: &str, k: usize, n: usize) {
    let (lo, hi) = wilson(k, n);
    let p = if n == 0 { 0.0 } else { k as f64 / n as f64 };
    println!("{label:<34} {k:>4} / {n:<4} precision {p:.3}   95% Wilson [{lo:.3}, {hi:.3}]");
}

/// The span in its context, on one line, for the judge.
fn show(file: &str, id: &str, text: &str, (s, e): (usize, usize)) -> String {
    let mut a = s.saturating_sub(70);
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = (e + 70).min(text.len());
    while !text.is_char_boundary(b) {
        b += 1;
    }
    let flat = |t: &str| t.replace(['\n', '\r'], "⏎");
    format!(
        "{file}\t{id}\t{s}\t{e}\t{}[[{}]]{}",
        flat(&text[a..s]),
        flat(&text[s..e]),
        flat(&text[e..b])
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut data = std::env::var_os("VERBATIM_EVAL_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
    let mut mode = "measure";
    let mut seed = SEED;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--data" => match it.next() {
                Some(d) => data = PathBuf::from(d),
                None => {
                    eprintln!("person_precision: --data needs a folder");
                    std::process::exit(2)
                }
            },
            "--todo" => mode = "todo",
            "--sample" => mode = "sample",
            "--heldout" => mode = "heldout",
            "--seed" => match it.next().and_then(|s| s.parse().ok()) {
                Some(s) => seed = s,
                None => {
                    eprintln!("person_precision: --seed needs a number");
                    std::process::exit(2)
                }
            },
            other => {
                eprintln!(
                    "person_precision: unknown argument {other:?} (--data DIR, --todo, --sample)"
                );
                std::process::exit(2)
            }
        }
    }
    let records: BTreeMap<&str, Vec<Record>> = FILES.iter().map(|f| (*f, load(&data, f))).collect();

    let path = repo().join("tests/fixtures/pii/person_judgments.jsonl");
    let judgments: Vec<Judgment> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                eprintln!("{}:{}: {e}", path.display(), i + 1);
                std::process::exit(2)
            })
        })
        .collect();

    // --sample: the round-1 sample; --heldout: a fresh one (another --seed) among the records no
    // judgment covers yet, drawn with the current detector.
    if mode == "sample" || mode == "heldout" {
        let judged: BTreeSet<(&str, &str)> = judgments
            .iter()
            .map(|j| (j.file.as_str(), j.id.as_str()))
            .collect();
        for file in FILES {
            let mut flagged: Vec<(&Record, Vec<(usize, usize)>)> = records[file]
                .iter()
                .filter(|r| mode == "sample" || !judged.contains(&(file, r.id.as_str())))
                .map(|r| (r, persons(&r.text)))
                .filter(|(_, p)| !p.is_empty())
                .collect();
            eprintln!("{file}: {} records with a person span", flagged.len());
            shuffle(&mut flagged, seed);
            let mut taken = 0;
            let per_file = if mode == "sample" {
                PER_FILE
            } else {
                HELDOUT_PER_FILE
            };
            for (r, spans) in flagged {
                if taken >= per_file {
                    break;
                }
                for &s in &spans {
                    println!("{}", show(file, &r.id, &r.text, s));
                }
                taken += spans.len();
            }
        }
        return;
    }

    let by_key: BTreeMap<(&str, &str, usize, usize), &Judgment> = judgments
        .iter()
        .map(|j| ((j.file.as_str(), j.id.as_str(), j.start, j.end), j))
        .collect();
    let sample: BTreeSet<(&str, &str)> = judgments
        .iter()
        .map(|j| (j.file.as_str(), j.id.as_str()))
        .collect();

    println!(
        "Person precision on hand-judged spans ({} judgments)",
        judgments.len()
    );
    let mut round1 = (0, 0);
    for file in FILES {
        let js: Vec<_> = judgments
            .iter()
            .filter(|j| j.file == file && j.round == 1)
            .collect();
        let k = js.iter().filter(|j| j.verdict == "person").count();
        line(&format!("before (round 1) {file}"), k, js.len());
        round1.0 += k;
        round1.1 += js.len();
    }
    line("before (round 1) all", round1.0, round1.1);

    // Records first judged in round 3: a held-out sample drawn after the tuning.
    let mut first_round: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for j in &judgments {
        let r = first_round
            .entry((j.file.as_str(), j.id.as_str()))
            .or_insert(j.round);
        *r = (*r).min(j.round);
    }
    let mut heldout = (0, 0);
    let mut sample1 = (0, 0);
    let mut total = (0, 0);
    let mut missing = 0;
    let mut left: BTreeMap<String, usize> = BTreeMap::new();
    for file in FILES {
        let mut k = 0;
        let mut n = 0;
        for r in &records[file] {
            if !sample.contains(&(file, r.id.as_str())) {
                continue;
            }
            for s in persons(&r.text) {
                match by_key.get(&(file, r.id.as_str(), s.0, s.1)) {
                    Some(j) => {
                        n += 1;
                        let fresh = first_round.get(&(file, r.id.as_str())) == Some(&3);
                        let first = first_round.get(&(file, r.id.as_str())) == Some(&1);
                        heldout.1 += usize::from(fresh);
                        sample1.1 += usize::from(first);
                        if j.verdict == "person" {
                            k += 1;
                            heldout.0 += usize::from(fresh);
                            sample1.0 += usize::from(first);
                        } else {
                            *left.entry(j.category.clone()).or_default() += 1;
                            if mode == "todo" {
                                println!("NOT_PERSON {}", show(file, &r.id, &r.text, s));
                            }
                        }
                    }
                    None => {
                        missing += 1;
                        if mode == "todo" {
                            println!("{}", show(file, &r.id, &r.text, s));
                        }
                    }
                }
            }
        }
        // Judged persons the detector no longer flags (with --todo: for the judge to review).
        let mut lost = 0;
        for j in judgments
            .iter()
            .filter(|j| j.file == file && j.verdict == "person")
        {
            let Some(r) = records[file].iter().find(|r| r.id == j.id) else {
                continue;
            };
            if !persons(&r.text).contains(&(j.start, j.end)) {
                let overlapped = persons(&r.text)
                    .iter()
                    .any(|&(s, e)| s < j.end && j.start < e);
                if !overlapped {
                    lost += 1;
                    if mode == "todo" {
                        println!("LOST {}", show(file, &r.id, &r.text, (j.start, j.end)));
                    }
                }
            }
        }
        line(&format!("now {file}"), k, n);
        if lost > 0 {
            println!("  ({lost} span(s) judged person are no longer flagged at all)");
        }
        total.0 += k;
        total.1 += n;
    }
    line("now all", total.0, total.1);
    line("now, round-1 sample records", sample1.0, sample1.1);
    if heldout.1 > 0 {
        line("now, held-out records (round 3)", heldout.0, heldout.1);
    }
    if !left.is_empty() {
        let list: Vec<String> = left.iter().map(|(c, n)| format!("{c} {n}")).collect();
        println!("not-person spans still flagged: {}", list.join(", "));
    }
    if missing > 0 {
        eprintln!(
            "person_precision: {missing} span(s) flagged now have no judgment (run with --todo and \
             judge them): the figures above leave them out"
        );
        std::process::exit(1);
    }
}
