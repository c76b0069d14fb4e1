//! A policy backtest (`vigil replay --policy`) on a labelled generated scenario: the candidate
//! freezes at a lower score and adds a velocity rule. The report's rule statistics are exactly
//! what the two runs' decision files cite, its diff is exactly the events the two files decide
//! differently, and its precision and recall are shares of the labelled payments.

use std::collections::BTreeMap;
use std::path::Path;

use vigil::backtest::{backtest, BacktestOptions};
use vigil_engine::decision::Decision;
use vigil_tests::{fixture, read_lines, test_config, write_policy};

fn decisions(path: &Path) -> BTreeMap<(String, String, i64), Decision> {
    read_lines(path)
        .iter()
        .map(|l| {
            let d: Decision = serde_json::from_str(l).unwrap();
            (
                (
                    d.customer_id.clone(),
                    d.event_id.clone(),
                    d.timer_ts.unwrap_or(d.event_ts),
                ),
                d,
            )
        })
        .collect()
}

fn cited(decisions: &BTreeMap<(String, String, i64), Decision>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for d in decisions.values() {
        for rule in &d.rules {
            *counts.entry(rule.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backtest_report_matches_the_decisions_each_policy_made() {
    let dir = tempfile::tempdir().unwrap();
    let candidate = dir.path().join("candidate.toml");
    write_policy(
        &candidate,
        "candidate",
        2,
        (0.7, 0.5),
        r#"
        [[rules]]
        name = "card-testing-burst"
        at_least = "alert"
        when = [{ feature = "payments_1m", above = 5.0 }]
        [[rules]]
        name = "three-large-in-an-hour"
        at_least = "alert"
        when = [{ velocity = "count", window = "1h", amount_over = 300.0, above = 2.0 }]
        "#,
    );
    let report_path = dir.path().join("backtest.json");
    let report = backtest(BacktestOptions {
        input: format!("generate:{}", fixture("e2e.toml").display()),
        mapping: None,
        policy: candidate,
        report: report_path.clone(),
        config: test_config(),
    })
    .await
    .unwrap();
    assert_eq!(report.current.policy, "builtin@1");
    assert_eq!(report.candidate.policy, "candidate@2");
    assert!(report.labelled_payments > 1_000 && report.labelled_fraud > 10);

    let current = decisions(&report.current.decisions_file);
    let candidate = decisions(&report.candidate.decisions_file);
    for (run, files) in [(&report.current, &current), (&report.candidate, &candidate)] {
        let stats: BTreeMap<String, u64> = run
            .rules
            .iter()
            .map(|(r, s)| (r.clone(), s.fired))
            .collect();
        assert_eq!(stats, cited(files), "{}", run.policy);
        for quality in run.actions.values() {
            for share in [quality.precision, quality.recall].into_iter().flatten() {
                assert!((0.0..=1.0).contains(&share));
            }
        }
    }
    assert!(report.candidate.rules["three-large-in-an-hour"].fired > 0);
    assert!(!report.current.rules.contains_key("three-large-in-an-hour"));
    // A lower freeze threshold freezes more, and catches at least as much.
    let freeze = |run: &vigil::backtest::PolicyRun| run.actions["freeze"].decided;
    assert!(freeze(&report.candidate) > freeze(&report.current));

    let mut changed = 0;
    for key in current
        .keys()
        .chain(candidate.keys().filter(|k| !current.contains_key(*k)))
    {
        let kind = |files: &BTreeMap<_, Decision>| files.get(key).map(|d| d.decision);
        changed += u64::from(kind(&current) != kind(&candidate));
    }
    assert_eq!(report.diff.events_changed, changed);
    assert_eq!(report.diff.transitions.values().sum::<u64>(), changed);
    assert!(report_path.exists());
}
