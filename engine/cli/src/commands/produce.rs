//! `vigil produce`: load events from any source into a Fluvio topic, or write them to a JSON
//! Lines file (`--to file:PATH`) for replays and side-by-side runs with other engines.

use vigil_fluvio::produce;

use super::ConfigArgs;

#[derive(clap::Args)]
pub struct ProduceArgs {
    /// Events: generate:SCENARIO.toml, file:EVENTS.jsonl or -.
    #[arg(long)]
    from: String,
    /// Destination: fluvio:TOPIC (keyed by customer id), file:PATH (JSON lines) or stdout.
    #[arg(long)]
    to: String,
    /// Records per second; as fast as possible when left out.
    #[arg(long)]
    rate: Option<u64>,
    #[command(flatten)]
    config: ConfigArgs,
}

pub async fn execute(args: ProduceArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let produced = produce::produce(
        &vigil::connectors(),
        &args.from,
        &args.to,
        args.rate,
        &config,
    )
    .await?;
    eprintln!(
        "Produced {} records to {} in {:.1} s ({} without a customer key).",
        produced.records,
        args.to,
        produced.elapsed.as_secs_f64(),
        produced.unkeyed
    );
    Ok(())
}
