//! `ask`: an answer that cites the verbatims it rests on; its audit entry is durable before the
//! first sentence streams.

use super::{resolve_filter, ServiceError};
use crate::access::Action;
use crate::ask::{Answer, AskOptions};
use crate::store::AuditDetail;
use crate::workspace::Workspace;
use std::sync::Mutex;

use super::session::*;

impl Session<'_> {
    /// The embedding model's name and the languages of its profile (empty when unknown).
    fn model_languages(&self) -> (String, Vec<String>) {
        let Ok(dir) = self.models.dir(self.ws) else {
            return (String::new(), Vec::new());
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let langs = crate::embed::catalog::profile_for(dir)
            .ok()
            .flatten()
            .map(|(_, p)| p.languages)
            .unwrap_or_default();
        (name, langs)
    }

    /// The options of one question: what the request leaves out, the resolved settings say.
    pub(super) fn ask_options(
        &self,
        req: &AskRequest<'_>,
        grant: &crate::access::Grant,
    ) -> Result<AskOptions, ServiceError> {
        // What the request leaves out, the resolved settings say (flags > env > verbatim.toml >
        // defaults), whichever door it came by.
        let cfg = &self.settings.resolved.ask;
        let mut gen = cfg.gen_options();
        gen.max_tokens = req.max_tokens.unwrap_or(gen.max_tokens);
        gen.temperature = req.temperature.unwrap_or(gen.temperature);
        gen.seed = req.seed.unwrap_or(gen.seed);
        Ok(AskOptions {
            filter: resolve_filter(self.ws, grant, &req.filter)?,
            limit: req.limit.unwrap_or(cfg.context_verbatims.value),
            context_tokens: cfg.context_tokens.value,
            gen,
            min_cosine: self.settings.ask.min_cosine,
            count_cosine: self.settings.ask.count_cosine,
            without_generator: req.without_generator.clone(),
            // Unit sentiment of the evidence and comparisons: the lexicon rule alone without a head.
            sentiment: self.sentiment_head().ok().map(|h| h.0),
            model: self.model_languages(),
            ..AskOptions::default()
        })
    }

    /// Answers a question from the verbatims, citing them; the audit entry (the question, the
    /// filter, the verbatims the answer rests on) is durable before the first sentence reaches
    /// `on_sentence`.
    pub fn ask(
        &mut self,
        req: AskRequest<'_>,
        on_sentence: &mut dyn FnMut(&str),
    ) -> Result<Answer, ServiceError> {
        let grant = self.enter(Action::Ask)?;
        if req.question.trim().is_empty() {
            return Err(ServiceError::BadRequest("the question is empty".into()));
        }
        let opts = self.ask_options(&req, &grant)?;
        let embedder = self.models.embedder(self.ws, "ask")?;
        self.ws.store.check_model(embedder.fingerprint())?;
        // Aggregates-only callers get counts: no model reads verbatims for them.
        let generator = if grant.may_read_text() {
            req.generator
        } else {
            None
        };
        let via = self.via.name().to_string();
        let opened;
        let audit: &Mutex<Workspace> = match self.audit {
            Some(a) => a,
            // A second connection for the audit trail: `ask` reads through the first meanwhile.
            None => {
                opened = Mutex::new(Workspace::open(self.ws.root())?);
                &opened
            }
        };
        let ix: &crate::index::Indexes = match &mut self.indexes {
            Ix::Held(ix) => &**ix,
            Ix::Shared(ix) => *ix,
            Ix::CatchUp(_) => return Err(not_for_reads()),
            Ix::Owned(slot) => {
                if slot.is_none() {
                    *slot = Some(self.ws.indexes()?.0);
                }
                slot.as_mut().expect("opened above")
            }
        };
        let ws: &Workspace = self.ws;
        crate::ask::ask(
            &ws.store,
            ix,
            &grant,
            embedder,
            generator,
            &req.question,
            &opts,
            &mut |sources| {
                let detail = AuditDetail::Ask {
                    question: req.question.clone(),
                    filter: opts.filter.clone(),
                    scope: grant.scope().clone(),
                    verbatim_ids: sources.iter().map(|s| s.id.clone()).collect(),
                };
                audit
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .record(&grant, &via, &detail)
                    .map(|_| ())
                    .map_err(|e| format!("audit trail: {e}"))
            },
            on_sentence,
        )
        .map_err(ServiceError::internal)
    }
}
