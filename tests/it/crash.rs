//! Crash safety: `kill -9` at random moments of ingest (and reindex). No verbatim reported stored
//! may be lost, and the next command must find store and indexes consistent.
//!
//! `VERBATIM_KILL_ITERS` (default 50) and `VERBATIM_KILL_SEED` set the loop; `scripts/kill-loop.sh`
//! runs a longer one.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use verbatim::workspace::Workspace;

use crate::common::*;

/// xorshift64*: reproducible kill points without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes a CSV of `n` real sentences under fresh ids for iteration `k`.
fn batch_file(
    dir: &std::path::Path,
    k: u64,
    rows: &[(String, String, String, String)],
    n: usize,
) -> (std::path::PathBuf, Vec<String>) {
    let path = dir.join(format!("batch-{k}.csv"));
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record(["id", "text", "sentiment", "domain"])
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let r = &rows[(k as usize * 37 + i) % rows.len()];
        let id = format!("k{k}-{i}");
        w.write_record([id.as_str(), r.1.as_str(), r.2.as_str(), r.3.as_str()])
            .unwrap();
        ids.push(id);
    }
    w.flush().unwrap();
    (path, ids)
}

/// Checks the invariants after a crash: the indexes catch up to exactly the store.
fn assert_consistent(ws_dir: &std::path::Path, ctx: &str) {
    let ws =
        Workspace::open(ws_dir).unwrap_or_else(|e| panic!("{ctx}: workspace does not open: {e}"));
    let (ix, _) = ws
        .indexes()
        .unwrap_or_else(|e| panic!("{ctx}: indexes do not open: {e}"));
    let store_docs = ws.raw_store().all_docs().unwrap();
    let text_docs = ix.text.all_docs().unwrap();
    assert_eq!(
        text_docs, store_docs,
        "{ctx}: text index and store disagree"
    );
    let seq = ws.raw_store().seq().unwrap();
    assert_eq!(ix.text.covered(), seq, "{ctx}: text index not caught up");
    assert_eq!(
        ix.vectors.covered(),
        seq,
        "{ctx}: vector index not caught up"
    );
    assert!(
        ix.vectors.points() >= store_docs.len(),
        "{ctx}: vectors missing from HNSW"
    );
}

#[test]
fn kill_9_during_ingest_loses_nothing_reported_stored() {
    let iters = env_u64("VERBATIM_KILL_ITERS", 50);
    let mut rng = Rng(env_u64("VERBATIM_KILL_SEED", 0x9E37_79B9_7F4A_7C15) | 1);
    let dir = workspace();
    // Small store transactions so kills land between, inside and after many commits.
    let cfg_path = dir.path().join("verbatim.toml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(&cfg_path, cfg.replace("chunk_size = 256", "chunk_size = 8")).unwrap();
    let rows = uci_rows();
    let data = tempfile::tempdir().unwrap();

    // Calibrate: how long one uninterrupted ingest of a batch takes here.
    let (path, ids) = batch_file(data.path(), 0, &rows, 120);
    let t = Instant::now();
    ok(verbatim(dir.path())
        .args([
            "ingest", "--text", "text", "--id", "id", "--field", "domain", "--quiet",
        ])
        .arg(&path));
    let full = t.elapsed();
    assert_consistent(dir.path(), "after calibration");
    let ws = Workspace::open(dir.path()).unwrap();
    assert!(ids
        .iter()
        .all(|id| ws.raw_store().get(id).unwrap().is_some()));
    drop(ws);

    let (mut killed, mut completed, mut mid_ingest) = (0, 0, 0);
    for k in 1..=iters {
        let reindex = k % 5 == 0;
        let (path, ids) = batch_file(data.path(), k, &rows, 120);
        let mut cmd = verbatim(dir.path());
        if reindex {
            cmd.args(["reindex", "--quiet"]);
        } else {
            cmd.args(["ingest", "--progress", "jsonl"]).arg(&path);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Up to 3/4 of the calibrated duration: later runs are often faster (warm caches), and
        // a calibration slowed by other tests running alongside would otherwise let too many
        // runs finish before the kill.
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64 * 3 / 4 + 1));
        let stderr = child.stderr.take().unwrap();
        // Read progress lines concurrently so the pipe never fills.
        let reader = std::thread::spawn(move || {
            let mut reported = 0u64;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["phase"] == "embedding" {
                        reported = reported.max(v["done"].as_u64().unwrap_or(0));
                    }
                }
            }
            reported
        });
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            // SIGKILL: no destructor, no flush, no chance to tidy up.
            child.kill().unwrap();
            killed += 1;
        } else {
            completed += 1;
        }
        child.wait().unwrap();
        let reported = reader.join().unwrap();
        let ctx = format!(
            "iteration {k} ({}, killed after {delay:?}, {reported} reported stored)",
            if reindex { "reindex" } else { "ingest" }
        );
        assert_consistent(dir.path(), &ctx);
        if !reindex {
            let ws = Workspace::open(dir.path()).unwrap();
            let present = ids
                .iter()
                .filter(|id| ws.raw_store().get(id).unwrap().is_some())
                .count() as u64;
            assert!(
                present >= reported,
                "{ctx}: only {present} of the {reported} reported verbatims are in the store"
            );
            if present > 0 && present < ids.len() as u64 {
                mid_ingest += 1;
            }
            drop(ws);
            // The interrupted file completes on a second run, with nothing duplicated.
            let s = json(verbatim(dir.path()).args(["ingest", "--quiet"]).arg(&path));
            assert_eq!(
                s["stored"].as_u64().unwrap() + s["unchanged"].as_u64().unwrap(),
                120,
                "{ctx}: {s}"
            );
            assert_eq!(s["unchanged"].as_u64().unwrap(), present, "{ctx}: {s}");
            assert_consistent(dir.path(), &format!("{ctx}, after completing"));
        }
    }
    eprintln!(
        "kill loop: {iters} iterations, {killed} killed mid-run ({mid_ingest} with the file partly stored), {completed} finished before the kill"
    );
    assert!(
        killed as u64 >= iters / 2,
        "the loop must actually kill most runs ({killed}/{iters})"
    );
    assert!(
        mid_ingest as u64 >= iters / 10,
        "too few kills landed while verbatims were being stored ({mid_ingest}/{iters})"
    );
}
