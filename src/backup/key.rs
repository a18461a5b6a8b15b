//! Where the backup key comes from: a passphrase (Argon2id, parameters in the header) or a key
//! file made by `verbatim backup keygen`.

use std::fs;
use std::io;
use std::path::Path;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::pii::vault::random_bytes;

use super::*;

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

    pub(super) fn kind(&self) -> &'static str {
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
