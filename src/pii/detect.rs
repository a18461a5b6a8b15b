//! PII detectors: where is the personal data in this text?
//!
//! [`detect`] returns validated spans of eight kinds ([`PiiKind`]) in English and French text.
//! Two families of detectors run:
//!
//! * **Structured** values are found by cheap triggers in one pass over the bytes, then parsed
//!   and *validated*: an `@` starts an email; a digit, `+` or `(` at the start of a number starts
//!   the phone, card, NIR and IPv4 parsers; a `:` next to hex digits the IPv6 parser; two letters
//!   and two digits at a word start the IBAN parser. Cards must pass Luhn and have a card-network
//!   prefix, IBANs the country's length and mod-97, NIRs the key `97 − (n mod 97)`, IPv4 octets
//!   must be ≤ 255 (and not follow "version", "v", "iOS", …), phones must fit a national or
//!   international numbering plan. A number that follows "order", "commande", "n°", "#",
//!   "tracking", … (`detect/numbers.rs`) is never a phone or card.
//! * **Context** detectors walk the words once: a date is a date of birth only after "born",
//!   "DOB", "date of birth", "né(e) le", "date de naissance", …; a name is a person after a title
//!   (M., Mme, Mr, Dr, …), after "my name is" / "je m'appelle", after "I'm" / "je suis" when it is
//!   a known first name, after a greeting or before a signature at the end of a line, or when it
//!   is a known first name (FR + EN list in `data/first_names.txt`) possibly followed by a family
//!   name.
//!
//! Percent-encoded text (`jean.dupont%40example.fr`, `%2B33612345678`) is decoded first (printable
//! ASCII escapes only) and spans are mapped back onto the original bytes, so a span covers the
//! encoded text.
//!
//! **Overlaps** are resolved by one rule: the longer candidate wins; at equal length the kind
//! with the stronger validation wins (IBAN, card, NIR, email, IP, phone, date of birth, person).
//! A longer span is almost always the more specific reading (an IBAN's digit groups are not a
//! card, an email's digits are not a phone).
//!
//! Placeholders (`<EMAIL>`, `<PERSON>`, …) are never detected and never make a neighbour a
//! detection: every detector requires a clean boundary on both sides and reads a placeholder as
//! a word, so what was glued to a span stays glued to its placeholder. Text with spans is then
//! read once more with the spans replaced by placeholders, and whatever a longer overlapping
//! candidate had hidden is added (`detect_plain`); so detecting on redacted text finds
//! nothing (property tests in `detect/tests.rs`, fuzz target `fuzz_pii`).
//!
//! Everything here is a pure function of the text. Cost: one pass over the bytes, one over the
//! words; a second round only for text that has spans.

pub mod allow;
mod checksum;
mod dates;
mod email;
mod iban;
mod ip;
mod numbers;
mod percent;
mod person;
mod phone;
mod text;

use std::collections::{BTreeMap, BTreeSet};

use super::{PiiKind, Span};

/// Every span of personal data in `text`, sorted by start, non-overlapping, on char boundaries.
///
/// Person names inside an allowed brand or place ([`allow`]: the built-in list plus the open
/// workspace's `privacy.allow_names`) are left alone.
pub fn detect(text: &str) -> Vec<Span> {
    allow::with_current(|names| detect_with(text, names))
}

/// [`detect`] with the given allowed names instead of the ones in force.
pub fn detect_with(text: &str, names: &allow::AllowNames) -> Vec<Span> {
    match percent::decode(text) {
        Some(decoded) => {
            let mut spans = detect_plain(&decoded.text, names);
            for s in &mut spans {
                s.start = decoded.original(s.start);
                s.end = decoded.original(s.end);
            }
            spans
        }
        None => detect_plain(text, names),
    }
}

/// Detection on text without percent escapes (or already decoded), to a fixpoint.
///
/// A candidate that loses an overlap can hide a shorter value next to it: in
/// `06 12 34 56 78.a@b.co` the phone wins over `78.a@b.co`, and `a@b.co` only shows once the
/// phone is a placeholder. So detection runs again on the text with every span replaced by its
/// placeholder, and what it finds there (never inside a placeholder: no detector reads `<` or
/// `>`) is added, until nothing new appears. By construction, detecting on redacted text then
/// finds nothing. Text without any span (most of it) is read once.
fn detect_plain(text: &str, names: &allow::AllowNames) -> Vec<Span> {
    let mut spans = detect_once(text, names);
    // Each round adds at least one span of at least one byte, so this ends; in practice it is
    // one round, rarely two.
    while !spans.is_empty() {
        let mut redacted = String::with_capacity(text.len());
        // (redacted start, original start, length) of each stretch of original text.
        let mut stretches = Vec::with_capacity(spans.len() + 1);
        let mut at = 0;
        for s in &spans {
            stretches.push((redacted.len(), at, s.start - at));
            redacted.push_str(&text[at..s.start]);
            redacted.push_str(s.kind.placeholder());
            at = s.end;
        }
        stretches.push((redacted.len(), at, text.len() - at));
        redacted.push_str(&text[at..]);
        let before = spans.len();
        for m in detect_once(&redacted, names) {
            // The stretch holding m (m never covers a placeholder's `<` or `>`).
            let k = stretches.partition_point(|&(r, _, _)| r <= m.start) - 1;
            let (r, o, len) = stretches[k];
            if m.end <= r + len {
                spans.push(Span {
                    start: o + (m.start - r),
                    end: o + (m.end - r),
                    kind: m.kind,
                });
            }
        }
        if spans.len() == before {
            break;
        }
        spans.sort_unstable();
    }
    spans
}

/// One round of detection: all candidates, overlaps resolved.
fn detect_once(text: &str, names: &allow::AllowNames) -> Vec<Span> {
    let mut candidates = Vec::new();
    let words = text::words(text);
    let lower = text::Lowered::new(text, &words);
    person::find(text, &words, &lower, &mut candidates);
    names.filter(text, &words, &lower, &mut candidates);
    dates::find_dob(text, &words, &lower, &mut candidates);
    structured(text, &mut candidates);
    resolve(candidates)
}

/// One pass over the bytes: each trigger byte hands over to its parser.
///
/// A number may not start right after another number and a lone separator ("FR76 3000", "1.5")
/// unless that number is a candidate itself ("06 12 34 56 78 07 11 22 33 44", a date of birth
/// then a phone): `ends` holds the ends of all candidates so far (context ones included, which is
/// why they run first), so a number is read the same whether its neighbour is still there or
/// already replaced by a placeholder.
fn structured(text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let mut ends: BTreeSet<usize> = out.iter().map(|s| s.end).collect();
    let mut i = 0;
    // The IPv6 parser backs up from a ':'; skip the other ':' of an address it already parsed.
    let mut ipv6_until = 0;
    while i < b.len() {
        match b[i] {
            b'0'..=b'9' | b'+' | b'(' => {
                // A number right after a detected one may follow a lone separator
                // ("06 12 34 56 78 07 11 22 33 44"), so starts see the candidates so far.
                if numbers::start_ok(text, i, &ends) {
                    let before = out.len();
                    numbers::find_at(text, i, out);
                    ends.extend(out[before..].iter().map(|s| s.end));
                }
                // The rest of a digit run cannot start a number; after a `(` the digits may
                // (a card or NIR in parentheses).
                let digit = b[i].is_ascii_digit();
                i += 1;
                while digit && i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                continue;
            }
            b'@' => {
                if let Some(s) = email::at(text, i) {
                    ends.insert(s.end);
                    out.push(s);
                }
            }
            b':' if i >= ipv6_until => {
                if let Some((s, scanned)) = ip::ipv6_around(text, i) {
                    ipv6_until = scanned;
                    if let Some(s) = s {
                        ends.insert(s.end);
                        out.push(s);
                    }
                }
            }
            c if c.is_ascii_alphabetic() => {
                let iban_shape = i + 3 < b.len()
                    && b[i + 1].is_ascii_alphabetic()
                    && b[i + 2].is_ascii_digit()
                    && b[i + 3].is_ascii_digit();
                if iban_shape && text::word_start(text, i) {
                    if let Some(s) = iban::at(text, i) {
                        ends.insert(s.end);
                        out.push(s);
                    }
                }
                // Skip the rest of the word: nothing structured starts inside one.
                i += 1;
                while i < b.len() && b[i].is_ascii_alphabetic() {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

/// Overlap rank: lower wins at equal length (the stronger the validation, the lower).
fn rank(kind: PiiKind) -> u8 {
    match kind {
        PiiKind::Iban => 0,
        PiiKind::Card => 1,
        PiiKind::Nir => 2,
        PiiKind::Email => 3,
        PiiKind::Ip => 4,
        PiiKind::Phone => 5,
        PiiKind::Dob => 6,
        PiiKind::Person => 7,
    }
}

/// Keeps a non-overlapping subset: longest first, then by [`rank`], then leftmost.
fn resolve(mut candidates: Vec<Span>) -> Vec<Span> {
    if candidates.len() <= 1 {
        return candidates;
    }
    candidates.sort_by_key(|s| (std::cmp::Reverse(s.end - s.start), rank(s.kind), s.start));
    let mut kept: BTreeMap<usize, Span> = BTreeMap::new();
    for c in candidates {
        let clash_before = kept
            .range(..c.end)
            .next_back()
            .is_some_and(|(_, k)| k.end > c.start);
        if !clash_before {
            kept.insert(c.start, c);
        }
    }
    kept.into_values().collect()
}

#[cfg(test)]
mod tests;
