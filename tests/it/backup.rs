//! Encrypted backups end to end: backup → restore gives the same searches (ids and scores, every
//! mode) and the same sealed originals; a damaged file, a wrong key or an occupied target is
//! refused and nothing is written.

use std::path::{Path, PathBuf};
use std::process::Command;

use verbatim::backup::HEADER_LEN;

use crate::common::*;

const PASS: &str = "correct horse battery staple";

/// `verbatim` with the backup passphrase set (or removed, with `None`).
fn vb(ws: &Path, pass: Option<&str>) -> Command {
    let mut c = verbatim(ws);
    match pass {
        Some(p) => c.env("VERBATIM_BACKUP_PASSPHRASE", p),
        None => c.env_remove("VERBATIM_BACKUP_PASSPHRASE"),
    };
    c
}

/// A workspace with the UCI sentences and the privacy tickets (sealed originals), and its backup.
fn backed_up() -> (tempfile::TempDir, tempfile::TempDir, PathBuf) {
    let ws = workspace();
    ingest_uci(ws.path());
    ingest_tickets(ws.path(), &[]);
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("ws.vbk");
    let s = json(
        vb(ws.path(), Some(PASS))
            .arg("backup")
            .arg("--out")
            .arg(&file),
    );
    eprintln!("backup: {s}");
    assert!(s["verbatims"].as_i64().unwrap() > 600, "{s}");
    (ws, out_dir, file)
}

fn search(ws: &Path, q: &str, mode: &str) -> serde_json::Value {
    json(verbatim(ws).args(["search", q, "--mode", mode, "--limit", "10"]))["hits"].clone()
}

/// Nothing at `to`, and no temp folder beside it.
fn nothing_written(to: &Path) {
    assert!(!to.exists(), "{} was created", to.display());
    let name = to.file_name().unwrap().to_string_lossy().into_owned();
    let leftovers: Vec<_> = std::fs::read_dir(to.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&name))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

/// Restoring `file` fails with a message naming it and containing `expect`; nothing is written.
fn refused(file: &Path, pass: Option<&str>, expect: &str) {
    let parent = tempfile::tempdir().unwrap();
    let to = parent.path().join("ws2");
    let o = run(vb(parent.path(), pass)
        .arg("restore")
        .arg(file)
        .arg("--to")
        .arg(&to));
    let err = stderr(&o);
    assert!(!o.status.success(), "restore of a bad file succeeded");
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
    // A missing key is about the command line, not the file.
    assert!(
        pass.is_none() || err.contains(&file.display().to_string()),
        "the message does not name the file: {err}"
    );
    nothing_written(&to);
}

#[test]
fn restore_gives_identical_searches_and_originals() {
    let (ws, out_dir, file) = backed_up();
    let to = out_dir.path().join("restored");
    let r = json(
        vb(ws.path(), Some(PASS))
            .arg("restore")
            .arg(&file)
            .arg("--to")
            .arg(&to),
    );
    eprintln!("restore: {r}");
    assert!(r["files"].as_u64().unwrap() >= 4, "{r}");
    // Lock and temp files are not archived.
    for name in [".lock", ".backup-snapshot.sqlite.tmp"] {
        assert!(!to.join(name).exists(), "{name} was restored");
    }

    // The indexes came along: opening the restored workspace has nothing to catch up.
    let stats = json(verbatim(&to).arg("stats"));
    assert_eq!(stats["caught_up"]["text"], 0, "{stats}");
    assert_eq!(stats["caught_up"]["vectors"], 0, "{stats}");
    let before = json(verbatim(ws.path()).arg("stats"));
    assert_eq!(stats["store"], before["store"]);
    assert_eq!(stats["text_index"], before["text_index"]);
    assert_eq!(stats["vector_index"], before["vector_index"]);

    for q in [
        "the battery died after a day",
        "great food and friendly staff",
        "terrible customer service",
        "remboursement carte bancaire",
    ] {
        for mode in ["text", "vector", "hybrid"] {
            let a = search(ws.path(), q, mode);
            let b = search(&to, q, mode);
            assert!(!a.as_array().unwrap().is_empty(), "{q} {mode}: no hits");
            assert_eq!(a, b, "{q:?} in {mode} mode differs after restore");
        }
    }

    // The audit trail came along, its chain intact under the restored key.
    ok(verbatim(&to).args(["audit", "verify"]));

    let a = json(verbatim(ws.path()).args(["pii", "reveal", "T-1003"]));
    let b = json(verbatim(&to).args(["pii", "reveal", "T-1003"]));
    assert!(b["original"]["text"]
        .as_str()
        .unwrap()
        .contains("4111 1111 1111 1111"));
    assert_eq!(a, b);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(to.join("verbatim.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Restoring over a workspace is refused, naming it, and leaves it alone.
    let cfg = std::fs::read(to.join("verbatim.toml")).unwrap();
    let o = run(vb(ws.path(), Some(PASS))
        .arg("restore")
        .arg(&file)
        .arg("--to")
        .arg(&to));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("already a verbatim workspace") && err.contains(&to.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(to.join("verbatim.toml")).unwrap(), cfg);
    // So is writing over an existing backup file.
    let o = run(vb(ws.path(), Some(PASS))
        .arg("backup")
        .arg("--out")
        .arg(&file));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
}

#[test]
fn damaged_backups_and_wrong_keys_are_refused_and_nothing_is_written() {
    let (_ws, out_dir, file) = backed_up();
    let bytes = std::fs::read(&file).unwrap();
    let chunk = u32::from_le_bytes(bytes[53..57].try_into().unwrap()) as usize + 16;
    assert!(
        bytes.len() > HEADER_LEN + 2 * chunk,
        "the test workspace should span at least three chunks ({} bytes)",
        bytes.len()
    );
    let damaged = |name: &str, b: &[u8]| {
        let p = out_dir.path().join(name);
        std::fs::write(&p, b).unwrap();
        p
    };
    const DAMAGED: &str = "wrong passphrase or key, or the file is damaged";

    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x10;
    refused(&damaged("flipped.vbk", &flipped), Some(PASS), DAMAGED);

    // Cut inside the last chunk, and exactly at a chunk boundary.
    refused(
        &damaged("cut.vbk", &bytes[..bytes.len() - 100]),
        Some(PASS),
        DAMAGED,
    );
    refused(
        &damaged("cut-boundary.vbk", &bytes[..HEADER_LEN + 2 * chunk]),
        Some(PASS),
        DAMAGED,
    );

    let mut swapped = bytes[..HEADER_LEN].to_vec();
    swapped.extend_from_slice(&bytes[HEADER_LEN + chunk..HEADER_LEN + 2 * chunk]);
    swapped.extend_from_slice(&bytes[HEADER_LEN..HEADER_LEN + chunk]);
    swapped.extend_from_slice(&bytes[HEADER_LEN + 2 * chunk..]);
    assert_eq!(swapped.len(), bytes.len());
    refused(&damaged("swapped.vbk", &swapped), Some(PASS), DAMAGED);

    // Header edits: the salt (a different key), the chunk size, the version, the magic.
    let mut salt = bytes.clone();
    salt[20] ^= 0x01;
    refused(&damaged("salt.vbk", &salt), Some(PASS), DAMAGED);
    let mut size = bytes.clone();
    size[54] ^= 0x01;
    refused(&damaged("size.vbk", &size), Some(PASS), DAMAGED);
    let mut version = bytes.clone();
    version[4] = 2;
    refused(
        &damaged("version.vbk", &version),
        Some(PASS),
        "format version 2",
    );
    refused(
        &damaged("magic.vbk", b"PK\x03\x04 not a backup"),
        Some(PASS),
        "not a verbatim backup",
    );

    // Wrong passphrase, none, two.
    refused(&file, Some("correct horse battery stapler"), DAMAGED);
    refused(&file, None, "VERBATIM_BACKUP_PASSPHRASE");
    let pf = out_dir.path().join("pass.txt");
    std::fs::write(&pf, format!("{PASS}\n")).unwrap();
    let parent = tempfile::tempdir().unwrap();
    let to = parent.path().join("ws2");
    let o = run(vb(parent.path(), Some(PASS))
        .arg("restore")
        .arg(&file)
        .arg("--to")
        .arg(&to)
        .arg("--passphrase-file")
        .arg(&pf));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("use only one"), "{}", stderr(&o));
    nothing_written(&to);
    // The passphrase file alone works.
    let r = json(
        vb(parent.path(), None)
            .arg("restore")
            .arg(&file)
            .arg("--to")
            .arg(&to)
            .arg("--passphrase-file")
            .arg(&pf),
    );
    assert!(r["verbatims"].as_i64().unwrap() > 600, "{r}");
}

#[test]
fn key_files_back_up_and_restore_and_are_never_overwritten() {
    let ws = workspace();
    ingest_tickets(ws.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("backup.key");
    ok(vb(ws.path(), None)
        .args(["backup", "keygen", "--out"])
        .arg(&key));
    let o = run(vb(ws.path(), None)
        .args(["backup", "keygen", "--out"])
        .arg(&key));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));

    let file = dir.path().join("ws.vbk");
    let s = json(
        vb(ws.path(), None)
            .args(["backup", "--out"])
            .arg(&file)
            .arg("--key-file")
            .arg(&key),
    );
    assert_eq!(s["key"], "key file");
    // A passphrase does not open a key-file backup, and says why.
    refused(&file, Some(PASS), "made with a key file");
    let to = dir.path().join("ws2");
    let r = json(
        vb(ws.path(), None)
            .arg("restore")
            .arg(&file)
            .arg("--to")
            .arg(&to)
            .arg("--key-file")
            .arg(&key),
    );
    assert_eq!(r["verbatims"], s["verbatims"]);
    let a = json(verbatim(ws.path()).args(["pii", "reveal", "T-1003"]));
    let b = json(verbatim(&to).args(["pii", "reveal", "T-1003"]));
    assert_eq!(a, b);
}

/// A backup written by an earlier version (tests/fixtures/backup/README.md) still restores, with
/// its searches and sealed originals: the file format is a promise to every existing backup.
#[test]
fn a_backup_made_by_an_earlier_version_still_restores() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("restored");
    let r = json(
        vb(dir.path(), None)
            .arg("restore")
            .arg(fixture("backup/tickets.vbk"))
            .arg("--to")
            .arg(&to)
            .arg("--key-file")
            .arg(fixture("backup/backup.key")),
    );
    assert_eq!(r["verbatims"], 12, "{r}");
    assert_eq!(r["verbatim_version"], "0.1.0", "{r}");
    let revealed = json(verbatim(&to).args(["pii", "reveal", "T-1003"]));
    assert_eq!(
        revealed["original"]["text"],
        "Débité deux fois sur ma carte 4111 1111 1111 1111, remboursez-moi. \
         Mon IBAN : FR14 2004 1010 0505 0001 3M02 606"
    );
    assert_eq!(
        revealed["original"]["respondent"],
        "marcelline.trobadec@example.fr"
    );
    let hits = search(&to, "refund", "hybrid");
    assert_eq!(hits[0]["verbatim"]["id"], "T-1002", "{hits}");
    let hits = search(&to, "colis", "vector");
    let ids: Vec<&str> = hits
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|h| h["verbatim"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["T-1008", "T-1001", "T-1004"], "{hits}");
    // A wrong key is refused: the test would pass vacuously on a format that opens anything.
    let other = dir.path().join("other.key");
    ok(vb(dir.path(), None)
        .args(["backup", "keygen", "--out"])
        .arg(&other));
    let o = run(vb(dir.path(), None)
        .arg("restore")
        .arg(fixture("backup/tickets.vbk"))
        .arg("--to")
        .arg(dir.path().join("again"))
        .arg("--key-file")
        .arg(&other));
    assert!(!o.status.success(), "{}", stderr(&o));
}

/// A small workspace (the tickets) with a 40 MiB file beside the store, so that a restore
/// writes for long enough to be killed in the middle; and its backup.
fn large_backup() -> (tempfile::TempDir, tempfile::TempDir, PathBuf) {
    let ws = workspace();
    ingest_tickets(ws.path(), &[]);
    let filler: Vec<u8> = (0..40u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(ws.path().join("attachments.bin"), &filler).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("ws.vbk");
    ok(vb(ws.path(), Some(PASS))
        .arg("backup")
        .arg("--out")
        .arg(&file));
    (ws, out_dir, file)
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `to` is a complete workspace equal to `ws`: same store counts, same attachments, intact
/// audit chain, sealed originals that open.
fn complete_copy_of(to: &Path, ws: &Path) {
    let a = json(verbatim(ws).arg("stats"));
    let b = json(verbatim(to).arg("stats"));
    assert_eq!(a["store"], b["store"], "{b}");
    assert_eq!(
        std::fs::read(to.join("attachments.bin")).unwrap(),
        std::fs::read(ws.join("attachments.bin")).unwrap()
    );
    ok(verbatim(to).args(["audit", "verify"]));
    let r = json(verbatim(to).args(["pii", "reveal", "T-1003"]));
    assert!(
        r["original"]["text"]
            .as_str()
            .unwrap()
            .contains("4111 1111 1111 1111"),
        "{r}"
    );
}

/// A restore killed (SIGKILL) at points in both passes never leaves a half-restored workspace
/// at the target: it is absent (only a hidden temp folder beside it), or complete. The next
/// restore into the same place succeeds and sweeps the dead restores' temp folders away.
#[test]
fn a_killed_restore_leaves_the_target_absent_and_the_next_one_succeeds() {
    use std::io::BufRead;
    let (ws, _out, file) = large_backup();
    let parent = tempfile::tempdir().unwrap();
    let to = parent.path().join("ws2");
    let mut killed_while_writing = 0;
    // (step, the progress event after which to kill): one MiB of the backup file per event.
    for (step, nth) in [
        ("checking", 3),
        ("restoring", 1),
        ("restoring", 8),
        ("restoring", 25),
    ] {
        let mut child = vb(parent.path(), Some(PASS))
            .args(["--progress", "jsonl", "restore"])
            .arg(&file)
            .arg("--to")
            .arg(&to)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            let Ok(e) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if e["event"] == "progress" && e["step"] == step {
                seen += 1;
                if seen == nth {
                    break;
                }
            }
        }
        assert_eq!(seen, nth, "{step}: the restore ended before event {nth}");
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "{step} {nth}: {status}");
        drop(lines);
        // Never a half-restored workspace at the target.
        assert!(!to.exists(), "{step} {nth}: {} exists", to.display());
        let left = names_in(parent.path());
        assert!(
            left.iter().all(|n| n.starts_with(".ws2.restore-")),
            "{step} {nth}: {left:?}"
        );
        if step == "restoring" && !left.is_empty() {
            killed_while_writing += 1;
        }
    }
    // The kills in pass 2 did land while files were being written (else this test shows
    // nothing about them).
    assert!(killed_while_writing >= 2, "{killed_while_writing}");

    let r = json(
        vb(parent.path(), Some(PASS))
            .arg("restore")
            .arg(&file)
            .arg("--to")
            .arg(&to),
    );
    assert!(r["bytes"].as_u64().unwrap() > 40 << 20, "{r}");
    assert_eq!(names_in(parent.path()), ["ws2"]);
    complete_copy_of(&to, ws.path());
}

/// A target that cannot be written (its parent is a file; a read-only folder when not root)
/// fails with exit 2 and a message naming the path, writes nothing, and the same backup then
/// restores elsewhere.
#[test]
fn an_unwritable_target_is_named_and_nothing_is_written() {
    let ws = workspace();
    ingest_tickets(ws.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ws.vbk");
    ok(vb(ws.path(), Some(PASS))
        .arg("backup")
        .arg("--out")
        .arg(&file));

    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"a file").unwrap();
    let to = blocker.join("ws2");
    let o = run(vb(dir.path(), Some(PASS))
        .arg("restore")
        .arg(&file)
        .arg("--to")
        .arg(&to));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&blocker.display().to_string()),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&blocker).unwrap(), b"a file");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.path().join("read-only");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        // root writes into a read-only folder anyway: then there is nothing to test here.
        let probe = ro.join("probe");
        if std::fs::write(&probe, b"").is_ok() {
            std::fs::remove_file(&probe).unwrap();
            eprintln!("running as root: the read-only folder case is not exercised");
        } else {
            let to = ro.join("ws2");
            let o = run(vb(dir.path(), Some(PASS))
                .arg("restore")
                .arg(&file)
                .arg("--to")
                .arg(&to));
            assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
            assert!(
                stderr(&o).contains(&ro.display().to_string()),
                "{}",
                stderr(&o)
            );
            assert!(names_in(&ro).is_empty(), "{:?}", names_in(&ro));
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    let to = dir.path().join("ws2");
    let r = json(
        vb(dir.path(), Some(PASS))
            .arg("restore")
            .arg(&file)
            .arg("--to")
            .arg(&to),
    );
    assert_eq!(r["verbatims"], 12, "{r}");
}

/// `backup`, `restore` and `forget` report named steps with count/total through
/// `--progress jsonl`, each finishing at its total.
#[test]
fn backup_restore_and_forget_report_their_steps() {
    let ws = workspace();
    ingest_tickets(ws.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ws.vbk");

    let o = run(vb(ws.path(), Some(PASS))
        .args(["--progress", "jsonl", "backup", "--json", "--out"])
        .arg(&file));
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let bytes = s["bytes"].as_u64().unwrap();
    assert!(bytes > 0, "{s}");
    let events = progress_events(&o);
    assert_eq!(
        finished_steps(&events),
        [("archiving".to_string(), bytes, bytes)]
    );
    assert_eq!(events[0]["event"], "start", "{events:?}");

    let to = dir.path().join("ws2");
    let o = run(vb(dir.path(), Some(PASS))
        .args(["--progress", "jsonl", "restore"])
        .arg(&file)
        .arg("--to")
        .arg(&to));
    assert!(o.status.success(), "{}", stderr(&o));
    let n = std::fs::metadata(&file).unwrap().len() - HEADER_LEN as u64;
    assert_eq!(
        finished_steps(&progress_events(&o)),
        [
            ("checking".to_string(), n, n),
            ("restoring".to_string(), n, n)
        ]
    );

    let o = run(verbatim(&to)
        .args(["--progress", "jsonl", "forget", "--json", "--respondent"])
        .arg("marcelline.trobadec@example.fr"));
    assert!(o.status.success(), "{}", stderr(&o));
    let receipt: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let erased = receipt["ids"].as_array().unwrap().len() as u64;
    assert!(erased >= 1, "{receipt}");
    assert_eq!(
        finished_steps(&progress_events(&o)),
        [
            ("erasing".to_string(), erased, erased),
            ("purging indexes".to_string(), 2, 2),
            ("zeroing free space".to_string(), 1, 1),
        ]
    );
    // Nothing to erase: no step at all (none ends at 0 of 0).
    let o = run(verbatim(&to)
        .args(["--progress", "jsonl", "forget", "--respondent"])
        .arg("nobody@example.org"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(progress_events(&o), Vec::<serde_json::Value>::new());
}
