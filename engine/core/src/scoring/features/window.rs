//! `RollingWindow`: sliding windows over event time, several horizons over one buffer, with
//! work and memory per event bounded however busy the customer is.
//!
//! A window of width `W` evaluated at time `t` holds the entries with `t - W < ts <= t`: an
//! entry exactly `W` old has left it. All horizons share one time-ordered buffer of buckets,
//! each horizon with its own start and running count and sum, so a customer's 1 min, 1 h and
//! 24 h payment windows cost one bucket per payment and each update is amortised O(1).
//!
//! Every entry is a bucket of its own, and the windows are exact, until the buffer holds
//! `MAX_BUCKETS`. Past that, `settle` merges neighbouring buckets, oldest first, so that none
//! holds more than `BUCKET_SHARE` of the entries newer than it and none straddles a horizon's
//! start. A horizon's edge then cuts at most one bucket, which is counted in proportion to the
//! part of its time span still inside: each window is within `BUCKET_SHARE` of exact, the
//! newest entries stay exact, and a customer with a million entries keeps a few hundred
//! buckets.
//!
//! Between two `settle` calls the buffer only grows by the one entry an event inserts, and
//! entries that leave are only passed over, so an event's changes are undone from a `mark`
//! (a few numbers per horizon) and the one insert the window remembers.

use std::collections::VecDeque;

/// Buckets one window keeps before `settle` merges the oldest.
const MAX_BUCKETS: usize = 512;
/// After merging, a window keeps at most this many buckets; merging is repeated with a
/// doubled share until it does, so it runs at most once per `MAX_BUCKETS / 4` events.
const SETTLED_BUCKETS: usize = MAX_BUCKETS * 3 / 4;
/// The largest share of the newer entries one merged bucket may hold: the bound on a
/// window's relative error.
const BUCKET_SHARE: f64 = 1.0 / 32.0;

/// Entries from `last - span` to `last`, counted and summed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Bucket {
    last: i64,
    span: i64,
    count: u64,
    sum: f64,
}

impl Bucket {
    fn first(&self) -> i64 {
        self.last - self.span
    }
}

/// The one change to the buffer an event made, undone by `rollback`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Change {
    Inserted(usize),
    AddedTo(usize, Bucket),
}

/// `H` sliding windows of different widths over one series of `(ts, value)` entries.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RollingWindow<const H: usize> {
    /// Time-ordered, non-overlapping buckets; those before the widest horizon's start that
    /// its edge does not cut go at the next `settle`.
    buckets: VecDeque<Bucket>,
    /// Widths in milliseconds, widest first.
    #[serde(with = "super::fixed_array")]
    widths: [i64; H],
    /// The time of the last `advance`.
    now: i64,
    /// Index of the first bucket wholly inside each horizon.
    #[serde(with = "super::fixed_array")]
    starts: [usize; H],
    /// Entries and running sums of the buckets wholly inside each horizon, stored exactly so a
    /// restored window goes on bit for bit.
    #[serde(with = "super::fixed_array")]
    counts: [u64; H],
    #[serde(with = "super::fixed_array")]
    sums: [f64; H],
    #[serde(skip)]
    change: Option<Change>,
}

/// Where a window was before an event: restores it with `RollingWindow::rollback`.
#[derive(Debug, Clone, Copy)]
pub struct WindowMark<const H: usize> {
    now: i64,
    starts: [usize; H],
    counts: [u64; H],
    sums: [f64; H],
}

impl<const H: usize> RollingWindow<H> {
    /// Windows of the given widths (milliseconds), widest first.
    pub fn new(widths: [i64; H]) -> Self {
        assert!(
            widths.windows(2).all(|w| w[0] >= w[1]),
            "rolling window widths must be given widest first"
        );
        RollingWindow {
            buckets: VecDeque::new(),
            widths,
            now: 0,
            starts: [0; H],
            counts: [0; H],
            sums: [0.0; H],
            change: None,
        }
    }

    /// Moves every horizon's left edge to `now`, passing over what fell out.
    pub fn advance(&mut self, now: i64) {
        self.now = now;
        for h in 0..H {
            let edge = now - self.widths[h];
            while let Some(bucket) = self.buckets.get(self.starts[h]) {
                if bucket.first() > edge {
                    break;
                }
                self.counts[h] -= bucket.count;
                self.sums[h] -= bucket.sum;
                self.starts[h] += 1;
            }
            if self.starts[h] == self.buckets.len() {
                // Nothing wholly inside: forget accumulated rounding error.
                self.sums[h] = 0.0;
            }
        }
    }

    /// Adds an entry at event time `ts`, as seen at time `now >= ts` (the customer's newest
    /// event time). Entries may arrive late: they are placed in time order, and counted only
    /// by the horizons they still fall in. Call `advance(now)` first; at most once per event.
    pub fn insert(&mut self, now: i64, ts: i64, value: f64) {
        debug_assert!(ts <= now, "insert at {ts} after now {now}");
        debug_assert!(self.change.is_none(), "two inserts between settles");
        if ts <= now - self.widths[0] {
            return;
        }
        // In order, the usual case: after every bucket, with no search.
        let newest = self.buckets.back().map_or(i64::MIN, |b| b.last);
        let within = if ts > newest {
            self.buckets.len()
        } else {
            self.buckets.partition_point(|b| b.last < ts)
        };
        if let Some(bucket) = self
            .buckets
            .get_mut(within)
            .filter(|b| b.span > 0 && b.first() <= ts)
        {
            // Late, into a merged bucket's span: it joins the bucket.
            self.change = Some(Change::AddedTo(within, *bucket));
            bucket.count += 1;
            bucket.sum += value;
            for h in (0..H).filter(|&h| within >= self.starts[h]) {
                self.counts[h] += 1;
                self.sums[h] += value;
            }
            return;
        }
        let at = if ts > newest {
            self.buckets.len()
        } else {
            self.buckets.partition_point(|b| b.last <= ts)
        };
        self.buckets.insert(
            at,
            Bucket {
                last: ts,
                span: 0,
                count: 1,
                sum: value,
            },
        );
        self.change = Some(Change::Inserted(at));
        for h in 0..H {
            if ts > now - self.widths[h] {
                self.counts[h] += 1;
                self.sums[h] += value;
            } else {
                self.starts[h] += 1;
            }
        }
    }

    /// Entries inside horizon `h`.
    pub fn count(&self, h: usize) -> f64 {
        self.counts[h] as f64
            + self
                .cut(h)
                .map_or(0.0, |(b, inside)| b.count as f64 * inside)
    }

    /// Sum of the values inside horizon `h`.
    pub fn sum(&self, h: usize) -> f64 {
        self.sums[h] + self.cut(h).map_or(0.0, |(b, inside)| b.sum * inside)
    }

    /// Entries inside horizon `h` as of `at`, at or after the last `advance`, without moving
    /// the window: what `count` will say once the window is advanced to `at`.
    pub fn count_at(&self, h: usize, at: i64) -> f64 {
        debug_assert!(at >= self.now, "count_at {at} before now {}", self.now);
        let edge = at - self.widths[h];
        let mut count = self.counts[h] as f64;
        let mut start = self.starts[h];
        while let Some(bucket) = self.buckets.get(start) {
            if bucket.first() > edge {
                break;
            }
            count -= bucket.count as f64;
            start += 1;
        }
        count
            + self
                .cut_before(start, edge)
                .map_or(0.0, |(b, inside)| b.count as f64 * inside)
    }

    /// The bucket horizon `h`'s edge cuts, if any, and the share of its span inside.
    fn cut(&self, h: usize) -> Option<(&Bucket, f64)> {
        self.cut_before(self.starts[h], self.now - self.widths[h])
    }

    /// The bucket just before `start` when `edge` cuts it, with the share of its span after
    /// the edge.
    fn cut_before(&self, start: usize, edge: i64) -> Option<(&Bucket, f64)> {
        let bucket = self.buckets.get(start.checked_sub(1)?)?;
        (bucket.last > edge).then(|| (bucket, (bucket.last - edge) as f64 / bucket.span as f64))
    }

    /// Where the window is now, to come back to.
    pub fn mark(&self) -> WindowMark<H> {
        WindowMark {
            now: self.now,
            starts: self.starts,
            counts: self.counts,
            sums: self.sums,
        }
    }

    /// Undoes everything since `mark`, which was taken after the last `settle`.
    pub fn rollback(&mut self, mark: &WindowMark<H>) {
        match self.change.take() {
            Some(Change::Inserted(at)) => {
                self.buckets.remove(at);
            }
            Some(Change::AddedTo(at, bucket)) => self.buckets[at] = bucket,
            None => {}
        }
        let WindowMark {
            now,
            starts,
            counts,
            sums,
        } = *mark;
        (self.now, self.starts, self.counts, self.sums) = (now, starts, counts, sums);
    }

    /// Commits the last event: drops the buckets that left every horizon and, past
    /// `MAX_BUCKETS`, merges the oldest. Changes nothing a window reports.
    pub fn settle(&mut self) {
        self.change = None;
        let mut gone = self.starts[0];
        if self.cut(0).is_some() {
            gone -= 1;
        }
        if gone > 0 {
            self.buckets.drain(..gone);
            for start in &mut self.starts {
                *start -= gone;
            }
        }
        let mut share = BUCKET_SHARE;
        if self.buckets.len() > MAX_BUCKETS {
            while self.buckets.len() > SETTLED_BUCKETS {
                self.merge(share);
                share *= 2.0;
            }
        }
    }

    /// Merges neighbouring buckets, walking from the newest: a run of buckets takes in the
    /// next older one while it then holds at most `share` of the entries newer than the run
    /// (and at least one entry), and never across a horizon's start.
    fn merge(&mut self, share: f64) {
        let len = self.buckets.len();
        let mut starts = self.starts.map(|s| if s == len { len } else { 0 });
        // Runs are written from the back, at `write..len`; the open run is at `write`.
        let mut write = len;
        let mut newer = 0u64;
        for read in (0..len).rev() {
            let bucket = self.buckets[read];
            let opens_horizon = self.starts.contains(&(read + 1));
            let run = (write < len).then(|| self.buckets[write]);
            match run {
                Some(run)
                    if !opens_horizon
                        && (run.count + bucket.count) as f64 <= (share * newer as f64).max(1.0) =>
                {
                    self.buckets[write] = Bucket {
                        last: run.last,
                        span: run.last - bucket.first(),
                        count: run.count + bucket.count,
                        sum: run.sum + bucket.sum,
                    };
                }
                _ => {
                    newer += run.map_or(0, |r| r.count);
                    write -= 1;
                    self.buckets[write] = bucket;
                }
            }
            for (h, start) in self.starts.iter().enumerate() {
                if *start == read {
                    starts[h] = write;
                }
            }
        }
        self.buckets.drain(..write);
        self.starts = starts.map(|s| s - write);
    }

    /// Buckets held, for tests and measurements of the bound.
    #[cfg(test)]
    fn buckets(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    fn window() -> RollingWindow<2> {
        RollingWindow::new([HOUR, MIN])
    }

    fn observe(w: &mut RollingWindow<2>, now: i64, ts: i64, value: f64) {
        w.settle();
        w.advance(now);
        w.insert(now, ts, value);
    }

    fn at<const H: usize>(w: &RollingWindow<H>, h: usize) -> (f64, f64) {
        (w.count(h), w.sum(h))
    }

    #[test]
    fn an_entry_exactly_one_width_old_has_left_the_window() {
        let mut w = window();
        observe(&mut w, 0, 0, 10.0);
        w.advance(MIN - 1);
        assert_eq!(at(&w, 1), (1.0, 10.0));
        w.advance(MIN);
        assert_eq!(at(&w, 1), (0.0, 0.0));
        assert_eq!(at(&w, 0), (1.0, 10.0));
        w.advance(HOUR);
        assert_eq!(at(&w, 0), (0.0, 0.0));
    }

    #[test]
    fn horizons_expire_independently_with_hand_computed_sums() {
        let mut w = window();
        observe(&mut w, 0, 0, 1.0);
        observe(&mut w, 30_000, 30_000, 2.0);
        observe(&mut w, 90_000, 90_000, 4.0);
        // At 90 s the 1 min window is (30 s, 90 s]: only the 4.0 entry; the 30 s entry is
        // exactly one minute old.
        assert_eq!(at(&w, 1), (1.0, 4.0));
        assert_eq!(at(&w, 0), (3.0, 7.0));
        observe(&mut w, HOUR + 30_000, HOUR + 30_000, 8.0);
        // The 1 h window is (30 s, 1 h 30 s]: 4.0 and 8.0.
        assert_eq!(at(&w, 0), (2.0, 12.0));
        assert_eq!(at(&w, 1), (1.0, 8.0));
    }

    #[test]
    fn late_entries_land_in_the_horizons_they_still_belong_to() {
        let mut w = window();
        observe(&mut w, 10 * MIN, 10 * MIN, 1.0);
        // Two minutes late: inside the hour, outside the minute.
        observe(&mut w, 10 * MIN, 8 * MIN, 5.0);
        assert_eq!(at(&w, 0), (2.0, 6.0));
        assert_eq!(at(&w, 1), (1.0, 1.0));
        // Ten seconds late: inside both.
        observe(&mut w, 10 * MIN, 10 * MIN - 10_000, 2.0);
        assert_eq!(at(&w, 1), (2.0, 3.0));
        // Later expiry still removes the late entries at the right time.
        w.advance(9 * MIN + 50_000 + MIN);
        assert_eq!(at(&w, 1), (1.0, 1.0));
        w.advance(8 * MIN + HOUR);
        assert_eq!(at(&w, 0), (2.0, 3.0));
    }

    #[test]
    fn entries_older_than_the_widest_horizon_are_not_kept() {
        let mut w = window();
        observe(&mut w, 2 * HOUR, 2 * HOUR, 1.0);
        observe(&mut w, 2 * HOUR, HOUR, 100.0);
        assert_eq!(at(&w, 0), (1.0, 1.0));
        w.settle();
        assert_eq!(w.buckets(), 1);
    }

    #[test]
    fn counts_as_of_a_later_time_match_an_advanced_window() {
        let mut w = window();
        for i in 0..700 {
            observe(&mut w, i * 5_000, i * 5_000, 1.0);
        }
        w.settle();
        for later in [0, 1, 30_000, 60_000, 61_000, HOUR / 2, HOUR, 2 * HOUR] {
            let at = 699 * 5_000 + later;
            let mut advanced = w.clone();
            advanced.advance(at);
            for h in 0..2 {
                assert_eq!(
                    w.count_at(h, at),
                    advanced.count(h),
                    "+{later} ms, horizon {h}"
                );
            }
        }
    }

    #[test]
    fn rollback_restores_the_window_bit_for_bit() {
        let mut w = window();
        for i in 0..40 {
            observe(&mut w, i * 10_000, i * 10_000, i as f64);
        }
        w.settle();
        let before = w.clone();
        let mark = w.mark();
        // An event that expires entries from both horizons and lands late.
        w.advance(HOUR + 200_000);
        w.insert(HOUR + 200_000, HOUR + 150_000, 7.0);
        assert_ne!(w, before);
        w.rollback(&mark);
        assert_eq!(w, before);
    }

    /// A million entries at a steady rate over a day: the buffer stays bounded, and every
    /// horizon is within the bucket share of the exact count and sum.
    #[test]
    fn a_million_entries_keep_a_bounded_buffer_within_the_share_of_exact() {
        const DAY: i64 = 24 * HOUR;
        let mut w = RollingWindow::new([DAY, HOUR, MIN]);
        let n = 1_000_000i64;
        let step = 2 * DAY / n;
        let mut most = 0;
        for i in 0..n {
            let now = i * step;
            w.settle();
            w.advance(now);
            w.insert(now, now, 2.0);
            most = most.max(w.buckets());
            if i % 50_000 == 49_999 {
                for (h, width) in [DAY, HOUR, MIN].into_iter().enumerate() {
                    // Entries at multiples of `step` in (now - width, now].
                    let exact = i.min((width - 1) / step) as f64 + 1.0;
                    let (count, sum) = at(&w, h);
                    let error = (count - exact).abs() / exact;
                    assert!(
                        error <= BUCKET_SHARE,
                        "horizon {h} at entry {i}: {count} vs {exact}"
                    );
                    assert!(((sum - 2.0 * exact).abs() / (2.0 * exact)) <= BUCKET_SHARE);
                }
            }
        }
        assert!(most <= MAX_BUCKETS + 1, "{most} buckets");
    }

    #[test]
    fn below_the_bucket_bound_a_window_is_exact() {
        let mut w = window();
        for i in 0..MAX_BUCKETS as i64 {
            observe(&mut w, i * 1_000, i * 1_000, 1.0);
        }
        w.settle();
        assert_eq!(w.buckets(), MAX_BUCKETS);
        assert_eq!(at(&w, 1), (60.0, 60.0));
        assert_eq!(at(&w, 0), (MAX_BUCKETS as f64, MAX_BUCKETS as f64));
    }
}
