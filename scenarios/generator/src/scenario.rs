//! The scenario file (TOML): who the customers are and how skewed their activity is, how much
//! traffic over how much event time and at what wall-clock rate (one rate, or phases that ramp,
//! hold and spike), which fraud and churn patterns are injected, which malformed records are
//! mixed in, the seed that makes all of it reproducible, and the targets a load test holds the
//! engine to. Unknown keys are errors that name the key and the file.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A traffic scenario for the generator source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Human name, shown in summaries and reports.
    #[serde(default)]
    pub name: String,
    /// What the scenario exercises, for reports.
    #[serde(default)]
    pub description: String,
    /// Seed for every random choice: the same file always yields the same records.
    pub seed: u64,
    /// Distinct customers.
    pub customers: u32,
    /// Zipf exponent of customer activity: the customer of rank r acts with weight 1/r^s.
    /// Unset, activity follows a capped Pareto tail (most customers quiet, a few busy).
    #[serde(default)]
    pub activity_skew: Option<f64>,
    /// Customers join evenly over this first share of the span (0 to 1), so how long each
    /// has been a customer is not the calendar. Unset, every customer is there from the start.
    #[serde(default)]
    pub signup_spread: Option<f64>,
    /// Benign events to generate (injected patterns and malformed records come on top).
    /// With `phases`, it is derived from them and must not be given.
    #[serde(default)]
    pub events: Option<u64>,
    /// Event time of the first event (RFC 3339).
    #[serde(with = "humantime_serde")]
    pub start: SystemTime,
    /// Event time the scenario covers, e.g. "60d".
    #[serde(with = "humantime_serde")]
    pub span: Duration,
    /// Records per second of wall-clock time; 0 sends as fast as the engine takes them.
    /// With `phases`, the phases set the rate and this must not be given.
    #[serde(default)]
    pub rate: Option<u64>,
    /// Wall-clock arrival-rate phases, in order; records that remain after the last phase
    /// (injected ones ride on top of the benign count) follow at its final rate.
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// Relative weights of benign event kinds.
    #[serde(default)]
    pub mix: Mix,
    /// A few customers who take a large share of all traffic.
    #[serde(default)]
    pub hot: Option<HotCustomers>,
    #[serde(default)]
    pub fraud: FraudInjection,
    #[serde(default)]
    pub churn: ChurnInjection,
    #[serde(default)]
    pub malformed: MalformedInjection,
    /// What a load test must measure for the scenario to pass.
    #[serde(default)]
    pub targets: Targets,
}

/// One stretch of wall-clock time at a steady or linearly changing arrival rate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Shown in reports, e.g. "ramp", "steady", "spike".
    #[serde(default)]
    pub name: String,
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Records per second at the start of the phase.
    pub rate: f64,
    /// Records per second at its end, for a ramp; the phase holds `rate` when unset.
    #[serde(default)]
    pub to_rate: Option<f64>,
}

impl Phase {
    pub fn end_rate(&self) -> f64 {
        self.to_rate.unwrap_or(self.rate)
    }

    /// Records the phase releases.
    pub fn records(&self) -> f64 {
        (self.rate + self.end_rate()) / 2.0 * self.duration.as_secs_f64()
    }
}

/// Relative weights of the benign event kinds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    pub payment: f64,
    pub login: f64,
    pub session_end: f64,
    pub page_view: f64,
    pub feature_use: f64,
    pub support_ticket: f64,
    pub cart_add: f64,
    pub cart_abandon: f64,
    pub subscription_change: f64,
}

impl Mix {
    /// The weights in the order of `event::KINDS`.
    pub fn weights(&self) -> [f64; 9] {
        [
            self.payment,
            self.login,
            self.session_end,
            self.page_view,
            self.feature_use,
            self.support_ticket,
            self.cart_add,
            self.cart_abandon,
            self.subscription_change,
        ]
    }
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            payment: 0.35,
            login: 0.2,
            session_end: 0.15,
            page_view: 0.12,
            feature_use: 0.1,
            support_ticket: 0.01,
            cart_add: 0.04,
            cart_abandon: 0.02,
            subscription_change: 0.01,
        }
    }
}

/// A few customers who take a large share of all traffic: one actor's mailbox under pressure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotCustomers {
    /// How many (the lowest customer ids).
    pub customers: u32,
    /// Share of benign events that go to them.
    pub share: f64,
}

/// Shares of customers hit by each injected fraud pattern.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FraudInjection {
    /// Account takeover: a login from a far, never-seen country, then large payments there.
    pub account_takeover: f64,
    /// Card testing: a burst of tiny online payments at unfamiliar merchants.
    pub card_testing: f64,
    /// Fraud rings: coordinated attacks in which many customers' stolen cards pay one
    /// merchant from one far country within half an hour.
    #[serde(default)]
    pub rings: u32,
    /// Customers per ring.
    #[serde(default = "default_ring_size")]
    pub ring_size: u32,
}

fn default_ring_size() -> u32 {
    50
}

impl Default for FraudInjection {
    fn default() -> Self {
        FraudInjection {
            account_takeover: 0.01,
            card_testing: 0.005,
            rings: 0,
            ring_size: default_ring_size(),
        }
    }
}

/// Share of customers who drift towards leaving.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnInjection {
    /// Their engagement decays while pricing and cancel views and tickets rise.
    pub cohort: f64,
    /// When set, a churner whose drift has come this far (0 to 1) leaves: from then on they
    /// send nothing at all, payments included. Unset, they only thin out.
    #[serde(default)]
    pub silent_at: Option<f64>,
}

impl Default for ChurnInjection {
    fn default() -> Self {
        ChurnInjection {
            cohort: 0.05,
            silent_at: None,
        }
    }
}

/// Malformed records mixed into the stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MalformedInjection {
    /// Malformed records per benign event.
    pub ratio: f64,
    /// The ways records are broken, chosen evenly; all of them when unset.
    #[serde(default = "MalformedKind::all")]
    pub kinds: Vec<MalformedKind>,
}

impl Default for MalformedInjection {
    fn default() -> Self {
        MalformedInjection {
            ratio: 0.0,
            kinds: MalformedKind::all(),
        }
    }
}

/// A way real producers break records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MalformedKind {
    /// Cut off half-way.
    Truncated,
    /// A schema version the engine does not know.
    UnsupportedSchema,
    /// No customer id.
    MissingCustomer,
    /// An event kind the engine does not know.
    UnknownKind,
    /// A timestamp that is not a number.
    BadTimestamp,
    /// Larger than the engine's record limit.
    Oversized,
    /// Not UTF-8.
    InvalidUtf8,
}

impl MalformedKind {
    pub fn all() -> Vec<MalformedKind> {
        use MalformedKind::*;
        vec![
            Truncated,
            UnsupportedSchema,
            MissingCustomer,
            UnknownKind,
            BadTimestamp,
            Oversized,
            InvalidUtf8,
        ]
    }
}

/// What a load test holds the engine to; every target is optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Intended send → decision published, median.
    #[serde(default, with = "humantime_serde")]
    pub p50: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub p99: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub p999: Option<Duration>,
    /// Records per second over the whole run, at least.
    #[serde(default)]
    pub min_throughput: Option<f64>,
    /// How far, at worst, the oldest unpublished record trails its intended send time.
    #[serde(default, with = "humantime_serde")]
    pub max_lag: Option<Duration>,
    /// Dead letters per record, at most.
    #[serde(default)]
    pub max_dead_letter_ratio: Option<f64>,
    /// Share of injected fraud attacks that got a freeze or an alert, at least.
    #[serde(default)]
    pub min_fraud_recall: Option<f64>,
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|cause| Error::Read {
            path: path.display().to_string(),
            cause,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario> {
        let mut scenario: Scenario = toml::from_str(text).map_err(|cause| Error::Parse {
            path: origin.to_owned(),
            cause: Box::new(cause),
        })?;
        scenario.validate(origin)?;
        if !scenario.phases.is_empty() {
            let records: f64 = scenario.phases.iter().map(Phase::records).sum();
            scenario.events = Some(records.round() as u64);
        }
        Ok(scenario)
    }

    /// Benign events to generate.
    pub fn events(&self) -> u64 {
        self.events.unwrap_or(0)
    }

    fn validate(&self, origin: &str) -> Result<()> {
        let invalid = |key, reason: &str| Error::Invalid {
            path: origin.to_owned(),
            key,
            reason: reason.to_owned(),
        };
        if self.customers == 0 {
            return Err(invalid("customers", "must be at least 1"));
        }
        if self.span.as_millis() == 0 {
            return Err(invalid("span", "must be longer than 0"));
        }
        if let Some(skew) = self.activity_skew {
            if !(skew.is_finite() && skew >= 0.0) {
                return Err(invalid("activity_skew", "must be a number of at least 0"));
            }
        }
        if self.phases.is_empty() {
            if self.events.is_none() {
                return Err(invalid("events", "is required when there are no `phases`"));
            }
        } else {
            if self.events.is_some() {
                return Err(invalid(
                    "events",
                    "is derived from `phases`; give one or the other",
                ));
            }
            if self.rate.is_some() {
                return Err(invalid("rate", "is set by `phases`; give one or the other"));
            }
            for phase in &self.phases {
                let (from, to) = (phase.rate, phase.end_rate());
                if !(from.is_finite() && to.is_finite() && from >= 0.0 && to >= 0.0)
                    || from + to <= 0.0
                {
                    return Err(invalid(
                        "phases.rate",
                        "rates must be non-negative and a phase cannot be 0 throughout",
                    ));
                }
                if phase.duration.is_zero() {
                    return Err(invalid("phases.duration", "must be longer than 0"));
                }
            }
        }
        let weights = self.mix.weights();
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || weights.iter().sum::<f64>() <= 0.0
        {
            return Err(invalid(
                "mix",
                "weights must be non-negative and not all zero",
            ));
        }
        if let Some(hot) = &self.hot {
            if hot.customers == 0 || hot.customers > self.customers {
                return Err(invalid(
                    "hot.customers",
                    "must be between 1 and `customers`",
                ));
            }
        }
        for (key, share) in [
            ("fraud.account_takeover", self.fraud.account_takeover),
            ("fraud.card_testing", self.fraud.card_testing),
            ("churn.cohort", self.churn.cohort),
            ("churn.silent_at", self.churn.silent_at.unwrap_or(1.0)),
            ("signup_spread", self.signup_spread.unwrap_or(0.0)),
            ("malformed.ratio", self.malformed.ratio),
            ("hot.share", self.hot.as_ref().map_or(0.0, |h| h.share)),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(invalid(key, "must be between 0 and 1"));
            }
        }
        if u64::from(self.fraud.rings) * u64::from(self.fraud.ring_size) > u64::from(self.customers)
        {
            return Err(invalid(
                "fraud.rings",
                "rings × ring_size cannot exceed `customers`",
            ));
        }
        if self.malformed.kinds.is_empty() && self.malformed.ratio > 0.0 {
            return Err(invalid("malformed.kinds", "must name at least one kind"));
        }
        for (key, share) in [
            (
                "targets.max_dead_letter_ratio",
                self.targets.max_dead_letter_ratio,
            ),
            ("targets.min_fraud_recall", self.targets.min_fraud_recall),
        ] {
            if share.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
                return Err(invalid(key, "must be between 0 and 1"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        seed = 7
        customers = 10
        events = 100
        start = "2026-11-01T00:00:00Z"
        span = "1d"
    "#;

    const PHASED: &str = r#"
        seed = 7
        customers = 10
        start = "2026-11-01T00:00:00Z"
        span = "1d"
        [[phases]]
        duration = "10s"
        rate = 0
        to_rate = 1000
        [[phases]]
        duration = "5s"
        rate = 1000
    "#;

    #[test]
    fn minimal_scenario_takes_defaults() {
        let s = Scenario::parse(MINIMAL, "minimal.toml").unwrap();
        assert_eq!((s.customers, s.events(), s.rate), (10, 100, None));
        assert_eq!(s.span, Duration::from_secs(86_400));
        assert_eq!(s.fraud.account_takeover, 0.01);
        assert_eq!(s.malformed.kinds.len(), 7);
        assert!(s.targets.p99.is_none());
    }

    #[test]
    fn phases_set_the_event_count() {
        let s = Scenario::parse(PHASED, "phased.toml").unwrap();
        // A ramp from 0 to 1000/s over 10 s, then 1000/s for 5 s.
        assert_eq!(s.events(), 5_000 + 5_000);
    }

    #[test]
    fn phases_exclude_a_fixed_rate_or_event_count() {
        let err = Scenario::parse(&PHASED.replace("span", "rate = 5\nspan"), "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("p.toml") && err.contains("`rate`"), "{err}");
        let err = Scenario::parse(&MINIMAL.replace("events = 100", ""), "m.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`events` is required"), "{err}");
    }

    #[test]
    fn targets_parse_durations_and_shares() {
        let s = Scenario::parse(
            &format!("{MINIMAL}\n[targets]\np99 = \"20ms\"\nmin_fraud_recall = 0.5"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(s.targets.p99, Some(Duration::from_millis(20)));
        assert_eq!(s.targets.min_fraud_recall, Some(0.5));
        let err = Scenario::parse(&format!("{MINIMAL}\n[targets]\np95 = \"1ms\""), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("p95"), "{err}");
    }

    #[test]
    fn a_typo_is_an_error_naming_the_key_and_the_file() {
        let err = Scenario::parse(&format!("{MINIMAL}\ncustomer = 5"), "typo.toml").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("typo.toml") && text.contains("customer"),
            "{text}"
        );
    }

    #[test]
    fn out_of_range_shares_name_their_key() {
        let err = Scenario::parse(&format!("{MINIMAL}\n[churn]\ncohort = 1.5"), "s.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`churn.cohort` must be between 0 and 1"),
            "{err}"
        );
        let err = Scenario::parse(
            &format!("{MINIMAL}\n[fraud]\naccount_takeover = 0\ncard_testing = 0\nrings = 3\nring_size = 4"),
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`fraud.rings`"), "{err}");
    }

    #[test]
    fn malformed_kinds_are_named_in_snake_case() {
        let s = Scenario::parse(
            &format!(
                "{MINIMAL}\n[malformed]\nratio = 0.1\nkinds = [\"truncated\", \"invalid_utf8\"]"
            ),
            "m.toml",
        )
        .unwrap();
        assert_eq!(
            s.malformed.kinds,
            [MalformedKind::Truncated, MalformedKind::InvalidUtf8]
        );
    }
}
