//! Sinks: where decisions, dead letters and shadow decisions go, in batches. Every sink
//! implements `Sink`; the built-in ones write JSON lines to a file, standard output or error,
//! or nowhere (`file`). Connectors in other crates (the Fluvio topic) implement the same
//! trait, and `pipeline::connectors` maps a spec to each.
//!
//! A sink only moves bytes; what to write is the publisher's job. Its errors say what to do:
//! `External` is retried, `InvalidInput` means the batch holds a record it will never take.

pub mod file;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;

/// One record for a sink: keyed by customer id, so keyed sinks (Fluvio) keep a customer's
/// records on one partition.
#[derive(Debug, Clone)]
pub struct SinkRecord {
    pub key: Bytes,
    pub value: Bytes,
}

#[async_trait]
pub trait Sink: Send {
    /// Writes a batch. Records may stay buffered until `flush`.
    async fn send(&mut self, batch: &[SinkRecord]) -> Result<()>;

    /// Makes everything sent so far durable (or at least handed to the OS).
    async fn flush(&mut self) -> Result<()>;

    /// The spec this sink was opened from.
    fn describe(&self) -> String;
}
