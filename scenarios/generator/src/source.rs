//! The generator as a source (`generate:PATH.toml`): records are released on the scenario's
//! wall-clock `Schedule` and each is stamped with its intended send time, so latency measured
//! from that stamp includes any time a record waited to be read (no coordinated omission).
//!
//! A paced scenario runs its generator on a pacer thread of its own, which sleeps until the next
//! record is due with the kernel's timer slack cut to a microsecond, and hands records over as
//! they fall due. The async runtime's timer would wake on its 1 ms tick instead, so up to a
//! millisecond of every latency figure at 25k records/s would be pacing, not the engine. How
//! late each record left its pacer is kept (`GeneratorSource::pacing`), so a load report can
//! say how much of a latency figure the pacing itself accounts for.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use vigil_engine::event::Position;
use vigil_engine::source::{Source, SourceRecord};
use vigil_engine::Error;

use crate::generator::Generator;
use crate::scenario::Scenario;
use crate::schedule::Schedule;

/// How many records the generator source hands over per batch.
const BATCH: usize = 512;

/// Records released by the pacer and not yet read: a few batches, so a read that comes late
/// finds the records due meanwhile, and a stalled engine stops the pacer soon after.
const RELEASED_AHEAD: usize = 4 * BATCH;

/// The pacer wakes at most this often: each wake costs a context switch here and a wake-up of
/// the reading task (tens of microseconds of a core on a virtual machine), and a record that
/// falls due just after a wake waits this much longer at most. At 20k records/s on this
/// project's 2-core machine, records left 24 µs late at the median waking for every record, 39 µs
/// with this quantum, 64 µs with 100 µs.
const QUANTUM: Duration = Duration::from_micros(50);

/// The generator as a source, paced by the scenario's schedule.
pub struct GeneratorSource {
    feed: Feed,
    origin: String,
    /// Records handed to the engine.
    emitted: u64,
    /// Records in the whole stream, skipped ones included.
    total: u64,
    pacing: Pacing,
}

/// Where the records come from.
enum Feed {
    /// As fast as the engine reads, generated on the reading task.
    Unpaced(Generator),
    /// Paced, before the first read: the schedule's clock starts with it.
    Waiting(Generator, Schedule),
    /// Paced, from the pacer thread.
    Released {
        records: mpsc::Receiver<SourceRecord>,
        schedule: Schedule,
        started: Instant,
    },
    /// Between states, and after the pacer thread is gone.
    Done,
}

impl GeneratorSource {
    pub fn new(scenario: Scenario, origin: String) -> Self {
        let generator = Generator::new(scenario);
        GeneratorSource {
            total: generator.remaining(),
            feed: match Schedule::of(generator.scenario()) {
                Some(schedule) => Feed::Waiting(generator, schedule),
                None => Feed::Unpaced(generator),
            },
            origin,
            emitted: 0,
            pacing: Pacing::default(),
        }
    }

    /// Skips the first `offset` records (they are generated and dropped: the stream is the
    /// same every time), for a run resuming from a checkpoint. Pacing carries on from the
    /// skipped records' schedule, not from its start.
    pub fn resume_at(mut self, offset: u64) -> Self {
        if let Feed::Unpaced(generator) | Feed::Waiting(generator, _) = &mut self.feed {
            let skipped = generator.by_ref().take(offset as usize).count();
            self.emitted = skipped as u64;
        }
        self
    }

    /// How late the paced records left the pacer, so far; empty when unpaced.
    pub fn pacing(&self) -> Pacing {
        self.pacing.clone()
    }

    /// Starts the pacer thread: record `emitted` is due now (a resumed run does not wait for
    /// the records it skipped).
    fn start_pacer(&mut self, generator: Generator, schedule: Schedule) -> Result<(), Error> {
        let now = Instant::now();
        let started = now
            .checked_sub(schedule.intended(self.emitted))
            .unwrap_or(now);
        let (released, records) = mpsc::channel(RELEASED_AHEAD);
        let pacer = Pacer {
            generator,
            schedule: schedule.clone(),
            started,
            next: self.emitted,
            pacing: self.pacing.clone(),
        };
        std::thread::Builder::new()
            .name("vigil-pacer".to_owned())
            .spawn(move || pacer.run(&released))
            .map_err(|e| {
                Error::Bug(format!(
                    "{}: cannot start the pacer thread: {e}",
                    self.origin
                ))
            })?;
        self.feed = Feed::Released {
            records,
            schedule,
            started,
        };
        Ok(())
    }
}

#[async_trait]
impl Source for GeneratorSource {
    async fn next_batch(&mut self, batch: &mut Vec<SourceRecord>) -> vigil_engine::Result<bool> {
        if let Feed::Waiting(..) = self.feed {
            let Feed::Waiting(generator, schedule) = std::mem::replace(&mut self.feed, Feed::Done)
            else {
                unreachable!("matched just above")
            };
            self.start_pacer(generator, schedule)?;
        }
        match &mut self.feed {
            Feed::Unpaced(generator) => {
                let read = Instant::now();
                for record in generator.by_ref().take(BATCH) {
                    batch.push(source_record(record.payload, self.emitted, read));
                    self.emitted += 1;
                }
                Ok(batch.len() == BATCH)
            }
            Feed::Released { records, .. } => {
                // Everything already released, and at least one record; the pacer gone and
                // nothing left, the stream is over.
                let Some(first) = records.recv().await else {
                    self.feed = Feed::Done;
                    return Ok(false);
                };
                batch.push(first);
                while batch.len() < BATCH {
                    let Ok(record) = records.try_recv() else {
                        break;
                    };
                    batch.push(record);
                }
                self.emitted += batch.len() as u64;
                Ok(true)
            }
            Feed::Waiting(..) | Feed::Done => Ok(false),
        }
    }

    /// Paced, the records already due and not yet read; unpaced, everything left.
    fn backlog(&self) -> Vec<(u32, u64)> {
        let remaining = self.total.saturating_sub(self.emitted);
        let waiting = match &self.feed {
            Feed::Unpaced(_) => remaining,
            Feed::Released {
                schedule, started, ..
            } => schedule
                .due(started.elapsed())
                .saturating_sub(self.emitted)
                .min(remaining),
            Feed::Waiting(..) | Feed::Done => 0,
        };
        vec![(0, waiting)]
    }

    fn describe(&self) -> String {
        format!("generate:{}", self.origin)
    }
}

fn source_record(payload: Vec<u8>, offset: u64, ingested: Instant) -> SourceRecord {
    SourceRecord {
        position: Position {
            partition: 0,
            offset,
        },
        payload: Bytes::from(payload),
        ingested,
        cut: None,
    }
}

/// The generator on its own thread, releasing each record when it falls due.
struct Pacer {
    generator: Generator,
    schedule: Schedule,
    started: Instant,
    /// The next record to release.
    next: u64,
    pacing: Pacing,
}

impl Pacer {
    /// Releases records until the stream ends or the source is dropped.
    fn run(mut self, released: &mpsc::Sender<SourceRecord>) {
        precise_sleeps();
        let mut due_now = Vec::with_capacity(BATCH);
        let mut woke = Instant::now();
        loop {
            let due = self.started + self.schedule.intended(self.next);
            sleep_until(due.max(woke + QUANTUM));
            woke = Instant::now();
            let allowed = (self.schedule.due(woke - self.started))
                .saturating_sub(self.next)
                .clamp(1, BATCH as u64) as usize;
            due_now.extend(self.generator.by_ref().take(allowed).map(|record| {
                let intended = self.started + self.schedule.intended(self.next);
                let record = source_record(record.payload, self.next, intended);
                self.next += 1;
                record
            }));
            let exhausted = due_now.len() < allowed;
            self.pacing.record(woke, &due_now);
            for record in due_now.drain(..) {
                if released.blocking_send(record).is_err() {
                    return;
                }
            }
            if exhausted {
                return;
            }
        }
    }
}

/// Asks the kernel to wake this thread within a microsecond of the time it asks for, instead
/// of the default 50 µs slack. Refused, it only costs precision, which the pacing figures show.
fn precise_sleeps() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_timerslack(1_000) {
        eprintln!("vigil-pacer: cannot tighten the timer slack ({e}); pacing is less precise");
    }
}

fn sleep_until(due: Instant) {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// How late paced records left the pacer after their intended send time, in nanoseconds.
#[derive(Clone)]
pub struct Pacing(Arc<Mutex<Histogram<u64>>>);

impl Default for Pacing {
    fn default() -> Self {
        // Up to an hour late: a stalled reader blocks the pacer, and its records are late.
        let hour_ns = 3_600_000_000_000;
        Pacing(Arc::new(Mutex::new(
            Histogram::new_with_bounds(1, hour_ns, 3).expect("valid bounds and precision"),
        )))
    }
}

impl Pacing {
    fn record(&self, released: Instant, records: &[SourceRecord]) {
        let mut late = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for record in records {
            let by = released.saturating_duration_since(record.ingested);
            late.saturating_record(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX));
        }
    }

    /// Records released so far.
    pub fn count(&self) -> u64 {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// How late the record at quantile `q` (0 to 1) was released.
    pub fn quantile(&self, q: f64) -> Duration {
        let late = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Duration::from_nanos(late.value_at_quantile(q))
    }
}
