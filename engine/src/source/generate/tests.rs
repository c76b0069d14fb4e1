//! The generator is deterministic, labelled, and injects what its scenario asks for.

use super::*;
use crate::decode::decode;

fn scenario(customers: u32, events: u64, malformed: f64) -> Scenario {
    Scenario::parse(
        &format!(
            r#"
            seed = 11
            customers = {customers}
            events = {events}
            start = "2026-11-01T00:00:00Z"
            span = "30d"
            [fraud]
            account_takeover = 0.05
            card_testing = 0.05
            [churn]
            cohort = 0.1
            [malformed]
            ratio = {malformed}
            "#
        ),
        "test.toml",
    )
    .unwrap()
}

#[test]
fn same_seed_same_records() {
    let a: Vec<Vec<u8>> = Generator::new(scenario(50, 2_000, 0.01))
        .map(|r| r.payload)
        .collect();
    let b: Vec<Vec<u8>> = Generator::new(scenario(50, 2_000, 0.01))
        .map(|r| r.payload)
        .collect();
    assert_eq!(a, b);
}

#[test]
fn well_formed_records_decode_in_event_time_order_and_malformed_ones_do_not() {
    let mut generator = Generator::new(scenario(200, 20_000, 0.01));
    let announced = generator.remaining();
    assert!(announced >= 20_000);
    let (mut last_ts, mut malformed, mut fraud_payments) = (0, 0, 0);
    for record in generator.by_ref() {
        match decode(&record.payload, 64 * 1024) {
            Ok(event) => {
                assert!(!record.malformed);
                assert!(event.ts >= last_ts, "event time goes backwards");
                last_ts = event.ts;
                if event.label.and_then(|l| l.fraud) == Some(true) {
                    fraud_payments += 1;
                }
            }
            Err(rejection) => {
                assert!(
                    record.malformed,
                    "generated a bad record by accident: {rejection:?}"
                );
                malformed += 1;
            }
        }
    }
    let truth = generator.truth();
    assert_eq!(generator.remaining(), 0);
    assert_eq!(truth.malformed, malformed);
    assert!(malformed > 100, "{malformed}");
    assert!(!truth.account_takeover.is_empty() && !truth.card_testing.is_empty());
    assert!(fraud_payments >= truth.account_takeover.len() * 2 + truth.card_testing.len() * 8);
}

#[test]
fn account_takeover_pays_large_in_a_country_the_customer_never_used() {
    let mut generator = Generator::new(scenario(100, 10_000, 0.0));
    let events: Vec<Event> = generator
        .by_ref()
        .map(|r| decode(&r.payload, 64 * 1024).unwrap())
        .collect();
    for victim in &generator.truth().account_takeover {
        let payments: Vec<&Payment> = events
            .iter()
            .filter(|e| &e.customer_id == victim)
            .filter_map(|e| match &e.kind {
                EventKind::Payment(p) => Some(p),
                _ => None,
            })
            .collect();
        let (fraud, benign): (Vec<&Payment>, Vec<&Payment>) = payments.iter().partition(|p| {
            p.channel.as_deref() == Some("online")
                && p.amount > 500.0
                && p.location.is_some()
                && !payments
                    .iter()
                    .any(|q| q.country == p.country && q.amount < 500.0)
        });
        assert!(!fraud.is_empty(), "{victim} has no takeover payment");
        let max_benign = benign.iter().map(|p| p.amount).fold(0.0, f64::max);
        assert!(fraud.iter().all(|p| p.amount > max_benign));
    }
}
