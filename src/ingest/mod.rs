//! Ingest: reads CSV, JSONL and XLSX files into [`Record`]s through a column [`Mapping`].
//!
//! Why it is shaped like this:
//!
//! * **Two kinds of failure.** Whatever stops the whole file (it cannot be read, a mapped column
//!   does not exist, the workbook is broken) is an [`IngestError`] naming the path, the column or
//!   the flag the user should fix. Whatever is wrong with one row (an unparsable date, a score that
//!   is not a number, invalid UTF-8, a row with the wrong number of fields) is a [`RowError`]
//!   (`file:line: reason`) in [`ReadReport::rows`], in file order, and the rest of the file goes
//!   on. A bad row never stops a run, and nothing is silently dropped: every row of the file is
//!   either a [`Record`] or a [`RowError`], except rows that are entirely blank.
//! * **One pipeline for three formats.** Each reader (`csv`, `jsonl`, `xlsx`) only finds the
//!   column names, resolves the mapping against them (`mapping`) and turns each row into raw
//!   cells for the mapped columns. `record` then turns raw cells into records the same way for
//!   every format, so a date or a score means the same thing whatever file it came from.
//! * **Records are built after the whole file is read**, because one decision needs every value:
//!   whether `03/04/2024` is the 3rd of April or the 4th of March is settled once per file
//!   from all the dates in the column (see `dates`), not guessed row by row.
//! * **Decoding is per field.** A file that is clearly not UTF-8 is decoded as Windows-1252 with a
//!   [`Warning`]; in a file that is otherwise UTF-8, a row holding invalid bytes is rejected on its
//!   own (`decode`).
//! * **Identity.** A record's id comes from the mapped id column; without one it is a content
//!   hash of the text ([`content_id`]): re-ingesting a file gives the same ids, and two rows with
//!   identical text get the same id, i.e. they are one verbatim as far as the store is
//!   concerned. Map an id column to keep such rows apart.
//!
//! The whole file is read into memory: feedback exports are megabytes, not gigabytes, and it lets
//! every reader work on a byte slice ([`read_bytes`] is what the fuzz targets call).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

mod arrow;
mod csv;
pub mod dates;
mod decode;
mod jsonl;
mod mapping;
mod record;
mod scores;
mod sniff;
mod xlsx;

#[cfg(test)]
mod tests;

pub use arrow::read_batches as read_arrow_batches;
pub use dates::{parse_date, DateOrder};
pub use record::content_id;
pub use scores::{ParseScoreMapError, ScoreMap};

/// Default for [`ReadOptions::max_text_bytes`]: 64 KiB of text per verbatim.
pub const DEFAULT_MAX_TEXT_BYTES: usize = 65_536;

/// Which columns of a file hold what.
///
/// Stored in `verbatim.toml` under `[mapping]` and reused by later ingests, so a mapping may
/// name columns that a later file lacks; see [`ReadOptions::strict`].
/// Column names match the header exactly, falling back to a trimmed, case-insensitive match.
/// For JSONL, a name may be a dotted path into nested objects (`customer.country`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Mapping {
    /// Column(s) holding the feedback text; the non-empty ones are joined with `"\n"`.
    pub text: Vec<String>,
    /// Column holding a unique id; without one, the id is [`content_id`] of the text.
    pub id: Option<String>,
    /// Column holding the respondent (customer, user, account).
    pub respondent: Option<String>,
    /// Column holding the date of the response.
    pub date: Option<String>,
    /// A chrono strftime format (`%d/%m/%Y`) that every date must follow; without one the
    /// format is recognised per value and the day/month order inferred per file.
    pub date_format: Option<String>,
    /// Column holding a numeric score (NPS, CSAT, stars).
    pub score: Option<String>,
    /// Segment columns (country, product, plan, ...), any number.
    pub fields: Vec<String>,
    /// Column holding a language code.
    pub language: Option<String>,
    /// Text scores read as numbers (`--score-map great=5,good=4,*=1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_map: Option<ScoreMap>,
    /// What to do with a row whose date cannot be read (`--on-bad-date`).
    #[serde(skip_serializing_if = "OnBadDate::is_reject")]
    pub on_bad_date: OnBadDate,
}

/// What to do with a row whose date cannot be read (`--on-bad-date`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnBadDate {
    /// The row is rejected (the default: a date is data, and losing it silently is not ours to
    /// decide).
    #[default]
    Reject,
    /// The row is kept without a date, and the run says how many rows lost theirs.
    SkipDate,
}

impl OnBadDate {
    fn is_reject(&self) -> bool {
        *self == OnBadDate::Reject
    }

    /// The value of `--on-bad-date` that selects it.
    pub fn name(self) -> &'static str {
        match self {
            OnBadDate::Reject => "reject",
            OnBadDate::SkipDate => "skip-date",
        }
    }
}

impl fmt::Display for OnBadDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OnBadDate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "reject" => Ok(OnBadDate::Reject),
            "skip-date" | "skip" => Ok(OnBadDate::SkipDate),
            other => Err(format!(
                "--on-bad-date '{other}': expected skip-date or reject"
            )),
        }
    }
}

/// How to read a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// The XLSX sheet to read; the first sheet when `None`.
    pub sheet: Option<String>,
    /// A row whose text is longer than this (in UTF-8 bytes) is rejected.
    pub max_text_bytes: usize,
    /// `true`: any mapped column missing from the file is an [`IngestError::UnknownColumn`].
    /// `false` (a mapping carried over from `verbatim.toml`): a missing column other than a text
    /// column is absent for every row, with a [`Warning::MissingColumn`].
    pub strict: bool,
    /// CSV: quoted fields that span lines are meant (`--multiline-fields`), even when their
    /// continuation lines look like rows of the file (see `csv`).
    pub multiline_fields: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            sheet: None,
            max_text_bytes: DEFAULT_MAX_TEXT_BYTES,
            strict: true,
            multiline_fields: false,
        }
    }
}

/// One verbatim as read from a file, before redaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// 1-based line where the row starts (CSV/JSONL: physical line; XLSX: sheet row number).
    pub line: u64,
    /// The id from the id column, or [`content_id`] of the text.
    pub id: String,
    /// `true` when `id` is a content hash rather than a value from the file.
    pub id_is_hash: bool,
    /// The text: mapped columns joined with `"\n"`, trimmed, control characters other than
    /// newline and tab removed, line breaks normalised to `"\n"`.
    pub text: String,
    /// The respondent, when mapped and non-empty.
    pub respondent: Option<String>,
    /// The date, converted to UTC when it carried an offset; a date alone is midnight.
    pub date: Option<chrono::NaiveDateTime>,
    /// The score, when mapped and non-empty.
    pub score: Option<f64>,
    /// Segment name (as written in the mapping) → trimmed value; empty values are absent.
    pub fields: BTreeMap<String, String>,
    /// The language code (trimmed, lower-cased), when mapped and non-empty.
    pub language: Option<String>,
}

/// A row that could not become a [`Record`]. Displays as `path:line: reason`, or
/// `path:first-last: reason` for a row that spans lines.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}: {reason}", path.display(), line_range(*line, *end_line))]
pub struct RowError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (XLSX: row number) where the row starts.
    pub line: u64,
    /// The last line of a row that spans several (a CSV field that never closes its quote);
    /// `None` for a row on one line.
    pub end_line: Option<u64>,
    /// What is wrong, naming the column and the value.
    pub reason: String,
}

impl RowError {
    /// A row error on one line.
    pub fn new(path: &Path, line: u64, reason: impl Into<String>) -> RowError {
        RowError {
            path: path.to_path_buf(),
            line,
            end_line: None,
            reason: reason.into(),
        }
    }
}

fn line_range(line: u64, end: Option<u64>) -> String {
    match end {
        Some(end) if end > line => format!("{line}-{end}"),
        _ => line.to_string(),
    }
}

/// The role a mapped column plays; used in messages to name the flag that set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A text column (`--text`).
    Text,
    /// The id column (`--id`).
    Id,
    /// The respondent column (`--respondent`).
    Respondent,
    /// The date column (`--date`).
    Date,
    /// The score column (`--score`).
    Score,
    /// A segment column (`--field`).
    Field,
    /// The language column (`--language`).
    Language,
}

impl Role {
    /// The command-line flag that maps this role.
    pub fn flag(self) -> &'static str {
        match self {
            Role::Text => "--text",
            Role::Id => "--id",
            Role::Respondent => "--respondent",
            Role::Date => "--date",
            Role::Score => "--score",
            Role::Field => "--field",
            Role::Language => "--language",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Text => "text",
            Role::Id => "id",
            Role::Respondent => "respondent",
            Role::Date => "date",
            Role::Score => "score",
            Role::Field => "segment field",
            Role::Language => "language",
        })
    }
}

/// Something the user should know about a file that did not stop it being read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// The file is not UTF-8 (invalid bytes and no multi-byte UTF-8 character) and was decoded
    /// as Windows-1252, the usual encoding of CSV files saved by Excel on Windows.
    DecodedAsWindows1252 {
        /// The file.
        path: PathBuf,
        /// How many bytes were not valid UTF-8.
        invalid_bytes: usize,
    },
    /// The file starts with a UTF-16 byte-order mark and was decoded as UTF-16.
    DecodedAsUtf16 {
        /// The file.
        path: PathBuf,
        /// `true` for big-endian.
        big_endian: bool,
    },
    /// No date in the column proves the day/month order; `assumed` was used.
    AmbiguousDateOrder {
        /// The file.
        path: PathBuf,
        /// The date column.
        column: String,
        /// One of the ambiguous values.
        example: String,
        /// The order used.
        assumed: DateOrder,
    },
    /// Some dates prove day/month and others month/day; the majority won and the other rows
    /// were rejected.
    MixedDateOrder {
        /// The file.
        path: PathBuf,
        /// The date column.
        column: String,
        /// The order used.
        chosen: DateOrder,
        /// Rows whose date proves day/month (a first part over 12).
        day_first: usize,
        /// Rows whose date proves month/day (a second part over 12).
        month_first: usize,
    },
    /// A ZIP file (an Excel workbook) was named or forced as CSV or JSONL; it was read as XLSX.
    ReadAsXlsx {
        /// The file.
        path: PathBuf,
        /// The format its name or `--format` said.
        named: Format,
    },
    /// Dates that cannot be read, counted once instead of once per row. With
    /// [`OnBadDate::Reject`] there is one per shape of value that many rows share (their rows
    /// are rejected); with [`OnBadDate::SkipDate`] one for the file (their rows kept undated).
    UnreadableDates {
        /// The file.
        path: PathBuf,
        /// The date column.
        column: String,
        /// How many rows.
        rows: usize,
        /// Rows with a non-empty date.
        dated: usize,
        /// One of the values.
        example: String,
        /// A `--date-format` that reads them, when one was found.
        suggestion: Option<String>,
        /// `true`: the rows were kept without their date (`--on-bad-date skip-date`).
        kept: bool,
        /// The rows' lines (not shown; lets a front end fold their row errors).
        lines: Vec<u64>,
    },
    /// A mapped column (not a text column) is missing from this file; with
    /// [`ReadOptions::strict`] off it is absent for every row.
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column named by the mapping.
        column: String,
        /// What the column was mapped as.
        role: Role,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::DecodedAsWindows1252 {
                path,
                invalid_bytes,
            } => write!(
                f,
                "{}: not UTF-8 ({invalid_bytes} invalid bytes and no multi-byte UTF-8 character); \
                 decoded as Windows-1252 (Latin-1)",
                path.display()
            ),
            Warning::DecodedAsUtf16 { path, big_endian } => write!(
                f,
                "{}: UTF-16 {} byte-order mark; decoded as UTF-16",
                path.display(),
                if *big_endian { "BE" } else { "LE" }
            ),
            Warning::AmbiguousDateOrder {
                path,
                column,
                example,
                assumed,
            } => {
                let other = match assumed {
                    DateOrder::DayFirst => DateOrder::MonthFirst,
                    DateOrder::MonthFirst => DateOrder::DayFirst,
                };
                write!(
                    f,
                    "{}: dates in column '{column}' (such as '{example}') could be day/month or \
                     month/day; read them as {assumed}. If they are {other}, pass \
                     --date-format '{}'",
                    path.display(),
                    dates::suggest_format(&[example.as_str()], other)
                        .unwrap_or_else(|| other.suggested_format().to_string())
                )
            }
            Warning::MixedDateOrder {
                path,
                column,
                chosen,
                day_first,
                month_first,
            } => write!(
                f,
                "{}: column '{column}' mixes day/month dates ({day_first} rows) and month/day \
                 dates ({month_first} rows); read as {chosen}, the rows that contradict it are \
                 rejected",
                path.display()
            ),
            Warning::ReadAsXlsx { path, named } => write!(
                f,
                "{}: an Excel workbook (ZIP), not {named} text; read as XLSX",
                path.display()
            ),
            Warning::UnreadableDates {
                path,
                column,
                rows,
                dated,
                example,
                suggestion,
                kept,
                lines: _,
            } => {
                let fix = match suggestion {
                    Some(format) => format!("--date-format '{format}' reads them"),
                    None => "pass --date-format (a strftime format such as '%d-%m-%Y %H:%M') \
                             to read them"
                        .to_string(),
                };
                if *kept {
                    write!(
                        f,
                        "{}: {rows} rows kept without their date (--on-bad-date skip-date): \
                         column '{column}' holds dates that cannot be read, such as \
                         '{example}'; {fix}",
                        path.display()
                    )
                } else {
                    write!(
                        f,
                        "{}: {rows} of {dated} dates in column '{column}' cannot be read, all \
                         shaped like '{example}'; their rows are rejected. {fix}, or \
                         --on-bad-date skip-date keeps the rows without their date",
                        path.display()
                    )
                }
            }
            Warning::MissingColumn { path, column, role } => write!(
                f,
                "{}: no column '{column}' ({role}, {}) in this file; it is absent for every row",
                path.display(),
                role.flag()
            ),
        }
    }
}

/// The three file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Delimited text: `.csv`, `.tsv`, `.txt`.
    Csv,
    /// One JSON object per line (`.jsonl`, `.ndjson`), or a `.json` array of objects.
    Jsonl,
    /// Excel workbook: `.xlsx`, `.xlsm`.
    Xlsx,
}

impl Format {
    /// The format implied by the file's extension, if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "tsv" | "txt" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "xlsx" | "xlsm" => Some(Format::Xlsx),
            _ => None,
        }
    }

    /// The lower-case name accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Xlsx => "xlsx",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--format` value that names no format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown format '{0}'; expected csv, jsonl or xlsx")]
pub struct ParseFormatError(pub String);

impl FromStr for Format {
    type Err = ParseFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" | "tsv" | "txt" => Ok(Format::Csv),
            "jsonl" | "ndjson" | "json" => Ok(Format::Jsonl),
            "xlsx" | "xlsm" | "excel" => Ok(Format::Xlsx),
            _ => Err(ParseFormatError(s.to_string())),
        }
    }
}

/// Everything read from one file.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadReport {
    /// One entry per non-blank data row, in file order.
    pub rows: Vec<Result<Record, RowError>>,
    /// File-level notes (encoding fallback, date order, missing optional columns).
    pub warnings: Vec<Warning>,
    /// The column names found: the header (CSV, XLSX) or every key path seen (JSONL).
    pub columns: Vec<String>,
    /// The format the file was read as.
    pub format: Format,
}

impl ReadReport {
    /// The records read, in file order.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.rows.iter().filter_map(|r| r.as_ref().ok())
    }

    /// The rejected rows, in file order.
    pub fn errors(&self) -> impl Iterator<Item = &RowError> {
        self.rows.iter().filter_map(|r| r.as_ref().err())
    }
}

/// A problem with a whole file: nothing was read from it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The format could not be told from the extension.
    #[error(
        "cannot tell the format of {} from its extension; pass --format csv, jsonl or xlsx",
        path.display()
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The mapping names no text column.
    #[error(
        "{}: no text column mapped; pass --text COLUMN (or set `text` under [mapping] in \
         verbatim.toml)",
        path.display()
    )]
    NoTextMapping {
        /// The file.
        path: PathBuf,
    },
    /// A mapped column is not in the file (the user's fault: a typo or the wrong file).
    #[error(
        "{}: no column '{column}' (mapped as {role} by {}){}; available columns: {}",
        path.display(),
        role.flag(),
        mapping::suggestion(column, available),
        mapping::list_columns(available)
    )]
    UnknownColumn {
        /// The file.
        path: PathBuf,
        /// The column named by the mapping.
        column: String,
        /// What it was mapped as.
        role: Role,
        /// The columns the file has.
        available: Vec<String>,
    },
    /// The file holds no header row (CSV, XLSX) or no line at all (JSONL).
    #[error("{}: the file is empty (no header row or record)", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// The workbook could not be opened or the sheet read.
    #[error("cannot read {} as an Excel workbook: {source}", path.display())]
    Xlsx {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: calamine::XlsxError,
    },
    /// `--sheet` names no sheet of the workbook.
    #[error(
        "{}: no sheet '{sheet}' (--sheet); sheets: {}",
        path.display(),
        mapping::list_columns(available)
    )]
    UnknownSheet {
        /// The file.
        path: PathBuf,
        /// The sheet asked for.
        sheet: String,
        /// The workbook's sheets.
        available: Vec<String>,
    },
    /// A `.json` array file is not valid JSON; the position is where the parser gave up.
    #[error("{}:{line}: not valid JSON: {reason}", path.display())]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: u64,
        /// The parser's message.
        reason: String,
    },
    /// The file is not text (an executable, an image, an archive…): nothing to read rows from.
    #[error(
        "{}: not a text file ({kind}); ingest reads CSV, JSON Lines and XLSX",
        path.display()
    )]
    NotText {
        /// The file.
        path: PathBuf,
        /// What it looks like instead (`ELF executable`, `PDF document`, `binary data`…).
        kind: String,
    },
    /// `--date-format` is not a valid chrono strftime format.
    #[error("invalid --date-format '{format}': {reason}")]
    InvalidDateFormat {
        /// The format given.
        format: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads one file. The format comes from `format`, else from the extension.
///
/// CSV delimiters are sniffed among `,` `;` tab `|`, except that a `.tsv` file is tab-separated.
pub fn read_file(
    path: &Path,
    format: Option<Format>,
    mapping: &Mapping,
    opts: &ReadOptions,
) -> Result<ReadReport, IngestError> {
    let format = format_of(path, format)?;
    check_mapping(path, mapping)?;
    let bytes = read_all(path)?;
    read_named_bytes(path, &bytes, format, mapping, opts)
}

/// Reads one column of a file as text: one value per row, with its line (survey links, URL
/// checks, scanning every column). An empty cell is a [`RowError`] whose reason starts with
/// "no text".
pub fn read_column(
    path: &Path,
    format: Option<Format>,
    column: &str,
    opts: &ReadOptions,
) -> Result<ReadReport, IngestError> {
    let mapping = Mapping {
        text: vec![column.to_string()],
        ..Mapping::default()
    };
    read_file(path, format, &mapping, opts)
}

/// Reads a file already in memory; messages name it `<input>`.
pub fn read_bytes(
    bytes: &[u8],
    format: Format,
    mapping: &Mapping,
    opts: &ReadOptions,
) -> Result<ReadReport, IngestError> {
    read_named_bytes(Path::new("<input>"), bytes, format, mapping, opts)
}

/// Reads a file already in memory (standard input, say); messages name it `path`, and a `.tsv`
/// extension on it means tab-separated.
pub fn read_named_bytes(
    path: &Path,
    bytes: &[u8],
    format: Format,
    mapping: &Mapping,
    opts: &ReadOptions,
) -> Result<ReadReport, IngestError> {
    check_mapping(path, mapping)?;
    let mut warnings = Vec::new();
    let format = sniff::check(path, bytes, format, &mut warnings)?;
    let table = read_table(path, bytes, format, Some(mapping), opts, &mut warnings)?;
    let rows = record::build(path, &table.plan, mapping, opts, table.rows, &mut warnings);
    tracing::debug!(
        path = %path.display(),
        %format,
        rows = rows.len(),
        warnings = warnings.len(),
        "ingest: file read"
    );
    Ok(ReadReport {
        rows,
        warnings,
        columns: table.columns,
        format,
    })
}

/// The columns a file offers to a mapping, without a mapping: the header (CSV, XLSX, the sheet
/// that `opts.sheet` names) or every key path (JSONL). For guessing a mapping or listing the
/// choices to the user.
pub fn read_columns(
    path: &Path,
    format: Option<Format>,
    opts: &ReadOptions,
) -> Result<Vec<String>, IngestError> {
    let format = format_of(path, format)?;
    let bytes = read_all(path)?;
    read_named_columns(path, &bytes, format, opts)
}

/// [`read_columns`] of a file already in memory (an upload); messages name it `path`.
pub fn read_named_columns(
    path: &Path,
    bytes: &[u8],
    format: Format,
    opts: &ReadOptions,
) -> Result<Vec<String>, IngestError> {
    let format = sniff::check(path, bytes, format, &mut Vec::new())?;
    let table = read_table(path, bytes, format, None, opts, &mut Vec::new())?;
    Ok(table.columns)
}

/// The format of `path`: `format` when given, else its extension's; an error names the file.
pub fn format_for(path: &Path, format: Option<Format>) -> Result<Format, IngestError> {
    format_of(path, format)
}

fn format_of(path: &Path, format: Option<Format>) -> Result<Format, IngestError> {
    format
        .or_else(|| Format::from_path(path))
        .ok_or_else(|| IngestError::UnknownFormat {
            path: path.to_path_buf(),
        })
}

fn read_all(path: &Path) -> Result<Vec<u8>, IngestError> {
    std::fs::read(path).map_err(|source| IngestError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs the format's reader; without a mapping it stops once the columns are known.
fn read_table(
    path: &Path,
    bytes: &[u8],
    format: Format,
    mapping: Option<&Mapping>,
    opts: &ReadOptions,
    warnings: &mut Vec<Warning>,
) -> Result<mapping::Table, IngestError> {
    match format {
        Format::Csv => {
            let is_tsv = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
            let delimiter = is_tsv.then_some(b'\t');
            csv::read(path, bytes, mapping, opts, delimiter, warnings)
        }
        Format::Jsonl => jsonl::read(path, bytes, mapping, opts, warnings),
        Format::Xlsx => xlsx::read(path, bytes, mapping, opts, warnings),
    }
}

/// Checks what can be checked about a mapping before reading any file.
fn check_mapping(path: &Path, mapping: &Mapping) -> Result<(), IngestError> {
    if mapping.text.is_empty() {
        return Err(IngestError::NoTextMapping {
            path: path.to_path_buf(),
        });
    }
    if let Some(format) = &mapping.date_format {
        dates::check_format(format).map_err(|reason| IngestError::InvalidDateFormat {
            format: format.clone(),
            reason,
        })?;
    }
    Ok(())
}
