//! The publisher: the last stage. It hears every record's `Report` (from customer actors, and
//! from the ingest loop for what it took in and what did not decode), writes decisions, dead
//! letters and shadow decisions to their sinks in batches, records latency from ingest to
//! publication, releases the in-flight permits that bound the pipeline, advances the resume
//! watermark, and keeps the run's statistics and the once-a-second live summary.
//!
//! It knows the run is complete when the ingest loop has said how many records it took in and
//! that many outcomes have been published. A sink error that retrying cannot mend stops it:
//! it closes the in-flight limiter, so the ingest loop stops too, and returns the error.

mod deliver;
mod following;
mod progress;
pub mod records;
mod summary;

pub use following::{Following, Published};
pub use summary::{LatencySummary, RunSummary, Tick};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::dead_letter::{DeadLetter, RejectReason, Rejection};
use crate::decision::{Decision, DecisionKind};
use crate::error::Result;
use crate::event::{Offsets, Position};
use crate::outcome::{Audit, Fired, Outcome, Report};
use crate::sink::{Sink, SinkRecord};
use crate::telemetry::{DeadLetterDropped, DeadLettersWritten, EventOutcome, Stage, Telemetry};
use deliver::deliver;
use progress::Progress;
use records::{dead_letter_record, decision_record};
use summary::{latency_histogram, summarize};

/// Reports handled per batch.
const BATCH: usize = 1024;

/// Where the publisher writes.
pub struct Sinks {
    pub decisions: Box<dyn Sink>,
    pub dead_letters: Box<dyn Sink>,
    /// Challengers' would-be decisions.
    pub shadow: Box<dyn Sink>,
    /// Extra decision sinks, each taking the decisions of some kinds (`[[sinks]]`).
    pub routes: Vec<Route>,
}

/// A decision sink that takes the decisions of `kinds` only.
pub struct Route {
    pub kinds: Vec<DecisionKind>,
    pub sink: Box<dyn Sink>,
}

pub struct Publisher {
    pub sinks: Sinks,
    /// Where each event's `Audit` goes, when the run audits.
    pub audit: Option<mpsc::UnboundedSender<Audit>>,
    pub telemetry: Telemetry,
    /// In-flight permits, returned as records are published.
    pub in_flight: Arc<Semaphore>,
    /// Print a one-line summary to stderr every second.
    pub live: bool,
    /// Where each second's `Tick` goes, when someone follows the run.
    pub ticks: Option<mpsc::UnboundedSender<Tick>>,
    /// Where published decisions and ticks go for live followers (the console).
    pub following: Option<Arc<Following>>,
    /// Resume offsets as soon as the sinks have them, for sources that commit upstream.
    pub committed: watch::Sender<Offsets>,
    pub actors: Arc<AtomicU64>,
    /// The most bytes of a rejected record its dead letter keeps.
    pub dead_letter_raw_bytes: usize,
    /// Per partition, where the log was decided before this run's state was rebuilt from it:
    /// records below rebuild state and publish nothing, and no inactivity check publishes until
    /// every partition is past its mark, since those decisions were published then.
    pub replayed: Offsets,
}

/// One sink's records for the current batch, with the position of the event behind each
/// (none behind an inactivity check's decision).
#[derive(Default)]
struct Outgoing {
    records: Vec<SinkRecord>,
    positions: Vec<Option<Position>>,
}

impl Outgoing {
    fn push(&mut self, record: SinkRecord, position: Option<Position>) {
        self.records.push(record);
        self.positions.push(position);
    }

    fn clear(&mut self) {
        self.records.clear();
        self.positions.clear();
    }
}

/// What the publisher keeps while it runs.
struct Run {
    started: Instant,
    summary: RunSummary,
    /// Latency since the last tick.
    interval: Histogram<u64>,
    progress: Progress,
    decisions: Outgoing,
    /// Per route, its decisions in this batch.
    routed: Vec<Outgoing>,
    shadows: Outgoing,
    /// This batch's decisions for live followers, when the run has them.
    followed: Vec<Published>,
    /// Dead letters have nowhere further to go, so their positions are not kept.
    letters: Vec<DeadLetter>,
    /// Ingest times of the scored records in the current batch.
    published: Vec<Instant>,
    rejected_by_reason: Vec<(RejectReason, u64)>,
    last_report: (Instant, u64),
}

impl Publisher {
    /// Publishes until every record the ingest loop took in is published; a sink error that
    /// retrying cannot mend ends the run with that error.
    pub async fn run(mut self, inbox: mpsc::UnboundedReceiver<Report>) -> Result<RunSummary> {
        let result = self.publish(inbox).await;
        if result.is_err() {
            // The ingest loop waits for room that will never come: wake it to stop.
            self.in_flight.close();
        }
        result
    }

    async fn publish(&mut self, mut inbox: mpsc::UnboundedReceiver<Report>) -> Result<RunSummary> {
        let mut run = Run {
            started: Instant::now(),
            summary: RunSummary::new(),
            interval: latency_histogram(),
            progress: Progress::default(),
            decisions: Outgoing::default(),
            routed: self
                .sinks
                .routes
                .iter()
                .map(|_| Outgoing::default())
                .collect(),
            letters: Vec::new(),
            shadows: Outgoing::default(),
            followed: Vec::new(),
            published: Vec::with_capacity(BATCH),
            rejected_by_reason: Vec::new(),
            last_report: (Instant::now(), 0),
        };
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut expected: Option<u64> = None;
        let mut reports = Vec::with_capacity(BATCH);
        while expected != Some(run.summary.records) {
            tokio::select! {
                received = inbox.recv_many(&mut reports, BATCH) => {
                    if received == 0 {
                        break;
                    }
                }
                _ = ticker.tick() => {
                    self.tick(&mut run);
                    continue;
                }
            }
            let mut outcomes = 0;
            let mut flushed = Vec::new();
            for report in reports.drain(..) {
                match report {
                    Report::Fired(fired) => self.fired(&mut run, fired),
                    Report::Refused(letter) => {
                        run.summary.dead_letters += 1;
                        count_rejection(&mut run, letter.rejection.reason);
                        run.letters.push(*letter);
                    }
                    Report::Flush(reply) => flushed.push(reply),
                    Report::Taken { positions, backlog } => {
                        for position in positions {
                            run.progress.taken(position);
                        }
                        for (partition, records) in backlog {
                            run.progress.backlog_of(partition, records);
                        }
                    }
                    Report::SourceDone { records } => expected = Some(records),
                    Report::Outcome(outcome) => {
                        outcomes += 1;
                        self.sort(&mut run, outcome);
                    }
                }
            }
            self.write(&mut run).await?;
            if let Some(following) = &self.following {
                following.published(run.followed.drain(..));
            }
            for reply in flushed {
                let _ = reply.send(());
            }
            self.in_flight.add_permits(outcomes);
            self.committed
                .send_replace(run.progress.watermarks.resume_offsets());
        }
        run.progress.emit_lag(&self.telemetry);
        // The last, partial second: without it a run shorter than a second has no timeline.
        if !run.interval.is_empty() && (self.ticks.is_some() || self.following.is_some()) {
            self.follow(Tick::now(
                run.started,
                &run.summary,
                &mut run.interval,
                &run.progress,
            ));
        }
        run.summary.elapsed = run.started.elapsed();
        run.summary.latency_us = summarize(&run.summary.latency_histogram);
        Ok(run.summary)
    }

    /// Whether the record at `position` was decided before the state was rebuilt.
    fn replayed(&self, position: Position) -> bool {
        self.replayed
            .get(&position.partition)
            .is_some_and(|&mark| position.offset < mark)
    }

    /// Counts one outcome and puts what it publishes in the batch for its sink; an outcome
    /// replayed to rebuild state publishes nothing.
    fn sort(&self, run: &mut Run, outcome: Outcome) {
        run.summary.records += 1;
        let (position, event_ts) = match &outcome {
            Outcome::Scored {
                position, event_ts, ..
            } => (Some(*position), Some(*event_ts)),
            Outcome::Rejected { letter, .. } => (letter.position, None),
        };
        if let Some(position) = position.filter(|&p| self.replayed(p)) {
            run.summary.replayed += 1;
            run.progress.published(position, event_ts);
            return;
        }
        match outcome {
            Outcome::Scored {
                position,
                kind,
                event_ts,
                ingested,
                decision,
                shadow,
                policy_shadow,
                audit,
            } => {
                run.summary.scored += 1;
                if let Some(shadow) = shadow {
                    self.telemetry.shadow(shadow.kind, shadow.disagrees);
                    run.summary.disagreements += u64::from(shadow.disagrees);
                    if let Some(d) = shadow.decision {
                        run.summary.shadow_decisions += 1;
                        run.shadows.push(decision_record(&d), Some(position));
                    }
                }
                if let Some(shadow) = policy_shadow {
                    let candidate = shadow.decision.as_ref().map(|d| d.decision);
                    self.telemetry
                        .policy_shadow(shadow.kind, shadow.champion, candidate);
                    run.summary.policy_disagreements += u64::from(candidate != shadow.champion);
                    if let Some(d) = shadow.decision {
                        run.summary.policy_shadow_decisions += 1;
                        run.shadows.push(decision_record(&d), Some(position));
                    }
                }
                if let (Some(audit), Some(to)) = (audit, &self.audit) {
                    let _ = to.send(*audit);
                }
                run.progress.published(position, Some(event_ts));
                let outcome = match decision {
                    Some(d) => {
                        run.summary.decisions[d.decision.index()] += 1;
                        run.summary.degraded += u64::from(d.degraded);
                        self.telemetry.decision(d.decision, d.degraded);
                        self.push_decision(run, d, Some(position));
                        EventOutcome::Decided
                    }
                    None => EventOutcome::Cleared,
                };
                self.telemetry.events(Some(kind), outcome, 1);
                run.published.push(ingested);
            }
            Outcome::Rejected { letter, kind, .. } => {
                run.summary.dead_letters += 1;
                if let Some(position) = letter.position {
                    run.progress.published(position, None);
                }
                self.telemetry.events(kind, EventOutcome::Rejected, 1);
                count_rejection(run, letter.rejection.reason);
                run.letters.push(*letter);
            }
        }
    }

    /// Whether some partition is still below its rebuild mark; never without marks, so an
    /// ordinary run pays nothing per fired check.
    fn rebuilding(&self, run: &Run) -> bool {
        if self.replayed.is_empty() {
            return false;
        }
        let resume = run.progress.watermarks.resume_offsets();
        self.replayed
            .iter()
            .any(|(partition, &mark)| resume.get(partition).is_none_or(|&at| at < mark))
    }

    /// Counts a fired inactivity check and puts its decision, if it made one, in the batch;
    /// none while the state is still being rebuilt from the log.
    fn fired(&self, run: &mut Run, fired: Fired) {
        self.telemetry.timer_fired(fired.outcome);
        run.summary.timers_fired += 1;
        if let Some(d) = fired.decision.filter(|_| !self.rebuilding(run)) {
            run.summary.decisions[d.decision.index()] += 1;
            self.telemetry.decision(d.decision, d.degraded);
            self.push_decision(run, d, None);
        }
    }

    /// Puts a decision in the batch for the decision sink and for every route of its kind.
    fn push_decision(&self, run: &mut Run, decision: Box<Decision>, position: Option<Position>) {
        let record = decision_record(&decision);
        for (route, outgoing) in self.sinks.routes.iter().zip(&mut run.routed) {
            if route.kinds.contains(&decision.decision) {
                outgoing.push(record.clone(), position);
            }
        }
        if self.following.is_some() {
            run.followed.push(Published {
                decision: Arc::from(decision),
                json: record.value.clone(),
            });
        }
        run.decisions.push(record, position);
    }

    /// Writes the batch to the sinks, then records its latency. Decisions and shadow
    /// decisions a sink refuses for good join the dead letters, which are written last.
    async fn write(&mut self, run: &mut Run) -> Result<()> {
        let write_started = Instant::now();
        let mut refused = Vec::new();
        let routes = self
            .sinks
            .routes
            .iter_mut()
            .map(|route| &mut route.sink)
            .zip(&mut run.routed);
        let outputs = [
            (&mut self.sinks.decisions, &mut run.decisions),
            (&mut self.sinks.shadow, &mut run.shadows),
        ];
        for (sink, outgoing) in outputs.into_iter().chain(routes) {
            if outgoing.records.is_empty() {
                continue;
            }
            for (index, error) in deliver(sink.as_mut(), &outgoing.records, &self.telemetry).await?
            {
                refused.push(DeadLetter {
                    rejection: Rejection::new(
                        RejectReason::Undeliverable,
                        None,
                        format!("{} refused it: {error}", sink.describe()),
                    ),
                    raw: outgoing.records[index].value.clone(),
                    position: outgoing.positions[index],
                    cut: None,
                });
            }
            outgoing.clear();
        }
        for letter in refused {
            count_rejection(run, RejectReason::Undeliverable);
            run.summary.dead_letters += 1;
            run.letters.push(letter);
        }
        if !run.letters.is_empty() {
            self.write_dead_letters(&run.letters).await?;
            run.letters.clear();
        }
        let now = Instant::now();
        self.telemetry.stage(Stage::Publish, now - write_started);
        for ingested in run.published.drain(..) {
            let latency = now - ingested;
            self.telemetry.decision_latency(latency);
            let us = (latency.as_micros() as u64).max(1);
            run.summary.latency_histogram.saturating_record(us);
            run.interval.saturating_record(us);
        }
        for (reason, count) in run.rejected_by_reason.drain(..) {
            self.telemetry.emit(DeadLettersWritten { reason, count });
        }
        Ok(())
    }

    /// Writes dead letters, each keeping `dead_letter_raw_bytes` of its record. One the sink
    /// refuses for good (larger than its records may be, say) is sent again bare, with the
    /// record's length and SHA-256 but none of its bytes; refused again, it is dropped and
    /// counted. A refusal is never retried as it is, so it cannot stall the engine.
    async fn write_dead_letters(&mut self, letters: &[DeadLetter]) -> Result<()> {
        let keep = self.dead_letter_raw_bytes;
        let records: Vec<SinkRecord> = letters
            .iter()
            .map(|letter| dead_letter_record(letter, keep))
            .collect();
        let sink = self.sinks.dead_letters.as_mut();
        let refused = deliver(sink, &records, &self.telemetry).await?;
        if refused.is_empty() {
            return Ok(());
        }
        let bare: Vec<SinkRecord> = refused
            .iter()
            .map(|(index, _)| dead_letter_record(&letters[*index], 0))
            .collect();
        for (index, error) in deliver(sink, &bare, &self.telemetry).await? {
            self.telemetry.emit(DeadLetterDropped {
                sink: &sink.describe(),
                position: letters[refused[index].0].position,
                error: &error,
            });
        }
        Ok(())
    }

    /// Once a second: lag metrics, the live line and the tick for whoever follows the run.
    fn tick(&self, run: &mut Run) {
        run.progress.emit_lag(&self.telemetry);
        let tick = Tick::now(run.started, &run.summary, &mut run.interval, &run.progress);
        if self.live {
            self.report(&tick, &mut run.last_report);
        }
        self.follow(tick);
    }

    /// A tick to whoever follows the run.
    fn follow(&self, tick: Tick) {
        if let Some(following) = &self.following {
            following.ticked(&tick);
        }
        if let Some(ticks) = &self.ticks {
            let _ = ticks.send(tick);
        }
    }

    fn report(&self, tick: &Tick, last: &mut (Instant, u64)) {
        let now = Instant::now();
        let rate = (tick.records - last.1) as f64 / (now - last.0).as_secs_f64();
        let p99 = tick.latency_us.map_or("-".to_owned(), |l| {
            format!("{:.2} ms", l.p99 as f64 / 1_000.0)
        });
        eprintln!(
            "{:>8.0} ev/s | freeze {} alert {} outreach {} (suppressed {}) | p99 {p99} | dead letters {} | actors {}",
            rate,
            tick.decisions[0],
            tick.decisions[1],
            tick.decisions[2],
            tick.decisions[3],
            tick.dead_letters,
            self.actors.load(Ordering::Relaxed),
        );
        *last = (now, tick.records);
    }
}

/// Reasons are few and batches are large: dead letters are counted per reason and batch.
fn count_rejection(run: &mut Run, reason: RejectReason) {
    match run
        .rejected_by_reason
        .iter_mut()
        .find(|(r, _)| *r == reason)
    {
        Some((_, n)) => *n += 1,
        None => run.rejected_by_reason.push((reason, 1)),
    }
}
