//! The reads: counts, search, originals, respondents, users, the audit trail. Each mints its
//! grant, reads under it and records what it returned before returning it.

use super::{
    incident_report, resolve_filter, stats_for, IncidentReport, SearchResponse, ServiceError,
    Stats, TextCoverage, VectorCoverage,
};
use crate::access::Action;
use crate::embed::Embedder;
use crate::retrieve::{self, Mode, Query};
use crate::store::{AuditDetail, AuditEntry, Filter, PrincipalRecord};
use crate::workspace::privacy::{self, Revealed};

use super::session::*;

impl Session<'_> {
    /// Workspace counts.
    pub fn stats(&mut self) -> Result<Stats, ServiceError> {
        let grant = self.enter(Action::Stats)?;
        let (ws, indexes) = self.ws_indexes()?;
        let report = Stats {
            workspace: ws.root().to_path_buf(),
            store: stats_for(&grant, ws.store.stats()?),
            text_index: TextCoverage {
                documents: indexes.text.num_docs(),
                covered_seq: indexes.text.covered(),
            },
            vector_index: VectorCoverage {
                points: indexes.vectors.points(),
                covered_seq: indexes.vectors.covered(),
            },
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
        let q = Query {
            filter: resolve_filter(self.ws, &grant, &req.filter)?,
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
        let detail = |verbatim_ids: Vec<String>| AuditDetail::Search {
            query: q.text.clone(),
            mode: serde_json::to_value(q.mode)
                .ok()
                .and_then(|m| m.as_str().map(String::from))
                .unwrap_or_default(),
            limit: q.limit,
            filter: q.filter.clone(),
            scope: grant.scope().clone(),
            verbatim_ids,
        };
        let (ws, indexes) = self.ws_indexes()?;
        if grant.may_read_text() {
            let hits = retrieve::search(&grant, &ws.store, indexes, embedder, &q)?;
            let ids: Vec<String> = hits.iter().map(|h| h.verbatim.id.clone()).collect();
            self.record(&grant, &detail(ids))?;
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
