//! Erasure in the store (GDPR Art. 17 and retention): the rows of erased verbatims in every
//! table that holds them, in one transaction, then `VACUUM` and a truncating WAL checkpoint so
//! that neither free space nor the write-ahead log keeps their text.
//!
//! # Why the file is still vacuumed
//!
//! The store's connection runs with `PRAGMA secure_delete` on for its whole life
//! ([`Store::open`]): SQLite zeroes what it frees — a deleted cell, a freeblock, a page put on
//! the free list — so an erased row is zeroed where it lies and a row rewritten long before
//! leaves no old copy in free space. That is not all copies: a page rebuilt by a split keeps, in
//! its unallocated gap, old copies of cells that now live elsewhere, and those outlive the
//! cell's erasure (the test below finds one in 3,000 rows). So `VACUUM` stays after each
//! erasure; replacing it needs another guarantee (for instance a scan of the file for the
//! erased texts, vacuuming only when one is found).
//!
//! An erasure is a deletion like any other for the derived indexes: each erased verbatim takes
//! the next sequence and leaves a tombstone, so `Indexes::open` deletes it from tantivy even if
//! the process dies before the index purge. The transaction also sets `meta.erase_pending`; the
//! workspace layer ([`crate::workspace::erase`]) clears it only once the indexes have been
//! physically purged and the file vacuumed, and finishes the job on the next erasure otherwise.
//!
//! What is *not* touched here: the audit trail (hash-chained; it holds ids, filters and what
//! users typed, never verbatim text).

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{now_iso, Result, Store, StoreError};

/// Rows removed from each table by one erasure.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasedRows {
    /// Verbatims (text, respondent pseudonym, date, score, segments as JSON, content hash).
    pub verbatims: u64,
    /// Segment values (the `segments` table).
    pub segment_values: u64,
    /// Embeddings (vector slots).
    pub embeddings: u64,
    /// Sentence vectors of multi-sentence verbatims.
    pub sentence_vectors: u64,
    /// Opinion units (spans and their embeddings).
    #[serde(default)]
    pub units: u64,
    /// Sealed originals.
    pub originals: u64,
    /// Theme assignments (first/second theme of the last run).
    pub theme_assignments: u64,
    /// Rejected-row records that pointed at an erased verbatim (a later duplicate of its id).
    pub rejected_rows: u64,
    /// Survey-link tokens standing for the erased respondent.
    pub link_tokens: u64,
}

impl ErasedRows {
    /// Rows removed in all.
    pub fn total(&self) -> u64 {
        self.verbatims
            + self.segment_values
            + self.embeddings
            + self.sentence_vectors
            + self.units
            + self.originals
            + self.theme_assignments
            + self.rejected_rows
            + self.link_tokens
    }
}

/// A theme's automatic label, keywords and size recomputed without the erased verbatims.
#[derive(Clone, Debug, PartialEq)]
pub struct Relabel {
    /// Theme number.
    pub id: i64,
    /// New automatic label.
    pub label: String,
    /// New keywords.
    pub keywords: Vec<String>,
    /// Members left.
    pub size: i64,
}

/// Outcome of [`Store::vacuum`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Vacuumed {
    /// The write-ahead log was checkpointed and truncated to zero bytes (false: another
    /// connection kept a read transaction open throughout; the WAL is reset on its next
    /// checkpoint).
    pub wal_truncated: bool,
}

const PENDING: &str = "erase_pending";

/// The value of `meta.erase_pending`.
#[derive(Serialize, Deserialize)]
struct Pending {
    at: String,
    ids: Vec<String>,
}

impl Store {
    /// Erases verbatims by id from every table that holds them, in one transaction: verbatims,
    /// segment values, embeddings, sentence vectors, opinion units, sealed originals, theme assignments,
    /// rejected-row records pointing at them, and (with `pseudonym`) the survey-link tokens of
    /// that respondent. Each erased verbatim takes the next sequence and leaves a tombstone for
    /// the indexes. `relabel` rewrites the labels, keywords and sizes of the themes the erased
    /// verbatims belonged to, in the same transaction, and `tree` the aspect tree's nodes they
    /// were in ([`super::AspectPatch`]). Deleted content is overwritten in the
    /// file (`secure_delete`). With `dry_run` the same statements run and are rolled back: the
    /// counts are exact and nothing changes.
    pub fn erase(
        &mut self,
        ids: &[String],
        pseudonym: Option<&str>,
        relabel: &[Relabel],
        tree: &super::AspectPatch,
        dry_run: bool,
    ) -> Result<ErasedRows> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        self.conn
            .execute_batch("PRAGMA secure_delete = ON")
            .map_err(e)?;
        let tx = self.conn.transaction().map_err(e)?;
        let mut seq: i64 = Self::meta_tx(&tx, "seq")
            .map_err(e)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut n = ErasedRows::default();
        let mut erased: Vec<String> = Vec::new();
        {
            let mut find = tx
                .prepare_cached("SELECT doc, source FROM verbatims WHERE id = ?1")
                .map_err(e)?;
            let del = |sql: &str, arg: &dyn rusqlite::ToSql| -> rusqlite::Result<u64> {
                tx.prepare_cached(sql)?.execute([arg]).map(|k| k as u64)
            };
            for id in ids {
                let Some((doc, source)) = find
                    .query_row([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                    .optional()
                    .map_err(e)?
                else {
                    continue;
                };
                seq += 1;
                erased.push(id.clone());
                n.verbatims += del("DELETE FROM verbatims WHERE doc = ?1", &doc).map_err(e)?;
                n.segment_values += del("DELETE FROM segments WHERE doc = ?1", &doc).map_err(e)?;
                n.embeddings += del("DELETE FROM embeddings WHERE doc = ?1", &doc).map_err(e)?;
                // The single-sentence marker (idx −1) is bookkeeping, not a vector.
                n.sentence_vectors += del(
                    "DELETE FROM sentence_vectors WHERE doc = ?1 AND idx >= 0",
                    &doc,
                )
                .map_err(e)?;
                del("DELETE FROM sentence_vectors WHERE doc = ?1", &doc).map_err(e)?;
                del("DELETE FROM sentiments WHERE doc = ?1", &doc).map_err(e)?;
                // Likewise the "no unit" marker (idx −1).
                n.units += del("DELETE FROM units WHERE doc = ?1 AND idx >= 0", &doc).map_err(e)?;
                del("DELETE FROM units WHERE doc = ?1", &doc).map_err(e)?;
                n.originals += del("DELETE FROM originals WHERE id = ?1", id).map_err(e)?;
                n.theme_assignments +=
                    del("DELETE FROM theme_members WHERE doc = ?1", &doc).map_err(e)?;
                // Its units' places in the aspect tree (offsets only, but they name the doc).
                n.theme_assignments +=
                    del("DELETE FROM aspect_units WHERE doc = ?1", &doc).map_err(e)?;
                // A later row of the same file that repeated this id was rejected with a reason
                // naming this verbatim's line: that record is about the erased row.
                if let Some((file, line)) = source.rsplit_once(':') {
                    n.rejected_rows += tx
                        .prepare_cached(
                            "DELETE FROM row_errors WHERE source = ?1 AND instr(reason, ?2) > 0",
                        )
                        .and_then(|mut s| {
                            s.execute(params![file, format!("(first seen at line {line})")])
                        })
                        .map_err(e)? as u64;
                }
                tx.prepare_cached("INSERT INTO tombstones(seq, doc, id) VALUES (?1, ?2, ?3)")
                    .and_then(|mut s| s.execute(params![seq, doc, id]))
                    .map_err(e)?;
            }
        }
        if let Some(p) = pseudonym {
            n.link_tokens += tx
                .execute("DELETE FROM link_tokens WHERE pseudonym = ?1", [p])
                .map_err(e)? as u64;
        }
        for r in relabel {
            tx.execute(
                "UPDATE themes SET label = ?2, keywords = ?3, size = ?4 WHERE id = ?1",
                params![
                    r.id,
                    r.label,
                    serde_json::to_string(&r.keywords).expect("strings serialise"),
                    r.size
                ],
            )
            .map_err(e)?;
        }
        Self::patch_aspects_tx(&tx, tree, seq).map_err(e)?;
        if n.verbatims > 0 {
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'seq'",
                [seq.to_string()],
            )
            .map_err(e)?;
        }
        if n.total() > 0 {
            // The ids go with the flag: an erasure resumed after a crash still knows which
            // reports quote what it erased (the ids are in the audit trail anyway; no text).
            let mut pending = Self::meta_tx(&tx, PENDING)
                .map_err(e)?
                .and_then(|v| serde_json::from_str::<Pending>(&v).ok())
                .map(|p| p.ids)
                .unwrap_or_default();
            pending.extend(erased);
            pending.sort();
            pending.dedup();
            let value = serde_json::to_string(&Pending {
                at: now_iso(),
                ids: pending,
            })
            .expect("strings serialise");
            tx.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![PENDING, value],
            )
            .map_err(e)?;
        }
        if dry_run {
            tx.rollback().map_err(e)?;
        } else {
            tx.commit().map_err(e)?;
        }
        Ok(n)
    }

    /// True when an erasure committed in the store but its index purge and vacuum have not
    /// finished yet (the process died in between).
    pub fn erase_pending(&self) -> Result<bool> {
        Ok(self.meta(PENDING)?.is_some())
    }

    /// The ids erased by the pending (interrupted) erasure; empty when none is pending or when
    /// the flag was set by a version that did not record them (a bare time).
    pub fn erase_pending_ids(&self) -> Result<Vec<String>> {
        Ok(self
            .meta(PENDING)?
            .and_then(|v| serde_json::from_str::<Pending>(&v).ok())
            .map(|p| p.ids)
            .unwrap_or_default())
    }

    /// Marks the erasure finished (indexes purged, file vacuumed).
    pub fn clear_erase_pending(&self) -> Result<()> {
        self.conn
            .execute("DELETE FROM meta WHERE key = ?1", [PENDING])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Rebuilds the store file without free pages (`VACUUM`) and checkpoints the write-ahead log
    /// into it, truncating the log to zero bytes, so that erased rows survive neither in freed
    /// pages nor in old WAL frames. Retries the checkpoint for a few seconds while another
    /// connection holds a read transaction. Every erasure ends with it: `secure_delete` (always
    /// on) does not reach old cell copies left in the gaps of split pages (module docs).
    pub fn vacuum(&self) -> Result<Vacuumed> {
        self.conn.execute_batch("VACUUM").map_err(|e| self.err(e))?;
        self.checkpoint_truncate()
    }

    /// Checkpoints the write-ahead log into the store file and truncates it to zero bytes.
    pub fn checkpoint_truncate(&self) -> Result<Vacuumed> {
        for attempt in 0..50 {
            let (busy, _log, _done): (i64, i64, i64) = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(|e| self.err(e))?;
            if busy == 0 {
                return Ok(Vacuumed {
                    wal_truncated: true,
                });
            }
            if attempt < 49 {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        Ok(Vacuumed {
            wal_truncated: false,
        })
    }

    /// Every verbatim's number, redacted text and language, in `doc` order (for theme labels).
    pub fn texts_with_language(&self) -> Result<Vec<(i64, String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT doc, text, language FROM verbatims ORDER BY doc")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Ids of the verbatims to erase under a retention period: dated before `cutoff_ts`, or,
    /// without a date, written by an ingest run that started before `cutoff_ts` (the store keeps
    /// the run that last wrote each verbatim). Sorted.
    pub fn ids_older_than(&self, cutoff_ts: i64) -> Result<Vec<String>> {
        let cutoff_iso = chrono::DateTime::from_timestamp(cutoff_ts, 0)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT v.id FROM verbatims v LEFT JOIN runs r ON r.id = v.run \
                 WHERE (v.ts IS NOT NULL AND v.ts < ?1) \
                    OR (v.ts IS NULL AND r.started_at IS NOT NULL AND r.started_at < ?2) \
                 ORDER BY v.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![cutoff_ts, cutoff_iso], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| self.err(e))
    }

    /// The survey-link tokens recorded for a respondent pseudonym: (token, created at).
    pub fn link_tokens_of(&self, pseudonym: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT token, created_at FROM link_tokens WHERE pseudonym = ?1 ORDER BY token",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([pseudonym], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// When each of `ids` was last written (its ingest run's start, UTC), for exports.
    pub fn ingested_at(&self, ids: &[String]) -> Result<BTreeMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT r.started_at FROM verbatims v JOIN runs r ON r.id = v.run WHERE v.id = ?1",
            )
            .map_err(|e| self.err(e))?;
        let mut out = BTreeMap::new();
        for id in ids {
            if let Some(at) = stmt
                .query_row([id], |r| r.get::<_, String>(0))
                .optional()
                .map_err(|e| self.err(e))?
            {
                out.insert(id.clone(), at);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::NewVerbatim;
    use super::*;

    fn nv(id: &str, text: &str, respondent: Option<&str>, ts: Option<i64>) -> NewVerbatim {
        let mut fields = BTreeMap::new();
        fields.insert("country".to_string(), "FR".to_string());
        NewVerbatim {
            id: id.into(),
            text: crate::pii::redact(text),
            original: Some(b"sealed".to_vec()),
            respondent: respondent.map(String::from),
            ts,
            score: Some(7.0),
            language: "en".into(),
            fields,
            source: format!("t.csv:{}", id.len() + 1),
            content_hash: text.into(),
            vector: vec![1.0, 0.0],
        }
    }

    #[test]
    fn erase_removes_every_row_leaves_tombstones_and_a_dry_run_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let run = s.begin_run("t.csv").unwrap();
        s.upsert_batch(
            run,
            &[
                nv("a", "zorblax one", Some("r_1"), Some(10)),
                nv("bb", "two", Some("r_2"), None),
            ],
        )
        .unwrap();
        s.put_link_tokens(&[("tok".into(), "r_1".into())]).unwrap();
        s.finish_run(
            run,
            &Default::default(),
            &[(
                "t.csv".into(),
                9,
                "duplicate id 'a' (first seen at line 2)".into(),
            )],
        )
        .unwrap();
        let ids = vec!["a".to_string(), "missing".to_string()];
        let dry = s
            .erase(&ids, Some("r_1"), &[], &Default::default(), true)
            .unwrap();
        assert_eq!(s.stats().unwrap().verbatims, 2);
        assert!(!s.erase_pending().unwrap());
        let n = s
            .erase(&ids, Some("r_1"), &[], &Default::default(), false)
            .unwrap();
        assert_eq!(dry, n);
        assert_eq!(
            (n.verbatims, n.segment_values, n.embeddings, n.originals),
            (1, 1, 1, 1)
        );
        assert_eq!((n.rejected_rows, n.link_tokens), (1, 1));
        assert_eq!(s.seq().unwrap(), 3);
        assert!(s.erase_pending().unwrap());
        assert_eq!(s.erase_pending_ids().unwrap(), ["a"]);
        let mut deletes = 0;
        s.changes_since(2, |c| {
            assert!(matches!(c, super::super::Change::Delete { .. }));
            deletes += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(deletes, 1);
        // Again: nothing left, nothing changes.
        assert_eq!(
            s.erase(&ids, Some("r_1"), &[], &Default::default(), false)
                .unwrap()
                .total(),
            0
        );
        assert_eq!(s.seq().unwrap(), 3);
        s.clear_erase_pending().unwrap();
        assert!(s.vacuum().unwrap().wal_truncated);
        let wal = dir.path().join("s.sqlite-wal");
        assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
        let bytes = std::fs::read(dir.path().join("s.sqlite")).unwrap();
        assert!(!bytes.windows(7).any(|w| w == b"zorblax"));
    }

    #[test]
    fn erasure_leaves_no_copy_of_rows_moved_or_rewritten_before_once_vacuumed() {
        moved_or_rewritten_then_erased(|s| {
            assert!(s.vacuum().unwrap().wal_truncated);
        });
    }

    #[test]
    fn erasure_leaves_no_copy_of_rows_moved_or_rewritten_before_once_scrubbed() {
        moved_or_rewritten_then_erased(|s| {
            let done = s.scrub().unwrap();
            assert!(!done.vacuumed, "{done:?}");
            assert!(done.wal_truncated, "{done:?}");
            assert!(done.pages_zeroed > 0 && done.bytes_zeroed > 0, "{done:?}");
            assert!(done.pages_read > done.pages_zeroed, "{done:?}");
            // The file is whole, and a second scrub finds nothing left to zero.
            let ok: String = s
                .conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(ok, "ok");
            let again = s.scrub().unwrap();
            assert_eq!(
                (again.pages_zeroed, again.vacuumed),
                (0, false),
                "{again:?}"
            );
            assert_eq!(super::super::scrub::dirty_free_bytes(s.path()), 0);
        });
    }

    /// 3,000 rows in scattered id order, every third rewritten with a longer text, every seventh
    /// erased, then `purge` (vacuum or scrub): no text of an erased row, first or rewritten, and
    /// no first text of a rewritten row is left in the file; kept rows are.
    fn moved_or_rewritten_then_erased(purge: impl Fn(&Store)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut s = Store::open(&path).unwrap();
        // Ids in scattered order (index pages split as rows arrive), each text with a marker.
        let id = |i: u64| format!("{:08x}", i.wrapping_mul(2_654_435_761) % (1 << 32));
        // The rewritten text is longer: its row no longer fits the old cell, which is freed.
        let text = |i: u64, tag: &str| {
            let more = if tag == "ux" {
                ", and nobody answered the phone"
            } else {
                ""
            };
            format!("Row {i}: the {tag}{i:05}zz parcel came late and the box was torn{more}")
        };
        let run = s.begin_run("t.csv").unwrap();
        let rows: Vec<NewVerbatim> = (0..3000)
            .map(|i| {
                nv(
                    &id(i),
                    &text(i, "qx"),
                    Some(&format!("r_{}", i % 700)),
                    None,
                )
            })
            .collect();
        for chunk in rows.chunks(256) {
            s.upsert_batch(run, chunk).unwrap();
        }
        // Every third row rewritten with another text: its first text is freed now, long
        // before it is erased.
        let rewritten: Vec<NewVerbatim> = (0..3000)
            .step_by(3)
            .map(|i| {
                nv(
                    &id(i),
                    &text(i, "ux"),
                    Some(&format!("r_{}", i % 700)),
                    None,
                )
            })
            .collect();
        s.upsert_batch(run, &rewritten).unwrap();
        // Many: none of their texts, old or current, is left anywhere in the file.
        let gone: Vec<u64> = (0..3000).filter(|i| i % 7 == 1).collect();
        let ids: Vec<String> = gone.iter().map(|&i| id(i)).collect();
        s.erase(&ids, None, &[], &Default::default(), false)
            .unwrap();
        purge(&s);
        let bytes = std::fs::read(&path).unwrap();
        let has = |needle: String| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        for &i in &gone {
            assert!(!has(format!("qx{i:05}zz")), "first text of row {i} left");
            assert!(
                !has(format!("ux{i:05}zz")),
                "rewritten text of row {i} left"
            );
            assert!(!has(format!("Row {i}: the")), "row {i} left");
        }
        // Kept rows are there, and the first texts of rewritten rows are gone too.
        for i in [0u64, 2, 4, 5, 6, 2998] {
            let (now, then) = if i % 3 == 0 {
                ("ux", "qx")
            } else {
                ("qx", "ux")
            };
            assert!(has(format!("{now}{i:05}zz")), "row {i} lost");
            assert!(!has(format!("{then}{i:05}zz")), "old text of row {i} left");
        }
    }

    #[test]
    fn retention_picks_old_dates_and_undated_rows_of_old_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let run = s.begin_run("t.csv").unwrap();
        s.upsert_batch(
            run,
            &[
                nv("old", "x", None, Some(100)),
                nv("new", "y", None, Some(10_000)),
                nv("undated", "z", None, None),
            ],
        )
        .unwrap();
        assert_eq!(s.ids_older_than(1_000).unwrap(), vec!["old".to_string()]);
        // The run started now: undated rows go once the cutoff passes today.
        let later = chrono::Utc::now().timestamp() + 10;
        assert_eq!(
            s.ids_older_than(later).unwrap(),
            vec!["new".to_string(), "old".into(), "undated".into()]
        );
    }
}
