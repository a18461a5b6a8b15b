//! Reading a generated answer: its sentences, the citations each carries (`[3]`, `[2][5]`,
//! `[2, 5]`), the text without them, and the numbers written in it. What a sentence must satisfy
//! to be shown is [`super::support`]'s business.

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
    fn citations_and_numbers_are_read() {
        assert_eq!(citations("see [2, 4] and [x] and [5]"), vec![2, 4, 5]);
        assert_eq!(without_citations("late [1][2] and [x]"), "late  and [x]");
        assert_eq!(
            numbers("3,5 out of 10 and 12.5%"),
            vec!["3,5", "10", "12.5"]
        );
    }
}
