//! A data scientist's loop on the Sparkov samples in `tests/fixtures/sparkov/`: train a
//! fraud model on the train sample through the Sparkov column mapping, then replay the test
//! sample through the full engine with it as champion and the shipped model as challenger.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use vigil::replay::{self, ReplayOptions};
use vigil::train::{self, TrainOptions};
use vigil_engine::scoring::features::FRAUD_FEATURES;
use vigil_models::{Family, ModelArtifact, ModelKind};
use vigil_tests::{fixture, read_lines, test_config};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn sparkov(name: &str) -> String {
    format!("file:{}", fixture(&format!("sparkov/{name}")).display())
}

fn mapping() -> Option<PathBuf> {
    Some(repo("models/mappings/sparkov.toml"))
}

#[tokio::test]
async fn train_on_sparkov_then_replay_the_test_sample_with_a_challenger() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("fraud-sparkov.json");
    let artifact = train::train(TrainOptions {
        kind: ModelKind::Fraud,
        input: sparkov("fraud_sample_train.csv"),
        out: model.clone(),
        family: Family::Gbdt {
            learning_rate: 0.1,
            max_rounds: 500,
            max_leaves: 31,
            max_depth: 8,
        },
        name: Some("fraud-sparkov".into()),
        version: None,
        holdout: 0.2,
        holdout_from: Some(1_546_473_600_000), // 2019-01-03 00:00:00 UTC
        mapping: mapping(),
        export_features: Some(dir.path().join("features.csv")),
        score_at: Vec::new(),
        horizon: None,
        labels: None,
        config: test_config(),
    })
    .await
    .unwrap();
    let metrics = &artifact.training_metrics;
    // Every one of the 5,039 rows is a labelled payment; 22 are fraud, 15 of them from the
    // 3rd of January on.
    let rows = metrics.train_rows + metrics.calibration_rows + metrics.holdout_rows;
    assert_eq!(rows, 5039);
    let positives =
        metrics.train_positives + metrics.calibration_positives + metrics.holdout_positives;
    assert_eq!(positives, 22);
    assert_eq!(metrics.holdout_positives, 15);
    let holdout = metrics.holdout.as_ref().unwrap();
    assert!(holdout.roc_auc > 0.8, "{holdout:?}");
    assert_eq!(artifact.version, 1);

    // The export is the matrix trained and evaluated on, with the model's own scores.
    let export = read_lines(&dir.path().join("features.csv"));
    let header: Vec<&str> = export[0].split(',').collect();
    assert_eq!(header[..FRAUD_FEATURES.len()], FRAUD_FEATURES);
    assert_eq!(
        header[FRAUD_FEATURES.len()..],
        ["label", "event_ts", "customer_id", "holdout", "vigil_score"]
    );
    assert_eq!(export.len() - 1, 5039);
    let loaded = ModelArtifact::load(&model, ModelKind::Fraud, &FRAUD_FEATURES).unwrap();
    let (mut held, mut positives) = (0, 0);
    for line in &export[1..] {
        let fields: Vec<&str> = line.split(',').collect();
        let n = FRAUD_FEATURES.len();
        let features: Vec<f64> = fields[..n].iter().map(|v| v.parse().unwrap()).collect();
        let score: f64 = fields[n + 4].parse().unwrap();
        assert_eq!(score, loaded.score(&features).probability);
        positives += usize::from(fields[n] == "1");
        held += usize::from(fields[n + 3] == "1");
    }
    assert_eq!((held, positives), (metrics.holdout_rows, 22));

    let report_path = dir.path().join("replay.json");
    let report = replay::replay(ReplayOptions {
        input: sparkov("fraud_sample_test.csv"),
        mapping: mapping(),
        model: model.clone(),
        challenger: Some(repo("models/artifacts/fraud.json")),
        report: report_path.clone(),
        labels: None,
        config: test_config(),
    })
    .await
    .unwrap();

    assert_eq!(
        (report.records, report.scored, report.dead_letters),
        (2145, 2145, 0)
    );
    let champion = &report.champion;
    assert_eq!(champion.model, "fraud-sparkov@1");
    let quality = champion.quality.as_ref().unwrap();
    assert_eq!((quality.evaluation.rows, quality.positives), (2145, 11));
    assert!(quality.evaluation.roc_auc > 0.8, "{quality:?}");
    assert!(quality.at_alert_budget.alert_rate <= 0.01);
    assert!(quality.at_alert_budget.recall > 0.5, "{quality:?}");
    let challenger = report.challenger.as_ref().unwrap();
    assert_eq!(challenger.model, "fraud-gbdt@1");

    // The decision files agree with the report, and the diff with the files.
    let kinds = |path: &Path| -> HashMap<String, String> {
        read_lines(path)
            .iter()
            .map(|line| {
                let d: serde_json::Value = serde_json::from_str(line).unwrap();
                (
                    d["event_id"].as_str().unwrap().to_owned(),
                    d["decision"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let decided = kinds(&report.decisions_file);
    let shadowed = kinds(report.shadow_file.as_ref().unwrap());
    assert_eq!(
        decided.len() as u64,
        champion.decisions.values().sum::<u64>()
    );
    assert_eq!(
        shadowed.len() as u64,
        challenger.decisions.values().sum::<u64>()
    );
    let changed = decided
        .keys()
        .chain(shadowed.keys())
        .collect::<std::collections::HashSet<_>>()
        .into_iter()
        .filter(|id| decided.get(*id) != shadowed.get(*id))
        .count();
    let diff = report.diff.as_ref().unwrap();
    assert_eq!(diff.events_changed, changed as u64);
    assert!(diff.auprc_delta.is_some());

    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(written["champion"]["quality"]["positives"], 11);
    assert!(
        written["champion"]["quality"]["evaluation"]["auprc"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}
