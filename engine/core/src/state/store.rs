//! The state store: customers' encoded state, keyed by customer id, in one redb file
//! (`customers.redb`) under the run's state directory, or in a temporary directory that goes
//! with the run when it has none. It holds:
//!
//! - `snapshot`: every customer's state as of the last checkpoint, written in the same
//!   transaction as the checkpoint's source offsets, so the two always agree;
//! - `passivated`: states handed over by passivated actors since then. They may include events
//!   past the checkpoint, so opening the store drops them: after a crash, those events are
//!   read again and applied to the snapshot state, never twice.
//!
//! Beside each of the two, a time-ordered index of inactivity checks (`snapshot_timers`,
//! `passivated_timers`): a key per stored customer with a check to come, the due time first,
//! so the router finds the passivated customers whose checks the watermark has passed by
//! reading keys in order, and a million quiet customers' timers cost no memory. A stored state
//! starts with its due time (8 bytes), so replacing it finds its old key. The checkpoint
//! table keeps each partition's newest event time beside its offsets, for the watermark.
//!
//! redb was chosen over fjall by measurement on this machine (200k states of 300 bytes, written
//! in 25k batches): redb wrote 288k states/s and read one back in 2.5 µs; fjall wrote 771k/s
//! but read in 3.8 µs and compacts on background threads. Reads happen on the router's path
//! when a customer comes back, writes in batches off it, so the faster read and the absence
//! of background threads on a two-core machine decided it.

// redb's error type is large; it only exists on the failure path of a store transaction.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::error::{Error, Result};
use crate::event::Offsets;
use crate::pipeline::watermark::EventTimes;

const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");
const PASSIVATED: TableDefinition<&str, &[u8]> = TableDefinition::new("passivated");
/// `due_key(due, customer)` → nothing, for the customers in each state table.
const SNAPSHOT_TIMERS: TableDefinition<&[u8], ()> = TableDefinition::new("snapshot_timers");
const PASSIVATED_TIMERS: TableDefinition<&[u8], ()> = TableDefinition::new("passivated_timers");
/// redb's page cache. Its default (1 GiB) took a third of the engine's memory at a million
/// customers; at 64 MiB, restores read through to the file often enough to cost tail latency.
const CACHE_BYTES: usize = 256 << 20;

/// Customer id → their profile as JSON (`crate::profile`): reference data, kept apart from the
/// customers' state and not rolled back by checkpoints, since the latest record wins.
const PROFILES: TableDefinition<&str, &[u8]> = TableDefinition::new("profiles");
/// Profile source spec → per partition, the offset to resume following it from, as JSON.
const PROFILE_OFFSETS: TableDefinition<&str, &str> = TableDefinition::new("profile_offsets");

/// Source spec → its checkpoint offsets as JSON.
const CHECKPOINTS: TableDefinition<&str, &str> = TableDefinition::new("checkpoints");
/// Source spec → each partition's newest event time at its checkpoint, as JSON.
const EVENT_TIMES: TableDefinition<&str, &str> = TableDefinition::new("event_times");
/// Source spec → the partitions whose customers the store holds, as JSON.
const PARTITIONS: TableDefinition<&str, &str> = TableDefinition::new("partitions");
/// Source spec → per partition, the offset below which the log was decided before the state
/// was rebuilt from it, as JSON.
const REPLAYED: TableDefinition<&str, &str> = TableDefinition::new("replayed");

/// A stored state's due time when the customer has no inactivity check to come.
const NO_DUE: i64 = i64::MAX;

/// One customer's encoded state, and when their next inactivity check is due.
#[derive(Debug, Clone)]
pub struct Entry {
    pub customer_id: Arc<str>,
    pub state: Arc<[u8]>,
    pub due: Option<i64>,
}

/// A passivated customer whose inactivity check the watermark has passed.
pub type DueCustomer = (i64, Arc<str>);

/// The timer index key: the due time (order-preserving big-endian), then the customer id.
fn due_key(due: i64, customer_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + customer_id.len());
    key.extend_from_slice(&((due as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(customer_id.as_bytes());
    key
}

/// The due time and customer id of a timer index key.
fn split_due_key(key: &[u8]) -> Option<(i64, &str)> {
    let (due, id) = key.split_first_chunk::<8>()?;
    let due = (u64::from_be_bytes(*due) ^ (1 << 63)) as i64;
    Some((due, std::str::from_utf8(id).ok()?))
}

/// A stored value: the due time, then the encoded state.
fn stored_value(entry: &Entry) -> Vec<u8> {
    let mut value = Vec::with_capacity(8 + entry.state.len());
    value.extend_from_slice(&entry.due.unwrap_or(NO_DUE).to_be_bytes());
    value.extend_from_slice(&entry.state);
    value
}

fn stored_due(value: &[u8]) -> Option<i64> {
    let due = i64::from_be_bytes(*value.first_chunk::<8>()?);
    (due != NO_DUE).then_some(due)
}

/// Puts `id`'s stored `value` in `states`, keeping `timers` in step: the old due key goes and
/// the new one comes.
fn put_with_due(
    states: &mut redb::Table<&str, &[u8]>,
    timers: &mut redb::Table<&[u8], ()>,
    id: &str,
    value: &[u8],
) -> std::result::Result<(), redb::Error> {
    let old = states
        .insert(id, value)?
        .and_then(|old| stored_due(old.value()));
    if let Some(old) = old {
        timers.remove(due_key(old, id).as_slice())?;
    }
    if let Some(due) = stored_due(value) {
        timers.insert(due_key(due, id).as_slice(), ())?;
    }
    Ok(())
}

pub struct StateStore {
    db: Database,
    path: PathBuf,
    /// Keeps a temporary store's directory alive as long as the store.
    _temporary: Option<tempfile::TempDir>,
}

impl StateStore {
    /// Opens (or creates) the store in `dir`, or in a new temporary directory, and drops the
    /// states passivated after its last checkpoint.
    pub fn open(dir: Option<&Path>) -> Result<StateStore> {
        let (dir, temporary) = match dir {
            Some(dir) => (dir.to_owned(), None),
            None => {
                let temporary = tempfile::Builder::new()
                    .prefix("vigil-state-")
                    .tempdir()
                    .map_err(|e| Error::Store {
                        path: std::env::temp_dir(),
                        detail: format!("cannot create a temporary directory: {e}"),
                    })?;
                (temporary.path().to_owned(), Some(temporary))
            }
        };
        let path = dir.join("customers.redb");
        let error = |detail: String| Error::Store {
            path: path.clone(),
            detail,
        };
        std::fs::create_dir_all(&dir).map_err(|e| error(e.to_string()))?;
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| error(e.to_string()))?;
        let store = StateStore {
            db,
            path,
            _temporary: temporary,
        };
        store.write(|tx| {
            tx.delete_table(PASSIVATED)?;
            tx.delete_table(PASSIVATED_TIMERS)?;
            tx.open_table(SNAPSHOT)?;
            tx.open_table(PASSIVATED)?;
            tx.open_table(SNAPSHOT_TIMERS)?;
            tx.open_table(PASSIVATED_TIMERS)?;
            tx.open_table(CHECKPOINTS)?;
            tx.open_table(EVENT_TIMES)?;
            tx.open_table(PARTITIONS)?;
            tx.open_table(REPLAYED)?;
            tx.open_table(PROFILES)?;
            tx.open_table(PROFILE_OFFSETS)?;
            Ok(())
        })?;
        Ok(store)
    }

    fn error(&self, detail: impl std::fmt::Display) -> Error {
        Error::Store {
            path: self.path.clone(),
            detail: detail.to_string(),
        }
    }

    /// Runs `f` in one write transaction and commits it.
    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> std::result::Result<(), redb::Error>,
    ) -> Result<()> {
        let tx = self.db.begin_write().map_err(|e| self.error(e))?;
        f(&tx).map_err(|e| self.error(e))?;
        tx.commit().map_err(|e| self.error(e))
    }

    /// A customer's newest stored state: passivated since the checkpoint, else the snapshot.
    pub fn get(&self, customer_id: &str) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read().map_err(|e| self.error(e))?;
        for table in [PASSIVATED, SNAPSHOT] {
            let table = tx.open_table(table).map_err(|e| self.error(e))?;
            if let Some(found) = table.get(customer_id).map_err(|e| self.error(e))? {
                let state = found.value().get(8..).ok_or_else(|| {
                    self.error(format!("the stored state of {customer_id} is cut short"))
                })?;
                return Ok(Some(state.to_vec()));
            }
        }
        Ok(None)
    }

    /// A customer's stored profile, as JSON.
    pub fn profile(&self, customer_id: &str) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = tx.open_table(PROFILES).map_err(|e| self.error(e))?;
        let found = table.get(customer_id).map_err(|e| self.error(e))?;
        Ok(found.map(|found| found.value().to_vec()))
    }

    /// Stores profiles (`None` removes one) and, in the same transaction, how far `source`
    /// has been read, so that following it again resumes after the last stored record.
    pub fn put_profiles(
        &self,
        profiles: &[(String, Option<Vec<u8>>)],
        source: &str,
        resume: &Offsets,
    ) -> Result<()> {
        let resume = serde_json::to_string(resume).expect("offsets always serialize");
        self.write(|tx| {
            let mut table = tx.open_table(PROFILES)?;
            for (customer_id, profile) in profiles {
                match profile {
                    Some(json) => table.insert(customer_id.as_str(), json.as_slice())?,
                    None => table.remove(customer_id.as_str())?,
                };
            }
            tx.open_table(PROFILE_OFFSETS)?
                .insert(source, resume.as_str())?;
            Ok(())
        })
    }

    /// Where following the profile source `source` resumes.
    pub fn profile_offsets(&self, source: &str) -> Result<Offsets> {
        let tx = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = tx.open_table(PROFILE_OFFSETS).map_err(|e| self.error(e))?;
        match table.get(source).map_err(|e| self.error(e))? {
            Some(json) => serde_json::from_str(json.value()).map_err(|e| self.error(e)),
            None => Ok(Offsets::new()),
        }
    }

    /// How many profiles are stored.
    pub fn profiles_len(&self) -> Result<u64> {
        let tx = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = tx.open_table(PROFILES).map_err(|e| self.error(e))?;
        table.len().map_err(|e| self.error(e))
    }

    /// Keeps passivated customers' states; returns the bytes written.
    pub fn put_passivated(&self, states: &[Entry]) -> Result<u64> {
        let mut bytes = 0;
        self.write(|tx| {
            let mut table = tx.open_table(PASSIVATED)?;
            let mut timers = tx.open_table(PASSIVATED_TIMERS)?;
            for entry in states {
                put_with_due(
                    &mut table,
                    &mut timers,
                    &entry.customer_id,
                    &stored_value(entry),
                )?;
                bytes += entry.state.len() as u64;
            }
            Ok(())
        })?;
        Ok(bytes)
    }

    /// A checkpoint in one transaction: the states of every customer touched since the last
    /// one (`states`, plus those passivated meanwhile) become the snapshot, with `source`'s
    /// offsets and each partition's newest event time. Returns the bytes of state written.
    pub fn checkpoint(
        &self,
        source: &str,
        offsets: &Offsets,
        event_times: &EventTimes,
        states: &[Entry],
    ) -> Result<u64> {
        let offsets = serde_json::to_string(offsets).expect("offsets serialise");
        let event_times = serde_json::to_string(event_times).expect("event times serialise");
        let mut bytes = 0;
        self.write(|tx| {
            let mut snapshot = tx.open_table(SNAPSHOT)?;
            let mut timers = tx.open_table(SNAPSHOT_TIMERS)?;
            {
                let passivated = tx.open_table(PASSIVATED)?;
                for entry in passivated.iter()? {
                    let (id, value) = entry?;
                    put_with_due(&mut snapshot, &mut timers, id.value(), value.value())?;
                    bytes += value.value().len().saturating_sub(8) as u64;
                }
            }
            for entry in states {
                put_with_due(
                    &mut snapshot,
                    &mut timers,
                    &entry.customer_id,
                    &stored_value(entry),
                )?;
                bytes += entry.state.len() as u64;
            }
            drop((snapshot, timers));
            tx.delete_table(PASSIVATED)?;
            tx.open_table(PASSIVATED)?;
            tx.delete_table(PASSIVATED_TIMERS)?;
            tx.open_table(PASSIVATED_TIMERS)?;
            tx.open_table(CHECKPOINTS)?
                .insert(source, offsets.as_str())?;
            tx.open_table(EVENT_TIMES)?
                .insert(source, event_times.as_str())?;
            Ok(())
        })?;
        Ok(bytes)
    }

    /// The partitions of `source` whose customers this store holds, once a run has claimed
    /// them.
    pub fn partitions(&self, source: &str) -> Result<Option<Vec<u32>>> {
        let tx = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = tx.open_table(PARTITIONS).map_err(|e| self.error(e))?;
        let Some(found) = table.get(source).map_err(|e| self.error(e))? else {
            return Ok(None);
        };
        serde_json::from_str(found.value())
            .map(Some)
            .map_err(|e| self.error(format!("partitions of {source} do not parse: {e}")))
    }

    /// Records that this store holds the customers of `source`'s `partitions`.
    pub fn claim_partitions(&self, source: &str, partitions: &[u32]) -> Result<()> {
        let partitions = serde_json::to_string(partitions).expect("partitions serialise");
        self.write(|tx| {
            tx.open_table(PARTITIONS)?
                .insert(source, partitions.as_str())?;
            Ok(())
        })
    }

    /// Where `source`'s log was decided before this state was rebuilt from it, if it was.
    pub fn replayed(&self, source: &str) -> Result<Offsets> {
        let tx = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = tx.open_table(REPLAYED).map_err(|e| self.error(e))?;
        let Some(found) = table.get(source).map_err(|e| self.error(e))? else {
            return Ok(Offsets::new());
        };
        serde_json::from_str(found.value())
            .map_err(|e| self.error(format!("replay marks of {source} do not parse: {e}")))
    }

    /// Records where `source`'s log was decided before a rebuild from it.
    pub fn set_replayed(&self, source: &str, replayed: &Offsets) -> Result<()> {
        let replayed = serde_json::to_string(replayed).expect("offsets serialise");
        self.write(|tx| {
            tx.open_table(REPLAYED)?.insert(source, replayed.as_str())?;
            Ok(())
        })
    }

    /// Each partition's newest event time at `source`'s last checkpoint.
    pub fn event_times(&self, source: &str) -> Result<EventTimes> {
        let tx = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = tx.open_table(EVENT_TIMES).map_err(|e| self.error(e))?;
        let Some(found) = table.get(source).map_err(|e| self.error(e))? else {
            return Ok(EventTimes::new());
        };
        serde_json::from_str(found.value())
            .map_err(|e| self.error(format!("event times of {source} do not parse: {e}")))
    }

    /// Up to `limit` stored customers whose inactivity check is due at or before `watermark`,
    /// in due order, after the index key `after` (exclusive); and the key to go on after.
    /// A customer passivated since the checkpoint is found by their passivated state's check,
    /// not the snapshot's.
    pub fn due_by(
        &self,
        after: Option<&[u8]>,
        watermark: i64,
        limit: usize,
    ) -> Result<(Vec<DueCustomer>, Option<Vec<u8>>)> {
        use std::ops::Bound;
        let tx = self.db.begin_read().map_err(|e| self.error(e))?;
        let e = |e: redb::Error| self.error(e);
        let passivated = tx.open_table(PASSIVATED).map_err(|x| e(x.into()))?;
        let end = due_key(watermark.saturating_add(1), "");
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let range = (start, Bound::Excluded(end.as_slice()));
        let mut found: Vec<(Vec<u8>, bool)> = Vec::new();
        for (table, from_snapshot) in [(PASSIVATED_TIMERS, false), (SNAPSHOT_TIMERS, true)] {
            let table = tx.open_table(table).map_err(|x| e(x.into()))?;
            for key in table
                .range::<&[u8]>(range)
                .map_err(|x| e(x.into()))?
                .take(limit)
            {
                let (key, _) = key.map_err(|x| e(x.into()))?;
                found.push((key.value().to_vec(), from_snapshot));
            }
        }
        found.sort();
        found.truncate(limit);
        let next = found.last().map(|(key, _)| key.clone());
        let mut due = Vec::with_capacity(found.len());
        for (key, from_snapshot) in &found {
            let Some((at, id)) = split_due_key(key) else {
                continue;
            };
            let overridden =
                *from_snapshot && passivated.get(id).map_err(|x| e(x.into()))?.is_some();
            if !overridden {
                due.push((at, Arc::from(id)));
            }
        }
        Ok((due, next))
    }

    /// The earliest due time in the timer index after the key `after`, if any.
    pub fn next_due(&self, after: Option<&[u8]>) -> Result<Option<i64>> {
        use std::ops::Bound;
        let tx = self.db.begin_read().map_err(|e| self.error(e))?;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut earliest: Option<i64> = None;
        for table in [PASSIVATED_TIMERS, SNAPSHOT_TIMERS] {
            let table = tx.open_table(table).map_err(|e| self.error(e))?;
            let mut keys = table
                .range::<&[u8]>((start, Bound::Unbounded))
                .map_err(|e| self.error(e))?;
            if let Some(key) = keys.next() {
                let (key, _) = key.map_err(|e| self.error(e))?;
                if let Some((due, _)) = split_due_key(key.value()) {
                    earliest = Some(earliest.map_or(due, |e| e.min(due)));
                }
            }
        }
        Ok(earliest)
    }

    /// Keys in the timer index: customers in the store with an inactivity check to come (a
    /// customer passivated since the checkpoint may be counted twice).
    pub fn timers_len(&self) -> Result<u64> {
        let tx = self.db.begin_read().map_err(|e| self.error(e))?;
        let mut n = 0;
        for table in [PASSIVATED_TIMERS, SNAPSHOT_TIMERS] {
            let table = tx.open_table(table).map_err(|e| self.error(e))?;
            n += table.len().map_err(|e| self.error(e))?;
        }
        Ok(n)
    }

    /// The offsets of `source`'s last checkpoint.
    pub fn offsets(&self, source: &str) -> Result<Option<Offsets>> {
        let tx = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = tx.open_table(CHECKPOINTS).map_err(|e| self.error(e))?;
        let Some(found) = table.get(source).map_err(|e| self.error(e))? else {
            return Ok(None);
        };
        serde_json::from_str(found.value())
            .map(Some)
            .map_err(|e| self.error(format!("checkpoint of {source} does not parse: {e}")))
    }

    /// Customers in the last checkpoint's snapshot.
    pub fn snapshot_len(&self) -> Result<u64> {
        let tx = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = tx.open_table(SNAPSHOT).map_err(|e| self.error(e))?;
        table.len().map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, due: Option<i64>) -> Entry {
        Entry {
            customer_id: Arc::from(id),
            state: Arc::from(vec![1, 2, 3]),
            due,
        }
    }

    fn ids(found: &[DueCustomer]) -> Vec<(i64, &str)> {
        found.iter().map(|(due, id)| (*due, &**id)).collect()
    }

    #[test]
    fn due_customers_come_in_due_order_from_a_cursor_and_a_new_state_replaces_the_old_due() {
        let store = StateStore::open(None).unwrap();
        store
            .put_passivated(&[
                entry("c-1", Some(30)),
                entry("c-2", Some(-10)),
                entry("c-3", None),
            ])
            .unwrap();
        store
            .checkpoint(
                "src",
                &Offsets::new(),
                &EventTimes::new(),
                &[entry("c-4", Some(20))],
            )
            .unwrap();
        // c-1 passivated again since the checkpoint, due later: its snapshot key is passed over.
        store.put_passivated(&[entry("c-1", Some(50))]).unwrap();
        assert_eq!(store.get("c-1").unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(store.next_due(None).unwrap(), Some(-10));

        let (due, next) = store.due_by(None, 40, 2).unwrap();
        assert_eq!(ids(&due), [(-10, "c-2"), (20, "c-4")]);
        let (due, next) = store.due_by(next.as_deref(), 40, 2).unwrap();
        // The snapshot's key for c-1 at 30 is found, but c-1's passivated state governs.
        assert!(due.is_empty(), "{due:?}");
        assert_eq!(store.next_due(next.as_deref()).unwrap(), Some(50));
        let (due, _) = store.due_by(next.as_deref(), 100, 10).unwrap();
        assert_eq!(ids(&due), [(50, "c-1")]);
        assert_eq!(store.timers_len().unwrap(), 4);
    }

    #[test]
    fn a_checkpoint_keeps_event_times_and_reopening_drops_what_was_passivated_after_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = StateStore::open(Some(dir.path())).unwrap();
            let times = EventTimes::from([(0, 1_000), (3, 2_000)]);
            store
                .checkpoint(
                    "src",
                    &Offsets::from([(0, 7)]),
                    &times,
                    &[entry("c-1", Some(5))],
                )
                .unwrap();
            store
                .put_passivated(&[entry("c-1", Some(9)), entry("c-2", Some(1))])
                .unwrap();
            assert_eq!(store.event_times("src").unwrap(), times);
        }
        let store = StateStore::open(Some(dir.path())).unwrap();
        let (due, _) = store.due_by(None, 100, 10).unwrap();
        assert_eq!(ids(&due), [(5, "c-1")]);
        assert_eq!(store.event_times("other").unwrap(), EventTimes::new());
    }
}
