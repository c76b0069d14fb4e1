//! The watermark: how far event time has certainly got. It is the smallest, over the source's
//! partitions, of the newest event time read from each, less `engine.late_tolerance`. A
//! partition with no record for `engine.idle_partition_timeout` (wall-clock time) stops
//! holding it back, as Flink's idle sources do, and counts again with its next record. It never
//! goes back.
//!
//! The ingest loop gives every event the watermark of the stream before it, so a customer's
//! actor fires its inactivity checks at the same place among that customer's events on every
//! run, whatever the batching. An event time further ahead of the wall clock than
//! `engine.max_future_skew` (which the actor refuses) does not move it, so one broken
//! timestamp cannot fire every timer. Checkpoints keep each partition's newest event time, so a
//! resumed run starts from the same watermark.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Partition → newest event time read, ms since the epoch: what a checkpoint keeps.
pub type EventTimes = BTreeMap<u32, i64>;

/// No watermark yet: no event has been read.
pub const NO_WATERMARK: i64 = i64::MIN;

#[derive(Debug, Clone, Copy)]
struct PartitionClock {
    newest_ts: i64,
    last_record: Instant,
}

#[derive(Debug)]
pub struct Watermark {
    partitions: BTreeMap<u32, PartitionClock>,
    tolerance_ms: i64,
    idle_after: Duration,
    max_future_skew_ms: i64,
    current: i64,
}

impl Watermark {
    /// A watermark over partitions whose newest event times a checkpoint kept (`resumed`).
    pub fn new(
        resumed: &EventTimes,
        tolerance: Duration,
        idle_after: Duration,
        max_future_skew: Duration,
        now: Instant,
    ) -> Watermark {
        let mut watermark = Watermark {
            partitions: resumed
                .iter()
                .map(|(p, ts)| {
                    let clock = PartitionClock {
                        newest_ts: *ts,
                        last_record: now,
                    };
                    (*p, clock)
                })
                .collect(),
            tolerance_ms: tolerance.as_millis() as i64,
            idle_after,
            max_future_skew_ms: max_future_skew.as_millis() as i64,
            current: NO_WATERMARK,
        };
        watermark.refresh(now);
        watermark
    }

    /// Makes each of `partitions` that has no event time yet hold the watermark back until it
    /// reads a record or goes idle: a source reading several partitions may read one far ahead
    /// before the first record of another arrives.
    pub fn expect(&mut self, partitions: &[u32], now: Instant) {
        for &partition in partitions {
            self.partitions.entry(partition).or_insert(PartitionClock {
                newest_ts: NO_WATERMARK,
                last_record: now,
            });
        }
    }

    /// The watermark now.
    pub fn current(&self) -> i64 {
        self.current
    }

    /// Each partition's newest event time, for a checkpoint.
    pub fn event_times(&self) -> EventTimes {
        self.partitions
            .iter()
            .filter(|(_, clock)| clock.newest_ts != NO_WATERMARK)
            .map(|(p, clock)| (*p, clock.newest_ts))
            .collect()
    }

    /// Takes in an event read from `partition` at `now` (`now_ms` on the wall clock) and
    /// returns the watermark before it.
    pub fn observe(&mut self, partition: u32, ts: i64, now: Instant, now_ms: i64) -> i64 {
        let before = self.current;
        if ts.saturating_sub(now_ms) > self.max_future_skew_ms {
            return before;
        }
        let clock = self.partitions.entry(partition).or_insert(PartitionClock {
            newest_ts: ts,
            last_record: now,
        });
        clock.last_record = now;
        if ts > clock.newest_ts || self.current == NO_WATERMARK {
            clock.newest_ts = clock.newest_ts.max(ts);
            self.refresh(now);
        }
        before
    }

    /// Recomputes the watermark, leaving out partitions idle at `now` (all of them, when every
    /// one is idle). Returns whether it moved.
    pub fn refresh(&mut self, now: Instant) -> bool {
        let active = self
            .partitions
            .values()
            .filter(|c| now.duration_since(c.last_record) < self.idle_after)
            .map(|c| c.newest_ts)
            .min();
        let slowest = active.or_else(|| self.partitions.values().map(|c| c.newest_ts).max());
        let Some(slowest) = slowest.filter(|&ts| ts != NO_WATERMARK) else {
            return false;
        };
        let candidate = slowest.saturating_sub(self.tolerance_ms);
        if candidate > self.current {
            self.current = candidate;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOLERANCE: Duration = Duration::from_secs(60);
    const IDLE: Duration = Duration::from_secs(30);
    const SKEW: Duration = Duration::from_secs(600);
    const NOW_MS: i64 = 1_800_000_000_000;

    fn watermark(now: Instant) -> Watermark {
        Watermark::new(&EventTimes::new(), TOLERANCE, IDLE, SKEW, now)
    }

    #[test]
    fn an_expected_partition_holds_it_back_until_its_first_record_or_idleness() {
        let now = Instant::now();
        let mut w = watermark(now);
        w.expect(&[0, 3], now);
        w.observe(0, 5_000_000, now, NOW_MS);
        assert_eq!(w.current(), NO_WATERMARK, "partition 3 has not read yet");
        assert_eq!(w.event_times(), EventTimes::from([(0, 5_000_000)]));
        w.observe(3, 2_000_000, now, NOW_MS);
        assert_eq!(w.current(), 2_000_000 - 60_000);

        let mut w = watermark(now);
        w.expect(&[0, 3], now);
        w.observe(0, 5_000_000, now, NOW_MS);
        assert!(w.refresh(now + IDLE));
        assert_eq!(
            w.current(),
            5_000_000 - 60_000,
            "an idle partition stops holding it"
        );
    }

    #[test]
    fn the_slowest_partition_less_the_tolerance_holds_it_and_it_never_goes_back() {
        let now = Instant::now();
        let mut w = watermark(now);
        assert_eq!(w.observe(0, 1_000_000, now, NOW_MS), NO_WATERMARK);
        assert_eq!(w.current(), 1_000_000 - 60_000);
        w.observe(1, 500_000, now, NOW_MS);
        // Partition 1 is behind: the watermark stays (it never goes back).
        assert_eq!(w.current(), 1_000_000 - 60_000);
        w.observe(0, 2_000_000, now, NOW_MS);
        assert_eq!(w.current(), 1_000_000 - 60_000);
        assert_eq!(w.observe(1, 1_500_000, now, NOW_MS), 940_000);
        assert_eq!(w.current(), 1_500_000 - 60_000);
        // A late event moves nothing.
        w.observe(0, 10, now, NOW_MS);
        assert_eq!(w.current(), 1_440_000);
        assert_eq!(
            w.event_times(),
            EventTimes::from([(0, 2_000_000), (1, 1_500_000)])
        );
    }

    #[test]
    fn an_idle_partition_stops_holding_it_back_and_counts_again_with_its_next_record() {
        let start = Instant::now();
        let mut w = watermark(start);
        w.observe(0, 1_000_000, start, NOW_MS);
        w.observe(1, 100_000, start, NOW_MS);
        assert_eq!(w.current(), 940_000);
        w.observe(0, 5_000_000, start, NOW_MS);
        assert_eq!(w.current(), 940_000);
        let later = start + IDLE + Duration::from_secs(1);
        w.observe(0, 6_000_000, later, NOW_MS);
        assert_eq!(w.current(), 5_940_000);
        // Partition 1 wakes up behind: the watermark does not go back, and holds again.
        w.observe(1, 200_000, later, NOW_MS);
        w.observe(0, 9_000_000, later, NOW_MS);
        assert_eq!(w.current(), 5_940_000);
    }

    #[test]
    fn an_event_from_the_far_future_moves_nothing_and_a_resumed_run_starts_where_it_was() {
        let now = Instant::now();
        let mut w = watermark(now);
        w.observe(0, 1_000_000, now, NOW_MS);
        w.observe(0, NOW_MS + 3_600_000, now, NOW_MS);
        assert_eq!(w.current(), 940_000);
        let resumed = Watermark::new(&w.event_times(), TOLERANCE, IDLE, SKEW, now);
        assert_eq!(resumed.current(), 940_000);
    }
}
