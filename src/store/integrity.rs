//! Integrity at rest: a keyed seal on every verbatim row and every embedding row.
//!
//! SQLite checks its own structure (`PRAGMA integrity_check`: b-trees, indexes, free list) but
//! not the bytes of a value: one byte changed inside a stored text ("battery" → "cattery") reads
//! back as valid text. The `content_hash` column cannot catch it either: it is the keyed hash of
//! the row *as read from the file* (original text, before redaction), which the store does not
//! hold. So each row carries its own seal (`mac`, schema v11): HMAC-SHA256, under a key derived
//! from the workspace key file ([`RowKey`]), of the row's values as stored — every column a read
//! serves, its `doc` (a row moved to another number does not verify) and its sequence. Keyed,
//! because a plain hash of a short text could be reversed by guessing (as for `content_hash`).
//!
//! Every read that serves a verbatim or feeds an index ([`Store::get`], [`Store::get_docs`],
//! [`Store::changes_since`], [`Store::for_each`], [`Store::vectors_since`]) checks the seal of
//! each row it reads; a row that does not verify is **skipped**, logged as a warning naming the
//! table and row, and kept in [`Store::take_damage`] for the caller to count. Nothing is
//! repaired here: a damaged row is restored from a backup or written again by re-ingesting its
//! file (an upsert rewrites a row whose seal fails even when its content hash is unchanged).
//!
//! Seals are written with each row when the store has a key (a workspace always gives it one on
//! open). A store written before v11 is sealed once, when the workspace first opens it
//! ([`Store::set_row_key`]); from then on (`meta.row_seals`) a row without a seal is damage.
//! Not covered: the vector search's exact scoring reads embeddings without checking their seal
//! (it is the hot loop, and it serves no text); tables derived from the verbatims (units,
//! sentiments, themes) carry no seal of their own.

use std::sync::Mutex;

use hmac::{Hmac, Mac};
use rusqlite::types::ValueRef;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use sha2::Sha256;

use super::{Result, Store, StoreError};

/// The meta key that says every row has been sealed (rows without a seal are then damage).
const SEALED_META: &str = "row_seals";

/// The key the row seals are made with: derived from the workspace key file, never stored.
#[derive(Clone)]
pub struct RowKey([u8; 32]);

impl RowKey {
    /// A key from 32 bytes (the vault derives them; tests may give any).
    pub fn new(bytes: [u8; 32]) -> RowKey {
        RowKey(bytes)
    }
}

impl std::fmt::Debug for RowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RowKey(..)")
    }
}

/// One stored row that does not match its seal (or cannot be read at all).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DamagedRow {
    /// The table: `verbatims` or `embeddings`.
    pub table: String,
    /// The row: the verbatim's number (`doc`) in both tables.
    pub row: i64,
    /// The verbatim id, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for DamagedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "table {}, row {}", self.table, self.row)?;
        if let Some(id) = &self.id {
            write!(f, " (id {id})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// The seal state a [`Store`] keeps: its key, whether every row is sealed, the damage seen.
#[derive(Default)]
pub(super) struct Seals {
    key: Option<RowKey>,
    /// Every row was sealed once (`meta.row_seals`): a row without a seal is damage.
    complete: bool,
    damage: Mutex<Vec<DamagedRow>>,
}

/// Feeds one SQLite value into the MAC, tagged by its storage class, so that a flipped type
/// byte (text read back as a number) changes the input.
fn feed(m: &mut Hmac<Sha256>, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => m.update(&[0]),
        ValueRef::Integer(i) => {
            m.update(&[1]);
            m.update(&i.to_le_bytes());
        }
        ValueRef::Real(x) => {
            // −0.0 may come back as 0.0 (SQLite stores whole REALs as integers on disk).
            let x = if x == 0.0 { 0.0 } else { x };
            m.update(&[2]);
            m.update(&x.to_bits().to_le_bytes());
        }
        ValueRef::Text(t) => {
            m.update(&[3]);
            m.update(&(t.len() as u64).to_le_bytes());
            m.update(t);
        }
        ValueRef::Blob(b) => {
            m.update(&[4]);
            m.update(&(b.len() as u64).to_le_bytes());
            m.update(b);
        }
    }
}

impl RowKey {
    /// The seal of a row of `table`: HMAC-SHA256 over the table name and the values in order.
    pub(super) fn seal(&self, table: &str, values: &[ValueRef<'_>]) -> Vec<u8> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        m.update(table.as_bytes());
        m.update(&[0]);
        for v in values {
            feed(&mut m, *v);
        }
        m.finalize().into_bytes().to_vec()
    }
}

/// The columns of `verbatims` a seal covers, in order (see [`VERBATIM_SEALED`]).
pub(super) const VERBATIM_SEALED_COLS: &str =
    "doc, id, text, respondent, ts, score, language, fields, source, content_hash, seq";
/// The columns of `embeddings` a seal covers.
pub(super) const EMBEDDING_SEALED_COLS: &str = "doc, vec_id, vector";

/// What reading a sealed row found.
pub(super) enum Verdict {
    /// The seal matches (or the store has no key, or the row predates sealing).
    Sound,
    /// The row does not match its seal.
    Damaged(&'static str),
}

impl Seals {
    /// The same key and state for a second connection (no damage noted yet).
    pub(super) fn sibling(&self) -> Seals {
        Seals {
            key: self.key.clone(),
            complete: self.complete,
            damage: Mutex::default(),
        }
    }

    /// Checks `values` against `mac` for a row of `table`.
    pub(super) fn verdict(
        &self,
        table: &str,
        values: &[ValueRef<'_>],
        mac: ValueRef<'_>,
    ) -> Verdict {
        let Some(key) = &self.key else {
            return Verdict::Sound;
        };
        match mac {
            ValueRef::Null if !self.complete => Verdict::Sound,
            ValueRef::Null => Verdict::Damaged("has no integrity seal"),
            ValueRef::Blob(b) => {
                if key.seal(table, values).as_slice() == b {
                    Verdict::Sound
                } else {
                    Verdict::Damaged("does not match its integrity seal (changed at rest)")
                }
            }
            _ => Verdict::Damaged("its integrity seal is not a seal"),
        }
    }

    /// The seal to write with a new row (`None` without a key).
    pub(super) fn seal(&self, table: &str, values: &[ValueRef<'_>]) -> Option<Vec<u8>> {
        self.key.as_ref().map(|k| k.seal(table, values))
    }

    /// Notes a damaged row: a warning now, and a record for [`Store::take_damage`].
    pub(super) fn note(&self, store: &std::path::Path, row: DamagedRow) {
        tracing::warn!(
            "{}: {row}: skipped (`verbatim check` lists every damaged row)",
            store.display()
        );
        let mut d = self.damage.lock().unwrap_or_else(|p| p.into_inner());
        if !d.contains(&row) {
            d.push(row);
        }
    }
}

/// The values of a `verbatims` row in [`VERBATIM_SEALED_COLS`] order, read from `r` at `at..`.
pub(super) fn values_at<'r>(
    r: &'r rusqlite::Row<'_>,
    at: &[usize],
) -> rusqlite::Result<Vec<ValueRef<'r>>> {
    at.iter().map(|&i| r.get_ref(i)).collect()
}

impl Store {
    /// Gives the store the key its row seals are made with, and seals, once, every row written
    /// before seals existed (in one transaction). A workspace calls this when it opens.
    pub fn set_row_key(&mut self, key: RowKey) -> Result<()> {
        self.seals.key = Some(key);
        if self.meta(SEALED_META)?.is_none() {
            self.seal_all_unsealed()?;
        }
        self.seals.complete = true;
        Ok(())
    }

    /// Seals every row that has no seal yet, then records that every row is sealed.
    fn seal_all_unsealed(&mut self) -> Result<()> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let key = self.seals.key.clone().expect("called with a key");
        let tx = self.conn.transaction().map_err(e)?;
        for (table, cols) in [
            ("verbatims", VERBATIM_SEALED_COLS),
            ("embeddings", EMBEDDING_SEALED_COLS),
        ] {
            let mut seals: Vec<(i64, Vec<u8>)> = Vec::new();
            {
                let mut stmt = tx
                    .prepare(&format!("SELECT {cols} FROM {table} WHERE mac IS NULL"))
                    .map_err(e)?;
                let n = stmt.column_count();
                let mut rows = stmt.query([]).map_err(e)?;
                while let Some(r) = rows.next().map_err(e)? {
                    let values = values_at(r, &(0..n).collect::<Vec<_>>()).map_err(e)?;
                    let doc: i64 = r.get(0).map_err(e)?;
                    seals.push((doc, key.seal(table, &values)));
                }
            }
            let mut put = tx
                .prepare(&format!("UPDATE {table} SET mac = ?2 WHERE doc = ?1"))
                .map_err(e)?;
            for (doc, mac) in seals {
                put.execute(params![doc, mac]).map_err(e)?;
            }
        }
        tx.execute(
            "INSERT INTO meta(key, value) VALUES (?1, '1') ON CONFLICT(key) DO UPDATE SET value = '1'",
            [SEALED_META],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    /// The damaged rows reads of this store have skipped so far (and forgets them).
    pub fn take_damage(&self) -> Vec<DamagedRow> {
        std::mem::take(&mut *self.seals.damage.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Every row of `verbatims` and `embeddings` checked against its seal (`verbatim check`,
    /// and `reindex` before it rebuilds): the damaged ones, in table then row order. Also a
    /// verbatim without an embedding, or an embedding without its verbatim.
    pub fn verify_rows(&self) -> Result<Vec<DamagedRow>> {
        let mut out = Vec::new();
        for (table, cols) in [
            ("verbatims", VERBATIM_SEALED_COLS),
            ("embeddings", EMBEDDING_SEALED_COLS),
        ] {
            let sql = format!("SELECT {cols}, mac FROM {table} ORDER BY doc");
            let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
            let n = stmt.column_count() - 1;
            let at: Vec<usize> = (0..n).collect();
            let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let values = values_at(r, &at).map_err(|e| self.err(e))?;
                let mac = r.get_ref(n).map_err(|e| self.err(e))?;
                if let Verdict::Damaged(reason) = self.seals.verdict(table, &values, mac) {
                    let id = match (table, values[1]) {
                        ("verbatims", ValueRef::Text(t)) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                        _ => None,
                    };
                    out.push(DamagedRow {
                        table: table.into(),
                        row: r
                            .get_ref(0)
                            .ok()
                            .and_then(|v| v.as_i64().ok())
                            .unwrap_or(-1),
                        id,
                        reason: reason.into(),
                    });
                }
            }
        }
        let orphans = |sql: &str, table: &str, reason: &str| -> Result<Vec<DamagedRow>> {
            let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| r.get::<_, i64>(0))
                .map_err(|e| self.err(e))?;
            rows.map(|d| {
                d.map(|row| DamagedRow {
                    table: table.into(),
                    row,
                    id: None,
                    reason: reason.into(),
                })
                .map_err(|e| self.err(e))
            })
            .collect()
        };
        out.extend(orphans(
            "SELECT doc FROM verbatims WHERE doc NOT IN (SELECT doc FROM embeddings) ORDER BY doc",
            "verbatims",
            "has no embedding",
        )?);
        out.extend(orphans(
            "SELECT doc FROM embeddings WHERE doc NOT IN (SELECT doc FROM verbatims) ORDER BY doc",
            "embeddings",
            "belongs to no verbatim",
        )?);
        Ok(out)
    }

    /// Every sealed original: (verbatim id, ciphertext), for `verbatim check` to open each
    /// with the workspace key (the AEAD tag is their seal).
    pub fn all_originals(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, sealed FROM originals ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// What the store's derived rows and counters say against its sealed rows: the `segments`
    /// rows (what filters read) against each verbatim's sealed `fields`, the current units'
    /// spans against their text, and the counters in
    /// `meta` (`seq` and `next_vec_id` never behind what they number). Empty when they agree.
    pub fn derived_check(&self) -> Result<Vec<DamagedRow>> {
        let q = |sql: &str| -> Result<i64> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                .map(|v| v.unwrap_or(0))
                .map_err(|e| self.err(e))
        };
        let mut out = Vec::new();
        let meta_row = |key: &str, reason: String| DamagedRow {
            table: "meta".into(),
            row: -1,
            id: Some(key.into()),
            reason,
        };
        let seq = q("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'seq'")?;
        let max_seq = q("SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM verbatims \
             UNION ALL SELECT MAX(seq) FROM tombstones)")?;
        if seq < max_seq {
            out.push(meta_row(
                "seq",
                format!("the sequence is {seq}, but rows carry sequences up to {max_seq}"),
            ));
        }
        let next_vec = q("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'next_vec_id'")?;
        let max_vec = q("SELECT MAX(vec_id) FROM embeddings")?;
        if q("SELECT COUNT(*) FROM embeddings")? > 0 && next_vec <= max_vec {
            out.push(meta_row(
                "next_vec_id",
                format!("the next vector slot is {next_vec}, but slot {max_vec} is in use"),
            ));
        }
        // Segments: exactly the (field, value) pairs of each verbatim's fields.
        let mut expected = std::collections::BTreeSet::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT doc, fields FROM verbatims")
                .map_err(|e| self.err(e))?;
            let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let doc: i64 = r.get(0).map_err(|e| self.err(e))?;
                let fields = r.get_ref(1).map_err(|e| self.err(e))?;
                let parsed = fields
                    .as_str()
                    .ok()
                    .and_then(|t| serde_json::from_str::<super::BTreeMap<String, String>>(t).ok());
                // A row whose fields do not parse fails its seal: verify_rows names it.
                for (k, v) in parsed.unwrap_or_default() {
                    expected.insert((k, v, doc));
                }
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT field, value, doc FROM segments")
            .map_err(|e| self.err(e))?;
        let found = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<std::collections::BTreeSet<(String, String, i64)>>>()
            .map_err(|e| self.err(e))?;
        out.extend(self.units_check()?);
        for (field, _, doc) in found.symmetric_difference(&expected) {
            let row = DamagedRow {
                table: "segments".into(),
                row: *doc,
                id: None,
                reason: format!("segment `{field}` does not match the verbatim's fields"),
            };
            if !out.contains(&row) {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// The current opinion units (their `content_hash` is their verbatim's: the table's own
    /// hash) against their verbatim's text: each span inside it, on character boundaries, as a
    /// hit that shows the unit slices it.
    fn units_check(&self) -> Result<Vec<DamagedRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT u.doc, u.idx, u.start_byte, u.end_byte, v.text FROM units u \
                 JOIN verbatims v ON v.doc = u.doc AND v.content_hash = u.content_hash \
                 WHERE u.idx >= 0",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let get = |i| r.get_ref(i).ok().and_then(|v| v.as_i64().ok());
            let (doc, idx) = (get(0).unwrap_or(-1), get(1).unwrap_or(-1));
            let text = r
                .get_ref(4)
                .ok()
                .and_then(|v| v.as_str().ok())
                .unwrap_or("");
            let fits = match (get(2), get(3)) {
                (Some(a), Some(b)) => {
                    let (a, b) = (a as usize, b as usize);
                    a < b && b <= text.len() && text.is_char_boundary(a) && text.is_char_boundary(b)
                }
                _ => false,
            };
            if !fits {
                out.push(DamagedRow {
                    table: "units".into(),
                    row: doc,
                    id: None,
                    reason: format!("unit {idx}'s span does not fit its verbatim's text"),
                });
            }
        }
        Ok(out)
    }

    /// `PRAGMA integrity_check`: SQLite's own structural check of the whole file (b-tree
    /// pages, cell order, indexes against their tables, the free list). Empty when sound.
    pub fn structure_check(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        let lines = rows
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        Ok(lines.into_iter().filter(|l| l != "ok").collect())
    }
}

impl Seals {
    /// The seal of a verbatim row as it will be written (`None`: the store has no key).
    pub(super) fn verbatim_seal(&self, values: &[ValueRef<'_>]) -> Option<Vec<u8>> {
        self.seal("verbatims", values)
    }

    /// The seal of an embedding row as it will be written.
    pub(super) fn embedding_seal(&self, doc: i64, vec_id: i64, blob: &[u8]) -> Option<Vec<u8>> {
        self.seal(
            "embeddings",
            &[
                ValueRef::Integer(doc),
                ValueRef::Integer(vec_id),
                ValueRef::Blob(blob),
            ],
        )
    }

    /// Whether the verbatim `doc` currently fails its seal (an upsert then rewrites it even
    /// when its content hash says unchanged: re-ingesting the file repairs the row).
    pub(super) fn verbatim_damaged(&self, tx: &rusqlite::Transaction<'_>, doc: i64) -> bool {
        let sql = format!("SELECT {VERBATIM_SEALED_COLS}, mac FROM verbatims WHERE doc = ?1");
        let found = tx
            .query_row(&sql, [doc], |r| {
                let values = values_at(r, &(0..11).collect::<Vec<_>>())?;
                let mac = r.get_ref(11)?;
                Ok(matches!(
                    self.verdict("verbatims", &values, mac),
                    Verdict::Damaged(_)
                ))
            })
            .optional();
        !matches!(found, Ok(Some(false)))
    }
}

/// The values of a verbatim row about to be written, as SQLite will read them back, in
/// [`VERBATIM_SEALED_COLS`] order.
pub(super) fn new_row_values<'a>(
    doc: i64,
    v: &'a super::NewVerbatim,
    fields: &'a str,
    seq: i64,
) -> Vec<ValueRef<'a>> {
    let text = |s: &'a str| ValueRef::Text(s.as_bytes());
    vec![
        ValueRef::Integer(doc),
        text(&v.id),
        text(v.text.as_str()),
        v.respondent.as_deref().map_or(ValueRef::Null, text),
        v.ts.map_or(ValueRef::Null, ValueRef::Integer),
        v.score.map_or(ValueRef::Null, ValueRef::Real),
        text(&v.language),
        text(fields),
        text(&v.source),
        text(&v.content_hash),
        ValueRef::Integer(seq),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::{NewVerbatim, Upsert};
    use super::*;

    fn nv(id: &str, text: &str) -> NewVerbatim {
        NewVerbatim {
            id: id.into(),
            text: crate::pii::redact(text),
            original: None,
            respondent: Some("r_1".into()),
            ts: Some(1_700_000_000),
            score: Some(-0.0),
            language: "en".into(),
            fields: [("country".to_string(), "FR".to_string())].into(),
            source: "t.csv:2".into(),
            content_hash: format!("h:{text}"),
            vector: vec![0.6, 0.8],
        }
    }

    fn key() -> RowKey {
        RowKey::new([7; 32])
    }

    /// Changes a stored text behind the store's back (what a flipped byte on disk does).
    fn damage(s: &Store, id: &str) {
        s.conn
            .execute(
                "UPDATE verbatims SET text = replace(text, 'battery', 'cattery') WHERE id = ?1",
                [id],
            )
            .unwrap();
    }

    #[test]
    fn a_changed_text_fails_its_seal_is_skipped_by_every_read_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        s.set_row_key(key()).unwrap();
        let run = s.begin_run("t").unwrap();
        s.upsert_batch(run, &[nv("a", "The battery died"), nv("b", "Fine")])
            .unwrap();
        assert!(s.verify_rows().unwrap().is_empty(), "fresh rows verify");
        damage(&s, "a");

        assert!(s.get("a").unwrap().is_none());
        let docs = s.get_docs(&[1, 2]).unwrap();
        assert_eq!(
            docs.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        let mut seen = Vec::new();
        s.for_each(|v, _, _| {
            seen.push(v.id);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["b"]);
        let mut changed = Vec::new();
        s.changes_since(0, |c| {
            if let super::super::Change::Upsert { verbatim, .. } = c {
                changed.push(verbatim.id);
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(changed, ["b"]);
        let noted = s.take_damage();
        assert_eq!(noted.len(), 1);
        assert_eq!((noted[0].table.as_str(), noted[0].row), ("verbatims", 1));

        let found = s.verify_rows().unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].id.as_deref(), Some("a"));

        // The same content again rewrites the damaged row (re-ingest repairs), and only it.
        let run = s.begin_run("t").unwrap();
        let out = s
            .upsert_batch(run, &[nv("a", "The battery died"), nv("b", "Fine")])
            .unwrap();
        assert_eq!(out, [Upsert::Updated, Upsert::Unchanged]);
        assert!(s.verify_rows().unwrap().is_empty());
        assert_eq!(s.get("a").unwrap().unwrap().text, "The battery died");
    }

    #[test]
    fn rows_written_before_seals_are_sealed_once_then_a_missing_seal_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        {
            let mut s = Store::open(&path).unwrap(); // no key: an older verbatim
            let run = s.begin_run("t").unwrap();
            s.upsert_batch(run, &[nv("a", "The battery died")]).unwrap();
            let macs: i64 = s
                .conn
                .query_row("SELECT count(mac) FROM verbatims", [], |r| r.get(0))
                .unwrap();
            assert_eq!(macs, 0);
        }
        let mut s = Store::open(&path).unwrap();
        s.set_row_key(key()).unwrap();
        assert!(s.verify_rows().unwrap().is_empty());
        assert!(s.get("a").unwrap().is_some());
        // A wrong key fails every row.
        let mut other = Store::open(&path).unwrap();
        other.set_row_key(RowKey::new([8; 32])).unwrap();
        assert_eq!(other.verify_rows().unwrap().len(), 2);
        // Once sealed, a row whose seal is gone is damage.
        s.conn
            .execute("UPDATE embeddings SET mac = NULL WHERE doc = 1", [])
            .unwrap();
        let found = s.verify_rows().unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].table, "embeddings");
        assert_eq!(found[0].reason, "has no integrity seal");
    }

    #[test]
    fn segments_counters_and_unit_spans_are_checked_against_the_sealed_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        s.set_row_key(key()).unwrap();
        let run = s.begin_run("t").unwrap();
        s.upsert_batch(run, &[nv("a", "x")]).unwrap();
        assert!(s.derived_check().unwrap().is_empty());
        assert!(s.structure_check().unwrap().is_empty());
        s.conn
            .execute("UPDATE segments SET value = 'BE'", [])
            .unwrap();
        s.conn
            .execute("UPDATE meta SET value = '0' WHERE key = 'seq'", [])
            .unwrap();
        s.conn
            .execute(
                "INSERT INTO units(doc, idx, content_hash, start_byte, end_byte, vector) \
                 SELECT doc, 0, content_hash, 0, 99, x'' FROM verbatims",
                [],
            )
            .unwrap();
        let found = s.derived_check().unwrap();
        let tables: Vec<&str> = found.iter().map(|d| d.table.as_str()).collect();
        assert_eq!(tables, ["meta", "units", "segments"], "{found:?}");
    }
}
