//! Dead letters: input the engine could not turn into a decision, kept with the reason, the
//! field at fault and the original bytes, so nothing bad is ever dropped silently and a
//! person can see what to fix.
//!
//! Every rejection has a short, stable `reason` code (also the `reason` metric label) and a
//! human `detail`. The publisher writes each as a JSON record (`publish::records`).

use bytes::Bytes;
use serde::Serialize;

use crate::event::Position;
use crate::source::Cut;

/// Why a record was rejected. The codes are stable: consumers and alerts key on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Larger than `engine.max_record_bytes`.
    Oversized,
    /// Not JSON, or not UTF-8.
    InvalidJson,
    /// A CSV history row that does not split into the header's columns.
    InvalidCsv,
    /// A required field is absent.
    MissingField,
    /// A field holds the wrong JSON type.
    WrongType,
    /// A field has the right type but an impossible value (negative amount, latitude 200).
    InvalidValue,
    /// `kind` is not one of the schema's kinds.
    UnknownKind,
    /// `schema` is a version this engine does not read.
    UnsupportedSchema,
    /// Older than the customer's newest event by more than the late tolerance.
    LateEvent,
    /// Ahead of the engine's clock by more than `engine.max_future_skew`.
    FutureEvent,
    /// A different record under an event id the customer already had processed.
    ReusedEventId,
    /// The customer's actor failed while processing the event.
    ActorFailure,
    /// A sink refused the record as it is (a decision too large for its topic, say).
    Undeliverable,
}

impl RejectReason {
    /// The stable code, as written in dead letters and metric labels.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::Oversized => "oversized",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::InvalidCsv => "invalid_csv",
            RejectReason::MissingField => "missing_field",
            RejectReason::WrongType => "wrong_type",
            RejectReason::InvalidValue => "invalid_value",
            RejectReason::UnknownKind => "unknown_kind",
            RejectReason::UnsupportedSchema => "unsupported_schema",
            RejectReason::LateEvent => "late_event",
            RejectReason::FutureEvent => "future_event",
            RejectReason::ReusedEventId => "reused_event_id",
            RejectReason::ActorFailure => "actor_failure",
            RejectReason::Undeliverable => "undeliverable",
        }
    }
}

/// The reason a record was rejected, with the field at fault where there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub field: Option<String>,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, field: Option<&str>, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            field: field.map(str::to_owned),
            detail: detail.into(),
        }
    }
}

/// A rejected record on its way to the dead-letter output.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub rejection: Rejection,
    pub raw: Bytes,
    /// The record's place in its source; none for an inactivity check's decision that its
    /// sink refused, which no record made.
    pub position: Option<Position>,
    /// Set when `raw` is only the start of a record the source stopped reading.
    pub cut: Option<Cut>,
}
