//! Telemetry: every metric name and label the engine exports is defined here and nowhere
//! else, with the histogram buckets, the exporter setup, and typed handles that stages hold so
//! that recording on the hot path is an atomic operation, not a registry lookup.
//!
//! No customer id is ever a label.

use std::net::SocketAddr;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::dead_letter::RejectReason;
use crate::decision::DecisionKind;
use crate::event::KINDS;

pub const EVENTS_TOTAL: &str = "vigil_events_total";
pub const DECISIONS_TOTAL: &str = "vigil_decisions_total";
pub const DECISION_LATENCY: &str = "vigil_decision_latency_seconds";
pub const STAGE_SECONDS: &str = "vigil_stage_seconds";
pub const ACTORS_ACTIVE: &str = "vigil_actors_active";
pub const ACTOR_RESTARTS: &str = "vigil_actor_restarts_total";
pub const BUDGET_EXCEEDED: &str = "vigil_budget_exceeded_total";
pub const DEAD_LETTERS: &str = "vigil_dead_letters_total";
pub const MODEL_INFO: &str = "vigil_model_info";

/// Latency buckets in seconds, 50 µs to 5 s.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// Where an event ended up, the `outcome` label of `vigil_events_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// Scored, and a decision was published.
    Decided,
    /// Scored, and no action was needed.
    Cleared,
    /// Sent to the dead-letter output.
    Rejected,
}

const OUTCOMES: [&str; 3] = ["decided", "cleared", "rejected"];
/// `kind` label for records rejected before their kind was known.
const UNKNOWN_KIND: &str = "unknown";

/// The stages of `vigil_stage_seconds`.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// Ingest until the customer's actor starts on the event.
    Queue,
    Features,
    Score,
    /// Decision made until written to the sink.
    Publish,
}

const STAGES: [&str; 4] = ["queue", "features", "score", "publish"];

/// Starts the Prometheus exporter on `listen` with explicit histogram buckets. Must be called
/// inside a tokio runtime.
pub fn install_exporter(listen: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)?
        .install()
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {listen}: {e}"))?;
    describe();
    Ok(())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(EVENTS_TOTAL, "Events taken in, by kind and outcome.");
    describe_counter!(
        DECISIONS_TOTAL,
        "Decisions published, by decision and degradation."
    );
    describe_histogram!(
        DECISION_LATENCY,
        Unit::Seconds,
        "Ingest to decision published."
    );
    describe_histogram!(
        STAGE_SECONDS,
        Unit::Seconds,
        "Time spent per pipeline stage."
    );
    describe_gauge!(ACTORS_ACTIVE, "Customer actors alive.");
    describe_counter!(
        ACTOR_RESTARTS,
        "Customer actor failures recovered by supervision."
    );
    describe_counter!(
        BUDGET_EXCEEDED,
        "Events decided on rules only because the latency budget ran out."
    );
    describe_counter!(
        DEAD_LETTERS,
        "Records sent to the dead-letter output, by reason."
    );
    describe_gauge!(MODEL_INFO, "Loaded models; value 1, labels say which.");
}

/// Pre-registered handles for every label combination the engine records.
#[derive(Clone)]
pub struct Telemetry {
    events: Vec<[Counter; 3]>,
    decisions: [[Counter; 2]; 3],
    pub decision_latency: Histogram,
    stages: [Histogram; 4],
    pub actors_active: Gauge,
    pub actor_restarts: Counter,
    pub budget_exceeded: Counter,
}

impl Telemetry {
    /// Registers every handle with the installed recorder (or with none: then they are no-ops).
    pub fn new() -> Telemetry {
        let events = KINDS
            .iter()
            .chain(std::iter::once(&UNKNOWN_KIND))
            .map(|kind| {
                OUTCOMES.map(|outcome| {
                    metrics::counter!(EVENTS_TOTAL, "kind" => *kind, "outcome" => outcome)
                })
            })
            .collect();
        let decisions = DecisionKind::ALL.map(|d| {
            ["false", "true"].map(|degraded| {
                metrics::counter!(DECISIONS_TOTAL, "decision" => d.name(), "degraded" => degraded)
            })
        });
        Telemetry {
            events,
            decisions,
            decision_latency: metrics::histogram!(DECISION_LATENCY),
            stages: STAGES.map(|stage| metrics::histogram!(STAGE_SECONDS, "stage" => stage)),
            actors_active: metrics::gauge!(ACTORS_ACTIVE),
            actor_restarts: metrics::counter!(ACTOR_RESTARTS),
            budget_exceeded: metrics::counter!(BUDGET_EXCEEDED),
        }
    }

    /// Counts an event by kind (`None` when it was rejected before its kind was known).
    pub fn event(&self, kind: Option<&str>, outcome: EventOutcome, count: u64) {
        let k = kind
            .and_then(|k| KINDS.iter().position(|known| *known == k))
            .unwrap_or(KINDS.len());
        self.events[k][outcome as usize].increment(count);
    }

    pub fn decision(&self, kind: DecisionKind, degraded: bool, count: u64) {
        let d = match kind {
            DecisionKind::Freeze => 0,
            DecisionKind::Alert => 1,
            DecisionKind::Outreach => 2,
        };
        self.decisions[d][usize::from(degraded)].increment(count);
    }

    pub fn stage(&self, stage: Stage, took: Duration) {
        self.stages[stage as usize].record(took.as_secs_f64());
    }

    /// Counts dead letters; reasons are few, so the handle is looked up per batch.
    pub fn dead_letters(&self, reason: RejectReason, count: u64) {
        metrics::counter!(DEAD_LETTERS, "reason" => reason.code()).increment(count);
    }

    /// Announces a loaded model.
    pub fn model_loaded(&self, label: &str, role: &'static str) {
        let (model, version) = label.split_once('@').unwrap_or((label, ""));
        metrics::gauge!(MODEL_INFO, "model" => model.to_owned(), "version" => version.to_owned(), "role" => role)
            .set(1.0);
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}
