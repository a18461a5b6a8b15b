//! The prepared row and its Arrow schema (version [`SCHEMA_VERSION`]), written by `prepare`
//! and read back by `ingest --prepared` from Arrow IPC or from the Parquet a Spark job wrote.
//!
//! | column | Arrow (Spark) | |
//! |---|---|---|
//! | `line` | Int64 (long) | 1-based row of the prepare's input stream |
//! | `id` | Utf8 (string) | stored id (null on an error row) |
//! | `text` | Utf8 | redacted text |
//! | `respondent` | Utf8 | respondent pseudonym `r_…` |
//! | `respondent_key` | Utf8 | keyed hash of the respondent value (survey-link lookup) |
//! | `ts` | Int64 | date, seconds since the epoch (UTC) |
//! | `score` | Float64 (double) | |
//! | `language` | Utf8 | language code |
//! | `fields` | Utf8 | segment values, redacted, a JSON object |
//! | `content_hash` | Utf8 | keyed content hash |
//! | `pii_kinds` | Utf8 | the kind of each span redacted, a JSON array |
//! | `vector` | List<Float32> (array<float>) | the unit-length embedding |
//! | `error` | Utf8 | a rejected row's reason, redacted (the other values null) |
//! | `schema_version` | Int32 (int) | [`SCHEMA_VERSION`] |
//! | `model` | Utf8 | the embedding model's fingerprint |
//! | `key_id` | Utf8 | [`crate::pii::vault::HashKeys::key_id`] |
//! | `units` | Utf8 | the opinion units of `text`: a JSON array of `[start, end]` byte spans |
//! | `unit_vectors` | List<Float32> | the units' embeddings, one after the other (units × dimension) |
//! | `units_input` | Utf8 | the rule that cut and embedded them ([`crate::themes::units::UNIT_INPUT`]) |
//!
//! `schema_version`, `model` and `key_id` are the same on every row: columns rather than schema metadata, because a
//! Spark DataFrame (and so the Parquet it writes) keeps no Arrow metadata. Every column is
//! nullable, as Spark declares them. The reader accepts the types a Parquet round trip gives
//! (`LargeUtf8`/`Utf8View` strings, `Int32` longs, `LargeList`/`FixedSizeList` vectors).
//!
//! The unit columns (version 2) are what a workspace's first theme run would make for the row
//! (`themes::units::split` and `embed_units`: the whole text as its only unit reuses `vector`),
//! made on the executors so that `ingest --prepared` stores them and no node embeds units again
//! (the themes and the search on units read them). Null on an error row and with `prepare
//! --no-units`; an empty array is a row with no unit, as a workspace records it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use super::PrepareError;
use crate::ingest::Record;
use crate::pii::PiiKind;
use crate::store::StoredUnit;
use crate::workspace::ingest::RedactedRecord;

/// The version of the prepared schema; `ingest --prepared` refuses any other. 2: the unit
/// columns.
pub const SCHEMA_VERSION: i32 = 2;

/// The prepared columns, in order, with their Arrow types.
pub const COLUMNS: [(&str, Kind); 19] = [
    ("line", Kind::Long),
    ("id", Kind::Str),
    ("text", Kind::Str),
    ("respondent", Kind::Str),
    ("respondent_key", Kind::Str),
    ("ts", Kind::Long),
    ("score", Kind::Double),
    ("language", Kind::Str),
    ("fields", Kind::Str),
    ("content_hash", Kind::Str),
    ("pii_kinds", Kind::Str),
    ("vector", Kind::Vector),
    ("error", Kind::Str),
    ("schema_version", Kind::Int),
    ("model", Kind::Str),
    ("key_id", Kind::Str),
    ("units", Kind::Str),
    ("unit_vectors", Kind::Vector),
    ("units_input", Kind::Str),
];

/// A column's type.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Utf8 (Spark string).
    Str,
    /// Int64 (Spark long).
    Long,
    /// Int32 (Spark int).
    Int,
    /// Float64 (Spark double).
    Double,
    /// List of Float32 (Spark array<float>).
    Vector,
}

/// One prepared row (a verbatim ready to store, or a rejected row).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PreparedRow {
    /// 1-based row of the input stream.
    pub line: u64,
    /// The stored id.
    pub id: Option<String>,
    /// The redacted text.
    pub text: Option<String>,
    /// The respondent's pseudonym.
    pub respondent: Option<String>,
    /// Keyed hash of the respondent value, for the survey-link lookup.
    pub respondent_key: Option<String>,
    /// Seconds since the epoch.
    pub ts: Option<i64>,
    /// The score.
    pub score: Option<f64>,
    /// Language code.
    pub language: Option<String>,
    /// Segment values, redacted.
    pub fields: BTreeMap<String, String>,
    /// Keyed content hash.
    pub content_hash: Option<String>,
    /// Kinds of the spans redacted.
    pub pii_kinds: Vec<PiiKind>,
    /// The embedding.
    pub vector: Option<Vec<f32>>,
    /// A rejected row's reason, redacted.
    pub error: Option<String>,
    /// As read back: the schema version, model fingerprint and key id of the row.
    pub schema_version: i32,
    /// The model fingerprint.
    pub model: String,
    /// The key id.
    pub key_id: String,
    /// The row's opinion units with their vectors, when made (`units` is null otherwise).
    pub units: Option<Vec<StoredUnit>>,
    /// The rule that made [`PreparedRow::units`].
    pub units_input: Option<String>,
}

/// The constant columns of one prepare.
pub(super) struct Meta {
    pub model: String,
    pub key_id: String,
}

impl PreparedRow {
    /// A rejected row: its line and redacted reason.
    pub(super) fn error(line: u64, reason: String) -> PreparedRow {
        PreparedRow {
            line,
            error: Some(reason),
            ..PreparedRow::default()
        }
    }

    /// A good row (its vector still to come).
    pub(super) fn from_record(r: &Record, red: RedactedRecord) -> PreparedRow {
        PreparedRow {
            line: r.line,
            id: Some(red.id),
            text: Some(red.text.into_string()),
            respondent: red.respondent,
            respondent_key: red.respondent_key,
            ts: r.date.map(|d| d.and_utc().timestamp()),
            score: r.score,
            language: Some(red.language),
            fields: red.fields,
            content_hash: Some(red.content_hash),
            pii_kinds: red.kinds,
            ..PreparedRow::default()
        }
    }
}

/// The Arrow schema of [`COLUMNS`].
pub(super) fn schema() -> SchemaRef {
    Arc::new(Schema::new(
        COLUMNS
            .iter()
            .map(|(name, kind)| Field::new(*name, data_type(*kind), true))
            .collect::<Vec<_>>(),
    ))
}

fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Str => DataType::Utf8,
        Kind::Long => DataType::Int64,
        Kind::Int => DataType::Int32,
        Kind::Double => DataType::Float64,
        Kind::Vector => DataType::List(Arc::new(Field::new("item", DataType::Float32, true))),
    }
}

/// Rows as one batch of [`schema`].
pub(super) fn to_batch(
    schema: &SchemaRef,
    rows: &[PreparedRow],
    meta: &Meta,
) -> Result<RecordBatch, ArrowError> {
    let strs = |f: &dyn Fn(&PreparedRow) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let json_of = |v: serde_json::Result<String>| v.expect("maps and kinds serialise");
    let list = || {
        ListBuilder::new(Float32Builder::new()).with_field(Arc::new(Field::new(
            "item",
            DataType::Float32,
            true,
        )))
    };
    let mut vectors = list();
    let mut unit_vectors = list();
    for r in rows {
        match &r.vector {
            Some(v) => {
                vectors.values().append_slice(v);
                vectors.append(true);
            }
            None => vectors.append(false),
        }
        match &r.units {
            Some(units) => {
                for u in units {
                    unit_vectors.values().append_slice(&u.vector);
                }
                unit_vectors.append(true);
            }
            None => unit_vectors.append(false),
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.line as i64),
        )),
        strs(&|r| r.id.clone()),
        strs(&|r| r.text.clone()),
        strs(&|r| r.respondent.clone()),
        strs(&|r| r.respondent_key.clone()),
        Arc::new(rows.iter().map(|r| r.ts).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| r.score).collect::<Float64Array>()),
        strs(&|r| r.language.clone()),
        strs(&|r| {
            r.error
                .is_none()
                .then(|| json_of(serde_json::to_string(&r.fields)))
        }),
        strs(&|r| r.content_hash.clone()),
        strs(&|r| {
            r.error
                .is_none()
                .then(|| json_of(serde_json::to_string(&r.pii_kinds)))
        }),
        Arc::new(vectors.finish()),
        strs(&|r| r.error.clone()),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|_| SCHEMA_VERSION),
        )),
        strs(&|_| Some(meta.model.clone())),
        strs(&|_| Some(meta.key_id.clone())),
        strs(&|r| {
            r.units.as_ref().map(|us| {
                let spans: Vec<[usize; 2]> = us.iter().map(|u| [u.start, u.end]).collect();
                json_of(serde_json::to_string(&spans))
            })
        }),
        Arc::new(unit_vectors.finish()),
        strs(&|r| r.units.as_ref().and(r.units_input.clone())),
    ];
    RecordBatch::try_new(schema.clone(), columns)
}

/// A column of a prepared batch, by name.
fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, String> {
    batch
        .column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| {
            format!(
                "no column `{name}`: not a prepared file (schema version {SCHEMA_VERSION} has {})",
                COLUMNS.map(|c| c.0).join(", ")
            )
        })
}

fn string_at(a: &dyn Array, i: usize) -> Result<Option<String>, String> {
    if a.is_null(i) {
        return Ok(None);
    }
    Ok(Some(match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => a.as_string::<i64>().value(i).to_string(),
        DataType::Utf8View => a.as_string_view().value(i).to_string(),
        other => return Err(format!("a string column holds {other}")),
    }))
}

fn long_at(a: &dyn Array, i: usize) -> Result<Option<i64>, String> {
    if a.is_null(i) {
        return Ok(None);
    }
    Ok(Some(match a.data_type() {
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i),
        DataType::Int32 => i64::from(a.as_primitive::<Int32Type>().value(i)),
        other => return Err(format!("an integer column holds {other}")),
    }))
}

fn double_at(a: &dyn Array, i: usize) -> Result<Option<f64>, String> {
    if a.is_null(i) {
        return Ok(None);
    }
    match a.data_type() {
        DataType::Float64 => Ok(Some(a.as_primitive::<Float64Type>().value(i))),
        other => Err(format!("a double column holds {other}")),
    }
}

fn vector_at(a: &dyn Array, i: usize) -> Result<Option<Vec<f32>>, String> {
    if a.is_null(i) {
        return Ok(None);
    }
    let values = match a.data_type() {
        DataType::List(_) => a.as_list::<i32>().value(i),
        DataType::LargeList(_) => a.as_list::<i64>().value(i),
        DataType::FixedSizeList(_, _) => a.as_fixed_size_list().value(i),
        other => return Err(format!("a vector column holds {other}")),
    };
    if values.null_count() > 0 || values.data_type() != &DataType::Float32 {
        return Err("a vector holds nulls or is not float32".into());
    }
    Ok(Some(values.as_primitive::<Float32Type>().values().to_vec()))
}

/// The units of a row from its `units` spans and `unit_vectors` (each unit's vector in turn):
/// `None` when the row has none; an error when the two do not fit together or a span is not
/// a span of `text` (out of it, reversed, or not on a character boundary).
fn units_at(
    spans: Option<String>,
    vectors: Option<Vec<f32>>,
    text: Option<&str>,
) -> Result<Option<Vec<StoredUnit>>, String> {
    let Some(spans) = spans else {
        return Ok(None);
    };
    let spans: Vec<(usize, usize)> = serde_json::from_str(&spans)
        .map_err(|e| format!("`units` is not a list of [start, end] spans: {e}"))?;
    let vectors = vectors.unwrap_or_default();
    if spans.is_empty() {
        return match vectors.is_empty() {
            true => Ok(Some(Vec::new())),
            false => Err("`unit_vectors` holds values for no unit".into()),
        };
    }
    if vectors.is_empty() || vectors.len() % spans.len() != 0 {
        return Err(format!(
            "`unit_vectors` holds {} values for {} units",
            vectors.len(),
            spans.len()
        ));
    }
    let text = text.unwrap_or_default();
    let dim = vectors.len() / spans.len();
    spans
        .iter()
        .enumerate()
        .map(|(idx, &(start, end))| {
            if start > end
                || end > text.len()
                || !text.is_char_boundary(start)
                || !text.is_char_boundary(end)
            {
                return Err(format!(
                    "unit {idx}: [{start}, {end}] is not a span of the row's text ({} bytes)",
                    text.len()
                ));
            }
            Ok(StoredUnit {
                idx,
                start,
                end,
                vector: vectors[idx * dim..(idx + 1) * dim].to_vec(),
                sentiment: None,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Some)
}

/// The rows of one prepared batch; an error names the column and the row.
pub fn rows_of(batch: &RecordBatch) -> Result<Vec<PreparedRow>, String> {
    let c = |name| column(batch, name);
    let (line, id, text, respondent, respondent_key) = (
        c("line")?,
        c("id")?,
        c("text")?,
        c("respondent")?,
        c("respondent_key")?,
    );
    let (ts, score, language, fields, content_hash) = (
        c("ts")?,
        c("score")?,
        c("language")?,
        c("fields")?,
        c("content_hash")?,
    );
    let (pii_kinds, vector, error, version, model, key_id) = (
        c("pii_kinds")?,
        c("vector")?,
        c("error")?,
        c("schema_version")?,
        c("model")?,
        c("key_id")?,
    );
    // The unit columns came with version 2: a version-1 file has none (and is refused by
    // `ingest --prepared` for its version, with that message rather than a missing column).
    let units = batch.column_by_name("units").map(|c| c.as_ref());
    let unit_vectors = batch.column_by_name("unit_vectors").map(|c| c.as_ref());
    let units_input = batch.column_by_name("units_input").map(|c| c.as_ref());
    (0..batch.num_rows())
        .map(|i| {
            let at = |e: String| format!("row {}: {e}", i + 1);
            let json =
                |s: Option<String>, what: &str| -> Result<Option<serde_json::Value>, String> {
                    s.map(|s| {
                        serde_json::from_str(&s).map_err(|e| format!("`{what}` is not JSON: {e}"))
                    })
                    .transpose()
                };
            let fields = json(string_at(fields, i).map_err(at)?, "fields").map_err(at)?;
            let kinds = json(string_at(pii_kinds, i).map_err(at)?, "pii_kinds").map_err(at)?;
            let text = string_at(text, i).map_err(at)?;
            let opt_str = |a: Option<&dyn Array>| a.map(|a| string_at(a, i)).transpose();
            let spans = opt_str(units).map_err(at)?.flatten();
            let unit_vecs = unit_vectors
                .map(|a| vector_at(a, i))
                .transpose()
                .map_err(at)?
                .flatten();
            let units = units_at(spans, unit_vecs, text.as_deref()).map_err(at)?;
            Ok(PreparedRow {
                line: long_at(line, i).map_err(at)?.unwrap_or(0).max(0) as u64,
                id: string_at(id, i).map_err(at)?,
                text,
                respondent: string_at(respondent, i).map_err(at)?,
                respondent_key: string_at(respondent_key, i).map_err(at)?,
                ts: long_at(ts, i).map_err(at)?,
                score: double_at(score, i).map_err(at)?,
                language: string_at(language, i).map_err(at)?,
                fields: match fields {
                    Some(v) => serde_json::from_value(v)
                        .map_err(|e| at(format!("`fields` is not an object of strings: {e}")))?,
                    None => BTreeMap::new(),
                },
                content_hash: string_at(content_hash, i).map_err(at)?,
                pii_kinds: match kinds {
                    Some(v) => serde_json::from_value(v)
                        .map_err(|e| at(format!("`pii_kinds` is not a list of kinds: {e}")))?,
                    None => Vec::new(),
                },
                vector: vector_at(vector, i).map_err(at)?,
                error: string_at(error, i).map_err(at)?,
                schema_version: long_at(version, i).map_err(at)?.unwrap_or(-1) as i32,
                model: string_at(model, i).map_err(at)?.unwrap_or_default(),
                key_id: string_at(key_id, i).map_err(at)?.unwrap_or_default(),
                units,
                units_input: opt_str(units_input).map_err(at)?.flatten(),
            })
        })
        .collect()
}

/// The prepared files of a folder, sorted by name: `*.parquet` (what Spark writes) and
/// `*.arrow` (Arrow IPC, file or stream: `prepare`'s own output saved); names starting with
/// `_` or `.` (Spark's `_SUCCESS`, checksums) are not data.
pub fn prepared_files(dir: &Path) -> Result<Vec<PathBuf>, PrepareError> {
    let err = |reason: String| PrepareError::File {
        path: dir.to_path_buf(),
        reason,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| err(e.to_string()))? {
        let path = entry.map_err(|e| err(e.to_string()))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let data = name.ends_with(".parquet") || name.ends_with(".arrow");
        if data && !name.starts_with(['_', '.']) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(err(
            "no prepared files (*.parquet, *.arrow) in this folder".into()
        ));
    }
    Ok(files)
}

/// Every batch of one prepared file.
pub fn read_prepared_file(path: &Path) -> Result<Vec<RecordBatch>, PrepareError> {
    let err = |reason: String| PrepareError::File {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    if path.extension().is_some_and(|e| e == "parquet") {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| err(e.to_string()))?;
        return reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()));
    }
    let mut head = [0u8; 6];
    let is_file_format = {
        use std::io::Read;
        let mut f = &file;
        f.read_exact(&mut head).is_ok() && &head == b"ARROW1"
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let reader = std::io::BufReader::new(file);
    if is_file_format {
        arrow_ipc::reader::FileReader::try_new(reader, None)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))
    } else {
        arrow_ipc::reader::StreamReader::try_new(reader, None)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_read_back_only_when_spans_and_vectors_fit_the_text() {
        let text = Some("Great taste. Box crushé.");
        let two = Some("[[0, 12], [13, 25]]".to_string());
        let got = units_at(two.clone(), Some(vec![1.0, 2.0, 3.0, 4.0]), text)
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].idx, got[1].start, got[1].end), (1, 13, 25));
        assert_eq!(got[1].vector, vec![3.0, 4.0]);
        // No units column value: none; an empty list: a row with no unit.
        assert_eq!(units_at(None, None, text).unwrap(), None);
        assert_eq!(
            units_at(Some("[]".into()), None, text).unwrap(),
            Some(Vec::new())
        );
        for (spans, vectors, why) in [
            (
                two.clone(),
                Some(vec![1.0, 2.0, 3.0]),
                "3 values for 2 units",
            ),
            (two.clone(), None, "0 values for 2 units"),
            (Some("[]".into()), Some(vec![1.0]), "for no unit"),
            (Some("[[0, 40]]".into()), Some(vec![1.0]), "not a span"),
            (Some("[[5, 2]]".into()), Some(vec![1.0]), "not a span"),
            // Inside the 2-byte "é": not on a character boundary.
            (Some("[[0, 23]]".into()), Some(vec![1.0]), "not a span"),
            (Some("{\"a\": 1}".into()), Some(vec![1.0]), "not a list"),
        ] {
            let e = units_at(spans.clone(), vectors, text).unwrap_err();
            assert!(e.contains(why), "{spans:?}: {e}");
        }
    }
}
