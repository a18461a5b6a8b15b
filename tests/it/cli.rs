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

/// `verbatim ARGS… --help` as a user at a 100-column terminal sees it, without the test's
/// environment showing through (`[env: VERBATIM_WORKSPACE=/tmp/…]`).
fn help_of(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut c = verbatim(dir.path());
    for var in [
        "VERBATIM_WORKSPACE",
        "VERBATIM_MODELS",
        "VERBATIM_BIND",
        "VERBATIM_TLS_CERT",
        "VERBATIM_TLS_KEY",
        "VERBATIM_SERVE_RATE",
        "VERBATIM_SERVE_BURST",
        "VERBATIM_SERVE_MAX_BODY",
        "VERBATIM_SERVE_MAX_INGEST",
    ] {
        c.env_remove(var);
    }
    ok(c.env("COLUMNS", "100")
        .env("LINES", "50")
        .args(args)
        .arg("--help"))
}

#[test]
fn top_level_help_shows_global_options_apart_and_examples() {
    let h = help_of(&[]);
    assert!(
        h.contains("Global options:") && h.contains("Examples:"),
        "{h}"
    );
    assert!(h.contains("completions"), "{h}");
    insta::assert_snapshot!("help_top_level", h);
}

#[test]
fn subcommand_help_keeps_its_flags_apart_from_the_global_ones() {
    let h = help_of(&["ingest"]);
    let own = h.find("--respondent").expect("ingest's own flag");
    let global = h.find("Global options:").expect("a Global options section");
    assert!(own < global, "own flags come first:\n{h}");
    assert!(h[global..].contains("--workspace") && !h[..global].contains("--workspace"));
    assert!(
        h.contains("Examples:\n  $ verbatim -w demo-ws ingest data/uci_sentiment.csv"),
        "{h}"
    );
    // Nested commands too.
    let h = help_of(&["pii", "scan"]);
    assert!(
        h.contains("Global options:") && h.contains("$ verbatim pii scan"),
        "{h}"
    );
    // The snapshot is of a command whose flags other work is unlikely to change.
    let h = help_of(&["audit", "show"]);
    insta::assert_snapshot!("help_audit_show", h);
}

#[test]
fn bash_completions_parse_and_name_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let script = ok(verbatim(dir.path()).args(["completions", "bash"]));
    for cmd in [
        "ingest",
        "search",
        "themes",
        "report",
        "completions",
        "retention",
    ] {
        assert!(script.contains(cmd), "completion script lacks {cmd}");
    }
    // Flags of nested commands are completed too.
    assert!(script.contains("--url-column") && script.contains("--tokens-out"));
    let path = dir.path().join("verbatim.bash");
    std::fs::write(&path, &script).unwrap();
    let o = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("bash");
    assert!(o.status.success(), "bash -n: {}", stderr(&o));
    // And the other shells get a script, not an error.
    for shell in ["zsh", "fish", "powershell"] {
        let s = ok(verbatim(dir.path()).args(["completions", shell]));
        assert!(s.contains("verbatim") && s.contains("ingest"), "{shell}");
    }
    let o = run(verbatim(dir.path()).args(["completions", "tcsh"]));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn man_pages_are_written_for_the_command_and_its_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man");
    let listed = ok(verbatim(dir.path()).args(["man", "--out"]).arg(&out));
    let root = std::fs::read_to_string(out.join("verbatim.1")).unwrap();
    assert!(
        root.starts_with(".ie") || root.contains("\n.TH verbatim 1"),
        "{root}"
    );
    assert!(
        root.contains(".SH SYNOPSIS") && root.contains("ingest"),
        "{root}"
    );
    let scan = std::fs::read_to_string(out.join("verbatim-pii-scan.1")).unwrap();
    assert!(
        scan.contains(".TH verbatim\\-pii\\-scan 1") || scan.contains(".TH verbatim-pii-scan 1")
    );
    // Examples keep their lines (no-fill), and dashes are roff's minus signs.
    assert!(
        scan.contains(".SH EXAMPLES\n.nf\n")
            && scan.contains("$ verbatim pii scan data/demo_feedback.csv"),
        "{scan}"
    );
    assert!(listed.lines().count() > 30, "{listed}");
    // The hidden command documents nobody.
    assert!(!out.join("verbatim-man.1").exists());
}

#[test]
fn progress_jsonl_names_every_step_and_never_ends_at_zero() {
    let dir = workspace();
    let o = run(verbatim(dir.path())
        .args([
            "--progress",
            "jsonl",
            "ingest",
            "--text",
            "text",
            "--id",
            "id",
        ])
        .arg(fixture("uci_600.csv")));
    assert!(o.status.success(), "{}", stderr(&o));
    let events = progress_events(&o);
    assert_eq!(
        finished_steps(&events),
        [
            ("reading".to_string(), 600, 600),
            ("redacting".to_string(), 600, 600),
            ("embedding".to_string(), 600, 600),
            ("indexing".to_string(), 600, 600),
        ]
    );
    for e in &events {
        assert!(e["step"].as_str().is_some_and(|s| !s.is_empty()), "{e}");
        assert!(e["done"].as_u64().unwrap() <= e["total"].as_u64().unwrap() || e["total"] == 0);
    }
    // Steps start before they progress and finish once.
    let starts = events.iter().filter(|e| e["event"] == "start").count();
    assert_eq!(starts, 4);

    // Re-ingest: nothing to embed or index, and no step reports 0 of 0.
    let o = run(verbatim(dir.path())
        .args(["--progress", "jsonl", "ingest"])
        .arg(fixture("uci_600.csv")));
    assert!(o.status.success(), "{}", stderr(&o));
    let events = progress_events(&o);
    assert_eq!(
        finished_steps(&events),
        [
            ("reading".to_string(), 600, 600),
            ("redacting".to_string(), 600, 600),
        ]
    );

    // reindex names its steps the same way.
    let o = run(verbatim(dir.path()).args(["--progress", "jsonl", "reindex"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let events = progress_events(&o);
    assert_eq!(
        finished_steps(&events),
        [("indexing".to_string(), 600, 600)]
    );

    // themes (the aspect tree): every verbatim's opinion units embedded once, then the tree —
    // neither the sentence vectors nor the topic discovery, which it does not read.
    let o = run(verbatim(dir.path()).args(["--progress", "jsonl", "themes"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let steps = finished_steps(&progress_events(&o));
    let units = steps.iter().find(|s| s.0 == "embedding units").cloned();
    assert!(
        units.as_ref().is_some_and(|u| u.1 == u.2 && u.1 >= 600),
        "{steps:?}"
    );
    assert_eq!(
        steps,
        [units.unwrap(), ("finding themes".to_string(), 600, 600)]
    );

    // --by topic: the sentences of every verbatim are looked at once, then its discovery (the
    // units are already there).
    let o = run(verbatim(dir.path()).args(["--progress", "jsonl", "themes", "--by", "topic"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        finished_steps(&progress_events(&o)),
        [
            ("embedding sentences".to_string(), 600, 600),
            ("finding themes".to_string(), 600, 600),
        ]
    );

    // Both runs current: nothing to report. `--refresh` re-runs the view it is given only.
    let o = run(verbatim(dir.path()).args(["--progress", "jsonl", "themes"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let steps = finished_steps(&progress_events(&o));
    assert!(steps.is_empty(), "{steps:?}");
    for by in ["aspect", "topic"] {
        let o = run(verbatim(dir.path()).args([
            "--progress",
            "jsonl",
            "themes",
            "--by",
            by,
            "--refresh",
        ]));
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            finished_steps(&progress_events(&o)),
            [("finding themes".to_string(), 600, 600)],
            "{by}"
        );
    }
}

/// A workspace whose segment values carry capitals and accents, as files do.
fn labelled_workspace() -> tempfile::TempDir {
    let dir = workspace();
    let csv = dir.path().join("labelled.csv");
    std::fs::write(
        &csv,
        "id,text,label,region\n\
         a1,The parcel arrived late and the box was damaged,Other,Île-de-France\n\
         a2,Delivery was fast and the box was intact,Delivery,Bretagne\n\
         a3,I waited two weeks for my refund,Other,Bretagne\n",
    )
    .unwrap();
    ok(verbatim(dir.path())
        .args([
            "ingest", "--text", "text", "--id", "id", "--field", "label", "--field", "region",
        ])
        .arg(&csv));
    dir
}

/// Ids of `search QUERY --mode vector --json` with these extra flags.
fn hit_ids(ws: &std::path::Path, flags: &[&str]) -> Vec<String> {
    let v = json(
        verbatim(ws)
            .args([
                "search",
                "a parcel, a delivery or a refund",
                "--mode",
                "vector",
            ])
            .args(flags),
    );
    let mut ids: Vec<String> = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["verbatim"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_filter_on_an_unknown_field_is_an_error_listing_the_known_fields() {
    let dir = labelled_workspace();
    let ws = dir.path();
    for cmd in [
        &["search", "parcel"][..],
        &["themes", "--by", "topic"][..],
        &["ask", "Why are people unhappy?"][..],
        &["report", "--out", "r.html"][..],
    ] {
        let o = run(verbatim(ws).args(cmd).args(["--where", "nosuchfield=1"]));
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("the known fields are: label, region"),
            "{cmd:?}: {e}"
        );
    }
    let o = run(verbatim(ws).args(["search", "parcel", "--where", "nosuchfield=1"]));
    insta::assert_snapshot!("unknown_field_error", stderr(&o));
}

#[test]
fn filter_values_match_case_and_accents_and_a_miss_lists_the_values() {
    let dir = labelled_workspace();
    let ws = dir.path();
    // Stored `Other`, asked `other`: the same verbatims as the exact value.
    assert_eq!(hit_ids(ws, &["--where", "label=Other"]), ["a1", "a3"]);
    assert_eq!(hit_ids(ws, &["--where", "label=other"]), ["a1", "a3"]);
    assert_eq!(hit_ids(ws, &["--where", "LABEL=OTHER"]), ["a1", "a3"]);
    // Accents fold: `ile-de-france` is `Île-de-France`.
    assert_eq!(hit_ids(ws, &["--where", "region=ile-de-france"]), ["a1"]);
    // Text mode filters inside tantivy: same answer.
    let v = json(verbatim(ws).args([
        "search",
        "box",
        "--mode",
        "text",
        "--where",
        "region=ILE-DE-FRANCE",
    ]));
    let ids: Vec<&str> = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["verbatim"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a1"]);
    // A value that matches nothing says which values exist.
    let o = run(verbatim(ws).args(["search", "parcel", "--where", "label=returns"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains(r#"no verbatim has label = "returns"; its values are: "Delivery", "Other""#),
        "{}",
        stderr(&o)
    );
}

#[test]
fn numeric_flags_out_of_range_are_refused_naming_the_flag_and_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let cases: &[(&[&str], &str, &str)] = &[
        (&["themes", "--by", "topic", "--k", "0"], "--k", "2..=200"),
        (&["themes", "--by", "topic", "--k", "201"], "--k", "2..=200"),
        (
            &["themes", "--by", "topic", "--min-size", "0"],
            "--min-size",
            "1..=100000",
        ),
        (
            &["themes", "show", "T1", "--quotes", "51"],
            "--quotes",
            "0..=50",
        ),
        (
            &["report", "--out", "r.html", "--quotes", "99"],
            "--quotes",
            "0..=50",
        ),
        (&["search", "x", "--limit", "0"], "--limit", "1..=1000"),
        (&["search", "x", "-n", "1001"], "--limit", "1..=1000"),
        (
            &["search", "x", "--min-score", "nan"],
            "--min-score",
            "finite",
        ),
        (&["ask", "q", "--limit", "0"], "--limit", "1..=100"),
        (
            &["ask", "q", "--max-tokens", "0"],
            "--max-tokens",
            "1..=32768",
        ),
        (
            &["ask", "q", "--temperature", "3"],
            "--temperature",
            "between 0 and 2",
        ),
        (&["stats", "--threads", "0"], "--threads", "1..=1024"),
        (&["serve", "--burst", "0"], "--burst", "1..=1000000"),
        (
            &["serve", "--max-body-bytes", "1"],
            "--max-body-bytes",
            "1024..=",
        ),
    ];
    for (args, flag, range) in cases {
        let o = run(verbatim(ws).args(*args));
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(flag) && e.contains(range), "{args:?}: {e}");
    }
    // The environment goes through the same check.
    let o = run(verbatim(ws).arg("stats").env("VERBATIM_THREADS", "0"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn a_retention_period_of_zero_days_is_refused_not_applied() {
    let dir = labelled_workspace();
    let ws = dir.path();
    let cfg = ws.join("verbatim.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "keep_originals = true",
        "keep_originals = true\nretention_days = 0",
    );
    std::fs::write(&cfg, text).unwrap();
    let o = run(verbatim(ws).args(["retention", "apply"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("retention_days = 0: must be between 1 and 36500"),
        "{}",
        stderr(&o)
    );
    assert_eq!(json(verbatim(ws).arg("stats"))["store"]["verbatims"], 3);
}

/// The line of `config show`'s output for `key`.
fn setting_line(text: &str, key: &str) -> String {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("{key} missing:\n{text}"))
        .to_string()
}

#[test]
fn config_show_names_each_setting_and_a_bad_value_names_its_file_and_key() {
    let dir = workspace();
    let ws = dir.path();
    let text = ok(verbatim(ws)
        .args(["config", "show", "--threads", "2"])
        .env("VERBATIM_SERVE_BURST", "9"));
    let line = |key: &str| setting_line(&text, key);
    assert!(
        line("serve.burst").contains(" 9  ($VERBATIM_SERVE_BURST)"),
        "{text}"
    );
    assert!(line("threads").contains(" 2  (--threads)"), "{text}");
    assert!(
        line("search.limit").contains("verbatim.toml search.limit)"),
        "{text}"
    );
    assert!(line("models.batch_size").ends_with("(default)"), "{text}");

    // A value out of range in verbatim.toml: the file and the key are named.
    let cfg = ws.join("verbatim.toml");
    let original = std::fs::read_to_string(&cfg).unwrap();
    assert!(original.contains("limit = 10"), "{original}");
    for bad in ["limit = 0", "limit = \"ten\""] {
        std::fs::write(&cfg, original.replace("limit = 10", bad)).unwrap();
        let o = run(verbatim(ws).args(["search", "battery", "--mode", "text"]));
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{bad}: {e}");
        assert!(
            e.contains(&cfg.display().to_string()) && e.contains("search.limit"),
            "{bad}: {e}"
        );
    }
    // [ingest] and [themes] are listed too, each value with its source.
    std::fs::write(
        &cfg,
        format!("{original}\n[themes]\nsample_verbatims = 5000\n"),
    )
    .unwrap();
    let text = ok(verbatim(ws).args(["config", "show"]));
    let line = |key: &str| setting_line(&text, key);
    assert!(
        line("themes.sample_verbatims").contains(" 5000  (")
            && line("themes.sample_verbatims").contains("verbatim.toml themes.sample_verbatims)"),
        "{text}"
    );
    assert!(
        line("themes.sample_above_units").contains(" 50000  (default)"),
        "{text}"
    );
    assert!(line("ingest.chunk_size").contains(" 256  ("), "{text}");
    std::fs::write(&cfg, &original).unwrap();
    // A bad environment value: the variable is named.
    let o = run(verbatim(ws)
        .args(["config", "show"])
        .env("VERBATIM_SEARCH_LIMIT", "0"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("$VERBATIM_SEARCH_LIMIT=\"0\""),
        "{}",
        stderr(&o)
    );
}
