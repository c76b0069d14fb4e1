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
        self.args.scoring.telemetry.actors_active.set(n as f64);
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
                tracing::error!(%error, "Customer actor failed; its next event starts a fresh one.");
                state.args.scoring.telemetry.actor_restarts.increment(1);
                state.forget(cell.get_id());
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => state.forget(cell.get_id()),
            _ => {}
        }
        Ok(())
    }
}
