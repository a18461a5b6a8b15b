//! Privacy end to end: personal data never reaches the store, the indexes or the config in
//! clear; pseudonyms, sealed originals, survey links.

use std::path::Path;

use crate::common::*;

fn privacy(name: &str) -> std::path::PathBuf {
    fixture(&format!("privacy/{name}"))
}

/// The values of the fixture that must never appear in clear, in the forms a leak would take.
fn secrets() -> Vec<String> {
    let mut s: Vec<String> = vec![
        // emails (respondent column, segment column, text)
        "zorglub.quaxton@example.com",
        "zorglub",
        "quaxton",
        "brunhilde",
        "Brunhilde.Vexley",
        "marcelline.trobadec",
        "pemberfold",
        "ximena.glorvath",
        "theodric.maunsell",
        "ysolde.carpentras",
        "quillon.drabwick",
        "felicity.oddmund",
        "gaspard.vilmorel",
        // phones
        "06 12 34 56 78",
        "0612345678",
        "+44 20 7946 0958",
        "7946 0958",
        "(415) 555-0132",
        "555-0132",
        "+33 6 98 76 54 32",
        "98 76 54 32",
        // IBANs
        "GB82 WEST 1234 5698 7654 32",
        "GB82WEST12345698765432",
        "FR14 2004 1010 0505 0001 3M02 606",
        "FR1420041010050500013M02606",
        "DE89370400440532013000",
        "0532013000",
        // cards
        "4111 1111 1111 1111",
        "4111111111111111",
        "5555-5555-5555-4444",
        "5555555555554444",
        "378282246310005",
        // NIRs
        "184057512345625",
        "1 84 05 75 123 456 25",
        "292086901234533",
        // IP
        "203.0.113.42",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    // Lower-case forms too (an analyser lower-cases before it stores terms).
    let lower: Vec<String> = s.iter().map(|x| x.to_lowercase()).collect();
    s.extend(lower);
    s.sort();
    s.dedup();
    s
}

#[test]
fn no_personal_data_in_any_workspace_file_outside_the_sealed_originals() {
    let ws = workspace();
    let s = ingest_tickets(ws.path(), &[]);
    assert_eq!(s["stored"], 12, "{s}");
    assert_eq!(s["rejected"], 0, "{s}");
    for kind in ["email", "phone", "iban", "card", "nir", "ip"] {
        assert!(
            s["redacted"][kind].as_u64().unwrap_or(0) > 0,
            "no {kind} redacted: {s}"
        );
    }
    // A search (which opens and catches up the indexes) and stats, so every file is written.
    ok(verbatim(ws.path()).args(["search", "refund", "--mode", "hybrid"]));
    ok(verbatim(ws.path()).arg("stats"));

    let mut files = Vec::new();
    all_files(ws.path(), &mut files);
    assert!(files.iter().any(|f| f.ends_with("store.sqlite")));
    assert!(files
        .iter()
        .any(|f| f.to_string_lossy().contains("/index/text/")));
    assert!(files
        .iter()
        .any(|f| f.to_string_lossy().contains("/index/vectors/")));
    let mut leaks = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for secret in secrets() {
            if contains(&bytes, secret.as_bytes()) {
                leaks.push(format!("{} holds {secret:?}", f.display()));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "personal data in clear:\n{}",
        leaks.join("\n")
    );

    // The text index knows the placeholders, not the values: distinctive tokens of the
    // originals find nothing, the placeholders find the tickets.
    for q in ["zorglub", "quaxton", "pemberfold", "carpentras", "4111"] {
        let hits = json(verbatim(ws.path()).args(["search", q, "--mode", "text"]));
        assert_eq!(hits["hits"].as_array().unwrap().len(), 0, "{q}: {hits}");
    }
    let hits = json(verbatim(ws.path()).args(["search", "EMAIL", "--mode", "text"]));
    assert!(!hits["hits"].as_array().unwrap().is_empty());
    // What search shows is redacted too, segments included.
    let hits = json(verbatim(ws.path()).args(["search", "colis", "-n", "50"]));
    let shown = hits.to_string();
    for secret in secrets() {
        assert!(!shown.contains(&secret), "search output shows {secret:?}");
    }
}

#[test]
fn respondents_become_stable_keyed_pseudonyms() {
    let ws = workspace();
    ingest_tickets(ws.path(), &[]);
    let p =
        ok(verbatim(ws.path()).args(["respondent", "lookup", "  Zorglub.Quaxton@EXAMPLE.com "]));
    let p = p.trim();
    assert!(p.starts_with("r_") && p.len() == 22, "{p}");
    let r = json(verbatim(ws.path()).args(["respondent", "lookup", "zorglub.quaxton@example.com"]));
    assert_eq!(r["pseudonym"], p);
    assert_eq!(
        r["verbatims"],
        serde_json::json!(["T-1001", "T-1005", "T-1010"])
    );
    // Stable across ingests (re-ingest is a no-op and the pseudonym is unchanged).
    let again = ingest_tickets(ws.path(), &[]);
    assert_eq!(again["stored"], 0);
    assert_eq!(again["unchanged"], 12);
    let r2 =
        json(verbatim(ws.path()).args(["respondent", "lookup", "zorglub.quaxton@example.com"]));
    assert_eq!(r2, r);
    // Another workspace has another key: another pseudonym for the same person.
    let other = workspace();
    ingest_tickets(other.path(), &[]);
    let p_other =
        ok(verbatim(other.path()).args(["respondent", "lookup", "zorglub.quaxton@example.com"]));
    assert_ne!(p_other.trim(), p);
    // The search output carries the pseudonym, not the email.
    let hits = json(verbatim(ws.path()).args(["search", "colis", "-n", "20"]));
    let resp: Vec<&str> = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["verbatim"]["respondent"].as_str())
        .collect();
    assert!(!resp.is_empty());
    assert!(resp.iter().all(|r| r.starts_with("r_")), "{resp:?}");
}

#[test]
fn originals_are_sealed_revealed_to_the_owner_and_logged() {
    let ws = workspace();
    ingest_tickets(ws.path(), &[]);
    let r = json(verbatim(ws.path()).args(["pii", "reveal", "T-1003"]));
    assert!(r["original"]["text"]
        .as_str()
        .unwrap()
        .contains("4111 1111 1111 1111"));
    assert_eq!(
        r["original"]["respondent"],
        "marcelline.trobadec@example.fr"
    );
    assert!(r["redacted"].as_str().unwrap().contains("<CARD>"), "{r}");
    assert!(!r["redacted"].as_str().unwrap().contains("4111"));
    let plain = ok(verbatim(ws.path()).args(["pii", "reveal", "T-1003"]));
    assert!(
        plain.contains("FR14 2004 1010 0505 0001 3M02 606"),
        "{plain}"
    );

    // Every reveal is in the audit trail, once (there is no second, unchained log).
    let store = verbatim::store::Store::open(&ws.path().join("store.sqlite")).unwrap();
    let reveals: Vec<_> = store
        .audit_entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "pii reveal")
        .collect();
    assert_eq!(reveals.len(), 2, "{reveals:?}");
    assert!(reveals.iter().all(|e| e.ids == ["T-1003"]));
    let tables: i64 = rusqlite::Connection::open(ws.path().join("store.sqlite"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'access_log'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);

    // Without the key file, the workspace refuses to open rather than making a new key.
    let key = ws.path().join("verbatim.key");
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let o = run(verbatim(ws.path()).args(["pii", "reveal", "T-1003"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("verbatim.key is missing"),
        "{}",
        stderr(&o)
    );
    assert!(!key.exists(), "a new key was made");
    std::fs::write(&key, saved).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    ok(verbatim(ws.path()).args(["pii", "reveal", "T-1003"]));

    let o = run(verbatim(ws.path()).args(["pii", "reveal", "NOPE"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no verbatim with id 'NOPE'"));
}

#[test]
fn no_keep_original_stores_only_the_redacted_text() {
    let ws = workspace();
    ingest_tickets(ws.path(), &["--no-keep-original"]);
    let store = verbatim::store::Store::open(&ws.path().join("store.sqlite")).unwrap();
    assert_eq!(store.sealed_originals().unwrap(), 0);
    let r = json(verbatim(ws.path()).args(["pii", "reveal", "T-1003"]));
    assert!(r["original"].is_null(), "{r}");
    assert!(r["redacted"].as_str().unwrap().contains("<CARD>"));
}

#[test]
fn pii_scan_counts_what_ingest_would_redact_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let r = json(
        verbatim(dir.path())
            .args([
                "pii",
                "scan",
                "--text",
                "message",
                "--id",
                "ticket_id",
                "--respondent",
                "email",
                "--field",
                "contact",
            ])
            .arg(privacy("tickets.csv")),
    );
    assert_eq!(r["rows"], 12);
    assert_eq!(r["respondents"], 12);
    assert_eq!(r["by_column"]["contact"]["email"], 12);
    assert!(r["counts"]["card"].as_u64().unwrap() >= 3, "{r}");
    assert!(r["counts"]["iban"].as_u64().unwrap() >= 3, "{r}");
    // Findings are masked.
    let shown = r["findings"].to_string();
    for secret in secrets() {
        assert!(!shown.contains(&secret), "scan output shows {secret:?}");
    }
    // Nothing written: the folder is still empty.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Without a mapping, every column is scanned and named.
    let all = json(
        verbatim(dir.path())
            .args(["pii", "scan"])
            .arg(privacy("tickets.csv")),
    );
    assert_eq!(all["rows"], 12);
    assert_eq!(all["by_column"]["email"]["email"], 12, "{all}");
    assert_eq!(all["by_column"]["contact"]["email"], 12, "{all}");
    assert!(
        all["by_column"]["message"]["card"].as_u64().unwrap() >= 3,
        "{all}"
    );
    assert!(all["by_column"].get("country").is_none(), "{all}");
    let table = ok(verbatim(dir.path())
        .args(["pii", "scan", "--text", "message", "--field", "contact"])
        .arg(privacy("tickets.csv")));
    assert!(table.contains("total"), "{table}");
    insta::assert_snapshot!(
        "pii_scan_table",
        table.replace(&repo().display().to_string(), "[REPO]")
    );
}

#[test]
fn survey_links_carry_only_a_token_and_responses_map_back_to_the_pseudonym() {
    let ws = workspace();
    let tokens = ws.path().join("tokens.csv");
    let o = run(verbatim(ws.path())
        .args([
            "links",
            "make",
            "--id",
            "customer_id",
            "--base-url",
            "https://survey.example.com/s/",
        ])
        .arg(privacy("customers.csv"))
        .arg("--tokens-out")
        .arg(&tokens));
    // The customer listed twice is reported (exit 1, like a rejected row) and gets one link.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("customers.csv:6: customer already has a link"),
        "{}",
        stderr(&o)
    );
    let out = stdout(&o);
    let mut rdr = csv::Reader::from_reader(out.as_bytes());
    let rows: Vec<(String, String)> = rdr
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string())
        })
        .collect();
    assert_eq!(rows.len(), 5, "{out}"); // 6 rows, one customer twice
    let mut seen = std::collections::HashSet::new();
    for (id, url) in &rows {
        let token = url.strip_prefix("https://survey.example.com/s/").unwrap();
        assert_eq!(token.len(), 24, "{url}");
        assert!(token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert!(seen.insert(token.to_string()));
        assert!(!url.contains(id.as_str()));
        assert!(verbatim::pii::links::check_url(url).is_empty(), "{url}");
    }
    // The token file maps tokens to pseudonyms, never to customer ids.
    let t = std::fs::read_to_string(&tokens).unwrap();
    assert!(t.starts_with("token,pseudonym\n"));
    assert!(!t.contains('@'));

    // A response that comes back with a token is attributed to the customer's pseudonym.
    let (first_id, first_url) = &rows[0];
    let token = first_url.rsplit('/').next().unwrap();
    let resp = ws.path().join("resp.csv");
    std::fs::write(
        &resp,
        format!("rid,token,answer\nA1,{token},Le colis est arrivé en retard\n"),
    )
    .unwrap();
    ok(verbatim(ws.path())
        .args([
            "ingest",
            "--text",
            "answer",
            "--id",
            "rid",
            "--respondent",
            "token",
        ])
        .arg(&resp));
    let r = json(verbatim(ws.path()).args(["respondent", "lookup", first_id]));
    assert_eq!(r["verbatims"], serde_json::json!(["A1"]), "{r}");
}

#[test]
fn links_check_names_each_row_and_parameter_that_carries_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(verbatim(dir.path())
        .args(["links", "check", "--url-column", "referrer", "--json"])
        .arg(privacy("responses.csv")));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["urls"], 8);
    let found: Vec<(u64, String, String)> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            let line = row["line"].as_u64().unwrap();
            row["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |f| {
                    (
                        line,
                        f["location"].as_str().unwrap().to_string(),
                        f["kind"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let want = vec![
        (3, "query:email".to_string(), "email".to_string()),
        (5, "path[1]".to_string(), "email".to_string()),
        (6, "query:tel".to_string(), "phone".to_string()),
        (7, "query:nom".to_string(), "person".to_string()),
        (7, "query:prenom".to_string(), "person".to_string()),
        (8, "fragment:contact".to_string(), "email".to_string()),
    ];
    assert_eq!(found, want, "{r}");
    let text = stdout(&run(verbatim(dir.path())
        .args(["links", "check", "--url-column", "referrer"])
        .arg(privacy("responses.csv"))));
    assert!(
        text.contains("responses.csv:3: query:email carries email"),
        "{text}"
    );
    insta::assert_snapshot!(
        "links_check_text",
        text.replace(&repo().display().to_string(), "[REPO]")
    );
}

#[test]
fn ids_without_an_id_column_are_keyed_so_a_guessed_text_cannot_be_confirmed() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("f.csv");
    let texts = [
        "Call me back on 06 12 34 56 78 about the refund",
        "The delivery was late again",
    ];
    std::fs::write(&csv, format!("comment\n{}\n{}\n", texts[0], texts[1])).unwrap();
    let ids = |ws: &std::path::Path| -> Vec<String> {
        let o = crate::common::ok(
            crate::common::verbatim(ws)
                .args(["ingest", "--text", "comment"])
                .arg(&csv),
        );
        assert!(o.contains("2 stored"), "{o}");
        // Again: idempotent.
        let o = crate::common::ok(crate::common::verbatim(ws).arg("ingest").arg(&csv));
        assert!(o.contains("0 stored, 2 unchanged"), "{o}");
        let v = crate::common::json(crate::common::verbatim(ws).args([
            "search",
            "refund delivery",
            "--mode",
            "vector",
            "--limit",
            "5",
        ]));
        let mut ids: Vec<String> = v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["verbatim"]["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let a = crate::common::workspace();
    let b = crate::common::workspace();
    let (ia, ib) = (ids(a.path()), ids(b.path()));
    assert_eq!(ia.len(), 2);
    assert!(
        ia.iter().all(|i| i.starts_with('h') && i.len() == 17),
        "{ia:?}"
    );
    // Another workspace key, other ids; and not the plain hash anyone could compute.
    assert!(ia.iter().all(|i| !ib.contains(i)), "{ia:?} {ib:?}");
    for t in texts {
        assert!(!ia.contains(&verbatim::ingest::content_id(t)));
    }
}

/// `privacy.allow_names` in verbatim.toml (issue 12): a shop named after a person stays in the
/// scanned, stored and indexed text; a real name next to it is still redacted; an entry that
/// cannot be used is refused with the setting's name.
#[test]
fn privacy_allow_names_keeps_listed_names_only() {
    let ws = workspace();
    let csv = ws.path().join("allow.csv");
    std::fs::write(
        &csv,
        "id,text\nA1,Lunch at Chez Marcel was slow and Marcel Pagnol complained.\n",
    )
    .unwrap();
    let persons = |ws: &Path| {
        let r = json(
            verbatim(ws)
                .args(["pii", "scan", "--text", "text"])
                .arg(&csv),
        );
        r["counts"]["person"].as_u64().unwrap_or(0)
    };
    // Without the setting "Marcel" of "Chez Marcel" reads as a first name.
    assert_eq!(persons(ws.path()), 2);

    let cfg = ws.path().join("verbatim.toml");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let with = |entry: &str| {
        let line = format!("allow_names = [{entry:?}]\n");
        if original.contains("[privacy]\n") {
            original.replacen("[privacy]\n", &format!("[privacy]\n{line}"), 1)
        } else {
            format!("{original}\n[privacy]\n{line}")
        }
    };
    std::fs::write(&cfg, with("Chez Marcel")).unwrap();
    assert_eq!(persons(ws.path()), 1);

    ok(verbatim(ws.path())
        .args(["ingest", "--text", "text", "--id", "id"])
        .arg(&csv));
    let hits = json(verbatim(ws.path()).args(["search", "lunch", "--mode", "text"]));
    let shown = hits.to_string();
    assert!(shown.contains("Lunch at Chez Marcel was slow"), "{shown}");
    assert!(shown.contains("<PERSON> complained"), "{shown}");
    assert!(!shown.contains("Pagnol"), "{shown}");

    // An entry without a word: refused, naming the setting and the file.
    std::fs::write(&cfg, with("--")).unwrap();
    let o = run(verbatim(ws.path()).args(["search", "lunch"]));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("privacy.allow_names[0]") && err.contains("verbatim.toml"),
        "{err}"
    );
}
