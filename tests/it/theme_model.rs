//! Theme models (issue 18, themes at scale): `themes export-model` writes the tree as a file,
//! `themes import` makes it another workspace's (a shard's) tree, with the model's ids and
//! labels and the shard's own counts; a tree discovered on a uniform sample and assigned to all
//! agrees with the tree discovered on all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::{fixture, ok, run, stderr, verbatim, workspace_in_tmp};

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Rows `from..to` of the 88 food reviews as a CSV in `dir`.
fn food_rows(dir: &Path, from: usize, to: usize) -> PathBuf {
    let mut rdr = csv::Reader::from_path(fixture("food_reviews_88.csv")).unwrap();
    let path = dir.join(format!("food_{from}_{to}.csv"));
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record(["id", "text", "date"]).unwrap();
    for (i, r) in rdr.records().enumerate() {
        if (from..to).contains(&i) {
            w.write_record(&r.unwrap()).unwrap();
        }
    }
    w.flush().unwrap();
    path
}

fn food_ws(from: usize, to: usize) -> (tempfile::TempDir, PathBuf) {
    let (tmp, ws) = workspace_in_tmp();
    let file = food_rows(tmp.path(), from, to);
    ok(verbatim(&ws)
        .args(["ingest", "--text", "text", "--id", "id", "--date", "date"])
        .arg(file));
    (tmp, ws)
}

/// `themes assignments`: (verbatim id, unit start) → (child, parent), and the unit's text span.
type Places = BTreeMap<(String, u64), (Option<String>, Option<String>)>;

fn places(ws: &Path) -> Places {
    ok(verbatim(ws).args(["themes", "assignments"]))
        .lines()
        .map(|l| {
            let r = json(l);
            (
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["start"].as_u64().unwrap(),
                ),
                (
                    r["theme"].as_str().map(str::to_string),
                    r["parent"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

fn export(ws: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    json(&ok(verbatim(ws)
        .args(["--json", "themes", "export-model", "--out"])
        .arg(out)
        .args(extra)))
}

fn import(ws: &Path, file: &Path) -> serde_json::Value {
    json(&ok(verbatim(ws)
        .args(["--json", "themes", "import"])
        .arg(file)))
}

/// Every string of the model file outside its vectors (base64), so a search for text in it is
/// not fooled by the encoding.
fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                if k != "centroid" && k != "centroids" {
                    strings(x, out);
                }
            }
        }
        _ => {}
    }
}

/// Share of units placed in the same child by two runs.
fn agreement(a: &Places, b: &Places) -> f64 {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same units"
    );
    let same = a.iter().filter(|(k, v)| b[*k].0 == v.0).count();
    same as f64 / a.len().max(1) as f64
}

#[test]
fn an_exported_model_imported_back_places_every_unit_as_the_run_did_and_holds_no_text() {
    let (tmp, ws) = food_ws(0, 88);
    let before = places(&ws);
    let file = tmp.path().join("model.json");
    let e = export(&ws, &file, &[]);
    assert_eq!(e["discovered_on"]["verbatims"], 88, "{e}");
    let text = std::fs::read_to_string(&file).unwrap();
    let model = json(&text);
    assert_eq!(model["format"], "verbatim-theme-model");
    // No verbatim id, no unit's text: labels, family names and opinion words only.
    let mut ss = Vec::new();
    strings(&model, &mut ss);
    let mut rdr = csv::Reader::from_path(fixture("food_reviews_88.csv")).unwrap();
    let rows: Vec<(String, String)> = rdr
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string())
        })
        .collect();
    let texts: BTreeMap<&str, &str> = rows.iter().map(|(i, t)| (i.as_str(), t.as_str())).collect();
    let mut checked = 0;
    for ((id, start), _) in &before {
        assert!(
            !ss.iter().any(|s| s.contains(id.as_str())),
            "{id} in the model"
        );
        let t = texts[id.as_str()];
        let unit = t[*start as usize..]
            .split(['.', '!', '?'])
            .next()
            .unwrap()
            .trim();
        if unit.split_whitespace().count() >= 4 {
            checked += 1;
            assert!(
                !ss.iter().any(|s| s.contains(unit)),
                "the unit {unit:?} is in the model"
            );
        }
    }
    assert!(checked >= 20, "{checked}");
    // The labels are the tree's.
    let labels: BTreeSet<String> = model["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["label"].as_str().unwrap().to_string())
        .collect();
    let shown = json(&ok(verbatim(&ws).args(["themes", "--json"])));
    for p in shown["parents"].as_array().unwrap() {
        assert!(labels.contains(p["label"].as_str().unwrap()), "{p}");
    }

    // Imported into the workspace it was discovered on: every unit where the run put it.
    let i = import(&ws, &file);
    assert_eq!(i["changed"], true, "{i}");
    let after = places(&ws);
    let a = agreement(&before, &after);
    assert!(a >= 0.99, "agreement {a}");
    // The same file again: nothing changes.
    let again = import(&ws, &file);
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["digest"], i["digest"]);
    assert_eq!(places(&ws), after);
}

#[test]
fn a_shard_gets_the_models_ids_and_labels_with_its_own_counts() {
    let (tmp, full) = food_ws(0, 88);
    let file = tmp.path().join("model.json");
    export(&full, &file, &[]);
    let model = json(&std::fs::read_to_string(&file).unwrap());
    let model_labels: BTreeMap<String, String> = model["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let id = format!(
                "{}{}",
                if n["is_parent"].as_bool().unwrap() {
                    'P'
                } else {
                    'C'
                },
                n["id"]
            );
            (id, n["label"].as_str().unwrap().to_string())
        })
        .collect();

    // The shard holds the second half of the reviews only.
    let (_t2, shard) = food_ws(44, 88);
    let r = import(&shard, &file);
    assert_eq!(r["changed"], true, "{r}");
    let tree = json(&ok(verbatim(&shard).args(["themes", "--json"])));
    let p = places(&shard);
    let mut docs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((id, _), (c, par)) in &p {
        for n in [c, par].into_iter().flatten() {
            docs.entry(n.clone()).or_default().insert(id.clone());
        }
    }
    let mut seen = 0;
    for par in tree["parents"].as_array().unwrap() {
        for n in std::iter::once(par).chain(par["children"].as_array().unwrap()) {
            let id = n["id"].as_str().unwrap();
            assert_eq!(
                model_labels.get(id).map(String::as_str),
                n["label"].as_str(),
                "{id}: the model's id and label"
            );
            assert_eq!(
                n["verbatims"].as_u64().unwrap() as usize,
                docs[id].len(),
                "{id}: counted on the shard's rows"
            );
            seen += 1;
        }
    }
    assert!(seen >= 4, "{tree}");
    assert_eq!(tree["verbatims"], 44);
    // Filters by theme and the report work on the shard.
    let (child, ids) = docs
        .iter()
        .filter(|(k, _)| k.starts_with('C'))
        .max_by_key(|(_, v)| v.len())
        .unwrap();
    let hits = json(&ok(verbatim(&shard).args([
        "search",
        "food",
        "--mode",
        "vector",
        "--limit",
        "200",
        "--where",
        &format!("theme={child}"),
        "--json",
    ])));
    let got: BTreeSet<String> = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| {
            // Copies of a text fold into one hit: their ids are matches too.
            let copies = h["copies"].as_array().cloned().unwrap_or_default();
            std::iter::once(h["verbatim"]["id"].clone())
                .chain(copies)
                .map(|id| id.as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(&got, ids);
    let report = tmp.path().join("shard.md");
    ok(verbatim(&shard).args(["report", "--out"]).arg(&report));
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains(&model_labels[child]), "{md}");

    // A later model with an edited label keeps the ids; the label follows the file.
    let mut edited = model.clone();
    let node = edited["nodes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| format!("C{}", n["id"]) == *child)
        .unwrap();
    node["label"] = "Edited at the centre".into();
    let file2 = tmp.path().join("model2.json");
    std::fs::write(&file2, edited.to_string()).unwrap();
    let r2 = import(&shard, &file2);
    assert_eq!(r2["changed"], true);
    assert_ne!(r2["digest"], r["digest"]);
    let p2 = places(&shard);
    assert_eq!(p2, p, "same places, same ids");
    let tree2 = json(&ok(verbatim(&shard).args(["themes", "--json"])));
    assert!(tree2.to_string().contains("Edited at the centre"));

    // A model of another embedding model is refused, naming the file and the field.
    let mut other = model.clone();
    other["model"] = "another-model".into();
    let file3 = tmp.path().join("other.json");
    std::fs::write(&file3, other.to_string()).unwrap();
    let o = run(verbatim(&shard).args(["themes", "import"]).arg(&file3));
    assert_ne!(o.status.code(), Some(0));
    let err = stderr(&o);
    assert!(err.contains("other.json") && err.contains("model"), "{err}");
    // A damaged file names its field.
    std::fs::write(
        &file3,
        r#"{"format":"verbatim-theme-model","version":"one"}"#,
    )
    .unwrap();
    let o = run(verbatim(&shard).args(["themes", "import"]).arg(&file3));
    assert_ne!(o.status.code(), Some(0));
    let err = stderr(&o);
    assert!(
        err.contains("other.json") && err.contains("version"),
        "{err}"
    );
    // The shard's tree is still the edited model's.
    assert_eq!(places(&shard), p2);
}

/// The invariant change: a tree discovered on a uniform sample and assigned to every unit
/// agrees with the tree discovered on every unit (normalised mutual information of the units'
/// children, "other" a class of its own).
#[test]
fn a_tree_discovered_on_a_sample_agrees_with_the_full_one() {
    let (tmp, ws) = workspace_in_tmp();
    crate::common::ingest_uci(&ws);
    let full = places(&ws);
    let file = tmp.path().join("sample.json");
    let e = export(&ws, &file, &["--sample", "300", "--sample-seed", "7"]);
    assert_eq!(e["discovered_on"]["sample"]["size"], 300, "{e}");
    let in_sample = e["discovered_on"]["verbatims"].as_u64().unwrap();
    assert!((250..=300).contains(&in_sample), "{e}");
    // The same sample on another call: the same file.
    let file2 = tmp.path().join("sample2.json");
    export(&ws, &file2, &["--sample", "300", "--sample-seed", "7"]);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(&file2).unwrap()
    );
    import(&ws, &file);
    let sampled = places(&ws);
    let keys: Vec<_> = full.keys().cloned().collect();
    let child =
        |p: &Places| -> Vec<Option<String>> { keys.iter().map(|k| p[k].0.clone()).collect() };
    let parent =
        |p: &Places| -> Vec<Option<String>> { keys.iter().map(|k| p[k].1.clone()).collect() };
    let nmi_child = verbatim::themes::model::nmi(&child(&full), &child(&sampled));
    let nmi_parent = verbatim::themes::model::nmi(&parent(&full), &parent(&sampled));
    eprintln!("uci_600, sample 300: NMI children {nmi_child:.3}, parents {nmi_parent:.3}");
    assert!(nmi_parent >= PARENT_NMI, "parents: NMI {nmi_parent}");
    assert!(nmi_child >= CHILD_NMI, "children: NMI {nmi_child}");
}

/// Replay fidelity where parents are cut from vectors (UCI: most sentences name no aspect of
/// the lexicon): the full run's own model, imported back, gives every unit the parent the run
/// gave it. Model version 1 placed such a unit by its nearest cut child, not the Ward branch
/// the run used (parents 0.956 NMI here, 0.674 on 100k chit-chat); the run now places by the
/// parent centroids the model stores.
#[test]
fn a_full_model_replayed_on_vector_cut_parents_keeps_every_units_parent() {
    let (tmp, ws) = workspace_in_tmp();
    crate::common::ingest_uci(&ws);
    let full = places(&ws);
    let file = tmp.path().join("all.json");
    export(&ws, &file, &[]);
    let model = json(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(model["version"], 2, "the model version");
    let cut = &model["rule"]["rest"]["discovered"]["parents"];
    assert!(
        cut.as_array().is_some_and(|a| a.len() >= 2),
        "vector-cut parents with their centroids: {}",
        model["rule"]["rest"]
    );
    import(&ws, &file);
    let back = places(&ws);
    let same_parent = full.iter().filter(|(k, v)| back[*k].1 == v.1).count();
    let same_child = agreement(&full, &back);
    eprintln!(
        "uci_600 replay: same parent {same_parent} / {}, same child {same_child:.3}",
        full.len()
    );
    assert_eq!(same_parent, full.len(), "every unit keeps its parent");
    assert!(same_child >= REPLAY_CHILD, "same child {same_child}");
}

/// The share of units the replay of [`a_full_model_replayed_on_vector_cut_parents_keeps_every_units_parent`]
/// keeps in their child.
const REPLAY_CHILD: f64 = 0.97;

/// One discovery rule at every scale: above `[themes] sample_above_units`, `themes` discovers
/// on the keyed sample and assigns every unit with that discovery's model — the placement
/// `themes export-model --sample` + `themes import` gives (what a Spark job does).
#[test]
fn themes_above_the_sampling_size_equals_export_model_sample_then_import() {
    let (tmp, ws) = workspace_in_tmp();
    crate::common::ingest_uci(&ws);
    let full = places(&ws);
    let cfg = ws.join("verbatim.toml");
    let mut toml = std::fs::read_to_string(&cfg).unwrap();
    toml.push_str(
        "\n[themes]\nsample_above_units = 100\nsample_verbatims = 300\nsample_seed = 7\n",
    );
    std::fs::write(&cfg, toml).unwrap();
    let shown = json(&ok(verbatim(&ws).args(["themes", "--json"])));
    assert_eq!(
        shown["discovered_on"]["sample"]["size"], 300,
        "{}",
        shown["discovered_on"]
    );
    let sampled = places(&ws);
    assert_ne!(sampled, full, "the setting changed how the tree is found");
    let file = tmp.path().join("sample.json");
    export(&ws, &file, &["--sample", "300", "--sample-seed", "7"]);
    import(&ws, &file);
    assert_eq!(
        places(&ws),
        sampled,
        "one node == export-model --sample + import"
    );
}

/// Thresholds of [`a_tree_discovered_on_a_sample_agrees_with_the_full_one`] (BENCHMARKS.md,
/// "Themes at scale"). On 600 sentences a sample of 300 gives children 0.70 and parents 0.62
/// (450 of 600: 0.80 and 0.72; chance is near 0.05): at this size the sample decides which
/// aspect families pass the 5-verbatim floor and which opinions make a child, so agreement is
/// far from the 0.95 goal of 100k. The thresholds sit 0.07 under what the fixture gives, room
/// for float differences between machines; falling under them means sample-then-assign broke.
const PARENT_NMI: f64 = 0.55;
const CHILD_NMI: f64 = 0.63;

/// One unit as `verbatim assign` or `themes assignments` gives it: (id, start, end) →
/// (theme, parent, sentiment).
type Assigned = BTreeMap<(String, u64, u64), (Option<String>, Option<String>, String)>;

/// `verbatim assign --themes-model FILE` with prepared rows (Arrow IPC) on stdin.
fn assign(model: &Path, prepared: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = verbatim(Path::new("/nonexistent-workspace"))
        .args(["assign", "--themes-model"])
        .arg(model)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn verbatim assign");
    // A refusal exits before reading its input: the pipe may close under the write.
    let _ = child.stdin.take().unwrap().write_all(prepared);
    child.wait_with_output().unwrap()
}

/// The rows of `verbatim assign`'s output.
fn assigned(ipc: &[u8]) -> Assigned {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::Array;
    let mut out = Assigned::new();
    for b in arrow_ipc::reader::StreamReader::try_new(ipc, None).unwrap() {
        let b = b.unwrap();
        let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let l = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone()
        };
        let (id, theme, parent, sentiment) = (s("id"), s("theme"), s("parent"), s("sentiment"));
        let (start, end) = (l("start"), l("end"));
        for i in 0..b.num_rows() {
            let opt =
                |a: &arrow_array::StringArray| (!a.is_null(i)).then(|| a.value(i).to_string());
            let key = (
                id.value(i).to_string(),
                start.value(i) as u64,
                end.value(i) as u64,
            );
            let v = (opt(&theme), opt(&parent), sentiment.value(i).to_string());
            assert!(out.insert(key, v).is_none(), "one row per unit");
        }
    }
    out
}

/// `themes assignments` of a workspace, as [`Assigned`].
fn workspace_assigned(ws: &Path) -> Assigned {
    ok(verbatim(ws).args(["themes", "assignments"]))
        .lines()
        .map(|l| {
            let r = json(l);
            let s = |k: &str| r[k].as_str().map(str::to_string);
            (
                (
                    s("id").unwrap(),
                    r["start"].as_u64().unwrap(),
                    r["end"].as_u64().unwrap(),
                ),
                (s("theme"), s("parent"), s("sentiment").unwrap()),
            )
        })
        .collect()
}

/// Issue 18 item 4, assignment on the executors: `verbatim assign` places the units of
/// prepared rows (no workspace) exactly where a shard that stores the same rows and imports the
/// same model places them, and counts aggregated from its rows are the shard's `themes`.
#[test]
fn assign_on_prepared_rows_places_each_unit_as_a_shard_importing_the_model() {
    let (tmp, ws) = food_ws(0, 88);
    // The tree discovered on the workspace's rows (`--sample` takes 100 and more; the sample
    // path is the same rule, `a_tree_discovered_on_a_sample_agrees_with_the_full_one`).
    let model = tmp.path().join("model.json");
    export(&ws, &model, &[]);
    let key = crate::prepare::export_key(&ws);
    let csv = food_rows(tmp.path(), 0, 88);
    let prepared = crate::prepare::prepare(
        &key,
        &["--text", "text", "--id", "id", "--date", "date"],
        &crate::prepare::csv_as_ipc(&csv),
    );
    let o = assign(&model, &prepared);
    assert!(o.status.success(), "assign failed: {}", stderr(&o));
    let got = assigned(&o.stdout);

    let shard = crate::prepare::workspace_with_key_of(&ws);
    let dir = shard.path().join("prepared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("part-0.arrow"), &prepared).unwrap();
    ok(verbatim(shard.path())
        .arg("ingest")
        .arg("--prepared")
        .arg(&dir));
    import(shard.path(), &model);
    let want = workspace_assigned(shard.path());
    assert!(want.len() >= 88, "{} units", want.len());
    let differ: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .take(5)
        .collect();
    assert!(
        differ.is_empty() && got.len() == want.len(),
        "{} of {} units differ, e.g. {differ:?}",
        want.iter().filter(|(k, v)| got.get(*k) != Some(*v)).count(),
        want.len()
    );
    assert!(
        got.values().filter(|v| v.0.is_some()).count() * 2 > got.len(),
        "most units are in a theme"
    );

    // Aggregated from the assignments alone: verbatims and units per node = the shard's tree.
    let mut docs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut units: BTreeMap<String, usize> = BTreeMap::new();
    for ((id, _, _), (c, p, _)) in &got {
        for n in [c, p].into_iter().flatten() {
            docs.entry(n.clone()).or_default().insert(id.clone());
            *units.entry(n.clone()).or_default() += 1;
        }
    }
    let tree = json(&ok(verbatim(shard.path()).args(["themes", "--json"])));
    let mut seen = BTreeSet::new();
    for par in tree["parents"].as_array().unwrap() {
        for n in std::iter::once(par).chain(par["children"].as_array().unwrap()) {
            let id = n["id"].as_str().unwrap();
            assert_eq!(n["verbatims"].as_u64(), Some(docs[id].len() as u64), "{id}");
            assert_eq!(n["units"].as_u64(), Some(units[id] as u64), "{id}");
            seen.insert(id.to_string());
        }
    }
    assert_eq!(seen, docs.keys().cloned().collect(), "the same nodes");

    // No text in the output: ids, offsets, node ids and scores only.
    let text = std::fs::read_to_string(&csv).unwrap();
    let review = text.lines().nth(1).unwrap().split(',').nth(1).unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains(review.trim_matches('"')),
        "a review's text in the assignments"
    );

    // A model of another embedding model is refused before anything is written (exit 2).
    let mut other = json(&std::fs::read_to_string(&model).unwrap());
    other["model"] = "another-model".into();
    let file = tmp.path().join("other.json");
    std::fs::write(&file, other.to_string()).unwrap();
    let o = assign(&file, &prepared);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(err.contains("other.json") && err.contains("model"), "{err}");
}

/// Every stored unit of a workspace, by verbatim id and place: (id, idx, start, end, content
/// hash, vector bytes) — the "no unit" marker rows (idx −1) included.
type UnitRow = (String, i64, i64, i64, String, Vec<u8>);

fn stored_units(ws: &Path) -> Vec<UnitRow> {
    crate::common::store_rows(
        ws,
        "SELECT v.id, u.idx, u.start_byte, u.end_byte, u.content_hash, u.vector \
         FROM units u JOIN verbatims v ON v.doc = u.doc ORDER BY v.id, u.idx",
    )
}

/// Issue 18 item 1, unit vectors on the executors: `prepare` cuts and embeds each row's opinion
/// units exactly as the workspace's first theme run does (same spans, bit-identical vectors,
/// whatever the batches), `ingest --prepared` stores them, and `themes` on that workspace
/// embeds no unit; a re-run stores none again; `--no-units` leaves them to `themes`.
#[test]
fn prepared_units_are_the_ones_a_theme_run_makes_and_themes_embed_none() {
    let (tmp, ws) = food_ws(0, 88);
    ok(verbatim(&ws).args(["themes"]));
    let want = stored_units(&ws);
    let real = want.iter().filter(|u| u.1 >= 0).count();
    assert!(
        real > 88,
        "{real} units for 88 reviews: some reviews have several"
    );
    let key = crate::prepare::export_key(&ws);
    let csv = food_rows(tmp.path(), 0, 88);
    let input = crate::prepare::csv_as_ipc(&csv);
    let mapping = ["--text", "text", "--id", "id", "--date", "date"];
    // Other batches than the theme run's: 7 rows per embedding call.
    let prepared =
        crate::prepare::prepare(&key, &[&mapping[..], &["--chunk", "7"]].concat(), &input);

    let shard = crate::prepare::workspace_with_key_of(&ws);
    let dir = shard.path().join("prepared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("part-0.arrow"), &prepared).unwrap();
    let ingest = || {
        json(&ok(verbatim(shard.path())
            .args(["--json", "ingest", "--prepared"])
            .arg(&dir)))
    };
    let s = ingest();
    assert_eq!(s["units"].as_u64(), Some(real as u64), "{s}");
    assert_eq!(
        stored_units(shard.path()),
        want,
        "the workspace's own units, bit for bit"
    );
    let again = ingest();
    assert_eq!(again["units"].as_u64(), Some(0), "{again}");

    let o = run(verbatim(shard.path()).args(["--progress", "jsonl", "themes"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let steps: Vec<String> = crate::common::progress_events(&o)
        .iter()
        .filter_map(|e| e["step"].as_str().map(str::to_string))
        .collect();
    assert!(
        !steps.iter().any(|s| s == "embedding units"),
        "themes embedded units the prepare made: {steps:?}"
    );
    assert_eq!(stored_units(shard.path()), want);

    // Without units: the columns are null, nothing is stored, `themes` makes the same ones.
    let bare = crate::prepare::prepare(&key, &[&mapping[..], &["--no-units"]].concat(), &input);
    let other = crate::prepare::workspace_with_key_of(&ws);
    let dir = other.path().join("prepared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("part-0.arrow"), &bare).unwrap();
    let s = json(&ok(verbatim(other.path())
        .args(["--json", "ingest", "--prepared"])
        .arg(&dir)));
    assert_eq!(s["units"].as_u64(), Some(0), "{s}");
    assert!(stored_units(other.path()).is_empty());
    let o = run(verbatim(other.path()).args(["--progress", "jsonl", "themes"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let embedded = crate::common::progress_events(&o)
        .iter()
        .any(|e| e["step"] == "embedding units");
    assert!(embedded, "themes cut and embedded the units itself");
    assert_eq!(stored_units(other.path()), want);
}
