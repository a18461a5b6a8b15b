//! Labels a two-level theme tree built from real feedback and prints it, so the labels can be
//! read as a CX analyst reads them (`themes::label::label_tree`, issue 14 requirement 4).
//!
//! ```sh
//! cargo run --release --example label_tree -- airline ../shared/data/airline_tweets.jsonl
//! cargo run --release --example label_tree -- amazon ../shared/data/amazon_fine_foods.jsonl 1500
//! ```
//!
//! The tree is deliberately simple, so what is judged is the labelling: each text is split into
//! opinion units (`themes::units::split`), units are embedded with all-MiniLM-L6-v2 and scored by
//! its shipped sentiment head, k-means (`themes::cluster::kmeans`, k = 8) makes the parents and a
//! second k-means per parent (k = 4, fewer for small parents) the children. `airline` keeps the
//! negative tweets with `reason_confidence` ≥ 0.7 and a reason other than "Can't Tell" (as the
//! themes bench does); `amazon` reads the first N reviews (default 1500).
//!
//! Prints labels, unit counts and % negative units only — never a customer's text, since these
//! data sets are evaluation-only. Embeddings are cached under `target/label-tree/`.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use verbatim::embed::{catalog, EmbedOptions, Embedder, SentenceTransformer, TextKind};
use verbatim::sentiment::SentimentHead;
use verbatim::themes::cluster::kmeans;
use verbatim::themes::label::{label_tree, UnitText};
use verbatim::themes::Polarity;

const PARENTS: usize = 8;
const CHILDREN: usize = 4;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (set, path) = match args.as_slice() {
        [set, path, ..] => (set.as_str(), PathBuf::from(path)),
        _ => anyhow::bail!("usage: label_tree airline|amazon FILE.jsonl [LIMIT]"),
    };
    let limit: usize = match args.get(2) {
        Some(n) => n
            .parse()
            .with_context(|| format!("LIMIT: not a number: {n}"))?,
        None => 1500,
    };
    let file = std::fs::File::open(&path).with_context(|| format!("{}", path.display()))?;
    let mut texts: Vec<String> = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
        let v: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        let text = v["text"].as_str().unwrap_or_default().to_string();
        let keep = match set {
            "airline" => {
                v["sentiment"] == "negative"
                    && v["reason_confidence"].as_f64().unwrap_or(0.0) >= 0.7
                    && v["reason"].as_str().is_some_and(|r| r != "Can't Tell")
            }
            "amazon" => texts.len() < limit,
            other => anyhow::bail!("unknown set {other:?}: airline or amazon"),
        };
        if keep {
            texts.push(text);
        }
    }
    let units: Vec<String> = texts
        .iter()
        .flat_map(|t| {
            verbatim::themes::units::split(t)
                .into_iter()
                .map(|s| s.slice(t).to_string())
                .collect::<Vec<_>>()
        })
        .filter(|u| u.split_whitespace().count() >= 2)
        .collect();
    eprintln!("{set}: {} texts, {} units", texts.len(), units.len());

    let dir = catalog::resolve("all-MiniLM-L6-v2")?;
    let model = SentenceTransformer::load(&dir, &EmbedOptions::default())?;
    let dim = model.dim();
    let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/label-tree")
        .join(format!("{set}-{}.f32", units.len()));
    let flat: Vec<f32> = match std::fs::read(&cache) {
        Ok(b) if b.len() == units.len() * dim * 4 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        _ => {
            let started = std::time::Instant::now();
            let mut flat = Vec::with_capacity(units.len() * dim);
            for (i, chunk) in units.chunks(256).enumerate() {
                let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                for v in model.embed(&refs, TextKind::Passage)? {
                    flat.extend(v);
                }
                eprint!("\rembedded {}/{}", (i + 1) * 256, units.len());
            }
            eprintln!(" in {:.0?}", started.elapsed());
            std::fs::create_dir_all(cache.parent().expect("a folder"))?;
            let mut f = std::fs::File::create(&cache)?;
            for x in &flat {
                f.write_all(&x.to_le_bytes())?;
            }
            flat
        }
    };
    let (head, _) = SentimentHead::load(&SentimentHead::path_for(&dir), model.fingerprint())?;
    let polarity: Vec<Polarity> = flat
        .chunks_exact(dim)
        .map(|v| head.polarity(head.score(v)))
        .collect();

    // Parents, then children per parent.
    let top = kmeans(&flat, dim, PARENTS, 7, 50);
    let mut tree_idx: Vec<Vec<Vec<usize>>> = Vec::new();
    for p in 0..PARENTS {
        let members: Vec<usize> = (0..units.len()).filter(|&i| top.assign[i] == p).collect();
        if members.is_empty() {
            continue;
        }
        let k = CHILDREN.min(members.len() / 20).max(1);
        let sub: Vec<f32> = members
            .iter()
            .flat_map(|&i| flat[i * dim..(i + 1) * dim].iter().copied())
            .collect();
        let fit = kmeans(&sub, dim, k, 11, 50);
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); k];
        for (j, &i) in members.iter().enumerate() {
            children[fit.assign[j]].push(i);
        }
        children.retain(|c| !c.is_empty());
        children.sort_by_key(|c| std::cmp::Reverse(c.len()));
        tree_idx.push(children);
    }
    tree_idx.sort_by_key(|p| std::cmp::Reverse(p.iter().map(Vec::len).sum::<usize>()));
    let tree: Vec<Vec<Vec<UnitText>>> = tree_idx
        .iter()
        .map(|p| {
            p.iter()
                .map(|c| {
                    c.iter()
                        .map(|&i| UnitText {
                            text: &units[i],
                            language: "en",
                            polarity: polarity[i],
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let started = std::time::Instant::now();
    let labels = label_tree(&tree);
    let took = started.elapsed();
    let neg = |ix: &[usize]| {
        100.0
            * ix.iter()
                .filter(|&&i| polarity[i] == Polarity::Negative)
                .count() as f64
            / ix.len().max(1) as f64
    };
    for (p, children) in tree_idx.iter().enumerate() {
        let all: Vec<usize> = children.iter().flatten().copied().collect();
        println!(
            "{:<28} {:>5} units {:>3.0}% neg   [{}]",
            labels.parents[p].label,
            all.len(),
            neg(&all),
            labels.parents[p].keywords[1..].join(", ")
        );
        for (c, ix) in children.iter().enumerate() {
            println!(
                "  {:<26} {:>5} units {:>3.0}% neg   [{}]",
                labels.children[p][c].label,
                ix.len(),
                neg(ix),
                labels.children[p][c].keywords[1..].join(", ")
            );
        }
    }
    eprintln!("labelled {} units in {took:.1?}", units.len());
    Ok(())
}
