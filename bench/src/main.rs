//! `vigil-bench`: runs a scenario through the whole engine in-process, with decisions and dead
//! letters discarded so that only the engine is measured, and prints throughput, ingest→publish
//! latency percentiles and peak memory. Scenario targets, HTML reports and the no-actor baseline
//! build on this runner.

use std::path::PathBuf;

use clap::Parser;
use vigil_engine::config::Config;
use vigil_engine::pipeline::{self, RunOptions};

#[derive(Parser)]
#[command(
    name = "vigil-bench",
    about = "Load-test the Vigil engine with a scenario file."
)]
struct Cli {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Engine configuration, layered over the built-in defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve Prometheus metrics on this address during the run, to measure their cost.
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
}

/// Peak resident set size of this process, from the kernel's accounting.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::builtin(),
    };
    if let Some(listen) = cli.metrics {
        vigil_engine::telemetry::install_exporter(listen)?;
    }
    let source = format!("generate:{}", cli.scenario.display());
    let options = RunOptions::new(config, &source, "discard", "discard");
    let s = pipeline::run(options, std::future::pending()).await?;
    let l = s.latency_us;
    println!("scenario        {}", cli.scenario.display());
    println!(
        "metrics         {}",
        cli.metrics
            .map_or("off".to_owned(), |a| format!("served on {a}"))
    );
    println!(
        "records         {} in {:.2} s",
        s.records,
        s.elapsed.as_secs_f64()
    );
    println!("throughput      {:.0} events/s", s.events_per_second());
    println!(
        "decisions       freeze {} alert {} outreach {} (degraded {})",
        s.decisions[0], s.decisions[1], s.decisions[2], s.degraded
    );
    println!("dead letters    {}", s.dead_letters);
    println!(
        "latency         p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
        l.p50 as f64 / 1e3,
        l.p99 as f64 / 1e3,
        l.p999 as f64 / 1e3,
        l.max as f64 / 1e3
    );
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS        {rss:.0} MiB");
    }
    Ok(())
}
