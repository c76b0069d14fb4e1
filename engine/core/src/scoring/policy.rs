//! The decision policy: thresholds on the fraud and churn scores, the outreach cooldown and
//! the hard rules, compiled from configuration once so that applying them per event is a few
//! comparisons.

use std::sync::Arc;

use super::features::{fraud_feature_index, FraudVector, FRAUD_FEATURES};
use crate::config::Config;
use crate::decision::DecisionKind;
use crate::error::Result;

#[derive(Debug, Clone)]
struct Condition {
    feature: usize,
    above: Option<f64>,
    below: Option<f64>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: Arc<str>,
    at_least: DecisionKind,
    when: Vec<Condition>,
}

/// The fraud action for one payment and the rules behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct FraudVerdict {
    pub action: Option<DecisionKind>,
    pub fired: Vec<Arc<str>>,
}

#[derive(Debug, Clone)]
pub struct Policy {
    freeze: f64,
    alert: f64,
    outreach: f64,
    cooldown_ms: i64,
    rules: Vec<Rule>,
}

impl Policy {
    /// Compiles the configuration's policy; a rule on a feature the engine does not compute
    /// is a configuration error naming the rule and the layer it came from.
    pub fn new(config: &Config) -> Result<Policy> {
        let policy = &config.policy;
        let mut rules = Vec::with_capacity(policy.rules.len());
        for (i, rule) in policy.rules.iter().enumerate() {
            let mut when = Vec::with_capacity(rule.when.len());
            for c in &rule.when {
                let feature = fraud_feature_index(&c.feature).ok_or_else(|| {
                    let key = format!("policy.rules[{i}] ({}).when.feature", rule.name);
                    let reason = format!(
                        "`{}` is not a fraud feature; known: {}",
                        c.feature,
                        FRAUD_FEATURES.join(", ")
                    );
                    config.invalid(&key, reason)
                })?;
                when.push(Condition {
                    feature,
                    above: c.above,
                    below: c.below,
                });
            }
            rules.push(Rule {
                name: rule.name.as_str().into(),
                at_least: rule.at_least,
                when,
            });
        }
        Ok(Policy {
            freeze: policy.fraud.freeze,
            alert: policy.fraud.alert,
            outreach: policy.churn.outreach,
            cooldown_ms: policy.churn.cooldown.as_millis() as i64,
            rules,
        })
    }

    /// The fraud action: the score's threshold action (when there is a score) raised to the
    /// strongest hard rule that fired.
    pub fn fraud(&self, score: Option<f64>, features: &FraudVector) -> FraudVerdict {
        let mut action = score.and_then(|p| {
            if p >= self.freeze {
                Some(DecisionKind::Freeze)
            } else if p >= self.alert {
                Some(DecisionKind::Alert)
            } else {
                None
            }
        });
        let mut fired = Vec::new();
        for rule in &self.rules {
            let holds = rule.when.iter().all(|c| {
                let v = features[c.feature];
                c.above.is_none_or(|a| v > a) && c.below.is_none_or(|b| v < b)
            });
            if holds {
                fired.push(rule.name.clone());
                action = action.max(Some(rule.at_least));
            }
        }
        FraudVerdict { action, fired }
    }

    /// Whether a churn score earns outreach at event time `ts`, given the last outreach.
    pub fn outreach(&self, score: f64, ts: i64, last_outreach: Option<i64>) -> bool {
        score >= self.outreach && last_outreach.is_none_or(|last| ts - last >= self.cooldown_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(set: &[(&str, f64)]) -> FraudVector {
        let mut v = [0.0; FRAUD_FEATURES.len()];
        for (name, value) in set {
            v[fraud_feature_index(name).unwrap()] = *value;
        }
        v
    }

    /// A policy with the thresholds these tests reason about, whatever the shipped defaults.
    fn policy() -> Policy {
        let config = Config::parse_layered(
            r#"
            [policy.fraud]
            freeze = 0.99
            alert = 0.9
            [policy.churn]
            outreach = 0.8
            cooldown = "7d"
            [[policy.rules]]
            name = "new-country-over-max"
            at_least = "alert"
            when = [{ feature = "new_country", above = 0.5 }, { feature = "amount_over_max", above = 0.4 }]
            "#,
            "test policy",
        )
        .unwrap();
        Policy::new(&config).unwrap()
    }

    #[test]
    fn a_rule_on_an_unknown_feature_names_the_rule_and_its_layer() {
        let rule = "[[policy.rules]]\nname = \"x\"\nat_least = \"alert\"\nwhen = [{ feature = \"nope\", above = 1.0 }]\n";
        let config = Config::parse_layered(rule, "rules.toml").unwrap();
        let err = Policy::new(&config).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Configuration);
        let err = err.to_string();
        assert!(
            err.contains("rules.toml")
                && err.contains("`policy.rules[0] (x).when.feature`")
                && err.contains("`nope` is not a fraud feature"),
            "{err}"
        );
    }

    #[test]
    fn thresholds_map_scores_to_actions() {
        let p = policy();
        let none = features(&[]);
        assert_eq!(
            p.fraud(Some(0.99), &none).action,
            Some(DecisionKind::Freeze)
        );
        assert_eq!(p.fraud(Some(0.95), &none).action, Some(DecisionKind::Alert));
        assert_eq!(p.fraud(Some(0.2), &none).action, None);
        assert_eq!(p.fraud(None, &none).action, None);
    }

    #[test]
    fn new_country_over_max_is_at_least_an_alert_even_with_a_low_score() {
        let p = policy();
        let ato = features(&[("new_country", 1.0), ("amount_over_max", 0.7)]);
        let v = p.fraud(Some(0.01), &ato);
        assert_eq!(v.action, Some(DecisionKind::Alert));
        assert_eq!(v.fired, vec![Arc::<str>::from("new-country-over-max")]);
        // A rule never lowers what the score asked for.
        assert_eq!(
            p.fraud(Some(0.995), &ato).action,
            Some(DecisionKind::Freeze)
        );
        // Exactly at the margin is not over it.
        let at_margin = features(&[("new_country", 1.0), ("amount_over_max", 0.4)]);
        assert_eq!(p.fraud(Some(0.01), &at_margin).action, None);
    }

    #[test]
    fn outreach_respects_the_cooldown_to_the_millisecond() {
        let p = policy();
        let week = 7 * 86_400_000;
        assert!(p.outreach(0.85, 1_000, None));
        assert!(!p.outreach(0.5, 1_000, None));
        assert!(!p.outreach(0.85, 1_000 + week - 1, Some(1_000)));
        assert!(p.outreach(0.85, 1_000 + week, Some(1_000)));
    }
}
