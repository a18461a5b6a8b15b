//! `verbatim ask`: answers grounded in the verbatims, with citations, and numbers from the data.
//!
//! 1. **Route**: a counting question ([`route::count_question`]) is answered by aggregation over
//!    the store — never by the model — and says how the number was computed.
//! 2. **Retrieve**: hybrid search with the user's filters (through the grant); the best hits,
//!    numbered `[1]…[n]`, fill the context up to a token budget. Redacted text only.
//! 3. **Abstain** when the evidence is weak: fewer than 2 hits, or the best cosine under the
//!    model's calibrated `answer_min_cosine`.
//! 4. **Generate** with the local GGUF model ([`llm`]), or, without one, answer **extractively**:
//!    the most relevant verbatims grouped by theme, with counts, labelled as such.
//! 5. **Check support** ([`support`]): each generated sentence is shown only when what it says
//!    stands in the verbatims it cites — content words, polarity, negations, numbers — and it
//!    does not repeat an earlier sentence; no sentence is kept on similarity alone. Dropped
//!    sentences are listed in `--json` with each check's result and the reason. Sentences stream
//!    out as they are checked.

pub mod cite;
pub mod faithfulness;
pub mod llm;
pub mod route;
pub mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use chrono::{Datelike, TimeZone, Utc};
use serde::Serialize;

use crate::access::Grant;
use crate::embed::{Embedder, TextKind};
use crate::index::Indexes;
use crate::retrieve::{self, Hit, Mode as SearchMode, Query};
use crate::store::{Filter, Store};
use llm::{GenOptions, GenStats, Generator};
use support::{Checked, Cited, Polarities};

/// Settings of one question.
#[derive(Clone, Debug)]
pub struct AskOptions {
    /// The user's filter.
    pub filter: Filter,
    /// Verbatims retrieved for the context at most.
    pub limit: usize,
    /// Token budget of the context.
    pub context_tokens: usize,
    /// Generation settings.
    pub gen: GenOptions,
    /// Abstain when the best hit's cosine is under this (per model, from its profile).
    pub min_cosine: f32,
    /// A verbatim counts as "mentioning" a topic at this cosine or above (per model).
    pub count_cosine: f32,
    /// Why no generator is passed, when none is: said in the extractive answer's first line.
    pub without_generator: Fallback,
    /// The workspace model's sentiment head, for the support check's polarity (else the
    /// lexicon rule alone).
    pub sentiment: Option<std::sync::Arc<crate::sentiment::SentimentHead>>,
}

/// Why an answer is extractive rather than generated (its first line says it; `--json` has it
/// as `fallback`). A model that is there but fails must not read as "no generator model".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum Fallback {
    /// No generator model is installed.
    #[default]
    NoGenerator,
    /// The caller asked for an extractive answer (`--extractive`).
    Asked,
    /// The generator is there but could not load, or failed while generating: why.
    GeneratorFailed(String),
    /// The model wrote this many sentences and the support check dropped every one.
    NothingCited(usize),
}

impl Fallback {
    /// The parenthesis of the answer's first line.
    fn says(&self) -> String {
        match self {
            Fallback::NoGenerator => "no generator model".into(),
            Fallback::Asked => "as asked, without the generator".into(),
            Fallback::GeneratorFailed(e) => format!("the generator failed: {e}"),
            Fallback::NothingCited(n) => {
                format!("none of the generator's {n} sentence(s) passed the support check")
            }
        }
    }
}

impl Default for AskOptions {
    fn default() -> Self {
        AskOptions {
            filter: Filter::default(),
            limit: 8,
            context_tokens: 1200,
            gen: GenOptions::default(),
            min_cosine: 0.30,
            count_cosine: 0.50,
            without_generator: Fallback::NoGenerator,
            sentiment: None,
        }
    }
}

/// What kind of answer this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnswerMode {
    /// Written by the local model, citations enforced.
    Generated,
    /// No model: the most relevant verbatims, grouped by theme.
    Extractive,
    /// A counting question, answered from the store.
    Count,
    /// Not enough evidence.
    Abstained,
}

/// A verbatim in the context.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Source {
    /// Its number in the context (`[n]`).
    pub n: usize,
    /// Verbatim id.
    pub id: String,
    /// Date, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Segments.
    pub fields: BTreeMap<String, String>,
    /// Redacted text.
    pub text: String,
    /// Fused retrieval score.
    pub score: f32,
    /// Cosine to the question, when the vector side found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cosine: Option<f32>,
    /// BM25, when the text side found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bm25: Option<f32>,
}

/// The number behind a counting question.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CountAnswer {
    /// Verbatims that match.
    pub count: usize,
    /// Verbatims in scope.
    pub total: usize,
    /// count / total.
    pub share: f64,
    /// What was counted.
    pub topic: String,
    /// How, in words.
    pub method: String,
    /// The count was under the caller's k (aggregates-only access): `count` and `share` are 0
    /// and the answer says "fewer than k".
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// Hits of the extractive answer that share a theme.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Group {
    /// Theme id, or "—" for verbatims in no theme / before any theme run.
    pub theme: String,
    /// Its label.
    pub label: String,
    /// Context numbers of its hits.
    pub sources: Vec<usize>,
    /// The theme's size in scope (all its verbatims, not only the hits).
    pub theme_size: Option<usize>,
}

/// Seconds per step.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
#[schema(as = AnswerTimings)]
pub struct Timings {
    /// Retrieval.
    pub retrieve_s: f64,
    /// Generation (prompt + decode).
    pub generate_s: f64,
}

/// An answer.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Answer {
    /// The question.
    pub question: String,
    /// Kind of answer.
    pub mode: AnswerMode,
    /// The answer as shown.
    pub answer: String,
    /// Generated sentences with their support checks (dropped ones included, with the reason).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub sentences: Vec<Checked>,
    /// Numbers of the sources cited by kept sentences (or shown, for extractive/count answers).
    pub cited: Vec<usize>,
    /// Every verbatim of the context, with retrieval scores.
    pub sources: Vec<Source>,
    /// For a counting question.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<CountAnswer>,
    /// For an extractive answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    /// Generation counts and speed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub generation: Option<GenStats>,
    /// Why the answer is extractive (extractive answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// Timings.
    pub timings: Timings,
}

/// Errors of `ask`.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Retrieval.
    #[error(transparent)]
    Retrieve(#[from] retrieve::RetrieveError),
    /// Store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Model.
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    /// Generator.
    #[error(transparent)]
    Llm(#[from] llm::LlmError),
    /// The caller's hook refused to go on (e.g. the audit entry could not be written).
    #[error("{0}")]
    Hook(String),
}

/// Called with the verbatims an answer rests on, before any of it is shown: the audit trail
/// records them first.
pub type BeforeAnswer<'a> = &'a mut dyn FnMut(&[Source]) -> Result<(), String>;

const SYSTEM: &str = "You answer questions about customer feedback, using only the numbered \
verbatims you are given. After every sentence, write in square brackets the numbers of the \
verbatims it is based on. Example: \"Several customers say their parcel arrived late [1][3]. One \
found the courier rude [2].\" Never write a number that is not in the verbatims. Answer in 2 to \
4 sentences, in the language of the question.";

use crate::themes::analytics::date_of;

fn source(n: usize, h: &Hit) -> Source {
    Source {
        n,
        id: h.verbatim.id.clone(),
        date: date_of(h.verbatim.ts),
        fields: h.verbatim.fields.clone(),
        text: h.verbatim.text.clone(),
        score: h.score,
        cosine: h.cosine,
        bm25: h.bm25,
    }
}

/// Answers `question`. `before` sees the verbatims the answer rests on before anything is
/// shown (the audit trail); `on_sentence` receives the answer as it is produced (checked
/// sentences for a generated answer; whole lines otherwise).
#[allow(clippy::too_many_arguments)]
pub fn ask(
    store: &Store,
    indexes: &Indexes,
    grant: &Grant,
    embedder: &dyn Embedder,
    generator: Option<&mut Generator>,
    question: &str,
    opts: &AskOptions,
    before: BeforeAnswer<'_>,
    on_sentence: &mut dyn FnMut(&str),
) -> Result<Answer, AskError> {
    let t0 = Instant::now();
    if !grant.may_read_text() {
        return aggregates_only(
            store,
            grant,
            embedder,
            question,
            opts,
            before,
            on_sentence,
            t0,
        );
    }
    if let Some(cq) = route::count_question(question) {
        return count(
            store,
            grant,
            embedder,
            question,
            &cq,
            opts,
            before,
            on_sentence,
            t0,
        );
    }
    let hits = retrieve::search(
        grant,
        store,
        indexes,
        Some(embedder),
        &Query {
            sentiment: None,
            head: None,
            text: question.to_string(),
            mode: SearchMode::Hybrid,
            filter: opts.filter.clone(),
            limit: opts.limit.max(1),
        },
    )?;
    // The best cosine among the hits (the vector side scores every one it found).
    let best = hits
        .iter()
        .filter_map(|h| h.cosine)
        .fold(f32::MIN, f32::max);
    let mut timings = Timings {
        retrieve_s: t0.elapsed().as_secs_f64(),
        ..Timings::default()
    };
    // The context: hits in rank order within the token budget.
    let count_tokens = |s: &str, g: &Option<&mut Generator>| match g {
        Some(g) => g.count_tokens(s),
        None => s.len() / 4 + 1,
    };
    let mut sources = Vec::new();
    let mut used = 0;
    for h in &hits {
        let line = format!("[{}] {}", sources.len() + 1, h.verbatim.text);
        let t = count_tokens(&line, &generator);
        if used + t > opts.context_tokens && !sources.is_empty() {
            break;
        }
        used += t;
        sources.push(source(sources.len() + 1, h));
    }
    if sources.len() < 2 || best < opts.min_cosine {
        let answer = if sources.len() < 2 {
            format!(
                "Not enough evidence to answer: {} verbatim(s) found in scope. Try other words, or widen the filter.",
                sources.len()
            )
        } else {
            format!(
                "Not enough evidence to answer: the closest verbatim has cosine {:.3} to the question, under this model's threshold of {:.3} (calibrated: BENCHMARKS.md). Try other words, or widen the filter.",
                best, opts.min_cosine
            )
        };
        before(&sources).map_err(AskError::Hook)?;
        on_sentence(&answer);
        return Ok(Answer {
            question: question.to_string(),
            mode: AnswerMode::Abstained,
            answer,
            sentences: Vec::new(),
            cited: Vec::new(),
            sources,
            count: None,
            groups: Vec::new(),
            generation: None,
            fallback: None,
            timings,
        });
    }
    before(&sources).map_err(AskError::Hook)?;
    let Some(generator) = generator else {
        return extractive(
            store,
            question,
            sources,
            on_sentence,
            timings,
            &opts.without_generator,
        );
    };
    let mut user = String::from("Verbatims:\n");
    for s in &sources {
        let meta: Vec<String> = s
            .date
            .iter()
            .cloned()
            .chain(s.fields.iter().map(|(k, v)| format!("{k}={v}")))
            .collect();
        let meta = if meta.is_empty() {
            String::new()
        } else {
            format!(" ({})", meta.join(", "))
        };
        user.push_str(&format!("[{}]{meta} {}\n", s.n, s.text.replace('\n', " ")));
    }
    user.push_str(&format!(
        "\nQuestion: {question}\nAnswer, citing verbatims:"
    ));
    let t1 = Instant::now();
    // The support check reads the verbatims a sentence cites (owned: the sources move into an
    // extractive fallback below), their dates as a source of numbers.
    let owned: Vec<(usize, String, String)> = sources
        .iter()
        .map(|s| (s.n, s.text.clone(), s.date.clone().unwrap_or_default()))
        .collect();
    let context: Vec<Cited> = owned
        .iter()
        .map(|(n, text, meta)| Cited { n: *n, text, meta })
        .collect();
    let polarities = match &opts.sentiment {
        Some(head) => Polarities::with_head(head, embedder),
        None => Polarities::rule_only(),
    };
    // Stream checked sentences: a sentence is complete once the next one starts.
    let mut checked: Vec<Checked> = Vec::new();
    let mut seen = support::Seen::default();
    let mut failed: Option<crate::embed::EmbedError> = None;
    let mut pending = String::new();
    let mut emit = |s: &str, checked: &mut Vec<Checked>, on: &mut dyn FnMut(&str)| {
        if failed.is_some() {
            return;
        }
        match support::check(s, &context, &polarities) {
            Ok(mut c) => {
                seen.check(&mut c);
                if c.supported() {
                    on(&c.text);
                }
                checked.push(c);
            }
            Err(e) => failed = Some(e),
        }
    };
    let generated = generator.generate(SYSTEM, &user, &opts.gen, &mut |piece| {
        pending.push_str(piece);
        let mut parts = cite::sentences(&pending);
        if parts.len() > 1 {
            let last = parts.pop().unwrap_or_default();
            for p in parts {
                emit(&p, &mut checked, on_sentence);
            }
            pending = last;
        }
    });
    let stats = match generated {
        Ok((_, stats)) => stats,
        Err(e) => {
            // The model is there but failed: the verbatims themselves, saying why.
            timings.generate_s = t1.elapsed().as_secs_f64();
            let why = Fallback::GeneratorFailed(e.to_string());
            let mut a = extractive(store, question, sources, on_sentence, timings, &why)?;
            a.sentences = checked;
            return Ok(a);
        }
    };
    for p in cite::sentences(&pending) {
        emit(&p, &mut checked, on_sentence);
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    timings.generate_s = t1.elapsed().as_secs_f64();
    let kept: Vec<&Checked> = checked.iter().filter(|c| c.supported()).collect();
    if kept.is_empty() {
        // Nothing the model wrote survived the checks: fall back to the verbatims themselves.
        let why = Fallback::NothingCited(checked.len());
        let mut a = extractive(store, question, sources, on_sentence, timings, &why)?;
        a.sentences = checked;
        a.generation = Some(stats);
        return Ok(a);
    }
    let mut cited: Vec<usize> = Vec::new();
    for c in &kept {
        for &x in &c.citations {
            if !cited.contains(&x) {
                cited.push(x);
            }
        }
    }
    Ok(Answer {
        question: question.to_string(),
        mode: AnswerMode::Generated,
        answer: kept
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        sentences: checked,
        cited,
        sources,
        count: None,
        groups: Vec::new(),
        generation: Some(stats),
        fallback: None,
        timings,
    })
}

fn extractive(
    store: &Store,
    question: &str,
    sources: Vec<Source>,
    on_line: &mut dyn FnMut(&str),
    timings: Timings,
    why: &Fallback,
) -> Result<Answer, AskError> {
    // Themes of the last run, when there is one.
    let members: HashMap<i64, Option<i64>> = store
        .theme_members()?
        .into_iter()
        .map(|m| (m.doc, m.theme))
        .collect();
    let themes: HashMap<i64, (String, i64)> = store
        .themes()?
        .into_iter()
        .map(|t| {
            let label = t.user_label.clone().unwrap_or(t.label.clone());
            (t.id, (label, t.size))
        })
        .collect();
    let mut by_theme: BTreeMap<Option<i64>, Vec<usize>> = BTreeMap::new();
    for s in &sources {
        let doc = store.get(&s.id)?.map(|v| v.doc);
        let theme = doc.and_then(|d| members.get(&d).copied().flatten());
        by_theme.entry(theme).or_default().push(s.n);
    }
    let mut groups: Vec<Group> = by_theme
        .into_iter()
        .map(
            |(t, ns)| match t.and_then(|t| themes.get(&t).map(|x| (t, x))) {
                Some((id, (label, size))) => Group {
                    theme: format!("T{id}"),
                    label: label.clone(),
                    sources: ns,
                    theme_size: Some(*size as usize),
                },
                None => Group {
                    theme: "—".into(),
                    label: "no theme".into(),
                    sources: ns,
                    theme_size: None,
                },
            },
        )
        .collect();
    groups.sort_by(|a, b| {
        b.sources
            .len()
            .cmp(&a.sources.len())
            .then(a.theme.cmp(&b.theme))
    });
    let mut lines = vec![format!(
        "Extractive answer ({}): the {} verbatims most relevant to the question, by theme.",
        why.says(),
        sources.len()
    )];
    for g in &groups {
        let size = g
            .theme_size
            .map(|s| format!("; the theme has {s} verbatims in all"))
            .unwrap_or_default();
        lines.push(format!(
            "{} {} — {} of the {} most relevant{size}: {}",
            g.theme,
            g.label,
            g.sources.len(),
            sources.len(),
            g.sources
                .iter()
                .map(|n| format!("[{n}]"))
                .collect::<String>()
        ));
    }
    for l in &lines {
        on_line(l);
    }
    let cited = sources.iter().map(|s| s.n).collect();
    Ok(Answer {
        question: question.to_string(),
        mode: AnswerMode::Extractive,
        answer: lines.join("\n"),
        sentences: Vec::new(),
        cited,
        sources,
        count: None,
        groups,
        generation: None,
        fallback: Some(why.clone()),
        timings,
    })
}

/// Month filter: the most recent occurrence of `month` among the dated verbatims in scope.
fn month_filter(store: &Store, scope: &Filter, month: u32) -> Result<Option<(i64, i64)>, AskError> {
    let mut best: Option<(i32, u32)> = None;
    store.for_each(|v, _, _| {
        if scope.matches(&v) {
            if let Some(d) = v.ts.and_then(|t| Utc.timestamp_opt(t, 0).single()) {
                if d.month() == month && best.is_none_or(|b| d.year() > b.0) {
                    best = Some((d.year(), month));
                }
            }
        }
        Ok(())
    })?;
    Ok(best.map(|(y, m)| {
        let start = Utc
            .with_ymd_and_hms(y, m, 1, 0, 0, 0)
            .single()
            .map(|d| d.timestamp());
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let end = Utc
            .with_ymd_and_hms(ny, nm, 1, 0, 0, 0)
            .single()
            .map(|d| d.timestamp());
        (start.unwrap_or(0), end.unwrap_or(i64::MAX))
    }))
}

#[allow(clippy::too_many_arguments)]
fn count(
    store: &Store,
    grant: &Grant,
    embedder: &dyn Embedder,
    question: &str,
    cq: &route::CountQuestion,
    opts: &AskOptions,
    before: BeforeAnswer<'_>,
    on_line: &mut dyn FnMut(&str),
    t0: Instant,
) -> Result<Answer, AskError> {
    let mut scope = grant.restrict(&opts.filter);
    let mut period = String::new();
    if let Some(m) = cq.month {
        match month_filter(store, &scope, m)? {
            Some((since, until)) => {
                scope.since = Some(scope.since.map_or(since, |s| s.max(since)));
                scope.until = Some(scope.until.map_or(until, |u| u.min(until)));
                period = format!(
                    " in {}",
                    Utc.timestamp_opt(since, 0)
                        .single()
                        .map(|d| d.format("%B %Y").to_string())
                        .unwrap_or_default()
                );
            }
            None => {
                scope.since = Some(0);
                scope.until = Some(0);
                period = " in that month (no verbatim is dated then)".into();
            }
        }
    }
    // Matches: every stemmed topic word present (English and French analyses), or the meaning
    // within count_cosine of the topic.
    let topic = cq.topic.trim();
    let (en, fr) = crate::index::TextIndex::query_terms(topic);
    let qv = if topic.is_empty() {
        None
    } else {
        Some(embedder.embed(&[topic], TextKind::Query)?.remove(0))
    };
    let mut total = 0usize;
    let mut matched: Vec<(f32, String, String)> = Vec::new();
    let mut by_words = 0usize;
    let mut by_meaning = 0usize;
    store.for_each(|v, _, vec| {
        if !scope.matches(&v) {
            return Ok(());
        }
        total += 1;
        let Some(qv) = &qv else {
            matched.push((1.0, v.id.clone(), v.text.clone()));
            return Ok(());
        };
        let words: HashSet<String> = [crate::lang::Lang::En, crate::lang::Lang::Fr]
            .into_iter()
            .flat_map(|l| {
                crate::index::text::tokens(l, &v.text)
                    .into_iter()
                    .map(|t| t.0)
            })
            .collect();
        let w = (!en.is_empty() && en.iter().all(|t| words.contains(t)))
            || (!fr.is_empty() && fr.iter().all(|t| words.contains(t)));
        let cos = crate::vecmath::dot(qv, &vec);
        let m = cos >= opts.count_cosine;
        if w {
            by_words += 1;
        }
        if m && !w {
            by_meaning += 1;
        }
        if w || m {
            matched.push((cos, v.id.clone(), v.text.clone()));
        }
        Ok(())
    })?;
    let n = matched.len();
    let share = if total > 0 {
        n as f64 / total as f64
    } else {
        0.0
    };
    let method = if topic.is_empty() {
        format!("every verbatim in scope{period}")
    } else {
        format!(
            "verbatims{period} whose words include every word of \"{topic}\" (stemmed, English and French: {by_words}) or whose meaning is within cosine {:.2} of it ({by_meaning} more)",
            opts.count_cosine
        )
    };
    let answer = if cq.share {
        format!(
            "{:.1}% ({n} of {total} verbatims) — counted as {method}.",
            100.0 * share
        )
    } else {
        format!(
            "{n} of {total} verbatims ({:.1}%) — counted as {method}.",
            100.0 * share
        )
    };
    // Examples: the closest matches.
    matched.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let sources: Vec<Source> = matched
        .iter()
        .take(opts.limit.min(5))
        .enumerate()
        .filter_map(|(i, (cos, id, _))| {
            let v = store.get(id).ok().flatten()?;
            Some(Source {
                n: i + 1,
                id: v.id.clone(),
                date: date_of(v.ts),
                fields: v.fields.clone(),
                text: v.text.clone(),
                score: *cos,
                cosine: Some(*cos),
                bm25: None,
            })
        })
        .collect();
    before(&sources).map_err(AskError::Hook)?;
    on_line(&answer);
    Ok(Answer {
        question: question.to_string(),
        mode: AnswerMode::Count,
        answer,
        sentences: Vec::new(),
        cited: sources.iter().map(|s| s.n).collect(),
        sources,
        count: Some(CountAnswer {
            count: n,
            total,
            share: (share * 1e4).round() / 1e4,
            topic: topic.to_string(),
            method,
            suppressed: false,
        }),
        groups: Vec::new(),
        generation: None,
        fallback: None,
        timings: Timings {
            retrieve_s: t0.elapsed().as_secs_f64(),
            generate_s: 0.0,
        },
    })
}

/// `ask` for an aggregates-only grant (marketing): counting questions get their count (under
/// the grant's k: "fewer than k"), with no example verbatims; other questions are declined
/// with the way to ask. No verbatim text reaches the answer, and no model sees any.
#[allow(clippy::too_many_arguments)]
fn aggregates_only(
    store: &Store,
    grant: &Grant,
    embedder: &dyn Embedder,
    question: &str,
    opts: &AskOptions,
    before: BeforeAnswer<'_>,
    on_line: &mut dyn FnMut(&str),
    t0: Instant,
) -> Result<Answer, AskError> {
    let Some(cq) = route::count_question(question) else {
        let answer = "Your role sees aggregates only (counts, shares, trends, theme labels), not verbatims: ask a counting question (\"How many customers mention delivery?\"), or see `verbatim themes` and `verbatim report`.".to_string();
        before(&[]).map_err(AskError::Hook)?;
        on_line(&answer);
        return Ok(Answer {
            question: question.to_string(),
            mode: AnswerMode::Abstained,
            answer,
            sentences: Vec::new(),
            cited: Vec::new(),
            sources: Vec::new(),
            count: None,
            groups: Vec::new(),
            generation: None,
            fallback: None,
            timings: Timings {
                retrieve_s: t0.elapsed().as_secs_f64(),
                generate_s: 0.0,
            },
        });
    };
    let mut a = count(
        store,
        grant,
        embedder,
        question,
        &cq,
        opts,
        &mut |_| Ok(()),
        &mut |_| {},
        t0,
    )?;
    a.sources.clear();
    a.cited.clear();
    if let Some(c) = a.count.as_mut() {
        // The method's own sub-counts (by words, by meaning) could be under k: not shown.
        c.method = format!(
            "verbatims in scope whose words include every word of \"{}\" (stemmed) or whose meaning is close to it",
            c.topic
        );
        if grant.cell(c.count).is_none() {
            a.answer = format!(
                "Fewer than {} verbatims — the exact count is suppressed for aggregates-only access ({}).",
                grant.min_cell(),
                c.method
            );
            c.count = 0;
            c.share = 0.0;
            c.suppressed = true;
        } else {
            a.answer = format!(
                "{} of {} verbatims ({:.1}%) — counted as {}.",
                c.count,
                c.total,
                100.0 * c.share,
                c.method
            );
        }
    }
    before(&[]).map_err(AskError::Hook)?;
    on_line(&a.answer);
    Ok(a)
}

/// One grounded sentence about a theme.
#[derive(Clone, Debug, Serialize)]
pub struct ThemeSentence {
    /// The sentence, ending with citations of the quotes (`[1]`…).
    pub text: String,
    /// Quote numbers cited (1-based positions in the quotes given).
    pub citations: Vec<usize>,
    /// Generated (the model's sentence passed the support check), or extractive (no model, or
    /// the model's sentence was dropped: the first quote instead).
    pub mode: AnswerMode,
    /// The model's sentence as checked, when there was one (dropped or not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked: Option<Checked>,
}

/// What `themes --summarize` knows of a theme besides its quotes: its label and its sentiment
/// mix (shares of its verbatims), which a summary may not contradict.
#[derive(Clone, Debug)]
pub struct ThemeFacts<'a> {
    /// The theme's label.
    pub label: &'a str,
    /// Share of its verbatims that are negative, in [0, 1].
    pub negative_share: f64,
    /// Share that are positive.
    pub positive_share: f64,
}

/// `themes --summarize`: one sentence per theme from its quotes, through the support check of
/// [`ask`] (cited quotes only) and the theme's sentiment mix ([`support::check_theme_mix`]);
/// without a generator, or when the model's sentence is dropped, the first quote.
pub fn summarize_theme(
    generator: Option<&mut Generator>,
    polarities: &Polarities<'_>,
    theme: &ThemeFacts<'_>,
    quotes: &[String],
    gen: &GenOptions,
) -> Result<ThemeSentence, AskError> {
    let fallback = |quotes: &[String], checked: Option<Checked>| ThemeSentence {
        text: format!(
            "\u{201c}{}\u{201d} [1]",
            quotes
                .first()
                .map(|q| q.replace('\n', " "))
                .unwrap_or_default()
        ),
        citations: if quotes.is_empty() { vec![] } else { vec![1] },
        mode: AnswerMode::Extractive,
        checked,
    };
    let Some(generator) = generator.filter(|_| !quotes.is_empty()) else {
        return Ok(fallback(quotes, None));
    };
    let mut user = format!("Verbatims from the theme \"{}\":\n", theme.label);
    for (i, q) in quotes.iter().enumerate() {
        user.push_str(&format!("[{}] {}\n", i + 1, q.replace('\n', " ")));
    }
    user.push_str("\nIn one sentence, say what these customers say, ending with the numbers of the verbatims it rests on.");
    let opts = GenOptions {
        max_tokens: gen.max_tokens.min(80),
        ..gen.clone()
    };
    let (raw, _) = generator.generate(SYSTEM, &user, &opts, &mut |_| {})?;
    let first = cite::sentences(&raw).into_iter().next().unwrap_or_default();
    let context: Vec<Cited> = quotes
        .iter()
        .enumerate()
        .map(|(i, q)| Cited {
            n: i + 1,
            text: q,
            meta: "",
        })
        .collect();
    let mut c = support::check(&first, &context, polarities)?;
    support::check_theme_mix(
        &mut c,
        theme.negative_share,
        theme.positive_share,
        polarities,
    )?;
    if !c.supported() {
        return Ok(fallback(quotes, Some(c)));
    }
    Ok(ThemeSentence {
        text: c.text.clone(),
        citations: c.citations.clone(),
        mode: AnswerMode::Generated,
        checked: Some(c),
    })
}
