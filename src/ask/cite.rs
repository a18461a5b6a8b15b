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

/// The number of a list marker ("3." or "3)", one or two digits) when `token` is one.
fn marker_number(token: &str) -> Option<usize> {
    let digits = token.strip_suffix(['.', ')'])?;
    if digits.is_empty() || digits.len() > 2 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether the text from `i` on starts a list item: blanks, then something other than a
/// lower-case letter, a digit or a citation (a capital, a quote, `@`, `*`).
fn item_follows(chars: &[char], i: usize) -> bool {
    let mut k = i;
    if !chars.get(k).is_some_and(|c| c.is_whitespace()) {
        return false;
    }
    while chars.get(k).is_some_and(|c| c.is_whitespace()) {
        k += 1;
    }
    chars
        .get(k)
        .is_some_and(|c| !c.is_lowercase() && !c.is_ascii_digit() && *c != '[')
}

/// Splits an answer into sentences: after `.`, `!`, `?` or a line break, keeping citation
/// brackets that follow the punctuation with the sentence they close.
///
/// A numbered list ("1. The parcel was late [1]. 2. The courier was rude [2].") is read item by
/// item: a list marker at the start of a sentence ("1.", "2)", even alone on its line) stays with
/// the item it opens instead of ending a sentence of its own, and the next marker of the list
/// ("2." after "1.") starts a new sentence even where the item before it has no full stop
/// ("… late [1] 2. The courier…"). The marker is the list's, not a claim's number: the support
/// check removes it ([`super::support::normalise`]).
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    // The number of the last list marker seen, to recognise the next one inside a sentence.
    let mut last_marker: Option<usize> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        cur.push(c);
        if matches!(c, '.' | ')') {
            let opens = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
            if let Some(k) = marker_number(cur.trim()).filter(|_| opens) {
                // "3. …" opening a sentence (or alone on its line): the item's marker, which
                // never ends a sentence.
                last_marker = Some(k);
                i += 1;
                continue;
            }
            let token = cur.rsplit(char::is_whitespace).next().unwrap_or("");
            if let Some(k) = marker_number(token).filter(|_| item_follows(&chars, i + 1)) {
                if last_marker.is_some_and(|m| m + 1 == k) {
                    // "… late [1] 2. The courier…": the next item starts here.
                    out.push(cur[..cur.len() - token.len()].trim().to_string());
                    cur = token.to_string();
                    last_marker = Some(k);
                    i += 1;
                    continue;
                }
            }
        }
        let bare_marker = marker_number(cur.trim()).is_some();
        let end = (c == '\n' && !bare_marker)
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
    fn a_numbered_list_is_split_item_by_item() {
        // SmolLM2's list answers (the faithfulness set's airline and Amazon runs): markers alone
        // on their line, markers before each item, items without a full stop.
        assert_eq!(
            sentences("1.\n@united What's your story about flight attendants?\n2.\nThe seats were dirty [3]"),
            ["1.\n@united What's your story about flight attendants?", "2.\nThe seats were dirty [3]"]
        );
        assert_eq!(
            sentences(
                "Customers complain about delivery:\n1. The package arrived two weeks late [1].\n\
                 2. The courier was rude [2].\n3. Three customers say the box was damaged [3]."
            ),
            [
                "Customers complain about delivery:",
                "1. The package arrived two weeks late [1].",
                "2. The courier was rude [2].",
                "3. Three customers say the box was damaged [3]."
            ]
        );
        // Items on one line, the first without a full stop: "2." opens the next item.
        assert_eq!(
            sentences("1. The package arrived late [1] 2. The courier was rude [2]. 3) Refunds took 3 weeks [4]."),
            [
                "1. The package arrived late [1]",
                "2. The courier was rude [2].",
                "3) Refunds took 3 weeks [4]."
            ]
        );
        // Not list markers: a number ending a sentence, a decimal, a number out of sequence.
        assert_eq!(
            sentences("I gave it 5. The taste was bland [1]. Rated 4.5 stars [2]."),
            [
                "I gave it 5.",
                "The taste was bland [1].",
                "Rated 4.5 stars [2]."
            ]
        );
        assert_eq!(
            sentences("1. It cost 7. The box was dented [1]."),
            ["1. It cost 7.", "The box was dented [1]."]
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
