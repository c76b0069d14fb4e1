//! Scoring: what one event means for its customer. `features` folds the event into the
//! customer's rolling features; `models` holds the fraud and churn models in force (hot
//! swappable); `policy` turns a score and the hard rules into an action; `decide` runs the
//! three in order for one event, within the latency budget, and builds the `Outcome`.
//!
//! Everything here is synchronous and holds no I/O, so it can be tested and measured without
//! actors, and replay and training run exactly the code the live actors run.

mod decide;
pub mod features;
pub mod models;
pub mod policy;

pub use decide::CustomerState;

use std::sync::Arc;

use crate::config::{Config, LatencyBudget};
use crate::error::Result;
use crate::event::Event;
use crate::telemetry::{ModelLoaded, Telemetry};
use models::{LiveModels, ModelSet};
use policy::Policy;

/// Called on every event once its features are folded in, before it is scored. The engine
/// never sets one; the fault tests pass one in to make processing fail on chosen events.
pub type AfterFeatures = Arc<dyn Fn(&Event) + Send + Sync>;

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
            latency_budget: config.engine.latency_budget,
            telemetry,
            audit: false,
            after_features: None,
        })
    }

    /// Loads the configured models and policy.
    pub fn from_config(config: &Config, telemetry: Telemetry) -> Result<Scoring> {
        Scoring::new(ModelSet::load(&config.models)?, config, telemetry)
    }
}
