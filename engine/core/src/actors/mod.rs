//! The actors: one `router` that owns the map from customer to actor (spawning, passivating,
//! restoring and checkpointing customers), and one `customer` actor per customer id that keeps
//! that customer's state and runs each of their events through `scoring` in order.
//!
//! Events come down from the ingest loop to the router and on to the customers; outcomes leave
//! the customers straight for the publisher; passivated state goes back up to the router on a
//! handover channel, so no actor knows the message type of the one above it.

pub mod customer;
pub mod router;
