//! The archive inside the stream: folders, files and the manifest; read back with every path
//! and hash checked.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::stream::*;
use super::*;

/// The archive's table of contents, last in the archive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Manifest {
    pub(super) format: u32,
    pub(super) verbatim_version: String,
    pub(super) created: i64,
    pub(super) verbatims: i64,
    pub(super) dirs: Vec<ManifestDir>,
    pub(super) files: Vec<ManifestFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ManifestDir {
    pub(super) path: String,
    pub(super) mode: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ManifestFile {
    pub(super) path: String,
    pub(super) mode: u32,
    pub(super) len: u64,
    pub(super) sha256: String,
}

// ---------------------------------------------------------------------------------------------
// The archive inside.

pub(super) fn put_path<W: Write>(w: &mut W, path: &str) -> io::Result<()> {
    let len = u16::try_from(path.len())
        .map_err(|_| io::Error::other(format!("path too long: {path}")))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(path.as_bytes())
}

/// Writes archive entries and keeps the manifest.
pub(super) struct ArchiveWriter<W: Write> {
    pub(super) w: W,
    pub(super) dirs: Vec<ManifestDir>,
    pub(super) files: Vec<ManifestFile>,
    pub(super) bytes: u64,
}

impl<W: Write> ArchiveWriter<W> {
    pub(super) fn new(mut w: W) -> io::Result<Self> {
        w.write_all(ARCHIVE_MAGIC)?;
        w.write_all(&[ARCHIVE_VERSION])?;
        Ok(ArchiveWriter {
            w,
            dirs: Vec::new(),
            files: Vec::new(),
            bytes: 0,
        })
    }

    pub(super) fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        self.w.write_all(b"D")?;
        put_path(&mut self.w, path)?;
        self.w.write_all(&mode.to_le_bytes())?;
        self.dirs.push(ManifestDir {
            path: path.to_string(),
            mode,
        });
        Ok(())
    }

    /// Archives the file at `src` under `path`. It must not change while it is read (the
    /// workspace lock is held, and the store is a snapshot).
    pub(super) fn file(&mut self, path: &str, mode: u32, src: &Path) -> io::Result<()> {
        let mut f = fs::File::open(src)?;
        let len = f.metadata()?.len();
        self.w.write_all(b"F")?;
        put_path(&mut self.w, path)?;
        self.w.write_all(&mode.to_le_bytes())?;
        self.w.write_all(&len.to_le_bytes())?;
        let mut hasher = Sha256::new();
        let mut buf = Zeroizing::new(vec![0u8; 1 << 16]);
        let mut left = len;
        while left > 0 {
            let want = (buf.len() as u64).min(left) as usize;
            let n = f.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::other(format!(
                    "{} shrank while it was being backed up",
                    src.display()
                )));
            }
            hasher.update(&buf[..n]);
            self.w.write_all(&buf[..n])?;
            left -= n as u64;
        }
        self.bytes += len;
        self.files.push(ManifestFile {
            path: path.to_string(),
            mode,
            len,
            sha256: hex::encode(hasher.finalize()),
        });
        Ok(())
    }

    pub(super) fn finish(mut self, verbatims: i64) -> io::Result<(W, usize, u64)> {
        let manifest = Manifest {
            format: u32::from(ARCHIVE_VERSION),
            verbatim_version: env!("CARGO_PKG_VERSION").to_string(),
            created: chrono::Utc::now().timestamp(),
            verbatims,
            dirs: std::mem::take(&mut self.dirs),
            files: std::mem::take(&mut self.files),
        };
        let body = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
        self.w.write_all(b"M")?;
        self.w.write_all(&(body.len() as u32).to_le_bytes())?;
        self.w.write_all(&body)?;
        Ok((self.w, manifest.files.len(), self.bytes))
    }
}

/// What reading an archive does with its entries (nothing in pass 1; writing in pass 2).
pub(super) trait Visit {
    fn dir(&mut self, path: &str, mode: u32) -> Result<(), BackupError>;
    fn file_start(&mut self, path: &str, mode: u32, len: u64) -> Result<(), BackupError>;
    fn data(&mut self, bytes: &[u8]) -> Result<(), BackupError>;
    fn file_end(&mut self) -> Result<(), BackupError>;
}

/// Pass 1: read and check only.
pub(super) struct Check;

impl Visit for Check {
    fn dir(&mut self, _: &str, _: u32) -> Result<(), BackupError> {
        Ok(())
    }
    fn file_start(&mut self, _: &str, _: u32, _: u64) -> Result<(), BackupError> {
        Ok(())
    }
    fn data(&mut self, _: &[u8]) -> Result<(), BackupError> {
        Ok(())
    }
    fn file_end(&mut self) -> Result<(), BackupError> {
        Ok(())
    }
}

/// An archived path is relative, `/`-separated, of plain names only: nothing can land outside
/// the restored folder.
pub(super) fn safe_path(p: &str) -> bool {
    !p.is_empty()
        && !p.contains('\\')
        && !p.contains('\0')
        && p.split('/').all(|c| !c.is_empty())
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Reads a whole archive from the decrypted stream, handing entries to `visit`, and checks it
/// against its manifest: same folders, same files in the same order with the same lengths,
/// modes and SHA-256, and nothing after the manifest.
pub(super) fn read_archive<R: Read>(
    mut r: R,
    file: &Path,
    visit: &mut dyn Visit,
) -> Result<Manifest, BackupError> {
    let malformed = |reason: String| BackupError::Archive {
        path: file.to_path_buf(),
        reason,
    };
    let read = |buf: &mut [u8], r: &mut R| r.read_exact(buf).map_err(|e| stream_err(file, e));
    let mut head = [0u8; 5];
    read(&mut head, &mut r)?;
    if &head[..4] != ARCHIVE_MAGIC || head[4] != ARCHIVE_VERSION {
        return Err(malformed("unknown archive format".into()));
    }
    let mut dirs = Vec::new();
    let mut files: Vec<ManifestFile> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut buf = Zeroizing::new(vec![0u8; 1 << 16]);
    loop {
        let mut tag = [0u8; 1];
        read(&mut tag, &mut r)?;
        if tag[0] == b'M' {
            break;
        }
        if tag[0] != b'D' && tag[0] != b'F' {
            return Err(malformed(format!("unknown entry tag {}", tag[0])));
        }
        let mut len2 = [0u8; 2];
        read(&mut len2, &mut r)?;
        let mut pb = vec![0u8; u16::from_le_bytes(len2) as usize];
        read(&mut pb, &mut r)?;
        let path = String::from_utf8(pb).map_err(|_| malformed("a path is not UTF-8".into()))?;
        if !safe_path(&path) {
            return Err(malformed(format!("unsafe path {path:?}")));
        }
        if !seen.insert(path.clone()) {
            return Err(malformed(format!("{path} appears twice")));
        }
        let mut m4 = [0u8; 4];
        read(&mut m4, &mut r)?;
        let mode = u32::from_le_bytes(m4) & 0o777;
        if tag[0] == b'D' {
            visit.dir(&path, mode)?;
            dirs.push(ManifestDir { path, mode });
            continue;
        }
        let mut l8 = [0u8; 8];
        read(&mut l8, &mut r)?;
        let len = u64::from_le_bytes(l8);
        visit.file_start(&path, mode, len)?;
        let mut hasher = Sha256::new();
        let mut left = len;
        while left > 0 {
            let n = (buf.len() as u64).min(left) as usize;
            read(&mut buf[..n], &mut r)?;
            hasher.update(&buf[..n]);
            visit.data(&buf[..n])?;
            left -= n as u64;
        }
        visit.file_end()?;
        files.push(ManifestFile {
            path,
            mode,
            len,
            sha256: hex::encode(hasher.finalize()),
        });
    }
    let mut l4 = [0u8; 4];
    read(&mut l4, &mut r)?;
    let mlen = u32::from_le_bytes(l4);
    if mlen > MAX_MANIFEST {
        return Err(malformed(format!("manifest of {mlen} bytes")));
    }
    let mut body = vec![0u8; mlen as usize];
    read(&mut body, &mut r)?;
    let manifest: Manifest =
        serde_json::from_slice(&body).map_err(|e| malformed(format!("manifest: {e}")))?;
    let mut rest = [0u8; 1];
    if r.read(&mut rest).map_err(|e| stream_err(file, e))? != 0 {
        return Err(malformed("data after the manifest".into()));
    }
    if manifest.dirs != dirs {
        return Err(malformed("the folders differ from the manifest".into()));
    }
    if manifest.files.len() != files.len() {
        return Err(malformed(format!(
            "{} files, the manifest lists {}",
            files.len(),
            manifest.files.len()
        )));
    }
    for (got, listed) in files.iter().zip(&manifest.files) {
        if got.path != listed.path || got.len != listed.len || got.mode != listed.mode & 0o777 {
            return Err(malformed(format!("{} differs from the manifest", got.path)));
        }
        if got.sha256 != listed.sha256 {
            return Err(BackupError::Checksum {
                path: file.to_path_buf(),
                entry: got.path.clone(),
            });
        }
    }
    Ok(manifest)
}
