//! Graceful shutdown: a run stopped mid-stream publishes everything it took in, saves every
//! customer's state with the checkpoint, and a restart from that state directory carries on
//! so that the two runs together publish exactly the decisions of one uninterrupted run. A
//! drain that cannot finish (a sink that is down) gives up at the shutdown deadline with an
//! error, and its checkpoint does not pass the unpublished records.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use vigil_engine::config::Config;
use vigil_engine::pipeline::{self, Endpoints};
use vigil_engine::publish::RunSummary;
use vigil_engine::sink::{Sink, SinkRecord};
use vigil_engine::state::checkpoint::Checkpoint;
use vigil_engine::Error;
use vigil_models::Threshold;
use vigil_tests::{fixture, read_lines, test_config};

fn source() -> String {
    format!("generate:{}", fixture("passivation.toml").display())
}

/// The test configuration with an alert threshold of 0: every payment publishes a decision,
/// whatever the shipped model makes of it, so there is plenty to lose or duplicate.
fn every_payment_decided() -> Config {
    let mut config = test_config();
    config.policy.fraud.alert = Threshold::Probability(0.0);
    config
}

async fn run(
    decisions: &std::path::Path,
    state: &std::path::Path,
    stop_after: Option<Duration>,
) -> RunSummary {
    let mut options = vigil_tests::run_options(
        every_payment_decided(),
        &source(),
        &format!("file:{}", decisions.display()),
        "discard",
    );
    options.state_dir = Some(state.to_owned());
    let shutdown = async move {
        match stop_after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    pipeline::run(options, shutdown).await.unwrap()
}

fn decision_lines(path: &std::path::Path) -> Vec<String> {
    let mut lines: Vec<String> = read_lines(path)
        .iter()
        .map(|l| {
            let mut d: serde_json::Value = serde_json::from_str(l).unwrap();
            // When and how fast it was decided differ between runs; what was decided may not.
            d.as_object_mut().unwrap().remove("decided_ts");
            d.as_object_mut().unwrap().remove("latency_us");
            d.to_string()
        })
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_and_restarted_run_decides_exactly_like_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let whole = run(
        &dir.path().join("whole.jsonl"),
        &dir.path().join("whole"),
        None,
    )
    .await;

    let (decisions, state) = (dir.path().join("parts.jsonl"), dir.path().join("parts"));
    let first = run(&decisions, &state, Some(Duration::from_millis(1500))).await;
    assert!(
        first.records > 1_000 && first.records < whole.records,
        "{} of {} records before the stop",
        first.records,
        whole.records
    );
    let resume = Checkpoint::new(&state, &source()).load().unwrap();
    assert_eq!(resume.get(&0), Some(&first.records));
    let second = run(&decisions, &state, None).await;
    assert_eq!(first.records + second.records, whole.records);
    // Customers seen before the stop come back with the state the first run saved.
    assert!(
        (300..=400).contains(&second.restores),
        "{} restores",
        second.restores
    );
    assert_eq!(
        decision_lines(&decisions),
        decision_lines(&dir.path().join("whole.jsonl"))
    );
}

/// A sink whose broker never comes back.
struct Down;

#[async_trait]
impl Sink for Down {
    async fn send(&mut self, _: &[SinkRecord]) -> vigil_engine::Result<()> {
        Ok(())
    }

    async fn flush(&mut self) -> vigil_engine::Result<()> {
        Err(Error::Io {
            what: "cannot write to sink down".into(),
            cause: std::io::Error::other("broker unavailable"),
        })
    }

    fn describe(&self) -> String {
        "down".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_that_cannot_finish_gives_up_at_the_deadline_without_moving_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = every_payment_decided();
    config.engine.shutdown_deadline = Duration::from_secs(1);
    let mut options = vigil_tests::run_options(config, &source(), "discard", "discard");
    options.state_dir = Some(dir.path().to_owned());
    let endpoints = Endpoints {
        decisions: Some(Box::new(Down)),
        ..Endpoints::default()
    };
    let started = Instant::now();
    let error = pipeline::run_with(
        options,
        endpoints,
        tokio::time::sleep(Duration::from_millis(500)),
    )
    .await
    .unwrap_err()
    .to_string();
    let took = started.elapsed();
    assert!(error.contains("engine.shutdown_deadline"), "{error}");
    assert!(took < Duration::from_secs(4), "gave up after {took:?}");
    // Decisions were never delivered, so the checkpoint cannot be past the first of them.
    let resume = Checkpoint::new(dir.path(), &source()).load().unwrap();
    assert!(
        resume.get(&0).copied().unwrap_or(0) < 200,
        "checkpoint at {resume:?}"
    );
}
