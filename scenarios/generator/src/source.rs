//! The generator as a source (`generate:PATH.toml`): records are released on the scenario's
//! wall-clock `Schedule` and each is stamped with its intended send time, so latency measured
//! from that stamp includes any time a record waited to be read (no coordinated omission).

use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use vigil_engine::event::Position;
use vigil_engine::source::{Source, SourceRecord};

use crate::generator::Generator;
use crate::scenario::Scenario;
use crate::schedule::Schedule;

/// How many records the generator source hands over per batch.
const BATCH: usize = 512;

/// The generator as a source, paced by the scenario's schedule.
pub struct GeneratorSource {
    generator: Generator,
    schedule: Option<Schedule>,
    origin: String,
    started: Option<Instant>,
    emitted: u64,
}

impl GeneratorSource {
    pub fn new(scenario: Scenario, origin: String) -> Self {
        GeneratorSource {
            schedule: Schedule::of(&scenario),
            generator: Generator::new(scenario),
            origin,
            started: None,
            emitted: 0,
        }
    }

    /// Skips the first `offset` records (they are generated and dropped: the stream is the
    /// same every time), for a run resuming from a checkpoint. Pacing carries on from the
    /// skipped records' schedule, not from its start.
    pub fn resume_at(mut self, offset: u64) -> Self {
        if offset > 0 {
            self.generator.by_ref().take(offset as usize).for_each(drop);
            self.emitted = offset;
        }
        self
    }
}

#[async_trait]
impl Source for GeneratorSource {
    async fn next_batch(&mut self, batch: &mut Vec<SourceRecord>) -> vigil_engine::Result<bool> {
        let (schedule, emitted) = (&self.schedule, self.emitted);
        let started = *self.started.get_or_insert_with(|| {
            // Record `emitted` is due now: a resumed run does not wait for the skipped ones.
            let now = Instant::now();
            schedule
                .as_ref()
                .map_or(now, |s| now.checked_sub(s.intended(emitted)).unwrap_or(now))
        });
        let allowed = match &self.schedule {
            Some(schedule) => {
                // Open loop: release records at their intended times, never faster, and
                // everything already due at once.
                let due = started + schedule.intended(self.emitted);
                tokio::time::sleep_until(due.into()).await;
                (schedule.due(started.elapsed()).saturating_sub(self.emitted))
                    .clamp(1, BATCH as u64) as usize
            }
            None => BATCH,
        };
        let read = Instant::now();
        for record in self.generator.by_ref().take(allowed) {
            let ingested = self
                .schedule
                .as_ref()
                .map_or(read, |s| started + s.intended(self.emitted));
            batch.push(SourceRecord {
                position: Position {
                    partition: 0,
                    offset: self.emitted,
                },
                payload: Bytes::from(record.payload),
                ingested,
                cut: None,
            });
            self.emitted += 1;
        }
        Ok(batch.len() == allowed)
    }

    /// Paced, the records already due and not yet sent; unpaced, everything left.
    fn backlog(&self) -> Vec<(u32, u64)> {
        let remaining = self.generator.remaining();
        let waiting = match (&self.schedule, self.started) {
            (None, _) => remaining,
            (Some(schedule), Some(started)) => schedule
                .due(started.elapsed())
                .saturating_sub(self.emitted)
                .min(remaining),
            (Some(_), None) => 0,
        };
        vec![(0, waiting)]
    }

    fn describe(&self) -> String {
        format!("generate:{}", self.origin)
    }
}
