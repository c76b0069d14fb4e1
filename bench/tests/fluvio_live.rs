//! `vigil-bench --fluvio` against the live cluster (`FLUVIO_ENDPOINT`; skipped, and saying so,
//! when it is unset): every produced record is read back and decided, with latency counted
//! from its intended send time, and the decisions match an in-process run of the same scenario.

use std::time::Duration;

use vigil_bench::fluvio;
use vigil_bench::runner::{self, Feed, Plan};
use vigil_engine::config::{Config, LatencyBudget};
use vigil_scenario::Scenario;

const SCENARIO: &str = r#"
    name = "fluvio-live"
    seed = 12
    customers = 300
    events = 4000
    start = "2026-11-01T00:00:00Z"
    span = "5d"
    rate = 2000
    [fraud]
    account_takeover = 0.05
    card_testing = 0.02
    [malformed]
    ratio = 0.01
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_through_fluvio_decides_every_produced_record() {
    if std::env::var_os("FLUVIO_ENDPOINT").is_none() {
        eprintln!(
            "skipped: FLUVIO_ENDPOINT is not set, so the live Fluvio bench test did not run. {}",
            vigil_fluvio::client::GET_A_CLUSTER
        );
        return;
    }
    let mut config = Config::builtin();
    config.engine.latency_budget = LatencyBudget::uniform(Duration::from_secs(60));
    let plan = Plan {
        path: "fluvio-live.toml".to_owned(),
        scenario: Scenario::parse(SCENARIO, "fluvio-live.toml").unwrap(),
        config,
        progress: false,
    };
    let leg = fluvio::start(&plan).await.unwrap();
    let through_fluvio = runner::run(&plan, leg.feed).await.unwrap();
    let produced = leg.producer.await.unwrap().unwrap();
    let in_process = runner::run(&plan, Feed::default()).await.unwrap();

    let (f, p) = (&through_fluvio.summary, &in_process.summary);
    assert_eq!(f.records, produced);
    assert_eq!(f.records, p.records);
    assert_eq!(f.latency_histogram.len(), f.scored);
    assert_eq!((f.decisions, f.dead_letters), (p.decisions, p.dead_letters));
    assert_eq!(through_fluvio.fraud.caught, in_process.fraud.caught);
    // Producing, the broker and the consumer add to the in-process latency, never take from it.
    let p50 = |s: &vigil_engine::publish::RunSummary| s.latency_histogram.value_at_quantile(0.5);
    assert!(
        p50(f) > p50(p),
        "through Fluvio {} µs, in-process {} µs",
        p50(f),
        p50(p)
    );
}
