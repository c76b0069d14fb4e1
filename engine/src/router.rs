//! The router: one actor that owns the map from customer id to customer actor, spawns a
//! customer's actor on their first event, and forwards each customer's events in arrival
//! order. It supervises the customer actors: one that dies is counted as a restart and
//! forgotten, and that customer's next event starts a fresh actor.
//!
//! It also passivates: ten times a second it asks actors idle past `engine.passivation.idle`, and
//! the least recently used beyond `engine.passivation.max_active`, to hand over their state and
//! stop. Their encoded states go to the state store in one write per sweep, off the router's
//! thread; until a write lands they are served from memory. A passivated customer's next event
//! brings their actor back with that state. Events that arrive while an actor is handing over
//! wait in the router and follow the state into the new actor, so order is kept.
//!
//! With a state directory it also takes checkpoints: once the ingest loop has paused and
//! everything in flight is published, it collects the state of every customer touched since
//! the last checkpoint (asking live actors, taking passivated ones from memory or the store)
//! and writes them as the store's snapshot in one transaction with the source offsets.
//!
//! Events arrive in batches from the ingest loop, so the router's own mailbox sees one message
//! per source batch, not per event.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort, SupervisionEvent,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::checkpoint::Offsets;
use crate::config::PassivationConfig;
use crate::customer::{CustomerActor, CustomerArgs, CustomerMsg, CustomerState, Inbound, Scoring};
use crate::publish::PublisherMsg;
use crate::store::{Entry, StateStore};
use crate::telemetry::{ActorDied, Passivated, StateRestored, StateSaved};

pub enum RouterMsg {
    Route(Vec<Inbound>),
    /// Every `SWEEP_EVERY`: passivate idle and surplus actors, save what they handed over.
    Sweep,
    /// A customer actor's state, handed over before it stopped.
    Passivated {
        customer_id: Arc<str>,
        actor: ActorId,
        state: Vec<u8>,
    },
    /// These states are in the store (none when the write failed; they are retried).
    Saved(Vec<Entry>),
    /// Everything taken in is published: snapshot every customer touched since the last
    /// checkpoint with these offsets, then reply.
    Checkpoint {
        offsets: Offsets,
        reply: RpcReplyPort<Result<CheckpointTaken, String>>,
    },
    /// How many passivations and restores so far.
    Stats(RpcReplyPort<ActorStats>),
}

/// What a checkpoint wrote.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointTaken {
    pub customers: usize,
    pub bytes: u64,
    pub took: Duration,
}

/// Passivation figures for a run's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActorStats {
    pub passivations: u64,
    pub restores: u64,
}

pub struct Router;

pub struct RouterArgs {
    pub scoring: Arc<Scoring>,
    pub publisher: UnboundedSender<PublisherMsg>,
    /// Live count of customer actors, read by the live summary.
    pub actors: Arc<AtomicU64>,
    pub passivation: PassivationConfig,
    pub store: Arc<StateStore>,
    /// The source spec checkpoints are kept under, when the run takes checkpoints.
    pub checkpoints: Option<String>,
}

/// A customer the router knows.
enum Slot {
    Active {
        actor: ActorRef<CustomerMsg>,
        last_event: Instant,
    },
    /// Told to passivate; events that arrive meanwhile wait here for the handed-over state.
    Handing { waiting: Vec<Inbound> },
}

pub struct RouterState {
    args: RouterArgs,
    customers: HashMap<Arc<str>, Slot>,
    by_actor: HashMap<ActorId, Arc<str>>,
    active: usize,
    /// Handed-over states not yet in the store.
    unsaved: HashMap<Arc<str>, Arc<[u8]>>,
    saving: bool,
    /// Customers told to passivate who have not handed over yet.
    handing: usize,
    /// Sweeps so far.
    sweeps: u64,
    /// Customers with events since the last checkpoint, when checkpoints are taken.
    dirty: HashSet<Arc<str>>,
    /// A checkpoint waiting for hand-overs and saves in progress to finish.
    checkpoint: Option<(Offsets, RpcReplyPort<Result<CheckpointTaken, String>>)>,
    stats: ActorStats,
}

impl RouterState {
    async fn spawn_customer(
        &mut self,
        myself: &ActorRef<RouterMsg>,
        customer_id: Arc<str>,
        state: Option<CustomerState>,
    ) -> Result<ActorRef<CustomerMsg>, ActorProcessingErr> {
        let (actor, _) = Actor::spawn_linked(
            None,
            CustomerActor,
            CustomerArgs {
                customer_id: customer_id.clone(),
                state,
                scoring: self.args.scoring.clone(),
                publisher: self.args.publisher.clone(),
                router: myself.clone(),
            },
            myself.get_cell(),
        )
        .await?;
        self.by_actor.insert(actor.get_id(), customer_id.clone());
        self.customers.insert(
            customer_id,
            Slot::Active {
                actor: actor.clone(),
                last_event: Instant::now(),
            },
        );
        self.active += 1;
        self.publish_actor_count();
        Ok(actor)
    }

    /// The state a customer left when last passivated, if any: from memory while its write
    /// is pending, else from the store.
    fn restore(&mut self, customer_id: &str) -> Option<CustomerState> {
        let decoded = match self.unsaved.get(customer_id) {
            Some(encoded) => CustomerState::decode(encoded),
            None => match self.args.store.get(customer_id) {
                Ok(Some(encoded)) => CustomerState::decode(&encoded),
                Ok(None) => return None,
                Err(error) => {
                    tracing::error!(customer_id, error = %error, "Cannot read a passivated customer's state; starting afresh.");
                    return None;
                }
            },
        };
        match decoded {
            Ok(state) => {
                self.args.scoring.telemetry.emit(StateRestored);
                self.stats.restores += 1;
                Some(state)
            }
            Err(error) => {
                tracing::error!(customer_id, error = %error, "A passivated customer's state does not decode; starting afresh.");
                None
            }
        }
    }

    async fn route(
        &mut self,
        myself: &ActorRef<RouterMsg>,
        inbound: Inbound,
        now: Instant,
    ) -> Result<(), ActorProcessingErr> {
        if self.args.checkpoints.is_some()
            && !self.dirty.contains(inbound.event.customer_id.as_str())
        {
            self.dirty
                .insert(Arc::from(inbound.event.customer_id.as_str()));
        }
        let actor = match self.customers.get_mut(inbound.event.customer_id.as_str()) {
            Some(Slot::Active { actor, last_event }) => {
                *last_event = now;
                actor.clone()
            }
            Some(Slot::Handing { waiting, .. }) => {
                waiting.push(inbound);
                return Ok(());
            }
            None => {
                let id: Arc<str> = Arc::from(inbound.event.customer_id.as_str());
                let state = self.restore(&id);
                self.spawn_customer(myself, id, state).await?
            }
        };
        if let Err(MessagingErr::SendErr(CustomerMsg::Event(inbound))) =
            actor.send_message(CustomerMsg::Event(inbound))
        {
            // The actor died and its supervision event is still on its way: replace it now
            // so this customer's events keep their order.
            self.forget(actor.get_id());
            let id: Arc<str> = Arc::from(inbound.event.customer_id.as_str());
            let state = self.restore(&id);
            self.spawn_customer(myself, id, state)
                .await?
                .send_message(CustomerMsg::Event(inbound))?;
        }
        Ok(())
    }

    /// Forgets a dead actor. A customer whose actor died while handing over starts again
    /// from their last saved state with the events that waited.
    async fn forget_dead(
        &mut self,
        myself: &ActorRef<RouterMsg>,
        actor: ActorId,
    ) -> Result<(), ActorProcessingErr> {
        let Some(customer_id) = self.by_actor.get(&actor).cloned() else {
            return Ok(());
        };
        if let Some(Slot::Handing { waiting, .. }) = self.customers.get_mut(&customer_id) {
            let waiting = std::mem::take(waiting);
            self.by_actor.remove(&actor);
            self.customers.remove(&customer_id);
            self.handing -= 1;
            if !waiting.is_empty() {
                let state = self.restore(&customer_id);
                let fresh = self.spawn_customer(myself, customer_id, state).await?;
                for inbound in waiting {
                    fresh.send_message(CustomerMsg::Event(inbound))?;
                }
            }
            return Ok(());
        }
        self.forget(actor);
        Ok(())
    }

    fn forget(&mut self, actor: ActorId) {
        if let Some(customer_id) = self.by_actor.remove(&actor) {
            if let Some(Slot::Active { .. }) = self.customers.get(&customer_id) {
                self.customers.remove(&customer_id);
                self.active -= 1;
                self.publish_actor_count();
            }
        }
    }

    /// An actor handed over its state: bring the customer straight back if events waited,
    /// else keep the state for the store.
    async fn passivated(
        &mut self,
        myself: &ActorRef<RouterMsg>,
        customer_id: Arc<str>,
        actor: ActorId,
        encoded: Vec<u8>,
    ) -> Result<(), ActorProcessingErr> {
        self.by_actor.remove(&actor);
        let waiting = match self.customers.remove(&customer_id) {
            Some(Slot::Handing { waiting, .. }) => {
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
        if waiting.is_empty() {
            self.unsaved.insert(customer_id, Arc::from(encoded));
            return Ok(());
        }
        let state = CustomerState::decode(&encoded).ok();
        let fresh = self.spawn_customer(myself, customer_id, state).await?;
        for inbound in waiting {
            fresh.send_message(CustomerMsg::Event(inbound))?;
        }
        Ok(())
    }

    /// Asks idle actors, and the least recently used beyond the cap, to hand over.
    /// Idle actors are looked for on every `IDLE_CHECK_EVERY`th sweep; the cap is enforced on
    /// every sweep, but the live actors are only scanned when there are too many.
    fn sweep(&mut self, now: Instant) {
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
            if let Slot::Active { last_event, .. } = slot {
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
            let Some(Slot::Active { actor, .. }) = self.customers.remove(&id) else {
                continue;
            };
            self.active -= 1;
            self.args.scoring.telemetry.emit(Passivated);
            self.stats.passivations += 1;
            // An actor that is already gone reports through supervision instead.
            let _ = actor.send_message(CustomerMsg::Passivate);
            self.customers.insert(
                id,
                Slot::Handing {
                    waiting: Vec::new(),
                },
            );
            self.handing += 1;
        }
        self.publish_actor_count();
    }

    /// Takes the waiting checkpoint once no hand-over or save is in progress: every touched
    /// customer's state (from their actor, or from memory or the store when passivated) goes
    /// into the store's snapshot with the offsets.
    async fn try_checkpoint(&mut self) -> Result<(), ActorProcessingErr> {
        if self.handing > 0 || self.saving || self.checkpoint.is_none() {
            return Ok(());
        }
        let (offsets, reply) = self.checkpoint.take().expect("checked above");
        let started = Instant::now();
        let mut states: Vec<Entry> = Vec::with_capacity(self.dirty.len());
        let mut asked = Vec::new();
        for id in self.dirty.drain() {
            match self.customers.get(&id) {
                Some(Slot::Active { actor, .. }) => {
                    let (port, answer) = ractor::concurrency::oneshot();
                    if actor
                        .send_message(CustomerMsg::Snapshot(port.into()))
                        .is_ok()
                    {
                        asked.push((id, answer));
                    }
                }
                // Passivated since the last checkpoint: its state is in memory or already
                // among the store's passivated states, which the checkpoint takes over.
                _ => {
                    if let Some(state) = self.unsaved.get(&id) {
                        states.push((id, state.clone()));
                    }
                }
            }
        }
        for (id, answer) in asked {
            // An actor that died meanwhile left no state to save; its events are dead letters.
            if let Ok(state) = answer.await {
                states.push((id, Arc::from(state)));
            }
        }
        let store = self.args.store.clone();
        let source = self.args.checkpoints.clone().unwrap_or_default();
        let written = tokio::task::spawn_blocking(move || {
            let bytes = store.checkpoint(&source, &offsets, &states)?;
            Ok::<_, crate::store::StoreError>((states.len(), bytes))
        })
        .await?;
        let result = match written {
            Ok((customers, bytes)) => {
                self.unsaved.clear();
                Ok(CheckpointTaken {
                    customers,
                    bytes,
                    took: started.elapsed(),
                })
            }
            Err(error) => Err(error.to_string()),
        };
        let _ = reply.send(result);
        Ok(())
    }

    /// Writes the handed-over states to the store in one transaction, off the router's thread.
    fn save(&mut self, myself: &ActorRef<RouterMsg>) {
        if self.saving || self.unsaved.is_empty() {
            return;
        }
        self.saving = true;
        let batch: Vec<Entry> = self
            .unsaved
            .iter()
            .map(|(id, state)| (id.clone(), state.clone()))
            .collect();
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
    fn saved(&mut self, batch: Vec<Entry>) {
        self.saving = false;
        for (id, state) in batch {
            if self
                .unsaved
                .get(&id)
                .is_some_and(|current| Arc::ptr_eq(current, &state))
            {
                self.unsaved.remove(&id);
            }
        }
    }

    fn publish_actor_count(&self) {
        let n = self.active as u64;
        self.args.actors.store(n, Ordering::Relaxed);
        self.args.scoring.telemetry.actors_active(n);
    }
}

/// How often the router passivates and saves. Ten small sweeps a second rather than one
/// large one: on the million-customer scenario p99 fell from 208 ms to 40 ms.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// Idle actors are looked for once a second: idleness is measured in minutes.
const IDLE_CHECK_EVERY: u64 = 10;

impl Actor for Router {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RouterMsg>,
        args: RouterArgs,
    ) -> Result<RouterState, ActorProcessingErr> {
        myself.send_interval(SWEEP_EVERY, || RouterMsg::Sweep);
        Ok(RouterState {
            args,
            customers: HashMap::new(),
            by_actor: HashMap::new(),
            active: 0,
            unsaved: HashMap::new(),
            saving: false,
            handing: 0,
            sweeps: 0,
            dirty: HashSet::new(),
            checkpoint: None,
            stats: ActorStats::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RouterMsg>,
        message: RouterMsg,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RouterMsg::Route(batch) => {
                let now = Instant::now();
                for inbound in batch {
                    state.route(&myself, inbound, now).await?;
                }
            }
            RouterMsg::Sweep => {
                state.sweep(Instant::now());
                state.save(&myself);
            }
            RouterMsg::Passivated {
                customer_id,
                actor,
                state: encoded,
            } => {
                state
                    .passivated(&myself, customer_id, actor, encoded)
                    .await?
            }
            RouterMsg::Saved(batch) => state.saved(batch),
            RouterMsg::Checkpoint { offsets, reply } => {
                state.checkpoint = Some((offsets, reply));
            }
            RouterMsg::Stats(reply) => {
                let _ = reply.send(state.stats);
            }
        }
        state.try_checkpoint().await?;
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RouterMsg>,
        event: SupervisionEvent,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                let detail = format!("{error}; its next event starts a fresh actor");
                state
                    .args
                    .scoring
                    .telemetry
                    .emit(ActorDied { detail: &detail });
                state.forget_dead(&myself, cell.get_id()).await?;
                state.try_checkpoint().await?;
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                // A passivating actor's state message may still be on its way: wait for it.
                let handing = state.by_actor.get(&cell.get_id()).is_some_and(|id| {
                    matches!(state.customers.get(id), Some(Slot::Handing { .. }))
                });
                if !handing {
                    state.forget(cell.get_id());
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use tokio::sync::mpsc;

    use super::*;
    use crate::config::{Config, LatencyBudget};
    use crate::decode::decode;
    use crate::publish::Outcome;
    use crate::source::Position;
    use crate::telemetry::Telemetry;

    fn inbound(customer: &str, offset: u64) -> Inbound {
        let raw = format!(
            r#"{{"schema":1,"event_id":"e-{offset}","customer_id":"{customer}","ts":{},"kind":"login"}}"#,
            1_763_805_600_000 + offset as i64 * 1_000
        );
        Inbound {
            event: decode(raw.as_bytes(), 65_536).unwrap(),
            position: Position {
                partition: 0,
                offset,
            },
            ingested: Instant::now(),
            raw: Bytes::from(raw),
        }
    }

    async fn next_offset(outcomes: &mut mpsc::UnboundedReceiver<PublisherMsg>) -> u64 {
        let message = tokio::time::timeout(Duration::from_secs(5), outcomes.recv())
            .await
            .expect("an outcome within 5 s")
            .expect("publisher channel open");
        match message {
            PublisherMsg::Outcome(Outcome::Scored { position, .. }) => position.offset,
            _ => panic!("expected a scored outcome"),
        }
    }

    #[tokio::test]
    async fn one_actor_per_customer_and_a_dead_actor_is_replaced_on_the_next_event() {
        let mut config = Config::builtin();
        config.engine.latency_budget = LatencyBudget::uniform(Duration::from_secs(10));
        let scoring = Arc::new(Scoring::from_config(&config, Telemetry::new()).unwrap());
        let (publisher, mut outcomes) = mpsc::unbounded_channel();
        let actors = Arc::new(AtomicU64::new(0));
        let (router, handle) = Actor::spawn(
            None,
            Router,
            RouterArgs {
                scoring,
                publisher,
                actors: actors.clone(),
                passivation: config.engine.passivation,
                store: Arc::new(StateStore::open(None).unwrap()),
                checkpoints: None,
            },
        )
        .await
        .unwrap();

        router
            .send_message(RouterMsg::Route(vec![
                inbound("c-1", 0),
                inbound("c-2", 1),
                inbound("c-1", 2),
            ]))
            .unwrap();
        let mut seen = vec![];
        for _ in 0..3 {
            seen.push(next_offset(&mut outcomes).await);
        }
        // c-1's two events keep their order.
        let c1: Vec<u64> = seen.iter().copied().filter(|o| *o != 1).collect();
        assert_eq!(c1, vec![0, 2]);
        assert_eq!(actors.load(Ordering::Relaxed), 2);
        assert_eq!(router.get_children().len(), 2);

        for child in router.get_children() {
            child.kill_and_wait(None).await.unwrap();
        }
        router
            .send_message(RouterMsg::Route(vec![inbound("c-1", 3)]))
            .unwrap();
        assert_eq!(next_offset(&mut outcomes).await, 3);
        assert_eq!(router.get_children().len(), 1);

        router.stop(None);
        handle.await.unwrap();
    }
}
