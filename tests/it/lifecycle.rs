//! Workspace life: mapping remembered, idempotent re-ingest, updates everywhere, bad rows,
//! reindex equals incremental indexing, model mismatch refused.

use std::io::Write;

use verbatim::access::{authorize, Action, Caller};
use verbatim::embed::{EmbedOptions, SentenceTransformer};
use verbatim::retrieve::{search, Mode, Query};
use verbatim::store::Filter;
use verbatim::workspace::Workspace;

use crate::common::*;

#[test]
fn reingest_is_idempotent_and_mapping_is_remembered() {
    let dir = workspace();
    let first = ingest_uci(dir.path());
    assert_eq!(first["stored"], 600);
    let cfg = std::fs::read_to_string(dir.path().join("verbatim.toml")).unwrap();
    assert!(cfg.contains("[mapping]") && cfg.contains("domain"), "{cfg}");
    // No flags: the remembered mapping is used, nothing is stored again.
    let again = json(
        verbatim(dir.path())
            .arg("ingest")
            .arg(fixture("uci_600.csv")),
    );
    assert_eq!(again["stored"], 0, "{again}");
    assert_eq!(again["unchanged"], 600);
    assert_eq!(again["updated"], 0);
    let stats = json(verbatim(dir.path()).arg("stats"));
    assert_eq!(stats["store"]["verbatims"], 600);
    assert_eq!(stats["text_index"]["documents"], 600);
    assert_eq!(stats["store"]["fields"]["domain"], 3);
}

#[test]
fn a_changed_text_updates_store_and_both_indexes() {
    let dir = workspace();
    ingest_uci(dir.path());
    let rows = uci_rows();
    let (id, old_text) = (&rows[10].0, &rows[10].1);
    let new_text = "The parcel arrived crushed and the courier never rang the bell.";
    let edited = dir.path().join("edited.csv");
    let mut w = csv::Writer::from_path(&edited).unwrap();
    w.write_record(["id", "text", "sentiment", "domain"])
        .unwrap();
    for r in &rows {
        let t = if &r.0 == id { new_text } else { r.1.as_str() };
        w.write_record([r.0.as_str(), t, r.2.as_str(), r.3.as_str()])
            .unwrap();
    }
    w.flush().unwrap();
    let s = json(verbatim(dir.path()).arg("ingest").arg(&edited));
    assert_eq!(
        (
            s["stored"].as_u64(),
            s["updated"].as_u64(),
            s["unchanged"].as_u64()
        ),
        (Some(0), Some(1), Some(599))
    );

    let ws = Workspace::open(dir.path()).unwrap();
    assert_eq!(ws.raw_store().get(id).unwrap().unwrap().text, new_text);
    let model = SentenceTransformer::load(&model_dir(), &EmbedOptions::default()).unwrap();
    let (ix, _) = ws.indexes().unwrap();
    let grant = authorize(&Caller::Owner, Action::Search).unwrap();
    for mode in [Mode::Text, Mode::Vector, Mode::Hybrid] {
        let q = Query {
            text: new_text.into(),
            mode,
            filter: Filter::default(),
            limit: 5,
        };
        let hits = search(&grant, ws.raw_store(), &ix, Some(&model), &q).unwrap();
        assert_eq!(
            &hits[0].verbatim.id, id,
            "{mode:?}: the new text must find the verbatim"
        );
        // Each id appears once: the stale vector of the old text is never returned.
        let q = Query {
            text: old_text.clone(),
            mode,
            filter: Filter::default(),
            limit: 50,
        };
        let hits = search(&grant, ws.raw_store(), &ix, Some(&model), &q).unwrap();
        assert!(hits.iter().filter(|h| &h.verbatim.id == id).count() <= 1);
        if mode == Mode::Text {
            assert!(hits
                .iter()
                .all(|h| &h.verbatim.id != id || !h.verbatim.text.contains(old_text.as_str())));
        }
    }
    assert_eq!(ix.text.num_docs(), 600);
}

#[test]
fn bad_rows_are_reported_with_file_and_line_and_do_not_stop_the_run() {
    let dir = workspace();
    let path = dir.path().join("bad.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "id,comment,when,nps,country").unwrap();
    writeln!(f, "1,The delivery was late,2024-03-02,3,FR").unwrap();
    writeln!(f, "2,,2024-03-02,5,FR").unwrap(); // no text
    writeln!(f, "3,Great support team,not a date,9,US").unwrap(); // bad date
    writeln!(f, "4,Refund took ages,2024-03-04,ten,FR").unwrap(); // bad score
    writeln!(f, "5,\"Multi-line\nanswer about billing\",2024-03-05,6,BE").unwrap();
    writeln!(f, "1,Duplicate id row,2024-03-06,6,BE").unwrap(); // duplicate id
    drop(f);
    let o = run(verbatim(dir.path())
        .args([
            "ingest", "--text", "comment", "--id", "id", "--date", "when", "--score", "nps",
            "--field", "country", "--json",
        ])
        .arg(&path));
    assert_eq!(
        o.status.code(),
        Some(1),
        "rejected rows make the exit status non-zero"
    );
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(s["stored"], 2, "{s}");
    assert_eq!(s["rejected"], 4, "{s}");
    let err = stderr(&o);
    let p = path.display().to_string();
    for (line, what) in [(3, "text"), (4, "date"), (5, "score"), (8, "duplicate id")] {
        let needle = format!("{p}:{line}:");
        let l = err
            .lines()
            .find(|l| l.starts_with(&needle))
            .unwrap_or_else(|| panic!("no {needle} in\n{err}"));
        assert!(l.contains(what), "{l}");
    }
    // The good rows are searchable, the multi-line one included.
    let v = json(verbatim(dir.path()).args(["search", "billing", "--mode", "text"]));
    assert_eq!(v["hits"][0]["verbatim"]["id"], "5");
    assert_eq!(v["hits"][0]["verbatim"]["fields"]["country"], "BE");
}

#[test]
fn unknown_column_names_the_column_and_the_available_ones() {
    let dir = workspace();
    let o = run(verbatim(dir.path())
        .args(["ingest", "--text", "txt", "--id", "id"])
        .arg(fixture("uci_600.csv")));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("txt") && e.contains("text") && e.contains("domain"),
        "{e}"
    );
}

#[test]
fn reindex_equals_incremental_indexing() {
    let dir = workspace();
    // Incremental: two files, second one with an update.
    ingest_uci(dir.path());
    ingest_chitchat(dir.path());
    let queries = [
        "battery life",
        "the food was cold",
        "great movie",
        "how are you today",
        "waste of money",
    ];
    let collect = |mode: Mode| -> Vec<Vec<(String, String)>> {
        let ws = Workspace::open(dir.path()).unwrap();
        let model = SentenceTransformer::load(&model_dir(), &EmbedOptions::default()).unwrap();
        let (ix, _) = ws.indexes().unwrap();
        let grant = authorize(&Caller::Owner, Action::Search).unwrap();
        queries
            .iter()
            .map(|q| {
                let q = Query {
                    text: (*q).into(),
                    mode,
                    filter: Filter::default(),
                    limit: 10,
                };
                search(&grant, ws.raw_store(), &ix, Some(&model), &q)
                    .unwrap()
                    .into_iter()
                    .map(|h| (h.verbatim.id, format!("{:.4}", h.score)))
                    .collect()
            })
            .collect()
    };
    let before_text = collect(Mode::Text);
    let before_vec = collect(Mode::Vector);
    let r = json(verbatim(dir.path()).arg("reindex"));
    assert_eq!(r["text"], 1000, "{r}");
    assert_eq!(r["vectors"], 1000);
    assert_eq!(r["reembedded"], 0);
    assert_eq!(
        collect(Mode::Text),
        before_text,
        "BM25 results must not depend on how the index was built"
    );
    let after_vec = collect(Mode::Vector);
    for (a, b) in before_vec.iter().zip(&after_vec) {
        // HNSW graphs differ with insertion order; the best neighbours must not.
        assert_eq!(a[..3], b[..3]);
    }
}

#[test]
fn a_workspace_refuses_vectors_from_another_model() {
    let dir = workspace();
    ingest_uci(dir.path());
    {
        let ws = Workspace::open(dir.path()).unwrap();
        ws.raw_store()
            .set_meta("model", "some-other-model@0000")
            .unwrap();
    }
    let o = run(verbatim(dir.path()).args(["search", "battery", "--mode", "vector"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("reindex"), "{}", stderr(&o));
    // Text search needs no model and still works.
    ok(verbatim(dir.path()).args(["search", "battery", "--mode", "text"]));
    // reindex re-embeds with the model in use and the workspace works again.
    let r = json(verbatim(dir.path()).arg("reindex"));
    assert_eq!(r["reembedded"], 600);
    ok(verbatim(dir.path()).args(["search", "battery", "--mode", "vector"]));
}

#[test]
fn damaged_vector_index_is_reported_and_reindex_repairs_it() {
    let dir = workspace();
    ingest_uci(dir.path());
    let vdir = dir.path().join("index/vectors");
    let current = std::fs::read_to_string(vdir.join("CURRENT")).unwrap();
    std::fs::write(
        vdir.join(current.trim()).join("vectors.hnsw.graph"),
        b"garbage",
    )
    .unwrap();
    let o = run(verbatim(dir.path()).args(["search", "battery"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("vectors.hnsw.graph") || stderr(&o).contains("reindex"),
        "{}",
        stderr(&o)
    );
    ok(verbatim(dir.path()).arg("reindex"));
    ok(verbatim(dir.path()).args(["search", "battery"]));
}

#[test]
fn indexes_ahead_of_a_restored_older_store_are_rebuilt() {
    let dir = workspace();
    ingest_uci(dir.path());
    let store = dir.path().join("store.sqlite");
    let saved = dir.path().join("store.saved");
    std::fs::copy(&store, &saved).unwrap();
    ingest_chitchat(dir.path());
    // The store goes back in time; the indexes still hold 1000 documents.
    std::fs::copy(&saved, &store).unwrap();
    let s = json(verbatim(dir.path()).arg("stats"));
    assert_eq!(s["store"]["verbatims"], 600);
    assert_eq!(s["text_index"]["documents"], 600, "{s}");
    assert_eq!(s["text_index"]["covered_seq"], s["store"]["seq"]);
    assert_eq!(s["vector_index"]["covered_seq"], s["store"]["seq"]);
    let v = json(verbatim(dir.path()).args(["search", "how are you doing today", "--limit", "50"]));
    for h in v["hits"].as_array().unwrap() {
        assert!(
            h["verbatim"]["id"].as_str().unwrap().starts_with("uci-"),
            "{h}"
        );
    }
}
