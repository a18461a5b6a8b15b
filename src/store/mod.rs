//! The store: SQLite, the single source of truth.
//!
//! Everything the derived indexes hold can be rebuilt from here: verbatims, their metadata, their
//! segment values, their embeddings and the fingerprint of the model that made them. Every change
//! to a verbatim takes the next value of a workspace-wide *sequence*; the indexes record the last
//! sequence they cover and catch up from [`Store::changes_since`] when opened.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a transaction that returned from `COMMIT`
//! survives a crash of the process or of the machine. The ingest driver reports a verbatim as
//! stored only after the transaction that wrote it committed.
//!
//! Schema changes are versioned migrations keyed on `PRAGMA user_version`; a store written by a
//! newer verbatim is refused rather than guessed at.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::pii::Redacted;

mod aspects;
mod audit;
mod erase;
mod integrity;
mod resolve;
mod scrub;
mod sentiments;
mod themes;
mod units;
mod users;
pub use aspects::{AspectNode, AspectPatch, AspectUnit};
pub use audit::{AuditDetail, AuditEntry, AuditVerdict, EntryDetail, IdKind};
pub use erase::{ErasedRows, Relabel, Vacuumed};
pub use integrity::{DamagedRow, RowKey};
pub use resolve::{
    audit_time, fold, parse_day, resolve_filter, FilterError, FilterNames, FilterParts,
    LIST_AT_MOST,
};
pub use scrub::Scrubbed;
pub use themes::{SentenceVector, StoredTheme, ThemeMember, ThemeState};
pub use units::StoredUnit;
pub use users::{Principal, PrincipalRecord, Role, UserError};

/// Errors from the store. A corrupt or foreign file names its path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed on the named store file.
    #[error("store {path}: {source}")]
    Sqlite {
        /// The store file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer version of verbatim.
    #[error("store {path} has schema version {found}; this verbatim knows up to {known}: upgrade verbatim")]
    TooNew {
        /// The store file.
        path: PathBuf,
        /// Version found on disk.
        found: i64,
        /// Latest version this build knows.
        known: i64,
    },
    /// Stored embeddings were made by another model.
    #[error("the workspace's vectors were made with model {stored}, but the model loaded is {loaded}; search with the workspace's model (verbatim.toml), or switch the workspace with `verbatim reindex --model NAME`, which re-embeds every verbatim")]
    ModelMismatch {
        /// Fingerprint recorded in the store.
        stored: String,
        /// Fingerprint of the model in use.
        loaded: String,
    },
    /// Reading or writing the store file outside SQLite failed (the free-space scrub reads it).
    #[error("store {path}: {source}")]
    Io {
        /// The store file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A stored value could not be decoded (damaged store).
    #[error("store {path}: damaged row {what}")]
    Damaged {
        /// The store file.
        path: PathBuf,
        /// Which row and field.
        what: String,
    },
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One verbatim as the store keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verbatim {
    /// Internal number (SQLite rowid); stable for the life of the verbatim.
    #[serde(skip)]
    pub doc: i64,
    /// The user-facing id (from the id column, or a content hash).
    pub id: String,
    /// The text, as embedded and indexed.
    pub text: String,
    /// Respondent identifier, if mapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub respondent: Option<String>,
    /// Date as Unix seconds (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// Numeric score (NPS, stars…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Language code used for stemming (`en`, `fr`).
    pub language: String,
    /// Segment fields.
    pub fields: BTreeMap<String, String>,
    /// Where it came from: `file:line`.
    pub source: String,
    /// Store sequence of the last change.
    #[serde(skip)]
    pub seq: i64,
}

/// A verbatim to write, with its embedding.
#[derive(Clone, Debug)]
pub struct NewVerbatim {
    /// User-facing id.
    pub id: String,
    /// Text, redacted: the store never holds customer text in clear.
    pub text: Redacted,
    /// The original row (text, segments, respondent) sealed with the workspace key, when it
    /// differs from what is stored in clear and the workspace keeps originals.
    pub original: Option<Vec<u8>>,
    /// Respondent pseudonym.
    pub respondent: Option<String>,
    /// Date (Unix seconds, UTC).
    pub ts: Option<i64>,
    /// Score.
    pub score: Option<f64>,
    /// Language code.
    pub language: String,
    /// Segment fields.
    pub fields: BTreeMap<String, String>,
    /// `file:line`.
    pub source: String,
    /// Hash of everything above except `source`: decides unchanged vs updated.
    pub content_hash: String,
    /// L2-normalised embedding.
    pub vector: Vec<f32>,
}

/// What an upsert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Upsert {
    /// A new verbatim.
    Stored,
    /// An existing id with changed content.
    Updated,
    /// Same id, same content: nothing written.
    Unchanged,
}

/// A change the indexes must apply.
#[derive(Clone, Debug)]
pub enum Change {
    /// Add or replace this verbatim (its current vector has `vec_id`).
    Upsert {
        /// The verbatim.
        verbatim: Verbatim,
        /// Vector slot of its current embedding.
        vec_id: i64,
        /// The embedding.
        vector: Vec<f32>,
    },
    /// The verbatim with this id is gone.
    Delete {
        /// Internal number of the removed verbatim.
        doc: i64,
        /// Its user-facing id.
        id: String,
        /// Store sequence of the deletion.
        seq: i64,
    },
}

/// Counts for `stats`.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct StoreStats {
    /// Verbatims.
    pub verbatims: i64,
    /// Distinct respondents (pseudonyms).
    pub respondents: i64,
    /// Verbatims whose original row is kept sealed.
    pub sealed_originals: i64,
    /// Earliest date (Unix seconds).
    pub first_ts: Option<i64>,
    /// Latest date (Unix seconds).
    pub last_ts: Option<i64>,
    /// Verbatims per language.
    pub languages: BTreeMap<String, i64>,
    /// Distinct values per segment field.
    pub fields: BTreeMap<String, i64>,
    /// Ingest runs.
    pub runs: i64,
    /// Last sequence.
    pub seq: i64,
    /// Model that made the vectors.
    pub model: Option<String>,
}

/// What [`Store::distinct_values`] reads.
#[derive(Clone, Debug, Default)]
pub struct DistinctValues {
    /// Respondent pseudonyms.
    pub respondents: std::collections::BTreeSet<String>,
    /// Field → its values.
    pub fields: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// Verbatims per language.
    pub languages: BTreeMap<String, i64>,
}

/// One ingest run, as recorded.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunRecord {
    /// Source file.
    pub source: String,
    /// New verbatims.
    pub stored: u64,
    /// Same id, same content.
    pub unchanged: u64,
    /// Same id, new content.
    pub updated: u64,
    /// Rows rejected.
    pub rejected: u64,
}

/// Metadata filter understood by both the store (SQL) and the text index.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
#[schema(as = ResolvedFilter)]
pub struct Filter {
    /// field → accepted values (OR within a field, AND across fields).
    pub fields: BTreeMap<String, Vec<String>>,
    /// Inclusive lower bound on the date (Unix seconds).
    pub since: Option<i64>,
    /// Exclusive upper bound on the date (Unix seconds).
    pub until: Option<i64>,
    /// Inclusive lower bound on the score.
    pub min_score: Option<f64>,
    /// Inclusive upper bound on the score.
    pub max_score: Option<f64>,
    /// Theme ids asked for (`--where theme=C12`): a child or parent of the aspect tree (a
    /// parent stands for any of its children) or a topic theme (`T4`); OR among them. Resolved
    /// by [`Store::resolve_filter`] into [`Filter::docs`] (the tree as of its last run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub themes: Vec<String>,
    /// The verbatims (store doc numbers) the `themes` resolved to; `None`: no theme filter (or
    /// not resolved yet). Never serialised: a recorded filter is resolved again when re-run.
    #[serde(skip)]
    pub docs: Option<std::sync::Arc<std::collections::BTreeSet<i64>>>,
}

impl Filter {
    /// True when the filter accepts everything.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
            && self.since.is_none()
            && self.until.is_none()
            && self.min_score.is_none()
            && self.max_score.is_none()
            && self.themes.is_empty()
    }

    /// Does this verbatim pass the filter? Same semantics as the SQL and tantivy forms.
    pub fn matches(&self, v: &Verbatim) -> bool {
        let fields_ok = self
            .fields
            .iter()
            .all(|(k, vals)| v.fields.get(k).is_some_and(|x| vals.iter().any(|w| w == x)));
        let date_ok = match (self.since, self.until) {
            (None, None) => true,
            (s, u) => {
                v.ts.is_some_and(|t| s.is_none_or(|s| t >= s) && u.is_none_or(|u| t < u))
            }
        };
        let score_ok = match (self.min_score, self.max_score) {
            (None, None) => true,
            (lo, hi) => v
                .score
                .is_some_and(|x| lo.is_none_or(|lo| x >= lo) && hi.is_none_or(|hi| x <= hi)),
        };
        let docs_ok = self.docs.as_ref().is_none_or(|d| d.contains(&v.doc));
        fields_ok && date_ok && score_ok && docs_ok
    }
}

const SCHEMA_VERSION: i64 = 13;

const MIGRATIONS: &[&str] = &[
    // v1: the spine.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE verbatims (
        doc          INTEGER PRIMARY KEY,
        id           TEXT NOT NULL UNIQUE,
        text         TEXT NOT NULL,
        respondent   TEXT,
        ts           INTEGER,
        score        REAL,
        language     TEXT NOT NULL,
        fields       TEXT NOT NULL,
        source       TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        run          INTEGER NOT NULL,
        seq          INTEGER NOT NULL
    );
    CREATE INDEX verbatims_seq ON verbatims(seq);
    CREATE INDEX verbatims_ts ON verbatims(ts);
    CREATE TABLE segments (
        field TEXT NOT NULL, value TEXT NOT NULL, doc INTEGER NOT NULL,
        PRIMARY KEY (field, value, doc)
    ) WITHOUT ROWID;
    CREATE INDEX segments_doc ON segments(doc);
    CREATE TABLE embeddings (
        doc    INTEGER PRIMARY KEY,
        vec_id INTEGER NOT NULL UNIQUE,
        vector BLOB NOT NULL
    );
    CREATE TABLE tombstones (seq INTEGER PRIMARY KEY, doc INTEGER NOT NULL, id TEXT NOT NULL);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        source TEXT NOT NULL,
        stored INTEGER NOT NULL DEFAULT 0,
        unchanged INTEGER NOT NULL DEFAULT 0,
        updated INTEGER NOT NULL DEFAULT 0,
        rejected INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE row_errors (run INTEGER NOT NULL, source TEXT NOT NULL, line INTEGER NOT NULL, reason TEXT NOT NULL);
    INSERT INTO meta(key, value) VALUES ('seq', '0'), ('next_vec_id', '0');
    "#,
    // v2: privacy. Sealed originals (ciphertext only; the key is in the workspace key file),
    // survey-link tokens, and the log of sensitive reads.
    r#"
    CREATE TABLE originals (id TEXT PRIMARY KEY, sealed BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE link_tokens (token TEXT PRIMARY KEY, pseudonym TEXT NOT NULL, created_at TEXT NOT NULL) WITHOUT ROWID;
    CREATE INDEX link_tokens_pseudonym ON link_tokens(pseudonym);
    CREATE INDEX verbatims_respondent ON verbatims(respondent);
    CREATE TABLE access_log (
        seq INTEGER PRIMARY KEY, at TEXT NOT NULL, caller TEXT NOT NULL, action TEXT NOT NULL,
        target TEXT NOT NULL
    );
    "#,
    // v3: themes. A theme keeps its id (T<id>) across runs; `state` is active, vanished or
    // merged (then `merged_into` names the theme its verbatims go to). Members: each verbatim's
    // first theme (NULL: "other") and optional second theme from the last run.
    r#"
    CREATE TABLE themes (
        id          INTEGER PRIMARY KEY,
        label       TEXT NOT NULL,
        keywords    TEXT NOT NULL,
        user_label  TEXT,
        centroid    BLOB NOT NULL,
        size        INTEGER NOT NULL,
        seeded      INTEGER NOT NULL DEFAULT 0,
        examples    TEXT,
        merged_into INTEGER,
        state       TEXT NOT NULL
    );
    CREATE TABLE theme_members (
        doc    INTEGER PRIMARY KEY,
        theme  INTEGER,
        second INTEGER,
        sim    REAL NOT NULL
    );
    CREATE INDEX theme_members_theme ON theme_members(theme);
    -- Sentence embeddings of multi-sentence verbatims (sentiment, second themes), made on the
    -- first theme run after the verbatim arrived; valid while content_hash matches.
    CREATE TABLE sentence_vectors (
        doc          INTEGER NOT NULL,
        idx          INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        words        INTEGER NOT NULL,
        vector       BLOB NOT NULL,
        PRIMARY KEY (doc, idx)
    ) WITHOUT ROWID;
    "#,
    // v4: the audit trail. Append-only and hash-chained: each entry's `mac` is a keyed hash
    // (workspace key) of the previous entry's mac and its own fields (see store/audit.rs).
    r#"
    CREATE TABLE audit (
        seq    INTEGER PRIMARY KEY,
        at     TEXT NOT NULL,
        caller TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL,
        ids    TEXT NOT NULL,
        prev   TEXT NOT NULL,
        mac    TEXT NOT NULL
    );
    "#,
    // v5: users and grants. A token is shown once and kept only as an Argon2id hash; `token_id`
    // (random, not secret) finds the row. Names are never reused, so the audit trail stays
    // unambiguous; revocation keeps the row.
    r#"
    CREATE TABLE principals (
        name       TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,
        role       TEXT NOT NULL,
        scope      TEXT NOT NULL,
        expires    INTEGER,
        token_id   TEXT NOT NULL UNIQUE,
        token_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at TEXT
    ) WITHOUT ROWID;
    "#,
    // v6: typed audit entries (store/audit.rs). New entries (`format` 2) hold a typed JSON
    // detail and their ids as rows of `audit_ids`; older entries keep their bytes and hash, and
    // their comma-joined ids are split once into `legacy` rows ([`audit::migrate_legacy_ids`]).
    // The unchained `access_log` goes: dropped here when empty, else folded into the chain by
    // the workspace on open (chaining needs its key).
    r#"
    ALTER TABLE audit ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE audit_ids (
        entry_seq INTEGER NOT NULL,
        kind      TEXT NOT NULL,
        id        TEXT NOT NULL,
        PRIMARY KEY (entry_seq, kind, id)
    ) WITHOUT ROWID;
    CREATE INDEX audit_ids_id ON audit_ids(id, kind);
    "#,
    // v7: opinion units (store/units.rs): byte spans of each verbatim's redacted text and their
    // embeddings, made on the first theme run after the verbatim arrived; valid while
    // content_hash matches. Idx −1 with an empty vector marks a verbatim with no unit.
    r#"
    CREATE TABLE units (
        doc          INTEGER NOT NULL,
        idx          INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        start_byte   INTEGER NOT NULL,
        end_byte     INTEGER NOT NULL,
        vector       BLOB NOT NULL,
        PRIMARY KEY (doc, idx)
    ) WITHOUT ROWID;
    "#,
    // v8: the aspect tree (store/aspects.rs): parent and child nodes in one id space (stable
    // across runs, user edits on them) and each unit's child, parent and sentiment.
    r#"
    CREATE TABLE aspect_nodes (
        id          INTEGER PRIMARY KEY,
        is_parent   INTEGER NOT NULL,
        parent      INTEGER,
        user_parent INTEGER,
        label       TEXT NOT NULL,
        user_label  TEXT,
        centroid    BLOB NOT NULL,
        units       INTEGER NOT NULL,
        verbatims   INTEGER NOT NULL,
        merged_into INTEGER,
        state       TEXT NOT NULL
    );
    CREATE TABLE aspect_units (
        doc        INTEGER NOT NULL,
        idx        INTEGER NOT NULL,
        start_byte INTEGER NOT NULL,
        end_byte   INTEGER NOT NULL,
        child      INTEGER,
        parent     INTEGER,
        score      REAL NOT NULL,
        PRIMARY KEY (doc, idx)
    ) WITHOUT ROWID;
    CREATE INDEX aspect_units_child ON aspect_units(child);
    CREATE INDEX aspect_units_parent ON aspect_units(parent);
    "#,
    // v9: seeded children of the aspect tree (`themes seed`): the example phrases as a JSON
    // array, NULL for a discovered node.
    r#"
    ALTER TABLE aspect_nodes ADD COLUMN seed TEXT;
    "#,
    // v10: stored sentiment (store/sentiments.rs): each verbatim's head score under its vector
    // slot, and each unit's, so search filters and ranks without running the head per query.
    r#"
    CREATE TABLE sentiments (
        vec_id INTEGER PRIMARY KEY,
        doc    INTEGER NOT NULL,
        score  REAL NOT NULL
    );
    CREATE INDEX sentiments_doc ON sentiments(doc);
    ALTER TABLE units ADD COLUMN sentiment REAL;
    "#,
    // v11: integrity at rest (store/integrity.rs): a keyed seal on each verbatim and embedding
    // row, NULL until the workspace first opens the store with its key.
    r#"
    ALTER TABLE verbatims ADD COLUMN mac BLOB;
    ALTER TABLE embeddings ADD COLUMN mac BLOB;
    "#,
    // v12: verbatims per language without reading every row (`stats`, and the vector index's
    // check of its per-language means at each catch-up): 11 s → 0.2 s at a million verbatims,
    // whose rows SQLite otherwise reads whole, text included, to reach the column.
    r#"
    CREATE INDEX verbatims_language ON verbatims(language);
    "#,
    // v13: unit and sentence vectors in rowid tables, the vector last. In the WITHOUT ROWID
    // tables of v3/v7 a row keeps at most ~1,000 bytes on its b-tree page: each 1.5 KB vector
    // spilled ~600 bytes to an overflow page of its own, two thirds of both tables unused
    // (at a million verbatims: 4.1 of the units' 6.3 GB), and a unit's sentiment — a column
    // added after the vector — was read from that overflow page. A rowid table keeps a row of
    // up to ~4,000 bytes on its leaf (two vectors a page); the key (doc, idx) becomes a unique
    // index. The rows move in [`Store::migrate_v13`] (chunks, each its own transaction); this
    // creates the new tables.
    r#"
    CREATE TABLE IF NOT EXISTS units_v13 (
        doc          INTEGER NOT NULL,
        idx          INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        start_byte   INTEGER NOT NULL,
        end_byte     INTEGER NOT NULL,
        sentiment    REAL,
        vector       BLOB NOT NULL,
        PRIMARY KEY (doc, idx)
    );
    CREATE TABLE IF NOT EXISTS sentence_vectors_v13 (
        doc          INTEGER NOT NULL,
        idx          INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        words        INTEGER NOT NULL,
        vector       BLOB NOT NULL,
        PRIMARY KEY (doc, idx)
    );
    -- Which verbatims have current rows (`docs_without_units`, the theme run's first question):
    -- a pass over these keys, not over the tables' vectors (at 1M, warm: 2.8 s through the
    -- 2.9 GB of `units`).
    CREATE INDEX IF NOT EXISTS units_current ON units_v13(doc, content_hash, idx);
    CREATE INDEX IF NOT EXISTS sentence_vectors_current
        ON sentence_vectors_v13(doc, content_hash, idx);
    -- The units a search must score before it filters or ranks by sentiment
    -- (`units_without_sentiment`, the first search after an ingest): only those rows, not a
    -- walk of every unit row (at 1M with nothing pending: 4.9 s → 1 ms).
    CREATE INDEX IF NOT EXISTS units_unscored ON units_v13(doc, idx) WHERE sentiment IS NULL;
    -- The sentiment filter's read (`docs_with_sentiment`): a range of this index, not a pass
    -- over the table (at 1M, 461k negative docs: 53 → 23 ms in SQLite).
    CREATE INDEX IF NOT EXISTS sentiments_score ON sentiments(score, doc);
    "#,
];

/// Rows of the old unit or sentence vector table moved per transaction by
/// [`Store::migrate_v13`] (~250 MB of pages freed and written at 1.5 KB vectors).
#[cfg(not(test))]
const V13_CHUNK_ROWS: i64 = 20_000;
/// Small in tests, so that a test's few hundred rows move in several chunks.
#[cfg(test)]
const V13_CHUNK_ROWS: i64 = 64;

/// Migration steps SQL cannot express, run in the same transaction after the SQL of `target`.
fn migrate_rust(tx: &Transaction<'_>, target: i64) -> rusqlite::Result<()> {
    if target == 6 {
        audit::migrate_legacy_ids(tx)?;
        let logged: i64 = tx.query_row("SELECT count(*) FROM access_log", [], |r| r.get(0))?;
        if logged == 0 {
            tx.execute_batch("DROP TABLE access_log")?;
        }
    }
    Ok(())
}

/// The SQLite store of one workspace.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    seals: integrity::Seals,
}

/// A read transaction of [`Store::read_snapshot`]; ends (commits, nothing was written) when
/// dropped.
#[must_use = "the snapshot ends when the guard is dropped"]
pub struct ReadSnapshot<'a> {
    conn: Option<&'a Connection>,
}

impl Drop for ReadSnapshot<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn {
            // A read transaction has nothing to lose: a failed COMMIT (none is expected) is
            // rolled back so the connection is never left inside it.
            if c.execute_batch("COMMIT").is_err() {
                let _ = c.execute_batch("ROLLBACK");
            }
        }
    }
}

fn f32s_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn blob_to_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
impl Verbatim {
    /// A verbatim with only a number, an id and a text (English, no date, score or field), for
    /// tests.
    pub(crate) fn bare(doc: i64, id: &str, text: &str) -> Verbatim {
        Verbatim {
            doc,
            id: id.into(),
            text: text.into(),
            respondent: None,
            ts: None,
            score: None,
            language: "en".into(),
            fields: Default::default(),
            source: String::new(),
            seq: 0,
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self> {
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )
        .map_err(err)?;
        // Every deletion and update of this connection zeroes the bytes it frees (cells,
        // freeblocks, freed pages), not only an erasure's: a row rewritten months before it is
        // erased leaves no old copy in free space (erase.rs, "Why the file is still vacuumed").
        conn.execute_batch("PRAGMA secure_delete=ON").map_err(err)?;
        // Every transaction of the store writes, so each takes the write lock when it begins
        // (waiting out the busy timeout like any other writer). A deferred one would read first
        // and fail at once with SQLITE_BUSY when another connection — the server has several:
        // a read pool, the audit connection, the writer — committed in between.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            seals: integrity::Seals::default(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a read transaction held until the guard is dropped, for a burst of point reads
    /// (one search reads its ~150 candidates' rows, units, vectors and sentiments one
    /// statement at a time): the reads see one state of the store, and SQLite takes and
    /// releases its shared lock once instead of per statement (the file-lock calls and the
    /// pager's re-validation were ~7% of a search's CPU at 100k). Nothing is opened when a
    /// transaction is already open on the connection (its reads are already one snapshot).
    /// Only reads may run while the guard lives: a write would have to upgrade the snapshot.
    pub fn read_snapshot(&self) -> Result<ReadSnapshot<'_>> {
        if !self.conn.is_autocommit() {
            return Ok(ReadSnapshot { conn: None });
        }
        self.conn
            .execute_batch("BEGIN DEFERRED")
            .map_err(|e| self.err(e))?;
        Ok(ReadSnapshot {
            conn: Some(&self.conn),
        })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let target = i as i64 + 1;
            if target == 13 {
                self.migrate_v13(sql)?;
                continue;
            }
            let path = self.path.clone();
            let tx = self
                .conn
                .transaction()
                .map_err(|source| StoreError::Sqlite {
                    path: path.clone(),
                    source,
                })?;
            tx.execute_batch(sql)
                .and_then(|_| migrate_rust(&tx, target))
                .and_then(|_| tx.execute_batch(&format!("PRAGMA user_version = {target}")))
                .and_then(|_| tx.commit())
                .map_err(|source| StoreError::Sqlite { path, source })?;
        }
        Ok(())
    }

    /// Schema v13 (see [`MIGRATIONS`]): unit and sentence vector rows move to the new rowid
    /// tables in chunks of [`V13_CHUNK_ROWS`], each chunk copied in key order and deleted from
    /// the old table in one transaction. One transaction for the whole move took a million
    /// verbatims' store from 11.2 to 14.2 GB (the new tables written before the old were freed)
    /// with a write-ahead log of the ~12 GB of pages it touched beside it (estimated, not
    /// watched), in 3.5 minutes; chunked, each chunk's inserts reuse the pages the chunk before
    /// freed (zeroed, `secure_delete`), the log is checkpointed after each commit: 56 s, the
    /// file +41 MB, the log at most 136 MB (2.65M rows). The file keeps the space the old layout
    /// wasted as zeroed free pages (4.8 GB there), which new rows reuse; a `backup` is a compact
    /// copy. An interrupted move resumes where it stopped (a row is in exactly one of the two
    /// tables after every commit); the last transaction drops the old tables, renames the new
    /// ones and sets the version.
    fn migrate_v13(&mut self, create: &str) -> Result<()> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        // Every step checks the version first: another connection (a second process opening
        // the store at the same time) may have finished the move while this one waited for
        // the write lock.
        let tx = self.conn.transaction().map_err(e)?;
        if Self::version_tx(&tx).map_err(e)? >= 13 {
            return Ok(());
        }
        tx.execute_batch(create)
            .and_then(|_| tx.commit())
            .map_err(e)?;
        const MOVES: [(&str, &str, &str); 2] = [
            (
                "units",
                "units_v13",
                "doc, idx, content_hash, start_byte, end_byte, sentiment, vector",
            ),
            (
                "sentence_vectors",
                "sentence_vectors_v13",
                "doc, idx, content_hash, words, vector",
            ),
        ];
        let mut left: i64 = 0;
        for (old, ..) in MOVES {
            left += self
                .conn
                .query_row(&format!("SELECT count(*) FROM {old}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(e)?;
        }
        if left >= 100_000 {
            tracing::warn!(
                store = %path.display(),
                rows = left,
                "upgrading the store's unit and sentence vector tables (schema v13, once: about a \
                 minute at a million verbatims; safe to interrupt, it resumes)"
            );
        }
        for (old, new, cols) in MOVES {
            loop {
                let tx = self.conn.transaction().map_err(e)?;
                if Self::version_tx(&tx).map_err(e)? >= 13 {
                    return Ok(());
                }
                // The chunk ends with a whole verbatim: every row of the doc at the boundary.
                let last: Option<i64> = tx
                    .query_row(
                        &format!("SELECT doc FROM {old} ORDER BY doc LIMIT 1 OFFSET ?1"),
                        [V13_CHUNK_ROWS],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(e)?;
                let upto = last.unwrap_or(i64::MAX);
                tx.execute(
                    &format!(
                        "INSERT INTO {new} ({cols}) SELECT {cols} FROM {old} WHERE doc <= ?1 \
                         ORDER BY doc, idx"
                    ),
                    [upto],
                )
                .map_err(e)?;
                let moved = tx
                    .execute(&format!("DELETE FROM {old} WHERE doc <= ?1"), [upto])
                    .map_err(e)?;
                tx.commit().map_err(e)?;
                left -= moved as i64;
                tracing::debug!(table = old, moved, left, "schema v13: rows moved");
                if last.is_none() {
                    break;
                }
            }
        }
        let tx = self.conn.transaction().map_err(e)?;
        if Self::version_tx(&tx).map_err(e)? >= 13 {
            return Ok(());
        }
        tx.execute_batch(
            "DROP TABLE units;
             ALTER TABLE units_v13 RENAME TO units;
             DROP TABLE sentence_vectors;
             ALTER TABLE sentence_vectors_v13 RENAME TO sentence_vectors;
             -- A changed verbatim's score goes with its old vector slot from now on
             -- (upsert_batch), so the sentiment filter reads `sentiments` alone; scores of old
             -- slots kept by earlier versions go here.
             DELETE FROM sentiments WHERE vec_id NOT IN (SELECT vec_id FROM embeddings);
             PRAGMA user_version = 13;",
        )
        .and_then(|_| tx.commit())
        .map_err(e)
    }

    fn version_tx(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
        tx.query_row("PRAGMA user_version", [], |r| r.get(0))
    }

    fn meta_tx(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<String>> {
        tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
    }

    /// Reads a value from the meta table.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Writes a value to the meta table (durably).
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The last store sequence (0 for an empty store).
    pub fn seq(&self) -> Result<i64> {
        Ok(self.meta("seq")?.and_then(|s| s.parse().ok()).unwrap_or(0))
    }

    /// The fingerprint of the model that made the stored vectors, if any.
    pub fn model_fingerprint(&self) -> Result<Option<String>> {
        self.meta("model")
    }

    /// Refuses to mix vectors from two models: records `fingerprint` on first use, then checks it.
    pub fn check_model(&self, fingerprint: &str) -> Result<()> {
        match self.model_fingerprint()? {
            Some(stored) if stored != fingerprint => Err(StoreError::ModelMismatch {
                stored,
                loaded: fingerprint.to_string(),
            }),
            Some(_) => Ok(()),
            None => self.set_meta("model", fingerprint),
        }
    }

    /// Content hashes of existing verbatims among `ids` (to decide stored / unchanged / updated
    /// before paying for embeddings). A row that fails its seal is left out: re-ingesting its
    /// file writes it again (the repair of a damaged row).
    pub fn content_hashes(&self, ids: &[&str]) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let sql = format!("SELECT {} FROM verbatims v WHERE v.id = ?1", Self::COLS);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        for id in ids {
            let found = stmt
                .query_row([id], |r| {
                    let values = integrity::values_at(r, &Self::SEALED_AT)?;
                    let mac = r.get_ref(Self::MAC_AT)?;
                    Ok(match self.seals.verdict("verbatims", &values, mac) {
                        integrity::Verdict::Sound => Some(r.get::<_, String>(10)?),
                        integrity::Verdict::Damaged(_) => None,
                    })
                })
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some(Some(h)) = found {
                out.insert((*id).to_string(), h);
            }
        }
        Ok(out)
    }

    /// Starts an ingest run and returns its id.
    pub fn begin_run(&self, source: &str) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO runs(started_at, source) VALUES (?1, ?2)",
                params![now_iso(), source],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records the outcome of a run and its rejected rows.
    pub fn finish_run(
        &mut self,
        run: i64,
        rec: &RunRecord,
        errors: &[(String, u64, String)],
    ) -> Result<()> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute(
            "UPDATE runs SET finished_at = ?2, stored = ?3, unchanged = ?4, updated = ?5, rejected = ?6 WHERE id = ?1",
            params![
                run,
                now_iso(),
                rec.stored as i64,
                rec.unchanged as i64,
                rec.updated as i64,
                rec.rejected as i64
            ],
        )
        .map_err(e)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO row_errors(run, source, line, reason) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(e)?;
            for (source, line, reason) in errors {
                stmt.execute(params![run, source, *line as i64, reason])
                    .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Writes a batch of verbatims with their embeddings in one durable transaction and returns
    /// what happened to each. When this returns `Ok`, every verbatim of the batch is on disk.
    pub fn upsert_batch(&mut self, run: i64, batch: &[NewVerbatim]) -> Result<Vec<Upsert>> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let seals = &self.seals;
        let tx = self.conn.transaction().map_err(e)?;
        let mut seq: i64 = Self::meta_tx(&tx, "seq")
            .map_err(e)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        // Explicit numbers (SQLite's own rule, max + 1), so the seal can cover `doc`.
        let mut next_doc: i64 = tx
            .query_row("SELECT IFNULL(MAX(doc), 0) + 1 FROM verbatims", [], |r| {
                r.get(0)
            })
            .map_err(e)?;
        let mut next_vec: i64 = Self::meta_tx(&tx, "next_vec_id")
            .map_err(e)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut out = Vec::with_capacity(batch.len());
        {
            let mut find = tx
                .prepare_cached("SELECT doc, content_hash FROM verbatims WHERE id = ?1")
                .map_err(e)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO verbatims(id, text, respondent, ts, score, language, fields, source, content_hash, run, seq, doc, mac)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .map_err(e)?;
            let mut update = tx
                .prepare_cached(
                    "UPDATE verbatims SET text = ?2, respondent = ?3, ts = ?4, score = ?5, language = ?6, fields = ?7,
                     source = ?8, content_hash = ?9, run = ?10, seq = ?11, mac = ?12 WHERE doc = ?1",
                )
                .map_err(e)?;
            let mut del_seg = tx
                .prepare_cached("DELETE FROM segments WHERE doc = ?1")
                .map_err(e)?;
            let mut ins_seg = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO segments(field, value, doc) VALUES (?1, ?2, ?3)",
                )
                .map_err(e)?;
            let mut put_vec = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO embeddings(doc, vec_id, vector, mac) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(e)?;
            let mut unscore = tx
                .prepare_cached("DELETE FROM sentiments WHERE doc = ?1")
                .map_err(e)?;
            let mut put_orig = tx
                .prepare_cached("INSERT OR REPLACE INTO originals(id, sealed) VALUES (?1, ?2)")
                .map_err(e)?;
            let mut del_orig = tx
                .prepare_cached("DELETE FROM originals WHERE id = ?1")
                .map_err(e)?;
            for v in batch {
                let existing: Option<(i64, String)> = find
                    .query_row([&v.id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(e)?;
                let fields = serde_json::to_string(&v.fields).expect("a string map serialises");
                let outcome = match existing {
                    // Unchanged, unless the stored row fails its seal: then it is written again.
                    Some((doc, ref h))
                        if *h == v.content_hash && !seals.verbatim_damaged(&tx, doc) =>
                    {
                        out.push(Upsert::Unchanged);
                        continue;
                    }
                    Some((doc, _)) => {
                        seq += 1;
                        let mac =
                            seals.verbatim_seal(&integrity::new_row_values(doc, v, &fields, seq));
                        update
                            .execute(params![
                                doc,
                                v.text.as_str(),
                                v.respondent,
                                v.ts,
                                v.score,
                                v.language,
                                fields,
                                v.source,
                                v.content_hash,
                                run,
                                seq,
                                mac
                            ])
                            .map_err(e)?;
                        (doc, Upsert::Updated)
                    }
                    None => {
                        seq += 1;
                        let doc = next_doc;
                        next_doc += 1;
                        let mac =
                            seals.verbatim_seal(&integrity::new_row_values(doc, v, &fields, seq));
                        insert
                            .execute(params![
                                v.id,
                                v.text.as_str(),
                                v.respondent,
                                v.ts,
                                v.score,
                                v.language,
                                fields,
                                v.source,
                                v.content_hash,
                                run,
                                seq,
                                doc,
                                mac
                            ])
                            .map_err(e)?;
                        (doc, Upsert::Stored)
                    }
                };
                let doc = outcome.0;
                match &v.original {
                    Some(sealed) => put_orig.execute(params![v.id, sealed]).map_err(e)?,
                    None => del_orig.execute([&v.id]).map_err(e)?,
                };
                del_seg.execute([doc]).map_err(e)?;
                for (k, val) in &v.fields {
                    ins_seg.execute(params![k, val, doc]).map_err(e)?;
                }
                if outcome.1 == Upsert::Updated {
                    // Its score was of the old vector slot (store/sentiments.rs): a row of
                    // `sentiments` is always its verbatim's current one.
                    unscore.execute([doc]).map_err(e)?;
                }
                let blob = f32s_to_blob(&v.vector);
                let mac = seals.embedding_seal(doc, next_vec, &blob);
                put_vec
                    .execute(params![doc, next_vec, blob, mac])
                    .map_err(e)?;
                next_vec += 1;
                out.push(outcome.1);
            }
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'seq'",
            [seq.to_string()],
        )
        .map_err(e)?;
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'next_vec_id'",
            [next_vec.to_string()],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(out)
    }

    /// Removes verbatims by id (store, segments, embeddings) and leaves a tombstone for the
    /// indexes. Returns how many existed.
    pub fn delete(&mut self, ids: &[&str]) -> Result<usize> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        let mut seq: i64 = Self::meta_tx(&tx, "seq")
            .map_err(e)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut n = 0;
        for id in ids {
            let doc: Option<i64> = tx
                .query_row("SELECT doc FROM verbatims WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(e)?;
            let Some(doc) = doc else { continue };
            seq += 1;
            tx.execute("DELETE FROM verbatims WHERE doc = ?1", [doc])
                .map_err(e)?;
            tx.execute("DELETE FROM segments WHERE doc = ?1", [doc])
                .map_err(e)?;
            tx.execute("DELETE FROM embeddings WHERE doc = ?1", [doc])
                .map_err(e)?;
            tx.execute("DELETE FROM originals WHERE id = ?1", [id])
                .map_err(e)?;
            tx.execute("DELETE FROM theme_members WHERE doc = ?1", [doc])
                .map_err(e)?;
            tx.execute("DELETE FROM sentence_vectors WHERE doc = ?1", [doc])
                .map_err(e)?;
            tx.execute("DELETE FROM sentiments WHERE doc = ?1", [doc])
                .map_err(e)?;
            tx.execute("DELETE FROM units WHERE doc = ?1", [doc])
                .map_err(e)?;
            tx.execute("DELETE FROM aspect_units WHERE doc = ?1", [doc])
                .map_err(e)?;
            tx.execute(
                "INSERT INTO tombstones(seq, doc, id) VALUES (?1, ?2, ?3)",
                params![seq, doc, id],
            )
            .map_err(e)?;
            n += 1;
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'seq'",
            [seq.to_string()],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(n)
    }

    fn row_to_verbatim(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<Verbatim> {
        let fields: String = r.get(7)?;
        let fields = serde_json::from_str(&fields).map_err(|err| {
            rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(err))
        })?;
        Ok(Verbatim {
            doc: r.get(0)?,
            id: r.get(1)?,
            text: r.get(2)?,
            respondent: r.get(3)?,
            ts: r.get(4)?,
            score: r.get(5)?,
            language: r.get(6)?,
            fields,
            source: r.get(8)?,
            seq: r.get(9)?,
        })
    }

    const COLS: &'static str = "v.doc, v.id, v.text, v.respondent, v.ts, v.score, v.language, \
         v.fields, v.source, v.seq, v.content_hash, v.mac";
    /// Where [`Store::COLS`] puts the columns a verbatim's seal covers, in seal order.
    const SEALED_AT: [usize; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 9];
    /// Where [`Store::COLS`] puts the seal.
    const MAC_AT: usize = 11;
    /// `e.doc, e.vec_id, e.vector, e.mac` after [`Store::COLS`], for reads that join them.
    const EMB_COLS: &'static str = "e.doc, e.vec_id, e.vector, e.mac";

    /// A verbatim from a row of [`Store::COLS`], or `None` when it fails its seal (noted as
    /// damage and logged: the row is never served nor indexed).
    fn read_verbatim(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Verbatim>> {
        let values = integrity::values_at(r, &Self::SEALED_AT)?;
        let mac = r.get_ref(Self::MAC_AT)?;
        if let integrity::Verdict::Damaged(reason) = self.seals.verdict("verbatims", &values, mac) {
            let id = match values[1] {
                rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                _ => None,
            };
            let row = values[0].as_i64().unwrap_or(-1);
            self.seals.note(
                &self.path,
                DamagedRow {
                    table: "verbatims".into(),
                    row,
                    id,
                    reason: reason.into(),
                },
            );
            return Ok(None);
        }
        self.row_to_verbatim(r).map(Some)
    }

    /// The (vector slot, vector) of a row whose [`Store::EMB_COLS`] start at `at`, or `None`
    /// when the embedding fails its seal (noted and logged, as [`Store::read_verbatim`]).
    fn read_embedding(
        &self,
        r: &rusqlite::Row<'_>,
        at: usize,
    ) -> rusqlite::Result<Option<(i64, Vec<f32>)>> {
        let values = integrity::values_at(r, &[at, at + 1, at + 2])?;
        let mac = r.get_ref(at + 3)?;
        if let integrity::Verdict::Damaged(reason) = self.seals.verdict("embeddings", &values, mac)
        {
            let row = values[0].as_i64().unwrap_or(-1);
            self.seals.note(
                &self.path,
                DamagedRow {
                    table: "embeddings".into(),
                    row,
                    id: None,
                    reason: reason.into(),
                },
            );
            return Ok(None);
        }
        let blob = values[2].as_blob().map_err(rusqlite::Error::from)?;
        Ok(Some((r.get(at + 1)?, blob_to_f32s(blob))))
    }

    /// A verbatim and its embedding from a row of [`Store::COLS`] then [`Store::EMB_COLS`];
    /// `None` when either fails its seal.
    fn read_joined(&self, r: &rusqlite::Row<'_>) -> Result<Option<(Verbatim, i64, Vec<f32>)>> {
        let Some(v) = self.read_verbatim(r).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let emb = self
            .read_embedding(r, Self::MAC_AT + 1)
            .map_err(|e| self.err(e))?;
        Ok(emb.map(|(vec_id, vector)| (v, vec_id, vector)))
    }

    /// Opens a second connection to this store with the same seal key (a reader on another
    /// thread checks the same seals).
    pub fn reopen(&self) -> Result<Store> {
        let mut s = Store::open(&self.path)?;
        s.seals = self.seals.sibling();
        Ok(s)
    }

    /// The sealed original of a verbatim, if one was kept.
    pub fn sealed_original(&self, id: &str) -> Result<Option<Vec<u8>>> {
        self.conn
            .query_row("SELECT sealed FROM originals WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// How many sealed originals the store holds.
    pub fn sealed_originals(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT count(*) FROM originals", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Records survey-link tokens and the pseudonym each stands for, in one transaction.
    pub fn put_link_tokens(&mut self, tokens: &[(String, String)]) -> Result<()> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO link_tokens(token, pseudonym, created_at) VALUES (?1, ?2, ?3)",
                )
                .map_err(e)?;
            let now = now_iso();
            for (token, pseudonym) in tokens {
                put.execute(params![token, pseudonym, now]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// The pseudonym a survey-link token stands for.
    pub fn link_pseudonym(&self, token: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT pseudonym FROM link_tokens WHERE token = ?1",
                [token],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every survey-link token and the pseudonym it stands for (`ingest --prepared` finds a
    /// token by its keyed hash, so it needs them all; there is one per respondent invited).
    pub fn link_tokens(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT token, pseudonym FROM link_tokens ORDER BY token")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e));
        rows
    }

    /// Ids of the verbatims of one respondent pseudonym, sorted.
    pub fn ids_of_respondent(&self, pseudonym: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM verbatims WHERE respondent = ?1 ORDER BY id")
            .map_err(|e| self.err(e))?;
        let ids = stmt
            .query_map([pseudonym], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| self.err(e))?;
        Ok(ids)
    }

    /// Verbatims by internal number, in the order asked (missing ones skipped).
    pub fn get_docs(&self, docs: &[i64]) -> Result<Vec<Verbatim>> {
        let sql = format!("SELECT {} FROM verbatims v WHERE v.doc = ?1", Self::COLS);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(docs.len());
        for d in docs {
            if let Some(Some(v)) = stmt
                .query_row([d], |r| self.read_verbatim(r))
                .optional()
                .map_err(|e| self.err(e))?
            {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// One verbatim by its user-facing id.
    pub fn get(&self, id: &str) -> Result<Option<Verbatim>> {
        let sql = format!("SELECT {} FROM verbatims v WHERE v.id = ?1", Self::COLS);
        self.conn
            .query_row(&sql, [id], |r| self.read_verbatim(r))
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Every change with a sequence above `after`, in sequence order: upserts with their current
    /// vector, and deletions. Calls `f` for each so callers can stream large catch-ups.
    pub fn changes_since(&self, after: i64, mut f: impl FnMut(Change) -> Result<()>) -> Result<()> {
        let sql = format!(
            "SELECT {}, {} FROM verbatims v JOIN embeddings e ON e.doc = v.doc
             WHERE v.seq > ?1 ORDER BY v.seq",
            Self::COLS,
            Self::EMB_COLS
        );
        let mut changes: Vec<(i64, Change)> = Vec::new();
        {
            let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
            let mut rows = stmt.query([after]).map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let Some((verbatim, vec_id, vector)) = self.read_joined(r)? else {
                    continue;
                };
                changes.push((
                    verbatim.seq,
                    Change::Upsert {
                        verbatim,
                        vec_id,
                        vector,
                    },
                ));
            }
            let mut stmt = self
                .conn
                .prepare("SELECT seq, doc, id FROM tombstones WHERE seq > ?1 ORDER BY seq")
                .map_err(|e| self.err(e))?;
            let tombs = stmt
                .query_map([after], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| self.err(e))?;
            for t in tombs {
                let (seq, doc, id) = t.map_err(|e| self.err(e))?;
                changes.push((seq, Change::Delete { doc, id, seq }));
            }
        }
        changes.sort_by_key(|c| c.0);
        for (_, c) in changes {
            f(c)?;
        }
        Ok(())
    }

    /// The current vectors of verbatims changed after `after`: (vector slot, language, vector),
    /// in sequence order. What the vector index needs from [`Store::changes_since`], without
    /// decoding texts and segments (the language picks the mean it is centred with).
    pub fn vectors_since(&self, after: i64) -> Result<Vec<(i64, String, Vec<f32>)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT v.language, e.doc, e.vec_id, e.vector, e.mac FROM verbatims v JOIN embeddings e ON e.doc = v.doc
                 WHERE v.seq > ?1 ORDER BY v.seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([after], |r| {
                Ok(self
                    .read_embedding(r, 1)?
                    .map(|(vec_id, v)| (vec_id, r.get(0), v)))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            if let Some((vec_id, lang, v)) = row.map_err(|e| self.err(e))? {
                out.push((vec_id, lang.map_err(|e| self.err(e))?, v));
            }
        }
        Ok(out)
    }

    /// How many verbatims with a vector each language has (what decides whether the vector
    /// index centres per language).
    pub fn vector_languages(&self) -> Result<BTreeMap<String, usize>> {
        // Every verbatim has at most one embedding (`embeddings.doc` is its key): when the two
        // tables count the same, every verbatim has one, and the language index answers alone.
        // Otherwise (a verbatim without a vector) the join, which reads every embedding row:
        // ~10 s at a million verbatims, paid at each index catch-up before this.
        let count = |sql: &str| -> Result<i64> {
            self.conn
                .query_row(sql, [], |r| r.get(0))
                .map_err(|e| self.err(e))
        };
        let every_verbatim_embedded =
            count("SELECT COUNT(*) FROM verbatims")? == count("SELECT COUNT(*) FROM embeddings")?;
        let sql = match every_verbatim_embedded {
            true => "SELECT language, COUNT(*) FROM verbatims GROUP BY language",
            false => {
                "SELECT v.language, COUNT(*) FROM verbatims v JOIN embeddings e ON e.doc = v.doc
                 GROUP BY v.language"
            }
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<BTreeMap<_, _>>>()
            .map_err(|e| self.err(e))
    }

    /// The language of each verbatim passing `filter`.
    pub fn filtered_languages(&self, filter: &Filter) -> Result<HashMap<i64, String>> {
        let (where_sql, args) = filter_sql(filter);
        let sql = format!("SELECT v.doc, v.language FROM verbatims v WHERE {where_sql}");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<HashMap<_, _>>>()
            .map_err(|e| self.err(e))
    }

    /// Every verbatim number, sorted (for consistency checks).
    pub fn all_docs(&self) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc FROM verbatims ORDER BY doc")
            .map_err(|e| self.err(e))?;
        let docs = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<i64>>>()
            .map_err(|e| self.err(e))?;
        Ok(docs)
    }

    /// The live vector slots (`vec_id` of each verbatim's current embedding), sorted.
    pub fn live_vec_ids(&self) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT vec_id FROM embeddings ORDER BY vec_id")
            .map_err(|e| self.err(e))?;
        let ids = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<i64>>>()
            .map_err(|e| self.err(e))?;
        Ok(ids)
    }

    /// Map vector slots back to verbatim numbers.
    pub fn docs_for_vec_ids(&self, vec_ids: &[i64]) -> Result<Vec<Option<i64>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc FROM embeddings WHERE vec_id = ?1")
            .map_err(|e| self.err(e))?;
        vec_ids
            .iter()
            .map(|v| {
                stmt.query_row([v], |r| r.get(0))
                    .optional()
                    .map_err(|e| self.err(e))
            })
            .collect()
    }

    /// Verbatims passing `filter` with their current vector slot and vector, in `doc` order.
    pub fn filtered_vectors(&self, filter: &Filter) -> Result<Vec<(i64, i64, Vec<f32>)>> {
        let (where_sql, args) = filter_sql(filter);
        let sql = format!(
            "SELECT v.doc, e.vec_id, e.vector FROM verbatims v JOIN embeddings e ON e.doc = v.doc WHERE {where_sql} ORDER BY v.doc"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                let blob: Vec<u8> = r.get(2)?;
                Ok((r.get(0)?, r.get(1)?, blob_to_f32s(&blob)))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// The current vector of each of `docs` that has one.
    pub fn vectors_of(&self, docs: &[i64]) -> Result<HashMap<i64, Vec<f32>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT vector FROM embeddings WHERE doc = ?1")
            .map_err(|e| self.err(e))?;
        let mut out = HashMap::new();
        for &doc in docs {
            let blob: Option<Vec<u8>> = stmt
                .query_row([doc], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some(b) = blob {
                out.insert(doc, blob_to_f32s(&b));
            }
        }
        Ok(out)
    }

    /// `(doc, vec_id)` of the verbatims passing `filter`: each one's current vector slot.
    /// Without a filter only the embeddings' (vec_id) index is read: joining the verbatims reads
    /// each embedding's row, vector included (85 ms against 10 at 100k).
    pub fn filtered_slots(&self, filter: &Filter) -> Result<Vec<(i64, i64)>> {
        if filter.is_empty() {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT doc, vec_id FROM embeddings")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.err(e))?;
            return rows
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| self.err(e));
        }
        let (where_sql, args) = filter_sql(filter);
        let sql = format!(
            "SELECT v.doc, e.vec_id FROM verbatims v JOIN embeddings e ON e.doc = v.doc WHERE {where_sql}"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Number of verbatims passing `filter`.
    pub fn count(&self, filter: &Filter) -> Result<i64> {
        let (where_sql, args) = filter_sql(filter);
        let sql = format!("SELECT COUNT(*) FROM verbatims v WHERE {where_sql}");
        self.conn
            .query_row(&sql, rusqlite::params_from_iter(args.iter()), |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// All verbatims with vectors, in `doc` order, for a rebuild. Streams through `f`.
    pub fn for_each(&self, mut f: impl FnMut(Verbatim, i64, Vec<f32>) -> Result<()>) -> Result<()> {
        let sql = format!(
            "SELECT {}, {} FROM verbatims v JOIN embeddings e ON e.doc = v.doc ORDER BY v.doc",
            Self::COLS,
            Self::EMB_COLS
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            if let Some((v, vec_id, vector)) = self.read_joined(r)? {
                f(v, vec_id, vector)?;
            }
        }
        Ok(())
    }

    /// Replaces every embedding (after a model change) in one transaction: `vectors` maps
    /// doc → new vector. New vector slots are assigned; the fingerprint is recorded.
    pub fn replace_all_vectors(
        &mut self,
        fingerprint: &str,
        vectors: &[(i64, Vec<f32>)],
    ) -> Result<()> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let seals = &self.seals;
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute("DELETE FROM embeddings", []).map_err(e)?;
        tx.execute("DELETE FROM sentence_vectors", []).map_err(e)?;
        tx.execute("DELETE FROM sentiments", []).map_err(e)?;
        tx.execute("DELETE FROM units", []).map_err(e)?;
        // The tree's centroids live in the old model's space: the next run starts afresh.
        tx.execute("DELETE FROM aspect_units", []).map_err(e)?;
        tx.execute("DELETE FROM aspect_nodes", []).map_err(e)?;
        let mut next_vec: i64 = Self::meta_tx(&tx, "next_vec_id")
            .map_err(e)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO embeddings(doc, vec_id, vector, mac) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(e)?;
            for (doc, v) in vectors {
                let blob = f32s_to_blob(v);
                let mac = seals.embedding_seal(*doc, next_vec, &blob);
                put.execute(params![doc, next_vec, blob, mac]).map_err(e)?;
                next_vec += 1;
            }
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'next_vec_id'",
            [next_vec.to_string()],
        )
        .map_err(e)?;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('model', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [fingerprint],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    /// All (doc, text) pairs, for re-embedding.
    pub fn texts(&self) -> Result<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT doc, text FROM verbatims ORDER BY doc")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Summary counts.
    pub fn stats(&self) -> Result<StoreStats> {
        let q = |sql: &str| -> Result<i64> {
            self.conn
                .query_row(sql, [], |r| r.get(0))
                .map_err(|e| self.err(e))
        };
        let mut s = StoreStats {
            verbatims: q("SELECT COUNT(*) FROM verbatims")?,
            respondents: q(
                "SELECT COUNT(DISTINCT respondent) FROM verbatims WHERE respondent IS NOT NULL",
            )?,
            sealed_originals: q("SELECT COUNT(*) FROM originals")?,
            runs: q("SELECT COUNT(*) FROM runs")?,
            seq: self.seq()?,
            model: self.model_fingerprint()?,
            ..Default::default()
        };
        (s.first_ts, s.last_ts) = self
            .conn
            .query_row("SELECT MIN(ts), MAX(ts) FROM verbatims", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut stmt = self
            .conn
            .prepare("SELECT language, COUNT(*) FROM verbatims GROUP BY language ORDER BY language")
            .map_err(|e| self.err(e))?;
        for row in stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?
        {
            let (k, v) = row.map_err(|e| self.err(e))?;
            s.languages.insert(k, v);
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT field, COUNT(DISTINCT value) FROM segments GROUP BY field ORDER BY field",
            )
            .map_err(|e| self.err(e))?;
        for row in stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?
        {
            let (k, v) = row.map_err(|e| self.err(e))?;
            s.fields.insert(k, v);
        }
        Ok(s)
    }

    /// The distinct respondent pseudonyms and segment values, and the verbatims per language:
    /// what the counts of several workspaces served as one are made of (a respondent or a
    /// value found in two counts once).
    pub fn distinct_values(&self) -> Result<DistinctValues> {
        let mut out = DistinctValues::default();
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT respondent FROM verbatims WHERE respondent IS NOT NULL")
            .map_err(|e| self.err(e))?;
        for r in stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?
        {
            out.respondents.insert(r.map_err(|e| self.err(e))?);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT field, value FROM segments")
            .map_err(|e| self.err(e))?;
        for r in stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?
        {
            let (f, v) = r.map_err(|e| self.err(e))?;
            out.fields.entry(f).or_default().insert(v);
        }
        out.languages = self.stats()?.languages;
        Ok(out)
    }

    /// Rejected rows of the last run over `source`.
    pub fn last_run(&self) -> Result<Option<RunRecord>> {
        self.conn
            .query_row(
                "SELECT source, stored, unchanged, updated, rejected FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(RunRecord {
                        source: r.get(0)?,
                        stored: r.get::<_, i64>(1)? as u64,
                        unchanged: r.get::<_, i64>(2)? as u64,
                        updated: r.get::<_, i64>(3)? as u64,
                        rejected: r.get::<_, i64>(4)? as u64,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

/// SQL `WHERE` clause (over alias `v`) and its arguments for a filter.
fn filter_sql(filter: &Filter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut clauses = vec!["1".to_string()];
    let mut args: Vec<Value> = Vec::new();
    for (field, values) in &filter.fields {
        let mut placeholders = Vec::new();
        args.push(Value::Text(field.clone()));
        let fi = args.len();
        for val in values {
            args.push(Value::Text(val.clone()));
            placeholders.push(format!("?{}", args.len()));
        }
        clauses.push(format!(
            "v.doc IN (SELECT doc FROM segments WHERE field = ?{fi} AND value IN ({}))",
            placeholders.join(", ")
        ));
    }
    if let Some(s) = filter.since {
        args.push(Value::Integer(s));
        clauses.push(format!("v.ts >= ?{}", args.len()));
    }
    if let Some(u) = filter.until {
        args.push(Value::Integer(u));
        clauses.push(format!("v.ts < ?{}", args.len()));
    }
    if let Some(lo) = filter.min_score {
        args.push(Value::Real(lo));
        clauses.push(format!("v.score >= ?{}", args.len()));
    }
    if let Some(hi) = filter.max_score {
        args.push(Value::Real(hi));
        clauses.push(format!("v.score <= ?{}", args.len()));
    }
    (clauses.join(" AND "), args)
}

fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nv(id: &str, text: &str, country: &str) -> NewVerbatim {
        let mut fields = BTreeMap::new();
        fields.insert("country".to_string(), country.to_string());
        NewVerbatim {
            id: id.into(),
            text: crate::pii::redact(text),
            original: None,
            respondent: None,
            ts: Some(1_700_000_000),
            score: Some(7.0),
            language: "en".into(),
            fields,
            source: "t.csv:2".into(),
            content_hash: format!("{text}{country}"),
            vector: vec![1.0, 0.0],
        }
    }

    #[test]
    fn upsert_reports_stored_unchanged_updated_and_bumps_seq() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let run = s.begin_run("t.csv").unwrap();
        let r = s
            .upsert_batch(run, &[nv("a", "hello", "FR"), nv("b", "bye", "US")])
            .unwrap();
        assert_eq!(r, vec![Upsert::Stored, Upsert::Stored]);
        assert_eq!(s.seq().unwrap(), 2);
        let r = s
            .upsert_batch(run, &[nv("a", "hello", "FR"), nv("b", "bye!", "US")])
            .unwrap();
        assert_eq!(r, vec![Upsert::Unchanged, Upsert::Updated]);
        assert_eq!(s.seq().unwrap(), 3);
        assert_eq!(s.get("b").unwrap().unwrap().text, "bye!");
        let mut changes = Vec::new();
        s.changes_since(2, |c| {
            changes.push(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(changes.len(), 1);
        // Two live vectors; the replaced one is gone from the live set.
        assert_eq!(s.live_vec_ids().unwrap(), vec![0, 2]);
    }

    #[test]
    fn a_read_snapshot_sees_one_state_and_ends_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut writer = Store::open(&path).unwrap();
        let run = writer.begin_run("t.csv").unwrap();
        writer.upsert_batch(run, &[nv("a", "hello", "FR")]).unwrap();
        let reader = Store::open(&path).unwrap();
        {
            let _snap = reader.read_snapshot().unwrap();
            assert!(!reader.conn.is_autocommit());
            assert_eq!(reader.get_docs(&[1, 2]).unwrap().len(), 1);
            // Another connection commits a row while the snapshot is held: not seen in it.
            writer.upsert_batch(run, &[nv("b", "bye", "US")]).unwrap();
            assert_eq!(reader.get_docs(&[1, 2]).unwrap().len(), 1);
        }
        assert!(reader.conn.is_autocommit());
        assert_eq!(reader.get_docs(&[1, 2]).unwrap().len(), 2);
        // Inside a transaction already open the guard opens nothing and ends nothing.
        reader.conn.execute_batch("BEGIN").unwrap();
        drop(reader.read_snapshot().unwrap());
        assert!(!reader.conn.is_autocommit());
        reader.conn.execute_batch("COMMIT").unwrap();
    }

    #[test]
    fn languages_are_counted_from_the_language_index_unless_a_verbatim_lacks_a_vector() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let run = s.begin_run("t.csv").unwrap();
        let mut fr = nv("c", "bonjour", "FR");
        fr.language = "fr".into();
        s.upsert_batch(run, &[nv("a", "x", "FR"), nv("b", "y", "US"), fr])
            .unwrap();
        let both = BTreeMap::from([("en".to_string(), 2), ("fr".to_string(), 1)]);
        assert_eq!(s.vector_languages().unwrap(), both);
        assert_eq!(s.stats().unwrap().languages.len(), 2);
        // The count reads the index, not the rows.
        let plan: String = s
            .conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT language, COUNT(*) FROM verbatims GROUP BY language",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("COVERING INDEX verbatims_language"), "{plan}");
        // A verbatim without a vector is not counted: the join answers.
        s.conn
            .execute(
                "DELETE FROM embeddings WHERE doc = (SELECT doc FROM verbatims WHERE id = 'c')",
                [],
            )
            .unwrap();
        assert_eq!(
            s.vector_languages().unwrap(),
            BTreeMap::from([("en".to_string(), 2)])
        );
    }

    #[test]
    fn filters_in_sql_match_filter_matches() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let run = s.begin_run("t.csv").unwrap();
        s.upsert_batch(
            run,
            &[nv("a", "x", "FR"), nv("b", "y", "US"), nv("c", "z", "BE")],
        )
        .unwrap();
        let mut f = Filter::default();
        f.fields
            .insert("country".into(), vec!["FR".into(), "BE".into()]);
        assert_eq!(s.count(&f).unwrap(), 2);
        f.min_score = Some(8.0);
        assert_eq!(s.count(&f).unwrap(), 0);
        f.min_score = None;
        f.since = Some(1_700_000_001);
        assert_eq!(s.count(&f).unwrap(), 0);
        f.since = Some(1_700_000_000);
        assert_eq!(s.count(&f).unwrap(), 2);
        let all = s.get_docs(&[1, 2, 3]).unwrap();
        assert_eq!(all.iter().filter(|v| f.matches(v)).count(), 2);
    }

    #[test]
    fn delete_leaves_tombstone_and_refuses_other_model() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let run = s.begin_run("t.csv").unwrap();
        s.upsert_batch(run, &[nv("a", "x", "FR")]).unwrap();
        assert_eq!(s.delete(&["a", "nope"]).unwrap(), 1);
        let mut n = 0;
        s.changes_since(1, |c| {
            assert!(matches!(c, Change::Delete { .. }));
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 1);
        s.check_model("m1").unwrap();
        s.check_model("m1").unwrap();
        assert!(matches!(
            s.check_model("m2"),
            Err(StoreError::ModelMismatch { .. })
        ));
    }

    /// A store file left at schema version `version` (the migrations up to it), for migration
    /// tests.
    fn schema_at(path: &Path, version: usize) -> Connection {
        let mut conn = Connection::open(path).unwrap();
        for (i, sql) in MIGRATIONS[..version].iter().enumerate() {
            let tx = conn.transaction().unwrap();
            tx.execute_batch(sql).unwrap();
            migrate_rust(&tx, i as i64 + 1).unwrap();
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                .unwrap();
            tx.commit().unwrap();
        }
        conn
    }

    /// The one integer `sql` returns.
    fn one(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Pages of the file that hold something (not on the free list).
    fn pages_used(conn: &Connection) -> i64 {
        one(conn, "PRAGMA page_count") - one(conn, "PRAGMA freelist_count")
    }

    /// A v12 store (unit and sentence vectors in WITHOUT ROWID tables, each vector spilling to
    /// an overflow page) migrates to rowid tables, in several chunks and resuming a move an
    /// earlier open left half done: every row kept once — spans, vectors, unit sentiments,
    /// sentence words — read through the store as before, the vectors in under 60% of the
    /// pages they took, and the file no larger than it was.
    #[test]
    fn unit_and_sentence_vectors_move_to_rowid_tables_in_v13() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let vector = |doc: i64, idx: i64| -> Vec<f32> {
            (0..384)
                .map(|i| (doc * 1000 + idx * 10 + i) as f32 * 0.001)
                .collect()
        };
        let docs: Vec<i64> = (1..=150).collect();
        let before = {
            let conn = schema_at(&path, 12);
            let tx = conn.unchecked_transaction().unwrap();
            for &doc in &docs {
                tx.execute(
                    "INSERT INTO verbatims(doc, id, text, language, fields, source, \
                     content_hash, run, seq) VALUES (?1, ?2, 'good coffee. slow service', 'en', \
                     '{}', 't', ?3, 1, ?1)",
                    params![doc, format!("v{doc}"), format!("h{doc}")],
                )
                .unwrap();
                // Doc 150 changed since its units were made: stale rows, kept as they are.
                let hash = if doc == 150 {
                    "old".to_string()
                } else {
                    format!("h{doc}")
                };
                for idx in 0..2i64 {
                    let (start, end) = if idx == 0 { (0, 11) } else { (13, 25) };
                    let sentiment = (doc % 3 != 0).then_some(idx as f64 - 0.5);
                    tx.execute(
                        "INSERT INTO units(doc, idx, content_hash, start_byte, end_byte, \
                         vector, sentiment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            doc,
                            idx,
                            hash,
                            start,
                            end,
                            f32s_to_blob(&vector(doc, idx)),
                            sentiment
                        ],
                    )
                    .unwrap();
                    tx.execute(
                        "INSERT INTO sentence_vectors(doc, idx, content_hash, words, vector) \
                         VALUES (?1, ?2, ?3, 2, ?4)",
                        params![doc, idx, hash, f32s_to_blob(&vector(doc, idx + 5))],
                    )
                    .unwrap();
                }
            }
            tx.commit().unwrap();
            // An earlier open was interrupted during the move: docs up to 40 moved.
            conn.execute_batch(MIGRATIONS[12]).unwrap();
            conn.execute_batch(
                "BEGIN;
                 INSERT INTO units_v13 (doc, idx, content_hash, start_byte, end_byte, sentiment, \
                 vector) SELECT doc, idx, content_hash, start_byte, end_byte, sentiment, vector \
                 FROM units WHERE doc <= 40;
                 DELETE FROM units WHERE doc <= 40;
                 COMMIT;",
            )
            .unwrap();
            (pages_used(&conn), one(&conn, "PRAGMA page_count"))
        };
        let (before, file_before) = before;
        let st = Store::open(&path).unwrap();
        assert_eq!(one(&st.conn, "PRAGMA user_version"), SCHEMA_VERSION);
        for table in ["units", "sentence_vectors"] {
            let sql: String = st
                .conn
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(!sql.to_uppercase().contains("WITHOUT ROWID"), "{sql}");
        }
        let units = st.units_of(&docs).unwrap();
        assert_eq!(units.len(), 149, "the stale doc reads as having no units");
        for doc in 1..150 {
            let got = &units[&doc];
            assert_eq!(got.len(), 2);
            assert_eq!((got[1].idx, got[1].start, got[1].end), (1, 13, 25));
            assert_eq!(got[0].vector, vector(doc, 0));
            assert_eq!(got[1].vector, vector(doc, 1));
        }
        assert_eq!(st.scan_units(&docs).unwrap(), units);
        let sentiments: HashMap<(i64, usize), f32> = units
            .iter()
            .flat_map(|(&d, us)| {
                us.iter()
                    .filter_map(move |u| Some(((d, u.idx), u.sentiment?)))
            })
            .collect();
        assert_eq!(
            sentiments.len(),
            2 * 100,
            "docs 3, 6, …, 147 had none; 150 is stale"
        );
        assert_eq!(sentiments[&(4, 1)], 0.5);
        assert_eq!(sentiments[&(4, 0)], -0.5);
        // The unscored units of current verbatims (through the partial index): docs 3, …, 147.
        let unscored = st.units_without_sentiment().unwrap();
        assert_eq!(unscored.len(), 2 * 49);
        assert!(unscored.iter().all(|u| u.0 % 3 == 0 && u.0 < 150));
        let sentences = st.sentence_vectors().unwrap();
        assert_eq!(sentences.len(), 149);
        assert_eq!(sentences[&7][1].vector, vector(7, 6));
        assert_eq!(sentences[&7][1].words, 2);
        // The stale rows were copied too (the next theme run replaces them).
        let count = |sql: &str| one(&st.conn, sql);
        assert_eq!(
            count("SELECT count(*) FROM units WHERE content_hash = 'old'"),
            2
        );
        let after = pages_used(&st.conn);
        assert!(after * 10 < before * 6, "pages used {before} → {after}");
        let file = count("PRAGMA page_count");
        assert_eq!(
            count(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN \
                 ('units_current', 'sentence_vectors_current', 'sentiments_score', \
                 'units_unscored')"
            ),
            4
        );
        // It grew by at most the first chunk's new pages (64 rows, two a page, and their key).
        assert!(
            file <= file_before + 40,
            "file of {file} pages, {file_before} before"
        );
        assert_eq!(count("SELECT count(*) FROM units"), 300);
        assert_eq!(
            count("SELECT count(*) FROM sqlite_master WHERE name LIKE '%v13%'"),
            0
        );
        // A second connection that read version 12 before this one finished the move finds
        // it done at its first step: nothing created, nothing moved.
        let mut late = Store::open(&path).unwrap();
        late.migrate_v13(MIGRATIONS[12]).unwrap();
        assert_eq!(count("SELECT count(*) FROM units"), 300);
        assert_eq!(
            count("SELECT count(*) FROM sqlite_master WHERE name LIKE '%v13%'"),
            0
        );
        // The key still refuses a second row for (doc, idx).
        assert!(st
            .conn
            .execute(
                "INSERT INTO units(doc, idx, content_hash, start_byte, end_byte, vector) \
                 VALUES (1, 0, 'h1', 0, 1, x'')",
                [],
            )
            .is_err());
    }

    /// A v8 store (units without sentiment, no `sentiments`) migrates to v10; scores are kept
    /// under the vector slot, so a changed verbatim reads as pending again, and another head
    /// clears them; deletion removes the doc's row.
    #[test]
    fn sentiment_scores_are_stored_per_vector_slot_and_migrate_from_v8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        drop(schema_at(&path, 8));
        let mut st = Store::open(&path).unwrap();
        assert_eq!(one(&st.conn, "PRAGMA user_version"), SCHEMA_VERSION);
        let run = st.begin_run("t").unwrap();
        st.upsert_batch(run, &[nv("a", "good", "FR"), nv("b", "bad", "FR")])
            .unwrap();
        let head = "head-1";
        assert!(!st.sentiments_complete(head).unwrap());
        let pending = st.sentiments_pending(head).unwrap();
        assert_eq!(pending.len(), 2);
        let (a, b) = (pending[0].0, pending[1].0);
        st.put_sentiments(&[(a, 0.5), (b, -0.5)], st.seq().unwrap())
            .unwrap();
        assert!(st.sentiments_complete(head).unwrap());
        assert_eq!(st.sentiments_of(&[a, b]).unwrap()[&b], -0.5);
        assert_eq!(st.docs_with_sentiment(-1.0, -0.1).unwrap(), [b]);
        // b's text changes: new slot, no score, not complete.
        st.upsert_batch(run, &[nv("b", "worse", "FR")]).unwrap();
        assert!(!st.sentiments_complete(head).unwrap());
        assert_eq!(st.sentiments_pending(head).unwrap().len(), 1);
        assert!(st.sentiments_of(&[b]).unwrap().is_empty());
        assert!(st.docs_with_sentiment(-1.0, 1.0).unwrap() == [a]);
        // Another head: everything pending.
        assert_eq!(st.sentiments_pending("head-2").unwrap().len(), 2);
        assert!(st.sentiments_of(&[a]).unwrap().is_empty());
        st.put_sentiments(&[(a, 0.1)], st.seq().unwrap()).unwrap();
        st.delete(&["a"]).unwrap();
        let left: i64 = st
            .conn
            .query_row("SELECT count(*) FROM sentiments", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    /// Two connections write the same store (the server's read pool, audit connection and
    /// writer): a transaction that reads before it writes must not fail because the other
    /// committed in between (a deferred transaction would, at once, with SQLITE_BUSY).
    #[test]
    fn a_transaction_that_reads_first_survives_another_connections_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut a = Store::open(&path).unwrap();
        let b = Store::open(&path).unwrap();
        let (began, go) = std::sync::mpsc::channel();
        let other = std::thread::spawn(move || {
            go.recv().unwrap();
            // Waits for `a`'s transaction (busy timeout), then commits.
            b.set_meta("other", "1").unwrap();
        });
        let tx = a.conn.transaction().unwrap();
        let _: Option<String> = Store::meta_tx(&tx, "seq").unwrap();
        began.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('mine', '1')",
            params![],
        )
        .expect("the write after the read");
        tx.commit().unwrap();
        other.join().unwrap();
        assert_eq!(a.meta("mine").unwrap().as_deref(), Some("1"));
        assert_eq!(a.meta("other").unwrap().as_deref(), Some("1"));
    }
}
