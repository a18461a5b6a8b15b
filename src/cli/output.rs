//! Human output (tables, highlights) and machine output (JSON, .npy).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use verbatim::index::text::tokens;
use verbatim::index::{Indexes, TextIndex};
use verbatim::lang::Lang;
use verbatim::retrieve::{Hit, HitUnit};
use verbatim::store::StoreStats;
use verbatim::workspace::Workspace;

/// Pretty JSON on stdout.
pub fn json<T: serde::Serialize>(v: &T) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, v);
    let _ = writeln!(out);
}

/// A date for display: the day, plus the time when it is not midnight.
pub fn date(ts: Option<i64>) -> String {
    match ts.and_then(|t| chrono::DateTime::from_timestamp(t, 0)) {
        None => "-".into(),
        Some(d) if d.time() == chrono::NaiveTime::MIN => d.format("%Y-%m-%d").to_string(),
        Some(d) => d.format("%Y-%m-%d %H:%M").to_string(),
    }
}

/// Wraps the words of `text` that match the query's terms (same analyser: stems, folded accents)
/// in bold yellow.
pub fn highlight(text: &str, lang: Lang, query_terms: &HashSet<String>) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut last = 0;
    for (term, from, to) in tokens(lang, text) {
        if query_terms.contains(&term) && from >= last {
            out.push_str(&text[last..from]);
            out.push_str("\x1b[1;33m");
            out.push_str(&text[from..to]);
            out.push_str("\x1b[0m");
            last = to;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// Search results: one block per hit.
pub fn print_hits(hits: &[Hit], query: &str, color: bool) {
    let mut out = std::io::stdout().lock();
    if hits.is_empty() {
        let _ = writeln!(out, "no verbatim matches");
        return;
    }
    let (en, fr) = TextIndex::query_terms(query);
    let terms_en: HashSet<String> = en.into_iter().collect();
    let terms_fr: HashSet<String> = fr.into_iter().collect();
    for h in hits {
        let v = &h.verbatim;
        let segs: Vec<String> = v.fields.iter().map(|(k, x)| format!("{k}={x}")).collect();
        let score = v.score.map(|s| format!(" score={s}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:>3}  {:.4}  {}  {}  {}{}",
            h.rank,
            h.score,
            v.id,
            date(v.ts),
            segs.join(" "),
            score
        );
        let text = v.text.replace('\n', " ");
        let paint = |t: &str| -> String {
            if color {
                match Lang::from_code(&v.language) {
                    Some(Lang::Fr) => highlight(t, Lang::Fr, &terms_fr),
                    _ => highlight(t, Lang::En, &terms_en),
                }
            } else {
                t.to_string()
            }
        };
        let text = match unit_parts(&text, h.unit.as_ref()) {
            Some((before, unit, after)) => {
                format!("{}[{}]{}", paint(&before), paint(unit), paint(&after))
            }
            None => paint(&text),
        };
        let _ = writeln!(out, "     {text}");
        if !h.copies.is_empty() {
            let _ = writeln!(
                out,
                "     (same text: {} more — {})",
                h.copies.len(),
                h.copies.join(", ")
            );
        }
    }
}

/// Characters of context shown on each side of a hit's unit.
const UNIT_CONTEXT: usize = 80;

/// `text` around a hit's unit: (context before, the unit, context after), the context cut to
/// about [`UNIT_CONTEXT`] characters at a word boundary with "…"; `None` when there is no unit,
/// or it is the whole text (nothing to mark).
fn unit_parts<'a>(text: &'a str, unit: Option<&HitUnit>) -> Option<(String, &'a str, String)> {
    let u = unit?;
    let (start, end) = (u.start, u.end);
    if end > text.len()
        || start >= end
        || !text.is_char_boundary(start)
        || !text.is_char_boundary(end)
        || (text[..start].trim().is_empty() && text[end..].trim().is_empty())
    {
        return None;
    }
    let before = &text[..start];
    let before = match before.char_indices().rev().nth(UNIT_CONTEXT) {
        Some((at, _)) => {
            let cut = before[at..].find(' ').map_or(at, |s| at + s + 1);
            format!("…{}", &before[cut..])
        }
        None => before.to_string(),
    };
    let after = &text[end..];
    let after = match after.char_indices().nth(UNIT_CONTEXT) {
        Some((at, _)) => {
            let cut = after[..at].rfind(' ').unwrap_or(at);
            format!("{}…", &after[..cut])
        }
        None => after.to_string(),
    };
    Some((before, &text[start..end], after))
}

/// `stats` as text.
pub fn print_stats(ws: &Workspace, s: &StoreStats, ix: &Indexes) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "workspace      {}", ws.root().display());
    let _ = writeln!(out, "verbatims      {}", s.verbatims);
    let _ = writeln!(out, "respondents    {} (pseudonymised)", s.respondents);
    let _ = writeln!(
        out,
        "originals      {} sealed{}",
        s.sealed_originals,
        if ws.config.privacy.keep_originals {
            ""
        } else {
            " (privacy.keep_originals = false)"
        }
    );
    let _ = writeln!(
        out,
        "dates          {} .. {}",
        date(s.first_ts),
        date(s.last_ts)
    );
    let langs: Vec<String> = s
        .languages
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(out, "languages      {}", langs.join(" "));
    let fields: Vec<String> = s
        .fields
        .iter()
        .map(|(k, v)| format!("{k} ({v} values)"))
        .collect();
    let _ = writeln!(out, "segments       {}", fields.join(", "));
    let _ = writeln!(out, "ingest runs    {}", s.runs);
    let _ = writeln!(out, "model          {}", s.model.as_deref().unwrap_or("-"));
    let _ = writeln!(
        out,
        "text index     {} documents, covers sequence {} of {}",
        ix.text.num_docs(),
        ix.text.covered(),
        s.seq
    );
    let _ = writeln!(
        out,
        "vector index   {} points, covers sequence {} of {}",
        ix.vectors.points(),
        ix.vectors.covered(),
        s.seq
    );
}

/// Writes a float32 matrix in NumPy's .npy format (version 1.0, C order), atomically.
pub fn write_npy(path: &Path, rows: &[Vec<f32>], dim: usize) -> Result<(), verbatim::fs::FsError> {
    let header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        rows.len(),
        dim
    );
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of
    // 64 bytes and ended by a newline.
    let unpadded = 10 + header.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let mut buf = Vec::with_capacity(unpadded + pad + rows.len() * dim * 4);
    buf.extend_from_slice(b"\x93NUMPY\x01\x00");
    buf.extend_from_slice(&((header.len() + pad + 1) as u16).to_le_bytes());
    buf.extend_from_slice(header.as_bytes());
    buf.extend(std::iter::repeat_n(b' ', pad));
    buf.push(b'\n');
    for r in rows {
        for x in r {
            buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    verbatim::fs::write_atomic(path, &buf)
}

/// `pii scan` as a table: counts per column and type, then (with `list`) every finding.
pub fn print_scan(r: &verbatim::pii::scan::ScanReport, list: bool) {
    use verbatim::pii::PiiKind;
    println!(
        "{}: {} rows, {} with personal data, {} respondent values (pseudonymised at ingest)",
        r.file.display(),
        r.rows,
        r.rows_with_pii,
        r.respondents
    );
    if r.counts.is_empty() {
        println!("nothing to redact");
        return;
    }
    let kinds: Vec<PiiKind> = PiiKind::ALL
        .into_iter()
        .filter(|k| r.counts.contains_key(k))
        .collect();
    let width = r
        .by_column
        .keys()
        .map(|c| c.len())
        .max()
        .unwrap_or(6)
        .max(6);
    print!("{:width$}", "column");
    for k in &kinds {
        print!(" {:>7}", k.name());
    }
    println!();
    let row = |name: &str, m: &std::collections::BTreeMap<PiiKind, u64>| {
        print!("{name:width$}");
        for k in &kinds {
            print!(" {:>7}", m.get(k).copied().unwrap_or(0));
        }
        println!();
    };
    for (col, m) in &r.by_column {
        row(col, m);
    }
    row("total", &r.counts);
    if list {
        println!();
        for f in &r.findings {
            println!(
                "{}:{}: {} {} {}",
                r.file.display(),
                f.line,
                f.column,
                f.kind,
                f.masked
            );
        }
    }
}

/// An aggregates-only search result: counts, never verbatims.
pub fn print_aggregate(a: &verbatim::retrieve::SearchAggregate) {
    let n = |c: Option<usize>| c.map_or(format!("<{}", a.min_cell), |c| c.to_string());
    println!(
        "{} matching verbatims (aggregates only; counts under {} suppressed)",
        n(a.matches),
        a.min_cell
    );
    if !a.themes.is_empty() {
        println!("by theme:");
        for (id, label, c) in &a.themes {
            println!("  {id:<5} {:>6}  {label}", n(*c));
        }
    }
    for (field, values) in &a.segments {
        println!("by {field}:");
        for (v, c) in values {
            println!("  {v:<20} {:>6}", n(*c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(start: usize, end: usize) -> HitUnit {
        HitUnit {
            start,
            end,
            sentiment: None,
        }
    }

    #[test]
    fn a_hits_unit_is_marked_inside_its_verbatim_and_long_context_is_cut() {
        let text = "Great taste, but the package arrived damaged.";
        let start = text.find("but").unwrap();
        let (b, u, a) = unit_parts(text, Some(&unit(start, text.len()))).unwrap();
        assert_eq!(
            format!("{b}[{u}]{a}"),
            "Great taste, [but the package arrived damaged.]"
        );
        // The whole text, or no unit: nothing to mark.
        assert!(unit_parts(text, Some(&unit(0, text.len()))).is_none());
        assert!(unit_parts(text, None).is_none());
        // Long context is cut at a word, with an ellipsis, on both sides.
        let long = format!(
            "{} the jar was broken. {}",
            "word ".repeat(40),
            "more ".repeat(40)
        );
        let s = long.find("the jar").unwrap();
        let e = s + "the jar was broken.".len();
        let (b, u, a) = unit_parts(&long, Some(&unit(s, e))).unwrap();
        assert_eq!(u, "the jar was broken.");
        assert!(
            b.starts_with('…') && b.chars().count() <= UNIT_CONTEXT + 2,
            "{b:?}"
        );
        assert!(
            a.ends_with('…') && a.chars().count() <= UNIT_CONTEXT + 2,
            "{a:?}"
        );
        assert!(b.trim_end().ends_with("word") && a.starts_with(" more"));
    }
}
