//! Passivation: the router asks actors idle past `engine.passivation.idle`, and the least
//! recently used beyond `engine.passivation.max_active`, to hand over their state and stop.
//! Handed-over states go to the state store in one write per sweep, off the router's thread,
//! and are served from memory until the write lands. A passivated customer's next event brings
//! their actor back with that state; events that arrive while an actor is handing over wait
//! and follow the state into the new actor, so order is kept.

use std::sync::Arc;
use std::time::Instant;

use ractor::{ActorId, ActorProcessingErr, ActorRef};

use super::{CustomerEntry, RouterMsg, RouterState};
use crate::actors::customer::CustomerMsg;
use crate::config::PassivationConfig;
use crate::event::Inbound;
use crate::scoring::CustomerState;
use crate::state::store::Entry;
use crate::telemetry::{Passivated, StateRestored, StateSaved};

/// Idle actors are looked for on every tenth sweep, once a second: idleness is measured in
/// minutes.
const IDLE_CHECK_EVERY: u64 = 10;

impl RouterState {
    /// The state a customer left when last passivated, if any: from memory while its write
    /// is pending, else from the store.
    pub(super) fn restore(&mut self, customer_id: &str) -> Option<CustomerState> {
        let state = self.stored(customer_id)?;
        self.args.scoring.telemetry.emit(StateRestored);
        self.stats.restores += 1;
        Some(state)
    }

    /// A passivated customer's state, handed over and not yet saved or in the store; none
    /// for a customer never passivated, or one whose state cannot be read (logged).
    pub(super) fn stored(&self, customer_id: &str) -> Option<CustomerState> {
        let decoded = match self.unsaved.get(customer_id) {
            Some(entry) => CustomerState::decode(&entry.state),
            None => match self.args.store.get(customer_id) {
                Ok(Some(encoded)) => CustomerState::decode(&encoded),
                Ok(None) => return None,
                Err(error) => {
                    tracing::error!(customer_id, error = %error, "Cannot read a passivated customer's state; they are taken for a new customer.");
                    return None;
                }
            },
        };
        decoded
            .map_err(|error| {
                tracing::error!(customer_id, error = %error, "A passivated customer's state does not decode; they are taken for a new customer.");
            })
            .ok()
    }

    /// An actor handed over its state.
    pub(super) async fn passivated(
        &mut self,
        myself: &ActorRef<RouterMsg>,
        customer_id: Arc<str>,
        actor: ActorId,
        encoded: Vec<u8>,
        due: Option<i64>,
    ) -> Result<(), ActorProcessingErr> {
        self.by_actor.remove(&actor);
        let waiting = match self.customers.remove(&customer_id) {
            Some(CustomerEntry::Handing { waiting, .. }) => {
                self.handing -= 1;
                waiting
            }
            Some(other) => {
                // Already replaced (the actor was thought dead): keep the live one.
                self.customers.insert(customer_id, other);
                return Ok(());
            }
            None => Vec::new(),
        };
        let entry = Entry {
            customer_id: customer_id.clone(),
            state: Arc::from(encoded),
            due,
        };
        self.keep_state(myself, entry, waiting).await
    }

    /// A passivated customer's newest state, from a hand-over or fired checks: kept for the
    /// store, with its due time in memory until the store has it (`due_stored`); or, when
    /// events waited for it, the customer is brought straight back with them.
    pub(super) async fn keep_state(
        &mut self,
        myself: &ActorRef<RouterMsg>,
        entry: Entry,
        waiting: Vec<Inbound>,
    ) -> Result<(), ActorProcessingErr> {
        if waiting.is_empty() {
            if let Some(due) = entry.due {
                self.timers.index(due, &entry.customer_id);
            }
            self.unsaved.insert(entry.customer_id.clone(), entry);
            return Ok(());
        }
        let state = CustomerState::decode(&entry.state).ok();
        let fresh = self
            .spawn_customer(myself, entry.customer_id, state)
            .await?;
        for inbound in waiting {
            fresh.send_message(CustomerMsg::Event(inbound))?;
        }
        Ok(())
    }

    /// Asks idle actors, and the least recently used beyond the cap, to hand over.
    /// Idle actors are looked for on every `IDLE_CHECK_EVERY`th sweep; the cap is enforced on
    /// every sweep, but the live actors are only scanned when there are too many.
    pub(super) fn sweep(&mut self, now: Instant) {
        let PassivationConfig { idle, max_active } = self.args.passivation;
        self.sweeps += 1;
        let check_idle = self.sweeps.is_multiple_of(IDLE_CHECK_EVERY);
        let over_cap = self.active > max_active;
        if !check_idle && !over_cap {
            return;
        }
        let mut busy: Vec<(Instant, &Arc<str>)> = Vec::new();
        let mut chosen: Vec<Arc<str>> = Vec::new();
        for (id, slot) in &self.customers {
            if let CustomerEntry::Active { last_event, .. } = slot {
                if check_idle && now.duration_since(*last_event) >= idle {
                    chosen.push(id.clone());
                } else if over_cap {
                    busy.push((*last_event, id));
                }
            }
        }
        let surplus = busy.len().saturating_sub(max_active);
        if surplus > 0 {
            busy.select_nth_unstable_by_key(surplus - 1, |(last, _)| *last);
            chosen.extend(busy[..surplus].iter().map(|(_, id)| Arc::clone(id)));
        }
        drop(busy);
        for id in chosen {
            let Some(CustomerEntry::Active { actor, due, .. }) = self.customers.remove(&id) else {
                continue;
            };
            // Its hand-over brings its due time.
            if let Some(due) = due {
                self.timers.unindex(due, &id);
            }
            self.active -= 1;
            self.args.scoring.telemetry.emit(Passivated);
            self.stats.passivations += 1;
            // An actor that is already gone reports through supervision instead.
            let _ = actor.send_message(CustomerMsg::Passivate);
            self.customers.insert(
                id,
                CustomerEntry::Handing {
                    waiting: Vec::new(),
                },
            );
            self.handing += 1;
        }
        self.publish_actor_count();
    }

    /// Writes the handed-over states to the store in one transaction, off the router's thread.
    pub(super) fn save(&mut self, myself: &ActorRef<RouterMsg>) {
        if self.saving || self.unsaved.is_empty() {
            return;
        }
        self.saving = true;
        let batch: Vec<Entry> = self.unsaved.values().cloned().collect();
        let (store, router, telemetry) = (
            self.args.store.clone(),
            myself.clone(),
            self.args.scoring.telemetry.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let saved = match store.put_passivated(&batch) {
                Ok(bytes) => {
                    telemetry.emit(StateSaved {
                        customers: batch.len(),
                        bytes,
                        took: started.elapsed(),
                    });
                    batch
                }
                Err(error) => {
                    tracing::error!(error = %error, "Cannot write passivated states; keeping them in memory to retry.");
                    Vec::new()
                }
            };
            let _ = router.send_message(RouterMsg::Saved(saved));
        });
    }

    /// Drops from memory the states the store now holds, unless a newer one replaced them.
    pub(super) fn saved(&mut self, batch: Vec<Entry>) {
        self.saving = false;
        for entry in batch {
            if self
                .unsaved
                .get(&entry.customer_id)
                .is_some_and(|current| Arc::ptr_eq(&current.state, &entry.state))
            {
                self.unsaved.remove(&entry.customer_id);
                self.due_stored(entry.customer_id, entry.due);
            }
        }
    }
}
