//! Shadow scoring: a challenger scores every payment beside the champion. Its would-be
//! decisions go to the shadow output only, naming the challenger; the decision stream is
//! exactly what the champion alone publishes; and the disagreements counted are the events
//! the two decide differently.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use vigil_engine::config::Config;
use vigil_engine::pipeline;
use vigil_engine::publish::RunSummary;
use vigil_models::ModelArtifact;
use vigil_tests::{fixture, read_lines, test_config};

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

struct Outputs {
    summary: RunSummary,
    decisions: Vec<serde_json::Value>,
    shadow: Vec<serde_json::Value>,
}

async fn run(config: Config, dir: &Path) -> Outputs {
    let file = |name: &str| dir.join(name);
    let spec = |name: &str| format!("file:{}", file(name).display());
    let mut options = vigil_tests::run_options(
        config,
        &format!("generate:{}", fixture("passivation.toml").display()),
        &spec("decisions.jsonl"),
        "discard",
    );
    options.shadow = spec("shadow.jsonl");
    let summary = pipeline::run(options, std::future::pending())
        .await
        .unwrap();
    let parse = |name: &str| -> Vec<serde_json::Value> {
        read_lines(&file(name))
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    Outputs {
        summary,
        decisions: parse("decisions.jsonl"),
        shadow: parse("shadow.jsonl"),
    }
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
    let shadowed = run(config, dir.path()).await;

    let alone_dir = tempfile::tempdir().unwrap();
    let alone = run(test_config(), alone_dir.path()).await;
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
