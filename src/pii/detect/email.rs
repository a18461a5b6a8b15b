//! Email addresses: `local@domain.tld`, found from their `@`.

use super::text::{glued_left, prev_char, word_end};
use crate::pii::{PiiKind, Span};

fn local_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

fn domain_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

/// The address around the `@` at byte `at`, if it is one.
///
/// Local part: ASCII letters, digits and `._%+-'`, not starting or ending with `.`, no `..`.
/// Domain: two or more labels of letters, digits and `-` (not at a label's ends), the last one
/// letters only (2–24). A trailing `.` is the sentence's. The address must not be glued to a
/// word char on either side; a domain whose last label is not a TLD (`x.fr0612`) is no address
/// at all (rather than a shorter one that would leave its tail to other detectors).
pub(super) fn at(text: &str, at: usize) -> Option<Span> {
    let b = text.as_bytes();
    let mut start = at;
    while start > 0 && local_byte(b[start - 1]) {
        start -= 1;
    }
    // Quotes and dots around the address are punctuation, not part of it.
    while start < at && matches!(b[start], b'.' | b'\'') {
        start += 1;
    }
    let local = &b[start..at];
    if local.is_empty()
        || local.len() > 64
        || local.ends_with(b".")
        || local.windows(2).any(|w| w == b"..")
    {
        return None;
    }
    if glued_left(text, start) || prev_char(text, start) == Some('@') {
        return None;
    }
    let mut end = at + 1;
    while end < b.len() && domain_byte(b[end]) {
        end += 1;
    }
    while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = &text[at + 1..end];
    if domain.len() > 253 || !word_end(text, end) || text[end..].starts_with('@') {
        return None;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || l.len() > 63 || l.starts_with('-') || l.ends_with('-'))
    {
        return None;
    }
    let tld = labels[labels.len() - 1];
    if !(2..=24).contains(&tld.len()) || !tld.bytes().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some(Span {
        start,
        end,
        kind: PiiKind::Email,
    })
}
