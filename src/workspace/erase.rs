//! Erasure, export and retention (GDPR Art. 17, 15 and 20; storage limitation, Art. 5(1)(e)).
//!
//! One erasure path serves `forget --respondent`, `forget --id` and `retention apply`. Under the
//! workspace write lock it:
//!
//! 1. catches the indexes up (so they agree with the store before anything is removed);
//! 2. recomputes the automatic labels and keywords of the themes the erased verbatims belonged
//!    to, from the remaining members (labels are c-TF-IDF phrases drawn from the texts, so a
//!    phrase only the erased verbatims used must go with them); likewise the aspect tree
//!    ([`aspect::without_erased`]): the erased units leave every node, counts follow, the nodes
//!    are relabelled by the run's labeller from the units that remain, a child left under the
//!    run's minimum size folds into its nearest sibling, a child that lost units is recentred
//!    on those it keeps, an emptied node vanishes; ids, user
//!    labels and seeds stay, and a tree that was current stays current (no re-clustering);
//! 3. deletes the verbatims from every table that holds them in one store transaction
//!    ([`Store::erase`]: verbatims, segment values, embeddings, sentence vectors, opinion
//!    units, sealed originals, theme assignments, rejected-row records that name them, survey-link tokens of
//!    the respondent), each deletion taking a sequence and leaving a tombstone, as the store's
//!    invariants require;
//! 4. applies the tombstones to tantivy and rewrites the segments that held them (only those:
//!    [`crate::index::text::TextIndex::purge_deleted`]), so the erased terms are gone from the
//!    segment files and not merely hidden; masks their points in the HNSW graph and
//!    zeroes their vectors in its data file (no rebuild: [`crate::index::vector`], *Erasure
//!    masks, compaction rebuilds*), compacting the graph when masked points pass
//!    [`crate::index::vector::COMPACT_SHARE`] of it (old generations are deleted);
//! 5. removes the reports written inside the workspace that may quote them (found through the
//!    audit trail, which records every `report --out`, or by the start of an erased text or a
//!    topic or tree label the erasure took away); lists those it cannot reach;
//! 6. appends the receipt to the audit trail (ids and counts only; the trail is hash-chained and
//!    is never rewritten), then zeroes the store file's free space in place — the gaps of its
//!    b-tree pages, where page rebuilds leave old cell copies that `secure_delete` does not
//!    reach, its freeblocks and free pages ([`Store::scrub`]; `VACUUM` only where the scrub cannot
//!    vouch for the file) — and truncates its write-ahead log.
//!
//! A crash after step 3 leaves `erase_pending` in the store, with the erased ids: the indexes
//! already hide the erased verbatims (tombstones are replayed on open), and the next erasure
//! finishes the purge — indexes, the reports that quote those ids (their text is gone from the
//! store, so only the trail's record of what each report quoted can find them), the audit
//! entry (naming the ids of both erasures), scrub.
//!
//! The library never prints: each function returns a [`Receipt`] (or a [`SubjectExport`]) for
//! the caller to show.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ingest::Original;
use super::{Workspace, WorkspaceError};
use crate::access::{Action, Grant};
use crate::index::{IndexError, Indexes};
use crate::pii::vault::VaultError;
use crate::progress::{NoProgress, Progress};
use crate::store::{AuditDetail, ErasedRows, IdKind, Relabel, Store, StoreError, ThemeState};
use crate::themes::aspect::{self, TreeErasure};
use crate::themes::label::{label_themes, Phraser, Vocab};
use crate::themes::run::{display_label, theme_id};

/// Errors of erasure, export and retention.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// Workspace failure (lock, config, files).
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Index failure.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A sealed original does not open.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A file could not be read or removed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `retention apply` without a retention period (the user's to set).
    #[error("no retention period is configured: add `retention_days = N` under [privacy] in {config} (for example `retention_days = 730` to keep two years), then run `verbatim retention apply --dry-run` to see what it would erase")]
    NoRetention {
        /// The configuration file.
        config: PathBuf,
    },
    /// A retention period out of range (`retention_days = 0` would erase everything).
    #[error("{config}: [privacy] retention_days = {days}: must be between {} and {}", crate::limits::RETENTION_DAYS.start(), crate::limits::RETENTION_DAYS.end())]
    BadRetention {
        /// The configuration file.
        config: PathBuf,
        /// The value found.
        days: u32,
    },
    /// The grant does not cover this action.
    #[error("this grant is for {granted:?}, not {wanted:?}")]
    WrongGrant {
        /// The action granted.
        granted: Action,
        /// The action needed.
        wanted: Action,
    },
}

/// What an erasure did (or, with `dry_run`, would do). Names the respondent by pseudonym only.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Receipt {
    /// What was asked: `respondent`, `ids` or `retention`.
    pub request: String,
    /// The respondent's pseudonym (never the identifier), for `respondent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pseudonym: Option<String>,
    /// For `retention`: verbatims dated (or, undated, ingested) before this UTC time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cutoff: Option<String>,
    /// For `retention`: the configured period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Counted only; nothing was erased.
    pub dry_run: bool,
    /// When (UTC).
    pub at: String,
    /// The erased verbatims' ids.
    pub ids: Vec<String>,
    /// Ids asked for (`forget --id`) that the store does not hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<String>,
    /// Rows removed from the store, per table.
    pub store: ErasedRows,
    /// Documents removed from the text index (its segments merged: their terms are gone).
    pub text_index_docs: u64,
    /// Points taken out of the HNSW graph: masked (never returned, their vectors zeroed in the
    /// graph's data file; stale slots of earlier updates go too), or left out of a compaction.
    pub vector_points: u64,
    /// The erasure compacted the vector index: masked slots had passed
    /// [`crate::index::vector::COMPACT_SHARE`] of the graph, so it was rebuilt from the store.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub vector_compacted: bool,
    /// Themes whose automatic label and keywords were recomputed without the erased verbatims.
    pub labels_recomputed: u64,
    /// Nodes of the aspect tree whose members, counts, label or state changed: the erased
    /// verbatims' units left every node, each node was relabelled from the units that remain
    /// (a child left too small folded into a sibling, an emptied node vanished).
    pub tree_nodes_changed: u64,
    /// Reports inside the workspace that could quote the erased verbatims, removed (re-run
    /// `verbatim report --out FILE` to write them again).
    pub reports_removed: Vec<PathBuf>,
    /// Reports that may quote them but that this command could not remove: outside the
    /// workspace, or no longer where the audit trail says they were written.
    pub reports_unreachable: Vec<String>,
    /// Bytes the workspace folder shrank by (WAL truncated, index segments rewritten; the store
    /// file keeps its freed pages, zeroed, for the next rows, unless it was vacuumed).
    pub bytes_reclaimed: u64,
    /// The store file's free space zeroed in place: pages read, pages written back, non-zero
    /// bytes found in free space (old copies of rows moved or erased), whether it was vacuumed
    /// instead.
    pub store_free_space: crate::store::Scrubbed,
    /// The store's write-ahead log was truncated to zero bytes.
    pub wal_truncated: bool,
    /// The audit entry recording this erasure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_seq: Option<i64>,
    /// Anything the reader should know (an interrupted erasure finished, what remains).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Receipt {
    /// Nothing was held: no verbatim, no row anywhere.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.store.total() == 0
    }
}

/// One verbatim as held about a respondent.
#[derive(Clone, Debug, Serialize)]
pub struct ExportedVerbatim {
    /// The id as stored.
    pub id: String,
    /// The text as stored and indexed (redacted).
    pub text: String,
    /// The original row (id, text, respondent and segments as in the file), decrypted from the
    /// vault; `None` when no original was kept (the stored text is then all there is).
    pub original: Option<Original>,
    /// Date (UTC, RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Language code.
    pub language: String,
    /// Segment values (redacted).
    pub segments: BTreeMap<String, String>,
    /// Where it came from: `file:line`.
    pub source: String,
    /// When it was last written (its ingest run's start, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingested_at: Option<String>,
    /// Its theme in the last theme run (`None`: not assigned, or "other").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theme: Option<ThemeRef>,
    /// Its second theme, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_theme: Option<ThemeRef>,
}

/// A theme as shown in an export.
#[derive(Clone, Debug, Serialize)]
pub struct ThemeRef {
    /// `T3`.
    pub id: String,
    /// Its label (the user's, else the automatic one).
    pub label: String,
}

/// A read of the respondent's verbatims recorded in the audit trail.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRead {
    /// Audit sequence.
    pub seq: i64,
    /// When (UTC).
    pub at: String,
    /// Who.
    pub caller: String,
    /// Command.
    pub action: String,
}

/// Everything the workspace holds about one respondent (Art. 15 access, Art. 20 portability).
#[derive(Clone, Debug, Serialize)]
pub struct SubjectExport {
    /// The respondent's pseudonym in this workspace.
    pub pseudonym: String,
    /// When the export was made (UTC).
    pub generated_at: String,
    /// Their verbatims, by id.
    pub verbatims: Vec<ExportedVerbatim>,
    /// Survey-link tokens that stand for them: (token, created at).
    pub survey_links: Vec<SurveyLink>,
    /// Reads of their verbatims recorded in the audit trail (who saw their data, when).
    pub reads: Vec<RecordedRead>,
}

/// A survey-link token recorded for the respondent.
#[derive(Clone, Debug, Serialize)]
pub struct SurveyLink {
    /// The opaque token.
    pub token: String,
    /// When it was made (UTC).
    pub created_at: String,
}

fn check(grant: &Grant, wanted: Action) -> Result<(), EraseError> {
    if grant.action() != wanted {
        return Err(EraseError::WrongGrant {
            granted: grant.action(),
            wanted,
        });
    }
    Ok(())
}

fn now_iso(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Erases every verbatim of the respondent `identifier` (an email, customer id, phone — as in
/// the files; it is pseudonymised with the workspace key and never stored), and their
/// survey-link tokens. A respondent with nothing held gets an empty receipt.
pub fn forget_respondent(
    ws: &mut Workspace,
    grant: &Grant,
    identifier: &str,
) -> Result<Receipt, EraseError> {
    forget_respondent_with_progress(ws, grant, identifier, &NoProgress)
}

/// [`forget_respondent`], reporting its steps to `progress` (see [`erase_verbatims_with_progress`]).
pub fn forget_respondent_with_progress(
    ws: &mut Workspace,
    grant: &Grant,
    identifier: &str,
    progress: &dyn Progress,
) -> Result<Receipt, EraseError> {
    check(grant, Action::Erase)?;
    let pseudonym = ws.vault.pseudonym(identifier);
    let ids = ws.store.ids_of_respondent(&pseudonym)?;
    let receipt = Receipt {
        request: "respondent".into(),
        pseudonym: Some(pseudonym),
        ..Default::default()
    };
    erase(
        ws,
        None,
        grant.caller().name(),
        receipt,
        ids,
        false,
        progress,
    )
}

/// Erases the verbatims with these ids (as stored; see `verbatim search --json`). Ids the store
/// does not hold are listed in the receipt's `not_found`.
pub fn erase_verbatims(
    ws: &mut Workspace,
    grant: &Grant,
    ids: &[String],
) -> Result<Receipt, EraseError> {
    erase_verbatims_with_progress(ws, grant, ids, &NoProgress)
}

/// [`erase_verbatims`], reporting its steps to `progress`: "erasing" (the verbatims deleted
/// from the store), "purging indexes" (2: the text index merged, the vector graph masked or
/// compacted) and "zeroing free space" (1: the store). An erasure with nothing to erase starts
/// none of them.
pub fn erase_verbatims_with_progress(
    ws: &mut Workspace,
    grant: &Grant,
    ids: &[String],
    progress: &dyn Progress,
) -> Result<Receipt, EraseError> {
    check(grant, Action::Erase)?;
    let mut held = Vec::new();
    let mut receipt = Receipt {
        request: "ids".into(),
        ..Default::default()
    };
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id.as_str()) {
            continue;
        }
        if ws.store.get(id)?.is_some() {
            held.push(id.clone());
        } else {
            receipt.not_found.push(id.clone());
        }
    }
    erase(
        ws,
        None,
        grant.caller().name(),
        receipt,
        held,
        false,
        progress,
    )
}

/// Applies the workspace's retention period (`privacy.retention_days`): erases every verbatim
/// dated before `now` minus that many days, or, without a date, last written by an ingest run
/// that started before it. Same erasure path and receipt as `forget`; the audit entry's caller
/// is `retention`. Meant to run daily (a server, cron).
pub fn apply_retention(ws: &mut Workspace, now: DateTime<Utc>) -> Result<Receipt, EraseError> {
    retention(ws, None, now, false)
}

/// [`apply_retention`] on indexes the caller keeps open (the server's): they are caught up,
/// purged and rebuilt in place ([`Indexes::refresh`]), not opened from disk for the erasure.
pub fn apply_retention_to(
    ws: &mut Workspace,
    held: &mut Indexes,
    now: DateTime<Utc>,
) -> Result<Receipt, EraseError> {
    retention(ws, Some(held), now, false)
}

/// What [`apply_retention`] would erase at `now`, counted exactly (the store deletions run in a
/// transaction that is rolled back); nothing changes and nothing is audited.
pub fn preview_retention(ws: &mut Workspace, now: DateTime<Utc>) -> Result<Receipt, EraseError> {
    retention(ws, None, now, true)
}

fn retention(
    ws: &mut Workspace,
    held: Option<&mut Indexes>,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Receipt, EraseError> {
    let days = ws
        .config
        .privacy
        .retention_days
        .ok_or_else(|| EraseError::NoRetention {
            config: ws.root().join(super::CONFIG_FILE),
        })?;
    if !crate::limits::RETENTION_DAYS.contains(&u64::from(days)) {
        return Err(EraseError::BadRetention {
            config: ws.root().join(super::CONFIG_FILE),
            days,
        });
    }
    let cutoff = now - chrono::Duration::days(i64::from(days));
    let ids = ws.store.ids_older_than(cutoff.timestamp())?;
    let receipt = Receipt {
        request: "retention".into(),
        cutoff: Some(now_iso(cutoff)),
        retention_days: Some(days),
        ..Default::default()
    };
    erase(ws, held, "retention", receipt, ids, dry_run, &NoProgress)
}

/// The one erasure path (module docs: the steps and why in that order). `held`: indexes the
/// caller keeps open, worked on in place; `None`: the workspace's, opened for the erasure.
fn erase(
    ws: &mut Workspace,
    open_indexes: Option<&mut Indexes>,
    caller: &str,
    mut receipt: Receipt,
    ids: Vec<String>,
    dry_run: bool,
    progress: &dyn Progress,
) -> Result<Receipt, EraseError> {
    let _lock = ws.lock()?;
    receipt.dry_run = dry_run;
    receipt.at = now_iso(Utc::now());
    let root = ws.root().to_path_buf();
    let bytes_before = dir_size(&root);
    let pending = ws.store.erase_pending()?;
    // An interrupted erasure's ids: already gone from the store, still to purge elsewhere.
    let resumed = ws.store.erase_pending_ids()?;

    let victims = held(&ws.store, &ids)?;
    receipt.ids = victims.iter().map(|v| v.id.clone()).collect();
    let mut erased_ids: BTreeSet<String> = receipt.ids.iter().cloned().collect();
    if !dry_run {
        for id in resumed {
            if erased_ids.insert(id.clone()) {
                receipt.ids.push(id);
            }
        }
    }
    let erased_docs: HashSet<i64> = victims.iter().map(|v| v.doc).collect();

    let mut opened = None;
    let ix: &mut Indexes = match open_indexes {
        Some(ix) => {
            ix.refresh(&ws.store)?;
            ix
        }
        None => opened.insert(Indexes::open_for_erasure(&ws.index_dir(), &ws.store)?.0),
    };
    let (relabels, mut stale) = relabel(&ws.store, &erased_docs)?;
    let tree = tree_without(&ws.store, &victims, ws.store.seq()? + victims.len() as i64)?;
    stale.extend(tree.stale_labels);
    let counted = !dry_run && !receipt.ids.is_empty();
    if counted {
        progress.start("erasing", receipt.ids.len() as u64);
    }
    let rows = ws.store.erase(
        &receipt.ids,
        receipt.pseudonym.as_deref(),
        &relabels,
        &tree.patch,
        dry_run,
    )?;
    if counted {
        progress.advance(receipt.ids.len() as u64);
        progress.finish();
    }
    receipt.store = rows;
    receipt.labels_recomputed = relabels.len() as u64;
    receipt.tree_nodes_changed = tree.patch.nodes.len() as u64;
    if !tree.patch.folded.is_empty() {
        receipt.notes.push(format!(
            "{} aspect-tree child(ren) fell under the run's minimum size and were folded into their nearest sibling: {}",
            tree.patch.folded.len(),
            tree.patch
                .folded
                .iter()
                .map(|(c, s)| format!("C{c} into C{s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let needles = needles(&victims, &stale);

    if dry_run {
        receipt.text_index_docs = victims.len() as u64;
        receipt.vector_points = victims.len() as u64;
        let (removed, unreachable) = reports(ws, &erased_ids, &needles, true)?;
        receipt.reports_removed = removed;
        receipt.reports_unreachable = unreachable;
        return Ok(receipt);
    }
    if receipt.store.total() == 0 && !pending {
        // Nothing held: no index or file work; the request itself is recorded.
        receipt.audit_seq = Some(audit(ws, caller, &receipt)?);
        return Ok(receipt);
    }
    if pending {
        receipt.notes.push(
            "an earlier erasure had been interrupted before its index purge; finished now".into(),
        );
    }

    let text_before = ix.text.num_docs();
    progress.start("purging indexes", 2);
    ix.text.catch_up(&ws.store)?;
    ix.text.purge_deleted()?;
    progress.advance(1);
    let masking = ix.vectors.erase(&ws.store)?;
    progress.advance(1);
    progress.finish();
    receipt.text_index_docs = text_before.saturating_sub(ix.text.num_docs());
    receipt.vector_points = masking.removed as u64;
    if masking.compacted {
        receipt.vector_compacted = true;
        receipt.notes.push(format!(
            "the vector index was compacted (rebuilt from the store): {} of its {} slots were masked, over the {:.0}% that triggers a rebuild",
            masking.masked_before_compaction,
            masking.slots_before_compaction,
            crate::index::vector::COMPACT_SHARE * 100.0
        ));
    }
    drop(opened);

    let (removed, unreachable) = reports(ws, &erased_ids, &needles, false)?;
    receipt.reports_removed = removed;
    receipt.reports_unreachable = unreachable;

    receipt.audit_seq = Some(audit(ws, caller, &receipt)?);
    progress.start("zeroing free space", 1);
    receipt.store_free_space = ws.store.scrub()?;
    progress.advance(1);
    progress.finish();
    ws.store.clear_erase_pending()?;
    receipt.wal_truncated = ws.store.checkpoint_truncate()?.wal_truncated;
    receipt.bytes_reclaimed = bytes_before.saturating_sub(dir_size(&root));
    Ok(receipt)
}

/// The verbatims among `ids` that the store holds, in the order given.
fn held(store: &Store, ids: &[String]) -> Result<Vec<crate::store::Verbatim>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.extend(store.get(id)?);
    }
    Ok(out)
}

/// The receipt in the audit trail: counts and ids, never text or the identifier.
fn audit(ws: &mut Workspace, caller: &str, r: &Receipt) -> Result<i64, EraseError> {
    let action = match r.request.as_str() {
        "retention" => "retention apply",
        _ => "forget",
    };
    let detail = AuditDetail::Erasure {
        request: r.request.clone(),
        pseudonym: r.pseudonym.clone(),
        cutoff: r.cutoff.clone(),
        not_found: r.not_found.len(),
        store: r.store.clone(),
        text_index_docs: r.text_index_docs,
        vector_points: r.vector_points,
        labels_recomputed: r.labels_recomputed,
        tree_nodes_changed: r.tree_nodes_changed,
        reports_removed: r.reports_removed.len(),
        reports_unreachable: r.reports_unreachable.len(),
        verbatim_ids: r.ids.clone(),
    };
    Ok(ws.append_audit(caller, action, &detail)?)
}

/// Labels, keywords and sizes of the themes that lose members, recomputed over the remaining
/// verbatims (same c-TF-IDF as a run, over the themes of the last run), and the label and
/// keyword strings that disappear (a report showing one may be showing erased words).
fn relabel(
    store: &Store,
    erased: &HashSet<i64>,
) -> Result<(Vec<Relabel>, Vec<String>), StoreError> {
    if erased.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let members = store.theme_members()?;
    let affected: BTreeSet<i64> = members
        .iter()
        .filter(|m| erased.contains(&m.doc))
        .filter_map(|m| m.theme)
        .collect();
    if affected.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let themes = store.themes()?;
    let ids: Vec<i64> = themes
        .iter()
        .filter(|t| t.state == ThemeState::Active)
        .map(|t| t.id)
        .collect();
    let index: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    let theme_of: HashMap<i64, i64> = members
        .iter()
        .filter_map(|m| m.theme.map(|t| (m.doc, t)))
        .collect();
    let mut phraser = Phraser::default();
    let mut vocab = Vocab::default();
    let mut phrases = Vec::new();
    let mut theme_idx = Vec::new();
    for (doc, text, language) in store.texts_with_language()? {
        if erased.contains(&doc) {
            continue;
        }
        phrases.push(phraser.phrases(&text, &language, &mut vocab));
        theme_idx.push(theme_of.get(&doc).and_then(|t| index.get(t)).copied());
    }
    let labels = label_themes(&phrases, &theme_idx, ids.len(), &vocab);
    let mut sizes: HashMap<usize, i64> = HashMap::new();
    for i in theme_idx.iter().flatten() {
        *sizes.entry(*i).or_default() += 1;
    }
    let mut out = Vec::new();
    let mut stale = Vec::new();
    for t in themes.iter().filter(|t| affected.contains(&t.id)) {
        let Some(&i) = index.get(&t.id) else { continue };
        let new = &labels[i];
        let kept: HashSet<&str> = new
            .keywords
            .iter()
            .map(String::as_str)
            .chain([new.label.as_str()])
            .collect();
        for old in std::iter::once(&t.label).chain(&t.keywords) {
            if !old.is_empty() && !kept.contains(old.as_str()) {
                stale.push(old.clone());
            }
        }
        out.push(Relabel {
            id: t.id,
            label: new.label.clone(),
            keywords: new.keywords.clone(),
            size: sizes.get(&i).copied().unwrap_or(0),
        });
    }
    Ok((out, stale))
}

/// The aspect tree without the erased verbatims' units ([`aspect::without_erased`]), and, when
/// the stored tree was current, the run key it stays current under once the erasure has taken
/// its sequences (the store is then at `seq_after`): the next `themes` reads the patched tree,
/// same ids and counts less the erased verbatims, instead of clustering again.
fn tree_without(
    store: &Store,
    victims: &[crate::store::Verbatim],
    seq_after: i64,
) -> Result<TreeErasure, StoreError> {
    if victims.is_empty() {
        return Ok(TreeErasure::default());
    }
    let erased: HashSet<i64> = victims.iter().map(|v| v.doc).collect();
    let nodes = store.aspect_nodes()?;
    let units = store.aspect_units()?;
    let mut out = if units.iter().any(|u| erased.contains(&u.doc)) {
        let kept: BTreeSet<i64> = units
            .iter()
            .map(|u| u.doc)
            .filter(|d| !erased.contains(d))
            .collect();
        let docs = store.get_docs(&kept.into_iter().collect::<Vec<_>>())?;
        let mut out = aspect::without_erased(
            &nodes,
            &units,
            &erased,
            &docs,
            aspect::labelled_band(store)?,
        );
        // Centroids: the children that lost units, on the vectors of the units they keep.
        aspect::recentre_children(&mut out, &units, &erased, |docs| store.units_of(docs))?;
        out
    } else {
        TreeErasure::default()
    };
    // Nodes of earlier runs keep labels whose members are no longer known.
    if nodes
        .iter()
        .any(|n| n.state != ThemeState::Active && !n.label.is_empty())
    {
        aspect::clear_erased_words(&mut out, &nodes, &erased_only_words(store, victims)?);
    }
    if store.aspect_run_key()? == Some(aspect::run_key(store)?) {
        out.patch.run_key = Some((seq_after, aspect::run_key_at(store, seq_after)?));
    }
    Ok(out)
}

/// Words of the erased texts ([`aspect::label_words`]) that no remaining verbatim uses.
fn erased_only_words(
    store: &Store,
    victims: &[crate::store::Verbatim],
) -> Result<HashSet<String>, StoreError> {
    let mut only: HashSet<String> = victims
        .iter()
        .flat_map(|v| aspect::label_words(&v.text))
        .collect();
    let erased: HashSet<i64> = victims.iter().map(|v| v.doc).collect();
    for (doc, text, _) in store.texts_with_language()? {
        if only.is_empty() {
            break;
        }
        if !erased.contains(&doc) {
            for w in aspect::label_words(&text) {
                only.remove(&w);
            }
        }
    }
    Ok(only)
}

/// Byte strings whose presence in a report means it shows erased data: the start of each
/// erased text (as written, and HTML-escaped), and labels or keywords that went away.
fn needles(victims: &[crate::store::Verbatim], stale: &[String]) -> Vec<Vec<u8>> {
    let mut out: Vec<String> = Vec::new();
    for v in victims {
        let line = v.text.split_whitespace().collect::<Vec<_>>().join(" ");
        let start: String = line.chars().take(40).collect();
        if start.chars().count() >= 16 {
            out.push(crate::themes::report::escape_html(&start));
            out.push(start);
        }
    }
    for s in stale.iter().filter(|s| s.chars().count() >= 4) {
        out.push(crate::themes::report::escape_html(s));
        out.push(s.clone());
    }
    out.sort();
    out.dedup();
    out.into_iter().map(String::into_bytes).collect()
}

fn contains_any(hay: &[u8], needles: &[Vec<u8>]) -> bool {
    needles
        .iter()
        .any(|n| !n.is_empty() && hay.windows(n.len()).any(|w| w == n.as_slice()))
}

/// Reports and assignment files recorded in the audit trail (`report --out`, `themes
/// assignments --out`) that quote an erased verbatim (the trail lists the ids each report
/// quotes) or show its text or a vanished label: removed when inside the workspace, listed
/// otherwise. A relative path is looked for under the workspace and the current folder.
fn reports(
    ws: &Workspace,
    erased: &BTreeSet<String>,
    needles: &[Vec<u8>],
    dry_run: bool,
) -> Result<(Vec<PathBuf>, Vec<String>), EraseError> {
    if erased.is_empty() && needles.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut written: BTreeMap<String, bool> = BTreeMap::new();
    for e in ws.store.audit_entries()? {
        let Some(out) = written_file(&e) else {
            continue;
        };
        // Exact ids (entries before schema v6: the pieces of their comma-joined list).
        let quotes = e.ids.iter().any(|id| erased.contains(id));
        *written.entry(out).or_default() |= quotes;
    }
    let root = std::fs::canonicalize(ws.root()).unwrap_or_else(|_| ws.root().to_path_buf());
    let cwd = std::env::current_dir().ok();
    let mut removed = Vec::new();
    let mut unreachable = Vec::new();
    let mut done: HashSet<PathBuf> = HashSet::new();
    for (out, quotes) in written {
        let p = Path::new(&out);
        let candidates: Vec<PathBuf> = if p.is_absolute() {
            vec![p.to_path_buf()]
        } else {
            [Some(ws.root().join(p)), cwd.as_ref().map(|c| c.join(p))]
                .into_iter()
                .flatten()
                .collect()
        };
        let found: Vec<PathBuf> = candidates
            .iter()
            .filter(|c| c.is_file())
            .filter_map(|c| std::fs::canonicalize(c).ok())
            .collect();
        if found.is_empty() {
            if quotes {
                unreachable.push(format!(
                    "{out}: quotes erased verbatims but is no longer there (moved, deleted, or written relative to another folder)"
                ));
            }
            continue;
        }
        for f in found {
            if !done.insert(f.clone()) {
                continue;
            }
            let shows = quotes || {
                let bytes = std::fs::read(&f).map_err(|source| EraseError::Io {
                    path: f.clone(),
                    source,
                })?;
                contains_any(&bytes, needles)
            };
            if !shows {
                continue;
            }
            if f.starts_with(&root) {
                if !dry_run {
                    std::fs::remove_file(&f).map_err(|source| EraseError::Io {
                        path: f.clone(),
                        source,
                    })?;
                }
                removed.push(f);
            } else {
                unreachable.push(format!(
                    "{}: outside the workspace; delete it or write it again",
                    f.display()
                ));
            }
        }
    }
    Ok((removed, unreachable))
}

/// The file a report or assignments entry says it wrote, if any.
fn written_file(e: &crate::store::AuditEntry) -> Option<String> {
    match &e.detail {
        crate::store::EntryDetail::Typed(AuditDetail::Report { out, .. })
        | crate::store::EntryDetail::Typed(AuditDetail::Assignments { out, .. }) => {
            out.as_ref().map(|p| p.display().to_string())
        }
        crate::store::EntryDetail::Typed(_) => None,
        // Before schema v6: `out` at the top of the detail, or in the report's `parameters`.
        crate::store::EntryDetail::Legacy { legacy } => {
            if e.action != "report" && e.action != "themes assignments" {
                return None;
            }
            legacy
                .get("out")
                .or_else(|| legacy.get("parameters").and_then(|p| p.get("out")))
                .and_then(|o| o.as_str().map(String::from))
        }
    }
}

/// Total size of the files under `dir` (what an erasure reclaims is measured on it).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Everything held about the respondent `identifier`: each verbatim (redacted text, decrypted
/// original, date, score, segments, source, themes), their survey-link tokens, and the recorded
/// reads of their verbatims. Recorded in the audit trail (pseudonym and ids) before it returns.
pub fn export_respondent(
    ws: &mut Workspace,
    grant: &Grant,
    identifier: &str,
) -> Result<SubjectExport, EraseError> {
    check(grant, Action::Export)?;
    let pseudonym = ws.vault.pseudonym(identifier);
    let ids = ws.store.ids_of_respondent(&pseudonym)?;
    let verbatims = held(&ws.store, &ids)?;
    let ingested = ws.store.ingested_at(&ids)?;
    let themes: HashMap<i64, ThemeRef> = ws
        .store
        .themes()?
        .iter()
        .map(|t| {
            (
                t.id,
                ThemeRef {
                    id: theme_id(t.id),
                    label: display_label(t).to_string(),
                },
            )
        })
        .collect();
    let members: HashMap<i64, crate::store::ThemeMember> = ws
        .store
        .theme_members()?
        .into_iter()
        .map(|m| (m.doc, m))
        .collect();
    let mut out = Vec::with_capacity(verbatims.len());
    for v in verbatims {
        let original = match ws.store.sealed_original(&v.id)? {
            None => None,
            Some(sealed) => {
                let plain = ws.vault.unseal(&v.id, &sealed)?;
                Some(
                    serde_json::from_slice::<Original>(&plain)
                        .map_err(|_| VaultError::Unseal { id: v.id.clone() })?,
                )
            }
        };
        let m = members.get(&v.doc);
        out.push(ExportedVerbatim {
            original,
            date: v
                .ts
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            score: v.score,
            language: v.language.clone(),
            segments: v.fields.clone(),
            source: v.source.clone(),
            ingested_at: ingested.get(&v.id).cloned(),
            theme: m
                .and_then(|m| m.theme)
                .and_then(|t| themes.get(&t).cloned()),
            second_theme: m
                .and_then(|m| m.second)
                .and_then(|t| themes.get(&t).cloned()),
            text: v.text,
            id: v.id,
        });
    }
    let reads = ws
        .store
        .audit_entries_naming(&ids, &[IdKind::Verbatim, IdKind::Legacy])?
        .into_iter()
        .map(|e| RecordedRead {
            seq: e.seq,
            at: e.at,
            caller: e.caller,
            action: e.action,
        })
        .collect();
    let survey_links = ws
        .store
        .link_tokens_of(&pseudonym)?
        .into_iter()
        .map(|(token, created_at)| SurveyLink { token, created_at })
        .collect();
    ws.record(
        grant,
        "export",
        &AuditDetail::Export {
            pseudonym: pseudonym.clone(),
            verbatim_ids: ids.clone(),
        },
    )?;
    Ok(SubjectExport {
        pseudonym,
        generated_at: now_iso(Utc::now()),
        verbatims: out,
        survey_links,
        reads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needles_cover_escaped_text_and_vanished_labels() {
        let v = crate::store::Verbatim {
            doc: 1,
            id: "a".into(),
            text: "My <EMAIL> and the zorblax   pipe's leak".into(),
            respondent: None,
            ts: None,
            score: None,
            language: "en".into(),
            fields: BTreeMap::new(),
            source: "f:2".into(),
            seq: 1,
        };
        let n = needles(&[v], &["zorblax pipe".into(), "ab".into()]);
        let has = |s: &str| n.iter().any(|x| x == s.as_bytes());
        assert!(has("My <EMAIL> and the zorblax pipe's leak"));
        assert!(has("My &lt;EMAIL&gt; and the zorblax pipe&#39;s leak"));
        assert!(has("zorblax pipe"));
        assert!(!has("ab"));
        assert!(contains_any(b"<p>zorblax pipe</p>", &n));
        assert!(!contains_any(b"nothing here", &n));
    }
}
