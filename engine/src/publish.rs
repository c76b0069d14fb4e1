//! The publisher: the last stage. It receives every record's `Outcome` (from customer actors,
//! and from the decoder for rejected records), writes decisions and dead letters to their sinks
//! in batches, records latency from ingest to publication, releases the in-flight permits that
//! bound the pipeline, and keeps the run's statistics and the once-a-second live summary.
//!
//! It knows the run is complete when the ingest loop has said how many records it took in and
//! that many outcomes have been published.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hdrhistogram::Histogram;
use rand::Rng;
use serde::Serialize;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::checkpoint::{Offsets, Watermarks};

use vigil_models::ModelKind;

use crate::dead_letter::{DeadLetter, RejectReason};
use crate::decision::{Decision, DecisionKind};
use crate::sink::{Sink, SinkRecord};
use crate::source::Position;
use crate::telemetry::{
    ConsumerLag, DeadLettersWritten, EventOutcome, SinkFailed, Stage, Telemetry,
};

/// Where one source record ended up: the publisher's input.
#[derive(Debug)]
pub enum Outcome {
    /// Scored; `decision` is set when an action was taken.
    Scored {
        position: Position,
        kind: &'static str,
        /// The event's time, for lag in seconds.
        event_ts: i64,
        ingested: Instant,
        decision: Option<Box<Decision>>,
        /// What the challenger would have done, when one is loaded for the event's kind.
        shadow: Option<Box<Shadow>>,
        /// Features, label and scores, when the run audits (replay).
        audit: Option<Box<Audit>>,
    },
    /// Refused, by the decoder (kind unknown) or by the customer's actor.
    Rejected {
        letter: Box<DeadLetter>,
        kind: Option<&'static str>,
        ingested: Instant,
    },
}

/// A challenger's would-be decision on one event, for the shadow output.
#[derive(Debug)]
pub struct Shadow {
    pub kind: ModelKind,
    pub decision: Option<Box<Decision>>,
    /// The challenger's action differs from the champion's.
    pub disagrees: bool,
}

/// One scored event as `vigil replay` records it: enough to measure both models' quality
/// against the label and to check the features against training's.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub event_id: String,
    pub customer_id: String,
    pub event_ts: i64,
    pub kind: ModelKind,
    pub label: Option<bool>,
    /// In the model's feature order.
    pub features: Vec<f64>,
    /// The champion's probability; none when degraded to rules only.
    pub score: Option<f64>,
    pub model: Option<Arc<str>>,
    pub decision: Option<DecisionKind>,
    pub challenger_score: Option<f64>,
    pub challenger_decision: Option<DecisionKind>,
}

/// Messages the publisher consumes.
pub enum PublisherMsg {
    Outcome(Outcome),
    /// The ingest loop took in a batch: where each record sits, and what the source says is
    /// still waiting to be read per partition.
    Taken {
        positions: Vec<Position>,
        backlog: Vec<(u32, u64)>,
    },
    /// The ingest loop has stopped after taking in this many records.
    SourceDone {
        records: u64,
    },
}

/// Outcomes handled per batch.
const BATCH: usize = 1024;

/// What a run did, for the final summary and for tests.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub records: u64,
    pub scored: u64,
    pub decisions: [u64; 3],
    pub degraded: u64,
    pub dead_letters: u64,
    pub elapsed: Duration,
    /// Ingest → published latency of every scored event, microseconds.
    pub latency_us: LatencySummary,
    /// The same latencies in full, for reports.
    pub latency_histogram: Histogram<u64>,
    /// Customer actors passivated, and passivated customers brought back.
    pub passivations: u64,
    pub restores: u64,
    /// Checkpoints taken (with a state directory), and the longest pause one caused.
    pub checkpoints: u64,
    pub checkpoint_longest: Duration,
    /// Challengers' would-be decisions, and events where a challenger's action differed.
    pub shadow_decisions: u64,
    pub disagreements: u64,
    /// Model artifacts swapped in while running, and changed ones rejected.
    pub model_swaps: u64,
    pub model_rejections: u64,
}

/// The run once a second, for live displays and load-test timelines.
#[derive(Debug, Clone)]
pub struct Tick {
    /// Since the publisher started.
    pub elapsed: Duration,
    /// Records published so far (scored or dead-lettered).
    pub records: u64,
    pub dead_letters: u64,
    pub decisions: [u64; 3],
    /// Latency of the records published since the previous tick, when there were any.
    pub latency_us: Option<LatencySummary>,
    /// Per partition, the offset below which every record is published.
    pub resume: Offsets,
    /// Records taken in and not yet published.
    pub in_flight: u64,
    /// Records the source says are waiting to be read.
    pub backlog: u64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LatencySummary {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl RunSummary {
    pub fn decisions_of(&self, kind: DecisionKind) -> u64 {
        self.decisions[kind.index()]
    }

    pub fn events_per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl Tick {
    /// The run as it stands, with the latency of the records published since the previous tick
    /// (`interval`, which starts over).
    fn now(
        started: Instant,
        summary: &RunSummary,
        interval: &mut Histogram<u64>,
        progress: &Progress,
    ) -> Tick {
        let tick = Tick {
            elapsed: started.elapsed(),
            records: summary.records,
            dead_letters: summary.dead_letters,
            decisions: summary.decisions,
            latency_us: (!interval.is_empty()).then(|| summarize(interval)),
            resume: progress.watermarks.resume_offsets(),
            in_flight: progress.in_flight(),
            backlog: progress.backlog(),
        };
        interval.reset();
        tick
    }
}

/// How far one source partition has got.
#[derive(Debug, Clone, Copy, Default)]
struct PartitionProgress {
    taken: u64,
    published: u64,
    backlog: u64,
    newest_event_ts: Option<i64>,
}

/// Per-partition progress, from which consumer lag and the checkpoint watermark are derived.
#[derive(Debug, Default)]
struct Progress {
    partitions: BTreeMap<u32, PartitionProgress>,
    watermarks: Watermarks,
}

impl Progress {
    fn partition(&mut self, partition: u32) -> &mut PartitionProgress {
        self.partitions.entry(partition).or_default()
    }

    fn taken(&mut self, position: Position) {
        self.partition(position.partition).taken += 1;
        self.watermarks.taken(position.partition, position.offset);
    }

    fn published(&mut self, position: Position, event_ts: Option<i64>) {
        self.watermarks
            .published(position.partition, position.offset);
        let p = self.partition(position.partition);
        p.published += 1;
        if let Some(ts) = event_ts {
            p.newest_event_ts = Some(p.newest_event_ts.map_or(ts, |n| n.max(ts)));
        }
    }

    /// Emits every partition's lag: records still to publish, and the event-time distance of
    /// the newest published record from now (0 when nothing is waiting).
    fn in_flight(&self) -> u64 {
        self.partitions
            .values()
            .map(|p| p.taken.saturating_sub(p.published))
            .sum()
    }

    fn backlog(&self) -> u64 {
        self.partitions.values().map(|p| p.backlog).sum()
    }

    fn emit_lag(&self, telemetry: &Telemetry) {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        for (&partition, p) in &self.partitions {
            let records = p.backlog + p.taken.saturating_sub(p.published);
            let seconds = match p.newest_event_ts {
                Some(ts) if records > 0 => (now_ms - ts).max(0) as f64 / 1_000.0,
                _ => 0.0,
            };
            telemetry.emit(ConsumerLag {
                partition,
                records,
                seconds,
            });
        }
    }
}

/// First and longest wait between attempts to deliver a batch to a failing sink.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Sends and flushes a batch, retrying with exponential backoff and jitter until the sink takes
/// it. Nothing is dropped: while a sink is down the publisher waits here, the in-flight permits
/// it holds stop the source, and the checkpoint does not move past the undelivered batch. A
/// retried batch may be delivered twice; decision ids make that harmless.
async fn deliver(sink: &mut dyn Sink, batch: &[SinkRecord], telemetry: &Telemetry) {
    let mut wait = RETRY_FIRST;
    loop {
        let attempt = async {
            sink.send(batch).await?;
            sink.flush().await
        }
        .await;
        let Err(error) = attempt else { return };
        let jittered = wait.mul_f64(rand::thread_rng().gen_range(0.5..1.5));
        telemetry.emit(SinkFailed {
            sink: &sink.describe(),
            error: &error,
            retry_in: jittered,
        });
        tokio::time::sleep(jittered).await;
        wait = (wait * 2).min(RETRY_MAX);
    }
}

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn summarize(h: &Histogram<u64>) -> LatencySummary {
    LatencySummary {
        p50: h.value_at_quantile(0.5),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

pub struct Publisher {
    pub decisions: Box<dyn Sink>,
    pub dead_letters: Box<dyn Sink>,
    /// Challengers' would-be decisions.
    pub shadow: Box<dyn Sink>,
    /// Where each event's `Audit` goes, when the run audits.
    pub audit: Option<mpsc::UnboundedSender<Audit>>,
    pub telemetry: Telemetry,
    /// In-flight permits, returned as records are published.
    pub in_flight: Arc<Semaphore>,
    /// Print a one-line summary to stderr every second.
    pub live: bool,
    /// Where each second's `Tick` goes, when someone follows the run.
    pub ticks: Option<mpsc::UnboundedSender<Tick>>,
    /// Resume offsets as soon as the sinks have them, for sources that commit upstream.
    pub committed: watch::Sender<Offsets>,
    pub actors: Arc<AtomicU64>,
}

impl Publisher {
    pub async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<PublisherMsg>) -> RunSummary {
        let started = Instant::now();
        let mut summary = RunSummary {
            records: 0,
            scored: 0,
            decisions: [0; 3],
            degraded: 0,
            dead_letters: 0,
            elapsed: Duration::ZERO,
            latency_us: LatencySummary::default(),
            latency_histogram: latency_histogram(),
            passivations: 0,
            restores: 0,
            checkpoints: 0,
            checkpoint_longest: Duration::ZERO,
            shadow_decisions: 0,
            disagreements: 0,
            model_swaps: 0,
            model_rejections: 0,
        };
        let mut interval = latency_histogram();
        let mut last_tick = (Instant::now(), 0u64);
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut expected: Option<u64> = None;
        let mut progress = Progress::default();
        let mut messages = Vec::with_capacity(BATCH);
        let mut decisions = Vec::with_capacity(BATCH);
        let mut letters = Vec::new();
        let mut shadows = Vec::new();
        let mut published = Vec::with_capacity(BATCH);
        let mut rejected_by_reason: Vec<(RejectReason, u64)> = Vec::new();

        while expected != Some(summary.records) {
            tokio::select! {
                received = inbox.recv_many(&mut messages, BATCH) => {
                    if received == 0 {
                        break;
                    }
                }
                _ = ticker.tick() => {
                    progress.emit_lag(&self.telemetry);
                    let tick = Tick::now(started, &summary, &mut interval, &progress);
                    if self.live {
                        self.report(&tick, &mut last_tick);
                    }
                    if let Some(ticks) = &self.ticks {
                        let _ = ticks.send(tick);
                    }
                    continue;
                }
            }
            let mut batch_records = 0;
            for message in messages.drain(..) {
                let outcome = match message {
                    PublisherMsg::Outcome(outcome) => outcome,
                    PublisherMsg::Taken { positions, backlog } => {
                        for position in positions {
                            progress.taken(position);
                        }
                        for (partition, n) in backlog {
                            progress.partition(partition).backlog = n;
                        }
                        continue;
                    }
                    PublisherMsg::SourceDone { records } => {
                        expected = Some(records);
                        continue;
                    }
                };
                summary.records += 1;
                batch_records += 1;
                match outcome {
                    Outcome::Scored {
                        position,
                        kind,
                        event_ts,
                        ingested,
                        decision,
                        shadow,
                        audit,
                    } => {
                        summary.scored += 1;
                        if let Some(shadow) = shadow {
                            self.telemetry.shadow(shadow.kind, shadow.disagrees);
                            summary.disagreements += u64::from(shadow.disagrees);
                            if let Some(d) = shadow.decision {
                                summary.shadow_decisions += 1;
                                shadows.push(d.record());
                            }
                        }
                        if let (Some(audit), Some(to)) = (audit, &self.audit) {
                            let _ = to.send(*audit);
                        }
                        progress.published(position, Some(event_ts));
                        let outcome = match decision {
                            Some(d) => {
                                summary.decisions[d.decision.index()] += 1;
                                summary.degraded += u64::from(d.degraded);
                                self.telemetry.decision(d.decision, d.degraded);
                                decisions.push(d.record());
                                EventOutcome::Decided
                            }
                            None => EventOutcome::Cleared,
                        };
                        self.telemetry.events(Some(kind), outcome, 1);
                        published.push(ingested);
                    }
                    Outcome::Rejected { letter, kind, .. } => {
                        summary.dead_letters += 1;
                        progress.published(letter.position, None);
                        self.telemetry.events(kind, EventOutcome::Rejected, 1);
                        let reason = letter.rejection.reason;
                        match rejected_by_reason.iter_mut().find(|(r, _)| *r == reason) {
                            Some((_, n)) => *n += 1,
                            None => rejected_by_reason.push((reason, 1)),
                        }
                        letters.push(SinkRecord {
                            key: Bytes::new(),
                            value: Bytes::from(letter.to_json().into_bytes()),
                        });
                    }
                }
            }
            let write_started = Instant::now();
            for (sink, batch) in [
                (&mut self.decisions, &mut decisions),
                (&mut self.dead_letters, &mut letters),
                (&mut self.shadow, &mut shadows),
            ] {
                if !batch.is_empty() {
                    deliver(sink.as_mut(), batch, &self.telemetry).await;
                    batch.clear();
                }
            }
            let now = Instant::now();
            self.telemetry.stage(Stage::Publish, now - write_started);
            for ingested in published.drain(..) {
                let latency = now - ingested;
                self.telemetry.decision_latency(latency);
                let us = (latency.as_micros() as u64).max(1);
                summary.latency_histogram.saturating_record(us);
                interval.saturating_record(us);
            }
            for (reason, count) in rejected_by_reason.drain(..) {
                self.telemetry.emit(DeadLettersWritten { reason, count });
            }
            self.in_flight.add_permits(batch_records);
            self.committed
                .send_replace(progress.watermarks.resume_offsets());
        }
        progress.emit_lag(&self.telemetry);
        // The last, partial second: without it a run shorter than a second has no timeline.
        if let Some(ticks) = self.ticks.as_ref().filter(|_| !interval.is_empty()) {
            let _ = ticks.send(Tick::now(started, &summary, &mut interval, &progress));
        }
        summary.elapsed = started.elapsed();
        summary.latency_us = summarize(&summary.latency_histogram);
        summary
    }

    fn report(&self, tick: &Tick, last: &mut (Instant, u64)) {
        let now = Instant::now();
        let rate = (tick.records - last.1) as f64 / (now - last.0).as_secs_f64();
        let p99 = tick.latency_us.map_or("-".to_owned(), |l| {
            format!("{:.2} ms", l.p99 as f64 / 1_000.0)
        });
        eprintln!(
            "{:>8.0} ev/s | freeze {} alert {} outreach {} | p99 {p99} | dead letters {} | actors {}",
            rate,
            tick.decisions[0],
            tick.decisions[1],
            tick.decisions[2],
            tick.dead_letters,
            self.actors.load(Ordering::Relaxed),
        );
        *last = (now, tick.records);
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use bytes::Bytes;

    use super::*;
    use crate::sink::SinkError;

    /// A sink that refuses its first `failures` flushes, as a sink whose broker is down would.
    struct RecoveringSink {
        failures: usize,
        buffered: Vec<SinkRecord>,
        delivered: Vec<Bytes>,
    }

    #[async_trait]
    impl Sink for RecoveringSink {
        async fn send(&mut self, batch: &[SinkRecord]) -> Result<(), SinkError> {
            self.buffered.extend_from_slice(batch);
            Ok(())
        }

        async fn flush(&mut self) -> Result<(), SinkError> {
            if self.failures > 0 {
                self.failures -= 1;
                self.buffered.clear();
                return Err(SinkError::Write {
                    spec: "recovering".into(),
                    source: std::io::Error::other("broker unavailable"),
                });
            }
            self.delivered
                .extend(self.buffered.drain(..).map(|r| r.value));
            Ok(())
        }

        fn describe(&self) -> String {
            "recovering".into()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_sink_gets_the_whole_batch_once_it_recovers() {
        let mut sink = RecoveringSink {
            failures: 3,
            buffered: Vec::new(),
            delivered: Vec::new(),
        };
        let batch: Vec<SinkRecord> = (0..5)
            .map(|i| SinkRecord {
                key: Bytes::from_static(b"c-1"),
                value: Bytes::from(format!("decision {i}")),
            })
            .collect();
        let started = tokio::time::Instant::now();
        deliver(&mut sink, &batch, &Telemetry::new()).await;
        let expected: Vec<Bytes> = batch.iter().map(|r| r.value.clone()).collect();
        assert_eq!(sink.delivered, expected);
        // Three backoffs of about 100, 200 and 400 ms, each jittered by ±50%.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(350) && waited <= Duration::from_millis(1050),
            "{waited:?}"
        );
    }
}
