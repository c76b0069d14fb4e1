//! Fault injection for the fault tests, compiled only with the `fault-injection` Cargo feature
//! (which only the test crate turns on). An event whose id starts with `poison-` makes its
//! customer's processing panic every time, after the features have folded it in, so a test can
//! see the state rolled back; `poison-once-` panics only the first time, as a transient fault.

use std::sync::Mutex;

/// Called by the customer actor once an event's features are computed.
pub fn after_features(event_id: &str) {
    static FAILED_ONCE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    if let Some(rest) = event_id.strip_prefix("poison-") {
        if rest.starts_with("once-") {
            let mut failed = FAILED_ONCE.lock().unwrap_or_else(|e| e.into_inner());
            if failed.iter().any(|id| id == event_id) {
                return;
            }
            failed.push(event_id.to_owned());
        }
        panic!("injected fault on {event_id}");
    }
}
