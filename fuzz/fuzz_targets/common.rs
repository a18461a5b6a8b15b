//! Shared by the ingest fuzz targets: a mapping that touches every role, so fuzzed input reaches
//! date, score, id and nested-key handling and not just the header check.

use verbatim::ingest::{Mapping, ReadOptions};

pub fn mapping() -> Mapping {
    Mapping {
        text: vec!["text".into(), "b".into()],
        id: Some("id".into()),
        respondent: Some("who".into()),
        date: Some("date".into()),
        date_format: None,
        score: Some("score".into()),
        fields: vec!["f".into(), "a.b".into()],
        language: Some("lang".into()),
        ..Mapping::default()
    }
}

/// Lenient, so files lacking some mapped columns still get to their rows; a small text limit so
/// the limit check runs too.
pub fn options() -> ReadOptions {
    ReadOptions {
        sheet: None,
        max_text_bytes: 64,
        strict: false,
        multiline_fields: false,
    }
}
