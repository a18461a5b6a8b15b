//! The aspect tree in the store (schema v8): its nodes (parents and children, one id space, so
//! an id names one node forever) and each opinion unit's place in the last tree run, with its
//! sentiment. Written by `themes::aspect` in one transaction, like the topic themes, so a run is
//! either all there or not at all; user edits (rename, merge, move) live on the nodes and are
//! re-applied by every run.

use rusqlite::params;

use super::{blob_to_f32s, f32s_to_blob, Result, Store, ThemeState};

/// One node of the aspect tree.
#[derive(Clone, Debug, PartialEq)]
pub struct AspectNode {
    /// The number in `P<id>` (parent) or `C<id>` (child); one id space for both levels.
    pub id: i64,
    /// True for a parent (an aspect), false for a child (what is said about it).
    pub is_parent: bool,
    /// A child's parent at the last run (after the user's move, if any).
    pub parent: Option<i64>,
    /// The parent the user moved this child to (`themes move`), kept across runs.
    pub user_parent: Option<i64>,
    /// Automatic label from the last run.
    pub label: String,
    /// The user's label, which wins over `label`.
    pub user_label: Option<String>,
    /// Unit-length centroid in the tree's (aspect) space; matched across runs to keep the id.
    pub centroid: Vec<f32>,
    /// Units in it at the last run.
    pub units: i64,
    /// Verbatims with at least one unit in it at the last run.
    pub verbatims: i64,
    /// For a merged node: where its units go.
    pub merged_into: Option<i64>,
    /// Lifecycle (active, vanished, merged), as for topic themes.
    pub state: ThemeState,
    /// For a child the user seeded (`themes seed`, schema v9): its example phrases (redacted).
    /// Its centroid is then the examples' mean embedding in the model's space, fixed.
    pub seed: Option<Vec<String>>,
}

/// One opinion unit's place in the last tree run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AspectUnit {
    /// The verbatim (store doc number).
    pub doc: i64,
    /// Position of the unit in its verbatim.
    pub idx: usize,
    /// First byte of the unit in the verbatim's text.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// Its child (`None`: other).
    pub child: Option<i64>,
    /// Its parent (`None`: other).
    pub parent: Option<i64>,
    /// Unit sentiment score in [−1, 1].
    pub score: f32,
}

/// The aspect tree as an erasure leaves it, written in the erasure's transaction
/// ([`Store::erase`]): the rows of the erased units are deleted there; this rewrites the nodes
/// they were in and moves the units of folded children.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AspectPatch {
    /// Nodes whose label, counts, state or centroid change, as they are to be stored (by id).
    pub nodes: Vec<AspectNode>,
    /// Children left under the run's minimum size: (folded child, sibling that takes its units).
    pub folded: Vec<(i64, i64)>,
    /// When the tree was current before the erasure: the store sequence the erasure ends at and
    /// the run key the tree is current under then (written only if the sequence is that one), so
    /// the next `themes` reads the patched tree instead of clustering again.
    pub run_key: Option<(i64, String)>,
}

impl Store {
    /// Every node of the aspect tree, by id.
    pub fn aspect_nodes(&self) -> Result<Vec<AspectNode>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, is_parent, parent, user_parent, label, user_label, centroid, units, \
                 verbatims, merged_into, state, seed FROM aspect_nodes ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let centroid: Vec<u8> = r.get(6)?;
                let state: String = r.get(10)?;
                let seed: Option<String> = r.get(11)?;
                Ok(AspectNode {
                    id: r.get(0)?,
                    is_parent: r.get::<_, i64>(1)? != 0,
                    parent: r.get(2)?,
                    user_parent: r.get(3)?,
                    label: r.get(4)?,
                    user_label: r.get(5)?,
                    centroid: blob_to_f32s(&centroid),
                    units: r.get(7)?,
                    verbatims: r.get(8)?,
                    merged_into: r.get(9)?,
                    state: ThemeState::parse(&state),
                    seed: seed.and_then(|s| serde_json::from_str(&s).ok()),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Every unit's place in the last tree run, by doc then unit.
    pub fn aspect_units(&self) -> Result<Vec<AspectUnit>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT doc, idx, start_byte, end_byte, child, parent, score FROM aspect_units \
                 ORDER BY doc, idx",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AspectUnit {
                    doc: r.get(0)?,
                    idx: r.get::<_, i64>(1)? as usize,
                    start: r.get::<_, i64>(2)? as usize,
                    end: r.get::<_, i64>(3)? as usize,
                    child: r.get(4)?,
                    parent: r.get(5)?,
                    score: r.get::<_, f64>(6)? as f32,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Replaces the tree (nodes and unit places) with a run's, and records its key
    /// (`meta.aspects_run`), in one transaction.
    pub fn save_aspect_run(
        &mut self,
        nodes: &[AspectNode],
        units: &[AspectUnit],
        run_key: &str,
    ) -> Result<()> {
        let path = self.path.clone();
        let e = |source| super::StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute("DELETE FROM aspect_nodes", []).map_err(e)?;
        tx.execute("DELETE FROM aspect_units", []).map_err(e)?;
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO aspect_nodes(id, is_parent, parent, user_parent, label, \
                     user_label, centroid, units, verbatims, merged_into, state, seed) \
                     VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
                )
                .map_err(e)?;
            for n in nodes {
                ins.execute(params![
                    n.id,
                    n.is_parent as i64,
                    n.parent,
                    n.user_parent,
                    n.label,
                    n.user_label,
                    f32s_to_blob(&n.centroid),
                    n.units,
                    n.verbatims,
                    n.merged_into,
                    n.state.as_str(),
                    n.seed
                        .as_ref()
                        .map(|s| serde_json::Value::from(s.clone()).to_string()),
                ])
                .map_err(e)?;
            }
            let mut ins = tx
                .prepare(
                    "INSERT INTO aspect_units(doc, idx, start_byte, end_byte, child, parent, \
                     score) VALUES (?1,?2,?3,?4,?5,?6,?7)",
                )
                .map_err(e)?;
            for u in units {
                ins.execute(params![
                    u.doc,
                    u.idx as i64,
                    u.start as i64,
                    u.end as i64,
                    u.child,
                    u.parent,
                    u.score as f64
                ])
                .map_err(e)?;
            }
        }
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('aspects_run', ?1) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [run_key],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(())
    }

    /// Applies a user edit to the tree's nodes (rename, merge, move) and marks the last tree
    /// run stale, so the next run re-applies it, in one transaction.
    pub fn edit_aspects(&mut self, edit: impl FnOnce(&mut Vec<AspectNode>)) -> Result<()> {
        let mut nodes = self.aspect_nodes()?;
        edit(&mut nodes);
        let units = self.aspect_units()?;
        self.save_aspect_run(&nodes, &units, "edited")
    }

    /// The key of the last tree run (None: never ran).
    pub fn aspect_run_key(&self) -> Result<Option<String>> {
        self.meta("aspects_run")
    }

    /// Applies `patch` inside transaction `tx` at store sequence `seq` (see [`AspectPatch`]).
    pub(super) fn patch_aspects_tx(
        tx: &rusqlite::Transaction<'_>,
        patch: &AspectPatch,
        seq: i64,
    ) -> rusqlite::Result<()> {
        for n in &patch.nodes {
            tx.prepare_cached(
                "UPDATE aspect_nodes SET label = ?2, units = ?3, verbatims = ?4, state = ?5, \
                 centroid = ?6 WHERE id = ?1",
            )?
            .execute(params![
                n.id,
                n.label,
                n.units,
                n.verbatims,
                n.state.as_str(),
                f32s_to_blob(&n.centroid)
            ])?;
        }
        for (from, to) in &patch.folded {
            tx.prepare_cached("UPDATE aspect_units SET child = ?2 WHERE child = ?1")?
                .execute(params![from, to])?;
        }
        if let Some((_, key)) = patch.run_key.as_ref().filter(|(at, _)| *at == seq) {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ('aspects_run', ?1) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key],
            )?;
        }
        Ok(())
    }
}
