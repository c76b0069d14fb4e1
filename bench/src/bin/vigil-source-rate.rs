//! `vigil-source-rate SPEC --records N`: reads N records through one of the engine's sources
//! and does nothing else with them (no decoding, no actors, no publishing), then prints the
//! rate. It is the source's own ceiling, to set beside the broker's own consumer reading the
//! same topic (`bench/peers/fluvio-consume.sh`).
//!
//! A Fluvio source reads from each partition's start under a consumer name of its own, so it
//! neither uses nor moves the engine's consumer offsets.

use std::time::Instant;

use clap::Parser;
use vigil_engine::config::{Config, Layers};
use vigil_engine::source::SourceOptions;

/// As in the engine's own binaries.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "vigil-source-rate",
    about = "Read records through one of the engine's sources, and nothing else, and print the rate."
)]
struct Cli {
    /// The source, as `vigil run --source` takes it (e.g. fluvio:vigil-events).
    source: String,
    /// Stop after this many records (a Fluvio topic never ends).
    #[arg(long)]
    records: u64,
    /// Engine configuration, layered over the built-in defaults.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// One engine configuration key, over the file and the environment (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vigil::keep_freed_memory();
    let cli = Cli::parse();
    let config = Config::load(&Layers::from_process(cli.config, cli.set))?;
    let mut options = SourceOptions::new(&config);
    options.fluvio.consumer = format!("vigil-source-rate-{}", std::process::id());
    let mut source = vigil::connectors()
        .open_source(&cli.source, options)
        .await?;
    let (mut batch, mut read, mut bytes) = (Vec::new(), 0u64, 0u64);
    let mut started = None;
    while read < cli.records {
        batch.clear();
        let more = source.next_batch(&mut batch).await?;
        // The clock starts with the first record, not with connecting.
        started.get_or_insert_with(Instant::now);
        read += batch.len() as u64;
        bytes += batch.iter().map(|r| r.payload.len() as u64).sum::<u64>();
        if !more {
            break;
        }
    }
    let took = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    println!(
        "{}: {read} records ({:.1} MB) in {took:.2} s = {:.0} records/s",
        source.describe(),
        bytes as f64 / 1e6,
        read as f64 / took.max(1e-9)
    );
    anyhow::ensure!(
        read >= cli.records,
        "{} ended after {read} of {} records",
        source.describe(),
        cli.records
    );
    Ok(())
}
