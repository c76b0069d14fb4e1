//! Telemetry: every metric name and label the engine exports is defined here and nowhere
//! else, with the histogram buckets and the exporter setup.
//!
//! Things that happen are typed events (`ActorFailed`, `DeadLettersWritten`, `ConsumerLag`…)
//! in the style of Vector's internal events: emitting one writes its log line and updates its
//! metric together, so the two cannot drift apart. Per-event counters and histograms on the
//! hot path go through handles registered once (`Telemetry`), so recording is an atomic
//! operation, not a registry lookup. No customer id is ever a label.

use std::net::SocketAddr;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::dead_letter::RejectReason;
use crate::decision::DecisionKind;
use crate::error::{Error, Result};
use crate::event::{Position, KINDS};
use crate::feedback::Verdict;
use crate::outcome::TimerOutcome;
use crate::scoring::live_policy::PolicyRole;
use vigil_models::ModelKind;

pub const EVENTS_TOTAL: &str = "vigil_events_total";
pub const DECISIONS_TOTAL: &str = "vigil_decisions_total";
pub const DECISION_LATENCY: &str = "vigil_decision_latency_seconds";
pub const STAGE_SECONDS: &str = "vigil_stage_seconds";
pub const CONSUMER_LAG_RECORDS: &str = "vigil_consumer_lag_records";
pub const CONSUMER_LAG_SECONDS: &str = "vigil_consumer_lag_seconds";
pub const ACTORS_ACTIVE: &str = "vigil_actors_active";
pub const ACTOR_RESTARTS: &str = "vigil_actor_restarts_total";
pub const PASSIVATIONS: &str = "vigil_passivations_total";
pub const RESTORES: &str = "vigil_state_restores_total";
pub const STATE_SAVED_BYTES: &str = "vigil_state_saved_bytes_total";
pub const STATE_SAVE_SECONDS: &str = "vigil_state_save_seconds";
pub const CHECKPOINT_SECONDS: &str = "vigil_checkpoint_seconds";
pub const BUDGET_EXCEEDED: &str = "vigil_budget_exceeded_total";
pub const REPEATED_EVENTS: &str = "vigil_repeated_events_total";
pub const MODEL_ERRORS: &str = "vigil_model_errors_total";
pub const DEAD_LETTERS: &str = "vigil_dead_letters_total";
pub const MODEL_INFO: &str = "vigil_model_info";
pub const MODEL_REJECTIONS: &str = "vigil_model_rejections_total";
pub const MODEL_DISAGREEMENTS: &str = "vigil_model_disagreements_total";
pub const SHADOW_EVENTS: &str = "vigil_shadow_events_total";
pub const SINK_FAILURES: &str = "vigil_sink_failures_total";
pub const DEAD_LETTERS_DROPPED: &str = "vigil_dead_letters_dropped_total";
pub const SOURCE_REREADS: &str = "vigil_source_rereads_total";
pub const SOURCE_RECORDS_LOST: &str = "vigil_source_records_lost_total";
pub const WATERMARK_LAG: &str = "vigil_watermark_lag_seconds";
pub const TIMERS_PENDING: &str = "vigil_timers_pending";
pub const TIMERS_FIRED: &str = "vigil_timers_fired_total";
pub const PROFILES_STORED: &str = "vigil_profiles_stored_total";
pub const POLICY_INFO: &str = "vigil_policy_info";
pub const POLICY_REJECTIONS: &str = "vigil_policy_rejections_total";
pub const FEEDBACK_TOTAL: &str = "vigil_feedback_total";
pub const POLICY_SHADOW_EVENTS: &str = "vigil_policy_shadow_events_total";
pub const POLICY_DISAGREEMENTS: &str = "vigil_policy_disagreements_total";
pub const PROFILES_MISSING: &str = "vigil_profiles_missing_total";
pub const WEBHOOK_REQUESTS: &str = "vigil_webhook_requests_total";
pub const WEBHOOK_RETRIES: &str = "vigil_webhook_retries_total";
pub const WEBHOOK_PARKED_BATCHES: &str = "vigil_webhook_parked_batches_total";
pub const WEBHOOK_PARKED_DECISIONS: &str = "vigil_webhook_parked_decisions_total";
pub const WEBHOOK_DELIVERED: &str = "vigil_webhook_delivered_decisions_total";
pub const WEBHOOK_DELIVERY_SECONDS: &str = "vigil_webhook_delivery_seconds";

/// Latency buckets in seconds, 50 µs to 5 s.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// How often process metrics (RSS, CPU, threads) are refreshed.
const PROCESS_METRICS_PERIOD: Duration = Duration::from_secs(1);

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

/// Starts the Prometheus exporter on `listen` with explicit histogram buckets, and a task
/// that refreshes the process metrics. Must be called inside a tokio runtime, once per process.
pub fn install_exporter(listen: SocketAddr) -> Result<()> {
    let failed = |detail: String| Error::Metrics {
        listen: listen.to_string(),
        detail,
    };
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
        .map_err(|e| failed(e.to_string()))?
        .install()
        .map_err(|e| failed(e.to_string()))?;
    describe();
    let process = metrics_process::Collector::default();
    process.describe();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PROCESS_METRICS_PERIOD);
        loop {
            tick.tick().await;
            process.collect();
        }
    });
    tracing::info!(%listen, "Serving Prometheus metrics.");
    Ok(())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(EVENTS_TOTAL, "Records taken in, by event kind and outcome.");
    describe_counter!(
        DECISIONS_TOTAL,
        "Decisions published, by decision and degradation."
    );
    describe_histogram!(
        DECISION_LATENCY,
        Unit::Seconds,
        "Ingest to decision published, every scored event."
    );
    describe_histogram!(
        STAGE_SECONDS,
        Unit::Seconds,
        "Time spent per pipeline stage."
    );
    describe_gauge!(
        CONSUMER_LAG_RECORDS,
        "Records available or in flight but not yet published, per source partition."
    );
    describe_gauge!(CONSUMER_LAG_SECONDS, Unit::Seconds, "Now minus the event time of the newest published record, per source partition; 0 when caught up.");
    describe_gauge!(ACTORS_ACTIVE, "Customer actors alive.");
    describe_counter!(
        ACTOR_RESTARTS,
        "Customer actor failures recovered by supervision."
    );
    describe_counter!(
        PASSIVATIONS,
        "Idle customer actors stopped with their state kept."
    );
    describe_counter!(
        RESTORES,
        "Passivated customers brought back with their stored state."
    );
    describe_counter!(
        STATE_SAVED_BYTES,
        Unit::Bytes,
        "Encoded customer state written to the state store."
    );
    describe_histogram!(
        CHECKPOINT_SECONDS,
        Unit::Seconds,
        "How long each checkpoint paused reading: draining what was in flight and writing state."
    );
    describe_histogram!(
        STATE_SAVE_SECONDS,
        Unit::Seconds,
        "Time to write one batch of passivated states to the store."
    );
    describe_gauge!(
        POLICY_INFO,
        "Decision policies by name@version and role (champion, candidate): 1 while serving, 0 once swapped out."
    );
    describe_counter!(
        POLICY_REJECTIONS,
        "Changed policy files refused by validation, by role; the policy serving kept serving."
    );
    describe_counter!(
        FEEDBACK_TOTAL,
        "Analysts' verdicts on decisions given in the risk console, by verdict."
    );
    describe_counter!(
        POLICY_SHADOW_EVENTS,
        "Events the candidate policy (policy.shadow) decided beside the champion, by model kind."
    );
    describe_counter!(
        POLICY_DISAGREEMENTS,
        "Events the candidate policy decided differently from the champion, by model kind and the two decisions (none when no action)."
    );
    describe_counter!(
        PROFILES_STORED,
        "Customer profile updates stored from the profile source."
    );
    describe_counter!(
        PROFILES_MISSING,
        "Decisions that needed a customer's profile and found none, so used the defaults."
    );
    describe_counter!(
        WEBHOOK_REQUESTS,
        "Webhook requests by endpoint and status class (2xx, 4xx, 5xx, or error for timeouts and connection failures)."
    );
    describe_counter!(
        WEBHOOK_RETRIES,
        "Webhook batches sent again after a failed attempt, by endpoint."
    );
    describe_counter!(
        WEBHOOK_PARKED_BATCHES,
        "Webhook batches given up on and written to the undeliverable output, by endpoint."
    );
    describe_counter!(
        WEBHOOK_PARKED_DECISIONS,
        "Decisions in parked webhook batches, by endpoint."
    );
    describe_counter!(
        WEBHOOK_DELIVERED,
        "Decisions a webhook endpoint accepted, by endpoint."
    );
    describe_histogram!(
        WEBHOOK_DELIVERY_SECONDS,
        Unit::Seconds,
        "From a webhook batch's first attempt to its acceptance, retries included, by endpoint."
    );
    describe_counter!(
        BUDGET_EXCEEDED,
        "Events decided on rules only because the latency budget ran out."
    );
    describe_counter!(
        REPEATED_EVENTS,
        "Records a customer already had processed, answered with the decision they got then."
    );
    describe_gauge!(
        WATERMARK_LAG,
        Unit::Seconds,
        "Now minus the watermark (the smallest newest event time over active source partitions, less the late tolerance), which inactivity checks fire against."
    );
    describe_gauge!(
        TIMERS_PENDING,
        "Customers with an inactivity check still to come: live ones held in memory, passivated ones in the state store."
    );
    describe_counter!(
        TIMERS_FIRED,
        "Inactivity checks fired, by what they decided: outreach, cooldown, no_action, model_error."
    );
    describe_counter!(
        MODEL_ERRORS,
        "Scores that were not a number, decided on rules only."
    );
    describe_counter!(
        DEAD_LETTERS_DROPPED,
        "Dead letters the dead-letter sink refused even without the record's bytes, dropped."
    );
    describe_counter!(
        DEAD_LETTERS,
        "Records sent to the dead-letter output, by reason."
    );
    describe_gauge!(
        MODEL_INFO,
        "Models by role; 1 while serving, 0 once swapped out."
    );
    describe_counter!(
        MODEL_REJECTIONS,
        "Changed model artifacts refused by validation; the model in force kept serving."
    );
    describe_counter!(
        SHADOW_EVENTS,
        "Events a challenger scored beside the champion, by model kind."
    );
    describe_counter!(
        MODEL_DISAGREEMENTS,
        "Events where the challenger's would-be action differed from the champion's, by model kind."
    );
    describe_counter!(
        SINK_FAILURES,
        "Failed attempts to deliver a batch to a sink, by sink; each is retried."
    );
    describe_counter!(
        SOURCE_REREADS,
        "Times a source stream skipped records and was reopened to read them, by source and partition."
    );
    describe_counter!(
        SOURCE_RECORDS_LOST,
        "Records gone from a source partition (retention) before they could be read, by source and partition."
    );
}

/// Pre-registered handles for every label combination recorded per event.
#[derive(Clone)]
pub struct Telemetry {
    events: Vec<[Counter; 3]>,
    decisions: [[Counter; 2]; DecisionKind::COUNT],
    decision_latency: Histogram,
    stages: [Histogram; 4],
    actors_active: Gauge,
    actor_restarts: Counter,
    budget_exceeded: Counter,
    repeated_events: Counter,
    model_errors: Counter,
    passivations: Counter,
    restores: Counter,
    state_saved_bytes: Counter,
    state_save: Histogram,
    checkpoint: Histogram,
    /// Per model kind (fraud, churn): events shadowed, and disagreements among them.
    shadowed: [[Counter; 2]; 2],
    model_rejections: Counter,
    watermark_lag: Gauge,
    timers_pending: Gauge,
    timers_fired: [Counter; 4],
    profiles_stored: Counter,
    profiles_missing: Counter,
    policy_rejections: [Counter; 2],
    /// Per model kind (fraud, churn): events the candidate policy decided, and those it decided
    /// differently from the champion, by the champion's and the candidate's decision
    /// (`decision_slot`).
    policy_shadowed: [Counter; 2],
    policy_disagreements: [[[Counter; DECISION_SLOTS]; DECISION_SLOTS]; 2],
    feedback: [Counter; 3],
}

/// A decision or none, as labels: "none" and every decision kind.
const DECISION_SLOTS: usize = DecisionKind::COUNT + 1;

fn decision_slot(decision: Option<DecisionKind>) -> usize {
    decision.map_or(0, |d| d.index() + 1)
}

fn decision_slot_name(slot: usize) -> &'static str {
    slot.checked_sub(1)
        .map_or("none", |i| DecisionKind::ALL[i].name())
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
            repeated_events: metrics::counter!(REPEATED_EVENTS),
            model_errors: metrics::counter!(MODEL_ERRORS),
            passivations: metrics::counter!(PASSIVATIONS),
            restores: metrics::counter!(RESTORES),
            state_saved_bytes: metrics::counter!(STATE_SAVED_BYTES),
            state_save: metrics::histogram!(STATE_SAVE_SECONDS),
            checkpoint: metrics::histogram!(CHECKPOINT_SECONDS),
            shadowed: [ModelKind::Fraud, ModelKind::Churn].map(|kind| {
                let kind = kind.to_string();
                [
                    metrics::counter!(SHADOW_EVENTS, "kind" => kind.clone()),
                    metrics::counter!(MODEL_DISAGREEMENTS, "kind" => kind),
                ]
            }),
            model_rejections: metrics::counter!(MODEL_REJECTIONS),
            watermark_lag: metrics::gauge!(WATERMARK_LAG),
            timers_pending: metrics::gauge!(TIMERS_PENDING),
            timers_fired: TimerOutcome::ALL
                .map(|o| metrics::counter!(TIMERS_FIRED, "outcome" => o.name())),
            profiles_stored: metrics::counter!(PROFILES_STORED),
            profiles_missing: metrics::counter!(PROFILES_MISSING),
            policy_rejections: [PolicyRole::Champion, PolicyRole::Candidate]
                .map(|role| metrics::counter!(POLICY_REJECTIONS, "role" => role.name())),
            policy_shadowed: [ModelKind::Fraud, ModelKind::Churn]
                .map(|kind| metrics::counter!(POLICY_SHADOW_EVENTS, "kind" => kind.to_string())),
            feedback: Verdict::ALL
                .map(|v| metrics::counter!(FEEDBACK_TOTAL, "verdict" => v.name())),
            policy_disagreements: [ModelKind::Fraud, ModelKind::Churn].map(|kind| {
                std::array::from_fn(|champion| {
                    std::array::from_fn(|candidate| {
                        if champion == candidate {
                            // Agreement is not counted here; no series for it.
                            return Counter::noop();
                        }
                        metrics::counter!(
                            POLICY_DISAGREEMENTS,
                            "kind" => kind.to_string(),
                            "champion" => decision_slot_name(champion),
                            "candidate" => decision_slot_name(candidate)
                        )
                    })
                })
            }),
        }
    }

    /// Counts records by kind (`None` when rejected before the kind was known) and outcome.
    pub fn events(&self, kind: Option<&str>, outcome: EventOutcome, count: u64) {
        let k = kind
            .and_then(|k| KINDS.iter().position(|known| *known == k))
            .unwrap_or(KINDS.len());
        self.events[k][outcome as usize].increment(count);
    }

    pub fn decision(&self, kind: DecisionKind, degraded: bool) {
        self.decisions[kind.index()][usize::from(degraded)].increment(1);
    }

    pub fn decision_latency(&self, took: Duration) {
        self.decision_latency.record(took.as_secs_f64());
    }

    pub fn stage(&self, stage: Stage, took: Duration) {
        self.stages[stage as usize].record(took.as_secs_f64());
    }

    /// A challenger scored an event of `kind`; `disagrees` when its action differed.
    pub fn shadow(&self, kind: ModelKind, disagrees: bool) {
        let [shadowed, disagreements] = &self.shadowed[kind as usize];
        shadowed.increment(1);
        if disagrees {
            disagreements.increment(1);
        }
    }

    /// The candidate policy decided an event of `kind`; when its decision differed from the
    /// champion's, the pair is counted.
    pub fn policy_shadow(
        &self,
        kind: ModelKind,
        champion: Option<DecisionKind>,
        candidate: Option<DecisionKind>,
    ) {
        self.policy_shadowed[kind as usize].increment(1);
        if champion != candidate {
            self.policy_disagreements[kind as usize][decision_slot(champion)]
                [decision_slot(candidate)]
            .increment(1);
        }
    }

    /// An analyst gave `verdict` on a decision.
    pub fn feedback(&self, verdict: Verdict) {
        self.feedback[verdict as usize].increment(1);
    }

    pub fn actors_active(&self, count: u64) {
        self.actors_active.set(count as f64);
    }

    pub fn timer_fired(&self, outcome: TimerOutcome) {
        self.timers_fired[outcome as usize].increment(1);
    }

    pub fn timers_pending(&self, count: u64) {
        self.timers_pending.set(count as f64);
    }

    /// The watermark, in ms since the epoch, as its lag behind the wall clock.
    pub fn watermark(&self, watermark_ms: i64, now_ms: i64) {
        self.watermark_lag
            .set(now_ms.saturating_sub(watermark_ms) as f64 / 1_000.0);
    }

    pub fn emit(&self, event: impl InternalEvent) {
        event.emit(self);
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// Something that happened inside the engine, logged and counted together.
pub trait InternalEvent {
    fn emit(self, telemetry: &Telemetry);
}

/// An event waited past the latency budget and was decided on rules only.
pub struct BudgetExceeded {
    pub waited: Duration,
}

impl InternalEvent for BudgetExceeded {
    fn emit(self, t: &Telemetry) {
        tracing::debug!(
            waited_us = self.waited.as_micros() as u64,
            "Latency budget exceeded; deciding on rules only."
        );
        t.budget_exceeded.increment(1);
    }
}

/// A policy serving at start, in its role.
pub struct PolicyLoaded<'a> {
    pub role: PolicyRole,
    pub label: &'a str,
}

impl InternalEvent for PolicyLoaded<'_> {
    fn emit(self, _: &Telemetry) {
        let role = self.role.name();
        tracing::info!(policy = self.label, role, "Policy serving.");
        metrics::gauge!(POLICY_INFO, "policy" => self.label.to_owned(), "role" => role).set(1.0);
    }
}

/// A new version of a policy file was swapped in.
pub struct PolicySwapped<'a> {
    pub role: PolicyRole,
    pub from: &'a str,
    pub to: &'a str,
    /// From reading the changed file to the swap.
    pub took: Duration,
}

impl InternalEvent for PolicySwapped<'_> {
    fn emit(self, _: &Telemetry) {
        let role = self.role.name();
        let took = format!("{:?}", self.took);
        tracing::info!(
            from = self.from,
            to = self.to,
            role,
            took,
            "Policy swapped in."
        );
        metrics::gauge!(POLICY_INFO, "policy" => self.from.to_owned(), "role" => role).set(0.0);
        metrics::gauge!(POLICY_INFO, "policy" => self.to.to_owned(), "role" => role).set(1.0);
    }
}

/// A changed policy file was refused; the policy serving in its role keeps serving.
pub struct PolicyRejected<'a> {
    pub role: PolicyRole,
    pub path: &'a std::path::Path,
    pub error: &'a Error,
}

impl InternalEvent for PolicyRejected<'_> {
    fn emit(self, telemetry: &Telemetry) {
        tracing::error!(path = %self.path.display(), role = self.role.name(), error = %self.error, "Policy file rejected; the policy serving keeps serving.");
        telemetry.policy_rejections[self.role as usize].increment(1);
    }
}

/// Profile updates were stored.
pub struct ProfilesStored {
    pub count: u64,
}

impl InternalEvent for ProfilesStored {
    fn emit(self, t: &Telemetry) {
        t.profiles_stored.increment(self.count);
    }
}

/// A decision needed a customer's profile and there was none: the defaults applied.
pub struct ProfileMissing;

impl InternalEvent for ProfileMissing {
    fn emit(self, t: &Telemetry) {
        t.profiles_missing.increment(1);
    }
}

/// A customer's record came again, and got the decision it got the first time.
pub struct RepeatedEvent;

impl InternalEvent for RepeatedEvent {
    fn emit(self, t: &Telemetry) {
        t.repeated_events.increment(1);
    }
}

/// A model's score was not a number; the event was decided on rules only.
pub struct ModelError<'a> {
    pub model: &'a str,
}

impl InternalEvent for ModelError<'_> {
    fn emit(self, t: &Telemetry) {
        tracing::warn!(
            model = self.model,
            "Model score is not a number; deciding on rules only."
        );
        t.model_errors.increment(1);
    }
}

/// A customer actor was asked to hand over its state and stop.
pub struct Passivated;

impl InternalEvent for Passivated {
    fn emit(self, t: &Telemetry) {
        t.passivations.increment(1);
    }
}

/// A passivated customer came back with their stored state.
pub struct StateRestored;

impl InternalEvent for StateRestored {
    fn emit(self, t: &Telemetry) {
        t.restores.increment(1);
    }
}

/// One batch of passivated states reached the store.
pub struct StateSaved {
    pub customers: usize,
    pub bytes: u64,
    pub took: Duration,
}

impl InternalEvent for StateSaved {
    fn emit(self, t: &Telemetry) {
        tracing::debug!(
            customers = self.customers,
            bytes = self.bytes,
            took_ms = self.took.as_millis() as u64,
            "Saved passivated customer states."
        );
        t.state_saved_bytes.increment(self.bytes);
        t.state_save.record(self.took.as_secs_f64());
    }
}

/// A checkpoint was written: customer state and source offsets in one store transaction.
pub struct CheckpointWritten {
    pub customers: usize,
    pub bytes: u64,
    pub took: Duration,
}

impl InternalEvent for CheckpointWritten {
    fn emit(self, t: &Telemetry) {
        tracing::debug!(
            customers = self.customers,
            bytes = self.bytes,
            took_ms = self.took.as_millis() as u64,
            "Checkpoint written."
        );
        t.checkpoint.record(self.took.as_secs_f64());
    }
}

/// A customer actor failed on an event and was restarted from its last good state; after the
/// last attempt the event is dead-lettered.
pub struct ActorFailed<'a> {
    pub detail: &'a str,
    pub event_id: &'a str,
    pub attempt: usize,
    pub of: usize,
}

impl InternalEvent for ActorFailed<'_> {
    fn emit(self, t: &Telemetry) {
        tracing::error!(
            detail = self.detail,
            event_id = self.event_id,
            attempt = self.attempt,
            of = self.of,
            "Customer actor failed on an event; restarted from its last good state."
        );
        t.actor_restarts.increment(1);
    }
}

/// A customer actor died outside an event (its supervisor saw it); the customer's next event
/// starts a fresh one.
pub struct ActorDied<'a> {
    pub detail: &'a str,
}

impl InternalEvent for ActorDied<'_> {
    fn emit(self, t: &Telemetry) {
        tracing::error!(detail = self.detail, "Customer actor died.");
        t.actor_restarts.increment(1);
    }
}

/// A batch of records went to the dead-letter output for one reason.
pub struct DeadLettersWritten {
    pub reason: RejectReason,
    pub count: u64,
}

impl InternalEvent for DeadLettersWritten {
    fn emit(self, _: &Telemetry) {
        tracing::debug!(
            reason = self.reason.code(),
            count = self.count,
            "Records dead-lettered."
        );
        // Reasons are few and batches are large: the lookup is per batch, not per record.
        metrics::counter!(DEAD_LETTERS, "reason" => self.reason.code()).increment(self.count);
    }
}

/// How far one source partition is behind.
pub struct ConsumerLag {
    pub partition: u32,
    pub records: u64,
    pub seconds: f64,
}

impl InternalEvent for ConsumerLag {
    fn emit(self, _: &Telemetry) {
        tracing::trace!(
            partition = self.partition,
            records = self.records,
            seconds = self.seconds,
            "Consumer lag."
        );
        let partition = self.partition.to_string();
        metrics::gauge!(CONSUMER_LAG_RECORDS, "partition" => partition.clone())
            .set(self.records as f64);
        metrics::gauge!(CONSUMER_LAG_SECONDS, "partition" => partition).set(self.seconds);
    }
}

/// A model was loaded to serve in a role (champion, challenger).
pub struct ModelLoaded<'a> {
    pub label: &'a str,
    pub role: &'static str,
}

impl InternalEvent for ModelLoaded<'_> {
    fn emit(self, _: &Telemetry) {
        tracing::info!(model = self.label, role = self.role, "Model loaded.");
        let (model, version) = self.label.split_once('@').unwrap_or((self.label, ""));
        metrics::gauge!(MODEL_INFO, "model" => model.to_owned(), "version" => version.to_owned(), "role" => self.role)
            .set(1.0);
    }
}

/// A model was swapped out of a role.
pub struct ModelRetired<'a> {
    pub label: &'a str,
    pub role: &'static str,
}

impl InternalEvent for ModelRetired<'_> {
    fn emit(self, _: &Telemetry) {
        tracing::info!(model = self.label, role = self.role, "Model retired.");
        let (model, version) = self.label.split_once('@').unwrap_or((self.label, ""));
        metrics::gauge!(MODEL_INFO, "model" => model.to_owned(), "version" => version.to_owned(), "role" => self.role)
            .set(0.0);
    }
}

/// A changed model artifact failed validation; the model in force keeps serving.
pub struct ModelRejected<'a> {
    pub path: &'a std::path::Path,
    pub error: &'a Error,
}

impl InternalEvent for ModelRejected<'_> {
    fn emit(self, telemetry: &Telemetry) {
        tracing::error!(path = %self.path.display(), error = %self.error, "Model artifact rejected; the model in force keeps serving.");
        telemetry.model_rejections.increment(1);
    }
}

/// A batch could not be delivered to a sink; it is retried after `retry_in`.
pub struct SinkFailed<'a> {
    pub sink: &'a str,
    pub error: &'a dyn std::fmt::Display,
    pub retry_in: Duration,
}

/// The dead-letter sink refused a dead letter even bare: it is dropped, never retried forever.
pub struct DeadLetterDropped<'a> {
    pub sink: &'a str,
    /// None for an inactivity check's decision.
    pub position: Option<Position>,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for DeadLetterDropped<'_> {
    fn emit(self, _: &Telemetry) {
        let (partition, offset) = self.position.map(|p| (p.partition, p.offset)).unzip();
        tracing::error!(sink = self.sink, partition, offset, error = %self.error, "Dead-letter sink refused a dead letter even without the record's bytes; dropped.");
        metrics::counter!(DEAD_LETTERS_DROPPED).increment(1);
    }
}

impl InternalEvent for SinkFailed<'_> {
    fn emit(self, _: &Telemetry) {
        tracing::warn!(sink = self.sink, error = %self.error, retry_in_ms = self.retry_in.as_millis() as u64, "Sink failed; retrying the batch.");
        metrics::counter!(SINK_FAILURES, "sink" => self.sink.to_owned()).increment(1);
    }
}
