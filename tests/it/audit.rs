//! The audit trail: every read through the CLI leaves a chained entry before its results are
//! shown, and `audit verify` names the first entry that was tampered with.

use std::path::Path;

use crate::common::{fixture, ok, run, stdout, verbatim};

fn entries(ws: &Path) -> Vec<serde_json::Value> {
    let out = ok(verbatim(ws).args(["audit", "show", "--json"]));
    serde_json::from_str(&out).unwrap()
}

#[test]
fn reads_are_audited_and_tampering_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    ok(verbatim(&ws).arg("init"));
    ok(verbatim(&ws)
        .args([
            "ingest", "--text", "text", "--id", "id", "--field", "domain",
        ])
        .arg(fixture("uci_600.csv")));
    let hits = ok(verbatim(&ws).args(["search", "battery", "--limit", "3", "--json"]));
    ok(verbatim(&ws).args(["themes"]));
    ok(verbatim(&ws).args(["ask", "How many reviews mention the battery?"]));
    ok(verbatim(&ws).args(["ask", "Is the food good?", "--extractive"]));
    ok(verbatim(&ws)
        .args(["report", "--out"])
        .arg(tmp.path().join("r.md")));
    let e = entries(&ws);
    let actions: Vec<&str> = e.iter().map(|x| x["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["ingest", "search", "themes", "ask", "ask", "report"]
    );
    // The search entry names the ids it returned, and the query.
    let v: serde_json::Value = serde_json::from_str(&hits).unwrap();
    let ids: Vec<&str> = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["verbatim"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(e[1]["ids"].as_str().unwrap(), ids.join(","));
    assert!(e[1]["detail"].as_str().unwrap().contains("battery"));
    assert!(e.iter().all(|x| x["caller"] == "owner"));
    let o = run(verbatim(&ws).args(["audit", "verify"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // Reading the trail is itself an entry.
    assert!(stdout(&o).contains("intact: 7 entries"), "{}", stdout(&o));

    // Edit one entry behind verbatim's back: named.
    let db = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
    db.execute("UPDATE audit SET ids = '' WHERE seq = 2", [])
        .unwrap();
    let o = run(verbatim(&ws).args(["audit", "verify"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("BROKEN at entry 2"), "{}", stdout(&o));
    // Delete the first: the chain now starts at 2, and says so.
    db.execute("DELETE FROM audit WHERE seq = 1", []).unwrap();
    let o = run(verbatim(&ws).args(["audit", "verify"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("BROKEN at entry 2"), "{}", stdout(&o));
}
