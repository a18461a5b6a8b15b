//! What to fix first: the problem themes ranked by how much they cost, and a theme's score
//! impact in units people read.
//!
//! An analyst opening a report wants the one list a CX team acts on, not themes sorted by size
//! (the largest theme is often praise). The ranking is computed here, once, over the generic
//! shape of a theme — a share of verbatims, a sentiment mix, an optional score effect — so the
//! verbatim-level themes of today and the unit-level tree share it.
//!
//! **Formula.** For a theme *t* in a scope of verbatims:
//!
//! * `volume` = share of the scope's verbatims in *t*;
//! * `negativity` = share of *t*'s verbatims classed negative;
//! * `effect` = (the scope's mean score) − (the mean score without *t*'s verbatims), in points of
//!   the score: negative when *t* pulls the mean down (the opposite sign of
//!   [`ScoreDriver::impact`]);
//! * `drag` = max(0, −effect) / the largest max(0, −effect) over the themes: 0 … 1, and 0 for
//!   every theme when there is no score;
//! * **`priority = volume × negativity × (1 + drag)`**.
//!
//! So without a score the priority is volume × negativity, and the theme that pulls the score
//! down most counts at most twice as much as its size and negativity alone say — score impact
//! sharpens the order without letting a small theme with a few angry low scores jump a large
//! one.
//!
//! **Which themes are listed**: only problem themes — negativity above the scope's share of
//! negative verbatims, or a measurable negative effect on the score (the score is what the
//! respondent said in numbers: a theme its text calls mostly positive but whose verbatims score
//! low is worth a look, and its low negativity keeps it low in the list). Praise therefore never
//! leads the list: a theme at or under the scope's negativity with a score effect ≥ 0 is never
//! listed, and one with priority 0 (no negative verbatim) neither.
//!
//! **Which effects are told** ([`significant`]): an effect is listed only when it is larger
//! than its uncertainty — |effect| > 1.96 × its standard error, i.e. its 95% interval
//! excludes 0. The standard error is that of `(n_t / N)(mean_t − mean_rest)`: `n_t / N` times
//! Welch's `sqrt(s_t²/n_t + s_r²/n_r)` ([`ScoreDriver::se`]). So a −0.01-point effect on a
//! 1–10 scale from a few dozen verbatims, which noise alone makes, is neither listed as an
//! effect nor counted as score drag: the theme then ranks by volume × negativity alone.
//!
//! **Effect in words** ([`effect_value`]): points of mean score with the score's range ("−0.42
//! points of mean score (1–5)"), or percentage points of top-box share when every score is 0
//! or 1; two decimals, three when two would round to zero, and "no measurable effect" under
//! that — never "−0.00" — and the verb always follows the sign ("pulls … down" for a minus).

use serde::{Deserialize, Serialize};

use super::types::{ScoreDriver, SentimentSummary, ThemeSummary};

/// What kind of score a workspace has: how an effect on it is said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ScoreKind {
    /// A rating on a range (1–5 stars, 0–10 NPS question): effects in points of the mean.
    Mean,
    /// Every score is 0 or 1 (top-box, yes/no): effects in percentage points of the 1s.
    TopBox,
}

/// The range of the scores a driver was measured on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreScale {
    /// Mean or top-box.
    pub kind: ScoreKind,
    /// Lowest score seen in scope.
    pub min: f64,
    /// Highest score seen in scope.
    pub max: f64,
}

impl ScoreScale {
    /// The scale of a set of scores: top-box when every one is 0 or 1 (and both appear or not),
    /// else a mean on [min, max]. `None` without a finite score.
    pub fn of(scores: impl IntoIterator<Item = f64>) -> Option<ScoreScale> {
        let (mut min, mut max, mut binary, mut any) =
            (f64::INFINITY, f64::NEG_INFINITY, true, false);
        for s in scores.into_iter().filter(|s| s.is_finite()) {
            any = true;
            min = min.min(s);
            max = max.max(s);
            binary &= s == 0.0 || s == 1.0;
        }
        any.then_some(ScoreScale {
            kind: if binary {
                ScoreKind::TopBox
            } else {
                ScoreKind::Mean
            },
            min,
            max,
        })
    }

    /// The unit effects are said in: "points of mean score (1–5)", "percentage points of
    /// top-box share".
    pub fn unit(&self) -> String {
        match self.kind {
            ScoreKind::Mean => format!("points of mean score{}", self.range()),
            ScoreKind::TopBox => "percentage points of top-box share".to_string(),
        }
    }

    /// A mean score of unknown range (a driver written before scales were recorded).
    pub const UNKNOWN: ScoreScale = ScoreScale {
        kind: ScoreKind::Mean,
        min: f64::NAN,
        max: f64::NAN,
    };

    /// " (1–5)", " (0–10)", " (1.5–4.5)"; "" when unknown.
    fn range(&self) -> String {
        if !self.min.is_finite() || !self.max.is_finite() {
            return String::new();
        }
        let n = |x: f64| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                format!("{x}")
            }
        };
        format!(" ({}–{})", n(self.min), n(self.max))
    }
}

/// How many standard errors an effect must exceed to be told: its 95% interval excludes 0.
pub const SIGNIFICANCE_Z: f64 = 1.96;

/// True when the driver's effect exceeds its uncertainty (|effect| > 1.96 × standard error); a
/// driver without a standard error (a report written before it was recorded) is taken as is.
pub fn significant(driver: &ScoreDriver) -> bool {
    match driver.se {
        Some(se) if se.is_finite() => driver.impact.abs() > SIGNIFICANCE_Z * se,
        _ => true,
    }
}

/// A theme's effect on the mean score: the scope's mean minus the mean without it (negative when
/// it pulls the score down). `None` without a score.
pub fn effect(driver: &ScoreDriver) -> f64 {
    // `impact` is stored the other way round (positive: removing the theme raises the score).
    -driver.impact
}

/// The effect rounded as shown: (value in the unit shown, decimals); `None` when it rounds to
/// zero even at three decimals ("no measurable effect").
fn shown(effect: f64, scale: &ScoreScale) -> Option<(f64, usize)> {
    let v = match scale.kind {
        ScoreKind::Mean => effect,
        ScoreKind::TopBox => effect * 100.0,
    };
    if !v.is_finite() || v.abs() < 0.0005 {
        None
    } else if v.abs() < 0.005 {
        Some((v, 3))
    } else {
        Some((v, 2))
    }
}

/// True when the effect shows as a number (not "no measurable effect").
pub fn measurable(effect: f64, scale: &ScoreScale) -> bool {
    shown(effect, scale).is_some()
}

/// "−0.42 points of mean score (1–5)", "+3.10 percentage points of top-box share", or "no
/// measurable effect". A true minus sign; never "−0.00".
pub fn effect_value(effect: f64, scale: &ScoreScale) -> String {
    match shown(effect, scale) {
        None => "no measurable effect".to_string(),
        Some((v, d)) => {
            let sign = if v < 0.0 { "−" } else { "+" };
            let num = format!("{:.d$}", v.abs());
            format!("{sign}{num} {}", scale.unit())
        }
    }
}

/// What the effect does, in words that follow its sign: "pulls the mean score down", "lifts
/// the top-box share", "" when not measurable.
pub fn effect_verb(effect: f64, scale: &ScoreScale) -> &'static str {
    match (shown(effect, scale), scale.kind) {
        (None, _) => "",
        (Some((v, _)), ScoreKind::Mean) if v < 0.0 => "pulls the mean score down",
        (Some(_), ScoreKind::Mean) => "lifts the mean score",
        (Some((v, _)), ScoreKind::TopBox) if v < 0.0 => "pulls the top-box share down",
        (Some(_), ScoreKind::TopBox) => "lifts the top-box share",
    }
}

/// The effect as a short signed number for a chart: "−0.42", "−0.004", "+3.1 pp" (top-box),
/// "0" when not measurable.
pub fn effect_short(effect: f64, scale: &ScoreScale) -> String {
    match shown(effect, scale) {
        None => "0".to_string(),
        Some((v, d)) => {
            let sign = if v < 0.0 { "−" } else { "+" };
            let unit = if scale.kind == ScoreKind::TopBox {
                " pp"
            } else {
                ""
            };
            format!("{sign}{:.d$}{unit}", v.abs())
        }
    }
}

/// The effect and its verb: "−0.42 points of mean score (1–5): pulls the mean score down", or
/// "no measurable effect".
pub fn effect_words(effect: f64, scale: &ScoreScale) -> String {
    match effect_verb(effect, scale) {
        "" => effect_value(effect, scale),
        verb => format!("{}: {verb}", effect_value(effect, scale)),
    }
}

/// One line of the "what to fix first" list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Priority {
    /// Theme id.
    pub id: String,
    /// Theme label.
    pub label: String,
    /// Share of the scope's verbatims in the theme.
    pub share: f64,
    /// Share of the theme's verbatims classed negative.
    pub negative: f64,
    /// Effect on the mean score ([`effect`]), when there is a score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<f64>,
    /// The scale the effect is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScoreScale>,
    /// max(0, −effect) over the largest among the themes, 0 … 1.
    pub drag: f64,
    /// In the aspect tree, the child's parent (`P<n>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Its parent's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_label: Option<String>,
    /// share × negative × (1 + drag).
    pub priority: f64,
}

/// The formula, in one line, as the outputs print it under the list.
pub const FORMULA: &str = "priority = share of verbatims × share negative × (1 + score drag); \
score drag = the theme's pull on the mean score relative to the largest pull (0 to 1, 0 without \
a score). Only themes more negative than all verbatims, or pulling the score down, are listed; \
in the aspect tree, not what General holds (comments that name no aspect: no one team owns them).";

/// Shares of negative and positive verbatims of a sentiment summary; `None` when empty.
fn negative_positive(s: &SentimentSummary) -> Option<(f64, f64)> {
    let n = s.positive + s.neutral + s.negative;
    (n > 0).then(|| (s.negative as f64 / n as f64, s.positive as f64 / n as f64))
}

/// The problem themes of `themes`, highest priority first (ties by id), measured against the
/// scope's `overall` sentiment. See the module doc for the formula and the rule of who is
/// listed.
pub fn priorities(themes: &[ThemeSummary], overall: &SentimentSummary) -> Vec<Priority> {
    let (neg0, _) = negative_positive(overall).unwrap_or((0.0, 0.0));
    // Only an effect larger than its uncertainty counts (and is listed).
    let told = |t: &ThemeSummary| t.score.as_ref().filter(|d| significant(d)).map(effect);
    let pull = |t: &ThemeSummary| told(t).map_or(0.0, |e| (-e).max(0.0));
    let max_pull = themes.iter().map(pull).fold(0.0_f64, f64::max);
    let mut out: Vec<Priority> = themes
        .iter()
        .filter_map(|t| {
            let (neg, _) = negative_positive(&t.sentiment)?;
            let e = told(t);
            let scale = t.score.as_ref().and_then(|d| d.scale);
            let drags = match (e, scale) {
                (Some(e), Some(s)) => e < 0.0 && measurable(e, &s),
                (Some(e), None) => e < -0.0005,
                _ => false,
            };
            let problem = neg > neg0 + 1e-12 || drags;
            let drag = if max_pull > 0.0 {
                pull(t) / max_pull
            } else {
                0.0
            };
            let priority = t.share * neg * (1.0 + drag);
            (problem && priority > 0.0).then(|| Priority {
                id: t.id.clone(),
                label: t.label.clone(),
                share: t.share,
                negative: round4(neg),
                effect: e,
                scale,
                drag: round4(drag),
                priority: (priority * 1e6).round() / 1e6,
                parent: t.parent.clone(),
                parent_label: None,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.priority
            .total_cmp(&a.priority)
            .then(a.id.len().cmp(&b.id.len()))
            .then(a.id.cmp(&b.id))
    });
    out
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// A priority in the same readable unit as its effect: "−0.42 points of mean score (1–5)", or
/// "" without a score.
pub fn priority_effect(p: &Priority) -> String {
    match (p.effect, p.scale) {
        (Some(e), Some(s)) => effect_value(e, &s),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::themes::{ThemeSummary, Trend};

    fn mean15() -> ScoreScale {
        ScoreScale::of([1.0, 5.0, 3.0]).unwrap()
    }

    #[test]
    fn the_scale_is_read_from_the_scores() {
        assert_eq!(mean15().kind, ScoreKind::Mean);
        assert_eq!((mean15().min, mean15().max), (1.0, 5.0));
        let nps = ScoreScale::of([0.0, 10.0, 7.0, 9.0]).unwrap();
        assert_eq!(nps.kind, ScoreKind::Mean);
        let tb = ScoreScale::of([0.0, 1.0, 1.0]).unwrap();
        assert_eq!(tb.kind, ScoreKind::TopBox);
        assert_eq!(ScoreScale::of([f64::NAN]), None);
        assert_eq!(ScoreScale::of(Vec::new()), None);
    }

    #[test]
    fn effects_read_in_points_or_percentage_points_and_never_minus_zero() {
        let s = mean15();
        assert_eq!(effect_value(-0.42, &s), "−0.42 points of mean score (1–5)");
        assert_eq!(
            effect_words(-0.42, &s),
            "−0.42 points of mean score (1–5): pulls the mean score down"
        );
        assert_eq!(
            effect_words(0.1, &s),
            "+0.10 points of mean score (1–5): lifts the mean score"
        );
        let nps = ScoreScale::of([0.0, 10.0]).unwrap();
        assert_eq!(
            effect_words(-1.234, &nps),
            "−1.23 points of mean score (0–10): pulls the mean score down"
        );
        let tb = ScoreScale::of([0.0, 1.0]).unwrap();
        assert_eq!(
            effect_words(-0.0312, &tb),
            "−3.12 percentage points of top-box share: pulls the top-box share down"
        );
        assert_eq!(
            effect_words(0.0004, &tb),
            "+0.04 percentage points of top-box share: lifts the top-box share"
        );
        // Tiny effects: three decimals where two would say 0.00, then nothing measurable.
        assert_eq!(
            effect_value(-0.004, &s),
            "−0.004 points of mean score (1–5)"
        );
        assert_eq!(
            effect_value(-0.0049, &s),
            "−0.005 points of mean score (1–5)"
        );
        for tiny in [-0.0004, 0.0, -0.0, 0.0001, f64::NAN] {
            assert_eq!(effect_words(tiny, &s), "no measurable effect", "{tiny}");
            assert_eq!(effect_verb(tiny, &s), "");
        }
        assert_eq!(effect_words(-0.000004, &tb), "no measurable effect");
        assert_eq!(effect_short(-0.000004, &tb), "0");
        assert_eq!(effect_short(-0.0312, &tb), "−3.12 pp");
        assert_eq!(effect_short(-0.004, &s), "−0.004");
        // A driver written before scales were recorded: no range.
        assert_eq!(
            effect_words(-0.5, &ScoreScale::UNKNOWN),
            "−0.50 points of mean score: pulls the mean score down"
        );
        // The words never contradict the sign.
        for e in [-2.0, -0.3, -0.006, -0.001, 0.001, 0.02, 1.5] {
            for scale in [s, nps, tb] {
                let w = effect_words(e, &scale);
                assert!(!w.contains("−0.00 ") && !w.contains("+0.00 "), "{e}: {w}");
                assert_eq!(w.starts_with('−'), w.contains("down"), "{e}: {w}");
                assert_eq!(w.starts_with('+'), w.contains("lifts"), "{e}: {w}");
            }
        }
    }

    fn theme(
        id: &str,
        share: f64,
        (pos, neu, neg): (usize, usize, usize),
        effect: Option<f64>,
    ) -> ThemeSummary {
        ThemeSummary {
            id: id.into(),
            label: format!("label {id}"),
            keywords: vec![],
            size: pos + neu + neg,
            share,
            secondary: 0,
            seeded: false,
            sentiment: SentimentSummary {
                positive: pos,
                neutral: neu,
                negative: neg,
                mean: 0.0,
            },
            quotes: vec![],
            trend: Trend::default(),
            segments: vec![],
            score: effect.map(|e| ScoreDriver {
                mean: 3.0,
                rest_mean: 3.0,
                impact: -e,
                scored: 10,
                scale: ScoreScale::of([1.0, 5.0]),
                se: None,
            }),
            change: None,
            parent: None,
            units: vec![],
        }
    }

    #[test]
    fn priority_is_volume_times_negativity_times_one_plus_drag() {
        // Scope: 30% negative, 50% positive.
        let overall = SentimentSummary {
            positive: 50,
            neutral: 20,
            negative: 30,
            mean: 0.0,
        };
        let themes = vec![
            // Praise, the largest theme: never listed.
            theme("T1", 0.40, (90, 5, 5), Some(0.30)),
            // Large, 40% negative, small drag.
            theme("T2", 0.30, (40, 20, 40), Some(-0.05)),
            // Small, 80% negative, the largest drag.
            theme("T3", 0.10, (10, 10, 80), Some(-0.20)),
            // As negative as the scope, no drag: not a problem.
            theme("T4", 0.10, (50, 20, 30), Some(0.0)),
            // At the scope's negativity but dragging the score: listed.
            theme("T5", 0.10, (40, 30, 30), Some(-0.10)),
        ];
        let p = priorities(&themes, &overall);
        let ids: Vec<&str> = p.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["T3", "T2", "T5"]);
        // T3: 0.10 × 0.8 × (1 + 1) = 0.16; T2: 0.30 × 0.4 × (1 + 0.25) = 0.15;
        // T5: 0.10 × 0.3 × (1 + 0.5) = 0.045.
        assert!((p[0].priority - 0.16).abs() < 1e-9, "{p:?}");
        assert!((p[1].priority - 0.15).abs() < 1e-9, "{p:?}");
        assert!((p[2].priority - 0.045).abs() < 1e-9, "{p:?}");
        assert_eq!(p[0].drag, 1.0);
        assert_eq!(p[1].drag, 0.25);
        assert_eq!(priority_effect(&p[0]), "−0.20 points of mean score (1–5)");
        // Without a score: volume × negativity, and T2 (0.12) now leads T3 (0.08); T5 is at the
        // scope's negativity and no longer listed.
        let unscored: Vec<ThemeSummary> = themes
            .iter()
            .cloned()
            .map(|mut t| {
                t.score = None;
                t
            })
            .collect();
        let p = priorities(&unscored, &overall);
        let ids: Vec<&str> = p.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["T2", "T3"]);
        assert!((p[0].priority - 0.12).abs() < 1e-9);
        assert_eq!(priority_effect(&p[0]), "");
        // A theme more positive than the scope that drags the score is listed (the score says
        // so), and ranks below an equally large, more negative one.
        let mixed = vec![
            theme("T9", 0.3, (80, 0, 20), Some(-0.3)),
            theme("T8", 0.3, (40, 0, 60), Some(-0.3)),
        ];
        let ids: Vec<String> = priorities(&mixed, &overall)
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, ["T8", "T9"]);
        // Nothing in scope: nothing listed.
        assert!(priorities(&[], &SentimentSummary::default()).is_empty());
    }

    #[test]
    fn an_effect_within_its_uncertainty_is_not_listed_nor_counted_as_drag() {
        let overall = SentimentSummary {
            positive: 50,
            neutral: 10,
            negative: 40,
            mean: 0.0,
        };
        // T1: −0.01 points with a standard error of 0.05 (noise); T2: −0.30 ± 0.05 (real).
        let mut noisy = theme("T1", 0.2, (20, 0, 80), Some(-0.01));
        noisy.score.as_mut().unwrap().se = Some(0.05);
        let mut real = theme("T2", 0.2, (20, 0, 80), Some(-0.30));
        real.score.as_mut().unwrap().se = Some(0.05);
        assert!(!significant(noisy.score.as_ref().unwrap()));
        assert!(significant(real.score.as_ref().unwrap()));
        let p = priorities(&[noisy.clone(), real], &overall);
        let t1 = p.iter().find(|p| p.id == "T1").unwrap();
        assert_eq!(t1.effect, None, "the noise is not listed as an effect");
        assert_eq!(priority_effect(t1), "");
        assert_eq!(t1.drag, 0.0);
        let t2 = p.iter().find(|p| p.id == "T2").unwrap();
        assert_eq!(t2.drag, 1.0);
        assert_eq!(p[0].id, "T2", "the real drag ranks first");
        // A positive, more-than-scope theme whose only claim was the noisy drag is not listed.
        let mut praise = theme("T3", 0.3, (90, 0, 10), Some(-0.01));
        praise.score.as_mut().unwrap().se = Some(0.05);
        assert!(priorities(&[praise], &overall).is_empty());
        // Exactly at 1.96 standard errors: not larger, not told.
        let mut edge = theme("T4", 0.2, (20, 0, 80), Some(-0.098));
        edge.score.as_mut().unwrap().se = Some(0.05);
        assert!(!significant(edge.score.as_ref().unwrap()));
    }
}
