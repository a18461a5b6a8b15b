//! The one door: every read of verbatims goes through [`authorize`], which returns a [`Grant`].
//!
//! Retrieval functions take a `&Grant`, so a read path that forgot to ask does not compile.
//! [`POLICY`] is the whole policy, one row per action and one column per role, deny by default
//! (an action missing from the table is denied to every role). A grant carries what the role
//! may see: a *scope* (a consultant's filter, ANDed with whatever the caller asks for), whether
//! verbatim text may be shown at all (marketing sees aggregates only), and the smallest cell
//! that may be shown (k-anonymity threshold for aggregates).
//!
//! `Workspace::enter` is the door as callers use it: it re-reads the caller from the store
//! (revoked? expired? — on every request), then asks [`authorize`]. `Workspace::record`
//! appends the audit entry before results are returned.

use serde::Serialize;

use crate::store::Filter;

/// Roles and principals are stored records, defined with the store (which persists them) so that
/// the store never imports this module; they are the access vocabulary all the same.
pub use crate::store::{Principal, Role};

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Caller {
    /// The person who runs the binary on their own workspace without a token: whoever can read
    /// the key file can read everything anyway (README, threat model), so this is an admin.
    Owner,
    /// A user or grant, authenticated by its token.
    User(Principal),
}

impl Caller {
    /// Its name in the audit trail ("owner" or the user's name).
    pub fn name(&self) -> &str {
        match self {
            Caller::Owner => "owner",
            Caller::User(p) => &p.name,
        }
    }

    /// Its role.
    pub fn role(&self) -> Role {
        match self {
            Caller::Owner => Role::Admin,
            Caller::User(p) => p.role,
        }
    }
}

/// What the caller wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Search verbatims (text, vector, hybrid).
    Search,
    /// Read workspace statistics (whole-workspace counts).
    Stats,
    /// Write: ingest, reindex, links.
    Write,
    /// Read a verbatim's sealed original (unredacted) text; every such read is logged.
    Reveal,
    /// Map a respondent identifier to its pseudonym and verbatims.
    Lookup,
    /// Read themes: labels, counts, trends and (with text permission) quotes.
    Themes,
    /// Every verbatim's theme, as a bulk list of ids.
    Assignments,
    /// Change themes: merge, rename, seed.
    EditThemes,
    /// Write a theme report.
    Report,
    /// Ask a question.
    Ask,
    /// Manage users and grants.
    Users,
    /// Read or verify the audit trail; incident reports.
    Audit,
    /// Erase verbatims: `forget`, `retention apply`.
    Erase,
    /// Export everything held about a respondent (GDPR Art. 15 / 20).
    Export,
    /// Make or restore an encrypted backup.
    Backup,
    /// Run the HTTP server (it holds the workspace key).
    Serve,
    /// Read the settings in force (`config show`): no data, but the workspace's paths (key,
    /// TLS files, model folders), the listening address and the privacy settings (retention,
    /// the names kept unredacted) — the operator's, as a security team expects.
    Config,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Action::Search => "search",
            Action::Stats => "read statistics",
            Action::Write => "write (ingest, reindex, links)",
            Action::Reveal => "read original texts",
            Action::Lookup => "look up respondents",
            Action::Themes => "read themes",
            Action::Assignments => "list theme assignments",
            Action::EditThemes => "edit themes",
            Action::Report => "write reports",
            Action::Ask => "ask",
            Action::Users => "manage users",
            Action::Audit => "read the audit trail",
            Action::Erase => "erase verbatims",
            Action::Export => "export a respondent's data",
            Action::Backup => "make backups",
            Action::Serve => "run the server",
            Action::Config => "read the configuration",
        })
    }
}

/// What a role gets for an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Refused.
    Deny,
    /// Allowed, verbatim text included (within the caller's scope).
    Full,
    /// Counts, shares, trends and labels only; no verbatim text; cells under k suppressed.
    Aggregates,
}

use Level::{Aggregates as A, Deny as D, Full as F};

/// The policy: one row per action, one column per role, in [`Role::ALL`] order
/// (admin, analyst, support, marketing, consultant). The README's table is this one.
pub const POLICY: &[(Action, [Level; 5])] = &[
    //                        admin analyst support marketing consultant
    (Action::Search, /*    */ [F, F, F, A, F]),
    (Action::Ask, /*       */ [F, F, F, A, F]),
    (Action::Themes, /*    */ [F, F, F, A, F]),
    (Action::Report, /*    */ [F, F, F, A, F]),
    (Action::Stats, /*     */ [F, F, F, A, D]),
    (Action::Assignments, [F, F, F, D, D]),
    (Action::EditThemes, [F, F, D, D, D]),
    (Action::Reveal, /*    */ [F, D, F, D, D]),
    (Action::Lookup, /*    */ [F, D, F, D, D]),
    (Action::Write, /*     */ [F, D, D, D, D]),
    (Action::Users, /*     */ [F, D, D, D, D]),
    (Action::Audit, /*     */ [F, D, D, D, D]),
    (Action::Erase, /*     */ [F, D, D, D, D]),
    (Action::Export, /*    */ [F, D, D, D, D]),
    (Action::Backup, /*    */ [F, D, D, D, D]),
    (Action::Serve, /*     */ [F, D, D, D, D]),
    (Action::Config, /*    */ [F, D, D, D, D]),
];

/// The level `role` gets for `action` (deny when the table has no row).
pub fn level(role: Role, action: Action) -> Level {
    let col = Role::ALL
        .iter()
        .position(|r| *r == role)
        .expect("every role has a column");
    POLICY
        .iter()
        .find(|(a, _)| *a == action)
        .map_or(Level::Deny, |(_, row)| row[col])
}

/// The smallest cell (theme × segment × period, or any count) shown to an aggregates-only
/// caller; smaller ones are suppressed.
pub const MIN_CELL: usize = 5;

/// Permission to read, with its limits. Only [`authorize`] makes one.
#[derive(Clone, Debug, Serialize)]
pub struct Grant {
    caller: Caller,
    action: Action,
    scope: Filter,
    may_read_text: bool,
    min_cell: usize,
}

impl Grant {
    /// The caller this grant was issued to.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The action granted.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The caller's filter narrowed to the grant's scope (AND of both; for a field present in
    /// both, only values allowed by both).
    pub fn restrict(&self, asked: &Filter) -> Filter {
        let mut f = asked.clone();
        for (k, allowed) in &self.scope.fields {
            let v = f.fields.entry(k.clone()).or_insert_with(|| allowed.clone());
            v.retain(|x| allowed.contains(x));
        }
        f.since = max_opt(f.since, self.scope.since, |a, b| a.max(b));
        f.until = max_opt(f.until, self.scope.until, |a, b| a.min(b));
        f.min_score = max_opt(f.min_score, self.scope.min_score, f64::max);
        f.max_score = max_opt(f.max_score, self.scope.max_score, f64::min);
        f
    }

    /// The grant's scope (empty: the whole workspace).
    pub fn scope(&self) -> &Filter {
        &self.scope
    }

    /// May the caller see verbatim text (as opposed to aggregates only)?
    pub fn may_read_text(&self) -> bool {
        self.may_read_text
    }

    /// Cells (counts) under this are suppressed (0: none are).
    pub fn min_cell(&self) -> usize {
        self.min_cell
    }

    /// A count as this caller may see it: `None` when under the k threshold.
    pub fn cell(&self, n: usize) -> Option<usize> {
        (n >= self.min_cell).then_some(n)
    }
}

fn max_opt<T: Copy>(a: Option<T>, b: Option<T>, pick: impl Fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

/// Errors from the door.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Deny by default.
    #[error(
        "{caller} ({role}) may not {action:?}: see `verbatim --help` and the README's role table"
    )]
    Denied {
        /// Who asked.
        caller: String,
        /// Its role.
        role: Role,
        /// What for.
        action: Action,
    },
    /// The grant has expired.
    #[error("{caller}'s access expired at {at} (UTC)")]
    Expired {
        /// Who asked.
        caller: String,
        /// When it ended.
        at: String,
    },
    /// No such user, revoked, or a wrong token.
    #[error("{0}")]
    Unauthenticated(String),
}

/// Decides what `caller` may do now. Deny by default.
pub fn authorize(caller: &Caller, action: Action) -> Result<Grant, AccessError> {
    authorize_at(caller, action, chrono::Utc::now().timestamp())
}

/// [`authorize`] at a given time (Unix seconds): a grant is refused from its expiry second on.
pub fn authorize_at(caller: &Caller, action: Action, now: i64) -> Result<Grant, AccessError> {
    let (scope, expires) = match caller {
        Caller::Owner => (Filter::default(), None),
        Caller::User(p) => (p.scope.clone(), p.expires),
    };
    if let Some(at) = expires {
        if now >= at {
            return Err(AccessError::Expired {
                caller: caller.name().to_string(),
                at: chrono::DateTime::from_timestamp(at, 0)
                    .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| at.to_string()),
            });
        }
    }
    let role = caller.role();
    let (may_read_text, min_cell) = match level(role, action) {
        Level::Deny => {
            return Err(AccessError::Denied {
                caller: caller.name().to_string(),
                role,
                action,
            })
        }
        Level::Full => (true, 0),
        Level::Aggregates => (false, MIN_CELL),
    };
    Ok(Grant {
        caller: caller.clone(),
        action,
        scope,
        may_read_text,
        min_cell,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> Caller {
        Caller::User(Principal {
            name: "u".into(),
            role,
            scope: Filter::default(),
            expires: None,
        })
    }

    #[test]
    fn restrict_intersects_scope_with_request() {
        let mut g = authorize(&Caller::Owner, Action::Search).unwrap();
        g.scope.fields.insert("country".into(), vec!["FR".into()]);
        g.scope.since = Some(100);
        let mut asked = Filter::default();
        asked
            .fields
            .insert("country".into(), vec!["FR".into(), "US".into()]);
        asked.since = Some(50);
        let f = g.restrict(&asked);
        assert_eq!(f.fields["country"], vec!["FR".to_string()]);
        assert_eq!(f.since, Some(100));
        let f = g.restrict(&Filter::default());
        assert_eq!(f.fields["country"], vec!["FR".to_string()]);
        assert!(g.may_read_text());
    }

    #[test]
    fn every_action_has_one_policy_row_and_admin_may_do_everything() {
        let mut seen = std::collections::HashSet::new();
        for (a, row) in POLICY {
            assert!(seen.insert(*a), "{a:?} has two rows");
            assert_eq!(row[0], Level::Full, "admin is denied {a:?}");
            // Marketing never gets text.
            assert_ne!(row[3], Level::Full, "marketing gets text for {a:?}");
        }
        assert_eq!(seen.len(), 17, "an action is missing from POLICY");
    }

    #[test]
    fn marketing_gets_aggregates_with_k_and_no_text() {
        let g = authorize(&user(Role::Marketing), Action::Search).unwrap();
        assert!(!g.may_read_text());
        assert_eq!(g.min_cell(), MIN_CELL);
        assert_eq!(g.cell(4), None);
        assert_eq!(g.cell(5), Some(5));
        assert!(authorize(&user(Role::Marketing), Action::Reveal).is_err());
    }

    #[test]
    fn a_grant_is_refused_from_its_expiry_second() {
        let c = Caller::User(Principal {
            name: "acme".into(),
            role: Role::Consultant,
            scope: Filter::default(),
            expires: Some(1_000),
        });
        assert!(authorize_at(&c, Action::Search, 999).is_ok());
        assert!(matches!(
            authorize_at(&c, Action::Search, 1_000),
            Err(AccessError::Expired { .. })
        ));
    }
}

/// The door a caller came in by. Errors that tell the user what to give say it in that door's
/// words (a CLI flag, a JSON field or form field of the HTTP API); nothing else depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Door {
    /// The `verbatim` command line.
    Cli,
    /// The HTTP API (`verbatim serve`).
    Http,
}
