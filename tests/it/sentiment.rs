//! Sentiment per opinion unit with the real models and shipped heads (issue 14, requirement 2):
//! negation ("not damaged" is no damage complaint), contrast (one verbatim, two units of
//! opposite sign), French, and the verbatim's sentiment derived from its units.

use std::path::Path;

use verbatim::embed::{EmbedOptions, Embedder, SentenceTransformer, TextKind};
use verbatim::sentiment::{of_verbatim, unit, SentimentHead, UnitSentiment};
use verbatim::themes::units;
use verbatim::themes::Polarity;

use crate::common::repo;

fn load(name: &str) -> (SentenceTransformer, SentimentHead) {
    let dir = repo().join("models").join(name);
    assert!(
        dir.join("model.safetensors").is_file(),
        "{name} is missing from {}: run `make models` first",
        dir.display()
    );
    let model = SentenceTransformer::load(&dir, &EmbedOptions::default()).unwrap();
    let (head, _) = SentimentHead::load(
        &SentimentHead::path_for(Path::new(&dir)),
        model.fingerprint(),
    )
    .unwrap();
    (model, head)
}

/// Splits `text` into units and scores each: (unit text, sentiment).
fn units_of<'a>(
    model: &SentenceTransformer,
    head: &SentimentHead,
    text: &'a str,
) -> Vec<(&'a str, UnitSentiment)> {
    let spans = units::split(text);
    let texts: Vec<&str> = spans.iter().map(|s| s.slice(text)).collect();
    let vecs = model.embed(&texts, TextKind::Passage).unwrap();
    texts
        .iter()
        .zip(&vecs)
        .map(|(t, v)| (*t, unit(head, t, v)))
        .collect()
}

#[test]
fn negation_is_not_a_complaint_and_contrast_gives_two_units_of_opposite_sign() {
    let (model, head) = load("all-MiniLM-L6-v2");
    // The head alone reads "not damaged" as a damage complaint; the unit score must not.
    let u = units_of(&model, &head, "The package was not damaged.");
    assert_eq!(u.len(), 1);
    let v = model
        .embed(&["The package was not damaged."], TextKind::Passage)
        .unwrap();
    assert!(
        head.score(&v[0]) < -0.5,
        "the head alone reads a complaint here"
    );
    assert_ne!(u[0].1.polarity, Polarity::Negative, "{u:?}");
    let damaged = units_of(&model, &head, "The package was damaged.");
    assert_eq!(damaged[0].1.polarity, Polarity::Negative, "{damaged:?}");
    let u = units_of(&model, &head, "The screen is not good.");
    assert_eq!(u[0].1.polarity, Polarity::Negative, "{u:?}");

    let text = "Great taste but it arrived crushed.";
    let u = units_of(&model, &head, text);
    assert_eq!(u.len(), 2, "{u:?}");
    assert_eq!(u[0].1.polarity, Polarity::Positive, "{u:?}");
    assert_eq!(u[1].1.polarity, Polarity::Negative, "{u:?}");
    // The verbatim: both sides are strong, so it is mixed, and its score lies between them.
    let lens: Vec<usize> = u.iter().map(|(t, _)| t.len()).collect();
    let s: Vec<UnitSentiment> = u.iter().map(|(_, s)| *s).collect();
    let v = of_verbatim(&head, &s, &lens);
    assert!(v.mixed, "{v:?} from {u:?}");
    assert!(v.score > s[1].score && v.score < s[0].score);
}

#[test]
fn french_contrast_gives_a_positive_then_a_negative_unit() {
    let (model, head) = load("multilingual-e5-small");
    let u = units_of(
        &model,
        &head,
        "Le goût est bon mais la livraison était en retard.",
    );
    assert_eq!(u.len(), 2, "{u:?}");
    assert_eq!(u[0].1.polarity, Polarity::Positive, "{u:?}");
    assert_eq!(u[1].1.polarity, Polarity::Negative, "{u:?}");
    let u = units_of(&model, &head, "Le colis n'était pas abîmé.");
    assert_ne!(u[0].1.polarity, Polarity::Negative, "{u:?}");
}

/// The shipped heads carry the subjectivity part, and with it a factual unit is neutral (the
/// polarity head alone read these as negative or positive: "I ordered…" −0.29, "My husband
/// uses it…" +0.33) while a clear complaint stays negative. Sentences written for this test,
/// not in `data/neutral_sentences.txt`.
#[test]
fn shipped_heads_read_factual_units_as_neutral_and_complaints_as_negative() {
    for name in ["all-MiniLM-L6-v2", "multilingual-e5-small"] {
        let dir = repo().join("models").join(name);
        let text = std::fs::read_to_string(SentimentHead::path_for(&dir)).unwrap();
        let head: SentimentHead = serde_json::from_str(&text).unwrap();
        assert!(head.subjectivity.is_some(), "{name}: no subjectivity part");
    }
    let (model, head) = load("all-MiniLM-L6-v2");
    let plain = SentimentHead {
        subjectivity: None,
        ..head.clone()
    };
    let read = |h: &SentimentHead, t: &str| {
        let v = model.embed(&[t], TextKind::Passage).unwrap().pop().unwrap();
        unit(h, t, &v)
    };
    for t in [
        "I ordered two bags of this coffee on Monday.",
        "I read the label before I opened it.",
        "We flew from Boston to Denver last week.",
        "My husband uses it in his morning tea.",
    ] {
        assert_ne!(
            read(&plain, t).polarity,
            Polarity::Neutral,
            "{t}: the test's premise"
        );
        assert_eq!(read(&head, t).polarity, Polarity::Neutral, "{t}");
    }
    for t in [
        "The box arrived crushed.",
        "It tastes burnt and stale.",
        "The seat was broken and nobody fixed it.",
        // Waits said by their length, with no opinion word: read neutral until the rule knew
        // them (sentiment::rule::waiting).
        "Delivery took three weeks.",
        "I waited 45 minutes on hold.",
        "I still haven't received my order.",
        "The package never arrived.",
    ] {
        assert_eq!(read(&head, t).polarity, Polarity::Negative, "{t}");
    }
    // What recipes and fast deliveries say stays out of it.
    for t in ["It cooks in fifteen minutes.", "Arrived in two days."] {
        assert_ne!(read(&head, t).polarity, Polarity::Negative, "{t}");
    }
}
