//! Vigil's Fluvio connector: the one place the engine talks to a Fluvio cluster. `client`
//! resolves the endpoint and connects; `reader` reads one partition without gaps, for every
//! reader here; `source` reads a topic (one reader per partition, with consumer offsets
//! committed only behind published decisions); `sink` produces to a topic
//! keyed by customer id; `produce`, `tail` and `topics` do the work of the commands of the
//! same names. `register` adds the `fluvio:TOPIC` source and sink to an engine's connectors.
//!
//! Its tests run against a live cluster when `FLUVIO_ENDPOINT` is set (see the README).

pub mod client;
mod error;
pub mod produce;
pub mod reader;
pub mod sink;
pub mod source;
pub mod tail;
pub mod topics;

pub use error::{Error, Result};

use vigil_engine::pipeline::Connectors;
use vigil_engine::sink::Sink;
use vigil_engine::source::Source;

/// `connectors` with the `fluvio:TOPIC` source and sink.
pub fn register(connectors: Connectors) -> Connectors {
    connectors
        .source("fluvio", "fluvio:TOPIC", |topic, options| {
            Box::pin(async move {
                let source: Box<dyn Source> =
                    Box::new(source::FluvioSource::open(&topic, options).await?);
                Ok(source)
            })
        })
        .sink("fluvio", "fluvio:TOPIC", |topic, settings| {
            Box::pin(async move {
                let sink: Box<dyn Sink> =
                    Box::new(sink::FluvioSink::open(&topic, &settings.fluvio).await?);
                Ok(sink)
            })
        })
}
