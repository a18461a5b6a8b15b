//! Arrow record batches as an ingest source: what `verbatim prepare` reads on its standard
//! input (a Spark partition handed over by `mapInArrow`).
//!
//! The batches become the same [`Table`] of cells the CSV, JSONL and XLSX readers make, and go
//! through the same mapping resolution and `record::build`, so a row read from Arrow becomes
//! the [`super::Record`] the same row read from a file would: strings are text, numbers are
//! their shortest decimal (as JSON numbers are), booleans `true`/`false`, timestamps and dates
//! dates, nulls missing. A row's "line" is its 1-based position in the stream.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

use super::mapping::{self, Cell, RawRow, Table};
use super::{record, IngestError, Mapping, ReadOptions, ReadReport};

/// Reads record batches (all of one schema) through `mapping`; messages name them `name`.
pub fn read_batches(
    name: &Path,
    batches: &[RecordBatch],
    mapping: &Mapping,
    opts: &ReadOptions,
) -> Result<ReadReport, IngestError> {
    let mut warnings = Vec::new();
    if mapping.text.is_empty() {
        return Err(IngestError::NoTextMapping {
            path: name.to_path_buf(),
        });
    }
    let columns: Vec<String> = match batches.first() {
        Some(b) => b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
        None => Vec::new(),
    };
    let plan = if batches.is_empty() {
        mapping::Plan::default()
    } else {
        mapping::resolve(name, mapping, &columns, opts.strict, &mut warnings)?
    };
    let mut rows = Vec::new();
    let mut line = 0u64;
    for batch in batches {
        let sources: Vec<&dyn Array> = plan
            .sources
            .iter()
            .map(|s| batch.column(s.index).as_ref())
            .collect();
        for i in 0..batch.num_rows() {
            line += 1;
            rows.push(Ok(RawRow {
                line,
                cells: sources.iter().map(|a| cell(*a, i)).collect(),
            }));
        }
    }
    let table = Table {
        columns,
        plan,
        rows,
    };
    let rows = record::build(name, &table.plan, mapping, opts, table.rows, &mut warnings);
    Ok(ReadReport {
        rows,
        warnings,
        columns: table.columns,
        // Arrow is no file format of `Format`'s; its values become cells as JSON values do.
        format: super::Format::Jsonl,
    })
}

/// One Arrow value as a cell.
fn cell(a: &dyn Array, i: usize) -> Cell {
    if a.is_null(i) {
        return Cell::Missing;
    }
    let text = |s: String| Cell::Text(s);
    match a.data_type() {
        DataType::Utf8 => text(a.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => text(a.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => text(a.as_string_view().value(i).to_string()),
        DataType::Boolean => text(a.as_boolean().value(i).to_string()),
        DataType::Int8 => text(a.as_primitive::<Int8Type>().value(i).to_string()),
        DataType::Int16 => text(a.as_primitive::<Int16Type>().value(i).to_string()),
        DataType::Int32 => text(a.as_primitive::<Int32Type>().value(i).to_string()),
        DataType::Int64 => text(a.as_primitive::<Int64Type>().value(i).to_string()),
        DataType::UInt8 => text(a.as_primitive::<UInt8Type>().value(i).to_string()),
        DataType::UInt16 => text(a.as_primitive::<UInt16Type>().value(i).to_string()),
        DataType::UInt32 => text(a.as_primitive::<UInt32Type>().value(i).to_string()),
        DataType::UInt64 => text(a.as_primitive::<UInt64Type>().value(i).to_string()),
        DataType::Float32 => number(f64::from(a.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => number(a.as_primitive::<Float64Type>().value(i)),
        DataType::Date32 => days(i64::from(a.as_primitive::<Date32Type>().value(i))),
        DataType::Date64 => instant(a.as_primitive::<Date64Type>().value(i), 1_000),
        DataType::Timestamp(unit, _) => {
            let (v, per_second) = match unit {
                TimeUnit::Second => (a.as_primitive::<TimestampSecondType>().value(i), 1),
                TimeUnit::Millisecond => {
                    (a.as_primitive::<TimestampMillisecondType>().value(i), 1_000)
                }
                TimeUnit::Microsecond => (
                    a.as_primitive::<TimestampMicrosecondType>().value(i),
                    1_000_000,
                ),
                TimeUnit::Nanosecond => (
                    a.as_primitive::<TimestampNanosecondType>().value(i),
                    1_000_000_000,
                ),
            };
            instant(v, per_second)
        }
        other => Cell::Invalid(format!("unsupported Arrow type {other}")),
    }
}

/// A float as a JSON number reads: the shortest decimal, no `.0` on whole numbers.
fn number(v: f64) -> Cell {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return Cell::Text(format!("{}", v as i64));
    }
    match serde_json::Number::from_f64(v) {
        Some(n) => Cell::Text(n.to_string()),
        None => Cell::Invalid(format!("{v} is not a finite number")),
    }
}

/// Days since 1970-01-01 as midnight of that day.
fn days(d: i64) -> Cell {
    instant(d * 86_400, 1)
}

/// `v` units since the epoch (`per_second` units a second), as a UTC date and time (an Arrow
/// timestamp with a zone is UTC by definition; one without is taken as written).
fn instant(v: i64, per_second: i64) -> Cell {
    let secs = v.div_euclid(per_second);
    let nanos = v.rem_euclid(per_second) * (1_000_000_000 / per_second);
    match chrono::DateTime::from_timestamp(secs, nanos as u32) {
        Some(t) => Cell::DateTime(t.naive_utc()),
        None => Cell::Invalid(format!("timestamp {v} is out of range")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int64Array, StringArray, TimestampSecondArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    #[test]
    fn arrow_rows_become_the_records_a_file_gives() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("comment", DataType::Utf8, true),
            Field::new("stars", DataType::Float64, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Second, None), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(7), Some(8), Some(9)])),
                Arc::new(StringArray::from(vec![Some("  Great  "), None, Some("ok")])),
                Arc::new(Float64Array::from(vec![Some(4.0), Some(2.5), None])),
                Arc::new(TimestampSecondArray::from(vec![
                    Some(86_400),
                    None,
                    Some(0),
                ])),
            ],
        )
        .unwrap();
        let mapping = Mapping {
            text: vec!["comment".into()],
            id: Some("id".into()),
            score: Some("stars".into()),
            date: Some("at".into()),
            ..Mapping::default()
        };
        let name = Path::new("<stdin>");
        let r = read_batches(name, &[batch], &mapping, &ReadOptions::default()).unwrap();
        let first = r.rows[0].as_ref().unwrap();
        assert_eq!((first.line, first.id.as_str()), (1, "7"));
        assert_eq!(first.text, "Great");
        assert_eq!(first.score, Some(4.0));
        assert_eq!(first.date.unwrap().to_string(), "1970-01-02 00:00:00");
        // A row without text is a row error naming its position, as in a file.
        let err = r.rows[1].as_ref().unwrap_err().to_string();
        assert!(err.starts_with("<stdin>:2: "), "{err}");
        assert_eq!(r.rows[2].as_ref().unwrap().score, None);
        // A mapped column the batches lack is the user's error, naming what exists.
        let bad = Mapping {
            text: vec!["texte".into()],
            ..Mapping::default()
        };
        let r = read_batches(name, &[r_batch()], &bad, &ReadOptions::default());
        assert!(r.is_err());
    }

    fn r_batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["a"]))]).unwrap()
    }

    #[test]
    fn numbers_read_as_json_numbers_do() {
        assert_eq!(number(4.0), Cell::Text("4".into()));
        assert_eq!(number(2.5), Cell::Text("2.5".into()));
        assert_eq!(number(-0.1), Cell::Text("-0.1".into()));
        assert!(matches!(number(f64::NAN), Cell::Invalid(_)));
    }
}
