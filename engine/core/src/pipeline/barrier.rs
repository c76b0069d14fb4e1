//! Aligned checkpoints, the pipeline's part: every `engine.checkpoint_interval`, the ingest
//! loop stops taking records in until everything in flight is published (so the resume offsets
//! and the customers' state describe the same moment), the router writes every touched
//! customer's state with the offsets (and each partition's newest event time, which the
//! watermark resumes from) in one store transaction, and the offsets are mirrored to
//! the checkpoint file for operators.

use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::ActorRef;

use super::watermark::EventTimes;
use crate::actors::router::RouterMsg;
use crate::error::{Error, Result};
use crate::event::Offsets;
use crate::state::checkpoint::Checkpoint;
use crate::telemetry::{CheckpointWritten, Telemetry};

/// When and where checkpoints are taken, for a run that keeps state.
pub(super) struct Barrier {
    pub file: Option<Checkpoint>,
    every: Duration,
    next: Instant,
    pub taken: u64,
    pub longest: Duration,
}

impl Barrier {
    pub fn new(file: Option<Checkpoint>, every: Duration) -> Barrier {
        Barrier {
            file,
            every,
            next: Instant::now() + every,
            taken: 0,
            longest: Duration::ZERO,
        }
    }

    pub fn due(&self) -> bool {
        self.file.is_some() && Instant::now() >= self.next
    }

    /// Takes one; the caller has made sure nothing is in flight.
    pub async fn take(
        &mut self,
        router: &ActorRef<RouterMsg>,
        offsets: &Offsets,
        event_times: &EventTimes,
        telemetry: &Telemetry,
    ) -> Result<()> {
        let started = Instant::now();
        let stopped = || Error::Bug("the router stopped before the checkpoint".into());
        let written = router
            .call(
                |reply| RouterMsg::Checkpoint {
                    offsets: offsets.clone(),
                    event_times: event_times.clone(),
                    reply,
                },
                None,
            )
            .await
            .map_err(|_| stopped())?;
        let CallResult::Success(written) = written else {
            return Err(stopped());
        };
        let written = written?;
        if let Some(file) = &self.file {
            file.save(offsets)?;
        }
        let paused = started.elapsed();
        telemetry.emit(CheckpointWritten {
            customers: written.customers,
            bytes: written.bytes,
            took: paused,
        });
        self.taken += 1;
        self.longest = self.longest.max(paused);
        self.next = Instant::now() + self.every;
        Ok(())
    }
}
