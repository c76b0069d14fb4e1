//! Overload: with far more records waiting than the engine can take (600k at once), the in-flight limit
//! throttles the source (the backlog is visible and shrinks only at the engine's pace) and
//! memory stays flat: queues never grow past the limit, whatever the backlog. This test runs
//! alone in its own process, so the process's resident memory is the engine's.

use tokio::sync::mpsc;
use vigil_engine::pipeline;
use vigil_tests::{fixture, test_config};

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_while_the_source_is_throttled() {
    let config = test_config();
    let limit = config.engine.max_in_flight as u64;
    let (ticks, mut follow) = mpsc::unbounded_channel();
    let mut options = vigil_tests::run_options(
        config,
        &format!("generate:{}", fixture("overload.toml").display()),
        "discard",
        "discard",
    );
    options.ticks = Some(ticks);
    let run = tokio::spawn(pipeline::run(options, std::future::pending()));

    let mut samples = Vec::new();
    while let Some(tick) = follow.recv().await {
        samples.push((tick.backlog, tick.in_flight, rss_mib()));
    }
    let summary = run.await.unwrap().unwrap();
    assert!(summary.records > 600_000);
    assert!(samples.len() >= 4, "{} one-second samples", samples.len());

    for &(_, in_flight, _) in &samples {
        assert!(
            in_flight <= limit,
            "{in_flight} in flight over the limit of {limit}"
        );
    }
    // Throttled: most of the records were still waiting in the source a second in, and the
    // backlog shrank steadily from there.
    let backlogs: Vec<u64> = samples.iter().map(|s| s.0).collect();
    assert!(backlogs[0] > 300_000, "backlog {backlogs:?}");
    assert!(backlogs.windows(2).all(|w| w[1] <= w[0]), "{backlogs:?}");
    // Flat: after the first second (models loaded, customers met), resident memory moves by
    // less than 64 MiB however much is waiting.
    let rss: Vec<f64> = samples.iter().map(|s| s.2).collect();
    let (low, high) = rss[1..]
        .iter()
        .fold((f64::MAX, 0.0f64), |(l, h), &r| (l.min(r), h.max(r)));
    assert!(
        high - low < 64.0,
        "RSS moved from {low:.0} to {high:.0} MiB: {rss:?}"
    );
}
