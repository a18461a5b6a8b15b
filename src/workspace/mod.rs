//! A workspace: one folder holding `verbatim.toml`, the SQLite store and the derived indexes.
//!
//! ```text
//! ws/verbatim.toml        column mapping, model, defaults (human-editable)
//! ws/store.sqlite         the source of truth (+ -wal, -shm)
//! ws/index/text/          tantivy
//! ws/index/vectors/       hnsw_rs generations + CURRENT
//! ws/verbatim.key         the workspace secrets (mode 0600): seals originals, keys pseudonyms
//! ws/.lock                held exclusively by writers (ingest, reindex)
//! ```
//!
//! Opening a workspace for reading catches the indexes up with the store, so a crash in the
//! middle of an ingest is repaired by the next command, whatever it is.

pub mod erase;
pub mod ingest;
pub mod prepare;
pub mod prepared;
pub mod privacy;
pub mod users;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::index::{IndexError, Indexes, SyncReport};
use crate::ingest::Mapping;
use crate::pii::vault::{Vault, VaultError, KEY_FILE};
use crate::store::{Store, StoreError};

/// The file name of the workspace configuration.
pub const CONFIG_FILE: &str = "verbatim.toml";
/// The file name of the store.
pub const STORE_FILE: &str = "store.sqlite";
/// How long a writer waits for the workspace lock before reporting "another process is writing".
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);
/// Store meta key: "keyed" when content ids are keyed hashes (see [`Workspace::content_id`]).
const KEYED_CONTENT_IDS: &str = "content_ids";

/// Errors opening or changing a workspace.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// No workspace at that path.
    #[error("{path} is not a verbatim workspace (no {CONFIG_FILE}); create one with `verbatim init {path}` or pass --workspace DIR / set VERBATIM_WORKSPACE")]
    NotAWorkspace {
        /// The folder.
        path: PathBuf,
    },
    /// `init` on a folder that already is one.
    #[error("{path} is already a verbatim workspace")]
    AlreadyExists {
        /// The folder.
        path: PathBuf,
    },
    /// The configuration file is not valid TOML or has unknown keys.
    #[error("{path}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong (with line and column from the TOML parser).
        message: String,
    },
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the write lock.
    #[error("{path}: another verbatim process is writing to this workspace")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// Store error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Index error.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// Key file error.
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Model settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Model name from `models/manifest.toml` (`verbatim models` lists them); default
    /// all-MiniLM-L6-v2. Set by `verbatim init --model` and `verbatim reindex --model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A sentence-transformers model folder outside the catalogue (wins over `name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Texts per forward pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// The CPU encoder's number format: `fp32`, `bf16` or `auto` (`--precision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<crate::embed::Precision>,
}

/// Where this workspace finds model folders (`[models]` in `verbatim.toml`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// A folder holding model folders (`DIR/NAME/`), looked at after `--models` /
    /// `$VERBATIM_MODELS` and before `./models`; relative to the workspace folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

impl ModelsConfig {
    fn is_unset(&self) -> bool {
        self.dir.is_none()
    }
}

/// Ingest settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Rows with more text than this are rejected.
    pub max_text_bytes: usize,
    /// Verbatims embedded and committed per store transaction.
    pub chunk_size: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_text_bytes: 64 * 1024,
            chunk_size: 256,
        }
    }
}

/// Privacy settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Keep each verbatim's original (unredacted) row, sealed with the workspace key, so that
    /// authorised roles can read it (`verbatim pii reveal`). `false`: only redacted text is kept.
    pub keep_originals: bool,
    /// Retention period in days: `verbatim retention apply` erases every verbatim dated (or,
    /// without a date, ingested) longer ago than this. Unset: nothing is erased by age.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Brands, shops and places named after people that this workspace keeps in the text
    /// (`allow_names = ["Chez Marcel", "Maison Dupont"]`), on top of the built-in list: a person
    /// candidate wholly inside one is not redacted. A longer name is still redacted ("Marcel
    /// Pagnol" next to "Chez Marcel").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_names: Vec<String>,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            keep_originals: true,
            retention_days: None,
            allow_names: Vec::new(),
        }
    }
}

/// Search defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Default mode.
    pub mode: crate::retrieve::Mode,
    /// Default number of results.
    pub limit: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            mode: crate::retrieve::Mode::Hybrid,
            limit: 10,
        }
    }
}

/// `verbatim ask` settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AskConfig {
    /// Generator: a model name under `models/` or a GGUF file.
    pub model: String,
    /// Most tokens in an answer.
    pub max_tokens: usize,
    /// 0: greedy (reproducible). Else sampled with `seed`.
    pub temperature: f64,
    /// Sampling seed.
    pub seed: u64,
    /// Token budget of the verbatims put in the prompt.
    pub context_tokens: usize,
    /// Verbatims retrieved for the context at most.
    pub context_verbatims: usize,
}

impl Default for AskConfig {
    fn default() -> Self {
        AskConfig {
            model: "SmolLM2-135M-Instruct".into(),
            max_tokens: 200,
            temperature: 0.0,
            seed: 42,
            context_tokens: 1200,
            context_verbatims: 8,
        }
    }
}

/// `verbatim.toml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Column mapping remembered from the first ingest that gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<Mapping>,
    /// Embedding model.
    #[serde(default)]
    pub model: ModelConfig,
    /// Where model folders are (besides the default places).
    #[serde(default, skip_serializing_if = "ModelsConfig::is_unset")]
    pub models: ModelsConfig,
    /// Ingest settings.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// Search defaults.
    #[serde(default)]
    pub search: SearchConfig,
    /// Privacy settings.
    #[serde(default)]
    pub privacy: PrivacyConfig,
    /// `ask` settings.
    #[serde(default)]
    pub ask: AskConfig,
    /// `verbatim serve` settings.
    #[serde(default)]
    pub serve: ServeConfig,
    /// Theme settings (written only when not the defaults).
    #[serde(default, skip_serializing_if = "ThemesConfig::is_default")]
    pub themes: ThemesConfig,
}

/// Theme settings: when the aspect tree is discovered on a uniform sample
/// ([`crate::themes::aspect::Sampling`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThemesConfig {
    /// Above this many opinion units, `themes` discovers the tree on a uniform sample of
    /// verbatims and assigns every other unit with that tree's rule.
    pub sample_above_units: usize,
    /// Verbatims in that sample.
    pub sample_verbatims: usize,
    /// Key of the sample's hash (`themes export-model --sample-seed`).
    pub sample_seed: u64,
}

impl Default for ThemesConfig {
    fn default() -> Self {
        ThemesConfig {
            sample_above_units: 50_000,
            sample_verbatims: 20_000,
            sample_seed: 42,
        }
    }
}

impl ThemesConfig {
    /// True for the built-in values.
    pub fn is_default(&self) -> bool {
        *self == ThemesConfig::default()
    }

    /// The sampling rule of a tree run.
    pub fn sampling(&self) -> crate::themes::aspect::Sampling {
        crate::themes::aspect::Sampling {
            above: self.sample_above_units,
            size: self.sample_verbatims,
            seed: self.sample_seed,
        }
    }
}

/// `verbatim serve` settings (flags and `VERBATIM_SERVE_*` variables override them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address to listen on; loopback unless you also give a TLS certificate.
    pub bind: String,
    /// Requests per second allowed to each token, refilled continuously.
    pub rate_per_second: f64,
    /// Requests a token may make at once before the rate applies.
    pub burst: u32,
    /// Largest JSON request body, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Largest ingest upload (CSV / JSONL body), in bytes.
    pub max_ingest_bytes: usize,
    /// Requests that read at once (search, stats…): the read connections to the store and
    /// the server's async worker threads. Unset: the machine's cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readers: Option<usize>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            bind: "127.0.0.1:8080".into(),
            rate_per_second: 10.0,
            burst: 20,
            max_body_bytes: 1 << 20,
            max_ingest_bytes: 64 << 20,
            readers: None,
        }
    }
}

/// An open workspace.
pub struct Workspace {
    root: PathBuf,
    /// Its configuration.
    pub config: Config,
    /// Its store: private to the library, so that every read a door makes goes through
    /// [`crate::service::Session`], which checks the grant and records it.
    pub(crate) store: Store,
    /// Its secrets (from the key file); private to the library like the store.
    pub(crate) vault: Vault,
    /// Ids of rows without an id column are keyed hashes of their text (workspaces made since
    /// schema v5); older workspaces keep plain SHA-256 ids so that re-ingesting stays idempotent.
    keyed_content_ids: bool,
}

/// An exclusive writer lock; released on drop.
pub struct WriteLock {
    _file: fs::File,
}

impl Workspace {
    /// Creates a workspace in `root` (the folder may exist but must not be a workspace).
    pub fn init(root: &Path) -> Result<Workspace, WorkspaceError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WorkspaceError::Io { path, source }
        };
        if root.join(CONFIG_FILE).exists() {
            return Err(WorkspaceError::AlreadyExists {
                path: root.to_path_buf(),
            });
        }
        fs::create_dir_all(root.join("index")).map_err(io(root))?;
        let mut store = Store::open(&root.join(STORE_FILE))?;
        let vault = open_vault(root, &store)?;
        store.set_row_key(crate::store::RowKey::new(vault.row_key()))?;
        store.set_meta(KEYED_CONTENT_IDS, "keyed")?;
        let ws = Workspace {
            root: root.to_path_buf(),
            config: Config::default(),
            store,
            vault,
            keyed_content_ids: true,
        };
        ws.save_config()?;
        Indexes::open(&ws.index_dir(), &ws.store)?;
        Ok(ws)
    }

    /// The folder `[models] dir` names, made absolute against the workspace folder.
    pub fn models_dir(&self) -> Option<PathBuf> {
        self.config.models.dir.as_ref().map(|d| self.root.join(d))
    }

    /// Opens the workspace in `root`.
    pub fn open(root: &Path) -> Result<Workspace, WorkspaceError> {
        let cfg_path = root.join(CONFIG_FILE);
        let text = match fs::read_to_string(&cfg_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(WorkspaceError::NotAWorkspace {
                    path: root.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(WorkspaceError::Io {
                    path: cfg_path,
                    source,
                })
            }
        };
        let config = parse_config(&cfg_path, &text)?;
        // Every redaction in this process (ingest, and the re-redaction of stored text on its
        // way to the indexes) reads the same allowed names.
        crate::pii::detect::allow::set_extra(&config.privacy.allow_names).map_err(|e| {
            WorkspaceError::Config {
                path: cfg_path.clone(),
                message: e.to_string(),
            }
        })?;
        let store = Store::open(&root.join(STORE_FILE))?;
        let mut vault = open_vault(root, &store)?;
        let keyed_content_ids = store.meta(KEYED_CONTENT_IDS)?.as_deref() == Some("keyed");
        vault.set_keyed_content_ids(keyed_content_ids);
        let mut store = store;
        // Rows are sealed with a key from the key file (sealed once here if written before).
        store.set_row_key(crate::store::RowKey::new(vault.row_key()))?;
        // Schema v6: reveals logged outside the chain join it (needs the key; once).
        store.fold_access_log(&|b: &[u8]| vault.keyed_hash("audit", b))?;
        Ok(Workspace {
            root: root.to_path_buf(),
            config,
            store,
            vault,
            keyed_content_ids,
        })
    }

    /// The id of a row without an id column: `h` + 64 bits of a keyed hash (workspace key) of
    /// its text as in the file. Keyed, because the text may hold personal data that redaction
    /// removed: a plain hash would let anyone confirm a guessed text from its id (ids appear in
    /// results, reports and the audit trail, which outlives erasure). Identical texts still share
    /// an id, so re-ingesting is idempotent. Workspaces made before this keep the plain SHA-256
    /// id ([`crate::ingest::content_id`]).
    pub fn content_id(&self, text: &str) -> String {
        debug_assert_eq!(
            self.keyed_content_ids,
            self.vault.hash_keys().keyed_content_ids()
        );
        self.vault.hash_keys().content_id(text)
    }

    /// The store, unchecked and unrecorded: for integration tests, benches and tools that
    /// inspect or prepare a workspace directly (simulate an interrupted erasure, count rows).
    /// Doors never use it: they go through [`crate::service::Session`].
    pub fn raw_store(&self) -> &Store {
        &self.store
    }

    /// [`Workspace::raw_store`], mutable (tests that stage a half-done write).
    pub fn raw_store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// The workspace secrets, for tests that compute a respondent's pseudonym.
    pub fn raw_vault(&self) -> &Vault {
        &self.vault
    }

    /// Records `fingerprint` as the workspace's embedding model, or refuses one that differs
    /// from the model of the vectors already stored (`init --model`).
    pub fn check_model(&self, fingerprint: &str) -> Result<(), WorkspaceError> {
        Ok(self.store.check_model(fingerprint)?)
    }

    /// The workspace folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the derived indexes live.
    pub fn index_dir(&self) -> PathBuf {
        self.root.join("index")
    }

    /// Opens the indexes and catches them up with the store.
    pub fn indexes(&self) -> Result<(Indexes, SyncReport), WorkspaceError> {
        Ok(Indexes::open(&self.index_dir(), &self.store)?)
    }

    /// Appends to the audit trail, durably, before results are shown: who, what (the typed
    /// detail, with the ids that came back). Chained with the workspace key. The one path to
    /// the trail: [`Workspace::record`] (under a grant) and the erasure's system caller
    /// (`retention`) come through here.
    pub(crate) fn append_audit(
        &mut self,
        caller: &str,
        action: &str,
        detail: &crate::store::AuditDetail,
    ) -> Result<i64, WorkspaceError> {
        let vault = &self.vault;
        let mac = |b: &[u8]| vault.keyed_hash("audit", b);
        Ok(self.store.append_audit(caller, action, detail, &mac)?)
    }

    /// Checks the audit chain (see `store::audit`).
    pub fn verify_audit(&self) -> Result<crate::store::AuditVerdict, WorkspaceError> {
        let mac = |b: &[u8]| self.vault.keyed_hash("audit", b);
        Ok(self.store.verify_audit(&mac)?)
    }

    /// Writes `verbatim.toml` atomically.
    pub fn save_config(&self) -> Result<(), WorkspaceError> {
        let body = toml::to_string_pretty(&self.config).expect("config serialises");
        let text = format!(
            "# verbatim workspace configuration. Flags override these values; edit freely.\n{body}"
        );
        crate::fs::write_atomic(&self.root.join(CONFIG_FILE), text.as_bytes()).map_err(|e| {
            WorkspaceError::Io {
                path: e.path,
                source: e.source,
            }
        })?;
        Ok(())
    }

    /// Takes the exclusive writer lock, failing at once if another writer holds it.
    pub fn lock(&self) -> Result<WriteLock, WorkspaceError> {
        let path = self.root.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| WorkspaceError::Io {
                path: path.clone(),
                source,
            })?;
        // A short wait before giving up: a writer that just finished may still be releasing
        // (and a process forked by this one holds a copy of the descriptor until it execs).
        let t0 = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WriteLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) if t0.elapsed() < LOCK_PATIENCE => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => return Err(WorkspaceError::Locked { path }),
                Err(fs::TryLockError::Error(source)) => {
                    return Err(WorkspaceError::Io { path, source })
                }
            }
        }
    }
}

/// Opens the key file, creating it only while the store holds nothing made with a key.
fn open_vault(root: &Path, store: &Store) -> Result<Vault, WorkspaceError> {
    let path = root.join(KEY_FILE);
    if path.exists() {
        return Ok(Vault::open(&path)?);
    }
    if store.stats()?.verbatims > 0 || store.sealed_originals()? > 0 {
        return Err(VaultError::Missing { path }.into());
    }
    Ok(Vault::create(&path)?)
}

/// Reads `root/verbatim.toml` alone, without opening the store (for commands that only need a
/// setting, like `verbatim models`). `Ok(None)` when `root` is not a workspace.
pub fn read_config(root: &Path) -> Result<Option<Config>, WorkspaceError> {
    let path = root.join(CONFIG_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(WorkspaceError::Io { path, source }),
    };
    parse_config(&path, &text).map(Some)
}

/// Parses the text of `verbatim.toml` (every reader of the file comes through here). An error
/// names the file and the dotted key (`serve.burst: invalid type…`), with the parser's line and
/// column.
pub fn parse_config(path: &Path, text: &str) -> Result<Config, WorkspaceError> {
    let bad = |message: String| WorkspaceError::Config {
        path: path.to_path_buf(),
        message,
    };
    let de = toml::Deserializer::parse(text).map_err(|e| bad(e.to_string()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner().to_string();
        bad(if key.is_empty() || key == "." {
            inner
        } else {
            format!("{key}: {inner}")
        })
    })
}

/// What `reindex` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReindexReport {
    /// Verbatims re-embedded because the model changed (0 when it did not).
    pub reembedded: usize,
    /// Documents written to the text index.
    pub text: usize,
    /// Vectors written to the HNSW index.
    pub vectors: usize,
}

impl Workspace {
    /// Rebuilds both indexes from the store. When `embedder` is given and is not the model that
    /// made the stored vectors, every verbatim is re-embedded first (one transaction).
    pub fn reindex(
        &mut self,
        embedder: Option<&dyn crate::embed::Embedder>,
        progress: &dyn ingest::Progress,
    ) -> Result<ReindexReport, ingest::IngestRunError> {
        let _lock = self.lock()?;
        let mut report = ReindexReport::default();
        if let Some(e) = embedder {
            if self.store.model_fingerprint()?.as_deref() != Some(e.fingerprint()) {
                let texts = self.store.texts()?;
                if !texts.is_empty() {
                    progress.start("re-embedding", texts.len() as u64);
                }
                let mut vectors = Vec::with_capacity(texts.len());
                for chunk in texts.chunks(self.config.ingest.chunk_size.max(1)) {
                    // Stored text is redacted already; redacting again is the type's guarantee.
                    let red: Vec<crate::pii::Redacted> =
                        chunk.iter().map(|t| crate::pii::redact(&t.1)).collect();
                    let refs: Vec<&str> = red.iter().map(|r| r.as_str()).collect();
                    let vs = e.embed(&refs, crate::embed::TextKind::Passage)?;
                    vectors.extend(chunk.iter().map(|t| t.0).zip(vs));
                    progress.advance(chunk.len() as u64);
                }
                if !texts.is_empty() {
                    progress.finish();
                }
                self.store.replace_all_vectors(e.fingerprint(), &vectors)?;
                report.reembedded = vectors.len();
            }
        }
        let live = self.store.count(&crate::store::Filter::default())?.max(0) as u64;
        if live > 0 {
            progress.start("indexing", live);
        }
        // A rebuild must work on damaged indexes too: the text index is recreated when it does
        // not open, and the old vector graph is never loaded.
        let text_dir = self.index_dir().join("text");
        let text = match crate::index::TextIndex::open(&text_dir) {
            Ok(t) => t,
            Err(_) => {
                std::fs::remove_dir_all(&text_dir).map_err(|source| WorkspaceError::Io {
                    path: text_dir.clone(),
                    source,
                })?;
                crate::index::TextIndex::open(&text_dir).map_err(WorkspaceError::from)?
            }
        };
        let vectors = crate::index::VectorIndex::empty(
            &self.index_dir().join("vectors"),
            crate::index::HnswParams::default(),
        )
        .map_err(WorkspaceError::from)?;
        let mut ix = Indexes { text, vectors };
        let r = ix.rebuild(&self.store).map_err(WorkspaceError::from)?;
        if live > 0 {
            progress.advance(r.text.max(r.vectors) as u64);
            progress.finish();
        }
        report.text = r.text;
        report.vectors = r.vectors;
        Ok(report)
    }
}
