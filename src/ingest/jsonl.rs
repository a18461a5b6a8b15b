//! The JSONL reader: one JSON object per line, or a `.json` file holding one array of objects.
//!
//! JSON has no header, so the "columns" are every key path seen in the file, in first-seen
//! order (keys within one object sorted, as serde_json stores them), with nested objects
//! flattened into dotted paths (`customer.country`). The mapping is
//! resolved against that list, so a typo in a key is reported with the keys the file does have.
//! A key that itself contains a dot is found too: at each level the whole remaining path is tried
//! as a key before splitting it.
//!
//! Values become text the way a person would write them: strings as they are, numbers as JSON
//! wrote them (no float round trip, so large numeric ids survive), `true`/`false`, arrays of
//! scalars joined with `", "`; `null` is no value.
//!
//! A line that is not valid JSON, not an object, or not UTF-8 is a row error; the other lines go
//! on. A `.json` array has no line structure to resynchronise on, so a syntax error inside it
//! stops the file with [`IngestError::InvalidJson`] naming the line, while an element that is
//! valid JSON but not an object is only a row error.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Map, Value};

use super::mapping::{self, Cell, Plan, RawRow, Table};
use super::{decode, IngestError, Mapping, ReadOptions, RowError, Warning};

type Object = Map<String, Value>;

/// Reads the file; without a mapping, only its key paths.
pub(crate) fn read(
    path: &Path,
    bytes: &[u8],
    mapping: Option<&Mapping>,
    opts: &ReadOptions,
    warnings: &mut Vec<Warning>,
) -> Result<Table, IngestError> {
    let data = decode::prepare(bytes, path, warnings);
    let is_array = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    // Two passes, parsing twice: the first finds the key paths to resolve the mapping against,
    // the second extracts the mapped values. Parsing again is cheaper than keeping 100k parsed
    // objects alive between the passes (the allocator, not the parser, is the bottleneck).
    let each = |f: &mut dyn FnMut(u64, Result<Object, String>)| {
        if is_array {
            each_in_array(path, &data, f)
        } else {
            each_line(path, &data, f)
        }
    };

    let mut columns = Vec::new();
    let mut seen = HashSet::new();
    let mut previous: Option<Object> = None;
    let mut any_object = false;
    each(&mut |_, object| {
        let Ok(object) = object else { return };
        any_object = true;
        // Most lines share one shape; comparing with the previous line is much cheaper than
        // hashing every key path again.
        if previous.as_ref().is_some_and(|p| same_shape(p, &object)) {
            return;
        }
        collect_keys(&object, &mut String::new(), &mut seen, &mut columns);
        previous = Some(object);
    })?;
    let Some(mapping) = mapping else {
        return Ok(Table::columns_only(columns));
    };
    // With no object at all there is nothing to resolve against; the rows are all errors.
    let plan = if any_object {
        mapping::resolve(path, mapping, &columns, opts.strict, warnings)?
    } else {
        Plan::default()
    };

    let mut rows = Vec::new();
    each(&mut |line, object| {
        rows.push(match object {
            Ok(mut object) => Ok(RawRow {
                line,
                cells: plan
                    .sources
                    .iter()
                    .map(|s| take(&mut object, &s.name).map_or(Cell::Missing, to_cell))
                    .collect(),
            }),
            Err(reason) => Err(RowError {
                path: path.to_path_buf(),
                line,
                end_line: None,
                reason,
            }),
        })
    })?;
    Ok(Table {
        columns,
        plan,
        rows,
    })
}

/// One object per line; blank lines are skipped.
fn each_line(
    path: &Path,
    data: &[u8],
    f: &mut dyn FnMut(u64, Result<Object, String>),
) -> Result<(), IngestError> {
    let mut any_line = false;
    for (i, raw) in data.split(|&b| b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        any_line = true;
        let object = match std::str::from_utf8(raw) {
            Err(e) => Err(decode::invalid_utf8_reason(raw, &e)),
            Ok(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(object)) => Ok(object),
                Ok(other) => Err(format!("expected a JSON object, found {}", kind(&other))),
                Err(e) => Err(format!("not valid JSON: {}", json_reason(&e))),
            },
        };
        f(i as u64 + 1, object);
    }
    if !any_line {
        return Err(IngestError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// A top-level array of objects; each element's line is where it starts.
fn each_in_array(
    path: &Path,
    data: &[u8],
    f: &mut dyn FnMut(u64, Result<Object, String>),
) -> Result<(), IngestError> {
    let mut lines = LineCounter::default();
    let invalid = |lines: &mut LineCounter, at: usize, reason: &str| IngestError::InvalidJson {
        path: path.to_path_buf(),
        line: lines.line_at(data, at),
        reason: reason.to_string(),
    };
    const UNCLOSED: &str = "the array is not closed (no ']')";
    let skip_ws = |mut at: usize| {
        while data.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        at
    };
    let mut elements = 0;
    // The caller saw '[' as the first non-blank byte.
    let mut at = skip_ws(0) + 1;
    loop {
        at = skip_ws(at);
        match data.get(at) {
            None => return Err(invalid(&mut lines, at, UNCLOSED)),
            Some(b']') => break,
            Some(_) => {}
        }
        let line = lines.line_at(data, at);
        let mut stream = serde_json::Deserializer::from_slice(&data[at..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(Value::Object(object))) => f(line, Ok(object)),
            Some(Ok(other)) => f(
                line,
                Err(format!("expected a JSON object, found {}", kind(&other))),
            ),
            Some(Err(e)) => {
                return Err(IngestError::InvalidJson {
                    path: path.to_path_buf(),
                    line: line + e.line().saturating_sub(1) as u64,
                    reason: json_reason(&e),
                })
            }
            None => return Err(invalid(&mut lines, at, UNCLOSED)),
        }
        elements += 1;
        at = skip_ws(at + stream.byte_offset());
        match data.get(at) {
            Some(b',') => at += 1,
            Some(b']') => break,
            None => return Err(invalid(&mut lines, at, UNCLOSED)),
            Some(_) => {
                return Err(invalid(
                    &mut lines,
                    at,
                    "expected ',' or ']' after an array element",
                ))
            }
        }
    }
    let end = skip_ws(at + 1);
    if end < data.len() {
        return Err(invalid(
            &mut lines,
            end,
            "unexpected content after the closing ']'",
        ));
    }
    if elements == 0 {
        return Err(IngestError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Counts newlines incrementally, for positions that only move forward.
#[derive(Default)]
struct LineCounter {
    counted_to: usize,
    line: u64,
}

impl LineCounter {
    fn line_at(&mut self, data: &[u8], at: usize) -> u64 {
        let at = at.min(data.len());
        if at >= self.counted_to {
            self.line += data[self.counted_to..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            self.counted_to = at;
        }
        self.line + 1
    }
}

/// serde_json's message without its "at line 1 column N" suffix, which is about the line alone.
fn json_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &msg[..i], e.column()),
        None => msg,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Adds every leaf key path of `object` to `columns`, first-seen order.
fn collect_keys(
    object: &Object,
    prefix: &mut String,
    seen: &mut HashSet<String>,
    columns: &mut Vec<String>,
) {
    for (key, value) in object {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(key);
        match value {
            Value::Object(inner) if !inner.is_empty() => collect_keys(inner, prefix, seen, columns),
            _ => {
                if !seen.contains(prefix.as_str()) {
                    seen.insert(prefix.clone());
                    columns.push(prefix.clone());
                }
            }
        }
        prefix.truncate(len);
    }
}

/// Whether two objects have the same key paths (values aside).
fn same_shape(a: &Object, b: &Object) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ka, va), (kb, vb))| {
            ka == kb
                && match (va, vb) {
                    (Value::Object(x), Value::Object(y)) => same_shape(x, y),
                    (Value::Object(x), _) | (_, Value::Object(x)) => x.is_empty(),
                    _ => true,
                }
        })
}

/// Removes and returns the value at a dotted path: the whole path as a key first, then split at
/// each dot. Slots name distinct paths, so taking (rather than cloning) is safe.
fn take(object: &mut Object, path: &str) -> Option<Value> {
    if let Some(v) = object.remove(path) {
        return Some(v);
    }
    for (i, _) in path.match_indices('.') {
        if let Some(Value::Object(inner)) = object.get_mut(&path[..i]) {
            if let Some(v) = take(inner, &path[i + 1..]) {
                return Some(v);
            }
        }
    }
    None
}

fn to_cell(v: Value) -> Cell {
    match v {
        Value::Null => Cell::Missing,
        Value::String(s) => Cell::Text(s),
        Value::Number(n) => Cell::Text(n.to_string()),
        Value::Bool(b) => Cell::Text(b.to_string()),
        Value::Array(items) if items.iter().all(is_scalar) => Cell::Text(
            items
                .into_iter()
                .filter_map(|i| match i {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        other => Cell::Text(other.to_string()),
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{read_bytes, Format, ReadReport};

    fn mapping() -> Mapping {
        Mapping {
            text: vec!["text".into()],
            id: Some("id".into()),
            score: Some("nps".into()),
            fields: vec!["customer.country".into(), "tags".into()],
            ..Mapping::default()
        }
    }

    fn read(input: &str) -> Result<ReadReport, IngestError> {
        read_bytes(
            input.as_bytes(),
            Format::Jsonl,
            &mapping(),
            &ReadOptions::default(),
        )
    }

    fn read_text_only(input: &[u8]) -> Result<ReadReport, IngestError> {
        let m = Mapping {
            text: vec!["text".into()],
            id: Some("id".into()),
            ..Mapping::default()
        };
        read_bytes(input, Format::Jsonl, &m, &ReadOptions::default())
    }

    #[test]
    fn nested_keys_numbers_and_bad_lines() {
        let input = concat!(
            r#"{"id": 12345678901234567890, "text": "Great", "nps": 9, "customer": {"country": "FR"}, "tags": ["a", "b"]}"#,
            "\n\n",
            r#"{"id": "x2", "text": "Meh", "nps": "7,5", "customer": {"country": null}}"#,
            "\n",
            "not json\n",
            "[1, 2]\n",
            r#"{"id": "x5", "text": true, "customer.country": "DE"}"#,
            "\r\n",
        );
        let r = read(input).unwrap();
        assert_eq!(r.rows.len(), 5);
        let first = r.rows[0].as_ref().unwrap();
        assert_eq!(first.line, 1);
        assert_eq!(first.id, "12345678901234567890");
        assert_eq!(first.score, Some(9.0));
        assert_eq!(first.fields["customer.country"], "FR");
        assert_eq!(first.fields["tags"], "a, b");
        let second = r.rows[1].as_ref().unwrap();
        assert_eq!((second.line, second.score), (3, Some(7.5)));
        assert!(second.fields.is_empty());
        let e = r.rows[2].as_ref().unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.reason.starts_with("not valid JSON: "), "{e}");
        assert_eq!(
            r.rows[3].as_ref().unwrap_err().to_string(),
            "<input>:5: expected a JSON object, found an array"
        );
        let last = r.rows[4].as_ref().unwrap();
        assert_eq!((last.line, last.text.as_str()), (6, "true"));
        assert_eq!(last.fields["customer.country"], "DE");
        // keys in first-seen order, sorted within an object (serde_json keeps objects sorted)
        assert_eq!(
            r.columns,
            vec!["customer.country", "id", "nps", "tags", "text"]
        );
    }

    #[test]
    fn invalid_utf8_line_is_a_row_error() {
        let input = b"{\"id\":\"1\",\"text\":\"caf\xc3\xa9\"}\n{\"id\":\"2\",\"text\":\"x\xff\"}\n";
        let r = read_text_only(input).unwrap();
        assert_eq!(r.rows[0].as_ref().unwrap().text, "café");
        assert_eq!(
            r.rows[1].as_ref().unwrap_err().to_string(),
            "<input>:2: invalid UTF-8 (byte 0xFF at offset 19)"
        );
    }

    #[test]
    fn unknown_key_lists_the_keys_seen() {
        let m = Mapping {
            text: vec!["txt".into()],
            ..Mapping::default()
        };
        let err = read_bytes(
            br#"{"text": "a", "meta": {"lang": "fr"}}"#,
            Format::Jsonl,
            &m,
            &ReadOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "<input>: no column 'txt' (mapped as text by --text) (did you mean 'text'?); \
             available columns: 'meta.lang', 'text'"
        );
    }

    #[test]
    fn json_array_file() {
        let input = "[\n  {\"id\": \"a\", \"text\": \"one\"},\n  {\"id\": \"b\",\n   \"text\": \"two\"},\n  42\n]\n";
        let r = read_text_only(input.as_bytes()).unwrap();
        let got: Vec<_> = r
            .rows
            .iter()
            .map(|r| match r {
                Ok(rec) => (rec.line, rec.id.clone()),
                Err(e) => (e.line, e.reason.clone()),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "a".to_string()),
                (3, "b".to_string()),
                (5, "expected a JSON object, found a number".to_string()),
            ]
        );
    }

    #[test]
    fn broken_json_array_is_a_file_error_with_its_line() {
        for (input, line) in [
            ("[\n{\"text\": \"a\"},\n{\"text\": \"b\"\n", 4),
            ("[\n{\"text\": \"a\"}\n{\"text\": \"b\"}]", 3),
            ("[{\"text\": \"a\"}] trailing", 1),
            ("[\n\n{\"text\": nope}]", 3),
            ("[", 1),
        ] {
            match read(input) {
                Err(IngestError::InvalidJson { line: l, .. }) => assert_eq!(l, line, "{input:?}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
        assert!(matches!(read("[]"), Err(IngestError::EmptyFile { .. })));
    }

    #[test]
    fn empty_and_all_bad_files() {
        assert!(matches!(read(""), Err(IngestError::EmptyFile { .. })));
        assert!(matches!(read("\n  \n"), Err(IngestError::EmptyFile { .. })));
        // no object at all: no mapping error, just the row errors
        let r = read("oops\n[1]\n").unwrap();
        assert_eq!(r.rows.len(), 2);
        assert!(r.columns.is_empty());
    }

    #[test]
    fn take_prefers_literal_dotted_keys_then_nesting() {
        let v: Value =
            serde_json::from_str(r#"{"a.b": 1, "a": {"b": 2, "c": {"d": 3}}, "x": {"y.z": 4}}"#)
                .unwrap();
        let mut o = v.as_object().unwrap().clone();
        assert_eq!(take(&mut o, "a.b"), Some(Value::from(1)));
        assert_eq!(take(&mut o, "a.b"), Some(Value::from(2)));
        assert_eq!(take(&mut o, "a.c.d"), Some(Value::from(3)));
        assert_eq!(take(&mut o, "x.y.z"), Some(Value::from(4)));
        assert_eq!(take(&mut o, "a.q"), None);
    }

    #[test]
    fn shapes() {
        let o = |s: &str| {
            serde_json::from_str::<Value>(s)
                .unwrap()
                .as_object()
                .unwrap()
                .clone()
        };
        assert!(same_shape(
            &o(r#"{"a": 1, "b": {"c": 2}}"#),
            &o(r#"{"a": "x", "b": {"c": null}}"#)
        ));
        assert!(!same_shape(
            &o(r#"{"a": 1, "b": {"c": 2}}"#),
            &o(r#"{"a": 1, "b": {"d": 2}}"#)
        ));
        assert!(!same_shape(
            &o(r#"{"a": 1, "b": {"c": 2}}"#),
            &o(r#"{"a": 1, "b": 2}"#)
        ));
        assert!(!same_shape(&o(r#"{"a": 1}"#), &o(r#"{"a": 1, "b": 2}"#)));
        // an empty object is a leaf, like a scalar
        assert!(same_shape(&o(r#"{"a": {}}"#), &o(r#"{"a": 1}"#)));
    }
}
