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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::{resolve_filter, ServiceError};
use crate::access::{Action, Caller, Door, Grant};
use crate::ask::llm::Generator;
use crate::ask::Fallback;
use crate::embed::Embedder;
use crate::index::Indexes;
use crate::progress::{NoProgress, Progress};
use crate::retrieve::Mode;
use crate::sentiment::SentimentHead;
use crate::store::{AuditDetail, Filter, StoredTheme};
use crate::themes::analytics::{ReportParameters, Summary};
use crate::themes::run::{Params, RunData};
use crate::themes::{Report, ThemeSummary};
use crate::workspace::ingest::{IngestOptions, Source};
use crate::workspace::Workspace;

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

/// Search defaults of a session: the resolved `search.mode` and `search.limit`
/// ([`Settings::search`]), so that both doors answer a bare query alike.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchDefaults {
    /// Mode of a request without `mode`.
    pub mode: crate::retrieve::Mode,
    /// Hits of a request without `limit`.
    pub limit: usize,
}

/// What a session runs with: the resolved settings ([`crate::settings::Settings`], flags > env >
/// `verbatim.toml` > defaults, resolved once by the door — the server keeps them for its life)
/// and what follows from them and the model for `ask`, so that both doors and every operation
/// read one source.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Every setting, as resolved.
    pub resolved: crate::settings::Settings,
    /// `ask` thresholds and generator.
    pub ask: AskSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_resolved(
            &crate::settings::Settings::defaults(),
            AskSettings::default(),
        )
    }
}

impl Settings {
    /// The session's settings; `ask` holds what the door derives from them (the generator
    /// file, the model's calibrated thresholds).
    pub fn from_resolved(resolved: &crate::settings::Settings, ask: AskSettings) -> Settings {
        Settings {
            resolved: resolved.clone(),
            ask,
        }
    }

    /// The resolved settings with `ask` derived from them: the generator file they name and
    /// the calibrated thresholds of the embedding model in `model_dir` (its profile).
    pub fn with_model(resolved: &crate::settings::Settings, model_dir: Option<&Path>) -> Settings {
        let (min_cosine, count_cosine) = crate::settings::Settings::ask_thresholds(model_dir).value;
        let ask = AskSettings {
            generator: resolved.generator_file(),
            min_cosine,
            count_cosine,
        };
        Settings::from_resolved(resolved, ask)
    }

    /// Mode and limit of a search that names none.
    pub fn search(&self) -> SearchDefaults {
        SearchDefaults {
            mode: self.resolved.search.mode.value,
            limit: self.resolved.search.limit.value,
        }
    }
}

type Loader<'a, T> = Box<dyn Fn(&Workspace) -> Result<T, String> + Send + Sync + 'a>;

/// A value loaded on first use and kept, or why it could not be.
pub(super) struct Lazy<'a, T> {
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

    pub(super) fn get(&self, ws: &Workspace) -> Result<&T, &str> {
        self.cell
            .get_or_init(|| (self.load)(ws))
            .as_ref()
            .map_err(String::as_str)
    }
}

/// The embedding model, the model folder and its sentiment head (for themes, reports and
/// searches), each loaded on first use and kept for the models' life: a command's, or the
/// server's, whose requests all share one.
pub struct Models<'a> {
    dir: Lazy<'a, PathBuf>,
    pub(super) embedder: Lazy<'a, Arc<dyn Embedder>>,
    head: Mutex<Option<LoadedHead>>,
    head_loads: AtomicUsize,
}

/// A sentiment head as loaded: checked against the fingerprint of the workspace's vectors.
#[derive(Clone)]
struct LoadedHead {
    fingerprint: String,
    head: Arc<SentimentHead>,
    sha256: String,
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
            head: Mutex::new(None),
            head_loads: AtomicUsize::new(0),
        }
    }

    /// The sentiment head of the model whose vectors the workspace holds, and the sha256 of its
    /// file: read from the model folder the first time, then kept. It is read again only when
    /// the workspace's model changed since (`reindex --model`); a failure is not kept, so a
    /// workspace that had no verbatims yet gets its head after the first ingest.
    pub(super) fn sentiment_head(
        &self,
        ws: &Workspace,
    ) -> Result<(Arc<SentimentHead>, String), ServiceError> {
        let fingerprint = ws.store.model_fingerprint()?.ok_or_else(|| {
            ServiceError::BadRequest(
                "the workspace has no verbatims yet: ingest a file first".into(),
            )
        })?;
        let mut slot = self.head.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = slot.as_ref().filter(|h| h.fingerprint == fingerprint) {
            return Ok((h.head.clone(), h.sha256.clone()));
        }
        let dir = self.dir(ws)?;
        let (head, sha256) = SentimentHead::load(&SentimentHead::path_for(dir), &fingerprint)
            .map_err(ServiceError::internal)?;
        self.head_loads.fetch_add(1, Ordering::Relaxed);
        let loaded = LoadedHead {
            fingerprint,
            head: Arc::new(head),
            sha256,
        };
        let out = (loaded.head.clone(), loaded.sha256.clone());
        *slot = Some(loaded);
        Ok(out)
    }

    /// How many times the sentiment head was read from disk (the server's tests: once for
    /// many requests).
    pub fn sentiment_head_loads(&self) -> usize {
        self.head_loads.load(Ordering::Relaxed)
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
    pub(super) fn embedder(
        &self,
        ws: &Workspace,
        what: &str,
    ) -> Result<&dyn Embedder, ServiceError> {
        self.embedder.get(ws).map(|e| e.as_ref()).map_err(|why| {
            ServiceError::Internal(format!("{what} needs the embedding model: {why}"))
        })
    }

    pub(super) fn dir(&self, ws: &Workspace) -> Result<&Path, ServiceError> {
        self.dir
            .get(ws)
            .map(PathBuf::as_path)
            .map_err(|why| ServiceError::Internal(why.to_string()))
    }
}

/// The workspace's indexes: held open by the door (the server keeps them between requests),
/// or opened by the session when an operation first needs them.
pub(super) enum Ix<'a> {
    Held(&'a mut Indexes),
    /// Held by the door and shared with other readers at once (the server's read lock): for
    /// reads only.
    Shared(&'a Indexes),
    /// Not held during the operation: an ingest calls this once its chunks are stored (the
    /// server's shared indexes, locked only for that step). Not for reads.
    CatchUp(&'a CatchUp<'a>),
    Owned(Option<Indexes>),
}

/// How a door brings the indexes it keeps up to the store after an ingest
/// ([`Session::with_catch_up`]).
pub type CatchUp<'a> =
    dyn Fn(&Workspace) -> Result<crate::index::SyncReport, crate::workspace::WorkspaceError> + 'a;

/// A session given only a catch-up ([`Session::with_catch_up`]) asked to read.
pub(super) fn not_for_reads() -> ServiceError {
    ServiceError::Internal("a session given an index catch-up cannot read the indexes".into())
}

/// One caller, through one door, on one workspace (module docs).
pub struct Session<'a> {
    pub(super) ws: &'a mut Workspace,
    pub(super) caller: Caller,
    pub(super) via: Via,
    pub(super) models: &'a Models<'a>,
    pub(super) settings: &'a Settings,
    pub(super) indexes: Ix<'a>,
    pub(super) audit: Option<&'a Mutex<Workspace>>,
    pub(super) progress: &'a dyn Progress,
    /// The other workspaces served with this one as one corpus ([`Session::with_shards`]).
    pub(super) shards: &'a [ShardView<'a>],
}

/// Another workspace served with the session's own as one corpus (`verbatim serve --workspace
/// A --workspace B`): a connection to it and its indexes, caught up. The session's workspace
/// is the *door*: it holds the users and the audit trail; the others only answer reads.
pub struct ShardView<'a> {
    /// The shard's place among the served workspaces (the door is 0).
    pub id: usize,
    /// A connection to it.
    pub ws: &'a Workspace,
    /// Its indexes.
    pub indexes: &'a Indexes,
}

/// `search`.
#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    /// The query text.
    pub text: String,
    /// Text, vector or hybrid; `None`: the settings' `search.mode`.
    pub mode: Option<Mode>,
    /// The caller's filter (resolved against the workspace; the grant's scope applies on top).
    pub filter: Filter,
    /// How many hits; `None`: the settings' `search.limit`.
    pub limit: Option<usize>,
    /// The query's vector when the door already has it (the server embeds while it waits for
    /// the workspace); `None`: embedded here when the mode needs it.
    pub query_vector: Option<Vec<f32>>,
    /// Only verbatims of this sentiment (needs the sentiment head; without this, the head is
    /// used when it loads, for polarity-aware ranking, and skipped when it does not).
    pub sentiment: Option<crate::themes::Polarity>,
    /// Show every copy of a text as its own hit; `false` (the default): copies fold into the
    /// best-ranked one ([`crate::retrieve::fold_copies`]).
    pub keep_copies: bool,
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
    /// True: the report on the aspect tree (the default view); false: on the topic themes
    /// (`--by topic`).
    pub tree: bool,
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
    /// Verbatims given to the model; `None`: the resolved `ask.context_verbatims`.
    pub limit: Option<usize>,
    /// `None`: the resolved `ask.max_tokens`.
    pub max_tokens: Option<usize>,
    /// `None`: the resolved `ask.temperature`.
    pub temperature: Option<f64>,
    /// `None`: the resolved `ask.seed`.
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
            shards: &[],
        }
    }

    /// Uses indexes the door keeps open (the server's), caught up to the store.
    pub fn with_indexes(mut self, indexes: &'a mut Indexes) -> Self {
        self.indexes = Ix::Held(indexes);
        self
    }

    /// Reads through indexes the door keeps open and shares with other sessions at the same
    /// time (the server's, under its read lock), caught up to the store. Only for reads: an
    /// operation that changes verbatims needs [`Session::with_indexes`].
    pub fn with_shared_indexes(mut self, indexes: &'a Indexes) -> Self {
        self.indexes = Ix::Shared(indexes);
        self
    }

    /// Ingests without holding indexes while the upload is read and embedded, then calls
    /// `catch_up` to bring the door's indexes up to the store (the server: searches go on
    /// meanwhile). Not for reads.
    pub fn with_catch_up(mut self, catch_up: &'a CatchUp<'a>) -> Self {
        self.indexes = Ix::CatchUp(catch_up);
        self
    }

    /// Records the audit entries through this connection to the workspace (the server's
    /// audit connection, locked for each append only), not the session's own: readers work on
    /// a pool of connections and the trail is appended by one. Without it, entries go through
    /// the session's connection, and `ask` opens a second one.
    pub fn with_audit(mut self, audit: &'a Mutex<Workspace>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Answers reads over this workspace and `shards` as one corpus: `search` fans out to
    /// every shard and merges exactly, `stats` sums; the audit entry is still one, in this
    /// workspace's trail. Operations that cannot fan out refuse rather than answer from
    /// this workspace alone ([`super::single_workspace`]).
    pub fn with_shards(mut self, shards: &'a [ShardView<'a>]) -> Self {
        self.shards = shards;
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
    pub(super) fn enter(&self, action: Action) -> Result<Grant, ServiceError> {
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

    pub(super) fn record(
        &mut self,
        grant: &Grant,
        detail: &AuditDetail,
    ) -> Result<(), ServiceError> {
        match self.audit {
            Some(audit) => audit
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .record(grant, self.via.name(), detail)?,
            None => self.ws.record(grant, self.via.name(), detail)?,
        };
        Ok(())
    }

    /// The workspace and its indexes (opened now if the door holds none).
    pub(super) fn ws_indexes(&mut self) -> Result<(&mut Workspace, &Indexes), ServiceError> {
        let ix = match &mut self.indexes {
            Ix::Held(ix) => &**ix,
            Ix::Shared(ix) => *ix,
            Ix::CatchUp(_) => return Err(not_for_reads()),
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
}
