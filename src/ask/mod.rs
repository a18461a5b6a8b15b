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
pub mod compare;
pub mod evidence;
pub mod faithfulness;
pub mod llama;
pub mod llm;
pub mod phrase;
pub mod q4_1;
pub mod route;
pub mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use chrono::{Datelike, TimeZone, Utc};
use serde::Serialize;

use crate::access::Grant;
use crate::embed::{Embedder, TextKind};
use crate::index::Indexes;
use crate::lang::Lang;
use crate::retrieve::{self, Hit, Mode as SearchMode, Query};
use crate::sentiment::SentimentHead;
use crate::store::{Filter, Store};
use llm::{GenOptions, GenStats, Generator};
use support::{Checked, Cited, Polarities};

/// Settings of one question.
#[derive(Clone, Debug)]
pub struct AskOptions {
    /// The user's filter.
    pub filter: Filter,
    /// Verbatims the answer quotes (the model's context) and lists as sources, at most; the
    /// evidence's counts are over `evidence_verbatims` retrieved.
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
    /// Verbatims retrieved for the evidence (its counts and shares are of these).
    pub evidence_verbatims: usize,
    /// The workspace's sentiment head (unit sentiment of the evidence and comparisons); without
    /// one, the lexicon rule alone.
    pub sentiment: Option<std::sync::Arc<SentimentHead>>,
    /// The embedding model's name and the languages its profile lists (`multi` for many): a
    /// French question on an English-only model is told the model cannot cross languages; on a
    /// multilingual one, verbatims in another language than the question's are judged with the
    /// thresholds lowered by [`CROSS_LANGUAGE_MARGIN`].
    pub model: (String, Vec<String>),
}

/// On a multilingual model, how much lower a question's cosine to a verbatim in the *other*
/// language is than to a verbatim saying the same in the question's language (the thresholds
/// `min_cosine` and `count_cosine` were calibrated within one language). Measured with
/// multilingual-e5-small on the 120 French/English pairs of
/// `tests/fixtures/e5/bilingual_pairs.jsonl`: cos(query: FR text, passage: its EN translation)
/// is 0.886 on average against 0.946 for cos(query: EN text, passage: EN text), and 0.893
/// against 0.954 the other way (BENCHMARKS.md, "Evidence-first answers").
pub const CROSS_LANGUAGE_MARGIN: f32 = 0.06;

impl AskOptions {
    /// The margin to add to a cosine between a question in `lang` and a verbatim in `verbatim`
    /// (its language code) before comparing it with a threshold: 0 in the same language or on
    /// a model not listed as multilingual.
    fn cross_margin(&self, lang: Lang, verbatim: &str) -> f32 {
        let multi = self.model.1.iter().any(|l| l == "multi");
        if multi && verbatim != lang.code() {
            CROSS_LANGUAGE_MARGIN
        } else {
            0.0
        }
    }
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
            evidence_verbatims: 40,
            sentiment: None,
            model: (String::new(), Vec::new()),
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
    /// A comparison of two things, answered from the store's scores and sentiment.
    Comparison,
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
    /// The aspect or sub-theme counted (`P3` / `C12`) when one matched the topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// How the topic was matched: `name` (a phrase as written), `aspect` (a tree node, plus the
    /// verbatims whose words include the topic), or `words_or_meaning`.
    pub matched_by: &'static str,
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
    /// From the question to the evidence, shown before any model runs (retrieval included).
    pub evidence_s: f64,
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
    /// The language the answer is written in: the question's ([`crate::lang::detect`]).
    #[schema(value_type = String)]
    pub language: Lang,
    /// Said before the answer: e.g. that the embedding model cannot cross languages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What the data says, before any model ran (why/what questions).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub evidence: Option<evidence::Evidence>,
    /// For a comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub comparison: Option<compare::Comparison>,
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

/// The system prompt of an evidence summary: no example sentence (a 135M model copies it).
const EVIDENCE_SYSTEM: &str = "You summarise customer feedback evidence for an analyst. Use only \
the evidence you are given: its groups, numbers and quotes. Do not copy the quotes or the \
evidence lines; say in your own words what customers say. End every sentence with the numbers \
of the quotes it rests on in square brackets. Never write a number that is not in the evidence.";

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
/// shown (the audit trail); `on_sentence` receives the answer as it is produced: any note first
/// (a model that cannot cross languages), then the evidence's lines, then the checked sentences
/// of a generated answer (whole lines otherwise).
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
    let lang = crate::lang::detect(question);
    let notes = language_notes(lang, &opts.model);
    let mut first = true;
    let mut on = |s: &str| {
        if std::mem::take(&mut first) {
            for n in &notes {
                on_sentence(n);
            }
        }
        on_sentence(s);
    };
    let mut a = route_question(
        store, indexes, grant, embedder, generator, question, lang, opts, before, &mut on,
    )?;
    a.language = lang;
    a.notes = notes;
    Ok(a)
}

/// The line said before an answer whose question the embedding model cannot relate to the
/// verbatims: a French question on a model trained on English only.
fn language_notes(lang: Lang, model: &(String, Vec<String>)) -> Vec<String> {
    let (name, langs) = model;
    let knows = |code: &str| langs.iter().any(|l| l == code || l == "multi");
    if lang == Lang::Fr && !langs.is_empty() && !knows("fr") {
        vec![format!(
            "Note : le modèle d'embedding de cet espace ({name}) ne connaît que l'anglais ; il ne relie pas une question en français aux avis en anglais (ni l'inverse) : seuls les mots écrits tels quels sont trouvés. Pour chercher et compter d'une langue à l'autre, utilisez multilingual-e5-small (`verbatim reindex --model multilingual-e5-small`)."
        )]
    } else {
        Vec::new()
    }
}

#[allow(clippy::too_many_arguments)]
fn route_question(
    store: &Store,
    indexes: &Indexes,
    grant: &Grant,
    embedder: &dyn Embedder,
    generator: Option<&mut Generator>,
    question: &str,
    lang: Lang,
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
            lang,
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
            lang,
            &cq,
            opts,
            before,
            on_sentence,
            t0,
        );
    }
    if let Some(cq) = route::compare_question(question) {
        return comparison(
            store,
            grant,
            question,
            lang,
            &cq,
            opts,
            before,
            on_sentence,
            t0,
        );
    }
    let depth = opts.limit.max(opts.evidence_verbatims).max(1);
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
            limit: depth,
        },
    )?;
    // The best cosine among the hits (the vector side scores every one it found), a verbatim in
    // the other language given the cross-language margin on a multilingual model.
    let adjusted = |h: &Hit| {
        h.cosine
            .map(|c| c + opts.cross_margin(lang, &h.verbatim.language))
    };
    let best = hits.iter().filter_map(adjusted).fold(f32::MIN, f32::max);
    // Hits the vector side scored under the abstention threshold are not evidence.
    let (hits, below): (Vec<Hit>, Vec<Hit>) = hits
        .into_iter()
        .partition(|h| adjusted(h).is_none_or(|c| c >= opts.min_cosine));
    let mut timings = Timings {
        retrieve_s: t0.elapsed().as_secs_f64(),
        ..Timings::default()
    };
    if hits.len() < 2 || best < opts.min_cosine {
        // An abstention shows what was found, closest first, up to `limit`: the analyst sees why.
        let found = hits.len() + below.len();
        let mut closest: Vec<Hit> = hits.into_iter().chain(below).collect();
        closest.sort_by(|a, b| {
            adjusted(b)
                .unwrap_or(f32::MIN)
                .total_cmp(&adjusted(a).unwrap_or(f32::MIN))
                .then(a.rank.cmp(&b.rank))
        });
        let sources: Vec<Source> = closest
            .iter()
            .take(opts.limit.max(1))
            .enumerate()
            .map(|(i, h)| source(i + 1, h))
            .collect();
        let above = closest
            .iter()
            .filter(|h| adjusted(h).is_some_and(|c| c >= opts.min_cosine))
            .count();
        let answer = abstention(lang, found, above, best, opts.min_cosine);
        before(&sources).map_err(AskError::Hook)?;
        on_sentence(&answer);
        return Ok(Answer {
            question: question.to_string(),
            language: Lang::En,
            notes: Vec::new(),
            evidence: None,
            comparison: None,
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
    // Evidence first: from the store, before any model runs.
    // Units are chosen by the question's topic words ("unhappy delivery"), not its form: a
    // "Why…?" question is otherwise closest to the verbatims that ask "why" themselves.
    // A question that takes a side ("why are customers unhappy with…") is answered from the
    // verbatims on that side, and its opinion words are not topic words: "unhappy" must not
    // pick the unit that says "unhappy" over the one that says what went wrong.
    let head = opts.sentiment.as_deref();
    let focus = evidence::question_focus(question);
    let mut topic = route::topic_words(question);
    if focus.is_some() {
        let without: Vec<&str> = topic
            .split(' ')
            .filter(|w| !crate::sentiment::rule::is_opinion_word(w))
            .collect();
        if !without.is_empty() {
            topic = without.join(" ");
        }
    }
    let about = if topic.is_empty() {
        question
    } else {
        topic.as_str()
    };
    let qv = embedder.embed(&[about], TextKind::Query)?.remove(0);
    let scope = grant.restrict(&opts.filter);
    let mut ev = evidence::gather(store, embedder, &hits, &qv, &topic, &scope, head, focus)?;
    // `limit` bounds the quoted verbatims and the sources listed: the quoted ones first (the
    // only ones the model sees, numbered 1…q), then the other retrieved ones in rank order. The
    // evidence's counts are of every retrieved verbatim.
    ev.limit_quotes(opts.limit.max(1));
    let quoted = ev.quoted_hits();
    let order: Vec<usize> = quoted
        .iter()
        .copied()
        .chain((0..hits.len()).filter(|i| !quoted.contains(i)))
        .collect();
    let renumber: HashMap<usize, usize> =
        order.iter().enumerate().map(|(n, &i)| (i, n + 1)).collect();
    ev.renumber(&renumber);
    let sources: Vec<Source> = order
        .iter()
        .take(opts.limit.max(1))
        .enumerate()
        .map(|(n, &i)| source(n + 1, &hits[i]))
        .collect();
    ev.elapsed_s = t0.elapsed().as_secs_f64();
    timings.evidence_s = ev.elapsed_s;
    before(&sources).map_err(AskError::Hook)?;
    for l in ev.lines(lang) {
        on_sentence(&l);
    }
    let q = quoted.len();
    let Some(generator) = generator else {
        let mut a = extractive(
            store,
            question,
            sources,
            on_sentence,
            timings,
            &opts.without_generator,
            q,
            ev.retrieved,
        )?;
        a.evidence = Some(ev);
        return Ok(a);
    };
    let mut a = generate(
        store,
        embedder,
        generator,
        question,
        lang,
        &ev,
        sources,
        q,
        opts,
        timings,
        on_sentence,
    )?;
    a.evidence = Some(ev);
    Ok(a)
}

/// Why an answer abstains: `found` verbatims retrieved in scope, `above` of them at or over the
/// model's threshold `min`, `best` the closest one's cosine.
fn abstention(lang: Lang, found: usize, above: usize, best: f32, min: f32) -> String {
    let fr = lang == Lang::Fr;
    if found < 2 {
        return if fr {
            format!("Pas assez d'éléments pour répondre : {found} avis trouvé(s) dans le périmètre. Essayez d'autres mots, ou élargissez le filtre.")
        } else {
            format!("Not enough evidence to answer: {found} verbatim(s) found in scope. Try other words, or widen the filter.")
        };
    }
    match (best < min, fr) {
        (true, true) => format!(
            "Pas assez d'éléments pour répondre : l'avis le plus proche a un cosinus de {best:.3} avec la question, sous le seuil de ce modèle ({min:.3} ; calibré : BENCHMARKS.md). Les plus proches sont listés ci-dessous. Essayez d'autres mots, ou élargissez le filtre."
        ),
        (true, false) => format!(
            "Not enough evidence to answer: the closest verbatim has cosine {best:.3} to the question, under this model's threshold of {min:.3} (calibrated: BENCHMARKS.md). The closest ones are listed below. Try other words, or widen the filter."
        ),
        (false, true) => format!(
            "Pas assez d'éléments pour répondre : {above} avis seulement atteint le seuil de ce modèle ({min:.3} ; calibré : BENCHMARKS.md) parmi {found} trouvés. Les plus proches sont listés ci-dessous. Essayez d'autres mots, ou élargissez le filtre."
        ),
        (false, false) => format!(
            "Not enough evidence to answer: only {above} of the {found} verbatims found reach this model's threshold of {min:.3} (calibrated: BENCHMARKS.md). The closest ones are listed below. Try other words, or widen the filter."
        ),
    }
}

/// The evidence's counts and shares as the prompt and the analyst see them (verbatims, sentiment
/// mix, percentages): the numbers a generated sentence may state besides its cited verbatims'.
fn evidence_numbers(ev: &evidence::Evidence) -> String {
    let mix = |m: &evidence::Mix| format!("{} {} {}", m.negative, m.neutral, m.positive);
    let pct = |x: f64| format!("{:.0}", 100.0 * x);
    let mut out = format!("{} {} {}", ev.retrieved, ev.in_scope, mix(&ev.sentiment));
    for g in ev
        .groups
        .iter()
        .chain(ev.groups.iter().flat_map(|g| &g.children))
    {
        out.push_str(&format!(
            " {} {} {}",
            g.verbatims,
            mix(&g.sentiment),
            pct(g.share_of_retrieved)
        ));
        if let (Some(n), Some(sh)) = (g.in_scope, g.share_of_scope) {
            out.push_str(&format!(" {n} {}", pct(sh)));
        }
    }
    out
}

/// The model summarises the evidence: its prompt is the evidence's quoted units numbered
/// `[1]…[q]` and the question ([`evidence::Evidence::prompt`], `instruction`), never the
/// retrieved verbatims whole, and each sentence must
/// cite the quotes and pass the support check ([`support::check`] against the quoted verbatims it
/// cites; numbers also from the evidence).
#[allow(clippy::too_many_arguments)]
fn generate(
    store: &Store,
    embedder: &dyn Embedder,
    generator: &mut Generator,
    question: &str,
    lang: Lang,
    ev: &evidence::Evidence,
    sources: Vec<Source>,
    q: usize,
    opts: &AskOptions,
    mut timings: Timings,
    on_sentence: &mut dyn FnMut(&str),
) -> Result<Answer, AskError> {
    // The quotes, the question last but one, the instruction last (a small model follows the
    // last thing it read).
    let user = format!(
        "{}\nQuestion: {question}\n\n{}",
        ev.prompt(),
        ev.instruction(lang == Lang::Fr)
    );
    let gen = &opts.gen;
    let t1 = Instant::now();
    // The support check reads the quoted verbatims ([1]…[q]) a sentence cites (owned: the
    // sources move into an extractive fallback below); numbers may also come from their dates
    // and from the evidence's own counts and shares (computed from the data, in the prompt) —
    // not from the prompt's list and quote numbers, nor from quotes the sentence does not cite.
    let counts = evidence_numbers(ev);
    let owned: Vec<(usize, String, String)> = sources
        .iter()
        .take(q)
        .map(|s| {
            let date = s.date.clone().unwrap_or_default();
            (s.n, s.text.clone(), format!("{date}\n{counts}"))
        })
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
    let generated = generator.generate(EVIDENCE_SYSTEM, &user, gen, &mut |piece| {
        pending.push_str(piece);
        let mut parts = support::attach_citations(cite::sentences(&pending));
        // A sentence is complete once the next one has words: its citations may still come on
        // the next line ("… poor.\n[1]").
        if parts.len() > 1
            && parts
                .last()
                .is_some_and(|p| p.chars().any(char::is_alphabetic))
        {
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
            let mut a = extractive(
                store,
                question,
                sources,
                on_sentence,
                timings,
                &why,
                q,
                ev.retrieved,
            )?;
            a.sentences = checked;
            return Ok(a);
        }
    };
    for p in support::attach_citations(cite::sentences(&pending)) {
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
        let mut a = extractive(
            store,
            question,
            sources,
            on_sentence,
            timings,
            &why,
            q,
            ev.retrieved,
        )?;
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
        language: Lang::En,
        notes: Vec::new(),
        evidence: None,
        comparison: None,
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

/// The answer without a (working) generator: the evidence already shown is the answer; its
/// retrieved verbatims are also grouped by topic theme (`groups`, for `--json`). `quoted`: the
/// first sources, the evidence's quotes, which the answer cites.
fn extractive(
    store: &Store,
    question: &str,
    sources: Vec<Source>,
    on_line: &mut dyn FnMut(&str),
    timings: Timings,
    why: &Fallback,
    quoted: usize,
    retrieved: usize,
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
    let lines = [format!(
        "Extractive answer ({}): the evidence above, from the {retrieved} verbatims most relevant to the question; the {quoted} quoted are below.",
        why.says(),
    )];
    for l in &lines {
        on_line(l);
    }
    let cited = sources.iter().take(quoted).map(|s| s.n).collect();
    Ok(Answer {
        question: question.to_string(),
        language: Lang::En,
        notes: Vec::new(),
        evidence: None,
        comparison: None,
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

/// The aspect or sub-theme a counting topic names.
struct NodeMatch {
    /// The node's number.
    id: i64,
    /// `P3` / `C12`.
    shown: String,
    label: String,
    is_parent: bool,
    /// Its children's ids and labels (a parent).
    children: Vec<String>,
    /// "its label has the topic's words" / "its label is within cosine … of the topic".
    how: String,
}

/// The active tree node whose label has every (stemmed) word of the topic — a parent before a
/// child, then the larger — else the one whose label is closest in meaning to the topic, at
/// the model's `count_cosine` or above.
fn match_node(
    store: &Store,
    embedder: &dyn Embedder,
    topic: &str,
    qv: &[f32],
    count_cosine: f32,
) -> Result<Option<NodeMatch>, AskError> {
    use crate::themes::aspect::{node_id, node_label};
    let nodes: Vec<crate::store::AspectNode> = store
        .aspect_nodes()?
        .into_iter()
        .filter(|n| n.state == crate::store::ThemeState::Active)
        .collect();
    if nodes.is_empty() {
        return Ok(None);
    }
    let (en, fr) = crate::index::TextIndex::query_terms(topic);
    let has_words = |label: &str| {
        let words: HashSet<String> = [Lang::En, Lang::Fr]
            .into_iter()
            .flat_map(|l| {
                crate::index::text::tokens(l, label)
                    .into_iter()
                    .map(|t| t.0)
            })
            .collect();
        (!en.is_empty() && en.iter().all(|t| words.contains(t)))
            || (!fr.is_empty() && fr.iter().all(|t| words.contains(t)))
    };
    let by_words = nodes
        .iter()
        .filter(|n| has_words(node_label(n)))
        .max_by(|a, b| {
            a.is_parent
                .cmp(&b.is_parent)
                .then(a.verbatims.cmp(&b.verbatims))
                .then(b.id.cmp(&a.id))
        });
    let (node, how) = match by_words {
        Some(n) => (n, format!("its label has the words of \"{topic}\"")),
        None => {
            let labels: Vec<&str> = nodes.iter().map(|n| node_label(n)).collect();
            let vs = embedder.embed(&labels, TextKind::Passage)?;
            let best = vs
                .iter()
                .enumerate()
                .map(|(i, v)| (crate::vecmath::dot(qv, v), i))
                .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
            match best {
                Some((c, i)) if c >= count_cosine => (
                    &nodes[i],
                    format!("its label is within cosine {c:.2} of \"{topic}\""),
                ),
                _ => return Ok(None),
            }
        }
    };
    let children = if node.is_parent {
        nodes
            .iter()
            .filter(|c| !c.is_parent && c.parent == Some(node.id))
            .map(|c| format!("{} \"{}\"", node_id(c), node_label(c)))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Some(NodeMatch {
        id: node.id,
        shown: node_id(node),
        label: node_label(node).to_string(),
        is_parent: node.is_parent,
        children,
        how,
    }))
}

/// A tree node counts for a topic only when at least this share of its verbatims (in scope)
/// use the topic's words.
pub const NODE_MIN_PRECISION: f64 = 1.0 / 3.0;

/// How a counting question's verbatims are matched.
enum CountRule {
    /// No topic: every verbatim in scope.
    All,
    /// A name, as written.
    Name(phrase::Phrase),
    /// A topic: its aspect node's verbatims when one matches (plus the word rule), else the word
    /// rule or the meaning rule.
    Topic {
        en: Vec<String>,
        fr: Vec<String>,
        qv: Vec<f32>,
        node: Option<(NodeMatch, HashSet<i64>)>,
    },
}

#[allow(clippy::too_many_arguments)]
fn count(
    store: &Store,
    grant: &Grant,
    embedder: &dyn Embedder,
    question: &str,
    lang: Lang,
    cq: &route::CountQuestion,
    opts: &AskOptions,
    before: BeforeAnswer<'_>,
    on_line: &mut dyn FnMut(&str),
    t0: Instant,
) -> Result<Answer, AskError> {
    let fr_answer = lang == Lang::Fr;
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
    let topic = cq.topic.trim();
    let mut rule = if topic.is_empty() {
        CountRule::All
    } else if cq.name {
        CountRule::Name(phrase::Phrase::new(topic))
    } else {
        let (en, fr) = crate::index::TextIndex::query_terms(topic);
        let qv = embedder.embed(&[topic], TextKind::Query)?.remove(0);
        let node = match match_node(store, embedder, topic, &qv, opts.count_cosine)? {
            Some(m) => {
                let docs: HashSet<i64> = store
                    .aspect_units()?
                    .into_iter()
                    .filter(|u| {
                        if m.is_parent {
                            u.parent == Some(m.id)
                        } else {
                            u.child == Some(m.id)
                        }
                    })
                    .map(|u| u.doc)
                    .collect();
                Some((m, docs))
            }
            None => None,
        };
        CountRule::Topic { en, fr, qv, node }
    };
    // A topic that names an aspect family ("price") also covers the family's words ("cost",
    // "expensive", "overpriced"): the "price covers cost, expensive, overpriced".
    let family: Vec<usize> = match &rule {
        CountRule::Topic { .. } if topic.split_whitespace().count() <= 3 => {
            crate::themes::anchor::families_of(topic)
        }
        _ => Vec::new(),
    };
    let family_note = family
        .iter()
        .map(|&f| {
            let fam = &crate::themes::anchor::FAMILIES[f];
            format!(
                "a word of the aspect \"{}\" ({}…)",
                crate::themes::anchor::family_name(f, if fr_answer { "fr" } else { "en" }),
                fam.terms
                    .iter()
                    .take(6)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join(" or ");
    let mut total = 0usize;
    let mut matched: Vec<(f32, String)> = Vec::new();
    // A topic's verbatims in scope: (cosine, id, in the node, by the words, by meaning).
    let mut rows: Vec<(f32, String, bool, bool, bool)> = Vec::new();
    // (in the node / the name, by the words, by meaning only)
    let mut parts = (0usize, 0usize, 0usize);
    store.for_each(|v, _, vec| {
        if !scope.matches(&v) {
            return Ok(());
        }
        total += 1;
        match &rule {
            CountRule::All => matched.push((1.0, v.id.clone())),
            CountRule::Name(p) => {
                if p.matches(&v.text) {
                    parts.0 += 1;
                    matched.push((1.0, v.id.clone()));
                }
            }
            CountRule::Topic { en, fr, qv, node } => {
                let words: HashSet<String> = [Lang::En, Lang::Fr]
                    .into_iter()
                    .flat_map(|l| {
                        crate::index::text::tokens(l, &v.text)
                            .into_iter()
                            .map(|t| t.0)
                    })
                    .collect();
                let w = (!en.is_empty() && en.iter().all(|t| words.contains(t)))
                    || (!fr.is_empty() && fr.iter().all(|t| words.contains(t)))
                    || (!family.is_empty()
                        && crate::themes::anchor::families_of(&v.text)
                            .iter()
                            .any(|f| family.contains(f)));
                let cos = crate::vecmath::dot(qv, &vec);
                let in_node = node.as_ref().is_some_and(|(_, d)| d.contains(&v.doc));
                let m = cos + opts.cross_margin(lang, &v.language) >= opts.count_cosine;
                rows.push((cos, v.id.clone(), in_node, w, m));
            }
        }
        Ok(())
    })?;
    // A node stands for the topic only when it is specific to it: at least
    // NODE_MIN_PRECISION of its verbatims use the topic's words (or its aspect family's). A coarse tree's node ("price"
    // holding 41% of all reviews) would otherwise count far more than talk about the topic.
    let mut too_broad: Option<(String, usize, usize)> = None;
    if let CountRule::Topic { node, .. } = &mut rule {
        if let Some((m, _)) = node.as_ref() {
            let size = rows.iter().filter(|r| r.2).count();
            let with_words = rows.iter().filter(|r| r.2 && r.3).count();
            if (with_words as f64) < NODE_MIN_PRECISION * size as f64 {
                too_broad = Some((format!("{} \"{}\"", m.shown, m.label), size, with_words));
                *node = None;
            }
        }
        let has_node = node.is_some();
        for (cos, id, in_node, w, m) in rows {
            let counted = match (has_node, in_node, w) {
                (true, true, _) => &mut parts.0,
                (true, false, true) | (false, _, true) => &mut parts.1,
                (false, _, false) if m => &mut parts.2,
                _ => continue,
            };
            *counted += 1;
            matched.push((cos, id));
        }
    }
    let n = matched.len();
    let share = if total > 0 {
        n as f64 / total as f64
    } else {
        0.0
    };
    let (by_node, by_words, by_meaning) = parts;
    let (method, node, matched_by) = match &rule {
        CountRule::All => (format!("every verbatim in scope{period}"), None, "all"),
        CountRule::Name(p) => (
            format!(
                "verbatims{period} containing \"{}\" as written (its words in order, adjacent; apostrophes normalised; not by meaning)",
                p.written
            ),
            None,
            "name",
        ),
        CountRule::Topic { node: Some((m, _)), .. } => {
            let subs = if m.children.is_empty() {
                String::new()
            } else {
                format!(", with its sub-themes {}", m.children.join(", "))
            };
            (
                format!(
                    "verbatims{period} with an opinion unit in the {} {} \"{}\" ({}{subs}: {by_node}), plus those whose words include every word of \"{topic}\"{} ({by_words} more)",
                    if m.is_parent { "aspect" } else { "sub-theme" },
                    m.shown,
                    m.label,
                    m.how,
                    if family_note.is_empty() {
                        String::new()
                    } else {
                        format!(" or {family_note}")
                    }
                ),
                Some(m.shown.clone()),
                "aspect",
            )
        }
        CountRule::Topic { node: None, .. } => (
            format!(
                "verbatims{period} whose words include every word of \"{topic}\" (stemmed, English and French){} ({by_words}) or whose meaning is within cosine {:.2} of it ({by_meaning} more){}",
                if family_note.is_empty() {
                    String::new()
                } else {
                    format!(" or {family_note}")
                },
                opts.count_cosine,
                too_broad
                    .as_ref()
                    .map(|(node, size, with)| format!(
                        "; the tree node {node} was not used: too broad for the topic ({with} of its {size} verbatims use the words)"
                    ))
                    .unwrap_or_default()
            ),
            None,
            "words_or_meaning",
        ),
    };
    let answer = count_sentence(fr_answer, cq.share, n, total, share, &method);
    // Examples: the closest matches.
    matched.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let sources: Vec<Source> = matched
        .iter()
        .take(opts.limit.min(5))
        .enumerate()
        .filter_map(|(i, (cos, id))| {
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
        language: Lang::En,
        notes: Vec::new(),
        evidence: None,
        comparison: None,
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
            node,
            matched_by,
        }),
        groups: Vec::new(),
        generation: None,
        fallback: None,
        timings: Timings {
            retrieve_s: t0.elapsed().as_secs_f64(),
            ..Timings::default()
        },
    })
}

/// "12 of 300 verbatims (4.0%) — counted as …", or the share first, in English or French.
fn count_sentence(
    fr: bool,
    share_first: bool,
    n: usize,
    total: usize,
    share: f64,
    method: &str,
) -> String {
    let pct = 100.0 * share;
    match (fr, share_first) {
        (false, true) => format!("{pct:.1}% ({n} of {total} verbatims) — counted as {method}."),
        (false, false) => format!("{n} of {total} verbatims ({pct:.1}%) — counted as {method}."),
        (true, true) => format!("{pct:.1} % ({n} avis sur {total}) — comptés ainsi : {method}."),
        (true, false) => format!("{n} avis sur {total} ({pct:.1} %) — comptés ainsi : {method}."),
    }
}

/// A comparison, from the store (no retrieval, no model).
#[allow(clippy::too_many_arguments)]
fn comparison(
    store: &Store,
    grant: &Grant,
    question: &str,
    lang: Lang,
    cq: &route::CompareQuestion,
    opts: &AskOptions,
    before: BeforeAnswer<'_>,
    on_line: &mut dyn FnMut(&str),
    t0: Instant,
) -> Result<Answer, AskError> {
    let scope = grant.restrict(&opts.filter);
    let c = compare::compare(store, grant, &scope, &cq.sides, opts.sentiment.as_deref())?;
    let lines = c.says(lang, grant.min_cell());
    before(&[]).map_err(AskError::Hook)?;
    for l in &lines {
        on_line(l);
    }
    Ok(Answer {
        question: question.to_string(),
        language: Lang::En,
        notes: Vec::new(),
        evidence: None,
        comparison: Some(c),
        mode: AnswerMode::Comparison,
        answer: lines.join("\n"),
        sentences: Vec::new(),
        cited: Vec::new(),
        sources: Vec::new(),
        count: None,
        groups: Vec::new(),
        generation: None,
        fallback: None,
        timings: Timings {
            retrieve_s: t0.elapsed().as_secs_f64(),
            ..Timings::default()
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
    lang: Lang,
    opts: &AskOptions,
    before: BeforeAnswer<'_>,
    on_line: &mut dyn FnMut(&str),
    t0: Instant,
) -> Result<Answer, AskError> {
    if route::count_question(question).is_none() {
        if let Some(cq) = route::compare_question(question) {
            // Numbers only, each side under k suppressed (`compare`).
            return comparison(store, grant, question, lang, &cq, opts, before, on_line, t0);
        }
    }
    let Some(cq) = route::count_question(question) else {
        let answer = "Your role sees aggregates only (counts, shares, trends, theme labels), not verbatims: ask a counting question (\"How many customers mention delivery?\") or a comparison (\"Is X or Y rated better?\"), or see `verbatim themes` and `verbatim report`.".to_string();
        before(&[]).map_err(AskError::Hook)?;
        on_line(&answer);
        return Ok(Answer {
            question: question.to_string(),
            language: Lang::En,
            notes: Vec::new(),
            evidence: None,
            comparison: None,
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
                ..Timings::default()
            },
        });
    };
    let mut a = count(
        store,
        grant,
        embedder,
        question,
        lang,
        &cq,
        opts,
        &mut |_| Ok(()),
        &mut |_| {},
        t0,
    )?;
    a.sources.clear();
    a.cited.clear();
    if let Some(c) = a.count.as_mut() {
        // The method's own sub-counts (by node, words, meaning) could be under k: not shown.
        c.method = match (c.matched_by, &c.node) {
            ("name", _) => format!("verbatims in scope containing \"{}\" as written", c.topic),
            ("aspect", Some(node)) => format!(
                "verbatims in scope with an opinion unit in the tree node {node}, or whose words include every word of \"{}\"",
                c.topic
            ),
            _ => format!(
                "verbatims in scope whose words include every word of \"{}\" (stemmed) or whose meaning is close to it",
                c.topic
            ),
        };
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
            a.answer = count_sentence(
                lang == Lang::Fr,
                false,
                c.count,
                c.total,
                c.share,
                &c.method,
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
