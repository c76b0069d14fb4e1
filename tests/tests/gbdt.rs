//! Gradient-boosted trees end to end: `vigil train --algorithm gbdt` on the Sparkov sample
//! writes an artifact whose reasons add up to every score's logit; a corrupt GBDT artifact is
//! refused with the reason; and a GBDT artifact hot-swapped over a logistic model mid-stream
//! takes over without losing or double-scoring an event.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil::train::{self, TrainOptions};
use vigil_engine::config::Config;
use vigil_engine::outcome::Audit;
use vigil_engine::scoring::features::FRAUD_FEATURES;
use vigil_models::{Algorithm, Family, ModelArtifact, ModelKind};
use vigil_tests::{fixture, run_audited, test_config, write_shipped_fraud};

async fn train_gbdt(out: &Path) -> ModelArtifact {
    let sparkov = fixture("sparkov/fraud_sample_train.csv");
    train::train(TrainOptions {
        kind: ModelKind::Fraud,
        input: format!("file:{}", sparkov.display()),
        out: out.to_owned(),
        family: Family::Gbdt {
            learning_rate: 0.1,
            max_rounds: 60,
            max_leaves: 15,
            max_depth: 6,
        },
        name: Some("fraud-gbdt".into()),
        version: Some(2),
        holdout: 0.2,
        holdout_from: None,
        mapping: Some(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/mappings/sparkov.toml"),
        ),
        export_features: None,
        score_at: Vec::new(),
        horizon: None,
        labels: None,
        config: test_config(),
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn gbdt_reasons_add_up_and_a_corrupt_artifact_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fraud-gbdt.json");
    let artifact = train_gbdt(&path).await;
    let Algorithm::GradientBoosting { trees } = &artifact.algorithm else {
        panic!("trained a {}", artifact.algorithm.family());
    };
    assert!(trees.rounds.kept >= 1 && trees.roots.len() == trees.rounds.kept);

    let model = ModelArtifact::load(&path, ModelKind::Fraud, &FRAUD_FEATURES).unwrap();
    let mut state = 17u64;
    for _ in 0..200 {
        let features: Vec<f64> = (0..FRAUD_FEATURES.len())
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((state >> 33) as f64 / (1u64 << 31) as f64) * 6.0 - 1.0
            })
            .collect();
        let mut contributions = vec![0.0; FRAUD_FEATURES.len()];
        model.contributions(&features, &mut contributions);
        let logit = model.intercept() + contributions.iter().sum::<f64>();
        let probability = model.score(&features).probability;
        let expected = 1.0 / (1.0 + (-logit).exp());
        assert!(
            (probability - expected).abs() < 1e-9,
            "{probability} vs {expected}"
        );
    }

    // A child pointing back at its parent would loop forever: refused, naming the node.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let left = json["algorithm"]["trees"]["left"].as_array_mut().unwrap();
    let split = left
        .iter()
        .position(|l| l.as_u64() != Some(u64::from(u32::MAX)))
        .unwrap();
    left[split] = serde_json::json!(split);
    let corrupt = dir.path().join("corrupt.json");
    std::fs::write(&corrupt, json.to_string()).unwrap();
    let err = ModelArtifact::load(&corrupt, ModelKind::Fraud, &FRAUD_FEATURES)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("node {split} has child {split}, not a later node")),
        "{err}"
    );

    // A calibration that would reverse the ranking, and a budget threshold that is not a
    // probability: refused, naming what is wrong.
    let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut json);
        std::fs::write(&corrupt, json.to_string()).unwrap();
        ModelArtifact::load(&corrupt, ModelKind::Fraud, &FRAUD_FEATURES)
            .unwrap_err()
            .to_string()
    };
    let err = refused(&|json| {
        json["calibration"] =
            serde_json::json!({"slope": -0.5, "offset": 1.0, "rows": 100, "positives": 3});
    });
    assert!(err.contains("calibration slope -0.5"), "{err}");
    let err = refused(&|json| {
        json["alert_budgets"] = serde_json::json!([{"max_alert_rate": 0.001, "threshold": 1.5,
            "recall": 0.5, "precision": 0.5, "alert_rate": 0.001}]);
    });
    assert!(
        err.contains("alert budget 0.001 has threshold Some(1.5)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_gbdt_artifact_swapped_in_mid_stream_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let candidate = dir.path().join("candidate.json");
    train_gbdt(&candidate).await;
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let fraud: PathBuf = models.join("fraud.json");
    write_shipped_fraud(&fraud, "fraud-gbdt", 1);

    let mut config: Config = test_config();
    config.models.fraud = Some(fraud.clone());
    config.models.watch_interval = Duration::from_millis(100);
    let swapper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let staging = fraud.with_extension("staging");
        std::fs::copy(&candidate, &staging).unwrap();
        std::fs::rename(staging, fraud).unwrap();
    });
    let decisions = dir.path().join("decisions.jsonl");
    let (summary, audits) = run_audited(config, "hot-swap.toml", &decisions).await;
    swapper.await.unwrap();
    assert_eq!(summary.model_swaps, 1);
    assert_eq!(summary.model_rejections, 0);

    let scored: Vec<&Audit> = audits
        .iter()
        .filter(|a| a.kind == ModelKind::Fraud)
        .collect();
    let ids: HashSet<&str> = scored.iter().map(|a| a.event_id.as_str()).collect();
    assert_eq!(ids.len(), scored.len(), "no payment scored twice");
    let by = |label: &str| {
        scored
            .iter()
            .filter(|a| a.model.as_deref() == Some(label))
            .count()
    };
    let (v1, v2) = (by("fraud-gbdt@1"), by("fraud-gbdt@2"));
    assert!(v1 > 500 && v2 > 500, "both served: {v1} and {v2}");
    assert_eq!(v1 + v2, scored.len(), "every payment scored by a model");
}
