//! Facts derived from the report (trend direction, sentiment words, anchors…), shared by the
//! Markdown and HTML renderings so both say the same thing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::super::priority::{effect, effect_short, effect_words, ScoreScale};
use super::super::types::{
    Change, Highlight, Polarity, Quote, Report, ScoreDriver, SegmentBreakdown, SentimentSummary,
    ThemeSummary, Trend, TrendDirection, TrendPoint,
};
use super::text::*;

// ---------------------------------------------------------------------------------------------
// Facts derived from the report, shared by the formats
// ---------------------------------------------------------------------------------------------

/// How long the top quote may be in the Markdown themes table.
pub(super) const TOP_QUOTE_CHARS: usize = 120;

/// Where a theme's trend is heading: the direction the analytics computed
/// ([`crate::themes::analytics::trend_direction`]), the same one `verbatim themes` shows.
pub(super) fn direction(t: &Trend) -> Option<TrendDirection> {
    t.direction
}

/// The period with the largest share (the first of equals).
pub(super) fn peak(t: &Trend) -> Option<&TrendPoint> {
    t.points
        .iter()
        .filter(|p| p.share.is_finite())
        .fold(None, |best: Option<&TrendPoint>, p| match best {
            Some(b) if b.share >= p.share => Some(b),
            _ => Some(p),
        })
}

pub(super) fn spikes(t: &Trend) -> Vec<&TrendPoint> {
    t.points.iter().filter(|p| p.spike).collect()
}

pub(super) fn has_spike(t: &Trend) -> bool {
    t.points.iter().any(|p| p.spike)
}

/// The shift behind a trend's direction, in words: "8.0% → 11.5% of verbatims (+3.5 pts; median
/// of the last 6 months against the 6 before)"; `None` without a direction. Words and number
/// come from the one rule ([`crate::themes::analytics::trend_shift`]): when the trend is flat
/// because too few verbatims fall in each period, no change is quoted ("flat: +50 pts" read as
/// a contradiction; one verbatim more or less moves such a share by half).
pub(super) fn trend_delta(t: &Trend) -> Option<String> {
    let s = crate::themes::analytics::trend_shift(&t.points)?;
    let unit = match t.granularity.as_str() {
        "week" => "week",
        "month" => "month",
        _ => "period",
    };
    if s.too_few {
        return Some(format!(
            "fewer than {} verbatims a {unit}: too few to call a change",
            crate::themes::analytics::TREND_MIN_COUNT
        ));
    }
    let k = s.k;
    Some(format!(
        "{} → {} of verbatims ({} pts; median of the last {k} {unit}s against the {k} before)",
        pct(s.before),
        pct(s.recent),
        signed((s.recent - s.before) * 100.0, 1).replacen('-', "−", 1)
    ))
}

/// A trend in words, for tooltips.
pub(super) fn trend_words(t: &Trend) -> String {
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
pub(super) fn sentiment_shares(s: &SentimentSummary) -> Option<[f64; 3]> {
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
pub(super) fn sentiment_words(s: &SentimentSummary) -> String {
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
pub(super) fn sentiment_short(s: &SentimentSummary) -> String {
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
pub(super) fn sentiment_cell(s: &SentimentSummary) -> String {
    match sentiment_shares(s) {
        Some([p, n, g]) => format!("{} / {} / {}", whole_pct(p), whole_pct(n), whole_pct(g)),
        None => "—".to_string(),
    }
}

pub(super) fn polarity_word(p: Polarity) -> &'static str {
    match p {
        Polarity::Positive => "positive",
        Polarity::Neutral => "neutral",
        Polarity::Negative => "negative",
    }
}

pub(super) fn change_word(c: Option<Change>) -> &'static str {
    c.map_or("—", Change::word)
}

pub(super) fn change_badge(c: Change) -> &'static str {
    match c {
        Change::New => "● new",
        Change::Grew => "▲ grew",
        Change::Shrank => "▼ shrank",
        Change::Stable => "= stable",
        Change::Vanished => "× vanished",
    }
}

/// A driver's effect on the score in readable units, its verb following its sign: "−0.42 points
/// of mean score (1–5): pulls the mean score down" ([`crate::themes::priority::effect_words`]).
pub(super) fn driver_words(s: &ScoreDriver) -> String {
    effect_words(effect(s), &s.scale.unwrap_or(ScoreScale::UNKNOWN))
}

/// A driver's effect as a short signed number ("−0.42", "+3.1 pp", "0").
pub(super) fn driver_short(s: &ScoreDriver) -> String {
    effect_short(effect(s), &s.scale.unwrap_or(ScoreScale::UNKNOWN))
}

/// The polarity a quote is shown for: its highlight's, else the verbatim's.
pub(super) fn quote_polarity(q: &Quote) -> Polarity {
    q.highlight.map_or(q.sentiment, |h| h.sentiment)
}

/// Characters of context kept on each side of a quote's highlight.
pub(super) const QUOTE_CONTEXT: usize = 120;

/// A quote cut around its highlight: `…` + before + **mark** + after + `…`.
#[derive(Debug, PartialEq)]
pub(super) struct Excerpt<'a> {
    /// Text was cut before `before`.
    pub cut_before: bool,
    /// Context before the highlight.
    pub before: &'a str,
    /// The highlight ("" without one).
    pub mark: &'a str,
    /// Context after it.
    pub after: &'a str,
    /// Text was cut after `after`.
    pub cut_after: bool,
}

/// `q` cut to at most `context` characters on each side of its highlight, on word boundaries
/// (char-safe); without a highlight (or with offsets that do not fit the text), the text's first
/// 2 × `context` characters.
pub(super) fn excerpt(q: &Quote, context: usize) -> Excerpt<'_> {
    let text = q.text.trim_end();
    let valid = |h: &Highlight| {
        h.start < h.end
            && h.end <= text.len()
            && text.is_char_boundary(h.start)
            && text.is_char_boundary(h.end)
    };
    match q.highlight.filter(valid) {
        Some(h) => {
            let (before, cut_before) = tail(&text[..h.start], context);
            let (after, cut_after) = head(&text[h.end..], context);
            Excerpt {
                cut_before,
                before,
                mark: &text[h.start..h.end],
                after,
                cut_after,
            }
        }
        None => {
            let (all, cut_after) = head(text.trim_start(), 2 * context);
            Excerpt {
                cut_before: false,
                before: all,
                mark: "",
                after: "",
                cut_after,
            }
        }
    }
}

/// `text` cut to at most `context` characters on each side of `text[start..end]` (on word
/// boundaries, as [`excerpt`] cuts), "…" where cut: (the cut text, the span's start and end in
/// it). A span that does not fit the text gives the text's first 2 × `context` characters and
/// an empty span.
pub(crate) fn cut_around(
    text: &str,
    start: usize,
    end: usize,
    context: usize,
) -> (String, usize, usize) {
    if !(start < end && end <= text.len())
        || !text.is_char_boundary(start)
        || !text.is_char_boundary(end)
    {
        let (all, cut) = head(text.trim(), 2 * context);
        return (format!("{all}{}", if cut { "…" } else { "" }), 0, 0);
    }
    let (before, cut_before) = tail(&text[..start], context);
    let (after, cut_after) = head(&text[end..], context);
    let mut out = String::new();
    if cut_before {
        out.push('…');
    }
    out.push_str(before);
    let s = out.len();
    out.push_str(&text[start..end]);
    let e = out.len();
    out.push_str(after);
    if cut_after {
        out.push('…');
    }
    (out, s, e)
}

/// The first `max` characters of `s`, cut back to the last whitespace when cut (unless that
/// leaves nothing), and whether it was cut.
fn head(s: &str, max: usize) -> (&str, bool) {
    match s.char_indices().nth(max) {
        None => (s, false),
        Some((end, _)) => {
            let kept = &s[..end];
            let at_space = s[end..].starts_with(char::is_whitespace);
            let cut = if at_space {
                kept
            } else {
                match kept.rfind(char::is_whitespace) {
                    Some(i) if i > 0 => &kept[..i],
                    _ => kept,
                }
            };
            (cut.trim_end(), true)
        }
    }
}

/// The last `max` characters of `s`, cut forward to the first whitespace when cut, and whether
/// it was cut.
fn tail(s: &str, max: usize) -> (&str, bool) {
    let n = s.chars().count();
    if n <= max {
        return (s.trim_start(), false);
    }
    let start = s.char_indices().nth(n - max).map_or(0, |(i, _)| i);
    let kept = &s[start..];
    let at_space = s[..start].ends_with(char::is_whitespace);
    let cut = if at_space {
        kept
    } else {
        match kept.find(char::is_whitespace) {
            Some(i) if i + 1 < kept.len() => &kept[i..],
            _ => kept,
        }
    };
    (cut.trim_start(), true)
}

/// "V123 · 2024-03-02 · negative", or with a highlight "V123 · 2024-03-02 · highlighted:
/// negative · verbatim: neutral".
pub(super) fn quote_source(q: &Quote) -> String {
    let polarity = match q.highlight {
        Some(h) => format!(
            "highlighted: {} · verbatim: {}",
            polarity_word(h.sentiment),
            polarity_word(q.sentiment)
        ),
        None => polarity_word(q.sentiment).to_string(),
    };
    match &q.date {
        Some(d) => format!("{} · {} · {}", q.id, d, polarity),
        None => format!("{} · {}", q.id, polarity),
    }
}

/// The k of an aggregates-only report (`parameters.min_cell` > 0), if it is one.
pub(super) fn aggregates_only(r: &Report) -> Option<u64> {
    r.manifest
        .parameters
        .get("min_cell")
        .and_then(|v| v.as_u64())
        .filter(|k| *k > 0)
}

pub(super) fn has_suppressed(segments: &[SegmentBreakdown]) -> bool {
    segments
        .iter()
        .any(|b| b.values.iter().any(|v| v.count.is_none()))
}

/// Segment fields: the report's list, then any other field a breakdown names (first seen).
pub(super) fn segment_fields(r: &Report) -> Vec<String> {
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
pub(super) fn segment_columns(r: &Report, field: &str) -> Vec<String> {
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
pub(super) fn anchors(themes: &[ThemeSummary]) -> Vec<String> {
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
