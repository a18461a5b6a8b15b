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
//!
//! A two-level theme tree of opinion units is labelled by [`label_tree`] instead: parents by the
//! aspect noun most distinctive of their units ("Packaging"), children by the short phrase most
//! distinctive against their siblings whose own sentiment agrees with the child's mix ("arrived
//! crushed", "too salty", never "good deal" on a mostly negative child); no two nodes share a
//! label. Why and how: the comment above [`UnitText`].

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
pub(crate) const FILLER: &[&str] = &[
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

// ---------------------------------------------------------------------------------------------
// Labels of a theme tree (issue 14): parents as aspect nouns, children as short issue phrases.
// ---------------------------------------------------------------------------------------------
//
// Why not c-TF-IDF over all phrases, as for verbatim-level themes: on units the most distinctive
// phrase of an aspect is often an opinion ("love", "great"), and the most distinctive phrase of a
// complaint child is often praise from the few positive units ("good deal" on a theme 55%
// negative). So the two levels read different word classes:
//
// - a *parent* is named by the noun (or noun compound of two words) most distinctive of its units
//   against the other parents (c-TF-IDF). A word is noun-like when it is a content word (not a
//   function word, not in the opinion lexicon, no English `-ly` / `-ed` ending) and at least
//   [`NOUN_EVIDENCE`] of its occurrences follow a determiner, possessive or preposition ("the
//   box", "my flight", "la livraison"), possibly across one opinion word ("the great taste") —
//   a part-of-speech test learnt from the texts, no tagger. Plurals meet their singular when the
//   singular is seen ("boxes" → "box", "livraisons" → "livraison"). A short aspect vocabulary
//   only breaks near-ties (within 10%), never names a parent by itself;
// - a *child* is named by the phrase of 2–4 words most distinctive of its units against its
//   siblings, among phrases whose own sentiment agrees with the child's mix: a mostly negative
//   child takes a negative or neutral phrase and prefers a negative one ("arrived crushed", "too
//   salty"), a mostly positive one the reverse, a mixed one only a neutral phrase. A phrase's
//   sentiment is read from the phrase alone, as the analyst reads the label: lexicon words, with
//   a negator inside the phrase flipping them ("not fresh" is negative, "not damaged" positive)
//   and "too"/"trop" making the next word negative ("too sweet");
// - no two themes read the same: parents pick first (largest first), then children, each taking
//   its best candidate not yet used anywhere in the tree.

/// One opinion unit of a tree to label: its redacted text, language code and polarity.
#[derive(Clone, Copy, Debug)]
pub struct UnitText<'a> {
    /// The unit's redacted text.
    pub text: &'a str,
    /// ISO code of its language (`fr` reads French word lists; anything else English).
    pub language: &'a str,
    /// The unit's sentiment.
    pub polarity: crate::themes::Polarity,
}

/// The label of one node of a theme tree and the phrases behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeLabel {
    /// What the analyst reads: an aspect noun ("Packaging") for a parent, a short phrase
    /// ("arrived crushed") for a child.
    pub label: String,
    /// Up to 5 candidates, best first (the label first when it came from them).
    pub keywords: Vec<String>,
}

/// Labels of a whole tree, in the order of its input.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeLabels {
    /// One per parent.
    pub parents: Vec<TreeLabel>,
    /// `children[p][c]`: child c of parent p.
    pub children: Vec<Vec<TreeLabel>>,
}

/// A parent is named after an aspect family ([`super::anchor::FAMILIES`]) when at least this
/// share of its units use a word of it (the anchored tree's parents: their named units, at
/// least half of them in practice, plus units placed by their vectors).
pub const FAMILY_SHARE: f64 = 0.25;

/// A child is named by an opinion ("stale", "too salty") when at least this share of its units
/// say it…
pub const KEYED_SHARE: f64 = 0.5;

/// … and a phrase holding the opinion word names it when at least this share of the units
/// saying the opinion say the phrase ("taste great" for "great" under Taste).
pub const KEYED_PHRASE: f64 = 0.2;

/// A child's label phrase must be said by at least this share of its units to name it alone;
/// under it the label says the child holds more ("too salty and other complaints").
pub const LABEL_COVER: f64 = 0.2;

/// Share of a word's occurrences that must follow a determiner or preposition for it to count as
/// a noun. Nouns in feedback score 0.3–0.9 ("my flight", "the box"); verbs and adjectives under
/// 0.1 ("arrived", "delayed").
pub const NOUN_EVIDENCE: f64 = 0.2;

/// A parent's best noun is replaced by a compound containing it ("service" → "customer
/// service") scoring at least this share of it.
const COMPOUND_SHARE: f64 = 0.6;

/// A child's best phrase is replaced by a longer one containing it when that scores at least
/// this share of its units: nearly always said together ("terrible customer" → "terrible customer
/// service"), not merely sometimes ("arrived crushed" stays, "box arrived crushed" is 2 of 3).
const PHRASE_EXTENSION_SHARE: f64 = 0.8;

/// Determiners, possessives and prepositions after which a noun comes (accent-folded).
const DETERMINERS_EN: &[&str] = &[
    "the", "a", "an", "my", "our", "your", "his", "her", "their", "its", "this", "that", "these",
    "those", "no", "any", "some", "every", "each", "another", "of", "with", "for", "in", "on",
    "at", "about", "from", "by", "without", "per",
];
const DETERMINERS_FR: &[&str] = &[
    "le", "la", "les", "l", "un", "une", "des", "du", "de", "d", "mon", "ma", "mes", "ton", "ta",
    "tes", "son", "sa", "ses", "notre", "nos", "votre", "vos", "leur", "leurs", "ce", "cet",
    "cette", "ces", "au", "aux", "avec", "pour", "sur", "dans", "par", "sans", "en",
];

/// Words that turn the sentiment of what follows (accent-folded, apostrophes removed).
const NEGATORS: &[&str] = &[
    "not", "no", "never", "nothing", "none", "nobody", "neither", "nor", "without", "dont",
    "didnt", "doesnt", "isnt", "wasnt", "werent", "arent", "cant", "couldnt", "wont", "wouldnt",
    "shouldnt", "havent", "hasnt", "hadnt", "aint", "cannot", "ne", "n", "pas", "jamais", "aucun",
    "aucune", "rien", "sans", "ni", "personne",
];

/// "too X" / "trop X" is a complaint whatever X is ("too sweet").
const EXCESS: &[&str] = &["too", "trop"];

/// English opinion and issue words with their polarity (accent-folded, lower case). Issue words
/// ("crushed", "delayed") are what complaints say; they count as negative.
const OPINION_EN: &[(&str, i8)] = &[
    ("good", 1),
    ("great", 1),
    ("excellent", 1),
    ("amazing", 1),
    ("awesome", 1),
    ("love", 1),
    ("loved", 1),
    ("loves", 1),
    ("lovely", 1),
    ("best", 1),
    ("better", 1),
    ("nice", 1),
    ("perfect", 1),
    ("perfectly", 1),
    ("delicious", 1),
    ("tasty", 1),
    ("yummy", 1),
    ("fresh", 1),
    ("fantastic", 1),
    ("wonderful", 1),
    ("happy", 1),
    ("pleased", 1),
    ("favorite", 1),
    ("favourite", 1),
    ("recommend", 1),
    ("recommended", 1),
    ("helpful", 1),
    ("friendly", 1),
    ("fast", 1),
    ("quick", 1),
    ("quickly", 1),
    ("easy", 1),
    ("enjoy", 1),
    ("enjoyed", 1),
    ("reasonable", 1),
    ("affordable", 1),
    ("bargain", 1),
    ("thanks", 1),
    ("thank", 1),
    ("appreciate", 1),
    ("appreciated", 1),
    ("smooth", 1),
    ("satisfied", 1),
    ("comfortable", 1),
    ("kind", 1),
    ("courteous", 1),
    ("professional", 1),
    ("polite", 1),
    ("superb", 1),
    ("outstanding", 1),
    ("impressed", 1),
    ("worth", 1),
    ("healthy", 1),
    ("crispy", 1),
    ("crunchy", 1),
    ("flavorful", 1),
    ("flavourful", 1),
    ("glad", 1),
    ("pleasant", 1),
    ("beautiful", 1),
    ("convenient", 1),
    ("fine", 1),
    ("excited", 1),
    ("fabulous", 1),
    ("incredible", 1),
    ("terrific", 1),
    ("works", 1),
    ("worked", 1),
    ("safe", 1),
    ("fun", 1),
    ("bad", -1),
    ("terrible", -1),
    ("awful", -1),
    ("horrible", -1),
    ("worst", -1),
    ("worse", -1),
    ("poor", -1),
    ("poorly", -1),
    ("disappointing", -1),
    ("disappointed", -1),
    ("disappointment", -1),
    ("rude", -1),
    ("late", -1),
    ("delayed", -1),
    ("delay", -1),
    ("delays", -1),
    ("cancelled", -1),
    ("canceled", -1),
    ("cancellation", -1),
    ("cancellations", -1),
    ("cancelled", -1),
    ("lost", -1),
    ("missing", -1),
    ("broken", -1),
    ("damaged", -1),
    ("crushed", -1),
    ("dented", -1),
    ("leaking", -1),
    ("leaked", -1),
    ("leak", -1),
    ("stale", -1),
    ("rancid", -1),
    ("bland", -1),
    ("salty", -1),
    ("bitter", -1),
    ("sour", -1),
    ("soggy", -1),
    ("burnt", -1),
    ("burned", -1),
    ("expensive", -1),
    ("overpriced", -1),
    ("pricey", -1),
    ("slow", -1),
    ("dirty", -1),
    ("wrong", -1),
    ("unhelpful", -1),
    ("useless", -1),
    ("waste", -1),
    ("wasted", -1),
    ("worthless", -1),
    ("annoying", -1),
    ("frustrating", -1),
    ("frustrated", -1),
    ("ridiculous", -1),
    ("unacceptable", -1),
    ("nasty", -1),
    ("gross", -1),
    ("disgusting", -1),
    ("moldy", -1),
    ("mouldy", -1),
    ("spoiled", -1),
    ("expired", -1),
    ("sick", -1),
    ("problem", -1),
    ("problems", -1),
    ("issue", -1),
    ("issues", -1),
    ("complaint", -1),
    ("fail", -1),
    ("failed", -1),
    ("fails", -1),
    ("failure", -1),
    ("hate", -1),
    ("hated", -1),
    ("stuck", -1),
    ("stranded", -1),
    ("waiting", -1),
    ("mess", -1),
    ("error", -1),
    ("crash", -1),
    ("crashed", -1),
    ("melted", -1),
    ("torn", -1),
    ("ripped", -1),
    ("smashed", -1),
    ("defective", -1),
    ("weak", -1),
    ("tasteless", -1),
    ("greasy", -1),
    ("overcooked", -1),
    ("undercooked", -1),
    ("lukewarm", -1),
    ("noisy", -1),
    ("uncomfortable", -1),
    ("cramped", -1),
    ("lied", -1),
    ("scam", -1),
    ("incompetent", -1),
    ("unprofessional", -1),
    ("sucks", -1),
    ("suck", -1),
    ("sucked", -1),
    ("shame", -1),
    ("sad", -1),
    ("angry", -1),
    ("upset", -1),
    ("horrendous", -1),
    ("pathetic", -1),
    ("joke", -1),
    ("nightmare", -1),
    ("lousy", -1),
    ("mediocre", -1),
    ("overbooked", -1),
    ("missed", -1),
    ("miss", -1),
    ("misconnect", -1),
    ("rebooked", -1),
    ("hold", -1),
    ("refused", -1),
    ("unable", -1),
    ("impossible", -1),
    ("confusing", -1),
    ("confused", -1),
    ("unfortunately", -1),
    ("complain", -1),
    ("complained", -1),
    ("garbage", -1),
    ("trash", -1),
    ("stinks", -1),
    ("smelled", -1),
    ("stuck", -1),
    ("ignored", -1),
    ("ruined", -1),
    ("worthless", -1),
    ("inedible", -1),
    ("artificial", -1),
    ("chemical", -1),
    ("watery", -1),
    ("dry", -1),
    ("tough", -1),
    ("chewy", -1),
    ("hard", -1),
    ("cold", -1),
    ("small", -1),
    ("tiny", -1),
    ("strange", -1),
    ("weird", -1),
    ("odd", -1),
    ("off", -1),
    ("never", -1),
    ("refund", -1),
];

/// French opinion and issue words (accent-folded, lower case: "salé" is "sale").
const OPINION_FR: &[(&str, i8)] = &[
    ("bon", 1),
    ("bonne", 1),
    ("bons", 1),
    ("bonnes", 1),
    ("excellent", 1),
    ("excellente", 1),
    ("super", 1),
    ("genial", 1),
    ("geniale", 1),
    ("parfait", 1),
    ("parfaite", 1),
    ("delicieux", 1),
    ("delicieuse", 1),
    ("frais", 1),
    ("fraiche", 1),
    ("rapide", 1),
    ("rapidement", 1),
    ("aimable", 1),
    ("sympa", 1),
    ("sympathique", 1),
    ("agreable", 1),
    ("satisfait", 1),
    ("satisfaite", 1),
    ("top", 1),
    ("merci", 1),
    ("recommande", 1),
    ("adore", 1),
    ("aime", 1),
    ("bravo", 1),
    ("efficace", 1),
    ("serviable", 1),
    ("professionnel", 1),
    ("impeccable", 1),
    ("beau", 1),
    ("belle", 1),
    ("savoureux", 1),
    ("mauvais", -1),
    ("mauvaise", -1),
    ("nul", -1),
    ("nulle", -1),
    ("horrible", -1),
    ("decu", -1),
    ("decue", -1),
    ("decevant", -1),
    ("decevante", -1),
    ("deception", -1),
    ("retard", -1),
    ("retards", -1),
    ("retarde", -1),
    ("retardee", -1),
    ("lent", -1),
    ("lente", -1),
    ("lenteur", -1),
    ("casse", -1),
    ("cassee", -1),
    ("abime", -1),
    ("abimee", -1),
    ("abimes", -1),
    ("endommage", -1),
    ("endommagee", -1),
    ("ecrase", -1),
    ("ecrasee", -1),
    ("perdu", -1),
    ("perdue", -1),
    ("manquant", -1),
    ("manquante", -1),
    ("cher", -1),
    ("chere", -1),
    ("chers", -1),
    ("couteux", -1),
    ("sale", -1),
    ("salee", -1),
    ("impoli", -1),
    ("impolie", -1),
    ("desagreable", -1),
    ("probleme", -1),
    ("problemes", -1),
    ("souci", -1),
    ("plainte", -1),
    ("erreur", -1),
    ("annule", -1),
    ("annulee", -1),
    ("annulation", -1),
    ("fade", -1),
    ("amer", -1),
    ("amere", -1),
    ("rassis", -1),
    ("perime", -1),
    ("perimee", -1),
    ("inadmissible", -1),
    ("inacceptable", -1),
    ("honteux", -1),
    ("scandaleux", -1),
    ("pire", -1),
    ("arnaque", -1),
    ("incompetent", -1),
    ("froid", -1),
    ("froide", -1),
    ("sec", -1),
    ("seche", -1),
    ("attente", -1),
];

/// Aspect nouns that break near-ties between parent candidates (accent-folded).
const ASPECTS: &[&str] = &[
    "packaging",
    "package",
    "box",
    "delivery",
    "shipping",
    "shipment",
    "order",
    "price",
    "cost",
    "value",
    "taste",
    "flavor",
    "flavour",
    "texture",
    "smell",
    "quality",
    "service",
    "staff",
    "agent",
    "support",
    "refund",
    "size",
    "portion",
    "ingredient",
    "seat",
    "flight",
    "luggage",
    "bag",
    "baggage",
    "gate",
    "crew",
    "wifi",
    "food",
    "app",
    "website",
    "booking",
    "reservation",
    "customer service",
    "emballage",
    "livraison",
    "colis",
    "prix",
    "gout",
    "qualite",
    "personnel",
    "remboursement",
    "commande",
    "taille",
    "accueil",
    "attente",
];

/// Extra English words that are neither nouns of an aspect nor opinions: frequent verbs and
/// adverbs of feedback that tantivy's short stop list and [`FILLER`] leave in.
const NOT_NOUNS: &[&str] = &[
    "buy",
    "bought",
    "try",
    "tried",
    "give",
    "gave",
    "take",
    "took",
    "put",
    "keep",
    "need",
    "want",
    "know",
    "think",
    "find",
    "found",
    "look",
    "looks",
    "see",
    "tell",
    "told",
    "call",
    "called",
    "let",
    "come",
    "came",
    "eat",
    "ate",
    "drink",
    "tastes",
    "seem",
    "seems",
    "must",
    "may",
    "might",
    "will",
    "shall",
    "yet",
    "again",
    "back",
    "today",
    "yesterday",
    "tomorrow",
    "ago",
    "always",
    "already",
    "usually",
    "please",
    "http",
    "https",
    "www",
    "com",
    "amp",
    "de",
    "la",
    "le",
    "les",
    "un",
    "une",
    "et",
    "est",
    "pas",
    "etc",
    "lol",
    "omg",
    "ok",
    "okay",
    "yes",
    "hi",
    "hey",
    "anyone",
    "anything",
    "someone",
    "something",
    "everything",
    "everyone",
    "nobody",
    "many",
    "every",
    "less",
    "enough",
    "sure",
    "maybe",
    "though",
    "although",
    "however",
    "though",
    "either",
    "rather",
    "quite",
    "pretty",
    "instead",
    "able",
    "first",
    "last",
    "next",
    "new",
    "old",
    "two",
    "three",
    "day",
    "days",
    "time",
    "times",
    "year",
    "years",
    "week",
    "weeks",
    "hour",
    "hours",
    "minute",
    "minutes",
    "product",
    "products",
    "item",
    "items",
    "stuff",
    "thing",
    "things",
    "lot",
    "lots",
    "people",
    "guy",
    "guys",
    "folks",
    "way",
    "kind",
    "sort",
    "type",
    "brand",
    "one",
    "ones",
];

/// What a word is to the tree labeller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Carries no topic and no sentiment ("the", "was").
    Function,
    /// Turns the sentiment of what follows ("not", "pas").
    Negator,
    /// Makes the next word a complaint ("too", "trop").
    Excess,
    /// Anything else.
    Content,
}

/// One word of a unit.
#[derive(Clone, Debug)]
struct Word {
    /// Lower-cased as written.
    surface: String,
    /// Accent-folded, apostrophes removed; plural merged to singular after the corpus pass.
    key: String,
    kind: Kind,
    /// Lexicon polarity (−1, 0, 1).
    polarity: i8,
    /// Passes the lexical noun test (the corpus test comes later).
    noun_like: bool,
    /// Follows a determiner or preposition (directly or across one opinion word).
    after_determiner: bool,
}

/// Cuts a unit into runs of words between punctuation, mentions, hashtags, links and redaction
/// placeholders. French elisions are split ("l'emballage" → "l'", "emballage"); English
/// contractions stay one word ("didn't").
fn segments(text: &str) -> Vec<Vec<(String, bool)>> {
    // (word as written, elided French article) per segment.
    let mut out: Vec<Vec<(String, bool)>> = vec![Vec::new()];
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let boundary = |out: &mut Vec<Vec<(String, bool)>>| {
        if out.last().is_some_and(|s| !s.is_empty()) {
            out.push(Vec::new());
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || (matches!(chars[i], '\'' | '’' | '-')
                        && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect::<String>().to_lowercase();
            let prev = start.checked_sub(1).map(|p| chars[p]);
            let skip = matches!(prev, Some('@') | Some('#') | Some('<'))
                || word.starts_with("http")
                || word.starts_with("www");
            if skip {
                // A mention, hashtag, link or placeholder: not part of any phrase.
                while i < chars.len() && !chars[i].is_whitespace() {
                    i += 1;
                }
                boundary(&mut out);
                continue;
            }
            // French elision: l', d', j', n', s', c', m', t', qu'.
            let seg = out.last_mut().expect("one segment");
            match word.split_once(['\'', '’']) {
                Some((head, rest))
                    if matches!(head, "l" | "d" | "j" | "n" | "s" | "c" | "m" | "t" | "qu")
                        && !rest.is_empty()
                        && rest != "t" =>
                {
                    seg.push((head.to_string(), true));
                    seg.push((rest.to_string(), false));
                }
                _ => seg.push((word, false)),
            }
            continue;
        }
        if ".,;:!?()[]{}\"«»…/|\n\r".contains(c) || c == '<' || c == '>' {
            boundary(&mut out);
        }
        i += 1;
    }
    out.retain(|s| !s.is_empty());
    out
}

/// English and French singular candidates of a folded word ("deliveries" → "delivery",
/// "boxes" → "box", "livraisons" → "livraison", "journaux" → "journal").
fn singulars(w: &str, french: bool) -> Vec<String> {
    let mut out = Vec::new();
    if w.len() < 4 {
        return out;
    }
    if french {
        if let Some(s) = w.strip_suffix("aux") {
            out.push(format!("{s}al"));
        }
        if let Some(s) = w.strip_suffix(['s', 'x']) {
            out.push(s.to_string());
        }
        return out;
    }
    if let Some(s) = w.strip_suffix("ies") {
        out.push(format!("{s}y"));
    }
    if let Some(s) = w.strip_suffix("es") {
        if s.ends_with(['s', 'x', 'z']) || s.ends_with("ch") || s.ends_with("sh") {
            out.push(s.to_string());
        }
    }
    if let Some(s) = w.strip_suffix('s') {
        if !s.ends_with(['s', 'u', 'i']) {
            out.push(s.to_string());
        }
    }
    out
}

/// Reads units into words: kinds, lexicon polarity, the lexical noun test, plural → singular.
struct TreeReader {
    folder: TextAnalyzer,
    stop: [TextAnalyzer; 2],
    cache: HashMap<String, String>,
}

impl TreeReader {
    fn new() -> Self {
        let stop = |l: Language| {
            TextAnalyzer::builder(RawTokenizer::default())
                .filter(StopWordFilter::new(l).expect("stop word list"))
                .build()
        };
        TreeReader {
            folder: TextAnalyzer::builder(RawTokenizer::default())
                .filter(AsciiFoldingFilter)
                .build(),
            stop: [stop(Language::English), stop(Language::French)],
            cache: HashMap::new(),
        }
    }

    fn fold(&mut self, w: &str) -> String {
        if let Some(f) = self.cache.get(w) {
            return f.clone();
        }
        let f = fold(&mut self.folder, w);
        if self.cache.len() < 200_000 {
            self.cache.insert(w.to_string(), f.clone());
        }
        f
    }

    /// The words of each segment of one unit, keys not yet merged plural → singular.
    fn read(&mut self, text: &str, french: bool) -> Vec<Vec<Word>> {
        let lexicon = if french { OPINION_FR } else { OPINION_EN };
        let determiners = if french {
            DETERMINERS_FR
        } else {
            DETERMINERS_EN
        };
        let mut out = Vec::new();
        for seg in segments(text) {
            let mut words: Vec<Word> = Vec::with_capacity(seg.len());
            for (surface, elided) in seg {
                let key = self.fold(&surface);
                let polarity = lexicon
                    .iter()
                    .find(|(w, _)| *w == key)
                    .map_or(0, |(_, p)| *p);
                let kind = if NEGATORS.contains(&key.as_str()) {
                    Kind::Negator
                } else if EXCESS.contains(&key.as_str()) {
                    Kind::Excess
                } else if elided
                    || polarity == 0
                        && (key.chars().count() < 2
                            || key.chars().all(|c| c.is_ascii_digit())
                            || FILLER.contains(&key.as_str())
                            || determiners.contains(&key.as_str())
                            || self
                                .stop
                                .iter_mut()
                                .any(|a| !a.token_stream(&surface).advance()))
                {
                    Kind::Function
                } else {
                    Kind::Content
                };
                let noun_like = kind == Kind::Content
                    && polarity == 0
                    && key.chars().any(|c| c.is_alphabetic())
                    && !NOT_NOUNS.contains(&key.as_str())
                    && (french
                        || !(key.ends_with("ly")
                            || (key.len() > 4 && key.ends_with("ed") && !key.ends_with("eed"))));
                let after_determiner = match words.last() {
                    Some(p) if determiners.contains(&p.key.as_str()) => true,
                    Some(p) if p.polarity != 0 => words
                        .len()
                        .checked_sub(2)
                        .is_some_and(|i| determiners.contains(&words[i].key.as_str())),
                    _ => false,
                };
                words.push(Word {
                    surface,
                    key,
                    kind,
                    polarity,
                    noun_like,
                    after_determiner,
                });
            }
            out.push(words);
        }
        out
    }
}

/// Verbs whose negation is a complaint whatever the lexicon says ("never arrived", "doesn't
/// work"): what an order or a product failed to do.
const FAILED: &[&str] = &[
    "arrive",
    "arrived",
    "received",
    "receive",
    "came",
    "work",
    "works",
    "worked",
    "working",
    "showed",
    "recu",
    "fonctionne",
    "marche",
];

/// Generic evaluations: words that say only "good", "bad", "a problem" or "thanks", whatever
/// the aspect. A child is what is *said* about an aspect, and "great taste", "love the taste"
/// and "good taste" say one thing: counted apart they made three praise siblings of one parent
/// (Amazon: "Taste › taste great", "› good taste", "› delicious"…; airline tweets: "Customer
/// service › thanks" beside "› thank customer"). So an opinion core made of one of these words
/// is its canonical word ([`generic`]), negation kept ("not great" → "not good").
const GENERIC_EN: &[(&str, &[&str])] = &[
    (
        "good",
        &[
            "good",
            "great",
            "excellent",
            "amazing",
            "awesome",
            "love",
            "loved",
            "loves",
            "lovely",
            "best",
            "better",
            "nice",
            "perfect",
            "perfectly",
            "fantastic",
            "wonderful",
            "happy",
            "pleased",
            "favorite",
            "favourite",
            "satisfied",
            "superb",
            "outstanding",
            "impressed",
            "glad",
            "fabulous",
            "incredible",
            "terrific",
            "enjoy",
            "enjoyed",
        ],
    ),
    (
        "bad",
        &[
            "bad",
            "terrible",
            "awful",
            "horrible",
            "worst",
            "worse",
            "poor",
            "poorly",
            "hate",
            "hated",
            "sucks",
            "suck",
            "sucked",
            "horrendous",
            "pathetic",
            "lousy",
            "nasty",
            "garbage",
            "trash",
            "joke",
            "nightmare",
            "ridiculous",
            "unacceptable",
            "disappointing",
            "disappointed",
            "disappointment",
            "shame",
            "sad",
            "angry",
            "upset",
            "frustrated",
            "frustrating",
            "annoying",
        ],
    ),
    (
        "problem",
        &["problem", "problems", "issue", "issues", "mess"],
    ),
    ("thanks", &["thanks", "thank", "appreciate", "appreciated"]),
];

/// [`GENERIC_EN`]'s French counterpart.
const GENERIC_FR: &[(&str, &[&str])] = &[
    (
        "bon",
        &[
            "bon",
            "bonne",
            "bons",
            "bonnes",
            "excellent",
            "excellente",
            "super",
            "genial",
            "geniale",
            "parfait",
            "parfaite",
            "top",
            "adore",
            "aime",
            "bravo",
            "impeccable",
            "satisfait",
            "satisfaite",
        ],
    ),
    (
        "mauvais",
        &[
            "mauvais",
            "mauvaise",
            "nul",
            "nulle",
            "decu",
            "decue",
            "decevant",
            "decevante",
            "deception",
        ],
    ),
    ("probleme", &["probleme", "problemes", "souci"]),
    ("merci", &["merci"]),
];

/// The canonical word of a generic evaluation ([`GENERIC_EN`], [`GENERIC_FR`]), or `None` for
/// a word that says something of its own ("stale", "crushed", "delicious").
pub fn generic(word: &str, french: bool) -> Option<&'static str> {
    let table = if french { GENERIC_FR } else { GENERIC_EN };
    table
        .iter()
        .find(|(_, words)| words.contains(&word))
        .map(|(canonical, _)| *canonical)
}

/// What units say, read for the theme tree's children ([`super::anchor`]): the opinion cores
/// of a unit — an opinion or issue word of the lexicon ("stale", "crushed", "delicious"), "too"
/// + any word ("too sweet"), a multi-word expression ("on time"), a negated failure ("never
/// arrived") — each with its sentiment, negation applied ("not fresh" is a complaint, "not
/// too sweet" praise). Keys are accent-folded and lower case.
pub struct OpinionReader {
    reader: TreeReader,
}

impl Default for OpinionReader {
    fn default() -> Self {
        OpinionReader {
            reader: TreeReader::new(),
        }
    }
}

impl OpinionReader {
    /// The opinion cores of one unit: (key, polarity −1 or 1), in reading order, distinct.
    pub fn keys(&mut self, text: &str, french: bool) -> Vec<(String, i8)> {
        let mut out: Vec<(String, i8)> = Vec::new();
        let not = if french { "pas" } else { "not" };
        for words in self.reader.read(text, french) {
            let negated_before = |i: usize| negated_before(&words, i);
            let mut covered = vec![false; words.len()];
            for (i, expr, p) in expressions_in(&words) {
                let key = expr.join(" ");
                out.push(if negated_before(i) {
                    (format!("{not} {key}"), -p)
                } else {
                    (key, p)
                });
                covered[i..i + expr.len()]
                    .iter_mut()
                    .for_each(|c| *c = true);
            }
            for (i, w) in words.iter().enumerate() {
                if w.kind != Kind::Content || covered[i] {
                    continue;
                }
                let excess = i > 0 && words[i - 1].kind == Kind::Excess;
                let negated = negated_before(if excess { i - 1 } else { i });
                let core = if excess {
                    Some((format!("{} {}", words[i - 1].key, w.key), -1))
                } else if w.polarity != 0 {
                    let key = generic(&w.key, french).map_or_else(|| w.key.clone(), str::to_string);
                    Some((key, w.polarity))
                } else if negated && FAILED.contains(&w.key.as_str()) {
                    // "never arrived": the negation is the complaint, not a flip of praise.
                    out.push((format!("{not} {}", w.key), -1));
                    None
                } else {
                    None
                };
                if let Some((key, p)) = core {
                    out.push(if negated {
                        (format!("{not} {key}"), -p)
                    } else {
                        (key, p)
                    });
                }
            }
        }
        let mut seen = HashSet::new();
        out.retain(|(k, _)| seen.insert(k.clone()));
        out
    }
}

/// Opinions said in several words, whose words alone carry none ("arrived on time" is praise,
/// "on hold" a complaint); matched on word keys, flipped by a negator before them.
const EXPRESSIONS: &[(&[&str], i8)] = &[
    (&["on", "time"], 1),
    (&["in", "time"], 1),
    (&["as", "described"], 1),
    (&["on", "hold"], -1),
    (&["rip", "off"], -1),
    (&["ripped", "off"], -1),
    (&["left", "behind"], -1),
    (&["a", "l", "heure"], 1),
    (&["en", "attente"], -1),
];

/// Where [`EXPRESSIONS`] occur in `words`: (first word, expression, its polarity), expression
/// by expression, left to right.
fn expressions_in(
    words: &[Word],
) -> impl Iterator<Item = (usize, &'static [&'static str], i8)> + '_ {
    EXPRESSIONS.iter().flat_map(move |&(expr, p)| {
        (0..words.len().saturating_sub(expr.len() - 1))
            .filter(move |&i| {
                words[i..i + expr.len()]
                    .iter()
                    .zip(expr.iter())
                    .all(|(w, e)| w.key == *e)
            })
            .map(move |i| (i, expr, p))
    })
}

/// A negator comes before word `i` in `words`.
fn negated_before(words: &[Word], i: usize) -> bool {
    words[..i].iter().any(|x| x.kind == Kind::Negator)
}

/// Sentiment of a phrase read alone: lexicon words and [`EXPRESSIONS`], flipped by a negator
/// before them in the phrase, and any word after "too"/"trop" negative.
fn phrase_polarity(words: &[Word]) -> i8 {
    let mut sum = 0i32;
    for (i, _, p) in expressions_in(words) {
        sum += if negated_before(words, i) {
            -p as i32
        } else {
            p as i32
        };
    }
    for (i, w) in words.iter().enumerate() {
        if w.kind != Kind::Content {
            continue;
        }
        let mut p = w.polarity as i32;
        if i > 0 && words[i - 1].kind == Kind::Excess {
            p = -1;
        } else if negated_before(words, i) {
            p = -p;
        }
        sum += p;
    }
    sum.signum() as i8
}

/// The dominant sentiment of a theme: negative or positive when that class is the larger one
/// and at least 40% of the units, else mixed (0).
fn mix(units: &[UnitText<'_>]) -> i8 {
    use crate::themes::Polarity;
    let n = units.len().max(1) as f64;
    let neg = units
        .iter()
        .filter(|u| u.polarity == Polarity::Negative)
        .count() as f64;
    let pos = units
        .iter()
        .filter(|u| u.polarity == Polarity::Positive)
        .count() as f64;
    if neg > pos && neg / n >= 0.4 {
        -1
    } else if pos > neg && pos / n >= 0.4 {
        1
    } else {
        0
    }
}

/// Candidate phrases of all units, interned once.
struct TreeCandidates {
    /// Nouns and noun compounds (1–2 words).
    nouns: Vocab,
    /// Phrases of 1–4 words for children.
    phrases: Vocab,
    /// Sentiment of each phrase id, read alone.
    phrase_polarity: Vec<i8>,
    /// Per noun id: (occurrences, occurrences after a determiner).
    noun_evidence: Vec<(u32, u32)>,
    /// Per unit (flattened in tree order): distinct noun ids, distinct phrase ids.
    units: Vec<(Vec<u32>, Vec<u32>)>,
    /// Per unit: the aspect families its words name ([`super::anchor::families_of`]).
    families: Vec<Vec<usize>>,
    /// Per unit: French.
    french: Vec<bool>,
    /// Per unit: its opinion cores ([`OpinionReader`]).
    said: Vec<Vec<(String, i8)>>,
}

impl TreeCandidates {
    fn build(tree: &[Vec<Vec<UnitText<'_>>>]) -> Self {
        let mut reader = TreeReader::new();
        let read: Vec<Vec<Vec<Word>>> = tree
            .iter()
            .flatten()
            .flatten()
            .map(|u| reader.read(u.text, u.language == "fr"))
            .collect();
        // Plural → singular where the singular is seen as a content word.
        let seen: HashSet<&str> = read
            .iter()
            .flatten()
            .flatten()
            .filter(|w| w.kind == Kind::Content)
            .map(|w| w.key.as_str())
            .collect();
        let french: Vec<bool> = tree
            .iter()
            .flatten()
            .flatten()
            .map(|u| u.language == "fr")
            .collect();
        // (folded word, French) → which singular rule applies (index into `singulars`).
        let mut lemma: HashMap<(String, bool), Option<usize>> = HashMap::new();
        for (u, segs) in read.iter().enumerate() {
            for w in segs.iter().flatten() {
                if w.kind == Kind::Content {
                    let k = (w.key.clone(), french[u]);
                    if !lemma.contains_key(&k) {
                        let rule = singulars(&w.key, french[u])
                            .iter()
                            .position(|s| seen.contains(s.as_str()));
                        lemma.insert(k, rule);
                    }
                }
            }
        }
        let mut c = TreeCandidates {
            nouns: Vocab::default(),
            phrases: Vocab::default(),
            phrase_polarity: Vec::new(),
            noun_evidence: Vec::new(),
            units: Vec::with_capacity(read.len()),
            families: tree
                .iter()
                .flatten()
                .flatten()
                .map(|u| super::anchor::families_of(u.text))
                .collect(),
            french: french.clone(),
            said: {
                let mut r = OpinionReader::default();
                tree.iter()
                    .flatten()
                    .flatten()
                    .map(|u| r.keys(u.text, u.language == "fr"))
                    .collect()
            },
        };
        for (u, mut segs) in read.into_iter().enumerate() {
            for w in segs.iter_mut().flatten() {
                if w.kind == Kind::Content {
                    if let Some(&Some(rule)) = lemma.get(&(w.key.clone(), french[u])) {
                        // The same suffix rule on the written form keeps its accents
                        // ("boîtes" → "boîte"), so labels read as written.
                        w.key = singulars(&w.key, french[u]).swap_remove(rule);
                        if let Some(s) = singulars(&w.surface, french[u]).get(rule) {
                            w.surface = s.clone();
                        }
                    }
                }
            }
            let mut nouns = Vec::new();
            let mut phrases = Vec::new();
            for seg in &segs {
                c.add_nouns(seg, &mut nouns);
                c.add_phrases(seg, &mut phrases);
            }
            nouns.sort_unstable();
            nouns.dedup();
            phrases.sort_unstable();
            phrases.dedup();
            c.units.push((nouns, phrases));
        }
        c
    }

    /// Nouns and two-noun compounds of a segment, with their determiner evidence. The display
    /// form of a noun is its singular when the singular is seen.
    fn add_nouns(&mut self, seg: &[Word], out: &mut Vec<u32>) {
        for i in 0..seg.len() {
            for j in i..seg.len().min(i + 2) {
                if !seg[i..=j].iter().all(|w| w.noun_like) {
                    break;
                }
                let key = seg[i..=j]
                    .iter()
                    .map(|w| w.key.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let surface = seg[i..=j]
                    .iter()
                    .map(|w| w.surface.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let id = self.nouns.intern(&key, &surface) as usize;
                if id == self.noun_evidence.len() {
                    self.noun_evidence.push((0, 0));
                }
                self.noun_evidence[id].0 += 1;
                // A compound's evidence is its first word's; a lone noun inside a compound
                // ("customer" in "customer service") borrows the compound's determiner.
                let det = seg[i].after_determiner
                    || (j == i && i > 0 && seg[i - 1].noun_like && seg[i - 1].after_determiner);
                if det {
                    self.noun_evidence[id].1 += 1;
                }
                out.push(id as u32);
            }
        }
    }

    /// Phrases of 1–4 words of a segment: starting on a content word, a negator or
    /// "too"/"trop", ending on a content word.
    fn add_phrases(&mut self, seg: &[Word], out: &mut Vec<u32>) {
        for i in 0..seg.len() {
            if seg[i].kind == Kind::Function {
                continue;
            }
            for j in i..seg.len().min(i + 4) {
                if seg[j].kind != Kind::Content {
                    continue;
                }
                let words = &seg[i..=j];
                let key = words
                    .iter()
                    .map(|w| w.key.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let surface = words
                    .iter()
                    .map(|w| w.surface.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
                    .replace(['\'', '’'], "'")
                    .replace("' ", "'");
                // Filler alone ("hours", "things", "today") says nothing about a theme.
                if words.iter().all(|w| {
                    w.kind != Kind::Content
                        || w.polarity == 0 && NOT_NOUNS.contains(&w.key.as_str())
                }) {
                    continue;
                }
                let id = self.phrases.intern(&key, &surface) as usize;
                if id == self.phrase_polarity.len() {
                    self.phrase_polarity.push(phrase_polarity(words));
                }
                out.push(id as u32);
            }
        }
    }

    /// More than half of the units in `range` are French.
    fn mostly_french(&self, range: std::ops::Range<usize>) -> bool {
        self.french[range.clone()].iter().filter(|&&f| f).count() * 2 > range.len()
    }

    fn is_noun(&self, id: u32) -> bool {
        let (n, det) = self.noun_evidence[id as usize];
        n > 0 && det as f64 >= NOUN_EVIDENCE * n as f64
    }
}

/// Counts of candidates over a set of units.
fn counts<'a>(units: impl Iterator<Item = &'a Vec<u32>>) -> HashMap<u32, u32> {
    let mut m: HashMap<u32, u32> = HashMap::new();
    for u in units {
        for &p in u {
            *m.entry(p).or_default() += 1;
        }
    }
    m
}

/// Support a noun needs in a parent of `size` units: 2 units and 3% of the parent.
fn support(size: usize) -> u32 {
    2.max((0.03 * size as f64).ceil() as u32)
}

/// Support a phrase needs in a child of `size` units: 2 units and 1.5% of the child (phrases
/// of several words are rarer than nouns; on 300 tweets a 3% floor left only single words).
fn phrase_support(size: usize) -> u32 {
    2.max((0.015 * size as f64).ceil() as u32)
}

/// Moves to the front the longest candidate that contains the first one's words in order and
/// scores at least `share` of it ("terrible customer" → "terrible customer service"). `key`
/// gives a candidate's key, `score` its score.
fn prefer_longer<T>(s: &mut [T], share: f64, key: impl Fn(&T) -> &str, score: impl Fn(&T) -> f64) {
    let Some(first) = s.first() else { return };
    let (k0, s0) = (format!(" {} ", key(first)), score(first));
    let best = s
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, x)| format!(" {} ", key(x)).contains(&k0) && score(x) >= share * s0)
        .max_by(|a, b| {
            let (la, lb) = (key(a.1).len(), key(b.1).len());
            la.cmp(&lb).then(score(a.1).total_cmp(&score(b.1)))
        })
        .map(|(i, _)| i);
    if let Some(i) = best {
        s[..=i].rotate_right(1);
    }
}

/// Upper-cases the first letter.
fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Labels a theme tree: `tree[p][c]` are the units of child c of parent p. Parents are named by
/// aspect nouns, children by short phrases agreeing with their sentiment mix; no two nodes share
/// a label. Deterministic: ties break on the phrase key.
pub fn label_tree(tree: &[Vec<Vec<UnitText<'_>>>]) -> TreeLabels {
    let cand = TreeCandidates::build(tree);
    // Unit ranges: per parent, per child.
    let mut ranges: Vec<Vec<std::ops::Range<usize>>> = Vec::with_capacity(tree.len());
    let mut at = 0;
    for p in tree {
        let mut r = Vec::with_capacity(p.len());
        for c in p {
            r.push(at..at + c.len());
            at += c.len();
        }
        ranges.push(r);
    }
    let parent_range = |p: usize| -> std::ops::Range<usize> {
        let r = &ranges[p];
        r.first().map_or(0, |f| f.start)..r.last().map_or(0, |l| l.end)
    };
    let mut used: HashSet<String> = HashSet::new();
    let parents = label_parents(&cand, tree.len(), &parent_range, &mut used);
    // Children, largest first across the tree, so the clearest complaints keep their phrase.
    let mut order: Vec<(usize, usize)> = (0..tree.len())
        .flat_map(|p| (0..tree[p].len()).map(move |c| (p, c)))
        .collect();
    order.sort_by_key(|&(p, c)| (std::cmp::Reverse(tree[p][c].len()), p, c));
    let mut children: Vec<Vec<Option<TreeLabel>>> =
        tree.iter().map(|p| vec![None; p.len()]).collect();
    for (p, c) in order {
        let parent_units = parent_range(p);
        let sibling_df = counts(cand.units[parent_units.clone()].iter().map(|u| &u.1));
        let mean_sibling = parent_units.len() as f64 / tree[p].len().max(1) as f64;
        let siblings: Vec<String> = children[p]
            .iter()
            .flatten()
            .map(|l| l.label.clone())
            .collect();
        children[p][c] = Some(label_child(
            &cand,
            &tree[p][c],
            ranges[p][c].clone(),
            &sibling_df,
            mean_sibling,
            (&parents[p].label, &siblings),
            &mut used,
        ));
    }
    TreeLabels {
        parents,
        children: children
            .into_iter()
            .map(|p| {
                p.into_iter()
                    .map(|c| c.expect("every child labelled"))
                    .collect()
            })
            .collect(),
    }
}

/// Parent labels: c-TF-IDF over noun candidates against the other parents.
fn label_parents(
    cand: &TreeCandidates,
    n: usize,
    parent_range: &dyn Fn(usize) -> std::ops::Range<usize>,
    used: &mut HashSet<String>,
) -> Vec<TreeLabel> {
    let df = counts(cand.units.iter().map(|u| &u.0));
    let sizes: Vec<usize> = (0..n).map(|p| parent_range(p).len()).collect();
    let mean = (sizes.iter().sum::<usize>() as f64 / n.max(1) as f64).max(1.0);
    // Ranked candidates per parent: (score, key, id).
    let ranked: Vec<Vec<(f64, &str, u32)>> = (0..n)
        .map(|p| {
            let size = sizes[p].max(1) as f64;
            let tf = counts(cand.units[parent_range(p)].iter().map(|u| &u.0));
            let mut s: Vec<(f64, &str, u32)> = tf
                .into_iter()
                .filter(|&(id, k)| k >= support(sizes[p]) && cand.is_noun(id))
                .map(|(id, k)| {
                    let idf = (1.0 + mean / df[&id] as f64).ln();
                    (k as f64 / size * idf, cand.nouns.key(id), id)
                })
                .collect();
            s.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
            // Near-ties go to a known aspect noun; then a compound containing the best noun
            // takes its place when it scores nearly as well ("customer service").
            if let Some(i) = s
                .iter()
                .take_while(|x| x.0 >= 0.9 * s[0].0)
                .position(|x| ASPECTS.contains(&x.1))
            {
                let x = s.remove(i);
                s.insert(0, x);
            }
            prefer_longer(&mut s, COMPOUND_SHARE, |x| x.1, |x| x.0);
            if s.is_empty() {
                // No noun is frequent enough in a diffuse parent: the best nouns seen twice.
                s = counts(cand.units[parent_range(p)].iter().map(|u| &u.0))
                    .into_iter()
                    .filter(|&(id, k)| k >= 2 && cand.is_noun(id))
                    .map(|(id, k)| {
                        let idf = (1.0 + mean / df[&id] as f64).ln();
                        (k as f64 / size * idf, cand.nouns.key(id), id)
                    })
                    .collect();
                s.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
            }
            s
        })
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&p| (std::cmp::Reverse(sizes[p]), p));
    // The aspect family most of a parent's units name, when one does ([`FAMILY_SHARE`]); the
    // one parent where none does, beside parents that have one, is "General" (its units name no
    // aspect: the anchored tree's rest). Parents cut by vectors alone keep their nouns.
    let family: Vec<Option<usize>> = (0..n)
        .map(|p| {
            let r = parent_range(p);
            let size = r.len().max(1) as f64;
            let mut k: HashMap<usize, usize> = HashMap::new();
            for f in cand.families[r].iter().flatten() {
                *k.entry(*f).or_default() += 1;
            }
            k.into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                .filter(|&(_, c)| c as f64 >= FAMILY_SHARE * size)
                .map(|(f, _)| f)
        })
        .collect();
    let general = (family.iter().filter(|f| f.is_none()).count() == 1
        && family.iter().any(Option::is_some))
    .then(|| family.iter().position(Option::is_none))
    .flatten();
    let mut out: Vec<Option<TreeLabel>> = vec![None; n];
    for p in order {
        let mut names: Vec<String> = ranked[p]
            .iter()
            .map(|x| capitalise(&cand.nouns.display(x.2)))
            .collect();
        let french = cand.mostly_french(parent_range(p));
        if let Some(f) = family[p] {
            let name = super::anchor::family_name(f, if french { "fr" } else { "en" });
            names.retain(|x| !x.eq_ignore_ascii_case(name));
            names.insert(0, name.to_string());
        } else if general == Some(p) {
            let name = if french {
                super::anchor::GENERAL_FR
            } else {
                super::anchor::GENERAL_EN
            };
            names.insert(0, name.to_string());
        }
        let label = names
            .iter()
            .find(|l| !used.contains(&l.to_lowercase()))
            .cloned()
            .unwrap_or_else(|| unique(names.first().map_or("Other", |s| s.as_str()), used));
        used.insert(label.to_lowercase());
        let mut keywords: Vec<String> = vec![label.clone()];
        keywords.extend(names.into_iter().filter(|k| *k != label).take(4));
        out[p] = Some(TreeLabel { label, keywords });
    }
    out.into_iter().map(|l| l.expect("every parent")).collect()
}

/// `base` made unique with a number ("Other 2").
fn unique(base: &str, used: &HashSet<String>) -> String {
    if !used.contains(&base.to_lowercase()) {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base} {i}"))
        .find(|l| !used.contains(&l.to_lowercase()))
        .expect("some number is free")
}

/// The tails that say a label's phrase covers only part of its child.
const REST_TAILS: [&str; 6] = [
    " and other complaints",
    " and other praise",
    " and other mentions",
    " et autres plaintes",
    " et autres éloges",
    " et autres mentions",
];

/// Whether two sibling labels say the same thing to a reader: equal, or one's words a run of
/// the other's ("hold" / "hold customer service", "late flight" / "late flight and other
/// complaints"), compared without the "and other …" tail and without case.
fn labels_overlap(a: &str, b: &str) -> bool {
    let words = |l: &str| -> Vec<String> {
        let l = l.to_lowercase();
        let core = REST_TAILS
            .iter()
            .find_map(|t| l.strip_suffix(t))
            .unwrap_or(&l)
            .to_string();
        core.split_whitespace().map(str::to_string).collect()
    };
    let (a, b) = (words(a), words(b));
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    !short.is_empty() && long.windows(short.len()).any(|w| w == short.as_slice())
}

/// A child's label: the best phrase against its siblings whose sentiment agrees with the
/// child's mix; phrases of 2–4 words first, single words only when none qualifies. `parent` is
/// the parent's label and the labels its other children already have: a label no other node
/// has and that is no sub-phrase of a sibling's, nor a sibling's of it ([`labels_overlap`]).
fn label_child(
    cand: &TreeCandidates,
    units: &[UnitText<'_>],
    range: std::ops::Range<usize>,
    sibling_df: &HashMap<u32, u32>,
    mean_sibling: f64,
    (parent, siblings): (&str, &[String]),
    used: &mut HashSet<String>,
) -> TreeLabel {
    let taken = |l: &str, used: &HashSet<String>| {
        used.contains(&l.to_lowercase()) || siblings.iter().any(|s| labels_overlap(l, s))
    };
    let dominant = mix(units);
    let size = range.len().max(1) as f64;
    let tf = counts(cand.units[range.clone()].iter().map(|u| &u.1));
    let mut scored: Vec<(bool, f64, &str, u32, u32)> = tf
        .into_iter()
        .filter(|&(id, k)| {
            let pol = cand.phrase_polarity[id as usize];
            k >= phrase_support(range.len())
                && match dominant {
                    0 => pol == 0,
                    d => pol == 0 || pol == d,
                }
        })
        .map(|(id, k)| {
            let pol = cand.phrase_polarity[id as usize];
            let idf = (1.0 + mean_sibling / sibling_df[&id] as f64).ln();
            let agree = if dominant != 0 && pol == dominant {
                2.0
            } else {
                1.0
            };
            let key = cand.phrases.key(id);
            (key.contains(' '), k as f64 / size * idf * agree, key, id, k)
        })
        .collect();
    // Multi-word first, then score, then key.
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(b.2)));
    // Said together: compared on unit counts (the rarer phrase has the larger idf).
    prefer_longer(&mut scored, PHRASE_EXTENSION_SHARE, |x| x.2, |x| x.4 as f64);
    // A child most of whose units say one opinion of its sentiment (the anchored tree's
    // children by what is said) is named by it: the phrase holding the opinion word that most
    // of those units say ("too salty", "not worth the price"), else the opinion itself.
    if dominant != 0 {
        let mut said: HashMap<&str, u32> = HashMap::new();
        for u in &cand.said[range.clone()] {
            for (k, p) in u {
                if *p == dominant {
                    *said.entry(k.as_str()).or_default() += 1;
                }
            }
        }
        let top = said
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .filter(|&(_, n)| n as f64 >= KEYED_SHARE * size);
        if let Some((key, n)) = top {
            let word = key.rsplit(' ').next().unwrap_or(key);
            let french = cand.mostly_french(range.clone());
            // A generic evaluation ("good": great, love, best…) is said in any of its words,
            // and named only with what it is about: a phrase ("great service"), else the
            // aspect ("good customer service"); a bare "love" or "worst" names nothing. Thanks
            // are merged the same way but are named by themselves.
            let is_generic = generic(word, french) == Some(word);
            let names_nothing = is_generic && !matches!(word, "thanks" | "merci");
            // Phrases holding the opinion word (of the child's sentiment or none: `scored` is
            // filtered so), said by enough of its units; multi-word first ("taste great" says
            // more than "great"), then the opinion alone.
            // Phrases said by fewer come after the opinion alone, before a number.
            let mut phrases: Vec<&(bool, f64, &str, u32, u32)> = scored
                .iter()
                .filter(|x| {
                    let stem = |w: &str| w.trim_end_matches('s').to_string();
                    // Keys are stems ("wonder"): a generic word is looked up as shown.
                    let says_generic = is_generic
                        && cand
                            .phrases
                            .display(x.3)
                            .to_lowercase()
                            .split(' ')
                            .any(|w| generic(w, french) == Some(word));
                    (says_generic || x.2.split(' ').any(|w| stem(w) == stem(word)))
                        && x.2.split(' ').count() <= 3
                        && !(names_nothing && !x.2.contains(' '))
                })
                .collect();
            let enough = |x: &(bool, f64, &str, u32, u32)| x.4 as f64 >= KEYED_PHRASE * n as f64;
            // A generic evaluation is named by what it is about: a phrase that names an
            // aspect ("taste is wonderful") before one that does not ("kids love").
            let names_aspect = |x: &(bool, f64, &str, u32, u32)| {
                names_nothing && !super::anchor::families_of(&cand.phrases.display(x.3)).is_empty()
            };
            phrases.sort_by(|a, b| {
                enough(b)
                    .cmp(&enough(a))
                    .then(names_aspect(b).cmp(&names_aspect(a)))
                    .then(b.0.cmp(&a.0))
                    .then(b.4.cmp(&a.4))
                    .then(a.2.cmp(b.2))
            });
            let fewer = phrases
                .iter()
                .position(|x| !enough(x))
                .unwrap_or(phrases.len());
            let display: Vec<String> = phrases.iter().map(|x| cand.phrases.display(x.3)).collect();
            // Taken elsewhere in the tree, the opinion says its aspect ("bland" → "bland
            // packaging", "thanks" → "thanks customer service"; in General "good overall"). A
            // generic evaluation says it before its bare word: "good" alone names nothing.
            let with_parent = if super::anchor::is_general(parent) {
                format!("{key} {}", if french { "en général" } else { "overall" })
            } else {
                let aspect = parent.split(" & ").next().unwrap_or(parent).to_lowercase();
                // A family bad by its name says praise and a generic complaint in its own
                // words: "on time", "long delays" ("good delays" said nothing).
                let good = matches!(key, "good" | "bon");
                let bad = matches!(key, "bad" | "problem" | "mauvais" | "probleme");
                let said = if good || bad {
                    super::anchor::said_of(parent, good, french)
                } else {
                    None
                };
                match (said, key) {
                    (Some(said), _) => said.to_string(),
                    // "booking problem", "problème de livraison".
                    (None, "problem") => format!("{aspect} problem"),
                    (None, "probleme") => format!("problème de {aspect}"),
                    _ => format!("{key} {aspect}"),
                }
            };
            let (first, second) = if names_nothing {
                (with_parent, key.to_string())
            } else {
                (key.to_string(), with_parent)
            };
            let options: Vec<String> = display[..fewer]
                .iter()
                .cloned()
                .chain([first, second])
                .chain(display[fewer..].iter().cloned())
                .collect();
            // Every way of saying it taken (a sibling says it too): named by its other
            // phrases below, as a child no opinion names.
            if let Some(label) = options.iter().find(|l| !taken(l, used)).cloned() {
                used.insert(label.to_lowercase());
                let mut keywords = vec![label.clone()];
                keywords.extend(
                    scored
                        .iter()
                        .map(|x| cand.phrases.display(x.3))
                        .filter(|k| *k != label)
                        .take(4),
                );
                return TreeLabel { label, keywords };
            }
        }
    }
    let french = cand.mostly_french(range.clone());
    // (display, units saying it) of each candidate; the ones that name something first: a
    // phrase, a noun or an opinion word before a lone verb or particle ("supposed", "what's",
    // "off"), and a bare "issue" or "problem" last of all. Under General (units that name no
    // aspect) a complaint or praise group is named by what it says of its sentiment ("not
    // recommend", "disappointed"), before any noun: "salt and other complaints" or "mouth and
    // other complaints" named a word its mixed units happened to share.
    let general = super::anchor::is_general(parent);
    let mut named: Vec<(u8, String, u32)> = scored
        .iter()
        .map(|x| {
            let single = !x.2.contains(' ');
            let noun = cand.nouns.ids.get(x.2).is_some_and(|&id| cand.is_noun(id));
            let pol = cand.phrase_polarity[x.3 as usize];
            let opinion = pol != 0;
            let rank = if single && matches!(generic(x.2, french), Some("problem" | "probleme")) {
                3
            } else if single && !noun && !opinion {
                2
            } else if general && dominant != 0 && pol != dominant {
                1
            } else {
                0
            };
            (rank, cand.phrases.display(x.3), x.4)
        })
        .filter(|n| n.1.to_lowercase() != parent.to_lowercase())
        .collect();
    named.sort_by_key(|n| n.0);
    let named: Vec<(String, u32)> = named.into_iter().map(|n| (n.1, n.2)).collect();
    let names: Vec<String> = named.iter().map(|n| n.0.clone()).collect();
    let rest = match (dominant, french) {
        (-1, false) => "and other complaints",
        (1, false) => "and other praise",
        (_, false) => "and other mentions",
        (-1, true) => "et autres plaintes",
        (1, true) => "et autres éloges",
        (_, true) => "et autres mentions",
    };
    let label = named
        .iter()
        .map(|(l, k)| {
            // A phrase few of the child's units say does not name it: say the rest is there.
            if (*k as f64) < LABEL_COVER * size {
                format!("{l} {rest}")
            } else {
                l.clone()
            }
        })
        .find(|l| !taken(l, used))
        .unwrap_or_else(|| {
            // Nothing it says is its own: the last resort, numbered if need be.
            let other = format!("other {}", parent.to_lowercase());
            if taken(&other, used) {
                unique(&other, used)
            } else {
                other
            }
        });
    used.insert(label.to_lowercase());
    let mut keywords = vec![label.clone()];
    keywords.extend(names.into_iter().filter(|k| *k != label).take(4));
    TreeLabel { label, keywords }
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

    // ---- label_tree ----

    use crate::themes::Polarity::{Negative as Neg, Neutral as Neu, Positive as Pos};

    fn units<'a>(lang: &'a str, xs: &[(&'a str, crate::themes::Polarity)]) -> Vec<UnitText<'a>> {
        xs.iter()
            .map(|&(text, polarity)| UnitText {
                text,
                language: lang,
                polarity,
            })
            .collect()
    }

    /// Packaging (crushed / praised) and taste (salty / delicious), in English.
    fn food_tree() -> Vec<Vec<Vec<UnitText<'static>>>> {
        vec![
            vec![
                units(
                    "en",
                    &[
                        ("The box arrived crushed.", Neg),
                        ("Love it but the packaging arrived crushed", Neg),
                        ("Sadly the box arrived crushed again", Neg),
                        ("my packaging was torn and crushed", Neg),
                    ],
                ),
                units(
                    "en",
                    &[
                        ("Love the sturdy packaging", Pos),
                        ("I love how the packaging keeps it safe", Pos),
                        ("love love love this packaging", Pos),
                    ],
                ),
            ],
            vec![
                units(
                    "en",
                    &[
                        ("The soup is too salty", Neg),
                        ("way too salty for my taste", Neg),
                        ("too salty, the taste is off", Neg),
                    ],
                ),
                units(
                    "en",
                    &[
                        ("The taste is delicious", Pos),
                        ("a delicious taste, I love it", Pos),
                        ("delicious taste and smell", Pos),
                    ],
                ),
            ],
        ]
    }

    #[test]
    fn tree_parents_are_aspect_nouns_not_opinions() {
        let l = label_tree(&food_tree());
        // "love" is the most frequent word of the packaging parent, but no noun.
        assert_eq!(l.parents[0].label, "Packaging", "{l:?}");
        assert_eq!(l.parents[1].label, "Taste", "{l:?}");
        for p in &l.parents {
            assert!(
                !p.keywords.iter().any(|k| k.eq_ignore_ascii_case("love")),
                "{p:?}"
            );
        }
    }

    #[test]
    fn tree_children_are_issue_phrases_for_complaints_and_praise_for_praise() {
        let l = label_tree(&food_tree());
        assert_eq!(l.children[0][0].label, "arrived crushed", "{l:?}");
        assert_eq!(l.children[1][0].label, "too salty", "{l:?}");
        assert_eq!(l.children[1][1].label, "delicious taste", "{l:?}");
        // Praise for packaging: a positive phrase, never the complaint; its units say only
        // "love" (a generic evaluation), so the label says what they love.
        assert_eq!(l.children[0][1].label, "good packaging", "{l:?}");
    }

    #[test]
    fn tree_labels_never_contradict_the_sentiment_mix() {
        // 55% negative price complaints with "good deal" the most frequent phrase.
        let price = units(
            "en",
            &[
                ("good deal at first", Pos),
                ("a good deal, I thought", Pos),
                ("good deal for the size", Pos),
                ("good deal when on sale", Pos),
                ("good deal? the price is too high now", Neg),
                ("price too high for so little", Neg),
                ("the price is too high", Neg),
                ("no longer a good deal, price too high", Neg),
                ("price went up, too high", Neg),
            ],
        );
        let other = units(
            "en",
            &[("the shipping was fast", Pos), ("fast shipping", Pos)],
        );
        let l = label_tree(&[vec![price, other]]);
        let label = &l.children[0][0].label;
        assert_ne!(label, "good deal", "{l:?}");
        assert!(label.contains("too high"), "{l:?}");

        // A mixed child gets a phrase without sentiment words.
        let mixed = units(
            "en",
            &[
                ("the price of the refill pack is great", Pos),
                ("refill pack price is bad", Neg),
                ("refill pack price", Neu),
                ("the refill pack is ok", Neu),
            ],
        );
        let l = label_tree(&[vec![mixed]]);
        assert_eq!(l.children[0][0].label, "refill pack", "{l:?}");
    }

    #[test]
    fn tree_negation_is_read_inside_the_phrase() {
        let cand = |text: &str, lang: &str| {
            let mut r = TreeReader::new();
            let segs = r.read(text, lang == "fr");
            phrase_polarity(&segs[0])
        };
        assert_eq!(cand("not fresh", "en"), -1);
        assert_eq!(cand("not damaged", "en"), 1);
        assert_eq!(cand("fresh", "en"), 1);
        assert_eq!(cand("too sweet", "en"), -1);
        assert_eq!(cand("didn't arrive broken", "en"), 1);
        assert_eq!(cand("pas frais", "fr"), -1);
        assert_eq!(cand("trop salé", "fr"), -1);
        assert_eq!(cand("livraison en retard", "fr"), -1);
        assert_eq!(cand("arrived on time", "en"), 1);
        assert_eq!(cand("never arrived on time", "en"), -1);
        assert_eq!(cand("on hold for an hour", "en"), -1);
        // A mostly negative delivery child is not labelled by its praise.
        let late = units(
            "en",
            &[
                ("it arrived on time", Pos),
                ("arrived on time, thanks", Pos),
                ("the order arrived on time", Pos),
                ("the order arrived a week late", Neg),
                ("order arrived late again", Neg),
                ("my order arrived late", Neg),
                ("order arrived late and cold", Neg),
            ],
        );
        let l = label_tree(&[vec![late]]);
        let label = &l.children[0][0].label;
        assert!(
            label.contains("arrived late") && !label.contains("on time"),
            "{l:?}"
        );
        // A negative child about freshness is "not fresh", never "fresh".
        let stale = units(
            "en",
            &[
                ("the bread was not fresh", Neg),
                ("not fresh at all", Neg),
                ("bread not fresh, stale", Neg),
                ("fresh? no, not fresh", Neg),
            ],
        );
        let l = label_tree(&[vec![stale]]);
        assert_eq!(l.children[0][0].label, "not fresh", "{l:?}");
    }

    #[test]
    fn opinion_cores_read_negation_excess_and_failures() {
        let mut r = OpinionReader::default();
        let keys = |r: &mut OpinionReader, t: &str, fr: bool| r.keys(t, fr);
        assert_eq!(
            keys(&mut r, "Way too salty.", false),
            [("too salty".into(), -1)]
        );
        assert_eq!(
            keys(&mut r, "Not too sweet, just right", false)[0],
            ("not too sweet".into(), 1)
        );
        assert_eq!(
            keys(&mut r, "The chips were not fresh", false),
            [("not fresh".into(), -1)]
        );
        assert_eq!(
            keys(&mut r, "It never arrived", false),
            [("not arrived".into(), -1)]
        );
        assert!(keys(&mut r, "It arrived on Monday", false).is_empty());
        assert_eq!(
            keys(&mut r, "Arrived on time", false),
            [("on time".into(), 1)]
        );
        assert_eq!(
            keys(&mut r, "Left on hold for an hour", false),
            [("on hold".into(), -1)]
        );
        assert!(keys(&mut r, "Stale and bland", false).contains(&("stale".into(), -1)));
        // Generic evaluations are one opinion whatever the word: "great", "love" and "best" say
        // "good", "worst" and "sucks" say "bad", negation kept; specific words stay themselves.
        for (t, k) in [
            ("Great taste", ("good", 1)),
            ("I love the taste", ("good", 1)),
            ("Best coffee ever", ("good", 1)),
            ("Worst customer service", ("bad", -1)),
            ("Your service sucks", ("bad", -1)),
            ("The taste was not great", ("not good", -1)),
            ("Thank you so much", ("thanks", 1)),
            ("Another issue with the app", ("problem", -1)),
            ("Delicious taste", ("delicious", 1)),
        ] {
            assert_eq!(keys(&mut r, t, false), [(k.0.into(), k.1)], "{t}");
        }
        assert_eq!(
            keys(&mut r, "Service nul, vraiment décevant", true),
            [("mauvais".into(), -1)]
        );
        assert_eq!(keys(&mut r, "Excellent café", true), [("bon".into(), 1)]);
        assert_eq!(
            keys(&mut r, "Le colis n'est jamais arrivé", true),
            [("pas arrive".into(), -1)]
        );
    }

    #[test]
    fn an_opinion_taken_elsewhere_in_the_tree_names_its_aspect() {
        // Two aspects whose complaint children both say only "bland": the second says which.
        let tree = vec![
            vec![units(
                "en",
                &[("Bland.", Neg), ("Bland!", Neg), ("So bland.", Neg)],
            )],
            vec![units(
                "en",
                &[
                    ("Box: bland.", Neg),
                    ("The box: bland!", Neg),
                    ("Box: so bland.", Neg),
                ],
            )],
        ];
        let l = label_tree(&tree);
        let (a, b) = (&l.children[0][0].label, &l.children[1][0].label);
        assert_eq!(l.parents[1].label, "Packaging", "{l:?}");
        assert_eq!(
            (a.as_str(), b.as_str()),
            ("bland", "bland packaging"),
            "{l:?}"
        );
    }

    #[test]
    fn a_bare_problem_is_named_by_its_aspect() {
        // Units that say only "issue" / "problem" about the packaging: "packaging problem",
        // never a bare "issue".
        let tree = vec![vec![units(
            "en",
            &[
                ("Box: issue.", Neg),
                ("The box: a problem!", Neg),
                ("Box: problems.", Neg),
            ],
        )]];
        let l = label_tree(&tree);
        assert_eq!(l.parents[0].label, "Packaging", "{l:?}");
        assert_eq!(l.children[0][0].label, "packaging problem", "{l:?}");
    }

    #[test]
    fn a_general_complaint_group_is_named_by_what_it_says_not_by_a_shared_noun() {
        // Units that name no aspect, all about "cookies", no opinion said by half of them:
        // named by an opinion of its sentiment, not by the noun the mixed units share.
        // (General is the one parent of an anchored tree that no aspect family names.)
        let tree = vec![
            vec![units(
                "en",
                &[
                    ("The box arrived crushed.", Neg),
                    ("Crushed box again.", Neg),
                    ("Box crushed in transit.", Neg),
                ],
            )],
            vec![units(
                "en",
                &[
                    ("The chocolate chip cookies melted.", Neg),
                    ("Chocolate chip cookies. Melted again.", Neg),
                    ("Chocolate chip cookies, crumbled.", Neg),
                    ("Chocolate chip cookies: a mess.", Neg),
                    ("Stale chocolate chip cookies.", Neg),
                    ("Chocolate chip cookies for the kids, sadly.", Neg),
                ],
            )],
        ];
        let l = label_tree(&tree);
        assert!(
            super::super::anchor::is_general(&l.parents[1].label),
            "{l:?}"
        );
        let c = &l.children[1][0].label;
        assert!(c.contains("melted") && !c.contains("chip"), "{l:?}");
    }

    #[test]
    fn praise_of_delays_is_being_on_time() {
        // Units that praise how long things took, in generic words: "good delays" would say
        // the opposite of what they mean.
        let tree = vec![vec![units(
            "en",
            &[
                ("Great, the flight was on schedule.", Pos),
                ("Love it, we were on schedule.", Pos),
                ("Departure on schedule, great.", Pos),
            ],
        )]];
        let l = label_tree(&tree);
        assert_eq!(l.parents[0].label, "Delays", "{l:?}");
        assert_eq!(l.children[0][0].label, "on time", "{l:?}");
    }

    #[test]
    fn tree_siblings_and_all_nodes_never_share_a_label() {
        // Two children of one parent saying nearly the same thing.
        let a = units(
            "en",
            &[
                ("late flight again", Neg),
                ("another late flight", Neg),
                ("late flight, missed my connection", Neg),
                ("my flight was late", Neg),
            ],
        );
        let b = units(
            "en",
            &[
                ("late flight tonight", Neg),
                ("late flight and no update", Neg),
                ("late flight, lost my bag", Neg),
                ("no update on the late flight", Neg),
            ],
        );
        let l = label_tree(&[vec![a, b]]);
        let (x, y) = (&l.children[0][0].label, &l.children[0][1].label);
        assert_ne!(x, y, "{l:?}");
        assert!(x == "late flight" || y == "late flight", "{l:?}");
        // Its units name delays ("late"): the parent is the aspect, not the noun "flight".
        assert_eq!(l.parents[0].label, "Delays", "{l:?}");

        let l = label_tree(&food_tree());
        let mut all: Vec<String> = l.parents.iter().map(|p| p.label.to_lowercase()).collect();
        all.extend(l.children.iter().flatten().map(|c| c.label.to_lowercase()));
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "{l:?}");
    }

    #[test]
    fn a_sibling_label_is_never_a_sub_phrase_of_another() {
        assert!(labels_overlap("hold", "hold customer service"));
        assert!(labels_overlap(
            "Late flight",
            "late flight and other complaints"
        ));
        assert!(labels_overlap("on hold", "still on hold"));
        assert!(!labels_overlap("hold", "household"), "words, not letters");
        assert!(!labels_overlap("good taste", "bad taste"));
        // Two complaint children of customer service that both mostly say "on hold" (the
        // anchored tree's children by what is said can do that): the second one to be named
        // must not be "hold customer service" beside "on hold", nor "on hold and other
        // complaints": it is named by what else it says.
        let a = units(
            "en",
            &[
                ("Customer service left me on hold for an hour", Neg),
                ("on hold with customer service again", Neg),
                ("two hours on hold, customer service is a joke", Neg),
                ("on hold forever with your customer service", Neg),
                ("customer service put me on hold", Neg),
            ],
        );
        let b = units(
            "en",
            &[
                ("on hold and then the call dropped", Neg),
                ("call dropped after an hour on hold", Neg),
                ("the call dropped, customer service never called back", Neg),
                ("on hold, call dropped", Neg),
            ],
        );
        let l = label_tree(&[vec![a, b]]);
        let (x, y) = (&l.children[0][0].label, &l.children[0][1].label);
        assert!(!labels_overlap(x, y), "{x:?} / {y:?}: {l:?}");
        assert!(x.contains("hold"), "{l:?}");
        assert!(y.contains("call dropped"), "{l:?}");
    }

    #[test]
    fn tree_french_units_get_french_nouns_and_phrases() {
        let tree = vec![
            vec![units(
                "fr",
                &[
                    ("La livraison en retard, encore.", Neg),
                    ("Livraison en retard de trois jours", Neg),
                    ("ma livraison en retard et aucune nouvelle", Neg),
                    ("les livraisons en retard, c'est pénible", Neg),
                ],
            )],
            vec![
                units(
                    "fr",
                    &[
                        ("Le goût est trop salé", Neg),
                        ("beaucoup trop salé pour moi", Neg),
                        ("un goût trop salé", Neg),
                    ],
                ),
                units(
                    "fr",
                    &[
                        ("Le goût est délicieux", Pos),
                        ("un goût délicieux", Pos),
                        ("goût délicieux, merci", Pos),
                    ],
                ),
            ],
        ];
        let l = label_tree(&tree);
        assert_eq!(l.parents[0].label, "Livraison", "{l:?}");
        assert_eq!(l.parents[1].label, "Goût", "{l:?}");
        assert_eq!(l.children[0][0].label, "livraison en retard", "{l:?}");
        assert_eq!(l.children[1][0].label, "trop salé", "{l:?}");
        assert_eq!(l.children[1][1].label, "goût délicieux", "{l:?}");
    }

    #[test]
    fn tree_plurals_meet_their_singular() {
        assert_eq!(
            singulars("deliveries", false),
            vec!["delivery", "deliverie"]
        );
        assert!(singulars("boxes", false).contains(&"box".to_string()));
        assert!(singulars("glass", false).is_empty());
        assert!(singulars("livraisons", true).contains(&"livraison".to_string()));
        let tree = vec![vec![units(
            "en",
            &[
                ("the widgets were bent", Neg),
                ("both widgets were bent", Neg),
                ("one widget was bent", Neg),
            ],
        )]];
        // No aspect word: the parent is named by its noun, singular.
        assert_eq!(label_tree(&tree).parents[0].label, "Widget");
    }
}
