//! Phone numbers: a run of digit groups read once, then checked against numbering plans.
//!
//! * International: `+` or `00`, a country code, then the national significant number with the
//!   country's length (`+33 6 12 34 56 78`, `+33 (0)6 …`, `0033 6 …`, `+1 (415) 555-0123`,
//!   `+44 20 7946 0958`, `+4915112345678`); unknown country codes need `+` and 8–15 digits (E.164).
//! * National with a trunk `0` (FR, BE, CH, NL, IT landlines, UK, DE): 9–12 digits starting
//!   `0[1-9]`, compact or in groups (`06 12 34 56 78`, `06.12.34.56.78`, `020 7946 0958`,
//!   `07700 900123`, `030/12345678`, `0470 12 34 56`, `02 123 45 67`).
//! * North American: `(415) 555-0123`, `415-555-0123`, `415.555.0123`, `1-415-555-0123`; area
//!   code and exchange start 2–9; never compact (ten bare digits are more often an order number).
//! * Spanish and Italian mobiles without a prefix: `612 34 56 78`, `612 345 678`, `333 1234567`.
//!
//! Separators are one space (also no-break), `.`, `-` or `/` (after the first group only), the
//! same one throughout (after a parenthesised group anything goes). A number followed by a unit or
//! a currency is a quantity; one after "order", "n°", "#", … is a reference (see
//! [`super::numbers`]).

use super::text::{before_unit, glued_right, is_space, next_char, number_at};
use crate::pii::{PiiKind, Span};

/// One group of digits.
#[derive(Clone, Copy, Debug)]
pub(super) struct Group {
    /// First digit.
    pub start: usize,
    /// After the last digit.
    pub end: usize,
    /// Written in parentheses: `close` is after the `)`.
    pub paren: bool,
    /// After the group, `)` included.
    pub close: usize,
    /// The separator before this group (`None` for the first and right after a `)`).
    pub sep: Option<char>,
}

/// Digit groups read from one start: `+33 (0)6 12 34 56 78` is `+`, `33`, `(0)`, `6`, `12`, ….
#[derive(Debug)]
pub(super) struct GroupRun {
    /// Where the run starts (its `+` or `(` included).
    pub start: usize,
    /// Starts with `+`.
    pub plus: bool,
    /// The groups, in order.
    pub groups: Vec<Group>,
}

impl GroupRun {
    /// Reads the groups from `i` (a digit, `+` or `(`).
    pub fn parse(text: &str, i: usize) -> GroupRun {
        let b = text.as_bytes();
        let mut plus = b[i] == b'+';
        let mut pos = i + usize::from(plus);
        let mut groups: Vec<Group> = Vec::new();
        let mut sep = None;
        let mut total = 0;
        // "(+44) 7700 900123": the country code in parentheses.
        if b[i] == b'(' && b.get(i + 1) == Some(&b'+') {
            let ds = i + 2;
            let mut e = ds;
            while e < b.len() && e - ds < 4 && b[e].is_ascii_digit() {
                e += 1;
            }
            if (1..=3).contains(&(e - ds)) && b.get(e) == Some(&b')') {
                plus = true;
                total = e - ds;
                groups.push(Group {
                    start: ds,
                    end: e,
                    paren: false,
                    close: e + 1,
                    sep: None,
                });
                pos = e + 1;
                match next_char(text, pos) {
                    Some(s) if is_space(s) || s == '-' => {
                        sep = Some(s);
                        pos += s.len_utf8();
                    }
                    _ => {}
                }
            }
        }
        while groups.len() < 12 && total <= 24 {
            let group = if b.get(pos) == Some(&b'(') {
                let ds = pos + 1;
                let mut e = ds;
                while e < b.len() && e - ds <= 5 && b[e].is_ascii_digit() {
                    e += 1;
                }
                if e == ds || e - ds > 5 || b.get(e) != Some(&b')') {
                    break;
                }
                Group {
                    start: ds,
                    end: e,
                    paren: true,
                    close: e + 1,
                    sep,
                }
            } else if b.get(pos).is_some_and(u8::is_ascii_digit) {
                let mut e = pos;
                while e < b.len() && b[e].is_ascii_digit() {
                    e += 1;
                }
                Group {
                    start: pos,
                    end: e,
                    paren: false,
                    close: e,
                    sep,
                }
            } else {
                break;
            };
            if groups.is_empty() && b[i] == b'(' && b.get(i + 1) == Some(&b'+') {
                // "(+" that did not read as a country code.
                break;
            }
            total += group.end - group.start;
            pos = group.close;
            groups.push(group);
            match next_char(text, pos) {
                Some(s) if is_space(s) || matches!(s, '.' | '-' | '/') => {
                    let after = pos + s.len_utf8();
                    let digit_next = b.get(after).is_some_and(u8::is_ascii_digit)
                        || (b.get(after) == Some(&b'(')
                            && b.get(after + 1).is_some_and(u8::is_ascii_digit));
                    if !digit_next {
                        break;
                    }
                    sep = Some(s);
                    pos = after;
                }
                Some(d) if d.is_ascii_digit() && group.paren => sep = None,
                _ => break,
            }
        }
        GroupRun {
            start: i,
            plus,
            groups,
        }
    }

    /// The run's last group is not glued to what follows (a word char, or `.5`, `-12`, `,50`).
    pub fn clean_end(&self, text: &str) -> bool {
        let Some(last) = self.groups.last() else {
            return false;
        };
        let b = text.as_bytes();
        let e = last.close;
        if glued_right(text, e) {
            return false;
        }
        !(matches!(b.get(e), Some(b'.' | b'-' | b'/' | b',' | b'(' | b'+'))
            && number_at(text, e + 1))
    }

    fn digits(&self, text: &str, upto: usize) -> Vec<u8> {
        let b = text.as_bytes();
        let mut d = Vec::with_capacity(24);
        for g in &self.groups[..=upto] {
            d.extend_from_slice(&b[g.start..g.end]);
        }
        d
    }
}

/// The phone among the prefixes of `run` (longest first) that ends cleanly: at the run's clean
/// end, or before a space after which more digits follow ("06 12 34 56 78 90" → the first ten).
pub(super) fn phone(text: &str, run: &GroupRun) -> Option<Span> {
    let n = run.groups.len();
    for k in (0..n).rev() {
        let boundary = if k + 1 == n {
            run.clean_end(text)
        } else {
            run.groups[k + 1].sep.is_some_and(is_space)
        };
        if !boundary || !valid(text, run, k) {
            continue;
        }
        let end = run.groups[k].close;
        if before_unit(text, end) {
            return None;
        }
        return Some(Span {
            start: run.start,
            end,
            kind: PiiKind::Phone,
        });
    }
    None
}

/// Country code, national number length range, and whether the country dials a trunk `0` at
/// home that is dropped after the code (so `+33 06…` is a common miswriting of `+33 6…`).
const COUNTRIES: &[(&str, usize, usize, bool)] = &[
    ("1", 10, 10, false),
    ("7", 10, 10, true),
    ("20", 9, 10, true),
    ("27", 9, 9, true),
    ("30", 10, 10, false),
    ("31", 9, 9, true),
    ("32", 8, 9, true),
    ("33", 9, 9, true),
    ("34", 9, 9, false),
    ("36", 8, 9, true),
    ("39", 6, 11, false),
    ("40", 9, 9, true),
    ("41", 9, 9, true),
    ("43", 4, 13, true),
    ("44", 9, 10, true),
    ("45", 8, 8, false),
    ("46", 7, 13, true),
    ("47", 8, 8, false),
    ("48", 9, 9, false),
    ("49", 6, 13, true),
    ("52", 10, 10, false),
    ("55", 10, 11, false),
    ("61", 9, 9, true),
    ("64", 8, 10, true),
    ("65", 8, 8, false),
    ("81", 9, 10, true),
    ("82", 8, 10, true),
    ("86", 10, 11, true),
    ("90", 10, 10, true),
    ("91", 10, 10, true),
    ("212", 9, 9, true),
    ("213", 8, 9, true),
    ("216", 8, 8, false),
    ("221", 9, 9, false),
    ("225", 10, 10, false),
    ("237", 9, 9, false),
    ("262", 9, 9, true),
    ("351", 9, 9, false),
    ("352", 4, 11, false),
    ("353", 7, 9, true),
    ("420", 9, 9, false),
    ("590", 9, 9, true),
    ("594", 9, 9, true),
    ("596", 9, 9, true),
    ("687", 6, 6, false),
    ("689", 8, 8, false),
    ("852", 8, 8, false),
    ("971", 8, 9, true),
    ("972", 8, 9, true),
];

/// Separators of a national number: one kind (spaces count as one), `/` only after the first
/// group, anything right after a parenthesised group.
fn separators_consistent(groups: &[Group]) -> bool {
    let mut main: Option<char> = None;
    for (idx, g) in groups.iter().enumerate().skip(1) {
        let after_paren = groups[idx - 1].paren;
        match g.sep {
            None => {
                if !after_paren {
                    return false;
                }
            }
            Some(s) if after_paren && is_space(s) => {}
            Some('/') => {
                if idx != 1 {
                    return false;
                }
            }
            Some(s) => {
                let s = if is_space(s) { ' ' } else { s };
                if main.is_some_and(|m| m != s) {
                    return false;
                }
                main = Some(s);
            }
        }
    }
    true
}

fn valid(text: &str, run: &GroupRun, k: usize) -> bool {
    let groups = &run.groups[..=k];
    let digits = run.digits(text, k);
    if digits.len() < 6 || digits.len() > 17 {
        return false;
    }
    let zz = !run.plus
        && !groups[0].paren
        && digits.starts_with(b"00")
        && digits.get(2).is_some_and(|&d| d != b'0');
    if run.plus || zz {
        international(text, groups, run.plus)
    } else {
        national(&digits, groups)
    }
}

fn international(text: &str, groups: &[Group], plus: bool) -> bool {
    let b = text.as_bytes();
    // Digits after the `+` / `00`, without a "(0)" trunk group, which must follow the code.
    let mut d: Vec<u8> = Vec::with_capacity(20);
    let mut trunk_after: Option<usize> = None;
    let mut skip = if plus { 0 } else { 2 };
    for g in groups {
        let gd = &b[g.start..g.end];
        if g.paren && gd == b"0" {
            if trunk_after.is_some() {
                return false;
            }
            trunk_after = Some(d.len());
            continue;
        }
        if g.paren && d.is_empty() {
            return false;
        }
        let from = skip.min(gd.len());
        skip -= from;
        d.extend_from_slice(&gd[from..]);
    }
    if !(8..=15).contains(&d.len()) {
        return false;
    }
    let known = COUNTRIES
        .iter()
        .find(|(cc, ..)| d.starts_with(cc.as_bytes()));
    let Some(&(cc, min, max, trunk_country)) = known else {
        return plus && trunk_after.is_none();
    };
    if trunk_after.is_some_and(|t| t != cc.len()) {
        return false;
    }
    let nsn = &d[cc.len()..];
    if cc == "1" {
        return nsn.len() == 10 && nsn[0] >= b'2' && nsn[3] >= b'2';
    }
    // Italy keeps its leading 0 after the code; elsewhere the national number starts 1-9.
    let len_ok =
        |n: &[u8]| !n.is_empty() && (min..=max).contains(&n.len()) && (n[0] != b'0' || cc == "39");
    if len_ok(nsn) {
        return true;
    }
    // "+33 06 12 34 56 78": the home trunk 0 written after the code.
    trunk_country && trunk_after.is_none() && nsn.first() == Some(&b'0') && len_ok(&nsn[1..])
}

fn national(digits: &[u8], groups: &[Group]) -> bool {
    if groups.iter().skip(1).any(|g| g.paren) || !separators_consistent(groups) {
        return false;
    }
    let sizes: Vec<usize> = groups.iter().map(|g| g.end - g.start).collect();
    let n = digits.len();
    let g = groups.len();
    if digits[0] == b'0' {
        if !(b'1'..=b'9').contains(&digits[1]) || (groups[0].paren && sizes[0] < 2) {
            return false;
        }
        let all_at_least = |m: usize| sizes.iter().all(|&s| s >= m);
        return match n {
            9 => g >= 2 && (2..=4).contains(&sizes[0]) && all_at_least(2),
            10 => g == 1 || all_at_least(2),
            11 => g == 1 || (g <= 4 && all_at_least(3)),
            12 => {
                (g == 1
                    && [b"015", b"016", b"017"]
                        .iter()
                        .any(|p| digits.starts_with(*p)))
                    || ((2..=4).contains(&g) && (3..=5).contains(&sizes[0]) && all_at_least(2))
            }
            _ => false,
        };
    }
    if groups.iter().any(|g| g.sep == Some('/')) {
        return false;
    }
    // North American: [1-]NXX-NXX-XXXX, area code possibly in parentheses.
    let (d10, s10) = if n == 11 && digits[0] == b'1' && sizes[0] == 1 && !groups[0].paren {
        (&digits[1..], &sizes[1..])
    } else {
        (digits, &sizes[..])
    };
    if d10.len() == 10 && s10 == [3, 3, 4] && d10[0] >= b'2' && d10[3] >= b'2' {
        return true;
    }
    if groups[0].paren {
        return false;
    }
    // Spanish numbers (no trunk 0) and Italian mobiles (3xx), in their usual groupings.
    match (n, digits[0]) {
        (9, b'6'..=b'9') => matches!(sizes.as_slice(), [3, 3, 3] | [3, 2, 2, 2] | [2, 3, 2, 2]),
        (10, b'3') => matches!(sizes.as_slice(), [3, 7] | [3, 3, 4] | [3, 4, 3]),
        _ => false,
    }
}
