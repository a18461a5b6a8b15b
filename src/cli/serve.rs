//! `verbatim serve`: flags → `server::ServeOptions` (flags > env > `[serve]` in verbatim.toml >
//! defaults), the loud warning for plain HTTP beyond loopback, then run until SIGINT / SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;

use verbatim::access::Action;
use verbatim::embed::Embedder;
use verbatim::server::{self, AskSettings, ServeOptions, TlsFiles};
use verbatim::workspace::Workspace;

use super::{load_model, model_dir, Global};

/// `verbatim serve` flags.
#[derive(Args, Debug)]
pub(super) struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080, or `serve.bind` in verbatim.toml).
    #[arg(long, env = "VERBATIM_BIND")]
    bind: Option<SocketAddr>,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key", env = "VERBATIM_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert", env = "VERBATIM_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Requests per second per token (default 10, or `serve.rate_per_second`).
    #[arg(long, env = "VERBATIM_SERVE_RATE", value_parser = super::finite)]
    rate_per_second: Option<f64>,
    /// Requests a token may burst before the rate applies (default 20, or `serve.burst`).
    #[arg(long, env = "VERBATIM_SERVE_BURST", value_parser = super::ranged_u32(verbatim::limits::BURST))]
    burst: Option<u32>,
    /// Largest JSON body in bytes (default 1 MiB, or `serve.max_body_bytes`).
    #[arg(long, env = "VERBATIM_SERVE_MAX_BODY", value_parser = super::ranged(verbatim::limits::BODY_BYTES))]
    max_body_bytes: Option<usize>,
    /// Largest ingest upload in bytes (default 64 MiB, or `serve.max_ingest_bytes`).
    #[arg(long, env = "VERBATIM_SERVE_MAX_INGEST", value_parser = super::ranged(verbatim::limits::BODY_BYTES))]
    max_ingest_bytes: Option<usize>,
}

pub(super) fn cmd_serve(g: &Global, root: &Path, a: ServeArgs) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    // The server holds the workspace key: only whoever may run it (the owner, an admin).
    let (models, settings) = (super::models(g), verbatim::service::Settings::default());
    super::session(&mut ws, "serve", &models, &settings)?.check(Action::Serve)?;
    let mut limits = ws.config.serve.clone();
    if let Some(r) = a.rate_per_second {
        limits.rate_per_second = r;
    }
    if let Some(b) = a.burst {
        limits.burst = b;
    }
    if let Some(n) = a.max_body_bytes {
        limits.max_body_bytes = n;
    }
    if let Some(n) = a.max_ingest_bytes {
        limits.max_ingest_bytes = n;
    }
    // NaN is refused too.
    if !limits.rate_per_second.is_finite() || limits.rate_per_second <= 0.0 || limits.burst == 0 {
        bail!("serve: rate_per_second and burst must be above 0 (--rate-per-second / --burst, VERBATIM_SERVE_RATE / _BURST, or [serve] in verbatim.toml)");
    }
    let bind = match a.bind {
        Some(b) => b,
        None => limits.bind.parse().with_context(|| {
            format!(
                "serve.bind {:?} in verbatim.toml: expected an address like 127.0.0.1:8080",
                limits.bind
            )
        })?,
    };
    let tls = match (a.tls_cert, a.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    if server::exposed_without_tls(&bind, tls.is_some()) {
        eprintln!(
            "\n\
             ************************************************************************\n\
             WARNING: serving PLAIN HTTP on {bind}, which is not a loopback address.\n\
             Bearer tokens and customer verbatims will cross the network UNENCRYPTED.\n\
             Use --tls-cert FILE --tls-key FILE, or bind 127.0.0.1 behind a TLS proxy.\n\
             ************************************************************************\n"
        );
    }
    // The model is loaded once for the server's life. Without it, text search still works;
    // ingest, vector search, themes and ask answer 500 and the log says why.
    let embedder: Option<Arc<dyn Embedder>> = match load_model(g, Some(&ws)) {
        Ok(m) => Some(Arc::new(m)),
        Err(e) => {
            eprintln!(
                "warning: the embedding model did not load ({e:#}): only text search will work"
            );
            None
        }
    };
    let (min_cosine, count_cosine) = super::ask::thresholds(g, &ws);
    let ask = AskSettings {
        generator: super::ask::generator_path(g, Some(&ws), &ws.config.ask.model).ok(),
        min_cosine,
        count_cosine,
    };
    let opts = ServeOptions {
        bind,
        tls,
        limits,
        handle_signals: true,
        model_dir: model_dir(g, Some(&ws)).ok(),
        ask,
    };
    drop(ws);
    let running = server::start(root, embedder, opts)?;
    let scheme = if running.is_tls() { "https" } else { "http" };
    if g.json {
        super::output::json(
            &serde_json::json!({ "listening": format!("{scheme}://{}", running.addr()) }),
        );
    } else {
        println!("listening on {scheme}://{}", running.addr());
    }
    if !g.quiet {
        eprintln!("routes: GET {scheme}://{}/openapi.json; Ctrl-C or SIGTERM stops after requests in flight", running.addr());
    }
    running.wait();
    if !g.quiet {
        eprintln!("stopped");
    }
    Ok(0)
}
