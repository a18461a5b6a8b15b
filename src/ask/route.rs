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
    for w in lower.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '’') {
        let w = w.trim_matches(|c| c == '\'' || c == '’');
        if w.is_empty() {
            continue;
        }
        // "d'autres", "l'app": keep what follows the elision.
        let w = w.split_once(['\'', '’']).map_or(w, |(_, rest)| rest);
        if let Some(&(_, m)) = MONTHS.iter().find(|(name, _)| *name == w) {
            month = Some(m);
            continue;
        }
        if GENERIC.contains(&w) {
            continue;
        }
        topic.push(w.to_string());
    }
    Some(CountQuestion {
        share,
        topic: topic.join(" "),
        month,
    })
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
    }
}
