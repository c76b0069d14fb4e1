//! Decisions: what the engine tells risk teams. A decision carries everything needed to act
//! on it and audit it: a stable id derived from the customer and the event (so redelivery
//! yields the same id and consumers can de-duplicate), the score and the model that produced it, the top reasons,
//! the hard rules that fired, whether it was degraded to rules only, and its latency.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::profile::Channel;

/// The actions Vigil can ask for, from the fraud score (freeze, alert) or the churn score
/// (outreach, or `outreach_suppressed` when the customer's profile forbids contact: published
/// with the reason, for the CRM team's counts, and acted on by no one). Ordered by severity for
/// the fraud actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    OutreachSuppressed,
    Outreach,
    Alert,
    Freeze,
}

impl DecisionKind {
    pub const COUNT: usize = 4;

    pub const ALL: [DecisionKind; DecisionKind::COUNT] = [
        DecisionKind::Freeze,
        DecisionKind::Alert,
        DecisionKind::Outreach,
        DecisionKind::OutreachSuppressed,
    ];

    /// Position in `ALL`, for tables indexed by decision kind.
    pub fn index(self) -> usize {
        match self {
            DecisionKind::Freeze => 0,
            DecisionKind::Alert => 1,
            DecisionKind::Outreach => 2,
            DecisionKind::OutreachSuppressed => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DecisionKind::Freeze => "freeze",
            DecisionKind::Alert => "alert",
            DecisionKind::Outreach => "outreach",
            DecisionKind::OutreachSuppressed => "outreach_suppressed",
        }
    }
}

/// Why a decision was made on the hard rules alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DegradedReason {
    /// The event had already waited past its latency budget.
    LatencyBudget,
    /// The model's score was not a number.
    ModelError,
}

/// What made a decision: one of the customer's events, or an inactivity check that came due
/// because nothing had come from them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    #[default]
    Event,
    Inactivity,
}

/// Why outreach the churn score asked for was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppressed {
    /// The customer has not agreed to marketing contact (or has no profile, and the default
    /// is no consent).
    NoConsent,
    /// No channel the policy may use reaches the customer.
    NoReachableChannel,
}

/// One feature's contribution to a score, in log-odds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReasonCode {
    pub feature: String,
    pub contribution: f64,
}

/// A decision as published (schema v1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    pub schema: u32,
    /// `{customer_id}/{event_id}/{event_ts}/{decision}`, with `%` and `/` inside the ids
    /// written `%25` and `%2F`: the same event of the same customer always yields the same id,
    /// two customers' events never share one even when their event ids are equal, and neither
    /// do two events of one customer that reuse an event id at different times. An inactivity
    /// check's decision is `{customer_id}/inactivity@{timer_ts}/{decision}`: three parts where
    /// an event's have four, so the two never meet.
    pub decision_id: String,
    pub decision: DecisionKind,
    pub customer_id: String,
    /// The event decided on; empty for an inactivity check.
    pub event_id: String,
    /// The event's time; for an inactivity check, the time of the customer's newest activity.
    pub event_ts: i64,
    #[serde(default)]
    pub trigger: Trigger,
    /// For an inactivity check, the event time it came due at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer_ts: Option<i64>,
    /// Wall-clock time the decision was made, ms since the epoch.
    pub decided_ts: i64,
    /// Model probability; absent when the decision is degraded to rules only.
    pub score: Option<f64>,
    /// `name@version` of the model that scored the event.
    pub model: Option<Arc<str>>,
    pub reasons: Vec<ReasonCode>,
    /// Hard rules that fired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Arc<str>>,
    /// `name@version` of the policy that made the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Arc<str>>,
    /// The channel an outreach should use, when profiles are in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// Why an `outreach_suppressed` was not an outreach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppressed>,
    /// True when the decision was made on the hard rules alone, without a score.
    pub degraded: bool,
    /// Why, when degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_reason: Option<DegradedReason>,
    /// Ingest to decision, microseconds.
    pub latency_us: u64,
}

impl Decision {
    pub fn id_for(customer_id: &str, event_id: &str, event_ts: i64, kind: DecisionKind) -> String {
        let mut id = String::with_capacity(customer_id.len() + event_id.len() + 24);
        for part in [customer_id, event_id] {
            push_escaped(&mut id, part);
            id.push('/');
        }
        id.push_str(&event_ts.to_string());
        id.push('/');
        id.push_str(kind.name());
        id
    }

    /// The id of the decision an inactivity check due at `timer_ts` made: the same on every
    /// replay and restart.
    pub fn id_for_timer(customer_id: &str, timer_ts: i64, kind: DecisionKind) -> String {
        let mut id = String::with_capacity(customer_id.len() + 40);
        push_escaped(&mut id, customer_id);
        id.push_str("/inactivity@");
        id.push_str(&timer_ts.to_string());
        id.push('/');
        id.push_str(kind.name());
        id
    }

    /// The decision as one JSON line, without the newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("decisions always serialize")
    }
}

/// `part` with `%` and `/` written `%25` and `%2F`.
fn push_escaped(id: &mut String, part: &str) {
    for c in part.chars() {
        match c {
            '%' => id.push_str("%25"),
            '/' => id.push_str("%2F"),
            c => id.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_per_customer_and_event_even_with_slashes() {
        let id = |c, e| Decision::id_for(c, e, 5, DecisionKind::Freeze);
        assert_eq!(id("c-1", "e-7"), "c-1/e-7/5/freeze");
        assert_ne!(id("c-1", "e-7"), id("c-2", "e-7"));
        // Without escaping, both would read "a/b/c/5/freeze".
        assert_ne!(id("a/b", "c"), id("a", "b/c"));
        assert_eq!(id("a/b", "c%"), "a%2Fb/c%25/5/freeze");
        // An event id reused at another time is another event.
        assert_ne!(
            Decision::id_for("c-1", "e-7", 5, DecisionKind::Freeze),
            Decision::id_for("c-1", "e-7", 6, DecisionKind::Freeze)
        );
        // An inactivity check's id has three parts, an event's four.
        let timer = Decision::id_for_timer("c/1", 5, DecisionKind::Outreach);
        assert_eq!(timer, "c%2F1/inactivity@5/outreach");
        assert_ne!(
            timer,
            Decision::id_for("c/1", "inactivity@5", 5, DecisionKind::Outreach)
        );
    }
}
