//! `RollingWindow`: exact sliding windows over event time, several horizons over one buffer.
//!
//! A window of width `W` evaluated at time `t` holds the entries with `t - W < ts <= t`: an
//! entry exactly `W` old has left it. All horizons share one time-ordered buffer sized for the
//! widest, each with its own start index and running sum, so a customer's 1 min, 1 h and 24 h
//! payment windows cost one entry per payment, and each update is amortised O(1).

use std::collections::VecDeque;

/// `H` exact sliding windows of different widths over one series of `(ts, value)` entries.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RollingWindow<const H: usize> {
    /// Time-ordered entries no older than the widest horizon.
    entries: VecDeque<(i64, f64)>,
    /// Widths in milliseconds, widest first.
    #[serde(with = "super::fixed_array")]
    widths: [i64; H],
    /// Index of the first entry inside each horizon.
    #[serde(with = "super::fixed_array")]
    starts: [usize; H],
    /// Running sums, stored exactly so a restored window goes on bit for bit.
    #[serde(with = "super::fixed_array")]
    sums: [f64; H],
}

impl<const H: usize> RollingWindow<H> {
    /// Makes this a copy of `other`, reusing this one's buffer.
    pub fn copy_from(&mut self, other: &Self) {
        let RollingWindow {
            entries,
            widths,
            starts,
            sums,
        } = other;
        self.entries.clone_from(entries);
        self.widths = *widths;
        self.starts = *starts;
        self.sums = *sums;
    }

    /// Windows of the given widths (milliseconds), widest first.
    pub fn new(widths: [i64; H]) -> Self {
        assert!(
            widths.windows(2).all(|w| w[0] >= w[1]),
            "rolling window widths must be given widest first"
        );
        RollingWindow {
            entries: VecDeque::new(),
            widths,
            starts: [0; H],
            sums: [0.0; H],
        }
    }

    /// Moves every horizon's left edge to `now`, expiring what fell out.
    pub fn advance(&mut self, now: i64) {
        for h in 0..H {
            let edge = now - self.widths[h];
            while let Some(&(ts, value)) = self.entries.get(self.starts[h]) {
                if ts > edge {
                    break;
                }
                self.sums[h] -= value;
                self.starts[h] += 1;
            }
            if self.starts[h] == self.entries.len() {
                // Empty: forget accumulated rounding error.
                self.sums[h] = 0.0;
            }
        }
        let expired = self.starts[0];
        if expired > 0 {
            self.entries.drain(..expired);
            for start in &mut self.starts {
                *start -= expired;
            }
        }
    }

    /// Adds an entry at event time `ts`, as seen at time `now >= ts` (the customer's newest
    /// event time). Entries may arrive late: they are placed in time order, and counted only
    /// by the horizons they still fall in. Call `advance(now)` first.
    pub fn insert(&mut self, now: i64, ts: i64, value: f64) {
        debug_assert!(ts <= now, "insert at {ts} after now {now}");
        if ts <= now - self.widths[0] {
            return;
        }
        let at = self.entries.partition_point(|&(t, _)| t <= ts);
        self.entries.insert(at, (ts, value));
        for h in 0..H {
            if ts > now - self.widths[h] {
                self.sums[h] += value;
            } else {
                self.starts[h] += 1;
            }
        }
    }

    /// Number of entries inside horizon `h`.
    pub fn count(&self, h: usize) -> usize {
        self.entries.len() - self.starts[h]
    }

    /// Sum of the values inside horizon `h`.
    pub fn sum(&self, h: usize) -> f64 {
        self.sums[h]
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
        w.advance(now);
        w.insert(now, ts, value);
    }

    #[test]
    fn an_entry_exactly_one_width_old_has_left_the_window() {
        let mut w = window();
        observe(&mut w, 0, 0, 10.0);
        w.advance(MIN - 1);
        assert_eq!((w.count(1), w.sum(1)), (1, 10.0));
        w.advance(MIN);
        assert_eq!((w.count(1), w.sum(1)), (0, 0.0));
        assert_eq!((w.count(0), w.sum(0)), (1, 10.0));
        w.advance(HOUR);
        assert_eq!((w.count(0), w.sum(0)), (0, 0.0));
    }

    #[test]
    fn horizons_expire_independently_with_hand_computed_sums() {
        let mut w = window();
        observe(&mut w, 0, 0, 1.0);
        observe(&mut w, 30_000, 30_000, 2.0);
        observe(&mut w, 90_000, 90_000, 4.0);
        // At 90 s the 1 min window is (30 s, 90 s]: only the 4.0 entry; the 30 s entry is
        // exactly one minute old.
        assert_eq!((w.count(1), w.sum(1)), (1, 4.0));
        assert_eq!((w.count(0), w.sum(0)), (3, 7.0));
        observe(&mut w, HOUR + 30_000, HOUR + 30_000, 8.0);
        // The 1 h window is (30 s, 1 h 30 s]: 4.0 and 8.0.
        assert_eq!((w.count(0), w.sum(0)), (2, 12.0));
        assert_eq!((w.count(1), w.sum(1)), (1, 8.0));
    }

    #[test]
    fn late_entries_land_in_the_horizons_they_still_belong_to() {
        let mut w = window();
        observe(&mut w, 10 * MIN, 10 * MIN, 1.0);
        // Two minutes late: inside the hour, outside the minute.
        observe(&mut w, 10 * MIN, 8 * MIN, 5.0);
        assert_eq!((w.count(0), w.sum(0)), (2, 6.0));
        assert_eq!((w.count(1), w.sum(1)), (1, 1.0));
        // Ten seconds late: inside both.
        observe(&mut w, 10 * MIN, 10 * MIN - 10_000, 2.0);
        assert_eq!((w.count(1), w.sum(1)), (2, 3.0));
        // Later expiry still removes the late entries at the right time.
        w.advance(9 * MIN + 50_000 + MIN);
        assert_eq!((w.count(1), w.sum(1)), (1, 1.0));
        w.advance(8 * MIN + HOUR);
        assert_eq!((w.count(0), w.sum(0)), (2, 3.0));
    }

    #[test]
    fn entries_older_than_the_widest_horizon_are_not_kept() {
        let mut w = window();
        observe(&mut w, 2 * HOUR, 2 * HOUR, 1.0);
        observe(&mut w, 2 * HOUR, HOUR, 100.0);
        assert_eq!((w.count(0), w.sum(0)), (1, 1.0));
    }
}
