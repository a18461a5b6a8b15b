//! The one door: every read of verbatims goes through [`authorize`], which returns a [`Grant`].
//!
//! Retrieval functions take a `&Grant`, so a read path that forgot to ask does not compile. For
//! now the workspace owner is the only caller and is granted everything; roles, scopes, expiry and
//! the audit chain plug in here later without touching the read paths. A grant can already carry
//! a *scope* — a filter that is ANDed with whatever the caller asks for — and can withhold text.

use serde::Serialize;

use crate::store::Filter;

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Caller {
    /// The person who runs the binary on their own workspace.
    Owner,
}

/// What the caller wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Search verbatims (text, vector, hybrid).
    Search,
    /// Read workspace statistics.
    Stats,
    /// Write: ingest, reindex, links.
    Write,
    /// Read a verbatim's sealed original (unredacted) text; every such read is logged.
    Reveal,
    /// Map a respondent identifier to its pseudonym and verbatims.
    Lookup,
    /// Read themes: labels, counts, trends and (with text permission) quotes.
    Themes,
    /// Change themes: merge, rename, seed.
    EditThemes,
    /// Write a theme report.
    Report,
}

/// Permission to read, with its limits. Only [`authorize`] makes one.
#[derive(Clone, Debug, Serialize)]
pub struct Grant {
    caller: Caller,
    action: Action,
    scope: Filter,
    may_read_text: bool,
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

    /// May the caller see verbatim text (as opposed to counts only)?
    pub fn may_read_text(&self) -> bool {
        self.may_read_text
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
    #[error("{caller:?} may not {action:?}")]
    Denied {
        /// Who asked.
        caller: Caller,
        /// What for.
        action: Action,
    },
}

/// Decides what `caller` may do. Deny by default; the owner may do everything.
pub fn authorize(caller: &Caller, action: Action) -> Result<Grant, AccessError> {
    match caller {
        Caller::Owner => Ok(Grant {
            caller: caller.clone(),
            action,
            scope: Filter::default(),
            may_read_text: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
