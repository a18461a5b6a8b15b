//! The session's operations through both doors, on a real workspace with the tiny
//! deterministic embedder.

use std::sync::Arc;

use super::*;
use crate::access::Caller;
use crate::embed::{Embedder, HashEmbedder};
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

/// What every test here starts from: a new workspace in a temporary folder, the hashing
/// embedder (no model folder, so no sentiment head), the default settings.
struct Fixture {
    dir: tempfile::TempDir,
    ws: Workspace,
    models: Models<'static>,
    settings: Settings,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::init(dir.path()).unwrap();
        Fixture {
            dir,
            ws,
            models: Models::loaded(None, Some(Arc::new(HashEmbedder::new()))),
            settings: Settings::default(),
        }
    }

    /// With [`CSV`] ingested by the owner (A1 and A3 stored, A2 rejected).
    fn ingested() -> Fixture {
        let mut f = Fixture::new();
        f.session(Via::cli("ingest"))
            .ingest(upload("m.csv", Some(mapping())))
            .unwrap();
        f
    }

    /// The owner's session, come in by `via`.
    fn session(&mut self, via: Via) -> Session<'_> {
        Session::new(
            &mut self.ws,
            Caller::Owner,
            via,
            &self.models,
            &self.settings,
        )
    }

    /// The owner's session with other models or settings.
    fn session_with<'a>(
        &'a mut self,
        via: Via,
        models: &'a Models<'a>,
        settings: &'a Settings,
    ) -> Session<'a> {
        Session::new(&mut self.ws, Caller::Owner, via, models, settings)
    }

    /// The last entry of the audit trail.
    fn last_entry(&self) -> crate::store::AuditEntry {
        self.ws.store.audit_entries().unwrap().pop().unwrap()
    }
}

/// Settings resolved from these `VERBATIM_*` variables and flags (no file).
fn resolved(vars: &[(&str, &str)], flags: crate::settings::Overrides) -> Settings {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = crate::settings::EnvLayer::from_lookup(|name| {
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    });
    let r = crate::settings::Settings::resolve(&flags, &env, None).unwrap();
    Settings::from_resolved(&r, AskSettings::default())
}

#[test]
fn an_upload_is_ingested_from_memory_named_in_row_errors_and_recorded_by_route() {
    let mut f = Fixture::new();
    let before: Vec<_> = std::fs::read_dir(f.dir.path()).unwrap().collect();
    let s = f
        .session(Via::http("POST /v1/ingest"))
        .ingest(upload("march.csv", Some(mapping())))
        .unwrap();
    assert_eq!((s.stored, s.rejected), (2, 1));
    assert!(s.errors[0].starts_with("march.csv:3:"), "{:?}", s.errors);
    // Nothing was written beside the store and the indexes (no temporary copy).
    let after: Vec<String> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(after.len() <= before.len() + 1, "{after:?}");
    assert!(!after.iter().any(|f| f.contains("upload")), "{after:?}");
    let last = f.last_entry();
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
    // No `text`-like column, so no mapping can be guessed.
    let mut f = Fixture::new();
    let req = || IngestRequest {
        source: Source::Bytes {
            name: "up.csv",
            bytes: b"a,b\n1,2\n",
        },
        ..upload("up.csv", None)
    };
    let http = f
        .session(Via::http("POST /v1/ingest"))
        .ingest(req())
        .unwrap_err();
    let cli = f.session(Via::cli("ingest")).ingest(req()).unwrap_err();
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
    let mut f = Fixture::ingested();
    let (without, settings) = (Models::loaded(None, None), Settings::default());
    let req = || SearchRequest {
        text: "parcel".into(),
        mode: Some(Mode::Vector),
        ..SearchRequest::default()
    };
    let http = f
        .session_with(Via::http("POST /v1/search"), &without, &settings)
        .search(req())
        .unwrap_err()
        .to_string();
    let cli = f
        .session_with(Via::cli("search"), &without, &settings)
        .search(req())
        .unwrap_err()
        .to_string();
    assert!(http.contains("use \"mode\": \"text\""), "{http}");
    assert!(!http.contains("--mode"), "{http}");
    assert!(cli.contains("use --mode text"), "{cli}");
    // Text search needs no model, and is recorded under the route.
    let r = f
        .session_with(Via::http("POST /v1/search"), &without, &settings)
        .search(SearchRequest {
            text: "parcel".into(),
            mode: Some(Mode::Text),
            ..SearchRequest::default()
        })
        .unwrap();
    assert_eq!(r.hits.unwrap()[0].verbatim.id, "A1");
    let last = f.last_entry();
    assert_eq!(last.action, "POST /v1/search");
    assert_eq!(last.ids, vec!["A1".to_string()]);
}

#[test]
fn writes_made_through_the_session_are_recorded_and_refused_without_the_role() {
    let mut f = Fixture::new();
    let r = f.session(Via::cli("reindex")).reindex(None, None).unwrap();
    assert_eq!(r.text, 0);
    let last = f.last_entry();
    assert_eq!(last.action, "reindex");
    assert!(
        matches!(last.typed(), Some(AuditDetail::Reindex { .. })),
        "{last:?}"
    );
    // An analyst may search but not write: refused before anything is done, nothing recorded.
    let analyst =
        f.ws.add_principal(
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
    let caller = f.ws.authenticate(&analyst.token).unwrap();
    let n = f.ws.store.audit_entries().unwrap().len();
    let e = Session::new(
        &mut f.ws,
        caller,
        Via::cli("ingest"),
        &f.models,
        &f.settings,
    )
    .ingest(upload("m.csv", Some(mapping())))
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Denied, "{e}");
    assert_eq!(f.ws.store.audit_entries().unwrap().len(), n);
    assert_eq!(f.ws.store.count(&Filter::default()).unwrap(), 0);
}

#[test]
fn a_search_without_mode_or_limit_takes_them_from_the_resolved_settings() {
    let mut f = Fixture::ingested();
    let settings = resolved(
        &[
            ("VERBATIM_SEARCH_MODE", "text"),
            ("VERBATIM_SEARCH_LIMIT", "1"),
        ],
        Default::default(),
    );
    assert_eq!(settings.search().mode, Mode::Text);
    assert_eq!(settings.search().limit, 1);
    let (without, defaults) = (Models::loaded(None, None), Settings::default());
    let req = || SearchRequest {
        text: "parcel refund".into(),
        ..SearchRequest::default()
    };
    // The default mode (hybrid) needs the model, which is not there; the settings' text does not.
    assert!(f
        .session_with(Via::cli("search"), &without, &defaults)
        .search(req())
        .is_err());
    let r = f
        .session_with(Via::cli("search"), &without, &settings)
        .search(req())
        .unwrap();
    assert_eq!(r.hits.unwrap().len(), 1);
}

#[test]
fn an_ask_without_a_limit_takes_it_from_the_resolved_settings_not_the_file() {
    let mut f = Fixture::ingested();
    // verbatim.toml says 8 verbatims of context (the default); the flag says 1.
    assert_eq!(f.ws.config.ask.context_verbatims, 8);
    let one = resolved(
        &[],
        crate::settings::Overrides {
            context_verbatims: Some(1),
            ..Default::default()
        },
    );
    // The limit the question runs with (`ask` builds its options with `ask_options`; the
    // evidence of a why-question then retrieves at least `AskOptions::evidence_verbatims`).
    let limit = |f: &mut Fixture, settings: &Settings| {
        let models = Models::loaded(None, Some(Arc::new(HashEmbedder::new())));
        let s = f.session_with(Via::cli("ask"), &models, settings);
        let grant = s.enter(crate::access::Action::Ask).unwrap();
        s.ask_options(
            &AskRequest {
                question: "what about the parcel and the refund?".into(),
                filter: Filter::default(),
                limit: None,
                max_tokens: None,
                temperature: None,
                seed: None,
                generator: None,
                without_generator: crate::ask::Fallback::Asked,
            },
            &grant,
        )
        .unwrap()
        .limit
    };
    assert_eq!(limit(&mut f, &Settings::default()), 8);
    assert_eq!(limit(&mut f, &one), 1);
}

/// A model folder `hash` beside `sentiment/hash.json`, a head for the hashing embedder.
fn model_dir_with_head(root: &std::path::Path) -> std::path::PathBuf {
    let e = HashEmbedder::new();
    let dir = root.join("models").join("hash");
    std::fs::create_dir_all(&dir).unwrap();
    let head = crate::sentiment::SentimentHead {
        model: "hash".into(),
        fingerprint: e.fingerprint().to_string(),
        weights: vec![0.0; e.dim()],
        bias: 0.0,
        neutral_band: 0.1,
        c: 1.0,
        trained_on: "none".into(),
        data_sha256: String::new(),
        evaluation: serde_json::Value::Null,
        subjectivity: None,
    };
    let path = crate::sentiment::SentimentHead::path_for(&dir);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_vec(&head).unwrap()).unwrap();
    dir
}

#[test]
fn the_sentiment_head_is_read_once_for_many_searches() {
    let mut f = Fixture::ingested();
    let dir = model_dir_with_head(f.dir.path());
    let models = Models::loaded(Some(dir), Some(Arc::new(HashEmbedder::new())));
    let settings = Settings::default();
    let search = |text: &str, sentiment| SearchRequest {
        text: text.into(),
        sentiment,
        ..SearchRequest::default()
    };
    assert_eq!(models.sentiment_head_loads(), 0);
    let mut s = f.session_with(Via::http("POST /v1/search"), &models, &settings);
    s.search(search("parcel", None)).unwrap();
    // The second needs the head (a sentiment filter): it is the one already loaded.
    s.search(search("refund", Some(crate::themes::Polarity::Neutral)))
        .unwrap();
    assert_eq!(models.sentiment_head_loads(), 1);
    // Another session on the same models (the server's next request) reads nothing either.
    f.session_with(Via::http("POST /v1/search"), &models, &settings)
        .search(search("late", None))
        .unwrap();
    assert_eq!(models.sentiment_head_loads(), 1);
    // Without a head file the search still runs, and nothing is kept: the next one tries again.
    let none = Models::loaded(None, Some(Arc::new(HashEmbedder::new())));
    f.session_with(Via::cli("search"), &none, &settings)
        .search(search("parcel", None))
        .unwrap();
    assert_eq!(none.sentiment_head_loads(), 0);
}
