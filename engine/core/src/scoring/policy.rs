//! The decision policy: thresholds on the fraud and churn scores, the outreach cooldown and
//! the hard rules, compiled from configuration once so that applying them per event is a few
//! comparisons. A fraud threshold given as an alert budget is the scoring model's own: each
//! model (champion or challenger) acts at the threshold it recorded for that budget.

use std::sync::Arc;

use super::features::{fraud_feature_index, FraudVector, FRAUD_FEATURES};
use vigil_models::{Model, Threshold};

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
    freeze: Threshold,
    alert: Threshold,
    outreach: f64,
    cooldown_ms: i64,
    /// Inactivity checks, ms after the newest activity, increasing.
    inactivity_checks_ms: Vec<i64>,
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
            inactivity_checks_ms: policy
                .churn
                .inactivity_checks()
                .iter()
                .map(|d| d.as_millis() as i64)
                .collect(),
            rules,
        })
    }

    /// The fraud action: the score's threshold action (when a model scored) raised to the
    /// strongest hard rule that fired.
    pub fn fraud(&self, scored: Option<(&Model, f64)>, features: &FraudVector) -> FraudVerdict {
        let mut action = scored.and_then(|(model, p)| {
            // Loading refuses a model without the budgets the policy names (`required`), so
            // the fallback, never acting, is not reached.
            let at = |t: &Threshold| t.resolve(model.artifact()).unwrap_or(f64::INFINITY);
            if p >= at(&self.freeze) {
                Some(DecisionKind::Freeze)
            } else if p >= at(&self.alert) {
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

    /// How long after a customer's newest activity each inactivity check comes, in ms.
    pub fn inactivity_checks_ms(&self) -> &[i64] {
        &self.inactivity_checks_ms
    }

    /// Whether a churn score is high enough for outreach, cooldown aside.
    pub fn wants_outreach(&self, score: f64) -> bool {
        score >= self.outreach
    }

    /// Whether a churn score earns outreach at event time `ts`, given the last outreach.
    pub fn outreach(&self, score: f64, ts: i64, last_outreach: Option<i64>) -> bool {
        score >= self.outreach && last_outreach.is_none_or(|last| ts - last >= self.cooldown_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::shipped_artifact;
    use vigil_models::{AlertBudgetPoint, ModelArtifact, ModelKind};

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
        let (p, m) = (policy(), model(&[]));
        let none = features(&[]);
        assert_eq!(
            p.fraud(Some((&m, 0.99)), &none).action,
            Some(DecisionKind::Freeze)
        );
        assert_eq!(
            p.fraud(Some((&m, 0.95)), &none).action,
            Some(DecisionKind::Alert)
        );
        assert_eq!(p.fraud(Some((&m, 0.2)), &none).action, None);
        assert_eq!(p.fraud(None, &none).action, None);
    }

    #[test]
    fn new_country_over_max_is_at_least_an_alert_even_with_a_low_score() {
        let (p, m) = (policy(), model(&[]));
        let ato = features(&[("new_country", 1.0), ("amount_over_max", 0.7)]);
        let v = p.fraud(Some((&m, 0.01)), &ato);
        assert_eq!(v.action, Some(DecisionKind::Alert));
        assert_eq!(v.fired, vec![Arc::<str>::from("new-country-over-max")]);
        // A rule never lowers what the score asked for.
        assert_eq!(
            p.fraud(Some((&m, 0.995)), &ato).action,
            Some(DecisionKind::Freeze)
        );
        // Exactly at the margin is not over it.
        let at_margin = features(&[("new_country", 1.0), ("amount_over_max", 0.4)]);
        assert_eq!(p.fraud(Some((&m, 0.01)), &at_margin).action, None);
    }

    /// The shipped fraud model, recording the given (alert rate, threshold) budgets.
    fn model(budgets: &[(f64, f64)]) -> Model {
        let text = std::fs::read_to_string(shipped_artifact("fraud.json")).unwrap();
        let mut artifact = ModelArtifact::from_json(&text, "shipped").unwrap();
        artifact.alert_budgets = budgets
            .iter()
            .map(|&(rate, threshold)| AlertBudgetPoint {
                max_alert_rate: rate,
                threshold: Some(threshold),
                recall: 0.5,
                precision: 0.5,
                alert_rate: rate,
            })
            .collect();
        artifact
            .into_model(ModelKind::Fraud, &FRAUD_FEATURES)
            .unwrap()
    }

    #[test]
    fn budget_thresholds_are_each_models_own() {
        let config = Config::parse_layered(
            "[policy.fraud]\nfreeze = { at_alert_rate = 0.0005 }\nalert = { at_alert_rate = 0.005 }\n",
            "budgets.toml",
        )
        .unwrap();
        let p = Policy::new(&config).unwrap();
        let none = features(&[]);
        let strict = model(&[(0.0005, 0.9), (0.005, 0.6)]);
        let lenient = model(&[(0.0005, 0.5), (0.005, 0.2)]);
        let act = |m: &Model, score| p.fraud(Some((m, score)), &none).action;
        assert_eq!(act(&strict, 0.7), Some(DecisionKind::Alert));
        assert_eq!(act(&lenient, 0.7), Some(DecisionKind::Freeze));
        assert_eq!(act(&strict, 0.3), None);
        assert_eq!(act(&lenient, 0.3), Some(DecisionKind::Alert));
        // A model that records neither budget never acts on its score.
        assert_eq!(act(&model(&[]), 0.999), None);
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
