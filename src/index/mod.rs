//! Derived indexes: tantivy for words, hnsw_rs for meaning.
//!
//! Neither is a source of truth. Each records the store sequence it covers; [`Indexes::open`]
//! catches both up, and [`Indexes::rebuild`] (`verbatim reindex`) recreates them from the store.
//! A crash between a store commit and an index commit therefore loses nothing: the next command
//! replays the missing changes. A process that keeps its indexes open (the server) calls
//! [`Indexes::refresh`] instead of reopening them: it catches up in place.

pub mod text;
pub mod vector;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::store::{Store, StoreError};
pub use text::TextIndex;
pub use vector::{HnswParams, VectorIndex};

/// Errors from the derived indexes.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// File system error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// tantivy failed.
    #[error("text index {path}: {message}")]
    Text {
        /// The index folder.
        path: PathBuf,
        /// What tantivy said.
        message: String,
    },
    /// hnsw_rs failed.
    #[error("vector index {path}: {message}")]
    Vector {
        /// The index folder.
        path: PathBuf,
        /// What hnsw_rs said.
        message: String,
    },
    /// An index file is damaged; the message says how to recover.
    #[error("{path}: damaged index: {message}")]
    Corrupt {
        /// The damaged file or folder.
        path: PathBuf,
        /// Details.
        message: String,
    },
    /// The store failed while reading changes.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::fs::FsError> for IndexError {
    fn from(e: crate::fs::FsError) -> Self {
        IndexError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Both indexes of a workspace.
pub struct Indexes {
    /// BM25 index.
    pub text: TextIndex,
    /// HNSW index.
    pub vectors: VectorIndex,
}

/// What a catch-up or rebuild did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncReport {
    /// Changes applied to the text index.
    pub text: usize,
    /// Vectors inserted into the HNSW graph.
    pub vectors: usize,
}

impl Indexes {
    /// Opens both indexes under `dir` and catches them up with `store`.
    pub fn open(dir: &Path, store: &Store) -> Result<(Self, SyncReport), IndexError> {
        let mut ix = Indexes {
            text: TextIndex::open(&dir.join("text"))?,
            vectors: VectorIndex::open(&dir.join("vectors"), HnswParams::default())?,
        };
        let report = ix.catch_up(store)?;
        Ok((ix, report))
    }

    /// Opens both indexes for an erasure and catches them up: the text index as
    /// [`Indexes::open`] does, the vector index without reading its graph
    /// ([`VectorIndex::open_unloaded`]: masking works on its files; the graph is read only if
    /// there are vectors to insert). Not for searching.
    pub fn open_for_erasure(dir: &Path, store: &Store) -> Result<(Self, SyncReport), IndexError> {
        let mut ix = Indexes {
            text: TextIndex::open(&dir.join("text"))?,
            vectors: VectorIndex::open_unloaded(&dir.join("vectors"), HnswParams::default())?,
        };
        let report = ix.catch_up(store)?;
        Ok((ix, report))
    }

    /// Applies store changes the indexes have not seen yet. An index that claims to be *ahead*
    /// of the store (the store was replaced by an older copy) is rebuilt rather than trusted.
    ///
    /// The two indexes are brought up to date at the same time, the text index on a thread of its
    /// own with its own read connection to the store (tantivy indexes on one thread while the
    /// HNSW insertion uses the rest): a large catch-up costs about the HNSW time alone.
    pub fn catch_up(&mut self, store: &Store) -> Result<SyncReport, IndexError> {
        let seq = store.seq()?;
        let text_behind = self.text.covered() != seq || self.text.stale();
        let (text, vectors) = self.both(
            store,
            text_behind,
            |text, s| {
                if text.covered() > seq {
                    text.rebuild(s)
                } else {
                    text.catch_up(s)
                }
            },
            |vectors, s| {
                if vectors.covered() > seq {
                    vectors.rebuild(s)
                } else {
                    vectors.catch_up(s)
                }
            },
        )?;
        Ok(SyncReport { text, vectors })
    }

    /// Brings indexes that stay open (the server's) up to the store *in place*: new, changed
    /// and deleted verbatims go into tantivy (one commit, reader reloaded), new vectors into the
    /// in-memory HNSW graph (stale slots are the store's to filter), and both persist the
    /// sequence they now cover, as [`Indexes::catch_up`] does. Nothing is read back from disk —
    /// unless another writer (a CLI `ingest`, `forget` or `reindex` beside the server) persisted
    /// either index meanwhile: then both are reloaded first, since the graph held here would
    /// lack that writer's points or keep the ones its erasure removed.
    pub fn refresh(&mut self, store: &Store) -> Result<SyncReport, IndexError> {
        let seq = store.seq()?;
        if self.text.covered() == seq && self.vectors.covered() == seq {
            return Ok(SyncReport::default());
        }
        if self.text.written_elsewhere()? || self.vectors.written_elsewhere()? {
            tracing::debug!("index: written by another process; reloading");
            self.text.reload()?;
            self.vectors.reload()?;
        }
        self.catch_up(store)
    }

    /// Rebuilds both indexes from the store.
    pub fn rebuild(&mut self, store: &Store) -> Result<SyncReport, IndexError> {
        let (text, vectors) = self.both(store, true, |t, s| t.rebuild(s), |v, s| v.rebuild(s))?;
        Ok(SyncReport { text, vectors })
    }

    /// Runs `on_text` (on a second connection, in a scoped thread, when `parallel`) and
    /// `on_vectors` (here) together.
    fn both(
        &mut self,
        store: &Store,
        parallel: bool,
        on_text: impl FnOnce(&mut TextIndex, &Store) -> Result<usize, IndexError> + Send,
        on_vectors: impl FnOnce(&mut VectorIndex, &Store) -> Result<usize, IndexError>,
    ) -> Result<(usize, usize), IndexError> {
        if !parallel {
            let t = on_text(&mut self.text, store)?;
            return Ok((t, on_vectors(&mut self.vectors, store)?));
        }
        // The second connection keeps the store's seal key (it checks the same rows).
        let second = store.reopen()?;
        let text = &mut self.text;
        let vectors = &mut self.vectors;
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || {
                let t = std::time::Instant::now();
                let r = on_text(text, &second);
                tracing::debug!(secs = t.elapsed().as_secs_f64(), "index: text done");
                r
            });
            let t = std::time::Instant::now();
            let v = on_vectors(vectors, store);
            tracing::debug!(secs = t.elapsed().as_secs_f64(), "index: vectors done");
            let t = handle
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            Ok((t?, v?))
        })
    }
}
