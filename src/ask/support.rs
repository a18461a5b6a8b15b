//! The support check: does what a generated sentence says stand in the verbatims it cites?
//!
//! Cosine similarity cannot tell "delivered within 6 days" from "arrived three and a half weeks
//! late", nor "isn't good" from "is good": a sentence that merely *sounds like* a verbatim is
//! not supported by it. So no sentence is kept on similarity. A sentence is kept only when every
//! check below passes against the verbatims it cites (never the whole context); otherwise it is
//! dropped, with the first failing check as the reason, and every check's result is kept for
//! `--json`:
//!
//! 1. **citations** — it cites at least one verbatim of the context (`[n]`, 1 ≤ n ≤ context).
//! 2. **words** — at least [`MIN_WORD_COVERAGE`] of its content words appear in the cited
//!    verbatims, compared as stems (the text index's Snowball stemmers, English and French: a word
//!    matches when either language's stem does). Content words are what is left after the stop
//!    words (tantivy's English and French lists, the theme labels' filler list) and the words that
//!    frame a claim about feedback rather than state it ("customers", "say", "mention",
//!    [`FRAMING`]); stance words ("complain", "love", "disappointed", [`STANCE`]) are left to the
//!    polarity check. A sentence with fewer than [`MIN_CONTENT_WORDS`] content words, a fragment of fewer than
//!    [`MIN_CLAIM_WORDS`] distinct words ("Green tea [1].", "Flight Canceled Flighted [3]."), a
//!    question, or a phrase with neither a verb nor an opinion word ([`states_something`]: "My
//!    first experience with GF cookies [1].", a verbatim's opening copied) states nothing that can
//!    be checked and is dropped.
//! 3. **polarity** — the sentence's sentiment ([`crate::sentiment::unit`]: the workspace model's
//!    head on its embedding, blended with the negation-aware lexicon rule; the rule alone when no
//!    head is given) is not the opposite of any cited verbatim's, read on the opinion units it
//!    rests on: per cited verbatim, the mean of its units ([`crate::themes::units::split`]) that
//!    share the most content stems with the sentence.
//! 4. **negation** — a content word the sentence negates ("isn't good") is not only affirmed in
//!    any cited verbatim that holds it, and one it affirms is not only negated there (the scope rule of
//!    [`crate::sentiment::rule::negation_scopes`], the one the text index and the sentiment score
//!    use).
//! 5. **numbers** — every number it writes (digits, and the number words two…twenty /
//!    deux…vingt) appears in the cited verbatims or their dates.
//!
//! The words check also drops a **run-on of quotes**: a sentence whose words are mostly
//! ([`RUN_ON_MIN_SHARE`]) runs of [`RUN_ON_MIN_RUN`]+ words copied from two or more cited
//! verbatims back to back ([`collage`]) — each run is in a verbatim, the string of them is a
//! statement none makes.
//!
//! Repetition (a sentence whose content-word stems, negations included, are those of an earlier
//! sentence) is dropped by [`Seen`]. A theme summary is further checked against the theme's
//! sentiment mix ([`check_theme_mix`]): a mostly negative theme cannot be summarised positively.
//!
//! **What is not checked**: that the sentence's words stand in the same relation as in the
//! verbatim ("the courier praised the box" vs "the box praised the courier"), synonyms and
//! paraphrases (they fail the words check: strict by design), quantifiers ("most customers" from
//! one verbatim), and claims about the cited verbatims' share of all feedback. The threshold was
//! tuned on the labelled faithfulness set (`tests/fixtures/faithfulness/`, BENCHMARKS.md
//! "Support check").

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use regex::Regex;

use serde::Serialize;
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RawTokenizer, SimpleTokenizer, StopWordFilter,
    TextAnalyzer, TokenStream,
};

use super::cite;
use super::evidence::RULE_ONLY_BAND;
use crate::embed::{EmbedError, Embedder, TextKind};
use crate::lang::Lang;
use crate::sentiment::band_polarity;
use crate::sentiment::rule;
use crate::sentiment::unit::UnitSentiment;
use crate::sentiment::SentimentHead;
use crate::themes::Polarity;

/// Fewer distinct words than this (citations aside; a word repeated under another ending counts
/// once) make a fragment ("Green tea [1].", "Flight Canceled Flighted [3]."), not a claim.
pub const MIN_CLAIM_WORDS: usize = 3;

/// Fewer distinct content words than this leave a claim resting on its stance and framing words
/// ("I love this tea [3]" over a verbatim that loves tea but not this one; "about same price"):
/// too little for the words check to verify. Chosen on the faithfulness set (BENCHMARKS.md
/// "Support check"): every sentence it drops there with one content word was judged unsupported
/// or a two-word fragment.
pub const MIN_CONTENT_WORDS: usize = 2;

/// Share of a sentence's distinct content words that must appear (as stems) in the verbatims it
/// cites.
/// Chosen on the faithfulness set (BENCHMARKS.md "Support check"): the lowest value at which the
/// precision of "supported" stays ≥ 0.95.
pub const MIN_WORD_COVERAGE: f32 = 0.75;

/// Words that frame a statement about feedback ("customers say…", "les clients trouvent…")
/// rather than state what the feedback says, and function words tantivy's short English list
/// and the labels' filler list leave in: not content words (accent-folded).
#[rustfmt::skip]
pub const FRAMING: &[&str] = &[
    "customer", "customers", "client", "clients", "cliente", "clientes", "people", "person",
    "persons", "reviewer", "reviewers", "review", "reviews", "user", "users", "buyer", "buyers",
    "consumer", "consumers", "shopper", "shoppers", "traveler", "travelers", "traveller",
    "travellers", "passenger", "passengers", "flyer", "flyers", "respondent", "respondents",
    "verbatim", "verbatims", "feedback", "comment", "comments", "commented", "opinion", "opinions",
    "say", "says", "saying", "said", "mention", "mentions", "mentioned", "mentioning", "report",
    "reports", "reported", "state", "states", "stated", "note", "notes", "noted", "feel", "feels",
    "felt", "find", "finds", "found", "think", "thinks", "thought", "describe", "describes",
    "described", "express", "expresses", "expressed", "share", "shares", "shared", "point",
    "points", "pointed", "claim", "claims", "claimed", "seem", "seems", "seemed", "many", "several",
    "others", "often", "generally", "overall", "usually", "especially", "particularly", "however",
    "although", "though", "yet", "while", "whereas", "indeed", "instead", "therefore", "thus",
    "certain", "various", "someone", "something", "anything", "everything", "everyone", "gens",
    "personne", "personnes", "avis", "disent", "dire", "trouvent", "trouve", "mentionnent",
    "mentionne", "signalent", "signale", "plusieurs", "certains", "certaines", "beaucoup",
    "souvent", "notamment", "egalement", "within", "across", "among", "against", "between", "per",
    "via", "upon", "onto", "toward", "towards", "around", "along", "off", "again", "another",
    "every", "either", "those", "whose", "whether", "may", "might", "must", "shall", "let", "lets",
    "etc", "rather", "quite", "pretty", "enough", "almost", "always", "sometimes", "mostly",
    "mainly", "write", "writes", "wrote", "written", "writing", "quote", "quotes", "quoted",
];

/// Words that state how customers feel (checked by the polarity check, not by the words check:
/// "customers complain that the coffee is bitter" rests on a verbatim saying "bitter coffee").
#[rustfmt::skip]
pub const STANCE: &[&str] = &[
    "complain", "complains", "complained", "complaint", "complaints", "complaining", "unhappy",
    "happy", "satisfied", "dissatisfied", "unsatisfied", "disappointed", "disappointing",
    "disappointment", "pleased", "displeased", "frustrated", "frustrating", "frustration", "upset",
    "angry", "annoyed", "praise", "praises", "praised", "appreciate", "appreciates", "appreciated",
    "enjoy", "enjoys", "enjoyed", "love", "loves", "loved", "like", "likes", "liked", "dislike",
    "dislikes", "disliked", "hate", "hates", "hated", "recommend", "recommends", "recommended",
    "positive", "negative", "issue", "issues", "problem", "problems", "concern", "concerns",
    "experience", "experiences", "plaignent", "plaint", "plainte", "plaintes", "satisfaits",
    "satisfait", "mecontents", "mecontent", "decus", "decu", "contents", "content", "aiment",
    "aime", "apprecient", "apprecie", "probleme", "problemes",
];

/// Number words read as numbers by the numbers check ("two days" needs a 2 or a "two" in the
/// cited verbatims). "one"/"un" are left out: "one customer" is how a sentence cites one verbatim.
#[rustfmt::skip]
const NUMBER_WORDS: &[(&str, &str)] = &[
    ("two", "2"), ("three", "3"), ("four", "4"), ("five", "5"), ("six", "6"), ("seven", "7"),
    ("eight", "8"), ("nine", "9"), ("ten", "10"), ("eleven", "11"), ("twelve", "12"),
    ("thirteen", "13"), ("fourteen", "14"), ("fifteen", "15"), ("sixteen", "16"),
    ("seventeen", "17"), ("eighteen", "18"), ("nineteen", "19"), ("twenty", "20"), ("deux", "2"),
    ("trois", "3"), ("quatre", "4"), ("cinq", "5"), ("sept", "7"), ("huit", "8"), ("neuf", "9"),
    ("dix", "10"), ("onze", "11"), ("douze", "12"), ("treize", "13"), ("quatorze", "14"),
    ("quinze", "15"), ("seize", "16"), ("vingt", "20"),
];

/// One verbatim of the context a sentence may cite.
#[derive(Clone, Debug)]
pub struct Cited<'a> {
    /// Its number in the context (`[n]`).
    pub n: usize,
    /// Its (redacted) text.
    pub text: &'a str,
    /// Other text a number may come from (its date), or empty.
    pub meta: &'a str,
}

/// The checks, in the order they run (the first that fails is the reason for dropping).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Cites at least one verbatim of the context.
    Citations,
    /// Content words found in the cited verbatims.
    Words,
    /// Sentiment not opposite to the cited units'.
    Polarity,
    /// Negated words negated in the cited verbatims too, and affirmed ones affirmed.
    Negation,
    /// Every number found in the cited verbatims.
    Numbers,
    /// Not a repeat of an earlier sentence.
    Repetition,
    /// A theme summary agrees with the theme's sentiment mix.
    ThemeMix,
}

/// One check's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckResult {
    /// Which check.
    pub check: Check,
    /// Whether it passed.
    pub passed: bool,
    /// What was found, in words.
    pub detail: String,
}

/// Kept or dropped, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every check passed: the sentence is shown.
    Supported,
    /// Not shown: `check` failed, for the reason `why`.
    Dropped {
        /// The first check that failed.
        check: Check,
        /// Why, in words (that check's detail).
        why: String,
    },
}

/// The result of the support check on one sentence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Support {
    /// Kept or dropped (with the reason).
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Every check that ran, passed or not.
    pub checks: Vec<CheckResult>,
}

impl Support {
    /// Whether the sentence is shown.
    pub fn supported(&self) -> bool {
        self.verdict == Verdict::Supported
    }

    fn from_checks(checks: Vec<CheckResult>) -> Support {
        let verdict = match checks.iter().find(|c| !c.passed) {
            None => Verdict::Supported,
            Some(c) => Verdict::Dropped {
                check: c.check,
                why: c.detail.clone(),
            },
        };
        Support { verdict, checks }
    }

    /// Adds a check's result (after the others), updating the verdict.
    pub fn push(&mut self, r: CheckResult) {
        if r.passed || !self.supported() {
            self.checks.push(r);
        } else {
            self.verdict = Verdict::Dropped {
                check: r.check,
                why: r.detail.clone(),
            };
            self.checks.push(r);
        }
    }
}

/// One generated sentence, checked.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Checked {
    /// The sentence, with citations outside the context removed.
    pub text: String,
    /// Valid citation numbers (1-based context positions), in order of appearance.
    pub citations: Vec<usize>,
    /// The verdict and each check's result.
    #[serde(flatten)]
    pub support: Support,
}

impl Checked {
    /// Whether the sentence is shown.
    pub fn supported(&self) -> bool {
        self.support.supported()
    }
}

/// How polarity is read: the workspace model's sentiment head on embeddings (with the lexicon
/// rule, [`crate::sentiment::unit`]), or the rule alone.
#[derive(Clone, Copy)]
pub struct Polarities<'a> {
    head: Option<(&'a SentimentHead, &'a dyn Embedder)>,
}

impl<'a> Polarities<'a> {
    /// The head of `embedder`'s model (the blend the themes use).
    pub fn with_head(head: &'a SentimentHead, embedder: &'a dyn Embedder) -> Self {
        Polarities {
            head: Some((head, embedder)),
        }
    }

    /// The negation-aware lexicon rule alone (no model): weaker on words it does not know.
    pub fn rule_only() -> Self {
        Polarities { head: None }
    }

    fn read(&self, texts: &[&str]) -> Result<Vec<UnitSentiment>, EmbedError> {
        match self.head {
            Some((head, embedder)) => {
                let vs = embedder.embed(texts, TextKind::Passage)?;
                Ok(texts
                    .iter()
                    .zip(&vs)
                    .map(|(t, v)| crate::sentiment::unit::unit(head, t, v))
                    .collect())
            }
            None => Ok(texts
                .iter()
                .map(|t| {
                    let score = rule::score(t).score;
                    UnitSentiment {
                        polarity: band_polarity(score, RULE_ONLY_BAND),
                        score,
                    }
                })
                .collect()),
        }
    }

    fn neutral_band(&self) -> f32 {
        self.head.map_or(RULE_ONLY_BAND, |(h, _)| h.neutral_band)
    }
}

/// A content word of a text: its stems (English, French) and whether it is negated there.
#[derive(Clone, Debug)]
struct Word {
    surface: String,
    stems: [String; 2],
    negated: bool,
    start: usize,
}

/// Reads content words with the text index's stemmers; reuse one per check run.
struct Reader {
    stop: [TextAnalyzer; 2],
    stem: [TextAnalyzer; 2],
    folder: TextAnalyzer,
    cache: HashMap<String, Option<[String; 2]>>,
}

impl Reader {
    fn new() -> Self {
        let stop = |l: Language| {
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .filter(StopWordFilter::new(l).expect("stop word list"))
                .build()
        };
        Reader {
            stop: [stop(Language::English), stop(Language::French)],
            stem: [
                crate::index::text::analyzer(Lang::En),
                crate::index::text::analyzer(Lang::Fr),
            ],
            folder: TextAnalyzer::builder(RawTokenizer::default())
                .filter(AsciiFoldingFilter)
                .build(),
            cache: HashMap::new(),
        }
    }

    /// The stems of `word` (lower-cased, from [`rule::negation_scopes`]) when it is a content
    /// word; `None` for stop, filler, framing and stance words.
    fn stems(&mut self, word: &str) -> Option<[String; 2]> {
        if let Some(s) = self.cache.get(word) {
            return s.clone();
        }
        let bare: String = word.chars().filter(|c| c.is_alphanumeric()).collect();
        let folded = {
            let mut s = self.folder.token_stream(&bare);
            if s.advance() {
                s.token().text.clone()
            } else {
                bare.clone()
            }
        };
        let is_stop = self
            .stop
            .iter_mut()
            .any(|a| !a.token_stream(&bare).advance());
        let out = if is_stop
            || folded.chars().count() < 2
            || folded.chars().all(|c| c.is_ascii_digit())
            || crate::themes::label::FILLER.contains(&folded.as_str())
            || FRAMING.contains(&folded.as_str())
            || STANCE.contains(&folded.as_str())
            || NUMBER_WORDS.iter().any(|(w, _)| *w == folded)
        {
            None
        } else {
            let mut stem = |i: usize| {
                let mut s = self.stem[i].token_stream(&bare);
                if s.advance() {
                    s.token().text.clone()
                } else {
                    folded.clone()
                }
            };
            Some([stem(0), stem(1)])
        };
        self.cache.insert(word.to_string(), out.clone());
        out
    }

    /// The English stem of any word, stop words included (lower-cased, letters and digits).
    fn any_stem(&mut self, word: &str) -> String {
        let bare: String = word
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        let mut s = self.stem[0].token_stream(&bare);
        let stem = s.advance().then(|| s.token().text.clone());
        drop(s);
        stem.unwrap_or(bare)
    }

    /// Content words of `text`, in order.
    fn words(&mut self, text: &str) -> Vec<Word> {
        rule::negation_scopes(text)
            .into_iter()
            .filter(|w| !w.cue)
            .filter_map(|w| {
                let stems = self.stems(&w.word)?;
                Some(Word {
                    surface: w.word,
                    stems,
                    negated: w.negated,
                    start: w.start,
                })
            })
            .collect()
    }
}

/// Numbers of a text as the numbers check compares them: digit runs as written (decimal comma
/// read as a point) and number words as digits.
fn numbers_in(text: &str) -> HashSet<String> {
    let mut out: HashSet<String> = cite::numbers(text)
        .into_iter()
        .map(|n| n.replace(',', "."))
        .collect();
    for w in rule::negation_scopes(text) {
        if let Some((_, d)) = NUMBER_WORDS.iter().find(|(x, _)| *x == w.word) {
            out.insert((*d).to_string());
        }
    }
    out
}

/// The opinion units of a cited verbatim, with their content words.
struct UnitWords<'t> {
    text: &'t str,
    words: Vec<Word>,
}

fn units_of<'t>(reader: &mut Reader, text: &'t str) -> Vec<UnitWords<'t>> {
    let words = reader.words(text);
    let spans = crate::themes::units::split(text);
    if spans.is_empty() {
        return vec![UnitWords { text, words }];
    }
    spans
        .iter()
        .map(|s| UnitWords {
            text: s.slice(text),
            words: words
                .iter()
                .filter(|w| w.start >= s.start && w.start < s.end)
                .cloned()
                .collect(),
        })
        .collect()
}

fn shares_stem(a: &Word, b: &Word) -> bool {
    a.stems[0] == b.stems[0] || a.stems[1] == b.stems[1]
}

/// Checks one generated sentence against the context it was written from (`context`: every
/// verbatim the model saw, numbered). Only the verbatims the sentence cites are read.
pub fn check(
    sentence: &str,
    context: &[Cited<'_>],
    polarities: &Polarities<'_>,
) -> Result<Checked, EmbedError> {
    check_with(sentence, context, polarities, MIN_WORD_COVERAGE)
}

/// [`check`] with another word-coverage threshold (for tuning it: `examples/faithfulness.rs`).
pub fn check_with(
    sentence: &str,
    context: &[Cited<'_>],
    polarities: &Polarities<'_>,
    min_coverage: f32,
) -> Result<Checked, EmbedError> {
    let sentence = &normalise(sentence);
    let mut citations: Vec<usize> = Vec::new();
    for c in cite::citations(sentence) {
        if context.iter().any(|x| x.n == c) && !citations.contains(&c) {
            citations.push(c);
        }
    }
    let body = tidy(&cite::without_citations(sentence));
    let text = with_citations(&body, &citations);
    let cited: Vec<&Cited> = citations
        .iter()
        .filter_map(|n| context.iter().find(|x| x.n == *n))
        .collect();
    let mut checks = vec![CheckResult {
        check: Check::Citations,
        passed: !cited.is_empty(),
        detail: if cited.is_empty() {
            "cites no verbatim of the context".into()
        } else {
            format!(
                "cites {}",
                citations
                    .iter()
                    .map(|c| format!("[{c}]"))
                    .collect::<String>()
            )
        },
    }];
    if cited.is_empty() {
        return Ok(Checked {
            text,
            citations,
            support: Support::from_checks(checks),
        });
    }
    let mut reader = Reader::new();
    let mut claim = reader.words(&body);
    // Each content stem counts once ("order … their order").
    let mut distinct = HashSet::new();
    claim.retain(|w| distinct.insert((w.stems[0].clone(), w.negated)));
    // A question ("Unhappy with the service [2]?") asserts nothing either.
    // Words counted once per stem: "Flight Canceled Flighted" is two words said three times.
    let mut seen_stems = HashSet::new();
    let words = body
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .filter(|w| seen_stems.insert(reader.any_stem(w)))
        .count();
    // "A juice-based energy drink? [1]!" is a question too: the mark may stand before the
    // citation, with the sentence's last punctuation after it.
    let question = body
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '!' | '.' | '"' | '\'' | ')'))
        .ends_with('?');
    let fragment = words < MIN_CLAIM_WORDS || question || !states_something(&body);
    let units: Vec<Vec<UnitWords>> = cited
        .iter()
        .map(|c| units_of(&mut reader, c.text))
        .collect();
    checks.push(if fragment {
        CheckResult {
            check: Check::Words,
            passed: false,
            detail: if question {
                "a question, not a claim".into()
            } else if words >= MIN_CLAIM_WORDS {
                "a phrase, not a claim: no verb and no opinion word".into()
            } else {
                format!("a fragment, not a claim: fewer than {MIN_CLAIM_WORDS} distinct words")
            },
        }
    } else {
        match (misquoted(&body, &cited), collage(&body, &cited)) {
            (Some(q), _) => CheckResult {
                check: Check::Words,
                passed: false,
                detail: format!("quotes \"{q}\", which no cited verbatim says"),
            },
            (None, Some(c)) => CheckResult {
                check: Check::Words,
                passed: false,
                detail: format!(
                    "strings together runs copied from {} cited verbatims ({:.0}% of its words): a run-on of quotes, not a claim any of them makes",
                    c.verbatims,
                    c.share * 100.0
                ),
            },
            (None, None) => words_check(&claim, &units, min_coverage),
        }
    });
    checks.push(polarity_check(
        &body, &claim, &units, &citations, polarities,
    )?);
    checks.push(negation_check(&claim, &units, &citations));
    checks.push(numbers_check(&body, &cited));
    Ok(Checked {
        text,
        citations,
        support: Support::from_checks(checks),
    })
}

/// Whether a sentence can state something (rule R6 of the faithfulness set): it has a verb — a
/// word of a closed list of English and French auxiliaries and common verbs, a contraction
/// ("I'll", "isn't", "we've"), or a word of five letters or more with a verb's ending (-ed,
/// -ing; French -é, -ée, -és, -ées; hashtags and @handles are not read) — or an opinion word of
/// the sentiment lexicon ("Excellent phone", "The best honey I've ever tasted"). "My first
/// experience with GF cookies" has neither: a noun phrase copied from a verbatim's opening,
/// which shown as an answer implies what it does not say. A heuristic that errs towards
/// keeping (a noun in -ing, "shipping", passes): it only ever drops more.
pub fn states_something(sentence: &str) -> bool {
    const VERBS: &[&str] = &[
        // English auxiliaries, modals and copulas.
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "isn",
        "aren",
        "wasn",
        "weren",
        "don",
        "doesn",
        "didn",
        "won",
        "wouldn",
        "couldn",
        "cannot",
        "ll",
        "ve",
        "re",
        "m",
        // English verbs feedback is written with (present, irregular past), without those
        // mostly read as nouns in feedback ("taste", "order", "return", "use").
        "get",
        "gets",
        "got",
        "make",
        "makes",
        "love",
        "loves",
        "like",
        "likes",
        "hate",
        "hates",
        "need",
        "needs",
        "want",
        "wants",
        "tastes",
        "smells",
        "works",
        "say",
        "says",
        "said",
        "keep",
        "keeps",
        "kept",
        "come",
        "comes",
        "came",
        "go",
        "goes",
        "went",
        "take",
        "takes",
        "took",
        "look",
        "looks",
        "feel",
        "feels",
        "felt",
        "seem",
        "seems",
        "buy",
        "buys",
        "bought",
        "recommend",
        "recommends",
        "arrive",
        "arrives",
        "breaks",
        "broke",
        "lose",
        "loses",
        "lost",
        "find",
        "finds",
        "found",
        "give",
        "gives",
        "gave",
        "know",
        "think",
        "thinks",
        "thought",
        "try",
        "tries",
        "eat",
        "eats",
        "ate",
        "drink",
        "drinks",
        "flies",
        "flew",
        "leave",
        "leaves",
        "left",
        "waits",
        "helps",
        "sell",
        "sells",
        "sold",
        "pay",
        "pays",
        "paid",
        "costs",
        "miss",
        "misses",
        "fail",
        "fails",
        "let",
        "lets",
        "put",
        "puts",
        "ran",
        "holds",
        "held",
        "tell",
        "tells",
        "told",
        "see",
        "sees",
        "saw",
        "fix",
        "fixes",
        "cancel",
        "cancels",
        // French (not "a" nor "as": English articles and conjunctions first).
        "est",
        "sont",
        "était",
        "étaient",
        "été",
        "être",
        "ont",
        "avait",
        "avaient",
        "sera",
        "serait",
        "fait",
        "font",
        "peut",
        "peuvent",
        "doit",
        "doivent",
        "suis",
        "es",
        "sommes",
        "êtes",
        "ai",
        "avons",
        "avez",
        "va",
        "vont",
        "aime",
        "aiment",
        "trouve",
        "trouvent",
        "semble",
        "reste",
        "arrivent",
        "manque",
        "marche",
        "fonctionne",
        "recommande",
        "faut",
    ];
    let lower = sentence.to_lowercase();
    // A hashtag or a handle is a name, not a verb ("Flight attendants #WhyAreYouYelling").
    lower
        .split_whitespace()
        .filter(|t| !t.starts_with(['#', '@']))
        .flat_map(|t| t.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .any(|w| {
            VERBS.contains(&w)
                || w == "t" // n't
                || (w.chars().count() >= 5
                    && ["ed", "ing", "é", "ée", "és", "ées"]
                        .iter()
                        .any(|end| w.ends_with(end)))
                || rule::is_opinion_word(w)
        })
}

/// What the model echoes around a claim, removed before any check (and from the sentence shown):
/// a list marker ("2) ", "1. ", "- "), an echoed heading ("Quotes:", "Answer:"), the context's
/// metadata in parentheses ("(domain=amazon, sentiment=negative)", "(2015-02-23, airline=United)").
/// None of it is a claim: "sentiment=negative" must not relabel what a verbatim says, and a list
/// number is not a number the verbatims hold. Citation forms other than `[n]` that the model
/// writes for "the numbers of the quotes" — "(2)", "(1, 3)", "quote 2", "quotes 1 and 3",
/// "[quote 2]" — are rewritten as `[n]`, so they cite; a number in any other form stays a number.
pub fn normalise(sentence: &str) -> String {
    static RULES: OnceLock<[(Regex, &'static str); 6]> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        let r = |p: &str| Regex::new(p).expect("support normalisation pattern");
        [
            // Leading list markers and echoed headings, repeatedly ("2) Quotes: …").
            (
                r(r"^(?:\s*(?:\d{1,2}[.)]|[-*•–])\s+|\s*(?i:quotes?|answer|evidence|summary)\s*:\s*)+"),
                "",
            ),
            // The model's framing of a quote: "The customer feedback is: …", "The customer
            // feedback is as follows: …" (what follows is the claim; R10 of the faithfulness rules).
            (
                r(r"^\s*(?i:the\s+)?(?i:customer(?:'s|s)?\s+feedback\s+(?:is|says|shows)(?:\s+as\s+follows)?)\s*:?\s*"),
                "",
            ),
            // Echoed metadata: a parenthesis holding key=value pairs or a date.
            (
                r(r"\s*\((?:[^()]*=[^()]*|\d{4}-\d{2}-\d{2}[^()]*)\)"),
                "",
            ),
            // "[quote 2]", "[Quotes 1, 3]".
            (r(r"\[(?i:quotes?)\s+([\d ,]+)\]"), "[$1]"),
            // "(quote 2)", "(2)", "(1, 3)", "(1 and 3)".
            (
                r(r"\((?i:quotes?\s+)?(\d{1,2}(?:\s*(?:,|and|&)\s*\d{1,2})*)\)"),
                "[$1]",
            ),
            // "quote 2", "quotes 1 and 3" (the words, then the numbers).
            (
                r(r"\b(?i:quotes?)\s+(\d{1,2}(?:\s*(?:,|and|&)\s*\d{1,2})*)\b"),
                "[$1]",
            ),
        ]
    });
    let mut s = sentence.to_string();
    for (re, with) in rules {
        s = re.replace_all(&s, *with).into_owned();
    }
    // "…a week, [1]." → "…a week [1]." (the comma stood before "quote 1").
    static COMMA: OnceLock<Regex> = OnceLock::new();
    let comma = COMMA.get_or_init(|| Regex::new(r"\s*[,;:]\s*(\[[\d ,]+\])").expect("comma"));
    let s = comma.replace_all(&s, " $1").into_owned();
    // "[1 and 3]" / "[1 & 3]" as `cite` reads them: "[1, 3]".
    static JOIN: OnceLock<Regex> = OnceLock::new();
    let join = JOIN.get_or_init(|| Regex::new(r"\s*(?:and|&)\s*(\d)").expect("join pattern"));
    static BRACKETS: OnceLock<Regex> = OnceLock::new();
    let brackets = BRACKETS.get_or_init(|| Regex::new(r"\[[\d ,&and]+\]").expect("brackets"));
    brackets
        .replace_all(&s, |c: &regex::Captures| {
            join.replace_all(&c[0], ", $1").into_owned()
        })
        .trim()
        .to_string()
}

/// Lower-cased letter-and-digit runs of `s`.
fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A span the sentence puts in quotation marks (two words or more) that no cited verbatim holds
/// word for word (a long word may be misspelt by one letter): a made-up quote ("Poor delivery,
/// poor product.") claims a customer wrote it.
fn misquoted(body: &str, cited: &[&Cited]) -> Option<String> {
    let texts: Vec<Vec<String>> = cited.iter().map(|c| tokens(c.text)).collect();
    let mut rest = body;
    loop {
        let open = rest.find(['"', '“'])?;
        let after = &rest[open + rest[open..].chars().next()?.len_utf8()..];
        let Some(close) = after.find(['"', '”']) else {
            // An unclosed quotation runs to the end of the sentence.
            return check_span(after, &texts);
        };
        if let Some(q) = check_span(&after[..close], &texts) {
            return Some(q);
        }
        rest = &after[close + after[close..].chars().next()?.len_utf8()..];
    }
}

/// A copied run shorter than this many words is a shared phrase ("arrived late"), not a quote.
pub const RUN_ON_MIN_RUN: usize = 4;
/// A sentence whose words are at least this share copied runs, from at least two cited
/// verbatims, is a run-on of quotes.
pub const RUN_ON_MIN_SHARE: f32 = 0.6;

/// What [`collage`] found.
struct Collage {
    /// Distinct cited verbatims the runs come from.
    verbatims: usize,
    /// Share of the sentence's words inside copied runs.
    share: f32,
}

/// A sentence made of runs copied word for word ([`RUN_ON_MIN_RUN`] words or more) from two
/// or more cited verbatims, back to back ("Worst Customer Service Ever Rip off Over charge
/// shipping I ordered this product first and was unhappy with it immediately But fails to
/// deliver… [1]–[8]"): every word is in the verbatims, so the words check passes, yet the
/// sentence states what none of them says. One quote copied from one verbatim is not a run-on
/// (it says what that verbatim says); the runs are found greedily, longest first at each word.
fn collage(body: &str, cited: &[&Cited]) -> Option<Collage> {
    let words = tokens(body);
    if words.len() < 2 * RUN_ON_MIN_RUN {
        return None;
    }
    let texts: Vec<Vec<String>> = cited.iter().map(|c| tokens(c.text)).collect();
    // Longest run of `words[at..]` found contiguously in text `t`.
    let run_at = |at: usize, t: &[String]| -> usize {
        let mut best = 0;
        for start in 0..t.len() {
            let n = t[start..]
                .iter()
                .zip(&words[at..])
                .take_while(|(a, b)| a == b)
                .count();
            best = best.max(n);
        }
        best
    };
    let (mut at, mut covered) = (0usize, 0usize);
    let mut from = HashSet::new();
    while at < words.len() {
        let best = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (run_at(at, t), i))
            .max_by_key(|&(n, i)| (n, std::cmp::Reverse(i)));
        match best {
            Some((n, i)) if n >= RUN_ON_MIN_RUN => {
                covered += n;
                from.insert(i);
                at += n;
            }
            _ => at += 1,
        }
    }
    let share = covered as f32 / words.len() as f32;
    (from.len() >= 2 && share >= RUN_ON_MIN_SHARE).then_some(Collage {
        verbatims: from.len(),
        share,
    })
}

fn check_span(span: &str, texts: &[Vec<String>]) -> Option<String> {
    let want = tokens(span);
    if want.len() < 2 {
        return None;
    }
    let same = |a: &str, b: &str| a == b || (a.chars().count() >= 7 && edit_distance_1(a, b));
    let held = texts.iter().any(|t| {
        t.windows(want.len())
            .any(|w| w.iter().zip(&want).all(|(a, b)| same(a, b)))
    });
    (!held).then(|| span.trim().to_string())
}

/// A long word (seven letters or more) one letter away from a word of the verbatim: the model
/// copying "disapoinment" as "disaponment". Antonyms one letter apart are short words
/// ("like"/"liked" are stems anyway); "unhappy"/"happy" are two letters apart.
fn misspelt(a: &Word, b: &Word) -> bool {
    a.surface.chars().count() >= 7
        && b.surface.chars().count() >= 7
        && edit_distance_1(&a.surface, &b.surface)
}

/// Whether `a` and `b` differ by at most one inserted, deleted or replaced character.
fn edit_distance_1(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if long.len() - short.len() > 1 {
        return false;
    }
    let prefix = short
        .iter()
        .zip(long.iter())
        .take_while(|(x, y)| x == y)
        .count();
    if short.len() == long.len() {
        short[prefix + 1.min(short.len() - prefix)..] == long[prefix + 1.min(long.len() - prefix)..]
    } else {
        short[prefix..] == long[prefix + 1..]
    }
}

/// Joins a piece that holds only citations ("[1]", written on the line after its sentence) to
/// the sentence before it: the splitter ends a sentence at a line break.
pub fn attach_citations(parts: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        let only_citations = !cite::citations(&p).is_empty()
            && cite::without_citations(&p)
                .chars()
                .all(|c| c.is_whitespace() || c.is_ascii_punctuation());
        match out.last_mut() {
            Some(prev) if only_citations => {
                prev.push(' ');
                prev.push_str(p.trim());
            }
            _ => out.push(p),
        }
    }
    out
}

/// Whitespace collapsed, and none left before punctuation (where a citation was cut out:
/// "late [1]." → "late .").
fn tidy(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() && !w.starts_with(['.', ',', ';', ':', '!', '?', ')']) {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// `body` with its citation tags, before a final full stop when there is one.
fn with_citations(body: &str, citations: &[usize]) -> String {
    if citations.is_empty() {
        return body.to_string();
    }
    let tags: String = citations.iter().map(|c| format!("[{c}]")).collect();
    match body.strip_suffix(['.', '!', '?']) {
        Some(stripped) => {
            let last = body.chars().last().unwrap_or('.');
            format!("{} {tags}{last}", stripped.trim_end())
        }
        None => format!("{body} {tags}"),
    }
}

fn words_check(claim: &[Word], units: &[Vec<UnitWords>], min_coverage: f32) -> CheckResult {
    if claim.is_empty() {
        return CheckResult {
            check: Check::Words,
            passed: false,
            detail: "no content word: the sentence states nothing that can be checked".into(),
        };
    }
    if claim.len() < MIN_CONTENT_WORDS {
        return CheckResult {
            check: Check::Words,
            passed: false,
            detail: format!(
                "only {} content word ({}): too little to check",
                claim.len(),
                claim
                    .iter()
                    .map(|w| w.surface.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
    }
    // A question in a verbatim asserts nothing: "Is the lounge offering free tequila shots?"
    // cannot support "The lounge is offering free tequila shots" (the fresh judged sample of
    // 2026-12-07). Its words count for nothing here.
    let found = |w: &Word| {
        units
            .iter()
            .flatten()
            .filter(|u| !u.text.trim_end().ends_with('?'))
            .any(|u| u.words.iter().any(|x| shares_stem(w, x) || misspelt(w, x)))
    };
    let missing: Vec<&str> = claim
        .iter()
        .filter(|w| !found(w))
        .map(|w| w.surface.as_str())
        .collect();
    let coverage = 1.0 - missing.len() as f32 / claim.len() as f32;
    let passed = coverage >= min_coverage;
    CheckResult {
        check: Check::Words,
        passed,
        detail: format!(
            "{} of {} content words in the cited verbatims ({:.2} {} {min_coverage}){}",
            claim.len() - missing.len(),
            claim.len(),
            coverage,
            if passed { "≥" } else { "<" },
            if missing.is_empty() {
                String::new()
            } else {
                format!("; not found: {}", missing.join(", "))
            }
        ),
    }
}

/// Per cited verbatim, the units sharing the most content stems with the claim (all its units
/// when it shares none, so an off-topic citation is still read).
fn aligned<'u, 't>(claim: &[Word], units: &'u [Vec<UnitWords<'t>>]) -> Vec<Vec<&'u UnitWords<'t>>> {
    units
        .iter()
        .map(|us| {
            let overlap = |u: &UnitWords| {
                claim
                    .iter()
                    .filter(|w| u.words.iter().any(|x| shares_stem(w, x)))
                    .count()
            };
            let best = us.iter().map(overlap).max().unwrap_or(0);
            us.iter().filter(|u| overlap(u) == best).collect()
        })
        .collect()
}

/// The sentence's polarity against each cited verbatim's (the mean of its aligned units): no
/// cited verbatim may say the opposite of the sentence (RULES.md R5: "[8] is a positive review"
/// under a complaint).
fn polarity_check(
    body: &str,
    claim: &[Word],
    units: &[Vec<UnitWords>],
    numbers: &[usize],
    polarities: &Polarities<'_>,
) -> Result<CheckResult, EmbedError> {
    let groups = aligned(claim, units);
    let mut texts: Vec<&str> = vec![body];
    texts.extend(groups.iter().flatten().map(|u| u.text));
    let read = polarities.read(&texts)?;
    let s = read[0];
    let mut at = 1;
    let mut per = Vec::new();
    let mut opposite = false;
    for (g, n) in groups.iter().zip(numbers) {
        let scores = &read[at..at + g.len()];
        at += g.len();
        let mean = scores.iter().map(|u| u.score).sum::<f32>() / scores.len().max(1) as f32;
        let p = band_polarity(mean, polarities.neutral_band());
        opposite |= matches!(
            (s.polarity, p),
            (Polarity::Positive, Polarity::Negative) | (Polarity::Negative, Polarity::Positive)
        );
        per.push(format!("[{n}] {} ({mean:+.2})", name(p)));
    }
    Ok(CheckResult {
        check: Check::Polarity,
        passed: !opposite,
        detail: format!(
            "sentence {} ({:+.2}); cited: {}",
            name(s.polarity),
            s.score,
            per.join(", ")
        ),
    })
}

fn name(p: Polarity) -> &'static str {
    match p {
        Polarity::Positive => "positive",
        Polarity::Neutral => "neutral",
        Polarity::Negative => "negative",
    }
}

/// Per cited verbatim that holds a content word of the sentence: the word is not only affirmed
/// there when the sentence negates it, nor only negated there when the sentence affirms it.
fn negation_check(claim: &[Word], units: &[Vec<UnitWords>], numbers: &[usize]) -> CheckResult {
    let mut conflicts = Vec::new();
    for w in claim {
        for (us, n) in units.iter().zip(numbers) {
            let seen: Vec<bool> = us
                .iter()
                .flat_map(|u| u.words.iter())
                .filter(|x| shares_stem(w, x))
                .map(|x| x.negated)
                .collect();
            if seen.is_empty() {
                continue;
            }
            if w.negated && seen.iter().all(|n| !n) {
                conflicts.push(format!("\"{}\" negated here, affirmed in [{n}]", w.surface));
            } else if !w.negated && seen.iter().all(|n| *n) {
                conflicts.push(format!("\"{}\" affirmed here, negated in [{n}]", w.surface));
            }
        }
    }
    let negated = claim.iter().filter(|w| w.negated).count();
    CheckResult {
        check: Check::Negation,
        passed: conflicts.is_empty(),
        detail: if conflicts.is_empty() {
            format!("negations agree ({negated} negated word(s))")
        } else {
            conflicts.join("; ")
        },
    }
}

fn numbers_check(body: &str, cited: &[&Cited]) -> CheckResult {
    let have: HashSet<String> = cited
        .iter()
        .flat_map(|c| numbers_in(c.text).into_iter().chain(numbers_in(c.meta)))
        .collect();
    let mut wanted: Vec<String> = numbers_in(body).into_iter().collect();
    wanted.sort();
    let missing: Vec<&String> = wanted.iter().filter(|n| !have.contains(*n)).collect();
    CheckResult {
        check: Check::Numbers,
        passed: missing.is_empty(),
        detail: if wanted.is_empty() {
            "no number".into()
        } else if missing.is_empty() {
            format!("{} in the cited verbatims", wanted.join(", "))
        } else {
            format!(
                "not in the cited verbatims: {}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    }
}

/// The sentences seen so far in one answer, to drop repeats: a sentence whose content-word
/// stems (negated ones marked) are the same set as an earlier sentence's, or whose folded text
/// is the same, says nothing new.
#[derive(Default)]
pub struct Seen {
    keys: Vec<String>,
}

impl Seen {
    /// Checks `c` against the earlier sentences, then remembers it. A repeat is dropped.
    pub fn check(&mut self, c: &mut Checked) {
        let key = repeat_key(&c.text);
        let earlier = self.keys.iter().position(|k| *k == key);
        c.support.push(CheckResult {
            check: Check::Repetition,
            passed: earlier.is_none(),
            detail: match earlier {
                Some(i) => format!("repeats sentence {}", i + 1),
                None => "says something new".into(),
            },
        });
        self.keys.push(key);
    }
}

/// What [`Seen`] compares: sorted distinct content stems (`NOT_` + stem when negated), or the
/// lower-cased letters and digits when the sentence has no content word.
pub fn repeat_key(sentence: &str) -> String {
    let body = cite::without_citations(sentence);
    let mut reader = Reader::new();
    let mut stems: Vec<String> = reader
        .words(&body)
        .into_iter()
        .map(|w| {
            if w.negated {
                format!("NOT_{}", w.stems[0])
            } else {
                w.stems[0].clone()
            }
        })
        .collect();
    stems.sort();
    stems.dedup();
    if stems.is_empty() {
        body.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        stems.join(" ")
    }
}

/// A theme summary against the theme's sentiment mix (verbatim shares): a theme whose negative
/// share exceeds its positive share cannot be summarised by a positive sentence, nor a mostly
/// positive one by a negative sentence.
pub fn check_theme_mix(
    c: &mut Checked,
    negative_share: f64,
    positive_share: f64,
    polarities: &Polarities<'_>,
) -> Result<(), EmbedError> {
    let body = cite::without_citations(&c.text);
    let s = polarities.read(&[body.trim()])?[0];
    let mostly = if negative_share > positive_share {
        Polarity::Negative
    } else if positive_share > negative_share {
        Polarity::Positive
    } else {
        Polarity::Neutral
    };
    let opposite = matches!(
        (s.polarity, mostly),
        (Polarity::Positive, Polarity::Negative) | (Polarity::Negative, Polarity::Positive)
    );
    c.support.push(CheckResult {
        check: Check::ThemeMix,
        passed: !opposite,
        detail: format!(
            "sentence {} ({:+.2}); theme {:.0}% negative, {:.0}% positive",
            name(s.polarity),
            s.score,
            100.0 * negative_share,
            100.0 * positive_share
        ),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(texts: &[&'a str]) -> Vec<Cited<'a>> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Cited {
                n: i + 1,
                text: *t,
                meta: "",
            })
            .collect()
    }

    fn dropped_by(c: &Checked) -> Option<Check> {
        match &c.support.verdict {
            Verdict::Supported => None,
            Verdict::Dropped { check, .. } => Some(*check),
        }
    }

    fn run(sentence: &str, texts: &[&str]) -> Checked {
        check(sentence, &ctx(texts), &Polarities::rule_only()).unwrap()
    }

    #[test]
    fn a_sentence_saying_what_its_verbatims_say_is_supported() {
        let c = run(
            "Customers say the parcel arrived three weeks late [1].",
            &["My parcel arrived 3 weeks late, terrible.", "Great coffee."],
        );
        assert!(c.supported(), "{c:#?}");
        assert_eq!(c.citations, vec![1]);
        assert_eq!(
            c.text,
            "Customers say the parcel arrived three weeks late [1]."
        );
        assert_eq!(c.support.checks.len(), 5);
    }

    #[test]
    fn the_issue_s_wrong_delivery_claim_is_dropped() {
        // Issue 16: "[1] says three and a half weeks, [8] is a positive review".
        let c = run(
            "Customers were unhappy that their order was delivered within 6 days of their order [1][2].",
            &[
                "The order took three and a half weeks to be delivered. Never again.",
                "Lovely tea, I drink it every morning.",
            ],
        );
        assert!(!c.supported());
        let numbers = c
            .support
            .checks
            .iter()
            .find(|r| r.check == Check::Numbers)
            .unwrap();
        assert!(!numbers.passed && numbers.detail.contains('6'), "{c:#?}");
        // Invented details: words not in the cited verbatim.
        let c = run(
            "One customer received a spoiled cake after only two days [1].",
            &["The cookies were stale when they arrived."],
        );
        assert_eq!(dropped_by(&c), Some(Check::Words), "{c:#?}");
    }

    #[test]
    fn uncited_sentences_are_dropped_whatever_they_say() {
        let c = run(
            "The parcel arrived three weeks late.",
            &["My parcel arrived three weeks late."],
        );
        assert_eq!(dropped_by(&c), Some(Check::Citations));
        // A citation outside the context is removed, and then nothing is cited.
        let c = run("The parcel arrived late [7].", &["parcel late"]);
        assert_eq!(dropped_by(&c), Some(Check::Citations));
        assert!(c.citations.is_empty());
        assert_eq!(c.text, "The parcel arrived late.");
    }

    #[test]
    fn negations_and_polarity_must_agree() {
        let texts = ["This dog food is really good, my dog loves it."];
        let c = run("The dog food isn't good for dogs [1].", &texts);
        assert!(
            matches!(
                dropped_by(&c),
                Some(Check::Polarity) | Some(Check::Negation)
            ),
            "{c:#?}"
        );
        let neg = c
            .support
            .checks
            .iter()
            .find(|r| r.check == Check::Negation)
            .unwrap();
        assert!(!neg.passed, "{neg:?}");
        assert!(run("The dog food is good [1].", &texts).supported());
        // Positive claim on a negative unit.
        let c = run(
            "Customer service was excellent [1].",
            &["Customer service was awful, rude, not excellent at all."],
        );
        assert_eq!(dropped_by(&c), Some(Check::Polarity), "{c:#?}");
        // The unit the claim is about decides, not the verbatim's other units.
        let c = run(
            "The shipping was slow [1].",
            &["I love the taste, wonderful, delicious. But the shipping was slow."],
        );
        assert!(c.supported(), "{c:#?}");
    }

    #[test]
    fn no_cited_verbatim_may_say_the_opposite() {
        // The demo's "Battery has no life [6][4]": [4] says the battery life is good.
        let c = run(
            "Battery has no life [1][2].",
            &["Battery has no life.", "Battery life is real good."],
        );
        assert!(!c.supported(), "{c:#?}");
        assert!(run("Battery has no life [1].", &["Battery has no life."]).supported());
    }

    #[test]
    fn a_fragment_states_nothing_and_is_dropped() {
        // Issue 16: "Is green tea or black tea rated better?" → "Green tea [1][3]."
        let c = run(
            "Green tea [1][2].",
            &["I hate green tea.", "Black tea is nice."],
        );
        assert_eq!(dropped_by(&c), Some(Check::Words), "{c:#?}");
        let c = run("Customers say so [1].", &["Nice tea."]);
        assert_eq!(dropped_by(&c), Some(Check::Words));
        // A question asserts nothing, even when its words are the verbatim's.
        let c = run(
            "Unhappy with the customer service [1]?",
            &["Very unhappy, awful customer service!"],
        );
        assert_eq!(dropped_by(&c), Some(Check::Words), "{c:#?}");
        // A word repeated under another ending counts once: three words, two of them the same
        // (the faithfulness set's garbled "Flight Canceled Flighted [3]." was kept).
        let v = ["My flight was delayed, then delayed again."];
        let c = run("Delayed flight delayed [1].", &v);
        assert_eq!(dropped_by(&c), Some(Check::Words), "{c:#?}");
        assert!(c.support.checks[1].detail.contains("distinct"), "{c:#?}");
        let c = run("The flight was delayed [1].", &v);
        assert!(c.supported(), "{c:#?}");
    }

    #[test]
    fn french_words_are_stemmed_and_numbers_words_read() {
        let c = run(
            "Les clients disent que la livraison avait une semaine de retard [1].",
            &["La livraison a eu une semaine de retard et personne ne répondait."],
        );
        assert!(c.supported(), "{c:#?}");
        let c = run(
            "The delivery took two weeks [1].",
            &["Delivery took 2 weeks."],
        );
        assert!(c.supported(), "{c:#?}");
        let c = run(
            "The delivery took five weeks [1].",
            &["Delivery took 2 weeks."],
        );
        assert_eq!(dropped_by(&c), Some(Check::Numbers));
    }

    #[test]
    fn repeats_are_dropped_after_normalisation() {
        let texts = ["This dog food is not good for dogs."];
        let mut seen = Seen::default();
        let mut a = run("Dog food isn't good for dogs [1].", &texts);
        let mut b = run("The dog food is not good for dogs [1].", &texts);
        let mut c = run("Dog food is good for dogs [1].", &texts);
        seen.check(&mut a);
        seen.check(&mut b);
        seen.check(&mut c);
        assert!(a.supported(), "{a:#?}");
        assert_eq!(dropped_by(&b), Some(Check::Repetition));
        // Not a repeat (the negation differs); dropped for its negation instead.
        assert!(!c
            .support
            .checks
            .iter()
            .any(|r| r.check == Check::Repetition && !r.passed));
    }

    #[test]
    fn a_negative_theme_is_not_summarised_positively() {
        let mut c = run(
            "The customer service is excellent [1].",
            &["The customer service is excellent."],
        );
        assert!(c.supported());
        check_theme_mix(&mut c, 0.36, 0.20, &Polarities::rule_only()).unwrap();
        assert_eq!(dropped_by(&c), Some(Check::ThemeMix));
        let mut c = run(
            "The customer service is excellent [1].",
            &["The customer service is excellent."],
        );
        check_theme_mix(&mut c, 0.10, 0.60, &Polarities::rule_only()).unwrap();
        assert!(c.supported());
    }

    #[test]
    fn json_says_the_verdict_the_reason_and_each_check() {
        let c = run("The parcel was late [1].", &["The parcel was on time."]);
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!(j["verdict"], "dropped", "{j}");
        assert_eq!(j["check"], "words");
        assert!(j["why"].as_str().unwrap().contains("late"), "{j}");
        assert_eq!(j["checks"][0]["check"], "citations");
        assert_eq!(j["checks"][0]["passed"], true);
        let ok = run("The parcel was late [1].", &["The parcel was late."]);
        let j = serde_json::to_value(&ok).unwrap();
        assert_eq!(j["verdict"], "supported");
        assert!(j.get("why").is_none());
    }
    #[test]
    fn echoed_list_markers_and_metadata_are_not_part_of_the_claim() {
        // The old prompt's echo: a true sentence behind a list number and the metadata line.
        let c = run(
            "2) (domain=amazon, sentiment=positive) Battery life is real good [1].",
            &["Battery life is real good."],
        );
        assert!(c.supported(), "{c:#?}");
        assert_eq!(c.text, "Battery life is real good [1].");
        let c = run(
            "1. Quotes: The construction of the headsets is poor [1].",
            &["The construction of the headsets is poor."],
        );
        assert!(c.supported(), "{c:#?}");
        assert_eq!(c.text, "The construction of the headsets is poor [1].");
        // The metadata does not relabel the verbatim: a flipped claim stays dropped.
        let c = run(
            "3) (domain=amazon, sentiment=positive) Battery has no life [1][2].",
            &["Battery has no life.", "Battery life is real good."],
        );
        assert!(!c.supported(), "{c:#?}");
        let c = run(
            "2. (2015-02-23, airline=United) The battery life is good [1].",
            &["The battery life is not good at all."],
        );
        assert!(
            matches!(
                dropped_by(&c),
                Some(Check::Polarity) | Some(Check::Negation)
            ),
            "{c:#?}"
        );
    }

    #[test]
    fn a_list_number_is_not_a_count_and_a_count_must_be_there() {
        // The marker is gone, so "2" is not a number the claim states.
        let c = run(
            "2. The battery died after a week [1].",
            &["My battery died after a week."],
        );
        assert!(c.supported(), "{c:#?}");
        // A count the verbatim does not hold is still a number to find.
        let c = run(
            "2. Three customers say the battery died [1].",
            &["My battery died after a week."],
        );
        assert_eq!(dropped_by(&c), Some(Check::Numbers), "{c:#?}");
        let c = run(
            "The battery died after 2 weeks [1].",
            &["My battery died after a week."],
        );
        assert_eq!(dropped_by(&c), Some(Check::Numbers), "{c:#?}");
        // An added detail is still missing from the verbatim.
        let c = run(
            "1. The battery died in the cold after charging overnight [1].",
            &["My battery died."],
        );
        assert_eq!(dropped_by(&c), Some(Check::Words), "{c:#?}");
    }

    #[test]
    fn citation_forms_the_prompt_allows_cite() {
        let texts = ["The battery died after a week.", "The battery died fast."];
        for s in [
            "The battery died after a week (1).",
            "The battery died after a week (quote 1).",
            "The battery died after a week, quote 1.",
            "The battery died after a week [quote 1].",
        ] {
            let c = run(s, &texts);
            assert!(c.supported(), "{s}: {c:#?}");
            assert_eq!(c.citations, vec![1], "{s}");
            assert_eq!(c.text, "The battery died after a week [1].", "{s}");
        }
        for s in [
            "The battery died (1, 2).",
            "The battery died (1 and 2).",
            "The battery died, quotes 1 and 2.",
            "The battery died [1 and 2].",
            "The battery died [1, 2].",
        ] {
            let c = run(s, &texts);
            assert_eq!(c.citations, vec![1, 2], "{s}: {c:#?}");
            assert!(c.supported(), "{s}: {c:#?}");
        }
        // A number in another form is a number, not a citation.
        let c = run("The battery died after 1 week [1].", &texts);
        assert_eq!(c.citations, vec![1]);
        assert_eq!(dropped_by(&c), Some(Check::Numbers), "{c:#?}");
    }

    #[test]
    fn a_made_up_quote_is_dropped_a_copied_one_kept() {
        // The evidence prompt's echo: quotes nobody wrote, under real citations.
        let c = run(
            "Quotes: \"Not sure what the problem is with the delivery time\" \"Poor delivery, poor product.\" [1][2].",
            &[
                "It has been 4 weeks and no delivery, poor service.",
                "The delivery time was a problem, not sure why.",
            ],
        );
        assert_eq!(dropped_by(&c), Some(Check::Words), "{c:#?}");
        let c = run(
            "One customer wrote \"the delivery was late again\" [1].",
            &["The delivery was late again, so disappointed."],
        );
        assert!(c.supported(), "{c:#?}");
    }

    #[test]
    fn a_run_on_of_copied_quotes_is_dropped_one_quote_kept() {
        // BENCHMARKS "Gemma comparison": every word is in the cited verbatims, the sentence
        // says what none of them says.
        let texts = [
            "Worst Customer Service Ever. I will not buy from them again.",
            "Rip off Over charge shipping on a small box of tea.",
            "I ordered this product first and was unhappy with it immediately, so I sent it back.",
            "The tin looks nice but fails to deliver the flavour it promises.",
        ];
        let c = run(
            "Worst Customer Service Ever Rip off Over charge shipping I ordered this product first and was unhappy with it immediately But fails to deliver [1][2][3][4].",
            &texts,
        );
        assert_eq!(dropped_by(&c), Some(Check::Words), "{c:?}");
        assert!(
            format!("{c:?}").contains("run-on of quotes"),
            "the reason says why: {c:?}"
        );
        // One verbatim's words copied as one quote: it says what that verbatim says.
        let c = run(
            "I ordered this product first and was unhappy with it immediately [3].",
            &texts,
        );
        assert!(c.support.supported(), "{c:?}");
        // A summary sharing short phrases with two verbatims is not a run-on.
        let c = run(
            "Customers were unhappy with the shipping charge and the customer service [1][2][3].",
            &texts,
        );
        assert!(
            !format!("{c:?}").contains("run-on of quotes"),
            "short shared phrases are not copied runs: {c:?}"
        );
    }

    #[test]
    fn a_phrase_with_neither_verb_nor_opinion_word_states_nothing() {
        // The fresh judged sample of 2026-12-07 (BENCHMARKS "Support check"): a verbatim's
        // opening copied under the model's "The customer feedback is" framing.
        let texts = [
            "My first experience with GF cookies.  The taste, flavor and texture of these cookies is very good.",
            "@USAirways is the worst!! Still haven't left.. Everyone missing connections.",
        ];
        let c = run(
            "The customer feedback is My first experience with GF cookies [1].",
            &texts,
        );
        assert_eq!(dropped_by(&c), Some(Check::Words), "{c:?}");
        assert!(format!("{c:?}").contains("no verb"), "{c:?}");
        // The framing is not part of the claim, and the shown sentence loses it.
        let c = run(
            "The customer feedback is: Everyone missing connections [2].",
            &texts,
        );
        assert!(c.supported(), "{c:?}");
        assert_eq!(c.text, "Everyone missing connections [2].");
        // A verb, or an opinion word, makes a statement.
        assert!(run("The taste of these cookies is very good [1].", &texts).supported());
        assert!(states_something("Excellent cookies, great texture"));
        assert!(states_something("Le colis est arrivé écrasé"));
        assert!(!states_something("My first experience with GF cookies"));
        assert!(!states_something("A box of tea"));
        // A hashtag is no verb (the rerun of the second sample).
        assert!(!states_something("Flight attendants #WhyAreYouYelling"));
        assert!(states_something("@united has the worst flight attendants"));
    }

    #[test]
    fn a_question_neither_makes_a_claim_nor_supports_one() {
        // Both from the fresh judged sample of 2026-12-07.
        let c = run(
            "A juice-based energy drink? [1]!",
            &["A juice-based energy drink?! Sounds great! I can't stand the awful taste of this drink!"],
        );
        assert_eq!(dropped_by(&c), Some(Check::Words), "{c:?}");
        assert!(format!("{c:?}").contains("a question"), "{c:?}");
        let texts = [
            "BF has been stuck in CLT all day. Is the lounge offering free tequila shots?",
            "The lounge is offering free tequila shots tonight.",
        ];
        let c = run("The lounge is offering free tequila shots [1].", &texts);
        assert_eq!(dropped_by(&c), Some(Check::Words), "{c:?}");
        // The same claim over a verbatim that states it.
        assert!(run("The lounge is offering free tequila shots [2].", &texts).supported());
    }

    #[test]
    fn a_long_word_misspelt_by_one_letter_is_the_same_word() {
        let c = run(
            "The BT headset was such a disaponment [1].",
            &["The BT headset was such a disapoinment."],
        );
        assert!(c.supported(), "{c:#?}");
        // Not a licence for other words: two letters apart ("unhelpful") is another word.
        let c = run(
            "The support staff were unhelpful [1].",
            &["The support staff were helpful."],
        );
        assert!(!c.supported(), "{c:#?}");
        assert!(edit_distance_1("disapoinment", "disaponment"));
        assert!(edit_distance_1("shipping", "shippinx"));
        assert!(!edit_distance_1("helpful", "unhelpful"));
        assert!(!edit_distance_1("shipping", "shoppinx"));
    }

    #[test]
    fn citations_on_their_own_line_join_their_sentence() {
        let parts = vec![
            "The construction is poor.".to_string(),
            "[1]".to_string(),
            "The sound is garbled [2].".to_string(),
            "[3].".to_string(),
        ];
        assert_eq!(
            attach_citations(parts),
            vec![
                "The construction is poor. [1]".to_string(),
                "The sound is garbled [2]. [3].".to_string()
            ]
        );
        let c = run(
            "The construction is poor. [1]",
            &["The construction is poor."],
        );
        assert!(c.supported(), "{c:#?}");
    }
    #[test]
    fn one_content_word_is_too_little_to_check() {
        // The faithfulness set's "I love this tea [3]": [3] loves tea, not this one.
        let c = run(
            "I love this tea [1].",
            &["I love tea!!! But this one was disappointing, the jasmine is too strong."],
        );
        assert_eq!(dropped_by(&c), Some(Check::Words), "{c:#?}");
        assert!(c.support.checks[1].detail.contains("tea"), "{c:#?}");
        let c = run(
            "I love this jasmine tea [1].",
            &["I love this jasmine tea, every morning."],
        );
        assert!(c.supported(), "{c:#?}");
    }

    #[test]
    fn a_numbered_list_is_checked_item_by_item() {
        // A list answer as SmolLM2 writes it under the quotes prompt: each item is a sentence of
        // its own, its marker is no number of its claim, a count in an item still must be there.
        let answer = "Customers complain about delivery:\n\
                      1. The package arrived two weeks late [1].\n\
                      2. The courier was rude [2] 3. Three customers say the box was damaged [3].\n\
                      4.\nThe refund took 10 days [4]";
        let texts = [
            "My package arrived two weeks late, never again.",
            "The courier was rude and threw the box.",
            "The box was damaged when it came.",
            "I asked for a refund and it took 10 days.",
        ];
        let checked: Vec<Checked> = attach_citations(cite::sentences(answer))
            .iter()
            .map(|s| run(s, &texts))
            .collect();
        let got: Vec<(&str, Option<Check>)> = checked
            .iter()
            .map(|c| (c.text.as_str(), dropped_by(c)))
            .collect();
        assert_eq!(
            got,
            [
                ("Customers complain about delivery:", Some(Check::Citations)),
                ("The package arrived two weeks late [1].", None),
                ("The courier was rude [2]", None),
                (
                    "Three customers say the box was damaged [3].",
                    Some(Check::Numbers)
                ),
                ("The refund took 10 days [4]", None),
            ]
        );
        // The marker's number is not read as a count: "4" is in no verbatim.
        assert!(checked[4].support.checks.iter().all(|c| c.passed));
    }
}
