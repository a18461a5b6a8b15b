//! Erasure, export and retention end to end, with the real model on real text: after
//! `forget`, no byte of the erased verbatims is left in any file of the workspace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use verbatim::access::{authorize, Action, Caller};
use verbatim::embed::{EmbedOptions, Embedder, SentenceTransformer, TextKind};
use verbatim::lang::Lang;
use verbatim::retrieve::{search, Mode, Query};
use verbatim::store::Filter;
use verbatim::workspace::Workspace;

use crate::common::*;

const EMAIL: &str = "jean.dupont@example.fr";
const OTHER: &str = "marie.curie@example.fr";

/// The respondent to forget: distinctive canary words, a phone number (redacted in the stored
/// text, kept only in the sealed original) and a segment value no one else has.
const CANARY: &[(&str, &str)] = &[
    (
        "J1",
        "The qzvortexpipeline kiosk froze twice; call me on 06 12 34 56 78 about the zanzibarquokka refund.",
    ),
    (
        "J2",
        "Mon colis qzvortexpipeline est arrivé écrasé, le carton zanzibarquokka était trempé.",
    ),
    (
        "J3",
        "Support about the zanzibarquokka voucher never answered my emails, the delivery was very slow.",
    ),
    (
        "J4",
        "The delivery driver left the qzvortexpipeline parcel in the rain at the zanzibarquokka gate.",
    ),
];

const OTHER_TEXT: &str = "The plumbobrightwell app crashed every time I tried to pay by card.";

/// A corpus in the demo file's format: the demo rows, 70 UCI sentences from other respondents,
/// the canary respondent and one more distinctive respondent.
fn corpus(dir: &Path) -> PathBuf {
    let path = dir.join("feedback.csv");
    let mut w = demo_and_uci(&path);
    for (id, text) in CANARY {
        w.write_record([*id, EMAIL, "15/02/2024", "2", "LU", "app", text])
            .unwrap();
    }
    w.write_record(["M1", OTHER, "16/02/2024", "4", "FR", "app", OTHER_TEXT])
        .unwrap();
    w.flush().unwrap();
    path
}

/// A CSV writer at `path` in the demo file's format, holding the demo rows and 70 UCI sentences
/// from other respondents.
fn demo_and_uci(path: &Path) -> csv::Writer<std::fs::File> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_path(path)
        .unwrap();
    let mut demo = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_path(demo_csv())
        .unwrap();
    w.write_record(demo.headers().unwrap()).unwrap();
    for r in demo.records() {
        w.write_record(&r.unwrap()).unwrap();
    }
    for (i, (_, text, _, _)) in uci_rows().into_iter().take(70).enumerate() {
        let date = format!("{:02}/{:02}/2024", 1 + i % 28, 1 + i % 6);
        let country = ["FR", "US", "BE"][i % 3];
        w.write_record([
            format!("U{i}").as_str(),
            &format!("user{i}@example.org"),
            &date,
            &((i % 11).to_string()),
            country,
            "web",
            &text,
        ])
        .unwrap();
    }
    w
}

fn ingest(ws: &Path, file: &Path) -> serde_json::Value {
    json(verbatim(ws).arg("ingest").args(DEMO_MAPPING).arg(file))
}

/// (needle, files under `dir` holding it) for every needle found somewhere.
fn found_in(dir: &Path, needles: &[Vec<u8>]) -> Vec<(String, Vec<PathBuf>)> {
    let mut files = Vec::new();
    all_files(dir, &mut files);
    let contents: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|f| {
            let b = std::fs::read(&f).unwrap_or_default();
            (f, b)
        })
        .collect();
    needles
        .iter()
        .filter_map(|n| {
            let hits: Vec<PathBuf> = contents
                .iter()
                .filter(|(_, b)| contains(b, n))
                .map(|(f, _)| f.clone())
                .collect();
            (!hits.is_empty()).then(|| (String::from_utf8_lossy(n).into_owned(), hits))
        })
        .collect()
}

/// Substrings of at least 12 bytes from the start, middle and end of `text` (char boundaries).
fn slices(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let take = |from: usize| chars[from..(from + 16).min(n)].iter().collect::<String>();
    let mut out = vec![take(0), take(n / 2 - 8), take(n - 16)];
    out.retain(|s| s.len() >= 12);
    out
}

fn model() -> SentenceTransformer {
    SentenceTransformer::load(&model_dir(), &EmbedOptions::default()).unwrap()
}

fn ids_of(
    ws: &Workspace,
    model: &SentenceTransformer,
    text: &str,
    mode: Mode,
    n: usize,
) -> Vec<String> {
    let (ix, _) = ws.indexes().unwrap();
    let grant = authorize(&Caller::Owner, Action::Search).unwrap();
    let q = Query {
        sentiment: None,
        head: None,
        text: text.into(),
        mode,
        filter: Filter::default(),
        limit: n,
    };
    search(&grant, ws.raw_store(), &ix, Some(model), &q)
        .unwrap()
        .into_iter()
        .map(|h| h.verbatim.id)
        .collect()
}

#[test]
fn forget_leaves_no_byte_of_the_respondent_anywhere_in_the_workspace() {
    let dir = workspace();
    let ws_path = dir.path();
    let src = tempfile::tempdir().unwrap();
    let s = ingest(ws_path, &corpus(src.path()));
    assert_eq!(s["stored"], 105, "{s}");
    assert_eq!(s["rejected"], 0, "{s}");

    // Every derived place: themes (labels, assignments, sentence vectors, opinion units), reports inside the
    // workspace (one of them scoped to the respondent's segment, so it quotes them), an
    // assignments file, and a report outside the workspace.
    json(verbatim(ws_path).args(["themes", "--by", "topic", "--min-size", "3"]));
    let outside = tempfile::tempdir().unwrap();
    let reports_in = [ws_path.join("report.html"), ws_path.join("lu.md")];
    ok(verbatim(ws_path)
        .args(["report", "--min-size", "3", "--out"])
        .arg(&reports_in[0]));
    ok(verbatim(ws_path)
        .args([
            "report",
            "--min-size",
            "3",
            "--where",
            "country=LU",
            "--out",
        ])
        .arg(&reports_in[1]));
    let report_out = outside.path().join("lu.json");
    ok(verbatim(ws_path)
        .args([
            "report",
            "--min-size",
            "3",
            "--where",
            "country=LU",
            "--out",
        ])
        .arg(&report_out));
    ok(verbatim(ws_path)
        .args([
            "themes",
            "assignments",
            "--by",
            "topic",
            "--min-size",
            "3",
            "--out",
        ])
        .arg(ws_path.join("assignments.jsonl")));
    let lu = std::fs::read_to_string(&reports_in[1]).unwrap();
    assert!(
        lu.contains("zanzibarquokka"),
        "the scoped report quotes the respondent:\n{lu}"
    );

    // What must go: pieces of the original and of the redacted texts, the canary words as the
    // analysers store them, the email, and the bytes of their embeddings.
    let model = model();
    let (pseudonym, stored, vectors, before_vec, before_other, terms) = {
        let ws = Workspace::open(ws_path).unwrap();
        let pseudonym = ws.raw_vault().pseudonym(EMAIL);
        let stored: Vec<verbatim::store::Verbatim> = CANARY
            .iter()
            .map(|(id, _)| ws.raw_store().get(id).unwrap().unwrap())
            .collect();
        assert!(stored
            .iter()
            .all(|v| v.respondent.as_deref() == Some(&pseudonym)));
        assert!(stored[0].text.contains("<PHONE>"), "{}", stored[0].text);
        let mut vectors = Vec::new();
        let mut raw = Vec::new();
        let head = |v: &[f32]| -> Vec<u8> { v[..8].iter().flat_map(|x| x.to_le_bytes()).collect() };
        ws.raw_store()
            .for_each(|v, _, vec| {
                if v.id.starts_with('J') {
                    vectors.push(head(&vec));
                    raw.push((v.language.clone(), vec));
                }
                Ok(())
            })
            .unwrap();
        let before_vec = ids_of(&ws, &model, "the delivery was late", Mode::Vector, 30);
        let before_other = ids_of(&ws, &model, "plumbobrightwell crashed", Mode::Text, 5);
        let (ix, _) = ws.indexes().unwrap();
        // The graph holds each vector centred on its language's mean (French and English here):
        // those bytes are in its data file, and must go too.
        let means = ix.vectors.means().expect("two languages: centred");
        for (lang, mut v) in raw {
            means.center(&lang, &mut v);
            let centred = head(&v);
            let in_graph = found_in(&ws_path.join("index").join("vectors"), &[centred.clone()]);
            assert_eq!(in_graph.len(), 1, "the graph's data file holds the vector");
            vectors.push(centred);
        }
        let mut terms = Vec::new();
        for w in ["zanzibarquokka", "qzvortexpipeline"] {
            for lang in [Lang::En, Lang::Fr] {
                for (t, _, _) in verbatim::index::text::tokens(lang, w) {
                    terms.push(t);
                }
            }
        }
        assert!(
            terms.iter().any(|t| ix.text.holds_term(t).unwrap()),
            "{terms:?}"
        );
        (pseudonym, stored, vectors, before_vec, before_other, terms)
    };
    assert_eq!(before_other.first().map(String::as_str), Some("M1"));
    let mut needles: Vec<Vec<u8>> = vec![
        EMAIL.into(),
        "zanzibarquokka".into(),
        "qzvortexpipeline".into(),
        "06 12 34 56 78".into(),
    ];
    for ((_, original), v) in CANARY.iter().zip(&stored) {
        needles.extend(slices(original).into_iter().map(String::into_bytes));
        needles.extend(slices(&v.text).into_iter().map(String::into_bytes));
    }
    let found = found_in(ws_path, &needles);
    assert!(
        found.iter().any(|(n, _)| n == "zanzibarquokka"),
        "the test must see the canary before erasure: {found:?}"
    );
    let vec_found = found_in(ws_path, &vectors);
    eprintln!("embedding bytes before erasure found in: {vec_found:?}");
    needles.extend(vectors.iter().cloned());
    // The opinion units the theme run made of the respondent's verbatims: their vectors too.
    let unit_vectors: Vec<Vec<u8>> = {
        let c = rusqlite::Connection::open(ws_path.join("store.sqlite")).unwrap();
        let mut st = c
            .prepare(
                "SELECT u.vector FROM units u JOIN verbatims v ON v.doc = u.doc \
                 WHERE v.id LIKE 'J%' AND u.idx >= 0",
            )
            .unwrap();
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap();
        rows.map(|b| b.unwrap()[..32].to_vec()).collect()
    };
    assert!(unit_vectors.len() >= 4, "{}", unit_vectors.len());
    let n_units = unit_vectors.len();
    // The report (by aspect, the default) ran the tree: the respondent's units have places in
    // it, erased with them and counted with the theme assignments.
    let tree_places: i64 = rusqlite::Connection::open(ws_path.join("store.sqlite"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM aspect_units a JOIN verbatims v ON v.doc = a.doc \
             WHERE v.id LIKE 'J%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(tree_places >= 4, "{tree_places}");
    needles.extend(unit_vectors);
    let stats_before = json(verbatim(ws_path).arg("stats"));

    // Forget.
    let r = json(verbatim(ws_path).args(["forget", "--respondent", EMAIL]));
    eprintln!("{r:#}");
    assert_eq!(r["pseudonym"], pseudonym.as_str());
    assert!(!r.to_string().contains(EMAIL));
    assert_eq!(r["ids"], serde_json::json!(["J1", "J2", "J3", "J4"]));
    assert_eq!(r["store"]["verbatims"], 4);
    assert_eq!(r["store"]["originals"], 4);
    assert_eq!(r["store"]["embeddings"], 4);
    assert_eq!(r["store"]["segment_values"], 8);
    assert_eq!(r["store"]["theme_assignments"], 4 + tree_places);
    assert_eq!(r["store"]["units"], n_units as u64, "{r}");
    assert_eq!(r["text_index_docs"], 4);
    assert_eq!(r["vector_points"], 4);
    assert!(r["labels_recomputed"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["wal_truncated"].as_bool().unwrap(), "{r}");
    assert!(r["bytes_reclaimed"].as_u64().unwrap() > 0, "{r}");
    let removed: Vec<String> = r["reports_removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    for p in &reports_in {
        assert!(
            !p.exists(),
            "{} still there; removed: {removed:?}",
            p.display()
        );
    }
    assert!(
        r["reports_unreachable"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u.as_str().unwrap().contains("lu.json")),
        "{r}"
    );

    // No byte of it in any file of the workspace, before anything else opens it.
    let left = found_in(ws_path, &needles);
    assert!(
        left.is_empty(),
        "erased data left in the workspace: {left:#?}"
    );

    // Searches no longer return it; everyone else is found as before.
    let ws = Workspace::open(ws_path).unwrap();
    for mode in [Mode::Text, Mode::Vector, Mode::Hybrid] {
        for q in [
            CANARY[0].1,
            "zanzibarquokka qzvortexpipeline",
            "parcel left in the rain",
        ] {
            let ids = ids_of(&ws, &model, q, mode, 20);
            assert!(
                !ids.iter().any(|i| i.starts_with('J')),
                "{mode:?} {q}: {ids:?}"
            );
        }
    }
    let after_vec = ids_of(&ws, &model, "the delivery was late", Mode::Vector, 20);
    let expected: Vec<String> = before_vec
        .into_iter()
        .filter(|i| !i.starts_with('J'))
        .take(20)
        .collect();
    // With French and English verbatims the vector index is centred per language, and the
    // rebuild after an erasure recomputes the means without the erased verbatims: near ties
    // may swap places, the same verbatims answer.
    let same = after_vec.iter().filter(|i| expected.contains(i)).count();
    assert!(
        same >= 18 && !after_vec.iter().any(|i| i.starts_with('J')),
        "{after_vec:?} vs {expected:?}"
    );
    for mode in [Mode::Text, Mode::Hybrid] {
        let ids = ids_of(&ws, &model, "plumbobrightwell crashed", mode, 5);
        assert_eq!(ids.first().map(String::as_str), Some("M1"), "{mode:?}");
    }
    {
        let (ix, _) = ws.indexes().unwrap();
        for t in &terms {
            assert!(
                !ix.text.holds_term(t).unwrap(),
                "term {t} left in a segment"
            );
        }
        assert_eq!(ix.text.num_docs(), 101);
        let live = ws.raw_store().live_vec_ids().unwrap();
        assert_eq!(ix.vectors.points(), live.len());
        let qv = model
            .embed(&[CANARY[3].1], TextKind::Query)
            .unwrap()
            .pop()
            .unwrap();
        let hits = ix.vectors.search(&qv, 10, 128, |_| true);
        let slots: Vec<i64> = hits.iter().map(|h| h.0).collect();
        let docs = ws.raw_store().docs_for_vec_ids(&slots).unwrap();
        assert!(
            docs.iter().all(Option::is_some),
            "graph returned an erased slot"
        );
    }
    assert!(ws.verify_audit().unwrap().broken.is_none());
    let last = ws.raw_store().audit_entries().unwrap();
    let entry = last.iter().rev().find(|e| e.action == "forget").unwrap();
    assert_eq!(entry.ids, ["J1", "J2", "J3", "J4"]);
    let detail = serde_json::to_string(&entry.detail).unwrap();
    assert!(detail.contains(&pseudonym) && !detail.contains(EMAIL));
    drop(ws);

    // Counts drop; a second forget finds nothing and says so.
    let stats_after = json(verbatim(ws_path).arg("stats"));
    let n = |s: &serde_json::Value, k: &str| {
        s.pointer(&format!("/store/{k}"))
            .or_else(|| s.get(k))
            .and_then(|v| v.as_i64())
            .unwrap_or_else(|| panic!("no {k} in {s}"))
    };
    assert_eq!(
        n(&stats_before, "verbatims") - n(&stats_after, "verbatims"),
        4
    );
    assert_eq!(
        n(&stats_before, "respondents") - n(&stats_after, "respondents"),
        1
    );
    let again = json(verbatim(ws_path).args(["forget", "--respondent", EMAIL]));
    assert_eq!(again["ids"], serde_json::json!([]));
    assert_eq!(again["store"]["verbatims"], 0);
    let human = ok(verbatim(ws_path).args(["forget", "--respondent", EMAIL]));
    assert!(human.contains("nothing held"), "{human}");
    ok(verbatim(ws_path).args(["audit", "verify"]));
    // Themes run again on what is left.
    json(verbatim(ws_path).args(["themes", "--by", "topic", "--min-size", "3"]));
}

#[test]
fn export_gives_everything_held_with_originals_decrypted() {
    let dir = workspace();
    let src = tempfile::tempdir().unwrap();
    ingest(dir.path(), &corpus(src.path()));
    let e = ok(verbatim(dir.path()).args(["export", "--respondent", EMAIL]));
    let e: serde_json::Value = serde_json::from_str(&e).unwrap();
    let ws = Workspace::open(dir.path()).unwrap();
    assert_eq!(e["pseudonym"], ws.raw_vault().pseudonym(EMAIL).as_str());
    let vs = e["verbatims"].as_array().unwrap();
    assert_eq!(vs.len(), 4, "{e:#}");
    for ((id, text), v) in CANARY.iter().zip(vs) {
        assert_eq!(v["id"], *id);
        assert_eq!(v["original"]["text"], *text);
        assert_eq!(v["original"]["respondent"], EMAIL);
        assert_eq!(v["segments"]["country"], "LU");
        assert_eq!(v["score"], 2.0);
        assert!(v["date"].as_str().unwrap().starts_with("2024-02-15"), "{v}");
        assert!(
            v["source"].as_str().unwrap().contains("feedback.csv:"),
            "{v}"
        );
    }
    assert!(vs[0]["text"].as_str().unwrap().contains("<PHONE>"));
    assert!(!vs[0]["text"].as_str().unwrap().contains("06 12 34 56 78"));
    // Theme assignments with labels once themes ran.
    drop(ws);
    json(verbatim(dir.path()).args(["themes", "--by", "topic", "--min-size", "3"]));
    let e: serde_json::Value = serde_json::from_str(&ok(verbatim(dir.path()).args([
        "export",
        "--respondent",
        EMAIL,
    ])))
    .unwrap();
    let themed = e["verbatims"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| {
            v["theme"]["id"]
                .as_str()
                .is_some_and(|t| t.starts_with('T'))
        })
        .count();
    let labelled = e["verbatims"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["theme"].is_null() || v["theme"]["label"].is_string());
    assert!(themed >= 1 && labelled, "{e:#}");
    // The export is in the audit trail, by pseudonym; the identifier is not.
    let ws = Workspace::open(dir.path()).unwrap();
    let entries = ws.raw_store().audit_entries().unwrap();
    let x = entries.iter().rev().find(|a| a.action == "export").unwrap();
    assert_eq!(x.ids, ["J1", "J2", "J3", "J4"]);
    assert!(entries
        .iter()
        .all(|a| !serde_json::to_string(&a.detail).unwrap().contains(EMAIL)));
    // Someone unknown: an empty export, not an error.
    let none: serde_json::Value = serde_json::from_str(&ok(verbatim(dir.path()).args([
        "export",
        "--respondent",
        "nobody@example.com",
    ])))
    .unwrap();
    assert_eq!(none["verbatims"], serde_json::json!([]));
}

#[test]
fn retention_erases_exactly_the_old_verbatims_and_a_dry_run_changes_nothing() {
    let dir = workspace();
    let ws_path = dir.path();
    let src = tempfile::tempdir().unwrap();
    // Dated rows: three old ones, three from ten days ago; two undated (kept: ingested now).
    let recent = (chrono::Utc::now() - chrono::Duration::days(10))
        .format("%Y-%m-%d")
        .to_string();
    let rows = uci_rows();
    let path = src.path().join("dated.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record(["id", "text", "date"]).unwrap();
    for (i, (_, text, _, _)) in rows.iter().take(8).enumerate() {
        let date = match i {
            0..=2 => format!("2019-0{}-10", i + 1),
            3..=5 => recent.clone(),
            _ => String::new(),
        };
        w.write_record([format!("D{i}").as_str(), text, &date])
            .unwrap();
    }
    w.flush().unwrap();
    let o = run(verbatim(ws_path)
        .args([
            "ingest", "--json", "--text", "text", "--id", "id", "--date", "date",
        ])
        .arg(&path));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["stored"], 8, "{s}");

    // Not configured: says which setting to add, exit 2.
    let o = run(verbatim(ws_path).args(["retention", "apply"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("retention_days"), "{}", stderr(&o));

    {
        let mut ws = Workspace::open(ws_path).unwrap();
        ws.config.privacy.retention_days = Some(365);
        ws.save_config().unwrap();
    }
    let toml = std::fs::read_to_string(ws_path.join("verbatim.toml")).unwrap();
    assert!(toml.contains("retention_days = 365"), "{toml}");

    let dry = json(verbatim(ws_path).args(["retention", "apply", "--dry-run"]));
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["ids"], serde_json::json!(["D0", "D1", "D2"]));
    assert_eq!(dry["store"]["verbatims"], 3);
    let stats = json(verbatim(ws_path).arg("stats"));
    assert!(stats.to_string().contains("\"verbatims\":8"), "{stats}");

    let r = json(verbatim(ws_path).args(["retention", "apply"]));
    assert_eq!(r["ids"], serde_json::json!(["D0", "D1", "D2"]));
    assert_eq!(r["store"]["verbatims"], 3);
    assert_eq!(r["retention_days"], 365);
    let ws = Workspace::open(ws_path).unwrap();
    let left: Vec<String> = (0..8)
        .map(|i| format!("D{i}"))
        .filter(|id| ws.raw_store().get(id).unwrap().is_some())
        .collect();
    assert_eq!(left, ["D3", "D4", "D5", "D6", "D7"]);
    let (ix, _) = ws.indexes().unwrap();
    assert_eq!(ix.text.num_docs(), 5);
    assert_eq!(ix.vectors.points(), 5);
    assert!(ws.verify_audit().unwrap().broken.is_none());
    assert!(ws
        .raw_store()
        .audit_entries()
        .unwrap()
        .iter()
        .any(|e| e.action == "retention apply" && e.caller == "retention"));
    drop(ix);
    drop(ws);

    // The library entry point a server calls daily: in ten years, everything dated goes, and
    // the undated rows too (their ingest is then over a year old).
    let mut ws = Workspace::open(ws_path).unwrap();
    let later = chrono::Utc::now() + chrono::Duration::days(3650);
    let r = verbatim::workspace::erase::apply_retention(&mut ws, later).unwrap();
    assert_eq!(r.ids, ["D3", "D4", "D5", "D6", "D7"]);
    assert_eq!(ws.raw_store().stats().unwrap().verbatims, 0);
}

#[test]
fn forget_by_id_names_ids_not_held() {
    let dir = workspace();
    let src = tempfile::tempdir().unwrap();
    ingest(dir.path(), &corpus(src.path()));
    let r = json(verbatim(dir.path()).args(["forget", "--id", "M1", "--id", "nope", "--id", "M1"]));
    assert_eq!(r["ids"], serde_json::json!(["M1"]));
    assert_eq!(r["not_found"], serde_json::json!(["nope"]));
    assert_eq!(r["store"]["verbatims"], 1);
    let o = run(verbatim(dir.path()).arg("forget"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let ws = Workspace::open(dir.path()).unwrap();
    assert!(ws.raw_store().get("M1").unwrap().is_none());
    assert_eq!(ws.raw_store().stats().unwrap().verbatims, 104);
}

/// A `forget` interrupted after its store transaction (the process died before the index
/// purge, the report removal, the audit entry and the vacuum) is finished by the next one:
/// `erase_pending` carries the erased ids, so the reports that quoted them are still found
/// through the trail although their text is gone from the store.
#[test]
fn an_interrupted_forget_is_finished_by_the_next_one() {
    let dir = workspace();
    let ws_path = dir.path();
    let src = tempfile::tempdir().unwrap();
    ingest(ws_path, &corpus(src.path()));
    let lu = ws_path.join("lu.md");
    ok(verbatim(ws_path)
        .args([
            "report",
            "--min-size",
            "3",
            "--where",
            "country=LU",
            "--out",
        ])
        .arg(&lu));
    assert!(std::fs::read_to_string(&lu)
        .unwrap()
        .contains("zanzibarquokka"));
    let pending_texts: Vec<String>;
    {
        // The crash: step 3 (the store transaction) committed, nothing after it ran.
        let mut ws = Workspace::open(ws_path).unwrap();
        let pseudonym = ws.raw_vault().pseudonym(EMAIL);
        let ids = ws.raw_store().ids_of_respondent(&pseudonym).unwrap();
        assert_eq!(ids, ["J1", "J2", "J3", "J4"]);
        pending_texts = ids
            .iter()
            .map(|id| ws.raw_store().get(id).unwrap().unwrap().text)
            .collect();
        let n = ws
            .raw_store_mut()
            .erase(&ids, Some(&pseudonym), &[], &Default::default(), false)
            .unwrap();
        assert_eq!(n.verbatims, 4);
        assert!(ws.raw_store().erase_pending().unwrap());
        assert_eq!(ws.raw_store().erase_pending_ids().unwrap(), ids);
    }
    // The text index still holds the terms (hidden, not purged), the report is still there.
    {
        let ws = Workspace::open(ws_path).unwrap();
        let (ix, _) = ws.indexes().unwrap();
        let terms: Vec<String> = verbatim::index::text::tokens(Lang::En, "zanzibarquokka")
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert!(terms.iter().any(|t| ix.text.holds_term(t).unwrap()));
    }
    assert!(lu.exists());

    // The user runs `forget` again: nothing is left to delete in the store, and the pending
    // erasure is finished.
    let r = json(verbatim(ws_path).args(["forget", "--respondent", EMAIL]));
    assert_eq!(
        r["ids"],
        serde_json::json!(["J1", "J2", "J3", "J4"]),
        "{r:#}"
    );
    assert!(
        r["notes"].to_string().contains("interrupted"),
        "no note of the resumed erasure: {r:#}"
    );
    assert!(
        !lu.exists(),
        "the report quoting the erased verbatims is still there: {r:#}"
    );
    assert!(r["wal_truncated"].as_bool().unwrap(), "{r}");
    let ws = Workspace::open(ws_path).unwrap();
    assert!(!ws.raw_store().erase_pending().unwrap());
    assert!(ws
        .raw_store()
        .ids_of_respondent(&ws.raw_vault().pseudonym(EMAIL))
        .unwrap()
        .is_empty());
    {
        let (ix, _) = ws.indexes().unwrap();
        for w in ["zanzibarquokka", "qzvortexpipeline"] {
            for lang in [Lang::En, Lang::Fr] {
                for (t, _, _) in verbatim::index::text::tokens(lang, w) {
                    assert!(!ix.text.holds_term(&t).unwrap(), "term {t} left");
                }
            }
        }
        assert_eq!(
            ix.vectors.points(),
            ws.raw_store().live_vec_ids().unwrap().len()
        );
    }
    let mut needles: Vec<Vec<u8>> = vec![EMAIL.into(), "06 12 34 56 78".into()];
    for t in &pending_texts {
        needles.push(t.chars().take(24).collect::<String>().into_bytes());
    }
    let left = found_in(ws_path, &needles);
    assert!(left.is_empty(), "erased data left: {left:#?}");
    // The trail records the finished erasure, with the ids, and still verifies.
    assert!(ws.verify_audit().unwrap().broken.is_none());
    let last = ws.raw_store().audit_entries().unwrap();
    let entry = last.iter().rev().find(|e| e.action == "forget").unwrap();
    assert_eq!(entry.ids, ["J1", "J2", "J3", "J4"]);
}

/// A respondent who writes about an app with an invented name: on the demo corpus the tree makes
/// an aspect of it (a parent labelled with the word). Two more of their verbatims land in nodes
/// that others share.
const APP_FAN: &str = "zed.quill@example.org";
const APP_WORD: &str = "zorblax";
const APP_TEXTS: &[(&str, &str)] = &[
    ("Z1", "The zorblax kept crashing when I opened my account."),
    ("Z2", "Every time the zorblax updates it logs me out."),
    ("Z3", "The zorblax is slow and crashes on checkout."),
    ("Z4", "I gave up on the zorblax after it froze again."),
    ("Z5", "Your zorblax deleted my basket twice."),
    ("Z6", "The zorblax crashes whenever I try to pay."),
    ("Z7", "My parcel arrived two weeks late."),
    ("Z8", "The battery died after a single day."),
];

/// `themes --json` (the tree): id → (label, verbatims, units).
fn tree_nodes(ws: &Path) -> (serde_json::Value, BTreeMap<String, (String, u64, u64)>) {
    let t = json(verbatim(ws).arg("themes"));
    let mut out = BTreeMap::new();
    for p in t["parents"].as_array().unwrap() {
        for n in std::iter::once(p).chain(p["children"].as_array().into_iter().flatten()) {
            out.insert(
                n["id"].as_str().unwrap().to_string(),
                (
                    n["label"].as_str().unwrap().to_string(),
                    n["verbatims"].as_u64().unwrap(),
                    n["units"].as_u64().unwrap(),
                ),
            );
        }
    }
    (t, out)
}

#[test]
fn forget_takes_the_respondent_out_of_the_aspect_tree_keeping_its_ids() {
    let dir = workspace();
    let ws = dir.path();
    let src = tempfile::tempdir().unwrap();
    let path = src.path().join("feedback.csv");
    let mut w = demo_and_uci(&path);
    for (id, text) in APP_TEXTS {
        w.write_record([*id, APP_FAN, "15/02/2024", "1", "LU", "app", text])
            .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    assert_eq!(ingest(ws, &path)["stored"], 108);

    let (t0, before) = tree_nodes(ws);
    assert_eq!(t0["verbatims"], 108);
    let labelled: Vec<&String> = before
        .iter()
        .filter(|(_, (l, _, _))| l.to_lowercase().contains(APP_WORD))
        .map(|(id, _)| id)
        .collect();
    assert!(
        !labelled.is_empty(),
        "the fixture's point: the word labels a node: {before:?}"
    );
    // Where the respondent's units are: node → their verbatims in it.
    let mut theirs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in ok(verbatim(ws).args(["themes", "assignments"])).lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = r["id"].as_str().unwrap();
        if id.starts_with('Z') {
            for k in ["theme", "parent"] {
                if let Some(n) = r[k].as_str() {
                    theirs.entry(n.into()).or_default().insert(id.into());
                }
            }
        }
    }
    assert!(
        theirs.keys().any(|n| !labelled.contains(&n)),
        "some of their verbatims share nodes with others: {theirs:?}"
    );
    let shown = ok(verbatim(ws).args(["themes", "show", labelled[0].as_str()]));
    assert!(shown.contains(APP_WORD), "{shown}");

    let centroids = || -> BTreeMap<String, Vec<u8>> {
        let c = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
        let mut st = c
            .prepare("SELECT id, centroid FROM aspect_nodes WHERE is_parent = 0")
            .unwrap();
        st.query_map([], |r| Ok((format!("C{}", r.get::<_, i64>(0)?), r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let centroids_before = centroids();

    let r = json(verbatim(ws).args(["forget", "--respondent", APP_FAN]));
    assert_eq!(r["store"]["verbatims"], 8, "{r}");
    let changed = r["tree_nodes_changed"].as_u64().unwrap();
    assert!(changed >= theirs.len() as u64, "{r}");

    // The tree is read, not rebuilt: same ids, counts less exactly the erased verbatims.
    let (t1, after) = tree_nodes(ws);
    assert_eq!(t1["verbatims"], 100);
    for (id, (label, verbatims, _)) in &before {
        let gone = theirs.get(id).map_or(0, |s| s.len() as u64);
        match after.get(id) {
            Some((_, v, _)) => assert_eq!(*v, verbatims - gone, "{id} {label}"),
            None => assert_eq!(gone, *verbatims, "{id} {label} is gone but had others"),
        }
    }
    assert!(
        after.keys().all(|id| before.contains_key(id)),
        "{after:?} vs {before:?}"
    );
    // The word is in no label, stored (any state) or shown, nor in any node's units or quotes.
    for (id, (label, _, _)) in &after {
        assert!(!label.to_lowercase().contains(APP_WORD), "{id}: {label}");
        let shown = ok(verbatim(ws).args(["themes", "show", id]));
        assert!(!shown.to_lowercase().contains(APP_WORD), "{id}: {shown}");
    }
    let stored: Vec<(i64, String, String)> = {
        let c = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
        let mut st = c
            .prepare("SELECT id, label, state FROM aspect_nodes")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    for (id, label, state) in &stored {
        assert!(
            !label.to_lowercase().contains(APP_WORD),
            "node {id} ({state}): {label}"
        );
    }
    // A child that keeps others' units is recentred on them; an emptied one keeps no centroid.
    let centroids_after = centroids();
    for (id, erased) in theirs.iter().filter(|(id, _)| id.starts_with('C')) {
        let (was, now) = (&centroids_before[id], &centroids_after[id]);
        if before[id].1 > erased.len() as u64 {
            assert!(!now.is_empty() && now != was, "{id} was not recentred");
        } else {
            assert!(now.is_empty(), "{id} emptied but keeps a centroid");
        }
    }
    // The audit entry says how many nodes changed, as the receipt does.
    let wsv = Workspace::open(ws).unwrap();
    let entries = wsv.raw_store().audit_entries().unwrap();
    let entry = entries.iter().rev().find(|e| e.action == "forget").unwrap();
    let detail = serde_json::to_string(&entry.detail).unwrap();
    assert!(
        detail.contains(&format!("\"tree_nodes_changed\":{changed}")),
        "{detail}"
    );
    assert!(wsv.verify_audit().unwrap().broken.is_none());
}

/// The vector index as the next command finds it: (searchable points, slots, masked slots).
fn vector_slots(ws: &Path) -> (usize, usize, usize) {
    let ws = Workspace::open(ws).unwrap();
    let (ix, sync) = ws.indexes().unwrap();
    assert_eq!(sync.vectors, 0, "nothing left to catch up: {sync:?}");
    (ix.vectors.points(), ix.vectors.slots(), ix.vectors.masked())
}

/// `forget` masks the erased slots of the vector index instead of rebuilding it (the next
/// command reads the mask back and has nothing to catch up); once masked slots pass 20% of the
/// graph, the `forget` that crosses the line compacts it and says so on stderr; `reindex` starts
/// a graph with no mask.
#[test]
fn forget_masks_vector_slots_compacts_past_a_fifth_and_reindex_clears_the_mask() {
    let dir = workspace();
    let ws_path = dir.path();
    let src = tempfile::tempdir().unwrap();
    ingest(ws_path, &corpus(src.path()));
    assert_eq!(vector_slots(ws_path), (105, 105, 0));

    let r = json(verbatim(ws_path).args(["forget", "--respondent", EMAIL]));
    assert_eq!(r["vector_points"], 4, "{r}");
    assert!(r.get("vector_compacted").is_none(), "{r}");
    assert_eq!(vector_slots(ws_path), (101, 105, 4));
    // The masked generation is sound for `verbatim check` (its sums cover the zeroed data).
    let o = run(verbatim(ws_path).args(["check", "--json"]));
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));

    // 16 more: 20 of 105 masked (19%), still no rebuild.
    let ids = |from: usize, to: usize| -> Vec<String> {
        (from..to)
            .flat_map(|i| ["--id".to_string(), format!("U{i}")])
            .collect()
    };
    let o = run(verbatim(ws_path)
        .args(["forget", "--json"])
        .args(ids(0, 16)));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("compacted"), "{}", stderr(&o));
    assert_eq!(vector_slots(ws_path), (85, 105, 20));

    // 2 more: 22 of 105 (21%) passes 20%: compacted, said on stderr and in the receipt.
    let o = run(verbatim(ws_path)
        .args(["forget", "--json"])
        .args(ids(16, 18)));
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("vector index was compacted") && err.contains("22 of its 105 slots"),
        "{err}"
    );
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (&r["vector_points"], &r["vector_compacted"]),
        (&2.into(), &true.into()),
        "{r}"
    );
    assert_eq!(vector_slots(ws_path), (83, 83, 0));

    // One more masked; `reindex` rebuilds without it.
    json(verbatim(ws_path).args(["forget", "--id", "U18"]));
    assert_eq!(vector_slots(ws_path), (82, 83, 1));
    ok(verbatim(ws_path).arg("reindex"));
    assert_eq!(vector_slots(ws_path), (82, 82, 0));
}
