//! What a running engine shows the risk console: the decisions it publishes (and the latest
//! progress), followed through the publisher's `Following`; the models and policies in force;
//! the event-time watermark; and any customer's state, asked of the router, which asks the
//! customer's actor or reads the state store. The console holds a `Lookout` before the run
//! starts; the run fills it in as its parts start.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use ractor::rpc::CallResult;
use ractor::ActorRef;
use serde::Serialize;

use super::watermark::NO_WATERMARK;
use crate::actors::router::RouterMsg;
use crate::decision::DecisionKind;
use crate::event::Offsets;
use crate::profile::Profile;
use crate::publish::Following;
use crate::scoring::{CustomerView, Scoring};

/// A running engine, as the console sees it.
pub struct Lookout {
    pub following: Arc<Following>,
    running: OnceLock<Running>,
    /// The event-time watermark, ms; `NO_WATERMARK` before the first event.
    watermark: AtomicI64,
}

struct Running {
    scoring: Arc<Scoring>,
    router: ActorRef<RouterMsg>,
    actors: Arc<AtomicU64>,
}

/// Why a customer could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("the engine is not running yet")]
    NotRunning,
    #[error("the engine did not answer: {0}")]
    Unanswered(String),
}

/// The engine's state for the console's status strip.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Whether the run has started.
    pub running: bool,
    /// `name@version` of the policy in force, and of the candidate in shadow.
    pub policy: Option<String>,
    pub candidate_policy: Option<String>,
    pub models: Vec<ModelInForce>,
    /// Records published (scored or dead-lettered) since the run started.
    pub records: u64,
    /// Over the last second.
    pub events_per_second: f64,
    /// Ingest to publication, over the last second, when records were published in it.
    pub latency_ms: Option<Percentiles>,
    /// Records waiting upstream and in flight.
    pub lag_records: u64,
    /// The event-time watermark, ms since the epoch.
    pub watermark_ts: Option<i64>,
    pub decisions: BTreeMap<&'static str, u64>,
    pub dead_letters: u64,
    pub actors_active: u64,
    /// Per partition, the offset below which everything is published.
    pub resume: Offsets,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelInForce {
    pub kind: String,
    pub role: &'static str,
    pub model: String,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
}

impl Lookout {
    /// A lookout whose followers may fall up to `backlog` decisions behind.
    pub fn new(backlog: usize) -> Arc<Lookout> {
        Arc::new(Lookout {
            following: Arc::new(Following::new(backlog)),
            running: OnceLock::new(),
            watermark: AtomicI64::new(NO_WATERMARK),
        })
    }

    pub(super) fn started(
        &self,
        scoring: Arc<Scoring>,
        router: ActorRef<RouterMsg>,
        actors: Arc<AtomicU64>,
    ) {
        let _ = self.running.set(Running {
            scoring,
            router,
            actors,
        });
    }

    pub(super) fn watermark_at(&self, watermark_ms: i64) {
        self.watermark.store(watermark_ms, Ordering::Relaxed);
    }

    /// The engine as it stands.
    pub fn status(&self) -> Status {
        let (before, latest) = self.following.ticks();
        let events_per_second = match (&before, &latest) {
            (Some(a), Some(b)) if b.elapsed > a.elapsed => {
                (b.records - a.records) as f64 / (b.elapsed - a.elapsed).as_secs_f64()
            }
            (None, Some(b)) if !b.elapsed.is_zero() => b.records as f64 / b.elapsed.as_secs_f64(),
            _ => 0.0,
        };
        let running = self.running.get();
        let (policy, candidate_policy, models) = match running {
            None => (None, None, Vec::new()),
            Some(r) => {
                let models = r.scoring.models.current();
                let models = models
                    .roles()
                    .map(|(model, role)| ModelInForce {
                        kind: model.kind().to_string(),
                        role: role.name(),
                        model: model.label().to_string(),
                    })
                    .collect();
                let candidate = r.scoring.candidate.as_ref();
                (
                    Some(r.scoring.policy.current().label().to_string()),
                    candidate.map(|c| c.current().label().to_string()),
                    models,
                )
            }
        };
        let watermark = self.watermark.load(Ordering::Relaxed);
        Status {
            running: running.is_some(),
            policy,
            candidate_policy,
            models,
            records: latest.as_ref().map_or(0, |t| t.records),
            events_per_second,
            latency_ms: latest
                .as_ref()
                .and_then(|t| t.latency_us)
                .map(|l| Percentiles {
                    p50: l.p50 as f64 / 1e3,
                    p99: l.p99 as f64 / 1e3,
                }),
            lag_records: latest.as_ref().map_or(0, |t| t.backlog + t.in_flight),
            watermark_ts: (watermark != NO_WATERMARK).then_some(watermark),
            decisions: DecisionKind::ALL
                .iter()
                .map(|&d| {
                    (
                        d.name(),
                        latest.as_ref().map_or(0, |t| t.decisions[d.index()]),
                    )
                })
                .collect(),
            dead_letters: latest.as_ref().map_or(0, |t| t.dead_letters),
            actors_active: running.map_or(0, |r| r.actors.load(Ordering::Relaxed)),
            resume: latest.map(|t| t.resume).unwrap_or_default(),
        }
    }

    /// `customer_id`'s state: asked of their actor when they have one, else read from the
    /// state store, starting their actor only when `wake`. None for a customer never seen.
    pub async fn customer(
        &self,
        customer_id: &str,
        wake: bool,
    ) -> Result<Option<CustomerView>, InspectError> {
        let running = self.running.get().ok_or(InspectError::NotRunning)?;
        match running
            .router
            .call(
                |reply| RouterMsg::Inspect {
                    customer_id: customer_id.to_owned(),
                    wake,
                    reply,
                },
                Some(std::time::Duration::from_secs(5)),
            )
            .await
        {
            Ok(CallResult::Success(view)) => Ok(view),
            Ok(CallResult::Timeout) => Err(InspectError::Unanswered("no answer in 5 s".into())),
            Ok(CallResult::SenderError) => Err(InspectError::Unanswered(
                "the customer's actor stopped before it answered".into(),
            )),
            Err(e) => Err(InspectError::Unanswered(e.to_string())),
        }
    }

    /// `customer_id`'s profile, when the run has profiles and one for them.
    pub fn profile(&self, customer_id: &str) -> Option<Profile> {
        let scoring = &self.running.get()?.scoring;
        scoring.profile_of(customer_id).get().cloned()
    }
}
