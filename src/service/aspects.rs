//! The aspect tree through the session (issue 14): the tree, one node with its units, one row
//! per unit for export, and edits at both levels (rename, merge, move a child). Both doors call
//! these; the tree itself is `themes::aspect`.

use serde::Serialize;

use super::{resolve_filter, ServiceError};
use crate::access::Action;
use crate::store::{AspectNode, AuditDetail, Filter, ThemeState};
use crate::themes::aspect::{self, node_id, parse_node_id, AspectRun, NodeSummary};
use crate::themes::Polarity;

use super::session::*;

/// `themes` by aspect.
#[derive(Clone, Debug, Default)]
pub struct TreeRequest {
    /// The caller's filter.
    pub filter: Filter,
    /// The run (`refresh` rebuilds the tree too).
    pub run: RunRequest,
}

/// What `themes` by aspect answers.
pub struct TreeResponse {
    /// The tree in the caller's scope (shares of verbatims; cells under k left out).
    pub summary: aspect::TreeSummary,
    /// The tree as stored (every node, every state).
    pub tree: AspectRun,
}

/// One unit of a node, as `themes show` lists it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UnitRow {
    /// The verbatim's id.
    pub id: String,
    /// First byte of the unit in the verbatim's (redacted) text.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// positive / neutral / negative.
    pub sentiment: Polarity,
    /// Score in [−1, 1], to 4 decimals.
    pub score: f64,
    /// The unit's text (`text[start..end]`); absent for aggregates-only callers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `themes show P3|C12` by aspect.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct NodeResponse {
    /// The node in scope.
    pub node: NodeSummary,
    /// Its units in scope (empty for aggregates-only callers).
    pub units: Vec<UnitRow>,
}

/// One row of `themes assignments` by aspect: one per unit.
#[derive(Clone, Debug, Serialize)]
pub struct AssignmentRow {
    /// The verbatim's id.
    pub id: String,
    /// First byte of the unit.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// The unit's child (`C<n>`), or null for other.
    pub theme: Option<String>,
    /// The unit's parent (`P<n>`), or null for other.
    pub parent: Option<String>,
    /// positive / neutral / negative.
    pub sentiment: Polarity,
    /// Score in [−1, 1], to 4 decimals.
    pub score: f64,
}

/// An edit of the tree.
#[derive(Clone, Debug)]
pub enum TreeEdit {
    /// A label of the user's own for a parent or child.
    Rename {
        /// `P<n>` or `C<n>`.
        id: String,
        /// The label.
        label: String,
    },
    /// Nodes of one level merged into the first.
    Merge {
        /// The node that stays.
        into: String,
        /// Nodes merged into it (same level).
        others: Vec<String>,
        /// Its new label, if given.
        label: Option<String>,
    },
    /// A child seeded from example phrases (`themes seed`): a fixed centroid that the units
    /// nearest it join at every run, under the parent they fall in (or `parent`).
    Seed {
        /// Its label.
        label: String,
        /// Example phrases (redacted here before they are embedded or stored).
        examples: Vec<String>,
        /// The parent to put it under (`P<n>`); `None`: where its units fall.
        parent: Option<String>,
    },
    /// A child moved to another parent.
    Move {
        /// The child (`C<n>`).
        child: String,
        /// The parent (`P<n>`).
        to: String,
    },
}

/// `themes export-model`.
#[derive(Clone, Debug, Default)]
pub struct ExportModelRequest {
    /// Discover on this uniform sample of the verbatims (none: on all).
    pub sample: Option<crate::themes::model::Sample>,
    /// Where the caller writes it (for the audit trail).
    pub out: Option<std::path::PathBuf>,
}

/// What `themes export-model` answers.
pub struct ExportModelResponse {
    /// The model (the caller writes `model.to_json()`).
    pub model: crate::themes::model::ThemeModel,
    /// Verbatims in the workspace (with units).
    pub verbatims: usize,
}

/// What `themes import` answers.
#[derive(Clone, Debug, Serialize)]
pub struct ImportModelResponse {
    /// The model's digest.
    pub digest: String,
    /// False when this model was already the workspace's and its tree current: nothing changed.
    pub changed: bool,
    /// Parents and children of the model.
    pub parents: usize,
    /// Children of the model.
    pub children: usize,
    /// Units placed, and how many of them in "other".
    pub units: usize,
    /// Units in no child.
    pub other: usize,
    /// Verbatims with a unit in the tree.
    pub verbatims: usize,
}

/// The active node `s` names at the level asked (`parent`: Some(true) / Some(false) / None: any).
fn active<'a>(
    nodes: &'a [AspectNode],
    s: &str,
    parent: Option<bool>,
) -> Result<&'a AspectNode, ServiceError> {
    let (is_parent, n) = parse_node_id(s).ok_or_else(|| {
        ServiceError::BadRequest(format!(
            "{s:?} is not a tree node id (a parent P3 or a child C12)"
        ))
    })?;
    if let Some(want) = parent {
        if want != is_parent {
            return Err(ServiceError::BadRequest(format!(
                "{s} is a {}; a {} is wanted here",
                if is_parent { "parent" } else { "child" },
                if want {
                    "parent (P…)"
                } else {
                    "child (C…)"
                }
            )));
        }
    }
    let node = nodes
        .iter()
        .find(|x| x.id == n && x.is_parent == is_parent)
        .ok_or_else(|| {
            ServiceError::NotFound(format!("no tree node {s}; `verbatim themes` lists them"))
        })?;
    if node.state != ThemeState::Active {
        let how = match (node.state, node.merged_into) {
            (ThemeState::Merged, Some(into)) => {
                format!("merged into {}{into}", if is_parent { 'P' } else { 'C' })
            }
            _ => "vanished in the last run".into(),
        };
        return Err(ServiceError::NotFound(format!("{s} is {how}")));
    }
    Ok(node)
}

impl Session<'_> {
    /// A theme model of this workspace's tree (`themes export-model`): discovered afresh on all
    /// verbatims or on a uniform sample (ids matched to the stored tree's, edits applied), the
    /// workspace left as it was. Labels and centroids only; `EditThemes` (the model is the
    /// whole workspace's, so a scoped grant is refused).
    pub fn export_theme_model(
        &mut self,
        req: ExportModelRequest,
    ) -> Result<ExportModelResponse, ServiceError> {
        let grant = self.enter(Action::EditThemes)?;
        if !grant.scope().is_empty() {
            return Err(ServiceError::Denied(
                "a theme model describes the whole workspace: a grant limited to a scope cannot export one".into(),
            ));
        }
        let head = self.sentiment_head_pub()?;
        let docs = self.tree_docs()?;
        let fingerprint = self.ws.store.model_fingerprint()?.unwrap_or_default();
        let (model, _) = {
            let _lock = self.ws.lock()?;
            let ids: Vec<i64> = docs.iter().map(|d| d.doc).collect();
            let stored = self.ws.store.units_of(&ids)?;
            let previous = self.ws.store.aspect_nodes()?;
            aspect::discover_model(&docs, &stored, &previous, &head, &fingerprint, req.sample)
                .map_err(|e| match e {
                    aspect::AspectError::Model(m) => ServiceError::Conflict(m),
                    e => ServiceError::internal(e),
                })?
        };
        self.record(
            &grant,
            &AuditDetail::ThemeModelExport {
                out: req.out.clone(),
                sample: req.sample.map(|s| (s.size, s.seed)),
                digest: model.digest(),
                theme_ids: model_ids(&model),
            },
        )?;
        Ok(ExportModelResponse {
            model,
            verbatims: docs.len(),
        })
    }

    /// Makes `model` this workspace's tree (`themes import`): stored, then every unit assigned
    /// with it (units embedded first when missing), sizes counted from this workspace's rows;
    /// later runs assign with it too. The same model twice changes nothing. `file`: its name,
    /// for the audit trail.
    pub fn import_theme_model(
        &mut self,
        model: crate::themes::model::ThemeModel,
        file: &str,
    ) -> Result<ImportModelResponse, ServiceError> {
        let grant = self.enter(Action::EditThemes)?;
        if !grant.scope().is_empty() {
            return Err(ServiceError::Denied(
                "a theme model sets the whole workspace's tree: a grant limited to a scope cannot import one".into(),
            ));
        }
        let fingerprint = self.ws.store.model_fingerprint()?.unwrap_or_default();
        if model.model != fingerprint {
            return Err(ServiceError::BadRequest(format!(
                "{file}: field model: the theme model was made with embedding model {}, this workspace holds {}",
                model.model, fingerprint
            )));
        }
        // The file's checks (format, version pair, every index and length), whoever built
        // the value: `ThemeModel::from_json` ran them on a file, an API caller may not have.
        model
            .assigner(file)
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let digest = model.digest();
        let head = self.sentiment_head_pub()?;
        let docs = self.tree_docs()?;
        let same = aspect::imported_model(&self.ws.store)
            .map_err(ServiceError::internal)?
            .is_some_and(|m| m.digest() == digest);
        let tree = {
            let _lock = self.ws.lock()?;
            if !same {
                self.ws
                    .store
                    .set_meta(aspect::MODEL_KEY, &model.to_json())?;
            }
            let sampling = self.ws.config.themes.sampling();
            aspect::ensure(
                &mut self.ws.store,
                &docs,
                &head,
                false,
                &sampling,
                self.progress,
            )
            .map_err(ServiceError::internal)?
        };
        self.record(
            &grant,
            &AuditDetail::ThemeModelImport {
                file: file.to_string(),
                digest: digest.clone(),
                theme_ids: model_ids(&model),
            },
        )?;
        let in_tree: std::collections::BTreeSet<i64> = tree
            .units
            .iter()
            .filter(|u| u.child.is_some())
            .map(|u| u.doc)
            .collect();
        Ok(ImportModelResponse {
            digest,
            changed: tree.ran,
            parents: model.nodes.iter().filter(|n| n.is_parent).count(),
            children: model.nodes.iter().filter(|n| !n.is_parent).count(),
            units: tree.units.len(),
            other: tree.units.iter().filter(|u| u.child.is_none()).count(),
            verbatims: in_tree.len(),
        })
    }

    /// The tree run (units embedded when missing, tree rebuilt when the store changed).
    fn tree_run(
        &mut self,
        run: &RunRequest,
    ) -> Result<
        (
            AspectRun,
            Vec<crate::store::Verbatim>,
            std::sync::Arc<crate::sentiment::SentimentHead>,
        ),
        ServiceError,
    > {
        let head = self.sentiment_head_pub()?;
        let docs = self.tree_docs()?;
        let _lock = self.ws.lock()?;
        let sampling = self.ws.config.themes.sampling();
        let tree = aspect::ensure(
            &mut self.ws.store,
            &docs,
            &head,
            run.refresh,
            &sampling,
            self.progress,
        )
        .map_err(ServiceError::internal)?;
        Ok((tree, docs, head))
    }

    /// The aspect tree in the caller's scope: parents with their children, shares of
    /// verbatims, % negative, trend; nodes under the grant's k left out.
    pub fn tree(&mut self, req: TreeRequest) -> Result<TreeResponse, ServiceError> {
        let grant = self.enter(Action::Themes)?;
        let filter = grant.restrict(&resolve_filter(self.ws, &grant, &req.filter)?);
        let mut steps = crate::progress::Steps::start();
        let (tree, docs, head) = self.tree_run(&req.run)?;
        steps.done(format_args!("aspects: run ready"));
        let mut summary = aspect::summarize(&tree, &docs, &head, &filter, grant.min_cell());
        steps.done(format_args!("aspects: summarized"));
        summary.discovered_on = aspect::stored_sample(&self.ws.store)?;
        self.record(
            &grant,
            &AuditDetail::Themes {
                theme: None,
                filter: filter.clone(),
                quotes: 0,
                min_cell: grant.min_cell(),
                theme_ids: summary
                    .parents
                    .iter()
                    .flat_map(|p| {
                        std::iter::once(p.id.clone()).chain(p.children.iter().map(|c| c.id.clone()))
                    })
                    .collect(),
                verbatim_ids: Vec::new(),
            },
        )?;
        Ok(TreeResponse { summary, tree })
    }

    /// One node (parent or child) and its units in scope, each with its verbatim id, span,
    /// sentiment and text (text only for callers who may read it).
    pub fn tree_node(&mut self, id: &str, filter: &Filter) -> Result<NodeResponse, ServiceError> {
        let grant = self.enter(Action::Themes)?;
        let filter = grant.restrict(&resolve_filter(self.ws, &grant, filter)?);
        let (tree, docs, head) = self.tree_run(&RunRequest::default())?;
        let node = active(&tree.nodes, id, None)?.clone();
        let summary = aspect::summarize(&tree, &docs, &head, &filter, grant.min_cell());
        let shown = node_id(&node);
        let found = summary
            .parents
            .iter()
            .flat_map(|p| std::iter::once(p).chain(p.children.iter()))
            .find(|n| n.id == shown)
            .cloned();
        let Some(mut found) = found else {
            return Err(ServiceError::NotFound(format!(
                "{shown} has no verbatims in this filter{}",
                if grant.min_cell() > 0 {
                    " (or fewer than k: suppressed)"
                } else {
                    ""
                }
            )));
        };
        found.children.clear();
        let by_doc: std::collections::HashMap<i64, &crate::store::Verbatim> = docs
            .iter()
            .filter(|d| filter.matches(d))
            .map(|d| (d.doc, d))
            .collect();
        let units: Vec<UnitRow> = if grant.may_read_text() {
            tree.units
                .iter()
                .filter(|u| (if node.is_parent { u.parent } else { u.child }) == Some(node.id))
                .filter_map(|u| {
                    let d = by_doc.get(&u.doc)?;
                    Some(UnitRow {
                        id: d.id.clone(),
                        start: u.start,
                        end: u.end,
                        sentiment: head.polarity(u.score),
                        score: round4(u.score),
                        text: d.text.get(u.start..u.end).map(str::to_string),
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        self.record(
            &grant,
            &AuditDetail::Themes {
                theme: Some(shown.clone()),
                filter: filter.clone(),
                quotes: units.len(),
                min_cell: grant.min_cell(),
                theme_ids: vec![shown],
                verbatim_ids: {
                    let mut v: Vec<String> = units.iter().map(|u| u.id.clone()).collect();
                    v.dedup();
                    v
                },
            },
        )?;
        Ok(NodeResponse { node: found, units })
    }

    /// One row per unit (its verbatim, span, child, parent, sentiment), recorded as an
    /// assignments export.
    pub fn tree_assignments(
        &mut self,
        out: Option<std::path::PathBuf>,
    ) -> Result<Vec<AssignmentRow>, ServiceError> {
        let grant = self.enter(Action::Assignments)?;
        let (tree, docs, head) = self.tree_run(&RunRequest::default())?;
        let ids: std::collections::HashMap<i64, &str> =
            docs.iter().map(|d| (d.doc, d.id.as_str())).collect();
        let rows: Vec<AssignmentRow> = tree
            .units
            .iter()
            .filter_map(|u| {
                Some(AssignmentRow {
                    id: ids.get(&u.doc)?.to_string(),
                    start: u.start,
                    end: u.end,
                    theme: u.child.map(|c| format!("C{c}")),
                    parent: u.parent.map(|p| format!("P{p}")),
                    sentiment: head.polarity(u.score),
                    score: round4(u.score),
                })
            })
            .collect();
        self.record(
            &grant,
            &AuditDetail::Assignments {
                out,
                verbatims: docs.len(),
            },
        )?;
        Ok(rows)
    }

    /// An edit of the tree (rename, merge, move), kept on the nodes and re-applied by every
    /// later run; recorded in the trail.
    pub fn edit_tree(&mut self, edit: TreeEdit) -> Result<AuditDetail, ServiceError> {
        let grant = self.enter(Action::EditThemes)?;
        // A seed's examples are embedded before the lock (loading the model takes a while).
        let seed_vector = match &edit {
            TreeEdit::Seed { examples, .. } => Some(self.seed_vector(examples)?),
            _ => None,
        };
        let _lock = self.ws.lock()?;
        let mut nodes = self.ws.store.aspect_nodes()?;
        let detail = match &edit {
            TreeEdit::Rename { id, label } => {
                let n = active(&nodes, id, None)?.id;
                let label = label.trim().to_string();
                if label.is_empty() {
                    return Err(ServiceError::BadRequest("the label is empty".into()));
                }
                for x in nodes.iter_mut().filter(|x| x.id == n) {
                    x.user_label = Some(label.clone());
                }
                AuditDetail::ThemeRename {
                    label,
                    theme_ids: vec![id.trim().to_uppercase()],
                }
            }
            TreeEdit::Merge {
                into,
                others,
                label,
            } => {
                let keep = active(&nodes, into, None)?.clone();
                let mut merged = Vec::new();
                for o in others {
                    let n = active(&nodes, o, Some(keep.is_parent))?.id;
                    if n == keep.id {
                        return Err(ServiceError::BadRequest(format!(
                            "{o} is the node merged into"
                        )));
                    }
                    merged.push(n);
                }
                for x in nodes.iter_mut() {
                    if merged.contains(&x.id) {
                        x.state = ThemeState::Merged;
                        x.merged_into = Some(keep.id);
                    }
                    // Children of a merged parent now belong to the kept one.
                    if keep.is_parent && x.parent.is_some_and(|p| merged.contains(&p)) {
                        x.parent = Some(keep.id);
                    }
                    if x.id == keep.id {
                        if let Some(l) = label {
                            x.user_label = Some(l.trim().to_string());
                        }
                    }
                }
                AuditDetail::ThemeMerge {
                    into: node_id(&keep),
                    label: label.clone(),
                    theme_ids: std::iter::once(node_id(&keep))
                        .chain(others.iter().map(|o| o.trim().to_uppercase()))
                        .collect(),
                }
            }
            TreeEdit::Seed {
                label,
                examples,
                parent,
            } => {
                let label = label.trim().to_string();
                if label.is_empty() {
                    return Err(ServiceError::BadRequest("the label is empty".into()));
                }
                let parent = match parent {
                    Some(p) => Some(active(&nodes, p, Some(true))?.id),
                    None => None,
                };
                let (red, centroid) = seed_vector.expect("embedded above");
                let id = nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
                nodes.push(AspectNode {
                    id,
                    is_parent: false,
                    parent,
                    user_parent: parent,
                    label: label.clone(),
                    user_label: Some(label.clone()),
                    centroid,
                    units: 0,
                    verbatims: 0,
                    merged_into: None,
                    state: ThemeState::Active,
                    seed: Some(red),
                });
                AuditDetail::ThemeSeed {
                    label,
                    examples: examples.len(),
                    theme_ids: std::iter::once(format!("C{id}"))
                        .chain(parent.map(|p| format!("P{p}")))
                        .collect(),
                }
            }
            TreeEdit::Move { child, to } => {
                let c = active(&nodes, child, Some(false))?.id;
                let p = active(&nodes, to, Some(true))?.id;
                for x in nodes.iter_mut().filter(|x| x.id == c) {
                    x.user_parent = Some(p);
                    x.parent = Some(p);
                }
                AuditDetail::ThemeMove {
                    child: format!("C{c}"),
                    to: format!("P{p}"),
                    theme_ids: vec![format!("C{c}"), format!("P{p}")],
                }
            }
        };
        self.ws.store.edit_aspects(|n| *n = nodes)?;
        self.record(&grant, &detail)?;
        Ok(detail)
    }
}

impl Session<'_> {
    /// The report on the aspect tree (`report`, `POST /v1/report`, by aspect): parents with
    /// their children, what to fix first over the children, per child every unit (drill-down)
    /// for callers who may read text; aggregates only, nodes under k left out, otherwise.
    pub(super) fn tree_report(
        &mut self,
        req: ReportRequest<'_>,
    ) -> Result<ReportResponse, ServiceError> {
        use crate::themes::analytics::{compare, ReportParameters};
        let grant = self.enter(Action::Report)?;
        let filter = grant.restrict(&resolve_filter(self.ws, &grant, &req.filter)?);
        let (_, head_sha) = self.sentiment_head()?;
        let model = self.ws.store.model_fingerprint()?.unwrap_or_default();
        let (tree, docs, head) = self.tree_run(&req.run)?;
        let text = grant.may_read_text();
        let t = aspect::tree_themes(
            &tree,
            &docs,
            &head,
            &filter,
            aspect::TreeOptions {
                min_cell: grant.min_cell(),
                quotes: if text { req.quotes } else { 0 },
                units: text,
            },
        );
        let parameters = ReportParameters {
            run: req.run.params.clone(),
            filter: filter.clone(),
            quotes: if text { req.quotes } else { 0 },
            min_cell: grant.min_cell(),
            title: req.title.clone(),
            compare_to: req.compare_to.as_ref().map(|(_, p)| p.clone()),
            theme_edits: aspect::tree_edits(&tree.nodes),
            theme_run: aspect::tree_fingerprint(&tree, &docs),
            route: match &self.via {
                Via::Http(route) => Some(route.clone()),
                Via::Cli(_) => None,
            },
            by: Some("aspect".into()),
        };
        let params_json = serde_json::to_value(&parameters).map_err(ServiceError::internal)?;
        let mut themes = t.themes;
        let vanished = compare(&mut themes, req.compare_to.map(|(r, _)| r));
        let report = crate::themes::Report {
            title: req.title,
            manifest: crate::themes::ReportManifest {
                version: env!("CARGO_PKG_VERSION").to_string(),
                data_snapshot: crate::themes::run::snapshot_hash(
                    docs.iter().filter(|d| filter.matches(d)),
                ),
                model,
                sentiment_model: head_sha,
                parameters: params_json.clone(),
                period: t.period,
                score_map: self
                    .ws
                    .config
                    .mapping
                    .as_ref()
                    .and_then(|m| m.score_map.clone()),
            },
            verbatims: t.verbatims,
            other: t.other,
            sentiment: t.sentiment,
            score_mean: t.score_mean,
            segment_fields: t.segment_fields,
            priorities: t.priorities,
            themes,
            vanished,
            tree: true,
        };
        // Every verbatim the report quotes (quotes and drill-down units), once: `forget` finds
        // the reports that quote an erased verbatim through these.
        let mut seen = std::collections::BTreeSet::new();
        let verbatim_ids: Vec<String> = report
            .themes
            .iter()
            .flat_map(|t| t.quotes.iter().chain(&t.units))
            .filter(|q| seen.insert(q.id.clone()))
            .map(|q| q.id.clone())
            .collect();
        let detail = AuditDetail::Report {
            filter: filter.clone(),
            quotes: parameters.quotes,
            min_cell: grant.min_cell(),
            parameters: params_json,
            out: req.out.map(|p| std::path::absolute(&p).unwrap_or(p)),
            theme_ids: report.themes.iter().map(|t| t.id.clone()).collect(),
            verbatim_ids,
        };
        self.record(&grant, &detail)?;
        Ok(ReportResponse { report, parameters })
    }

    /// A seed's examples redacted (like any verbatim, before they are embedded or stored) and
    /// the unit-length mean of their embeddings.
    fn seed_vector(&self, examples: &[String]) -> Result<(Vec<String>, Vec<f32>), ServiceError> {
        let red: Vec<String> = examples
            .iter()
            .map(|e| crate::pii::redact(e).as_str().trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        if red.is_empty() {
            return Err(ServiceError::BadRequest(
                "a seed needs at least one example (--example \"arrived crushed\")".into(),
            ));
        }
        let refs: Vec<&str> = red.iter().map(String::as_str).collect();
        let vecs = self.embed_examples(&refs)?;
        let mut c = vec![0f32; vecs.first().map_or(0, Vec::len)];
        for v in &vecs {
            for (a, b) in c.iter_mut().zip(v) {
                *a += b;
            }
        }
        crate::vecmath::l2_normalize(&mut c);
        Ok((red, c))
    }
}

/// A score to 4 decimals (the same JSON from both doors).
/// The node ids of a model, as shown (`P3`, `C12`).
fn model_ids(m: &crate::themes::model::ThemeModel) -> Vec<String> {
    m.nodes
        .iter()
        .map(|n| format!("{}{}", if n.is_parent { 'P' } else { 'C' }, n.id))
        .collect()
}

fn round4(x: f32) -> f64 {
    (x as f64 * 1e4).round() / 1e4
}
