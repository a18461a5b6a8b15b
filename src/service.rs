//! The operations behind both doors — the CLI and the HTTP server — so that the policy and the
//! audit trail are the same whichever way a caller comes in.
//!
//! Every read follows the same three steps: [`Workspace::enter`] (the caller, re-checked for
//! revocation and expiry, and the action give a [`Grant`] or a refusal); the work, limited by
//! the grant (scope, text or aggregates only, k); [`Workspace::record`] (the audit entry, durable,
//! before anything is returned). The functions here take the grant, so the first step cannot be
//! skipped, and do the last step themselves.

use serde::Serialize;

use crate::access::{AccessError, Action, Caller, Grant};
use crate::ask::llm::Generator;
use crate::ask::{Answer, AskOptions};
use crate::embed::Embedder;
use crate::index::Indexes;
use crate::retrieve::{self, Hit, Query, SearchAggregate};
use crate::sentiment::SentimentHead;
use crate::store::{AuditDetail, AuditEntry, Filter, IdKind};
use crate::themes::analytics::{build_report, summarize, ReportInputs, Summary, SummaryOptions};
use crate::themes::run::RunData;
use crate::themes::{Report, ThemeSummary};
use crate::workspace::privacy::{self, Revealed};
use crate::workspace::Workspace;

/// Why a request failed, by who can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No caller, or a token that is wrong or revoked (HTTP 401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's role does not allow it, or its grant has expired (HTTP 403).
    #[error("{0}")]
    Denied(String),
    /// The request is malformed (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// No such verbatim, theme… (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// Anything else (HTTP 500).
    #[error("{0}")]
    Internal(String),
}

/// [`ServiceError`]'s kind, for status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 401.
    Unauthenticated,
    /// 403.
    Denied,
    /// 400.
    BadRequest,
    /// 404.
    NotFound,
    /// 500.
    Internal,
}

impl ServiceError {
    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            ServiceError::Denied(_) => ErrorKind::Denied,
            ServiceError::BadRequest(_) => ErrorKind::BadRequest,
            ServiceError::NotFound(_) => ErrorKind::NotFound,
            ServiceError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Wraps any other error as internal.
    pub fn internal(e: impl std::fmt::Display) -> ServiceError {
        ServiceError::Internal(e.to_string())
    }
}

impl From<AccessError> for ServiceError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Unauthenticated(m) => ServiceError::Unauthenticated(m),
            e @ (AccessError::Denied { .. } | AccessError::Expired { .. }) => {
                ServiceError::Denied(e.to_string())
            }
        }
    }
}

macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ServiceError {
            fn from(e: $t) -> Self {
                ServiceError::Internal(e.to_string())
            }
        }
    )*};
}
internal_from!(
    crate::workspace::WorkspaceError,
    crate::store::StoreError,
    crate::index::IndexError
);

impl From<retrieve::RetrieveError> for ServiceError {
    fn from(e: retrieve::RetrieveError) -> Self {
        match e {
            retrieve::RetrieveError::NoModel(_) => ServiceError::BadRequest(e.to_string()),
            retrieve::RetrieveError::TextNotAllowed => ServiceError::Denied(e.to_string()),
            e => ServiceError::Internal(e.to_string()),
        }
    }
}

impl From<privacy::PrivacyError> for ServiceError {
    fn from(e: privacy::PrivacyError) -> Self {
        match e {
            privacy::PrivacyError::NotFound(_) => ServiceError::NotFound(e.to_string()),
            e => ServiceError::Internal(e.to_string()),
        }
    }
}

/// The caller a bearer token belongs to (Argon2id: slow on purpose; a server caches it by a
/// digest of the token, and [`recheck`]s on every request).
pub fn authenticate(ws: &Workspace, token: &str) -> Result<Caller, ServiceError> {
    Ok(ws.authenticate(token)?)
}

/// The caller as the store knows it now (revoked: refused).
pub fn recheck(ws: &Workspace, caller: &Caller) -> Result<Caller, ServiceError> {
    Ok(ws.recheck(caller)?)
}

/// [`Workspace::enter`] with the service's error.
pub fn enter(ws: &Workspace, caller: &Caller, action: Action) -> Result<Grant, ServiceError> {
    Ok(ws.enter(caller, action)?)
}

fn expect(grant: &Grant, action: Action) -> Result<(), ServiceError> {
    if grant.action() == action {
        Ok(())
    } else {
        Err(ServiceError::Internal(format!(
            "a grant for {:?} was used for {action:?}",
            grant.action()
        )))
    }
}

/// The caller's filter resolved against the workspace (see [`crate::store::resolve_filter`]):
/// an unknown field or a value that matches nothing is a [`ServiceError::BadRequest`] whose
/// message names the known fields or values (those in the grant's scope); values match case-
/// and accent-insensitively and are replaced by the stored values. Every operation below that
/// takes a filter runs it through here, so both doors answer the same.
pub fn resolve_filter(
    ws: &Workspace,
    grant: &Grant,
    filter: &Filter,
) -> Result<Filter, ServiceError> {
    let scope = grant.restrict(&Filter::default());
    ws.store
        .resolve_filter(filter, &scope)?
        .map_err(|e| ServiceError::BadRequest(e.to_string()))
}

/// A search's result: the hits, or for an aggregates-only caller, counts.
#[derive(Clone, Debug, Serialize)]
pub struct SearchResponse {
    /// The query as run (the caller's filter; the grant's scope is applied on top).
    pub query: Query,
    /// Ranked verbatims (callers who may read text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hits: Option<Vec<Hit>>,
    /// Counts by segment and theme (aggregates-only callers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<SearchAggregate>,
}

/// Search under a [`Action::Search`] grant; `via` names the command or route in the audit.
pub fn search(
    ws: &mut Workspace,
    grant: &Grant,
    via: &str,
    indexes: &Indexes,
    embedder: Option<&dyn Embedder>,
    q: &Query,
) -> Result<SearchResponse, ServiceError> {
    expect(grant, Action::Search)?;
    if q.text.trim().is_empty() {
        return Err(ServiceError::BadRequest("the query is empty".into()));
    }
    let q = &Query {
        filter: resolve_filter(ws, grant, &q.filter)?,
        ..q.clone()
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
    if grant.may_read_text() {
        let hits = retrieve::search(grant, &ws.store, indexes, embedder, q)?;
        let ids: Vec<String> = hits.iter().map(|h| h.verbatim.id.clone()).collect();
        ws.record(grant, via, &detail(ids))?;
        Ok(SearchResponse {
            query: q.clone(),
            hits: Some(hits),
            aggregate: None,
        })
    } else {
        let agg = retrieve::aggregate(grant, &ws.store, indexes, embedder, q)?;
        ws.record(grant, via, &detail(Vec::new()))?;
        Ok(SearchResponse {
            query: q.clone(),
            hits: None,
            aggregate: Some(agg),
        })
    }
}

/// What `stats` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// The workspace folder.
    pub workspace: std::path::PathBuf,
    /// Store counts (as the grant may see them: [`stats_for`]).
    pub store: crate::store::StoreStats,
    /// The text index: documents, and the store sequence it covers.
    pub text_index: TextCoverage,
    /// The vector index: points, and the store sequence it covers.
    pub vector_index: VectorCoverage,
}

/// Text index coverage.
#[derive(Clone, Debug, Serialize)]
pub struct TextCoverage {
    /// Documents indexed.
    pub documents: u64,
    /// Store sequence covered.
    pub covered_seq: i64,
}

/// Vector index coverage.
#[derive(Clone, Debug, Serialize)]
pub struct VectorCoverage {
    /// Points in the graph.
    pub points: usize,
    /// Store sequence covered.
    pub covered_seq: i64,
}

/// Workspace counts under a [`Action::Stats`] grant.
pub fn stats(
    ws: &mut Workspace,
    grant: &Grant,
    via: &str,
    indexes: &Indexes,
) -> Result<Stats, ServiceError> {
    expect(grant, Action::Stats)?;
    let report = Stats {
        workspace: ws.root().to_path_buf(),
        store: stats_for(grant, ws.store.stats()?),
        text_index: TextCoverage {
            documents: indexes.text.num_docs(),
            covered_seq: indexes.text.covered(),
        },
        vector_index: VectorCoverage {
            points: indexes.vectors.points(),
            covered_seq: indexes.vectors.covered(),
        },
    };
    ws.record(grant, via, &AuditDetail::Stats {})?;
    Ok(report)
}

/// Store statistics as `grant` may see them: for an aggregates-only caller, languages with
/// fewer than k verbatims are left out (a language spoken by two respondents points at them).
fn stats_for(grant: &Grant, mut s: crate::store::StoreStats) -> crate::store::StoreStats {
    if grant.min_cell() > 0 {
        s.languages
            .retain(|_, n| grant.cell(usize::try_from(*n).unwrap_or(0)).is_some());
    }
    s
}

/// One sealed original under a [`Action::Reveal`] grant, logged before it is returned.
pub fn reveal(
    ws: &mut Workspace,
    grant: &Grant,
    via: &str,
    id: &str,
) -> Result<Revealed, ServiceError> {
    expect(grant, Action::Reveal)?;
    let missing = || ServiceError::from(privacy::PrivacyError::NotFound(id.to_string()));
    let v = ws.store.get(id)?.ok_or_else(missing)?;
    if !grant.restrict(&Filter::default()).matches(&v) {
        return Err(missing());
    }
    ws.record(
        grant,
        via,
        &AuditDetail::Reveal {
            verbatim_ids: vec![id.to_string()],
            logged_at: None,
        },
    )?;
    Ok(privacy::reveal(ws, grant, id)?)
}

/// The theme list under a [`Action::Themes`] grant (quotes only when the grant allows text;
/// cells under its k suppressed).
#[allow(clippy::too_many_arguments)]
pub fn themes(
    ws: &mut Workspace,
    grant: &Grant,
    via: &str,
    run: &RunData,
    head: &SentimentHead,
    filter: &Filter,
    quotes: usize,
    min_size: usize,
) -> Result<Summary, ServiceError> {
    expect(grant, Action::Themes)?;
    let filter = &resolve_filter(ws, grant, filter)?;
    let opts = SummaryOptions::for_grant(grant, filter, quotes, min_size);
    let s = summarize(run, head, &opts);
    ws.record(
        grant,
        via,
        &AuditDetail::Themes {
            theme: None,
            filter: opts.filter.clone(),
            quotes: opts.quotes,
            min_cell: opts.min_cell,
            theme_ids: s.themes.iter().map(|t| t.id.clone()).collect(),
            verbatim_ids: s
                .themes
                .iter()
                .flat_map(|t| t.quotes.iter().map(|q| q.id.clone()))
                .collect(),
        },
    )?;
    Ok(s)
}

/// One theme under a [`Action::Themes`] grant (same limits as [`themes`]); `Ok(None)` when it
/// has no verbatims in scope (or fewer than the grant's k).
#[allow(clippy::too_many_arguments)]
pub fn theme(
    ws: &mut Workspace,
    grant: &Grant,
    via: &str,
    run: &RunData,
    head: &SentimentHead,
    id: &str,
    filter: &Filter,
    quotes: usize,
) -> Result<Option<ThemeSummary>, ServiceError> {
    expect(grant, Action::Themes)?;
    let filter = &resolve_filter(ws, grant, filter)?;
    let opts = SummaryOptions::for_grant(grant, filter, quotes, 0);
    let s = summarize(run, head, &opts);
    let Some(t) = s.themes.into_iter().find(|t| t.id == id) else {
        return Ok(None);
    };
    ws.record(
        grant,
        via,
        &AuditDetail::Themes {
            theme: Some(t.id.clone()),
            filter: opts.filter.clone(),
            quotes: opts.quotes,
            min_cell: opts.min_cell,
            theme_ids: vec![t.id.clone()],
            verbatim_ids: t.quotes.iter().map(|q| q.id.clone()).collect(),
        },
    )?;
    Ok(Some(t))
}

/// `ask` under an [`Action::Ask`] grant: reads through `ws`, and appends the audit entry (the
/// question, the filter, the verbatims the answer rests on) through `audit` — a second
/// connection to the same workspace — before the first sentence reaches `on_sentence`.
#[allow(clippy::too_many_arguments)]
pub fn ask(
    ws: &Workspace,
    audit: &mut Workspace,
    grant: &Grant,
    via: &str,
    indexes: &Indexes,
    embedder: &dyn Embedder,
    generator: Option<&mut Generator>,
    question: &str,
    opts: &AskOptions,
    on_sentence: &mut dyn FnMut(&str),
) -> Result<Answer, ServiceError> {
    expect(grant, Action::Ask)?;
    if question.trim().is_empty() {
        return Err(ServiceError::BadRequest("the question is empty".into()));
    }
    let opts = &AskOptions {
        filter: resolve_filter(ws, grant, &opts.filter)?,
        ..opts.clone()
    };
    // Aggregates-only callers get counts: no model reads verbatims for them.
    let generator = if grant.may_read_text() {
        generator
    } else {
        None
    };
    crate::ask::ask(
        &ws.store,
        indexes,
        grant,
        embedder,
        generator,
        question,
        opts,
        &mut |sources| {
            let detail = AuditDetail::Ask {
                question: question.to_string(),
                filter: opts.filter.clone(),
                scope: grant.scope().clone(),
                verbatim_ids: sources.iter().map(|s| s.id.clone()).collect(),
            };
            audit
                .record(grant, via, &detail)
                .map(|_| ())
                .map_err(|e| format!("audit trail: {e}"))
        },
        on_sentence,
    )
    .map_err(ServiceError::internal)
}

/// Records a write made under `grant` (ingest, reindex, links make, theme edits, users and
/// grants, backups…): who, what, what it changed. The grant must be for the write's action.
pub fn record_write(
    ws: &mut Workspace,
    grant: &Grant,
    via: &str,
    detail: &AuditDetail,
) -> Result<(), ServiceError> {
    let wanted = match detail {
        AuditDetail::ThemeMerge { .. }
        | AuditDetail::ThemeRename { .. }
        | AuditDetail::ThemeSeed { .. } => Action::EditThemes,
        AuditDetail::Backup { .. } => Action::Backup,
        AuditDetail::PrincipalAdd { .. } | AuditDetail::PrincipalRevoke { .. } => Action::Users,
        AuditDetail::Ingest { .. }
        | AuditDetail::Reindex { .. }
        | AuditDetail::LinksMake { .. } => Action::Write,
        other => {
            return Err(ServiceError::Internal(format!(
                "{other:?} is not a write; its own service function records it"
            )))
        }
    };
    expect(grant, wanted)?;
    ws.record(grant, via, detail)?;
    Ok(())
}

/// The pseudonym of a respondent identifier and their verbatims, under an [`Action::Lookup`]
/// grant. The identifier itself is personal data: the trail keeps its pseudonym.
pub fn lookup_respondent(
    ws: &mut Workspace,
    grant: &Grant,
    via: &str,
    identifier: &str,
) -> Result<privacy::Respondent, ServiceError> {
    expect(grant, Action::Lookup)?;
    let r = privacy::lookup_respondent(ws, identifier)?;
    ws.record(
        grant,
        via,
        &AuditDetail::RespondentLookup {
            pseudonym: r.pseudonym.clone(),
            verbatim_ids: r.verbatims.clone(),
        },
    )?;
    Ok(r)
}

/// Records that every verbatim's theme assignment is about to be written (to `out`, or
/// stdout), under an [`Action::Assignments`] grant; the ids are not listed (one per verbatim).
pub fn assignments(
    ws: &mut Workspace,
    grant: &Grant,
    via: &str,
    out: Option<&std::path::Path>,
    verbatims: usize,
) -> Result<(), ServiceError> {
    expect(grant, Action::Assignments)?;
    ws.record(
        grant,
        via,
        &AuditDetail::Assignments {
            out: out.map(std::path::Path::to_path_buf),
            verbatims,
        },
    )?;
    Ok(())
}

/// Users and grants, under an [`Action::Users`] grant.
pub fn principals(
    ws: &mut Workspace,
    grant: &Grant,
    via: &str,
) -> Result<Vec<crate::store::PrincipalRecord>, ServiceError> {
    expect(grant, Action::Users)?;
    let all = ws.store.principals()?;
    ws.record(grant, via, &AuditDetail::PrincipalList {})?;
    Ok(all)
}

/// A report under a [`Action::Report`] grant (same limits as [`themes`]).
#[allow(clippy::too_many_arguments)]
pub fn report(
    ws: &mut Workspace,
    grant: &Grant,
    via: &str,
    run: &RunData,
    filter: &Filter,
    quotes: usize,
    out: Option<&std::path::Path>,
    inputs: ReportInputs<'_>,
) -> Result<Report, ServiceError> {
    expect(grant, Action::Report)?;
    let filter = &resolve_filter(ws, grant, filter)?;
    let opts = SummaryOptions::for_grant(grant, filter, quotes, 1);
    // `out` (absolute) lets `forget` find the reports that quote erased verbatims; it is not in
    // the report itself, whose bytes depend on the data and settings only.
    let parameters = inputs.parameters.clone();
    let mut report = build_report(run, &opts, inputs);
    // Scores read through a score map mean what the map says: the manifest records it.
    report.manifest.score_map = ws.config.mapping.as_ref().and_then(|m| m.score_map.clone());
    let detail = AuditDetail::Report {
        filter: opts.filter.clone(),
        quotes: opts.quotes,
        min_cell: opts.min_cell,
        parameters,
        out: out.map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())),
        theme_ids: report.themes.iter().map(|t| t.id.clone()).collect(),
        verbatim_ids: report
            .themes
            .iter()
            .flat_map(|t| t.quotes.iter().map(|q| q.id.clone()))
            .collect(),
    };
    ws.record(grant, via, &detail)?;
    Ok(report)
}

/// Audit entries (oldest first), optionally of one caller and since a time (`YYYY-MM-DDTHH:MM:SSZ`
/// prefix comparison), under an [`Action::Audit`] grant. Reading the trail is itself recorded.
pub fn audit_entries(
    ws: &mut Workspace,
    grant: &Grant,
    via: &str,
    user: Option<&str>,
    since: Option<&str>,
) -> Result<Vec<AuditEntry>, ServiceError> {
    expect(grant, Action::Audit)?;
    let entries: Vec<AuditEntry> = ws
        .store
        .audit_entries()?
        .into_iter()
        .filter(|e| user.is_none_or(|u| e.caller == u))
        .filter(|e| since.is_none_or(|s| e.at.as_str() >= s))
        .collect();
    ws.record(
        grant,
        via,
        &AuditDetail::AuditRead {
            user: user.map(str::to_string),
            since: since.map(str::to_string),
        },
    )?;
    Ok(entries)
}

/// What one user retrieved: every verbatim id returned to them, how often, first and last time,
/// and the respondents (pseudonyms) behind them. For scoping an incident (a leaked token, a
/// departing employee).
#[derive(Clone, Debug, Serialize)]
pub struct IncidentReport {
    /// The user.
    pub user: String,
    /// From (inclusive, UTC).
    pub since: Option<String>,
    /// Their audit entries in the window, by action.
    pub requests: std::collections::BTreeMap<String, usize>,
    /// First and last request in the window.
    pub first: Option<String>,
    /// Last request in the window.
    pub last: Option<String>,
    /// Every verbatim id returned, with in how many requests and when first. Entries written
    /// before schema v6 did not say what an id was: theirs are here too when the store holds a
    /// verbatim of that id, else in `unresolved`.
    pub verbatims: Vec<IncidentItem>,
    /// Every theme id shown.
    pub themes: Vec<IncidentItem>,
    /// Ids from entries written before schema v6 that name no stored verbatim: an erased
    /// verbatim or a theme (the old trail cannot say which).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<IncidentItem>,
    /// Respondent pseudonyms behind those verbatims (still in the store).
    pub respondents: Vec<String>,
    /// Ids returned that are no longer in the store (erased since).
    pub erased_since: usize,
}

/// One verbatim (or theme) in an [`IncidentReport`].
#[derive(Clone, Debug, Serialize)]
pub struct IncidentItem {
    /// Verbatim (or theme) id.
    pub id: String,
    /// Requests that returned it.
    pub times: usize,
    /// First time.
    pub first: String,
    /// The respondent's pseudonym, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub respondent: Option<String>,
}

/// Does the store hold a verbatim with this id (cached)?
fn held_now(
    ws: &Workspace,
    cache: &mut std::collections::HashMap<String, bool>,
    id: &str,
) -> Result<bool, ServiceError> {
    if let Some(h) = cache.get(id) {
        return Ok(*h);
    }
    let h = ws.store.get(id)?.is_some();
    cache.insert(id.to_string(), h);
    Ok(h)
}

/// Builds an [`IncidentReport`] from the audit trail (after verifying its chain: a broken chain
/// is an error, since the report would rest on it).
pub fn incident_report(
    ws: &mut Workspace,
    grant: &Grant,
    via: &str,
    user: &str,
    since: Option<&str>,
) -> Result<IncidentReport, ServiceError> {
    expect(grant, Action::Audit)?;
    let verdict = ws.verify_audit()?;
    if let Some((seq, why)) = verdict.broken {
        return Err(ServiceError::Internal(format!(
            "the audit trail is broken at entry {seq} ({why}): an incident report would rest on it; see `verbatim audit verify`"
        )));
    }
    let mut requests = std::collections::BTreeMap::new();
    let mut first = None;
    let mut last = None;
    let mut items: std::collections::BTreeMap<(IdKind, String), (usize, String)> =
        Default::default();
    let mut held: std::collections::HashMap<String, bool> = Default::default();
    for e in ws.store.audit_entries()? {
        if e.caller != user || since.is_some_and(|s| e.at.as_str() < s) {
            continue;
        }
        *requests.entry(e.action.clone()).or_insert(0) += 1;
        first.get_or_insert_with(|| e.at.clone());
        last = Some(e.at.clone());
        let legacy = e.typed().is_none();
        let mut named: std::collections::BTreeSet<(IdKind, String)> = e
            .theme_ids
            .iter()
            .map(|t| (IdKind::Theme, t.clone()))
            .collect();
        for i in &e.ids {
            // An old entry's id is a verbatim when the store holds one of that id; else it
            // stays unresolved (an erased verbatim, or a theme).
            let kind = if legacy && !held_now(ws, &mut held, i)? {
                IdKind::Legacy
            } else {
                IdKind::Verbatim
            };
            named.insert((kind, i.clone()));
        }
        for key in named {
            items.entry(key).or_insert((0, e.at.clone())).0 += 1;
        }
    }
    let mut respondents = std::collections::BTreeSet::new();
    let mut erased = 0;
    let mut verbatims = Vec::new();
    let mut themes = Vec::new();
    let mut unresolved = Vec::new();
    for ((kind, id), (times, at)) in items {
        let held = match kind {
            IdKind::Verbatim => Some(ws.store.get(&id)?),
            IdKind::Theme | IdKind::Legacy => None,
        };
        let respondent = held.as_ref().and_then(|v| v.as_ref()?.respondent.clone());
        if let Some(r) = &respondent {
            respondents.insert(r.clone());
        }
        let item = IncidentItem {
            id,
            times,
            first: at,
            respondent,
        };
        match (kind, held.map(|v| v.is_some())) {
            (IdKind::Theme, _) => themes.push(item),
            (IdKind::Legacy, _) => unresolved.push(item),
            (IdKind::Verbatim, Some(false)) => {
                erased += 1;
                verbatims.push(item);
            }
            (IdKind::Verbatim, _) => verbatims.push(item),
        }
    }
    let report = IncidentReport {
        user: user.to_string(),
        since: since.map(str::to_string),
        requests,
        first,
        last,
        verbatims,
        themes,
        unresolved,
        respondents: respondents.into_iter().collect(),
        erased_since: erased,
    };
    ws.record(
        grant,
        via,
        &AuditDetail::Incident {
            incident_user: user.to_string(),
            since: since.map(str::to_string),
        },
    )?;
    Ok(report)
}
