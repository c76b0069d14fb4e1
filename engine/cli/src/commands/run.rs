//! `vigil run`: score events from a source and publish decisions, with metrics on the
//! configured listener and the risk console on its own, until the source ends, the duration
//! passes or SIGINT/SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use vigil_engine::pipeline::lookout::Lookout;
use vigil_engine::pipeline::{self, RunOptions};
use vigil_engine::publish::RunSummary;
use vigil_engine::source::PartitionChoice;
use vigil_engine::telemetry;

use super::ConfigArgs;

/// The built-in demo scenario `vigil` runs when given no source.
const DEMO_SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/demo.toml");

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Events: generate:SCENARIO.toml, file:EVENTS.jsonl, fluvio:TOPIC or - for stdin.
    #[arg(long)]
    source: Option<String>,
    /// Decisions: stdout, stderr, file:PATH, fluvio:TOPIC, webhook:URL or discard. More sinks,
    /// each for some decision kinds, go in the configuration's [[sinks]].
    #[arg(long, default_value = "stdout")]
    sink: String,
    /// Customer profiles, joined into decisions: file:PROFILES.jsonl, file:PROFILES.csv
    /// (columns as profiles.columns says) or fluvio:TOPIC, followed live.
    #[arg(long)]
    profiles: Option<String>,
    /// Changes to the policy's lists, {"list":"NAME","value":"…"} (with "removed":true to take
    /// a value out): fluvio:TOPIC followed live, or file:CHANGES.jsonl. Read from its start.
    #[arg(long)]
    lists: Option<String>,
    /// Dead letters: stdout, stderr, file:PATH, fluvio:TOPIC or discard.
    #[arg(long, default_value = "file:vigil-dead-letters.jsonl")]
    dead_letter: String,
    /// Would-be decisions of challengers (models.*_challenger) and of the candidate policy
    /// (policy.shadow): stdout, file:PATH, fluvio:TOPIC or discard.
    #[arg(long, default_value = "file:vigil-shadow.jsonl")]
    shadow: String,
    /// Stop reading after this long, e.g. 30s or 5m.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Do not print the once-a-second summary line.
    #[arg(long)]
    quiet: bool,
    /// Keep checkpoints here and resume from them (file and Fluvio sources).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Stop after taking in this many records.
    #[arg(long)]
    max_records: Option<u64>,
    /// Read only these source partitions, e.g. 0,2 (Fluvio).
    #[arg(long, value_delimiter = ',', conflicts_with = "instance")]
    partitions: Option<Vec<u32>>,
    /// Be instance I of N on a Fluvio topic, e.g. 0/3: read every partition p with
    /// p % N == I. Keep each instance's --state-dir with its I/N.
    #[arg(long, env = "VIGIL_INSTANCE", value_parser = PartitionChoice::instance)]
    instance: Option<PartitionChoice>,
    /// Rebuild customer state from the log into an empty --state-dir (Fluvio): read this
    /// run's partitions from their start, and publish only past where their consumer offsets
    /// say they were decided. For a new --instance I/N, or a lost state directory.
    #[arg(long)]
    rebuild: bool,
    /// Column mapping (TOML) for a CSV --source file:PATH, e.g. models/mappings/sparkov.toml.
    #[arg(long)]
    mapping: Option<PathBuf>,
}

pub async fn execute(args: RunArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    telemetry::install_exporter(config.metrics.listen)?;
    let source = args
        .source
        .unwrap_or_else(|| format!("generate:{DEMO_SCENARIO}"));
    let mut options = RunOptions {
        connectors: vigil::connectors(),
        duration: args.duration,
        live: !args.quiet,
        state_dir: args.state_dir,
        max_records: args.max_records,
        partitions: match (args.instance, args.partitions) {
            (Some(instance), _) => instance,
            (None, Some(listed)) => PartitionChoice::Listed(listed),
            (None, None) => PartitionChoice::All,
        },
        rebuild: args.rebuild,
        mapping: args.mapping,
        shadow: args.shadow,
        profiles: args.profiles,
        lists: args.lists,
        ..RunOptions::new(config, &source, &args.sink, &args.dead_letter)
    };
    // Served for as long as the run lasts.
    let _console = if options.config.console.enabled {
        Some(start_console(&mut options).await?)
    } else {
        None
    };
    let summary = pipeline::run(options, shutdown_signal()).await?;
    print_summary(&summary, &args.dead_letter);
    Ok(())
}

/// Serves the risk console on the run `options` describe, which it then watches.
async fn start_console(options: &mut RunOptions) -> anyhow::Result<vigil_console::Console> {
    let config = &options.config;
    let lookout = Lookout::new(config.console.stream_buffer);
    let console = vigil_console::serve(config, lookout.clone(), options.connectors.clone()).await?;
    options.lookout = Some(lookout);
    Ok(console)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

fn print_summary(s: &RunSummary, dead_letter: &str) {
    let l = s.latency_us;
    eprintln!(
        "Done: {} records in {:.1} s ({:.0} events/s); {} scored; freeze {}, alert {}, outreach {}, outreach suppressed {} ({} degraded); {} dead letters to {dead_letter}; ingest→published latency p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms.",
        s.records,
        s.elapsed.as_secs_f64(),
        s.events_per_second(),
        s.scored,
        s.decisions[0],
        s.decisions[1],
        s.decisions[2],
        s.decisions[3],
        s.degraded,
        s.dead_letters,
        l.p50 as f64 / 1e3,
        l.p99 as f64 / 1e3,
        l.p999 as f64 / 1e3,
        l.max as f64 / 1e3,
    );
    if s.replayed > 0 {
        eprintln!(
            "Rebuilt from the log: {} records re-read for state, their decisions published before.",
            s.replayed
        );
    }
    if s.timers_fired > 0 {
        eprintln!(
            "Inactivity checks: {} fired (their outreach is counted above).",
            s.timers_fired
        );
    }
    if s.model_swaps + s.model_rejections > 0 {
        eprintln!(
            "Models: {} swapped in, {} rejected (see the log for why).",
            s.model_swaps, s.model_rejections
        );
    }
    if s.shadow_decisions + s.disagreements > 0 {
        eprintln!(
            "Challenger: {} would-be decisions to the shadow output; it disagreed with the champion on {} events.",
            s.shadow_decisions, s.disagreements
        );
    }
    if s.policy_shadow_decisions + s.policy_disagreements > 0 {
        eprintln!(
            "Candidate policy: {} would-be decisions to the shadow output; it decided {} events differently from the policy in force.",
            s.policy_shadow_decisions, s.policy_disagreements
        );
    }
}
