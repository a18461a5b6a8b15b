//! Personal data: detection, redaction, pseudonyms, encrypted originals, survey links.
//!
//! Nothing a customer wrote reaches an embedding, an index, a theme, a prompt or a screen before
//! it went through [`redact`]: the store and the indexes take [`Redacted`] text, a type only
//! [`redact`] can make. The original text is kept only sealed ([`vault`]) under a key that lives
//! in the workspace key file, never in the store; respondents become keyed pseudonyms.
//!
//! * [`detect`] finds spans of personal data (validated: Luhn, mod-97, NIR key, …) in EN and FR.
//! * [`redact`] replaces each span with a typed placeholder (`<EMAIL>`, `<PHONE>`, …).
//! * [`vault`] holds the workspace secrets: the key that seals originals and the pseudonym key.
//! * [`links`] makes survey links that carry an opaque token only, and checks URLs for personal data.

pub mod detect;
pub mod links;
mod redact;
pub mod scan;
pub mod vault;

use serde::{Deserialize, Serialize};

pub use detect::detect;
pub use redact::{redact, Redacted};

/// A kind of personal data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PiiKind {
    /// An email address.
    Email,
    /// A phone number.
    Phone,
    /// An IBAN (mod-97 checked).
    Iban,
    /// A payment card number (Luhn checked).
    Card,
    /// An IPv4 or IPv6 address.
    Ip,
    /// A French social security number (NIR, key checked).
    Nir,
    /// A date of birth (a date in a birth context).
    Dob,
    /// A person's name (in context: title, "my name is", greeting, signature, first-name list).
    Person,
}

impl PiiKind {
    /// Every kind, in a fixed order.
    pub const ALL: [PiiKind; 8] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::Iban,
        PiiKind::Card,
        PiiKind::Ip,
        PiiKind::Nir,
        PiiKind::Dob,
        PiiKind::Person,
    ];

    /// The placeholder that replaces a span of this kind.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "<EMAIL>",
            PiiKind::Phone => "<PHONE>",
            PiiKind::Iban => "<IBAN>",
            PiiKind::Card => "<CARD>",
            PiiKind::Ip => "<IP>",
            PiiKind::Nir => "<NIR>",
            PiiKind::Dob => "<DOB>",
            PiiKind::Person => "<PERSON>",
        }
    }

    /// Lower-case name (`email`, `phone`, …), as in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::Iban => "iban",
            PiiKind::Card => "card",
            PiiKind::Ip => "ip",
            PiiKind::Nir => "nir",
            PiiKind::Dob => "dob",
            PiiKind::Person => "person",
        }
    }

    /// Parses [`PiiKind::name`].
    pub fn from_name(s: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl std::fmt::Display for PiiKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One detected span: `text[start..end]` is personal data of `kind` (byte offsets on char
/// boundaries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Span {
    /// Start byte.
    pub start: usize,
    /// End byte (exclusive).
    pub end: usize,
    /// What it is.
    pub kind: PiiKind,
}
