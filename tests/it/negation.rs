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

/// The sentiment filter reads the score stored once per verbatim (not the head per query): a
/// score changed in the store moves the verbatim between sentiments, and a changed verbatim is
/// scored again.
#[test]
fn the_sentiment_filter_reads_scores_stored_once_per_verbatim() {
    let dir = workspace();
    ingest(dir.path());
    assert!(hits_with(dir.path(), "package", "text", "negative").contains(&"c1".to_string()));
    let db = rusqlite::Connection::open(dir.path().join("store.sqlite")).unwrap();
    let stored: i64 = db
        .query_row("SELECT count(*) FROM sentiments", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        stored, 18,
        "one score per verbatim after the first filtered search"
    );
    db.execute(
        "UPDATE sentiments SET score = 0.95 WHERE doc = (SELECT doc FROM verbatims WHERE id = 'c1')",
        [],
    )
    .unwrap();
    assert!(!hits_with(dir.path(), "package", "text", "negative").contains(&"c1".to_string()));
    assert!(hits_with(dir.path(), "package", "text", "positive").contains(&"c1".to_string()));
    // c1 changes: a new vector slot, scored again by the head.
    let csv = dir.path().join("c1.csv");
    std::fs::write(
        &csv,
        "id,kind,text\nc1,complaint,\"The package arrived damaged, torn and soaked.\"\n",
    )
    .unwrap();
    json(
        verbatim(dir.path())
            .args(["ingest", "--text", "text", "--id", "id", "--field", "kind"])
            .arg(&csv),
    );
    assert!(hits_with(dir.path(), "package", "text", "negative").contains(&"c1".to_string()));
}

/// `(id, unit)` of the hits of a search, best first.
fn unit_hits(
    ws: &std::path::Path,
    query: &str,
    mode: &str,
    limit: usize,
) -> Vec<(String, serde_json::Value)> {
    // Every verbatim as its own hit: the fixture holds copies of one review (r043, r067).
    let v = json(
        verbatim(ws)
            .args(["search", query, "--mode", mode, "--keep-copies", "--limit"])
            .arg(limit.to_string()),
    );
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["verbatim"]["id"].as_str().unwrap().to_string(),
                h["unit"].clone(),
            )
        })
        .collect()
}

/// Makes the opinion units (the first theme run splits and embeds them).
fn make_units(ws: &std::path::Path) {
    ok(verbatim(ws).args(["themes", "--by", "topic", "--min-size", "2"]));
    let db = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
    let n: i64 = db
        .query_row("SELECT count(*) FROM units WHERE idx >= 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(n > 0, "the theme run made units");
}

/// Every complaint is in `hits` and before every negated verbatim; each verbatim once; each hit
/// names a unit inside its verbatim with a sentiment.
fn complaints_first(
    mode: &str,
    hits: &[(String, serde_json::Value)],
    complaints: &[&str],
    negated: &[&str],
) {
    let ids: Vec<&str> = hits.iter().map(|h| h.0.as_str()).collect();
    let unique: std::collections::HashSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{mode}: a verbatim twice: {ids:?}");
    let last_complaint = complaints
        .iter()
        .map(|c| {
            ids.iter()
                .position(|i| i == c)
                .unwrap_or_else(|| panic!("{mode}: complaint {c} not found: {ids:?}"))
        })
        .max()
        .unwrap();
    if let Some(n) = ids.iter().position(|i| negated.contains(i)) {
        assert!(
            last_complaint < n,
            "{mode}: a negated verbatim outranks a complaint: {ids:?}"
        );
    }
    for (id, u) in hits {
        let (s, e) = (u["start"].as_u64(), u["end"].as_u64());
        assert!(s.is_some() && e > s, "{mode}: {id} names no unit: {u}");
        assert!(
            ["negative", "neutral", "positive"].contains(&u["sentiment"].as_str().unwrap_or("")),
            "{mode}: {id}: {u}"
        );
    }
}

#[test]
fn with_units_a_hit_is_its_best_unit_and_no_negated_verbatim_outranks_a_complaint() {
    let dir = workspace();
    ingest(dir.path());
    make_units(dir.path());
    let complaints = ["c1", "c2", "c3", "c4", "c5"];
    let negated = ["n1", "n2", "n3", "n4", "n5", "n6"];
    for mode in ["text", "vector", "hybrid"] {
        let h = unit_hits(dir.path(), "package arrived damaged", mode, 18);
        eprintln!("{mode}: {:?}", h.iter().map(|x| &x.0).collect::<Vec<_>>());
        complaints_first(mode, &h, &complaints, &negated);
    }
}

#[test]
fn on_food_reviews_with_units_damage_complaints_lead_in_every_mode() {
    let dir = workspace();
    let s = json(
        verbatim(dir.path())
            .args(["ingest", "--text", "text", "--id", "id", "--date", "date"])
            .arg(fixture("food_reviews_88.csv")),
    );
    assert_eq!(s["stored"], 88, "{s}");
    make_units(dir.path());
    // "The box was damaged and leaking" (alone, or with praise after "but"); "The jar was not
    // damaged at all" must come after all of them.
    let complaints = ["r024", "r043", "r059", "r067"];
    let negated = ["r027"];
    for mode in ["text", "vector", "hybrid"] {
        let h = unit_hits(dir.path(), "package arrived damaged", mode, 20);
        eprintln!("{mode}: {:?}", h.iter().map(|x| &x.0).collect::<Vec<_>>());
        complaints_first(mode, &h, &complaints, &negated);
        // A mixed review answers with its complaint, not its praise.
        let r043 = &h.iter().find(|x| x.0 == "r043").unwrap().1;
        let text = "The box was damaged and leaking, but cheaper than the supermarket.";
        let (s, e) = (
            r043["start"].as_u64().unwrap() as usize,
            r043["end"].as_u64().unwrap() as usize,
        );
        assert!(
            text[s..e].contains("damaged") && !text[s..e].contains("cheaper"),
            "{mode}: {}",
            &text[s..e]
        );
    }
    // The CLI marks the unit inside its verbatim.
    let out = ok(verbatim(dir.path()).args(["search", "package arrived damaged", "--limit", "20"]));
    assert!(
        out.contains("[The box was damaged and leaking,] but cheaper than the supermarket."),
        "{out}"
    );
}
