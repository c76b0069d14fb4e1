//! Vigil's engine: events flow one way, and the modules are laid out in that order.
//!
//! At the bottom, the types every stage shares: `event` (the event and its envelope,
//! `Position` and `Inbound`), `decision`, `outcome` (where a record ended up, and the reports
//! that carry it to the publisher), `dead_letter` and `feedback` (analysts' verdicts on
//! decisions); beside them `error`, `config` and `telemetry`, which every stage may use.
//!
//! Then the stages, in the order an event travels:
//! `source` → `decode` → `actors` (`router`, then `customer`) → `scoring` (`features`,
//! `models`, `policy`, `decide`) → `publish` → `sink`, with `state` (the store and the
//! checkpoint file) beside the router. `pipeline` wires them together for one run and opens
//! sources and sinks through one registry of connectors.
//!
//! A stage imports the shared types and the stages it hands work to, never one that consumes
//! its output: outcomes travel down a channel to the publisher, and passivated state travels
//! back up to the router on a handover channel.

// The types every stage shares.
pub mod dead_letter;
pub mod decision;
pub mod error;
pub mod event;
pub mod feedback;
pub mod outcome;

// What every stage may use.
pub mod config;
pub mod telemetry;
pub mod text;

// The stages, in the order an event travels. Raw records, in batches:
pub mod source;
// bytes to events, or to dead letters naming the field;
pub mod decode;
// the router and one actor per customer;
pub mod actors;
// features, models and policy: one event's outcome;
pub mod scoring;
// outcomes to sinks, with latency, progress and the resume watermark;
pub mod publish;
// where decisions, dead letters and shadow decisions go.
pub mod sink;

// Beside the router: customers' state and the checkpoint file, and the profiles decisions
// are joined with.
pub mod profile;
pub mod state;

// One run, wired.
pub mod pipeline;

pub use error::{Error, ErrorKind, Result};
