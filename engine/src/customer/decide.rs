//! One event through one customer's state: late check and rolling features, then the fraud or
//! churn model, then the policy, within the latency budget. An event that already waited past
//! the budget skips the models and gets a rules-only decision marked `degraded`, counted in
//! `vigil_budget_exceeded_total`: a budget is never missed silently.
//!
//! The event is scored by the one model set in force when it starts, so its decision names
//! exactly the model version that made it, whatever swap happens meanwhile. When a challenger
//! of the event's kind is loaded, it scores the same features and the policy is applied to its
//! score too; that would-be decision is the event's shadow, never acted on.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use vigil_models::{Model, ModelKind, Score};

use super::Inbound;
use crate::config::{Config, LatencyBudget};
use crate::dead_letter::{DeadLetter, RejectReason, Rejection};
use crate::decision::{Decision, DecisionKind, ReasonCode};
use crate::event::{Event, EventKind, SCHEMA_VERSION};
use crate::features::{CustomerFeatures, Observation};
use crate::models::{LiveModels, ModelSet};
use crate::policy::Policy;
use crate::publish::{Audit, Outcome, Shadow};
use crate::telemetry::{BudgetExceeded, ModelLoaded, Stage, Telemetry};

/// Everything shared by all customer actors: models, policy and limits.
pub struct Scoring {
    pub models: Arc<LiveModels>,
    pub policy: Policy,
    pub late_tolerance_ms: i64,
    pub latency_budget: LatencyBudget,
    pub telemetry: Telemetry,
    /// Attach an `Audit` (features, label and both scores) to every scored event, for
    /// `vigil replay`. Off in live runs: it costs an allocation per event.
    pub audit: bool,
}

impl Scoring {
    /// Scoring with `models` under `config`'s policy and limits; every model is announced in
    /// its role.
    pub fn new(models: ModelSet, config: &Config, telemetry: Telemetry) -> Scoring {
        for (model, role) in models.roles() {
            telemetry.emit(ModelLoaded {
                label: &model.label(),
                role: role.name(),
            });
        }
        Scoring {
            models: Arc::new(LiveModels::new(models)),
            policy: Policy::new(&config.policy),
            late_tolerance_ms: config.engine.late_tolerance.as_millis() as i64,
            latency_budget: config.engine.latency_budget,
            telemetry,
            audit: false,
        }
    }

    /// Loads the configured models and policy.
    pub fn from_config(config: &Config, telemetry: Telemetry) -> anyhow::Result<Scoring> {
        Ok(Scoring::new(
            ModelSet::load(&config.models)?,
            config,
            telemetry,
        ))
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

impl CustomerState {
    /// The compact form kept in the state store while the customer is passivated.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("customer state always encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<CustomerState, postcard::Error> {
        postcard::from_bytes(bytes)
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

    /// Processes one of this customer's events.
    pub fn process(&mut self, inbound: &Inbound, scoring: &Scoring) -> Outcome {
        let Inbound {
            event,
            position,
            ingested,
            raw,
        } = inbound;
        let (position, ingested) = (*position, *ingested);
        let started = Instant::now();
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
        #[cfg(feature = "fault-injection")]
        crate::fault::after_features(&event.event_id);
        let featured = Instant::now();
        scoring.telemetry.stage(Stage::Features, featured - started);

        let models = scoring.models.current();
        let policy = &scoring.policy;
        // The champion's verdict (none when degraded), the rules that fired, and the
        // challenger's verdict when one is loaded.
        let (champion, action, rules, challenger, kind) = match &observation {
            Observation::Fraud(v) => {
                let verdict = |model: &'_ Model| {
                    let score = model.score(v);
                    let fraud = policy.fraud(Some(score.probability), v);
                    (score, fraud.action, fraud.fired)
                };
                // The rules that fired go to the decision; the champion's verdict keeps none,
                // so they are not copied.
                let (champion, action, rules) = if degraded {
                    let rules_only = policy.fraud(None, v);
                    (None, rules_only.action, rules_only.fired)
                } else {
                    let (score, action, rules) = verdict(&models.fraud);
                    let champion = Verdict {
                        model: &models.fraud,
                        score,
                        action,
                        rules: Vec::new(),
                    };
                    (Some(champion), action, rules)
                };
                let challenger = models
                    .fraud_challenger
                    .as_ref()
                    .filter(|_| !degraded)
                    .map(|model| (model, verdict(model)));
                (champion, action, rules, challenger, ModelKind::Fraud)
            }
            Observation::Churn(v) if !degraded => {
                let last = self.last_outreach_ts;
                let verdict = |model: &'_ Model| {
                    let score = model.score(v);
                    let outreach = policy.outreach(score.probability, event.ts, last);
                    (
                        score,
                        outreach.then_some(DecisionKind::Outreach),
                        Vec::new(),
                    )
                };
                let (score, action, _) = verdict(&models.churn);
                if action.is_some() {
                    self.last_outreach_ts = Some(event.ts);
                }
                let challenger = models
                    .churn_challenger
                    .as_ref()
                    .map(|model| (model, verdict(model)));
                (
                    Some(Verdict {
                        model: &models.churn,
                        score,
                        action,
                        rules: Vec::new(),
                    }),
                    action,
                    Vec::new(),
                    challenger,
                    ModelKind::Churn,
                )
            }
            // Outreach is never urgent: without budget left there is nothing rules-only to say.
            Observation::Churn(_) => (None, None, Vec::new(), None, ModelKind::Churn),
        };
        let challenger = challenger.map(|(model, (score, action, rules))| Verdict {
            model,
            score,
            action,
            rules,
        });
        let decided = Instant::now();
        scoring.telemetry.stage(Stage::Score, decided - featured);

        let made = |action: Option<DecisionKind>, verdict: Option<&Verdict>, rules: &[Arc<str>]| {
            action.map(|kind| decision(event, kind, verdict, rules, degraded, ingested, decided))
        };
        let shadow = challenger.as_ref().map(|c| {
            Box::new(Shadow {
                kind,
                decision: made(c.action, Some(c), &c.rules),
                disagrees: c.action != action,
            })
        });
        let audit = scoring.audit.then(|| {
            let features = match &observation {
                Observation::Fraud(v) => v.to_vec(),
                Observation::Churn(v) => v.to_vec(),
            };
            let label = event.label.and_then(|l| match kind {
                ModelKind::Fraud => l.fraud,
                ModelKind::Churn => l.churn,
            });
            Box::new(Audit {
                event_id: event.event_id.clone(),
                customer_id: event.customer_id.clone(),
                event_ts: event.ts,
                kind,
                label,
                features,
                score: champion.as_ref().map(|v| v.score.probability),
                model: champion.as_ref().map(|v| v.model.label()),
                decision: action,
                challenger_score: challenger.as_ref().map(|v| v.score.probability),
                challenger_decision: challenger.as_ref().and_then(|v| v.action),
            })
        });
        Outcome::Scored {
            position,
            kind: event.kind.name(),
            event_ts: event.ts,
            ingested,
            decision: made(action, champion.as_ref(), &rules),
            shadow,
            audit,
        }
    }
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
        decision_id: Decision::id_for(&event.event_id, kind),
        decision: kind,
        customer_id: event.customer_id.clone(),
        event_id: event.event_id.clone(),
        event_ts: event.ts,
        decided_ts: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
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
