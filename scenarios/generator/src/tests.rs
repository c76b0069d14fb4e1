//! The generator is deterministic, labelled, and injects what its scenario asks for.

use super::*;
use std::collections::HashMap;

use crate::generator::MINUTE_MS;

use vigil_engine::decode::decode;
use vigil_engine::event::{Event, EventKind, Payment};

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

fn decoded(scenario: Scenario) -> (Vec<Event>, GroundTruth) {
    let mut generator = Generator::new(scenario);
    let events = generator
        .by_ref()
        .filter_map(|r| decode(&r.payload, 64 * 1024).ok())
        .collect();
    (events, generator.truth().clone())
}

const PATTERNS: &str = r#"
    seed = 5
    customers = 400
    events = 20000
    start = "2026-11-01T00:00:00Z"
    span = "10d"
    [fraud]
    account_takeover = 0.0
    card_testing = 0.0
    rings = 3
    ring_size = 20
    [hot]
    customers = 2
    share = 0.5
"#;

#[test]
fn a_fraud_ring_pays_one_merchant_from_one_country_within_half_an_hour() {
    let (events, truth) = decoded(Scenario::parse(PATTERNS, "rings.toml").unwrap());
    assert_eq!(truth.fraud_rings.len(), 60);
    assert_eq!(truth.attack_start.len(), 60);
    let mut rings: HashMap<String, Vec<&Event>> = HashMap::new();
    for e in &events {
        if let EventKind::Payment(p) = &e.kind {
            if p.merchant.starts_with("m-ring") {
                assert_eq!(e.label.and_then(|l| l.fraud), Some(true));
                assert!(truth.fraud_rings.contains(&e.customer_id));
                assert!(e.ts >= truth.attack_start[&e.customer_id]);
                rings.entry(p.merchant.clone()).or_default().push(e);
            }
        }
    }
    assert_eq!(rings.len(), 3);
    for payments in rings.values() {
        let members: std::collections::HashSet<&str> =
            payments.iter().map(|e| e.customer_id.as_str()).collect();
        assert_eq!(members.len(), 20);
        let countries: std::collections::HashSet<&str> = payments
            .iter()
            .map(|e| match &e.kind {
                EventKind::Payment(p) => p.country.as_str(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(countries.len(), 1);
        let first = payments.iter().map(|e| e.ts).min().unwrap();
        let last = payments.iter().map(|e| e.ts).max().unwrap();
        assert!(last - first < 45 * MINUTE_MS, "{}", last - first);
    }
}

#[test]
fn hot_customers_take_their_share_and_skew_concentrates_activity() {
    let (events, _) = decoded(Scenario::parse(PATTERNS, "hot.toml").unwrap());
    let hot = events
        .iter()
        .filter(|e| e.customer_id == "c-0000000" || e.customer_id == "c-0000001")
        .count();
    let share = hot as f64 / events.len() as f64;
    assert!((0.47..0.55).contains(&share), "{share}");

    let zipf = PATTERNS
        .replace("[hot]\n    customers = 2\n    share = 0.5", "")
        .replace("seed = 5", "seed = 5\nactivity_skew = 1.2");
    let (events, _) = decoded(Scenario::parse(&zipf, "zipf.toml").unwrap());
    let top = events
        .iter()
        .filter(|e| e.customer_id == "c-0000000")
        .count();
    // Rank 1 of 400 under s = 1.2 gets about a quarter of the weight.
    let share = top as f64 / events.len() as f64;
    assert!((0.15..0.35).contains(&share), "{share}");
}

#[test]
fn malformed_records_break_only_in_the_chosen_ways() {
    let scenario = Scenario::parse(
        &PATTERNS.replace(
            "[hot]",
            "[malformed]\n    ratio = 0.1\n    kinds = [\"bad_timestamp\"]\n    [hot]",
        ),
        "bad.toml",
    )
    .unwrap();
    let mut malformed = 0;
    for record in Generator::new(scenario).filter(|r| r.malformed) {
        let rejection = decode(&record.payload, 64 * 1024).unwrap_err();
        assert_eq!(rejection.field.as_deref(), Some("ts"), "{rejection:?}");
        malformed += 1;
    }
    assert!((1_700..2_300).contains(&malformed), "{malformed}");
}

#[test]
fn churners_who_leave_send_nothing_afterwards_and_the_others_carry_on() {
    let text = r#"
        seed = 5
        customers = 300
        events = 30000
        start = "2026-11-01T00:00:00Z"
        span = "30d"
        [churn]
        cohort = 0.3
        silent_at = 0.3
    "#;
    let generator = Generator::new(Scenario::parse(text, "test.toml").unwrap());
    let churners: std::collections::HashSet<String> =
        generator.truth().churners.iter().cloned().collect();
    let start = 1793491200000i64; // 2026-11-01T00:00:00Z
    let mut last_seen: HashMap<String, i64> = HashMap::new();
    for record in generator {
        if let Ok(event) = decode(&record.payload, 64 * 1024) {
            last_seen.insert(event.customer_id, event.ts);
        }
    }
    // Drift starts 30-60% into the span, so every churner has left by 72% of it.
    let left_by = start + (30 * 24 * 60 * MINUTE_MS) * 72 / 100;
    let (mut quiet, mut active) = (0, 0);
    for (customer, last) in &last_seen {
        if churners.contains(customer) {
            assert!(*last <= left_by, "{customer} sent at {last} after leaving");
            quiet += 1;
        } else if *last > left_by {
            active += 1;
        }
    }
    assert!(quiet > 50, "{quiet} churners");
    assert!(active > 150, "{active} others still active at the end");
}

/// Reads a paced source to its end: each record with the instant it was read.
async fn read_paced(
    mut source: GeneratorSource,
) -> Vec<(vigil_engine::source::SourceRecord, std::time::Instant)> {
    use vigil_engine::source::Source;
    let (mut read, mut batch) = (Vec::new(), Vec::new());
    loop {
        batch.clear();
        let more = source.next_batch(&mut batch).await.unwrap();
        let now = std::time::Instant::now();
        read.extend(batch.drain(..).map(|record| (record, now)));
        if !more {
            return read;
        }
    }
}

#[tokio::test]
async fn a_paced_source_releases_every_record_once_in_order_and_never_early() {
    let mut paced = scenario(50, 2_000, 0.0);
    paced.rate = Some(5_000);
    let expected: Vec<Vec<u8>> = Generator::new(paced.clone()).map(|r| r.payload).collect();
    let source = GeneratorSource::new(paced.clone(), "test.toml".to_owned());
    let pacing = source.pacing();
    let read = read_paced(source).await;

    assert_eq!(read.len(), expected.len());
    let schedule = Schedule::of(&paced).unwrap();
    let started = read[0].0.ingested;
    for (n, ((record, read_at), payload)) in read.iter().zip(&expected).enumerate() {
        assert_eq!(record.position.offset, n as u64);
        assert_eq!(&record.payload[..], &payload[..], "record {n}");
        assert_eq!(
            record.ingested,
            started + schedule.intended(n as u64),
            "record {n}'s stamp"
        );
        assert!(
            *read_at >= record.ingested,
            "record {n} was read before it was due"
        );
    }
    // Every record's release was timed; the run took the schedule's 0.4 s, not less.
    assert_eq!(pacing.count(), expected.len() as u64);
    assert!(read.last().unwrap().1 - started >= schedule.intended(expected.len() as u64 - 1));
}

#[tokio::test]
async fn a_resumed_paced_source_starts_at_its_offset_without_waiting_for_the_skipped() {
    let mut paced = scenario(50, 2_000, 0.0);
    paced.rate = Some(1_000);
    let expected: Vec<Vec<u8>> = Generator::new(paced.clone()).map(|r| r.payload).collect();
    let begun = std::time::Instant::now();
    let read =
        read_paced(GeneratorSource::new(paced, "test.toml".to_owned()).resume_at(1_900)).await;

    let offsets: Vec<u64> = read.iter().map(|(r, _)| r.position.offset).collect();
    assert_eq!(offsets, (1_900..expected.len() as u64).collect::<Vec<_>>());
    assert_eq!(&read[0].0.payload[..], &expected[1_900][..]);
    // The injected records ride on the 2,000: about 140 records at 1k/s, not the 2 s of the
    // whole schedule.
    assert!(
        begun.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        begun.elapsed()
    );
}
