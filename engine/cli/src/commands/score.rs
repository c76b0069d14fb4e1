//! `vigil score`: every customer's churn score as of a time, as CSV, and with a horizon the
//! list's quality against who really went quiet.

use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;
use vigil::score::{self, ScoreOptions};

use super::{parse_event_time, ConfigArgs};

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    /// The churn model; fraud is scored per payment, as it happens.
    Churn,
}

#[derive(clap::Args)]
pub struct ScoreArgs {
    #[arg(long, value_enum)]
    kind: KindArg,
    /// History: file:EVENTS.jsonl, file:HISTORY.csv with --mapping, generate:SCENARIO.toml or -.
    #[arg(long)]
    input: String,
    /// Column mapping (TOML) for a CSV --input file:PATH.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// Score as of this time (UTC: 2026-10-01, 2026-10-01 12:00:00 or RFC 3339); only events
    /// before it are read.
    #[arg(long, value_parser = parse_event_time)]
    at: i64,
    /// Label each customer churned when they do nothing within this long after --at (e.g. 30d),
    /// and print the list's ROC AUC, AUPRC and precision in its top tenth.
    #[arg(long, value_parser = humantime::parse_duration)]
    horizon: Option<std::time::Duration>,
    /// The churn model artifact; defaults to models.churn in the configuration.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Where to write `customer_id,score,top_reason`, highest score first.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    config: ConfigArgs,
}

pub async fn execute(args: ScoreArgs) -> anyhow::Result<()> {
    let KindArg::Churn = args.kind;
    let config = args.config.load()?;
    let options = ScoreOptions {
        model: args.model.unwrap_or_else(|| config.models.churn_path()),
        input: args.input,
        mapping: args.mapping,
        at: args.at,
        horizon: args.horizon.map(|h| h.as_millis() as i64),
        config,
    };
    let report = score::score(&options).await.context("scoring failed")?;
    score::write_csv(&report, &args.out)?;
    eprintln!("{}", score::describe(&report));
    eprintln!("Wrote {}.", args.out.display());
    Ok(())
}
