//! Configuration: the TOML file `vigil run --config FILE` reads, layered over the built-in
//! defaults in `engine/config/vigil.toml`. Every table denies unknown keys, and every error
//! names the file and the key, so a typo never becomes a silent default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::decision::DecisionKind;

/// The built-in configuration, also the documentation of every key.
pub const DEFAULT_CONFIG: &str = include_str!("../config/vigil.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub models: ModelsConfig,
    pub policy: PolicyConfig,
    #[serde(default)]
    pub fluvio: FluvioConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// How the engine talks to a Fluvio cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FluvioConfig {
    pub endpoint: Option<String>,
    pub consumer: String,
    pub batch_size: usize,
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
}

impl Default for FluvioConfig {
    fn default() -> Self {
        FluvioConfig {
            endpoint: None,
            consumer: "vigil".into(),
            batch_size: 64 * 1024,
            linger: Duration::from_millis(5),
            commit_interval: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    pub max_record_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub late_tolerance: Duration,
    pub max_in_flight: usize,
    pub latency_budget: LatencyBudget,
    pub passivation: PassivationConfig,
    /// After SIGINT or SIGTERM, how long draining may take before the run gives up.
    #[serde(with = "humantime_serde")]
    pub shutdown_deadline: Duration,
    /// With a state directory, how often customer state and source offsets are checkpointed.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
}

/// Ingest-to-decision budgets per decision kind: an event that has already waited longer gets
/// a rules-only decision marked `degraded`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyBudget {
    /// Payments, which may be frozen or alerted on.
    #[serde(with = "humantime_serde")]
    pub fraud: Duration,
    /// Engagement events, which may get outreach.
    #[serde(with = "humantime_serde")]
    pub churn: Duration,
}

impl LatencyBudget {
    /// The same budget for every decision kind.
    pub fn uniform(budget: Duration) -> Self {
        LatencyBudget {
            fraud: budget,
            churn: budget,
        }
    }
}

impl Default for LatencyBudget {
    fn default() -> Self {
        LatencyBudget {
            fraud: Duration::from_millis(250),
            churn: Duration::from_secs(2),
        }
    }
}

/// When customer actors are stopped with their state kept in the state store.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassivationConfig {
    /// An actor that has had no event for this long (wall-clock time) is passivated.
    #[serde(with = "humantime_serde")]
    pub idle: Duration,
    /// Beyond this many live actors, the least recently used are passivated.
    pub max_active: usize,
}

impl Default for PassivationConfig {
    fn default() -> Self {
        PassivationConfig {
            idle: Duration::from_secs(600),
            max_active: 100_000,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_record_bytes: 64 * 1024,
            late_tolerance: Duration::from_secs(300),
            max_in_flight: 4_096,
            latency_budget: LatencyBudget::default(),
            passivation: PassivationConfig::default(),
            shutdown_deadline: Duration::from_secs(30),
            checkpoint_interval: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    pub fraud: Option<PathBuf>,
    pub churn: Option<PathBuf>,
    /// Challengers: scored beside the champion on every event, acted on never.
    pub fraud_challenger: Option<PathBuf>,
    pub churn_challenger: Option<PathBuf>,
    /// How often the artifact files are checked for a new version; zero turns hot swap off.
    #[serde(with = "humantime_serde")]
    pub watch_interval: Duration,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            fraud: None,
            churn: None,
            fraud_challenger: None,
            churn_challenger: None,
            watch_interval: Duration::from_secs(1),
        }
    }
}

/// The repository's shipped artifacts, used when the configuration names none.
pub fn shipped_artifact(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/artifacts")
        .join(name)
}

impl ModelsConfig {
    pub fn fraud_path(&self) -> PathBuf {
        self.fraud
            .clone()
            .unwrap_or_else(|| shipped_artifact("fraud.json"))
    }

    pub fn churn_path(&self) -> PathBuf {
        self.churn
            .clone()
            .unwrap_or_else(|| shipped_artifact("churn.json"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub fraud: FraudThresholds,
    pub churn: ChurnPolicy,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FraudThresholds {
    pub freeze: f64,
    pub alert: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnPolicy {
    pub outreach: f64,
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
}

/// A hard rule over a payment's fraud features.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub at_least: DecisionKind,
    pub when: Vec<ConditionConfig>,
}

/// `feature > above` and/or `feature < below`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionConfig {
    pub feature: String,
    pub above: Option<f64>,
    pub below: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration {origin}: {source}")]
    Parse {
        origin: String,
        source: Box<toml::de::Error>,
    },
    #[error("invalid configuration {origin}: `{key}` {reason}")]
    Invalid {
        origin: String,
        key: String,
        reason: String,
    },
}

impl Config {
    /// The built-in configuration.
    pub fn builtin() -> Config {
        Self::parse(DEFAULT_CONFIG, "built-in configuration").expect("built-in config is valid")
    }

    /// Reads `path` layered over the built-in configuration: a table or key the file sets
    /// replaces the built-in one.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse_layered(&text, &path.display().to_string())
    }

    /// Parses configuration text layered over the built-in configuration.
    pub fn parse_layered(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let parse_error = |source| ConfigError::Parse {
            origin: origin.to_owned(),
            source: Box::new(source),
        };
        let mut merged: toml::Table = toml::from_str(DEFAULT_CONFIG).expect("built-in config");
        let overlay: toml::Table = toml::from_str(text).map_err(parse_error)?;
        merge(&mut merged, overlay);
        let config: Config = merged.try_into().map_err(parse_error)?;
        config.validate(origin)?;
        Ok(config)
    }

    fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            origin: origin.to_owned(),
            source: Box::new(source),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            key: key.to_owned(),
            reason,
        };
        let probability = |key: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(invalid(
                    key,
                    format!("is {v}, not a probability between 0 and 1"),
                ))
            }
        };
        probability("policy.fraud.freeze", self.policy.fraud.freeze)?;
        probability("policy.fraud.alert", self.policy.fraud.alert)?;
        probability("policy.churn.outreach", self.policy.churn.outreach)?;
        if self.policy.fraud.alert > self.policy.fraud.freeze {
            return Err(invalid(
                "policy.fraud.alert",
                format!(
                    "({}) is above policy.fraud.freeze ({}); alert must be the lower threshold",
                    self.policy.fraud.alert, self.policy.fraud.freeze
                ),
            ));
        }
        if self.engine.passivation.max_active == 0 {
            return Err(invalid(
                "engine.passivation.max_active",
                "must be at least 1".to_owned(),
            ));
        }
        if self.engine.max_in_flight < crate::source::MAX_BATCH {
            return Err(invalid(
                "engine.max_in_flight",
                format!(
                    "is {}, below the largest source batch ({})",
                    self.engine.max_in_flight,
                    crate::source::MAX_BATCH
                ),
            ));
        }
        for (i, rule) in self.policy.rules.iter().enumerate() {
            let key = format!("policy.rules[{i}] ({})", rule.name);
            if rule.when.is_empty() {
                return Err(invalid(&key, "has no conditions in `when`".into()));
            }
            if rule.at_least == DecisionKind::Outreach {
                return Err(invalid(&key, "`at_least` must be alert or freeze".into()));
            }
            for c in &rule.when {
                if crate::features::fraud_feature_index(&c.feature).is_none() {
                    return Err(invalid(
                        &format!("{key}.when.feature"),
                        format!(
                            "`{}` is not a fraud feature; known: {}",
                            c.feature,
                            crate::features::FRAUD_FEATURES.join(", ")
                        ),
                    ));
                }
                if c.above.is_none() && c.below.is_none() {
                    return Err(invalid(
                        &format!("{key}.when"),
                        format!("condition on `{}` needs `above` or `below`", c.feature),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Overlays `top` on `base`: tables merge key by key, anything else is replaced.
fn merge(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_configuration_is_valid_and_documented_values_hold() {
        let c = Config::builtin();
        assert_eq!(c.engine.max_record_bytes, 65_536);
        assert_eq!(c.policy.churn.cooldown, Duration::from_secs(7 * 86_400));
        assert_eq!(c.metrics.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.policy.rules[0].name, "new-country-over-max");
    }

    #[test]
    fn a_file_overrides_only_what_it_sets() {
        let c = Config::parse_layered("[policy.fraud]\nfreeze = 0.99\nalert = 0.5\n", "f.toml")
            .unwrap();
        assert_eq!((c.policy.fraud.freeze, c.policy.fraud.alert), (0.99, 0.5));
        assert_eq!(
            c.policy.churn.outreach,
            Config::builtin().policy.churn.outreach
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_file() {
        let err = Config::parse_layered("[engine]\nmax_recod_bytes = 5\n", "vigil.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("vigil.toml") && err.contains("max_recod_bytes"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Config::parse_layered("[policy.churn]\noutreach = 3\n", "v.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`policy.churn.outreach` is 3"), "{err}");
        let rule = "[[policy.rules]]\nname = \"x\"\nat_least = \"alert\"\nwhen = [{ feature = \"nope\", above = 1.0 }]\n";
        let err = Config::parse_layered(rule, "v.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`nope` is not a fraud feature"), "{err}");
    }
}
