//! Is this file what its name says? A look at its first bytes before any reader parses it.
//!
//! A binary file named `.csv` used to reach the CSV reader, whose "header" was then the file's
//! bytes, and the mapping error listed them as columns (`available columns: 'ELF >…'`). The
//! readers trust that they are given text; this module makes that true or says why not:
//!
//! * **Magic numbers** of what ends up in feedback folders by mistake: executables, PDF,
//!   gzip / zstd / xz archives, PNG, JPEG, old `.xls` workbooks → [`IngestError::NotText`]
//!   naming the kind.
//! * **A ZIP given as CSV or JSONL** is nearly always an Excel workbook saved under the wrong
//!   name: it is read as XLSX, with a [`Warning::ReadAsXlsx`]. (A ZIP that is not a workbook
//!   then fails as a workbook, naming the file.)
//! * **Generic binary**: a NUL byte, or more than one byte in ten being a control character
//!   other than tab, line breaks and form feed, in the first 8 KiB. Text in any encoding the
//!   readers handle (UTF-8, Windows-1252) has neither; UTF-16, which has NULs, is let through
//!   when it starts with its byte-order mark (the decoder handles it) and named when it does not.

use std::path::Path;

use super::{Format, IngestError, Warning};

/// How much of the file is looked at.
const SAMPLE: usize = 8 * 1024;

/// Known signatures of non-text files, and their names in messages.
const MAGIC: &[(&[u8], &str)] = &[
    (b"\x7fELF", "ELF executable"),
    (b"%PDF-", "PDF document"),
    (b"\x1f\x8b", "gzip-compressed data; decompress it first"),
    (
        b"\x28\xb5\x2f\xfd",
        "zstd-compressed data; decompress it first",
    ),
    (b"\xfd7zXZ\x00", "xz-compressed data; decompress it first"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "old Excel .xls or other OLE2 document; save it as .xlsx or CSV",
    ),
    (b"\xcf\xfa\xed\xfe", "Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "Mach-O executable"),
];

/// ZIP local-file header (and the end record of an empty archive).
const ZIP: &[&[u8]] = &[b"PK\x03\x04", b"PK\x05\x06"];

/// The format to read `bytes` as: `format`, or XLSX for a ZIP named as text. A file that is not
/// text (for the CSV and JSONL readers) is an [`IngestError::NotText`].
pub(crate) fn check(
    path: &Path,
    bytes: &[u8],
    format: Format,
    warnings: &mut Vec<Warning>,
) -> Result<Format, IngestError> {
    if format == Format::Xlsx {
        return Ok(format);
    }
    if ZIP.iter().any(|m| bytes.starts_with(m)) {
        warnings.push(Warning::ReadAsXlsx {
            path: path.to_path_buf(),
            named: format,
        });
        return Ok(Format::Xlsx);
    }
    match not_text(bytes) {
        Some(kind) => Err(IngestError::NotText {
            path: path.to_path_buf(),
            kind,
        }),
        None => Ok(format),
    }
}

/// What the bytes are instead of text, or `None` for text.
pub(crate) fn not_text(bytes: &[u8]) -> Option<String> {
    if let Some((_, kind)) = MAGIC.iter().find(|(m, _)| bytes.starts_with(m)) {
        return Some(kind.to_string());
    }
    // UTF-16 with a byte-order mark is text the decoder reads.
    if bytes.starts_with(b"\xff\xfe") || bytes.starts_with(b"\xfe\xff") {
        return None;
    }
    let sample = &bytes[..bytes.len().min(SAMPLE)];
    if sample.is_empty() {
        return None;
    }
    let nuls = sample.iter().filter(|&&b| b == 0).count();
    if nuls > 0 {
        // ASCII text in UTF-16 has a NUL in every other byte, all on the same side.
        let odd = sample
            .iter()
            .skip(1)
            .step_by(2)
            .filter(|&&b| b == 0)
            .count();
        let even = nuls - odd;
        let half = sample.len() / 2;
        if sample.len() >= 4 && (odd * 10 >= half * 9 || even * 10 >= half * 9) {
            return Some("UTF-16 text without a byte-order mark; save it as UTF-8".to_string());
        }
        let s = if nuls == 1 { "" } else { "s" };
        return Some(format!(
            "binary data: {nuls} NUL byte{s} in the first {} bytes",
            sample.len()
        ));
    }
    let control = sample
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)) || b == 0x7f)
        .count();
    if control * 10 > sample.len() {
        return Some(format!(
            "binary data: {control} control characters in the first {} bytes",
            sample.len()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_are_named() {
        for (bytes, kind) in [
            (&b"\x7fELF\x02\x01\x01\0\0\0"[..], "ELF executable"),
            (b"%PDF-1.7\n%\xe2\xe3", "PDF document"),
            (
                b"\x1f\x8b\x08\0\0\0",
                "gzip-compressed data; decompress it first",
            ),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "PNG image"),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", "JPEG image"),
        ] {
            assert_eq!(not_text(bytes).as_deref(), Some(kind), "{bytes:?}");
        }
    }

    #[test]
    fn text_in_every_supported_encoding_passes() {
        for bytes in [
            &b"id,comment\n1,tr\xe8s bien\n"[..], // Windows-1252
            "id;commentaire\n1;très\tbien\r\n".as_bytes(),
            b"\xef\xbb\xbfid,comment\n",
            b"\xff\xfei\0d\0,\0c\0", // UTF-16 LE with its BOM
            b"{\"text\": \"a\\u0000b\"}\n",
            b"",
            b"a\x0cb", // a form feed
        ] {
            assert_eq!(not_text(bytes), None, "{bytes:?}");
        }
    }

    #[test]
    fn nul_bytes_and_control_characters_mean_binary() {
        let kind = not_text(b"id,comment\n1,a\0b\n").unwrap();
        assert_eq!(kind, "binary data: 1 NUL byte in the first 17 bytes");
        let noise: Vec<u8> = (0..200u8)
            .map(|i| if i % 5 == 0 { 0x01 } else { b'a' })
            .collect();
        assert!(not_text(&noise)
            .unwrap()
            .starts_with("binary data: 40 control"));
        let utf16: Vec<u8> = "id,comment\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(
            not_text(&utf16).as_deref(),
            Some("UTF-16 text without a byte-order mark; save it as UTF-8")
        );
    }

    #[test]
    fn a_zip_named_csv_is_read_as_xlsx_with_a_warning() {
        let mut w = Vec::new();
        let path = Path::new("book.csv");
        assert_eq!(
            check(path, b"PK\x03\x04\x14\0", Format::Csv, &mut w).unwrap(),
            Format::Xlsx
        );
        assert_eq!(
            w[0].to_string(),
            "book.csv: an Excel workbook (ZIP), not csv text; read as XLSX"
        );
        let e = check(Path::new("a.jsonl"), b"\x7fELF\x02", Format::Jsonl, &mut w).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.jsonl: not a text file (ELF executable); ingest reads CSV, JSON Lines and XLSX"
        );
    }
}
