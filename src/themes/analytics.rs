//! From a theme run to what an analyst reads: per theme, size and share, sentiment, quotes,
//! trend with spikes, segment breakdowns and score drivers, over the verbatims a filter keeps.
//!
//! Rules (documented in the README):
//! * **Trend**: by ISO week when the dated verbatims span at most 26 weeks, else by month; every
//!   period from the first to the last is listed, empty ones included. A period is a *spike*
//!   when the theme's share exceeds the mean of the previous [`TREND_WINDOW`] periods by more
//!   than 2 standard deviations and by at least half of it (at least 3 previous periods, and at
//!   least 3 verbatims). Its *direction* (rising, falling, flat) is [`trend_direction`], the one
//!   rule `verbatim themes` and the report both show.
//! * **Segments**: for each segment field, each value's count of theme verbatims and the share
//!   of that value's verbatims in the theme. With `min_cell = k > 0`, a cell under k verbatims is
//!   suppressed (count and share `None`), so nobody reads a handful of people out of a table.
//! * **Score drivers**: with a score, the theme's mean vs the mean of every other scored verbatim,
//!   and `impact` = (overall mean without the theme's verbatims) − (overall mean): positive when
//!   the theme pulls the score down (removing it would raise the score).
//! * **Quotes**: from the theme's verbatims nearest its centroid (top 50), picked by maximal
//!   marginal relevance (λ = 0.7) so they do not repeat each other. In a verbatim of several
//!   sentences, the sentence nearest the theme's centroid is the quote's *highlight* (one of the
//!   theme's lead polarity when it is nearly as near: within 0.1 of cosine), and the quotes
//!   lead with that polarity ([`lead_polarity`]): a mostly negative theme, or one more negative
//!   than the scope, opens with negative quotes, a mostly positive one with positive ones (a
//!   quote's polarity is its highlight's, else the verbatim's; a quote of the lead polarity gets
//!   +0.1 of relevance in the pick).
//! * **Priorities**: the problem themes ranked by [`super::priority::priorities`] (what to fix
//!   first); a driver carries the score's [`super::priority::ScoreScale`] so its effect reads in
//!   points of mean score or percentage points of top-box share.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, TimeZone, Utc};

use super::run::{display_label, theme_id, RunData};
use super::*;
use crate::sentiment::SentimentHead;
use crate::store::Filter;

/// Trailing periods a spike is measured against; also the most periods on each side of a
/// trend direction.
pub const TREND_WINDOW: usize = 6;

/// Fewest shown periods a trend needs for a direction: two on each side.
pub const TREND_MIN_PERIODS: usize = 4;

/// How far (relative) the recent median share must move from the earlier one to be called
/// rising or falling.
pub const TREND_THRESHOLD: f64 = 0.2;

/// Verbatims of the theme the busier side's median period must hold for a rise or a fall (the
/// spike rule's minimum too): under it, one verbatim more or less moves a share by half.
pub const TREND_MIN_COUNT: usize = 3;

/// Where a trend is heading: the median share of the recent periods against the median of the
/// same number of periods just before them. `k` = half the shown periods, at most
/// [`TREND_WINDOW`] (so with up to 12 periods, the last half against the first half; with more,
/// the last 6 against the 6 before). More than [`TREND_THRESHOLD`] (20 %) higher is rising,
/// more than 20 % lower falling, else flat; from a zero share, any rise is rising. Flat, too,
/// when neither side's median period holds [`TREND_MIN_COUNT`] verbatims of the theme. `None`
/// with fewer than [`TREND_MIN_PERIODS`] shown periods (or a non-finite share).
///
/// Why this rule (it replaces two that disagreed: the CLI compared means ±20 % over ≥ 4
/// periods, the report medians ±10 % over ≥ 2):
/// * **Medians**, so that one spiky or empty period does not set the direction: with 6 or more
///   periods each side has at least 3 and its median ignores any one of them (spikes are marked
///   on their own). A mean let one empty last month turn a steady theme "down".
/// * **Equal windows**, so both medians rest on as many periods (as noisy as each other) and a
///   long history does not drown the recent change.
/// * **20 %, not 10 %**: a period's share rests on a small count (a theme of 5 % among 100
///   verbatims a week is 5 ± 2 verbatims), so a 10 % move is routine noise.
/// * **A few verbatims are not a trend**: a theme seen once or twice a month (here and there
///   among mostly empty months) would otherwise rise or fall on one verbatim.
/// * **At least 4 periods**: with 2 or 3, one period alone would be "the trend".
/// * **Suppressed periods are left out**: their share is hidden (shown as 0), not zero, and
///   reading it as zero would call a small theme falling.
pub fn trend_direction(points: &[TrendPoint]) -> Option<TrendDirection> {
    trend_shift(points).map(|s| s.direction)
}

/// What [`trend_direction`] judged, so that a report's words and its number come from the one
/// rule: the median share of the earlier and of the recent periods, the periods on each side,
/// the direction, and whether it is flat only because too few verbatims fell in each period
/// (then the shares' difference is noise and is not to be shown as a change).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrendShift {
    /// Median share of the `k` earlier periods.
    pub before: f64,
    /// Median share of the `k` recent periods.
    pub recent: f64,
    /// Periods on each side.
    pub k: usize,
    /// The direction.
    pub direction: TrendDirection,
    /// Flat because neither side's median period holds [`TREND_MIN_COUNT`] verbatims: the
    /// shares are too thin for a change ("flat … +50 pts" was the contradiction this avoids).
    pub too_few: bool,
}

/// The shift [`trend_direction`] judges (same windows, same thresholds); `None` where the
/// direction is `None`.
pub fn trend_shift(points: &[TrendPoint]) -> Option<TrendShift> {
    let shown: Vec<&TrendPoint> = points.iter().filter(|p| !p.suppressed).collect();
    let n = shown.len();
    if n < TREND_MIN_PERIODS || shown.iter().any(|p| !p.share.is_finite()) {
        return None;
    }
    let k = (n / 2).min(TREND_WINDOW);
    let (before, recent) = (&shown[n - 2 * k..n - k], &shown[n - k..]);
    let median_of = |w: &[&TrendPoint], f: fn(&TrendPoint) -> f64| {
        median(&w.iter().map(|p| f(p)).collect::<Vec<f64>>())
    };
    let count = |p: &TrendPoint| p.count as f64;
    let busiest = median_of(before, count).max(median_of(recent, count));
    let (before, recent) = (
        median_of(before, |p| p.share),
        median_of(recent, |p| p.share),
    );
    let too_few = busiest < TREND_MIN_COUNT as f64;
    // The epsilon keeps a change of exactly 20 % (in rounded shares) flat.
    let direction = if too_few {
        TrendDirection::Flat
    } else if recent > before * (1.0 + TREND_THRESHOLD) + 1e-9 {
        TrendDirection::Rising
    } else if recent < before * (1.0 - TREND_THRESHOLD) - 1e-9 {
        TrendDirection::Falling
    } else {
        TrendDirection::Flat
    };
    Some(TrendShift {
        before,
        recent,
        k,
        direction,
        too_few,
    })
}

/// The median of a non-empty slice of finite numbers.
fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// What to summarise and how.
#[derive(Clone, Debug, Default)]
pub struct SummaryOptions {
    /// Which verbatims count.
    pub filter: Filter,
    /// Quotes per theme.
    pub quotes: usize,
    /// Suppress segment cells under this many verbatims (0: none).
    pub min_cell: usize,
    /// Themes smaller than this (in scope) are not listed.
    pub min_size: usize,
}

impl SummaryOptions {
    /// Options as `grant` allows them: its scope ANDed with `filter`; no quotes without text
    /// permission; for an aggregates-only grant, cells (segment values, trend periods, themes)
    /// under its k suppressed.
    pub fn for_grant(
        grant: &crate::access::Grant,
        filter: &Filter,
        quotes: usize,
        min_size: usize,
    ) -> SummaryOptions {
        SummaryOptions {
            filter: grant.restrict(filter),
            quotes: if grant.may_read_text() { quotes } else { 0 },
            min_cell: grant.min_cell(),
            min_size: min_size.max(grant.min_cell()),
        }
    }
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn period_of(ts: i64, weekly: bool) -> String {
    let d = Utc
        .timestamp_opt(ts, 0)
        .single()
        .unwrap_or_default()
        .date_naive();
    if weekly {
        let w = d.iso_week();
        format!("{}-W{:02}", w.year(), w.week())
    } else {
        format!("{}-{:02}", d.year(), d.month())
    }
}

/// All periods from `lo` to `hi` (timestamps) inclusive.
fn periods(lo: i64, hi: i64, weekly: bool) -> Vec<String> {
    let mut out = Vec::new();
    let step = if weekly { 7 * 86400 } else { 86400 };
    let mut t = lo;
    let last = period_of(hi, weekly);
    loop {
        let p = period_of(t, weekly);
        if out.last() != Some(&p) {
            out.push(p.clone());
        }
        if p == last || t > hi + 31 * 86400 {
            break;
        }
        t += step;
    }
    out
}

pub(crate) fn sentiment_of(scores: &[f32], head: &SentimentHead) -> SentimentSummary {
    let mut s = SentimentSummary::default();
    for &x in scores {
        match head.polarity(x) {
            Polarity::Positive => s.positive += 1,
            Polarity::Neutral => s.neutral += 1,
            Polarity::Negative => s.negative += 1,
        }
    }
    if !scores.is_empty() {
        s.mean = round4(scores.iter().map(|&x| x as f64).sum::<f64>() / scores.len() as f64);
    }
    s
}

/// `YYYY-MM-DD` of a Unix time (UTC).
pub(crate) fn date_of(ts: Option<i64>) -> Option<String> {
    ts.and_then(|t| Utc.timestamp_opt(t, 0).single())
        .map(|d| d.format("%Y-%m-%d").to_string())
}

/// Summaries of the active themes over the verbatims `opts.filter` keeps, largest first (ties by
/// id), plus the scope's overall figures: (themes, scope size, other, overall sentiment, score
/// mean, segment fields, period).
pub struct Summary {
    /// What to fix first ([`super::priority::priorities`] of the themes).
    pub priorities: Vec<super::priority::Priority>,
    /// Themes, largest first.
    pub themes: Vec<ThemeSummary>,
    /// Verbatims in scope.
    pub verbatims: usize,
    /// In scope and in no theme.
    pub other: usize,
    /// Sentiment over the scope.
    pub sentiment: SentimentSummary,
    /// Mean score over the scope.
    pub score_mean: Option<f64>,
    /// Segment fields present in scope.
    pub segment_fields: Vec<String>,
    /// First and last date in scope.
    pub period: Option<(String, String)>,
    /// Per-verbatim sentiment score, parallel to `run.docs` (for exports).
    pub scores: Vec<f32>,
}

/// The scope a summary is computed over, shared by every theme (or tree node) in it: which
/// verbatims count, their periods, segment values and scores. Built once per summary; the
/// per-group facts ([`ScopeFacts::trend`], [`ScopeFacts::segments`], [`ScopeFacts::driver`])
/// read it, so the topic themes and the aspect tree count, trend and drive alike.
pub struct ScopeFacts<'a> {
    docs: &'a [crate::store::Verbatim],
    /// Indexes into `docs` of the verbatims in scope.
    pub scope: Vec<usize>,
    weekly: bool,
    all_periods: Vec<String>,
    per_period: BTreeMap<String, usize>,
    per_value: BTreeMap<(String, String), usize>,
    /// Segment fields present in scope.
    pub fields: Vec<String>,
    scored: Vec<(usize, f64)>,
    /// Mean score over the scope.
    pub score_mean: Option<f64>,
    scale: Option<super::priority::ScoreScale>,
    min_cell: usize,
    /// First and last dated verbatim in scope (Unix seconds).
    pub span: Option<(i64, i64)>,
}

impl<'a> ScopeFacts<'a> {
    /// The scope of `filter` over `docs`, with cells under `min_cell` to be suppressed.
    pub fn new(docs: &'a [crate::store::Verbatim], filter: &Filter, min_cell: usize) -> Self {
        let scope: Vec<usize> = (0..docs.len())
            .filter(|&i| filter.matches(&docs[i]))
            .collect();
        let scored: Vec<(usize, f64)> = scope
            .iter()
            .filter_map(|&i| docs[i].score.map(|s| (i, s)))
            .collect();
        let score_mean = (!scored.is_empty())
            .then(|| scored.iter().map(|x| x.1).sum::<f64>() / scored.len() as f64);
        let scale = super::priority::ScoreScale::of(scored.iter().map(|x| x.1));
        let fields: Vec<String> = scope
            .iter()
            .flat_map(|&i| docs[i].fields.keys().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let dated: Vec<i64> = scope.iter().filter_map(|&i| docs[i].ts).collect();
        let span = dated.iter().min().copied().zip(dated.iter().max().copied());
        let weekly = matches!(span, Some((a, b)) if b - a <= 26 * 7 * 86400);
        let all_periods = match span {
            Some((a, b)) => periods(a, b, weekly),
            None => Vec::new(),
        };
        // Verbatims per period and per segment value, over the scope.
        let mut per_period: BTreeMap<String, usize> = BTreeMap::new();
        for &i in &scope {
            if let Some(t) = docs[i].ts {
                *per_period.entry(period_of(t, weekly)).or_default() += 1;
            }
        }
        let mut per_value: BTreeMap<(String, String), usize> = BTreeMap::new();
        for &i in &scope {
            for (k, v) in &docs[i].fields {
                *per_value.entry((k.clone(), v.clone())).or_default() += 1;
            }
        }
        ScopeFacts {
            docs,
            scope,
            weekly,
            all_periods,
            per_period,
            per_value,
            fields,
            scored,
            score_mean,
            scale,
            min_cell,
            span,
        }
    }

    /// The group's share of the scope's verbatims per period, spikes marked, cells under k
    /// suppressed, and its direction by [`trend_direction`]. `members` index `docs`.
    pub fn trend(&self, members: &[usize]) -> Trend {
        let docs = self.docs;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for &i in members {
            if let Some(ts) = docs[i].ts {
                *counts.entry(period_of(ts, self.weekly)).or_default() += 1;
            }
        }
        let mut points: Vec<TrendPoint> = Vec::new();
        let mut real_shares: Vec<f64> = Vec::new();
        for p in &self.all_periods {
            let c = counts.get(p).copied().unwrap_or(0);
            let total = self.per_period.get(p).copied().unwrap_or(0);
            let share = if total > 0 {
                c as f64 / total as f64
            } else {
                0.0
            };
            // Real shares (suppressed points show 0 but still count in the window).
            let prev: Vec<f64> = real_shares
                .iter()
                .rev()
                .take(TREND_WINDOW)
                .copied()
                .collect();
            real_shares.push(round4(share));
            let spike = prev.len() >= 3 && c >= 3 && {
                let m = prev.iter().sum::<f64>() / prev.len() as f64;
                let sd =
                    (prev.iter().map(|x| (x - m).powi(2)).sum::<f64>() / prev.len() as f64).sqrt();
                // 2σ over the trailing window, and at least 1.5× its mean: with a steady theme σ
                // is tiny and 2σ alone would flag noise.
                share > m + 2.0 * sd && share >= 1.5 * m
            };
            let hidden = self.min_cell > 0 && c > 0 && c < self.min_cell;
            points.push(TrendPoint {
                period: p.clone(),
                count: if hidden { 0 } else { c },
                share: if hidden { 0.0 } else { round4(share) },
                spike: spike && !hidden,
                suppressed: hidden,
            });
        }
        Trend {
            granularity: if self.all_periods.is_empty() {
                "none".into()
            } else if self.weekly {
                "week".into()
            } else {
                "month".into()
            },
            direction: trend_direction(&points),
            points,
        }
    }

    /// For each segment field, each value's count of the group's verbatims and the share of
    /// that value's verbatims in the group (cells under k suppressed).
    pub fn segments(&self, members: &[usize]) -> Vec<SegmentBreakdown> {
        let docs = self.docs;
        self.fields
            .iter()
            .map(|f| {
                let mut vals: BTreeMap<&str, usize> = BTreeMap::new();
                for &i in members {
                    if let Some(v) = docs[i].fields.get(f) {
                        *vals.entry(v.as_str()).or_default() += 1;
                    }
                }
                let mut values: Vec<(usize, &str)> = self
                    .per_value
                    .keys()
                    .filter(|(k, _)| k == f)
                    .map(|(_, v)| (vals.get(v.as_str()).copied().unwrap_or(0), v.as_str()))
                    .collect();
                values.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
                SegmentBreakdown {
                    field: f.clone(),
                    values: values
                        .into_iter()
                        .map(|(c, v)| {
                            let total = self.per_value[&(f.clone(), v.to_string())];
                            let hidden = self.min_cell > 0 && (c < self.min_cell);
                            SegmentValue {
                                value: v.to_string(),
                                count: (!hidden).then_some(c),
                                share: (!hidden).then(|| round4(c as f64 / total as f64)),
                            }
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// The group's score driver: its mean against every other scored verbatim's, its effect on
    /// the scope's mean and that effect's standard error. `None` without a score, or when every
    /// (or no) scored verbatim is in the group. `member(i)` says whether `docs[i]` is in it.
    pub fn driver(&self, members: &[usize], member: impl Fn(usize) -> bool) -> Option<ScoreDriver> {
        let all_mean = self.score_mean?;
        let in_theme: Vec<f64> = members.iter().filter_map(|&i| self.docs[i].score).collect();
        if in_theme.is_empty() || in_theme.len() >= self.scored.len() {
            return None;
        }
        let rest: Vec<f64> = self
            .scored
            .iter()
            .filter(|(i, _)| !member(*i))
            .map(|x| x.1)
            .collect();
        if rest.is_empty() {
            return None;
        }
        let mean = in_theme.iter().sum::<f64>() / in_theme.len() as f64;
        let rest_mean = rest.iter().sum::<f64>() / rest.len() as f64;
        Some(ScoreDriver {
            mean: round4(mean),
            rest_mean: round4(rest_mean),
            impact: round4(rest_mean - all_mean),
            scored: in_theme.len(),
            scale: self.scale,
            se: effect_se(&in_theme, &rest),
        })
    }
}

/// The standard error of a group's effect on the mean score. The effect is `all − rest` =
/// `(n_t / N) (mean_t − mean_rest)`, so its standard error is `n_t / N` times Welch's standard
/// error of the difference of the two means, `sqrt(s_t² / n_t + s_r² / n_r)` (sample
/// variances; a side with one score borrows the variance of both sides together).
fn effect_se(theme: &[f64], rest: &[f64]) -> Option<f64> {
    let var = |x: &[f64]| {
        let m = x.iter().sum::<f64>() / x.len() as f64;
        x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64
    };
    let both: Vec<f64> = theme.iter().chain(rest).copied().collect();
    if both.len() < 2 || theme.is_empty() || rest.is_empty() {
        return None;
    }
    let side = |x: &[f64]| if x.len() >= 2 { var(x) } else { var(&both) };
    let (nt, nr) = (theme.len() as f64, rest.len() as f64);
    let se_diff = (side(theme) / nt + side(rest) / nr).sqrt();
    Some((nt / (nt + nr) * se_diff * 1e6).round() / 1e6)
}

/// Computes the summaries.
pub fn summarize(run: &RunData, head: &SentimentHead, opts: &SummaryOptions) -> Summary {
    let dim = run.dim;
    // A multi-sentence verbatim's sentiment reads the mean of its sentence vectors.
    let scores: Vec<f32> = (0..run.docs.len())
        .map(|i| match run.sentences.get(&run.docs[i].doc) {
            Some(s) if s.len() > 1 => head.score(&super::sentences::mean_vector(s, dim)),
            _ => head.score(&run.vectors[i * dim..(i + 1) * dim]),
        })
        .collect();
    let facts = ScopeFacts::new(&run.docs, &opts.filter, opts.min_cell);
    let scope = &facts.scope;
    let n = scope.len();
    let other = scope
        .iter()
        .filter(|&&i| run.members[i].theme.is_none())
        .count();
    let overall = sentiment_of(&scope.iter().map(|&i| scores[i]).collect::<Vec<_>>(), head);

    let mut themes = Vec::new();
    for t in run.active() {
        let members: Vec<usize> = scope
            .iter()
            .copied()
            .filter(|&i| run.members[i].theme == Some(t.id))
            .collect();
        let secondary = scope
            .iter()
            .filter(|&&i| run.members[i].second == Some(t.id))
            .count();
        if members.len() < opts.min_size.max(1) && (!t.seeded || opts.min_cell > 0) {
            continue;
        }
        let quotes = pick_quotes(run, head, &scores, t, &members, &overall, opts.quotes);
        themes.push(ThemeSummary {
            id: theme_id(t.id),
            label: display_label(t).to_string(),
            keywords: t.keywords.clone(),
            size: members.len(),
            share: round4(if n > 0 {
                members.len() as f64 / n as f64
            } else {
                0.0
            }),
            secondary,
            seeded: t.seeded,
            sentiment: sentiment_of(
                &members.iter().map(|&i| scores[i]).collect::<Vec<_>>(),
                head,
            ),
            quotes,
            trend: facts.trend(&members),
            segments: facts.segments(&members),
            score: facts.driver(&members, |i| run.members[i].theme == Some(t.id)),
            change: run.changes.get(&t.id).copied(),
            parent: None,
            units: Vec::new(),
        });
    }
    themes.sort_by(|a, b| {
        b.size
            .cmp(&a.size)
            .then(a.id.len().cmp(&b.id.len()))
            .then(a.id.cmp(&b.id))
    });
    Summary {
        priorities: super::priority::priorities(&themes, &overall),
        themes,
        verbatims: n,
        other,
        sentiment: overall,
        score_mean: facts.score_mean.map(round4),
        segment_fields: facts.fields.clone(),
        period: facts.span.map(|(a, b)| {
            (
                date_of(Some(a)).unwrap_or_default(),
                date_of(Some(b)).unwrap_or_default(),
            )
        }),
        scores,
    }
}

/// The polarity a theme's quotes lead with: negative when its negative verbatims outnumber its
/// positive ones or it is more negative than the scope (a problem theme, as
/// [`super::priority`] lists them, never opens with praise); else positive when positive
/// outnumbers negative; else `None` (quotes keep their relevance order).
pub fn lead_polarity(theme: &SentimentSummary, scope: &SentimentSummary) -> Option<Polarity> {
    let share = |s: &SentimentSummary| {
        let n = s.positive + s.neutral + s.negative;
        if n == 0 {
            0.0
        } else {
            s.negative as f64 / n as f64
        }
    };
    if theme.negative > theme.positive || share(theme) > share(scope) + 1e-12 {
        Some(Polarity::Negative)
    } else if theme.positive > theme.negative {
        Some(Polarity::Positive)
    } else {
        None
    }
}

/// The sentence of verbatim `i` that speaks of the theme whose centroid is `centroid`: the
/// nearest, or one of polarity `want` within 0.1 of cosine of it. `None` for a verbatim of one
/// sentence (or whose stored sentences no longer match its text).
fn highlight_of(
    run: &RunData,
    head: &SentimentHead,
    i: usize,
    centroid: &[f32],
    want: Option<Polarity>,
) -> Option<Highlight> {
    let sentences = run
        .sentences
        .get(&run.docs[i].doc)
        .filter(|s| s.len() > 1)?;
    let spans = super::sentences::spans(&run.docs[i].text);
    if spans.len() != sentences.len() || centroid.len() != run.dim {
        return None;
    }
    let scored: Vec<(f32, Polarity, (usize, usize))> = sentences
        .iter()
        .zip(spans)
        .map(|(s, span)| {
            let sim = crate::vecmath::dot(&s.vector, centroid);
            (sim, head.polarity(head.score(&s.vector)), span)
        })
        .collect();
    let best = scored.iter().fold(
        None,
        |b: Option<&(f32, Polarity, (usize, usize))>, x| match b {
            Some(b) if b.0 >= x.0 => Some(b),
            _ => Some(x),
        },
    )?;
    let wanted = scored
        .iter()
        .filter(|x| Some(x.1) == want && x.0 >= best.0 - 0.1)
        .fold(
            None,
            |b: Option<&(f32, Polarity, (usize, usize))>, x| match b {
                Some(b) if b.0 >= x.0 => Some(b),
                _ => Some(x),
            },
        );
    let (_, sentiment, (start, end)) = *wanted.unwrap_or(best);
    Some(Highlight {
        start,
        end,
        sentiment,
    })
}

/// Up to `k` quotes of theme `t` among its `members`: maximal marginal relevance over the 50
/// nearest its centroid, those of the theme's dominant polarity favoured and put first (see the
/// module doc).
fn pick_quotes(
    run: &RunData,
    head: &SentimentHead,
    scores: &[f32],
    t: &crate::store::StoredTheme,
    members: &[usize],
    scope: &SentimentSummary,
    k: usize,
) -> Vec<Quote> {
    if k == 0 {
        return Vec::new();
    }
    let dim = run.dim;
    let want = lead_polarity(
        &sentiment_of(
            &members.iter().map(|&i| scores[i]).collect::<Vec<_>>(),
            head,
        ),
        scope,
    );
    let mut near: Vec<(f32, usize)> = members.iter().map(|&i| (run.members[i].sim, i)).collect();
    near.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(run.docs[a.1].id.cmp(&run.docs[b.1].id))
    });
    near.truncate(50);
    // Each candidate's highlight and the polarity it is quoted for.
    let cands: Vec<(f32, usize, Option<Highlight>, Polarity)> = near
        .iter()
        .map(|&(rel, i)| {
            let h = highlight_of(run, head, i, &t.centroid, want);
            let pol = h.map_or(head.polarity(scores[i]), |h| h.sentiment);
            let bonus = if Some(pol) == want { 0.1 } else { 0.0 };
            (rel + bonus, i, h, pol)
        })
        .collect();
    let mut picked: Vec<usize> = Vec::new(); // indexes into `cands`
    while picked.len() < k.min(cands.len()) {
        let best = (0..cands.len())
            .filter(|c| !picked.contains(c))
            .map(|c| {
                let i = cands[c].1;
                let red = picked
                    .iter()
                    .map(|&p| {
                        let j = cands[p].1;
                        crate::vecmath::dot(
                            &run.vectors[i * dim..(i + 1) * dim],
                            &run.vectors[j * dim..(j + 1) * dim],
                        )
                    })
                    .fold(f32::MIN, f32::max);
                let red = if picked.is_empty() { 0.0 } else { red };
                (0.7 * cands[c].0 - 0.3 * red, c)
            })
            .max_by(|a, b| {
                a.0.total_cmp(&b.0)
                    .then(run.docs[cands[b.1].1].id.cmp(&run.docs[cands[a.1].1].id))
            });
        match best {
            Some((_, c)) => picked.push(c),
            None => break,
        }
    }
    // The dominant polarity first; otherwise in the order picked (stable).
    picked.sort_by_key(|&c| Some(cands[c].3) != want);
    picked
        .iter()
        .map(|&c| {
            let (_, i, highlight, _) = cands[c];
            Quote {
                id: run.docs[i].id.clone(),
                text: run.docs[i].text.clone(),
                date: date_of(run.docs[i].ts),
                sentiment: head.polarity(scores[i]),
                highlight,
            }
        })
        .collect()
}

/// What a report was asked for, recorded as its manifest's `parameters` so that `verbatim
/// report --from-manifest` can run it again: with the same data snapshot, models and theme
/// edits, the same bytes. (The data, the models and the verbatim version are the manifest's
/// other fields.) Reports written before this struct existed read with defaults.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ReportParameters {
    /// Discovery settings: seed, k, min size.
    pub run: super::run::Params,
    /// The filter as run: values resolved to the stored ones, the caller's scope applied.
    pub filter: Filter,
    /// Quotes per theme (0 for a caller without text permission).
    pub quotes: usize,
    /// Segment cells under this many verbatims were suppressed (the caller's k; 0: none).
    pub min_cell: usize,
    /// Title at the top.
    pub title: String,
    /// The report compared with (`--compare-to`), as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare_to: Option<std::path::PathBuf>,
    /// [`theme_edits`] of the run: the seeds, merges and renames it honoured.
    pub theme_edits: String,
    /// [`run_fingerprint`] of the run the report was made from. Discovery starts from the
    /// previous run's themes, so the same parameters over the same data can, after other runs,
    /// give other themes: this says whether a re-made report stands on the same run.
    pub theme_run: String,
    /// The API route that made it (reports made over HTTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// `aspect` for a report on the aspect tree (the default); absent for one on the topic
    /// themes (`--by topic`, and every report written before the tree had one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// sha256 over the users' theme edits — seeded themes (label, examples), merges, renames — in
/// id order: a run honours them, so a report depends on them as much as on its parameters.
pub fn theme_edits(themes: &[crate::store::StoredTheme]) -> String {
    use sha2::{Digest, Sha256};
    let mut edited: Vec<serde_json::Value> = themes
        .iter()
        .filter(|t| {
            t.seeded || t.user_label.is_some() || t.state == crate::store::ThemeState::Merged
        })
        .map(|t| {
            serde_json::json!({
                "id": t.id,
                "label": t.user_label,
                "seeded": t.seeded,
                "examples": if t.seeded { t.examples.clone() } else { Vec::new() },
                "merged_into": if t.state == crate::store::ThemeState::Merged { t.merged_into } else { None },
            })
        })
        .collect();
    edited.sort_by_key(|v| v["id"].as_i64());
    hex::encode(Sha256::digest(serde_json::Value::Array(edited).to_string()))
}

/// sha256 over a run's outcome: each theme's id, label and state, and each verbatim's theme and
/// second theme, in doc order.
pub fn run_fingerprint(run: &RunData) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for t in &run.themes {
        h.update(format!("T{}\t{}\t{:?}\n", t.id, display_label(t), t.state));
    }
    for (d, m) in run.docs.iter().zip(&run.members) {
        h.update(format!("{}\t{:?}\t{:?}\n", d.id, m.theme, m.second));
    }
    hex::encode(h.finalize())
}

/// Inputs of [`build_report`] besides the run.
pub struct ReportInputs<'a> {
    /// Title at the top.
    pub title: String,
    /// Embedding model fingerprint.
    pub model: String,
    /// The sentiment head and the sha256 of its file.
    pub head: (&'a SentimentHead, String),
    /// Settings to record (run parameters, filter, options).
    pub parameters: serde_json::Value,
    /// A previous report to compare with (`--compare-to`): changes and vanished themes are
    /// computed against it instead of the previous run.
    pub compare_to: Option<&'a Report>,
}

/// Marks each theme new / grew / shrank / stable against a previous report (`--compare-to`) and
/// returns the previous report's themes that are gone; without one, no change is marked: a
/// report stands on its own (the same data gives the same bytes, whatever ran before).
pub fn compare(themes: &mut [ThemeSummary], previous: Option<&Report>) -> Vec<VanishedTheme> {
    let mut vanished = Vec::new();
    match previous {
        Some(prev) => {
            let before: BTreeMap<&str, &ThemeSummary> =
                prev.themes.iter().map(|t| (t.id.as_str(), t)).collect();
            for t in themes.iter_mut() {
                t.change = Some(match before.get(t.id.as_str()) {
                    None => Change::New,
                    Some(p) if p.share > 0.0 => Change::from_ratio(t.share / p.share),
                    Some(_) => Change::Grew,
                });
            }
            let now: BTreeSet<&str> = themes.iter().map(|t| t.id.as_str()).collect();
            for p in &prev.themes {
                if !now.contains(p.id.as_str()) {
                    vanished.push(VanishedTheme {
                        id: p.id.clone(),
                        label: p.label.clone(),
                        size: p.size,
                    });
                }
            }
        }
        None => {
            for t in themes.iter_mut() {
                t.change = None;
            }
        }
    }
    vanished
}

/// Builds the report data (what `report` renders) from a run.
pub fn build_report(run: &RunData, opts: &SummaryOptions, inputs: ReportInputs<'_>) -> Report {
    let s = summarize(run, inputs.head.0, opts);
    let mut themes = s.themes;
    let vanished = compare(&mut themes, inputs.compare_to);
    let scope = run.docs.iter().filter(|d| opts.filter.matches(d));
    Report {
        title: inputs.title,
        manifest: ReportManifest {
            version: env!("CARGO_PKG_VERSION").to_string(),
            data_snapshot: super::run::snapshot_hash(scope),
            model: inputs.model,
            sentiment_model: inputs.head.1,
            parameters: inputs.parameters,
            period: s.period,
            score_map: None,
        },
        verbatims: s.verbatims,
        other: s.other,
        sentiment: s.sentiment,
        score_mean: s.score_mean,
        segment_fields: s.segment_fields,
        priorities: s.priorities,
        themes,
        vanished,
        tree: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_cover_gaps_and_switch_granularity() {
        let day = 86400;
        let jan1 = 1_704_067_200; // 2024-01-01
        let p = periods(jan1, jan1 + 70 * day, false);
        assert_eq!(p, ["2024-01", "2024-02", "2024-03"]);
        let w = periods(jan1, jan1 + 20 * day, true);
        assert_eq!(w, ["2024-W01", "2024-W02", "2024-W03"]);
    }

    fn points(shares: &[f64]) -> Vec<TrendPoint> {
        shares
            .iter()
            .enumerate()
            .map(|(i, &share)| TrendPoint {
                period: format!("2024-{:02}", i + 1),
                count: (share * 100.0).round() as usize,
                share,
                spike: false,
                suppressed: false,
            })
            .collect()
    }

    fn direction(shares: &[f64]) -> Option<TrendDirection> {
        trend_direction(&points(shares))
    }

    /// Series where the two old rules (CLI: mean of the last ≤3 against the ≤3 before, ±20 %,
    /// ≥ 4 periods; report: median of the last ≤3 against all earlier, ±10 %, ≥ 2 periods)
    /// gave different answers; the one rule gives one answer.
    #[test]
    fn trend_direction_settles_the_cases_the_old_rules_disagreed_on() {
        use TrendDirection::*;
        // A steady theme with an empty last month (the integration fixture: December is all
        // yelp). Old CLI: down (the mean fell by a third); old report: flat.
        let mut steady = [0.20; 12];
        steady[11] = 0.0;
        assert_eq!(direction(&steady), Some(Flat));
        // A 15 % rise. Old report: rising (> 10 %); old CLI: flat (< 20 %). Noise-sized: flat.
        let modest: Vec<f64> = [0.10; 6].into_iter().chain([0.115; 6]).collect();
        assert_eq!(direction(&modest), Some(Flat));
        // One spiky month among steady ones. Old CLI: up (the mean of the last three jumps);
        // old report: flat.
        let mut spiky = [0.10; 12];
        spiky[10] = 0.40;
        assert_eq!(direction(&spiky), Some(Flat));
        // A theme seen a few times in eleven months, then 140 times in the last (a spike; the
        // fixture's "good food"). Old report: rising (the median of the last three); old CLI:
        // "spike". The medians alone would say falling (one verbatim a month, then none); but
        // the months hold a verbatim or none: flat (the spike is marked on its own).
        let mut rare = points(&[0.0; 12]);
        for i in [0, 1, 3, 4, 8] {
            rare[i].count = 1;
            rare[i].share = 0.01;
        }
        rare[11].count = 140;
        rare[11].share = 0.7;
        rare[11].spike = true;
        assert_eq!(trend_direction(&rare), Some(Flat));
        // Two or three periods. Old report: a direction; old CLI: none.
        assert_eq!(direction(&[0.1, 0.3]), None);
        assert_eq!(direction(&[0.1, 0.2, 0.3]), None);
    }

    #[test]
    fn quotes_lead_with_negative_in_problem_themes_and_positive_in_praise() {
        let s = |positive, neutral, negative| SentimentSummary {
            positive,
            neutral,
            negative,
            mean: 0.0,
        };
        let scope = s(64, 16, 20);
        // Mostly negative.
        assert_eq!(lead_polarity(&s(2, 3, 5), &scope), Some(Polarity::Negative));
        // More positive than negative, but more negative than the scope: a problem theme.
        assert_eq!(
            lead_polarity(&s(47, 12, 41), &scope),
            Some(Polarity::Negative)
        );
        // Praise.
        assert_eq!(
            lead_polarity(&s(80, 10, 10), &scope),
            Some(Polarity::Positive)
        );
        // Even, and no more negative than the scope: relevance order.
        assert_eq!(lead_polarity(&s(1, 8, 1), &scope), None);
        assert_eq!(lead_polarity(&s(0, 0, 0), &s(0, 0, 0)), None);
    }

    #[test]
    fn trend_direction_follows_a_real_change_and_its_threshold() {
        use TrendDirection::*;
        let series = |before: f64, after: f64| -> Vec<f64> {
            [before; 6].into_iter().chain([after; 6]).collect()
        };
        assert_eq!(direction(&series(0.10, 0.15)), Some(Rising));
        assert_eq!(direction(&series(0.15, 0.10)), Some(Falling));
        assert_eq!(direction(&series(0.10, 0.12)), Some(Flat), "exactly 20 %");
        assert_eq!(direction(&series(0.10, 0.1201)), Some(Rising));
        assert_eq!(direction(&series(0.10, 0.0799)), Some(Falling));
        assert_eq!(direction(&series(0.0, 0.03)), Some(Rising), "from nothing");
        assert_eq!(
            direction(&series(0.0, 0.02)),
            Some(Flat),
            "two verbatims a month"
        );
        assert_eq!(direction(&series(0.0, 0.0)), Some(Flat));
        // Four periods: two against two.
        assert_eq!(direction(&[0.1, 0.1, 0.2, 0.2]), Some(Rising));
        let shift = trend_shift(&points(&[0.1, 0.1, 0.2, 0.2])).unwrap();
        assert_eq!((shift.before, shift.recent, shift.k), (0.1, 0.2, 2));
        assert!(!shift.too_few);
        assert_eq!(trend_shift(&points(&[0.1, 0.2])), None);
        // A long weekly series: the last 6 against the 6 before, not the whole history.
        let long: Vec<f64> = [0.30; 20]
            .into_iter()
            .chain([0.10; 6])
            .chain([0.15; 6])
            .collect();
        assert_eq!(direction(&long), Some(Rising));
        // A suppressed period is hidden, not zero.
        let mut p = points(&[0.1; 8]);
        for x in &mut p[5..] {
            x.share = 0.0;
            x.suppressed = true;
        }
        assert_eq!(trend_direction(&p), Some(Flat));
        assert_eq!(trend_direction(&p[..5]), Some(Flat));
        p[0].share = f64::NAN;
        assert_eq!(trend_direction(&p), None);
    }

    fn scored(doc: i64, score: f64, ts: i64) -> crate::store::Verbatim {
        crate::store::Verbatim {
            doc,
            id: format!("v{doc}"),
            text: String::new(),
            respondent: None,
            ts: Some(ts),
            score: Some(score),
            language: "en".into(),
            fields: Default::default(),
            source: String::new(),
            seq: doc,
        }
    }

    #[test]
    fn a_driver_carries_the_standard_error_of_its_effect() {
        // 200 verbatims scored 1..=10 in a cycle; a group of 40 made of whole cycles (no real
        // effect) and one of the 40 lowest-scored (a real one).
        let docs: Vec<_> = (0..200)
            .map(|i| scored(i, (1 + i % 10) as f64, 1_700_000_000 + i * 3600))
            .collect();
        let facts = ScopeFacts::new(&docs, &Filter::default(), 0);
        let even: Vec<usize> = (0..200).filter(|i| (i / 10) % 5 == 0).collect();
        let d = facts.driver(&even, |i| (i / 10) % 5 == 0).unwrap();
        let se = d.se.unwrap();
        assert!(se > 0.0 && d.impact.abs() <= 1.96 * se, "{d:?}");
        assert!(!super::super::priority::significant(&d));
        let low: Vec<usize> = (0..200).filter(|i| i % 10 < 2).collect();
        let d = facts.driver(&low, |i| i % 10 < 2).unwrap();
        assert!(d.impact > 1.96 * d.se.unwrap(), "{d:?}");
        assert!(super::super::priority::significant(&d));
        // The standard error by hand: n_t/N × sqrt(s_t²/n_t + s_r²/n_r).
        let (t, r): (Vec<f64>, Vec<f64>) = (
            low.iter().map(|&i| docs[i].score.unwrap()).collect(),
            (0..200)
                .filter(|i| i % 10 >= 2)
                .map(|i| docs[i as usize].score.unwrap())
                .collect(),
        );
        let var = |x: &[f64]| {
            let m = x.iter().sum::<f64>() / x.len() as f64;
            x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64
        };
        let want = 40.0 / 200.0 * (var(&t) / 40.0 + var(&r) / 160.0).sqrt();
        assert!(
            (d.se.unwrap() - want).abs() < 1e-5,
            "{} vs {want}",
            d.se.unwrap()
        );
    }

    #[test]
    fn the_trend_shift_says_when_too_few_verbatims_make_it_flat() {
        // One verbatim a month, then two: the share doubles but the trend is flat (too few).
        let mut p = points(&[0.5, 0.5, 1.0, 1.0]);
        for x in &mut p {
            x.count = (x.share * 2.0) as usize;
        }
        let s = trend_shift(&p).unwrap();
        assert_eq!(s.direction, TrendDirection::Flat);
        assert!(s.too_few);
        assert_eq!(trend_direction(&p), Some(TrendDirection::Flat));
    }
}
