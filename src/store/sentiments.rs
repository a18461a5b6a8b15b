//! Stored sentiment scores: each verbatim's (table `sentiments`, one row per vector slot) and
//! each opinion unit's (`units.sentiment`), as the workspace model's sentiment head reads them.
//!
//! **Why stored.** Search filters on sentiment (`--sentiment`) and ranks by it (a query that
//! states a problem lifts negative hits); computing it per query read every vector of the
//! workspace and ran the head on each — at 100k verbatims more than the search itself. A score
//! is computed once and read by doc.
//!
//! **When a score is current.** A verbatim's row is keyed by its vector slot (`vec_id`): a
//! changed verbatim gets a new slot and its old row is deleted in the same transaction
//! ([`Store::upsert_batch`]), so an old row never answers for new text and the table holds
//! current slots only (the sentiment filter reads it alone). The head that
//! wrote the scores is named in `meta` (`sentiment_head`): another head (another model, a
//! retrained file) clears them all. `sentiments_seq` is the store sequence at which every
//! verbatim last had a score, so the check before a search is one meta read. New sentence
//! vectors change how a multi-sentence verbatim is read (the mean of its sentences), so storing
//! them drops that verbatim's row ([`Store::put_sentence_vectors`]). A unit row is replaced
//! whole when its verbatim is split again, which leaves its sentiment empty (NULL) until filled.
//! Deletion, erasure and a model change remove the rows with the verbatim's other data.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use super::{blob_to_f32s, Result, Store};

/// `meta` key: the head the stored scores were computed with.
const HEAD_KEY: &str = "sentiment_head";
/// `meta` key: the store sequence at which every verbatim had a score.
pub(super) const COMPLETE_KEY: &str = "sentiments_seq";

/// A unit without a stored sentiment: `(doc, idx, start, end, vector)`.
pub type PendingUnit = (i64, usize, usize, usize, Vec<f32>);

impl Store {
    /// Whether every verbatim has a score from the head named `head` (one meta read).
    pub fn sentiments_complete(&self, head: &str) -> Result<bool> {
        Ok(self.meta(HEAD_KEY)?.as_deref() == Some(head)
            && self.meta(COMPLETE_KEY)? == Some(self.seq()?.to_string()))
    }

    /// The verbatims whose current vector has no score from `head`: `(doc, vector)`. Scores of
    /// another head are dropped first.
    pub fn sentiments_pending(&self, head: &str) -> Result<Vec<(i64, Vec<f32>)>> {
        if self.meta(HEAD_KEY)?.as_deref() != Some(head) {
            let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
            tx.execute("DELETE FROM sentiments", [])
                .and_then(|_| tx.execute("UPDATE units SET sentiment = NULL", []))
                .and_then(|_| {
                    tx.execute(
                        "INSERT INTO meta(key, value) VALUES (?1, ?2) \
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        params![HEAD_KEY, head],
                    )
                })
                .and_then(|_| tx.commit())
                .map_err(|e| self.err(e))?;
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT e.doc, e.vector FROM embeddings e LEFT JOIN sentiments s \
                 ON s.vec_id = e.vec_id WHERE s.vec_id IS NULL ORDER BY e.doc",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let blob: Vec<u8> = r.get(1)?;
                Ok((r.get(0)?, blob_to_f32s(&blob)))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Stores verbatim scores `(doc, score)` (each under the doc's current vector slot) and marks
    /// the store complete at sequence `seq`, in one transaction.
    pub fn put_sentiments(&self, scores: &[(i64, f32)], seq: i64) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO sentiments(vec_id, doc, score) \
                     SELECT vec_id, doc, ?2 FROM embeddings WHERE doc = ?1",
                )
                .map_err(|e| self.err(e))?;
            for (doc, score) in scores {
                ins.execute(params![doc, f64::from(*score)])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![COMPLETE_KEY, seq.to_string()],
        )
        .and_then(|_| tx.commit())
        .map_err(|e| self.err(e))
    }

    /// The stored score of each of `docs` that has one (current vector slot only).
    pub fn sentiments_of(&self, docs: &[i64]) -> Result<HashMap<i64, f32>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.score FROM sentiments s JOIN embeddings e ON e.vec_id = s.vec_id \
                 WHERE e.doc = ?1",
            )
            .map_err(|e| self.err(e))?;
        let mut out = HashMap::new();
        for &doc in docs {
            if let Some(s) = stmt
                .query_row([doc], |r| r.get::<_, f64>(0))
                .optional()
                .map_err(|e| self.err(e))?
            {
                out.insert(doc, s as f32);
            }
        }
        Ok(out)
    }

    /// Every verbatim whose stored score lies in `lo..=hi`: a range of the `(score, doc)` index
    /// alone. The rows of `sentiments` are current vector slots' only (a changed verbatim's row
    /// is deleted with its old slot), so no probe of `embeddings` per row (80 of the 124 ms
    /// this took at 1M).
    pub fn docs_with_sentiment(&self, lo: f32, hi: f32) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc FROM sentiments WHERE score >= ?1 AND score <= ?2")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![f64::from(lo), f64::from(hi)], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Current units (of unchanged verbatims) with no stored sentiment.
    pub fn units_without_sentiment(&self) -> Result<Vec<PendingUnit>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT u.doc, u.idx, u.start_byte, u.end_byte, u.vector FROM units u \
                 JOIN verbatims v ON v.doc = u.doc AND v.content_hash = u.content_hash \
                 WHERE u.idx >= 0 AND u.sentiment IS NULL ORDER BY u.doc, u.idx",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let blob: Vec<u8> = r.get(4)?;
                Ok((
                    r.get(0)?,
                    r.get::<_, i64>(1)? as usize,
                    r.get::<_, i64>(2)? as usize,
                    r.get::<_, i64>(3)? as usize,
                    blob_to_f32s(&blob),
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Stores unit scores `(doc, idx, score)` in one transaction.
    pub fn put_unit_sentiments(&self, scores: &[(i64, usize, f32)]) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        {
            let mut up = tx
                .prepare_cached("UPDATE units SET sentiment = ?3 WHERE doc = ?1 AND idx = ?2")
                .map_err(|e| self.err(e))?;
            for (doc, idx, score) in scores {
                up.execute(params![doc, *idx as i64, f64::from(*score)])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }
}
