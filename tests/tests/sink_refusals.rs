//! What a sink's error says decides what the publisher does. A decision the sink refuses for
//! good (`InvalidInput`, as a topic refuses a record larger than it allows) goes to the
//! dead-letter output as `undeliverable` and every other decision is delivered; a sink that is
//! misconfigured (`Configuration`) stops the run with its error instead of retrying forever.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use vigil_engine::pipeline::{self, Endpoints};
use vigil_engine::sink::{Sink, SinkRecord};
use vigil_engine::{Error, ErrorKind};
use vigil_tests::{fixture, read_lines, test_config};

/// Refuses every batch holding a decision on customer `refused`, with `kind`; writes the rest.
struct Refusing {
    inner: Box<dyn Sink>,
    refused: &'static str,
    kind: ErrorKind,
}

#[async_trait]
impl Sink for Refusing {
    async fn send(&mut self, batch: &[SinkRecord]) -> vigil_engine::Result<()> {
        if batch.iter().any(|r| r.key == self.refused.as_bytes()) {
            return Err(Error::Connector {
                kind: self.kind,
                what: "refusing".into(),
                cause: "record larger than the topic allows".into(),
            });
        }
        self.inner.send(batch).await
    }

    async fn flush(&mut self) -> vigil_engine::Result<()> {
        self.inner.flush().await
    }

    fn describe(&self) -> String {
        "refusing".into()
    }
}

fn source() -> String {
    format!("generate:{}", fixture("passivation.toml").display())
}

fn decisions(path: &Path) -> Vec<serde_json::Value> {
    read_lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs the fixture with decisions to `dir`, optionally through a `Refusing` sink.
async fn run(
    dir: &Path,
    refusing: Option<(&'static str, ErrorKind)>,
) -> vigil_engine::Result<vigil_engine::publish::RunSummary> {
    let decisions = format!("file:{}", dir.join("decisions.jsonl").display());
    let dead_letters = format!("file:{}", dir.join("dead-letters.jsonl").display());
    let config = test_config();
    let options = vigil_tests::run_options(config.clone(), &source(), &decisions, &dead_letters);
    let mut endpoints = Endpoints::default();
    if let Some((refused, kind)) = refusing {
        let inner = vigil::connectors()
            .open_sink(&decisions, &config)
            .await
            .unwrap();
        endpoints.decisions = Some(Box::new(Refusing {
            inner,
            refused,
            kind,
        }));
    }
    pipeline::run_with(options, endpoints, std::future::pending()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_the_sink_refuses_for_good_is_dead_lettered_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    run(&whole, None).await.unwrap();
    let all = decisions(&whole.join("decisions.jsonl"));
    // The customer with the most decisions is the one whose decisions the sink refuses.
    let mut per_customer = std::collections::BTreeMap::<String, usize>::new();
    for d in &all {
        *per_customer
            .entry(d["customer_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let (customer, count) = per_customer.iter().max_by_key(|(_, n)| **n).unwrap();
    assert!(*count >= 1 && all.len() > *count, "{per_customer:?}");
    let refused: &'static str = Box::leak(customer.clone().into_boxed_str());

    let partly = dir.path().join("partly");
    let summary = run(&partly, Some((refused, ErrorKind::InvalidInput)))
        .await
        .unwrap();
    let delivered = decisions(&partly.join("decisions.jsonl"));
    let ids = |ds: &[serde_json::Value]| -> std::collections::BTreeSet<String> {
        ds.iter()
            .map(|d| d["decision_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let expected: Vec<serde_json::Value> = all
        .iter()
        .filter(|d| d["customer_id"] != refused)
        .cloned()
        .collect();
    assert_eq!(ids(&delivered), ids(&expected));
    let undeliverable: Vec<serde_json::Value> = read_lines(&partly.join("dead-letters.jsonl"))
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["reason"] == "undeliverable")
        .collect();
    assert_eq!(undeliverable.len(), *count);
    for letter in &undeliverable {
        let raw: serde_json::Value = serde_json::from_str(letter["raw"].as_str().unwrap()).unwrap();
        assert_eq!(raw["customer_id"], refused);
        assert!(
            letter["detail"]
                .as_str()
                .unwrap()
                .contains("record larger than the topic allows"),
            "{letter}"
        );
    }
    assert!(summary.dead_letters >= *count as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_sink_stops_the_run_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    run(&whole, None).await.unwrap();
    let all = decisions(&whole.join("decisions.jsonl"));
    let first: &'static str = Box::leak(
        all[0]["customer_id"]
            .as_str()
            .unwrap()
            .to_owned()
            .into_boxed_str(),
    );

    let stopped = tokio::time::timeout(
        Duration::from_secs(60),
        run(
            &dir.path().join("stopped"),
            Some((first, ErrorKind::Configuration)),
        ),
    )
    .await
    .expect("the run stops instead of retrying forever");
    let error = stopped.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration, "{error}");
    assert!(error.to_string().contains("refusing"), "{error}");
}
