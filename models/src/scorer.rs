//! The scoring interface: a loaded, validated model that maps one feature vector to a
//! probability and the features that pushed it up the most, for either model family.
//!
//! Scoring runs once per event on the engine's hot path, so it works on stack buffers and
//! returns a fixed-size `Score` with no heap allocation. Every family first gives log-odds
//! and per-feature contributions; the artifact's calibration then maps both, so the
//! probability is calibrated and the reasons still add up to its logit.

use std::sync::Arc;

use crate::calibration::sigmoid;
use crate::gbdt::PackedForest;
use crate::{Algorithm, ModelArtifact, ModelKind};

/// Upper bound on a model's feature count, so standardisation fits a stack buffer.
pub const MAX_FEATURES: usize = 48;

/// How many reasons a score carries.
pub const TOP_REASONS: usize = 3;

/// One feature's share of a score in log-odds: its weight times its standardised value for
/// logistic regression, its moves along the decision path for a tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reason {
    /// Index into the model's feature names.
    pub feature: usize,
    pub contribution: f64,
}

/// A model's verdict on one feature vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Probability of the positive class (fraud, churn).
    pub probability: f64,
    reasons: [Reason; TOP_REASONS],
    reason_count: usize,
}

impl Score {
    /// The features with the largest positive contributions, largest first.
    pub fn reasons(&self) -> &[Reason] {
        &self.reasons[..self.reason_count]
    }
}

/// A validated model, ready to score. Built only through [`ModelArtifact::into_model`].
#[derive(Debug, Clone)]
pub struct Model {
    artifact: ModelArtifact,
    label: Arc<str>,
    /// +1 when linfa's positive class is `true`, -1 when it is `false`. linfa-logistic calls
    /// the more frequent class positive, which in fraud and churn data is the wrong one; the
    /// sign turns its log-odds into log-odds of `true` (fraud, churn). Trees are compiled in
    /// log-odds of `true` already.
    sign: f64,
    /// Boosted trees in the form scoring walks.
    forest: Option<PackedForest>,
}

impl Model {
    pub(crate) fn new(artifact: ModelArtifact) -> Self {
        let label = artifact.label().into();
        let sign = match &artifact.algorithm {
            Algorithm::LogisticRegression { fitted } if !fitted.labels().pos.class => -1.0,
            _ => 1.0,
        };
        let forest = match &artifact.algorithm {
            Algorithm::GradientBoosting { trees } => Some(trees.packed()),
            _ => None,
        };
        Model {
            artifact,
            label,
            sign,
            forest,
        }
    }

    /// `name@version`, as decisions cite it.
    pub fn label(&self) -> Arc<str> {
        self.label.clone()
    }

    pub fn kind(&self) -> ModelKind {
        self.artifact.kind
    }

    pub fn artifact(&self) -> &ModelArtifact {
        &self.artifact
    }

    pub fn feature_name(&self, index: usize) -> &str {
        &self.artifact.feature_names[index]
    }

    /// The model's log-odds before any feature speaks (the logistic regression's bias, a
    /// tree's root log-odds, the boosted base and roots), calibrated. With the contributions,
    /// it sums to the score's logit.
    pub fn intercept(&self) -> f64 {
        let raw = match &self.artifact.algorithm {
            Algorithm::LogisticRegression { fitted } => self.sign * fitted.intercept(),
            Algorithm::DecisionTree { tree } => tree.base_log_odds(),
            Algorithm::GradientBoosting { trees } => trees.intercept(),
        };
        self.calibrated(raw)
    }

    /// Raw log-odds through the artifact's calibration, when it has one.
    fn calibrated(&self, raw: f64) -> f64 {
        self.artifact.calibration.map_or(raw, |c| c.logit(raw))
    }

    /// Each feature's contribution in log-odds, written into `out`: weight times standardised
    /// value for logistic regression, the moves along the decision paths for trees; scaled by
    /// the calibration's slope.
    pub fn contributions(&self, features: &[f64], out: &mut [f64]) {
        let n = self.artifact.feature_names.len();
        let mut standardized = [0.0; MAX_FEATURES];
        self.standardize(features, &mut standardized[..n]);
        out[..n].fill(0.0);
        self.raw_log_odds(&standardized[..n], &mut out[..n]);
        if let Some(c) = &self.artifact.calibration {
            for contribution in &mut out[..n] {
                *contribution *= c.slope;
            }
        }
    }

    /// The uncalibrated log-odds of standardised features, with each feature's share written
    /// into `contributions` (which must start at zero).
    fn raw_log_odds(&self, standardized: &[f64], contributions: &mut [f64]) -> f64 {
        match &self.artifact.algorithm {
            Algorithm::LogisticRegression { fitted } => {
                let mut log_odds = self.sign * fitted.intercept();
                for ((c, z), w) in contributions
                    .iter_mut()
                    .zip(standardized)
                    .zip(fitted.params())
                {
                    *c = self.sign * w * z;
                    log_odds += *c;
                }
                log_odds
            }
            Algorithm::DecisionTree { tree } => tree.walk(standardized, contributions),
            Algorithm::GradientBoosting { trees } => trees.walk(standardized, contributions),
        }
    }

    fn standardize(&self, features: &[f64], out: &mut [f64]) {
        let s = &self.artifact.standardizer;
        for (i, z) in out.iter_mut().enumerate() {
            *z = (features[i] - s.mean[i]) / s.scale[i];
        }
    }

    /// The score's calibrated log-odds alone, for one feature vector in the artifact's order:
    /// the same sums as [`Model::score`] in the same order, so the same bits, without crediting
    /// any feature (trees skip a write per split).
    pub fn log_odds(&self, features: &[f64]) -> f64 {
        let n = self.artifact.feature_names.len();
        let mut standardized = [0.0; MAX_FEATURES];
        self.standardize(features, &mut standardized[..n]);
        let standardized = &standardized[..n];
        let raw = match &self.forest {
            Some(forest) => forest.log_odds(standardized),
            None => {
                let mut contributions = [0.0; MAX_FEATURES];
                self.raw_log_odds(standardized, &mut contributions[..n])
            }
        };
        self.calibrated(raw)
    }

    /// The probability of the positive class alone, as [`Model::score`] gives it: what the
    /// engine needs for every event, leaving the reasons to the few that get a decision.
    pub fn probability(&self, features: &[f64]) -> f64 {
        sigmoid(self.log_odds(features))
    }

    /// Scores one feature vector, ordered as the artifact's feature names.
    ///
    /// # Panics
    /// If `features` has a different length than the model's feature names: the engine
    /// builds its vectors from the same names the artifact was checked against.
    pub fn score(&self, features: &[f64]) -> Score {
        let n = self.artifact.feature_names.len();
        assert_eq!(features.len(), n, "feature vector length");
        let mut standardized = [0.0; MAX_FEATURES];
        self.standardize(features, &mut standardized[..n]);
        let mut contributions = [0.0; MAX_FEATURES];
        let log_odds =
            self.calibrated(self.raw_log_odds(&standardized[..n], &mut contributions[..n]));
        let probability = sigmoid(log_odds);
        let (mut reasons, reason_count) = top_reasons(&contributions[..n]);
        if let Some(c) = &self.artifact.calibration {
            for reason in &mut reasons[..reason_count] {
                reason.contribution *= c.slope;
            }
        }
        Score {
            probability,
            reasons,
            reason_count,
        }
    }
}

/// The features with the largest positive contributions, largest first.
fn top_reasons(contributions: &[f64]) -> ([Reason; TOP_REASONS], usize) {
    let mut reasons = [Reason {
        feature: 0,
        contribution: 0.0,
    }; TOP_REASONS];
    let mut reason_count = 0;
    for (feature, &contribution) in contributions.iter().enumerate() {
        if contribution <= 0.0 {
            continue;
        }
        let candidate = Reason {
            feature,
            contribution,
        };
        if reason_count < TOP_REASONS {
            reasons[reason_count] = candidate;
            reason_count += 1;
        } else if contribution > reasons[TOP_REASONS - 1].contribution {
            reasons[TOP_REASONS - 1] = candidate;
        } else {
            continue;
        }
        reasons[..reason_count].sort_unstable_by(|a, b| b.contribution.total_cmp(&a.contribution));
    }
    (reasons, reason_count)
}
