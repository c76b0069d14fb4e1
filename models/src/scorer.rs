//! The scoring interface: a loaded, validated model that maps one feature vector to a
//! probability and the features that pushed it up the most, for either model family.
//!
//! Scoring runs once per event on the engine's hot path, so it works on a stack buffer and
//! returns a fixed-size `Score` with no heap allocation of its own beyond linfa's one-row
//! prediction.

use std::sync::Arc;

use ndarray::ArrayView2;

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
}

impl Model {
    pub(crate) fn new(artifact: ModelArtifact) -> Self {
        let label = artifact.label().into();
        let sign = match &artifact.algorithm {
            Algorithm::LogisticRegression { fitted } if !fitted.labels().pos.class => -1.0,
            _ => 1.0,
        };
        Model {
            artifact,
            label,
            sign,
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

    /// The model's log-odds before any feature speaks: the logistic regression's bias, or the
    /// tree root's log-odds. With the contributions, it sums to the score's logit.
    pub fn intercept(&self) -> f64 {
        match &self.artifact.algorithm {
            Algorithm::LogisticRegression { fitted } => self.sign * fitted.intercept(),
            Algorithm::DecisionTree { tree } => tree.base_log_odds(),
            Algorithm::GradientBoosting { trees } => trees.intercept(),
        }
    }

    /// Each feature's contribution in log-odds, written into `out`: weight times standardised
    /// value for logistic regression, the moves along the decision path for a tree.
    pub fn contributions(&self, features: &[f64], out: &mut [f64]) {
        let n = self.artifact.feature_names.len();
        let mut standardized = [0.0; MAX_FEATURES];
        self.standardize(features, &mut standardized[..n]);
        out[..n].fill(0.0);
        match &self.artifact.algorithm {
            Algorithm::LogisticRegression { fitted } => {
                for (i, (z, w)) in standardized[..n].iter().zip(fitted.params()).enumerate() {
                    out[i] = self.sign * w * z;
                }
            }
            Algorithm::DecisionTree { tree } => {
                tree.walk(&standardized[..n], out);
            }
            Algorithm::GradientBoosting { trees } => {
                trees.walk(&standardized[..n], out);
            }
        }
    }

    fn standardize(&self, features: &[f64], out: &mut [f64]) {
        let s = &self.artifact.standardizer;
        for (i, z) in out.iter_mut().enumerate() {
            *z = (features[i] - s.mean[i]) / s.scale[i];
        }
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
        let probability = match &self.artifact.algorithm {
            Algorithm::LogisticRegression { fitted } => {
                let row = ArrayView2::from_shape((1, n), &standardized[..n]).expect("one row of n");
                let linfa_probability = fitted.predict_probabilities(&row)[0];
                for (i, (z, w)) in standardized[..n].iter().zip(fitted.params()).enumerate() {
                    contributions[i] = self.sign * z * w;
                }
                if self.sign > 0.0 {
                    linfa_probability
                } else {
                    1.0 - linfa_probability
                }
            }
            Algorithm::DecisionTree { tree } => {
                let log_odds = tree.walk(&standardized[..n], &mut contributions[..n]);
                1.0 / (1.0 + (-log_odds).exp())
            }
            Algorithm::GradientBoosting { trees } => {
                let log_odds = trees.walk(&standardized[..n], &mut contributions[..n]);
                1.0 / (1.0 + (-log_odds).exp())
            }
        };
        let (reasons, reason_count) = top_reasons(&contributions[..n]);
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
