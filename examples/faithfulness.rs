//! The support check measured on the labelled faithfulness set (`tests/fixtures/faithfulness/`):
//! precision of "supported" (of the sentences the check keeps, the share judged supported) and
//! recall (of the sentences judged supported, the share kept), per data set and in all, and the
//! same for a sweep of word-coverage thresholds.
//!
//! ```text
//! cargo run --release --example faithfulness            # needs ../shared/data for the
//! cargo run --release --example faithfulness -- DIR     # evaluation-only sets (or DIR)
//! cargo run --release --example faithfulness -- DIR -v  # and each disagreement
//! ```
//!
//! The evaluation-only sets (Amazon fine foods, airline tweets) hold ids and digests, not text:
//! the text is read from the data folder and redacted as at ingest. Polarity is read with
//! all-MiniLM-L6-v2's sentiment head, as in a default workspace.

use std::collections::HashMap;
use std::path::PathBuf;

use verbatim::ask::faithfulness::{self, Scores, Triple};
use verbatim::ask::support::{self, Polarities, Verdict};
use verbatim::embed::{catalog, EmbedOptions, Embedder, SentenceTransformer};
use verbatim::sentiment::SentimentHead;

fn texts_of(path: &PathBuf) -> anyhow::Result<HashMap<String, String>> {
    let body = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: {e} (the evaluation-only data)", path.display()))?;
    let mut out = HashMap::new();
    for l in body.lines() {
        let v: serde_json::Value = serde_json::from_str(l)?;
        if let (Some(id), Some(t)) = (v["id"].as_str(), v["text"].as_str()) {
            out.insert(id.to_string(), t.to_string());
        }
    }
    Ok(out)
}

/// The prompt each triple's sentence was written under (`prompt` in its line; the first set,
/// collected before the quotes prompt, has none: "groups"), in file order.
fn prompts_of(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    let body = std::fs::read_to_string(path)?;
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)?;
            Ok(v["prompt"].as_str().unwrap_or("groups").to_string())
        })
        .collect()
}

/// Claims over the evaluation-only sets hold no verbatim text: a run the model copied from a
/// retrieved verbatim is stored as `{{ID@START..END}}` (byte offsets into its redacted text),
/// put back here from the data.
fn expand(claim: &str, texts: &HashMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = claim;
    while let Some(open) = rest.find("{{") {
        let close = rest[open..]
            .find("}}")
            .ok_or_else(|| anyhow::anyhow!("unclosed {{{{ in {claim:?}"))?
            + open;
        let inner = &rest[open + 2..close];
        let (id, span) = inner
            .rsplit_once('@')
            .ok_or_else(|| anyhow::anyhow!("{inner:?}: not ID@START..END"))?;
        let (a, b) = span
            .split_once("..")
            .ok_or_else(|| anyhow::anyhow!("{inner:?}: not ID@START..END"))?;
        let raw = texts
            .get(id)
            .ok_or_else(|| anyhow::anyhow!("verbatim {id} not in the data set"))?;
        let text = verbatim::pii::redact(raw).as_str().to_string();
        let piece = text
            .get(a.parse::<usize>()?..b.parse::<usize>()?)
            .ok_or_else(|| anyhow::anyhow!("{inner:?}: outside verbatim {id}"))?;
        out.push_str(&rest[..open]);
        out.push_str(piece);
        rest = &rest[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn line(name: &str, s: &Scores) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} | {:.3} | {:.3} |",
        s.total(),
        s.true_positive + s.false_negative,
        s.true_positive,
        s.false_positive,
        s.false_negative,
        s.precision(),
        s.recall()
    )
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("../shared/data"));
    let fixtures = repo.join("tests/fixtures/faithfulness");
    let mut sets: Vec<(&str, Vec<Triple>)> = Vec::new();
    let mut prompts: Vec<Vec<String>> = Vec::new();
    for name in ["amazon_fine_foods", "airline_tweets"] {
        let texts = texts_of(&data.join(format!("{name}.jsonl")))?;
        let path = fixtures.join(format!("{name}.jsonl"));
        let mut triples = faithfulness::load(&path, Some(&texts))?;
        for t in &mut triples {
            t.claim = expand(&t.claim, &texts)?;
        }
        sets.push((name, triples));
        prompts.push(prompts_of(&path)?);
    }
    let demo = fixtures.join("demo.jsonl");
    sets.push(("demo", faithfulness::load(&demo, None)?));
    prompts.push(prompts_of(&demo)?);

    let dir = catalog::resolve("all-MiniLM-L6-v2")?;
    let model = SentenceTransformer::load(&dir, &EmbedOptions::default())?;
    let (head, _) = SentimentHead::load(&SentimentHead::path_for(&dir), model.fingerprint())?;
    let polarities = Polarities::with_head(&head, &model);

    println!("| set | triples | judged supported | kept & supported | kept, unsupported | dropped, supported | precision | recall |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut all = Scores::default();
    let mut reasons: HashMap<String, usize> = HashMap::new();
    for (name, triples) in &sets {
        let (s, checked) = faithfulness::evaluate(triples, &polarities)?;
        println!("{}", line(name, &s));
        all.true_positive += s.true_positive;
        all.false_positive += s.false_positive;
        all.false_negative += s.false_negative;
        all.true_negative += s.true_negative;
        for (t, c) in triples.iter().zip(&checked) {
            if let Verdict::Dropped { check, .. } = &c.support.verdict {
                *reasons.entry(format!("{check:?}")).or_default() += 1;
            }
            if verbose && c.supported() != t.supported {
                println!(
                    "\n{} judged {} ({}: {}), check says {}\n  {}",
                    name,
                    t.supported,
                    t.rule,
                    t.note,
                    serde_json::to_string(&c.support.verdict)?,
                    t.claim
                );
                for r in &c.support.checks {
                    println!("    {:?} {} — {}", r.check, r.passed, r.detail);
                }
            }
        }
    }
    println!("{}", line("all", &all));
    // The same, by the prompt the sentences were written under.
    for prompt in ["groups", "quotes"] {
        let mut s = Scores::default();
        for ((_, triples), ps) in sets.iter().zip(&prompts) {
            let picked: Vec<Triple> = triples
                .iter()
                .zip(ps)
                .filter(|(_, p)| *p == prompt)
                .map(|(t, _)| t.clone())
                .collect();
            let (x, _) = faithfulness::evaluate(&picked, &polarities)?;
            s.true_positive += x.true_positive;
            s.false_positive += x.false_positive;
            s.false_negative += x.false_negative;
            s.true_negative += x.true_negative;
        }
        println!("{}", line(&format!("all, {prompt} prompt"), &s));
    }
    let mut reasons: Vec<_> = reasons.into_iter().collect();
    reasons.sort();
    println!("\nDropped by (first failing check): {reasons:?}");
    // The threshold sweep: precision and recall over all sets at each word coverage.
    println!("\n| min word coverage | kept | precision | recall |\n|---|---|---|---|");
    for k in 0..=8 {
        let min = 0.5 + 0.0625 * k as f32;
        let mut s = Scores::default();
        for (_, triples) in &sets {
            for t in triples {
                let c = support::check_with(&t.claim, &t.context(), &polarities, min)?;
                s.add(c.supported(), t.supported);
            }
        }
        println!(
            "| {min:.3} | {} | {:.3} | {:.3} |",
            s.true_positive + s.false_positive,
            s.precision(),
            s.recall()
        );
    }
    Ok(())
}
