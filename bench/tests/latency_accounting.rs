//! The runner's latency accounting: a source that stalls reading for a known time must show
//! that stall in the reported percentiles (open loop, no coordinated omission), and targets are
//! judged against it.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use vigil_bench::report::{Context, Report};
use vigil_bench::runner::{self, Feed, Plan};
use vigil_engine::config::{Config, LatencyBudget};
use vigil_engine::source::{Source, SourceRecord};
use vigil_scenario::{GeneratorSource, Scenario};

/// 2,000 records/s for 3 s.
const SCENARIO: &str = r#"
    name = "accounting"
    seed = 9
    customers = 200
    events = 6000
    start = "2026-11-01T00:00:00Z"
    span = "1d"
    rate = 2000
    [fraud]
    account_takeover = 0.0
    card_testing = 0.0
    [churn]
    cohort = 0.0
    [targets]
    p50 = "100ms"
    p99 = "100ms"
"#;

const STALL: Duration = Duration::from_millis(300);

/// The scenario's paced generator, except that one read, a second in, stalls for `STALL`:
/// the records due meanwhile are read late, all at once.
struct StallingSource {
    inner: GeneratorSource,
    started: Option<Instant>,
    stalled: bool,
}

#[async_trait]
impl Source for StallingSource {
    async fn next_batch(&mut self, batch: &mut Vec<SourceRecord>) -> vigil_engine::Result<bool> {
        let started = *self.started.get_or_insert_with(Instant::now);
        if !self.stalled && started.elapsed() >= Duration::from_secs(1) {
            self.stalled = true;
            tokio::time::sleep(STALL).await;
        }
        self.inner.next_batch(batch).await
    }

    fn describe(&self) -> String {
        "stalling generator".to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_read_shows_in_the_percentiles() {
    let scenario = Scenario::parse(SCENARIO, "accounting.toml").unwrap();
    let mut config = Config::builtin();
    config.engine.latency_budget = LatencyBudget::uniform(Duration::from_secs(60));
    let plan = Plan {
        path: "accounting.toml".to_owned(),
        scenario: scenario.clone(),
        config,
        progress: false,
    };
    let source = StallingSource {
        inner: GeneratorSource::new(scenario.clone(), "accounting.toml".to_owned()),
        started: None,
        stalled: false,
    };
    let feed = Feed {
        source: Some(Box::new(source)),
        ..Feed::default()
    };
    let measured = runner::run(&plan, feed).await.unwrap();
    let h = &measured.summary.latency_histogram;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
    assert_eq!(h.len(), 6000);
    // About 600 of 6,000 records (10%) were due during the stall and waited between 300 ms
    // and 0 for it: the slowest 1% of all records waited at least 270 ms.
    assert!(ms(0.5) < 50.0, "p50 {} ms", ms(0.5));
    assert!(ms(0.85) < 50.0, "p85 {} ms", ms(0.85));
    assert!(ms(0.99) >= 240.0, "p99 {} ms", ms(0.99));
    assert!(ms(0.999) >= 280.0, "p99.9 {} ms", ms(0.999));
    assert!(ms(1.0) < 800.0, "max {} ms", ms(1.0));
    // Records a closed-loop reader would have timed from their late read are counted in full.
    let stalled = h.count_between(100_000, u64::MAX);
    assert!(
        (400..=800).contains(&stalled),
        "{stalled} records over 100 ms"
    );
    assert!(measured.max_lag.is_some(), "a paced run measures lag");

    let report = Report::new(
        Context {
            name: "accounting",
            file: "accounting.toml",
            description: "",
            mode: "in-process",
        },
        &scenario.targets,
        &measured,
        None,
    );
    let verdicts: Vec<(&str, bool)> = report.targets.iter().map(|v| (v.target, v.met)).collect();
    assert_eq!(verdicts, [("p50", true), ("p99", false)]);
    assert!(!report.passed);
}
