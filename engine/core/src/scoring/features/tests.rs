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
    // Previous max 30; mean 20, sample sd 10.
    assert_eq!(get(&v, "amount_over_max"), (131.0_f64 / 31.0).ln());
    assert_eq!(get(&v, "amount_zscore"), 11.0);
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
fn unusual_hour_once_the_customer_has_a_rhythm() {
    let mut f = CustomerFeatures::new(T0);
    for day in 0..MIN_HOUR_PROFILE as i64 {
        let v = fraud(&mut f, &payment(T0 + day * DAY, 10.0, "FR", "m-1", PARIS));
        assert_eq!(get(&v, "unusual_hour"), 0.0);
    }
    let at_3am = T0 + 20 * DAY - 7 * HOUR;
    assert_eq!(
        get(
            &fraud(&mut f, &payment(at_3am, 10.0, "FR", "m-1", PARIS)),
            "unusual_hour"
        ),
        1.0
    );
    let at_11am = T0 + 21 * DAY + HOUR;
    assert_eq!(
        get(
            &fraud(&mut f, &payment(at_11am, 10.0, "FR", "m-1", PARIS)),
            "unusual_hour"
        ),
        0.0
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
