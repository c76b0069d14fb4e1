//! `DailyActivity`: a customer's activity per UTC day over the last year, for the churn
//! features that look back weeks and months (activities and purchases in 30, 60, 90 and 365
//! days, spend in 90 and 365). A day with activity costs 12 bytes however many events it
//! had, so a customer active every day keeps about 4 KiB and one active weekly about 600
//! bytes; per-event buckets would cost 32 bytes an event.
//!
//! A window of `n` days as of time `t` holds the `n` UTC days ending with `t`'s, so its edge
//! is exact to the day. Days that leave the year are dropped at `settle`; an event changes one
//! day, which `rollback` undoes.

use std::collections::VecDeque;

use super::DAY;

/// The widest window, in days.
const YEAR_DAYS: i64 = 365;

/// Window widths `totals` reports, in days.
pub const WINDOW_DAYS: [i64; 4] = [30, 60, 90, YEAR_DAYS];

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DailyActivity {
    /// In day order, one per day with activity.
    days: VecDeque<Day>,
    /// The one change the last event made, undone by `rollback`.
    #[serde(skip)]
    change: Option<Change>,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Day {
    /// Days since the epoch.
    day: i32,
    /// Events of any kind, and payments among them (both saturating).
    events: u16,
    purchases: u16,
    /// Sum of the payments' amounts.
    spend: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Change {
    Inserted(usize),
    Updated(usize, Day),
}

/// Activity in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub events: f64,
    pub purchases: f64,
    pub spend: f64,
}

fn day_of(ts: i64) -> i32 {
    ts.div_euclid(DAY).clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

impl DailyActivity {
    /// Counts an event at `ts`, a payment of `amount` when one is given. At most once between
    /// two `settle` calls.
    pub fn record(&mut self, ts: i64, amount: Option<f64>) {
        debug_assert!(self.change.is_none(), "two records between settles");
        let day = day_of(ts);
        let at = self.days.partition_point(|d| d.day < day);
        let fold = |d: &mut Day| {
            d.events = d.events.saturating_add(1);
            if let Some(amount) = amount {
                d.purchases = d.purchases.saturating_add(1);
                d.spend += amount as f32;
            }
        };
        match self.days.get_mut(at).filter(|d| d.day == day) {
            Some(existing) => {
                self.change = Some(Change::Updated(at, *existing));
                fold(existing);
            }
            None => {
                let mut new = Day {
                    day,
                    events: 0,
                    purchases: 0,
                    spend: 0.0,
                };
                fold(&mut new);
                self.days.insert(at, new);
                self.change = Some(Change::Inserted(at));
            }
        }
    }

    /// Activity in each of `WINDOW_DAYS` as of `at`.
    pub fn totals(&self, at: i64) -> [Totals; WINDOW_DAYS.len()] {
        let today = day_of(at) as i64;
        let mut totals = [Totals::default(); WINDOW_DAYS.len()];
        for d in self.days.iter().rev() {
            let age = today - d.day as i64;
            if age >= YEAR_DAYS {
                break;
            }
            for (total, width) in totals.iter_mut().zip(WINDOW_DAYS) {
                if (0..width).contains(&age) {
                    total.events += f64::from(d.events);
                    total.purchases += f64::from(d.purchases);
                    total.spend += f64::from(d.spend);
                }
            }
        }
        totals
    }

    /// Commits the last event and drops the days a year before `now` or older.
    pub fn settle(&mut self, now: i64) {
        self.change = None;
        let oldest = day_of(now) as i64 - YEAR_DAYS;
        while self.days.front().is_some_and(|d| (d.day as i64) <= oldest) {
            self.days.pop_front();
        }
    }

    /// Undoes the last event's change, if `settle` has not committed it.
    pub fn rollback(&mut self) {
        match self.change.take() {
            Some(Change::Inserted(at)) => {
                self.days.remove(at);
            }
            Some(Change::Updated(at, before)) => self.days[at] = before,
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_763_805_600_000; // 2025-11-22 10:00 UTC

    #[test]
    fn windows_count_whole_days_and_a_day_costs_one_entry() {
        let mut a = DailyActivity::default();
        for (i, ts) in [T0, T0 + 1_000, T0 + 10 * DAY, T0 + 50 * DAY]
            .into_iter()
            .enumerate()
        {
            a.record(ts, (i % 2 == 0).then_some(10.0));
            a.settle(ts);
        }
        assert_eq!(a.days.len(), 3);
        let [d30, d60, d90, year] = a.totals(T0 + 59 * DAY);
        assert_eq!((d30.events, d30.purchases, d30.spend), (1.0, 0.0, 0.0));
        // Day 0 is 59 days back: inside 60 days.
        assert_eq!((d60.events, d60.purchases, d60.spend), (4.0, 2.0, 20.0));
        assert_eq!(d90, d60);
        assert_eq!(year, d60);
        let [_, d60, _, _] = a.totals(T0 + 60 * DAY);
        assert_eq!(d60.events, 2.0);
        assert_eq!(a.totals(T0 + 415 * DAY)[3], Totals::default());
        a.settle(T0 + 415 * DAY);
        assert!(a.days.is_empty());
    }

    #[test]
    fn rollback_undoes_the_last_event_whether_it_made_a_day_or_joined_one() {
        let mut a = DailyActivity::default();
        a.record(T0, Some(5.0));
        a.settle(T0);
        let before = a.clone();
        a.record(T0 + 1, Some(7.0));
        a.rollback();
        assert_eq!(a, before);
        a.record(T0 - 2 * DAY, None);
        a.rollback();
        assert_eq!(a, before);
    }
}
