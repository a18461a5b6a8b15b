//! Encrypted backups of a whole workspace (`verbatim backup`, `verbatim restore`).
//!
//! A backup holds everything a workspace needs to come back as it was: `verbatim.toml`, the key
//! file `verbatim.key` (without it the sealed originals are lost and pseudonyms change — which is
//! also why the file must be encrypted), a consistent snapshot of the SQLite store, and the
//! `index/` folder (tantivy + HNSW), so searches after a restore give the same ids and scores
//! without a rebuild.
//!
//! # The file
//!
//! ```text
//! header (57 bytes, all of it the associated data of every chunk)
//!   0..4    "VBK1"
//!   4       format version (1)
//!   5       key: 1 = Argon2id over a passphrase, 2 = key file (32 random bytes)
//!   6..18   Argon2id m (KiB), t, p — u32 LE each (0 for a key file)
//!   18..34  salt (random)
//!   34..53  nonce prefix (random, 19 bytes)
//!   53..57  plaintext bytes per chunk (u32 LE; 1 MiB)
//! chunks: XChaCha20-Poly1305(chunk i), nonce = prefix ‖ i (u32 BE) ‖ last (1 or 0)
//! ```
//!
//! This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár; as in libsodium's
//! secretstream and age): the counter in the nonce detects reordered, swapped, repeated or
//! dropped chunks; the last-chunk flag detects truncation at a chunk boundary and data appended
//! after the end; the header as associated data detects any header edit; the tag detects every
//! flipped bit. Only one chunk is in memory at a time, so a workspace of any size backs up in a
//! few MiB.
//!
//! The key: with a passphrase, Argon2id (m = 64 MiB, t = 3, p = 1, parameters in the header so
//! they can grow later). 64 MiB and 3 passes is RFC 9106's second recommended setting (memory-
//! constrained) and well above OWASP's minimum (19 MiB, t = 2); p = 1 because the `argon2` crate
//! computes lanes one after another, so more lanes would cost us time without costing an attacker
//! more. It takes a fraction of a second per backup or restore, and an attacker 64 MiB of memory
//! per guess. With a key file, the file key is HMAC-SHA256(key, "verbatim backup v1" ‖ salt): a
//! fresh key per backup.
//!
//! The plaintext is a small archive: `"VBKA"`, version 1, then entries (`D` path mode, `F` path
//! mode length bytes), and last `M` + a JSON manifest (verbatim version, date, verbatim count,
//! every folder, and every file with its length, mode and SHA-256). Restoring checks the manifest
//! against what it read, refuses unsafe paths (absolute, `..`), and refuses anything after it.
//!
//! # Restoring
//!
//! Pass 1 decrypts and authenticates every chunk and checks every hash without writing anything.
//! Pass 2 decrypts again (the file is read again, so it is authenticated again) into a temp
//! folder beside the target, which is renamed into place only when all of it is written and
//! fsynced; the restored workspace is then opened to check it works.
//!
//! Whatever stops a restore — a damaged file, a wrong key, a full disk, a kill — the target is
//! either untouched or the complete workspace, never half of it. An error removes the temp
//! folder; a killed restore cannot, so each restore holds a lock on a file in its temp folder
//! while it writes, and the next restore into the same place removes the temp folders whose
//! lock is free (dead restores) and leaves those whose lock is held (running ones). The tests
//! kill the real binary in both passes (`tests/it/backup.rs`) and fill the disk through a
//! `#[cfg(test)]` seam (`restore::FULL_AFTER`, compiled only into unit tests).

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fs::FsError;
use crate::workspace::WorkspaceError;

mod archive;
mod create;
mod header;
mod key;
mod restore;
mod stream;
#[cfg(test)]
mod tests;

pub use create::{backup, backup_with_progress};
pub use key::{write_key_file, KdfParams, KeySource};
pub use restore::{restore, restore_with_progress};

/// The first four bytes of a backup file.
pub const MAGIC: &[u8; 4] = b"VBK1";
/// The file format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes of the header (magic included); chunks start here.
pub const HEADER_LEN: usize = 57;
/// Plaintext bytes per chunk.
pub const DEFAULT_CHUNK: u32 = 1 << 20;
/// Bytes an encrypted chunk adds to its plaintext (the Poly1305 tag).
pub const TAG_LEN: usize = 16;
/// The environment variable holding the backup passphrase.
pub const PASSPHRASE_ENV: &str = "VERBATIM_BACKUP_PASSPHRASE";

const PREFIX_LEN: usize = 19;
const SALT_LEN: usize = 16;
const KDF_ARGON2ID: u8 = 1;
const KDF_KEY_FILE: u8 = 2;
const ARCHIVE_MAGIC: &[u8; 4] = b"VBKA";
const ARCHIVE_VERSION: u8 = 1;
/// The store snapshot, inside the workspace while a backup runs (never archived).
const SNAPSHOT_FILE: &str = ".backup-snapshot.sqlite.tmp";
/// Largest chunk a reader accepts (a forged header must not make us allocate gigabytes).
const MAX_CHUNK: u32 = 64 << 20;
const MAX_MANIFEST: u32 = 256 << 20;

/// Errors from backups and restores. Each names the file or folder it is about.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// No key source given (the user's to fix).
    #[error(
        "no backup key: set {PASSPHRASE_ENV}, or pass --passphrase-file FILE or --key-file FILE"
    )]
    NoKey,
    /// Two key sources given (the user's to fix).
    #[error("two backup keys given ({first} and {second}): use only one")]
    TwoKeys {
        /// The first source (flag or variable name).
        first: &'static str,
        /// The second.
        second: &'static str,
    },
    /// An empty passphrase.
    #[error("the backup passphrase from {source_name} is empty")]
    EmptyPassphrase {
        /// Where it came from (flag or variable name).
        source_name: String,
    },
    /// A backup key file that is not 64 hex digits.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Refusing to overwrite a file.
    #[error("{path} already exists: remove it or choose another name")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The store snapshot (`VACUUM INTO`) failed.
    #[error("snapshot of {path}: {source}")]
    Snapshot {
        /// The store.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// Not a verbatim backup at all.
    #[error("{path} is not a verbatim backup (it does not start with VBK1)")]
    NotABackup {
        /// The file.
        path: PathBuf,
    },
    /// A backup from a newer verbatim.
    #[error("{path}: backup format version {version} is not supported by this verbatim (it reads version {FORMAT_VERSION}); use a newer verbatim")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u8,
    },
    /// The header is cut short or holds values no writer produces.
    #[error("{path}: the file is damaged ({reason})")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The backup was made with the other kind of key.
    #[error("{path} was made with {made_with}: {hint}")]
    WrongKeyKind {
        /// The file.
        path: PathBuf,
        /// "a passphrase" or "a key file".
        made_with: &'static str,
        /// How to give that key.
        hint: &'static str,
    },
    /// A chunk does not authenticate: wrong key, or damaged (any edit, truncation, reordering).
    #[error("{path}: wrong passphrase or key, or the file is damaged (the chunk at byte {offset} does not authenticate)")]
    Decrypt {
        /// The file.
        path: PathBuf,
        /// Where the chunk starts.
        offset: u64,
    },
    /// The backup authenticated but its contents are not a valid archive (a bug in the writer,
    /// or a file made by something else with the same key).
    #[error("{path}: the backup decrypts but its contents are malformed ({reason})")]
    Archive {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file's SHA-256 differs from the manifest's.
    #[error("{path}: {entry} does not match its checksum in the manifest")]
    Checksum {
        /// The backup file.
        path: PathBuf,
        /// The archived file.
        entry: String,
    },
    /// Restoring over a workspace.
    #[error("{path} is already a verbatim workspace: restore into a new folder (--to)")]
    TargetIsWorkspace {
        /// The folder.
        path: PathBuf,
    },
    /// Restoring into a folder that holds something.
    #[error("{path} exists and is not an empty folder: restore into a new folder (--to)")]
    TargetNotEmpty {
        /// The folder.
        path: PathBuf,
    },
    /// A backup larger than 4 Gi chunks (4 PiB at 1 MiB).
    #[error("{path}: too large for one backup file")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Argon2 refused the parameters.
    #[error("key derivation: {0}")]
    Kdf(String),
    /// Opening the workspace (before a backup, after a restore).
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
}

/// Backup settings (the defaults are what the CLI uses).
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// Plaintext bytes per chunk.
    pub chunk: u32,
    /// Argon2id costs (passphrase only).
    pub kdf: KdfParams,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            chunk: DEFAULT_CHUNK,
            kdf: KdfParams::default(),
        }
    }
}

/// What a backup wrote.
#[derive(Clone, Debug, Serialize)]
pub struct BackupSummary {
    /// The backup file.
    pub out: PathBuf,
    /// Files archived.
    pub files: usize,
    /// Their bytes (before encryption).
    pub bytes: u64,
    /// Size of the backup file.
    pub file_bytes: u64,
    /// Verbatims in the store snapshot.
    pub verbatims: i64,
    /// "passphrase" or "key file".
    pub key: &'static str,
    /// Argon2id costs, when the key is a passphrase.
    pub kdf: Option<KdfParams>,
    /// Paths left out because they are neither files nor folders (symlinks, sockets…).
    pub skipped: Vec<String>,
    /// Wall time.
    pub seconds: f64,
}

/// What a restore wrote.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreSummary {
    /// The backup file.
    pub file: PathBuf,
    /// The restored workspace.
    pub to: PathBuf,
    /// Files written.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Verbatims in the restored store.
    pub verbatims: i64,
    /// When the backup was made (Unix seconds).
    pub created: i64,
    /// The verbatim version that made it.
    pub verbatim_version: String,
    /// Wall time.
    pub seconds: f64,
}

impl From<FsError> for BackupError {
    fn from(e: FsError) -> Self {
        BackupError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}
