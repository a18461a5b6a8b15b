//! verbatim opens no outbound connection, and no HTTP *client* crate may be in its dependency
//! tree (the server side, axum / hyper's server, is fine). Cargo.lock is the whole tree,
//! dev-dependencies included: none of these may appear in it.

const HTTP_CLIENTS: &[&str] = &[
    "reqwest",
    "ureq",
    "isahc",
    "curl",
    "curl-sys",
    "attohttpc",
    "surf",
    "hyper-rustls",
    "hyper-tls",
    "awc",
    "minreq",
];

#[test]
fn no_http_client_crate_in_cargo_lock() {
    let lock =
        std::fs::read_to_string(crate::common::repo().join("Cargo.lock")).expect("Cargo.lock");
    let names: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .collect();
    assert!(
        names.len() > 100,
        "Cargo.lock not parsed: {} packages",
        names.len()
    );
    let found: Vec<&&str> = names.iter().filter(|n| HTTP_CLIENTS.contains(n)).collect();
    assert!(
        found.is_empty(),
        "HTTP client crates in Cargo.lock: {found:?}"
    );
}
