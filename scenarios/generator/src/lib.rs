//! Vigil's scenario generator: the scenario file format (`scenario`), its arrival-rate
//! `schedule`, and the seeded `generator` with its `generate:PATH.toml` source, which
//! `register` adds to an engine's connectors.
//!
//! The generator is a seeded, labelled stream of schema
//! v1 records with a benign majority that has per-customer habits (home country, usual
//! merchants, typical amounts, waking hours) and skewed activity, optional hot customers,
//! injected account takeovers, card-testing bursts, fraud rings and churn cohorts, plus
//! malformed records.
//!
//! The generator produces bytes, exactly what a broker would deliver, so generated traffic
//! goes through the same decoding as any other source. `GroundTruth` records what was
//! injected, for tests and load reports. The source releases records on the scenario's
//! wall-clock `Schedule` and stamps each with its intended send time, so latency measured from
//! that stamp includes any time a record waited to be read (no coordinated omission).

mod error;
mod generator;
mod scenario;
mod schedule;
mod source;
mod world;

pub use error::{Error, Result};
pub use generator::{GeneratedRecord, Generator, GroundTruth};
pub use scenario::{FraudInjection, HotCustomers, MalformedKind, Phase, Scenario, Targets};
pub use schedule::Schedule;
pub use source::{GeneratorSource, Pacing};

use std::path::Path;

use vigil_engine::pipeline::Connectors;
use vigil_engine::source::Source;

/// `connectors` with the `generate:PATH.toml` source. The generator is synthetic: a resumed
/// run regenerates the stream and skips to its checkpoint.
pub fn register(connectors: Connectors) -> Connectors {
    connectors.source("generate", "generate:PATH.toml", |path, options| {
        Box::pin(async move {
            let scenario = Scenario::load(Path::new(&path))?;
            let source: Box<dyn Source> =
                Box::new(GeneratorSource::new(scenario, path).resume_at(options.resume_line()));
            Ok(source)
        })
    })
}

#[cfg(test)]
mod tests;
