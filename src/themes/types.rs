//! What a theme run produces: the data behind `verbatim themes`, `themes show` and the report.
//! Everything here is plain data (serde), ordered deterministically, with no clock: the same
//! store and settings give the same bytes.

use serde::{Deserialize, Serialize};

/// Sentiment class of a verbatim.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Polarity {
    /// Positive.
    Positive,
    /// Neither clearly positive nor negative.
    Neutral,
    /// Negative.
    Negative,
}

/// Counts and mean score of sentiment over a set of verbatims.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SentimentSummary {
    /// Verbatims classed positive.
    pub positive: usize,
    /// Verbatims classed neutral.
    pub neutral: usize,
    /// Verbatims classed negative.
    pub negative: usize,
    /// Mean sentiment score in [-1, 1] (negative … positive).
    pub mean: f64,
}

/// A quote shown for a theme: a verbatim's redacted text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Quote {
    /// Verbatim id.
    pub id: String,
    /// Redacted text.
    pub text: String,
    /// Date (YYYY-MM-DD) when the verbatim has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Its sentiment class.
    pub sentiment: Polarity,
    /// The part of the text that speaks of the theme (a sentence or opinion unit), when the
    /// verbatim has more than one: shown highlighted, the quote cut around it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highlight: Option<Highlight>,
}

/// The part of a quote that speaks of its theme.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Highlight {
    /// Byte offset of its start in the quote's (redacted) text.
    pub start: usize,
    /// Byte offset of its end (exclusive).
    pub end: usize,
    /// Its own sentiment class.
    pub sentiment: Polarity,
}

/// One period of a theme's trend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrendPoint {
    /// Period label: `2024-03` (month) or `2024-W09` (ISO week).
    pub period: String,
    /// Verbatims of the theme in the period.
    pub count: usize,
    /// Share of all verbatims of the period.
    pub share: f64,
    /// Share more than 2σ above the mean of the trailing window.
    pub spike: bool,
    /// Under the k of an aggregates-only caller: count and share shown as 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// Where a theme's trend is heading: the one rule of [`super::analytics::trend_direction`],
/// which `verbatim themes` and every report format show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrendDirection {
    /// The recent periods' median share is more than the threshold above the earlier ones'.
    Rising,
    /// More than the threshold below.
    Falling,
    /// Within the threshold.
    Flat,
}

impl TrendDirection {
    /// ↗, ↘ or →.
    pub fn arrow(self) -> &'static str {
        match self {
            TrendDirection::Rising => "↗",
            TrendDirection::Falling => "↘",
            TrendDirection::Flat => "→",
        }
    }

    /// "rising", "falling" or "flat" (as in the JSON).
    pub fn word(self) -> &'static str {
        match self {
            TrendDirection::Rising => "rising",
            TrendDirection::Falling => "falling",
            TrendDirection::Flat => "flat",
        }
    }
}

/// A theme's size over time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Trend {
    /// "week" or "month" (chosen from the data's date span), or "none" without dates.
    pub granularity: String,
    /// Where it is heading ([`super::analytics::trend_direction`] of the points); absent with
    /// too few periods for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<TrendDirection>,
    /// One point per period from the first to the last dated verbatim, gaps included.
    pub points: Vec<TrendPoint>,
}

/// A theme's presence in one value of a segment field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SegmentValue {
    /// The segment value (e.g. "FR").
    pub value: String,
    /// Verbatims of the theme with that value; `None` when suppressed (a cell under k).
    pub count: Option<usize>,
    /// Share of the segment's verbatims that are in the theme; `None` when suppressed.
    pub share: Option<f64>,
}

/// A theme broken down by one segment field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SegmentBreakdown {
    /// Field name (e.g. "country").
    pub field: String,
    /// Values in decreasing count, then name.
    pub values: Vec<SegmentValue>,
}

/// What a theme does to the score (NPS, CSAT…) when the data has one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreDriver {
    /// Mean score of the theme's verbatims.
    pub mean: f64,
    /// Mean score of every other scored verbatim.
    pub rest_mean: f64,
    /// Overall mean without the theme's verbatims minus the overall mean: how much the score
    /// would move if the theme's verbatims were removed (positive: the theme drags it down).
    pub impact: f64,
    /// Scored verbatims in the theme.
    pub scored: usize,
    /// The range of the scores (how the effect is said: points of mean score, or percentage
    /// points of top-box share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<super::priority::ScoreScale>,
    /// Standard error of the effect on the mean (`impact`), in the score's points: an effect
    /// within 1.96 of it is not told apart from none ([`super::priority::significant`]). Absent
    /// with fewer than 2 scores on either side, and in reports written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se: Option<f64>,
}

/// How a theme changed since the previous run (or the compared report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Not there before.
    New,
    /// More than 10% larger.
    Grew,
    /// More than 10% smaller.
    Shrank,
    /// Within ±10%.
    Stable,
    /// There before, not now.
    Vanished,
}

impl Change {
    /// From the ratio of a theme's size (or share) now to before: ±10% is stable.
    pub fn from_ratio(r: f64) -> Change {
        if r > 1.1 {
            Change::Grew
        } else if r < 0.9 {
            Change::Shrank
        } else {
            Change::Stable
        }
    }

    /// The word shown for it.
    pub fn word(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Grew => "grew",
            Change::Shrank => "shrank",
            Change::Stable => "stable",
            Change::Vanished => "vanished",
        }
    }
}

/// One theme with everything the report shows about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ThemeSummary {
    /// Stable id (`T1`, `T2`…): kept across runs by centroid matching.
    pub id: String,
    /// Label: the user's, else the top keyphrase.
    pub label: String,
    /// Keyphrases, best first (2–4 word phrases and single terms), deduplicated.
    pub keywords: Vec<String>,
    /// Verbatims whose first theme this is.
    pub size: usize,
    /// size / all verbatims in scope.
    pub share: f64,
    /// Verbatims that have it as second theme.
    pub secondary: usize,
    /// True for a theme the user seeded.
    pub seeded: bool,
    /// Sentiment of its verbatims.
    pub sentiment: SentimentSummary,
    /// Representative quotes (nearest the centroid, diversified).
    pub quotes: Vec<Quote>,
    /// Size over time.
    pub trend: Trend,
    /// Breakdown by each segment field.
    pub segments: Vec<SegmentBreakdown>,
    /// Effect on the score, when there is a score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<ScoreDriver>,
    /// Change since the compared run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// In an aspect-tree report, a child's parent (`P<n>`); absent for parents and topic
    /// themes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// In an aspect-tree report, every opinion unit of a child in scope (the drill-down): the
    /// unit highlighted inside its verbatim, cut around it. Empty for aggregates-only callers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<Quote>,
}

/// A theme that existed in the compared run and is gone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VanishedTheme {
    /// Its id.
    pub id: String,
    /// Its label.
    pub label: String,
    /// Its size then.
    pub size: usize,
}

/// How to reproduce a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportManifest {
    /// verbatim's version.
    pub version: String,
    /// sha256 over the ids and content hashes of the verbatims in scope, in id order.
    pub data_snapshot: String,
    /// Embedding model fingerprint (name, hash of config/tokenizer/weights, pooling).
    pub model: String,
    /// sha256 of the sentiment model used.
    pub sentiment_model: String,
    /// Settings of the run (filter, min size, seed…), as given.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
    /// The period covered (first and last date), when dated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<(String, String)>,
    /// The score map text scores were read through at ingest (`--score-map`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub score_map: Option<crate::ingest::ScoreMap>,
}

/// Everything `verbatim report` writes (JSON as is; HTML and Markdown render it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    /// Title shown at the top.
    pub title: String,
    /// How to reproduce it.
    pub manifest: ReportManifest,
    /// Verbatims in scope.
    pub verbatims: usize,
    /// Verbatims in no theme ("other").
    pub other: usize,
    /// Sentiment over every verbatim in scope.
    pub sentiment: SentimentSummary,
    /// Mean score over scored verbatims, when there is a score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_mean: Option<f64>,
    /// Segment fields, in the order the breakdowns list them.
    pub segment_fields: Vec<String>,
    /// What to fix first: the problem themes by priority ([`super::priority`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<super::priority::Priority>,
    /// Themes, largest first (ties by id).
    pub themes: Vec<ThemeSummary>,
    /// Themes of the compared run that are gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vanished: Vec<VanishedTheme>,
    /// True for a report on the aspect tree (`report --by aspect`, the default): `themes` then
    /// holds each parent followed by its children, a verbatim counts in every node one of its
    /// units is in (shares of verbatims do not add up to 100%), and the priorities rank
    /// children.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tree: bool,
}
