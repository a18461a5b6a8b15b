//! IP addresses: dotted IPv4 (octets ≤ 255, not a version number) and IPv6 (full, compressed,
//! with an IPv4 tail).

use super::text::{glued_left, glued_right, number_at, prev_char, words_before};
use crate::pii::{PiiKind, Span};

/// Words after which a dotted quad is a version, not an address (`version 1.2.3.4`, `iOS 17.4.1.2`).
const VERSION_WORDS: &[&str] = &[
    "v",
    "ver",
    "vers",
    "version",
    "versions",
    "build",
    "firmware",
    "fw",
    "ios",
    "ipados",
    "android",
    "macos",
    "windows",
    "release",
    "update",
    "app",
    "appli",
    "application",
    "patch",
    "driver",
    "pilote",
    "bios",
    "kernel",
    "chrome",
    "firefox",
    "safari",
    "edge",
];

/// Reads one decimal octet (0–255, no leading zero) at `pos`; returns the position after it.
fn octet(b: &[u8], pos: usize) -> Option<usize> {
    let mut end = pos;
    while end < b.len() && end - pos < 4 && b[end].is_ascii_digit() {
        end += 1;
    }
    let digits = &b[pos..end];
    if digits.is_empty() || digits.len() > 3 || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let v: u32 = digits.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0'));
    (v <= 255).then_some(end)
}

/// A dotted quad starting at `i` (callers have checked the left boundary); the end byte.
fn dotted_quad(b: &[u8], i: usize) -> Option<usize> {
    let mut pos = octet(b, i)?;
    for _ in 0..3 {
        if b.get(pos) != Some(&b'.') {
            return None;
        }
        pos = octet(b, pos + 1)?;
    }
    Some(pos)
}

/// The IPv4 address starting at `i`, if one does.
pub(super) fn ipv4_at(text: &str, i: usize) -> Option<Span> {
    let b = text.as_bytes();
    let end = dotted_quad(b, i)?;
    // Not glued to a word char, and not the start of a longer dotted number (1.2.3.4.5).
    if glued_right(text, end)
        || (b.get(end) == Some(&b'.') && number_at(text, end + 1))
        || prev_char(text, i) == Some('.')
    {
        return None;
    }
    if words_before(text, i, 1, 24)
        .first()
        .is_some_and(|w| VERSION_WORDS.contains(&w.as_str()))
    {
        return None;
    }
    Some(Span {
        start: i,
        end,
        kind: PiiKind::Ip,
    })
}

fn hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

/// The IPv6 address around the `:` at byte `colon`: `None` when the `:` cannot be part of one;
/// otherwise the address found (if any) and the byte up to which the caller need not look again.
pub(super) fn ipv6_around(text: &str, colon: usize) -> Option<(Option<Span>, usize)> {
    let b = text.as_bytes();
    let next = *b.get(colon + 1)?;
    let before_ok = colon > 0 && (hex(b[colon - 1]) || b[colon - 1] == b':');
    let ok = next == b':' || (hex(next) && before_ok);
    if !ok {
        return None;
    }
    let mut start = colon;
    while start > 0 && (hex(b[start - 1]) || b[start - 1] == b':') {
        start -= 1;
    }
    let mut scanned = colon;
    while scanned < b.len() && (hex(b[scanned]) || matches!(b[scanned], b':' | b'.')) {
        scanned += 1;
    }
    if glued_left(text, start) || matches!(prev_char(text, start), Some('.' | ':')) {
        return Some((None, scanned));
    }
    let found = ipv6_at(text, start)
        .filter(|&end| !glued_right(text, end))
        .map(|end| Span {
            start,
            end,
            kind: PiiKind::Ip,
        });
    Some((found, scanned))
}

/// Parses an IPv6 address at `s`; the end byte.
fn ipv6_at(text: &str, s: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut pos = s;
    let mut groups = 0usize;
    let mut compressed = false;
    let mut digit = false;
    if b[pos..].starts_with(b"::") {
        compressed = true;
        pos += 2;
    }
    loop {
        let g = pos;
        while pos < b.len() && pos - g < 5 && hex(b[pos]) {
            pos += 1;
        }
        let len = pos - g;
        if len == 0 {
            if compressed && b[..pos].ends_with(b"::") {
                break; // trailing "::" (e.g. "fe80::")
            }
            return None;
        }
        if len > 4 {
            return None;
        }
        // An IPv4 tail ("::ffff:192.168.1.10").
        if b.get(pos) == Some(&b'.')
            && b.get(pos + 1).is_some_and(u8::is_ascii_digit)
            && b[g..pos].iter().all(u8::is_ascii_digit)
        {
            if groups > 6 {
                return None;
            }
            pos = dotted_quad(b, g)?;
            groups += 2;
            digit = true;
            break;
        }
        digit |= b[g..pos].iter().any(u8::is_ascii_digit);
        groups += 1;
        if b[pos..].starts_with(b"::") {
            if compressed {
                return None;
            }
            compressed = true;
            pos += 2;
            if !b.get(pos).copied().is_some_and(hex) {
                break;
            }
        } else if b.get(pos) == Some(&b':') && b.get(pos + 1).copied().is_some_and(hex) {
            pos += 1;
        } else {
            break;
        }
    }
    let valid = if compressed { groups <= 7 } else { groups == 8 };
    // Letters-only groups ("add::dead") are words, not addresses; "::" alone is nothing.
    if !valid || !digit || groups == 0 {
        return None;
    }
    if b.get(pos)
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b':'))
        || (b.get(pos) == Some(&b'.') && number_at(text, pos + 1))
    {
        return None;
    }
    Some(pos)
}
