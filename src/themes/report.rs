//! The batch theme report: one [`Report`] rendered as JSON, Markdown or a single HTML file.
//!
//! - [`json`] is the data as is (pretty, trailing newline): what other tools read.
//! - [`markdown`] is for tickets, wikis and terminals: a summary, a table of themes, one section
//!   per theme, the vanished themes, and the manifest in a fenced JSON block.
//! - [`html`] is for people: a header (title, verbatims, "other" share, overall sentiment, score
//!   mean, period), a table of contents, five inline SVG charts (theme sizes, sentiment per theme,
//!   trends as small multiples, segment heat maps, score drivers), one section per theme
//!   (keywords, size, change, sentiment, trend, score, quotes, segment tables), the vanished
//!   themes, and a footer with the manifest so the report can be reproduced.
//!
//! **Why one file with no JavaScript and no external assets.** A report is mailed, attached to
//! tickets, archived and opened years later, often on machines without network access; it holds
//! customer text, so opening it must not make a request anywhere (no fonts, images, scripts or
//! style sheets from a CDN, which would also leak that the report was opened). Charts are SVG
//! written by this module, styles are inline, and a Content-Security-Policy `<meta>` forbids
//! every fetch, so even a mistake here cannot phone home. Without scripts the page also prints
//! as it shows, and a strict viewer (mail client, sandboxed preview) shows all of it.
//!
//! **Determinism.** The same report gives the same bytes: no clock, no hash-map order, numbers
//! formatted with fixed decimals (shares as `12.3%`, means with two decimals, SVG coordinates
//! with one), and every ordering either the report's own or sorted with ties broken by name.
//!
//! **Escaping.** Every string from the data (title, labels, keywords, quotes, ids, segment
//! fields and values, parameters) is escaped for its format: HTML-escaped in [`html`]; in
//! [`markdown`], made inert so it cannot open a heading, list, block quote, code span, emphasis,
//! link, raw HTML or a new table cell. Redaction placeholders such as `<EMAIL>` therefore show as
//! text in both.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::types::{
    Change, Polarity, Quote, Report, SegmentBreakdown, SentimentSummary, ThemeSummary, Trend,
    TrendPoint,
};

/// `write!` into a `String`, which cannot fail (`fmt::Write for String` always returns `Ok`).
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{
        let _ = write!($dst, $($arg)*);
    }};
}

/// The report as pretty JSON with a trailing newline.
pub fn json(r: &Report) -> String {
    // `to_string_pretty` fails only on a map with non-string keys or a `Serialize` impl that
    // errors; the report has neither (its one map is a `serde_json::Value`, and a non-finite
    // float serialises as `null`).
    let mut s = serde_json::to_string_pretty(r).expect("a Report always serialises to JSON");
    s.push('\n');
    s
}

/// The report as Markdown (CommonMark with GitHub tables).
pub fn markdown(r: &Report) -> String {
    let mut out = String::with_capacity(16 * 1024);
    w!(out, "# {}\n\n", md(&r.title));

    w!(out, "- **Verbatims:** {}\n", int(r.verbatims));
    w!(
        out,
        "- **Themes:** {}; **other** (no theme): {} ({})\n",
        r.themes.len(),
        int(r.other),
        pct(ratio(r.other, r.verbatims))
    );
    w!(out, "- **Sentiment:** {}\n", sentiment_words(&r.sentiment));
    if let Some(mean) = r.score_mean {
        w!(out, "- **Score mean:** {}\n", fixed(mean, 2));
    }
    if let Some((first, last)) = &r.manifest.period {
        w!(out, "- **Period:** {} – {}\n", md(first), md(last));
    }
    if !r.segment_fields.is_empty() {
        let fields: Vec<String> = r.segment_fields.iter().map(|f| md(f)).collect();
        w!(out, "- **Segments:** {}\n", fields.join(", "));
    }
    if let Some(k) = aggregates_only(r) {
        w!(
            out,
            "- **Aggregates only:** no quotes; counts under {k} are suppressed (<k)\n"
        );
    }

    out.push_str("\n## Themes\n\n");
    if r.themes.is_empty() {
        out.push_str("No themes.\n");
    } else {
        out.push_str(
            "| ID | Theme | Size | Share | Sentiment + / = / − | Trend | Change | Top quote |\n\
             |---|---|--:|--:|---|:-:|---|---|\n",
        );
        for t in &r.themes {
            let trend = match direction(&t.trend) {
                Some(d) if has_spike(&t.trend) => format!("{} ⚠", d.arrow()),
                Some(d) => d.arrow().to_string(),
                None => "—".to_string(),
            };
            let quote = t
                .quotes
                .first()
                .map(|q| format!("“{}”", md(&shorten(&q.text, TOP_QUOTE_CHARS))))
                .unwrap_or_else(|| "—".to_string());
            w!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                md(&t.id),
                md(&t.label),
                int(t.size),
                pct(t.share),
                sentiment_cell(&t.sentiment),
                trend,
                change_word(t.change),
                quote
            );
        }
        out.push_str(
            "\nTrend: ↗ rising, ↘ falling, → flat (the last periods against the earlier ones); \
             ⚠ the theme has a spike. Sentiment: share of the theme's verbatims positive / \
             neutral / negative.\n",
        );
    }

    for t in &r.themes {
        markdown_theme(&mut out, t);
    }

    if !r.vanished.is_empty() {
        out.push_str("\n## Vanished themes\n\n");
        for v in &r.vanished {
            w!(
                out,
                "- {} · {}: {} verbatims in the compared run\n",
                md(&v.id),
                md(&v.label),
                int(v.size)
            );
        }
    }

    out.push_str("\n## Manifest\n\n");
    // Same reasoning as in `json`: the manifest cannot fail to serialise.
    let manifest =
        serde_json::to_string_pretty(&r.manifest).expect("a manifest always serialises to JSON");
    // A fence longer than any backtick run inside, so parameters cannot close it.
    let fence = "`".repeat(longest_run(&manifest, '`').max(2) + 1);
    w!(out, "{fence}json\n{manifest}\n{fence}\n");
    out
}

/// One theme's Markdown section.
fn markdown_theme(out: &mut String, t: &ThemeSummary) {
    w!(out, "\n## {} · {}\n\n", md(&t.id), md(&t.label));
    w!(
        out,
        "- **Size:** {} verbatims ({}), {} more as second theme\n",
        int(t.size),
        pct(t.share),
        int(t.secondary)
    );
    if let Some(c) = t.change {
        w!(out, "- **Change:** {}\n", change_word(Some(c)));
    }
    if t.seeded {
        out.push_str("- **Seeded** by a user\n");
    }
    if !t.keywords.is_empty() {
        let kws: Vec<String> = t.keywords.iter().map(|k| md(k)).collect();
        w!(out, "- **Keywords:** {}\n", kws.join(", "));
    }
    w!(out, "- **Sentiment:** {}\n", sentiment_words(&t.sentiment));
    if let Some(d) = direction(&t.trend) {
        w!(
            out,
            "- **Trend** ({}): {} {}",
            md(&t.trend.granularity),
            d.arrow(),
            d.word()
        );
        if let Some(peak) = peak(&t.trend) {
            w!(out, "; peak {} in {}", pct(peak.share), md(&peak.period));
        }
        let spikes = spikes(&t.trend);
        if !spikes.is_empty() {
            let spikes: Vec<String> = spikes.iter().map(|p| md(&p.period)).collect();
            w!(out, "; spikes: {}", spikes.join(", "));
        }
        out.push('\n');
    }
    if let Some(s) = &t.score {
        w!(
            out,
            "- **Score driver:** mean {} against {} for the rest ({} scored); impact {} ({})\n",
            fixed(s.mean, 2),
            fixed(s.rest_mean, 2),
            int(s.scored),
            signed(s.impact, 2),
            impact_words(s.impact)
        );
    }

    if !t.quotes.is_empty() {
        out.push_str("\n**Quotes**\n");
        for q in &t.quotes {
            out.push('\n');
            for line in q.text.lines() {
                if line.trim().is_empty() {
                    out.push_str(">\n");
                } else {
                    w!(out, "> {}\n", md_line(line));
                }
            }
            w!(out, ">\n> — {}\n", md(&quote_source(q)));
        }
    }

    if t.segments.iter().any(|b| !b.values.is_empty()) {
        out.push_str("\n| Segment | Value | Verbatims | Share of segment |\n|---|---|--:|--:|\n");
        for b in &t.segments {
            for v in &b.values {
                let (count, share) = match (v.count, v.share) {
                    (Some(c), Some(s)) => (int(c), pct(s)),
                    (Some(c), None) => (int(c), "—".to_string()),
                    // Suppressed: fewer than k verbatims; never print a number.
                    (None, _) => ("&lt;k".to_string(), "—".to_string()),
                };
                w!(
                    out,
                    "| {} | {} | {} | {} |\n",
                    md(&b.field),
                    md(&v.value),
                    count,
                    share
                );
            }
        }
        if has_suppressed(&t.segments) {
            out.push_str("\n&lt;k: fewer than k verbatims, suppressed.\n");
        }
    }
}

/// The report as one self-contained HTML page (inline CSS and SVG, no script, no fetch).
pub fn html(r: &Report) -> String {
    let mut out = String::with_capacity(96 * 1024);
    let anchors = anchors(&r.themes);
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" \
         content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    w!(
        out,
        "<meta name=\"generator\" content=\"verbatim {}\">\n",
        esc(&r.manifest.version)
    );
    w!(
        out,
        "<title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
        esc(&r.title)
    );
    out.push_str("<div class=\"page\">\n");

    html_header(&mut out, r);
    html_toc(&mut out, r, &anchors);

    out.push_str("<main>\n<section id=\"overview\">\n<h2>Overview</h2>\n");
    if r.themes.is_empty() {
        out.push_str("<p>No themes in this report.</p>\n");
    } else {
        let lw = label_width(&r.themes);
        chart_sizes(&mut out, r, lw);
        chart_sentiment(&mut out, r, lw);
        chart_trends(&mut out, r, lw);
        chart_segments(&mut out, r, lw);
        chart_drivers(&mut out, r, lw);
    }
    out.push_str("</section>\n");

    if !r.themes.is_empty() {
        out.push_str("<section id=\"themes\">\n<h2>Themes</h2>\n");
        for (t, anchor) in r.themes.iter().zip(&anchors) {
            html_theme(&mut out, t, anchor);
        }
        out.push_str("</section>\n");
    }

    if !r.vanished.is_empty() {
        out.push_str("<section id=\"vanished\">\n<h2>Vanished themes</h2>\n");
        out.push_str("<p>Themes of the compared run that are gone.</p>\n<ul class=\"vanished\">\n");
        for v in &r.vanished {
            w!(
                out,
                "<li><span class=\"tid\">{}</span> {} <span class=\"muted\">{} verbatims \
                 in the compared run</span></li>\n",
                esc(&v.id),
                esc(&v.label),
                int(v.size)
            );
        }
        out.push_str("</ul>\n</section>\n");
    }
    out.push_str("</main>\n");

    html_manifest(&mut out, r);
    out.push_str("</div>\n</body>\n</html>\n");
    out
}

// ---------------------------------------------------------------------------------------------
// HTML page parts
// ---------------------------------------------------------------------------------------------

/// Styles of the page. Colours: text contrast ≥ 7:1 (muted text ≥ 4.5:1); sentiment uses the
/// Okabe–Ito blue / vermillion pair (told apart by every common colour-vision deficiency) with
/// a light grey for neutral, and every colour also comes with a word or a number.
const CSS: &str = r#":root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:#1a1a1a;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.page{max-width:980px;margin:0 auto;padding:28px 28px 48px}
h1{font-size:1.75rem;line-height:1.25;margin:0 0 .2rem}
h2{font-size:1.3rem;margin:2.4rem 0 .9rem;padding-bottom:.25rem;border-bottom:2px solid #1a1a1a}
h3{font-size:1.12rem;margin:0 0 .5rem;line-height:1.35}
.muted{color:#555}
.sub{color:#555;margin:0 0 1rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(130px,1fr));gap:10px;margin:1rem 0 .5rem;padding:0}
.cards div{border:1px solid #d0d0d0;border-radius:6px;padding:8px 12px}
.cards dt{font-size:.75rem;color:#555;text-transform:uppercase;letter-spacing:.04em}
.cards dd{margin:0;font-size:1.15rem;font-weight:600}
.cards dd small{display:block;font-size:.8rem;font-weight:400;color:#555}
nav.toc ol{margin:.3rem 0;padding-left:1.6rem;columns:2 300px}
nav.toc li{break-inside:avoid}
a{color:#0b4f8a}
figure{margin:1.4rem 0 2rem;overflow-x:auto}
figcaption{font-weight:600;margin-bottom:.35rem}
.note{font-size:.85rem;color:#555;margin:.35rem 0 0}
svg.chart{display:block;max-width:100%;height:auto}
svg.chart text{font-family:inherit;font-size:12px;fill:#1a1a1a}
svg.chart .muted{fill:#555}
svg.chart .axis{font-size:11px;fill:#555}
svg.chart .inv{fill:#fff}
svg.chart .b{font-weight:600}
.key{display:inline-block;width:.8em;height:.8em;border-radius:2px;vertical-align:-.05em;margin:0 .25em 0 .6em}
.spikekey{color:#b84f00}
article.theme{border-top:1px solid #d0d0d0;padding:1.2rem 0 1.4rem}
.tid{display:inline-block;font:600 .8em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eceff3;color:#1a1a1a;border-radius:4px;padding:.05em .4em;margin-right:.35em;vertical-align:.1em}
.badge{display:inline-block;font-size:.72rem;font-weight:600;text-transform:uppercase;letter-spacing:.04em;border-radius:999px;padding:.1em .6em;margin-left:.4em;vertical-align:.2em;border:1px solid currentColor}
.badge.new{color:#5a2d82}.badge.grew{color:#8a3a00}.badge.shrank{color:#0b4f8a}.badge.stable{color:#444}.badge.vanished{color:#444}.badge.seeded{color:#2d5a27}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:.6rem 0 1rem}
dl.facts dt{color:#555}
dl.facts dd{margin:0}
ul.kw{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.3rem}
ul.kw li{background:#f1f3f5;border:1px solid #dde1e5;border-radius:4px;padding:0 .45em;font-size:.9rem}
.sbar{display:inline-flex;height:12px;width:160px;max-width:100%;border-radius:3px;overflow:hidden;margin:0 .6em 0 0;vertical-align:-.1em;border:1px solid #bbb}
.cards .sbar{display:flex;width:100%;margin:.35rem 0 .1rem}
.sbar span{display:block;height:100%}
.pos{background:#0072b2}.neu{background:#c8c8c8}.neg{background:#b84f00}
blockquote{margin:.7rem 0;padding:.4rem .9rem;border-left:4px solid #c8c8c8;background:#fafafa}
blockquote.positive{border-left-color:#0072b2}
blockquote.negative{border-left-color:#b84f00}
blockquote p{margin:0;white-space:pre-line;overflow-wrap:anywhere}
blockquote footer{font-size:.82rem;color:#555;margin-top:.2rem}
.segs{display:flex;flex-wrap:wrap;gap:1.2rem;align-items:flex-start;margin-top:.8rem}
table{border-collapse:collapse;font-size:.9rem}
caption{text-align:left;font-weight:600;padding-bottom:.2rem}
th,td{padding:.2rem .6rem;border-bottom:1px solid #e2e2e2;text-align:left}
thead th{border-bottom:1.5px solid #1a1a1a;font-weight:600}
tbody th{font-weight:400}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.suppressed td{color:#555;font-style:italic}
ul.vanished li{margin:.2rem 0}
footer.manifest{margin-top:3rem;font-size:.88rem}
footer.manifest dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}
footer.manifest dt{color:#555}
footer.manifest dd{margin:0}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
code{overflow-wrap:anywhere}
pre{margin:0;padding:.6rem .8rem;background:#f6f7f8;border:1px solid #e2e2e2;border-radius:4px;white-space:pre-wrap;overflow-wrap:anywhere}
@media print{
body{font-size:10.5pt}
.page{max-width:none;padding:0}
nav.toc{display:none}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
a{color:inherit;text-decoration:none}
h2,h3{break-after:avoid}
figure,blockquote,tr,table,.cards div,dl.facts{break-inside:avoid}
figure{overflow:visible}
blockquote{background:none}
.cards{grid-template-columns:repeat(auto-fill,minmax(100px,1fr));gap:8px}
.cards div{padding:6px 8px}
.cards dd{font-size:1rem;white-space:nowrap}
}
@page{margin:14mm}
"#;

/// Title and headline numbers.
fn html_header(out: &mut String, r: &Report) {
    w!(out, "<header>\n<h1>{}</h1>\n", esc(&r.title));
    let mut sub = Vec::new();
    if let Some((first, last)) = &r.manifest.period {
        sub.push(format!("{} to {}", esc(first), esc(last)));
    }
    if !r.segment_fields.is_empty() {
        let fields: Vec<String> = r.segment_fields.iter().map(|f| esc(f)).collect();
        sub.push(format!("segments: {}", fields.join(", ")));
    }
    if let Some(k) = aggregates_only(r) {
        sub.push(format!(
            "aggregates only: no quotes, counts under {k} suppressed (&lt;k)"
        ));
    }
    sub.push(format!("verbatim {}", esc(&r.manifest.version)));
    w!(out, "<p class=\"sub\">{}</p>\n", sub.join(" · "));

    out.push_str("<dl class=\"cards\">\n");
    w!(
        out,
        "<div><dt>Verbatims</dt><dd>{}</dd></div>\n",
        int(r.verbatims)
    );
    let covered: usize = r.themes.iter().map(|t| t.size).sum();
    w!(
        out,
        "<div><dt>Themes</dt><dd>{}<small>covering {}</small></dd></div>\n",
        r.themes.len(),
        pct(ratio(covered, r.verbatims))
    );
    w!(
        out,
        "<div><dt>No theme</dt><dd>{}<small>{} verbatims</small></dd></div>\n",
        pct(ratio(r.other, r.verbatims)),
        int(r.other)
    );
    w!(
        out,
        "<div><dt>Sentiment</dt><dd>{}{}<small>{}</small></dd></div>\n",
        signed(r.sentiment.mean, 2),
        sentiment_bar(&r.sentiment),
        esc(&sentiment_short(&r.sentiment))
    );
    if let Some(mean) = r.score_mean {
        w!(
            out,
            "<div><dt>Score mean</dt><dd>{}</dd></div>\n",
            fixed(mean, 2)
        );
    }
    if let Some((first, last)) = &r.manifest.period {
        w!(
            out,
            "<div><dt>Period</dt><dd>{}<small>to {}</small></dd></div>\n",
            esc(first),
            esc(last)
        );
    }
    out.push_str("</dl>\n</header>\n");
}

/// A small 100% bar of positive / neutral / negative in HTML (empty without verbatims).
fn sentiment_bar(s: &SentimentSummary) -> String {
    match sentiment_shares(s) {
        Some([p, n, g]) => format!(
            "<span class=\"sbar\" role=\"img\" aria-label=\"{}\">\
             <span class=\"pos\" style=\"width:{}%\"></span>\
             <span class=\"neu\" style=\"width:{}%\"></span>\
             <span class=\"neg\" style=\"width:{}%\"></span></span>",
            esc(&sentiment_words(s)),
            fixed(p * 100.0, 1),
            fixed(n * 100.0, 1),
            fixed(g * 100.0, 1)
        ),
        None => String::new(),
    }
}

/// Links to the theme sections (screen only).
fn html_toc(out: &mut String, r: &Report, anchors: &[String]) {
    if r.themes.is_empty() {
        return;
    }
    out.push_str("<nav class=\"toc\" aria-label=\"Themes\">\n<ol>\n");
    for (t, anchor) in r.themes.iter().zip(anchors) {
        w!(
            out,
            "<li><a href=\"#{}\">{}</a> <span class=\"muted\">{} · {}</span></li>\n",
            esc(anchor),
            esc(&t.label),
            esc(&t.id),
            pct(t.share)
        );
    }
    out.push_str("</ol>\n</nav>\n");
}

/// One theme's section.
fn html_theme(out: &mut String, t: &ThemeSummary, anchor: &str) {
    w!(out, "<article class=\"theme\" id=\"{}\">\n", esc(anchor));
    w!(
        out,
        "<h3><span class=\"tid\">{}</span>{}",
        esc(&t.id),
        esc(&t.label)
    );
    if let Some(c) = t.change {
        w!(
            out,
            "<span class=\"badge {}\">{}</span>",
            change_word(Some(c)),
            change_badge(c)
        );
    }
    if t.seeded {
        out.push_str("<span class=\"badge seeded\">seeded</span>");
    }
    out.push_str("</h3>\n<dl class=\"facts\">\n");

    w!(
        out,
        "<dt>Size</dt><dd>{} verbatims · {} of all · {} more as second theme</dd>\n",
        int(t.size),
        pct(t.share),
        int(t.secondary)
    );
    if !t.keywords.is_empty() {
        out.push_str("<dt>Keywords</dt><dd><ul class=\"kw\">");
        for k in &t.keywords {
            w!(out, "<li>{}</li>", esc(k));
        }
        out.push_str("</ul></dd>\n");
    }
    out.push_str("<dt>Sentiment</dt><dd>");
    out.push_str(&sentiment_bar(&t.sentiment));
    w!(out, "{}</dd>\n", esc(&sentiment_words(&t.sentiment)));

    if let Some(d) = direction(&t.trend) {
        w!(
            out,
            "<dt>Trend</dt><dd>{} {} by {}",
            d.arrow(),
            d.word(),
            esc(&t.trend.granularity)
        );
        if let Some(last) = t.trend.points.last() {
            w!(out, " · last {} ({})", pct(last.share), esc(&last.period));
        }
        if let Some(p) = peak(&t.trend) {
            w!(out, " · peak {} ({})", pct(p.share), esc(&p.period));
        }
        let spikes = spikes(&t.trend);
        if !spikes.is_empty() {
            let s: Vec<String> = spikes.iter().map(|p| esc(&p.period)).collect();
            w!(
                out,
                " · <span class=\"spikekey\">●</span> spike in {}",
                s.join(", ")
            );
        }
        out.push_str("</dd>\n");
    }
    if let Some(s) = &t.score {
        w!(
            out,
            "<dt>Score</dt><dd>mean {} against {} for the rest ({} scored) · impact <b>{}</b>: \
             {}</dd>\n",
            fixed(s.mean, 2),
            fixed(s.rest_mean, 2),
            int(s.scored),
            signed(s.impact, 2),
            impact_words(s.impact)
        );
    }
    out.push_str("</dl>\n");

    for q in &t.quotes {
        w!(
            out,
            "<blockquote class=\"{}\"><p>{}</p><footer>{}</footer></blockquote>\n",
            polarity_word(q.sentiment),
            esc(q.text.trim()),
            esc(&quote_source(q))
        );
    }

    if t.segments.iter().any(|b| !b.values.is_empty()) {
        out.push_str("<div class=\"segs\">\n");
        for b in t.segments.iter().filter(|b| !b.values.is_empty()) {
            w!(
                out,
                "<table>\n<caption>{}</caption>\n<thead><tr><th scope=\"col\">Value</th>\
                 <th scope=\"col\">Verbatims</th><th scope=\"col\">Share of segment</th></tr>\
                 </thead>\n<tbody>\n",
                esc(&b.field)
            );
            for v in &b.values {
                match v.count {
                    Some(c) => w!(
                        out,
                        "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td>\
                         <td class=\"num\">{}</td></tr>\n",
                        esc(&v.value),
                        int(c),
                        v.share.map(pct).unwrap_or_else(|| "—".to_string())
                    ),
                    None => w!(
                        out,
                        "<tr class=\"suppressed\"><th scope=\"row\">{}</th>\
                         <td class=\"num\" title=\"fewer than k verbatims: suppressed\">&lt;k</td>\
                         <td class=\"num\">—</td></tr>\n",
                        esc(&v.value)
                    ),
                }
            }
            out.push_str("</tbody>\n</table>\n");
        }
        out.push_str("</div>\n");
        if has_suppressed(&t.segments) {
            out.push_str("<p class=\"note\">&lt;k: fewer than k verbatims, suppressed.</p>\n");
        }
    }
    out.push_str("</article>\n");
}

/// The footer: everything needed to reproduce the report.
fn html_manifest(out: &mut String, r: &Report) {
    let m = &r.manifest;
    out.push_str("<footer class=\"manifest\" id=\"manifest\">\n<h2>Manifest</h2>\n");
    out.push_str(
        "<p class=\"muted\">What this report was made from: the same data snapshot, models and \
         parameters give the same report, byte for byte.</p>\n<dl>\n",
    );
    w!(
        out,
        "<dt>verbatim version</dt><dd><code>{}</code></dd>\n",
        esc(&m.version)
    );
    w!(
        out,
        "<dt>Data snapshot</dt><dd><code>{}</code></dd>\n",
        esc(&m.data_snapshot)
    );
    w!(
        out,
        "<dt>Embedding model</dt><dd><code>{}</code></dd>\n",
        esc(&m.model)
    );
    w!(
        out,
        "<dt>Sentiment model</dt><dd><code>{}</code></dd>\n",
        esc(&m.sentiment_model)
    );
    if let Some((first, last)) = &m.period {
        w!(
            out,
            "<dt>Period</dt><dd>{} to {}</dd>\n",
            esc(first),
            esc(last)
        );
    }
    // Serialising a `Value` cannot fail; `Display` is the same JSON on one line.
    let params =
        serde_json::to_string_pretty(&m.parameters).unwrap_or_else(|_| m.parameters.to_string());
    w!(
        out,
        "<dt>Parameters</dt><dd><pre><code>{}</code></pre></dd>\n",
        esc(&params)
    );
    out.push_str("</dl>\n</footer>\n");
}

// ---------------------------------------------------------------------------------------------
// SVG charts
// ---------------------------------------------------------------------------------------------

/// Natural width of every chart (it shrinks with the page, never grows: text stays 12px).
const CHART_W: f64 = 900.0;
/// Row height of the bar charts.
const ROW_H: f64 = 26.0;
/// Bar thickness in the bar charts.
const BAR_H: f64 = 16.0;
/// Average advance of a 12px sans-serif character, to size label columns without font metrics.
const CHAR_W: f64 = 6.7;
/// Longest label drawn in a chart (the full label is in the row's tooltip and the section).
const LABEL_CHARS: usize = 32;

const C_POS: &str = "#0072b2";
const C_NEU: &str = "#c8c8c8";
const C_NEG: &str = "#b84f00";
const C_BAR: &str = "#3a6ea5";
const C_OTHER: &str = "#9a9a9a";
const C_GRID: &str = "#e2e2e2";
const C_AXIS: &str = "#6b6b6b";
const C_BASE: &str = "#bdbdbd";

/// Opens a chart: an accessible `<svg>` with its title and description.
fn svg_open(out: &mut String, id: &str, w: f64, h: f64, title: &str, desc: &str) {
    w!(
        out,
        "<svg class=\"chart\" id=\"{id}\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" \
         role=\"img\" aria-labelledby=\"{id}-t {id}-d\">\n<title id=\"{id}-t\">{}</title>\
         <desc id=\"{id}-d\">{}</desc>\n",
        n(w),
        n(h),
        n(w),
        n(h),
        esc(title),
        esc(desc)
    );
}

/// Width of the label column: fits the longest (capped) "id label".
fn label_width(themes: &[ThemeSummary]) -> f64 {
    let chars = themes
        .iter()
        .map(|t| t.id.chars().count() + 1 + t.label.chars().count().min(LABEL_CHARS))
        .max()
        .unwrap_or(10);
    (chars as f64 * CHAR_W + 18.0).clamp(120.0, 290.0)
}

/// A row label, right-aligned at `x`: the id (muted) then the label, cut to fit.
fn svg_theme_label(out: &mut String, x: f64, y: f64, t: &ThemeSummary, lw: f64) {
    let room = ((lw - 18.0) / CHAR_W) as usize;
    let label_room = room.saturating_sub(t.id.chars().count() + 1).max(6);
    w!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\"><tspan class=\"muted\">{}</tspan> {}</text>\n",
        n(x),
        n(y),
        esc(&t.id),
        esc(&shorten(&t.label, label_room))
    );
}

/// (1) Horizontal bars: each theme's share of the verbatims, and "other".
fn chart_sizes(out: &mut String, r: &Report, lw: f64) {
    let value_w = 130.0;
    let bar_w = CHART_W - lw - value_w;
    let rows = r.themes.len() + 1;
    let h = rows as f64 * ROW_H + 8.0;
    let max = r
        .themes
        .iter()
        .map(|t| t.share)
        .chain([ratio(r.other, r.verbatims)])
        .filter(|s| s.is_finite())
        .fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { bar_w / max } else { 0.0 };

    out.push_str("<figure>\n<figcaption>Theme sizes</figcaption>\n");
    svg_open(
        out,
        "fig-sizes",
        CHART_W,
        h,
        "Theme sizes",
        &format!(
            "Share of the {} verbatims whose first theme each theme is, largest first; the last \
             bar is the verbatims in no theme.",
            int(r.verbatims)
        ),
    );
    let bar = |out: &mut String, y: f64, share: f64, colour: &str| {
        let bw = (share.max(0.0) * scale).max(if share > 0.0 { 1.0 } else { 0.0 });
        w!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\"/>\n",
            n(lw),
            n(y + (ROW_H - BAR_H) / 2.0),
            n(bw),
            n(BAR_H)
        );
        bw
    };
    for (i, t) in r.themes.iter().enumerate() {
        let y = 4.0 + i as f64 * ROW_H;
        w!(
            out,
            "<g><title>{} {}: {} verbatims, {}</title>\n",
            esc(&t.id),
            esc(&t.label),
            int(t.size),
            pct(t.share)
        );
        svg_theme_label(out, lw - 8.0, y + 17.0, t, lw);
        let bw = bar(out, y, t.share, C_BAR);
        w!(
            out,
            "<text x=\"{}\" y=\"{}\"><tspan class=\"b\">{}</tspan> <tspan class=\"muted\">{}</tspan></text>\n</g>\n",
            n(lw + bw + 6.0),
            n(y + 17.0),
            pct(t.share),
            int(t.size)
        );
    }
    let y = 4.0 + r.themes.len() as f64 * ROW_H;
    let other = ratio(r.other, r.verbatims);
    w!(
        out,
        "<g><title>other (no theme): {} verbatims, {}</title>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"muted\">other (no theme)</text>\n",
        int(r.other),
        pct(other),
        n(lw - 8.0),
        n(y + 17.0)
    );
    let bw = bar(out, y, other, C_OTHER);
    w!(
        out,
        "<text x=\"{}\" y=\"{}\"><tspan class=\"b\">{}</tspan> <tspan class=\"muted\">{}</tspan></text>\n</g>\n",
        n(lw + bw + 6.0),
        n(y + 17.0),
        pct(other),
        int(r.other)
    );
    w!(
        out,
        "<line x1=\"{x}\" y1=\"2\" x2=\"{x}\" y2=\"{}\" stroke=\"{C_AXIS}\"/>\n</svg>\n",
        n(h - 2.0),
        x = n(lw)
    );
    out.push_str("</figure>\n");
}

/// (2) 100% stacked bars: positive / neutral / negative per theme, with the overall first.
fn chart_sentiment(out: &mut String, r: &Report, lw: f64) {
    let mean_w = 96.0;
    let bar_w = CHART_W - lw - mean_w;
    let legend_h = 26.0;
    let rows = r.themes.len() + 1;
    let h = legend_h + rows as f64 * ROW_H + 6.0;

    out.push_str("<figure>\n<figcaption>Sentiment by theme</figcaption>\n");
    svg_open(
        out,
        "fig-sentiment",
        CHART_W,
        h,
        "Sentiment by theme",
        "Share of each theme's verbatims classed positive, neutral and negative, with the mean \
         sentiment score (from -1 to 1) on the right; the first bar is every verbatim.",
    );
    // Legend.
    let mut x = lw;
    for (name, colour) in [("positive", C_POS), ("neutral", C_NEU), ("negative", C_NEG)] {
        w!(
            out,
            "<rect x=\"{}\" y=\"6\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"16\">{name}</text>\n",
            n(x),
            n(x + 17.0)
        );
        x += 17.0 + name.len() as f64 * CHAR_W + 22.0;
    }
    w!(
        out,
        "<text x=\"{}\" y=\"16\" text-anchor=\"end\" class=\"muted\">mean</text>\n",
        n(CHART_W - 8.0)
    );

    let row = |out: &mut String, y: f64, s: &SentimentSummary| {
        let Some(shares) = sentiment_shares(s) else {
            w!(
                out,
                "<text x=\"{}\" y=\"{}\" class=\"muted\">no verbatims</text>\n",
                n(lw),
                n(y + 17.0)
            );
            return;
        };
        let mut x = lw;
        for ((share, colour), inv) in shares
            .iter()
            .zip([C_POS, C_NEU, C_NEG])
            .zip([true, false, true])
        {
            let sw = share * bar_w;
            if sw > 0.0 {
                w!(
                    out,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\"/>\n",
                    n(x),
                    n(y + (ROW_H - BAR_H) / 2.0),
                    n(sw),
                    n(BAR_H)
                );
            }
            if sw >= 34.0 {
                w!(
                    out,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\"{}>{}</text>\n",
                    n(x + sw / 2.0),
                    n(y + 17.0),
                    if inv { " class=\"inv\"" } else { "" },
                    whole_pct(*share)
                );
            }
            x += sw;
        }
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"b\">{}</text>\n",
            n(CHART_W - 8.0),
            n(y + 17.0),
            signed(s.mean, 2)
        );
    };

    let y = legend_h;
    w!(
        out,
        "<g><title>All verbatims: {}</title>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\" \
         class=\"b\">All verbatims</text>\n",
        esc(&sentiment_words(&r.sentiment)),
        n(lw - 8.0),
        n(y + 17.0)
    );
    row(out, y, &r.sentiment);
    out.push_str("</g>\n");
    for (i, t) in r.themes.iter().enumerate() {
        let y = legend_h + (i + 1) as f64 * ROW_H;
        w!(
            out,
            "<g><title>{} {}: {}</title>\n",
            esc(&t.id),
            esc(&t.label),
            esc(&sentiment_words(&t.sentiment))
        );
        svg_theme_label(out, lw - 8.0, y + 17.0, t, lw);
        row(out, y, &t.sentiment);
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n</figure>\n");
}

/// (3) Trend small multiples: one sparkline of share per theme on a shared period axis.
fn chart_trends(out: &mut String, r: &Report, lw: f64) {
    // Every period any theme has, in order (`2024-03` and `2024-W09` sort as text).
    let periods: Vec<&str> = r
        .themes
        .iter()
        .flat_map(|t| t.trend.points.iter().map(|p| p.period.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let granularity = r
        .themes
        .iter()
        .map(|t| t.trend.granularity.as_str())
        .find(|g| !g.is_empty() && *g != "none")
        .unwrap_or("period");
    out.push_str("<figure>\n");
    w!(
        out,
        "<figcaption>Trend by {}</figcaption>\n",
        esc(granularity)
    );
    if periods.len() < 2 {
        out.push_str("<p class=\"note\">Not enough dated verbatims for a trend.</p>\n</figure>\n");
        return;
    }
    let index: BTreeMap<&str, usize> = periods.iter().enumerate().map(|(i, p)| (*p, i)).collect();

    let row_h = 46.0;
    let plot_h = 28.0;
    let top = 10.0;
    let right_w = 104.0;
    let plot_x = lw + 6.0;
    let plot_w = CHART_W - plot_x - right_w;
    let step_x = plot_w / (periods.len() - 1) as f64;
    let axis_y = top + r.themes.len() as f64 * row_h + 4.0;
    let h = axis_y + 24.0;
    let x_of = |i: usize| plot_x + i as f64 * step_x;

    svg_open(
        out,
        "fig-trend",
        CHART_W,
        h,
        &format!("Trend by {granularity}"),
        &format!(
            "For each theme, its share of the verbatims of each {granularity} from {} to {}; \
             each row is scaled to its own peak; circled points are spikes.",
            periods[0],
            periods[periods.len() - 1]
        ),
    );

    // Period axis: label as many periods as fit, evenly, and draw their grid lines.
    let label_w = periods.iter().map(|p| p.chars().count()).max().unwrap_or(7) as f64 * 6.2 + 10.0;
    let every = ((label_w / step_x).ceil() as usize).max(1);
    for (i, p) in periods.iter().enumerate() {
        if !i.is_multiple_of(every) {
            continue;
        }
        let x = x_of(i);
        w!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{C_GRID}\"/>\n\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" class=\"axis\">{}</text>\n",
            n(top),
            n(axis_y + 3.0),
            n(axis_y + 16.0),
            esc(p),
            x = n(x)
        );
    }

    for (row, t) in r.themes.iter().enumerate() {
        let y0 = top + row as f64 * row_h;
        let base = y0 + plot_h + 4.0;
        let max = t
            .trend
            .points
            .iter()
            .map(|p| p.share)
            .filter(|s| s.is_finite())
            .fold(0.0_f64, f64::max);
        let y_of = |s: f64| {
            if max > 0.0 && s.is_finite() {
                base - (s.max(0.0) / max) * plot_h
            } else {
                base
            }
        };
        w!(
            out,
            "<g><title>{} {}: {}</title>\n",
            esc(&t.id),
            esc(&t.label),
            esc(&trend_words(&t.trend))
        );
        svg_theme_label(out, lw - 8.0, base - plot_h / 2.0 + 4.0, t, lw);
        w!(
            out,
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{C_BASE}\"/>\n",
            n(plot_x),
            n(plot_x + plot_w),
            y = n(base)
        );
        // The line, broken where a theme lacks a period.
        let mut d = String::new();
        let mut prev: Option<usize> = None;
        for p in &t.trend.points {
            let Some(&i) = index.get(p.period.as_str()) else {
                continue;
            };
            let cmd = if prev.is_some_and(|j| j + 1 == i) {
                'L'
            } else {
                'M'
            };
            w!(d, "{cmd}{} {}", n(x_of(i)), n(y_of(p.share)));
            prev = Some(i);
        }
        if !d.is_empty() {
            w!(
                out,
                "<path d=\"{d}\" fill=\"none\" stroke=\"{C_BAR}\" stroke-width=\"1.8\" \
                 stroke-linejoin=\"round\"/>\n"
            );
        }
        for p in &t.trend.points {
            let Some(&i) = index.get(p.period.as_str()) else {
                continue;
            };
            if p.spike {
                w!(
                    out,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"4.5\" fill=\"{C_NEG}\" stroke=\"#fff\" \
                     stroke-width=\"1.5\"><title>{}: {} ({} verbatims), spike</title></circle>\n",
                    n(x_of(i)),
                    n(y_of(p.share)),
                    esc(&p.period),
                    pct(p.share),
                    int(p.count)
                );
            }
        }
        if let Some(last) = t.trend.points.last() {
            let arrow = direction(&t.trend).map(|d| d.arrow()).unwrap_or("");
            w!(
                out,
                "<text x=\"{}\" y=\"{}\"><tspan class=\"b\">{}</tspan> <tspan class=\"muted\">{}</tspan></text>\n",
                n(plot_x + plot_w + 10.0),
                n(base - 4.0),
                pct(last.share),
                arrow
            );
            w!(
                out,
                "<text x=\"{}\" y=\"{}\" class=\"axis\">peak {}</text>\n",
                n(plot_x + plot_w + 10.0),
                n(base - 18.0),
                pct(max)
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    w!(
        out,
        "<p class=\"note\">Share of each {g}'s verbatims; each row is scaled to its own peak, so \
         compare shapes, not heights. On the right: the last {g}'s share and its direction \
         (↗ rising, ↘ falling, → flat). <span class=\"spikekey\">●</span> spike: a share more \
         than 2σ above the trailing mean.</p>\n</figure>\n",
        g = esc(granularity)
    );
}

/// (4) Segment heat maps: themes × values of each segment field, coloured by share.
fn chart_segments(out: &mut String, r: &Report, lw: f64) {
    let fields = segment_fields(r);
    if fields.is_empty() {
        return;
    }
    out.push_str("<figure>\n<figcaption>Themes by segment</figcaption>\n");
    for (fi, field) in fields.iter().enumerate() {
        let columns = segment_columns(r, field);
        if columns.is_empty() {
            continue;
        }
        let cell_w = ((CHART_W - lw - 10.0) / columns.len() as f64).clamp(48.0, 96.0);
        let cell_h = 24.0;
        let head_h = 40.0;
        let grid_w = cell_w * columns.len() as f64;
        let rows_h = r.themes.len() as f64 * cell_h;
        let legend_y = head_h + rows_h + 14.0;
        let h = legend_y + 32.0;
        let w = (lw + grid_w + 10.0).max(lw + 430.0);
        let cells: Vec<Vec<Option<&super::types::SegmentValue>>> = r
            .themes
            .iter()
            .map(|t| {
                let b = t.segments.iter().find(|b| &b.field == field);
                columns
                    .iter()
                    .map(|c| b.and_then(|b| b.values.iter().find(|v| &v.value == c)))
                    .collect()
            })
            .collect();
        let max = cells
            .iter()
            .flatten()
            .flatten()
            .filter_map(|v| v.share)
            .filter(|s| s.is_finite())
            .fold(0.0_f64, f64::max);

        svg_open(
            out,
            &format!("fig-seg-{fi}"),
            w,
            h,
            &format!("Themes by {field}"),
            &format!(
                "For each theme and each value of {field}, the share of that value's verbatims \
                 in the theme; darker is larger; hatched cells are suppressed (fewer than k \
                 verbatims)."
            ),
        );
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"b\">{}</text>\n",
            n(lw - 8.0),
            n(head_h - 8.0),
            esc(&shorten(field, ((lw - 18.0) / CHAR_W) as usize))
        );
        let room = ((cell_w - 6.0) / CHAR_W) as usize;
        for (ci, c) in columns.iter().enumerate() {
            w!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"b\"><title>{}</title>{}</text>\n",
                n(lw + (ci as f64 + 0.5) * cell_w),
                n(head_h - 8.0),
                esc(c),
                esc(&shorten(c, room.max(3)))
            );
        }
        for (ri, (t, row)) in r.themes.iter().zip(&cells).enumerate() {
            let y = head_h + ri as f64 * cell_h;
            svg_theme_label(out, lw - 8.0, y + 16.0, t, lw);
            for (ci, cell) in row.iter().enumerate() {
                let x = lw + ci as f64 * cell_w;
                let cx = n(x + cell_w / 2.0);
                let what = format!("{} {} × {field} = {}", t.id, t.label, columns[ci]);
                match cell {
                    Some(v) if v.count.is_none() => {
                        w!(
                            out,
                            "<g><title>{}: fewer than k verbatims, suppressed</title>\
                             <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#f0f0f0\" \
                             stroke=\"#fff\"/>\n<path d=\"{}\" stroke=\"#b5b5b5\" stroke-width=\"1\"/>\n\
                             <text x=\"{cx}\" y=\"{}\" text-anchor=\"middle\">&lt;k</text></g>\n",
                            esc(&what),
                            n(x),
                            n(y),
                            n(cell_w),
                            n(cell_h),
                            hatch(x, y, cell_w, cell_h, 6.0),
                            n(y + 16.0)
                        );
                    }
                    Some(v) => {
                        let share = v.share.filter(|s| s.is_finite());
                        let fill = share
                            .map(|s| heat(if max > 0.0 { s / max } else { 0.0 }))
                            .unwrap_or(Rgb(0xf0, 0xf0, 0xf0));
                        w!(
                            out,
                            "<g><title>{}: {} verbatims, {} of {}</title>\
                             <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" \
                             stroke=\"#fff\"/>\n<text x=\"{cx}\" y=\"{}\" text-anchor=\"middle\"{}>{}</text></g>\n",
                            esc(&what),
                            v.count.map(int).unwrap_or_default(),
                            share.map(pct).unwrap_or_else(|| "—".to_string()),
                            esc(&columns[ci]),
                            n(x),
                            n(y),
                            n(cell_w),
                            n(cell_h),
                            fill.hex(),
                            n(y + 16.0),
                            if fill.wants_white_text() { " class=\"inv\"" } else { "" },
                            share.map(pct).unwrap_or_else(|| "—".to_string())
                        );
                    }
                    None => {
                        w!(
                            out,
                            "<g><title>{}: none</title><rect x=\"{}\" y=\"{}\" width=\"{}\" \
                             height=\"{}\" fill=\"#fff\" stroke=\"#e6e6e6\"/>\n\
                             <text x=\"{cx}\" y=\"{}\" text-anchor=\"middle\" class=\"muted\">·</text></g>\n",
                            esc(&what),
                            n(x),
                            n(y),
                            n(cell_w),
                            n(cell_h),
                            n(y + 16.0)
                        );
                    }
                }
            }
        }
        // Legend: five steps of the scale, then the suppressed swatch.
        let mut x = lw;
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"axis\">share of {}</text>\n",
            n(lw - 8.0),
            n(legend_y + 12.0),
            esc(&shorten(field, 14))
        );
        for k in 0..5 {
            let t = k as f64 / 4.0;
            w!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"40\" height=\"14\" fill=\"{}\"/>\n",
                n(x),
                n(legend_y + 1.0),
                heat(t).hex()
            );
            x += 40.0;
        }
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" class=\"axis\">0%</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"axis\">{}</text>\n",
            n(lw),
            n(legend_y + 26.0),
            n(lw + 200.0),
            n(legend_y + 26.0),
            pct(max)
        );
        x += 24.0;
        w!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"28\" height=\"14\" fill=\"#f0f0f0\"/>\
             <path d=\"{}\" stroke=\"#b5b5b5\" stroke-width=\"1\"/>\
             <text x=\"{}\" y=\"{}\" class=\"axis\">&lt;k suppressed</text>\n",
            n(x),
            n(legend_y + 1.0),
            hatch(x, legend_y + 1.0, 28.0, 14.0, 5.0),
            n(x + 34.0),
            n(legend_y + 12.0)
        );
        out.push_str("</svg>\n");
    }
    out.push_str(
        "<p class=\"note\">Share of each segment value's verbatims that are in the theme. \
         Hatched &lt;k: fewer than k verbatims, suppressed; · none.</p>\n</figure>\n",
    );
}

/// (5) Diverging bars of each theme's impact on the score, largest drag first.
fn chart_drivers(out: &mut String, r: &Report, lw: f64) {
    let mut drivers: Vec<(&ThemeSummary, f64)> = r
        .themes
        .iter()
        .filter_map(|t| t.score.as_ref().map(|s| (t, s.impact)))
        .filter(|(_, i)| i.is_finite())
        .collect();
    if drivers.is_empty() {
        return;
    }
    drivers.sort_by(|(a, ia), (b, ib)| ib.total_cmp(ia).then_with(|| a.id.cmp(&b.id)));
    let head_h = 24.0;
    let h = head_h + drivers.len() as f64 * ROW_H + 6.0;
    let centre = lw + (CHART_W - lw) / 2.0;
    let half = (CHART_W - lw) / 2.0 - 56.0;
    let max = drivers.iter().map(|(_, i)| i.abs()).fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { half / max } else { 0.0 };

    out.push_str("<figure>\n<figcaption>Score drivers</figcaption>\n");
    svg_open(
        out,
        "fig-drivers",
        CHART_W,
        h,
        "Score drivers",
        "For each scored theme, how much the overall mean score would move without its \
         verbatims: bars to the right pull the score down, bars to the left hold it up.",
    );
    w!(
        out,
        "<text x=\"{}\" y=\"15\" text-anchor=\"end\" class=\"muted\">◀ holds the score up</text>\
         <text x=\"{}\" y=\"15\" class=\"muted\">pulls the score down ▶</text>\n",
        n(centre - 8.0),
        n(centre + 8.0)
    );
    for (i, (t, impact)) in drivers.iter().enumerate() {
        let y = head_h + i as f64 * ROW_H;
        let bw = (impact.abs() * scale).max(if *impact != 0.0 { 1.0 } else { 0.0 });
        let (x, colour) = if *impact >= 0.0 {
            (centre, C_NEG)
        } else {
            (centre - bw, C_POS)
        };
        let s = t.score.as_ref();
        w!(
            out,
            "<g><title>{} {}: impact {}; mean {} against {} for the rest ({} scored)</title>\n",
            esc(&t.id),
            esc(&t.label),
            signed(*impact, 2),
            s.map(|s| fixed(s.mean, 2)).unwrap_or_default(),
            s.map(|s| fixed(s.rest_mean, 2)).unwrap_or_default(),
            s.map(|s| int(s.scored)).unwrap_or_default()
        );
        svg_theme_label(out, lw - 8.0, y + 17.0, t, lw);
        w!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\"/>\n",
            n(x),
            n(y + (ROW_H - BAR_H) / 2.0),
            n(bw),
            n(BAR_H)
        );
        let (tx, anchor) = if *impact >= 0.0 {
            (centre + bw + 6.0, "start")
        } else {
            (centre - bw - 6.0, "end")
        };
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\" class=\"b\">{}</text>\n</g>\n",
            n(tx),
            n(y + 17.0),
            signed(*impact, 2)
        );
    }
    w!(
        out,
        "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{C_AXIS}\"/>\n</svg>\n",
        n(head_h - 4.0),
        n(h - 2.0),
        x = n(centre)
    );
    if let Some(mean) = r.score_mean {
        w!(
            out,
            "<p class=\"note\">Impact: the overall mean score ({}) without the theme's verbatims, \
             minus the overall mean.</p>\n",
            fixed(mean, 2)
        );
    }
    out.push_str("</figure>\n");
}

/// Diagonal hatching of a rectangle as one path (no `<pattern>`: it would need `url(#…)`).
fn hatch(x: f64, y: f64, w: f64, h: f64, gap: f64) -> String {
    let mut d = String::new();
    let mut t = gap;
    // Lines a + b = t inside [0, w] × [0, h], from the top-right end to the bottom-left end.
    while t < w + h {
        let a = t.min(w);
        let b = t.min(h);
        w!(
            d,
            "M{} {}L{} {}",
            n(x + a),
            n(y + t - a),
            n(x + t - b),
            n(y + b)
        );
        t += gap;
    }
    d
}

/// An sRGB colour.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rgb(u8, u8, u8);

impl Rgb {
    fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// WCAG relative luminance.
    fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(self.0) + 0.7152 * lin(self.1) + 0.0722 * lin(self.2)
    }

    /// Whether white text contrasts more than near-black text on this background.
    fn wants_white_text(self) -> bool {
        let l = self.luminance();
        1.05 / (l + 0.05) > (l + 0.05) / 0.05
    }
}

/// The heat-map scale at `t` in [0, 1]: ColorBrewer "Blues" (sequential, colour-blind safe,
/// prints in grey as light-to-dark).
fn heat(t: f64) -> Rgb {
    const STOPS: [Rgb; 5] = [
        Rgb(0xef, 0xf3, 0xff),
        Rgb(0xbd, 0xd7, 0xe7),
        Rgb(0x6b, 0xae, 0xd6),
        Rgb(0x31, 0x82, 0xbd),
        Rgb(0x08, 0x51, 0x9c),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (STOPS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * f).round() as u8;
    Rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

// ---------------------------------------------------------------------------------------------
// Facts derived from the report, shared by the formats
// ---------------------------------------------------------------------------------------------

/// How long the top quote may be in the Markdown themes table.
const TOP_QUOTE_CHARS: usize = 120;

/// Where a theme's trend is heading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Rising,
    Falling,
    Flat,
}

impl Direction {
    fn arrow(self) -> &'static str {
        match self {
            Direction::Rising => "↗",
            Direction::Falling => "↘",
            Direction::Flat => "→",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Direction::Rising => "rising",
            Direction::Falling => "falling",
            Direction::Flat => "flat",
        }
    }
}

/// The median share of the last periods (up to 3, at most half) against the median of the
/// earlier ones: more than 10% higher is rising, more than 10% lower falling (the thresholds of
/// [`Change`]). Medians, so that one spike does not set the direction (spikes are marked on
/// their own). `None` with fewer than two periods.
fn direction(t: &Trend) -> Option<Direction> {
    let n = t.points.len();
    if n < 2 {
        return None;
    }
    let k = (n / 2).min(3);
    let (before, recent) = t.points.split_at(n - k);
    let (b, r) = (median_share(before)?, median_share(recent)?);
    Some(if r > b * 1.1 && r > b {
        Direction::Rising
    } else if r < b * 0.9 {
        Direction::Falling
    } else {
        Direction::Flat
    })
}

/// Median share of some periods; `None` if there are none or one is not finite.
fn median_share(points: &[TrendPoint]) -> Option<f64> {
    let mut shares: Vec<f64> = points.iter().map(|p| p.share).collect();
    if shares.is_empty() || shares.iter().any(|s| !s.is_finite()) {
        return None;
    }
    shares.sort_by(f64::total_cmp);
    let mid = shares.len() / 2;
    Some(if shares.len().is_multiple_of(2) {
        (shares[mid - 1] + shares[mid]) / 2.0
    } else {
        shares[mid]
    })
}

/// The period with the largest share (the first of equals).
fn peak(t: &Trend) -> Option<&TrendPoint> {
    t.points
        .iter()
        .filter(|p| p.share.is_finite())
        .fold(None, |best: Option<&TrendPoint>, p| match best {
            Some(b) if b.share >= p.share => Some(b),
            _ => Some(p),
        })
}

fn spikes(t: &Trend) -> Vec<&TrendPoint> {
    t.points.iter().filter(|p| p.spike).collect()
}

fn has_spike(t: &Trend) -> bool {
    t.points.iter().any(|p| p.spike)
}

/// A trend in words, for tooltips.
fn trend_words(t: &Trend) -> String {
    let mut s = match direction(t) {
        Some(d) => d.word().to_string(),
        None => "no trend".to_string(),
    };
    if let Some(p) = peak(t) {
        let _ = write!(s, "; peak {} in {}", pct(p.share), p.period);
    }
    let spikes: Vec<&str> = spikes(t).iter().map(|p| p.period.as_str()).collect();
    if !spikes.is_empty() {
        let _ = write!(s, "; spikes: {}", spikes.join(", "));
    }
    s
}

/// Positive, neutral and negative shares; `None` without verbatims.
fn sentiment_shares(s: &SentimentSummary) -> Option<[f64; 3]> {
    let total = s.positive + s.neutral + s.negative;
    (total > 0).then(|| {
        [
            ratio(s.positive, total),
            ratio(s.neutral, total),
            ratio(s.negative, total),
        ]
    })
}

/// "40% positive, 20% neutral, 40% negative; mean -0.12".
fn sentiment_words(s: &SentimentSummary) -> String {
    match sentiment_shares(s) {
        Some([p, n, g]) => format!(
            "{} positive, {} neutral, {} negative; mean {}",
            whole_pct(p),
            whole_pct(n),
            whole_pct(g),
            signed(s.mean, 2)
        ),
        None => "no verbatims".to_string(),
    }
}

/// The largest class: "60% negative" (ties: positive, neutral, negative).
fn sentiment_short(s: &SentimentSummary) -> String {
    match sentiment_shares(s) {
        Some(shares) => {
            let mut best = 0;
            for (i, share) in shares.iter().enumerate() {
                if *share > shares[best] {
                    best = i;
                }
            }
            format!(
                "{} {}",
                whole_pct(shares[best]),
                ["positive", "neutral", "negative"][best]
            )
        }
        None => "—".to_string(),
    }
}

/// "40% / 20% / 40%" for a table cell.
fn sentiment_cell(s: &SentimentSummary) -> String {
    match sentiment_shares(s) {
        Some([p, n, g]) => format!("{} / {} / {}", whole_pct(p), whole_pct(n), whole_pct(g)),
        None => "—".to_string(),
    }
}

fn polarity_word(p: Polarity) -> &'static str {
    match p {
        Polarity::Positive => "positive",
        Polarity::Neutral => "neutral",
        Polarity::Negative => "negative",
    }
}

fn change_word(c: Option<Change>) -> &'static str {
    c.map_or("—", Change::word)
}

fn change_badge(c: Change) -> &'static str {
    match c {
        Change::New => "● new",
        Change::Grew => "▲ grew",
        Change::Shrank => "▼ shrank",
        Change::Stable => "= stable",
        Change::Vanished => "× vanished",
    }
}

fn impact_words(impact: f64) -> &'static str {
    if impact > 0.0 {
        "pulls the overall score down"
    } else if impact < 0.0 {
        "holds the overall score up"
    } else {
        "no effect on the overall score"
    }
}

/// "V123 · 2024-03-02 · negative".
fn quote_source(q: &Quote) -> String {
    match &q.date {
        Some(d) => format!("{} · {} · {}", q.id, d, polarity_word(q.sentiment)),
        None => format!("{} · {}", q.id, polarity_word(q.sentiment)),
    }
}

/// The k of an aggregates-only report (`parameters.min_cell` > 0), if it is one.
fn aggregates_only(r: &Report) -> Option<u64> {
    r.manifest
        .parameters
        .get("min_cell")
        .and_then(|v| v.as_u64())
        .filter(|k| *k > 0)
}

fn has_suppressed(segments: &[SegmentBreakdown]) -> bool {
    segments
        .iter()
        .any(|b| b.values.iter().any(|v| v.count.is_none()))
}

/// Segment fields: the report's list, then any other field a breakdown names (first seen).
fn segment_fields(r: &Report) -> Vec<String> {
    let mut fields = r.segment_fields.clone();
    for t in &r.themes {
        for b in &t.segments {
            if !fields.contains(&b.field) {
                fields.push(b.field.clone());
            }
        }
    }
    fields
}

/// The values of one segment field over all themes: largest total count first, then name.
fn segment_columns(r: &Report, field: &str) -> Vec<String> {
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    for b in r
        .themes
        .iter()
        .flat_map(|t| &t.segments)
        .filter(|b| b.field == field)
    {
        for v in &b.values {
            *totals.entry(v.value.as_str()).or_default() += v.count.unwrap_or(0);
        }
    }
    let mut columns: Vec<(&str, usize)> = totals.into_iter().collect();
    columns.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    columns.into_iter().map(|(v, _)| v.to_string()).collect()
}

/// Unique HTML anchors for the theme sections: `theme-<id>` made URL-safe.
fn anchors(themes: &[ThemeSummary]) -> Vec<String> {
    let mut used = BTreeSet::new();
    themes
        .iter()
        .map(|t| {
            let safe: String =
                t.id.chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
            let base = format!("theme-{safe}");
            let mut anchor = base.clone();
            let mut k = 2;
            while !used.insert(anchor.clone()) {
                anchor = format!("{base}-{k}");
                k += 1;
            }
            anchor
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Numbers and text
// ---------------------------------------------------------------------------------------------

/// `part / whole`, 0 when `whole` is 0.
fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// `x` with `decimals` decimals; "—" when not finite; never "-0.0".
fn fixed(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "—".to_string();
    }
    let s = format!("{x:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// `x` with an explicit sign ("+0.21", "-0.12", "0.00").
fn signed(x: f64, decimals: usize) -> String {
    let s = fixed(x, decimals);
    if s.starts_with('-') || s == "—" || s.chars().all(|c| c == '0' || c == '.') {
        s
    } else {
        format!("+{s}")
    }
}

/// A share as a percentage with one decimal: "12.3%".
fn pct(share: f64) -> String {
    match fixed(share * 100.0, 1) {
        s if s == "—" => s,
        s => format!("{s}%"),
    }
}

/// A share as a whole percentage: "12%".
fn whole_pct(share: f64) -> String {
    match fixed(share * 100.0, 0) {
        s if s == "—" => s,
        s => format!("{s}%"),
    }
}

/// A count with thousands separators: "12,345".
fn int(x: usize) -> String {
    let digits = x.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An SVG coordinate: one decimal, without a trailing ".0"; 0 if not finite.
fn n(x: f64) -> String {
    let s = fixed(if x.is_finite() { x } else { 0.0 }, 1);
    match s.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => s,
    }
}

/// `s` on one line, cut to at most `max` characters at a word boundary when one is near, with
/// "…" when cut.
fn shorten(s: &str, max: usize) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let keep: String = line.chars().take(max.saturating_sub(1)).collect();
    let cut = match keep.rfind(' ') {
        Some(i) if keep[i..].chars().count() <= 20 => &keep[..i],
        _ => keep.as_str(),
    };
    format!("{}…", cut.trim_end_matches([' ', ',', ';', ':', '.', '-']))
}

/// The manifest of a report this module wrote, in any of its formats: the JSON data (or a bare
/// manifest), the Markdown's fenced block under "## Manifest", or the HTML footer. `None` when
/// the text holds none (for `verbatim report --from-manifest`).
pub fn read_manifest(text: &str) -> Option<super::types::ReportManifest> {
    use super::types::ReportManifest;
    let t = text.trim_start();
    if t.starts_with('{') {
        if let Ok(r) = serde_json::from_str::<Report>(t) {
            return Some(r.manifest);
        }
        return serde_json::from_str::<ReportManifest>(t).ok();
    }
    if let Some(i) = text.rfind("\n## Manifest\n") {
        let rest = &text[i..];
        let open = rest.find("json\n")? + "json\n".len();
        let body = &rest[open..];
        // The closing fence: the last line made of backticks only.
        let end = body.rfind("\n`")?;
        return serde_json::from_str(&body[..end]).ok();
    }
    let footer = &text[text.find("<footer class=\"manifest\"")?..];
    let field = |name: &str| -> Option<String> {
        let start = footer.find(&format!("<dt>{name}</dt><dd>"))? + name.len() + 13;
        let end = start + footer[start..].find("</dd>")?;
        let inner = footer[start..end]
            .replace("<pre>", "")
            .replace("</pre>", "")
            .replace("<code>", "")
            .replace("</code>", "");
        Some(unesc(&inner))
    };
    let period = field("Period").and_then(|p| {
        p.split_once(" to ")
            .map(|(a, b)| (a.to_string(), b.to_string()))
    });
    // Through JSON, so fields added to the manifest later with a default still read.
    let parameters: serde_json::Value = serde_json::from_str(&field("Parameters")?).ok()?;
    serde_json::from_value(serde_json::json!({
        "version": field("verbatim version")?,
        "data_snapshot": field("Data snapshot")?,
        "model": field("Embedding model")?,
        "sentiment_model": field("Sentiment model")?,
        "parameters": parameters,
        "period": period,
    }))
    .ok()
}

/// The inverse of [`esc`].
fn unesc(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Length of the longest run of `c` in `s`.
fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for x in s.chars() {
        run = if x == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Text escaped for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Text made inert on one Markdown line (table cell, list item, heading): whitespace, line
/// breaks included, collapsed to single spaces, then [`md_line`].
fn md(s: &str) -> String {
    md_line(&s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// One line of text made inert in Markdown: it cannot start a heading, list, block quote,
/// setext underline or indented code; backslashes, code spans, emphasis, strike-through, links
/// and table pipes are backslash-escaped; `<` becomes `&lt;` (no raw HTML or autolink), and `&`
/// becomes `&amp;` where it would start an entity.
fn md_line(line: &str) -> String {
    let line = line.trim();
    let mut out = String::with_capacity(line.len() + 8);
    // An ordered-list marker: digits then '.' or ')'; escape that punctuation.
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    let list_mark =
        (digits > 0 && matches!(line[digits..].chars().next(), Some('.' | ')'))).then_some(digits);
    if matches!(line.chars().next(), Some('#' | '>' | '-' | '+' | '=')) {
        out.push('\\');
    }
    for (i, c) in line.char_indices() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '&' if starts_entity(&line[i + 1..]) => out.push_str("&amp;"),
            _ => {
                if Some(i) == list_mark {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
    out
}

/// Whether the text after an `&` would make it an HTML entity (`&amp;`, `&#39;`, `&#x27;`).
fn starts_entity(rest: &str) -> bool {
    let body = rest.strip_prefix('#').unwrap_or(rest);
    let len = body.chars().take_while(char::is_ascii_alphanumeric).count();
    (1..=32).contains(&len) && body[len..].starts_with(';')
}

#[cfg(test)]
mod tests {
    use super::super::types::{ReportManifest, ScoreDriver, SegmentValue, VanishedTheme};
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
            "http://", "https://", "src=", "<link", "@import", "url(", "<script", "<iframe",
            "<object", "<embed", "<img",
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
            let open = html.matches(&format!("<{tag}>")).count()
                + html.matches(&format!("<{tag} ")).count();
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
        assert!(
            html.contains("T5 price increase × country = UK: fewer than k verbatims, suppressed")
        );
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
}
