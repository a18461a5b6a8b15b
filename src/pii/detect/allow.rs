//! Names that are not people: brands, chains and places named after someone.
//!
//! Customer feedback names brands and places far more often than people, and many of them are
//! built on a given name or a family name ("Trader Joe's", "King Arthur flour", "Ben & Jerry's",
//! "chez Leclerc", "Saint-Étienne"). Redacting them protects no one and hides what the analysis
//! is about (competitor and brand mentions). So a person candidate that lies wholly inside an
//! occurrence of an allowed phrase is dropped. The phrases are the built-in list
//! (`data/allow_names.txt`, with its source) plus the workspace's `privacy.allow_names`.
//!
//! An allowed phrase never hides a real name: a candidate that runs past the phrase ("Joe Smith"
//! in "Trader Joe Smith") is kept whole, a phrase written with "'s" only matches with it, and the
//! built-in list holds no bare first name or family name (a unit test checks it against the name
//! lists), so "Mr Newman" or "Joe" alone stay persons.
//!
//! The list in force is process-wide ([`set_extra`], called when a workspace opens): every path
//! that reads stored text redacts it again (the [`crate::pii::Redacted`] guarantee), and all of
//! them must read it with the list ingest used, or an allowed brand would vanish from the index
//! while the store keeps it. One process serves one workspace.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use super::text::{self, Lowered, Word};
use crate::pii::{PiiKind, Span};

/// A `privacy.allow_names` entry that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("privacy.allow_names[{index}] = {entry:?}: {reason}")]
pub struct AllowNameError {
    /// Its position in the list (from 0).
    pub index: usize,
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// One phrase: its lower-cased words, the marks between them, and whether it ends in "'s".
#[derive(Debug)]
struct Phrase {
    words: Vec<String>,
    gaps: Vec<String>,
    possessive: bool,
}

/// A set of allowed phrases, indexed by their first word.
#[derive(Debug, Default)]
pub struct AllowNames {
    by_first: HashMap<String, Vec<Phrase>>,
}

/// The marks between two words that matter: spaces and dots are ignored ("Dr. Pepper" = "Dr
/// Pepper", "E.Leclerc" = "E. Leclerc"), `’` reads as `'`.
fn norm_gap(g: &str) -> String {
    g.chars()
        .filter(|c| !c.is_whitespace() && *c != '.')
        .map(|c| if c == '’' { '\'' } else { c })
        .collect()
}

/// `text[i..]` starts with a possessive "'s" / "’s" ending there.
fn possessive_at(text: &str, i: usize) -> Option<usize> {
    let rest = &text[i..];
    let after = ["'s", "’s", "'S", "’S"]
        .into_iter()
        .find(|p| rest.starts_with(p))?;
    let end = i + after.len();
    (!text[end..]
        .chars()
        .next()
        .is_some_and(char::is_alphanumeric))
    .then_some(end)
}

impl AllowNames {
    /// Parses one phrase per entry; `Err(index, reason)` for one without a word.
    fn from_entries<'a>(
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<AllowNames, (usize, &'static str)> {
        let mut set = AllowNames::default();
        for (index, entry) in entries.into_iter().enumerate() {
            set.add(entry).map_err(|reason| (index, reason))?;
        }
        Ok(set)
    }

    fn add(&mut self, entry: &str) -> Result<(), &'static str> {
        let entry = entry.trim();
        let ws: Vec<Word> = text::words(entry);
        if ws.is_empty() {
            return Err("has no word (write a brand or place name such as \"Trader Joe's\")");
        }
        if ws.len() > 8 {
            return Err("has more than 8 words");
        }
        let mut words = Vec::with_capacity(ws.len());
        let mut buf = String::new();
        for w in &ws {
            text::lower_into(&mut buf, &entry[w.start..w.end]);
            words.push(buf.clone());
        }
        let gaps = ws
            .windows(2)
            .map(|p| norm_gap(&entry[p[0].end..p[1].start]))
            .collect();
        let last = ws[ws.len() - 1].end;
        let possessive = possessive_at(entry, last).is_some();
        let first = words[0].clone();
        self.by_first.entry(first).or_default().push(Phrase {
            words,
            gaps,
            possessive,
        });
        Ok(())
    }

    /// The built-in list (`data/allow_names.txt`).
    pub fn builtin() -> &'static AllowNames {
        static BUILTIN: OnceLock<AllowNames> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            let lines = include_str!("../data/allow_names.txt")
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'));
            // The file is checked by a unit test; a bad line cannot ship.
            AllowNames::from_entries(lines).unwrap_or_default()
        })
    }

    /// The built-in list plus `extra` (a workspace's `privacy.allow_names`).
    pub fn with_extra(extra: &[String]) -> Result<AllowNames, AllowNameError> {
        let builtin = include_str!("../data/allow_names.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let mut set = AllowNames::from_entries(builtin).unwrap_or_default();
        for (index, entry) in extra.iter().enumerate() {
            set.add(entry).map_err(|reason| AllowNameError {
                index,
                entry: entry.clone(),
                reason,
            })?;
        }
        Ok(set)
    }

    /// The byte ranges of `text` where an allowed phrase occurs.
    fn occurrences(&self, text: &str, words: &[Word], low: &Lowered) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for k in 0..words.len() {
            let Some(phrases) = self.by_first.get(low.get(k)) else {
                continue;
            };
            'phrase: for p in phrases {
                let last = k + p.words.len() - 1;
                if last >= words.len() {
                    continue;
                }
                for (i, w) in p.words.iter().enumerate().skip(1) {
                    let gap = &text[words[k + i - 1].end..words[k + i].start];
                    if low.get(k + i) != w || norm_gap(gap) != p.gaps[i - 1] || gap.contains('\n') {
                        continue 'phrase;
                    }
                }
                let end = match (p.possessive, possessive_at(text, words[last].end)) {
                    (true, None) => continue,
                    (_, Some(end)) => end,
                    (false, None) => words[last].end,
                };
                out.push((words[k].start, end));
            }
        }
        out
    }

    /// Drops the person candidates that lie wholly inside an allowed phrase.
    pub(super) fn filter(&self, text: &str, words: &[Word], low: &Lowered, out: &mut Vec<Span>) {
        if !out.iter().any(|s| s.kind == PiiKind::Person) {
            return;
        }
        let occ = self.occurrences(text, words, low);
        if occ.is_empty() {
            return;
        }
        out.retain(|s| {
            s.kind != PiiKind::Person || !occ.iter().any(|&(a, b)| a <= s.start && s.end <= b)
        });
    }
}

fn current_cell() -> &'static RwLock<Option<Arc<AllowNames>>> {
    static CURRENT: OnceLock<RwLock<Option<Arc<AllowNames>>>> = OnceLock::new();
    CURRENT.get_or_init(|| RwLock::new(None))
}

/// The list in force: the built-in one, plus the names [`set_extra`] added.
pub(super) fn with_current<R>(f: impl FnOnce(&AllowNames) -> R) -> R {
    let cur = current_cell()
        .read()
        .map(|g| g.clone())
        .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
    match cur {
        Some(set) => f(&set),
        None => f(AllowNames::builtin()),
    }
}

/// Puts the built-in list plus `extra` (a workspace's `privacy.allow_names`) in force for every
/// later [`crate::pii::detect`] in this process. An empty `extra` restores the built-in list.
pub fn set_extra(extra: &[String]) -> Result<(), AllowNameError> {
    let set = if extra.is_empty() {
        None
    } else {
        Some(Arc::new(AllowNames::with_extra(extra)?))
    };
    match current_cell().write() {
        Ok(mut g) => *g = set,
        Err(poisoned) => *poisoned.into_inner() = set,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> impl Iterator<Item = &'static str> {
        include_str!("../data/allow_names.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    }

    /// Every line of the built-in list is a usable phrase.
    #[test]
    fn allow_list_parses() {
        let mut set = AllowNames::default();
        for e in entries() {
            set.add(e).unwrap_or_else(|r| panic!("{e:?}: {r}"));
        }
        assert!(set.by_first.len() > 100);
    }

    /// The built-in list never holds a bare first or family name ("Joe", "Leclerc"): those
    /// would hide real people ("M. Leclerc", "Joe called"). Only phrases, or brand words.
    #[test]
    fn allow_list_has_no_bare_person_name() {
        let names = |src: &str| -> std::collections::HashSet<String> {
            src.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_lowercase)
                .collect()
        };
        let first = names(include_str!("../data/first_names.txt"));
        let family = names(include_str!("../data/surnames.txt"));
        for e in entries() {
            let ws = text::words(e);
            if ws.len() == 1 {
                let w = e[ws[0].start..ws[0].end].to_lowercase();
                assert!(
                    !first.contains(&w) && !family.contains(&w),
                    "{e:?} is a bare person name: write it as a phrase"
                );
            }
        }
    }
}
