//! `verbatim ask`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use verbatim::access::Action;
use verbatim::ask::llm::Generator;
use verbatim::ask::{AnswerMode, Fallback};
use verbatim::embed;
use verbatim::service::{AskRequest, Settings};
use verbatim::workspace::Workspace;

use super::{model_dir, output, FilterArgs, Global};

#[derive(Args, Debug)]
pub(super) struct AskArgs {
    /// The question, in English or French.
    question: String,
    #[command(flatten)]
    filter: FilterArgs,
    /// Answer from the verbatims only (no generator model), grouped by theme.
    #[arg(long)]
    extractive: bool,
    /// Generator: a model name under models/ or a .gguf file (else verbatim.toml [ask] model).
    #[arg(long)]
    generator: Option<String>,
    /// Most tokens in the answer (1 to 32768).
    #[arg(long, value_parser = super::ranged(verbatim::limits::MAX_TOKENS))]
    max_tokens: Option<usize>,
    /// Sampling temperature, 0 to 2 (0: greedy, the default: the same question gives the same
    /// answer).
    #[arg(long, value_parser = temperature)]
    temperature: Option<f64>,
    /// Sampling seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Verbatims quoted and listed as sources, at most (1 to 100).
    #[arg(long, short = 'n', value_parser = super::ranged(verbatim::limits::ASK_LIMIT))]
    limit: Option<usize>,
}

impl AskArgs {
    /// The flags that are settings (`generator`, `max_tokens`, `temperature`, `seed`, `limit`).
    pub(super) fn overrides(&self, o: &mut verbatim::settings::Overrides) {
        o.generator = self.generator.clone();
        o.max_tokens = self.max_tokens;
        o.temperature = self.temperature;
        o.seed = self.seed;
        o.context_verbatims = self.limit;
    }
}

fn temperature(s: &str) -> std::result::Result<f64, String> {
    let v = super::finite(s)?;
    let r = verbatim::limits::TEMPERATURE;
    if r.contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be between {} and {}", r.start(), r.end()))
    }
}

/// The GGUF file `ask.generator` means ([`verbatim::settings::Settings::generator_file`]).
pub(super) fn generator_path(g: &Global) -> Result<PathBuf> {
    g.settings()
        .generator_file()
        .context("no models folder: pass --generator FILE.gguf")
}

pub(super) fn cmd_ask(g: &Global, root: &Path, a: AskArgs) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    // Flags, then the environment, then verbatim.toml [ask], then defaults (resolved by `run`);
    // the session reads them, the generator file and the model's thresholds.
    let cfg = &g.settings().ask;
    let settings = Settings::with_model(g.settings(), model_dir(g, Some(&ws)).ok().as_deref());
    let models = super::models(g);
    let mut session = super::session(&mut ws, "ask", &models, &settings)?;
    // Resolved before any model loads: a typo fails at once.
    let filter = session.resolve_filter(Action::Ask, &super::filter_from(&a.filter)?)?;
    session.load_embedder("ask")?;
    // Aggregates-only callers get counts: no model reads verbatims for them.
    let (mut generator, without_generator) =
        if a.extractive || !session.may_read_text(Action::Ask)? {
            (None, Fallback::Asked)
        } else {
            let path = generator_path(g)?;
            match Generator::load(&path) {
                Ok(gen) => (Some(gen), Fallback::NoGenerator),
                // Without a generator the answer is extractive, and says so.
                Err(verbatim::ask::llm::LlmError::Missing { path, .. })
                    if !matches!(cfg.generator.source, verbatim::settings::Source::Flag(_)) =>
                {
                    if !g.quiet {
                        eprintln!(
                            "note: no generator model at {} ({}): extractive answer",
                            path.display(),
                            embed::catalog::install_hint(&cfg.generator.value)
                        );
                    }
                    (None, Fallback::NoGenerator)
                }
                // A named file that is not there is a typo: the user's to fix.
                Err(e @ verbatim::ask::llm::LlmError::Missing { .. }) => return Err(e.into()),
                // There but unusable (truncated, corrupt, unsupported): answer anyway, saying why.
                Err(e) => {
                    if !g.quiet {
                        eprintln!("warning: the generator failed: {e}; extractive answer instead");
                    }
                    (None, Fallback::GeneratorFailed(e.to_string()))
                }
            }
        };
    let stream = !g.json;
    let mut out = std::io::stdout();
    let request = AskRequest {
        question: a.question.clone(),
        filter,
        // The flags are in the resolved settings the session reads.
        limit: None,
        max_tokens: None,
        temperature: None,
        seed: None,
        generator: generator.as_mut(),
        without_generator,
    };
    let answer = session.ask(request, &mut |s| {
        if stream {
            let _ = writeln!(out, "{s}");
            let _ = out.flush();
        }
    })?;
    if g.json {
        output::json(&answer);
        return Ok(0);
    }
    let shown: Vec<&verbatim::ask::Source> = answer
        .sources
        .iter()
        .filter(|s| answer.cited.contains(&s.n))
        .collect();
    if !shown.is_empty() {
        println!();
        for s in shown {
            let fields: Vec<String> = s.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "[{}] {}  {}  {}",
                s.n,
                s.id,
                s.date.as_deref().unwrap_or("-"),
                fields.join(" ")
            );
            println!("    {}", s.text.replace('\n', "\n    "));
        }
    }
    if !g.quiet {
        let dropped = answer.sentences.iter().filter(|s| !s.supported()).count();
        match answer.mode {
            AnswerMode::Generated => eprintln!(
                "generated locally by {} ({} tokens, {:.1} tok/s); {dropped} sentence(s) dropped by the support check (--json says why)",
                generator.as_ref().map(|g| g.architecture.as_str()).unwrap_or("?"),
                answer.generation.as_ref().map_or(0, |s| s.generated_tokens),
                answer.generation.as_ref().map_or(0.0, |s| s.generated_tokens as f64 / s.decode_s.max(1e-9)),
            ),
            AnswerMode::Extractive if dropped > 0 => eprintln!(
                "none of the model's {dropped} sentence(s) passed the support check; showing the verbatims instead"
            ),
            // A failure at load time was said above; one while generating is said here.
            AnswerMode::Extractive if generator.is_some() => {
                if let Some(Fallback::GeneratorFailed(e)) = &answer.fallback {
                    eprintln!("warning: the generator failed: {e}; extractive answer instead");
                }
            }
            _ => {}
        }
    }
    Ok(0)
}
