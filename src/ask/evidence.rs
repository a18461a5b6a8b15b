//! Evidence first: what the data says about a why/what question before any model runs.
//!
//! Why: a generated paragraph is only as good as what it summarises, and a CX analyst must be
//! able to check it. So the answer starts from numbers the store holds: the retrieved verbatims'
//! most relevant opinion unit (the unit closest to the question, so "great taste but arrived
//! crushed" counts for delivery by its second half), the aspect parent and child that unit falls
//! in, how many retrieved verbatims each holds (and the node's size in the caller's scope), the
//! sentiment mix of those units, and two or three quotes with the unit marked inside its
//! verbatim. Nothing here is generated; the model (when there is one) only summarises this.
//!
//! Grouping, in order of what exists: the **aspect tree** (`P…`/`C…`, the last tree run); else the
//! **topic themes** (`T…`, the last theme run); else the hits alone, as one group. The tree or the
//! themes are read as stored — `ask` never runs them (a run takes seconds to minutes; evidence
//! must come within a second), so the evidence says which run it used.
//!
//! Sentiment is the unit sentiment ([`crate::sentiment::unit`]): the score stored by the tree
//! run when the unit is placed there, else computed from the unit's vector with the workspace's
//! head, else (no head) the lexicon rule alone with the same neutral band as the shipped heads
//! ([`RULE_ONLY_BAND`]). Quotes are *polarity-led*: the group's majority polarity first (ties go
//! to negative), units with the question's topic words first, then by closeness to the
//! question; a substantial other side ([`MINORITY_SHARE`]) gets the last quote.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::embed::{Embedder, TextKind};
use crate::lang::Lang;
use crate::retrieve::Hit;
use crate::sentiment::SentimentHead;
use crate::store::{Filter, Store};
use crate::themes::aspect::{node_id, node_label};
use crate::themes::units::split;
use crate::themes::Polarity;

use super::AskError;

/// Neutral band of the lexicon-only score when the workspace has no sentiment head (the shipped
/// heads use 0.2 too).
pub const RULE_ONLY_BAND: f32 = 0.2;
/// Quotes per group at most.
pub const QUOTES: usize = 3;
/// The other side (positive against a negative lead, or the reverse) is quoted once when it
/// holds at least this share of a group's positive and negative units.
pub const MINORITY_SHARE: f64 = 0.3;
/// Groups (parents, themes) shown at most; the rest are summed as "elsewhere".
pub const GROUPS: usize = 5;
/// Children shown per parent at most.
pub const CHILDREN: usize = 3;

/// What the evidence is grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// The aspect tree's parents and children (`P…`/`C…`).
    Aspects,
    /// Topic themes (`T…`): no tree run yet.
    Themes,
    /// No theme run at all: the hits as one group.
    Hits,
}

/// Counts of retrieved units by polarity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Mix {
    /// Positive units.
    pub positive: usize,
    /// Neutral units.
    pub neutral: usize,
    /// Negative units.
    pub negative: usize,
}

impl Mix {
    fn add(&mut self, p: Polarity) {
        match p {
            Polarity::Positive => self.positive += 1,
            Polarity::Neutral => self.neutral += 1,
            Polarity::Negative => self.negative += 1,
        }
    }
    /// The majority polarity (ties: negative, then positive).
    pub fn lead(&self) -> Polarity {
        if self.negative >= self.positive && self.negative >= self.neutral {
            Polarity::Negative
        } else if self.positive >= self.neutral {
            Polarity::Positive
        } else {
            Polarity::Neutral
        }
    }
}

/// One quote: a unit marked inside its verbatim.
#[derive(Clone, Debug, Serialize)]
pub struct Quote {
    /// The verbatim's number among the answer's sources (`[n]`).
    pub n: usize,
    /// The verbatim's id.
    pub id: String,
    /// First byte of the unit in the verbatim's (redacted) text.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// The unit's text.
    pub unit: String,
    /// The verbatim around it (cut to about [`CONTEXT_CHARS`] characters each side), the unit
    /// between `**`.
    pub marked: String,
    /// The unit's polarity.
    pub polarity: Polarity,
    /// Its score in [−1, 1].
    pub score: f32,
    #[serde(skip)]
    hit: usize,
}

/// Characters of the verbatim kept on each side of a quoted unit.
pub const CONTEXT_CHARS: usize = 90;
/// Characters of a quoted unit shown at most (a long unit is cut, with `…`).
pub const UNIT_CHARS: usize = 240;
/// Added to a unit's cosine to the question when the unit has one of the question's topic
/// words: "Why are customers unhappy with delivery?" quotes the part of a review about delivery
/// rather than its "unhappy customer" line.
pub const TOPIC_BONUS: f32 = 0.1;

fn has_topic(terms: &HashSet<String>, unit: &str) -> bool {
    !terms.is_empty()
        && [Lang::En, Lang::Fr].into_iter().any(|l| {
            super::phrase::terms(l, unit)
                .iter()
                .any(|t| terms.contains(t))
        })
}

/// A group of the evidence: an aspect parent (with its children), a child, a theme, or the hits.
#[derive(Clone, Debug, Serialize)]
pub struct Group {
    /// `P3`, `C12`, `T4`; `other` for units in no node or theme; `hits` for [`Basis::Hits`].
    pub id: String,
    /// Its label.
    pub label: String,
    /// Retrieved verbatims whose most relevant unit is here.
    pub verbatims: usize,
    /// `verbatims` over the retrieved verbatims.
    pub share_of_retrieved: f64,
    /// The node's (theme's) verbatims in the caller's scope, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_scope: Option<usize>,
    /// `in_scope` over the verbatims in scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_of_scope: Option<f64>,
    /// Sentiment of the retrieved units here.
    pub sentiment: Mix,
    /// Two or three quotes, polarity-led.
    pub quotes: Vec<Quote>,
    /// A parent's children (aspects only), largest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Group>,
}

/// The evidence of a why/what question.
#[derive(Clone, Debug, Serialize)]
pub struct Evidence {
    /// What the groups are.
    pub basis: Basis,
    /// Verbatims retrieved (the denominator of `share_of_retrieved`).
    pub retrieved: usize,
    /// Verbatims in the caller's scope (the denominator of `share_of_scope`).
    pub in_scope: usize,
    /// Sentiment of every retrieved verbatim's most relevant unit.
    pub sentiment: Mix,
    /// When the question asks about a problem (or about what is liked): the groups are of the
    /// retrieved verbatims whose relevant unit has that polarity only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub focus: Option<Focus>,
    /// Groups, largest first (at most [`GROUPS`]).
    pub groups: Vec<Group>,
    /// Retrieved verbatims in groups not shown.
    pub elsewhere: usize,
    /// Seconds from the question to the evidence (retrieval included).
    pub elapsed_s: f64,
}

/// The side a question takes: "why are customers unhappy with delivery?" asks about the
/// complaints, not the praise the same words also retrieve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Focus {
    /// The polarity the question asks about (negative or positive).
    pub polarity: Polarity,
    /// Retrieved verbatims of that polarity: the denominator of the groups' shares.
    pub verbatims: usize,
}

/// The polarity a question asks about, from its opinion words alone (the lexicon rule,
/// [`crate::sentiment::rule::score`], negation-aware): "unhappy", "complaints", "déçus" ask
/// about problems, "love" about what is liked; `None` when it has none ("what do people say
/// about the battery?"). Not the sentiment head: a question is not an opinion, and the head
/// reads "What do people say about delivery?" as praise.
pub fn question_focus(question: &str) -> Option<Polarity> {
    let s = crate::sentiment::rule::score(question).score;
    Some(crate::sentiment::band_polarity(s, RULE_ONLY_BAND)).filter(|p| *p != Polarity::Neutral)
}

/// A retrieved verbatim's most relevant unit.
#[derive(Clone, Copy)]
struct Picked {
    hit: usize,
    doc: i64,
    start: usize,
    end: usize,
    cosine: f32,
    /// Whether the unit holds one of the question's topic words.
    on_topic: bool,
    score: f32,
    polarity: Polarity,
    /// (parent, child) in the tree, or the theme.
    parent: Option<i64>,
    child: Option<i64>,
}

/// Builds the evidence from `hits` (rank order). `qv` is the vector of the question's topic and
/// `topic` its topic words ([`super::route::topic_words`]); `scope` the caller's filter (grant
/// applied); `head` the workspace's sentiment head, when it has one; `focus` the polarity the
/// question asks about ([`question_focus`]): when at least two retrieved verbatims have it, the
/// groups are of those only (the overall mix is still given). Units missing from the store (a
/// verbatim no theme run has seen) are split and embedded here.
#[allow(clippy::too_many_arguments)]
pub fn gather(
    store: &Store,
    embedder: &dyn Embedder,
    hits: &[Hit],
    qv: &[f32],
    topic: &str,
    scope: &Filter,
    head: Option<&SentimentHead>,
    focus: Option<Polarity>,
) -> Result<Evidence, AskError> {
    let docs: Vec<i64> = hits.iter().map(|h| h.verbatim.doc).collect();
    let mut units = store.units_of(&docs)?;
    // Verbatims without stored units: split and embed them now (one batch).
    let missing: Vec<usize> = (0..hits.len())
        .filter(|&i| !units.contains_key(&docs[i]))
        .collect();
    if !missing.is_empty() {
        let spans: Vec<(usize, Vec<crate::themes::units::UnitSpan>)> = missing
            .iter()
            .map(|&i| (i, split(&hits[i].verbatim.text)))
            .collect();
        let texts: Vec<&str> = spans
            .iter()
            .flat_map(|(i, s)| s.iter().map(|u| u.slice(&hits[*i].verbatim.text)))
            .collect();
        let mut vecs = if texts.is_empty() {
            Vec::new()
        } else {
            embedder.embed(&texts, TextKind::Passage)?
        }
        .into_iter();
        for (i, s) in spans {
            let list = s
                .iter()
                .enumerate()
                .map(|(idx, u)| crate::store::StoredUnit {
                    idx,
                    start: u.start,
                    end: u.end,
                    vector: vecs.next().unwrap_or_default(),
                    sentiment: None,
                })
                .collect();
            units.insert(docs[i], list);
        }
    }
    let topic_terms: HashSet<String> = {
        let (en, fr) = crate::index::TextIndex::query_terms(topic);
        en.into_iter().chain(fr).collect()
    };
    let tree_nodes = store.aspect_nodes()?;
    let has_tree = tree_nodes
        .iter()
        .any(|n| n.is_parent && n.state == crate::store::ThemeState::Active);
    let scorer = Scorer::new(store, head, has_tree)?;
    let mut picked: Vec<Picked> = Vec::new();
    for (i, h) in hits.iter().enumerate() {
        let text = &h.verbatim.text;
        let list = units.get(&docs[i]).map(Vec::as_slice).unwrap_or(&[]);
        // The unit closest to the question, a unit with one of its topic words first.
        let best = list
            .iter()
            .filter(|u| !u.vector.is_empty() && u.end <= text.len())
            .map(|u| {
                let c = crate::vecmath::dot(qv, &u.vector);
                let on_topic = has_topic(&topic_terms, &text[u.start..u.end]);
                (c + if on_topic { TOPIC_BONUS } else { 0.0 }, c, u, on_topic)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.2.idx.cmp(&a.2.idx)))
            .map(|(_, c, u, t)| (c, u, t));
        let on_topic =
            best.is_some_and(|b| b.2) || (best.is_none() && has_topic(&topic_terms, text));
        let (cosine, start, end, score, at) = match best {
            Some((c, u, _)) => (
                c,
                u.start,
                u.end,
                scorer.score(docs[i], u, text),
                scorer.place(docs[i], u),
            ),
            None => (
                h.cosine.unwrap_or(0.0),
                0,
                text.len(),
                crate::sentiment::rule::score(text).score,
                None,
            ),
        };
        picked.push(Picked {
            hit: i,
            doc: docs[i],
            start,
            end,
            cosine,
            on_topic,
            score,
            polarity: scorer.polarity(score),
            parent: at.and_then(|p| p.parent),
            child: at.and_then(|p| p.child),
        });
    }
    let in_scope_docs = scope_docs(store, scope)?;
    let mut sentiment = Mix::default();
    for p in &picked {
        sentiment.add(p.polarity);
    }
    let focus = focus
        .map(|f| Focus {
            polarity: f,
            verbatims: picked.iter().filter(|p| p.polarity == f).count(),
        })
        .filter(|f| f.verbatims >= 2);
    if let Some(f) = focus {
        picked.retain(|p| p.polarity == f.polarity);
    }
    let any_placed = picked.iter().any(|p| p.parent.is_some());
    let (basis, mut groups) = if has_tree && any_placed {
        (
            Basis::Aspects,
            aspect_groups(store, &tree_nodes, &picked, hits, &in_scope_docs)?,
        )
    } else {
        let members = store.theme_members()?;
        if members.iter().any(|m| m.theme.is_some()) {
            let theme_of: HashMap<i64, i64> = members
                .iter()
                .filter_map(|m| m.theme.map(|t| (m.doc, t)))
                .collect();
            for p in &mut picked {
                p.parent = theme_of.get(&p.doc).copied();
            }
            let labels: HashMap<i64, String> = store
                .themes()?
                .into_iter()
                .map(|t| (t.id, t.user_label.clone().unwrap_or(t.label)))
                .collect();
            let mut sizes: HashMap<i64, usize> = HashMap::new();
            for (d, t) in &theme_of {
                if in_scope_docs.contains(d) {
                    *sizes.entry(*t).or_default() += 1;
                }
            }
            let by: BTreeMap<Option<i64>, Vec<&Picked>> = group_by(&picked, |p| p.parent);
            let groups = by
                .into_iter()
                .map(|(t, ps)| {
                    let (id, label, size) = match t {
                        Some(t) => (
                            format!("T{t}"),
                            labels.get(&t).cloned().unwrap_or_default(),
                            Some(sizes.get(&t).copied().unwrap_or(0)),
                        ),
                        None => ("other".into(), "in no theme".into(), None),
                    };
                    group(id, label, &ps, hits, size, in_scope_docs.len())
                })
                .collect();
            (Basis::Themes, groups)
        } else {
            let all: Vec<&Picked> = picked.iter().collect();
            (
                Basis::Hits,
                vec![group(
                    "hits".into(),
                    "the most relevant verbatims".into(),
                    &all,
                    hits,
                    None,
                    in_scope_docs.len(),
                )],
            )
        }
    };
    sort_groups(&mut groups);
    let shown: usize = groups.iter().take(GROUPS).map(|g| g.verbatims).sum();
    groups.truncate(GROUPS);
    // Shares are of the verbatims grouped (all retrieved, or those of the focus).
    let grouped = picked.len();
    let share = |n: usize| round4(n as f64 / grouped.max(1) as f64);
    for g in &mut groups {
        g.share_of_retrieved = share(g.verbatims);
        for c in &mut g.children {
            c.share_of_retrieved = share(c.verbatims);
        }
    }
    Ok(Evidence {
        basis,
        retrieved: hits.len(),
        in_scope: in_scope_docs.len(),
        sentiment,
        focus,
        elsewhere: grouped.saturating_sub(shown),
        groups,
        elapsed_s: 0.0,
    })
}

/// Unit sentiment as the evidence reads it: the tree run's stored score for a unit it placed,
/// else the head on the unit's vector (with the lexicon rule), else the rule alone.
pub(super) struct Scorer<'h> {
    placed: HashMap<(i64, usize), crate::store::AspectUnit>,
    head: Option<&'h SentimentHead>,
}

impl<'h> Scorer<'h> {
    /// `tree`: read the last tree run's unit places (when there is an active tree).
    pub(super) fn new(
        store: &Store,
        head: Option<&'h SentimentHead>,
        tree: bool,
    ) -> Result<Self, AskError> {
        let placed = if tree {
            store
                .aspect_units()?
                .into_iter()
                .map(|u| ((u.doc, u.idx), u))
                .collect()
        } else {
            HashMap::new()
        };
        Ok(Scorer { placed, head })
    }

    /// The unit's place in the tree, when the last run placed this very span.
    pub(super) fn place(
        &self,
        doc: i64,
        u: &crate::store::StoredUnit,
    ) -> Option<&crate::store::AspectUnit> {
        self.placed
            .get(&(doc, u.idx))
            .filter(|p| p.start == u.start && p.end == u.end)
    }

    /// The unit's score in [−1, 1]; `text` is its verbatim's.
    pub(super) fn score(&self, doc: i64, u: &crate::store::StoredUnit, text: &str) -> f32 {
        let unit_text = text.get(u.start..u.end).unwrap_or(text);
        match (self.place(doc, u), self.head) {
            (Some(p), _) => p.score,
            (None, Some(h)) if !u.vector.is_empty() => {
                crate::sentiment::unit(h, unit_text, &u.vector).score
            }
            _ => crate::sentiment::rule::score(unit_text).score,
        }
    }

    /// Polarity of a score, with the head's neutral band (or [`RULE_ONLY_BAND`]).
    pub(super) fn polarity(&self, s: f32) -> Polarity {
        crate::sentiment::band_polarity(s, self.head.map_or(RULE_ONLY_BAND, |h| h.neutral_band))
    }
}

/// The docs of the verbatims in scope.
pub(super) fn scope_docs(store: &Store, scope: &Filter) -> Result<HashSet<i64>, AskError> {
    Ok(if scope.is_empty() {
        store.all_docs()?.into_iter().collect()
    } else {
        store
            .filtered_vectors(scope)?
            .into_iter()
            .map(|(d, _, _)| d)
            .collect()
    })
}

fn group_by<K: Ord>(picked: &[Picked], key: impl Fn(&Picked) -> K) -> BTreeMap<K, Vec<&Picked>> {
    let mut by: BTreeMap<K, Vec<&Picked>> = BTreeMap::new();
    for p in picked {
        by.entry(key(p)).or_default().push(p);
    }
    by
}

fn sort_groups(groups: &mut [Group]) {
    // Largest first; "other" last among equals; then by id for a stable order.
    groups.sort_by(|a, b| {
        b.verbatims
            .cmp(&a.verbatims)
            .then((a.id == "other").cmp(&(b.id == "other")))
            .then(a.id.cmp(&b.id))
    });
}

/// Parents (with their children) from the tree; sizes in scope from the stored unit places.
fn aspect_groups(
    store: &Store,
    nodes: &[crate::store::AspectNode],
    picked: &[Picked],
    hits: &[Hit],
    in_scope: &HashSet<i64>,
) -> Result<Vec<Group>, AskError> {
    let mut size: HashMap<i64, HashSet<i64>> = HashMap::new();
    for u in store.aspect_units()? {
        if !in_scope.contains(&u.doc) {
            continue;
        }
        for id in [u.parent, u.child].into_iter().flatten() {
            size.entry(id).or_default().insert(u.doc);
        }
    }
    let node = |id: i64| nodes.iter().find(|n| n.id == id);
    let total = in_scope.len();
    let mut groups = Vec::new();
    for (parent, ps) in group_by(picked, |p| p.parent) {
        let Some(pn) = parent.and_then(node) else {
            groups.push(group(
                "other".into(),
                "in no aspect".into(),
                &ps,
                hits,
                None,
                total,
            ));
            continue;
        };
        let n_size = size.get(&pn.id).map_or(0, HashSet::len);
        let mut g = group(
            node_id(pn),
            node_label(pn).to_string(),
            &ps,
            hits,
            Some(n_size),
            total,
        );
        let owned: Vec<Picked> = ps.iter().map(|p| **p).collect();
        for (child, cs) in group_by(&owned, |p| p.child) {
            if let Some(cn) = child.and_then(node) {
                let c_size = size.get(&cn.id).map_or(0, HashSet::len);
                g.children.push(group(
                    node_id(cn),
                    node_label(cn).to_string(),
                    &cs,
                    hits,
                    Some(c_size),
                    total,
                ));
            }
        }
        sort_groups(&mut g.children);
        g.children.truncate(CHILDREN);
        groups.push(g);
    }
    Ok(groups)
}

fn group(
    id: String,
    label: String,
    ps: &[&Picked],
    hits: &[Hit],
    in_scope: Option<usize>,
    scope_total: usize,
) -> Group {
    let mut mix = Mix::default();
    for p in ps {
        mix.add(p.polarity);
    }
    let quotes = pick_quotes(ps, hits, &mix)
        .into_iter()
        .map(|p| quote(p, &hits[p.hit].verbatim.text, &hits[p.hit].verbatim.id))
        .collect();
    let retrieved = hits.len().max(1);
    Group {
        id,
        label,
        verbatims: ps.len(),
        share_of_retrieved: round4(ps.len() as f64 / retrieved as f64),
        in_scope,
        share_of_scope: in_scope.map(|s| round4(s as f64 / scope_total.max(1) as f64)),
        sentiment: mix,
        quotes,
        children: Vec::new(),
    }
}

/// The quotes of a group, at most [`QUOTES`], each verbatim once (the same review posted twice
/// is one quote): units of the group's lead polarity first, among them those holding a topic word
/// of the question, then the closest to it. When the other side (positive against negative) holds
/// at least [`MINORITY_SHARE`] of the group's opinionated units, its best unit takes the last
/// place: a group that is 6 positive / 5 negative is not quoted as praise only.
fn pick_quotes<'p>(ps: &[&'p Picked], hits: &[Hit], mix: &Mix) -> Vec<&'p Picked> {
    let lead = mix.lead();
    let rank = |a: &&Picked, b: &&Picked| {
        b.on_topic
            .cmp(&a.on_topic)
            .then(b.cosine.total_cmp(&a.cosine))
            .then(a.hit.cmp(&b.hit))
    };
    let mut order: Vec<&Picked> = ps.to_vec();
    order.sort_by(|a, b| {
        (b.polarity == lead)
            .cmp(&(a.polarity == lead))
            .then(rank(a, b))
    });
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out: Vec<&Picked> = order
        .iter()
        .copied()
        .filter(|p| seen.insert(hits[p.hit].verbatim.text.trim()))
        .take(QUOTES)
        .collect();
    let other = match lead {
        Polarity::Positive => Some((Polarity::Negative, mix.negative)),
        Polarity::Negative => Some((Polarity::Positive, mix.positive)),
        Polarity::Neutral => None,
    };
    let opinionated = (mix.positive + mix.negative) as f64;
    if let Some((side, n)) = other {
        let significant = n >= 2 && n as f64 >= MINORITY_SHARE * opinionated;
        if significant && out.len() == QUOTES && !out.iter().any(|p| p.polarity == side) {
            let shown: HashSet<&str> = out[..QUOTES - 1]
                .iter()
                .map(|p| hits[p.hit].verbatim.text.trim())
                .collect();
            let mut best: Vec<&Picked> = order
                .iter()
                .copied()
                .filter(|p| p.polarity == side && !shown.contains(hits[p.hit].verbatim.text.trim()))
                .collect();
            best.sort_by(rank);
            if let Some(b) = best.first() {
                out[QUOTES - 1] = b;
            }
        }
    }
    out
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn quote(p: &Picked, text: &str, id: &str) -> Quote {
    Quote {
        n: p.hit + 1,
        id: id.to_string(),
        start: p.start,
        end: p.end,
        unit: text[p.start..p.end].trim().to_string(),
        marked: mark(text, p.start, p.end),
        polarity: p.polarity,
        score: (p.score * 1e4).round() / 1e4,
        hit: p.hit,
    }
}

/// The verbatim with `start..end` between `**`, cut to [`CONTEXT_CHARS`] characters each side
/// (at a word boundary, with `…`), on one line.
pub fn mark(text: &str, start: usize, end: usize) -> String {
    let before = &text[..start];
    let unit = text[start..end].trim();
    let after = &text[end..];
    let left: String = {
        let chars: Vec<char> = before.chars().collect();
        if chars.len() <= CONTEXT_CHARS {
            before.to_string()
        } else {
            let tail: String = chars[chars.len() - CONTEXT_CHARS..].iter().collect();
            let cut = tail.find(' ').map_or(tail.as_str(), |i| &tail[i + 1..]);
            format!("…{cut}")
        }
    };
    let right: String = {
        let chars: Vec<char> = after.chars().collect();
        if chars.len() <= CONTEXT_CHARS {
            after.to_string()
        } else {
            let head: String = chars[..CONTEXT_CHARS].iter().collect();
            let cut = head.rfind(' ').map_or(head.as_str(), |i| &head[..i]);
            format!("{cut}…")
        }
    };
    let one = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (l, r) = (one(&left), one(&right));
    let sep_l = if l.is_empty() { "" } else { " " };
    let sep_r = if r.is_empty() || r.starts_with(['.', ',', '!', '?', ';', ':']) {
        ""
    } else {
        " "
    };
    let unit = one(unit);
    let unit = match unit.char_indices().nth(UNIT_CHARS) {
        Some((i, _)) => {
            let cut = unit[..i].rfind(' ').unwrap_or(i);
            format!("{}…", &unit[..cut])
        }
        None => unit,
    };
    format!("{l}{sep_l}**{unit}**{sep_r}{r}")
}

impl Evidence {
    /// Quotes in the order shown (groups, then their children), each verbatim once: the
    /// verbatims the answer cites, and the only ones the model is given.
    pub fn quoted_hits(&self) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for g in &self.groups {
            for q in g
                .quotes
                .iter()
                .chain(g.children.iter().flat_map(|c| &c.quotes))
            {
                if !out.contains(&q.hit) {
                    out.push(q.hit);
                }
            }
        }
        out
    }

    /// Keeps the quotes of the first `n` quoted verbatims (in the order shown: [`Self::quoted_hits`])
    /// and drops the others: `ask --limit` bounds the verbatims the answer quotes and the model
    /// is given. Counts, shares and mixes are untouched (they are of every retrieved verbatim).
    pub fn limit_quotes(&mut self, n: usize) {
        let keep: HashSet<usize> = self.quoted_hits().into_iter().take(n).collect();
        for g in &mut self.groups {
            g.quotes.retain(|q| keep.contains(&q.hit));
            for c in &mut g.children {
                c.quotes.retain(|q| keep.contains(&q.hit));
            }
        }
    }

    /// Renumbers every quote: `map[hit]` is its verbatim's number among the answer's sources.
    pub fn renumber(&mut self, map: &HashMap<usize, usize>) {
        for g in &mut self.groups {
            for q in g
                .quotes
                .iter_mut()
                .chain(g.children.iter_mut().flat_map(|c| c.quotes.iter_mut()))
            {
                if let Some(&n) = map.get(&q.hit) {
                    q.n = n;
                }
            }
        }
    }

    /// The evidence as lines, in the question's language (streamed before any model runs).
    pub fn lines(&self, lang: Lang) -> Vec<String> {
        let fr = lang == Lang::Fr;
        let pct = |x: f64| format!("{:.0}%", 100.0 * x);
        let mix = |m: &Mix| {
            if fr {
                format!(
                    "{} négatif(s), {} neutre(s), {} positif(s)",
                    m.negative, m.neutral, m.positive
                )
            } else {
                format!(
                    "{} negative, {} neutral, {} positive",
                    m.negative, m.neutral, m.positive
                )
            }
        };
        let by = match (self.basis, fr) {
            (Basis::Aspects, false) => "by aspect (the last `themes` run's tree)",
            (Basis::Aspects, true) => "par aspect (l'arbre du dernier `themes`)",
            (Basis::Themes, false) => "by theme (the last topic-theme run; no aspect tree yet)",
            (Basis::Themes, true) => {
                "par thème (le dernier calcul des thèmes ; pas encore d'arbre des aspects)"
            }
            (Basis::Hits, false) => "(no theme run yet: `verbatim themes` groups them)",
            (Basis::Hits, true) => "(aucun thème calculé : `verbatim themes` les regroupe)",
        };
        let focus = self.focus.map(|f| {
            let (word, why) = match (f.polarity, fr) {
                (Polarity::Positive, false) => ("positive", "what is liked"),
                (Polarity::Positive, true) => ("positifs", "ce qui plaît"),
                (_, false) => ("negative", "a problem"),
                (_, true) => ("négatifs", "un problème"),
            };
            (f.verbatims, word, why)
        });
        let mut head = if fr {
            format!(
                "Ce que disent les données — les {} avis les plus pertinents sur {} dans le périmètre, {by} ; sentiment de la partie pertinente de chaque avis : {}.",
                self.retrieved,
                self.in_scope,
                mix(&self.sentiment)
            )
        } else {
            format!(
                "Evidence from the data — the {} most relevant of {} verbatims in scope, {by}; sentiment of each one's relevant part: {}.",
                self.retrieved,
                self.in_scope,
                mix(&self.sentiment)
            )
        };
        if let Some((n, word, why)) = focus {
            head.push_str(&if fr {
                format!(" La question porte sur {why} : ci-dessous, les {n} avis {word} seulement.")
            } else {
                format!(" The question asks about {why}: below, the {n} {word} ones only.")
            });
        }
        let mut out = vec![head];
        let (denominator, of_what) = match focus {
            Some((n, word, _)) if fr => (n, format!("avis {word} retrouvés")),
            Some((n, word, _)) => (n, format!("{word} retrieved")),
            None if fr => (self.retrieved, "avis retrouvés".to_string()),
            None => (self.retrieved, "retrieved".to_string()),
        };
        let describe = |g: &Group, indent: &str, out: &mut Vec<String>| {
            let size = match (g.in_scope, g.share_of_scope) {
                (Some(s), Some(sh)) if fr => {
                    format!(" ; {s} avis en tout dans le périmètre ({})", pct(sh))
                }
                (Some(s), Some(sh)) => format!("; {s} verbatims in scope in all ({})", pct(sh)),
                _ => String::new(),
            };
            out.push(if fr {
                format!(
                    "{indent}{} « {} » — {} des {denominator} {of_what} ({}){size} ; {}.",
                    g.id,
                    g.label,
                    g.verbatims,
                    pct(g.share_of_retrieved),
                    mix(&g.sentiment)
                )
            } else {
                format!(
                    "{indent}{} \"{}\" — {} of the {denominator} {of_what} ({}){size}; {}.",
                    g.id,
                    g.label,
                    g.verbatims,
                    pct(g.share_of_retrieved),
                    mix(&g.sentiment)
                )
            });
            for q in &g.quotes {
                out.push(format!(
                    "{indent}    [{}] ({}) {}",
                    q.n,
                    polarity_word(q.polarity, fr),
                    q.marked
                ));
            }
        };
        for g in &self.groups {
            describe(g, "", &mut out);
            for c in shown_children(g) {
                describe(&c, "  ", &mut out);
            }
        }
        if self.elsewhere > 0 {
            out.push(if fr {
                format!(
                    "… et {} autre(s) avis retrouvé(s) ailleurs.",
                    self.elsewhere
                )
            } else {
                format!("… and {} more retrieved elsewhere.", self.elsewhere)
            });
        }
        out
    }

    /// The evidence as the model's prompt: the quoted units, one per line, each behind its
    /// number (`[n] text`), by number, each verbatim once. Not the groups' labels and counts:
    /// SmolLM2-135M echoed those lines ("Amazon: 29 verbatims (14 negative…)") and took their
    /// list numbers for citations, and the analyst has them already, first. A quote the model
    /// copies under its number is true and can be checked; one copied under another number is
    /// dropped by the support check like any unsupported sentence.
    pub fn prompt(&self) -> String {
        let mut s = String::from("Quotes from customer feedback:\n");
        for (n, unit) in self.quotes_in_order() {
            s.push_str(&format!(
                "[{n}] {}\n",
                unit.replace(['\n', '"'], " ").trim()
            ));
        }
        s
    }

    /// What the model is asked after the quotes and the question: short sentences, each saying
    /// what a quote says in its words (words the support check finds) and ending with its
    /// number; the example is the first quote itself, so copying it gives a true sentence.
    pub fn instruction(&self, fr: bool) -> String {
        let example = match self.quotes_in_order().first() {
            Some((n, u)) => format!(
                ", like this: {} [{n}].",
                u.replace(['\n', '"'], " ")
                    .trim()
                    .trim_end_matches(['.', '!', '?', '…'])
            ),
            None => ".".into(),
        };
        format!(
            "Answer in 2 or 3 short sentences{}. Each sentence says what one quote says, in its words, and ends with the quote's number in square brackets{example}",
            if fr { ", in French" } else { "" }
        )
    }

    /// (number, unit) of every quote, by number, each verbatim once.
    fn quotes_in_order(&self) -> Vec<(usize, String)> {
        let mut qs: Vec<(usize, String)> = Vec::new();
        for g in &self.groups {
            for q in g
                .quotes
                .iter()
                .chain(g.children.iter().flat_map(|c| &c.quotes))
            {
                if !qs.iter().any(|(n, _)| *n == q.n) {
                    qs.push((q.n, q.unit.clone()));
                }
            }
        }
        qs.sort_by_key(|(n, _)| *n);
        qs
    }
}

/// A parent's children as shown: none when its only child is the parent itself (same
/// verbatims); each without the quotes its parent already shows.
fn shown_children(g: &Group) -> Vec<Group> {
    if g.children.len() == 1 && g.children[0].verbatims == g.verbatims {
        return Vec::new();
    }
    g.children
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.quotes
                .retain(|q| !g.quotes.iter().any(|p| p.id == q.id && p.start == q.start));
            c
        })
        .collect()
}

fn polarity_word(p: Polarity, fr: bool) -> &'static str {
    match (p, fr) {
        (Polarity::Positive, false) => "positive",
        (Polarity::Neutral, false) => "neutral",
        (Polarity::Negative, false) => "negative",
        (Polarity::Positive, true) => "positif",
        (Polarity::Neutral, true) => "neutre",
        (Polarity::Negative, true) => "négatif",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_is_marked_inside_its_verbatim_and_cut_at_words() {
        let t = "Great taste. But the box arrived crushed and late.";
        let s = t.find("But").unwrap();
        assert_eq!(
            mark(t, s, t.len()),
            "Great taste. **But the box arrived crushed and late.**"
        );
        let long = format!(
            "{} the unit here. {}",
            "word ".repeat(40),
            "tail ".repeat(40)
        );
        let s = long.find("the unit").unwrap();
        let m = mark(&long, s, s + "the unit here.".len());
        assert!(m.starts_with('…') && m.ends_with('…'), "{m}");
        assert!(m.contains("**the unit here.**"), "{m}");
        assert!(!m.contains("  "));
    }

    fn hit(i: usize, text: &str) -> Hit {
        let mut h = crate::retrieve::test_hit(&format!("v{i}"), text);
        h.rank = i + 1;
        h.verbatim.doc = i as i64;
        h
    }

    fn picked(hit: usize, polarity: Polarity, on_topic: bool, cosine: f32) -> Picked {
        Picked {
            hit,
            doc: hit as i64,
            start: 0,
            end: 1,
            cosine,
            on_topic,
            score: 0.0,
            polarity,
            parent: None,
            child: None,
        }
    }

    #[test]
    fn quotes_lead_with_on_topic_units_and_give_a_substantial_other_side_a_place() {
        use Polarity::{Negative as N, Positive as P};
        let hits: Vec<Hit> = (0..7).map(|i| hit(i, &format!("text {i}"))).collect();
        // "What do people say about the battery?": 4 positive, 3 negative units.
        let ps = [
            picked(0, P, false, 0.60), // close to the question, no "battery"
            picked(1, P, true, 0.40),  // "battery", positive
            picked(2, P, false, 0.55),
            picked(3, P, true, 0.35),
            picked(4, N, true, 0.50), // "Disappointed with battery."
            picked(5, N, true, 0.45),
            picked(6, N, false, 0.70),
        ];
        let refs: Vec<&Picked> = ps.iter().collect();
        let mut mix = Mix::default();
        for p in &ps {
            mix.add(p.polarity);
        }
        let ids = |q: Vec<&Picked>| q.iter().map(|p| p.hit).collect::<Vec<_>>();
        // Lead positive: the two on-topic positives, then the best on-topic negative (3 of 7
        // opinionated units is over the minority share).
        assert_eq!(ids(pick_quotes(&refs, &hits, &mix)), [1, 3, 4]);
        // A lone negative among positives does not take a place.
        let few: Vec<&Picked> = ps[..5].iter().collect();
        let mut mix = Mix::default();
        for p in &ps[..5] {
            mix.add(p.polarity);
        }
        assert_eq!(ids(pick_quotes(&few, &hits, &mix)), [1, 3, 0]);
        // The same text twice is one quote.
        let mut dup = hits.clone();
        dup[3].verbatim.text = dup[1].verbatim.text.clone();
        let mut mix = Mix::default();
        for p in &ps {
            mix.add(p.polarity);
        }
        assert_eq!(ids(pick_quotes(&refs, &dup, &mix)), [1, 0, 4]);
    }

    #[test]
    fn a_question_takes_the_side_its_opinion_words_take() {
        let focus = question_focus;
        assert_eq!(
            focus("Why are customers unhappy with delivery?"),
            Some(Polarity::Negative)
        );
        assert_eq!(
            focus("What are the main complaints about packaging?"),
            Some(Polarity::Negative)
        );
        assert_eq!(
            focus("What do customers love about the coffee?"),
            Some(Polarity::Positive)
        );
        assert_eq!(focus("What do people say about the battery?"), None);
        assert_eq!(focus("What do people say about delivery?"), None);
        assert_eq!(
            focus("Pourquoi les clients sont-ils déçus de la livraison ?"),
            Some(Polarity::Negative)
        );
    }

    #[test]
    fn the_lead_polarity_is_the_majority_ties_negative() {
        let m = Mix {
            positive: 2,
            neutral: 1,
            negative: 2,
        };
        assert_eq!(m.lead(), Polarity::Negative);
        let m = Mix {
            positive: 3,
            neutral: 1,
            negative: 2,
        };
        assert_eq!(m.lead(), Polarity::Positive);
    }
}
