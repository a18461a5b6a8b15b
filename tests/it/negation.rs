//! Negation in the text index, end to end: on a small fixture of damage complaints, negated
//! reassurances ("arrived with no damage", "not damaged at all") and praise, a complaint query
//! must rank every complaint above every reassurance, in text and hybrid modes; the negated query
//! finds the reassurances.

use crate::common::*;

fn ingest(ws: &std::path::Path) {
    let s = json(
        verbatim(ws)
            .args(["ingest", "--text", "text", "--id", "id", "--field", "kind"])
            .arg(fixture("negation/packages.csv")),
    );
    assert_eq!(s["stored"], 18, "{s}");
}

/// `(id, kind)` of the hits of a search, best first.
fn hits(ws: &std::path::Path, query: &str, mode: &str) -> Vec<(String, String)> {
    let v = json(verbatim(ws).args(["search", query, "--mode", mode, "--limit", "18"]));
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["verbatim"]["id"].as_str().unwrap().to_string(),
                h["verbatim"]["fields"]["kind"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn negated_verbatims_never_outrank_a_damage_complaint() {
    let dir = workspace();
    ingest(dir.path());
    for mode in ["text", "hybrid"] {
        let h = hits(dir.path(), "package arrived damaged", mode);
        let last_complaint = h.iter().rposition(|x| x.1 == "complaint");
        let first_negated = h.iter().position(|x| x.1 == "negated");
        eprintln!("{mode}: {h:?}");
        assert_eq!(
            h.iter().filter(|x| x.1 == "complaint").count(),
            5,
            "{mode}: every complaint found: {h:?}"
        );
        if let Some(n) = first_negated {
            assert!(
                last_complaint.unwrap() < n,
                "{mode}: a negated verbatim outranks a complaint: {h:?}"
            );
        }
    }
    // The negated query finds the reassurances first, never a complaint, in text mode.
    let h = hits(dir.path(), "not damaged", "text");
    assert!(!h.is_empty());
    assert!(h.iter().all(|x| x.1 == "negated"), "{h:?}");
}

/// `(id, kind)` of the hits of a search with `--sentiment`.
fn hits_with(ws: &std::path::Path, query: &str, mode: &str, sentiment: &str) -> Vec<String> {
    let v = json(verbatim(ws).args([
        "search",
        query,
        "--mode",
        mode,
        "--limit",
        "18",
        "--sentiment",
        sentiment,
    ]));
    assert_eq!(v["query"]["sentiment"], sentiment, "{v}");
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["verbatim"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sentiment_filter_partitions_the_results_in_every_mode() {
    let dir = workspace();
    ingest(dir.path());
    for (mode, query) in [
        ("vector", "package arrived damaged"),
        ("hybrid", "package arrived damaged"),
        ("text", "package"),
    ] {
        let all: std::collections::BTreeSet<String> = hits(dir.path(), query, mode)
            .into_iter()
            .map(|h| h.0)
            .collect();
        let neg = hits_with(dir.path(), query, mode, "negative");
        let neu = hits_with(dir.path(), query, mode, "neutral");
        let pos = hits_with(dir.path(), query, mode, "positive");
        eprintln!("{mode}: negative {neg:?} neutral {neu:?} positive {pos:?}");
        let mut union: Vec<String> = neg.iter().chain(&neu).chain(&pos).cloned().collect();
        let n = union.len();
        union.sort();
        union.dedup();
        assert_eq!(union.len(), n, "{mode}: a verbatim in two sentiments");
        assert_eq!(
            union.into_iter().collect::<std::collections::BTreeSet<_>>(),
            all,
            "{mode}: the three sentiments together are the unfiltered results"
        );
        assert!(neg.iter().any(|d| d == "c1"), "{mode}: {neg:?}");
        assert!(!pos.iter().any(|d| d.starts_with('c')), "{mode}: {pos:?}");
        assert!(!neg.is_empty() && !pos.is_empty(), "{mode}");
    }
    // A sentiment no word can parse names the flag.
    let o = run(verbatim(dir.path()).args(["search", "x", "--sentiment", "angry"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--sentiment"), "{}", stderr(&o));
}
