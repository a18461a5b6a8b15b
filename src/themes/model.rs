//! Theme models: the aspect tree of one run as a small file that places opinion units elsewhere
//! (issue 18, "themes at scale": discovered on a sample, assigned to all).
//!
//! Discovery ([`super::anchor`], [`super::tree`]) needs every unit at once: a family is an aspect
//! of this data when enough verbatims name it, an opinion is a child when enough say it. Placing
//! one more unit needs only the decisions that run took, so a run keeps them ([`Rule`]): the
//! families present with their centroids and median cosines (a unit naming several goes to the
//! nearest, one naming none joins the nearest when as close as its median member), what became
//! of units naming none ("General", or parents cut from their vectors: their children's
//! centroids), and, per parent and sentiment part, the chosen opinions most specific first,
//! their centroids and medians, the children of the rest, and the "other" thresholds. A unit
//! given to [`Assigner::assign`] goes through the same steps, so a unit of the run that found
//! the tree lands where the run put it (tested on the run's own units), and a unit never seen
//! lands where that run would have put it had it been there — without changing the tree.
//!
//! The file ([`ThemeModel`], JSON, versioned) holds the embedding model's fingerprint, the
//! nodes with their stable ids and labels, centroids (base64 of little-endian f32, so values
//! travel bit for bit) and the rule's words (aspect family names, opinion cores from the
//! lexicons): aggregates only, never a unit's text, a verbatim id or a respondent.
//!
//! The sample it is discovered on is uniform and deterministic: the verbatims whose keyed hash
//! of their id ([`sample_rank`]) is smallest, so one node and a Spark job pick the same rows.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::anchor::{families_of, FamilyRule, ParentRule, PartRule, RestRule, FAMILIES};
use super::tree::{self, Tree};

/// The `format` field of every model file.
pub const FORMAT: &str = "verbatim-theme-model";
/// Version of the file's layout and of its assignment rule. Version 2 (tree version 4) keeps
/// the centroids of vector-cut parents and places a unit's parent by them before its child;
/// version 1 files (tree version 3) are still read and replayed by their own rule, a vector-cut
/// parent by the nearest cut child.
pub const VERSION: u32 = 2;

/// The versions of model files this verbatim reads, with the tree version each was made by.
pub const READS: &[(u32, u32)] = &[(1, 3), (2, super::tree::VERSION)];

/// A vector in the file: base64 of its little-endian f32 values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vector(pub Vec<f32>);

impl Serialize for Vector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self.0.iter().flat_map(|v| v.to_le_bytes()).collect();
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

impl<'de> Deserialize<'de> for Vector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)?;
        if !bytes.len().is_multiple_of(4) {
            return Err(serde::de::Error::custom(
                "a vector's bytes are not a whole number of f32",
            ));
        }
        let v: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if v.iter().any(|x| !x.is_finite()) {
            return Err(serde::de::Error::custom(
                "a vector holds a non-finite value",
            ));
        }
        Ok(Vector(v))
    }
}

/// A theme model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThemeModel {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] of the writer.
    pub version: u32,
    /// Fingerprint of the embedding model whose vectors the centroids are in.
    pub model: String,
    /// [`super::tree::VERSION`] of the rules that built the tree.
    pub tree_version: u32,
    /// [`super::units::UNIT_INPUT`]: how units were cut and embedded.
    pub units_input: String,
    /// Vector length.
    pub dim: usize,
    /// Weight of the verbatim's mean taken out of each unit ([`super::tree::aspect_vectors`]).
    pub alpha: f32,
    /// What the tree was discovered on.
    pub discovered_on: DiscoveredOn,
    /// The active nodes: parents and children, with their stable ids and labels.
    pub nodes: Vec<ModelNode>,
    /// How a unit is given its child.
    pub rule: Rule,
}

/// What a model was discovered on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveredOn {
    /// Verbatims with units.
    pub verbatims: usize,
    /// Units.
    pub units: usize,
    /// The sample, when the tree was discovered on one.
    pub sample: Option<Sample>,
}

/// A uniform sample: the `size` verbatims of smallest [`sample_rank`] under `seed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// Verbatims asked for.
    pub size: usize,
    /// Key of the hash.
    pub seed: u64,
}

/// One node of the model's tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelNode {
    /// `P<id>` / `C<id>` number.
    pub id: i64,
    /// True for a parent.
    pub is_parent: bool,
    /// A child's parent.
    pub parent: Option<i64>,
    /// Automatic label.
    pub label: String,
    /// The user's label, if any (wins).
    pub user_label: Option<String>,
    /// Centroid in the tree's space (what later discoveries match ids by).
    pub centroid: Vector,
}

/// The decisions of the run, in the tree's own numbers (parent slots, tree children).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Present aspect families.
    pub families: Vec<ModelFamily>,
    /// Units naming no present family and far from all.
    pub rest: ModelRest,
    /// Per parent slot, its sentiment parts.
    pub slots: Vec<Vec<ModelPart>>,
    /// The tree's children.
    pub children: Vec<ModelChild>,
    /// A unit under its child's cut *and* under this is "other" (`None`: never).
    pub other_below: Option<f32>,
}

/// A present family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFamily {
    /// Its English name in [`FAMILIES`].
    pub family: String,
    /// Its parent slot (`None`: it kept no unit).
    pub slot: Option<usize>,
    /// Centroid of its unambiguous units.
    pub centroid: Vector,
    /// Median cosine of its named units (`None`: none joins by vector).
    pub median: Option<f32>,
}

/// See [`RestRule`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelRest {
    /// No such unit in the run: a later one goes to its nearest family.
    None,
    /// The "General" parent's slot.
    General {
        /// Its slot.
        slot: usize,
    },
    /// Parents cut by vectors: a unit goes to the nearest parent centroid (version 2), or, in a
    /// version 1 file, to the parent of its nearest cut child.
    Discovered {
        /// Centroids, one per cut child.
        centroids: Vec<Vector>,
        /// The slot of each.
        slots: Vec<Option<usize>>,
        /// The cut's parents that kept units (version 2; absent from version 1 files).
        #[serde(default)]
        parents: Vec<ModelCutParent>,
    },
}

/// One vector-cut parent of a model (version 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCutParent {
    /// Its parent slot.
    pub slot: usize,
    /// Centroid of the units the Ward cut gave it (the tree's vectors).
    pub centroid: Vector,
}

/// See [`PartRule`]; child numbers are the tree's (global).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPart {
    /// −1, 0 or 1.
    pub class: i8,
    /// (opinion core, child), most specific first.
    pub keys: Vec<(String, usize)>,
    /// Opinion children with their centroids and median cosines.
    pub opinion: Vec<ModelOpinion>,
    /// Children of the rest.
    pub rest: Vec<usize>,
}

/// One opinion child of a part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelOpinion {
    /// Tree child.
    pub child: usize,
    /// Centroid of the units that say the opinion.
    pub centroid: Vector,
    /// Median cosine of those units (`None`: none joins by vector).
    pub median: Option<f32>,
}

/// One child of the tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelChild {
    /// Its parent slot.
    pub slot: usize,
    /// The node it became (merges and seeds followed; `None`: no active node, its units are
    /// "other").
    pub node: Option<i64>,
    /// Its centroid over its units.
    pub centroid: Vector,
    /// Under this cosine (and [`Rule::other_below`]) a unit is "other" (`None`: never).
    pub cut: Option<f32>,
}

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Not JSON of a model.
    #[error("{path}: not a theme model file: {why}")]
    Parse {
        /// The file.
        path: String,
        /// serde's message (with the field's path).
        why: String,
    },
    /// A field holds a value the rule cannot use.
    #[error("{path}: {field}: {why}")]
    Field {
        /// The file.
        path: String,
        /// The field.
        field: String,
        /// What is wrong.
        why: String,
    },
}

/// Keyed rank of a verbatim id for the uniform sample: the first 8 bytes (big-endian) of
/// SHA-256 over `"verbatim-sample-1\0"`, the seed (8 bytes little-endian) and the id's UTF-8
/// bytes. Any program can compute it (`integrations/spark` does, in Python).
pub fn sample_rank(id: &str, seed: u64) -> u64 {
    let mut h = Sha256::new();
    h.update(b"verbatim-sample-1\0");
    h.update(seed.to_le_bytes());
    h.update(id.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// The ids of the uniform sample of `size` among `ids`: those of smallest [`sample_rank`]
/// (ties by id), whatever their order.
pub fn sample<'a>(
    ids: impl IntoIterator<Item = &'a str>,
    size: usize,
    seed: u64,
) -> HashSet<&'a str> {
    let mut r: Vec<(u64, &str)> = ids.into_iter().map(|i| (sample_rank(i, seed), i)).collect();
    r.sort_unstable();
    r.into_iter().take(size).map(|x| x.1).collect()
}

/// The model [`Rule`] of one anchored tree: `t` the tree, `parents` its parent decisions,
/// `parts` each slot's child decisions (in the slot's own child numbers), `node_of[c]` the
/// active node tree child `c` became.
pub fn rule_of(
    t: &Tree,
    parents: &ParentRule,
    parts: &[Vec<PartRule>],
    node_of: &[Option<i64>],
    dim: usize,
) -> Rule {
    let first_child = |slot: usize| t.child_parent.iter().position(|&p| p == slot);
    let slots = (0..t.parents)
        .map(|s| {
            let base = first_child(s).unwrap_or(0);
            parts
                .get(s)
                .map(|ps| {
                    ps.iter()
                        .map(|p| ModelPart {
                            class: p.class,
                            keys: p.keys.iter().map(|(k, c)| (k.clone(), base + c)).collect(),
                            opinion: p
                                .opinion
                                .iter()
                                .map(|(c, v, m)| ModelOpinion {
                                    child: base + c,
                                    centroid: Vector(v.clone()),
                                    median: *m,
                                })
                                .collect(),
                            rest: p.rest.iter().map(|c| base + c).collect(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let (cut, global) = &t.other_cuts;
    let finite = |v: f32| Some(v).filter(|v| *v > f32::MIN);
    Rule {
        families: parents
            .families
            .iter()
            .map(|f: &FamilyRule| ModelFamily {
                family: FAMILIES[f.family].en.to_string(),
                slot: f.slot,
                centroid: Vector(f.centroid.clone()),
                median: f.median,
            })
            .collect(),
        rest: match &parents.rest {
            RestRule::None => ModelRest::None,
            RestRule::General(s) => ModelRest::General { slot: *s },
            RestRule::Discovered {
                centroids,
                slots,
                parent_centroids,
                parent_slots,
            } => ModelRest::Discovered {
                centroids: centroids
                    .chunks(dim.max(1))
                    .map(|c| Vector(c.to_vec()))
                    .collect(),
                slots: slots.clone(),
                parents: parent_slots
                    .iter()
                    .zip(parent_centroids.chunks(dim.max(1)))
                    .map(|(&slot, c)| ModelCutParent {
                        slot,
                        centroid: Vector(c.to_vec()),
                    })
                    .collect(),
            },
        },
        slots,
        children: (0..t.children())
            .map(|c| ModelChild {
                slot: t.child_parent[c],
                node: node_of.get(c).copied().flatten(),
                centroid: Vector(t.child_centroids[c * dim..(c + 1) * dim].to_vec()),
                cut: cut.get(c).copied().and_then(finite),
            })
            .collect(),
        other_below: finite(*global),
    }
}

/// One unit to place: its redacted text, its stored vector, its verbatim's language and its
/// sentiment class (−1, 0, 1, from [`crate::sentiment::unit`]).
#[derive(Clone, Copy, Debug)]
pub struct UnitInput<'a> {
    /// The unit's text.
    pub text: &'a str,
    /// Its vector (any length; normalised here).
    pub vector: &'a [f32],
    /// Its verbatim is French.
    pub french: bool,
    /// Its sentiment class.
    pub class: i8,
}

/// A model checked and ready to place units.
pub struct Assigner<'m> {
    model: &'m ThemeModel,
    /// Per family index of [`FAMILIES`]: its position in `rule.families`.
    family_pos: HashMap<usize, usize>,
    /// Children of each slot.
    slot_children: Vec<Vec<usize>>,
    /// A child node's parent.
    parent_of: HashMap<i64, i64>,
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    crate::vecmath::dot(a, b)
}

/// The nearest of `cands` (index, centroid) to `v`; ties to the first.
fn nearest<'c>(v: &[f32], cands: impl Iterator<Item = (usize, &'c [f32])>) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, c) in cands {
        let s = cos(v, c);
        if best.is_none_or(|b| s > b.1) {
            best = Some((i, s));
        }
    }
    best
}

impl ThemeModel {
    /// Reads a model from JSON bytes; `path` names the file in errors.
    pub fn from_json(bytes: &[u8], path: &str) -> Result<ThemeModel, ModelError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let m: ThemeModel =
            serde_path_to_error::deserialize(de).map_err(|e| ModelError::Parse {
                path: path.to_string(),
                why: format!("{}: {}", e.path(), e.inner()),
            })?;
        m.assigner(path)?;
        Ok(m)
    }

    /// The model as the file holds it (JSON, one line).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a model serialises")
    }

    /// SHA-256 of the file's bytes as [`ThemeModel::to_json`] writes them: the same model gives
    /// the same digest (importing it twice changes nothing).
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.to_json().as_bytes()))
    }

    /// The model checked (every index in range, every vector `dim` long, every family known),
    /// ready to place units; `path` names the file in errors.
    pub fn assigner(&self, path: &str) -> Result<Assigner<'_>, ModelError> {
        let bad = |field: String, why: String| ModelError::Field {
            path: path.to_string(),
            field,
            why,
        };
        if self.format != FORMAT {
            return Err(bad(
                "format".into(),
                format!("{:?}, expected {FORMAT:?}", self.format),
            ));
        }
        if !READS.iter().any(|(v, _)| *v == self.version) {
            return Err(bad(
                "version".into(),
                format!(
                    "{} (this verbatim reads versions 1 to {VERSION}; export the model again with it)",
                    self.version
                ),
            ));
        }
        // Each model version was written by one tree version: another pair is a file this
        // verbatim cannot replay as it was made.
        if !READS
            .iter()
            .any(|&(v, t)| v == self.version && t == self.tree_version)
        {
            return Err(bad(
                "tree_version".into(),
                format!(
                    "{} (this verbatim builds trees of version {}); export the model again with this version",
                    self.tree_version,
                    super::tree::VERSION
                ),
            ));
        }
        let dim = self.dim;
        let r = &self.rule;
        let check = |field: String, v: &Vector| {
            if v.0.len() == dim {
                Ok(())
            } else {
                Err(bad(
                    field,
                    format!("{} values, expected dim = {dim}", v.0.len()),
                ))
            }
        };
        let slots = r.slots.len();
        let nc = r.children.len();
        let slot_ok = |field: String, s: usize| {
            if s < slots {
                Ok(())
            } else {
                Err(bad(field, format!("parent slot {s} of {slots}")))
            }
        };
        let child_ok = |field: String, c: usize| {
            if c < nc {
                Ok(())
            } else {
                Err(bad(field, format!("child {c} of {nc}")))
            }
        };
        let mut family_pos = HashMap::new();
        for (i, f) in r.families.iter().enumerate() {
            let Some(k) = FAMILIES.iter().position(|x| x.en == f.family) else {
                return Err(bad(
                    format!("rule.families[{i}].family"),
                    format!("{:?} is not an aspect family of this verbatim", f.family),
                ));
            };
            check(format!("rule.families[{i}].centroid"), &f.centroid)?;
            if let Some(s) = f.slot {
                slot_ok(format!("rule.families[{i}].slot"), s)?;
            }
            family_pos.insert(k, i);
        }
        match &r.rest {
            ModelRest::None => {}
            ModelRest::General { slot } => slot_ok("rule.rest.general.slot".into(), *slot)?,
            ModelRest::Discovered {
                centroids,
                slots: ss,
                parents,
            } => {
                if self.version >= 2 && parents.is_empty() {
                    return Err(bad(
                        "rule.rest.discovered.parents".into(),
                        format!(
                            "a version {} model places by parent centroids: none given",
                            self.version
                        ),
                    ));
                }
                for (i, p) in parents.iter().enumerate() {
                    check(
                        format!("rule.rest.discovered.parents[{i}].centroid"),
                        &p.centroid,
                    )?;
                    slot_ok(format!("rule.rest.discovered.parents[{i}].slot"), p.slot)?;
                }
                if centroids.len() != ss.len() {
                    return Err(bad(
                        "rule.rest.discovered".into(),
                        "one slot per centroid".into(),
                    ));
                }
                for (i, c) in centroids.iter().enumerate() {
                    check(format!("rule.rest.discovered.centroids[{i}]"), c)?;
                }
                for (i, s) in ss.iter().enumerate() {
                    if let Some(s) = s {
                        slot_ok(format!("rule.rest.discovered.slots[{i}]"), *s)?;
                    }
                }
            }
        }
        for (s, parts) in r.slots.iter().enumerate() {
            for (p, part) in parts.iter().enumerate() {
                let at = format!("rule.slots[{s}][{p}]");
                for (j, (_, c)) in part.keys.iter().enumerate() {
                    child_ok(format!("{at}.keys[{j}]"), *c)?;
                }
                for (j, o) in part.opinion.iter().enumerate() {
                    child_ok(format!("{at}.opinion[{j}].child"), o.child)?;
                    check(format!("{at}.opinion[{j}].centroid"), &o.centroid)?;
                }
                for (j, c) in part.rest.iter().enumerate() {
                    child_ok(format!("{at}.rest[{j}]"), *c)?;
                }
            }
        }
        let mut slot_children = vec![Vec::new(); slots];
        let ids: HashMap<i64, &ModelNode> = self.nodes.iter().map(|n| (n.id, n)).collect();
        for (c, ch) in r.children.iter().enumerate() {
            slot_ok(format!("rule.children[{c}].slot"), ch.slot)?;
            check(format!("rule.children[{c}].centroid"), &ch.centroid)?;
            if let Some(n) = ch.node {
                if !ids.get(&n).is_some_and(|n| !n.is_parent) {
                    return Err(bad(
                        format!("rule.children[{c}].node"),
                        format!("C{n} is not a child in nodes"),
                    ));
                }
            }
            slot_children[ch.slot].push(c);
        }
        let mut parent_of = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            check(format!("nodes[{i}].centroid"), &n.centroid)?;
            if !n.is_parent {
                let p = n.parent.filter(|p| ids.get(p).is_some_and(|x| x.is_parent));
                let Some(p) = p else {
                    return Err(bad(
                        format!("nodes[{i}].parent"),
                        format!("child C{} has no parent among the nodes", n.id),
                    ));
                };
                parent_of.insert(n.id, p);
            }
        }
        Ok(Assigner {
            model: self,
            family_pos,
            slot_children,
            parent_of,
        })
    }
}

impl Assigner<'_> {
    /// The parent of child node `id`.
    pub fn parent(&self, id: i64) -> Option<i64> {
        self.parent_of.get(&id).copied()
    }

    /// The child node of each unit of one verbatim (`None`: "other"), in order. The units of a
    /// verbatim come together because each unit's vector is taken relative to their mean.
    pub fn assign(
        &self,
        units: &[UnitInput<'_>],
        reader: &mut super::label::OpinionReader,
    ) -> Vec<Option<i64>> {
        let dim = self.model.dim;
        let n = units.len();
        if n == 0 {
            return Vec::new();
        }
        let mut rows: Vec<f32> = Vec::with_capacity(n * dim);
        for u in units {
            if u.vector.len() == dim {
                rows.extend_from_slice(u.vector);
            } else {
                rows.extend(std::iter::repeat_n(0.0, dim));
            }
        }
        let one_verbatim = vec![0usize; n];
        let x = tree::aspect_vectors(&rows, dim, Some(one_verbatim.as_slice()), self.model.alpha);
        units
            .iter()
            .enumerate()
            .map(|(i, u)| {
                if u.vector.len() != dim {
                    return None;
                }
                let v = &x[i * dim..(i + 1) * dim];
                let slot = self.slot(u.text, v)?;
                let c = self.child(slot, u, v, reader)?;
                let ch = &self.model.rule.children[c];
                let s = cos(v, &ch.centroid.0);
                let other = ch.cut.is_some_and(|cut| s < cut)
                    && self.model.rule.other_below.is_some_and(|g| s < g);
                if other {
                    None
                } else {
                    ch.node
                }
            })
            .collect()
    }

    /// The parent slot of a unit (the steps of [`super::anchor::anchor`]).
    fn slot(&self, text: &str, v: &[f32]) -> Option<usize> {
        let r = &self.model.rule;
        let fam = |f: usize| &r.families[self.family_pos[&f]];
        // Families in family order, as `anchor` has them; ties go to the lower family.
        let pick = |cands: &[usize]| {
            cands.iter().copied().max_by(|&a, &b| {
                cos(v, &fam(a).centroid.0)
                    .total_cmp(&cos(v, &fam(b).centroid.0))
                    .then(b.cmp(&a))
            })
        };
        let cands: Vec<usize> = families_of(text)
            .into_iter()
            .filter(|f| self.family_pos.contains_key(f))
            .collect();
        let mut family = match cands.as_slice() {
            [] => None,
            [f] => Some(*f),
            _ => pick(&cands),
        };
        if family.is_none() {
            let live: Vec<usize> = {
                let mut l: Vec<usize> = self.family_pos.keys().copied().collect();
                l.sort_unstable();
                l
            };
            if let Some(best) = pick(&live) {
                let f = fam(best);
                if f.median.is_some_and(|m| cos(v, &f.centroid.0) >= m) {
                    family = Some(best);
                }
            }
        }
        if let Some(slot) = family.and_then(|f| fam(f).slot) {
            return Some(slot);
        }
        match &r.rest {
            ModelRest::General { slot } => Some(*slot),
            ModelRest::Discovered { parents, .. } if self.model.version >= 2 => {
                // The run's own rule ([`super::anchor::nearest_row`]): the nearest parent
                // centroid, ties to the first.
                let (j, _) = nearest(
                    v,
                    parents.iter().map(|p| p.centroid.0.as_slice()).enumerate(),
                )?;
                Some(parents[j].slot)
            }
            ModelRest::Discovered {
                centroids, slots, ..
            } => {
                // Version 1: the parent of the nearest cut child.
                let (j, _) = nearest(v, centroids.iter().map(|c| c.0.as_slice()).enumerate())?;
                slots[j]
            }
            ModelRest::None => {
                // The run had no such unit: its nearest child's parent.
                let (c, _) = nearest(
                    v,
                    r.children
                        .iter()
                        .map(|c| c.centroid.0.as_slice())
                        .enumerate(),
                )?;
                Some(r.children[c].slot)
            }
        }
    }

    /// The tree child of a unit in `slot` (the steps of `said_children` / `said_group` in
    /// [`super::anchor`]).
    fn child(
        &self,
        slot: usize,
        u: &UnitInput<'_>,
        v: &[f32],
        reader: &mut super::label::OpinionReader,
    ) -> Option<usize> {
        let r = &self.model.rule;
        let of_slot = |cs: &mut dyn Iterator<Item = usize>| {
            nearest(v, cs.map(|c| (c, r.children[c].centroid.0.as_slice()))).map(|x| x.0)
        };
        let Some(part) = r.slots[slot].iter().find(|p| p.class == u.class) else {
            // A part too small to have children of its own: the parent's nearest child.
            return of_slot(&mut self.slot_children[slot].iter().copied());
        };
        if !part.keys.is_empty() {
            let said = reader.keys(u.text, u.french);
            for (k, c) in &part.keys {
                if said.iter().any(|(s, _)| s == k) {
                    return Some(*c);
                }
            }
        }
        let near = nearest(
            v,
            part.opinion
                .iter()
                .enumerate()
                .map(|(j, o)| (j, o.centroid.0.as_slice())),
        );
        if let Some((j, s)) = near {
            let o = &part.opinion[j];
            if o.median.is_some_and(|m| s >= m) || part.rest.is_empty() {
                return Some(o.child);
            }
        }
        of_slot(&mut part.rest.iter().copied())
            .or_else(|| of_slot(&mut self.slot_children[slot].iter().copied()))
    }
}

/// Nodes of the model from a run's active nodes.
pub fn model_nodes(nodes: &[crate::store::AspectNode]) -> Vec<ModelNode> {
    nodes
        .iter()
        .filter(|n| n.state == crate::store::ThemeState::Active)
        .map(|n| ModelNode {
            id: n.id,
            is_parent: n.is_parent,
            parent: n.parent,
            label: n.label.clone(),
            user_label: n.user_label.clone(),
            centroid: Vector(n.centroid.clone()),
        })
        .collect()
}

/// Normalised mutual information between two labelings of the same items (arithmetic-mean
/// normalisation, as scikit-learn's default); `None` labels form one class of their own.
/// 1 for identical partitions (up to renaming), 0 for independent ones.
pub fn nmi<A: Ord + Clone, B: Ord + Clone>(a: &[A], b: &[B]) -> f64 {
    assert_eq!(a.len(), b.len(), "two labelings of the same items");
    let n = a.len() as f64;
    if a.is_empty() {
        return 1.0;
    }
    let mut ca: BTreeMap<A, f64> = BTreeMap::new();
    let mut cb: BTreeMap<B, f64> = BTreeMap::new();
    let mut cab: BTreeMap<(A, B), f64> = BTreeMap::new();
    for (x, y) in a.iter().zip(b) {
        *ca.entry(x.clone()).or_default() += 1.0;
        *cb.entry(y.clone()).or_default() += 1.0;
        *cab.entry((x.clone(), y.clone())).or_default() += 1.0;
    }
    let h = |c: &mut dyn Iterator<Item = f64>| -> f64 {
        c.map(|k| {
            let p = k / n;
            -p * p.ln()
        })
        .sum()
    };
    let ha = h(&mut ca.values().copied());
    let hb = h(&mut cb.values().copied());
    let mut mi = 0.0;
    for ((x, y), k) in &cab {
        let pxy = k / n;
        mi += pxy * (pxy / ((ca[x] / n) * (cb[y] / n))).ln();
    }
    let denom = (ha + hb) / 2.0;
    if denom <= 0.0 {
        return 1.0;
    }
    (mi / denom).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::super::anchor;
    use super::*;

    #[test]
    fn the_sample_rank_is_pinned_and_the_sample_uniform_and_order_free() {
        // Pinned: integrations/spark computes the same values (tests/check_local.py).
        assert_eq!(sample_rank("R1001", 7), 0x9fc3_1048_a525_5f2b);
        assert_eq!(sample_rank("", 0), sample_rank("", 0));
        assert_ne!(sample_rank("R1001", 7), sample_rank("R1001", 8));
        let ids: Vec<String> = (0..10_000).map(|i| format!("id{i}")).collect();
        let s = sample(ids.iter().map(String::as_str), 1000, 42);
        assert_eq!(s.len(), 1000);
        let rev = sample(ids.iter().rev().map(String::as_str), 1000, 42);
        assert_eq!(s, rev, "the order of the ids does not matter");
        // Uniform: each tenth of the ids holds about a tenth of the sample.
        for d in 0..10 {
            let k = (d * 1000..(d + 1) * 1000)
                .filter(|i| s.contains(format!("id{i}").as_str()))
                .count();
            assert!((60..=140).contains(&k), "decile {d}: {k}");
        }
        assert_ne!(s, sample(ids.iter().map(String::as_str), 1000, 43));
    }

    /// Synthetic units on five directions: taste praise, "too salty", late delivery, praise of
    /// nothing named, and mixed delivery/packaging words; one unit per verbatim.
    fn synthetic() -> (Vec<f32>, usize, Vec<&'static str>, Vec<i8>) {
        let dim = 6;
        let mut x = Vec::new();
        let mut texts = Vec::new();
        let mut pol = Vec::new();
        let mut rng = super::super::cluster::Rng::new(3);
        let mut push = |d: usize, text: &'static str, p: i8, x: &mut Vec<f32>| {
            let mut v: Vec<f32> = (0..dim).map(|_| 0.15 * rng.next_f64() as f32).collect();
            v[d] += 1.0;
            crate::vecmath::l2_normalize(&mut v);
            x.extend(v);
            texts.push(text);
            pol.push(p);
        };
        for i in 0..60 {
            push(
                0,
                ["Great taste", "Tastes delicious", "love the flavor"][i % 3],
                1,
                &mut x,
            );
            push(1, ["Way too salty", "too salty for me"][i % 2], -1, &mut x);
            push(
                2,
                ["Delivery was late", "the shipping took forever"][i % 2],
                -1,
                &mut x,
            );
            push(
                3,
                ["Love it", "Will buy again", "five stars"][i % 3],
                1,
                &mut x,
            );
            if i % 3 == 0 {
                push(4, "the box arrived crushed by the courier", -1, &mut x);
                push(5, "meh", 0, &mut x);
            }
        }
        (x, dim, texts, pol)
    }

    #[test]
    fn units_of_the_run_land_where_the_run_put_them() {
        let (x, dim, texts, pol) = synthetic();
        let n = texts.len();
        let groups: Vec<usize> = (0..n).collect();
        let french = vec![false; n];
        let params = super::super::tree::TreeParams::default();
        let (t, a, parts) =
            anchor::build_with_rule(&x, dim, &groups, &texts, &french, &pol, &params).unwrap();
        assert!(t.children() >= 4 && a.kinds.len() >= 3, "{t:?}");
        let node_of: Vec<Option<i64>> = (0..t.children()).map(|c| Some(c as i64 + 1)).collect();
        let rule = rule_of(&t, &a.rule, &parts, &node_of, dim);
        let mut nodes: Vec<ModelNode> = (0..t.parents)
            .map(|s| ModelNode {
                id: 1000 + s as i64,
                is_parent: true,
                parent: None,
                label: format!("P{s}"),
                user_label: None,
                centroid: Vector(vec![0.0; dim]),
            })
            .collect();
        for c in 0..t.children() {
            nodes.push(ModelNode {
                id: c as i64 + 1,
                is_parent: false,
                parent: Some(1000 + t.child_parent[c] as i64),
                label: format!("C{c}"),
                user_label: None,
                centroid: Vector(vec![0.0; dim]),
            });
        }
        let model = ThemeModel {
            format: FORMAT.into(),
            version: VERSION,
            model: "test".into(),
            tree_version: super::super::tree::VERSION,
            units_input: super::super::units::UNIT_INPUT.into(),
            dim,
            alpha: params.aspect_alpha,
            discovered_on: DiscoveredOn {
                verbatims: n,
                units: n,
                sample: None,
            },
            nodes,
            rule,
        };
        // Through the file and back: the same model.
        let back = ThemeModel::from_json(model.to_json().as_bytes(), "m.json").unwrap();
        assert_eq!(back, model);
        let asg = back.assigner("m.json").unwrap();
        let mut reader = super::super::label::OpinionReader::default();
        let mut differ = Vec::new();
        for (i, (&text, &class)) in texts.iter().zip(&pol).enumerate() {
            let u = UnitInput {
                text,
                vector: &x[i * dim..(i + 1) * dim],
                french: false,
                class,
            };
            let got = asg.assign(&[u], &mut reader)[0];
            let want = t.unit_child[i].map(|c| c as i64 + 1);
            if got != want {
                differ.push((i, text, got, want));
            }
        }
        assert!(
            differ.is_empty(),
            "{} of {n} differ: {differ:?}",
            differ.len()
        );
        // A unit never seen, saying a chosen opinion: that opinion's child.
        let salty = t.unit_child[1].unwrap() as i64 + 1;
        let v = &x[dim..2 * dim];
        let u = UnitInput {
            text: "This soup is too salty",
            vector: v,
            french: false,
            class: -1,
        };
        assert_eq!(asg.assign(&[u], &mut reader), [Some(salty)]);
    }

    #[test]
    fn a_model_with_an_index_out_of_range_is_refused_naming_the_field() {
        let (x, dim, texts, pol) = synthetic();
        let n = texts.len();
        let groups: Vec<usize> = (0..n).collect();
        let params = super::super::tree::TreeParams::default();
        let (t, a, parts) =
            anchor::build_with_rule(&x, dim, &groups, &texts, &vec![false; n], &pol, &params)
                .unwrap();
        let mut rule = rule_of(&t, &a.rule, &parts, &vec![None; t.children()], dim);
        let slot = rule.children[0].slot;
        rule.children[0].slot = 99;
        let mut m = ThemeModel {
            format: FORMAT.into(),
            version: VERSION,
            model: "test".into(),
            tree_version: super::super::tree::VERSION,
            units_input: "x".into(),
            dim,
            alpha: 0.5,
            discovered_on: DiscoveredOn {
                verbatims: n,
                units: n,
                sample: None,
            },
            nodes: Vec::new(),
            rule,
        };
        let e = ThemeModel::from_json(m.to_json().as_bytes(), "m.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.json") && e.contains("rule.children[0].slot"),
            "{e}"
        );
        // A sound rule under a (version, tree_version) pair no verbatim wrote: refused by the
        // same check the import runs, naming the field.
        m.rule.children[0].slot = slot;
        assert!(ThemeModel::from_json(m.to_json().as_bytes(), "m.json").is_ok());
        m.tree_version = 3;
        let e = ThemeModel::from_json(m.to_json().as_bytes(), "m.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.json: tree_version: 3"), "{e}");
        let e = ThemeModel::from_json(br#"{"format": 3}"#, "bad.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.json") && e.contains("format"), "{e}");
    }

    #[test]
    fn nmi_is_one_for_renamed_partitions_and_low_for_unrelated_ones() {
        let a = [1, 1, 2, 2, 3, 3];
        let b = ["x", "x", "y", "y", "z", "z"];
        assert!((nmi(&a, &b) - 1.0).abs() < 1e-12);
        let c = [1, 2, 1, 2, 1, 2];
        assert!(nmi(&a, &c) < 0.2, "{}", nmi(&a, &c));
    }

    #[test]
    fn vectors_travel_bit_for_bit_and_bad_ones_are_refused() {
        let v = Vector(vec![0.1, -3.5e-9, 1.0 / 3.0, f32::MIN_POSITIVE]);
        let s = serde_json::to_string(&v).unwrap();
        let back: Vector = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
        assert!(serde_json::from_str::<Vector>("\"AAA=\"").is_err());
        let nan = base64::engine::general_purpose::STANDARD.encode(f32::NAN.to_le_bytes());
        assert!(serde_json::from_str::<Vector>(&format!("\"{nan}\"")).is_err());
    }
}
