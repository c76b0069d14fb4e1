//! The Fluvio source (`fluvio:TOPIC`): one consumer stream per partition, each in its own task
//! (a single stream over several partitions tracks one next offset for all of them and skips
//! records after a reconnect), feeding one bounded channel that `next_batch` drains.
//!
//! Where to start: from the engine's checkpoint when there is one (`Offset::absolute`), else
//! from the partition's Fluvio consumer offset (`{consumer}-{topic}-{partition}`, resumed at
//! stored + 1), else from the beginning. The consumer offset is advanced with the manual
//! strategy, and only at a barrier: every `fluvio.commit_interval`, right after a record was
//! yielded and handed on, the task waits until the publisher's watermark has passed that
//! record, then commits and flushes. The consumer offset therefore never runs ahead of
//! published decisions, and a commit never follows an abandoned `next()`.
//!
//! The consumer can also skip records: a fetch that ends inside a producer batch moves the
//! stream past the rest of that batch (seen here with a real cluster: about 5% of records lost
//! with 64 KiB batches, more with larger ones). Offsets in a partition are contiguous, so a
//! record whose offset is above the one expected means records were skipped: the task drops
//! the stream and reopens it at the first missing offset.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use fluvio::consumer::{ConsumerConfigExtBuilder, ConsumerStream, OffsetManagementStrategy};
use fluvio::{Fluvio, Offset};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use vigil_engine::event::{Offsets, Position, MAX_BATCH};
use vigil_engine::source::{Source, SourceOptions, SourceRecord};

use crate::client;
use crate::error::{Error, Result};

/// Records buffered between the partition tasks and the pipeline.
const CHANNEL_CAPACITY: usize = 4 * MAX_BATCH;
/// How often partition end offsets are read for lag.
const END_OFFSETS_PERIOD: Duration = Duration::from_secs(1);
/// `next` of a partition that has neither a checkpoint nor a record read yet.
const NOT_YET_READ: u64 = u64::MAX;
/// Wait before reopening a partition stream that failed.
const REOPEN_BACKOFF: Duration = Duration::from_millis(500);

pub struct FluvioSource {
    spec: String,
    records: mpsc::Receiver<SourceRecord>,
    /// Per partition, the next offset to read.
    next_offsets: BTreeMap<u32, Arc<AtomicU64>>,
    /// Per partition, the end offset last read from the cluster.
    end_offsets: Arc<Mutex<Offsets>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FluvioSource {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What every partition task shares.
#[derive(Clone)]
struct PartitionReader {
    fluvio: Arc<Fluvio>,
    topic: String,
    consumer: String,
    records: mpsc::Sender<SourceRecord>,
    committed: Option<watch::Receiver<Offsets>>,
    commit_interval: Duration,
}

impl FluvioSource {
    pub async fn open(topic: &str, options: SourceOptions) -> Result<Self> {
        let fluvio = client::connect(&options.fluvio).await?;
        let count = client::partition_count(&fluvio, topic).await?;
        let partitions = match &options.partitions {
            Some(chosen) => {
                if let Some(&partition) = chosen.iter().find(|p| **p >= count) {
                    return Err(Error::NoPartition {
                        topic: topic.to_owned(),
                        partition,
                        count,
                    });
                }
                chosen.clone()
            }
            None => (0..count).collect(),
        };
        let (tx, records) = mpsc::channel(CHANNEL_CAPACITY);
        let reader = PartitionReader {
            fluvio: fluvio.clone(),
            topic: topic.to_owned(),
            consumer: options.fluvio.consumer.clone(),
            records: tx,
            committed: options.committed.clone(),
            commit_interval: options.fluvio.commit_interval,
        };
        let mut tasks = Vec::new();
        let mut next_offsets = BTreeMap::new();
        for partition in partitions {
            let resume = options.resume.get(&partition).copied();
            let next = Arc::new(AtomicU64::new(resume.unwrap_or(NOT_YET_READ)));
            next_offsets.insert(partition, next.clone());
            tasks.push(tokio::spawn(reader.clone().run(partition, resume, next)));
        }
        let end_offsets = Arc::new(Mutex::new(Offsets::new()));
        tasks.push(tokio::spawn(watch_end_offsets(
            fluvio,
            topic.to_owned(),
            end_offsets.clone(),
        )));
        tracing::info!(topic, partitions = ?next_offsets.keys().collect::<Vec<_>>(), "Consuming from Fluvio.");
        Ok(FluvioSource {
            spec: format!("fluvio:{topic}"),
            records,
            next_offsets,
            end_offsets,
            tasks,
        })
    }
}

impl PartitionReader {
    fn offset_consumer(&self, partition: u32) -> String {
        format!("{}-{}-{partition}", self.consumer, self.topic)
    }

    /// Reads one partition for as long as the source lives, reopening the stream after errors.
    async fn run(self, partition: u32, resume: Option<u64>, next: Arc<AtomicU64>) {
        let mut start = resume.map(|o| o as i64);
        loop {
            match self.read(partition, start, &next).await {
                Ok(()) => return,
                Err(error) => {
                    // Before the first record, reopen where the first open did (the stored
                    // consumer offset), not at 0.
                    start = match next.load(Ordering::Relaxed) {
                        NOT_YET_READ => start,
                        next => Some(next as i64),
                    };
                    if let Error::Skipped { from, to } = error {
                        tracing::debug!(
                            partition,
                            from,
                            to,
                            "Fluvio stream skipped records; re-reading them."
                        );
                        continue;
                    }
                    tracing::warn!(partition, %error, "Fluvio partition stream failed; reopening.");
                    tokio::time::sleep(REOPEN_BACKOFF).await;
                }
            }
        }
    }

    /// Streams one partition from `start` (or the stored consumer offset); `Ok` means the
    /// pipeline no longer wants records.
    async fn read(&self, partition: u32, start: Option<i64>, next: &AtomicU64) -> Result<()> {
        let offset_start = match start {
            Some(o) => Offset::absolute(o).map_err(|e| Error::client("bad start offset", e))?,
            None => Offset::beginning(),
        };
        let config = ConsumerConfigExtBuilder::default()
            .topic(self.topic.clone())
            .partition(partition)
            .offset_consumer(self.offset_consumer(partition))
            .offset_start(offset_start)
            .offset_strategy(OffsetManagementStrategy::Manual)
            .build()
            .map_err(|e| Error::client("invalid consumer settings", e))?;
        let mut stream = Box::pin(
            self.fluvio
                .consumer_with_config(config)
                .await
                .map_err(|e| Error::client("cannot open the consumer stream", e))?,
        );
        let mut last_commit = Instant::now();
        let mut committed = self.committed.clone();
        let mut expected = start.map(|o| o as u64);
        while let Some(item) = stream.next().await {
            let record = item.map_err(|code| Error::client("consumer stream", code))?;
            let offset = record.offset().max(0) as u64;
            match expected {
                Some(e) if offset < e => continue,
                Some(e) if offset > e => {
                    return Err(Error::Skipped {
                        from: e,
                        to: offset,
                    })
                }
                _ => {}
            }
            expected = Some(offset + 1);
            let source_record = SourceRecord {
                position: Position { partition, offset },
                payload: Bytes::copy_from_slice(record.value()),
                ingested: Instant::now(),
            };
            if self.records.send(source_record).await.is_err() {
                return Ok(());
            }
            next.store(offset + 1, Ordering::Relaxed);
            if last_commit.elapsed() >= self.commit_interval {
                if let Some(committed) = committed.as_mut() {
                    // Barrier: this record is handed on; once everything up to it is
                    // published, the consumer offset may move to it.
                    let published = committed
                        .wait_for(|resume| resume.get(&partition).is_some_and(|r| *r > offset))
                        .await
                        .is_ok();
                    if !published {
                        return Ok(());
                    }
                    stream
                        .offset_commit()
                        .await
                        .map_err(|e| Error::client("offset commit", e))?;
                    stream
                        .offset_flush()
                        .await
                        .map_err(|e| Error::client("offset flush", e))?;
                    tracing::debug!(partition, offset, "Committed Fluvio consumer offset.");
                }
                last_commit = Instant::now();
            }
        }
        Err(Error::Client {
            what: "consumer stream".into(),
            detail: "the stream ended".into(),
        })
    }
}

/// Keeps the partitions' end offsets fresh for consumer lag.
async fn watch_end_offsets(fluvio: Arc<Fluvio>, topic: String, end_offsets: Arc<Mutex<Offsets>>) {
    let mut tick = tokio::time::interval(END_OFFSETS_PERIOD);
    loop {
        tick.tick().await;
        match client::end_offsets(&fluvio, &topic).await {
            Ok(ends) => *end_offsets.lock().expect("end offsets lock") = ends,
            Err(error) => {
                tracing::warn!(%error, "Cannot read Fluvio partition end offsets.")
            }
        }
    }
}

#[async_trait]
impl Source for FluvioSource {
    async fn next_batch(&mut self, batch: &mut Vec<SourceRecord>) -> vigil_engine::Result<bool> {
        let received = self.records.recv_many(batch, MAX_BATCH).await;
        Ok(received > 0)
    }

    /// Records behind per partition: the end offset minus the next offset to read.
    fn backlog(&self) -> Vec<(u32, u64)> {
        let ends = self.end_offsets.lock().expect("end offsets lock");
        self.next_offsets
            .iter()
            .map(|(&partition, next)| {
                let end = ends.get(&partition).copied().unwrap_or(0);
                (partition, end.saturating_sub(next.load(Ordering::Relaxed)))
            })
            .collect()
    }

    fn describe(&self) -> String {
        self.spec.clone()
    }
}
