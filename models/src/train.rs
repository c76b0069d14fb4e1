//! Training: fits a linfa logistic regression, decision tree or gradient-boosted trees on a
//! feature matrix the engine built with its own feature code, standardising inputs and
//! weighting the rare positive class, and returns an artifact carrying its evaluation on the
//! training rows and a holdout.
//!
//! Building the matrix (replaying history through the feature code) is the engine's job; this
//! module starts from rows and labels.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use linfa_trees::DecisionTree;
use ndarray::{Array1, Array2, Axis};

use crate::artifact::TrainingMetrics;
use crate::bounds::MIN_SCALE;
use crate::calibration::{alert_budgets, Calibration, CALIBRATION_FRACTION};
use crate::gbdt::GbdtParams;
use crate::tree::CompiledTree;
use crate::{
    Algorithm, Error, Evaluation, ModelArtifact, ModelKind, Result, Standardizer, Threshold,
};

/// Labelled rows in feature-name order, appended one at a time.
#[derive(Debug, Clone, Default)]
pub struct TrainingSet {
    values: Vec<f64>,
    labels: Vec<bool>,
    width: usize,
}

impl TrainingSet {
    pub fn new(width: usize) -> Self {
        TrainingSet {
            width,
            ..Self::default()
        }
    }

    pub fn push(&mut self, row: &[f64], label: bool) {
        assert_eq!(row.len(), self.width, "training row width");
        self.values.extend_from_slice(row);
        self.labels.push(label);
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn positives(&self) -> usize {
        self.labels.iter().filter(|y| **y).count()
    }

    fn rows(&self) -> impl Iterator<Item = &[f64]> {
        self.values.chunks_exact(self.width)
    }

    /// `(score, label)` for the rows in `range`.
    fn scored(
        &self,
        range: std::ops::Range<usize>,
        score: impl Fn(&[f64]) -> f64,
    ) -> Vec<(f64, bool)> {
        self.rows()
            .zip(&self.labels)
            .skip(range.start)
            .take(range.len())
            .map(|(row, &label)| (score(row), label))
            .collect()
    }
}

/// What to call the model and how to fit it.
#[derive(Debug, Clone)]
pub struct TrainingPlan {
    pub name: String,
    pub version: u32,
    pub kind: ModelKind,
    pub feature_names: Vec<String>,
    /// Where the rows came from, recorded in the artifact.
    pub training_data: String,
    /// RFC 3339 time recorded as the training time.
    pub trained_at: String,
    /// Where the evaluation's operating point is measured: the policy's action threshold.
    pub threshold: Threshold,
    pub family: Family,
    /// Alert rates on good traffic to record calibrated thresholds for.
    pub alert_budgets: Vec<f64>,
}

/// Which model family to fit, with its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Family {
    /// Logistic regression with this L2 regularisation strength.
    Logistic { alpha: f64 },
    /// A decision tree at most this deep, with at least `min_leaf` (weighted) rows per leaf.
    Tree { max_depth: usize, min_leaf: f64 },
    /// Gradient-boosted trees: up to `max_rounds` trees of at most `max_leaves` leaves and
    /// `max_depth` levels, each shrunk by `learning_rate`; the last tenth of the training rows
    /// decides when to stop.
    Gbdt {
        learning_rate: f64,
        max_rounds: usize,
        max_leaves: usize,
        max_depth: usize,
    },
}

/// Upper bound on a positive row's weight relative to a negative one's.
const MAX_POSITIVE_WEIGHT: usize = 50;

/// Fits a class-weighted model of `plan.family` on `train` and evaluates it on `holdout`.
pub fn train(
    plan: TrainingPlan,
    train: &TrainingSet,
    holdout: &TrainingSet,
) -> Result<ModelArtifact> {
    let fail = |detail: String| Error::Training {
        kind: plan.kind,
        detail,
    };
    let width = plan.feature_names.len();
    if train.width != width || holdout.width != width {
        return Err(fail(format!(
            "rows have {} columns, the plan names {width} features",
            train.width
        )));
    }
    // The last tenth (by event time) is never fitted: it calibrates, sets the alert-budget
    // thresholds and, for boosting, decides when to stop.
    let tail = (train.len() as f64 * CALIBRATION_FRACTION) as usize;
    let fit_rows = train.len() - tail;
    let positives = train.labels[..fit_rows].iter().filter(|y| **y).count();
    let negatives = fit_rows - positives;
    if positives == 0 || negatives == 0 {
        return Err(fail(format!(
            "training rows need both classes, found {positives} positive and {negatives} negative \
             (the last {tail} rows are kept for calibration)"
        )));
    }

    let standardizer = fit_standardizer(train, width);
    let weight = (negatives / positives).clamp(1, MAX_POSITIVE_WEIGHT);
    let standardized: Vec<f64> = train
        .rows()
        .flat_map(|row| {
            row.iter()
                .enumerate()
                .map(|(j, v)| (v - standardizer.mean[j]) / standardizer.scale[j])
        })
        .collect();
    let algorithm = match plan.family {
        Family::Logistic { alpha } => {
            // linfa-logistic has no sample weights: repeat each positive row so both classes
            // carry comparable weight in the loss.
            let weighted_rows = negatives + positives * weight;
            let mut x = Array2::zeros((weighted_rows, width));
            let mut y = Array1::from_elem(weighted_rows, false);
            let mut r = 0;
            let fitted_rows = standardized.chunks_exact(width).take(fit_rows);
            for (row, &label) in fitted_rows.zip(&train.labels) {
                for _ in 0..if label { weight } else { 1 } {
                    x.row_mut(r).assign(&ndarray::ArrayView1::from(row));
                    y[r] = label;
                    r += 1;
                }
            }
            let fitted = LogisticRegression::default()
                .alpha(alpha)
                .max_iterations(200)
                .fit(&Dataset::new(x, y))
                .map_err(|e| fail(format!("linfa-logistic failed to fit: {e}")))?;
            Algorithm::LogisticRegression { fitted }
        }
        Family::Tree {
            max_depth,
            min_leaf,
        } => {
            let labels = &train.labels[..fit_rows];
            let weights: Vec<f64> = labels
                .iter()
                .map(|&y| if y { weight as f64 } else { 1.0 })
                .collect();
            let fitted_values = &standardized[..fit_rows * width];
            let x = Array2::from_shape_vec((fit_rows, width), fitted_values.to_vec())
                .expect("rows are width-aligned");
            let y = Array1::from(labels.to_vec());
            let dataset = Dataset::new(x, y)
                .with_weights(Array1::from_iter(weights.iter().map(|&w| w as f32)));
            let fitted = DecisionTree::params()
                .max_depth(Some(max_depth))
                .min_weight_leaf(min_leaf as f32)
                .fit(&dataset)
                .map_err(|e| fail(format!("linfa-trees failed to fit: {e}")))?;
            Algorithm::DecisionTree {
                tree: CompiledTree::compile(&fitted, fitted_values, width, labels, &weights),
            }
        }
        Family::Gbdt {
            learning_rate,
            max_rounds,
            max_leaves,
            max_depth,
        } => {
            let x = Array2::from_shape_vec((train.len(), width), standardized)
                .expect("rows are width-aligned");
            let weights = train
                .labels
                .iter()
                .map(|&y| if y { weight as f32 } else { 1.0 });
            let dataset = Dataset::new(x, Array1::from(train.labels.clone()))
                .with_weights(Array1::from_iter(weights));
            let trees = GbdtParams::default()
                .learning_rate(learning_rate)
                .max_rounds(max_rounds)
                .max_leaves(max_leaves)
                .max_depth(max_depth)
                .validation_fraction(CALIBRATION_FRACTION)
                .check()
                .map_err(|e| fail(e.to_string()))?
                .fit(&dataset)
                .map_err(|e| fail(e.to_string()))?;
            Algorithm::GradientBoosting { trees }
        }
    };

    let fitted = ModelArtifact {
        name: plan.name,
        version: plan.version,
        kind: plan.kind,
        feature_names: plan.feature_names,
        trained_at: plan.trained_at,
        training_data: plan.training_data,
        training_metrics: TrainingMetrics {
            train_rows: fit_rows,
            train_positives: positives,
            calibration_rows: tail,
            calibration_positives: train.positives() - positives,
            holdout_rows: holdout.len(),
            holdout_positives: holdout.positives(),
            train: Evaluation::of(&[], 1.0),
            holdout: None,
        },
        standardizer,
        algorithm,
        calibration: None,
        alert_budgets: Vec::new(),
    };
    let names: Vec<String> = fitted.feature_names.clone();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();

    let uncalibrated = fitted.into_model(plan.kind, &names)?;
    let tail_rows = fit_rows..train.len();
    let raw = train.scored(tail_rows.clone(), |row| uncalibrated.log_odds(row));
    let mut artifact = uncalibrated.artifact().clone();
    artifact.calibration = Calibration::fit(&raw);
    let model = artifact.into_model(plan.kind, &names)?;
    let mut artifact = model.artifact().clone();
    let mut budgets = plan.alert_budgets.clone();
    budgets.extend(plan.threshold.budget());
    budgets.sort_by(f64::total_cmp);
    budgets.dedup();
    let probability = |row: &[f64]| model.probability(row);
    artifact.alert_budgets = alert_budgets(&train.scored(tail_rows, probability), &budgets);
    // A budget too strict for the calibration rows has no threshold: nothing is flagged.
    let threshold = plan.threshold.resolve(&artifact).unwrap_or(1.0);
    let evaluate =
        |set: &TrainingSet, rows| Evaluation::of(&set.scored(rows, probability), threshold);
    artifact.training_metrics.train = evaluate(train, 0..fit_rows);
    artifact.training_metrics.holdout =
        (!holdout.is_empty()).then(|| evaluate(holdout, 0..holdout.len()));
    Ok(artifact)
}

fn fit_standardizer(train: &TrainingSet, width: usize) -> Standardizer {
    let x = Array2::from_shape_vec((train.len(), width), train.values.clone())
        .expect("rows are width-aligned");
    let mean = x.mean_axis(Axis(0)).expect("at least one row");
    let scale = x
        .std_axis(Axis(0), 0.0)
        .mapv(|s| if s >= MIN_SCALE { s } else { 1.0 });
    Standardizer {
        mean: mean.to_vec(),
        scale: scale.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> TrainingPlan {
        TrainingPlan {
            name: "test-lr".into(),
            version: 1,
            kind: ModelKind::Fraud,
            feature_names: vec!["signal".into(), "noise".into()],
            training_data: "unit test".into(),
            trained_at: "2026-11-22T00:00:00Z".into(),
            threshold: Threshold::Probability(0.5),
            family: Family::Logistic { alpha: 1.0 },
            alert_budgets: crate::STANDARD_BUDGETS.to_vec(),
        }
    }

    /// Rows where `signal` separates the classes and `noise` does not.
    fn rows(n: usize) -> TrainingSet {
        let mut set = TrainingSet::new(2);
        for i in 0..n {
            let positive = i % 10 == 0;
            let signal = if positive { 3.0 } else { 0.0 } + (i % 7) as f64 * 0.1;
            set.push(&[signal, (i % 13) as f64], positive);
        }
        set
    }

    #[test]
    fn learns_a_separable_signal_and_reports_holdout_quality() {
        let artifact = train(plan(), &rows(2000), &rows(500)).unwrap();
        let holdout = artifact.training_metrics.holdout.as_ref().unwrap();
        assert!(holdout.roc_auc > 0.99, "{holdout:?}");
        assert!(holdout.recall > 0.95, "{holdout:?}");
        // The last 200 rows, with 20 positives, are kept out of fitting for calibration.
        assert_eq!(artifact.training_metrics.train_positives, 180);
        let calibration = artifact.calibration.unwrap();
        assert_eq!((calibration.rows, calibration.positives), (200, 20));

        let model = artifact
            .into_model(ModelKind::Fraud, &["signal", "noise"])
            .unwrap();
        let high = model.score(&[3.2, 5.0]);
        assert!(high.probability > 0.9);
        assert_eq!(model.feature_name(high.reasons()[0].feature), "signal");
    }

    /// The intercept plus every feature's contribution is the score's logit, and each reason
    /// carries its feature's contribution.
    fn assert_reasons_add_up_to_the_score(model: &crate::Model, inputs: &[[f64; 2]]) {
        for x in inputs {
            let mut c = [0.0; 2];
            model.contributions(x, &mut c);
            let logit = model.intercept() + c.iter().sum::<f64>();
            let score = model.score(x);
            assert!((score.probability - 1.0 / (1.0 + (-logit).exp())).abs() < 1e-12);
            for reason in score.reasons() {
                assert_eq!(reason.contribution, c[reason.feature]);
            }
        }
    }

    #[test]
    fn budget_thresholds_hold_on_the_calibration_rows_for_every_family() {
        let set = noisy_rows(5000);
        let tail = 500;
        for family in [
            Family::Logistic { alpha: 1.0 },
            Family::Tree {
                max_depth: 4,
                min_leaf: 1.0,
            },
            Family::Gbdt {
                learning_rate: 0.1,
                max_rounds: 50,
                max_leaves: 8,
                max_depth: 4,
            },
        ] {
            let plan = TrainingPlan { family, ..plan() };
            let model = train(plan, &set, &TrainingSet::new(2))
                .unwrap()
                .into_model(ModelKind::Fraud, &["signal", "noise"])
                .unwrap();
            let calibration = model
                .artifact()
                .calibration
                .expect("both classes in the tail");
            assert_eq!(calibration.rows, tail);
            let tail_scores = set.scored(set.len() - tail..set.len(), |row| model.probability(row));
            let negatives = tail_scores.iter().filter(|(_, y)| !*y).count() as f64;
            assert_eq!(
                model.artifact().alert_budgets.len(),
                crate::STANDARD_BUDGETS.len()
            );
            for budget in &model.artifact().alert_budgets {
                let Some(threshold) = budget.threshold else {
                    continue;
                };
                assert_eq!(
                    model.artifact().threshold_at(budget.max_alert_rate),
                    Some(threshold)
                );
                let alerted = tail_scores
                    .iter()
                    .filter(|(p, y)| !*y && *p >= threshold)
                    .count();
                assert!(
                    alerted as f64 / negatives <= budget.max_alert_rate,
                    "{family:?}: {alerted} of {negatives} good rows at {budget:?}"
                );
            }
            // A calibrated model's mean probability on the calibration rows is near their
            // positive rate, whatever the class weights did to the raw scores.
            let mean = tail_scores.iter().map(|(p, _)| p).sum::<f64>() / tail as f64;
            let rate = calibration.positives as f64 / tail as f64;
            assert!(
                (mean - rate).abs() < 0.03,
                "{family:?}: mean {mean} against rate {rate}"
            );
        }
    }

    /// Rows where `signal` raises the odds of a positive without deciding it.
    fn noisy_rows(n: usize) -> TrainingSet {
        let mut set = TrainingSet::new(2);
        for i in 0..n {
            let signal = (i % 17) as f64 / 4.0;
            let u = (i as f64 * 0.618_033_988_75) % 1.0;
            let positive = u < 1.0 / (1.0 + (6.0 - signal).exp());
            set.push(&[signal, (i % 13) as f64], positive);
        }
        set
    }

    #[test]
    fn score_is_the_logistic_of_intercept_plus_contributions() {
        let model = train(plan(), &rows(1000), &TrainingSet::new(2))
            .unwrap()
            .into_model(ModelKind::Fraud, &["signal", "noise"])
            .unwrap();
        assert_reasons_add_up_to_the_score(&model, &[[0.0, 1.0], [3.1, 12.0], [1.5, 6.0]]);
    }

    fn tree_plan() -> TrainingPlan {
        TrainingPlan {
            name: "test-tree".into(),
            family: Family::Tree {
                max_depth: 4,
                min_leaf: 1.0,
            },
            ..plan()
        }
    }

    #[test]
    fn a_tree_learns_the_signal_and_its_path_reasons_add_up_to_the_score() {
        let artifact = train(tree_plan(), &rows(2000), &rows(500)).unwrap();
        let holdout = artifact.training_metrics.holdout.as_ref().unwrap();
        assert!(holdout.roc_auc > 0.99, "{holdout:?}");
        assert_eq!(artifact.algorithm.family(), "tree");
        let model = artifact
            .into_model(ModelKind::Fraud, &["signal", "noise"])
            .unwrap();
        assert_reasons_add_up_to_the_score(
            &model,
            &[[3.2, 5.0], [0.1, 12.0], [1.5, 6.0], [3.0, 0.0]],
        );
        let fraud = model.score(&[3.2, 5.0]);
        assert!(fraud.probability > 0.9, "{fraud:?}");
        assert_eq!(model.feature_name(fraud.reasons()[0].feature), "signal");
        assert!(model.score(&[0.1, 5.0]).probability < 0.1);
    }

    #[test]
    fn a_tree_artifact_round_trips_and_a_broken_one_is_refused() {
        let artifact = train(tree_plan(), &rows(1000), &TrainingSet::new(2)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree.json");
        artifact.save(&path).unwrap();
        let model = ModelArtifact::load(&path, ModelKind::Fraud, &["signal", "noise"]).unwrap();
        assert_eq!(model.score(&[3.2, 1.0]), {
            let direct = artifact
                .clone()
                .into_model(ModelKind::Fraud, &["signal", "noise"])
                .unwrap();
            direct.score(&[3.2, 1.0])
        });

        let mut broken = artifact;
        let Algorithm::DecisionTree { tree } = &mut broken.algorithm else {
            panic!("a tree")
        };
        if let crate::Node::Split { left, .. } = &mut tree.nodes[0] {
            *left = 0;
        }
        let err = broken
            .into_model(ModelKind::Fraud, &["signal", "noise"])
            .unwrap_err();
        assert!(err.to_string().contains("node 0 has child 0"), "{err}");
    }

    #[test]
    fn single_class_data_is_refused_with_counts() {
        let mut set = TrainingSet::new(2);
        set.push(&[1.0, 2.0], false);
        let err = train(plan(), &set, &TrainingSet::new(2)).unwrap_err();
        assert!(
            err.to_string().contains("0 positive and 1 negative"),
            "{err}"
        );
    }

    #[test]
    fn artifacts_round_trip_and_reject_other_feature_orders() {
        let artifact = train(plan(), &rows(500), &TrainingSet::new(2)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        artifact.save(&path).unwrap();
        let model = ModelArtifact::load(&path, ModelKind::Fraud, &["signal", "noise"]).unwrap();
        assert_eq!(&*model.label(), "test-lr@1");

        let err = ModelArtifact::load(&path, ModelKind::Fraud, &["noise", "signal"]).unwrap_err();
        assert!(err.to_string().contains("feature 0 is `signal`"), "{err}");
        let err = ModelArtifact::load(&path, ModelKind::Churn, &["signal", "noise"]).unwrap_err();
        assert!(err.to_string().contains("expects a churn model"), "{err}");
        let err = ModelArtifact::load(&path, ModelKind::Fraud, &["signal", "noise", "extra"])
            .unwrap_err();
        assert!(
            err.to_string().contains("`extra` (position 2) is missing"),
            "{err}"
        );
    }
}
