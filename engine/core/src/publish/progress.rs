//! How far each source partition has got: records taken in, published and still waiting
//! upstream, from which consumer lag is derived, and the checkpoint watermark.
//!
//! Customer actors finish events out of order, so the offset a restarted engine may resume
//! from is a watermark: the lowest offset taken in whose outcome is not yet published (or one
//! past the last offset taken, when everything is). Redelivered events above it yield the same
//! decision ids, so consumers de-duplicate them. It lives here because the publisher is the
//! only stage that knows what has been written; it is shared with sources (the Fluvio source
//! advances its consumer offset from it) and saved at each checkpoint.

use std::collections::{BTreeMap, HashSet, VecDeque};

use crate::event::{wall_clock_ms, Offsets, Position};
use crate::telemetry::{ConsumerLag, Telemetry};

/// Out-of-order completion tracking for one partition.
#[derive(Debug, Default)]
struct PartitionWatermark {
    /// Offsets taken in and not yet below the watermark, in increasing order.
    pending: VecDeque<u64>,
    /// Published offsets still waiting for an older one to be published.
    published_ahead: HashSet<u64>,
    /// One past the newest offset taken in.
    next: u64,
}

/// Watermarks of every partition the engine reads.
#[derive(Debug, Default)]
pub struct Watermarks {
    partitions: BTreeMap<u32, PartitionWatermark>,
}

impl Watermarks {
    /// Records that `offset` was taken in. Offsets of a partition are taken in increasing
    /// order (gaps are fine: blank lines, compacted records).
    pub fn taken(&mut self, partition: u32, offset: u64) {
        let p = self.partitions.entry(partition).or_default();
        p.pending.push_back(offset);
        p.next = offset + 1;
    }

    /// Records that the outcome of `offset` is published.
    pub fn published(&mut self, partition: u32, offset: u64) {
        let Some(p) = self.partitions.get_mut(&partition) else {
            return;
        };
        if p.pending.front() == Some(&offset) {
            p.pending.pop_front();
            while let Some(front) = p.pending.front() {
                if !p.published_ahead.remove(front) {
                    break;
                }
                p.pending.pop_front();
            }
        } else {
            p.published_ahead.insert(offset);
        }
    }

    /// Per partition, the offset to resume from.
    pub fn resume_offsets(&self) -> Offsets {
        self.partitions
            .iter()
            .map(|(&partition, p)| (partition, p.pending.front().copied().unwrap_or(p.next)))
            .collect()
    }
}

/// How far one source partition has got.
#[derive(Debug, Clone, Copy, Default)]
struct PartitionProgress {
    taken: u64,
    published: u64,
    backlog: u64,
    newest_event_ts: Option<i64>,
}

/// Per-partition progress, from which consumer lag and the checkpoint watermark are derived.
#[derive(Debug, Default)]
pub struct Progress {
    partitions: BTreeMap<u32, PartitionProgress>,
    pub watermarks: Watermarks,
}

impl Progress {
    fn partition(&mut self, partition: u32) -> &mut PartitionProgress {
        self.partitions.entry(partition).or_default()
    }

    pub fn taken(&mut self, position: Position) {
        self.partition(position.partition).taken += 1;
        self.watermarks.taken(position.partition, position.offset);
    }

    /// What the source says is still waiting to be read in `partition`.
    pub fn backlog_of(&mut self, partition: u32, records: u64) {
        self.partition(partition).backlog = records;
    }

    pub fn published(&mut self, position: Position, event_ts: Option<i64>) {
        self.watermarks
            .published(position.partition, position.offset);
        let p = self.partition(position.partition);
        p.published += 1;
        if let Some(ts) = event_ts {
            p.newest_event_ts = Some(p.newest_event_ts.map_or(ts, |n| n.max(ts)));
        }
    }

    /// Records taken in and not yet published.
    pub fn in_flight(&self) -> u64 {
        self.partitions
            .values()
            .map(|p| p.taken.saturating_sub(p.published))
            .sum()
    }

    /// Records the source says are waiting to be read.
    pub fn backlog(&self) -> u64 {
        self.partitions.values().map(|p| p.backlog).sum()
    }

    /// Emits every partition's lag: records still to publish, and the event-time distance of
    /// the newest published record from now (0 when nothing is waiting).
    pub fn emit_lag(&self, telemetry: &Telemetry) {
        let now_ms = wall_clock_ms();
        for (&partition, p) in &self.partitions {
            let records = p.backlog + p.taken.saturating_sub(p.published);
            let seconds = match p.newest_event_ts {
                Some(ts) if records > 0 => (now_ms - ts).max(0) as f64 / 1_000.0,
                _ => 0.0,
            };
            telemetry.emit(ConsumerLag {
                partition,
                records,
                seconds,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_waits_for_the_oldest_unpublished_offset() {
        let mut w = Watermarks::default();
        for offset in [0, 1, 2, 3, 5] {
            w.taken(0, offset);
        }
        w.taken(1, 40);
        w.published(0, 2);
        w.published(0, 1);
        assert_eq!(w.resume_offsets(), Offsets::from([(0, 0), (1, 40)]));
        w.published(0, 0);
        assert_eq!(
            w.resume_offsets()[&0],
            3,
            "0, 1 and 2 are all published now"
        );
        w.published(0, 5);
        assert_eq!(w.resume_offsets()[&0], 3);
        w.published(0, 3);
        assert_eq!(w.resume_offsets()[&0], 6, "one past the last offset taken");
        w.published(1, 40);
        assert_eq!(w.resume_offsets()[&1], 41);
    }
}
