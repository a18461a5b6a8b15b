//! Number formatting (fixed decimals, so the same report gives the same bytes) and escaping
//! for HTML and Markdown.

// ---------------------------------------------------------------------------------------------
// Numbers and text
// ---------------------------------------------------------------------------------------------

/// `part / whole`, 0 when `whole` is 0.
pub(super) fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// `x` with `decimals` decimals; "—" when not finite; never "-0.0".
pub(super) fn fixed(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "—".to_string();
    }
    let s = format!("{x:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// `x` with an explicit sign ("+0.21", "-0.12", "0.00").
pub(super) fn signed(x: f64, decimals: usize) -> String {
    let s = fixed(x, decimals);
    if s.starts_with('-') || s == "—" || s.chars().all(|c| c == '0' || c == '.') {
        s
    } else {
        format!("+{s}")
    }
}

/// A share as a percentage with one decimal: "12.3%".
pub(super) fn pct(share: f64) -> String {
    match fixed(share * 100.0, 1) {
        s if s == "—" => s,
        s => format!("{s}%"),
    }
}

/// A share as a whole percentage: "12%".
pub(super) fn whole_pct(share: f64) -> String {
    match fixed(share * 100.0, 0) {
        s if s == "—" => s,
        s => format!("{s}%"),
    }
}

/// A count with thousands separators: "12,345".
pub(super) fn int(x: usize) -> String {
    let digits = x.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An SVG coordinate: one decimal, without a trailing ".0"; 0 if not finite.
pub(super) fn n(x: f64) -> String {
    let s = fixed(if x.is_finite() { x } else { 0.0 }, 1);
    match s.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => s,
    }
}

/// `s` on one line, cut to at most `max` characters at a word boundary when one is near, with
/// "…" when cut.
pub(super) fn shorten(s: &str, max: usize) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let keep: String = line.chars().take(max.saturating_sub(1)).collect();
    let cut = match keep.rfind(' ') {
        Some(i) if keep[i..].chars().count() <= 20 => &keep[..i],
        _ => keep.as_str(),
    };
    format!("{}…", cut.trim_end_matches([' ', ',', ';', ':', '.', '-']))
}

/// Length of the longest run of `c` in `s`.
pub(super) fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for x in s.chars() {
        run = if x == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Text escaped for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The inverse of [`esc`].
pub(super) fn unesc(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Text made inert on one Markdown line (table cell, list item, heading): whitespace, line
/// breaks included, collapsed to single spaces, then [`md_line`].
pub(super) fn md(s: &str) -> String {
    md_line(&s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// One line of text made inert in Markdown: it cannot start a heading, list, block quote,
/// setext underline or indented code; backslashes, code spans, emphasis, strike-through, links
/// and table pipes are backslash-escaped; `<` becomes `&lt;` (no raw HTML or autolink), and `&`
/// becomes `&amp;` where it would start an entity.
pub(super) fn md_line(line: &str) -> String {
    let line = line.trim();
    let mut out = String::with_capacity(line.len() + 8);
    // An ordered-list marker: digits then '.' or ')'; escape that punctuation.
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    let list_mark =
        (digits > 0 && matches!(line[digits..].chars().next(), Some('.' | ')'))).then_some(digits);
    if matches!(line.chars().next(), Some('#' | '>' | '-' | '+' | '=')) {
        out.push('\\');
    }
    for (i, c) in line.char_indices() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '&' if starts_entity(&line[i + 1..]) => out.push_str("&amp;"),
            _ => {
                if Some(i) == list_mark {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
    out
}

/// Whether the text after an `&` would make it an HTML entity (`&amp;`, `&#39;`, `&#x27;`).
pub(super) fn starts_entity(rest: &str) -> bool {
    let body = rest.strip_prefix('#').unwrap_or(rest);
    let len = body.chars().take_while(char::is_ascii_alphanumeric).count();
    (1..=32).contains(&len) && body[len..].starts_with(';')
}
