//! The 57-byte header (magic, version, key kind, Argon2id parameters, salt, nonce prefix, chunk
//! size) and the file key derived from it.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::pii::vault::random_bytes;

use super::key::*;
use super::*;

// ---------------------------------------------------------------------------------------------
// The encrypted chunk stream.

/// How the key was made, as the header records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kdf {
    Argon2id(KdfParams),
    KeyFile,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) kdf: Kdf,
    pub(super) salt: [u8; SALT_LEN],
    pub(super) prefix: [u8; PREFIX_LEN],
    pub(super) chunk: u32,
}

impl Header {
    pub(super) fn new(kdf: Kdf, chunk: u32) -> Header {
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

    pub(super) fn encode(&self) -> [u8; HEADER_LEN] {
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
    pub(super) fn decode(h: &[u8], path: &Path) -> Result<Header, BackupError> {
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
pub(super) fn derive_key(
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
