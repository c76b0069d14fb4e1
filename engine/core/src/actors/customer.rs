//! The customer actor: one ractor actor per customer id holds that customer's rolling
//! features and turns each of their events, in order, into an `Outcome` for the publisher.
//!
//! The work itself (features → models → policy → decision) is the synchronous
//! `CustomerState::process` in `scoring`, so it can be tested and measured without actors. The
//! actor adds ordering, isolation and failure handling: a panic while processing an event
//! dead-letters that event with the panic message, counts a restart, and the actor carries on
//! from its last state with the rest of its mailbox intact.
//!
//! An actor starts from a state the router hands it (a passivated customer coming back) or
//! from nothing. Told to passivate, it has by then processed every event sent before, so it
//! encodes its state, hands it over on its handover channel (which leads to the router's
//! mailbox, though the actor knows no more than the `Handover` type) and stops; asked for a
//! snapshot, it answers with the encoded state and carries on.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use tokio::sync::mpsc::UnboundedSender;

use crate::dead_letter::{DeadLetter, RejectReason, Rejection};
use crate::event::Inbound;
use crate::outcome::{Outcome, Report};
use crate::scoring::{CustomerState, Scoring};
use crate::telemetry::ActorFailed;
use crate::text::printable;

pub struct CustomerActor;

/// A passivating actor's state, handed back before it stops.
#[derive(Debug)]
pub struct Handover {
    pub customer_id: Arc<str>,
    pub actor: ActorId,
    pub state: Vec<u8>,
}

/// What a customer actor is told.
// Boxing the event would cost an allocation per event; `Passivate` is rare and small.
#[allow(clippy::large_enum_variant)]
pub enum CustomerMsg {
    Event(Inbound),
    /// Hand the state to the router and stop.
    Passivate,
    /// Answer with the encoded state, for a checkpoint.
    Snapshot(RpcReplyPort<Vec<u8>>),
}

/// What a customer actor starts from.
pub struct CustomerArgs {
    pub customer_id: Arc<str>,
    /// The state a passivated customer left, or `None` for a new one.
    pub state: Option<CustomerState>,
    pub scoring: Arc<Scoring>,
    pub publisher: UnboundedSender<Report>,
    /// Where the state goes on passivation.
    pub handover: DerivedActorRef<Handover>,
}

pub struct CustomerActorState {
    customer_id: Arc<str>,
    customer: CustomerState,
    scoring: Arc<Scoring>,
    publisher: UnboundedSender<Report>,
    handover: DerivedActorRef<Handover>,
}

/// How many times an event is tried before it is dead-lettered.
const ATTEMPTS: usize = 2;

/// Processes `inbound`, isolating failures: a panic rolls the customer back to the state before
/// the event (counted as an actor restart) and the event is tried once more; failing again, it
/// is dead-lettered with the reason and the customer keeps that last good state.
pub fn process_isolated(
    customer: &mut CustomerState,
    inbound: &Inbound,
    scoring: &Scoring,
) -> Outcome {
    let last_good = customer.restore_point();
    let mut detail = String::new();
    for attempt in 1..=ATTEMPTS {
        match catch_unwind(AssertUnwindSafe(|| customer.process(inbound, scoring))) {
            Ok(outcome) => return outcome,
            Err(panic) => {
                customer.rollback(&last_good);
                // A panic message may quote the event: escaped before it reaches a log.
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                detail = printable(&message).into_owned();
                scoring.telemetry.emit(ActorFailed {
                    detail: &detail,
                    event_id: &inbound.event.event_id,
                    attempt,
                    of: ATTEMPTS,
                });
            }
        }
    }
    Outcome::Rejected {
        letter: Box::new(DeadLetter {
            rejection: Rejection::new(
                RejectReason::ActorFailure,
                None,
                format!("processing failed {ATTEMPTS} times, the customer's state was rolled back each time: {detail}"),
            ),
            raw: inbound.raw.clone(),
            position: inbound.position,
            cut: None,
        }),
        kind: Some(inbound.event.kind.name()),
        ingested: inbound.ingested,
    }
}

impl Actor for CustomerActor {
    type Msg = CustomerMsg;
    type State = CustomerActorState;
    type Arguments = CustomerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<CustomerMsg>,
        args: CustomerArgs,
    ) -> Result<CustomerActorState, ActorProcessingErr> {
        Ok(CustomerActorState {
            customer_id: args.customer_id,
            customer: args.state.unwrap_or_default(),
            scoring: args.scoring,
            publisher: args.publisher,
            handover: args.handover,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<CustomerMsg>,
        message: CustomerMsg,
        state: &mut CustomerActorState,
    ) -> Result<(), ActorProcessingErr> {
        let inbound = match message {
            CustomerMsg::Event(inbound) => inbound,
            CustomerMsg::Passivate => {
                let encoded = state.customer.encode();
                // A router that has stopped no longer wants the state: the run is over.
                let _ = state.handover.send_message(Handover {
                    customer_id: state.customer_id.clone(),
                    actor: myself.get_id(),
                    state: encoded,
                });
                myself.stop(None);
                return Ok(());
            }
            CustomerMsg::Snapshot(reply) => {
                let _ = reply.send(state.customer.encode());
                return Ok(());
            }
        };
        let outcome = process_isolated(&mut state.customer, &inbound, &state.scoring);
        // The publisher outlives every actor; a closed channel means shutdown is under way.
        let _ = state.publisher.send(Report::Outcome(outcome));
        Ok(())
    }
}
