//! Themes and the report, end to end through the CLI with the real model on real text: the 600
//! UCI review sentences (amazon / imdb / yelp), given dates, an NPS-like score and a country by
//! a fixed rule so trends, spikes, segments and score drivers have something to show.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::{fixture, ok, run, stderr, v5_workspace, verbatim, workspace_in_tmp};

/// Writes the fixture as a dated, scored CSV: rows `from..to` of uci_600.csv. Yelp reviews are
/// dated in the last month only (a spike) and scored low (a driver); the rest spread over 2024.
fn dated_csv(dir: &Path, from: usize, to: usize) -> PathBuf {
    let text = std::fs::read_to_string(fixture("uci_600.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let mut w = csv::Writer::from_path(dir.join(format!("fb_{from}_{to}.csv"))).unwrap();
    w.write_record(["id", "text", "date", "nps", "country", "domain"])
        .unwrap();
    for (i, rec) in rdr.records().enumerate() {
        if i < from || i >= to {
            continue;
        }
        let r = rec.unwrap();
        let (id, text, sentiment, domain) = (&r[0], &r[1], &r[2], &r[3]);
        let date = if domain == "yelp" {
            format!("2024-12-{:02}", 1 + i % 28)
        } else {
            format!("2024-{:02}-{:02}", 1 + i % 11, 1 + i % 28)
        };
        let score = match (domain, sentiment) {
            ("yelp", _) => 2 + i % 3,
            (_, "positive") => 8 + i % 3,
            _ => 4 + i % 4,
        };
        let country = ["FR", "DE", "UK"][i % 3];
        w.write_record([id, text, &date, &score.to_string(), country, domain])
            .unwrap();
    }
    w.flush().unwrap();
    dir.join(format!("fb_{from}_{to}.csv"))
}

fn ingest(ws: &Path, file: &Path) {
    ok(verbatim(ws)
        .args([
            "ingest", "--text", "text", "--id", "id", "--date", "date", "--score", "nps",
            "--field", "country", "--field", "domain",
        ])
        .arg(file));
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `themes --json` → id → (label, size).
fn themes(ws: &Path) -> BTreeMap<String, (String, u64)> {
    let v = json(&ok(verbatim(ws).args(["themes", "--by", "topic", "--json"])));
    v["themes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                (
                    t["label"].as_str().unwrap().to_string(),
                    t["size"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// `themes assignments` → verbatim id → theme id ("other" included).
fn assignments(ws: &Path) -> BTreeMap<String, String> {
    ok(verbatim(ws).args(["themes", "assignments", "--by", "topic"]))
        .lines()
        .map(|l| {
            let v = json(l);
            (
                v["id"].as_str().unwrap().to_string(),
                v["theme"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn workspace_with(rows: usize) -> (tempfile::TempDir, PathBuf) {
    let (tmp, ws) = workspace_in_tmp();
    let f = dated_csv(tmp.path(), 0, rows);
    ingest(&ws, &f);
    (tmp, ws)
}

#[test]
fn every_verbatim_has_a_theme_or_other_and_other_stays_under_10_percent() {
    let (_tmp, ws) = workspace_with(600);
    let a = assignments(&ws);
    // A reader that goes away early (`themes assignments | head`) ends the command quietly.
    let mut child = verbatim(&ws)
        .args(["themes", "assignments", "--by", "topic"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Broken pipe"), "{}", stderr(&o));
    assert_eq!(a.len(), 600);
    let other = a.values().filter(|t| *t == "other").count();
    assert!(other <= 60, "other = {other}");
    let t = themes(&ws);
    assert!((5..=40).contains(&t.len()), "{t:?}");
    // Sizes add up; labels are short phrases.
    let sized: u64 = t.values().map(|x| x.1).sum();
    assert_eq!(sized as usize + other, 600);
    for (label, _) in t.values() {
        let words = label.split_whitespace().filter(|w| *w != "/").count();
        assert!((1..=4).contains(&words), "{label:?}");
    }
    // Themes follow the data: each domain's reviews mostly sit in themes dominated by it.
    let mut by_theme: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for (id, th) in &a {
        let domain = id.split('-').nth(1).unwrap();
        *by_theme.entry(th).or_default().entry(domain).or_default() += 1;
    }
    let pure: usize = by_theme
        .iter()
        .filter(|(t, _)| **t != "other")
        .map(|(_, d)| d.values().max().unwrap())
        .sum();
    assert!(
        pure as f64 >= 0.6 * sized as f64,
        "purity {pure}/{sized}: {by_theme:?}"
    );
}

#[test]
fn same_data_same_settings_same_themes_and_report_bytes() {
    let (_a, ws1) = workspace_with(600);
    let (_b, ws2) = workspace_with(600);
    assert_eq!(themes(&ws1), themes(&ws2));
    assert_eq!(assignments(&ws1), assignments(&ws2));
    let report = |ws: &Path, name: &str| {
        let out = ws.join(name);
        ok(verbatim(ws)
            .args(["report", "--by", "topic", "--out"])
            .arg(&out));
        std::fs::read(out).unwrap()
    };
    for name in ["r.json", "r.md", "r.html"] {
        let a = report(&ws1, name);
        assert_eq!(a, report(&ws2, name), "{name} differs between workspaces");
        // And again in the same workspace, with --refresh re-running discovery.
        ok(verbatim(&ws1).args(["themes", "--by", "topic", "--refresh"]));
        assert_eq!(a, report(&ws1, name), "{name} differs after a re-run");
    }
}

#[test]
fn theme_ids_survive_new_verbatims_and_the_run_says_what_changed() {
    let (tmp, ws) = workspace_in_tmp();
    // Two thirds, then the rest (every domain in both parts).
    let first = dated_csv(tmp.path(), 0, 600);
    let text = std::fs::read_to_string(&first).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (head, body) = (lines[0], &lines[1..]);
    let part = |keep: &dyn Fn(usize) -> bool, name: &str| {
        let p = tmp.path().join(name);
        let mut s = String::from(head);
        s.push('\n');
        for (i, l) in body.iter().enumerate() {
            if keep(i) {
                s.push_str(l);
                s.push('\n');
            }
        }
        std::fs::write(&p, s).unwrap();
        p
    };
    ingest(&ws, &part(&|i| i % 3 != 2, "a.csv"));
    let before = assignments(&ws);
    let t_before = themes(&ws);
    ingest(&ws, &part(&|i| i % 3 == 2, "b.csv"));
    let out = ok(verbatim(&ws).args(["themes", "--by", "topic", "--json"]));
    let v = json(&out);
    assert_eq!(v["ran"], true);
    let changes: BTreeSet<String> = v["themes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["change"].as_str().map(str::to_string))
        .collect();
    assert!(
        !changes.is_empty(),
        "a re-run reports new/grew/shrank/stable: {out}"
    );
    let after = assignments(&ws);
    let t_after = themes(&ws);
    // Every sizeable old theme is still there under its id and keeps most of its verbatims.
    for (id, (label, size)) in &t_before {
        if *size < 20 {
            continue;
        }
        assert!(t_after.contains_key(id), "{id} ({label}) lost: {t_after:?}");
        let old: Vec<&String> = before
            .iter()
            .filter(|(_, t)| *t == id)
            .map(|(v, _)| v)
            .collect();
        let kept = old.iter().filter(|v| after.get(**v) == Some(id)).count();
        assert!(
            kept as f64 >= 0.7 * old.len() as f64,
            "{id} ({label}) kept {kept} of {}",
            old.len()
        );
    }
}

#[test]
fn merges_renames_and_seeds_persist_across_runs_and_ingests() {
    let (tmp, ws) = workspace_in_tmp();
    ingest(&ws, &dated_csv(tmp.path(), 0, 450));
    let t = themes(&ws);
    let ids: Vec<&String> = t.keys().collect();
    let (keep, gone, renamed) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    let kept_size = t[&keep].1 + t[&gone].1;
    ok(verbatim(&ws).args(["themes", "merge", &keep, &gone, "--label", "Merged things"]));
    ok(verbatim(&ws).args(["themes", "rename", &renamed, "Billing errors"]));
    ok(verbatim(&ws).args([
        "themes",
        "seed",
        "--by",
        "topic",
        "Sound problems",
        "--example",
        "the sound quality is terrible",
        "--example",
        "I can barely hear anything on calls",
    ]));
    let check = |ws: &Path, grow: bool| {
        let t = themes(ws);
        assert_eq!(t[&keep].0, "Merged things", "{t:?}");
        assert!(!t.contains_key(&gone), "{gone} should stay merged: {t:?}");
        if !grow {
            assert!(
                t[&keep].1 >= kept_size * 8 / 10,
                "{} vs {kept_size}",
                t[&keep].1
            );
        }
        assert_eq!(t[&renamed].0, "Billing errors");
        let seeded: Vec<_> = t.values().filter(|x| x.0 == "Sound problems").collect();
        assert_eq!(seeded.len(), 1, "{t:?}");
        assert!(seeded[0].1 > 0, "the seed attracts verbatims: {t:?}");
    };
    check(&ws, false);
    ok(verbatim(&ws).args(["themes", "--by", "topic", "--refresh"]));
    check(&ws, false);
    ingest(&ws, &dated_csv(tmp.path(), 450, 600));
    check(&ws, true);
    // Showing a merged theme says where it went.
    let o = run(verbatim(&ws).args(["themes", "show", &gone]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("merged into {keep}")),
        "{}",
        stderr(&o)
    );
    // Bad ids name the problem.
    let o = run(verbatim(&ws).args(["themes", "rename", "T999", "x"]));
    assert!(stderr(&o).contains("no theme T999"), "{}", stderr(&o));
}

#[test]
fn trends_flag_the_spike_and_score_drivers_find_the_theme_that_pulls_the_score_down() {
    let (_tmp, ws) = workspace_with(600);
    let v = json(&ok(
        verbatim(&ws).args(["themes", "--by", "topic", "--json"])
    ));
    let themes = v["themes"].as_array().unwrap();
    // The yelp themes: mostly domain=yelp.
    let yelp_share = |t: &serde_json::Value| -> f64 {
        let seg = t["segments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["field"] == "domain")
            .unwrap();
        let n: u64 = seg["values"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["value"] == "yelp")
            .map(|x| x["count"].as_u64().unwrap())
            .sum();
        n as f64 / t["size"].as_f64().unwrap()
    };
    let yelp: Vec<&serde_json::Value> = themes.iter().filter(|t| yelp_share(t) > 0.7).collect();
    assert!(!yelp.is_empty(), "no yelp theme: {v}");
    for t in &yelp {
        assert_eq!(t["trend"]["granularity"], "month");
        let last = t["trend"]["points"].as_array().unwrap().last().unwrap();
        assert_eq!(last["period"], "2024-12");
        assert_eq!(last["spike"], true, "{}", t["trend"]);
        assert!(
            t["score"]["impact"].as_f64().unwrap() > 0.0,
            "{}",
            t["score"]
        );
        assert!(t["score"]["mean"].as_f64().unwrap() < t["score"]["rest_mean"].as_f64().unwrap());
    }
    for t in themes.iter().filter(|t| yelp_share(t) < 0.1) {
        assert!(
            t["score"]["impact"].as_f64().unwrap() < 0.0,
            "{}",
            t["score"]
        );
    }
    // A filter narrows what is counted, not which themes exist.
    let fr = json(&ok(verbatim(&ws).args([
        "themes",
        "--by",
        "topic",
        "--where",
        "country=FR",
        "--json",
        "--min-size",
        "1",
    ])));
    assert_eq!(fr["verbatims"], 200);
    let all_ids: BTreeSet<&str> = themes.iter().map(|t| t["id"].as_str().unwrap()).collect();
    for t in fr["themes"].as_array().unwrap() {
        assert!(all_ids.contains(t["id"].as_str().unwrap()));
    }
}

/// One trend direction (`verbatim::themes::analytics::trend_direction`): `themes` (its JSON and
/// its table) and the report (JSON and Markdown) say the same for every theme. The fixture has
/// the case the two old rules disagreed on: December is all yelp, so every other theme's last
/// month is empty — a mean of the last three months called them "down", a median "flat".
#[test]
fn themes_and_the_report_show_the_same_trend_direction() {
    let (_tmp, ws) = workspace_with(600);
    let direction = |t: &serde_json::Value| t["trend"]["direction"].as_str().map(str::to_string);
    let v = json(&ok(
        verbatim(&ws).args(["themes", "--by", "topic", "--json"])
    ));
    let from_themes: BTreeMap<String, Option<String>> = v["themes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap().to_string(), direction(t)))
        .collect();
    let out = ws.join("r.json");
    ok(verbatim(&ws)
        .args(["report", "--by", "topic", "--out"])
        .arg(&out));
    let r = json(&std::fs::read_to_string(&out).unwrap());
    let mut compared = 0;
    let mut empty_last_month = 0;
    for t in r["themes"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        let Some(d) = from_themes.get(id) else {
            continue;
        };
        assert_eq!(&direction(t), d, "{id}: report {} vs themes", t["trend"]);
        assert!(d.is_some(), "12 months give a direction: {}", t["trend"]);
        compared += 1;
        let last = t["trend"]["points"].as_array().unwrap().last().unwrap();
        if last["share"].as_f64() == Some(0.0) {
            // A steady theme whose last month is empty: one month does not make it fall.
            empty_last_month += 1;
            assert_eq!(d.as_deref(), Some("flat"), "{id}: {}", t["trend"]);
        }
    }
    assert!(compared >= 3, "{compared} themes compared: {r}");
    assert!(empty_last_month > 0, "no theme with an empty December: {r}");
    // The table: the same word, or "spike" when the last month is one.
    let table = ok(verbatim(&ws).args(["themes", "--by", "topic"]));
    for line in table.lines().skip(1) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        // The "what to fix first" lines above the table (and the blank line) are not rows.
        let Some(Some(d)) = cells.first().and_then(|id| from_themes.get(*id)) else {
            continue;
        };
        let t = v["themes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == cells[0])
            .unwrap();
        let spike = t["trend"]["points"].as_array().unwrap().last().unwrap()["spike"] == true;
        let want = if spike { "spike" } else { d.as_str() };
        // id, size, share, sentiment, trend.
        assert_eq!(cells[4], want, "{line}");
    }
    // The Markdown themes table shows the same direction as an arrow.
    let md = ws.join("r.md");
    ok(verbatim(&ws)
        .args(["report", "--by", "topic", "--out"])
        .arg(&md));
    let md = std::fs::read_to_string(&md).unwrap();
    for (id, d) in &from_themes {
        let Some(row) = md.lines().find(|l| l.starts_with(&format!("| {id} |"))) else {
            continue;
        };
        let arrow = match d.as_deref() {
            Some("rising") => "↗",
            Some("falling") => "↘",
            Some("flat") => "→",
            _ => "—",
        };
        let trend_cell = row.split(" | ").nth(5).unwrap();
        assert!(trend_cell.starts_with(arrow), "{id} {d:?}: {row}");
    }
}

#[test]
fn report_markdown_snapshot_and_a_self_contained_html() {
    let (_tmp, ws) = workspace_with(600);
    let md = ws.join("r.md");
    ok(verbatim(&ws)
        .args(["report", "--by", "topic", "--quotes", "2", "--out"])
        .arg(&md));
    let text = std::fs::read_to_string(&md).unwrap();
    insta::assert_snapshot!("report_markdown", text);
    let html = ws.join("r.html");
    ok(verbatim(&ws)
        .args(["report", "--by", "topic", "--out"])
        .arg(&html));
    let h = std::fs::read_to_string(&html).unwrap();
    assert!(h.contains("<svg"));
    // A bare file name writes into the current folder (its parent is "", not a folder to open).
    ok(verbatim(&ws)
        .current_dir(&ws)
        .args(["report", "--by", "topic", "--out", "bare.html"]));
    assert_eq!(std::fs::read_to_string(ws.join("bare.html")).unwrap(), h);
    for bad in ["http://", "https://", "<script", "<link", "@import", "url("] {
        assert!(!h.contains(bad), "{bad} in the report");
    }
    // --compare-to marks changes against an earlier report.
    let json1 = ws.join("r1.json");
    ok(verbatim(&ws)
        .args(["report", "--by", "topic", "--out"])
        .arg(&json1));
    let json2 = ws.join("r2.json");
    ok(verbatim(&ws)
        .args(["report", "--by", "topic", "--out"])
        .arg(&json2)
        .arg("--compare-to")
        .arg(&json1));
    let r2 = json(&std::fs::read_to_string(&json2).unwrap());
    for t in r2["themes"].as_array().unwrap() {
        assert_eq!(t["change"], "stable");
    }
    // A bad --compare-to is named.
    let o = run(verbatim(&ws)
        .args(["report", "--by", "topic", "--out"])
        .arg(ws.join("x.json"))
        .arg("--compare-to")
        .arg(&md));
    assert!(stderr(&o).contains("--compare-to"), "{}", stderr(&o));
    // Rendered by Chromium when the machine has it (scripts/screenshot-report.sh).
    if which("chromium").is_some() {
        let png = ws.join("r.png");
        let o = std::process::Command::new("bash")
            .arg(crate::common::repo().join("scripts/screenshot-report.sh"))
            .arg(&html)
            .arg(&png)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(std::fs::metadata(&png).unwrap().len() > 20_000);
    }
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|f| f.is_file())
    })
}

#[test]
fn a_verbatim_that_speaks_of_two_things_gets_a_second_theme() {
    let (tmp, ws) = workspace_with(600);
    // Each joins a restaurant sentence and a film sentence (both from the fixture's domains).
    let two = tmp.path().join("two.csv");
    std::fs::write(
        &two,
        "id,text,date,nps,country,domain\n\
         m1,\"The waiter was rude and the steak was cold when it finally arrived. Afterwards we watched the movie and the acting was wooden and the plot made no sense.\",2024-06-01,3,FR,mixed\n\
         m2,\"This film had a beautiful script and the actors were brilliant throughout. Then dinner at the restaurant was lovely, the food was fresh and the service friendly.\",2024-06-02,9,DE,mixed\n\
         m3,\"The phone battery died after two hours and the charger broke. Later the pizza we ordered at the restaurant was burnt and the staff ignored us.\",2024-06-03,2,UK,mixed\n",
    )
    .unwrap();
    ingest(&ws, &two);
    let lines = ok(verbatim(&ws).args(["themes", "assignments", "--by", "topic"]));
    let mixed: Vec<serde_json::Value> = lines
        .lines()
        .map(json)
        .filter(|v| v["id"].as_str().unwrap().starts_with('m'))
        .collect();
    assert_eq!(mixed.len(), 3);
    let with_second = mixed.iter().filter(|v| !v["second"].is_null()).count();
    assert!(with_second >= 2, "{mixed:?}");
    for v in &mixed {
        assert_ne!(v["second"], v["theme"]);
    }
    // Single-sentence verbatims never get one.
    for l in lines.lines().map(json) {
        if l["id"].as_str().unwrap().starts_with("uci-") && !l["second"].is_null() {
            let id = l["id"].as_str().unwrap();
            let text = std::fs::read_to_string(fixture("uci_600.csv")).unwrap();
            let row = text
                .lines()
                .find(|r| r.starts_with(&format!("{id},")))
                .unwrap()
                .to_string();
            assert!(
                verbatim::themes::sentences::split(&row).len() > 1,
                "{id} has one sentence but a second theme"
            );
        }
    }
}

#[test]
fn a_report_re_made_from_its_manifest_has_the_same_bytes() {
    let (_tmp, ws) = workspace_with(300);
    let first = ws.join("first.html");
    ok(verbatim(&ws)
        .args([
            "report",
            "--by",
            "topic",
            "--k",
            "6",
            "--min-size",
            "4",
            "--seed",
            "7",
            "--quotes",
            "2",
            "--where",
            "domain=AMAZON",
            "--where",
            "domain=Imdb",
            "--title",
            "Q4 <reviews>",
            "--out",
        ])
        .arg(&first));
    let html = std::fs::read_to_string(&first).unwrap();
    // Every parameter that changes the output is in the manifest, the filter as it ran.
    let m = verbatim::themes::report::read_manifest(&html).expect("a manifest in the footer");
    let p = &m.parameters;
    assert_eq!(p["run"]["k"], 6, "{p}");
    assert_eq!(p["run"]["min_size"], 4);
    assert_eq!(p["run"]["seed"], 7);
    assert_eq!(p["quotes"], 2);
    assert_eq!(p["title"], "Q4 <reviews>");
    assert_eq!(
        p["filter"]["fields"]["domain"],
        serde_json::json!(["amazon", "imdb"])
    );
    assert_eq!(p["theme_edits"].as_str().unwrap().len(), 64);
    assert_eq!(p["theme_run"].as_str().unwrap().len(), 64);
    // Re-made from the manifest, in the same format: the same bytes.
    let again = ws.join("again.html");
    let o = run(verbatim(&ws)
        .args(["report", "--from-manifest"])
        .arg(&first)
        .arg("--out")
        .arg(&again));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("same data snapshot"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&again).unwrap()
    );
    // Through the other formats' manifests too: html → json → md → html.
    let j = ws.join("again.json");
    ok(verbatim(&ws)
        .args(["report", "--from-manifest"])
        .arg(&first)
        .arg("--out")
        .arg(&j));
    let md = ws.join("again.md");
    ok(verbatim(&ws)
        .args(["report", "--from-manifest"])
        .arg(&j)
        .arg("--out")
        .arg(&md));
    let back = ws.join("back.html");
    ok(verbatim(&ws)
        .args(["report", "--from-manifest"])
        .arg(&md)
        .arg("--out")
        .arg(&back));
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&back).unwrap()
    );
    // Flags the manifest gives are refused beside it.
    let o = run(verbatim(&ws)
        .args(["report", "--k", "5", "--from-manifest"])
        .arg(&first)
        .arg("--out")
        .arg(ws.join("x.html")));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A theme edit since: the report is still made, what differs is said, exit 1.
    let v = json(&ok(verbatim(&ws).args([
        "themes",
        "--by",
        "topic",
        "--json",
        "--k",
        "6",
        "--min-size",
        "4",
        "--seed",
        "7",
    ])));
    let id = v["themes"][0]["id"].as_str().unwrap().to_string();
    ok(verbatim(&ws).args(["themes", "rename", &id, "Renamed since"]));
    let o = run(verbatim(&ws)
        .args(["report", "--from-manifest"])
        .arg(&first)
        .arg("--out")
        .arg(ws.join("third.html")));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("theme edits"), "{}", stderr(&o));
}

/// `themes` opens with what to fix first (snapshot): the problem themes by priority, with the
/// effect in points of mean score and the formula under them; `--json`, the report's JSON and
/// its HTML list the same themes in the same order, and the low-scored yelp themes lead.
#[test]
fn themes_and_the_report_open_with_what_to_fix_first() {
    let (_tmp, ws) = workspace_with(600);
    let table = ok(verbatim(&ws).args(["themes", "--by", "topic"]));
    let block: Vec<&str> = table
        .lines()
        .take_while(|l| !l.starts_with("id "))
        .collect();
    insta::assert_snapshot!("themes_what_to_fix_first", block.join("\n"));
    assert_eq!(block[0], "What to fix first:");
    assert!(block
        .iter()
        .any(|l| l.contains("priority = share of verbatims")));
    let v = json(&ok(
        verbatim(&ws).args(["themes", "--by", "topic", "--json"])
    ));
    let p = v["priorities"].as_array().unwrap();
    assert!(!p.is_empty(), "{v}");
    let ids: Vec<&str> = p.iter().map(|x| x["id"].as_str().unwrap()).collect();
    for w in p.windows(2) {
        assert!(
            w[0]["priority"].as_f64() >= w[1]["priority"].as_f64(),
            "{p:?}"
        );
    }
    // Each listed theme is negative or pulls the score down; the first is a low-scored one.
    let themes = v["themes"].as_array().unwrap();
    let by_id = |id: &str| themes.iter().find(|t| t["id"] == id).unwrap();
    assert!(p[0]["effect"].as_f64().unwrap() < 0.0, "{}", p[0]);
    for id in &ids {
        let s = &by_id(id)["sentiment"];
        assert!(s["negative"].as_u64().unwrap() > 0, "{id}: {s}");
    }
    // Praise (mostly positive, lifting the score) is never listed.
    for t in themes {
        let s = &t["sentiment"];
        let (pos, neg) = (
            s["positive"].as_u64().unwrap(),
            s["negative"].as_u64().unwrap(),
        );
        if pos > 3 * neg && t["score"]["impact"].as_f64().unwrap_or(0.0) < 0.0 {
            assert!(!ids.contains(&t["id"].as_str().unwrap()), "{t}");
        }
    }
    assert!(block[1].contains(ids[0]) && block[1].contains("points of mean score (2–10)"));
    // A mostly negative theme leads with a negative quote.
    let mut led = 0;
    for t in themes {
        let s = &t["sentiment"];
        if s["negative"].as_u64() > s["positive"].as_u64() {
            let q = &t["quotes"][0];
            let polarity = q["highlight"]["sentiment"]
                .as_str()
                .or(q["sentiment"].as_str());
            assert_eq!(polarity, Some("negative"), "{}: {q}", t["id"]);
            led += 1;
        }
    }
    assert!(led > 0, "no mostly negative theme: {v}");
    let out = ws.join("r.json");
    ok(verbatim(&ws)
        .args(["report", "--by", "topic", "--out"])
        .arg(&out));
    let r = json(&std::fs::read_to_string(&out).unwrap());
    let report_ids: Vec<&str> = r["priorities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(report_ids, ids);
    let html = ws.join("r.html");
    ok(verbatim(&ws)
        .args(["report", "--by", "topic", "--out"])
        .arg(&html));
    let h = std::fs::read_to_string(&html).unwrap();
    let fix = h.find("<h2>What to fix first</h2>").unwrap();
    assert!(fix < h.find("<h2>Overview</h2>").unwrap());
    assert!(h[fix..].contains(&format!("<span class=\"tid\">{}</span>", ids[0])));
}

// ---- The aspect tree (issue 14): `themes` by aspect, on opinion units. ----

/// A workspace with the 88 food reviews ingested (dated).
fn food_ws() -> (tempfile::TempDir, PathBuf) {
    let (tmp, ws) = workspace_in_tmp();
    ok(verbatim(&ws)
        .args(["ingest", "--text", "text", "--id", "id", "--date", "date"])
        .arg(fixture("food_reviews_88.csv")));
    (tmp, ws)
}

/// `themes --json` (by aspect, the default).
fn tree(ws: &Path) -> serde_json::Value {
    json(&ok(verbatim(ws).args(["themes", "--json"])))
}

/// Every node of a tree summary: id → (label, verbatims, parent).
fn nodes(t: &serde_json::Value) -> BTreeMap<String, (String, u64, Option<String>)> {
    let mut out = BTreeMap::new();
    for p in t["parents"].as_array().unwrap() {
        let pid = p["id"].as_str().unwrap().to_string();
        out.insert(
            pid.clone(),
            (
                p["label"].as_str().unwrap().to_string(),
                p["verbatims"].as_u64().unwrap(),
                None,
            ),
        );
        for c in p["children"].as_array().unwrap() {
            out.insert(
                c["id"].as_str().unwrap().to_string(),
                (
                    c["label"].as_str().unwrap().to_string(),
                    c["verbatims"].as_u64().unwrap(),
                    Some(pid.clone()),
                ),
            );
        }
    }
    out
}

fn unit_rows(ws: &Path) -> Vec<serde_json::Value> {
    ok(verbatim(ws).args(["themes", "assignments"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn fixture_texts() -> BTreeMap<String, String> {
    let mut rdr = csv::Reader::from_path(fixture("food_reviews_88.csv")).unwrap();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string())
        })
        .collect()
}

#[test]
fn aspect_tree_counts_verbatims_in_every_theme_of_their_units() {
    let (_t, ws) = food_ws();
    let t = tree(&ws);
    assert_eq!(t["share_of"], "verbatims");
    assert_eq!(t["verbatims"], 88);
    let rows = unit_rows(&ws);
    // Rows slice the text exactly, and say where each unit went.
    let texts = fixture_texts();
    let mut units_of: BTreeMap<String, Vec<&serde_json::Value>> = BTreeMap::new();
    for r in &rows {
        let text = &texts[r["id"].as_str().unwrap()];
        let (s, e) = (
            r["start"].as_u64().unwrap() as usize,
            r["end"].as_u64().unwrap() as usize,
        );
        assert!(s < e && e <= text.len() && text.is_char_boundary(s) && text.is_char_boundary(e));
        assert!(["positive", "neutral", "negative"].contains(&r["sentiment"].as_str().unwrap()));
        units_of
            .entry(r["id"].as_str().unwrap().to_string())
            .or_default()
            .push(r);
    }
    // "Great taste but arrived crushed"-style reviews are two units.
    assert!(
        units_of.values().filter(|u| u.len() == 2).count() >= 30,
        "{units_of:?}"
    );
    // Each node's verbatims: the distinct verbatims with a unit in it (not units).
    let mut per_node: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        for key in ["theme", "parent"] {
            if let Some(n) = r[key].as_str() {
                per_node
                    .entry(n.into())
                    .or_default()
                    .insert(r["id"].as_str().unwrap().into());
            }
        }
    }
    let ns = nodes(&t);
    assert!(ns.keys().any(|k| k.starts_with('P')) && ns.keys().any(|k| k.starts_with('C')));
    for (id, (_, verbatims, _)) in &ns {
        assert_eq!(per_node[id].len() as u64, *verbatims, "{id}");
    }
    // A two-unit verbatim whose units went to two parents counts in both.
    let split = units_of
        .iter()
        .find(|(_, u)| {
            u.len() == 2
                && u[0]["parent"].is_string()
                && u[1]["parent"].is_string()
                && u[0]["parent"] != u[1]["parent"]
        })
        .map(|(id, u)| {
            (
                id.clone(),
                u[0]["parent"].as_str().unwrap(),
                u[1]["parent"].as_str().unwrap(),
            )
        })
        .expect("some mixed review spans two aspects");
    assert!(per_node[split.1].contains(&split.0) && per_node[split.2].contains(&split.0));
    // So parent shares add up to more than the verbatims placed.
    let parents: u64 = t["parents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["verbatims"].as_u64().unwrap())
        .sum();
    assert!(parents > 88 - t["other"].as_u64().unwrap(), "{parents}");
    let p0 = &t["parents"][0];
    let share = p0["share_of_verbatims"].as_f64().unwrap();
    assert!((share - p0["verbatims"].as_f64().unwrap() / 88.0).abs() < 1e-9);
    // `themes show` lists the node's units with verbatim id, span, sentiment and text.
    let show = json(&ok(
        verbatim(&ws).args(["themes", "show", split.1, "--json"])
    ));
    let listed: BTreeSet<&str> = show["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert!(listed.contains(split.0.as_str()));
    for u in show["units"].as_array().unwrap() {
        let text = &texts[u["id"].as_str().unwrap()];
        let (s, e) = (
            u["start"].as_u64().unwrap() as usize,
            u["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(u["text"].as_str().unwrap(), &text[s..e]);
    }
    // Negation: "not damaged" is not read as a complaint.
    let negated = rows
        .iter()
        .find(|r| {
            let text = &texts[r["id"].as_str().unwrap()];
            text[r["start"].as_u64().unwrap() as usize..r["end"].as_u64().unwrap() as usize]
                .contains("not damaged")
        })
        .expect("the negated unit");
    assert_ne!(negated["sentiment"], "negative", "{negated}");
}

#[test]
fn aspect_tree_ids_and_edits_survive_reruns_and_ingests() {
    let (_t, ws) = food_ws();
    let first = nodes(&tree(&ws));
    // Same data: the stored tree, same ids; a forced rebuild too.
    assert_eq!(nodes(&tree(&ws)), first);
    let again = nodes(&json(&ok(verbatim(&ws).args([
        "themes",
        "--json",
        "--refresh",
    ]))));
    assert_eq!(
        again.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
    // Edits at both levels: a child moves to another parent; that parent and the child are
    // renamed.
    let parents: Vec<String> = first
        .keys()
        .filter(|k| k.starts_with('P'))
        .cloned()
        .collect();
    let (p_a, p_b, p_c) = (parents[0].clone(), parents[1].clone(), parents[2].clone());
    let child_of_a = first
        .iter()
        .find(|(k, v)| k.starts_with('C') && v.2.as_deref() == Some(p_a.as_str()))
        .map(|(k, _)| k.clone())
        .unwrap();
    ok(verbatim(&ws).args(["themes", "rename", &p_b, "Our aspect"]));
    ok(verbatim(&ws).args(["themes", "rename", &child_of_a, "Our child"]));
    ok(verbatim(&ws).args(["themes", "move", &child_of_a, "--to", &p_b]));
    let edited = nodes(&tree(&ws));
    assert_eq!(edited[&p_b].0, "Our aspect");
    assert_eq!(edited[&child_of_a].0, "Our child");
    assert_eq!(edited[&child_of_a].2.as_deref(), Some(p_b.as_str()));
    // Recorded in the trail.
    let trail: Vec<serde_json::Value> =
        serde_json::from_str(&ok(verbatim(&ws).args(["audit", "show", "--json"]))).unwrap();
    let kinds: Vec<&str> = trail
        .iter()
        .filter_map(|e| e["detail"]["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"theme_rename"), "{kinds:?}");
    let moved = trail
        .iter()
        .find(|e| e["detail"]["kind"] == "theme_move")
        .expect("the move is in the trail");
    assert_eq!(moved["detail"]["child"], child_of_a.as_str());
    assert_eq!(moved["detail"]["to"], p_b.as_str());
    // An incremental ingest (new reviews): ids that match keep them, edits stay.
    let extra = ws.join("extra.csv");
    std::fs::write(
        &extra,
        "id,text,date\nx1,Great taste but arrived crushed.,2025-06-20\nx2,Delivery was fast.,2025-06-21\nx3,Way too expensive.,2025-06-22\n",
    )
    .unwrap();
    ok(verbatim(&ws)
        .args(["ingest", "--text", "text", "--id", "id", "--date", "date"])
        .arg(&extra));
    let after = nodes(&tree(&ws));
    assert_eq!(
        after.get(&p_b).map(|x| x.0.as_str()),
        Some("Our aspect"),
        "{after:?}"
    );
    assert_eq!(
        after.get(&child_of_a).map(|x| x.0.as_str()),
        Some("Our child"),
        "{after:?}"
    );
    assert_eq!(
        after.get(&child_of_a).and_then(|x| x.2.as_deref()),
        Some(p_b.as_str())
    );
    let kept = edited.keys().filter(|k| after.contains_key(*k)).count();
    assert!(kept * 10 >= edited.len() * 8, "{edited:?} -> {after:?}");
    // Merging two parents: the merged one is gone, its children follow the kept one.
    let children_of_c: Vec<String> = after
        .iter()
        .filter(|(_, v)| v.2.as_deref() == Some(p_c.as_str()))
        .map(|(k, _)| k.clone())
        .collect();
    ok(verbatim(&ws).args(["themes", "merge", &p_b, &p_c]));
    let merged = nodes(&tree(&ws));
    assert!(!merged.contains_key(&p_c), "{merged:?}");
    for c in &children_of_c {
        assert_eq!(
            merged.get(c).and_then(|x| x.2.as_deref()),
            Some(p_b.as_str()),
            "{c}: {merged:?}"
        );
    }
    assert_eq!(merged[&child_of_a].2.as_deref(), Some(p_b.as_str()));
    let o = run(verbatim(&ws).args(["themes", "show", &p_c]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("merged into {p_b}")),
        "{}",
        stderr(&o)
    );
}

/// Parents are aspects the units name (not products or nouns that happen to be frequent),
/// children what is said, each of one sentiment: "Taste › bland" apart from "Taste › wonderful".
#[test]
fn aspect_tree_parents_are_aspects_and_children_what_is_said() {
    let (_t, ws) = food_ws();
    let t = tree(&ws);
    let parents: BTreeSet<String> = t["parents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap().to_string())
        .collect();
    for aspect in ["Delivery", "Price", "Taste", "Packaging"] {
        assert!(parents.contains(aspect), "{aspect} missing: {parents:?}");
    }
    let negative = |n: &serde_json::Value| n["negative"].as_f64().unwrap();
    let taste = t["parents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["label"] == "Taste")
        .unwrap();
    let kids = taste["children"].as_array().unwrap();
    // Complaints and praise of the taste are different children.
    let bland = kids
        .iter()
        .find(|c| c["label"].as_str().unwrap().contains("bland"))
        .unwrap_or_else(|| panic!("no 'bland' child: {taste}"));
    assert!(negative(bland) >= 0.9, "{bland}");
    assert!(kids.iter().any(|c| negative(c) <= 0.1), "{taste}");
    // Every child of some size is mostly complaints or mostly not.
    for p in t["parents"].as_array().unwrap() {
        for c in p["children"].as_array().unwrap() {
            if c["verbatims"].as_u64().unwrap() >= 8 {
                assert!(negative(c) >= 0.6 || negative(c) <= 0.25, "{c}");
            }
        }
    }
    // "Arrived crushed." names no aspect word of delivery alone, yet lands in an aspect.
    let rows = unit_rows(&ws);
    let crushed = rows.iter().find(|r| r["id"] == "r022").unwrap();
    let ns = nodes(&t);
    let parent = &ns[crushed["parent"].as_str().unwrap()].0;
    assert!(
        ["Packaging", "Delivery"].contains(&parent.as_str()),
        "{crushed}"
    );
    // What to fix first ranks children of aspects only.
    for x in t["priorities"].as_array().unwrap() {
        assert_ne!(x["parent_label"], "General", "{x}");
    }
}

#[test]
fn aspect_tree_printed() {
    let (_t, ws) = food_ws();
    let out = ok(verbatim(&ws).args(["themes"]));
    // Parent rows, children indented under them; labels depend on the model, so the snapshot
    // keeps the layout: ids, the indentation and the numbers.
    let shape: String = out
        .lines()
        .map(|l| {
            let id = l.split_whitespace().next().unwrap_or("");
            let indented = l.get(8..10) == Some("  ");
            format!(
                "{} {}\n",
                if id.starts_with('C') { "  child" } else { id },
                indented
            )
        })
        .collect();
    // What to fix first comes first; the tree's table follows under its header.
    assert_eq!(out.lines().next(), Some("What to fix first:"));
    let header = out.lines().find(|l| l.starts_with("id ")).unwrap();
    assert!(header.contains("% of verbatims"));
    insta::assert_snapshot!("aspect_tree_header", header);
    assert!(
        shape.lines().any(|l| l.starts_with("  child true")),
        "{out}"
    );
}

#[test]
fn aspect_tree_http_parity_and_marketing_suppression() {
    use crate::server::{roomy, Served};
    use verbatim::store::Role;
    let mut served = Served::start(true, roomy(), None);
    let (st, api) = served.call("GET", "/v1/themes", Role::Analyst, None);
    assert_eq!(st, 200, "{api}");
    assert_eq!(api["share_of"], "verbatims");
    let id = api["parents"][0]["id"].as_str().unwrap().to_string();
    let (st, node) = served.call("GET", &format!("/v1/themes/{id}"), Role::Analyst, None);
    assert_eq!(st, 200, "{node}");
    assert!(node["units"].as_array().is_some_and(|u| !u.is_empty()));
    // Marketing: aggregates only, every cell at least k (5) verbatims and units, no unit text.
    let (st, m) = served.call("GET", "/v1/themes", Role::Marketing, None);
    assert_eq!(st, 200, "{m}");
    for p in m["parents"].as_array().unwrap() {
        for n in std::iter::once(p).chain(p["children"].as_array().into_iter().flatten()) {
            assert!(
                n["verbatims"].as_u64().unwrap() >= 5 && n["units"].as_u64().unwrap() >= 5,
                "{n}"
            );
        }
    }
    let (_, mn) = served.call("GET", &format!("/v1/themes/{id}"), Role::Marketing, None);
    assert!(mn["units"].as_array().is_none_or(|u| u.is_empty()), "{mn}");
    // The CLI on the same workspace (the stored tree) answers the same.
    served.server.take().unwrap().shutdown();
    let ws = served.dir.path();
    let cli = tree(ws);
    assert_eq!(api["parents"], cli["parents"]);
    let show = json(&ok(verbatim(ws).args(["themes", "show", &id, "--json"])));
    assert_eq!(node, show);
}

#[test]
fn aspect_tree_migrates_an_old_workspace() {
    // A schema v5 workspace (before units and the tree): `themes` migrates it to v10 and stores
    // the tree.
    let (_tmp, ws) = v5_workspace();
    let t = tree(&ws);
    assert!(!t["parents"].as_array().unwrap().is_empty(), "{t}");
    let c = rusqlite::Connection::open(ws.join("store.sqlite")).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(v >= 10, "{v}");
    let (nodes, units): (i64, i64) = c
        .query_row(
            "SELECT (SELECT count(*) FROM aspect_nodes), (SELECT count(*) FROM aspect_units)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(nodes >= 2 && units > 0, "{nodes} {units}");
}

/// The verbatims of every node from the unit rows: node id → verbatim ids.
fn node_docs(rows: &[serde_json::Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut per_node: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rows {
        for key in ["theme", "parent"] {
            if let Some(n) = r[key].as_str() {
                per_node
                    .entry(n.into())
                    .or_default()
                    .insert(r["id"].as_str().unwrap().into());
            }
        }
    }
    per_node
}

/// `themes` by aspect opens with what to fix first: children ranked by priority (volume ×
/// negativity, no score here), each with its parent, in the text and the JSON alike.
#[test]
fn aspect_tree_opens_with_what_to_fix_first() {
    let (_t, ws) = food_ws();
    let t = tree(&ws);
    let ns = nodes(&t);
    let p = t["priorities"].as_array().unwrap();
    assert!(!p.is_empty(), "{t}");
    assert!(t["formula"].as_str().unwrap().starts_with("priority ="));
    for w in p.windows(2) {
        assert!(
            w[0]["priority"].as_f64() >= w[1]["priority"].as_f64(),
            "{p:?}"
        );
    }
    for x in p {
        let id = x["id"].as_str().unwrap();
        assert!(id.starts_with('C'), "only children are ranked: {x}");
        let parent = x["parent"].as_str().unwrap();
        assert_eq!(ns[id].2.as_deref(), Some(parent), "{x}");
        assert_eq!(x["parent_label"].as_str().unwrap(), ns[parent].0, "{x}");
        // No score in this fixture: no effect, the priority is share × negative.
        assert!(x.get("effect").is_none(), "{x}");
        let want = x["share"].as_f64().unwrap() * x["negative"].as_f64().unwrap();
        assert!((x["priority"].as_f64().unwrap() - want).abs() < 1e-4, "{x}");
    }
    // The top problem is mostly negative (a complaint, not praise).
    assert!(p[0]["negative"].as_f64().unwrap() >= 0.5, "{}", p[0]);
    let out = ok(verbatim(&ws).args(["themes"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "What to fix first:");
    assert!(lines[1].contains(p[0]["id"].as_str().unwrap()) && lines[1].contains('›'));
    assert!(out.contains("priority = share of verbatims"));
    // The tree's trend words are the one rule's.
    for n in t["parents"].as_array().unwrap() {
        assert!(
            ["rising", "falling", "flat", "-"].contains(&n["trend"].as_str().unwrap()),
            "{n}"
        );
    }
}

/// The report on the tree (the default): Markdown and JSON snapshots on the food fixture; the
/// HTML has the tree, the priority chart and one collapsed line per child with every unit
/// marked inside its verbatim; the same data gives the same bytes.
#[test]
fn aspect_tree_report_snapshots_and_a_collapsed_html() {
    let (_t, ws) = food_ws();
    let report = |name: &str| {
        let out = ws.join(name);
        ok(verbatim(&ws)
            .args(["report", "--quotes", "2", "--out"])
            .arg(&out));
        std::fs::read_to_string(out).unwrap()
    };
    let md = report("r.md");
    insta::assert_snapshot!("aspect_report_markdown", md);
    let js = report("r.json");
    insta::assert_snapshot!("aspect_report_json", js);
    let r = json(&js);
    assert_eq!(r["tree"], true);
    assert_eq!(r["manifest"]["parameters"]["by"], "aspect");
    // Every unit of every child is in the drill-down, and only there once.
    let rows = unit_rows(&ws);
    let per_node = node_docs(&rows);
    let mut children = 0;
    for t in r["themes"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        assert_eq!(
            t["size"].as_u64().unwrap() as usize,
            per_node[id].len(),
            "{id}"
        );
        if t["parent"].is_string() {
            children += 1;
            let units = t["units"].as_array().unwrap();
            let want = rows.iter().filter(|u| u["theme"] == id).count();
            assert_eq!(units.len(), want, "{id}");
            for u in units {
                let h = &u["highlight"];
                let text = u["text"].as_str().unwrap();
                let (s, e) = (
                    h["start"].as_u64().unwrap() as usize,
                    h["end"].as_u64().unwrap() as usize,
                );
                assert!(s < e && e <= text.len(), "{u}");
            }
        }
    }
    let html = report("r.html");
    assert!(html.contains("<h2>The tree</h2>") && html.contains("id=\"chart-priority\""));
    assert_eq!(html.matches("<details class=\"node\"").count(), children);
    assert!(
        html.matches("<mark>").count() >= rows.iter().filter(|u| u["theme"].is_string()).count()
    );
    for bad in ["<script", "http://", "https://", "url("] {
        assert!(!html.contains(bad), "{bad}");
    }
    // Same data, same bytes.
    assert_eq!(report("r.html"), html);
    // `--by topic` keeps the topic report.
    let topic = ws.join("t.json");
    ok(verbatim(&ws)
        .args(["report", "--by", "topic", "--out"])
        .arg(&topic));
    let t = json(&std::fs::read_to_string(&topic).unwrap());
    assert!(t.get("tree").is_none());
    assert!(t["themes"][0]["id"].as_str().unwrap().starts_with('T'));
    // --k belongs to the topic view.
    let o = run(verbatim(&ws)
        .args(["report", "--k", "3", "--out"])
        .arg(ws.join("x.md")));
    assert!(
        !o.status.success() && stderr(&o).contains("--by topic"),
        "{}",
        stderr(&o)
    );
}

/// `--where theme=C12` keeps the verbatims with a unit in the child; `theme=P3` those with a
/// unit in any of the parent's children; in search and in `themes` alike; an unknown id is named.
#[test]
fn aspect_tree_ids_filter_search_and_themes() {
    let (_t, ws) = food_ws();
    let t = tree(&ws);
    let per_node = node_docs(&unit_rows(&ws));
    let ns = nodes(&t);
    let (child, (_, _, parent)) = ns
        .iter()
        .filter(|(k, v)| k.starts_with('C') && v.1 >= 3)
        .max_by_key(|(_, v)| v.1)
        .unwrap();
    let parent = parent.clone().unwrap();
    let hits = |id: &str| -> BTreeSet<String> {
        let v = json(&ok(verbatim(&ws).args([
            "search",
            "food",
            "--mode",
            "vector",
            "--limit",
            "200",
            "--where",
            &format!("theme={id}"),
            "--json",
        ])));
        v["hits"]
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
            .collect()
    };
    assert_eq!(hits(child), per_node[child]);
    assert_eq!(hits(&parent), per_node[&parent]);
    // A parent is any of its children.
    let union: BTreeSet<String> = ns
        .iter()
        .filter(|(_, v)| v.2.as_deref() == Some(parent.as_str()))
        .flat_map(|(k, _)| per_node[k].iter().cloned())
        .collect();
    assert_eq!(per_node[&parent], union);
    // With another field: AND; lower case ids read too.
    let scoped = json(&ok(verbatim(&ws).args([
        "themes",
        "--json",
        "--where",
        &format!("theme={}", child.to_lowercase()),
    ])));
    assert_eq!(
        scoped["verbatims"].as_u64().unwrap() as usize,
        per_node[child].len()
    );
    let o = run(verbatim(&ws).args(["search", "food", "--where", "theme=C999"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("C999") && stderr(&o).contains("no such theme"),
        "{}",
        stderr(&o)
    );
}

/// `themes seed` by aspect: the seed becomes a child under the parent its units fall in, takes
/// the units that read like its examples, is audited, and stays across re-runs and ingests.
#[test]
fn aspect_tree_seed_becomes_a_child_and_survives_reruns_and_ingests() {
    let (_t, ws) = food_ws();
    tree(&ws);
    let out = ok(verbatim(&ws).args([
        "themes",
        "seed",
        "Crushed in transit",
        "--example",
        "arrived crushed",
        "--example",
        "the box arrived crushed",
    ]));
    assert!(out.contains("seeded"), "{out}");
    let find = |t: &serde_json::Value| {
        nodes(t)
            .into_iter()
            .find(|(_, v)| v.0 == "Crushed in transit")
            .unwrap_or_else(|| panic!("no seeded child: {t}"))
    };
    let (id, (_, verbatims, parent)) = find(&tree(&ws));
    assert!(
        id.starts_with('C') && parent.is_some() && verbatims >= 2,
        "{id} {verbatims}"
    );
    let texts = fixture_texts();
    let rows = unit_rows(&ws);
    let crushed: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| {
            let t = &texts[r["id"].as_str().unwrap()];
            t[r["start"].as_u64().unwrap() as usize..r["end"].as_u64().unwrap() as usize]
                .to_lowercase()
                .starts_with("arrived crushed")
        })
        .collect();
    assert!(!crushed.is_empty());
    for r in &crushed {
        assert_eq!(r["theme"], id.as_str(), "{r}");
    }
    // Audited.
    let trail: Vec<serde_json::Value> =
        serde_json::from_str(&ok(verbatim(&ws).args(["audit", "show", "--json"]))).unwrap();
    let seed = trail
        .iter()
        .find(|e| e["detail"]["kind"] == "theme_seed")
        .expect("the seed is in the trail");
    assert_eq!(seed["detail"]["theme_ids"][0], id.as_str());
    // A forced rebuild and an ingest keep it (same id, same parent unless moved).
    let again = json(&ok(verbatim(&ws).args(["themes", "--json", "--refresh"])));
    assert_eq!(find(&again).0, id);
    let extra = ws.join("extra.csv");
    std::fs::write(
        &extra,
        "id,text,date\nx9,Arrived crushed again.,2025-06-25\n",
    )
    .unwrap();
    ok(verbatim(&ws)
        .args(["ingest", "--text", "text", "--id", "id", "--date", "date"])
        .arg(&extra));
    assert_eq!(find(&tree(&ws)).0, id);
    let x9: Vec<serde_json::Value> = unit_rows(&ws)
        .into_iter()
        .filter(|r| r["id"] == "x9")
        .collect();
    assert_eq!(x9[0]["theme"], id.as_str(), "{x9:?}");
    // --parent belongs to the tree.
    let o = run(verbatim(&ws).args([
        "themes",
        "seed",
        "x",
        "--example",
        "y",
        "--by",
        "topic",
        "--parent",
        "P1",
    ]));
    assert!(!o.status.success());
}

/// Over HTTP: `GET /v1/themes` opens with the priorities, `POST /v1/search` takes a tree id in
/// `where`, `POST /v1/report` is the tree report (units for an analyst; aggregates only and
/// nodes ≥ k for marketing), `by=topic` the topic one.
#[test]
fn aspect_tree_report_and_filters_over_http() {
    use crate::server::{roomy, Served};
    use verbatim::store::Role;
    let served = Served::start(true, roomy(), None);
    let (st, api) = served.call("GET", "/v1/themes", Role::Analyst, None);
    assert_eq!(st, 200, "{api}");
    assert!(
        api["priorities"].as_array().is_some_and(|p| !p.is_empty()),
        "{api}"
    );
    let child = &api["parents"][0]["children"][0];
    let id = child["id"].as_str().unwrap();
    let q = serde_json::json!({
        "query": "good", "mode": "vector", "limit": 1000, "where": { "theme": id },
    });
    let (st, v) = served.call("POST", "/v1/search", Role::Analyst, Some(&q));
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["hits"].as_array().unwrap().len() as u64,
        child["verbatims"].as_u64().unwrap(),
        "{v}"
    );
    let bad = serde_json::json!({ "query": "good", "where": { "theme": "P999" } });
    let (st, v) = served.call("POST", "/v1/search", Role::Analyst, Some(&bad));
    assert_eq!(st, 400, "{v}");
    let (st, r) = served.call("POST", "/v1/report", Role::Analyst, None);
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["tree"], true);
    assert!(r["themes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["units"].as_array().is_some_and(|u| !u.is_empty())));
    let (st, m) = served.call("POST", "/v1/report", Role::Marketing, None);
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["tree"], true);
    for t in m["themes"].as_array().unwrap() {
        assert!(
            t.get("units").is_none() && t["quotes"].as_array().unwrap().is_empty(),
            "{t}"
        );
        assert!(t["size"].as_u64().unwrap() >= 5, "{t}");
    }
    let (st, t) = served.call("POST", "/v1/report?by=topic", Role::Analyst, None);
    assert_eq!(st, 200, "{t}");
    assert!(t.get("tree").is_none());
}
