//! Character-level helpers and the word list shared by the context detectors.

use crate::pii::PiiKind;

/// The char that ends just before byte `i` (a char boundary).
pub(super) fn prev_char(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

/// The char that starts at byte `i` (a char boundary).
pub(super) fn next_char(text: &str, i: usize) -> Option<char> {
    text[i..].chars().next()
}

/// A letter, digit or `_`: a char that glues onto a neighbouring token.
pub(super) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A placeholder (`<PHONE>`, …) ends at byte `i`.
fn placeholder_before(text: &str, i: usize) -> bool {
    let t = &text[..i];
    t.ends_with('>') && PiiKind::ALL.iter().any(|k| t.ends_with(k.placeholder()))
}

/// A placeholder starts at byte `i`.
fn placeholder_after(text: &str, i: usize) -> bool {
    let t = &text[i..];
    t.starts_with('<') && PiiKind::ALL.iter().any(|k| t.starts_with(k.placeholder()))
}

/// Something that glues onto a token ends at `i`: a word char, or a placeholder. A placeholder
/// counts as a word because the span it replaced did (spans start and end with letters or
/// digits), so what was glued to a span stays glued to its placeholder and is read the same.
pub(super) fn glued_left(text: &str, i: usize) -> bool {
    prev_char(text, i).is_some_and(is_word_char) || placeholder_before(text, i)
}

/// Something that glues onto a token starts at `i` (see [`glued_left`]).
pub(super) fn glued_right(text: &str, i: usize) -> bool {
    next_char(text, i).is_some_and(is_word_char) || placeholder_after(text, i)
}

/// A digit or a placeholder starts at byte `i`: what follows a separator there continues a
/// number (a placeholder may stand for one).
pub(super) fn number_at(text: &str, i: usize) -> bool {
    text.as_bytes().get(i).is_some_and(u8::is_ascii_digit) || placeholder_after(text, i)
}

/// A digit or a placeholder ends at byte `i` (see [`number_at`]).
pub(super) fn number_before(text: &str, i: usize) -> bool {
    (i > 0 && text.as_bytes()[i - 1].is_ascii_digit()) || placeholder_before(text, i)
}

/// `i` starts a token: nothing glued before it.
pub(super) fn word_start(text: &str, i: usize) -> bool {
    !glued_left(text, i)
}

/// `i` ends a token: nothing glued after it.
pub(super) fn word_end(text: &str, i: usize) -> bool {
    !glued_right(text, i)
}

/// A space inside a number or a name: plain, no-break (U+00A0) or narrow no-break (U+202F, the
/// French thousands separator).
pub(super) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{202f}')
}

/// The letters-only case shape of a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Case {
    /// Starts with a lower-case letter (`name`, `m'appelle`).
    Lower,
    /// Upper-case first letter and some lower-case after (`Dupont`, `McDonald`, `d'Artagnan`).
    Title,
    /// Two or more letters, all upper-case (`DUPONT`).
    Upper,
    /// One upper-case letter alone (`I`, `M`).
    Initial,
}

/// One word: letters with inner `-`, `'` or `’` (`Jean-Pierre`, `O'Brien`, `m'appelle`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Word {
    pub start: usize,
    pub end: usize,
    pub case: Case,
    /// Never a name or a keyword: written between `<` and `>` (a placeholder such as
    /// `<PERSON>`, or markup), or glued to a digit or `_` (`189Jean`, `Jean2`).
    pub inert: bool,
}

/// The char at byte `i` and its length (ASCII without decoding).
fn char_at(text: &str, i: usize) -> (char, usize) {
    let b = text.as_bytes()[i];
    if b < 0x80 {
        (b as char, 1)
    } else {
        let c = text[i..].chars().next().unwrap_or(' ');
        (c, c.len_utf8())
    }
}

fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        c.is_alphabetic()
    }
}

/// Every word of `text`, in order.
pub(super) fn words(text: &str) -> Vec<Word> {
    let len = text.len();
    let mut out = Vec::with_capacity(len / 6);
    let mut i = 0;
    while i < len {
        let (c, cl) = char_at(text, i);
        if !is_letter(c) {
            i += cl;
            continue;
        }
        let start = i;
        i += cl;
        let mut end = i;
        let mut upper = usize::from(c.is_uppercase());
        let mut lower = usize::from(c.is_lowercase());
        let first_upper = c.is_uppercase();
        // Upper-case letter right after an elided particle: `d'Artagnan` reads as a name.
        let mut elided_upper = false;
        while i < len {
            let (d, dl) = char_at(text, i);
            if is_letter(d) {
                upper += usize::from(d.is_uppercase());
                lower += usize::from(d.is_lowercase());
                i += dl;
                end = i;
            } else if matches!(d, '-' | '\'' | '’') {
                // Joiner only between two letters.
                let mut rest = text[i + dl..].chars();
                let after = rest.next();
                // A possessive "'s" is not part of the word: "Kevin's" is "Kevin" + "s".
                let possessive = d != '-'
                    && matches!(after, Some('s' | 'S'))
                    && !rest.next().is_some_and(char::is_alphabetic);
                if after.is_some_and(char::is_alphabetic) && !possessive {
                    let a = after.unwrap_or(' ');
                    if d != '-' && end - start <= 2 && a.is_uppercase() {
                        elided_upper = true;
                    }
                    i += dl;
                } else {
                    break;
                }
            } else {
                break;
            }
        }
        let case = if first_upper {
            if lower > 0 {
                Case::Title
            } else if upper >= 2 {
                Case::Upper
            } else {
                Case::Initial
            }
        } else if elided_upper {
            Case::Title
        } else {
            Case::Lower
        };
        let placeholder =
            text[..start].ends_with('<') && text[end..].starts_with('>') && case == Case::Upper;
        let glued = |c: Option<char>| c.is_some_and(|c| c.is_numeric() || c == '_');
        let inert = placeholder
            || glued(text[..start].chars().next_back())
            || glued(text[end..].chars().next())
            || placeholder_before(text, start)
            || placeholder_after(text, end)
            || joined_placeholder(text, start, end);
        out.push(Word {
            start,
            end,
            case,
            inert,
        });
    }
    out
}

/// A placeholder joined to the word `start..end` by `-`, `'` or `’` (`Jean-<IBAN>`): the span it
/// replaced was read as part of this word, so the word was no name and must not become one.
fn joined_placeholder(text: &str, start: usize, end: usize) -> bool {
    let joiner = |c: char| matches!(c, '-' | '\'' | '’');
    let after = text[end..]
        .chars()
        .next()
        .is_some_and(|c| joiner(c) && placeholder_after(text, end + c.len_utf8()));
    let before = text[..start]
        .chars()
        .next_back()
        .is_some_and(|c| joiner(c) && placeholder_before(text, start - c.len_utf8()));
    after || before
}

/// Lower-cases `s` into `buf` (reused across words), folding `’` to `'`.
pub(super) fn lower_into(buf: &mut String, s: &str) {
    buf.clear();
    for c in s.chars() {
        if c == '’' {
            buf.push('\'');
        } else if c.is_ascii() {
            buf.push(c.to_ascii_lowercase());
        } else {
            buf.extend(c.to_lowercase());
        }
    }
}

/// The last `n` words (lower-cased, ASCII letters, digits and a few marks) that end before byte
/// `i`, looking back at most `max` bytes; nearest first.
pub(super) fn words_before(text: &str, i: usize, n: usize, max: usize) -> Vec<String> {
    let mut from = i.saturating_sub(max);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let window = &text[from..i];
    window
        .split(|c: char| !(c.is_alphanumeric() || matches!(c, '#' | '°' | 'º' | '\'' | '’')))
        .filter(|w| !w.is_empty())
        .rev()
        .take(n)
        .map(|w| {
            let mut s = String::new();
            lower_into(&mut s, w);
            s
        })
        .collect()
}

/// The lower-cased form of every word (one buffer), for the context detectors' keyword checks.
pub(super) struct Lowered {
    buf: String,
    ranges: Vec<(usize, usize)>,
}

impl Lowered {
    /// Lower-cases each of `words` of `text`.
    pub fn new(text: &str, words: &[Word]) -> Lowered {
        let mut buf = String::with_capacity(text.len());
        let mut ranges = Vec::with_capacity(words.len());
        let mut tmp = String::new();
        for w in words {
            let word = &text[w.start..w.end];
            let s = buf.len();
            if word.is_ascii() {
                buf.push_str(word);
                if let Some(t) = buf.get_mut(s..) {
                    t.make_ascii_lowercase();
                }
            } else {
                lower_into(&mut tmp, word);
                buf.push_str(&tmp);
            }
            ranges.push((s, buf.len()));
        }
        Lowered { buf, ranges }
    }

    /// Word `k` lower-cased; `""` out of range (so callers can look around freely).
    pub fn get(&self, k: usize) -> &str {
        self.ranges.get(k).map_or("", |&(s, e)| &self.buf[s..e])
    }

    /// Word `k - back` lower-cased, `""` before the first word.
    pub fn back(&self, k: usize, back: usize) -> &str {
        k.checked_sub(back).map_or("", |j| self.get(j))
    }
}

/// Units and currencies after which a digit group is a quantity or a price.
const UNIT_WORDS: &[&str] = &[
    "€", "$", "£", "eur", "euro", "euros", "usd", "gbp", "chf", "dollars", "km", "kg", "g", "mg",
    "ml", "l", "mah", "mb", "gb", "go", "mo", "ko", "kb", "%", "pts", "points", "ms", "min", "h",
    "cm", "mm", "m",
];

/// A unit or currency right after byte `end` ("612 345 678 €", "2 500 mAh").
pub(super) fn before_unit(text: &str, end: usize) -> bool {
    let rest = text[end..].trim_start_matches(is_space);
    let word: String = rest
        .chars()
        .take_while(|c| c.is_alphabetic() || matches!(c, '€' | '$' | '£' | '%'))
        .take(8)
        .collect::<String>()
        .to_lowercase();
    if word.is_empty() {
        return false;
    }
    let first = word.chars().next().unwrap_or(' ');
    UNIT_WORDS.contains(&word.as_str()) || matches!(first, '€' | '$' | '£' | '%')
}
