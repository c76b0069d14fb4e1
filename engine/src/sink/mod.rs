//! Sinks: where decisions and dead letters go, in batches. Every sink implements `Sink`;
//! `open` is the one registry that maps a sink spec to its implementation:
//!
//! | spec | sink |
//! |---|---|
//! | `stdout` | JSON lines on standard output |
//! | `stderr` | JSON lines on standard error |
//! | `file:PATH` | JSON lines appended to a file (created with its folders) |
//! | `discard` | counted and dropped, for load tests that measure the engine alone |
//! | `fluvio:TOPIC` | a Fluvio topic, keyed by customer id |
//!
//! A sink only moves bytes; what to write is the publisher's job.

pub mod file;
pub mod fluvio;

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::FluvioConfig;

/// One record for a sink: keyed by customer id, so keyed sinks (Fluvio) keep a customer's
/// records on one partition.
#[derive(Debug, Clone)]
pub struct SinkRecord {
    pub key: Bytes,
    pub value: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("unknown sink `{0}`: expected stdout, stderr, file:PATH, fluvio:TOPIC or discard")]
    UnknownSpec(String),
    #[error("cannot open sink {spec}: {source}")]
    Open {
        spec: String,
        source: std::io::Error,
    },
    #[error("cannot open sink {spec}: {detail:#}")]
    Connect { spec: String, detail: anyhow::Error },
    #[error("cannot write to sink {spec}: {source}")]
    Write {
        spec: String,
        source: std::io::Error,
    },
}

#[async_trait]
pub trait Sink: Send {
    /// Writes a batch. Records may stay buffered until `flush`.
    async fn send(&mut self, batch: &[SinkRecord]) -> Result<(), SinkError>;

    /// Makes everything sent so far durable (or at least handed to the OS).
    async fn flush(&mut self) -> Result<(), SinkError>;

    /// The spec this sink was opened from.
    fn describe(&self) -> String;
}

/// Opens a sink from its spec.
pub async fn open(spec: &str, fluvio: &FluvioConfig) -> Result<Box<dyn Sink>, SinkError> {
    match spec {
        "stdout" => Ok(Box::new(file::JsonLinesSink::stdout())),
        "stderr" => Ok(Box::new(file::JsonLinesSink::stderr())),
        "discard" => Ok(Box::new(file::JsonLinesSink::discard())),
        _ => match spec.split_once(':') {
            Some(("file", path)) => Ok(Box::new(file::JsonLinesSink::append(path).await?)),
            Some(("fluvio", topic)) => Ok(Box::new(
                fluvio::FluvioSink::open(topic, fluvio)
                    .await
                    .map_err(|detail| SinkError::Connect {
                        spec: spec.to_owned(),
                        detail,
                    })?,
            )),
            _ => Err(SinkError::UnknownSpec(spec.to_owned())),
        },
    }
}
