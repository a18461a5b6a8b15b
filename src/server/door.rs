//! The server's only calls into the library: a [`Session`] per request (the caller the token
//! belongs to, `Via::Http(route)` so the audit trail names the route, the server's models and
//! settings, the indexes it keeps open), one session method per route, and retention. The
//! server decides nothing about access and repeats none of the CLI's work: the session gives
//! the grant or the refusal, does the operation and records it; this file maps the outcome to
//! HTTP. Each route's success body is a typed value (a service response, or one of the few
//! HTTP shapes below) whose `ToSchema` derive is its schema in `/openapi.json`.

use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::routes::{AskBody, ReportBody, SearchBody, Upload};
use super::Shared;
use crate::access::{Action, Caller};
use crate::ask::Answer;
use crate::service::{
    self, AskRequest, AuditRequest, ErrorKind, IngestRequest, NodeResponse, ReportRequest,
    SearchRequest, SearchResponse, ServiceError, Session, ShardView, Stats, ThemeRequest,
    ThemesRequest, Via,
};
use crate::store::AuditEntry;
use crate::themes::aspect::TreeSummary;
use crate::themes::priority::Priority;
use crate::themes::{Report, ThemeSummary};
use crate::workspace::ingest::IngestSummary;
use crate::workspace::privacy::Revealed;
use crate::workspace::Workspace;

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let m = e.to_string();
        match e.kind() {
            ErrorKind::Unauthenticated => ApiError::unauthenticated(m),
            ErrorKind::Denied => ApiError::forbidden(m),
            ErrorKind::BadRequest => ApiError::bad_request(m),
            ErrorKind::NotFound => ApiError::not_found(m),
            ErrorKind::Conflict => ApiError::conflict(m),
            ErrorKind::Internal => ApiError::internal(m),
        }
    }
}

/// `GET /v1/health`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    pub status: &'static str,
    /// The server's version.
    pub version: &'static str,
}

/// `GET /v1/themes`: the aspect tree (the default), or the topic themes (`by=topic`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum ThemesOut {
    /// `by=aspect`.
    Tree(TreeSummary),
    /// `by=topic`.
    Topics(TopicList),
}

/// The topic themes in the caller's scope.
#[derive(Serialize, ToSchema)]
pub(crate) struct TopicList {
    /// Verbatims seen through the filter.
    pub verbatims: usize,
    /// Verbatims in no theme.
    pub other: usize,
    /// What to fix first.
    pub priorities: Vec<Priority>,
    /// Themes, largest first.
    pub themes: Vec<ThemeSummary>,
}

/// `GET /v1/themes/{id}`: a topic theme (`T3`) or a node of the aspect tree (`P3`, `C12`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum ThemeOut {
    /// `T<n>`.
    Topic(ThemeSummary),
    /// `P<n>` or `C<n>`.
    Node(NodeResponse),
}

/// `POST /v1/ingest`: what was stored, `file` being the upload's name.
#[derive(Serialize, ToSchema)]
pub(crate) struct IngestOut {
    #[serde(flatten)]
    pub summary: IngestSummary,
    /// The route (as the audit trail names it).
    pub via: String,
}

/// `GET /v1/audit`.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditList {
    /// Oldest first.
    pub entries: Vec<AuditEntry>,
}

/// Runs `f` with a read connection and the caught-up indexes of every shard served beside the
/// door's workspace (none: one workspace).
fn with_shards<T>(
    sh: &Shared,
    f: impl FnOnce(&[ShardView<'_>]) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let lent = sh
        .shards
        .iter()
        .map(super::ShardState::lend)
        .collect::<Result<Vec<_>, _>>()?;
    let reads = sh
        .shards
        .iter()
        .zip(&lent)
        .map(|(s, l)| s.indexes.read(l.ws()))
        .collect::<Result<Vec<_>, _>>()?;
    let views: Vec<ShardView<'_>> = sh
        .shards
        .iter()
        .zip(&lent)
        .zip(&reads)
        .map(|((s, l), r)| ShardView {
            id: s.id,
            ws: l.ws(),
            indexes: r,
        })
        .collect();
    f(&views)
}

/// Refuses a route that cannot fan out across shards when the server answers several
/// workspaces as one (`service::single_workspace`).
fn single(sh: &Shared, via: &str) -> Result<(), ApiError> {
    Ok(service::single_workspace(via, sh.shards.len() + 1)?)
}

/// The request's session on `ws`.
fn session<'a>(ws: &'a mut Workspace, sh: &'a Shared, caller: &Caller, via: &str) -> Session<'a> {
    Session::new(ws, caller.clone(), Via::http(via), &sh.models, &sh.settings)
}

/// Refuses at once a caller who may not do `action`, before the indexes are opened or caught
/// up for them (the operation checks again).
fn check(ws: &mut Workspace, sh: &Shared, caller: &Caller, action: Action) -> Result<(), ApiError> {
    Ok(session(ws, sh, caller, "").check(action)?)
}

/// A read lane's session: it reads through the shared indexes (when given) and records its
/// audit entry through the audit connection, so that readers never write to their own.
fn reader<'a>(
    ws: &'a mut Workspace,
    sh: &'a Shared,
    caller: &Caller,
    via: &str,
    ix: Option<&'a crate::index::Indexes>,
) -> Session<'a> {
    let s = session(ws, sh, caller, via).with_audit(&sh.audit);
    match ix {
        Some(ix) => s.with_shared_indexes(ix),
        None => s,
    }
}

/// Applies the workspace's retention period, if it sets one, on the server's open indexes; a
/// line for the log.
pub(crate) fn apply_retention(ws: &mut Workspace, sh: &Shared) -> Result<Option<String>, ApiError> {
    if ws.config.privacy.retention_days.is_none() {
        return Ok(None);
    }
    let r = sh.indexes.write_with(ws, |ws, ix| {
        crate::workspace::erase::apply_retention_to(ws, ix, chrono::Utc::now())
            .map_err(ApiError::internal)
    })?;
    Ok(Some(format!(
        "{} verbatim(s) older than {} erased",
        r.ids.len(),
        r.cutoff.as_deref().unwrap_or("the retention period")
    )))
}

pub(crate) fn stats(
    ws: &mut Workspace,
    sh: &Shared,
    caller: &Caller,
    via: &str,
) -> Result<Stats, ApiError> {
    check(ws, sh, caller, Action::Stats)?;
    let ix = sh.indexes.read(ws)?;
    with_shards(sh, |shards| {
        Ok(reader(ws, sh, caller, via, Some(&ix))
            .with_shards(shards)
            .stats()?)
    })
}

pub(crate) fn search(
    ws: &mut Workspace,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    body: SearchBody,
    query_vector: Option<Vec<f32>>,
) -> Result<SearchResponse, ApiError> {
    check(ws, sh, caller, Action::Search)?;
    let req = SearchRequest {
        text: body.query,
        mode: body.mode,
        filter: body.filter.to_filter()?,
        limit: body.limit,
        query_vector,
        sentiment: body.sentiment,
        keep_copies: body.keep_copies,
    };
    let ix = sh.indexes.read(ws)?;
    with_shards(sh, |shards| {
        Ok(reader(ws, sh, caller, via, Some(&ix))
            .with_shards(shards)
            .search(req)?)
    })
}

pub(crate) fn themes(
    ws: &mut Workspace,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    filter: super::routes::FilterBody,
    min_size: Option<usize>,
) -> Result<ThemesOut, ApiError> {
    single(sh, via)?;
    let req = ThemesRequest {
        filter: filter.to_filter()?,
        quotes: 1,
        min_size,
        run: Default::default(),
    };
    let s = session(ws, sh, caller, via).themes(req)?.summary;
    Ok(ThemesOut::Topics(TopicList {
        verbatims: s.verbatims,
        other: s.other,
        priorities: s.priorities,
        themes: s.themes,
    }))
}

/// `GET /v1/themes` by aspect (the default): the tree, shares of verbatims.
pub(crate) fn tree(
    ws: &mut Workspace,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    filter: super::routes::FilterBody,
) -> Result<ThemesOut, ApiError> {
    single(sh, via)?;
    let req = crate::service::TreeRequest {
        filter: filter.to_filter()?,
        run: Default::default(),
    };
    Ok(ThemesOut::Tree(
        session(ws, sh, caller, via).tree(req)?.summary,
    ))
}

/// `GET /v1/themes/{id}` for a tree node (`P3`, `C12`): the node and its units.
pub(crate) fn tree_node(
    ws: &mut Workspace,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    id: &str,
) -> Result<ThemeOut, ApiError> {
    single(sh, via)?;
    Ok(ThemeOut::Node(
        session(ws, sh, caller, via).tree_node(id, &Default::default())?,
    ))
}

pub(crate) fn theme(
    ws: &mut Workspace,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    id: &str,
    quotes: Option<usize>,
) -> Result<ThemeOut, ApiError> {
    single(sh, via)?;
    let req = ThemeRequest {
        id: id.to_string(),
        filter: Default::default(),
        quotes: quotes.unwrap_or(5),
        run: Default::default(),
    };
    match session(ws, sh, caller, via).theme(req)?.theme {
        Some(t) => Ok(ThemeOut::Topic(t)),
        None => Err(ApiError::not_found(format!(
            "no active theme {} with verbatims in your scope (see GET /v1/themes)",
            crate::themes::run::parse_theme_id(id)
                .map(crate::themes::run::theme_id)
                .unwrap_or_else(|| id.to_string())
        ))),
    }
}

/// A report: JSON data or Markdown.
pub(crate) enum ReportOut {
    Json(Box<Report>),
    Markdown(String),
}

pub(crate) fn report(
    ws: &mut Workspace,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    body: ReportBody,
    markdown: bool,
) -> Result<ReportOut, ApiError> {
    single(sh, via)?;
    let tree = match body.by.as_deref() {
        None | Some("aspect") => true,
        Some("topic") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "by: {other:?} is not aspect or topic"
            )))
        }
    };
    let req = ReportRequest {
        filter: body.filter.to_filter()?,
        quotes: 3,
        title: "Customer feedback report".into(),
        compare_to: None,
        out: None,
        run: Default::default(),
        tree,
    };
    let report = session(ws, sh, caller, via).report(req)?.report;
    Ok(if markdown {
        ReportOut::Markdown(crate::themes::report::markdown(&report))
    } else {
        ReportOut::Json(Box::new(report))
    })
}

pub(crate) fn ask(
    ws: &mut Workspace,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    body: AskBody,
) -> Result<Answer, ApiError> {
    single(sh, via)?;
    // The generator is loaded on first use, for a caller who may read text and did not ask
    // for an extractive answer, and kept (lock order: the ask lane, generator, indexes, audit).
    let reads_text = session(ws, sh, caller, via).may_read_text(Action::Ask)?;
    let mut slot = super::lock(&sh.generator);
    if reads_text && !body.extractive && slot.is_none() {
        use crate::ask::{llm::LlmError, Fallback};
        *slot = Some(match sh.settings.ask.generator.as_deref() {
            None => Err(Fallback::NoGenerator),
            Some(p) => crate::ask::llm::Generator::load(p).map_err(|e| {
                tracing::warn!("ask: no generator ({e}): extractive answers");
                match e {
                    LlmError::Missing { .. } => Fallback::NoGenerator,
                    e => Fallback::GeneratorFailed(e.to_string()),
                }
            }),
        });
    }
    let (generator, without_generator) = match slot.as_mut() {
        _ if body.extractive => (None, crate::ask::Fallback::Asked),
        Some(Ok(g)) => (Some(g), crate::ask::Fallback::NoGenerator),
        Some(Err(why)) => (None, why.clone()),
        None => (None, crate::ask::Fallback::NoGenerator),
    };
    let req = AskRequest {
        question: body.question,
        filter: body.filter.to_filter()?,
        limit: body.limit,
        max_tokens: body.max_tokens,
        temperature: body.temperature,
        seed: body.seed,
        generator,
        without_generator,
    };
    // Readers share the indexes meanwhile; an ingest or an erasure waits for the answer.
    let ix = sh.indexes.read(ws)?;
    let answer = reader(ws, sh, caller, via, Some(&ix)).ask(req, &mut |_| {})?;
    Ok(answer)
}

/// The upload is read from memory: no temporary file, and every message names the upload.
pub(crate) fn ingest(
    ws: &mut Workspace,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    upload: Upload,
) -> Result<IngestOut, ApiError> {
    single(sh, via)?;
    check(ws, sh, caller, Action::Write)?;
    let req = IngestRequest {
        source: crate::workspace::ingest::Source::Bytes {
            name: &upload.name,
            bytes: &upload.data,
        },
        options: crate::workspace::ingest::IngestOptions {
            mapping: upload.mapping.clone(),
            format: Some(upload.format),
            sheet: None,
            keep_originals: upload.keep_originals,
            multiline_fields: false,
        },
    };
    // Searches go on while the upload is read, embedded and stored; the indexes are taken
    // (readers wait) only to catch them up at the end.
    let summary = sh.indexes.ingest(|catch_up| {
        session(ws, sh, caller, via)
            .with_catch_up(catch_up)
            .ingest(req)
    })?;
    Ok(IngestOut {
        summary: IngestSummary {
            file: upload.name.into(),
            ..summary
        },
        via: via.to_string(),
    })
}

pub(crate) fn original(
    ws: &mut Workspace,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    id: &str,
) -> Result<Revealed, ApiError> {
    single(sh, via)?;
    Ok(reader(ws, sh, caller, via, None).reveal(id)?)
}

pub(crate) fn audit(
    ws: &mut Workspace,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    user: Option<String>,
    since: Option<String>,
) -> Result<AuditList, ApiError> {
    let entries = reader(ws, sh, caller, via, None).audit_entries(AuditRequest { user, since })?;
    Ok(AuditList { entries })
}

/// `GET /v1/check`: `verbatim check` over HTTP.
pub(crate) fn check_integrity(
    ws: &mut Workspace,
    sh: &Shared,
    caller: &Caller,
    via: &str,
) -> Result<service::CheckReport, ApiError> {
    single(sh, via)?;
    // Under the read lock: no catch-up rewrites an index while it is read from disk.
    let _ix = sh.indexes.read(ws)?;
    Ok(session(ws, sh, caller, via).check_integrity()?)
}

/// The server's models: the embedding model it loaded at start (or none), the model folder.
pub(crate) fn models(
    dir: Option<std::path::PathBuf>,
    embedder: Option<std::sync::Arc<dyn crate::embed::Embedder>>,
) -> service::Models<'static> {
    service::Models::loaded(dir, embedder)
}
