//! Sentiment per opinion unit, and a verbatim's sentiment derived from its units.
//!
//! A unit ([`crate::themes::units`]) says one thing, so it gets one polarity. Its score blends
//! the logistic head on the unit's embedding with the negation-aware lexicon rule
//! ([`super::rule`]):
//!
//! * no negation cue in the unit: `(head + 0.5·rule) / 1.5`;
//! * a negation cue: `(0.3·head + rule) / 1.3` — the embedding barely registers "not", so the
//!   rule leads;
//! * then, where the head has a [`super::Subjectivity`] part: a unit that states no opinion
//!   (P(opinion) under its threshold and no lexicon word reading ≥ [`CLEAR_WORD`]) keeps only
//!   `damp` of that score, so a factual mention ("I bought it for my dog") is neutral.
//!
//! Weights chosen on the `dev` half of SemEval-2014 laptops (accuracy on aspect-term polarity;
//! the `test` half and UCI / Amazon were not used to choose them; `benches/sentiment.rs`,
//! BENCHMARKS.md). The polarity uses the head's neutral band on the blended score.
//!
//! **A verbatim from its units**: the score is the mean of the unit scores weighted by unit
//! length in bytes (a long unit says more than "Thanks."); it is **mixed** when one unit scores
//! ≥ [`MIXED_STRENGTH`] and another ≤ −[`MIXED_STRENGTH`] ("great taste but arrived crushed").
//! The polarity is that of the weighted score (with the head's neutral band), so a mixed
//! verbatim still leans one way; `mixed` says that both sides are strong.

use serde::{Deserialize, Serialize};

use super::rule;
use super::SentimentHead;
use crate::themes::Polarity;

/// Weight of the rule beside the head when the unit has no negation cue.
pub const RULE_WEIGHT: f32 = 0.5;
/// Weight of the head beside the rule when the unit has a negation cue.
pub const HEAD_WEIGHT_NEGATED: f32 = 0.3;
/// A lexicon reading at least this strong (one word of weight ≥ 1.3: "good", "broken") keeps a
/// unit's polarity whatever the subjectivity head says.
pub const CLEAR_WORD: f32 = 0.3;
/// A unit at least this strong on each side makes its verbatim mixed.
pub const MIXED_STRENGTH: f32 = 0.5;

/// The sentiment of one opinion unit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitSentiment {
    /// Positive / neutral / negative.
    pub polarity: Polarity,
    /// Score in [−1, 1].
    pub score: f32,
}

/// A verbatim's sentiment, derived from its units by [`of_verbatim`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerbatimSentiment {
    /// Polarity of the length-weighted score.
    pub polarity: Polarity,
    /// Length-weighted mean of the unit scores, in [−1, 1].
    pub score: f32,
    /// Strong units of both signs.
    pub mixed: bool,
}

/// The sentiment of one unit: `text` is the unit's text, `vector` its embedding by the model
/// the head was trained for.
pub fn unit(head: &SentimentHead, text: &str, vector: &[f32]) -> UnitSentiment {
    let r = rule::score(text);
    let mut score = blend(head, &r, vector);
    if let Some(sub) = &head.subjectivity {
        if r.score.abs() < CLEAR_WORD && sub.p_opinion(vector) < sub.threshold {
            score *= sub.damp;
        }
    }
    UnitSentiment {
        polarity: head.polarity(score),
        score,
    }
}

/// The polarity a text *would* have if it states an opinion: the head and the rule blended as
/// in [`unit`], without the subjectivity part. For a search query ("service client réactif",
/// "battery life is too short"): it describes the opinion sought, often in the short, factual
/// shape the subjectivity part reads as no opinion, so [`unit`] would read it neutral and the
/// search would lose the polarity it asked for (measured on the judged demo queries:
/// BENCHMARKS.md, "A neutral class for unit sentiment").
pub fn stated(head: &SentimentHead, text: &str, vector: &[f32]) -> UnitSentiment {
    let score = blend(head, &rule::score(text), vector);
    UnitSentiment {
        polarity: head.polarity(score),
        score,
    }
}

/// The head on `vector` blended with the rule's reading `r` of the same text, in [−1, 1]: the
/// rule leads where the embedding reads poorly (a negation, a wait said by its length).
fn blend(head: &SentimentHead, r: &rule::RuleScore, vector: &[f32]) -> f32 {
    let h = head.score(vector);
    let score = if r.negation || r.waiting {
        (HEAD_WEIGHT_NEGATED * h + r.score) / (HEAD_WEIGHT_NEGATED + 1.0)
    } else {
        (h + RULE_WEIGHT * r.score) / (1.0 + RULE_WEIGHT)
    };
    score.clamp(-1.0, 1.0)
}

/// A verbatim's sentiment from its units' sentiments and their lengths in bytes (same order).
/// No unit (an empty text) is neutral with score 0; zero lengths count as one byte.
pub fn of_verbatim(
    head: &SentimentHead,
    units: &[UnitSentiment],
    lens: &[usize],
) -> VerbatimSentiment {
    assert_eq!(units.len(), lens.len(), "one length per unit");
    let (mut sum, mut weight) = (0f64, 0f64);
    for (u, &l) in units.iter().zip(lens) {
        let w = l.max(1) as f64;
        sum += w * u.score as f64;
        weight += w;
    }
    let score = if weight > 0.0 {
        ((sum / weight) as f32).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let mixed = units.iter().any(|u| u.score >= MIXED_STRENGTH)
        && units.iter().any(|u| u.score <= -MIXED_STRENGTH);
    VerbatimSentiment {
        polarity: head.polarity(score),
        score,
        mixed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A 2-d head: the score is the first coordinate's sign, strongly.
    fn head() -> SentimentHead {
        SentimentHead::for_test("t", vec![4.0, 0.0], 0.0)
    }

    #[test]
    fn a_negation_lets_the_rule_lead() {
        // The embedding says "damaged" (negative); the rule reads "not damaged".
        let u = unit(&head(), "The package was not damaged.", &[-0.3, 0.0]);
        assert_ne!(u.polarity, Polarity::Negative, "{u:?}");
        // Without a negation the head leads.
        let u = unit(&head(), "The package was damaged.", &[-0.3, 0.0]);
        assert_eq!(u.polarity, Polarity::Negative);
        let u = unit(&head(), "The screen is fine", &[0.8, 0.0]);
        assert_eq!(u.polarity, Polarity::Positive);
    }

    #[test]
    fn a_unit_that_states_no_opinion_is_neutral() {
        // P(opinion) reads the second coordinate: −5 → ~0.007, +5 → ~0.993.
        let mut h = head();
        h.subjectivity = Some(crate::sentiment::Subjectivity {
            weights: vec![0.0, 1.0],
            bias: 0.0,
            threshold: 0.4,
            damp: 0.3,
            trained_on: String::new(),
        });
        // The polarity head reads a factual mention as negative (−0.6 > the band)…
        let plain = unit(&head(), "I bought this for my dog.", &[-0.3, -5.0]);
        assert_eq!(plain.polarity, Polarity::Negative, "{plain:?}");
        // …the subjectivity head says it states no opinion: neutral.
        let u = unit(&h, "I bought this for my dog.", &[-0.3, -5.0]);
        assert_eq!(u.polarity, Polarity::Neutral, "{u:?}");
        assert!(u.score < 0.0, "it still leans the head's way: {u:?}");
        // An opinion the subjectivity head sees keeps its polarity.
        let u = unit(&h, "It tastes like cardboard.", &[-0.3, 5.0]);
        assert_eq!(u.polarity, Polarity::Negative, "{u:?}");
        // A clear lexicon word keeps it whatever the subjectivity head says.
        let u = unit(&h, "The box arrived broken.", &[-0.3, -5.0]);
        assert_eq!(u.polarity, Polarity::Negative, "{u:?}");
    }

    #[test]
    fn verbatim_is_length_weighted_and_mixed_when_both_sides_are_strong() {
        let h = head();
        let pos = UnitSentiment {
            polarity: Polarity::Positive,
            score: 0.8,
        };
        let neg = UnitSentiment {
            polarity: Polarity::Negative,
            score: -0.6,
        };
        let v = of_verbatim(&h, &[pos, neg], &[10, 30]);
        assert!((v.score - (0.8 * 10.0 - 0.6 * 30.0) / 40.0).abs() < 1e-6);
        assert_eq!(v.polarity, Polarity::Negative);
        assert!(v.mixed);
        let v = of_verbatim(&h, &[pos], &[5]);
        assert!(!v.mixed);
        assert_eq!(v.polarity, Polarity::Positive);
        let v = of_verbatim(&h, &[], &[]);
        assert_eq!(
            (v.score, v.polarity, v.mixed),
            (0.0, Polarity::Neutral, false)
        );
    }

    proptest! {
        /// The verbatim score lies between its units' extremes, within [−1, 1]; unit scores are
        /// in [−1, 1] whatever the text and vector.
        #[test]
        fn scores_stay_bounded(
            parts in prop::collection::vec(("[a-z' ,.]{0,40}", -3f32..3f32, 0usize..200), 1..6)
        ) {
            let h = head();
            let units: Vec<UnitSentiment> =
                parts.iter().map(|(t, x, _)| unit(&h, t, &[*x, 0.0])).collect();
            let lens: Vec<usize> = parts.iter().map(|p| p.2).collect();
            for u in &units {
                prop_assert!((-1.0..=1.0).contains(&u.score));
                prop_assert_eq!(u.polarity, h.polarity(u.score));
            }
            let v = of_verbatim(&h, &units, &lens);
            let lo = units.iter().map(|u| u.score).fold(f32::INFINITY, f32::min);
            let hi = units.iter().map(|u| u.score).fold(f32::NEG_INFINITY, f32::max);
            prop_assert!(v.score >= lo - 1e-5 && v.score <= hi + 1e-5, "{v:?} {lo} {hi}");
        }
    }
}
