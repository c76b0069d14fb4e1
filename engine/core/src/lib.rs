//! Vigil's engine: events flow one way, and the modules are laid out in that order.
//!
//! At the bottom, the types every stage shares: `event` (the event and its envelope,
//! `Position` and `Inbound`), `decision`, `outcome` (where a record ended up, and the reports
//! that carry it to the publisher) and `dead_letter`; beside them `error`, `config` and
//! `telemetry`, which every stage may use.
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

pub mod dead_letter;
pub mod decision;
pub mod error;
pub mod event;
pub mod outcome;

pub mod config;
pub mod telemetry;

pub mod source;

pub mod decode;

pub mod actors;

pub mod scoring;

pub mod publish;

pub mod sink;

pub mod state;

pub mod pipeline;

pub use error::{Error, ErrorKind, Result};
