//! Zeroing the store file's free space after an erasure, without rewriting the file.
//!
//! `PRAGMA secure_delete` (always on) zeroes what SQLite frees: a deleted cell, a freeblock, a
//! page put on the free list. What it does not reach are the old copies a page *rebuild* leaves
//! behind: when a split or a rebalance rewrites a page, the cells are copied to their new places
//! and the bytes between the cell-pointer array and the cell content area — the page's *gap* —
//! keep whatever the old image held there, copies of cells that now live elsewhere. Such a copy
//! outlives its row's erasure (erase.rs's test finds one in 3,000 rows). Until now every erasure
//! ended with `VACUUM`, rewriting the whole file: 15–17 s for a 2.6 GB store at a million
//! verbatims.
//!
//! [`Store::scrub`] keeps the file and zeroes exactly the bytes no row owns:
//!
//! 1. the write-ahead log is checkpointed into the file and truncated, so the file holds every
//!    page's current image;
//! 2. under the write lock, the file is read page by page: for each b-tree page, its gap and the
//!    bodies of its freeblocks (the 4-byte freeblock headers stay: they chain the free space); for
//!    each page on the free list, all of it (a trunk page: past its list of leaves);
//! 3. every page with a non-zero byte there is written back, those bytes zeroed, through SQLite's
//!    `sqlite_dbpage` table — so the write goes through the pager, the WAL and the commit like any
//!    other, and every connection's page cache stays coherent;
//! 4. the log is checkpointed and truncated again.
//!
//! Only bytes that no cell and no page header uses change, so a crash at any point leaves a valid
//! file (the WAL commit is atomic anyway). After a scrub no b-tree page and no free page holds a
//! non-zero byte outside its cells — not only none of the erased rows, none of anything ever
//! deleted or moved. Overflow pages are not read: they are allocated from zeroed free pages or
//! from the file's end, and freed zeroed. The fragments (free runs under 4 bytes inside the cell
//! area, at most 60 per page) are too small to hold a copy of anything.
//!
//! The cost is one read of the file (0.5 s for 2.6 GB from the page cache with two threads, 0.9 s
//! with one) plus the pages found dirty: at a million verbatims, a store never scrubbed had
//! ~39,000 such pages (almost all index and interior pages, whose gaps hold ids, dates and row
//! numbers); after a scrub, the next erasures found 46–497 (the pages they and the ingests in
//! between rebuilt). The file does not shrink: its free pages stay,
//! zeroed, for the next rows (SQLite reuses free pages before it grows the file; a `backup` is
//! a compact copy, `VACUUM INTO`, and restoring it gives a file without them).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::{Result, Store, StoreError};

/// Outcome of [`Store::scrub`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Scrubbed {
    /// Pages read (the whole file).
    pub pages_read: u64,
    /// Pages written back with their free space zeroed.
    pub pages_zeroed: u64,
    /// Non-zero bytes found in free space (and zeroed).
    pub bytes_zeroed: u64,
    /// The file was vacuumed instead (`sqlite_dbpage` unavailable, a page not understood, or
    /// another writer between the checkpoint and the scan): the stronger, slower guarantee.
    pub vacuumed: bool,
    /// The write-ahead log was truncated to zero bytes at the end.
    pub wal_truncated: bool,
}

/// Why a page could not be read as SQLite documents it: the scrub gives up and vacuums.
#[derive(Debug)]
struct NotUnderstood;

/// Byte ranges inside a page.
type Ranges = Vec<(usize, usize)>;

/// The free ranges of b-tree page `page` (number `pgno`, `usable` bytes used by SQLite): its gap
/// and freeblock bodies; `None` when it is not a b-tree page (an overflow page): left alone.
fn btree_free(page: &[u8], pgno: u64, usable: usize) -> Result<Option<Ranges>, NotUnderstood> {
    let off = if pgno == 1 { 100 } else { 0 };
    let kind = page[off];
    let header = match kind {
        2 | 5 => 12,
        10 | 13 => 8,
        _ => return Ok(None),
    };
    let be16 = |i: usize| usize::from(u16::from_be_bytes([page[i], page[i + 1]]));
    let cells = be16(off + 3);
    let content = match be16(off + 5) {
        0 => 65536,
        c => c,
    };
    let gap_start = off + header + 2 * cells;
    if gap_start > content || content > usable {
        return Err(NotUnderstood);
    }
    let mut ranges = vec![(gap_start, content)];
    // Freeblocks: a chain in increasing offsets inside the content area, each starting with a
    // 2-byte next offset and a 2-byte size (the size counts those 4 bytes).
    let mut next = be16(off + 1);
    let mut last = 0;
    while next != 0 {
        if next < content || next <= last || next + 4 > usable {
            return Err(NotUnderstood);
        }
        let size = be16(next + 2);
        if size < 4 || next + size > usable {
            return Err(NotUnderstood);
        }
        ranges.push((next + 4, next + size));
        last = next;
        next = be16(next);
    }
    Ok(Some(ranges))
}

/// Non-zero bytes in `ranges` of `page`.
fn dirty(page: &[u8], ranges: &[(usize, usize)]) -> u64 {
    ranges
        .iter()
        .map(|&(a, b)| page[a..b].iter().filter(|&&x| x != 0).count() as u64)
        .sum()
}

/// The store file's page size, reserved bytes per page and free-list (trunk pages, leaf pages).
struct Layout {
    page_size: usize,
    usable: usize,
    pages: u64,
    trunks: std::collections::HashMap<u64, usize>,
    leaves: std::collections::HashSet<u64>,
}

/// The layout of the store file `file`, `len` bytes long, of which the database uses the first
/// `pages` pages (`None`: all of them). Pages past the database's size — a file longer than the
/// database, which SQLite allows — are not read: writing one through `sqlite_dbpage` would grow
/// the database by a page nothing points to.
fn layout(file: &File, len: u64, pages: Option<u64>) -> std::io::Result<Option<Layout>> {
    let mut head = [0u8; 100];
    if len < 100 {
        return Ok(None);
    }
    file.read_exact_at(&mut head, 0)?;
    if &head[..16] != b"SQLite format 3\0" {
        return Ok(None);
    }
    let page_size = match u16::from_be_bytes([head[16], head[17]]) {
        1 => 65536,
        p => usize::from(p),
    };
    let usable = page_size - usize::from(head[20]);
    let pages = (len / page_size as u64).min(pages.unwrap_or(u64::MAX));
    let be32 =
        |b: &[u8], i: usize| u64::from(u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
    let mut trunks = std::collections::HashMap::new();
    let mut leaves = std::collections::HashSet::new();
    let mut trunk = be32(&head, 32);
    let mut page = vec![0u8; page_size];
    while trunk != 0 {
        if trunk > pages || trunks.contains_key(&trunk) {
            return Ok(None);
        }
        file.read_exact_at(&mut page, (trunk - 1) * page_size as u64)?;
        let n = be32(&page, 4) as usize;
        if 8 + 4 * n > usable {
            return Ok(None);
        }
        for i in 0..n {
            leaves.insert(be32(&page, 8 + 4 * i));
        }
        trunks.insert(trunk, 8 + 4 * n);
        trunk = be32(&page, 0);
    }
    Ok(Some(Layout {
        page_size,
        usable,
        pages,
        trunks,
        leaves,
    }))
}

impl Store {
    /// Zeroes every byte of the store file that no row owns (module docs): the gaps and
    /// freeblocks of b-tree pages and the free pages, in place, through SQLite. Falls back to
    /// [`Store::vacuum`] whenever it cannot give that guarantee.
    pub fn scrub(&self) -> Result<Scrubbed> {
        if !self.checkpoint_truncate()?.wal_truncated {
            return self.scrub_by_vacuum();
        }
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.err(e))?;
        let scanned = self.scrub_locked();
        let done = match scanned {
            Ok(Some(s)) => self
                .conn
                .execute_batch("COMMIT")
                .map_err(|e| self.err(e))
                .map(|()| Some(s)),
            Ok(None) => self
                .conn
                .execute_batch("ROLLBACK")
                .map_err(|e| self.err(e))
                .map(|()| None),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }?;
        match done {
            Some(mut s) => {
                s.wal_truncated = self.checkpoint_truncate()?.wal_truncated;
                Ok(s)
            }
            None => self.scrub_by_vacuum(),
        }
    }

    fn scrub_by_vacuum(&self) -> Result<Scrubbed> {
        let v = self.vacuum()?;
        Ok(Scrubbed {
            vacuumed: true,
            wal_truncated: v.wal_truncated,
            ..Scrubbed::default()
        })
    }

    /// The scan and the writes, inside the write transaction. `None`: not done (vacuum instead).
    fn scrub_locked(&self) -> Result<Option<Scrubbed>> {
        let io = |source: std::io::Error| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        // Another writer may have committed between the checkpoint and the lock: then the file
        // is not every page's current image.
        let wal = {
            let mut p = self.path.clone().into_os_string();
            p.push("-wal");
            std::path::PathBuf::from(p)
        };
        if std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) != 0 {
            return Ok(None);
        }
        let mut write = match self
            .conn
            .prepare("INSERT INTO sqlite_dbpage(pgno, data) VALUES (?1, ?2)")
        {
            Ok(s) => s,
            // Built without SQLITE_ENABLE_DBPAGE_VTAB (.cargo/config.toml sets it).
            Err(_) => return Ok(None),
        };
        let file = File::open(&self.path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let in_use: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let Some(lay) = layout(&file, len, Some(in_use.max(0) as u64)).map_err(io)? else {
            return Ok(None);
        };
        let per_read = (8 << 20) / lay.page_size;
        let chunks = lay.pages.div_ceil(per_read as u64);
        // The file is read by a few threads, each taking every `workers`-th chunk of 8 MB; the
        // pages they find dirty come back here, to the connection, which writes them.
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4) as u64;
        let stop = AtomicBool::new(false);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Found>(256);
        std::thread::scope(|scope| {
            for w in 0..workers {
                let (tx, file, lay, stop) = (tx.clone(), &file, &lay, &stop);
                scope.spawn(move || scan(file, lay, per_read, (w, workers, chunks), stop, &tx));
            }
            drop(tx);
            let mut out = Some(Scrubbed {
                pages_read: lay.pages,
                ..Scrubbed::default()
            });
            let mut failed = None;
            for found in rx {
                match found {
                    Found::Page(pgno, page, bytes) => {
                        let Some(o) = out.as_mut().filter(|_| failed.is_none()) else {
                            continue;
                        };
                        match write.execute(rusqlite::params![pgno as i64, page]) {
                            Ok(_) => {
                                o.pages_zeroed += 1;
                                o.bytes_zeroed += bytes;
                            }
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                failed = Some(self.err(e));
                            }
                        }
                    }
                    Found::NotUnderstood => {
                        stop.store(true, Ordering::Relaxed);
                        out = None;
                    }
                    Found::Failed(e) => {
                        stop.store(true, Ordering::Relaxed);
                        failed = Some(io(e));
                    }
                }
            }
            match failed {
                Some(e) => Err(e),
                None => Ok(out),
            }
        })
    }
}

/// What a scanning thread reports: a page to write back (its number, its image with the free
/// space zeroed, the non-zero bytes that were there), or why the scrub cannot go on.
enum Found {
    Page(u64, Vec<u8>, u64),
    NotUnderstood,
    Failed(std::io::Error),
}

/// One scanning thread: chunks `w`, `w + workers`, … of `per_read` pages, until `chunks` or
/// until told to stop.
fn scan(
    file: &File,
    lay: &Layout,
    per_read: usize,
    (w, workers, chunks): (u64, u64, u64),
    stop: &AtomicBool,
    tx: &std::sync::mpsc::SyncSender<Found>,
) {
    let lock_page = 1_073_741_824 / lay.page_size as u64 + 1;
    let mut buf = vec![0u8; per_read * lay.page_size];
    let mut c = w;
    while c < chunks && !stop.load(Ordering::Relaxed) {
        let first = 1 + c * per_read as u64;
        let n = per_read.min((lay.pages - first + 1) as usize);
        let chunk = &mut buf[..n * lay.page_size];
        if let Err(e) = file.read_exact_at(chunk, (first - 1) * lay.page_size as u64) {
            let _ = tx.send(Found::Failed(e));
            return;
        }
        for (i, page) in chunk.chunks_exact_mut(lay.page_size).enumerate() {
            let pgno = first + i as u64;
            if pgno == lock_page {
                continue;
            }
            let ranges = match free_ranges(lay, page, pgno) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(NotUnderstood) => {
                    let _ = tx.send(Found::NotUnderstood);
                    return;
                }
            };
            let bytes = dirty(page, &ranges);
            if bytes == 0 {
                continue;
            }
            for &(a, b) in &ranges {
                page[a..b].fill(0);
            }
            if tx.send(Found::Page(pgno, page.to_vec(), bytes)).is_err() {
                return;
            }
        }
        c += workers;
    }
}

/// The free ranges of page `pgno` whatever its kind: all of a free-list leaf, a trunk past its
/// list, a b-tree page's gap and freeblocks; `None` for a page with no free space of its own
/// (an overflow page).
fn free_ranges(lay: &Layout, page: &[u8], pgno: u64) -> Result<Option<Ranges>, NotUnderstood> {
    if lay.leaves.contains(&pgno) {
        return Ok(Some(vec![(0, lay.usable)]));
    }
    if let Some(&used) = lay.trunks.get(&pgno) {
        return Ok(Some(vec![(used, lay.usable)]));
    }
    btree_free(page, pgno, lay.usable)
}

/// Non-zero bytes in the free space of the store file at `path` (what a scrub would zero), for
/// tests: read as [`Store::scrub`] reads it, without writing.
#[cfg(test)]
pub(super) fn dirty_free_bytes(path: &std::path::Path) -> u64 {
    let file = File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    let lay = layout(&file, len, None).unwrap().expect("a store file");
    let mut page = vec![0u8; lay.page_size];
    let mut total = 0;
    for pgno in 1..=lay.pages {
        file.read_exact_at(&mut page, (pgno - 1) * lay.page_size as u64)
            .unwrap();
        if let Some(ranges) = free_ranges(&lay, &page, pgno).unwrap() {
            total += dirty(&page, &ranges);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(kind: u8, cells: u16, content: u16, freeblock: u16) -> Vec<u8> {
        let mut p = vec![0u8; 4096];
        p[0] = kind;
        p[1..3].copy_from_slice(&freeblock.to_be_bytes());
        p[3..5].copy_from_slice(&cells.to_be_bytes());
        p[5..7].copy_from_slice(&content.to_be_bytes());
        p
    }

    #[test]
    fn a_leaf_page_s_free_space_is_its_gap_and_freeblock_bodies() {
        let mut p = page(13, 3, 3000, 3500);
        // Freeblock at 3500, 40 bytes, then one at 3600, 10 bytes, end of chain.
        p[3500..3502].copy_from_slice(&3600u16.to_be_bytes());
        p[3502..3504].copy_from_slice(&40u16.to_be_bytes());
        p[3602..3604].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(
            btree_free(&p, 2, 4096).unwrap(),
            Some(vec![(14, 3000), (3504, 3540), (3604, 3610)])
        );
        // An interior page's header is 12 bytes; page 1 starts after the file header.
        let p = page(5, 2, 4000, 0);
        assert_eq!(btree_free(&p, 7, 4096).unwrap(), Some(vec![(16, 4000)]));
        let mut p1 = vec![0u8; 4096];
        p1[100] = 13;
        p1[105..107].copy_from_slice(&4000u16.to_be_bytes());
        assert_eq!(btree_free(&p1, 1, 4096).unwrap(), Some(vec![(108, 4000)]));
        // An overflow page (its first bytes are a page number) is not a b-tree page.
        let mut o = vec![0u8; 4096];
        o[3] = 9;
        assert_eq!(btree_free(&o, 9, 4096).unwrap(), None);
    }

    #[test]
    fn pages_past_the_database_s_size_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let count = |s: &Store| -> i64 {
            s.conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .unwrap()
        };
        let before = {
            let s = Store::open(&path).unwrap();
            s.checkpoint_truncate().unwrap();
            count(&s)
        };
        // A file longer than its database (SQLite allows it), ending in what looks like a leaf
        // page with bytes in its gap.
        let mut junk = page(13, 0, 4000, 0);
        junk[100..110].fill(7);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, &junk).unwrap();
        drop(f);
        let s = Store::open(&path).unwrap();
        let done = s.scrub().unwrap();
        assert!(!done.vacuumed, "{done:?}");
        assert_eq!(done.pages_read, before as u64, "{done:?}");
        assert_eq!(count(&s), before);
        let ok: String = s
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }

    #[test]
    fn a_page_that_does_not_add_up_is_not_scrubbed() {
        // The cell pointers run past the content start.
        assert!(btree_free(&page(13, 2000, 100, 0), 2, 4096).is_err());
        // A freeblock before the content area, or one pointing backwards.
        assert!(btree_free(&page(13, 1, 3000, 200), 2, 4096).is_err());
        let mut p = page(13, 1, 3000, 3500);
        p[3500..3502].copy_from_slice(&3400u16.to_be_bytes());
        p[3502..3504].copy_from_slice(&8u16.to_be_bytes());
        assert!(btree_free(&p, 2, 4096).is_err());
    }
}
