//! A published decision can be audited: its score and reasons are recomputed here from the
//! model artifact's JSON alone (standardisation, weights and intercept or the trees' node
//! arrays, calibration) and the features the engine's feature code gives for the same events,
//! without going through the scorer.

use std::collections::HashMap;

use serde_json::Value;
use vigil_engine::config::{shipped_artifact, Config};
use vigil_engine::decision::{Decision, Trigger};
use vigil_engine::decode::decode;
use vigil_engine::scoring::features::{CustomerFeatures, Observation};
use vigil_scenario::{Generator, Scenario};
use vigil_tests::{fixture, run_to_files};

/// A model read straight from an artifact file: logistic regression or gradient-boosted
/// trees, with its calibration.
struct ArtifactByHand {
    names: Vec<String>,
    mean: Vec<f64>,
    scale: Vec<f64>,
    family: FamilyByHand,
    /// Slope and offset of the calibration map on the log-odds.
    calibration: (f64, f64),
    label: String,
}

enum FamilyByHand {
    Logistic {
        weights: Vec<f64>,
        intercept: f64,
    },
    Gbdt {
        base: f64,
        roots: Vec<usize>,
        feature: Vec<usize>,
        threshold: Vec<f64>,
        left: Vec<usize>,
        right: Vec<usize>,
        value: Vec<f64>,
    },
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

impl ArtifactByHand {
    fn read(file: &str) -> Self {
        let a: Value =
            serde_json::from_str(&std::fs::read_to_string(shipped_artifact(file)).unwrap())
                .unwrap();
        let algorithm = &a["algorithm"];
        let family = match algorithm["family"].as_str().unwrap() {
            "logistic_regression" => {
                let fitted = &algorithm["fitted"];
                // linfa-logistic's log-odds are of its `pos` class; flip them when that class
                // is `false`.
                let sign = if fitted["labels"]["pos"]["class"].as_bool().unwrap() {
                    1.0
                } else {
                    -1.0
                };
                FamilyByHand::Logistic {
                    weights: numbers(&fitted["params"]["data"])
                        .into_iter()
                        .map(|w| sign * w)
                        .collect(),
                    intercept: sign * fitted["intercept"].as_f64().unwrap(),
                }
            }
            "gradient_boosting" => {
                let t = &algorithm["trees"];
                FamilyByHand::Gbdt {
                    base: t["base"].as_f64().unwrap(),
                    roots: indices(&t["roots"]),
                    feature: indices(&t["feature"]),
                    threshold: numbers(&t["threshold"]),
                    left: indices(&t["left"]),
                    right: indices(&t["right"]),
                    value: numbers(&t["value"]),
                }
            }
            other => panic!("no hand scorer for {other}"),
        };
        let calibration = match &a["calibration"] {
            Value::Null => (1.0, 0.0),
            c => (c["slope"].as_f64().unwrap(), c["offset"].as_f64().unwrap()),
        };
        ArtifactByHand {
            names: a["feature_names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_owned())
                .collect(),
            mean: numbers(&a["standardizer"]["mean"]),
            scale: numbers(&a["standardizer"]["scale"]),
            family,
            calibration,
            label: format!("{}@{}", a["name"].as_str().unwrap(), a["version"]),
        }
    }

    /// Probability and every feature's contribution.
    fn explain(&self, x: &[f64]) -> (f64, Vec<(String, f64)>) {
        let z: Vec<f64> = (0..x.len())
            .map(|i| (x[i] - self.mean[i]) / self.scale[i])
            .collect();
        let mut contributions = vec![0.0; x.len()];
        let intercept = match &self.family {
            FamilyByHand::Logistic { weights, intercept } => {
                for i in 0..x.len() {
                    contributions[i] = weights[i] * z[i];
                }
                *intercept
            }
            FamilyByHand::Gbdt {
                base,
                roots,
                feature,
                threshold,
                left,
                right,
                value,
            } => {
                // Every tree starts at its root's value; each split moves the log-odds to its
                // child's value, and that move is the split feature's.
                let mut intercept = *base;
                for &root in roots {
                    intercept += value[root];
                    let mut at = root;
                    while left[at] != u32::MAX as usize {
                        let next = if z[feature[at]] <= threshold[at] {
                            left[at]
                        } else {
                            right[at]
                        };
                        contributions[feature[at]] += value[next] - value[at];
                        at = next;
                    }
                }
                intercept
            }
        };
        let (slope, offset) = self.calibration;
        let logit = slope * (intercept + contributions.iter().sum::<f64>()) + offset;
        let named = contributions
            .into_iter()
            .enumerate()
            .map(|(i, c)| (self.names[i].clone(), slope * c))
            .collect();
        (1.0 / (1.0 + (-logit).exp()), named)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_reproducible_from_the_artifact_and_the_features() {
    let dir = tempfile::tempdir().unwrap();
    let source = format!("generate:{}", fixture("e2e.toml").display());
    let published = run_to_files(&source, dir.path()).await;

    // The same events through the same feature code, outside the engine.
    let config = Config::builtin();
    let tolerance = config.engine.late_tolerance.as_millis() as i64;
    // An inactivity check's features are the churn features as of the check, of the customer
    // as they were after the activity the decision names (nothing came between).
    let mut checks: HashMap<(String, i64), Vec<&Decision>> = HashMap::new();
    for d in published
        .decisions
        .iter()
        .filter(|d| d.trigger == Trigger::Inactivity)
    {
        checks
            .entry((d.customer_id.clone(), d.event_ts))
            .or_default()
            .push(d);
    }
    let mut customers: HashMap<String, CustomerFeatures> = HashMap::new();
    let mut observed: HashMap<String, Observation> = HashMap::new();
    for record in Generator::new(Scenario::load(&fixture("e2e.toml")).unwrap()) {
        let Ok(event) = decode(&record.payload, config.engine.max_record_bytes) else {
            continue;
        };
        let features = customers
            .entry(event.customer_id.clone())
            .or_insert_with(|| CustomerFeatures::new(event.ts));
        if let Ok(observation) = features.observe(&event, tolerance) {
            observed.insert(event.event_id.clone(), observation);
        }
        let newest = features.newest_ts();
        for d in checks
            .get(&(event.customer_id.clone(), newest))
            .into_iter()
            .flatten()
        {
            let as_of = features.churn_at(d.timer_ts.unwrap());
            observed.insert(d.decision_id.clone(), Observation::Churn(as_of));
        }
    }

    let fraud = ArtifactByHand::read("fraud.json");
    let churn = ArtifactByHand::read("churn.json");
    let mut checked = 0;
    for decision in published.decisions.iter().filter(|d| d.score.is_some()) {
        let key = match decision.trigger {
            Trigger::Event => &decision.event_id,
            Trigger::Inactivity => &decision.decision_id,
        };
        let (model, x): (&ArtifactByHand, &[f64]) = match &observed[key] {
            Observation::Fraud(x) => (&fraud, x),
            Observation::Churn(x) => (&churn, x),
        };
        assert_eq!(decision.model.as_deref(), Some(model.label.as_str()));
        let (probability, mut contributions) = model.explain(x);
        assert!(
            (decision.score.unwrap() - probability).abs() < 1e-9,
            "{decision:?} vs {probability}"
        );
        contributions.retain(|(_, c)| *c > 0.0);
        contributions.sort_by(|a, b| b.1.total_cmp(&a.1));
        contributions.truncate(decision.reasons.len().max(1));
        assert_eq!(decision.reasons.len(), contributions.len().min(3));
        for (reason, (name, contribution)) in decision.reasons.iter().zip(&contributions) {
            assert_eq!(&reason.feature, name);
            assert!((reason.contribution - contribution).abs() < 1e-9);
        }
        checked += 1;
    }
    assert!(checked > 100, "only {checked} scored decisions to check");
}
