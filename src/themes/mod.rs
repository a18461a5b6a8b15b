//! Themes: what people talk about, how they feel about it, what drives the score, what is new.
//!
//! A theme run reads the stored embeddings (never the original text), clusters them
//! ([`cluster`]), labels the clusters by c-TF-IDF over the redacted text ([`label`]), and keeps
//! theme ids stable across runs by matching centroids; user edits (merge, rename, seed) live in
//! the store and are applied on every run ([`run`]). [`analytics`] turns a run into what an
//! analyst reads, over any filter; [`priority`] ranks the problem themes (what to fix first);
//! [`report`] renders it as HTML, Markdown or JSON.

pub mod analytics;
pub mod anchor;
pub mod aspect;
pub mod cluster;
pub mod label;
pub mod model;
pub mod priority;
pub mod report;
pub mod run;
pub mod sentences;
pub mod tree;
pub mod types;
pub mod units;

pub use types::*;
