//! Online/offline consistency: the features `vigil train` computes for an event equal, bit for
//! bit, the features the live customer actor computed for the same event. Live here is the
//! full pipeline (router, actors, passivation through the state store with a small active
//! cap); offline is `train::featurize`, the replay `vigil train` builds its matrix from.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use vigil_engine::pipeline;
use vigil_models::ModelKind;
use vigil_tests::{bits, fixture, offline_features, test_config, FeatureBits};

/// Both kinds' features as the live actors computed them, and how many actors passivated.
async fn live(input: &str, mapping: Option<PathBuf>) -> ([FeatureBits; 2], u64) {
    let mut config = test_config();
    config.engine.passivation.max_active = 40;
    let mut options = vigil_tests::run_options(config, input, "discard", "discard");
    options.mapping = mapping;
    let (audits, mut rx) = mpsc::unbounded_channel();
    options.audit = Some(audits);
    let summary = pipeline::run(options, std::future::pending())
        .await
        .unwrap();
    let mut features = [FeatureBits::new(), FeatureBits::new()];
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

fn assert_identical(kind: &str, live: &FeatureBits, offline: &FeatureBits) {
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
        &offline_features(&input, None, ModelKind::Fraud).await,
    );
    assert_identical(
        "churn",
        &churn,
        &offline_features(&input, None, ModelKind::Churn).await,
    );
}

#[tokio::test]
async fn sparkov_csv_features_match_bit_for_bit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let input = format!(
        "file:{}",
        fixture("sparkov/fraud_sample_train.csv").display()
    );
    let mapping = Some(root.join("models/mappings/sparkov.toml"));
    let ([fraud, _], _) = live(&input, mapping.clone()).await;
    assert_eq!(fraud.len(), 5039);
    assert_identical(
        "fraud",
        &fraud,
        &offline_features(&input, mapping, ModelKind::Fraud).await,
    );
}
