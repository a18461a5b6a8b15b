//! Redaction: the only way to make [`Redacted`] text.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{detect, PiiKind, Span};

/// Text with every detected span of personal data replaced by its typed placeholder.
///
/// Only [`redact`] makes one, so a function that takes `&Redacted` (the store, the indexes, the
/// embedding of stored verbatims, themes, prompts) cannot be handed raw customer text by mistake.
/// Text read back from the store goes through [`redact`] again on its way to an index: redaction
/// is idempotent, so this costs a scan and guarantees the invariant even for rows written by an
/// older, less thorough detector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Redacted {
    text: String,
    #[serde(skip)]
    spans: Vec<Span>,
}

impl Redacted {
    /// The redacted text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The spans that were replaced, in the *original* text's byte offsets.
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// Did redaction change anything?
    pub fn changed(&self) -> bool {
        !self.spans.is_empty()
    }

    /// How many spans of each kind were replaced.
    pub fn counts(&self) -> BTreeMap<PiiKind, usize> {
        let mut m = BTreeMap::new();
        for s in &self.spans {
            *m.entry(s.kind).or_default() += 1;
        }
        m
    }

    /// The redacted text, owned.
    pub fn into_string(self) -> String {
        self.text
    }
}

impl AsRef<str> for Redacted {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Replaces every span [`detect`] finds with its placeholder (`<EMAIL>`, `<PHONE>`, …).
pub fn redact(text: &str) -> Redacted {
    let spans = detect(text);
    if spans.is_empty() {
        return Redacted {
            text: text.to_string(),
            spans,
        };
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for s in &spans {
        debug_assert!(
            s.start >= at && s.end > s.start,
            "detect returned {spans:?}"
        );
        // Defensive: a detector bug must not panic an ingest; overlapping spans are merged.
        let start = s.start.max(at);
        if start > s.end {
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str(s.kind.placeholder());
        at = s.end;
    }
    out.push_str(&text[at..]);
    Redacted { text: out, spans }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Text made of feedback words, personal data of every kind, placeholders and noise.
    fn feedbackish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("the parcel was late".to_string()),
            Just("colis abîmé, remboursement SVP".to_string()),
            Just("jean.dupont@example.fr".to_string()),
            Just("jean.dupont%40example.fr".to_string()),
            Just("06 12 34 56 78".to_string()),
            Just("+33 6 12 34 56 78".to_string()),
            Just("(415) 555-0132".to_string()),
            Just("FR14 2004 1010 0505 0001 3M02 606".to_string()),
            Just("4111 1111 1111 1111".to_string()),
            Just("192.168.1.20".to_string()),
            Just("2001:db8::8a2e:370:7334".to_string()),
            Just("1 84 05 75 123 456 25".to_string()),
            Just("born on 12/04/1987".to_string()),
            Just("née le 3 mars 1990".to_string()),
            Just("Mme Dupont".to_string()),
            Just("my name is Sarah Connor".to_string()),
            Just("Bonjour Marie,".to_string()),
            Just("order #88412093 for €12.99".to_string()),
            Just("<EMAIL>".to_string()),
            Just("<PERSON>".to_string()),
            "[ -~àéèçôÉ\n]{0,12}",
        ];
        prop::collection::vec(piece, 0..8).prop_map(|v| v.join(" "))
    }

    proptest! {
        #[test]
        fn redaction_is_idempotent_and_leaves_nothing_to_detect(text in feedbackish()) {
            let once = redact(&text);
            prop_assert!(detect(once.as_str()).is_empty(), "{:?} -> {:?}", text, once.as_str());
            let twice = redact(once.as_str());
            prop_assert_eq!(twice.as_str(), once.as_str());
            prop_assert!(!twice.changed());
        }
    }

    #[test]
    fn text_without_personal_data_is_unchanged() {
        let r = redact("The parcel arrived two days late.");
        assert_eq!(r.as_str(), "The parcel arrived two days late.");
        assert!(!r.changed());
        assert!(r.counts().is_empty());
    }
}
