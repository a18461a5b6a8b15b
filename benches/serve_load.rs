//! Load on `verbatim serve` (issue 17, item 3): requests per second, p50 / p99 latency and
//! errors for text and hybrid search at 8, 32 and 128 connections, with 1 and 2 readers
//! (`serve.readers`: read connections and async worker threads), run interleaved (1, 2, 1,
//! 2…) so that both sides see the same machine; then text search while slow work runs (an
//! `ask` answered by the local LLM in a loop, the first report), and while slow clients
//! trickle their bodies at 1 byte/s and others send bodies over the limit.
//!
//! The server runs in this process (`server::start`, the embedding model loaded once) over a
//! workspace of `data/uci_sentiment.csv` (3,000 verbatims) kept under the target dir; the
//! load comes from threads of this process, one keep-alive HTTP/1.1 connection each (no HTTP
//! client crate may enter the tree), so on a small machine the load generator and the server
//! share the cores, as with `scripts/loadtest.sh`.
//!
//! ```sh
//! cargo bench --bench serve_load                      # 8 s per scenario
//! VERBATIM_BENCH_SECS=15 VERBATIM_BENCH_READERS=1,2,4 cargo bench --bench serve_load
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use verbatim::access::{Caller, Principal, Role};
use verbatim::embed::{EmbedOptions, Embedder, SentenceTransformer};
use verbatim::ingest::Mapping;
use verbatim::server::{self, RunningServer, ServeOptions};
use verbatim::store::Filter;
use verbatim::workspace::ingest::{ingest_file, IngestOptions, NoProgress};
use verbatim::workspace::Workspace;

/// One request's outcome: latency, or an error (a status other than 200, a broken connection).
type Outcome = Result<Duration, String>;

/// A keep-alive connection sending one request after another.
struct Conn {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn { addr, stream: None }
    }

    /// Sends `method path` with `body` and reads the whole reply; reconnects when the server
    /// closed the connection.
    fn send(&mut self, method: &str, path: &str, token: &str, body: &[u8]) -> Outcome {
        let t = Instant::now();
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).map_err(|e| e.to_string())?;
            s.set_nodelay(true).ok();
            s.set_read_timeout(Some(Duration::from_secs(120))).ok();
            self.stream = Some(BufReader::new(s));
        }
        let r = self.exchange(method, path, token, body);
        if r.is_err() {
            self.stream = None;
        }
        r.and_then(|status| {
            if status == 200 {
                Ok(t.elapsed())
            } else {
                Err(format!("status {status}"))
            }
        })
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: &[u8],
    ) -> Result<u16, String> {
        let s = self.stream.as_mut().expect("connected");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let w = s.get_mut();
        w.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        w.write_all(body).map_err(|e| e.to_string())?;
        let mut line = String::new();
        s.read_line(&mut line).map_err(|e| e.to_string())?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let (mut len, mut close) = (0usize, false);
        loop {
            line.clear();
            s.read_line(&mut line).map_err(|e| e.to_string())?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    "connection" => close = v.trim().eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).map_err(|e| e.to_string())?;
        if close {
            self.stream = None;
        }
        Ok(status)
    }
}

/// Latencies and errors of one scenario.
#[derive(Default)]
struct Tally {
    ms: Vec<f64>,
    errors: usize,
    secs: f64,
}

impl Tally {
    fn add(&mut self, o: Outcome) {
        match o {
            Ok(d) => self.ms.push(d.as_secs_f64() * 1e3),
            Err(_) => self.errors += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.ms.extend(other.ms);
        self.errors += other.errors;
    }

    fn pct(&self, p: f64) -> f64 {
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() - 1) as f64 * p).round() as usize]
    }

    fn row(&self, scenario: &str) -> String {
        format!(
            "| {scenario} | {:.1} | {:.2} | {:.2} | {:.2} | {} | {:.0} |",
            self.ms.len() as f64 / self.secs,
            self.pct(0.50),
            self.pct(0.90),
            self.pct(0.99),
            self.errors,
            self.pct(1.0),
        )
    }
}

/// `conns` connections sending `body` to `POST /v1/search` for `secs`.
fn load(addr: SocketAddr, token: &str, conns: usize, secs: f64, bodies: &[String]) -> Tally {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let t0 = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|c| {
            let (token, bodies) = (token.to_string(), bodies.to_vec());
            std::thread::spawn(move || {
                let mut conn = Conn::new(addr);
                let mut tally = Tally::default();
                let mut i = c;
                while Instant::now() < deadline {
                    let body = &bodies[i % bodies.len()];
                    let o = conn.send("POST", "/v1/search", &token, body.as_bytes());
                    if let Ok(d) = &o {
                        if d.as_secs() >= 2 {
                            eprintln!(
                                "slow: connection {c} sent at {:.1} s, answered in {d:?}",
                                (t0.elapsed() - *d).as_secs_f64()
                            );
                        }
                    }
                    tally.add(o);
                    i += 1;
                }
                tally
            })
        })
        .collect();
    let mut all = Tally::default();
    for w in workers {
        all.merge(w.join().unwrap());
    }
    all.secs = t0.elapsed().as_secs_f64();
    all
}

const QUERIES: &[&str] = &[
    "battery",
    "great food",
    "terrible service",
    "sound quality",
    "waited too long",
    "the phone broke",
    "friendly staff",
    "worst movie",
    "price",
    "would not recommend",
];

fn bodies(mode: &str) -> Vec<String> {
    QUERIES
        .iter()
        .map(|q| format!(r#"{{"query":"{q}","mode":"{mode}","limit":10}}"#))
        .collect()
}

/// The workspace: uci_sentiment.csv ingested once, kept under the target dir; an analyst token.
fn workspace(model: &SentenceTransformer) -> (PathBuf, String) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-serve-uci3000");
    if !dir.join("store.sqlite").is_file() {
        let _ = std::fs::remove_dir_all(&dir);
        let mut ws = Workspace::init(&dir).unwrap();
        let opts = IngestOptions {
            mapping: Some(Mapping {
                text: vec!["text".into()],
                id: Some("id".into()),
                fields: vec!["sentiment".into(), "domain".into()],
                ..Mapping::default()
            }),
            ..IngestOptions::default()
        };
        let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/uci_sentiment.csv");
        ingest_file(&mut ws, model, &csv, &opts, &NoProgress).unwrap();
    }
    let mut ws = Workspace::open(&dir).unwrap();
    let name = format!("bench-{}", std::process::id());
    let made = ws
        .add_principal(
            Principal {
                name,
                role: Role::Analyst,
                scope: Filter::default(),
                expires: None,
            },
            "user",
            &Caller::Owner,
        )
        .unwrap();
    (dir, made.token)
}

fn start(dir: &Path, model: Arc<dyn Embedder>, readers: usize, model_dir: &Path) -> RunningServer {
    let flags = verbatim::settings::Overrides {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        rate_per_second: Some(1e9),
        burst: Some(1_000_000),
        readers: Some(readers),
        ..Default::default()
    };
    let env = verbatim::settings::EnvLayer::from_lookup(|_| None);
    let opts = ServeOptions {
        settings: verbatim::settings::Settings::resolve(&flags, &env, None).unwrap(),
        handle_signals: false,
        model_dir: Some(model_dir.to_path_buf()),
    };
    server::start(dir, Some(model), opts).expect("server starts")
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    // `cargo test --benches` runs this with --bench absent; only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let secs: f64 = std::env::var("VERBATIM_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8.0);
    let readers: Vec<usize> = std::env::var("VERBATIM_BENCH_READERS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let model_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2");
    let st = SentenceTransformer::load(&model_dir, &EmbedOptions::default()).expect("MiniLM");
    let (dir, token) = workspace(&st);
    let model: Arc<dyn Embedder> = Arc::new(st);
    println!(
        "serve load: {} CPU(s), {secs} s per scenario, 3,000 verbatims, load average at start {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_avg()
    );
    println!("| scenario | readers | req/s | p50 ms | p90 ms | p99 ms | errors | max ms |");
    println!("|---|---|---|---|---|---|---|---|");
    let list = |var: &str, default: &str| -> Vec<String> {
        std::env::var(var)
            .unwrap_or_else(|_| default.into())
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let conns_list: Vec<usize> = list("VERBATIM_BENCH_CONNS", "8,32,128")
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    let modes = list("VERBATIM_BENCH_MODES", "text,hybrid");
    for &conns in &conns_list {
        for mode in &modes {
            // Interleaved rounds: each readers setting twice, in turn.
            for _round in 0..2 {
                for &r in &readers {
                    let srv = start(&dir, model.clone(), r, &model_dir);
                    // Warm: the indexes are opened, the sentiments read.
                    load(srv.addr(), &token, 1, 0.3, &bodies(mode));
                    let t = load(srv.addr(), &token, conns, secs, &bodies(mode));
                    let row = t.row(&format!("search {mode}, {conns} conns"));
                    println!("{}", row.replacen(" |", &format!(" | {r} |"), 1));
                    srv.shutdown();
                }
            }
        }
    }
    println!("load average {}", load_avg());
    if std::env::var("VERBATIM_BENCH_SLOW").is_ok_and(|v| v == "0") {
        return;
    }
    slow_work(&dir, &token, model.clone(), &model_dir, secs);
    slow_clients(&dir, &token, model, &model_dir, secs);
    println!("load average at the end {}", load_avg());
}

/// Text search at 8 connections alone, then while an `ask` answered by the LLM runs in a loop
/// and a report runs; twice, interleaved.
fn slow_work(dir: &Path, token: &str, model: Arc<dyn Embedder>, model_dir: &Path, secs: f64) {
    let srv = start(dir, model, 2, model_dir);
    let addr = srv.addr();
    load(addr, token, 1, 0.3, &bodies("text"));
    for _round in 0..2 {
        let alone = load(addr, token, 8, secs, &bodies("text"));
        println!("{}", alone.row("search text, 8 conns, alone | 2"));
        let stop = Arc::new(AtomicBool::new(false));
        let slow: Vec<_> = [
            (
                "/v1/ask",
                r#"{"question":"Why are customers unhappy with the battery?","max_tokens":128}"#,
            ),
            ("/v1/report", r#"{"by":"topic"}"#),
        ]
        .into_iter()
        .map(|(path, body)| {
            let (stop, token) = (stop.clone(), token.to_string());
            std::thread::spawn(move || {
                let mut conn = Conn::new(addr);
                let mut done = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let o = conn.send("POST", path, &token, body.as_bytes());
                    done.push(o.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN));
                }
                (path, done)
            })
        })
        .collect();
        std::thread::sleep(Duration::from_millis(200));
        let during = load(addr, token, 8, secs, &bodies("text"));
        println!(
            "{}",
            during.row("search text, 8 conns, while ask (LLM) and report loop | 2")
        );
        stop.store(true, Ordering::Relaxed);
        for s in slow {
            let (path, done) = s.join().unwrap();
            println!("  {path}: {} done, seconds each {done:.1?}", done.len());
        }
    }
    srv.shutdown();
}

/// Text search at 8 connections while 16 clients send their bodies at 1 byte/s and 4 send
/// 2 MiB bodies (over the 1 MiB limit: 413) one after another.
fn slow_clients(dir: &Path, token: &str, model: Arc<dyn Embedder>, model_dir: &Path, secs: f64) {
    let srv = start(dir, model, 2, model_dir);
    let addr = srv.addr();
    load(addr, token, 1, 0.3, &bodies("text"));
    let stop = Arc::new(AtomicBool::new(false));
    let mut pests = Vec::new();
    for _ in 0..16 {
        let (stop, token) = (stop.clone(), token.to_string());
        pests.push(std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let body = br#"{"query":"battery","mode":"text"}"#;
            let _ = write!(
                s,
                "POST /v1/search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            for b in body {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let _ = s.write_all(&[*b]);
                std::thread::sleep(Duration::from_secs(1));
            }
        }));
    }
    for _ in 0..4 {
        let (stop, token) = (stop.clone(), token.to_string());
        pests.push(std::thread::spawn(move || {
            let big = vec![b' '; 2 << 20];
            let mut conn = Conn::new(addr);
            while !stop.load(Ordering::Relaxed) {
                let _ = conn.send("POST", "/v1/search", &token, &big);
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    let t = load(addr, token, 8, secs, &bodies("text"));
    println!(
        "{}",
        t.row("search text, 8 conns, beside 16 clients at 1 byte/s and 4 sending 2 MiB bodies | 2")
    );
    stop.store(true, Ordering::Relaxed);
    for p in pests {
        let _ = p.join();
    }
    srv.shutdown();
}
