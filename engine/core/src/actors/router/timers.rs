//! Inactivity timers, the router's part: waking customers whose next check the watermark has
//! passed, so that a customer who sends nothing is still scored.
//!
//! A live customer's next due time is held in memory, in a time-ordered index, as their actor
//! last told it (`Notice::Due`). A passivated customer's is in the state store's timer index,
//! which is read in due order from a cursor, so a million quiet customers cost no memory here.
//! Either way the customer's own state decides what fires: a wake-up finds nothing due when
//! the customer has been active since, and the actor then says its new due time.
//!
//! Waking is bounded: at most `FIRE_BATCH` customers per router message, the rest after a
//! message to itself, so a watermark jump that makes a million checks due never holds up the
//! events queued behind it. Passivated customers are woken only while live actors are fewer
//! than a batch over `engine.passivation.max_active`; the sweep passivates the surplus, and
//! the next sweep goes on.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use ractor::{ActorId, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::{CustomerEntry, RouterMsg, RouterState};
use crate::actors::customer::CustomerMsg;
use crate::pipeline::watermark::NO_WATERMARK;
use crate::state::store::StateStore;

/// Customers woken per router message.
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

    /// Wakes up to `FIRE_BATCH` customers whose checks the watermark has passed, and asks
    /// itself to go on when more are due.
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
            self.wake(myself, customer_id).await?;
        }
        let room = self.args.passivation.max_active + FIRE_BATCH;
        while budget > 0 && self.timers.due_in_store() && self.active < room {
            let store = self.args.store.clone();
            let (due, next) =
                store.due_by(self.timers.store_cursor.as_deref(), watermark, budget)?;
            let Some(next) = next else {
                // Nothing is due after all: the key behind `store_next` was replaced since.
                self.timers.store_next = store.next_due(self.timers.store_cursor.as_deref())?;
                break;
            };
            for (_, customer_id) in due {
                budget -= 1;
                // A live customer's own due time governs, and one handing over brings theirs.
                if !self.customers.contains_key(&customer_id) {
                    self.wake(myself, customer_id).await?;
                }
            }
            self.timers.store_next = store.next_due(Some(&next))?;
            self.timers.store_cursor = Some(next);
        }
        let more = self.timers.due_in_memory() || self.timers.due_in_store();
        if budget == 0 && more && !self.timers.continuation_queued {
            self.timers.continuation_queued = true;
            myself.send_message(RouterMsg::FireDue)?;
        }
        Ok(())
    }

    /// Sends a wake-up to `customer_id`'s actor, bringing a passivated customer back first.
    async fn wake(
        &mut self,
        myself: &ActorRef<RouterMsg>,
        customer_id: Arc<str>,
    ) -> Result<(), ActorProcessingErr> {
        let watermark = self.timers.watermark;
        let actor = match self.customers.get_mut(&customer_id) {
            Some(CustomerEntry::Active { actor, due, .. }) => {
                // The actor says its next due time after every wake-up.
                if let Some(old) = due.take() {
                    self.timers.unindex(old, &customer_id);
                }
                actor.clone()
            }
            // Its hand-over brings its due time.
            Some(CustomerEntry::Handing { .. }) => return Ok(()),
            None => {
                let Some(state) = self.restore(&customer_id) else {
                    return Ok(());
                };
                let actor = self
                    .spawn_customer(myself, customer_id.clone(), Some(state))
                    .await?;
                if let Some(CustomerEntry::Active { due, .. }) =
                    self.customers.get_mut(&customer_id)
                {
                    if let Some(old) = due.take() {
                        self.timers.unindex(old, &customer_id);
                    }
                }
                actor
            }
        };
        if self.args.checkpoints.is_some() {
            self.dirty.insert(customer_id);
        }
        // An actor that died meanwhile reports through supervision; its customer's next event
        // or the store's index brings the check back.
        if actor.send_message(CustomerMsg::Wake { watermark }).is_ok() {
            self.timers.woken.insert(actor.get_id());
        }
        Ok(())
    }

    /// Answers a `Settle` once nothing is due and every woken actor has answered.
    pub(super) fn try_settle(&mut self) {
        let timers = &self.timers;
        if timers.settling.is_none()
            || timers.due_in_memory()
            || timers.due_in_store()
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
