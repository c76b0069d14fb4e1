//! Vigil's webhook connector: decisions delivered to the tools that act on them, a CRM or
//! messaging platform for outreach, a case tool for fraud. `sink` POSTs signed, retried,
//! rate-limited batches to one endpoint and parks what it cannot deliver; `signature` is the
//! scheme every request is signed with, which receivers (and `vigil webhook verify`) check.
//! `register` adds the `webhook:URL` sink to an engine's connectors.

pub mod signature;
pub mod sink;

use vigil_engine::pipeline::Connectors;
use vigil_engine::sink::Sink;

/// `connectors` with the `webhook:URL` sink.
pub fn register(connectors: Connectors) -> Connectors {
    connectors.sink("webhook", "webhook:URL", |url, options| {
        Box::pin(async move {
            let sink: Box<dyn Sink> = Box::new(sink::WebhookSink::open(&url, &options).await?);
            Ok(sink)
        })
    })
}
