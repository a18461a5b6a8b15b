//! Integrity at rest (issue 17, item 5): a byte changed on disk is found by `verbatim check`
//! (exit 1, naming the table and row or the file) and never served, or it is provably harmless.
//!
//! The workspace is the 12-row `tests/fixtures/integrity/tiny.csv`, built once per test and
//! copied for each damage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A query holding a word of every text of the fixture: a text search returns all 12.
const EVERY_TEXT: &str =
    "battery delivery service sound screen setup refund charger design instructions strap";

fn ingest_tiny(ws: &Path) {
    ok(verbatim(ws)
        .args([
            "ingest", "--quiet", "--text", "text", "--id", "id", "--field", "country",
        ])
        .arg(fixture("integrity/tiny.csv")));
}

/// A workspace with the fixture, searched once in each mode (what a search stores on first
/// use, it has stored).
fn tiny_workspace() -> (tempfile::TempDir, PathBuf) {
    let (tmp, ws) = workspace_in_tmp();
    ingest_tiny(&ws);
    ok(verbatim(&ws).args(["search", "--mode", "text", EVERY_TEXT]));
    ok(verbatim(&ws).args(["search", "--mode", "vector", "--limit", "50", "x"]));
    (tmp, ws)
}

/// Runs `c`, killed after 60 s (a damaged file must not hang a command).
fn run_bounded(c: &mut Command) -> Output {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn verbatim");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("command hung: {c:?}\nstderr: {}", stderr(&o));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The hits of a search as (id, text), in rank order, with their scores; `None` when the
/// command failed (a failure serves nothing).
fn hits(ws: &Path, mode: &str, query: &str) -> Option<Vec<(String, String, String)>> {
    let o = run_bounded(verbatim(ws).args([
        "search", "--json", "--quiet", "--mode", mode, "--limit", "50", query,
    ]));
    if !o.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("search --json");
    Some(
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["verbatim"]["id"].as_str().unwrap().to_string(),
                    h["verbatim"]["text"].as_str().unwrap().to_string(),
                    h["score"].to_string(),
                )
            })
            .collect(),
    )
}

/// The texts of the fixture by id, as stored (redaction leaves these unchanged).
fn originals() -> BTreeMap<String, String> {
    let mut r = csv_rows(&fixture("integrity/tiny.csv"));
    r.remove(0);
    r.into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect()
}

/// A tiny CSV reader for the fixture (quoted text, no quotes inside).
fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut out = Vec::new();
            let mut rest = l;
            while !rest.is_empty() {
                if let Some(r) = rest.strip_prefix('"') {
                    let end = r.find('"').unwrap();
                    out.push(r[..end].to_string());
                    rest = r[end + 1..].strip_prefix(',').unwrap_or("");
                } else {
                    let end = rest.find(',').unwrap_or(rest.len());
                    out.push(rest[..end].to_string());
                    rest = rest.get(end + 1..).unwrap_or("");
                }
            }
            out
        })
        .collect()
}

/// Every value of every table of a store, in a canonical order (`Err`: it does not read).
fn logical_dump(store: &Path) -> Result<Vec<String>, rusqlite::Error> {
    let conn = rusqlite::Connection::open_with_flags(
        store,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut out = Vec::new();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    out.extend(
        conn.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")?
            .query_map([], |r| {
                Ok(format!(
                    "{:?}",
                    (0..4)
                        .map(|i| r.get_ref(i).map(|v| format!("{v:?}")))
                        .collect::<Result<Vec<_>, _>>()?
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?,
    );
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\""))?;
        let n = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let values = (0..n)
                    .map(|i| r.get_ref(i).map(|v| format!("{v:?}")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(format!("{t}: {values:?}"))
            })?
            .collect::<Result<_, _>>()?;
        rows.sort();
        out.extend(rows);
    }
    Ok(out)
}

/// A file's name without the random part (a tantivy segment's id, a generation's number).
fn stable_name(f: &Path) -> String {
    let name = f.file_name().unwrap().to_string_lossy().to_string();
    match name.split_once('.') {
        Some((stem, rest)) if stem.len() == 32 && stem.chars().all(|c| c.is_ascii_hexdigit()) => {
            format!("segment.{rest}")
        }
        _ => name,
    }
}

fn check(ws: &Path) -> (i32, serde_json::Value) {
    let o = run_bounded(verbatim(ws).args(["check", "--json"]));
    let code = o.status.code().unwrap_or(-1);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (code, v)
}

/// Copies a workspace folder (files and folders; lock files are empty and come along).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

#[test]
fn a_clean_workspace_checks_clean() {
    let (_tmp, ws) = tiny_workspace();
    let o = run(verbatim(&ws).arg("check"));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("workspace intact: 12 verbatims"),
        "{}",
        stdout(&o)
    );
    let (code, v) = check(&ws);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["clean"], true);
    assert_eq!(v["checked"]["verbatims"], 12);
    assert_eq!(v["checked"]["text_documents"], 12);
    assert_eq!(v["checked"]["vector_points"], 12);
    // The check is an audited read of its own.
    let trail = ok(verbatim(&ws).args(["audit", "show"]));
    assert!(trail.contains("check"), "{trail}");
}

#[test]
fn one_changed_letter_in_a_stored_text_is_named_never_served_and_not_reindexed() {
    let (_tmp, ws) = tiny_workspace();
    let store = ws.join("store.sqlite");
    let mut bytes = std::fs::read(&store).unwrap();
    let at = bytes
        .windows(16)
        .position(|w| w == b"The battery died")
        .expect("the text is in the store file");
    bytes[at + 4] = b'c'; // "battery" → "cattery"
    std::fs::write(&store, &bytes).unwrap();

    // `check` names the table and the row.
    let o = run(verbatim(&ws).arg("check"));
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("table verbatims, row 1 (t01)"),
        "check does not name the row:\n{out}"
    );
    let (code, v) = check(&ws);
    assert_eq!(code, 1);
    let d = &v["damaged"][0];
    assert_eq!(
        (d["table"].as_str(), d["row"].as_i64()),
        (Some("verbatims"), Some(1)),
        "{v}"
    );
    assert_eq!(d["id"], "t01");

    // Search never shows it, in any mode; the read says why on stderr.
    for mode in ["text", "vector", "hybrid"] {
        let o = run(verbatim(&ws).args([
            "search",
            "--json",
            "--mode",
            mode,
            "--limit",
            "50",
            "battery died after two days",
        ]));
        assert!(o.status.success(), "{}", stderr(&o));
        let body = stdout(&o);
        assert!(
            !body.contains("cattery") && !body.contains("\"t01\""),
            "{mode}: {body}"
        );
        if mode == "text" {
            assert!(
                stderr(&o).contains("table verbatims, row 1 (id t01)"),
                "no warning: {}",
                stderr(&o)
            );
        }
    }

    // `reindex` refuses, and nothing of the damaged text reaches an index.
    let o = run(verbatim(&ws).arg("reindex"));
    assert!(!o.status.success(), "reindex went ahead:\n{}", stdout(&o));
    assert!(stderr(&o).contains("row 1 (id t01)"), "{}", stderr(&o));
    let mut files = Vec::new();
    all_files(&ws.join("index"), &mut files);
    for f in &files {
        let b = std::fs::read(f).unwrap();
        assert!(
            !contains(&b, b"catter"),
            "{} holds the damaged text",
            f.display()
        );
    }
    assert_eq!(hits(&ws, "text", "cattery"), Some(vec![]));

    // Re-ingesting the file writes the row again: clean, and served as written.
    ingest_tiny(&ws);
    let (code, v) = check(&ws);
    assert_eq!(code, 0, "{v}");
    let found = hits(&ws, "text", "battery died").unwrap();
    assert!(found.iter().any(|(id, text, _)| id == "t01"
        && text == "The battery died after two days, very disappointed."));
}

/// A seeded xorshift generator: the same 200 damages on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Byte flips at 200 seeded offsets of the store and index files, one at a time on a fresh copy:
/// each is detected (`check` exits 1 and names something) or harmless — `check` exits 0 *and*
/// every search serves exactly what the undamaged workspace serves (same ids, texts, scores,
/// order: a flip in free space, slack bytes, a counter nobody reads before rewriting it). In no
/// case does a search serve a text that differs from the one ingested under its id.
#[test]
fn byte_flips_in_store_and_index_files_are_detected_or_harmless_and_never_served() {
    let (tmp, base) = tiny_workspace();
    let texts = originals();
    let reference = {
        let copy = tmp.path().join("reference");
        copy_dir(&base, &copy);
        let t = hits(&copy, "text", EVERY_TEXT).unwrap();
        let v = hits(&copy, "vector", "x").unwrap();
        assert_eq!((t.len(), v.len()), (12, 12));
        (t, v)
    };
    let reference_dump = logical_dump(&base.join("store.sqlite")).unwrap();
    // The files a flip may hit, in three parts taken in turn (the store's ~170 kB would
    // otherwise take nearly every flip): the store, the text index's files, the vector index's.
    let mut parts = vec![vec![base.join("store.sqlite")], Vec::new(), Vec::new()];
    all_files(&base.join("index/text"), &mut parts[1]);
    all_files(&base.join("index/vectors"), &mut parts[2]);
    for files in &mut parts {
        files.retain(|f| std::fs::metadata(f).unwrap().len() > 0);
        // Segment and generation names are random: order by what does not change.
        files.sort_by_key(|f| stable_name(f));
    }

    let mut rng = Rng(0x5eed_1717_0000_0005);
    let (mut detected, mut harmless, mut served_identical) = (0, Vec::new(), Vec::new());
    // Per part (store, text index, vector index): flips detected, flips harmless.
    let mut per_part: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for n in 0..200 {
        // An offset over all the part's bytes together, and a non-zero XOR mask.
        let files = &parts[n % 3];
        let sizes: Vec<u64> = files
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().len())
            .collect();
        let mut at = rng.next() % sizes.iter().sum::<u64>();
        let i = sizes
            .iter()
            .position(|&s| {
                if at < s {
                    true
                } else {
                    at -= s;
                    false
                }
            })
            .unwrap();
        let mask = (rng.next() % 255 + 1) as u8;
        let ws = tmp.path().join(format!("flip-{n}"));
        copy_dir(&base, &ws);
        let rel = files[i].strip_prefix(&base).unwrap();
        let target = ws.join(rel);
        let mut bytes = std::fs::read(&target).unwrap();
        bytes[at as usize] ^= mask;
        std::fs::write(&target, &bytes).unwrap();
        let what = format!("flip {n}: {} at byte {at} ^ {mask:#04x}", rel.display());
        let part = rel
            .iter()
            .take(2)
            .collect::<PathBuf>()
            .display()
            .to_string();
        let tally = per_part.entry(part).or_default();
        // Before anything writes to the copy (`check` and searches append audit entries).
        let dump = (rel == Path::new("store.sqlite")).then(|| logical_dump(&target));
        let same_values = matches!(&dump, Some(Ok(d)) if *d == reference_dump);
        // What changed, said in the list of flips served identically.
        let changed: Vec<String> = match &dump {
            Some(Ok(d)) => d
                .iter()
                .filter(|l| !reference_dump.contains(l))
                .map(|l| l.chars().take(600).collect())
                .collect(),
            Some(Err(e)) => vec![e.to_string()],
            None => Vec::new(),
        };

        let (code, report) = check(&ws);
        assert!(
            code == 0 || code == 1,
            "{what}: check exited {code}: {report}"
        );
        // Whatever a search serves is what was ingested under that id.
        let text_hits = hits(&ws, "text", EVERY_TEXT);
        for (id, text, _) in text_hits.iter().flatten() {
            assert_eq!(texts.get(id), Some(text), "{what}: served a damaged text");
        }
        if code == 1 {
            let damaged = report["damaged"].as_array().map_or(0, Vec::len);
            assert!(
                damaged > 0,
                "{what}: exit 1 without naming anything: {report}"
            );
            detected += 1;
            tally.0 += 1;
        } else if same_values {
            tally.1 += 1;
            // Not detected, and no stored value changed (free space, slack in a page, the
            // header's change counter): with SQLite's integrity check passing, every read
            // returns what it returned before.
            harmless.push(what);
        } else {
            // Not detected and a value read differently: nothing served may change.
            tally.1 += 1;
            served_identical.push(format!("{what}: {changed:?}"));
            assert_eq!(
                text_hits.as_ref(),
                Some(&reference.0),
                "{what}: undetected, and the text search changed"
            );
            let vector_hits = hits(&ws, "vector", "x");
            assert_eq!(
                vector_hits.as_ref(),
                Some(&reference.1),
                "{what}: undetected, and the vector search changed"
            );
        }
        std::fs::remove_dir_all(&ws).unwrap();
    }
    eprintln!(
        "200 byte flips: {detected} detected, {} harmless (no stored value changed), {} harmless \
         (served output identical): {served_identical:#?}; (detected, harmless) per part: \
         {per_part:?}",
        harmless.len(),
        served_identical.len()
    );
    assert_eq!(detected + harmless.len() + served_identical.len(), 200);
}

#[test]
fn a_workspace_from_before_seals_is_sealed_on_open_and_then_checked() {
    // A schema v5 workspace: its rows have no seal until the first command opens it.
    let (_tmp, ws) = v5_workspace();
    ok(verbatim(&ws).arg("stats")); // migrates, seals, builds the indexes
    let (code, v) = check(&ws);
    assert_eq!(code, 0, "{v}");
    let n = v["checked"]["verbatims"].as_i64().unwrap();
    assert!(n > 0, "{v}");
    // Sealed now: a changed row is damage.
    let c = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
    c.execute(
        "UPDATE verbatims SET text = text || '!' WHERE doc = (SELECT MIN(doc) FROM verbatims)",
        [],
    )
    .unwrap();
    drop(c);
    let (code, v) = check(&ws);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["damaged"][0]["table"], "verbatims", "{v}");
}

#[test]
fn writes_keep_the_workspace_checking_clean() {
    // Every write that rewrites rows or index files leaves seals and sums that verify:
    // an updated text, an erasure (the graph rewritten without the erased points), a reindex.
    let (tmp, ws) = tiny_workspace();
    let changed = tmp.path().join("changed.csv");
    std::fs::write(
        &changed,
        "id,text,country\nt02,\"Delivery was slow but the box was intact.\",US\n",
    )
    .unwrap();
    ok(verbatim(&ws)
        .args([
            "ingest", "--quiet", "--text", "text", "--id", "id", "--field", "country",
        ])
        .arg(&changed));
    let (code, v) = check(&ws);
    assert_eq!(code, 0, "after an update: {v}");
    ok(verbatim(&ws).args(["forget", "--id", "t05"]));
    let (code, v) = check(&ws);
    assert_eq!(code, 0, "after an erasure: {v}");
    assert_eq!(v["checked"]["verbatims"], 11);
    ok(verbatim(&ws).arg("reindex"));
    let (code, v) = check(&ws);
    assert_eq!(code, 0, "after a reindex: {v}");
    assert_eq!(v["checked"]["vector_points"], 11);
}

#[test]
fn check_is_for_admins_and_a_store_that_does_not_open_is_damage() {
    let (_tmp, ws) = tiny_workspace();
    let analyst = ok(verbatim(&ws).args(["-q", "user", "add", "ann", "--role", "analyst"]));
    let admin = ok(verbatim(&ws).args(["-q", "user", "add", "ada", "--role", "admin"]));
    let o = run(verbatim(&ws)
        .env("VERBATIM_TOKEN", analyst.trim())
        .arg("check"));
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    let o = run(verbatim(&ws)
        .env("VERBATIM_TOKEN", admin.trim())
        .arg("check"));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    // The SQLite header's magic changed: the store does not open, and `check` says so.
    let store = ws.join("store.sqlite");
    let mut bytes = std::fs::read(&store).unwrap();
    bytes[0] ^= 0x01;
    std::fs::write(&store, &bytes).unwrap();
    let (code, v) = check(&ws);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["damaged"][0]["part"], "store");
    assert!(
        v["damaged"][0]["message"]
            .as_str()
            .unwrap()
            .contains("does not open"),
        "{v}"
    );
}
