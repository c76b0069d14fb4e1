//! A candidate policy run live beside the champion (`policy.shadow`): it decides every event on
//! the champion's scores, but its decisions reach the shadow output only, each naming the
//! candidate. The decision stream is exactly what the champion alone publishes, and the
//! disagreements counted are the events the two policies decide differently.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use vigil_tests::{read_lines, run_with_shadow, test_config, write_policy, Shadowed};

async fn run(candidate: Option<&Path>, dir: &Path) -> Shadowed {
    let mut config = test_config();
    config.policy.shadow = candidate.map(Path::to_owned);
    run_with_shadow(config, "e2e.toml", dir).await
}

/// Each decision without when it was made and how long it took, which differ between runs.
fn timeless(decisions: &[serde_json::Value]) -> BTreeSet<String> {
    decisions
        .iter()
        .map(|d| {
            let mut d = d.as_object().unwrap().clone();
            d.remove("decided_ts");
            d.remove("latency_us");
            serde_json::Value::Object(d).to_string()
        })
        .collect()
}

/// Event id → decision kind, for decisions made on an event (not by an inactivity check).
fn kinds(decisions: &[serde_json::Value]) -> BTreeMap<&str, &str> {
    decisions
        .iter()
        .filter(|d| d["trigger"] == "event")
        .map(|d| {
            (
                d["event_id"].as_str().unwrap(),
                d["decision"].as_str().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_policy_decisions_reach_the_shadow_output_only() {
    let dir = tempfile::tempdir().unwrap();
    let candidate = dir.path().join("candidate.toml");
    // Stricter than the built-in policy: freezes from 0.5, alerts from 0.1, and three large
    // payments in an hour are frozen whatever the score.
    write_policy(
        &candidate,
        "strict",
        1,
        (0.5, 0.1),
        r#"
        [[rules]]
        name = "three-large-in-an-hour"
        at_least = "freeze"
        when = [{ velocity = "count", window = "1h", amount_over = 300.0, above = 2.0 }]
        "#,
    );
    let shadowed = run(Some(&candidate), dir.path()).await;
    let alone_dir = tempfile::tempdir().unwrap();
    let alone = run(None, alone_dir.path()).await;
    assert!(
        read_lines(&alone_dir.path().join("shadow.jsonl")).is_empty(),
        "nothing is shadowed without a candidate"
    );

    // The decision stream is the champion's alone.
    assert_eq!(timeless(&shadowed.decisions), timeless(&alone.decisions));
    assert!(shadowed
        .decisions
        .iter()
        .all(|d| d["policy"] == "builtin@1"));

    // The shadow output holds the candidate's decisions, and only them.
    assert_eq!(
        shadowed.shadow.len() as u64,
        shadowed.summary.policy_shadow_decisions
    );
    assert!(shadowed.shadow.iter().all(|d| d["policy"] == "strict@1"));
    let champion = kinds(&shadowed.decisions);
    let candidate = kinds(&shadowed.shadow);
    assert_eq!(candidate.len(), shadowed.shadow.len());
    let frozen = |by: &BTreeMap<&str, &str>| by.values().filter(|k| **k == "freeze").count();
    assert!(
        frozen(&candidate) > frozen(&champion),
        "the stricter candidate freezes more: {} decisions ({} freezes) against {} ({})",
        candidate.len(),
        frozen(&candidate),
        champion.len(),
        frozen(&champion)
    );
    assert!(shadowed
        .shadow
        .iter()
        .any(|d| d["rules"] == serde_json::json!(["three-large-in-an-hour"])));

    // Disagreements are exactly the events the two decided differently.
    let events: BTreeSet<&str> = champion.keys().chain(candidate.keys()).copied().collect();
    let differ = events
        .iter()
        .filter(|e| champion.get(*e) != candidate.get(*e))
        .count() as u64;
    eprintln!(
        "champion {} decisions, candidate {}, {differ} events decided differently",
        champion.len(),
        candidate.len()
    );
    assert!(differ > 0);
    assert_eq!(shadowed.summary.policy_disagreements, differ);
    assert_eq!(alone.summary.policy_disagreements, 0);
}
