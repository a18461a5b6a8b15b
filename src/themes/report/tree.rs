//! The report on the aspect tree (`report --by aspect`, the default): what to fix first among
//! the children with a priority chart, the tree (parents with their children) as one table,
//! then per parent its children, each collapsed to one line that opens on its facts, quotes and
//! every one of its units (the drill-down), the unit marked inside its verbatim, cut around it.
//!
//! **Why collapsed.** A tree of 5–12 parents and 10–90 children with every unit runs to tens of
//! thousands of lines; open, nobody reads past the first screens. The page opens on what to fix
//! first, the chart and the table (a screen or two), and each child is one `<details>` line
//! (no script: the browser opens it), so the page stays short however much it holds, and
//! prints or searches (Ctrl-F opens nothing, but the table names every child).
//!
//! **Shares.** A verbatim counts in every node one of its units is in: shares are "% of
//! verbatims" and add up to more than 100% — said under the table.

use std::fmt::Write as _;

use super::super::types::{Report, ThemeSummary};
use super::facts::*;
use super::html::{
    html_header, html_manifest, html_open, html_priorities, html_quote, html_score, html_trend_open,
};
use super::markdown::{markdown_priorities, markdown_scope_lines, markdown_trend_and_score};
use super::svg::*;
use super::text::*;

/// Parents of the report, each with its children, in the report's order.
pub(super) fn branches(r: &Report) -> Vec<(&ThemeSummary, Vec<&ThemeSummary>)> {
    let mut out: Vec<(&ThemeSummary, Vec<&ThemeSummary>)> = Vec::new();
    for t in &r.themes {
        match (&t.parent, out.last_mut()) {
            (Some(_), Some(last)) => last.1.push(t),
            _ => out.push((t, Vec::new())),
        }
    }
    out
}

/// The tree report as one HTML page.
pub(super) fn html_tree(r: &Report) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let anchors = anchors(&r.themes);
    html_open(&mut out, r, TREE_CSS);
    html_header(&mut out, r);
    html_priorities(&mut out, r, &anchors);
    chart_priority(&mut out, r);
    out.push_str("<main>\n");
    html_tree_table(&mut out, r, &anchors);
    if !r.themes.is_empty() {
        out.push_str("<section id=\"children\">\n<h2>Children in detail</h2>\n");
        out.push_str(
            "<p class=\"note\">Each line opens on the child's facts, its quotes and every one \
             of its opinion units, marked inside its verbatim.</p>\n",
        );
        let anchor_of = |t: &ThemeSummary| {
            r.themes
                .iter()
                .position(|x| x.id == t.id)
                .and_then(|i| anchors.get(i))
                .cloned()
                .unwrap_or_default()
        };
        for (p, kids) in branches(r) {
            w!(
                out,
                "<article class=\"theme parent\" id=\"{}\">\n<h3><span class=\"tid\">{}</span>{}\
                 <span class=\"muted small\"> · {} of verbatims · {}</span></h3>\n",
                esc(&anchor_of(p)),
                esc(&p.id),
                esc(&p.label),
                pct(p.share),
                esc(&sentiment_short(&p.sentiment))
            );
            for q in p.quotes.iter().take(1) {
                html_quote(&mut out, q);
            }
            for c in kids {
                html_child(&mut out, c, &anchor_of(c));
            }
            out.push_str("</article>\n");
        }
        out.push_str("</section>\n");
    }
    out.push_str("</main>\n");
    html_manifest(&mut out, r);
    out.push_str("</div>\n</body>\n</html>\n");
    out
}

/// Styles the tree page adds to the report's.
const TREE_CSS: &str = r#"table.tree{width:100%}
table.tree tr.p th{font-weight:600}
table.tree tr.p td,table.tree tr.p th{border-top:1.5px solid #bbb}
table.tree tr.c th{padding-left:1.6rem}
.small{font-size:.85rem;font-weight:400}
details.node{border-top:1px solid #e2e2e2;padding:.3rem 0}
details.node>summary{cursor:pointer}
details.node>summary .muted{font-size:.88rem}
details.units>summary{cursor:pointer;color:#0b4f8a;font-weight:600}
article.parent{padding-top:.4rem}
"#;

/// The change behind a rise or a fall in points of share ("+3.1 pts"), from the one rule;
/// `None` for a flat trend (a number next to "flat" reads as a change) or none.
pub(super) fn trend_points(t: &crate::themes::Trend) -> Option<String> {
    let s = crate::themes::analytics::trend_shift(&t.points)
        .filter(|s| !s.too_few && s.direction != crate::themes::TrendDirection::Flat)?;
    Some(format!(
        "{} pts",
        signed((s.recent - s.before) * 100.0, 1).replacen('-', "−", 1)
    ))
}

/// A node's score effect for a table cell ("−0.22", "+3.1 pp"), "—" without a score or when
/// the effect is not larger than its uncertainty.
fn effect_cell(t: &ThemeSummary) -> String {
    t.score
        .as_ref()
        .filter(|s| super::super::priority::significant(s))
        .map(driver_short)
        .filter(|s| s != "0")
        .unwrap_or_else(|| "—".into())
}

/// One row of numbers for a node: verbatims, share, sentiment, trend, score effect.
fn node_cells(t: &ThemeSummary) -> String {
    let trend = match direction(&t.trend) {
        Some(d) => {
            let delta = trend_delta(&t.trend).unwrap_or_default();
            format!(
                "<span title=\"{}\">{} {}{}</span>",
                esc(&delta),
                d.arrow(),
                d.word(),
                trend_points(&t.trend)
                    .map(|p| format!(" <span class=\"muted\">{}</span>", esc(&p)))
                    .unwrap_or_default()
            )
        }
        None => "—".into(),
    };
    let effect = effect_cell(t);
    format!(
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"mix\">{}{}</td>\
         <td>{}</td><td class=\"num\">{}</td>",
        int(t.size),
        pct(t.share),
        sentiment_bar(&t.sentiment),
        whole_pct(ratio(
            t.sentiment.negative,
            t.sentiment.positive + t.sentiment.neutral + t.sentiment.negative
        )),
        trend,
        esc(&effect)
    )
}

use super::html::sentiment_bar;

/// The tree as one table: each parent, its children indented under it.
fn html_tree_table(out: &mut String, r: &Report, anchors: &[String]) {
    out.push_str("<section id=\"tree\">\n<h2>The tree</h2>\n");
    if r.themes.is_empty() {
        out.push_str("<p>No themes in this report.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table class=\"tree\">\n<thead><tr><th>Aspect › what is said</th><th>Verbatims</th>\
         <th>% of verbatims</th><th>Negative</th><th>Trend</th><th>Score effect</th></tr>\
         </thead>\n<tbody>\n",
    );
    let link = |t: &ThemeSummary| {
        let a = r
            .themes
            .iter()
            .position(|x| x.id == t.id)
            .and_then(|i| anchors.get(i))
            .cloned()
            .unwrap_or_default();
        format!(
            "<a href=\"#{}\"><span class=\"tid\">{}</span>{}</a>",
            esc(&a),
            esc(&t.id),
            esc(&t.label)
        )
    };
    for (p, kids) in branches(r) {
        w!(
            out,
            "<tr class=\"p\"><th>{}</th>{}</tr>\n",
            link(p),
            node_cells(p)
        );
        for c in kids {
            w!(
                out,
                "<tr class=\"c\"><th>{}</th>{}</tr>\n",
                link(c),
                node_cells(c)
            );
        }
    }
    out.push_str("</tbody>\n</table>\n");
    w!(
        out,
        "<p class=\"note\">A verbatim counts in every theme one of its opinion units is in, so \
         the shares (% of verbatims) add up to more than 100%; {} of the verbatims ({}) have no \
         unit in any theme. Negative: share of the theme's verbatims whose units in it read \
         negative. Trend: the last periods against the ones before (hover for the numbers). \
         Score effect: the theme's pull on the mean score, shown only when larger than its \
         uncertainty (1.96 standard errors).</p>\n</section>\n",
        pct(ratio(r.other, r.verbatims)),
        int(r.other)
    );
}

/// One child: a one-line summary that opens on its facts, quotes and every unit.
fn html_child(out: &mut String, t: &ThemeSummary, anchor: &str) {
    w!(
        out,
        "<details class=\"node\" id=\"{}\"><summary><span class=\"tid\">{}</span>{}{} \
         <span class=\"muted\">{} of verbatims · {} negative{}</span></summary>\n",
        esc(anchor),
        esc(&t.id),
        esc(&t.label),
        if t.seeded {
            "<span class=\"badge seeded\">seeded</span>"
        } else {
            ""
        },
        pct(t.share),
        whole_pct(ratio(
            t.sentiment.negative,
            t.sentiment.positive + t.sentiment.neutral + t.sentiment.negative
        )),
        match direction(&t.trend) {
            Some(d) => format!(" · {} {}", d.arrow(), d.word()),
            None => String::new(),
        }
    );
    out.push_str("<dl class=\"facts\">\n");
    w!(
        out,
        "<dt>Size</dt><dd>{} verbatims · {} of all</dd>\n",
        int(t.size),
        pct(t.share)
    );
    w!(
        out,
        "<dt>Sentiment</dt><dd>{}{}</dd>\n",
        sentiment_bar(&t.sentiment),
        esc(&sentiment_words(&t.sentiment))
    );
    if html_trend_open(out, &t.trend) {
        out.push_str("</dd>\n");
    }
    if let Some(s) = &t.score {
        html_score(out, s, tree_driver_words);
    }
    out.push_str("</dl>\n");
    for q in &t.quotes {
        html_quote(out, q);
    }
    if !t.units.is_empty() {
        let mut all = String::new();
        for u in &t.units {
            html_quote(&mut all, u);
        }
        w!(
            out,
            "<details class=\"units\"><summary>All {} units</summary>\n{all}</details>\n",
            int(t.units.len())
        );
    }
    out.push_str("</details>\n");
}

/// A driver's effect in words, or "no measurable effect (within its uncertainty)" when it is
/// not larger than 1.96 standard errors.
pub(super) fn tree_driver_words(s: &crate::themes::ScoreDriver) -> String {
    if super::super::priority::significant(s) {
        driver_words(s)
    } else {
        match s.se {
            Some(se) => format!(
                "no measurable effect ({} within its uncertainty, ±{})",
                driver_short(s),
                fixed(1.96 * se, 2)
            ),
            None => "no measurable effect".into(),
        }
    }
}

/// The priority chart: each aspect (parent) at (share of verbatims, share negative) — the CX
/// "impact matrix" — its circle's area the summed priority of its children in the list (the
/// problems it owns), labelled by name. Why parents and not the listed children: children are
/// parted by sentiment (complaints apart from praise), so every problem child sits at ~100%
/// negative and a chart of them says nothing the list does not; an aspect's mix is what tells
/// a large mostly-praised aspect from a small mostly-blamed one. "General" (comments naming no
/// aspect) is left out, as it is from the list.
fn chart_priority(out: &mut String, r: &Report) {
    let owned: Vec<(&ThemeSummary, f64)> = branches(r)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| !crate::themes::anchor::is_general(&p.label))
        .map(|p| {
            let pr: f64 = r
                .priorities
                .iter()
                .filter(|x| x.parent.as_deref() == Some(p.id.as_str()))
                .map(|x| x.priority)
                .sum();
            (p, pr)
        })
        .collect();
    if r.priorities.is_empty() || owned.is_empty() {
        return;
    }
    let neg = |t: &ThemeSummary| {
        let s = &t.sentiment;
        let n = (s.positive + s.neutral + s.negative).max(1) as f64;
        s.negative as f64 / n
    };
    let (w, h) = (CHART_W, 340.0);
    let (left, right, top, bottom) = (56.0, 24.0, 16.0, 46.0);
    let xmax = owned
        .iter()
        .map(|p| p.0.share)
        .fold(0.0_f64, f64::max)
        .max(0.01)
        * 1.15;
    let x = |v: f64| left + (w - left - right) * (v / xmax).min(1.0);
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v.clamp(0.0, 1.0));
    let pmax = owned
        .iter()
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    out.push_str("<figure>\n<figcaption>Aspects: volume × negativity</figcaption>\n");
    svg_open(
        out,
        "chart-priority",
        w,
        h,
        "Priority chart",
        "Each aspect at its share of verbatims (across) and its share negative (up); the larger \
         the circle, the more priority its problem children in the list carry.",
    );
    for i in 0..=4 {
        let v = i as f64 / 4.0;
        w!(
            out,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{C_GRID}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            n(left),
            n(w - right),
            n(y(v)),
            n(y(v)),
            n(left - 6.0),
            n(y(v) + 4.0),
            whole_pct(v)
        );
    }
    for i in 0..=4 {
        let v = xmax / 1.15 * i as f64 / 4.0;
        w!(
            out,
            "<text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            n(x(v)),
            n(h - bottom + 16.0),
            pct(v)
        );
    }
    w!(
        out,
        "<text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">share of verbatims →</text>\
         <text class=\"axis\" x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" \
         text-anchor=\"middle\">share negative →</text>\n",
        n(left + (w - left - right) / 2.0),
        n(h - 8.0),
        n(top + (h - top - bottom) / 2.0),
        n(top + (h - top - bottom) / 2.0)
    );
    // Largest first, so small circles stay on top and readable.
    let mut order: Vec<&(&ThemeSummary, f64)> = owned.iter().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.id.cmp(&b.0.id)));
    let rad = |pr: f64| 4.0 + 18.0 * (pr / pmax).sqrt();
    for (p, pr) in &order {
        w!(
            out,
            "<g><title>{}: {} of verbatims, {} negative; priority of its listed problems {:.4}</title>\
             <circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{C_NEG}\" fill-opacity=\".28\" \
             stroke=\"{C_NEG}\"/></g>\n",
            esc(&format!("{} {}", p.id, p.label)),
            pct(p.share),
            whole_pct(neg(p)),
            pr,
            n(x(p.share)),
            n(y(neg(p))),
            n(rad(*pr)),
        );
    }
    // Names after every circle, each where it overlaps no name placed before it (close aspects
    // otherwise print over each other: "Seats & comfort" on "Queues & boarding").
    let mut placed: Vec<LabelBox> = Vec::new();
    for (p, pr) in &order {
        let (cx, cy, r) = (x(p.share), y(neg(p)), rad(*pr));
        let (tx, ty, anchor) = place_label(&p.label, cx, cy, r, (left, w - right), &placed);
        placed.push(LabelBox::new(&p.label, tx, ty, anchor));
        w!(
            out,
            "<text class=\"b\" x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>\n",
            n(tx),
            n(ty),
            esc(&p.label)
        );
    }
    out.push_str("</svg>\n<p class=\"note\">Circle area: the summed priority (volume × negativity × (1 + score drag)) of the aspect's children in the list above; General, what names no aspect, is not drawn.</p>\n</figure>\n");
}

/// Width of a character of a chart name (bold, ~12 px), for placing names apart.
const NAME_CHAR_W: f64 = 7.0;
/// Height of a chart name's line.
const NAME_H: f64 = 14.0;

/// The box a chart name covers: x from `x0` to `x1`, baseline `y` (the text rises above it).
#[derive(Clone, Copy, Debug)]
struct LabelBox {
    x0: f64,
    x1: f64,
    y: f64,
}

impl LabelBox {
    fn new(label: &str, x: f64, y: f64, anchor: &str) -> Self {
        let width = label.chars().count() as f64 * NAME_CHAR_W;
        let x0 = match anchor {
            "end" => x - width,
            "middle" => x - width / 2.0,
            _ => x,
        };
        LabelBox {
            x0,
            x1: x0 + width,
            y,
        }
    }

    fn overlaps(&self, o: &LabelBox) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && (self.y - o.y).abs() < NAME_H
    }
}

/// Where the name of a circle at (`cx`, `cy`), radius `r`, goes: beside it (right, or left in
/// the right third so it stays on the page), else the other side, else a line above or below,
/// else further up or down — the first place that overlaps no name in `placed` and stays
/// within `bounds` across. Returns (x, baseline y, text-anchor).
fn place_label(
    label: &str,
    cx: f64,
    cy: f64,
    r: f64,
    bounds: (f64, f64),
    placed: &[LabelBox],
) -> (f64, f64, &'static str) {
    let right = (cx + r + 3.0, cy + 4.0, "start");
    let left = (cx - r - 3.0, cy + 4.0, "end");
    let (first, second) = if cx > bounds.0 + (bounds.1 - bounds.0) * 0.66 {
        (left, right)
    } else {
        (right, left)
    };
    let mut candidates = vec![first, second];
    candidates.push((cx, cy - r - 4.0, "middle"));
    candidates.push((cx, cy + r + NAME_H, "middle"));
    for k in 1..=3 {
        let dy = k as f64 * NAME_H;
        for (x, y, a) in [first, second] {
            candidates.push((x, y - dy, a));
            candidates.push((x, y + dy, a));
        }
    }
    let fits = |&(x, y, a): &(f64, f64, &'static str)| {
        let b = LabelBox::new(label, x, y, a);
        b.x0 >= bounds.0 - 50.0 && b.x1 <= bounds.1 + 20.0 && !placed.iter().any(|o| o.overlaps(&b))
    };
    candidates.iter().copied().find(fits).unwrap_or(first)
}

/// The tree report as Markdown: what to fix first, the tree as a table, then per parent its
/// children with their facts, quotes and every unit in a `<details>` block.
pub(super) fn markdown_tree(r: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    w!(out, "# {}\n\n", md(&r.title));
    w!(out, "- **Verbatims:** {}\n", int(r.verbatims));
    let b = branches(r);
    w!(
        out,
        "- **Aspects:** {} with {} children; **other** (no unit in any theme): {} ({})\n",
        b.len(),
        b.iter().map(|x| x.1.len()).sum::<usize>(),
        int(r.other),
        pct(ratio(r.other, r.verbatims))
    );
    markdown_scope_lines(&mut out, r);
    markdown_priorities(&mut out, r);
    out.push_str("\n## The tree\n\n");
    if r.themes.is_empty() {
        out.push_str("No themes.\n");
    } else {
        out.push_str(
            "| ID | Aspect › what is said | Verbatims | % of verbatims | Sentiment + / = / − | Trend | Score effect |\n\
             |---|---|--:|--:|---|---|--:|\n",
        );
        for (p, kids) in &b {
            for (t, indent) in std::iter::once((*p, "")).chain(kids.iter().map(|c| (*c, "› "))) {
                let trend = match direction(&t.trend) {
                    Some(d) => match trend_points(&t.trend) {
                        Some(p) => format!("{} {} ({p})", d.arrow(), d.word()),
                        None => format!("{} {}", d.arrow(), d.word()),
                    },
                    None => "—".into(),
                };
                let effect = effect_cell(t);
                w!(
                    out,
                    "| {} | {}{} | {} | {} | {} | {} | {} |\n",
                    md(&t.id),
                    indent,
                    md(&t.label),
                    int(t.size),
                    pct(t.share),
                    sentiment_cell(&t.sentiment),
                    trend,
                    effect
                );
            }
        }
        w!(
            out,
            "\nA verbatim counts in every theme one of its opinion units is in: the shares add up \
             to more than 100%. Score effect: shown only when larger than its uncertainty (1.96 \
             standard errors).\n"
        );
    }
    for (p, kids) in &b {
        w!(
            out,
            "\n## {} · {}\n\n- **Size:** {} verbatims ({} of verbatims)\n- **Sentiment:** {}\n",
            md(&p.id),
            md(&p.label),
            int(p.size),
            pct(p.share),
            sentiment_words(&p.sentiment)
        );
        for c in kids {
            markdown_child(&mut out, c);
        }
    }
    out.push_str("\n## Manifest\n\n");
    let manifest =
        serde_json::to_string_pretty(&r.manifest).expect("a manifest always serialises to JSON");
    let fence = "`".repeat(longest_run(&manifest, '`').max(2) + 1);
    w!(out, "{fence}json\n{manifest}\n{fence}\n");
    out
}

/// A unit (or quote) on one Markdown line: the cut verbatim with the unit in bold (the spaces
/// around it kept: `md` trims, and `**x**y` would not read as bold).
fn markdown_unit(out: &mut String, q: &crate::themes::Quote) {
    let e = excerpt(q, QUOTE_CONTEXT);
    let mark = if e.mark.trim().is_empty() {
        String::new()
    } else {
        let gap_before = if e.before.trim().is_empty() { "" } else { " " };
        let gap_after = if e.after.trim().is_empty() { "" } else { " " };
        format!("{gap_before}**{}**{gap_after}", md(e.mark))
    };
    w!(
        out,
        "- {}{}{}{}{} — {}\n",
        if e.cut_before { "…" } else { "" },
        md(e.before),
        mark,
        md(e.after),
        if e.cut_after { "…" } else { "" },
        md(&quote_source(q))
    );
}

fn markdown_child(out: &mut String, t: &ThemeSummary) {
    w!(
        out,
        "\n### {} · {}{}\n\n- **Size:** {} verbatims ({} of verbatims)\n- **Sentiment:** {}\n",
        md(&t.id),
        md(&t.label),
        if t.seeded { " (seeded)" } else { "" },
        int(t.size),
        pct(t.share),
        sentiment_words(&t.sentiment)
    );
    markdown_trend_and_score(out, t, tree_driver_words, false);
    if !t.quotes.is_empty() {
        out.push('\n');
        for q in &t.quotes {
            markdown_unit(out, q);
        }
    }
    if !t.units.is_empty() {
        w!(
            out,
            "\n<details><summary>All {} units</summary>\n\n",
            int(t.units.len())
        );
        for u in &t.units {
            markdown_unit(out, u);
        }
        out.push_str("\n</details>\n");
    }
}

#[cfg(test)]
mod chart_tests {
    use super::*;

    /// Close aspects ("Seats & comfort" beside "Queues & boarding"): every name lands where it
    /// overlaps no name placed before it, and near its circle.
    #[test]
    fn chart_names_of_close_circles_never_overlap() {
        let circles = [
            ("Queues & boarding", 300.0, 200.0),
            ("Seats & comfort", 296.0, 203.0),
            ("Website & app", 290.0, 198.0),
            ("Price", 302.0, 190.0),
            ("Customer service", 640.0, 210.0),
        ];
        let mut placed: Vec<LabelBox> = Vec::new();
        for (label, cx, cy) in circles {
            let (x, y, a) = place_label(label, cx, cy, 8.0, (56.0, 696.0), &placed);
            let b = LabelBox::new(label, x, y, a);
            assert!(
                !placed.iter().any(|o| o.overlaps(&b)),
                "{label} at {b:?} over {placed:?}"
            );
            assert!(
                (y - cy).abs() <= 4.0 * NAME_H + 8.0,
                "{label} far from its circle"
            );
            placed.push(b);
        }
        // A name in the right third goes on the circle's left, so it stays on the page.
        assert_eq!(placed[4].x1, 640.0 - 8.0 - 3.0);
    }
}
