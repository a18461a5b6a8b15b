//! A filter as the user typed it → the filter the store can run.
//!
//! Segment values are stored as they came in the file (`Other`, `Île-de-France`), and the SQL,
//! tantivy (`field=value` raw terms) and in-memory forms of a [`Filter`] compare them exactly. A
//! user types `label=other` or `region=ile-de-france`; an exact comparison answers "no verbatim
//! matches", which reads as a finding when it is a typo. So before a filter runs, both doors
//! (CLI and HTTP, through `service`) resolve it here:
//!
//! * an unknown field is an error that lists the known fields;
//! * a value matches every stored value of its field that is equal to it once both are
//!   lower-cased and accent-folded ([`fold`]), and is replaced by those stored values — so the
//!   indexes need no re-indexing and a resolved filter is run, recorded and reproduced as is;
//! * a value that matches nothing is an error that lists the field's values when there are at
//!   most [`LIST_AT_MOST`] (else how many there are, and the close ones).
//!
//! The values offered are those in the caller's scope, so the message never shows a consultant
//! a value outside it.

use std::collections::{BTreeMap, BTreeSet};

use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, RawTokenizer, TextAnalyzer};

use super::{Filter, Result, Store};

/// A field's values are listed in the error when it has at most this many.
pub const LIST_AT_MOST: usize = 20;

/// Why a filter cannot run as given (the user's to fix: CLI exit 2, HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// No verbatim has this segment field.
    #[error("unknown field {field:?} in the filter; {}", known_fields(.known))]
    UnknownField {
        /// The field as given.
        field: String,
        /// The fields the workspace has.
        known: Vec<String>,
    },
    /// No value of the field folds to the value given.
    #[error("no verbatim has {field} = {value:?}; {}", known_values(.field, .values, *.total))]
    NoSuchValue {
        /// The field.
        field: String,
        /// The value as given.
        value: String,
        /// The field's values (all of them when `total` ≤ [`LIST_AT_MOST`], else the close ones).
        values: Vec<String>,
        /// How many values the field has (in the caller's scope).
        total: usize,
    },
    /// A field=value pair with no field name.
    #[error("{name}: a field name is empty")]
    EmptyField {
        /// The flag or parameter, as the door names it.
        name: &'static str,
    },
    /// A score bound that is not a finite number.
    #[error("{name}: not a finite number")]
    NotFinite {
        /// The flag or parameter, as the door names it.
        name: &'static str,
    },
    /// A `theme=` value that names no theme.
    #[error("theme={id}: no such theme ({why})")]
    NoSuchTheme {
        /// The id as given.
        id: String,
        /// What exists instead.
        why: String,
    },
    /// `theme=` values of which some are theme ids and some are not.
    #[error(
        "{name}: theme={value:?} is not a theme id (P3 or C12 in the aspect tree, T4 by topic)"
    )]
    NotAThemeId {
        /// The flag or parameter, as the door names it.
        name: String,
        /// The value as given.
        value: String,
    },
    /// The lower score bound is above the upper one.
    #[error("{min} is above {max}")]
    MinAboveMax {
        /// The lower bound as the door names it, with its value (`--min-score 4`).
        min: String,
        /// The upper bound, likewise.
        max: String,
    },
    /// A day bound (`--since`, `until`…) that is not a date.
    #[error("{name} {value:?}: expected a date like 2024-03-01")]
    BadDay {
        /// The flag or parameter, as the door names it.
        name: String,
        /// The value as given.
        value: String,
    },
}

/// The names a door gives a filter's parts (flags, JSON fields, query parameters), so that an
/// error names what the user typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterNames {
    /// The field=value part.
    pub field: &'static str,
    /// The lower day bound.
    pub since: &'static str,
    /// The upper day bound.
    pub until: &'static str,
    /// The lower score bound.
    pub min_score: &'static str,
    /// The upper score bound.
    pub max_score: &'static str,
}

impl FilterNames {
    /// The CLI's flags.
    pub const CLI: FilterNames = FilterNames {
        field: "--where",
        since: "--since",
        until: "--until",
        min_score: "--min-score",
        max_score: "--max-score",
    };
    /// The HTTP API's JSON fields and query parameters.
    pub const HTTP: FilterNames = FilterNames {
        field: "where",
        since: "since",
        until: "until",
        min_score: "min_score",
        max_score: "max_score",
    };
}

/// A filter's parts as a door received them, before any is checked: both doors build their
/// [`Filter`] through [`FilterParts::parse`], so they check the same things in the same order
/// and differ only in the names their errors use.
#[derive(Clone, Debug, Default)]
pub struct FilterParts<'a> {
    /// (field, values) pairs; a field given twice accepts the values of both.
    pub fields: Vec<(String, Vec<String>)>,
    /// The lower day bound as typed.
    pub since: Option<&'a str>,
    /// The upper day bound as typed.
    pub until: Option<&'a str>,
    /// The lower score bound.
    pub min_score: Option<f64>,
    /// The upper score bound.
    pub max_score: Option<f64>,
}

impl FilterParts<'_> {
    /// The filter, or the first thing wrong with it, named as the door names it: an empty
    /// field name, a day that is not a date, a score bound that is not finite, a lower bound
    /// above the upper one.
    pub fn parse(self, names: &FilterNames) -> std::result::Result<Filter, FilterError> {
        let mut f = Filter::default();
        for (k, vs) in self.fields {
            if k.trim().is_empty() {
                return Err(FilterError::EmptyField { name: names.field });
            }
            // `theme=C12`: a theme filter when every value is a theme id; a segment field
            // named "theme" keeps working when none is.
            if fold(k.trim()) == "theme" {
                let ids: Vec<Option<String>> = vs.iter().map(|v| theme_ref(v)).collect();
                if ids.iter().all(Option::is_some) && !ids.is_empty() {
                    f.themes.extend(ids.into_iter().flatten());
                    continue;
                }
                if let Some((v, _)) = vs.iter().zip(&ids).find(|(_, id)| id.is_some()) {
                    let bad = vs.iter().find(|w| theme_ref(w).is_none()).unwrap_or(v);
                    return Err(FilterError::NotAThemeId {
                        name: names.field.to_string(),
                        value: bad.clone(),
                    });
                }
            }
            f.fields
                .entry(k.trim().to_string())
                .or_default()
                .extend(vs.into_iter().map(|v| v.trim().to_string()));
        }
        f.since = self.since.map(|s| parse_day(names.since, s)).transpose()?;
        f.until = self.until.map(|s| parse_day(names.until, s)).transpose()?;
        for (name, v) in [
            (names.min_score, self.min_score),
            (names.max_score, self.max_score),
        ] {
            if v.is_some_and(|x| !x.is_finite()) {
                return Err(FilterError::NotFinite { name });
            }
        }
        if let (Some(lo), Some(hi)) = (self.min_score, self.max_score) {
            if lo > hi {
                return Err(FilterError::MinAboveMax {
                    min: format!("{} {lo}", names.min_score),
                    max: format!("{} {hi}", names.max_score),
                });
            }
        }
        f.min_score = self.min_score;
        f.max_score = self.max_score;
        Ok(f)
    }
}

/// `P3`, `C12`, `T4` (either case, spaces around) as the theme id shown (upper case); `None`
/// for anything else.
pub fn theme_ref(s: &str) -> Option<String> {
    let t = s.trim();
    let mut chars = t.chars();
    let kind = chars.next()?.to_ascii_uppercase();
    let digits = chars.as_str();
    let n: i64 = digits.parse().ok()?;
    (matches!(kind, 'P' | 'C' | 'T') && n > 0 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{kind}{n}"))
}

/// A day bound as both doors take it, named `name` in the error: `YYYY-MM-DD` (midnight UTC) or
/// an RFC 3339 time → Unix seconds.
pub fn parse_day(name: &str, s: &str) -> std::result::Result<i64, FilterError> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp())
        .map_err(|_| FilterError::BadDay {
            name: name.to_string(),
            value: s.to_string(),
        })
}

/// A time as the audit trail writes it (`YYYY-MM-DDTHH:MM:SSZ`, compared as text).
pub fn audit_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn known_fields(known: &[String]) -> String {
    if known.is_empty() {
        "this workspace has no segment fields (ingest with --field COLUMN to add some)".into()
    } else {
        format!("the known fields are: {}", known.join(", "))
    }
}

fn known_values(field: &str, values: &[String], total: usize) -> String {
    let quoted = || {
        values
            .iter()
            .map(|v| format!("{v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if total == 0 {
        format!("{field} has no values in scope")
    } else if total <= LIST_AT_MOST {
        format!("its values are: {}", quoted())
    } else if values.is_empty() {
        format!("{field} has {total} values (none close to it)")
    } else {
        format!("{field} has {total} values; close ones: {}", quoted())
    }
}

/// `s` lower-cased and accent-folded (tantivy's ASCII folding: `Île` → `ile`, `Œuvre` →
/// `oeuvre`), trimmed: the form two segment values are compared in.
pub fn fold(s: &str) -> String {
    let mut a = TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build();
    let trimmed = s.trim();
    let mut stream = a.token_stream(trimmed);
    let mut out = String::new();
    while stream.advance() {
        out.push_str(&stream.token().text);
    }
    out
}

/// Resolves `filter` against the workspace's segment fields (`fields`) and the values each has
/// in the caller's scope (`values`): see the module docs. Dates and scores pass unchanged.
pub fn resolve_filter(
    filter: &Filter,
    fields: &BTreeSet<String>,
    values: &BTreeMap<String, BTreeSet<String>>,
) -> std::result::Result<Filter, FilterError> {
    let mut out = filter.clone();
    out.fields.clear();
    for (field, asked) in &filter.fields {
        // The field name itself: exact, else the one known field it folds to.
        let name = if fields.contains(field) {
            field.clone()
        } else {
            let f = fold(field);
            let same: Vec<&String> = fields.iter().filter(|k| fold(k) == f).collect();
            match same.as_slice() {
                [one] => (*one).clone(),
                _ => {
                    return Err(FilterError::UnknownField {
                        field: field.clone(),
                        known: fields.iter().cloned().collect(),
                    })
                }
            }
        };
        let stored = values.get(&name).cloned().unwrap_or_default();
        let folded: Vec<(String, &String)> = stored.iter().map(|s| (fold(s), s)).collect();
        let mut resolved: Vec<String> = Vec::new();
        for v in asked {
            let fv = fold(v);
            let hits: Vec<&String> = folded
                .iter()
                .filter(|(f, _)| *f == fv)
                .map(|(_, s)| *s)
                .collect();
            if hits.is_empty() {
                let listed: Vec<String> = if stored.len() <= LIST_AT_MOST {
                    stored.iter().cloned().collect()
                } else {
                    folded
                        .iter()
                        .filter(|(fs, _)| !fv.is_empty() && (fs.contains(&fv) || fv.contains(fs)))
                        .take(LIST_AT_MOST)
                        .map(|(_, s)| (*s).clone())
                        .collect()
                };
                return Err(FilterError::NoSuchValue {
                    field: name,
                    value: v.clone(),
                    values: listed,
                    total: stored.len(),
                });
            }
            for h in hits {
                if !resolved.contains(h) {
                    resolved.push(h.clone());
                }
            }
        }
        out.fields.entry(name).or_default().extend(resolved);
    }
    for vs in out.fields.values_mut() {
        let mut seen = BTreeSet::new();
        vs.retain(|v| seen.insert(v.clone()));
    }
    Ok(out)
}

impl Store {
    /// Every segment field of the workspace.
    pub fn segment_fields(&self) -> Result<BTreeSet<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT field FROM segments ORDER BY field")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<BTreeSet<_>>>()
            .map_err(|e| self.err(e))
    }

    /// The values each segment field takes over the verbatims `scope` keeps.
    pub fn segment_values(&self, scope: &Filter) -> Result<BTreeMap<String, BTreeSet<String>>> {
        // Without a scope the (field, value, doc) key answers alone, without reading verbatims.
        let (sql, args) = if scope.is_empty() {
            (
                "SELECT DISTINCT field, value FROM segments".to_string(),
                Vec::new(),
            )
        } else {
            let (where_sql, args) = super::filter_sql(scope);
            (
                format!(
                    "SELECT DISTINCT s.field, s.value FROM segments s JOIN verbatims v ON v.doc = s.doc WHERE {where_sql}"
                ),
                args,
            )
        };
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for row in rows {
            let (f, v) = row.map_err(|e| self.err(e))?;
            out.entry(f).or_default().insert(v);
        }
        Ok(out)
    }

    /// [`resolve_filter`] over this store: the fields of the whole workspace, the values in
    /// `scope` (the caller's grant). The outer error is the store's, the inner the user's.
    pub fn resolve_filter(
        &self,
        filter: &Filter,
        scope: &Filter,
    ) -> Result<std::result::Result<Filter, FilterError>> {
        let mut out = if filter.fields.is_empty() {
            filter.clone()
        } else {
            let fields = self.segment_fields()?;
            let values = self.segment_values(scope)?;
            match resolve_filter(filter, &fields, &values) {
                Ok(f) => f,
                Err(e) => return Ok(Err(e)),
            }
        };
        if !out.themes.is_empty() {
            match self.theme_docs(&out.themes)? {
                Ok(docs) => out.docs = Some(std::sync::Arc::new(docs)),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(out))
    }

    /// The verbatims of the themes `ids` (OR): a child's — every verbatim with a unit in it —,
    /// a parent's — with a unit in any of its children —, as of the last tree run; a topic
    /// theme's — its members (first theme) in the last topic run. An id that names no node or
    /// theme is the user's error.
    fn theme_docs(
        &self,
        ids: &[String],
    ) -> Result<std::result::Result<BTreeSet<i64>, FilterError>> {
        let mut docs = BTreeSet::new();
        for id in ids {
            let n: i64 = id[1..].parse().unwrap_or(0);
            let (exists, members) = match &id[..1] {
                "T" => (
                    "SELECT count(*) FROM themes WHERE id = ?1",
                    "SELECT doc FROM theme_members WHERE theme = ?1",
                ),
                "P" => (
                    "SELECT count(*) FROM aspect_nodes WHERE id = ?1 AND is_parent = 1",
                    "SELECT DISTINCT doc FROM aspect_units WHERE parent = ?1",
                ),
                _ => (
                    "SELECT count(*) FROM aspect_nodes WHERE id = ?1 AND is_parent = 0",
                    "SELECT DISTINCT doc FROM aspect_units WHERE child = ?1",
                ),
            };
            let found: i64 = self
                .conn
                .query_row(exists, [n], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            if found == 0 {
                let why = if id.starts_with('T') {
                    "`verbatim themes --by topic` lists the topic themes"
                } else {
                    "`verbatim themes` lists the tree's parents (P…) and children (C…)"
                };
                return Ok(Err(FilterError::NoSuchTheme {
                    id: id.clone(),
                    why: why.into(),
                }));
            }
            let mut stmt = self.conn.prepare(members).map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([n], |r| r.get::<_, i64>(0))
                .map_err(|e| self.err(e))?;
            for d in rows {
                docs.insert(d.map_err(|e| self.err(e))?);
            }
        }
        Ok(Ok(docs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_doors_parse_a_filter_alike_and_name_their_own_parameters() {
        let parts = |min, max| FilterParts {
            fields: vec![
                ("country ".into(), vec!["FR".into()]),
                ("country".into(), vec![" BE".into()]),
            ],
            since: Some("2024-03-01"),
            until: None,
            min_score: min,
            max_score: max,
        };
        let f = parts(Some(1.0), Some(3.0))
            .parse(&FilterNames::HTTP)
            .unwrap();
        assert_eq!(
            f.fields["country"],
            vec!["FR".to_string(), "BE".to_string()]
        );
        assert_eq!(f.since, Some(1_709_251_200));
        assert_eq!((f.min_score, f.max_score), (Some(1.0), Some(3.0)));
        let e = |n: &FilterNames| {
            parts(Some(4.0), Some(2.0))
                .parse(n)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(e(&FilterNames::CLI), "--min-score 4 is above --max-score 2");
        assert_eq!(e(&FilterNames::HTTP), "min_score 4 is above max_score 2");
        let nan = parts(Some(f64::NAN), None)
            .parse(&FilterNames::HTTP)
            .unwrap_err();
        assert_eq!(nan.to_string(), "min_score: not a finite number");
        let empty = FilterParts {
            fields: vec![(" ".into(), vec!["x".into()])],
            ..FilterParts::default()
        };
        assert_eq!(
            empty.parse(&FilterNames::CLI).unwrap_err().to_string(),
            "--where: a field name is empty"
        );
        let day = FilterParts {
            until: Some("March"),
            ..FilterParts::default()
        };
        assert!(day
            .parse(&FilterNames::HTTP)
            .unwrap_err()
            .to_string()
            .starts_with("until \"March\""));
    }

    fn known() -> (BTreeSet<String>, BTreeMap<String, BTreeSet<String>>) {
        let fields: BTreeSet<String> = ["label", "region"].map(String::from).into();
        let mut values = BTreeMap::new();
        values.insert(
            "label".to_string(),
            ["Other", "Delivery", "other "].map(String::from).into(),
        );
        values.insert(
            "region".to_string(),
            ["Île-de-France", "Bretagne"].map(String::from).into(),
        );
        (fields, values)
    }

    fn asked(field: &str, values: &[&str]) -> Filter {
        let mut f = Filter::default();
        f.fields
            .insert(field.into(), values.iter().map(|v| v.to_string()).collect());
        f
    }

    #[test]
    fn fold_lowercases_and_strips_accents() {
        assert_eq!(fold(" Île-de-France "), "ile-de-france");
        assert_eq!(fold("ÉTÉ"), "ete");
        assert_eq!(fold("Œuvre"), "oeuvre");
        assert_eq!(fold("Other"), fold("other"));
    }

    #[test]
    fn values_resolve_to_every_stored_value_that_folds_alike() {
        let (fields, values) = known();
        let f = resolve_filter(&asked("label", &["OTHER"]), &fields, &values).unwrap();
        assert_eq!(f.fields["label"], vec!["Other", "other "]);
        let f = resolve_filter(&asked("region", &["ile-de-france"]), &fields, &values).unwrap();
        assert_eq!(f.fields["region"], vec!["Île-de-France"]);
        // Resolving twice changes nothing.
        let again = resolve_filter(&f, &fields, &values).unwrap();
        assert_eq!(again, f);
    }

    #[test]
    fn an_unknown_field_lists_the_known_ones() {
        let (fields, values) = known();
        let e = resolve_filter(&asked("nosuchfield", &["1"]), &fields, &values).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown field \"nosuchfield\" in the filter; the known fields are: label, region"
        );
        // A field name differing in case only is the field.
        let f = resolve_filter(&asked("Label", &["delivery"]), &fields, &values).unwrap();
        assert_eq!(f.fields["label"], vec!["Delivery"]);
    }

    #[test]
    fn a_value_that_matches_nothing_lists_the_values_when_few() {
        let (fields, mut values) = known();
        let e = resolve_filter(&asked("region", &["Normandie"]), &fields, &values).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no verbatim has region = \"Normandie\"; its values are: \"Bretagne\", \"Île-de-France\""
        );
        let many: BTreeSet<String> = (0..30).map(|i| format!("shop-{i}")).collect();
        values.insert("label".into(), many);
        let e = resolve_filter(&asked("label", &["shop-1x"]), &fields, &values).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "no verbatim has label = \"shop-1x\"; label has 30 values; close ones: \"shop-1\""
            ),
            "{e}"
        );
        let e = resolve_filter(&asked("label", &["zzz"]), &fields, &values).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no verbatim has label = \"zzz\"; label has 30 values (none close to it)"
        );
    }

    #[test]
    fn days_parse_the_same_for_both_doors() {
        assert_eq!(parse_day("--since", "2024-03-01"), Ok(1_709_251_200));
        assert_eq!(
            parse_day("since", "2024-03-01T01:00:00+01:00"),
            Ok(1_709_251_200)
        );
        let e = parse_day("--until", "01/03/2024").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--until \"01/03/2024\": expected a date like 2024-03-01"
        );
        assert_eq!(audit_time(1_709_251_200), "2024-03-01T00:00:00Z");
    }

    #[test]
    fn theme_ids_in_a_filter_are_a_theme_filter_and_a_theme_field_stays_a_field() {
        let parse = |vals: &[&str]| {
            FilterParts {
                fields: vec![("Theme".into(), vals.iter().map(|v| v.to_string()).collect())],
                since: None,
                until: None,
                min_score: None,
                max_score: None,
            }
            .parse(&FilterNames::CLI)
        };
        let f = parse(&["c12", " P3 ", "T4"]).unwrap();
        assert_eq!(f.themes, ["C12", "P3", "T4"]);
        assert!(f.fields.is_empty() && !f.is_empty());
        // A segment field named "theme" with other values is still a field filter.
        let f = parse(&["billing"]).unwrap();
        assert!(f.themes.is_empty());
        assert_eq!(f.fields["Theme"], ["billing"]);
        // Mixed: the value that is not an id is named.
        let e = parse(&["C12", "billing"]).unwrap_err().to_string();
        assert!(e.contains("--where") && e.contains("\"billing\""), "{e}");
        assert_eq!(theme_ref("C0"), None);
        assert_eq!(theme_ref("C1x"), None);
        assert_eq!(theme_ref("X3"), None);
        assert_eq!(theme_ref("p07").as_deref(), Some("P7"));
        // The docs a resolved filter keeps.
        let mut f = Filter::default();
        f.themes = vec!["C1".into()];
        f.docs = Some(std::sync::Arc::new([2].into_iter().collect()));
        let v = |doc| crate::store::Verbatim {
            seq: doc,
            ..crate::store::Verbatim::bare(doc, &format!("v{doc}"), "")
        };
        assert!(f.matches(&v(2)) && !f.matches(&v(3)));
    }
}
