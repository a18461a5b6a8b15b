//! Opinion units end to end with the real model: split and embedded on the first `themes` run,
//! stored with offsets into the redacted text, never again for an unchanged verbatim, carried by
//! backups, made again only for a changed verbatim, gone with `forget`, and made for a workspace
//! migrated from an older schema.

use std::collections::BTreeMap;
use std::path::Path;

use verbatim::themes::units::split;

use crate::common::{json, ok, run, stderr, v5_workspace, verbatim, workspace};

const ROWS: &[(&str, &str)] = &[
    ("u1", "Great taste but it arrived crushed in the box."),
    (
        "u2",
        "The coffee tastes wonderful, but the bag was torn open when it arrived.",
    ),
    (
        "u3",
        "Delivery was fast. The courier left the parcel in the rain though, and it got wet.",
    ),
    (
        "u4",
        "Le goût est excellent mais le colis est arrivé écrasé.",
    ),
    (
        "u5",
        "La livraison était rapide, par contre le service client ne répond jamais.",
    ),
    ("u6", "Not bad but not great."),
    (
        "u7",
        "My order was two weeks late and nobody answered the phone.",
    ),
    (
        "u8",
        "Although the flavour is nice, the price went up by a third.",
    ),
    (
        "u9",
        "Everything was perfect except the lid, which came off in transit.",
    ),
    (
        "u10",
        "Refund took a month. Support kept sending the same canned reply.",
    ),
    ("u11", "Love it!"),
    (
        "u12",
        "Colis arrivé en retard, emballage abîmé. Je ne commanderai plus.",
    ),
];

fn write_csv(path: &Path, rows: &[(&str, &str)]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(["id", "text"]).unwrap();
    for (id, text) in rows {
        w.write_record([id, text]).unwrap();
    }
    w.flush().unwrap();
}

fn ingest(ws: &Path, rows: &[(&str, &str)]) {
    let csv = ws.join("units.csv");
    write_csv(&csv, rows);
    ok(verbatim(ws)
        .args(["ingest", "--text", "text", "--id", "id"])
        .arg(&csv));
}

/// `--progress jsonl themes`: the finished steps as (step, done, total).
fn themes_steps(ws: &Path) -> Vec<(String, u64, u64)> {
    let o = run(verbatim(ws).args([
        "--progress",
        "jsonl",
        "themes",
        "--by",
        "topic",
        "--min-size",
        "2",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    stderr(&o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "finish")
        .map(|e| {
            (
                e["step"].as_str().unwrap().to_string(),
                e["done"].as_u64().unwrap(),
                e["total"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn units_step(steps: &[(String, u64, u64)]) -> Option<(u64, u64)> {
    steps
        .iter()
        .find(|s| s.0 == "embedding units")
        .map(|s| (s.1, s.2))
}

/// A stored unit read straight from SQLite: (idx, start, end, vector bytes).
type Row = (i64, usize, usize, Vec<u8>);

/// id → (redacted text, units), current units only.
fn stored(ws: &Path) -> BTreeMap<String, (String, Vec<Row>)> {
    let c = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
    let mut out: BTreeMap<String, (String, Vec<Row>)> = BTreeMap::new();
    let mut st = c
        .prepare(
            "SELECT v.id, v.text, u.idx, u.start_byte, u.end_byte, u.vector FROM verbatims v \
             JOIN units u ON u.doc = v.doc AND u.content_hash = v.content_hash \
             ORDER BY v.id, u.idx",
        )
        .unwrap();
    let mut rows = st.query([]).unwrap();
    while let Some(r) = rows.next().unwrap() {
        let id: String = r.get(0).unwrap();
        let text: String = r.get(1).unwrap();
        let e = out.entry(id).or_insert_with(|| (text, Vec::new()));
        let start: i64 = r.get(3).unwrap();
        let end: i64 = r.get(4).unwrap();
        e.1.push((
            r.get(2).unwrap(),
            start as usize,
            end as usize,
            r.get(5).unwrap(),
        ));
    }
    out
}

fn all_unit_rows(ws: &Path) -> i64 {
    let c = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
    c.query_row("SELECT count(*) FROM units", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn units_are_stored_once_redone_for_a_changed_verbatim_and_forgotten() {
    let dir = workspace();
    let ws = dir.path();
    ingest(ws, ROWS);

    // First run: every verbatim split and embedded, offsets into the stored text.
    let steps = themes_steps(ws);
    let units = stored(ws);
    assert_eq!(units.len(), ROWS.len(), "{units:?}");
    let mut n = 0;
    for (id, (text, us)) in &units {
        let want = split(text);
        assert_eq!(us.len(), want.len(), "{id}: {text}");
        for ((idx, start, end, vector), w) in us.iter().zip(&want) {
            assert_eq!((*start, *end), (w.start, w.end), "{id} unit {idx}");
            assert_eq!(vector.len(), 384 * 4, "{id} unit {idx}: one MiniLM vector");
        }
        n += us.len() as u64;
    }
    assert_eq!(units_step(&steps), Some((n, n)), "{steps:?}");
    let slices = |id: &str| -> Vec<String> {
        let (text, us) = &units[id];
        us.iter().map(|u| text[u.1..u.2].to_string()).collect()
    };
    assert_eq!(
        slices("u1"),
        ["Great taste", "but it arrived crushed in the box."]
    );
    assert_eq!(
        slices("u4"),
        ["Le goût est excellent", "mais le colis est arrivé écrasé."]
    );
    assert_eq!(slices("u6"), ["Not bad but not great."]);
    assert_eq!(slices("u11"), ["Love it!"]);
    // A contrast unit is embedded on its own; a verbatim that is one unit keeps its own vector.
    let c = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
    let own = |id: &str| -> Vec<u8> {
        c.query_row(
            "SELECT e.vector FROM embeddings e JOIN verbatims v ON v.doc = e.doc WHERE v.id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_ne!(units["u1"].1[0].3, units["u1"].1[1].3);
    assert_ne!(units["u1"].1[0].3, own("u1"));
    assert_eq!(units["u11"].1[0].3, own("u11"));
    drop(c);

    // Second run: nothing to split or embed.
    let steps = themes_steps(ws);
    assert_eq!(units_step(&steps), None, "{steps:?}");
    assert_eq!(stored(ws), units);

    // A backup carries them: the restored workspace has nothing to split or embed.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("ws.vbk");
    let pass = "correct horse battery staple";
    ok(verbatim(ws)
        .env("VERBATIM_BACKUP_PASSPHRASE", pass)
        .args(["backup", "--out"])
        .arg(&file));
    let to = out.path().join("restored");
    ok(verbatim(ws)
        .env("VERBATIM_BACKUP_PASSPHRASE", pass)
        .arg("restore")
        .arg(&file)
        .arg("--to")
        .arg(&to));
    assert_eq!(stored(&to), units);
    let steps = themes_steps(&to);
    assert_eq!(units_step(&steps), None, "{steps:?}");

    // One verbatim changes on re-ingest: only its units are made again.
    let mut changed: Vec<(&str, &str)> = ROWS.to_vec();
    changed[6] = (
        "u7",
        "My order was two weeks late, however the courier was very polite about it.",
    );
    ingest(ws, &changed);
    let steps = themes_steps(ws);
    assert_eq!(units_step(&steps), Some((2, 2)), "{steps:?}");
    let after = stored(ws);
    for (id, v) in &units {
        if id != "u7" {
            assert_eq!(&after[id], v, "{id} untouched");
        }
    }
    let (text, us) = &after["u7"];
    let got: Vec<&str> = us.iter().map(|u| &text[u.1..u.2]).collect();
    assert_eq!(
        got,
        [
            "My order was two weeks late,",
            "however the courier was very polite about it."
        ]
    );

    // forget: its units and their vectors go, counted in the receipt.
    let before = all_unit_rows(ws);
    let r = json(verbatim(ws).args(["forget", "--id", "u1"]));
    assert_eq!(r["store"]["units"], 2, "{r}");
    assert_eq!(all_unit_rows(ws), before - 2);
    assert!(!stored(ws).contains_key("u1"));
    let c = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
    let orphans: i64 = c
        .query_row(
            "SELECT count(*) FROM units WHERE doc NOT IN (SELECT doc FROM verbatims)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}

/// A workspace written at schema v5 (tests/fixtures/audit/v5, with themes run) migrates and
/// gets its units on the next theme run.
#[test]
fn a_migrated_workspace_gets_units_on_its_next_theme_run() {
    let (_tmp, ws) = v5_workspace();
    let steps = themes_steps(&ws);
    let c = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(v >= 7, "{v}");
    let units = stored(&ws);
    let verbatims: i64 = c
        .query_row("SELECT count(*) FROM verbatims", [], |r| r.get(0))
        .unwrap();
    assert_eq!(units.len() as i64, verbatims);
    let n: usize = units.values().map(|(_, u)| u.len()).sum();
    assert_eq!(units_step(&steps), Some((n as u64, n as u64)), "{steps:?}");
}
