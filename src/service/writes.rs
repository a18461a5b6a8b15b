//! The writes: ingest (a file or uploaded bytes), reindex, survey links, erasure and export,
//! users and grants, backups. Every one is recorded.

use std::path::Path;

use super::ServiceError;
use crate::access::Action;
use crate::embed::Embedder;
use crate::store::AuditDetail;
use crate::workspace::erase;
use crate::workspace::ingest::{IngestRunError, IngestSummary, Source};
use crate::workspace::prepared::{self, PreparedIngestError, Shard};
use crate::workspace::privacy::{self};
use crate::workspace::WorkspaceError;

use super::session::*;

impl Session<'_> {
    /// Ingests a file or uploaded bytes, catching the indexes up (in place when the door holds
    /// them); recorded with its counts. Errors that tell the user what to give say it in the
    /// door's words ([`IngestRunError::message_for`]).
    pub fn ingest(&mut self, req: IngestRequest<'_>) -> Result<IngestSummary, ServiceError> {
        let grant = self.enter(Action::Write)?;
        let door = self.via.door();
        let embedder = self.models.embedder(self.ws, "ingest")?;
        let progress = self.progress;
        let held = match &mut self.indexes {
            Ix::CatchUp(catch_up) => Err(*catch_up),
            Ix::Held(ix) => Ok(Some(&mut **ix)),
            // Shared indexes are read-only: the ingest opens and catches up its own.
            Ix::Shared(_) => Ok(None),
            Ix::Owned(slot) => Ok(slot.as_mut()),
        };
        let summary = match held {
            Ok(held) => crate::workspace::ingest::ingest_source_into(
                self.ws,
                held,
                embedder,
                req.source,
                &req.options,
                progress,
            ),
            Err(catch_up) => crate::workspace::ingest::ingest_source_then(
                self.ws,
                embedder,
                req.source,
                &req.options,
                progress,
                catch_up,
            ),
        }
        .map_err(|e| {
            let m = e.message_for(door);
            match e {
                IngestRunError::Read(_) | IngestRunError::NoMapping { .. } => {
                    ServiceError::BadRequest(m)
                }
                IngestRunError::Workspace(WorkspaceError::Locked { .. }) => {
                    ServiceError::Conflict(m)
                }
                _ => ServiceError::Internal(m),
            }
        })?;
        let file = match req.source {
            Source::File(p) => p.display().to_string(),
            Source::Bytes { name, .. } => name.to_string(),
        };
        self.record(
            &grant,
            &AuditDetail::Ingest {
                file,
                rows: summary.rows,
                stored: summary.stored,
                updated: summary.updated,
                unchanged: summary.unchanged,
                rejected: summary.rejected,
            },
        )?;
        Ok(summary)
    }

    /// Rebuilds the indexes from the store; with `embedder`, re-embeds the verbatims whose
    /// vectors are not its own, and with `switch_to` (the model's name as given, and its
    /// settings) makes it the workspace's model once the store holds the new vectors.
    pub fn reindex(
        &mut self,
        embedder: Option<&dyn Embedder>,
        switch_to: Option<(String, crate::workspace::ModelConfig)>,
    ) -> Result<crate::workspace::ReindexReport, ServiceError> {
        let grant = self.enter(Action::Write)?;
        // A rebuild reads every row: with a damaged one it would drop that verbatim from both
        // indexes (or, before seals, spread its damage). Refuse, leaving the indexes as they are.
        let damaged = self.ws.store.verify_rows()?;
        if !damaged.is_empty() {
            let list: Vec<String> = damaged.iter().take(5).map(|d| d.to_string()).collect();
            return Err(ServiceError::Conflict(format!(
                "{} damaged row(s) in the store {}: {}{}; not reindexed (the indexes are left as \
                 they were): restore from a backup or re-ingest the damaged verbatims' file, \
                 then reindex (`verbatim check` lists every damaged row)",
                damaged.len(),
                self.ws.store.path().display(),
                list.join("; "),
                if damaged.len() > 5 { "; …" } else { "" }
            )));
        }
        let r = self
            .ws
            .reindex(embedder, self.progress)
            .map_err(|e| ServiceError::Internal(e.message_for(self.via.door())))?;
        let model = switch_to.map(|(name, config)| {
            self.ws.config.model = config;
            name
        });
        if model.is_some() {
            // Only after the store holds the new vectors (reindex commits first).
            self.ws.save_config()?;
        }
        self.record(
            &grant,
            &AuditDetail::Reindex {
                model,
                reembedded: r.reembedded,
                text: r.text,
                vectors: r.vectors,
            },
        )?;
        Ok(r)
    }

    /// Survey links: a token per respondent of `file` (its `id_column`), recorded with counts.
    pub fn make_links(
        &mut self,
        file: &Path,
        format: Option<crate::ingest::Format>,
        id_column: &str,
        base_url: &str,
    ) -> Result<privacy::LinksMade, ServiceError> {
        let grant = self.enter(Action::Write)?;
        let made = privacy::make_links(self.ws, file, format, id_column, base_url)?;
        self.record(
            &grant,
            &AuditDetail::LinksMake {
                file: file.display().to_string(),
                links: made.links.len(),
                errors: made.errors.len(),
            },
        )?;
        Ok(made)
    }

    /// Erases a respondent's verbatims (by their identifier, pseudonymised here and never
    /// stored) or verbatims by id, everywhere they are held; the receipt says what went.
    pub fn forget(&mut self, what: Forget<'_>) -> Result<erase::Receipt, ServiceError> {
        let grant = self.enter(Action::Erase)?;
        match what {
            Forget::Respondent(who) => {
                erase::forget_respondent_with_progress(self.ws, &grant, who, self.progress)
            }
            Forget::Verbatims(ids) => {
                erase::erase_verbatims_with_progress(self.ws, &grant, ids, self.progress)
            }
        }
        .map_err(|e| ServiceError::internal_chain(&e))
    }

    /// Everything held about one respondent (a subject access request), recorded.
    pub fn export_respondent(
        &mut self,
        identifier: &str,
    ) -> Result<erase::SubjectExport, ServiceError> {
        let grant = self.enter(Action::Export)?;
        erase::export_respondent(self.ws, &grant, identifier)
            .map_err(|e| ServiceError::internal_chain(&e))
    }

    /// Applies the workspace's retention period now (`dry_run`: counts only).
    pub fn retention(&mut self, dry_run: bool) -> Result<erase::Receipt, ServiceError> {
        self.enter(Action::Erase)?;
        let now = chrono::Utc::now();
        if dry_run {
            erase::preview_retention(self.ws, now)
        } else {
            erase::apply_retention(self.ws, now)
        }
        .map_err(|e| ServiceError::internal_chain(&e))
    }

    /// Adds a user or grant (`kind`), made by this session's caller; its token is in the
    /// answer, shown once.
    pub fn add_principal(
        &mut self,
        principal: crate::access::Principal,
        kind: &str,
    ) -> Result<crate::workspace::users::NewPrincipal, ServiceError> {
        let grant = self.enter(Action::Users)?;
        let made = self
            .ws
            .add_principal(principal, kind, &self.caller)
            .map_err(|e| ServiceError::internal_chain(&e))?;
        self.record(
            &grant,
            &AuditDetail::PrincipalAdd {
                name: made.record.principal.name.clone(),
                role: made.record.principal.role.as_str().to_string(),
                scope: made.record.principal.scope.clone(),
                expires: made.record.principal.expires,
            },
        )?;
        Ok(made)
    }

    /// Revokes a user or grant; when it was revoked.
    pub fn revoke_principal(&mut self, name: &str) -> Result<String, ServiceError> {
        let grant = self.enter(Action::Users)?;
        let at = self
            .ws
            .revoke_principal(name)
            .map_err(|e| ServiceError::internal_chain(&e))?;
        self.record(
            &grant,
            &AuditDetail::PrincipalRevoke {
                name: name.to_string(),
            },
        )?;
        Ok(at)
    }

    /// An encrypted backup of the whole workspace to `out`; who made it, and where it went, is
    /// in the trail (a backup is a copy of everything).
    pub fn backup(
        &mut self,
        out: &Path,
        key: &crate::backup::KeySource,
        options: &crate::backup::BackupOptions,
    ) -> Result<crate::backup::BackupSummary, ServiceError> {
        let grant = self.enter(Action::Backup)?;
        let s =
            crate::backup::backup_with_progress(self.ws.root(), out, key, options, self.progress)
                .map_err(|e| ServiceError::internal_chain(&e))?;
        self.record(
            &grant,
            &AuditDetail::Backup {
                out: std::path::absolute(&s.out).unwrap_or_else(|_| s.out.clone()),
                files: s.files as u64,
                bytes: s.bytes,
                verbatims: s.verbatims as u64,
            },
        )?;
        Ok(s)
    }

    /// Ingests rows `verbatim prepare` made (a folder of Parquet / Arrow files), or one shard
    /// of them ([`crate::workspace::prepared`]); refused (nothing written) when they were made
    /// with another model, key or schema version. Recorded like an ingest, the folder as file.
    pub fn ingest_prepared(
        &mut self,
        dir: &Path,
        shard: Option<Shard>,
    ) -> Result<IngestSummary, ServiceError> {
        let grant = self.enter(Action::Write)?;
        let embedder = self.models.embedder(self.ws, "ingest")?;
        let progress = self.progress;
        let summary = match &mut self.indexes {
            Ix::CatchUp(catch_up) => {
                prepared::ingest_prepared(self.ws, embedder, dir, shard, progress, catch_up)
            }
            Ix::Held(ix) => {
                prepared::ingest_prepared(self.ws, embedder, dir, shard, progress, |ws| {
                    Ok(ix.refresh(&ws.store)?)
                })
            }
            Ix::Owned(Some(ix)) => {
                prepared::ingest_prepared(self.ws, embedder, dir, shard, progress, |ws| {
                    Ok(ix.refresh(&ws.store)?)
                })
            }
            Ix::Shared(_) | Ix::Owned(None) => {
                prepared::ingest_prepared(self.ws, embedder, dir, shard, progress, |ws| {
                    Ok(ws.indexes()?.1)
                })
            }
        }
        .map_err(|e| match e {
            PreparedIngestError::Refused { .. } | PreparedIngestError::BadRow { .. } => {
                ServiceError::BadRequest(e.to_string())
            }
            PreparedIngestError::Workspace(WorkspaceError::Locked { .. }) => {
                ServiceError::Conflict(e.to_string())
            }
            e => ServiceError::internal_chain(&e),
        })?;
        self.record(
            &grant,
            &AuditDetail::Ingest {
                file: dir.display().to_string(),
                rows: summary.rows,
                stored: summary.stored,
                updated: summary.updated,
                unchanged: summary.unchanged,
                rejected: summary.rejected,
            },
        )?;
        Ok(summary)
    }

    /// Writes the keys `verbatim prepare` needs (respondent pseudonyms, ids, content hashes)
    /// to `out` — never the seal, audit or row keys — and returns their key id. A legacy (v1)
    /// key file has one key for every purpose: exporting it gives the audit and row keys away,
    /// so it is refused unless `allow_legacy`. An owner's act (the same role as a backup, which
    /// carries the whole key file); recorded.
    pub fn export_prepare_key(
        &mut self,
        out: &Path,
        allow_legacy: bool,
    ) -> Result<String, ServiceError> {
        let grant = self.enter(Action::Backup)?;
        let vault = &self.ws.vault;
        if vault.is_legacy() && !allow_legacy {
            return Err(ServiceError::BadRequest(format!(
                "{}: this workspace's key file is version 1, where one key makes pseudonyms, \
                 content hashes, audit macs and row seals: exporting it for prepare gives those \
                 away too. Pass --allow-legacy-key to export it anyway (sealed originals stay \
                 closed: the seal key is never exported)",
                self.ws.root().join(crate::pii::vault::KEY_FILE).display()
            )));
        }
        vault
            .hash_keys()
            .write_export(out)
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let key_id = vault.hash_keys().key_id();
        self.record(
            &grant,
            &AuditDetail::KeyExport {
                purpose: "prepare".into(),
                out: std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf()),
                key_id: key_id.clone(),
            },
        )?;
        Ok(key_id)
    }
}
