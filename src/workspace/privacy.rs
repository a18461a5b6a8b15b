//! Privacy operations that need the workspace's keys: survey links, respondent lookup, and
//! reading a sealed original.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ingest::Original;
use super::{Workspace, WorkspaceError};
use crate::access::{Action, Grant};
use crate::ingest::{self, Format, ReadOptions};
use crate::pii::{self, links};

/// Errors of the privacy commands.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// Reading the input file failed.
    #[error(transparent)]
    Read(#[from] ingest::IngestError),
    /// Workspace failure.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Store failure.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Key failure.
    #[error(transparent)]
    Vault(#[from] pii::vault::VaultError),
    /// A bad argument.
    #[error("{0}")]
    Usage(String),
    /// No verbatim with that id.
    #[error("no verbatim with id '{0}'")]
    NotFound(String),
    /// The grant does not cover this action.
    #[error("this grant is for {granted:?}, not {wanted:?}")]
    WrongGrant {
        /// The action granted.
        granted: Action,
        /// The action needed.
        wanted: Action,
    },
}

/// One survey link.
#[derive(Clone, Debug, Serialize)]
pub struct Link {
    /// The customer id from the file (for the mailing system to join on).
    pub id: String,
    /// The opaque token.
    pub token: String,
    /// `base_url` + token.
    pub url: String,
    /// The respondent pseudonym the token stands for.
    pub pseudonym: String,
}

/// What `links make` did.
#[derive(Clone, Debug, Serialize)]
pub struct LinksMade {
    /// The input file.
    pub file: PathBuf,
    /// One link per customer row, in file order.
    pub links: Vec<Link>,
    /// Rows skipped (`file:line: reason`, redacted).
    pub errors: Vec<String>,
}

/// Makes one link per row of `path` (customer ids in `id_column`), records each token →
/// pseudonym in the store (one transaction) so responses that come back with the token are
/// attributed to the pseudonym, never to the customer id.
pub fn make_links(
    ws: &mut Workspace,
    path: &Path,
    format: Option<Format>,
    id_column: &str,
    base_url: &str,
) -> Result<LinksMade, PrivacyError> {
    links::check_base_url(base_url).map_err(PrivacyError::Usage)?;
    let _lock = ws.lock()?;
    let read = ingest::read_column(path, format, id_column, &ReadOptions::default())?;
    let mut made = LinksMade {
        file: path.to_path_buf(),
        links: Vec::new(),
        errors: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    for row in read.rows {
        match row {
            Err(e) => made.errors.push(pii::redact(&e.to_string()).into_string()),
            Ok(r) => {
                let pseudonym = ws.vault.pseudonym(&r.text);
                // The same customer written twice (case, spaces) is one respondent.
                if !seen.insert(pseudonym.clone()) {
                    made.errors.push(format!(
                        "{}:{}: customer already has a link earlier in the file",
                        path.display(),
                        r.line
                    ));
                    continue;
                }
                let token = links::new_token();
                made.links.push(Link {
                    url: links::make_link(base_url, &token),
                    pseudonym,
                    token,
                    id: r.text,
                });
            }
        }
    }
    let pairs: Vec<(String, String)> = made
        .links
        .iter()
        .map(|l| (l.token.clone(), l.pseudonym.clone()))
        .collect();
    ws.store.put_link_tokens(&pairs)?;
    Ok(made)
}

/// What `respondent lookup` says.
#[derive(Clone, Debug, Serialize)]
pub struct Respondent {
    /// The pseudonym of the identifier.
    pub pseudonym: String,
    /// Verbatims stored under it.
    pub verbatims: Vec<String>,
}

/// The pseudonym of an identifier (email, customer id, phone) and the verbatims stored under it.
pub fn lookup_respondent(ws: &Workspace, identifier: &str) -> Result<Respondent, PrivacyError> {
    let pseudonym = ws.vault.pseudonym(identifier);
    let verbatims = ws.store.ids_of_respondent(&pseudonym)?;
    Ok(Respondent {
        pseudonym,
        verbatims,
    })
}

/// A revealed original.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Revealed {
    /// The id as stored.
    pub id: String,
    /// The row as it was in the file (`None` when no original was kept: the stored text is
    /// then all there is).
    pub original: Option<Original>,
    /// The stored (redacted) text.
    pub redacted: String,
}

/// Decrypts the original of one verbatim. Needs a [`Grant`] for [`Action::Reveal`]; the read is
/// recorded in the audit trail by the caller ([`crate::service::reveal`]) before this runs.
pub(crate) fn reveal(ws: &Workspace, grant: &Grant, id: &str) -> Result<Revealed, PrivacyError> {
    if grant.action() != Action::Reveal {
        return Err(PrivacyError::WrongGrant {
            granted: grant.action(),
            wanted: Action::Reveal,
        });
    }
    let v = ws
        .store
        .get(id)?
        .ok_or_else(|| PrivacyError::NotFound(id.to_string()))?;
    let original = match ws.store.sealed_original(id)? {
        None => None,
        Some(sealed) => {
            let plain = ws.vault.unseal(id, &sealed)?;
            Some(
                serde_json::from_slice(&plain)
                    .map_err(|_| pii::vault::VaultError::Unseal { id: id.to_string() })?,
            )
        }
    };
    Ok(Revealed {
        id: id.to_string(),
        original,
        redacted: v.text,
    })
}
