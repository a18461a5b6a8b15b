//! The HTML page: header, table of contents, the charts (from [`super::svg`]), one section per
//! theme, the vanished themes and the manifest footer.

use std::fmt::Write as _;

use super::super::types::{Report, SentimentSummary, ThemeSummary};
use super::facts::*;
use super::svg::*;
use super::text::*;

/// The report as one self-contained HTML page (inline CSS and SVG, no script, no fetch).
pub fn html(r: &Report) -> String {
    if r.tree {
        return super::tree::html_tree(r);
    }
    let mut out = String::with_capacity(96 * 1024);
    let anchors = anchors(&r.themes);
    html_open(&mut out, r, "");

    html_header(&mut out, r);
    html_priorities(&mut out, r, &anchors);
    html_toc(&mut out, r, &anchors);

    out.push_str("<main>\n<section id=\"overview\">\n<h2>Overview</h2>\n");
    if r.themes.is_empty() {
        out.push_str("<p>No themes in this report.</p>\n");
    } else {
        let lw = label_width(&r.themes);
        chart_sizes(&mut out, r, lw);
        // The detail charts, collapsed: the page's first screens say what to fix first.
        let mut more = String::new();
        chart_sentiment(&mut more, r, lw);
        collapsed(&mut out, "Sentiment of every theme", &more);
        more.clear();
        chart_trends(&mut more, r, lw);
        collapsed(&mut out, "Trends of every theme", &more);
        more.clear();
        chart_segments(&mut more, r, lw);
        collapsed(&mut out, "Segments: where each theme is said", &more);
        more.clear();
        chart_drivers(&mut more, r, lw);
        collapsed(
            &mut out,
            "Score drivers: what each theme does to the score",
            &more,
        );
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

/// The page's head (CSP forbidding every fetch, styles: [`CSS`] then `extra_css`) and the
/// opening of its body.
pub(super) fn html_open(out: &mut String, r: &Report, extra_css: &str) {
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
        "<title>{}</title>\n<style>\n{CSS}{extra_css}</style>\n</head>\n<body>\n",
        esc(&r.title)
    );
    out.push_str("<div class=\"page\">\n");
}

/// Styles of the page. Colours: text contrast ≥ 7:1 (muted text ≥ 4.5:1); sentiment uses the
/// Okabe–Ito blue / vermillion pair (told apart by every common colour-vision deficiency) with
/// a light grey for neutral, and every colour also comes with a word or a number.
pub(super) const CSS: &str = r#":root{color-scheme:light}
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
article.theme{border-top:1px solid #d0d0d0;padding:.8rem 0 .6rem}
.tid{display:inline-block;font:600 .8em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eceff3;color:#1a1a1a;border-radius:4px;padding:.05em .4em;margin-right:.35em;vertical-align:.1em}
.badge{display:inline-block;font-size:.72rem;font-weight:600;text-transform:uppercase;letter-spacing:.04em;border-radius:999px;padding:.1em .6em;margin-left:.4em;vertical-align:.2em;border:1px solid currentColor}
.badge.new{color:#5a2d82}.badge.grew{color:#8a3a00}.badge.shrank{color:#0b4f8a}.badge.stable{color:#444}.badge.vanished{color:#444}.badge.seeded{color:#2d5a27}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.4rem 0 .6rem}
dl.facts dt{color:#555}
dl.facts dd{margin:0}
ul.kw{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.3rem}
ul.kw li{background:#f1f3f5;border:1px solid #dde1e5;border-radius:4px;padding:0 .45em;font-size:.9rem}
.sbar{display:inline-flex;height:12px;width:160px;max-width:100%;border-radius:3px;overflow:hidden;margin:0 .6em 0 0;vertical-align:-.1em;border:1px solid #bbb}
.cards .sbar{display:flex;width:100%;margin:.35rem 0 .1rem}
.sbar span{display:block;height:100%}
td.mix{white-space:nowrap}
.pos{background:#0072b2}.neu{background:#c8c8c8}.neg{background:#b84f00}
blockquote{margin:.5rem 0;padding:.4rem .9rem;border-left:4px solid #c8c8c8;background:#fafafa}
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
#fix-first h2{margin-top:1.4rem}
ol.prio{margin:.4rem 0;padding-left:1.6rem}
ol.prio li{margin:.3rem 0}
.pbar{display:inline-block;width:90px;height:10px;background:#f1e4da;border-radius:2px;margin-right:.6em;vertical-align:0}
.pbar span{display:block;height:100%;background:#b84f00;border-radius:2px}
details.more{margin:.6rem 0}
details.more>summary{cursor:pointer;color:#0b4f8a;font-weight:600}
nav.toc summary{cursor:pointer;color:#0b4f8a}
mark{background:#fff0b3;color:inherit;padding:0 .1em}
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
pub(super) fn html_header(out: &mut String, r: &Report) {
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
    if r.tree {
        // A verbatim is in every node one of its units is in: coverage is what "other" leaves.
        let b = super::tree::branches(r);
        w!(
            out,
            "<div><dt>Aspects</dt><dd>{}<small>{} children</small></dd></div>\n",
            b.len(),
            b.iter().map(|x| x.1.len()).sum::<usize>()
        );
    } else {
        let covered: usize = r.themes.iter().map(|t| t.size).sum();
        w!(
            out,
            "<div><dt>Themes</dt><dd>{}<small>covering {}</small></dd></div>\n",
            r.themes.len(),
            pct(ratio(covered, r.verbatims))
        );
    }
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

/// `body` inside a closed `<details>` under `summary` (nothing when `body` is empty): a long
/// part of the page, one click away, with no script.
pub(super) fn collapsed(out: &mut String, summary: &str, body: &str) {
    if body.is_empty() {
        return;
    }
    w!(
        out,
        "<details class=\"more\"><summary>{}</summary>\n{body}</details>\n",
        esc(summary)
    );
}

/// Problem themes listed at the top; more behind a "more" toggle.
pub(super) const PRIORITIES_SHOWN: usize = 5;

/// "What to fix first": the problem themes by priority, a bar each (volume × negativity ×
/// score drag), and the formula under the list.
pub(super) fn html_priorities(out: &mut String, r: &Report, anchors: &[String]) {
    if r.themes.is_empty() {
        return;
    }
    out.push_str("<section id=\"fix-first\">\n<h2>What to fix first</h2>\n");
    if r.priorities.is_empty() {
        out.push_str(
            "<p>No theme is more negative than the verbatims as a whole, and none pulls the \
             score down.</p>\n",
        );
    } else {
        let top = r.priorities[0].priority.max(f64::MIN_POSITIVE);
        let item = |out: &mut String, p: &crate::themes::priority::Priority| {
            let anchor = r
                .themes
                .iter()
                .position(|t| t.id == p.id)
                .and_then(|i| anchors.get(i));
            // A child of the tree says its parent: "Packaging › arrived crushed".
            let text = match &p.parent_label {
                Some(parent) => format!("{parent} › {}", p.label),
                None => p.label.clone(),
            };
            let label = match anchor {
                Some(a) => format!("<a href=\"#{}\">{}</a>", esc(a), esc(&text)),
                None => esc(&text),
            };
            let effect = crate::themes::priority::priority_effect(p);
            w!(
                out,
                "<li><span class=\"pbar\" role=\"img\" aria-label=\"priority {}\">\
                 <span style=\"width:{}%\"></span></span><span class=\"tid\">{}</span>{} \
                 <span class=\"muted\">{} of verbatims · {} negative{}</span></li>\n",
                fixed(p.priority, 4),
                fixed(100.0 * p.priority / top, 1),
                esc(&p.id),
                label,
                pct(p.share),
                whole_pct(p.negative),
                if effect.is_empty() {
                    String::new()
                } else {
                    format!(" · {}", esc(&effect))
                }
            );
        };
        out.push_str("<ol class=\"prio\">\n");
        for p in r.priorities.iter().take(PRIORITIES_SHOWN) {
            item(out, p);
        }
        out.push_str("</ol>\n");
        if r.priorities.len() > PRIORITIES_SHOWN {
            let mut more = format!("<ol class=\"prio\" start=\"{}\">\n", PRIORITIES_SHOWN + 1);
            for p in &r.priorities[PRIORITIES_SHOWN..] {
                item(&mut more, p);
            }
            more.push_str("</ol>\n");
            collapsed(
                out,
                &format!(
                    "{} more problem themes",
                    r.priorities.len() - PRIORITIES_SHOWN
                ),
                &more,
            );
        }
    }
    w!(
        out,
        "<p class=\"note\">{}</p>\n</section>\n",
        esc(crate::themes::priority::FORMULA)
    );
}

/// A small 100% bar of positive / neutral / negative in HTML (empty without verbatims).
pub(super) fn sentiment_bar(s: &SentimentSummary) -> String {
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
pub(super) fn html_toc(out: &mut String, r: &Report, anchors: &[String]) {
    if r.themes.is_empty() {
        return;
    }
    w!(
        out,
        "<nav class=\"toc\" aria-label=\"Themes\">\n<details><summary>All {} themes, \
         largest first</summary>\n<ol>\n",
        r.themes.len()
    );
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
    out.push_str("</ol>\n</details>\n</nav>\n");
}

/// One quote: its highlight marked inside the verbatim, cut around it
/// ([`excerpt`]); the border shows the highlight's polarity.
pub(super) fn html_quote(out: &mut String, q: &crate::themes::Quote) {
    let e = excerpt(q, QUOTE_CONTEXT);
    w!(
        out,
        "<blockquote class=\"{}\"><p>{}{}",
        polarity_word(quote_polarity(q)),
        if e.cut_before { "…" } else { "" },
        esc(e.before)
    );
    if !e.mark.is_empty() {
        w!(out, "<mark>{}</mark>{}", esc(e.mark), esc(e.after));
    }
    w!(
        out,
        "{}</p><footer>{}</footer></blockquote>\n",
        if e.cut_after { "…" } else { "" },
        esc(&quote_source(q))
    );
}

/// Quotes shown open under a theme; the rest are behind its "more" toggle.
pub(super) const QUOTES_SHOWN: usize = 1;

/// One theme's section: heading, the facts and its leading quote; keywords, the other quotes
/// and the segment tables collapsed.
pub(super) fn html_theme(out: &mut String, t: &ThemeSummary, anchor: &str) {
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
    out.push_str("<dt>Sentiment</dt><dd>");
    out.push_str(&sentiment_bar(&t.sentiment));
    w!(out, "{}</dd>\n", esc(&sentiment_words(&t.sentiment)));

    if html_trend_open(out, &t.trend) {
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
        html_score(out, s, driver_words);
    }
    out.push_str("</dl>\n");

    for q in t.quotes.iter().take(QUOTES_SHOWN) {
        html_quote(out, q);
    }

    let mut more = String::new();
    if !t.keywords.is_empty() {
        more.push_str("<p><span class=\"muted\">Keywords</span></p><ul class=\"kw\">");
        for k in &t.keywords {
            w!(more, "<li>{}</li>", esc(k));
        }
        more.push_str("</ul>\n");
    }
    for q in t.quotes.iter().skip(QUOTES_SHOWN) {
        html_quote(&mut more, q);
    }
    html_segments(&mut more, t);
    let mut parts = Vec::new();
    if !t.keywords.is_empty() {
        parts.push("keywords".to_string());
    }
    match t.quotes.len().saturating_sub(QUOTES_SHOWN) {
        0 => {}
        1 => parts.push("1 more quote".to_string()),
        n => parts.push(format!("{n} more quotes")),
    }
    if t.segments.iter().any(|b| !b.values.is_empty()) {
        parts.push("segments".to_string());
    }
    collapsed(out, &format!("More: {}", parts.join(", ")), &more);
    out.push_str("</article>\n");
}

/// Opens a theme's trend fact — "<dt>Trend</dt><dd>↗ rising by month: 8.0% → 11.5% …" — and
/// says whether it did (not without a direction); the caller adds to it and closes the `<dd>`.
pub(super) fn html_trend_open(out: &mut String, trend: &crate::themes::Trend) -> bool {
    let Some(d) = direction(trend) else {
        return false;
    };
    w!(
        out,
        "<dt>Trend</dt><dd>{} {} by {}",
        d.arrow(),
        d.word(),
        esc(&trend.granularity)
    );
    if let Some(delta) = trend_delta(trend) {
        w!(out, ": {}", esc(&delta));
    }
    true
}

/// A theme's score fact: the effect in `words`, the theme's mean against the rest's.
pub(super) fn html_score(
    out: &mut String,
    s: &crate::themes::ScoreDriver,
    words: fn(&crate::themes::ScoreDriver) -> String,
) {
    w!(
        out,
        "<dt>Score</dt><dd><b>{}</b> · mean {} vs {} for the rest ({} scored)</dd>\n",
        esc(&words(s)),
        fixed(s.mean, 2),
        fixed(s.rest_mean, 2),
        int(s.scored)
    );
}

/// A theme's segment tables.
pub(super) fn html_segments(out: &mut String, t: &ThemeSummary) {
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
}

/// The footer: everything needed to reproduce the report.
pub(super) fn html_manifest(out: &mut String, r: &Report) {
    let m = &r.manifest;
    out.push_str("<footer class=\"manifest\" id=\"manifest\">\n<h2>Manifest</h2>\n");
    out.push_str(
        "<p class=\"muted\">What this report was made from: the same data snapshot, models and \
         parameters give the same report, byte for byte.</p>\n<details class=\"more\">\
         <summary>Data snapshot, models and parameters</summary>\n<dl>\n",
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
    out.push_str("</dl>\n</details>\n</footer>\n");
}
