//! Themes and reports: the run (made or found, the model loaded only when sentences need it),
//! the sentiment head, summaries under the grant's limits, report parameters, theme edits.

use super::{resolve_filter, ServiceError};
use crate::access::Action;
use crate::sentiment::SentimentHead;
use crate::store::{AuditDetail, StoredTheme};
use crate::themes::analytics::{
    build_report, run_fingerprint, summarize, theme_edits, ReportParameters, SummaryOptions,
};
use crate::themes::run::RunData;
use std::sync::Arc;

use super::session::*;

impl<'a> Session<'a> {
    /// The sentiment head of the workspace's model, and the sha256 of its file (loaded once
    /// per [`Models`]).
    pub(super) fn sentiment_head(&self) -> Result<(Arc<SentimentHead>, String), ServiceError> {
        self.models.sentiment_head(self.ws)
    }

    /// [`Self::sentiment_head`] for the aspect tree (`service::aspects`).
    pub(super) fn sentiment_head_pub(&self) -> Result<Arc<SentimentHead>, ServiceError> {
        Ok(self.sentiment_head()?.0)
    }

    /// The verbatims of an aspect-tree run, their opinion units embedded first when some are
    /// missing (the model is loaded only then). The topic run is left as it is.
    pub(super) fn tree_docs(&mut self) -> Result<Vec<crate::store::Verbatim>, ServiceError> {
        let ids = self.ws.store.all_docs()?;
        let embedder = self.embedder_if(!self.ws.store.docs_without_units(&ids)?.is_empty())?;
        let _lock = self.ws.lock()?;
        crate::themes::run::tree_docs(&mut self.ws.store, embedder, self.progress)
            .map_err(ServiceError::internal)
    }

    /// The workspace's embedding model when `needed` (checked against the store), else none:
    /// a large model file is not read when nothing is left to embed.
    fn embedder_if(
        &self,
        needed: bool,
    ) -> Result<Option<&'a dyn crate::embed::Embedder>, ServiceError> {
        if !needed {
            return Ok(None);
        }
        let e = self.models.embedder(self.ws, "a themes run")?;
        self.ws.store.check_model(e.fingerprint())?;
        Ok(Some(e))
    }

    /// The themes run (loaded, or computed when the store changed or `refresh` asks). The
    /// model is loaded only when some verbatim still needs its sentences or its opinion units
    /// embedded (a large model file is not read on every `themes`).
    fn run_themes(&mut self, run: &RunRequest) -> Result<RunData, ServiceError> {
        let docs = self.ws.store.all_docs()?;
        let embedder = self.embedder_if(
            !(self.ws.store.docs_without_sentences(&docs)?.is_empty()
                && self.ws.store.docs_without_units(&docs)?.is_empty()),
        )?;
        let _lock = self.ws.lock()?;
        crate::themes::run::ensure(
            &mut self.ws.store,
            &run.params,
            run.refresh,
            embedder,
            self.progress,
        )
        .map_err(ServiceError::internal)
    }

    /// The theme list (quotes only when the grant allows text; cells under its k suppressed).
    pub fn themes(&mut self, req: ThemesRequest) -> Result<ThemesResponse, ServiceError> {
        let grant = self.enter(Action::Themes)?;
        // Resolved before the run: a mistyped field or value fails at once.
        let filter = resolve_filter(self.ws, &grant, &req.filter)?;
        let head = self.sentiment_head()?;
        let run = self.run_themes(&req.run)?;
        let min_size = req
            .min_size
            .unwrap_or(if filter.is_empty() { 1 } else { 10 });
        let opts = SummaryOptions::for_grant(&grant, &filter, req.quotes, min_size);
        let summary = summarize(&run, &head.0, &opts);
        self.record(
            &grant,
            &AuditDetail::Themes {
                theme: None,
                filter: opts.filter.clone(),
                quotes: opts.quotes,
                min_cell: opts.min_cell,
                theme_ids: summary.themes.iter().map(|t| t.id.clone()).collect(),
                verbatim_ids: summary
                    .themes
                    .iter()
                    .flat_map(|t| t.quotes.iter().map(|q| q.id.clone()))
                    .collect(),
            },
        )?;
        Ok(ThemesResponse { summary, run })
    }

    /// One theme; `theme: None` when it is not active or has no verbatims in scope (or fewer
    /// than the grant's k). A malformed id is a [`ServiceError::BadRequest`].
    pub fn theme(&mut self, req: ThemeRequest) -> Result<ThemeResponse, ServiceError> {
        let grant = self.enter(Action::Themes)?;
        let id = crate::themes::run::parse_theme_id(&req.id)
            .map(crate::themes::run::theme_id)
            .ok_or_else(|| {
                ServiceError::BadRequest(format!("{:?} is not a theme id (T1, T2…)", req.id))
            })?;
        let filter = resolve_filter(self.ws, &grant, &req.filter)?;
        let head = self.sentiment_head()?;
        let run = self.run_themes(&req.run)?;
        let opts = SummaryOptions::for_grant(&grant, &filter, req.quotes, 0);
        let s = summarize(&run, &head.0, &opts);
        let min_cell = grant.min_cell();
        let Some(t) = s.themes.into_iter().find(|t| t.id == id) else {
            return Ok(ThemeResponse {
                theme: None,
                run,
                min_cell,
            });
        };
        self.record(
            &grant,
            &AuditDetail::Themes {
                theme: Some(t.id.clone()),
                filter: opts.filter.clone(),
                quotes: opts.quotes,
                min_cell: opts.min_cell,
                theme_ids: vec![t.id.clone()],
                verbatim_ids: t.quotes.iter().map(|q| q.id.clone()).collect(),
            },
        )?;
        Ok(ThemeResponse {
            theme: Some(t),
            run,
            min_cell,
        })
    }

    /// A report (same limits as [`Session::themes`]); the door renders it.
    pub fn report(&mut self, req: ReportRequest<'_>) -> Result<ReportResponse, ServiceError> {
        if req.tree {
            return self.tree_report(req);
        }
        let grant = self.enter(Action::Report)?;
        // Resolved before the run (a typo fails at once), and recorded resolved.
        let filter = resolve_filter(self.ws, &grant, &req.filter)?;
        let head = self.sentiment_head()?;
        let model = self.ws.store.model_fingerprint()?.unwrap_or_default();
        let run = self.run_themes(&req.run)?;
        let parameters = ReportParameters {
            run: req.run.params.clone(),
            filter: grant.restrict(&filter),
            quotes: if grant.may_read_text() { req.quotes } else { 0 },
            min_cell: grant.min_cell(),
            title: req.title.clone(),
            compare_to: req.compare_to.as_ref().map(|(_, p)| p.clone()),
            theme_edits: theme_edits(&run.themes),
            theme_run: run_fingerprint(&run),
            route: match &self.via {
                Via::Http(route) => Some(route.clone()),
                Via::Cli(_) => None,
            },
            by: None,
        };
        let opts = SummaryOptions::for_grant(&grant, &filter, req.quotes, 1);
        let mut report = build_report(
            &run,
            &opts,
            crate::themes::analytics::ReportInputs {
                title: req.title,
                model,
                head: (&*head.0, head.1.clone()),
                parameters: serde_json::to_value(&parameters).map_err(ServiceError::internal)?,
                compare_to: req.compare_to.map(|(r, _)| r),
            },
        );
        // Scores read through a score map mean what the map says: the manifest records it.
        report.manifest.score_map = self
            .ws
            .config
            .mapping
            .as_ref()
            .and_then(|m| m.score_map.clone());
        // `out` (absolute) lets `forget` find the reports that quote erased verbatims; it is
        // not in the report itself, whose bytes depend on the data and settings only.
        let out = req.out.map(|p| std::path::absolute(&p).unwrap_or(p));
        let detail = AuditDetail::Report {
            filter: opts.filter.clone(),
            quotes: opts.quotes,
            min_cell: opts.min_cell,
            parameters: serde_json::to_value(&parameters).map_err(ServiceError::internal)?,
            out,
            theme_ids: report.themes.iter().map(|t| t.id.clone()).collect(),
            verbatim_ids: report
                .themes
                .iter()
                .flat_map(|t| t.quotes.iter().map(|q| q.id.clone()))
                .collect(),
        };
        self.record(&grant, &detail)?;
        Ok(ReportResponse { report, parameters })
    }

    /// Every verbatim's theme assignment: the run, after the audit entry (the ids are not
    /// listed: one per verbatim). The door writes the lines.
    pub fn assignments(&mut self, req: AssignmentsRequest) -> Result<RunData, ServiceError> {
        let grant = self.enter(Action::Assignments)?;
        let run = self.run_themes(&req.run)?;
        self.record(
            &grant,
            &AuditDetail::Assignments {
                out: req.out,
                verbatims: run.docs.len(),
            },
        )?;
        Ok(run)
    }

    /// The current themes (every state), for a door preparing an edit.
    pub fn stored_themes(&self) -> Result<Vec<StoredTheme>, ServiceError> {
        self.enter(Action::EditThemes)?;
        Ok(self.ws.store.themes()?)
    }

    /// Embeds seed examples for `themes seed` (the model is loaded now).
    pub fn embed_examples(&self, examples: &[&str]) -> Result<Vec<Vec<f32>>, ServiceError> {
        self.enter(Action::EditThemes)?;
        let e = self.models.embedder(self.ws, "themes seed")?;
        self.ws.store.check_model(e.fingerprint())?;
        e.embed(examples, crate::embed::TextKind::Passage)
            .map_err(ServiceError::internal)
    }

    /// A theme edit (merge, rename, seed): `edit` turns the current theme list into the new
    /// one and says what the audit trail records; written and recorded together.
    pub fn edit_themes(
        &mut self,
        edit: impl FnOnce(Vec<StoredTheme>) -> Result<ThemeEdit, ServiceError>,
    ) -> Result<AuditDetail, ServiceError> {
        let grant = self.enter(Action::EditThemes)?;
        let _lock = self.ws.lock()?;
        let ThemeEdit { detail, themes } = edit(self.ws.store.themes()?)?;
        self.ws.store.edit_themes(|t| *t = themes)?;
        self.record(&grant, &detail)?;
        Ok(detail)
    }
}
