//! Shadow scoring: a challenger scores every payment beside the champion. Its would-be
//! decisions go to the shadow output only, naming the challenger; the decision stream is
//! exactly what the champion alone publishes; and the disagreements counted are the events
//! the two decide differently.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use vigil_models::ModelArtifact;
use vigil_tests::{read_lines, run_with_shadow, test_config};

/// The shipped fraud model made bolder: three more log-odds of fraud on every payment.
fn bold_challenger(path: &Path) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/artifacts/fraud.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shipped).unwrap()).unwrap();
    json["name"] = "fraud-bold".into();
    json["version"] = 1.into();
    // The calibration's offset is added to every payment's log-odds.
    let offset = &mut json["calibration"]["offset"];
    *offset = (offset.as_f64().unwrap() + 3.0).into();
    std::fs::write(path, json.to_string()).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        ModelArtifact::from_json(&text, "challenger")
            .unwrap()
            .label(),
        "fraud-bold@1"
    );
}

/// Fraud decisions by event id: (decision, model, score).
fn fraud_by_event(decisions: &[serde_json::Value]) -> HashMap<String, (String, String, String)> {
    decisions
        .iter()
        .filter(|d| d["decision"] != "outreach")
        .map(|d| {
            (
                d["event_id"].as_str().unwrap().to_owned(),
                (
                    d["decision"].as_str().unwrap().to_owned(),
                    d["model"].to_string(),
                    d["score"].to_string(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn challenger_decisions_go_to_shadow_only_and_disagreements_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let challenger = dir.path().join("fraud-bold.json");
    bold_challenger(&challenger);
    let mut config = test_config();
    config.models.fraud_challenger = Some(challenger);
    let shadowed = run_with_shadow(config, "passivation.toml", dir.path()).await;

    let alone_dir = tempfile::tempdir().unwrap();
    let alone = run_with_shadow(test_config(), "passivation.toml", alone_dir.path()).await;
    assert!(read_lines(&alone_dir.path().join("shadow.jsonl")).is_empty());

    // The decision stream is the champion's alone, byte for byte in what matters.
    let champion = fraud_by_event(&shadowed.decisions);
    assert_eq!(champion, fraud_by_event(&alone.decisions));
    let ids = |ds: &[serde_json::Value]| -> HashSet<String> {
        ds.iter()
            .map(|d| d["decision_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&shadowed.decisions), ids(&alone.decisions));

    // The shadow output holds the challenger's decisions, and more of them: it is bolder.
    let shadow = fraud_by_event(&shadowed.shadow);
    assert_eq!(shadow.len() as u64, shadowed.summary.shadow_decisions);
    assert!(
        shadow.len() > champion.len(),
        "{} vs {}",
        shadow.len(),
        champion.len()
    );
    assert!(shadow
        .values()
        .all(|(_, model, _)| model == "\"fraud-bold@1\""));

    // A disagreement is an event the two decide differently (one acts and the other not, or
    // freeze against alert).
    let events: HashSet<&String> = champion.keys().chain(shadow.keys()).collect();
    let differing = events
        .into_iter()
        .filter(|e| champion.get(*e).map(|d| &d.0) != shadow.get(*e).map(|d| &d.0))
        .count() as u64;
    assert!(differing > 0);
    assert_eq!(shadowed.summary.disagreements, differing);
    assert_eq!(alone.summary.disagreements, 0);
}
