//! Vigil's engine: events flow one way, source → decode → router → customer actor
//! (features → models → decision policy) → publisher → sinks, with metrics at every stage.

pub mod dead_letter;
pub mod decode;
pub mod event;
pub mod features;
pub mod source;
