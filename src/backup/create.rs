//! `verbatim backup`: the workspace walk, the store snapshot, and the file written through a temp
//! file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::fs::{create_new, mode_of, parent_of, sync_dir};
use crate::workspace::{Workspace, WorkspaceError, STORE_FILE};

use super::archive::*;
use super::header::*;
use super::key::*;
use super::stream::*;
use super::*;

// ---------------------------------------------------------------------------------------------
// Backup.

/// Removes a file on drop unless disarmed.
pub(super) struct RemoveOnDrop(pub(super) Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Removes a folder tree on drop unless disarmed.
pub(super) struct RemoveDirOnDrop(pub(super) Option<PathBuf>);

impl Drop for RemoveDirOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// Left out of every backup: locks, temp files, the live store (archived from its snapshot),
/// and backup files kept inside the workspace (each backup would otherwise hold all earlier ones).
pub(super) fn skipped_name(rel: &str, name: &str) -> bool {
    let top = !rel.contains('/');
    (top && (name == STORE_FILE
        || name == format!("{STORE_FILE}-wal")
        || name == format!("{STORE_FILE}-shm")
        || name == format!("{STORE_FILE}-journal")
        || name == SNAPSHOT_FILE))
        || name.ends_with(".lock")
        || name.ends_with(".tmp")
        || name.ends_with(".partial")
        || name.ends_with(".vbk")
}

/// The workspace's files and folders (relative `/` paths, sorted, folders before their
/// contents), without the skipped ones.
pub(super) fn walk(
    root: &Path,
    rel: &str,
    exclude: &[PathBuf],
    out: &mut Vec<(String, PathBuf, bool, u32)>,
    skipped: &mut Vec<String>,
) -> Result<(), BackupError> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(&dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let path = e.path();
        let Some(name) = name.to_str() else {
            skipped.push(path.display().to_string());
            continue;
        };
        let r = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        if skipped_name(&r, name) || exclude.contains(&path) {
            continue;
        }
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if meta.is_dir() {
            out.push((r.clone(), path, true, mode_of(&meta)));
            walk(root, &r, exclude, out, skipped)?;
        } else if meta.is_file() {
            out.push((r, path, false, mode_of(&meta)));
        } else {
            skipped.push(r);
        }
    }
    Ok(())
}

/// Takes a consistent copy of the store with `VACUUM INTO` (a read transaction: writers, which
/// are held off by the workspace lock anyway, and readers appending to the audit trail see no
/// difference). The copy keeps every explicit `INTEGER PRIMARY KEY` (the `doc` numbers the
/// indexes point at); only implicit rowids of tables without one may be renumbered, and none
/// is referred to.
pub(super) fn snapshot_store(root: &Path) -> Result<RemoveOnDrop, BackupError> {
    let store = root.join(STORE_FILE);
    let snap = root.join(SNAPSHOT_FILE);
    let _ = fs::remove_file(&snap);
    let guard = RemoveOnDrop(Some(snap.clone()));
    let err = |source| BackupError::Snapshot {
        path: store.clone(),
        source,
    };
    let conn = rusqlite::Connection::open(&store).map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(err)?;
    let target = snap.to_str().ok_or_else(|| BackupError::Io {
        path: snap.clone(),
        source: io::Error::other("the workspace path is not UTF-8"),
    })?;
    conn.execute("VACUUM INTO ?1", [target]).map_err(err)?;
    drop(conn);
    Ok(guard)
}

/// Backs up the workspace in `ws_root` into `out` (refused if it exists), encrypted with `key`.
///
/// Holds the workspace write lock throughout, brings the indexes up to the store first (so the
/// archived indexes cover exactly the archived store), snapshots the store with `VACUUM INTO`,
/// and writes `out` through a temp file that is renamed into place once complete and fsynced.
pub fn backup(
    ws_root: &Path,
    out: &Path,
    key: &KeySource,
    opts: &BackupOptions,
) -> Result<BackupSummary, BackupError> {
    backup_with_progress(ws_root, out, key, opts, &crate::progress::NoProgress)
}

/// [`backup`], reporting one step to `progress`: "archiving", counting the bytes of the files
/// archived (the store snapshot and every file; a file counts once it is in).
pub fn backup_with_progress(
    ws_root: &Path,
    out: &Path,
    key: &KeySource,
    opts: &BackupOptions,
    progress: &dyn crate::progress::Progress,
) -> Result<BackupSummary, BackupError> {
    let started = Instant::now();
    if out.exists() {
        return Err(BackupError::Exists {
            path: out.to_path_buf(),
        });
    }
    let ws = Workspace::open(ws_root)?;
    let _lock = ws.lock()?;
    drop(ws.indexes()?);
    let verbatims = ws.store.stats().map_err(WorkspaceError::from)?.verbatims;
    let store_mode = fs::metadata(ws_root.join(STORE_FILE))
        .map(|m| mode_of(&m))
        .unwrap_or(0o644);
    let snap = snapshot_store(ws_root)?;
    let snap_path = snap.0.clone().expect("snapshot path");

    let kdf = match key {
        KeySource::Passphrase(_) => Kdf::Argon2id(opts.kdf),
        KeySource::Key(_) => Kdf::KeyFile,
    };
    let header = Header::new(kdf, opts.chunk.clamp(1, MAX_CHUNK));
    let file_key = derive_key(key, &header, out)?;

    // A unique name: two backups to the same file never share (or delete) a temp file.
    let tmp = crate::fs::temp_path(out);
    // Errors creating the temp file name `out`: it is the path the user chose.
    let f = create_new(&tmp, 0o600).map_err(io_err(out))?;
    let tmp_guard = RemoveOnDrop(Some(tmp.clone()));

    // Never archive the backup itself when it is written inside the workspace.
    let exclude: Vec<PathBuf> = [out, tmp.as_path()]
        .iter()
        .filter_map(|p| {
            let parent = fs::canonicalize(parent_of(p)).ok()?;
            Some(parent.join(p.file_name()?))
        })
        .collect();
    let canon_root = fs::canonicalize(ws_root).map_err(io_err(ws_root))?;
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    walk(&canon_root, "", &exclude, &mut entries, &mut skipped)?;

    let w = io::BufWriter::with_capacity(1 << 16, f);
    let sealer = Sealer::new(w, &header, &file_key).map_err(io_err(&tmp))?;
    let mut archive = ArchiveWriter::new(sealer).map_err(io_err(&tmp))?;
    let len_of = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let total = len_of(&snap_path)
        + entries
            .iter()
            .filter(|e| !e.2)
            .map(|e| len_of(&e.1))
            .sum::<u64>();
    progress.start("archiving", total);
    // The store goes first, from its snapshot; then folders and files in path order.
    archive
        .file(STORE_FILE, store_mode, &snap_path)
        .map_err(io_err(&snap_path))?;
    progress.advance(archive.bytes);
    for (rel, path, is_dir, mode) in &entries {
        let before = archive.bytes;
        let r = if *is_dir {
            archive.dir(rel, *mode)
        } else {
            archive.file(rel, *mode, path)
        };
        r.map_err(|e| stream_or_source(e, &tmp, path))?;
        if archive.bytes > before {
            progress.advance(archive.bytes - before);
        }
    }
    let (sealer, files, bytes) = archive.finish(verbatims).map_err(io_err(&tmp))?;
    drop(snap);
    let w = sealer.finish().map_err(io_err(&tmp))?;
    let f = w.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
    f.sync_all().map_err(io_err(&tmp))?;
    let file_bytes = f.metadata().map_err(io_err(&tmp))?.len();
    drop(f);
    // A hard link fails if `out` appeared meanwhile: a backup never replaces a file.
    fs::hard_link(&tmp, out).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => BackupError::Exists {
            path: out.to_path_buf(),
        },
        _ => io_err(out)(e),
    })?;
    drop(tmp_guard);
    sync_dir(parent_of(out))?;
    progress.finish();
    Ok(BackupSummary {
        out: out.to_path_buf(),
        files,
        bytes,
        file_bytes,
        verbatims,
        key: key.kind(),
        kdf: match kdf {
            Kdf::Argon2id(p) => Some(p),
            Kdf::KeyFile => None,
        },
        skipped,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// An error while archiving `source` into `tmp`: a TooManyChunks/IO on the output names `tmp`,
/// anything else names the source file.
pub(super) fn stream_or_source(e: io::Error, tmp: &Path, source: &Path) -> BackupError {
    if e.get_ref().is_some_and(|i| i.is::<TooManyChunks>()) {
        return BackupError::TooLarge {
            path: tmp.to_path_buf(),
        };
    }
    io_err(source)(e)
}
