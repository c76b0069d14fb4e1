//! Hot swap mid-stream: the engine watches its fraud artifact. Version B, renamed over version
//! A while events flow, takes over between two events of each customer; a corrupt file written
//! over it afterwards is rejected and B keeps serving. No event is lost or scored twice, and
//! the decisions are those of a run that never swapped (A and B have the same weights).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use vigil_engine::config::Config;
use vigil_engine::outcome::Audit;
use vigil_engine::publish::RunSummary;
use vigil_models::ModelKind;
use vigil_tests::{read_lines, run_audited, test_config, write_shipped_fraud};

/// The shipped fraud model as `fraud-live@{version}`.
fn write_version(path: &Path, version: u32) {
    write_shipped_fraud(path, "fraud-live", version);
}

struct Run {
    summary: RunSummary,
    audits: Vec<Audit>,
    decisions: Vec<serde_json::Value>,
}

async fn run(config: Config, dir: &Path) -> Run {
    let decisions = dir.join("decisions.jsonl");
    let (summary, audits) = run_audited(config, "hot-swap.toml", &decisions).await;
    Run {
        summary,
        audits,
        decisions: read_lines(&decisions)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    }
}

fn config_with(fraud: &Path) -> Config {
    let mut config = test_config();
    config.models.fraud = Some(fraud.to_owned());
    config.models.watch_interval = Duration::from_millis(100);
    config
}

#[tokio::test]
async fn swap_mid_stream_then_reject_a_corrupt_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let fraud = models.join("fraud.json");
    write_version(&fraud, 1);

    let swapper = {
        let fraud = fraud.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            write_version(&fraud, 2);
            tokio::time::sleep(Duration::from_millis(1300)).await;
            std::fs::write(
                &fraud,
                "{\"name\": \"fraud-live\", \"version\": 3, \"kind\": \"fr",
            )
            .unwrap();
        })
    };
    let swapped = run(config_with(&fraud), dir.path()).await;
    swapper.await.unwrap();
    assert_eq!(swapped.summary.model_swaps, 1, "version 2 went live");
    assert_eq!(
        swapped.summary.model_rejections, 1,
        "the corrupt file was refused"
    );

    let scored: Vec<&Audit> = swapped
        .audits
        .iter()
        .filter(|a| a.kind == ModelKind::Fraud)
        .collect();
    let ids: HashSet<&str> = scored.iter().map(|a| a.event_id.as_str()).collect();
    assert_eq!(ids.len(), scored.len(), "no payment scored twice");

    // Per customer, in the order their events were scored: version 1, then only version 2.
    let mut on_v2: HashMap<&str, bool> = HashMap::new();
    let (mut v1, mut v2) = (0, 0);
    for audit in &scored {
        let model = audit.model.as_deref().expect("not degraded");
        let switched = on_v2.entry(audit.customer_id.as_str()).or_default();
        match model {
            "fraud-live@1" => {
                assert!(!*switched, "{} went back to version 1", audit.customer_id);
                v1 += 1;
            }
            "fraud-live@2" => {
                *switched = true;
                v2 += 1;
            }
            other => panic!("scored by {other}"),
        }
    }
    assert!(
        v1 > 1000 && v2 > 1000,
        "both versions served: {v1} and {v2}"
    );
    let last = scored.last().unwrap();
    assert_eq!(
        last.model.as_deref(),
        Some("fraud-live@2"),
        "version 2 kept serving"
    );
    // Every decision names the version its event was scored by.
    let version_of: HashMap<&str, &str> = scored
        .iter()
        .map(|a| (a.event_id.as_str(), a.model.as_deref().unwrap()))
        .collect();
    for d in swapped
        .decisions
        .iter()
        .filter(|d| d["decision"] != "outreach")
    {
        assert_eq!(
            d["model"].as_str(),
            Some(version_of[d["event_id"].as_str().unwrap()])
        );
    }

    // Nothing lost: the same payments scored and the same decisions as a run that never swapped.
    let steady_dir = tempfile::tempdir().unwrap();
    let steady_fraud = steady_dir.path().join("fraud.json");
    write_version(&steady_fraud, 1);
    let steady = run(config_with(&steady_fraud), steady_dir.path()).await;
    let steady_ids: HashSet<&str> = steady
        .audits
        .iter()
        .filter(|a| a.kind == ModelKind::Fraud)
        .map(|a| a.event_id.as_str())
        .collect();
    assert_eq!(ids, steady_ids);
    let decided = |run: &Run| -> HashSet<String> {
        run.decisions
            .iter()
            .map(|d| d["decision_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(decided(&swapped), decided(&steady));
    assert_eq!(swapped.summary.records, steady.summary.records);
}
