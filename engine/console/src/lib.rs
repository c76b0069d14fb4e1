//! Vigil's risk console: the running engine serves a live page of its decisions, a drill-down
//! into any customer (their features as their actor holds them, or as the state store keeps
//! them), and buttons for analysts' verdicts, which go to the feedback sink (`verdicts`) as labelled records
//! that `vigil train --labels` and `vigil replay --labels` read back.
//!
//! It runs on the engine's own runtime and never slows it: decisions reach it on the
//! publisher's broadcast (`Following`), which never waits for a reader; a bounded ring keeps the
//! recent ones (`recent`); stream clients that fall behind are dropped (`streams`). Analysts
//! are known by their bearer tokens (`auth`). The routes are in `api`.

mod api;
pub mod auth;
mod recent;
mod streams;
mod verdicts;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use vigil_engine::config::Config;
use vigil_engine::pipeline::connectors::Connectors;
use vigil_engine::pipeline::lookout::Lookout;
use vigil_engine::telemetry::Telemetry;
use vigil_engine::Error;

pub use recent::MAX_LIMIT;
pub use streams::{STREAM_CLIENTS, STREAM_DROPPED};

use api::Shared;
use auth::Tokens;
use recent::Recent;
use verdicts::Verdicts;

/// A console being served; it stops when dropped.
pub struct Console {
    pub address: SocketAddr,
    /// Whether the API asks for analysts' tokens.
    pub tokens_required: bool,
    serving: JoinHandle<()>,
    keeping: JoinHandle<()>,
}

impl Drop for Console {
    fn drop(&mut self) {
        self.serving.abort();
        self.keeping.abort();
    }
}

/// Serves the console `config` describes (`[console]`) for the run `lookout` watches, writing
/// verdicts to the feedback sink through `connectors`. Without tokens it serves only a
/// loopback address. Errors name the key at fault.
pub async fn serve(
    config: &Config,
    lookout: Arc<Lookout>,
    connectors: Connectors,
) -> Result<Console, Error> {
    let settings = &config.console;
    let tokens = Tokens::load(config)?;
    let verdicts = Verdicts::new(config, connectors)?;
    if !tokens.required() && !settings.listen.ip().is_loopback() {
        return Err(config.invalid(
            "console.listen",
            format!(
                "is {}, not a loopback address, and the console has no tokens (console.token_file, or ${}): give analysts tokens to serve beyond this machine",
                settings.listen, settings.token_env
            ),
        ));
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| config.invalid("console.listen", format!("cannot be bound: {e}")))?;
    let address = listener
        .local_addr()
        .map_err(|e| config.invalid("console.listen", format!("has no local address: {e}")))?;
    let recent = Arc::new(Recent::new(settings.recent));
    let keeping = tokio::spawn(recent.clone().keep(lookout.following.subscribe()));
    let tokens_required = tokens.required();
    let shared = Shared {
        lookout,
        recent,
        tokens: Arc::new(tokens),
        verdicts: Arc::new(Mutex::new(verdicts)),
        telemetry: Telemetry::new(),
        stream_clients: Arc::new(AtomicU64::new(0)),
    };
    let app = api::routes(shared);
    let serving = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "The console stopped serving.");
        }
    });
    if tokens_required {
        tracing::info!(url = %format!("http://{address}/"), "Risk console serving; analysts sign in with their tokens.");
    } else {
        tracing::warn!(url = %format!("http://{address}/"), "Risk console serving without tokens, so on this machine only (loopback); verdicts are recorded as `local`. Set console.token_file or ${} to require tokens.", settings.token_env);
    }
    Ok(Console {
        address,
        tokens_required,
        serving,
        keeping,
    })
}
