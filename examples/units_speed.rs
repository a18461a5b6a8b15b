//! Opinion units on real reviews (issue 14, requirement 1): how many units a verbatim gives, and
//! how fast they are embedded compared with the embedder's plain speed on whole verbatims.
//!
//! ```sh
//! cargo run --release --example units_speed -- [--data FILE.jsonl] [--limit N] [--threads T]
//! ```
//!
//! Default data: `../shared/data/amazon_fine_foods.jsonl` (5,000 reviews; evaluation-only, so it
//! is read at run time and never copied into the project — hence an example, not a test).
//! Each text is redacted first (units are spans of the redacted text, as the store holds it),
//! then split with [`verbatim::themes::units::split`]. The embedding pass is timed twice on the
//! same model and threads: the whole verbatims (what `ingest` embeds) and the units
//! `ensure_units` would embed (a verbatim that is one unit spanning its whole text reuses its own
//! vector, so it is left out, as in the theme run).

use std::path::PathBuf;
use std::time::Instant;

use verbatim::embed::{
    set_threads, Device, EmbedOptions, Embedder, Engine, SentenceTransformer, TextKind,
};
use verbatim::themes::units::split;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> anyhow::Result<()> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = arg("--data")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("../shared/data/amazon_fine_foods.jsonl"));
    let limit: usize = arg("--limit").map_or(Ok(5000), |s| s.parse())?;
    let threads: usize = arg("--threads").map_or(Ok(2), |s| s.parse())?;
    set_threads(Some(threads))?;
    let text =
        std::fs::read_to_string(&data).map_err(|e| anyhow::anyhow!("{}: {e}", data.display()))?;
    let texts: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(limit)
        .enumerate()
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", data.display(), i + 1))?;
            let t = v["text"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("{}:{}: no text", data.display(), i + 1))?;
            Ok(verbatim::pii::redact(t).as_str().to_string())
        })
        .collect::<anyhow::Result<_>>()?;

    let t = Instant::now();
    let units: Vec<Vec<verbatim::themes::units::UnitSpan>> =
        texts.iter().map(|t| split(t)).collect();
    let split_s = t.elapsed().as_secs_f64();
    let mut per: Vec<usize> = units.iter().map(Vec::len).collect();
    per.sort_unstable();
    let n_units: usize = per.iter().sum();
    let single = units
        .iter()
        .zip(&texts)
        .filter(|(u, t)| u.len() == 1 && u[0].slice(t) == t.trim())
        .count();
    let to_embed: Vec<&str> = units
        .iter()
        .zip(&texts)
        .filter(|(u, t)| !(u.len() == 1 && u[0].slice(t) == t.trim()))
        .flat_map(|(u, t)| u.iter().map(move |s| s.slice(t)))
        .collect();
    let q = |p: f64| per[((per.len() - 1) as f64 * p).round() as usize];
    println!("data: {} ({} verbatims)", data.display(), texts.len());
    println!(
        "units: {n_units} ({:.2} per verbatim; median {}, p90 {}, max {}); one-unit verbatims {single} ({:.1}%)",
        n_units as f64 / texts.len() as f64,
        q(0.5),
        q(0.9),
        per.last().copied().unwrap_or(0),
        100.0 * single as f64 / texts.len() as f64
    );
    let unit_words: usize = to_embed.iter().map(|u| u.split_whitespace().count()).sum();
    println!(
        "split: {:.1} µs per verbatim; units to embed {} (mean {:.1} words)",
        1e6 * split_s / texts.len() as f64,
        to_embed.len(),
        unit_words as f64 / to_embed.len().max(1) as f64
    );

    let model_dir = repo.join("models").join(verbatim::embed::DEFAULT_MODEL);
    let model = SentenceTransformer::load(
        &model_dir,
        &EmbedOptions {
            batch_size: 32,
            device: Device::Cpu,
            engine: Engine::Auto,
            ..EmbedOptions::default()
        },
    )?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let t = Instant::now();
    model.embed(&refs, TextKind::Passage)?;
    let whole_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    model.embed(&to_embed, TextKind::Passage)?;
    let units_s = t.elapsed().as_secs_f64();
    println!(
        "embed whole verbatims: {:.1} s ({:.1} verbatims/s) [{threads} threads, {}]",
        whole_s,
        texts.len() as f64 / whole_s,
        model.fingerprint()
    );
    println!(
        "embed units:           {:.1} s ({:.1} units/s, {:.1} verbatims/s); unit pass / whole pass = {:.2}",
        units_s,
        to_embed.len() as f64 / units_s,
        texts.len() as f64 / units_s,
        units_s / whole_s
    );
    Ok(())
}
