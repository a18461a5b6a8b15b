//! `verbatim serve`: the HTTP API, spoken to over raw TCP (no HTTP client crate in the tree) and
//! over rustls's client side for TLS.
//!
//! The helpers are meant for other tests too: [`Served::start`] gives a server on a free port
//! with one token per role, [`call`] sends one request and returns (status, JSON).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use verbatim::access::{Caller, Principal, Role};
use verbatim::embed::{EmbedOptions, Embedder, SentenceTransformer};
use verbatim::server::{self, RunningServer, ServeOptions, TlsFiles};
use verbatim::store::Filter;
use verbatim::workspace::{ServeConfig, Workspace};

use crate::common;

/// One HTTP response.
pub struct Reply {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Writes one HTTP/1.1 request (`Connection: close`) on `stream` and reads the whole reply.
pub fn exchange<S: Read + Write>(
    mut stream: S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .expect("write request head");
    // A server may answer (413) before reading a large body: keep going to read its reply.
    let _ = stream.write_all(body);
    let _ = stream.flush();
    read_reply(stream, &format!("{method} {path}"))
}

/// Reads a whole reply from `stream` (whose request, `what`, was sent).
pub fn read_reply<S: Read>(mut stream: S, what: &str) -> Reply {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // rustls reports a peer that closed without close_notify; the reply is complete.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the reply to {what}: {e}"),
        }
    }
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size");
            let size = usize::from_str_radix(
                std::str::from_utf8(&rest[..nl])
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap()
                    .trim(),
                16,
            )
            .expect("hex chunk size");
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// One request over plain TCP.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    exchange(s, method, path, headers, body)
}

/// One JSON request: `(status, body as JSON)`. `token`: sent as `Authorization: Bearer`.
pub fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let r = request(addr, method, path, &headers, &bytes);
    let v = r.json();
    (r.status, v)
}

/// Asserts the error shape and returns its code.
pub fn error_code(v: &Value) -> &str {
    let e = &v["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message: {v}"
    );
    e["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {v}"))
}

/// The model, loaded once for the whole test binary.
pub fn model() -> Arc<dyn Embedder> {
    static M: OnceLock<Arc<SentenceTransformer>> = OnceLock::new();
    M.get_or_init(|| {
        Arc::new(SentenceTransformer::load(&common::model_dir(), &EmbedOptions::default()).unwrap())
    })
    .clone()
}

/// A workspace with uci_600 ingested, made once and copied for each test.
fn template() -> &'static Path {
    static T: OnceLock<tempfile::TempDir> = OnceLock::new();
    T.get_or_init(|| {
        let ws = common::workspace();
        common::ingest_uci(ws.path());
        ws
    })
    .path()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A running server on 127.0.0.1:0 over its own workspace, with one token per role.
pub struct Served {
    pub dir: tempfile::TempDir,
    pub server: Option<RunningServer>,
    pub addr: SocketAddr,
    pub tokens: BTreeMap<Role, String>,
}

impl Served {
    /// Over a copy of the ingested template (`ingested`) or an empty workspace.
    pub fn start(ingested: bool, limits: ServeConfig, tls: Option<TlsFiles>) -> Served {
        let dir = if ingested {
            let d = tempfile::tempdir().unwrap();
            copy_dir(template(), d.path());
            d
        } else {
            common::workspace()
        };
        let mut ws = Workspace::open(dir.path()).unwrap();
        let mut tokens = BTreeMap::new();
        for role in Role::ALL {
            let p = Principal {
                name: format!("{role}-user"),
                role,
                scope: Filter::default(),
                expires: (role == Role::Consultant).then_some(4_102_444_800), // 2100
            };
            let kind = if role == Role::Consultant {
                "grant"
            } else {
                "user"
            };
            let made = ws.add_principal(p, kind, &Caller::Owner).unwrap();
            tokens.insert(role, made.token);
        }
        drop(ws);
        let server =
            server::start(dir.path(), Some(model()), options(limits, tls)).expect("server starts");
        let addr = server.addr();
        Served {
            dir,
            server: Some(server),
            addr,
            tokens,
        }
    }

    pub fn token(&self, role: Role) -> &str {
        &self.tokens[&role]
    }

    pub fn call(&self, method: &str, path: &str, role: Role, body: Option<&Value>) -> (u16, Value) {
        call(self.addr, method, path, Some(self.token(role)), body)
    }
}

/// How the tests serve: on a free loopback port, with `limits` and `tls`, the test model, the
/// settings resolved from those flags alone (no environment, no file).
pub fn options(limits: ServeConfig, tls: Option<TlsFiles>) -> ServeOptions {
    let flags = verbatim::settings::Overrides {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: tls.as_ref().map(|t| t.cert.clone()),
        tls_key: tls.as_ref().map(|t| t.key.clone()),
        rate_per_second: Some(limits.rate_per_second),
        burst: Some(limits.burst),
        max_body_bytes: Some(limits.max_body_bytes),
        max_ingest_bytes: Some(limits.max_ingest_bytes),
        readers: limits.readers,
        ..Default::default()
    };
    let env = verbatim::settings::EnvLayer::from_lookup(|_| None);
    ServeOptions {
        settings: verbatim::settings::Settings::resolve(&flags, &env, None).unwrap(),
        handle_signals: false,
        model_dir: Some(common::model_dir()),
    }
}

/// Limits high enough that no test trips the rate limit by accident.
pub fn roomy() -> ServeConfig {
    ServeConfig {
        rate_per_second: 1000.0,
        burst: 1000,
        ..ServeConfig::default()
    }
}

#[test]
fn health_and_openapi_need_no_token_and_openapi_lists_every_route() {
    let s = Served::start(false, roomy(), None);
    let (st, v) = call(s.addr, "GET", "/v1/health", None, None);
    assert_eq!((st, v["status"].as_str()), (200, Some("ok")));
    let (st, doc) = call(s.addr, "GET", "/openapi.json", None, None);
    assert_eq!(st, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for r in server::ROUTES {
        let op = &paths
            .get(r.path)
            .unwrap_or_else(|| panic!("{} {} missing from /openapi.json", r.method, r.path))
            [r.method.to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{} {} missing from /openapi.json",
            r.method,
            r.path
        );
        assert!(
            op["responses"]["200"].is_object(),
            "{} {}: no 200",
            r.method,
            r.path
        );
        if r.auth {
            assert!(
                op.get("security").is_none(),
                "{} overrides security",
                r.path
            );
            for code in ["401", "403", "429", "500"] {
                assert_eq!(
                    op["responses"][code]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{} {}: no {code} error",
                    r.method,
                    r.path
                );
            }
        } else {
            assert_eq!(
                op["security"],
                json!([]),
                "{} must say it needs no token",
                r.path
            );
        }
    }
    // And nothing documented that the router does not serve.
    for (p, ops) in paths {
        for m in ops.as_object().unwrap().keys() {
            assert!(
                server::ROUTES
                    .iter()
                    .any(|r| r.path == p && r.method.eq_ignore_ascii_case(m)),
                "/openapi.json documents {m} {p}, which is not routed"
            );
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Error"].is_object());
    // Every $ref resolves.
    let text = doc.to_string();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
}

#[test]
fn every_route_in_the_table_is_routed() {
    let s = Served::start(true, roomy(), None);
    let id = common::uci_rows()[0].0.clone();
    for r in server::ROUTES {
        let path = r
            .path
            .replace("{id}", if r.path.contains("themes") { "T1" } else { &id });
        let body = match r.path {
            "/v1/search" => Some(json!({ "query": "battery", "mode": "text" })),
            "/v1/ask" => Some(json!({ "question": "" })), // 400 is enough: routed
            "/v1/ingest" => None,
            "/v1/report" => Some(json!({})),
            _ => None,
        };
        let (st, v) = s.call(r.method, &path, Role::Admin, body.as_ref());
        assert!(
            st != 404 && st != 405 || path.contains("T1"),
            "{} {path}: {st} {v}",
            r.method
        );
        assert!(
            st != 401 && st != 403 && st != 500,
            "{} {path}: {st} {v}",
            r.method
        );
    }
}

#[test]
fn tokens_missing_bad_revoked() {
    let s = Served::start(false, roomy(), None);
    let (st, v) = call(s.addr, "GET", "/v1/stats", None, None);
    assert_eq!((st, error_code(&v)), (401, "unauthenticated"));
    let (st, v) = call(s.addr, "GET", "/v1/stats", Some("vbt_0000_nope"), None);
    assert_eq!((st, error_code(&v)), (401, "unauthenticated"));
    let r = request(
        s.addr,
        "GET",
        "/v1/stats",
        &[("Authorization", "Basic abc")],
        b"",
    );
    assert_eq!(r.status, 401);
    assert!(r.headers["www-authenticate"].starts_with("Bearer"));
    // A good token, twice (the second from the cache), then revoked: refused at once.
    let (st, v) = s.call("GET", "/v1/stats", Role::Analyst, None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(s.call("GET", "/v1/stats", Role::Analyst, None).0, 200);
    let mut ws = Workspace::open(s.dir.path()).unwrap();
    ws.revoke_principal("analyst-user").unwrap();
    let (st, v) = s.call("GET", "/v1/stats", Role::Analyst, None);
    assert_eq!((st, error_code(&v)), (401, "unauthenticated"), "{v}");
    // Others are unaffected.
    assert_eq!(s.call("GET", "/v1/stats", Role::Admin, None).0, 200);
}

#[test]
fn roles_are_the_librarys_and_the_audit_names_the_route() {
    let s = Served::start(true, roomy(), None);
    let id = common::uci_rows()[0].0.clone();
    let original = format!("/v1/verbatims/{id}/original");
    let (st, v) = s.call("GET", "/v1/audit", Role::Analyst, None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = s.call("GET", &original, Role::Marketing, None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = s.call("GET", &original, Role::Support, None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["id"], id.as_str());
    let (st, v) = s.call(
        "GET",
        "/v1/verbatims/no-such-id/original",
        Role::Support,
        None,
    );
    assert_eq!((st, error_code(&v)), (404, "not_found"), "{v}");
    let q = json!({ "query": "battery life", "mode": "text", "limit": 3 });
    let (st, v) = s.call("POST", "/v1/search", Role::Analyst, Some(&q));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["hits"].as_array().unwrap().len(), 3);
    // Marketing: aggregates, no text.
    let (st, v) = s.call("POST", "/v1/search", Role::Marketing, Some(&q));
    assert_eq!(st, 200, "{v}");
    assert!(v.get("hits").is_none() && v["aggregate"].is_object(), "{v}");
    let (st, v) = s.call("GET", "/v1/audit?user=support-user", Role::Admin, None);
    assert_eq!(st, 200, "{v}");
    let entries = v["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "GET /v1/verbatims/{id}/original"
                && e["ids"].to_string().contains(&id)),
        "{v}"
    );
}

#[test]
fn search_text_and_hybrid_with_filters() {
    let s = Served::start(true, roomy(), None);
    for mode in ["text", "hybrid", "vector"] {
        let q = json!({ "query": "the battery died", "mode": mode, "limit": 5,
                        "where": { "domain": "amazon" } });
        let (st, v) = s.call("POST", "/v1/search", Role::Analyst, Some(&q));
        assert_eq!(st, 200, "{mode}: {v}");
        let hits = v["hits"].as_array().unwrap();
        assert!(!hits.is_empty(), "{mode}: {v}");
        assert!(hits.len() <= 5);
    }
    let bad = json!({ "query": "x", "since": "yesterday" });
    let (st, v) = s.call("POST", "/v1/search", Role::Analyst, Some(&bad));
    assert_eq!((st, error_code(&v)), (400, "bad_request"));
}

#[test]
fn search_filters_on_sentiment_in_every_mode() {
    let s = Served::start(true, roomy(), None);
    for mode in ["text", "hybrid", "vector"] {
        let ids = |sentiment: &str| -> Vec<String> {
            let q = json!({ "query": "the battery died", "mode": mode, "limit": 20,
                            "sentiment": sentiment });
            let (st, v) = s.call("POST", "/v1/search", Role::Analyst, Some(&q));
            assert_eq!(st, 200, "{mode}: {v}");
            assert_eq!(v["query"]["sentiment"], sentiment, "{v}");
            v["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["verbatim"]["id"].as_str().unwrap().to_string())
                .collect()
        };
        let (neg, pos) = (ids("negative"), ids("positive"));
        assert!(
            !neg.is_empty() && !pos.is_empty(),
            "{mode}: {neg:?} {pos:?}"
        );
        assert!(
            !neg.iter().any(|d| pos.contains(d)),
            "{mode}: in both: {neg:?} {pos:?}"
        );
    }
    let bad = json!({ "query": "x", "sentiment": "angry" });
    let (st, v) = s.call("POST", "/v1/search", Role::Analyst, Some(&bad));
    assert_eq!(st, 400, "{v}");
}

#[test]
fn json_errors_for_unknown_routes_methods_and_bodies() {
    let s = Served::start(false, roomy(), None);
    let (st, v) = call(s.addr, "GET", "/v2/nothing", None, None);
    assert_eq!((st, error_code(&v)), (404, "not_found"));
    let (st, v) = s.call("GET", "/v1/nothing", Role::Admin, None);
    assert_eq!((st, error_code(&v)), (404, "not_found"));
    let (st, v) = s.call("DELETE", "/v1/search", Role::Admin, None);
    assert_eq!((st, error_code(&v)), (405, "method_not_allowed"));
    let auth = format!("Bearer {}", s.token(Role::Admin));
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let r = request(s.addr, "POST", "/v1/search", &h, b"{\"query\": ");
    assert_eq!((r.status, error_code(&r.json())), (400, "bad_request"));
    let r = request(
        s.addr,
        "POST",
        "/v1/search",
        &h,
        b"{\"query\": \"x\", \"colour\": 1}",
    );
    assert_eq!((r.status, error_code(&r.json())), (400, "bad_request"));
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("colour"));
    let r = request(s.addr, "POST", "/v1/search", &h, b"[1, 2]");
    assert_eq!((r.status, error_code(&r.json())), (400, "bad_request"));
    let h2 = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "text/plain"),
    ];
    let r = request(s.addr, "POST", "/v1/search", &h2, b"query");
    assert_eq!(
        (r.status, error_code(&r.json())),
        (415, "unsupported_media_type")
    );
    let (st, v) = s.call("GET", "/v1/stats?verbose=1", Role::Admin, None);
    assert_eq!((st, error_code(&v)), (400, "bad_request"));
}

#[test]
fn bodies_over_the_limit_get_413() {
    let limits = ServeConfig {
        max_body_bytes: 16 * 1024,
        max_ingest_bytes: 64 * 1024,
        ..roomy()
    };
    let s = Served::start(false, limits, None);
    let big = json!({ "query": "x".repeat(20 * 1024) });
    let (st, v) = s.call("POST", "/v1/search", Role::Admin, Some(&big));
    assert_eq!((st, error_code(&v)), (413, "payload_too_large"), "{v}");
    let auth = format!("Bearer {}", s.token(Role::Admin));
    let csv = format!("text\n{}", "a long line of feedback\n".repeat(4000));
    let r = request(
        s.addr,
        "POST",
        "/v1/ingest?format=csv&text=text",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "text/csv"),
        ],
        csv.as_bytes(),
    );
    assert_eq!(
        (r.status, error_code(&r.json())),
        (413, "payload_too_large")
    );
    // Under the limit, the same route works.
    assert_eq!(
        s.call(
            "POST",
            "/v1/search",
            Role::Admin,
            Some(&json!({"query": "x", "mode": "text"}))
        )
        .0,
        200
    );
}

#[test]
fn rate_limit_answers_429_with_retry_after_per_token() {
    let limits = ServeConfig {
        rate_per_second: 0.2,
        burst: 3,
        ..ServeConfig::default()
    };
    let s = Served::start(false, limits, None);
    for i in 0..3 {
        let (st, v) = s.call("GET", "/v1/stats", Role::Admin, None);
        assert_eq!(st, 200, "request {i}: {v}");
    }
    let auth = format!("Bearer {}", s.token(Role::Admin));
    let r = request(
        s.addr,
        "GET",
        "/v1/stats",
        &[("Authorization", auth.as_str())],
        b"",
    );
    assert_eq!((r.status, error_code(&r.json())), (429, "rate_limited"));
    let retry: u64 = r.headers["retry-after"].parse().unwrap();
    assert!((1..=5).contains(&retry), "Retry-After {retry}");
    // Another token has its own bucket.
    assert_eq!(s.call("GET", "/v1/stats", Role::Analyst, None).0, 200);
}

#[test]
fn ingest_csv_with_query_mapping_and_jsonl_envelope() {
    let s = Served::start(false, roomy(), None);
    let auth = format!("Bearer {}", s.token(Role::Admin));
    let csv = "id,comment,country\nA1,The parcel arrived two weeks late,FR\nA2,\"Great support, quick refund\",BE\nA3,,FR\n";
    let r = request(
        s.addr,
        "POST",
        "/v1/ingest?text=comment&id=id&field=country&name=march.csv",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "text/csv"),
        ],
        csv.as_bytes(),
    );
    let v = r.json();
    assert_eq!(r.status, 200, "{v}");
    assert_eq!(
        (v["stored"].as_u64(), v["rejected"].as_u64()),
        (Some(2), Some(1)),
        "{v}"
    );
    assert_eq!(v["file"], "march.csv");
    assert!(
        v["errors"][0].as_str().unwrap().starts_with("march.csv:"),
        "{v}"
    );
    // Searchable at once (the server's open indexes follow the store).
    let (st, v) = s.call(
        "POST",
        "/v1/search",
        Role::Analyst,
        Some(&json!({"query": "parcel late", "mode": "text"})),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["hits"][0]["verbatim"]["id"], "A1", "{v}");
    // JSON envelope, JSONL.
    let env = json!({ "format": "jsonl", "data": "{\"id\": \"B1\", \"msg\": \"app crashes on login\"}\n",
                      "mapping": { "text": ["msg"], "id": "id" } });
    let (st, v) = s.call("POST", "/v1/ingest", Role::Admin, Some(&env));
    assert_eq!((st, v["stored"].as_u64()), (200, Some(1)), "{v}");
    // No format: 400. Analysts may not write: 403.
    let r = request(
        s.addr,
        "POST",
        "/v1/ingest",
        &[("Authorization", auth.as_str())],
        b"x\n",
    );
    assert_eq!(r.status, 400);
    let (st, v) = s.call("POST", "/v1/ingest", Role::Analyst, Some(&env));
    assert_eq!((st, error_code(&v)), (403, "forbidden"), "{v}");
    // Uploads are read from memory: no copy of a customer file ever lands on disk.
    assert!(
        !s.dir.path().join("uploads").exists(),
        "an upload was written to the workspace"
    );
}

#[test]
fn tls_round_trip_with_a_self_signed_certificate() {
    use tokio_rustls::rustls;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let certs = tempfile::tempdir().unwrap();
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let s = Served::start(false, roomy(), Some(TlsFiles { cert, key }));
    assert!(s.server.as_ref().unwrap().is_tls());

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let tls_call = |path: &str, token: Option<&str>| {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
        let tcp = TcpStream::connect(s.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let auth = token.map(|t| format!("Bearer {t}"));
        let h: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        exchange(rustls::StreamOwned::new(conn, tcp), "GET", path, &h, b"")
    };
    let r = tls_call("/v1/health", None);
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ok")));
    let r = tls_call("/v1/stats", Some(s.token(Role::Admin)));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut tcp = TcpStream::connect(s.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    tcp.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = tcp.read_to_end(&mut buf);
    assert!(
        !buf.starts_with(b"HTTP/1.1 200"),
        "plain HTTP was served on the TLS port"
    );
}

#[test]
fn graceful_shutdown_finishes_an_ingest_in_flight() {
    let mut s = Served::start(false, roomy(), None);
    let csv = std::fs::read(common::fixture("uci_600.csv")).unwrap();
    let auth = format!("Bearer {}", s.token(Role::Admin));
    let addr = s.addr;
    let client = std::thread::spawn(move || {
        request(
            addr,
            "POST",
            "/v1/ingest?format=csv&text=text&id=id&field=domain",
            &[("Authorization", auth.as_str())],
            &csv,
        )
    });
    let server = s.server.take().unwrap();
    // Wait until the ingest is running (past the token check), then ask the server to stop.
    let t0 = Instant::now();
    while server.in_flight() == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the ingest never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.in_flight() > 0,
        "the ingest finished before the shutdown: test too weak"
    );
    server.shutdown();
    // The listener is gone: new connections are refused.
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
    let r = client.join().unwrap();
    let v = r.json();
    assert_eq!(r.status, 200, "{v}");
    let stored = v["stored"].as_u64().unwrap();
    assert!(stored > 500, "{v}");
    let ws = Workspace::open(s.dir.path()).unwrap();
    assert_eq!(ws.raw_store().stats().unwrap().verbatims as u64, stored);
}

#[test]
fn the_binary_serves_and_stops_cleanly_on_sigterm() {
    let ws = common::workspace();
    let mut child = common::verbatim(ws.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    let line = String::from_utf8(line).unwrap();
    let addr: SocketAddr = line
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    assert_eq!(call(addr, "GET", "/v1/health", None, None).0, 200);
    let st = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn plain_http_beyond_loopback_is_flagged() {
    assert!(!server::exposed_without_tls(
        &"127.0.0.1:8080".parse().unwrap(),
        false
    ));
    assert!(!server::exposed_without_tls(
        &"[::1]:8080".parse().unwrap(),
        false
    ));
    assert!(server::exposed_without_tls(
        &"0.0.0.0:8080".parse().unwrap(),
        false
    ));
    assert!(!server::exposed_without_tls(
        &"0.0.0.0:8080".parse().unwrap(),
        true
    ));
}

// ---- the role × route matrix ----

/// The demo feedback as (id, country, comment), read from data/demo_feedback.csv (`;`).
fn demo_rows() -> Vec<(String, String, String)> {
    let mut r = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_path(common::demo_csv())
        .unwrap();
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|x| x == name).unwrap();
    let (i, c, t) = (col("response_id"), col("country"), col("comment"));
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[i].to_string(), rec[c].to_string(), rec[t].to_string())
        })
        .collect()
}

/// Lower-cased, whitespace runs made one space.
fn flatten(s: &str) -> String {
    s.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every string value of a JSON document.
fn json_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| json_strings(x, out)),
        _ => {}
    }
}

/// Verbatim text found in a response body: any whole comment, or any run of six consecutive
/// words of one (lower-cased, whitespace-normalised), in the raw body or in any JSON string.
fn text_leaks(body: &[u8], texts: &[String]) -> Vec<String> {
    let raw = String::from_utf8_lossy(body).into_owned();
    let mut hay = vec![flatten(&raw)];
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let mut ss = Vec::new();
        json_strings(&v, &mut ss);
        hay.extend(ss.into_iter().map(flatten));
    }
    let mut found = Vec::new();
    for t in texts {
        let whole = flatten(t);
        let words: Vec<&str> = whole.split(' ').collect();
        let grams: Vec<String> = words.windows(6).map(|w| w.join(" ")).collect();
        for h in &hay {
            if h.contains(&whole) {
                found.push(format!("whole verbatim {t:?}"));
            } else if let Some(g) = grams.iter().find(|g| h.contains(g.as_str())) {
                found.push(format!("6 words of a verbatim: {g:?}"));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The demo ids found anywhere in a JSON document.
fn demo_ids_in(v: &Value, countries: &BTreeMap<String, String>) -> Vec<String> {
    let mut ss = Vec::new();
    json_strings(v, &mut ss);
    ss.into_iter()
        .filter(|s| countries.contains_key(*s))
        .map(str::to_string)
        .collect()
}

/// A server over `dir` with the test model, on a free loopback port.
fn serve_dir(dir: &Path) -> RunningServer {
    server::start(dir, Some(model()), options(roomy(), None)).expect("server starts")
}

/// One request with an optional bearer token and JSON body; the raw reply.
fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    request(addr, method, path, &headers, &bytes)
}

/// Whether a reply is the JSON error `code` with a message.
fn is_error(r: &Reply, status: u16, code: &str) -> bool {
    r.status == status
        && serde_json::from_slice::<Value>(&r.body).is_ok_and(|v| {
            v["error"]["code"] == code
                && v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
        })
}

#[test]
fn role_by_route_matrix_every_cell() {
    const ROLES: [Role; 5] = [
        Role::Admin,
        Role::Analyst,
        Role::Support,
        Role::Marketing,
        Role::Consultant,
    ];
    // One workspace, made through the CLI as tests/it/roles.rs does: the demo feedback (30 rows,
    // FR / US / BE, respondents' emails, dates, NPS), one themes run, one token per role (the
    // consultant's a grant scoped to country=FR).
    let ws = common::workspace();
    let dir = ws.path();
    let demo = common::demo_csv();
    common::ok(
        common::verbatim(dir)
            .arg("ingest")
            .args(common::DEMO_MAPPING)
            .arg(&demo),
    );
    common::ok(common::verbatim(dir).args(["themes", "--by", "topic"]));
    let mut tokens: BTreeMap<Role, String> = BTreeMap::new();
    for role in ROLES {
        let name = format!("{role}-1");
        let out = if role == Role::Consultant {
            common::ok(common::verbatim(dir).args([
                "grant",
                "add",
                &name,
                "--role",
                "consultant",
                "--expires",
                "2099-12-31",
                "--where",
                "country=FR",
            ]))
        } else {
            common::ok(common::verbatim(dir).args(["user", "add", &name, "--role", role.as_str()]))
        };
        let token = out.trim().to_string();
        assert!(token.starts_with("vbt_"), "{out}");
        tokens.insert(role, token);
    }
    let rows = demo_rows();
    assert_eq!(rows.len(), 30);
    let texts: Vec<String> = rows.iter().map(|r| r.2.clone()).collect();
    let country: BTreeMap<String, String> =
        rows.iter().map(|r| (r.0.clone(), r.1.clone())).collect();
    let fr_id = rows.iter().find(|r| r.1 == "FR").unwrap().0.clone();

    let running = serve_dir(dir);
    let addr = running.addr();

    // The public routes answer without a token.
    for path in ["/v1/health", "/openapi.json"] {
        let r = send(addr, "GET", path, None, None);
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }

    // The largest theme, as the admin sees it.
    let r = send(
        addr,
        "GET",
        "/v1/themes?by=topic",
        Some(&tokens[&Role::Admin]),
        None,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let theme = v["themes"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|t| t["size"].as_u64().unwrap_or(0))
        .unwrap_or_else(|| panic!("no theme: {v}"))["id"]
        .as_str()
        .unwrap()
        .to_string();

    let csv_text = std::fs::read_to_string(&demo).unwrap();
    let envelope = json!({
        "format": "csv", "name": "demo_feedback.csv", "data": csv_text,
        "mapping": { "text": ["comment"], "id": "response_id", "respondent": "customer",
                     "date": "submitted", "score": "nps", "field": ["country", "channel"] }
    });
    // Expected per role, in ROLES order (admin, analyst, support, marketing, consultant):
    // Y = 2xx, N = 403 with the JSON error body. Written from the README's table ("Users, roles
    // and grants" and the server's route table), independently of POLICY:
    // * search, ask, themes, themes/{id}, report: everyone (marketing: aggregates; consultant:
    //   in scope).
    // * stats: everyone but the consultant (marketing gets aggregates).
    // * verbatims/{id}/original is `pii reveal` over HTTP: admin and support.
    // * ingest: admin only; audit: admin only (README: "the audit trail (admin …)").
    // Every protected route of server::ROUTES must have a row (checked below).
    #[rustfmt::skip]
    let matrix: Vec<(&str, &str, String, Option<Value>, &str)> = vec![
        ("GET", "/v1/stats", "/v1/stats".into(), None, "YYYYN"),
        ("POST", "/v1/search", "/v1/search".into(),
         Some(json!({ "query": "delivery late", "limit": 30 })), "YYYYY"),
        ("POST", "/v1/ask", "/v1/ask".into(),
         Some(json!({ "question": "How many customers mention delivery?" })), "YYYYY"),
        ("GET", "/v1/themes", "/v1/themes?by=topic".into(), None, "YYYYY"),
        ("GET", "/v1/themes/{id}", format!("/v1/themes/{theme}?quotes=10"), None, "YYYYY"),
        ("POST", "/v1/report", "/v1/report".into(), Some(json!({})), "YYYYY"),
        ("GET", "/v1/verbatims/{id}/original", format!("/v1/verbatims/{fr_id}/original"), None, "YNYNN"),
        ("GET", "/v1/audit", "/v1/audit".into(), None, "YNNNN"),
        ("GET", "/v1/check", "/v1/check".into(), None, "YNNNN"),
        // Last: the admin's cell writes (the same file again: nothing changes).
        ("POST", "/v1/ingest", "/v1/ingest".into(), Some(envelope), "YNNNN"),
    ];
    // The table covers the routes exactly: a new route needs a row here.
    let protected: Vec<(&str, &str)> = server::ROUTES
        .iter()
        .filter(|r| r.auth)
        .map(|r| (r.method, r.path))
        .collect();
    let public: Vec<&str> = server::ROUTES
        .iter()
        .filter(|r| !r.auth)
        .map(|r| r.path)
        .collect();
    assert_eq!(public, ["/v1/health", "/openapi.json"], "public routes");
    let mut listed: Vec<(&str, &str)> = matrix.iter().map(|m| (m.0, m.1)).collect();
    let mut want = protected.clone();
    listed.sort();
    want.sort();
    assert_eq!(
        listed, want,
        "the matrix must list every protected route once"
    );

    let mut failures = Vec::new();
    let mut seen = BTreeMap::new();
    for (method, route, path, body, expect) in &matrix {
        assert_eq!(expect.len(), ROLES.len());
        // The admin last: a route that changes things runs once, after every refusal.
        for i in [1, 2, 3, 4, 0] {
            let role = ROLES[i];
            let allowed = expect.as_bytes()[i] == b'Y';
            let r = send(addr, method, path, Some(&tokens[&role]), body.as_ref());
            let text = String::from_utf8_lossy(&r.body).into_owned();
            seen.insert((*route, i), r.status);
            let ok_cell = if allowed {
                (200..300).contains(&r.status)
            } else {
                is_error(&r, 403, "forbidden")
            };
            if !ok_cell {
                failures.push(format!(
                    "{method} {route} as {role}: expected {}, got {}: {text}",
                    if allowed { "2xx" } else { "403 forbidden" },
                    r.status
                ));
                continue;
            }
            if !allowed {
                continue;
            }
            if role == Role::Marketing {
                for leak in text_leaks(&r.body, &texts) {
                    failures.push(format!("{method} {route} as marketing: {leak}"));
                }
            }
            if role == Role::Consultant {
                let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                let ids = demo_ids_in(&v, &country);
                for id in &ids {
                    if country[id] != "FR" {
                        failures.push(format!(
                            "{method} {route} as consultant: {id} ({}) is outside country=FR",
                            country[id]
                        ));
                    }
                }
                if matches!(*route, "/v1/search" | "/v1/themes/{id}") && ids.is_empty() {
                    failures.push(format!(
                        "{method} {route} as consultant: no verbatim at all (test too weak): {text}"
                    ));
                }
            }
        }
    }
    // The matrix as it came out, for the log.
    let mut table = String::from(
        "route                                    admin analyst support marketing consultant\n",
    );
    for (method, route, _, _, _) in &matrix {
        table.push_str(&format!("{:<40}", format!("{method} {route}")));
        for i in 0..ROLES.len() {
            table.push_str(&format!(
                " {:>5}",
                seen.get(&(*route, i)).copied().unwrap_or(0)
            ));
        }
        table.push('\n');
    }
    eprintln!("{table}");

    // Marketing, beyond the matrix: Markdown report, a "why" question.
    let mkt = tokens[&Role::Marketing].as_str();
    for (method, path, body) in [
        ("POST", "/v1/report?format=md", Some(json!({}))),
        (
            "POST",
            "/v1/ask",
            Some(json!({ "question": "Why are customers unhappy with delivery?" })),
        ),
        (
            "POST",
            "/v1/search",
            Some(json!({ "query": "livraison", "mode": "text", "limit": 30 })),
        ),
    ] {
        let r = send(addr, method, path, Some(mkt), body.as_ref());
        for leak in text_leaks(&r.body, &texts) {
            failures.push(format!(
                "{method} {path} as marketing ({}): {leak}",
                r.status
            ));
        }
    }
    // The leak check can fail: an analyst's search shows text.
    let r = send(
        addr,
        "POST",
        "/v1/search",
        Some(&tokens[&Role::Analyst]),
        Some(&json!({ "query": "delivery late", "limit": 30 })),
    );
    assert!(
        !text_leaks(&r.body, &texts).is_empty(),
        "the leak check sees nothing in an analyst's search: too weak"
    );

    // The consultant, beyond the matrix: answers and searches cite French verbatims only, and
    // asking for another country gives nothing.
    let cons = tokens[&Role::Consultant].as_str();
    for (path, body, list) in [
        (
            "/v1/ask",
            json!({ "question": "Why are customers unhappy with delivery?" }),
            "sources",
        ),
        (
            "/v1/search",
            json!({ "query": "livraison", "mode": "text", "limit": 30 }),
            "hits",
        ),
    ] {
        let r = send(addr, "POST", path, Some(cons), Some(&body));
        let text = String::from_utf8_lossy(&r.body).into_owned();
        if r.status != 200 {
            failures.push(format!("POST {path} as consultant: {}: {text}", r.status));
            continue;
        }
        let v = r.json();
        let ids = demo_ids_in(&v, &country);
        if v[list].as_array().is_none_or(|a| a.is_empty()) || ids.is_empty() {
            failures.push(format!("POST {path} as consultant: no {list}: {text}"));
        }
        for id in ids {
            if country[&id] != "FR" {
                failures.push(format!("POST {path} as consultant: {id} is not FR"));
            }
        }
    }
    let r = send(
        addr,
        "POST",
        "/v1/search",
        Some(cons),
        Some(&json!({ "query": "delivery late", "where": { "country": "US" } })),
    );
    // Checked against the values in the consultant's scope: a 400 naming only those.
    if r.status != 400
        || r.json()["error"]["message"]
            != "no verbatim has country = \"US\"; its values are: \"FR\""
    {
        failures.push(format!(
            "search where country=US as consultant: expected 400 naming FR only, got {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
    }

    // No token: 401 on every protected route.
    for (method, route, path, body, _) in &matrix {
        let r = send(addr, method, path, None, body.as_ref());
        if !is_error(&r, 401, "unauthenticated")
            || !r
                .headers
                .get("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer"))
        {
            failures.push(format!(
                "{method} {route} without a token: expected 401 unauthenticated, got {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cell(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // A revoked user: accepted, revoked, refused (401) on its next request and on every route.
    let mut w = Workspace::open(dir).unwrap();
    let made = w
        .add_principal(
            Principal {
                name: "leaver".into(),
                role: Role::Analyst,
                scope: Filter::default(),
                expires: None,
            },
            "user",
            &Caller::Owner,
        )
        .unwrap();
    let search = json!({ "query": "delivery", "mode": "text" });
    let r = send(addr, "POST", "/v1/search", Some(&made.token), Some(&search));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    w.revoke_principal("leaver").unwrap();
    let r = send(addr, "POST", "/v1/search", Some(&made.token), Some(&search));
    assert!(
        is_error(&r, 401, "unauthenticated"),
        "revoked: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    for (method, route, path, body, _) in &matrix {
        let r = send(addr, method, path, Some(&made.token), body.as_ref());
        assert!(
            is_error(&r, 401, "unauthenticated"),
            "{method} {route} with a revoked token: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }

    // A consultant grant ending 2 s from now: accepted now, refused (403, "expired") one second
    // after its end.
    let end = chrono::Utc::now().timestamp() + 2;
    let mut scope = Filter::default();
    scope.fields.insert("country".into(), vec!["FR".into()]);
    let brief = w
        .add_principal(
            Principal {
                name: "brief".into(),
                role: Role::Consultant,
                scope,
                expires: Some(end),
            },
            "grant",
            &Caller::Owner,
        )
        .unwrap();
    drop(w);
    let r = send(
        addr,
        "POST",
        "/v1/search",
        Some(&brief.token),
        Some(&search),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        chrono::Utc::now().timestamp() <= end,
        "the first request ended after the grant did: test too slow to mean anything"
    );
    let wait = (end + 1 - chrono::Utc::now().timestamp()).max(0) as u64;
    std::thread::sleep(Duration::from_millis(wait * 1000 + 50));
    let r = send(
        addr,
        "POST",
        "/v1/search",
        Some(&brief.token),
        Some(&search),
    );
    assert!(
        is_error(&r, 403, "forbidden"),
        "expired grant: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("expired"), "{msg}");
    running.shutdown();
}

#[test]
fn retention_is_applied_when_the_server_starts() {
    // The demo feedback is dated January to June 2024: a 365-day retention erases all of it
    // (the test runs after 2025), a 36,500-day one nothing.
    let ws = common::workspace();
    let dir = ws.path();
    common::ok(
        common::verbatim(dir)
            .arg("ingest")
            .args(common::DEMO_MAPPING)
            .arg(common::demo_csv()),
    );
    let token = {
        let mut w = Workspace::open(dir).unwrap();
        let p = Principal {
            name: "admin-1".into(),
            role: Role::Admin,
            scope: Filter::default(),
            expires: None,
        };
        w.add_principal(p, "user", &Caller::Owner).unwrap().token
    };
    let set_retention = |days: u32| {
        let cfg = dir.join("verbatim.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("retention_days"))
            .map(|l| {
                if l == "[privacy]" {
                    format!("{l}\nretention_days = {days}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&cfg, text).unwrap();
    };
    let verbatims = |addr| {
        let (st, v) = call(addr, "GET", "/v1/stats", Some(&token), None);
        assert_eq!(st, 200, "{v}");
        v["store"]["verbatims"].as_u64().unwrap()
    };
    let wait_for = |addr, want: u64| {
        let t0 = Instant::now();
        loop {
            let n = verbatims(addr);
            if n == want || t0.elapsed() > Duration::from_secs(60) {
                return n;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    set_retention(36_500);
    let s = serve_dir(dir);
    assert_eq!(wait_for(s.addr(), 30), 30);
    s.shutdown();
    set_retention(365);
    let s = serve_dir(dir);
    assert_eq!(
        wait_for(s.addr(), 0),
        0,
        "retention did not run at start-up"
    );
    // The erasure worked on the server's open indexes (rebuilt in memory, persisted): the
    // graph was read from disk once, not again after the erasure wrote it.
    assert_eq!(s.graph_loads(), 1);
    s.shutdown();
    let trail = common::ok(common::verbatim(dir).args(["audit", "show"]));
    assert!(trail.contains("retention"), "{trail}");
}

#[test]
fn filters_and_numbers_are_checked_as_the_cli_checks_them() {
    let s = Served::start(true, roomy(), None);
    // An unknown field: 400 with the library's message (the CLI prints the same).
    let q = json!({ "query": "battery", "where": { "nosuchfield": "1" } });
    let (st, v) = s.call("POST", "/v1/search", Role::Analyst, Some(&q));
    assert_eq!((st, error_code(&v)), (400, "bad_request"), "{v}");
    assert_eq!(
        v["error"]["message"],
        "unknown field \"nosuchfield\" in the filter; the known fields are: domain, sentiment"
    );
    // Values match case-insensitively: `AMAZON` is the stored `amazon`.
    let q = json!({ "query": "the battery died", "mode": "text", "limit": 20,
                    "where": { "domain": "AMAZON" } });
    let (st, v) = s.call("POST", "/v1/search", Role::Analyst, Some(&q));
    assert_eq!(st, 200, "{v}");
    let hits = v["hits"].as_array().unwrap();
    assert!(!hits.is_empty(), "{v}");
    for h in hits {
        assert_eq!(h["verbatim"]["fields"]["domain"], "amazon", "{h}");
    }
    // A value that matches nothing lists the values, on every route that filters.
    let (st, v) = s.call(
        "GET",
        "/v1/themes?where=domain%3Dnetflix",
        Role::Analyst,
        None,
    );
    assert_eq!((st, error_code(&v)), (400, "bad_request"), "{v}");
    assert_eq!(
        v["error"]["message"],
        "no verbatim has domain = \"netflix\"; its values are: \"amazon\", \"imdb\", \"yelp\""
    );
    let q = json!({ "question": "Is the battery good?", "where": { "domain": "netflix" } });
    let (st, v) = s.call("POST", "/v1/ask", Role::Analyst, Some(&q));
    assert_eq!((st, error_code(&v)), (400, "bad_request"), "{v}");
    // Numbers out of range: 400 naming the parameter and the range.
    for (method, path, body, says) in [
        (
            "POST",
            "/v1/search",
            Some(json!({ "query": "x", "limit": 0 })),
            "limit 0: must be between 1 and 1000",
        ),
        (
            "GET",
            "/v1/themes?by=topic&min_size=0",
            None,
            "min_size 0: must be between 1 and 100000",
        ),
        (
            "GET",
            "/v1/themes/T1?quotes=51",
            None,
            "quotes 51: must be between 0 and 50",
        ),
        (
            "GET",
            "/v1/themes?min_score=NaN",
            None,
            "min_score: not a finite number",
        ),
    ] {
        let (st, v) = s.call(method, path, Role::Analyst, body.as_ref());
        assert_eq!((st, error_code(&v)), (400, "bad_request"), "{path}: {v}");
        assert_eq!(v["error"]["message"], says, "{path}");
    }
}

/// The ids of the first hits of one search, in order.
fn hit_ids(addr: SocketAddr, token: &str, mode: &str, query: &str) -> Vec<String> {
    let q = json!({ "query": query, "mode": mode, "limit": 5 });
    let (st, v) = call(addr, "POST", "/v1/search", Some(token), Some(&q));
    assert_eq!(st, 200, "{mode} {query:?}: {v}");
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["verbatim"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// An ingest through the server brings its open indexes up to the store in place: new and
/// changed verbatims are found in every mode at once, the HNSW graph is never read back from
/// disk (`graph_loads` stays 1), and what was caught up in memory was also persisted — a
/// restarted server replays nothing and answers the same. A change made by another process
/// (the CLI's `forget`) is the one case that reloads the graph.
#[test]
fn ingests_catch_the_open_indexes_up_in_place_and_persist_them() {
    let mut s = Served::start(true, roomy(), None);
    let analyst = s.token(Role::Analyst).to_string();
    let admin = format!("Bearer {}", s.token(Role::Admin));
    let loads = |s: &Served| s.server.as_ref().unwrap().graph_loads();
    let upload = |s: &Served, csv: &str| {
        let r = request(
            s.addr,
            "POST",
            "/v1/ingest?text=comment&id=id&name=late.csv",
            &[
                ("Authorization", admin.as_str()),
                ("Content-Type", "text/csv"),
            ],
            csv.as_bytes(),
        );
        let v = r.json();
        assert_eq!(r.status, 200, "{v}");
        v
    };
    const MODES: [&str; 3] = ["text", "vector", "hybrid"];

    assert_eq!(
        loads(&s),
        1,
        "the graph is read when the server starts, before it listens"
    );
    assert!(!hit_ids(s.addr, &analyst, "vector", "the battery died").is_empty());
    assert_eq!(loads(&s), 1, "the graph is read once");

    let v = upload(
        &s,
        "id,comment\nZ1,The zeppelin mooring fee was outrageous\nZ2,Kangaroo stickers peeled off within a day\n",
    );
    assert_eq!(v["stored"].as_u64(), Some(2), "{v}");
    for mode in MODES {
        let z1 = hit_ids(s.addr, &analyst, mode, "zeppelin mooring fee outrageous");
        assert_eq!(z1.first().map(String::as_str), Some("Z1"), "{mode}: {z1:?}");
        let z2 = hit_ids(s.addr, &analyst, mode, "kangaroo stickers peeled off");
        assert_eq!(z2.first().map(String::as_str), Some("Z2"), "{mode}: {z2:?}");
    }

    // A second upload changes Z2: its new text is found, its old one no longer is (the old
    // vector slot is stale in the graph and filtered out).
    let v = upload(&s, "id,comment\nZ2,The harmonica case smelled of vinegar\n");
    assert_eq!(v["updated"].as_u64(), Some(1), "{v}");
    for mode in MODES {
        let z2 = hit_ids(s.addr, &analyst, mode, "harmonica case smelled of vinegar");
        assert_eq!(z2.first().map(String::as_str), Some("Z2"), "{mode}: {z2:?}");
        let old = hit_ids(s.addr, &analyst, mode, "kangaroo stickers peeled off");
        // No word in common any more; by meaning, the new text may still rank among five.
        match mode {
            "text" => assert!(!old.contains(&"Z2".to_string()), "{mode}: {old:?}"),
            _ => assert_ne!(
                old.first().map(String::as_str),
                Some("Z2"),
                "{mode}: {old:?}"
            ),
        }
    }
    assert_eq!(
        loads(&s),
        1,
        "an ingest through the server reloaded the graph"
    );

    let queries = [
        "zeppelin mooring fee outrageous",
        "harmonica case smelled of vinegar",
        "kangaroo stickers peeled off",
        "the battery died",
    ];
    let answers = |addr| -> Vec<Vec<String>> {
        MODES
            .iter()
            .flat_map(|m| queries.iter().map(move |q| (m, q)))
            .map(|(m, q)| hit_ids(addr, &analyst, m, q))
            .collect()
    };
    let before = answers(s.addr);

    // Persisted, not only in memory: opening the indexes from disk replays nothing.
    s.server.take().unwrap().shutdown();
    let (_, replayed) = Workspace::open(s.dir.path()).unwrap().indexes().unwrap();
    assert_eq!((replayed.text, replayed.vectors), (0, 0), "{replayed:?}");
    let again = serve_dir(s.dir.path());
    assert_eq!(
        answers(again.addr()),
        before,
        "a restarted server answers differently"
    );
    assert_eq!(again.graph_loads(), 1);

    // Another process erases Z1 beside the running server: the server reloads (its graph
    // would still hold Z1's point) and no longer finds it.
    common::ok(common::verbatim(s.dir.path()).args(["forget", "--id", "Z1"]));
    for mode in MODES {
        let z1 = hit_ids(
            again.addr(),
            &analyst,
            mode,
            "zeppelin mooring fee outrageous",
        );
        assert!(!z1.contains(&"Z1".to_string()), "{mode}: {z1:?}");
    }
    assert_eq!(
        again.graph_loads(),
        2,
        "a change on disk by another process"
    );
    // The next ingest catches the reloaded graph up: what it persists holds no point of Z1
    // (a graph caught up without reloading would write Z1's point back to disk).
    let r = request(
        again.addr(),
        "POST",
        "/v1/ingest?text=comment&id=id&name=later.csv",
        &[
            ("Authorization", admin.as_str()),
            ("Content-Type", "text/csv"),
        ],
        b"id,comment\nZ3,The periscope arrived fogged up\n",
    );
    assert_eq!(r.status, 200, "{}", r.json());
    again.shutdown();
    let ws = Workspace::open(s.dir.path()).unwrap();
    let (ix, replayed) = ws.indexes().unwrap();
    assert_eq!((replayed.text, replayed.vectors), (0, 0), "{replayed:?}");
    assert_eq!(
        ix.vectors.points(),
        ws.raw_store().live_vec_ids().unwrap().len(),
        "stale or erased points persisted"
    );
}

/// The `verbatim serve` child's address, read from its first line.
fn served_addr(child: &mut std::process::Child) -> SocketAddr {
    let out = child.stdout.as_mut().unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    let line = String::from_utf8(line).unwrap();
    line.strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap()
}

#[test]
fn the_cli_and_the_server_resolve_the_same_settings() {
    let ws = common::workspace();
    let dir = ws.path();
    common::ingest_uci(dir);
    // verbatim.toml says text mode and 7 hits; the environment says 3 hits, a burst of 4 and
    // almost no refill. Both doors must answer with exactly that.
    let cfg = dir.join("verbatim.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.contains("limit = 10") && text.contains("mode = \"hybrid\""),
        "{text}"
    );
    std::fs::write(
        &cfg,
        text.replace("limit = 10", "limit = 7")
            .replace("mode = \"hybrid\"", "mode = \"text\""),
    )
    .unwrap();
    let env = [
        ("VERBATIM_SEARCH_LIMIT", "3"),
        ("VERBATIM_SERVE_BURST", "4"),
        ("VERBATIM_SERVE_RATE", "0.001"),
    ];
    let shown = common::json(common::verbatim(dir).args(["config", "show"]).envs(env));
    let setting = |key: &str| {
        shown["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("{key} missing: {shown}"))
            .clone()
    };
    assert_eq!(setting("search.limit")["value"], 3);
    assert_eq!(setting("search.limit")["source"], "$VERBATIM_SEARCH_LIMIT");
    assert_eq!(setting("search.mode")["value"], "text");
    assert!(
        setting("search.mode")["source"]
            .as_str()
            .unwrap()
            .ends_with("verbatim.toml search.mode"),
        "{shown}"
    );
    assert_eq!(setting("serve.burst")["value"], 4);

    let cli = common::json(common::verbatim(dir).args(["search", "battery"]).envs(env));
    let ids = |v: &Value| -> Vec<String> {
        v["hits"]
            .as_array()
            .unwrap_or_else(|| panic!("no hits: {v}"))
            .iter()
            .map(|h| h["verbatim"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&cli).len(), 3, "{cli}");
    assert_eq!(cli["query"]["mode"], "text", "{cli}");

    let token = common::ok(common::verbatim(dir).args(["user", "add", "ann", "--role", "analyst"]));
    let token = token.trim();
    let mut child = common::verbatim(dir)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = served_addr(&mut child);
    let (st, http) = call(
        addr,
        "POST",
        "/v1/search",
        Some(token),
        Some(&json!({ "query": "battery" })),
    );
    let statuses: Vec<u16> = (0..4)
        .map(|_| call(addr, "GET", "/v1/stats", Some(token), None).0)
        .collect();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert_eq!(st, 200, "{http}");
    assert_eq!(ids(&http), ids(&cli), "the two doors disagree: {http}");
    // A burst of 4 from the environment: the search and three more pass, the fifth waits.
    assert_eq!(statuses, [200, 200, 200, 429], "{statuses:?}");
}

/// Whether `v` has exactly what `schema` (in `doc`) documents, recursively: an object's keys
/// are all documented properties and every required property is there; `$ref`, `allOf`
/// (properties merged), `oneOf` / `anyOf` (one alternative fits), arrays and maps followed.
fn conforms(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return conforms(doc, &doc["components"]["schemas"][name], v, at);
    }
    for alt in ["oneOf", "anyOf"] {
        if let Some(alts) = schema[alt].as_array() {
            let errors: Vec<String> = alts
                .iter()
                .filter_map(|a| conforms(doc, a, v, at).err())
                .collect();
            return if errors.len() < alts.len() {
                Ok(())
            } else {
                Err(format!("{at}: fits no alternative: {}", errors.join(" | ")))
            };
        }
    }
    if v.is_null() {
        let t = &schema["type"];
        let nullable = t == "null" || t.as_array().is_some_and(|ts| ts.contains(&json!("null")));
        return if nullable || schema.as_object().is_some_and(|o| o.is_empty()) {
            Ok(())
        } else {
            Err(format!("{at}: null, not documented as nullable"))
        };
    }
    // The properties and required names of this schema, `allOf` parts merged.
    let mut props = serde_json::Map::new();
    let mut required: Vec<String> = Vec::new();
    let mut parts = vec![schema.clone()];
    while let Some(p) = parts.pop() {
        let p = match p["$ref"].as_str() {
            Some(r) => {
                doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")].clone()
            }
            None => p,
        };
        if let Some(all) = p["allOf"].as_array() {
            parts.extend(all.iter().cloned());
        }
        if let Some(ps) = p["properties"].as_object() {
            props.extend(ps.clone());
        }
        if let Some(rs) = p["required"].as_array() {
            required.extend(rs.iter().map(|r| r.as_str().unwrap().to_string()));
        }
    }
    match v {
        Value::Object(o) if !props.is_empty() => {
            for k in o.keys() {
                if !props.contains_key(k) {
                    return Err(format!("{at}.{k}: not documented"));
                }
            }
            for r in &required {
                if !o.contains_key(r) {
                    return Err(format!("{at}.{r}: documented as required, absent"));
                }
            }
            for (k, x) in o {
                conforms(doc, &props[k], x, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        Value::Object(o) => match &schema["additionalProperties"] {
            s @ Value::Object(_) => o
                .iter()
                .try_for_each(|(k, x)| conforms(doc, s, x, &format!("{at}.{k}"))),
            _ => Ok(()),
        },
        Value::Array(xs) if schema["items"].is_object() => xs
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| conforms(doc, &schema["items"], x, &format!("{at}[{i}]"))),
        _ => Ok(()),
    }
}

/// The documented 200 body of `method path`.
fn success_schema<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let s =
        &doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(s.is_object(), "{method} {path}: no JSON 200 schema");
    s
}

#[test]
fn real_responses_have_exactly_the_properties_their_schemas_list() {
    let s = Served::start(true, roomy(), None);
    let (_, doc) = call(s.addr, "GET", "/openapi.json", None, None);
    // `None`: no token (a public route).
    let check =
        |method: &str, path: &str, route: &str, role: Option<Role>, body: Option<&Value>| {
            let (st, v) = match role {
                None => call(s.addr, method, path, None, body),
                Some(role) => s.call(method, path, role, body),
            };
            assert_eq!(st, 200, "{method} {path}: {v}");
            let schema = success_schema(&doc, &method.to_ascii_lowercase(), route);
            if let Err(e) = conforms(&doc, schema, &v, route) {
                panic!("{method} {path} ({role:?}): {e}\n{v}");
            }
            v
        };
    check("GET", "/v1/health", "/v1/health", None, None);
    check("GET", "/v1/stats", "/v1/stats", Some(Role::Analyst), None);
    let q = json!({ "query": "battery life", "limit": 3 });
    let hits = check(
        "POST",
        "/v1/search",
        "/v1/search",
        Some(Role::Analyst),
        Some(&q),
    );
    assert_eq!(hits["hits"].as_array().unwrap().len(), 3, "{hits}");
    // An aggregates-only role: the other half of the schema.
    let agg = check(
        "POST",
        "/v1/search",
        "/v1/search",
        Some(Role::Marketing),
        Some(&q),
    );
    assert!(agg["aggregate"].is_object(), "{agg}");
    let id = hits["hits"][0]["verbatim"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let original = format!("/v1/verbatims/{id}/original");
    check(
        "GET",
        &original,
        "/v1/verbatims/{id}/original",
        Some(Role::Support),
        None,
    );
    let ask = json!({ "question": "What do people say about the battery?", "extractive": true });
    check(
        "POST",
        "/v1/ask",
        "/v1/ask",
        Some(Role::Analyst),
        Some(&ask),
    );
    check("GET", "/v1/audit", "/v1/audit", Some(Role::Admin), None);
    let report = check("GET", "/v1/check", "/v1/check", Some(Role::Admin), None);
    assert_eq!(report["clean"], true, "{report}");
    // The check can fail: an undocumented key, a required one missing.
    let schema = success_schema(&doc, "get", "/v1/health");
    assert!(conforms(&doc, schema, &json!({ "status": "ok" }), "h").is_err());
    assert!(conforms(
        &doc,
        schema,
        &json!({ "status": "ok", "version": "1", "uptime": 3 }),
        "h"
    )
    .is_err());
}

#[test]
fn ask_over_http_takes_the_clis_fields_with_the_same_ranges() {
    let s = Served::start(true, roomy(), None);
    let q = json!({ "question": "What do people say about the battery?",
                    "extractive": true, "limit": 3, "max_tokens": 50,
                    "temperature": 0.5, "seed": 7 });
    let (st, v) = s.call("POST", "/v1/ask", Role::Analyst, Some(&q));
    assert_eq!(st, 200, "{v}");
    assert!(v["sources"].as_array().unwrap().len() <= 3, "{v}");
    if v["mode"] == "extractive" {
        assert_eq!(v["fallback"]["reason"], "asked", "{v}");
    } else {
        assert_eq!(v["mode"], "abstained", "{v}");
    }
    for (field, bad) in [
        ("limit", json!(0)),
        ("limit", json!(101)),
        ("max_tokens", json!(0)),
        ("temperature", json!(2.5)),
        // Which model file the server loads is the operator's choice.
        ("generator", json!("/tmp/x.gguf")),
    ] {
        let mut body = json!({ "question": "battery?" });
        body[field] = bad.clone();
        let (st, v) = s.call("POST", "/v1/ask", Role::Analyst, Some(&body));
        assert_eq!(
            (st, error_code(&v)),
            (400, "bad_request"),
            "{field}={bad}: {v}"
        );
        assert!(v.to_string().contains(field), "{field}: {v}");
    }
}
