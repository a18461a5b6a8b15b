//! `verbatim ingest --prepared DIR [--shard i/S]`: stores rows that `verbatim prepare` made
//! elsewhere (a Spark job's Parquet) — nothing embedded here.
//!
//! *Refusals before anything is written*: every row of every file is checked first — schema
//! version, model fingerprint (the workspace's), key id (the workspace's [`HashKeys`]) — and one
//! mismatch stops the command (exit 2) with the file and row; a prepared set made with another
//! model or key would store vectors that cannot be compared or pseudonyms that do not match.
//!
//! *Same rows as `ingest`*: the prepared values go through the same tail
//! ([`super::ingest::RowWriter`]): unchanged rows (same content hash) are skipped, the others
//! written in chunks, one transaction each, then the indexes caught up. The set is read file by
//! file after the check, and each file's rows and units stored before the next is read: memory
//! holds one file's rows (Spark writes many part files), not the set's. The text is redacted
//! again on the way in (idempotent: a placeholder never triggers a detection), so the store's
//! `Redacted` text is made here, as everywhere, by `pii::redact`. A respondent value that is a
//! survey-link token is found by its keyed hash (`respondent_key`) among the workspace's tokens.
//! A second row with an id seen earlier in the set (files by name, rows in order) is rejected,
//! as in a file.
//!
//! *Shards*: `--shard i/S` keeps the rows whose respondent (else id) hashes to `i` of `S`
//! ([`shard_of`]), so one respondent lives in one shard and `forget` touches one workspace.
//! Rejected rows are recorded by shard 0 only, so that S shards count each once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::ingest::{respondent_key, IngestRunError, IngestSummary, Progress, RowWriter, Timings};
use super::prepare::{self, PrepareError, PreparedRow, SCHEMA_VERSION};
use super::{Workspace, WorkspaceError};
use crate::embed::Embedder;
use crate::index::SyncReport;
use crate::ingest::RowError;
use crate::pii;
use crate::progress::NoProgress;
use crate::store::{NewVerbatim, StoredUnit};
use crate::themes::units::{UNIT_INPUT, UNIT_INPUT_KEY};

/// One shard of `S`: `index` in `0..count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("'{s}' is not a shard: give i/S with 0 ≤ i < S (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// The shard (of `count`) a verbatim belongs to: SHA-256 of its respondent pseudonym (of its
/// id when it has none), first 8 bytes big-endian, modulo `count`.
pub fn shard_of(respondent: Option<&str>, id: &str, count: u32) -> u32 {
    let key = match respondent {
        Some(r) => format!("respondent\0{r}"),
        None => format!("id\0{id}"),
    };
    let h = Sha256::digest(key.as_bytes());
    let first = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    (first % u64::from(count)) as u32
}

/// Errors that stop a prepared ingest.
#[derive(Debug, thiserror::Error)]
pub enum PreparedIngestError {
    /// The prepared set was made for another workspace, model or schema.
    #[error("{path}: row {line}: {what} is {found}, this workspace's is {expected}: refused, nothing written ({hint})")]
    Refused {
        /// The file.
        path: PathBuf,
        /// The row's line.
        line: u64,
        /// `model`, `key id` or `schema version`.
        what: &'static str,
        /// What the row says.
        found: String,
        /// What the workspace has.
        expected: String,
        /// What to do.
        hint: &'static str,
    },
    /// A row holds no vector of the model's dimension, or misses a value a good row has.
    #[error("{path}: row {line}: {reason}")]
    BadRow {
        /// The file.
        path: PathBuf,
        /// The row's line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A file cannot be read.
    #[error(transparent)]
    File(#[from] PrepareError),
    /// Storing failed.
    #[error(transparent)]
    Ingest(#[from] IngestRunError),
    /// Workspace failure.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Store failure.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Reads one file's rows.
fn file_rows(path: &Path) -> Result<Vec<PreparedRow>, PreparedIngestError> {
    let mut rows = Vec::new();
    for batch in prepare::read_prepared_file(path)? {
        rows.extend(
            prepare::rows_of(&batch).map_err(|reason| PrepareError::File {
                path: path.to_path_buf(),
                reason,
            })?,
        );
    }
    Ok(rows)
}

/// Checks every row of `files` against the workspace before anything is written.
fn check_files(
    files: &[PathBuf],
    model: &str,
    key_id: &str,
    dim: usize,
) -> Result<u64, PreparedIngestError> {
    let mut rows = 0u64;
    for path in files {
        for r in file_rows(path)? {
            rows += 1;
            let refuse =
                |what, found: String, expected: String, hint| PreparedIngestError::Refused {
                    path: path.clone(),
                    line: r.line,
                    what,
                    found,
                    expected,
                    hint,
                };
            if r.schema_version != SCHEMA_VERSION {
                return Err(refuse(
                    "schema version",
                    r.schema_version.to_string(),
                    SCHEMA_VERSION.to_string(),
                    "prepare again with this verbatim",
                ));
            }
            if r.model != model {
                return Err(refuse(
                    "model",
                    r.model.clone(),
                    model.to_string(),
                    "prepare with the workspace's model: --model as in its verbatim.toml",
                ));
            }
            if r.key_id != key_id {
                return Err(refuse(
                    "key id",
                    r.key_id.clone(),
                    key_id.to_string(),
                    "prepare with the key `verbatim key export --for prepare` wrote from this workspace",
                ));
            }
            if r.error.is_some() {
                continue;
            }
            let bad = |reason: &str| PreparedIngestError::BadRow {
                path: path.clone(),
                line: r.line,
                reason: reason.to_string(),
            };
            match &r.vector {
                Some(v) if v.len() == dim => {}
                Some(v) => {
                    return Err(bad(&format!(
                        "a vector of {} values, the model's have {dim}",
                        v.len()
                    )))
                }
                None => return Err(bad("no vector and no error")),
            }
            if r.id.is_none()
                || r.text.is_none()
                || r.content_hash.is_none()
                || r.language.is_none()
            {
                return Err(bad(
                    "a row without error lacks its id, text, content hash or language",
                ));
            }
            if let Some(u) = r.units.iter().flatten().find(|u| u.vector.len() != dim) {
                return Err(bad(&format!(
                    "unit {}: a vector of {} values, the model's have {dim}",
                    u.idx,
                    u.vector.len()
                )));
            }
        }
    }
    Ok(rows)
}

/// Ingests the prepared files of `dir` (or one shard of them) into the workspace.
pub fn ingest_prepared(
    ws: &mut Workspace,
    embedder: &dyn Embedder,
    dir: &Path,
    shard: Option<Shard>,
    progress: &dyn Progress,
    index: impl FnOnce(&Workspace) -> Result<SyncReport, WorkspaceError>,
) -> Result<IngestSummary, PreparedIngestError> {
    let t0 = Instant::now();
    let _lock = ws.lock()?;
    let files = prepare::prepared_files(dir)?;
    let key_id = ws.vault.hash_keys().key_id();
    let in_files = check_files(&files, embedder.fingerprint(), &key_id, embedder.dim())?;
    ws.store.check_model(embedder.fingerprint())?;
    let mut timings = Timings {
        read: t0.elapsed().as_secs_f64(),
        ..Timings::default()
    };

    // Survey-link tokens by their keyed hash (the only form a prepared row carries).
    let links: HashMap<String, String> = ws
        .store
        .link_tokens()?
        .into_iter()
        .map(|(token, pseudonym)| (respondent_key(ws.vault.hash_keys(), &token), pseudonym))
        .collect();
    let keep_errors = shard.is_none_or(|s| s.index == 0);
    let mut rows = 0u64;
    let mut errors: Vec<RowError> = Vec::new();
    let mut redacted = std::collections::BTreeMap::new();
    let mut first_seen: HashMap<String, (PathBuf, u64)> = HashMap::new();
    let source = dir.display().to_string();
    let mut writer = RowWriter::begin(ws, &source)?;
    let mut stored_units = 0u64;
    // File by file: one file's rows (and their vectors) in memory at a time, not the set's.
    progress.start("storing rows", in_files);
    for path in &files {
        let t = Instant::now();
        let mut good: Vec<NewVerbatim> = Vec::new();
        // (id, prepared text, its units) of the rows that carry units.
        let mut units: Vec<(String, String, Vec<StoredUnit>)> = Vec::new();
        let file = file_rows(path)?;
        let read = file.len() as u64;
        for r in file {
            if let Some(reason) = r.error {
                if keep_errors {
                    rows += 1;
                    errors.push(RowError::new(path, r.line, reason));
                }
                continue;
            }
            let id = r.id.expect("checked");
            let respondent = match r.respondent_key.as_ref().and_then(|k| links.get(k)) {
                Some(p) => Some(p.clone()),
                None => r.respondent,
            };
            if let Some(s) = shard {
                if shard_of(respondent.as_deref(), &id, s.count) != s.index {
                    continue;
                }
            }
            rows += 1;
            if let Some((first, l)) = first_seen.get(&id) {
                let reason = format!(
                    "duplicate id '{id}' (first seen at {}:{l})",
                    first.display()
                );
                errors.push(RowError::new(path, r.line, reason));
                continue;
            }
            first_seen.insert(id.clone(), (path.clone(), r.line));
            for kind in r.pii_kinds {
                *redacted.entry(kind).or_default() += 1;
            }
            // Units cut by another rule than this binary's are left for `themes` to re-make.
            if let Some(us) = r
                .units
                .filter(|_| r.units_input.as_deref() == Some(UNIT_INPUT))
            {
                units.push((id.clone(), r.text.clone().unwrap_or_default(), us));
            }
            good.push(NewVerbatim {
                content_hash: r.content_hash.expect("checked"),
                id,
                text: pii::redact(&r.text.expect("checked")),
                original: None,
                respondent,
                ts: r.ts,
                score: r.score,
                language: r.language.expect("checked"),
                fields: r.fields,
                source: format!("{}:{}", path.display(), r.line),
                vector: r.vector.expect("checked"),
            });
        }
        timings.redact += t.elapsed().as_secs_f64();
        let todo = writer.skip_unchanged(ws, good)?;
        // Rows with their vector: nothing is embedded, `write` only stores them.
        writer.write(ws, embedder, todo, &NoProgress, &mut timings)?;
        let t = Instant::now();
        stored_units += store_units(ws, units)?;
        timings.store += t.elapsed().as_secs_f64();
        progress.advance(read);
    }
    progress.finish();
    let rec = writer.finish(ws, &errors, progress, &mut timings, index)?;
    timings.total = t0.elapsed().as_secs_f64();
    Ok(IngestSummary {
        file: dir.to_path_buf(),
        rows,
        stored: rec.stored,
        unchanged: rec.unchanged,
        updated: rec.updated,
        rejected: rec.rejected,
        redacted,
        errors: errors
            .iter()
            .map(|e| pii::redact(&e.to_string()).into_string())
            .collect(),
        error_groups: Vec::new(),
        dates_skipped: 0,
        warnings: Vec::new(),
        units: Some(stored_units),
        timings,
    })
}

/// Stores the prepared units of the rows now in the store, as a theme run would have made
/// them (`themes::units::ensure_units`), so that `themes` and the search on units find them
/// and embed no unit (`themes` still embeds multi-sentence verbatims' sentence vectors): only
/// for a verbatim whose stored text is the text they were cut from and that has no current
/// units yet (a re-run writes nothing). Returns how many units were stored.
fn store_units(
    ws: &mut Workspace,
    units: Vec<(String, String, Vec<StoredUnit>)>,
) -> Result<u64, PreparedIngestError> {
    if units.is_empty() {
        return Ok(0);
    }
    // Units made by another rule than the store's are dropped first, as a theme run does.
    ws.store.reset_units_unless(UNIT_INPUT_KEY, UNIT_INPUT)?;
    let mut by_doc: Vec<(i64, Vec<StoredUnit>)> = Vec::new();
    for (id, text, us) in units {
        match ws.store.get(&id)? {
            Some(v) if v.text.as_str() == text => by_doc.push((v.doc, us)),
            _ => {}
        }
    }
    let docs: Vec<i64> = by_doc.iter().map(|d| d.0).collect();
    let missing: std::collections::HashSet<i64> =
        ws.store.docs_without_units(&docs)?.into_iter().collect();
    by_doc.retain(|d| missing.contains(&d.0));
    let mut stored = 0u64;
    for chunk in by_doc.chunks(CHUNK) {
        ws.store.put_units(chunk)?;
        stored += chunk.iter().map(|d| d.1.len() as u64).sum::<u64>();
    }
    Ok(stored)
}

/// Verbatims' units per store transaction.
const CHUNK: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_split_by_respondent() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        // One respondent, one shard, whatever the ids; every shard gets some of 200 respondents.
        let r = "r_0123456789abcdef0123";
        let s = shard_of(Some(r), "a", 4);
        assert!((0..50).all(|i| shard_of(Some(r), &format!("id{i}"), 4) == s));
        let mut seen = [0; 4];
        for i in 0..200 {
            seen[shard_of(Some(&format!("r_{i:020}")), "x", 4) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 20), "{seen:?}");
        assert_eq!(shard_of(None, "id7", 1), 0);
    }
}
