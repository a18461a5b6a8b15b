//! Raw cells → [`Record`]s, the same way for every format.
//!
//! Everything here is about values, not files: text cleaning, ids, scores, and the one
//! file-wide decision, the day/month order of numeric dates. That order is settled before any
//! record is built, from every value in the date column:
//!
//! * a first part over 12 (`15/03/2024`) proves day/month, a second part over 12 (`03/15/2024`)
//!   proves month/day;
//! * only one kind of proof → that order;
//! * both → the majority (day/month on a tie), a [`Warning::MixedDateOrder`], and each row whose
//!   date proves the other order is rejected rather than read with its day and month swapped;
//! * no proof but ambiguous values → day/month, with a [`Warning::AmbiguousDateOrder`] that names
//!   the `--date-format` to pass if that is wrong.
//!
//! A `date_format` in the mapping skips all this: every date must follow it.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::dates::{self, DateOrder, Evidence};
use super::mapping::{Cell, Plan, RawRow};
use super::scores::{Lookup, ScoreMap};
use super::xlsx::{format_datetime, format_number};
use super::{Mapping, OnBadDate, ReadOptions, Record, RowError, Warning};

/// Rows rejected for dates of one shape are summed up in one warning from this many on.
const FOLD_AT_LEAST: usize = 3;
/// How many values of one shape a suggested `--date-format` is checked against.
const SUGGEST_SAMPLES: usize = 50;

/// The id of a record without an id column: `h` + the first 16 hex digits of the SHA-256 of its
/// text. Identical texts get identical ids, so re-ingesting a file does not duplicate it, and two
/// respondents who wrote exactly the same words collapse into one verbatim.
pub fn content_id(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!("h{}", hex::encode(&digest[..8]))
}

/// How the date column is read in this file.
enum DateRule {
    Forced(String),
    Auto {
        order: DateOrder,
        /// When the file mixes orders: rows proving this (minority) order are rejected.
        reject: Option<DateOrder>,
        day_first: usize,
        month_first: usize,
    },
}

pub(crate) fn build(
    path: &Path,
    plan: &Plan,
    mapping: &Mapping,
    opts: &ReadOptions,
    rows: Vec<Result<RawRow, RowError>>,
    warnings: &mut Vec<Warning>,
) -> Vec<Result<Record, RowError>> {
    let rule = match (plan.date, &mapping.date_format) {
        (Some(_), Some(format)) => Some(DateRule::Forced(format.clone())),
        (Some(slot), None) => Some(infer_order(path, plan.column(slot), slot, &rows, warnings)),
        (None, _) => None,
    };
    let builder = Builder {
        plan,
        opts,
        rule: rule.as_ref(),
        score_map: mapping.score_map.as_ref(),
        skip_bad_dates: mapping.on_bad_date == OnBadDate::SkipDate,
    };
    let dated = plan.date.map_or(0, |slot| {
        rows.iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|r| !is_empty_cell(&r.cells[slot]))
            .count()
    });
    let mut bad_dates = Vec::new();
    let out = rows
        .into_iter()
        .map(|row| {
            let row = row?;
            let mut bad = None;
            let built = builder.record(&row, &mut bad).map_err(|reason| RowError {
                path: path.to_path_buf(),
                line: row.line,
                end_line: None,
                reason,
            });
            // Kept without its date only if nothing else rejected the row.
            if let Some(bad) = bad.filter(|_| !builder.skip_bad_dates || built.is_ok()) {
                bad_dates.push((row.line, bad));
            }
            built
        })
        .collect();
    if let (Some(slot), Some(rule)) = (plan.date, rule.as_ref()) {
        let column = plan.column(slot);
        let order = match rule {
            DateRule::Auto { order, .. } => *order,
            DateRule::Forced(_) => DateOrder::DayFirst,
        };
        let summary = DateSummary {
            path,
            column,
            order,
            dated,
        };
        if builder.skip_bad_dates {
            summary.kept(&bad_dates, warnings);
        } else {
            summary.rejected(&bad_dates, warnings);
        }
    }
    out
}

/// A date value that could not be used.
struct BadDate {
    value: String,
    /// Not a date at all (rather than a date contradicting the file's day/month order).
    unparsable: bool,
}

/// Says once what many rows share, instead of the same line per row.
struct DateSummary<'a> {
    path: &'a Path,
    column: &'a str,
    order: DateOrder,
    dated: usize,
}

impl DateSummary<'_> {
    /// `--on-bad-date skip-date`: one warning counting every row kept without its date.
    fn kept(&self, bad: &[(u64, BadDate)], warnings: &mut Vec<Warning>) {
        if bad.is_empty() {
            return;
        }
        let by_shape = group_by_shape(bad.iter().filter(|(_, b)| b.unparsable));
        let (example, suggestion) = match by_shape.first() {
            Some((_, values)) => (values[0].1.to_string(), self.suggest(values)),
            None => (bad[0].1.value.clone(), None),
        };
        warnings.push(Warning::UnreadableDates {
            path: self.path.to_path_buf(),
            column: self.column.to_string(),
            rows: bad.len(),
            dated: self.dated,
            example,
            suggestion,
            kept: true,
            lines: bad.iter().map(|(line, _)| *line).collect(),
        });
    }

    /// Rows rejected: one warning per shape of unreadable value that several rows share.
    fn rejected(&self, bad: &[(u64, BadDate)], warnings: &mut Vec<Warning>) {
        for (_, values) in group_by_shape(bad.iter().filter(|(_, b)| b.unparsable)) {
            if values.len() < FOLD_AT_LEAST {
                continue;
            }
            warnings.push(Warning::UnreadableDates {
                path: self.path.to_path_buf(),
                column: self.column.to_string(),
                rows: values.len(),
                dated: self.dated,
                example: values[0].1.to_string(),
                suggestion: self.suggest(&values),
                kept: false,
                lines: values.iter().map(|(line, _)| *line).collect(),
            });
        }
    }

    fn suggest(&self, values: &[(u64, &str)]) -> Option<String> {
        let samples: Vec<&str> = values
            .iter()
            .take(SUGGEST_SAMPLES)
            .map(|(_, v)| *v)
            .collect();
        dates::suggest_format(&samples, self.order)
    }
}

/// Values grouped by [`dates::shape`], the largest group first (ties: first seen first).
fn group_by_shape<'a>(
    bad: impl Iterator<Item = &'a (u64, BadDate)>,
) -> Vec<(String, Vec<(u64, &'a str)>)> {
    let mut groups: Vec<(String, Vec<(u64, &'a str)>)> = Vec::new();
    for (line, b) in bad {
        let shape = dates::shape(&b.value);
        match groups.iter_mut().find(|(s, _)| *s == shape) {
            Some((_, values)) => values.push((*line, b.value.as_str())),
            None => groups.push((shape, vec![(*line, b.value.as_str())])),
        }
    }
    groups.sort_by_key(|(_, values)| std::cmp::Reverse(values.len()));
    groups
}

fn is_empty_cell(cell: &Cell) -> bool {
    match cell {
        Cell::Missing => true,
        Cell::Text(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn infer_order(
    path: &Path,
    column: &str,
    slot: usize,
    rows: &[Result<RawRow, RowError>],
    warnings: &mut Vec<Warning>,
) -> DateRule {
    let (mut day_first, mut month_first) = (0, 0);
    let mut ambiguous: Option<&str> = None;
    for row in rows.iter().filter_map(|r| r.as_ref().ok()) {
        if let Some(Cell::Text(s)) = row.cells.get(slot) {
            match dates::evidence(s) {
                Evidence::Proves(DateOrder::DayFirst) => day_first += 1,
                Evidence::Proves(DateOrder::MonthFirst) => month_first += 1,
                Evidence::Ambiguous => {
                    ambiguous.get_or_insert(s.trim());
                }
                Evidence::None => {}
            }
        }
    }
    let order = if month_first > day_first {
        DateOrder::MonthFirst
    } else {
        DateOrder::DayFirst
    };
    let mut reject = None;
    if day_first > 0 && month_first > 0 {
        reject = Some(match order {
            DateOrder::DayFirst => DateOrder::MonthFirst,
            DateOrder::MonthFirst => DateOrder::DayFirst,
        });
        warnings.push(Warning::MixedDateOrder {
            path: path.to_path_buf(),
            column: column.to_string(),
            chosen: order,
            day_first,
            month_first,
        });
    } else if day_first == 0 && month_first == 0 {
        if let Some(example) = ambiguous {
            warnings.push(Warning::AmbiguousDateOrder {
                path: path.to_path_buf(),
                column: column.to_string(),
                example: example.to_string(),
                assumed: order,
            });
        }
    }
    DateRule::Auto {
        order,
        reject,
        day_first,
        month_first,
    }
}

struct Builder<'a> {
    plan: &'a Plan,
    opts: &'a ReadOptions,
    rule: Option<&'a DateRule>,
    score_map: Option<&'a ScoreMap>,
    /// `--on-bad-date skip-date`: a date that cannot be used is dropped, not the row.
    skip_bad_dates: bool,
}

impl Builder<'_> {
    /// The record of a row. A date value that could not be used is put in `bad_date`, whether
    /// the row was rejected for it or kept without it.
    fn record(&self, row: &RawRow, bad_date: &mut Option<BadDate>) -> Result<Record, String> {
        let plan = self.plan;
        let cell = |slot: usize| &row.cells[slot];
        let column = |slot: usize| plan.column(slot);

        let mut parts = Vec::with_capacity(plan.text.len());
        for &slot in &plan.text {
            let part = match cell(slot) {
                Cell::Missing => continue,
                Cell::Invalid(why) => return Err(format!("{why} in column '{}'", column(slot))),
                Cell::Text(s) => clean_text(s),
                Cell::Number(n) => format_number(*n),
                Cell::DateTime(t) => format_datetime(*t),
            };
            if !part.is_empty() {
                parts.push(part);
            }
        }
        if parts.is_empty() {
            let names: Vec<String> = plan
                .text
                .iter()
                .map(|&s| format!("'{}'", column(s)))
                .collect();
            return Err(match names.len() {
                1 => format!("no text (column {} is empty)", names[0]),
                _ => format!("no text (columns {} are empty)", names.join(", ")),
            });
        }
        let text = parts.join("\n");
        if text.len() > self.opts.max_text_bytes {
            return Err(format!(
                "text is {} bytes, over the limit of {} bytes",
                text.len(),
                self.opts.max_text_bytes
            ));
        }

        let (id, id_is_hash) = match plan.id {
            Some(slot) => match value(cell(slot), column(slot))? {
                Some(id) => (id, false),
                None => return Err(format!("no id (column '{}' is empty)", column(slot))),
            },
            None => (content_id(&text), true),
        };
        let respondent = match plan.respondent {
            Some(slot) => value(cell(slot), column(slot))?,
            None => None,
        };
        let date = match (plan.date, self.rule) {
            (Some(slot), Some(rule)) => match date(cell(slot), column(slot), rule) {
                Ok(d) => d,
                Err(DateFailure {
                    reason,
                    value: Some(value),
                    unparsable,
                }) => {
                    *bad_date = Some(BadDate { value, unparsable });
                    if !self.skip_bad_dates {
                        return Err(reason);
                    }
                    None
                }
                Err(DateFailure { reason, .. }) => return Err(reason),
            },
            _ => None,
        };
        let score = match plan.score {
            Some(slot) => score(cell(slot), column(slot), self.score_map)?,
            None => None,
        };
        let mut fields = BTreeMap::new();
        for (name, slot) in &plan.fields {
            if let Some(v) = value(cell(*slot), column(*slot))? {
                fields.insert(name.clone(), v);
            }
        }
        let language = match plan.language {
            Some(slot) => value(cell(slot), column(slot))?.map(|l| l.to_lowercase()),
            None => None,
        };
        Ok(Record {
            line: row.line,
            id,
            id_is_hash,
            text,
            respondent,
            date,
            score,
            fields,
            language,
        })
    }
}

/// A one-line value (id, respondent, segment, language): trimmed, control characters and line
/// breaks turned into spaces; empty → `None`.
fn value(cell: &Cell, column: &str) -> Result<Option<String>, String> {
    let s = match cell {
        Cell::Missing => return Ok(None),
        Cell::Invalid(why) => return Err(format!("{why} in column '{column}'")),
        Cell::Text(s) => {
            if s.chars().any(|c| c.is_control() || c == '\u{feff}') {
                let cleaned: String = s
                    .chars()
                    .filter(|&c| c != '\u{feff}')
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                cleaned.trim().to_string()
            } else {
                s.trim().to_string()
            }
        }
        Cell::Number(n) => format_number(*n),
        Cell::DateTime(t) => format_datetime(*t),
    };
    Ok((!s.is_empty()).then_some(s))
}

/// Feedback text: line breaks normalised to `\n`, control characters other than `\n` and `\t`
/// (and byte-order marks) removed, trimmed.
pub(crate) fn clean_text(s: &str) -> String {
    let needs_work = s
        .chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{feff}');
    if !needs_work {
        return s.trim().to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\n' | '\t' => out.push(c),
            '\u{feff}' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.trim().to_string()
}

/// Why a date could not be used.
struct DateFailure {
    reason: String,
    /// The value, when the value itself is the problem (not its encoding).
    value: Option<String>,
    /// Not a date (rather than one contradicting the file's day/month order).
    unparsable: bool,
}

fn date(
    cell: &Cell,
    column: &str,
    rule: &DateRule,
) -> Result<Option<chrono::NaiveDateTime>, DateFailure> {
    let s = match cell {
        Cell::Missing => return Ok(None),
        Cell::Invalid(why) => {
            return Err(DateFailure {
                reason: format!("{why} in column '{column}'"),
                value: None,
                unparsable: false,
            })
        }
        Cell::DateTime(t) => return Ok(Some(*t)),
        Cell::Text(s) => s.trim().to_string(),
        Cell::Number(n) => format_number(*n),
    };
    if s.is_empty() {
        return Ok(None);
    }
    let unparsable = |reason: String| DateFailure {
        reason,
        value: Some(s.clone()),
        unparsable: true,
    };
    let parsed = match rule {
        DateRule::Forced(format) => {
            return dates::parse_with_format(&s, format).map(Some).ok_or_else(|| {
                unparsable(format!("unparsable date '{s}' in column '{column}' (expected --date-format '{format}')"))
            })
        }
        DateRule::Auto {
            order,
            reject,
            day_first,
            month_first,
        } => {
            if let (Some(reject), Evidence::Proves(proved)) = (reject, dates::evidence(&s)) {
                if proved == *reject {
                    return Err(DateFailure {
                        reason: format!(
                            "date '{s}' in column '{column}' is {proved}, but most dates in this \
                             file are {order} ({day_first} rows day/month, {month_first} \
                             month/day); pass --date-format to choose"
                        ),
                        value: Some(s.clone()),
                        unparsable: false,
                    });
                }
            }
            dates::parse_date(&s, *order)
        }
    };
    parsed
        .map(Some)
        .ok_or_else(|| unparsable(format!("unparsable date '{s}' in column '{column}'")))
}

/// A score: through the score map first when there is one (a key, then a number, then `*`),
/// else a number.
fn score(cell: &Cell, column: &str, map: Option<&ScoreMap>) -> Result<Option<f64>, String> {
    if let (Some(map), Cell::Text(s)) = (map, cell) {
        let t = s.trim();
        if t.is_empty() {
            return Ok(None);
        }
        return match map.lookup(t) {
            Lookup::Key(v) => Ok(Some(v)),
            _ if parse_score(t).is_some() => Ok(parse_score(t)),
            Lookup::Default(v) => Ok(Some(v)),
            Lookup::Missing => {
                let keys: Vec<String> = map.keys().map(|k| format!("'{k}'")).collect();
                Err(format!(
                    "score '{t}' in column '{column}' is not in --score-map (keys: {}) and not a \
                     number; add it to the map, or `*=N` for any other value",
                    keys.join(", ")
                ))
            }
        };
    }
    match cell {
        Cell::Missing => Ok(None),
        Cell::Invalid(why) => Err(format!("{why} in column '{column}'")),
        Cell::Number(n) if n.is_finite() => Ok(Some(*n)),
        Cell::Number(n) => Err(format!("score '{n}' in column '{column}' is not a number")),
        Cell::DateTime(t) => Err(format!(
            "score '{}' in column '{column}' is a date, not a number",
            format_datetime(*t)
        )),
        Cell::Text(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            parse_score(t).map(Some).ok_or_else(|| {
                if t.chars().all(|c| c.is_alphabetic() || c == ' ' || c == '-') {
                    format!(
                        "score '{t}' in column '{column}' is not a number; text scores need \
                         --score-map (e.g. --score-map '{}=5,*=1')",
                        t.to_lowercase()
                    )
                } else {
                    format!("score '{t}' in column '{column}' is not a number")
                }
            })
        }
    }
}

/// `8`, `8.5`, `8,5` (decimal comma), `-1`; finite numbers only.
pub(crate) fn parse_score(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let ok = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b',' | b'-' | b'+'));
    if !ok {
        return None;
    }
    let v: f64 = if s.contains(',') && !s.contains('.') && s.matches(',').count() == 1 {
        s.replace(',', ".").parse().ok()?
    } else {
        s.parse().ok()?
    };
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::mapping::Source;

    fn plan_with(date: bool, score: bool) -> Plan {
        let mut sources = vec![Source {
            index: 0,
            name: "comment".into(),
        }];
        let mut p = Plan {
            text: vec![0],
            ..Plan::default()
        };
        if date {
            sources.push(Source {
                index: 1,
                name: "d".into(),
            });
            p.date = Some(sources.len() - 1);
        }
        if score {
            sources.push(Source {
                index: 2,
                name: "s".into(),
            });
            p.score = Some(sources.len() - 1);
        }
        p.sources = sources;
        p
    }

    fn row(line: u64, cells: &[&str]) -> Result<RawRow, RowError> {
        Ok(RawRow {
            line,
            cells: cells.iter().map(|c| Cell::Text(c.to_string())).collect(),
        })
    }

    fn build_dates(
        values: &[&str],
        mapping: &Mapping,
    ) -> (Vec<Result<Record, RowError>>, Vec<Warning>) {
        let rows = values
            .iter()
            .enumerate()
            .map(|(i, d)| row(i as u64 + 2, &["t", d]))
            .collect();
        let mut w = Vec::new();
        let out = build(
            Path::new("f.csv"),
            &plan_with(true, false),
            mapping,
            &ReadOptions::default(),
            rows,
            &mut w,
        );
        (out, w)
    }

    fn day(y: i32, m: u32, d: u32) -> Option<chrono::NaiveDateTime> {
        chrono::NaiveDate::from_ymd_opt(y, m, d).map(|d| d.and_time(chrono::NaiveTime::MIN))
    }

    #[test]
    fn one_proof_decides_the_order_for_the_whole_file() {
        let (out, w) = build_dates(&["03/04/2024", "05/13/2024"], &Mapping::default());
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(out[0].as_ref().unwrap().date, day(2024, 3, 4));
        assert_eq!(out[1].as_ref().unwrap().date, day(2024, 5, 13));

        let (out, w) = build_dates(&["03/04/2024", "13/05/2024"], &Mapping::default());
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(out[0].as_ref().unwrap().date, day(2024, 4, 3));
    }

    #[test]
    fn no_proof_means_day_first_with_a_warning() {
        let (out, w) = build_dates(&["03/04/2024", "", "2024-01-01"], &Mapping::default());
        assert_eq!(out[0].as_ref().unwrap().date, day(2024, 4, 3));
        assert_eq!(out[1].as_ref().unwrap().date, None);
        assert_eq!(w.len(), 1);
        let msg = w[0].to_string();
        assert!(msg.starts_with("f.csv: dates in column 'd'"), "{msg}");
        assert!(msg.contains("--date-format '%m/%d/%Y'"), "{msg}");
        // nothing ambiguous: no warning
        let (_, w) = build_dates(&["04/04/2024", "2024-01-01"], &Mapping::default());
        assert!(w.is_empty());
    }

    #[test]
    fn mixed_orders_keep_the_majority_and_reject_the_rest() {
        let (out, w) = build_dates(
            &["13/01/2024", "14/01/2024", "01/15/2024", "02/03/2024"],
            &Mapping::default(),
        );
        assert!(matches!(
            w[..],
            [Warning::MixedDateOrder {
                chosen: DateOrder::DayFirst,
                day_first: 2,
                month_first: 1,
                ..
            }]
        ));
        assert_eq!(out[0].as_ref().unwrap().date, day(2024, 1, 13));
        let e = out[2].as_ref().unwrap_err();
        assert_eq!(e.line, 4);
        assert!(
            e.reason
                .starts_with("date '01/15/2024' in column 'd' is month/day"),
            "{e}"
        );
        assert_eq!(out[3].as_ref().unwrap().date, day(2024, 3, 2));
    }

    #[test]
    fn forced_format_and_unparsable_dates() {
        let m = Mapping {
            date_format: Some("%m/%d/%Y".into()),
            ..Mapping::default()
        };
        let (out, w) = build_dates(&["03/04/2024", "2024-03-04"], &m);
        assert!(w.is_empty());
        assert_eq!(out[0].as_ref().unwrap().date, day(2024, 3, 4));
        assert_eq!(
            out[1].as_ref().unwrap_err().reason,
            "unparsable date '2024-03-04' in column 'd' (expected --date-format '%m/%d/%Y')"
        );
        let (out, _) = build_dates(&["yesterday"], &Mapping::default());
        assert_eq!(
            out[0].as_ref().unwrap_err().to_string(),
            "f.csv:2: unparsable date 'yesterday' in column 'd'"
        );
    }

    #[test]
    fn scores() {
        for (input, want) in [
            ("8", Some(8.0)),
            ("8.5", Some(8.5)),
            ("8,5", Some(8.5)),
            (" 9 ", Some(9.0)),
            ("-1", Some(-1.0)),
            ("+3", Some(3.0)),
            ("10.", Some(10.0)),
            ("1,000.5", None),
            ("1,2,3", None),
            ("NaN", None),
            ("inf", None),
            ("8/10", None),
            ("huit", None),
            ("-", None),
            (",", None),
            ("1e5", None),
        ] {
            assert_eq!(parse_score(input), want, "{input:?}");
        }
        let plan = plan_with(false, true);
        let rows = vec![
            row(2, &["a", " "]),
            row(3, &["b", "n/a"]),
            row(4, &["c", "7,5"]),
        ];
        let out = build(
            Path::new("f.csv"),
            &plan,
            &Mapping::default(),
            &ReadOptions::default(),
            rows,
            &mut Vec::new(),
        );
        assert_eq!(out[0].as_ref().unwrap().score, None);
        assert_eq!(
            out[1].as_ref().unwrap_err().reason,
            "score 'n/a' in column 's' is not a number"
        );
        assert_eq!(out[2].as_ref().unwrap().score, Some(7.5));
    }

    #[test]
    fn text_cleaning_and_limits() {
        assert_eq!(
            clean_text("  a\r\nb\rc\u{0}d\u{7}\te\u{feff} "),
            "a\nb\ncd\te"
        );
        assert_eq!(clean_text("plain"), "plain");
        let plan = plan_with(false, false);
        let opts = ReadOptions {
            max_text_bytes: 5,
            ..ReadOptions::default()
        };
        let rows = vec![row(2, &["  "]), row(3, &["123456"]), row(4, &["12345"])];
        let out = build(
            Path::new("f.csv"),
            &plan,
            &Mapping::default(),
            &opts,
            rows,
            &mut Vec::new(),
        );
        assert_eq!(
            out[0].as_ref().unwrap_err().reason,
            "no text (column 'comment' is empty)"
        );
        assert_eq!(
            out[1].as_ref().unwrap_err().reason,
            "text is 6 bytes, over the limit of 5 bytes"
        );
        let ok = out[2].as_ref().unwrap();
        assert!(ok.id_is_hash);
        assert_eq!(ok.id, content_id("12345"));
    }

    #[test]
    fn content_ids_are_stable() {
        // sha256("hello") = 2cf24dba5fb0a30e...
        assert_eq!(content_id("hello"), "h2cf24dba5fb0a30e");
        assert_eq!(content_id("a"), content_id("a"));
        assert_ne!(content_id("a"), content_id("b"));
    }
}
