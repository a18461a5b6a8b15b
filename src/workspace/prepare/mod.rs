//! `verbatim prepare`: the per-row work of an ingest — redact, detect the language,
//! pseudonymise the respondent, keyed content hash and id, embed — on a machine that holds no
//! workspace (a Spark executor), from Arrow IPC on standard input to Arrow IPC on standard
//! output. `verbatim ingest --prepared` then stores the rows in a workspace without embedding
//! anything (`workspace::prepared`).
//!
//! Why a separate command rather than a distributed ingest: the heavy part of an ingest is
//! per row (embedding is ~95% of its time) and needs no store, so an engine the company already
//! runs can schedule it while all the logic stays in this one binary — the engine only moves
//! Arrow batches and Parquet files. The rows are made by the very functions `ingest` uses
//! (`ingest::read_arrow_batches` → `record::build`, `workspace::ingest::redact_record`, the
//! embedder), so `prepare` → `ingest --prepared` stores the same ids, texts, pseudonyms,
//! hashes and vectors as `ingest` (tested bit for bit, `tests/it/prepare.rs`).
//!
//! *Invariants*: nothing unredacted is written — text and segment values are redacted, the
//! respondent is a pseudonym, the id a keyed pseudonym when it is personal data, a bad row's
//! message is redacted, and no temporary file is made (batches are read from stdin and written
//! to stdout in memory). Sealed originals are **not** made: the seal key never leaves the
//! workspace (`verbatim key export --for prepare` writes only [`HashKeys`]), so a prepared row
//! has no original to reveal later (see README, "Spark"). The model is loaded once per process.

pub mod assign;
mod schema;

pub use schema::{
    prepared_files, read_prepared_file, rows_of, PreparedRow, COLUMNS, SCHEMA_VERSION,
};

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;

use crate::embed::{Embedder, TextKind};
use crate::ingest::{self, Mapping, ReadOptions};
use crate::pii::{self, vault::HashKeys};
use crate::themes::units;
use crate::workspace::ingest::redact_record;

/// What a prepare stream is called in row messages (`<stdin>:12: no text`).
pub const STDIN_NAME: &str = "<stdin>";

/// Errors that stop a prepare (a bad row never does: it becomes an `error` row).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Standard input is not an Arrow IPC stream, or writing the output failed.
    #[error("{what}: {source}")]
    Arrow {
        /// Which side: reading standard input, writing standard output.
        what: &'static str,
        /// The Arrow error.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// A prepared file cannot be read.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The mapping does not fit the input's columns.
    #[error(transparent)]
    Read(#[from] ingest::IngestError),
    /// Embedding failed.
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
}

impl PrepareError {
    /// Standard input could not be read as an Arrow IPC stream.
    pub(crate) fn reading_stdin(source: arrow_schema::ArrowError) -> Self {
        PrepareError::Arrow {
            what: "reading Arrow IPC on standard input",
            source,
        }
    }

    /// The Arrow IPC stream could not be written to standard output.
    pub(crate) fn writing_stdout(source: arrow_schema::ArrowError) -> Self {
        PrepareError::Arrow {
            what: "writing Arrow IPC on standard output",
            source,
        }
    }
}

/// How to prepare.
#[derive(Clone, Debug)]
pub struct PrepareOptions {
    /// The column mapping (the same flags as `ingest`).
    pub mapping: Mapping,
    /// Limits of the reader (the longest text).
    pub read: ReadOptions,
    /// Rows per output batch (and per embedding call).
    pub chunk: usize,
    /// Cut each row into opinion units and embed them (the `units` columns): what the
    /// workspace's first theme run would do, done here so no node does it again.
    pub units: bool,
}

/// What one prepare did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PrepareSummary {
    /// Rows read.
    pub rows: u64,
    /// Rows prepared (with a vector).
    pub prepared: u64,
    /// Rows rejected (an `error` row each).
    pub rejected: u64,
    /// Opinion units made (0 without [`PrepareOptions::units`]).
    pub units: u64,
    /// Spans of personal data replaced, per kind.
    pub redacted: BTreeMap<pii::PiiKind, u64>,
    /// Reader warnings (missing optional columns, ambiguous dates).
    pub warnings: Vec<String>,
}

/// Reads an Arrow IPC stream from `input`, prepares every row, writes an Arrow IPC stream of
/// [`COLUMNS`] to `output` (one batch per `opts.chunk` rows, written as soon as embedded).
pub fn prepare(
    keys: &HashKeys,
    embedder: &dyn Embedder,
    input: impl Read,
    output: impl Write,
    opts: &PrepareOptions,
) -> Result<PrepareSummary, PrepareError> {
    let (arrow_in, arrow_out) = (PrepareError::reading_stdin, PrepareError::writing_stdout);
    let reader = StreamReader::try_new(input, None).map_err(arrow_in)?;
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(arrow_in)?;
    let report =
        ingest::read_arrow_batches(Path::new(STDIN_NAME), &batches, &opts.mapping, &opts.read)?;
    drop(batches);
    let mut summary = PrepareSummary {
        rows: report.rows.len() as u64,
        warnings: report.warnings.iter().map(|w| w.to_string()).collect(),
        ..PrepareSummary::default()
    };
    let meta = schema::Meta {
        model: embedder.fingerprint().to_string(),
        key_id: keys.key_id(),
    };
    let out_schema = schema::schema();
    let mut writer = StreamWriter::try_new(output, &out_schema).map_err(arrow_out)?;
    let mut rows: Vec<PreparedRow> = Vec::new();
    for row in report.rows {
        rows.push(match row {
            Err(e) => {
                summary.rejected += 1;
                PreparedRow::error(e.line, pii::redact(&e.to_string()).into_string())
            }
            Ok(r) => {
                let red = redact_record(keys, &r);
                for kind in &red.kinds {
                    *summary.redacted.entry(*kind).or_default() += 1;
                }
                summary.prepared += 1;
                PreparedRow::from_record(&r, red)
            }
        });
    }
    for chunk in rows.chunks_mut(opts.chunk.max(1)) {
        let texts: Vec<&str> = chunk
            .iter()
            .filter(|r| r.error.is_none())
            .filter_map(|r| r.text.as_deref())
            .collect();
        let mut vectors = embedder.embed(&texts, TextKind::Passage)?.into_iter();
        for r in chunk.iter_mut().filter(|r| r.error.is_none()) {
            r.vector = vectors.next();
        }
        if opts.units {
            // The units a workspace's theme run makes for the stored row (`ensure_units`):
            // the same split of the same redacted text, the whole text reusing its vector.
            let good: Vec<usize> = (0..chunk.len())
                .filter(|&i| chunk[i].error.is_none() && chunk[i].text.is_some())
                .collect();
            let made = {
                let docs: Vec<(units::UnitDoc<'_>, Vec<units::UnitSpan>)> = good
                    .iter()
                    .map(|&i| {
                        let text = chunk[i].text.as_deref().unwrap_or_default();
                        (
                            (i as i64, text, chunk[i].vector.as_deref()),
                            units::split(text),
                        )
                    })
                    .collect();
                units::embed_units(embedder, &docs)?
            };
            for (i, us) in good.into_iter().zip(made) {
                summary.units += us.len() as u64;
                chunk[i].units = Some(us);
                chunk[i].units_input = Some(units::UNIT_INPUT.to_string());
            }
        }
        let batch = schema::to_batch(&out_schema, chunk, &meta).map_err(arrow_out)?;
        writer.write(&batch).map_err(arrow_out)?;
    }
    writer.finish().map_err(arrow_out)?;
    Ok(summary)
}
