//! The XLSX reader (calamine).
//!
//! A workbook is read from memory: the first sheet, or the one `--sheet` names (exact name, then
//! case-insensitive). The header is the first row with a non-empty cell, because sheets often
//! start with blank rows (a title row above the header is not skipped: it would be the header,
//! and the mapping error would list its cells); line numbers are the sheet's own row numbers, the ones the
//! user sees in Excel.
//!
//! Cells keep their type until a role needs them: a date cell is a date (Excel stores dates as
//! numbers with a date format; calamine tells which), a number is a number for the score and
//! becomes text for the text, id and segment columns, written as a person would read it (`9`,
//! not `9.0`; `0.3`, not `0.30000000000000004`).

use std::io::Cursor;
use std::path::Path;

use calamine::{Data, Reader, Xlsx};
use chrono::NaiveDate;

use super::mapping::{self, Cell, RawRow, Table};
use super::{IngestError, Mapping, ReadOptions, Warning};

/// Reads the sheet; without a mapping, only its header.
pub(crate) fn read(
    path: &Path,
    bytes: &[u8],
    mapping: Option<&Mapping>,
    opts: &ReadOptions,
    warnings: &mut Vec<Warning>,
) -> Result<Table, IngestError> {
    let xlsx_error = |source| IngestError::Xlsx {
        path: path.to_path_buf(),
        source,
    };
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(xlsx_error)?;
    let sheets = workbook.sheet_names();
    let sheet = match &opts.sheet {
        Some(wanted) => mapping::find_column(&sheets, wanted)
            .map(|i| sheets[i].clone())
            .ok_or_else(|| IngestError::UnknownSheet {
                path: path.to_path_buf(),
                sheet: wanted.clone(),
                available: sheets.clone(),
            })?,
        None => sheets
            .first()
            .cloned()
            .ok_or_else(|| IngestError::EmptyFile {
                path: path.to_path_buf(),
            })?,
    };
    let range = workbook.worksheet_range(&sheet).map_err(xlsx_error)?;
    let first_row = range.start().map_or(0, |(row, _)| row);

    let mut rows_iter = range.rows().enumerate();
    let columns: Vec<String> = loop {
        match rows_iter.next() {
            Some((_, cells)) if cells.iter().all(is_empty) => continue,
            Some((_, cells)) => {
                let mut names: Vec<String> = cells.iter().map(header_name).collect();
                while names.last().is_some_and(|n| n.trim().is_empty()) {
                    names.pop();
                }
                break names;
            }
            None => {
                return Err(IngestError::EmptyFile {
                    path: path.to_path_buf(),
                })
            }
        }
    };
    let Some(mapping) = mapping else {
        return Ok(Table::columns_only(columns));
    };
    let plan = mapping::resolve(path, mapping, &columns, opts.strict, warnings)?;

    let rows = rows_iter
        .filter(|(_, cells)| !cells.iter().all(is_empty))
        .map(|(i, cells)| {
            Ok(RawRow {
                line: u64::from(first_row) + i as u64 + 1,
                cells: plan
                    .sources
                    .iter()
                    .map(|s| cells.get(s.index).map_or(Cell::Missing, to_cell))
                    .collect(),
            })
        })
        .collect();
    Ok(Table {
        columns,
        plan,
        rows,
    })
}

fn is_empty(d: &Data) -> bool {
    match d {
        Data::Empty => true,
        Data::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn header_name(d: &Data) -> String {
    match to_cell(d) {
        Cell::Text(s) => s,
        Cell::Number(n) => format_number(n),
        Cell::DateTime(t) => format_datetime(t),
        Cell::Missing | Cell::Invalid(_) => String::new(),
    }
}

fn to_cell(d: &Data) -> Cell {
    match d {
        Data::Empty => Cell::Missing,
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
        Data::Int(i) => Cell::Text(i.to_string()),
        Data::Float(f) => Cell::Number(*f),
        Data::Bool(b) => Cell::Text(b.to_string()),
        Data::DateTime(dt) if dt.is_datetime() => {
            let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
            NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(d))
                .and_then(|date| {
                    date.and_hms_milli_opt(u32::from(h), u32::from(mi), u32::from(s), u32::from(ms))
                })
                .map_or_else(
                    || Cell::Invalid(format!("invalid Excel date (serial {})", dt.as_f64())),
                    Cell::DateTime,
                )
        }
        // A duration ([h]:mm:ss) is a number of days; keep it as a number.
        Data::DateTime(dt) => Cell::Number(dt.as_f64()),
        Data::Error(e) => Cell::Invalid(format!("Excel error {e}")),
    }
}

/// A number as a person reads it: integers without `.0`, at most 15 significant digits (as
/// Excel shows them), so binary noise such as `0.30000000000000004` does not leak into text.
pub(crate) fn format_number(n: f64) -> String {
    if !n.is_finite() {
        return n.to_string();
    }
    let rounded: f64 = format!("{n:.14e}").parse().unwrap_or(n);
    if rounded.fract() == 0.0 && rounded.abs() < 1e15 {
        format!("{}", rounded as i64)
    } else {
        rounded.to_string()
    }
}

/// A date cell used as text: the date alone when it is midnight.
pub(crate) fn format_datetime(t: chrono::NaiveDateTime) -> String {
    if t.time() == chrono::NaiveTime::MIN {
        t.format("%Y-%m-%d").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_excel_shows_them() {
        for (n, want) in [
            (9.0, "9"),
            (-3.0, "-3"),
            (8.5, "8.5"),
            (0.1 + 0.2, "0.3"),
            (1234567.0, "1234567"),
            (1e20, "100000000000000000000"),
            (0.000001, "0.000001"),
        ] {
            assert_eq!(format_number(n), want, "{n}");
        }
    }

    #[test]
    fn excel_cells_become_cells() {
        use calamine::{ExcelDateTime, ExcelDateTimeType};
        let date = Data::DateTime(ExcelDateTime::new(
            45352.5,
            ExcelDateTimeType::DateTime,
            false,
        ));
        let want = NaiveDate::from_ymd_opt(2024, 3, 1)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        assert_eq!(to_cell(&date), Cell::DateTime(want));
        assert_eq!(to_cell(&Data::Int(7)), Cell::Text("7".into()));
        assert_eq!(to_cell(&Data::Float(7.5)), Cell::Number(7.5));
        assert_eq!(to_cell(&Data::Empty), Cell::Missing);
        assert!(matches!(
            to_cell(&Data::Error(calamine::CellErrorType::Div0)),
            Cell::Invalid(r) if r == "Excel error #DIV/0!"
        ));
        assert_eq!(header_name(&Data::Float(2024.0)), "2024");
    }
}
