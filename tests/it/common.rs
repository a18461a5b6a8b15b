//! Shared helpers for the integration tests: the real model, the binary, fresh workspaces.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A test fixture.
pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// The all-MiniLM-L6-v2 folder that `models/fetch.sh` provisions. Panics with the fix when absent.
pub fn model_dir() -> PathBuf {
    let dir = repo().join("models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "the model is missing from {}: run `make models` (models/fetch.sh) first",
        dir.display()
    );
    dir
}

/// A `verbatim` command with the checkout's models folder (default model all-MiniLM-L6-v2) and a
/// workspace.
pub fn verbatim(ws: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    model_dir(); // fails early, with the fix, when the model is not provisioned
    c.env("VERBATIM_MODELS", repo().join("models"))
        .env_remove("VERBATIM_MODEL")
        .env_remove("VERBATIM_TOKEN")
        .env("VERBATIM_WORKSPACE", ws)
        .env_remove("VERBATIM_THREADS")
        // fp32 everywhere, so outputs (snapshots, scores) do not depend on whether the test
        // machine has AVX512-BF16; the bf16 path has its own tests (embed.rs).
        .env("VERBATIM_PRECISION", "fp32")
        .env("NO_COLOR", "1");
    c
}

/// Runs a command and returns its output, printing stderr on failure of the spawn.
pub fn run(c: &mut Command) -> Output {
    c.output().expect("spawn verbatim")
}

/// stdout as a string.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as a string.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and asserts success, returning stdout.
pub fn ok(c: &mut Command) -> String {
    let o = run(c);
    assert!(
        o.status.success(),
        "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Runs with --json and parses stdout.
pub fn json(c: &mut Command) -> serde_json::Value {
    let out = ok(c.arg("--json"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// The flags that map the demo feedback (`data/demo_feedback.csv`, and files shaped like it):
/// ids, respondents' emails, dates, NPS, country and channel.
pub const DEMO_MAPPING: [&str; 14] = [
    "--text",
    "comment",
    "--id",
    "response_id",
    "--respondent",
    "customer",
    "--date",
    "submitted",
    "--score",
    "nps",
    "--field",
    "country",
    "--field",
    "channel",
];

/// The demo feedback: 30 rows, FR / US / BE, January to May 2024.
pub fn demo_csv() -> PathBuf {
    repo().join("data/demo_feedback.csv")
}

/// A fresh, initialised workspace in a temp folder.
pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(verbatim(dir.path()).arg("init").arg(dir.path()));
    dir
}

/// Ingests the 600-sentence UCI fixture.
pub fn ingest_uci(ws: &Path) -> serde_json::Value {
    json(
        verbatim(ws)
            .args([
                "ingest",
                "--text",
                "text",
                "--id",
                "id",
                "--field",
                "sentiment",
                "--field",
                "domain",
            ])
            .arg(fixture("uci_600.csv")),
    )
}

/// Ingests the 400-utterance chitchat fixture (dates, nested score, segments).
pub fn ingest_chitchat(ws: &Path) -> serde_json::Value {
    json(
        verbatim(ws)
            .args([
                "ingest",
                "--text",
                "text",
                "--id",
                "id",
                "--date",
                "date",
                "--score",
                "ratings.witty",
                "--field",
                "prompt",
            ])
            .arg(fixture("chitchat_400.jsonl")),
    )
}

/// Reads a JSON Lines fixture.
pub fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("read fixture")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// Reads the UCI CSV fixture as (id, text, sentiment, domain).
pub fn uci_rows() -> Vec<(String, String, String, String)> {
    let mut r = csv::Reader::from_path(fixture("uci_600.csv")).expect("fixture");
    r.records()
        .map(|rec| {
            let rec = rec.expect("row");
            (
                rec[0].to_string(),
                rec[1].to_string(),
                rec[2].to_string(),
                rec[3].to_string(),
            )
        })
        .collect()
}

/// The flags that map the privacy tickets (`tests/fixtures/privacy/tickets.csv`): ids,
/// respondents' emails, dates, CSAT, country and a free-text contact column.
pub const TICKETS_MAPPING: [&str; 14] = [
    "--text",
    "message",
    "--id",
    "ticket_id",
    "--respondent",
    "email",
    "--date",
    "created",
    "--score",
    "csat",
    "--field",
    "country",
    "--field",
    "contact",
];

/// Ingests the 12 privacy tickets (cards, IBANs, emails… in clear) with `extra` flags, and
/// returns the ingest summary.
pub fn ingest_tickets(ws: &Path, extra: &[&str]) -> serde_json::Value {
    json(
        verbatim(ws)
            .arg("ingest")
            .args(TICKETS_MAPPING)
            .args(extra)
            .arg(fixture("privacy/tickets.csv")),
    )
}

/// Every file under `dir`, recursively, appended to `out`.
pub fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The `--progress jsonl` events on a command's stderr.
pub fn progress_events(o: &Output) -> Vec<serde_json::Value> {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The finished steps among progress events: (step, done, total).
pub fn finished_steps(events: &[serde_json::Value]) -> Vec<(String, u64, u64)> {
    events
        .iter()
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

/// A fresh workspace in `ws/` inside a temp folder, which also holds the test's other files
/// (outside the workspace). Keep the `TempDir`: the folder goes when it is dropped.
pub fn workspace_in_tmp() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ws = tmp.path().join("ws");
    ok(verbatim(&ws).arg("init"));
    (tmp, ws)
}

/// A copy of the schema v5 workspace of `tests/fixtures/audit/v5` (store, key file, config; no
/// indexes) in `ws/` inside a temp folder. git keeps no permission bits but the executable one:
/// a checkout has the key at 0644, which the workspace refuses; the owner's key is 0600.
pub fn v5_workspace() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    for f in ["store.sqlite", "verbatim.key", "verbatim.toml"] {
        std::fs::copy(fixture("audit/v5").join(f), ws.join(f)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        ws.join("verbatim.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    (tmp, ws)
}

/// Every row `sql` selects from a workspace's store (opened read-only), each read as `T` (a
/// tuple of the selected columns, in order).
pub fn store_rows<T>(ws: &Path, sql: &str) -> Vec<T>
where
    T: for<'a> TryFrom<&'a rusqlite::Row<'a>, Error = rusqlite::Error>,
{
    let c = rusqlite::Connection::open_with_flags(
        ws.join("store.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut s = c.prepare(sql).unwrap();
    s.query_map([], |r| T::try_from(r))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}
