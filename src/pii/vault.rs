//! The workspace's secrets, kept in the key file (`verbatim.key`, mode 0600), never in the store.
//!
//! * The **seal key** encrypts the original (unredacted) text of each verbatim with
//!   XChaCha20-Poly1305 (random 192-bit nonce per message, the verbatim id as associated data so
//!   a sealed blob cannot be moved to another verbatim).
//! * The **pseudonym key** makes respondent pseudonyms (`r_` + HMAC-SHA256 of the normalised
//!   identifier, 80 bits in hex) and the keyed content hashes that decide whether a re-ingested
//!   row changed (a plain hash of a short text could be reversed by guessing).
//!
//! Losing the key file loses the originals and changes every pseudonym: back it up with the
//! workspace (`verbatim backup` includes it, encrypted). Copying it elsewhere gives away the
//! originals.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Name of the key file inside a workspace.
pub const KEY_FILE: &str = "verbatim.key";

const NONCE_LEN: usize = 24;

/// Errors from the key file and sealed blobs.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not one verbatim wrote.
    #[error("key file {path}: {reason}")]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file can be read by other users.
    #[error("key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The key file is missing from a workspace that already holds data made with it.
    #[error("key file {path} is missing, but the store holds data sealed or pseudonymised with it: restore the key file from your backup (a new key would make the originals unreadable and change every pseudonym)")]
    Missing {
        /// Where it should be.
        path: PathBuf,
    },
    /// A sealed blob does not open: wrong key, wrong verbatim, or damaged.
    #[error("sealed original of {id} does not decrypt with this workspace's key (wrong key file, or damaged store)")]
    Unseal {
        /// The verbatim id.
        id: String,
    },
}

/// The two workspace keys.
pub struct Vault {
    seal: Zeroizing<[u8; 32]>,
    pseudonym: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault { .. }")
    }
}

fn random32() -> [u8; 32] {
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).expect("the operating system's random source failed");
    k
}

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    getrandom::fill(&mut v).expect("the operating system's random source failed");
    v
}

/// The identifier as pseudonymised: trimmed, inner whitespace collapsed; an email (or anything
/// with an `@`) lower-cased; a phone-like value (digits and `+ ( ) . - /` and spaces only) reduced
/// to its digits with a leading `+` kept.
pub fn normalize_identifier(id: &str) -> String {
    let t = id.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.contains('@') {
        return t.to_lowercase();
    }
    let phone_like = t.chars().filter(|c| c.is_ascii_digit()).count() >= 6
        && t.chars()
            .all(|c| c.is_ascii_digit() || " +().-/".contains(c));
    if phone_like {
        let plus = t.starts_with('+');
        let digits: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
        return if plus { format!("+{digits}") } else { digits };
    }
    t
}

impl Vault {
    /// Fresh random keys (not yet written anywhere).
    pub fn generate() -> Vault {
        Vault {
            seal: Zeroizing::new(random32()),
            pseudonym: Zeroizing::new(random32()),
        }
    }

    /// Writes the key file with mode 0600, refusing to overwrite one.
    pub fn create(path: &Path) -> Result<Vault, VaultError> {
        let v = Vault::generate();
        v.write_new(path)?;
        Ok(v)
    }

    fn write_new(&self, path: &Path) -> Result<(), VaultError> {
        let body = format!(
            "# verbatim workspace key file. Keep it secret and back it up: without it the sealed\n\
             # originals cannot be read and respondent pseudonyms change. Never commit or share it.\n\
             version = 1\nseal = \"{}\"\npseudonym = \"{}\"\n",
            hex::encode(*self.seal),
            hex::encode(*self.pseudonym)
        );
        let body = Zeroizing::new(body);
        // Temp file, fsync, hard link (which fails if the target exists: a key file is never
        // replaced), fsync the folder.
        crate::fs::write_new(path, body.as_bytes(), 0o600).map_err(|e| VaultError::Io {
            path: e.path,
            source: e.source,
        })?;
        Ok(())
    }

    /// Reads the key file, checking that only its owner can read it.
    pub fn open(path: &Path) -> Result<Vault, VaultError> {
        let io = |source| VaultError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(VaultError::Permissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let body = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        let invalid = |reason: String| VaultError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let table: toml::Table = toml::from_str(&body).map_err(|e| invalid(e.to_string()))?;
        if table.get("version").and_then(|v| v.as_integer()) != Some(1) {
            return Err(invalid("unknown version (expected `version = 1`)".into()));
        }
        let key = |name: &str| -> Result<Zeroizing<[u8; 32]>, VaultError> {
            let s = table
                .get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| invalid(format!("no `{name}` key")))?;
            let bytes = Zeroizing::new(
                hex::decode(s).map_err(|e| invalid(format!("`{name}` is not hex: {e}")))?,
            );
            let arr: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| invalid(format!("`{name}` is not 32 bytes")))?;
            Ok(Zeroizing::new(arr))
        };
        Ok(Vault {
            seal: key("seal")?,
            pseudonym: key("pseudonym")?,
        })
    }

    fn mac(&self, domain: &str, data: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&*self.pseudonym)
            .expect("HMAC takes any key length");
        m.update(domain.as_bytes());
        m.update(&[0]);
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// The respondent pseudonym of an identifier: `r_` + 20 hex digits of
    /// HMAC-SHA256(pseudonym key, [`normalize_identifier`]). Same key, same pseudonym.
    pub fn pseudonym(&self, identifier: &str) -> String {
        let n = normalize_identifier(identifier);
        format!(
            "r_{}",
            hex::encode(&self.mac("respondent", n.as_bytes())[..10])
        )
    }

    /// The key the store seals its rows with (integrity at rest): derived from the pseudonym
    /// key under its own domain, so it is never stored and changes with the key file.
    pub(crate) fn row_key(&self) -> [u8; 32] {
        self.mac("row-seal-key", b"")
    }

    /// A keyed hash (hex, 128 bits) for values that must be compared but not revealed.
    pub fn keyed_hash(&self, domain: &str, data: &[u8]) -> String {
        hex::encode(&self.mac(domain, data)[..16])
    }

    /// Encrypts `plain` for the verbatim `id`: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, id: &str, plain: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&*self.seal).into());
        let nonce_bytes = random_bytes(NONCE_LEN);
        let nonce = XNonce::from_slice(&nonce_bytes);
        let ct = cipher
            .encrypt(
                nonce,
                Payload {
                    msg: plain,
                    aad: id.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any length that fits in memory");
        let mut out = nonce_bytes;
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts what [`Vault::seal`] made for the same `id`.
    pub fn unseal(&self, id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let fail = || VaultError::Unseal { id: id.to_string() };
        if sealed.len() < NONCE_LEN + 16 {
            return Err(fail());
        }
        let cipher = XChaCha20Poly1305::new((&*self.seal).into());
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: id.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trips_with_mode_0600_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let v = Vault::create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let w = Vault::open(&path).unwrap();
        assert_eq!(v.pseudonym("a@b.fr"), w.pseudonym("a@b.fr"));
        assert!(
            Vault::create(&path).is_err(),
            "an existing key file was replaced"
        );
        let sealed = v.seal("V1", b"call me on 06 12 34 56 78");
        assert_eq!(
            &**w.unseal("V1", &sealed).unwrap(),
            b"call me on 06 12 34 56 78"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_world_readable_key_file_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        Vault::create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Vault::open(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn sealed_blobs_are_bound_to_their_verbatim_and_key() {
        let v = Vault::generate();
        let other = Vault::generate();
        let sealed = v.seal("V1", b"secret");
        assert!(v.unseal("V2", &sealed).is_err());
        assert!(other.unseal("V1", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(v.unseal("V1", &tampered).is_err());
        assert!(v.unseal("V1", &sealed[..10]).is_err());
        // Two seals of the same text differ (random nonce).
        assert_ne!(v.seal("V1", b"secret"), sealed);
    }

    #[test]
    fn pseudonyms_normalise_and_depend_on_the_key() {
        let v = Vault::generate();
        let p = v.pseudonym("  Jean.Dupont@Example.FR ");
        assert_eq!(p, v.pseudonym("jean.dupont@example.fr"));
        assert_eq!(p.len(), 22);
        assert!(p.starts_with("r_"));
        assert_eq!(v.pseudonym("06 12 34 56 78"), v.pseudonym("06.12.34.56.78"));
        assert_ne!(v.pseudonym("C-1001"), v.pseudonym("C-1002"));
        assert_ne!(p, Vault::generate().pseudonym("jean.dupont@example.fr"));
        // Case matters for opaque ids that are not emails.
        assert_ne!(v.pseudonym("AbC"), v.pseudonym("abc"));
    }
}
