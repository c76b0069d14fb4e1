//! `--fluvio`: the run goes through a real Fluvio cluster. A producer task sends the scenario's
//! records, on its schedule, to the one-partition topic `vigil-bench-events`; the engine reads
//! them with its Fluvio source and publishes decisions to `vigil-bench-decisions`. Latency
//! still starts at each record's intended send time: the producer notes every record's stamp
//! before sending it, and the engine's source is wrapped to put the stamp back on the record it
//! reads at the matching offset, so time spent producing, in the broker and in the consumer
//! is all counted.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::task::JoinHandle;
use vigil_engine::event::Offsets;
use vigil_engine::sink::{Sink, SinkRecord};
use vigil_engine::source::{PartitionChoice, Source, SourceOptions, SourceRecord};
use vigil_engine::Error;
use vigil_fluvio::client;
use vigil_fluvio::sink::FluvioSink;
use vigil_fluvio::source::FluvioSource;
use vigil_scenario::{Generator, GeneratorSource};

use crate::runner::{Feed, Plan};

/// The topics' prefix; `create_topics` adds the role.
const PREFIX: &str = "vigil-bench";

/// The producer side of a Fluvio run, and the engine's feed.
pub struct FluvioLeg {
    pub feed: Feed,
    /// Resolves to the number of records produced.
    pub producer: JoinHandle<anyhow::Result<u64>>,
}

/// Creates the topics if needed, notes where the events topic ends, starts the producer and
/// opens the engine's source and decision sink.
pub async fn start(plan: &Plan) -> anyhow::Result<FluvioLeg> {
    let fluvio = client::connect(&plan.config.fluvio).await?;
    vigil_fluvio::topics::create_topics(&fluvio, PREFIX, 1).await?;
    let events = format!("{PREFIX}-events");
    let base = client::end_offsets(&fluvio, &events)
        .await?
        .get(&0)
        .copied()
        .unwrap_or(0);
    let records = Generator::new(plan.scenario.clone()).count() as u64;

    let stamps = Arc::new(Mutex::new(Vec::with_capacity(records as usize)));
    let generator = GeneratorSource::new(plan.scenario.clone(), plan.path.clone());
    let pacing = generator.pacing();
    let producer = {
        let stamps = stamps.clone();
        let topic = events.clone();
        let config = plan.config.fluvio.clone();
        tokio::spawn(async move { produce(generator, &topic, &config, &stamps).await })
    };
    let inner = FluvioSource::open(
        &events,
        SourceOptions {
            resume: Offsets::from([(0, base)]),
            partitions: PartitionChoice::Listed(vec![0]),
            ..SourceOptions::new(&plan.config)
        },
    )
    .await?;
    let decisions = FluvioSink::open(&format!("{PREFIX}-decisions"), &plan.config.fluvio).await?;
    Ok(FluvioLeg {
        feed: Feed {
            source: Some(Box::new(StampedSource {
                inner: Box::new(inner),
                base,
                stamps,
            })),
            decisions: Some(Box::new(decisions)),
            records: Some(records),
            pacing: Some(pacing),
        },
        producer,
    })
}

/// Sends the generator's records, paced by its schedule, noting each one's intended send time
/// before it leaves.
async fn produce(
    mut generator: GeneratorSource,
    topic: &str,
    config: &vigil_engine::config::FluvioConfig,
    stamps: &Mutex<Vec<Instant>>,
) -> anyhow::Result<u64> {
    let mut sink = FluvioSink::open(topic, config).await?;
    let (mut batch, mut records) = (Vec::new(), Vec::new());
    let mut produced = 0;
    loop {
        batch.clear();
        let more = generator.next_batch(&mut batch).await?;
        stamps
            .lock()
            .expect("stamps poisoned")
            .extend(batch.iter().map(|r| r.ingested));
        records.clear();
        records.extend(batch.iter().map(|r| SinkRecord {
            key: Bytes::new(),
            value: r.payload.clone(),
        }));
        // The producer's linger batches the sends; flushing here would wait a round trip.
        sink.send(&records).await?;
        produced += records.len() as u64;
        if !more {
            break;
        }
    }
    sink.flush().await?;
    Ok(produced)
}

/// The engine's Fluvio source, with each record's intended send time put back.
struct StampedSource {
    inner: Box<dyn Source>,
    /// The events topic's end when the run began: the producer's first record lands there.
    base: u64,
    stamps: Arc<Mutex<Vec<Instant>>>,
}

#[async_trait]
impl Source for StampedSource {
    async fn next_batch(&mut self, batch: &mut Vec<SourceRecord>) -> vigil_engine::Result<bool> {
        let first = batch.len();
        let more = self.inner.next_batch(batch).await?;
        let stamps = self.stamps.lock().expect("stamps poisoned");
        for record in &mut batch[first..] {
            let n = record.position.offset.checked_sub(self.base);
            record.ingested = *n.and_then(|n| stamps.get(n as usize)).ok_or_else(|| {
                Error::Bug(format!(
                    "{}: offset {} was not produced by this run (it began at {})",
                    self.inner.describe(),
                    record.position.offset,
                    self.base
                ))
            })?;
        }
        Ok(more)
    }

    fn backlog(&self) -> Vec<(u32, u64)> {
        self.inner.backlog()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}
