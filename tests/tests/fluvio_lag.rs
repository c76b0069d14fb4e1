//! Consumer lag against a live cluster, in a process of its own because it reads the
//! process-wide metrics recorder. Skipped, saying so, when `FLUVIO_ENDPOINT` is unset.

use std::time::Duration;

use vigil_tests::fixture;
use vigil_tests::fluvio::{live, options, run};
use vigil_tests::test_config;

/// The engine's metrics as Prometheus text, from a recorder installed once for this process.
fn metrics_text() -> String {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .expect("no other recorder in this test process")
        })
        .render()
}

/// The value of `vigil_consumer_lag_records{partition="P"}` summed over partitions.
fn lag_records(text: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("vigil_consumer_lag_records{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_rises_with_a_backlog_and_returns_to_zero_when_caught_up() {
    let mut config = test_config();
    let Some(live) = live("lag", &mut config).await else {
        return;
    };
    metrics_text();
    // A bigger scenario on top, so the backlog lasts several of the once-a-second lag updates.
    let burst = vigil_fluvio::produce::produce(
        &vigil::connectors(),
        &format!("generate:{}", fixture("e2e.toml").display()),
        &format!("fluvio:{}-events", live.prefix),
        None,
        &config,
    )
    .await
    .unwrap();
    let total = live.produced + burst.records;

    // Everything is waiting in the topic when the engine starts: a burst.
    let engine = tokio::spawn(run(options(&live.prefix, &config, None, total)));
    let mut highest = 0.0f64;
    while !engine.is_finished() {
        if let Some(lag) = lag_records(&metrics_text()) {
            highest = highest.max(lag);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let summary = engine.await.unwrap();
    assert_eq!(summary.records, total);
    assert!(highest > 0.0, "lag never rose while {total} records waited");
    assert_eq!(
        lag_records(&metrics_text()),
        Some(0.0),
        "caught up, lag is back to 0"
    );
    let seconds: Vec<f64> = metrics_text()
        .lines()
        .filter(|l| l.starts_with("vigil_consumer_lag_seconds{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(
        !seconds.is_empty() && seconds.iter().all(|s| *s == 0.0),
        "{seconds:?}"
    );
}
