//! `verbatim serve`: the resolved settings (`verbatim::settings`: flags > env > verbatim.toml >
//! defaults), handed whole to the server in `server::ServeOptions`, the loud warning for plain
//! HTTP beyond loopback, then run until SIGINT / SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use clap::Args;

use verbatim::access::Action;
use verbatim::embed::Embedder;
use verbatim::server::{self, ServeOptions};
use verbatim::workspace::Workspace;

use super::{load_model, model_dir, Global};

/// `verbatim serve` flags.
#[derive(Args, Debug)]
pub(super) struct ServeArgs {
    /// Address to listen on (else $VERBATIM_BIND, `serve.bind` in verbatim.toml, 127.0.0.1:8080).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS (else $VERBATIM_TLS_CERT).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) (else $VERBATIM_TLS_KEY).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Requests per second per token (else $VERBATIM_SERVE_RATE, `serve.rate_per_second`, 10).
    #[arg(long, value_parser = super::finite)]
    rate_per_second: Option<f64>,
    /// Requests a token may burst before the rate applies (else $VERBATIM_SERVE_BURST,
    /// `serve.burst`, 20).
    #[arg(long, value_parser = super::ranged_u32(verbatim::limits::BURST))]
    burst: Option<u32>,
    /// Largest JSON body in bytes (else $VERBATIM_SERVE_MAX_BODY, `serve.max_body_bytes`, 1 MiB).
    #[arg(long, value_parser = super::ranged(verbatim::limits::BODY_BYTES))]
    max_body_bytes: Option<usize>,
    /// Largest ingest upload in bytes (else $VERBATIM_SERVE_MAX_INGEST,
    /// `serve.max_ingest_bytes`, 64 MiB).
    #[arg(long, value_parser = super::ranged(verbatim::limits::BODY_BYTES))]
    max_ingest_bytes: Option<usize>,
    /// Requests that read at once — read connections to the store, and async worker
    /// threads (else $VERBATIM_SERVE_READERS, `serve.readers`, the machine's cores).
    #[arg(long, value_parser = super::ranged(verbatim::limits::READERS))]
    readers: Option<usize>,
}

impl ServeArgs {
    /// The flags, as the command-line layer of the settings.
    pub(super) fn overrides(&self, o: &mut verbatim::settings::Overrides) {
        o.bind = self.bind;
        o.tls_cert = self.tls_cert.clone();
        o.tls_key = self.tls_key.clone();
        o.rate_per_second = self.rate_per_second;
        o.burst = self.burst;
        o.max_body_bytes = self.max_body_bytes;
        o.max_ingest_bytes = self.max_ingest_bytes;
        o.readers = self.readers;
    }
}

pub(super) fn cmd_serve(g: &Global, root: &Path, _flags: ServeArgs) -> Result<i32> {
    let mut ws = Workspace::open(root)?;
    // The server holds the workspace key: only whoever may run it (the owner, an admin).
    let (models, settings) = (super::models(g), super::session_settings(g));
    super::session(&mut ws, "serve", &models, &settings)?.check(Action::Serve)?;
    // Flags, environment and verbatim.toml were resolved (and checked) by `run`; the server
    // keeps them for every request.
    let opts = ServeOptions {
        settings: g.settings().clone(),
        handle_signals: true,
        model_dir: model_dir(g, Some(&ws)).ok(),
    };
    let bind = opts.settings.serve.bind.value;
    if server::exposed_without_tls(&bind, opts.tls().is_some()) {
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
    drop(ws);
    // `--workspace A --workspace B`: the shards of one corpus; the first (`root`) is the door.
    let mut roots = vec![root.to_path_buf()];
    roots.extend(g.workspace.iter().skip(1).cloned());
    if roots.len() > 1 && !g.quiet {
        eprintln!(
            "serving {} workspaces as one corpus; users, tokens and the audit trail are those of {}",
            roots.len(),
            root.display()
        );
    }
    let running = server::start_shards(&roots, embedder, opts)?;
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
