//! The audit trail: who read what, when, with which filters, and which ids came back.
//!
//! Append-only and hash-chained: entry n stores `prev` = the mac of entry n−1 ("genesis" for the
//! first) and `mac` = a keyed hash, with the workspace key, of `prev` and its own fields. Anyone
//! who edits, deletes, reorders or inserts an entry without the key breaks the chain at that
//! point, and [`Store::verify_audit`] names the first broken entry. Limits (README threat model):
//! removing entries at the *end* leaves a valid shorter chain unless the last sequence number is
//! known elsewhere (`audit verify` prints it: keep it); the workspace owner holds the key.

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use super::{now_iso, Result, Store, StoreError};

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Position in the chain (1, 2, 3…).
    pub seq: i64,
    /// UTC time.
    pub at: String,
    /// Who (user name, or "owner").
    pub caller: String,
    /// Command or route.
    pub action: String,
    /// What was asked: query, filters, options (JSON).
    pub detail: String,
    /// Ids returned (verbatims, themes…), comma-separated.
    pub ids: String,
}

/// Result of checking the chain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditVerdict {
    /// Entries checked.
    pub entries: i64,
    /// Last sequence number (keep it outside the workspace to detect truncation).
    pub last_seq: i64,
    /// The first broken entry and why, if any.
    pub broken: Option<(i64, String)>,
}

fn payload(prev: &str, e: &AuditEntry) -> Vec<u8> {
    // Length-prefixed fields: no two entries serialise alike.
    let mut out = Vec::new();
    for f in [
        prev,
        &e.seq.to_string(),
        &e.at,
        &e.caller,
        &e.action,
        &e.detail,
        &e.ids,
    ] {
        out.extend_from_slice(&(f.len() as u64).to_le_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    out
}

impl Store {
    /// Appends an entry, durably, before the caller returns any result. `mac` is the keyed hash
    /// function (the vault's). Returns the entry's sequence number.
    pub fn append_audit(
        &mut self,
        caller: &str,
        action: &str,
        detail: &str,
        ids: &[String],
        mac: &dyn Fn(&[u8]) -> String,
    ) -> Result<i64> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        // IMMEDIATE: two writers never read the same "last" entry.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e)?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(e)?;
        let (seq, prev) = match last {
            Some((s, m)) => (s + 1, m),
            None => (1, "genesis".to_string()),
        };
        let entry = AuditEntry {
            seq,
            at: now_iso(),
            caller: caller.to_string(),
            action: action.to_string(),
            detail: detail.to_string(),
            ids: ids.join(","),
        };
        let m = mac(&payload(&prev, &entry));
        tx.execute(
            "INSERT INTO audit(seq, at, caller, action, detail, ids, prev, mac) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                entry.seq,
                entry.at,
                entry.caller,
                entry.action,
                entry.detail,
                entry.ids,
                prev,
                m
            ],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(seq)
    }

    /// Every entry, oldest first, with its stored prev and mac.
    fn audit_rows(&self) -> Result<Vec<(AuditEntry, String, String)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, at, caller, action, detail, ids, prev, mac FROM audit ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    AuditEntry {
                        seq: r.get(0)?,
                        at: r.get(1)?,
                        caller: r.get(2)?,
                        action: r.get(3)?,
                        detail: r.get(4)?,
                        ids: r.get(5)?,
                    },
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// The entries, oldest first.
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
        Ok(self.audit_rows()?.into_iter().map(|r| r.0).collect())
    }

    /// Walks the chain and names the first entry that does not hold: a gap in the sequence
    /// (deleted), a `prev` that is not the previous mac (reordered or inserted), or a mac that
    /// does not match the fields (edited).
    pub fn verify_audit(&self, mac: &dyn Fn(&[u8]) -> String) -> Result<AuditVerdict> {
        let rows = self.audit_rows()?;
        let mut prev = "genesis".to_string();
        let mut broken = None;
        for (expected, (e, stored_prev, stored_mac)) in (1i64..).zip(rows.iter()) {
            let why = if e.seq != expected {
                Some(format!(
                    "sequence jumps from {} to {} (an entry was deleted or moved)",
                    expected - 1,
                    e.seq
                ))
            } else if *stored_prev != prev {
                Some("does not follow the entry before it (reordered or inserted)".to_string())
            } else if mac(&payload(stored_prev, e)) != *stored_mac {
                Some("its content does not match its hash (edited)".to_string())
            } else {
                None
            };
            if let Some(w) = why {
                broken = Some((e.seq, w));
                break;
            }
            prev = stored_mac.clone();
        }
        Ok(AuditVerdict {
            entries: rows.len() as i64,
            last_seq: rows.last().map_or(0, |r| r.0.seq),
            broken,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(b: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest([b"k".as_slice(), b].concat()))
    }

    fn store_with(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        for i in 0..n {
            s.append_audit(
                "alice",
                "search",
                &format!("{{\"q\":\"q{i}\"}}"),
                &[format!("v{i}")],
                &mac,
            )
            .unwrap();
        }
        (dir, s)
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (_d, s) = store_with(5);
        let v = s.verify_audit(&mac).unwrap();
        assert_eq!((v.entries, v.last_seq, v.broken), (5, 5, None));
    }

    #[test]
    fn every_kind_of_tampering_is_named() {
        // Edited.
        let (_d, s) = store_with(5);
        s.conn
            .execute("UPDATE audit SET ids = 'v9' WHERE seq = 3", [])
            .unwrap();
        assert_eq!(s.verify_audit(&mac).unwrap().broken.unwrap().0, 3);
        // Deleted.
        let (_d, s) = store_with(5);
        s.conn
            .execute("DELETE FROM audit WHERE seq = 2", [])
            .unwrap();
        let b = s.verify_audit(&mac).unwrap().broken.unwrap();
        assert_eq!(b.0, 3, "{b:?}");
        // Reordered: two entries swap places (and numbers).
        let (_d, s) = store_with(5);
        s.conn
            .execute_batch(
                "UPDATE audit SET seq = -2 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; \
                 UPDATE audit SET seq = 3 WHERE seq = -2;",
            )
            .unwrap();
        assert!(s.verify_audit(&mac).unwrap().broken.is_some());
        // Inserted, even with a plausible mac from another key.
        let (_d, s) = store_with(3);
        s.conn
            .execute(
                "INSERT INTO audit(seq, at, caller, action, detail, ids, prev, mac) \
                 VALUES (4, 'x', 'mallory', 'search', '{}', '', 'forged', 'forged')",
                [],
            )
            .unwrap();
        assert_eq!(s.verify_audit(&mac).unwrap().broken.unwrap().0, 4);
        // Rewritten with the wrong key.
        let (_d, s) = store_with(3);
        let other = |b: &[u8]| mac(&[b, b"x"].concat());
        assert_eq!(s.verify_audit(&other).unwrap().broken.unwrap().0, 1);
    }
}
