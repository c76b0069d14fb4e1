//! The router: one actor that owns the map from customer id to customer actor, spawns a
//! customer's actor on their first event, and forwards each customer's events in arrival
//! order. It supervises the customer actors: one that dies is counted as a restart and
//! forgotten, and that customer's next event starts a fresh actor.
//!
//! Events arrive in batches from the ingest loop, so the router's own mailbox sees one message
//! per source batch, not per event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, MessagingErr, SupervisionEvent};
use tokio::sync::mpsc::UnboundedSender;

use crate::customer::{CustomerActor, CustomerArgs, Inbound, Scoring};
use crate::publish::PublisherMsg;
use crate::telemetry::ActorFailed;

pub enum RouterMsg {
    Route(Vec<Inbound>),
}

pub struct Router;

pub struct RouterArgs {
    pub scoring: Arc<Scoring>,
    pub publisher: UnboundedSender<PublisherMsg>,
    /// Live count of customer actors, read by the live summary.
    pub actors: Arc<AtomicU64>,
}

pub struct RouterState {
    args: RouterArgs,
    customers: HashMap<String, ActorRef<Inbound>>,
    by_actor: HashMap<ActorId, String>,
}

impl RouterState {
    async fn spawn_customer(
        &mut self,
        myself: &ActorRef<RouterMsg>,
        customer_id: &str,
    ) -> Result<ActorRef<Inbound>, ActorProcessingErr> {
        let (actor, _) = Actor::spawn_linked(
            None,
            CustomerActor,
            CustomerArgs {
                scoring: self.args.scoring.clone(),
                publisher: self.args.publisher.clone(),
            },
            myself.get_cell(),
        )
        .await?;
        self.customers.insert(customer_id.to_owned(), actor.clone());
        self.by_actor.insert(actor.get_id(), customer_id.to_owned());
        self.publish_actor_count();
        Ok(actor)
    }

    fn forget(&mut self, actor: ActorId) {
        if let Some(customer_id) = self.by_actor.remove(&actor) {
            self.customers.remove(&customer_id);
            self.publish_actor_count();
        }
    }

    fn publish_actor_count(&self) {
        let n = self.customers.len() as u64;
        self.args.actors.store(n, Ordering::Relaxed);
        self.args.scoring.telemetry.actors_active(n);
    }
}

impl Actor for Router {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<RouterMsg>,
        args: RouterArgs,
    ) -> Result<RouterState, ActorProcessingErr> {
        Ok(RouterState {
            args,
            customers: HashMap::new(),
            by_actor: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RouterMsg>,
        message: RouterMsg,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        let RouterMsg::Route(batch) = message;
        for inbound in batch {
            let actor = match state.customers.get(&inbound.event.customer_id) {
                Some(actor) => actor.clone(),
                None => {
                    let id = inbound.event.customer_id.clone();
                    state.spawn_customer(&myself, &id).await?
                }
            };
            if let Err(MessagingErr::SendErr(inbound)) = actor.send_message(inbound) {
                // The actor died and its supervision event is still on its way: replace it now
                // so this customer's events keep their order.
                state.forget(actor.get_id());
                let id = inbound.event.customer_id.clone();
                state
                    .spawn_customer(&myself, &id)
                    .await?
                    .send_message(inbound)?;
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<RouterMsg>,
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
                    .emit(ActorFailed { detail: &detail });
                state.forget(cell.get_id());
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => state.forget(cell.get_id()),
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
    use crate::config::Config;
    use crate::decode::decode;
    use crate::models::ModelSet;
    use crate::policy::Policy;
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
        let config = Config::builtin();
        let scoring = Arc::new(Scoring {
            models: ModelSet::load(&config.models).unwrap(),
            policy: Policy::new(&config.policy),
            late_tolerance_ms: 300_000,
            latency_budget: Duration::from_secs(10),
            telemetry: Telemetry::new(),
        });
        let (publisher, mut outcomes) = mpsc::unbounded_channel();
        let actors = Arc::new(AtomicU64::new(0));
        let (router, handle) = Actor::spawn(
            None,
            Router,
            RouterArgs {
                scoring,
                publisher,
                actors: actors.clone(),
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
