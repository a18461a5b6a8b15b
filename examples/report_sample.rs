//! Writes the sample report of the renderers' tests (`src/themes/report/sample.rs`) as HTML,
//! Markdown and JSON, for a look in a browser or a screenshot:
//!
//! ```sh
//! cargo run --release --example report_sample -- DIR
//! scripts/screenshot-report.sh DIR/report-sample.html
//! ```
//!
//! The sample is made up (no model, no workspace) and shows every part of the report: a
//! spike, a new theme, a vanished one, suppressed segment cells, score drivers. A real report
//! comes from `verbatim report` (`make demo` writes one).

use std::path::PathBuf;

use anyhow::{Context, Result};
use verbatim::themes::analytics::trend_direction;
use verbatim::themes::priority::{priorities, ScoreKind, ScoreScale};
use verbatim::themes::report::{html, json, markdown};
use verbatim::themes::types::*;

#[path = "../src/themes/report/sample.rs"]
mod sample;

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!(
            "usage: report_sample DIR (the folder to write report-sample.{{html,md,json}} to)"
        );
        std::process::exit(2);
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let r = sample::sample_report();
    for (name, body) in [
        ("report-sample.html", html(&r)),
        ("report-sample.md", markdown(&r)),
        ("report-sample.json", json(&r)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}
