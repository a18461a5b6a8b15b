//! The generator's speed on one prompt, for a side-by-side run against llama.cpp
//! (`benches/peers/llama_cpp_side_by_side.py`, issue 16 item 4): prompt tokens/s, decode
//! tokens/s and time to first token of `Generator::generate` — the path `verbatim ask` runs —
//! on a GGUF, a prompt and a number of generated tokens.
//!
//! ```sh
//! cargo run --release --example generate_speed -- --model models/SmolLM2-135M-Instruct/model.gguf \
//!     --prompt PROMPT.json [--tokens 200] [--threads 2] [--plain] [--reuse-system] \
//!     [--quantized-prefill]
//! ```
//!
//! `PROMPT.json` is `{"system": "…", "user": "…"}` (rendered with the model's chat template, as
//! `ask` renders it). The model is loaded once; then each line read on stdin runs one greedy
//! generation of exactly `--tokens` tokens (past the end-of-turn token: `ignore_stop`, as
//! llama.cpp's `ignore_eos`) and prints one JSON line on stdout, so a driver can interleave runs
//! with another engine's in one process run. `--plain` turns off the repetition penalty and the
//! no-repeat-n-gram rule (`ask`'s defaults keep them on). The cached system prompt is forgotten
//! before each run, so every prompt token is run and counted, unless `--reuse-system` (as `ask`
//! does from its second answer on; `cached_tokens` says how many were skipped).
//! `--quantized-prefill` runs the prompt on the quantised kernels instead of the dense pass.
//!
//! Times: `prompt_s` is the prompt's forward pass (one batch); `ttft_s` is from the call to the
//! first piece of text streamed (tokenisation, the prompt pass and the first sampling);
//! `decode_s` is everything after the prompt pass (each token sampled, detokenised and run).

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use verbatim::ask::llm::{GenOptions, Generator};
use verbatim::embed::set_threads;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[derive(serde::Deserialize)]
struct Prompt {
    system: String,
    user: String,
}

fn main() -> anyhow::Result<()> {
    let model = PathBuf::from(arg("--model").context("--model GGUF is required")?);
    let prompt_path = PathBuf::from(arg("--prompt").context("--prompt FILE.json is required")?);
    let tokens: usize = arg("--tokens").map_or(Ok(200), |s| s.parse())?;
    let threads: usize = arg("--threads").map_or(Ok(2), |s| s.parse())?;
    let plain = std::env::args().any(|a| a == "--plain");
    let reuse = std::env::args().any(|a| a == "--reuse-system");
    let quantized_prefill = std::env::args().any(|a| a == "--quantized-prefill");
    set_threads(Some(threads))?;
    let prompt: Prompt = serde_json::from_str(
        &std::fs::read_to_string(&prompt_path)
            .with_context(|| format!("reading {}", prompt_path.display()))?,
    )
    .with_context(|| format!("{}: not {{\"system\", \"user\"}}", prompt_path.display()))?;
    let t = Instant::now();
    let mut g = Generator::load(&model)?;
    eprintln!(
        "loaded {} ({}, {:.0} MB in memory) in {:.2} s; {threads} threads",
        model.display(),
        g.architecture,
        g.weight_bytes() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    g.set_dense_prefill(!quantized_prefill);
    let defaults = GenOptions::default();
    let opts = GenOptions {
        max_tokens: tokens,
        temperature: 0.0,
        ignore_stop: true,
        repeat_penalty: if plain { 1.0 } else { defaults.repeat_penalty },
        no_repeat_ngram: if plain { 0 } else { defaults.no_repeat_ngram },
        ..defaults
    };
    for line in std::io::stdin().lock().lines() {
        let _ = line?;
        if !reuse {
            g.forget();
        }
        let t0 = Instant::now();
        let mut first: Option<f64> = None;
        let (text, stats) = g.generate(&prompt.system, &prompt.user, &opts, &mut |_| {
            first.get_or_insert_with(|| t0.elapsed().as_secs_f64());
        })?;
        let out = serde_json::json!({
            "engine": "verbatim",
            "prompt_tokens": stats.prompt_tokens,
            "prompt_s": stats.prompt_s,
            "cached_tokens": stats.cached_tokens,
            "generated_tokens": stats.generated_tokens,
            "decode_s": stats.decode_s,
            "ttft_s": first.unwrap_or(f64::NAN),
            "total_s": t0.elapsed().as_secs_f64(),
            "text": text.chars().take(160).collect::<String>(),
        });
        println!("{out}");
    }
    Ok(())
}
