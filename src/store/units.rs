//! Opinion units in the store: the byte spans a verbatim was split into
//! ([`crate::themes::units`]) and the embedding of each, so that units are split and embedded
//! once per verbatim content, never again while the verbatim is unchanged.
//!
//! Each row carries the `content_hash` of the verbatim it was made from; a unit row is *current*
//! while that hash matches the verbatim's, so a re-ingested, changed verbatim reads as having no
//! units and gets new ones on the next theme run (which replaces the stale rows). A verbatim
//! with no unit at all (no word) is kept as a marker row (idx −1, empty vector) so it is not
//! split again. Rows go with their verbatim on deletion and erasure, and all of them on a model
//! change (`replace_all_vectors`).

use std::collections::{HashMap, HashSet};

use rusqlite::params;

use super::{blob_to_f32s, f32s_to_blob, Result, Store, StoreError};

/// [`Store::units_of`] scans the table instead of looking verbatims up from this many asked
/// (and a quarter of the store).
const SCAN_FROM: usize = 20_000;

/// One opinion unit of a verbatim as stored: `text[start..end]` of the verbatim's (redacted)
/// text, and its embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredUnit {
    /// Position of the unit in its verbatim (0, 1, …).
    pub idx: usize,
    /// First byte in the verbatim's text.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// The unit's embedding (the workspace's model).
    pub vector: Vec<f32>,
    /// Its stored sentiment score (store/sentiments.rs), read with the unit; `None` until the
    /// unit is scored. Not written by [`Store::put_units`]: new units are scored afterwards.
    pub sentiment: Option<f32>,
}

impl Store {
    /// Current units of the given verbatims (in order within each), by doc. A doc with no
    /// current units (never split, or changed since) is absent; one split into nothing maps to
    /// an empty list.
    pub fn units_of(&self, docs: &[i64]) -> Result<HashMap<i64, Vec<StoredUnit>>> {
        // One lookup per verbatim costs ~5× what a verbatim's share of a full scan does (at 1M:
        // 14 s of lookups, ~3 s scanned): past a quarter of the store, scan.
        if docs.len() >= SCAN_FROM
            && docs.len() as i64 * 4 >= self.count(&super::Filter::default())?
        {
            return self.scan_units(docs);
        }
        self.lookup_units(docs)
    }

    /// [`Store::units_of`] one verbatim at a time.
    pub(crate) fn lookup_units(&self, docs: &[i64]) -> Result<HashMap<i64, Vec<StoredUnit>>> {
        let mut out: HashMap<i64, Vec<StoredUnit>> = HashMap::new();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT u.doc, u.idx, u.start_byte, u.end_byte, u.vector, u.sentiment FROM units u \
                 JOIN verbatims v ON v.doc = u.doc AND v.content_hash = u.content_hash \
                 WHERE u.doc = ?1 ORDER BY u.idx",
            )
            .map_err(|e| self.err(e))?;
        for &doc in docs {
            let mut rows = stmt.query([doc]).map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                self.read_unit(r, &mut out)?;
            }
        }
        Ok(out)
    }

    /// [`Store::units_of`] as one pass over the units table (in key order: doc, then idx),
    /// keeping the rows of `docs`.
    pub(crate) fn scan_units(&self, docs: &[i64]) -> Result<HashMap<i64, Vec<StoredUnit>>> {
        let wanted: HashSet<i64> = docs.iter().copied().collect();
        let mut out: HashMap<i64, Vec<StoredUnit>> = HashMap::with_capacity(wanted.len());
        let mut stmt = self
            .conn
            .prepare(
                "SELECT u.doc, u.idx, u.start_byte, u.end_byte, u.vector, u.sentiment FROM units u \
                 JOIN verbatims v ON v.doc = u.doc AND v.content_hash = u.content_hash \
                 ORDER BY u.doc, u.idx",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let doc: i64 = r.get(0).map_err(|e| self.err(e))?;
            if wanted.contains(&doc) {
                self.read_unit(r, &mut out)?;
            }
        }
        Ok(out)
    }

    /// One row of `doc, idx, start_byte, end_byte, vector, sentiment` into `out` (the "no unit"
    /// marker as an empty list).
    fn read_unit(
        &self,
        r: &rusqlite::Row<'_>,
        out: &mut HashMap<i64, Vec<StoredUnit>>,
    ) -> Result<()> {
        let doc: i64 = r.get(0).map_err(|e| self.err(e))?;
        let list = out.entry(doc).or_default();
        let idx: i64 = r.get(1).map_err(|e| self.err(e))?;
        if idx < 0 {
            return Ok(());
        }
        let (start, end): (i64, i64) = (
            r.get(2).map_err(|e| self.err(e))?,
            r.get(3).map_err(|e| self.err(e))?,
        );
        if start < 0 || end < start {
            return Err(StoreError::Damaged {
                path: self.path.clone(),
                what: format!("units doc {doc} idx {idx}: span {start}..{end}"),
            });
        }
        let blob = r.get_ref(4).map_err(|e| self.err(e))?;
        let blob = blob.as_blob().map_err(|e| self.err(e.into()))?;
        list.push(StoredUnit {
            idx: idx as usize,
            start: start as usize,
            end: end as usize,
            vector: blob_to_f32s(blob),
            sentiment: r
                .get::<_, Option<f64>>(5)
                .map_err(|e| self.err(e))?
                .map(|s| s as f32),
        });
        Ok(())
    }

    /// How many current units with a vector the store holds (every verbatim's; the "no unit"
    /// markers and stale rows not counted): what decides whether a theme run discovers on a
    /// sample, read without loading a vector.
    pub fn count_units(&self) -> Result<usize> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM units u JOIN verbatims v \
                 ON v.doc = u.doc AND v.content_hash = u.content_hash \
                 WHERE u.idx >= 0 AND length(u.vector) > 0",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        Ok(n as usize)
    }

    /// Drops every stored unit and records `input` as what units are now made from, in one
    /// transaction, when the store's recorded input differs: units embedded from another input
    /// (an older rule of what of a unit is embedded) are then re-made on the next theme run.
    /// Returns whether they were dropped.
    pub fn reset_units_unless(&mut self, key: &str, input: &str) -> Result<bool> {
        if self.meta(key)?.as_deref() == Some(input) {
            return Ok(false);
        }
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute("DELETE FROM units", []).map_err(e)?;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, input],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(true)
    }

    /// Docs among `docs` whose units are missing or stale (their verbatim changed since).
    pub fn docs_without_units(&self, docs: &[i64]) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT DISTINCT u.doc FROM units u JOIN verbatims v \
                 ON v.doc = u.doc AND v.content_hash = u.content_hash",
            )
            .map_err(|e| self.err(e))?;
        let have: HashSet<i64> = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))?;
        Ok(docs.iter().copied().filter(|d| !have.contains(d)).collect())
    }

    /// Stores the units of some verbatims, replacing any older ones, in one transaction. Each
    /// row takes the verbatim's current content hash. An empty list stores the "no unit" marker.
    pub fn put_units(&mut self, batch: &[(i64, Vec<StoredUnit>)]) -> Result<()> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut del = tx
                .prepare_cached("DELETE FROM units WHERE doc = ?1")
                .map_err(e)?;
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO units(doc, idx, content_hash, start_byte, end_byte, vector) \
                     SELECT ?1, ?2, content_hash, ?3, ?4, ?5 FROM verbatims WHERE doc = ?1",
                )
                .map_err(e)?;
            if !batch.is_empty() {
                // New units have no sentiment yet (store/sentiments.rs): not complete.
                tx.execute(
                    "DELETE FROM meta WHERE key = ?1",
                    [super::sentiments::COMPLETE_KEY],
                )
                .map_err(e)?;
            }
            for (doc, units) in batch {
                del.execute([doc]).map_err(e)?;
                if units.is_empty() {
                    ins.execute(params![doc, -1i64, 0i64, 0i64, Vec::<u8>::new()])
                        .map_err(e)?;
                }
                for u in units {
                    ins.execute(params![
                        doc,
                        u.idx as i64,
                        u.start as i64,
                        u.end as i64,
                        f32s_to_blob(&u.vector)
                    ])
                    .map_err(e)?;
                }
            }
        }
        tx.commit().map_err(e)?;
        Ok(())
    }
}
