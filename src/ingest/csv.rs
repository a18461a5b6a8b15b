//! The CSV reader (also TSV and other delimited text).
//!
//! The `csv` crate does the quoting; this module adds what exports need on top:
//!
//! * **Delimiter sniffing.** Excel writes `;` where the decimal separator is a comma (France,
//!   Germany...), tools write tabs or pipes. [`sniff_delimiter`] parses the start of the file with
//!   each candidate, quotes and all, and keeps the one whose rows agree with the header's field
//!   count; a delimiter inside a quoted field therefore cannot fool it.
//! * **Rows read as bytes** (`ByteRecord`), decoded field by field, so one row with invalid UTF-8
//!   is a row error and the rest of the file goes on (see `decode`).
//! * **Flexible parsing, checked by hand**: a row with the wrong number of fields is a row error
//!   naming both counts and the delimiter, instead of an error that ends the file. Extra trailing
//!   fields that are all empty (`a;b;;`, as spreadsheets write) are accepted.
//! * **Line numbers are physical lines** where the row starts, taken from the parser's position,
//!   so they stay right after quoted fields that span lines.
//! * **Broken quotes are not multi-line fields.** A stray `"` opens a field that the parser
//!   closes at the next quote, lines later, gluing rows together without an error (one row's
//!   text swallowing the next row, whose score then lands in the first). A quoted field that
//!   spans lines is legitimate, so only the suspicious case is rejected, as one row error over
//!   the line range: its lines look like rows of the file's width, or its quote never closes
//!   before the end of the file. `--multiline-fields` accepts the first kind.
//! * Rows whose fields are all empty (`;;;` at the end of a spreadsheet export) are skipped, as
//!   blank lines are.

use std::path::Path;

use ::csv::{ByteRecord, ReaderBuilder};

use super::mapping::{self, RawRow, Table};
use super::{decode, IngestError, Mapping, ReadOptions, RowError, Warning};

/// Candidate delimiters, in order of preference on a tie.
pub(crate) const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// How much of the file the sniffer looks at.
const SNIFF_BYTES: usize = 64 * 1024;
/// How many records the sniffer compares with the header.
const SNIFF_RECORDS: usize = 200;

/// Reads the file; without a mapping, only its header. `delimiter` skips sniffing.
pub(crate) fn read(
    path: &Path,
    bytes: &[u8],
    mapping: Option<&Mapping>,
    opts: &ReadOptions,
    delimiter: Option<u8>,
    warnings: &mut Vec<Warning>,
) -> Result<Table, IngestError> {
    let data = decode::prepare(bytes, path, warnings);
    let delimiter = delimiter.unwrap_or_else(|| sniff_delimiter(&data));
    tracing::debug!(path = %path.display(), delimiter = %(delimiter as char).escape_default(), "csv delimiter");
    let mut reader = ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(&data[..]);
    let mut record = ByteRecord::new();

    // The header is the first row with a non-empty field.
    let columns: Vec<String> = loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) if is_blank(&record) => continue,
            Ok(true) => {
                break record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect()
            }
            Ok(false) => {
                return Err(IngestError::EmptyFile {
                    path: path.to_path_buf(),
                })
            }
            // Reading bytes from memory, flexible, the parser has nothing to fail on; should it
            // ever, a file whose start cannot be parsed has no header.
            Err(_) => {
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
    let width = columns.len();

    let mut rows = Vec::new();
    let mut last_line = 1;
    let mut errors_in_a_row = 0;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                errors_in_a_row = 0;
                let line = record
                    .position()
                    .map_or(last_line + 1, |p| record_line(&data, p));
                last_line = line;
                if is_blank(&record) {
                    continue;
                }
                if let Some(start) = record.position().map(|p| p.byte()) {
                    let span = Span {
                        data: &data,
                        start,
                        end: reader.position().byte(),
                        line,
                    };
                    if let Some(e) = span.broken_quote(path, width, delimiter, opts) {
                        last_line = e.end_line.unwrap_or(line);
                        rows.push(Err(e));
                        continue;
                    }
                }
                let n = record.len();
                if n < width || (n > width && !record.iter().skip(width).all(is_empty_field)) {
                    rows.push(Err(RowError {
                        path: path.to_path_buf(),
                        line,
                        end_line: None,
                        reason: format!(
                            "expected {width} fields separated by '{}' (as in the header), \
                             found {n}",
                            (delimiter as char).escape_default()
                        ),
                    }));
                    continue;
                }
                let cells = plan
                    .sources
                    .iter()
                    .map(|s| decode::field(record.get(s.index).unwrap_or_default()))
                    .collect();
                rows.push(Ok(RawRow { line, cells }));
            }
            Err(e) => {
                // Not expected from an in-memory reader; report it and stop if it repeats, so a
                // parser stuck on one spot cannot loop forever.
                let line = e.position().map_or(last_line, |p| p.line());
                rows.push(Err(RowError {
                    path: path.to_path_buf(),
                    line,
                    end_line: None,
                    reason: format!("unreadable row: {e}"),
                }));
                errors_in_a_row += 1;
                if errors_in_a_row > 3 {
                    break;
                }
            }
        }
    }
    Ok(Table {
        columns,
        plan,
        rows,
    })
}

/// The bytes of one record, for a second look at its quotes.
struct Span<'a> {
    data: &'a [u8],
    /// Where the parser started the record (before blank lines it skipped).
    start: u64,
    /// Where the next record starts.
    end: u64,
    /// The physical line where the record's first field starts.
    line: u64,
}

impl Span<'_> {
    /// The row error for a record whose quoted field looks like a broken quote rather than a
    /// multi-line field: a field whose quote never closes before the end of the file, or (unless
    /// `--multiline-fields`) a record whose first line and at least one continuation line each
    /// parse as a row of the file's width, which is what a stray quote does: its own row is
    /// complete and the rows after it are swallowed. A multi-line field whose lines do not look
    /// like rows (a comment with paragraphs) is left alone, and so are files of one column,
    /// where every line looks like a row.
    fn broken_quote(
        &self,
        path: &Path,
        width: usize,
        delimiter: u8,
        opts: &ReadOptions,
    ) -> Option<RowError> {
        let clamp = |p: u64| {
            usize::try_from(p)
                .unwrap_or(usize::MAX)
                .min(self.data.len())
        };
        let raw = &self.data[clamp(self.start)..clamp(self.end)];
        // The blank lines skipped before the record, and its terminator, are not part of it.
        let first = raw.iter().position(|&b| b != b'\n' && b != b'\r')?;
        let mut body = &raw[first..];
        while let [rest @ .., b'\n' | b'\r'] = body {
            body = rest;
        }
        let unclosed = ends_inside_quotes(body, delimiter);
        let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
        if lines.len() < 2 && !unclosed {
            return None;
        }
        // A stray quote leaves the row it is in complete (the quote read as a character) and
        // swallows the rows after it; a real multi-line field does neither, as a rule.
        let first_is_row = looks_like_row(lines[0], width, delimiter);
        let swallowed = lines[1..]
            .iter()
            .filter(|l| looks_like_row(l, width, delimiter))
            .count();
        let rows = (usize::from(first_is_row) + swallowed).max(1);
        let glued = width >= 2 && first_is_row && swallowed > 0 && !opts.multiline_fields;
        if !unclosed && !glued {
            return None;
        }
        let end_line = self.line + lines.len() as u64 - 1;
        let (n, m) = (self.line, end_line);
        let reason = match (unclosed, lines.len()) {
            (true, 1) => "unterminated quote: a quoted field opens on this line and the file \
                          ends before it closes"
                .to_string(),
            (true, _) => format!(
                "unterminated quote: field spans lines {n}–{m}, to the end of the file, looks \
                 like {rows} rows"
            ),
            (false, _) => format!(
                "unterminated quote? field spans lines {n}–{m}, looks like {rows} rows; \
                 if fields are meant to span lines, pass --multiline-fields"
            ),
        };
        Some(RowError {
            path: path.to_path_buf(),
            line: n,
            end_line: Some(end_line),
            reason,
        })
    }
}

/// Whether a record's bytes end inside a quoted field, i.e. its quote never closed: the csv
/// crate's quoting rules (a quote opens a field only at its start, `""` inside is a quote).
fn ends_inside_quotes(body: &[u8], delimiter: u8) -> bool {
    #[derive(PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    for &b in body {
        state = match state {
            State::FieldStart if b == b'"' => State::Quoted,
            State::FieldStart | State::Unquoted | State::QuoteInQuoted if b == delimiter => {
                State::FieldStart
            }
            State::FieldStart | State::Unquoted => State::Unquoted,
            State::Quoted if b == b'"' => State::QuoteInQuoted,
            State::Quoted => State::Quoted,
            State::QuoteInQuoted if b == b'"' => State::Quoted,
            State::QuoteInQuoted => State::Unquoted,
        };
    }
    state == State::Quoted
}

/// Whether one physical line, parsed on its own with quotes read as characters, is a row of
/// `width` fields.
fn looks_like_row(line: &[u8], width: usize, delimiter: u8) -> bool {
    if line.iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    let mut reader = ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(false)
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    let mut record = ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => {
            let n = record.len();
            n == width || (n > width && record.iter().skip(width).all(is_empty_field))
        }
        _ => false,
    }
}

/// The physical line where a record's first field starts. The parser's position is where it
/// began reading the record, which is before any blank lines or the `\n` of a `\r\n` that it
/// skipped on the way; count those.
fn record_line(data: &[u8], pos: &::csv::Position) -> u64 {
    let start = usize::try_from(pos.byte())
        .unwrap_or(usize::MAX)
        .min(data.len());
    let skipped = data[start..]
        .iter()
        .take_while(|&&b| b == b'\n' || b == b'\r')
        .filter(|&&b| b == b'\n')
        .count();
    pos.line() + skipped as u64
}

fn is_empty_field(f: &[u8]) -> bool {
    f.iter().all(u8::is_ascii_whitespace)
}

fn is_blank(record: &ByteRecord) -> bool {
    record.iter().all(is_empty_field)
}

/// Picks the delimiter whose parse of the file's start is most consistent: the share of rows
/// with as many fields as the header, then the number of header fields. A candidate that gives
/// the header a single field never wins; with no winner the answer is `,`.
pub(crate) fn sniff_delimiter(data: &[u8]) -> u8 {
    let sample = if data.len() > SNIFF_BYTES {
        // Cut at a line end; a quoted field that spans the cut only costs one record.
        let cut = data[..SNIFF_BYTES]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(SNIFF_BYTES, |i| i + 1);
        &data[..cut]
    } else {
        data
    };
    let truncated = sample.len() < data.len();
    let mut best: Option<(f64, usize, u8)> = None;
    for d in DELIMITERS {
        // Absent from the sample, it cannot split the header: skip building a parser for it.
        if !sample.contains(&d) {
            continue;
        }
        let mut reader = ReaderBuilder::new()
            .delimiter(d)
            .has_headers(false)
            .flexible(true)
            .from_reader(sample);
        let mut counts = Vec::new();
        let mut record = ByteRecord::new();
        while counts.len() <= SNIFF_RECORDS {
            match reader.read_byte_record(&mut record) {
                Ok(true) if is_blank(&record) => {}
                Ok(true) => counts.push(record.len()),
                Ok(false) | Err(_) => break,
            }
        }
        if truncated && counts.len() > 2 {
            counts.pop();
        }
        let Some((&header, rest)) = counts.split_first() else {
            continue;
        };
        if header < 2 {
            continue;
        }
        let agree = if rest.is_empty() {
            1.0
        } else {
            rest.iter().filter(|&&n| n == header).count() as f64 / rest.len() as f64
        };
        let better = match best {
            None => true,
            Some((a, h, _)) => agree > a || (agree == a && header > h),
        };
        if better {
            best = Some((agree, header, d));
        }
    }
    best.map_or(b',', |(_, _, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{read_bytes, Format, Record};

    fn text_mapping() -> Mapping {
        Mapping {
            text: vec!["comment".into()],
            id: Some("id".into()),
            ..Mapping::default()
        }
    }

    fn read(input: &[u8], mapping: &Mapping) -> crate::ingest::ReadReport {
        read_bytes(input, Format::Csv, mapping, &ReadOptions::default()).unwrap()
    }

    #[test]
    fn sniffs_each_delimiter() {
        let cases: &[(&str, u8)] = &[
            ("id,comment\n1,a\n2,b\n", b','),
            ("id;comment\n1;a, b\n2;c\n", b';'),
            ("id\tcomment\n1\ta;b\n2\tc,d\n", b'\t'),
            ("id|comment\n1|x\n", b'|'),
            // the delimiter of the wrong candidate is hidden in quotes
            ("id;comment\n1;\"a,b,c\"\n2;\"d,e\"\n", b';'),
            ("\"a;b\",c\n1,2\n", b','),
            // a header with commas in its names, rows delimited by ';'
            ("Note (0,10);Commentaire\n8;bien\n9;super\n", b';'),
            // one column: nothing wins, comma by default
            ("comment\nhello\n", b','),
            ("", b','),
        ];
        for (input, want) in cases {
            assert_eq!(
                sniff_delimiter(input.as_bytes()) as char,
                *want as char,
                "{input:?}"
            );
        }
    }

    #[test]
    fn multi_line_fields_keep_line_numbers() {
        let input = b"id,comment\n1,\"first\nsecond\nthird\"\n2,plain\n\n3,\"x\r\ny\"\r\n4,z\n";
        let r = read(input, &text_mapping());
        let got: Vec<(u64, &str, &str)> = r
            .records()
            .map(|r| (r.line, r.id.as_str(), r.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "1", "first\nsecond\nthird"),
                (5, "2", "plain"),
                (7, "3", "x\ny"),
                (9, "4", "z"),
            ]
        );
    }

    #[test]
    fn line_numbers_with_crlf_and_blank_lines() {
        let input = b"\r\n\r\nid,comment\r\n1,a\r\n\r\n\r\n2,\"b\r\nc\"\r\n3,d\r\n\n\n4,e";
        let r = read(input, &text_mapping());
        let got: Vec<(u64, &str)> = r.records().map(|r| (r.line, r.id.as_str())).collect();
        assert_eq!(got, vec![(4, "1"), (7, "2"), (9, "3"), (12, "4")]);
    }

    #[test]
    fn wrong_field_count_is_a_row_error_and_the_run_goes_on() {
        let input = b"id;comment;country\n1;ok;FR\n2;too;many;fields\n3;short\n4;fine;DE;;\n";
        let r = read(input, &text_mapping());
        assert_eq!(r.rows.len(), 4);
        let errs: Vec<String> = r.errors().map(|e| e.to_string()).collect();
        assert_eq!(
            errs,
            vec![
                "<input>:3: expected 3 fields separated by ';' (as in the header), found 4",
                "<input>:4: expected 3 fields separated by ';' (as in the header), found 2",
            ]
        );
        let ids: Vec<&str> = r.records().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec!["1", "4"]);
    }

    #[test]
    fn invalid_utf8_rejects_only_its_row() {
        let input = b"id,comment,other\n1,caf\xc3\xa9,a\n2,bad \xff byte,x\n3,fine,\xfe\n";
        let r = read(input, &text_mapping());
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.rows.len(), 3);
        assert_eq!(r.rows[0].as_ref().unwrap().text, "café");
        assert_eq!(
            r.rows[1].as_ref().unwrap_err().to_string(),
            "<input>:3: invalid UTF-8 (byte 0xFF at offset 4) in column 'comment'"
        );
        // invalid bytes in a column the mapping does not use do not cost the row
        assert_eq!(r.rows[2].as_ref().unwrap().text, "fine");
    }

    #[test]
    fn bom_blank_rows_and_header_search() {
        let input = "\u{feff}\n;;\nID;Comment\n1;a\n;;\n;\n2;b\n".as_bytes();
        let r = read(input, &text_mapping());
        assert_eq!(r.columns, vec!["ID", "Comment"]);
        let got: Vec<(u64, String)> = r.records().map(|r| (r.line, r.text.clone())).collect();
        assert_eq!(got, vec![(4, "a".to_string()), (7, "b".to_string())]);
    }

    #[test]
    fn empty_file_is_an_error() {
        for input in [&b""[..], b"\n\n", b"\xef\xbb\xbf", b"\r\n\r\n"] {
            let err = read_bytes(input, Format::Csv, &text_mapping(), &ReadOptions::default())
                .unwrap_err();
            assert!(matches!(err, IngestError::EmptyFile { .. }), "{input:?}");
        }
    }

    #[test]
    fn header_only_file_has_no_rows() {
        let r = read(b"id,comment\n", &text_mapping());
        assert!(r.rows.is_empty());
        assert_eq!(r.columns, vec!["id", "comment"]);
    }

    #[test]
    fn tsv_path_means_tabs() {
        let m = Mapping {
            text: vec!["comment".into()],
            ..Mapping::default()
        };
        let input = b"comment\ta,b\nx,y\t1,2\n";
        let opts = ReadOptions::default();
        let as_tsv =
            crate::ingest::read_named_bytes(Path::new("in.TSV"), input, Format::Csv, &m, &opts)
                .unwrap();
        let recs: Vec<&Record> = as_tsv.records().collect();
        assert_eq!(recs[0].text, "x,y");
    }
}
