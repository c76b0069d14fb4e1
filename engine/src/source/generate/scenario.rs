//! The scenario file (TOML): who the customers are, how much traffic over how much event
//! time, which fraud and churn patterns are injected, how much malformed input is mixed in,
//! and the seed that makes all of it reproducible. Unknown keys are errors.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

/// A traffic scenario for the generator source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Human name, shown in summaries.
    #[serde(default)]
    pub name: String,
    /// Seed for every random choice: the same file always yields the same records.
    pub seed: u64,
    /// Distinct customers.
    pub customers: u32,
    /// Benign events to generate (injected patterns and malformed records come on top).
    pub events: u64,
    /// Event time of the first event (RFC 3339).
    #[serde(with = "humantime_serde")]
    pub start: SystemTime,
    /// Event time the scenario covers, e.g. "60d".
    #[serde(with = "humantime_serde")]
    pub span: Duration,
    /// Records per second of wall-clock time; 0 sends as fast as the engine takes them.
    #[serde(default)]
    pub rate: u64,
    /// Relative weights of benign event kinds.
    #[serde(default)]
    pub mix: Mix,
    #[serde(default)]
    pub fraud: FraudInjection,
    #[serde(default)]
    pub churn: ChurnInjection,
    #[serde(default)]
    pub malformed: MalformedInjection,
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

/// Shares of customers hit by each injected fraud pattern.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FraudInjection {
    /// Account takeover: a login from a far, never-seen country, then large payments there.
    pub account_takeover: f64,
    /// Card testing: a burst of tiny online payments at unfamiliar merchants.
    pub card_testing: f64,
}

impl Default for FraudInjection {
    fn default() -> Self {
        FraudInjection {
            account_takeover: 0.01,
            card_testing: 0.005,
        }
    }
}

/// Share of customers who drift towards leaving.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnInjection {
    /// Their engagement decays while pricing and cancel views and tickets rise.
    pub cohort: f64,
}

impl Default for ChurnInjection {
    fn default() -> Self {
        ChurnInjection { cohort: 0.05 }
    }
}

/// Malformed records mixed into the stream.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MalformedInjection {
    /// Malformed records per benign event.
    pub ratio: f64,
}

/// A scenario file that could not be used, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid scenario {path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("invalid scenario {path}: `{key}` {reason}")]
    Invalid {
        path: String,
        key: &'static str,
        reason: String,
    },
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|source| ScenarioError::Parse {
            path: origin.to_owned(),
            source: Box::new(source),
        })?;
        scenario.validate(origin)?;
        Ok(scenario)
    }

    fn validate(&self, origin: &str) -> Result<(), ScenarioError> {
        let invalid = |key, reason: &str| ScenarioError::Invalid {
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
        let weights = self.mix.weights();
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || weights.iter().sum::<f64>() <= 0.0
        {
            return Err(invalid(
                "mix",
                "weights must be non-negative and not all zero",
            ));
        }
        for (key, share) in [
            ("fraud.account_takeover", self.fraud.account_takeover),
            ("fraud.card_testing", self.fraud.card_testing),
            ("churn.cohort", self.churn.cohort),
            ("malformed.ratio", self.malformed.ratio),
        ] {
            if !(0.0..=1.0).contains(&share) {
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

    #[test]
    fn minimal_scenario_takes_defaults() {
        let s = Scenario::parse(MINIMAL, "minimal.toml").unwrap();
        assert_eq!((s.customers, s.events, s.rate), (10, 100, 0));
        assert_eq!(s.span, Duration::from_secs(86_400));
        assert_eq!(s.fraud.account_takeover, 0.01);
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
    }
}
