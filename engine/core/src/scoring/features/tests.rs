//! Hand-computed feature values at window edges, for late events and for each derived value.

use super::*;
use crate::event::{Event, EventKind, GeoPoint, Payment, Place};

const T0: i64 = 1_763_805_600_000; // 2025-11-22 10:00:00 UTC
const TOLERANCE: i64 = 5 * MINUTE;

fn payment(ts: i64, amount: f64, country: &str, merchant: &str, at: (f64, f64)) -> Event {
    Event {
        event_id: format!("e-{ts}"),
        customer_id: "c-1".into(),
        ts,
        kind: EventKind::Payment(Payment {
            amount,
            currency: "EUR".into(),
            country: country.into(),
            location: Some(GeoPoint {
                lat: at.0,
                lon: at.1,
            }),
            merchant: merchant.into(),
            mcc: "5411".into(),
            channel: None,
        }),
        label: None,
    }
}

fn other(ts: i64, kind: EventKind) -> Event {
    Event {
        event_id: format!("e-{ts}"),
        customer_id: "c-1".into(),
        ts,
        kind,
        label: None,
    }
}

const PARIS: (f64, f64) = (48.8566, 2.3522);
const LONDON: (f64, f64) = (51.5074, -0.1278);

fn fraud(f: &mut CustomerFeatures, e: &Event) -> FraudVector {
    match f.observe(e, TOLERANCE).unwrap() {
        Observation::Fraud(v) => v,
        Observation::Churn(_) => panic!("payment gave churn features"),
    }
}

fn churn(f: &mut CustomerFeatures, e: &Event) -> ChurnVector {
    match f.observe(e, TOLERANCE).unwrap() {
        Observation::Churn(v) => v,
        Observation::Fraud(_) => panic!("non-payment gave fraud features"),
    }
}

fn get(v: &FraudVector, name: &str) -> f64 {
    v[fraud_feature_index(name).unwrap()]
}

fn churn_get(v: &ChurnVector, name: &str) -> f64 {
    v[CHURN_FEATURES.iter().position(|f| *f == name).unwrap()]
}

#[test]
fn first_payment_has_no_history_to_be_unusual_against() {
    let mut f = CustomerFeatures::new(T0);
    let v = fraud(&mut f, &payment(T0, 50.0, "FR", "m-1", PARIS));
    assert_eq!(get(&v, "payments_1m"), 1.0);
    assert_eq!(get(&v, "new_country"), 0.0);
    assert_eq!(get(&v, "amount_over_max"), 0.0);
    assert_eq!(get(&v, "log_prior_payments"), 0.0);
    assert_eq!(get(&v, "log_secs_since_last_payment"), MAX_GAP_SECS.ln_1p());
}

#[test]
fn payment_windows_count_the_event_itself_and_expire_exactly_at_the_edge() {
    let mut f = CustomerFeatures::new(T0);
    fraud(&mut f, &payment(T0, 10.0, "FR", "m-1", PARIS));
    fraud(&mut f, &payment(T0 + 30 * SECOND, 20.0, "FR", "m-1", PARIS));
    // Exactly one minute after the first: it has left the 1 min window.
    let v = fraud(&mut f, &payment(T0 + MINUTE, 40.0, "FR", "m-1", PARIS));
    assert_eq!(get(&v, "payments_1m"), 2.0);
    assert_eq!(get(&v, "log_amount_sum_1m"), 60.0_f64.ln_1p());
    assert_eq!(get(&v, "payments_1h"), 3.0);
    assert_eq!(get(&v, "log_amount_sum_1h"), 70.0_f64.ln_1p());
    // Exactly 24 h after the first: the first has left the 24 h window.
    let v = fraud(&mut f, &payment(T0 + DAY, 5.0, "FR", "m-1", PARIS));
    assert_eq!(get(&v, "payments_24h"), 3.0);
    assert_eq!(get(&v, "log_amount_sum_24h"), 65.0_f64.ln_1p());
    assert_eq!(get(&v, "payments_1h"), 1.0);
}

#[test]
fn amount_against_the_customers_own_history() {
    let mut f = CustomerFeatures::new(T0);
    for (i, amount) in [10.0, 20.0, 30.0].into_iter().enumerate() {
        fraud(
            &mut f,
            &payment(T0 + i as i64 * HOUR, amount, "FR", "m-1", PARIS),
        );
    }
    let v = fraud(&mut f, &payment(T0 + 3 * HOUR, 130.0, "FR", "m-1", PARIS));
    // Previous max 30.
    assert_eq!(
        get(&v, "amount_over_max"),
        130.0_f64.ln_1p() - 30.0_f64.ln_1p()
    );
    // On the log scale: the mean of ln(11), ln(21), ln(31), and their sum of squared
    // deviations plus four pseudo-payments at unit spread, over 2 + 4 degrees of freedom.
    let logs = [11.0_f64.ln(), 21.0_f64.ln(), 31.0_f64.ln()];
    let mean = logs.iter().sum::<f64>() / 3.0;
    let m2: f64 = logs.iter().map(|l| (l - mean).powi(2)).sum();
    let z = (131.0_f64.ln() - mean) / ((m2 + 4.0) / 6.0).sqrt();
    assert!((get(&v, "amount_zscore") - z).abs() < 1e-12);
    // The median of 10, 20, 30 is 20, give or take its sketch bucket.
    let over_median = get(&v, "amount_over_median");
    assert!(
        (over_median - (131.0_f64 / 21.0).ln()).abs() < 0.25,
        "{over_median}"
    );
    assert!(get(&v, "amount_over_p95") < over_median);
    assert_eq!(get(&v, "log_prior_payments"), 3.0_f64.ln_1p());
    assert_eq!(get(&v, "log_secs_since_last_payment"), 3600.0_f64.ln_1p());
}

#[test]
fn never_seen_values_and_travel_speed() {
    let mut f = CustomerFeatures::new(T0);
    fraud(&mut f, &payment(T0, 10.0, "FR", "m-1", PARIS));
    let v = fraud(&mut f, &payment(T0 + HOUR, 10.0, "GB", "m-2", LONDON));
    assert_eq!(get(&v, "new_country"), 1.0);
    assert_eq!(get(&v, "new_merchant"), 1.0);
    assert_eq!(get(&v, "new_mcc"), 0.0);
    let km = haversine_km(
        GeoPoint {
            lat: PARIS.0,
            lon: PARIS.1,
        },
        GeoPoint {
            lat: LONDON.0,
            lon: LONDON.1,
        },
    );
    assert!(
        (km - 343.5).abs() < 1.0,
        "Paris-London is about 343 km, got {km}"
    );
    assert_eq!(get(&v, "log_distance_km"), km.ln_1p());
    assert_eq!(get(&v, "log_speed_kmh"), km.ln_1p());
    // Seen now.
    let v = fraud(&mut f, &payment(T0 + 2 * HOUR, 10.0, "GB", "m-2", LONDON));
    assert_eq!(
        (get(&v, "new_country"), get(&v, "new_merchant")),
        (0.0, 0.0)
    );
}

#[test]
fn hour_share_follows_the_customers_own_rhythm() {
    let mut f = CustomerFeatures::new(T0);
    let v = fraud(&mut f, &payment(T0, 10.0, "FR", "m-1", PARIS));
    assert_eq!(get(&v, "hour_share"), 0.125, "no history: an even day");
    for day in 1..40 {
        fraud(&mut f, &payment(T0 + day * DAY, 10.0, "FR", "m-1", PARIS));
    }
    // 40 payments at 10:00 and 8 pseudo-events spread over the day.
    let at_3am = T0 + 40 * DAY - 7 * HOUR;
    let v = fraud(&mut f, &payment(at_3am, 10.0, "FR", "m-1", PARIS));
    assert_eq!(get(&v, "hour_share"), 1.0 / 48.0);
    let at_11am = T0 + 41 * DAY + HOUR;
    let v = fraud(&mut f, &payment(at_11am, 10.0, "FR", "m-1", PARIS));
    assert_eq!(get(&v, "hour_share"), 41.0 / 49.0);
}

#[test]
fn night_share_distinct_merchants_and_small_amounts_before_a_large_one() {
    let mut f = CustomerFeatures::new(T0);
    // 10:00, then three small night payments at different merchants, then a large one.
    fraud(&mut f, &payment(T0, 50.0, "FR", "m-1", PARIS));
    let night = T0 + 13 * HOUR; // 23:00
    for (i, merchant) in ["m-2", "m-3", "m-2"].into_iter().enumerate() {
        fraud(
            &mut f,
            &payment(night + i as i64 * MINUTE, 2.0, "FR", merchant, PARIS),
        );
    }
    let v = fraud(
        &mut f,
        &payment(night + 10 * MINUTE, 400.0, "FR", "m-4", PARIS),
    );
    assert_eq!(get(&v, "night_share_24h"), 4.0 / 5.0);
    assert_eq!(get(&v, "night_share_7d"), 4.0 / 5.0);
    assert_eq!(get(&v, "merchants_1h"), 3.0);
    assert_eq!(get(&v, "merchants_24h"), 4.0);
    assert_eq!(get(&v, "mccs_24h"), 1.0);
    // All four before it are under a fifth of 400.
    assert_eq!(get(&v, "small_before_24h"), 4.0);
    assert_eq!(
        get(&v, "log_secs_since_same_merchant"),
        MAX_GAP_SECS.ln_1p()
    );
    let v = fraud(
        &mut f,
        &payment(night + 20 * MINUTE, 5.0, "FR", "m-3", PARIS),
    );
    assert_eq!(
        get(&v, "log_secs_since_same_merchant"),
        (19.0_f64 * 60.0).ln_1p()
    );
    assert_eq!(get(&v, "log_secs_since_same_mcc"), 600.0_f64.ln_1p());
    assert_eq!(get(&v, "mcc_share"), 5.0 / 6.0);
    assert_eq!(get(&v, "small_before_24h"), 0.0);
    // A day after the 10:00 payment, it has left the 24 h window; the 7 d one keeps it.
    let v = fraud(&mut f, &payment(T0 + DAY, 50.0, "FR", "m-1", PARIS));
    assert_eq!(get(&v, "payments_24h"), 6.0);
    assert_eq!(get(&v, "payments_7d"), 7.0);
    assert_eq!(get(&v, "night_share_24h"), 5.0 / 6.0);
}

#[test]
fn distance_from_the_usual_place() {
    let mut f = CustomerFeatures::new(T0);
    for i in 0..10 {
        fraud(&mut f, &payment(T0 + i * HOUR, 10.0, "FR", "m-1", PARIS));
    }
    let v = fraud(&mut f, &payment(T0 + 10 * HOUR, 10.0, "GB", "m-2", LONDON));
    let paris_london = get(&v, "log_centroid_km").exp_m1();
    assert!((paris_london - 343.5).abs() < 1.0, "{paris_london}");
    // Back in Paris, a payment is near the usual place though far from the last one.
    let v = fraud(&mut f, &payment(T0 + 11 * HOUR, 10.0, "FR", "m-1", PARIS));
    assert!(get(&v, "log_centroid_km").exp_m1() < 40.0);
    assert!(get(&v, "log_distance_km").exp_m1() > 340.0);
}

#[test]
fn the_payment_rate_against_the_last_30_days() {
    let mut f = CustomerFeatures::new(T0);
    // One payment a day for 30 days, then five in an hour.
    for day in 0..30 {
        fraud(&mut f, &payment(T0 + day * DAY, 10.0, "FR", "m-1", PARIS));
    }
    let burst = T0 + 30 * DAY - MINUTE;
    let mut v = [0.0; FRAUD_FEATURES.len()];
    for i in 0..5 {
        v = fraud(
            &mut f,
            &payment(burst + i * SECOND, 10.0, "FR", "m-1", PARIS),
        );
    }
    // 24 h: the day-29 payment and the five; 30 d: all 35, over the 30 days less 56
    // seconds of history there are.
    assert_eq!(get(&v, "payments_24h"), 6.0);
    let history_days = (30 * DAY - MINUTE + 4 * SECOND) as f64 / DAY as f64;
    assert_eq!(
        get(&v, "log_rate_24h_vs_30d"),
        7.0_f64.ln() - (35.0 / history_days + 1.0).ln()
    );
}

#[test]
fn churn_features_by_hand() {
    let mut f = CustomerFeatures::new(T0);
    let login = || EventKind::Login {
        place: None::<Place>,
    };
    churn(&mut f, &other(T0, login()));
    churn(&mut f, &other(T0 + 10 * DAY, login()));
    churn(
        &mut f,
        &other(
            T0 + 20 * DAY,
            EventKind::FeatureUse {
                feature: "export".into(),
            },
        ),
    );
    for (i, d) in [100.0, 200.0, 300.0, 600.0].into_iter().enumerate() {
        churn(
            &mut f,
            &other(
                T0 + 21 * DAY + i as i64,
                EventKind::SessionEnd { duration_s: d },
            ),
        );
    }
    churn(
        &mut f,
        &other(
            T0 + 25 * DAY,
            EventKind::PageView {
                page: "pricing".into(),
            },
        ),
    );
    churn(
        &mut f,
        &other(
            T0 + 26 * DAY,
            EventKind::PageView {
                page: "home".into(),
            },
        ),
    );
    churn(&mut f, &other(T0 + 27 * DAY, EventKind::SupportTicket));
    let v = churn(
        &mut f,
        &other(
            T0 + 30 * DAY,
            EventKind::PageView {
                page: "cancel".into(),
            },
        ),
    );
    // The login at T0 is exactly 30 days old: outside the 30 d window.
    assert_eq!(churn_get(&v, "logins_30d"), 1.0);
    assert_eq!(churn_get(&v, "logins_7d"), 0.0);
    assert_eq!(churn_get(&v, "login_trend"), -1.0 / 30.0);
    assert_eq!(
        churn_get(&v, "log_mean_session_s_last3"),
        (1100.0_f64 / 3.0).ln_1p()
    );
    assert_eq!(churn_get(&v, "days_since_core_feature"), 10.0);
    assert_eq!(churn_get(&v, "pricing_cancel_views_7d"), 2.0);
    assert_eq!(churn_get(&v, "support_tickets_30d"), 1.0);
    assert_eq!(churn_get(&v, "days_since_last_login"), 20.0);
    assert_eq!(churn_get(&v, "tenure_days"), 30.0);
    // A login itself reads zero days since the last login.
    let v = churn(&mut f, &other(T0 + 31 * DAY, login()));
    assert_eq!(churn_get(&v, "days_since_last_login"), 0.0);
    assert_eq!(churn_get(&v, "logins_7d"), 1.0);
}

#[test]
fn late_events_within_tolerance_are_placed_in_time_beyond_it_refused() {
    let mut f = CustomerFeatures::new(T0);
    fraud(&mut f, &payment(T0 + 2 * MINUTE, 10.0, "FR", "m-1", PARIS));
    // 90 s late: outside the newest payment's 1 min window, inside the hour.
    let v = fraud(&mut f, &payment(T0 + 30 * SECOND, 5.0, "FR", "m-1", PARIS));
    assert_eq!(get(&v, "payments_1m"), 1.0);
    assert_eq!(get(&v, "payments_1h"), 2.0);
    assert_eq!(get(&v, "log_secs_since_last_payment"), 0.0);
    let err = f
        .observe(
            &payment(T0 + 2 * MINUTE - TOLERANCE - 1, 1.0, "FR", "m-1", PARIS),
            TOLERANCE,
        )
        .unwrap_err();
    assert_eq!(
        err,
        LateEvent {
            late_by_ms: TOLERANCE + 1,
            tolerance_ms: TOLERANCE
        }
    );
    // Exactly at the tolerance is still accepted.
    assert!(f
        .observe(
            &payment(T0 + 2 * MINUTE - TOLERANCE, 1.0, "FR", "m-1", PARIS),
            TOLERANCE
        )
        .is_ok());
}

/// Any event, payment or not, on time or late, below or past the collections' bounds, is undone
/// by `rollback` to exactly the state before it, and the event then folds in as if it had
/// never been tried.
#[test]
fn rollback_undoes_any_event_bit_for_bit() {
    let mut f = CustomerFeatures::new(T0);
    let mut twin = f.clone();
    for i in 0..1_500i64 {
        // Every 7th event three minutes late; merchants and countries keep changing, so the
        // seen sets fill up and the windows pass their bucket bound.
        let ts = T0 + i * 20 * SECOND - if i % 7 == 3 { 3 * MINUTE } else { 0 };
        let event = match i % 5 {
            0 => other(ts, EventKind::Login { place: None }),
            1 => other(ts, EventKind::SupportTicket),
            _ => payment(
                ts,
                1.0 + (i % 97) as f64,
                &format!("C{}", i % 300),
                &format!("m-{i}"),
                PARIS,
            ),
        };
        f.settle();
        let before = f.clone();
        let mark = f.mark();
        let tried = f.observe(&event, TOLERANCE).unwrap();
        f.rollback(&mark);
        assert_eq!(f, before, "event {i}");
        assert_eq!(f.observe(&event, TOLERANCE).unwrap(), tried);
        assert_eq!(twin.observe(&event, TOLERANCE).unwrap(), tried);
    }
}

/// The extremes the decoder lets through (amounts of 0 and `MAX_AMOUNT`, the first and last
/// valid millisecond, the poles and the antimeridian, sessions of a year, a flood of payments
/// in one millisecond) never make a feature infinite or NaN.
#[test]
fn extreme_inputs_keep_every_feature_finite() {
    use crate::event::{MAX_AMOUNT, MAX_TS};
    let mut f = CustomerFeatures::new(1);
    let places = [
        (90.0, 180.0),
        (-90.0, -180.0),
        (0.0, 179.999),
        (0.0, -179.999),
    ];
    let mut times = vec![1, 1, 2, MAX_TS / 2, MAX_TS - 1, MAX_TS, MAX_TS, MAX_TS];
    times.extend(std::iter::repeat_n(MAX_TS, 600));
    for (i, &ts) in times.iter().enumerate() {
        let amount = if i % 2 == 0 { MAX_AMOUNT } else { 0.0 };
        let event = match i % 4 {
            3 => other(ts, EventKind::SessionEnd { duration_s: 3.15e7 }),
            _ => payment(
                ts,
                amount,
                &format!("C{i}"),
                &format!("m-{i}"),
                places[i % 4],
            ),
        };
        let values: Vec<f64> = match f.observe(&event, i64::MAX / 4) {
            Ok(Observation::Fraud(v)) => v.to_vec(),
            Ok(Observation::Churn(v)) => v.to_vec(),
            Err(late) => panic!("event {i} refused as late: {late:?}"),
        };
        for (j, value) in values.iter().enumerate() {
            assert!(value.is_finite(), "event {i}: feature {j} is {value}");
        }
    }
}

/// A customer who went quiet is scored as of a later time with exactly the features a neutral
/// event (one no churn feature counts) at that time would have seen.
#[test]
fn churn_features_as_of_a_later_time_match_an_event_then() {
    let mut f = CustomerFeatures::new(T0);
    for i in 0..40 {
        let ts = T0 + i * 6 * HOUR;
        let kind = match i % 4 {
            0 => EventKind::Login { place: None },
            1 => EventKind::SupportTicket,
            2 => EventKind::PageView {
                page: "pricing".into(),
            },
            _ => EventKind::CartAbandon,
        };
        churn(&mut f, &other(ts, kind));
    }
    let newest = T0 + 39 * 6 * HOUR;
    // The engagement signals as of a later time are what an event then (which itself touches
    // none of them) would read; the activity features differ by that event alone.
    let engagement = CHURN_FEATURES
        .iter()
        .position(|f| *f == "logins_7d")
        .unwrap();
    for quiet in [0, HOUR, 3 * DAY, 8 * DAY, 31 * DAY, 200 * DAY] {
        let at = newest + quiet;
        let then = churn(&mut f.clone(), &other(at, EventKind::CartAdd));
        let as_of = f.churn_at(at);
        assert_eq!(
            as_of[engagement..],
            then[engagement..],
            "{quiet} ms after the last event"
        );
        assert_eq!(churn_get(&as_of, "days_since_activity"), days(quiet));
        assert_eq!(churn_get(&then, "days_since_activity"), 0.0);
    }
    // Quiet for 8 days: nothing left in the 7-day windows.
    let v = f.churn_at(newest + 8 * DAY);
    assert_eq!(churn_get(&v, "logins_7d"), 0.0);
    assert_eq!(churn_get(&v, "pricing_cancel_views_7d"), 0.0);
    assert!(churn_get(&v, "days_since_last_login") > 8.0);
}

#[test]
fn churn_features_from_purchases_by_hand() {
    let mut f = CustomerFeatures::new(T0);
    fraud(&mut f, &payment(T0, 100.0, "FR", "m-1", PARIS));
    fraud(&mut f, &payment(T0 + 10 * DAY, 50.0, "FR", "m-1", PARIS));
    churn(
        &mut f,
        &other(T0 + 20 * DAY, EventKind::Login { place: None }),
    );
    fraud(&mut f, &payment(T0 + 50 * DAY, 30.0, "FR", "m-2", PARIS));

    let v = f.churn_at(T0 + 60 * DAY);
    let near = |name: &str, want: f64| {
        let got = churn_get(&v, name);
        assert!((got - want).abs() < 1e-12, "{name}: {got}, want {want}");
    };
    near("days_since_activity", 10.0);
    near("days_since_purchase", 10.0);
    // The payment at T0 is exactly 60 days old: outside the 60-day window.
    near("log_activities_30d", 1f64.ln_1p());
    near("log_activities_90d", 4f64.ln_1p());
    near("log_activities_365d", 4f64.ln_1p());
    near("activity_trend", (2.0f64 / 3.0).ln());
    near("log_purchases_30d", 1f64.ln_1p());
    near("log_purchases_90d", 3f64.ln_1p());
    near("log_purchases_365d", 3f64.ln_1p());
    near("log_spend_90d", 180f64.ln_1p());
    near("log_spend_365d", 180f64.ln_1p());
    near("log_mean_spend_90d", 60f64.ln_1p());
    near("log_mean_spend_365d", 60f64.ln_1p());
    // Four activities over 50 days: three gaps of 50/3 days; the current one is 10.
    near("mean_gap_days", 50.0 / 3.0);
    near("log_gap_over_mean", 0.6f64.ln_1p());
    near("tenure_days", 60.0);

    // Two months later, the 30 and 90-day windows are empty.
    let v = f.churn_at(T0 + 150 * DAY);
    assert_eq!(churn_get(&v, "log_purchases_90d"), 0.0);
    assert_eq!(churn_get(&v, "log_mean_spend_90d"), 0.0);
    assert_eq!(churn_get(&v, "log_purchases_365d"), 3f64.ln_1p());
    assert_eq!(churn_get(&v, "days_since_purchase"), 100.0);
}
