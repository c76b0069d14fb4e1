//! Reading history for `vigil train` and `vigil score`: a source spec (a CSV file with its column
//! mapping, JSON Lines, the generator) replayed through the engine's own decoder, one event at a
//! time in stream order, with a progress spinner on the terminal (`replay_events`), and folded
//! into every customer's features as the live actors keep them (`CustomerHistories`).

use std::collections::HashMap;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use vigil_engine::config::Config;
use vigil_engine::decode::Decoder;
use vigil_engine::event::Event;
use vigil_engine::scoring::features::{CustomerFeatures, Observation};
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

/// Every customer's rolling features as history goes by: one `CustomerFeatures` per customer,
/// with the live late tolerance, and a count of the events refused as late.
pub struct CustomerHistories {
    customers: HashMap<String, CustomerFeatures>,
    late_tolerance_ms: i64,
    late: u64,
}

impl CustomerHistories {
    pub fn new(config: &Config) -> Self {
        CustomerHistories {
            customers: HashMap::new(),
            late_tolerance_ms: config.engine.late_tolerance.as_millis() as i64,
            late: 0,
        }
    }

    /// Folds `event` into its customer's features and returns what it observed, or `None`
    /// when it is refused as late (and counted).
    pub fn observe(&mut self, event: &Event) -> Option<Observation> {
        let features = self
            .customers
            .entry(event.customer_id.clone())
            .or_insert_with(|| CustomerFeatures::new(event.ts));
        let observed = features.observe(event, self.late_tolerance_ms).ok();
        self.late += u64::from(observed.is_none());
        observed
    }

    /// Events refused as late so far.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Every customer seen, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &CustomerFeatures)> {
        self.customers.iter()
    }
}
