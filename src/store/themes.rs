//! Themes in the store: the themes table (ids, labels, centroids, user edits) and each verbatim's
//! membership from the last run. Written by `themes::run` in one transaction, so a run is either
//! all there or not at all.

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{blob_to_f32s, f32s_to_blob, Result, Store};

/// Lifecycle of a theme id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThemeState {
    /// Found in the last run.
    Active,
    /// Found before, not in the last run (its id is never reused).
    Vanished,
    /// Merged by the user into another theme; what matches it goes there.
    Merged,
}

impl ThemeState {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ThemeState::Active => "active",
            ThemeState::Vanished => "vanished",
            ThemeState::Merged => "merged",
        }
    }
    pub(super) fn parse(s: &str) -> ThemeState {
        match s {
            "vanished" => ThemeState::Vanished,
            "merged" => ThemeState::Merged,
            _ => ThemeState::Active,
        }
    }
}

/// One row of the themes table.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTheme {
    /// The number in `T<id>`.
    pub id: i64,
    /// Automatic label from the last run.
    pub label: String,
    /// Automatic keywords from the last run.
    pub keywords: Vec<String>,
    /// The user's label (rename, merge --label), which wins over `label`.
    pub user_label: Option<String>,
    /// Unit-length centroid.
    pub centroid: Vec<f32>,
    /// Members (first theme) at the last run.
    pub size: i64,
    /// Seeded by the user.
    pub seeded: bool,
    /// Seed examples (redacted text).
    pub examples: Vec<String>,
    /// For a merged theme: where its verbatims go.
    pub merged_into: Option<i64>,
    /// Lifecycle.
    pub state: ThemeState,
}

/// A verbatim's place in the last run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThemeMember {
    /// The verbatim (store doc number).
    pub doc: i64,
    /// First theme; `None`: "other".
    pub theme: Option<i64>,
    /// Second theme, when the verbatim clearly speaks of two things.
    pub second: Option<i64>,
    /// Cosine to the first theme's centroid (to the nearest one for "other").
    pub sim: f32,
}

impl Store {
    /// Every theme, by id.
    pub fn themes(&self) -> Result<Vec<StoredTheme>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, label, keywords, user_label, centroid, size, seeded, examples, \
                 merged_into, state FROM themes ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let keywords: String = r.get(2)?;
                let centroid: Vec<u8> = r.get(4)?;
                let examples: Option<String> = r.get(7)?;
                let state: String = r.get(9)?;
                Ok(StoredTheme {
                    id: r.get(0)?,
                    label: r.get(1)?,
                    keywords: serde_json::from_str(&keywords).unwrap_or_default(),
                    user_label: r.get(3)?,
                    centroid: blob_to_f32s(&centroid),
                    size: r.get(5)?,
                    seeded: r.get::<_, i64>(6)? != 0,
                    examples: examples
                        .and_then(|e| serde_json::from_str(&e).ok())
                        .unwrap_or_default(),
                    merged_into: r.get(8)?,
                    state: ThemeState::parse(&state),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Membership from the last run, by doc.
    pub fn theme_members(&self) -> Result<Vec<ThemeMember>> {
        let mut stmt = self
            .conn
            .prepare("SELECT doc, theme, second, sim FROM theme_members ORDER BY doc")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ThemeMember {
                    doc: r.get(0)?,
                    theme: r.get(1)?,
                    second: r.get(2)?,
                    sim: r.get::<_, f64>(3)? as f32,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Replaces the themes table and the membership with the result of a run, and records the
    /// run's key (`meta.themes_run`), all in one transaction.
    pub fn save_theme_run(
        &mut self,
        themes: &[StoredTheme],
        members: &[ThemeMember],
        run_key: &str,
    ) -> Result<()> {
        let path = self.path.clone();
        let e = |source| super::StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute("DELETE FROM themes", []).map_err(e)?;
        tx.execute("DELETE FROM theme_members", []).map_err(e)?;
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO themes(id, label, keywords, user_label, centroid, size, seeded, \
                     examples, merged_into, state) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                )
                .map_err(e)?;
            for t in themes {
                ins.execute(params![
                    t.id,
                    t.label,
                    serde_json::to_string(&t.keywords).expect("strings serialise"),
                    t.user_label,
                    f32s_to_blob(&t.centroid),
                    t.size,
                    t.seeded as i64,
                    (!t.examples.is_empty())
                        .then(|| serde_json::to_string(&t.examples).expect("strings serialise")),
                    t.merged_into,
                    t.state.as_str(),
                ])
                .map_err(e)?;
            }
            let mut ins = tx
                .prepare("INSERT INTO theme_members(doc, theme, second, sim) VALUES (?1,?2,?3,?4)")
                .map_err(e)?;
            for m in members {
                ins.execute(params![m.doc, m.theme, m.second, m.sim as f64])
                    .map_err(e)?;
            }
        }
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('themes_run', ?1) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [run_key],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(())
    }

    /// Applies a user edit to the themes table (rename, merge, seed) and marks the last run as
    /// stale so the next `themes` re-runs with the edit, in one transaction.
    pub fn edit_themes(&mut self, edit: impl FnOnce(&mut Vec<StoredTheme>)) -> Result<()> {
        let mut themes = self.themes()?;
        edit(&mut themes);
        let members = self.theme_members()?;
        self.save_theme_run(&themes, &members, "edited")
    }

    /// The key of the last theme run (None: never ran).
    pub fn theme_run_key(&self) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'themes_run'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }
}

/// A sentence of a verbatim with its embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct SentenceVector {
    /// Words in the sentence.
    pub words: usize,
    /// Its unit embedding.
    pub vector: Vec<f32>,
}

impl Store {
    /// Current sentence vectors (those whose verbatim has not changed since), by doc, in order.
    pub fn sentence_vectors(&self) -> Result<std::collections::HashMap<i64, Vec<SentenceVector>>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.doc, s.words, s.vector FROM sentence_vectors s JOIN verbatims v \
                 ON v.doc = s.doc AND v.content_hash = s.content_hash WHERE s.idx >= 0 \
                 ORDER BY s.doc, s.idx",
            )
            .map_err(|e| self.err(e))?;
        let mut out: std::collections::HashMap<i64, Vec<SentenceVector>> = Default::default();
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let doc: i64 = r.get(0).map_err(|e| self.err(e))?;
            let words: i64 = r.get(1).map_err(|e| self.err(e))?;
            let blob: Vec<u8> = r.get(2).map_err(|e| self.err(e))?;
            out.entry(doc).or_default().push(SentenceVector {
                words: words as usize,
                vector: blob_to_f32s(&blob),
            });
        }
        Ok(out)
    }

    /// Docs whose sentence vectors are missing or stale, among `docs`.
    pub fn docs_without_sentences(&self, docs: &[i64]) -> Result<Vec<i64>> {
        let have = self.sentence_vectors_docs()?;
        Ok(docs.iter().copied().filter(|d| !have.contains(d)).collect())
    }

    fn sentence_vectors_docs(&self) -> Result<std::collections::HashSet<i64>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT DISTINCT s.doc FROM sentence_vectors s JOIN verbatims v \
                 ON v.doc = s.doc AND v.content_hash = s.content_hash",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Stores the sentence vectors of some verbatims (replacing older ones), one transaction.
    /// A verbatim with one sentence is stored with an empty list marker (idx −1, no vector) so it
    /// is not split again.
    pub fn put_sentence_vectors(&mut self, batch: &[(i64, Vec<SentenceVector>)]) -> Result<()> {
        let path = self.path.clone();
        let e = |source| super::StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut del = tx
                .prepare_cached("DELETE FROM sentence_vectors WHERE doc = ?1")
                .map_err(e)?;
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO sentence_vectors(doc, idx, content_hash, words, vector) \
                     SELECT ?1, ?2, content_hash, ?3, ?4 FROM verbatims WHERE doc = ?1",
                )
                .map_err(e)?;
            // A verbatim of several sentences is read by their mean from now on: its stored
            // sentiment (store/sentiments.rs) is recomputed.
            let mut unscore = tx
                .prepare_cached("DELETE FROM sentiments WHERE doc = ?1")
                .map_err(e)?;
            for (doc, sents) in batch {
                del.execute([doc]).map_err(e)?;
                if sents.len() > 1 && unscore.execute([doc]).map_err(e)? > 0 {
                    tx.execute(
                        "DELETE FROM meta WHERE key = ?1",
                        [super::sentiments::COMPLETE_KEY],
                    )
                    .map_err(e)?;
                }
                if sents.is_empty() {
                    ins.execute(params![doc, -1i64, 0i64, Vec::<u8>::new()])
                        .map_err(e)?;
                }
                for (i, s) in sents.iter().enumerate() {
                    ins.execute(params![
                        doc,
                        i as i64,
                        s.words as i64,
                        f32s_to_blob(&s.vector)
                    ])
                    .map_err(e)?;
                }
            }
        }
        tx.commit().map_err(e)?;
        Ok(())
    }
}
