//! Rolling behavioural features, kept per customer: the one implementation used by the live
//! customer actor, by replay and by `vigil train`, so online and offline features cannot
//! drift apart.
//!
//! `CustomerFeatures::observe` folds one event into the customer's state and returns the
//! feature vector to score: fraud features for a payment, churn features for every other kind.
//! Values that describe the past ("never-seen country", "amount over the previous maximum",
//! "distance from the last payment") are read before the event updates the state; window
//! counts include the event itself. Windows are exact over event time; an event older than the
//! customer's newest by more than the late tolerance is refused, a later-but-tolerated one is
//! placed in time order.

mod seen;
mod window;

pub use seen::SeenSet;
pub use window::RollingWindow;

use crate::event::{Event, EventKind, GeoPoint, Payment};

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Fraud features, in the order fraud models take them.
pub const FRAUD_FEATURES: [&str; 17] = [
    "log_amount",
    "payments_1m",
    "payments_1h",
    "payments_24h",
    "log_amount_sum_1m",
    "log_amount_sum_1h",
    "log_amount_sum_24h",
    "amount_over_max",
    "amount_zscore",
    "new_country",
    "new_merchant",
    "new_mcc",
    "log_distance_km",
    "log_speed_kmh",
    "log_secs_since_last_payment",
    "unusual_hour",
    "log_prior_payments",
];

/// Churn features, in the order churn models take them.
pub const CHURN_FEATURES: [&str; 10] = [
    "logins_7d",
    "logins_30d",
    "login_trend",
    "log_mean_session_s_last3",
    "days_since_core_feature",
    "pricing_cancel_views_7d",
    "support_tickets_30d",
    "days_since_last_login",
    "cart_abandons_30d",
    "tenure_days",
];

pub type FraudVector = [f64; FRAUD_FEATURES.len()];
pub type ChurnVector = [f64; CHURN_FEATURES.len()];

/// Index of a feature by name, for configuration that refers to features (policy rules).
pub fn fraud_feature_index(name: &str) -> Option<usize> {
    FRAUD_FEATURES.iter().position(|f| *f == name)
}

/// The feature vector one event produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation {
    Fraud(FraudVector),
    Churn(ChurnVector),
}

/// An event older than the customer's newest event by more than the tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateEvent {
    pub late_by_ms: i64,
    pub tolerance_ms: i64,
}

/// Time caps: beyond these, "long ago" is all a model needs to know.
const MAX_GAP_SECS: f64 = 30.0 * 86_400.0;
const MAX_DAYS: f64 = 90.0;
const MAX_TENURE_DAYS: f64 = 365.0;
/// Fastest plausible travel between two card-present payments (a long-haul flight).
const MAX_SPEED_KMH: f64 = 20_000.0;
/// How many past events make an hour-of-day profile worth trusting.
const MIN_HOUR_PROFILE: u32 = 20;
/// An hour holding less than this share of the customer's past events is unusual for them.
const UNUSUAL_HOUR_SHARE: f64 = 0.03;

/// Everything the engine remembers about one customer's behaviour.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CustomerFeatures {
    /// Newest event time seen; the "now" of every window.
    newest_ts: i64,
    first_ts: i64,
    /// Payment amounts over 24 h, 1 h and 1 min.
    payments: RollingWindow<3>,
    payment_count: u64,
    amount_mean: f64,
    amount_m2: f64,
    max_amount: f64,
    last_payment: Option<(i64, Option<GeoPoint>)>,
    countries: SeenSet,
    merchants: SeenSet,
    mccs: SeenSet,
    /// Events per UTC hour of day, the customer's usual rhythm.
    hours: [u32; 24],
    /// Logins over 30 and 7 days.
    logins: RollingWindow<2>,
    last_login_ts: Option<i64>,
    last_sessions: [f64; 3],
    session_count: u32,
    last_core_feature_ts: Option<i64>,
    pricing_cancel_views: RollingWindow<1>,
    support_tickets: RollingWindow<1>,
    cart_abandons: RollingWindow<1>,
}

impl CustomerFeatures {
    pub fn new(first_ts: i64) -> Self {
        CustomerFeatures {
            newest_ts: first_ts,
            first_ts,
            payments: RollingWindow::new([DAY, HOUR, MINUTE]),
            payment_count: 0,
            amount_mean: 0.0,
            amount_m2: 0.0,
            max_amount: 0.0,
            last_payment: None,
            countries: SeenSet::default(),
            merchants: SeenSet::default(),
            mccs: SeenSet::default(),
            hours: [0; 24],
            logins: RollingWindow::new([30 * DAY, 7 * DAY]),
            last_login_ts: None,
            last_sessions: [0.0; 3],
            session_count: 0,
            last_core_feature_ts: None,
            pricing_cancel_views: RollingWindow::new([7 * DAY]),
            support_tickets: RollingWindow::new([30 * DAY]),
            cart_abandons: RollingWindow::new([30 * DAY]),
        }
    }

    /// Makes this a copy of `other`, reusing this one's buffers (see `CustomerState::copy_from`).
    pub fn copy_from(&mut self, other: &CustomerFeatures) {
        // Destructured so that a new field cannot be forgotten here.
        let CustomerFeatures {
            newest_ts,
            first_ts,
            payments,
            payment_count,
            amount_mean,
            amount_m2,
            max_amount,
            last_payment,
            countries,
            merchants,
            mccs,
            hours,
            logins,
            last_login_ts,
            last_sessions,
            session_count,
            last_core_feature_ts,
            pricing_cancel_views,
            support_tickets,
            cart_abandons,
        } = other;
        self.newest_ts = *newest_ts;
        self.first_ts = *first_ts;
        self.payments.copy_from(payments);
        self.payment_count = *payment_count;
        self.amount_mean = *amount_mean;
        self.amount_m2 = *amount_m2;
        self.max_amount = *max_amount;
        self.last_payment = *last_payment;
        self.countries.copy_from(countries);
        self.merchants.copy_from(merchants);
        self.mccs.copy_from(mccs);
        self.hours = *hours;
        self.logins.copy_from(logins);
        self.last_login_ts = *last_login_ts;
        self.last_sessions = *last_sessions;
        self.session_count = *session_count;
        self.last_core_feature_ts = *last_core_feature_ts;
        self.pricing_cancel_views.copy_from(pricing_cancel_views);
        self.support_tickets.copy_from(support_tickets);
        self.cart_abandons.copy_from(cart_abandons);
    }

    /// Folds `event` into the state and returns the features to score it with.
    pub fn observe(
        &mut self,
        event: &Event,
        late_tolerance_ms: i64,
    ) -> Result<Observation, LateEvent> {
        let ts = event.ts;
        if ts < self.newest_ts - late_tolerance_ms {
            return Err(LateEvent {
                late_by_ms: self.newest_ts - ts,
                tolerance_ms: late_tolerance_ms,
            });
        }
        self.newest_ts = self.newest_ts.max(ts);
        self.first_ts = self.first_ts.min(ts);
        let now = self.newest_ts;
        for window in [
            &mut self.pricing_cancel_views,
            &mut self.support_tickets,
            &mut self.cart_abandons,
        ] {
            window.advance(now);
        }
        self.payments.advance(now);
        self.logins.advance(now);

        let unusual_hour = self.unusual_hour(ts);
        self.hours[hour_of_day(ts)] += 1;

        match &event.kind {
            EventKind::Payment(payment) => Ok(Observation::Fraud(self.observe_payment(
                ts,
                payment,
                unusual_hour,
            ))),
            other => {
                match other {
                    EventKind::Login { .. } => {
                        self.logins.insert(now, ts, 1.0);
                    }
                    EventKind::SessionEnd { duration_s } => {
                        self.last_sessions[self.session_count as usize % 3] = *duration_s;
                        self.session_count += 1;
                    }
                    EventKind::FeatureUse { .. } => {
                        self.last_core_feature_ts = Some(latest(self.last_core_feature_ts, ts));
                    }
                    EventKind::PageView { page } if page == "pricing" || page == "cancel" => {
                        self.pricing_cancel_views.insert(now, ts, 1.0);
                    }
                    EventKind::SupportTicket => self.support_tickets.insert(now, ts, 1.0),
                    EventKind::CartAbandon => self.cart_abandons.insert(now, ts, 1.0),
                    _ => {}
                }
                let churn = self.churn_features(matches!(other, EventKind::Login { .. }));
                if let EventKind::Login { .. } = other {
                    self.last_login_ts = Some(latest(self.last_login_ts, ts));
                }
                Ok(Observation::Churn(churn))
            }
        }
    }

    fn observe_payment(&mut self, ts: i64, p: &Payment, unusual_hour: bool) -> FraudVector {
        let now = self.newest_ts;
        let has_history = self.payment_count > 0;
        let flag = |seen: &SeenSet, value: &str| f64::from(has_history && !seen.contains(value));
        let (new_country, new_merchant, new_mcc) = (
            flag(&self.countries, &p.country),
            flag(&self.merchants, &p.merchant),
            flag(&self.mccs, &p.mcc),
        );
        let amount_over_max = if has_history {
            ((1.0 + p.amount) / (1.0 + self.max_amount)).ln()
        } else {
            0.0
        };
        let amount_zscore = if self.payment_count >= 2 {
            let sd = (self.amount_m2 / (self.payment_count - 1) as f64).sqrt();
            ((p.amount - self.amount_mean) / sd.max(1.0)).clamp(-10.0, 50.0)
        } else {
            0.0
        };
        let (distance_km, speed_kmh, gap_secs) = match self.last_payment {
            Some((last_ts, last_place)) => {
                let gap_secs = ((ts - last_ts).max(0) as f64 / 1_000.0).min(MAX_GAP_SECS);
                let distance = match (last_place, p.location) {
                    (Some(a), Some(b)) => haversine_km(a, b),
                    _ => 0.0,
                };
                let speed = (distance / (gap_secs.max(1.0) / 3_600.0)).min(MAX_SPEED_KMH);
                (distance, speed, gap_secs)
            }
            None => (0.0, 0.0, MAX_GAP_SECS),
        };
        let prior_payments = self.payment_count as f64;

        self.payments.insert(now, ts, p.amount);
        self.payment_count += 1;
        let delta = p.amount - self.amount_mean;
        self.amount_mean += delta / self.payment_count as f64;
        self.amount_m2 += delta * (p.amount - self.amount_mean);
        self.max_amount = self.max_amount.max(p.amount);
        if self.last_payment.is_none_or(|(last_ts, _)| ts >= last_ts) {
            self.last_payment = Some((ts, p.location));
        }
        self.countries.insert(&p.country);
        self.merchants.insert(&p.merchant);
        self.mccs.insert(&p.mcc);

        [
            p.amount.ln_1p(),
            self.payments.count(2) as f64,
            self.payments.count(1) as f64,
            self.payments.count(0) as f64,
            self.payments.sum(2).max(0.0).ln_1p(),
            self.payments.sum(1).max(0.0).ln_1p(),
            self.payments.sum(0).max(0.0).ln_1p(),
            amount_over_max,
            amount_zscore,
            new_country,
            new_merchant,
            new_mcc,
            distance_km.ln_1p(),
            speed_kmh.ln_1p(),
            gap_secs.ln_1p(),
            f64::from(unusual_hour),
            prior_payments.ln_1p(),
        ]
    }

    fn churn_features(&self, is_login: bool) -> ChurnVector {
        let now = self.newest_ts;
        let days_since = |t: Option<i64>| days(now - t.unwrap_or(self.first_ts)).min(MAX_DAYS);
        let logins_7d = self.logins.count(1) as f64;
        let logins_30d = self.logins.count(0) as f64;
        let sessions = self.session_count.min(3) as usize;
        let mean_session = if sessions == 0 {
            0.0
        } else {
            self.last_sessions[..sessions].iter().sum::<f64>() / sessions as f64
        };
        let days_since_last_login = if is_login {
            0.0
        } else {
            days_since(self.last_login_ts)
        };
        [
            logins_7d,
            logins_30d,
            logins_7d / 7.0 - logins_30d / 30.0,
            mean_session.ln_1p(),
            days_since(self.last_core_feature_ts),
            self.pricing_cancel_views.count(0) as f64,
            self.support_tickets.count(0) as f64,
            days_since_last_login,
            self.cart_abandons.count(0) as f64,
            days(now - self.first_ts).min(MAX_TENURE_DAYS),
        ]
    }

    fn unusual_hour(&self, ts: i64) -> bool {
        let total: u32 = self.hours.iter().sum();
        if total < MIN_HOUR_PROFILE {
            return false;
        }
        let h = hour_of_day(ts);
        // The hour and its neighbours, so a habit at 21:55 covers 22:05.
        let near = self.hours[(h + 23) % 24] + self.hours[h] + self.hours[(h + 1) % 24];
        f64::from(near) / f64::from(total) < UNUSUAL_HOUR_SHARE
    }
}

fn latest(previous: Option<i64>, ts: i64) -> i64 {
    previous.map_or(ts, |p| p.max(ts))
}

fn days(ms: i64) -> f64 {
    ms.max(0) as f64 / DAY as f64
}

fn hour_of_day(ts: i64) -> usize {
    (ts.rem_euclid(DAY) / HOUR) as usize
}

/// Great-circle distance in kilometres.
pub fn haversine_km(a: GeoPoint, b: GeoPoint) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6_371.0;
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests;
