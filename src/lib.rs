//! verbatim — local analysis of customer feedback.
//!
//! The pipeline (see ARCHITECTURE.md):
//!
//! ```text
//! ingest → redact → embed → store → index → retrieve
//!                                 ↑ access: one door for every read
//! ```
//!
//! * [`ingest`] reads CSV / JSONL / XLSX into [`ingest::Record`]s through a column [`ingest::Mapping`];
//!   a bad row becomes a [`ingest::RowError`] (`file:line: reason`) and never stops a run.
//! * [`pii`] redacts personal data before anything else sees the text ([`pii::Redacted`] is the
//!   only text the store and indexes take), pseudonymises respondents, seals originals.
//! * [`embed`] turns text into L2-normalised vectors with a sentence-transformers model run by candle.
//! * [`store`] is SQLite, the source of truth: verbatims, metadata, embeddings, ingest runs.
//! * [`index`] holds the derived indexes (tantivy BM25, hnsw_rs vectors); each records the store
//!   sequence it covers and catches up when opened; both can be rebuilt from the store.
//! * [`retrieve`] answers text / vector / hybrid queries with metadata filters.
//! * [`access`] is the one door: every read takes a [`access::Grant`].
//! * [`workspace`] ties them together: a folder with `verbatim.toml`, the store and the indexes.
//!
//! The library never prints; the binary (`src/main.rs`, `src/cli/`) owns stdout and stderr.

pub mod access;
pub mod ask;
pub mod backup;
pub mod embed;
pub mod fs;
pub mod index;
pub mod ingest;
pub mod lang;
pub mod limits;
pub mod pii;
pub mod progress;
pub mod retrieve;
pub mod sentiment;
pub mod server;
pub mod service;
pub mod settings;
pub mod store;
pub mod themes;
pub mod vecmath;
pub mod workspace;
