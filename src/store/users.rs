//! Users and grants (schema v5): who may call, with which role, scope and expiry. Tokens are
//! never stored: only an Argon2id hash of their secret part (see `workspace::users`).

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{now_iso, Filter, Result, Store, StoreError};

/// The roles, least privileged last. See [`crate::access::POLICY`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: users, erasure, backups, audit.
    Admin,
    /// Redacted verbatims, themes, reports, ask; no originals.
    Analyst,
    /// An analyst who may also read the original (decrypted) text, one verbatim at a time, each
    /// read logged.
    Support,
    /// Aggregates only: counts, shares, trends, theme labels; no verbatim text anywhere; cells
    /// under k suppressed.
    Marketing,
    /// An analyst limited to its grant's scope, until the grant expires.
    Consultant,
}

impl Role {
    /// All roles, in [`crate::access::POLICY`] column order.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Analyst,
        Role::Support,
        Role::Marketing,
        Role::Consultant,
    ];

    /// Its name as typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Support => "support",
            Role::Marketing => "marketing",
            Role::Consultant => "consultant",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A user or a grant, as stored (see `store::Principal` for the record).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Principal {
    /// Its unique name ("alice", "acme").
    pub name: String,
    /// Its role.
    pub role: Role,
    /// What it may see at most (consultant grants; empty for the others).
    pub scope: Filter,
    /// Unix seconds after which it is refused (consultant grants).
    pub expires: Option<i64>,
}

/// One user or grant as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PrincipalRecord {
    /// Name, role, scope and expiry.
    #[serde(flatten)]
    pub principal: Principal,
    /// "user" or "grant".
    pub kind: String,
    /// The token's public id (`vbt_<id>_…`), to match audit and logs without the secret.
    pub token_id: String,
    /// When it was made (UTC).
    pub created_at: String,
    /// Who made it.
    pub created_by: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// Errors specific to users.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Names are never reused (the audit trail names callers).
    #[error("a user or grant named {0:?} already exists (names are never reused, even after revocation: pick another)")]
    Exists(String),
    /// No such name.
    #[error("no user or grant named {0:?} (`verbatim user list`)")]
    NotFound(String),
}

impl Store {
    fn sql_err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Adds a user or grant; `Ok(Err(Exists))` when the name is taken.
    pub fn add_principal(
        &self,
        rec: &PrincipalRecord,
        token_hash: &str,
    ) -> Result<std::result::Result<(), UserError>> {
        let p = &rec.principal;
        let scope = serde_json::to_string(&p.scope).expect("a filter serialises");
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO principals(name, kind, role, scope, expires, token_id, \
                 token_hash, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    p.name,
                    rec.kind,
                    p.role.as_str(),
                    scope,
                    p.expires,
                    rec.token_id,
                    token_hash,
                    rec.created_at,
                    rec.created_by
                ],
            )
            .map_err(self.sql_err())?;
        Ok(if n == 1 {
            Ok(())
        } else {
            Err(UserError::Exists(p.name.clone()))
        })
    }

    fn principal_where(
        &self,
        clause: &str,
        key: &str,
    ) -> Result<Option<(PrincipalRecord, String)>> {
        let sql = format!(
            "SELECT name, kind, role, scope, expires, token_id, created_at, created_by, revoked_at, \
             token_hash FROM principals WHERE {clause} = ?1"
        );
        let row = self
            .conn
            .query_row(&sql, [key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, String>(9)?,
                ))
            })
            .optional()
            .map_err(self.sql_err())?;
        row.map(
            |(name, kind, role, scope, expires, token_id, at, by, revoked, hash)| {
                let damaged = |what: &str| StoreError::Damaged {
                    path: self.path.clone(),
                    what: format!("principals[{name}].{what}"),
                };
                let role = Role::parse(&role).ok_or_else(|| damaged("role"))?;
                let scope: Filter = serde_json::from_str(&scope).map_err(|_| damaged("scope"))?;
                Ok((
                    PrincipalRecord {
                        principal: Principal {
                            name: name.clone(),
                            role,
                            scope,
                            expires,
                        },
                        kind,
                        token_id,
                        created_at: at,
                        created_by: by,
                        revoked_at: revoked,
                    },
                    hash,
                ))
            },
        )
        .transpose()
    }

    /// The record and token hash for a token id.
    pub fn principal_by_token_id(
        &self,
        token_id: &str,
    ) -> Result<Option<(PrincipalRecord, String)>> {
        self.principal_where("token_id", token_id)
    }

    /// The record of a name.
    pub fn principal(&self, name: &str) -> Result<Option<PrincipalRecord>> {
        Ok(self.principal_where("name", name)?.map(|x| x.0))
    }

    /// Every user and grant, by name.
    pub fn principals(&self) -> Result<Vec<PrincipalRecord>> {
        let names: Vec<String> = {
            let mut st = self
                .conn
                .prepare("SELECT name FROM principals ORDER BY name")
                .map_err(self.sql_err())?;
            let rows = st
                .query_map([], |r| r.get(0))
                .map_err(self.sql_err())?
                .collect::<std::result::Result<Vec<String>, _>>()
                .map_err(self.sql_err())?;
            rows
        };
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.extend(self.principal(&n)?);
        }
        Ok(out)
    }

    /// Revokes a name (kept, so the audit trail still resolves). `Ok(Err(NotFound))` when
    /// unknown; revoking twice keeps the first time.
    pub fn revoke_principal(&self, name: &str) -> Result<std::result::Result<String, UserError>> {
        self.conn
            .execute(
                "UPDATE principals SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                params![name, now_iso()],
            )
            .map_err(self.sql_err())?;
        Ok(match self.principal(name)? {
            Some(r) => Ok(r.revoked_at.unwrap_or_default()),
            None => Err(UserError::NotFound(name.to_string())),
        })
    }
}
