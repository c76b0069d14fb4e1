//! A policy file swapped while the engine runs (`policy.file`): on a paced scenario whose
//! payments are all decided, a bad version is refused while the first keeps serving, then a good
//! one is swapped in. Every payment gets exactly one decision, every decision names exactly
//! one policy version (never the refused one), and each customer's decisions move from the
//! first version to the last and never back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use vigil_engine::config::{Config, Layers};
use vigil_engine::decision::{Decision, Trigger};
use vigil_engine::event::wall_clock_ms;
use vigil_engine::pipeline;
use vigil_tests::{fixture, read_lines, run_options, scenario_payments, write_policy};

/// The desk's policy file, every payment alerted, with its one rule on `feature`.
fn write_desk(path: &Path, version: u32, freeze: f64, feature: &str) {
    let rule = format!(
        "[[rules]]\nname = \"burst\"\nat_least = \"alert\"\nwhen = [{{ feature = \"{feature}\", above = 5.0 }}]"
    );
    write_policy(path, "desk", version, (freeze, 0.0), &rule);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_swapped_mid_stream_decides_every_payment_once_under_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    write_desk(&policy, 1, 0.9, "payments_1m");
    let config = Config::load(&Layers {
        set: vec![
            format!("policy.file={}", policy.display()),
            "policy.watch_interval=50ms".into(),
            "engine.latency_budget.fraud=60s".into(),
            "engine.latency_budget.churn=60s".into(),
        ],
        ..Layers::default()
    })
    .unwrap();
    // Paced over about six seconds.
    let scenario = fixture("webhook.toml");
    let decisions_file = dir.path().join("decisions.jsonl");
    let options = run_options(
        config,
        &format!("generate:{}", scenario.display()),
        &format!("file:{}", decisions_file.display()),
        "discard",
    );
    let run = tokio::spawn(pipeline::run(options, std::future::pending()));
    // Once the first version has decided something: a bad version, then a good one.
    for _ in 0..600 {
        if !read_lines(&decisions_file).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    write_desk(&policy, 2, 0.9, "payments_2m");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let renamed = wall_clock_ms();
    write_desk(&policy, 3, 0.95, "payments_1m");
    let summary = run.await.unwrap().unwrap();
    assert!(
        summary.elapsed > Duration::from_millis(3_000),
        "the swap came after the run"
    );

    let decisions: Vec<Decision> = read_lines(&decisions_file)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: BTreeSet<&str> = decisions.iter().map(|d| d.decision_id.as_str()).collect();
    assert_eq!(ids.len(), decisions.len(), "a decision published twice");
    let mut versions = BTreeMap::<&str, usize>::new();
    for d in &decisions {
        *versions
            .entry(
                d.policy
                    .as_deref()
                    .expect("every decision names its policy"),
            )
            .or_default() += 1;
    }
    assert_eq!(
        versions.keys().copied().collect::<Vec<_>>(),
        ["desk@1", "desk@3"],
        "{versions:?}"
    );
    // Every payment was alerted at least (the scenario's malformed records are none of them).
    let payments: BTreeSet<String> = scenario_payments("webhook.toml")
        .filter_map(|v| Some(v["event_id"].as_str()?.to_owned()))
        .collect();
    let decided: BTreeSet<&str> = decisions
        .iter()
        .filter(|d| d.trigger == Trigger::Event && payments.contains(&d.event_id))
        .map(|d| d.event_id.as_str())
        .collect();
    let undecided = payments
        .iter()
        .filter(|p| !decided.contains(p.as_str()))
        .count();
    let first_under_new = decisions
        .iter()
        .filter(|d| d.policy.as_deref() == Some("desk@3"))
        .map(|d| d.decided_ts)
        .min()
        .unwrap();
    eprintln!(
        "{} payments, {undecided} undecided, {} dead letters, versions {versions:?}; first decision under desk@3 {} ms after its file was renamed into place (checked every 50 ms)",
        payments.len(),
        summary.dead_letters,
        first_under_new - renamed
    );
    assert_eq!(undecided, 0, "a payment lost in the swap");
    // Per customer, in the order decided: version 1, then version 3, never back.
    let mut last = BTreeMap::<&str, &str>::new();
    for d in &decisions {
        let version = d.policy.as_deref().unwrap();
        if let Some(before) = last.insert(&d.customer_id, version) {
            assert!(
                before <= version,
                "{} went from {before} back to {version}",
                d.customer_id
            );
        }
    }
}
