//! Analysts' verdicts flowing back: a feedback file as the console writes it changes the labels
//! `vigil train --labels` trains on (and so the model), and `vigil replay --labels` reports the
//! precision analysts confirmed for each fraud action.

use std::path::Path;

use vigil::replay::{self, ReplayOptions};
use vigil::train::{self, TrainOptions};
use vigil_engine::decision::{Decision, DecisionKind};
use vigil_engine::feedback::{Feedback, Verdict};
use vigil_models::{Family, ModelArtifact, ModelKind};
use vigil_tests::{fixture, read_lines, scenario_payments, test_config, write_lines};

/// A verdict on an event, as the console records it.
fn verdict(event_id: &str, customer_id: &str, decision: DecisionKind, verdict: Verdict) -> String {
    serde_json::to_string(&Feedback {
        decision_id: format!("{customer_id}/{event_id}/0/{}", decision.name()),
        event_id: event_id.to_owned(),
        customer_id: customer_id.to_owned(),
        event_ts: 0,
        decision,
        verdict,
        analyst: "ana".to_owned(),
        note: None,
        ts: 1,
    })
    .unwrap()
}

/// The scenario's labelled payments: (event id, customer id, fraud).
fn labelled_payments(scenario: &str) -> Vec<(String, String, bool)> {
    scenario_payments(scenario)
        .filter_map(|v| {
            Some((
                v["event_id"].as_str()?.to_owned(),
                v["customer_id"].as_str()?.to_owned(),
                v["label"]["fraud"].as_bool()?,
            ))
        })
        .collect()
}

async fn train_fraud(out: &Path, labels: Option<&Path>) -> ModelArtifact {
    train::train(TrainOptions {
        kind: ModelKind::Fraud,
        input: format!("generate:{}", fixture("passivation.toml").display()),
        out: out.to_owned(),
        family: Family::Logistic { alpha: 1.0 },
        name: Some("fraud-feedback".into()),
        version: Some(1),
        holdout: 0.2,
        holdout_from: None,
        mapping: None,
        export_features: None,
        score_at: Vec::new(),
        horizon: None,
        labels: labels.map(Path::to_owned),
        config: test_config(),
    })
    .await
    .unwrap()
}

fn positives(artifact: &ModelArtifact) -> usize {
    let m = &artifact.training_metrics;
    m.train_positives + m.calibration_positives + m.holdout_positives
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_change_the_labels_and_so_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let payments = labelled_payments("passivation.toml");
    let frauds: Vec<_> = payments.iter().filter(|p| p.2).take(40).collect();
    let goods: Vec<_> = payments
        .iter()
        .filter(|p| !p.2)
        .step_by(50)
        .take(120)
        .collect();
    assert_eq!((frauds.len(), goods.len()), (40, 120));
    // Analysts found 40 fraud labels wrong and 120 good payments to be fraud; one verdict
    // agrees with its label, and one is about an event the history does not have.
    let mut lines: Vec<String> = frauds
        .iter()
        .map(|(e, c, _)| verdict(e, c, DecisionKind::Freeze, Verdict::FalsePositive))
        .chain(
            goods
                .iter()
                .map(|(e, c, _)| verdict(e, c, DecisionKind::Alert, Verdict::ConfirmedFraud)),
        )
        .collect();
    let agreeing = payments
        .iter()
        .find(|p| p.2 && !frauds.contains(p))
        .unwrap();
    lines.push(verdict(
        &agreeing.0,
        &agreeing.1,
        DecisionKind::Freeze,
        Verdict::ConfirmedFraud,
    ));
    lines.push(verdict(
        "e-elsewhere",
        "c-elsewhere",
        DecisionKind::Freeze,
        Verdict::Released,
    ));
    let feedback = dir.path().join("feedback.jsonl");
    write_lines(&feedback, &lines);

    let plain = train_fraud(&dir.path().join("plain.json"), None).await;
    let relabelled = train_fraud(&dir.path().join("relabelled.json"), Some(&feedback)).await;
    assert_eq!(positives(&relabelled), positives(&plain) - 40 + 120);
    assert!(
        relabelled.training_data.contains("with labels from"),
        "{}",
        relabelled.training_data
    );
    let weights = |a: &ModelArtifact| serde_json::to_value(&a.algorithm).unwrap();
    assert_ne!(
        weights(&plain),
        weights(&relabelled),
        "the changed labels change the model"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reports_the_precision_analysts_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config();
    let report_path = dir.path().join("replay.json");
    let options = |labels| ReplayOptions {
        input: format!("generate:{}", fixture("e2e.toml").display()),
        mapping: None,
        model: config.models.fraud_path(),
        challenger: None,
        report: report_path.clone(),
        labels,
        config: config.clone(),
    };
    let first = replay::replay(options(None)).await.unwrap();
    assert!(first.champion.confirmed.is_none());
    let decisions: Vec<Decision> = read_lines(&first.decisions_file)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let freezes: Vec<&Decision> = decisions
        .iter()
        .filter(|d| d.decision == DecisionKind::Freeze)
        .take(10)
        .collect();
    assert_eq!(freezes.len(), 10);
    let found = [
        Verdict::ConfirmedFraud,
        Verdict::ConfirmedFraud,
        Verdict::ConfirmedFraud,
        Verdict::ConfirmedFraud,
        Verdict::ConfirmedFraud,
        Verdict::ConfirmedFraud,
        Verdict::FalsePositive,
        Verdict::FalsePositive,
        Verdict::FalsePositive,
        Verdict::Released,
    ];
    let lines: Vec<String> = freezes
        .iter()
        .zip(found)
        .map(|(d, v)| verdict(&d.event_id, &d.customer_id, d.decision, v))
        .collect();
    let feedback = dir.path().join("feedback.jsonl");
    write_lines(&feedback, &lines);

    let report = replay::replay(options(Some(feedback))).await.unwrap();
    let confirmed = report.champion.confirmed.as_ref().unwrap();
    let freeze = &confirmed["freeze"];
    assert_eq!(
        (
            freeze.reviewed,
            freeze.confirmed_fraud,
            freeze.false_positive,
            freeze.released
        ),
        (10, 6, 3, 1)
    );
    assert_eq!(freeze.decisions, first.champion.decisions["freeze"]);
    assert_eq!(freeze.confirmed_precision, Some(0.6));
    assert_eq!(confirmed["alert"].reviewed, 0);
    assert_eq!(confirmed["alert"].confirmed_precision, None);
    assert!(replay::describe(&report).contains("analysts reviewed 10 of its"));
}
