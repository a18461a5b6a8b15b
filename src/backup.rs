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

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::fs::{create_new, mode_of, parent_of, set_mode, sync_dir, FsError};
use crate::pii::vault::{random_bytes, KEY_FILE};
use crate::workspace::{Workspace, WorkspaceError, CONFIG_FILE, STORE_FILE};

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

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct KdfParams {
    /// Memory, KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane (see the module docs for why).
    fn default() -> Self {
        KdfParams {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

/// Where the backup key comes from.
pub enum KeySource {
    /// A passphrase, stretched with Argon2id.
    Passphrase(Zeroizing<String>),
    /// A 32-byte random key (from a key file).
    Key(Zeroizing<[u8; 32]>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Passphrase(_) => f.write_str("KeySource::Passphrase(..)"),
            KeySource::Key(_) => f.write_str("KeySource::Key(..)"),
        }
    }
}

impl KeySource {
    /// A passphrase; `source_name` (flag or variable) is named if it is empty.
    pub fn passphrase(pass: String, source_name: &str) -> Result<KeySource, BackupError> {
        let pass = Zeroizing::new(pass);
        if pass.is_empty() {
            return Err(BackupError::EmptyPassphrase {
                source_name: source_name.to_string(),
            });
        }
        Ok(KeySource::Passphrase(pass))
    }

    /// The first line of `path` (without its line ending) as the passphrase.
    pub fn from_passphrase_file(path: &Path) -> Result<KeySource, BackupError> {
        let body = Zeroizing::new(fs::read_to_string(path).map_err(io_err(path))?);
        let line = body.lines().next().unwrap_or("").to_string();
        KeySource::passphrase(line, &format!("--passphrase-file {}", path.display()))
    }

    /// A key file written by [`write_key_file`]: 64 hex digits (lines starting with `#` and
    /// surrounding whitespace ignored).
    pub fn from_key_file(path: &Path) -> Result<KeySource, BackupError> {
        let body = Zeroizing::new(fs::read_to_string(path).map_err(io_err(path))?);
        let hex_text: Zeroizing<String> = Zeroizing::new(
            body.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect(),
        );
        let bad = |reason: &str| BackupError::KeyFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let bytes = Zeroizing::new(
            hex::decode(hex_text.as_bytes())
                .map_err(|_| bad("expected 64 hex digits (made by `verbatim backup keygen`)"))?,
        );
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            bad("expected 64 hex digits (32 bytes; made by `verbatim backup keygen`)")
        })?;
        Ok(KeySource::Key(Zeroizing::new(key)))
    }

    /// Picks the one key source given: the passphrase variable's value, `--passphrase-file`,
    /// `--key-file`. None, or more than one, is refused naming them.
    pub fn resolve(
        env_passphrase: Option<String>,
        passphrase_file: Option<&Path>,
        key_file: Option<&Path>,
    ) -> Result<KeySource, BackupError> {
        let mut given: Vec<&'static str> = Vec::new();
        if env_passphrase.is_some() {
            given.push(PASSPHRASE_ENV);
        }
        if passphrase_file.is_some() {
            given.push("--passphrase-file");
        }
        if key_file.is_some() {
            given.push("--key-file");
        }
        if given.len() > 1 {
            return Err(BackupError::TwoKeys {
                first: given[0],
                second: given[1],
            });
        }
        if let Some(p) = env_passphrase {
            return KeySource::passphrase(p, PASSPHRASE_ENV);
        }
        if let Some(f) = passphrase_file {
            return KeySource::from_passphrase_file(f);
        }
        if let Some(f) = key_file {
            return KeySource::from_key_file(f);
        }
        Err(BackupError::NoKey)
    }

    fn kind(&self) -> &'static str {
        match self {
            KeySource::Passphrase(_) => "passphrase",
            KeySource::Key(_) => "key file",
        }
    }
}

/// Writes a new backup key file (32 random bytes in hex) with mode 0600; never overwrites.
pub fn write_key_file(path: &Path) -> Result<(), BackupError> {
    let key = Zeroizing::new(hex::encode(random_bytes(32)));
    let body = Zeroizing::new(format!(
        "# verbatim backup key: restores need it. Keep it apart from the backups, and secret.\n{}\n",
        key.as_str()
    ));
    // Temp file, fsync, hard link: a crash never leaves a half-written key file.
    crate::fs::write_new(path, body.as_bytes(), 0o600).map_err(|e| match e.source.kind() {
        io::ErrorKind::AlreadyExists => BackupError::Exists {
            path: path.to_path_buf(),
        },
        _ => e.into(),
    })?;
    Ok(())
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

/// The archive's table of contents, last in the archive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: u32,
    verbatim_version: String,
    created: i64,
    verbatims: i64,
    dirs: Vec<ManifestDir>,
    files: Vec<ManifestFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestDir {
    path: String,
    mode: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    path: String,
    mode: u32,
    len: u64,
    sha256: String,
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

// ---------------------------------------------------------------------------------------------
// The encrypted chunk stream.

/// How the key was made, as the header records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kdf {
    Argon2id(KdfParams),
    KeyFile,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Header {
    kdf: Kdf,
    salt: [u8; SALT_LEN],
    prefix: [u8; PREFIX_LEN],
    chunk: u32,
}

impl Header {
    fn new(kdf: Kdf, chunk: u32) -> Header {
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&random_bytes(SALT_LEN));
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&random_bytes(PREFIX_LEN));
        Header {
            kdf,
            salt,
            prefix,
            chunk,
        }
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(MAGIC);
        h[4] = FORMAT_VERSION;
        let (id, p) = match self.kdf {
            Kdf::Argon2id(p) => (KDF_ARGON2ID, p),
            Kdf::KeyFile => (
                KDF_KEY_FILE,
                KdfParams {
                    m_kib: 0,
                    t: 0,
                    p: 0,
                },
            ),
        };
        h[5] = id;
        h[6..10].copy_from_slice(&p.m_kib.to_le_bytes());
        h[10..14].copy_from_slice(&p.t.to_le_bytes());
        h[14..18].copy_from_slice(&p.p.to_le_bytes());
        h[18..34].copy_from_slice(&self.salt);
        h[34..53].copy_from_slice(&self.prefix);
        h[53..57].copy_from_slice(&self.chunk.to_le_bytes());
        h
    }

    /// Parses a header, refusing values no writer produces (a forged header must not make the
    /// reader allocate gigabytes or run Argon2 for hours).
    fn decode(h: &[u8], path: &Path) -> Result<Header, BackupError> {
        if h.len() < 4 || &h[0..4] != MAGIC {
            return Err(BackupError::NotABackup {
                path: path.to_path_buf(),
            });
        }
        let bad = |reason: String| BackupError::BadHeader {
            path: path.to_path_buf(),
            reason,
        };
        if h.len() < 5 {
            return Err(bad("the header is cut short".into()));
        }
        if h[4] != FORMAT_VERSION {
            return Err(BackupError::UnsupportedVersion {
                path: path.to_path_buf(),
                version: h[4],
            });
        }
        if h.len() < HEADER_LEN {
            return Err(bad("the header is cut short".into()));
        }
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
        let (m_kib, t, p) = (u32_at(6), u32_at(10), u32_at(14));
        let kdf = match h[5] {
            KDF_ARGON2ID => {
                // 8 MiB to 1 GiB, 1 to 16 passes and lanes: room to raise the defaults later.
                if !(8 * 1024..=1024 * 1024).contains(&m_kib)
                    || !(1..=16).contains(&t)
                    || !(1..=16).contains(&p)
                {
                    return Err(bad(format!(
                        "Argon2id parameters m={m_kib} KiB t={t} p={p} are out of range"
                    )));
                }
                Kdf::Argon2id(KdfParams { m_kib, t, p })
            }
            KDF_KEY_FILE if (m_kib, t, p) == (0, 0, 0) => Kdf::KeyFile,
            other => return Err(bad(format!("unknown key kind {other}"))),
        };
        let chunk = u32_at(53);
        if chunk == 0 || chunk > MAX_CHUNK {
            return Err(bad(format!("chunk size {chunk} is out of range")));
        }
        Ok(Header {
            kdf,
            salt: h[18..34].try_into().expect("16 bytes"),
            prefix: h[34..53].try_into().expect("19 bytes"),
            chunk,
        })
    }
}

/// The file key: Argon2id of the passphrase, or a per-backup subkey of the key file's key.
fn derive_key(
    key: &KeySource,
    header: &Header,
    path: &Path,
) -> Result<Zeroizing<[u8; 32]>, BackupError> {
    let mut out = Zeroizing::new([0u8; 32]);
    match (key, header.kdf) {
        (KeySource::Passphrase(pass), Kdf::Argon2id(p)) => {
            let params = argon2::Params::new(p.m_kib, p.t, p.p, Some(32))
                .map_err(|e| BackupError::Kdf(e.to_string()))?;
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(pass.as_bytes(), &header.salt, out.as_mut())
                .map_err(|e| BackupError::Kdf(e.to_string()))?;
        }
        (KeySource::Key(k), Kdf::KeyFile) => {
            let mut mac =
                <Hmac<Sha256> as Mac>::new_from_slice(k.as_ref()).expect("HMAC takes any key");
            mac.update(b"verbatim backup v1");
            mac.update(&header.salt);
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        (KeySource::Key(_), Kdf::Argon2id(_)) => {
            return Err(BackupError::WrongKeyKind {
                path: path.to_path_buf(),
                made_with: "a passphrase",
                hint: "set VERBATIM_BACKUP_PASSPHRASE or pass --passphrase-file FILE instead of --key-file",
            })
        }
        (KeySource::Passphrase(_), Kdf::KeyFile) => {
            return Err(BackupError::WrongKeyKind {
                path: path.to_path_buf(),
                made_with: "a key file",
                hint: "pass --key-file FILE instead of a passphrase",
            })
        }
    }
    Ok(out)
}

fn chunk_nonce(prefix: &[u8; PREFIX_LEN], counter: u32, last: bool) -> XNonce {
    let mut n = [0u8; 24];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&counter.to_be_bytes());
    n[23] = u8::from(last);
    XNonce::from(n)
}

/// Encrypts a byte stream into chunks. The last chunk is sealed by [`Sealer::finish`]; a full
/// buffer is sealed only when more data arrives, so the last chunk is never mistaken for a
/// middle one.
struct Sealer<W: Write> {
    out: W,
    aead: XChaCha20Poly1305,
    header: [u8; HEADER_LEN],
    prefix: [u8; PREFIX_LEN],
    chunk: usize,
    buf: Zeroizing<Vec<u8>>,
    counter: u32,
}

impl<W: Write> Sealer<W> {
    /// Writes the header and returns the sealer for the chunks.
    fn new(mut out: W, header: &Header, key: &[u8; 32]) -> io::Result<Self> {
        let bytes = header.encode();
        out.write_all(&bytes)?;
        Ok(Sealer {
            out,
            aead: XChaCha20Poly1305::new(key.into()),
            header: bytes,
            prefix: header.prefix,
            chunk: header.chunk as usize,
            buf: Zeroizing::new(Vec::with_capacity(header.chunk as usize)),
            counter: 0,
        })
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let nonce = chunk_nonce(&self.prefix, self.counter, last);
        let ct = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: &self.buf,
                    aad: &self.header,
                },
            )
            .map_err(|_| io::Error::other("encryption failed"))?;
        self.out.write_all(&ct)?;
        self.buf.clear();
        if !last {
            self.counter = self
                .counter
                .checked_add(1)
                .ok_or_else(|| io::Error::other(TooManyChunks))?;
        }
        Ok(())
    }

    /// Seals the last chunk and returns the writer.
    fn finish(mut self) -> io::Result<W> {
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.buf.len() == self.chunk {
            self.seal(false)?;
        }
        let n = (self.chunk - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
struct TooManyChunks;

impl std::fmt::Display for TooManyChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("more than 2^32 chunks")
    }
}

impl std::error::Error for TooManyChunks {}

/// A chunk that does not authenticate, carried through `io::Error` by [`Opener`]'s `Read`.
#[derive(Debug)]
struct AuthFailed {
    offset: u64,
}

impl std::fmt::Display for AuthFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chunk at byte {} does not authenticate", self.offset)
    }
}

impl std::error::Error for AuthFailed {}

/// Decrypts and authenticates the chunks one at a time; reading past the authenticated last
/// chunk gives end of file, and nothing unauthenticated is ever returned.
struct Opener<R: BufRead> {
    input: R,
    aead: XChaCha20Poly1305,
    header: [u8; HEADER_LEN],
    prefix: [u8; PREFIX_LEN],
    chunk: usize,
    counter: u32,
    offset: u64,
    ct: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    done: bool,
}

impl<R: BufRead> Opener<R> {
    /// `input` is positioned after the header.
    fn new(input: R, header: &Header, key: &[u8; 32]) -> Self {
        Opener {
            input,
            aead: XChaCha20Poly1305::new(key.into()),
            header: header.encode(),
            prefix: header.prefix,
            chunk: header.chunk as usize,
            counter: 0,
            offset: HEADER_LEN as u64,
            ct: Vec::with_capacity(header.chunk as usize + TAG_LEN),
            plain: Zeroizing::new(Vec::new()),
            pos: 0,
            done: false,
        }
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let want = self.chunk + TAG_LEN;
        self.ct.clear();
        (&mut self.input)
            .take(want as u64)
            .read_to_end(&mut self.ct)?;
        let fail = || {
            io::Error::other(AuthFailed {
                offset: self.offset,
            })
        };
        if self.ct.len() < TAG_LEN {
            return Err(fail());
        }
        // A short chunk must be the last; a full one is the last when the file ends after it.
        let last = self.ct.len() < want || self.input.fill_buf()?.is_empty();
        let nonce = chunk_nonce(&self.prefix, self.counter, last);
        let plain = self
            .aead
            .decrypt(
                &nonce,
                Payload {
                    msg: &self.ct,
                    aad: &self.header,
                },
            )
            .map_err(|_| fail())?;
        self.plain = Zeroizing::new(plain);
        self.pos = 0;
        self.offset += self.ct.len() as u64;
        self.done = last;
        if !last {
            self.counter = self
                .counter
                .checked_add(1)
                .ok_or_else(|| io::Error::other(TooManyChunks))?;
        }
        Ok(())
    }
}

impl<R: BufRead> Read for Opener<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = (self.plain.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Maps an I/O error met while reading the decrypted stream of `path`.
fn stream_err(path: &Path, e: io::Error) -> BackupError {
    if let Some(inner) = e.get_ref() {
        if let Some(a) = inner.downcast_ref::<AuthFailed>() {
            return BackupError::Decrypt {
                path: path.to_path_buf(),
                offset: a.offset,
            };
        }
        if inner.is::<TooManyChunks>() {
            return BackupError::TooLarge {
                path: path.to_path_buf(),
            };
        }
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return BackupError::Archive {
            path: path.to_path_buf(),
            reason: "it ends early".into(),
        };
    }
    io_err(path)(e)
}

/// Opens a backup file: reads and checks the header, derives the key.
fn open_backup(file: &Path, key: &KeySource) -> Result<(Header, Zeroizing<[u8; 32]>), BackupError> {
    let mut f = fs::File::open(file).map_err(io_err(file))?;
    let mut h = Vec::with_capacity(HEADER_LEN);
    (&mut f)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut h)
        .map_err(io_err(file))?;
    let header = Header::decode(&h, file)?;
    let k = derive_key(key, &header, file)?;
    Ok((header, k))
}

/// The decrypted stream of `file`, whose header must be `header`.
fn reopen(
    file: &Path,
    header: &Header,
    key: &[u8; 32],
) -> Result<Opener<BufReader<fs::File>>, BackupError> {
    let mut f = BufReader::with_capacity(1 << 16, fs::File::open(file).map_err(io_err(file))?);
    let mut h = [0u8; HEADER_LEN];
    f.read_exact(&mut h).map_err(|e| stream_err(file, e))?;
    if Header::decode(&h, file)? != *header {
        // The file changed between the passes.
        return Err(BackupError::Decrypt {
            path: file.to_path_buf(),
            offset: 0,
        });
    }
    Ok(Opener::new(f, header, key))
}

// ---------------------------------------------------------------------------------------------
// The archive inside.

fn put_path<W: Write>(w: &mut W, path: &str) -> io::Result<()> {
    let len = u16::try_from(path.len())
        .map_err(|_| io::Error::other(format!("path too long: {path}")))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(path.as_bytes())
}

/// Writes archive entries and keeps the manifest.
struct ArchiveWriter<W: Write> {
    w: W,
    dirs: Vec<ManifestDir>,
    files: Vec<ManifestFile>,
    bytes: u64,
}

impl<W: Write> ArchiveWriter<W> {
    fn new(mut w: W) -> io::Result<Self> {
        w.write_all(ARCHIVE_MAGIC)?;
        w.write_all(&[ARCHIVE_VERSION])?;
        Ok(ArchiveWriter {
            w,
            dirs: Vec::new(),
            files: Vec::new(),
            bytes: 0,
        })
    }

    fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
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
    fn file(&mut self, path: &str, mode: u32, src: &Path) -> io::Result<()> {
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

    fn finish(mut self, verbatims: i64) -> io::Result<(W, usize, u64)> {
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
trait Visit {
    fn dir(&mut self, path: &str, mode: u32) -> Result<(), BackupError>;
    fn file_start(&mut self, path: &str, mode: u32, len: u64) -> Result<(), BackupError>;
    fn data(&mut self, bytes: &[u8]) -> Result<(), BackupError>;
    fn file_end(&mut self) -> Result<(), BackupError>;
}

/// Pass 1: read and check only.
struct Check;

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
fn safe_path(p: &str) -> bool {
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
fn read_archive<R: Read>(
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

// ---------------------------------------------------------------------------------------------
// Backup.

/// Removes a file on drop unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Removes a folder tree on drop unless disarmed.
struct RemoveDirOnDrop(Option<PathBuf>);

impl Drop for RemoveDirOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// Left out of every backup: locks, temp files, the live store (archived from its snapshot),
/// and backup files kept inside the workspace (each backup would otherwise hold all earlier ones).
fn skipped_name(rel: &str, name: &str) -> bool {
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
fn walk(
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
fn snapshot_store(root: &Path) -> Result<RemoveOnDrop, BackupError> {
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
    // The store goes first, from its snapshot; then folders and files in path order.
    archive
        .file(STORE_FILE, store_mode, &snap_path)
        .map_err(io_err(&snap_path))?;
    for (rel, path, is_dir, mode) in &entries {
        let r = if *is_dir {
            archive.dir(rel, *mode)
        } else {
            archive.file(rel, *mode, path)
        };
        r.map_err(|e| stream_or_source(e, &tmp, path))?;
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
fn stream_or_source(e: io::Error, tmp: &Path, source: &Path) -> BackupError {
    if e.get_ref().is_some_and(|i| i.is::<TooManyChunks>()) {
        return BackupError::TooLarge {
            path: tmp.to_path_buf(),
        };
    }
    io_err(source)(e)
}

// ---------------------------------------------------------------------------------------------
// Restore.

/// Pass 2: writes the entries under `root`.
struct Writer {
    root: PathBuf,
    current: Option<(PathBuf, io::BufWriter<fs::File>)>,
    dirs: Vec<PathBuf>,
    files: usize,
    bytes: u64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: [u8; 32] = [7u8; 32];

    fn seal(data: &[u8], chunk: u32) -> (Header, Vec<u8>) {
        let header = Header::new(Kdf::KeyFile, chunk);
        let mut s = Sealer::new(Vec::new(), &header, &KEY).unwrap();
        s.write_all(data).unwrap();
        (header, s.finish().unwrap())
    }

    fn open(file: &[u8], key: &[u8; 32]) -> Result<Vec<u8>, BackupError> {
        let path = Path::new("t.vbk");
        let header = Header::decode(&file[..file.len().min(HEADER_LEN)], path)?;
        let mut o = Opener::new(&file[HEADER_LEN..], &header, key);
        let mut out = Vec::new();
        o.read_to_end(&mut out).map_err(|e| stream_err(path, e))?;
        Ok(out)
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trips_at_every_size_around_chunk_boundaries() {
        for n in [0, 1, 63, 64, 65, 127, 128, 129, 1000] {
            let d = data(n);
            let (_, file) = seal(&d, 64);
            let chunks = n.div_ceil(64).max(1);
            assert_eq!(file.len(), HEADER_LEN + n + chunks * TAG_LEN, "n={n}");
            assert_eq!(open(&file, &KEY).unwrap(), d, "n={n}");
        }
    }

    fn is_decrypt(r: Result<Vec<u8>, BackupError>) -> bool {
        matches!(r, Err(BackupError::Decrypt { .. }))
    }

    #[test]
    fn wrong_key_truncation_reordering_and_appending_are_detected() {
        let d = data(64 * 4 + 10);
        let (_, file) = seal(&d, 64);
        let c = 64 + TAG_LEN;
        assert!(is_decrypt(open(&file, &[8u8; 32])));
        // Truncation: at each chunk boundary, inside a chunk, to the header alone.
        for cut in [
            HEADER_LEN + c,
            HEADER_LEN + 2 * c,
            HEADER_LEN + 4 * c,
            file.len() - 1,
        ] {
            assert!(is_decrypt(open(&file[..cut], &KEY)), "cut at {cut}");
        }
        assert!(is_decrypt(open(&file[..HEADER_LEN], &KEY)));
        // Swapping two chunks, repeating one, dropping one.
        let chunk = |i: usize| &file[HEADER_LEN + i * c..HEADER_LEN + (i + 1) * c];
        let head = &file[..HEADER_LEN];
        let tail = &file[HEADER_LEN + 4 * c..];
        let swapped = [head, chunk(1), chunk(0), chunk(2), chunk(3), tail].concat();
        assert!(is_decrypt(open(&swapped, &KEY)));
        let repeated = [head, chunk(0), chunk(0), chunk(2), chunk(3), tail].concat();
        assert!(is_decrypt(open(&repeated, &KEY)));
        let dropped = [head, chunk(0), chunk(2), chunk(3), tail].concat();
        assert!(is_decrypt(open(&dropped, &KEY)));
        // Appending anything after the last chunk.
        let mut longer = file.clone();
        longer.push(0);
        assert!(is_decrypt(open(&longer, &KEY)));
        // A last chunk that is exactly full is still the last: appending a chunk sealed
        // elsewhere with the same key fails.
        let (_, full) = seal(&data(128), 64);
        let mut more = full.clone();
        more.extend_from_slice(&full[HEADER_LEN..HEADER_LEN + c]);
        assert!(is_decrypt(open(&more, &KEY)));
    }

    #[test]
    fn header_edits_are_detected_or_refused() {
        let (_, file) = seal(&data(300), 64);
        for i in 0..HEADER_LEN {
            let mut f = file.clone();
            f[i] ^= 0x01;
            assert!(
                open(&f, &KEY).is_err(),
                "edit at header byte {i} went unnoticed"
            );
        }
        let mut f = file.clone();
        f[0] = b'X';
        assert!(matches!(
            open(&f, &KEY),
            Err(BackupError::NotABackup { .. })
        ));
        let mut f = file.clone();
        f[4] = 9;
        assert!(matches!(
            open(&f, &KEY),
            Err(BackupError::UnsupportedVersion { version: 9, .. })
        ));
        assert!(matches!(
            Header::decode(&file[..20], Path::new("x")),
            Err(BackupError::BadHeader { .. })
        ));
    }

    #[test]
    fn passphrase_keys_depend_on_salt_and_params_and_kinds_do_not_mix() {
        let pass = KeySource::passphrase("correct horse".into(), "test").unwrap();
        let cheap = KdfParams {
            m_kib: 8 * 1024,
            t: 1,
            p: 1,
        };
        let h1 = Header::new(Kdf::Argon2id(cheap), 64);
        let h2 = Header::new(Kdf::Argon2id(cheap), 64);
        let p = Path::new("x");
        let k1 = derive_key(&pass, &h1, p).unwrap();
        assert_eq!(*k1, *derive_key(&pass, &h1, p).unwrap());
        assert_ne!(*k1, *derive_key(&pass, &h2, p).unwrap());
        let key = KeySource::Key(Zeroizing::new(KEY));
        assert!(matches!(
            derive_key(&key, &h1, p),
            Err(BackupError::WrongKeyKind { .. })
        ));
        let hk = Header::new(Kdf::KeyFile, 64);
        assert!(matches!(
            derive_key(&pass, &hk, p),
            Err(BackupError::WrongKeyKind { .. })
        ));
        assert!(matches!(
            KeySource::passphrase(String::new(), "X"),
            Err(BackupError::EmptyPassphrase { .. })
        ));
    }

    #[test]
    fn key_sources_none_or_two_are_refused() {
        assert!(matches!(
            KeySource::resolve(None, None, None),
            Err(BackupError::NoKey)
        ));
        let e = KeySource::resolve(Some("x".into()), None, Some(Path::new("k"))).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(PASSPHRASE_ENV) && msg.contains("--key-file"),
            "{msg}"
        );
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("backup.key");
        write_key_file(&k).unwrap();
        assert!(matches!(
            write_key_file(&k),
            Err(BackupError::Exists { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&k).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(matches!(
            KeySource::resolve(None, None, Some(&k)).unwrap(),
            KeySource::Key(_)
        ));
        let pf = dir.path().join("pass");
        fs::write(&pf, "s3cret words\nignored\n").unwrap();
        match KeySource::resolve(None, Some(&pf), None).unwrap() {
            KeySource::Passphrase(p) => assert_eq!(p.as_str(), "s3cret words"),
            KeySource::Key(_) => panic!("expected a passphrase"),
        }
        fs::write(&pf, "\n").unwrap();
        assert!(KeySource::resolve(None, Some(&pf), None).is_err());
    }

    fn archive(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let mut a = ArchiveWriter::new(Vec::new()).unwrap();
        for (i, (path, body)) in entries.iter().enumerate() {
            match body {
                None => a.dir(path, 0o755).unwrap(),
                Some(b) => {
                    let src = dir.path().join(format!("f{i}"));
                    fs::write(&src, b).unwrap();
                    a.file(path, 0o644, &src).unwrap();
                }
            }
        }
        a.finish(3).unwrap().0
    }

    #[test]
    fn archives_round_trip_and_refuse_unsafe_or_inconsistent_contents() {
        let a = archive(&[
            ("verbatim.toml", Some(b"x = 1")),
            ("index", None),
            ("index/a", Some(b"hello")),
        ]);
        let m = read_archive(&a[..], Path::new("t"), &mut Check).unwrap();
        assert_eq!(m.files.len(), 2);
        assert_eq!(m.verbatims, 3);
        assert_eq!(m.dirs[0].path, "index");

        for bad in ["../x", "/etc/x", "a//b", "a/../b", "", "a\\b", "./a"] {
            assert!(!safe_path(bad), "{bad:?}");
        }
        let evil = archive(&[("../evil", Some(b"x"))]);
        assert!(matches!(
            read_archive(&evil[..], Path::new("t"), &mut Check),
            Err(BackupError::Archive { .. })
        ));
        // A content byte changed after the hash was taken: the manifest catches it.
        let mut changed = a.clone();
        let at = changed.windows(5).position(|w| w == b"hello").unwrap();
        changed[at] = b'j';
        assert!(matches!(
            read_archive(&changed[..], Path::new("t"), &mut Check),
            Err(BackupError::Checksum { .. })
        ));
        let mut trailing = a.clone();
        trailing.push(0);
        assert!(read_archive(&trailing[..], Path::new("t"), &mut Check).is_err());
        assert!(read_archive(&a[..a.len() - 1], Path::new("t"), &mut Check).is_err());
    }

    #[test]
    fn locks_temp_files_live_store_and_backups_are_left_out() {
        for (rel, skip) in [
            (".lock", true),
            ("store.sqlite", true),
            ("store.sqlite-wal", true),
            ("store.sqlite-shm", true),
            (SNAPSHOT_FILE, true),
            ("index/text/.tantivy-writer.lock", true),
            ("index/text/.tantivy-meta.lock", true),
            ("index/vectors/CURRENT.tmp", true),
            ("index/vectors/gen-3.partial", true),
            ("old.vbk", true),
            ("verbatim.toml", false),
            ("verbatim.key", false),
            ("index/text/meta.json", false),
            ("index/text/.managed.json", false),
            ("index/store.sqlite", false),
        ] {
            let name = rel.rsplit('/').next().unwrap();
            assert_eq!(skipped_name(rel, name), skip, "{rel}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any single-byte change anywhere in the file is detected.
        #[test]
        fn any_single_byte_change_is_detected(len in 0usize..400, at in any::<prop::sample::Index>(), x in 1u8..=255) {
            let d = data(len);
            let (_, mut file) = seal(&d, 64);
            let i = at.index(file.len());
            file[i] ^= x;
            prop_assert!(open(&file, &KEY).is_err(), "change at {} of {} went unnoticed", i, file.len());
        }
    }
}
