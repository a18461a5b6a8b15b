//! Least privilege through the CLI: the role × command matrix (every cell), marketing's
//! aggregates-only output checked against every verbatim of a canary corpus, and a consultant's
//! scope and expiry.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Output;

use crate::common::{demo_csv, fixture, json, ok, run, stderr, stdout, verbatim, DEMO_MAPPING};

const ROLES: [&str; 5] = ["admin", "analyst", "support", "marketing", "consultant"];

/// A workspace with the demo feedback (30 rows, FR / US / BE, respondents' emails) and one
/// token per role; the consultant is scoped to country=FR.
fn setup(dir: &Path) -> BTreeMap<&'static str, String> {
    ok(verbatim(dir).arg("init").arg(dir));
    ingest_demo(dir, None);
    let mut tokens = BTreeMap::new();
    for role in ROLES {
        let name = format!("{role}-1");
        let out = if role == "consultant" {
            ok(verbatim(dir).args([
                "grant",
                "add",
                &name,
                "--role",
                role,
                "--expires",
                "2099-12-31",
                "--where",
                "country=FR",
            ]))
        } else {
            ok(verbatim(dir).args(["user", "add", &name, "--role", role]))
        };
        let token = out.trim().to_string();
        assert!(token.starts_with("vbt_"), "{out}");
        tokens.insert(role, token);
    }
    tokens
}

fn ingest_demo(dir: &Path, token: Option<&str>) -> Output {
    let mut c = verbatim(dir);
    if let Some(t) = token {
        c.env("VERBATIM_TOKEN", t);
    }
    run(c.arg("ingest").args(DEMO_MAPPING).arg(demo_csv()))
}

fn as_role(dir: &Path, token: &str, args: &[String]) -> Output {
    run(verbatim(dir).env("VERBATIM_TOKEN", token).args(args))
}

/// The largest theme of the run `--k 2` (so every role's scope has some of it).
fn largest_theme(dir: &Path) -> String {
    let v = json(verbatim(dir).args(["themes", "--by", "topic", "--k", "2", "--min-size", "3"]));
    v["themes"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|t| t["size"].as_u64().unwrap())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn role_by_command_matrix_every_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ws");
    let tokens = setup(&dir);
    let theme = largest_theme(&dir);
    // A retention period long enough to erase nothing: `retention apply` runs for real.
    let cfg = dir.join("verbatim.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("[privacy]\n", "[privacy]\nretention_days = 36500\n"),
    )
    .unwrap();
    let out = tmp.path().join("r.md");
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    // Expected per role, in ROLES order: Y = runs (exit 0), N = refused (exit 3). Written from
    // the README's table, independently of the code's POLICY.
    #[rustfmt::skip]
    let matrix: Vec<(&str, Vec<String>, &str)> = vec![
        ("stats", s(&["stats"]), "YYYYN"),
        ("search", s(&["search", "delivery", "--mode", "text"]), "YYYYY"),
        ("search hybrid", s(&["search", "late parcel"]), "YYYYY"),
        ("ask", s(&["ask", "How many customers mention delivery?", "--extractive"]), "YYYYY"),
        ("themes", s(&["themes", "--by", "topic", "--k", "2", "--min-size", "3"]), "YYYYY"),
        ("themes show", s(&["themes", "show", &theme, "--k", "2", "--min-size", "3"]), "YYYYY"),
        ("report", vec!["report".into(), "--by".into(), "topic".into(), "--k".into(), "2".into(), "--min-size".into(), "3".into(), "--out".into(), out.display().to_string()], "YYYYY"),
        ("themes assignments", s(&["themes", "assignments", "--by", "topic", "--k", "2", "--min-size", "3"]), "YYYNN"),
        ("themes rename", s(&["themes", "rename", &theme, "Delivery"]), "YYNNN"),
        ("pii reveal", s(&["pii", "reveal", "R1001"]), "YNYNN"),
        ("respondent lookup", s(&["respondent", "lookup", "camille.martin@example.fr"]), "YNYNN"),
        ("ingest", vec![], "YNNNN"),
        ("reindex", s(&["reindex"]), "YNNNN"),
        ("user list", s(&["user", "list"]), "YNNNN"),
        ("audit show", s(&["audit", "show"]), "YNNNN"),
        ("audit verify", s(&["audit", "verify"]), "YNNNN"),
        ("incident report", s(&["incident", "report", "--user", "marketing-1"]), "YNNNN"),
        ("export", s(&["export", "--respondent", "lucie.bernard@example.com"]), "YNNNN"),
        ("backup", vec!["backup".into(), "--out".into(), tmp.path().join("b.vbk").display().to_string()], "YNNNN"),
        ("serve", s(&["serve", "--bind", "127.0.0.1:1"]), "YNNNN"),
        ("config show", s(&["config", "show"]), "YNNNN"),
        ("user add", vec![], "YNNNN"),
        ("grant add", vec![], "YNNNN"),
        ("retention apply", s(&["retention", "apply"]), "YNNNN"),
        ("retention dry run", s(&["retention", "apply", "--dry-run"]), "YNNNN"),
        ("forget", s(&["forget", "--respondent", "mike.johnson@example.com"]), "YNNNN"),
        ("user revoke", s(&["user", "revoke", "new-admin"]), "YNNNN"),
    ];
    let mut failures = Vec::new();
    for (name, args, expect) in &matrix {
        // The admin last: a command that changes things runs once, after every refusal.
        for i in [1, 2, 3, 4, 0] {
            let role = ROLES[i];
            let allowed = expect.as_bytes()[i] == b'Y';
            let token = &tokens[role];
            let o = match *name {
                "ingest" => ingest_demo(&dir, Some(token)),
                "user add" => as_role(
                    &dir,
                    token,
                    &s(&["user", "add", &format!("new-{role}"), "--role", "analyst"]),
                ),
                "grant add" => as_role(
                    &dir,
                    token,
                    &s(&[
                        "grant",
                        "add",
                        &format!("g-{role}"),
                        "--expires",
                        "2099-01-01",
                        "--where",
                        "country=FR",
                    ]),
                ),
                "serve" if role == "admin" => continue, // a server that runs is tested in server.rs
                _ => {
                    let mut c = verbatim(&dir);
                    c.env("VERBATIM_TOKEN", token).args(args);
                    if *name == "backup" {
                        c.env("VERBATIM_BACKUP_PASSPHRASE", "correct horse battery staple");
                    }
                    run(&mut c)
                }
            };
            let code = o.status.code();
            let ok_cell = if allowed {
                code == Some(0)
            } else {
                code == Some(3) && stderr(&o).contains("may not")
            };
            if !ok_cell {
                failures.push(format!(
                    "{name} as {role}: expected {}, got {code:?}\n{}{}",
                    if allowed {
                        "success"
                    } else {
                        "refusal (exit 3)"
                    },
                    stdout(&o),
                    stderr(&o)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cell(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every read above is in the trail under the caller's name, and the chain holds.
    let trail = ok(verbatim(&dir).args(["audit", "show", "--user", "marketing-1"]));
    for action in ["search", "ask", "themes", "themes show", "report"] {
        assert!(
            trail.contains(&format!("  {action}  ")),
            "{action} missing:\n{trail}"
        );
    }
    // Writes, erasures and copies are in it too, under the admin's name.
    let trail = ok(verbatim(&dir).args(["audit", "show", "--user", "admin-1"]));
    for action in [
        "ingest",
        "backup",
        "forget",
        "user add",
        "grant add",
        "export",
    ] {
        assert!(
            trail.contains(&format!("  {action}  ")),
            "{action} missing:\n{trail}"
        );
    }
    ok(verbatim(&dir).args(["audit", "verify"]));
    // A revoked token is refused at once (exit 3).
    ok(verbatim(&dir).args(["user", "revoke", "analyst-1"]));
    let o = as_role(
        &dir,
        &tokens["analyst"],
        &s(&["search", "delivery", "--mode", "text"]),
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("revoked"), "{}", stderr(&o));
    // A wrong token is refused, naming where it came from.
    let o = as_role(&dir, "vbt_0000_1111", &s(&["stats"]));
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("VERBATIM_TOKEN"), "{}", stderr(&o));
}

/// Word 6-grams of a text, lower-cased.
fn shingles(text: &str) -> Vec<String> {
    let words: Vec<String> = text.split_whitespace().map(|w| w.to_lowercase()).collect();
    words.windows(6).map(|w| w.join(" ")).collect()
}

#[test]
fn marketing_sees_no_verbatim_text_anywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ws");
    ok(verbatim(&dir).arg("init").arg(&dir));
    ok(verbatim(&dir)
        .args([
            "ingest",
            "--text",
            "text",
            "--id",
            "id",
            "--field",
            "sentiment",
            "--field",
            "domain",
        ])
        .arg(fixture("uci_600.csv")));
    // The canaries: every verbatim as stored (redacted), from the owner's own view.
    let mut texts = Vec::new();
    let mut rdr = csv::Reader::from_path(fixture("uci_600.csv")).unwrap();
    let col = rdr
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "text")
        .unwrap();
    for r in rdr.records() {
        texts.push(r.unwrap()[col].to_string());
    }
    let grams: HashSet<String> = texts.iter().flat_map(|t| shingles(t)).collect();
    let token = ok(verbatim(&dir).args(["user", "add", "mkt", "--role", "marketing"]))
        .trim()
        .to_string();
    let m = |args: &[&str]| -> String {
        let o = run(verbatim(&dir).env("VERBATIM_TOKEN", &token).args(args));
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o) + &stderr(&o)
    };
    let mut outputs: Vec<(String, String)> = Vec::new();
    for args in [
        vec!["search", "battery life", "--limit", "50"],
        vec!["search", "battery life", "--limit", "50", "--json"],
        vec!["search", "the food was great", "--mode", "vector", "--json"],
        vec!["ask", "How many reviews mention the battery?"],
        vec!["ask", "How many reviews mention the battery?", "--json"],
        vec!["ask", "Why do people like the food?", "--json"],
        vec!["ask", "Why do people like the food?", "--extractive"],
        vec!["themes", "--by", "topic"],
        vec!["themes", "--by", "topic", "--summarize", "--json"],
    ] {
        outputs.push((args.join(" "), m(&args)));
    }
    let themes = json(
        verbatim(&dir)
            .env("VERBATIM_TOKEN", &token)
            .args(["themes", "--by", "topic"]),
    );
    assert!(themes["themes"].as_array().is_some_and(|t| !t.is_empty()));
    for t in themes["themes"].as_array().unwrap() {
        assert!(t["quotes"].as_array().is_none_or(|q| q.is_empty()), "{t}");
        let id = t["id"].as_str().unwrap();
        outputs.push((
            format!("themes show {id}"),
            m(&["themes", "show", id, "--json"]),
        ));
        // Cells under k are suppressed.
        for seg in t["segments"].as_array().unwrap() {
            for v in seg["values"].as_array().unwrap() {
                if let Some(c) = v["count"].as_u64() {
                    assert!(c >= 5, "a cell of {c} shown: {v}");
                }
            }
        }
        assert!(t["size"].as_u64().unwrap() >= 5);
    }
    for ext in ["html", "md", "json"] {
        let p = tmp.path().join(format!("report.{ext}"));
        m(&["report", "--out", p.to_str().unwrap()]);
        outputs.push((
            format!("report.{ext}"),
            std::fs::read_to_string(&p).unwrap(),
        ));
    }
    let mut leaks = Vec::new();
    for (what, out) in &outputs {
        let low = out.to_lowercase();
        let flat = low.split_whitespace().collect::<Vec<_>>().join(" ");
        for t in &texts {
            if t.split_whitespace().count() >= 4 && out.contains(t.as_str()) {
                leaks.push(format!("{what}: whole verbatim {t:?}"));
            }
        }
        for g in &grams {
            if flat.contains(g.as_str()) {
                leaks.push(format!("{what}: 6 words of a verbatim {g:?}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leak(s):\n{}",
        leaks.len(),
        leaks.join("\n")
    );
    // The same workspace shows quotes to an analyst: the check above can fail.
    let analyst = ok(verbatim(&dir).args(["user", "add", "ana", "--role", "analyst"]))
        .trim()
        .to_string();
    let o = run(verbatim(&dir).env("VERBATIM_TOKEN", &analyst).args([
        "search",
        "battery life",
        "--limit",
        "5",
    ]));
    let flat = stdout(&o)
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(grams.iter().any(|g| flat.contains(g.as_str())));
}

#[test]
fn consultant_sees_only_its_scope_and_is_refused_after_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ws");
    ok(verbatim(&dir).arg("init").arg(&dir));
    assert!(ingest_demo(&dir, None).status.success());
    // Country of each verbatim, from the owner's view.
    let all =
        json(verbatim(&dir).args(["search", "customer", "--limit", "100", "--mode", "vector"]));
    let country: BTreeMap<String, String> = all["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["verbatim"]["id"].as_str().unwrap().to_string(),
                h["verbatim"]["fields"]["country"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(country.len(), 30);
    let token = ok(verbatim(&dir).args([
        "grant",
        "add",
        "acme",
        "--role",
        "consultant",
        "--expires",
        "2099-01-31",
        "--where",
        "country=FR",
    ]))
    .trim()
    .to_string();
    let c = |args: &[&str]| json(verbatim(&dir).env("VERBATIM_TOKEN", &token).args(args));
    let in_scope = |ids: Vec<&str>| {
        assert!(!ids.is_empty());
        for id in ids {
            assert_eq!(country[id], "FR", "{id} is outside the consultant's scope");
        }
    };
    for mode in ["text", "vector", "hybrid"] {
        // The French verbatims say "livraison": the text retriever needs the word.
        let q = if mode == "text" {
            "livraison"
        } else {
            "delivery late"
        };
        let v = c(&["search", q, "--limit", "30", "--mode", mode]);
        let ids: Vec<&str> = v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["verbatim"]["id"].as_str().unwrap())
            .collect();
        in_scope(ids);
        // Asking for another country gives nothing, not that country: the filter is checked
        // against the values in scope, and the error names only those.
        let o = run(verbatim(&dir).env("VERBATIM_TOKEN", &token).args([
            "search",
            "delivery late",
            "--mode",
            mode,
            "--where",
            "country=US",
        ]));
        assert_eq!(o.status.code(), Some(2), "{mode}: {}", stdout(&o));
        assert!(
            stdout(&o).is_empty()
                && stderr(&o).contains(r#"no verbatim has country = "US"; its values are: "FR""#),
            "{mode}: {}",
            stderr(&o)
        );
    }
    let v = c(&[
        "ask",
        "Why are customers unhappy with delivery?",
        "--extractive",
    ]);
    in_scope(
        v["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect(),
    );
    let v = c(&["themes", "--by", "topic", "--k", "2", "--min-size", "1"]);
    let mut quoted = Vec::new();
    for t in v["themes"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        let s = c(&[
            "themes",
            "show",
            id,
            "--k",
            "2",
            "--min-size",
            "1",
            "--quotes",
            "10",
        ]);
        quoted.extend(
            s["quotes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|q| q["id"].as_str().unwrap().to_string()),
        );
    }
    in_scope(quoted.iter().map(String::as_str).collect());
    let report = tmp.path().join("r.json");
    c(&[
        "report",
        "--by",
        "topic",
        "--k",
        "2",
        "--min-size",
        "1",
        "--out",
        report.to_str().unwrap(),
    ]);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        r["verbatims"].as_u64().unwrap() as usize,
        country.values().filter(|c| *c == "FR").count()
    );
    in_scope(
        r["themes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| {
                t["quotes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|q| q["id"].as_str().unwrap())
            })
            .collect(),
    );

    // Expiry: a grant ending in 3 s works now and is refused one second after its end.
    let end = chrono::Utc::now().timestamp() + 3;
    let at = chrono::DateTime::from_timestamp(end, 0)
        .unwrap()
        .to_rfc3339();
    let short = ok(verbatim(&dir).args([
        "grant",
        "add",
        "brief",
        "--expires",
        &at,
        "--where",
        "country=FR",
    ]))
    .trim()
    .to_string();
    let search = || {
        run(verbatim(&dir)
            .env("VERBATIM_TOKEN", &short)
            .args(["search", "delivery", "--mode", "text"]))
    };
    let o = search();
    assert!(o.status.success(), "{}", stderr(&o));
    let wait = (end + 1 - chrono::Utc::now().timestamp()).max(0) as u64;
    std::thread::sleep(std::time::Duration::from_millis(wait * 1000 + 50));
    let o = search();
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stderr(&o).contains("expired"), "{}", stderr(&o));
}
