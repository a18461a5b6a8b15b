//! The server's only calls into the library: tokens, the shared operations of
//! [`crate::service`] (the same the CLI calls; `via` is the route, so the audit trail names it),
//! retention. Keeping them in one file keeps the rule visible: the server decides nothing about
//! access — `service::enter` gives the grant or the refusal, the service records the read — it
//! maps outcomes to HTTP and does the loading glue the CLI does (model, themes run, sentiment
//! head, generator).

use std::path::PathBuf;

use serde_json::Value;

use super::error::ApiError;
use super::routes::{AskBody, ReportBody, SearchBody, Upload};
use super::{Core, Shared};
use crate::access::{Action, Caller};
use crate::index::Indexes;
use crate::service::{self, ErrorKind, ServiceError};
use crate::workspace::Workspace;

/// What `/v1/ask` needs besides the embedding model; the CLI resolves it like `verbatim ask`.
#[derive(Clone, Debug, Default)]
pub struct AskSettings {
    /// The generator (GGUF) file; `None` or missing: extractive answers.
    pub generator: Option<PathBuf>,
    /// Answers rest on verbatims at least this similar to the question.
    pub min_cosine: f32,
    /// Counting questions count verbatims at least this similar.
    pub count_cosine: f32,
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let m = e.to_string();
        match e.kind() {
            ErrorKind::Unauthenticated => ApiError::unauthenticated(m),
            ErrorKind::Denied => ApiError::forbidden(m),
            ErrorKind::BadRequest => ApiError::bad_request(m),
            ErrorKind::NotFound => ApiError::not_found(m),
            ErrorKind::Internal => ApiError::internal(m),
        }
    }
}

fn json(v: impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(ApiError::internal)
}

/// Applies the workspace's retention period, if it sets one, on the server's open indexes; a
/// line for the log.
pub(crate) fn apply_retention(core: &mut Core) -> Result<Option<String>, ApiError> {
    if core.ws.config.privacy.retention_days.is_none() {
        return Ok(None);
    }
    let r = core.write_with_indexes(|ws, ix| {
        crate::workspace::erase::apply_retention_to(ws, ix, chrono::Utc::now())
            .map_err(ApiError::internal)
    })?;
    Ok(Some(format!(
        "{} verbatim(s) older than {} erased",
        r.ids.len(),
        r.cutoff.as_deref().unwrap_or("the retention period")
    )))
}

pub(crate) fn stats(core: &mut Core, caller: &Caller, via: &str) -> Result<Value, ApiError> {
    let grant = service::enter(&core.ws, caller, Action::Stats)?;
    let (ws, ix) = core.with_indexes()?;
    json(service::stats(ws, &grant, via, ix)?)
}

pub(crate) fn search(
    core: &mut Core,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    body: SearchBody,
    query_vector: Option<Vec<f32>>,
) -> Result<Value, ApiError> {
    let grant = service::enter(&core.ws, caller, Action::Search)?;
    let q = crate::retrieve::Query {
        text: body.query,
        mode: body.mode.unwrap_or(sh.search.mode),
        filter: body.filter.to_filter()?,
        limit: body.limit.unwrap_or(sh.search.limit),
    };
    let (ws, ix) = core.with_indexes()?;
    let memo = match (sh.embedder.as_deref(), query_vector) {
        (Some(e), Some(v)) => Some(crate::embed::Memo::known(e, &q.text, v)),
        _ => None,
    };
    let embedder = match &memo {
        Some(m) => Some(m as &dyn crate::embed::Embedder),
        None => sh
            .embedder
            .as_deref()
            .map(|e| e as &dyn crate::embed::Embedder),
    };
    json(service::search(ws, &grant, via, ix, embedder, &q)?)
}

/// The themes run (loaded, or computed when the store changed), as `verbatim themes` does.
fn run_themes(
    ws: &mut Workspace,
    sh: &Shared,
    min_size: Option<usize>,
) -> Result<crate::themes::run::RunData, ApiError> {
    let docs = ws.store.all_docs().map_err(ApiError::internal)?;
    let need_model = !ws
        .store
        .docs_without_sentences(&docs)
        .map_err(ApiError::internal)?
        .is_empty();
    let embedder = if need_model {
        let e = sh.embedder.as_deref().ok_or_else(|| {
            ApiError::internal("themes need the embedding model, which did not load")
        })?;
        ws.store
            .check_model(e.fingerprint())
            .map_err(ApiError::internal)?;
        Some(e)
    } else {
        None
    };
    let mut params = crate::themes::run::Params::default();
    if let Some(m) = min_size {
        params.min_size = m;
    }
    let _lock = ws.lock().map_err(ApiError::internal)?;
    crate::themes::run::ensure(
        &mut ws.store,
        &params,
        false,
        embedder,
        &crate::workspace::ingest::NoProgress,
    )
    .map_err(ApiError::internal)
}

fn sentiment_head(
    ws: &Workspace,
    sh: &Shared,
) -> Result<(crate::sentiment::SentimentHead, String), ApiError> {
    let dir = sh
        .model_dir
        .as_deref()
        .ok_or_else(|| ApiError::internal("no model folder: the sentiment head cannot load"))?;
    let fp = ws
        .store
        .model_fingerprint()
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::bad_request("the workspace has no verbatims yet: ingest a file first")
        })?;
    crate::sentiment::SentimentHead::load(&crate::sentiment::SentimentHead::path_for(dir), &fp)
        .map_err(ApiError::internal)
}

pub(crate) fn themes(
    core: &mut Core,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    filter: super::routes::FilterBody,
    min_size: Option<usize>,
) -> Result<Value, ApiError> {
    let ws = &mut core.ws;
    let grant = service::enter(ws, caller, Action::Themes)?;
    // Resolved before the run: a mistyped field or value is a 400 at once.
    let filter = service::resolve_filter(ws, &grant, &filter.to_filter()?)?;
    let head = sentiment_head(ws, sh)?;
    let run = run_themes(ws, sh, None)?;
    let min_size = min_size.unwrap_or(if filter.is_empty() { 1 } else { 10 });
    let s = service::themes(ws, &grant, via, &run, &head.0, &filter, 1, min_size)?;
    json(serde_json::json!({ "verbatims": s.verbatims, "other": s.other, "themes": s.themes }))
}

pub(crate) fn theme(
    core: &mut Core,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    id: &str,
    quotes: Option<usize>,
) -> Result<Value, ApiError> {
    let ws = &mut core.ws;
    let grant = service::enter(ws, caller, Action::Themes)?;
    let want = crate::themes::run::parse_theme_id(id)
        .map(crate::themes::run::theme_id)
        .ok_or_else(|| ApiError::bad_request(format!("{id:?} is not a theme id (T1, T2…)")))?;
    let head = sentiment_head(ws, sh)?;
    let run = run_themes(ws, sh, None)?;
    let filter = crate::store::Filter::default();
    match service::theme(
        ws,
        &grant,
        via,
        &run,
        &head.0,
        &want,
        &filter,
        quotes.unwrap_or(5),
    )? {
        Some(t) => json(t),
        None => Err(ApiError::not_found(format!(
            "no active theme {want} with verbatims in your scope (see GET /v1/themes)"
        ))),
    }
}

/// A report: JSON data or Markdown.
pub(crate) enum ReportOut {
    Json(Value),
    Markdown(String),
}

pub(crate) fn report(
    core: &mut Core,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    body: ReportBody,
    markdown: bool,
) -> Result<ReportOut, ApiError> {
    const QUOTES: usize = 3;
    let ws = &mut core.ws;
    let grant = service::enter(ws, caller, Action::Report)?;
    let filter = service::resolve_filter(ws, &grant, &body.filter.to_filter()?)?;
    let head = sentiment_head(ws, sh)?;
    let model = ws
        .store
        .model_fingerprint()
        .map_err(ApiError::internal)?
        .unwrap_or_default();
    let run = run_themes(ws, sh, None)?;
    let title = "Customer feedback report";
    let parameters = crate::themes::analytics::ReportParameters {
        run: crate::themes::run::Params::default(),
        filter: grant.restrict(&filter),
        quotes: if grant.may_read_text() { QUOTES } else { 0 },
        min_cell: grant.min_cell(),
        title: title.into(),
        compare_to: None,
        theme_edits: crate::themes::analytics::theme_edits(&run.themes),
        theme_run: crate::themes::analytics::run_fingerprint(&run),
        route: Some(via.into()),
    };
    let report = service::report(
        ws,
        &grant,
        via,
        &run,
        &filter,
        QUOTES,
        None,
        crate::themes::analytics::ReportInputs {
            title: title.into(),
            model,
            head: (&head.0, head.1.clone()),
            parameters: json(&parameters)?,
            compare_to: None,
        },
    )?;
    Ok(if markdown {
        ReportOut::Markdown(crate::themes::report::markdown(&report))
    } else {
        ReportOut::Json(json(&report)?)
    })
}

pub(crate) fn ask(
    core: &mut Core,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    body: AskBody,
) -> Result<Value, ApiError> {
    let grant = service::enter(&core.ws, caller, Action::Ask)?;
    let embedder = sh
        .embedder
        .as_deref()
        .ok_or_else(|| ApiError::internal("ask needs the embedding model, which did not load"))?;
    core.ws
        .store
        .check_model(embedder.fingerprint())
        .map_err(ApiError::internal)?;
    let cfg = core.ws.config.ask.clone();
    let opts = crate::ask::AskOptions {
        filter: body.filter.to_filter()?,
        limit: cfg.context_verbatims,
        context_tokens: cfg.context_tokens,
        gen: crate::ask::llm::GenOptions {
            max_tokens: cfg.max_tokens,
            temperature: cfg.temperature,
            seed: cfg.seed,
            ..Default::default()
        },
        min_cosine: sh.ask.min_cosine,
        count_cosine: sh.ask.count_cosine,
        without_generator: crate::ask::Fallback::NoGenerator,
    };
    // Aggregates-only callers get counts: no model reads verbatims for them. The generator is
    // loaded on first use and kept (lock order: core, generator, auth).
    let mut slot = super::lock(&sh.generator);
    if grant.may_read_text() && slot.is_none() {
        use crate::ask::{llm::LlmError, Fallback};
        *slot = Some(match sh.ask.generator.as_deref() {
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
    let mut opts = opts;
    let generator = if grant.may_read_text() {
        match slot.as_mut() {
            Some(Ok(g)) => Some(g),
            Some(Err(why)) => {
                opts.without_generator = why.clone();
                None
            }
            None => None,
        }
    } else {
        None
    };
    let (ws, ix) = core.with_indexes()?;
    // The audit entry goes through the token-checking connection: `ask` reads through the
    // first meanwhile (lock order: core, then auth — the auth path never takes core).
    let mut audit_ws = super::lock(&sh.auth_ws);
    let answer = service::ask(
        ws,
        &mut audit_ws,
        &grant,
        via,
        ix,
        embedder,
        generator,
        &body.question,
        &opts,
        &mut |_| {},
    )?;
    json(answer)
}

pub(crate) fn ingest(
    core: &mut Core,
    sh: &Shared,
    caller: &Caller,
    via: &str,
    upload: Upload,
) -> Result<Value, ApiError> {
    let grant = service::enter(&core.ws, caller, Action::Write)?;
    core.write_with_indexes(|ws, ix| ingest_into(ws, ix, sh, &grant, via, upload))
}

/// The ingest, catching the server's open indexes up in place.
fn ingest_into(
    ws: &mut Workspace,
    ix: &mut Indexes,
    sh: &Shared,
    grant: &crate::access::Grant,
    via: &str,
    upload: Upload,
) -> Result<Value, ApiError> {
    let embedder = sh.embedder.as_deref().ok_or_else(|| {
        ApiError::internal("ingest needs the embedding model, which did not load")
    })?;
    // The upload becomes a file in the workspace (the ingest reader works on files, and row
    // errors name it); removed afterwards whatever happens.
    let dir = ws.root().join("uploads");
    std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(ApiError::internal)?;
    let safe: String = upload
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let path = dir.join(format!("{}-{safe}", hex::encode(nonce)));
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    std::fs::write(&path, &upload.data).map_err(ApiError::internal)?;
    let _remove = Remove(path.clone());
    let opts = crate::workspace::ingest::IngestOptions {
        mapping: upload.mapping.clone(),
        format: Some(upload.format),
        sheet: None,
        keep_originals: upload.keep_originals,
        multiline_fields: false,
    };
    let summary = crate::workspace::ingest::ingest_file_into(
        ws,
        Some(ix),
        embedder,
        &path,
        &opts,
        &crate::workspace::ingest::NoProgress,
    )
    .map_err(|e| {
        use crate::workspace::ingest::IngestRunError as E;
        // Messages name the temporary file: name the upload instead.
        let m = e
            .to_string()
            .replace(&path.display().to_string(), &upload.name);
        match e {
            E::Read(_) => ApiError::bad_request(m),
            E::NoMapping { .. } => ApiError::bad_request(m.replace(
                "pass --text COLUMN (and optionally --id, --respondent, --date, --score, --field)",
                "give text=COLUMN (and optionally id, respondent, date, score, field)",
            )),
            E::Workspace(crate::workspace::WorkspaceError::Locked { .. }) => ApiError::conflict(m),
            _ => ApiError::internal(m),
        }
    })?;
    // Row errors and warnings name the temporary file: name the upload instead.
    let mut summary = summary;
    let tmp = path.display().to_string();
    for m in summary.errors.iter_mut().chain(summary.warnings.iter_mut()) {
        *m = m.replace(&tmp, &upload.name);
    }
    service::record_write(
        ws,
        grant,
        via,
        &crate::store::AuditDetail::Ingest {
            file: upload.name.clone(),
            rows: summary.rows,
            stored: summary.stored,
            updated: summary.updated,
            unchanged: summary.unchanged,
            rejected: summary.rejected,
        },
    )?;
    let mut v = json(&summary)?;
    v["file"] = Value::String(upload.name);
    v["via"] = Value::String(via.to_string());
    Ok(v)
}

pub(crate) fn original(
    core: &mut Core,
    caller: &Caller,
    via: &str,
    id: &str,
) -> Result<Value, ApiError> {
    let grant = service::enter(&core.ws, caller, Action::Reveal)?;
    json(service::reveal(&mut core.ws, &grant, via, id)?)
}

pub(crate) fn audit(
    core: &mut Core,
    caller: &Caller,
    via: &str,
    user: Option<String>,
    since: Option<String>,
) -> Result<Value, ApiError> {
    let grant = service::enter(&core.ws, caller, Action::Audit)?;
    let entries =
        service::audit_entries(&mut core.ws, &grant, via, user.as_deref(), since.as_deref())?;
    json(serde_json::json!({ "entries": entries }))
}
