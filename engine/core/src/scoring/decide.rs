//! One event through one customer's state, with what every customer shares (`Scoring`): late
//! check and rolling features, then the fraud or churn model, then the policy, within the
//! latency budget. An event that already waited past the budget skips the models and gets a
//! rules-only decision marked `degraded`, counted in `vigil_budget_exceeded_total`: a budget is
//! never missed silently.
//!
//! The event is scored by the one model set in force when it starts, so its decision names
//! exactly the model version that made it, whatever swap happens meanwhile. When a challenger
//! of the event's kind is loaded, it scores the same features and the policy is applied to its
//! score too; that would-be decision is the event's shadow, never acted on.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use vigil_models::{Model, ModelKind, Score};

use super::features::{ChurnVector, CustomerFeatures, FraudVector, Observation};
use super::models::{LiveModels, ModelSet};
use super::policy::Policy;
use crate::config::{Config, LatencyBudget};
use crate::dead_letter::{DeadLetter, RejectReason, Rejection};
use crate::decision::{Decision, DecisionKind, ReasonCode};
use crate::error::Result;
use crate::event::{Event, EventKind, Inbound, SCHEMA_VERSION};
use crate::outcome::{Audit, Outcome, Shadow};
use crate::telemetry::{BudgetExceeded, ModelLoaded, Stage, Telemetry};

/// Called on every event once its features are folded in, before it is scored. The engine
/// never sets one; the fault tests pass one in to make processing fail on chosen events.
pub type AfterFeatures = Arc<dyn Fn(&Event) + Send + Sync>;

/// Everything shared by all customer actors: models, policy and limits.
pub struct Scoring {
    pub models: Arc<LiveModels>,
    pub policy: Policy,
    pub late_tolerance_ms: i64,
    /// How far ahead of the engine's clock an event may be.
    pub max_future_skew_ms: i64,
    pub max_amount: f64,
    pub latency_budget: LatencyBudget,
    pub telemetry: Telemetry,
    /// Attach an `Audit` (features, label and both scores) to every scored event, for
    /// `vigil replay`. Off in live runs: it costs an allocation per event.
    pub audit: bool,
    pub after_features: Option<AfterFeatures>,
}

impl Scoring {
    /// Scoring with `models` under `config`'s policy and limits; every model is announced in
    /// its role.
    pub fn new(models: ModelSet, config: &Config, telemetry: Telemetry) -> Result<Scoring> {
        let policy = Policy::new(config)?;
        for (model, role) in models.roles() {
            telemetry.emit(ModelLoaded {
                label: &model.label(),
                role: role.name(),
            });
        }
        Ok(Scoring {
            models: Arc::new(LiveModels::new(models)),
            policy,
            late_tolerance_ms: config.engine.late_tolerance.as_millis() as i64,
            max_future_skew_ms: config.engine.max_future_skew.as_millis() as i64,
            max_amount: config.engine.max_amount,
            latency_budget: config.engine.latency_budget,
            telemetry,
            audit: false,
            after_features: None,
        })
    }

    /// Loads the configured models and policy.
    pub fn from_config(config: &Config, telemetry: Telemetry) -> Result<Scoring> {
        Scoring::new(ModelSet::load(config)?, config, telemetry)
    }
}

/// What one model made of an event: its score and the action the policy takes on it.
struct Verdict<'m> {
    model: &'m Model,
    score: Score,
    action: Option<DecisionKind>,
    rules: Vec<Arc<str>>,
}

/// A customer's state: rolling features and when they were last offered outreach.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CustomerState {
    features: Option<CustomerFeatures>,
    last_outreach_ts: Option<i64>,
}

/// The layout of an encoded `CustomerState`, its first byte. It changes whenever the fields
/// (and so the postcard bytes) of the state change, so that a state store written by another
/// engine version is refused by name rather than misread. Layout 2: the time-carrying fraud
/// features (sketch, recent payments, usual place). States before layout 2 began with 0 or 1.
const STATE_LAYOUT: u8 = 2;

/// Why stored customer state cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StateDecodeError {
    #[error("it is state layout {found}, this engine reads layout {STATE_LAYOUT} (layouts before 2 start with 0 or 1); it was written by another Vigil version")]
    Layout { found: u8 },
    #[error("it is empty")]
    Empty,
    #[error("its bytes do not decode: {0}")]
    Bytes(#[from] postcard::Error),
}

impl CustomerState {
    /// The compact form kept in the state store while the customer is passivated: the layout
    /// byte, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![STATE_LAYOUT];
        postcard::to_io(self, &mut bytes).expect("customer state always encodes");
        bytes
    }

    pub fn decode(bytes: &[u8]) -> std::result::Result<CustomerState, StateDecodeError> {
        match bytes.split_first() {
            None => Err(StateDecodeError::Empty),
            Some((&STATE_LAYOUT, rest)) => Ok(postcard::from_bytes(rest)?),
            Some((&found, _)) => Err(StateDecodeError::Layout { found }),
        }
    }

    /// Makes this state a copy of `other`, reusing this one's buffers: after the first few
    /// events, taking a restore point allocates nothing.
    pub fn copy_from(&mut self, other: &CustomerState) {
        let CustomerState {
            features,
            last_outreach_ts,
        } = other;
        match (&mut self.features, features) {
            (Some(mine), Some(theirs)) => mine.copy_from(theirs),
            (mine, theirs) => mine.clone_from(theirs),
        }
        self.last_outreach_ts = *last_outreach_ts;
    }

    /// Processes one of this customer's events: the budget check, then features, models and
    /// policy, then the outcome with its decision, shadow and audit.
    pub fn process(&mut self, inbound: &Inbound, scoring: &Scoring) -> Outcome {
        let Inbound {
            event,
            position,
            ingested,
            raw,
        } = inbound;
        let (position, ingested) = (*position, *ingested);
        let started = Instant::now();
        let degraded = over_budget(event, ingested, started, scoring);

        if let Some(rejection) = insane(event, scoring) {
            return Outcome::Rejected {
                letter: Box::new(DeadLetter {
                    rejection,
                    raw: raw.clone(),
                    position,
                }),
                kind: Some(event.kind.name()),
                ingested,
            };
        }
        let features = self
            .features
            .get_or_insert_with(|| CustomerFeatures::new(event.ts));
        let observation = match features.observe(event, scoring.late_tolerance_ms) {
            Ok(observation) => observation,
            Err(late) => {
                return Outcome::Rejected {
                    letter: Box::new(DeadLetter {
                        rejection: Rejection::new(
                            RejectReason::LateEvent,
                            Some("ts"),
                            format!(
                                "event is {} ms older than the customer's newest event; the tolerance is {} ms",
                                late.late_by_ms, late.tolerance_ms
                            ),
                        ),
                        raw: raw.clone(),
                        position,
                    }),
                    kind: Some(event.kind.name()),
                    ingested,
                }
            }
        };
        if let Some(hook) = &scoring.after_features {
            hook(event);
        }
        let featured = Instant::now();
        scoring.telemetry.stage(Stage::Features, featured - started);

        let models = scoring.models.current();
        let judgement = match &observation {
            Observation::Fraud(v) => judge_fraud(&models, &scoring.policy, v, degraded),
            Observation::Churn(v) => {
                self.judge_churn(&models, &scoring.policy, v, event.ts, degraded)
            }
        };
        let decided = Instant::now();
        scoring.telemetry.stage(Stage::Score, decided - featured);

        let made = |action: Option<DecisionKind>, verdict: Option<&Verdict>, rules: &[Arc<str>]| {
            action.map(|kind| decision(event, kind, verdict, rules, degraded, ingested, decided))
        };
        let shadow = judgement.challenger.as_ref().map(|c| {
            Box::new(Shadow {
                kind: judgement.kind,
                decision: made(c.action, Some(c), &c.rules),
                disagrees: c.action != judgement.action,
            })
        });
        let audit = scoring
            .audit
            .then(|| audit(event, &observation, &judgement));
        Outcome::Scored {
            position,
            kind: event.kind.name(),
            event_ts: event.ts,
            ingested,
            decision: made(
                judgement.action,
                judgement.champion.as_ref(),
                &judgement.rules,
            ),
            shadow,
            audit,
        }
    }

    /// The churn model's verdict on an engagement event, and the challenger's; an outreach
    /// starts the cooldown. Outreach is never urgent: without budget left there is nothing
    /// rules-only to say.
    fn judge_churn<'m>(
        &mut self,
        models: &'m ModelSet,
        policy: &Policy,
        v: &ChurnVector,
        ts: i64,
        degraded: bool,
    ) -> Judgement<'m> {
        let mut judgement = Judgement {
            champion: None,
            action: None,
            rules: Vec::new(),
            challenger: None,
            kind: ModelKind::Churn,
        };
        if degraded {
            return judgement;
        }
        let last = self.last_outreach_ts;
        let verdict = |model: &'m Model| {
            let score = model.score(v);
            let outreach = policy.outreach(score.probability, ts, last);
            Verdict {
                model,
                score,
                action: outreach.then_some(DecisionKind::Outreach),
                rules: Vec::new(),
            }
        };
        let champion = verdict(&models.churn);
        if champion.action.is_some() {
            self.last_outreach_ts = Some(ts);
        }
        judgement.action = champion.action;
        judgement.champion = Some(champion);
        judgement.challenger = models.churn_challenger.as_ref().map(verdict);
        judgement
    }
}

/// What the models and the policy made of one event.
struct Judgement<'m> {
    /// The champion's verdict; none when degraded to rules only.
    champion: Option<Verdict<'m>>,
    /// The action taken, from the champion's score and the hard rules.
    action: Option<DecisionKind>,
    /// The hard rules that fired, for the decision.
    rules: Vec<Arc<str>>,
    /// The challenger's verdict, when one of the event's kind is loaded.
    challenger: Option<Verdict<'m>>,
    kind: ModelKind,
}

/// Whether the event already waited past its kind's budget: then it is decided on rules only.
fn over_budget(event: &Event, ingested: Instant, started: Instant, scoring: &Scoring) -> bool {
    let queued = started.duration_since(ingested);
    scoring.telemetry.stage(Stage::Queue, queued);
    let budget = match event.kind {
        EventKind::Payment(_) => scoring.latency_budget.fraud,
        _ => scoring.latency_budget.churn,
    };
    let degraded = queued >= budget;
    if degraded {
        scoring.telemetry.emit(BudgetExceeded { waited: queued });
    }
    degraded
}

/// Why an event must not touch its customer's state, if it must not: a time too far ahead of
/// the engine's clock (it would make every later event of the customer late), or an amount
/// over the configured maximum. Checked before the features, so a refused event changes
/// nothing.
fn insane(event: &Event, scoring: &Scoring) -> Option<Rejection> {
    let now = now_ms();
    let ahead = event.ts.saturating_sub(now);
    if ahead > scoring.max_future_skew_ms {
        return Some(Rejection::new(
            RejectReason::FutureEvent,
            Some("ts"),
            format!(
                "event time is {ahead} ms ahead of the engine's clock; engine.max_future_skew allows {} ms",
                scoring.max_future_skew_ms
            ),
        ));
    }
    match &event.kind {
        EventKind::Payment(p) if p.amount > scoring.max_amount => Some(Rejection::new(
            RejectReason::InvalidValue,
            Some("amount"),
            format!(
                "{} is over engine.max_amount ({})",
                p.amount, scoring.max_amount
            ),
        )),
        _ => None,
    }
}

/// The wall clock in milliseconds since the epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The fraud model's verdict on a payment raised to the hard rules, and the challenger's.
/// Degraded, the rules alone decide and no model scores.
fn judge_fraud<'m>(
    models: &'m ModelSet,
    policy: &Policy,
    v: &FraudVector,
    degraded: bool,
) -> Judgement<'m> {
    if degraded {
        let rules_only = policy.fraud(None, v);
        return Judgement {
            champion: None,
            action: rules_only.action,
            rules: rules_only.fired,
            challenger: None,
            kind: ModelKind::Fraud,
        };
    }
    let verdict = |model: &'m Model| {
        let score = model.score(v);
        let fraud = policy.fraud(Some((model, score.probability)), v);
        (
            Verdict {
                model,
                score,
                action: fraud.action,
                rules: Vec::new(),
            },
            fraud.fired,
        )
    };
    // The rules that fired go to the decision; the champion's verdict keeps none, so they are
    // not copied.
    let (champion, rules) = verdict(&models.fraud);
    let challenger = models.fraud_challenger.as_ref().map(|model| {
        let (mut challenger, rules) = verdict(model);
        challenger.rules = rules;
        challenger
    });
    Judgement {
        action: champion.action,
        champion: Some(champion),
        rules,
        challenger,
        kind: ModelKind::Fraud,
    }
}

/// Features, label, both scores and both actions, for `vigil replay`.
fn audit(event: &Event, observation: &Observation, judgement: &Judgement) -> Box<Audit> {
    let features = match observation {
        Observation::Fraud(v) => v.to_vec(),
        Observation::Churn(v) => v.to_vec(),
    };
    let label = event.label.and_then(|l| match judgement.kind {
        ModelKind::Fraud => l.fraud,
        ModelKind::Churn => l.churn,
    });
    let champion = judgement.champion.as_ref();
    let challenger = judgement.challenger.as_ref();
    Box::new(Audit {
        event_id: event.event_id.clone(),
        customer_id: event.customer_id.clone(),
        event_ts: event.ts,
        kind: judgement.kind,
        label,
        features,
        score: champion.map(|v| v.score.probability),
        model: champion.map(|v| v.model.label()),
        decision: judgement.action,
        challenger_score: challenger.map(|v| v.score.probability),
        challenger_decision: challenger.and_then(|v| v.action),
    })
}

/// The decision `kind` on `event`, citing the verdict's model, score and reasons when there is
/// one (there is none when degraded to rules only).
fn decision(
    event: &Event,
    kind: DecisionKind,
    verdict: Option<&Verdict>,
    rules: &[Arc<str>],
    degraded: bool,
    ingested: Instant,
    decided: Instant,
) -> Box<Decision> {
    Box::new(Decision {
        schema: SCHEMA_VERSION,
        decision_id: Decision::id_for(&event.customer_id, &event.event_id, kind),
        decision: kind,
        customer_id: event.customer_id.clone(),
        event_id: event.event_id.clone(),
        event_ts: event.ts,
        decided_ts: now_ms(),
        score: verdict.map(|v| v.score.probability),
        model: verdict.map(|v| v.model.label()),
        reasons: verdict.map_or(Vec::new(), |v| reason_codes(v.model, &v.score)),
        rules: rules.to_vec(),
        degraded,
        latency_us: (decided - ingested).as_micros() as u64,
    })
}

/// The score's top reasons with their feature names, built only when a decision is published.
fn reason_codes(model: &Model, score: &Score) -> Vec<ReasonCode> {
    score
        .reasons()
        .iter()
        .map(|r| ReasonCode {
            feature: model.feature_name(r.feature).to_owned(),
            contribution: r.contribution,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Payment;

    #[test]
    fn stored_state_round_trips_and_another_layout_is_refused_by_name() {
        let mut state = CustomerState::default();
        let mut features = CustomerFeatures::new(1_000);
        let payment = Event {
            event_id: "e-1".into(),
            customer_id: "c-1".into(),
            ts: 1_000,
            kind: EventKind::Payment(Payment {
                amount: 12.5,
                currency: "EUR".into(),
                country: "FR".into(),
                location: None,
                merchant: "m-1".into(),
                mcc: "5411".into(),
                channel: None,
            }),
            label: None,
        };
        features.observe(&payment, 0).unwrap();
        state.features = Some(features);
        let encoded = state.encode();
        assert_eq!(encoded[0], STATE_LAYOUT);
        assert_eq!(CustomerState::decode(&encoded).unwrap(), state);

        // What the previous layout wrote: postcard alone, starting with the Option tag.
        let previous = postcard::to_allocvec(&state).unwrap();
        let err = CustomerState::decode(&previous).unwrap_err().to_string();
        assert!(
            err.contains("state layout 1, this engine reads layout 2"),
            "{err}"
        );
        assert!(CustomerState::decode(&[]).is_err());
    }

    #[test]
    fn a_typical_customer_passivates_in_a_few_kib() {
        // A month of card use: five payments a day at 20 merchants in 5 categories.
        let mut features = CustomerFeatures::new(0);
        const HOUR: i64 = 3_600_000;
        for i in 0..150i64 {
            let payment = Event {
                event_id: format!("e-{i}"),
                customer_id: "c-1".into(),
                ts: i * 24 * HOUR / 5,
                kind: EventKind::Payment(Payment {
                    amount: 5.0 + (i % 13) as f64 * 7.5,
                    currency: "EUR".into(),
                    country: "FR".into(),
                    location: Some(crate::event::GeoPoint {
                        lat: 48.85 + (i % 7) as f64 * 0.01,
                        lon: 2.35,
                    }),
                    merchant: format!("m-{}", i % 20),
                    mcc: format!("54{}", i % 5),
                    channel: None,
                }),
                label: None,
            };
            features.observe(&payment, 0).unwrap();
        }
        let state = CustomerState {
            features: Some(features),
            last_outreach_ts: None,
        };
        let bytes = state.encode().len();
        assert!((1_000..4_096).contains(&bytes), "{bytes} bytes");
    }
}
