//! One partition of a topic, read without gaps: the reader under the Fluvio source, `vigil tail`
//! and the live tests.
//!
//! The 0.50 client can skip records: a fetch that ends inside a producer batch moves the stream
//! past the rest of that batch (seen here with a real cluster: about 5% of records lost with
//! 64 KiB batches, more with larger ones). Offsets in a partition are contiguous, so a record
//! whose offset is above the one expected means records were skipped: the reader drops the
//! stream and reopens it at the first missing offset. Only when the missing offsets are truly
//! gone (the partition's log now starts after them, through retention) does it move on; that is
//! logged as an error and counted in `vigil_source_records_lost_total`, never silent. A skip of
//! a partition's last records shows no later record; a reader told the end it must reach
//! (`vigil tail --to-end`) reopens a stream that stalls short of it.
//!
//! `follow` runs a reader in a task of its own, hands each record on through a channel, and
//! moves the Fluvio consumer offset only at a barrier: every `commit_interval`, right after a
//! record was handed on, it waits until the consumer of the channel reports that record done,
//! then commits and flushes. The stored offset therefore never runs ahead of what was done with
//! the records, and a restart resumes where the last commit left off.
//!
//! The cluster acknowledges a flushed offset only once the partition has more to send (the
//! stream's pending fetch is answered first), so at the end of a partition a flush waits for
//! the next record. A commit therefore waits a bounded time and reading goes on; the flush stays
//! queued and lands when the next record arrives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fluvio::consumer::{
    BoxConsumerStream, ConsumerConfigExtBuilder, ConsumerStream, OffsetManagementStrategy, Record,
};
use fluvio::{Fluvio, Offset};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch};
use vigil_engine::event::Offsets;
use vigil_engine::telemetry::{SOURCE_RECORDS_LOST, SOURCE_REREADS};

use crate::client;
use crate::error::{Error, Result};

/// Wait before reopening a stream that failed.
const REOPEN_BACKOFF: Duration = Duration::from_millis(500);
/// How long a periodic commit waits for the cluster's acknowledgement (see above).
const COMMIT_WAIT: Duration = Duration::from_secs(1);
/// How long the last commit before a reader stops waits for it.
const FINAL_COMMIT_WAIT: Duration = Duration::from_secs(1);
/// Reopens at the same offset that skipped again before the log's start is checked.
const SKIPS_BEFORE_RETENTION_CHECK: u32 = 2;
/// How long a stream reading up to a known end may go without a record before it is reopened.
const STALL_BEFORE_END: Duration = Duration::from_millis(500);

/// At most this many records go on in one hand-off: the first that came, and those the stream
/// already held behind it. One channel message per batch saves the reading side a wake-up, and
/// the reader a timer, per record.
pub const HANDOFF: usize = 256;

/// Where a reader begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The consumer's stored offset when it has one, else the start of the log.
    StoredOrBeginning,
    /// This offset, whatever is stored.
    At(u64),
}

/// A gap-free reader of one partition.
pub struct PartitionReader {
    fluvio: Arc<Fluvio>,
    topic: String,
    partition: u32,
    /// The Fluvio offset consumer that stores this reader's progress, if any.
    consumer: Option<String>,
    start: Start,
    stream: Option<BoxConsumerStream>,
    /// A read of the client's stream is under way: one that timed out, was cancelled or found
    /// nothing ready. The stream holds its lock inside that read until a further read
    /// completes it, so a commit through it would wait forever (see `stand_at`).
    reading: bool,
    /// The stream has returned no record yet, so it has nothing of ours to commit.
    fresh: bool,
    /// The next offset wanted; `None` until the first record when the start is not absolute.
    expected: Option<u64>,
    /// The offset the cluster last acknowledged as stored for the consumer.
    stored: Option<u64>,
    /// Consecutive reopens at `expected` that skipped again without reading it.
    skips_here: u32,
    rereads: u64,
    lost: u64,
}

impl PartitionReader {
    pub fn new(
        fluvio: Arc<Fluvio>,
        topic: &str,
        partition: u32,
        start: Start,
        consumer: Option<String>,
    ) -> Self {
        PartitionReader {
            fluvio,
            topic: topic.to_owned(),
            partition,
            consumer,
            start,
            stream: None,
            reading: false,
            fresh: true,
            expected: match start {
                Start::At(offset) => Some(offset),
                _ => None,
            },
            stored: None,
            skips_here: 0,
            rereads: 0,
            lost: 0,
        }
    }

    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// How often a stream skipped records and was reopened to read them.
    pub fn rereads(&self) -> u64 {
        self.rereads
    }

    /// Records that were gone from the log before they could be read.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// The next record, in offset order with none missing. An error leaves the reader ready to
    /// try again from the same offset.
    pub async fn next(&mut self) -> Result<Record> {
        loop {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => {
                    let stream = self.open().await?;
                    self.fresh = true;
                    self.stream.insert(stream)
                }
            };
            self.reading = true;
            let item = stream.next().await;
            self.reading = false;
            let record = match item {
                Some(Ok(record)) => record,
                Some(Err(code)) => {
                    self.stream = None;
                    self.check_retention().await?;
                    return Err(Error::client("consumer stream", code));
                }
                None => {
                    self.stream = None;
                    return Err(Error::Client {
                        what: "consumer stream".into(),
                        detail: "the stream ended".into(),
                    });
                }
            };
            let offset = record.offset().max(0) as u64;
            match self.expected {
                Some(expected) if offset < expected => continue,
                Some(expected) if offset > expected => {
                    self.rereads += 1;
                    self.count(SOURCE_REREADS, 1);
                    tracing::debug!(
                        topic = self.topic,
                        partition = self.partition,
                        from = expected,
                        to = offset,
                        "Fluvio stream skipped records; re-reading them."
                    );
                    self.stream = None;
                    self.skips_here += 1;
                    if self.skips_here >= SKIPS_BEFORE_RETENTION_CHECK {
                        self.check_retention().await?;
                    }
                    continue;
                }
                _ => {}
            }
            self.expected = Some(offset + 1);
            self.skips_here = 0;
            self.fresh = false;
            return Ok(record);
        }
    }

    /// The next record when the open stream already holds it (records come from the cluster
    /// in batches), without waiting, so that it is handed on with the one before. Anything
    /// else it finds (an error, the stream's end, a skip) closes the stream, and `next` deals
    /// with it on a reopened one.
    pub fn ready(&mut self) -> Option<Record> {
        let expected = self.expected?;
        loop {
            let stream = self.stream.as_mut()?;
            self.reading = true;
            let item = stream.next().now_or_never()?;
            self.reading = false;
            if let Some(Ok(record)) = item {
                let offset = record.offset().max(0) as u64;
                if offset < expected {
                    continue;
                }
                if offset == expected {
                    self.expected = Some(offset + 1);
                    return Some(record);
                }
                self.rereads += 1;
                self.count(SOURCE_REREADS, 1);
            }
            self.stream = None;
            return None;
        }
    }

    /// The offset the cluster last acknowledged as this reader's stored consumer offset.
    pub fn stored(&self) -> Option<u64> {
        self.stored
    }

    /// Stores the offset of the last record returned as this reader's consumer offset, waiting
    /// up to `wait` for the cluster to acknowledge it; `Ok(false)` when it has not yet (the
    /// flush stays queued). Does nothing without a consumer, or when the stream was reopened
    /// since that record (the next commit stores it).
    pub async fn commit(&mut self, wait: Duration) -> Result<bool> {
        if self.consumer.is_none() || self.fresh {
            return Ok(false);
        }
        let (Some(stream), Some(next)) = (&mut self.stream, self.expected) else {
            return Ok(false);
        };
        stream
            .offset_commit()
            .await
            .map_err(|e| Error::client("offset commit", e))?;
        match tokio::time::timeout(wait, stream.offset_flush()).await {
            Ok(flushed) => {
                flushed.map_err(|e| Error::client("offset flush", e))?;
                self.stored = Some(next - 1);
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    fn count(&self, metric: &'static str, n: u64) {
        let source = format!("fluvio:{}", self.topic);
        metrics::counter!(metric, "source" => source, "partition" => self.partition.to_string())
            .increment(n);
    }

    async fn open(&mut self) -> Result<BoxConsumerStream> {
        let offset_start = match (self.expected, self.start) {
            (Some(offset), _) => {
                Offset::absolute(offset as i64).map_err(|e| Error::client("bad start offset", e))?
            }
            (None, _) => Offset::beginning(),
        };
        let mut config = ConsumerConfigExtBuilder::default();
        config
            .topic(self.topic.clone())
            .partition(self.partition)
            .offset_start(offset_start);
        if let Some(consumer) = &self.consumer {
            config
                .offset_consumer(consumer.clone())
                .offset_strategy(OffsetManagementStrategy::Manual);
        }
        let config = config
            .build()
            .map_err(|e| Error::client("invalid consumer settings", e))?;
        let stream = self
            .fluvio
            .consumer_with_config(config)
            .await
            .map_err(|e| {
                Error::client(
                    format!(
                        "cannot consume `{}` partition {}",
                        self.topic, self.partition
                    ),
                    e,
                )
            })?;
        Ok(Box::pin(stream))
    }

    /// When the log now starts after the next offset wanted, those records are gone: say so,
    /// count them and go on from the log's start.
    async fn check_retention(&mut self) -> Result<()> {
        let Some(expected) = self.expected else {
            return Ok(());
        };
        let starts = client::start_offsets(&self.fluvio, &self.topic).await?;
        let Some(&log_start) = starts.get(&self.partition) else {
            return Ok(());
        };
        if log_start > expected {
            let lost = log_start - expected;
            self.lost += lost;
            self.count(SOURCE_RECORDS_LOST, lost);
            tracing::error!(
                topic = self.topic,
                partition = self.partition,
                from = expected,
                to = log_start,
                "Fluvio records {expected}..{log_start} are gone from the log (retention) and cannot be read; going on from {log_start}."
            );
            self.expected = Some(log_start);
            self.stream = None;
        }
        self.skips_here = 0;
        Ok(())
    }
}

/// Where a followed partition hands its records, and when it may store its progress.
pub struct Follow<T> {
    /// Records in offset order, in batches of up to `HANDOFF`.
    pub records: mpsc::Sender<Vec<T>>,
    /// Per partition, one past the last offset whose record is done with. The consumer offset
    /// moves only behind it; without it, the reader never commits.
    pub done: Option<watch::Receiver<Offsets>>,
    pub commit_interval: Duration,
    /// One past the offset of the last record handed on, for whoever measures lag.
    pub next: Option<Arc<AtomicU64>>,
    /// When it turns true the reader stops reading, waits until what it handed on is done,
    /// commits, and returns.
    pub stop: Option<watch::Receiver<bool>>,
    /// The partition's end offset when the reader is to read up to it: a stream that stalls
    /// short of it is reopened, since the client may have skipped the partition's last records
    /// (a skip is otherwise seen only from a later record, and there is none).
    pub until: Option<u64>,
    /// The consumer offset is stored only for records at or past this offset less one: a
    /// partition re-read from its start to rebuild state never moves it back.
    pub commit_from: u64,
}

impl PartitionReader {
    /// Reads for as long as the receiver of `to.records` lives (or until `to.stop`), retrying
    /// failed streams, with each record turned into a `T` by `convert` (given its partition,
    /// offset and the time it was read) and handed on in batches of up to `HANDOFF`. Gives the
    /// reader back for its counts.
    pub async fn follow<T>(
        mut self,
        mut to: Follow<T>,
        convert: impl Fn(u32, u64, Record, Instant) -> T,
    ) -> Self {
        let mut last_commit = Instant::now();
        let mut handed: Option<u64> = None;
        // The last record handed on whose offset is stored or being stored.
        let mut committed: Option<u64> = None;
        let mut stop = to.stop.take();
        loop {
            let short_of_end = to
                .until
                .is_some_and(|end| self.expected.is_some_and(|next| next < end));
            // Idle with a record not yet committed: wake after the commit interval to commit
            // it, so the stored offset catches up when the records stop coming.
            let uncommitted = handed.filter(|&h| committed != Some(h) && h + 1 >= to.commit_from);
            let stall = if short_of_end {
                Some(STALL_BEFORE_END)
            } else {
                uncommitted.map(|_| to.commit_interval)
            };
            let read = match &mut stop {
                Some(stop) => tokio::select! {
                    biased;
                    _ = stop.wait_for(|stop| *stop) => break,
                    read = self.next_within(stall) => read,
                },
                None => self.next_within(stall).await,
            };
            let record = match read {
                Ok(Some(record)) => record,
                Ok(None) if short_of_end => {
                    self.reopen_stalled();
                    continue;
                }
                Ok(None) => {
                    // Idle: store the offset of the last record done with, even while the ones
                    // handed on after it are still being worked through (a slow writer), so
                    // that the stored offset keeps up with what is done.
                    let through = uncommitted
                        .and_then(|h| done_through(&to.done, self.partition, h))
                        .filter(|&o| o + 1 >= to.commit_from && committed.is_none_or(|c| o > c));
                    if let (Some(offset), Some(handed)) = (through, handed) {
                        self.commit_when_done(&mut to.done, offset, COMMIT_WAIT)
                            .await;
                        if offset < handed {
                            // Read on after the last record handed on, not after the one
                            // committed.
                            self.stream = None;
                            self.reading = false;
                            self.expected = Some(handed + 1);
                        }
                        committed = Some(offset);
                        last_commit = Instant::now();
                    }
                    continue;
                }
                Err(error) => {
                    tracing::warn!(topic = self.topic, partition = self.partition, %error, "Fluvio partition stream failed; reopening.");
                    tokio::time::sleep(REOPEN_BACKOFF).await;
                    continue;
                }
            };
            let read_at = Instant::now();
            let mut offset = record.offset().max(0) as u64;
            let mut records = Vec::with_capacity(HANDOFF);
            records.push(convert(self.partition, offset, record, read_at));
            while records.len() < HANDOFF {
                let Some(record) = self.ready() else { break };
                offset = record.offset().max(0) as u64;
                records.push(convert(self.partition, offset, record, read_at));
            }
            if to.records.send(records).await.is_err() {
                return self;
            }
            handed = Some(offset);
            if let Some(next) = &to.next {
                next.store(offset + 1, Ordering::Relaxed);
            }
            if last_commit.elapsed() >= to.commit_interval && offset + 1 >= to.commit_from {
                if !self
                    .commit_when_done(&mut to.done, offset, COMMIT_WAIT)
                    .await
                {
                    return self;
                }
                committed = Some(offset);
                last_commit = Instant::now();
            }
        }
        if let Some(offset) = handed.filter(|offset| offset + 1 >= to.commit_from) {
            self.commit_when_done(&mut to.done, offset, FINAL_COMMIT_WAIT)
                .await;
        }
        self
    }

    /// Reopens the stream at `offset`, a record already handed on, and reads it back, so that a
    /// commit (which stores the last record the client's stream returned) stores it. A commit
    /// needs this for an offset before the last record read, and while a read is under way
    /// (`reading`): the client's stream then holds its lock inside that read until a further
    /// read completes it, and a commit through it would wait forever (a reader idle past the
    /// commit interval once stopped reading for good). `false` when the record did not come
    /// back within `wait`; the reader then goes on past it all the same.
    async fn stand_at(&mut self, offset: u64, wait: Duration) -> bool {
        self.stream = None;
        self.reading = false;
        self.expected = Some(offset);
        let read = tokio::time::timeout(wait, self.next()).await;
        if !matches!(read, Ok(Ok(_))) {
            self.stream = None;
            self.expected = Some(offset + 1);
            return false;
        }
        true
    }

    /// The next record, or `None` when `stall` passes first.
    async fn next_within(&mut self, stall: Option<Duration>) -> Result<Option<Record>> {
        match stall {
            Some(stall) => match tokio::time::timeout(stall, self.next()).await {
                Ok(read) => read.map(Some),
                Err(_) => Ok(None),
            },
            None => self.next().await.map(Some),
        }
    }

    /// Nothing came for a while short of the end the reader is to reach: the client may have
    /// skipped the last records, so the stream is reopened at the next offset wanted.
    fn reopen_stalled(&mut self) {
        self.rereads += 1;
        self.count(SOURCE_REREADS, 1);
        tracing::debug!(
            topic = self.topic,
            partition = self.partition,
            from = self.expected,
            "Fluvio stream stalled short of the partition's end; re-reading from the next offset."
        );
        self.stream = None;
    }

    /// Waits until the record at `offset` is done, then commits; `false` when nobody will
    /// report it done any more.
    async fn commit_when_done(
        &mut self,
        done: &mut Option<watch::Receiver<Offsets>>,
        offset: u64,
        wait: Duration,
    ) -> bool {
        let Some(done) = done else {
            return true;
        };
        let partition = self.partition;
        if done
            .wait_for(|done| done.get(&partition).is_some_and(|d| *d > offset))
            .await
            .is_err()
        {
            return false;
        }
        // A commit stores the last record the stream returned: it must be `offset`.
        let standing = !self.reading && self.expected == Some(offset + 1);
        if !standing && !self.stand_at(offset, wait).await {
            return true;
        }
        match self.commit(wait).await {
            Ok(true) => tracing::debug!(partition, offset, "Stored the Fluvio consumer offset."),
            Ok(false) => tracing::debug!(
                partition,
                offset,
                "The Fluvio consumer offset is not acknowledged yet; it lands with the next record."
            ),
            Err(error) => {
                tracing::warn!(partition, %error, "Cannot store the Fluvio consumer offset; trying again at the next commit.")
            }
        }
        true
    }
}

/// The last offset up to `handed` that is done with, if any; never without a `done` channel.
fn done_through(
    done: &Option<watch::Receiver<Offsets>>,
    partition: u32,
    handed: u64,
) -> Option<u64> {
    let next = *done.as_ref()?.borrow().get(&partition)?;
    next.checked_sub(1).map(|last| last.min(handed))
}
