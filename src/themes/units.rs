//! Opinion units: the pieces of a verbatim that each say one thing, so that a theme and a
//! sentiment can be given to what was said rather than to a whole review that mixes praise and
//! complaint ("great taste but arrived crushed" is two units).
//!
//! A unit is a byte span of the redacted text (the text the store holds), so a unit can be shown
//! highlighted inside its verbatim and nothing but offsets needs storing.
//!
//! Rules, in order:
//! 1. **Sentences**, with the rules of [`super::sentences`]: a break after `.`, `!`, `?`, `…`
//!    followed by a space (so `2.5` stays whole), at line breaks and at `<br>`; fragments under
//!    3 words are glued to the sentence before (a short first one to the next).
//! 2. **Contrast clauses**: a sentence is cut *before* a contrast marker (EN: but, however,
//!    although, though, even though, except, yet, whereas, while, on the other hand; FR: mais,
//!    cependant, pourtant, par contre, en revanche, sauf que, bien que, alors que, toutefois,
//!    néanmoins, quoique…), the marker belonging to the second unit, and only when both sides
//!    are long enough to carry an opinion of their own: at least 2 content words, or at least 3
//!    words with one content word (a content word is one outside a short list of negations,
//!    intensifiers, pronouns, articles and auxiliaries). So "not bad but not great" stays one
//!    (hedged) opinion while "great taste but arrived crushed" is two. A sentence that *opens*
//!    with a concessive marker ("Although the taste is fine, the box was crushed") is cut after
//!    the first comma instead. Not contrast: "but also", "mais aussi", "nothing/anything/all but",
//!    "not yet", "as though", a trailing "though,"; "while" only after a comma or opening the
//!    sentence (else it is mostly temporal: "ate it while watching TV").
//!
//! **Computed once.** [`ensure_units`] splits and embeds the units of every verbatim that has none
//! for its current content, on the first theme run that sees it, and stores them
//! ([`crate::store::StoredUnit`]; the store drops them with their verbatim on change, deletion,
//! erasure and model change). A verbatim that is a single unit spanning its whole text reuses
//! its own stored embedding instead of running the model again.
//!
//! **What is embedded is the unit without its @mentions** ([`embed_input`]): on social feedback
//! the handle a customer addresses (`@united`, `@SouthwestAir`) is the loudest thing in a short
//! unit, and embedded as is it makes the brand the first axis of the aspect tree (the airline
//! tweets' tree had parents and children named after airlines). The span stored is still the
//! whole unit; only the embedding input drops the handles. Which rule made the stored vectors
//! is recorded ([`UNIT_INPUT`], store meta `units_input`): units made under another rule are
//! dropped and made again once, on the next theme run.
//!
//! **Beside sentence vectors, not instead of them.** `sentence_vectors` (at most 8 sentences,
//! multi-sentence verbatims only) feed two calibrated behaviours — the sentiment of a long review
//! (mean of its sentence vectors, measured on Amazon Fine Foods) and the second theme — whose
//! numbers and tests were tuned on sentences. Units are finer (a sentence cut at its contrast)
//! and exist for every verbatim; swapping one for the other would move those measured numbers
//! without a measurement saying it is better. They stay apart until unit-level sentiment and the
//! unit tree (issue 14) take over those jobs; then `sentence_vectors` can go in a migration.

use crate::embed::{EmbedError, Embedder, TextKind};
use crate::store::{Store, StoreError, StoredUnit};

/// Verbatims split and embedded per store transaction.
const CHUNK: usize = 512;

/// The rule that turns a unit into the text embedded for it ([`embed_input`]). Changing the
/// rule changes this value, and stored units made under another value are made again.
pub const UNIT_INPUT: &str = "mentions-masked-1";
/// Store meta key recording the [`UNIT_INPUT`] the stored unit vectors were made with.
pub const UNIT_INPUT_KEY: &str = "units_input";

/// What is embedded for a unit: its text without @mentions (an `@` not preceded by a word
/// character, then word characters: `@united`, not `a@b.com`), spaces collapsed where one was
/// taken out. A unit that is nothing but mentions is embedded as it is (an empty text would
/// give every such unit the same vector).
pub fn embed_input(unit: &str) -> std::borrow::Cow<'_, str> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(unit.len());
    let mut changed = false;
    let mut prev: Option<char> = None;
    let mut chars = unit.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let starts =
            c == '@' && !prev.is_some_and(word) && unit[i + 1..].chars().next().is_some_and(word);
        if starts {
            changed = true;
            while chars.peek().is_some_and(|&(_, c)| word(c)) {
                chars.next();
            }
            prev = Some('@');
            continue;
        }
        out.push(c);
        prev = Some(c);
    }
    if !changed {
        return std::borrow::Cow::Borrowed(unit);
    }
    let collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().any(word) {
        std::borrow::Cow::Owned(collapsed)
    } else {
        std::borrow::Cow::Borrowed(unit)
    }
}

/// A verbatim to give units to: its doc, its (redacted) text, and its own embedding when the
/// caller has it — reused as is for a verbatim that is one unit spanning its whole text (most
/// short feedback), since embedding the same text again gives the same vector.
pub type UnitDoc<'a> = (i64, &'a str, Option<&'a [f32]>);

/// Splits and embeds the units of every verbatim among `docs` that has none stored for its
/// current content, and stores them (progress step "embedding units", counted in units).
/// Verbatims whose units are current are not touched: an unchanged verbatim is split and
/// embedded once. Returns how many units were stored.
pub fn ensure_units(
    store: &mut Store,
    embedder: &dyn Embedder,
    docs: &[UnitDoc<'_>],
    progress: &dyn crate::progress::Progress,
) -> Result<usize, UnitsError> {
    store.reset_units_unless(UNIT_INPUT_KEY, UNIT_INPUT)?;
    let ids: Vec<i64> = docs.iter().map(|d| d.0).collect();
    let missing: std::collections::HashSet<i64> =
        store.docs_without_units(&ids)?.into_iter().collect();
    let todo: Vec<(UnitDoc<'_>, Vec<UnitSpan>)> = docs
        .iter()
        .filter(|d| missing.contains(&d.0))
        .map(|d| (*d, split(d.1)))
        .collect();
    let total: usize = todo.iter().map(|(_, u)| u.len()).sum();
    if todo.is_empty() {
        return Ok(0);
    }
    if total > 0 {
        progress.start("embedding units", total as u64);
    }
    for chunk in todo.chunks(CHUNK) {
        let batch: Vec<(i64, Vec<StoredUnit>)> = chunk
            .iter()
            .map(|(d, _)| d.0)
            .zip(embed_units(embedder, chunk)?)
            .collect();
        let n: usize = batch.iter().map(|(_, u)| u.len()).sum();
        store.put_units(&batch)?;
        if total > 0 {
            progress.advance(n as u64);
        }
    }
    if total > 0 {
        progress.finish();
    }
    Ok(total)
}

/// The units of each of `docs` (already [`split`]) with their vectors, as [`ensure_units`]
/// stores them: the whole text as its only unit, with nothing masked, takes the verbatim's own
/// embedding when known; every other unit embeds [`embed_input`] of its text. `verbatim assign`
/// (on a machine without the workspace) makes its units with this too, so they are the units a
/// workspace would store.
pub fn embed_units(
    embedder: &dyn Embedder,
    docs: &[(UnitDoc<'_>, Vec<UnitSpan>)],
) -> Result<Vec<Vec<StoredUnit>>, EmbedError> {
    let reuse = |(d, units): &(UnitDoc<'_>, Vec<UnitSpan>)| -> Option<Vec<f32>> {
        match (units.as_slice(), d.2) {
            ([u], Some(v))
                if u.slice(d.1) == d.1.trim()
                    && matches!(embed_input(u.slice(d.1)), std::borrow::Cow::Borrowed(_)) =>
            {
                Some(v.to_vec())
            }
            _ => None,
        }
    };
    let reused: Vec<Option<Vec<f32>>> = docs.iter().map(reuse).collect();
    let texts: Vec<std::borrow::Cow<'_, str>> = docs
        .iter()
        .zip(&reused)
        .filter(|(_, r)| r.is_none())
        .flat_map(|((d, units), _)| units.iter().map(|u| embed_input(u.slice(d.1))))
        .collect();
    let texts: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
    let mut vecs = if texts.is_empty() {
        Vec::new()
    } else {
        embedder.embed(&texts, TextKind::Passage)?
    }
    .into_iter();
    Ok(docs
        .iter()
        .zip(reused)
        .map(|((_, units), reused)| {
            let mut reused = reused;
            units
                .iter()
                .enumerate()
                .map(|(idx, u)| StoredUnit {
                    idx,
                    start: u.start,
                    end: u.end,
                    vector: reused
                        .take()
                        .unwrap_or_else(|| vecs.next().expect("one vector per unit")),
                    sentiment: None,
                })
                .collect()
        })
        .collect())
}

/// Errors of [`ensure_units`].
#[derive(Debug, thiserror::Error)]
pub enum UnitsError {
    /// Reading or writing the units in the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Embedding the units.
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// A unit: `text[start..end]`, byte offsets into the redacted text, on char boundaries, trimmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct UnitSpan {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl UnitSpan {
    /// The unit's text inside `text` (the verbatim it was split from).
    pub fn slice<'a>(&self, text: &'a str) -> &'a str {
        &text[self.start..self.end]
    }
}

/// Words a fragment needs to stand as a sentence (shorter ones are glued).
const MIN_SENTENCE_WORDS: usize = 3;

/// Splits `text` into opinion units, in order, non-overlapping, each trimmed and non-empty.
/// Every word of the text outside `<br>` tags lies in exactly one unit. A text with no word
/// gives no unit.
pub fn split(text: &str) -> Vec<UnitSpan> {
    let mut out = Vec::new();
    for s in sentences(text) {
        split_contrast(text, s, &mut out);
    }
    out
}

/// Byte length of a `<br>`, `<br/>` or `<br />` tag (any case) starting at `at`, if one does.
fn br_tag(text: &str, at: usize) -> Option<usize> {
    let b = text.as_bytes();
    if b.len() < at + 3 || !b[at..at + 3].eq_ignore_ascii_case(b"<br") {
        return None;
    }
    let mut i = at + 3;
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    if i < b.len() && b[i] == b'/' {
        i += 1;
    }
    (i < b.len() && b[i] == b'>').then_some(i + 1 - at)
}

fn words_in(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Trims whitespace off `text[start..end]`; `None` when nothing is left.
fn trimmed(text: &str, start: usize, end: usize) -> Option<UnitSpan> {
    let s = &text[start..end];
    let lead = s.len() - s.trim_start().len();
    let t = s.trim();
    (!t.is_empty()).then_some(UnitSpan {
        start: start + lead,
        end: start + lead + t.len(),
    })
}

/// Sentence spans of `text` (rule 1 of the module doc).
fn sentences(text: &str) -> Vec<UnitSpan> {
    let mut raw = Vec::new();
    let mut start = 0;
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c == '\n' || c == '\r' {
            raw.extend(trimmed(text, start, i));
            start = i + c.len_utf8();
            continue;
        }
        if c == '<' {
            if let Some(n) = br_tag(text, i) {
                raw.extend(trimmed(text, start, i));
                start = i + n;
                // Skip the rest of the tag.
                while it.peek().is_some_and(|&(j, _)| j < start) {
                    it.next();
                }
                continue;
            }
        }
        if matches!(c, '.' | '!' | '?' | '…') && it.peek().is_none_or(|&(_, n)| n.is_whitespace())
        {
            let end = i + c.len_utf8();
            raw.extend(trimmed(text, start, end));
            start = end;
        }
    }
    raw.extend(trimmed(text, start, text.len()));
    let mut out: Vec<UnitSpan> = Vec::new();
    for s in raw {
        match out.last_mut() {
            Some(prev) if words_in(s.slice(text)) < MIN_SENTENCE_WORDS => prev.end = s.end,
            _ => out.push(s),
        }
    }
    if out.len() > 1 && words_in(out[0].slice(text)) < MIN_SENTENCE_WORDS {
        let first = out.remove(0);
        out[0].start = first.start;
    }
    out
}

/// A word of a sentence: its byte span and its lower-cased letters (punctuation trimmed).
struct Word {
    start: usize,
    norm: String,
    /// Ends with a comma or semicolon (a clause boundary after it).
    comma: bool,
}

fn words_of(text: &str, span: UnitSpan) -> Vec<Word> {
    let s = span.slice(text);
    let mut out = Vec::new();
    let mut pos = 0;
    for w in s.split_whitespace() {
        let at = pos
            + s[pos..]
                .find(w)
                .expect("split_whitespace yields substrings");
        pos = at + w.len();
        let norm = w
            .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '’')
            .trim_matches(|c| c == '\'' || c == '’')
            .to_lowercase()
            .replace('’', "'");
        out.push(Word {
            start: span.start + at,
            norm,
            comma: w.ends_with(',') || w.ends_with(';'),
        });
    }
    out
}

/// Contrast markers, as sequences of normalised words. A final `que` also matches `qu'…`.
const MARKERS: &[&[&str]] = &[
    &["on", "the", "other", "hand"],
    &["even", "though"],
    &["but"],
    &["however"],
    &["although"],
    &["though"],
    &["except"],
    &["yet"],
    &["whereas"],
    &["while"],
    &["par", "contre"],
    &["en", "revanche"],
    &["sauf", "que"],
    &["bien", "que"],
    &["alors", "que"],
    &["mais"],
    &["cependant"],
    &["pourtant"],
    &["toutefois"],
    &["néanmoins"],
    &["quoique"],
    &["sauf"],
];

/// Markers that, opening a sentence, subordinate the clause up to the first comma.
const CONCESSIVE: &[&str] = &[
    "although", "though", "even", "while", "whereas", "bien", "quoique", "alors",
];

/// Words that carry no opinion on their own (rule 2 of the module doc).
const FUNCTION_WORDS: &[&str] = &[
    // EN
    "a",
    "an",
    "the",
    "it",
    "its",
    "it's",
    "is",
    "was",
    "are",
    "were",
    "be",
    "been",
    "am",
    "this",
    "that",
    "these",
    "those",
    "i",
    "i'm",
    "me",
    "my",
    "we",
    "you",
    "he",
    "she",
    "they",
    "them",
    "not",
    "no",
    "never",
    "very",
    "so",
    "too",
    "really",
    "quite",
    "pretty",
    "just",
    "also",
    "and",
    "or",
    "of",
    "to",
    "in",
    "on",
    "at",
    "for",
    "with",
    "as",
    "bit",
    "little",
    "all",
    "much",
    "more",
    "most",
    "less",
    "rather",
    "somewhat",
    "fairly",
    "still",
    "even",
    "but",
    "however",
    "although",
    "though",
    "except",
    "yet",
    "whereas",
    "while",
    "do",
    "does",
    "did",
    "have",
    "has",
    "had",
    "will",
    "would",
    "can",
    "could",
    "should",
    "may",
    "might",
    "there",
    "here",
    "then",
    "than",
    "what",
    "which",
    "who",
    "overall",
    "though",
    // FR
    "le",
    "la",
    "les",
    "l",
    "un",
    "une",
    "des",
    "de",
    "du",
    "d",
    "et",
    "ou",
    "ne",
    "n",
    "pas",
    "plus",
    "très",
    "trop",
    "assez",
    "vraiment",
    "c'est",
    "ce",
    "ça",
    "est",
    "était",
    "il",
    "elle",
    "ils",
    "elles",
    "je",
    "j'ai",
    "on",
    "nous",
    "vous",
    "en",
    "à",
    "au",
    "aux",
    "si",
    "bien",
    "peu",
    "mais",
    "cependant",
    "pourtant",
    "toutefois",
    "néanmoins",
    "quoique",
    "que",
    "qui",
    "sauf",
    "par",
    "contre",
    "revanche",
    "alors",
    "a",
    "sont",
    "été",
];

fn is_content(w: &str) -> bool {
    w.chars().any(char::is_alphabetic)
        && !w.ends_with("n't")
        && !w.starts_with("qu'")
        && !FUNCTION_WORDS.contains(&w)
}

/// Enough to carry an opinion of its own.
fn opinion(words: &[Word]) -> bool {
    let content = words.iter().filter(|w| is_content(&w.norm)).count();
    content >= 2 || (content >= 1 && words.len() >= 3)
}

fn word_matches(marker: &str, w: &str) -> bool {
    w == marker || (marker == "que" && w.starts_with("qu'"))
}

/// Length in words of the contrast marker at `words[i]`, if one starts there.
fn marker_at(words: &[Word], i: usize) -> Option<usize> {
    let m = MARKERS.iter().find(|m| {
        m.len() <= words.len() - i
            && m.iter()
                .zip(&words[i..])
                .all(|(m, w)| word_matches(m, &w.norm))
    })?;
    let first = m[0];
    let prev = i.checked_sub(1).map(|p| &words[p]);
    let next = words.get(i + m.len()).map(|w| w.norm.as_str());
    let prev_norm = prev.map(|w| w.norm.as_str());
    let not_contrast = match first {
        "but" => {
            next == Some("also")
                || matches!(prev_norm, Some("nothing" | "anything" | "all" | "last"))
        }
        "mais" => next == Some("aussi") || next == Some("encore"),
        "yet" => {
            matches!(prev_norm, Some("not" | "as" | "pas"))
                || prev_norm.is_some_and(|p| p.ends_with("n't"))
                || matches!(next, Some("but" | "and" | "mais" | "et"))
        }
        // "…in the rain though, and it got wet": a trailing "though," belongs to its clause.
        "though" => matches!(prev_norm, Some("as" | "even")) || words[i].comma,
        "while" => !(i == 0 || prev.is_some_and(|p| p.comma)),
        "except" => false,
        // "sauf" alone is "except for"; "sauf que" is matched first.
        _ => false,
    };
    (!not_contrast).then_some(m.len())
}

/// Cuts one sentence at its contrast markers (rule 2), pushing the units to `out`.
fn split_contrast(text: &str, sentence: UnitSpan, out: &mut Vec<UnitSpan>) {
    let words = words_of(text, sentence);
    // Cut points: word indices where a new unit starts, and where its own words (after the
    // marker) start.
    let mut cuts: Vec<usize> = Vec::new();
    let mut seg_body = 0; // first word of the current unit after its marker
    let mut i = 0;
    while i < words.len() {
        if let Some(len) = marker_at(&words, i) {
            if i == 0 {
                // A sentence opening with a concessive: cut after its first comma.
                if CONCESSIVE.contains(&words[0].norm.as_str()) {
                    if let Some(c) = (len..words.len()).find(|&c| words[c].comma) {
                        if c + 1 < words.len()
                            && opinion(&words[len..=c])
                            && opinion(&words[c + 1..])
                        {
                            cuts.push(c + 1);
                            seg_body = c + 1;
                            i = c + 1;
                            continue;
                        }
                    }
                }
                seg_body = len;
                i = len;
                continue;
            }
            if seg_body < i && opinion(&words[seg_body..i]) && opinion(&words[i + len..]) {
                cuts.push(i);
                seg_body = i + len;
                i += len;
                continue;
            }
            i += len;
            continue;
        }
        i += 1;
    }
    let mut start = sentence.start;
    for c in cuts {
        out.extend(trimmed(text, start, words[c].start));
        start = words[c].start;
    }
    out.extend(trimmed(text, start, sentence.end));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn units(text: &str) -> Vec<&str> {
        split(text).iter().map(|u| u.slice(text)).collect()
    }

    #[test]
    fn sentences_follow_the_sentence_rules() {
        assert_eq!(
            units("The taste is great. It arrived very late!! Will I buy again? Yes.\nThe box was missing<br>and nothing else."),
            [
                "The taste is great.",
                "It arrived very late!!",
                "Will I buy again? Yes.",
                "The box was missing",
                "and nothing else."
            ]
        );
        assert_eq!(
            units("Version 2.5 is out. It works fine now."),
            ["Version 2.5 is out.", "It works fine now."]
        );
        assert!(units("").is_empty());
        assert!(units("  \n <br/> ").is_empty());
    }

    #[test]
    fn a_short_verbatim_is_one_unit() {
        assert_eq!(units("Great!"), ["Great!"]);
        assert_eq!(units("  Good. Bad.  "), ["Good. Bad."]);
        assert_eq!(units("not bad but not great"), ["not bad but not great"]);
        assert_eq!(units("good but expensive"), ["good but expensive"]);
    }

    #[test]
    fn english_contrast_clauses() {
        assert_eq!(
            units("great taste but arrived crushed"),
            ["great taste", "but arrived crushed"]
        );
        assert_eq!(
            units("The coffee tastes wonderful, but the bag was torn open when it arrived."),
            [
                "The coffee tastes wonderful,",
                "but the bag was torn open when it arrived."
            ]
        );
        assert_eq!(
            units("Although the flavour is nice, the price went up by a third."),
            [
                "Although the flavour is nice,",
                "the price went up by a third."
            ]
        );
        assert_eq!(
            units("My dog loves these treats; however, they crumble into dust in the box."),
            [
                "My dog loves these treats;",
                "however, they crumble into dust in the box."
            ]
        );
        assert_eq!(
            units("Shipping was fast, whereas the customer service never answered my emails."),
            [
                "Shipping was fast,",
                "whereas the customer service never answered my emails."
            ]
        );
        assert_eq!(
            units("Delivery was quick. On the other hand the tea tastes stale and dusty."),
            [
                "Delivery was quick.",
                "On the other hand the tea tastes stale and dusty."
            ]
        );
        assert_eq!(
            units("Everything was perfect except the lid, which came off in transit."),
            [
                "Everything was perfect",
                "except the lid, which came off in transit."
            ]
        );
    }

    #[test]
    fn english_non_contrast_stays_whole() {
        for s in [
            "It is not only healthy but also really tasty.",
            "I haven't tried the other flavours yet but will soon.",
            "I ate the whole bag while watching a movie last night.",
            "This was anything but a good purchase for our family.",
            "It tastes as though it was made with real fruit juice.",
            "Good taste though.",
            "The courier left the parcel in the rain though, and it got wet.",
        ] {
            assert_eq!(units(s), [s], "{s}");
        }
    }

    #[test]
    fn french_contrast_clauses() {
        assert_eq!(
            units("Le goût est excellent mais le colis est arrivé écrasé."),
            ["Le goût est excellent", "mais le colis est arrivé écrasé."]
        );
        assert_eq!(
            units("La livraison était rapide, par contre le service client ne répond jamais."),
            [
                "La livraison était rapide,",
                "par contre le service client ne répond jamais."
            ]
        );
        assert_eq!(
            units("Bien que le prix soit élevé, la qualité des grains est remarquable."),
            [
                "Bien que le prix soit élevé,",
                "la qualité des grains est remarquable."
            ]
        );
        assert_eq!(
            units("Le thé est parfumé, sauf qu'il arrive toujours en retard chez nous."),
            [
                "Le thé est parfumé,",
                "sauf qu'il arrive toujours en retard chez nous."
            ]
        );
        assert_eq!(
            units("Produit conforme à la description. Cependant l'emballage était abîmé et sale."),
            [
                "Produit conforme à la description.",
                "Cependant l'emballage était abîmé et sale."
            ]
        );
        assert_eq!(
            units("J'aime la texture alors que mon mari trouve ça trop sucré."),
            [
                "J'aime la texture",
                "alors que mon mari trouve ça trop sucré."
            ]
        );
        for s in [
            "Pas mal mais pas top.",
            "Non seulement bon mais aussi pas cher du tout.",
        ] {
            assert_eq!(units(s), [s], "{s}");
        }
    }

    #[test]
    fn several_markers_in_one_sentence() {
        assert_eq!(
            units(
                "The taste is great but the box was crushed, yet the seller refunded me quickly."
            ),
            [
                "The taste is great",
                "but the box was crushed,",
                "yet the seller refunded me quickly."
            ]
        );
    }

    #[test]
    fn offsets_are_bytes_of_the_text() {
        let t = "Très bon café… mais l’emballage était déchiré à l’arrivée.";
        let u = split(t);
        assert_eq!(u.len(), 2, "{u:?}");
        assert_eq!(u[0].slice(t), "Très bon café…");
        assert_eq!(u[1].slice(t), "mais l’emballage était déchiré à l’arrivée.");
        assert_eq!(u[1].start, t.find("mais").unwrap());
    }

    /// The hashing embedder, counting the texts it is asked to embed.
    struct Counting(crate::embed::HashEmbedder, std::sync::Mutex<Vec<String>>);

    impl Embedder for Counting {
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn fingerprint(&self) -> &str {
            self.0.fingerprint()
        }
        fn max_seq_length(&self) -> usize {
            self.0.max_seq_length()
        }
        fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError> {
            let mut seen = self.1.lock().unwrap();
            seen.extend(texts.iter().map(|t| t.to_string()));
            self.0.embed(texts, kind)
        }
    }

    fn put(store: &mut Store, items: &[(&str, &str)]) -> Vec<(i64, String)> {
        let run = store.begin_run("t.csv").unwrap();
        let batch: Vec<crate::store::NewVerbatim> = items
            .iter()
            .map(|(id, text)| crate::store::NewVerbatim {
                id: id.to_string(),
                text: crate::pii::redact(text),
                original: None,
                respondent: None,
                ts: None,
                score: None,
                language: "en".into(),
                fields: Default::default(),
                source: "t.csv:2".into(),
                content_hash: text.to_string(),
                vector: crate::embed::HashEmbedder::new()
                    .embed(&[text], TextKind::Passage)
                    .unwrap()
                    .remove(0),
            })
            .collect();
        store.upsert_batch(run, &batch).unwrap();
        items
            .iter()
            .map(|(id, _)| {
                let v = store.get(id).unwrap().unwrap();
                (v.doc, v.text)
            })
            .collect()
    }

    #[test]
    fn units_are_embedded_once_and_again_only_when_the_text_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let texts = [
            ("a", "Great taste but it arrived crushed in the box."),
            ("b", "Fast delivery."),
            ("c", "  "),
        ];
        let docs = put(&mut store, &texts);
        let own = whole_text_vectors(&texts);
        let input = with_vectors(&docs, &own);
        let e = Counting(crate::embed::HashEmbedder::new(), Default::default());
        let p = crate::progress::NoProgress;
        assert_eq!(ensure_units(&mut store, &e, &input, &p).unwrap(), 3);
        // "Fast delivery." is one unit spanning its text: its own vector is reused.
        assert_eq!(
            *e.1.lock().unwrap(),
            ["Great taste", "but it arrived crushed in the box."]
        );
        let ids: Vec<i64> = docs.iter().map(|d| d.0).collect();
        let units = store.units_of(&ids).unwrap();
        let a = &units[&docs[0].0];
        assert_eq!(a.len(), 2);
        assert_eq!(
            &docs[0].1[a[1].start..a[1].end],
            "but it arrived crushed in the box."
        );
        assert_eq!(a[1].idx, 1);
        let want = crate::embed::HashEmbedder::new()
            .embed(&["but it arrived crushed in the box."], TextKind::Passage)
            .unwrap()
            .remove(0);
        assert_eq!(a[1].vector, want);
        assert_eq!(units[&docs[1].0][0].vector, own[1]);
        assert!(
            units[&docs[2].0].is_empty(),
            "no word, no unit, marked done"
        );

        // Nothing new: nothing embedded, nothing stored.
        e.1.lock().unwrap().clear();
        assert_eq!(ensure_units(&mut store, &e, &input, &p).unwrap(), 0);
        assert!(e.1.lock().unwrap().is_empty());

        // One verbatim changes: only its units are made again.
        let changed = put(
            &mut store,
            &[("b", "Fast delivery, however the courier was rude to me.")],
        );
        assert_eq!(changed[0].0, docs[1].0);
        assert!(
            store.units_of(&[docs[1].0]).unwrap().is_empty(),
            "stale units are not current"
        );
        let input2: Vec<UnitDoc<'_>> = vec![
            (docs[0].0, docs[0].1.as_str(), None),
            (changed[0].0, changed[0].1.as_str(), None),
            (docs[2].0, docs[2].1.as_str(), None),
        ];
        assert_eq!(ensure_units(&mut store, &e, &input2, &p).unwrap(), 2);
        assert_eq!(
            *e.1.lock().unwrap(),
            ["Fast delivery,", "however the courier was rude to me."]
        );
        assert_eq!(store.units_of(&[docs[1].0]).unwrap()[&docs[1].0].len(), 2);

        // A large ask scans the table instead of looking each verbatim up: the same answer
        // (stale rows, the "no unit" marker, docs not asked for and docs without units alike).
        let stale = put(&mut store, &[("a", "Great taste, changed since.")]);
        assert_eq!(stale[0].0, docs[0].0);
        let extra = put(&mut store, &[("d", "Never split.")]);
        for ask in [
            vec![docs[0].0, docs[1].0, docs[2].0, extra[0].0],
            vec![docs[2].0, docs[1].0],
            vec![docs[1].0],
            vec![],
        ] {
            let scanned = store.scan_units(&ask).unwrap();
            assert_eq!(scanned, store.lookup_units(&ask).unwrap(), "{ask:?}");
            assert_eq!(scanned, store.units_of(&ask).unwrap(), "{ask:?}");
        }
        let mut current: Vec<i64> = store.scan_units(&ids).unwrap().into_keys().collect();
        current.sort();
        assert_eq!(current, [docs[1].0, docs[2].0]);
    }

    #[test]
    fn mentions_are_not_embedded_emails_and_bare_mentions_are() {
        assert_eq!(
            embed_input("@united you lost my bag @SouthwestAir_2 again"),
            "you lost my bag again"
        );
        assert_eq!(embed_input("thanks @JetBlue!"), "thanks !");
        // Not a mention: an email address, a lone @, a unit that is only handles.
        for same in [
            "mail a@b.com today",
            "meet @ 5pm",
            "@united @delta",
            "no handle here",
        ] {
            assert!(
                matches!(embed_input(same), std::borrow::Cow::Borrowed(t) if t == same),
                "{same}"
            );
        }
    }

    /// Each text's whole-text vector, as ingest stores it (the hash embedder).
    fn whole_text_vectors(texts: &[(&str, &str)]) -> Vec<Vec<f32>> {
        texts
            .iter()
            .map(|t| {
                crate::embed::HashEmbedder::new()
                    .embed(&[t.1], TextKind::Passage)
                    .unwrap()
                    .remove(0)
            })
            .collect()
    }

    /// `ensure_units`' input: each stored doc with its text and whole-text vector.
    fn with_vectors<'a>(docs: &'a [(i64, String)], own: &'a [Vec<f32>]) -> Vec<UnitDoc<'a>> {
        docs.iter()
            .zip(own)
            .map(|((d, t), v)| (*d, t.as_str(), Some(v.as_slice())))
            .collect()
    }

    #[test]
    fn units_are_embedded_without_mentions_and_made_again_when_the_rule_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let texts = [("a", "@united lost my bag again"), ("b", "Fast delivery.")];
        let docs = put(&mut store, &texts);
        let own = whole_text_vectors(&texts);
        let input = with_vectors(&docs, &own);
        let e = Counting(crate::embed::HashEmbedder::new(), Default::default());
        let p = crate::progress::NoProgress;
        assert_eq!(ensure_units(&mut store, &e, &input, &p).unwrap(), 2);
        // The tweet is one unit spanning its text, but its handle is masked: embedded afresh,
        // without the handle (its whole-text vector is not reused); the review's is reused.
        assert_eq!(*e.1.lock().unwrap(), ["lost my bag again"]);
        let units = store.units_of(&[docs[0].0]).unwrap();
        let u = &units[&docs[0].0][0];
        assert_eq!(&docs[0].1[u.start..u.end], "@united lost my bag again");
        assert_ne!(u.vector, own[0]);
        assert_eq!(
            store.meta(UNIT_INPUT_KEY).unwrap().as_deref(),
            Some(UNIT_INPUT)
        );

        // Same rule: nothing again. Units stored under an older rule: all made again, once.
        e.1.lock().unwrap().clear();
        assert_eq!(ensure_units(&mut store, &e, &input, &p).unwrap(), 0);
        store.set_meta(UNIT_INPUT_KEY, "whole-unit-0").unwrap();
        assert_eq!(ensure_units(&mut store, &e, &input, &p).unwrap(), 2);
        assert_eq!(*e.1.lock().unwrap(), ["lost my bag again"]);
        assert_eq!(ensure_units(&mut store, &e, &input, &p).unwrap(), 0);
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => proptest::sample::select(vec![
                "taste", "great", "arrived", "crushed", "box", "not", "bad", "the", "café",
                "emballage", "déchiré", "2.5", "it's", "l’arrivée", "very", "price", "x",
            ]).prop_map(String::from),
            2 => proptest::sample::select(vec![
                "but", "however,", "although", "though", "yet", "while", "except", "mais",
                "par contre", "sauf que", "bien que", "on the other hand", "but also", "whereas",
            ]).prop_map(String::from),
            2 => proptest::sample::select(vec![
                ".", "!", "?", "…", ",", ";", "\n", "<br>", "<BR />", "\r\n", "  ", "\t", "<b",
                "..", "?!",
            ]).prop_map(String::from),
        ]
    }

    proptest! {
        #[test]
        fn units_slice_the_text_exactly(pieces in proptest::collection::vec((piece(), any::<bool>()), 0..40)) {
            let text: String = pieces.iter().map(|(p, space)| if *space { format!("{p} ") } else { p.clone() }).collect();
            let units = split(&text);
            let mut last = 0;
            for u in &units {
                prop_assert!(u.start >= last && u.start < u.end && u.end <= text.len(), "{units:?} in {text:?}");
                prop_assert!(text.is_char_boundary(u.start) && text.is_char_boundary(u.end));
                let s = u.slice(&text);
                prop_assert_eq!(s, s.trim());
                last = u.end;
            }
            // Every word outside <br> tags lies inside one unit.
            let mut masked = text.clone().into_bytes();
            let mut i = 0;
            while i < text.len() {
                if let Some(n) = br_tag(&text, i) {
                    masked[i..i + n].fill(b' ');
                    i += n;
                } else {
                    i += 1;
                }
            }
            let masked = String::from_utf8(masked).unwrap();
            let mut pos = 0;
            for w in masked.split_whitespace() {
                let at = pos + masked[pos..].find(w).unwrap();
                pos = at + w.len();
                prop_assert!(
                    units.iter().any(|u| u.start <= at && at + w.len() <= u.end),
                    "word {w:?} at {at} not in a unit: {units:?} of {text:?}"
                );
            }
        }
    }
}
