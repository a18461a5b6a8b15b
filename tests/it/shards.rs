//! `verbatim serve --workspace A --workspace B` (issue 18): one corpus prepared once
//! (`verbatim prepare`, the Spark executors' step), stored whole in one workspace and as two
//! shards (`ingest --prepared DIR --shard i/2`), then served both ways. Through the HTTP API:
//! the same exact vector top 10, the same text top 10 (BM25 scored with the corpus's
//! statistics) and the same hybrid results, ids, order and scores; filters resolved per shard;
//! hits naming their shard; one audit entry per request, at the door; stats of the corpus;
//! routes that cannot fan out refused by name; shards of another key or model, or a folder
//! given twice, refused at start (exit 2 from the binary, naming the workspace).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use verbatim::access::{Caller, Principal, Role};
use verbatim::server::{self, RunningServer, ServerError};
use verbatim::store::Filter;
use verbatim::workspace::Workspace;

use crate::common::*;
use crate::prepare::{csv_as_ipc, export_key, prepare, workspace_with_key_of};
use crate::server::{call, error_code, model, options, roomy};

const UCI_MAPPING: [&str; 8] = [
    "--text",
    "text",
    "--id",
    "id",
    "--field",
    "sentiment",
    "--field",
    "domain",
];

/// uci_600 prepared once, ingested whole into `whole` and as shards 0/2 and 1/2.
struct Corpus {
    whole: tempfile::TempDir,
    shards: Vec<tempfile::TempDir>,
}

fn corpus() -> Corpus {
    let whole = workspace();
    let key = export_key(whole.path());
    let out = prepare(&key, &UCI_MAPPING, &csv_as_ipc(&fixture("uci_600.csv")));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("part-00000.arrow"), &out).unwrap();
    let s = json(
        verbatim(whole.path())
            .args(["ingest", "--prepared"])
            .arg(dir.path()),
    );
    assert_eq!(s["stored"].as_u64(), Some(600), "{s}");
    let shards: Vec<tempfile::TempDir> = (0..2)
        .map(|i| {
            let sh = workspace_with_key_of(whole.path());
            ok(verbatim(sh.path())
                .args(["ingest", "--prepared"])
                .arg(dir.path())
                .args(["--shard", &format!("{i}/2")]));
            sh
        })
        .collect();
    Corpus { whole, shards }
}

/// Serves `roots` (the first is the door) with one token per role, made in the door.
fn serve(roots: &[PathBuf]) -> (RunningServer, BTreeMap<Role, String>) {
    let mut ws = Workspace::open(&roots[0]).unwrap();
    let mut tokens = BTreeMap::new();
    for role in Role::ALL {
        let p = Principal {
            name: format!("{role}-user"),
            role,
            scope: Filter::default(),
            expires: (role == Role::Consultant).then_some(4_102_444_800),
        };
        let kind = if role == Role::Consultant {
            "grant"
        } else {
            "user"
        };
        tokens.insert(
            role,
            ws.add_principal(p, kind, &Caller::Owner).unwrap().token,
        );
    }
    drop(ws);
    let s = server::start_shards(roots, Some(model()), options(roomy(), None)).expect("serves");
    (s, tokens)
}

fn audit_len(ws: &Path) -> usize {
    Workspace::open(ws)
        .unwrap()
        .raw_store()
        .audit_entries()
        .unwrap()
        .len()
}

/// (id, score) of each hit.
fn hits(v: &Value) -> Vec<(String, f64)> {
    v["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("no hits: {v}"))
        .iter()
        .map(|h| {
            (
                h["verbatim"]["id"].as_str().unwrap().to_string(),
                h["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The same ids in the same order with the same scores; hits whose scores are exactly tied
/// (the same sentence under two ids) may come in either order, since one workspace breaks ties
/// by its own insertion order and shards by shard. A tie at the end of the list may be cut at
/// another member.
///
/// Hybrid scores are not compared (`scores` false): BM25 gives short texts equal scores, and a
/// tie inside the fusion depth (100) is ordered by tantivy's doc address in one workspace and
/// by shard then doc in shards, so a tied verbatim's text rank, hence its fused score, may
/// differ by a place. Its ids and order are compared.
fn assert_same(what: &str, whole: &[(String, f64)], sharded: &[(String, f64)], scores: bool) {
    assert_eq!(
        whole.len(),
        sharded.len(),
        "{what}: {whole:?} vs {sharded:?}"
    );
    let mut i = 0;
    while i < whole.len() {
        let tied = |v: &[(String, f64)], k: usize| (v[k].1 - v[i].1).abs() < 1e-6;
        let mut j = i + 1;
        while j < whole.len() && tied(whole, j) {
            j += 1;
        }
        for k in (i..j).filter(|_| scores) {
            assert!(
                (whole[k].1 - sharded[k].1).abs() < 1e-5,
                "{what}: score at rank {} {} vs {} ({whole:?} vs {sharded:?})",
                k + 1,
                whole[k].1,
                sharded[k].1
            );
        }
        let mut a: Vec<&str> = whole[i..j].iter().map(|h| h.0.as_str()).collect();
        let mut b: Vec<&str> = sharded[i..j].iter().map(|h| h.0.as_str()).collect();
        if j < whole.len() {
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(
                a,
                b,
                "{what}: ranks {}..{} differ ({whole:?} vs {sharded:?})",
                i + 1,
                j
            );
        }
        i = j;
    }
}

/// Hybrid lists: fusion ranks the text list 100 deep, where BM25 ties are common (short texts
/// of the same words); one workspace orders tied candidates by tantivy's doc address, shards by
/// shard then doc, so a tied verbatim's text rank, hence its fused score, may move by a place.
/// The rank-1 hit and at least 9 of the 10 are the same.
fn same_but_bm25_ties(what: &str, whole: &[(String, f64)], sharded: &[(String, f64)]) {
    assert_eq!(whole.len(), sharded.len(), "{what}");
    assert_eq!(whole[0].0, sharded[0].0, "{what}: {whole:?} vs {sharded:?}");
    let both = whole
        .iter()
        .filter(|h| sharded.iter().any(|o| o.0 == h.0))
        .count();
    assert!(
        both + 1 >= whole.len(),
        "{what}: {both} in common ({whole:?} vs {sharded:?})"
    );
}

#[test]
fn two_shards_answer_as_one_workspace_through_one_door() {
    let c = corpus();
    let door = c.shards[0].path().to_path_buf();
    let other = c.shards[1].path().to_path_buf();
    let n0 = Workspace::open(&door)
        .unwrap()
        .raw_store()
        .stats()
        .unwrap()
        .verbatims;
    assert!(n0 > 200 && n0 < 400, "an even split by the id's hash: {n0}");

    let (one, one_tokens) = serve(&[c.whole.path().to_path_buf()]);
    let (two, two_tokens) = serve(&[door.clone(), other.clone()]);
    let ask = |s: &RunningServer, tokens: &BTreeMap<Role, String>, body: Value| {
        let (status, v) = call(
            s.addr(),
            "POST",
            "/v1/search",
            Some(&tokens[&Role::Analyst]),
            Some(&body),
        );
        assert_eq!(status, 200, "{body}: {v}");
        v
    };
    let (audit_door, audit_other) = (audit_len(&door), audit_len(&other));
    let queries = [
        "battery life is too short",
        "the food was delicious",
        "terrible customer service",
        "waste of money",
        "the acting was great",
        "headset sound quality",
    ];
    let mut requests = 0;
    let mut shards_seen = std::collections::BTreeSet::new();
    for q in queries {
        for mode in ["vector", "text", "hybrid"] {
            let body = json!({"query": q, "mode": mode, "limit": 10});
            let a = ask(&one, &one_tokens, body.clone());
            let b = ask(&two, &two_tokens, body.clone());
            requests += 1;
            assert_eq!(hits(&a).len(), 10, "{q} {mode}: {a}");
            if mode == "hybrid" {
                same_but_bm25_ties(&format!("{q:?}"), &hits(&a), &hits(&b));
            } else {
                assert_same(&format!("{q:?} {mode}"), &hits(&a), &hits(&b), true);
            }
            for h in a["hits"].as_array().unwrap() {
                assert!(
                    h.get("shard").is_none(),
                    "one workspace names no shard: {h}"
                );
            }
            for h in b["hits"].as_array().unwrap() {
                shards_seen.insert(h["shard"].as_u64().expect("a shard's hit names it"));
            }
            if mode == "text" {
                // BM25 of a shard alone would not be the corpus's: the scores say so.
                let bm: Vec<f64> = b["hits"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["bm25"].as_f64().unwrap())
                    .collect();
                let want: Vec<f64> = hits(&a).iter().map(|h| h.1).collect();
                for (x, y) in bm.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-4, "{q}: bm25 {bm:?} vs {want:?}");
                }
            }
        }
    }
    assert_eq!(
        shards_seen.into_iter().collect::<Vec<_>>(),
        [0, 1],
        "hits come from both shards"
    );
    // A filter is resolved per shard (values matched to each store's), the same answer.
    let body = json!({"query": "good price", "mode": "hybrid", "limit": 10,
                      "where": {"domain": "AMAZON"}});
    let a = ask(&one, &one_tokens, body.clone());
    let b = ask(&two, &two_tokens, body);
    requests += 1;
    same_but_bm25_ties("filtered", &hits(&a), &hits(&b));
    assert!(b["hits"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["verbatim"]["fields"]["domain"] == "amazon"));

    // One audit entry per request, in the door's trail; none in the other shard's, and the
    // entry names the verbatims of both shards that it returned.
    assert_eq!(audit_len(&door), audit_door + requests);
    assert_eq!(audit_len(&other), audit_other);
    let entries = Workspace::open(&door)
        .unwrap()
        .raw_store()
        .audit_entries()
        .unwrap();
    let last = entries.last().unwrap();
    assert_eq!(
        last.ids,
        hits(&b).into_iter().map(|h| h.0).collect::<Vec<_>>(),
        "{last:?}"
    );

    // Aggregates-only callers: segment counts over the merged results, no themes.
    let body = json!({"query": "waste of money", "mode": "hybrid", "limit": 50});
    let (sa, a) = call(
        one.addr(),
        "POST",
        "/v1/search",
        Some(&one_tokens[&Role::Marketing]),
        Some(&body),
    );
    let (sb, b) = call(
        two.addr(),
        "POST",
        "/v1/search",
        Some(&two_tokens[&Role::Marketing]),
        Some(&body),
    );
    assert_eq!((sa, sb), (200, 200), "{a} {b}");
    assert_eq!(a["aggregate"]["segments"], b["aggregate"]["segments"]);
    assert!(b["aggregate"]["themes_note"].as_str().is_some(), "{b}");
    assert!(b.get("hits").is_none());

    // Stats of the corpus: the whole's counts; each shard's own beside them.
    let (_, sa) = call(
        one.addr(),
        "GET",
        "/v1/stats",
        Some(&one_tokens[&Role::Analyst]),
        None,
    );
    let (_, sb) = call(
        two.addr(),
        "GET",
        "/v1/stats",
        Some(&two_tokens[&Role::Analyst]),
        None,
    );
    for k in [
        "verbatims",
        "respondents",
        "fields",
        "languages",
        "first_ts",
        "last_ts",
    ] {
        assert_eq!(sa["store"][k], sb["store"][k], "{k}: {sa} vs {sb}");
    }
    assert_eq!(sb["text_index"]["documents"], 600);
    assert_eq!(sb["vector_index"]["points"], 600);
    let parts = sb["shards"].as_array().expect("each shard's counts");
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["store"]["verbatims"], n0);
    assert_eq!(
        parts[0]["store"]["verbatims"].as_i64().unwrap()
            + parts[1]["store"]["verbatims"].as_i64().unwrap(),
        600
    );
    assert!(sa.get("shards").is_none());

    // What cannot fan out says so, by route, rather than answer from the door's shard alone.
    let analyst = Some(two_tokens[&Role::Analyst].as_str());
    for (method, path, body) in [
        (
            "POST",
            "/v1/ask",
            Some(json!({"question": "what about the battery?"})),
        ),
        ("GET", "/v1/themes", None),
        ("POST", "/v1/report", Some(json!({}))),
        ("GET", "/v1/themes/C1", None),
    ] {
        let (status, v) = call(two.addr(), method, path, analyst, body.as_ref());
        assert_eq!(status, 400, "{method} {path}: {v}");
        assert_eq!(error_code(&v), "bad_request");
        let m = v["error"]["message"].as_str().unwrap();
        let route = path.trim_end_matches("C1");
        assert!(m.contains(route) && m.contains("shards"), "{m}");
    }
    let (status, v) = call(
        two.addr(),
        "POST",
        "/v1/ingest",
        Some(&two_tokens[&Role::Admin]),
        Some(&json!({"format": "csv", "data": "text\nhello there\n"})),
    );
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("shards"));
    // The door's audit trail is the server's.
    let (status, v) = call(
        two.addr(),
        "GET",
        "/v1/audit",
        Some(&two_tokens[&Role::Admin]),
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["entries"].as_array().unwrap().len(), audit_len(&door) - 1);
    one.shutdown();
    two.shutdown();
}

/// A workspace with `rows` ingested by the hashing embedder of `dim` dimensions.
fn hashed(key_of: Option<&Path>, dim: usize) -> tempfile::TempDir {
    let dir = match key_of {
        Some(k) => workspace_with_key_of(k),
        None => workspace(),
    };
    let file = dir.path().join("rows.jsonl");
    std::fs::write(
        &file,
        "{\"id\": \"a\", \"text\": \"late delivery\"}\n{\"id\": \"b\", \"text\": \"great taste\"}\n",
    )
    .unwrap();
    let mut ws = Workspace::open(dir.path()).unwrap();
    let opts = verbatim::workspace::ingest::IngestOptions {
        mapping: Some(verbatim::ingest::Mapping {
            text: vec!["text".into()],
            id: Some("id".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    verbatim::workspace::ingest::ingest_file(
        &mut ws,
        &verbatim::embed::HashEmbedder::with_dim(dim),
        &file,
        &opts,
        &verbatim::workspace::ingest::NoProgress,
    )
    .unwrap();
    dir
}

fn refused(roots: &[PathBuf]) -> (PathBuf, String) {
    match server::start_shards(roots, None, options(roomy(), None)) {
        Err(ServerError::Shard { workspace, message }) => (workspace, message),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("{roots:?} served"),
    }
}

#[test]
fn shards_of_another_key_or_model_or_a_folder_twice_are_refused_by_name() {
    let a = hashed(None, 32);
    let same_model = hashed(Some(a.path()), 32);
    let other_model = hashed(Some(a.path()), 64);
    let other_key = hashed(None, 32);
    let (a_p, m_p, k_p) = (
        a.path().to_path_buf(),
        other_model.path().to_path_buf(),
        other_key.path().to_path_buf(),
    );
    // The same key and model: served.
    server::start_shards(
        &[a_p.clone(), same_model.path().to_path_buf()],
        None,
        options(roomy(), None),
    )
    .expect("shards that agree are served")
    .shutdown();
    let (w, m) = refused(&[a_p.clone(), m_p.clone()]);
    assert_eq!(w, m_p);
    assert!(m.contains("model") && m.contains("dim=64"), "{m}");
    let (w, m) = refused(&[a_p.clone(), k_p.clone()]);
    assert_eq!(w, k_p);
    assert!(m.contains("key"), "{m}");
    let (w, m) = refused(&[a_p.clone(), a_p.join(".")]);
    assert_eq!(w, a_p.join("."));
    assert!(m.contains("twice"), "{m}");

    // The binary: exit 2, the workspace named, nothing served.
    let mut child = verbatim(&a_p)
        .args(["serve", "--bind", "127.0.0.1:0", "--workspace"])
        .arg(&a_p)
        .arg("--workspace")
        .arg(&k_p)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("serve with a shard of another key is running");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains(&k_p.display().to_string()) && err.contains("key"),
        "{err}"
    );
    // Other commands take one workspace.
    let o = run(verbatim(&a_p)
        .args(["stats", "--workspace"])
        .arg(&a_p)
        .arg("--workspace")
        .arg(&k_p));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("only `serve`"), "{}", stderr(&o));
}
