//! The session: one caller, come in by one door, working on one workspace. Both doors build
//! one per command (the CLI) or per request (the server) and call one method per operation:
//! a typed request in, a typed response out, the audit entry recorded inside the method before
//! the response is returned. The doors parse, call and render; nothing else.
//!
//! Why a value rather than free functions: what every operation needs besides its own request —
//! the workspace, who is asking, how they came in (the audit trail names the command or the
//! route, errors use the door's words), the models (loaded on first use: a large model file
//! is not read by a command that does not need it), the settings and the open indexes — is
//! given once, so each operation's signature says only what is particular to it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::{
    incident_report, resolve_filter, stats_for, IncidentReport, SearchResponse, ServiceError,
    Stats, TextCoverage, VectorCoverage,
};
use crate::access::{Action, Caller, Door, Grant};
use crate::ask::llm::Generator;
use crate::ask::{Answer, AskOptions, Fallback};
use crate::embed::Embedder;
use crate::index::Indexes;
use crate::progress::{NoProgress, Progress};
use crate::retrieve::{self, Mode, Query};
use crate::sentiment::SentimentHead;
use crate::store::{AuditDetail, AuditEntry, Filter, PrincipalRecord, StoredTheme};
use crate::themes::analytics::{
    build_report, run_fingerprint, summarize, theme_edits, ReportParameters, Summary,
    SummaryOptions,
};
use crate::themes::run::{Params, RunData};
use crate::themes::{Report, ThemeSummary};
use crate::workspace::erase;
use crate::workspace::ingest::{IngestOptions, IngestRunError, IngestSummary, Source};
use crate::workspace::privacy::{self, Revealed};
use crate::workspace::{Workspace, WorkspaceError};

/// How the caller came in, and by which command or route: the audit trail records the name,
/// and errors that tell the user what to give are worded for the door.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// A `verbatim` command (`"search"`, `"themes merge"`…).
    Cli(String),
    /// An HTTP route (`"POST /v1/search"`…).
    Http(String),
}

impl Via {
    /// A CLI command.
    pub fn cli(command: impl Into<String>) -> Via {
        Via::Cli(command.into())
    }

    /// An HTTP route.
    pub fn http(route: impl Into<String>) -> Via {
        Via::Http(route.into())
    }

    /// The command or route, as the audit trail names it.
    pub fn name(&self) -> &str {
        match self {
            Via::Cli(s) | Via::Http(s) => s,
        }
    }

    /// The door.
    pub fn door(&self) -> Door {
        match self {
            Via::Cli(_) => Door::Cli,
            Via::Http(_) => Door::Http,
        }
    }
}

/// What `ask` needs besides the embedding model and the workspace's `[ask]` section.
#[derive(Clone, Debug, Default)]
pub struct AskSettings {
    /// The generator (GGUF) file; `None` or missing: extractive answers.
    pub generator: Option<PathBuf>,
    /// Answers rest on verbatims at least this similar to the question.
    pub min_cosine: f32,
    /// Counting questions count verbatims at least this similar.
    pub count_cosine: f32,
}

/// The settings a session runs with, resolved by the door before it starts (flags > env >
/// `verbatim.toml` > defaults). The workspace's own sections (`[search]`, `[ask]`…) are read
/// from the workspace; this holds what the door resolves beyond them.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `ask` thresholds and generator.
    pub ask: AskSettings,
}

type Loader<'a, T> = Box<dyn Fn(&Workspace) -> Result<T, String> + Send + Sync + 'a>;

/// A value loaded on first use and kept, or why it could not be.
struct Lazy<'a, T> {
    cell: OnceLock<Result<T, String>>,
    load: Loader<'a, T>,
}

impl<'a, T> Lazy<'a, T> {
    fn new(load: Loader<'a, T>) -> Self {
        Lazy {
            cell: OnceLock::new(),
            load,
        }
    }

    fn get(&self, ws: &Workspace) -> Result<&T, &str> {
        self.cell
            .get_or_init(|| (self.load)(ws))
            .as_ref()
            .map_err(String::as_str)
    }
}

/// The embedding model and the model folder (whose sentiment head serves themes and reports),
/// each loaded on first use and kept for the session's life (the server's: for every request).
pub struct Models<'a> {
    dir: Lazy<'a, PathBuf>,
    embedder: Lazy<'a, Arc<dyn Embedder>>,
}

impl<'a> Models<'a> {
    /// Models the door knows how to find: `dir` names the model folder, `embedder` loads the
    /// model; each runs at most once, when an operation first needs it, and its error (said in
    /// the door's words) is the operation's.
    pub fn new(
        dir: impl Fn(&Workspace) -> Result<PathBuf, String> + Send + Sync + 'a,
        embedder: impl Fn(&Workspace) -> Result<Arc<dyn Embedder>, String> + Send + Sync + 'a,
    ) -> Models<'a> {
        Models {
            dir: Lazy::new(Box::new(dir)),
            embedder: Lazy::new(Box::new(embedder)),
        }
    }

    /// Models already loaded (the server loads the embedding model once, at start); `None`:
    /// operations that need it fail saying it did not load.
    pub fn loaded(dir: Option<PathBuf>, embedder: Option<Arc<dyn Embedder>>) -> Models<'a> {
        Models::new(
            move |_| {
                dir.clone()
                    .ok_or_else(|| "no model folder: the sentiment head cannot load".to_string())
            },
            move |_| {
                embedder
                    .clone()
                    .ok_or_else(|| "the embedding model did not load".to_string())
            },
        )
    }

    /// The embedding model, loaded now if not yet; the error says which operation needed it.
    fn embedder(&self, ws: &Workspace, what: &str) -> Result<&dyn Embedder, ServiceError> {
        self.embedder.get(ws).map(|e| e.as_ref()).map_err(|why| {
            ServiceError::Internal(format!("{what} needs the embedding model: {why}"))
        })
    }

    fn dir(&self, ws: &Workspace) -> Result<&Path, ServiceError> {
        self.dir
            .get(ws)
            .map(PathBuf::as_path)
            .map_err(|why| ServiceError::Internal(why.to_string()))
    }
}

/// The workspace's indexes: held open by the door (the server keeps them between requests),
/// or opened by the session when an operation first needs them.
enum Ix<'a> {
    Held(&'a mut Indexes),
    Owned(Option<Indexes>),
}

/// One caller, through one door, on one workspace (module docs).
pub struct Session<'a> {
    ws: &'a mut Workspace,
    caller: Caller,
    via: Via,
    models: &'a Models<'a>,
    settings: &'a Settings,
    indexes: Ix<'a>,
    audit: Option<&'a mut Workspace>,
    progress: &'a dyn Progress,
}

/// `search`.
#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    /// The query text.
    pub text: String,
    /// Text, vector or hybrid; `None`: the workspace's `[search] mode`.
    pub mode: Option<Mode>,
    /// The caller's filter (resolved against the workspace; the grant's scope applies on top).
    pub filter: Filter,
    /// How many hits; `None`: the workspace's `[search] limit`.
    pub limit: Option<usize>,
    /// The query's vector when the door already has it (the server embeds while it waits for
    /// the workspace); `None`: embedded here when the mode needs it.
    pub query_vector: Option<Vec<f32>>,
}

/// How a themes run is made (or found): the parameters and whether to recompute.
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    /// Discovery settings.
    pub params: Params,
    /// Recompute even when the store has not changed since the last run.
    pub refresh: bool,
}

/// `themes`.
#[derive(Clone, Debug, Default)]
pub struct ThemesRequest {
    /// The caller's filter.
    pub filter: Filter,
    /// Quotes per theme (callers who may read text).
    pub quotes: usize,
    /// Themes smaller than this (in the filtered set) are left out; `None`: 1 without a filter,
    /// 10 with one (a small slice of a big theme is noise).
    pub min_size: Option<usize>,
    /// The run.
    pub run: RunRequest,
}

/// What `themes` answers: the summary, and the run it was made from (the CLI shows the themes
/// that vanished since the previous run).
pub struct ThemesResponse {
    /// Themes in the caller's scope.
    pub summary: Summary,
    /// The run.
    pub run: RunData,
}

/// `themes show`.
#[derive(Clone, Debug, Default)]
pub struct ThemeRequest {
    /// The theme id (`T3`).
    pub id: String,
    /// The caller's filter.
    pub filter: Filter,
    /// Quotes to show.
    pub quotes: usize,
    /// The run.
    pub run: RunRequest,
}

/// What `themes show` answers.
pub struct ThemeResponse {
    /// The theme in the caller's scope; `None`: not active, or no verbatims in scope.
    pub theme: Option<ThemeSummary>,
    /// The run (says why a theme is not active: merged, vanished).
    pub run: RunData,
    /// Cells under this many verbatims are suppressed for the caller (0: none).
    pub min_cell: usize,
}

/// `report`.
#[derive(Clone, Debug)]
pub struct ReportRequest<'r> {
    /// The caller's filter.
    pub filter: Filter,
    /// Quotes per theme (callers who may read text).
    pub quotes: usize,
    /// Title at the top.
    pub title: String,
    /// A previous report to compare with, and its file (recorded in the manifest).
    pub compare_to: Option<(&'r Report, PathBuf)>,
    /// Where the report will be written (recorded in the audit trail, so that `forget` finds
    /// the reports that quote erased verbatims); `None`: returned only (HTTP).
    pub out: Option<PathBuf>,
    /// The run.
    pub run: RunRequest,
}

/// What `report` answers: the report and the parameters its manifest records.
#[derive(Clone, Debug)]
pub struct ReportResponse {
    /// The report data (rendered by the door).
    pub report: Report,
    /// The parameters as recorded (a replay from a manifest compares them).
    pub parameters: ReportParameters,
}

/// `ask`.
pub struct AskRequest<'g> {
    /// The question.
    pub question: String,
    /// The caller's filter.
    pub filter: Filter,
    /// Verbatims given to the model; `None`: `[ask] context_verbatims`.
    pub limit: Option<usize>,
    /// `None`: `[ask] max_tokens`.
    pub max_tokens: Option<usize>,
    /// `None`: `[ask] temperature`.
    pub temperature: Option<f64>,
    /// `None`: `[ask] seed`.
    pub seed: Option<u64>,
    /// The generator the door loaded; `None`: an extractive answer that says why
    /// (`without_generator`). Not used for aggregates-only callers.
    pub generator: Option<&'g mut Generator>,
    /// Why there is no generator.
    pub without_generator: Fallback,
}

/// `ingest`.
#[derive(Clone, Debug)]
pub struct IngestRequest<'r> {
    /// The file or the uploaded bytes.
    pub source: Source<'r>,
    /// Mapping, format, sheet…
    pub options: IngestOptions,
}

/// What `forget` erases.
#[derive(Clone, Copy, Debug)]
pub enum Forget<'r> {
    /// Every verbatim of the respondent with this identifier (as in the files).
    Respondent(&'r str),
    /// These verbatims (ids as stored).
    Verbatims(&'r [String]),
}

/// `audit show`.
#[derive(Clone, Debug, Default)]
pub struct AuditRequest {
    /// Only this caller's entries.
    pub user: Option<String>,
    /// Only entries at or after this time (`YYYY-MM-DDTHH:MM:SSZ` prefix comparison).
    pub since: Option<String>,
}

/// `themes assignments`: the run and the audit entry made; the door writes the lines.
#[derive(Clone, Debug)]
pub struct AssignmentsRequest {
    /// Where the assignments go (`None`: stdout).
    pub out: Option<PathBuf>,
    /// The run.
    pub run: RunRequest,
}

/// A theme edit (`themes merge`, `rename`, `seed`): the new theme list, and what the audit
/// trail says of it.
pub struct ThemeEdit {
    /// The edit as the audit trail records it.
    pub detail: AuditDetail,
    /// The themes after the edit (the whole list, as [`crate::store::Store::edit_themes`]
    /// writes it).
    pub themes: Vec<StoredTheme>,
}

impl<'a> Session<'a> {
    /// A session for `caller` on `ws`, come in by `via`.
    pub fn new(
        ws: &'a mut Workspace,
        caller: Caller,
        via: Via,
        models: &'a Models<'a>,
        settings: &'a Settings,
    ) -> Session<'a> {
        Session {
            ws,
            caller,
            via,
            models,
            settings,
            indexes: Ix::Owned(None),
            audit: None,
            progress: &NoProgress,
        }
    }

    /// Uses indexes the door keeps open (the server's), caught up to the store.
    pub fn with_indexes(mut self, indexes: &'a mut Indexes) -> Self {
        self.indexes = Ix::Held(indexes);
        self
    }

    /// Records `ask`'s audit entry through this second connection to the workspace (the
    /// server's token-checking one); without it, `ask` opens one.
    pub fn with_audit(mut self, audit: &'a mut Workspace) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Reports the steps of long operations (themes runs, ingests) to `progress`.
    pub fn with_progress(mut self, progress: &'a dyn Progress) -> Self {
        self.progress = progress;
        self
    }

    /// The workspace, read-only (its configuration, its root).
    pub fn workspace(&self) -> &Workspace {
        self.ws
    }

    /// How the caller came in.
    pub fn via(&self) -> &Via {
        &self.via
    }

    /// The caller's grant for `action`, or the refusal.
    fn enter(&self, action: Action) -> Result<Grant, ServiceError> {
        Ok(self.ws.enter(&self.caller, action)?)
    }

    /// Loads the embedding model now, if not yet (a door about to run several operations that
    /// need it reports a missing model once, before the first).
    pub fn load_embedder(&self, what: &str) -> Result<(), ServiceError> {
        self.models.embedder(self.ws, what).map(|_| ())
    }

    /// Whether the caller may read verbatim text for `action` (a door loads a generator only
    /// for callers who will get one; refused: the refusal).
    pub fn may_read_text(&self, action: Action) -> Result<bool, ServiceError> {
        Ok(self.enter(action)?.may_read_text())
    }

    /// Checks that the caller may do `action` (a door asks before slow work of its own, such
    /// as loading a generator or reading a large file); the operation checks again.
    pub fn check(&self, action: Action) -> Result<(), ServiceError> {
        self.enter(action).map(|_| ())
    }

    fn record(&mut self, grant: &Grant, detail: &AuditDetail) -> Result<(), ServiceError> {
        self.ws.record(grant, self.via.name(), detail)?;
        Ok(())
    }

    /// The workspace and its indexes (opened now if the door holds none).
    fn ws_indexes(&mut self) -> Result<(&mut Workspace, &mut Indexes), ServiceError> {
        let ix = match &mut self.indexes {
            Ix::Held(ix) => &mut **ix,
            Ix::Owned(slot) => {
                if slot.is_none() {
                    *slot = Some(self.ws.indexes()?.0);
                }
                slot.as_mut().expect("opened above")
            }
        };
        Ok((&mut *self.ws, ix))
    }

    /// The caller's filter resolved against the workspace within the grant for `action`
    /// ([`resolve_filter`]): a door that does slow work before the operation resolves it first,
    /// so that a typo fails at once.
    pub fn resolve_filter(&self, action: Action, filter: &Filter) -> Result<Filter, ServiceError> {
        let grant = self.enter(action)?;
        resolve_filter(self.ws, &grant, filter)
    }

    /// Workspace counts.
    pub fn stats(&mut self) -> Result<Stats, ServiceError> {
        let grant = self.enter(Action::Stats)?;
        let (ws, indexes) = self.ws_indexes()?;
        let report = Stats {
            workspace: ws.root().to_path_buf(),
            store: stats_for(&grant, ws.store.stats()?),
            text_index: TextCoverage {
                documents: indexes.text.num_docs(),
                covered_seq: indexes.text.covered(),
            },
            vector_index: VectorCoverage {
                points: indexes.vectors.points(),
                covered_seq: indexes.vectors.covered(),
            },
        };
        self.record(&grant, &AuditDetail::Stats {})?;
        Ok(report)
    }

    /// Hybrid, text or vector search; counts only for an aggregates-only caller.
    pub fn search(&mut self, req: SearchRequest) -> Result<SearchResponse, ServiceError> {
        let grant = self.enter(Action::Search)?;
        if req.text.trim().is_empty() {
            return Err(ServiceError::BadRequest("the query is empty".into()));
        }
        let q = Query {
            filter: resolve_filter(self.ws, &grant, &req.filter)?,
            mode: req.mode.unwrap_or(self.ws.config.search.mode),
            limit: req.limit.unwrap_or(self.ws.config.search.limit),
            text: req.text,
        };
        // Text search works without the model: it is loaded only when the mode needs it, and
        // when it cannot load, the error says why and how to search without it.
        let embedder = match q.mode {
            Mode::Text => None,
            mode => Some(
                self.models
                    .embedder
                    .get(self.ws)
                    .map_err(|why| {
                        let m = retrieve::RetrieveError::NoModel(mode).message_for(self.via.door());
                        ServiceError::BadRequest(format!("{m} ({why})"))
                    })?
                    .as_ref() as &dyn Embedder,
            ),
        };
        let memo = match (embedder, req.query_vector) {
            (Some(e), Some(v)) => Some(crate::embed::Memo::known(e, &q.text, v)),
            _ => None,
        };
        let embedder = match &memo {
            Some(m) => Some(m as &dyn Embedder),
            None => embedder,
        };
        let detail = |verbatim_ids: Vec<String>| AuditDetail::Search {
            query: q.text.clone(),
            mode: serde_json::to_value(q.mode)
                .ok()
                .and_then(|m| m.as_str().map(String::from))
                .unwrap_or_default(),
            limit: q.limit,
            filter: q.filter.clone(),
            scope: grant.scope().clone(),
            verbatim_ids,
        };
        let (ws, indexes) = self.ws_indexes()?;
        if grant.may_read_text() {
            let hits = retrieve::search(&grant, &ws.store, indexes, embedder, &q)?;
            let ids: Vec<String> = hits.iter().map(|h| h.verbatim.id.clone()).collect();
            self.record(&grant, &detail(ids))?;
            Ok(SearchResponse {
                query: q,
                hits: Some(hits),
                aggregate: None,
            })
        } else {
            let agg = retrieve::aggregate(&grant, &ws.store, indexes, embedder, &q)?;
            self.record(&grant, &detail(Vec::new()))?;
            Ok(SearchResponse {
                query: q,
                hits: None,
                aggregate: Some(agg),
            })
        }
    }

    /// One sealed original, logged before it is returned.
    pub fn reveal(&mut self, id: &str) -> Result<Revealed, ServiceError> {
        let grant = self.enter(Action::Reveal)?;
        let missing = || ServiceError::from(privacy::PrivacyError::NotFound(id.to_string()));
        let v = self.ws.store.get(id)?.ok_or_else(missing)?;
        if !grant.restrict(&Filter::default()).matches(&v) {
            return Err(missing());
        }
        self.record(
            &grant,
            &AuditDetail::Reveal {
                verbatim_ids: vec![id.to_string()],
                logged_at: None,
            },
        )?;
        Ok(privacy::reveal(self.ws, &grant, id)?)
    }

    /// The sentiment head of the workspace's model, and the sha256 of its file.
    fn sentiment_head(&self) -> Result<(SentimentHead, String), ServiceError> {
        let dir = self.models.dir(self.ws)?;
        let fp = self.ws.store.model_fingerprint()?.ok_or_else(|| {
            ServiceError::BadRequest(
                "the workspace has no verbatims yet: ingest a file first".into(),
            )
        })?;
        SentimentHead::load(&SentimentHead::path_for(dir), &fp).map_err(ServiceError::internal)
    }

    /// The themes run (loaded, or computed when the store changed or `refresh` asks). The
    /// model is loaded only when some verbatim still needs its sentences embedded.
    fn run_themes(&mut self, run: &RunRequest) -> Result<RunData, ServiceError> {
        let docs = self.ws.store.all_docs()?;
        let embedder = if self.ws.store.docs_without_sentences(&docs)?.is_empty() {
            None
        } else {
            let e = self.models.embedder(self.ws, "a themes run")?;
            self.ws.store.check_model(e.fingerprint())?;
            Some(e)
        };
        let _lock = self.ws.lock()?;
        crate::themes::run::ensure(
            &mut self.ws.store,
            &run.params,
            run.refresh,
            embedder,
            self.progress,
        )
        .map_err(ServiceError::internal)
    }

    /// The theme list (quotes only when the grant allows text; cells under its k suppressed).
    pub fn themes(&mut self, req: ThemesRequest) -> Result<ThemesResponse, ServiceError> {
        let grant = self.enter(Action::Themes)?;
        // Resolved before the run: a mistyped field or value fails at once.
        let filter = resolve_filter(self.ws, &grant, &req.filter)?;
        let head = self.sentiment_head()?;
        let run = self.run_themes(&req.run)?;
        let min_size = req
            .min_size
            .unwrap_or(if filter.is_empty() { 1 } else { 10 });
        let opts = SummaryOptions::for_grant(&grant, &filter, req.quotes, min_size);
        let summary = summarize(&run, &head.0, &opts);
        self.record(
            &grant,
            &AuditDetail::Themes {
                theme: None,
                filter: opts.filter.clone(),
                quotes: opts.quotes,
                min_cell: opts.min_cell,
                theme_ids: summary.themes.iter().map(|t| t.id.clone()).collect(),
                verbatim_ids: summary
                    .themes
                    .iter()
                    .flat_map(|t| t.quotes.iter().map(|q| q.id.clone()))
                    .collect(),
            },
        )?;
        Ok(ThemesResponse { summary, run })
    }

    /// One theme; `theme: None` when it is not active or has no verbatims in scope (or fewer
    /// than the grant's k). A malformed id is a [`ServiceError::BadRequest`].
    pub fn theme(&mut self, req: ThemeRequest) -> Result<ThemeResponse, ServiceError> {
        let grant = self.enter(Action::Themes)?;
        let id = crate::themes::run::parse_theme_id(&req.id)
            .map(crate::themes::run::theme_id)
            .ok_or_else(|| {
                ServiceError::BadRequest(format!("{:?} is not a theme id (T1, T2…)", req.id))
            })?;
        let filter = resolve_filter(self.ws, &grant, &req.filter)?;
        let head = self.sentiment_head()?;
        let run = self.run_themes(&req.run)?;
        let opts = SummaryOptions::for_grant(&grant, &filter, req.quotes, 0);
        let s = summarize(&run, &head.0, &opts);
        let min_cell = grant.min_cell();
        let Some(t) = s.themes.into_iter().find(|t| t.id == id) else {
            return Ok(ThemeResponse {
                theme: None,
                run,
                min_cell,
            });
        };
        self.record(
            &grant,
            &AuditDetail::Themes {
                theme: Some(t.id.clone()),
                filter: opts.filter.clone(),
                quotes: opts.quotes,
                min_cell: opts.min_cell,
                theme_ids: vec![t.id.clone()],
                verbatim_ids: t.quotes.iter().map(|q| q.id.clone()).collect(),
            },
        )?;
        Ok(ThemeResponse {
            theme: Some(t),
            run,
            min_cell,
        })
    }

    /// A report (same limits as [`Session::themes`]); the door renders it.
    pub fn report(&mut self, req: ReportRequest<'_>) -> Result<ReportResponse, ServiceError> {
        let grant = self.enter(Action::Report)?;
        // Resolved before the run (a typo fails at once), and recorded resolved.
        let filter = resolve_filter(self.ws, &grant, &req.filter)?;
        let head = self.sentiment_head()?;
        let model = self.ws.store.model_fingerprint()?.unwrap_or_default();
        let run = self.run_themes(&req.run)?;
        let parameters = ReportParameters {
            run: req.run.params.clone(),
            filter: grant.restrict(&filter),
            quotes: if grant.may_read_text() { req.quotes } else { 0 },
            min_cell: grant.min_cell(),
            title: req.title.clone(),
            compare_to: req.compare_to.as_ref().map(|(_, p)| p.clone()),
            theme_edits: theme_edits(&run.themes),
            theme_run: run_fingerprint(&run),
            route: match &self.via {
                Via::Http(route) => Some(route.clone()),
                Via::Cli(_) => None,
            },
        };
        let opts = SummaryOptions::for_grant(&grant, &filter, req.quotes, 1);
        let mut report = build_report(
            &run,
            &opts,
            crate::themes::analytics::ReportInputs {
                title: req.title,
                model,
                head: (&head.0, head.1.clone()),
                parameters: serde_json::to_value(&parameters).map_err(ServiceError::internal)?,
                compare_to: req.compare_to.map(|(r, _)| r),
            },
        );
        // Scores read through a score map mean what the map says: the manifest records it.
        report.manifest.score_map = self
            .ws
            .config
            .mapping
            .as_ref()
            .and_then(|m| m.score_map.clone());
        // `out` (absolute) lets `forget` find the reports that quote erased verbatims; it is
        // not in the report itself, whose bytes depend on the data and settings only.
        let out = req.out.map(|p| std::path::absolute(&p).unwrap_or(p));
        let detail = AuditDetail::Report {
            filter: opts.filter.clone(),
            quotes: opts.quotes,
            min_cell: opts.min_cell,
            parameters: serde_json::to_value(&parameters).map_err(ServiceError::internal)?,
            out,
            theme_ids: report.themes.iter().map(|t| t.id.clone()).collect(),
            verbatim_ids: report
                .themes
                .iter()
                .flat_map(|t| t.quotes.iter().map(|q| q.id.clone()))
                .collect(),
        };
        self.record(&grant, &detail)?;
        Ok(ReportResponse { report, parameters })
    }

    /// Every verbatim's theme assignment: the run, after the audit entry (the ids are not
    /// listed: one per verbatim). The door writes the lines.
    pub fn assignments(&mut self, req: AssignmentsRequest) -> Result<RunData, ServiceError> {
        let grant = self.enter(Action::Assignments)?;
        let run = self.run_themes(&req.run)?;
        self.record(
            &grant,
            &AuditDetail::Assignments {
                out: req.out,
                verbatims: run.docs.len(),
            },
        )?;
        Ok(run)
    }

    /// The current themes (every state), for a door preparing an edit.
    pub fn stored_themes(&self) -> Result<Vec<StoredTheme>, ServiceError> {
        self.enter(Action::EditThemes)?;
        Ok(self.ws.store.themes()?)
    }

    /// Embeds seed examples for `themes seed` (the model is loaded now).
    pub fn embed_examples(&self, examples: &[&str]) -> Result<Vec<Vec<f32>>, ServiceError> {
        self.enter(Action::EditThemes)?;
        let e = self.models.embedder(self.ws, "themes seed")?;
        self.ws.store.check_model(e.fingerprint())?;
        e.embed(examples, crate::embed::TextKind::Passage)
            .map_err(ServiceError::internal)
    }

    /// A theme edit (merge, rename, seed): `edit` turns the current theme list into the new
    /// one and says what the audit trail records; written and recorded together.
    pub fn edit_themes(
        &mut self,
        edit: impl FnOnce(Vec<StoredTheme>) -> Result<ThemeEdit, ServiceError>,
    ) -> Result<AuditDetail, ServiceError> {
        let grant = self.enter(Action::EditThemes)?;
        let _lock = self.ws.lock()?;
        let ThemeEdit { detail, themes } = edit(self.ws.store.themes()?)?;
        self.ws.store.edit_themes(|t| *t = themes)?;
        self.record(&grant, &detail)?;
        Ok(detail)
    }

    /// Answers a question from the verbatims, citing them; the audit entry (the question, the
    /// filter, the verbatims the answer rests on) is durable before the first sentence reaches
    /// `on_sentence`.
    pub fn ask(
        &mut self,
        req: AskRequest<'_>,
        on_sentence: &mut dyn FnMut(&str),
    ) -> Result<Answer, ServiceError> {
        let grant = self.enter(Action::Ask)?;
        if req.question.trim().is_empty() {
            return Err(ServiceError::BadRequest("the question is empty".into()));
        }
        let cfg = self.ws.config.ask.clone();
        let opts = AskOptions {
            filter: resolve_filter(self.ws, &grant, &req.filter)?,
            limit: req.limit.unwrap_or(cfg.context_verbatims),
            context_tokens: cfg.context_tokens,
            gen: crate::ask::llm::GenOptions {
                max_tokens: req.max_tokens.unwrap_or(cfg.max_tokens),
                temperature: req.temperature.unwrap_or(cfg.temperature),
                seed: req.seed.unwrap_or(cfg.seed),
                ..Default::default()
            },
            min_cosine: self.settings.ask.min_cosine,
            count_cosine: self.settings.ask.count_cosine,
            without_generator: req.without_generator,
        };
        let embedder = self.models.embedder(self.ws, "ask")?;
        self.ws.store.check_model(embedder.fingerprint())?;
        // Aggregates-only callers get counts: no model reads verbatims for them.
        let generator = if grant.may_read_text() {
            req.generator
        } else {
            None
        };
        let via = self.via.name().to_string();
        let mut opened;
        let audit: &mut Workspace = match self.audit.as_deref_mut() {
            Some(a) => a,
            // A second connection for the audit trail: `ask` reads through the first meanwhile.
            None => {
                opened = Workspace::open(self.ws.root())?;
                &mut opened
            }
        };
        let ix = match &mut self.indexes {
            Ix::Held(ix) => &mut **ix,
            Ix::Owned(slot) => {
                if slot.is_none() {
                    *slot = Some(self.ws.indexes()?.0);
                }
                slot.as_mut().expect("opened above")
            }
        };
        let ws: &Workspace = self.ws;
        crate::ask::ask(
            &ws.store,
            ix,
            &grant,
            embedder,
            generator,
            &req.question,
            &opts,
            &mut |sources| {
                let detail = AuditDetail::Ask {
                    question: req.question.clone(),
                    filter: opts.filter.clone(),
                    scope: grant.scope().clone(),
                    verbatim_ids: sources.iter().map(|s| s.id.clone()).collect(),
                };
                audit
                    .record(&grant, &via, &detail)
                    .map(|_| ())
                    .map_err(|e| format!("audit trail: {e}"))
            },
            on_sentence,
        )
        .map_err(ServiceError::internal)
    }

    /// Ingests a file or uploaded bytes, catching the indexes up (in place when the door holds
    /// them); recorded with its counts. Errors that tell the user what to give say it in the
    /// door's words ([`IngestRunError::message_for`]).
    pub fn ingest(&mut self, req: IngestRequest<'_>) -> Result<IngestSummary, ServiceError> {
        let grant = self.enter(Action::Write)?;
        let door = self.via.door();
        let embedder = self.models.embedder(self.ws, "ingest")?;
        let held = match &mut self.indexes {
            Ix::Held(ix) => Some(&mut **ix),
            Ix::Owned(slot) => slot.as_mut(),
        };
        let progress = self.progress;
        let summary = crate::workspace::ingest::ingest_source_into(
            self.ws,
            held,
            embedder,
            req.source,
            &req.options,
            progress,
        )
        .map_err(|e| {
            let m = e.message_for(door);
            match e {
                IngestRunError::Read(_) | IngestRunError::NoMapping { .. } => {
                    ServiceError::BadRequest(m)
                }
                IngestRunError::Workspace(WorkspaceError::Locked { .. }) => {
                    ServiceError::Conflict(m)
                }
                _ => ServiceError::Internal(m),
            }
        })?;
        let file = match req.source {
            Source::File(p) => p.display().to_string(),
            Source::Bytes { name, .. } => name.to_string(),
        };
        self.record(
            &grant,
            &AuditDetail::Ingest {
                file,
                rows: summary.rows,
                stored: summary.stored,
                updated: summary.updated,
                unchanged: summary.unchanged,
                rejected: summary.rejected,
            },
        )?;
        Ok(summary)
    }

    /// Rebuilds the indexes from the store; with `embedder`, re-embeds the verbatims whose
    /// vectors are not its own, and with `switch_to` (the model's name as given, and its
    /// settings) makes it the workspace's model once the store holds the new vectors.
    pub fn reindex(
        &mut self,
        embedder: Option<&dyn Embedder>,
        switch_to: Option<(String, crate::workspace::ModelConfig)>,
    ) -> Result<crate::workspace::ReindexReport, ServiceError> {
        let grant = self.enter(Action::Write)?;
        let r = self
            .ws
            .reindex(embedder, self.progress)
            .map_err(|e| ServiceError::Internal(e.message_for(self.via.door())))?;
        let model = switch_to.map(|(name, config)| {
            self.ws.config.model = config;
            name
        });
        if model.is_some() {
            // Only after the store holds the new vectors (reindex commits first).
            self.ws.save_config()?;
        }
        self.record(
            &grant,
            &AuditDetail::Reindex {
                model,
                reembedded: r.reembedded,
                text: r.text,
                vectors: r.vectors,
            },
        )?;
        Ok(r)
    }

    /// Survey links: a token per respondent of `file` (its `id_column`), recorded with counts.
    pub fn make_links(
        &mut self,
        file: &Path,
        format: Option<crate::ingest::Format>,
        id_column: &str,
        base_url: &str,
    ) -> Result<privacy::LinksMade, ServiceError> {
        let grant = self.enter(Action::Write)?;
        let made = privacy::make_links(self.ws, file, format, id_column, base_url)?;
        self.record(
            &grant,
            &AuditDetail::LinksMake {
                file: file.display().to_string(),
                links: made.links.len(),
                errors: made.errors.len(),
            },
        )?;
        Ok(made)
    }

    /// Erases a respondent's verbatims (by their identifier, pseudonymised here and never
    /// stored) or verbatims by id, everywhere they are held; the receipt says what went.
    pub fn forget(&mut self, what: Forget<'_>) -> Result<erase::Receipt, ServiceError> {
        let grant = self.enter(Action::Erase)?;
        match what {
            Forget::Respondent(who) => erase::forget_respondent(self.ws, &grant, who),
            Forget::Verbatims(ids) => erase::erase_verbatims(self.ws, &grant, ids),
        }
        .map_err(|e| ServiceError::internal_chain(&e))
    }

    /// Everything held about one respondent (a subject access request), recorded.
    pub fn export_respondent(
        &mut self,
        identifier: &str,
    ) -> Result<erase::SubjectExport, ServiceError> {
        let grant = self.enter(Action::Export)?;
        erase::export_respondent(self.ws, &grant, identifier)
            .map_err(|e| ServiceError::internal_chain(&e))
    }

    /// Applies the workspace's retention period now (`dry_run`: counts only).
    pub fn retention(&mut self, dry_run: bool) -> Result<erase::Receipt, ServiceError> {
        self.enter(Action::Erase)?;
        let now = chrono::Utc::now();
        if dry_run {
            erase::preview_retention(self.ws, now)
        } else {
            erase::apply_retention(self.ws, now)
        }
        .map_err(|e| ServiceError::internal_chain(&e))
    }

    /// Adds a user or grant (`kind`), made by this session's caller; its token is in the
    /// answer, shown once.
    pub fn add_principal(
        &mut self,
        principal: crate::access::Principal,
        kind: &str,
    ) -> Result<crate::workspace::users::NewPrincipal, ServiceError> {
        let grant = self.enter(Action::Users)?;
        let made = self
            .ws
            .add_principal(principal, kind, &self.caller)
            .map_err(|e| ServiceError::internal_chain(&e))?;
        self.record(
            &grant,
            &AuditDetail::PrincipalAdd {
                name: made.record.principal.name.clone(),
                role: made.record.principal.role.as_str().to_string(),
                scope: made.record.principal.scope.clone(),
                expires: made.record.principal.expires,
            },
        )?;
        Ok(made)
    }

    /// Revokes a user or grant; when it was revoked.
    pub fn revoke_principal(&mut self, name: &str) -> Result<String, ServiceError> {
        let grant = self.enter(Action::Users)?;
        let at = self
            .ws
            .revoke_principal(name)
            .map_err(|e| ServiceError::internal_chain(&e))?;
        self.record(
            &grant,
            &AuditDetail::PrincipalRevoke {
                name: name.to_string(),
            },
        )?;
        Ok(at)
    }

    /// An encrypted backup of the whole workspace to `out`; who made it, and where it went, is
    /// in the trail (a backup is a copy of everything).
    pub fn backup(
        &mut self,
        out: &Path,
        key: &crate::backup::KeySource,
        options: &crate::backup::BackupOptions,
    ) -> Result<crate::backup::BackupSummary, ServiceError> {
        let grant = self.enter(Action::Backup)?;
        let s = crate::backup::backup(self.ws.root(), out, key, options)
            .map_err(|e| ServiceError::internal_chain(&e))?;
        self.record(
            &grant,
            &AuditDetail::Backup {
                out: std::path::absolute(&s.out).unwrap_or_else(|_| s.out.clone()),
                files: s.files as u64,
                bytes: s.bytes,
                verbatims: s.verbatims as u64,
            },
        )?;
        Ok(s)
    }

    /// Records a write the door made under this session's caller (reindex, links make, users
    /// and grants, backups…): the caller must be allowed the write's action.
    pub fn record_write(&mut self, detail: &AuditDetail) -> Result<(), ServiceError> {
        let wanted = super::write_action(detail)?;
        let grant = self.enter(wanted)?;
        self.record(&grant, detail)
    }

    /// The pseudonym of a respondent identifier and their verbatims. The identifier itself is
    /// personal data: the trail keeps its pseudonym.
    pub fn lookup_respondent(
        &mut self,
        identifier: &str,
    ) -> Result<privacy::Respondent, ServiceError> {
        let grant = self.enter(Action::Lookup)?;
        let r = privacy::lookup_respondent(self.ws, identifier)?;
        self.record(
            &grant,
            &AuditDetail::RespondentLookup {
                pseudonym: r.pseudonym.clone(),
                verbatim_ids: r.verbatims.clone(),
            },
        )?;
        Ok(r)
    }

    /// Users and grants.
    pub fn principals(&mut self) -> Result<Vec<PrincipalRecord>, ServiceError> {
        let grant = self.enter(Action::Users)?;
        let all = self.ws.store.principals()?;
        self.record(&grant, &AuditDetail::PrincipalList {})?;
        Ok(all)
    }

    /// Audit entries (oldest first). Reading the trail is itself recorded.
    pub fn audit_entries(&mut self, req: AuditRequest) -> Result<Vec<AuditEntry>, ServiceError> {
        let grant = self.enter(Action::Audit)?;
        let entries: Vec<AuditEntry> = self
            .ws
            .store
            .audit_entries()?
            .into_iter()
            .filter(|e| req.user.as_ref().is_none_or(|u| &e.caller == u))
            .filter(|e| {
                req.since
                    .as_ref()
                    .is_none_or(|s| e.at.as_str() >= s.as_str())
            })
            .collect();
        self.record(
            &grant,
            &AuditDetail::AuditRead {
                user: req.user,
                since: req.since,
            },
        )?;
        Ok(entries)
    }

    /// What one user retrieved since a time ([`IncidentReport`]).
    pub fn incident_report(
        &mut self,
        user: &str,
        since: Option<&str>,
    ) -> Result<IncidentReport, ServiceError> {
        let grant = self.enter(Action::Audit)?;
        let report = incident_report(self.ws, user, since)?;
        self.record(
            &grant,
            &AuditDetail::Incident {
                incident_user: user.to_string(),
                since: since.map(str::to_string),
            },
        )?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::HashEmbedder;
    use crate::ingest::Mapping;

    const CSV: &[u8] = b"id,comment\nA1,The parcel arrived two weeks late\nA2,\nA3,Great support and a quick refund\n";

    fn upload(name: &str, mapping: Option<Mapping>) -> IngestRequest<'_> {
        IngestRequest {
            source: Source::Bytes { name, bytes: CSV },
            options: IngestOptions {
                mapping,
                format: Some(crate::ingest::Format::Csv),
                sheet: None,
                keep_originals: None,
                multiline_fields: false,
            },
        }
    }

    fn mapping() -> Mapping {
        Mapping {
            text: vec!["comment".into()],
            id: Some("id".into()),
            ..Mapping::default()
        }
    }

    fn models() -> Models<'static> {
        Models::loaded(None, Some(Arc::new(HashEmbedder::new())))
    }

    #[test]
    fn an_upload_is_ingested_from_memory_named_in_row_errors_and_recorded_by_route() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = Workspace::init(dir.path()).unwrap();
        let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        let (models, settings) = (models(), Settings::default());
        let via = Via::http("POST /v1/ingest");
        let s = Session::new(&mut ws, Caller::Owner, via, &models, &settings)
            .ingest(upload("march.csv", Some(mapping())))
            .unwrap();
        assert_eq!((s.stored, s.rejected), (2, 1));
        assert!(s.errors[0].starts_with("march.csv:3:"), "{:?}", s.errors);
        // Nothing was written beside the store and the indexes (no temporary copy).
        let after: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(after.len() <= before.len() + 1, "{after:?}");
        assert!(!after.iter().any(|f| f.contains("upload")), "{after:?}");
        let last = ws.store.audit_entries().unwrap().pop().unwrap();
        assert_eq!(
            (last.caller.as_str(), last.action.as_str()),
            ("owner", "POST /v1/ingest")
        );
        match last.typed() {
            Some(AuditDetail::Ingest { file, stored, .. }) => {
                assert_eq!((file.as_str(), *stored), ("march.csv", 2))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_mapping_is_said_in_the_words_of_the_door() {
        let dir = tempfile::tempdir().unwrap();
        // No `text`-like column, so no mapping can be guessed.
        let mut ws = Workspace::init(dir.path()).unwrap();
        let (models, settings) = (models(), Settings::default());
        let req = || IngestRequest {
            source: Source::Bytes {
                name: "up.csv",
                bytes: b"a,b\n1,2\n",
            },
            ..upload("up.csv", None)
        };
        let http = Session::new(
            &mut ws,
            Caller::Owner,
            Via::http("POST /v1/ingest"),
            &models,
            &settings,
        )
        .ingest(req())
        .unwrap_err();
        let cli = Session::new(
            &mut ws,
            Caller::Owner,
            Via::cli("ingest"),
            &models,
            &settings,
        )
        .ingest(req())
        .unwrap_err();
        assert_eq!(http.kind(), super::super::ErrorKind::BadRequest);
        let (http, cli) = (http.to_string(), cli.to_string());
        assert!(
            http.starts_with("up.csv: no column mapping: give text=COLUMN"),
            "{http}"
        );
        assert!(!http.contains("--"), "{http}");
        assert!(cli.contains("pass --text COLUMN"), "{cli}");
        assert!(cli.ends_with("columns in this file: a, b"), "{cli}");
    }

    #[test]
    fn a_vector_search_without_the_model_names_the_doors_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = Workspace::init(dir.path()).unwrap();
        let (with, settings) = (models(), Settings::default());
        Session::new(&mut ws, Caller::Owner, Via::cli("ingest"), &with, &settings)
            .ingest(upload("m.csv", Some(mapping())))
            .unwrap();
        let without = Models::loaded(None, None);
        let req = || SearchRequest {
            text: "parcel".into(),
            mode: Some(Mode::Vector),
            ..SearchRequest::default()
        };
        let http = Session::new(
            &mut ws,
            Caller::Owner,
            Via::http("POST /v1/search"),
            &without,
            &settings,
        )
        .search(req())
        .unwrap_err()
        .to_string();
        let cli = Session::new(
            &mut ws,
            Caller::Owner,
            Via::cli("search"),
            &without,
            &settings,
        )
        .search(req())
        .unwrap_err()
        .to_string();
        assert!(http.contains("use \"mode\": \"text\""), "{http}");
        assert!(!http.contains("--mode"), "{http}");
        assert!(cli.contains("use --mode text"), "{cli}");
        // Text search needs no model, and is recorded under the route.
        let r = Session::new(
            &mut ws,
            Caller::Owner,
            Via::http("POST /v1/search"),
            &without,
            &settings,
        )
        .search(SearchRequest {
            text: "parcel".into(),
            mode: Some(Mode::Text),
            ..SearchRequest::default()
        })
        .unwrap();
        assert_eq!(r.hits.unwrap()[0].verbatim.id, "A1");
        let last = ws.store.audit_entries().unwrap().pop().unwrap();
        assert_eq!(last.action, "POST /v1/search");
        assert_eq!(last.ids, vec!["A1".to_string()]);
    }

    #[test]
    fn writes_made_through_the_session_are_recorded_and_refused_without_the_role() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = Workspace::init(dir.path()).unwrap();
        let (models, settings) = (models(), Settings::default());
        let mut s = Session::new(
            &mut ws,
            Caller::Owner,
            Via::cli("reindex"),
            &models,
            &settings,
        );
        let r = s.reindex(None, None).unwrap();
        assert_eq!(r.text, 0);
        let last = ws.store.audit_entries().unwrap().pop().unwrap();
        assert_eq!(last.action, "reindex");
        assert!(
            matches!(last.typed(), Some(AuditDetail::Reindex { .. })),
            "{last:?}"
        );
        // An analyst may search but not write: refused before anything is done, nothing recorded.
        let analyst = ws
            .add_principal(
                crate::access::Principal {
                    name: "ana".into(),
                    role: crate::access::Role::Analyst,
                    scope: Filter::default(),
                    expires: None,
                },
                "user",
                &Caller::Owner,
            )
            .unwrap();
        let caller = ws.authenticate(&analyst.token).unwrap();
        let n = ws.store.audit_entries().unwrap().len();
        let e = Session::new(&mut ws, caller, Via::cli("ingest"), &models, &settings)
            .ingest(upload("m.csv", Some(mapping())))
            .unwrap_err();
        assert_eq!(e.kind(), super::super::ErrorKind::Denied, "{e}");
        assert_eq!(ws.store.audit_entries().unwrap().len(), n);
        assert_eq!(ws.store.count(&Filter::default()).unwrap(), 0);
    }
}
