//! The binary end to end: `embed` against sentence-transformers, `init`, `stats`, errors.

use crate::common::*;

/// Reads a float32 C-order .npy written by `verbatim embed`.
fn read_npy(path: &std::path::Path) -> (usize, usize, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00", "npy magic and version 1.0");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "header padded to 64 bytes");
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let shape = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let dims: Vec<usize> = shape
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let data: Vec<f32> = b[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(data.len(), dims[0] * dims[1]);
    (dims[0], dims[1], data)
}

#[test]
fn embed_command_matches_sentence_transformers_on_every_reference_row() {
    let reference = fixture("all-MiniLM-L6-v2.reference.jsonl");
    let rows = jsonl(&reference);
    assert_eq!(rows.len(), 304);
    let out = tempfile::tempdir().unwrap();
    let npy = out.path().join("v.npy");
    let v = json(
        verbatim(out.path())
            .arg("embed")
            .arg(&reference)
            // The model's parity on the raw reference texts, as sentence-transformers saw them.
            .arg("--no-redact")
            .arg("--out")
            .arg(&npy),
    );
    assert_eq!(v["rows"], 304);
    let (n, dim, data) = read_npy(&npy);
    assert_eq!((n, dim), (304, 384));
    let mut worst = (1.0f64, String::new());
    for (i, r) in rows.iter().enumerate() {
        let want: Vec<f64> = r["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let got = &data[i * dim..(i + 1) * dim];
        let dot: f64 = want.iter().zip(got).map(|(a, b)| a * f64::from(*b)).sum();
        let na: f64 = want.iter().map(|a| a * a).sum::<f64>().sqrt();
        let nb: f64 = got
            .iter()
            .map(|b| f64::from(*b).powi(2))
            .sum::<f64>()
            .sqrt();
        let cos = dot / (na * nb);
        if cos < worst.0 {
            worst = (cos, r["id"].as_str().unwrap_or("?").to_string());
        }
    }
    eprintln!(
        "verbatim embed vs sentence-transformers: min cosine {:.6} ({})",
        worst.0, worst.1
    );
    assert!(worst.0 >= 0.9999, "min cosine {} at {}", worst.0, worst.1);
}

#[test]
fn commands_outside_a_workspace_say_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(verbatim(dir.path()).args(["search", "anything"]));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("not a verbatim workspace") && e.contains("verbatim init"),
        "{e}"
    );
    // init twice is refused.
    ok(verbatim(dir.path()).arg("init"));
    let o = run(verbatim(dir.path()).arg("init"));
    assert!(stderr(&o).contains("already"), "{}", stderr(&o));
}

#[test]
fn a_missing_model_names_the_file_and_the_fetch_command() {
    let dir = workspace();
    let empty = tempfile::tempdir().unwrap();
    let o = run(verbatim(dir.path())
        .env("VERBATIM_MODEL", empty.path())
        .args(["ingest", "--text", "text"])
        .arg(fixture("uci_600.csv")));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("config.json") || e.contains("model.safetensors"),
        "{e}"
    );
    assert!(e.contains("fetch.sh") || e.contains("make models"), "{e}");
}

#[test]
fn stats_reports_store_and_index_coverage() {
    let dir = workspace();
    ingest_chitchat(dir.path());
    let s = json(verbatim(dir.path()).arg("stats"));
    assert_eq!(s["store"]["verbatims"], 400);
    assert_eq!(s["text_index"]["documents"], 400);
    assert_eq!(s["text_index"]["covered_seq"], s["store"]["seq"]);
    assert_eq!(s["vector_index"]["covered_seq"], s["store"]["seq"]);
    assert_eq!(
        s["store"]["languages"]["en"].as_i64().unwrap()
            + s["store"]["languages"]["fr"].as_i64().unwrap_or(0),
        400
    );
    let text = ok(verbatim(dir.path()).arg("stats"));
    let text = text.replace(&dir.path().display().to_string(), "[WS]");
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("model") {
                "model          [FINGERPRINT]"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(text);
}
