//! The report of a run: the scenario's targets judged against what was measured, the figures
//! behind them, the full latency distribution and the timeline. It is written as JSON (for
//! CI and dashboards), as HTML (`html`) and as a terminal summary; a missed target is named
//! with its limit and its measured value.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use vigil_scenario::Targets;

use crate::baseline::Capacity;
use crate::runner::{Measured, PacingFigures, Sample};

/// One target, judged.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The key in the scenario's `[targets]` table.
    pub target: &'static str,
    pub limit: String,
    pub measured: String,
    pub met: bool,
}

/// Latency figures, ms.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
    /// The distribution: latency (ms) at each percentile, for plots.
    pub percentiles: Vec<(f64, f64)>,
}

/// Everything a run reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub file: String,
    pub description: String,
    /// Where and how it ran.
    pub machine: String,
    pub mode: &'static str,
    pub records: u64,
    pub elapsed_s: f64,
    pub throughput: f64,
    pub decisions: Decisions,
    pub dead_letters: u64,
    pub dead_letter_ratio: f64,
    pub latency_ms: Latency,
    pub max_lag_s: Option<f64>,
    pub fraud_attacks: usize,
    pub fraud_caught: usize,
    pub fraud_recall: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    /// How late the paced generator released records (part of every latency figure).
    pub pacing_us: Option<PacingFigures>,
    /// Customer actors passivated, and passivated customers brought back.
    pub passivations: u64,
    pub restores: u64,
    pub capacity: Option<CapacityReport>,
    pub targets: Vec<Verdict>,
    pub passed: bool,
    pub timeline: Vec<Sample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decisions {
    pub freeze: u64,
    pub alert: u64,
    pub outreach: u64,
    pub degraded: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CapacityReport {
    pub records: u64,
    pub engine_per_s: f64,
    pub baseline_per_s: f64,
    pub ratio: f64,
}

/// Where the report came from, besides the measurement.
pub struct Context<'a> {
    pub name: &'a str,
    pub file: &'a str,
    pub description: &'a str,
    pub mode: &'static str,
}

impl Report {
    pub fn new(
        context: Context,
        targets: &Targets,
        measured: &Measured,
        capacity: Option<Capacity>,
    ) -> Report {
        let s = &measured.summary;
        let h = &s.latency_histogram;
        let ms = |us: u64| us as f64 / 1_000.0;
        let latency_ms = Latency {
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1_000.0,
            percentiles: percentile_curve(h),
        };
        let dead_letter_ratio = s.dead_letters as f64 / s.records.max(1) as f64;
        let mut report = Report {
            scenario: context.name.to_owned(),
            file: context.file.to_owned(),
            description: context.description.to_owned(),
            machine: machine(),
            mode: context.mode,
            records: s.records,
            elapsed_s: s.elapsed.as_secs_f64(),
            throughput: s.events_per_second(),
            decisions: Decisions {
                freeze: s.decisions[0],
                alert: s.decisions[1],
                outreach: s.decisions[2],
                degraded: s.degraded,
            },
            dead_letters: s.dead_letters,
            dead_letter_ratio,
            latency_ms,
            max_lag_s: measured.max_lag.map(|d| d.as_secs_f64()),
            fraud_attacks: measured.fraud.attacks,
            fraud_caught: measured.fraud.caught,
            fraud_recall: measured.fraud.recall(),
            peak_rss_mib: measured.peak_rss_mib,
            pacing_us: measured.pacing,
            passivations: s.passivations,
            restores: s.restores,
            capacity: capacity.map(|c| CapacityReport {
                records: c.records,
                engine_per_s: c.engine,
                baseline_per_s: c.baseline,
                ratio: c.ratio(),
            }),
            targets: Vec::new(),
            passed: true,
            timeline: measured.timeline.clone(),
        };
        report.targets = report.judge(targets);
        report.passed = report.targets.iter().all(|v| v.met);
        report
    }

    fn judge(&self, targets: &Targets) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        let latency = |target, limit: Option<Duration>, measured_ms: f64| {
            limit.map(|limit| Verdict {
                target,
                limit: format!("≤ {}", format_ms(limit.as_secs_f64() * 1e3)),
                measured: format_ms(measured_ms),
                met: measured_ms <= limit.as_secs_f64() * 1e3,
            })
        };
        let l = &self.latency_ms;
        verdicts.extend(latency("p50", targets.p50, l.p50));
        verdicts.extend(latency("p99", targets.p99, l.p99));
        verdicts.extend(latency("p999", targets.p999, l.p999));
        if let Some(min) = targets.min_throughput {
            verdicts.push(Verdict {
                target: "min_throughput",
                limit: format!("≥ {min:.0} records/s"),
                measured: format!("{:.0} records/s", self.throughput),
                met: self.throughput >= min,
            });
        }
        if let Some(max) = targets.max_lag {
            let (measured, met) = match self.max_lag_s {
                Some(lag) => (format!("{lag:.3} s"), lag <= max.as_secs_f64()),
                None => (
                    "not measurable: the scenario is not paced".to_owned(),
                    false,
                ),
            };
            verdicts.push(Verdict {
                target: "max_lag",
                limit: format!("≤ {:.3} s", max.as_secs_f64()),
                measured,
                met,
            });
        }
        if let Some(max) = targets.max_dead_letter_ratio {
            verdicts.push(Verdict {
                target: "max_dead_letter_ratio",
                limit: format!("≤ {max}"),
                measured: format!("{:.5}", self.dead_letter_ratio),
                met: self.dead_letter_ratio <= max,
            });
        }
        if let Some(min) = targets.min_fraud_recall {
            let (measured, met) = match self.fraud_recall {
                Some(recall) => (
                    format!(
                        "{recall:.3} ({} of {} attacks)",
                        self.fraud_caught, self.fraud_attacks
                    ),
                    recall >= min,
                ),
                None => ("no fraud was injected".to_owned(), false),
            };
            verdicts.push(Verdict {
                target: "min_fraud_recall",
                limit: format!("≥ {min}"),
                measured,
                met,
            });
        }
        verdicts
    }

    /// The terminal summary.
    pub fn print(&self) {
        let l = &self.latency_ms;
        println!("scenario        {} ({})", self.scenario, self.file);
        println!("machine         {} · {}", self.machine, self.mode);
        println!(
            "records         {} in {:.2} s = {:.0} records/s",
            self.records, self.elapsed_s, self.throughput
        );
        println!(
            "decisions       freeze {} alert {} outreach {} (degraded {})",
            self.decisions.freeze,
            self.decisions.alert,
            self.decisions.outreach,
            self.decisions.degraded
        );
        println!(
            "dead letters    {} ({:.3}%)",
            self.dead_letters,
            self.dead_letter_ratio * 100.0
        );
        println!(
            "latency         p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (intended send → published)",
            format_ms(l.p50),
            format_ms(l.p90),
            format_ms(l.p99),
            format_ms(l.p999),
            format_ms(l.max)
        );
        if let Some(p) = self.pacing_us {
            println!(
                "pacing          p50 {:.0} µs  p99 {:.0} µs  max {:.0} µs  (how late records left the generator)",
                p.p50_us, p.p99_us, p.max_us
            );
        }
        if let Some(lag) = self.max_lag_s {
            println!("max lag         {lag:.3} s");
        }
        if let Some(recall) = self.fraud_recall {
            println!(
                "fraud recall    {recall:.3} ({} of {} attacks frozen or alerted)",
                self.fraud_caught, self.fraud_attacks
            );
        }
        if let Some(rss) = self.peak_rss_mib {
            println!("peak RSS        {rss:.0} MiB");
        }
        println!(
            "passivation     {} actors passivated, {} customers restored",
            self.passivations, self.restores
        );
        if let Some(c) = &self.capacity {
            println!(
                "capacity        engine {:.0}/s, plain loop {:.0}/s: engine/baseline = {:.2}",
                c.engine_per_s, c.baseline_per_s, c.ratio
            );
        }
        for v in &self.targets {
            println!(
                "{}  {:<22} {:<16} measured {}",
                if v.met { "PASS" } else { "MISS" },
                v.target,
                v.limit,
                v.measured
            );
        }
        match (self.targets.is_empty(), self.passed) {
            (true, _) => println!("no targets set"),
            (false, true) => println!("all {} targets met", self.targets.len()),
            (false, false) => {
                let missed: Vec<&str> = self
                    .targets
                    .iter()
                    .filter(|v| !v.met)
                    .map(|v| v.target)
                    .collect();
                println!("missed: {}", missed.join(", "));
            }
        }
    }
}

/// The latency at percentiles from 0 up to the last recorded value, spaced evenly in "nines"
/// (50, 90, 99, 99.9, …), the usual HDR percentile plot.
fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points = Vec::new();
    let mut nines = 0.0;
    loop {
        let q = 1.0 - 10f64.powf(-nines);
        points.push((q * 100.0, h.value_at_quantile(q) as f64 / 1_000.0));
        if h.count_between(0, h.value_at_quantile(q)) >= h.len() || nines >= 6.0 {
            break;
        }
        nines += 0.1;
    }
    points
}

pub fn format_ms(ms: f64) -> String {
    if ms >= 1_000.0 {
        format!("{:.2} s", ms / 1_000.0)
    } else {
        format!("{ms:.3} ms")
    }
}

/// The machine, as the kernel reports it.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kib: f64 = m
                .lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(kib / 1024.0 / 1024.0)
        })
        .unwrap_or(0.0);
    format!(
        "{cores} cores, {memory:.0} GiB, {}",
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        }
    )
}
