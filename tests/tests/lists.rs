//! The risk team's lists end to end on a generated scenario: every payment at a merchant on a
//! block list is frozen, naming the list, whatever its score; customers on an allow list are
//! never frozen, and their would-be freezes are alerts that name the list; no other decision
//! changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use vigil_engine::config::ListConfig;
use vigil_engine::decision::{Decision, DecisionKind};
use vigil_engine::scoring::lists::{ListAction, ListField};
use vigil_tests::{fixture, run_to_files_with, scenario_payments, test_config, Published};

/// Event id → (customer, merchant) for every payment of the scenario.
fn payments() -> BTreeMap<String, (String, String)> {
    scenario_payments("e2e.toml")
        .filter_map(|v| {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_changes_from_a_source_apply_over_the_files_and_bad_ones_are_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let payments = payments();
    let merchant = payments.values().map(|(_, m)| m.clone()).max().unwrap();
    // The block list's file is empty; the changes add two merchants, take one out again, and
    // name a list that does not exist.
    let lists = vec![list(
        dir.path(),
        "bad_merchants",
        &BTreeSet::new(),
        ListField::Merchant,
        ListAction::Block,
    )];
    let changes = dir.path().join("changes.jsonl");
    std::fs::write(
        &changes,
        format!(
            "{{\"list\":\"bad_merchants\",\"value\":\"{merchant}\"}}\n{{\"list\":\"bad_merchants\",\"value\":\"m-gone\"}}\n{{\"list\":\"bad_merchants\",\"value\":\"m-gone\",\"removed\":true}}\n{{\"list\":\"good_merchants\",\"value\":\"m-1\"}}\n"
        ),
    )
    .unwrap();
    let mut config = test_config();
    config.policy.lists = lists.into_iter().collect();
    let source = format!("generate:{}", fixture("e2e.toml").display());
    let published = vigil_tests::run_to_files_with_lists(
        config,
        &source,
        &dir.path().join("run"),
        &format!("file:{}", changes.display()),
    )
    .await;
    let at_merchant: BTreeSet<&String> = payments
        .iter()
        .filter(|(_, (_, m))| *m == merchant)
        .map(|(e, _)| e)
        .collect();
    assert!(!at_merchant.is_empty());
    let decided = by_event(&published);
    for event_id in at_merchant {
        let d = decided
            .get(event_id)
            .expect("a payment at a blocked merchant is decided");
        assert_eq!(d.decision, DecisionKind::Freeze);
        assert!(d.rules.iter().any(|r| &**r == "list:bad_merchants"));
    }
    let refused: Vec<&serde_json::Value> = published
        .dead_letters
        .iter()
        .filter(|l| l["field"] == "list")
        .collect();
    assert_eq!(refused.len(), 1, "{:?}", published.dead_letters);
    assert!(refused[0]["detail"]
        .as_str()
        .unwrap()
        .contains("`good_merchants`"));
}
