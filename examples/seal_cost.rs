//! What the per-row integrity seals cost a read: the same store read with its key (every row's
//! seal checked) and without (no check), for a search's worth of rows and for a full pass.
//!
//! `cargo run --release --example seal_cost -- [ROWS]` (default 5000 rows of 384-dim vectors and
//! ~120-byte texts). Prints the median of 21 timings of each read.

use std::time::Instant;

use verbatim::store::{NewVerbatim, RowKey, Store};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time(mut f: impl FnMut()) -> f64 {
    median(
        (0..21)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(5000);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.sqlite");
    let key = RowKey::new([42; 32]);
    {
        let mut s = Store::open(&path)?;
        s.set_row_key(key.clone())?;
        let run = s.begin_run("bench")?;
        let batch: Vec<NewVerbatim> = (0..rows)
            .map(|i| NewVerbatim {
                id: format!("v{i}"),
                text: verbatim::pii::redact(&format!(
                    "Row {i}: the battery died after two days and support never answered my emails, very disappointed."
                )),
                original: None,
                respondent: Some(format!("r_{}", i % 97)),
                ts: Some(1_700_000_000 + i as i64),
                score: Some((i % 11) as f64),
                language: "en".into(),
                fields: [("country".to_string(), ["FR", "US", "BE"][i % 3].to_string())].into(),
                source: format!("bench.csv:{}", i + 2),
                content_hash: format!("h{i}"),
                vector: (0..384).map(|j| ((i * 31 + j) % 97) as f32 / 97.0).collect(),
            })
            .collect();
        s.upsert_batch(run, &batch)?;
    }
    let mut sealed = Store::open(&path)?;
    sealed.set_row_key(key)?;
    let plain = Store::open(&path)?; // no key: reads check nothing
    let docs = plain.all_docs()?;
    let hits: Vec<i64> = docs
        .iter()
        .step_by(docs.len().div_ceil(150))
        .copied()
        .collect();
    println!("{rows} rows; median of 21 runs, ms (with seals / without / cost per row)");
    for (name, n) in [
        ("get_docs (a search's 150 candidates)", hits.len()),
        ("get_docs (every row)", docs.len()),
    ] {
        let ask = if n == hits.len() { &hits } else { &docs };
        let with = time(|| assert_eq!(sealed.get_docs(ask).unwrap().len(), n));
        let without = time(|| assert_eq!(plain.get_docs(ask).unwrap().len(), n));
        println!(
            "{name:40} {with:8.3} {without:8.3} {:6.2} µs",
            (with - without) * 1e3 / n as f64
        );
    }
    let count = |s: &Store| {
        let mut n = 0;
        s.for_each(|_, _, _| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, rows);
    };
    let with = time(|| count(&sealed));
    let without = time(|| count(&plain));
    println!(
        "{:40} {with:8.3} {without:8.3} {:6.2} µs",
        "for_each (reindex: text + vector)",
        (with - without) * 1e3 / rows as f64
    );
    let with = time(|| assert!(sealed.verify_rows().unwrap().is_empty()));
    println!("{:40} {with:8.3}", "verify_rows (check, reindex)");
    Ok(())
}
