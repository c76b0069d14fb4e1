//! One event through one customer's state: late check and rolling features, then the fraud or
//! churn model, then the policy, within the latency budget. An event that already waited past
//! the budget skips the models and gets a rules-only decision marked `degraded`, counted in
//! `vigil_budget_exceeded_total`: a budget is never missed silently.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use vigil_models::{Model, Score};

use super::Inbound;
use crate::config::{Config, LatencyBudget};
use crate::dead_letter::{DeadLetter, RejectReason, Rejection};
use crate::decision::{Decision, DecisionKind, ReasonCode};
use crate::event::{EventKind, SCHEMA_VERSION};
use crate::features::{CustomerFeatures, Observation};
use crate::models::ModelSet;
use crate::policy::Policy;
use crate::publish::Outcome;
use crate::telemetry::{BudgetExceeded, ModelLoaded, Stage, Telemetry};

/// Everything shared by all customer actors: models, policy and limits.
pub struct Scoring {
    pub models: ModelSet,
    pub policy: Policy,
    pub late_tolerance_ms: i64,
    pub latency_budget: LatencyBudget,
    pub telemetry: Telemetry,
}

impl Scoring {
    /// Loads the configured models and policy; every model loaded is announced as champion.
    pub fn from_config(config: &Config, telemetry: Telemetry) -> vigil_models::Result<Scoring> {
        let models = ModelSet::load(&config.models)?;
        for model in [&models.fraud, &models.churn] {
            telemetry.emit(ModelLoaded {
                label: &model.label(),
                role: "champion",
            });
        }
        Ok(Scoring {
            models,
            policy: Policy::new(&config.policy),
            late_tolerance_ms: config.engine.late_tolerance.as_millis() as i64,
            latency_budget: config.engine.latency_budget,
            telemetry,
        })
    }
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

    /// Processes one of this customer's events.
    pub fn process(&mut self, inbound: Inbound, scoring: &Scoring) -> Outcome {
        let Inbound {
            event,
            position,
            ingested,
            raw,
        } = inbound;
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
        let observation = match features.observe(&event, scoring.late_tolerance_ms) {
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
                        raw,
                        position,
                    }),
                    kind: Some(event.kind.name()),
                    ingested,
                }
            }
        };
        let featured = Instant::now();
        scoring.telemetry.stage(Stage::Features, featured - started);

        let (action, scored, rules) = match &observation {
            Observation::Fraud(v) => {
                let model = &scoring.models.fraud;
                let scored = (!degraded).then(|| (model, model.score(v)));
                let verdict = scoring.policy.fraud(scored.map(|(_, s)| s.probability), v);
                (verdict.action, scored, verdict.fired)
            }
            Observation::Churn(v) if !degraded => {
                let model = &scoring.models.churn;
                let scored = (model, model.score(v));
                let outreach =
                    scoring
                        .policy
                        .outreach(scored.1.probability, event.ts, self.last_outreach_ts);
                if outreach {
                    self.last_outreach_ts = Some(event.ts);
                }
                (
                    outreach.then_some(DecisionKind::Outreach),
                    Some(scored),
                    Vec::new(),
                )
            }
            // Outreach is never urgent: without budget left there is nothing rules-only to say.
            Observation::Churn(_) => (None, None, Vec::new()),
        };
        let decided = Instant::now();
        scoring.telemetry.stage(Stage::Score, decided - featured);

        let decision = action.map(|kind| {
            let (score, model, reasons) = match scored {
                Some((model, s)) => (
                    Some(s.probability),
                    Some(model.label()),
                    reason_codes(model, &s),
                ),
                None => (None, None, Vec::new()),
            };
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
                score,
                model,
                reasons,
                rules,
                degraded,
                latency_us: (decided - ingested).as_micros() as u64,
            })
        });
        Outcome::Scored {
            position,
            kind: event.kind.name(),
            event_ts: event.ts,
            ingested,
            decision,
        }
    }
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
