//! `verbatim check`: is what lies on disk what verbatim wrote?
//!
//! Reads everything once and changes nothing (the indexes are opened, never caught up or
//! rebuilt; the only write is the audit entry of the check itself, after the audit chain was
//! verified). What is verified:
//!
//! - the store: SQLite's `PRAGMA integrity_check` (page structure, indexes against tables, the
//!   free list), every verbatim and embedding row against its keyed seal
//!   ([`crate::store::Store::verify_rows`]), the `segments` rows against the sealed fields and
//!   the `meta` counters, and every sealed original against its AEAD tag;
//! - the text index: tantivy's per-file checksums, the covered sequence, and its documents
//!   against the store's verbatims (same set);
//! - the vector index: the generation loads, its files match their SHA-256 sums, its points
//!   hold exactly the store's live vectors (centred as the index centres them), bit for bit;
//! - the audit chain ([`crate::workspace::Workspace::verify_audit`], the code of `audit verify`).
//!
//! Each finding names the part, the file, and the table and row (or entry) where known. An
//! error reading a part is itself a finding: a file too damaged to read is damaged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::index::{vector, HnswParams, TextIndex, VectorIndex};
use crate::workspace::Workspace;

/// One thing found damaged.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Damage {
    /// `store`, `text index`, `vector index` or `audit`.
    pub part: String,
    /// The damaged file (or folder).
    pub file: String,
    /// The table, for the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The row (a verbatim's number, an audit entry's sequence), where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<i64>,
    /// The verbatim id (or the meta key), where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.part, self.file)?;
        if let Some(t) = &self.table {
            write!(f, ", table {t}")?;
        }
        if let Some(r) = self.row {
            write!(f, ", row {r}")?;
        }
        if let Some(id) = &self.id {
            write!(f, " ({id})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What was read, in numbers.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Checked {
    /// Verbatim rows in the store.
    pub verbatims: i64,
    /// Sealed originals opened.
    pub originals: usize,
    /// Documents in the text index.
    pub text_documents: u64,
    /// Points in the vector graph.
    pub vector_points: usize,
    /// Audit entries verified.
    pub audit_entries: i64,
}

/// The outcome of `verbatim check`.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct CheckReport {
    /// Nothing damaged.
    pub clean: bool,
    /// What is damaged, store first.
    pub damaged: Vec<Damage>,
    /// What is not damage but worth saying (an index behind the store, a generation written
    /// before checksums).
    pub notes: Vec<String>,
    /// What was read.
    pub checked: Checked,
}

impl CheckReport {
    fn damage(&mut self, part: &str, file: &Path, message: impl std::fmt::Display) {
        self.damaged.push(Damage {
            part: part.into(),
            file: file.display().to_string(),
            table: None,
            row: None,
            id: None,
            message: message.to_string(),
        });
    }

    fn row(&mut self, file: &Path, r: crate::store::DamagedRow) {
        self.damaged.push(Damage {
            part: "store".into(),
            file: file.display().to_string(),
            table: Some(r.table),
            row: (r.row >= 0).then_some(r.row),
            id: r.id,
            message: r.reason,
        });
    }
}

/// Runs every check on `ws` (see the module docs).
pub(super) fn check(ws: &Workspace) -> CheckReport {
    let mut report = CheckReport::default();
    let store_file = ws.store.path().to_path_buf();
    let live = check_store(ws, &store_file, &mut report);
    let seq = ws.store.seq().unwrap_or(0);
    // A reader that panics on a damaged file (tantivy, hnsw_rs assert on some) is a finding.
    let text_dir = ws.index_dir().join("text");
    guarded(&mut report, "text index", &text_dir, |r| {
        check_text(ws, seq, live.as_ref().map(|l| &l.docs), r)
    });
    let vector_dir = ws.index_dir().join("vectors");
    guarded(&mut report, "vector index", &vector_dir, |r| {
        check_vectors(ws, seq, live.as_ref().map(|l| &l.vectors), r)
    });
    match ws.verify_audit() {
        Ok(v) => {
            report.checked.audit_entries = v.entries;
            if let Some((seq, why)) = v.broken {
                report.damaged.push(Damage {
                    part: "audit".into(),
                    file: store_file.display().to_string(),
                    table: Some("audit".into()),
                    row: Some(seq),
                    id: None,
                    message: why,
                });
            }
        }
        Err(e) => report.damage("audit", &store_file, e),
    }
    report.clean = report.damaged.is_empty();
    report
}

/// Runs `f`, turning a panic inside it into a finding on `part` (`dir`).
fn guarded(report: &mut CheckReport, part: &str, dir: &Path, f: impl FnOnce(&mut CheckReport)) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut inner = CheckReport::default();
        f(&mut inner);
        inner
    }));
    match r {
        Ok(inner) => {
            report.damaged.extend(inner.damaged);
            report.notes.extend(inner.notes);
            report.checked.text_documents += inner.checked.text_documents;
            report.checked.vector_points += inner.checked.vector_points;
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            report.damage(part, dir, format!("reading it failed: {msg}"));
        }
    }
}

/// The store's sound verbatims and their live vectors, which the indexes must hold.
struct Live {
    docs: BTreeSet<i64>,
    /// Vector slot → (language, vector).
    vectors: BTreeMap<i64, (String, Vec<f32>)>,
}

fn check_store(ws: &Workspace, file: &Path, report: &mut CheckReport) -> Option<Live> {
    let store = &ws.store;
    match store.structure_check() {
        Ok(lines) => {
            for l in lines {
                report.damage("store", file, format!("SQLite integrity check: {l}"));
            }
        }
        Err(e) => report.damage("store", file, e),
    }
    let mut bad_docs = BTreeSet::new();
    match store.verify_rows() {
        Ok(rows) => {
            for r in rows {
                bad_docs.insert(r.row);
                report.row(file, r);
            }
        }
        Err(e) => report.damage("store", file, e),
    }
    match store.derived_check() {
        Ok(rows) => rows.into_iter().for_each(|r| report.row(file, r)),
        Err(e) => report.damage("store", file, e),
    }
    match store.all_originals() {
        Ok(originals) => {
            report.checked.originals = originals.len();
            for (id, sealed) in originals {
                if ws.vault.unseal(&id, &sealed).is_err() {
                    report.row(
                        file,
                        crate::store::DamagedRow {
                            table: "originals".into(),
                            row: -1,
                            id: Some(id),
                            reason: "the sealed original does not open with the workspace key"
                                .into(),
                        },
                    );
                }
            }
        }
        Err(e) => report.damage("store", file, e),
    }
    let docs = match store.all_docs() {
        Ok(d) => d,
        Err(e) => {
            report.damage("store", file, e);
            return None;
        }
    };
    report.checked.verbatims = docs.len() as i64;
    // Read through the sealed path: a damaged row is left out (and was named above).
    let vectors = match store.vectors_since(0) {
        Ok(v) => v,
        Err(e) => {
            report.damage("store", file, e);
            return None;
        }
    };
    store.take_damage();
    Some(Live {
        docs: docs.into_iter().filter(|d| !bad_docs.contains(d)).collect(),
        vectors: vectors
            .into_iter()
            .map(|(slot, lang, v)| (slot, (lang, v)))
            .collect(),
    })
}

fn check_text(ws: &Workspace, seq: i64, live: Option<&BTreeSet<i64>>, report: &mut CheckReport) {
    const PART: &str = "text index";
    let dir = ws.index_dir().join("text");
    if !dir.join("meta.json").is_file() {
        return report.damage(PART, &dir, "meta.json is missing");
    }
    // Checksums first: a reader opened on a damaged segment may panic inside tantivy.
    match crate::index::text::damaged_files(&dir) {
        Ok(files) if !files.is_empty() => {
            for f in files {
                report.damage(
                    PART,
                    &f,
                    "its bytes do not match the checksum in its footer",
                );
            }
            return;
        }
        Ok(_) => {}
        Err(e) => return report.damage(PART, &dir, e),
    }
    let text = match TextIndex::open(&dir) {
        Ok(t) => t,
        Err(e) => return report.damage(PART, &dir, e),
    };
    report.checked.text_documents = text.num_docs();
    if text.covered() > seq {
        report.damage(
            PART,
            &dir,
            format!(
                "covers store sequence {}, beyond the store's {seq}",
                text.covered()
            ),
        );
        return;
    }
    if text.covered() < seq {
        report.notes.push(format!(
            "text index: covers sequence {} of {seq} (the next command catches it up)",
            text.covered()
        ));
        return;
    }
    let Some(live) = live else { return };
    match text.all_docs() {
        Ok(docs) => {
            let held: BTreeSet<i64> = docs.iter().copied().collect();
            if held.len() != docs.len() {
                report.damage(PART, &dir, "holds a verbatim twice");
            }
            for d in held.difference(live) {
                report.damage(
                    PART,
                    &dir,
                    format!("holds verbatim {d}, which the store does not (soundly) hold"),
                );
            }
            for d in live.difference(&held) {
                report.damage(PART, &dir, format!("lacks verbatim {d} of the store"));
            }
        }
        Err(e) => report.damage(PART, &dir, e),
    }
}

fn check_vectors(
    ws: &Workspace,
    seq: i64,
    live: Option<&BTreeMap<i64, (String, Vec<f32>)>>,
    report: &mut CheckReport,
) {
    const PART: &str = "vector index";
    let dir = ws.index_dir().join("vectors");
    // Sums before loading: hnsw_rs may abort the process on a damaged graph file.
    let current = dir.join("CURRENT");
    match std::fs::read_to_string(&current) {
        Ok(name) => {
            let gen = dir.join(name.trim());
            match vector::unsealed_files(&gen) {
                Ok(Some(files)) if !files.is_empty() => {
                    for f in files {
                        report.damage(PART, &f, "its bytes do not match its SHA-256 in SUMS.json");
                    }
                    return;
                }
                Ok(Some(_)) => {}
                Ok(None) => report.notes.push(format!(
                    "vector index: {} was written before checksums; its graph is checked by its points only",
                    gen.display()
                )),
                Err(e) => return report.damage(PART, &gen, e),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return report.damage(PART, &current, e),
    }
    let index = match VectorIndex::open(&dir, HnswParams::default()) {
        Ok(ix) => ix,
        Err(e) => return report.damage(PART, &dir, e),
    };
    let file = index.generation_dir().unwrap_or_else(|| dir.clone());
    if let (Ok(Some(stored)), Some(model)) = (ws.store.model_fingerprint(), index.model()) {
        if stored != model {
            report.damage(
                PART,
                &file,
                format!("made with model {model}, the store's vectors with {stored}"),
            );
        }
    }
    let (points, dim, claimed) = index.points_snapshot();
    report.checked.vector_points = points.len();
    if points.len() != claimed {
        report.damage(
            PART,
            &file,
            format!(
                "meta.json counts {claimed} points, the graph holds {}",
                points.len()
            ),
        );
    }
    if let Some(p) = points.iter().find(|p| p.1.len() != dim) {
        report.damage(
            PART,
            &file,
            format!("point {} has {} dimensions, not {dim}", p.0, p.1.len()),
        );
    }
    if index.covered() > seq {
        report.damage(
            PART,
            &file,
            format!(
                "covers store sequence {}, beyond the store's {seq}",
                index.covered()
            ),
        );
        return;
    }
    if index.covered() < seq || index.stale() {
        report.notes.push(format!(
            "vector index: covers sequence {} of {seq} (the next command catches it up)",
            index.covered()
        ));
        return;
    }
    let Some(live) = live else { return };
    let held: BTreeMap<i64, &Vec<f32>> = points.iter().map(|(id, v)| (*id, v)).collect();
    for (slot, (lang, v)) in live {
        let mut want = v.clone();
        if let Some(m) = index.means() {
            m.center(lang, &mut want);
        }
        match held.get(slot) {
            None => report.damage(PART, &file, format!("lacks the store's vector slot {slot}")),
            Some(got)
                if got
                    .iter()
                    .map(|x| x.to_bits())
                    .ne(want.iter().map(|x| x.to_bits())) =>
            {
                report.damage(
                    PART,
                    &file,
                    format!("point {slot} differs from the store's vector"),
                )
            }
            Some(_) => {}
        }
    }
}

impl super::Session<'_> {
    /// `verbatim check` (admin: the audit action): every check of the module docs, recorded in
    /// the audit trail with the number of findings. Never fails for damage: damage is the
    /// report's content (an audit entry that cannot be written is one more finding).
    pub fn check_integrity(&mut self) -> Result<CheckReport, super::ServiceError> {
        let grant = self.enter(crate::access::Action::Audit)?;
        let mut report = check(self.ws);
        let detail = crate::store::AuditDetail::Check {
            damaged: report.damaged.len(),
        };
        if let Err(e) = self.record(&grant, &detail) {
            let file = self.ws.store.path().to_path_buf();
            report.damage(
                "audit",
                &file,
                format!("the check's own entry was not written: {e}"),
            );
            report.clean = false;
        }
        Ok(report)
    }
}
