//! `forget`, `export`, `retention apply`: erasure, access/portability and storage limitation
//! (GDPR Art. 17, 15/20, 5(1)(e)). The work is in `verbatim::workspace::erase`; this prints the
//! receipt (a table, or `--json`) or the export (always JSON).

use std::path::Path;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use verbatim::access::Action;
use verbatim::service::Forget;
use verbatim::workspace::erase::Receipt;
use verbatim::workspace::Workspace;

use super::progress::Bar;
use super::{output, Global};

#[derive(Args, Debug)]
pub(super) struct ForgetArgs {
    /// The respondent's identifier as it appears in your files (email, customer id, phone):
    /// every verbatim under its pseudonym is erased.
    #[arg(long, conflicts_with = "ids")]
    respondent: Option<String>,
    /// A verbatim id to erase (as stored: `verbatim search --json` shows it); repeat.
    #[arg(long = "id")]
    ids: Vec<String>,
}

#[derive(Args, Debug)]
pub(super) struct ExportArgs {
    /// The respondent's identifier as it appears in your files (email, customer id, phone).
    #[arg(long)]
    respondent: String,
}

#[derive(Subcommand, Debug)]
pub(super) enum RetentionCommand {
    /// Erase every verbatim dated (or, without a date, ingested) more than
    /// `privacy.retention_days` ago.
    #[command(after_help = super::help::RETENTION_APPLY)]
    Apply {
        /// Count what would be erased; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub(super) fn cmd_forget(g: &Global, root: &Path, a: ForgetArgs) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let s = super::session(&mut ws, "forget", &models, &settings)?;
    s.check(Action::Erase)?;
    let bar = Bar::new(g);
    let mut s = s.with_progress(&bar);
    let receipt = match (&a.respondent, a.ids.is_empty()) {
        (Some(who), _) => s.forget(Forget::Respondent(who))?,
        (None, false) => s.forget(Forget::Verbatims(&a.ids))?,
        (None, true) => bail!("say what to erase: --respondent IDENTIFIER, or --id ID (repeat)"),
    };
    print_receipt(g, &receipt);
    Ok(0)
}

pub(super) fn cmd_export(g: &Global, root: &Path, a: ExportArgs) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let export =
        super::session(&mut ws, "export", &models, &settings)?.export_respondent(&a.respondent)?;
    output::json(&export);
    Ok(0)
}

pub(super) fn cmd_retention(g: &Global, root: &Path, c: RetentionCommand) -> Result<i32> {
    let RetentionCommand::Apply { dry_run } = c;
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let receipt =
        super::session(&mut ws, "retention apply", &models, &settings)?.retention(dry_run)?;
    print_receipt(g, &receipt);
    Ok(0)
}

fn print_receipt(g: &Global, r: &Receipt) {
    if r.vector_compacted {
        // A rebuild makes this erasure slower than the usual masking: say why, beside progress.
        if let Some(note) = r.notes.iter().find(|n| n.contains("compacted")) {
            eprintln!("verbatim: {note}");
        }
    }
    if g.json {
        output::json(r);
        return;
    }
    let what = match (r.request.as_str(), &r.pseudonym) {
        (_, Some(p)) => format!("respondent {p}"),
        ("retention", _) => format!(
            "retention: older than {} days (before {})",
            r.retention_days.unwrap_or(0),
            r.cutoff.as_deref().unwrap_or("-")
        ),
        _ => "verbatims by id".to_string(),
    };
    let verb = if r.dry_run { "would erase" } else { "erased" };
    if r.is_empty() {
        println!("{what}: nothing held, nothing erased (0 verbatims)");
    } else {
        println!("{what}: {verb} {} verbatim(s)", r.ids.len());
    }
    let s = &r.store;
    println!(
        "  store             {} verbatims, {} segment values, {} embeddings, {} sentence vectors, {} opinion units, {} sealed originals",
        s.verbatims, s.segment_values, s.embeddings, s.sentence_vectors, s.units, s.originals
    );
    println!(
        "                    {} theme assignments, {} rejected-row records, {} survey-link tokens",
        s.theme_assignments, s.rejected_rows, s.link_tokens
    );
    println!(
        "  text index        {} documents{}",
        r.text_index_docs,
        if r.dry_run { "" } else { " (segments merged)" }
    );
    println!(
        "  vector index      {} points{}",
        r.vector_points,
        match (r.dry_run, r.vector_compacted) {
            (true, _) => "",
            (false, false) => " (masked; vectors zeroed)",
            (false, true) => " (graph compacted)",
        }
    );
    println!("  theme labels      {} recomputed", r.labels_recomputed);
    println!(
        "  aspect tree       {} node(s) changed (members, counts, labels)",
        r.tree_nodes_changed
    );
    println!(
        "  reports           {} {}",
        r.reports_removed.len(),
        if r.dry_run { "to remove" } else { "removed" }
    );
    for p in &r.reports_removed {
        println!("                    {}", p.display());
    }
    for u in &r.reports_unreachable {
        println!("  NOT REACHED       {u}");
    }
    if !r.dry_run && !r.is_empty() {
        println!(
            "  reclaimed         {} bytes; write-ahead log {}",
            r.bytes_reclaimed,
            if r.wal_truncated {
                "truncated"
            } else {
                "NOT truncated (another process holds the store open)"
            }
        );
    }
    for id in &r.not_found {
        println!("  not found         {id}");
    }
    for n in &r.notes {
        println!("  note              {n}");
    }
    match r.audit_seq {
        Some(seq) => println!("  audit entry       {seq} at {}", r.at),
        None => println!("  at                {} (dry run: not audited)", r.at),
    }
}
