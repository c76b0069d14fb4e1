//! Evaluation of a binary scorer on labelled rows: ranking quality (AUPRC, ROC AUC) and the
//! operating point a risk team cares about (precision, recall and the alert rate on good
//! traffic at a threshold).

use serde::{Deserialize, Serialize};

/// Quality of probabilities against labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    pub rows: usize,
    pub positives: usize,
    /// Area under the precision-recall curve (average precision).
    pub auprc: f64,
    /// Area under the ROC curve; 0.5 is chance.
    pub roc_auc: f64,
    /// The probability at which precision, recall and alert rate below are measured.
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    /// Share of negative rows scored at or above the threshold.
    pub negative_alert_rate: f64,
}

impl Evaluation {
    /// Evaluates `(probability, label)` pairs at `threshold`.
    pub fn of(scored: &[(f64, bool)], threshold: f64) -> Evaluation {
        let rows = scored.len();
        let positives = scored.iter().filter(|(_, y)| *y).count();
        let negatives = rows - positives;
        let (mut auprc, mut roc_auc) = (0.0, 0.0);
        let (mut last_recall, mut last_fpr) = (0.0, 0.0);
        for cut in cuts(scored) {
            let recall = ratio(cut.tp, positives);
            auprc += (recall - last_recall) * ratio(cut.tp, cut.tp + cut.fp);
            let fpr = ratio(cut.fp, negatives);
            roc_auc += (fpr - last_fpr) * (recall + last_recall) / 2.0;
            (last_recall, last_fpr) = (recall, fpr);
        }

        let flagged_tp = scored.iter().filter(|(p, y)| *y && *p >= threshold).count();
        let flagged_fp = scored
            .iter()
            .filter(|(p, y)| !*y && *p >= threshold)
            .count();
        Evaluation {
            rows,
            positives,
            auprc,
            roc_auc,
            threshold,
            precision: ratio(flagged_tp, flagged_tp + flagged_fp),
            recall: ratio(flagged_tp, positives),
            negative_alert_rate: ratio(flagged_fp, negatives),
        }
    }
}

/// The operating point that catches the most positives while alerting on at most a given
/// share of negative rows: what a risk team can afford on good traffic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlertBudgetPoint {
    /// The largest share of negatives allowed to alert.
    pub max_alert_rate: f64,
    /// Lowest score that still alerts; `None` when even the top score would exceed the budget.
    pub threshold: Option<f64>,
    pub recall: f64,
    pub precision: f64,
    pub alert_rate: f64,
}

impl AlertBudgetPoint {
    /// Walks thresholds from the highest score down (tied scores together) and keeps the last
    /// one whose negative alert rate stays within `max_alert_rate`.
    pub fn of(scored: &[(f64, bool)], max_alert_rate: f64) -> AlertBudgetPoint {
        let positives = scored.iter().filter(|(_, y)| *y).count();
        let negatives = scored.len() - positives;
        let mut best = AlertBudgetPoint {
            max_alert_rate,
            threshold: None,
            recall: 0.0,
            precision: 0.0,
            alert_rate: 0.0,
        };
        for cut in cuts(scored) {
            let alert_rate = ratio(cut.fp, negatives);
            if alert_rate > max_alert_rate {
                break;
            }
            best = AlertBudgetPoint {
                max_alert_rate,
                threshold: Some(cut.score),
                recall: ratio(cut.tp, positives),
                precision: ratio(cut.tp, cut.tp + cut.fp),
                alert_rate,
            };
        }
        best
    }
}

/// Flagging every row scored at or above `score`: the positives and negatives it flags.
struct Cut {
    score: f64,
    tp: usize,
    fp: usize,
}

/// Every distinct score as a threshold, from the highest down (tied scores are one threshold).
fn cuts(scored: &[(f64, bool)]) -> Vec<Cut> {
    let mut ranked: Vec<(f64, bool)> = scored.to_vec();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut cuts: Vec<Cut> = Vec::new();
    let (mut tp, mut fp) = (0, 0);
    for (score, label) in ranked {
        if label {
            tp += 1;
        } else {
            fp += 1;
        }
        match cuts.last_mut() {
            Some(last) if last.score == score => (last.tp, last.fp) = (tp, fp),
            _ => cuts.push(Cut { score, tp, fp }),
        }
    }
    cuts
}

fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_ranking_scores_one_and_reversed_ranking_scores_zero_auc() {
        let perfect = [(0.9, true), (0.8, true), (0.2, false), (0.1, false)];
        let e = Evaluation::of(&perfect, 0.5);
        assert_eq!((e.auprc, e.roc_auc), (1.0, 1.0));
        assert_eq!(
            (e.precision, e.recall, e.negative_alert_rate),
            (1.0, 1.0, 0.0)
        );

        let reversed = [(0.1, true), (0.2, true), (0.8, false), (0.9, false)];
        assert_eq!(Evaluation::of(&reversed, 0.5).roc_auc, 0.0);
    }

    #[test]
    fn hand_computed_average_precision_and_operating_point() {
        // Ranked: +, -, +, -  → precision at each recall step: 1/1, then 2/3.
        let rows = [(0.9, true), (0.7, false), (0.6, true), (0.1, false)];
        let e = Evaluation::of(&rows, 0.65);
        assert!((e.auprc - (0.5 * 1.0 + 0.5 * (2.0 / 3.0))).abs() < 1e-12);
        assert!((e.roc_auc - 0.75).abs() < 1e-12);
        assert_eq!(e.precision, 0.5);
        assert_eq!(e.recall, 0.5);
        assert_eq!(e.negative_alert_rate, 0.5);
    }

    #[test]
    fn alert_budget_stops_before_the_negative_that_breaks_it() {
        // 100 negatives: a 1% budget allows one of them to alert.
        let mut rows: Vec<(f64, bool)> = (0..100).map(|i| (i as f64 / 1000.0, false)).collect();
        rows.extend([(0.95, true), (0.9, true), (0.5, true), (0.2, true)]);
        rows.push((0.8, false));
        rows.push((0.3, false));
        let point = AlertBudgetPoint::of(&rows, 0.01);
        // The top negatives score 0.8 and 0.3; 1% of 102 negatives lets only the first alert.
        assert_eq!(point.threshold, Some(0.5));
        assert_eq!(point.recall, 0.75);
        assert!((point.alert_rate - 1.0 / 102.0).abs() < 1e-12);
        assert_eq!(point.precision, 0.75);

        let none = AlertBudgetPoint::of(&[(0.9, false), (0.1, true)], 0.01);
        assert_eq!((none.threshold, none.recall), (None, 0.0));
    }

    #[test]
    fn tied_scores_count_as_one_threshold() {
        let rows = [(0.5, true), (0.5, false)];
        assert!((Evaluation::of(&rows, 0.5).roc_auc - 0.5).abs() < 1e-12);
    }
}
