//! `verbatim assign`: every opinion unit of prepared rows placed in a theme model's tree, on a
//! machine that holds no workspace (a Spark executor, the model file broadcast as a path), from
//! Arrow IPC of prepared rows ([`super::COLUMNS`]) on standard input to Arrow IPC of
//! assignments ([`ASSIGN_COLUMNS`], one row per unit) on standard output.
//!
//! Why a command of its own rather than a `prepare --themes-model` column: the model is
//! discovered on a sample of prepared rows stored in a workspace (`themes export-model
//! --sample`), so it exists only *after* a prepare; assigning reads the prepared Parquet again
//! (vectors included, so only units that are not their verbatim's whole text are embedded) and
//! the prepared schema stays as it is.
//!
//! A unit here is what a workspace would store for the row ([`crate::themes::units::split`],
//! [`crate::themes::units::embed_units`]) and is placed by the function `themes import` uses
//! ([`crate::themes::aspect::place_units`]): the same model gives each unit the same child,
//! parent and sentiment as a workspace holding the row and importing the model (tested,
//! `tests/it/theme_model.rs`). Statistics are the engine's to aggregate (counts per theme,
//! sentiment mix: `verbatim_spark.theme_stats`).
//!
//! *Invariants*: the output holds ids (already pseudonymous when personal), byte offsets, node
//! ids and scores — no text. The model must have been made with the rows' embedding model
//! (refused otherwise, before anything is written). No temporary file.

use std::io::{Read, Write};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{rows_of, PrepareError, PreparedRow};
use crate::embed::Embedder;
use crate::sentiment::SentimentHead;
use crate::store::AspectUnit;
use crate::themes::model::ThemeModel;
use crate::themes::Polarity;
use crate::themes::{aspect, label::OpinionReader, units};

/// The assignment columns, in order: `id` (the stored id), `unit` (position in the verbatim),
/// `start`/`end` (byte offsets into the redacted text), `theme` (`C<n>`, null: in no theme),
/// `parent` (`P<n>`), `sentiment` (the unit's, by the model's sentiment head: positive,
/// neutral, negative), `score` (in [−1, 1]), `neutral_band` (the head's: a verbatim's mean
/// score within ±band reads neutral), `theme_model` (the model file's digest).
pub const ASSIGN_COLUMNS: [(&str, &str); 10] = [
    ("id", "string"),
    ("unit", "int"),
    ("start", "long"),
    ("end", "long"),
    ("theme", "string"),
    ("parent", "string"),
    ("sentiment", "string"),
    ("score", "float"),
    ("neutral_band", "float"),
    ("theme_model", "string"),
];

/// Errors that stop an assign.
#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    /// Reading the input, embedding or writing the output.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// The input is not prepared rows, or was made with another embedding model than the
    /// theme model's (the message names the row and the column).
    #[error("{0}")]
    Refused(String),
}

/// What one assign did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct AssignSummary {
    /// Prepared rows read.
    pub rows: u64,
    /// Rows with units (error rows and empty texts have none).
    pub verbatims: u64,
    /// Units written.
    pub units: u64,
    /// Units in no theme ("other").
    pub other: u64,
    /// The theme model's digest.
    pub theme_model: String,
}

/// The Arrow schema of [`ASSIGN_COLUMNS`].
pub fn assign_schema() -> SchemaRef {
    Arc::new(Schema::new(
        ASSIGN_COLUMNS
            .iter()
            .map(|(name, kind)| {
                let t = match *kind {
                    "string" => DataType::Utf8,
                    "int" => DataType::Int32,
                    "long" => DataType::Int64,
                    _ => DataType::Float32,
                };
                Field::new(*name, t, true)
            })
            .collect::<Vec<_>>(),
    ))
}

/// Reads prepared rows (Arrow IPC) from `input`, places every unit with `model` (`model_file`
/// names it in errors), writes the assignments (Arrow IPC of [`ASSIGN_COLUMNS`]) to `output`,
/// one batch per `chunk` rows. The embedder embeds the units that are not a whole text; the
/// head reads each unit's sentiment.
pub fn assign(
    model: &ThemeModel,
    model_file: &str,
    head: &SentimentHead,
    embedder: &dyn Embedder,
    input: impl Read,
    output: impl Write,
    chunk: usize,
) -> Result<AssignSummary, AssignError> {
    let (arrow_in, arrow_out) = (PrepareError::reading_stdin, PrepareError::writing_stdout);
    if model.units_input != units::UNIT_INPUT {
        return Err(AssignError::Refused(format!(
            "{model_file}: field units_input: the theme model cut its units by rule {:?}, this verbatim by {:?}: export it again with this version",
            model.units_input,
            units::UNIT_INPUT
        )));
    }
    if model.model != embedder.fingerprint() {
        return Err(AssignError::Refused(format!(
            "{model_file}: field model: the theme model was made with embedding model {}, this run loads {} (give --model as the workspace has it)",
            model.model,
            embedder.fingerprint()
        )));
    }
    let assigner = model
        .assigner(model_file)
        .map_err(|e| AssignError::Refused(e.to_string()))?;
    let reader = StreamReader::try_new(input, None).map_err(arrow_in)?;
    let mut rows: Vec<PreparedRow> = Vec::new();
    for (b, batch) in reader.enumerate() {
        let batch = batch.map_err(arrow_in)?;
        let got = rows_of(&batch).map_err(|e| {
            AssignError::Refused(format!("{}: batch {}: {e}", super::STDIN_NAME, b + 1))
        })?;
        rows.extend(got);
    }
    // Every good row must carry the theme model's embedding model: its vector is a unit's when
    // the unit is the whole text.
    for r in rows.iter().filter(|r| r.error.is_none()) {
        if r.model != model.model {
            return Err(AssignError::Refused(format!(
                "{}: row with line {}: column model: prepared with embedding model {}, the theme model was made with {}",
                super::STDIN_NAME,
                r.line,
                r.model,
                model.model
            )));
        }
    }
    let digest = model.digest();
    let schema = assign_schema();
    let mut writer = StreamWriter::try_new(output, &schema).map_err(arrow_out)?;
    let mut summary = AssignSummary {
        rows: rows.len() as u64,
        theme_model: digest.clone(),
        ..AssignSummary::default()
    };
    let mut opinions = OpinionReader::default();
    let good: Vec<&PreparedRow> = rows
        .iter()
        .filter(|r| r.error.is_none() && r.id.is_some() && r.text.is_some())
        .collect();
    for part in good.chunks(chunk.max(1)) {
        // Rows prepared with their units (and by this binary's rule) are placed as they are;
        // the others are cut and embedded here.
        fn given(r: &PreparedRow) -> Option<&Vec<crate::store::StoredUnit>> {
            r.units
                .as_ref()
                .filter(|_| r.units_input.as_deref() == Some(units::UNIT_INPUT))
        }
        let docs: Vec<(units::UnitDoc<'_>, Vec<units::UnitSpan>)> = part
            .iter()
            .enumerate()
            .filter(|(_, r)| given(r).is_none())
            .map(|(i, r)| {
                let text = r.text.as_deref().unwrap_or_default();
                ((i as i64, text, r.vector.as_deref()), units::split(text))
            })
            .collect();
        let mut cut = units::embed_units(embedder, &docs)
            .map_err(PrepareError::from)?
            .into_iter();
        let made: Vec<Vec<crate::store::StoredUnit>> = part
            .iter()
            .map(|r| match given(r) {
                Some(us) => us.clone(),
                None => cut.next().expect("one list of units per row cut here"),
            })
            .collect();
        let mut placed: Vec<(usize, AspectUnit)> = Vec::new();
        for (i, (r, us)) in part.iter().zip(&made).enumerate() {
            let text = r.text.as_deref().unwrap_or_default();
            let language = r.language.as_deref().unwrap_or_default();
            let p =
                aspect::place_units(&assigner, &mut opinions, head, i as i64, text, language, us);
            if !p.is_empty() {
                summary.verbatims += 1;
            }
            placed.extend(p.into_iter().map(|u| (i, u)));
        }
        summary.units += placed.len() as u64;
        summary.other += placed.iter().filter(|(_, u)| u.child.is_none()).count() as u64;
        let strs = |f: &dyn Fn(&(usize, AspectUnit)) -> Option<String>| -> ArrayRef {
            Arc::new(placed.iter().map(f).collect::<StringArray>())
        };
        let word = |s: f32| match head.polarity(s) {
            Polarity::Positive => "positive",
            Polarity::Neutral => "neutral",
            Polarity::Negative => "negative",
        };
        let columns: Vec<ArrayRef> = vec![
            strs(&|(i, _)| part[*i].id.clone()),
            Arc::new(Int32Array::from_iter_values(
                placed.iter().map(|(_, u)| u.idx as i32),
            )),
            Arc::new(Int64Array::from_iter_values(
                placed.iter().map(|(_, u)| u.start as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                placed.iter().map(|(_, u)| u.end as i64),
            )),
            strs(&|(_, u)| u.child.map(|c| format!("C{c}"))),
            strs(&|(_, u)| u.parent.map(|p| format!("P{p}"))),
            strs(&|(_, u)| Some(word(u.score).to_string())),
            Arc::new(Float32Array::from_iter_values(
                placed.iter().map(|(_, u)| u.score),
            )),
            Arc::new(Float32Array::from_iter_values(
                placed.iter().map(|_| head.neutral_band),
            )),
            strs(&|_| Some(digest.clone())),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(arrow_out)?;
        writer.write(&batch).map_err(arrow_out)?;
    }
    writer.finish().map_err(arrow_out)?;
    Ok(summary)
}
