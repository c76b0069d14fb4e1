//! Rolling behavioural features, kept per customer: the one implementation used by the live
//! customer actor, by replay and by `vigil train`, so online and offline features cannot
//! drift apart.
//!
//! `CustomerFeatures::observe` folds one event into the customer's state and returns the
//! feature vector to score: fraud features for a payment, churn features for every other kind.
//! Values that describe the past ("never-seen country", "amount over the previous maximum",
//! "distance from the last payment") are read before the event updates the state; window
//! counts include the event itself. Windows are over event time, exact until a customer passes
//! hundreds of events in one, then within a few percent (see `window`); an event older than
//! the customer's newest by more than the late tolerance is refused, a later-but-tolerated one
//! is placed in time order. Every collection is bounded, so an event costs the same for a
//! customer with ten events a day and one with a million. Churn looks back months, so its
//! activity and spend are kept per day (`daily`), exact to the day.
//!
//! `CustomerFeatures::churn_at` gives the churn features as of any time after the newest
//! event, without an event: what an inactivity check, `vigil score` and point-in-time training
//! read.

mod daily;
mod fixed_array;
mod place;
mod recent;
mod seen;
mod sketch;
mod window;

pub use daily::DailyActivity;
pub use place::{haversine_km, Centroid};
pub use recent::{RecentMark, RecentPayment, RecentPayments, Velocity};
pub use seen::{fnv1a, Seen, SeenSet};
pub use sketch::AmountSketch;
pub use window::{RollingWindow, WindowMark};

use crate::event::{Event, EventKind, GeoPoint, Payment};

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
pub(crate) const HOUR: i64 = 60 * MINUTE;
pub(crate) const DAY: i64 = 24 * HOUR;

/// Fraud features, in the order fraud models take them. Every one describes the payment
/// against the customer's own history, never against the calendar, so a model trained on one
/// period carries over to the next.
pub const FRAUD_FEATURES: [&str; 33] = [
    "log_amount",
    "payments_1m",
    "payments_1h",
    "payments_24h",
    "payments_7d",
    "log_amount_sum_1m",
    "log_amount_sum_1h",
    "log_amount_sum_24h",
    "log_amount_sum_7d",
    "log_rate_24h_vs_30d",
    "amount_over_max",
    "amount_over_median",
    "amount_over_p95",
    "amount_zscore",
    "new_country",
    "new_merchant",
    "new_mcc",
    "merchants_1h",
    "merchants_24h",
    "mccs_1h",
    "mccs_24h",
    "log_secs_since_same_merchant",
    "log_secs_since_same_mcc",
    "mcc_share",
    "log_distance_km",
    "log_speed_kmh",
    "log_centroid_km",
    "log_secs_since_last_payment",
    "hour_share",
    "night_share_24h",
    "night_share_7d",
    "small_before_24h",
    "log_prior_payments",
];

/// Churn features, in the order churn models take them: recency, frequency and spend from
/// every kind of activity (payments included), tenure, gaps and trend, then the engagement
/// signals.
pub const CHURN_FEATURES: [&str; 25] = [
    "days_since_activity",
    "days_since_purchase",
    "log_activities_30d",
    "log_activities_90d",
    "log_activities_365d",
    "log_purchases_30d",
    "log_purchases_90d",
    "log_purchases_365d",
    "log_spend_90d",
    "log_spend_365d",
    "log_mean_spend_90d",
    "log_mean_spend_365d",
    "mean_gap_days",
    "log_gap_over_mean",
    "activity_trend",
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

impl Observation {
    /// The vector, in its model's feature order.
    pub fn features(&self) -> &[f64] {
        match self {
            Observation::Fraud(v) => v,
            Observation::Churn(v) => v,
        }
    }
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
/// Recency and gaps stop at a year.
const MAX_RECENCY_DAYS: f64 = 365.0;
/// The current gap over the mean gap stops at this many times.
const MAX_GAP_RATIO: f64 = 100.0;
/// The shortest mean gap a ratio is taken over: an hour.
const MIN_MEAN_GAP_DAYS: f64 = 1.0 / 24.0;
/// Past this many payments a history is simply long: the count stops growing, so it cannot
/// stand in for the date.
const MAX_PRIOR_PAYMENTS: f64 = 100.0;
/// Fastest plausible travel between two card-present payments (a long-haul flight).
const MAX_SPEED_KMH: f64 = 20_000.0;
/// Pseudo-events spread evenly over the day that smooth the hour-of-day profile, so a short
/// history calls no hour unusual.
const HOUR_PROFILE_PRIOR: f64 = 8.0;
/// Pseudo-payments at one e-fold of spread that smooth the amount z-score, so it stays sane
/// with 1 to 3 prior payments.
const ZSCORE_PRIOR: f64 = 4.0;
/// Night: 22:00 to 06:00 on the event-time clock.
const NIGHT_FROM_HOUR: usize = 22;
const NIGHT_TO_HOUR: usize = 6;
/// A payment this many times smaller than the current one is "small" before it.
const SMALL_FACTOR: f64 = 5.0;

/// Payment window horizons, widest first, and their indices.
const PAYMENT_WINDOWS: [i64; 5] = [30 * DAY, 7 * DAY, DAY, HOUR, MINUTE];
const W30D: usize = 0;
const W7D: usize = 1;
const W24H: usize = 2;
const W1H: usize = 3;
const W1M: usize = 4;

/// Everything the engine remembers about one customer's behaviour: a fixed-size summary and
/// bounded time-ordered collections.
///
/// An event changes the summary in place and each collection at one place, and leaves what it
/// expires for the next `settle`, so `mark` (a copy of the summary and a few numbers per
/// collection) and `rollback` undo an event at a cost that does not grow with the customer's
/// history.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CustomerFeatures {
    summary: Summary,
    /// Payment amounts over `PAYMENT_WINDOWS`.
    payments: RollingWindow<5>,
    /// Night payments over 7 days and 24 hours.
    night_payments: RollingWindow<2>,
    /// The last day of payments in detail.
    recent: RecentPayments,
    countries: SeenSet,
    merchants: SeenSet,
    mccs: SeenSet,
    /// Logins over 30 and 7 days.
    logins: RollingWindow<2>,
    pricing_cancel_views: RollingWindow<1>,
    support_tickets: RollingWindow<1>,
    cart_abandons: RollingWindow<1>,
    /// Events and payments per day over the last year, for churn.
    daily: DailyActivity,
}

/// The fixed-size part of a customer's features, copied whole into a `FeaturesMark`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Summary {
    /// Newest event time seen; the "now" of every window.
    newest_ts: i64,
    first_ts: i64,
    payment_count: u64,
    /// Running mean and sum of squares of `ln(1 + amount)`.
    log_amount_mean: f64,
    log_amount_m2: f64,
    /// The largest `ln(1 + amount)` so far.
    max_log_amount: f64,
    amounts: AmountSketch,
    last_payment: Option<(i64, Option<GeoPoint>)>,
    usual_place: Centroid,
    /// Events per UTC hour of day, the customer's usual rhythm.
    hours: [u32; 24],
    last_login_ts: Option<i64>,
    last_sessions: [f64; 3],
    session_count: u32,
    last_core_feature_ts: Option<i64>,
    /// Events of every kind folded in.
    activity_count: u64,
}

/// A customer's features before an event, restored by `CustomerFeatures::rollback`.
#[derive(Debug, Clone, Copy)]
pub struct FeaturesMark {
    summary: Summary,
    payments: WindowMark<5>,
    night_payments: WindowMark<2>,
    recent: RecentMark,
    logins: WindowMark<2>,
    pricing_cancel_views: WindowMark<1>,
    support_tickets: WindowMark<1>,
    cart_abandons: WindowMark<1>,
}

impl CustomerFeatures {
    pub fn new(first_ts: i64) -> Self {
        CustomerFeatures {
            summary: Summary {
                newest_ts: first_ts,
                first_ts,
                payment_count: 0,
                log_amount_mean: 0.0,
                log_amount_m2: 0.0,
                max_log_amount: 0.0,
                amounts: AmountSketch::default(),
                last_payment: None,
                usual_place: Centroid::default(),
                hours: [0; 24],
                last_login_ts: None,
                last_sessions: [0.0; 3],
                session_count: 0,
                last_core_feature_ts: None,
                activity_count: 0,
            },
            payments: RollingWindow::new(PAYMENT_WINDOWS),
            night_payments: RollingWindow::new([7 * DAY, DAY]),
            recent: RecentPayments::default(),
            countries: SeenSet::default(),
            merchants: SeenSet::default(),
            mccs: SeenSet::default(),
            logins: RollingWindow::new([30 * DAY, 7 * DAY]),
            pricing_cancel_views: RollingWindow::new([7 * DAY]),
            support_tickets: RollingWindow::new([30 * DAY]),
            cart_abandons: RollingWindow::new([30 * DAY]),
            daily: DailyActivity::default(),
        }
    }

    /// Commits the events so far: the collections drop what has expired and bound their
    /// size. Changes no feature; `observe` settles first, and a mark is taken after it.
    pub fn settle(&mut self) {
        // Destructured so that a new collection cannot be forgotten here.
        let CustomerFeatures {
            summary: _,
            payments,
            night_payments,
            recent,
            countries,
            merchants,
            mccs,
            logins,
            pricing_cancel_views,
            support_tickets,
            cart_abandons,
            daily,
        } = self;
        payments.settle();
        daily.settle(self.summary.newest_ts);
        night_payments.settle();
        recent.settle();
        for set in [countries, merchants, mccs] {
            set.settle();
        }
        logins.settle();
        for window in [pricing_cancel_views, support_tickets, cart_abandons] {
            window.settle();
        }
    }

    /// Where the features are now, to come back to if the next event fails. Call `settle`
    /// first.
    pub fn mark(&self) -> FeaturesMark {
        FeaturesMark {
            summary: self.summary,
            payments: self.payments.mark(),
            night_payments: self.night_payments.mark(),
            recent: self.recent.mark(),
            logins: self.logins.mark(),
            pricing_cancel_views: self.pricing_cancel_views.mark(),
            support_tickets: self.support_tickets.mark(),
            cart_abandons: self.cart_abandons.mark(),
        }
    }

    /// Undoes everything since `mark`.
    pub fn rollback(&mut self, mark: &FeaturesMark) {
        let FeaturesMark {
            summary,
            payments,
            night_payments,
            recent,
            logins,
            pricing_cancel_views,
            support_tickets,
            cart_abandons,
        } = mark;
        self.summary = *summary;
        self.payments.rollback(payments);
        self.night_payments.rollback(night_payments);
        self.recent.rollback(recent);
        self.countries.rollback();
        self.merchants.rollback();
        self.mccs.rollback();
        self.logins.rollback(logins);
        self.pricing_cancel_views.rollback(pricing_cancel_views);
        self.support_tickets.rollback(support_tickets);
        self.cart_abandons.rollback(cart_abandons);
        self.daily.rollback();
    }

    /// The last day of payments in detail, for velocity rules.
    pub fn recent(&self) -> &RecentPayments {
        &self.recent
    }

    /// The newest event time folded in.
    pub fn newest_ts(&self) -> i64 {
        self.summary.newest_ts
    }

    /// Folds `event` into the state and returns the features to score it with.
    pub fn observe(
        &mut self,
        event: &Event,
        late_tolerance_ms: i64,
    ) -> Result<Observation, LateEvent> {
        self.settle();
        let ts = event.ts;
        if ts < self.summary.newest_ts - late_tolerance_ms {
            return Err(LateEvent {
                late_by_ms: self.summary.newest_ts - ts,
                tolerance_ms: late_tolerance_ms,
            });
        }
        self.summary.newest_ts = self.summary.newest_ts.max(ts);
        self.summary.first_ts = self.summary.first_ts.min(ts);
        let now = self.summary.newest_ts;
        for window in [
            &mut self.pricing_cancel_views,
            &mut self.support_tickets,
            &mut self.cart_abandons,
        ] {
            window.advance(now);
        }
        self.payments.advance(now);
        self.night_payments.advance(now);
        self.recent.advance(now - DAY);
        self.logins.advance(now);
        self.summary.activity_count += 1;
        let purchase = match &event.kind {
            EventKind::Payment(p) => Some(p.amount),
            _ => None,
        };
        self.daily.record(ts, purchase);

        let hour_share = self.hour_share(ts);
        let hour = &mut self.summary.hours[hour_of_day(ts)];
        *hour = hour.saturating_add(1);

        match &event.kind {
            EventKind::Payment(payment) => Ok(Observation::Fraud(
                self.observe_payment(ts, payment, hour_share),
            )),
            other => {
                match other {
                    EventKind::Login { .. } => {
                        self.logins.insert(now, ts, 1.0);
                    }
                    EventKind::SessionEnd { duration_s } => {
                        self.summary.last_sessions[self.summary.session_count as usize % 3] =
                            *duration_s;
                        self.summary.session_count += 1;
                    }
                    EventKind::FeatureUse { .. } => {
                        self.summary.last_core_feature_ts =
                            Some(latest(self.summary.last_core_feature_ts, ts));
                    }
                    EventKind::PageView { page } if page == "pricing" || page == "cancel" => {
                        self.pricing_cancel_views.insert(now, ts, 1.0);
                    }
                    EventKind::SupportTicket => self.support_tickets.insert(now, ts, 1.0),
                    EventKind::CartAbandon => self.cart_abandons.insert(now, ts, 1.0),
                    _ => {}
                }
                let churn = self.churn_features(now, matches!(other, EventKind::Login { .. }));
                if let EventKind::Login { .. } = other {
                    self.summary.last_login_ts = Some(latest(self.summary.last_login_ts, ts));
                }
                Ok(Observation::Churn(churn))
            }
        }
    }

    fn observe_payment(&mut self, ts: i64, p: &Payment, hour_share: f64) -> FraudVector {
        let now = self.summary.newest_ts;
        let has_history = self.summary.payment_count > 0;
        let prior_payments = self.summary.payment_count as f64;
        let log_amount = p.amount.ln_1p();

        // The payment against what came before it. Each value is hashed and looked up once.
        let (country, merchant, mcc) = (fnv1a(&p.country), fnv1a(&p.merchant), fnv1a(&p.mcc));
        let (country_seen, merchant_seen, mcc_seen) = (
            self.countries.get(country),
            self.merchants.get(merchant),
            self.mccs.get(mcc),
        );
        let new = |set: &SeenSet, seen: Option<Seen>| {
            f64::from(has_history && seen.is_none() && !set.is_full())
        };
        let (new_country, new_merchant, new_mcc) = (
            new(&self.countries, country_seen),
            new(&self.merchants, merchant_seen),
            new(&self.mccs, mcc_seen),
        );
        // Against references on the ln(1 + amount) scale.
        let over = |log_reference: Option<f64>| log_reference.map_or(0.0, |r| log_amount - r);
        let amount_over_max = over(has_history.then_some(self.summary.max_log_amount));
        let amount_over_median = over(self.summary.amounts.log_quantile(0.5));
        let amount_over_p95 = over(self.summary.amounts.log_quantile(0.95));
        let amount_zscore = if has_history {
            let spread =
                (self.summary.log_amount_m2 + ZSCORE_PRIOR) / (prior_payments - 1.0 + ZSCORE_PRIOR);
            ((log_amount - self.summary.log_amount_mean) / spread.sqrt()).clamp(-10.0, 10.0)
        } else {
            0.0
        };
        let secs_since = |seen: Option<Seen>| seen.map_or(MAX_GAP_SECS, |s| secs(ts - s.last_ts));
        let since_same_merchant = secs_since(merchant_seen);
        let since_same_mcc = secs_since(mcc_seen);
        let mcc_share = mcc_seen.map_or(0.0, |s| f64::from(s.uses) / (prior_payments + 1.0));
        let (distance_km, speed_kmh, gap_secs) = match self.summary.last_payment {
            Some((last_ts, last_place)) => {
                let gap_secs = secs(ts - last_ts);
                let distance = match (last_place, p.location) {
                    (Some(a), Some(b)) => haversine_km(a, b),
                    _ => 0.0,
                };
                let speed = (distance / (gap_secs.max(1.0) / 3_600.0)).min(MAX_SPEED_KMH);
                (distance, speed, gap_secs)
            }
            None => (0.0, 0.0, MAX_GAP_SECS),
        };
        let centroid_km = p
            .location
            .and_then(|at| self.summary.usual_place.distance_km(at))
            .unwrap_or(0.0);
        let small_before = self.recent.smaller_than(p.amount, SMALL_FACTOR) as f64;

        // Fold the payment in.
        let night = is_night(ts);
        self.payments.insert(now, ts, p.amount);
        if night {
            self.night_payments.insert(now, ts, 1.0);
        }
        self.recent.insert(RecentPayment {
            ts,
            amount: p.amount,
            merchant,
            category: mcc,
        });
        self.summary.payment_count += 1;
        let delta = log_amount - self.summary.log_amount_mean;
        self.summary.log_amount_mean += delta / self.summary.payment_count as f64;
        self.summary.log_amount_m2 += delta * (log_amount - self.summary.log_amount_mean);
        self.summary.max_log_amount = self.summary.max_log_amount.max(log_amount);
        self.summary.amounts.insert_log(log_amount);
        if self
            .summary
            .last_payment
            .is_none_or(|(last_ts, _)| ts >= last_ts)
        {
            self.summary.last_payment = Some((ts, p.location));
        }
        if let Some(at) = p.location {
            self.summary.usual_place.add(at);
        }
        self.countries.record(country, ts);
        self.merchants.record(merchant, ts);
        self.mccs.record(mcc, ts);

        // Windows, which count the payment itself.
        let count = |h: usize| self.payments.count(h);
        let log_sum = |h: usize| self.payments.sum(h).max(0.0).ln_1p();
        let history_days = days(now - self.summary.first_ts).clamp(1.0, 30.0);
        let daily_rate_30d = count(W30D) / history_days;
        let night_share =
            |h: usize, window: usize| self.night_payments.count(h) / count(window).max(1.0);
        let [(merchants_1h, mccs_1h), (merchants_24h, mccs_24h)] =
            self.recent.distinct_since(now - HOUR, now - DAY);

        [
            log_amount,
            count(W1M),
            count(W1H),
            count(W24H),
            count(W7D),
            log_sum(W1M),
            log_sum(W1H),
            log_sum(W24H),
            log_sum(W7D),
            (count(W24H) + 1.0).ln() - (daily_rate_30d + 1.0).ln(),
            amount_over_max,
            amount_over_median,
            amount_over_p95,
            amount_zscore,
            new_country,
            new_merchant,
            new_mcc,
            merchants_1h as f64,
            merchants_24h as f64,
            mccs_1h as f64,
            mccs_24h as f64,
            since_same_merchant.ln_1p(),
            since_same_mcc.ln_1p(),
            mcc_share,
            distance_km.ln_1p(),
            speed_kmh.ln_1p(),
            centroid_km.ln_1p(),
            gap_secs.ln_1p(),
            hour_share,
            night_share(1, W24H),
            night_share(0, W7D),
            small_before,
            prior_payments.min(MAX_PRIOR_PAYMENTS).ln_1p(),
        ]
    }

    /// The churn features as of `at`, at or after the customer's newest event: what they
    /// would be if the customer's next activity came at `at`, for scoring a customer who has
    /// gone quiet. Changes nothing.
    pub fn churn_at(&self, at: i64) -> ChurnVector {
        self.churn_features(at.max(self.summary.newest_ts), false)
    }

    /// The churn features at `now`, at or after the newest event; `is_login` when the event
    /// being folded in is a login (it is then the last login).
    fn churn_features(&self, now: i64, is_login: bool) -> ChurnVector {
        let summary = &self.summary;
        let days_since = |t: Option<i64>| days(now - t.unwrap_or(summary.first_ts)).min(MAX_DAYS);
        let recency =
            |t: Option<i64>| days(now - t.unwrap_or(summary.first_ts)).min(MAX_RECENCY_DAYS);
        let [d30, d60, d90, d365] = self.daily.totals(now);
        let log_mean = |count: f64, sum: f64| (sum.max(0.0) / count.max(1.0)).ln_1p();
        let days_since_activity = recency(Some(summary.newest_ts));
        // Over the customer's whole history: the span between first and newest activity per gap.
        let mean_gap_days = if summary.activity_count > 1 {
            days(summary.newest_ts - summary.first_ts) / (summary.activity_count - 1) as f64
        } else {
            days(now - summary.first_ts)
        }
        .min(MAX_RECENCY_DAYS);
        let gap_over_mean =
            (days_since_activity / mean_gap_days.max(MIN_MEAN_GAP_DAYS)).min(MAX_GAP_RATIO);

        let logins_7d = self.logins.count_at(1, now);
        let logins_30d = self.logins.count_at(0, now);
        let sessions = summary.session_count.min(3) as usize;
        let mean_session = if sessions == 0 {
            0.0
        } else {
            summary.last_sessions[..sessions].iter().sum::<f64>() / sessions as f64
        };
        let days_since_last_login = if is_login {
            0.0
        } else {
            days_since(summary.last_login_ts)
        };
        [
            days_since_activity,
            recency(summary.last_payment.map(|(ts, _)| ts)),
            d30.events.ln_1p(),
            d90.events.ln_1p(),
            d365.events.ln_1p(),
            d30.purchases.ln_1p(),
            d90.purchases.ln_1p(),
            d365.purchases.ln_1p(),
            d90.spend.max(0.0).ln_1p(),
            d365.spend.max(0.0).ln_1p(),
            log_mean(d90.purchases, d90.spend),
            log_mean(d365.purchases, d365.spend),
            mean_gap_days,
            gap_over_mean.ln_1p(),
            ((d30.events + 1.0) / ((d60.events - d30.events).max(0.0) + 1.0)).ln(),
            logins_7d,
            logins_30d,
            logins_7d / 7.0 - logins_30d / 30.0,
            mean_session.ln_1p(),
            days_since(summary.last_core_feature_ts),
            self.pricing_cancel_views.count_at(0, now),
            self.support_tickets.count_at(0, now),
            days_since_last_login,
            self.cart_abandons.count_at(0, now),
            days(now - summary.first_ts).min(MAX_TENURE_DAYS),
        ]
    }

    /// The share of the customer's past events in this hour of day and its neighbours (so a
    /// habit at 21:55 covers 22:05), smoothed towards an even day: 0.125 for a short history,
    /// near 0 for an hour the customer never uses.
    fn hour_share(&self, ts: i64) -> f64 {
        let total: u32 = self.summary.hours.iter().sum();
        let h = hour_of_day(ts);
        let near = self.summary.hours[(h + 23) % 24]
            + self.summary.hours[h]
            + self.summary.hours[(h + 1) % 24];
        (f64::from(near) + HOUR_PROFILE_PRIOR * 3.0 / 24.0)
            / (f64::from(total) + HOUR_PROFILE_PRIOR)
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

fn is_night(ts: i64) -> bool {
    let h = hour_of_day(ts);
    !(NIGHT_TO_HOUR..NIGHT_FROM_HOUR).contains(&h)
}

/// Seconds from an event-time difference, capped; a negative difference (a late event) is 0.
fn secs(ms: i64) -> f64 {
    (ms.max(0) as f64 / 1_000.0).min(MAX_GAP_SECS)
}

#[cfg(test)]
mod tests;
