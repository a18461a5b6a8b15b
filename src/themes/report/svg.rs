//! The inline SVG charts of the HTML page (sizes, sentiment, trends, segments, drivers), written
//! here so the page needs no script and no external asset.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::super::priority::{effect, ScoreKind};
use super::super::types::{Report, SentimentSummary, ThemeSummary};
use super::facts::*;
use super::text::*;

// ---------------------------------------------------------------------------------------------
// SVG charts
// ---------------------------------------------------------------------------------------------

/// Natural width of every chart (it shrinks with the page, never grows: text stays 12px).
pub(super) const CHART_W: f64 = 900.0;
/// Row height of the bar charts.
pub(super) const ROW_H: f64 = 26.0;
/// Bar thickness in the bar charts.
pub(super) const BAR_H: f64 = 16.0;
/// Average advance of a 12px sans-serif character, to size label columns without font metrics.
pub(super) const CHAR_W: f64 = 6.7;
/// Longest label drawn in a chart (the full label is in the row's tooltip and the section).
pub(super) const LABEL_CHARS: usize = 32;

pub(super) const C_POS: &str = "#0072b2";
pub(super) const C_NEU: &str = "#c8c8c8";
pub(super) const C_NEG: &str = "#b84f00";
pub(super) const C_BAR: &str = "#3a6ea5";
pub(super) const C_OTHER: &str = "#9a9a9a";
pub(super) const C_GRID: &str = "#e2e2e2";
pub(super) const C_AXIS: &str = "#6b6b6b";
pub(super) const C_BASE: &str = "#bdbdbd";

/// Opens a chart: an accessible `<svg>` with its title and description.
pub(super) fn svg_open(out: &mut String, id: &str, w: f64, h: f64, title: &str, desc: &str) {
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
pub(super) fn label_width(themes: &[ThemeSummary]) -> f64 {
    let chars = themes
        .iter()
        .map(|t| t.id.chars().count() + 1 + t.label.chars().count().min(LABEL_CHARS))
        .max()
        .unwrap_or(10);
    (chars as f64 * CHAR_W + 18.0).clamp(120.0, 290.0)
}

/// A row label, right-aligned at `x`: the id (muted) then the label, cut to fit.
pub(super) fn svg_theme_label(out: &mut String, x: f64, y: f64, t: &ThemeSummary, lw: f64) {
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
pub(super) fn chart_sizes(out: &mut String, r: &Report, lw: f64) {
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
pub(super) fn chart_sentiment(out: &mut String, r: &Report, lw: f64) {
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
pub(super) fn chart_trends(out: &mut String, r: &Report, lw: f64) {
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
pub(super) fn chart_segments(out: &mut String, r: &Report, lw: f64) {
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
        let cells: Vec<Vec<Option<&super::super::types::SegmentValue>>> = r
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

/// (5) Diverging bars of each theme's effect on the mean score ([`effect`]: negative when the
/// theme pulls it down), largest drag first; numbers in the score's unit.
pub(super) fn chart_drivers(out: &mut String, r: &Report, lw: f64) {
    let mut drivers: Vec<(&ThemeSummary, f64)> = r
        .themes
        .iter()
        .filter_map(|t| t.score.as_ref().map(|s| (t, effect(s))))
        .filter(|(_, i)| i.is_finite())
        .collect();
    if drivers.is_empty() {
        return;
    }
    drivers.sort_by(|(a, ia), (b, ib)| ia.total_cmp(ib).then_with(|| a.id.cmp(&b.id)));
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
        "For each scored theme, the overall mean score minus the mean without its verbatims: \
         bars to the left pull the score down, bars to the right lift it.",
    );
    w!(
        out,
        "<text x=\"{}\" y=\"15\" text-anchor=\"end\" class=\"muted\">◀ pulls the score down</text>\
         <text x=\"{}\" y=\"15\" class=\"muted\">lifts the score ▶</text>\n",
        n(centre - 8.0),
        n(centre + 8.0)
    );
    for (i, (t, impact)) in drivers.iter().enumerate() {
        let y = head_h + i as f64 * ROW_H;
        let bw = (impact.abs() * scale).max(if *impact != 0.0 { 1.0 } else { 0.0 });
        let (x, colour) = if *impact >= 0.0 {
            (centre, C_POS)
        } else {
            (centre - bw, C_NEG)
        };
        let s = t.score.as_ref();
        w!(
            out,
            "<g><title>{} {}: {}; mean {} against {} for the rest ({} scored)</title>\n",
            esc(&t.id),
            esc(&t.label),
            esc(&s.map(driver_words).unwrap_or_default()),
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
            esc(&s.map(driver_short).unwrap_or_default())
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
            "<p class=\"note\">{}: the overall mean score ({}) minus the mean without the \
             theme's verbatims.</p>\n",
            unit_of(r),
            fixed(mean, 2)
        );
    }
    out.push_str("</figure>\n");
}

/// The unit a report's driver numbers are in: "Points of mean score (1–5)" or "Percentage points
/// (pp) of top-box share".
fn unit_of(r: &Report) -> String {
    match r.themes.iter().find_map(|t| t.score.as_ref()?.scale) {
        Some(s) if s.kind == ScoreKind::TopBox => "Percentage points (pp) of top-box share".into(),
        Some(s) => format!("P{}", &s.unit()[1..]),
        None => "Points of mean score".into(),
    }
}

/// Diagonal hatching of a rectangle as one path (no `<pattern>`: it would need `url(#…)`).
pub(super) fn hatch(x: f64, y: f64, w: f64, h: f64, gap: f64) -> String {
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
pub(super) struct Rgb(u8, u8, u8);

impl Rgb {
    pub(super) fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// WCAG relative luminance.
    pub(super) fn luminance(self) -> f64 {
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
    pub(super) fn wants_white_text(self) -> bool {
        let l = self.luminance();
        1.05 / (l + 0.05) > (l + 0.05) / 0.05
    }
}

/// The heat-map scale at `t` in [0, 1]: ColorBrewer "Blues" (sequential, colour-blind safe,
/// prints in grey as light-to-dark).
pub(super) fn heat(t: f64) -> Rgb {
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
