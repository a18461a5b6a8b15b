//! `verbatim prepare` → `verbatim ingest --prepared` (issue 18) against plain `ingest`, with
//! the real model and binary, no Spark: the same ids, redacted texts, pseudonyms, hashes and
//! bit-identical vectors; refusals of another key or model (exit 2, nothing written); an
//! idempotent re-run; shards by respondent; no personal data in the prepared output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use crate::common::*;

/// A CSV fixture as one Arrow IPC stream of string columns (empty cells null), the way a Spark
/// job hands a partition to `prepare`.
pub(crate) fn csv_as_ipc(path: &Path) -> Vec<u8> {
    let mut r = csv::Reader::from_path(path).expect("fixture");
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    let columns: Vec<Vec<Option<String>>> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|row| Some(row[c].to_string()).filter(|s| !s.is_empty()))
                .collect()
        })
        .collect();
    ipc(&header, columns)
}

/// String columns as an Arrow IPC stream.
fn ipc(names: &[String], columns: Vec<Vec<Option<String>>>) -> Vec<u8> {
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    drop(w);
    out
}

/// Runs `verbatim prepare` with `input` on stdin; returns stdout (Arrow IPC).
pub(crate) fn prepare(key: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut c: Command = verbatim(Path::new("/nonexistent-workspace"));
    let mut child = c
        .arg("prepare")
        .arg("--key")
        .arg(key)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn verbatim prepare");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "prepare failed: {}", stderr(&o));
    o.stdout
}

/// A workspace whose key file is `key_from`'s (so pseudonyms and hashes can be compared).
pub(crate) fn workspace_with_key_of(key_from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        key_from.join("verbatim.key"),
        dir.path().join("verbatim.key"),
    )
    .unwrap();
    ok(verbatim(dir.path()).arg("init").arg(dir.path()));
    dir
}

/// Everything the store holds of each verbatim but where it came from, by id, with the vector
/// as its bytes.
type StoredRow = (
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<f64>,
    String,
    String,
    String,
    Vec<u8>,
);

fn stored(ws: &Path) -> Vec<StoredRow> {
    store_rows(
        ws,
        "SELECT v.id, v.text, v.respondent, v.ts, v.score, v.language, v.fields, \
         v.content_hash, e.vector FROM verbatims v JOIN embeddings e ON e.doc = v.doc \
         ORDER BY v.id",
    )
}

pub(crate) fn export_key(ws: &Path) -> PathBuf {
    let out = ws.join("prepare.key");
    ok(verbatim(ws)
        .args(["key", "export", "--for", "prepare", "--out"])
        .arg(&out));
    out
}

fn tickets_ipc() -> Vec<u8> {
    csv_as_ipc(&fixture("privacy/tickets.csv"))
}

#[test]
fn prepared_rows_store_what_ingest_stores_bit_for_bit() {
    let plain = workspace();
    ingest_tickets(plain.path(), &[]);
    let want = stored(plain.path());
    assert_eq!(want.len(), 12);

    let ws = workspace_with_key_of(plain.path());
    let key = export_key(ws.path());
    // Batches of 5 rows: other embedding batches than the plain ingest's one of 12.
    let mut args: Vec<&str> = TICKETS_MAPPING.to_vec();
    args.extend(["--chunk", "5"]);
    let out = prepare(&key, &args, &tickets_ipc());
    let dir = ws.path().join("prepared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("part-00000.arrow"), &out).unwrap();

    let s = json(
        verbatim(ws.path())
            .arg("ingest")
            .arg("--prepared")
            .arg(&dir),
    );
    assert_eq!(
        (s["stored"].as_u64(), s["rejected"].as_u64()),
        (Some(12), Some(0)),
        "{s}"
    );
    let got = stored(ws.path());
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "verbatim {} differs", w.0);
    }
    // The indexes were caught up: a search finds the prepared verbatims.
    let hits = json(verbatim(ws.path()).args(["search", "refund", "--mode", "text"]));
    assert!(!hits["hits"].as_array().unwrap().is_empty(), "{hits}");

    // Again: nothing changed, nothing written.
    let again = json(
        verbatim(ws.path())
            .arg("ingest")
            .arg("--prepared")
            .arg(&dir),
    );
    assert_eq!(
        (again["stored"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(12)),
        "{again}"
    );
    assert_eq!(stored(ws.path()), got);

    // Two shards split by respondent: every verbatim in exactly one, a respondent in one.
    let mut shards = Vec::new();
    for i in 0..2 {
        let sh = workspace_with_key_of(plain.path());
        ok(verbatim(sh.path())
            .args(["ingest", "--prepared"])
            .arg(&dir)
            .args(["--shard", &format!("{i}/2")]));
        shards.push(stored(sh.path()));
    }
    let mut union: Vec<StoredRow> = shards.concat();
    union.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(union, got, "the shards together are the whole set, once");
    for r in &shards[0] {
        assert!(
            r.2.is_none() || !shards[1].iter().any(|o| o.2 == r.2),
            "respondent {:?} in both shards",
            r.2
        );
    }
    assert!(!shards[0].is_empty() && !shards[1].is_empty());

    // One file per record batch (5, 5 and 2 rows), as a Spark job writes a part per task: the
    // set is stored file by file (one file's rows in memory at a time), the same rows; the
    // progress advances by each file, then the indexes are caught up once.
    let parts = batches_as_files(&out);
    assert_eq!(
        parts.len(),
        3,
        "prepare --chunk 5 on 12 rows writes 3 batches"
    );
    let multi = workspace_with_key_of(plain.path());
    let dir = multi.path().join("prepared");
    std::fs::create_dir(&dir).unwrap();
    for (i, p) in parts.iter().enumerate() {
        std::fs::write(dir.join(format!("part-{i:05}.arrow")), p).unwrap();
    }
    let o = run(verbatim(multi.path())
        .args(["--progress", "jsonl", "--json", "ingest", "--prepared"])
        .arg(&dir));
    assert!(o.status.success(), "{}", stderr(&o));
    let events = progress_events(&o);
    let advances: Vec<u64> = events
        .iter()
        .filter(|e| e["step"] == "storing rows" && e["event"] == "progress")
        .map(|e| e["done"].as_u64().unwrap())
        .collect();
    assert_eq!(advances, [5, 10, 12], "{events:?}");
    let steps = finished_steps(&events);
    assert_eq!(
        steps.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        ["storing rows", "indexing"],
        "nothing embedded: {steps:?}"
    );
    assert_eq!(stored(multi.path()), got);
}

/// The output of `prepare`, one Arrow IPC stream per record batch.
fn batches_as_files(prepared: &[u8]) -> Vec<Vec<u8>> {
    let reader = arrow_ipc::reader::StreamReader::try_new(prepared, None).unwrap();
    let schema = reader.schema();
    reader
        .map(|b| {
            let mut out = Vec::new();
            let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).unwrap();
            w.write(&b.unwrap()).unwrap();
            w.finish().unwrap();
            drop(w);
            out
        })
        .collect()
}

/// The output of `prepare`, rewritten with one column's every value `value`.
fn with_column(prepared: &[u8], name: &str, value: &str) -> Vec<u8> {
    with_array(prepared, name, &|n| {
        Arc::new(StringArray::from(vec![value; n])) as ArrayRef
    })
}

/// The output of `prepare`, rewritten with one column replaced by `make(rows)`.
fn with_array(prepared: &[u8], name: &str, make: &dyn Fn(usize) -> ArrayRef) -> Vec<u8> {
    let reader = arrow_ipc::reader::StreamReader::try_new(prepared, None).unwrap();
    let schema = reader.schema();
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).unwrap();
    for b in reader {
        let b = b.unwrap();
        let i = schema.index_of(name).unwrap();
        let mut cols = b.columns().to_vec();
        cols[i] = make(b.num_rows());
        w.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
            .unwrap();
    }
    w.finish().unwrap();
    drop(w);
    out
}

fn verbatim_count(ws: &Path) -> usize {
    stored(ws).len()
}

#[test]
fn another_key_model_or_legacy_key_is_refused_and_nothing_is_written() {
    let ws = workspace();
    let key = export_key(ws.path());
    let out = prepare(&key, &TICKETS_MAPPING, &tickets_ipc());

    let refused = |dir_name: &str, bytes: &[u8], target: &Path, what: &str| {
        let dir = ws.path().join(dir_name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("part-0.arrow"), bytes).unwrap();
        let o = run(verbatim(target).arg("ingest").arg("--prepared").arg(&dir));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(what), "{}", stderr(&o));
        assert_eq!(verbatim_count(target), 0, "a refused set wrote verbatims");
    };
    // Another workspace (another key).
    let other = workspace();
    refused("a", &out, other.path(), "key id");
    // Another model, and another schema version, into the right workspace.
    refused(
        "b",
        &with_column(&out, "model", "someone-elses-model"),
        ws.path(),
        "model",
    );
    // Version 1 (before the unit columns) and a version from the future.
    for v in [1, 3] {
        let other_version = with_array(&out, "schema_version", &|n| {
            Arc::new(arrow_array::Int32Array::from(vec![v; n])) as ArrayRef
        });
        refused(
            &format!("c{v}"),
            &other_version,
            ws.path(),
            "schema version",
        );
    }
    // The key file of another workspace cannot even be exported into place twice.
    let again = run(verbatim(ws.path())
        .args(["key", "export", "--for", "prepare", "--out"])
        .arg(&key));
    assert_eq!(again.status.code(), Some(2));

    // A legacy (v1) key file: one key for every purpose, so exporting it takes a flag.
    let legacy = tempfile::tempdir().unwrap();
    let body = format!(
        "version = 1\nseal = \"{}\"\npseudonym = \"{}\"\n",
        "11".repeat(32),
        "22".repeat(32)
    );
    let key_path = legacy.path().join("verbatim.key");
    std::fs::write(&key_path, body).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    ok(verbatim(legacy.path()).arg("init").arg(legacy.path()));
    let out_key = legacy.path().join("p.key");
    let o = run(verbatim(legacy.path())
        .args(["key", "export", "--for", "prepare", "--out"])
        .arg(&out_key));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--allow-legacy-key"), "{}", stderr(&o));
    assert!(!out_key.exists());
    ok(verbatim(legacy.path())
        .args([
            "key",
            "export",
            "--for",
            "prepare",
            "--allow-legacy-key",
            "--out",
        ])
        .arg(&out_key));
    // The export is recorded in the audit trail.
    let audit = ok(verbatim(legacy.path()).args(["audit", "show"]));
    assert!(audit.contains("key export"), "{audit}");
}

#[test]
fn prepared_output_holds_no_personal_data_that_ingest_would_not_store() {
    // The PII evaluation set's texts, with a span value as respondent and, every fifth row, as
    // id (one a detector finds on its own: an id that looks like nothing personal, a bare name,
    // is kept as the id by `ingest` too): whatever a detector finds must be absent from the
    // output; what it misses in a text is missed by `ingest` too (it is in `pii::redact`'s
    // output).
    let rows = jsonl(&fixture("pii/eval.jsonl"));
    let mut ids = Vec::new();
    let mut texts = Vec::new();
    let mut respondents = Vec::new();
    let mut values: Vec<String> = Vec::new();
    let mut redacted_all = String::new();
    for (i, r) in rows.iter().enumerate() {
        let text = r["text"].as_str().unwrap();
        let spans: Vec<String> = r["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let (a, b) = (s["start"].as_u64().unwrap(), s["end"].as_u64().unwrap());
                text.get(a as usize..b as usize).unwrap_or("").to_string()
            })
            .filter(|v| v.chars().count() >= 6)
            .collect();
        redacted_all += verbatim::pii::redact(text).as_str();
        redacted_all.push('\n');
        let first = spans.first().cloned();
        ids.push(Some(match (&first, i % 5) {
            (Some(v), 0) if !verbatim::pii::detect(v).is_empty() => v.clone(),
            _ => format!("E{i}"),
        }));
        respondents.push(first);
        texts.push(Some(text.to_string()));
        values.extend(spans);
    }
    let input = ipc(
        &["id".into(), "text".into(), "who".into()],
        vec![ids, texts, respondents],
    );
    let ws = workspace();
    let key = export_key(ws.path());
    let out = prepare(
        &key,
        &["--text", "text", "--id", "id", "--respondent", "who"],
        &input,
    );
    let mut leaked = Vec::new();
    let mut absent = 0;
    for v in &values {
        if !contains(&out, v.as_bytes()) {
            absent += 1;
        } else if !redacted_all.contains(v.as_str()) {
            leaked.push(v.clone());
        }
    }
    assert!(
        leaked.is_empty(),
        "personal data in the prepared output: {leaked:?}"
    );
    assert!(absent > 200, "only {absent} span values checked absent");
}
