//! Resolving a [`Mapping`] against the columns one file actually has.
//!
//! Readers call [`resolve`] once the column names are known and get a [`Plan`]: the distinct
//! source columns to extract from each row ("slots"), and which slot plays which role. Rows then
//! carry only the mapped cells, whatever the width of the file.
//!
//! Matching is exact first, then trimmed and case-insensitive, so `Comment ` in a header still
//! matches a mapping that says `comment`, while an exact match always wins over a loose one. A
//! mapped column that matches nothing is the user's mistake and the error lists what the file
//! has, with the nearest name when there is a plausible one.

use std::path::Path;

use super::{IngestError, Mapping, Role, RowError, Warning};

/// One mapped value from one row, before interpretation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cell {
    /// No value: an empty XLSX cell, a missing or null JSON key.
    Missing,
    /// Text as found (CSV fields, JSON strings and numbers, XLSX strings).
    Text(String),
    /// An XLSX number.
    Number(f64),
    /// An XLSX date cell.
    DateTime(chrono::NaiveDateTime),
    /// A value that cannot be used; the reason names the problem, not the column.
    Invalid(String),
}

/// A data row: its line and one cell per slot of the [`Plan`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RawRow {
    pub line: u64,
    pub cells: Vec<Cell>,
}

/// What a reader hands to `record::build`.
pub(crate) struct Table {
    pub columns: Vec<String>,
    pub plan: Plan,
    pub rows: Vec<Result<RawRow, RowError>>,
}

impl Table {
    /// The columns alone, for a read without a mapping.
    pub fn columns_only(columns: Vec<String>) -> Table {
        Table {
            columns,
            plan: Plan::default(),
            rows: Vec::new(),
        }
    }
}

/// A column of the file that the mapping uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    /// Index in the file's column list.
    pub index: usize,
    /// The column's name as the file spells it (JSONL: the dotted key path).
    pub name: String,
}

/// The mapping resolved against one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The distinct columns to extract, one slot each.
    pub sources: Vec<Source>,
    pub text: Vec<usize>,
    pub id: Option<usize>,
    pub respondent: Option<usize>,
    pub date: Option<usize>,
    pub score: Option<usize>,
    /// Segment name (as written in the mapping) → slot.
    pub fields: Vec<(String, usize)>,
    pub language: Option<usize>,
}

impl Plan {
    /// The column name of a slot, for messages.
    pub fn column(&self, slot: usize) -> &str {
        &self.sources[slot].name
    }

    fn slot_for(&mut self, index: usize, name: &str) -> usize {
        if let Some(slot) = self.sources.iter().position(|s| s.index == index) {
            return slot;
        }
        self.sources.push(Source {
            index,
            name: name.to_string(),
        });
        self.sources.len() - 1
    }
}

/// Finds a column: exact name first, then trimmed and case-insensitive.
pub(crate) fn find_column(columns: &[String], wanted: &str) -> Option<usize> {
    if let Some(i) = columns.iter().position(|c| c == wanted) {
        return Some(i);
    }
    let key = wanted.trim().to_lowercase();
    columns.iter().position(|c| c.trim().to_lowercase() == key)
}

/// Resolves every mapped column against `columns`.
pub(crate) fn resolve(
    path: &Path,
    mapping: &Mapping,
    columns: &[String],
    strict: bool,
    warnings: &mut Vec<Warning>,
) -> Result<Plan, IngestError> {
    let mut plan = Plan::default();
    let mut lookup = |plan: &mut Plan, wanted: &str, role: Role| match find_column(columns, wanted)
    {
        Some(i) => Ok(Some(plan.slot_for(i, &columns[i]))),
        None if strict || role == Role::Text => Err(IngestError::UnknownColumn {
            path: path.to_path_buf(),
            column: wanted.to_string(),
            role,
            available: columns.to_vec(),
        }),
        None => {
            warnings.push(Warning::MissingColumn {
                path: path.to_path_buf(),
                column: wanted.to_string(),
                role,
            });
            Ok(None)
        }
    };
    for name in &mapping.text {
        if let Some(slot) = lookup(&mut plan, name, Role::Text)? {
            if !plan.text.contains(&slot) {
                plan.text.push(slot);
            }
        }
    }
    let mut single = |plan: &mut Plan, name: &Option<String>, role: Role| match name {
        Some(name) => lookup(plan, name, role),
        None => Ok(None),
    };
    plan.id = single(&mut plan, &mapping.id, Role::Id)?;
    plan.respondent = single(&mut plan, &mapping.respondent, Role::Respondent)?;
    plan.date = single(&mut plan, &mapping.date, Role::Date)?;
    plan.score = single(&mut plan, &mapping.score, Role::Score)?;
    plan.language = single(&mut plan, &mapping.language, Role::Language)?;
    for name in &mapping.fields {
        if let Some(slot) = single(&mut plan, &Some(name.clone()), Role::Field)? {
            plan.fields.push((name.clone(), slot));
        }
    }
    Ok(plan)
}

/// `'a', 'b', 'c'` or `(none)`, for messages.
pub(crate) fn list_columns(columns: &[String]) -> String {
    if columns.is_empty() {
        return "(none)".to_string();
    }
    let shown: Vec<String> = columns.iter().take(50).map(|c| format!("'{c}'")).collect();
    let mut out = shown.join(", ");
    if columns.len() > 50 {
        out.push_str(&format!(" and {} more", columns.len() - 50));
    }
    out
}

/// ` (did you mean 'x'?)` when one column is a plausible typo of `wanted`, else empty.
pub(crate) fn suggestion(wanted: &str, columns: &[String]) -> String {
    let key = wanted.trim().to_lowercase();
    let best = columns
        .iter()
        .map(|c| (edit_distance(&key, &c.trim().to_lowercase()), c))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d > 0 && d <= 2.max(key.chars().count() / 4) => {
            format!(" (did you mean '{c}'?)")
        }
        _ => String::new(),
    }
}

/// Levenshtein distance over chars; column names are short.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_match_wins_over_loose_match() {
        let c = cols(&["Comment", "comment"]);
        assert_eq!(find_column(&c, "comment"), Some(1));
        assert_eq!(find_column(&c, "COMMENT"), Some(0));
        assert_eq!(find_column(&cols(&[" Note "]), "note"), Some(0));
        assert_eq!(find_column(&cols(&["a"]), "b"), None);
    }

    #[test]
    fn unknown_column_lists_available_and_suggests() {
        let m = Mapping {
            text: vec!["coment".into()],
            ..Mapping::default()
        };
        let mut w = Vec::new();
        let err = resolve(
            Path::new("f.csv"),
            &m,
            &cols(&["id", "comment"]),
            true,
            &mut w,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("f.csv"), "{msg}");
        assert!(msg.contains("no column 'coment'"), "{msg}");
        assert!(msg.contains("--text"), "{msg}");
        assert!(msg.contains("did you mean 'comment'?"), "{msg}");
        assert!(msg.contains("'id', 'comment'"), "{msg}");
    }

    #[test]
    fn non_strict_drops_optional_columns_with_a_warning_but_never_text() {
        let m = Mapping {
            text: vec!["comment".into()],
            score: Some("nps".into()),
            fields: vec!["country".into(), "plan".into()],
            ..Mapping::default()
        };
        let mut w = Vec::new();
        let c = cols(&["comment", "plan"]);
        let plan = resolve(Path::new("f.csv"), &m, &c, false, &mut w).unwrap();
        assert_eq!(plan.score, None);
        assert_eq!(plan.fields, vec![("plan".to_string(), 1)]);
        assert_eq!(w.len(), 2);
        assert!(w[0]
            .to_string()
            .contains("no column 'nps' (score, --score)"));
        assert!(resolve(Path::new("f.csv"), &m, &c, true, &mut w).is_err());

        let m = Mapping {
            text: vec!["body".into()],
            ..Mapping::default()
        };
        assert!(matches!(
            resolve(Path::new("f.csv"), &m, &c, false, &mut w),
            Err(IngestError::UnknownColumn {
                role: Role::Text,
                ..
            })
        ));
    }

    #[test]
    fn a_column_used_twice_is_extracted_once() {
        let m = Mapping {
            text: vec!["comment".into(), "comment".into()],
            fields: vec!["comment".into()],
            ..Mapping::default()
        };
        let plan = resolve(
            Path::new("f"),
            &m,
            &cols(&["x", "comment"]),
            true,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(plan.sources.len(), 1);
        assert_eq!(plan.text, vec![0]);
        assert_eq!(plan.fields, vec![("comment".to_string(), 0)]);
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(suggestion("zzzzzz", &cols(&["comment"])), "");
    }
}
