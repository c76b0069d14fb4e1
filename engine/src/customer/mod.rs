//! The customer actor: one ractor actor per customer id holds that customer's rolling
//! features and turns each of their events, in order, into an `Outcome` for the publisher.
//!
//! The work itself (features → models → policy → decision) is the synchronous
//! `CustomerState::process` in `decide`, so it can be tested and measured without actors. The
//! actor adds ordering, isolation and failure handling: a panic while processing an event
//! dead-letters that event with the panic message, counts a restart, and the actor carries on
//! from its last state with the rest of its mailbox intact.

mod decide;

pub use decide::{CustomerState, Scoring};

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc::UnboundedSender;

use crate::publish::{Outcome, PublisherMsg};
use crate::telemetry::ActorFailed;

use crate::dead_letter::{DeadLetter, RejectReason, Rejection};
use crate::event::Event;
use crate::source::Position;

/// A decoded event on its way to its customer's actor.
#[derive(Debug)]
pub struct Inbound {
    pub event: Event,
    pub position: Position,
    pub ingested: Instant,
    /// The original bytes, kept for the dead-letter output.
    pub raw: Bytes,
}

pub struct CustomerActor;

/// What a customer actor starts from.
pub struct CustomerArgs {
    pub scoring: Arc<Scoring>,
    pub publisher: UnboundedSender<PublisherMsg>,
}

pub struct CustomerActorState {
    customer: CustomerState,
    scoring: Arc<Scoring>,
    publisher: UnboundedSender<PublisherMsg>,
}

impl Actor for CustomerActor {
    type Msg = Inbound;
    type State = CustomerActorState;
    type Arguments = CustomerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Inbound>,
        args: CustomerArgs,
    ) -> Result<CustomerActorState, ActorProcessingErr> {
        Ok(CustomerActorState {
            customer: CustomerState::default(),
            scoring: args.scoring,
            publisher: args.publisher,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Inbound>,
        inbound: Inbound,
        state: &mut CustomerActorState,
    ) -> Result<(), ActorProcessingErr> {
        let (raw, position, ingested, kind) = (
            inbound.raw.clone(),
            inbound.position,
            inbound.ingested,
            inbound.event.kind.name(),
        );
        let scoring = &state.scoring;
        let customer = &mut state.customer;
        let outcome = catch_unwind(AssertUnwindSafe(|| customer.process(inbound, scoring)))
            .unwrap_or_else(|panic| {
                let detail = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                scoring.telemetry.emit(ActorFailed { detail: &detail });
                Outcome::Rejected {
                    letter: Box::new(DeadLetter {
                        rejection: Rejection::new(RejectReason::ActorFailure, None, detail),
                        raw,
                        position,
                    }),
                    kind: Some(kind),
                    ingested,
                }
            });
        // The publisher outlives every actor; a closed channel means shutdown is under way.
        let _ = state.publisher.send(PublisherMsg::Outcome(outcome));
        Ok(())
    }
}
