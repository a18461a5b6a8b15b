//! `verbatim restore`: two passes (check everything, then write into a temp folder renamed into
//! place).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::fs::{create_new, parent_of, set_mode, sync_dir};
use crate::pii::vault::{random_bytes, KEY_FILE};
use crate::workspace::{Workspace, WorkspaceError, CONFIG_FILE};

use super::archive::*;
use super::create::*;
use super::key::*;
use super::stream::*;
use super::*;

// ---------------------------------------------------------------------------------------------
// Restore.

#[cfg(test)]
thread_local! {
    /// Fault injection for unit tests only (compiled out of every build but `cargo test`'s): the
    /// disk is "full" once pass 2 has written this many bytes of file contents.
    pub(super) static FULL_AFTER: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// The lock file a restore holds inside its temp folder while it writes: a temp folder whose
/// lock is free belongs to a restore that died (killed, power cut) and may be removed. Backups
/// never archive `*.lock`, so it cannot clash with a restored file; it is removed (still held)
/// just before the rename.
const RESTORE_LOCK: &str = ".lock";

/// The prefix of the temp folders restores into `to` write in (beside it).
fn temp_prefix(to: &Path) -> String {
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "workspace".into());
    format!(".{name}.restore-")
}

/// Removes the temp folders of earlier restores into `to` that died before renaming theirs into
/// place (their lock is free). One still being written (its lock held) is left alone, and so
/// is one without a lock file (a restore between creating its folder and its lock). Returns
/// how many were removed.
fn remove_dead_restores(parent: &Path, to: &Path) -> usize {
    let prefix = temp_prefix(to);
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let dead = e.file_name().to_string_lossy().starts_with(&prefix)
            && e.file_type().is_ok_and(|t| t.is_dir())
            && fs::OpenOptions::new()
                .write(true)
                .open(e.path().join(RESTORE_LOCK))
                .is_ok_and(|f| f.try_lock().is_ok());
        if dead && fs::remove_dir_all(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Pass 2: writes the entries under `root`.
pub(super) struct Writer {
    pub(super) root: PathBuf,
    pub(super) current: Option<(PathBuf, io::BufWriter<fs::File>)>,
    pub(super) dirs: Vec<PathBuf>,
    pub(super) files: usize,
    pub(super) bytes: u64,
}

impl Visit for Writer {
    fn dir(&mut self, path: &str, mode: u32) -> Result<(), BackupError> {
        let p = self.root.join(path);
        fs::create_dir(&p).map_err(io_err(&p))?;
        // A folder the owner cannot enter would make the workspace unusable.
        set_mode(&p, mode | 0o700).map_err(io_err(&p))?;
        self.dirs.push(p);
        Ok(())
    }

    fn file_start(&mut self, path: &str, mode: u32, _len: u64) -> Result<(), BackupError> {
        let p = self.root.join(path);
        // Parents come before their files in the archive; the store, first, sits at the root.
        let mode = if path == KEY_FILE {
            0o600
        } else {
            mode | 0o600
        };
        let f = create_new(&p, mode).map_err(io_err(&p))?;
        // create_new's mode is filtered by the umask; the key file must be exactly 0600.
        set_mode(&p, mode).map_err(io_err(&p))?;
        self.current = Some((p, io::BufWriter::with_capacity(1 << 16, f)));
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        let (p, w) = self.current.as_mut().expect("inside a file");
        #[cfg(test)]
        if FULL_AFTER
            .get()
            .is_some_and(|at| self.bytes + bytes.len() as u64 > at)
        {
            return Err(io_err(p)(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (injected by a test)",
            )));
        }
        w.write_all(bytes).map_err(io_err(p))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn file_end(&mut self) -> Result<(), BackupError> {
        let (p, w) = self.current.take().expect("inside a file");
        let f = w.into_inner().map_err(|e| io_err(&p)(e.into_error()))?;
        f.sync_all().map_err(io_err(&p))?;
        self.files += 1;
        Ok(())
    }
}

/// Restores the backup `file` into the new workspace folder `to`.
///
/// `to` must not exist, or be an empty folder. Nothing is written anywhere until the whole file
/// has been authenticated and every checksum verified (pass 1); then it is written into a temp
/// folder beside `to` and renamed into place, and the workspace is opened to check it.
pub fn restore(file: &Path, to: &Path, key: &KeySource) -> Result<RestoreSummary, BackupError> {
    restore_with_progress(file, to, key, &crate::progress::NoProgress)
}

/// [`restore`], reporting two steps to `progress`: "checking" (pass 1) and "restoring" (pass 2),
/// each counting the bytes of the backup file read (its size less the header is the total).
///
/// Whatever stops it (an error, a full disk, a kill), `to` is either untouched or the complete
/// workspace: the temp folder is renamed into place only once every file in it is written and
/// fsynced. A temp folder left by a restore that was killed is removed by the next restore into
/// the same place.
pub fn restore_with_progress(
    file: &Path,
    to: &Path,
    key: &KeySource,
    progress: &dyn crate::progress::Progress,
) -> Result<RestoreSummary, BackupError> {
    let started = Instant::now();
    if to.join(CONFIG_FILE).exists() {
        return Err(BackupError::TargetIsWorkspace {
            path: to.to_path_buf(),
        });
    }
    let to_exists = match fs::symlink_metadata(to) {
        Ok(m) if m.is_dir() => {
            let mut it = fs::read_dir(to).map_err(io_err(to))?;
            if it.next().is_some() {
                return Err(BackupError::TargetNotEmpty {
                    path: to.to_path_buf(),
                });
            }
            true
        }
        Ok(_) => {
            return Err(BackupError::TargetNotEmpty {
                path: to.to_path_buf(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_err(to)(e)),
    };
    let (header, file_key) = open_backup(file, key)?;
    let total = fs::metadata(file)
        .map_err(io_err(file))?
        .len()
        .saturating_sub(HEADER_LEN as u64);

    // Pass 1: authenticate everything, check every hash, write nothing.
    progress.start("checking", total);
    let manifest = read_archive(
        reopen(file, &header, &file_key, progress)?,
        file,
        &mut Check,
    )?;
    progress.finish();

    // Pass 2: into a temp folder beside the target, locked while it is written.
    let parent = parent_of(to);
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    remove_dead_restores(parent, to);
    let tmp = parent.join(format!(
        "{}{}",
        temp_prefix(to),
        hex::encode(random_bytes(6))
    ));
    fs::DirBuilder::new()
        .recursive(false)
        .create(&tmp)
        .map_err(io_err(&tmp))?;
    let guard = RemoveDirOnDrop(Some(tmp.clone()));
    set_mode(&tmp, 0o700).map_err(io_err(&tmp))?;
    let lock_path = tmp.join(RESTORE_LOCK);
    let lock = create_new(&lock_path, 0o644).map_err(io_err(&lock_path))?;
    lock.try_lock().map_err(|e| io_err(&lock_path)(e.into()))?;
    let mut writer = Writer {
        root: tmp.clone(),
        current: None,
        dirs: vec![tmp.clone()],
        files: 0,
        bytes: 0,
    };
    progress.start("restoring", total);
    let again = read_archive(
        reopen(file, &header, &file_key, progress)?,
        file,
        &mut writer,
    )?;
    if again != manifest {
        // The file changed between the passes (and both versions authenticated).
        return Err(BackupError::Decrypt {
            path: file.to_path_buf(),
            offset: 0,
        });
    }
    // The lock file goes before the folder is synced (a restored workspace holds no lock
    // file); the lock stays held until the rename, and a folder without a lock file is never
    // taken for a dead restore's.
    fs::remove_file(&lock_path).map_err(io_err(&lock_path))?;
    for d in writer.dirs.iter().rev() {
        sync_dir(d)?;
    }
    // On Unix a rename replaces an empty folder in one step; elsewhere it must go first.
    if to_exists && !cfg!(unix) {
        fs::remove_dir(to).map_err(io_err(to))?;
    }
    fs::rename(&tmp, to).map_err(io_err(to))?;
    let mut guard = guard;
    guard.0 = None;
    sync_dir(parent)?;
    progress.finish();
    drop(lock);

    let ws = Workspace::open(to)?;
    let verbatims = ws.store.stats().map_err(WorkspaceError::from)?.verbatims;
    drop(ws.indexes()?);
    Ok(RestoreSummary {
        file: file.to_path_buf(),
        to: to.to_path_buf(),
        files: writer.files,
        bytes: writer.bytes,
        verbatims,
        created: manifest.created,
        verbatim_version: manifest.verbatim_version,
        seconds: started.elapsed().as_secs_f64(),
    })
}
