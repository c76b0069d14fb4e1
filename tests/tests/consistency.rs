//! Online/offline consistency: the features `vigil train` computes for an event equal, bit for
//! bit, the features the live customer actor computed for the same event. Live here is the
//! full pipeline (router, actors, passivation through the state store with a small active
//! cap); offline is `train::featurize`, the replay `vigil train` builds its matrix from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use vigil_engine::pipeline::{self, RunOptions};
use vigil_engine::train::{self, TrainOptions};
use vigil_models::{Family, ModelKind};
use vigil_tests::{fixture, test_config};

/// Event id → feature bits, for one model kind.
type Features = BTreeMap<String, Vec<u64>>;

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Both kinds' features as the live actors computed them, and how many actors passivated.
async fn live(input: &str, mapping: Option<PathBuf>) -> ([Features; 2], u64) {
    let mut config = test_config();
    config.engine.passivation.max_active = 40;
    let mut options = RunOptions::new(config, input, "discard", "discard");
    options.mapping = mapping;
    let (audits, mut rx) = mpsc::unbounded_channel();
    options.audit = Some(audits);
    let summary = pipeline::run(options, std::future::pending())
        .await
        .unwrap();
    let mut features = [Features::new(), Features::new()];
    while let Some(audit) = rx.recv().await {
        let slot = &mut features[audit.kind as usize];
        assert!(
            slot.insert(audit.event_id.clone(), bits(&audit.features))
                .is_none(),
            "{} scored twice",
            audit.event_id
        );
    }
    (features, summary.passivations)
}

async fn offline(input: &str, mapping: Option<PathBuf>, kind: ModelKind) -> Features {
    let options = TrainOptions {
        kind,
        input: input.to_owned(),
        out: PathBuf::new(),
        family: Family::Logistic { alpha: 1.0 },
        name: None,
        version: None,
        holdout: 0.2,
        holdout_from: None,
        mapping,
        config: test_config(),
    };
    let mut features = Features::new();
    train::featurize(&options, |event, values, _| {
        features.insert(event.event_id.clone(), bits(values));
    })
    .await
    .unwrap();
    features
}

fn assert_identical(kind: &str, live: &Features, offline: &Features) {
    assert!(!live.is_empty(), "no {kind} events scored");
    assert_eq!(
        live.keys().collect::<Vec<_>>(),
        offline.keys().collect::<Vec<_>>(),
        "the same {kind} events are featurized"
    );
    for (event, features) in live {
        assert_eq!(
            features, &offline[event],
            "{kind} features of {event} differ online and offline"
        );
    }
}

#[tokio::test]
async fn generated_history_fraud_and_churn_features_match_bit_for_bit() {
    let input = format!("generate:{}", fixture("consistency.toml").display());
    let ([fraud, churn], passivations) = live(&input, None).await;
    assert!(passivations > 0, "the cap should have passivated actors");
    assert_identical(
        "fraud",
        &fraud,
        &offline(&input, None, ModelKind::Fraud).await,
    );
    assert_identical(
        "churn",
        &churn,
        &offline(&input, None, ModelKind::Churn).await,
    );
}

#[tokio::test]
async fn sparkov_csv_features_match_bit_for_bit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let input = format!(
        "file:{}",
        root.join("../shared/fixtures/sparkov/fraud_sample_train.csv")
            .display()
    );
    let mapping = Some(root.join("models/mappings/sparkov.toml"));
    let ([fraud, _], _) = live(&input, mapping.clone()).await;
    assert_eq!(fraud.len(), 5039);
    assert_identical(
        "fraud",
        &fraud,
        &offline(&input, mapping, ModelKind::Fraud).await,
    );
}
