//! Property tests of the pipeline's invariants, with the small deterministic embedder so hundreds
//! of cases run in seconds: whatever is ingested is found; filters in SQL, tantivy and memory agree.

use std::collections::BTreeMap;

use proptest::prelude::*;

use verbatim::access::{authorize, Action, Caller};
use verbatim::embed::HashEmbedder;
use verbatim::ingest::Mapping;
use verbatim::retrieve::{search, Mode, Query};
use verbatim::store::Filter;
use verbatim::workspace::ingest::{ingest_file, IngestOptions, NoProgress};
use verbatim::workspace::Workspace;

const WORDS: &[&str] = &[
    "delivery",
    "late",
    "refund",
    "support",
    "billing",
    "app",
    "crash",
    "price",
    "great",
    "slow",
    "livraison",
    "retard",
    "remboursement",
    "facture",
    "colis",
    "cassé",
    "service",
    "quality",
    "package",
    "courier",
];
const COUNTRIES: &[&str] = &["FR", "BE", "US", "DE"];

fn record() -> impl Strategy<Value = (String, usize, Option<i64>, Option<u8>)> {
    (
        prop::collection::vec(prop::sample::select(WORDS), 2..8).prop_map(|w| w.join(" ")),
        0..COUNTRIES.len(),
        prop::option::of(1_700_000_000i64..1_720_000_000),
        prop::option::of(0u8..=10),
    )
}

fn write_csv(path: &std::path::Path, rows: &[(String, usize, Option<i64>, Option<u8>)]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(["id", "text", "country", "date", "score"])
        .unwrap();
    for (i, (text, c, ts, score)) in rows.iter().enumerate() {
        let date = ts
            .map(|t| {
                chrono::DateTime::from_timestamp(t, 0)
                    .unwrap()
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string()
            })
            .unwrap_or_default();
        let score = score.map(|s| s.to_string()).unwrap_or_default();
        w.write_record([
            format!("r{i}"),
            text.clone(),
            COUNTRIES[*c].to_string(),
            date,
            score,
        ])
        .unwrap();
    }
    w.flush().unwrap();
}

fn mapping() -> Mapping {
    Mapping {
        text: vec!["text".into()],
        id: Some("id".into()),
        date: Some("date".into()),
        score: Some("score".into()),
        fields: vec!["country".into()],
        ..Mapping::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn ingested_verbatims_are_found_and_filters_agree(
        rows in prop::collection::vec(record(), 1..40),
        fcountry in prop::option::of(0..COUNTRIES.len()),
        since in prop::option::of(1_700_000_000i64..1_720_000_000),
        min_score in prop::option::of(0u8..=10),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = Workspace::init(dir.path()).unwrap();
        let csv = dir.path().join("in.csv");
        write_csv(&csv, &rows);
        let emb = HashEmbedder::new();
        let opts = IngestOptions { mapping: Some(mapping()), ..Default::default() };
        let s = ingest_file(&mut ws, &emb, &csv, &opts, &NoProgress).unwrap();
        prop_assert_eq!(s.stored as usize, rows.len());
        prop_assert_eq!(s.rejected, 0);
        // Idempotent.
        let s2 = ingest_file(&mut ws, &emb, &csv, &opts, &NoProgress).unwrap();
        prop_assert_eq!(s2.stored, 0);
        prop_assert_eq!(s2.unchanged as usize, rows.len());

        let (ix, _) = ws.indexes().unwrap();
        let grant = authorize(&Caller::Owner, Action::Search).unwrap();
        let mut filter = Filter { since, min_score: min_score.map(f64::from), ..Default::default() };
        if let Some(c) = fcountry {
            filter.fields.insert("country".into(), vec![COUNTRIES[c].into()]);
        }
        let all: Vec<_> = ws.raw_store().get_docs(&ws.raw_store().all_docs().unwrap()).unwrap();
        let expected: BTreeMap<String, ()> = all.iter().filter(|v| filter.matches(v)).map(|v| (v.id.clone(), ())).collect();
        prop_assert_eq!(ws.raw_store().count(&filter).unwrap() as usize, expected.len());

        for (i, (text, ..)) in rows.iter().enumerate() {
            let id = format!("r{i}");
            for mode in [Mode::Text, Mode::Vector, Mode::Hybrid] {
                // Unfiltered: the verbatim is among the hits for its own text (ties between
                // identical bags of words are allowed, so not necessarily first).
                let q = Query { text: text.clone(), mode, filter: Filter::default(), limit: rows.len() };
                let hits = search(&grant, ws.raw_store(), &ix, Some(&emb), &q).unwrap();
                prop_assert!(hits.iter().any(|h| h.verbatim.id == id), "{:?}: {} not found", mode, id);
                // Filtered: exactly the expected set can appear, and the verbatim appears iff it passes.
                let q = Query { text: text.clone(), mode, filter: filter.clone(), limit: rows.len() };
                let hits = search(&grant, ws.raw_store(), &ix, Some(&emb), &q).unwrap();
                prop_assert!(hits.iter().all(|h| expected.contains_key(&h.verbatim.id)));
                prop_assert_eq!(hits.iter().any(|h| h.verbatim.id == id), expected.contains_key(&id));
            }
        }
    }
}
