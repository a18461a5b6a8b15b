//! Dry runs over files: what would be redacted (`pii scan`) and which URLs carry personal data
//! (`links check`). Nothing is written; findings name `file:line`, the column and the kind, and
//! show a masked preview only, never the value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{detect, links, PiiKind};
use crate::ingest::{self, Format, Mapping, ReadOptions};

/// One value with personal data in a file.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// 1-based line (XLSX: row).
    pub line: u64,
    /// Column (`text` for the joined text columns).
    pub column: String,
    /// Kind.
    pub kind: PiiKind,
    /// The value masked: first character, `…`, last two (`j…fr`), or `…` when short.
    pub masked: String,
}

/// What `pii scan` reports.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScanReport {
    /// The file.
    pub file: PathBuf,
    /// Rows read (good and bad).
    pub rows: u64,
    /// Rows with at least one finding.
    pub rows_with_pii: u64,
    /// Spans per kind, all columns.
    pub counts: BTreeMap<PiiKind, u64>,
    /// Spans per column and kind.
    pub by_column: BTreeMap<String, BTreeMap<PiiKind, u64>>,
    /// Rows whose respondent column is filled (every one becomes a pseudonym).
    pub respondents: u64,
    /// Every finding, in file order.
    pub findings: Vec<Finding>,
    /// Rows that could not be read (`file:line: reason`, redacted).
    pub errors: Vec<String>,
}

/// Masks a value for display: enough to recognise it, not enough to learn it.
pub fn mask(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 6 {
        return "…".into();
    }
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{}…{}", chars[0], tail)
}

fn scan_value(line: u64, column: &str, value: &str, report: &mut ScanReport) -> bool {
    let spans = detect(value);
    for s in &spans {
        *report.counts.entry(s.kind).or_default() += 1;
        *report
            .by_column
            .entry(column.to_string())
            .or_default()
            .entry(s.kind)
            .or_default() += 1;
        report.findings.push(Finding {
            line,
            column: column.to_string(),
            kind: s.kind,
            masked: mask(&value[s.start..s.end]),
        });
    }
    !spans.is_empty()
}

/// Scans the mapped columns of a file (text, id, segments) for personal data, as ingest would
/// redact it.
pub fn scan_file(
    path: &Path,
    format: Option<Format>,
    mapping: &Mapping,
    opts: &ReadOptions,
) -> Result<ScanReport, ingest::IngestError> {
    let read = ingest::read_file(path, format, mapping, opts)?;
    let mut report = ScanReport {
        file: path.to_path_buf(),
        rows: read.rows.len() as u64,
        ..Default::default()
    };
    for row in &read.rows {
        match row {
            Err(e) => report
                .errors
                .push(super::redact(&e.to_string()).into_string()),
            Ok(r) => {
                let mut any = scan_value(r.line, "text", &r.text, &mut report);
                if !r.id_is_hash {
                    let col = mapping.id.as_deref().unwrap_or("id");
                    any |= scan_value(r.line, col, &r.id, &mut report);
                }
                for (k, v) in &r.fields {
                    any |= scan_value(r.line, k, v, &mut report);
                }
                if r.respondent.is_some() {
                    report.respondents += 1;
                }
                report.rows_with_pii += u64::from(any);
            }
        }
    }
    Ok(report)
}

/// Scans every column of a file (`pii scan` without a mapping): each column is read as text, so
/// the report says which columns carry what, before any mapping is chosen.
pub fn scan_all_columns(
    path: &Path,
    format: Option<Format>,
    opts: &ReadOptions,
) -> Result<ScanReport, ingest::IngestError> {
    let columns = ingest::read_columns(path, format, opts)?;
    let mut report = ScanReport {
        file: path.to_path_buf(),
        ..Default::default()
    };
    let mut lines_with_pii = std::collections::BTreeSet::new();
    for column in &columns {
        let read = ingest::read_column(path, format, column, opts)?;
        report.rows = report.rows.max(read.rows.len() as u64);
        for row in &read.rows {
            match row {
                // An empty cell is not an error when every column is scanned.
                Err(e) if e.reason.starts_with("no text") => {}
                Err(e) => {
                    let msg = super::redact(&e.to_string()).into_string();
                    if !report.errors.contains(&msg) {
                        report.errors.push(msg);
                    }
                }
                Ok(r) => {
                    if scan_value(r.line, column, &r.text, &mut report) {
                        lines_with_pii.insert(r.line);
                    }
                }
            }
        }
    }
    report.findings.sort_by_key(|f| f.line);
    report.rows_with_pii = lines_with_pii.len() as u64;
    Ok(report)
}

/// A row whose URL carries personal data.
#[derive(Clone, Debug, Serialize)]
pub struct UrlRow {
    /// 1-based line.
    pub line: u64,
    /// The places in the URL and what they carry.
    pub findings: Vec<links::UrlFinding>,
}

/// What `links check` reports.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LinksReport {
    /// The file.
    pub file: PathBuf,
    /// The URL column.
    pub column: String,
    /// Rows with a URL.
    pub urls: u64,
    /// Rows whose URL carries personal data.
    pub rows: Vec<UrlRow>,
    /// Findings per kind.
    pub counts: BTreeMap<PiiKind, u64>,
    /// Rows that could not be read (other than an empty URL cell).
    pub errors: Vec<String>,
}

/// Checks every URL in `column` of a file (`links check`).
pub fn check_links(
    path: &Path,
    format: Option<Format>,
    column: &str,
    opts: &ReadOptions,
) -> Result<LinksReport, ingest::IngestError> {
    let read = ingest::read_column(path, format, column, opts)?;
    let mut report = LinksReport {
        file: path.to_path_buf(),
        column: column.to_string(),
        ..Default::default()
    };
    for row in &read.rows {
        match row {
            Err(e) if e.reason.starts_with("no text") => {}
            Err(e) => report
                .errors
                .push(super::redact(&e.to_string()).into_string()),
            Ok(r) => {
                report.urls += 1;
                let findings = links::check_url(&r.text);
                for f in &findings {
                    *report.counts.entry(f.kind).or_default() += 1;
                }
                if !findings.is_empty() {
                    report.rows.push(UrlRow {
                        line: r.line,
                        findings,
                    });
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_show_little() {
        assert_eq!(mask("jean.dupont@example.fr"), "j…fr");
        assert_eq!(mask("abc"), "…");
    }
}
