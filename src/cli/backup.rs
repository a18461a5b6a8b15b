//! `verbatim backup`, `verbatim backup keygen`, `verbatim restore`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use verbatim::access::Action;
use verbatim::backup::{self, BackupOptions, KeySource, PASSPHRASE_ENV};
use verbatim::workspace::Workspace;

use super::progress::Bar;
use super::{output, Global};

/// Where the backup key comes from (one of them; else $VERBATIM_BACKUP_PASSPHRASE).
#[derive(Args, Debug)]
pub(super) struct KeyArgs {
    /// File whose first line is the passphrase (instead of $VERBATIM_BACKUP_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Backup key file made by `verbatim backup keygen` (instead of a passphrase).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

/// `verbatim backup`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(super) struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCommand>,
    /// The backup file to write (refused if it exists).
    #[arg(long, short, required = true, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Subcommand, Debug)]
enum BackupCommand {
    /// Write a new random backup key file (mode 0600; never overwrites). Keep it apart from the
    /// backups.
    #[command(after_help = super::help::BACKUP_KEYGEN)]
    Keygen {
        /// The key file to create.
        #[arg(long, short, value_name = "FILE")]
        out: PathBuf,
    },
}

/// `verbatim restore`.
#[derive(Args, Debug)]
pub(super) struct RestoreArgs {
    /// The backup file (.vbk).
    file: PathBuf,
    /// The folder to restore into: new, or empty (an existing workspace is refused).
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    #[command(flatten)]
    key: KeyArgs,
}

fn key_source(k: &KeyArgs) -> Result<KeySource> {
    let env = match std::env::var(PASSPHRASE_ENV) {
        Ok(v) => Some(v),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => bail!("{PASSPHRASE_ENV} is not valid UTF-8"),
    };
    Ok(KeySource::resolve(
        env,
        k.passphrase_file.as_deref(),
        k.key_file.as_deref(),
    )?)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub(super) fn cmd_backup(g: &Global, root: &Path, a: BackupArgs) -> Result<i32> {
    if let Some(BackupCommand::Keygen { out }) = &a.command {
        return cmd_backup_keygen(g, out);
    }
    // Through the door first (admin), then the backup opens the workspace itself.
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let session = super::session(&mut ws, "backup", &models, &settings)?;
    session.check(Action::Backup)?;
    let out = a.out.expect("clap requires --out");
    let key = key_source(&a.key)?;
    // A backup is a copy of everything: who made it, and where it went, is in the trail.
    let bar = Bar::new(g);
    let s = session
        .with_progress(&bar)
        .backup(&out, &key, &BackupOptions::default())?;
    drop(bar);
    if g.json {
        output::json(&s);
        return Ok(0);
    }
    let how = match &s.kdf {
        Some(p) => format!(
            "passphrase, Argon2id m={} MiB t={} p={}",
            p.m_kib / 1024,
            p.t,
            p.p
        ),
        None => "key file".into(),
    };
    println!(
        "backed up {} files ({}, {} verbatims) to {} ({}, {}) in {:.1}s",
        s.files,
        mb(s.bytes),
        s.verbatims,
        s.out.display(),
        mb(s.file_bytes),
        how,
        s.seconds
    );
    if !g.quiet {
        for p in &s.skipped {
            eprintln!("warning: {p} left out (not a regular file or folder)");
        }
    }
    Ok(0)
}

/// Writes a random key: reads no workspace, so no token is needed.
pub(super) fn cmd_backup_keygen(g: &Global, out: &Path) -> Result<i32> {
    backup::write_key_file(out)?;
    if g.json {
        output::json(&serde_json::json!({ "key_file": out }));
    } else {
        println!("backup key written to {} (mode 0600)", out.display());
        if !g.quiet {
            eprintln!(
                "keep it apart from the backups: without it they cannot be restored; with it, \
                 anyone holding a backup can read it"
            );
        }
    }
    Ok(0)
}

/// Restores into a new folder: whoever holds the file and its key can read it anyway, so the
/// door is the key, not a token.
pub(super) fn cmd_restore(g: &Global, a: RestoreArgs) -> Result<i32> {
    let key = key_source(&a.key)?;
    let bar = Bar::new(g);
    let s = backup::restore_with_progress(&a.file, &a.to, &key, &bar)?;
    drop(bar);
    if g.json {
        output::json(&s);
        return Ok(0);
    }
    let made = chrono::DateTime::from_timestamp(s.created, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "?".into());
    println!(
        "restored {} files ({}, {} verbatims) into {} in {:.1}s (backup made {} by verbatim {})",
        s.files,
        mb(s.bytes),
        s.verbatims,
        s.to.display(),
        s.seconds,
        made,
        s.verbatim_version
    );
    Ok(0)
}
