//! `SeenSet`: the values (countries, merchants, categories) a customer has used before, each
//! with when it was last used and how often, stored sorted by a 64-bit FNV-1a hash of the
//! value (`fnv1a`) so the set is compact, stable across runs and cheap to snapshot. Callers
//! hash a value once and look it up, read and record it by that key. A set remembers the one
//! change the last event made, so `rollback` undoes it.

/// How many distinct values one set remembers; a customer past this is no longer "new" to
/// anything it has not seen, which errs towards not flagging.
const CAPACITY: usize = 512;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeenSet {
    /// Sorted by hash.
    values: Vec<Seen>,
    #[serde(skip)]
    change: Option<Change>,
}

/// The one change the last event made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Updated(usize, Seen),
    Inserted(usize),
}

/// One remembered value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seen {
    hash: u64,
    /// Newest event time the value was used at.
    pub last_ts: i64,
    /// Times it was used (saturating).
    pub uses: u32,
}

impl SeenSet {
    /// What is remembered of the value hashed to `key`.
    pub fn get(&self, key: u64) -> Option<Seen> {
        self.values
            .binary_search_by_key(&key, |s| s.hash)
            .ok()
            .map(|at| self.values[at])
    }

    /// Records a use of the value hashed to `key` at event time `ts`. At most once per event.
    pub fn record(&mut self, key: u64, ts: i64) {
        debug_assert!(self.change.is_none(), "two records between settles");
        match self.values.binary_search_by_key(&key, |s| s.hash) {
            Ok(at) => {
                let seen = &mut self.values[at];
                self.change = Some(Change::Updated(at, *seen));
                seen.last_ts = seen.last_ts.max(ts);
                seen.uses = seen.uses.saturating_add(1);
            }
            Err(at) if !self.is_full() => {
                self.values.insert(
                    at,
                    Seen {
                        hash: key,
                        last_ts: ts,
                        uses: 1,
                    },
                );
                self.change = Some(Change::Inserted(at));
            }
            Err(_) => {}
        }
    }

    /// Undoes the last event's record.
    pub fn rollback(&mut self) {
        match self.change.take() {
            Some(Change::Updated(at, seen)) => self.values[at] = seen,
            Some(Change::Inserted(at)) => {
                self.values.remove(at);
            }
            None => {}
        }
    }

    /// Commits the last event's record.
    pub fn settle(&mut self) {
        self.change = None;
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Whether the set stopped remembering new values: a value it does not hold may then have
    /// been used before, so it is not "new".
    pub fn is_full(&self) -> bool {
        self.values.len() >= CAPACITY
    }
}

/// The 64-bit FNV-1a hash the sets and the recent-payment list identify values by.
pub fn fnv1a(value: &str) -> u64 {
    value.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_what_it_saw_when_and_how_often() {
        let mut set = SeenSet::default();
        set.record(fnv1a("FR"), 20);
        set.settle();
        set.record(fnv1a("FR"), 10);
        assert!(set.get(fnv1a("FR")).is_some());
        assert_eq!(set.get(fnv1a("DE")), None);
        assert_eq!(set.len(), 1);
        let fr = set.get(fnv1a("FR")).unwrap();
        assert_eq!(
            (fr.last_ts, fr.uses),
            (20, 2),
            "a late use keeps the newest time"
        );
    }

    #[test]
    fn a_full_set_stops_calling_values_new() {
        let mut set = SeenSet::default();
        for i in 0..CAPACITY + 10 {
            set.settle();
            set.record(fnv1a(&format!("m-{i}")), 0);
        }
        assert_eq!(set.len(), CAPACITY);
        assert!(set.is_full());
        assert_eq!(set.get(fnv1a("never-seen")), None);
    }

    #[test]
    fn rollback_undoes_an_update_and_an_insert() {
        let mut set = SeenSet::default();
        set.record(fnv1a("FR"), 20);
        set.settle();
        let before = set.clone();
        set.record(fnv1a("FR"), 30);
        set.rollback();
        assert_eq!(set, before);
        set.record(fnv1a("DE"), 30);
        set.rollback();
        assert_eq!(set, before);
    }
}
