//! Text encodings of CSV and JSONL files.
//!
//! Exports arrive in UTF-8 (with or without a byte-order mark), in Windows-1252 when Excel on
//! Windows saved them "as CSV", and now and then in UTF-16 ("Unicode text"). The decision is made
//! once per file by [`prepare`], then fields are checked one by one ([`field`]):
//!
//! * a UTF-16 byte-order mark → the whole file is decoded as UTF-16, with a warning;
//! * invalid UTF-8 bytes and not a single valid multi-byte UTF-8 sequence → the file was never
//!   UTF-8: it is decoded as Windows-1252 (a superset of Latin-1 for printable text), with a
//!   warning;
//! * otherwise the file is UTF-8, and a field holding invalid bytes makes its row a row error
//!   rather than being "repaired" with replacement characters: one corrupt row must not cost the
//!   file, nor slip through mangled.

use std::borrow::Cow;
use std::path::Path;

use super::mapping::Cell;
use super::Warning;

/// How many valid multi-byte sequences and invalid bytes a buffer holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Utf8Census {
    pub multibyte: usize,
    pub invalid: usize,
}

pub(crate) fn census(mut bytes: &[u8]) -> Utf8Census {
    let mut c = Utf8Census::default();
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                c.multibyte += count_multibyte(s.as_bytes());
                return c;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                c.multibyte += count_multibyte(&bytes[..valid]);
                c.invalid += 1;
                let skip = e.error_len().unwrap_or(bytes.len() - valid);
                bytes = &bytes[valid + skip..];
            }
        }
    }
}

/// Lead bytes of multi-byte characters in valid UTF-8.
fn count_multibyte(valid: &[u8]) -> usize {
    valid.iter().filter(|&&b| b >= 0xC0).count()
}

/// The file's bytes as UTF-8 (or as close as per-field checks need): BOM removed, UTF-16 and
/// Windows-1252 files decoded whole.
pub(crate) fn prepare<'a>(
    bytes: &'a [u8],
    path: &Path,
    warnings: &mut Vec<Warning>,
) -> Cow<'a, [u8]> {
    if let Some((encoding, bom_len)) = encoding_rs::Encoding::for_bom(bytes) {
        if encoding == encoding_rs::UTF_8 {
            return Cow::Borrowed(&bytes[bom_len..]);
        }
        warnings.push(Warning::DecodedAsUtf16 {
            path: path.to_path_buf(),
            big_endian: encoding == encoding_rs::UTF_16BE,
        });
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        return Cow::Owned(text.into_owned().into_bytes());
    }
    let c = census(bytes);
    if c.invalid > 0 && c.multibyte == 0 {
        warnings.push(Warning::DecodedAsWindows1252 {
            path: path.to_path_buf(),
            invalid_bytes: c.invalid,
        });
        let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
        return Cow::Owned(text.into_owned().into_bytes());
    }
    Cow::Borrowed(bytes)
}

/// A field as a [`Cell`]: its text, or why it cannot be used.
pub(crate) fn field(bytes: &[u8]) -> Cell {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cell::Text(s.to_string()),
        Err(e) => Cell::Invalid(invalid_utf8_reason(bytes, &e)),
    }
}

/// `invalid UTF-8 (byte 0xE9 at offset 3)`.
pub(crate) fn invalid_utf8_reason(bytes: &[u8], e: &std::str::Utf8Error) -> String {
    let at = e.valid_up_to();
    match bytes.get(at) {
        Some(b) => format!("invalid UTF-8 (byte 0x{b:02X} at offset {at})"),
        None => "invalid UTF-8".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

    #[test]
    fn census_counts() {
        assert_eq!(census(b"plain ascii"), Utf8Census::default());
        assert_eq!(
            census("très bien, 😀".as_bytes()),
            Utf8Census {
                multibyte: 2,
                invalid: 0
            }
        );
        assert_eq!(
            census(b"tr\xe8s d\xe9\xe7u"),
            Utf8Census {
                multibyte: 0,
                invalid: 3
            }
        );
        // a truncated sequence at the very end counts once
        assert_eq!(census(b"ab\xe2\x82").invalid, 1);
    }

    #[test]
    fn windows_1252_file_is_decoded_with_a_warning() {
        let mut w = Vec::new();
        let out = prepare(
            b"id,comment\n1,tr\xe8s \x80 bien\n",
            Path::new("a.csv"),
            &mut w,
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "id,comment\n1,très € bien\n"
        );
        assert_eq!(w.len(), 1);
        let msg = w[0].to_string();
        assert!(
            msg.starts_with("a.csv: ") && msg.contains("Windows-1252"),
            "{msg}"
        );
    }

    #[test]
    fn utf8_file_with_one_bad_byte_stays_utf8() {
        let mut w = Vec::new();
        let mut input = UTF8_BOM.to_vec();
        input.extend_from_slice(b"id,comment\n1,d\xc3\xa9\xc3\xa7u\n2,x\xff\n");
        let out = prepare(&input, Path::new("a.csv"), &mut w);
        assert!(w.is_empty());
        assert!(out.starts_with(b"id,"));
        assert_eq!(field(b"d\xc3\xa9\xc3\xa7u"), Cell::Text("déçu".into()));
        assert_eq!(
            field(b"x\xff"),
            Cell::Invalid("invalid UTF-8 (byte 0xFF at offset 1)".into())
        );
    }

    #[test]
    fn utf16_files_are_decoded() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "id\tcomment\n1\tété\n".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let mut w = Vec::new();
        let out = prepare(&bytes, Path::new("u.txt"), &mut w);
        assert_eq!(std::str::from_utf8(&out).unwrap(), "id\tcomment\n1\tété\n");
        assert!(matches!(
            w[..],
            [Warning::DecodedAsUtf16 {
                big_endian: false,
                ..
            }]
        ));
    }
}
