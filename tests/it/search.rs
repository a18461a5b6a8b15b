//! Ingest real text with the real model, then find it: own-text retrieval, filters, modes.

use std::collections::HashMap;

use verbatim::access::{authorize, Action, Caller};
use verbatim::embed::{EmbedOptions, SentenceTransformer};
use verbatim::retrieve::{search, Mode, Query};
use verbatim::store::Filter;
use verbatim::workspace::Workspace;

use crate::common::*;

fn own_text_rank1(
    ws: &Workspace,
    model: &SentenceTransformer,
    mode: Mode,
) -> (usize, usize, Vec<String>) {
    let (ix, _) = ws.indexes().unwrap();
    let grant = authorize(&Caller::Owner, Action::Search).unwrap();
    let rows = uci_rows();
    let text_of: HashMap<&str, &str> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    let (mut top1, mut misses) = (0, Vec::new());
    for (id, text, _, _) in &rows {
        let q = Query {
            sentiment: None,
            head: None,
            text: text.clone(),
            mode,
            filter: Filter::default(),
            limit: 10,
        };
        let hits = search(&grant, ws.raw_store(), &ix, Some(model), &q).unwrap();
        let first = hits.first().map(|h| h.verbatim.id.as_str()).unwrap_or("");
        // A duplicate sentence under another id is an equally right first answer.
        if first == id || text_of.get(first).is_some_and(|t| t.trim() == text.trim()) {
            top1 += 1;
        } else {
            misses.push(format!("{id}: {text:?} → {first}"));
        }
    }
    (top1, rows.len(), misses)
}

#[test]
fn every_verbatim_is_found_by_its_own_text() {
    let dir = workspace();
    let summary = ingest_uci(dir.path());
    assert_eq!(summary["stored"], 600, "{summary}");
    assert_eq!(summary["rejected"], 0);
    let ws = Workspace::open(dir.path()).unwrap();
    let model = SentenceTransformer::load(&model_dir(), &EmbedOptions::default()).unwrap();
    for (mode, min_share) in [
        (Mode::Hybrid, 0.99),
        (Mode::Text, 0.97),
        (Mode::Vector, 0.97),
    ] {
        let (top1, n, misses) = own_text_rank1(&ws, &model, mode);
        let share = top1 as f64 / n as f64;
        eprintln!("{mode:?}: own text at rank 1 for {top1}/{n} = {share:.4}");
        assert!(
            share >= min_share,
            "{mode:?}: {share:.4} < {min_share}; misses: {misses:#?}"
        );
    }
}

#[test]
fn filters_hold_in_every_mode_without_losing_recall() {
    let dir = workspace();
    ingest_uci(dir.path());
    ingest_chitchat(dir.path());
    let ws = Workspace::open(dir.path()).unwrap();
    let model = SentenceTransformer::load(&model_dir(), &EmbedOptions::default()).unwrap();
    let (ix, _) = ws.indexes().unwrap();
    let grant = authorize(&Caller::Owner, Action::Search).unwrap();
    let rows = uci_rows();

    // Segment filter: only yelp, and a yelp sentence is still first for its own text.
    let mut f = Filter::default();
    f.fields.insert("domain".into(), vec!["yelp".into()]);
    let yelp: Vec<_> = rows.iter().filter(|r| r.3 == "yelp").take(20).collect();
    for mode in [Mode::Text, Mode::Vector, Mode::Hybrid] {
        for (id, text, _, _) in &yelp {
            let q = Query {
                sentiment: None,
                head: None,
                text: text.clone(),
                mode,
                filter: f.clone(),
                limit: 20,
            };
            let hits = search(&grant, ws.raw_store(), &ix, Some(&model), &q).unwrap();
            assert!(!hits.is_empty(), "{mode:?} {id}: no hit");
            assert!(
                hits.iter().all(|h| h.verbatim.fields["domain"] == "yelp"),
                "{mode:?}: non-yelp hit"
            );
            assert!(
                hits.iter().any(|h| &h.verbatim.id == id),
                "{mode:?} {id}: own verbatim lost under filter"
            );
        }
    }
    // A filter that matches few verbatims still returns all of them when asked for more.
    let mut two = Filter::default();
    two.fields.insert("domain".into(), vec!["yelp".into()]);
    two.fields
        .insert("sentiment".into(), vec!["negative".into()]);
    let expected = rows
        .iter()
        .filter(|r| r.3 == "yelp" && r.2 == "negative")
        .count();
    for mode in [Mode::Vector, Mode::Hybrid] {
        let q = Query {
            sentiment: None,
            head: None,
            text: "the food".into(),
            mode,
            filter: two.clone(),
            limit: 1000,
        };
        let hits = search(&grant, ws.raw_store(), &ix, Some(&model), &q).unwrap();
        assert_eq!(
            hits.len(),
            expected,
            "{mode:?}: a filtered vector search must reach every match"
        );
    }

    // Dates (chitchat has real timestamps): since/until bounds are respected and complete.
    let chat = jsonl(&fixture("chitchat_400.jsonl"));
    let since = chrono::DateTime::parse_from_rfc3339("2018-05-01T00:00:00Z")
        .unwrap()
        .timestamp();
    let until = chrono::DateTime::parse_from_rfc3339("2018-06-01T00:00:00Z")
        .unwrap()
        .timestamp();
    let in_may: Vec<_> = chat
        .iter()
        .filter(|r| r["date"].as_str().unwrap().starts_with("2018-05"))
        .collect();
    assert!(in_may.len() > 50);
    let f = Filter {
        since: Some(since),
        until: Some(until),
        ..Default::default()
    };
    for mode in [Mode::Text, Mode::Vector, Mode::Hybrid] {
        for r in in_may.iter().take(10) {
            let q = Query {
                sentiment: None,
                head: None,
                text: r["text"].as_str().unwrap().into(),
                mode,
                filter: f.clone(),
                limit: 10,
            };
            let hits = search(&grant, ws.raw_store(), &ix, Some(&model), &q).unwrap();
            assert!(hits
                .iter()
                .all(|h| h.verbatim.ts.is_some_and(|t| t >= since && t < until)));
            assert!(
                hits.iter()
                    .any(|h| h.verbatim.id == r["id"].as_str().unwrap()),
                "{mode:?}: lost {}",
                r["id"]
            );
        }
    }
    // Scores (nested `ratings.witty`; null ratings give no score and fail any score filter).
    let high = chat
        .iter()
        .filter(|r| r["ratings"]["witty"].as_f64().is_some_and(|s| s >= 8.0))
        .count() as i64;
    let f = Filter {
        min_score: Some(8.0),
        ..Default::default()
    };
    assert_eq!(ws.raw_store().count(&f).unwrap(), high);
    let q = Query {
        sentiment: None,
        head: None,
        text: "hello how are you".into(),
        mode: Mode::Hybrid,
        filter: f.clone(),
        limit: 50,
    };
    let hits = search(&grant, ws.raw_store(), &ix, Some(&model), &q).unwrap();
    assert!(!hits.is_empty());
    assert!(hits
        .iter()
        .all(|h| h.verbatim.score.is_some_and(|s| s >= 8.0)));
}

#[test]
fn cli_search_prints_ranked_results_and_json() {
    let dir = workspace();
    ingest_uci(dir.path());
    let out = ok(verbatim(dir.path()).args([
        "search",
        "terrible service",
        "--where",
        "domain=yelp",
        "--limit",
        "3",
    ]));
    assert!(out.starts_with("  1  "), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains("domain=yelp")).count(),
        3,
        "{out}"
    );
    let v =
        json(verbatim(dir.path()).args(["search", "battery", "--mode", "text", "--limit", "5"]));
    let hits = v["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5);
    for (i, h) in hits.iter().enumerate() {
        assert_eq!(h["rank"], i + 1);
        assert!(h["verbatim"]["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("batter"));
        assert!(h["bm25"].as_f64().unwrap() > 0.0);
    }
    // Errors a user can cause name the flag.
    let o = run(verbatim(dir.path()).args(["search", "x", "--where", "domain"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--where"), "{}", stderr(&o));
    let o = run(verbatim(dir.path()).args(["search", "x", "--since", "March"]));
    assert!(stderr(&o).contains("--since"), "{}", stderr(&o));
}

#[test]
fn text_mode_output_is_stable() {
    let dir = workspace();
    ingest_uci(dir.path());
    let out = ok(verbatim(dir.path()).args([
        "search",
        "waste of money",
        "--mode",
        "text",
        "--limit",
        "5",
    ]));
    insta::assert_snapshot!(out);
}

#[test]
fn the_hnsw_graph_finds_every_stored_vector_itself() {
    // Small workspaces are searched exactly; the graph serves large ones. Check the graph on
    // its own: every vector of the 600-verbatim fixture is its own nearest neighbour (up to
    // exact duplicates) through the HNSW search the large path uses.
    let dir = workspace();
    ingest_uci(dir.path());
    let ws = Workspace::open(dir.path()).unwrap();
    let (ix, _) = ws.indexes().unwrap();
    let mut n = 0;
    let mut found = 0;
    ws.raw_store()
        .for_each(|_, vec_id, vector| {
            n += 1;
            let hits = ix.vectors.search(&vector, 10, 128, |_| true);
            let best = hits.first().map(|h| h.1).unwrap_or(0.0);
            if hits.iter().any(|h| h.0 == vec_id) && best <= 1.0001 {
                found += 1;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(n, 600);
    eprintln!("HNSW: {found}/{n} vectors found by themselves in the top 10");
    assert!(found as f64 >= 0.995 * n as f64, "{found}/{n}");
}

#[test]
fn a_profiled_search_gives_the_same_hits_and_times_every_stage() {
    let dir = workspace();
    ingest_uci(dir.path());
    let ws = Workspace::open(dir.path()).unwrap();
    let model = SentenceTransformer::load(&model_dir(), &EmbedOptions::default()).unwrap();
    let (ix, _) = ws.indexes().unwrap();
    let grant = authorize(&Caller::Owner, Action::Search).unwrap();
    let stages = [
        "query embedding",
        "sentiment and filter sets",
        "text (BM25)",
        "vector (graph walk, slots to verbatims)",
        "candidates read as units",
        "ranking (fusion, polarity)",
        "hits read",
    ];
    for mode in [Mode::Hybrid, Mode::Text, Mode::Vector] {
        let q = Query {
            sentiment: None,
            head: None,
            text: "the battery died after a week".into(),
            mode,
            filter: Filter::default(),
            limit: 10,
        };
        let plain = search(&grant, ws.raw_store(), &ix, Some(&model), &q).unwrap();
        let (hits, profile) =
            verbatim::retrieve::search_profiled(&grant, ws.raw_store(), &ix, Some(&model), &q)
                .unwrap();
        let ids = |h: &[verbatim::retrieve::Hit]| -> Vec<(String, f32)> {
            h.iter().map(|h| (h.verbatim.id.clone(), h.score)).collect()
        };
        assert_eq!(ids(&hits), ids(&plain), "{mode:?}");
        assert!(!hits.is_empty(), "{mode:?}");
        let names: Vec<&str> = profile.stages.iter().map(|s| s.0).collect();
        assert_eq!(names, stages, "{mode:?}");
        assert!(profile.stages.iter().all(|s| s.1 >= 0.0));
        if mode != Mode::Text {
            assert!(profile.ms("query embedding") > 0.0, "{mode:?}: {profile:?}");
        }
    }
    // The searches' read snapshots are over: a write on the same connection goes through.
    drop(ix);
    let mut ws = ws;
    ws.raw_store_mut().begin_run("after-search.csv").unwrap();
}

/// Copies of one text (copy-pasted feedback, a repeated review) fold into the best-ranked hit,
/// which lists their ids, so they do not fill the first screen; the limit counts distinct texts;
/// `--keep-copies` shows each as its own hit.
#[test]
fn copies_of_one_text_fold_into_one_hit_unless_kept() {
    let dir = workspace();
    let src = tempfile::tempdir().unwrap();
    let csv = src.path().join("copies.csv");
    let mut w = csv::Writer::from_path(&csv).unwrap();
    w.write_record(["id", "comment"]).unwrap();
    for (id, text) in [
        ("c1", "The parcel arrived crushed and soaked."),
        ("c2", "the parcel  arrived crushed and SOAKED."),
        ("c3", "The parcel arrived crushed and soaked."),
        ("d1", "My parcel arrived crushed, the box torn open."),
        ("d2", "A crushed parcel again, third time this month."),
        ("d3", "Delivery was on time and the parcel was intact."),
        ("d4", "The driver left the parcel in the rain."),
    ] {
        w.write_record([id, text]).unwrap();
    }
    w.flush().unwrap();
    let s = json(
        verbatim(dir.path())
            .arg("ingest")
            .arg(&csv)
            .args(["--text", "comment", "--id", "id"]),
    );
    assert_eq!(s["stored"], 7, "{s}");
    let search = [
        "search",
        "parcel crushed soaked",
        "--mode",
        "text",
        "-n",
        "3",
    ];
    let hits = |extra: &[&str]| -> Vec<(String, Vec<String>)> {
        let r = json(verbatim(dir.path()).args(search).args(extra));
        r["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let copies = h["copies"]
                    .as_array()
                    .map(|c| c.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default();
                (h["verbatim"]["id"].as_str().unwrap().to_string(), copies)
            })
            .collect()
    };
    let folded = hits(&[]);
    assert_eq!(folded.len(), 3, "{folded:?}");
    let (first, copies) = &folded[0];
    let mut all: Vec<&str> = std::iter::once(first.as_str())
        .chain(copies.iter().map(String::as_str))
        .collect();
    all.sort_unstable();
    assert_eq!(all, ["c1", "c2", "c3"], "{folded:?}");
    assert!(
        folded[1..]
            .iter()
            .all(|(id, c)| !id.starts_with('c') && c.is_empty()),
        "{folded:?}"
    );
    let kept = hits(&["--keep-copies"]);
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert!(
        kept.iter()
            .all(|(id, c)| id.starts_with('c') && c.is_empty()),
        "{kept:?}"
    );
    // The text output says how many copies and which.
    let out = ok(verbatim(dir.path()).args(search));
    assert!(out.contains("(same text: 2 more — "), "{out}");
}
