//! Which questions are counts. "How many…", "what share / percentage / proportion…",
//! "combien…", "quel pourcentage / quelle part / quelle proportion…" go to deterministic
//! aggregation over the store instead of the model; the topic is what remains once the question
//! words and the generic words of feedback ("customers", "mention", "clients", "parlent"…) are
//! removed, and a month name ("in March", "en mars") becomes a date filter.

/// A counting question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountQuestion {
    /// Share ("what share") rather than a count.
    pub share: bool,
    /// What to count (the question without its question and generic words).
    pub topic: String,
    /// A month the question names (1–12).
    pub month: Option<u32>,
    /// The topic is a name as written ("Trader Joe's", a capitalised or quoted phrase): it is
    /// matched as a phrase, never by meaning or by aspect.
    pub name: bool,
}

const COUNT_EN: &[&str] = &["how many", "how much of", "number of"];
const SHARE_EN: &[&str] = &[
    "what share",
    "what percentage",
    "what proportion",
    "what fraction",
    "what percent",
    "which share",
    "what part",
];
const COUNT_FR: &[&str] = &["combien", "nombre de"];
const SHARE_FR: &[&str] = &[
    "quel pourcentage",
    "quelle part",
    "quelle proportion",
    "quelle fraction",
    "quel est le pourcentage",
    "quelle est la part",
    "quelle est la proportion",
];

/// Words that say nothing about the topic of a counting question.
const GENERIC: &[&str] = &[
    "how",
    "many",
    "much",
    "what",
    "which",
    "share",
    "percentage",
    "percent",
    "proportion",
    "fraction",
    "part",
    "number",
    "of",
    "the",
    "a",
    "an",
    "our",
    "my",
    "do",
    "does",
    "did",
    "are",
    "is",
    "were",
    "was",
    "have",
    "has",
    "in",
    "on",
    "at",
    "about",
    "for",
    "with",
    "to",
    "by",
    "customers",
    "customer",
    "clients",
    "client",
    "people",
    "users",
    "user",
    "respondents",
    "verbatims",
    "verbatim",
    "comments",
    "comment",
    "reviews",
    "review",
    "feedback",
    "mention",
    "mentions",
    "mentioned",
    "mentioning",
    "talk",
    "talked",
    "talking",
    "complain",
    "complained",
    "complaining",
    "say",
    "said",
    "says",
    "write",
    "wrote",
    "speak",
    "spoke",
    "that",
    "who",
    "it",
    "they",
    "there",
    "last",
    "this",
    "month",
    "year",
    "combien",
    "de",
    "des",
    "du",
    "la",
    "le",
    "les",
    "l",
    "d",
    "quel",
    "quelle",
    "quels",
    "quelles",
    "est",
    "sont",
    "pourcentage",
    "part",
    "nombre",
    "clients",
    "personnes",
    "utilisateurs",
    "mentionnent",
    "mentionne",
    "parlent",
    "parle",
    "se",
    "plaignent",
    "plaint",
    "disent",
    "dit",
    "ont",
    "en",
    "au",
    "aux",
    "dans",
    "sur",
    "ce",
    "cette",
    "mois",
    "qui",
    "que",
    "ils",
    "elles",
    "y",
    "a",
    "avis",
    "commentaires",
    "verbatims",
];

const MONTHS: &[(&str, u32)] = &[
    ("january", 1),
    ("february", 2),
    ("march", 3),
    ("april", 4),
    ("may", 5),
    ("june", 6),
    ("july", 7),
    ("august", 8),
    ("september", 9),
    ("october", 10),
    ("november", 11),
    ("december", 12),
    ("janvier", 1),
    ("février", 2),
    ("fevrier", 2),
    ("mars", 3),
    ("avril", 4),
    ("mai", 5),
    ("juin", 6),
    ("juillet", 7),
    ("août", 8),
    ("aout", 8),
    ("septembre", 9),
    ("octobre", 10),
    ("novembre", 11),
    ("décembre", 12),
    ("decembre", 12),
];

/// Recognises a counting question.
pub fn count_question(q: &str) -> Option<CountQuestion> {
    let lower = q.to_lowercase();
    let starts = |list: &[&str]| list.iter().any(|p| lower.contains(p));
    let share = starts(SHARE_EN) || starts(SHARE_FR);
    if !share && !starts(COUNT_EN) && !starts(COUNT_FR) {
        return None;
    }
    let mut month = None;
    let mut topic = Vec::new();
    let mut name = false;
    let mut first = true;
    for raw in q.split(|c: char| !c.is_alphanumeric() && !is_apostrophe(c)) {
        let raw = raw.trim_matches(is_apostrophe);
        if raw.is_empty() {
            continue;
        }
        let opening = std::mem::replace(&mut first, false);
        let lw = raw.to_lowercase();
        // "d'autres", "l'app": keep what follows a French elision ("Joe's" stays whole).
        let (w, raw) = match lw.split_once(is_apostrophe) {
            Some((head, rest)) if ELISIONS.contains(&head) => (
                rest.to_string(),
                raw.get(raw.len().saturating_sub(rest.len())..)
                    .unwrap_or(raw),
            ),
            _ => (lw.clone(), raw),
        };
        if let Some(&(_, m)) = MONTHS.iter().find(|(n, _)| *n == w) {
            month = Some(m);
            continue;
        }
        if GENERIC.contains(&w.as_str()) {
            continue;
        }
        // A capital inside the question (not its first word), or a possessive: a name.
        name |= (!opening && raw.chars().next().is_some_and(char::is_uppercase))
            || w.contains(is_apostrophe);
        topic.push(w.replace(is_apostrophe, "'"));
    }
    // A quoted topic ("mention \"fast track\"") is a name too.
    name |= q.contains('"') || q.contains('«') || q.contains('“');
    Some(CountQuestion {
        share,
        topic: topic.join(" "),
        month,
        name,
    })
}

/// French elided articles and pronouns ("l'", "d'", "qu'"…), dropped before the word they join.
const ELISIONS: &[&str] = &[
    "l", "d", "j", "m", "n", "s", "t", "c", "qu", "jusqu", "lorsqu", "puisqu",
];

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | '‘' | 'ʼ' | '`')
}

/// Words of a why/what question that name no topic, beside [`GENERIC`].
const QUESTION_WORDS: &[&str] = &[
    "why",
    "pourquoi",
    "main",
    "complaints",
    "complaint",
    "think",
    "pensent",
    "quoi",
    "what's",
    "sont",
    "ils",
    "elles",
    "principales",
    "principaux",
    "plaintes",
    "about",
    "say",
];

/// The topic words of a why/what question ("Why are customers unhappy with delivery?" →
/// "unhappy delivery"): the evidence prefers, within a verbatim, the unit that has one of them.
pub fn topic_words(q: &str) -> String {
    q.split(|c: char| !c.is_alphanumeric() && !is_apostrophe(c))
        .map(|w| w.trim_matches(is_apostrophe).to_lowercase())
        .map(|w| match w.split_once(is_apostrophe) {
            Some((head, rest)) if ELISIONS.contains(&head) => rest.to_string(),
            _ => w,
        })
        .filter(|w| {
            !w.is_empty() && !GENERIC.contains(&w.as_str()) && !QUESTION_WORDS.contains(&w.as_str())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A comparison of two things on scores and sentiment ("is X or Y rated better", "X vs Y",
/// "X ou Y, lequel est mieux noté", "X better than Y").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompareQuestion {
    /// The two sides, lower-cased, as written otherwise ("green tea", "black tea").
    pub sides: [String; 2],
}

/// Words that say a question compares (with "or" / "ou" between the two sides).
const COMPARE_CUES: &[&str] = &[
    "better",
    "worse",
    "rated",
    "rate",
    "prefer",
    "preferred",
    "best",
    "higher",
    "lower",
    "happier",
    "compare",
    "compared",
    "mieux",
    "pire",
    "meilleur",
    "meilleure",
    "préfèrent",
    "préférés",
    "noté",
    "notée",
    "notés",
    "notées",
    "comparer",
];
/// "better than", "mieux noté que": the two sides on either side of the cue.
const THAN: &[&str] = &[" than ", " que "];
/// Said between the two sides outright.
const VERSUS: &[&str] = &[" vs. ", " vs ", " versus ", " v. "];
/// Words trimmed from either end of a side.
const SIDE_STOP: &[&str] = &[
    "is",
    "are",
    "was",
    "were",
    "do",
    "does",
    "did",
    "which",
    "what",
    "who",
    "whose",
    "the",
    "a",
    "an",
    "customers",
    "customer",
    "people",
    "reviewers",
    "reviews",
    "review",
    "rated",
    "rate",
    "score",
    "scored",
    "scores",
    "better",
    "worse",
    "higher",
    "lower",
    "more",
    "less",
    "liked",
    "best",
    "prefer",
    "preferred",
    "by",
    "it",
    "one",
    "between",
    "among",
    "overall",
    "est",
    "ce",
    "que",
    "qu",
    "sont",
    "le",
    "la",
    "les",
    "l",
    "un",
    "une",
    "des",
    "du",
    "de",
    "d",
    "lequel",
    "laquelle",
    "lesquels",
    "entre",
    "noté",
    "notée",
    "notés",
    "notées",
    "mieux",
    "moins",
    "bien",
    "plus",
    "clients",
    "avis",
    "préfèrent",
    "meilleur",
    "meilleure",
    "pire",
    "than",
    "or",
    "ou",
    "vs",
    "versus",
    "compare",
    "compared",
    "comparer",
    "with",
    "to",
    "avec",
    "à",
    "in",
    "en",
    "il",
    "elle",
    "ils",
    "elles",
    "they",
    "t",
];

/// Recognises a comparison of two things. Counting questions are routed before this.
pub fn compare_question(q: &str) -> Option<CompareQuestion> {
    let lower = format!(
        " {} ",
        q.to_lowercase()
            .replace(['’', '‘', 'ʼ'], "'")
            .replace(['?', '!', '«', '»', '"', '“', '”'], " ")
    );
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .collect();
    let cued = words.iter().any(|w| COMPARE_CUES.contains(w));
    let (left, right) = if let Some(v) = VERSUS.iter().find_map(|v| lower.split_once(v)) {
        v
    } else if let Some(v) = THAN
        .iter()
        .find_map(|t| lower.split_once(t))
        .filter(|_| cued)
    {
        v
    } else if cued {
        [" or ", " ou "].iter().find_map(|o| lower.split_once(o))?
    } else {
        return None;
    };
    // The left side ends where its clause starts ("Which is better, X or Y").
    let left = left.rsplit([',', ':', ';']).next().unwrap_or(left);
    // The right side ends at its clause's end ("X or Y, which is rated better").
    let right = right.split([',', ':', ';']).next().unwrap_or(right);
    let side = |s: &str| -> String {
        let mut ws: Vec<&str> = s
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
            .collect();
        // Strip elided articles ("l'huile").
        for w in ws.iter_mut() {
            if let Some((head, rest)) = w.split_once('\'') {
                if ELISIONS.contains(&head) {
                    *w = rest;
                }
            }
        }
        // A cue inside a side cuts it: after the side's words ("green tea rated better" →
        // "green tea"), or before them ("rated better: green tea").
        let content = |w: &&str| !SIDE_STOP.contains(w) && !COMPARE_CUES.contains(w);
        if let Some(i) = ws.iter().position(|w| COMPARE_CUES.contains(w)) {
            if ws[..i].iter().any(content) {
                ws.truncate(i);
            } else if let Some(j) = ws.iter().rposition(|w| COMPARE_CUES.contains(w)) {
                ws.drain(..=j);
            }
        }
        while ws.first().is_some_and(|w| SIDE_STOP.contains(w)) {
            ws.remove(0);
        }
        while ws.last().is_some_and(|w| SIDE_STOP.contains(w)) {
            ws.pop();
        }
        ws.join(" ")
    };
    let (a, b) = (side(left), side(right));
    let short = |s: &str| !s.is_empty() && s.split(' ').count() <= 5;
    (short(&a) && short(&b) && a != b).then(|| CompareQuestion { sides: [a, b] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_questions_in_english_and_french() {
        let q = count_question("How many customers mention refunds in March?").unwrap();
        assert_eq!(q.topic, "refunds");
        assert_eq!(q.month, Some(3));
        assert!(!q.share);
        let q = count_question("Quel pourcentage des clients parlent de la livraison ?").unwrap();
        assert!(q.share);
        assert_eq!(q.topic, "livraison");
        let q =
            count_question("Combien de clients se plaignent du service client en mars ?").unwrap();
        assert_eq!(q.topic, "service");
        assert_eq!(q.month, Some(3));
        assert!(
            count_question("What share of reviews talk about battery life?")
                .unwrap()
                .share
        );
        assert_eq!(
            count_question("Why are customers unhappy with delivery?"),
            None
        );
        assert!(
            !count_question("How many reviews mention price?")
                .unwrap()
                .name
        );
    }

    #[test]
    fn comparisons_in_english_and_french() {
        let sides = |q: &str| compare_question(q).map(|c| c.sides);
        let gb = Some(["green tea".to_string(), "black tea".to_string()]);
        assert_eq!(sides("Is green tea or black tea rated better?"), gb);
        assert_eq!(sides("Green tea vs black tea"), gb);
        assert_eq!(sides("Which is rated better, green tea or black tea?"), gb);
        assert_eq!(sides("Is green tea rated better than black tea?"), gb);
        let fr = Some(["thé vert".to_string(), "thé noir".to_string()]);
        assert_eq!(
            sides("Le thé vert ou le thé noir : lequel est mieux noté ?"),
            fr
        );
        assert_eq!(sides("Le thé vert est-il mieux noté que le thé noir ?"), fr);
        // No cue: "or" alone is not a comparison.
        assert_eq!(sides("Do people like tea or coffee?"), None);
        assert_eq!(sides("Why are customers unhappy with delivery?"), None);
    }

    #[test]
    fn topic_words_drop_the_question() {
        assert_eq!(
            topic_words("Why are customers unhappy with delivery?"),
            "unhappy delivery"
        );
        assert_eq!(
            topic_words("What are the main complaints about packaging?"),
            "packaging"
        );
        assert_eq!(
            topic_words("Pourquoi les clients sont-ils déçus de l'emballage ?"),
            "déçus emballage"
        );
    }

    #[test]
    fn names_keep_their_possessive_and_are_marked_as_names() {
        // Was "trader s": the apostrophe was read as a French elision.
        let q = count_question("How many reviews mention Trader Joe’s?").unwrap();
        assert_eq!(q.topic, "trader joe's");
        assert!(q.name);
        let q = count_question("Combien d'avis parlent de l'emballage ?").unwrap();
        assert_eq!(q.topic, "emballage");
        assert!(!q.name);
        let q = count_question("Combien d'avis parlent du café ?").unwrap();
        assert_eq!(q.topic, "café");
    }
}
