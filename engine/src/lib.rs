//! Vigil's engine: events flow one way, source → decode → router → customer actor
//! (features → models → decision policy) → publisher → sinks, with metrics at every stage.

pub mod broker;
pub mod checkpoint;
pub mod config;
pub mod customer;
pub mod dead_letter;
pub mod decision;
pub mod decode;
pub mod event;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod features;
pub mod models;
pub mod pipeline;
pub mod policy;
pub mod produce;
pub mod publish;
pub mod replay;
pub mod router;
pub mod sink;
pub mod source;
pub mod store;
pub mod tail;
pub mod telemetry;
pub mod train;
