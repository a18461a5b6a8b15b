//! The audit trail: who read or wrote what, when, with which filters, and which ids came back.
//!
//! Append-only and hash-chained: entry n stores `prev` = the mac of entry n−1 ("genesis" for the
//! first) and `mac` = a keyed hash, with the workspace key, of `prev` and its own fields. Anyone
//! who edits, deletes, reorders or inserts an entry without the key breaks the chain at that
//! point, and [`Store::verify_audit`] names the first broken entry. Limits (README threat model):
//! removing entries at the *end* leaves a valid shorter chain unless the last sequence number is
//! known elsewhere (`audit verify` prints it: keep it); the workspace owner holds the key.
//!
//! **Typed entries.** What an entry says is an [`AuditDetail`]: one variant per kind of
//! operation, with typed fields, and the ids it touched as typed lists — verbatim ids and theme
//! ids apart, so neither a comma in an id nor a `T…` shape changes what an id is. The detail is
//! stored as JSON serialised from the struct (field order fixed by the declaration; maps are
//! `BTreeMap`s), and the mac covers those bytes. The ids are also written, one row each, to
//! `audit_ids(entry_seq, kind, id)` (indexed by id): erasure, export and incident reports ask
//! "which entries name this id" with an exact SQL match instead of parsing every entry.
//! A side table rather than `json_each` over the detail: the lookup is an index seek, and the
//! rows are checked against the (mac-covered) detail by [`Store::verify_audit`], so they cannot
//! be edited apart from it unnoticed.
//!
//! **Entries written before schema v6** keep their bytes and their hash (`format` 1: the old
//! length-prefixed payload over the raw `detail` and comma-joined `ids` columns), so a migrated
//! trail still verifies and tampering with an old entry is still detected. Their ids were split
//! once on commas into `audit_ids` rows of kind `legacy`: the old format cannot say whether an
//! id was a verbatim or a theme, and an id that itself contained a comma was stored ambiguously
//! and cannot be recovered (it appears as its pieces). Readers treat a `legacy` id as possibly a
//! verbatim id — erasure and export match it exactly, which can over-include but never miss a
//! verbatim that was recorded whole. New entries (`format` 2) hash a distinct payload (tagged
//! `audit-v2`), so an entry cannot be passed off as the other format.

use std::collections::BTreeSet;
use std::path::PathBuf;

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};

use super::{now_iso, ErasedRows, Filter, Result, Store, StoreError};

/// What kind of thing an id in the trail names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// A verbatim id, as stored.
    Verbatim,
    /// A theme id (`T3`).
    Theme,
    /// An id from an entry written before schema v6: a verbatim or a theme, unknown which.
    Legacy,
}

impl IdKind {
    fn as_str(self) -> &'static str {
        match self {
            IdKind::Verbatim => "verbatim",
            IdKind::Theme => "theme",
            IdKind::Legacy => "legacy",
        }
    }

    fn parse(s: &str) -> Option<IdKind> {
        Some(match s {
            "verbatim" => IdKind::Verbatim,
            "theme" => IdKind::Theme,
            "legacy" => IdKind::Legacy,
            _ => return None,
        })
    }
}

/// What one audit entry records, by kind of operation. Serialised (tagged by `kind`) into the
/// chained row; the id lists also go to `audit_ids`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditDetail {
    /// A search: the query as run, the grant's scope, the verbatims returned (none for an
    /// aggregates-only caller).
    Search {
        /// What the user typed.
        query: String,
        /// `text`, `vector` or `hybrid`.
        mode: String,
        /// Results asked for.
        limit: usize,
        /// The caller's filter.
        filter: Filter,
        /// The grant's scope (ANDed in).
        scope: Filter,
        /// Verbatims returned.
        verbatim_ids: Vec<String>,
    },
    /// Workspace counts.
    Stats {},
    /// A sealed original decrypted.
    Reveal {
        /// The verbatim.
        verbatim_ids: Vec<String>,
        /// Set on reveals copied from the old unchained `access_log` table (schema v6): when
        /// that table logged it. `None` for reveals recorded by the chain itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        logged_at: Option<String>,
    },
    /// The theme list (or one theme): themes shown, and the verbatims quoted.
    Themes {
        /// The one theme asked for (`themes show`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        theme: Option<String>,
        /// The caller's filter (scope included).
        filter: Filter,
        /// Quotes per theme.
        quotes: usize,
        /// Smallest cell shown (the grant's k).
        min_cell: usize,
        /// Themes shown.
        theme_ids: Vec<String>,
        /// Verbatims quoted.
        verbatim_ids: Vec<String>,
    },
    /// A question answered: the verbatims the answer rests on.
    Ask {
        /// The question.
        question: String,
        /// The caller's filter.
        filter: Filter,
        /// The grant's scope.
        scope: Filter,
        /// Verbatims the answer rests on.
        verbatim_ids: Vec<String>,
    },
    /// A report built (and where it was written, so `forget` can find it).
    Report {
        /// The filter (scope included).
        filter: Filter,
        /// Quotes per theme.
        quotes: usize,
        /// Smallest cell shown.
        min_cell: usize,
        /// Run parameters and options, as the report's manifest has them.
        parameters: serde_json::Value,
        /// Where it was written (absolute), if to a file.
        out: Option<PathBuf>,
        /// Themes in the report.
        theme_ids: Vec<String>,
        /// Verbatims quoted.
        verbatim_ids: Vec<String>,
    },
    /// Theme assignments written (one line per verbatim: not listed here).
    Assignments {
        /// The file, if not stdout.
        out: Option<PathBuf>,
        /// Verbatims assigned.
        verbatims: usize,
    },
    /// The trail read (`audit show`).
    AuditRead {
        /// Only this caller's entries.
        user: Option<String>,
        /// From this time (UTC).
        since: Option<String>,
    },
    /// `verbatim check`: the store, both indexes and the audit chain verified.
    Check {
        /// Findings (0: clean).
        damaged: usize,
    },
    /// An incident report on one user.
    Incident {
        /// The user.
        incident_user: String,
        /// From this time (UTC).
        since: Option<String>,
    },
    /// A respondent identifier looked up (only its pseudonym is kept).
    RespondentLookup {
        /// The pseudonym.
        pseudonym: String,
        /// Their verbatims.
        verbatim_ids: Vec<String>,
    },
    /// Everything held about a respondent exported.
    Export {
        /// The pseudonym.
        pseudonym: String,
        /// Their verbatims.
        verbatim_ids: Vec<String>,
    },
    /// An erasure (`forget`, `retention apply`): counts, and the ids erased.
    Erasure {
        /// `respondent`, `ids` or `retention`.
        request: String,
        /// For `respondent`.
        pseudonym: Option<String>,
        /// For `retention`.
        cutoff: Option<String>,
        /// Ids asked for that were not held.
        not_found: usize,
        /// Rows removed per table.
        store: ErasedRows,
        /// Documents purged from the text index.
        text_index_docs: u64,
        /// Points removed from the vector index.
        vector_points: u64,
        /// Theme labels recomputed.
        labels_recomputed: u64,
        /// Nodes of the aspect tree whose members, counts, label or state the erasure changed
        /// (absent from entries written before erasure reached the tree, and when none did).
        #[serde(default, skip_serializing_if = "is_zero")]
        tree_nodes_changed: u64,
        /// Reports removed.
        reports_removed: usize,
        /// Reports that could not be removed.
        reports_unreachable: usize,
        /// Verbatims erased.
        verbatim_ids: Vec<String>,
    },
    /// A file ingested.
    Ingest {
        /// The file (or upload name).
        file: String,
        /// Rows read.
        rows: u64,
        /// New verbatims.
        stored: u64,
        /// Changed verbatims.
        updated: u64,
        /// Unchanged rows.
        unchanged: u64,
        /// Rejected rows.
        rejected: u64,
    },
    /// Both indexes rebuilt (and, with a new model, every verbatim re-embedded).
    Reindex {
        /// The model asked for (`--model`), if any.
        model: Option<String>,
        /// Verbatims re-embedded.
        reembedded: usize,
        /// Documents in the text index.
        text: usize,
        /// Vectors in the HNSW index.
        vectors: usize,
    },
    /// Survey links made for a file of respondents.
    LinksMake {
        /// The file.
        file: String,
        /// Links made.
        links: usize,
        /// Rows that could not get one.
        errors: usize,
    },
    /// Themes merged into one.
    ThemeMerge {
        /// The theme kept.
        into: String,
        /// Its new label, if given.
        label: Option<String>,
        /// The kept theme first, then the themes merged into it.
        theme_ids: Vec<String>,
    },
    /// A theme renamed.
    ThemeRename {
        /// The new label.
        label: String,
        /// The theme.
        theme_ids: Vec<String>,
    },
    /// A theme seeded from examples (the examples are user text: counted, not kept here).
    ThemeSeed {
        /// Its label.
        label: String,
        /// Examples given.
        examples: usize,
        /// The new theme.
        theme_ids: Vec<String>,
    },
    /// A child of the aspect tree moved to another parent (kept across runs).
    ThemeMove {
        /// The child (`C<n>`).
        child: String,
        /// Its new parent (`P<n>`).
        to: String,
        /// The child, then the parent.
        theme_ids: Vec<String>,
    },
    /// A theme model exported (`themes export-model`): labels and centroids of the tree, no text.
    ThemeModelExport {
        /// Where (absolute), if to a file.
        out: Option<PathBuf>,
        /// The uniform sample it was discovered on: (verbatims, seed); none for all.
        sample: Option<(usize, u64)>,
        /// The model's digest.
        digest: String,
        /// Its nodes.
        theme_ids: Vec<String>,
    },
    /// A theme model imported (`themes import`): the tree is now assigned from it.
    ThemeModelImport {
        /// The file as named.
        file: String,
        /// The model's digest.
        digest: String,
        /// Its nodes.
        theme_ids: Vec<String>,
    },
    /// A backup written.
    Backup {
        /// Where (absolute).
        out: PathBuf,
        /// Files in it.
        files: u64,
        /// Bytes.
        bytes: u64,
        /// Verbatims in its store.
        verbatims: u64,
    },
    /// Keys exported from the key file (`key export --for prepare`).
    KeyExport {
        /// What for (`prepare`).
        purpose: String,
        /// Where (absolute).
        out: PathBuf,
        /// The exported keys' id.
        key_id: String,
    },
    /// A user or grant made (`kind`: `user` or `grant`).
    PrincipalAdd {
        /// Its name.
        name: String,
        /// Its role.
        role: String,
        /// Its scope.
        scope: Filter,
        /// When it expires (Unix seconds).
        expires: Option<i64>,
    },
    /// A user or grant revoked.
    PrincipalRevoke {
        /// Its name.
        name: String,
    },
    /// Users and grants listed.
    PrincipalList {},
}

impl AuditDetail {
    /// The ids this entry names, typed.
    pub fn ids(&self) -> Vec<(IdKind, &str)> {
        use AuditDetail as D;
        let (verbatims, themes): (&[String], &[String]) = match self {
            D::Search { verbatim_ids, .. }
            | D::Reveal { verbatim_ids, .. }
            | D::Ask { verbatim_ids, .. }
            | D::RespondentLookup { verbatim_ids, .. }
            | D::Export { verbatim_ids, .. }
            | D::Erasure { verbatim_ids, .. } => (verbatim_ids, &[]),
            D::Themes {
                theme_ids,
                verbatim_ids,
                ..
            }
            | D::Report {
                theme_ids,
                verbatim_ids,
                ..
            } => (verbatim_ids, theme_ids),
            D::ThemeMerge { theme_ids, .. }
            | D::ThemeRename { theme_ids, .. }
            | D::ThemeSeed { theme_ids, .. }
            | D::ThemeMove { theme_ids, .. }
            | D::ThemeModelExport { theme_ids, .. }
            | D::ThemeModelImport { theme_ids, .. } => (&[], theme_ids),
            D::Stats {}
            | D::Assignments { .. }
            | D::AuditRead { .. }
            | D::Check { .. }
            | D::Incident { .. }
            | D::Ingest { .. }
            | D::Reindex { .. }
            | D::LinksMake { .. }
            | D::Backup { .. }
            | D::KeyExport { .. }
            | D::PrincipalAdd { .. }
            | D::PrincipalRevoke { .. }
            | D::PrincipalList {} => (&[], &[]),
        };
        verbatims
            .iter()
            .map(|v| (IdKind::Verbatim, v.as_str()))
            .chain(themes.iter().map(|t| (IdKind::Theme, t.as_str())))
            .collect()
    }

    /// The canonical serialisation the mac covers.
    fn canonical(&self) -> String {
        serde_json::to_string(self).expect("audit details serialise")
    }
}

/// What a stored entry says: a typed detail, or the raw detail of an entry written before
/// schema v6 (its ids are in [`AuditEntry::ids`] with kind [`IdKind::Legacy`]).
// Entries are read in lists for display and lookups; a box would only cost the matches.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EntryDetail {
    /// Schema v6 and later.
    Typed(AuditDetail),
    /// Before: the old free-form JSON detail.
    Legacy {
        /// As it was written.
        legacy: serde_json::Value,
    },
}

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Position in the chain (1, 2, 3…).
    pub seq: i64,
    /// UTC time.
    pub at: String,
    /// Who (user name, or "owner").
    pub caller: String,
    /// Command or route.
    pub action: String,
    /// What was asked and done: typed by `kind` (search, report, erasure…); entries written
    /// before schema v6 are `{"legacy": …}`.
    #[schema(value_type = Object)]
    pub detail: EntryDetail,
    /// Verbatim ids named (and, for old entries, ids of either kind), in order.
    pub ids: Vec<String>,
    /// Theme ids named, in order.
    pub theme_ids: Vec<String>,
}

impl AuditEntry {
    /// The typed detail (`None` for entries written before schema v6).
    pub fn typed(&self) -> Option<&AuditDetail> {
        match &self.detail {
            EntryDetail::Typed(d) => Some(d),
            EntryDetail::Legacy { .. } => None,
        }
    }
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

/// An entry's row as stored.
struct Row {
    seq: i64,
    at: String,
    caller: String,
    action: String,
    detail: String,
    ids: String,
    prev: String,
    mac: String,
    format: i64,
}

impl Row {
    /// A row of `SELECT seq, at, caller, action, detail, ids, prev, mac, format FROM audit`.
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        Ok(Row {
            seq: r.get(0)?,
            at: r.get(1)?,
            caller: r.get(2)?,
            action: r.get(3)?,
            detail: r.get(4)?,
            ids: r.get(5)?,
            prev: r.get(6)?,
            mac: r.get(7)?,
            format: r.get(8)?,
        })
    }
}

/// Length-prefixed fields: no two entries serialise alike.
fn prefixed(fields: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        out.extend_from_slice(&(f.len() as u64).to_le_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    out
}

/// What the mac covers. Format 1 (before schema v6): prev, seq, at, caller, action, detail,
/// comma-joined ids. Format 2: a tag, then prev, seq, at, caller, action and the canonical
/// typed detail (which holds the ids).
fn payload(r: &Row) -> Vec<u8> {
    let seq = r.seq.to_string();
    if r.format == 1 {
        prefixed(&[
            &r.prev, &seq, &r.at, &r.caller, &r.action, &r.detail, &r.ids,
        ])
    } else {
        prefixed(&[
            "audit-v2", &r.prev, &seq, &r.at, &r.caller, &r.action, &r.detail,
        ])
    }
}

/// The old comma-joined id list, split as the old readers did (empty pieces dropped).
pub(super) fn split_legacy_ids(ids: &str) -> Vec<&str> {
    ids.split(',').filter(|s| !s.is_empty()).collect()
}

/// Writes an entry's id rows (duplicates within one entry collapse).
fn insert_ids<'a>(
    tx: &Transaction<'_>,
    seq: i64,
    ids: impl IntoIterator<Item = (IdKind, &'a str)>,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO audit_ids(entry_seq, kind, id) VALUES (?1, ?2, ?3)",
    )?;
    for (kind, id) in ids {
        stmt.execute(params![seq, kind.as_str(), id])?;
    }
    Ok(())
}

/// Schema v6, run once inside the migration's transaction: the comma-joined ids of every
/// existing entry become `legacy` rows of `audit_ids`.
pub(super) fn migrate_legacy_ids(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let rows: Vec<(i64, String)> = tx
        .prepare("SELECT seq, ids FROM audit")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (seq, ids) in rows {
        insert_ids(
            tx,
            seq,
            split_legacy_ids(&ids)
                .into_iter()
                .map(|i| (IdKind::Legacy, i)),
        )?;
    }
    Ok(())
}

/// Appends one entry inside `tx` (the caller commits).
fn append_in(
    tx: &Transaction<'_>,
    caller: &str,
    action: &str,
    detail: &AuditDetail,
    mac: &dyn Fn(&[u8]) -> String,
) -> rusqlite::Result<i64> {
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev) = match last {
        Some((s, m)) => (s + 1, m),
        None => (1, "genesis".to_string()),
    };
    let mut row = Row {
        seq,
        at: now_iso(),
        caller: caller.to_string(),
        action: action.to_string(),
        detail: detail.canonical(),
        ids: String::new(),
        prev,
        mac: String::new(),
        format: 2,
    };
    row.mac = mac(&payload(&row));
    tx.execute(
        "INSERT INTO audit(seq, at, caller, action, detail, ids, prev, mac, format) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            row.seq, row.at, row.caller, row.action, row.detail, row.ids, row.prev, row.mac,
            row.format
        ],
    )?;
    insert_ids(tx, seq, detail.ids())?;
    Ok(seq)
}

impl Store {
    /// Appends an entry, durably, before the caller returns any result. `mac` is the keyed hash
    /// function (the vault's). Returns the entry's sequence number. The only writer of the
    /// trail (the workspace's `record` is the only caller outside this module).
    pub fn append_audit(
        &mut self,
        caller: &str,
        action: &str,
        detail: &AuditDetail,
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
        let seq = append_in(&tx, caller, action, detail, mac).map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(seq)
    }

    /// Schema v6 folded the unchained `access_log` of reveals into the chain. The migration
    /// cannot do it (chaining needs the workspace key, which the store never holds), so the
    /// workspace calls this on open: each logged reveal that has no chained reveal entry of
    /// the same verbatim within two seconds (every reveal since the chain exists was recorded
    /// there first) is appended as a [`AuditDetail::Reveal`] with its original time in
    /// `logged_at`, and the table is dropped, in one transaction. Returns the entries added.
    pub fn fold_access_log(&mut self, mac: &dyn Fn(&[u8]) -> String) -> Result<usize> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let exists: bool = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'access_log'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(e)?
            > 0;
        if !exists {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e)?;
        let logged: Vec<(String, String, String)> = tx
            .prepare("SELECT at, caller, target FROM access_log ORDER BY seq")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(e)?;
        // Chained reveals, by verbatim: (time, used?).
        let mut chained: Vec<(String, i64, bool)> = tx
            .prepare(
                "SELECT i.id, a.at FROM audit a JOIN audit_ids i ON i.entry_seq = a.seq \
                 WHERE a.action = 'pii reveal' OR a.action LIKE '% /v1/verbatims/%/original'",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(e)?
            .into_iter()
            .map(|(id, at)| (id, unix(&at), false))
            .collect();
        let mut added = 0;
        for (at, caller, target) in logged {
            let t = unix(&at);
            if let Some(c) = chained
                .iter_mut()
                .find(|c| !c.2 && c.0 == target && (c.1 - t).abs() <= 2)
            {
                c.2 = true;
                continue;
            }
            let detail = AuditDetail::Reveal {
                verbatim_ids: vec![target],
                logged_at: Some(at),
            };
            append_in(&tx, &caller_name(&caller), "pii reveal", &detail, mac).map_err(e)?;
            added += 1;
        }
        tx.execute_batch("DROP TABLE access_log").map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(added)
    }

    /// Every entry, oldest first, as stored.
    fn audit_rows(&self) -> Result<Vec<Row>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, at, caller, action, detail, ids, prev, mac, format \
                 FROM audit ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], Row::read).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// The id rows of every entry: entry → set of (kind, id).
    fn audit_id_rows(&self) -> Result<std::collections::HashMap<i64, BTreeSet<(IdKind, String)>>> {
        let mut stmt = self
            .conn
            .prepare("SELECT entry_seq, kind, id FROM audit_ids")
            .map_err(|e| self.err(e))?;
        let mut out: std::collections::HashMap<i64, BTreeSet<(IdKind, String)>> =
            Default::default();
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (seq, kind, id) = row.map_err(|e| self.err(e))?;
            let kind = IdKind::parse(&kind).ok_or_else(|| StoreError::Damaged {
                path: self.path.clone(),
                what: format!("audit_ids entry {seq}: kind {kind:?}"),
            })?;
            out.entry(seq).or_default().insert((kind, id));
        }
        Ok(out)
    }

    fn entry_of(&self, r: Row) -> Result<AuditEntry> {
        let (detail, ids, theme_ids) = if r.format == 1 {
            let legacy = serde_json::from_str(&r.detail)
                .unwrap_or_else(|_| serde_json::Value::String(r.detail.clone()));
            let ids = split_legacy_ids(&r.ids)
                .into_iter()
                .map(String::from)
                .collect();
            (EntryDetail::Legacy { legacy }, ids, Vec::new())
        } else {
            let d: AuditDetail =
                serde_json::from_str(&r.detail).map_err(|err| StoreError::Damaged {
                    path: self.path.clone(),
                    what: format!("audit entry {}: detail ({err})", r.seq),
                })?;
            let mut ids = Vec::new();
            let mut themes = Vec::new();
            for (kind, id) in d.ids() {
                match kind {
                    IdKind::Theme => themes.push(id.to_string()),
                    _ => ids.push(id.to_string()),
                }
            }
            (EntryDetail::Typed(d), ids, themes)
        };
        Ok(AuditEntry {
            seq: r.seq,
            at: r.at,
            caller: r.caller,
            action: r.action,
            detail,
            ids,
            theme_ids,
        })
    }

    /// The entries, oldest first.
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
        self.audit_rows()?
            .into_iter()
            .map(|r| self.entry_of(r))
            .collect()
    }

    /// The entries that name one of `ids` as one of `kinds` (exact match), oldest first.
    pub fn audit_entries_naming(
        &self,
        ids: &[String],
        kinds: &[IdKind],
    ) -> Result<Vec<AuditEntry>> {
        let mut seqs = BTreeSet::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT entry_seq FROM audit_ids WHERE id = ?1 AND kind = ?2")
                .map_err(|e| self.err(e))?;
            for id in ids {
                for k in kinds {
                    let found = stmt
                        .query_map(params![id, k.as_str()], |r| r.get::<_, i64>(0))
                        .map_err(|e| self.err(e))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map_err(|e| self.err(e))?;
                    seqs.extend(found);
                }
            }
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, at, caller, action, detail, ids, prev, mac, format \
                 FROM audit WHERE seq = ?1",
            )
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(seqs.len());
        for s in seqs {
            let row = stmt
                .query_row([s], Row::read)
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some(row) = row {
                out.push(self.entry_of(row)?);
            }
        }
        Ok(out)
    }

    /// Walks the chain and names the first entry that does not hold: a gap in the sequence
    /// (deleted), a `prev` that is not the previous mac (reordered or inserted), a mac that
    /// does not match the fields (edited), or id rows that do not match the entry's detail
    /// (the side table edited apart from it).
    pub fn verify_audit(&self, mac: &dyn Fn(&[u8]) -> String) -> Result<AuditVerdict> {
        let rows = self.audit_rows()?;
        let mut id_rows = self.audit_id_rows()?;
        let mut prev = "genesis".to_string();
        let mut broken = None;
        let last_seq = rows.last().map_or(0, |r| r.seq);
        let entries = rows.len() as i64;
        for (expected, r) in (1i64..).zip(rows.iter()) {
            let why = if r.seq != expected {
                Some(format!(
                    "sequence jumps from {} to {} (an entry was deleted or moved)",
                    expected - 1,
                    r.seq
                ))
            } else if r.prev != prev {
                Some("does not follow the entry before it (reordered or inserted)".to_string())
            } else if !matches!(r.format, 1 | 2) || mac(&payload(r)) != r.mac {
                Some("its content does not match its hash (edited)".to_string())
            } else if id_rows.remove(&r.seq).unwrap_or_default() != expected_ids(r) {
                Some("its id rows (audit_ids) do not match its detail (edited)".to_string())
            } else {
                None
            };
            if let Some(w) = why {
                broken = Some((r.seq, w));
                break;
            }
            prev = r.mac.clone();
        }
        if broken.is_none() {
            if let Some(seq) = id_rows.keys().min() {
                broken = Some((
                    *seq,
                    "audit_ids has rows for an entry that does not exist (inserted)".to_string(),
                ));
            }
        }
        Ok(AuditVerdict {
            entries,
            last_seq,
            broken,
        })
    }
}

/// The id rows an entry must have, from its (mac-checked) fields.
fn expected_ids(r: &Row) -> BTreeSet<(IdKind, String)> {
    if r.format == 1 {
        split_legacy_ids(&r.ids)
            .into_iter()
            .map(|i| (IdKind::Legacy, i.to_string()))
            .collect()
    } else {
        serde_json::from_str::<AuditDetail>(&r.detail)
            .map(|d| {
                d.ids()
                    .into_iter()
                    .map(|(k, i)| (k, i.to_string()))
                    .collect()
            })
            // A detail that does not parse yields no rows; its mac already vouched for it.
            .unwrap_or_default()
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` as Unix seconds (0 when it is not one).
fn unix(at: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(at).map_or(0, |t| t.timestamp())
}

/// The old access log stored the caller serialised as JSON (`{"kind":"owner"}`, or a user
/// with its `name`); the chain stores names.
fn caller_name(logged: &str) -> String {
    let v: Option<serde_json::Value> = serde_json::from_str(logged).ok();
    let name = v.as_ref().and_then(|v| {
        v.get("name")
            .or_else(|| v.get("principal").and_then(|p| p.get("name")))
            .and_then(|n| n.as_str())
            .map(String::from)
            .or_else(|| match v.get("kind").and_then(|k| k.as_str()) {
                Some("owner") => Some("owner".to_string()),
                _ => None,
            })
    });
    name.unwrap_or_else(|| logged.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(b: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest([b"k".as_slice(), b].concat()))
    }

    fn search(i: usize, ids: &[&str]) -> AuditDetail {
        AuditDetail::Search {
            query: format!("q{i}"),
            mode: "text".into(),
            limit: 10,
            filter: Filter::default(),
            scope: Filter::default(),
            verbatim_ids: ids.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn store_with(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        for i in 0..n {
            s.append_audit("alice", "search", &search(i, &[&format!("v{i}")]), &mac)
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
    fn ids_with_commas_and_theme_shapes_are_rows_of_their_kind() {
        let (_d, mut s) = store_with(0);
        s.append_audit("alice", "search", &search(0, &["a,b", "T1003"]), &mac)
            .unwrap();
        s.append_audit(
            "alice",
            "themes",
            &AuditDetail::Themes {
                theme: None,
                filter: Filter::default(),
                quotes: 1,
                min_cell: 0,
                theme_ids: vec!["T3".into()],
                verbatim_ids: vec!["T3".into()],
            },
            &mac,
        )
        .unwrap();
        let naming = |id: &str, k: IdKind| {
            s.audit_entries_naming(&[id.to_string()], &[k])
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(naming("a,b", IdKind::Verbatim), [1]);
        assert_eq!(naming("a", IdKind::Verbatim), Vec::<i64>::new());
        assert_eq!(naming("T1003", IdKind::Verbatim), [1]);
        assert_eq!(naming("T1003", IdKind::Theme), Vec::<i64>::new());
        assert_eq!(naming("T3", IdKind::Verbatim), [2]);
        assert_eq!(naming("T3", IdKind::Theme), [2]);
        let e = s.audit_entries().unwrap();
        assert_eq!(e[0].ids, ["a,b", "T1003"]);
        assert_eq!(
            (e[1].ids.clone(), e[1].theme_ids.clone()),
            (vec!["T3".to_string()], vec!["T3".to_string()])
        );
        assert!(s.verify_audit(&mac).unwrap().broken.is_none());
    }

    #[test]
    fn every_kind_of_tampering_is_named() {
        // Edited.
        let (_d, s) = store_with(5);
        s.conn
            .execute(
                "UPDATE audit SET detail = replace(detail, 'v2', 'v9') WHERE seq = 3",
                [],
            )
            .unwrap();
        s.conn
            .execute(
                "UPDATE audit SET detail = replace(detail, 'q2', 'q9') WHERE seq = 3",
                [],
            )
            .unwrap();
        assert_eq!(s.verify_audit(&mac).unwrap().broken.unwrap().0, 3);
        // An id row edited apart from its entry (hiding a read from export and forget).
        let (_d, s) = store_with(5);
        s.conn
            .execute("UPDATE audit_ids SET id = 'v9' WHERE entry_seq = 2", [])
            .unwrap();
        let b = s.verify_audit(&mac).unwrap().broken.unwrap();
        assert_eq!(b.0, 2, "{b:?}");
        let (_d, s) = store_with(5);
        s.conn
            .execute("DELETE FROM audit_ids WHERE entry_seq = 4", [])
            .unwrap();
        assert_eq!(s.verify_audit(&mac).unwrap().broken.unwrap().0, 4);
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
                "INSERT INTO audit(seq, at, caller, action, detail, ids, prev, mac, format) \
                 VALUES (4, 'x', 'mallory', 'search', '{}', '', 'forged', 'forged', 2)",
                [],
            )
            .unwrap();
        assert_eq!(s.verify_audit(&mac).unwrap().broken.unwrap().0, 4);
        // A new entry passed off as an old-format one.
        let (_d, s) = store_with(3);
        s.conn
            .execute("UPDATE audit SET format = 1 WHERE seq = 2", [])
            .unwrap();
        assert_eq!(s.verify_audit(&mac).unwrap().broken.unwrap().0, 2);
        // Rewritten with the wrong key.
        let (_d, s) = store_with(3);
        let other = |b: &[u8]| mac(&[b, b"x"].concat());
        assert_eq!(s.verify_audit(&other).unwrap().broken.unwrap().0, 1);
    }

    #[test]
    fn old_entries_keep_their_hash_and_their_ids_become_legacy_rows() {
        let (_d, mut s) = store_with(0);
        // An entry as schema v5 wrote it: format 1, comma-joined ids.
        let mut old = Row {
            seq: 1,
            at: "2026-01-01T00:00:00Z".into(),
            caller: "owner".into(),
            action: "report".into(),
            detail: "{\"out\":\"/tmp/r.md\"}".into(),
            ids: "a,b,T1003".into(),
            prev: "genesis".into(),
            mac: String::new(),
            format: 1,
        };
        old.mac = mac(&payload(&old));
        s.conn
            .execute(
                "INSERT INTO audit(seq, at, caller, action, detail, ids, prev, mac, format) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1)",
                params![
                    old.seq, old.at, old.caller, old.action, old.detail, old.ids, old.prev, old.mac
                ],
            )
            .unwrap();
        {
            let tx = s.conn.transaction().unwrap();
            migrate_legacy_ids(&tx).unwrap();
            tx.commit().unwrap();
        }
        s.append_audit("owner", "search", &search(0, &["x"]), &mac)
            .unwrap();
        assert!(s.verify_audit(&mac).unwrap().broken.is_none());
        let hit = s
            .audit_entries_naming(&["T1003".to_string()], &[IdKind::Legacy])
            .unwrap();
        assert_eq!(hit.len(), 1);
        assert_eq!(hit[0].ids, ["a", "b", "T1003"]);
        s.conn
            .execute("UPDATE audit SET ids = 'a' WHERE seq = 1", [])
            .unwrap();
        assert_eq!(s.verify_audit(&mac).unwrap().broken.unwrap().0, 1);
    }

    #[test]
    fn logged_callers_become_names() {
        assert_eq!(caller_name("{\"kind\":\"owner\"}"), "owner");
        assert_eq!(
            caller_name("{\"kind\":\"user\",\"name\":\"sam\",\"role\":\"support\"}"),
            "sam"
        );
        assert_eq!(caller_name("weird"), "weird");
    }
}

/// For `skip_serializing_if`: a count added to a detail later is left out when zero, so the
/// entries written before it serialise (and verify) as they were written.
fn is_zero(n: &u64) -> bool {
    *n == 0
}
