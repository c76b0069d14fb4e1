//! The model artifact: a JSON document holding a fitted linfa model beside the metadata a
//! data scientist and the engine need: name, version, kind, the ordered feature names the
//! model was trained on, the input standardisation, when it was trained and how well it did.
//!
//! Loading is strict. An artifact whose kind or feature names differ from what the engine
//! computes is rejected with an error naming the first difference, so a model can never be
//! fed features in the wrong order.

use std::fmt;
use std::path::Path;

use linfa_logistic::FittedLogisticRegression;
use serde::{Deserialize, Serialize};

use crate::bounds::{within, MAX_FOREST_NODES, MAX_LOG_ODDS, MAX_MEAN, MAX_SCALE, MIN_SCALE};
use crate::calibration::Calibration;
use crate::evaluation::AlertBudgetPoint;
use crate::gbdt::Gbdt;
use crate::tree::CompiledTree;
use crate::{Error, Evaluation, Model, Result, MAX_FEATURES};

/// What a model predicts, and so which decisions it drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Probability that a payment is fraudulent; drives freeze and alert.
    Fraud,
    /// Probability that a customer is about to leave; drives outreach.
    Churn,
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelKind::Fraud => "fraud",
            ModelKind::Churn => "churn",
        })
    }
}

/// The fitted model itself. Tagged, so artifacts of other model families can be added
/// without breaking the ones already written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum Algorithm {
    /// Binary logistic regression (linfa-logistic) over standardised features.
    LogisticRegression {
        fitted: FittedLogisticRegression<f64, bool>,
    },
    /// A decision tree (linfa-trees) over standardised features, compiled with per-node
    /// log-odds so that it scores probabilities and explains them by its decision path.
    DecisionTree { tree: CompiledTree },
    /// Gradient-boosted trees (`gbdt`) over standardised features, explained by their paths.
    GradientBoosting { trees: Gbdt },
}

impl Algorithm {
    /// The family's short name, as `vigil train --algorithm` spells it.
    pub fn family(&self) -> &'static str {
        match self {
            Algorithm::LogisticRegression { .. } => "logistic",
            Algorithm::DecisionTree { .. } => "tree",
            Algorithm::GradientBoosting { .. } => "gbdt",
        }
    }
}

/// Per-feature standardisation applied before the model: `(x - mean) / scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

/// A model as stored on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelArtifact {
    /// Short model name, e.g. `fraud-lr` or `fraud-tree`.
    pub name: String,
    /// Monotonic version; decisions cite `name@version`.
    pub version: u32,
    pub kind: ModelKind,
    /// Feature names in the exact order of the model's inputs.
    pub feature_names: Vec<String>,
    /// RFC 3339 time at which training finished.
    pub trained_at: String,
    /// Where the training data came from (the `vigil train --input` spec).
    pub training_data: String,
    /// Quality measured on the training rows and on the time-ordered holdout.
    pub training_metrics: TrainingMetrics,
    pub standardizer: Standardizer,
    pub algorithm: Algorithm,
    /// The map from the fitted model's log-odds to a probability; absent in artifacts trained
    /// before calibration, or when the calibration rows held only one class.
    #[serde(default)]
    pub calibration: Option<Calibration>,
    /// Calibrated score thresholds for alert rates on good traffic, measured on the
    /// calibration rows: what a policy's `at_alert_rate` resolves to.
    #[serde(default)]
    pub alert_budgets: Vec<AlertBudgetPoint>,
}

/// Row counts and evaluation of a training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingMetrics {
    /// Rows the model was fitted on.
    pub train_rows: usize,
    pub train_positives: usize,
    /// The training rows after those, by event time, kept out of fitting for calibration and
    /// alert budgets (and boosting's early stopping).
    #[serde(default)]
    pub calibration_rows: usize,
    #[serde(default)]
    pub calibration_positives: usize,
    pub holdout_rows: usize,
    pub holdout_positives: usize,
    pub train: Evaluation,
    pub holdout: Option<Evaluation>,
}

impl ModelArtifact {
    /// Reads an artifact and checks it against the features the engine computes.
    pub fn load(path: &Path, kind: ModelKind, expected_features: &[&str]) -> Result<Model> {
        Self::load_within(path, kind, expected_features, MAX_FOREST_NODES)
    }

    /// `load`, refusing trees and boosted models of more than `max_nodes` nodes.
    pub fn load_within(
        path: &Path,
        kind: ModelKind,
        expected_features: &[&str],
        max_nodes: usize,
    ) -> Result<Model> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())?.into_model_within(
            kind,
            expected_features,
            max_nodes,
        )
    }

    /// Parses an artifact from JSON text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|source| Error::Format {
            origin: origin.to_owned(),
            source,
        })
    }

    /// Writes the artifact as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("artifacts always serialize");
        std::fs::write(path, text + "\n").map_err(|source| Error::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// The calibrated score threshold recorded for an alert rate on good traffic, when the
    /// artifact records one for that rate.
    pub fn threshold_at(&self, alert_rate: f64) -> Option<f64> {
        // Budgets are written and read as decimals (0.0005): equal up to float noise is equal.
        let same = |rate: f64| (rate - alert_rate).abs() <= 1e-9 * rate.abs().max(alert_rate.abs());
        self.alert_budgets
            .iter()
            .find(|b| same(b.max_alert_rate))
            .and_then(|b| b.threshold)
    }

    /// `name@version`, as decisions cite it.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Validates the artifact against the engine's kind and feature order and turns it into a
    /// model ready to score.
    pub fn into_model(self, kind: ModelKind, expected_features: &[&str]) -> Result<Model> {
        self.into_model_within(kind, expected_features, MAX_FOREST_NODES)
    }

    /// `into_model`, refusing trees and boosted models of more than `max_nodes` nodes.
    pub fn into_model_within(
        self,
        kind: ModelKind,
        expected_features: &[&str],
        max_nodes: usize,
    ) -> Result<Model> {
        let origin = self.label();
        if self.kind != kind {
            return Err(Error::KindMismatch {
                origin,
                expected: kind,
                found: self.kind,
            });
        }
        check_features(&origin, &self.feature_names, expected_features)?;
        let n = self.feature_names.len();
        let inconsistent = |detail: String| Error::Inconsistent {
            origin: origin.clone(),
            detail,
        };
        if n > MAX_FEATURES {
            return Err(inconsistent(format!(
                "{n} features, more than the supported {MAX_FEATURES}"
            )));
        }
        if self.standardizer.mean.len() != n || self.standardizer.scale.len() != n {
            return Err(inconsistent(format!(
                "standardizer has {} means and {} scales for {n} features",
                self.standardizer.mean.len(),
                self.standardizer.scale.len()
            )));
        }
        if let Some(i) = self
            .standardizer
            .scale
            .iter()
            .position(|s| !(MIN_SCALE..=MAX_SCALE).contains(s))
        {
            return Err(inconsistent(format!(
                "standardizer scale of `{}` is {:e}, outside {MIN_SCALE:e}..={MAX_SCALE:e}",
                self.feature_names[i], self.standardizer.scale[i]
            )));
        }
        if let Some(i) = self
            .standardizer
            .mean
            .iter()
            .position(|&m| !within(m, MAX_MEAN))
        {
            return Err(inconsistent(format!(
                "standardizer mean of `{}` is {:e}, outside ±{MAX_MEAN:e}",
                self.feature_names[i], self.standardizer.mean[i]
            )));
        }
        let sane = |v: f64| within(v, MAX_LOG_ODDS);
        if let Some(c) = &self.calibration {
            if !(c.slope > 0.0 && sane(c.slope) && sane(c.offset)) {
                return Err(inconsistent(format!(
                    "calibration slope {} and offset {} are not a positive slope and an offset within ±{MAX_LOG_ODDS}",
                    c.slope, c.offset
                )));
            }
        }
        for budget in &self.alert_budgets {
            let rate_ok = budget.max_alert_rate > 0.0 && budget.max_alert_rate < 1.0;
            let threshold_ok = budget.threshold.is_none_or(|t| (0.0..=1.0).contains(&t));
            if !rate_ok || !threshold_ok {
                return Err(inconsistent(format!(
                    "alert budget {} has threshold {:?}: a budget is a rate in (0, 1) with a probability threshold",
                    budget.max_alert_rate, budget.threshold
                )));
            }
        }
        match &self.algorithm {
            Algorithm::LogisticRegression { fitted } => {
                if fitted.params().len() != n {
                    return Err(inconsistent(format!(
                        "model has {} weights for {n} features",
                        fitted.params().len()
                    )));
                }
                if !sane(fitted.intercept()) || fitted.params().iter().any(|&w| !sane(w)) {
                    return Err(inconsistent(format!(
                        "model has a weight or intercept outside ±{MAX_LOG_ODDS}"
                    )));
                }
            }
            Algorithm::DecisionTree { tree } => tree
                .check(n, max_nodes, MAX_LOG_ODDS)
                .map_err(inconsistent)?,
            Algorithm::GradientBoosting { trees } => trees
                .check(n, max_nodes, MAX_LOG_ODDS)
                .map_err(inconsistent)?,
        }
        Ok(Model::new(self))
    }
}

fn check_features(origin: &str, found: &[String], expected: &[&str]) -> Result<()> {
    let mismatch = |detail: String| Error::FeatureMismatch {
        origin: origin.to_owned(),
        detail,
    };
    for (i, want) in expected.iter().enumerate() {
        match found.get(i) {
            Some(have) if have == want => {}
            Some(have) => {
                return Err(mismatch(format!(
                    "feature {i} is `{have}`, the engine computes `{want}` there"
                )))
            }
            None => {
                return Err(mismatch(format!(
                    "feature `{want}` (position {i}) is missing"
                )))
            }
        }
    }
    if found.len() > expected.len() {
        return Err(mismatch(format!(
            "feature `{}` (position {}) is unknown to the engine",
            found[expected.len()],
            expected.len()
        )));
    }
    Ok(())
}
