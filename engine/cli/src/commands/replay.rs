//! `vigil replay`: labelled history through the full engine with a candidate model (and a
//! challenger), or under a candidate policy (a backtest against today's), reported as
//! decisions and quality, with no side effects.

use std::path::PathBuf;

use anyhow::Context;
use vigil::backtest::{self, BacktestOptions};
use vigil::replay::{self, ReplayOptions};

use super::ConfigArgs;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Labelled history: file:EVENTS.jsonl, file:HISTORY.csv with --mapping, or generate:SCENARIO.toml.
    #[arg(long)]
    input: String,
    /// Column mapping (TOML) for a CSV input.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// The model artifact to replay as champion; its kind says which model it stands in for.
    #[arg(long, required_unless_present = "policy", conflicts_with = "policy")]
    model: Option<PathBuf>,
    /// A second artifact of the same kind, scored beside it in shadow.
    #[arg(long, requires = "model")]
    challenger: Option<PathBuf>,
    /// A candidate policy file to backtest against today's policy, with the models in force:
    /// the decision diff, precision and recall per action, alert rates and each rule's
    /// firings and precision. Each run's decisions go beside the report
    /// (REPORT.current.decisions.jsonl, REPORT.candidate.decisions.jsonl).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Analysts' verdicts from the risk console (its feedback file): the report adds, per fraud
    /// action, how many decisions analysts reviewed and the precision they confirmed.
    #[arg(long, value_name = "FEEDBACK.jsonl", requires = "model")]
    labels: Option<PathBuf>,
    /// The JSON report. Decisions, shadow decisions and dead letters are written beside it
    /// (REPORT.decisions.jsonl, REPORT.shadow.jsonl, REPORT.dead-letters.jsonl).
    #[arg(long)]
    report: PathBuf,
    /// Thresholds, rules, budget, late tolerance.
    #[command(flatten)]
    config: ConfigArgs,
}

pub async fn execute(args: ReplayArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    if let Some(policy) = args.policy {
        let options = BacktestOptions {
            input: args.input,
            mapping: args.mapping,
            policy,
            report: args.report.clone(),
            config,
        };
        let report = backtest::backtest(options)
            .await
            .context("backtest failed")?;
        eprint!("{}", backtest::describe(&report));
        eprintln!("Wrote {}.", args.report.display());
        return Ok(());
    }
    let options = ReplayOptions {
        input: args.input,
        mapping: args.mapping,
        model: args.model.expect("clap requires --model without --policy"),
        challenger: args.challenger,
        report: args.report.clone(),
        labels: args.labels,
        config,
    };
    let report = replay::replay(options).await.context("replay failed")?;
    eprint!("{}", replay::describe(&report));
    eprintln!("Wrote {}.", args.report.display());
    Ok(())
}
