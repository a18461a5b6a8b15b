//! `verbatim prepare` (Arrow IPC in, Arrow IPC out, on a machine without the workspace),
//! `verbatim key export --for prepare` and `verbatim ingest --prepared`: the commands a Spark
//! job (`integrations/spark/`) runs around the library's `workspace::prepare`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use verbatim::access::Action;
use verbatim::embed::Embedder;
use verbatim::ingest::ReadOptions;
use verbatim::pii::vault::HashKeys;
use verbatim::service::Session;
use verbatim::workspace::prepare::{self, PrepareOptions};
use verbatim::workspace::prepared::Shard;
use verbatim::workspace::Workspace;

use super::progress::Bar;
use super::{caller, load_model, mapping_from, models, output, session, session_settings};
use super::{ColumnArgs, Global, IngestArgs};

/// `verbatim prepare`.
#[derive(Args, Debug)]
pub(super) struct PrepareArgs {
    /// The key file `verbatim key export --for prepare` wrote (or, on the workspace's own
    /// machine, the workspace's `verbatim.key`). A path: never put keys in job configuration.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// With the workspace's own key file of a workspace made before keyed content ids: rows
    /// without an id column get the plain SHA-256 id, as that workspace gives them (an exported
    /// key file says which itself).
    #[arg(long, hide = true)]
    plain_content_ids: bool,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Rows per output batch and per embedding call.
    #[arg(long, default_value_t = 256, value_parser = super::ranged(1..=65_536))]
    chunk: usize,
    /// Longest text accepted, in UTF-8 bytes (as `ingest.max_text_bytes`).
    #[arg(long, value_name = "BYTES")]
    max_text_bytes: Option<usize>,
    /// Do not cut rows into opinion units (the `units` columns stay null): the workspace's
    /// first `themes` run then cuts and embeds them on its one machine.
    #[arg(long)]
    no_units: bool,
}

/// `verbatim assign`.
#[derive(Args, Debug)]
pub(super) struct AssignArgs {
    /// The theme model file (`verbatim themes export-model`): a path every executor can read.
    #[arg(long, value_name = "FILE")]
    themes_model: PathBuf,
    /// Prepared rows per output batch (and per embedding call).
    #[arg(long, default_value_t = 256, value_parser = super::ranged(1..=65_536))]
    chunk: usize,
}

/// `verbatim key …`.
#[derive(Subcommand, Debug)]
pub(super) enum KeyCommand {
    /// Write the keys a purpose needs to a new file (mode 0600): `--for prepare` writes the
    /// pseudonym and content-hash keys, never the seal, audit or row keys.
    #[command(after_help = super::help::KEY_EXPORT)]
    Export {
        /// What the keys are for.
        #[arg(long = "for", value_parser = ["prepare"])]
        purpose: String,
        /// The file to write (refused if it exists).
        #[arg(long)]
        out: PathBuf,
        /// Export from a version-1 key file, whose one key also makes the audit macs and row
        /// seals.
        #[arg(long)]
        allow_legacy_key: bool,
    },
}

/// `verbatim prepare`: reads Arrow IPC on stdin, writes Arrow IPC on stdout; a summary on
/// stderr. Bad rows are `error` rows of the output, not a failed run (exit 0): a Spark task
/// that failed would be retried for nothing.
pub(super) fn cmd_prepare(g: &Global, a: PrepareArgs) -> Result<i32> {
    let keys = HashKeys::open(&a.key, !a.plain_content_ids)
        .with_context(|| format!("--key {}", a.key.display()))?;
    let Some(mapping) = mapping_from(&a.columns) else {
        bail!("--text COLUMN is required (it names the feedback text); the other column flags are as for `ingest`");
    };
    if mapping.text.is_empty() {
        bail!("--text COLUMN is required (it names the feedback text)");
    }
    let model = load_model(g, None)?;
    let mut read = ReadOptions::default();
    if let Some(max) = a.max_text_bytes {
        read.max_text_bytes = max;
    }
    let opts = PrepareOptions {
        mapping,
        read,
        chunk: a.chunk,
        units: !a.no_units,
    };
    let t = std::time::Instant::now();
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::new(stdout);
    let summary = prepare::prepare(
        &keys,
        &model as &dyn Embedder,
        std::io::stdin().lock(),
        &mut out,
        &opts,
    )?;
    out.flush().context("writing standard output")?;
    if !g.quiet {
        for w in &summary.warnings {
            eprintln!("warning: {w}");
        }
        eprintln!(
            "prepare: {} rows: {} prepared ({} opinion units), {} rejected ({:.1}s, key {})",
            summary.rows,
            summary.prepared,
            summary.units,
            summary.rejected,
            t.elapsed().as_secs_f64(),
            keys.key_id()
        );
    }
    Ok(0)
}

/// `verbatim assign`: prepared rows (Arrow IPC) on stdin, one row per opinion unit with its
/// theme, parent and sentiment (Arrow IPC) on stdout; a summary on stderr (`--json`: as JSON).
pub(super) fn cmd_assign(g: &Global, a: AssignArgs) -> Result<i32> {
    let file = a.themes_model.display().to_string();
    let bytes = std::fs::read(&a.themes_model).with_context(|| format!("--themes-model {file}"))?;
    let theme_model = verbatim::themes::model::ThemeModel::from_json(&bytes, &file)?;
    let model = load_model(g, None)?;
    let dir = super::model_dir(g, None)?;
    let head_path = verbatim::sentiment::SentimentHead::path_for(&dir);
    let (head, _) = verbatim::sentiment::SentimentHead::load(&head_path, model.fingerprint())
        .with_context(|| format!("the sentiment head of {}", dir.display()))?;
    let t = std::time::Instant::now();
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::new(stdout);
    let summary = verbatim::workspace::prepare::assign::assign(
        &theme_model,
        &file,
        &head,
        &model as &dyn Embedder,
        std::io::stdin().lock(),
        &mut out,
        a.chunk,
    )?;
    out.flush().context("writing standard output")?;
    if g.json {
        eprintln!("{}", serde_json::to_string(&summary)?);
    } else if !g.quiet {
        eprintln!(
            "assign: {} rows: {} units of {} verbatims placed, {} in no theme ({:.1}s, theme model {})",
            summary.rows,
            summary.units,
            summary.verbatims,
            summary.other,
            t.elapsed().as_secs_f64(),
            &summary.theme_model[..12.min(summary.theme_model.len())]
        );
    }
    Ok(0)
}

/// `verbatim key export`.
pub(super) fn cmd_key(g: &Global, root: &Path, c: KeyCommand) -> Result<i32> {
    let KeyCommand::Export {
        purpose: _,
        out,
        allow_legacy_key,
    } = c;
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (models(g), session_settings(g));
    let key_id = session(&mut ws, "key export", &models, &settings)?
        .export_prepare_key(&out, allow_legacy_key)?;
    if g.json {
        output::json(&serde_json::json!({ "out": out, "key_id": key_id }));
    } else {
        println!(
            "{}: prepare key {key_id} (mount it on executors as a file)",
            out.display()
        );
    }
    Ok(0)
}

/// `verbatim ingest --prepared DIR [--shard i/S]`.
pub(super) fn cmd_ingest_prepared(
    g: &Global,
    root: &Path,
    dir: &Path,
    a: &IngestArgs,
) -> Result<i32> {
    if !a.files.is_empty() {
        bail!(
            "--prepared {} reads a folder of prepared files: give no other files",
            dir.display()
        );
    }
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (models(g), session_settings(g));
    let c = caller(&ws)?;
    let bar = Bar::new(g);
    let s = Session::new(
        &mut ws,
        c,
        verbatim::service::Via::cli("ingest"),
        &models,
        &settings,
    );
    s.check(Action::Write)?;
    s.load_embedder("ingest")?;
    let shard: Option<Shard> = a.shard;
    let summary = s.with_progress(&bar).ingest_prepared(dir, shard)?;
    if !g.quiet {
        for e in &summary.errors {
            eprintln!("{e}");
        }
    }
    if g.json {
        output::json(&summary);
    } else {
        println!(
            "{}{}: {} rows: {} stored, {} unchanged, {} updated, {} rejected ({:.1}s)",
            dir.display(),
            shard
                .map(|s| format!(" (shard {}/{})", s.index, s.count))
                .unwrap_or_default(),
            summary.rows,
            summary.stored,
            summary.unchanged,
            summary.updated,
            summary.rejected,
            summary.timings.total
        );
    }
    Ok(if summary.rejected > 0 { 1 } else { 0 })
}
