//! `RecentPayments`: the customer's last day of payments in detail (time, amount, merchant
//! and category hashes), for the features a running sum cannot give: how many different
//! merchants and categories, and how many small amounts came before a large one.
//!
//! It keeps at most `CAPACITY` payments, the newest, so each feature costs a bounded scan
//! however busy the customer is; past that, the features describe the newest `CAPACITY`
//! payments of the day.

use std::collections::VecDeque;

const CAPACITY: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecentPayments {
    /// Time-ordered, no older than the horizon at the last `advance`.
    payments: VecDeque<RecentPayment>,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecentPayment {
    pub ts: i64,
    pub amount: f64,
    pub merchant: u64,
    pub category: u64,
}

impl RecentPayments {
    /// Makes this a copy of `other`, reusing this one's buffer.
    pub fn copy_from(&mut self, other: &RecentPayments) {
        self.payments.clone_from(&other.payments);
    }

    /// Forgets payments at or before `edge` (an entry exactly a horizon old has left it).
    pub fn advance(&mut self, edge: i64) {
        while self.payments.front().is_some_and(|p| p.ts <= edge) {
            self.payments.pop_front();
        }
    }

    /// Adds a payment in time order; when full, the oldest goes.
    pub fn insert(&mut self, payment: RecentPayment) {
        let at = self.payments.partition_point(|p| p.ts <= payment.ts);
        self.payments.insert(at, payment);
        if self.payments.len() > CAPACITY {
            self.payments.pop_front();
        }
    }

    /// Different merchants and categories among the payments after each of two edges, the
    /// later one first: `[(merchants, categories) after near, (…) after far]`, in one pass.
    pub fn distinct_since(&self, near: i64, far: i64) -> [(usize, usize); 2] {
        debug_assert!(near >= far);
        let mut merchants = [0u64; CAPACITY];
        let mut categories = [0u64; CAPACITY];
        let (mut m, mut c) = (0, 0);
        let mut at_near = None;
        for p in self.payments.iter().rev().take_while(|p| p.ts > far) {
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

    /// Payments remembered (all inside the horizon) smaller than `amount` by more than
    /// `factor` times.
    pub fn smaller_than(&self, amount: f64, factor: f64) -> usize {
        self.payments
            .iter()
            .filter(|p| p.amount * factor < amount)
            .count()
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

    #[test]
    fn distinct_values_after_an_edge_and_late_payments_in_order() {
        let mut recent = RecentPayments::default();
        recent.insert(paid(10, 5.0, 1, 7));
        recent.insert(paid(30, 5.0, 2, 7));
        recent.insert(paid(20, 5.0, 3, 8));
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
            recent.insert(paid(ts, 1.0, ts as u64, 0));
        }
        recent.insert(paid(1_000, 900.0, 0, 0));
        assert_eq!(recent.payments.len(), CAPACITY);
        assert_eq!(recent.smaller_than(900.0, 5.0), CAPACITY - 1);
        assert_eq!(recent.smaller_than(4.0, 5.0), 0);
        assert_eq!(recent.distinct_since(0, 0)[1].0, CAPACITY);
    }
}
