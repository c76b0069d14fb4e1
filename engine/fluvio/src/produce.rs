//! `vigil produce`: loads a history (JSON lines, stdin), a generated scenario or customer
//! profiles into a Fluvio topic (or any sink), keyed by customer id so every customer lands on
//! one partition, in order, optionally paced to a rate. Records that do not decode as events
//! are produced as they are, keyed by their `customer_id` field when they have one (a profile
//! record), else by their `value` (a list change), and without a key otherwise, so the engine dead-letters bad input exactly as it
//! would anywhere.

use std::time::{Duration, Instant};

use vigil_engine::config::Config;
use vigil_engine::decode::decode;
use vigil_engine::event::MAX_BATCH;
use vigil_engine::pipeline::Connectors;
use vigil_engine::sink::SinkRecord;
use vigil_engine::source::SourceOptions;
use vigil_engine::Result;

/// What a produce run sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Produced {
    pub records: u64,
    pub unkeyed: u64,
    pub elapsed: Duration,
}

/// Sends every record of the source `from` to the sink `to` (`fluvio:TOPIC`, or any other
/// sink spec), both opened through `connectors`.
pub async fn produce(
    connectors: &Connectors,
    from: &str,
    to: &str,
    rate: Option<u64>,
    config: &Config,
) -> Result<Produced> {
    let options = SourceOptions::new(config);
    let mut source = connectors.open_source(from, options).await?;
    let mut sink = connectors.open_sink(to, config).await?;
    let started = Instant::now();
    let mut produced = Produced::default();
    let mut batch = Vec::new();
    let mut records = Vec::new();
    loop {
        batch.clear();
        let more = source.next_batch(&mut batch).await?;
        records.clear();
        for record in &batch {
            let customer_id = match decode(&record.payload, config.engine.max_record_bytes) {
                Ok(event) => Some(event.customer_id),
                Err(_) => reference_key(&record.payload),
            };
            let key = match customer_id {
                Some(id) => bytes::Bytes::from(id.into_bytes()),
                None => {
                    produced.unkeyed += 1;
                    bytes::Bytes::new()
                }
            };
            records.push(SinkRecord {
                key,
                value: record.payload.clone(),
            });
        }
        for chunk in records.chunks(pace_chunk(rate)) {
            if let Some(rate) = rate.filter(|r| *r > 0) {
                let due = started + Duration::from_secs_f64(produced.records as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
            }
            sink.send(chunk).await?;
            produced.records += chunk.len() as u64;
        }
        if !more {
            break;
        }
    }
    sink.flush().await?;
    produced.elapsed = started.elapsed();
    Ok(produced)
}

/// The key of a JSON object that is not an event: its `customer_id` (a profile record), else
/// its `value` (a list change, so that the changes to one value stay in order).
fn reference_key(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Keyed {
        customer_id: Option<String>,
        value: Option<String>,
    }
    let keyed = serde_json::from_slice::<Keyed>(payload).ok()?;
    keyed
        .customer_id
        .or(keyed.value)
        .filter(|key| !key.is_empty())
}

/// Paced sends go out in small groups so the rate holds within about 10 ms.
fn pace_chunk(rate: Option<u64>) -> usize {
    match rate {
        Some(r) if r > 0 => ((r / 100) as usize).clamp(1, MAX_BATCH),
        _ => MAX_BATCH,
    }
}
