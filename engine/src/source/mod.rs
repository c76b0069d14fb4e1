//! Sources: where raw event records come from, in batches. Every source implements `Source`;
//! `open` is the one registry that maps a source spec to its implementation:
//!
//! | spec | source |
//! |---|---|
//! | `generate:PATH.toml` | the seeded scenario generator |
//! | `file:PATH` | a JSONL file, one record per line |
//! | `-` | JSONL on standard input |
//!
//! A source only reads bytes and stamps them with their position and ingest time. Decoding
//! and validation belong to the next stage.

pub mod file;
pub mod generate;

use std::path::Path;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;

/// Where a record sits in its source: a partition and an offset within it (the line number
/// for files). Checkpoints and dead letters name records by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}

/// One raw record as read.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub position: Position,
    pub payload: Bytes,
    /// When the engine took the record in: the start of its latency budget.
    pub ingested: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("unknown source `{0}`: expected generate:PATH.toml, file:PATH or -")]
    UnknownSpec(String),
    #[error("cannot open source {spec}: {source}")]
    Open {
        spec: String,
        source: std::io::Error,
    },
    #[error("cannot read source {spec}: {source}")]
    Read {
        spec: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Scenario(#[from] generate::ScenarioError),
}

/// The most records one `next_batch` call may append. The pipeline takes in-flight room a
/// batch at a time, so `engine.max_in_flight` must be at least this.
pub const MAX_BATCH: usize = 1024;

/// A stream of raw records.
#[async_trait]
pub trait Source: Send {
    /// Appends the next records to `batch` (at most `MAX_BATCH`, waiting until at least one is
    /// available) and returns `false` once the source is exhausted.
    async fn next_batch(&mut self, batch: &mut Vec<SourceRecord>) -> Result<bool, SourceError>;

    /// Records waiting to be read, per partition, where the source knows: what consumer lag
    /// in records adds to what is already in flight.
    fn backlog(&self) -> Vec<(u32, u64)> {
        Vec::new()
    }

    /// The spec this source was opened from, for logs and summaries.
    fn describe(&self) -> String;
}

/// Opens a source from its spec.
pub async fn open(spec: &str) -> Result<Box<dyn Source>, SourceError> {
    if spec == "-" {
        return Ok(Box::new(file::JsonLinesSource::stdin()));
    }
    match spec.split_once(':') {
        Some(("generate", path)) => {
            let scenario = generate::Scenario::load(Path::new(path))?;
            Ok(Box::new(generate::GeneratorSource::new(
                scenario,
                path.to_owned(),
            )))
        }
        Some(("file", path)) => Ok(Box::new(file::JsonLinesSource::open(path).await?)),
        _ => Err(SourceError::UnknownSpec(spec.to_owned())),
    }
}
