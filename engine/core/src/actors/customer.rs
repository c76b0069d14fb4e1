//! The customer actor: one ractor actor per customer id holds that customer's rolling
//! features and turns each of their events, in order, into an `Outcome` for the publisher.
//!
//! The work itself (features → models → policy → decision) is the synchronous
//! `CustomerState::process` in `scoring`, so it can be tested and measured without actors. The
//! actor adds ordering, isolation and failure handling: a panic while processing an event
//! dead-letters that event with the panic message, counts a restart, and the actor carries on
//! from its last state with the rest of its mailbox intact.
//!
//! Every event carries the watermark before it: the customer's inactivity checks due by then
//! fire first (`scoring::inactivity`), and so do those due by a wake-up's watermark, which the
//! router sends to customers who have gone quiet. The router keeps a time-ordered index of
//! when each customer's next check is due; the actor tells it (a `Notice`) when that time moves
//! earlier than it last said, and after every wake-up. A later time needs no word: the router
//! wakes the customer at the earlier one, finds nothing due, and hears the new time then.
//!
//! An actor starts from a state the router hands it (a passivated customer coming back) or
//! from nothing. Told to passivate, it has by then processed every event sent before, so it
//! encodes its state, hands it over with its next due time on its notice channel (which leads
//! to the router's mailbox, though the actor knows no more than the `Notice` type) and stops;
//! asked for a snapshot, it answers with the encoded state and due time and carries on.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use tokio::sync::mpsc::UnboundedSender;

use crate::dead_letter::{DeadLetter, RejectReason, Rejection};
use crate::event::Inbound;
use crate::outcome::{Outcome, Report};
use crate::scoring::{CustomerState, CustomerView, Scoring};
use crate::telemetry::ActorFailed;
use crate::text::printable;

pub struct CustomerActor;

/// What a customer actor tells the router.
#[derive(Debug)]
pub enum Notice {
    /// A passivating actor's state and next due time, handed back before it stops.
    Handover {
        customer_id: Arc<str>,
        actor: ActorId,
        state: Vec<u8>,
        due: Option<i64>,
    },
    /// When the customer's next inactivity check is due: earlier than last said, or after a
    /// wake-up.
    Due {
        customer_id: Arc<str>,
        actor: ActorId,
        due: Option<i64>,
        /// In answer to a wake-up.
        woken: bool,
    },
}

/// A customer's encoded state and when their next inactivity check is due, for a checkpoint.
pub type Snapshot = (Vec<u8>, Option<i64>);

/// What a customer actor is told.
// Boxing the event would cost an allocation per event; `Passivate` is rare and small.
#[allow(clippy::large_enum_variant)]
pub enum CustomerMsg {
    Event(Inbound),
    /// The watermark has passed the customer's next inactivity check, as the router knows it.
    Wake {
        watermark: i64,
    },
    /// Hand the state to the router and stop.
    Passivate,
    /// Answer with the encoded state, for a checkpoint.
    Snapshot(RpcReplyPort<Snapshot>),
    /// Answer with what the console shows of the customer.
    Inspect(RpcReplyPort<Option<CustomerView>>),
}

/// What a customer actor starts from.
pub struct CustomerArgs {
    pub customer_id: Arc<str>,
    /// The state a passivated customer left, or `None` for a new one.
    pub state: Option<CustomerState>,
    pub scoring: Arc<Scoring>,
    pub publisher: UnboundedSender<Report>,
    /// Where notices go: due times, and the state on passivation.
    pub notices: DerivedActorRef<Notice>,
}

pub struct CustomerActorState {
    customer_id: Arc<str>,
    customer: CustomerState,
    scoring: Arc<Scoring>,
    publisher: UnboundedSender<Report>,
    notices: DerivedActorRef<Notice>,
    /// The due time the router last heard (from the state it restored, or a notice).
    told_due: Option<i64>,
}

impl CustomerActorState {
    /// Fires the checks due by `watermark` and publishes what they made.
    fn fire_due(&mut self, watermark: i64) {
        let publisher = &self.publisher;
        self.customer
            .fire_due(&self.customer_id, watermark, &self.scoring, |fired| {
                // A closed channel means shutdown is under way.
                let _ = publisher.send(Report::Fired(fired));
            });
    }

    fn due(&self) -> Option<i64> {
        self.customer
            .inactivity_due(self.scoring.policy.current().inactivity_checks_ms())
    }

    /// Tells the router the next due time: after a wake-up (`woken`) always, else when it is
    /// earlier than the router last heard.
    fn tell_due(&mut self, myself: &ActorRef<CustomerMsg>, woken: bool) {
        let due = self.due();
        let earlier = match (due, self.told_due) {
            (Some(due), Some(told)) => due < told,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if woken || earlier {
            self.told_due = due;
            // A router that has stopped no longer wants it: the run is over.
            let _ = self.notices.send_message(Notice::Due {
                customer_id: self.customer_id.clone(),
                actor: myself.get_id(),
                due,
                woken,
            });
        }
    }
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
            position: Some(inbound.position),
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
        let customer = args.state.unwrap_or_default();
        let told_due =
            customer.inactivity_due(args.scoring.policy.current().inactivity_checks_ms());
        Ok(CustomerActorState {
            customer_id: args.customer_id,
            customer,
            scoring: args.scoring,
            publisher: args.publisher,
            notices: args.notices,
            told_due,
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
            CustomerMsg::Wake { watermark } => {
                state.fire_due(watermark);
                state.tell_due(&myself, true);
                return Ok(());
            }
            CustomerMsg::Passivate => {
                let due = state.due();
                let encoded = state.customer.encode();
                // A router that has stopped no longer wants the state: the run is over.
                let _ = state.notices.send_message(Notice::Handover {
                    customer_id: state.customer_id.clone(),
                    actor: myself.get_id(),
                    state: encoded,
                    due,
                });
                myself.stop(None);
                return Ok(());
            }
            CustomerMsg::Snapshot(reply) => {
                let due = state.due();
                let _ = reply.send((state.customer.encode(), due));
                return Ok(());
            }
            CustomerMsg::Inspect(reply) => {
                let _ = reply.send(Some(state.customer.view(&state.customer_id, true)));
                return Ok(());
            }
        };
        state.fire_due(inbound.watermark);
        let outcome = process_isolated(&mut state.customer, &inbound, &state.scoring);
        // Before the outcome: once every event is published, the router has heard every due
        // time it will hear from them (`RouterMsg::Settle`).
        state.tell_due(&myself, false);
        // The publisher outlives every actor; a closed channel means shutdown is under way.
        let _ = state.publisher.send(Report::Outcome(outcome));
        Ok(())
    }
}
