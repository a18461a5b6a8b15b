//! Tests of the report renderings (snapshots in `snapshots/`).

use super::super::types::{
    Change, Polarity, Quote, Report, ReportManifest, ScoreDriver, SegmentBreakdown, SegmentValue,
    SentimentSummary, ThemeSummary, Trend, TrendPoint, VanishedTheme,
};
use super::facts::*;
use super::html::*;
use super::markdown::*;
use super::svg::*;
use super::text::*;
use super::*;

const MONTHS: [&str; 12] = [
    "2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06", "2024-07", "2024-08",
    "2024-09", "2024-10", "2024-11", "2024-12",
];
/// Verbatims per month (sums to 1,250).
const MONTH_TOTALS: [usize; 12] = [98, 95, 101, 104, 99, 102, 118, 106, 103, 107, 110, 107];

fn trend(counts: [usize; 12], spike: Option<usize>) -> Trend {
    Trend {
        granularity: "month".into(),
        points: MONTHS
            .iter()
            .zip(counts)
            .zip(MONTH_TOTALS)
            .enumerate()
            .map(|(i, ((period, count), total))| TrendPoint {
                period: (*period).into(),
                count,
                share: count as f64 / total as f64,
                spike: spike == Some(i),
                suppressed: false,
            })
            .collect(),
    }
}

fn seg(field: &str, values: &[(&str, Option<usize>, usize)]) -> SegmentBreakdown {
    SegmentBreakdown {
        field: field.into(),
        values: values
            .iter()
            .map(|&(value, count, segment_total)| SegmentValue {
                value: value.into(),
                count,
                share: count.map(|c| c as f64 / segment_total as f64),
            })
            .collect(),
    }
}

fn quote(id: &str, text: &str, date: Option<&str>, sentiment: Polarity) -> Quote {
    Quote {
        id: id.into(),
        text: text.into(),
        date: date.map(Into::into),
        sentiment,
    }
}

fn sentiment(positive: usize, neutral: usize, negative: usize, mean: f64) -> SentimentSummary {
    SentimentSummary {
        positive,
        neutral,
        negative,
        mean,
    }
}

fn driver(mean: f64, rest_mean: f64, impact: f64, scored: usize) -> Option<ScoreDriver> {
    Some(ScoreDriver {
        mean,
        rest_mean,
        impact,
        scored,
    })
}

#[allow(clippy::too_many_arguments)]
fn theme(
    id: &str,
    label: &str,
    keywords: &[&str],
    size: usize,
    secondary: usize,
    sentiment: SentimentSummary,
    quotes: Vec<Quote>,
    trend: Trend,
    segments: Vec<SegmentBreakdown>,
    score: Option<ScoreDriver>,
    change: Option<Change>,
) -> ThemeSummary {
    ThemeSummary {
        id: id.into(),
        label: label.into(),
        keywords: keywords.iter().map(|k| (*k).into()).collect(),
        size,
        share: size as f64 / 1250.0,
        secondary,
        seeded: false,
        sentiment,
        quotes,
        trend,
        segments,
        score,
        change,
    }
}

/// A year of feedback for a web shop: 1,250 verbatims, six themes, one vanished; segment
/// totals FR 520 / DE 430 / UK 300 and basic 800 / pro 450.
fn sample_report() -> Report {
    use Polarity::{Negative, Neutral, Positive};
    let themes = vec![
        theme(
            "T1",
            "late delivery",
            &[
                "late delivery",
                "tracking",
                "courier",
                "days late",
                "<EMAIL>",
            ],
            300,
            41,
            sentiment(12, 33, 255, -0.71),
            vec![
                quote(
                    "V0977",
                    "Tracking said \"in transit\" for a week. Then it came back to the \
                     depot, then out again, then back again — three weeks for a pair of \
                     shoes, and the courier never rang the bell once.",
                    Some("2024-07-02"),
                    Negative,
                ),
                quote(
                    "V0412",
                    "Parcel arrived 9 days late and nobody answered at <EMAIL> 😡",
                    Some("2024-07-14"),
                    Negative,
                ),
                quote(
                    "V1102",
                    "Late, but the driver was nice about it",
                    None,
                    Neutral,
                ),
            ],
            trend([15, 16, 18, 19, 20, 21, 52, 25, 26, 28, 29, 31], Some(6)),
            vec![
                seg(
                    "country",
                    &[
                        ("FR", Some(140), 520),
                        ("DE", Some(95), 430),
                        ("UK", Some(65), 300),
                    ],
                ),
                seg("plan", &[("basic", Some(210), 800), ("pro", Some(90), 450)]),
            ],
            driver(4.82, 7.61, 0.38, 262),
            Some(Change::Grew),
        ),
        theme(
            "T2",
            "billing & refunds",
            &["refund", "charged twice", "invoice", "R&D"],
            210,
            25,
            sentiment(8, 40, 162, -0.58),
            vec![
                quote(
                    "V0033",
                    "Charged twice & the refund took 3 weeks; called <PHONE> twice",
                    Some("2024-02-03"),
                    Negative,
                ),
                quote(
                    "V0655",
                    "I was billed for <b>pro</b> after cancelling &amp; nobody cared",
                    Some("2024-05-21"),
                    Negative,
                ),
            ],
            trend([17, 18, 17, 18, 16, 17, 19, 18, 17, 18, 17, 18], None),
            vec![
                seg(
                    "country",
                    &[
                        ("FR", Some(90), 520),
                        ("DE", Some(70), 430),
                        ("UK", Some(50), 300),
                    ],
                ),
                seg("plan", &[("pro", Some(120), 450), ("basic", Some(90), 800)]),
            ],
            driver(5.10, 7.45, 0.26, 190),
            Some(Change::Stable),
        ),
        theme(
            "T3",
            "app \"login\" errors",
            &["login", "app | crash", "*password*", "`2fa`"],
            180,
            30,
            sentiment(5, 35, 140, -0.55),
            vec![
                quote(
                    "V0201",
                    "<script>alert(\"x\")</script> the app crashes on login",
                    Some("2024-03-09"),
                    Negative,
                ),
                quote(
                    "V0388",
                    "App | crash | again — *every* time I open `settings` [help](javascript:x)",
                    Some("2024-04-18"),
                    Negative,
                ),
                quote(
                    "V0519",
                    "# Login broken since update 4.2\n\n1. open app\n2. crash",
                    Some("2024-06-01"),
                    Negative,
                ),
            ],
            trend([10, 12, 14, 15, 16, 15, 14, 15, 16, 17, 18, 18], None),
            vec![
                seg(
                    "country",
                    &[
                        ("DE", Some(80), 430),
                        ("FR", Some(60), 520),
                        ("UK", Some(40), 300),
                    ],
                ),
                seg("plan", &[("basic", Some(100), 800), ("pro", Some(80), 450)]),
            ],
            driver(6.02, 7.29, 0.17, 160),
            Some(Change::Grew),
        ),
        theme(
            "T4",
            "friendly support staff",
            &["support", "friendly", "helpful staff"],
            160,
            12,
            sentiment(138, 17, 5, 0.82),
            vec![
                quote(
                    "V0090",
                    "Support staff were lovely 🙏 Anna fixed it in 5 min",
                    Some("2024-01-29"),
                    Positive,
                ),
                quote("V0822", "> best support ever", Some("2024-09-30"), Positive),
            ],
            trend([18, 17, 16, 15, 14, 13, 12, 12, 11, 11, 10, 11], None),
            vec![
                seg(
                    "country",
                    &[
                        ("UK", Some(70), 300),
                        ("FR", Some(50), 520),
                        ("DE", Some(40), 430),
                    ],
                ),
                seg("plan", &[("pro", Some(90), 450), ("basic", Some(70), 800)]),
            ],
            driver(9.12, 6.84, -0.24, 151),
            Some(Change::Shrank),
        ),
        theme(
            "T5",
            "price increase",
            &["price", "too expensive", "20%"],
            140,
            18,
            sentiment(3, 30, 107, -0.49),
            vec![
                quote(
                    "V0731",
                    "Price went up 20% without notice",
                    Some("2024-10-02"),
                    Negative,
                ),
                quote(
                    "V0802",
                    "1. too expensive 2. no discounts",
                    Some("2024-10-19"),
                    Negative,
                ),
            ],
            trend([0, 0, 0, 0, 0, 0, 0, 0, 28, 36, 38, 38], None),
            vec![
                seg(
                    "country",
                    &[
                        ("FR", Some(85), 520),
                        ("DE", Some(52), 430),
                        ("UK", None, 300),
                    ],
                ),
                seg("plan", &[("basic", Some(120), 800), ("pro", Some(20), 450)]),
            ],
            driver(6.40, 7.24, 0.09, 131),
            Some(Change::New),
        ),
        ThemeSummary {
            seeded: true,
            ..theme(
                "T6",
                "packaging 📦 damage",
                &["packaging", "box crushed", "wet"],
                110,
                9,
                sentiment(6, 24, 80, -0.44),
                vec![
                    quote(
                        "V0150",
                        "Box crushed, 📦 items broken",
                        Some("2024-02-11"),
                        Negative,
                    ),
                    quote("V0600", "- packaging was wet", Some("2024-06-23"), Neutral),
                ],
                trend([9, 10, 9, 9, 10, 9, 9, 9, 9, 9, 9, 9], None),
                vec![
                    seg(
                        "country",
                        &[
                            ("FR", Some(45), 520),
                            ("DE", Some(40), 430),
                            ("UK", Some(25), 300),
                        ],
                    ),
                    seg("plan", &[("basic", Some(80), 800), ("pro", Some(30), 450)]),
                ],
                None,
                Some(Change::Stable),
            )
        },
    ];
    Report {
        title: "Feedback themes 2024 — web & app <draft>".into(),
        manifest: ReportManifest {
            version: "0.1.0".into(),
            data_snapshot:
                "sha256:9f2c4e1a7b3d5f60182a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d".into(),
            model: "multilingual-e5-small sha256:3b1f0c7d mean-pooling".into(),
            sentiment_model:
                "sha256:c0ffee00d15ea5e5b16b00b5cafef00d0123456789abcdef0123456789abcdef".into(),
            // Keys in sorted order, so the JSON is the same with or without serde_json's
            // `preserve_order`.
            parameters: serde_json::json!({
                "filter": "country != \"US\" && text !~ \"</pre><b>\"",
                "k_anonymity": 5,
                "min_size": 20,
                "notes": "seeded from ```tickets```",
                "seed": 42,
                "segments": ["country", "plan"],
            }),
            period: Some(("2024-01-02".into(), "2024-12-30".into())),
            score_map: None,
        },
        verbatims: 1250,
        other: 150,
        sentiment: sentiment(240, 260, 750, -0.38),
        score_mean: Some(7.12),
        segment_fields: vec!["country".into(), "plan".into()],
        themes,
        vanished: vec![VanishedTheme {
            id: "T7".into(),
            label: "checkout bug".into(),
            size: 42,
        }],
    }
}

/// A report with nothing in it: no themes, no dates, no score, no segments.
fn empty_report() -> Report {
    Report {
        title: "Empty".into(),
        manifest: ReportManifest {
            version: "0.1.0".into(),
            data_snapshot: "sha256:0".into(),
            model: "m".into(),
            sentiment_model: "s".into(),
            parameters: serde_json::Value::Null,
            period: None,
            score_map: None,
        },
        verbatims: 0,
        other: 0,
        sentiment: SentimentSummary::default(),
        score_mean: None,
        segment_fields: vec![],
        themes: vec![],
        vanished: vec![],
    }
}

#[test]
fn html_escapes_text_from_the_data() {
    let html = html(&sample_report());
    assert!(
        !html.to_lowercase().contains("<script"),
        "a quote's <script> survived"
    );
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    assert!(!html.contains("<EMAIL>") && html.contains("&lt;EMAIL&gt;"));
    assert!(!html.contains("<b>pro</b>") && html.contains("&lt;b&gt;pro&lt;/b&gt;"));
    // Already-escaped text stays literal text.
    assert!(html.contains("&amp;amp; nobody cared"));
    assert!(html.contains("<title>Feedback themes 2024 — web &amp; app &lt;draft&gt;</title>"));
    assert!(html.contains("app &quot;login&quot; errors"));
    // Parameters are escaped inside the manifest's <pre>.
    assert!(!html.contains("</pre><b>") && html.contains("&lt;/pre&gt;&lt;b&gt;"));
    assert!(html.contains("📦"));
}

#[test]
fn markdown_escapes_text_from_the_data() {
    let md = markdown(&sample_report());
    assert!(!md.to_lowercase().contains("<script"));
    assert!(!md.contains("<EMAIL>") && md.contains("&lt;EMAIL>"));
    // (The manifest is a code block: text there is not Markdown.)
    let prose = md.split("## Manifest").next().unwrap_or_default();
    assert!(!prose.contains("<b>") && !prose.contains("<draft>"));
    // No quote opens a heading or a list inside its block quote.
    assert!(md.contains("> \\# Login broken since update 4.2"));
    assert!(md.contains("> 1\\. open app"));
    assert!(md.contains("> \\> best support ever"));
    assert!(md.contains("> \\- packaging was wet"));
    // Pipes, emphasis, code spans and links are inert.
    assert!(md.contains("App \\| crash \\| again — \\*every\\* time I open \\`settings\\`"));
    assert!(md.contains("\\[help\\](javascript:x)"));
    // "&amp;" in the data shows as "&amp;", a bare "&" stays readable.
    assert!(md.contains("&amp;amp; nobody cared") && md.contains("billing & refunds"));
    // Every heading is one of ours.
    for line in md.lines().filter(|l| l.starts_with('#')) {
        assert!(
            line.starts_with("# Feedback") || line.starts_with("## "),
            "unexpected heading: {line}"
        );
    }
    // The manifest fence is longer than the backticks in the parameters.
    assert!(md.contains("\n````json\n") && md.trim_end().ends_with("````"));
}

#[test]
fn rendering_is_deterministic() {
    let a = sample_report();
    let b = sample_report();
    assert_eq!(json(&a), json(&b));
    assert_eq!(markdown(&a), markdown(&b));
    assert_eq!(html(&a), html(&b));
    assert_eq!(html(&a), html(&a.clone()));
}

#[test]
fn html_is_self_contained() {
    let html = html(&sample_report()).to_lowercase();
    for needle in [
        "http://", "https://", "src=", "<link", "@import", "url(", "<script", "<iframe", "<object",
        "<embed", "<img",
    ] {
        assert!(!html.contains(needle), "the page contains {needle:?}");
    }
    assert!(html.contains("content-security-policy"));
}

#[test]
fn html_charts_are_present_and_accessible() {
    let html = html(&sample_report());
    for id in [
        "fig-sizes",
        "fig-sentiment",
        "fig-trend",
        "fig-seg-0",
        "fig-seg-1",
        "fig-drivers",
    ] {
        assert!(
            html.contains(&format!("id=\"{id}\""))
                && html.contains(&format!("<title id=\"{id}-t\">")),
            "chart {id} missing or without a title"
        );
    }
    // Balanced elements (a cheap well-formedness check).
    for tag in [
        "svg",
        "table",
        "figure",
        "section",
        "article",
        "blockquote",
        "g",
        "dl",
    ] {
        let open =
            html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
        let close = html.matches(&format!("</{tag}>")).count();
        assert_eq!(
            open, close,
            "<{tag}> opened {open} times, closed {close} times"
        );
    }
    // Spikes are marked, and the period axis is labelled.
    assert!(html.contains("2024-07: 44.1% (52 verbatims), spike"));
    assert!(html.contains(">2024-01</text>") && html.contains(">2024-12</text>"));
    assert_no_bad_numbers(&html);
}

#[test]
fn every_theme_appears_in_every_format() {
    let r = sample_report();
    let (json, md, html) = (json(&r), markdown(&r), html(&r));
    for t in &r.themes {
        let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
        assert!(json.contains(&quoted(&t.id)) && json.contains(&quoted(&t.label)));
        assert!(md.contains(&format!("## {} · {}", md_line(&t.id), md_line(&t.label))));
        assert!(html.contains(&format!(
            "<span class=\"tid\">{}</span>{}",
            esc(&t.id),
            esc(&t.label)
        )));
    }
    for v in &r.vanished {
        assert!(json.contains(&v.label) && md.contains(&v.label) && html.contains(&v.label));
    }
    let back: Report = serde_json::from_str(&json).expect("the JSON reads back");
    assert_eq!(back.themes.len(), r.themes.len());
    assert_eq!(back.manifest.parameters, r.manifest.parameters);
}

#[test]
fn suppressed_cells_show_no_number() {
    let r = sample_report();
    let md = markdown(&r);
    assert!(md.contains("| country | UK | &lt;k | — |"));
    let html = html(&r);
    assert!(html.contains(
        "<tr class=\"suppressed\"><th scope=\"row\">UK</th><td class=\"num\" \
         title=\"fewer than k verbatims: suppressed\">&lt;k</td><td class=\"num\">—</td></tr>"
    ));
    // The heat map cell says "<k" and its tooltip gives no count.
    assert!(html.contains("T5 price increase × country = UK: fewer than k verbatims, suppressed"));
    // Only T5 × UK is suppressed: exactly one such row and one hatched cell.
    assert_eq!(md.matches("&lt;k |").count(), 1);
    assert_eq!(
        html.matches("fewer than k verbatims, suppressed</title>")
            .count(),
        1
    );
}

#[test]
fn markdown_tables_are_well_formed() {
    let md = markdown(&sample_report());
    let cells = |line: &str| {
        let mut count = 0;
        let mut escaped = false;
        for c in line.chars() {
            match c {
                '\\' if !escaped => escaped = true,
                '|' if !escaped => count += 1,
                _ => escaped = false,
            }
        }
        count
    };
    let mut tables = 0;
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with('|') {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i].starts_with('|') {
            i += 1;
        }
        let table = &lines[start..i];
        tables += 1;
        assert!(table.len() >= 3, "a table without rows: {table:?}");
        assert!(
            table[1].chars().all(|c| matches!(c, '|' | '-' | ':')),
            "bad delimiter row {:?}",
            table[1]
        );
        let width = cells(table[0]);
        for row in table {
            assert!(row.ends_with('|'), "row does not end with a pipe: {row}");
            assert_eq!(cells(row), width, "row with another column count: {row}");
        }
    }
    // The themes table and one segments table per theme.
    assert_eq!(tables, 7);
}

#[test]
fn markdown_themes_table_shortens_quotes() {
    let md = markdown(&sample_report());
    let row = md
        .lines()
        .find(|l| l.starts_with("| T1 |"))
        .expect("T1 row");
    let quote = row.rsplit(" | ").next().unwrap_or_default();
    assert!(quote.starts_with('“') && quote.ends_with("” |"), "{quote}");
    assert!(quote.ends_with("…” |"), "{quote}");
    assert!(quote.chars().count() <= TOP_QUOTE_CHARS + 4);
    assert!(row.contains("| 24.0% |") && row.contains("| ↗ ⚠ |") && row.contains("| grew |"));
}

/// No non-finite number leaked into the output.
fn assert_no_bad_numbers(out: &str) {
    for bad in ["NaN", "=\"inf", "=\"-inf", ">inf", "inf%"] {
        assert!(!out.contains(bad), "output contains {bad:?}");
    }
}

#[test]
fn empty_report_renders() {
    let r = empty_report();
    for out in [json(&r), markdown(&r), html(&r)] {
        assert_no_bad_numbers(&out);
    }
    assert!(html(&r).contains("No themes in this report."));
    assert!(markdown(&r).contains("No themes."));
}

#[test]
fn numbers_are_formatted_deterministically() {
    assert_eq!(pct(0.123_45), "12.3%");
    assert_eq!(pct(-0.000_01), "0.0%");
    assert_eq!(pct(f64::NAN), "—");
    assert_eq!(signed(0.213, 2), "+0.21");
    assert_eq!(signed(-0.004, 2), "0.00");
    assert_eq!(signed(-0.5, 2), "-0.50");
    assert_eq!(int(1_234_567), "1,234,567");
    assert_eq!(int(999), "999");
    assert_eq!(n(12.0), "12");
    assert_eq!(n(12.25), "12.2");
    assert_eq!(shorten("a  b\nc", 10), "a b c");
    assert_eq!(shorten("one two three four", 12), "one two…");
}

#[test]
fn markdown_line_escaping() {
    assert_eq!(md_line("## x"), "\\## x");
    assert_eq!(md_line("12) y"), "12\\) y");
    assert_eq!(md_line("a|b"), "a\\|b");
    assert_eq!(md_line("<EMAIL> & co &lt;"), "&lt;EMAIL> & co &amp;lt;");
    assert_eq!(
        md_line("a_b *c* `d` ~e~ [f]"),
        "a\\_b \\*c\\* \\`d\\` \\~e\\~ \\[f\\]"
    );
    assert_eq!(md_line("C:\\path"), "C:\\\\path");
}

#[test]
fn hatching_stays_inside_its_cell() {
    let d = hatch(10.0, 20.0, 30.0, 12.0, 6.0);
    let nums: Vec<f64> = d
        .split(['M', 'L', ' '])
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("a number"))
        .collect();
    for xy in nums.chunks(2) {
        assert!(
            (10.0..=40.0).contains(&xy[0]) && (20.0..=32.0).contains(&xy[1]),
            "{xy:?}"
        );
    }
}

#[test]
fn snapshot_markdown() {
    let md = markdown(&sample_report());
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("report_markdown", md);
    });
}

#[test]
fn snapshot_json() {
    let json = json(&sample_report());
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("report_json", json);
    });
}

/// Writes the sample report to `$VERBATIM_REPORT_SAMPLE_DIR` (when set) for a look in a
/// browser; a no-op otherwise.
#[test]
fn write_sample_when_asked() {
    let Some(dir) = std::env::var_os("VERBATIM_REPORT_SAMPLE_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let r = sample_report();
    for (name, body) in [
        ("report-sample.html", html(&r)),
        ("report-sample.md", markdown(&r)),
        ("report-sample.json", json(&r)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn the_manifest_reads_back_from_every_format() {
    let mut r = sample_report();
    // Characters every format escapes must come back as they were.
    r.manifest.parameters = serde_json::json!({
        "title": "<Q3> & \"everything\" `else`",
        "run": {"seed": 7, "k": 15, "min_size": 4},
    });
    for (name, text) in [("json", json(&r)), ("md", markdown(&r)), ("html", html(&r))] {
        assert_eq!(read_manifest(&text).as_ref(), Some(&r.manifest), "{name}");
    }
    assert_eq!(read_manifest("# just some markdown\n"), None);
}
