//! `SeenSet`: the values (countries, merchants, MCCs) a customer has used before, stored as
//! sorted 64-bit FNV-1a hashes so the set is compact, stable across runs and cheap to
//! snapshot.

/// How many distinct values one set remembers; a customer past this is no longer "new" to
/// anything it has not seen, which errs towards not flagging.
const CAPACITY: usize = 512;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeenSet {
    hashes: Vec<u64>,
}

impl SeenSet {
    /// Makes this a copy of `other`, reusing this one's buffer.
    pub fn copy_from(&mut self, other: &SeenSet) {
        self.hashes.clone_from(&other.hashes);
    }

    pub fn contains(&self, value: &str) -> bool {
        self.hashes.len() >= CAPACITY || self.hashes.binary_search(&fnv1a(value)).is_ok()
    }

    pub fn insert(&mut self, value: &str) {
        let hash = fnv1a(value);
        if let Err(at) = self.hashes.binary_search(&hash) {
            if self.hashes.len() < CAPACITY {
                self.hashes.insert(at, hash);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

fn fnv1a(value: &str) -> u64 {
    value.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_what_it_saw_and_nothing_else() {
        let mut set = SeenSet::default();
        set.insert("FR");
        set.insert("FR");
        assert!(set.contains("FR"));
        assert!(!set.contains("DE"));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn a_full_set_stops_calling_values_new() {
        let mut set = SeenSet::default();
        for i in 0..CAPACITY + 10 {
            set.insert(&format!("m-{i}"));
        }
        assert_eq!(set.len(), CAPACITY);
        assert!(set.contains("never-seen"));
    }
}
