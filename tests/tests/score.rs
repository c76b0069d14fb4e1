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
