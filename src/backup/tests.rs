//! Unit tests of the format, the stream, keys and the archive.

use super::*;
use super::{archive::*, create::*, header::*, key::*, stream::*};
use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use chacha20poly1305::aead::{KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use proptest::prelude::*;
use zeroize::Zeroizing;

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

/// The `aead` crate's STREAM gives exactly the documented format: chunk i is sealed under
/// nonce prefix ‖ i (u32 BE) ‖ last, with the header as associated data (so files written
/// before the switch still open, and files written now open with the format's description).
#[test]
fn chunks_are_sealed_under_the_documented_nonces() {
    use chacha20poly1305::aead::Aead;
    let d = data(40);
    let (header, file) = seal(&d, 16);
    let aead = XChaCha20Poly1305::new(&KEY.into());
    let aad = header.encode();
    assert_eq!(file[..HEADER_LEN], aad);
    let mut at = HEADER_LEN;
    let mut plain = Vec::new();
    for (i, len) in [16usize, 16, 8].into_iter().enumerate() {
        let mut nonce = [0u8; 24];
        nonce[..PREFIX_LEN].copy_from_slice(&header.prefix);
        nonce[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&(i as u32).to_be_bytes());
        nonce[23] = u8::from(i == 2);
        let ct = &file[at..at + len + TAG_LEN];
        let msg = Payload { msg: ct, aad: &aad };
        plain.extend(
            aead.decrypt(&nonce.into(), msg)
                .expect("chunk authenticates"),
        );
        at += len + TAG_LEN;
    }
    assert_eq!(at, file.len());
    assert_eq!(plain, d);
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

/// Records every step: (name, total, done at its finish).
#[derive(Default)]
struct Steps(std::cell::RefCell<Vec<(String, u64, u64)>>);

impl crate::progress::Progress for Steps {
    fn start(&self, phase: &str, total: u64) {
        self.0.borrow_mut().push((phase.to_string(), total, 0));
    }
    fn advance(&self, n: u64) {
        self.0.borrow_mut().last_mut().expect("a step started").2 += n;
    }
    fn finish(&self) {}
}

/// The names in `dir`.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A small workspace (with a 3 MiB file, so the stream spans chunks) and its backup.
fn backed_up_workspace(dir: &Path) -> (PathBuf, KeySource) {
    let ws = dir.join("ws");
    crate::workspace::Workspace::init(&ws).unwrap();
    fs::write(ws.join("filler.bin"), data(3 << 20)).unwrap();
    let file = dir.join("ws.vbk");
    let key = KeySource::Key(Zeroizing::new([9u8; 32]));
    let steps = Steps::default();
    let s = backup_with_progress(&ws, &file, &key, &BackupOptions::default(), &steps).unwrap();
    // One step, counting every archived byte.
    assert_eq!(
        *steps.0.borrow(),
        [("archiving".to_string(), s.bytes, s.bytes)]
    );
    (file, key)
}

/// A full disk in the middle of pass 2: the error names the file being written and says why,
/// the temp folder is gone, the target was never created; with room again the same restore
/// succeeds, and reports both passes in full.
#[test]
fn a_full_disk_mid_restore_leaves_nothing_and_a_retry_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (file, key) = backed_up_workspace(dir.path());
    let parent = dir.path().join("restores");
    fs::create_dir(&parent).unwrap();
    let to = parent.join("ws2");

    restore::FULL_AFTER.set(Some(1 << 20));
    let err = restore(&file, &to, &key).unwrap_err();
    restore::FULL_AFTER.set(None);
    let msg = err.to_string();
    match &err {
        BackupError::Io { path, source } => {
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{msg}");
            assert!(
                path.starts_with(&parent) && path.to_string_lossy().contains(".ws2.restore-"),
                "{msg}"
            );
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(msg.contains("no space left on device"), "{msg}");
    assert!(
        names(&parent).is_empty(),
        "left behind: {:?}",
        names(&parent)
    );

    let steps = Steps::default();
    let r = restore_with_progress(&file, &to, &key, &steps).unwrap();
    let total = fs::metadata(&file).unwrap().len() - HEADER_LEN as u64;
    assert_eq!(
        *steps.0.borrow(),
        [
            ("checking".to_string(), total, total),
            ("restoring".to_string(), total, total)
        ]
    );
    assert_eq!(
        fs::read(to.join("filler.bin")).unwrap(),
        data(3 << 20),
        "{r:?}"
    );
    // No lock or temp file comes along.
    assert!(!to.join(".lock").exists());
    assert_eq!(names(&parent), ["ws2"]);
}

/// A restore killed mid-way leaves its temp folder; the next restore into the same place
/// removes it (its lock is free), but never the folder of a restore still running (its lock
/// held) — and an empty target folder is filled in one rename.
#[test]
fn dead_restores_temp_folders_are_removed_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (file, key) = backed_up_workspace(dir.path());
    let parent = dir.path().join("restores");
    let to = parent.join("ws2");
    fs::create_dir_all(&to).unwrap();
    let dead = parent.join(".ws2.restore-0000dead");
    fs::create_dir(&dead).unwrap();
    fs::write(dead.join(".lock"), b"").unwrap();
    fs::write(dead.join("verbatim.sqlite"), b"half written").unwrap();
    let live = parent.join(".ws2.restore-00001ive");
    fs::create_dir(&live).unwrap();
    let held = fs::File::create(live.join(".lock")).unwrap();
    held.lock().unwrap();
    // Another target's temp folder is not ours to judge.
    let other = parent.join(".ws3.restore-0000dead");
    fs::create_dir(&other).unwrap();
    fs::write(other.join(".lock"), b"").unwrap();

    restore(&file, &to, &key).unwrap();
    assert!(to.join(crate::workspace::CONFIG_FILE).is_file());
    assert_eq!(
        names(&parent),
        [".ws2.restore-00001ive", ".ws3.restore-0000dead", "ws2"]
    );
    drop(held);
}
