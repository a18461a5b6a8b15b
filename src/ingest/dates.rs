//! Dates as customers' exports spell them.
//!
//! Survey tools, CRMs and spreadsheets write dates in every form: ISO 8601 with or without a
//! time or an offset, French `15/03/2024 14:30`, American `03/15/2024`, `March 1, 2024`,
//! `1er mars 2024`, Unix epochs. [`parse_date`] recognises them in one pass over the value with a
//! small hand-written scanner rather than by trying a list of strftime formats in turn: it is
//! faster on 100k rows, and it keeps the one real ambiguity explicit.
//!
//! That ambiguity is the order of day and month in numeric dates (`03/04/2024`). It cannot be
//! settled per value, so the caller decides it once per file with [`evidence`] over the whole
//! column and passes the [`DateOrder`] in. The rule lives in `record`: a first part over 12
//! proves day/month, a second part over 12 proves month/day, and a file where nothing proves
//! either is read day/month with a warning.
//!
//! Offsets are applied (the result is UTC); values without one are taken as they are. A date
//! alone is midnight. Two-digit years pivot at 70 (`69` → 2069, `70` → 1970), as POSIX does.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use std::fmt;

/// Order of day and month in numeric dates such as `03/04/2024`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DateOrder {
    /// `dd/mm/yyyy`, as in most of the world.
    DayFirst,
    /// `mm/dd/yyyy`, as in the United States.
    MonthFirst,
}

impl DateOrder {
    /// A `--date-format` that forces this order for slash dates.
    pub fn suggested_format(self) -> &'static str {
        match self {
            DateOrder::DayFirst => "%d/%m/%Y",
            DateOrder::MonthFirst => "%m/%d/%Y",
        }
    }
}

impl fmt::Display for DateOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DateOrder::DayFirst => "day/month (dd/mm/yyyy)",
            DateOrder::MonthFirst => "month/day (mm/dd/yyyy)",
        })
    }
}

/// What one value says about the day/month order of its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// Not a numeric `a/b/y` date, or one that says nothing (`05/05/2024`, `13/13/2024`).
    None,
    /// Both parts are 12 or less and differ: the order matters and this value cannot tell.
    Ambiguous,
    /// Proves its order: a first part over 12 proves day/month, a second part over 12 month/day.
    Proves(DateOrder),
}

/// What `s` says about the day/month order (see [`Evidence`]).
pub fn evidence(s: &str) -> Evidence {
    let Some((a, b)) = numeric_parts(s.trim()) else {
        return Evidence::None;
    };
    match (a > 12, b > 12) {
        (true, false) => Evidence::Proves(DateOrder::DayFirst),
        (false, true) => Evidence::Proves(DateOrder::MonthFirst),
        (false, false) if a != b => Evidence::Ambiguous,
        _ => Evidence::None,
    }
}

/// Parses a date in any of the recognised forms; numeric `a/b/y` dates use `order`.
///
/// Recognised: ISO 8601 (`2024-03-01`, `2024-03-01T10:00`, `2024-03-01 10:00:05.123+02:00`,
/// `...Z`, also `2024/03/01`), `yyyymmdd`, numeric `dd/mm/yyyy`, `dd-mm-yyyy`, `dd.mm.yyyy` (or
/// month first, per `order`; two-digit years too) with an optional `hh:mm[:ss]` and AM/PM,
/// month names in English and French (`March 1, 2024`, `1 Mar 2024`, `1er mars 2024`,
/// `Fri, 01 Mar 2024 10:00:00 +0000`), Unix epoch seconds (10 digits) and milliseconds (13).
/// Returns UTC when the value has an offset.
pub fn parse_date(s: &str, order: DateOrder) -> Option<NaiveDateTime> {
    let s = s.trim();
    let first = *s.as_bytes().first()?;
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return parse_digits(s);
    }
    if first.is_ascii_digit() {
        if let Some(d) = parse_iso(s) {
            return Some(d);
        }
        if let Some(d) = parse_numeric(s, order) {
            return Some(d);
        }
    }
    parse_named(s)
}

/// Parses with a user-given strftime format: with an offset (converted to UTC), as a date and
/// time, or as a date alone (midnight).
pub fn parse_with_format(s: &str, format: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    DateTime::parse_from_str(s, format)
        .map(|d| d.naive_utc())
        .or_else(|_| NaiveDateTime::parse_from_str(s, format))
        .or_else(|_| NaiveDate::parse_from_str(s, format).map(|d| d.and_time(NaiveTime::MIN)))
        .ok()
}

/// Checks that `format` is a valid strftime format.
pub fn check_format(format: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    if format.trim().is_empty() {
        return Err("the format is empty".to_string());
    }
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return Err(
            "not a valid strftime format (see chrono's strftime specifiers, e.g. \
                    '%d/%m/%Y %H:%M')"
                .to_string(),
        );
    }
    Ok(())
}

/// The shape of a value, to group values that fail the same way: each run of digits becomes `9`,
/// each run of letters `a`, anything else stays. `22-02-2015 5.06` and `24-02-2015 11.35` share
/// the shape `9-9-9 9.9`.
pub fn shape(s: &str) -> String {
    let mut out = String::new();
    let mut last = None;
    for c in s.trim().chars() {
        let class = if c.is_ascii_digit() {
            '9'
        } else if c.is_alphabetic() {
            'a'
        } else {
            c
        };
        if (class == '9' || class == 'a') && last == Some(class) {
            continue;
        }
        out.push(class);
        last = Some(class);
    }
    out
}

/// A strftime format (for `--date-format`) that reads every one of `samples`, values of one
/// numeric shape such as `22-02-2015 5.06` (→ `%d-%m-%Y %H.%M`). The format is built from the
/// first sample's own separators; of the day/month orders that read them all, `order` is
/// preferred. `None` when no candidate reads every sample.
pub fn suggest_format(samples: &[&str], order: DateOrder) -> Option<String> {
    let first = samples.first()?.trim();
    let tokens = tokenize(first);
    // A numeric date first: digits, separator, digits, separator, digits.
    let [Token::Digits(l1), Token::Other(s1), Token::Digits(_), Token::Other(s2), Token::Digits(l3), rest @ ..] =
        &tokens[..]
    else {
        return None;
    };
    let (day_month, month_day) = (["%d", "%m"], ["%m", "%d"]);
    let preferred = match order {
        DateOrder::DayFirst => [day_month, month_day],
        DateOrder::MonthFirst => [month_day, day_month],
    };
    let mut dates: Vec<[&str; 3]> = Vec::new();
    match (*l1, *l3) {
        (4, _) => {
            dates.push(["%Y", "%m", "%d"]);
            dates.push(["%Y", "%d", "%m"]);
        }
        (_, 4) | (_, 2) => {
            let year = if *l3 == 4 { "%Y" } else { "%y" };
            for [a, b] in preferred {
                dates.push([a, b, year]);
            }
            if *l3 == 2 && *l1 == 2 {
                dates.push(["%y", "%m", "%d"]);
            }
        }
        _ => return None,
    }
    let time = time_format(rest)?;
    let escape = |s: &str| s.replace('%', "%%");
    dates.into_iter().find_map(|[a, b, c]| {
        let format = format!("{a}{}{b}{}{c}{time}", escape(s1), escape(s2));
        samples
            .iter()
            .all(|s| parse_with_format(s, &format).is_some())
            .then_some(format)
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Digits(usize),
    Letters(&'a str),
    Other(&'a str),
}

fn tokenize(s: &str) -> Vec<Token<'_>> {
    let class = |c: char| {
        if c.is_ascii_digit() {
            0
        } else if c.is_alphabetic() {
            1
        } else {
            2
        }
    };
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        let next = chars.peek().copied();
        if next.is_some_and(|(_, n)| class(n) == class(c)) {
            continue;
        }
        let end = next.map_or(s.len(), |(i, _)| i);
        let text = &s[start..end];
        tokens.push(match class(c) {
            0 => Token::Digits(text.len()),
            1 => Token::Letters(text),
            _ => Token::Other(text),
        });
        start = end;
    }
    tokens
}

/// The time part of a suggested format: digit runs are hours, minutes, seconds in turn (`%I`
/// when an AM/PM marker follows), letters and separators are kept as they are.
fn time_format(tokens: &[Token<'_>]) -> Option<String> {
    let twelve_hour = tokens.iter().any(|t| {
        matches!(t, Token::Letters(w) if w.eq_ignore_ascii_case("am") || w.eq_ignore_ascii_case("pm"))
    });
    let mut out = String::new();
    let mut fields = if twelve_hour {
        ["%I", "%M", "%S"].iter()
    } else {
        ["%H", "%M", "%S"].iter()
    };
    for t in tokens {
        match t {
            Token::Digits(_) => out.push_str(fields.next()?),
            Token::Letters(w) if w.eq_ignore_ascii_case("am") || w.eq_ignore_ascii_case("pm") => {
                out.push_str("%p")
            }
            Token::Letters(w) | Token::Other(w) => out.push_str(&w.replace('%', "%%")),
        }
    }
    Some(out)
}

/// Up to `max` ASCII digits at the start of `s`: (value, count), or `None` if there are none.
fn take_digits(s: &str, max: usize) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    let mut n = 0;
    for b in s.bytes().take(max) {
        if !b.is_ascii_digit() {
            break;
        }
        value = value * 10 + u32::from(b - b'0');
        n += 1;
    }
    (n > 0).then_some((value, n))
}

fn next_is_digit(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

fn pivot_year(yy: u32) -> i32 {
    if yy < 70 {
        2000 + yy as i32
    } else {
        1900 + yy as i32
    }
}

/// All-digit values: `yyyymmdd`, epoch seconds (10 digits), epoch milliseconds (13 digits).
fn parse_digits(s: &str) -> Option<NaiveDateTime> {
    match s.len() {
        8 => {
            let y: i32 = s[..4].parse().ok()?;
            let m: u32 = s[4..6].parse().ok()?;
            let d: u32 = s[6..].parse().ok()?;
            Some(NaiveDate::from_ymd_opt(y, m, d)?.and_time(NaiveTime::MIN))
        }
        10 => Some(DateTime::from_timestamp(s.parse().ok()?, 0)?.naive_utc()),
        13 => Some(DateTime::from_timestamp_millis(s.parse().ok()?)?.naive_utc()),
        _ => None,
    }
}

/// `yyyy-mm-dd` (or `/`, `.`) and an optional time.
fn parse_iso(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sep = b[4];
    if !matches!(sep, b'-' | b'/' | b'.') {
        return None;
    }
    let y: i32 = s[..4].parse().ok()?;
    let mut rest = &s[5..];
    let (m, n) = take_digits(rest, 2)?;
    rest = rest[n..].strip_prefix(sep as char)?;
    let (d, n) = take_digits(rest, 2)?;
    rest = &rest[n..];
    if next_is_digit(rest) {
        return None;
    }
    finish(NaiveDate::from_ymd_opt(y, m, d)?, rest)
}

/// The two leading parts of a numeric `a/b/y` date (also `-` and `.`), two- or four-digit year.
fn numeric_parts(s: &str) -> Option<(u32, u32)> {
    numeric_split(s).map(|(a, b, _, _)| (a, b))
}

/// `a`, `b`, the year and the rest of a numeric `a/b/y` date.
fn numeric_split(s: &str) -> Option<(u32, u32, i32, &str)> {
    let (a, n) = take_digits(s, 2)?;
    let sep = *s.as_bytes().get(n)?;
    if !matches!(sep, b'/' | b'-' | b'.') {
        return None;
    }
    let rest = &s[n + 1..];
    let (b, n) = take_digits(rest, 2)?;
    let rest = rest[n..].strip_prefix(sep as char)?;
    let (y, n) = take_digits(rest, 4)?;
    let year = match n {
        4 => y as i32,
        2 => pivot_year(y),
        _ => return None,
    };
    let rest = &rest[n..];
    if next_is_digit(rest) {
        return None;
    }
    Some((a, b, year, rest))
}

fn parse_numeric(s: &str, order: DateOrder) -> Option<NaiveDateTime> {
    let (a, b, year, rest) = numeric_split(s)?;
    let (d, m) = match order {
        DateOrder::DayFirst => (a, b),
        DateOrder::MonthFirst => (b, a),
    };
    finish(NaiveDate::from_ymd_opt(year, m, d)?, rest)
}

/// Dates with a month name, optionally after a weekday: `March 1, 2024`, `1 Mar 2024`,
/// `1er mars 2024`, `01-Mar-24`, `Fri, 01 Mar 2024 10:00:00 +0000`.
fn parse_named(s: &str) -> Option<NaiveDateTime> {
    let mut r = s;
    if let Some((word, after)) = leading_word(r) {
        if is_weekday(word) {
            r = skip_separators(after);
        }
    }
    let (day, month, year);
    if next_is_digit(r) {
        let (d, n) = take_digits(r, 2)?;
        r = strip_ordinal(&r[n..]);
        let after = skip_separators(r);
        if after.len() == r.len() && !r.starts_with(char::is_alphabetic) {
            return None;
        }
        let (word, after) = leading_word(after)?;
        month = month_number(word)?;
        r = skip_separators(after);
        let (y, n) = take_digits(r, 4)?;
        year = match n {
            4 => y as i32,
            2 => pivot_year(y),
            _ => return None,
        };
        day = d;
        r = &r[n..];
    } else {
        let (word, after) = leading_word(r)?;
        month = month_number(word)?;
        r = skip_separators(after);
        let (d, n) = take_digits(r, 2)?;
        r = skip_separators(strip_ordinal(&r[n..]));
        let (y, n) = take_digits(r, 4)?;
        if n != 4 {
            return None;
        }
        day = d;
        year = y as i32;
        r = &r[n..];
    }
    if next_is_digit(r) {
        return None;
    }
    finish(NaiveDate::from_ymd_opt(year, month, day)?, r)
}

/// Separators between the parts of a date with a month name.
fn skip_separators(s: &str) -> &str {
    s.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '-' | '/'))
}

fn leading_word(s: &str) -> Option<(&str, &str)> {
    let end = s
        .char_indices()
        .find(|(_, c)| !c.is_alphabetic())
        .map_or(s.len(), |(i, _)| i);
    (end > 0).then(|| (&s[..end], &s[end..]))
}

/// Drops an ordinal suffix after a day number: `1er`, `1st`, `2nd`, `3rd`, `4th`, `2e`.
fn strip_ordinal(s: &str) -> &str {
    match leading_word(s) {
        Some((w, after))
            if ["er", "st", "nd", "rd", "th", "e"]
                .iter()
                .any(|o| w.eq_ignore_ascii_case(o)) =>
        {
            after
        }
        _ => s,
    }
}

fn is_weekday(word: &str) -> bool {
    // "mar" (mardi) is left out: it is also March.
    matches!(
        word.to_lowercase().as_str(),
        "mon"
            | "monday"
            | "tue"
            | "tues"
            | "tuesday"
            | "wed"
            | "wednesday"
            | "thu"
            | "thur"
            | "thurs"
            | "thursday"
            | "fri"
            | "friday"
            | "sat"
            | "saturday"
            | "sun"
            | "sunday"
            | "lun"
            | "lundi"
            | "mardi"
            | "mer"
            | "mercredi"
            | "jeu"
            | "jeudi"
            | "ven"
            | "vendredi"
            | "sam"
            | "samedi"
            | "dim"
            | "dimanche"
    )
}

/// English and French month names and their usual abbreviations.
fn month_number(word: &str) -> Option<u32> {
    Some(match word.to_lowercase().as_str() {
        "jan" | "january" | "janv" | "janvier" => 1,
        "feb" | "february" | "fev" | "fév" | "fevr" | "févr" | "fevrier" | "février" => 2,
        "mar" | "march" | "mars" => 3,
        "apr" | "april" | "avr" | "avril" => 4,
        "may" | "mai" => 5,
        "jun" | "june" | "juin" => 6,
        "jul" | "july" | "juil" | "juillet" => 7,
        "aug" | "august" | "aou" | "aoû" | "aout" | "août" => 8,
        "sep" | "sept" | "september" | "septembre" => 9,
        "oct" | "october" | "octobre" => 10,
        "nov" | "november" | "novembre" => 11,
        "dec" | "déc" | "december" | "decembre" | "décembre" => 12,
        _ => return None,
    })
}

/// Adds the time (and applies the offset) that may follow a date. The rest must be empty or
/// start with a separator: `2024-03-0110:00` is not a date.
fn finish(date: NaiveDate, rest: &str) -> Option<NaiveDateTime> {
    if rest.is_empty() {
        return Some(date.and_time(NaiveTime::MIN));
    }
    let first = rest.chars().next()?;
    let r = if first == 'T' || first == 't' {
        &rest[1..]
    } else if first.is_whitespace() || first == ',' {
        let r = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if r.is_empty() {
            return Some(date.and_time(NaiveTime::MIN));
        }
        // "1 mars 2024 à 10h30", "March 1, 2024 at 10:30"
        match leading_word(r) {
            Some((w, after)) if w == "à" || w.eq_ignore_ascii_case("at") => after.trim_start(),
            _ => r,
        }
    } else {
        return None;
    };
    let (time, offset) = parse_time(r)?;
    let local = date.and_time(time);
    match offset {
        Some(secs) => local.checked_sub_signed(TimeDelta::seconds(i64::from(secs))),
        None => Some(local),
    }
}

/// `hh:mm[:ss[.frac]]` (or `10h30`, or `11.35[.20]` as spreadsheets export times), optional
/// AM/PM, optional offset. Everything must be used.
fn parse_time(s: &str) -> Option<(NaiveTime, Option<i32>)> {
    let (mut h, n) = take_digits(s, 2)?;
    let r = &s[n..];
    let dotted = r.starts_with('.');
    let r = r
        .strip_prefix(':')
        .or_else(|| r.strip_prefix('.'))
        .or_else(|| r.strip_prefix('h'))
        .or_else(|| r.strip_prefix('H'))?;
    let (m, n) = take_digits(r, 2)?;
    if n != 2 {
        return None;
    }
    let mut r = &r[n..];
    let (mut sec, mut nanos) = (0, 0);
    // `11.35.20`: with dots between hours and minutes, seconds follow a dot too (no fraction).
    let seconds = if dotted {
        r.strip_prefix('.')
    } else {
        r.strip_prefix(':')
    };
    if let (true, Some(after)) = (dotted, seconds) {
        let (v, n) = take_digits(after, 2)?;
        if n != 2 {
            return None;
        }
        sec = v;
        r = &after[n..];
    } else if let Some(after) = seconds {
        let (v, n) = take_digits(after, 2)?;
        if n != 2 {
            return None;
        }
        sec = v;
        r = &after[n..];
        if let Some(after) = r.strip_prefix('.').or_else(|| r.strip_prefix(',')) {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            for (i, b) in after.bytes().take(digits.min(9)).enumerate() {
                nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
            }
            r = &after[digits..];
        }
    }
    let t = r.trim_start();
    let lower = t.get(..4).unwrap_or(t).to_ascii_lowercase();
    let meridiem = if lower.starts_with("am") || lower.starts_with("a.m.") {
        Some((false, if lower.starts_with("a.m.") { 4 } else { 2 }))
    } else if lower.starts_with("pm") || lower.starts_with("p.m.") {
        Some((true, if lower.starts_with("p.m.") { 4 } else { 2 }))
    } else {
        None
    };
    if let Some((pm, len)) = meridiem {
        if h == 0 || h > 12 {
            return None;
        }
        h = if pm { h % 12 + 12 } else { h % 12 };
        r = &t[len..];
    }
    let t = r.trim_start();
    let offset = if t.is_empty() {
        None
    } else {
        Some(parse_offset(t)?)
    };
    let time = NaiveTime::from_hms_nano_opt(h, m, sec, nanos)?;
    Some((time, offset))
}

/// `Z`, `UTC`, `GMT` (optionally followed by an offset), `+hh`, `+hhmm`, `+hh:mm`; in seconds.
fn parse_offset(s: &str) -> Option<i32> {
    if s.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let zone = s.get(..3).unwrap_or("");
    let s = if zone.eq_ignore_ascii_case("utc") || zone.eq_ignore_ascii_case("gmt") {
        let r = &s[3..];
        if r.is_empty() {
            return Some(0);
        }
        r
    } else {
        s
    };
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let r = &s[1..];
    let (h, n) = take_digits(r, 2)?;
    if n != 2 || h > 23 {
        return None;
    }
    let r = &r[n..];
    let r = r.strip_prefix(':').unwrap_or(r);
    let m = if r.is_empty() {
        0
    } else {
        let (m, n) = take_digits(r, 2)?;
        if n != 2 || r.len() != 2 || m > 59 {
            return None;
        }
        m
    };
    Some(sign * (h as i32 * 3600 + m as i32 * 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use DateOrder::{DayFirst, MonthFirst};

    fn dt(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    #[test]
    fn recognised_forms() {
        let day = |y, m, d| dt(y, m, d, 0, 0, 0);
        let cases: &[(&str, DateOrder, NaiveDateTime)] = &[
            // ISO 8601
            ("2024-03-01", DayFirst, day(2024, 3, 1)),
            ("2024-3-1", DayFirst, day(2024, 3, 1)),
            ("2024/03/01", MonthFirst, day(2024, 3, 1)),
            ("2024-03-01T10:20", DayFirst, dt(2024, 3, 1, 10, 20, 0)),
            ("2024-03-01 10:20:30", DayFirst, dt(2024, 3, 1, 10, 20, 30)),
            ("2024-03-01T10:20:30Z", DayFirst, dt(2024, 3, 1, 10, 20, 30)),
            (
                "2024-03-01T10:20:30+02:00",
                DayFirst,
                dt(2024, 3, 1, 8, 20, 30),
            ),
            (
                "2024-03-01T10:20:30-0530",
                DayFirst,
                dt(2024, 3, 1, 15, 50, 30),
            ),
            (
                "2024-03-01 00:30:00+01",
                DayFirst,
                dt(2024, 2, 29, 23, 30, 0),
            ),
            (
                "2024-03-01 10:20:30 UTC",
                DayFirst,
                dt(2024, 3, 1, 10, 20, 30),
            ),
            ("  2024-03-01  ", DayFirst, day(2024, 3, 1)),
            // numeric, day first
            ("15/03/2024", DayFirst, day(2024, 3, 15)),
            ("01/03/2024", DayFirst, day(2024, 3, 1)),
            ("1/3/2024", DayFirst, day(2024, 3, 1)),
            ("01-03-2024", DayFirst, day(2024, 3, 1)),
            ("01.03.2024", DayFirst, day(2024, 3, 1)),
            ("01/03/24", DayFirst, day(2024, 3, 1)),
            ("01/03/99", DayFirst, day(1999, 3, 1)),
            ("15/03/2024 14:30", DayFirst, dt(2024, 3, 15, 14, 30, 0)),
            ("15/03/2024 14:30:05", DayFirst, dt(2024, 3, 15, 14, 30, 5)),
            ("15.03.2024 14h30", DayFirst, dt(2024, 3, 15, 14, 30, 0)),
            // numeric, month first
            ("03/15/2024", MonthFirst, day(2024, 3, 15)),
            ("3/1/2024 2:30 PM", MonthFirst, dt(2024, 3, 1, 14, 30, 0)),
            ("3/1/2024 12:05 am", MonthFirst, dt(2024, 3, 1, 0, 5, 0)),
            // month names
            ("March 1, 2024", DayFirst, day(2024, 3, 1)),
            ("Mar 1 2024", DayFirst, day(2024, 3, 1)),
            ("1 Mar 2024", MonthFirst, day(2024, 3, 1)),
            ("1 mars 2024", DayFirst, day(2024, 3, 1)),
            ("1er mars 2024", DayFirst, day(2024, 3, 1)),
            ("1ER MARS 2024", DayFirst, day(2024, 3, 1)),
            ("March 1st, 2024", DayFirst, day(2024, 3, 1)),
            ("12 décembre 2023", DayFirst, day(2023, 12, 12)),
            ("3 févr. 2024", DayFirst, day(2024, 2, 3)),
            ("15 août 2024 à 10h30", DayFirst, dt(2024, 8, 15, 10, 30, 0)),
            ("01-Mar-24", DayFirst, day(2024, 3, 1)),
            ("vendredi 1 mars 2024", DayFirst, day(2024, 3, 1)),
            (
                "Fri, 01 Mar 2024 10:00:00 +0100",
                DayFirst,
                dt(2024, 3, 1, 9, 0, 0),
            ),
            (
                "March 1, 2024 at 9:15 AM",
                DayFirst,
                dt(2024, 3, 1, 9, 15, 0),
            ),
            // all digits
            ("20240301", DayFirst, day(2024, 3, 1)),
            ("1709251200", DayFirst, day(2024, 3, 1)),
            ("1709251200000", DayFirst, day(2024, 3, 1)),
            ("1709251200500", DayFirst, day(2024, 3, 1)),
        ];
        for (input, order, want) in cases {
            let got = parse_date(input, *order);
            let want = if *input == "1709251200500" {
                want.checked_add_signed(TimeDelta::milliseconds(500))
                    .unwrap()
            } else {
                *want
            };
            assert_eq!(got, Some(want), "{input:?} ({order:?})");
        }
    }

    #[test]
    fn dotted_times_as_spreadsheets_export_them() {
        for (input, order, want) in [
            ("22-02-2015 5.06", DayFirst, dt(2015, 2, 22, 5, 6, 0)),
            ("24-02-2015 11.35", DayFirst, dt(2015, 2, 24, 11, 35, 0)),
            ("02-24-2015 11.35", MonthFirst, dt(2015, 2, 24, 11, 35, 0)),
            ("24.02.2015 11.35.20", DayFirst, dt(2015, 2, 24, 11, 35, 20)),
            ("2024-03-01 10.30", DayFirst, dt(2024, 3, 1, 10, 30, 0)),
            ("3/1/2024 2.30 PM", MonthFirst, dt(2024, 3, 1, 14, 30, 0)),
        ] {
            assert_eq!(parse_date(input, order), Some(want), "{input:?}");
        }
        for input in [
            "22-02-2015 5.6",
            "22-02-2015 25.00",
            "22-02-2015 5.06.7",
            "22-02-2015 5.06:07",
        ] {
            assert_eq!(parse_date(input, DayFirst), None, "{input:?}");
        }
    }

    #[test]
    fn shapes_group_values_whatever_their_digit_counts() {
        assert_eq!(shape("22-02-2015 5.06"), "9-9-9 9.9");
        assert_eq!(shape(" 24-02-2015 11.35 "), shape("22-02-2015 5.06"));
        assert_eq!(shape("1er mars 2024"), "9a a 9");
        assert_ne!(shape("22/02/2015"), shape("22-02-2015"));
    }

    #[test]
    fn suggested_formats_read_their_samples() {
        let cases: &[(&[&str], DateOrder, Option<&str>)] = &[
            (
                &["22-02-2015 5.06", "24-02-2015 11.35"],
                DayFirst,
                Some("%d-%m-%Y %H.%M"),
            ),
            (&["03/04/2024"], MonthFirst, Some("%m/%d/%Y")),
            (&["03/04/2024"], DayFirst, Some("%d/%m/%Y")),
            // the preferred order does not read 13/02: the other one is suggested
            (&["13/02/2024", "01/02/2024"], MonthFirst, Some("%d/%m/%Y")),
            (&["3/1/2024 2:30 PM"], MonthFirst, Some("%m/%d/%Y %I:%M %p")),
            (&["2015/22/02"], DayFirst, Some("%Y/%d/%m")),
            (
                &["22.02.2015 - 11:35", "23.02.2015 - 08:10"],
                DayFirst,
                Some("%d.%m.%Y - %H:%M"),
            ),
            (&["15_03_24 10h05m"], DayFirst, Some("%d_%m_%y %Hh%Mm")),
            (&["hier"], DayFirst, None),
            (&["1 mars 2024"], DayFirst, None),
            (&["40/40/2024"], DayFirst, None),
            (&[], DayFirst, None),
        ];
        for (samples, order, want) in cases {
            let got = suggest_format(samples, *order);
            assert_eq!(got.as_deref(), *want, "{samples:?}");
            if let Some(format) = got {
                for s in *samples {
                    assert!(parse_with_format(s, &format).is_some(), "{s} with {format}");
                }
            }
        }
    }

    #[test]
    fn fractional_seconds() {
        let d = parse_date("2024-03-01T10:20:30.123456789Z", DayFirst).unwrap();
        assert_eq!(d.and_utc().timestamp_subsec_nanos(), 123_456_789);
        let d = parse_date("2024-03-01T10:20:30.5", DayFirst).unwrap();
        assert_eq!(d.and_utc().timestamp_subsec_millis(), 500);
    }

    #[test]
    fn rejected_values() {
        for input in [
            "",
            "   ",
            "hier",
            "n/a",
            "2024-13-01",
            "2024-02-30",
            "32/01/2024",
            "13/13/2024",
            "2024-03-0110:00",
            "01/03/2024x",
            "01/03/202",
            "01/03-2024",
            "2024-03-01T25:00",
            "2024-03-01T10:61",
            "2024-03-01T10:20:30+2",
            "2024-03-01 10:20 garbage",
            "March 2024",
            "Smarch 1, 2024",
            "1 mars",
            "123456789",
            "12345678901",
            "13:00 PM",
            "3/1/2024 13:05 PM",
            "99999999",
        ] {
            assert_eq!(parse_date(input, DayFirst), None, "{input:?}");
        }
    }

    #[test]
    fn order_evidence() {
        assert_eq!(evidence("15/03/2024"), Evidence::Proves(DayFirst));
        assert_eq!(evidence("03/15/2024"), Evidence::Proves(MonthFirst));
        assert_eq!(evidence("3-15-24"), Evidence::Proves(MonthFirst));
        assert_eq!(evidence("03/04/2024"), Evidence::Ambiguous);
        assert_eq!(evidence("04/04/2024"), Evidence::None);
        assert_eq!(evidence("2024-03-15"), Evidence::None);
        assert_eq!(evidence("March 1, 2024"), Evidence::None);
        assert_eq!(evidence("20/20/2024"), Evidence::None);
    }

    #[test]
    fn forced_format() {
        assert_eq!(
            parse_with_format("03/15/2024", "%m/%d/%Y"),
            Some(dt(2024, 3, 15, 0, 0, 0))
        );
        assert_eq!(
            parse_with_format("2024|03|15 10h05", "%Y|%m|%d %Hh%M"),
            Some(dt(2024, 3, 15, 10, 5, 0))
        );
        assert_eq!(
            parse_with_format("15/03/2024 10:00 +0200", "%d/%m/%Y %H:%M %z"),
            Some(dt(2024, 3, 15, 8, 0, 0))
        );
        assert_eq!(parse_with_format("15/03/2024", "%m/%d/%Y"), None);
        assert!(check_format("%d/%m/%Y").is_ok());
        assert!(check_format("%d/%m/%Q").is_err());
        assert!(check_format("").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_date(&s, DayFirst);
            let _ = evidence(&s);
        }

        #[test]
        fn iso_round_trip(secs in 0i64..4_102_444_800, with_time: bool) {
            let d = DateTime::from_timestamp(secs, 0).unwrap().naive_utc();
            let (text, want) = if with_time {
                (d.format("%Y-%m-%dT%H:%M:%S").to_string(), d)
            } else {
                (d.format("%Y-%m-%d").to_string(), d.date().and_time(NaiveTime::MIN))
            };
            proptest::prop_assert_eq!(parse_date(&text, MonthFirst), Some(want));
            let fr = d.format("%d/%m/%Y %H:%M:%S").to_string();
            proptest::prop_assert_eq!(parse_date(&fr, DayFirst), Some(d));
            let us = d.format("%m/%d/%Y %H:%M:%S").to_string();
            proptest::prop_assert_eq!(parse_date(&us, MonthFirst), Some(d));
        }
    }
}
