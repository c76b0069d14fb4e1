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
use std::time::Instant;

use vigil_models::{Model, ModelKind};

use super::features::{
    ChurnVector, CustomerFeatures, FeaturesMark, FraudVector, Observation, Velocity,
    CHURN_FEATURES, DAY, HOUR,
};
use super::lists::ListedFields;
use super::live_policy::{LivePolicy, PolicyRole};
use super::models::{LiveModels, ModelSet};
use super::policy::{PaymentFacts, Policy, PolicyVerdict, ProfileLookup, Reach};
use super::repeats::{RecentEvents, Seen};
use crate::config::{Config, LatencyBudget};
use crate::dead_letter::{DeadLetter, RejectReason, Rejection};
use crate::decision::{Decision, DecisionKind, DegradedReason, ReasonCode, Suppressed, Trigger};
use crate::error::Result;
use crate::event::{wall_clock_ms, Event, EventKind, Inbound, SCHEMA_VERSION};
use crate::outcome::{Audit, Outcome, PolicyShadow, Shadow};
use crate::profile::{Channel, ProfileBook};
use crate::telemetry::{
    BudgetExceeded, ModelError, ModelLoaded, PolicyLoaded, RepeatedEvent, Stage, Telemetry,
};

/// Called on every event once its features are folded in, before it is scored. The engine
/// never sets one; the fault tests pass one in to make processing fail on chosen events.
pub type AfterFeatures = Arc<dyn Fn(&Event) + Send + Sync>;

/// Everything shared by all customer actors: models, policy and limits.
pub struct Scoring {
    pub models: Arc<LiveModels>,
    pub policy: Arc<LivePolicy>,
    /// The candidate policy decided beside `policy` for the shadow output (`policy.shadow`).
    pub candidate: Option<Arc<LivePolicy>>,
    pub late_tolerance_ms: i64,
    /// How far ahead of the engine's clock an event may be.
    pub max_future_skew_ms: i64,
    pub max_amount: f64,
    /// How long a customer's processed events are remembered; 0 when repeats are not
    /// recognised.
    pub repeat_horizon_ms: i64,
    pub latency_budget: LatencyBudget,
    pub telemetry: Telemetry,
    /// Attach an `Audit` (features, label and both scores) to every scored event, for
    /// `vigil replay`. Off in live runs: it costs an allocation per event.
    pub audit: bool,
    pub after_features: Option<AfterFeatures>,
    /// Customer profiles, when the run has them (`--profiles`).
    pub profiles: Option<Arc<ProfileBook>>,
}

impl Scoring {
    /// `customer_id`'s profile, looked up when first asked for.
    pub fn profile_of<'a>(&'a self, customer_id: &'a str) -> ProfileLookup<'a> {
        ProfileLookup::new(self.profiles.as_deref(), customer_id)
    }

    /// Scoring with `models` under `config`'s policy and limits; every model is announced in
    /// its role.
    pub fn new(models: ModelSet, config: &Config, telemetry: Telemetry) -> Result<Scoring> {
        let policy = Policy::new(config)?;
        telemetry.emit(PolicyLoaded {
            role: PolicyRole::Champion,
            label: policy.label(),
        });
        for (model, role) in models.roles() {
            telemetry.emit(ModelLoaded {
                label: &model.label(),
                role: role.name(),
            });
        }
        Ok(Scoring {
            models: Arc::new(LiveModels::new(models)),
            policy: Arc::new(LivePolicy::new(policy)),
            candidate: None,
            late_tolerance_ms: config.engine.late_tolerance.as_millis() as i64,
            max_future_skew_ms: config.engine.max_future_skew.as_millis() as i64,
            max_amount: config.engine.max_amount,
            repeat_horizon_ms: config.engine.repeat_horizon.as_millis() as i64,
            latency_budget: config.engine.latency_budget,
            telemetry,
            audit: false,
            after_features: None,
            profiles: None,
        })
    }

    /// Loads the configured models and policy.
    pub fn from_config(config: &Config, telemetry: Telemetry) -> Result<Scoring> {
        Scoring::new(ModelSet::load(config)?, config, telemetry)
    }
}

/// What one model made of an event: its probability and the action the policy takes on it.
struct Verdict<'m> {
    model: &'m Model,
    probability: f64,
    action: Option<DecisionKind>,
    rules: Vec<Arc<str>>,
}

/// Where a customer's state was before an event (`CustomerState::restore_point`).
#[derive(Debug, Clone, Copy)]
pub struct RestorePoint {
    features: Option<FeaturesMark>,
    last_outreach_ts: Option<i64>,
    checks_fired: u8,
}

/// A customer's state: rolling features, when they were last offered outreach, how many
/// inactivity checks have fired since their newest activity, and the events they had
/// processed lately.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CustomerState {
    pub(super) features: Option<CustomerFeatures>,
    pub(super) last_outreach_ts: Option<i64>,
    pub(super) checks_fired: u8,
    recent_events: RecentEvents,
}

/// The velocities a `CustomerView` shows, in order.
const VIEWED_VELOCITIES: [&str; 5] = [
    "payments_1h",
    "amount_1h",
    "payments_24h",
    "amount_24h",
    "merchants_24h",
];

/// A customer's state as the risk console shows it: their churn features as they stand at
/// their newest activity, the day of payments behind the velocity rules, and when they were
/// last offered outreach.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CustomerView {
    pub customer_id: String,
    /// Whether an actor holds the customer now; otherwise this was read from the state store.
    pub active: bool,
    /// Their newest activity (event time, ms); none before their first event.
    pub newest_ts: Option<i64>,
    /// Churn features in the model's order (`null` where not a number).
    pub features: Vec<FeatureValue>,
    /// Velocities over their payments in the hour and in the day up to `newest_ts`.
    pub payments: Vec<FeatureValue>,
    pub last_outreach_ts: Option<i64>,
    /// Inactivity checks fired since their newest activity.
    pub checks_fired: u8,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FeatureValue {
    pub name: &'static str,
    pub value: f64,
}

/// The layout of an encoded `CustomerState`, its first byte. It changes whenever the fields
/// (and so the postcard bytes) of the state change, so that a state store written by another
/// engine version is refused by name rather than misread. Layout 2: the time-carrying fraud
/// features (sketch, recent payments, usual place). Layout 3: bucketed windows. Layout 4:
/// inactivity checks fired. States before layout 2 began with 0 or 1.
const STATE_LAYOUT: u8 = 4;

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
    /// byte, then postcard. Commits the events so far first, so nothing expired is stored.
    pub fn encode(&mut self) -> Vec<u8> {
        if let Some(features) = &mut self.features {
            features.settle();
        }
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

    /// What the console shows of this customer (`active` when an actor holds them). Changes
    /// nothing.
    pub fn view(&self, customer_id: &str, active: bool) -> CustomerView {
        let (newest_ts, features, payments) = match &self.features {
            None => (None, Vec::new(), Vec::new()),
            Some(f) => {
                let newest = f.newest_ts();
                let named = |names: &[&'static str], values: &[f64]| {
                    names
                        .iter()
                        .zip(values)
                        .map(|(&name, &value)| FeatureValue { name, value })
                        .collect()
                };
                let churn = f.churn_at(newest);
                let recent = f.recent();
                let (hour, day) = (newest - HOUR, newest - DAY);
                let velocities = [
                    recent.velocity(hour, None, Velocity::Count),
                    recent.velocity(hour, None, Velocity::Sum),
                    recent.velocity(day, None, Velocity::Count),
                    recent.velocity(day, None, Velocity::Sum),
                    recent.velocity(day, None, Velocity::DistinctMerchants),
                ];
                (
                    Some(newest),
                    named(&CHURN_FEATURES, &churn),
                    named(&VIEWED_VELOCITIES, &velocities),
                )
            }
        };
        CustomerView {
            customer_id: customer_id.to_owned(),
            active,
            newest_ts,
            features,
            payments,
            last_outreach_ts: self.last_outreach_ts,
            checks_fired: self.checks_fired,
        }
    }

    /// Commits the events so far (see `CustomerFeatures::settle`) and returns where the state
    /// is, to roll back to if the next event fails. Costs the same however long the customer's
    /// history is.
    pub fn restore_point(&mut self) -> RestorePoint {
        let features = self.features.as_mut().map(|features| {
            features.settle();
            features.mark()
        });
        RestorePoint {
            features,
            last_outreach_ts: self.last_outreach_ts,
            checks_fired: self.checks_fired,
        }
    }

    /// Undoes everything since `point` was taken.
    pub fn rollback(&mut self, point: &RestorePoint) {
        match (&mut self.features, &point.features) {
            (Some(features), Some(mark)) => features.rollback(mark),
            (features, None) => *features = None,
            (None, Some(_)) => unreachable!("a customer's features are never dropped"),
        }
        self.last_outreach_ts = point.last_outreach_ts;
        self.checks_fired = point.checks_fired;
    }

    /// Processes one of this customer's events: the budget check, then features, models and
    /// policy, then the outcome with its decision, shadow and audit.
    pub fn process(&mut self, inbound: &Inbound, scoring: &Scoring) -> Outcome {
        let Inbound {
            event,
            position,
            ingested,
            raw,
            ..
        } = inbound;
        let (position, ingested) = (*position, *ingested);
        let started = Instant::now();
        let degraded =
            over_budget(event, ingested, started, scoring).then_some(DegradedReason::LatencyBudget);

        let rejected = |rejection| Outcome::Rejected {
            letter: Box::new(DeadLetter {
                rejection,
                raw: raw.clone(),
                position: Some(position),
                cut: None,
            }),
            kind: Some(event.kind.name()),
            ingested,
        };
        if let Some(rejection) = insane(event, scoring) {
            return rejected(rejection);
        }
        let remembers = scoring.repeat_horizon_ms > 0;
        if remembers {
            match self.recent_events.seen(&event.event_id, raw) {
                Seen::New => {}
                Seen::Repeat(decision) => {
                    scoring.telemetry.emit(RepeatedEvent);
                    return Outcome::Scored {
                        position,
                        kind: event.kind.name(),
                        event_ts: event.ts,
                        ingested,
                        decision: decision.map(|d| Box::new(d.clone())),
                        shadow: None,
                        policy_shadow: None,
                        audit: None,
                    };
                }
                Seen::IdReused => {
                    return rejected(Rejection::new(
                        RejectReason::ReusedEventId,
                        Some("event_id"),
                        "another record of this customer with this event id was processed within engine.repeat_horizon; deciding this one would publish a second decision under the first one's id".to_string(),
                    ))
                }
            }
        }
        let features = self
            .features
            .get_or_insert_with(|| CustomerFeatures::new(event.ts));
        let newest_before = features.newest_ts();
        let observation = match features.observe(event, scoring.late_tolerance_ms) {
            Ok(observation) => observation,
            Err(late) => {
                return rejected(Rejection::new(
                    RejectReason::LateEvent,
                    Some("ts"),
                    format!(
                    "event is {} ms older than the customer's newest event; the tolerance is {} ms",
                    late.late_by_ms, late.tolerance_ms
                ),
                ))
            }
        };
        let newest_ts = features.newest_ts();
        if newest_ts > newest_before {
            // Newer activity: the inactivity checks start again from it.
            self.checks_fired = 0;
        }
        if let Some(hook) = &scoring.after_features {
            hook(event);
        }
        let featured = Instant::now();
        scoring.telemetry.stage(Stage::Features, featured - started);

        let models = scoring.models.current();
        let policy = scoring.policy.current();
        let candidate = scoring.candidate.as_ref().map(|live| live.current());
        let profile = scoring.profile_of(&event.customer_id);
        let (judgement, contested) = match (&observation, &event.kind) {
            (Observation::Fraud(v), EventKind::Payment(payment)) => {
                let payment = PaymentFacts {
                    fields: ListedFields {
                        customer_id: &event.customer_id,
                        merchant: &payment.merchant,
                        mcc: &payment.mcc,
                        country: &payment.country,
                        channel: payment.channel.as_deref(),
                    },
                    ts: event.ts,
                    recent: Some(features.recent()),
                };
                let judgement =
                    judge_fraud(&models, scoring, &policy, v, (payment, &profile), degraded);
                // The candidate acts on the champion's score, or on rules alone like it.
                let contested = candidate.as_deref().map(|candidate| {
                    let scored = judgement
                        .champion
                        .as_ref()
                        .map(|c| (c.model, c.probability));
                    candidate.fraud(scored, v, payment, &profile)
                });
                (judgement, contested)
            }
            (Observation::Churn(v), _) => {
                let last_outreach = self.last_outreach_ts;
                let judgement = self.judge_churn(&models, scoring, &policy, v, event.ts, degraded);
                // The candidate's cooldown runs from the champion's outreach.
                let contested = candidate.as_deref().map(|candidate| PolicyVerdict {
                    action: judgement
                        .champion
                        .as_ref()
                        .filter(|c| candidate.outreach(c.probability, event.ts, last_outreach))
                        .map(|_| DecisionKind::Outreach),
                    fired: Vec::new(),
                });
                (judgement, contested)
            }
            (Observation::Fraud(_), _) => unreachable!("fraud features come from payments"),
        };
        let decided = Instant::now();
        scoring.telemetry.stage(Stage::Score, decided - featured);

        let degraded = judgement.degraded;
        let features = observation.features();
        let made = |policy: &Policy,
                    verdict: Option<&Verdict>,
                    rules: &[Arc<str>],
                    action: Option<DecisionKind>| {
            let (action, channel, suppressed) = reach(policy, action, &profile);
            action.map(|kind| {
                let cited = Cited {
                    verdict,
                    features,
                    rules,
                    degraded,
                    channel,
                    suppressed,
                    policy: policy.label(),
                };
                decision(event, kind, cited, ingested, decided)
            })
        };
        let shadow = judgement.challenger.as_ref().map(|c| {
            Box::new(Shadow {
                kind: judgement.kind,
                decision: made(&policy, Some(c), &c.rules, c.action),
                disagrees: c.action != judgement.action,
            })
        });
        let audit = scoring
            .audit
            .then(|| audit(event, &observation, &judgement));
        let decision = made(
            &policy,
            judgement.champion.as_ref(),
            &judgement.rules,
            judgement.action,
        );
        let policy_shadow = candidate.as_deref().zip(contested).map(|(candidate, c)| {
            Box::new(PolicyShadow {
                kind: judgement.kind,
                champion: decision.as_ref().map(|d| d.decision),
                decision: made(candidate, judgement.champion.as_ref(), &c.fired, c.action),
            })
        });
        if remembers {
            self.recent_events.remember(
                &event.event_id,
                raw,
                event.ts,
                decision.as_deref(),
                newest_ts,
                scoring.repeat_horizon_ms,
            );
        }
        Outcome::Scored {
            position,
            kind: event.kind.name(),
            event_ts: event.ts,
            ingested,
            decision,
            shadow,
            policy_shadow,
            audit,
        }
    }

    /// The churn model's verdict on an engagement event, and the challenger's; an outreach
    /// starts the cooldown, even one the customer's profile then suppresses, so a customer
    /// without consent is counted once per cooldown, not on every event. Outreach is never urgent: without budget left there is nothing
    /// rules-only to say.
    fn judge_churn<'m>(
        &mut self,
        models: &'m ModelSet,
        scoring: &Scoring,
        policy: &Policy,
        v: &ChurnVector,
        ts: i64,
        degraded: Option<DegradedReason>,
    ) -> Judgement<'m> {
        let mut judgement = Judgement {
            champion: None,
            action: None,
            rules: Vec::new(),
            challenger: None,
            kind: ModelKind::Churn,
            degraded,
        };
        if degraded.is_some() {
            return judgement;
        }
        let last = self.last_outreach_ts;
        let verdict = |model: &'m Model| {
            let probability = scored(model, v, scoring)?;
            let outreach = policy.outreach(probability, ts, last);
            Some(Verdict {
                model,
                probability,
                action: outreach.then_some(DecisionKind::Outreach),
                rules: Vec::new(),
            })
        };
        let Some(champion) = verdict(&models.churn) else {
            judgement.degraded = Some(DegradedReason::ModelError);
            return judgement;
        };
        if champion.action.is_some() {
            self.last_outreach_ts = Some(ts);
        }
        judgement.action = champion.action;
        judgement.champion = Some(champion);
        judgement.challenger = models.churn_challenger.as_ref().and_then(verdict);
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
    /// Why the decision is on the hard rules alone, if it is.
    degraded: Option<DegradedReason>,
}

/// An outreach verdict under the customer's profile: the action and channel to publish, or
/// `outreach_suppressed` and why.
pub(super) fn reach(
    policy: &Policy,
    action: Option<DecisionKind>,
    profile: &ProfileLookup,
) -> (Option<DecisionKind>, Option<Channel>, Option<Suppressed>) {
    if action != Some(DecisionKind::Outreach) {
        return (action, None, None);
    }
    match policy.reach(profile.get()) {
        Reach::Contact(channel) => (action, channel, None),
        Reach::Suppressed(why) => (Some(DecisionKind::OutreachSuppressed), None, Some(why)),
    }
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
    let now = wall_clock_ms();
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

/// The fraud model's verdict on a payment raised to the hard rules, and the challenger's.
/// Degraded, the rules alone decide and no model scores.
fn judge_fraud<'m>(
    models: &'m ModelSet,
    scoring: &Scoring,
    policy: &Policy,
    v: &FraudVector,
    (payment, profile): (PaymentFacts, &ProfileLookup),
    degraded: Option<DegradedReason>,
) -> Judgement<'m> {
    let rules_only = |degraded| {
        let rules_only = policy.fraud(None, v, payment, profile);
        Judgement {
            champion: None,
            action: rules_only.action,
            rules: rules_only.fired,
            challenger: None,
            kind: ModelKind::Fraud,
            degraded: Some(degraded),
        }
    };
    if let Some(degraded) = degraded {
        return rules_only(degraded);
    }
    let verdict = |model: &'m Model| {
        let probability = scored(model, v, scoring)?;
        let fraud = policy.fraud(Some((model, probability)), v, payment, profile);
        Some((
            Verdict {
                model,
                probability,
                action: fraud.action,
                rules: Vec::new(),
            },
            fraud.fired,
        ))
    };
    // The rules that fired go to the decision; the champion's verdict keeps none, so they are
    // not copied.
    let Some((champion, rules)) = verdict(&models.fraud) else {
        return rules_only(DegradedReason::ModelError);
    };
    let challenger = models.fraud_challenger.as_ref().and_then(|model| {
        let (mut challenger, rules) = verdict(model)?;
        challenger.rules = rules;
        Some(challenger)
    });
    Judgement {
        action: champion.action,
        champion: Some(champion),
        rules,
        challenger,
        kind: ModelKind::Fraud,
        degraded: None,
    }
}

/// The model's probability for `v`, or `None`, counted as a model error, when it is not a
/// number: a decision never carries a score that is not one. Reasons wait for a decision
/// ([`reason_codes`]).
pub(super) fn scored(model: &Model, v: &[f64], scoring: &Scoring) -> Option<f64> {
    let probability = model.probability(v);
    if probability.is_finite() {
        Some(probability)
    } else {
        scoring.telemetry.emit(ModelError {
            model: &model.label(),
        });
        None
    }
}

/// Features, label, both scores and both actions, for `vigil replay`.
fn audit(event: &Event, observation: &Observation, judgement: &Judgement) -> Box<Audit> {
    let features = observation.features().to_vec();
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
        score: champion.map(|v| v.probability),
        model: champion.map(|v| v.model.label()),
        decision: judgement.action,
        challenger_score: challenger.map(|v| v.probability),
        challenger_decision: challenger.and_then(|v| v.action),
    })
}

/// What a decision cites: the verdict (none when degraded to rules only), the features it was
/// reached on, for its reasons, the rules that fired, and for outreach, the channel or why it
/// was suppressed.
struct Cited<'a> {
    verdict: Option<&'a Verdict<'a>>,
    features: &'a [f64],
    rules: &'a [Arc<str>],
    degraded: Option<DegradedReason>,
    channel: Option<Channel>,
    suppressed: Option<Suppressed>,
    /// `name@version` of the policy that decided.
    policy: &'a Arc<str>,
}

/// The decision `kind` on `event`, citing the verdict's model, score and reasons when there is
/// one.
fn decision(
    event: &Event,
    kind: DecisionKind,
    cited: Cited,
    ingested: Instant,
    decided: Instant,
) -> Box<Decision> {
    let Cited {
        verdict,
        features,
        rules,
        degraded,
        channel,
        suppressed,
        policy,
    } = cited;
    Box::new(Decision {
        schema: SCHEMA_VERSION,
        decision_id: Decision::id_for(&event.customer_id, &event.event_id, event.ts, kind),
        decision: kind,
        customer_id: event.customer_id.clone(),
        event_id: event.event_id.clone(),
        event_ts: event.ts,
        trigger: Trigger::Event,
        timer_ts: None,
        decided_ts: wall_clock_ms(),
        score: verdict.map(|v| v.probability),
        model: verdict.map(|v| v.model.label()),
        reasons: verdict.map_or(Vec::new(), |v| reason_codes(v.model, features)),
        rules: rules.to_vec(),
        channel,
        suppressed,
        policy: Some(policy.clone()),
        degraded: degraded.is_some(),
        degraded_reason: degraded,
        latency_us: (decided - ingested).as_micros() as u64,
    })
}

/// The model's top reasons for `features` with their names: the one place the engine credits
/// features, built only when a decision is published.
pub(super) fn reason_codes(model: &Model, features: &[f64]) -> Vec<ReasonCode> {
    model
        .score(features)
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
            err.contains("state layout 1, this engine reads layout 4"),
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
        let mut state = CustomerState {
            features: Some(features),
            ..CustomerState::default()
        };
        let bytes = state.encode().len();
        assert!((1_000..4_096).contains(&bytes), "{bytes} bytes");
    }

    #[test]
    fn a_bot_paying_every_few_milliseconds_keeps_a_bounded_state() {
        // 50,000 payments in three minutes, all inside every window but the minute.
        let mut state = CustomerState::default();
        let mut features = CustomerFeatures::new(0);
        for i in 0..50_000i64 {
            let payment = Event {
                event_id: format!("e-{i}"),
                customer_id: "c-bot".into(),
                ts: i * 4,
                kind: EventKind::Payment(Payment {
                    amount: 1.0 + (i % 10) as f64,
                    currency: "EUR".into(),
                    country: "FR".into(),
                    location: None,
                    merchant: format!("m-{}", i % 3),
                    mcc: "5411".into(),
                    channel: None,
                }),
                label: None,
            };
            features.observe(&payment, 0).unwrap();
        }
        state.features = Some(features);
        let bytes = state.encode().len();
        // Unbounded windows held every payment: 50,000 entries in each of four horizons.
        assert!(bytes < 24_000, "{bytes} bytes");
    }

    fn inbound(raw: &str) -> Inbound {
        Inbound {
            watermark: crate::pipeline::watermark::NO_WATERMARK,
            event: crate::decode::decode(raw.as_bytes(), 65_536).unwrap(),
            position: crate::event::Position {
                partition: 0,
                offset: 0,
            },
            ingested: Instant::now(),
            raw: bytes::Bytes::copy_from_slice(raw.as_bytes()),
        }
    }

    fn takeover(ts: i64, amount: &str) -> String {
        format!(
            r#"{{"schema":1,"event_id":"e-9","customer_id":"c-1","ts":{ts},"kind":"payment","amount":{amount},"currency":"EUR","country":"BR","merchant":"m-new","mcc":"5411"}}"#
        )
    }

    #[test]
    fn a_repeat_gets_its_first_decision_after_passivation_and_is_not_counted_twice() {
        let scoring = Scoring::from_config(&Config::builtin(), Telemetry::new()).unwrap();
        let ts = wall_clock_ms() - 60_000;
        let mut state = CustomerState::default();
        for i in 0..5 {
            let raw = takeover(ts - 3_600_000 + i, "20.0")
                .replace("e-9", &format!("e-{i}"))
                .replace("BR", "FR")
                .replace("m-new", "m-1");
            state.process(&inbound(&raw), &scoring);
        }
        let first = inbound(&takeover(ts, "4800.0"));
        let Outcome::Scored { decision, .. } = state.process(&first, &scoring) else {
            panic!("the takeover is scored")
        };
        let decision = decision.expect("the takeover is acted on");

        let mut restored = CustomerState::decode(&state.encode()).unwrap();
        let before = restored.clone();
        let Outcome::Scored {
            decision: again, ..
        } = restored.process(&first, &scoring)
        else {
            panic!("a repeat is answered")
        };
        assert_eq!(again.as_deref(), Some(&*decision));
        restored.encode();
        assert_eq!(restored, before, "the repeat changed the customer's state");

        // The same id on a different record is refused, naming the field.
        let Outcome::Rejected { letter, .. } =
            restored.process(&inbound(&takeover(ts, "4900.0")), &scoring)
        else {
            panic!("a reused id is refused")
        };
        assert_eq!(letter.rejection.reason, RejectReason::ReusedEventId);
        assert_eq!(letter.rejection.field.as_deref(), Some("event_id"));
    }

    /// A logistic model of `kind` over `names`, fitted on two informative features.
    fn logistic(kind: ModelKind, names: &[&str]) -> Model {
        let mut rows = vigil_models::TrainingSet::new(names.len());
        for i in 0..400 {
            let mut row = vec![0.0; names.len()];
            row[0] = (i % 7) as f64 + if i % 10 == 0 { 5.0 } else { 0.0 };
            row[1] = (i % 3) as f64;
            rows.push(&row, i % 10 == 0);
        }
        let plan = vigil_models::TrainingPlan {
            name: format!("{kind}-lr"),
            version: 1,
            kind,
            feature_names: names.iter().map(|n| n.to_string()).collect(),
            training_data: "unit test".into(),
            trained_at: "2026-12-01T00:00:00Z".into(),
            threshold: vigil_models::Threshold::Probability(0.5),
            family: vigil_models::Family::Logistic { alpha: 1.0 },
            alert_budgets: Vec::new(),
        };
        vigil_models::train(plan, &rows, &vigil_models::TrainingSet::new(names.len()))
            .unwrap()
            .into_model(kind, names)
            .unwrap()
    }

    #[test]
    fn a_score_that_is_not_a_number_degrades_to_rules_only_as_a_model_error() {
        use super::super::features::{CHURN_FEATURES, FRAUD_FEATURES};
        let scoring = Scoring::from_config(&Config::builtin(), Telemetry::new()).unwrap();
        let shipped = scoring.models.current();
        // Boosted trees send a NaN down one branch and still score; a logistic model passes it
        // through, as any model might pass an overflow.
        let models = ModelSet {
            fraud: logistic(ModelKind::Fraud, &FRAUD_FEATURES),
            churn: logistic(ModelKind::Churn, &CHURN_FEATURES),
            ..ModelSet::clone(&shipped)
        };
        let mut v = [0.0; FRAUD_FEATURES.len()];
        v[0] = f64::NAN;
        let payment = PaymentFacts {
            fields: ListedFields {
                customer_id: "c-1",
                merchant: "m-1",
                mcc: "5411",
                country: "FR",
                channel: None,
            },
            ts: 0,
            recent: None,
        };
        let profile = scoring.profile_of("c-1");
        let policy = scoring.policy.current();
        let judgement = judge_fraud(&models, &scoring, &policy, &v, (payment, &profile), None);
        assert_eq!(judgement.degraded, Some(DegradedReason::ModelError));
        assert!(judgement.champion.is_none() && judgement.challenger.is_none());

        let churn = [f64::NAN; CHURN_FEATURES.len()];
        let judgement =
            CustomerState::default().judge_churn(&models, &scoring, &policy, &churn, 0, None);
        assert_eq!(judgement.degraded, Some(DegradedReason::ModelError));
        assert_eq!(judgement.action, None);
    }
}
