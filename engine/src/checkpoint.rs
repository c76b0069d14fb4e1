//! Checkpoints: for each source partition, the offset from which a restarted engine resumes
//! without leaving any event unscored. Customer actors finish events out of order, so the
//! resume point is a watermark: the lowest offset taken in whose outcome is not yet published
//! (or one past the last offset taken, when everything is). Redelivered events above it yield
//! the same decision ids, so consumers de-duplicate them.
//!
//! The watermark lives in the publisher, which is the only stage that knows what has been
//! written. It is persisted to `checkpoint.json` in the state directory after the sinks are
//! flushed, and shared with sources (the Fluvio source advances its consumer offset from it).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Resume offsets per partition.
pub type Offsets = BTreeMap<u32, u64>;

/// Out-of-order completion tracking for one partition.
#[derive(Debug, Default)]
struct PartitionWatermark {
    /// Offsets taken in and not yet below the watermark, in increasing order.
    pending: VecDeque<u64>,
    /// Published offsets still waiting for an older one to be published.
    published_ahead: HashSet<u64>,
    /// One past the newest offset taken in.
    next: u64,
}

/// Watermarks of every partition the engine reads.
#[derive(Debug, Default)]
pub struct Watermarks {
    partitions: BTreeMap<u32, PartitionWatermark>,
}

impl Watermarks {
    /// Records that `offset` was taken in. Offsets of a partition are taken in increasing
    /// order (gaps are fine: blank lines, compacted records).
    pub fn taken(&mut self, partition: u32, offset: u64) {
        let p = self.partitions.entry(partition).or_default();
        p.pending.push_back(offset);
        p.next = offset + 1;
    }

    /// Records that the outcome of `offset` is published.
    pub fn published(&mut self, partition: u32, offset: u64) {
        let Some(p) = self.partitions.get_mut(&partition) else {
            return;
        };
        if p.pending.front() == Some(&offset) {
            p.pending.pop_front();
            while let Some(front) = p.pending.front() {
                if !p.published_ahead.remove(front) {
                    break;
                }
                p.pending.pop_front();
            }
        } else {
            p.published_ahead.insert(offset);
        }
    }

    /// Per partition, the offset to resume from.
    pub fn resume_offsets(&self) -> Offsets {
        self.partitions
            .iter()
            .map(|(&partition, p)| (partition, p.pending.front().copied().unwrap_or(p.next)))
            .collect()
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointFile {
    /// The source spec the offsets belong to.
    source: String,
    /// Partition → first offset not yet fully published.
    resume: Offsets,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write checkpoint {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The checkpoint file of one source in a state directory.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    path: PathBuf,
    source: String,
}

impl Checkpoint {
    /// The checkpoint for `source` under `state_dir`; each source spec has its own file.
    pub fn new(state_dir: &Path, source: &str) -> Self {
        let name: String = source
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Checkpoint {
            path: state_dir.join(format!("checkpoint-{name}.json")),
            source: source.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved resume offsets; empty when nothing was saved yet.
    pub fn load(&self) -> Result<Offsets, CheckpointError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Offsets::new()),
            Err(source) => {
                return Err(CheckpointError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let file: CheckpointFile =
            serde_json::from_str(&text).map_err(|source| CheckpointError::Parse {
                path: self.path.clone(),
                source,
            })?;
        Ok(file.resume)
    }

    /// Saves resume offsets atomically: a crash leaves the old file or the new one.
    pub fn save(&self, resume: &Offsets) -> Result<(), CheckpointError> {
        let write_error = |source| CheckpointError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(write_error)?;
        }
        let file = CheckpointFile {
            source: self.source.clone(),
            resume: resume.clone(),
        };
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&file).expect("checkpoints serialize");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(write_error)?;
            f.write_all(&text).map_err(write_error)?;
            f.sync_all().map_err(write_error)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(write_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_waits_for_the_oldest_unpublished_offset() {
        let mut w = Watermarks::default();
        for offset in [0, 1, 2, 3, 5] {
            w.taken(0, offset);
        }
        w.taken(1, 40);
        w.published(0, 2);
        w.published(0, 1);
        assert_eq!(w.resume_offsets(), Offsets::from([(0, 0), (1, 40)]));
        w.published(0, 0);
        assert_eq!(
            w.resume_offsets()[&0],
            3,
            "0, 1 and 2 are all published now"
        );
        w.published(0, 5);
        assert_eq!(w.resume_offsets()[&0], 3);
        w.published(0, 3);
        assert_eq!(w.resume_offsets()[&0], 6, "one past the last offset taken");
        w.published(1, 40);
        assert_eq!(w.resume_offsets()[&1], 41);
    }

    #[test]
    fn checkpoints_round_trip_per_source_and_start_empty() {
        let dir = tempfile::tempdir().unwrap();
        let a = Checkpoint::new(dir.path(), "file:/data/events.jsonl");
        let b = Checkpoint::new(dir.path(), "fluvio:vigil-events");
        assert!(a.load().unwrap().is_empty());
        a.save(&Offsets::from([(0, 17)])).unwrap();
        b.save(&Offsets::from([(0, 3), (1, 9)])).unwrap();
        assert_eq!(a.load().unwrap(), Offsets::from([(0, 17)]));
        assert_eq!(b.load().unwrap(), Offsets::from([(0, 3), (1, 9)]));
        a.save(&Offsets::from([(0, 18)])).unwrap();
        assert_eq!(a.load().unwrap()[&0], 18);
    }

    #[test]
    fn a_corrupt_checkpoint_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoint::new(dir.path(), "file:x");
        std::fs::write(c.path(), "{").unwrap();
        let err = c.load().unwrap_err().to_string();
        assert!(err.contains("checkpoint-file_x.json"), "{err}");
    }
}
