//! The session's operations through both doors, on a real workspace with the tiny
//! deterministic embedder.

use std::sync::Arc;

use super::*;
use crate::access::Caller;
use crate::embed::HashEmbedder;
use crate::ingest::Mapping;
use crate::retrieve::Mode;
use crate::store::AuditDetail;
use crate::workspace::ingest::{IngestOptions, Source};

const CSV: &[u8] =
    b"id,comment\nA1,The parcel arrived two weeks late\nA2,\nA3,Great support and a quick refund\n";

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
    assert_eq!(http.kind(), ErrorKind::BadRequest);
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
    assert_eq!(e.kind(), ErrorKind::Denied, "{e}");
    assert_eq!(ws.store.audit_entries().unwrap().len(), n);
    assert_eq!(ws.store.count(&Filter::default()).unwrap(), 0);
}

#[test]
fn a_search_without_mode_or_limit_takes_them_from_the_resolved_settings() {
    let dir = tempfile::tempdir().unwrap();
    let mut ws = Workspace::init(dir.path()).unwrap();
    let (with, defaults) = (models(), Settings::default());
    Session::new(&mut ws, Caller::Owner, Via::cli("ingest"), &with, &defaults)
        .ingest(upload("m.csv", Some(mapping())))
        .unwrap();
    let env = crate::settings::EnvLayer::from_lookup(|name| match name {
        "VERBATIM_SEARCH_MODE" => Some("text".into()),
        "VERBATIM_SEARCH_LIMIT" => Some("1".into()),
        _ => None,
    });
    let resolved =
        crate::settings::Settings::resolve(&crate::settings::Overrides::default(), &env, None)
            .unwrap();
    let settings = Settings::from_resolved(&resolved, AskSettings::default());
    assert_eq!(settings.search.mode, Mode::Text);
    assert_eq!(settings.search.limit, 1);
    let without = Models::loaded(None, None);
    let req = || SearchRequest {
        text: "parcel refund".into(),
        ..SearchRequest::default()
    };
    // The default mode (hybrid) needs the model, which is not there; the settings' text does not.
    assert!(Session::new(
        &mut ws,
        Caller::Owner,
        Via::cli("search"),
        &without,
        &defaults
    )
    .search(req())
    .is_err());
    let r = Session::new(
        &mut ws,
        Caller::Owner,
        Via::cli("search"),
        &without,
        &settings,
    )
    .search(req())
    .unwrap();
    assert_eq!(r.hits.unwrap().len(), 1);
}
