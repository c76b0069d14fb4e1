//! One load-test run: the engine in-process, fed by the scenario's paced generator (or a
//! source the caller supplies), with a decision sink that checks decisions against the
//! injected fraud and a once-a-second timeline of throughput, latency and lag.
//!
//! Latency is what the publisher measures from each record's `ingested` stamp, which the paced
//! generator sets to the record's intended send time: a record that waited to be read is
//! charged for the wait. Lag is how far the oldest unpublished record trails its intended send
//! time, from the publisher's resume offsets and the scenario's schedule.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use vigil_engine::config::Config;
use vigil_engine::decision::DecisionKind;
use vigil_engine::pipeline::{self, Endpoints, RunOptions};
use vigil_engine::publish::{RunSummary, Tick};
use vigil_engine::sink::{Sink, SinkRecord};
use vigil_engine::source::Source;
use vigil_scenario::{Generator, GeneratorSource, Pacing, Scenario, Schedule};

/// What to run.
pub struct Plan {
    /// The scenario file, as given (for the source spec and reports).
    pub path: String,
    pub scenario: Scenario,
    pub config: Config,
    /// Show a progress bar on the terminal.
    pub progress: bool,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t: f64,
    /// Records published in this second, per second.
    pub throughput: f64,
    /// Records per second the schedule asked for at this point, when paced.
    pub scheduled: Option<f64>,
    /// Latency of the records published in this second, ms.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// How far the oldest unpublished record trails its intended send time, s.
    pub lag_s: Option<f64>,
}

/// How much of the injected fraud the engine acted on.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FraudRecall {
    /// Injected attacks (one per attacked customer).
    pub attacks: usize,
    /// Attacks with a freeze or alert on or after the attack's first event.
    pub caught: usize,
}

impl FraudRecall {
    pub fn recall(&self) -> Option<f64> {
        (self.attacks > 0).then(|| self.caught as f64 / self.attacks as f64)
    }
}

/// Where the run's records come from and its decisions go; the default is the scenario's
/// paced generator in-process and decisions dropped once checked.
#[derive(Default)]
pub struct Feed {
    pub source: Option<Box<dyn Source>>,
    /// Where decisions go after the fraud watch has seen them.
    pub decisions: Option<Box<dyn Sink>>,
    /// Stop after this many records (for sources that never end).
    pub records: Option<u64>,
    /// How late the paced generator released records, when the source (or its producer) is
    /// one.
    pub pacing: Option<Pacing>,
}

/// What one run measured.
pub struct Measured {
    pub summary: RunSummary,
    pub timeline: Vec<Sample>,
    /// Worst lag seen; `None` when the scenario is not paced (everything is due at once).
    pub max_lag: Option<Duration>,
    pub fraud: FraudRecall,
    pub peak_rss_mib: Option<f64>,
    /// How late the paced generator released records; `None` when unpaced or not generated.
    pub pacing: Option<PacingFigures>,
}

/// How late the paced generator released records after their intended send times: the part
/// of every latency figure that is pacing, not the engine.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PacingFigures {
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl PacingFigures {
    fn of(pacing: &Pacing) -> Option<PacingFigures> {
        let us = |q| pacing.quantile(q).as_secs_f64() * 1e6;
        (pacing.count() > 0).then(|| PacingFigures {
            p50_us: us(0.5),
            p99_us: us(0.99),
            max_us: us(1.0),
        })
    }
}

/// Runs the plan's scenario through the engine, fed as `feed` says.
pub async fn run(plan: &Plan, feed: Feed) -> anyhow::Result<Measured> {
    let generator = Generator::new(plan.scenario.clone());
    let expected = expected_records(&generator);
    let watch = Arc::new(FraudWatch {
        attack_start: generator.truth().attack_start.clone(),
        caught: Mutex::new(HashSet::new()),
    });
    drop(generator);
    let schedule = Schedule::of(&plan.scenario);

    let (ticks, mut tick_rx) = mpsc::unbounded_channel();
    let mut options = RunOptions::new(
        plan.config.clone(),
        &format!("generate:{}", plan.path),
        "discard",
        "discard",
    );
    options.ticks = Some(ticks);
    options.max_records = feed.records;
    let mut pacing = feed.pacing;
    let source = feed.source.unwrap_or_else(|| {
        let generator = GeneratorSource::new(plan.scenario.clone(), plan.path.clone());
        pacing = Some(generator.pacing());
        Box::new(generator)
    });
    let endpoints = Endpoints {
        source: Some(source),
        decisions: Some(Box::new(FraudWatchSink {
            watch: watch.clone(),
            inner: feed.decisions,
        })),
        dead_letters: None,
    };

    let bar = if plan.progress {
        let bar = ProgressBar::new(expected);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} records  {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let follow = {
        let bar = bar.clone();
        let schedule = schedule.clone();
        tokio::spawn(async move {
            let mut timeline = Vec::new();
            let mut last = (Duration::ZERO, 0u64);
            while let Some(tick) = tick_rx.recv().await {
                let sample = sample(&tick, last, schedule.as_ref());
                last = (tick.elapsed, tick.records);
                if tick.records > bar.length().unwrap_or(0) {
                    bar.set_length(tick.records);
                }
                bar.set_position(tick.records);
                bar.set_message(format!(
                    "{:.0}/s  p99 {}",
                    sample.throughput,
                    sample
                        .p99_ms
                        .map_or("-".to_owned(), |p| format!("{p:.2} ms"))
                ));
                timeline.push(sample);
            }
            timeline
        })
    };
    let summary = pipeline::run_with(options, endpoints, std::future::pending()).await?;
    let timeline = follow.await?;
    bar.finish_and_clear();

    let max_lag = schedule.as_ref().map(|_| {
        let worst = timeline.iter().filter_map(|s| s.lag_s).fold(0.0, f64::max);
        Duration::from_secs_f64(worst)
    });
    let caught = watch.caught.lock().expect("fraud watch poisoned").len();
    Ok(Measured {
        summary,
        timeline,
        max_lag,
        fraud: FraudRecall {
            attacks: watch.attack_start.len(),
            caught,
        },
        peak_rss_mib: peak_rss_mib(),
        pacing: pacing.as_ref().and_then(PacingFigures::of),
    })
}

/// Records the scenario will send: benign and injected ones, and the malformed ones expected.
fn expected_records(generator: &Generator) -> u64 {
    let scenario = generator.scenario();
    generator.remaining() + (scenario.events() as f64 * scenario.malformed.ratio) as u64
}

/// One tick as a timeline sample, given the previous tick's time and count.
fn sample(tick: &Tick, last: (Duration, u64), schedule: Option<&Schedule>) -> Sample {
    let span = (tick.elapsed - last.0).as_secs_f64().max(1e-9);
    let ms = |us: u64| us as f64 / 1_000.0;
    let latency = tick.latency_us;
    // Now, the oldest unpublished record's age; during the second past, at least the age the
    // slowest record published in it had reached (a sample taken just after the publisher
    // caught up would otherwise hide a stall).
    let lag_s = schedule.map(|schedule| {
        let oldest_unpublished = tick.resume.get(&0).copied().unwrap_or(0);
        let intended = schedule.intended(oldest_unpublished);
        let now = tick.elapsed.saturating_sub(intended).as_secs_f64();
        now.max(latency.map_or(0.0, |l| ms(l.max) / 1_000.0))
    });
    Sample {
        t: tick.elapsed.as_secs_f64(),
        throughput: (tick.records - last.1) as f64 / span,
        scheduled: schedule.map(|s| s.rate_at(tick.elapsed)),
        p50_ms: latency.map(|l| ms(l.p50)),
        p99_ms: latency.map(|l| ms(l.p99)),
        p999_ms: latency.map(|l| ms(l.p999)),
        max_ms: latency.map(|l| ms(l.max)),
        lag_s,
    }
}

/// Which attacked customers the engine froze or alerted on once their attack had begun.
struct FraudWatch {
    attack_start: HashMap<String, i64>,
    caught: Mutex<HashSet<String>>,
}

/// The fields of a published decision the fraud watch reads.
#[derive(Deserialize)]
struct DecisionSeen {
    decision: DecisionKind,
    customer_id: String,
    event_ts: i64,
}

/// The run's decision sink: decisions are checked against the injected fraud, then passed to
/// `inner` (dropped when there is none, so that only the engine is measured).
struct FraudWatchSink {
    watch: Arc<FraudWatch>,
    inner: Option<Box<dyn Sink>>,
}

#[async_trait]
impl Sink for FraudWatchSink {
    async fn send(&mut self, batch: &[SinkRecord]) -> vigil_engine::Result<()> {
        if let Some(inner) = &mut self.inner {
            inner.send(batch).await?;
        }
        if self.watch.attack_start.is_empty() {
            return Ok(());
        }
        let mut caught = self.watch.caught.lock().expect("fraud watch poisoned");
        for record in batch {
            let Ok(seen) = serde_json::from_slice::<DecisionSeen>(&record.value) else {
                continue;
            };
            let acted = matches!(seen.decision, DecisionKind::Freeze | DecisionKind::Alert);
            let during_attack = self
                .watch
                .attack_start
                .get(&seen.customer_id)
                .is_some_and(|&start| seen.event_ts >= start);
            if acted && during_attack {
                caught.insert(seen.customer_id);
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> vigil_engine::Result<()> {
        match &mut self.inner {
            Some(inner) => inner.flush().await,
            None => Ok(()),
        }
    }

    fn describe(&self) -> String {
        match &self.inner {
            Some(inner) => format!("fraud watch, then {}", inner.describe()),
            None => "fraud watch".to_owned(),
        }
    }
}

/// Peak resident set size of this process, from the kernel's accounting.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
