//! `verbatim ask`: evaluation harness and generator speed.
//!
//! 1. **Retrieval** nDCG@10 / recall@10 for text, vector and hybrid:
//!    * label queries over 20 Newsgroups (every 9th post, ~2,100): the query is the newsgroup's
//!      name in words ("rec.sport.hockey" → "sport hockey"), every post of that group is
//!      relevant (binary gains, ideal DCG over min(10, relevant));
//!    * (the French Debian FAQ, question → own section, is `benches/retrieval.rs`).
//! 2. **Answers** on the demo data (`data/uci_sentiment.csv` + `data/demo_feedback.csv`) with the
//!    local generator: citation validity (every cited number is a retrieved verbatim: must be
//!    100%), and what became of the model's sentences (supported / dropped, by the first failing
//!    check of the support check).
//! 3. **Speed**: prompt and decode tokens/s of the generator, against the memory-bandwidth bound
//!    (bytes of weights read per token ÷ measured copy bandwidth).
//!
//! ```sh
//! cargo bench --bench ask
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use verbatim::access::{authorize, Action, Caller};
use verbatim::ask::llm::{GenOptions, Generator};
use verbatim::ask::support::Verdict;
use verbatim::ask::{ask, AnswerMode, AskOptions};
use verbatim::embed::{set_threads, EmbedOptions, SentenceTransformer};
use verbatim::ingest::Mapping;
use verbatim::retrieve::{search, Mode, Query};
use verbatim::store::Filter;
use verbatim::workspace::ingest::{ingest_file, IngestOptions, NoProgress};
use verbatim::workspace::Workspace;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const QUESTIONS: &[&str] = &[
    "Why are customers unhappy with the phone?",
    "What do people say about the battery?",
    "What do reviewers think of the acting?",
    "Was the service at the restaurant slow?",
    "What do customers say about the food?",
    "Why are people disappointed with the headset?",
    "What do customers like about the product?",
    "What do people say about the staff?",
    "Why are customers unhappy with delivery?",
    "What problems do customers report with the sound quality?",
    "Do people recommend the movie?",
    "What do customers say about customer service?",
];

fn mapping(text: &str, id: &str) -> Mapping {
    Mapping {
        text: vec![text.into()],
        id: Some(id.into()),
        ..Mapping::default()
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    set_threads(Some(
        std::env::var("VERBATIM_BENCH_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(2),
    ))
    .unwrap();
    let model = SentenceTransformer::load(
        &repo().join("models/all-MiniLM-L6-v2"),
        &EmbedOptions::default(),
    )
    .expect("make models");
    let grant = authorize(&Caller::Owner, Action::Search).unwrap();

    // 1. 20NG label queries.
    let data = repo().join("../shared/data");
    if data.is_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let raw = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(data.join("20newsgroups.jsonl.gz"))
            .output()
            .expect("gzip")
            .stdout;
        let file = tmp.path().join("20ng.jsonl");
        let mut labels: Vec<(String, String)> = Vec::new();
        {
            let mut f = std::fs::File::create(&file).unwrap();
            for (i, line) in String::from_utf8_lossy(&raw).lines().enumerate() {
                if i % 9 != 0 || line.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let id = format!("ng{i}");
                labels.push((id.clone(), v["label"].as_str().unwrap_or("").to_string()));
                writeln!(f, "{}", serde_json::json!({"id": id, "text": v["text"]})).unwrap();
            }
        }
        let mut ws = Workspace::init(&tmp.path().join("ws")).unwrap();
        let opts = IngestOptions {
            mapping: Some(mapping("text", "id")),
            ..IngestOptions::default()
        };
        ingest_file(&mut ws, &model, &file, &opts, &NoProgress).unwrap();
        let (indexes, _) = ws.indexes().unwrap();
        let mut groups: Vec<String> = labels.iter().map(|l| l.1.clone()).collect();
        groups.sort();
        groups.dedup();
        println!(
            "\n20 Newsgroups label queries ({} posts, {} groups)",
            labels.len(),
            groups.len()
        );
        println!("| mode | nDCG@10 | precision@10 |");
        println!("|---|---|---|");
        for mode in [Mode::Text, Mode::Vector, Mode::Hybrid] {
            let (mut ndcg, mut prec) = (0.0, 0.0);
            for g in &groups {
                let words: Vec<&str> = g
                    .split(['.', '-'])
                    .filter(|w| {
                        !matches!(
                            *w,
                            "comp" | "rec" | "sci" | "soc" | "talk" | "misc" | "alt" | "os" | "sys"
                        )
                    })
                    .collect();
                let q = Query {
                    sentiment: None,
                    head: None,
                    text: words.join(" "),
                    mode,
                    filter: Filter::default(),
                    limit: 10,
                };
                let hits = search(&grant, ws.raw_store(), &indexes, Some(&model), &q).unwrap();
                let rel = |id: &str| labels.iter().any(|(i, l)| i == id && l == g);
                let n_rel = labels.iter().filter(|l| &l.1 == g).count().min(10);
                let dcg: f64 = hits
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| rel(&h.verbatim.id))
                    .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
                    .sum();
                let idcg: f64 = (0..n_rel).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
                ndcg += dcg / idcg.max(1e-9);
                prec += hits.iter().filter(|h| rel(&h.verbatim.id)).count() as f64 / 10.0;
            }
            let k = groups.len() as f64;
            println!("| {mode:?} | {:.3} | {:.3} |", ndcg / k, prec / k);
        }
    } else {
        eprintln!("ask bench: no ../shared/data; 20NG retrieval skipped");
    }

    // 2. Answers on the demo data.
    let gguf = repo().join("models/SmolLM2-135M-Instruct/model.gguf");
    let Ok(mut generator) = Generator::load(&gguf) else {
        eprintln!(
            "ask bench: no generator ({}); run make models",
            gguf.display()
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut ws = Workspace::init(&tmp.path().join("ws")).unwrap();
    let o = |m: Mapping| IngestOptions {
        mapping: Some(m),
        ..IngestOptions::default()
    };
    ingest_file(
        &mut ws,
        &model,
        &repo().join("data/uci_sentiment.csv"),
        &o(mapping("text", "id")),
        &NoProgress,
    )
    .unwrap();
    ingest_file(
        &mut ws,
        &model,
        &repo().join("data/demo_feedback.csv"),
        &o(mapping("comment", "response_id")),
        &NoProgress,
    )
    .unwrap();
    let (indexes, _) = ws.indexes().unwrap();
    let opts = AskOptions {
        min_cosine: 0.385,
        ..AskOptions::default()
    };
    let (mut valid, mut cites) = (0usize, 0usize);
    let (mut supported, mut dropped) = (0usize, std::collections::BTreeMap::new());
    let mut modes = std::collections::BTreeMap::new();
    let (mut prompt_tok, mut prompt_s, mut gen_tok, mut gen_s) = (0usize, 0.0, 0usize, 0.0);
    for q in QUESTIONS {
        let a = ask(
            ws.raw_store(),
            &indexes,
            &grant,
            &model,
            Some(&mut generator),
            q,
            &opts,
            &mut |_| Ok(()),
            &mut |_| {},
        )
        .unwrap();
        *modes.entry(format!("{:?}", a.mode)).or_insert(0) += 1;
        let n = a.sources.len();
        for s in &a.sentences {
            match &s.support.verdict {
                Verdict::Supported => supported += 1,
                Verdict::Dropped { check, .. } => {
                    *dropped.entry(format!("{check:?}")).or_insert(0) += 1
                }
            }
            if s.supported() {
                cites += s.citations.len();
                valid += s.citations.iter().filter(|&&c| c >= 1 && c <= n).count();
            }
        }
        if a.mode == AnswerMode::Generated || a.generation.is_some() {
            if let Some(g) = &a.generation {
                prompt_tok += g.prompt_tokens;
                prompt_s += g.prompt_s;
                gen_tok += g.generated_tokens;
                gen_s += g.decode_s;
            }
        }
    }
    let total = (supported + dropped.values().sum::<usize>()).max(1) as f64;
    println!(
        "\nAnswers: {} questions on the demo data, SmolLM2-135M-Instruct, greedy",
        QUESTIONS.len()
    );
    println!("| metric | value |");
    println!("|---|---|");
    println!("| answer modes | {modes:?} |");
    println!(
        "| citation validity (cited ⊆ retrieved) | {:.1}% ({valid}/{cites}) |",
        100.0 * valid as f64 / cites.max(1) as f64
    );
    println!(
        "| generated sentences that passed the support check | {:.1}% |",
        100.0 * supported as f64 / total
    );
    for (check, n) in &dropped {
        println!(
            "| … dropped by the {check} check | {:.1}% |",
            100.0 * *n as f64 / total
        );
    }
    println!("| share of shown sentences with citations | 100% (by construction) |");

    // 3. Speed, and the bandwidth bound.
    let buf = vec![1u8; 256 << 20];
    let mut dst = vec![0u8; 256 << 20];
    let t = Instant::now();
    for _ in 0..4 {
        dst.copy_from_slice(&buf);
        std::hint::black_box(&dst);
    }
    // A copy reads and writes each byte.
    let bw = (4.0 * 2.0 * buf.len() as f64) / t.elapsed().as_secs_f64();
    let (_, s) = generator
        .generate(
            "You are concise.",
            &"Summarise: the parcel was late and the courier was rude. ".repeat(20),
            &GenOptions {
                max_tokens: 64,
                repeat_penalty: 1.0,
                ..GenOptions::default()
            },
            &mut |_| {},
        )
        .unwrap();
    let weights = generator.weight_bytes() as f64;
    println!("\nGenerator speed (2 threads): weights in memory {:.0} MB (Q4_1 re-encoded as Q8_0), copy bandwidth {:.1} GB/s", weights / 1e6, bw / 1e9);
    println!("| phase | tokens | tok/s | bound tok/s | of bound |");
    println!("|---|---|---|---|---|");
    let bound = bw / weights;
    println!(
        "| prompt ({} tokens, one pass) | {} | {:.0} | – | – |",
        s.prompt_tokens,
        s.prompt_tokens,
        s.prompt_tokens as f64 / s.prompt_s
    );
    let dec = s.generated_tokens as f64 / s.decode_s;
    println!(
        "| decode | {} | {:.1} | {:.1} | {:.0}% |",
        s.generated_tokens,
        dec,
        bound,
        100.0 * dec / bound
    );
    if gen_tok > 0 {
        println!(
            "| over the {} answers | prompt {} / decode {} | prompt {:.0} / decode {:.1} | | |",
            QUESTIONS.len(),
            prompt_tok,
            gen_tok,
            prompt_tok as f64 / prompt_s,
            gen_tok as f64 / gen_s
        );
    }
}
