//! `verbatim user …`, `verbatim grant …` and `verbatim incident report`.

use std::path::Path;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use verbatim::access::{Action, Principal, Role};
use verbatim::store::Filter;
use verbatim::workspace::users::parse_expiry;
use verbatim::workspace::Workspace;

use super::{filter_from, output, session, since_utc, FilterArgs, Global};

#[derive(Subcommand, Debug)]
pub(super) enum UserCommand {
    /// Add a user; prints its token once (it is stored only as an Argon2id hash).
    #[command(after_help = super::help::USER_ADD)]
    Add {
        /// Name (letters, digits, '.', '_', '-'); never reused.
        name: String,
        /// admin, analyst, support or marketing (consultants: `verbatim grant add`).
        #[arg(long)]
        role: String,
    },
    /// Revoke a user or grant: its token is refused from the next request on.
    #[command(after_help = super::help::USER_REVOKE)]
    Revoke {
        /// Name.
        name: String,
    },
    /// Users and grants: role, scope, expiry, revoked.
    #[command(after_help = super::help::USER_LIST)]
    List,
}

#[derive(Subcommand, Debug)]
pub(super) enum GrantCommand {
    /// Scoped, expiring access for someone outside (a consultant): prints its token once.
    #[command(after_help = super::help::GRANT_ADD)]
    Add {
        /// Name (letters, digits, '.', '_', '-'); never reused.
        name: String,
        /// Role (consultant).
        #[arg(long, default_value = "consultant")]
        role: String,
        /// Last day of access (YYYY-MM-DD: refused from the next midnight, UTC) or an RFC 3339
        /// time.
        #[arg(long)]
        expires: String,
        /// The scope: only verbatims matching these filters are ever visible.
        #[command(flatten)]
        scope: FilterArgs,
    },
    /// Revoke a grant before it expires.
    #[command(after_help = super::help::GRANT_REVOKE)]
    Revoke {
        /// Name.
        name: String,
    },
    /// Users and grants.
    #[command(after_help = super::help::GRANT_LIST)]
    List,
}

#[derive(Subcommand, Debug)]
pub(super) enum IncidentCommand {
    /// Everything a user retrieved: verbatims, respondents, requests (from the audit trail).
    #[command(after_help = super::help::INCIDENT_REPORT)]
    Report(IncidentArgs),
}

#[derive(Args, Debug)]
pub(super) struct IncidentArgs {
    /// The user (as in `verbatim audit show`).
    #[arg(long)]
    user: String,
    /// From this day (YYYY-MM-DD).
    #[arg(long)]
    since: Option<String>,
}

fn parse_role(s: &str) -> Result<Role> {
    match Role::parse(s) {
        Some(r) => Ok(r),
        None => bail!(
            "--role {s:?}: expected one of {}",
            Role::ALL.map(|r| r.as_str()).join(", ")
        ),
    }
}

fn add(g: &Global, root: &Path, principal: Principal, kind: &str) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    // One Argon2id check: the caller both enters and is recorded as the maker.
    let made = session(&mut ws, &format!("{kind} add"), &models, &settings)?
        .add_principal(principal, kind)?;
    if g.json {
        output::json(&made);
    } else {
        println!("{}", made.token);
        if !g.quiet {
            eprintln!(
                "{} {} ({}) added. The token above is shown once and stored only as a hash: give it to them over a safe channel; they set VERBATIM_TOKEN (CLI) or send `Authorization: Bearer <token>` (verbatim serve).",
                kind, made.record.principal.name, made.record.principal.role
            );
        }
    }
    Ok(0)
}

fn revoke(g: &Global, root: &Path, name: &str, what: &str) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let at =
        session(&mut ws, &format!("{what} revoke"), &models, &settings)?.revoke_principal(name)?;
    if g.json {
        output::json(&serde_json::json!({ "name": name, "revoked_at": at }));
    } else {
        println!("{name} revoked at {at}");
    }
    Ok(0)
}

fn list(g: &Global, root: &Path) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let all = session(&mut ws, "user list", &models, &settings)?.principals()?;
    if g.json {
        output::json(&all);
        return Ok(0);
    }
    println!(
        "{:<20} {:<6} {:<11} {:<20} {:<20} scope",
        "name", "kind", "role", "expires (UTC)", "revoked"
    );
    for r in &all {
        let p = &r.principal;
        let expires = p
            .expires
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<20} {:<6} {:<11} {:<20} {:<20} {}",
            p.name,
            r.kind,
            p.role,
            expires,
            r.revoked_at.as_deref().unwrap_or("-"),
            if p.scope == Filter::default() {
                "-".to_string()
            } else {
                serde_json::to_string(&p.scope).unwrap_or_default()
            }
        );
    }
    Ok(0)
}

pub(super) fn cmd_user(g: &Global, root: &Path, c: UserCommand) -> Result<i32> {
    match c {
        UserCommand::Add { name, role } => {
            let role = parse_role(&role)?;
            if role == Role::Consultant {
                bail!("--role consultant: consultants get scoped, expiring access: `verbatim grant add {name} --role consultant --expires YYYY-MM-DD [--where field=value]`");
            }
            let p = Principal {
                name,
                role,
                scope: Filter::default(),
                expires: None,
            };
            add(g, root, p, "user")
        }
        UserCommand::Revoke { name } => revoke(g, root, &name, "user"),
        UserCommand::List => list(g, root),
    }
}

pub(super) fn cmd_grant(g: &Global, root: &Path, c: GrantCommand) -> Result<i32> {
    match c {
        GrantCommand::Add {
            name,
            role,
            expires,
            scope,
        } => {
            let role = parse_role(&role)?;
            let Some(at) = parse_expiry(&expires) else {
                bail!("--expires {expires:?}: expected a day like 2025-01-31 (access ends at the next midnight, UTC) or an RFC 3339 time like 2025-01-31T18:00:00Z");
            };
            if at <= chrono::Utc::now().timestamp() {
                bail!("--expires {expires:?} is in the past");
            }
            let p = Principal {
                name,
                role,
                scope: filter_from(&scope)?,
                expires: Some(at),
            };
            add(g, root, p, "grant")
        }
        GrantCommand::Revoke { name } => revoke(g, root, &name, "grant"),
        GrantCommand::List => list(g, root),
    }
}

pub(super) fn cmd_incident(g: &Global, root: &Path, c: IncidentCommand) -> Result<i32> {
    let IncidentCommand::Report(a) = c;
    let mut ws = Workspace::open(root)?;
    let (models, settings) = (super::models(g), super::session_settings(g));
    let mut s = session(&mut ws, "incident report", &models, &settings)?;
    s.check(Action::Audit)?;
    let since = since_utc(a.since.as_deref())?;
    let r = s.incident_report(&a.user, since.as_deref())?;
    if g.json {
        output::json(&r);
        return Ok(0);
    }
    println!(
        "incident report for {} since {}",
        r.user,
        r.since.as_deref().unwrap_or("the beginning")
    );
    println!(
        "{} request(s){}",
        r.requests.values().sum::<usize>(),
        match (&r.first, &r.last) {
            (Some(f), Some(l)) => format!(", {f} to {l}"),
            _ => String::new(),
        }
    );
    for (action, n) in &r.requests {
        println!("  {action:<22} {n}");
    }
    let verbatims = r.verbatims.len();
    println!(
        "{verbatims} verbatim(s) retrieved ({} erased since), from {} respondent(s)",
        r.erased_since,
        r.respondents.len()
    );
    for v in &r.verbatims {
        println!(
            "  {:<24} {:>3}×  first {}  {}",
            v.id,
            v.times,
            v.first,
            v.respondent.as_deref().unwrap_or("")
        );
    }
    if !r.themes.is_empty() {
        println!("{} theme(s) shown", r.themes.len());
    }
    if !r.unresolved.is_empty() {
        println!(
            "{} id(s) from entries before schema v6 name no stored verbatim (erased, or theme ids)",
            r.unresolved.len()
        );
    }
    Ok(0)
}
