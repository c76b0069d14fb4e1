//! Calibration: turning a model's raw log-odds into probabilities that mean what they say,
//! and the score thresholds that hold chosen alert budgets on good traffic.
//!
//! Class weights make a fraud model's raw scores run high (a 1% fraud rate trained at 50 to 1
//! looks like 30%), so raw thresholds do not carry from one model to the next. Training holds
//! the last tenth of its rows (by event time) out of fitting and fits Platt scaling on them:
//! `p = σ(slope · logit + offset)` with `slope > 0`. It is monotone, so ranking and reasons
//! keep their order, and affine in the logit, so the intercept and the reasons, scaled by the
//! same map, still add up to the calibrated score's logit.
//!
//! On the same rows it records, for a grid of alert rates on good traffic, the lowest
//! calibrated score that stays within each: the policy can then ask for "freeze at 0.05% of
//! good traffic" and every new model keeps that operating point.

use serde::{Deserialize, Serialize};

use crate::evaluation::AlertBudgetPoint;

/// Alert rates on good traffic that every trained model records a threshold for.
pub const STANDARD_BUDGETS: [f64; 9] = [
    0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
];

/// The share of training rows, taken from the end, held out of fitting for calibration, alert
/// budgets and (for boosting) early stopping.
pub const CALIBRATION_FRACTION: f64 = 0.1;

/// Platt scaling of the raw log-odds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub slope: f64,
    pub offset: f64,
    /// The rows it was fitted on.
    pub rows: usize,
    pub positives: usize,
}

impl Calibration {
    /// Fits the map on `(raw logit, label)` pairs by Newton's method on the log-loss, with
    /// Platt's smoothed targets so a handful of positives does not give an infinite slope.
    /// `None` without both classes, or when the rows rank backwards (the slope would not be
    /// positive): there is then nothing honest to calibrate with.
    pub fn fit(scored: &[(f64, bool)]) -> Option<Calibration> {
        let positives = scored.iter().filter(|(_, y)| *y).count();
        let negatives = scored.len() - positives;
        if positives == 0 || negatives == 0 {
            return None;
        }
        let high = (positives as f64 + 1.0) / (positives as f64 + 2.0);
        let low = 1.0 / (negatives as f64 + 2.0);
        let target = |y: bool| if y { high } else { low };
        let loss = |a: f64, b: f64| -> f64 {
            scored
                .iter()
                .map(|&(z, y)| {
                    let t = target(y);
                    let m = a * z + b;
                    // -[t ln σ(m) + (1-t) ln(1-σ(m))], stable for large |m|.
                    softplus(m) - t * m
                })
                .sum()
        };
        let (mut a, mut b) = (1.0, 0.0);
        let mut current = loss(a, b);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-12, 0.0, 1e-12);
            for &(z, y) in scored {
                let p = sigmoid(a * z + b);
                let d = p - target(y);
                let w = p * (1.0 - p);
                ga += d * z;
                gb += d;
                haa += w * z * z;
                hab += w * z;
                hbb += w;
            }
            if ga.abs() < 1e-9 && gb.abs() < 1e-9 {
                break;
            }
            let det = haa * hbb - hab * hab;
            let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
            // Backtracking: halve the Newton step until the loss goes down.
            let mut step = 1.0;
            let improved = loop {
                let (na, nb) = (a - step * da, b - step * db);
                let next = loss(na, nb);
                if next.is_finite() && next < current {
                    (a, b, current) = (na, nb, next);
                    break true;
                }
                step /= 2.0;
                if step < 1e-10 {
                    break false;
                }
            };
            if !improved {
                break;
            }
        }
        (a > 0.0 && a.is_finite() && b.is_finite()).then_some(Calibration {
            slope: a,
            offset: b,
            rows: scored.len(),
            positives,
        })
    }

    /// The calibrated logit of a raw one.
    pub fn logit(&self, raw: f64) -> f64 {
        self.slope * raw + self.offset
    }
}

/// Where a score starts an action: a fixed probability, or the model's own recorded threshold
/// for an alert rate on good traffic (`{ at_alert_rate = 0.0005 }` in configuration), which a
/// new model keeps as its operating point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged, expecting = "a probability, or { at_alert_rate = RATE }")]
pub enum Threshold {
    Probability(f64),
    Budget(AlertRate),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRate {
    pub at_alert_rate: f64,
}

impl Threshold {
    /// The probability at which the model in `artifact` acts; `None` when the threshold is a
    /// budget the artifact records no threshold for.
    pub fn resolve(&self, artifact: &crate::ModelArtifact) -> Option<f64> {
        match self {
            Threshold::Probability(p) => Some(*p),
            Threshold::Budget(b) => artifact.threshold_at(b.at_alert_rate),
        }
    }

    /// The alert rate this threshold asks a model to record, if it is a budget.
    pub fn budget(&self) -> Option<f64> {
        match self {
            Threshold::Probability(_) => None,
            Threshold::Budget(b) => Some(b.at_alert_rate),
        }
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Threshold::Probability(p) => write!(f, "{p}"),
            Threshold::Budget(b) => write!(f, "{{ at_alert_rate = {} }}", b.at_alert_rate),
        }
    }
}

/// The threshold for each of `budgets` on `(calibrated probability, label)` pairs.
pub fn alert_budgets(scored: &[(f64, bool)], budgets: &[f64]) -> Vec<AlertBudgetPoint> {
    if !scored.iter().any(|(_, y)| !*y) {
        return Vec::new();
    }
    budgets
        .iter()
        .map(|&rate| AlertBudgetPoint::of(scored, rate))
        .collect()
}

/// The probability of log-odds `z`: every model and calibration in the crate turns log-odds
/// into a probability with this one function, so scores agree to the bit.
pub(crate) fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn softplus(m: f64) -> f64 {
    if m > 0.0 {
        m + (-m).exp().ln_1p()
    } else {
        m.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raw logits twice as confident as the truth and shifted by +3 (as class weights do):
    /// rows with raw logit z are positive with probability σ((z - 3) / 2).
    fn overconfident(n: usize) -> Vec<(f64, bool)> {
        (0..n)
            .map(|i| {
                let z = -10.0 + 20.0 * (i as f64 / n as f64);
                let p = sigmoid((z - 3.0) / 2.0);
                // A deterministic stand-in for drawing the label with probability p.
                let u = ((i as f64 * 0.618_033_988_75) % 1.0 + 1.0) % 1.0;
                (z, u < p)
            })
            .collect()
    }

    #[test]
    fn platt_scaling_recovers_the_true_map_and_is_monotone() {
        let cal = Calibration::fit(&overconfident(20_000)).unwrap();
        assert!((cal.slope - 0.5).abs() < 0.05, "{cal:?}");
        assert!((cal.offset + 1.5).abs() < 0.15, "{cal:?}");
        let mut last = f64::NEG_INFINITY;
        for z in (-400..400).map(|i| f64::from(i) / 20.0) {
            let p = sigmoid(cal.logit(z));
            assert!(p >= last, "not monotone at {z}");
            last = p;
        }
    }

    #[test]
    fn one_class_or_backward_ranking_is_not_calibrated() {
        assert_eq!(Calibration::fit(&[(1.0, false), (2.0, false)]), None);
        let backwards: Vec<(f64, bool)> = overconfident(5_000)
            .into_iter()
            .map(|(z, y)| (-z, y))
            .collect();
        assert_eq!(Calibration::fit(&backwards), None);
    }

    #[test]
    fn budget_thresholds_hold_on_the_rows_they_were_chosen_on() {
        let scored: Vec<(f64, bool)> = overconfident(20_000)
            .into_iter()
            .map(|(z, y)| (sigmoid(z), y))
            .collect();
        let negatives = scored.iter().filter(|(_, y)| !*y).count() as f64;
        for point in alert_budgets(&scored, &STANDARD_BUDGETS) {
            let threshold = point.threshold.unwrap();
            let alerted = scored
                .iter()
                .filter(|(p, y)| !*y && *p >= threshold)
                .count();
            assert!(
                alerted as f64 / negatives <= point.max_alert_rate,
                "{point:?}"
            );
        }
    }
}
