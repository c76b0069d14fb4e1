//! The engine's model set: the fraud and churn artifacts named by configuration, loaded and
//! checked against the features this engine computes before any event is scored.

use std::path::Path;

use vigil_models::{Model, ModelArtifact, ModelKind};

use crate::config::ModelsConfig;
use crate::features::{CHURN_FEATURES, FRAUD_FEATURES};

/// The models that score live events.
#[derive(Debug, Clone)]
pub struct ModelSet {
    pub fraud: Model,
    pub churn: Model,
}

impl ModelSet {
    pub fn load(config: &ModelsConfig) -> vigil_models::Result<ModelSet> {
        Ok(ModelSet {
            fraud: load_fraud(&config.fraud_path())?,
            churn: load_churn(&config.churn_path())?,
        })
    }
}

pub fn load_fraud(path: &Path) -> vigil_models::Result<Model> {
    ModelArtifact::load(path, ModelKind::Fraud, &FRAUD_FEATURES)
}

pub fn load_churn(path: &Path) -> vigil_models::Result<Model> {
    ModelArtifact::load(path, ModelKind::Churn, &CHURN_FEATURES)
}
