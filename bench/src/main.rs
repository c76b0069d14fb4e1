//! `vigil-bench SCENARIO.toml`: runs a scenario against the engine, prints the summary, writes
//! the JSON and HTML reports, and exits 0 when every target is met, 1 when any is missed and 2
//! when the run itself failed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use vigil_bench::report::{Context, Report};
use vigil_bench::{baseline, fluvio, html, runner};
use vigil_engine::config::{Config, Layers};
use vigil_scenario::Scenario;

/// Millions of short-lived actors and their messages churn small allocations across threads;
/// glibc's allocator spent a fifth of the million-customer run in malloc and its arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "vigil-bench",
    about = "Load-test the Vigil engine with a scenario file and check its targets."
)]
struct Cli {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Engine configuration, layered over the built-in defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// One engine configuration key, over the file and the environment (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Also measure engine capacity against the same work in a plain single-threaded loop.
    #[arg(long)]
    baseline: bool,
    /// Where the reports go: NAME.json and NAME.html, NAME being the scenario's.
    #[arg(long, default_value = "target/vigil-bench")]
    report_dir: PathBuf,
    /// Serve Prometheus metrics on this address during the run, to measure their cost.
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
    /// Send the records through Fluvio (the cluster from FLUVIO_ENDPOINT, the CLI profile or
    /// the config) instead of in-process.
    #[arg(long)]
    fluvio: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    vigil::keep_freed_memory();
    match run(Cli::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("vigil-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the scenario; `Ok(passed)`.
async fn run(cli: Cli) -> anyhow::Result<bool> {
    let scenario = Scenario::load(&cli.scenario)?;
    let config = Config::load(&Layers::from_process(cli.config.clone(), cli.set.clone()))?;
    if let Some(listen) = cli.metrics {
        vigil_engine::telemetry::install_exporter(listen)?;
    }
    let file = cli.scenario.display().to_string();
    let plan = runner::Plan {
        path: file.clone(),
        scenario: scenario.clone(),
        config: config.clone(),
        progress: !cli.quiet,
    };
    let (measured, mode) = if cli.fluvio {
        let leg = fluvio::start(&plan).await?;
        let measured = runner::run(&plan, leg.feed).await?;
        leg.producer.await??;
        (measured, "through Fluvio")
    } else {
        (
            runner::run(&plan, runner::Feed::default()).await?,
            "in-process",
        )
    };
    let capacity = if cli.baseline {
        eprintln!(
            "measuring capacity: the same records unpaced through the engine and a plain loop"
        );
        Some(baseline::measure(&scenario, &config).await?)
    } else {
        None
    };
    let name = if scenario.name.is_empty() {
        cli.scenario
            .file_stem()
            .map_or("scenario".to_owned(), |s| s.to_string_lossy().into_owned())
    } else {
        scenario.name.clone()
    };
    let report = Report::new(
        Context {
            name: &name,
            file: &file,
            description: &scenario.description,
            mode,
        },
        &scenario.targets,
        &measured,
        capacity,
    );
    report.print();
    std::fs::create_dir_all(&cli.report_dir)?;
    let json = cli.report_dir.join(format!("{name}.json"));
    let page = cli.report_dir.join(format!("{name}.html"));
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
    std::fs::write(&page, html::render(&report))?;
    println!("reports         {} {}", json.display(), page.display());
    Ok(report.passed)
}
