//! BM25 text index (tantivy) with French and English analysers.
//!
//! Each verbatim's text goes into the field of its language (`text_en` or `text_fr`); a query is
//! analysed by both analysers and searched over both fields, so "livraisons" finds "livraison" and
//! "deliveries" finds "delivery". The query string is never parsed as tantivy query syntax: users
//! type feedback words, not Lucene expressions, and `don't` or `C++` must not be an error.
//!
//! Segment values are indexed as raw `field=value` terms, dates and scores as fast fields, so
//! metadata filters run inside tantivy and text search never loses recall to post-filtering.
//!
//! Negation: a word in the scope of a negation cue ("not", "no", "never", "n't", "without",
//! "hardly", "ne … pas", "sans", "aucun", "rien"…, up to the next punctuation or contrast word;
//! the rule is [`crate::sentiment::rule::negation_scopes`], the one the sentiment score uses) is
//! indexed as `NOT_` + its term: "arrived with no damage" holds `NOT_damag`, not `damag`. Queries
//! go through the same analyser, so "package arrived damaged" no longer matches the reassurance
//! and "not damaged" finds it. Changing the analysis changes what the index holds: the commit
//! payload records [`ANALYSIS_VERSION`], and an index written under another one is rebuilt from
//! the store when it is opened and caught up.
//!
//! The commit payload records the store sequence the index covers (`{"seq": N}`); opening the
//! index catches up from the store. A tantivy commit is atomic, so a crash leaves either the old
//! or the new state, both consistent with some sequence.

use std::collections::HashSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use tantivy::collector::TopDocs;
use tantivy::query::Bm25StatisticsProvider;
use tantivy::query::{
    BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    TextAnalyzer, Token, TokenStream, Tokenizer,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::IndexError;

/// The share of the index a doc set must hold for [`TextIndex::search_within`] to filter an
/// oversampled unrestricted search rather than pass the set into tantivy.
pub const OVERSAMPLE_SHARE: f64 = 0.2;

/// How many times deeper an oversampled search (a set of ≥ [`OVERSAMPLE_SHARE`]) is tried
/// again when too few of its hits were in the set, before the search restricted to the set.
pub const RETRY_DEPTH: usize = 4;

/// About the most documents a background merge puts in one segment (see `TextIndex::writer`):
/// what one erasure rewrites per segment it touches.
pub const SEGMENT_DOCS: usize = 100_000;

/// The indexing buffer of one writer (see `TextIndex::writer`): full, it becomes a segment.
const WRITER_BYTES: usize = 24 << 20;
use crate::lang::Lang;
use crate::store::{Change, Filter, Store, Verbatim};

const EN: &str = "verbatim_en";
const FR: &str = "verbatim_fr";

/// Builds the analyser for one language. Stemming runs before accent folding, since the
/// Snowball stemmers expect accented input; folding after makes "reçu" and "recu" meet.
pub fn analyzer(lang: Lang) -> TextAnalyzer {
    let l = match lang {
        Lang::En => Language::English,
        Lang::Fr => Language::French,
    };
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(Stemmer::new(l))
        .filter(AsciiFoldingFilter)
        .build()
}

/// Version of what the index analysers produce; bump it whenever they change (an index committed
/// under another version is rebuilt). 1: stemming + folding; 2: negated terms as `NOT_` + term.
pub const ANALYSIS_VERSION: i64 = 2;

/// Prefix of a term in the scope of a negation (upper case: the analyser lower-cases every
/// term and splits on `_`, so no ordinary term can start with it).
pub const NEGATED: &str = "NOT_";

/// The analyser the index and its queries use: [`analyzer`], with the terms of negated words
/// prefixed by [`NEGATED`].
pub fn index_analyzer(lang: Lang) -> TextAnalyzer {
    TextAnalyzer::from(Negating {
        inner: analyzer(lang),
    })
}

/// A tokenizer that runs a plain analyser, then marks the terms whose word the negation rule
/// puts in scope (matched by byte offsets, so stemming and folding do not matter).
#[derive(Clone)]
struct Negating {
    inner: TextAnalyzer,
}

/// Tokens computed up front.
struct Tokens {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for Tokens {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }
    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

impl Tokenizer for Negating {
    type TokenStream<'a> = Tokens;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> Tokens {
        let negated: Vec<(usize, usize)> = crate::sentiment::rule::negation_scopes(text)
            .into_iter()
            .filter(|w| w.negated)
            .map(|w| (w.start, w.end))
            .collect();
        let mut stream = self.inner.token_stream(text);
        let mut tokens = Vec::new();
        while stream.advance() {
            let mut t = stream.token().clone();
            if negated
                .iter()
                .any(|&(s, e)| t.offset_from >= s && t.offset_to <= e)
            {
                t.text = format!("{NEGATED}{}", t.text);
            }
            tokens.push(t);
        }
        Tokens { tokens, next: 0 }
    }
}

/// For each token `analyzer(lang)` makes of `query`, whether it is an English or French stop word
/// (tantivy's lists; same tokenizer and length limit, so the two sequences line up).
fn query_words(query: &str, lang: Lang) -> Vec<bool> {
    let _ = lang; // one list for both analyses: either language's function words are noise
    let stop_in = |l: Language| {
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(tantivy::tokenizer::StopWordFilter::new(l).expect("stop word list"))
            .build()
    };
    let mut lists = [stop_in(Language::English), stop_in(Language::French)];
    let mut words = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .build();
    let mut stream = words.token_stream(query);
    let mut out = Vec::new();
    while stream.advance() {
        let w = stream.token().text.clone();
        // A word the filter swallows is a stop word.
        out.push(lists.iter_mut().any(|a| !a.token_stream(&w).advance()));
    }
    out
}

/// The terms a text produces under one language's index analyser ([`index_analyzer`]: negated
/// words marked), with byte offsets.
pub fn tokens(lang: Lang, text: &str) -> Vec<(String, usize, usize)> {
    let mut a = index_analyzer(lang);
    let mut stream = a.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        let t = stream.token();
        out.push((t.text.clone(), t.offset_from, t.offset_to));
    }
    out
}

struct Fields {
    doc: Field,
    text_en: Field,
    text_fr: Field,
    seg: Field,
    ts: Field,
    score: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |tok: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tok)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
    };
    let num = NumericOptions::default().set_indexed().set_fast();
    let fields = Fields {
        doc: b.add_u64_field("doc", NumericOptions::default().set_indexed().set_stored()),
        text_en: b.add_text_field("text_en", text(EN)),
        text_fr: b.add_text_field("text_fr", text(FR)),
        seg: b.add_text_field("seg", STRING),
        ts: b.add_i64_field("ts", num.clone()),
        score: b.add_f64_field("score", num),
    };
    (b.build(), fields)
}

/// The tantivy index of one workspace.
pub struct TextIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    path: PathBuf,
    covered: i64,
    /// Committed under another [`ANALYSIS_VERSION`]: the next catch-up rebuilds.
    stale: bool,
}

/// The store sequence in the last commit's payload on disk (0: none yet).
fn committed_seq(index: &Index, dir: &Path) -> Result<i64, IndexError> {
    Ok(index
        .load_metas()
        .map_err(|e| err(dir, e))?
        .payload
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .and_then(|v| v.get("seq").and_then(|s| s.as_i64()))
        .unwrap_or(0))
}

/// The analysis version in the last commit's payload (1: written before versions were
/// recorded).
fn committed_analysis(index: &Index, dir: &Path) -> Result<i64, IndexError> {
    Ok(index
        .load_metas()
        .map_err(|e| err(dir, e))?
        .payload
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .and_then(|v| v.get("analysis").and_then(|s| s.as_i64()))
        .unwrap_or(1))
}

fn err(path: &Path, e: impl std::fmt::Display) -> IndexError {
    IndexError::Text {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The segment files of the index in `dir` whose bytes do not match the checksum tantivy wrote
/// in their footer (`verbatim check`), as paths under `dir`. Reads no segment otherwise (opening
/// a reader on a damaged footer can panic inside tantivy), and creates nothing.
pub fn damaged_files(dir: &Path) -> Result<Vec<PathBuf>, IndexError> {
    let mmap = tantivy::directory::MmapDirectory::open(dir).map_err(|e| err(dir, e))?;
    let index = Index::open(mmap).map_err(|e| err(dir, e))?;
    let mut bad: Vec<PathBuf> = index
        .validate_checksum()
        .map_err(|e| err(dir, e))?
        .into_iter()
        .map(|f| dir.join(f))
        .collect();
    bad.sort();
    Ok(bad)
}

impl TextIndex {
    /// Opens or creates the index in `dir`.
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir).map_err(|e| IndexError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let (schema, fields) = schema();
        let mmap = tantivy::directory::MmapDirectory::open(dir).map_err(|e| err(dir, e))?;
        let index = Index::open_or_create(mmap, schema).map_err(|e| err(dir, e))?;
        index.tokenizers().register(EN, index_analyzer(Lang::En));
        index.tokenizers().register(FR, index_analyzer(Lang::Fr));
        let covered = committed_seq(&index, dir)?;
        let stale = covered > 0 && committed_analysis(&index, dir)? != ANALYSIS_VERSION;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| err(dir, e))?;
        Ok(TextIndex {
            index,
            reader,
            fields,
            path: dir.to_path_buf(),
            covered,
            stale,
        })
    }

    /// The store sequence this index covers.
    pub fn covered(&self) -> i64 {
        self.covered
    }

    /// Whether the index was committed under another [`ANALYSIS_VERSION`] and has not been
    /// rebuilt yet ([`TextIndex::catch_up`] rebuilds it).
    pub fn stale(&self) -> bool {
        self.stale
    }

    /// Whether another writer (a CLI command beside a server) committed since this value last
    /// did: the sequence in the commit on disk is not the one this value covers.
    pub fn written_elsewhere(&self) -> Result<bool, IndexError> {
        Ok(committed_seq(&self.index, &self.path)? != self.covered)
    }

    /// Opens the index again (its reader then sees every commit on disk).
    pub fn reload(&mut self) -> Result<(), IndexError> {
        *self = TextIndex::open(&self.path)?;
        Ok(())
    }

    fn writer(&self) -> Result<IndexWriter, IndexError> {
        // The buffer's size decides how big a segment a large catch-up or a rebuild writes: tantivy
        // flushes one each time the buffer fills. 24 MB flushes ~100,000 short verbatims (fewer,
        // longer ones: the bound is in bytes, which is what a merge costs); 64 MB wrote segments of
        // ~280,000 at a million verbatims, and one erasure touching four of them spent 1.7 s
        // rewriting them.
        let writer = self
            .index
            .writer_with_num_threads(1, WRITER_BYTES)
            .map_err(|e| err(&self.path, e))?;
        // Background merges stop growing a segment once it holds SEGMENT_DOCS ÷ 8 documents
        // (a merge takes 8 or so segments of one size): an erasure rewrites the segments that
        // held what it erased ([`TextIndex::purge_deleted`]), so their size bounds its cost.
        let mut policy = tantivy::indexer::LogMergePolicy::default();
        policy.set_max_docs_before_merge(SEGMENT_DOCS / 8);
        writer.set_merge_policy(Box::new(policy));
        Ok(writer)
    }

    fn document(&self, v: &Verbatim) -> TantivyDocument {
        let f = &self.fields;
        let text_field = match Lang::from_code(&v.language) {
            Some(Lang::Fr) => f.text_fr,
            _ => f.text_en,
        };
        // Only redacted text enters the index: stored text went through `redact` at ingest, and
        // goes through it again here (idempotent), so not even an old row can slip through.
        let text = crate::pii::redact(&v.text);
        let mut d = doc!(f.doc => v.doc as u64, text_field => text.as_str());
        for (k, val) in &v.fields {
            d.add_text(f.seg, format!("{k}={val}"));
        }
        if let Some(ts) = v.ts {
            d.add_i64(f.ts, ts);
        }
        if let Some(s) = v.score {
            d.add_f64(f.score, s);
        }
        d
    }

    /// Applies every store change after the covered sequence and commits with the new sequence.
    /// Returns how many changes were applied. An index written under another analysis version
    /// is rebuilt instead (returns how many verbatims were indexed).
    pub fn catch_up(&mut self, store: &Store) -> Result<usize, IndexError> {
        if self.stale {
            tracing::info!(path = %self.path.display(), "text index: analysis changed; rebuilding");
            return self.rebuild(store);
        }
        let target = store.seq()?;
        if target <= self.covered {
            return Ok(0);
        }
        let writer = self.writer()?;
        let mut n = 0;
        let doc_field = self.fields.doc;
        store.changes_since(self.covered, |c| {
            match c {
                Change::Upsert { verbatim, .. } => {
                    writer.delete_term(Term::from_field_u64(doc_field, verbatim.doc as u64));
                    writer.add_document(self.document(&verbatim)).map_err(|e| {
                        crate::store::StoreError::Damaged {
                            path: self.path.clone(),
                            what: e.to_string(),
                        }
                    })?;
                }
                Change::Delete { doc, .. } => {
                    writer.delete_term(Term::from_field_u64(doc_field, doc as u64));
                }
            }
            n += 1;
            Ok(())
        })?;
        self.commit(writer, target)?;
        Ok(n)
    }

    /// Rebuilds from scratch: every document deleted, every verbatim re-added, one commit.
    pub fn rebuild(&mut self, store: &Store) -> Result<usize, IndexError> {
        let target = store.seq()?;
        let writer = self.writer()?;
        writer
            .delete_all_documents()
            .map_err(|e| err(&self.path, e))?;
        let mut n = 0;
        store.for_each(|v, _, _| {
            writer.add_document(self.document(&v)).map_err(|e| {
                crate::store::StoreError::Damaged {
                    path: self.path.clone(),
                    what: e.to_string(),
                }
            })?;
            n += 1;
            Ok(())
        })?;
        self.commit(writer, target)?;
        Ok(n)
    }

    fn commit(&mut self, mut writer: IndexWriter, seq: i64) -> Result<(), IndexError> {
        let mut prepared = writer.prepare_commit().map_err(|e| err(&self.path, e))?;
        prepared.set_payload(
            &serde_json::json!({ "seq": seq, "analysis": ANALYSIS_VERSION }).to_string(),
        );
        prepared.commit().map_err(|e| err(&self.path, e))?;
        writer
            .wait_merging_threads()
            .map_err(|e| err(&self.path, e))?;
        self.reader.reload().map_err(|e| err(&self.path, e))?;
        self.covered = seq;
        self.stale = false;
        Ok(())
    }

    /// Physically removes deleted documents (after an erasure): rewrites each segment that
    /// holds a deleted document, alone (a merge of one segment), which keeps only its live
    /// documents and drops every term left without one (tantivy's merger skips terms whose
    /// postings are all deleted), then deletes the old segment files. Until this runs, a
    /// deleted document is hidden from searches but its terms stay in its segment. Segments
    /// without a deletion are not touched: the cost is the segments that held what was erased
    /// (at most about [`SEGMENT_DOCS`] short documents each, fewer long ones), not
    /// the index. The commit payload (covered sequence) is kept by the merge. Returns how many
    /// segments were rewritten.
    pub fn purge_deleted(&mut self) -> Result<usize, IndexError> {
        let mut writer = self.writer()?;
        let ids: Vec<tantivy::index::SegmentId> = self
            .index
            .searchable_segment_metas()
            .map_err(|e| err(&self.path, e))?
            .into_iter()
            .filter(|m| m.has_deletes())
            .map(|m| m.id())
            .collect();
        // Started together, they run side by side on tantivy's merge threads (one segment
        // each); then awaited.
        let merges: Vec<_> = ids
            .iter()
            .map(|id| writer.merge(std::slice::from_ref(id)))
            .collect();
        for merge in merges {
            merge.wait().map_err(|e| err(&self.path, e))?;
        }
        // Our own reader must let go of the old segments before they can be collected.
        self.reader.reload().map_err(|e| err(&self.path, e))?;
        writer
            .garbage_collect_files()
            .wait()
            .map_err(|e| err(&self.path, e))?;
        writer
            .wait_merging_threads()
            .map_err(|e| err(&self.path, e))?;
        self.reader.reload().map_err(|e| err(&self.path, e))?;
        Ok(ids.len())
    }

    /// The number of documents, deleted ones included, of each segment (ids as tantivy names
    /// them), in no particular order: what an erasure rewrites is visible here.
    pub fn segments(&self) -> Result<Vec<(String, u32)>, IndexError> {
        Ok(self
            .index
            .searchable_segment_metas()
            .map_err(|e| err(&self.path, e))?
            .into_iter()
            .map(|m| (m.id().uuid_string(), m.max_doc()))
            .collect())
    }

    /// Whether `term` (as the analyser stores it: lower-cased, stemmed, folded) is in the term
    /// dictionary of any segment, deleted documents included: what an erasure must leave false.
    pub fn holds_term(&self, term: &str) -> Result<bool, IndexError> {
        let searcher = self.reader.searcher();
        for seg in searcher.segment_readers() {
            for field in [self.fields.text_en, self.fields.text_fr] {
                let inv = seg.inverted_index(field).map_err(|e| err(&self.path, e))?;
                if inv
                    .terms()
                    .get(term.as_bytes())
                    .map_err(|e| err(&self.path, e))?
                    .is_some()
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Number of live documents.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Query terms under both analysers (deduplicated), for search and highlighting.
    ///
    /// English and French stop words ("the", "at", "le", "de"…) are left out of queries (the
    /// index keeps them): in hybrid search rank fusion counts a match on "the" as fully as a
    /// match on "refund", which let any text sharing a function word outrank a translation the
    /// vector side found first. A query made only of stop words keeps them.
    pub fn query_terms(query: &str) -> (Vec<String>, Vec<String>) {
        let uniq = |l: Lang| {
            let mut seen = HashSet::new();
            let content: Vec<String> = tokens(l, query)
                .into_iter()
                .zip(query_words(query, l))
                .filter(|(_, stop)| !*stop)
                .map(|(t, _)| t.0)
                .collect();
            let terms = if content.is_empty() {
                tokens(l, query).into_iter().map(|t| t.0).collect()
            } else {
                content
            };
            terms
                .into_iter()
                .filter(|t| seen.insert(t.clone()))
                .collect::<Vec<_>>()
        };
        (uniq(Lang::En), uniq(Lang::Fr))
    }

    fn filter_clauses(&self, filter: &Filter) -> Vec<(Occur, Box<dyn Query>)> {
        let f = &self.fields;
        let mut out: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (k, vals) in &filter.fields {
            let any: Vec<(Occur, Box<dyn Query>)> = vals
                .iter()
                .map(|v| {
                    let q: Box<dyn Query> = Box::new(TermQuery::new(
                        Term::from_field_text(f.seg, &format!("{k}={v}")),
                        IndexRecordOption::Basic,
                    ));
                    (Occur::Should, q)
                })
                .collect();
            out.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        if filter.since.is_some() || filter.until.is_some() {
            let lo = filter.since.map_or(Bound::Unbounded, |s| {
                Bound::Included(Term::from_field_i64(f.ts, s))
            });
            let hi = filter.until.map_or(Bound::Unbounded, |u| {
                Bound::Excluded(Term::from_field_i64(f.ts, u))
            });
            out.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
        }
        if filter.min_score.is_some() || filter.max_score.is_some() {
            let lo = filter.min_score.map_or(Bound::Unbounded, |s| {
                Bound::Included(Term::from_field_f64(f.score, s))
            });
            let hi = filter.max_score.map_or(Bound::Unbounded, |s| {
                Bound::Included(Term::from_field_f64(f.score, s))
            });
            out.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
        }
        out
    }

    /// BM25 search: `(doc, score)` best first, only verbatims passing `filter`.
    pub fn search(
        &self,
        query: &str,
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<(i64, f32)>, IndexError> {
        self.search_within(query, filter, None, limit)
    }

    /// [`TextIndex::search`] restricted to the docs in `docs` when given (a sentiment filter).
    ///
    /// A set holding a large share of the index (≥ [`OVERSAMPLE_SHARE`]: "negative" is 40% of a
    /// chit-chat corpus) is applied to an unrestricted search asked for more hits (`limit` ÷
    /// share × 1.5), which BM25 answers in a millisecond; only when that leaves fewer than
    /// `limit` is the set passed into tantivy as a doc-set clause (a term per doc: 17 ms for
    /// 40k docs). The doc-set clause scores 0, so both give the same scores.
    pub fn search_within(
        &self,
        query: &str,
        filter: &Filter,
        docs: Option<&HashSet<i64>>,
        limit: usize,
    ) -> Result<Vec<(i64, f32)>, IndexError> {
        self.search_in_corpus(query, filter, docs, limit, None)
    }

    /// [`TextIndex::search_within`] scored with the BM25 statistics of a whole corpus this
    /// index is one shard of ([`CorpusStats`]: document frequencies, document count and field
    /// lengths summed over every shard), so that a document gets the score it would get in one
    /// index holding every shard's documents; `None`: this index's own statistics.
    pub fn search_in_corpus(
        &self,
        query: &str,
        filter: &Filter,
        docs: Option<&HashSet<i64>>,
        limit: usize,
        corpus: Option<&CorpusStats>,
    ) -> Result<Vec<(i64, f32)>, IndexError> {
        let limit = limit.max(1);
        if let Some(set) = docs {
            let total = self.reader.searcher().num_docs() as f64;
            let share = set.len() as f64 / total.max(1.0);
            if share >= OVERSAMPLE_SHARE {
                let want = ((limit as f64 / share) * 1.5).ceil() as usize;
                // Once more, [`RETRY_DEPTH`] times as deep, when too few of the best are in the
                // set, before the set becomes a term query of every doc in it (250–300 ms at
                // 1M for the 461k negative verbatims: the p99 of a negative search).
                for want in [want, want * RETRY_DEPTH] {
                    let all = self.run_query(query, filter, None, want, corpus)?;
                    let exhausted = all.len() < want;
                    let kept: Vec<(i64, f32)> = all
                        .into_iter()
                        .filter(|(d, _)| set.contains(d))
                        .take(limit)
                        .collect();
                    if kept.len() >= limit || exhausted {
                        return Ok(kept);
                    }
                }
            }
        }
        self.run_query(query, filter, docs, limit, corpus)
    }

    /// The BM25 query itself (see [`TextIndex::search_within`]).
    fn run_query(
        &self,
        query: &str,
        filter: &Filter,
        docs: Option<&HashSet<i64>>,
        limit: usize,
        corpus: Option<&CorpusStats>,
    ) -> Result<Vec<(i64, f32)>, IndexError> {
        let f = &self.fields;
        let (en, fr) = Self::query_terms(query);
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, terms) in [(f.text_en, &en), (f.text_fr, &fr)] {
            for t in terms {
                should.push((
                    Occur::Should,
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, t),
                        IndexRecordOption::WithFreqs,
                    )),
                ));
            }
        }
        if should.is_empty() {
            return Ok(Vec::new());
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, Box::new(BooleanQuery::new(should)))];
        clauses.extend(self.filter_clauses(filter));
        if let Some(docs) = docs {
            let terms = docs.iter().map(|&d| Term::from_field_u64(f.doc, d as u64));
            let set = ConstScoreQuery::new(Box::new(TermSetQuery::new(terms)), 0.0);
            clauses.push((Occur::Must, Box::new(set)));
        }
        let q = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(limit).order_by_score();
        let hits = match corpus {
            Some(stats) => searcher.search_with_statistics_provider(&q, &top, stats),
            None => searcher.search(&q, &top),
        }
        .map_err(|e| err(&self.path, e))?;
        let mut out = Vec::with_capacity(hits.len());
        for (score, addr) in hits {
            let d: TantivyDocument = searcher.doc(addr).map_err(|e| err(&self.path, e))?;
            if let Some(doc) = d.get_first(f.doc).and_then(|v| v.as_u64()) {
                out.push((doc as i64, score));
            }
        }
        Ok(out)
    }

    /// This index's share of a corpus's BM25 statistics ([`CorpusStats::new`]).
    pub fn searcher(&self) -> tantivy::Searcher {
        self.reader.searcher()
    }

    /// Every document number in the index (for consistency checks), sorted.
    pub fn all_docs(&self) -> Result<Vec<i64>, IndexError> {
        let searcher = self.reader.searcher();
        let n = searcher.num_docs() as usize;
        let hits = searcher
            .search(
                &tantivy::query::AllQuery,
                &TopDocs::with_limit(n.max(1)).order_by_score(),
            )
            .map_err(|e| err(&self.path, e))?;
        let mut out = Vec::with_capacity(hits.len());
        for (_, addr) in hits {
            let d: TantivyDocument = searcher.doc(addr).map_err(|e| err(&self.path, e))?;
            if let Some(doc) = d.get_first(self.fields.doc).and_then(|v| v.as_u64()) {
                out.push(doc as i64);
            }
        }
        out.sort_unstable();
        Ok(out)
    }
}

/// The BM25 statistics of a corpus split over several text indexes (the shards `verbatim serve
/// --workspace A --workspace B` answers as one): each statistic is the sum of the shards' own.
///
/// **Why.** BM25's idf depends on the document frequency of a term and on the number of
/// documents, its length normalisation on the mean field length. Scored alone, a shard would
/// weigh "refund" by how rare it is *in that shard*, so scores of two shards would not compare
/// and the merged top-k would differ from one index's. Summed, every shard scores a document
/// exactly as one index holding all of them would (same analysers, same fields: the schema is
/// built by the same code), so the merge of per-shard top-k by score is the global top-k.
pub struct CorpusStats {
    searchers: Vec<tantivy::Searcher>,
}

impl CorpusStats {
    /// The statistics of every index in `shards` (searchers taken now).
    pub fn new<'a>(shards: impl IntoIterator<Item = &'a TextIndex>) -> CorpusStats {
        CorpusStats {
            searchers: shards.into_iter().map(TextIndex::searcher).collect(),
        }
    }
}

impl Bm25StatisticsProvider for CorpusStats {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        self.searchers
            .iter()
            .map(|s| Bm25StatisticsProvider::total_num_tokens(s, field))
            .sum()
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        self.searchers
            .iter()
            .map(Bm25StatisticsProvider::total_num_docs)
            .sum()
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        self.searchers
            .iter()
            .map(|s| Bm25StatisticsProvider::doc_freq(s, term))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_drop_english_and_french_stop_words_unless_nothing_else_is_left() {
        let (en, fr) = TextIndex::query_terms("Nobody answers the phone at the shop");
        assert!(!en.iter().any(|t| t == "the" || t == "at"), "{en:?}");
        // "Nobody" negates what follows (three words): the phone nobody answers.
        assert!(en.iter().any(|t| t == "NOT_phone"), "{en:?}");
        assert!(en.iter().any(|t| t == "shop"), "{en:?}");
        assert!(!fr.iter().any(|t| t == "the"), "{fr:?}");
        let (en, fr) = TextIndex::query_terms("le colis de la commande");
        assert!(
            !en.iter().any(|t| t == "le" || t == "de" || t == "la"),
            "{en:?}"
        );
        assert!(fr.iter().any(|t| t.starts_with("colis")), "{fr:?}");
        // Only stop words: they are the query.
        let (en, _) = TextIndex::query_terms("to be or not to be");
        assert!(!en.is_empty());
    }

    fn terms(lang: Lang, text: &str) -> Vec<String> {
        tokens(lang, text).into_iter().map(|t| t.0).collect()
    }

    #[test]
    fn english_negated_words_are_indexed_as_negated_terms() {
        assert_eq!(
            terms(Lang::En, "The package arrived damaged"),
            ["the", "packag", "arriv", "damag"]
        );
        let t = terms(Lang::En, "Not damaged at all, great coffee");
        assert!(t.contains(&"NOT_damag".to_string()), "{t:?}");
        assert!(!t.contains(&"damag".to_string()), "{t:?}");
        // The comma ends the scope.
        assert!(t.contains(&"great".to_string()), "{t:?}");
        let t = terms(Lang::En, "arrived with no damage");
        assert_eq!(t, ["arriv", "with", "no", "NOT_damag"]);
        let t = terms(Lang::En, "It isn't salty but sweet");
        assert!(t.contains(&"NOT_salti".to_string()), "{t:?}");
        assert!(t.contains(&"sweet".to_string()), "{t:?}");
        let t = terms(Lang::En, "hardly edible, never again");
        assert!(t.contains(&"NOT_edibl".to_string()), "{t:?}");
        assert!(t.contains(&"NOT_again".to_string()), "{t:?}");
        // Queries use the same analysis, so polarity must match.
        let (en, _) = TextIndex::query_terms("not damaged");
        assert_eq!(en, ["NOT_damag"]);
        let (en, _) = TextIndex::query_terms("package arrived damaged");
        assert!(en.contains(&"damag".to_string()), "{en:?}");
    }

    #[test]
    fn french_ne_pas_sans_aucun_rien_negate_the_following_words() {
        let t = terms(Lang::Fr, "Le colis n'est pas abîmé");
        assert!(t.contains(&"NOT_abim".to_string()), "{t:?}");
        assert!(t.contains(&"colis".to_string()), "{t:?}");
        let t = terms(Lang::Fr, "Le colis est arrivé abîmé");
        assert!(t.contains(&"abim".to_string()), "{t:?}");
        let t = terms(Lang::Fr, "livré sans emballage, rapide");
        assert!(t.iter().any(|w| w.starts_with("NOT_emball")), "{t:?}");
        assert!(t.iter().any(|w| w == "rapid"), "{t:?}");
        let t = terms(Lang::Fr, "je ne reçois jamais la facture mais le colis");
        assert!(t.iter().any(|w| w.starts_with("NOT_factur")), "{t:?}");
        assert!(t.iter().any(|w| w == "colis"), "{t:?}");
        // "personne" alone is a person, not "nobody".
        let t = terms(Lang::Fr, "la personne au téléphone était aimable");
        assert!(!t.iter().any(|w| w.starts_with(NEGATED)), "{t:?}");
        let t = terms(Lang::Fr, "je n'ai vu personne au guichet");
        assert!(t.iter().any(|w| w.starts_with("NOT_guich")), "{t:?}");
        let t = terms(Lang::Fr, "aucun problème");
        assert!(t.iter().any(|w| w.starts_with("NOT_problem")), "{t:?}");
        // "plus" alone is "more".
        let t = terms(Lang::Fr, "plus rapide");
        assert!(!t.iter().any(|w| w.starts_with(NEGATED)), "{t:?}");
    }

    /// New verbatims `{prefix}0`, `{prefix}1`… of a file named after the prefix.
    fn verbatims(prefix: &str, texts: &[(&str, &str)]) -> Vec<crate::store::NewVerbatim> {
        texts
            .iter()
            .enumerate()
            .map(|(i, (lang, text))| crate::store::NewVerbatim {
                id: format!("{prefix}{i}"),
                text: crate::pii::redact(text),
                original: None,
                respondent: None,
                ts: None,
                score: None,
                language: lang.to_string(),
                fields: Default::default(),
                source: format!("{prefix}.csv:{}", i + 2),
                content_hash: text.to_string(),
                vector: vec![1.0, 0.0],
            })
            .collect()
    }

    fn store_with(dir: &Path, texts: &[(&str, &str)]) -> Store {
        let mut s = Store::open(&dir.join("s.sqlite")).unwrap();
        let run = s.begin_run("v.csv").unwrap();
        s.upsert_batch(run, &verbatims("v", texts)).unwrap();
        s
    }

    #[test]
    fn query_polarity_must_match_the_indexed_polarity() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(
            dir.path(),
            &[
                ("en", "The package arrived damaged"),
                ("en", "The package was not damaged at all"),
                ("fr", "Le colis n'est pas abîmé"),
                ("fr", "Le colis est abîmé"),
            ],
        );
        let mut ix = TextIndex::open(&dir.path().join("text")).unwrap();
        ix.catch_up(&store).unwrap();
        let docs = |q: &str| -> Vec<i64> {
            let mut d: Vec<i64> = ix
                .search(q, &Filter::default(), 10)
                .unwrap()
                .into_iter()
                .map(|h| h.0)
                .collect();
            d.sort();
            d
        };
        let all = ix.all_docs().unwrap();
        assert_eq!(docs("damaged"), [all[0]]);
        assert_eq!(docs("not damaged"), [all[1]]);
        assert_eq!(docs("abîmé"), [all[3]]);
        assert_eq!(docs("pas abîmé"), [all[2]]);
    }

    /// A doc set holding a large share of the index is answered from an oversampled
    /// unrestricted search — retried deeper when too few of its best hits are in the set — with
    /// exactly the hits of the search restricted to the set: here the set's docs score below
    /// every other (longer texts), so the first depth (50) finds none of them and the retry
    /// (200) finds them all; a set near the top is answered at the first depth.
    #[test]
    fn a_large_doc_set_gets_the_hits_of_the_search_restricted_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let texts: Vec<(&str, String)> = (0..200)
            .map(|i| match i < 140 {
                true => ("en", format!("refund refund late {i}")),
                false => (
                    "en",
                    format!("refund asked twice, the order {i} arrived late and cold"),
                ),
            })
            .collect();
        let rows: Vec<(&str, &str)> = texts.iter().map(|(l, t)| (*l, t.as_str())).collect();
        let store = store_with(dir.path(), &rows);
        let mut ix = TextIndex::open(&dir.path().join("text")).unwrap();
        ix.catch_up(&store).unwrap();
        let all: Vec<i64> = ix
            .run_query("refund", &Filter::default(), None, 200, None)
            .unwrap()
            .into_iter()
            .map(|h| h.0)
            .collect();
        assert_eq!(all.len(), 200);
        for set in [&all[140..], &all[..60]] {
            let set: HashSet<i64> = set.iter().copied().collect();
            let got = ix
                .search_within("refund", &Filter::default(), Some(&set), 10)
                .unwrap();
            let want = ix
                .run_query("refund", &Filter::default(), Some(&set), 10, None)
                .unwrap();
            let ids = |h: &[(i64, f32)]| -> Vec<i64> { h.iter().map(|x| x.0).collect() };
            assert_eq!(got.len(), 10);
            assert_eq!(ids(&got), ids(&want));
            assert!(got.iter().all(|h| set.contains(&h.0)));
        }
    }

    #[test]
    fn an_erasure_rewrites_only_the_segments_that_held_what_it_erased() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_with(
            dir.path(),
            &[("en", "The zorblax kiosk froze"), ("en", "Lovely staff")],
        );
        let path = dir.path().join("text");
        let mut ix = TextIndex::open(&path).unwrap();
        ix.catch_up(&store).unwrap();
        // A second ingest: a second segment.
        let run = store.begin_run("w.csv").unwrap();
        let later = verbatims(
            "w",
            &[("en", "Quick refund, thanks"), ("en", "The app is slow")],
        );
        store.upsert_batch(run, &later).unwrap();
        ix.catch_up(&store).unwrap();
        let before = ix.segments().unwrap();
        assert_eq!(before.len(), 2, "{before:?}");

        store
            .erase(&["v0".into()], None, &[], &Default::default(), false)
            .unwrap();
        ix.catch_up(&store).unwrap();
        assert!(
            ix.holds_term("zorblax").unwrap(),
            "a delete alone hides, keeps the terms"
        );
        assert_eq!(ix.purge_deleted().unwrap(), 1);
        assert!(!ix.holds_term("zorblax").unwrap());
        assert!(ix.holds_term("refund").unwrap() && ix.holds_term("staff").unwrap());
        let after = ix.segments().unwrap();
        assert_eq!(after.len(), 2, "{after:?}");
        // One segment is kept as it was (the second ingest's); the other was rewritten with
        // its one live document.
        let kept: Vec<_> = before.iter().filter(|b| after.contains(b)).collect();
        assert_eq!(kept.len(), 1, "{before:?} -> {after:?}");
        assert!(
            after.iter().any(|(id, n)| *n == 1 && id != &kept[0].0),
            "{after:?}"
        );
        // Nothing deleted: nothing rewritten.
        assert_eq!(ix.purge_deleted().unwrap(), 0);
        assert_eq!(ix.segments().unwrap(), after);
    }

    #[test]
    fn an_index_written_under_an_older_analysis_is_rebuilt_on_catch_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &[("en", "not damaged"), ("en", "damaged")]);
        let path = dir.path().join("text");
        let mut ix = TextIndex::open(&path).unwrap();
        assert_eq!(ix.catch_up(&store).unwrap(), 2);
        // Up to date: nothing to do.
        assert_eq!(TextIndex::open(&path).unwrap().catch_up(&store).unwrap(), 0);
        // Commit again the way a version-1 index did: the sequence only.
        let mut w = ix.writer().unwrap();
        let mut p = w.prepare_commit().unwrap();
        p.set_payload(&serde_json::json!({ "seq": store.seq().unwrap() }).to_string());
        p.commit().unwrap();
        w.wait_merging_threads().unwrap();
        drop(ix);
        let mut ix = TextIndex::open(&path).unwrap();
        assert!(ix.stale());
        assert_eq!(ix.covered(), store.seq().unwrap());
        assert_eq!(ix.catch_up(&store).unwrap(), 2, "rebuilt from the store");
        assert!(!ix.stale());
        assert_eq!(ix.num_docs(), 2);
        let ix = TextIndex::open(&path).unwrap();
        assert!(!ix.stale());
    }
}
