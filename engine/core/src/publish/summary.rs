//! What a run did: the `RunSummary` returned at its end, the once-a-second `Tick` for live
//! displays and load-test timelines, and the latency percentiles both carry.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::progress::Progress;
use crate::decision::DecisionKind;
use crate::event::Offsets;

/// What a run did, for the final summary and for tests.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub records: u64,
    pub scored: u64,
    pub decisions: [u64; DecisionKind::COUNT],
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
    /// The candidate policy's would-be decisions, and events it decided differently.
    pub policy_shadow_decisions: u64,
    pub policy_disagreements: u64,
    /// Model artifacts swapped in while running, and changed ones rejected.
    pub model_swaps: u64,
    pub model_rejections: u64,
    /// Inactivity checks fired, whatever they decided.
    pub timers_fired: u64,
    /// Records re-read to rebuild state from the log, whose decisions were published before.
    pub replayed: u64,
}

/// The run once a second, for live displays and load-test timelines.
#[derive(Debug, Clone)]
pub struct Tick {
    /// Since the publisher started.
    pub elapsed: Duration,
    /// Records published so far (scored or dead-lettered).
    pub records: u64,
    pub dead_letters: u64,
    pub decisions: [u64; DecisionKind::COUNT],
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
    /// An empty summary, filled in as the run goes.
    pub(super) fn new() -> RunSummary {
        RunSummary {
            records: 0,
            scored: 0,
            decisions: [0; DecisionKind::COUNT],
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
            policy_shadow_decisions: 0,
            policy_disagreements: 0,
            model_swaps: 0,
            model_rejections: 0,
            timers_fired: 0,
            replayed: 0,
        }
    }

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
    pub(super) fn now(
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

pub(super) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

pub(super) fn summarize(h: &Histogram<u64>) -> LatencySummary {
    LatencySummary {
        p50: h.value_at_quantile(0.5),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}
