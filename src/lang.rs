//! A cheap French / English detector, used to pick the stemmer when no `language` column is mapped.
//!
//! Why not a general detector: the text index only has French and English analysers, feedback is
//! short, and a function-word vote is both fast (no allocation per word) and right on the cases
//! that matter ("livraison en retard" vs "late delivery"). Unknown or tied → English, the
//! default analyser. Accented letters typical of French break ties.

/// Languages the text index has analysers for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English (default).
    En,
    /// French.
    Fr,
}

impl Lang {
    /// ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// Parses a language code or name (`fr`, `FR`, `fr-BE`, `french`, `français`); other languages
    /// fall back to the detector's answer, so `None` here.
    pub fn from_code(s: &str) -> Option<Lang> {
        let s = s.trim().to_lowercase();
        let head = s.split(['-', '_']).next().unwrap_or("");
        match head {
            "en" | "eng" | "english" | "anglais" => Some(Lang::En),
            "fr" | "fra" | "fre" | "french" | "français" | "francais" => Some(Lang::Fr),
            _ => None,
        }
    }
}

const FR: &[&str] = &[
    "le",
    "la",
    "les",
    "un",
    "une",
    "des",
    "du",
    "de",
    "et",
    "est",
    "pas",
    "ne",
    "je",
    "j",
    "il",
    "elle",
    "nous",
    "vous",
    "ils",
    "que",
    "qui",
    "pour",
    "dans",
    "sur",
    "avec",
    "mais",
    "très",
    "tres",
    "trop",
    "mon",
    "ma",
    "mes",
    "ce",
    "cette",
    "ces",
    "au",
    "aux",
    "été",
    "ete",
    "c",
    "l",
    "d",
    "qu",
    "n",
    "ça",
    "ca",
    "plus",
    "sont",
    "avait",
    "était",
    "etait",
    "rien",
    "toujours",
    "jamais",
    "aucun",
    "aucune",
    "bien",
    "merci",
    "commande",
    "livraison",
    "produit",
];
const EN: &[&str] = &[
    "the", "a", "an", "and", "is", "are", "was", "were", "not", "no", "i", "it", "this", "that",
    "to", "of", "in", "on", "for", "with", "but", "very", "too", "my", "we", "you", "they", "have",
    "has", "had", "be", "been", "would", "will", "do", "did", "does", "don", "t", "s", "at", "so",
    "just", "great", "good", "bad", "never", "always", "order", "delivery", "product",
];

/// Detects French vs English. Short or ambiguous text gives English.
pub fn detect(text: &str) -> Lang {
    let (mut fr, mut en) = (0i32, 0i32);
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(200)
    {
        let lw = word.to_lowercase();
        if FR.contains(&lw.as_str()) {
            fr += 2;
        }
        if EN.contains(&lw.as_str()) {
            en += 2;
        }
        if lw.chars().any(|c| {
            matches!(
                c,
                'é' | 'è' | 'ê' | 'à' | 'ç' | 'ù' | 'û' | 'ô' | 'î' | 'ï' | 'ë' | 'œ'
            )
        }) {
            fr += 1;
        }
    }
    if fr > en {
        Lang::Fr
    } else {
        Lang::En
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_common_feedback() {
        for fr in [
            "La livraison était en retard de deux semaines",
            "Produit reçu cassé, très déçu",
            "je n'ai jamais reçu ma commande",
            "Service client injoignable, aucune réponse",
        ] {
            assert_eq!(detect(fr), Lang::Fr, "{fr}");
        }
        for en in [
            "The delivery was two weeks late",
            "Great phone, battery lasts all day",
            "I never got my order",
            "ok",
            "",
        ] {
            assert_eq!(detect(en), Lang::En, "{en}");
        }
    }

    #[test]
    fn parses_codes() {
        assert_eq!(Lang::from_code("fr-BE"), Some(Lang::Fr));
        assert_eq!(Lang::from_code(" EN "), Some(Lang::En));
        assert_eq!(Lang::from_code("de"), None);
    }
}
