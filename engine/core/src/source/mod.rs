//! Sources: where raw event records come from, in batches. Every source implements `Source`;
//! the built-in ones are JSON Lines files and standard input (`file`) and CSV history read
//! through a column mapping (`csv`). Connectors in other crates (the Fluvio topic, the scenario
//! generator) implement the same trait, and `pipeline::connectors` maps a spec to each.
//!
//! A source only reads bytes and stamps them with their position and ingest time. It says how
//! its records are written (`Format`); decoding and validation belong to the next stage.

pub mod csv;
pub mod file;

use std::path::PathBuf;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;

use crate::config::FluvioConfig;
use crate::error::Result;
use crate::event::{Offsets, Position};

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

/// How a source's records are written, for the decoder.
#[derive(Debug, Clone, Default)]
pub enum Format {
    /// Schema v1 JSON, one event per record.
    #[default]
    Json,
    /// CSV rows, read through the column mapping at `mapping` against the file's header line.
    Csv {
        mapping: PathBuf,
        header: Bytes,
        /// The file's name, for errors that point at it.
        file_name: String,
    },
}

/// What a source is opened with besides its spec.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Per partition, the offset to resume from (from the checkpoint); resumable sources skip
    /// what lies below it.
    pub resume: Offsets,
    /// Only these partitions, for sources that have several.
    pub partitions: Option<Vec<u32>>,
    /// Resume offsets as the publisher advances them, for sources that commit upstream.
    pub committed: Option<watch::Receiver<Offsets>>,
    pub fluvio: FluvioConfig,
    /// A column mapping: the `file:` source is CSV history read through it.
    pub mapping: Option<PathBuf>,
}

impl SourceOptions {
    /// From the beginning, every partition, no mapping.
    pub fn new(fluvio: FluvioConfig) -> Self {
        SourceOptions {
            resume: Offsets::new(),
            partitions: None,
            committed: None,
            fluvio,
            mapping: None,
        }
    }

    /// Where partition 0 resumes: the line to start at, for single-partition sources.
    pub fn resume_line(&self) -> u64 {
        self.resume.get(&0).copied().unwrap_or(0)
    }
}

/// A stream of raw records.
#[async_trait]
pub trait Source: Send {
    /// Appends the next records to `batch` (at most `MAX_BATCH`, waiting until at least one is
    /// available) and returns `false` once the source is exhausted. An `External` error may
    /// be retried; any other ends the run.
    async fn next_batch(&mut self, batch: &mut Vec<SourceRecord>) -> Result<bool>;

    /// Records waiting to be read, per partition, where the source knows: what consumer lag
    /// in records adds to what is already in flight.
    fn backlog(&self) -> Vec<(u32, u64)> {
        Vec::new()
    }

    /// How this source's records are written.
    fn format(&self) -> Format {
        Format::Json
    }

    /// The spec this source was opened from, for logs and summaries.
    fn describe(&self) -> String;
}
