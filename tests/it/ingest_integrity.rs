//! Ingest data integrity through the binary (issue 12): a broken CSV quote is reported over its
//! lines instead of gluing rows; files that are not text are named, a workbook named `.csv` is
//! read as one; text scores go through a remembered score map that report manifests record;
//! dates in an unknown shape are summed up once with the `--date-format` that reads them, and
//! `--on-bad-date skip-date` keeps their rows. Exit statuses: 0 ok, 1 rows rejected, 2 error.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{fixture, json, ok, run, stderr, stdout, verbatim, workspace};

fn data(name: &str) -> PathBuf {
    fixture(&format!("ingest/{name}"))
}

fn ingest(ws: &Path, file: &Path, args: &[&str]) -> Output {
    run(verbatim(ws).arg("ingest").args(args).arg(file))
}

const SCORED: [&str; 6] = ["--text", "comment", "--id", "id", "--score", "score"];

#[test]
fn a_broken_quote_rejects_the_glued_row_over_its_lines() {
    let ws = workspace();
    let file = data("broken_quote.csv");
    let o = ingest(ws.path(), &file, &SCORED);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{}:3-4: unterminated quote? field spans lines 3–4, looks like 2 rows",
            file.display()
        )),
        "{err}"
    );
    assert!(
        stdout(&o).contains("3 rows: 2 stored, 0 unchanged, 0 updated, 1 rejected"),
        "{}",
        stdout(&o)
    );

    // --multiline-fields: the user says the field is meant
    let ws = workspace();
    let o = ingest(
        ws.path(),
        &file,
        &[&SCORED[..], &["--multiline-fields"]].concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("3 rows: 3 stored"), "{}", stdout(&o));
}

#[test]
fn a_quote_that_never_closes_is_rejected_even_with_the_flag() {
    let file = data("unclosed_quote.csv");
    for flag in [&[][..], &["--multiline-fields"][..]] {
        let ws = workspace();
        let o = ingest(ws.path(), &file, &[&SCORED[..], flag].concat());
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "{}:3-5: unterminated quote: field spans lines 3–5",
                file.display()
            )),
            "{}",
            stderr(&o)
        );
        assert!(stdout(&o).contains("1 stored"), "{}", stdout(&o));
    }
}

#[test]
fn legitimate_multiline_fields_need_no_flag() {
    let ws = workspace();
    let s = json(
        verbatim(ws.path())
            .arg("ingest")
            .args(SCORED)
            .arg(data("multiline_ok.csv")),
    );
    assert_eq!(
        (s["stored"].as_u64(), s["rejected"].as_u64()),
        (Some(3), Some(0))
    );
}

#[test]
fn files_that_are_not_text_are_an_error_naming_what_they_are() {
    let ws = workspace();
    for (name, kind) in [
        ("binary.csv", "ELF executable"),
        ("image.jsonl", "PNG image"),
    ] {
        let file = data(name);
        let o = ingest(ws.path(), &file, &SCORED);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("{}: not a text file ({kind})", file.display())),
            "{err}"
        );
        assert!(!err.contains("available columns"), "{err}");
        // nothing was remembered from a file that could not be read
        let toml = std::fs::read_to_string(ws.path().join("verbatim.toml")).unwrap();
        assert!(!toml.contains("[mapping]"), "{toml}");
    }
}

#[test]
fn a_workbook_named_csv_is_read_as_xlsx_with_a_note() {
    let ws = workspace();
    let file = data("workbook.csv");
    let o = ingest(
        ws.path(),
        &file,
        &["--text", "Comment", "--id", "ID", "--score", "NPS"],
    );
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "warning: {}: an Excel workbook (ZIP), not csv text; read as XLSX",
            file.display()
        )),
        "{err}"
    );
    // the sample sheet: three rows with text, one without (rejected)
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(stdout(&o).contains("3 stored"), "{}", stdout(&o));
}

#[test]
fn text_scores_go_through_a_remembered_score_map_recorded_in_the_report() {
    let ws = workspace();
    let file = data("text_scores.csv");
    let labels = ["--text", "comment", "--id", "id", "--score", "label"];

    // without a map: every row rejected, with the flag to use
    let o = ingest(ws.path(), &file, &labels);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "score 'great' in column 'label' is not a number; text scores need --score-map"
        ),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("0 stored"), "{}", stdout(&o));

    let o = ingest(
        ws.path(),
        &file,
        &[&labels[..], &["--score-map", "Great=5, good=4,other=1"]].concat(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "{}:6: score 'meh' in column 'label' is not in --score-map (keys: 'great', 'good', \
             'other')",
            file.display()
        )),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("4 stored"), "{}", stdout(&o));
    let toml = std::fs::read_to_string(ws.path().join("verbatim.toml")).unwrap();
    assert!(
        toml.contains("score_map = \"great=5,good=4,other=1\""),
        "{toml}"
    );

    // a re-ingest without the flag uses the remembered map: the four rows are unchanged
    let o = ingest(ws.path(), &file, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("0 stored, 4 unchanged, 0 updated, 1 rejected"),
        "{}",
        stdout(&o)
    );
    // with the column flags again but no --score-map, it still applies
    let o = ingest(ws.path(), &file, &labels);
    assert!(stdout(&o).contains("4 unchanged"), "{}", stdout(&o));

    // a default for the rest, given alone: the workspace's mapping with it
    let o = ingest(
        ws.path(),
        &file,
        &["--score-map", "great=5,good=4,other=1,*=2"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("1 stored, 4 unchanged"),
        "{}",
        stdout(&o)
    );
    let found =
        json(verbatim(ws.path()).args(["search", "Hmm", "--min-score", "2", "--max-score", "2"]));
    let ids: Vec<&str> = found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["verbatim"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["5"], "row 5 ('meh') scored 2 by `*`: {found}");

    // the report manifest records the map the scores came from
    let out = ws.path().join("r.json");
    ok(verbatim(ws.path())
        .args(["report", "--min-size", "2", "--format", "json", "--out"])
        .arg(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        report["manifest"]["score_map"], "great=5,good=4,other=1,*=2",
        "{}",
        report["manifest"]
    );

    // a malformed map is an error naming the flag
    let o = ingest(ws.path(), &file, &["--score-map", "great"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("invalid --score-map 'great'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn airline_shaped_dates_are_read_day_first_with_dotted_times() {
    let ws = workspace();
    let o = ingest(
        ws.path(),
        &data("dates_dash_dot.jsonl"),
        &[
            "--text",
            "text",
            "--id",
            "id",
            "--date",
            "date",
            "--respondent",
            "user",
            "--field",
            "airline",
            "--field",
            "sentiment",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("6 rows: 6 stored"), "{}", stdout(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    let stats = json(verbatim(ws.path()).arg("stats"));
    // 16-02-2015 23.59 and 24-02-2015 11.35, as UTC seconds
    assert_eq!(stats["store"]["first_ts"], 1_424_131_140, "{stats}");
    assert_eq!(stats["store"]["last_ts"], 1_424_777_700, "{stats}");
}

#[test]
fn unreadable_dates_are_summed_up_once_and_can_be_kept_without_their_date() {
    let ws = workspace();
    let file = data("dates_unreadable.csv");
    let cols = ["--text", "comment", "--id", "id", "--date", "date"];
    let o = ingest(ws.path(), &file, &cols);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let summary: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("cannot be read"))
        .collect();
    assert_eq!(summary.len(), 1, "{err}");
    assert!(
        summary[0].starts_with(&format!(
            "warning: {}: 6 of 7 dates in column 'date' cannot be read",
            file.display()
        )),
        "{err}"
    );
    assert!(
        summary[0].contains("--date-format '%d.%m.%Y - %H:%M' reads them"),
        "{err}"
    );
    // a few examples, not one line per row
    let examples = err
        .lines()
        .filter(|l| l.contains("unparsable date"))
        .count();
    assert_eq!(examples, 3, "{err}");
    assert!(
        err.contains("... and 3 more rows rejected for the same reason"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:2: unparsable date", file.display())),
        "{err}"
    );
    // --json still lists every rejected row, and which ones the warning explains
    let ws2 = workspace();
    let o = run(verbatim(ws2.path())
        .args(["--json", "--quiet", "ingest"])
        .args(cols)
        .arg(&file));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["errors"].as_array().map(Vec::len), Some(6), "{s}");
    assert_eq!(
        s["error_groups"][0]["errors"].as_array().map(Vec::len),
        Some(6),
        "{s}"
    );
    let w = s["error_groups"][0]["warning"].as_u64().unwrap() as usize;
    assert!(
        s["warnings"][w].as_str().unwrap().contains("6 of 7 dates"),
        "{s}"
    );

    // skip-date keeps the rows, says how many lost their date, and is remembered
    let o = ingest(ws.path(), &file, &["--on-bad-date", "skip-date"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(
            "8 rows: 6 stored, 2 unchanged, 0 updated, 0 rejected, 6 kept without their date"
        ),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("6 rows kept without their date (--on-bad-date skip-date)"),
        "{}",
        stderr(&o)
    );
    let toml = std::fs::read_to_string(ws.path().join("verbatim.toml")).unwrap();
    assert!(toml.contains("on_bad_date = \"skip-date\""), "{toml}");
    let o = ingest(ws.path(), &file, &cols);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("8 unchanged"), "{}", stdout(&o));

    // the suggested format reads them: six rows get their date (the ISO one no longer fits it)
    let o = ingest(
        ws.path(),
        &file,
        &[
            &cols[..],
            &[
                "--date-format",
                "%d.%m.%Y - %H:%M",
                "--on-bad-date",
                "reject",
            ],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("6 updated, 1 rejected"),
        "{}",
        stdout(&o)
    );
}
