//! The reads: counts, search, originals, respondents, users, the audit trail. Each mints its
//! grant, reads under it and records what it returned before returning it.

use super::{
    incident_report, resolve_filter, stats_for, IncidentReport, SearchResponse, ServiceError,
    ShardStats, Stats, TextCoverage, VectorCoverage,
};
use crate::access::Action;
use crate::access::Grant;
use crate::embed::Embedder;
use crate::index::Indexes;
use crate::retrieve::{self, Mode, Query};
use crate::store::DistinctValues;
use crate::store::{AuditDetail, AuditEntry, Filter, PrincipalRecord};
use crate::workspace::privacy::{self, Revealed};
use crate::workspace::Workspace;

use super::session::*;

impl Session<'_> {
    /// Workspace counts; with shards ([`Session::with_shards`]), the corpus's: counts summed,
    /// distinct respondents and segment values counted over the union, each shard's own in
    /// `shards`.
    pub fn stats(&mut self) -> Result<Stats, ServiceError> {
        let grant = self.enter(Action::Stats)?;
        let shards = self.shards;
        let (ws, indexes) = self.ws_indexes()?;
        let own = shard_stats(&grant, ws, indexes)?;
        let report = if shards.is_empty() {
            Stats {
                workspace: own.workspace,
                store: own.store,
                text_index: own.text_index,
                vector_index: own.vector_index,
                shards: None,
            }
        } else {
            let mut parts = vec![(own, ws.store.distinct_values()?)];
            for s in shards {
                parts.push((
                    shard_stats(&grant, s.ws, s.indexes)?,
                    s.ws.store.distinct_values()?,
                ));
            }
            corpus_stats(&grant, parts)
        };
        self.record(&grant, &AuditDetail::Stats {})?;
        Ok(report)
    }

    /// Hybrid, text or vector search; counts only for an aggregates-only caller.
    pub fn search(&mut self, req: SearchRequest) -> Result<SearchResponse, ServiceError> {
        let grant = self.enter(Action::Search)?;
        if req.text.trim().is_empty() {
            return Err(ServiceError::BadRequest("the query is empty".into()));
        }
        // With shards, the filter is resolved against each workspace (`resolve_shards`).
        let filters = match self.shards {
            [] => Vec::new(),
            _ => self.resolve_shards(&grant, &req.filter)?,
        };
        let filter = match filters.iter().flatten().next() {
            Some(f) => f.clone(),
            None => resolve_filter(self.ws, &grant, &req.filter)?,
        };
        let q = Query {
            filter,
            mode: req.mode.unwrap_or(self.settings.search().mode),
            limit: req.limit.unwrap_or(self.settings.search().limit),
            text: req.text,
            sentiment: req.sentiment,
            // The sentiment head filters by sentiment and ranks by polarity; without one, a
            // plain search still runs, a sentiment-filtered one stops here.
            head: match self.sentiment_head() {
                Ok((h, _)) => Some(h),
                Err(e) if req.sentiment.is_some() => {
                    let what = match self.via.door() {
                        crate::access::Door::Cli => "--sentiment",
                        crate::access::Door::Http => "\"sentiment\"",
                    };
                    return Err(ServiceError::BadRequest(format!(
                        "{what} needs the sentiment model: {e}"
                    )));
                }
                Err(_) => None,
            },
        };
        // Text search works without the model: it is loaded only when the mode needs it, and
        // when it cannot load, the error says why and how to search without it.
        let embedder = match q.mode {
            Mode::Text => None,
            mode => Some(
                self.models
                    .embedder
                    .get(self.ws)
                    .map_err(|why| {
                        let m = retrieve::RetrieveError::NoModel(mode).message_for(self.via.door());
                        ServiceError::BadRequest(format!("{m} ({why})"))
                    })?
                    .as_ref() as &dyn Embedder,
            ),
        };
        let memo = match (embedder, req.query_vector) {
            (Some(e), Some(v)) => Some(crate::embed::Memo::known(e, &q.text, v)),
            _ => None,
        };
        let embedder = match &memo {
            Some(m) => Some(m as &dyn Embedder),
            None => embedder,
        };
        // Copies of one text fold into its best hit (a caller who reads text; aggregates count
        // the plain top `limit`): enough hits are ranked to fill `limit` distinct texts.
        let shown = q.limit;
        let fold = !req.keep_copies && grant.may_read_text();
        type Ranker<'r> = &'r dyn Fn(&Query) -> Result<Vec<retrieve::Hit>, retrieve::RetrieveError>;
        let ranked = |search: Ranker<'_>| match fold {
            false => search(&q),
            true => retrieve::search_folded(shown, |window| {
                let mut wide = q.clone();
                wide.limit = window;
                search(&wide)
            }),
        };
        // Every id shown is recorded: a folded copy's text is the one shown.
        let shown_ids = |hits: &[retrieve::Hit]| -> Vec<String> {
            hits.iter()
                .flat_map(|h| std::iter::once(&h.verbatim.id).chain(&h.copies))
                .cloned()
                .collect()
        };
        let detail = |verbatim_ids: Vec<String>| AuditDetail::Search {
            query: q.text.clone(),
            mode: serde_json::to_value(q.mode)
                .ok()
                .and_then(|m| m.as_str().map(String::from))
                .unwrap_or_default(),
            limit: shown,
            filter: q.filter.clone(),
            scope: grant.scope().clone(),
            verbatim_ids,
        };
        let shards = self.shards;
        let (ws, indexes) = self.ws_indexes()?;
        if !shards.is_empty() {
            let views = std::iter::once((0, &*ws, indexes))
                .chain(shards.iter().map(|s| (s.id, s.ws, s.indexes)));
            let parts: Vec<retrieve::Shard> = views
                .zip(&filters)
                .filter_map(|((id, ws, indexes), f)| {
                    Some(retrieve::Shard {
                        id,
                        store: &ws.store,
                        indexes,
                        filter: Some(f.as_ref()?),
                    })
                })
                .collect();
            let (hits, aggregate) = if grant.may_read_text() {
                let hits = ranked(&|q| retrieve::search_shards(&grant, &parts, embedder, q))?;
                (Some(hits), None)
            } else {
                let agg = retrieve::aggregate_shards(&grant, &parts, embedder, &q)?;
                (None, Some(agg))
            };
            let ids = hits.as_deref().map(shown_ids).unwrap_or_default();
            self.record(&grant, &detail(ids))?;
            return Ok(SearchResponse {
                query: q,
                hits,
                aggregate,
            });
        }
        if grant.may_read_text() {
            let hits = ranked(&|q| retrieve::search(&grant, &ws.store, indexes, embedder, q))?;
            self.record(&grant, &detail(shown_ids(&hits)))?;
            Ok(SearchResponse {
                query: q,
                hits: Some(hits),
                aggregate: None,
            })
        } else {
            let agg = retrieve::aggregate(&grant, &ws.store, indexes, embedder, &q)?;
            self.record(&grant, &detail(Vec::new()))?;
            Ok(SearchResponse {
                query: q,
                hits: None,
                aggregate: Some(agg),
            })
        }
    }

    /// The caller's filter resolved against the door's workspace and each shard, in that
    /// order. A value (or field) that matches nothing in a workspace means none of its
    /// verbatims pass: that workspace is `None` and left out of the search; only when it
    /// matches nothing anywhere is the filter refused (the door's message, naming what exists
    /// there). A theme filter is refused: theme ids are each workspace's own.
    fn resolve_shards(
        &self,
        grant: &Grant,
        filter: &Filter,
    ) -> Result<Vec<Option<Filter>>, ServiceError> {
        let mut out = Vec::new();
        let mut refused = None;
        for ws in std::iter::once(&*self.ws).chain(self.shards.iter().map(|s| s.ws)) {
            match resolve_filter(ws, grant, filter) {
                Ok(f) if f.docs.is_some() => {
                    return Err(ServiceError::BadRequest(
                        "a theme filter does not fan out across shards: theme ids are each \
                         workspace's own"
                            .into(),
                    ))
                }
                Ok(f) => out.push(Some(f)),
                Err(e @ ServiceError::BadRequest(_)) => {
                    refused.get_or_insert(e);
                    out.push(None);
                }
                Err(e) => return Err(e),
            }
        }
        match refused {
            Some(e) if out.iter().all(Option::is_none) => Err(e),
            _ => Ok(out),
        }
    }

    /// One sealed original, logged before it is returned.
    pub fn reveal(&mut self, id: &str) -> Result<Revealed, ServiceError> {
        let grant = self.enter(Action::Reveal)?;
        let missing = || ServiceError::from(privacy::PrivacyError::NotFound(id.to_string()));
        let v = self.ws.store.get(id)?.ok_or_else(missing)?;
        if !grant.restrict(&Filter::default()).matches(&v) {
            return Err(missing());
        }
        self.record(
            &grant,
            &AuditDetail::Reveal {
                verbatim_ids: vec![id.to_string()],
                logged_at: None,
            },
        )?;
        Ok(privacy::reveal(self.ws, &grant, id)?)
    }

    /// The pseudonym of a respondent identifier and their verbatims. The identifier itself is
    /// personal data: the trail keeps its pseudonym.
    pub fn lookup_respondent(
        &mut self,
        identifier: &str,
    ) -> Result<privacy::Respondent, ServiceError> {
        let grant = self.enter(Action::Lookup)?;
        let r = privacy::lookup_respondent(self.ws, identifier)?;
        self.record(
            &grant,
            &AuditDetail::RespondentLookup {
                pseudonym: r.pseudonym.clone(),
                verbatim_ids: r.verbatims.clone(),
            },
        )?;
        Ok(r)
    }

    /// Users and grants.
    pub fn principals(&mut self) -> Result<Vec<PrincipalRecord>, ServiceError> {
        let grant = self.enter(Action::Users)?;
        let all = self.ws.store.principals()?;
        self.record(&grant, &AuditDetail::PrincipalList {})?;
        Ok(all)
    }

    /// Audit entries (oldest first). Reading the trail is itself recorded.
    pub fn audit_entries(&mut self, req: AuditRequest) -> Result<Vec<AuditEntry>, ServiceError> {
        let grant = self.enter(Action::Audit)?;
        let entries: Vec<AuditEntry> = self
            .ws
            .store
            .audit_entries()?
            .into_iter()
            .filter(|e| req.user.as_ref().is_none_or(|u| &e.caller == u))
            .filter(|e| {
                req.since
                    .as_ref()
                    .is_none_or(|s| e.at.as_str() >= s.as_str())
            })
            .collect();
        self.record(
            &grant,
            &AuditDetail::AuditRead {
                user: req.user,
                since: req.since,
            },
        )?;
        Ok(entries)
    }

    /// What one user retrieved since a time ([`IncidentReport`]).
    pub fn incident_report(
        &mut self,
        user: &str,
        since: Option<&str>,
    ) -> Result<IncidentReport, ServiceError> {
        let grant = self.enter(Action::Audit)?;
        let report = incident_report(self.ws, user, since)?;
        self.record(
            &grant,
            &AuditDetail::Incident {
                incident_user: user.to_string(),
                since: since.map(str::to_string),
            },
        )?;
        Ok(report)
    }
}

/// One workspace's counts as `grant` may see them.
fn shard_stats(
    grant: &Grant,
    ws: &Workspace,
    indexes: &Indexes,
) -> Result<ShardStats, ServiceError> {
    Ok(ShardStats {
        workspace: ws.root().to_path_buf(),
        store: stats_for(grant, ws.store.stats()?),
        text_index: TextCoverage {
            documents: indexes.text.num_docs(),
            covered_seq: indexes.text.covered(),
        },
        vector_index: VectorCoverage {
            points: indexes.vectors.points(),
            covered_seq: indexes.vectors.covered(),
        },
    })
}

/// The counts of a corpus served as shards: sums (verbatims, originals, runs, languages,
/// documents, points; sequences too, which only grow), the date range's ends, and the distinct
/// respondents (pseudonyms: the key is the same in every shard) and segment values of the
/// union — not a sum, which would count twice a respondent or a value found in two shards.
fn corpus_stats(grant: &Grant, parts: Vec<(ShardStats, DistinctValues)>) -> Stats {
    let door = parts[0].0.clone();
    let mut store = crate::store::StoreStats {
        model: door.store.model.clone(),
        ..Default::default()
    };
    let (mut text, mut vectors) = (
        TextCoverage {
            documents: 0,
            covered_seq: 0,
        },
        VectorCoverage {
            points: 0,
            covered_seq: 0,
        },
    );
    let mut union = DistinctValues::default();
    let mut languages = std::collections::BTreeMap::new();
    for (p, distinct) in &parts {
        // Unfiltered per-language counts: cells under k are suppressed after the sum.
        for (l, n) in &distinct.languages {
            *languages.entry(l.clone()).or_insert(0) += n;
        }
        let s = &p.store;
        store.verbatims += s.verbatims;
        store.sealed_originals += s.sealed_originals;
        store.runs += s.runs;
        store.seq += s.seq;
        store.first_ts = [store.first_ts, s.first_ts].into_iter().flatten().min();
        store.last_ts = [store.last_ts, s.last_ts].into_iter().flatten().max();
        text.documents += p.text_index.documents;
        text.covered_seq += p.text_index.covered_seq;
        vectors.points += p.vector_index.points;
        vectors.covered_seq += p.vector_index.covered_seq;
        union
            .respondents
            .extend(distinct.respondents.iter().cloned());
        for (f, vs) in &distinct.fields {
            union
                .fields
                .entry(f.clone())
                .or_default()
                .extend(vs.iter().cloned());
        }
    }
    store.respondents = union.respondents.len() as i64;
    store.fields = union
        .fields
        .iter()
        .map(|(f, vs)| (f.clone(), vs.len() as i64))
        .collect();
    store.languages = languages;
    Stats {
        workspace: door.workspace,
        store: stats_for(grant, store),
        text_index: text,
        vector_index: vectors,
        shards: Some(parts.into_iter().map(|(p, _)| p).collect()),
    }
}
