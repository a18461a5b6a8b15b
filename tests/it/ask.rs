//! `verbatim ask` with the real models: counts routed to the store, citations enforced,
//! abstention, the extractive answer, and the local generator (SmolLM2, which `make models`
//! provisions: a test that needs it fails with that fix when it is missing).

use std::path::{Path, PathBuf};

use crate::common::{fixture, ingest_uci, ok, repo, verbatim, workspace_in_tmp};

fn workspace() -> (tempfile::TempDir, PathBuf) {
    let (tmp, ws) = workspace_in_tmp();
    ingest_uci(&ws);
    (tmp, ws)
}

fn ask(ws: &Path, args: &[&str]) -> serde_json::Value {
    let out = ok(verbatim(ws).arg("ask").args(args).arg("--json"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The generator's GGUF. `make test` provisions it (`make models`), so a missing one is a set-up
/// error: the test fails with the fix rather than passing without having run.
fn generator() -> PathBuf {
    let gguf = repo().join("models/SmolLM2-135M-Instruct/model.gguf");
    assert!(
        gguf.is_file(),
        "the generator is missing from {}: run `make models` (models/fetch.sh) first",
        gguf.display()
    );
    gguf
}

#[test]
fn counting_questions_are_answered_from_the_store_not_the_model() {
    let (_t, ws) = workspace();
    let a = ask(&ws, &["How many customers mention the battery?"]);
    assert_eq!(a["mode"], "count");
    let c = &a["count"];
    assert_eq!(c["total"], 600);
    assert_eq!(c["topic"], "battery");
    // At least every verbatim that says "battery" (the word rule), and not much more.
    let text = std::fs::read_to_string(fixture("uci_600.csv")).unwrap();
    let literal = text
        .lines()
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("battery") || l.contains("batteries")
        })
        .count() as u64;
    let n = c["count"].as_u64().unwrap();
    assert!(
        n >= literal && n <= literal * 3 + 5,
        "{n} vs {literal} literal"
    );
    assert!(c["method"].as_str().unwrap().contains("battery"));
    assert!(a["answer"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{n} of 600")));
    // Shares, filters and French are routed the same way.
    let s = ask(
        &ws,
        &[
            "What share of reviews mention the battery?",
            "--where",
            "domain=amazon",
        ],
    );
    assert_eq!(s["mode"], "count");
    assert_eq!(s["count"]["total"], 200);
    assert!(s["answer"].as_str().unwrap().contains('%'));
    let f = ask(&ws, &["Combien de clients parlent du service ?"]);
    assert_eq!(f["mode"], "count");
    assert_eq!(f["count"]["topic"], "service");
}

#[test]
fn unrelated_questions_abstain() {
    let (_t, ws) = workspace();
    let a = ask(
        &ws,
        &["How do I configure the network interface of a Linux server?"],
    );
    assert_eq!(a["mode"], "abstained", "{a}");
    assert!(a["answer"]
        .as_str()
        .unwrap()
        .contains("Not enough evidence"));
}

#[test]
fn extractive_answers_group_the_verbatims_by_theme_and_say_so() {
    let (_t, ws) = workspace();
    ok(verbatim(&ws).args(["themes", "--by", "topic"]));
    let a = ask(
        &ws,
        &["Is the food good at the restaurant?", "--extractive"],
    );
    assert_eq!(a["mode"], "extractive");
    assert!(a["answer"]
        .as_str()
        .unwrap()
        .starts_with("Extractive answer"));
    let n = a["sources"].as_array().unwrap().len();
    let grouped: usize = a["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["sources"].as_array().unwrap().len())
        .sum();
    assert_eq!(grouped, n);
    assert!(a["groups"][0]["theme"].as_str().unwrap().starts_with('T'));
}

#[test]
fn generated_answers_cite_only_retrieved_verbatims() {
    generator();
    let (_t, ws) = workspace();
    let mut generated = 0;
    let mut checked = 0;
    // Six questions, not three: whether one question yields a supported sentence from a
    // 135M-parameter model under greedy decoding tips on near ties of its logits (the Q4_1
    // kernel, which computes on the file's own blocks as llama.cpp does, moved the first three
    // from one kept sentence to none; its sentences there are truly unsupported: a misspelt
    // quote, a quote under the next quote's number, claims with no citation).
    for q in [
        "Why are people unhappy with the headset?",
        "What do reviewers think of the acting?",
        "Was the service at the restaurant slow?",
        "What do people say about the battery?",
        "What do people say about the sound quality?",
        "What do customers say about the price?",
    ] {
        let a = ask(&ws, &[q]);
        // The model wrote something; either some sentence passed the support check (a
        // generated answer), or none did and the answer says so (the verbatims instead).
        assert!(
            a["generation"]["generated_tokens"].as_u64().unwrap() > 0,
            "{a}"
        );
        let sentences = a["sentences"].as_array().unwrap();
        checked += sentences.len();
        let shown = sentences
            .iter()
            .filter(|s| s["verdict"] == "supported")
            .count();
        if a["mode"] == "generated" {
            assert!(a.get("fallback").is_none(), "{a}");
            assert!(shown > 0, "generated, yet no sentence supported: {a}");
            generated += 1;
        } else {
            assert_eq!(a["fallback"]["reason"], "nothing_cited", "{a}");
            assert_eq!(shown, 0, "{a}");
        }
        // Every dropped sentence says which check dropped it and why.
        for s in sentences.iter().filter(|s| s["verdict"] == "dropped") {
            assert!(s["check"].is_string() && s["why"].is_string(), "{s}");
            assert!(!s["checks"].as_array().unwrap().is_empty(), "{s}");
        }
        let n = a["sources"].as_array().unwrap().len() as u64;
        // Citation validity: every citation of a kept sentence is a retrieved verbatim.
        for s in sentences {
            let kept = s["verdict"] == "supported";
            let cites = s["citations"].as_array().unwrap();
            if kept {
                assert!(!cites.is_empty(), "{s}");
            }
            for c in cites {
                let c = c.as_u64().unwrap();
                assert!((1..=n).contains(&c), "{c} of {n}: {s}");
            }
        }
        for c in a["cited"].as_array().unwrap() {
            assert!((1..=n).contains(&c.as_u64().unwrap()));
        }
        // Reproducible: greedy decoding gives the same answer again.
        assert_eq!(ask(&ws, &[q])["answer"], a["answer"]);
    }
    // The support check keeps true sentences SmolLM2-135M writes on these questions (its recall
    // on the faithfulness set: BENCHMARKS.md, "Support check"); measured 3 of 6 generated.
    assert!(checked > 0, "the model wrote no sentence to check");
    assert!(
        generated >= 2,
        "{generated} of 6 answers kept a generated sentence"
    );
}

#[test]
fn the_gguf_tokenizer_is_rebuilt_from_metadata() {
    let g = verbatim::ask::llm::Generator::load(&generator()).unwrap();
    assert_eq!(g.architecture, "llama");
    assert_eq!(g.template(), verbatim::ask::llm::ChatTemplate::ChatMl);
    let t = g.tokenizer();
    // ChatML control tokens are single tokens, and text round-trips.
    assert_eq!(t.token_to_id("<|im_start|>"), Some(1));
    assert_eq!(t.token_to_id("<|im_end|>"), Some(2));
    let enc = t
        .encode(
            "<|im_start|>user\nLivraison en retard: 3 semaines!<|im_end|>",
            false,
        )
        .unwrap();
    assert_eq!(enc.get_ids()[0], 1);
    for text in [
        "Delivery was 3 weeks late.",
        "Le colis est arrivé abîmé, déçu 😞",
        "  spaces  and\ttabs",
    ] {
        let ids = t.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(t.decode(&ids, false).unwrap(), text);
    }
    // Digits are split one by one (SmolLM's pre-tokenizer).
    let ids = t.encode("2024", false).unwrap().get_ids().to_vec();
    assert_eq!(ids.len(), 4);
}

#[test]
fn themes_summarize_gives_one_cited_sentence_per_theme() {
    let (_t, ws) = workspace();
    let out = ok(verbatim(&ws).args(["themes", "--by", "topic", "--summarize", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let themes = v["themes"].as_array().unwrap();
    let sums = v["summaries"].as_array().unwrap();
    assert_eq!(themes.len(), sums.len());
    for (t, s) in themes.iter().zip(sums) {
        let quotes = t["quotes"].as_array().unwrap().len() as u64;
        let cites = s["citations"].as_array().unwrap();
        assert!(!cites.is_empty(), "{s}");
        for c in cites {
            assert!((1..=quotes).contains(&c.as_u64().unwrap()), "{s}");
        }
        assert!(matches!(
            s["mode"].as_str(),
            Some("generated") | Some("extractive")
        ));
    }
}

#[test]
fn a_generator_that_is_there_but_fails_says_so_and_answers_extractively() {
    let (t, ws) = workspace();
    // A truncated GGUF: the magic and a version, then nothing.
    let bad = t.path().join("truncated.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00\xff\xff").unwrap();
    let q = "Is the food good at the restaurant?";
    let o = crate::common::run(
        verbatim(&ws)
            .args(["ask", q, "--json", "--generator"])
            .arg(&bad),
    );
    assert!(o.status.success(), "{}", crate::common::stderr(&o));
    let a: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(a["mode"], "extractive", "{a}");
    assert_eq!(a["fallback"]["reason"], "generator_failed", "{a}");
    let first = a["answer"].as_str().unwrap().lines().next().unwrap();
    assert!(
        first.starts_with("Extractive answer (the generator failed: ")
            && first.contains("truncated.gguf"),
        "{first}"
    );
    assert!(!first.contains("no generator model"), "{first}");
    assert!(
        crate::common::stderr(&o).contains("the generator failed: ")
            && crate::common::stderr(&o).contains("extractive answer instead"),
        "{}",
        crate::common::stderr(&o)
    );
    // Asked for: it says so, not "no generator model" either.
    let a = ask(&ws, &[q, "--extractive"]);
    assert_eq!(a["fallback"]["reason"], "asked", "{a}");
    // A generator that loads but fails while generating (here: a prompt longer than the room
    // --max-tokens leaves in SmolLM2's context) falls back the same way.
    generator();
    let o = crate::common::run(verbatim(&ws).args(["ask", q, "--json", "--max-tokens", "32768"]));
    assert!(o.status.success(), "{}", crate::common::stderr(&o));
    let a: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(a["mode"], "extractive", "{a}");
    assert_eq!(a["fallback"]["reason"], "generator_failed", "{a}");
    assert!(
        a["answer"].as_str().unwrap().starts_with(
            "Extractive answer (the generator failed: generation failed: the prompt has"
        ),
        "{a}"
    );
}

// ---- Issue 16: evidence first, comparisons, counting by aspect, language. ----

/// The 88 food reviews (taste, delivery, packaging, price; half of them two-sided), themed by
/// the aspect tree (`themes`, the default view).
fn food_tree() -> (tempfile::TempDir, PathBuf) {
    let (tmp, ws) = workspace_in_tmp();
    ok(verbatim(&ws)
        .args(["ingest", "--text", "text", "--id", "id", "--date", "date"])
        .arg(fixture("food_reviews_88.csv")));
    ok(verbatim(&ws).args(["themes", "--json"]));
    (tmp, ws)
}

fn fixture_text(id: &str) -> String {
    let mut rdr = csv::Reader::from_path(fixture("food_reviews_88.csv")).unwrap();
    rdr.records()
        .map(|r| r.unwrap())
        .find(|r| &r[0] == id)
        .map(|r| r[1].to_string())
        .unwrap()
}

#[test]
fn why_questions_get_the_evidence_by_aspect_before_any_model() {
    let (_t, ws) = food_tree();
    let q = "Why are customers unhappy with delivery?";
    let a = ask(&ws, &[q, "--extractive"]);
    assert_eq!(a["mode"], "extractive", "{a}");
    let ev = &a["evidence"];
    assert_eq!(ev["basis"], "aspects", "{ev}");
    let retrieved = ev["retrieved"].as_u64().unwrap();
    assert!(retrieved >= 10, "{ev}");
    assert_eq!(ev["in_scope"], 88);
    let groups = ev["groups"].as_array().unwrap();
    // The question asks about a problem: the groups are of the negative retrieved verbatims
    // only (the overall mix still counts all), and their counts add up: each is in one group or
    // "elsewhere".
    assert_eq!(ev["focus"]["polarity"], "negative", "{ev}");
    let focused = ev["focus"]["verbatims"].as_u64().unwrap();
    assert_eq!(ev["sentiment"]["negative"].as_u64().unwrap(), focused);
    assert!(focused < retrieved, "{ev}");
    let grouped: u64 = groups
        .iter()
        .map(|g| g["verbatims"].as_u64().unwrap())
        .sum();
    assert_eq!(grouped + ev["elsewhere"].as_u64().unwrap(), focused, "{ev}");
    for g in groups {
        assert_eq!(g["sentiment"]["negative"], g["verbatims"], "{g}");
        for qt in g["quotes"].as_array().unwrap() {
            assert_eq!(qt["polarity"], "negative", "{qt}");
        }
    }
    // A question that takes no side groups every retrieved verbatim.
    let neutral = ask(&ws, &["What do people say about delivery?", "--extractive"]);
    let nev = &neutral["evidence"];
    assert!(nev.get("focus").is_none(), "{nev}");
    let n_grouped: u64 = nev["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["verbatims"].as_u64().unwrap())
        .sum();
    assert_eq!(
        n_grouped + nev["elsewhere"].as_u64().unwrap(),
        nev["retrieved"].as_u64().unwrap(),
        "{nev}"
    );
    // The largest group is about delivery, and its quotes are the delivery part of each review,
    // marked inside the verbatim — even in the two-sided ones ("… but delivery took three weeks").
    let top = &groups[0];
    let deliveryish = |s: &str| {
        let s = s.to_lowercase();
        [
            "deliver", "arrived", "courier", "shipping", "parcel", "order",
        ]
        .iter()
        .any(|w| s.contains(w))
    };
    let quotes = top["quotes"].as_array().unwrap();
    assert!((2..=3).contains(&quotes.len()), "{top}");
    let sources = a["sources"].as_array().unwrap();
    for qt in quotes {
        let unit = qt["unit"].as_str().unwrap();
        assert!(deliveryish(unit), "not about delivery: {qt}");
        assert!(
            qt["marked"]
                .as_str()
                .unwrap()
                .contains(&format!("**{unit}**")),
            "{qt}"
        );
        // The quote's number is its verbatim among the sources, and the span is in its text.
        let n = qt["n"].as_u64().unwrap() as usize;
        let src = &sources[n - 1];
        assert_eq!(src["id"], qt["id"]);
        let text = fixture_text(src["id"].as_str().unwrap());
        let (s, e) = (
            qt["start"].as_u64().unwrap() as usize,
            qt["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(text[s..e].trim(), unit);
    }
    // Polarity-led: the group's majority polarity comes first; the question is about unhappy
    // customers and most delivery units in the data are complaints.
    let mix = &top["sentiment"];
    assert!(
        mix["negative"].as_u64().unwrap() >= mix["positive"].as_u64().unwrap(),
        "{top}"
    );
    assert_eq!(quotes[0]["polarity"], "negative", "{top}");
    // Sizes in scope come from the tree: the delivery parent's verbatims among the 88.
    let size = top["in_scope"].as_u64().unwrap();
    assert!(
        size >= top["verbatims"].as_u64().unwrap() && size < 88,
        "{top}"
    );
    assert!(top["id"].as_str().unwrap().starts_with('P'), "{top}");
    // Shown first: the streamed output starts with the evidence, then the answer.
    let out = ok(verbatim(&ws).args(["ask", q, "--extractive"]));
    let first = out.lines().next().unwrap();
    assert!(first.starts_with("Evidence from the data"), "{out}");
    let ev_at = out.find("Evidence from the data").unwrap();
    assert!(ev_at < out.find("Extractive answer").unwrap(), "{out}");
    assert!(a["timings"]["evidence_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn evidence_falls_back_to_topic_themes_then_to_the_hits() {
    let (_t, ws) = workspace_in_tmp();
    ok(verbatim(&ws)
        .args(["ingest", "--text", "text", "--id", "id", "--date", "date"])
        .arg(fixture("food_reviews_88.csv")));
    let q = "What do people say about the packaging?";
    let a = ask(&ws, &[q, "--extractive"]);
    assert_eq!(a["evidence"]["basis"], "hits", "{a}");
    assert_eq!(a["evidence"]["groups"][0]["id"], "hits");
    ok(verbatim(&ws).args(["themes", "--by", "topic"]));
    let a = ask(&ws, &[q, "--extractive"]);
    assert_eq!(a["evidence"]["basis"], "themes", "{a}");
    assert!(a["evidence"]["groups"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with('T'));
}

/// A CSV written by the test: (id, text, score) rows.
fn scored_csv(dir: &Path, rows: &[(String, String, u32)]) -> PathBuf {
    let p = dir.join("scored.csv");
    let mut w = csv::Writer::from_path(&p).unwrap();
    w.write_record(["id", "text", "score"]).unwrap();
    for (id, t, s) in rows {
        w.write_record([id.as_str(), t.as_str(), &s.to_string()])
            .unwrap();
    }
    w.flush().unwrap();
    p
}

fn tea_rows() -> Vec<(String, String, u32)> {
    let mut rows = Vec::new();
    // Green tea: 12 reviews, mostly poor; black tea: 15, mostly good; 3 mention both.
    for i in 0..12 {
        let (t, s) = if i < 9 {
            (
                "This green tea tastes bitter and stale, I regret buying it.",
                2,
            )
        } else {
            ("Lovely green tea, fresh and fragrant.", 5)
        };
        rows.push((format!("g{i}"), format!("{t} Batch {i}."), s));
    }
    for i in 0..15 {
        let (t, s) = if i < 13 {
            ("The black tea is rich and delicious, my favourite.", 5)
        } else {
            ("Black tea arrived stale, disappointing.", 1)
        };
        rows.push((format!("b{i}"), format!("{t} Batch {i}."), s));
    }
    for i in 0..3 {
        rows.push((
            format!("x{i}"),
            format!("I prefer black tea to green tea. Note {i}."),
            4,
        ));
    }
    // A side under k (5) for aggregates-only access.
    for i in 0..3 {
        rows.push((format!("u{i}"), format!("Oolong tea, smooth. Pot {i}."), 4));
    }
    // Neither: the denominator only.
    for i in 0..10 {
        rows.push((format!("o{i}"), format!("The coffee is fine. Cup {i}."), 3));
    }
    rows
}

#[test]
fn comparisons_answer_from_scores_and_sentiment_without_a_model() {
    let (t, ws) = workspace_in_tmp();
    let csv = scored_csv(t.path(), &tea_rows());
    ok(verbatim(&ws)
        .args(["ingest", "--text", "text", "--id", "id", "--score", "score"])
        .arg(&csv));
    let a = ask(&ws, &["Is green tea or black tea rated better?"]);
    assert_eq!(a["mode"], "comparison", "{a}");
    assert!(a.get("generation").is_none());
    let c = &a["comparison"];
    let (g, b) = (&c["sides"][0], &c["sides"][1]);
    assert_eq!(g["name"], "green tea");
    assert_eq!(g["n"], 15, "{c}");
    assert_eq!(b["n"], 18, "{c}");
    assert_eq!(c["both"], 3);
    assert_eq!(c["total"], 43);
    // Means from the store's scores, computed here independently.
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let gm = mean(&[&[2.0; 9][..], &[5.0; 3][..], &[4.0; 3][..]].concat());
    let bm = mean(&[&[5.0; 13][..], &[1.0; 2][..], &[4.0; 3][..]].concat());
    assert!((g["mean_score"].as_f64().unwrap() - gm).abs() < 1e-3, "{c}");
    assert!((b["mean_score"].as_f64().unwrap() - bm).abs() < 1e-3, "{c}");
    // Green tea reads negative more often.
    assert!(
        g["negative"].as_f64().unwrap() > b["negative"].as_f64().unwrap(),
        "{c}"
    );
    let first = a["answer"].as_str().unwrap().lines().next().unwrap();
    assert!(
        first.contains("\"black tea\" is rated better than \"green tea\""),
        "{first}"
    );
    assert!(a["answer"].as_str().unwrap().contains("Rule: "), "{a}");
    // The other phrasings, and French, route the same way.
    for q in [
        "green tea vs black tea",
        "Le thé vert ou le black tea : lequel est mieux noté ?",
    ] {
        assert_eq!(ask(&ws, &[q])["mode"], "comparison", "{q}");
    }
    let f = ask(&ws, &["Green tea ou black tea, lequel est mieux noté ?"]);
    assert_eq!(f["language"], "fr");
    assert!(
        f["answer"].as_str().unwrap().contains("est mieux noté que"),
        "{f}"
    );
}

#[test]
fn comparisons_use_the_top_box_share_for_two_valued_scores_and_k_for_marketing() {
    let (t, ws) = workspace_in_tmp();
    // Thumbs up/down (0/1).
    let rows: Vec<(String, String, u32)> = tea_rows()
        .into_iter()
        .map(|(id, text, s)| (id, text, u32::from(s >= 4)))
        .collect();
    let csv = scored_csv(t.path(), &rows);
    ok(verbatim(&ws)
        .args(["ingest", "--text", "text", "--id", "id", "--score", "score"])
        .arg(&csv));
    let a = ask(&ws, &["Is green tea or black tea rated better?"]);
    let c = &a["comparison"];
    assert_eq!(c["scale"], "0/1", "{c}");
    assert!(c["sides"][0].get("mean_score").is_none(), "{c}");
    // Green tea: 3 of 12 up, plus the 3 "both" rows (score 4 → 1): 6/15.
    assert!(
        (c["sides"][0]["top_box"].as_f64().unwrap() - 6.0 / 15.0).abs() < 1e-3,
        "{c}"
    );
    // Aggregates-only (k = 5): numbers without verbatims; a side under k is suppressed and
    // not compared.
    let token = ok(verbatim(&ws).args(["-q", "user", "add", "mkt", "--role", "marketing"]));
    let marketing = |q: &str| -> serde_json::Value {
        let o = crate::common::run(
            verbatim(&ws)
                .env("VERBATIM_TOKEN", token.trim())
                .args(["ask", q, "--json"]),
        );
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", crate::common::stderr(&o)))
    };
    let m = marketing("Is green tea or black tea rated better?");
    assert_eq!(m["mode"], "comparison", "{m}");
    assert!(m["sources"].as_array().unwrap().is_empty());
    assert!(
        !m.to_string().contains("bitter"),
        "no verbatim text for marketing: {m}"
    );
    assert_eq!(m["comparison"]["sides"][0]["n"], 15, "{m}");
    let m = marketing("Is oolong tea or black tea rated better?");
    let o = &m["comparison"]["sides"][0];
    assert_eq!(o["suppressed"], true, "{m}");
    assert_eq!(o["n"], 0);
    assert!(
        o.get("top_box").is_none() && o.get("negative").is_none(),
        "{m}"
    );
    assert!(
        m["answer"].as_str().unwrap().starts_with("Not compared"),
        "{m}"
    );
    assert!(
        m["answer"].as_str().unwrap().contains("fewer than 5"),
        "{m}"
    );
}

#[test]
fn counting_questions_count_the_matching_aspect_and_match_names_as_written() {
    let (_t, ws) = food_tree();
    let a = ask(&ws, &["How many reviews mention price?"]);
    assert_eq!(a["mode"], "count", "{a}");
    let c = &a["count"];
    let n = c["count"].as_u64().unwrap();
    let rows: Vec<String> = {
        let mut rdr = csv::Reader::from_path(fixture("food_reviews_88.csv")).unwrap();
        rdr.records()
            .map(|r| r.unwrap()[1].to_lowercase())
            .collect()
    };
    let word = regex::Regex::new(r"\bprices?\b").unwrap();
    let literal = rows.iter().filter(|t| word.is_match(t)).count() as u64;
    // The word "price" is in fewer reviews than talk about price: the aspect also covers what
    // is said without the word ("good value for the money"…), and the answer says which node
    // it counted.
    assert_eq!(c["matched_by"], "aspect", "{c}");
    assert!(c["node"].as_str().unwrap().starts_with(['P', 'C']), "{c}");
    assert!(n > literal, "{n} vs {literal} with the word: {c}");
    assert!(n < 88, "{c}");
    let method = c["method"].as_str().unwrap();
    assert!(method.contains(c["node"].as_str().unwrap()), "{method}");
}

#[test]
fn names_are_counted_as_written() {
    let (t, ws) = workspace_in_tmp();
    let mut rows: Vec<(String, String, u32)> = Vec::new();
    let texts = [
        ("Bought it at Trader Joe's, great price.", true),
        ("Trader Joe’s sells it cheaper.", true),
        ("trader joe's brand is better", true),
        ("My trader friend Joe's dog loves these.", false),
        ("A trader sold me a stale bag.", false),
        ("Joe's favourite snack.", false),
        ("The shop trader was rude.", false),
    ];
    for (i, (text, _)) in texts.iter().enumerate() {
        rows.push((format!("t{i}"), text.to_string(), 3));
    }
    let csv = scored_csv(t.path(), &rows);
    ok(verbatim(&ws)
        .args(["ingest", "--text", "text", "--id", "id"])
        .arg(&csv));
    let a = ask(&ws, &["How many reviews mention Trader Joe's?"]);
    let c = &a["count"];
    assert_eq!(c["topic"], "trader joe's", "{c}");
    assert_eq!(c["matched_by"], "name", "{c}");
    assert_eq!(c["count"], 3, "{c}");
    assert!(c["method"].as_str().unwrap().contains("as written"), "{c}");
}

#[test]
fn a_french_question_on_an_english_only_model_says_so_and_is_answered_in_french() {
    let (_t, ws) = food_tree();
    let a = ask(&ws, &["Combien d'avis parlent du prix ?"]);
    assert_eq!(a["language"], "fr");
    let notes = a["notes"].as_array().unwrap();
    assert!(
        notes[0].as_str().unwrap().contains("multilingual-e5-small")
            && notes[0].as_str().unwrap().contains("all-MiniLM-L6-v2"),
        "{a}"
    );
    assert!(
        a["answer"].as_str().unwrap().contains(" avis sur 88"),
        "{a}"
    );
    // Streamed first.
    let out = ok(verbatim(&ws).args([
        "ask",
        "Pourquoi les clients sont-ils déçus de la livraison ?",
        "--extractive",
    ]));
    assert!(out.starts_with("Note : le modèle"), "{out}");
    // English questions get no note.
    assert!(ask(&ws, &["How many reviews mention price?"])
        .get("notes")
        .is_none());
}

/// A workspace on multilingual-e5-small holding one language's side of the bilingual pairs.
fn e5_pairs(side: &str) -> (tempfile::TempDir, PathBuf) {
    let e5 = repo().join("models/multilingual-e5-small/model.safetensors");
    assert!(
        e5.is_file(),
        "multilingual-e5-small is missing: run `bash models/fetch.sh multilingual-e5-small`"
    );
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    ok(verbatim(&ws).args(["init", "--model", "multilingual-e5-small"]));
    let rows: Vec<(String, String, u32)> =
        crate::common::jsonl(&fixture("e5/bilingual_pairs.jsonl"))
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r[side].as_str().unwrap().to_string(),
                    3,
                )
            })
            .collect();
    let csv = scored_csv(tmp.path(), &rows);
    ok(verbatim(&ws)
        .args(["ingest", "--text", "text", "--id", "id"])
        .arg(&csv));
    (tmp, ws)
}

#[test]
fn on_e5_french_questions_count_and_retrieve_english_verbatims_and_the_reverse() {
    for (side, count_q, why_q, literal) in [
        (
            "en",
            "Combien d'avis parlent de livraison ?",
            "Pourquoi les clients sont-ils mécontents de la livraison ?",
            "livraison",
        ),
        (
            "fr",
            "How many reviews mention delivery?",
            "Why are customers unhappy with the delivery?",
            "delivery",
        ),
    ] {
        let (_t, ws) = e5_pairs(side);
        let c = ask(&ws, &[count_q]);
        assert!(
            c.get("notes").is_none(),
            "e5 crosses languages: no note: {c}"
        );
        let n = c["count"]["count"].as_u64().unwrap();
        // None of the verbatims has the question's word: every match crossed languages.
        let texts: Vec<String> = crate::common::jsonl(&fixture("e5/bilingual_pairs.jsonl"))
            .iter()
            .map(|r| r[side].as_str().unwrap().to_lowercase())
            .collect();
        assert!(!texts.iter().any(|t| t.contains(literal)));
        assert!(n >= 3, "{side}: {c}");
        let a = ask(&ws, &[why_q, "--extractive"]);
        assert_ne!(a["mode"], "abstained", "{side}: {a}");
        let quotes: Vec<String> = a["evidence"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["quotes"].as_array().unwrap().clone())
            .map(|q| q["unit"].as_str().unwrap().to_lowercase())
            .collect();
        let deliveryish = [
            "deliver", "parcel", "courier", "receiv", "late", "livr", "colis", "reçu", "retard",
        ];
        assert!(
            quotes
                .iter()
                .any(|q| deliveryish.iter().any(|w| q.contains(w))),
            "{side}: {quotes:?}"
        );
        assert_eq!(a["language"], if side == "en" { "fr" } else { "en" });
    }
}
