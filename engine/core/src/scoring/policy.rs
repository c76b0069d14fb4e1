//! The decision policy: thresholds on the fraud and churn scores, the outreach cooldown and
//! the hard rules, compiled from configuration once so that applying them per event is a few
//! comparisons. A fraud threshold given as an alert budget is the scoring model's own: each
//! model (champion or challenger) acts at the threshold it recorded for that budget.
//!
//! Lists (`lists`) are checked against the payment: a rule may test membership, a block list
//! forces a freeze and an allow list caps the action at an alert, each named in the decision.
//!
//! With customer profiles, the policy also reads what the business knows: rules may test the
//! profile features (`home_country_mismatch`, `account_age_days`), a tier may turn low-score
//! freezes into alerts, and outreach needs consent and a reachable channel. The profile is
//! asked for (`ProfileLookup`) only when one of these needs it.

use std::cell::OnceCell;
use std::sync::Arc;

use super::features::{fraud_feature_index, FraudVector, RecentPayments, Velocity, FRAUD_FEATURES};
use super::lists::{List, ListAction, ListedFields};
use vigil_models::{Model, Threshold};

use crate::config::{Config, PolicyConfig};
use crate::decision::{DecisionKind, Suppressed};
use crate::error::{Error, Result};
use crate::profile::{Channel, Profile, ProfileBook};

/// Features of a payment against the customer's profile, for rules: 1 when the payment's
/// country is not the profile's home country (0 when it is), and the account's age in days at
/// the payment. Without a profile, or without the field, they are not numbers, and a condition
/// on them does not hold.
pub const PROFILE_FEATURES: [&str; 2] = ["home_country_mismatch", "account_age_days"];

const DAY_MS: f64 = 86_400_000.0;

/// What a rule condition reads.
#[derive(Debug, Clone, Copy)]
enum Input {
    Fraud(usize),
    Profile(usize),
    /// Membership in `Policy::lists[i]`.
    List(usize),
    /// A velocity over the customer's payments in the last `window_ms`.
    Velocity {
        measure: Velocity,
        window_ms: i64,
        amount_over: Option<f64>,
    },
}

#[derive(Debug, Clone)]
struct Condition {
    input: Input,
    above: Option<f64>,
    below: Option<f64>,
}

/// A customer's profile, looked up at most once per event and only when asked for.
pub struct ProfileLookup<'a> {
    book: Option<&'a ProfileBook>,
    customer_id: &'a str,
    profile: OnceCell<Option<Arc<Profile>>>,
}

impl<'a> ProfileLookup<'a> {
    /// `customer_id`'s profile from `book`; with no book (profiles not in use), none.
    pub fn new(book: Option<&'a ProfileBook>, customer_id: &'a str) -> Self {
        ProfileLookup {
            book,
            customer_id,
            profile: OnceCell::new(),
        }
    }

    /// The profile, or the defaults for a customer without one; none without profiles.
    pub fn get(&self) -> Option<&Profile> {
        self.profile
            .get_or_init(|| self.book.map(|book| book.get(self.customer_id)))
            .as_deref()
    }
}

/// The payment a fraud verdict is for, as the profile features, the lists and the velocity
/// rules read it.
#[derive(Debug, Clone, Copy)]
pub struct PaymentFacts<'a> {
    pub fields: ListedFields<'a>,
    pub ts: i64,
    /// The customer's last day of payments, this one included.
    pub recent: Option<&'a RecentPayments>,
}

/// Where outreach goes, or why it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Contact the customer, on this channel when profiles are in use.
    Contact(Option<Channel>),
    Suppressed(Suppressed),
}

#[derive(Debug, Clone)]
struct Rule {
    name: Arc<str>,
    at_least: DecisionKind,
    when: Vec<Condition>,
}

/// The action a policy takes on one event and the rules behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyVerdict {
    pub action: Option<DecisionKind>,
    pub fired: Vec<Arc<str>>,
}

#[derive(Debug, Clone)]
pub struct Policy {
    /// `name@version`, as decisions cite it.
    label: Arc<str>,
    freeze: Threshold,
    alert: Threshold,
    outreach: f64,
    cooldown_ms: i64,
    /// Inactivity checks, ms after the newest activity, increasing.
    inactivity_checks_ms: Vec<i64>,
    rules: Vec<Rule>,
    /// Whether some rule reads a profile feature.
    reads_profiles: bool,
    /// Per tier: the score below which a freeze is an alert, and the rule name that says so.
    tiers: Vec<(String, f64, Arc<str>)>,
    /// Outreach channels in order of preference after the customer's own.
    channels: Vec<Channel>,
    /// The named lists, by name.
    lists: Vec<Arc<List>>,
}

impl Policy {
    /// Compiles the configuration's policy; a rule on a feature the engine does not compute
    /// is a configuration error naming the rule and the layer it came from.
    pub fn new(config: &Config) -> Result<Policy> {
        let lists = load_lists(config)?;
        Policy::compile(&config.policy, lists, "policy.", &|key: &str, reason| {
            config.invalid(key, reason)
        })
    }

    /// Compiles `policy` (validated) over the engine's `lists`; a rule on a feature the engine
    /// does not compute is an error naming the rule as `prefix` and its path.
    pub fn compile(
        policy: &PolicyConfig,
        lists: Vec<Arc<List>>,
        prefix: &str,
        invalid: &dyn Fn(&str, String) -> Error,
    ) -> Result<Policy> {
        let mut rules = Vec::with_capacity(policy.rules.len());
        for (i, rule) in policy.rules.iter().enumerate() {
            let mut when = Vec::with_capacity(rule.when.len());
            for c in &rule.when {
                let input = match (&c.feature, &c.in_list) {
                    (None, None) => Input::Velocity {
                        measure: c
                            .velocity
                            .expect("configuration checks every condition reads something"),
                        window_ms: c.window.unwrap_or_default().as_millis() as i64,
                        amount_over: c.amount_over,
                    },
                    (_, Some(list)) => Input::List(
                        lists
                            .iter()
                            .position(|l| &*l.name == list)
                            .expect("configuration checks that rules name known lists"),
                    ),
                    (Some(feature), None) => {
                        let profile = PROFILE_FEATURES.iter().position(|f| f == feature);
                        match (fraud_feature_index(feature), profile) {
                            (Some(i), _) => Input::Fraud(i),
                            (None, Some(i)) => Input::Profile(i),
                            (None, None) => {
                                let key =
                                    format!("{prefix}rules[{i}] ({}).when.feature", rule.name);
                                let reason = format!(
                                    "`{feature}` is not a fraud feature; known: {}, and from profiles {}",
                                    FRAUD_FEATURES.join(", "),
                                    PROFILE_FEATURES.join(", ")
                                );
                                return Err(invalid(&key, reason));
                            }
                        }
                    }
                };
                when.push(Condition {
                    input,
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
            label: format!("{}@{}", policy.name, policy.version).into(),
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
            reads_profiles: rules
                .iter()
                .flat_map(|r| &r.when)
                .any(|c| matches!(c.input, Input::Profile(_))),
            rules,
            tiers: policy
                .tiers
                .iter()
                .map(|(tier, t)| {
                    (
                        tier.clone(),
                        t.freeze_at_least,
                        format!("tier:{tier}").into(),
                    )
                })
                .collect(),
            channels: policy.churn.channels.clone(),
            lists,
        })
    }

    /// The fraud action: the score's threshold action (when a model scored) raised to the
    /// strongest hard rule that fired; then, for a customer whose tier asks for it, a freeze
    /// on a score below the tier's floor lowered to an alert; then capped at an alert by an
    /// allow list and forced to a freeze by a block list, which wins over everything.
    pub fn fraud(
        &self,
        scored: Option<(&Model, f64)>,
        features: &FraudVector,
        payment: PaymentFacts,
        profile: &ProfileLookup,
    ) -> PolicyVerdict {
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
        let profiled = OnceCell::new();
        let profile_features =
            || *profiled.get_or_init(|| profile_features(profile.get(), payment));
        let mut fired = Vec::new();
        for rule in &self.rules {
            let holds = rule.when.iter().all(|c| {
                let v = match c.input {
                    Input::Fraud(i) => features[i],
                    Input::Profile(i) => profile_features()[i],
                    Input::List(i) => return self.lists[i].holds(&payment.fields),
                    Input::Velocity {
                        measure,
                        window_ms,
                        amount_over,
                    } => payment.recent.map_or(f64::NAN, |recent| {
                        recent.velocity(payment.ts - window_ms, amount_over, measure)
                    }),
                };
                c.above.is_none_or(|a| v > a) && c.below.is_none_or(|b| v < b)
            });
            if holds {
                fired.push(rule.name.clone());
                action = action.max(Some(rule.at_least));
            }
        }
        if action == Some(DecisionKind::Freeze) && !self.tiers.is_empty() {
            let tier = profile.get().and_then(|p| p.tier.as_deref());
            if let Some((_, floor, name)) = self.tiers.iter().find(|t| Some(t.0.as_str()) == tier) {
                if scored.is_none_or(|(_, p)| p < *floor) {
                    action = Some(DecisionKind::Alert);
                    fired.push(name.clone());
                }
            }
        }
        // An allow list caps the action at an alert; a block list then freezes regardless.
        let listed = |kind| {
            self.lists
                .iter()
                .filter(move |l| l.action == Some(kind) && l.holds(&payment.fields))
        };
        for list in listed(ListAction::Allow) {
            fired.push(list.cited.clone());
            action = action.min(Some(DecisionKind::Alert));
        }
        for list in listed(ListAction::Block) {
            fired.push(list.cited.clone());
            action = Some(DecisionKind::Freeze);
        }
        PolicyVerdict { action, fired }
    }

    /// `name@version`, as decisions cite it.
    pub fn label(&self) -> &Arc<str> {
        &self.label
    }

    /// The named lists, to change while the engine runs.
    pub fn lists(&self) -> &[Arc<List>] {
        &self.lists
    }

    /// The list named `name`, to change while the engine runs.
    pub fn list(&self, name: &str) -> Option<&Arc<List>> {
        self.lists.iter().find(|l| &*l.name == name)
    }

    /// Whether some rule reads a profile feature, so every payment needs its profile.
    pub fn reads_profiles(&self) -> bool {
        self.reads_profiles
    }

    /// Where an outreach goes: without profiles, to the customer with no channel named;
    /// with them, only with consent, on the preferred channel when it reaches the customer,
    /// else the first configured one that does.
    pub fn reach(&self, profile: Option<&Profile>) -> Reach {
        let Some(profile) = profile else {
            return Reach::Contact(None);
        };
        if !profile.marketing_consent {
            return Reach::Suppressed(Suppressed::NoConsent);
        }
        let usable = |c: &Channel| self.channels.contains(c) && profile.reachable(*c);
        profile
            .preferred_channel
            .filter(usable)
            .or_else(|| self.channels.iter().copied().find(usable))
            .map_or(Reach::Suppressed(Suppressed::NoReachableChannel), |c| {
                Reach::Contact(Some(c))
            })
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

/// The engine's lists, read from their files; one that cannot be read is an error naming its
/// key and the layer that set it.
pub fn load_lists(config: &Config) -> Result<Vec<Arc<List>>> {
    let mut lists = Vec::with_capacity(config.policy.lists.len());
    for (name, list) in &config.policy.lists {
        let loaded = List::load(name, list)
            .map_err(|reason| config.invalid(&format!("policy.lists.{name}.file"), reason))?;
        lists.push(Arc::new(loaded));
    }
    Ok(lists)
}

/// `PROFILE_FEATURES` of a payment.
fn profile_features(profile: Option<&Profile>, payment: PaymentFacts) -> [f64; 2] {
    let mismatch = profile
        .and_then(|p| p.home_country.as_deref())
        .map_or(f64::NAN, |home| {
            f64::from(u8::from(home != payment.fields.country))
        });
    let age = profile
        .and_then(|p| p.signup_ts)
        .map_or(f64::NAN, |signup| (payment.ts - signup) as f64 / DAY_MS);
    [mismatch, age]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::shipped_artifact;
    use vigil_models::{AlertBudgetPoint, ModelArtifact, ModelKind};

    const PAY: PaymentFacts = PaymentFacts {
        fields: ListedFields {
            customer_id: "c-1",
            merchant: "m-1",
            mcc: "5411",
            country: "FR",
            channel: None,
        },
        ts: 1_780_000_000_000,
        recent: None,
    };

    fn no_profile() -> ProfileLookup<'static> {
        ProfileLookup::new(None, "c-1")
    }

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
            p.fraud(Some((&m, 0.99)), &none, PAY, &no_profile()).action,
            Some(DecisionKind::Freeze)
        );
        assert_eq!(
            p.fraud(Some((&m, 0.95)), &none, PAY, &no_profile()).action,
            Some(DecisionKind::Alert)
        );
        assert_eq!(
            p.fraud(Some((&m, 0.2)), &none, PAY, &no_profile()).action,
            None
        );
        assert_eq!(p.fraud(None, &none, PAY, &no_profile()).action, None);
    }

    #[test]
    fn new_country_over_max_is_at_least_an_alert_even_with_a_low_score() {
        let (p, m) = (policy(), model(&[]));
        let ato = features(&[("new_country", 1.0), ("amount_over_max", 0.7)]);
        let v = p.fraud(Some((&m, 0.01)), &ato, PAY, &no_profile());
        assert_eq!(v.action, Some(DecisionKind::Alert));
        assert_eq!(v.fired, vec![Arc::<str>::from("new-country-over-max")]);
        // A rule never lowers what the score asked for.
        assert_eq!(
            p.fraud(Some((&m, 0.995)), &ato, PAY, &no_profile()).action,
            Some(DecisionKind::Freeze)
        );
        // Exactly at the margin is not over it.
        let at_margin = features(&[("new_country", 1.0), ("amount_over_max", 0.4)]);
        assert_eq!(
            p.fraud(Some((&m, 0.01)), &at_margin, PAY, &no_profile())
                .action,
            None
        );
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
        let act = |m: &Model, score| p.fraud(Some((m, score)), &none, PAY, &no_profile()).action;
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

    /// A profile book holding `profile` for `c-1`.
    fn book(profile: &str) -> ProfileBook {
        let store = Arc::new(crate::state::store::StateStore::open(None).unwrap());
        let config = Config::builtin();
        let book = ProfileBook::new(store, &config.profiles, crate::telemetry::Telemetry::new());
        let update = crate::profile::parse(profile.as_bytes()).unwrap();
        book.store(&[update], "test", &Default::default()).unwrap();
        book
    }

    #[test]
    fn a_tier_floor_turns_low_score_freezes_into_alerts_and_says_so() {
        let config = Config::parse_layered(
            "[policy.fraud]\nfreeze = 0.9\nalert = 0.5\n[policy.tiers.vip]\nfreeze_at_least = 0.99\n",
            "tiers.toml",
        )
        .unwrap();
        let (p, m) = (Policy::new(&config).unwrap(), model(&[]));
        let none = features(&[]);
        let vip = book(r#"{"customer_id":"c-1","tier":"vip"}"#);
        let lookup = || ProfileLookup::new(Some(&vip), "c-1");
        let v = p.fraud(Some((&m, 0.95)), &none, PAY, &lookup());
        assert_eq!(v.action, Some(DecisionKind::Alert));
        assert_eq!(v.fired, vec![Arc::<str>::from("tier:vip")]);
        // At the floor, a VIP is frozen like anyone.
        let v = p.fraud(Some((&m, 0.995)), &none, PAY, &lookup());
        assert_eq!((v.action, v.fired.len()), (Some(DecisionKind::Freeze), 0));
        // Another customer (no profile: the default tier) is frozen at 0.95.
        let other = ProfileLookup::new(Some(&vip), "c-2");
        assert_eq!(
            p.fraud(Some((&m, 0.95)), &none, PAY, &other).action,
            Some(DecisionKind::Freeze)
        );
    }

    #[test]
    fn rules_read_profile_features_and_never_hold_without_a_profile() {
        let config = Config::parse_layered(
            "[[policy.rules]]\nname = \"young-abroad\"\nat_least = \"alert\"\nwhen = [{ feature = \"home_country_mismatch\", above = 0.5 }, { feature = \"account_age_days\", below = 30.0 }]\n",
            "rules.toml",
        )
        .unwrap();
        let (p, m) = (Policy::new(&config).unwrap(), model(&[]));
        assert!(p.reads_profiles());
        let none = features(&[]);
        let young = book(&format!(
            r#"{{"customer_id":"c-1","home_country":"DE","signup_ts":{}}}"#,
            PAY.ts - 10 * 86_400_000
        ));
        let fired = |lookup: &ProfileLookup, payment| {
            p.fraud(Some((&m, 0.01)), &none, payment, lookup).fired
        };
        let lookup = ProfileLookup::new(Some(&young), "c-1");
        assert_eq!(fired(&lookup, PAY), vec![Arc::<str>::from("young-abroad")]);
        let at_home = PaymentFacts {
            fields: ListedFields {
                country: "DE",
                ..PAY.fields
            },
            ..PAY
        };
        assert!(fired(&ProfileLookup::new(Some(&young), "c-1"), at_home).is_empty());
        assert!(fired(&no_profile(), PAY).is_empty());
        assert!(fired(&ProfileLookup::new(Some(&young), "c-unknown"), PAY).is_empty());
    }

    #[test]
    fn outreach_needs_consent_and_takes_the_preferred_reachable_channel() {
        let p = policy();
        let profile = |json: &str| crate::profile::parse(json.as_bytes()).unwrap().1.unwrap();
        assert_eq!(p.reach(None), Reach::Contact(None));
        let no_consent = profile(r#"{"customer_id":"c","channels":{"email":true}}"#);
        assert_eq!(
            p.reach(Some(&no_consent)),
            Reach::Suppressed(Suppressed::NoConsent)
        );
        let prefers_sms = profile(
            r#"{"customer_id":"c","marketing_consent":true,"preferred_channel":"sms","channels":{"email":true,"sms":true}}"#,
        );
        assert_eq!(
            p.reach(Some(&prefers_sms)),
            Reach::Contact(Some(Channel::Sms))
        );
        // The preferred channel does not reach them: the configured order (push, email, sms).
        let sms_unreachable = profile(
            r#"{"customer_id":"c","marketing_consent":true,"preferred_channel":"sms","channels":{"email":true,"push":true}}"#,
        );
        assert_eq!(
            p.reach(Some(&sms_unreachable)),
            Reach::Contact(Some(Channel::Push))
        );
        let unreachable = profile(r#"{"customer_id":"c","marketing_consent":true}"#);
        assert_eq!(
            p.reach(Some(&unreachable)),
            Reach::Suppressed(Suppressed::NoReachableChannel)
        );
    }

    /// A policy with lists written to files in `dir`: `bad_merchants` (block), `vetted`
    /// customers (allow) and `watched_mccs` (rules only), and a rule on the last.
    fn listed(dir: &std::path::Path) -> Policy {
        for (file, values) in [
            ("bad.txt", "m-bad\n"),
            ("vetted.txt", "c-vetted\n"),
            ("mccs.txt", "7995\n"),
        ] {
            std::fs::write(dir.join(file), values).unwrap();
        }
        let d = dir.display();
        let config = Config::parse_layered(
            &format!(
                r#"
                [policy.fraud]
                freeze = 0.99
                alert = 0.9
                [policy.lists.bad_merchants]
                file = "{d}/bad.txt"
                field = "merchant"
                action = "block"
                [policy.lists.vetted]
                file = "{d}/vetted.txt"
                field = "customer_id"
                action = "allow"
                [policy.lists.watched_mccs]
                file = "{d}/mccs.txt"
                field = "mcc"
                [[policy.rules]]
                name = "gambling-over-max"
                at_least = "alert"
                when = [{{ in = "watched_mccs" }}, {{ feature = "amount_over_max", above = 0.4 }}]
                "#
            ),
            "lists.toml",
        )
        .unwrap();
        Policy::new(&config).unwrap()
    }

    fn paying(
        customer_id: &'static str,
        merchant: &'static str,
        mcc: &'static str,
    ) -> PaymentFacts<'static> {
        PaymentFacts {
            fields: ListedFields {
                customer_id,
                merchant,
                mcc,
                ..PAY.fields
            },
            ..PAY
        }
    }

    #[test]
    fn a_block_list_freezes_an_allow_list_caps_and_rules_test_membership() {
        let dir = tempfile::tempdir().unwrap();
        let (p, m) = (listed(dir.path()), model(&[]));
        let none = features(&[]);
        let verdict = |payment, score| p.fraud(Some((&m, score)), &none, payment, &no_profile());
        let cited = |v: &PolicyVerdict| v.fired.iter().map(|r| r.to_string()).collect::<Vec<_>>();

        let blocked = verdict(paying("c-1", "m-bad", "5411"), 0.01);
        assert_eq!(blocked.action, Some(DecisionKind::Freeze));
        assert_eq!(cited(&blocked), ["list:bad_merchants"]);
        let vetted = verdict(paying("c-vetted", "m-1", "5411"), 0.995);
        assert_eq!(vetted.action, Some(DecisionKind::Alert));
        assert_eq!(cited(&vetted), ["list:vetted"]);
        // Allowed and blocked at once: the block list wins.
        let both = verdict(paying("c-vetted", "m-bad", "5411"), 0.01);
        assert_eq!(both.action, Some(DecisionKind::Freeze));
        // A rule on a list: both conditions must hold.
        let over_max = features(&[("amount_over_max", 0.7)]);
        let gambling = p.fraud(
            Some((&m, 0.01)),
            &over_max,
            paying("c-1", "m-1", "7995"),
            &no_profile(),
        );
        assert_eq!(gambling.action, Some(DecisionKind::Alert));
        assert_eq!(cited(&gambling), ["gambling-over-max"]);
        assert_eq!(verdict(paying("c-1", "m-1", "7995"), 0.01).action, None);
        assert_eq!(verdict(paying("c-1", "m-1", "5411"), 0.01).action, None);
    }

    #[test]
    fn a_list_changed_mid_stream_changes_the_next_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let (p, m) = (listed(dir.path()), model(&[]));
        let none = features(&[]);
        let payment = paying("c-1", "m-new", "5411");
        let act = || {
            p.fraud(Some((&m, 0.01)), &none, payment, &no_profile())
                .action
        };
        assert_eq!(act(), None);
        let bad = p.list("bad_merchants").unwrap();
        assert!(bad.insert("m-new"));
        assert_eq!(act(), Some(DecisionKind::Freeze));
        assert!(bad.remove("m-new"));
        assert_eq!(act(), None);
    }

    #[test]
    fn a_rule_on_an_unknown_list_or_an_unreadable_list_names_the_key() {
        let rule =
            "[[policy.rules]]\nname = \"x\"\nat_least = \"alert\"\nwhen = [{ in = \"nope\" }]\n";
        let err = Config::parse_layered(rule, "rules.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("policy.rules[0] (x).when") && err.contains("`in = \"nope\"`"),
            "{err}"
        );
        let list = "[policy.lists.gone]\nfile = \"/no/such/list.txt\"\nfield = \"merchant\"\n";
        let config = Config::parse_layered(list, "lists.toml").unwrap();
        let err = Policy::new(&config).unwrap_err().to_string();
        assert!(
            err.contains("policy.lists.gone.file")
                && err.contains("/no/such/list.txt")
                && err.contains("lists.toml"),
            "{err}"
        );
    }

    #[test]
    fn a_velocity_rule_counts_payments_over_an_amount_in_its_window() {
        use super::super::features::RecentPayment;
        let config = Config::parse_layered(
            r#"
            [[policy.rules]]
            name = "five-large-in-an-hour"
            at_least = "alert"
            when = [{ velocity = "count", window = "1h", amount_over = 500.0, above = 5.0 }]
            "#,
            "velocity.toml",
        )
        .unwrap();
        let (p, m) = (Policy::new(&config).unwrap(), model(&[]));
        let none = features(&[]);
        const MINUTE: i64 = 60_000;
        let mut recent = RecentPayments::default();
        let mut pay = |ts: i64, amount: f64| {
            recent.settle();
            recent.insert(RecentPayment {
                ts,
                amount,
                merchant: 1,
                category: 1,
            });
        };
        // Five large payments in the hour, one small, and one large just over an hour ago.
        pay(PAY.ts - 61 * MINUTE, 900.0);
        for i in 0..5 {
            pay(PAY.ts - (50 - i * 10) * MINUTE, 600.0);
        }
        pay(PAY.ts, 20.0);
        let verdict = |recent: &RecentPayments| {
            let payment = PaymentFacts {
                recent: Some(recent),
                ..PAY
            };
            p.fraud(Some((&m, 0.01)), &none, payment, &no_profile())
        };
        assert_eq!(verdict(&recent).action, None, "five is not more than five");
        let mut sixth = recent.clone();
        sixth.settle();
        sixth.insert(RecentPayment {
            ts: PAY.ts,
            amount: 501.0,
            merchant: 2,
            category: 1,
        });
        let v = verdict(&sixth);
        assert_eq!(v.action, Some(DecisionKind::Alert));
        assert_eq!(v.fired, vec![Arc::<str>::from("five-large-in-an-hour")]);
        // Without the customer's payments (no history yet), the rule does not hold.
        assert_eq!(
            p.fraud(Some((&m, 0.01)), &none, PAY, &no_profile()).action,
            None
        );
    }

    #[test]
    fn a_rule_that_can_never_hold_or_repeats_a_name_is_refused_by_name() {
        let rules = [
            (
                "[[policy.rules]]\nname = \"never\"\nat_least = \"alert\"\nwhen = [{ feature = \"payments_1h\", above = 5.0 }, { feature = \"payments_1h\", below = 3.0 }]\n",
                "policy.rules[0] (never).when",
                "can never hold",
            ),
            (
                "[[policy.rules]]\nname = \"a\"\nat_least = \"alert\"\nwhen = [{ feature = \"payments_1h\", above = 5.0 }]\n[[policy.rules]]\nname = \"a\"\nat_least = \"freeze\"\nwhen = [{ feature = \"payments_1h\", above = 9.0 }]\n",
                "policy.rules[1] (a)",
                "name of an earlier rule",
            ),
        ];
        for (text, key, says) in rules {
            let err = Config::parse_layered(text, "rules.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains(says), "{err}");
        }
        // A range on one feature and a bound on another both can hold.
        let fine = "[[policy.rules]]\nname = \"band\"\nat_least = \"alert\"\nwhen = [{ feature = \"payments_1h\", above = 3.0, below = 5.0 }, { feature = \"payments_24h\", below = 1.0 }]\n";
        assert!(Config::parse_layered(fine, "rules.toml").is_ok());
    }

    #[test]
    fn a_velocity_rule_needs_a_window_of_at_most_a_day() {
        for (condition, says) in [
            ("{ velocity = \"count\", above = 5.0 }", "needs a `window`"),
            (
                "{ velocity = \"sum\", window = \"2d\", above = 5.0 }",
                "needs a `window`",
            ),
            (
                "{ velocity = \"count\", window = \"1h\" }",
                "needs `above` or `below`",
            ),
            (
                "{ feature = \"payments_1h\", window = \"1h\", above = 5.0 }",
                "takes no window",
            ),
            (
                "{ velocity = \"count\", feature = \"payments_1h\", window = \"1h\", above = 5.0 }",
                "needs one of",
            ),
        ] {
            let rule = format!(
                "[[policy.rules]]\nname = \"v\"\nat_least = \"alert\"\nwhen = [{condition}]\n"
            );
            let err = Config::parse_layered(&rule, "velocity.toml")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("policy.rules[0] (v).when") && err.contains(says),
                "{condition}: {err}"
            );
        }
    }
}
