//! A sample report for the renderers' tests and for a look in a browser: a year of feedback
//! for a web shop, made to show every part of the report (a spike, a new theme, a vanished one,
//! suppressed segment cells, score drivers, text that needs escaping).
//!
//! Shared by `#[path]` between the library's report tests (`tests.rs`) and
//! `examples/report_sample.rs`, so it is not compiled into the library; the including module
//! brings the report types and `trend_direction` into scope (`use super::*`).

use super::*;

const MONTHS: [&str; 12] = [
    "2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06", "2024-07", "2024-08",
    "2024-09", "2024-10", "2024-11", "2024-12",
];
/// Verbatims per month (sums to 1,250).
const MONTH_TOTALS: [usize; 12] = [98, 95, 101, 104, 99, 102, 118, 106, 103, 107, 110, 107];

fn trend(counts: [usize; 12], spike: Option<usize>) -> Trend {
    let points: Vec<TrendPoint> = MONTHS
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
        .collect();
    Trend {
        granularity: "month".into(),
        direction: trend_direction(&points),
        points,
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
        highlight: None,
    }
}

/// `q` with the first occurrence of `part` highlighted.
fn highlighted(mut q: Quote, part: &str, sentiment: Polarity) -> Quote {
    let start = q.text.find(part).expect("the highlight is in the quote");
    q.highlight = Some(Highlight {
        start,
        end: start + part.len(),
        sentiment,
    });
    q
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
        // An NPS-style question: 0 to 10.
        scale: Some(ScoreScale {
            kind: ScoreKind::Mean,
            min: 0.0,
            max: 10.0,
        }),
        se: None,
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
        parent: None,
        units: Vec::new(),
    }
}

/// A year of feedback for a web shop: 1,250 verbatims, six themes, one vanished; segment
/// totals FR 520 / DE 430 / UK 300 and basic 800 / pro 450.
pub fn sample_report() -> Report {
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
                highlighted(quote(
                    "V0977",
                    "I have ordered from this shop for years and usually everything is fine, \
                     the prices are fair and the site is easy to use, so I was not worried. \
                     Tracking said \"in transit\" for a week. Then it came back to the \
                     depot, then out again, then back again — three weeks for a pair of \
                     shoes, and the courier never rang the bell once. I will still order again \
                     because the shoes themselves are great and fit perfectly, but please \
                     find another courier for deliveries to small villages like ours.",
                    Some("2024-07-02"),
                    Neutral,
                ),
                "Then it came back to the depot, then out again, then back again — three weeks \
                 for a pair of shoes, and the courier never rang the bell once.",
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
    let overall = sentiment(240, 260, 750, -0.38);
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
        sentiment: overall.clone(),
        score_mean: Some(7.12),
        segment_fields: vec!["country".into(), "plan".into()],
        priorities: priorities(&themes, &overall),
        themes,
        vanished: vec![VanishedTheme {
            id: "T7".into(),
            label: "checkout bug".into(),
            size: 42,
        }],
        tree: false,
    }
}
