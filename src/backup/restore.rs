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

    // Pass 1: authenticate everything, check every hash, write nothing.
    let manifest = read_archive(reopen(file, &header, &file_key)?, file, &mut Check)?;

    // Pass 2: into a temp folder beside the target.
    let parent = parent_of(to);
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "workspace".into());
    let tmp = parent.join(format!(".{name}.restore-{}", hex::encode(random_bytes(6))));
    fs::DirBuilder::new()
        .recursive(false)
        .create(&tmp)
        .map_err(io_err(&tmp))?;
    set_mode(&tmp, 0o700).map_err(io_err(&tmp))?;
    let guard = RemoveDirOnDrop(Some(tmp.clone()));
    let mut writer = Writer {
        root: tmp.clone(),
        current: None,
        dirs: vec![tmp.clone()],
        files: 0,
        bytes: 0,
    };
    let again = read_archive(reopen(file, &header, &file_key)?, file, &mut writer)?;
    if again != manifest {
        // The file changed between the passes (and both versions authenticated).
        return Err(BackupError::Decrypt {
            path: file.to_path_buf(),
            offset: 0,
        });
    }
    for d in writer.dirs.iter().rev() {
        sync_dir(d)?;
    }
    if to_exists {
        fs::remove_dir(to).map_err(io_err(to))?;
    }
    fs::rename(&tmp, to).map_err(io_err(to))?;
    let mut guard = guard;
    guard.0 = None;
    sync_dir(parent)?;

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
