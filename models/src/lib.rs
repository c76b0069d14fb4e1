//! Vigil's models: the scoring interface the engine calls on every event, linfa training
//! (logistic regression, decision trees and gradient-boosted trees, all explained by reason
//! codes and calibrated to probabilities), and the JSON artifact format that carries a fitted
//! model with everything needed to trust it (name, version, kind, ordered feature names,
//! training time and evaluation, calibration and alert-budget thresholds).
//!
//! This crate knows nothing about events, customers or streams: it maps an ordered feature
//! vector to a probability and per-feature reasons. The engine owns the feature code; the
//! artifact's feature names are how the two agree.

mod artifact;
mod bounds;
mod calibration;
mod evaluation;
pub mod gbdt;
mod scorer;
mod train;
mod tree;

pub use artifact::{Algorithm, ModelArtifact, ModelKind, Standardizer};
pub use calibration::{AlertRate, Calibration, Threshold, CALIBRATION_FRACTION, STANDARD_BUDGETS};
pub use evaluation::{AlertBudgetPoint, Evaluation};
pub use scorer::{Model, Reason, Score, MAX_FEATURES, TOP_REASONS};
pub use train::{train, Family, TrainingPlan, TrainingSet};
pub use tree::{CompiledTree, Node};

use std::path::PathBuf;

/// Everything that can go wrong while loading, checking or training a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read model artifact {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write model artifact {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model artifact {origin} is not valid JSON for the artifact format: {source}")]
    Format {
        origin: String,
        source: serde_json::Error,
    },
    #[error(
        "model artifact {origin} is a {found} model, but the engine expects a {expected} model"
    )]
    KindMismatch {
        origin: String,
        expected: ModelKind,
        found: ModelKind,
    },
    #[error("model artifact {origin} does not match the engine's features: {detail}")]
    FeatureMismatch { origin: String, detail: String },
    #[error("model artifact {origin} is inconsistent: {detail}")]
    Inconsistent { origin: String, detail: String },
    #[error("cannot train {kind} model: {detail}")]
    Training { kind: ModelKind, detail: String },
}

pub type Result<T> = std::result::Result<T, Error>;
