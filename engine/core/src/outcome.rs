//! Where each record ended up, and the reports that carry it to the publisher. Customer actors
//! produce `Outcome`s (a scored event, maybe with a decision, shadows and an audit; or a
//! rejection); the ingest loop produces them for records that do not decode, and also says what
//! it has taken in. Inactivity checks that fire report what they made of a quiet customer. All of it reaches the publisher as `Report`s on one channel, in the order
//! it happened, so the publisher always hears that a record was taken before it hears its
//! outcome.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use vigil_models::ModelKind;

use crate::dead_letter::DeadLetter;
use crate::decision::{Decision, DecisionKind};
use crate::event::Position;

/// Where one source record ended up.
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
        /// What the candidate policy would have done, when one runs (`policy.shadow`).
        policy_shadow: Option<Box<PolicyShadow>>,
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

/// The candidate policy's would-be decision on one event, for the shadow output, beside what
/// the champion policy decided.
#[derive(Debug)]
pub struct PolicyShadow {
    pub kind: ModelKind,
    pub champion: Option<DecisionKind>,
    pub decision: Option<Box<Decision>>,
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

/// What an inactivity check that came due made of a customer who had gone quiet. It is no
/// source record's outcome: it moves no offset and counts as no record.
#[derive(Debug)]
pub struct Fired {
    pub timer_ts: i64,
    pub outcome: TimerOutcome,
    pub decision: Option<Box<Decision>>,
}

/// The `outcome` label of `vigil_timers_fired_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerOutcome {
    /// The churn score earned outreach, which was published.
    Outreach,
    /// The score would have earned outreach, but the customer had one within the cooldown.
    Cooldown,
    /// The score was below the outreach threshold.
    NoAction,
    /// The churn model's score was not a number.
    ModelError,
}

impl TimerOutcome {
    pub const ALL: [TimerOutcome; 4] = [
        TimerOutcome::Outreach,
        TimerOutcome::Cooldown,
        TimerOutcome::NoAction,
        TimerOutcome::ModelError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TimerOutcome::Outreach => "outreach",
            TimerOutcome::Cooldown => "cooldown",
            TimerOutcome::NoAction => "no_action",
            TimerOutcome::ModelError => "model_error",
        }
    }
}

/// What the publisher hears, from the ingest loop and from the customer actors.
pub enum Report {
    /// The ingest loop took in a batch: where each record sits, and what the source says is
    /// still waiting to be read per partition.
    Taken {
        positions: Vec<Position>,
        backlog: Vec<(u32, u64)>,
    },
    Outcome(Outcome),
    /// An inactivity check fired.
    Fired(Fired),
    /// A record from beside the event stream (a profile) that is refused: dead-lettered,
    /// but not one of the records the source took in.
    Refused(Box<DeadLetter>),
    /// Everything reported before this is written to the sinks: reply. A checkpoint asks,
    /// so that it never records a fired check whose decision is not yet published.
    Flush(tokio::sync::oneshot::Sender<()>),
    /// The ingest loop has stopped after taking in this many records.
    SourceDone {
        records: u64,
    },
}
