//! The cost of the architecture, measured: the scenario's records, generated once into memory,
//! go (1) through the whole engine as fast as it takes them (actors, router, publisher, in-flight
//! limits) and (2) through the same decoding, feature, model, policy and decision-building code
//! in a plain single-threaded loop with one hash map of customer states and no I/O. Engine
//! capacity as a fraction of the loop's throughput is what the architecture costs (or, with
//! two cores, earns).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use vigil_engine::config::Config;
use vigil_engine::dead_letter::DeadLetter;
use vigil_engine::decode::decode;
use vigil_engine::event::{Inbound, Position, MAX_BATCH};
use vigil_engine::outcome::Outcome;
use vigil_engine::pipeline::watermark::NO_WATERMARK;
use vigil_engine::pipeline::{self, Endpoints, RunOptions};
use vigil_engine::publish::records::dead_letter_json;
use vigil_engine::scoring::{CustomerState, Scoring};
use vigil_engine::source::{Source, SourceRecord};
use vigil_engine::telemetry::Telemetry;
use vigil_scenario::{Generator, Scenario};

/// Engine capacity against the plain loop, on the same records.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Capacity {
    pub records: u64,
    /// Records per second through the whole engine, unpaced.
    pub engine: f64,
    /// Records per second through the plain loop.
    pub baseline: f64,
}

impl Capacity {
    /// Engine throughput as a fraction of the plain loop's.
    pub fn ratio(&self) -> f64 {
        self.engine / self.baseline
    }
}

/// Measures both on the scenario's records.
pub async fn measure(scenario: &Scenario, config: &Config) -> anyhow::Result<Capacity> {
    let records: Arc<[Bytes]> = Generator::new(scenario.clone())
        .map(|r| Bytes::from(r.payload))
        .collect();
    let baseline = {
        let (records, config) = (records.clone(), config.clone());
        tokio::task::spawn_blocking(move || plain_loop(&records, &config)).await??
    };
    let options = RunOptions::new(config.clone(), "memory", "discard", "discard");
    let endpoints = Endpoints {
        source: Some(Box::new(ReplaySource {
            records: records.clone(),
            next: 0,
        })),
        ..Endpoints::default()
    };
    let started = Instant::now();
    let summary = pipeline::run_with(options, endpoints, std::future::pending()).await?;
    let engine = started.elapsed();
    let n = records.len() as u64;
    anyhow::ensure!(
        summary.records == n,
        "the engine published {} of {n} records",
        summary.records
    );
    Ok(Capacity {
        records: n,
        engine: per_second(n, engine),
        baseline: per_second(n, baseline),
    })
}

fn per_second(records: u64, took: Duration) -> f64 {
    records as f64 / took.as_secs_f64().max(1e-9)
}

/// Every record through decode, the customer's state and the decision or dead letter as the
/// publisher would serialise it, in one thread.
pub fn plain_loop(records: &[Bytes], config: &Config) -> anyhow::Result<Duration> {
    let scoring = Scoring::from_config(config, Telemetry::new())?;
    let max_record_bytes = config.engine.max_record_bytes;
    let keep = config.engine.dead_letter_raw_bytes;
    let mut customers: HashMap<String, CustomerState> = HashMap::new();
    let mut written = 0usize;
    let started = Instant::now();
    for (offset, raw) in records.iter().enumerate() {
        let position = Position {
            partition: 0,
            offset: offset as u64,
        };
        let event = match decode(raw, max_record_bytes) {
            Ok(event) => event,
            Err(rejection) => {
                let letter = DeadLetter {
                    rejection,
                    raw: raw.clone(),
                    position: Some(position),
                    cut: None,
                };
                written += dead_letter_json(&letter, keep).len();
                continue;
            }
        };
        if !customers.contains_key(&event.customer_id) {
            customers.insert(event.customer_id.clone(), CustomerState::default());
        }
        let state = customers
            .get_mut(&event.customer_id)
            .expect("inserted above");
        // No watermark: the baseline measures event processing, which inactivity checks do not
        // touch.
        let inbound = Inbound {
            watermark: NO_WATERMARK,
            event,
            position,
            ingested: Instant::now(),
            raw: raw.clone(),
        };
        written += match state.process(&inbound, &scoring) {
            Outcome::Scored {
                decision: Some(d), ..
            } => d.to_json().len(),
            Outcome::Scored { decision: None, .. } => 0,
            Outcome::Rejected { letter, .. } => dead_letter_json(&letter, keep).len(),
        };
    }
    black_box(written);
    Ok(started.elapsed())
}

/// Pre-generated records handed to the engine as fast as it takes them.
struct ReplaySource {
    records: Arc<[Bytes]>,
    next: usize,
}

#[async_trait]
impl Source for ReplaySource {
    async fn next_batch(&mut self, batch: &mut Vec<SourceRecord>) -> vigil_engine::Result<bool> {
        let end = (self.next + MAX_BATCH).min(self.records.len());
        let ingested = Instant::now();
        for offset in self.next..end {
            batch.push(SourceRecord {
                position: Position {
                    partition: 0,
                    offset: offset as u64,
                },
                payload: self.records[offset].clone(),
                ingested,
                cut: None,
            });
        }
        self.next = end;
        Ok(end < self.records.len())
    }

    fn backlog(&self) -> Vec<(u32, u64)> {
        vec![(0, (self.records.len() - self.next) as u64)]
    }

    fn describe(&self) -> String {
        "pre-generated records".to_owned()
    }
}
