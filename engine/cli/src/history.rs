//! Reading history for `vigil train` and `vigil score`: a source spec (a CSV file with its column
//! mapping, JSON Lines, the generator) replayed through the engine's own decoder, one event at a
//! time in stream order, with a progress spinner on the terminal.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use vigil_engine::config::Config;
use vigil_engine::decode::Decoder;
use vigil_engine::event::Event;
use vigil_engine::source::SourceOptions;

use crate::connectors;

/// Calls `each` with every event of `input` (read through `mapping` when it is CSV) that
/// decodes, in stream order. Returns how many records did not decode, as live would
/// dead-letter them.
pub async fn replay_events(
    input: &str,
    mapping: Option<PathBuf>,
    config: &Config,
    mut each: impl FnMut(Event),
) -> anyhow::Result<u64> {
    let source_options = SourceOptions {
        mapping,
        ..SourceOptions::new(config)
    };
    let mut source = connectors().open_source(input, source_options).await?;
    let decoder = Decoder::for_format(&source.format())?;
    let max_bytes = config.engine.max_record_bytes;
    let progress = ProgressBar::new_spinner().with_message(format!("replaying {input}"));
    progress.set_style(
        ProgressStyle::with_template("{spinner} {msg}: {human_pos} records ({per_sec}, {elapsed})")
            .expect("valid template"),
    );
    progress.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut undecodable = 0;
    let mut batch = Vec::new();
    loop {
        batch.clear();
        let more = source.next_batch(&mut batch).await?;
        progress.inc(batch.len() as u64);
        for record in &batch {
            match decoder.decode(&record.payload, max_bytes, record.position.offset) {
                Ok(event) => each(event),
                Err(_) => undecodable += 1,
            }
        }
        if !more {
            break;
        }
    }
    progress.finish_and_clear();
    Ok(undecodable)
}
