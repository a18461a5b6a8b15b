//! IBANs of every country in the SWIFT IBAN registry: the country's length and mod-97.

use super::checksum::iban_mod97;
use super::text::{is_space, next_char, word_end};
use crate::pii::{PiiKind, Span};

/// IBAN length by country code (SWIFT IBAN registry; French overseas territories use FR's).
const LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BL", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GF", 27),
    (b"GI", 23),
    (b"GL", 18),
    (b"GP", 27),
    (b"GR", 27),
    (b"GT", 28),
    (b"HN", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MF", 27),
    (b"MK", 19),
    (b"MN", 20),
    (b"MQ", 27),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NC", 27),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PF", 27),
    (b"PK", 24),
    (b"PL", 28),
    (b"PM", 27),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RE", 27),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TF", 27),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"WF", 27),
    (b"XK", 20),
    (b"YE", 30),
    (b"YT", 27),
];

/// The IBAN starting at word start `i`, if one does: two letters, two digits, then letters and
/// digits up to the country's length, in groups separated by one space or `-` (the same one
/// throughout), or none. All letters in one case.
pub(super) fn at(text: &str, i: usize) -> Option<Span> {
    let b = text.as_bytes();
    if i + 4 > b.len()
        || !b[i].is_ascii_alphabetic()
        || !b[i + 1].is_ascii_alphabetic()
        || !b[i + 2].is_ascii_digit()
        || !b[i + 3].is_ascii_digit()
    {
        return None;
    }
    let lowercase = b[i].is_ascii_lowercase();
    let cc = [b[i].to_ascii_uppercase(), b[i + 1].to_ascii_uppercase()];
    if b[i + 1].is_ascii_lowercase() != lowercase {
        return None;
    }
    let len = LENGTHS.iter().find(|(c, _)| **c == cc)?.1;
    let mut sig = Vec::with_capacity(len);
    let mut pos = i;
    let mut sep: Option<char> = None;
    while sig.len() < len {
        let c = b.get(pos).copied()?;
        if c.is_ascii_digit() || (c.is_ascii_alphabetic() && c.is_ascii_lowercase() == lowercase) {
            sig.push(c.to_ascii_uppercase());
            pos += 1;
            continue;
        }
        // A separator between two significant chars, the same one each time.
        let s = next_char(text, pos)?;
        if !(is_space(s) || s == '-') || sep.is_some_and(|p| p != s) || pos == i {
            return None;
        }
        let after = b.get(pos + s.len_utf8()).copied()?;
        if !after.is_ascii_alphanumeric() {
            return None;
        }
        sep = Some(s);
        pos += s.len_utf8();
    }
    if !word_end(text, pos) || !iban_mod97(&sig) {
        return None;
    }
    Some(Span {
        start: i,
        end: pos,
        kind: PiiKind::Iban,
    })
}
