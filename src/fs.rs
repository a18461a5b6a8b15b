//! Durable file writes: one module, one policy, for every file verbatim writes in place.
//!
//! **Why one module.** A write that must survive a crash is: write the whole content to a temp
//! file in the same folder, fsync it, rename (or hard-link) it into place, fsync the folder. Two
//! copies of that recipe had drifted apart (one swallowed folder-fsync errors, the other returned
//! them; one named its temp file `path.with_extension("tmp")`, so `report.html` and `report.md`
//! written at once shared `report.tmp`). Here there is one recipe and one policy:
//!
//! - **Errors propagate.** An fsync that fails means the data may not be on disk; the caller must
//!   not report success, and must not retry (after a failed fsync the kernel may already have
//!   dropped the dirty pages, so a second fsync can succeed without the data being there).
//! - **Temp names are unique**: `.NAME.PID.RANDOM.tmp` beside the target, so two writers of
//!   different targets (or of the same target, in two processes) never share a temp file, and a
//!   leftover is recognisably ours.
//! - **A failed write leaves the old file**: nothing touches the target until the new content is
//!   complete and durable; the temp file is removed on failure.
//!
//! This is the bottom layer: it imports nothing from the rest of the crate.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file system operation that failed, with the path it was about.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FsError {
    /// The file or folder.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl FsError {
    /// Wraps `source` with `path`.
    pub fn new(path: &Path, source: io::Error) -> FsError {
        FsError {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn at(path: &Path) -> impl Fn(io::Error) -> FsError + '_ {
    move |source| FsError::new(path, source)
}

/// The folder holding `path` (`.` for a bare file name).
pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Fsyncs the folder `dir`, so that a rename, link or new file inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(at(dir))
}

/// Fsyncs the file at `path` (written by someone else, e.g. a library's dump).
pub fn sync_file(path: &Path) -> Result<(), FsError> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(at(path))
}

/// Creates `path`, which must not exist, with permission bits `mode` (filtered by the umask) on
/// Unix.
pub fn create_new(path: &Path, mode: u32) -> io::Result<fs::File> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    opts.open(path)
}

/// A fresh temp path beside `path`: `.NAME.PID.RANDOM.tmp` (RANDOM: 64 bits, hex).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let mut r = [0u8; 8];
    if getrandom::fill(&mut r).is_err() {
        // No OS randomness: the clock still tells two writers of one process apart when the
        // PID does not.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        r = nanos.to_le_bytes();
    }
    parent_of(path).join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        hex::encode(r)
    ))
}

/// Removes a temp file when dropped, unless [`TempFile::keep`] was called.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Writes `bytes` to a new temp file beside `path` (mode `mode`), fsynced; removed on error.
fn write_temp(path: &Path, bytes: &[u8], mode: u32) -> Result<(PathBuf, TempFile), FsError> {
    let tmp = temp_path(path);
    let mut f = create_new(&tmp, mode).map_err(at(&tmp))?;
    let guard = TempFile(Some(tmp.clone()));
    f.write_all(bytes).map_err(at(&tmp))?;
    f.sync_all().map_err(at(&tmp))?;
    Ok((tmp, guard))
}

/// Replaces (or creates) `path` with `bytes`, atomically and durably: temp file in the same
/// folder, fsync, rename, fsync the folder. On any error the old file is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let (tmp, guard) = write_temp(path, bytes, 0o666)?;
    fs::rename(&tmp, path).map_err(at(path))?;
    guard.keep();
    sync_dir(parent_of(path))
}

/// Creates `path` with `bytes` and permission bits exactly `mode` (Unix), durably, and never
/// replaces an existing file: temp file, fsync, hard link (which fails if `path` exists: the error
/// then has kind [`io::ErrorKind::AlreadyExists`]), fsync the folder.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    let (tmp, guard) = write_temp(path, bytes, mode)?;
    set_mode(&tmp, mode).map_err(at(&tmp))?;
    fs::hard_link(&tmp, path).map_err(at(path))?;
    drop(guard);
    sync_dir(parent_of(path))
}

/// Sets the permission bits of `path` to exactly `mode` (Unix; nothing elsewhere).
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// The permission bits of a file (0o644 where there are none).
pub fn mode_of(meta: &fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o777
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0o644
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn temp_names_differ_per_target_and_per_call() {
        let a = temp_path(Path::new("/x/report.html"));
        let b = temp_path(Path::new("/x/report.md"));
        let c = temp_path(Path::new("/x/report.html"));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.parent(), Some(Path::new("/x")));
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".report.html.") && name.ends_with(".tmp"),
            "{name}"
        );
        assert!(
            name.contains(&format!(".{}.", std::process::id())),
            "{name}"
        );
        // The old scheme gave both `report.tmp`.
        assert_ne!(
            a.file_name(),
            Path::new("report.html").with_extension("tmp").file_name()
        );
    }

    #[test]
    fn atomic_writes_to_siblings_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let (html, md) = (dir.path().join("x.html"), dir.path().join("x.md"));
        // Concurrently, many times over: each file ends with its own content, whole.
        std::thread::scope(|s| {
            for (path, byte) in [(&html, b'h'), (&md, b'm')] {
                s.spawn(move || {
                    for i in 0..200usize {
                        let body = vec![byte; 1000 + i];
                        write_atomic(path, &body).unwrap();
                    }
                });
            }
        });
        assert_eq!(fs::read(&html).unwrap(), vec![b'h'; 1199]);
        assert_eq!(fs::read(&md).unwrap(), vec![b'm'; 1199]);
        // Sequentially too, and nothing is left behind.
        write_atomic(&html, b"<p>html</p>").unwrap();
        write_atomic(&md, b"# md").unwrap();
        assert_eq!(fs::read(&html).unwrap(), b"<p>html</p>");
        assert_eq!(fs::read(&md).unwrap(), b"# md");
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.html");
        write_atomic(&path, b"old").unwrap();
        // The rename fails: the target is now a non-empty folder.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("inside"), b"x").unwrap();
        let e = write_atomic(&blocked, b"new").unwrap_err();
        assert_eq!(e.path, blocked);
        assert!(blocked.is_dir());
        // The temp file cannot be created: the folder is gone.
        let missing = dir.path().join("nowhere").join("x.html");
        let e = write_atomic(&missing, b"new").unwrap_err();
        assert!(e.path.starts_with(dir.path().join("nowhere")), "{e}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
    }

    #[test]
    fn write_new_never_replaces_and_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        write_new(&path, b"one", 0o600).unwrap();
        let e = write_new(&path, b"two", 0o600).unwrap_err();
        assert_eq!(e.source.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        #[cfg(unix)]
        assert_eq!(mode_of(&fs::metadata(&path).unwrap()), 0o600);
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
    }
}
