//! Comparisons ("is green tea or black tea rated better?", "X vs Y", "X ou Y, lequel est mieux
//! noté ?") answered from the store: no model, no retrieval.
//!
//! Why: asked to compare, the model answered "Green tea [1][3]" from one review that disliked
//! green tea; the scores in the data were never read. Here each side is the set of verbatims in
//! scope that contain it as a phrase ([`super::phrase`], the rule shown in the answer), and for
//! each side the answer gives:
//!
//! * `n`, the verbatims that mention it (a verbatim that mentions both counts for both; the
//!   overlap is given);
//! * the **mean score** — or, when the scores in scope take at most two values (0/1, thumbs),
//!   the **top-box share** (the share at the higher value), since a mean of 0/1 reads as a rate
//!   anyway and a mean of two arbitrary values means nothing;
//! * the **% negative**: the unit sentiment ([`super::evidence::Scorer`]) of the units that
//!   mention the side (their mean, when several), else of the verbatim's units.
//!
//! The verdict compares the score when both sides have scores, else the % negative — and then
//! only when the two shares differ by more than 1.96 standard errors (`clear_difference`: 41%
//! against 41% is no verdict) — and says when a side has fewer than [`FEW`] verbatims. Under aggregates-only access a side with fewer
//! than k verbatims is suppressed (its numbers are not shown and it is not compared).

use serde::Serialize;

use crate::access::Grant;
use crate::lang::Lang;
use crate::sentiment::SentimentHead;
use crate::store::{Filter, Store};
use crate::themes::Polarity;

use super::evidence::Scorer;
use super::phrase::Phrase;
use super::AskError;

/// Under this many verbatims a side's numbers are read "with care".
pub const FEW: usize = 10;

/// One side of a comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    /// The side as written in the question.
    pub name: String,
    /// Verbatims in scope that mention it (0 when suppressed).
    pub n: usize,
    /// Of those, verbatims with a score.
    pub scored: usize,
    /// Their mean score (scores with more than two values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_score: Option<f64>,
    /// Share at the higher score (scores with at most two values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_box: Option<f64>,
    /// Share of its verbatims whose mention reads negative.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negative: Option<f64>,
    /// Fewer than k verbatims under aggregates-only access: nothing shown.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// The answer to a comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The two sides.
    pub sides: Vec<Side>,
    /// Verbatims that mention both (0 when under k for aggregates-only access).
    pub both: usize,
    /// Verbatims in scope.
    pub total: usize,
    /// The score values in scope: two values (`"0/1"`), or the range (`"1–5"`); `none`.
    pub scale: String,
    /// How a verbatim was matched to a side, in words.
    pub rule: String,
}

struct Tally {
    n: usize,
    scores: Vec<f64>,
    negative: usize,
}

/// Compares the two `sides` over the verbatims in `scope`.
pub fn compare(
    store: &Store,
    grant: &Grant,
    scope: &Filter,
    sides: &[String; 2],
    head: Option<&SentimentHead>,
) -> Result<Comparison, AskError> {
    let phrases = [Phrase::new(&sides[0]), Phrase::new(&sides[1])];
    let mut tallies = [(); 2].map(|_| Tally {
        n: 0,
        scores: Vec::new(),
        negative: 0,
    });
    let mut total = 0usize;
    let mut both = 0usize;
    let mut values: Vec<f64> = Vec::new();
    let mut range: Option<(f64, f64)> = None;
    let mut matched: Vec<(crate::store::Verbatim, [bool; 2])> = Vec::new();
    store.for_each(|v, _, _| {
        if !scope.matches(&v) {
            return Ok(());
        }
        total += 1;
        if let Some(s) = v.score {
            if !values.contains(&s) && values.len() < 3 {
                values.push(s);
            }
            range = Some(range.map_or((s, s), |(lo, hi): (f64, f64)| (lo.min(s), hi.max(s))));
        }
        let terms = super::phrase::Terms::of(&v.text);
        let m = [
            phrases[0].matches_terms(&terms),
            phrases[1].matches_terms(&terms),
        ];
        if m[0] || m[1] {
            matched.push((v, m));
        }
        Ok(())
    })?;
    values.sort_by(f64::total_cmp);
    let two_valued = !values.is_empty() && values.len() <= 2;
    let top = range.map(|r| r.1);
    let has_tree = store
        .aspect_nodes()?
        .iter()
        .any(|n| n.is_parent && n.state == crate::store::ThemeState::Active);
    let scorer = Scorer::new(store, head, has_tree)?;
    let docs: Vec<i64> = matched.iter().map(|(v, _)| v.doc).collect();
    let units = store.units_of(&docs)?;
    for (v, m) in &matched {
        if m[0] && m[1] {
            both += 1;
        }
        for side in 0..2 {
            if !m[side] {
                continue;
            }
            let t = &mut tallies[side];
            t.n += 1;
            if let Some(s) = v.score {
                t.scores.push(s);
            }
            let list = units.get(&v.doc).map(Vec::as_slice).unwrap_or(&[]);
            let mentioning: Vec<f32> = list
                .iter()
                .filter(|u| {
                    v.text
                        .get(u.start..u.end)
                        .is_some_and(|t| phrases[side].matches(t))
                })
                .map(|u| scorer.score(v.doc, u, &v.text))
                .collect();
            let all: Vec<f32> = list
                .iter()
                .map(|u| scorer.score(v.doc, u, &v.text))
                .collect();
            let pick = if !mentioning.is_empty() {
                mentioning
            } else if !all.is_empty() {
                all
            } else {
                vec![crate::sentiment::rule::score(&v.text).score]
            };
            let mean = pick.iter().sum::<f32>() / pick.len() as f32;
            if scorer.polarity(mean) == Polarity::Negative {
                t.negative += 1;
            }
        }
    }
    let out_sides = tallies
        .iter()
        .zip(sides)
        .map(|(t, name)| {
            if grant.cell(t.n).is_none() {
                return Side {
                    name: name.clone(),
                    n: 0,
                    scored: 0,
                    mean_score: None,
                    top_box: None,
                    negative: None,
                    suppressed: true,
                };
            }
            let k = t.scores.len();
            let (mean_score, top_box) = match (k, two_valued) {
                (0, _) => (None, None),
                (_, true) => (
                    None,
                    Some(round(
                        t.scores.iter().filter(|&&s| Some(s) == top).count() as f64 / k as f64,
                    )),
                ),
                (_, false) => (Some(round(t.scores.iter().sum::<f64>() / k as f64)), None),
            };
            Side {
                name: name.clone(),
                n: t.n,
                scored: k,
                mean_score,
                top_box,
                negative: (t.n > 0).then(|| round(t.negative as f64 / t.n as f64)),
                suppressed: false,
            }
        })
        .collect();
    let scale = match values.as_slice() {
        [] => "none".to_string(),
        [a] => format!("{a}"),
        [a, b] => format!("{a}/{b}"),
        _ => range.map_or(String::new(), |(lo, hi)| format!("{lo}–{hi}")),
    };
    Ok(Comparison {
        sides: out_sides,
        both: grant.cell(both).unwrap_or(0),
        total,
        scale,
        rule: format!(
            "a verbatim counts for a side when it contains the side's words in order, adjacent (English or French stemming, apostrophes normalised): \"{}\", \"{}\"",
            phrases[0].written, phrases[1].written
        ),
    })
}

fn round(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

impl Comparison {
    /// The answer in words, in the question's language; `min_cell` is the caller's k.
    pub fn says(&self, lang: Lang, min_cell: usize) -> Vec<String> {
        let fr = lang == Lang::Fr;
        let pct = |x: f64| format!("{:.0}%", 100.0 * x);
        let mut lines = Vec::new();
        for s in &self.sides {
            lines.push(if s.suppressed {
                if fr {
                    format!(
                        "« {} » : moins de {min_cell} avis — chiffres masqués (accès aux agrégats seulement).",
                        s.name
                    )
                } else {
                    format!(
                        "\"{}\": fewer than {min_cell} verbatims — numbers suppressed (aggregates-only access).",
                        s.name
                    )
                }
            } else {
                let score = match (s.mean_score, s.top_box) {
                    (Some(m), _) if fr => format!("note moyenne {m:.2} ({} notés)", s.scored),
                    (Some(m), _) => format!("mean score {m:.2} ({} scored)", s.scored),
                    (_, Some(t)) if fr => {
                        format!("{} à la note haute ({} notés)", pct(t), s.scored)
                    }
                    (_, Some(t)) => format!("{} top score ({} scored)", pct(t), s.scored),
                    _ if fr => "sans note".to_string(),
                    _ => "no score".to_string(),
                };
                let neg = s.negative.map(&pct).unwrap_or_else(|| "—".into());
                if fr {
                    format!(
                        "« {} » : {} avis ; {score} ; {neg} négatifs.",
                        s.name, s.n
                    )
                } else {
                    format!(
                        "\"{}\": {} verbatims; {score}; {neg} negative.",
                        s.name, s.n
                    )
                }
            });
        }
        lines.insert(0, self.verdict(fr));
        lines.push(if fr {
            format!(
                "{} avis parlent des deux ; {} avis dans le périmètre. Règle : un avis compte pour un côté s'il en contient les mots dans l'ordre, côte à côte (racines anglaises ou françaises, apostrophes normalisées). Aucun modèle de langue n'a été utilisé.",
                self.both, self.total
            )
        } else {
            format!(
                "{} verbatims mention both; {} verbatims in scope. Rule: {}. No language model was used.",
                self.both, self.total, self.rule
            )
        });
        lines
    }

    fn verdict(&self, fr: bool) -> String {
        let [a, b] = [&self.sides[0], &self.sides[1]];
        if a.suppressed || b.suppressed {
            return if fr {
                "Comparaison impossible : un côté a trop peu d'avis pour votre accès.".into()
            } else {
                "Not compared: a side has too few verbatims for your access.".into()
            };
        }
        if a.n == 0 || b.n == 0 {
            let none = if a.n == 0 { a } else { b };
            return if fr {
                format!(
                    "Aucun avis ne mentionne « {} » : pas de comparaison.",
                    none.name
                )
            } else {
                format!(
                    "No verbatim mentions \"{}\": nothing to compare.",
                    none.name
                )
            };
        }
        let care = if a.n < FEW || b.n < FEW {
            if fr {
                " (peu d'avis : à lire avec prudence)"
            } else {
                " (few verbatims: read with care)"
            }
        } else {
            ""
        };
        let by_score = match (a.mean_score.or(a.top_box), b.mean_score.or(b.top_box)) {
            (Some(x), Some(y)) => Some((x, y)),
            _ => None,
        };
        match by_score {
            Some((x, y)) if (x - y).abs() < 1e-9 => {
                if fr {
                    format!("« {} » et « {} » ont la même note{care}.", a.name, b.name)
                } else {
                    format!(
                        "\"{}\" and \"{}\" are rated the same{care}.",
                        a.name, b.name
                    )
                }
            }
            Some((x, y)) => {
                let (w, l) = if x > y { (a, b) } else { (b, a) };
                if fr {
                    format!("« {} » est mieux noté que « {} »{care}.", w.name, l.name)
                } else {
                    format!("\"{}\" is rated better than \"{}\"{care}.", w.name, l.name)
                }
            }
            None => {
                let (x, y) = (a.negative.unwrap_or(0.0), b.negative.unwrap_or(0.0));
                let (w, l) = if x <= y { (a, b) } else { (b, a) };
                if !clear_difference(x, a.n, y, b.n) {
                    let pct = |v: f64| format!("{:.0}%", 100.0 * v);
                    return if fr {
                        format!(
                            "Pas de note dans les données, et pas d'écart net dans la part d'avis négatifs (« {} » {}, « {} » {}){care}.",
                            a.name, pct(x), b.name, pct(y)
                        )
                    } else {
                        format!(
                            "No scores in the data, and no clear difference in how often they read negative (\"{}\" {}, \"{}\" {}){care}.",
                            a.name, pct(x), b.name, pct(y)
                        )
                    };
                }
                if fr {
                    format!(
                        "Pas de note dans les données : « {} » est moins souvent négatif que « {} »{care}.",
                        w.name, l.name
                    )
                } else {
                    format!(
                        "No scores in the data: \"{}\" reads negative less often than \"{}\"{care}.",
                        w.name, l.name
                    )
                }
            }
        }
    }
}

/// Whether two shares (`x` of `n`, `y` of `m`) differ by more than 1.96 standard errors of the
/// pooled proportion (the rule of the priority list): "41% against 41%" is no verdict.
fn clear_difference(x: f64, n: usize, y: f64, m: usize) -> bool {
    if n == 0 || m == 0 {
        return false;
    }
    let (n, m) = (n as f64, m as f64);
    let p = (x * n + y * m) / (n + m);
    let se = (p * (1.0 - p) * (1.0 / n + 1.0 / m)).sqrt();
    (x - y).abs() > crate::themes::priority::SIGNIFICANCE_Z * se
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_shares_differ_clearly_only_beyond_two_standard_errors() {
        // The demo's food (41% of 122) and service (41% of 111): no verdict.
        assert!(!clear_difference(0.41, 122, 0.405, 111));
        // 10% of 77 against 4% of 45 (green and black tea): within the noise too.
        assert!(!clear_difference(0.10, 77, 0.04, 45));
        // 40% of 300 against 20% of 300: clear.
        assert!(clear_difference(0.40, 300, 0.20, 300));
        assert!(!clear_difference(0.5, 0, 0.1, 10));
    }
}
