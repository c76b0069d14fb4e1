//! What the sinks are given: a decision as its JSON, keyed by customer id (so keyed sinks keep
//! a customer's decisions on one partition, in order), and a dead letter as a JSON record
//! `{reason, field, detail, raw, source}` with the original bytes (as hex when they are not
//! UTF-8).

use bytes::Bytes;
use serde::Serialize;

use crate::dead_letter::{DeadLetter, RejectReason};
use crate::decision::Decision;
use crate::event::Position;
use crate::sink::SinkRecord;

/// A decision as a sink record, keyed by customer id.
pub fn decision_record(decision: &Decision) -> SinkRecord {
    SinkRecord {
        key: Bytes::from(decision.customer_id.clone().into_bytes()),
        value: Bytes::from(decision.to_json().into_bytes()),
    }
}

#[derive(Serialize)]
struct DeadLetterRecord<'a> {
    reason: RejectReason,
    field: Option<&'a str>,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<&'a str>,
    /// Hex of the original bytes, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_hex: Option<String>,
    source: Position,
}

/// The dead-letter JSON record, without a trailing newline.
pub fn dead_letter_json(letter: &DeadLetter) -> String {
    let text = std::str::from_utf8(&letter.raw).ok();
    let record = DeadLetterRecord {
        reason: letter.rejection.reason,
        field: letter.rejection.field.as_deref(),
        detail: &letter.rejection.detail,
        raw: text,
        raw_hex: text
            .is_none()
            .then(|| letter.raw.iter().map(|b| format!("{b:02x}")).collect()),
        source: letter.position,
    };
    serde_json::to_string(&record).expect("dead letters always serialize")
}

/// A dead letter as a sink record; dead letters have no key.
pub fn dead_letter_record(letter: &DeadLetter) -> SinkRecord {
    SinkRecord {
        key: Bytes::new(),
        value: Bytes::from(dead_letter_json(letter).into_bytes()),
    }
}
