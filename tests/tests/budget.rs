//! Latency budgets per decision kind: with no time at all for fraud decisions and plenty for
//! churn ones, every payment decision is rules-only and marked degraded (a hot customer's
//! bursts still trip the card-testing rule), every outreach decision is a model decision, the
//! degraded ones are counted, and no event is lost.

use std::time::Duration;

use vigil_engine::decision::DecisionKind;
use vigil_engine::pipeline;
use vigil_scenario::{Generator, Scenario};
use vigil_tests::{fixture, read_lines, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_past_the_fraud_budget_get_counted_rules_only_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let decisions = dir.path().join("decisions.jsonl");
    let mut config = test_config();
    config.engine.latency_budget.fraud = Duration::ZERO;
    config.engine.latency_budget.churn = Duration::from_secs(60);
    // Outreach on most engagement events, so that there are churn decisions to judge.
    config.policy.churn.outreach = 0.01;
    let options = vigil_tests::run_options(
        config,
        &format!("generate:{}", fixture("hot.toml").display()),
        &format!("file:{}", decisions.display()),
        "discard",
    );
    let summary = pipeline::run(options, std::future::pending())
        .await
        .unwrap();

    let generated = Generator::new(Scenario::load(&fixture("hot.toml")).unwrap()).count() as u64;
    assert_eq!(summary.records, generated);
    assert_eq!(summary.scored + summary.dead_letters, generated);

    let published: Vec<vigil_engine::decision::Decision> = read_lines(&decisions)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (fraud, churn): (Vec<_>, Vec<_>) = published
        .iter()
        .partition(|d| d.decision != DecisionKind::Outreach);
    assert!(!fraud.is_empty() && !churn.is_empty());
    assert!(fraud
        .iter()
        .all(|d| d.degraded && d.score.is_none() && !d.rules.is_empty()));
    assert!(churn.iter().all(|d| !d.degraded && d.score.is_some()));
    assert_eq!(summary.degraded, fraud.len() as u64);
    let hot = fraud
        .iter()
        .filter(|d| d.customer_id == "c-0000000" || d.customer_id == "c-0000001")
        .count();
    assert!(
        hot * 2 > fraud.len(),
        "{hot} of {} from hot customers",
        fraud.len()
    );
}
