//! Dates of birth: a date right after a birth keyword ("born on", "DOB:", "date of birth",
//! "birthday", "né(e) le", "date de naissance", "DDN"). The span is the date alone; any other
//! date ("delivered on 12/03/2024", "le 3 mars") is not personal data.

use super::text::{glued_right, Lowered, Word};
use crate::pii::{PiiKind, Span};

/// Words between a birth keyword and its date ("born **on**", "date of birth **is the**",
/// "née **le**", "né(**e**) le").
const FILLERS: &[&str] = &["on", "is", "was", "the", "le", "est", "e", "my", "of"];

/// Month names and abbreviations, EN and FR, lower-case.
const MONTHS: &[(&str, u8)] = &[
    ("january", 1),
    ("jan", 1),
    ("janvier", 1),
    ("janv", 1),
    ("february", 2),
    ("feb", 2),
    ("février", 2),
    ("fevrier", 2),
    ("févr", 2),
    ("fevr", 2),
    ("fév", 2),
    ("fev", 2),
    ("march", 3),
    ("mar", 3),
    ("mars", 3),
    ("april", 4),
    ("apr", 4),
    ("avril", 4),
    ("avr", 4),
    ("may", 5),
    ("mai", 5),
    ("june", 6),
    ("jun", 6),
    ("juin", 6),
    ("july", 7),
    ("jul", 7),
    ("juillet", 7),
    ("juil", 7),
    ("august", 8),
    ("aug", 8),
    ("août", 8),
    ("aout", 8),
    ("september", 9),
    ("sep", 9),
    ("sept", 9),
    ("septembre", 9),
    ("october", 10),
    ("oct", 10),
    ("octobre", 10),
    ("november", 11),
    ("nov", 11),
    ("novembre", 11),
    ("december", 12),
    ("dec", 12),
    ("décembre", 12),
    ("decembre", 12),
    ("déc", 12),
];

/// Where a birth keyword ends, if word `k` is (the last word of) one; and whether a date without
/// a year counts ("my birthday is March 3").
fn trigger(text: &str, words: &[Word], low: &Lowered, k: usize) -> Option<(usize, bool)> {
    let w = words[k];
    let end = w.end;
    if w.inert {
        return None;
    }
    match low.get(k) {
        "born" | "dob" | "birthdate" | "date-of-birth" | "ddn" | "naissance" | "né" | "née"
        | "nés" | "nées" => Some((end, false)),
        "birthday" | "birth-day" => Some((end, true)),
        "birth" if low.back(k, 1) == "of" && low.back(k, 2) == "date" => Some((end, false)),
        "birth" if low.get(k + 1) == "date" => Some((words[k + 1].end, false)),
        // D.O.B.
        "d" => {
            let rest = &text.as_bytes()[end..];
            let dob = rest.len() >= 4 && rest[..4].eq_ignore_ascii_case(b".o.b");
            dob.then_some((end + 4, false))
        }
        _ => None,
    }
}

/// Appends a date-of-birth span for every date that follows a birth keyword.
pub(super) fn find_dob(text: &str, words: &[Word], low: &Lowered, out: &mut Vec<Span>) {
    for k in 0..words.len() {
        let Some((mut pos, no_year)) = trigger(text, words, low, k) else {
            continue;
        };
        // Skip punctuation and up to three filler words.
        let mut fillers = 0;
        loop {
            let rest = &text[pos..];
            let trimmed = rest.trim_start_matches(|c: char| {
                c.is_whitespace() || matches!(c, ':' | '-' | '–' | '=' | ',' | '(' | ')' | '.')
            });
            pos += rest.len() - trimmed.len();
            let word: String = trimmed
                .chars()
                .take_while(|c| c.is_alphabetic())
                .take(8)
                .collect::<String>()
                .to_lowercase();
            // Fillers are ASCII, so a match has the same length in `trimmed`.
            let is_filler = fillers < 3
                && FILLERS.contains(&word.as_str())
                && trimmed.is_char_boundary(word.len())
                && !trimmed[word.len()..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphanumeric);
            if is_filler {
                pos += word.len();
                fillers += 1;
                continue;
            }
            break;
        }
        if let Some(end) = parse_date(text, pos, no_year) {
            out.push(Span {
                start: pos,
                end,
                kind: PiiKind::Dob,
            });
        }
    }
}

/// Reads 1..=`max` ASCII digits at `pos`: (value, end, count).
fn digits(b: &[u8], pos: usize, max: usize) -> Option<(u32, usize, usize)> {
    let mut e = pos;
    let mut v = 0u32;
    while e < b.len() && b[e].is_ascii_digit() && e - pos < max {
        v = v * 10 + u32::from(b[e] - b'0');
        e += 1;
    }
    if e == pos || b.get(e).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some((v, e, e - pos))
}

fn year_ok(y: u32, count: usize) -> bool {
    count == 2 || (count == 4 && (1900..=2099).contains(&y))
}

/// The end of the date at `pos`, if one starts there: `12/03/1985`, `12.03.85`, `1985-03-12`,
/// `12 March 1985`, `3rd of March 1985`, `March 3, 1985`, `1er mars 1985` (`no_year`: the year
/// may be missing).
pub(super) fn parse_date(text: &str, pos: usize, no_year: bool) -> Option<usize> {
    let b = text.as_bytes();
    let end = if b.get(pos).is_some_and(u8::is_ascii_digit) {
        numeric(b, pos, no_year).or_else(|| day_month_year(text, pos, no_year))?
    } else {
        month_day_year(text, pos, no_year)?
    };
    // Not glued to a word char.
    if glued_right(text, end) {
        return None;
    }
    Some(end)
}

fn numeric(b: &[u8], pos: usize, no_year: bool) -> Option<usize> {
    let (a, e1, n1) = digits(b, pos, 4)?;
    let sep = *b.get(e1)?;
    if !matches!(sep, b'/' | b'.' | b'-') {
        return None;
    }
    let (m, e2, _) = digits(b, e1 + 1, 2)?;
    if n1 == 4 {
        // ISO: year-month-day.
        if b.get(e2) != Some(&sep) || !year_ok(a, 4) {
            return None;
        }
        let (d, e3, _) = digits(b, e2 + 1, 2)?;
        return ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some(e3);
    }
    if n1 > 2 {
        return None;
    }
    let day_month = (1..=31).contains(&a) && (1..=12).contains(&m);
    let month_day = (1..=12).contains(&a) && (1..=31).contains(&m);
    if !(day_month || month_day) {
        return None;
    }
    if b.get(e2) == Some(&sep) {
        let (y, e3, n3) = digits(b, e2 + 1, 4)?;
        return year_ok(y, n3).then_some(e3);
    }
    no_year.then_some(e2)
}

/// A month name at `pos` (optionally abbreviated with a dot): (month, end).
fn month(text: &str, pos: usize) -> Option<(u8, usize)> {
    let word: String = text[pos..]
        .chars()
        .take_while(|c| c.is_alphabetic())
        .collect();
    let mut end = pos + word.len();
    let lower = word.to_lowercase();
    let m = MONTHS.iter().find(|(name, _)| *name == lower)?.1;
    if text[end..].starts_with('.') && lower.len() <= 5 {
        end += 1;
    }
    Some((m, end))
}

/// Spaces (at least one) from `pos`: the end, or `None` when there are none.
fn spaces(text: &str, pos: usize) -> Option<usize> {
    let rest = &text[pos..];
    let t = rest.trim_start_matches([' ', '\u{a0}', '\u{202f}']);
    (t.len() < rest.len()).then_some(pos + rest.len() - t.len())
}

/// A day number with an optional ordinal suffix (`3`, `3rd`, `1er`, `2e`): (day, end).
fn day(text: &str, pos: usize) -> Option<(u32, usize)> {
    let b = text.as_bytes();
    let (d, mut e, _) = digits(b, pos, 2)?;
    if !(1..=31).contains(&d) {
        return None;
    }
    for suffix in ["st", "nd", "rd", "th", "er", "ème", "e"] {
        if text[e..].starts_with(suffix) {
            e += suffix.len();
            break;
        }
    }
    Some((d, e))
}

/// A four-digit year after optional `,` and spaces: its end.
fn year_after(text: &str, pos: usize) -> Option<usize> {
    let mut p = pos;
    if text[p..].starts_with(',') {
        p += 1;
    }
    let p = spaces(text, p)?;
    let (y, e, n) = digits(text.as_bytes(), p, 4)?;
    (n == 4 && year_ok(y, 4)).then_some(e)
}

fn day_month_year(text: &str, pos: usize, no_year: bool) -> Option<usize> {
    let (_, e) = day(text, pos)?;
    let mut p = spaces(text, e)?;
    if text[p..].starts_with("of ") {
        p = spaces(text, p + 2)?;
    }
    let (_, e) = month(text, p)?;
    year_after(text, e).or(no_year.then_some(e))
}

fn month_day_year(text: &str, pos: usize, no_year: bool) -> Option<usize> {
    let (_, e) = month(text, pos)?;
    let p = spaces(text, e)?;
    let (_, e) = day(text, p)?;
    year_after(text, e).or(no_year.then_some(e))
}
