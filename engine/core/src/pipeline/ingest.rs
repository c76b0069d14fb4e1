//! The ingest loop: reads source batches, waits for in-flight room, decodes and validates each
//! record, gives each event the watermark before it, sends rejects straight to the publisher
//! and the rest to the router in one message per batch, and pauses at checkpoint barriers. It stops when the source is exhausted, the
//! record limit or the duration is reached, or shutdown is asked for; a batch it could not
//! make room for is not taken in, so a resumed run reads it again.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::ActorRef;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Semaphore;

use super::barrier::Barrier;
use super::lookout::Lookout;
use super::watermark::{EventTimes, Watermark};
use crate::actors::router::RouterMsg;
use crate::dead_letter::{DeadLetter, RejectReason, Rejection};
use crate::decode::Decoder;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{wall_clock_ms, Inbound, Offsets, MAX_BATCH};
use crate::outcome::{Outcome, Report};
use crate::source::{Source, SourceRecord};
use crate::telemetry::Telemetry;

/// Wait before reading again from a source whose read failed for an external reason.
const SOURCE_RETRY: Duration = Duration::from_millis(500);

pub(super) struct Ingest {
    pub source: Box<dyn Source>,
    pub decoder: Decoder,
    pub max_record_bytes: usize,
    pub in_flight: Arc<Semaphore>,
    pub max_in_flight: u32,
    pub router: ActorRef<RouterMsg>,
    pub publisher: UnboundedSender<Report>,
    pub max_records: Option<u64>,
    pub deadline: Option<Instant>,
    pub barrier: Barrier,
    pub watermark: Watermark,
    pub telemetry: Telemetry,
    /// Shown the watermark, when the console watches the run.
    pub lookout: Option<Arc<Lookout>>,
}

/// Where the ingest loop stopped.
pub(super) struct Ingested {
    /// Per partition, one past the newest offset taken in: where a run resumes once
    /// everything taken in is published.
    pub taken_up_to: Offsets,
    /// Each partition's newest event time, for the last checkpoint.
    pub event_times: EventTimes,
    /// Shutdown was asked for.
    pub stopping: bool,
    pub barrier: Barrier,
}

impl Ingest {
    pub async fn run(
        mut self,
        resume: Offsets,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Ingested> {
        let mut records = 0u64;
        let mut taken_up_to = resume;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        tokio::pin!(shutdown);
        let mut stopping = false;
        loop {
            if self.barrier.due() {
                // Pause: once every permit is back, everything taken in is published.
                let everything = tokio::select! {
                    all = self.in_flight.acquire_many(self.max_in_flight) => Some(all),
                    _ = &mut shutdown, if !stopping => None,
                };
                let Some(everything) = everything else {
                    stopping = true;
                    break;
                };
                let everything = everything.map_err(|_| limiter_closed())?;
                self.barrier
                    .take(
                        &self.router,
                        &taken_up_to,
                        &self.watermark.event_times(),
                        &self.telemetry,
                    )
                    .await?;
                drop(everything);
            }
            let read = tokio::select! {
                read = self.source.next_batch(&mut batch) => Some(read),
                _ = &mut shutdown => {
                    stopping = true;
                    None
                }
                _ = sleep_until(self.deadline) => None,
            };
            let more = match read {
                Some(read) => self.after_read(read).await?,
                None => false,
            };
            if let Some(max) = self.max_records {
                // Records past the limit are not taken in: a resumed run reads them again.
                batch.truncate(max.saturating_sub(records) as usize);
            }
            let limit_reached = self
                .max_records
                .is_some_and(|max| records + batch.len() as u64 >= max);
            if !batch.is_empty() {
                let in_flight = self.in_flight.clone();
                let room = tokio::select! {
                    room = in_flight.acquire_many(batch.len() as u32) => Some(room),
                    _ = &mut shutdown, if !stopping => None,
                };
                let Some(room) = room else {
                    // Not taken in: a resumed run reads this batch again.
                    stopping = true;
                    break;
                };
                room.map_err(|_| limiter_closed())?.forget();
                records += batch.len() as u64;
                for record in &batch {
                    let next = taken_up_to.entry(record.position.partition).or_default();
                    *next = (*next).max(record.position.offset + 1);
                }
                self.take(&mut batch)?;
            }
            if !more || limit_reached || self.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        // Checks due by the last watermark fire before the publisher hears the run is over:
        // once everything taken in is published, the router has every due time the actors
        // will tell it, and settles them. A shutdown does not wait for that (a resumed run
        // fires them), and a closed limiter means the publisher stopped on an error, which the
        // run reports.
        if !stopping {
            if let Ok(everything) = self.in_flight.acquire_many(self.max_in_flight).await {
                let _ = ractor::call!(self.router, RouterMsg::Settle);
                drop(everything);
            }
        }
        let _ = self.publisher.send(Report::SourceDone { records });
        Ok(Ingested {
            taken_up_to,
            event_times: self.watermark.event_times(),
            stopping,
            barrier: self.barrier,
        })
    }

    /// A read's result: an external failure is logged and read again after a pause (whatever
    /// the read appended before failing is kept); any other error ends the run.
    async fn after_read(&mut self, read: Result<bool>) -> Result<bool> {
        match read {
            Ok(more) => Ok(more),
            Err(error) if error.kind() == ErrorKind::External => {
                tracing::warn!(source = %self.source.describe(), %error, "Source read failed; reading again.");
                tokio::time::sleep(SOURCE_RETRY).await;
                Ok(true)
            }
            Err(error) => Err(error),
        }
    }

    /// Tells the publisher what was taken in, decodes each record, gives each event the
    /// watermark before it, and sends the events to the router in one message and each reject
    /// straight to the publisher.
    fn take(&mut self, batch: &mut Vec<SourceRecord>) -> Result<()> {
        let _ = self.publisher.send(Report::Taken {
            positions: batch.iter().map(|r| r.position).collect(),
            backlog: self.source.backlog(),
        });
        let mut routed = Vec::with_capacity(batch.len());
        let (now, now_ms) = (Instant::now(), wall_clock_ms());
        self.watermark.refresh(now);
        for record in batch.drain(..) {
            let offset = record.position.offset;
            let decoded = match record.cut {
                Some(cut) => Err(Rejection::new(
                    RejectReason::Oversized,
                    None,
                    format!(
                        "record is {} bytes, the limit is {}; read no further than that",
                        cut.bytes, self.max_record_bytes
                    ),
                )),
                None => self
                    .decoder
                    .decode(&record.payload, self.max_record_bytes, offset),
            };
            match decoded {
                Ok(event) => routed.push(Inbound {
                    watermark: self.watermark.observe(
                        record.position.partition,
                        event.ts,
                        now,
                        now_ms,
                    ),
                    event,
                    position: record.position,
                    ingested: record.ingested,
                    raw: record.payload,
                }),
                Err(rejection) => {
                    let letter = DeadLetter {
                        rejection,
                        raw: record.payload,
                        position: Some(record.position),
                        cut: record.cut,
                    };
                    let _ = self.publisher.send(Report::Outcome(Outcome::Rejected {
                        letter: Box::new(letter),
                        kind: None,
                        ingested: record.ingested,
                    }));
                }
            }
        }
        self.telemetry.watermark(self.watermark.current(), now_ms);
        if let Some(lookout) = &self.lookout {
            lookout.watermark_at(self.watermark.current());
        }
        if !routed.is_empty() {
            self.router
                .send_message(RouterMsg::Route {
                    batch: routed,
                    watermark: self.watermark.current(),
                })
                .map_err(|_| Error::Bug("the router stopped".into()))?;
        }
        Ok(())
    }
}

/// The publisher closes the limiter when it stops on an error; the run reports that error.
fn limiter_closed() -> Error {
    Error::Bug("the in-flight limiter closed".into())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
