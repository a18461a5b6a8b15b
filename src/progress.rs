//! Progress of long work (ingest, embedding, theme runs, reindex), reported to whoever drives it.
//!
//! **Why here, at the bottom.** Both the ingest driver (`workspace`) and the theme stages
//! (`themes`) report progress; the trait used to live in `workspace::ingest`, so `themes` — a lower
//! layer — imported `workspace`. A shared seam used by two layers goes below both. The library
//! never draws anything: the CLI implements the trait with a progress bar, tests and the server
//! pass [`NoProgress`].

/// Receives progress from long work; the CLI draws a bar, tests ignore it.
///
/// Work is reported as named steps, one at a time: `start`, any number of `advance`, `finish`.
/// The steps: ingest — "reading" (rows read; total unknown until the file is read), "redacting"
/// (rows), "embedding" (new or changed verbatims), "indexing" (verbatims written); reindex —
/// "re-embedding", "indexing" (verbatims in the store); themes — "embedding sentences",
/// "embedding units" (opinion units of new or changed verbatims), "finding themes" (verbatims
/// clustered); backup — "archiving" (bytes of the files archived); restore — "checking",
/// "restoring" (bytes of the backup file read, in each pass); forget — "erasing" (verbatims),
/// "purging indexes" (2), "zeroing free space" (1). A step with nothing to do is not started, so no
/// finished step reports 0 of 0 (but reading an empty file, which reads 0 rows).
pub trait Progress {
    /// A phase starts with `total` units (0 when unknown: then the units done are its total).
    fn start(&self, phase: &str, total: u64);
    /// `n` more units are done.
    fn advance(&self, n: u64);
    /// The phase is over.
    fn finish(&self);
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Debug timings of a long run's steps, for `VERBATIM_LOG=verbatim=debug`: each
/// [`Steps::done`] logs how long its step took (the time since the previous one, or since
/// [`Steps::start`]), so nested runs' timings never read as one clock's.
pub struct Steps(std::time::Instant);

impl Steps {
    /// Starts timing the first step.
    pub fn start() -> Self {
        Steps(std::time::Instant::now())
    }

    /// Ends the current step (named by `what`) and starts the next.
    pub fn done(&mut self, what: std::fmt::Arguments<'_>) {
        let now = std::time::Instant::now();
        tracing::debug!(step_s = (now - self.0).as_secs_f64(), "{what}");
        self.0 = now;
    }
}
