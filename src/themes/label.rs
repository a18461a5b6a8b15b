//! Theme labels: keyphrases by class-based TF-IDF (c-TF-IDF) over stemmed, stop-worded tokens.
//!
//! Each verbatim is cut into words (tantivy's tokenizer, lower-cased); English and French stop
//! words, numbers and redaction placeholders (`<EMAIL>`…) are not content. Candidate phrases are
//! runs of 1–4 words that start and end on a content word and cross no punctuation; a phrase is
//! counted once per verbatim under its *key* — the stems (accent-folded) of its content words —
//! so "late deliveries" and "delivery was late" stay apart but "Late delivery" and "late
//! deliveries" meet. Its display form is its most frequent surface form (ties: the smallest).
//!
//! Score of phrase t for theme c, as in BERTopic's c-TF-IDF but over document frequencies:
//! `tf(t,c) / size(c) × ln(1 + A / f(t))`, where `tf(t,c)` is the number of the theme's verbatims
//! containing t, `f(t)` the number over all verbatims and `A` the mean theme size. A phrase must
//! appear in at least 3 verbatims and 5% of the theme. Keywords are the best 8 phrases, a phrase
//! dropped when its content stems are all inside a better one's (or the reverse, keeping the
//! longer one if it scores at least 60% as much). The label is the best phrase of 2–4 words;
//! failing one, the two best single words joined.

use std::collections::{BTreeMap, HashMap, HashSet};

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer,
    StopWordFilter, TextAnalyzer, TokenStream,
};

/// A verbatim's distinct candidate phrases, as ids in a [`Vocab`].
pub type DocPhrases = Vec<u32>;

/// Words of a text read for phrases: the model reads at most 256–512 tokens, so labels look at
/// what was embedded, and memory stays bounded on long documents.
pub const MAX_WORDS: usize = 400;

/// Phrase keys interned once for all verbatims, with the surface forms seen for each.
#[derive(Default)]
pub struct Vocab {
    ids: HashMap<String, u32>,
    keys: Vec<String>,
    forms: Vec<BTreeMap<String, u32>>,
}

impl Vocab {
    fn intern(&mut self, key: &str, surface: &str) -> u32 {
        let id = match self.ids.get(key) {
            Some(&id) => id,
            None => {
                let id = self.keys.len() as u32;
                self.ids.insert(key.to_string(), id);
                self.keys.push(key.to_string());
                self.forms.push(BTreeMap::new());
                id
            }
        };
        let f = &mut self.forms[id as usize];
        match f.get_mut(surface) {
            Some(n) => *n += 1,
            None => {
                // Bounded: the most frequent forms appear early and often.
                if f.len() < 16 {
                    f.insert(surface.to_string(), 1);
                }
            }
        }
        id
    }

    /// The stem key of a phrase id.
    pub fn key(&self, id: u32) -> &str {
        &self.keys[id as usize]
    }

    /// Most frequent surface form of a phrase (ties: the smallest).
    pub fn display(&self, id: u32) -> String {
        self.forms[id as usize]
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(s, _)| s.clone())
            .unwrap_or_default()
    }
}

/// Cuts texts into candidate phrases; reuse one per thread (it caches word analyses).
pub struct Phraser {
    words: TextAnalyzer,
    stop: [TextAnalyzer; 2],
    stem_en: TextAnalyzer,
    stem_fr: TextAnalyzer,
    folder: TextAnalyzer,
    cache: HashMap<(String, bool), Option<String>>,
}

impl Default for Phraser {
    fn default() -> Self {
        let stop = |l: Language| {
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .filter(StopWordFilter::new(l).expect("stop word list"))
                .build()
        };
        Phraser {
            words: TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(40))
                .filter(LowerCaser)
                .build(),
            stop: [stop(Language::English), stop(Language::French)],
            stem_en: crate::index::text::analyzer(crate::lang::Lang::En),
            stem_fr: crate::index::text::analyzer(crate::lang::Lang::Fr),
            folder: TextAnalyzer::builder(RawTokenizer::default())
                .filter(AsciiFoldingFilter)
                .build(),
            cache: HashMap::new(),
        }
    }
}

/// Words that carry no topic in feedback, beyond tantivy's (Lucene's short English, Snowball's
/// French) stop lists: pronouns, auxiliaries, intensifiers (accent-folded, apostrophes removed).
const FILLER: &[&str] = &[
    "i", "me", "my", "we", "our", "ours", "you", "your", "yours", "he", "she", "him", "her", "his",
    "its", "they", "them", "what", "which", "who", "whom", "have", "has", "had", "having", "do",
    "does", "did", "done", "am", "been", "being", "were", "so", "than", "too", "can", "should",
    "about", "after", "before", "from", "up", "down", "out", "over", "under", "here", "when",
    "where", "why", "how", "all", "any", "both", "each", "few", "more", "most", "other", "some",
    "only", "own", "same", "now", "because", "until", "while", "through", "during", "us", "been",
    "make", "made", "go", "going", "went", "say", "said", "use", "used", "way", "us", "oh", "also",
    "really", "very", "just", "would", "could", "one", "get", "got", "like", "even", "much",
    "well", "still", "ever", "thing", "things", "lot", "bit", "im", "ive", "dont", "didnt",
    "doesnt", "cant", "wont", "isnt", "wasnt", "tres", "bien", "fait", "faire", "etre", "avoir",
    "tout", "tous", "toute", "toutes", "plus", "comme", "aussi", "encore", "ca", "cela", "cet",
    "cette", "ces", "donc", "alors", "vraiment", "peu", "trop", "deja", "jamais", "rien", "est",
    "sont", "etait", "etaient", "ete", "ai", "avais", "avait", "avons", "ont", "suis", "sera",
    "fais", "faut", "peut", "peux", "veux", "dit", "quand", "apres", "avant", "depuis", "chez",
    "sans", "sous", "car", "mais", "ni", "ou", "si", "oui", "non", "aucun", "aucune",
];

impl Phraser {
    /// The stem key of a word, or `None` when it is no content word (stop word, filler, number).
    fn content(&mut self, word: &str, french: bool) -> Option<String> {
        if let Some(k) = self.cache.get(&(word.to_string(), french)) {
            return k.clone();
        }
        let is_stop = self
            .stop
            .iter_mut()
            .any(|a| !a.token_stream(word).advance());
        let folded = fold(&mut self.folder, word);
        let key = if is_stop
            || word.chars().count() < 2
            || word.chars().all(|c| c.is_ascii_digit())
            || FILLER.contains(&folded.as_str())
        {
            None
        } else {
            let a = if french {
                &mut self.stem_fr
            } else {
                &mut self.stem_en
            };
            let mut s = a.token_stream(word);
            s.advance().then(|| s.token().text.clone())
        };
        if self.cache.len() < 200_000 {
            self.cache.insert((word.to_string(), french), key.clone());
        }
        key
    }

    /// The distinct candidate phrases (1–4 words) of one text (its first [`MAX_WORDS`] words),
    /// in first-seen order, interned in `vocab`.
    pub fn phrases(&mut self, text: &str, language: &str, vocab: &mut Vocab) -> DocPhrases {
        let french = language == "fr";
        // Words with offsets; `true` after a word means a boundary follows it.
        let mut words: Vec<(String, usize, usize)> = Vec::new();
        {
            let mut s = self.words.token_stream(text);
            while s.advance() && words.len() < MAX_WORDS {
                let t = s.token();
                words.push((t.text.clone(), t.offset_from, t.offset_to));
            }
        }
        let bytes = text.as_bytes();
        let mut out: Vec<(String, String)> = Vec::new();
        let mut seen = HashSet::new();
        // Segments between boundaries (punctuation, placeholders).
        // (byte span in `text`, stem key or None for a non-content word).
        let mut seg: Vec<((usize, usize), Option<String>)> = Vec::new();
        let flush = |seg: &mut Vec<((usize, usize), Option<String>)>,
                     out: &mut Vec<(String, String)>,
                     seen: &mut HashSet<String>| {
            for i in 0..seg.len() {
                if seg[i].1.is_none() {
                    continue;
                }
                let mut keys: Vec<&str> = Vec::new();
                for j in i..seg.len().min(i + 4) {
                    if let Some(k) = &seg[j].1 {
                        keys.push(k);
                        let key = keys.join(" ");
                        if seen.insert(key.clone()) {
                            // The words as written ("minutes d'attente"), lower-cased.
                            let span = &text[seg[i].0 .0..seg[j].0 .1];
                            let surface = span
                                .split_whitespace()
                                .collect::<Vec<_>>()
                                .join(" ")
                                .to_lowercase();
                            out.push((key, surface));
                        }
                    }
                }
            }
            seg.clear();
        };
        for (idx, (w, from, to)) in words.iter().enumerate() {
            let placeholder = *from > 0
                && bytes.get(from - 1) == Some(&b'<')
                && bytes.get(*to) == Some(&b'>')
                && text[*from..*to]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_');
            if placeholder {
                flush(&mut seg, &mut out, &mut seen);
                continue;
            }
            if idx > 0 {
                let gap = &text[words[idx - 1].2.min(*from)..*from];
                if gap.chars().any(|c| ".,;:!?()[]{}\"«»…/|\n".contains(c)) {
                    flush(&mut seg, &mut out, &mut seen);
                }
            }
            let key = self.content(w, french);
            seg.push(((*from, *to), key));
        }
        flush(&mut seg, &mut out, &mut seen);
        out.iter()
            .map(|(k, surface)| vocab.intern(k, surface))
            .collect()
    }
}

/// `word` accent-folded by tantivy's ASCII folding (the text index's folding: every Latin
/// accent, capitals included, and œ → oe, æ → ae, ß → ss), without apostrophes.
fn fold(folder: &mut TextAnalyzer, word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut s = folder.token_stream(word);
    while s.advance() {
        out.push_str(&s.token().text);
    }
    out.retain(|c| !matches!(c, '\'' | '’'));
    out
}

/// Keywords of one theme, best first, and its label.
#[derive(Clone, Debug, PartialEq)]
pub struct Labelled {
    /// Up to 8 keyphrases (display forms), best first.
    pub keywords: Vec<String>,
    /// 2–4 words.
    pub label: String,
}

/// Labels `n_themes` themes. `docs[i]` are verbatim i's phrases and `theme[i]` its theme (None:
/// other). Deterministic: ties break on the key.
pub fn label_themes(
    docs: &[DocPhrases],
    theme: &[Option<usize>],
    n_themes: usize,
    vocab: &Vocab,
) -> Vec<Labelled> {
    // f(t) over all verbatims; tf(t,c) per theme.
    let mut df: HashMap<u32, u32> = HashMap::new();
    let mut tf: Vec<HashMap<u32, u32>> = vec![HashMap::new(); n_themes];
    let mut sizes = vec![0usize; n_themes];
    for (d, t) in docs.iter().zip(theme) {
        if let Some(t) = *t {
            sizes[t] += 1;
        }
        for &p in d {
            *df.entry(p).or_default() += 1;
            if let Some(t) = *t {
                *tf[t].entry(p).or_default() += 1;
            }
        }
    }
    let mean_size = (sizes.iter().sum::<usize>() as f64 / n_themes.max(1) as f64).max(1.0);
    let key = |p: u32| vocab.key(p);
    (0..n_themes)
        .map(|c| {
            let size = sizes[c].max(1) as f64;
            // At least 3 verbatims (2 in a theme under 40) and 5% of the theme.
            let floor = if sizes[c] < 40 { 2 } else { 3 };
            let min_docs = floor.max((0.05 * size).ceil() as u32);
            let mut scored: Vec<(f64, &str, u32)> = tf[c]
                .iter()
                .filter(|(_, &n)| n >= min_docs.min(sizes[c] as u32).max(2))
                .map(|(&p, &n)| {
                    let idf = (1.0 + mean_size / df[&p] as f64).ln();
                    (n as f64 / size * idf, key(p), p)
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
            // Deduplicate by content stems.
            let mut kept: Vec<(f64, &str, u32)> = Vec::new();
            for (s, k, p) in scored {
                if kept.len() >= 8 {
                    break;
                }
                let ks: HashSet<&str> = k.split(' ').collect();
                let mut dominated = false;
                let mut replace = None;
                for (i, (ps, pk, _)) in kept.iter().enumerate() {
                    let ps_set: HashSet<&str> = pk.split(' ').collect();
                    if ks.is_subset(&ps_set) {
                        dominated = true;
                        break;
                    }
                    if ps_set.is_subset(&ks) {
                        if s >= 0.6 * ps {
                            replace = Some(i);
                        } else {
                            dominated = true;
                        }
                        break;
                    }
                }
                if dominated {
                    continue;
                }
                match replace {
                    Some(i) => kept[i] = (kept[i].0, k, p),
                    None => kept.push((s, k, p)),
                }
            }
            // A replacement can duplicate a kept key.
            let mut seen = HashSet::new();
            kept.retain(|(_, k, _)| seen.insert(*k));
            let keywords: Vec<String> = kept.iter().map(|x| vocab.display(x.2)).collect();
            // The label is a phrase of 2–4 words: the best kept one, else the best-scoring
            // multi-word phrase with a lower bar (3 verbatims and 1% of the theme), which broad
            // themes of short texts need.
            let multi = kept
                .iter()
                .find(|x| x.1.contains(' '))
                .map(|x| vocab.display(x.2))
                .or_else(|| {
                    let bar = floor.max((0.01 * size).ceil() as u32);
                    tf[c]
                        .iter()
                        .filter(|(p, &n)| key(**p).contains(' ') && n >= bar)
                        .map(|(&p, &n)| {
                            (
                                (n as f64 / size) * (1.0 + mean_size / df[&p] as f64).ln(),
                                key(p),
                                p,
                            )
                        })
                        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(a.1)))
                        .map(|x| vocab.display(x.2))
                });
            let label = multi.unwrap_or_else(|| match keywords.as_slice() {
                [] => "misc".to_string(),
                [one] => one.clone(),
                [a, b, ..] => format!("{a} / {b}"),
            });
            Labelled { keywords, label }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_skip_stop_words_numbers_placeholders_and_punctuation() {
        let mut p = Phraser::default();
        let mut v = Vocab::default();
        let ph = p.phrases(
            "The delivery was late, again! Email <EMAIL> about 3 refunds.",
            "en",
            &mut v,
        );
        let keys: Vec<&str> = ph.iter().map(|&x| v.key(x)).collect();
        assert!(keys.contains(&"deliveri"), "{keys:?}");
        assert!(keys.contains(&"deliveri late"), "{keys:?}");
        assert!(!keys.iter().any(|k| k.contains("the")), "{keys:?}");
        assert!(
            !keys.iter().any(|k| k.contains("late again")),
            "crossed a comma: {keys:?}"
        );
        assert!(
            !keys.iter().any(|k| k.split(' ').any(|w| w == "email")) || keys.contains(&"email")
        );
        assert!(!keys.iter().any(|k| k.contains("email refund")), "{keys:?}");
        let surfaces: Vec<String> = ph.iter().map(|&x| v.display(x)).collect();
        assert!(
            surfaces.contains(&"delivery was late".to_string()),
            "{surfaces:?}"
        );
    }

    #[test]
    fn folding_covers_capitals_ligatures_and_eszett() {
        let mut p = Phraser::default();
        for (word, folded) in [
            ("très", "tres"),
            ("Été", "Ete"),
            ("œuvre", "oeuvre"),
            ("Œil", "OEil"),
            ("ex æquo", "ex aequo"),
            ("mañana", "manana"),
            ("Straße", "Strasse"),
            ("aujourd’hui", "aujourdhui"),
            ("l'été", "lete"),
            ("çà", "ca"),
        ] {
            assert_eq!(fold(&mut p.folder, word), folded, "{word}");
        }
    }

    #[test]
    fn french_is_stemmed_and_folded() {
        let mut p = Phraser::default();
        let mut v = Vocab::default();
        let a = p.phrases("Livraison très retardée", "fr", &mut v);
        let b = p.phrases("livraisons retardées", "fr", &mut v);
        let ka: HashSet<&str> = a.iter().map(|&x| v.key(x)).collect();
        let kb: HashSet<&str> = b.iter().map(|&x| v.key(x)).collect();
        assert!(
            ka.intersection(&kb).any(|k| k.contains(' ')),
            "{ka:?} {kb:?}"
        );
    }

    #[test]
    fn labels_are_distinctive_multiword_phrases() {
        let mut p = Phraser::default();
        let texts = [
            ("late delivery again", 0),
            ("the late delivery ruined it", 0),
            ("late delivery and no tracking", 0),
            ("another late delivery", 0),
            ("refund never arrived", 1),
            ("still waiting, refund never arrived", 1),
            ("refund never arrived after a month", 1),
            ("great product", 1),
        ];
        let mut v = Vocab::default();
        let docs: Vec<DocPhrases> = texts
            .iter()
            .map(|(t, _)| p.phrases(t, "en", &mut v))
            .collect();
        let theme: Vec<Option<usize>> = texts.iter().map(|(_, c)| Some(*c)).collect();
        let l = label_themes(&docs, &theme, 2, &v);
        assert_eq!(l[0].label, "late delivery");
        assert_eq!(l[1].label, "refund never arrived");
        // Deterministic.
        assert_eq!(l, label_themes(&docs, &theme, 2, &v));
    }
}
