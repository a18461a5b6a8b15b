//! Users, grants and tokens, and the door as callers use it ([`Workspace::enter`],
//! [`Workspace::record`]).
//!
//! A token is `vbt_<id>_<secret>`: the id (64 random bits, hex) finds the row, the secret (256
//! random bits, hex) is checked against its Argon2id hash (RFC 9106; m = 19 MiB, t = 2, p = 1,
//! the OWASP baseline: ~20 ms per check here, so a stolen store does not give tokens back by
//! brute force). The token is printed once, at creation; it is never stored.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Serialize;

use super::{Workspace, WorkspaceError};
use crate::access::{self, AccessError, Action, Caller, Grant, Principal, Role};
#[cfg(test)]
use crate::store::Filter;
use crate::store::{PrincipalRecord, UserError};

/// Errors managing users.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// Name taken or unknown.
    #[error(transparent)]
    User(#[from] UserError),
    /// A name verbatim does not accept.
    #[error("user name {0:?}: use 1 to 64 letters, digits, '.', '_' or '-'")]
    BadName(String),
    /// Consultant grants must expire; other roles are users.
    #[error("{0}")]
    BadGrant(String),
    /// Workspace or store error.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
}

/// A user or grant just made, with its token (shown once).
#[derive(Clone, Debug, Serialize)]
pub struct NewPrincipal {
    /// The record.
    pub record: PrincipalRecord,
    /// The bearer token: `VERBATIM_TOKEN=…` for the CLI, `Authorization: Bearer …` for HTTP.
    pub token: String,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl Workspace {
    /// Adds a user (`kind` "user", no scope, no expiry) or a grant (`kind` "grant": a consultant
    /// with a scope and an expiry). `by` is the caller making it.
    pub fn add_principal(
        &mut self,
        principal: Principal,
        kind: &str,
        by: &Caller,
    ) -> Result<NewPrincipal, UsersError> {
        if !valid_name(&principal.name) {
            return Err(UsersError::BadName(principal.name));
        }
        if principal.role == Role::Consultant && principal.expires.is_none() {
            return Err(UsersError::BadGrant(
                "a consultant's access must end: use `verbatim grant add NAME --role consultant --expires DATE [--where field=value]`".into(),
            ));
        }
        let token_id = hex::encode(crate::pii::vault::random_bytes(8));
        let secret = hex::encode(crate::pii::vault::random_bytes(32));
        let salt = SaltString::encode_b64(&crate::pii::vault::random_bytes(16))
            .expect("16 bytes is a valid salt");
        let hash = argon2()
            .hash_password(secret.as_bytes(), &salt)
            .expect("Argon2id hashes any input")
            .to_string();
        let record = PrincipalRecord {
            principal,
            kind: kind.to_string(),
            token_id: token_id.clone(),
            created_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            created_by: by.name().to_string(),
            revoked_at: None,
        };
        self.store
            .add_principal(&record, &hash)
            .map_err(WorkspaceError::from)??;
        Ok(NewPrincipal {
            record,
            token: format!("vbt_{token_id}_{secret}"),
        })
    }

    /// Revokes a user or grant: its token is refused from the next request on.
    pub fn revoke_principal(&mut self, name: &str) -> Result<String, UsersError> {
        Ok(self
            .store
            .revoke_principal(name)
            .map_err(WorkspaceError::from)??)
    }

    /// The caller a token belongs to (Argon2id check: slow on purpose, cache the result by a
    /// digest of the token in long-running servers; [`Workspace::enter`] still re-checks
    /// revocation and expiry on every request).
    pub fn authenticate(&self, token: &str) -> Result<Caller, AccessError> {
        let bad = || {
            AccessError::Unauthenticated(
                "invalid token (VERBATIM_TOKEN or the Authorization header): ask an admin for a new one".into(),
            )
        };
        let rest = token.trim().strip_prefix("vbt_").ok_or_else(bad)?;
        let (id, secret) = rest.split_once('_').ok_or_else(bad)?;
        let (record, hash) = self
            .store
            .principal_by_token_id(id)
            .map_err(|e| AccessError::Unauthenticated(e.to_string()))?
            .ok_or_else(bad)?;
        let parsed = PasswordHash::new(&hash).map_err(|_| bad())?;
        argon2()
            .verify_password(secret.as_bytes(), &parsed)
            .map_err(|_| bad())?;
        if let Some(at) = &record.revoked_at {
            return Err(AccessError::Unauthenticated(format!(
                "{}'s token was revoked at {at}",
                record.principal.name
            )));
        }
        Ok(Caller::User(record.principal))
    }

    /// The caller as the store knows it now: revoked callers are refused, and role, scope and
    /// expiry are the stored ones (a change applies from the next request).
    pub fn recheck(&self, caller: &Caller) -> Result<Caller, AccessError> {
        match caller {
            Caller::Owner => Ok(Caller::Owner),
            Caller::User(p) => {
                let r = self
                    .store
                    .principal(&p.name)
                    .map_err(|e| AccessError::Unauthenticated(e.to_string()))?
                    .ok_or_else(|| {
                        AccessError::Unauthenticated(format!("no user named {:?}", p.name))
                    })?;
                if let Some(at) = r.revoked_at {
                    return Err(AccessError::Unauthenticated(format!(
                        "{}'s token was revoked at {at}",
                        p.name
                    )));
                }
                Ok(Caller::User(r.principal))
            }
        }
    }

    /// The door: re-checks the caller (revocation, expiry — on every request) and returns what
    /// it may do for `action`, or why not.
    pub fn enter(&self, caller: &Caller, action: Action) -> Result<Grant, AccessError> {
        access::authorize(&self.recheck(caller)?, action)
    }

    /// Appends the audit entry for a read or write made under `grant` (`via`: the command or
    /// route), durably, before the results are returned.
    pub fn record(
        &mut self,
        grant: &Grant,
        via: &str,
        detail: &crate::store::AuditDetail,
    ) -> Result<i64, WorkspaceError> {
        let caller = grant.caller().name().to_string();
        self.append_audit(&caller, via, detail)
    }
}

/// Parses `--expires`: a date (access ends at the start of the next day, UTC) or an RFC 3339
/// time. Unix seconds.
pub fn parse_expiry(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_authenticate_once_made_and_fail_when_revoked_or_altered() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = Workspace::init(dir.path()).unwrap();
        let p = Principal {
            name: "alice".into(),
            role: Role::Analyst,
            scope: Filter::default(),
            expires: None,
        };
        let made = ws.add_principal(p.clone(), "user", &Caller::Owner).unwrap();
        assert!(made.token.starts_with("vbt_"));
        assert_eq!(
            ws.authenticate(&made.token).unwrap(),
            Caller::User(p.clone())
        );
        // The token is not in the store.
        let rows = ws.store.principals().unwrap();
        assert!(!format!("{rows:?}").contains(made.token.rsplit('_').next().unwrap()));
        // One character changed: refused.
        let mut bad = made.token.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert!(ws.authenticate(&bad).is_err());
        assert!(ws.authenticate("nonsense").is_err());
        // Names are never reused.
        assert!(matches!(
            ws.add_principal(p, "user", &Caller::Owner),
            Err(UsersError::User(UserError::Exists(_)))
        ));
        let caller = ws.authenticate(&made.token).unwrap();
        ws.revoke_principal("alice").unwrap();
        assert!(ws.authenticate(&made.token).is_err());
        assert!(matches!(
            ws.enter(&caller, Action::Search),
            Err(AccessError::Unauthenticated(_))
        ));
    }

    #[test]
    fn expiry_dates_end_at_midnight_after_the_day() {
        assert_eq!(parse_expiry("2025-01-31"), Some(1_738_368_000));
        assert_eq!(parse_expiry("2025-01-31T10:00:00Z"), Some(1_738_317_600));
        assert_eq!(parse_expiry("31/01/2025"), None);
    }
}
