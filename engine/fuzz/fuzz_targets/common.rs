//! What the fuzz targets that score events share: the engine's scoring with the shipped
//! models and a latency budget no fuzz input can exhaust.

use std::sync::OnceLock;
use std::time::Duration;

use vigil_engine::config::{Config, LatencyBudget};
use vigil_engine::scoring::Scoring;
use vigil_engine::telemetry::Telemetry;

pub fn scoring() -> &'static Scoring {
    static SCORING: OnceLock<Scoring> = OnceLock::new();
    SCORING.get_or_init(|| {
        let mut config = Config::builtin();
        config.engine.latency_budget = LatencyBudget::uniform(Duration::from_secs(3600));
        Scoring::from_config(&config, Telemetry::new()).expect("shipped models load")
    })
}
