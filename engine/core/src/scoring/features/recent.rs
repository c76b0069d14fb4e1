//! `RecentPayments`: the customer's last day of payments in detail (time, amount, merchant
//! and category hashes), for the features a running sum cannot give: how many different
//! merchants and categories, how many small amounts came before a large one, and the velocity
//! rules' counts and sums over any window up to a day.
//!
//! It keeps at most `CAPACITY` payments, the newest, so each feature costs a bounded scan
//! however busy the customer is; past that, the features describe the newest `CAPACITY`
//! payments of the day. Payments that leave are only passed over until `settle`, so an
//! event's changes are undone from a `mark` and the one insert the list remembers.

use std::collections::VecDeque;

const CAPACITY: usize = 64;

/// What a velocity rule measures over a window of the customer's payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Velocity {
    Count,
    Sum,
    DistinctMerchants,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecentPayments {
    /// Time-ordered; from `head` on, no older than the horizon at the last `advance`.
    payments: VecDeque<RecentPayment>,
    /// The payments before this index have left, and go at the next `settle`.
    head: usize,
    /// Where the last event inserted, undone by `rollback`.
    #[serde(skip)]
    inserted: Option<usize>,
}

/// Where the list was before an event: restores it with `RecentPayments::rollback`.
#[derive(Debug, Clone, Copy)]
pub struct RecentMark {
    head: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecentPayment {
    pub ts: i64,
    pub amount: f64,
    pub merchant: u64,
    pub category: u64,
}

impl RecentPayments {
    /// Forgets payments at or before `edge` (an entry exactly a horizon old has left it).
    pub fn advance(&mut self, edge: i64) {
        while self.payments.get(self.head).is_some_and(|p| p.ts <= edge) {
            self.head += 1;
        }
    }

    /// Adds a payment in time order; when full, the oldest goes. At most once per event.
    pub fn insert(&mut self, payment: RecentPayment) {
        debug_assert!(self.inserted.is_none(), "two inserts between settles");
        let at = self
            .payments
            .partition_point(|p| p.ts <= payment.ts)
            .max(self.head);
        self.payments.insert(at, payment);
        self.inserted = Some(at);
        if self.payments.len() - self.head > CAPACITY {
            self.head += 1;
        }
    }

    /// The payments inside the horizon, oldest first.
    fn live(&self) -> impl DoubleEndedIterator<Item = &RecentPayment> {
        self.payments.range(self.head..)
    }

    /// Where the list is now, to come back to.
    pub fn mark(&self) -> RecentMark {
        RecentMark { head: self.head }
    }

    /// Undoes everything since `mark`, which was taken after the last `settle`.
    pub fn rollback(&mut self, mark: &RecentMark) {
        if let Some(at) = self.inserted.take() {
            self.payments.remove(at);
        }
        self.head = mark.head;
    }

    /// Commits the last event: drops the payments that left.
    pub fn settle(&mut self) {
        self.inserted = None;
        self.payments.drain(..self.head);
        self.head = 0;
    }

    /// Different merchants and categories among the payments after each of two edges, the
    /// later one first: `[(merchants, categories) after near, (…) after far]`, in one pass.
    pub fn distinct_since(&self, near: i64, far: i64) -> [(usize, usize); 2] {
        debug_assert!(near >= far);
        let mut merchants = [0u64; CAPACITY];
        let mut categories = [0u64; CAPACITY];
        let (mut m, mut c) = (0, 0);
        let mut at_near = None;
        for p in self.live().rev().take_while(|p| p.ts > far) {
            if at_near.is_none() && p.ts <= near {
                at_near = Some((m, c));
            }
            if !merchants[..m].contains(&p.merchant) {
                merchants[m] = p.merchant;
                m += 1;
            }
            if !categories[..c].contains(&p.category) {
                categories[c] = p.category;
                c += 1;
            }
        }
        [at_near.unwrap_or((m, c)), (m, c)]
    }

    /// A velocity over the payments after `since` (at most a day back), optionally only those
    /// over `amount_over`: how many, their total amount, or how many different merchants. Past
    /// `CAPACITY` payments in the day, it counts the newest `CAPACITY`.
    pub fn velocity(&self, since: i64, amount_over: Option<f64>, measure: Velocity) -> f64 {
        let payments = self
            .live()
            .rev()
            .take_while(|p| p.ts > since)
            .filter(|p| amount_over.is_none_or(|over| p.amount > over));
        match measure {
            Velocity::Count => payments.count() as f64,
            Velocity::Sum => payments.map(|p| p.amount).sum(),
            Velocity::DistinctMerchants => {
                let mut merchants = [0u64; CAPACITY];
                let mut m = 0;
                for p in payments {
                    if !merchants[..m].contains(&p.merchant) {
                        merchants[m] = p.merchant;
                        m += 1;
                    }
                }
                m as f64
            }
        }
    }

    /// Payments remembered (all inside the horizon) smaller than `amount` by more than
    /// `factor` times.
    pub fn smaller_than(&self, amount: f64, factor: f64) -> usize {
        self.live().filter(|p| p.amount * factor < amount).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid(ts: i64, amount: f64, merchant: u64, category: u64) -> RecentPayment {
        RecentPayment {
            ts,
            amount,
            merchant,
            category,
        }
    }

    /// One event's insert, committed as the customer state commits it.
    fn insert(recent: &mut RecentPayments, payment: RecentPayment) {
        recent.settle();
        recent.insert(payment);
    }

    #[test]
    fn distinct_values_after_an_edge_and_late_payments_in_order() {
        let mut recent = RecentPayments::default();
        insert(&mut recent, paid(10, 5.0, 1, 7));
        insert(&mut recent, paid(30, 5.0, 2, 7));
        insert(&mut recent, paid(20, 5.0, 3, 8));
        assert_eq!(recent.distinct_since(20, 0), [(1, 1), (3, 2)]);
        // The payment exactly at an edge is out.
        assert_eq!(recent.distinct_since(10, 10)[0], (2, 2));
        assert_eq!(recent.distinct_since(40, 0), [(0, 0), (3, 2)]);
        recent.advance(20);
        assert_eq!(recent.distinct_since(0, 0)[1], (1, 1));
    }

    #[test]
    fn smaller_amounts_and_the_capacity_bound() {
        let mut recent = RecentPayments::default();
        for ts in 0..(CAPACITY as i64 + 6) {
            insert(&mut recent, paid(ts, 1.0, ts as u64, 0));
        }
        insert(&mut recent, paid(1_000, 900.0, 0, 0));
        recent.settle();
        assert_eq!(recent.payments.len(), CAPACITY);
        assert_eq!(recent.smaller_than(900.0, 5.0), CAPACITY - 1);
        assert_eq!(recent.smaller_than(4.0, 5.0), 0);
        assert_eq!(recent.distinct_since(0, 0)[1].0, CAPACITY);
    }

    #[test]
    fn velocities_over_a_window_with_an_amount_floor() {
        let mut recent = RecentPayments::default();
        for (ts, amount, merchant) in [
            (10, 600.0, 1),
            (20, 50.0, 2),
            (30, 700.0, 1),
            (40, 800.0, 3),
        ] {
            insert(&mut recent, paid(ts, amount, merchant, 0));
        }
        assert_eq!(recent.velocity(0, None, Velocity::Count), 4.0);
        assert_eq!(recent.velocity(0, Some(500.0), Velocity::Count), 3.0);
        // The payment exactly at the edge is out.
        assert_eq!(recent.velocity(20, Some(500.0), Velocity::Count), 2.0);
        assert_eq!(recent.velocity(15, None, Velocity::Sum), 1_550.0);
        assert_eq!(
            recent.velocity(0, Some(500.0), Velocity::DistinctMerchants),
            2.0
        );
        assert_eq!(recent.velocity(0, None, Velocity::DistinctMerchants), 3.0);
    }

    #[test]
    fn rollback_restores_the_list_bit_for_bit() {
        let mut recent = RecentPayments::default();
        for ts in 0..(CAPACITY as i64) {
            insert(&mut recent, paid(ts * 10, 1.0, ts as u64, 0));
        }
        recent.settle();
        let before = recent.clone();
        let mark = recent.mark();
        recent.advance(100);
        recent.insert(paid(55, 3.0, 9, 9));
        assert_ne!(recent, before);
        recent.rollback(&mark);
        assert_eq!(recent, before);
    }
}
