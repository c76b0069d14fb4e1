//! The `vigil` binary: `vigil run` scores a stream (with no arguments it runs the built-in
//! demo scenario), `vigil train` fits a model from labelled history with the engine's own
//! feature code, `vigil replay` backtests a candidate model (and a challenger) on history
//! through the full engine, and `produce`, `tail` and `topics create` work with Fluvio topics.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;
use vigil_engine::config::Config;
use vigil_engine::decision::DecisionKind;
use vigil_engine::pipeline::{self, RunOptions};
use vigil_engine::publish::RunSummary;
use vigil_engine::telemetry;

/// Millions of short-lived actors and their messages churn small allocations across threads;
/// glibc's allocator spent a fifth of the million-customer run in malloc and its arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use vigil_engine::replay::ReplayOptions;
use vigil_engine::train::{self, TrainOptions};
use vigil_models::{Family, ModelKind};

/// The built-in demo scenario `vigil` runs when given no source.
const DEMO_SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/demo.toml");

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Real-time fraud and churn scoring engine."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Score events from a source and publish decisions (the default command).
    Run(RunArgs),
    /// Train a model from labelled history with the engine's feature code.
    Train(TrainArgs),
    /// Run labelled history through the full engine with a candidate model (and a challenger)
    /// and report decisions and quality, without side effects.
    Replay(ReplayArgs),
    /// Load events (JSON lines or a scenario) into a Fluvio topic, keyed by customer id.
    Produce(ProduceArgs),
    /// Follow a decision topic in a readable form.
    Tail(TailArgs),
    /// Manage the Fluvio topics Vigil uses.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
}

#[derive(clap::Args)]
struct ProduceArgs {
    /// Events: generate:SCENARIO.toml, file:EVENTS.jsonl or -.
    #[arg(long)]
    from: String,
    /// Destination, e.g. fluvio:vigil-events.
    #[arg(long)]
    to: String,
    /// Records per second; as fast as possible when left out.
    #[arg(long)]
    rate: Option<u64>,
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct TailArgs {
    /// The decision stream, e.g. fluvio:vigil-decisions.
    topic: String,
    /// Only this kind of decision.
    #[arg(long, value_enum)]
    decision: Option<DecisionArg>,
    /// Only this customer.
    #[arg(long)]
    customer: Option<String>,
    /// Start from the oldest decision instead of new ones only.
    #[arg(long)]
    from_beginning: bool,
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum DecisionArg {
    Freeze,
    Alert,
    Outreach,
}

#[derive(Subcommand)]
enum TopicsCommand {
    /// Create {prefix}-events, -decisions, -dead-letters and -shadow.
    Create {
        #[arg(long, default_value_t = 2)]
        partitions: u32,
        #[arg(long, default_value = "vigil")]
        prefix: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Configuration file, layered over the built-in defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Events: generate:SCENARIO.toml, file:EVENTS.jsonl or - for stdin.
    #[arg(long)]
    source: Option<String>,
    /// Decisions: stdout, stderr, file:PATH or discard.
    #[arg(long, default_value = "stdout")]
    sink: String,
    /// Dead letters: stdout, stderr, file:PATH or discard.
    #[arg(long, default_value = "file:vigil-dead-letters.jsonl")]
    dead_letter: String,
    /// Challengers' would-be decisions (models.*_challenger): stdout, file:PATH, fluvio:TOPIC or discard.
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
    #[arg(long, value_delimiter = ',')]
    partitions: Option<Vec<u32>>,
    /// Column mapping (TOML) for a CSV --source file:PATH, e.g. models/mappings/sparkov.toml.
    #[arg(long)]
    mapping: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Fraud,
    Churn,
}

#[derive(Clone, Copy, ValueEnum)]
enum AlgorithmArg {
    /// Logistic regression (linfa-logistic); reasons are weight × standardised value.
    Logistic,
    /// Decision tree (linfa-trees); reasons are the decision path's moves.
    Tree,
}

#[derive(clap::Args)]
struct TrainArgs {
    #[arg(long, value_enum)]
    kind: KindArg,
    /// Labelled history: generate:SCENARIO.toml, file:EVENTS.jsonl or -.
    #[arg(long)]
    input: String,
    /// Where to write the model artifact (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Model family.
    #[arg(long, value_enum, default_value = "logistic")]
    algorithm: AlgorithmArg,
    /// Deepest a tree may grow (--algorithm tree).
    #[arg(long, default_value_t = 8)]
    max_depth: usize,
    /// Model name; defaults to fraud-lr or churn-lr (fraud-tree, churn-tree for trees).
    #[arg(long)]
    name: Option<String>,
    /// Model version; defaults to one more than the artifact at --out.
    #[arg(long)]
    version: Option<u32>,
    /// Share of the history, by event time, held out for evaluation.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
    /// Hold out everything from this event time on instead (UTC: 2019-01-03, 2019-01-03 12:00:00
    /// or RFC 3339).
    #[arg(long, value_parser = parse_time, conflicts_with = "holdout")]
    holdout_from: Option<i64>,
    /// Column mapping (TOML) for a CSV --input file:PATH, e.g. models/mappings/sparkov.toml.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// Configuration file (late tolerance, thresholds for the evaluation).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// A UTC time as ms since the epoch: a date, a date and time, or RFC 3339.
fn parse_time(text: &str) -> Result<i64, String> {
    let full = if text.len() == 10 {
        format!("{text} 00:00:00")
    } else {
        text.to_owned()
    };
    humantime::parse_rfc3339_weak(&full)
        .map_err(|e| format!("`{text}` is not a UTC date or time ({e})"))?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .map_err(|_| format!("`{text}` is before 1970"))
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Labelled history: file:EVENTS.jsonl, file:HISTORY.csv with --mapping, or generate:SCENARIO.toml.
    #[arg(long)]
    input: String,
    /// Column mapping (TOML) for a CSV input.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// The model artifact to replay as champion; its kind says which model it stands in for.
    #[arg(long)]
    model: PathBuf,
    /// A second artifact of the same kind, scored beside it in shadow.
    #[arg(long)]
    challenger: Option<PathBuf>,
    /// The JSON report. Decisions, shadow decisions and dead letters are written beside it
    /// (REPORT.decisions.jsonl, REPORT.shadow.jsonl, REPORT.dead-letters.jsonl).
    #[arg(long)]
    report: PathBuf,
    /// Configuration file (thresholds, rules, budget, late tolerance).
    #[arg(long)]
    config: Option<PathBuf>,
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(path) => Config::load(path)?,
        None => Config::builtin(),
    })
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // No subcommand means `vigil run` with its defaults.
    let command = cli.command.unwrap_or_else(|| {
        Cli::parse_from(["vigil", "run"])
            .command
            .expect("`run` parses to a command")
    });
    let result = match command {
        Command::Run(args) => run(args).await,
        Command::Train(args) => train_model(args).await,
        Command::Replay(args) => replay(args).await,
        Command::Produce(args) => produce(args).await,
        Command::Tail(args) => tail(args).await,
        Command::Topics {
            command:
                TopicsCommand::Create {
                    partitions,
                    prefix,
                    config,
                },
        } => create_topics(partitions, &prefix, config.as_ref()).await,
    };
    if let Err(e) = result {
        eprintln!("vigil: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_ref())?;
    telemetry::install_exporter(config.metrics.listen)?;
    let dead_letter = args.dead_letter;
    let options = RunOptions {
        config,
        source: args
            .source
            .unwrap_or_else(|| format!("generate:{DEMO_SCENARIO}")),
        sink: args.sink,
        dead_letter: dead_letter.clone(),
        duration: args.duration,
        live: !args.quiet,
        state_dir: args.state_dir,
        max_records: args.max_records,
        partitions: args.partitions,
        ticks: None,
        mapping: args.mapping,
        shadow: args.shadow,
        audit: None,
    };
    let shutdown = async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    let summary = pipeline::run(options, shutdown).await?;
    print_summary(&summary, &dead_letter);
    Ok(())
}

fn print_summary(s: &RunSummary, dead_letter: &str) {
    let l = s.latency_us;
    eprintln!(
        "Done: {} records in {:.1} s ({:.0} events/s); {} scored; freeze {}, alert {}, outreach {} ({} degraded); {} dead letters to {dead_letter}; ingest→published latency p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms.",
        s.records,
        s.elapsed.as_secs_f64(),
        s.events_per_second(),
        s.scored,
        s.decisions[0],
        s.decisions[1],
        s.decisions[2],
        s.degraded,
        s.dead_letters,
        l.p50 as f64 / 1e3,
        l.p99 as f64 / 1e3,
        l.p999 as f64 / 1e3,
        l.max as f64 / 1e3,
    );
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
}

async fn train_model(args: TrainArgs) -> anyhow::Result<()> {
    let options = TrainOptions {
        kind: match args.kind {
            KindArg::Fraud => ModelKind::Fraud,
            KindArg::Churn => ModelKind::Churn,
        },
        input: args.input,
        out: args.out.clone(),
        family: match args.algorithm {
            AlgorithmArg::Logistic => Family::Logistic { alpha: 1.0 },
            AlgorithmArg::Tree => Family::Tree {
                max_depth: args.max_depth,
                min_leaf: 5.0,
            },
        },
        name: args.name,
        version: args.version,
        holdout: args.holdout,
        holdout_from: args.holdout_from,
        mapping: args.mapping,
        config: load_config(args.config.as_ref())?,
    };
    let artifact = train::train(options).await.context("training failed")?;
    eprintln!("{}", train::describe(&artifact)?);
    eprintln!("Wrote {}.", args.out.display());
    Ok(())
}

async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let options = ReplayOptions {
        input: args.input,
        mapping: args.mapping,
        model: args.model,
        challenger: args.challenger,
        report: args.report.clone(),
        config: load_config(args.config.as_ref())?,
    };
    let report = vigil_engine::replay::replay(options)
        .await
        .context("replay failed")?;
    eprint!("{}", vigil_engine::replay::describe(&report));
    eprintln!("Wrote {}.", args.report.display());
    Ok(())
}

async fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_ref())?;
    let produced = vigil_engine::produce::produce(&args.from, &args.to, args.rate, &config).await?;
    eprintln!(
        "Produced {} records to {} in {:.1} s ({} without a customer key).",
        produced.records,
        args.to,
        produced.elapsed.as_secs_f64(),
        produced.unkeyed
    );
    Ok(())
}

async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_ref())?;
    let topic = args
        .topic
        .strip_prefix("fluvio:")
        .context("tail follows a Fluvio topic: fluvio:TOPIC")?;
    let filter = vigil_engine::tail::TailFilter {
        decision: args.decision.map(|d| match d {
            DecisionArg::Freeze => DecisionKind::Freeze,
            DecisionArg::Alert => DecisionKind::Alert,
            DecisionArg::Outreach => DecisionKind::Outreach,
        }),
        customer: args.customer,
        from_beginning: args.from_beginning,
    };
    vigil_engine::tail::tail(topic, filter, &config.fluvio).await
}

async fn create_topics(
    partitions: u32,
    prefix: &str,
    config: Option<&PathBuf>,
) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let fluvio = vigil_engine::broker::connect(&config.fluvio).await?;
    for (topic, created) in vigil_engine::broker::create_topics(&fluvio, prefix, partitions).await?
    {
        let what = if created { "created" } else { "exists" };
        eprintln!("{topic}: {what}");
    }
    Ok(())
}
