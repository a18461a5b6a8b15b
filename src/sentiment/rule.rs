//! A lexicon score with a negation scope rule, for what a sentence embedding reads poorly:
//! negation. "The package was not damaged" embeds close to "the package was damaged" (the
//! MiniLM head scores both negative), so the head alone turns a reassurance into a damage
//! complaint. A small hand-written EN/FR lexicon (`lexicon.tsv`, written for this project)
//! plus a scope rule knows that `not` / `n't` / `never` / `without` / `no` / `ne … pas` /
//! `sans` / `jamais` / `aucun` changes the words after it.
//!
//! Rule: tokens are lower-cased words; a negation cue opens a scope over the next
//! [`SCOPE`] words (ended early by `,;:!?()`). French `ne`/`n'` opens the scope at the closing
//! `pas` / `jamais` / `rien` / `plus`, so "n'est pas bon" negates "bon"; a verb between them
//! ("ne fonctionne pas") is not in the lexicon's way either. In scope, a positive word flips to
//! [`FLIP_POSITIVE`]× its weight ("not good" is a complaint) and a negative word to
//! [`FLIP_NEGATIVE`]× ("not damaged" is a mild reassurance, not praise). The sum `s` is squashed
//! to `s / √(s² + 15)` in (−1, 1), as VADER does.
//!
//! The flip factors were chosen on the `dev` half of SemEval-2014 laptops
//! (`benches/peers/proto/unit_sentiment.py`); the lexicon was written before reading it.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Words after a negation cue that it reaches.
pub const SCOPE: usize = 3;
/// Factor on a positive word in a negation scope.
pub const FLIP_POSITIVE: f32 = -0.8;
/// Factor on a negative word in a negation scope.
pub const FLIP_NEGATIVE: f32 = -0.4;
/// Squash constant: `s / √(s² + ALPHA)`.
const ALPHA: f32 = 15.0;

/// Cues that negate the next words on their own.
const CUES: &[&str] = &[
    "not", "no", "never", "without", "nothing", "none", "nor", "cannot", "neither", "nobody",
    "pas", "sans", "jamais", "aucun", "aucune", "rien", "personne", "ni",
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
}

/// Tokens: lower-cased letter runs (apostrophes inside words kept, `n't` kept attached) and
/// the punctuation that ends a negation scope.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            out.push(std::mem::take(cur));
        }
    };
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphabetic() {
            cur.extend(c.to_lowercase());
        } else if (c == '\'' || c == '’')
            && !cur.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_alphabetic())
        {
            // "don't" stays one token; French elision "n'est" / "l'emballage" splits after it.
            if chars.get(i + 1).is_some_and(|n| *n == 't' || *n == 'T')
                && cur.ends_with('n')
                && chars.get(i + 2).is_none_or(|n| !n.is_alphabetic())
            {
                cur.push('\'');
            } else {
                flush(&mut cur, &mut out);
            }
        } else {
            flush(&mut cur, &mut out);
            if matches!(c, ',' | ';' | ':' | '!' | '?' | '(' | ')' | '.') {
                out.push(c.to_string());
            }
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// Scores `text` (one unit) with the lexicon and the negation rule.
pub fn score(text: &str) -> RuleScore {
    let lex = lexicon();
    let mut total = 0f32;
    let mut left = 0usize; // words of negation scope still to come
    let mut french_ne = false; // saw "ne"/"n'", waiting for "pas"/"jamais"/…
    let mut negation = false;
    for t in tokens(text) {
        if t.chars().all(|c| !c.is_alphabetic()) {
            left = 0;
            french_ne = false;
            continue;
        }
        if t == "ne" || t == "n" {
            french_ne = true;
            negation = true;
            continue;
        }
        let closes_ne = french_ne && matches!(t.as_str(), "pas" | "jamais" | "rien" | "plus");
        // "plus" alone is "more", not a negation.
        if closes_ne || (t != "plus" && CUES.contains(&t.as_str())) || t.ends_with("n't") {
            left = SCOPE;
            french_ne = false;
            negation = true;
            continue;
        }
        if let Some(&w) = lex.get(&t) {
            let w = if left > 0 {
                w * if w > 0.0 {
                    FLIP_POSITIVE
                } else {
                    FLIP_NEGATIVE
                }
            } else {
                w
            };
            total += w;
        }
        left = left.saturating_sub(1);
    }
    RuleScore {
        score: total / (total * total + ALPHA).sqrt(),
        negation,
    }
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
    fn tokens_keep_nt_and_split_french_elision() {
        assert_eq!(tokens("Don't l'emballage"), ["don't", "l", "emballage"]);
        assert_eq!(tokens("n'est pas, ok"), ["n", "est", "pas", ",", "ok"]);
    }

    #[test]
    fn score_is_bounded() {
        let long = "great ".repeat(500);
        let s = score(&long).score;
        assert!(s > 0.99 && s < 1.0);
        assert_eq!(score("").score, 0.0);
    }
}
