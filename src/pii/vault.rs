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
//!
//! **Per-purpose subkeys** (key file `version = 2`, every workspace made since issue 18): the
//! file holds the seal key and a *root* key; four subkeys are derived from the root, one per
//! purpose — `pseudonym` (respondent pseudonyms and ids that stand for personal data),
//! `content` (content hashes), `audit` (the audit chain's mac) and `row` (row seals at rest).
//! [`HashKeys`] (pseudonym + content) is all `verbatim prepare` needs, so `verbatim key export
//! --for prepare` writes those two alone ([`HashKeys::write_export`]): the seal, audit and row
//! keys never leave the workspace. A `version = 1` file (the legacy scheme, kept as it is so
//! existing pseudonyms, ids, hashes, seals and audit macs do not change) uses its one
//! `pseudonym` key for all four purposes; exporting it for prepare therefore gives away the
//! audit and row keys too, and is refused unless asked for explicitly.

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

/// The workspace keys: the seal key and one key per purpose ([module docs](self)).
pub struct Vault {
    seal: Zeroizing<[u8; 32]>,
    /// The v2 root the subkeys come from; `None` for a legacy (v1) file.
    root: Option<Zeroizing<[u8; 32]>>,
    hashes: HashKeys,
    audit: Zeroizing<[u8; 32]>,
    row: Zeroizing<[u8; 32]>,
}

/// The keys that make the values a prepared row carries — respondent pseudonyms, ids that
/// stand for personal data, keyed content ids and content hashes — and nothing else: what
/// `verbatim prepare` holds on an executor.
pub struct HashKeys {
    pseudonym: Zeroizing<[u8; 32]>,
    content: Zeroizing<[u8; 32]>,
    /// Rows without an id column get a keyed id (`h` + keyed hash); workspaces made before
    /// keyed ids use the plain SHA-256 id ([`crate::ingest::content_id`]).
    keyed_content_ids: bool,
}

impl std::fmt::Debug for HashKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashKeys {{ key_id: {} }}", self.key_id())
    }
}

/// What a prepare key file says it is for.
const PREPARE_PURPOSE: &str = "prepare";

fn hmac32(key: &[u8; 32], domain: &str, data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(domain.as_bytes());
    m.update(&[0]);
    m.update(data);
    m.finalize().into_bytes().into()
}

/// A subkey of the v2 root for `purpose`.
fn subkey(root: &[u8; 32], purpose: &str) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hmac32(root, "verbatim-subkey", purpose.as_bytes()))
}

/// Checks that only the owner can read a key file.
fn check_private(path: &Path) -> Result<(), VaultError> {
    let meta = std::fs::metadata(path).map_err(|source| VaultError::Io {
        path: path.to_path_buf(),
        source,
    })?;
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
    Ok(())
}

/// A key file parsed as TOML, with typed access to its 32-byte hex keys.
struct KeyTable<'a> {
    path: &'a Path,
    table: toml::Table,
}

impl<'a> KeyTable<'a> {
    fn read(path: &'a Path) -> Result<KeyTable<'a>, VaultError> {
        check_private(path)?;
        let body =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| VaultError::Io {
                    path: path.to_path_buf(),
                    source,
                })?,
            );
        let table: toml::Table = toml::from_str(&body).map_err(|e| VaultError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(KeyTable { path, table })
    }

    fn invalid(&self, reason: String) -> VaultError {
        VaultError::Invalid {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    fn version(&self) -> Option<i64> {
        self.table.get("version").and_then(|v| v.as_integer())
    }

    fn purpose(&self) -> Option<&str> {
        self.table.get("purpose").and_then(|v| v.as_str())
    }

    fn key(&self, name: &str) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        let s = self
            .table
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| self.invalid(format!("no `{name}` key")))?;
        let bytes = Zeroizing::new(
            hex::decode(s).map_err(|e| self.invalid(format!("`{name}` is not hex: {e}")))?,
        );
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| self.invalid(format!("`{name}` is not 32 bytes")))?;
        Ok(Zeroizing::new(arr))
    }
}

impl HashKeys {
    /// The respondent pseudonym of an identifier: `r_` + 20 hex digits of
    /// HMAC-SHA256(pseudonym key, [`normalize_identifier`]). Same key, same pseudonym.
    pub fn pseudonym(&self, identifier: &str) -> String {
        let n = normalize_identifier(identifier);
        format!(
            "r_{}",
            hex::encode(&hmac32(&self.pseudonym, "respondent", n.as_bytes())[..10])
        )
    }

    /// A keyed hash (hex, 128 bits): domain `content` under the content key, any other under
    /// the pseudonym key.
    pub fn keyed_hash(&self, domain: &str, data: &[u8]) -> String {
        let key = if domain == "content" {
            &self.content
        } else {
            &self.pseudonym
        };
        hex::encode(&hmac32(key, domain, data)[..16])
    }

    /// Whether rows without an id column get keyed ids ([`HashKeys::content_id`]).
    pub fn keyed_content_ids(&self) -> bool {
        self.keyed_content_ids
    }

    /// The id of a row without an id column (see `Workspace::content_id`).
    pub fn content_id(&self, text: &str) -> String {
        if self.keyed_content_ids {
            format!("h{}", &self.keyed_hash("content-id", text.as_bytes())[..16])
        } else {
            crate::ingest::content_id(text)
        }
    }

    /// Names these keys without revealing them (64 bits of a mac over both): a prepared file
    /// records it and `ingest --prepared` refuses another.
    pub fn key_id(&self) -> String {
        let mut both = Zeroizing::new([0u8; 65]);
        both[..32].copy_from_slice(&*self.pseudonym);
        both[32..64].copy_from_slice(&*self.content);
        both[64] = u8::from(self.keyed_content_ids);
        let mac = hmac32(&self.content, "key-id", &*both);
        format!("k_{}", hex::encode(&mac[..8]))
    }

    /// Writes these keys alone as a prepare key file (mode 0600, never over an existing file).
    pub fn write_export(&self, path: &Path) -> Result<(), VaultError> {
        let body = Zeroizing::new(format!(
            "# verbatim prepare key ({key_id}): makes respondent pseudonyms, ids and content\n\
             # hashes for `verbatim prepare --key`. It cannot open sealed originals, audit entries\n\
             # or row seals, but it can pseudonymise guessed identifiers: keep it as secret as the\n\
             # data it is used on, mount it on executors as a file, never in job configuration.\n\
             version = 2\npurpose = \"{PREPARE_PURPOSE}\"\nkey_id = \"{key_id}\"\n\
             keyed_content_ids = {keyed}\npseudonym = \"{}\"\ncontent = \"{}\"\n",
            hex::encode(*self.pseudonym),
            hex::encode(*self.content),
            key_id = self.key_id(),
            keyed = self.keyed_content_ids,
        ));
        crate::fs::write_new(path, body.as_bytes(), 0o600).map_err(|e| VaultError::Io {
            path: e.path,
            source: e.source,
        })
    }

    /// Reads the keys `prepare` needs from a prepare key file ([`HashKeys::write_export`]) or,
    /// for a run on the workspace's own machine, from the workspace key file itself (whose
    /// `keyed_content_ids` the caller passes: it is a workspace setting there).
    pub fn open(path: &Path, workspace_keyed_ids: bool) -> Result<HashKeys, VaultError> {
        let t = KeyTable::read(path)?;
        if t.purpose() == Some(PREPARE_PURPOSE) {
            if t.version() != Some(2) {
                return Err(t.invalid("unknown version (expected `version = 2`)".into()));
            }
            let keyed = t
                .table
                .get("keyed_content_ids")
                .and_then(|v| v.as_bool())
                .ok_or_else(|| t.invalid("no `keyed_content_ids`".into()))?;
            let keys = HashKeys {
                pseudonym: t.key("pseudonym")?,
                content: t.key("content")?,
                keyed_content_ids: keyed,
            };
            let stated = t.table.get("key_id").and_then(|v| v.as_str());
            if stated != Some(keys.key_id().as_str()) {
                return Err(
                    t.invalid("`key_id` does not match the keys (edited or damaged)".into())
                );
            }
            return Ok(keys);
        }
        let mut v = Vault::from_table(&t)?;
        v.hashes.keyed_content_ids = workspace_keyed_ids;
        Ok(v.hashes)
    }
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
        Vault::from_root(Zeroizing::new(random32()), Zeroizing::new(random32()))
    }

    /// The v2 keys: each purpose's subkey derived from `root`.
    fn from_root(seal: Zeroizing<[u8; 32]>, root: Zeroizing<[u8; 32]>) -> Vault {
        Vault {
            seal,
            hashes: HashKeys {
                pseudonym: subkey(&root, "pseudonym"),
                content: subkey(&root, "content"),
                keyed_content_ids: true,
            },
            audit: subkey(&root, "audit"),
            row: subkey(&root, "row"),
            root: Some(root),
        }
    }

    /// The v1 (legacy) keys: one key for every purpose, so its values never change.
    fn legacy(seal: Zeroizing<[u8; 32]>, pseudonym: Zeroizing<[u8; 32]>) -> Vault {
        Vault {
            seal,
            hashes: HashKeys {
                pseudonym: pseudonym.clone(),
                content: pseudonym.clone(),
                keyed_content_ids: true,
            },
            audit: pseudonym.clone(),
            row: pseudonym,
            root: None,
        }
    }

    /// Whether this is a legacy (v1) key file: one key for every purpose.
    pub fn is_legacy(&self) -> bool {
        self.root.is_none()
    }

    /// The keys `prepare` needs ([`HashKeys`]).
    pub fn hash_keys(&self) -> &HashKeys {
        &self.hashes
    }

    /// Sets whether ids of rows without an id column are keyed (a workspace setting: see
    /// `Workspace::content_id`).
    pub(crate) fn set_keyed_content_ids(&mut self, keyed: bool) {
        self.hashes.keyed_content_ids = keyed;
    }

    /// Writes the key file with mode 0600, refusing to overwrite one.
    pub fn create(path: &Path) -> Result<Vault, VaultError> {
        let v = Vault::generate();
        v.write_new(path)?;
        Ok(v)
    }

    fn write_new(&self, path: &Path) -> Result<(), VaultError> {
        let head = "# verbatim workspace key file. Keep it secret and back it up: without it the sealed\n\
             # originals cannot be read and respondent pseudonyms change. Never commit or share it.\n";
        let body = match &self.root {
            Some(root) => format!(
                "{head}version = 2\nseal = \"{}\"\nroot = \"{}\"\n",
                hex::encode(*self.seal),
                hex::encode(**root)
            ),
            None => format!(
                "{head}version = 1\nseal = \"{}\"\npseudonym = \"{}\"\n",
                hex::encode(*self.seal),
                hex::encode(*self.hashes.pseudonym)
            ),
        };
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
        Vault::from_table(&KeyTable::read(path)?)
    }

    fn from_table(t: &KeyTable<'_>) -> Result<Vault, VaultError> {
        if t.purpose() == Some(PREPARE_PURPOSE) {
            return Err(t.invalid(
                "this is a prepare key file (`verbatim key export --for prepare`), not a workspace key file".into(),
            ));
        }
        match t.version() {
            Some(1) => Ok(Vault::legacy(t.key("seal")?, t.key("pseudonym")?)),
            Some(2) => Ok(Vault::from_root(t.key("seal")?, t.key("root")?)),
            _ => Err(t.invalid("unknown version (expected `version = 1` or `2`)".into())),
        }
    }

    /// The respondent pseudonym of an identifier ([`HashKeys::pseudonym`]).
    pub fn pseudonym(&self, identifier: &str) -> String {
        self.hashes.pseudonym(identifier)
    }

    /// The key the store seals its rows with (integrity at rest): derived from the row key
    /// under its own domain, so it is never stored and changes with the key file.
    pub(crate) fn row_key(&self) -> [u8; 32] {
        hmac32(&self.row, "row-seal-key", b"")
    }

    /// A keyed hash (hex, 128 bits) for values that must be compared but not revealed: domain
    /// `audit` under the audit key, the others as [`HashKeys::keyed_hash`].
    pub fn keyed_hash(&self, domain: &str, data: &[u8]) -> String {
        if domain == "audit" {
            hex::encode(&hmac32(&self.audit, domain, data)[..16])
        } else {
            self.hashes.keyed_hash(domain, data)
        }
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

    /// The v1 formula, written out: HMAC-SHA256(key, domain ‖ 0 ‖ data).
    fn old_mac(key: &[u8], domain: &str, data: &[u8]) -> Vec<u8> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
        m.update(domain.as_bytes());
        m.update(&[0]);
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }

    fn write_private(path: &Path, body: &str) {
        std::fs::write(path, body).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    #[test]
    fn a_legacy_key_file_keeps_every_value_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let p = [7u8; 32];
        write_private(
            &path,
            &format!(
                "version = 1\nseal = \"{}\"\npseudonym = \"{}\"\n",
                hex::encode([3u8; 32]),
                hex::encode(p)
            ),
        );
        let v = Vault::open(&path).unwrap();
        assert!(v.is_legacy());
        let n = normalize_identifier("Jean@Example.fr");
        assert_eq!(
            v.pseudonym("Jean@Example.fr"),
            format!(
                "r_{}",
                hex::encode(&old_mac(&p, "respondent", n.as_bytes())[..10])
            )
        );
        for domain in ["content", "id", "content-id", "audit"] {
            assert_eq!(
                v.keyed_hash(domain, b"x"),
                hex::encode(&old_mac(&p, domain, b"x")[..16]),
                "{domain}"
            );
        }
        assert_eq!(v.row_key().to_vec(), old_mac(&p, "row-seal-key", b""));
    }

    #[test]
    fn new_key_files_derive_one_subkey_per_purpose() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let v = Vault::create(&path).unwrap();
        assert!(!v.is_legacy());
        let body = std::fs::read_to_string(&path).unwrap();
        assert!(
            body.contains("version = 2") && body.contains("root = "),
            "{body}"
        );
        let w = Vault::open(&path).unwrap();
        assert_eq!(w.keyed_hash("audit", b"x"), v.keyed_hash("audit", b"x"));
        assert_eq!(w.row_key(), v.row_key());
        // Four different keys: the same domain and data under each purpose's key differ.
        let h = v.hash_keys();
        let all = [
            hex::encode(hmac32(&h.pseudonym, "d", b"x")),
            hex::encode(hmac32(&h.content, "d", b"x")),
            hex::encode(hmac32(&v.audit, "d", b"x")),
            hex::encode(hmac32(&v.row, "d", b"x")),
        ];
        let distinct: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), 4);
    }

    #[test]
    fn the_prepare_export_holds_only_the_hash_keys() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::create(&dir.path().join(KEY_FILE)).unwrap();
        let out = dir.path().join("prepare.key");
        v.hash_keys().write_export(&out).unwrap();
        let body = std::fs::read_to_string(&out).unwrap();
        for secret in [
            hex::encode(*v.seal),
            hex::encode(**v.root.as_ref().unwrap()),
            hex::encode(*v.audit),
            hex::encode(*v.row),
        ] {
            assert!(!body.contains(&secret), "a workspace secret was exported");
        }
        let k = HashKeys::open(&out, false).unwrap();
        assert_eq!(k.key_id(), v.hash_keys().key_id());
        assert_eq!(k.pseudonym("a@b.fr"), v.pseudonym("a@b.fr"));
        assert_eq!(k.keyed_hash("content", b"t"), v.keyed_hash("content", b"t"));
        assert_eq!(k.content_id("t"), v.hash_keys().content_id("t"));
        // Not a workspace key file, and never overwritten.
        let err = Vault::open(&out).unwrap_err().to_string();
        assert!(err.contains("prepare key file"), "{err}");
        assert!(v.hash_keys().write_export(&out).is_err());
        // An edited key is caught by its id.
        let edited = body.replace(
            &hex::encode(*v.hash_keys().content),
            &hex::encode([1u8; 32]),
        );
        let edited_path = dir.path().join("edited.key");
        write_private(&edited_path, &edited);
        let err = HashKeys::open(&edited_path, false).unwrap_err().to_string();
        assert!(err.contains("key_id"), "{err}");
        // A workspace's keys under another root have another id.
        assert_ne!(Vault::generate().hash_keys().key_id(), k.key_id());
    }
}
