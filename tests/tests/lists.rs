//! The risk team's lists end to end on a generated scenario: every payment at a merchant on a
//! block list is frozen, naming the list, whatever its score; customers on an allow list are
//! never frozen, and their would-be freezes are alerts that name the list; no other decision
//! changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use vigil_engine::config::ListConfig;
use vigil_engine::decision::{Decision, DecisionKind};
use vigil_engine::scoring::lists::{ListAction, ListField};
use vigil_scenario::{Generator, Scenario};
use vigil_tests::{fixture, run_to_files_with, test_config, Published};

/// Event id → (customer, merchant) for every payment of the scenario.
fn payments() -> BTreeMap<String, (String, String)> {
    Generator::new(Scenario::load(&fixture("e2e.toml")).unwrap())
        .filter_map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.payload).ok()?;
            (v["kind"] == "payment").then_some(())?;
            Some((
                v["event_id"].as_str()?.to_owned(),
                (
                    v["customer_id"].as_str()?.to_owned(),
                    v["merchant"].as_str()?.to_owned(),
                ),
            ))
        })
        .collect()
}

fn list(
    dir: &Path,
    name: &str,
    values: &BTreeSet<String>,
    field: ListField,
    action: ListAction,
) -> (String, ListConfig) {
    let file = dir.join(format!("{name}.txt"));
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&file, text).unwrap();
    (
        name.to_owned(),
        ListConfig {
            file,
            field,
            action: Some(action),
        },
    )
}

async fn run(dir: &Path, lists: Vec<(String, ListConfig)>) -> Published {
    let mut config = test_config();
    config.policy.lists = lists.into_iter().collect();
    let source = format!("generate:{}", fixture("e2e.toml").display());
    std::fs::create_dir_all(dir).unwrap();
    run_to_files_with(config, &source, dir, None).await
}

fn by_event(p: &Published) -> BTreeMap<String, &Decision> {
    p.decisions
        .iter()
        .filter(|d| !d.event_id.is_empty())
        .map(|d| (d.event_id.clone(), d))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_lists_freeze_allow_lists_cap_and_nothing_else_changes() {
    let dir = tempfile::tempdir().unwrap();
    let plain = run(&dir.path().join("plain"), Vec::new()).await;
    let payments = payments();
    let frozen: BTreeSet<String> = plain
        .decisions
        .iter()
        .filter(|d| d.decision == DecisionKind::Freeze)
        .map(|d| d.customer_id.clone())
        .collect();
    assert!(frozen.len() >= 4, "{} frozen", frozen.len());
    // Five merchants blocked; half the frozen customers vetted (and none of them pays at a
    // blocked merchant, so each list's effect is seen alone).
    let blocked: BTreeSet<String> = payments
        .values()
        .map(|(_, m)| m.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .step_by(97)
        .take(5)
        .collect();
    let vetted: BTreeSet<String> = frozen
        .iter()
        .step_by(2)
        .filter(|c| {
            !payments
                .values()
                .any(|(pc, m)| pc == *c && blocked.contains(m))
        })
        .cloned()
        .collect();
    assert!(!vetted.is_empty());
    let lists = vec![
        list(
            dir.path(),
            "bad_merchants",
            &blocked,
            ListField::Merchant,
            ListAction::Block,
        ),
        list(
            dir.path(),
            "vetted",
            &vetted,
            ListField::CustomerId,
            ListAction::Allow,
        ),
    ];
    let with = run(&dir.path().join("lists"), lists).await;
    let (before, after) = (by_event(&plain), by_event(&with));

    let mut blocked_payments = 0;
    for (event_id, (customer, merchant)) in &payments {
        let was = before.get(event_id);
        let now = after.get(event_id);
        let cites = |name: &str| now.is_some_and(|d| d.rules.iter().any(|r| &**r == name));
        if blocked.contains(merchant) {
            blocked_payments += 1;
            assert_eq!(
                now.map(|d| d.decision),
                Some(DecisionKind::Freeze),
                "{event_id} at {merchant}"
            );
            assert!(cites("list:bad_merchants"));
        } else if vetted.contains(customer) {
            assert_ne!(
                now.map(|d| d.decision),
                Some(DecisionKind::Freeze),
                "{event_id}"
            );
            if was.is_some_and(|d| d.decision >= DecisionKind::Alert) {
                assert_eq!(now.map(|d| d.decision), Some(DecisionKind::Alert));
                assert!(cites("list:vetted"));
            }
        } else {
            assert_eq!(
                was.map(|d| (d.decision, &d.rules)),
                now.map(|d| (d.decision, &d.rules)),
                "{event_id}"
            );
        }
    }
    assert!(
        blocked_payments > 10,
        "{blocked_payments} payments at blocked merchants"
    );
}
