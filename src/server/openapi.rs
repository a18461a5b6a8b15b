//! The OpenAPI 3.1 description of the API, served at `GET /openapi.json` without a token.
//!
//! Hand-written (no derive machinery in the tree): every route of [`super::ROUTES`] is here
//! with its parameters, request body, responses and security, and a test fails when a route is
//! added without its entry.

use serde_json::{json, Value};

fn err(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn obj() -> Value {
    json!({ "type": "object", "additionalProperties": true })
}

/// The errors every authenticated route can return.
fn errors(mut responses: Value, extra: &[(&str, &str)]) -> Value {
    let map = responses.as_object_mut().expect("responses object");
    for (code, what) in [
        (
            "400",
            "Malformed request (bad JSON, unknown parameter, bad value).",
        ),
        (
            "401",
            "No token, an unknown one, or one revoked or expired.",
        ),
        ("403", "The caller's role does not allow this action."),
        ("413", "Body larger than the route allows."),
        (
            "429",
            "The token's rate limit is exhausted; see Retry-After.",
        ),
        ("500", "Internal error (details in the server log)."),
    ]
    .iter()
    .chain(extra)
    {
        map.insert((*code).to_string(), err(what));
    }
    responses
}

fn filter_params() -> Vec<Value> {
    vec![
        json!({ "name": "where", "in": "query", "description": "Segment filter FIELD=VALUE (URL-encoded); repeat: same field any value, different fields all.", "schema": { "type": "string" } }),
        json!({ "name": "since", "in": "query", "description": "On or after this day (YYYY-MM-DD or RFC 3339).", "schema": { "type": "string" } }),
        json!({ "name": "until", "in": "query", "description": "Before this day (exclusive).", "schema": { "type": "string" } }),
        json!({ "name": "min_score", "in": "query", "schema": { "type": "number" } }),
        json!({ "name": "max_score", "in": "query", "schema": { "type": "number" } }),
    ]
}

fn body(schema: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

/// The document.
pub fn document() -> Value {
    let secured = json!([{ "bearer": [] }]);
    let mut themes_params = filter_params();
    themes_params.push(json!({ "name": "by", "in": "query", "description": "aspect (default): the two-level tree of opinion units, shares of verbatims; topic: one theme per verbatim.", "schema": { "type": "string", "enum": ["aspect", "topic"] } }));
    themes_params.push(json!({ "name": "min_size", "in": "query", "description": "Smallest theme shown (default 1, 10 with a filter).", "schema": { "type": "integer", "minimum": 1 } }));
    let mapping_params: Vec<Value> = [
        ("format", "csv or jsonl (else from Content-Type: text/csv, application/x-ndjson)."),
        ("name", "File name recorded for the run and in row errors."),
        ("text", "Text column; repeat to join several."),
        ("id", "Id column (else a content hash of the text)."),
        ("respondent", "Respondent column (pseudonymised)."),
        ("date", "Date column."),
        ("date_format", "Force a date format (strftime)."),
        ("score", "Score column."),
        ("field", "Segment column; repeatable."),
        ("language", "Language column."),
        ("keep_original", "true / false: keep the sealed original (default: the workspace's setting)."),
    ]
    .iter()
    .map(|(n, d)| json!({ "name": n, "in": "query", "description": d, "schema": { "type": "string" } }))
    .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "verbatim",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted analysis of customer feedback. Every route but /v1/health and /openapi.json needs `Authorization: Bearer <token>` (`verbatim user add NAME --role ROLE` prints one). What a caller may see is decided by its role, exactly as on the command line, and every read is written to the audit trail with the route.",
        },
        "servers": [{ "url": "/" }],
        "security": secured,
        "paths": {
            "/v1/health": { "get": {
                "summary": "Liveness.", "security": [],
                "responses": {
                    "200": ok("Up.", json!({ "type": "object", "required": ["status", "version"], "properties": { "status": { "const": "ok" }, "version": { "type": "string" } } })),
                    "429": err("Rate limited."),
                }
            }},
            "/openapi.json": { "get": {
                "summary": "This document.", "security": [],
                "responses": { "200": ok("OpenAPI 3.1.", obj()) }
            }},
            "/v1/stats": { "get": {
                "summary": "Workspace counts and index coverage (action: stats).",
                "responses": errors(json!({ "200": ok("Counts.", json!({ "$ref": "#/components/schemas/Stats" })) }), &[])
            }},
            "/v1/search": { "post": {
                "summary": "Search verbatims by words, meaning or both (action: search). Aggregates-only roles get counts instead of hits.",
                "requestBody": body("SearchRequest"),
                "responses": errors(json!({ "200": ok("Hits or aggregates.", json!({ "$ref": "#/components/schemas/SearchResponse" })) }), &[("415", "Body is not JSON.")])
            }},
            "/v1/themes": { "get": {
                "summary": "The aspect tree (parents, children: verbatims, % of verbatims, % negative, trend), or with by=topic themes with size, share, sentiment, trend (action: themes).",
                "parameters": themes_params,
                "responses": errors(json!({ "200": ok("Theme summary.", json!({ "$ref": "#/components/schemas/ThemeList" })) }), &[])
            }},
            "/v1/themes/{id}": { "get": {
                "summary": "One tree node (P3, C12) with its units, or one topic theme (T3) with quotes (action: themes).",
                "parameters": [
                    { "name": "id", "in": "path", "required": true, "description": "A tree node (P1, C2…) or a topic theme (T1…)", "schema": { "type": "string", "pattern": "^[TPC][0-9]+$" } },
                    { "name": "quotes", "in": "query", "description": "Quotes to include (default 5; none for aggregates-only roles).", "schema": { "type": "integer", "minimum": 0 } },
                ],
                "responses": errors(json!({ "200": ok("The theme.", json!({ "$ref": "#/components/schemas/Theme" })) }), &[("404", "No such active theme.")])
            }},
            "/v1/report": { "post": {
                "summary": "The theme report as JSON data or Markdown (action: report).",
                "parameters": [{ "name": "format", "in": "query", "description": "json (default) or md; overrides the body's.", "schema": { "type": "string", "enum": ["json", "md"] } }],
                "requestBody": { "required": false, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ReportRequest" } } } },
                "responses": errors(json!({ "200": {
                    "description": "The report.",
                    "content": {
                        "application/json": { "schema": obj() },
                        "text/markdown": { "schema": { "type": "string" } },
                    }
                } }), &[("415", "Body is not JSON.")])
            }},
            "/v1/ask": { "post": {
                "summary": "A cited answer from a local model, or counts from the store (action: ask).",
                "requestBody": body("AskRequest"),
                "responses": errors(json!({ "200": ok("The answer with its sources.", json!({ "$ref": "#/components/schemas/Answer" })) }), &[("415", "Body is not JSON.")])
            }},
            "/v1/ingest": { "post": {
                "summary": "Ingest a CSV or JSON Lines upload (action: write). Acknowledged only once durable in the store; row errors are reported, not fatal.",
                "parameters": mapping_params,
                "requestBody": { "required": true, "content": {
                    "text/csv": { "schema": { "type": "string" } },
                    "application/x-ndjson": { "schema": { "type": "string" } },
                    "application/json": { "schema": { "$ref": "#/components/schemas/IngestEnvelope" } },
                } },
                "responses": errors(json!({ "200": ok("What was stored.", json!({ "$ref": "#/components/schemas/IngestSummary" })) }), &[("409", "Another process is writing to the workspace.")])
            }},
            "/v1/verbatims/{id}/original": { "get": {
                "summary": "The sealed original (unredacted) row of one verbatim; every read is logged (action: reveal).",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": errors(json!({ "200": ok("The original.", json!({ "$ref": "#/components/schemas/Original" })) }), &[("404", "No such verbatim.")])
            }},
            "/v1/audit": { "get": {
                "summary": "The audit trail, oldest first (action: audit, admin).",
                "parameters": [
                    { "name": "user", "in": "query", "description": "Only this caller.", "schema": { "type": "string" } },
                    { "name": "since", "in": "query", "description": "Only entries on or after this day.", "schema": { "type": "string" } },
                ],
                "responses": errors(json!({ "200": ok("Entries.", json!({ "type": "object", "required": ["entries"], "properties": { "entries": { "type": "array", "items": { "$ref": "#/components/schemas/AuditEntry" } } } })) }), &[])
            }},
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "vbt_<id>_<secret>", "description": "A token from `verbatim user add` / `verbatim grant add`." }
            },
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": {
                        "code": { "type": "string", "enum": ["bad_request", "unauthenticated", "forbidden", "not_found", "method_not_allowed", "conflict", "payload_too_large", "unsupported_media_type", "rate_limited", "internal", "unavailable"] },
                        "message": { "type": "string" },
                    } } }
                },
                "Filter": {
                    "type": "object",
                    "properties": {
                        "where": { "type": "object", "description": "field → value or values", "additionalProperties": { "oneOf": [{ "type": "string" }, { "type": "array", "items": { "type": "string" } }] } },
                        "since": { "type": "string", "description": "YYYY-MM-DD or RFC 3339, inclusive" },
                        "until": { "type": "string", "description": "exclusive" },
                        "min_score": { "type": "number" },
                        "max_score": { "type": "number" },
                    }
                },
                "SearchRequest": { "allOf": [{ "$ref": "#/components/schemas/Filter" }, {
                    "type": "object", "required": ["query"],
                    "properties": {
                        "query": { "type": "string" },
                        "mode": { "type": "string", "enum": ["text", "vector", "hybrid"], "description": "default: the workspace's (hybrid)" },
                        "limit": { "type": "integer", "minimum": 1, "maximum": 1000 },
                        "sentiment": { "type": "string", "enum": ["negative", "neutral", "positive"], "description": "only verbatims of this sentiment (the themes' reading)" },
                    }
                }]},
                "SearchResponse": {
                    "type": "object", "required": ["query"],
                    "properties": {
                        "query": obj(),
                        "hits": { "type": "array", "items": { "$ref": "#/components/schemas/Hit" } },
                        "aggregate": obj(),
                    }
                },
                "Hit": {
                    "type": "object", "required": ["rank", "score", "verbatim"],
                    "properties": {
                        "rank": { "type": "integer" }, "score": { "type": "number" },
                        "bm25": { "type": "number" }, "cosine": { "type": "number" },
                        "verbatim": { "type": "object", "required": ["id", "text"], "properties": { "id": { "type": "string" }, "text": { "type": "string", "description": "redacted" } }, "additionalProperties": true },
                    }
                },
                "Stats": { "type": "object", "required": ["store"], "properties": { "store": obj(), "text_index": obj(), "vector_index": obj() }, "additionalProperties": true },
                "ThemeList": { "type": "object", "properties": { "themes": { "type": "array", "items": { "$ref": "#/components/schemas/Theme" } }, "verbatims": { "type": "integer" }, "other": { "type": "integer" } }, "additionalProperties": true },
                "Theme": { "type": "object", "required": ["id", "label"], "properties": { "id": { "type": "string" }, "label": { "type": "string" }, "size": { "type": "integer" }, "share": { "type": "number" }, "quotes": { "type": "array", "items": obj() } }, "additionalProperties": true },
                "ReportRequest": { "allOf": [{ "$ref": "#/components/schemas/Filter" }, { "type": "object", "properties": { "format": { "type": "string", "enum": ["json", "md"] } } }] },
                "AskRequest": { "allOf": [{ "$ref": "#/components/schemas/Filter" }, { "type": "object", "required": ["question"], "properties": { "question": { "type": "string" } } }] },
                "Answer": { "type": "object", "properties": { "mode": { "type": "string" }, "text": { "type": "string" }, "sources": { "type": "array", "items": obj() }, "cited": { "type": "array", "items": { "type": "integer" } } }, "additionalProperties": true },
                "IngestEnvelope": {
                    "type": "object", "required": ["format", "data"],
                    "properties": {
                        "format": { "type": "string", "enum": ["csv", "jsonl"] },
                        "data": { "type": "string", "description": "the file's content" },
                        "name": { "type": "string" },
                        "mapping": { "type": "object", "properties": {
                            "text": { "type": "array", "items": { "type": "string" } },
                            "id": { "type": "string" }, "respondent": { "type": "string" }, "date": { "type": "string" },
                            "date_format": { "type": "string" }, "score": { "type": "string" },
                            "field": { "type": "array", "items": { "type": "string" } }, "language": { "type": "string" },
                        } },
                        "keep_original": { "type": "boolean" },
                    }
                },
                "IngestSummary": {
                    "type": "object", "required": ["rows", "stored", "unchanged", "updated", "rejected", "errors"],
                    "properties": {
                        "file": { "type": "string" }, "rows": { "type": "integer" }, "stored": { "type": "integer" },
                        "unchanged": { "type": "integer" }, "updated": { "type": "integer" }, "rejected": { "type": "integer" },
                        "errors": { "type": "array", "items": { "type": "string" }, "description": "file:line: reason (redacted)" },
                        "warnings": { "type": "array", "items": { "type": "string" } },
                    },
                    "additionalProperties": true
                },
                "Original": { "type": "object", "required": ["id", "redacted"], "properties": { "id": { "type": "string" }, "original": { "type": ["object", "null"] }, "redacted": { "type": "string" } } },
                "AuditEntry": { "type": "object", "required": ["seq", "at", "caller", "action", "detail", "ids", "theme_ids"], "properties": { "seq": { "type": "integer" }, "at": { "type": "string" }, "caller": { "type": "string" }, "action": { "type": "string" }, "detail": { "type": "object", "description": "Typed by `kind` (search, report, erasure…); entries from before schema v6: `{\"legacy\": …}`." }, "ids": { "type": "array", "items": { "type": "string" }, "description": "Verbatim ids, exact." }, "theme_ids": { "type": "array", "items": { "type": "string" } } }, "additionalProperties": true },
            }
        }
    })
}
