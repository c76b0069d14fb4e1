//! The Fluvio source (`fluvio:TOPIC`): one gap-free partition reader per partition, each in its
//! own task (a single stream over several partitions tracks one next offset for all of them and
//! skips records after a reconnect), feeding one bounded channel that `next_batch` drains.
//!
//! Where to start: from the engine's checkpoint when there is one, else from the partition's
//! Fluvio consumer offset (`{consumer}-{topic}-{partition}`, resumed at stored + 1), else from
//! the beginning. The consumer offset moves only at the reader's barrier, behind the
//! publisher's watermark, so it never runs ahead of published decisions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fluvio::Fluvio;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use vigil_engine::event::{Offsets, Position, MAX_BATCH};
use vigil_engine::source::{Source, SourceOptions, SourceRecord};

use crate::client;
use crate::error::{Error, Result};
use crate::reader::{Follow, PartitionReader, Start, HANDOFF};

/// Hand-offs buffered between the partition tasks and the pipeline: up to 4,096 records.
const CHANNEL_CAPACITY: usize = 4 * MAX_BATCH / HANDOFF;
/// How often partition end offsets are read for lag.
const END_OFFSETS_PERIOD: Duration = Duration::from_secs(1);
/// `next` of a partition that has neither a checkpoint nor a record read yet.
const NOT_YET_READ: u64 = u64::MAX;

pub struct FluvioSource {
    spec: String,
    records: mpsc::Receiver<Vec<SourceRecord>>,
    /// Per partition, the next offset to read.
    next_offsets: BTreeMap<u32, Arc<AtomicU64>>,
    /// Per partition, the end offset last read from the cluster.
    end_offsets: Arc<Mutex<Offsets>>,
    /// Per partition, where the log was decided before a rebuild (or an earlier one) from it.
    replayed: Offsets,
    tasks: Vec<AbortHandle>,
}

impl Drop for FluvioSource {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl FluvioSource {
    pub async fn open(topic: &str, options: SourceOptions) -> Result<Self> {
        let fluvio = client::connect(&options.fluvio).await?;
        let count = client::partition_count(&fluvio, topic).await?;
        let partitions = options
            .partitions
            .resolve(count)
            .map_err(|detail| Error::Partitions {
                topic: topic.to_owned(),
                detail,
            })?;
        let consumer = |partition| format!("{}-{topic}-{partition}", options.fluvio.consumer);
        let (starts, replayed) = if options.rebuild {
            rebuild_starts(&fluvio, topic, &partitions, consumer).await?
        } else {
            (Offsets::new(), options.replayed.clone())
        };
        let (tx, records) = mpsc::channel(CHANNEL_CAPACITY);
        let mut tasks = Vec::new();
        let mut next_offsets = BTreeMap::new();
        for partition in partitions {
            let resume = options
                .resume
                .get(&partition)
                .or(starts.get(&partition))
                .copied();
            let next = Arc::new(AtomicU64::new(resume.unwrap_or(NOT_YET_READ)));
            next_offsets.insert(partition, next.clone());
            let reader = PartitionReader::new(
                fluvio.clone(),
                topic,
                partition,
                resume.map_or(Start::StoredOrBeginning, Start::At),
                Some(consumer(partition)),
            );
            let follow = Follow {
                records: tx.clone(),
                done: options.committed.clone(),
                commit_interval: options.fluvio.commit_interval,
                next: Some(next),
                stop: None,
                until: None,
                commit_from: replayed.get(&partition).copied().unwrap_or(0),
            };
            tasks.push(
                tokio::spawn(reader.follow(follow, |partition, offset, record, read_at| {
                    SourceRecord {
                        position: Position { partition, offset },
                        payload: Bytes::copy_from_slice(record.value()),
                        ingested: read_at,
                        // The broker's own record size limit bounds what it delivers.
                        cut: None,
                    }
                }))
                .abort_handle(),
            );
        }
        let end_offsets = Arc::new(Mutex::new(Offsets::new()));
        tasks.push(
            tokio::spawn(watch_end_offsets(
                fluvio,
                topic.to_owned(),
                end_offsets.clone(),
            ))
            .abort_handle(),
        );
        tracing::info!(topic, partitions = ?next_offsets.keys().collect::<Vec<_>>(), "Consuming from Fluvio.");
        Ok(FluvioSource {
            spec: format!("fluvio:{topic}"),
            records,
            next_offsets,
            end_offsets,
            replayed,
            tasks,
        })
    }
}

/// For a rebuild from the log: each partition's start, and where its consumer offset says it
/// was decided up to (one past the stored offset) when it has one.
async fn rebuild_starts(
    fluvio: &Fluvio,
    topic: &str,
    partitions: &[u32],
    consumer: impl Fn(u32) -> String,
) -> Result<(Offsets, Offsets)> {
    let log_starts = client::start_offsets(fluvio, topic).await?;
    let stored = fluvio
        .consumer_offsets()
        .await
        .map_err(|e| Error::client("cannot read Fluvio consumer offsets", e))?;
    let mut starts = Offsets::new();
    let mut replayed = Offsets::new();
    for &partition in partitions {
        starts.insert(partition, log_starts.get(&partition).copied().unwrap_or(0));
        let name = consumer(partition);
        if let Some(c) = stored
            .iter()
            .find(|c| c.consumer_id == name && c.topic == topic && c.partition == partition)
            .filter(|c| c.offset >= 0)
        {
            replayed.insert(partition, c.offset as u64 + 1);
        }
    }
    Ok((starts, replayed))
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
        // Whole hand-offs, while one more surely fits.
        let Some(records) = self.records.recv().await else {
            return Ok(false);
        };
        batch.extend(records);
        while batch.len() + HANDOFF <= MAX_BATCH {
            match self.records.try_recv() {
                Ok(records) => batch.extend(records),
                Err(_) => break,
            }
        }
        Ok(true)
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

    fn replayed(&self) -> Offsets {
        self.replayed.clone()
    }

    fn partitions(&self) -> Option<Vec<u32>> {
        Some(self.next_offsets.keys().copied().collect())
    }

    fn describe(&self) -> String {
        self.spec.clone()
    }
}
