//! Progress on stderr, one step at a time: an indicatif bar on a terminal, or JSON lines for
//! programs that drive verbatim (`--progress jsonl`).
//!
//! Every step is named ("reading", "redacting", "embedding", "indexing", "finding themes"…) and
//! shows count/total, rate and ETA while it runs. A finished step leaves one line with its real
//! totals and duration (`embedding 3,000/3,000 in 41s (73/s)`), so the terminal keeps a record
//! of where the time went. Each step gets a fresh indicatif bar: reusing one bar across steps
//! redrew the previous step's line, and a bar created but never started printed its default
//! `0/0` template when dropped. A step whose total was unknown (0) at its start takes the count
//! it reached as its total when it finishes, so no finished step reads `0/0`.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

use verbatim::workspace::ingest::Progress;

use super::{Global, ProgressKind};

/// The step in progress.
struct Step {
    name: String,
    done: u64,
    total: u64,
    started: Instant,
    bar: Option<indicatif::ProgressBar>,
}

/// Draws progress (a bar, JSON lines, or nothing) for the library's [`Progress`] calls.
pub(super) struct Bar {
    draw: bool,
    jsonl: bool,
    step: Mutex<Option<Step>>,
}

impl Bar {
    /// A bar on a terminal unless `--quiet` or `--progress jsonl|none`; JSON lines with
    /// `--progress jsonl` (also when stderr is not a terminal: a program asked for them).
    pub(super) fn new(g: &Global) -> Self {
        Bar {
            draw: !g.quiet && g.progress == ProgressKind::Bar && std::io::stderr().is_terminal(),
            jsonl: g.progress == ProgressKind::Jsonl,
            step: Mutex::new(None),
        }
    }

    fn emit(&self, event: &str, st: &Step) {
        if !self.jsonl {
            return;
        }
        let secs = st.started.elapsed().as_secs_f64();
        let line = serde_json::json!({
            "event": event,
            "step": st.name,
            // The name this field had before `step`: kept for programs that read it.
            "phase": st.name,
            "done": st.done,
            "total": st.total,
            "elapsed_s": (secs * 1000.0).round() / 1000.0,
        });
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
        let _ = err.flush();
    }
}

/// The running bar: step name, bar, count/total, rate, ETA (or a spinner and the count while the
/// total is unknown).
fn running_style(total: u64) -> indicatif::ProgressStyle {
    let template = if total > 0 {
        "{msg:>19} [{bar:30}] {human_pos}/{human_len} {rate} ETA {eta}"
    } else {
        "{msg:>19} {spinner} {human_pos} {elapsed}"
    };
    indicatif::ProgressStyle::with_template(template)
        .expect("valid progress template")
        .progress_chars("=> ")
        // indicatif's own {per_sec} prints four decimals; a whole number reads better.
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", rate(s.pos(), s.elapsed().as_secs_f64()));
            },
        )
}

/// Units per second, whole above 10.
fn rate(done: u64, secs: f64) -> String {
    let r = done as f64 / secs.max(1e-3);
    if r >= 10.0 {
        indicatif::HumanCount(r.round() as u64).to_string()
    } else {
        format!("{r:.1}")
    }
}

/// The line a finished step leaves: `embedding 3,000/3,000 in 41s (73/s)`.
fn final_line(st: &Step) -> String {
    let secs = st.started.elapsed().as_secs_f64();
    let took = if secs < 10.0 {
        format!("{secs:.1}s")
    } else {
        format!("{:#}", indicatif::HumanDuration(st.started.elapsed()))
    };
    format!(
        "{:>19} {}/{} in {took} ({}/s)",
        st.name,
        indicatif::HumanCount(st.done),
        indicatif::HumanCount(st.total),
        rate(st.done, secs)
    )
}

impl Progress for Bar {
    fn start(&self, phase: &str, total: u64) {
        let mut cur = self.step.lock().expect("progress lock");
        // A step left open (an error path) is closed before the next one starts.
        if let Some(old) = cur.take() {
            if let Some(b) = &old.bar {
                b.finish_and_clear();
            }
        }
        let bar = self.draw.then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(running_style(total));
            b.set_message(phase.to_string());
            if total == 0 {
                b.enable_steady_tick(std::time::Duration::from_millis(120));
            }
            b
        });
        let st = Step {
            name: phase.to_string(),
            done: 0,
            total,
            started: Instant::now(),
            bar,
        };
        self.emit("start", &st);
        *cur = Some(st);
    }

    fn advance(&self, n: u64) {
        let mut cur = self.step.lock().expect("progress lock");
        let Some(st) = cur.as_mut() else { return };
        st.done += n;
        if let Some(b) = &st.bar {
            b.inc(n);
        }
        self.emit("progress", st);
    }

    fn finish(&self) {
        let mut cur = self.step.lock().expect("progress lock");
        let Some(mut st) = cur.take() else { return };
        // The count reached is the total of a step that did not know it in advance (or found
        // more than it expected).
        st.total = st.total.max(st.done);
        self.emit("finish", &st);
        if let Some(b) = &st.bar {
            b.set_style(indicatif::ProgressStyle::with_template("{msg}").expect("valid template"));
            b.finish_with_message(final_line(&st));
        }
        let _ = std::io::stderr().flush();
    }
}

impl Drop for Bar {
    /// A step still open when the command ends (an error) is cleared, not left half drawn.
    fn drop(&mut self) {
        if let Ok(mut cur) = self.step.lock() {
            if let Some(st) = cur.take() {
                if let Some(b) = &st.bar {
                    b.finish_and_clear();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_line_keeps_the_totals_and_rate() {
        let st = Step {
            name: "embedding".into(),
            done: 5000,
            total: 5000,
            started: Instant::now() - std::time::Duration::from_secs(100),
            bar: None,
        };
        let l = final_line(&st);
        assert!(l.contains("embedding 5,000/5,000 in 2m (50/s)"), "{l}");
        assert_eq!(rate(3, 2.0), "1.5");
        assert_eq!(rate(768, 20.0), "38");
    }
}
