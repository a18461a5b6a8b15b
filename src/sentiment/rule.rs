//! A lexicon score with a negation scope rule, for what a sentence embedding reads poorly:
//! negation. "The package was not damaged" embeds close to "the package was damaged" (the
//! MiniLM head scores both negative), so the head alone turns a reassurance into a damage
//! complaint. A small hand-written EN/FR lexicon (`lexicon.tsv`, written for this project)
//! plus a scope rule knows that `not` / `n't` / `never` / `without` / `no` / `ne … pas` /
//! `sans` / `jamais` / `aucun` changes the words after it.
//!
//! Rule: tokens are lower-cased words; a negation cue opens a scope over the next
//! [`SCOPE`] words (ended early by `,;:!?()`). French `ne`/`n'` opens the scope at the closing
//! `pas` / `jamais` / `rien` / `plus`, so "n'est pas bon" negates "bon"; the score also reads
//! the words between them negated ("ne manque rien", "ne recommande pas"), the text index not. In scope, a positive word flips to
//! [`FLIP_POSITIVE`]× its weight ("not good" is a complaint) and a negative word to
//! [`FLIP_NEGATIVE`]× ("not damaged" is a mild reassurance, not praise). The sum `s` is squashed
//! to `s / √(s² + 15)` in (−1, 1), as VADER does.
//!
//! The flip factors were chosen on the `dev` half of SemEval-2014 laptops
//! (`benches/peers/proto/unit_sentiment.py`); the lexicon was written before reading it.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The rule's version, part of the identity of stored scores (`retrieve::head_id`): bump it
/// when the rule reads a text differently, so workspaces score their verbatims and units again.
/// 1: lexicon and negation scopes; 2: waits said by their length ([`waiting`]).
pub const VERSION: u32 = 2;

/// Words after a negation cue that it reaches.
pub const SCOPE: usize = 3;
/// Factor on a positive word in a negation scope.
pub const FLIP_POSITIVE: f32 = -0.8;
/// Factor on a negative word in a negation scope.
pub const FLIP_NEGATIVE: f32 = -0.4;
/// Squash constant: `s / √(s² + ALPHA)`.
const ALPHA: f32 = 15.0;
/// Lexicon weight of a wait said with its length ("waited 45 minutes", "took three weeks",
/// "still haven't received"): as strong as "late" or "delayed". See [`waiting`].
pub const WAITING_WEIGHT: f32 = -2.0;

/// Cues that negate the next words on their own.
const CUES: &[&str] = &[
    "not", "no", "never", "without", "nothing", "none", "nor", "cannot", "neither", "nobody",
    "hardly", "pas", "sans", "jamais", "aucun", "aucune", "rien", "ni",
];

/// The lexicon: word → weight in [−3, 3].
fn lexicon() -> &'static HashMap<String, f32> {
    static LEX: OnceLock<HashMap<String, f32>> = OnceLock::new();
    LEX.get_or_init(|| {
        include_str!("lexicon.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (w, v) = l.split_once('\t')?;
                Some((w.to_string(), v.trim().parse().ok()?))
            })
            .collect()
    })
}

/// The rule's reading of one unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RuleScore {
    /// Squashed lexicon sum, in (−1, 1); 0 when no lexicon word is present.
    pub score: f32,
    /// Whether a negation cue occurs in the text (the head is then trusted less).
    pub negation: bool,
    /// Whether the text complains of a wait by its length ([`waiting`]): the embedding reads
    /// "I waited 45 minutes on hold" as a statement, so the head is trusted less here too.
    pub waiting: bool,
}

/// Whether `word` (any case) is an opinion word of the lexicon ("unhappy", "love", "déçu"): a
/// stance a question takes, not what it is about.
pub fn is_opinion_word(word: &str) -> bool {
    lexicon().contains_key(&word.to_lowercase())
}

/// Tokens: lower-cased letter runs (apostrophes inside words kept, `n't` kept attached) and
/// the punctuation that ends a negation scope.
#[cfg(test)]
fn tokens(text: &str) -> Vec<String> {
    tokens_at(text).into_iter().map(|t| t.0).collect()
}

/// [`tokens`] with the byte range each covers in `text`.
fn tokens_at(text: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0usize;
    let flush = |cur: &mut String, start: usize, end: usize, out: &mut Vec<_>| {
        if !cur.is_empty() {
            out.push((std::mem::take(cur), start, end));
        }
    };
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let next = |k: usize| chars.get(i + k).map(|p| p.1);
        if c.is_alphabetic() {
            if cur.is_empty() {
                start = at;
            }
            cur.extend(c.to_lowercase());
        } else if (c == '\'' || c == '’')
            && !cur.is_empty()
            && next(1).is_some_and(|n| n.is_alphabetic())
        {
            // "don't" stays one token; French elision "n'est" / "l'emballage" splits after it.
            if next(1).is_some_and(|n| n == 't' || n == 'T')
                && cur.ends_with('n')
                && next(2).is_none_or(|n| !n.is_alphabetic())
            {
                cur.push('\'');
            } else {
                flush(&mut cur, start, at, &mut out);
            }
        } else {
            flush(&mut cur, start, at, &mut out);
            if matches!(c, ',' | ';' | ':' | '!' | '?' | '(' | ')' | '.') {
                out.push((c.to_string(), at, at + c.len_utf8()));
            }
        }
    }
    flush(&mut cur, start, text.len(), &mut out);
    out
}

/// Words that end a negation scope like punctuation does: what follows a contrast is said
/// on its own ("not cheap but great").
const CONTRAST: &[&str] = &[
    "but",
    "however",
    "although",
    "though",
    "yet",
    "whereas",
    "mais",
    "cependant",
    "pourtant",
    "toutefois",
    "néanmoins",
    "alors",
];

/// One word of a text as the negation rule reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct ScopedWord {
    /// Lower-cased word.
    pub word: String,
    /// Byte range in the text.
    pub start: usize,
    /// End of the byte range.
    pub end: usize,
    /// Whether a negation cue before it reaches it.
    pub negated: bool,
    /// Whether it is itself a negation cue (`not`, `n't`, French `ne`/`pas`…).
    pub cue: bool,
    /// Whether it stands between French `ne` and the word that closes it, the verb of "il ne
    /// manque rien", "je ne recommande pas": the score reads it negated; the text index does
    /// not (its tokens stay what they were when the index was built).
    pub inside_ne: bool,
}

/// The negation scope rule, shared by the sentiment score and the text index: the words of
/// `text` (punctuation left out), each marked negated when a cue reaches it. A cue reaches the
/// next [`SCOPE`] words; punctuation (`,;:!?().`) or a contrast word ("but", "mais"…) ends the
/// scope early. French `ne`/`n'` opens the scope at the closing `pas` / `jamais` / `rien` /
/// `plus` / `personne` (alone, "plus" is "more" and "personne" "a person").
pub fn negation_scopes(text: &str) -> Vec<ScopedWord> {
    let mut out = Vec::new();
    let mut left = 0usize; // words of negation scope still to come
    let mut french_ne = false; // saw "ne"/"n'", waiting for "pas"/"jamais"/…
    let mut between: Vec<usize> = Vec::new(); // words since that "ne" (the verb: "ne manque rien")
    for (t, start, end) in tokens_at(text) {
        if t.chars().all(|c| !c.is_alphabetic()) || CONTRAST.contains(&t.as_str()) {
            left = 0;
            french_ne = false;
            between.clear();
            if t.chars().any(|c| c.is_alphabetic()) {
                out.push(ScopedWord {
                    word: t,
                    start,
                    end,
                    negated: false,
                    cue: false,
                    inside_ne: false,
                });
            }
            continue;
        }
        if t == "ne" || t == "n" {
            french_ne = true;
            between.clear();
            out.push(ScopedWord {
                word: t,
                start,
                end,
                negated: false,
                cue: true,
                inside_ne: false,
            });
            continue;
        }
        // "personne" closes "ne" ("je n'ai vu personne"); alone it is "a person".
        let closes_ne =
            french_ne && matches!(t.as_str(), "pas" | "jamais" | "rien" | "plus" | "personne");
        // "plus" alone is "more", not a negation.
        if closes_ne || (t != "plus" && CUES.contains(&t.as_str())) || t.ends_with("n't") {
            left = SCOPE;
            if closes_ne {
                // The words between "ne" and its closing word: "il ne manque rien" is no
                // complaint, "je ne recommande pas" no praise (read so by the score).
                for &i in &between {
                    out[i].inside_ne = true;
                }
            }
            between.clear();
            french_ne = false;
            out.push(ScopedWord {
                word: t,
                start,
                end,
                negated: false,
                cue: true,
                inside_ne: false,
            });
            continue;
        }
        if french_ne && between.len() < SCOPE {
            between.push(out.len());
        }
        out.push(ScopedWord {
            word: t,
            start,
            end,
            negated: left > 0,
            cue: false,
            inside_ne: false,
        });
        left = left.saturating_sub(1);
    }
    out
}

/// Scores `text` (one unit) with the lexicon and the negation rule.
pub fn score(text: &str) -> RuleScore {
    let lex = lexicon();
    let mut total = 0f32;
    let mut negation = false;
    let words = negation_scopes(text);
    let waiting = waiting(&words);
    if waiting {
        total += WAITING_WEIGHT;
    }
    for w in words {
        negation |= w.cue;
        if let Some(&v) = lex.get(&w.word) {
            total += if w.negated || w.inside_ne {
                v * if v > 0.0 {
                    FLIP_POSITIVE
                } else {
                    FLIP_NEGATIVE
                }
            } else {
                v
            };
        }
    }
    RuleScore {
        score: total / (total * total + ALPHA).sqrt(),
        negation,
        waiting,
    }
}

/// Words that say someone waited (accent-folded forms kept as written). "hold" counts after
/// "on" ("on hold"), "attente" after "en"; "sit" does not count (recipes: "let it sit for 10
/// minutes").
const WAIT_WORDS: &[&str] = &[
    "wait",
    "waits",
    "waited",
    "waiting",
    "stuck",
    "stranded",
    "attendre",
    "attends",
    "attend",
    "attendu",
    "attendue",
    "attendons",
    "attendez",
    "patienter",
    "patienté",
    "bloqué",
    "bloqués",
    "coincé",
    "coincés",
];
/// Words that say how long something took ("took three weeks"): only with a unit of days or
/// more, because minutes and hours are what cooking and assembly take.
const TOOK_WORDS: &[&str] = &["took", "take", "takes", "taking", "fallu", "faut", "mis"];
/// Units of time; `true` for a day or more.
const TIME_UNITS: &[(&str, bool)] = &[
    ("minute", false),
    ("minutes", false),
    ("min", false),
    ("mins", false),
    ("hour", false),
    ("hours", false),
    ("hr", false),
    ("hrs", false),
    ("heure", false),
    ("heures", false),
    ("day", true),
    ("days", true),
    ("jour", true),
    ("jours", true),
    ("week", true),
    ("weeks", true),
    ("semaine", true),
    ("semaines", true),
    ("month", true),
    ("months", true),
    ("mois", true),
    ("year", true),
    ("years", true),
    ("forever", true),
    ("ages", true),
    ("eternity", true),
    ("longtemps", true),
    ("éternité", true),
];
/// What a customer waits for and never gets: "never arrived", "never heard back", "jamais reçu".
const ARRIVAL_WORDS: &[&str] = &[
    "arrived",
    "arrive",
    "came",
    "come",
    "received",
    "receive",
    "got",
    "get",
    "showed",
    "delivered",
    "shipped",
    "heard",
    "responded",
    "replied",
    "answered",
    "called",
    "refunded",
    "reçu",
    "reçue",
    "arrivé",
    "arrivée",
    "livré",
    "livrée",
    "répondu",
    "remboursé",
    "rappelé",
];
/// Words before a length that make it short ("only took two days", "in just a week").
const SHORT: &[&str] = &[
    "only",
    "just",
    "less",
    "under",
    "within",
    "fewer",
    "seulement",
    "moins",
    "juste",
];
/// How far (in words) a length may sit from its wait word, either side ("waited 45 minutes",
/// "three hours of waiting").
const WAIT_REACH: usize = 5;

/// Whether `words` complain of a wait by its length, a complaint the lexicon has no word for
/// and the embedding reads as a statement of fact (measured: "Delivery took three weeks." and
/// "I waited 45 minutes on hold." read neutral with the subjectivity part):
///
/// * a wait word ([`WAIT_WORDS`], "on hold", "en attente") with a unit of time within
///   [`WAIT_REACH`] words either side — "waited 45 minutes", "three hours on hold";
/// * a took word ([`TOOK_WORDS`]) followed by days, weeks, months or years (plural: a length,
///   not a rate — "I take one a day") or "forever" — "took three weeks",
///   "il a fallu deux semaines" — unless a [`SHORT`] word comes with it ("only took two days");
/// * "never" / "jamais" before an arrival or a reply ([`ARRIVAL_WORDS`]: "never arrived",
///   "never heard back");
/// * "still" before a negation or a wait ("still haven't received", "still waiting"),
///   "toujours pas" / "toujours rien" / "toujours en attente" / "j'attends toujours".
///
/// A negated wait word ("didn't have to wait an hour") does not count.
pub fn waiting(words: &[ScopedWord]) -> bool {
    let w = |i: usize| words[i].word.as_str();
    let unit_at =
        |i: usize, long: bool| TIME_UNITS.iter().any(|(u, l)| *u == w(i) && (*l || !long));
    let short_between = |a: usize, b: usize| (a..b).any(|k| SHORT.contains(&w(k)));
    for i in 0..words.len() {
        let word = w(i);
        let prev = if i > 0 { w(i - 1) } else { "" };
        let is_wait = WAIT_WORDS.contains(&word)
            || (word == "hold" && prev == "on")
            || (word == "attente" && prev == "en");
        if is_wait && !words[i].negated {
            let lo = i.saturating_sub(WAIT_REACH);
            let hi = (i + WAIT_REACH + 1).min(words.len());
            if (lo..hi).any(|k| k != i && unit_at(k, false)) && !short_between(lo, hi) {
                return true;
            }
        }
        if TOOK_WORDS.contains(&word) && !words[i].negated {
            let hi = (i + WAIT_REACH + 1).min(words.len());
            // A length, not a rate: "took three weeks", not "I take one a day".
            let length = |k: usize| {
                unit_at(k, true)
                    && (w(k).ends_with('s') || matches!(w(k), "forever" | "eternity" | "éternité"))
            };
            if let Some(k) = (i + 1..hi).find(|&k| length(k)) {
                if !short_between(i.saturating_sub(2), k) {
                    return true;
                }
            }
        }
        // "never arrived", "never received my order", "jamais reçu" — but not "never
        // received such good service".
        if (word == "never" || word == "jamais")
            && words
                .get(i + 1)
                .is_some_and(|n| ARRIVAL_WORDS.contains(&n.word.as_str()))
            && !words
                .get(i + 2)
                .is_some_and(|n| matches!(n.word.as_str(), "such" | "so" | "anything" | "better"))
        {
            return true;
        }
        if word == "still" || word == "toujours" {
            let next = words.get(i + 1).map(|n| n.word.as_str()).unwrap_or("");
            let after = words.get(i + 2).map(|n| n.word.as_str()).unwrap_or("");
            let neg = words.get(i + 1).is_some_and(|n| n.cue);
            let wait = WAIT_WORDS.contains(&next)
                || (next == "on" && after == "hold")
                || (next == "en" && after == "attente");
            let fr = word == "toujours"
                && (matches!(next, "pas" | "rien") || wait || WAIT_WORDS.contains(&prev));
            if (word == "still" && (neg || wait)) || fr {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexicon_parses_every_line() {
        let lines = include_str!("lexicon.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        // Duplicated words across EN/FR ("excellent", "horrible") count once.
        assert!(
            lexicon().len() >= lines - 5,
            "{} of {lines}",
            lexicon().len()
        );
        assert!(lexicon().values().all(|v| (-3.0..=3.0).contains(v)));
    }

    #[test]
    fn negation_flips_or_softens_the_words_in_its_scope() {
        assert!(score("The package was damaged.").score < 0.0);
        let not_damaged = score("The package was not damaged.");
        assert!(not_damaged.negation);
        assert!(not_damaged.score > 0.0 && not_damaged.score < 0.4);
        assert!(score("This is good.").score > 0.0);
        assert!(score("This isn't good.").score < 0.0);
        assert!(score("This is not good at all").score < 0.0);
        assert!(score("It arrived without any damage").score > 0.0);
        // French: ne … pas around a verb or before the adjective.
        assert!(score("Le goût est bon.").score > 0.0);
        assert!(score("Le goût n'est pas bon.").score < 0.0);
        assert!(score("Le colis n’était pas abîmé.").score > 0.0);
        assert!(score("sans problème").score > 0.0);
        // A comma ends the scope: "not cheap, but great" keeps "great" positive.
        assert!(score("not cheap, great though").score > 0.0);
        // "plus" alone is not a negation.
        assert!(!score("plus rapide").negation);
    }

    #[test]
    fn french_says_missing_with_a_verb() {
        // "missing" reads as a complaint in English; French says it with "manquer" far more
        // often than with "manquant", and a clear word keeps a unit out of the subjectivity
        // damping (sentiment::unit::CLEAR_WORD).
        let s = score("Il manquait la boisson et le dessert dans ma commande.").score;
        assert!(s <= -crate::sentiment::unit::CLEAR_WORD, "{s}");
        assert!(score("Il manque une pièce").score <= -crate::sentiment::unit::CLEAR_WORD);
        assert!(score("Il ne manque rien").score > 0.0);
        assert!(score("Je ne recommande pas ce vendeur").score < 0.0);
    }

    #[test]
    fn a_wait_said_by_its_length_is_a_complaint() {
        let waits = |t: &str| waiting(&negation_scopes(t));
        for t in [
            "Delivery took three weeks.",
            "It took forever to get a response.",
            "I waited 45 minutes on hold.",
            "Three hours on hold and no answer.",
            "We had to wait 2 hours for our bags.",
            "Still waiting for my refund.",
            "I still haven't received my order.",
            "My bag still hasn't arrived.",
            "The package never arrived.",
            "J'attends ma commande depuis trois semaines.",
            "Je n'ai toujours pas reçu mon colis.",
            "J'attends toujours ma commande.",
            "Il a fallu deux semaines pour la livraison.",
            "Toujours en attente du remboursement.",
        ] {
            assert!(waits(t), "{t}");
            assert!(score(t).score <= -crate::sentiment::unit::CLEAR_WORD, "{t}");
        }
        for t in [
            // Recipes and assembly take minutes and hours.
            "It cooks in fifteen minutes.",
            "Took 20 minutes to cook.",
            "Let it sit for 10 minutes.",
            // Short, negated, or no length at all.
            "It only took two days to arrive.",
            "Arrived in just a week.",
            "I didn't have to wait an hour.",
            "It didn't take long at all.",
            "I can't wait to try the other flavours.",
            "I have been a customer for years.",
            "I take one capsule a day.",
            "We met two days later.",
            "The tea is still good after a year.",
            "I've never received such good service.",
            "Il est toujours aussi bon.",
        ] {
            assert!(!waits(t), "{t}");
        }
    }

    #[test]
    fn tokens_keep_nt_and_split_french_elision() {
        assert_eq!(tokens("Don't l'emballage"), ["don't", "l", "emballage"]);
        assert_eq!(tokens("n'est pas, ok"), ["n", "est", "pas", ",", "ok"]);
        let at = tokens_at("Ça n’est pas");
        assert_eq!(at[0], ("ça".to_string(), 0, 3));
        assert_eq!(&"Ça n’est pas"[at[2].1..at[2].2], "est");
    }

    #[test]
    fn scopes_end_at_punctuation_contrast_words_and_after_three_words() {
        let negated = |t: &str| -> Vec<String> {
            negation_scopes(t)
                .into_iter()
                .filter(|w| w.negated)
                .map(|w| w.word)
                .collect()
        };
        assert_eq!(negated("not damaged at all"), ["damaged", "at", "all"]);
        assert_eq!(negated("not cheap but great"), ["cheap"]);
        assert_eq!(negated("no damage, great"), ["damage"]);
        assert_eq!(
            negated("it wasn't broken in any way"),
            ["broken", "in", "any"]
        );
        assert_eq!(negated("hardly edible"), ["edible"]);
        assert_eq!(negated("le colis n'est pas abîmé"), ["abîmé"]);
        assert_eq!(negated("pas cher mais bon"), ["cher"]);
        assert_eq!(negated("sans aucun problème"), ["problème"]);
        assert!(negated("plus rapide").is_empty());
    }

    #[test]
    fn score_is_bounded() {
        let long = "great ".repeat(500);
        let s = score(&long).score;
        assert!(s > 0.99 && s < 1.0);
        assert_eq!(score("").score, 0.0);
    }
}
