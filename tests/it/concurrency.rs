//! The server's concurrency (issue 17, item 3): quick reads answer while slow work runs,
//! many connections at once all get their own right answer, every read's audit entry is
//! committed before its response and the chain still verifies after a burst, and a client
//! trickling its body holds up no one.
//!
//! Nothing here asserts a speed: only orderings (the quick ones finish before the slow one)
//! and correctness. Throughput and latencies are measured by `benches/serve_load.rs`.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use verbatim::access::Role;
use verbatim::workspace::Workspace;

use crate::server::{call, roomy, Served};

/// The ids a search returned, in order (panics on anything but 200).
fn search_ids(addr: SocketAddr, token: &str, body: &Value) -> Vec<String> {
    let (st, v) = call(addr, "POST", "/v1/search", Some(token), Some(body));
    assert_eq!(st, 200, "{body}: {v}");
    v["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("no hits in {v}"))
        .iter()
        .map(|h| h["verbatim"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// Mixed searches over uci_600: text, hybrid and vector, with and without filters.
fn mixed_queries() -> Vec<Value> {
    let words = [
        "battery",
        "great food",
        "terrible service",
        "sound quality",
        "waited too long",
        "the phone broke",
        "friendly staff",
        "worst movie",
    ];
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let mode = ["text", "hybrid", "vector"][i % 3];
        out.push(json!({ "query": w, "mode": mode, "limit": 5 }));
        out.push(json!({ "query": w, "mode": "text", "limit": 5, "where": { "domain": "yelp" } }));
    }
    out
}

/// While a report runs (the aspect tree over 600 verbatims, on the writer) and an `ask` is
/// answered by the local LLM (SmolLM2, on the ask connection), text searches on other
/// connections answer, every one of them before the report and the generated answer do.
/// Before the read pool, each waited for them behind one mutex.
#[test]
fn quick_searches_answer_while_a_report_and_an_ask_run() {
    let s = Served::start(true, roomy(), None);
    let (addr, token) = (s.addr, s.token(Role::Analyst).to_string());
    // The indexes are opened and the sentiments filled before the clock starts.
    search_ids(addr, &token, &json!({ "query": "battery", "mode": "text" }));
    let t0 = Instant::now();
    let slow = |path: &'static str, body: Value| {
        let token = token.clone();
        std::thread::spawn(move || {
            let (st, v) = call(addr, "POST", path, Some(&token), Some(&body));
            assert_eq!(st, 200, "{path}: {v}");
            (v, t0.elapsed())
        })
    };
    let report = slow("/v1/report", json!({}));
    let ask = slow(
        "/v1/ask",
        json!({ "question": "Why are customers unhappy with the battery?", "max_tokens": 160 }),
    );
    // Until both are under way.
    let server = s.server.as_ref().unwrap();
    while server.in_flight() < 2 && !(report.is_finished() && ask.is_finished()) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut quick = Vec::new();
    for q in ["battery", "food", "service", "screen", "waited"] {
        let ids = search_ids(
            addr,
            &token,
            &json!({ "query": q, "mode": "text", "limit": 5 }),
        );
        assert!(!ids.is_empty(), "{q}: no hits");
        quick.push((q, t0.elapsed()));
    }
    let (_, report_done) = report.join().unwrap();
    let (answer, ask_done) = ask.join().unwrap();
    eprintln!("report {report_done:?}, ask {ask_done:?}; searches answered at {quick:?}");
    let generated = answer.get("generation").is_some_and(|g| !g.is_null());
    for (q, done) in &quick {
        assert!(
            *done < report_done,
            "search {q:?} answered at {done:?}, after the report ({report_done:?})"
        );
        // Without the generator the answer is extractive and quick: no ordering to check.
        assert!(
            !generated || *done < ask_done,
            "search {q:?} answered at {done:?}, after the generated answer ({ask_done:?})"
        );
    }
}

/// 32 connections at once, each sending the mixed searches: no errors, and every response
/// is the one the same search gets alone. Then every one of those reads is in the audit trail
/// exactly once, and the chain verifies — over HTTP (`GET /v1/check`) and from the file.
#[test]
fn thirty_two_connections_of_mixed_searches_then_the_audit_chain_verifies() {
    let s = Served::start(true, roomy(), None);
    let (addr, token) = (s.addr, s.token(Role::Analyst).to_string());
    let queries = mixed_queries();
    let expected: Vec<Vec<String>> = queries
        .iter()
        .map(|q| search_ids(addr, &token, q))
        .collect();
    assert!(expected.iter().filter(|e| !e.is_empty()).count() >= queries.len() / 2);
    let audit_before = audit_len(s.dir.path());
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(32));
    let workers: Vec<_> = (0..32)
        .map(|w| {
            let (queries, expected, token, barrier) = (
                queries.clone(),
                expected.clone(),
                token.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                // Each connection starts at another query, so all kinds run at once.
                for k in 0..4 {
                    let i = (w * 3 + k) % queries.len();
                    let got = search_ids(addr, &token, &queries[i]);
                    assert_eq!(got, expected[i], "connection {w}: {}", queries[i]);
                }
            })
        })
        .collect();
    for w in workers {
        w.join()
            .expect("a connection got an error or a wrong answer");
    }
    let (st, check) = s.call("GET", "/v1/check", Role::Admin, None);
    assert_eq!(st, 200, "{check}");
    assert_eq!(check["clean"], true, "{check}");
    drop(s.server);
    let ws = Workspace::open(s.dir.path()).unwrap();
    let verdict = ws.verify_audit().unwrap();
    assert_eq!(verdict.broken, None);
    let entries = ws.raw_store().audit_entries().unwrap();
    let searches = entries[audit_before..]
        .iter()
        .filter(|e| e.action == "POST /v1/search")
        .count();
    assert_eq!(searches, 32 * 4, "one entry per search of the burst");
}

/// Entries in the workspace's audit trail, read through a connection of its own.
fn audit_len(dir: &std::path::Path) -> usize {
    Workspace::open(dir)
        .unwrap()
        .raw_store()
        .audit_entries()
        .unwrap()
        .len()
}

/// When the client has its response, the read's audit entry is committed: a connection
/// opened afterwards (another process would see the same file) finds it, with the ids that
/// came back — for searches answered while other connections search at the same time.
#[test]
fn each_reads_audit_entry_is_committed_before_its_response() {
    let s = Served::start(true, roomy(), None);
    let (addr, token) = (s.addr, s.token(Role::Analyst).to_string());
    let dir = s.dir.path().to_path_buf();
    let noise = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let background: Vec<_> = (0..4)
        .map(|_| {
            let (token, noise) = (token.clone(), noise.clone());
            std::thread::spawn(move || {
                while noise.load(std::sync::atomic::Ordering::Relaxed) {
                    search_ids(addr, &token, &json!({ "query": "good", "mode": "text" }));
                }
            })
        })
        .collect();
    for n in 0..8 {
        let q = format!("battery {n}");
        let ids = search_ids(addr, &token, &json!({ "query": q, "mode": "text" }));
        let ws = Workspace::open(&dir).unwrap();
        let entries = ws.raw_store().audit_entries().unwrap();
        let e = entries
            .iter()
            .rev()
            .find(|e| {
                e.action == "POST /v1/search"
                    && serde_json::to_string(&e.detail).unwrap().contains(&q)
            })
            .unwrap_or_else(|| panic!("no audit entry for {q:?} when its response came"));
        assert_eq!(e.ids, ids, "{q}");
    }
    noise.store(false, std::sync::atomic::Ordering::Relaxed);
    for b in background {
        b.join().unwrap();
    }
}

/// A client sending its search body one byte at a time holds a task and its socket, never a
/// read connection: with a single reader, other clients' searches all answer while it
/// trickles, and its own request is still answered, correctly, once its body is complete.
#[test]
fn a_client_trickling_its_body_holds_up_no_one() {
    let mut limits = roomy();
    limits.readers = Some(1);
    let s = Served::start(true, limits, None);
    let (addr, token) = (s.addr, s.token(Role::Analyst).to_string());
    let body = json!({ "query": "battery", "mode": "text", "limit": 3 }).to_string();
    let expected = search_ids(addr, &token, &serde_json::from_str(&body).unwrap());
    let trickle = {
        let (token, body) = (token.clone(), body.clone());
        std::thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            write!(
                c,
                "POST /v1/search HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .unwrap();
            for b in body.as_bytes() {
                c.write_all(&[*b]).unwrap();
                c.flush().unwrap();
                std::thread::sleep(Duration::from_millis(60));
            }
            let r = crate::server::read_reply(c, "the trickled search");
            (r, Instant::now())
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let mut last_quick = Instant::now();
    for _ in 0..10 {
        let got = search_ids(addr, &token, &json!({ "query": "food", "mode": "text" }));
        assert!(!got.is_empty());
        last_quick = Instant::now();
    }
    let (reply, trickle_done) = trickle.join().unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let got: Vec<String> = reply.json()["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["verbatim"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, expected);
    assert!(
        last_quick < trickle_done,
        "the quick searches waited for the trickling client"
    );
}

/// While an HTTP ingest reads, embeds and stores 1,000 new verbatims (seconds of work on the
/// writer), searches on other connections answer over what was there before, every one
/// before the ingest does; once the ingest has returned, its verbatims are found. Before, an
/// ingest held the indexes (and so every search) for its whole run.
#[test]
fn searches_answer_while_an_ingest_runs() {
    let s = Served::start(true, roomy(), None);
    let (addr, token) = (s.addr, s.token(Role::Analyst).to_string());
    let before = search_ids(addr, &token, &json!({ "query": "battery", "mode": "text" }));
    let all =
        std::fs::read_to_string(crate::common::repo().join("data/uci_sentiment.csv")).unwrap();
    let mut csv: String = all
        .lines()
        .take(1001)
        .map(|l| format!("{}\n", l.replacen("uci-", "again-uci-", 1)))
        .collect();
    csv.push_str("again-marker,The zygomorphic kettle descaler works wonders,positive,amazon\n");
    let auth = format!("Bearer {}", s.token(Role::Admin));
    let t0 = Instant::now();
    let upload = std::thread::spawn(move || {
        let r = crate::server::request(
            addr,
            "POST",
            "/v1/ingest?text=text&id=id&field=sentiment&field=domain&name=again.csv",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "text/csv"),
            ],
            csv.as_bytes(),
        );
        (r.status, r.json(), t0.elapsed())
    });
    let server = s.server.as_ref().unwrap();
    while server.in_flight() == 0 && !upload.is_finished() {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut quick = Vec::new();
    for _ in 0..5 {
        let ids = search_ids(addr, &token, &json!({ "query": "battery", "mode": "text" }));
        assert!(!ids.is_empty());
        quick.push(t0.elapsed());
    }
    let (status, summary, ingest_done) = upload.join().unwrap();
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["stored"].as_u64(), Some(1001), "{summary}");
    eprintln!("ingest {ingest_done:?}; searches answered at {quick:?}");
    for done in &quick {
        assert!(
            *done < ingest_done,
            "a search answered at {done:?}, after the ingest ({ingest_done:?})"
        );
    }
    assert_eq!(
        search_ids(
            addr,
            &token,
            &json!({ "query": "zygomorphic descaler", "mode": "text" })
        ),
        vec!["again-marker".to_string()]
    );
    let hybrid = search_ids(
        addr,
        &token,
        &json!({ "query": "zygomorphic kettle descaler", "mode": "hybrid", "limit": 3 }),
    );
    assert!(hybrid.contains(&"again-marker".to_string()), "{hybrid:?}");
    assert!(!before.is_empty());
}
