//! Settings, resolved once per process: flags > environment > `verbatim.toml` > defaults.
//!
//! Both doors used to resolve their own settings (the workspace folder in two places, the model
//! lookup, the ask thresholds, the serve limits, the search defaults once per door), and the two
//! copies had drifted: the server ignored what the CLI's environment said. Here every setting is
//! resolved by one function, [`Settings::resolve`], from three explicit layers —
//!
//! * [`Overrides`]: what the command line said (the CLI fills it from its flags);
//! * [`EnvLayer`]: the `VERBATIM_*` variables, the only place the environment is read for
//!   settings (a bad value names the variable);
//! * [`FileLayer`]: the workspace's `verbatim.toml`, parsed by `workspace::read_config` (a bad
//!   value names the file and the key) —
//!
//! and each resolved value keeps the layer it came from ([`Source`]), which `verbatim config
//! show` prints. The CLI resolves once before running a command and hands the values down; the
//! server is started with the same resolved values, so a search without a `limit` returns as
//! many hits through either door.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::embed::catalog::SearchPath;
use crate::limits;
use crate::retrieve::Mode;
use crate::workspace::{self, Config, WorkspaceError};

/// The environment variables read as settings, with the setting each one sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("VERBATIM_WORKSPACE", "workspace"),
    ("VERBATIM_THREADS", "threads"),
    ("VERBATIM_PRECISION", "models.precision"),
    ("VERBATIM_MODEL", "model"),
    ("VERBATIM_MODELS", "models.dir"),
    ("VERBATIM_SEARCH_MODE", "search.mode"),
    ("VERBATIM_SEARCH_LIMIT", "search.limit"),
    ("VERBATIM_BIND", "serve.bind"),
    ("VERBATIM_TLS_CERT", "serve.tls_cert"),
    ("VERBATIM_TLS_KEY", "serve.tls_key"),
    ("VERBATIM_SERVE_RATE", "serve.rate_per_second"),
    ("VERBATIM_SERVE_BURST", "serve.burst"),
    ("VERBATIM_SERVE_MAX_BODY", "serve.max_body_bytes"),
    ("VERBATIM_SERVE_MAX_INGEST", "serve.max_ingest_bytes"),
    ("VERBATIM_SERVE_READERS", "serve.readers"),
];

/// A setting that could not be resolved. Each variant names where the bad value was.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// An environment variable holds a value the setting does not take.
    #[error("${var}={value:?}: {message}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// `verbatim.toml` holds a value the setting does not take (it parsed, but is out of range
    /// or not usable).
    #[error("{path}: {key} = {value}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// The dotted key (`serve.burst`).
        key: &'static str,
        /// The value, as written back.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// A flag's value, checked after resolution (the flag parser checks the rest).
    #[error("{flag} {value}: {message}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// The TLS certificate and key come as a pair.
    #[error("serve: a TLS certificate needs its key and a key its certificate (--tls-cert / --tls-key, $VERBATIM_TLS_CERT / $VERBATIM_TLS_KEY); only {given} was given")]
    TlsPair {
        /// Which one was given, and where.
        given: String,
    },
    /// `verbatim.toml` did not read or parse (the message names the file, and the key when the
    /// parser knows it).
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
}

/// Where a resolved value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A key of the workspace's `verbatim.toml`.
    File {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: &'static str,
    },
    /// The calibrated profile of the embedding model (`models/manifest.toml`).
    ModelProfile,
    /// Built in.
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "{flag}"),
            Source::Env(var) => write!(f, "${var}"),
            Source::File { path, key } => write!(f, "{} {key}", path.display()),
            Source::ModelProfile => write!(f, "model profile"),
            Source::Default => write!(f, "default"),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A resolved value and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Setting<T> {
    /// The value in force.
    pub value: T,
    /// The layer that gave it.
    pub source: Source,
}

impl<T> Setting<T> {
    fn new(value: T, source: Source) -> Self {
        Setting { value, source }
    }
}

/// What the command line said: `None` where it said nothing. Filled by the CLI from its flags.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--workspace`.
    pub workspace: Option<PathBuf>,
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--precision`.
    pub precision: Option<crate::embed::Precision>,
    /// `--model`.
    pub model: Option<String>,
    /// `--models`.
    pub models: Option<PathBuf>,
    /// `search --mode`.
    pub search_mode: Option<Mode>,
    /// `search --limit`.
    pub search_limit: Option<usize>,
    /// `ask --generator`.
    pub generator: Option<String>,
    /// `ask --max-tokens`.
    pub max_tokens: Option<usize>,
    /// `ask --temperature`.
    pub temperature: Option<f64>,
    /// `ask --seed`.
    pub seed: Option<u64>,
    /// `ask --limit`.
    pub context_verbatims: Option<usize>,
    /// `serve --bind`.
    pub bind: Option<SocketAddr>,
    /// `serve --tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `serve --tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `serve --rate-per-second`.
    pub rate_per_second: Option<f64>,
    /// `serve --burst`.
    pub burst: Option<u32>,
    /// `serve --max-body-bytes`.
    pub max_body_bytes: Option<usize>,
    /// `serve --max-ingest-bytes`.
    pub max_ingest_bytes: Option<usize>,
    /// `serve --readers`.
    pub readers: Option<usize>,
}

/// The `VERBATIM_*` variables of [`ENV_VARS`] that are set (an empty value counts as unset).
#[derive(Clone, Debug, Default)]
pub struct EnvLayer {
    vars: Vec<(&'static str, String)>,
}

impl EnvLayer {
    /// Reads the process environment: the one place settings come from it.
    pub fn from_process() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any lookup (tests pass a list).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let vars = ENV_VARS
            .iter()
            .filter_map(|(name, _)| {
                lookup(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (*name, v))
            })
            .collect();
        EnvLayer { vars }
    }

    fn raw(&self, var: &str) -> Option<(&'static str, &str)> {
        self.vars
            .iter()
            .find(|(n, _)| *n == var)
            .map(|(n, v)| (*n, v.as_str()))
    }

    /// `var`, parsed, with an error naming it.
    fn parse<T: std::str::FromStr>(
        &self,
        var: &'static str,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> Result<Option<(T, &'static str)>, SettingsError> {
        let Some((var, raw)) = self.raw(var) else {
            return Ok(None);
        };
        let err = |message: String| SettingsError::Env {
            var,
            value: raw.to_string(),
            message,
        };
        let v: T = raw
            .trim()
            .parse()
            .map_err(|_| err("not a valid value".into()))?;
        check(&v).map_err(err)?;
        Ok(Some((v, var)))
    }
}

/// The workspace's `verbatim.toml`: the typed configuration and the keys the file sets (a key
/// the file leaves out is a default, not the file's).
#[derive(Clone, Debug)]
pub struct FileLayer {
    /// The file.
    pub path: PathBuf,
    /// Its content, typed (what it leaves out is the default).
    pub config: Config,
    keys: Vec<String>,
}

impl FileLayer {
    /// Reads `root/verbatim.toml`; `Ok(None)` when there is none (not a workspace yet).
    pub fn read(root: &Path) -> Result<Option<FileLayer>, SettingsError> {
        let path = root.join(workspace::CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(WorkspaceError::Io { path, source }.into()),
        };
        let config = workspace::parse_config(&path, &text)?;
        // parse_config read it: the text is valid TOML.
        let table: toml::Table = toml::from_str(&text).map_err(|e| WorkspaceError::Config {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(Some(FileLayer::with_keys(path, config, &table)))
    }

    /// A layer from an already-typed configuration and the TOML table it was read from.
    pub fn with_keys(path: PathBuf, config: Config, table: &toml::Table) -> FileLayer {
        let mut keys = Vec::new();
        for (section, v) in table {
            match v.as_table() {
                Some(t) => keys.extend(t.keys().map(|k| format!("{section}.{k}"))),
                None => keys.push(section.clone()),
            }
        }
        FileLayer { path, config, keys }
    }

    fn sets(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }

    fn source(&self, key: &'static str) -> Source {
        Source::File {
            path: self.path.clone(),
            key,
        }
    }

    fn bad(
        &self,
        key: &'static str,
        value: impl std::fmt::Display,
        message: String,
    ) -> SettingsError {
        SettingsError::File {
            path: self.path.clone(),
            key,
            value: value.to_string(),
            message,
        }
    }
}

/// Where model folders are looked for and which model is used.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelSettings {
    /// The embedding model: a catalogue name or a folder.
    pub model: Setting<ModelRef>,
    /// Texts per forward pass (`None`: the model's default).
    pub batch_size: Setting<Option<usize>>,
    /// The CPU encoder's number format (`--precision`, `$VERBATIM_PRECISION`,
    /// `[model] precision`; default auto).
    pub precision: Setting<crate::embed::Precision>,
    /// The folder looked at first for model folders (`--models`, `$VERBATIM_MODELS`).
    pub models_dir: Setting<Option<PathBuf>>,
    /// `[models] dir` of the workspace, made absolute against it; looked at after the one above.
    pub workspace_models_dir: Setting<Option<PathBuf>>,
}

/// Which embedding model: a spec to look up, or a folder `verbatim.toml` names.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ModelRef {
    /// A catalogue name, or a folder given on the command line (`--model`).
    Spec(String),
    /// `[model] path` (wins over `[model] name`).
    Dir(PathBuf),
}

impl ModelSettings {
    /// The lookup order of model folders (`verbatim models` shows it).
    pub fn search_path(&self) -> SearchPath {
        let first = self
            .models_dir
            .value
            .as_ref()
            .map(|d| match self.models_dir.source {
                Source::Env(_) => (crate::embed::catalog::Rule::Env, d.clone()),
                _ => (crate::embed::catalog::Rule::Flag, d.clone()),
            });
        SearchPath::layered(first, self.workspace_models_dir.value.as_deref())
    }
}

/// Search defaults (both doors).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchSettings {
    /// Mode when a request names none.
    pub mode: Setting<Mode>,
    /// Hits when a request names no limit.
    pub limit: Setting<usize>,
}

/// `ask` settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AskSettings {
    /// The generator: a model name or a GGUF file.
    pub generator: Setting<String>,
    /// Most tokens in an answer.
    pub max_tokens: Setting<usize>,
    /// 0: greedy.
    pub temperature: Setting<f64>,
    /// Sampling seed.
    pub seed: Setting<u64>,
    /// Token budget of the verbatims in the prompt.
    pub context_tokens: Setting<usize>,
    /// Verbatims quoted (the model's context) and listed as sources at most.
    pub context_verbatims: Setting<usize>,
}

impl AskSettings {
    /// How an answer (and a theme summary) is generated: `max_tokens`, `temperature` and
    /// `seed` as resolved; the rest of [`crate::ask::llm::GenOptions`] at its defaults.
    pub fn gen_options(&self) -> crate::ask::llm::GenOptions {
        crate::ask::llm::GenOptions {
            max_tokens: self.max_tokens.value,
            temperature: self.temperature.value,
            seed: self.seed.value,
            ..Default::default()
        }
    }
}

/// `serve` settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServeSettings {
    /// Address to listen on.
    pub bind: Setting<SocketAddr>,
    /// TLS certificate chain (with the key: HTTPS).
    pub tls_cert: Setting<Option<PathBuf>>,
    /// TLS private key.
    pub tls_key: Setting<Option<PathBuf>>,
    /// Requests per second per token.
    pub rate_per_second: Setting<f64>,
    /// Requests a token may burst.
    pub burst: Setting<u32>,
    /// Largest JSON body.
    pub max_body_bytes: Setting<usize>,
    /// Largest ingest upload.
    pub max_ingest_bytes: Setting<usize>,
    /// Read connections (and async worker threads) of the server.
    pub readers: Setting<usize>,
}

impl ServeSettings {
    /// The limits the server enforces (bind included).
    pub fn limits(&self) -> workspace::ServeConfig {
        workspace::ServeConfig {
            bind: self.bind.value.to_string(),
            rate_per_second: self.rate_per_second.value,
            burst: self.burst.value,
            max_body_bytes: self.max_body_bytes.value,
            max_ingest_bytes: self.max_ingest_bytes.value,
            readers: Some(self.readers.value),
        }
    }
}

/// Privacy settings (the file only: no flag may widen them).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PrivacySettings {
    /// Keep sealed originals.
    pub keep_originals: Setting<bool>,
    /// Erase verbatims older than this many days.
    pub retention_days: Setting<Option<u32>>,
    /// Names kept in the text (on top of the built-in list).
    pub allow_names: Setting<Vec<String>>,
}

/// Ingest settings (the file only: `[ingest]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IngestSettings {
    /// Rows with more text than this are rejected.
    pub max_text_bytes: Setting<usize>,
    /// Verbatims embedded and committed per store transaction.
    pub chunk_size: Setting<usize>,
}

/// Theme settings (the file only: `[themes]`): when the aspect tree is discovered on a sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThemesSettings {
    /// Above this many opinion units the tree is discovered on a sample of verbatims.
    pub sample_above_units: Setting<usize>,
    /// Verbatims in that sample.
    pub sample_verbatims: Setting<usize>,
    /// Key of the sample's hash.
    pub sample_seed: Setting<u64>,
}

/// Every setting, resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    /// The workspace folder.
    pub workspace: Setting<PathBuf>,
    /// The `verbatim.toml` read (`None`: the folder is not a workspace yet).
    pub file: Option<PathBuf>,
    /// Embedding threads (`None`: all cores).
    pub threads: Setting<Option<usize>>,
    /// Models.
    pub models: ModelSettings,
    /// Search defaults.
    pub search: SearchSettings,
    /// `ask`.
    pub ask: AskSettings,
    /// `serve`.
    pub serve: ServeSettings,
    /// Privacy.
    pub privacy: PrivacySettings,
    /// Ingest.
    pub ingest: IngestSettings,
    /// Themes.
    pub themes: ThemesSettings,
}

/// flag > env > file > default for one setting. `file` is the file's value when it sets `key`.
fn pick<T>(
    flag: Option<(T, &'static str)>,
    env: Option<(T, &'static str)>,
    file: Option<(&FileLayer, &'static str, T)>,
    default: T,
) -> Setting<T> {
    if let Some((v, name)) = flag {
        return Setting::new(v, Source::Flag(name));
    }
    if let Some((v, var)) = env {
        return Setting::new(v, Source::Env(var));
    }
    match file {
        Some((f, key, v)) if f.sets(key) => Setting::new(v, f.source(key)),
        _ => Setting::new(default, Source::Default),
    }
}

/// The file's value for `key`, for [`pick`].
fn at<'a, T>(
    file: Option<&'a FileLayer>,
    key: &'static str,
    value: T,
) -> Option<(&'a FileLayer, &'static str, T)> {
    file.map(|f| (f, key, value))
}

fn in_range(range: std::ops::RangeInclusive<u64>) -> impl Fn(&usize) -> Result<(), String> {
    move |n| limits::check("value", *n as u64, &range).map(|_| ())
}

impl Settings {
    /// The settings of this process: the workspace folder from the flag or the environment,
    /// then its `verbatim.toml` (when there is one), then everything else.
    pub fn load(flags: &Overrides, env: &EnvLayer) -> Result<Settings, SettingsError> {
        let root = Self::workspace(flags, env)?;
        let file = FileLayer::read(&root.value)?;
        Self::resolve(flags, env, file.as_ref())
    }

    /// The workspace folder: `--workspace`, `$VERBATIM_WORKSPACE`, the current folder.
    pub fn workspace(flags: &Overrides, env: &EnvLayer) -> Result<Setting<PathBuf>, SettingsError> {
        Ok(pick(
            flags.workspace.clone().map(|w| (w, "--workspace")),
            env.parse::<PathBuf>("VERBATIM_WORKSPACE", |_| Ok(()))?,
            None,
            PathBuf::from("."),
        ))
    }

    /// Resolves every setting from the three layers.
    pub fn resolve(
        flags: &Overrides,
        env: &EnvLayer,
        file: Option<&FileLayer>,
    ) -> Result<Settings, SettingsError> {
        let default = Config::default();
        let cfg = file.map_or(&default, |f| &f.config);
        let root = Self::workspace(flags, env)?;

        let threads = pick(
            flags.threads.map(|t| (Some(t), "--threads")),
            env.parse("VERBATIM_THREADS", in_range(limits::THREADS))?
                .map(|(t, v)| (Some(t), v)),
            None,
            None,
        );

        // The model: `--model` / `$VERBATIM_MODEL` name a spec; the file's folder wins over
        // its name.
        let file_model = file.and_then(|f| {
            if let (true, Some(p)) = (f.sets("model.path"), &cfg.model.path) {
                Some(Setting::new(
                    ModelRef::Dir(p.clone()),
                    f.source("model.path"),
                ))
            } else if let (true, Some(n)) = (f.sets("model.name"), &cfg.model.name) {
                Some(Setting::new(
                    ModelRef::Spec(n.clone()),
                    f.source("model.name"),
                ))
            } else {
                None
            }
        });
        let model = match (
            flags.model.clone(),
            env.parse::<String>("VERBATIM_MODEL", |_| Ok(()))?,
        ) {
            (Some(m), _) => Setting::new(ModelRef::Spec(m), Source::Flag("--model")),
            (None, Some((m, var))) => Setting::new(ModelRef::Spec(m), Source::Env(var)),
            (None, None) => file_model.unwrap_or_else(|| {
                Setting::new(
                    ModelRef::Spec(crate::embed::DEFAULT_MODEL.to_string()),
                    Source::Default,
                )
            }),
        };
        let models = ModelSettings {
            model,
            batch_size: pick(
                None,
                None,
                at(file, "model.batch_size", cfg.model.batch_size),
                None,
            ),
            precision: pick(
                flags.precision.map(|p| (p, "--precision")),
                env.parse("VERBATIM_PRECISION", |_| Ok(()))?,
                at(
                    file,
                    "model.precision",
                    cfg.model.precision.unwrap_or_default(),
                ),
                crate::embed::Precision::Auto,
            ),
            models_dir: pick(
                flags.models.clone().map(|d| (Some(d), "--models")),
                env.parse::<PathBuf>("VERBATIM_MODELS", |_| Ok(()))?
                    .map(|(d, v)| (Some(d), v)),
                None,
                None,
            ),
            workspace_models_dir: pick(
                None,
                None,
                at(
                    file,
                    "models.dir",
                    cfg.models.dir.as_ref().map(|d| root.value.join(d)),
                ),
                None,
            ),
        };

        let search = SearchSettings {
            mode: pick(
                flags.search_mode.map(|m| (m, "--mode")),
                env.parse_mode()?,
                at(file, "search.mode", cfg.search.mode),
                default.search.mode,
            ),
            limit: pick(
                flags.search_limit.map(|n| (n, "--limit")),
                env.parse("VERBATIM_SEARCH_LIMIT", in_range(limits::SEARCH_LIMIT))?,
                at(file, "search.limit", cfg.search.limit),
                default.search.limit,
            ),
        };
        file_range(
            file,
            "search.limit",
            search.limit.value,
            limits::SEARCH_LIMIT,
            &search.limit.source,
        )?;

        let ask = AskSettings {
            generator: pick(
                flags.generator.clone().map(|g| (g, "--generator")),
                None,
                at(file, "ask.model", cfg.ask.model.clone()),
                default.ask.model.clone(),
            ),
            max_tokens: pick(
                flags.max_tokens.map(|n| (n, "--max-tokens")),
                None,
                at(file, "ask.max_tokens", cfg.ask.max_tokens),
                default.ask.max_tokens,
            ),
            temperature: pick(
                flags.temperature.map(|t| (t, "--temperature")),
                None,
                at(file, "ask.temperature", cfg.ask.temperature),
                default.ask.temperature,
            ),
            seed: pick(
                flags.seed.map(|s| (s, "--seed")),
                None,
                at(file, "ask.seed", cfg.ask.seed),
                default.ask.seed,
            ),
            context_tokens: pick(
                None,
                None,
                at(file, "ask.context_tokens", cfg.ask.context_tokens),
                default.ask.context_tokens,
            ),
            context_verbatims: pick(
                flags.context_verbatims.map(|n| (n, "--limit")),
                None,
                at(file, "ask.context_verbatims", cfg.ask.context_verbatims),
                default.ask.context_verbatims,
            ),
        };
        file_range(
            file,
            "ask.max_tokens",
            ask.max_tokens.value,
            limits::MAX_TOKENS,
            &ask.max_tokens.source,
        )?;
        file_range(
            file,
            "ask.context_verbatims",
            ask.context_verbatims.value,
            limits::ASK_LIMIT,
            &ask.context_verbatims.source,
        )?;
        if let (Some(fl), Source::File { .. }) = (file, &ask.temperature.source) {
            limits::check_f64("value", ask.temperature.value, &limits::TEMPERATURE)
                .map_err(|m| fl.bad("ask.temperature", ask.temperature.value, m))?;
        }

        let serve = resolve_serve(flags, env, file, cfg, &default)?;
        let privacy = PrivacySettings {
            keep_originals: pick(
                None,
                None,
                at(file, "privacy.keep_originals", cfg.privacy.keep_originals),
                default.privacy.keep_originals,
            ),
            retention_days: pick(
                None,
                None,
                at(file, "privacy.retention_days", cfg.privacy.retention_days),
                None,
            ),
            allow_names: pick(
                None,
                None,
                at(file, "privacy.allow_names", cfg.privacy.allow_names.clone()),
                Vec::new(),
            ),
        };
        // `retention_days` is checked where it is applied (`workspace::erase`): a bad period
        // stops the erasure, not every command.
        let ingest = IngestSettings {
            max_text_bytes: pick(
                None,
                None,
                at(file, "ingest.max_text_bytes", cfg.ingest.max_text_bytes),
                default.ingest.max_text_bytes,
            ),
            chunk_size: pick(
                None,
                None,
                at(file, "ingest.chunk_size", cfg.ingest.chunk_size),
                default.ingest.chunk_size,
            ),
        };
        let themes = ThemesSettings {
            sample_above_units: pick(
                None,
                None,
                at(
                    file,
                    "themes.sample_above_units",
                    cfg.themes.sample_above_units,
                ),
                default.themes.sample_above_units,
            ),
            sample_verbatims: pick(
                None,
                None,
                at(file, "themes.sample_verbatims", cfg.themes.sample_verbatims),
                default.themes.sample_verbatims,
            ),
            sample_seed: pick(
                None,
                None,
                at(file, "themes.sample_seed", cfg.themes.sample_seed),
                default.themes.sample_seed,
            ),
        };
        Ok(Settings {
            workspace: root,
            file: file.map(|f| f.path.clone()),
            threads,
            models,
            search,
            ask,
            serve,
            privacy,
            ingest,
            themes,
        })
    }

    /// Every setting as `(key, value, source)`, in a stable order (`verbatim config show`).
    pub fn rows(&self) -> Vec<(String, serde_json::Value, String)> {
        let v = serde_json::to_value(self).expect("settings serialise");
        let mut rows = Vec::new();
        flatten("", &v, &mut rows);
        rows
    }

    /// The settings of a process that was told nothing: no flag, no variable, no file.
    pub fn defaults() -> Settings {
        Self::resolve(&Overrides::default(), &EnvLayer::default(), None)
            .expect("the defaults resolve: there is no value to be wrong")
    }

    /// The GGUF file `ask.generator` means: a file as given, a folder's `model.gguf`, or the
    /// `NAME/model.gguf` of the model lookup order (`verbatim models`). A name found nowhere
    /// means where `verbatim models install` would put it, so that loading it reports the file
    /// missing (and `ask` answers extractively, saying so). `None`: no models folder at all.
    pub fn generator_file(&self) -> Option<PathBuf> {
        let spec = &self.ask.generator.value;
        let p = Path::new(spec);
        if p.is_file() {
            return Some(p.to_path_buf());
        }
        if p.is_dir() {
            return Some(p.join("model.gguf"));
        }
        let search = self.models.search_path();
        let dir = search
            .find(spec)
            .map(|(_, dir)| dir)
            .or_else(|| crate::embed::catalog::data_dir().map(|d| d.join(spec)))
            .or_else(|| search.places().first().map(|p| p.dir.join(spec)))?;
        Some(dir.join("model.gguf"))
    }

    /// Calibrated answer thresholds (min cosine for a source, for a count) of the model in
    /// `model_dir` (its profile), else the defaults.
    pub fn ask_thresholds(model_dir: Option<&Path>) -> Setting<(f32, f32)> {
        let d = crate::ask::AskOptions::default();
        match model_dir
            .and_then(crate::embed::catalog::entry_for)
            .and_then(|e| e.profile)
        {
            Some(p) => Setting::new(
                (p.answer_min_cosine, p.count_min_cosine),
                Source::ModelProfile,
            ),
            None => Setting::new((d.min_cosine, d.count_cosine), Source::Default),
        }
    }
}

/// `(key, value, source)` rows of a serialised [`Settings`]: a `{value, source}` object is a
/// setting; anything else is a section.
fn flatten(
    prefix: &str,
    v: &serde_json::Value,
    out: &mut Vec<(String, serde_json::Value, String)>,
) {
    let Some(map) = v.as_object() else {
        return;
    };
    if let (Some(value), Some(serde_json::Value::String(src)), 2) =
        (map.get("value"), map.get("source"), map.len())
    {
        out.push((prefix.to_string(), value.clone(), src.clone()));
        return;
    }
    for (k, child) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if child.is_object() {
            flatten(&key, child, out);
        } else if k == "file" {
            out.push((key, child.clone(), "-".into()));
        }
    }
}

/// A range check of a value that came from the file, naming the file and key.
fn file_range(
    file: Option<&FileLayer>,
    key: &'static str,
    value: usize,
    range: std::ops::RangeInclusive<u64>,
    source: &Source,
) -> Result<(), SettingsError> {
    match (file, source) {
        (Some(f), Source::File { .. }) => {
            limits::check("value", value as u64, &range).map_err(|m| f.bad(key, value, m))
        }
        _ => Ok(()),
    }
}

impl EnvLayer {
    fn parse_mode(&self) -> Result<Option<(Mode, &'static str)>, SettingsError> {
        let Some((var, raw)) = self.raw("VERBATIM_SEARCH_MODE") else {
            return Ok(None);
        };
        let mode = match raw.trim().to_ascii_lowercase().as_str() {
            "text" => Mode::Text,
            "vector" => Mode::Vector,
            "hybrid" => Mode::Hybrid,
            _ => {
                return Err(SettingsError::Env {
                    var,
                    value: raw.to_string(),
                    message: "expected text, vector or hybrid".into(),
                })
            }
        };
        Ok(Some((mode, var)))
    }
}

fn resolve_serve(
    flags: &Overrides,
    env: &EnvLayer,
    file: Option<&FileLayer>,
    cfg: &Config,
    default: &Config,
) -> Result<ServeSettings, SettingsError> {
    let d = &default.serve;
    // The file's bind is text: parsed here, naming the key.
    let file_bind = match file {
        Some(fl) if fl.sets("serve.bind") => {
            Some(cfg.serve.bind.parse::<SocketAddr>().map_err(|_| {
                fl.bad(
                    "serve.bind",
                    format!("{:?}", cfg.serve.bind),
                    "expected an address like 127.0.0.1:8080".into(),
                )
            })?)
        }
        _ => None,
    };
    let bind = pick(
        flags.bind.map(|b| (b, "--bind")),
        env.parse::<SocketAddr>("VERBATIM_BIND", |_| Ok(()))?,
        file_bind.and_then(|b| at(file, "serve.bind", b)),
        d.bind.parse().expect("the default bind address parses"),
    );
    let tls_cert = pick(
        flags.tls_cert.clone().map(|p| (Some(p), "--tls-cert")),
        env.parse::<PathBuf>("VERBATIM_TLS_CERT", |_| Ok(()))?
            .map(|(p, v)| (Some(p), v)),
        None,
        None,
    );
    let tls_key = pick(
        flags.tls_key.clone().map(|p| (Some(p), "--tls-key")),
        env.parse::<PathBuf>("VERBATIM_TLS_KEY", |_| Ok(()))?
            .map(|(p, v)| (Some(p), v)),
        None,
        None,
    );
    match (&tls_cert.value, &tls_key.value) {
        (Some(_), None) => {
            return Err(SettingsError::TlsPair {
                given: format!("the certificate ({})", tls_cert.source),
            })
        }
        (None, Some(_)) => {
            return Err(SettingsError::TlsPair {
                given: format!("the key ({})", tls_key.source),
            })
        }
        _ => {}
    }
    let positive = |r: &f64| {
        if r.is_finite() && *r > 0.0 {
            Ok(())
        } else {
            Err("must be a number above 0".to_string())
        }
    };
    let rate_per_second = pick(
        flags.rate_per_second.map(|r| (r, "--rate-per-second")),
        env.parse("VERBATIM_SERVE_RATE", positive)?,
        at(file, "serve.rate_per_second", cfg.serve.rate_per_second),
        d.rate_per_second,
    );
    if let Err(m) = positive(&rate_per_second.value) {
        return Err(match (&rate_per_second.source, file) {
            (Source::File { key, .. }, Some(fl)) => fl.bad(*key, rate_per_second.value, m),
            _ => SettingsError::Flag {
                flag: "--rate-per-second",
                value: rate_per_second.value.to_string(),
                message: m,
            },
        });
    }
    let burst = pick(
        flags.burst.map(|b| (b, "--burst")),
        env.parse("VERBATIM_SERVE_BURST", |b: &u32| {
            limits::check("value", *b as u64, &limits::BURST)
        })?,
        at(file, "serve.burst", cfg.serve.burst),
        d.burst,
    );
    let max_body_bytes = pick(
        flags.max_body_bytes.map(|n| (n, "--max-body-bytes")),
        env.parse("VERBATIM_SERVE_MAX_BODY", in_range(limits::BODY_BYTES))?,
        at(file, "serve.max_body_bytes", cfg.serve.max_body_bytes),
        d.max_body_bytes,
    );
    let max_ingest_bytes = pick(
        flags.max_ingest_bytes.map(|n| (n, "--max-ingest-bytes")),
        env.parse("VERBATIM_SERVE_MAX_INGEST", in_range(limits::BODY_BYTES))?,
        at(file, "serve.max_ingest_bytes", cfg.serve.max_ingest_bytes),
        d.max_ingest_bytes,
    );
    let readers = pick(
        flags.readers.map(|n| (n, "--readers")),
        env.parse("VERBATIM_SERVE_READERS", in_range(limits::READERS))?,
        at(
            file,
            "serve.readers",
            cfg.serve.readers.unwrap_or_else(default_readers),
        ),
        d.readers.unwrap_or_else(default_readers),
    );
    file_range(
        file,
        "serve.readers",
        readers.value,
        limits::READERS,
        &readers.source,
    )?;
    if let (Some(fl), Source::File { .. }) = (file, &burst.source) {
        limits::check("value", burst.value as u64, &limits::BURST)
            .map_err(|m| fl.bad("serve.burst", burst.value, m))?;
    }
    file_range(
        file,
        "serve.max_body_bytes",
        max_body_bytes.value,
        limits::BODY_BYTES,
        &max_body_bytes.source,
    )?;
    file_range(
        file,
        "serve.max_ingest_bytes",
        max_ingest_bytes.value,
        limits::BODY_BYTES,
        &max_ingest_bytes.source,
    )?;
    Ok(ServeSettings {
        bind,
        tls_cert,
        tls_key,
        rate_per_second,
        burst,
        max_body_bytes,
        max_ingest_bytes,
        readers,
    })
}

/// The server's read connections when nothing sets them: one per core (at least 2, so that
/// one slow read never leaves none).
fn default_readers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, *limits::READERS.end() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> FileLayer {
        let path = PathBuf::from("/ws/verbatim.toml");
        let config = workspace::parse_config(&path, text).expect("valid config");
        let table: toml::Table = toml::from_str(text).unwrap();
        FileLayer::with_keys(path, config, &table)
    }

    fn env(pairs: &[(&str, &str)]) -> EnvLayer {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EnvLayer::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    const FILE: &str =
        "[search]\nlimit = 7\nmode = \"text\"\n[serve]\nburst = 30\nbind = \"127.0.0.1:9000\"\n";

    #[test]
    fn defaults_when_no_layer_says_anything() {
        let s = Settings::resolve(&Overrides::default(), &env(&[]), None).unwrap();
        assert_eq!(s.search.limit, Setting::new(10, Source::Default));
        assert_eq!(s.search.mode, Setting::new(Mode::Hybrid, Source::Default));
        assert_eq!(s.serve.burst.value, 20);
        assert_eq!(s.workspace.value, PathBuf::from("."));
        assert_eq!(
            s.models.model.value,
            ModelRef::Spec(crate::embed::DEFAULT_MODEL.into())
        );
        assert_eq!(s.file, None);
    }

    #[test]
    fn the_file_beats_the_defaults_only_for_the_keys_it_sets() {
        let f = file(FILE);
        let s = Settings::resolve(&Overrides::default(), &env(&[]), Some(&f)).unwrap();
        assert_eq!(s.search.limit.value, 7);
        assert_eq!(
            s.search.limit.source,
            Source::File {
                path: "/ws/verbatim.toml".into(),
                key: "search.limit"
            }
        );
        assert_eq!(s.search.mode.value, Mode::Text);
        assert_eq!(s.serve.burst.value, 30);
        assert_eq!(s.serve.bind.value, "127.0.0.1:9000".parse().unwrap());
        // Not in the file: still the default, and said so.
        assert_eq!(s.serve.rate_per_second.source, Source::Default);
        assert_eq!(s.ask.max_tokens.source, Source::Default);
    }

    /// `serve.readers`: flag > env > file > the machine's cores (at least 2); out of range
    /// from the file names the key.
    #[test]
    fn readers_resolve_in_order_and_default_to_the_cores() {
        let d = Settings::defaults().serve.readers;
        assert_eq!(d.source, Source::Default);
        assert!(d.value >= 2, "{d:?}");
        let f = file("[serve]\nreaders = 3\n");
        let s = Settings::resolve(&Overrides::default(), &env(&[]), Some(&f)).unwrap();
        assert_eq!(s.serve.readers.value, 3);
        let e = env(&[("VERBATIM_SERVE_READERS", "5")]);
        assert_eq!(
            Settings::resolve(&Overrides::default(), &e, Some(&f))
                .unwrap()
                .serve
                .readers,
            Setting::new(5, Source::Env("VERBATIM_SERVE_READERS"))
        );
        let flags = Overrides {
            readers: Some(1),
            ..Overrides::default()
        };
        let s = Settings::resolve(&flags, &e, Some(&f)).unwrap();
        assert_eq!(s.serve.readers, Setting::new(1, Source::Flag("--readers")));
        assert_eq!(s.serve.limits().readers, Some(1));
        let bad = file("[serve]\nreaders = 0\n");
        let err = Settings::resolve(&Overrides::default(), &env(&[]), Some(&bad))
            .unwrap_err()
            .to_string();
        assert!(err.contains("serve.readers"), "{err}");
        assert!(Settings::resolve(
            &Overrides::default(),
            &env(&[("VERBATIM_SERVE_READERS", "0")]),
            None
        )
        .is_err());
    }

    #[test]
    fn generation_options_are_the_resolved_ask_settings() {
        let f = file("[ask]\ntemperature = 0.7\nseed = 9\nmax_tokens = 64\n");
        let flags = Overrides {
            seed: Some(5),
            ..Overrides::default()
        };
        let g = Settings::resolve(&flags, &env(&[]), Some(&f))
            .unwrap()
            .ask
            .gen_options();
        // The flag beats the file; the file beats the defaults.
        assert_eq!((g.seed, g.temperature, g.max_tokens), (5, 0.7, 64));
        let d = Settings::defaults().ask.gen_options();
        let cfg = crate::workspace::AskConfig::default();
        assert_eq!(
            (d.seed, d.temperature, d.max_tokens),
            (cfg.seed, cfg.temperature, cfg.max_tokens)
        );
    }

    #[test]
    fn the_environment_beats_the_file() {
        let f = file(FILE);
        let e = env(&[
            ("VERBATIM_SEARCH_LIMIT", "3"),
            ("VERBATIM_SERVE_BURST", "5"),
            ("VERBATIM_BIND", "127.0.0.1:7000"),
            ("VERBATIM_MODELS", "/opt/models"),
            ("VERBATIM_THREADS", "2"),
        ]);
        let s = Settings::resolve(&Overrides::default(), &e, Some(&f)).unwrap();
        assert_eq!(
            s.search.limit,
            Setting::new(3, Source::Env("VERBATIM_SEARCH_LIMIT"))
        );
        assert_eq!(s.serve.burst.value, 5);
        assert_eq!(s.serve.bind.value, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(s.threads.value, Some(2));
        assert_eq!(s.models.models_dir.source, Source::Env("VERBATIM_MODELS"));
        // The file still gives what the environment does not.
        assert_eq!(s.search.mode.value, Mode::Text);
        let path = s.models.search_path();
        let first = &path.places()[0];
        assert_eq!(first.rule, crate::embed::catalog::Rule::Env);
        assert_eq!(first.dir, PathBuf::from("/opt/models"));
    }

    #[test]
    fn flags_beat_the_environment() {
        let f = file(FILE);
        let e = env(&[
            ("VERBATIM_SEARCH_LIMIT", "3"),
            ("VERBATIM_SERVE_BURST", "5"),
            ("VERBATIM_MODEL", "multilingual-e5-small"),
            ("VERBATIM_MODELS", "/opt/models"),
        ]);
        let flags = Overrides {
            search_limit: Some(4),
            burst: Some(6),
            model: Some("all-MiniLM-L6-v2".into()),
            models: Some("/flag/models".into()),
            ..Overrides::default()
        };
        let s = Settings::resolve(&flags, &e, Some(&f)).unwrap();
        assert_eq!(s.search.limit, Setting::new(4, Source::Flag("--limit")));
        assert_eq!(s.serve.burst, Setting::new(6, Source::Flag("--burst")));
        assert_eq!(
            s.models.model,
            Setting::new(
                ModelRef::Spec("all-MiniLM-L6-v2".into()),
                Source::Flag("--model")
            )
        );
        assert_eq!(
            s.models.search_path().places()[0].rule,
            crate::embed::catalog::Rule::Flag
        );
    }

    #[test]
    fn a_model_folder_in_the_file_wins_over_its_name_and_models_dir_is_relative() {
        let f = file("[model]\nname = \"x\"\npath = \"/m/x\"\n[models]\ndir = \"mods\"\n");
        let flags = Overrides {
            workspace: Some("/ws".into()),
            ..Overrides::default()
        };
        let s = Settings::resolve(&flags, &env(&[]), Some(&f)).unwrap();
        assert_eq!(s.models.model.value, ModelRef::Dir("/m/x".into()));
        assert_eq!(
            s.models.workspace_models_dir.value,
            Some(PathBuf::from("/ws/mods"))
        );
        assert_eq!(s.workspace.source, Source::Flag("--workspace"));
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        for (var, value) in [
            ("VERBATIM_THREADS", "0"),
            ("VERBATIM_SERVE_BURST", "many"),
            ("VERBATIM_SERVE_RATE", "NaN"),
            ("VERBATIM_SEARCH_MODE", "fuzzy"),
            ("VERBATIM_BIND", "localhost"),
        ] {
            let e = Settings::resolve(&Overrides::default(), &env(&[(var, value)]), None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(var) && e.contains(value), "{var}: {e}");
        }
    }

    #[test]
    fn a_bad_file_value_names_the_file_and_the_key() {
        for (text, key) in [
            ("[search]\nlimit = 0\n", "search.limit"),
            ("[serve]\nbind = \"everywhere\"\n", "serve.bind"),
            ("[serve]\nrate_per_second = -1.0\n", "serve.rate_per_second"),
            ("[ask]\ntemperature = 9.0\n", "ask.temperature"),
        ] {
            let e = Settings::resolve(&Overrides::default(), &env(&[]), Some(&file(text)))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("/ws/verbatim.toml") && e.contains(key),
                "{text}: {e}"
            );
        }
        // A value of the wrong type is refused by the parser, which names the key too.
        let e = workspace::parse_config(
            Path::new("/ws/verbatim.toml"),
            "[serve]\nburst = \"lots\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("/ws/verbatim.toml") && e.contains("serve.burst"),
            "{e}"
        );
    }

    #[test]
    fn a_tls_certificate_without_its_key_is_refused() {
        let e = Settings::resolve(
            &Overrides::default(),
            &env(&[("VERBATIM_TLS_CERT", "/c.pem")]),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("VERBATIM_TLS_CERT"), "{e}");
    }

    #[test]
    fn rows_list_every_setting_with_its_source() {
        let f = file(FILE);
        let s = Settings::resolve(&Overrides::default(), &env(&[]), Some(&f)).unwrap();
        let rows = s.rows();
        let limit = rows.iter().find(|(k, _, _)| k == "search.limit").unwrap();
        assert_eq!(limit.1, serde_json::json!(7));
        assert_eq!(limit.2, "/ws/verbatim.toml search.limit");
        for key in [
            "workspace",
            "threads",
            "models.model",
            "serve.burst",
            "privacy.allow_names",
            "ask.generator",
        ] {
            assert!(rows.iter().any(|(k, _, _)| k == key), "{key} missing");
        }
    }
}
