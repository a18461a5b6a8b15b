//! The Markdown rendering: a summary, a table of themes, one section per theme, the vanished
//! themes and the manifest in a fenced JSON block.

use std::fmt::Write as _;

use super::super::types::{Report, ThemeSummary};
use super::facts::*;
use super::text::*;

/// The report as Markdown (CommonMark with GitHub tables).
pub fn markdown(r: &Report) -> String {
    if r.tree {
        return super::tree::markdown_tree(r);
    }
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
    markdown_scope_lines(&mut out, r);

    markdown_priorities(&mut out, r);

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
            // The highlighted sentence when there is one: the part that speaks of the theme.
            let quote = t
                .quotes
                .first()
                .map(|q| match excerpt(q, 0).mark {
                    "" => q.text.as_str(),
                    mark => mark,
                })
                .map(|q| format!("“{}”", md(&shorten(q, TOP_QUOTE_CHARS))))
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

/// "What to fix first": the problem themes by priority, numbered, with the formula under them.
pub(super) fn markdown_priorities(out: &mut String, r: &Report) {
    if r.themes.is_empty() {
        return;
    }
    out.push_str("\n## What to fix first\n\n");
    if r.priorities.is_empty() {
        out.push_str(
            "No theme is more negative than the verbatims as a whole, and none pulls the score \
             down.\n",
        );
    }
    for (i, p) in r.priorities.iter().enumerate() {
        let effect = crate::themes::priority::priority_effect(p);
        w!(
            out,
            "{}. **{}** · {} — {} of verbatims, {} negative{}; priority {}\n",
            i + 1,
            match &p.parent_label {
                Some(parent) => format!("{} › {}", md(parent), md(&p.label)),
                None => md(&p.label),
            },
            md(&p.id),
            pct(p.share),
            whole_pct(p.negative),
            if effect.is_empty() {
                String::new()
            } else {
                format!(", {effect}")
            },
            fixed(p.priority, 4)
        );
    }
    w!(out, "\n{}\n", md(crate::themes::priority::FORMULA));
}

/// One theme's Markdown section.
pub(super) fn markdown_theme(out: &mut String, t: &ThemeSummary) {
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
    markdown_trend_and_score(out, t, driver_words, true);

    if !t.quotes.is_empty() {
        out.push_str("\n**Quotes**\n");
        for q in &t.quotes {
            let e = excerpt(q, QUOTE_CONTEXT);
            if e.mark.is_empty() {
                // No highlight: the text's lines as they are (cut when long).
                out.push('\n');
                let lines: Vec<&str> = e.before.lines().collect();
                for (i, line) in lines.iter().enumerate() {
                    let end = if e.cut_after && i + 1 == lines.len() {
                        "…"
                    } else {
                        ""
                    };
                    if line.trim().is_empty() {
                        out.push_str(">\n");
                    } else {
                        w!(out, "> {}{end}\n", md_line(line));
                    }
                }
                w!(out, ">\n> — {}\n", md(&quote_source(q)));
                continue;
            }
            // One line: the highlight in bold, cut around it.
            let mut line = String::new();
            if e.cut_before {
                line.push('…');
            }
            line.push_str(&md(e.before));
            if !e.mark.is_empty() {
                if e.before.ends_with(char::is_whitespace) {
                    line.push(' ');
                }
                w!(line, "**{}**", md(e.mark));
                if e.after.starts_with(char::is_whitespace) {
                    line.push(' ');
                }
                line.push_str(&md(e.after));
            }
            if e.cut_after {
                line.push('…');
            }
            w!(out, "\n> {}\n>\n> — {}\n", line, md(&quote_source(q)));
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

/// A theme's trend line (direction, the shift behind it, and with `peaks` its peak and spikes)
/// and score-driver line, the driver's effect said by `words`.
pub(super) fn markdown_trend_and_score(
    out: &mut String,
    t: &ThemeSummary,
    words: fn(&crate::themes::ScoreDriver) -> String,
    peaks: bool,
) {
    if let Some(d) = direction(&t.trend) {
        w!(
            out,
            "- **Trend** ({}): {} {}",
            md(&t.trend.granularity),
            d.arrow(),
            d.word()
        );
        // Our own words and numbers: nothing to escape (and `md` would escape "18." as a list).
        if let Some(delta) = trend_delta(&t.trend) {
            w!(out, ": {delta}");
        }
        if let Some(peak) = peak(&t.trend).filter(|_| peaks) {
            w!(out, "; peak {} in {}", pct(peak.share), md(&peak.period));
        }
        let spikes = spikes(&t.trend);
        if peaks && !spikes.is_empty() {
            let spikes: Vec<String> = spikes.iter().map(|p| md(&p.period)).collect();
            w!(out, "; spikes: {}", spikes.join(", "));
        }
        out.push('\n');
    }
    if let Some(s) = &t.score {
        w!(
            out,
            "- **Score driver:** {}; mean {} against {} for the rest ({} scored)\n",
            words(s),
            fixed(s.mean, 2),
            fixed(s.rest_mean, 2),
            int(s.scored)
        );
    }
}

/// The summary lines about the whole scope: sentiment, score mean, period, segments, and the
/// aggregates-only notice.
pub(super) fn markdown_scope_lines(out: &mut String, r: &Report) {
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
}
