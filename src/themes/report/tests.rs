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
use crate::themes::analytics::trend_direction;
use crate::themes::priority::{priorities, ScoreKind, ScoreScale};
use crate::themes::types::Highlight;

// The sample report, shared with `examples/report_sample.rs` (which writes it out for a look in
// a browser).
#[path = "sample.rs"]
mod sample;
use sample::sample_report;

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
        priorities: vec![],
        themes: vec![],
        vanished: vec![],
        tree: false,
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

/// The formats show the direction the analytics computed (the one `verbatim themes` shows),
/// not one of their own: here a direction that contradicts the points.
#[test]
fn every_format_shows_the_trend_direction_of_the_data() {
    let mut r = sample_report();
    for t in &mut r.themes {
        t.trend.direction = Some(crate::themes::TrendDirection::Falling);
    }
    let (js, md, page) = (json(&r), markdown(&r), html(&r));
    let n = r.themes.len();
    assert_eq!(js.matches("\"direction\": \"falling\"").count(), n);
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| T")).collect();
    assert_eq!(rows.len(), n);
    for row in rows {
        assert!(row.split(" | ").nth(5).unwrap().starts_with('↘'), "{row}");
    }
    assert_eq!(md.matches("): ↘ falling").count(), n);
    assert_eq!(page.matches("<dt>Trend</dt><dd>↘ falling").count(), n);
    // Without one (too few periods), no direction is shown.
    r.themes[0].trend.direction = None;
    assert!(!json(&r).contains("\"direction\": null"));
    assert_eq!(markdown(&r).matches("): ↘ falling").count(), n - 1);
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

/// The problem themes lead every format, highest priority first, with the formula under them;
/// the praise theme (T4, 86% positive, lifts the score) is not listed.
#[test]
fn what_to_fix_first_leads_every_format() {
    let r = sample_report();
    let ids: Vec<&str> = r.priorities.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["T1", "T2", "T3", "T5", "T6"]);
    let page = html(&r);
    let fix = page.find("id=\"fix-first\"").expect("the priority section");
    assert!(fix < page.find("id=\"overview\"").unwrap());
    assert!(fix < page.find("nav class=\"toc\"").unwrap());
    assert!(page.contains(&esc(crate::themes::priority::FORMULA)));
    let md = markdown(&r);
    let fix = md
        .find("\n## What to fix first\n")
        .expect("the priority list");
    assert!(fix < md.find("\n## Themes\n").unwrap());
    assert!(md.contains(
        "1. **late delivery** · T1 — 24.0% of verbatims, 85% negative, −0.38 points of mean \
         score (0–10); priority"
    ));
    assert!(md.contains(&md_line(crate::themes::priority::FORMULA)));
    let js: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
    assert_eq!(js["priorities"][0]["id"], "T1");
    assert_eq!(js["priorities"].as_array().unwrap().len(), 5);
    // Nothing to fix: said so, in both formats.
    let mut calm = sample_report();
    calm.priorities.clear();
    assert!(html(&calm).contains("No theme is more negative than the verbatims as a whole"));
    assert!(markdown(&calm).contains("No theme is more negative than the verbatims as a whole"));
}

#[test]
fn snapshot_html_priorities() {
    let page = html(&sample_report());
    let start = page.find("<section id=\"fix-first\">").unwrap();
    let end = start + page[start..].find("</section>").unwrap() + "</section>".len();
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("report_html_priorities", &page[start..end]);
    });
}

/// Score effects read in the score's unit, with words that follow the sign, and never "-0.00".
#[test]
fn driver_effects_read_in_points_with_words_that_follow_the_sign() {
    let r = sample_report();
    let (md, page) = (markdown(&r), html(&r));
    assert!(md.contains(
        "- **Score driver:** −0.38 points of mean score (0–10): pulls the mean score down; mean \
         4.82 against 7.61 for the rest (262 scored)"
    ));
    assert!(md.contains("+0.24 points of mean score (0–10): lifts the mean score"));
    assert!(page.contains("<b>−0.38 points of mean score (0–10): pulls the mean score down</b>"));
    assert!(page.contains("Points of mean score (0–10): the overall mean score (7.12) minus"));
    for out in [&md, &page] {
        for bad in [
            "-0.00",
            "−0.00 ",
            "+0.00 ",
            "impact",
            "holds the overall score up",
        ] {
            assert!(!out.contains(bad), "{bad:?} in the output");
        }
        // A minus goes with "down", a plus with "lifts".
        for (i, _) in out.match_indices("points of mean score (0–10): ") {
            let before = &out[..i];
            let sign = before
                .rfind(['−', '+'])
                .and_then(|j| before[j..].chars().next());
            let verb: String = out[i..].chars().take(60).collect();
            match sign {
                Some('−') => assert!(verb.contains("pulls the mean score down"), "{verb}"),
                Some('+') => assert!(verb.contains("lifts the mean score"), "{verb}"),
                _ => panic!("no sign before {verb}"),
            }
        }
    }
    // A driver made before scales were recorded still reads in points.
    let mut old = sample_report();
    for t in &mut old.themes {
        if let Some(s) = &mut t.score {
            s.scale = None;
        }
    }
    assert!(markdown(&old).contains("−0.38 points of mean score: pulls the mean score down"));
    // Top-box scores read in percentage points.
    let mut tb = sample_report();
    for t in &mut tb.themes {
        if let Some(s) = &mut t.score {
            s.scale = Some(ScoreScale {
                kind: ScoreKind::TopBox,
                min: 0.0,
                max: 1.0,
            });
            s.impact /= 10.0;
        }
    }
    assert!(markdown(&tb)
        .contains("−3.80 percentage points of top-box share: pulls the top-box share down"));
}

/// A quote shows its highlighted sentence inside the verbatim, cut around it on word
/// boundaries: `<mark>` in HTML, bold in Markdown, offsets in JSON.
#[test]
fn quotes_show_their_highlight_cut_around_it() {
    let r = sample_report();
    let q = &r.themes[0].quotes[0];
    let h = q
        .highlight
        .expect("the sample's first quote has a highlight");
    let page = html(&r);
    assert!(page.contains(
        "<blockquote class=\"negative\"><p>…is fine, the prices are fair and the site is easy to \
         use, so I was not worried. Tracking said &quot;in transit&quot; for a week. <mark>Then it came \
         back to the depot"
    ));
    assert!(page.contains("bell once.</mark> I will still order again because the shoes"));
    assert!(page.contains("please find another courier for…</p>"));
    assert!(page.contains("V0977 · 2024-07-02 · highlighted: negative · verbatim: neutral"));
    let md = markdown(&r);
    assert!(md.contains("for a week. **Then it came back to the depot"));
    assert!(md.contains("bell once.** I will still order again"));
    let js: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
    let hj = &js["themes"][0]["quotes"][0]["highlight"];
    assert_eq!(hj["start"], h.start);
    assert_eq!(hj["end"], h.end);
    assert_eq!(hj["sentiment"], "negative");
}

#[test]
fn excerpts_are_char_safe_and_cut_on_words() {
    let q = |text: &str, part: Option<&str>| Quote {
        id: "V1".into(),
        text: text.into(),
        date: None,
        sentiment: Polarity::Neutral,
        highlight: part.map(|p| {
            let start = text.find(p).unwrap();
            Highlight {
                start,
                end: start + p.len(),
                sentiment: Polarity::Negative,
            }
        }),
    };
    // Short: nothing cut.
    let short = q(
        "Bon goût. Arrivé écrasé 😞. Dommage.",
        Some("Arrivé écrasé 😞."),
    );
    let e = excerpt(&short, 120);
    assert_eq!(
        (e.cut_before, e.before, e.mark, e.after, e.cut_after),
        (false, "Bon goût. ", "Arrivé écrasé 😞.", " Dommage.", false)
    );
    // Long, multibyte context: cut on word boundaries, within the limit.
    let before = "é😞 ".repeat(60);
    let after = " ça va très bien".repeat(20);
    let text = format!("{before}THE PART.{after}");
    let long = q(&text, Some("THE PART."));
    let e = excerpt(&long, 20);
    assert!(e.cut_before && e.cut_after);
    assert_eq!(e.mark, "THE PART.");
    assert!(
        e.before.chars().count() <= 20 && e.before.starts_with("é😞"),
        "{e:?}"
    );
    assert!(
        e.after.chars().count() <= 20 && e.after.ends_with(['a', 's', 'n']),
        "{e:?}"
    );
    // No whitespace at all: cut at the limit, still on a char boundary.
    let solid = "😞".repeat(300);
    let solid = q(&solid, None);
    let e = excerpt(&solid, 10);
    assert_eq!(e.before.chars().count(), 20);
    assert!(e.cut_after && e.mark.is_empty());
    // Offsets that do not fit the text: shown as a plain quote.
    let mut bad = short.clone();
    bad.highlight = Some(Highlight {
        start: 1,
        end: 500,
        sentiment: Polarity::Negative,
    });
    assert_eq!(excerpt(&bad, 120).mark, "");
    bad.highlight = Some(Highlight {
        start: 7, // inside "û"
        end: 8,
        sentiment: Polarity::Negative,
    });
    assert_eq!(excerpt(&bad, 120).mark, "");
}

/// Long parts of the page are collapsed (no script): the table of contents, the detail charts,
/// and each theme's keywords, further quotes and segments; one quote per theme stays open.
#[test]
fn long_lists_are_collapsed_without_script() {
    let r = sample_report();
    let page = html(&r);
    assert!(!page.to_lowercase().contains("<script"));
    assert!(page.contains("<details><summary>All 6 themes, largest first</summary>"));
    for chart in [
        "id=\"fig-sentiment\"",
        "id=\"fig-trend\"",
        "id=\"fig-seg-0\"",
        "id=\"fig-drivers\"",
        "<dt>verbatim version</dt>",
    ] {
        let at = page.find(chart).unwrap();
        let open = page[..at].rfind("<details").unwrap();
        assert!(
            !page[open..at].contains("</details>"),
            "{chart} is not collapsed"
        );
    }
    assert!(!page.contains("<details open"));
    assert_eq!(
        page.matches("<details class=\"more\"><summary>More: ")
            .count(),
        r.themes.len()
    );
    assert_eq!(
        page.matches("<details").count(),
        page.matches("</details>").count()
    );
    // T1: one quote open, two behind the toggle.
    assert!(page.contains("<summary>More: keywords, 2 more quotes, segments</summary>"));
}

/// The sample report as an aspect tree: T1–T3 become parent P1 and children C2, C3; T4–T6
/// parent P4 and children C5, C6; each child carries its quotes as units too (the drill-down).
fn tree_report() -> Report {
    let mut r = sample_report();
    r.tree = true;
    let ids = ["P1", "C2", "C3", "P4", "C5", "C6"];
    for (t, id) in r.themes.iter_mut().zip(ids) {
        t.id = id.into();
        t.parent = match id {
            "C2" | "C3" => Some("P1".into()),
            "C5" | "C6" => Some("P4".into()),
            _ => None,
        };
        if t.parent.is_some() {
            t.units = t
                .quotes
                .iter()
                .map(|q| {
                    let (text, start, end) = cut_around(&q.text, 0, q.text.len().min(12), 80);
                    Quote {
                        text,
                        highlight: Some(Highlight {
                            start,
                            end,
                            sentiment: q.sentiment,
                        }),
                        ..q.clone()
                    }
                })
                .collect();
        }
    }
    let children: Vec<ThemeSummary> = r
        .themes
        .iter()
        .filter(|t| t.parent.is_some())
        .cloned()
        .collect();
    r.priorities = priorities(&children, &r.sentiment);
    for p in &mut r.priorities {
        p.parent_label = r
            .themes
            .iter()
            .find(|t| Some(&t.id) == p.parent.as_ref())
            .map(|t| t.label.clone());
    }
    r
}

#[test]
fn a_tree_report_shows_parents_children_priorities_and_every_unit() {
    let r = tree_report();
    assert!(!r.priorities.is_empty());
    let page = html(&r);
    // The tree table, the priority chart, one collapsed line per child with its units.
    assert!(page.contains("<h2>The tree</h2>"));
    assert!(page.contains("id=\"chart-priority\""));
    assert_eq!(page.matches("<details class=\"node\"").count(), 4);
    let units: usize = r.themes.iter().map(|t| t.units.len()).sum();
    assert!(units > 0);
    assert_eq!(page.matches("<details class=\"units\">").count(), 4);
    for t in r.themes.iter().filter(|t| t.parent.is_some()) {
        for u in &t.units {
            let e = excerpt(u, QUOTE_CONTEXT);
            assert!(
                page.contains(&format!("<mark>{}</mark>", esc(e.mark))),
                "{}",
                e.mark
            );
        }
    }
    // A child in the list says its parent.
    let p = &r.priorities[0];
    let parent = p.parent_label.as_deref().unwrap();
    assert!(page.contains(&esc(&format!("{parent} › {}", p.label))));
    for bad in ["<script", "http://", "https://", "url("] {
        assert!(!page.contains(bad), "{bad}");
    }
    // Markdown: the tree table, children under their parent, units in <details>.
    let page_md = markdown(&r);
    assert!(page_md.contains("## The tree"));
    assert!(page_md.contains(&format!("| C2 | › {} |", md(&r.themes[1].label))));
    assert_eq!(page_md.matches("<details><summary>All ").count(), 4);
    assert!(page_md.contains(&format!("{} › {}", md(parent), md(&p.label))));
    // JSON keeps the tree flag and reads back.
    let js = json(&r);
    assert!(js.contains("\"tree\": true") && js.contains("\"parent\": \"P1\""));
    // (Floats may lose their last digit through JSON: the shape is compared.)
    let back = serde_json::from_str::<Report>(&js).unwrap();
    assert!(back.tree);
    let shape = |r: &Report| -> Vec<(String, Option<String>, usize)> {
        r.themes
            .iter()
            .map(|t| (t.id.clone(), t.parent.clone(), t.units.len()))
            .collect()
    };
    assert_eq!(shape(&back), shape(&r));
    // A topic report's JSON has none of it.
    let topic = json(&sample_report());
    assert!(!topic.contains("\"tree\"") && !topic.contains("\"units\""));
}

#[test]
fn cut_around_marks_the_span_inside_its_cut_verbatim() {
    let text = "a ".repeat(100) + "THE UNIT" + &" z".repeat(100);
    let start = text.find("THE UNIT").unwrap();
    let (cut, s, e) = cut_around(&text, start, start + 8, 10);
    assert_eq!(&cut[s..e], "THE UNIT");
    assert!(cut.starts_with('…') && cut.ends_with('…'), "{cut}");
    assert!(cut.chars().count() < 40, "{cut}");
    // Short text: nothing cut.
    let (cut, s, e) = cut_around("Great taste but arrived crushed.", 16, 31, 80);
    assert_eq!(
        (cut.as_str(), &cut[s..e]),
        ("Great taste but arrived crushed.", "arrived crushed")
    );
    // A span that does not fit: no mark.
    let (_, s, e) = cut_around("short", 3, 99, 80);
    assert_eq!((s, e), (0, 0));
}

#[test]
fn a_trend_too_thin_to_call_says_so_instead_of_a_change() {
    // One verbatim a month, then two: +50 pts of share, flat by the one rule (too few).
    let points: Vec<TrendPoint> = [(1, 0.5), (1, 0.5), (2, 1.0), (2, 1.0)]
        .iter()
        .enumerate()
        .map(|(i, &(count, share))| TrendPoint {
            period: format!("2024-{:02}", i + 1),
            count,
            share,
            spike: false,
            suppressed: false,
        })
        .collect();
    let t = Trend {
        granularity: "month".into(),
        direction: trend_direction(&points),
        points,
    };
    assert_eq!(t.direction, Some(crate::themes::TrendDirection::Flat));
    let delta = trend_delta(&t).unwrap();
    assert!(
        !delta.contains("pts") && delta.contains("too few"),
        "{delta}"
    );
}
