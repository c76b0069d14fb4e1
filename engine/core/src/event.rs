//! The event model (schema v1) and the envelope an event travels in. `WireEvent` is the JSON
//! form on the stream; `Event` is the validated form every stage after decoding works with;
//! `Inbound` is a decoded event with where it came from (`Position`) and when it arrived, on
//! its way to its customer's actor.
//!
//! Decoding and validation live in `decode`; this module only defines the shapes and writes
//! the wire form back out (the scenario generator and `vigil produce` use it).

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Where a record sits in its source: a partition and an offset within it (the line number
/// for files). Checkpoints and dead letters name records by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}

/// Resume offsets per partition.
pub type Offsets = BTreeMap<u32, u64>;

/// The most records that travel together in one batch: what a source hands over at once, and
/// so the least in-flight room the pipeline can work with.
pub const MAX_BATCH: usize = 1024;

/// A decoded event on its way to its customer's actor.
#[derive(Debug)]
pub struct Inbound {
    pub event: Event,
    /// The watermark of the stream before this event (`pipeline::watermark`), at which the
    /// customer's due inactivity checks fire before the event is folded in.
    pub watermark: i64,
    pub position: Position,
    /// When the record arrived: the start of its latency budget.
    pub ingested: Instant,
    /// The original bytes, kept for the dead-letter output.
    pub raw: Bytes,
}

/// The wall clock in milliseconds since the epoch, on the event-time scale.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The largest payment amount any event may carry, whatever the configuration: sums of up to
/// billions of them stay far inside `f64`, so every feature is finite.
pub const MAX_AMOUNT: f64 = 1e15;

/// The latest event time there is: 9999-12-31T23:59:59.999Z, the last instant RFC 3339 and
/// every tool downstream can write.
pub const MAX_TS: i64 = 253_402_300_799_999;

/// The only event schema this engine reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// A validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub customer_id: String,
    /// Event time, milliseconds since the Unix epoch.
    pub ts: i64,
    pub kind: EventKind,
    /// Ground truth, present only in scenario and history data; never read by scoring.
    pub label: Option<Label>,
}

/// What happened, with the details that belong to that kind of event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Payment(Payment),
    Login { place: Option<Place> },
    SessionEnd { duration_s: f64 },
    PageView { page: String },
    FeatureUse { feature: String },
    SupportTicket,
    CartAdd,
    CartAbandon,
    SubscriptionChange,
}

/// The closed set of `kind` values, in the spelling the wire uses.
pub const KINDS: [&str; 9] = [
    "payment",
    "login",
    "session_end",
    "page_view",
    "feature_use",
    "support_ticket",
    "cart_add",
    "cart_abandon",
    "subscription_change",
];

impl EventKind {
    /// The wire spelling of this kind, also the `kind` metric label.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Payment(_) => KINDS[0],
            EventKind::Login { .. } => KINDS[1],
            EventKind::SessionEnd { .. } => KINDS[2],
            EventKind::PageView { .. } => KINDS[3],
            EventKind::FeatureUse { .. } => KINDS[4],
            EventKind::SupportTicket => KINDS[5],
            EventKind::CartAdd => KINDS[6],
            EventKind::CartAbandon => KINDS[7],
            EventKind::SubscriptionChange => KINDS[8],
        }
    }
}

/// A card payment.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    pub amount: f64,
    pub currency: String,
    pub country: String,
    pub location: Option<GeoPoint>,
    pub merchant: String,
    pub mcc: String,
    pub channel: Option<String>,
}

/// Where a login came from, when the source knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub country: Option<String>,
    pub location: Option<GeoPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

/// Ground truth carried by labelled data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Label {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraud: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn: Option<bool>,
}

/// The JSON record as it travels. Every field is optional here so that decoding can name
/// exactly which required field is missing; unknown fields are ignored, which is how
/// backward-compatible schema evolution (new optional fields) stays readable.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WireEvent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
}

impl Event {
    /// The schema v1 wire form of this event.
    pub fn to_wire(&self) -> WireEvent {
        let mut wire = WireEvent {
            schema: Some(SCHEMA_VERSION),
            event_id: Some(self.event_id.clone()),
            customer_id: Some(self.customer_id.clone()),
            ts: Some(self.ts),
            kind: Some(self.kind.name().to_owned()),
            label: self.label,
            ..WireEvent::default()
        };
        let mut place = |country: Option<&String>, location: Option<GeoPoint>| {
            wire.country = country.cloned();
            wire.lat = location.map(|p| p.lat);
            wire.lon = location.map(|p| p.lon);
        };
        match &self.kind {
            EventKind::Payment(p) => {
                place(Some(&p.country), p.location);
                wire.amount = Some(p.amount);
                wire.currency = Some(p.currency.clone());
                wire.merchant = Some(p.merchant.clone());
                wire.mcc = Some(p.mcc.clone());
                wire.channel = p.channel.clone();
            }
            EventKind::Login { place: Some(p) } => place(p.country.as_ref(), p.location),
            EventKind::SessionEnd { duration_s } => wire.duration_s = Some(*duration_s),
            EventKind::PageView { page } => wire.page = Some(page.clone()),
            EventKind::FeatureUse { feature } => wire.feature = Some(feature.clone()),
            EventKind::Login { place: None }
            | EventKind::SupportTicket
            | EventKind::CartAdd
            | EventKind::CartAbandon
            | EventKind::SubscriptionChange => {}
        }
        wire
    }

    /// One JSON line of the wire form, without the newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_wire()).expect("wire events always serialize")
    }
}
