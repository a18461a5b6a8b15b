//! `verbatim themes …` and `verbatim report`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use verbatim::access::Action;
use verbatim::service::{
    AssignmentsRequest, ReportRequest, ReportResponse, RunRequest, ServiceError, ThemeEdit,
    ThemeRequest, ThemeResponse, ThemesRequest, ThemesResponse, TreeEdit, TreeRequest,
    TreeResponse,
};
use verbatim::store::{StoredTheme, ThemeState};
use verbatim::themes::analytics::ReportParameters;
use verbatim::themes::aspect::parse_node_id;
use verbatim::themes::run::{display_label, parse_theme_id, theme_id, Params, RunData};
use verbatim::themes::{Change, Report};
use verbatim::workspace::Workspace;

use super::{filter_from, load_model, output, FilterArgs, Global};

/// Discovery settings shared by `themes` and `report`.
#[derive(Args, Debug, Clone)]
pub(super) struct RunArgs {
    /// Discovered themes smaller than this are dissolved into their neighbours (and, with a
    /// filter, themes with fewer verbatims in scope are not listed).
    #[arg(long, default_value_t = 10, value_parser = super::ranged(verbatim::limits::MIN_SIZE))]
    min_size: usize,
    /// Number of themes to find, 2 to 200 (default: chosen automatically by silhouette).
    #[arg(long, value_parser = super::ranged(verbatim::limits::K))]
    k: Option<usize>,
    /// Seed of the clustering (same data + same seed = same themes).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Re-run discovery even when the stored run is current (the view's own: the aspect tree,
    /// or with --by topic the topic themes).
    #[arg(long)]
    refresh: bool,
}

impl RunArgs {
    fn params(&self) -> Params {
        Params {
            seed: self.seed,
            k: self.k,
            min_size: self.min_size,
        }
    }
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct ThemesArgs {
    #[command(subcommand)]
    cmd: Option<ThemesCommand>,
    /// One grounded sentence per theme from its quotes, written by the local generator (cited;
    /// without a generator, the theme's most central quote).
    #[arg(long)]
    summarize: bool,
    /// What the themes are: `aspect` (default) — the two-level tree of opinion units (parents =
    /// aspects, children = what is said; shares count verbatims, a verbatim in every theme one
    /// of its units is in); `topic` — one theme per verbatim (the earlier view).
    #[arg(long, value_enum, default_value = "aspect")]
    by: By,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// `themes --by`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum By {
    Aspect,
    Topic,
}

#[derive(Subcommand, Debug)]
enum ThemesCommand {
    /// One theme in full: keywords, quotes, trend, segments, score driver.
    #[command(after_help = super::help::THEMES_SHOW)]
    Show {
        /// Theme id (T12).
        id: String,
        /// Quotes to show (0 to 50).
        #[arg(long, default_value_t = 5, value_parser = super::ranged(verbatim::limits::QUOTES))]
        quotes: usize,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Merge themes into the first; they stay merged in every later run.
    #[command(after_help = super::help::THEMES_MERGE)]
    Merge {
        /// The theme that stays.
        into: String,
        /// Themes merged into it.
        #[arg(required = true)]
        others: Vec<String>,
        /// New label for the merged theme.
        #[arg(long)]
        label: Option<String>,
    },
    /// Give a theme a label of your own (kept across runs).
    #[command(after_help = super::help::THEMES_RENAME)]
    Rename {
        /// Theme id.
        id: String,
        /// The label.
        label: String,
    },
    /// Create a theme from examples. By aspect (default): a child of the tree that the opinion
    /// units nearer to the examples than to their own child join, under the parent most of them
    /// fall in (or --parent); by topic: a theme the verbatims nearer to it than to any other
    /// theme join. Kept across runs and ingests.
    #[command(after_help = super::help::THEMES_SEED)]
    Seed {
        /// Its label.
        label: String,
        /// An example text; repeat.
        #[arg(long = "example", required = true)]
        examples: Vec<String>,
        /// `aspect` (a child of the tree) or `topic` (a topic theme).
        #[arg(long, value_enum, default_value = "aspect")]
        by: By,
        /// The parent (P3) to put the seeded child under (by aspect; default: the parent its
        /// units fall in).
        #[arg(long)]
        parent: Option<String>,
    },
    /// Move a child of the aspect tree (C12) to another parent (P3); kept across runs.
    #[command(after_help = super::help::THEMES_MOVE)]
    Move {
        /// The child.
        child: String,
        /// The parent it goes to.
        #[arg(long = "to", required = true)]
        to: String,
    },
    /// Write theme assignments as JSON Lines: by aspect (default) one row per opinion unit
    /// {"id", "start", "end", "theme", "parent", "sentiment", "score"}; by topic one per
    /// verbatim {"id", "theme", "second", "similarity"}.
    #[command(after_help = super::help::THEMES_ASSIGNMENTS)]
    Assignments {
        /// Output file (default: stdout).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// `aspect` (one row per unit) or `topic` (one row per verbatim).
        #[arg(long, value_enum, default_value = "aspect")]
        by: By,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Write the aspect tree as a theme model file (JSON: node ids, labels, centroids and the
    /// rule that places a unit; no text of any verbatim), discovered afresh on every verbatim or
    /// on a uniform sample; `themes import` assigns another workspace's units with it. The
    /// workspace's own tree is not changed.
    #[command(name = "export-model", after_help = super::help::THEMES_EXPORT_MODEL)]
    ExportModel {
        /// Output file (default: stdout).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Discover on this many verbatims, a uniform sample: those whose keyed hash of their
        /// id under --sample-seed is smallest (the same rows on any machine).
        #[arg(long, value_parser = super::ranged(verbatim::limits::SAMPLE))]
        sample: Option<usize>,
        /// Key of the sample's hash.
        #[arg(long, default_value_t = 42, requires = "sample")]
        sample_seed: u64,
    },
    /// Make a theme model (`themes export-model`) this workspace's tree: every unit is
    /// assigned with it, with the model's ids and labels and this workspace's counts; later
    /// runs (after an ingest) assign with it too. Importing the same file again changes nothing.
    #[command(after_help = super::help::THEMES_IMPORT)]
    Import {
        /// The model file.
        file: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum ReportFormat {
    Html,
    Md,
    Json,
}

#[derive(Args, Debug)]
pub(super) struct ReportArgs {
    /// Output file; the format follows its extension (.html, .md, .json) unless --format says.
    #[arg(long, short)]
    out: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    format: Option<ReportFormat>,
    /// A previous report's JSON: themes are marked new / grew / shrank / stable against it and
    /// the ones gone are listed.
    #[arg(long)]
    compare_to: Option<PathBuf>,
    /// Title at the top of the report.
    #[arg(long, default_value = "Feedback themes")]
    title: String,
    /// Quotes per theme (0 to 50).
    #[arg(long, default_value_t = 5, value_parser = super::ranged(verbatim::limits::QUOTES))]
    quotes: usize,
    /// `aspect` (default): the report on the aspect tree — what to fix first among the
    /// children, parents with their children, every unit of each child (collapsed); `topic`:
    /// the report on the topic themes (one theme per verbatim).
    #[arg(long, value_enum, default_value = "aspect")]
    by: By,
    /// Make the report an earlier one describes: its manifest (in a report written by `verbatim
    /// report`, any format) gives the parameters (themes settings, filter, quotes, title,
    /// --compare-to). With the same data, models and theme edits, the bytes are the same; what
    /// differs is said, and the exit status is then 1.
    #[arg(long, value_name = "REPORT", conflicts_with_all = [
        "k", "min_size", "seed", "filters", "since", "until", "min_score", "max_score",
        "quotes", "title", "compare_to", "by",
    ])]
    from_manifest: Option<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// The manifest of the report file at `path` and the parameters it records.
fn manifest_of(path: &Path) -> Result<(verbatim::themes::ReportManifest, ReportParameters)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--from-manifest {}", path.display()))?;
    let m = verbatim::themes::report::read_manifest(&text).with_context(|| {
        format!(
            "--from-manifest {}: no report manifest in it (expected a report written by `verbatim report`: .html, .md or .json)",
            path.display()
        )
    })?;
    let p: ReportParameters = serde_json::from_value(m.parameters.clone()).with_context(|| {
        format!(
            "--from-manifest {}: its manifest's parameters are not ones this verbatim can run",
            path.display()
        )
    })?;
    Ok((m, p))
}

/// What differs between the manifest a report was re-made from and the new report's: empty
/// when the new report is a reproduction.
fn differences(
    old: &verbatim::themes::ReportManifest,
    old_params: &ReportParameters,
    new: &verbatim::themes::ReportManifest,
    new_params: &ReportParameters,
) -> Vec<String> {
    let mut d = Vec::new();
    let cmp = |d: &mut Vec<String>, what: &str, a: &str, b: &str| {
        if a != b {
            d.push(format!("{what}: {a} then, {b} now"));
        }
    };
    cmp(&mut d, "verbatim version", &old.version, &new.version);
    cmp(
        &mut d,
        "data snapshot",
        &old.data_snapshot,
        &new.data_snapshot,
    );
    cmp(&mut d, "embedding model", &old.model, &new.model);
    cmp(
        &mut d,
        "sentiment model",
        &old.sentiment_model,
        &new.sentiment_model,
    );
    cmp(
        &mut d,
        "theme edits (seeds, merges, renames)",
        &old_params.theme_edits,
        &new_params.theme_edits,
    );
    // Only worth saying when everything above agrees: then the run itself differs.
    if d.is_empty() && old_params.theme_run != new_params.theme_run {
        d.push(
            "the themes: other runs since re-ran discovery from other themes, so the same parameters gave other ones"
                .into(),
        );
    }
    if old_params.filter != new_params.filter || old_params.quotes != new_params.quotes {
        d.push("filter or quotes (your access differs from the report's author's)".into());
    }
    if old_params.min_cell != new_params.min_cell {
        cmp(
            &mut d,
            "suppression k",
            &old_params.min_cell.to_string(),
            &new_params.min_cell.to_string(),
        );
    }
    d
}

impl RunArgs {
    /// The run as the session makes it.
    fn request(&self) -> RunRequest {
        RunRequest {
            params: self.params(),
            refresh: self.refresh,
        }
    }
}

/// The trend cell: "spike" when the last period is one, else the library's direction (the one
/// the report shows), "-" with too few periods.
fn arrow(t: &verbatim::themes::ThemeSummary) -> &'static str {
    if t.trend.points.last().is_some_and(|x| x.spike) {
        return "spike";
    }
    t.trend.direction.map_or("-", |d| d.word())
}

fn change_word(c: Option<Change>) -> &'static str {
    c.map_or("", Change::word)
}

/// "What to fix first", above the themes table: at most 5 problem themes, by priority, and the
/// formula under them (`--json` has them all under "priorities").
fn print_priorities(priorities: &[verbatim::themes::priority::Priority]) {
    use verbatim::themes::priority::{priority_effect, FORMULA};
    println!("What to fix first:");
    if priorities.is_empty() {
        println!("  (no theme is more negative than all verbatims, and none pulls the score down)");
    }
    for (i, p) in priorities.iter().take(5).enumerate() {
        let effect = priority_effect(p);
        // A child of the tree says its parent: "Packaging › arrived crushed".
        let label = match &p.parent_label {
            Some(parent) => format!("{} › {}", shorten(parent, 20), p.label),
            None => p.label.clone(),
        };
        println!(
            "{:>3}. {:<5} {:<44} {:>5.1}% of verbatims, {:>3.0}% negative{}",
            i + 1,
            p.id,
            shorten(&label, 44),
            100.0 * p.share,
            100.0 * p.negative,
            if effect.is_empty() {
                String::new()
            } else {
                format!(", {effect}")
            }
        );
    }
    if priorities.len() > 5 {
        println!("     … {} more in --json", priorities.len() - 5);
    }
    println!("  ({FORMULA})\n");
}

/// A quote on one line: its highlighted sentence when it has one (the part about the theme).
fn quote_line(q: &verbatim::themes::Quote) -> String {
    let part = q
        .highlight
        .and_then(|h| q.text.get(h.start..h.end))
        .unwrap_or(&q.text);
    shorten(part, 70)
}

fn shorten(s: &str, n: usize) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        one_line.chars().take(n - 1).collect::<String>() + "…"
    }
}

pub(super) fn cmd_themes(g: &Global, root: &Path, a: ThemesArgs) -> Result<i32> {
    let is_node = |id: &str| parse_node_id(id).is_some();
    if a.cmd.is_none() && a.by == By::Aspect {
        if a.run.k.is_some() {
            bail!("--k sets the number of topic themes: use it with --by topic (the aspect tree chooses its own sizes)");
        }
        if a.summarize {
            bail!("--summarize writes a sentence per topic theme: use it with --by topic");
        }
    }
    match a.cmd {
        None if a.by == By::Aspect => tree_list(g, root, &a.filter, &a.run),
        None => list(g, root, &a.filter, &a.run, a.summarize),
        Some(ThemesCommand::Show { id, filter, .. }) if is_node(&id) => {
            tree_show(g, root, &id, &filter)
        }
        Some(ThemesCommand::Show {
            id,
            quotes,
            filter,
            run,
        }) => show(g, root, &id, quotes, &filter, &run),
        Some(ThemesCommand::Merge {
            into,
            others,
            label,
        }) if is_node(&into) => tree_edit(
            g,
            root,
            "themes merge",
            TreeEdit::Merge {
                into,
                others,
                label,
            },
        ),
        Some(ThemesCommand::Merge {
            into,
            others,
            label,
        }) => merge(g, root, &into, &others, label),
        Some(ThemesCommand::Rename { id, label }) if is_node(&id) => {
            tree_edit(g, root, "themes rename", TreeEdit::Rename { id, label })
        }
        Some(ThemesCommand::Rename { id, label }) => rename(g, root, &id, label),
        Some(ThemesCommand::Move { child, to }) => {
            tree_edit(g, root, "themes move", TreeEdit::Move { child, to })
        }
        Some(ThemesCommand::Seed {
            label,
            examples,
            by: By::Aspect,
            parent,
        }) => tree_edit(
            g,
            root,
            "themes seed",
            TreeEdit::Seed {
                label,
                examples,
                parent,
            },
        ),
        Some(ThemesCommand::Seed {
            label,
            examples,
            parent,
            ..
        }) => {
            if parent.is_some() {
                bail!(
                    "--parent places a seeded child in the aspect tree: use it without --by topic"
                );
            }
            seed(g, root, label, &examples)
        }
        Some(ThemesCommand::Assignments { out, by, .. }) if by == By::Aspect => {
            tree_assignments(g, root, out)
        }
        Some(ThemesCommand::Assignments { out, run, .. }) => assignments(g, root, out, &run),
        Some(ThemesCommand::ExportModel {
            out,
            sample,
            sample_seed,
        }) => export_model(g, root, out, sample, sample_seed),
        Some(ThemesCommand::Import { file }) => import_model(g, root, &file),
    }
}

/// `themes export-model`: the model as one line of JSON, to a file (written whole, then
/// renamed) or stdout.
fn export_model(
    g: &Global,
    root: &Path,
    out: Option<PathBuf>,
    sample: Option<usize>,
    seed: u64,
) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let bar = super::Bar::new(g);
    let abs = out
        .as_ref()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
    let r = super::session(&mut ws, "themes export-model", &models, &settings)?
        .with_progress(&bar)
        .export_theme_model(verbatim::service::ExportModelRequest {
            sample: sample.map(|size| verbatim::themes::model::Sample { size, seed }),
            out: abs,
        })?;
    drop(bar);
    let json = r.model.to_json();
    let m = &r.model;
    let parents = m.nodes.iter().filter(|n| n.is_parent).count();
    let children = m.nodes.len() - parents;
    match &out {
        Some(p) => {
            verbatim::fs::write_atomic(p, format!("{json}\n").as_bytes())
                .with_context(|| format!("writing {}", p.display()))?;
            if g.json {
                output::json(&serde_json::json!({
                    "out": p,
                    "digest": m.digest(),
                    "parents": parents,
                    "children": children,
                    "discovered_on": m.discovered_on,
                    "verbatims": r.verbatims,
                }));
            } else if !g.quiet {
                eprintln!(
                    "theme model written to {}: {parents} aspects, {children} children, discovered on {} of {} verbatims ({} units)",
                    p.display(),
                    m.discovered_on.verbatims,
                    r.verbatims,
                    m.discovered_on.units
                );
            }
        }
        None => println!("{json}"),
    }
    Ok(0)
}

/// `themes import FILE`.
fn import_model(g: &Global, root: &Path, file: &Path) -> Result<i32> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = file.display().to_string();
    let model = verbatim::themes::model::ThemeModel::from_json(&bytes, &name)?;
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let bar = super::Bar::new(g);
    let r = super::session(&mut ws, "themes import", &models, &settings)?
        .with_progress(&bar)
        .import_theme_model(model, &name)?;
    drop(bar);
    if g.json {
        output::json(&r);
    } else if !g.quiet {
        eprintln!(
            "{}: {} aspects, {} children; {} units of {} verbatims placed, {} in no theme{}",
            name,
            r.parents,
            r.children,
            r.units,
            r.verbatims,
            r.other,
            if r.changed {
                ""
            } else {
                " (already imported: nothing changed)"
            }
        );
    }
    Ok(0)
}

/// `themes` by aspect: parent rows, their children indented under them.
fn tree_list(g: &Global, root: &Path, f: &FilterArgs, r: &RunArgs) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let bar = super::Bar::new(g);
    let TreeResponse { summary: s, tree } = super::session(&mut ws, "themes", &models, &settings)?
        .with_progress(&bar)
        .tree(TreeRequest {
            filter: filter_from(f)?,
            run: r.request(),
        })?;
    drop(bar);
    if g.json {
        output::json(&s);
        return Ok(0);
    }
    print_priorities(&s.priorities);
    print!("{}", render_tree(&s));
    if !g.quiet {
        eprintln!(
            "{} verbatims, {} aspects, {} children; {} verbatims in no theme; a verbatim counts in every theme one of its units is in{}",
            s.verbatims,
            s.parents.len(),
            s.parents.iter().map(|p| p.children.len()).sum::<usize>(),
            s.other,
            if tree.ran { "" } else { " (stored tree)" }
        );
        if let Some(d) = &s.discovered_on {
            eprintln!(
                "tree discovered on a uniform sample of {} verbatims (seed {}), every unit assigned by its rule: more units than [themes] sample_above_units in verbatim.toml",
                d.sample.size, d.sample.seed
            );
        }
    }
    Ok(0)
}

/// The tree as `themes` prints it.
pub(super) fn render_tree(s: &verbatim::themes::aspect::TreeSummary) -> String {
    let mut out = format!(
        "{:<7} {:<40} {:>9} {:>14} {:>10} {:<5}\n",
        "id", "label", "verbatims", "% of verbatims", "% negative", "trend"
    );
    let row = |out: &mut String, n: &verbatim::themes::aspect::NodeSummary, indent: &str| {
        let label = format!("{indent}{}", shorten(&n.label, 40 - indent.len()));
        out.push_str(&format!(
            "{:<7} {:<40} {:>9} {:>13.1}% {:>9.0}% {:<5}\n",
            n.id,
            label,
            n.verbatims,
            100.0 * n.share_of_verbatims,
            100.0 * n.negative,
            n.trend
        ));
    };
    for p in &s.parents {
        row(&mut out, p, "");
        for c in &p.children {
            row(&mut out, c, "  ");
        }
    }
    out
}

/// `themes show P3|C12`: the node and its units.
fn tree_show(g: &Global, root: &Path, id: &str, f: &FilterArgs) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let bar = super::Bar::new(g);
    let r = super::session(&mut ws, "themes show", &models, &settings)?
        .with_progress(&bar)
        .tree_node(id, &filter_from(f)?)?;
    drop(bar);
    if g.json {
        output::json(&r);
        return Ok(0);
    }
    let n = &r.node;
    println!("{}  {}", n.id, n.label);
    println!(
        "{} verbatims ({:.1}% of verbatims), {} units, {:.0}% negative, trend {}{}",
        n.verbatims,
        100.0 * n.share_of_verbatims,
        n.units,
        100.0 * n.negative,
        n.trend,
        n.parent
            .as_deref()
            .map(|p| format!("; parent {p}"))
            .unwrap_or_default()
    );
    println!(
        "{:<14} {:>6} {:>6} {:<9} {:>6}  unit",
        "verbatim", "start", "end", "sentiment", "score"
    );
    for u in &r.units {
        println!(
            "{:<14} {:>6} {:>6} {:<9} {:>+6.2}  {}",
            u.id,
            u.start,
            u.end,
            format!("{:?}", u.sentiment).to_lowercase(),
            u.score,
            u.text
                .as_deref()
                .map(|t| shorten(t, 100))
                .unwrap_or_default()
        );
    }
    Ok(0)
}

/// `themes assignments` by aspect: one JSON line per unit.
fn tree_assignments(g: &Global, root: &Path, out: Option<PathBuf>) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let bar = super::Bar::new(g);
    let rows = super::session(&mut ws, "themes assignments", &models, &settings)?
        .with_progress(&bar)
        .tree_assignments(out.clone())?;
    drop(bar);
    let mut w: Box<dyn Write> = match &out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    for row in &rows {
        writeln!(w, "{}", serde_json::to_string(row)?)?;
    }
    w.flush()?;
    if let Some(p) = out {
        if !g.quiet {
            eprintln!("{} unit assignments written to {}", rows.len(), p.display());
        }
    }
    Ok(0)
}

/// A tree edit (rename, merge, move) through the session.
fn tree_edit(g: &Global, root: &Path, via: &str, edit: TreeEdit) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let what = match &edit {
        TreeEdit::Rename { id, label } => format!("{id} renamed to {label:?}"),
        TreeEdit::Merge { into, others, .. } => format!("{} merged into {into}", others.join(", ")),
        TreeEdit::Move { child, to } => format!("{child} moved to {to}"),
        TreeEdit::Seed {
            label, examples, ..
        } => format!("seeded {label:?} from {} example(s)", examples.len()),
    };
    let detail = super::session(&mut ws, via, &models, &settings)?.edit_tree(edit)?;
    let what = match detail {
        verbatim::store::AuditDetail::ThemeSeed { theme_ids, .. } => {
            format!("{what}: child {}", theme_ids.join(" under "))
        }
        _ => what,
    };
    report_edit(g, &what);
    Ok(0)
}

fn list(g: &Global, root: &Path, f: &FilterArgs, r: &RunArgs, with_sentences: bool) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let bar = super::Bar::new(g);
    let mut session = super::session(&mut ws, "themes", &models, &settings)?.with_progress(&bar);
    // Sentences are written from quotes: not for aggregates-only callers.
    let with_sentences = with_sentences && session.may_read_text(Action::Themes)?;
    let min_size = if f.filters.is_empty() && f.since.is_none() && f.until.is_none() {
        1
    } else {
        r.min_size
    };
    let quotes = if with_sentences { 5 } else { 1 };
    let ThemesResponse { summary: s, run } = session.themes(ThemesRequest {
        filter: filter_from(f)?,
        quotes,
        min_size: Some(min_size),
        run: r.request(),
    })?;
    let vanished: Vec<&StoredTheme> = run
        .themes
        .iter()
        .filter(|t| run.changes.get(&t.id) == Some(&Change::Vanished))
        .collect();
    let summaries = if with_sentences {
        summaries_of(g, &ws, &s.themes)?
    } else {
        Vec::new()
    };
    if g.json {
        output::json(&serde_json::json!({
            "summaries": summaries,
            "verbatims": s.verbatims,
            "other": s.other,
            "ran": run.ran,
            "k_selection": run.selection.as_ref().map(|x| serde_json::json!({
                "k": x.k, "sample": x.sample,
                "silhouette": x.curve.iter().map(|(k, v)| serde_json::json!([k, v])).collect::<Vec<_>>(),
            })),
            "priorities": s.priorities,
            "themes": s.themes,
            "vanished": vanished.iter().map(|t| serde_json::json!({
                "id": theme_id(t.id), "label": display_label(t),
            })).collect::<Vec<_>>(),
        }));
        return Ok(0);
    }
    print_priorities(&s.priorities);
    println!(
        "{:<5} {:>6} {:>6}  {:<14} {:<7} {:<7} {:<32} top quote",
        "id", "size", "share", "sentiment +/=/-", "trend", "change", "label"
    );
    for t in &s.themes {
        let n = t.size.max(1) as f64;
        let senti = format!(
            "{:.0}/{:.0}/{:.0}%",
            100.0 * t.sentiment.positive as f64 / n,
            100.0 * t.sentiment.neutral as f64 / n,
            100.0 * t.sentiment.negative as f64 / n
        );
        println!(
            "{:<5} {:>6} {:>5.1}%  {:<14} {:<7} {:<7} {:<32} {}",
            t.id,
            t.size,
            100.0 * t.share,
            senti,
            arrow(t),
            change_word(t.change),
            shorten(&t.label, 32),
            t.quotes.first().map(quote_line).unwrap_or_default()
        );
    }
    if with_sentences {
        println!();
        for (t, sum) in s.themes.iter().zip(&summaries) {
            println!("{} {}: {}", t.id, t.label, sum.text);
            for &c in &sum.citations {
                if let Some(q) = t.quotes.get(c - 1) {
                    println!("    [{c}] {}  {}", q.id, shorten(&q.text, 100));
                }
            }
        }
    }
    if !g.quiet {
        eprintln!(
            "{} verbatims, {} themes, other {} ({:.1}%){}",
            s.verbatims,
            s.themes.len(),
            s.other,
            100.0 * s.other as f64 / s.verbatims.max(1) as f64,
            match &run.selection {
                Some(sel) if run.ran =>
                    format!("; k = {} by silhouette on {} verbatims", sel.k, sel.sample),
                _ => String::new(),
            }
        );
        for t in vanished {
            eprintln!("vanished: {} {}", theme_id(t.id), display_label(t));
        }
    }
    Ok(0)
}

/// One grounded sentence per theme (`--summarize`).
fn summaries_of(
    g: &Global,
    ws: &Workspace,
    themes: &[verbatim::themes::ThemeSummary],
) -> Result<Vec<verbatim::ask::ThemeSentence>> {
    let embedder = load_model(g, Some(ws))?;
    let path = super::ask::generator_path(g)?;
    let mut generator = match verbatim::ask::llm::Generator::load(&path) {
        Ok(gen) => Some(gen),
        Err(verbatim::ask::llm::LlmError::Missing { .. }) => {
            if !g.quiet {
                eprintln!(
                    "note: no generator model at {}: quoting each theme instead",
                    path.display()
                );
            }
            None
        }
        // There but unusable: quote, and say why (as `ask` does).
        Err(e) => {
            if !g.quiet {
                eprintln!("warning: the generator failed: {e}; quoting each theme instead");
            }
            None
        }
    };
    // Polarity for the support check: the model's sentiment head when it is there.
    let head = super::model_dir(g, Some(ws)).ok().and_then(|dir| {
        verbatim::sentiment::SentimentHead::load(
            &verbatim::sentiment::SentimentHead::path_for(&dir),
            verbatim::embed::Embedder::fingerprint(&embedder),
        )
        .ok()
    });
    let polarities = match &head {
        Some((h, _)) => verbatim::ask::support::Polarities::with_head(h, &embedder),
        None => verbatim::ask::support::Polarities::rule_only(),
    };
    // `[ask]` as resolved (flags > env > verbatim.toml > defaults), as `ask` reads it.
    let gen = g.settings().ask.gen_options();
    themes
        .iter()
        .map(|t| {
            let quotes: Vec<String> = t.quotes.iter().map(|q| q.text.clone()).collect();
            let n = t.size.max(1) as f64;
            Ok(verbatim::ask::summarize_theme(
                generator.as_mut(),
                &polarities,
                &verbatim::ask::ThemeFacts {
                    label: &t.label,
                    negative_share: t.sentiment.negative as f64 / n,
                    positive_share: t.sentiment.positive as f64 / n,
                },
                &quotes,
                &gen,
            )?)
        })
        .collect()
}

fn find<'a>(run: &'a RunData, id: &str) -> Result<&'a StoredTheme> {
    let n = parse_theme_id(id).with_context(|| format!("{id:?} is not a theme id (like T3)"))?;
    run.themes
        .iter()
        .find(|t| t.id == n)
        .with_context(|| format!("no theme {id}; `verbatim themes` lists them"))
}

fn show(
    g: &Global,
    root: &Path,
    id: &str,
    quotes: usize,
    f: &FilterArgs,
    r: &RunArgs,
) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let bar = super::Bar::new(g);
    let ThemeResponse {
        theme,
        run,
        min_cell,
    } = super::session(&mut ws, "themes show", &models, &settings)?
        .with_progress(&bar)
        .theme(ThemeRequest {
            id: id.to_string(),
            filter: filter_from(f)?,
            quotes,
            run: r.request(),
        })?;
    let t = find(&run, id)?;
    if t.state != ThemeState::Active {
        let how = match (t.state, t.merged_into) {
            (ThemeState::Merged, Some(into)) => format!("merged into {}", theme_id(into)),
            _ => "vanished in the last run".to_string(),
        };
        bail!("{} ({}) is {how}", theme_id(t.id), display_label(t));
    }
    let Some(ts) = theme else {
        bail!(
            "{} has no verbatims in this filter{}",
            theme_id(t.id),
            if min_cell > 0 {
                " (or fewer than k: suppressed)"
            } else {
                ""
            }
        );
    };
    let ts = &ts;
    if g.json {
        output::json(ts);
        return Ok(0);
    }
    println!("{}  {}", ts.id, ts.label);
    println!(
        "{} verbatims ({:.1}%), {} more as second theme{}",
        ts.size,
        100.0 * ts.share,
        ts.secondary,
        if ts.seeded { "; seeded" } else { "" }
    );
    println!("keywords: {}", ts.keywords.join(", "));
    println!(
        "sentiment: {} positive, {} neutral, {} negative (mean {:+.2})",
        ts.sentiment.positive, ts.sentiment.neutral, ts.sentiment.negative, ts.sentiment.mean
    );
    if let Some(d) = &ts.score {
        use verbatim::themes::priority::{effect, effect_words, ScoreScale};
        println!(
            "score: {}; mean {:.2} vs {:.2} for the rest",
            effect_words(effect(d), &d.scale.unwrap_or(ScoreScale::UNKNOWN)),
            d.mean,
            d.rest_mean
        );
    }
    if !ts.trend.points.is_empty() {
        let line: Vec<String> = ts
            .trend
            .points
            .iter()
            .map(|p| {
                format!(
                    "{} {}{}",
                    p.period,
                    p.count,
                    if p.spike { " (spike)" } else { "" }
                )
            })
            .collect();
        println!("trend by {}: {}", ts.trend.granularity, line.join(", "));
    }
    for seg in &ts.segments {
        let cells: Vec<String> = seg
            .values
            .iter()
            .map(|v| match (v.count, v.share) {
                (Some(c), Some(sh)) => format!("{}={} ({:.0}%)", v.value, c, 100.0 * sh),
                _ => format!("{}=<k", v.value),
            })
            .collect();
        println!("{}: {}", seg.field, cells.join(", "));
    }
    for q in &ts.quotes {
        println!(
            "\n  [{}{}] {:?}\n  {}",
            q.id,
            q.date
                .as_deref()
                .map(|d| format!(", {d}"))
                .unwrap_or_default(),
            q.sentiment,
            q.text.replace('\n', "\n  ")
        );
        if let Some(part) = q
            .highlight
            .and_then(|h| Some((h, q.text.get(h.start..h.end)?)))
        {
            println!(
                "  highlighted ({:?}, bytes {}..{}): {}",
                part.0.sentiment,
                part.0.start,
                part.0.end,
                shorten(part.1, 200)
            );
        }
    }
    Ok(0)
}

/// Applies an edit to the stored themes and records it: `f` returns the message and the audit
/// detail.
fn edit(
    g: &Global,
    root: &Path,
    via: &str,
    f: impl FnOnce(&mut Vec<StoredTheme>) -> Result<(String, verbatim::store::AuditDetail)>,
) -> Result<String> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let mut msg = String::new();
    super::session(&mut ws, via, &models, &settings)?.edit_themes(|mut themes| {
        if themes.is_empty() {
            return Err(ServiceError::BadRequest(
                "no themes yet: run `verbatim themes` first".into(),
            ));
        }
        let (m, detail) = f(&mut themes).map_err(|e| ServiceError::BadRequest(format!("{e:#}")))?;
        msg = m;
        Ok(ThemeEdit { detail, themes })
    })?;
    Ok(msg)
}

fn lookup(themes: &[StoredTheme], id: &str) -> Result<usize> {
    let n = parse_theme_id(id).with_context(|| format!("{id:?} is not a theme id (like T3)"))?;
    let i = themes
        .iter()
        .position(|t| t.id == n)
        .with_context(|| format!("no theme {id}; `verbatim themes` lists them"))?;
    if themes[i].state != ThemeState::Active {
        bail!(
            "{} is not an active theme ({:?})",
            theme_id(n),
            themes[i].state
        );
    }
    Ok(i)
}

fn merge(
    g: &Global,
    root: &Path,
    into: &str,
    others: &[String],
    label: Option<String>,
) -> Result<i32> {
    let msg = edit(g, root, "themes merge", |themes| {
        let keep = lookup(themes, into)?;
        let keep_id = themes[keep].id;
        let mut merged = Vec::new();
        for o in others {
            let i = lookup(themes, o)?;
            if i == keep {
                bail!("cannot merge {} into itself", theme_id(keep_id));
            }
            themes[i].state = ThemeState::Merged;
            themes[i].merged_into = Some(keep_id);
            merged.push(theme_id(themes[i].id));
        }
        if let Some(l) = &label {
            themes[keep].user_label = Some(l.clone());
        }
        let msg = format!(
            "merged {} into {} ({})",
            merged.join(", "),
            theme_id(keep_id),
            display_label(&themes[keep])
        );
        let mut theme_ids = vec![theme_id(keep_id)];
        theme_ids.extend(merged);
        let detail = verbatim::store::AuditDetail::ThemeMerge {
            into: theme_id(keep_id),
            label,
            theme_ids,
        };
        Ok((msg, detail))
    })?;
    report_edit(g, &msg);
    Ok(0)
}

fn rename(g: &Global, root: &Path, id: &str, label: String) -> Result<i32> {
    if label.trim().is_empty() {
        bail!("the label is empty");
    }
    let msg = edit(g, root, "themes rename", |themes| {
        let i = lookup(themes, id)?;
        themes[i].user_label = Some(label.trim().to_string());
        let msg = format!("{} is now {:?}", theme_id(themes[i].id), label.trim());
        let detail = verbatim::store::AuditDetail::ThemeRename {
            label: label.trim().to_string(),
            theme_ids: vec![theme_id(themes[i].id)],
        };
        Ok((msg, detail))
    })?;
    report_edit(g, &msg);
    Ok(0)
}

fn seed(g: &Global, root: &Path, label: String, examples: &[String]) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let mut session = super::session(&mut ws, "themes seed", &models, &settings)?;
    // Examples are user text: redacted like any verbatim before they are embedded or stored.
    let red: Vec<verbatim::pii::Redacted> =
        examples.iter().map(|e| verbatim::pii::redact(e)).collect();
    let refs: Vec<&str> = red.iter().map(|r| r.as_str()).collect();
    let vecs = session.embed_examples(&refs)?;
    let mut c = vec![0f32; vecs.first().map_or(0, Vec::len)];
    for v in &vecs {
        for (a, b) in c.iter_mut().zip(v) {
            *a += b;
        }
    }
    verbatim::embed::l2_normalize(&mut c);
    let mut id = 0;
    session.edit_themes(|mut themes| {
        id = themes.iter().map(|t| t.id).max().unwrap_or(0) + 1;
        themes.push(StoredTheme {
            id,
            label: label.clone(),
            keywords: Vec::new(),
            user_label: Some(label.clone()),
            centroid: c,
            size: 0,
            seeded: true,
            examples: red.iter().map(|r| r.as_str().to_string()).collect(),
            merged_into: None,
            state: ThemeState::Active,
        });
        let detail = verbatim::store::AuditDetail::ThemeSeed {
            label: label.clone(),
            examples: examples.len(),
            theme_ids: vec![theme_id(id)],
        };
        Ok(ThemeEdit { detail, themes })
    })?;
    report_edit(
        g,
        &format!(
            "seeded {} {:?} from {} example(s)",
            theme_id(id),
            label,
            examples.len()
        ),
    );
    Ok(0)
}

fn report_edit(g: &Global, msg: &str) {
    if g.json {
        output::json(&serde_json::json!({ "ok": true, "message": msg }));
    } else {
        println!("{msg}; `verbatim themes` re-runs with it");
    }
}

fn assignments(g: &Global, root: &Path, out: Option<PathBuf>, r: &RunArgs) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let bar = super::Bar::new(g);
    let run = super::session(&mut ws, "themes assignments", &models, &settings)?
        .with_progress(&bar)
        .assignments(AssignmentsRequest {
            out: out.clone(),
            run: r.request(),
        })?;
    let mut w: Box<dyn Write> = match &out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    for (d, m) in run.docs.iter().zip(&run.members) {
        let line = serde_json::json!({
            "id": d.id,
            "theme": m.theme.map(theme_id).unwrap_or_else(|| "other".into()),
            "second": m.second.map(theme_id),
            "similarity": (m.sim as f64 * 1e4).round() / 1e4,
        });
        writeln!(w, "{line}")?;
    }
    w.flush()?;
    if let Some(p) = out {
        if !g.quiet {
            eprintln!("{} assignments written to {}", run.docs.len(), p.display());
        }
    }
    Ok(0)
}

pub(super) fn cmd_report(g: &Global, root: &Path, a: ReportArgs) -> Result<i32> {
    let format = match a.format {
        Some(f) => f,
        None => match a.out.extension().and_then(|e| e.to_str()) {
            Some("html") | Some("htm") => ReportFormat::Html,
            Some("md") | Some("markdown") => ReportFormat::Md,
            Some("json") => ReportFormat::Json,
            _ => bail!(
                "--out {}: say the format with --format html|md|json, or end the name in .html, .md or .json",
                a.out.display()
            ),
        },
    };
    let replay = a.from_manifest.as_deref().map(manifest_of).transpose()?;
    // A manifest says which view it was made on (none: the topic themes, as every report was
    // before the tree had one).
    let tree = match &replay {
        Some((_, p)) => p.by.as_deref() == Some("aspect"),
        None => a.by == By::Aspect,
    };
    if tree && a.run.k.is_some() {
        bail!("--k sets the number of topic themes: use it with --by topic (the aspect tree chooses its own sizes)");
    }
    let (run_params, asked, quotes, title, compare_to) = match &replay {
        Some((_, p)) => (
            p.run.clone(),
            p.filter.clone(),
            p.quotes,
            if p.title.is_empty() {
                a.title.clone()
            } else {
                p.title.clone()
            },
            p.compare_to.clone(),
        ),
        None => (
            a.run.params(),
            filter_from(&a.filter)?,
            a.quotes,
            a.title.clone(),
            a.compare_to.clone(),
        ),
    };
    let previous: Option<Report> = match &compare_to {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("--compare-to {}", p.display()))?;
            Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "--compare-to {}: not a report JSON written by `verbatim report --format json`",
                    p.display()
                )
            })?)
        }
        None => None,
    };
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let bar = super::Bar::new(g);
    let ReportResponse { report, parameters } =
        super::session(&mut ws, "report", &models, &settings)?
            .with_progress(&bar)
            .report(ReportRequest {
                filter: asked,
                quotes,
                title,
                compare_to: previous.as_ref().zip(compare_to),
                out: Some(a.out.clone()),
                run: RunRequest {
                    params: run_params,
                    refresh: a.run.refresh,
                },
                tree,
            })?;
    let body = match format {
        ReportFormat::Html => verbatim::themes::report::html(&report),
        ReportFormat::Md => verbatim::themes::report::markdown(&report),
        ReportFormat::Json => verbatim::themes::report::json(&report),
    };
    verbatim::fs::write_atomic(&a.out, body.as_bytes())
        .with_context(|| format!("writing {}", a.out.display()))?;
    let differs = match &replay {
        Some((m, p)) => differences(m, p, &report.manifest, &parameters),
        None => Vec::new(),
    };
    if let (Some(from), false) = (&a.from_manifest, g.quiet) {
        if differs.is_empty() {
            eprintln!(
                "re-made from the manifest of {}: same data snapshot, models, parameters and theme edits",
                from.display()
            );
        } else {
            eprintln!(
                "warning: re-made from the manifest of {}, but not a reproduction:",
                from.display()
            );
            for d in &differs {
                eprintln!("  {d}");
            }
        }
    }
    if g.json {
        output::json(&serde_json::json!({
            "out": a.out, "themes": report.themes.len(), "verbatims": report.verbatims,
            "data_snapshot": report.manifest.data_snapshot,
            "from_manifest": a.from_manifest, "differences": differs,
        }));
    } else {
        println!(
            "report written to {} ({} themes over {} verbatims)",
            a.out.display(),
            report.themes.len(),
            report.verbatims
        );
    }
    Ok(if differs.is_empty() { 0 } else { 1 })
}
