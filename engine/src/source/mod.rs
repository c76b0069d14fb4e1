//! Sources: where raw event records come from, in batches. Every source implements `Source`;
//! `open` is the one registry that maps a source spec to its implementation:
//!
//! | spec | source |
//! |---|---|
//! | `generate:PATH.toml` | the seeded scenario generator |
//! | `file:PATH` | a JSONL file, one record per line; with a column mapping, a CSV file |
//! | `-` | JSONL on standard input |
//! | `fluvio:TOPIC` | a Fluvio topic, one consumer stream per partition |
//!
//! A source only reads bytes and stamps them with their position and ingest time. Decoding
//! and validation belong to the next stage.

pub mod csv;
pub mod file;
pub mod fluvio;
pub mod generate;

use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;

use crate::checkpoint::Offsets;
use crate::config::FluvioConfig;
use crate::decode::csv::MappingError;
use crate::decode::Decoder;

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
    /// When the record arrived: the start of its latency budget and of its measured
    /// latency. Sources stamp the time they read it, except the paced generator, which stamps
    /// the record's intended send time so that a record kept waiting is charged for the wait.
    pub ingested: Instant,
}

/// What a source is opened with besides its spec.
#[derive(Debug, Default)]
pub struct SourceOptions {
    /// Per partition, the offset to resume from (from the checkpoint); resumable sources skip
    /// what lies below it. The generator is synthetic and always starts from its beginning.
    pub resume: Offsets,
    /// Only these partitions, for sources that have several.
    pub partitions: Option<Vec<u32>>,
    /// Resume offsets as the publisher advances them, for sources that commit upstream.
    pub committed: Option<watch::Receiver<Offsets>>,
    pub fluvio: FluvioConfig,
    /// A column mapping: the `file:` source is CSV history read through it.
    pub mapping: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("unknown source `{0}`: expected generate:PATH.toml, file:PATH, fluvio:TOPIC or -")]
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
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("a column mapping reads CSV files only (file:PATH), not `{0}`")]
    MappingNeedsFile(String),
    #[error("Fluvio source {spec}: {detail:#}")]
    Fluvio { spec: String, detail: anyhow::Error },
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

    /// How this source's records are written.
    fn decoder(&self) -> Decoder {
        Decoder::Json
    }

    /// The spec this source was opened from, for logs and summaries.
    fn describe(&self) -> String;
}

/// Opens a source from its spec.
pub async fn open(spec: &str, options: SourceOptions) -> Result<Box<dyn Source>, SourceError> {
    let resume_line = options.resume.get(&0).copied().unwrap_or(0);
    if let Some(mapping) = &options.mapping {
        let path = spec
            .strip_prefix("file:")
            .ok_or_else(|| SourceError::MappingNeedsFile(spec.to_owned()))?;
        return Ok(Box::new(
            csv::CsvSource::open(path, mapping, resume_line).await?,
        ));
    }
    if spec == "-" {
        return Ok(Box::new(file::LineSource::stdin().resume_at(resume_line)));
    }
    match spec.split_once(':') {
        Some(("generate", path)) => {
            let scenario = generate::Scenario::load(Path::new(path))?;
            Ok(Box::new(
                generate::GeneratorSource::new(scenario, path.to_owned()).resume_at(resume_line),
            ))
        }
        Some(("file", path)) => Ok(Box::new(
            file::LineSource::open(path).await?.resume_at(resume_line),
        )),
        Some(("fluvio", topic)) => Ok(Box::new(
            fluvio::FluvioSource::open(topic, options)
                .await
                .map_err(|detail| SourceError::Fluvio {
                    spec: spec.to_owned(),
                    detail,
                })?,
        )),
        _ => Err(SourceError::UnknownSpec(spec.to_owned())),
    }
}
