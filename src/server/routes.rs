//! The routes: one table ([`ROUTES`]) that the router, the OpenAPI document and the tests all
//! read, and thin handlers that parse HTTP into a request, run the library operation on the
//! blocking pool, and turn its answer or error into JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Json, Router};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::{auth, blocking, door, Lane, Shared};
use crate::access::Caller;

/// One route of the API.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path, with `{id}` placeholders (axum and OpenAPI spell them the same).
    pub path: &'static str,
    /// Whether it needs a bearer token.
    pub auth: bool,
}

const fn r(method: &'static str, path: &'static str, auth: bool) -> Route {
    Route { method, path, auth }
}

/// Every route the server answers. The router is built from this table, and the OpenAPI
/// document is checked against it (tests/it/server.rs).
pub const ROUTES: &[Route] = &[
    r("GET", "/v1/health", false),
    r("GET", "/openapi.json", false),
    r("GET", "/v1/stats", true),
    r("POST", "/v1/search", true),
    r("GET", "/v1/themes", true),
    r("GET", "/v1/themes/{id}", true),
    r("POST", "/v1/report", true),
    r("POST", "/v1/ask", true),
    r("POST", "/v1/ingest", true),
    r("GET", "/v1/verbatims/{id}/original", true),
    r("GET", "/v1/audit", true),
    r("GET", "/v1/check", true),
];

/// The handler of a route of [`ROUTES`].
fn handler(route: &Route) -> MethodRouter<Arc<Shared>> {
    match (route.method, route.path) {
        ("GET", "/v1/health") => get(health),
        ("GET", "/openapi.json") => get(openapi),
        ("GET", "/v1/stats") => get(stats),
        ("POST", "/v1/search") => post(search),
        ("GET", "/v1/themes") => get(themes),
        ("GET", "/v1/themes/{id}") => get(theme),
        ("POST", "/v1/report") => post(report),
        ("POST", "/v1/ask") => post(ask),
        ("POST", "/v1/ingest") => post(ingest),
        ("GET", "/v1/verbatims/{id}/original") => get(original),
        ("GET", "/v1/audit") => get(audit),
        ("GET", "/v1/check") => get(check),
        (m, p) => unreachable!("ROUTES lists {m} {p} without a handler"),
    }
}

/// The application: public routes, token-protected routes, JSON 404 / 405.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut public = Router::new();
    let mut private = Router::new();
    for route in ROUTES {
        if route.auth {
            private = private.route(route.path, handler(route));
        } else {
            public = public.route(route.path, handler(route));
        }
    }
    let private = private.route_layer(axum::middleware::from_fn_with_state(
        shared.clone(),
        auth::require,
    ));
    public
        .merge(private)
        .fallback(|| async { ApiError::not_found("no such route (see GET /openapi.json)") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(shared)
}

/// How long a request body may send nothing before the request is refused (400).
const BODY_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads a body of at most `limit` bytes; 413 past it. The excess is drained (up to a bound)
/// before answering, so the client reads the 413 instead of a connection reset.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    const DRAIN_CAP: usize = 16 << 20;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_CAP as u64) {
        return Err(ApiError::too_large(limit));
    }
    let mut body = body;
    let mut buf: Vec<u8> = Vec::new();
    // A client trickling its body holds a task and its socket, never a connection to the
    // store nor a lock (the body is read before the work is queued), but not for ever.
    let stalled = || {
        ApiError::bad_request(format!(
            "reading the body: nothing received for {} s",
            BODY_IDLE.as_secs()
        ))
    };
    while let Some(frame) = tokio::time::timeout(BODY_IDLE, body.frame())
        .await
        .map_err(|_| stalled())?
    {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.len() > limit {
            let mut drained = buf.len() + data.len();
            let drain = async {
                while let Some(Ok(f)) = body.frame().await {
                    drained += f.data_ref().map_or(0, |d| d.len());
                    if drained > DRAIN_CAP {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
            return Err(ApiError::too_large(limit));
        }
        buf.extend_from_slice(&data);
    }
    Ok(Bytes::from(buf))
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// A JSON body (at most `serve.max_body_bytes`; an empty body reads as `{}`), with JSON errors
/// for every way it can be wrong.
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<Shared>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, s: &Arc<Shared>) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        if let Some(ct) = content_type(&parts.headers) {
            if ct != "application/json" && !ct.ends_with("+json") {
                return Err(ApiError::unsupported_media(format!(
                    "expected Content-Type: application/json, got {ct}"
                )));
            }
        }
        let bytes = read_body(&parts.headers, body, s.limits.max_body_bytes).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// The query string as (key, value) pairs, keys repeatable (`field=a&field=b`).
pub(crate) struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or("")).map(QueryPairs)
    }
}

/// `application/x-www-form-urlencoded` pairs, in order (repeated keys kept), by serde_urlencoded.
fn parse_query(q: &str) -> Result<Vec<(String, String)>, ApiError> {
    // serde_urlencoded replaces invalid UTF-8 with U+FFFD; the API refuses it instead. (`&`, `=`
    // and `+` are ASCII, so the whole string decodes to UTF-8 exactly when every part does.)
    if percent_encoding::percent_decode_str(q)
        .decode_utf8()
        .is_err()
    {
        return Err(ApiError::bad_request("the query string is not UTF-8"));
    }
    serde_urlencoded::from_str(q)
        .map_err(|_| ApiError::bad_request("the query string is malformed"))
}

impl QueryPairs {
    /// The last value of `key`.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Refuses keys the route does not know (a typo must not silently widen a query).
    fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => Err(ApiError::bad_request(format!(
                "unknown query parameter {k:?} (known: {})",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::bad_request(format!("{key}={v:?}: not a valid value")))
            })
            .transpose()
    }
}

/// A 400 naming the parameter and its range (the CLI's flags take the same bounds).
fn in_range(name: &str, n: usize, range: std::ops::RangeInclusive<u64>) -> Result<(), ApiError> {
    crate::limits::check(name, n as u64, &range).map_err(ApiError::bad_request)
}

/// A path segment, with a JSON 400 when it does not parse.
pub(crate) struct Id(pub String);

impl axum::extract::FromRequestParts<Arc<Shared>> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &Arc<Shared>,
    ) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, s)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        Ok(Id(id))
    }
}

/// Which verbatims a request looks at: `where` (field → value or values), `since` / `until`
/// (YYYY-MM-DD or RFC 3339), `min_score` / `max_score`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Filter)]
pub(crate) struct FilterBody {
    /// Field → value or values: same field any value, different fields all.
    #[serde(rename = "where", default)]
    pub where_: BTreeMap<String, OneOrMany>,
    /// On or after this day (YYYY-MM-DD or RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    /// Before this day (exclusive).
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub min_score: Option<f64>,
    #[serde(default)]
    pub max_score: Option<f64>,
}

/// `"FR"` or `["FR", "BE"]`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A day parameter, parsed by the library as the CLI parses it (400 with the same message).
fn parse_day(name: &str, s: &str) -> Result<i64, ApiError> {
    crate::store::parse_day(name, s).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The filter as query parameters (what [`FilterBody::from_query`] reads), for the document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct FilterQuery {
    /// Segment filter FIELD=VALUE (URL-encoded); repeat: same field any value, different fields all.
    #[param(rename = "where")]
    where_: Option<String>,
    /// On or after this day (YYYY-MM-DD or RFC 3339).
    since: Option<String>,
    /// Before this day (exclusive).
    until: Option<String>,
    min_score: Option<f64>,
    max_score: Option<f64>,
}

impl FilterBody {
    /// From query parameters: `where=FIELD=VALUE` (repeatable), `since`, `until`, `min_score`,
    /// `max_score`.
    fn from_query(q: &QueryPairs) -> Result<Self, ApiError> {
        let mut f = FilterBody::default();
        for w in q.all("where") {
            let Some((k, v)) = w.split_once('=') else {
                return Err(ApiError::bad_request(format!(
                    "where={w:?}: expected FIELD=VALUE, e.g. where=country%3DFR"
                )));
            };
            match f
                .where_
                .entry(k.trim().to_string())
                .or_insert(OneOrMany::Many(vec![]))
            {
                OneOrMany::Many(vs) => vs.push(v.trim().to_string()),
                OneOrMany::One(_) => unreachable!("only Many is inserted"),
            }
        }
        f.since = q.get("since").map(str::to_string);
        f.until = q.get("until").map(str::to_string);
        f.min_score = q.parse("min_score")?;
        f.max_score = q.parse("max_score")?;
        Ok(f)
    }

    /// The store filter, checked by the library (`FilterParts::parse`, the CLI's too) and
    /// named in its errors by the API's field names.
    pub(crate) fn to_filter(&self) -> Result<crate::store::Filter, ApiError> {
        let fields = self
            .where_
            .iter()
            .map(|(k, v)| {
                let vs = match v {
                    OneOrMany::One(s) => vec![s.clone()],
                    OneOrMany::Many(vs) => vs.clone(),
                };
                (k.clone(), vs)
            })
            .collect();
        let parts = crate::store::FilterParts {
            fields,
            since: self.since.as_deref(),
            until: self.until.as_deref(),
            min_score: self.min_score,
            max_score: self.max_score,
        };
        parts
            .parse(&crate::store::FilterNames::HTTP)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

// ---- handlers ----

#[utoipa::path(get, path = "/v1/health", summary = "Liveness.",
    responses((status = 200, description = "Up.", body = door::Health),
              (status = 429, description = "Rate limited.", body = super::error::ErrorBody)))]
pub(super) async fn health() -> Json<door::Health> {
    Json(door::Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[utoipa::path(get, path = "/openapi.json", summary = "This document.",
    responses((status = 200, description = "OpenAPI 3.1.", body = serde_json::Value)))]
pub(super) async fn openapi() -> Json<Value> {
    Json(super::openapi::document())
}

#[utoipa::path(get, path = "/v1/stats",
    summary = "Workspace counts and index coverage (action: stats).",
    responses((status = 200, description = "Counts.", body = crate::service::Stats)))]
pub(super) async fn stats(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    q: QueryPairs,
) -> Result<Json<crate::service::Stats>, ApiError> {
    q.only(&[])?;
    blocking(&s, Lane::Read, move |ws, sh| {
        door::stats(ws, sh, &caller, "GET /v1/stats")
    })
    .await
    .map(Json)
}

/// `POST /v1/search`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SearchRequest)]
pub(crate) struct SearchBody {
    /// Words or a sentence.
    pub query: String,
    /// Default: the workspace's (`search.mode`, hybrid).
    #[serde(default)]
    pub mode: Option<crate::retrieve::Mode>,
    /// Hits at most (default `search.limit`).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub sentiment: Option<crate::themes::Polarity>,
    /// Every copy of a text as its own hit (default `false`: copies fold into the best-ranked
    /// one, their ids in its `copies`).
    #[serde(default)]
    pub keep_copies: bool,
    #[serde(flatten)]
    pub filter: FilterBody,
}

#[utoipa::path(post, path = "/v1/search",
    summary = "Search verbatims by words, meaning or both (action: search). Aggregates-only roles get counts instead of hits.",
    request_body = SearchBody,
    responses((status = 200, description = "Hits or aggregates.", body = crate::service::SearchResponse),
              (status = 415, description = "Body is not JSON.", body = super::error::ErrorBody)))]
pub(super) async fn search(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<SearchBody>,
) -> Result<Json<crate::service::SearchResponse>, ApiError> {
    if body.query.trim().is_empty() {
        return Err(ApiError::bad_request("query is empty"));
    }
    if let Some(n) = body.limit {
        in_range("limit", n, crate::limits::SEARCH_LIMIT)?;
    }
    // The query is embedded before the workspace lock is taken: searches embed in parallel
    // and only the index lookups queue.
    let memo = match (&s.embedder, body.mode.unwrap_or(s.settings.search().mode)) {
        (Some(e), mode) if mode != crate::retrieve::Mode::Text => {
            let (e, text) = (e.clone(), body.query.clone());
            let v = tokio::task::spawn_blocking(move || {
                crate::embed::Memo::query(&*e, &text).map(|m| m.into_vector())
            })
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
            Some(v)
        }
        _ => None,
    };
    blocking(&s, Lane::Read, move |ws, sh| {
        door::search(ws, sh, &caller, "POST /v1/search", body, memo)
    })
    .await
    .map(Json)
}

#[utoipa::path(get, path = "/v1/themes",
    summary = "The aspect tree (parents, children: verbatims, % of verbatims, % negative, trend), or with by=topic themes with size, share, sentiment, trend (action: themes).",
    params(FilterQuery,
           ("by" = Option<String>, Query, description = "aspect (default): the two-level tree of opinion units, shares of verbatims; topic: one theme per verbatim."),
           ("min_size" = Option<usize>, Query, minimum = 1, description = "Smallest theme shown (default 1, 10 with a filter).")),
    responses((status = 200, description = "The aspect tree, or the topic themes (by=topic).", body = door::ThemesOut)))]
pub(super) async fn themes(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    q: QueryPairs,
) -> Result<Json<door::ThemesOut>, ApiError> {
    q.only(&[
        "where",
        "since",
        "until",
        "min_score",
        "max_score",
        "min_size",
        "by",
    ])?;
    let filter = FilterBody::from_query(&q)?;
    let by: Option<String> = q.parse("by")?;
    match by.as_deref() {
        None | Some("aspect") => {
            return blocking(&s, Lane::Write, move |ws, sh| {
                door::tree(ws, sh, &caller, "GET /v1/themes", filter)
            })
            .await
            .map(Json)
        }
        Some("topic") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "by: {other:?} is not aspect or topic"
            )))
        }
    }
    let min_size: Option<usize> = q.parse("min_size")?;
    if let Some(n) = min_size {
        in_range("min_size", n, crate::limits::MIN_SIZE)?;
    }
    blocking(&s, Lane::Write, move |ws, sh| {
        door::themes(ws, sh, &caller, "GET /v1/themes", filter, min_size)
    })
    .await
    .map(Json)
}

#[utoipa::path(get, path = "/v1/themes/{id}", summary = "One theme with quotes, or one node of the aspect tree with its units (action: themes).",
    params(("id" = String, Path, description = "Theme id: T1, T2… (by topic), P1…/C1… (aspect tree parents and children)", pattern = "^[TPC][0-9]+$"),
           ("quotes" = Option<usize>, Query, minimum = 0, description = "Quotes to include (default 5; none for aggregates-only roles).")),
    responses((status = 200, description = "The theme (T<n>) or the tree node with its units (P<n>, C<n>).", body = door::ThemeOut),
              (status = 404, description = "No such active theme.", body = super::error::ErrorBody)))]
pub(super) async fn theme(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    q: QueryPairs,
) -> Result<Json<door::ThemeOut>, ApiError> {
    q.only(&["quotes"])?;
    if crate::themes::aspect::parse_node_id(&id).is_some() {
        return blocking(&s, Lane::Write, move |ws, sh| {
            door::tree_node(ws, sh, &caller, "GET /v1/themes/{id}", &id)
        })
        .await
        .map(Json);
    }
    let quotes: Option<usize> = q.parse("quotes")?;
    if let Some(n) = quotes {
        in_range("quotes", n, crate::limits::QUOTES)?;
    }
    blocking(&s, Lane::Write, move |ws, sh| {
        door::theme(ws, sh, &caller, "GET /v1/themes/{id}", &id, quotes)
    })
    .await
    .map(Json)
}

/// `POST /v1/report`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReportRequest)]
pub(crate) struct ReportBody {
    /// `json` (default) or `md`.
    #[serde(default)]
    pub format: Option<String>,
    /// `aspect` (default): the report on the aspect tree; `topic`: on the topic themes.
    #[serde(default)]
    pub by: Option<String>,
    #[serde(flatten)]
    pub filter: FilterBody,
}

#[utoipa::path(post, path = "/v1/report", summary = "The theme report as JSON data or Markdown (action: report).",
    params(("format" = Option<String>, Query, description = "json (default) or md; overrides the body's."),
           ("by" = Option<String>, Query, description = "aspect (default): the aspect tree; topic: the topic themes; overrides the body's.")),
    request_body(content = Option<ReportBody>, description = "Optional: an empty body reads as {}."),
    responses((status = 200, description = "The report.",
               content((crate::themes::Report = "application/json"), (String = "text/markdown"))),
              (status = 415, description = "Body is not JSON.", body = super::error::ErrorBody)))]
pub(super) async fn report(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    q: QueryPairs,
    JsonBody(mut body): JsonBody<ReportBody>,
) -> Result<Response, ApiError> {
    q.only(&["format", "by"])?;
    if let Some(f) = q.get("format") {
        body.format = Some(f.to_string());
    }
    if let Some(b) = q.get("by") {
        body.by = Some(b.to_string());
    }
    let markdown = match body.format.as_deref() {
        None | Some("json") => false,
        Some("md") | Some("markdown") => true,
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "format {f:?}: use json or md"
            )))
        }
    };
    let out = blocking(&s, Lane::Write, move |ws, sh| {
        door::report(ws, sh, &caller, "POST /v1/report", body, markdown)
    })
    .await?;
    Ok(match out {
        door::ReportOut::Json(v) => Json(*v).into_response(),
        door::ReportOut::Markdown(md) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            md,
        )
            .into_response(),
    })
}

/// `POST /v1/ask`: the fields of `verbatim ask`'s flags, the same ranges; what is left out
/// comes from the server's resolved settings (`[ask]` in verbatim.toml, defaults). There is no
/// `generator`: which model file the server loads is the operator's choice, not a caller's.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AskRequest)]
pub(crate) struct AskBody {
    /// The question.
    pub question: String,
    /// Answer from the verbatims only (no generator model), grouped by theme.
    #[serde(default)]
    pub extractive: bool,
    /// Verbatims quoted and listed as sources at most (default `ask.context_verbatims`).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// Most tokens in the answer (default `ask.max_tokens`).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 32768)]
    pub max_tokens: Option<usize>,
    /// Sampling temperature, 0 (greedy, the default) to 2.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    /// Sampling seed (default `ask.seed`).
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(flatten)]
    pub filter: FilterBody,
}

#[utoipa::path(post, path = "/v1/ask", summary = "A cited answer from a local model, or counts from the store (action: ask).",
    request_body = AskBody,
    responses((status = 200, description = "The answer with its sources.", body = crate::ask::Answer),
              (status = 415, description = "Body is not JSON.", body = super::error::ErrorBody)))]
pub(super) async fn ask(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<AskBody>,
) -> Result<Json<crate::ask::Answer>, ApiError> {
    if body.question.trim().is_empty() {
        return Err(ApiError::bad_request("question is empty"));
    }
    if let Some(n) = body.limit {
        in_range("limit", n, crate::limits::ASK_LIMIT)?;
    }
    if let Some(n) = body.max_tokens {
        in_range("max_tokens", n, crate::limits::MAX_TOKENS)?;
    }
    if let Some(t) = body.temperature {
        crate::limits::check_f64("temperature", t, &crate::limits::TEMPERATURE)
            .map_err(ApiError::bad_request)?;
    }
    blocking(&s, Lane::Ask, move |ws, sh| {
        door::ask(ws, sh, &caller, "POST /v1/ask", body)
    })
    .await
    .map(Json)
}

/// The column mapping of an upload (the CLI's `ingest` flags).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Mapping)]
pub(crate) struct MappingBody {
    #[serde(default)]
    pub text: Vec<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub respondent: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub date_format: Option<String>,
    #[serde(default)]
    pub score: Option<String>,
    #[serde(default, rename = "field")]
    pub fields: Vec<String>,
    #[serde(default)]
    pub language: Option<String>,
}

impl MappingBody {
    fn is_empty(&self) -> bool {
        self.text.is_empty()
            && self.id.is_none()
            && self.respondent.is_none()
            && self.date.is_none()
            && self.score.is_none()
            && self.fields.is_empty()
            && self.language.is_none()
    }
}

/// `POST /v1/ingest` as a JSON envelope.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngestEnvelope {
    /// `csv` or `jsonl`.
    pub format: String,
    /// The file's content.
    pub data: String,
    /// A file name for the run's record and row errors (default `upload.csv` / `.jsonl`).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub mapping: Option<MappingBody>,
    #[serde(default)]
    pub keep_original: Option<bool>,
}

/// An upload, ready for the library.
#[derive(Debug)]
pub(crate) struct Upload {
    pub format: crate::ingest::Format,
    pub name: String,
    pub data: Bytes,
    pub mapping: Option<crate::ingest::Mapping>,
    pub keep_originals: Option<bool>,
}

fn ingest_format(f: &str) -> Result<crate::ingest::Format, ApiError> {
    match f {
        "csv" | "text/csv" => Ok(crate::ingest::Format::Csv),
        "jsonl"
        | "ndjson"
        | "application/x-ndjson"
        | "application/jsonl"
        | "application/jsonlines" => Ok(crate::ingest::Format::Jsonl),
        other => Err(ApiError::bad_request(format!(
            "format {other:?}: the API takes csv or jsonl uploads"
        ))),
    }
}

fn mapping_of(m: MappingBody) -> Result<Option<crate::ingest::Mapping>, ApiError> {
    if m.is_empty() {
        // Only a date format: the workspace's mapping with it (as the CLI does).
        return Ok(m.date_format.map(|f| crate::ingest::Mapping {
            date_format: Some(f),
            ..Default::default()
        }));
    }
    if m.text.is_empty() {
        return Err(ApiError::bad_request(
            "text is required when giving a column mapping (it names the feedback text column)",
        ));
    }
    Ok(Some(crate::ingest::Mapping {
        text: m.text,
        id: m.id,
        respondent: m.respondent,
        date: m.date,
        date_format: m.date_format,
        score: m.score,
        fields: m.fields,
        language: m.language,
        ..Default::default()
    }))
}

/// The mapping as query parameters (`INGEST_PARAMS`), for the document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct IngestQuery {
    /// csv or jsonl (else from Content-Type: text/csv, application/x-ndjson).
    format: Option<String>,
    /// File name recorded for the run and in row errors.
    name: Option<String>,
    /// Text column; repeat to join several.
    text: Option<Vec<String>>,
    /// Id column (else a content hash of the text).
    id: Option<String>,
    /// Respondent column (pseudonymised).
    respondent: Option<String>,
    /// Date column.
    date: Option<String>,
    /// Force a date format (strftime).
    date_format: Option<String>,
    /// Score column.
    score: Option<String>,
    /// Segment column; repeatable.
    field: Option<Vec<String>>,
    /// Language column.
    language: Option<String>,
    /// Keep the sealed original (default: the workspace's setting).
    keep_original: Option<bool>,
}

const INGEST_PARAMS: &[&str] = &[
    "format",
    "name",
    "text",
    "id",
    "respondent",
    "date",
    "date_format",
    "score",
    "field",
    "language",
    "keep_original",
];

#[utoipa::path(post, path = "/v1/ingest",
    summary = "Ingest a CSV or JSON Lines upload (action: write). Acknowledged only once durable in the store; row errors are reported, not fatal.",
    params(IngestQuery),
    request_body(content((String = "text/csv"), (String = "application/x-ndjson"), (IngestEnvelope = "application/json"))),
    responses((status = 200, description = "What was stored.", body = door::IngestOut),
              (status = 409, description = "Another process is writing to the workspace.", body = super::error::ErrorBody)))]
pub(super) async fn ingest(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    q: QueryPairs,
    req: Request,
) -> Result<Json<door::IngestOut>, ApiError> {
    let (parts, body) = req.into_parts();
    let ct = content_type(&parts.headers);
    let data = read_body(&parts.headers, body, s.limits.max_ingest_bytes).await?;
    let upload = if ct.as_deref() == Some("application/json") {
        q.only(&[])?;
        let env: IngestEnvelope = parse_json(&data)?;
        let format = ingest_format(&env.format)?;
        Upload {
            format,
            name: env.name.unwrap_or_else(|| default_name(format)),
            data: Bytes::from(env.data.into_bytes()),
            mapping: mapping_of(env.mapping.unwrap_or_default())?,
            keep_originals: env.keep_original,
        }
    } else {
        q.only(INGEST_PARAMS)?;
        let format = match (q.get("format"), ct.as_deref()) {
            (Some(f), _) => ingest_format(f)?,
            (None, Some(c)) if c != "application/octet-stream" && c != "text/plain" => {
                ingest_format(c)?
            }
            _ => {
                return Err(ApiError::bad_request(
                    "say what the body is: ?format=csv|jsonl or Content-Type: text/csv / application/x-ndjson",
                ))
            }
        };
        let m = MappingBody {
            text: q.all("text"),
            id: q.get("id").map(str::to_string),
            respondent: q.get("respondent").map(str::to_string),
            date: q.get("date").map(str::to_string),
            date_format: q.get("date_format").map(str::to_string),
            score: q.get("score").map(str::to_string),
            fields: q.all("field"),
            language: q.get("language").map(str::to_string),
        };
        Upload {
            format,
            name: q
                .get("name")
                .map(str::to_string)
                .unwrap_or_else(|| default_name(format)),
            data,
            mapping: mapping_of(m)?,
            keep_originals: q.parse("keep_original")?,
        }
    };
    if upload.data.is_empty() {
        return Err(ApiError::bad_request("the upload is empty"));
    }
    blocking(&s, Lane::Write, move |ws, sh| {
        door::ingest(ws, sh, &caller, "POST /v1/ingest", upload)
    })
    .await
    .map(Json)
}

fn default_name(f: crate::ingest::Format) -> String {
    match f {
        crate::ingest::Format::Jsonl => "upload.jsonl".into(),
        _ => "upload.csv".into(),
    }
}

#[utoipa::path(get, path = "/v1/verbatims/{id}/original",
    summary = "The sealed original (unredacted) row of one verbatim; every read is logged (action: reveal).",
    params(("id" = String, Path, description = "Verbatim id.")),
    responses((status = 200, description = "The original.", body = crate::workspace::privacy::Revealed),
              (status = 404, description = "No such verbatim.", body = super::error::ErrorBody)))]
pub(super) async fn original(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    q: QueryPairs,
) -> Result<Json<crate::workspace::privacy::Revealed>, ApiError> {
    q.only(&[])?;
    blocking(&s, Lane::Read, move |ws, sh| {
        door::original(ws, sh, &caller, "GET /v1/verbatims/{id}/original", &id)
    })
    .await
    .map(Json)
}

#[utoipa::path(get, path = "/v1/audit", summary = "The audit trail, oldest first (action: audit, admin).",
    params(("user" = Option<String>, Query, description = "Only this caller."),
           ("since" = Option<String>, Query, description = "Only entries on or after this day.")),
    responses((status = 200, description = "Entries.", body = door::AuditList)))]
pub(super) async fn audit(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    q: QueryPairs,
) -> Result<Json<door::AuditList>, ApiError> {
    q.only(&["user", "since"])?;
    let user = q.get("user").map(str::to_string);
    // The trail's times are `YYYY-MM-DDTHH:MM:SSZ`, compared as text.
    let since = q
        .get("since")
        .map(|s| parse_day("since", s))
        .transpose()?
        .map(crate::store::audit_time);
    blocking(&s, Lane::Read, move |ws, sh| {
        door::audit(ws, sh, &caller, "GET /v1/audit", user, since)
    })
    .await
    .map(Json)
}

#[utoipa::path(get, path = "/v1/check",
    summary = "Verify the store, both indexes and the audit chain at rest (action: audit, admin). Damage is the report's content (`clean: false`), not an error.",
    responses((status = 200, description = "What was found.", body = crate::service::CheckReport)))]
pub(super) async fn check(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    q: QueryPairs,
) -> Result<Json<crate::service::CheckReport>, ApiError> {
    q.only(&[])?;
    blocking(&s, Lane::Write, move |ws, sh| {
        door::check_integrity(ws, sh, &caller, "GET /v1/check")
    })
    .await
    .map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decode_and_repeat() {
        let q = QueryPairs(parse_query("text=a+b&field=country&field=pro%64uct&x").unwrap());
        assert_eq!(q.all("text"), vec!["a b"]);
        assert_eq!(q.all("field"), vec!["country", "product"]);
        assert_eq!(q.get("x"), Some(""));
        assert!(q.only(&["text", "field"]).is_err());
        // Empty pairs are skipped, `=` inside a value and encoded `&` are kept, bad UTF-8 refused.
        let q = QueryPairs(parse_query("&a=1=2&&b=%26%3D&c=%C3%A9t%C3%A9+x&").unwrap());
        assert_eq!(q.0.len(), 3);
        assert_eq!(q.get("a"), Some("1=2"));
        assert_eq!(q.get("b"), Some("&="));
        assert_eq!(q.get("c"), Some("été x"));
        assert!(parse_query("text=%FF").is_err());
        assert!(parse_query("text=%C3&x=%A9").is_err());
    }

    #[test]
    fn filter_from_query() {
        let q = QueryPairs(
            parse_query("where=country%3DFR&where=country%3DBE&since=2024-03-01").unwrap(),
        );
        let f = FilterBody::from_query(&q).unwrap().to_filter().unwrap();
        assert_eq!(f.fields["country"], vec!["FR", "BE"]);
        assert_eq!(f.since, Some(1_709_251_200));
    }
}
