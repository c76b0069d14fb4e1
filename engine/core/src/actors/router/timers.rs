//! Inactivity timers, the router's part: waking customers whose next check the watermark has
//! passed, so that a customer who sends nothing is still scored.
//!
//! A live customer's next due time is held in memory, in a time-ordered index, as their actor
//! last told it (`Notice::Due`). A passivated customer's is in the state store's timer index,
//! which is read in due order from a cursor, so a million quiet customers cost no memory here.
//! Either way the customer's own state decides what fires: a wake-up finds nothing due when
//! the customer has been active since, and the actor then says its new due time.
//!
//! Firing is bounded: at most `FIRE_BATCH` live customers woken per router message, the rest
//! after a message to itself, so a watermark jump that makes a million checks due never holds
//! up the events queued behind it. Passivated customers are not woken at all: their checks
//! fire on a blocking thread, `FIRE_BATCH` states at a time read, fired and written back
//! through the same path as a hand-over, while the router goes on routing; events for them
//! wait for their new state, as they do during a hand-over.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use ractor::{ActorId, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::{CustomerEntry, RouterMsg, RouterState};
use crate::actors::customer::CustomerMsg;
use crate::outcome::Report;
use crate::pipeline::watermark::NO_WATERMARK;
use crate::scoring::CustomerState;
use crate::state::store::{Entry, StateStore};

/// Live customers woken per router message, and passivated customers per firing job.
const FIRE_BATCH: usize = 1024;

pub(super) struct Timers {
    /// `(due, customer)` for the due times held in memory: live customers', and those of
    /// passivated customers whose state is not in the store yet or whose check was already due
    /// when it got there.
    index: BTreeSet<(i64, Arc<str>)>,
    watermark: i64,
    /// The store's timer index is read up to this key.
    store_cursor: Option<Vec<u8>>,
    /// The earliest due time in the store past the cursor, if any.
    store_next: Option<i64>,
    /// A `FireDue` message is on its way.
    pub continuation_queued: bool,
    /// Actors woken that have not answered yet.
    woken: HashSet<ActorId>,
    /// Passivated customers found due in memory, for the next firing job.
    passivated_due: Vec<Arc<str>>,
    /// A firing job is under way.
    pub job_running: bool,
    /// Waiting for every due check to fire (`RouterMsg::Settle`).
    pub settling: Option<RpcReplyPort<()>>,
}

impl Timers {
    pub fn new(store: &StateStore, watermark: i64) -> Result<Timers, ActorProcessingErr> {
        Ok(Timers {
            index: BTreeSet::new(),
            watermark,
            store_cursor: None,
            store_next: store.next_due(None)?,
            continuation_queued: false,
            woken: HashSet::new(),
            passivated_due: Vec::new(),
            job_running: false,
            settling: None,
        })
    }

    /// `actor` answered its wake-up, or stopped.
    pub fn answered(&mut self, actor: ActorId) {
        self.woken.remove(&actor);
    }

    pub fn index(&mut self, due: i64, customer_id: &Arc<str>) {
        self.index.insert((due, customer_id.clone()));
    }

    pub fn unindex(&mut self, due: i64, customer_id: &Arc<str>) {
        self.index.remove(&(due, customer_id.clone()));
    }

    /// The watermark has reached `watermark` (it never goes back).
    pub fn advance(&mut self, watermark: i64) {
        self.watermark = self.watermark.max(watermark);
    }

    /// Due times held in memory.
    pub fn in_memory(&self) -> usize {
        self.index.len()
    }

    fn due_in_memory(&self) -> bool {
        self.index
            .first()
            .is_some_and(|(due, _)| *due <= self.watermark)
    }

    fn due_in_store(&self) -> bool {
        self.store_next.is_some_and(|due| due <= self.watermark)
    }
}

impl RouterState {
    /// A customer actor's next due time: it replaces the one held for that customer.
    pub(super) fn due_changed(&mut self, customer_id: Arc<str>, actor: ActorId, due: Option<i64>) {
        let Some(CustomerEntry::Active {
            actor: live,
            due: held,
            ..
        }) = self.customers.get_mut(&customer_id)
        else {
            return;
        };
        if live.get_id() != actor {
            // From an actor this customer no longer has.
            return;
        }
        if let Some(old) = held.take() {
            self.timers.unindex(old, &customer_id);
        }
        if let Some(due) = due {
            self.timers.index(due, &customer_id);
            *held = Some(due);
        }
    }

    /// A passivated customer's state, with a check due at `due`, is in the store now. A check
    /// the watermark has already passed may lie behind the store's cursor (the watermark moved
    /// while the state was being written), so it stays in memory to fire; a later one is the
    /// store's from now on.
    pub(super) fn due_stored(&mut self, customer_id: Arc<str>, due: Option<i64>) {
        let Some(due) = due else {
            return;
        };
        let timers = &mut self.timers;
        if due <= timers.watermark {
            timers.index(due, &customer_id);
        } else {
            timers.unindex(due, &customer_id);
            timers.store_next = Some(timers.store_next.map_or(due, |next| next.min(due)));
        }
    }

    /// Fires the checks the watermark has passed, `FIRE_BATCH` customers at a time: live
    /// customers get a wake-up; passivated ones go to the firing job (one at a time). Asks
    /// itself to go on while more are due.
    pub(super) async fn fire_due(
        &mut self,
        myself: &ActorRef<RouterMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let watermark = self.timers.watermark;
        if watermark == NO_WATERMARK {
            return Ok(());
        }
        let mut budget = FIRE_BATCH;
        while budget > 0 && self.timers.due_in_memory() {
            let (_, customer_id) = self.timers.index.pop_first().expect("checked above");
            budget -= 1;
            match self.customers.get_mut(&customer_id) {
                Some(CustomerEntry::Active { actor, due, .. }) => {
                    // The actor says its next due time after every wake-up.
                    if let Some(old) = due.take() {
                        self.timers.unindex(old, &customer_id);
                    }
                    let actor = actor.clone();
                    self.wake(customer_id, &actor);
                }
                // Its hand-over, or the firing job, brings its state and due time.
                Some(CustomerEntry::Handing { .. } | CustomerEntry::Firing { .. }) => {}
                None => self.timers.passivated_due.push(customer_id),
            }
        }
        if !self.timers.job_running {
            let mut batch = std::mem::take(&mut self.timers.passivated_due);
            let store = self.args.store.clone();
            while batch.len() < FIRE_BATCH && self.timers.due_in_store() {
                let wanted = FIRE_BATCH - batch.len();
                let cursor = self.timers.store_cursor.as_deref();
                let (due, next) = store.due_by(cursor, watermark, wanted)?;
                let Some(next) = next else {
                    // Nothing is due after all: the key behind `store_next` was replaced since.
                    self.timers.store_next = store.next_due(cursor)?;
                    break;
                };
                // A live customer's own due time governs; one handing over brings theirs.
                batch.extend(
                    due.into_iter()
                        .map(|(_, id)| id)
                        .filter(|id| !self.customers.contains_key(id)),
                );
                self.timers.store_next = store.next_due(Some(&next))?;
                self.timers.store_cursor = Some(next);
            }
            batch.retain(|id| !self.customers.contains_key(id));
            batch.sort_unstable();
            batch.dedup();
            if !batch.is_empty() {
                self.fire_passivated(myself, batch);
            }
        }
        if budget == 0 && self.timers.due_in_memory() && !self.timers.continuation_queued {
            self.timers.continuation_queued = true;
            myself.send_message(RouterMsg::FireDue)?;
        }
        Ok(())
    }

    /// Fires passivated customers' due checks on a blocking thread, without waking their
    /// actors: each state is read (from memory while its write is pending, else from the
    /// store), its checks fire and their results go to the publisher, and the new states come
    /// back to the router (`RouterMsg::Fired`) to be kept like a hand-over. Events for these
    /// customers wait meanwhile.
    fn fire_passivated(&mut self, myself: &ActorRef<RouterMsg>, batch: Vec<Arc<str>>) {
        let pending: Vec<Option<Arc<[u8]>>> = batch
            .iter()
            .map(|id| self.unsaved.get(id).map(|entry| entry.state.clone()))
            .collect();
        for id in &batch {
            let firing = CustomerEntry::Firing {
                waiting: Vec::new(),
            };
            self.customers.insert(id.clone(), firing);
            if self.args.checkpoints.is_some() {
                self.dirty.insert(id.clone());
            }
        }
        self.timers.job_running = true;
        let watermark = self.timers.watermark;
        let (store, scoring, publisher, router) = (
            self.args.store.clone(),
            self.args.scoring.clone(),
            self.args.publisher.clone(),
            myself.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let policy = scoring.policy.current();
            let checks = policy.inactivity_checks_ms();
            let fired = batch
                .into_iter()
                .zip(pending)
                .map(|(customer_id, pending)| {
                    let encoded = match pending {
                        Some(state) => Some(state.to_vec()),
                        None => store.get(&customer_id).unwrap_or_else(|error| {
                            tracing::error!(%customer_id, %error, "Cannot read a passivated customer's state to fire their checks.");
                            None
                        }),
                    };
                    let state = encoded.and_then(|bytes| match CustomerState::decode(&bytes) {
                        Ok(state) => Some(state),
                        Err(error) => {
                            tracing::error!(%customer_id, %error, "A passivated customer's state does not decode; their checks cannot fire.");
                            None
                        }
                    });
                    let entry = state.map(|mut state| {
                        state.fire_due(&customer_id, watermark, &scoring, |fired| {
                            // A closed channel means shutdown is under way.
                            let _ = publisher.send(Report::Fired(fired));
                        });
                        Entry {
                            customer_id: customer_id.clone(),
                            due: state.inactivity_due(checks),
                            state: Arc::from(state.encode()),
                        }
                    });
                    (customer_id, entry)
                })
                .collect();
            let _ = router.send_message(RouterMsg::Fired(fired));
        });
    }

    /// The firing job's states: each is kept like a hand-over.
    pub(super) async fn fired(
        &mut self,
        myself: &ActorRef<RouterMsg>,
        batch: Vec<(Arc<str>, Option<Entry>)>,
    ) -> Result<(), ActorProcessingErr> {
        self.timers.job_running = false;
        for (customer_id, entry) in batch {
            let waiting = match self.customers.remove(&customer_id) {
                Some(CustomerEntry::Firing { waiting }) => waiting,
                Some(other) => {
                    self.customers.insert(customer_id, other);
                    continue;
                }
                None => Vec::new(),
            };
            match entry {
                Some(entry) => self.keep_state(myself, entry, waiting).await?,
                // Unreadable: the customer's next event starts them as `restore` would.
                None if !waiting.is_empty() => {
                    let state = self.restore(&customer_id);
                    let fresh = self.spawn_customer(myself, customer_id, state).await?;
                    for inbound in waiting {
                        fresh.send_message(CustomerMsg::Event(inbound))?;
                    }
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Sends a wake-up to a live customer's actor.
    fn wake(&mut self, customer_id: Arc<str>, actor: &ActorRef<CustomerMsg>) {
        let watermark = self.timers.watermark;
        if self.args.checkpoints.is_some() {
            self.dirty.insert(customer_id);
        }
        // An actor that died meanwhile reports through supervision; its customer's next event
        // or the store's index brings the check back.
        if actor.send_message(CustomerMsg::Wake { watermark }).is_ok() {
            self.timers.woken.insert(actor.get_id());
        }
    }

    /// Answers a `Settle` once nothing is due, no hand-over or firing job is under way and
    /// every woken actor has answered.
    pub(super) fn try_settle(&mut self) {
        let timers = &self.timers;
        // A hand-over on its way may bring a due check.
        if timers.settling.is_none()
            || self.handing > 0
            || timers.due_in_memory()
            || timers.due_in_store()
            || timers.job_running
            || !timers.passivated_due.is_empty()
            || !timers.woken.is_empty()
        {
            return;
        }
        if let Some(reply) = self.timers.settling.take() {
            let _ = reply.send(());
        }
    }

    /// The pending-timers gauge: due times held in memory and in the store.
    pub(super) fn report_timers(&self) {
        let stored = self.args.store.timers_len().unwrap_or(0);
        self.args
            .scoring
            .telemetry
            .timers_pending(self.timers.in_memory() as u64 + stored);
    }
}
