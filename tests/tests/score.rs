//! `vigil score` on generated history: everyone with activity before the time is on the list,
//! quiet customers included, scored as of that time; with a horizon, the list ranks the
//! customers who then did nothing above those who carried on, and its CSV is well formed.

use vigil::score::{score, write_csv, ScoreOptions};
use vigil_engine::config::Config;
use vigil_tests::fixture;

/// 2026-06-01T00:00:00Z, the fixture's start.
const START: i64 = 1_780_272_000_000;
const DAY: i64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_churn_list_ranks_those_who_go_quiet_first() {
    let config = Config::builtin();
    let options = ScoreOptions {
        input: format!("generate:{}", fixture("churn-list.toml").display()),
        mapping: None,
        at: START + 45 * DAY,
        horizon: Some(10 * DAY),
        model: config.models.churn_path(),
        config,
    };
    let report = score(&options).await.unwrap();
    let quality = report
        .quality
        .clone()
        .expect("a horizon gives the list's quality");

    // Nearly every customer was active in the first 45 days; the third who left went quiet
    // between days 30 and 44 and are on the list all the same.
    assert!(report.customers.len() > 1_400, "{}", report.customers.len());
    assert!(report
        .customers
        .windows(2)
        .all(|w| w[0].score >= w[1].score));
    let churned = quality.churned as f64 / quality.customers as f64;
    assert!(
        (0.2..0.4).contains(&churned),
        "{churned} of the list churned within the horizon"
    );
    assert!(quality.roc_auc > 0.8, "{quality:?}");
    assert!(quality.top_tenth_precision > 2.0 * churned, "{quality:?}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("churn.csv");
    write_csv(&report, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("customer_id,score,top_reason"));
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(first[0], report.customers[0].customer_id);
    assert!(first[1].parse::<f64>().unwrap() >= 0.0);
    assert_eq!(text.lines().count(), report.customers.len() + 1);
}

/// Trained point in time (rows per customer at several score times, labelled by the horizon
/// after each), a churn model ranks the churners of a score time it never saw, and the list it
/// makes as of day 45 is as good as the shipped model's within a few points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_in_time_churn_model_ranks_churners_of_a_time_it_never_saw() {
    use vigil::train::{train, TrainOptions};
    use vigil_models::{Family, ModelKind};

    let dir = tempfile::tempdir().unwrap();
    let input = format!("generate:{}", fixture("churn-list.toml").display());
    let out = dir.path().join("churn.json");
    let artifact = train(TrainOptions {
        kind: ModelKind::Churn,
        input: input.clone(),
        out: out.clone(),
        family: Family::Gbdt {
            learning_rate: 0.1,
            max_rounds: 200,
            max_leaves: 15,
            max_depth: 4,
        },
        name: None,
        version: Some(1),
        holdout: 0.2,
        holdout_from: Some(START + 40 * DAY),
        mapping: None,
        export_features: None,
        score_at: [25, 30, 35, 40].map(|d| START + d * DAY).to_vec(),
        horizon: Some(10 * DAY),
        labels: None,
        config: Config::builtin(),
    })
    .await
    .unwrap();
    let holdout = artifact.training_metrics.holdout.clone().unwrap();
    // The held-out rows are everyone active before day 40, one row each.
    assert!(holdout.rows > 1_000, "{holdout:?}");
    assert!(holdout.roc_auc > 0.75, "{holdout:?}");

    let list = |model| {
        let input = input.clone();
        async move {
            let config = Config::builtin();
            let options = ScoreOptions {
                input,
                mapping: None,
                at: START + 45 * DAY,
                horizon: Some(10 * DAY),
                model,
                config,
            };
            score(&options).await.unwrap().quality.unwrap()
        }
    };
    let trained = list(out).await;
    let shipped = list(Config::builtin().models.churn_path()).await;
    assert!(trained.roc_auc > 0.8, "{trained:?}");
    assert!(
        trained.roc_auc > shipped.roc_auc - 0.05,
        "{trained:?} vs {shipped:?}"
    );
}
