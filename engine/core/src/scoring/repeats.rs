//! `RecentEvents`: the events a customer had processed lately, so a repeated one (a producer's
//! retry, a replayed partition) is recognised instead of being counted twice.
//!
//! Each processed event is remembered by a hash of its id, a SHA-256 prefix of its record and
//! the decision it got (written as its published JSON when the state is stored), for `engine.repeat_horizon` of event time and at most `CAPACITY`
//! events. A record seen again gets the same decision again (same id, same content: consumers
//! de-duplicate it) and is not folded into the features. A different record reusing an event
//! id is not a repeat: it is refused, since deciding it would publish a second decision under
//! the first one's id. The memory is part of the customer's state, so it survives passivation
//! and restarts.

use std::collections::VecDeque;

use sha2::{Digest, Sha256};

use super::features::fnv1a;
use crate::decision::Decision;

/// Events remembered per customer, the newest: a customer sending more than this within the
/// horizon has only their latest recognised.
const CAPACITY: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecentEvents {
    /// Hashes of the remembered event ids, oldest first, beside `events` for a fast scan.
    ids: VecDeque<u64>,
    events: VecDeque<Remembered>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Remembered {
    ts: i64,
    /// The first eight bytes of the SHA-256 of the record.
    content: u64,
    /// The decision it got.
    #[serde(with = "decision_json")]
    decision: Option<Box<Decision>>,
}

/// A remembered decision in stored state: its published JSON. `Decision` leaves out empty
/// fields when serialised, which the state's non-self-describing format cannot read back.
mod decision_json {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::decision::Decision;

    pub fn serialize<S: Serializer>(
        decision: &Option<Box<Decision>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        decision.as_ref().map(|d| d.to_json()).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Box<Decision>>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|json| {
                serde_json::from_str(&json)
                    .map(Box::new)
                    .map_err(D::Error::custom)
            })
            .transpose()
    }
}

/// What a customer's memory says about an event.
#[derive(Debug, PartialEq)]
pub enum Seen<'a> {
    /// Not processed within the horizon.
    New,
    /// The same record again, with the decision it got the first time.
    Repeat(Option<&'a Decision>),
    /// A different record under an id already processed.
    IdReused,
}

impl RecentEvents {
    /// Whether this customer already processed the event `event_id` carried by `raw`.
    pub fn seen(&self, event_id: &str, raw: &[u8]) -> Seen<'_> {
        let id = fnv1a(event_id);
        let (older, newer) = self.ids.as_slices();
        let found = last_of(newer, id)
            .map(|i| older.len() + i)
            .or_else(|| last_of(older, id));
        let Some(at) = found else {
            return Seen::New;
        };
        let earlier = &self.events[at];
        if earlier.content == content(raw) {
            Seen::Repeat(earlier.decision.as_deref())
        } else {
            Seen::IdReused
        }
    }

    /// Remembers a processed event and its decision, and forgets what is older than
    /// `horizon_ms` before the customer's newest time `now`.
    pub fn remember(
        &mut self,
        event_id: &str,
        raw: &[u8],
        ts: i64,
        decision: Option<&Decision>,
        now: i64,
        horizon_ms: i64,
    ) {
        while self.events.len() >= CAPACITY
            || self
                .events
                .front()
                .is_some_and(|e| e.ts <= now - horizon_ms)
        {
            self.ids.pop_front();
            self.events.pop_front();
        }
        self.ids.push_back(fnv1a(event_id));
        self.events.push_back(Remembered {
            ts,
            content: content(raw),
            decision: decision.map(|d| Box::new(d.clone())),
        });
    }
}

/// The last position of `id` in `ids`. Eight ids are compared at a time without a branch, so
/// the usual answer, not there, costs a few vector compares even for a full memory.
fn last_of(ids: &[u64], id: u64) -> Option<usize> {
    for (c, chunk) in ids.chunks(8).enumerate().rev() {
        if chunk.iter().fold(false, |hit, &known| hit | (known == id)) {
            return chunk
                .iter()
                .rposition(|&known| known == id)
                .map(|i| c * 8 + i);
        }
    }
    None
}

fn content(raw: &[u8]) -> u64 {
    let digest = Sha256::digest(raw);
    u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn the_same_record_is_a_repeat_and_another_record_under_its_id_is_not() {
        let mut recent = RecentEvents::default();
        recent.remember("e-1", b"{\"a\":1}", 0, None, 0, 24 * HOUR);
        assert_eq!(recent.seen("e-1", b"{\"a\":1}"), Seen::Repeat(None));
        assert_eq!(recent.seen("e-1", b"{\"a\":2}"), Seen::IdReused);
        assert_eq!(recent.seen("e-2", b"{\"a\":1}"), Seen::New);
    }

    #[test]
    fn events_past_the_horizon_or_the_capacity_are_forgotten() {
        let mut recent = RecentEvents::default();
        recent.remember("e-old", b"x", 0, None, 0, 24 * HOUR);
        recent.remember("e-new", b"y", 24 * HOUR, None, 24 * HOUR, 24 * HOUR);
        assert_eq!(recent.seen("e-old", b"x"), Seen::New);
        assert_eq!(recent.seen("e-new", b"y"), Seen::Repeat(None));
        for i in 0..CAPACITY {
            let id = format!("e-{i}");
            recent.remember(&id, b"z", 25 * HOUR, None, 25 * HOUR, 24 * HOUR);
        }
        assert_eq!(recent.seen("e-new", b"y"), Seen::New);
        assert_eq!(recent.seen("e-0", b"z"), Seen::Repeat(None));
    }
}
