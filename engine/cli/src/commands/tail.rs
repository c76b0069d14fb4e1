//! `vigil tail`: follow a decision topic in a readable form.

use anyhow::Context;
use clap::ValueEnum;
use vigil_engine::decision::DecisionKind;
use vigil_fluvio::tail::{self, TailFilter};

use super::ConfigArgs;

#[derive(Clone, Copy, ValueEnum)]
enum DecisionArg {
    Freeze,
    Alert,
    Outreach,
}

#[derive(clap::Args)]
pub struct TailArgs {
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
    #[command(flatten)]
    config: ConfigArgs,
}

pub async fn execute(args: TailArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let topic = args
        .topic
        .strip_prefix("fluvio:")
        .context("tail follows a Fluvio topic: fluvio:TOPIC")?;
    let filter = TailFilter {
        decision: args.decision.map(|d| match d {
            DecisionArg::Freeze => DecisionKind::Freeze,
            DecisionArg::Alert => DecisionKind::Alert,
            DecisionArg::Outreach => DecisionKind::Outreach,
        }),
        customer: args.customer,
        from_beginning: args.from_beginning,
    };
    tail::tail(topic, filter, &config.fluvio).await?;
    Ok(())
}
