//! The checkpoint file: for each source partition, the offset from which a restarted engine
//! resumes without leaving any event unscored, mirrored as JSON beside the state store for
//! operators (the store holds the same offsets in the transaction that holds the customers'
//! state, and is read first).
//!
//! Where the pieces of a checkpoint live: the resume offsets are the publisher's watermark
//! (`publish::progress`); the pause that makes them line up with customer state is the
//! pipeline's barrier (`pipeline::barrier`); collecting that state is the router's
//! (`actors::router::snapshot`); writing it is the store's (`state::store`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::Offsets;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointFile {
    /// The source spec the offsets belong to.
    source: String,
    /// Partition → first offset not yet fully published.
    resume: Offsets,
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
    pub fn load(&self) -> Result<Offsets> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Offsets::new()),
            Err(source) => {
                return Err(Error::Io {
                    what: format!("cannot read checkpoint {}", self.path.display()),
                    cause: source,
                })
            }
        };
        let file: CheckpointFile =
            serde_json::from_str(&text).map_err(|source| Error::CorruptCheckpoint {
                path: self.path.clone(),
                detail: source.to_string(),
            })?;
        Ok(file.resume)
    }

    /// Saves resume offsets atomically: a crash leaves the old file or the new one.
    pub fn save(&self, resume: &Offsets) -> Result<()> {
        let write_error = |source| Error::Io {
            what: format!("cannot write checkpoint {}", self.path.display()),
            cause: source,
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
