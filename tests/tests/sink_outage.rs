//! A decision sink that is down for a while loses nothing: the publisher retries with backoff
//! while the in-flight limit holds the source back, and once the sink is back it has exactly
//! the decisions of a run whose sink never failed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use vigil_engine::pipeline::{self, Endpoints};
use vigil_engine::sink::{Sink, SinkRecord};
use vigil_engine::Error;
use vigil_tests::{fixture, read_lines, test_config};

/// A file sink behind a broker that is down until `up_at`: while down, flushes fail and what
/// was sent since the last good flush is lost.
struct Outage {
    inner: Box<dyn Sink>,
    up_at: Instant,
    unflushed: Vec<SinkRecord>,
    failures: Arc<AtomicU32>,
}

#[async_trait]
impl Sink for Outage {
    async fn send(&mut self, batch: &[SinkRecord]) -> vigil_engine::Result<()> {
        self.unflushed.extend_from_slice(batch);
        Ok(())
    }

    async fn flush(&mut self) -> vigil_engine::Result<()> {
        if Instant::now() < self.up_at {
            self.unflushed.clear();
            self.failures.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Io {
                what: "cannot write to sink outage".into(),
                cause: std::io::Error::other("broker unavailable"),
            });
        }
        self.inner.send(&self.unflushed).await?;
        self.unflushed.clear();
        self.inner.flush().await
    }

    fn describe(&self) -> String {
        "outage".into()
    }
}

/// The decision ids a run published, sorted, and how many flushes failed.
async fn run(dir: &std::path::Path, outage: Option<Duration>) -> (Vec<String>, u32) {
    let failures = Arc::new(AtomicU32::new(0));
    let path = dir.join("decisions.jsonl");
    let spec = format!("file:{}", path.display());
    let mut config = test_config();
    // Outreach on most engagement events: decisions flow from the first second, so the sink
    // is tried all through its outage.
    config.policy.churn.outreach = 0.01;
    let options = vigil_tests::run_options(
        config.clone(),
        &format!("generate:{}", fixture("passivation.toml").display()),
        &spec,
        "discard",
    );
    let endpoints = match outage {
        Some(down_for) => Endpoints {
            decisions: Some(Box::new(Outage {
                inner: vigil::connectors().open_sink(&spec, &config).await.unwrap(),
                up_at: Instant::now() + down_for,
                unflushed: Vec::new(),
                failures: failures.clone(),
            })),
            ..Endpoints::default()
        },
        None => Endpoints::default(),
    };
    let summary = pipeline::run_with(options, endpoints, std::future::pending())
        .await
        .unwrap();
    assert!(summary.records > 24_000);
    let mut ids: Vec<String> = read_lines(&path)
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["decision_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    (ids, failures.load(Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_down_for_two_seconds_gets_every_decision_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (steady, _) = run(&dir.path().join("steady"), None).await;
    let (recovered, failures) = run(&dir.path().join("outage"), Some(Duration::from_secs(2))).await;
    // Backoff from 100 ms doubling: about five failed attempts in two seconds.
    assert!((3..=8).contains(&failures), "{failures} failed flushes");
    assert!(steady.len() > 100, "{} decisions", steady.len());
    assert_eq!(recovered, steady);
}
