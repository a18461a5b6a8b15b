//! The application layer: every operation behind both doors — the CLI and the HTTP server — so
//! that the policy and the audit trail are the same whichever way a caller comes in.
//!
//! A door builds a [`Session`] (the workspace, the caller, how they came in as a [`Via`], the
//! models loaded on first use, the [`Settings`]) and calls one method per operation: a typed
//! request in, a typed response out. Every method follows the same three steps:
//! [`Workspace::enter`] (the caller, re-checked for revocation and expiry, and the action give a
//! [`Grant`] or a refusal); the work, limited by the grant (scope, text or aggregates only, k);
//! [`Workspace::record`] (the audit entry, durable, before anything is returned). Grants never
//! leave the session, so a door cannot skip the first step nor forget the last.

use serde::Serialize;

use crate::access::{AccessError, Caller, Grant};
use crate::retrieve::{self, Hit, Query, SearchAggregate};
use crate::store::{Filter, IdKind};
use crate::workspace::privacy;
use crate::workspace::Workspace;

mod ask;
mod aspects;
mod check;
mod reads;
mod session;
#[cfg(test)]
mod tests;
mod themes;
mod writes;

pub use aspects::{
    AssignmentRow, ExportModelRequest, ExportModelResponse, ImportModelResponse, NodeResponse,
    TreeEdit, TreeRequest, TreeResponse, UnitRow,
};
pub use check::{CheckReport, Checked, Damage};
pub use session::{
    AskRequest, AskSettings, AssignmentsRequest, AuditRequest, CatchUp, Forget, IngestRequest,
    Models, ReportRequest, ReportResponse, RunRequest, SearchDefaults, SearchRequest, Session,
    Settings, ShardView, ThemeEdit, ThemeRequest, ThemeResponse, ThemesRequest, ThemesResponse,
    Via,
};

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
    /// The workspace is busy: another process holds its write lock (HTTP 409).
    #[error("{0}")]
    Conflict(String),
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
    /// 409.
    Conflict,
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
            ServiceError::Conflict(_) => ErrorKind::Conflict,
            ServiceError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Wraps any other error as internal.
    pub fn internal(e: impl std::fmt::Display) -> ServiceError {
        ServiceError::Internal(e.to_string())
    }

    /// Wraps a lower layer's error as internal, its causes said after it (`error: cause:
    /// cause`), as the CLI always printed them.
    pub fn internal_chain(e: &(dyn std::error::Error + 'static)) -> ServiceError {
        let mut m = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            m += &format!(": {s}");
            source = s.source();
        }
        ServiceError::Internal(m)
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
            privacy::PrivacyError::Usage(_) => ServiceError::BadRequest(e.to_string()),
            e => ServiceError::Internal(e.to_string()),
        }
    }
}

/// Refuses `what` when `served` workspaces answer as one (`verbatim serve --workspace A
/// --workspace B`) and `what` cannot fan out across them yet: answered from the first alone,
/// it would be silently partial.
pub fn single_workspace(what: &str, served: usize) -> Result<(), ServiceError> {
    if served <= 1 {
        return Ok(());
    }
    Err(ServiceError::BadRequest(format!(
        "{what} does not fan out across shards yet: this server answers {served} workspaces as \
         one, and {what} would answer from the first alone; run it on each workspace, or serve \
         one workspace holding every verbatim"
    )))
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

/// The caller's filter resolved against the workspace (see [`crate::store::resolve_filter`]):
/// an unknown field or a value that matches nothing is a [`ServiceError::BadRequest`] whose
/// message names the known fields or values (those in the grant's scope); values match case-
/// and accent-insensitively and are replaced by the stored values. Every operation below that
/// takes a filter runs it through here, so both doors answer the same.
fn resolve_filter(ws: &Workspace, grant: &Grant, filter: &Filter) -> Result<Filter, ServiceError> {
    let scope = grant.restrict(&Filter::default());
    ws.store
        .resolve_filter(filter, &scope)?
        .map_err(|e| ServiceError::BadRequest(e.to_string()))
}

/// A search's result: the hits, or for an aggregates-only caller, counts.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
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

/// What `stats` reports.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// The workspace folder.
    #[schema(value_type = String)]
    pub workspace: std::path::PathBuf,
    /// Store counts (as the grant may see them: [`stats_for`]).
    pub store: crate::store::StoreStats,
    /// The text index: documents, and the store sequence it covers.
    pub text_index: TextCoverage,
    /// The vector index: points, and the store sequence it covers.
    pub vector_index: VectorCoverage,
    /// When several workspaces are served as one (`verbatim serve --workspace A --workspace
    /// B`): each one's counts, the door first. The counts above are then the corpus's: sums
    /// (sequences too), distinct respondents and segment values over the union.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<Vec<ShardStats>>,
}

/// One workspace's counts among several served as one ([`Stats::shards`]).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ShardStats {
    /// The workspace folder.
    #[schema(value_type = String)]
    pub workspace: std::path::PathBuf,
    /// Store counts (as the grant may see them).
    pub store: crate::store::StoreStats,
    /// The text index.
    pub text_index: TextCoverage,
    /// The vector index.
    pub vector_index: VectorCoverage,
}

/// Text index coverage.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TextCoverage {
    /// Documents indexed.
    pub documents: u64,
    /// Store sequence covered.
    pub covered_seq: i64,
}

/// Vector index coverage.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VectorCoverage {
    /// Points in the graph.
    pub points: usize,
    /// Store sequence covered.
    pub covered_seq: i64,
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
fn incident_report(
    ws: &Workspace,
    user: &str,
    since: Option<&str>,
) -> Result<IncidentReport, ServiceError> {
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
    Ok(report)
}
