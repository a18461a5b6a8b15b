//! The audit trail: every read through the CLI leaves a chained entry before its results are
//! shown, and `audit verify` names the first entry that was tampered with.

use std::path::Path;

use crate::common::{fixture, ok, run, stderr, stdout, v5_workspace, verbatim, workspace_in_tmp};

fn entries(ws: &Path) -> Vec<serde_json::Value> {
    let out = ok(verbatim(ws).args(["audit", "show", "--json"]));
    serde_json::from_str(&out).unwrap()
}

#[test]
fn reads_are_audited_and_tampering_is_named() {
    let (tmp, ws) = workspace_in_tmp();
    ok(verbatim(&ws)
        .args([
            "ingest", "--text", "text", "--id", "id", "--field", "domain",
        ])
        .arg(fixture("uci_600.csv")));
    let hits = ok(verbatim(&ws).args(["search", "battery", "--limit", "3", "--json"]));
    ok(verbatim(&ws).args(["themes", "--by", "topic"]));
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
    assert_eq!(e[1]["ids"], serde_json::json!(ids));
    assert_eq!(e[1]["detail"]["kind"], "search");
    assert_eq!(e[1]["detail"]["query"], "battery");
    assert!(e.iter().all(|x| x["caller"] == "owner"));
    let o = run(verbatim(&ws).args(["audit", "verify"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // Reading the trail is itself an entry.
    assert!(stdout(&o).contains("intact: 7 entries"), "{}", stdout(&o));

    // Edit one entry behind verbatim's back: named.
    let db = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
    db.execute(
        "UPDATE audit SET detail = replace(detail, 'battery', 'weather') WHERE seq = 2",
        [],
    )
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

/// A workspace with `tests/fixtures/audit/feedback.csv`: ids `a,b` (a comma) and `T1003` (shaped
/// like a theme id), respondents by email.
fn odd_ids_workspace(tmp: &Path) -> std::path::PathBuf {
    let ws = tmp.join("ws");
    ok(verbatim(&ws).arg("init"));
    ok(verbatim(&ws)
        .args([
            "ingest",
            "--text",
            "text",
            "--id",
            "id",
            "--respondent",
            "email",
        ])
        .arg(fixture("audit/feedback.csv")));
    ws
}

fn json_of(c: &mut std::process::Command) -> serde_json::Value {
    let out = ok(c.arg("--json"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// Ids are exact: `a,b` is one id and `T1003` a verbatim, in the trail, in `export`'s reads, in
/// `forget`'s search for reports that quote what it erases, and in `incident report`.
#[test]
fn ids_with_a_comma_or_a_theme_shape_are_found_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = odd_ids_workspace(tmp.path());
    ok(verbatim(&ws).args(["search", "battery", "--mode", "text", "--limit", "6"]));
    ok(verbatim(&ws).args(["themes", "--by", "topic", "--min-size", "2"]));
    let report = ws.join("report.md");
    ok(verbatim(&ws).args(["report", "--out"]).arg(&report));
    let e = entries(&ws);
    let search = e.iter().find(|x| x["action"] == "search").unwrap();
    let ids: Vec<&str> = search["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert!(ids.contains(&"a,b") && ids.contains(&"T1003"), "{search}");
    let rep = e.iter().find(|x| x["action"] == "report").unwrap();
    assert!(rep["ids"].to_string().contains("\"a,b\""), "{rep}");
    // Theme ids are listed apart from verbatim ids.
    assert!(
        rep["theme_ids"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| !ids.contains(&t.as_str().unwrap())),
        "{rep}"
    );

    // `export` of ana (who wrote `a,b`) lists the search and the report that returned it.
    let x = json_of(verbatim(&ws).args(["export", "--respondent", "ana@example.com"]));
    let actions: Vec<&str> = x["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"search") && actions.contains(&"report"),
        "{x:#}"
    );

    // `incident report`: T1003 is a verbatim of tom's, with his pseudonym, not a theme.
    let tom = json_of(verbatim(&ws).args(["respondent", "lookup", "tom@example.com"]));
    let r = json_of(verbatim(&ws).args(["incident", "report", "--user", "owner"]));
    let item = |id: &str| {
        r["verbatims"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} missing: {r:#}"))
    };
    assert_eq!(item("T1003")["respondent"], tom["pseudonym"], "{r:#}");
    assert!(item("a,b")["respondent"].is_string(), "{r:#}");
    assert!(
        r["themes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["id"] != "T1003" && t["id"] != "a,b"),
        "{r:#}"
    );
    assert!(r["respondents"]
        .as_array()
        .unwrap()
        .contains(&tom["pseudonym"]));

    // The report no longer shows ana's text (say it was edited by hand): only the trail's
    // record of what it quoted can find it. `forget --id a,b` must remove it.
    std::fs::write(&report, "# edited by hand\n").unwrap();
    let f = json_of(verbatim(&ws).args(["forget", "--id", "a,b"]));
    assert_eq!(f["ids"], serde_json::json!(["a,b"]), "{f:#}");
    assert!(!report.exists(), "report quoting a,b kept: {f:#}");
    ok(verbatim(&ws).args(["audit", "verify"]));
}

/// A trail written at schema v5 (tests/fixtures/audit/v5, made by the binary of that time):
/// after migration it verifies, its ids are queryable, the unchained reveal log is folded into
/// the chain, and tampering with an old entry is still detected.
#[test]
fn a_v5_trail_migrates_verifies_and_still_detects_tampering() {
    let (_tmp, ws) = v5_workspace();
    let db = ws.join("store.sqlite");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 5);
        // A reveal logged before the chain existed (only in the access log): must join it.
        c.execute(
            "INSERT INTO access_log(at, caller, action, target) \
             VALUES ('2024-01-02T03:04:05Z', '{\"kind\":\"owner\"}', 'reveal', 'p-2')",
            [],
        )
        .unwrap();
    }
    let o = run(verbatim(&ws).args(["audit", "verify"]));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // 6 old entries + the folded reveal (the fixture's own reveal was chained already).
    assert!(stdout(&o).contains("intact: 7 entries"), "{}", stdout(&o));
    let e = entries(&ws);
    assert_eq!(e.len(), 7);
    assert!(e[..6].iter().all(|x| x["detail"].get("legacy").is_some()));
    assert_eq!(e[6]["action"], "pii reveal");
    assert_eq!(e[6]["ids"], serde_json::json!(["p-2"]));
    assert_eq!(e[6]["detail"]["logged_at"], "2024-01-02T03:04:05Z");
    // Old ids were split once on commas: `a,b` could not be recovered (README of the fixture).
    assert_eq!(
        e[1]["ids"],
        serde_json::json!(["p-3", "p-4", "T1003", "a", "b"])
    );
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert!(v >= 6);
        let t: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'access_log'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(t, 0, "access_log still there");
    }
    // Old entries answer exact-id questions: tom's T1003 was searched, revealed and reported.
    let x = json_of(verbatim(&ws).args(["export", "--respondent", "tom@example.com"]));
    let seqs: Vec<i64> = x["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 3, 5], "{x:#}");
    // `incident report` over old entries: an id the store holds is a verbatim (T1003, with its
    // respondent); one it does not (the pieces of `a,b`, the theme T1) cannot be classed and
    // is listed apart, not counted as erased.
    let r = json_of(verbatim(&ws).args(["incident", "report", "--user", "owner"]));
    let ids = |k: &str| -> Vec<String> {
        r[k].as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v["id"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    // Once, though named by old entries and by the export's new one.
    assert_eq!(
        ids("verbatims").iter().filter(|i| *i == "T1003").count(),
        1,
        "{r:#}"
    );
    let t1003 = r["verbatims"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "T1003")
        .unwrap();
    assert!(t1003["respondent"].is_string(), "{r:#}");
    assert_eq!(ids("unresolved"), ["T1", "a", "b"], "{r:#}");
    assert_eq!(r["erased_since"], 0);
    // New entries chain onto old ones.
    ok(verbatim(&ws).args(["audit", "verify"]));

    // Tampering with an old entry, or with the id rows made from it, is named.
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute("UPDATE audit SET ids = 'p-3' WHERE seq = 2", [])
        .unwrap();
    let o = run(verbatim(&ws).args(["audit", "verify"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("BROKEN at entry 2"), "{}", stdout(&o));
    c.execute(
        "UPDATE audit SET ids = 'p-3,p-4,T1003,a,b' WHERE seq = 2",
        [],
    )
    .unwrap();
    ok(verbatim(&ws).args(["audit", "verify"]));
    c.execute(
        "DELETE FROM audit_ids WHERE entry_seq = 5 AND id = 'T1003'",
        [],
    )
    .unwrap();
    let o = run(verbatim(&ws).args(["audit", "verify"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("BROKEN at entry 5"), "{}", stdout(&o));
}

/// Every write command leaves exactly one entry, named after it.
#[test]
fn every_write_leaves_exactly_one_entry() {
    let (tmp, ws) = workspace_in_tmp();
    let count = |ws: &Path| -> usize {
        let c = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
        c.query_row("SELECT count(*) FROM audit", [], |r| r.get::<_, i64>(0))
            .unwrap() as usize
    };
    let last = |ws: &Path| -> (String, String) {
        let c = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
        c.query_row(
            "SELECT action, detail FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let links = tmp.path().join("people.csv");
    std::fs::write(&links, "cid,name\nc1,x\nc2,y\n").unwrap();
    let backup = tmp.path().join("b.vbk");
    let file = fixture("audit/feedback.csv");
    let steps: Vec<(&str, Vec<String>)> = vec![
        (
            "ingest",
            [
                "ingest",
                "--text",
                "text",
                "--id",
                "id",
                "--respondent",
                "email",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([file.display().to_string()])
            .collect(),
        ),
        ("themes", s(&["themes", "--by", "topic", "--min-size", "2"])),
        ("themes rename", s(&["themes", "rename", "T1", "Batteries"])),
        (
            "themes seed",
            s(&[
                "themes",
                "seed",
                "--by",
                "topic",
                "Delivery",
                "--example",
                "fast delivery",
            ]),
        ),
        ("themes merge", s(&["themes", "merge", "T1", "T2"])),
        ("reindex", s(&["reindex"])),
        (
            "links make",
            s(&["links", "make"])
                .into_iter()
                .chain([links.display().to_string()])
                .chain(s(&[
                    "--id",
                    "cid",
                    "--base-url",
                    "https://survey.example.com/s",
                ]))
                .collect(),
        ),
        ("user add", s(&["user", "add", "ann", "--role", "analyst"])),
        (
            "grant add",
            s(&[
                "grant",
                "add",
                "acme",
                "--role",
                "consultant",
                "--expires",
                "2099-12-31",
            ]),
        ),
        ("user revoke", s(&["user", "revoke", "ann"])),
        ("grant revoke", s(&["grant", "revoke", "acme"])),
        (
            "backup",
            s(&["backup", "--out"])
                .into_iter()
                .chain([backup.display().to_string()])
                .collect(),
        ),
        ("forget", s(&["forget", "--respondent", "lee@example.com"])),
        ("retention apply", s(&["retention", "apply"])),
    ];
    for (action, args) in steps {
        let before = count(&ws);
        let mut c = verbatim(&ws);
        c.env("VERBATIM_BACKUP_PASSPHRASE", "correct horse battery staple")
            .args(&args);
        let o = run(&mut c);
        if action == "retention apply" {
            // No period configured: refused, and a refused command records nothing.
            assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
            assert_eq!(count(&ws), before, "{action}");
            continue;
        }
        assert!(o.status.success(), "{action}: {}", stderr(&o));
        assert_eq!(count(&ws), before + 1, "{action}: {}", last(&ws).1);
        assert_eq!(last(&ws).0, action);
    }
    let (_, merge) = {
        let c = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
        c.query_row(
            "SELECT action, detail FROM audit WHERE action = 'themes merge'",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .unwrap()
    };
    let merge: serde_json::Value = serde_json::from_str(&merge).unwrap();
    assert_eq!(merge["theme_ids"], serde_json::json!(["T1", "T2"]));
    ok(verbatim(&ws).args(["audit", "verify"]));
}

fn s(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}
