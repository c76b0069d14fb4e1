//! `vigil replay`: labelled history through the full engine with a candidate model (and a
//! challenger), reported as decisions and quality, with no side effects.

use std::path::PathBuf;

use anyhow::Context;
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
    #[arg(long)]
    model: PathBuf,
    /// A second artifact of the same kind, scored beside it in shadow.
    #[arg(long)]
    challenger: Option<PathBuf>,
    /// The JSON report. Decisions, shadow decisions and dead letters are written beside it
    /// (REPORT.decisions.jsonl, REPORT.shadow.jsonl, REPORT.dead-letters.jsonl).
    #[arg(long)]
    report: PathBuf,
    /// Thresholds, rules, budget, late tolerance.
    #[command(flatten)]
    config: ConfigArgs,
}

pub async fn execute(args: ReplayArgs) -> anyhow::Result<()> {
    let options = ReplayOptions {
        input: args.input,
        mapping: args.mapping,
        model: args.model,
        challenger: args.challenger,
        report: args.report.clone(),
        config: args.config.load()?,
    };
    let report = replay::replay(options).await.context("replay failed")?;
    eprint!("{}", replay::describe(&report));
    eprintln!("Wrote {}.", args.report.display());
    Ok(())
}
