//! Velocity rules end to end: the shipped card-testing rule reads the `payments_1m` feature;
//! written instead as a velocity rule (`{ velocity = "count", window = "1m", above = 5 }`),
//! it fires on exactly the same payments of a generated scenario with card-testing bursts, so
//! a risk analyst's velocity rule counts what the engine's own windows count.

use vigil_engine::config::Config;
use vigil_tests::{fixture, run_to_files_with, test_config, Published};

async fn run(config: Config, dir: &std::path::Path) -> Published {
    let source = format!("generate:{}", fixture("e2e.toml").display());
    run_to_files_with(config, &source, dir, None).await
}

fn fired(p: &Published, rule: &str) -> Vec<(String, String)> {
    let mut fired: Vec<(String, String)> = p
        .decisions
        .iter()
        .filter(|d| d.rules.iter().any(|r| &**r == rule))
        .map(|d| (d.decision_id.clone(), format!("{:?}", d.decision)))
        .collect();
    fired.sort();
    fired
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_velocity_rule_fires_where_the_feature_rule_it_restates_does() {
    let dir = tempfile::tempdir().unwrap();
    let feature = run(test_config(), &dir.path().join("feature")).await;
    let mut config = test_config();
    let rule = config
        .policy
        .rules
        .iter_mut()
        .find(|r| r.name == "card-testing-burst")
        .expect("the shipped card-testing rule");
    rule.when = vec![serde_json::from_value(serde_json::json!({
        "velocity": "count", "window": "1m", "above": 5.0
    }))
    .unwrap()];
    let velocity = run(config, &dir.path().join("velocity")).await;
    let (by_feature, by_velocity) = (
        fired(&feature, "card-testing-burst"),
        fired(&velocity, "card-testing-burst"),
    );
    assert!(by_feature.len() > 10, "{} fired", by_feature.len());
    assert_eq!(by_feature, by_velocity);
}
