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

use crate::config::{Config, FluvioConfig};
use crate::error::Result;
use crate::event::{Offsets, Position};

/// A record the source stopped reading at the size limit (`engine.max_record_bytes`): its
/// whole length and SHA-256. The record's payload then holds only its start, so one hostile
/// line never costs more memory than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub bytes: u64,
    pub sha256: [u8; 32],
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
    /// Set when the record was longer than the source would read.
    pub cut: Option<Cut>,
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
    /// Line sources read a record no further than this (`engine.max_record_bytes`).
    pub max_record_bytes: usize,
}

impl SourceOptions {
    /// From the beginning, every partition, no mapping, under `config`.
    pub fn new(config: &Config) -> Self {
        SourceOptions {
            resume: Offsets::new(),
            partitions: None,
            committed: None,
            fluvio: config.fluvio.clone(),
            mapping: None,
            max_record_bytes: config.engine.max_record_bytes,
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
