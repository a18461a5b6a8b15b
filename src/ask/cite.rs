//! Citation enforcement: an answer is cut into sentences; a sentence stays only if it cites at
//! least one verbatim of the context (`[3]`, `[2][5]`, `[2, 5]`) and every number in it appears in
//! the context or the question. Citations to verbatims that were not in the context are removed.

use serde::Serialize;

/// Why a sentence was dropped, or that it was kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Cites the context, numbers supported.
    Kept,
    /// The model cited nothing, but the sentence says what a context verbatim says (cosine at
    /// or above the model's threshold): cited by verbatim, not by the model.
    Attributed,
    /// No valid citation.
    Uncited,
    /// A number that is not in the context or the question.
    UnsupportedNumber,
}

/// One checked sentence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Checked {
    /// The sentence, with invalid citations removed.
    pub text: String,
    /// Valid citation numbers (1-based context positions), in order of appearance.
    pub citations: Vec<usize>,
    /// Verdict.
    pub verdict: Verdict,
}

/// Citation numbers in `s` (any `[…]` holding numbers separated by commas or spaces).
pub fn citations(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let inner = &after[..close];
        if !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_digit() || c == ',' || c == ' ')
        {
            out.extend(
                inner
                    .split([',', ' '])
                    .filter_map(|x| x.trim().parse::<usize>().ok()),
            );
        }
        rest = &after[close + 1..];
    }
    out
}

/// `s` without its citation brackets.
pub fn without_citations(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close)
                if after[..close]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == ' ') =>
            {
                out.push_str(&rest[..open]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..open + 1]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Numbers written in `s` (digits, with `.`/`,` decimals, optional `%`).
pub fn numbers(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || ((chars[i] == '.' || chars[i] == ',')
                        && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())))
            {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else {
            i += 1;
        }
    }
    out
}

/// Splits an answer into sentences: after `.`, `!`, `?` or a line break, keeping citation
/// brackets that follow the punctuation with the sentence they close.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        cur.push(c);
        let end = c == '\n'
            || (matches!(c, '.' | '!' | '?')
                && chars
                    .get(i + 1)
                    .is_none_or(|n| n.is_whitespace() || *n == '['));
        if end {
            // Swallow following citations ("… late. [2][3]").
            let mut j = i + 1;
            loop {
                let mut k = j;
                while k < chars.len() && chars[k] == ' ' {
                    k += 1;
                }
                if k < chars.len() && chars[k] == '[' {
                    if let Some(close) = chars[k..].iter().position(|&x| x == ']') {
                        let inner: String = chars[k + 1..k + close].iter().collect();
                        if !inner.is_empty()
                            && inner
                                .chars()
                                .all(|x| x.is_ascii_digit() || x == ',' || x == ' ')
                        {
                            cur.extend(&chars[j..k + close + 1]);
                            j = k + close + 1;
                            continue;
                        }
                    }
                }
                break;
            }
            i = j;
            let t = cur.trim().to_string();
            if !t.is_empty() {
                out.push(t);
            }
            cur.clear();
            continue;
        }
        i += 1;
    }
    let t = cur.trim().to_string();
    if !t.is_empty() {
        out.push(t);
    }
    out
}

/// Checks one sentence against a context of `n` numbered verbatims whose texts (and the
/// question) are `sources`.
pub fn check(sentence: &str, n: usize, sources: &str) -> Checked {
    let all = citations(sentence);
    let valid: Vec<usize> = all.iter().copied().filter(|&c| c >= 1 && c <= n).collect();
    // Rewrite the sentence with only valid citations.
    let body = without_citations(sentence).trim().to_string();
    let mut text = body.clone();
    let mut seen = Vec::new();
    for c in &valid {
        if !seen.contains(c) {
            seen.push(*c);
        }
    }
    if !seen.is_empty() {
        let tags: String = seen.iter().map(|c| format!("[{c}]")).collect();
        // Before a final full stop when there is one.
        if let Some(stripped) = text.strip_suffix(['.', '!', '?']) {
            let last = text.chars().last().unwrap_or('.');
            text = format!("{} {tags}{last}", stripped.trim_end());
        } else {
            text = format!("{text} {tags}");
        }
    }
    let unsupported = numbers(&body)
        .into_iter()
        .any(|num| !sources.contains(&num));
    let verdict = if seen.is_empty() {
        Verdict::Uncited
    } else if unsupported {
        Verdict::UnsupportedNumber
    } else {
        Verdict::Kept
    };
    Checked {
        text,
        citations: seen,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_keep_their_trailing_citations() {
        let s = sentences(
            "Delivery was late [1]. Support never answered. [2][3] Refunds took 3 weeks [4].",
        );
        assert_eq!(
            s,
            [
                "Delivery was late [1].",
                "Support never answered. [2][3]",
                "Refunds took 3 weeks [4]."
            ]
        );
    }

    #[test]
    fn citations_are_enforced() {
        let ctx = "parcel 3 weeks late";
        let ok = check("The parcel was 3 weeks late [1][7].", 5, ctx);
        assert_eq!(ok.verdict, Verdict::Kept);
        assert_eq!(ok.citations, vec![1]);
        assert_eq!(ok.text, "The parcel was 3 weeks late [1].");
        assert_eq!(
            check("Customers are unhappy.", 5, ctx).verdict,
            Verdict::Uncited
        );
        assert_eq!(check("Only [9] says so.", 5, ctx).verdict, Verdict::Uncited);
        let bad = check("42% of customers complain [2].", 5, ctx);
        assert_eq!(bad.verdict, Verdict::UnsupportedNumber);
        assert_eq!(citations("see [2, 4] and [x] and [5]"), vec![2, 4, 5]);
        assert_eq!(
            numbers("3,5 out of 10 and 12.5%"),
            vec!["3,5", "10", "12.5"]
        );
    }
}
