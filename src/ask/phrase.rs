//! Phrases matched as written: a name ("Trader Joe's") or a comparison's side ("green tea").
//!
//! Why not the counting rule's "every stemmed word present": that rule counted "Trader Joe's"
//! as the words "trader" and "s" anywhere in a review (28 matches where 13 reviews say
//! "trader"), and would count "green tea" in a review about green beans and black tea. A phrase
//! matches where its terms come **in order, adjacent**, under the English or the French analysis
//! of the index (lower-cased, stemmed, accents folded — so "teas" matches "tea", "Café" matches
//! "cafe"); apostrophes of any kind (`'`, `’`, `ʼ`) split words the same way in the phrase and
//! the text. The index marks words under a negation ("not green tea") with a prefix; that mark
//! is removed here: "no green tea flavour" still mentions green tea.

use crate::index::text::{tokens, NEGATED};
use crate::lang::Lang;

/// A phrase, analysed both ways.
#[derive(Clone, Debug)]
pub struct Phrase {
    /// As the user wrote it.
    pub written: String,
    en: Vec<String>,
    fr: Vec<String>,
}

/// The index terms of `text` under `lang`'s analysis, the negation mark removed.
pub(super) fn terms(lang: Lang, text: &str) -> Vec<String> {
    tokens(lang, &normalise(text))
        .into_iter()
        .map(|t| t.0.strip_prefix(NEGATED).map(str::to_string).unwrap_or(t.0))
        .collect()
}

/// Every apostrophe as `'`.
fn normalise(s: &str) -> String {
    s.replace(['’', '‘', 'ʼ', '`'], "'")
}

impl Phrase {
    /// The phrase `written`.
    pub fn new(written: &str) -> Phrase {
        Phrase {
            written: written.trim().to_string(),
            en: terms(Lang::En, written),
            fr: terms(Lang::Fr, written),
        }
    }

    /// True when the phrase has no term (nothing to match).
    pub fn is_empty(&self) -> bool {
        self.en.is_empty() && self.fr.is_empty()
    }

    /// Does `text` contain the phrase (adjacent terms, in order, under either analysis)?
    pub fn matches(&self, text: &str) -> bool {
        self.matches_terms(&Terms::of(text))
    }

    /// [`Self::matches`] on a text analysed once ([`Terms::of`]) for several phrases.
    pub fn matches_terms(&self, t: &Terms) -> bool {
        let within =
            |p: &[String], text: &[String]| !p.is_empty() && text.windows(p.len()).any(|w| w == p);
        within(&self.en, &t.en) || within(&self.fr, &t.fr)
    }
}

/// A text's terms under both analyses.
pub struct Terms {
    en: Vec<String>,
    fr: Vec<String>,
}

impl Terms {
    /// Analyses `text` both ways.
    pub fn of(text: &str) -> Terms {
        Terms {
            en: terms(Lang::En, text),
            fr: terms(Lang::Fr, text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_as_written_with_apostrophes_normalised() {
        let p = Phrase::new("Trader Joe's");
        assert!(p.matches("I buy it at Trader Joe’s every week."));
        assert!(p.matches("trader joe's has it cheaper"));
        // The words apart are not the name.
        assert!(!p.matches("My trader said it's Joe's favourite."));
        assert!(!p.matches("A trader sells these."));
    }

    #[test]
    fn sides_match_in_order_stemmed_and_under_negation() {
        let p = Phrase::new("green tea");
        assert!(p.matches("Green teas are my favourite."));
        assert!(p.matches("There is no green tea flavour at all."));
        assert!(!p.matches("Green beans and black tea."));
        assert!(Phrase::new("café").matches("Un cafe trop amer."));
        assert!(Phrase::new("   ").is_empty());
    }
}
