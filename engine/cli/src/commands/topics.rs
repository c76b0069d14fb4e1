//! `vigil topics create`: the Fluvio topics a Vigil deployment uses.

use clap::Subcommand;
use vigil_fluvio::{client, topics};

use super::ConfigArgs;

#[derive(Subcommand)]
pub enum TopicsCommand {
    /// Create {prefix}-events, -decisions, -dead-letters, -shadow, -profiles, -lists and
    /// -feedback.
    Create {
        #[arg(long, default_value_t = 2)]
        partitions: u32,
        #[arg(long, default_value = "vigil")]
        prefix: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub async fn execute(command: TopicsCommand) -> anyhow::Result<()> {
    let TopicsCommand::Create {
        partitions,
        prefix,
        config,
    } = command;
    let config = config.load()?;
    let fluvio = client::connect(&config.fluvio).await?;
    for (topic, created) in topics::create_topics(&fluvio, &prefix, partitions).await? {
        let what = if created { "created" } else { "exists" };
        eprintln!("{topic}: {what}");
    }
    Ok(())
}
