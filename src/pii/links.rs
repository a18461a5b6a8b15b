//! Survey links that carry no personal data, and a scanner for links that do.
//!
//! A link made by [`make_link`] is `BASE_URL` + an opaque random token (144 bits, URL-safe
//! base64): nothing in it can be traced back to the customer without the workspace's token
//! table. [`check_url`] takes a URL as it arrives in a response export (a referrer, a
//! `survey_url` column) and reports every query parameter, path segment, fragment or userinfo
//! that carries personal data, after percent-decoding (`%40`, `%2B`, `+` for space).

use serde::Serialize;

use super::{detect, vault, PiiKind};

/// Bytes of randomness in a token (144 bits ≥ the 128 required; 24 base64url characters).
pub const TOKEN_BYTES: usize = 18;

/// URL-safe base64 without padding (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh opaque token: [`TOKEN_BYTES`] random bytes, URL-safe base64 without padding.
pub fn new_token() -> String {
    base64url(&vault::random_bytes(TOKEN_BYTES))
}

/// `base` + `token`, with a `/` between them unless `base` ends with `/`, `=` or `?`.
pub fn make_link(base: &str, token: &str) -> String {
    if base.ends_with('/') || base.ends_with('=') || base.ends_with('?') {
        format!("{base}{token}")
    } else {
        format!("{base}/{token}")
    }
}

/// Checks a base URL given to `links make`: it must be http(s), and carry no personal data.
pub fn check_base_url(base: &str) -> Result<(), String> {
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return Err(format!(
            "--base-url '{base}' must start with https:// (or http://)"
        ));
    }
    if let Some(f) = check_url(base).first() {
        return Err(format!(
            "--base-url carries personal data itself ({} in {})",
            f.kind, f.location
        ));
    }
    Ok(())
}

/// One place in a URL that carries personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UrlFinding {
    /// Where: `query:NAME`, `path[N]` (0-based segment), `fragment`, `fragment:NAME`, `userinfo`.
    pub location: String,
    /// What kind of personal data.
    pub kind: PiiKind,
    /// Why: `detected` (the value is personal data) or `parameter name` (the parameter is named
    /// like personal data — `email`, `phone`, `nom`… — and holds a value).
    pub reason: &'static str,
}

/// Percent-decodes, with `+` as a space when `plus_is_space` (query strings).
fn decode(s: &str, plus_is_space: bool) -> String {
    let s = if plus_is_space {
        s.replace('+', " ")
    } else {
        s.to_string()
    };
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The kind a parameter name suggests (`email`, `tel`, `nom`, `dob`…), if any.
fn kind_of_name(name: &str) -> Option<PiiKind> {
    let n: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    const EMAIL: &[&str] = &[
        "email",
        "mail",
        "emailaddress",
        "courriel",
        "useremail",
        "customeremail",
    ];
    const PHONE: &[&str] = &[
        "phone",
        "tel",
        "telephone",
        "mobile",
        "msisdn",
        "phonenumber",
        "portable",
        "cell",
    ];
    const PERSON: &[&str] = &[
        "name",
        "firstname",
        "lastname",
        "fullname",
        "surname",
        "givenname",
        "nom",
        "prenom",
        "prnom",
        "customername",
        "username",
        "fname",
        "lname",
    ];
    const DOB: &[&str] = &[
        "dob",
        "birthdate",
        "dateofbirth",
        "birthday",
        "datenaissance",
        "datedenaissance",
    ];
    const IBAN: &[&str] = &["iban", "bic"];
    const CARD: &[&str] = &["card", "cardnumber", "pan", "cc", "ccnum"];
    const NIR: &[&str] = &["nir", "ssn", "securitesociale", "numsecu"];
    const IP: &[&str] = &["ip", "ipaddress", "clientip"];
    for (list, kind) in [
        (EMAIL, PiiKind::Email),
        (PHONE, PiiKind::Phone),
        (PERSON, PiiKind::Person),
        (DOB, PiiKind::Dob),
        (IBAN, PiiKind::Iban),
        (CARD, PiiKind::Card),
        (NIR, PiiKind::Nir),
        (IP, PiiKind::Ip),
    ] {
        if list.contains(&n.as_str()) {
            return Some(kind);
        }
    }
    None
}

fn scan_value(location: String, value: &str, name: Option<&str>, out: &mut Vec<UrlFinding>) {
    let before = out.len();
    let mut kinds: Vec<PiiKind> = detect(value).into_iter().map(|s| s.kind).collect();
    kinds.dedup();
    for kind in kinds {
        if !out[before..].iter().any(|f| f.kind == kind) {
            out.push(UrlFinding {
                location: location.clone(),
                kind,
                reason: "detected",
            });
        }
    }
    if out.len() == before && !value.trim().is_empty() {
        if let Some(kind) = name.and_then(kind_of_name) {
            out.push(UrlFinding {
                location,
                kind,
                reason: "parameter name",
            });
        }
    }
}

fn scan_pairs(prefix: &str, s: &str, out: &mut Vec<UrlFinding>) {
    for pair in s.split(['&', ';']).filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name, true);
        if pair.contains('=') {
            scan_value(
                format!("{prefix}:{name}"),
                &decode(value, true),
                Some(&name),
                out,
            );
        } else {
            // A bare key (`?jean.dupont@example.fr`) is a value too.
            scan_value(format!("{prefix}:{name}"), &name, None, out);
        }
    }
}

/// Every place in `url` that carries personal data: userinfo, path segments, query parameters
/// and the fragment, each percent-decoded first. The host is not checked (it is the survey
/// server's, not the customer's).
pub fn check_url(url: &str) -> Vec<UrlFinding> {
    let mut out = Vec::new();
    let url = url.trim();
    let (rest, fragment) = match url.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (url, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    // scheme://authority/path
    let after_scheme = match rest.find("://") {
        Some(i) => &rest[i + 3..],
        None => rest,
    };
    let (authority, path) = match after_scheme.find('/') {
        Some(i) => (&after_scheme[..i], &after_scheme[i..]),
        None => (after_scheme, ""),
    };
    if let Some((userinfo, _host)) = authority.rsplit_once('@') {
        let ui = decode(userinfo, false);
        let before = out.len();
        scan_value("userinfo".into(), &ui, None, &mut out);
        if out.len() == before && !ui.is_empty() {
            // user:password in a link is a leak whatever it looks like.
            out.push(UrlFinding {
                location: "userinfo".into(),
                kind: PiiKind::Person,
                reason: "credentials in URL",
            });
        }
    }
    for (i, seg) in path.split('/').filter(|s| !s.is_empty()).enumerate() {
        scan_value(format!("path[{i}]"), &decode(seg, false), None, &mut out);
    }
    if let Some(q) = query {
        scan_pairs("query", q, &mut out);
    }
    if let Some(f) = fragment {
        if f.contains('=') {
            scan_pairs("fragment", f.trim_start_matches(['!', '/', '?']), &mut out);
        } else {
            scan_value("fragment".into(), &decode(f, false), None, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_url_safe_random_and_long_enough() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert_eq!(base64url(b"Man"), "TWFu");
    }

    #[test]
    fn links_join_base_and_token() {
        assert_eq!(
            make_link("https://s.example.com/s/", "T"),
            "https://s.example.com/s/T"
        );
        assert_eq!(
            make_link("https://s.example.com/s", "T"),
            "https://s.example.com/s/T"
        );
        assert_eq!(
            make_link("https://s.example.com/?t=", "T"),
            "https://s.example.com/?t=T"
        );
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("https://survey.example.com/s/").is_ok());
    }

    #[test]
    fn parameter_names_flag_values_even_when_the_value_is_not_recognised() {
        let f = check_url("https://s.example.com/r?nom=Dupont&lang=fr&utm_source=mail");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].location, "query:nom");
        assert_eq!(f[0].kind, PiiKind::Person);
        assert!(check_url("https://s.example.com/r?email=").is_empty());
        assert!(check_url("https://s.example.com/s/Zm9vYmFyYmF6cXV4cXV1eA?lang=en#top").is_empty());
    }

    #[test]
    fn credentials_in_the_authority_are_reported() {
        let f = check_url("https://bob:hunter2@s.example.com/x");
        assert_eq!(f[0].location, "userinfo");
    }
}
