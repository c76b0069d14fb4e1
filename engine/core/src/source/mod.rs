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

/// Which of a source's partitions a run reads. Sources with one partition read it whatever
/// the choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PartitionChoice {
    #[default]
    All,
    /// These partitions (`--partitions 0,2`).
    Listed(Vec<u32>),
    /// Instance `index` of `count` (`--instance I/N`): every partition `p` with
    /// `p % count == index`, so N instances started with the same N split any topic between
    /// them with nothing read twice.
    Instance { index: u32, count: u32 },
}

impl PartitionChoice {
    /// The partitions chosen of a source with `count`, or why there are none to read.
    pub fn resolve(&self, count: u32) -> std::result::Result<Vec<u32>, String> {
        let chosen: Vec<u32> = match self {
            PartitionChoice::All => (0..count).collect(),
            PartitionChoice::Listed(listed) => {
                if let Some(p) = listed.iter().find(|&&p| p >= count) {
                    return Err(format!(
                        "partition {p} is not one of its {count} partitions"
                    ));
                }
                let mut listed = listed.clone();
                listed.sort_unstable();
                listed.dedup();
                listed
            }
            PartitionChoice::Instance { index, count: n } => {
                (0..count).filter(|p| p % n == *index).collect()
            }
        };
        if chosen.is_empty() {
            return Err(format!(
                "{} leaves none of its {count} partitions to read",
                self.describe()
            ));
        }
        Ok(chosen)
    }

    /// As the command line says it.
    pub fn describe(&self) -> String {
        match self {
            PartitionChoice::All => "every partition".to_owned(),
            PartitionChoice::Listed(listed) => format!("--partitions {listed:?}"),
            PartitionChoice::Instance { index, count } => format!("--instance {index}/{count}"),
        }
    }

    /// Parses `I/N` with `I < N`, as `--instance` takes it.
    pub fn instance(spec: &str) -> std::result::Result<PartitionChoice, String> {
        let parse = |part: &str| part.trim().parse::<u32>().ok();
        match spec.split_once('/').map(|(i, n)| (parse(i), parse(n))) {
            Some((Some(index), Some(count))) if index < count => {
                Ok(PartitionChoice::Instance { index, count })
            }
            _ => Err(format!(
                "`{spec}` is not an instance I/N with I below N, e.g. 0/3 for the first of three"
            )),
        }
    }
}

/// What a source is opened with besides its spec.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Per partition, the offset to resume from (from the checkpoint); resumable sources skip
    /// what lies below it.
    pub resume: Offsets,
    /// Which partitions to read, for sources that have several.
    pub partitions: PartitionChoice,
    /// Rebuild the state from the log: read each partition from its start, and say where it
    /// was decided before (`Source::replayed`).
    pub rebuild: bool,
    /// Where an earlier rebuild found the log decided: a source that commits upstream never
    /// moves its committed position back below it.
    pub replayed: Offsets,
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
            partitions: PartitionChoice::All,
            rebuild: false,
            replayed: Offsets::new(),
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

    /// The partitions this source reads, for sources with several: a run's customer state
    /// belongs to them, so a state directory is kept for the same ones.
    fn partitions(&self) -> Option<Vec<u32>> {
        None
    }

    /// Per partition, the offset below which records were decided before, when the source
    /// was opened to rebuild state from the log; empty otherwise.
    fn replayed(&self) -> Offsets {
        Offsets::new()
    }

    /// How this source's records are written.
    fn format(&self) -> Format {
        Format::Json
    }

    /// The spec this source was opened from, for logs and summaries.
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::PartitionChoice;

    #[test]
    fn instances_split_any_partition_count_between_them_once() {
        for partitions in 1..=12 {
            for n in 1..=partitions {
                let mut seen = Vec::new();
                for i in 0..n {
                    let choice = PartitionChoice::instance(&format!("{i}/{n}")).unwrap();
                    seen.extend(choice.resolve(partitions).unwrap());
                }
                seen.sort_unstable();
                assert_eq!(
                    seen,
                    (0..partitions).collect::<Vec<_>>(),
                    "{n} of {partitions}"
                );
            }
        }
        let second_of_three = PartitionChoice::instance("1/3").unwrap();
        assert_eq!(second_of_three.resolve(6).unwrap(), vec![1, 4]);
    }

    #[test]
    fn a_choice_that_reads_nothing_or_too_far_is_refused_by_name() {
        let fourth = PartitionChoice::instance("3/4").unwrap();
        let err = fourth.resolve(3).unwrap_err();
        assert!(
            err.contains("--instance 3/4") && err.contains("3 partitions"),
            "{err}"
        );
        let listed = PartitionChoice::Listed(vec![2, 0, 2]);
        assert_eq!(listed.resolve(3).unwrap(), vec![0, 2]);
        assert!(listed.resolve(2).unwrap_err().contains("partition 2"));
        for bad in ["3/3", "1", "a/2", "1/0", "-1/2"] {
            let err = PartitionChoice::instance(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}
