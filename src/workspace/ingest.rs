//! The ingest driver: file → records → embeddings → store (durable) → indexes.
//!
//! Order matters for crash safety. Records are embedded and written to the store in chunks, one
//! SQLite transaction per chunk; progress counts a verbatim as stored only after its chunk
//! committed. Indexes are updated after the store, from the store's change feed: if the process
//! dies in between, the next command replays what the indexes missed.
//!
//! Idempotence: each verbatim carries a hash of its content (text, respondent, date, score,
//! language, segments). Re-ingesting a file finds every hash unchanged and embeds nothing; a
//! changed row under an existing id is re-embedded and replaces the old verbatim everywhere.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::{Workspace, WorkspaceError};
use crate::access::Door;
use crate::embed::{Embedder, TextKind};
use crate::index::{Indexes, SyncReport};
use crate::ingest::{self, Format, Mapping, ReadOptions, Record, RowError};
use crate::lang::{self, Lang};
use crate::pii::{self, vault::HashKeys};
use crate::store::{NewVerbatim, RunRecord, Upsert};

/// The progress seam lives in [`crate::progress`] (themes report progress too); re-exported here
/// for callers of `workspace::ingest::Progress`.
pub use crate::progress::{NoProgress, Progress};

/// Rows between two "redacting" progress reports.
const REDACT_STEP: usize = 1000;

/// Options of one ingest.
#[derive(Clone, Debug, Default)]
pub struct IngestOptions {
    /// Mapping given on the command line; `None` reuses the workspace's.
    pub mapping: Option<Mapping>,
    /// Force a format instead of the extension's.
    pub format: Option<Format>,
    /// XLSX sheet.
    pub sheet: Option<String>,
    /// Override `privacy.keep_originals` for this ingest (`--no-keep-original` sets `Some(false)`).
    pub keep_originals: Option<bool>,
    /// CSV quoted fields that span lines are meant (`--multiline-fields`).
    pub multiline_fields: bool,
}

/// Outcome of one ingest, the `--json` summary.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IngestSummary {
    /// The file.
    #[schema(value_type = String)]
    pub file: PathBuf,
    /// Rows read (good and bad).
    pub rows: u64,
    /// New verbatims.
    pub stored: u64,
    /// Rows identical to what the store has.
    pub unchanged: u64,
    /// Existing ids with new content.
    pub updated: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Spans of personal data replaced by placeholders, per kind, in the texts and segment
    /// values of the rows read (stored, updated or unchanged).
    #[schema(value_type = std::collections::BTreeMap<String, u64>)]
    pub redacted: std::collections::BTreeMap<pii::PiiKind, u64>,
    /// Why each rejected row was rejected (`file:line: reason`).
    pub errors: Vec<String>,
    /// Rejected rows that share one cause a warning already states (many dates of one
    /// unreadable shape): a front end shows a few of them and the count, not every line.
    pub error_groups: Vec<ErrorGroup>,
    /// Rows stored without their date because it could not be read (`--on-bad-date skip-date`).
    pub dates_skipped: u64,
    /// File-level warnings (encoding fallback, ambiguous dates, missing optional columns).
    pub warnings: Vec<String>,
    /// Opinion units stored with their vectors as `prepare` made them (`ingest --prepared`
    /// only; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<u64>,
    /// Seconds spent reading, embedding, storing and indexing.
    pub timings: Timings,
}

/// Rejected rows with one cause.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorGroup {
    /// The warning that states the cause: an index into [`IngestSummary::warnings`].
    pub warning: usize,
    /// Indices into [`IngestSummary::errors`], in file order.
    pub errors: Vec<usize>,
}

/// Wall time per phase, in seconds.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
#[schema(as = IngestTimings)]
pub struct Timings {
    /// Reading and parsing the file.
    pub read: f64,
    /// Redacting, pseudonymising and sealing originals.
    pub redact: f64,
    /// Embedding.
    pub embed: f64,
    /// Store transactions.
    pub store: f64,
    /// Index catch-up.
    pub index: f64,
    /// Everything.
    pub total: f64,
}

/// Errors that stop an ingest (a bad row never does).
#[derive(Debug, thiserror::Error)]
pub enum IngestRunError {
    /// Reading the file failed as a whole.
    #[error(transparent)]
    Read(#[from] ingest::IngestError),
    /// No mapping given and none remembered. Shown in the CLI's words; the HTTP door says the
    /// same in its own ([`IngestRunError::message_for`]).
    #[error(
        "{path}: no column mapping: {}; columns in this file: {columns}",
        mapping_hint(Door::Cli)
    )]
    NoMapping {
        /// The file.
        path: PathBuf,
        /// Its header.
        columns: String,
    },
    /// Workspace failure.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Store failure.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Embedding failure.
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
}

/// How to give a column mapping, in the words of the door a request came through: flags for
/// the CLI, form fields for the HTTP API.
fn mapping_hint(door: Door) -> &'static str {
    match door {
        Door::Cli => {
            "pass --text COLUMN (and optionally --id, --respondent, --date, --score, --field)"
        }
        Door::Http => "give text=COLUMN (and optionally id, respondent, date, score, field)",
    }
}

impl IngestRunError {
    /// The message as `door` says it: an error that tells the user what to give names the
    /// flag (CLI) or the form field (HTTP); the others read the same through both doors.
    pub fn message_for(&self, door: Door) -> String {
        match self {
            IngestRunError::NoMapping { path, columns } => format!(
                "{}: no column mapping: {}; columns in this file: {columns}",
                path.display(),
                mapping_hint(door)
            ),
            e => e.to_string(),
        }
    }
}

/// The language of a record: its mapped column if it names a known language, else detected.
pub fn language_of(r: &Record) -> Lang {
    r.language
        .as_deref()
        .and_then(Lang::from_code)
        .unwrap_or_else(|| lang::detect(&r.text))
}

/// Keyed hash over everything that makes a verbatim as read (original text, respondent, date,
/// score, language, segments; not where it came from). Keyed, because a plain hash of a short
/// text with a phone number in it could be reversed by guessing.
pub fn content_hash(keys: &HashKeys, r: &Record, language: &str) -> String {
    let canon = serde_json::json!({
        "text": r.text,
        "respondent": r.respondent,
        "ts": r.date.map(|d| d.and_utc().timestamp()),
        "score": r.score,
        "language": language,
        "fields": r.fields,
    });
    keys.keyed_hash("content", canon.to_string().as_bytes())
}

/// The id a verbatim is stored under: the file's id, unless it is personal data itself (an
/// email used as a ticket id, say), in which case a keyed pseudonym `v_…` stands for it.
pub fn stored_id(keys: &HashKeys, id: &str) -> String {
    if pii::detect(id).is_empty() {
        id.to_string()
    } else {
        format!("v_{}", &keys.keyed_hash("id", id.trim().as_bytes())[..20])
    }
}

/// What a survey-link token is looked up by when the store is not at hand (`prepare`): a keyed
/// hash of the respondent value as given, trimmed ([`RedactedRecord::respondent_key`]).
pub fn respondent_key(keys: &HashKeys, who: &str) -> String {
    keys.keyed_hash("link-token", who.trim().as_bytes())
}

/// A record as the store may hold it, before its original is sealed and its text embedded:
/// what `ingest` and `prepare` both make of a row, with the same function, so the two give
/// the same ids, texts, pseudonyms and hashes.
#[derive(Debug)]
pub struct RedactedRecord {
    /// The stored id ([`stored_id`], or the keyed content id of a row without an id).
    pub id: String,
    /// The redacted text.
    pub text: pii::Redacted,
    /// Segment values, redacted.
    pub fields: std::collections::BTreeMap<String, String>,
    /// The respondent's pseudonym, when the row names one (before any survey-link lookup).
    pub respondent: Option<String>,
    /// [`respondent_key`] of the respondent value, for the survey-link lookup.
    pub respondent_key: Option<String>,
    /// The language code.
    pub language: String,
    /// [`content_hash`].
    pub content_hash: String,
    /// The kind of every span replaced in the text and the segment values.
    pub kinds: Vec<pii::PiiKind>,
    /// Whether anything in the row differs from what is stored (the original is worth sealing).
    pub changed: bool,
}

/// Redacts and pseudonymises one record under `keys` ([`RedactedRecord`]).
pub fn redact_record(keys: &HashKeys, r: &Record) -> RedactedRecord {
    let language = language_of(r).code().to_string();
    let id = if r.id_is_hash {
        keys.content_id(&r.text)
    } else {
        stored_id(keys, &r.id)
    };
    let text = pii::redact(&r.text);
    let mut kinds: Vec<pii::PiiKind> = text.spans().iter().map(|s| s.kind).collect();
    let fields: std::collections::BTreeMap<String, String> = r
        .fields
        .iter()
        .map(|(k, v)| {
            let red = pii::redact(v);
            kinds.extend(red.spans().iter().map(|s| s.kind));
            (k.clone(), red.into_string())
        })
        .collect();
    let changed = text.changed() || fields != r.fields || id != r.id || r.respondent.is_some();
    RedactedRecord {
        content_hash: content_hash(keys, r, &language),
        respondent: r.respondent.as_deref().map(|who| keys.pseudonym(who)),
        respondent_key: r.respondent.as_deref().map(|who| respondent_key(keys, who)),
        id,
        text,
        fields,
        language,
        kinds,
        changed,
    }
}

/// What the sealed original holds.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Original {
    /// The id as in the file.
    pub id: String,
    /// The text as in the file.
    pub text: String,
    /// The respondent identifier as in the file.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub respondent: Option<String>,
    /// Segment values as in the file.
    pub fields: std::collections::BTreeMap<String, String>,
}

/// Redacts a record into what the store may hold ([`redact_record`]); seals the original when
/// `keep_original` and anything was changed. A respondent value that is a survey-link token
/// (`links make`) becomes the pseudonym the token stands for; any other identifier is
/// pseudonymised. (Re-ingesting unchanged rows with another `keep_original` leaves their
/// originals as they were: the content hash covers the row, not the setting.) Also returns the
/// kind of every span replaced in the text and the segment values.
fn to_new(
    ws: &Workspace,
    r: &Record,
    path: &Path,
    keep_original: bool,
) -> Result<(NewVerbatim, Vec<pii::PiiKind>), IngestRunError> {
    let red = redact_record(ws.vault.hash_keys(), r);
    let respondent = match &r.respondent {
        None => None,
        Some(who) => ws.store.link_pseudonym(who.trim())?.or(red.respondent),
    };
    let original = (keep_original && red.changed).then(|| {
        let o = Original {
            id: r.id.clone(),
            text: r.text.clone(),
            respondent: r.respondent.clone(),
            fields: r.fields.clone(),
        };
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(&o).expect("serialises"));
        ws.vault.seal(&red.id, &plain)
    });
    let v = NewVerbatim {
        content_hash: red.content_hash,
        id: red.id,
        text: red.text,
        original,
        respondent,
        ts: r.date.map(|d| d.and_utc().timestamp()),
        score: r.score,
        language: red.language,
        fields: red.fields,
        source: format!("{}:{}", path.display(), r.line),
        vector: Vec::new(),
    };
    Ok((v, red.kinds))
}

/// From the reader's warnings: how many rows were kept without their date, and the groups of
/// rejected rows (index of the warning, lines) that one date warning explains.
fn date_outcomes(
    warnings: &[ingest::Warning],
) -> (u64, Vec<(usize, std::collections::HashSet<u64>)>) {
    let mut skipped = 0;
    let mut folded = Vec::new();
    for (i, w) in warnings.iter().enumerate() {
        if let ingest::Warning::UnreadableDates {
            rows, kept, lines, ..
        } = w
        {
            if *kept {
                skipped += *rows as u64;
            } else {
                folded.push((i, lines.iter().copied().collect()));
            }
        }
    }
    (skipped, folded)
}

/// A guess for files ingested without any mapping: a column literally called `text` (any case).
fn guess_mapping(columns: &[String]) -> Option<Mapping> {
    let find = |name: &str| {
        columns
            .iter()
            .find(|c| c.trim().eq_ignore_ascii_case(name))
            .cloned()
    };
    let text = find("text")?;
    Some(Mapping {
        text: vec![text],
        id: find("id"),
        ..Mapping::default()
    })
}

/// Ingests one file into the workspace.
pub fn ingest_file(
    ws: &mut Workspace,
    embedder: &dyn Embedder,
    path: &Path,
    opts: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestSummary, IngestRunError> {
    ingest_file_into(ws, None, embedder, path, opts, progress)
}

/// [`ingest_file`], bringing `held` — indexes the caller keeps open (the server's) — up to the
/// store in place ([`Indexes::refresh`]) instead of opening the workspace's indexes for the
/// indexing step; `None`: opens them, as [`ingest_file`] does.
pub fn ingest_file_into(
    ws: &mut Workspace,
    held: Option<&mut Indexes>,
    embedder: &dyn Embedder,
    path: &Path,
    opts: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestSummary, IngestRunError> {
    ingest_source_into(ws, held, embedder, Source::File(path), opts, progress)
}

/// What an ingest reads: a file, or bytes already in memory under a display name (an HTTP
/// upload). Either way the file is read once, and every message (`name:line: reason`, the run's
/// source, the summary) names the file or the display name — never a temporary copy.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// A file on disk.
    File(&'a Path),
    /// Bytes in memory; `name` stands for the file in messages, and its extension gives the
    /// format when [`IngestOptions::format`] does not.
    Bytes {
        /// The name messages use (an upload's file name).
        name: &'a str,
        /// The content.
        bytes: &'a [u8],
    },
}

/// [`ingest_file_into`] from a [`Source`].
pub fn ingest_source_into(
    ws: &mut Workspace,
    held: Option<&mut Indexes>,
    embedder: &dyn Embedder,
    source: Source<'_>,
    opts: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestSummary, IngestRunError> {
    let index = |ws: &Workspace| -> Result<SyncReport, WorkspaceError> {
        match held {
            Some(ix) => Ok(ix.refresh(&ws.store)?),
            None => Ok(ws.indexes()?.1),
        }
    };
    ingest_source_then(ws, embedder, source, opts, progress, index)
}

/// [`ingest_source_into`] whose indexing step, once every chunk is in the store, is `index`:
/// the server's, which takes the indexes it shares with its readers only for that step, so
/// that searches go on while the upload is read and embedded.
pub fn ingest_source_then(
    ws: &mut Workspace,
    embedder: &dyn Embedder,
    source: Source<'_>,
    opts: &IngestOptions,
    progress: &dyn Progress,
    index: impl FnOnce(&Workspace) -> Result<SyncReport, WorkspaceError>,
) -> Result<IngestSummary, IngestRunError> {
    let t0 = Instant::now();
    let _lock = ws.lock()?;
    ws.store.check_model(embedder.fingerprint())?;
    progress.start("reading", 0);
    // The format first: a file of no known format is said so, whether it exists or not.
    let (path, format, bytes): (&Path, _, std::borrow::Cow<'_, [u8]>) = match source {
        Source::File(path) => {
            let format = ingest::format_for(path, opts.format)?;
            let bytes = std::fs::read(path).map_err(|source| ingest::IngestError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            (path, format, bytes.into())
        }
        Source::Bytes { name, bytes } => {
            let path = Path::new(name);
            (path, ingest::format_for(path, opts.format)?, bytes.into())
        }
    };
    let strict = opts.mapping.is_some();
    let mut read_opts = ReadOptions {
        sheet: opts.sheet.clone(),
        max_text_bytes: ws.config.ingest.max_text_bytes,
        strict,
        multiline_fields: opts.multiline_fields,
    };
    let mut mapping = opts.mapping.clone().or_else(|| ws.config.mapping.clone());
    let mut guessed = false;
    if mapping.is_none() {
        read_opts.strict = false;
        let columns = ingest::read_named_columns(path, &bytes, format, &read_opts)?;
        mapping = guess_mapping(&columns);
        guessed = mapping.is_some();
        if mapping.is_none() {
            return Err(IngestRunError::NoMapping {
                path: path.to_path_buf(),
                columns: columns.join(", "),
            });
        }
    }
    let mapping = mapping.expect("resolved above");
    let report = ingest::read_named_bytes(path, &bytes, format, &mapping, &read_opts)?;
    drop(bytes);
    progress.advance(report.rows.len() as u64);
    progress.finish();
    let mut warnings: Vec<String> = report.warnings.iter().map(|w| w.to_string()).collect();
    let (dates_skipped, folded) = date_outcomes(&report.warnings);
    if guessed {
        warnings.push(format!(
            "{}: no mapping given; using column '{}' as text{}",
            path.display(),
            mapping.text.join("+"),
            mapping
                .id
                .as_ref()
                .map(|i| format!(" and '{i}' as id"))
                .unwrap_or_default()
        ));
    }
    if opts.mapping.is_some() || ws.config.mapping.is_none() {
        ws.config.mapping = Some(mapping.clone());
        ws.save_config()?;
    }
    let read_secs = t0.elapsed().as_secs_f64();

    // Split good rows from bad ones; a second row with an id seen earlier in the same file is
    // rejected (which of two contradicting rows is right is the user's call, not ours).
    let keep_original = opts
        .keep_originals
        .unwrap_or(ws.config.privacy.keep_originals);
    let t_redact = Instant::now();
    let mut errors: Vec<RowError> = Vec::new();
    let mut redacted = std::collections::BTreeMap::new();
    let mut good: Vec<NewVerbatim> = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let rows = report.rows.len() as u64;
    if rows > 0 {
        progress.start("redacting", rows);
    }
    let mut reported = 0;
    for (i, row) in report.rows.into_iter().enumerate() {
        if i > 0 && i % REDACT_STEP == 0 {
            progress.advance(REDACT_STEP as u64);
            reported += REDACT_STEP as u64;
        }
        match row {
            Err(e) => errors.push(e),
            Ok(r) => {
                if let Some(&l) = first_line.get(&r.id) {
                    errors.push(RowError {
                        path: path.to_path_buf(),
                        line: r.line,
                        end_line: None,
                        reason: format!(
                            "duplicate id '{}' (first seen at line {l}){}",
                            r.id,
                            if r.id_is_hash {
                                " — identical text without an id column"
                            } else {
                                ""
                            }
                        ),
                    });
                    continue;
                }
                first_line.insert(r.id.clone(), r.line);
                let (v, kinds) = to_new(ws, &r, path, keep_original)?;
                for kind in kinds {
                    *redacted.entry(kind).or_default() += 1;
                }
                good.push(v);
            }
        }
    }

    if rows > 0 {
        progress.advance(rows - reported);
        progress.finish();
    }
    let redact_secs = t_redact.elapsed().as_secs_f64();

    let mut timings = Timings {
        read: read_secs,
        redact: redact_secs,
        ..Default::default()
    };
    let source = path.display().to_string();
    let rec = store_rows(
        ws,
        embedder,
        &source,
        good,
        &errors,
        progress,
        &mut timings,
        index,
    )?;
    let error_groups = folded
        .into_iter()
        .map(|(warning, lines)| ErrorGroup {
            warning,
            errors: errors
                .iter()
                .enumerate()
                .filter(|(_, e)| e.path == path && lines.contains(&e.line))
                .map(|(i, _)| i)
                .collect(),
        })
        .filter(|g| !g.errors.is_empty())
        .collect();

    timings.total = t0.elapsed().as_secs_f64();
    Ok(IngestSummary {
        file: path.to_path_buf(),
        rows,
        stored: rec.stored,
        unchanged: rec.unchanged,
        updated: rec.updated,
        rejected: rec.rejected,
        redacted,
        // A reason quotes the bad value, which may be personal data: redacted like the rest.
        errors: errors
            .iter()
            .map(|e| pii::redact(&e.to_string()).into_string())
            .collect(),
        error_groups,
        dates_skipped,
        warnings,
        units: None,
        timings,
    })
}

/// The end of every ingest, from rows already redacted: unchanged rows (same content hash)
/// skipped, the others embedded (those without a vector yet: a prepared row brings its own)
/// and written in chunks, one transaction each; the run recorded with its rejected rows
/// (reasons redacted); then `index` brings the indexes up.
#[allow(clippy::too_many_arguments)]
pub(crate) fn store_rows(
    ws: &mut Workspace,
    embedder: &dyn Embedder,
    source: &str,
    good: Vec<NewVerbatim>,
    errors: &[RowError],
    progress: &dyn Progress,
    timings: &mut Timings,
    index: impl FnOnce(&Workspace) -> Result<SyncReport, WorkspaceError>,
) -> Result<RunRecord, IngestRunError> {
    let mut writer = RowWriter::begin(ws, source)?;
    let todo = writer.skip_unchanged(ws, good)?;
    if !todo.is_empty() {
        progress.start("embedding", todo.len() as u64);
    }
    let any = !todo.is_empty();
    writer.write(ws, embedder, todo, progress, timings)?;
    if any {
        progress.finish();
    }
    writer.finish(ws, errors, progress, timings, index)
}

/// One ingest run's writes, possibly in several parts (`ingest --prepared` writes file by
/// file, so a large prepared set is never held whole): begun once, rows written as they come,
/// finished once with the rejected rows, then the indexes brought up.
pub(crate) struct RowWriter {
    run: i64,
    rec: RunRecord,
}

impl RowWriter {
    /// Begins the run that records the rows written for `source`.
    pub(crate) fn begin(ws: &mut Workspace, source: &str) -> Result<RowWriter, IngestRunError> {
        let run = ws.store.begin_run(source)?;
        Ok(RowWriter {
            run,
            rec: RunRecord {
                source: source.to_string(),
                ..Default::default()
            },
        })
    }

    /// Counts and drops the rows whose content hash is already stored (unchanged rows cost
    /// nothing: no embedding, no write); returns the others.
    pub(crate) fn skip_unchanged(
        &mut self,
        ws: &Workspace,
        good: Vec<NewVerbatim>,
    ) -> Result<Vec<NewVerbatim>, IngestRunError> {
        let ids: Vec<&str> = good.iter().map(|v| v.id.as_str()).collect();
        let existing = ws.store.content_hashes(&ids)?;
        let (unchanged, todo): (Vec<_>, Vec<_>) = good
            .into_iter()
            .partition(|v| existing.get(&v.id) == Some(&v.content_hash));
        self.rec.unchanged += unchanged.len() as u64;
        Ok(todo)
    }

    /// Embeds the rows without a vector and writes them in chunks, one transaction each,
    /// advancing `progress` by each chunk. A chunk's rows (texts, vectors) are dropped once
    /// written: memory holds one chunk of vectors, not the run's.
    pub(crate) fn write(
        &mut self,
        ws: &mut Workspace,
        embedder: &dyn Embedder,
        todo: Vec<NewVerbatim>,
        progress: &dyn Progress,
        timings: &mut Timings,
    ) -> Result<(), IngestRunError> {
        let chunk = ws.config.ingest.chunk_size.max(1);
        let mut rows = todo.into_iter();
        loop {
            let mut batch: Vec<NewVerbatim> = rows.by_ref().take(chunk).collect();
            if batch.is_empty() {
                return Ok(());
            }
            let t = Instant::now();
            let missing: Vec<usize> = (0..batch.len())
                .filter(|&i| batch[i].vector.is_empty())
                .collect();
            if !missing.is_empty() {
                let texts: Vec<&str> = missing.iter().map(|&i| batch[i].text.as_str()).collect();
                let vectors = embedder.embed(&texts, TextKind::Passage)?;
                for (&i, vec) in missing.iter().zip(vectors) {
                    batch[i].vector = vec;
                }
            }
            timings.embed += t.elapsed().as_secs_f64();
            let t = Instant::now();
            for outcome in ws.store.upsert_batch(self.run, &batch)? {
                match outcome {
                    Upsert::Stored => self.rec.stored += 1,
                    Upsert::Updated => self.rec.updated += 1,
                    Upsert::Unchanged => self.rec.unchanged += 1,
                }
            }
            timings.store += t.elapsed().as_secs_f64();
            progress.advance(batch.len() as u64);
        }
    }

    /// Records the run with its rejected rows (reasons redacted), then `index` brings the
    /// indexes up.
    pub(crate) fn finish(
        mut self,
        ws: &mut Workspace,
        errors: &[RowError],
        progress: &dyn Progress,
        timings: &mut Timings,
        index: impl FnOnce(&Workspace) -> Result<SyncReport, WorkspaceError>,
    ) -> Result<RunRecord, IngestRunError> {
        self.rec.rejected = errors.len() as u64;
        let errs: Vec<(String, u64, String)> = errors
            .iter()
            .map(|e| {
                let reason = pii::redact(&e.reason).into_string();
                (e.path.display().to_string(), e.line, reason)
            })
            .collect();
        ws.store.finish_run(self.run, &self.rec, &errs)?;
        let t = Instant::now();
        // The verbatims this ingest wrote; the indexes may also replay changes an interrupted
        // command left, so the step's count is what they applied, when larger.
        let written = self.rec.stored + self.rec.updated;
        if written > 0 {
            progress.start("indexing", written);
        }
        let sync = index(ws)?;
        if written > 0 {
            progress.advance((sync.text.max(sync.vectors) as u64).max(written));
            progress.finish();
        }
        timings.index = t.elapsed().as_secs_f64();
        Ok(self.rec)
    }
}
