//! Passivation keeps customers' state exactly: a run that passivates most customers several
//! times (a cap of 25 live actors for 400 customers) publishes the same decisions, with the same
//! scores and reasons, as a run that never passivates. A run with a state directory checkpoints
//! every customer, passivated or not, with its offsets.

use vigil_engine::config::Config;
use vigil_engine::decision::Decision;
use vigil_engine::pipeline;
use vigil_engine::publish::RunSummary;
use vigil_engine::state::store::StateStore;
use vigil_tests::{fixture, read_lines, test_config};

async fn run(
    config: Config,
    dir: &std::path::Path,
    state_dir: Option<&std::path::Path>,
) -> (RunSummary, Vec<Decision>) {
    let decisions = dir.join("decisions.jsonl");
    let mut options = vigil_tests::run_options(
        config,
        &format!("generate:{}", fixture("passivation.toml").display()),
        &format!("file:{}", decisions.display()),
        "discard",
    );
    options.state_dir = state_dir.map(|d| d.to_owned());
    let summary = pipeline::run(options, std::future::pending())
        .await
        .unwrap();
    let mut published: Vec<Decision> = read_lines(&decisions)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    published.sort_by(|a, b| a.decision_id.cmp(&b.decision_id));
    (summary, published)
}

/// What a decision says, without when it was made.
fn substance(d: &Decision) -> (String, String, Option<u64>, Vec<(String, u64)>, bool) {
    (
        d.decision_id.clone(),
        d.customer_id.clone(),
        d.score.map(f64::to_bits),
        d.reasons
            .iter()
            .map(|r| (r.feature.clone(), r.contribution.to_bits()))
            .collect(),
        d.degraded,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passivated_customers_come_back_with_their_state_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (kept, kept_decisions) = run(test_config(), &dir.path().join("kept"), None).await;
    assert_eq!(kept.passivations, 0);

    let mut capped = test_config();
    capped.engine.passivation.max_active = 25;
    let (passivating, decisions) = run(capped, &dir.path().join("capped"), None).await;
    assert!(
        passivating.passivations >= 400 && passivating.restores >= 300,
        "{} passivations, {} restores",
        passivating.passivations,
        passivating.restores
    );
    assert_eq!(passivating.records, kept.records);
    assert!(decisions.len() > 100, "{} decisions", decisions.len());
    let a: Vec<_> = kept_decisions.iter().map(substance).collect();
    let b: Vec<_> = decisions.iter().map(substance).collect();
    assert_eq!(a, b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_a_state_directory_checkpoints_every_customer() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut config = test_config();
    config.engine.passivation.max_active = 25;
    let (first, _) = run(config.clone(), &dir.path().join("first"), Some(&state)).await;
    assert!(first.records > 24_000);
    assert!(first.checkpoints >= 1);
    let store = StateStore::open(Some(&state)).unwrap();
    assert_eq!(store.snapshot_len().unwrap(), 400);
    drop(store);
    // The checkpoint is in the store with the state: the finished source resumes at its end.
    let (second, _) = run(config, &dir.path().join("second"), Some(&state)).await;
    assert_eq!(second.records, 0);
}
