//! The `vigil` binary: `vigil run` scores a stream (with no arguments it runs the built-in
//! demo scenario), `vigil train` fits a model from labelled history with the engine's own
//! feature code, `vigil score` lists every customer's churn score as of a time, `vigil replay` backtests a candidate model (and a challenger) on history
//! through the full engine, and `produce`, `tail` and `topics create` work with Fluvio topics.
//! Each command's arguments live beside it in `commands/`.

mod commands;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use commands::{produce, replay, run, score, tail, topics, train, webhook};

/// Millions of short-lived actors and their messages churn small allocations across threads;
/// glibc's allocator spent a fifth of the million-customer run in malloc and its arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Run(run::RunArgs),
    /// Train a model from labelled history with the engine's feature code.
    Train(train::TrainArgs),
    /// Score every customer in history for churn as of a time, quiet ones included: the
    /// churn list, evaluated against a horizon when one is given.
    Score(score::ScoreArgs),
    /// Run labelled history through the full engine with a candidate model (and a challenger)
    /// and report decisions and quality, without side effects.
    Replay(replay::ReplayArgs),
    /// Load events (JSON lines or a scenario) into a Fluvio topic, keyed by customer id.
    Produce(produce::ProduceArgs),
    /// Follow a decision topic without gaps: readable or JSON, filtered, resumable.
    Tail(tail::TailArgs),
    /// Manage the Fluvio topics Vigil uses.
    Topics {
        #[command(subcommand)]
        command: topics::TopicsCommand,
    },
    /// Work with webhook deliveries: verify a saved request's signature.
    Webhook {
        #[command(subcommand)]
        command: webhook::WebhookCommand,
    },
}

#[tokio::main]
async fn main() {
    vigil::keep_freed_memory();
    let cli = Cli::parse();
    // No subcommand means `vigil run` with its defaults.
    let command = cli.command.unwrap_or_else(|| {
        Cli::parse_from(["vigil", "run"])
            .command
            .expect("`run` parses to a command")
    });
    let log_filter = match &command {
        Command::Tail(args) => args.log_filter(),
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| log_filter.into()))
        .with_writer(std::io::stderr)
        .init();
    let result = match command {
        Command::Run(args) => run::execute(args).await,
        Command::Train(args) => train::execute(args).await,
        Command::Replay(args) => replay::execute(args).await,
        Command::Score(args) => score::execute(args).await,
        Command::Produce(args) => produce::execute(args).await,
        Command::Tail(args) => tail::execute(args).await,
        Command::Topics { command } => topics::execute(command).await,
        Command::Webhook { command } => webhook::execute(command).await,
    };
    if let Err(e) = result {
        eprintln!("vigil: {e:#}");
        std::process::exit(1);
    }
}
