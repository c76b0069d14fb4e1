//! Configuration, in layers: the built-in defaults (`engine/core/vigil.toml`, the one place
//! every default is written, and the documentation of every key), then `--config FILE`, then
//! `VIGIL_*` environment variables (`VIGIL_METRICS__LISTEN=127.0.0.1:9100`: a double
//! underscore nests), then `--set key=value` flags, each overriding the one before.
//!
//! Every table denies unknown keys and every number is checked against its bounds, and every
//! error names the layer and the key, so a typo never becomes a silent default and a huge value
//! never becomes a panic deep in the runtime.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Deserialize;
use vigil_models::{ModelKind, Threshold};

use crate::decision::DecisionKind;
use crate::error::{Error, Result};
use crate::event::{MAX_AMOUNT, MAX_BATCH};
use crate::profile::Channel;
use crate::scoring::features::Velocity;
use crate::scoring::lists::{ListAction, ListField};

/// The built-in configuration, also the documentation of every key.
pub const DEFAULT_CONFIG: &str = include_str!("../vigil.toml");

/// The prefix of environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "VIGIL_";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub engine: EngineConfig,
    pub models: ModelsConfig,
    pub policy: PolicyConfig,
    pub fluvio: FluvioConfig,
    pub metrics: MetricsConfig,
    pub console: ConsoleConfig,
    pub profiles: ProfilesConfig,
    pub webhook: WebhookConfig,
    /// Extra decision sinks, each taking the decisions of the kinds it names.
    #[serde(default)]
    pub sinks: Vec<SinkRoute>,
    /// The layers this configuration was read from, so that a check made later (a policy
    /// rule naming a feature the engine does not compute) can still name the layer at fault.
    #[serde(skip)]
    layers: Figment,
}

/// How the engine talks to a Fluvio cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FluvioConfig {
    pub endpoint: Option<String>,
    pub consumer: String,
    pub batch_size: usize,
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub max_record_bytes: usize,
    /// The most bytes of a rejected record its dead letter keeps.
    pub dead_letter_raw_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub late_tolerance: Duration,
    /// A source partition with no record for this long (wall-clock time) stops holding the
    /// watermark back.
    #[serde(with = "humantime_serde")]
    pub idle_partition_timeout: Duration,
    /// An event further than this ahead of processing time is dead-lettered as `future_event`.
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// A payment amount above this is dead-lettered as `invalid_value`.
    pub max_amount: f64,
    /// How long (event time) a customer's processed events are remembered, so a repeat is
    /// recognised; zero turns recognition off.
    #[serde(with = "humantime_serde")]
    pub repeat_horizon: Duration,
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
#[serde(deny_unknown_fields)]
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

/// When customer actors are stopped with their state kept in the state store.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassivationConfig {
    /// An actor that has had no event for this long (wall-clock time) is passivated.
    #[serde(with = "humantime_serde")]
    pub idle: Duration,
    /// Beyond this many live actors, the least recently used are passivated.
    pub max_active: usize,
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
    /// A tree or boosted model with more nodes than this is refused at load and on swap.
    pub max_nodes: usize,
}

/// The repository's shipped artifacts, used when the configuration names none.
pub fn shipped_artifact(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/artifacts")
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
    /// The policy's name and version, cited by every decision as `name@version`.
    pub name: String,
    pub version: u32,
    /// A policy file (the keys of this table, without `lists`, `file`, `watch_interval` and
    /// `shadow`) that replaces this table's policy, watched and swapped in while the engine
    /// runs.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// How often `file` (and `shadow`) is checked for a change; "0s" turns watching off.
    #[serde(default, with = "humantime_serde")]
    pub watch_interval: Option<Duration>,
    /// A candidate policy file run live beside this one: it decides every event too, but its
    /// decisions go only to the shadow output. Watched like `file`.
    #[serde(default)]
    pub shadow: Option<PathBuf>,
    pub fraud: FraudThresholds,
    pub churn: ChurnPolicy,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Per customer tier (from profiles), how the fraud actions change.
    #[serde(default)]
    pub tiers: BTreeMap<String, TierPolicy>,
    /// Named lists of values a payment field is checked against.
    #[serde(default)]
    pub lists: BTreeMap<String, ListConfig>,
}

/// The input a rule's conditions can never all hold on, if there is one: the greatest `above`
/// on it is at or past the least `below`.
fn unreachable(rule: &RuleConfig) -> Option<String> {
    let input = |c: &ConditionConfig| match (&c.feature, c.velocity) {
        (Some(feature), _) => Some(format!("`{feature}`")),
        (None, Some(v)) => Some(format!(
            "the {v:?} velocity over {} (amount over {:?})",
            humantime::format_duration(c.window.unwrap_or_default()),
            c.amount_over
        )),
        (None, None) => None,
    };
    let inputs: Vec<(String, &ConditionConfig)> = rule
        .when
        .iter()
        .filter_map(|c| Some((input(c)?, c)))
        .collect();
    inputs.iter().find_map(|(name, _)| {
        let on = || {
            inputs
                .iter()
                .filter(move |(n, _)| n == name)
                .map(|(_, c)| c)
        };
        let above = on()
            .filter_map(|c| c.above)
            .fold(f64::NEG_INFINITY, f64::max);
        let below = on().filter_map(|c| c.below).fold(f64::INFINITY, f64::min);
        (above >= below).then(|| name.clone())
    })
}

/// A list: the file of its values, the payment field they are values of, and what membership
/// does by itself (`block`: freeze; `allow`: at most an alert; none: only rules test it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    pub file: PathBuf,
    pub field: ListField,
    pub action: Option<ListAction>,
}

/// How one tier's fraud actions differ: a freeze on a score below `freeze_at_least`, or
/// forced by a rule without one, is an alert instead.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPolicy {
    pub freeze_at_least: f64,
}

impl PolicyConfig {
    /// Checks the thresholds, inactivity checks, rules, tiers and channels, naming each key as
    /// `prefix` and its path (`policy.` in the engine's configuration, nothing in a policy
    /// file); rules may test the lists in `lists`. Rules' feature names are checked where
    /// features are known, when the policy is compiled.
    pub fn validate(
        &self,
        prefix: &str,
        lists: &BTreeMap<String, ListConfig>,
        invalid: &dyn Fn(&str, String) -> Error,
    ) -> Result<()> {
        let policy = self;
        for (key, threshold) in [
            (format!("{prefix}fraud.freeze"), policy.fraud.freeze),
            (format!("{prefix}fraud.alert"), policy.fraud.alert),
            (
                format!("{prefix}churn.outreach"),
                Threshold::Probability(policy.churn.outreach),
            ),
        ] {
            match threshold {
                Threshold::Probability(p) if !(0.0..=1.0).contains(&p) => {
                    return Err(invalid(
                        &key,
                        format!("is {p}, not a probability between 0 and 1"),
                    ));
                }
                Threshold::Budget(b) if !(b.at_alert_rate > 0.0 && b.at_alert_rate < 1.0) => {
                    return Err(invalid(
                        &format!("{key}.at_alert_rate"),
                        format!(
                            "is {}, not a share of good traffic between 0 and 1",
                            b.at_alert_rate
                        ),
                    ));
                }
                _ => {}
            }
        }
        // Alert must act on at least as much as freeze: a lower probability, or a larger
        // budget. A probability against a budget depends on the model; loading checks it.
        let (alert, freeze) = (policy.fraud.alert, policy.fraud.freeze);
        let inverted = match (alert, freeze) {
            (Threshold::Probability(a), Threshold::Probability(f)) => a > f,
            (Threshold::Budget(a), Threshold::Budget(f)) => a.at_alert_rate < f.at_alert_rate,
            _ => false,
        };
        if inverted {
            return Err(invalid(
                &format!("{prefix}fraud.alert"),
                format!(
                    "({alert}) acts on less than {prefix}fraud.freeze ({freeze}); alert must be the wider threshold"
                ),
            ));
        }
        let checks = policy.churn.inactivity_checks();
        if checks.len() > MAX_INACTIVITY_CHECKS {
            return Err(invalid(
                &format!("{prefix}churn.check_after"),
                format!(
                    "has {} checks; at most {MAX_INACTIVITY_CHECKS}",
                    checks.len()
                ),
            ));
        }
        let mut previous = Duration::ZERO;
        for (i, after) in checks.iter().enumerate() {
            if *after <= previous || *after > MAX_INACTIVITY_CHECK {
                return Err(invalid(
                    &format!("{prefix}churn.check_after[{i}]"),
                    format!(
                        "is {}; each check must come after the one before it, from 1ms to 10 years",
                        humantime::format_duration(*after)
                    ),
                ));
            }
            previous = *after;
        }
        for (i, rule) in policy.rules.iter().enumerate() {
            let key = format!("{prefix}rules[{i}] ({})", rule.name);
            if rule.when.is_empty() {
                return Err(invalid(&key, "has no conditions in `when`".into()));
            }
            if !matches!(rule.at_least, DecisionKind::Alert | DecisionKind::Freeze) {
                return Err(invalid(&key, "`at_least` must be alert or freeze".into()));
            }
            if policy.rules[..i].iter().any(|r| r.name == rule.name) {
                return Err(invalid(
                    &key,
                    "has the name of an earlier rule; decisions cite rules by name".into(),
                ));
            }
            if let Some(input) = unreachable(rule) {
                return Err(invalid(
                    &format!("{key}.when"),
                    format!("can never hold: its bounds on {input} leave nothing between them"),
                ));
            }
            for c in &rule.when {
                let bounds: Vec<f64> = c.above.into_iter().chain(c.below).collect();
                let kinds = [
                    c.feature.is_some(),
                    c.in_list.is_some(),
                    c.velocity.is_some(),
                ];
                let windowed = c.window.is_some() || c.amount_over.is_some();
                let fault = if kinds.iter().filter(|k| **k).count() != 1 {
                    "needs one of a `feature`, `in` a list, or a `velocity`"
                } else if let Some(list) = &c.in_list {
                    if !lists.contains_key(list) {
                        return Err(invalid(
                            &format!("{key}.when"),
                            format!("tests `in = \"{list}\"`, which is not one of policy.lists"),
                        ));
                    }
                    if bounds.is_empty() && !windowed {
                        continue;
                    }
                    "tests a list, which takes no bounds, window or amount"
                } else if c.velocity.is_some()
                    && !c
                        .window
                        .is_some_and(|w| !w.is_zero() && w <= MAX_VELOCITY_WINDOW)
                {
                    "needs a `window` from 1ms to 24h"
                } else if c.feature.is_some() && windowed {
                    "reads a feature, which takes no window or amount (a `velocity` does)"
                } else if bounds.is_empty() {
                    "needs `above` or `below`"
                } else if bounds.iter().chain(&c.amount_over).any(|v| !v.is_finite()) {
                    "has a bound that is not a number"
                } else {
                    continue;
                };
                let on = match (&c.feature, &c.in_list, c.velocity) {
                    (Some(feature), _, _) => feature.clone(),
                    (_, Some(list), _) => list.clone(),
                    (_, _, Some(v)) => format!("{v:?} velocity").to_lowercase(),
                    _ => "nothing".to_owned(),
                };
                return Err(invalid(
                    &format!("{key}.when"),
                    format!("condition on `{on}` {fault}"),
                ));
            }
        }
        for (tier, t) in &policy.tiers {
            if !(0.0..=1.0).contains(&t.freeze_at_least) {
                return Err(invalid(
                    &format!("{prefix}tiers.{tier}.freeze_at_least"),
                    format!(
                        "is {}, not a probability between 0 and 1",
                        t.freeze_at_least
                    ),
                ));
            }
        }
        let mut seen = Vec::new();
        for (i, channel) in policy.churn.channels.iter().enumerate() {
            if seen.contains(channel) {
                return Err(invalid(
                    &format!("{prefix}churn.channels[{i}]"),
                    format!("lists {} twice", channel.name()),
                ));
            }
            seen.push(*channel);
        }
        Ok(())
    }

    /// Where a model of `kind` acts: the alert threshold for fraud, the outreach threshold for
    /// churn. Training and replay evaluate models there.
    pub fn threshold(&self, kind: ModelKind) -> Threshold {
        match kind {
            ModelKind::Fraud => self.fraud.alert,
            ModelKind::Churn => Threshold::Probability(self.churn.outreach),
        }
    }

    /// The alert rates the fraud thresholds ask every fraud model to record, with their keys.
    pub fn fraud_budgets(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        [
            ("policy.fraud.freeze", self.fraud.freeze),
            ("policy.fraud.alert", self.fraud.alert),
        ]
        .into_iter()
        .filter_map(|(key, t)| t.budget().map(|rate| (key, rate)))
    }
}

/// Fraud thresholds: each a probability, or `{ at_alert_rate = RATE }` for the threshold the
/// model in force recorded for that share of good traffic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FraudThresholds {
    pub freeze: Threshold,
    pub alert: Threshold,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnPolicy {
    pub outreach: f64,
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    /// Inactivity checks: how long after a customer's newest activity (event time) they are
    /// scored for churn again if nothing else has come from them. Strictly increasing; empty
    /// turns inactivity timers off.
    pub check_after: Vec<humantime_serde::Serde<Duration>>,
    /// With profiles: the channels outreach may use, in order of preference after the
    /// customer's own.
    pub channels: Vec<Channel>,
}

/// At most this many inactivity checks, each at most this long after the newest activity.
const MAX_INACTIVITY_CHECKS: usize = 16;
const MAX_INACTIVITY_CHECK: Duration = Duration::from_secs(3_650 * 86_400);

impl ChurnPolicy {
    /// `check_after` as durations.
    pub fn inactivity_checks(&self) -> Vec<Duration> {
        self.check_after.iter().map(|d| **d).collect()
    }
}

/// A hard rule over a payment's fraud features.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub at_least: DecisionKind,
    pub when: Vec<ConditionConfig>,
}

/// `feature > above` and/or `feature < below`; or membership in a list (`in = "NAME"`); or a
/// velocity over the customer's payments in the last `window` (at most a day), those over
/// `amount_over` only when given, `> above` and/or `< below`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionConfig {
    pub feature: Option<String>,
    pub above: Option<f64>,
    pub below: Option<f64>,
    #[serde(rename = "in")]
    pub in_list: Option<String>,
    pub velocity: Option<Velocity>,
    #[serde(default, with = "humantime_serde")]
    pub window: Option<Duration>,
    pub amount_over: Option<f64>,
}

/// The longest window a velocity rule may look back: customers' payments are kept in detail
/// for a day.
pub const MAX_VELOCITY_WINDOW: Duration = Duration::from_secs(86_400);

/// Customer profiles (`--profiles`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilesConfig {
    /// The tier of a customer without a profile.
    pub default_tier: String,
    /// Whether a customer without a profile may be contacted.
    pub default_consent: bool,
    /// CSV profile files: profile field → the column holding it, where the two differ.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

/// How decisions are delivered to webhooks: the defaults every webhook sink takes, each of
/// which a `[[sinks]]` entry may override.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub batch_size: usize,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    pub rate_limit: u32,
    pub concurrency: usize,
    pub secret_env: String,
    pub secret_file: Option<PathBuf>,
    pub undeliverable: String,
}

/// An extra decision sink: `sink` is a spec (`webhook:https://…`, `file:…`), `decisions` the
/// kinds it takes; the webhook keys override `[webhook]` for this sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkRoute {
    pub sink: String,
    pub decisions: Vec<DecisionKind>,
    pub batch_size: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub deadline: Option<Duration>,
    pub rate_limit: Option<u32>,
    pub concurrency: Option<usize>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub undeliverable: Option<String>,
}

impl SinkRoute {
    /// The webhook settings for this sink: its own keys over `defaults`.
    pub fn webhook(&self, defaults: &WebhookConfig) -> WebhookConfig {
        let d = defaults.clone();
        WebhookConfig {
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            timeout: self.timeout.unwrap_or(d.timeout),
            deadline: self.deadline.unwrap_or(d.deadline),
            max_backoff: d.max_backoff,
            rate_limit: self.rate_limit.unwrap_or(d.rate_limit),
            concurrency: self.concurrency.unwrap_or(d.concurrency),
            secret_env: self.secret_env.clone().unwrap_or(d.secret_env),
            secret_file: self.secret_file.clone().or(d.secret_file),
            undeliverable: self.undeliverable.clone().unwrap_or(d.undeliverable),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

/// The risk console (`vigil run` serves it): its address, who may use it, how many recent
/// decisions it keeps, and where analysts' verdicts go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// A file of `name:token` lines, one per analyst.
    pub token_file: Option<PathBuf>,
    /// An environment variable of `name:token` pairs separated by commas.
    pub token_env: String,
    /// Recent decisions kept for the API and the page.
    pub recent: usize,
    /// Decisions a stream client may fall behind by before it is dropped.
    pub stream_buffer: usize,
    /// Where verdicts go (sink spec).
    pub feedback: String,
}

/// One configuration layer: TOML text and the name errors give it.
struct Layer {
    name: String,
    text: String,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        Toml::string(&self.text).data()
    }
}

/// What to layer over the built-in defaults, in order.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    /// `--config FILE`.
    pub file: Option<PathBuf>,
    /// `VIGIL_*` variables whose name nests with `__`; others (a script's own) are not
    /// configuration and are left alone.
    pub env: Vec<(String, String)>,
    /// `--set key=value` flags.
    pub set: Vec<String>,
}

impl Layers {
    /// `file` and `set`, with the configuration variables of this process's environment.
    pub fn from_process(file: Option<PathBuf>, set: Vec<String>) -> Layers {
        Layers {
            file,
            env: std::env::vars()
                .filter(|(name, _)| {
                    name.strip_prefix(ENV_PREFIX)
                        .is_some_and(|key| key.contains("__"))
                })
                .collect(),
            set,
        }
    }
}

/// `key = value` as a TOML line: the value as written when it is a TOML value (a number, a
/// boolean, a quoted string, an array), else as a string.
fn assignment(layer: &str, key: &str, value: &str) -> Result<String> {
    let valid_key = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if !valid_key {
        return Err(Error::Config {
            layer: layer.to_owned(),
            key: key.to_owned(),
            reason: "is not a configuration key (dotted words, e.g. engine.max_in_flight)".into(),
        });
    }
    let line = format!("{key} = {value}");
    if toml::from_str::<toml::Table>(&line).is_ok() {
        return Ok(line);
    }
    Ok(format!("{key} = {}", toml::Value::String(value.to_owned())))
}

impl Config {
    /// The built-in configuration.
    pub fn builtin() -> Config {
        Self::load(&Layers::default()).expect("the built-in configuration is valid")
    }

    /// The built-in defaults with `layers` over them.
    pub fn load(layers: &Layers) -> Result<Config> {
        let file = match &layers.file {
            Some(path) => Some(Layer {
                name: path.display().to_string(),
                text: std::fs::read_to_string(path).map_err(|cause| Error::ConfigRead {
                    path: path.clone(),
                    cause,
                })?,
            }),
            None => None,
        };
        Self::layered(file, layers)
    }

    /// Configuration text as a file named `origin` would hold it, over the built-in defaults.
    pub fn parse_layered(text: &str, origin: &str) -> Result<Config> {
        let file = Layer {
            name: origin.to_owned(),
            text: text.to_owned(),
        };
        Self::layered(Some(file), &Layers::default())
    }

    /// The defaults, then `file`, then `layers`' environment and flags.
    fn layered(file: Option<Layer>, layers: &Layers) -> Result<Config> {
        let mut figment = Figment::from(Layer {
            name: "the built-in defaults".into(),
            text: DEFAULT_CONFIG.into(),
        });
        if let Some(file) = file {
            figment = figment.merge(file);
        }
        for (name, value) in &layers.env {
            let Some(key) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let layer = format!("environment variable {name}");
            let key = key.to_ascii_lowercase().replace("__", ".");
            let text = assignment(&layer, &key, value)?;
            figment = figment.merge(Layer { name: layer, text });
        }
        for flag in &layers.set {
            let layer = format!("--set {flag}");
            let (key, value) = flag.split_once('=').ok_or_else(|| Error::Config {
                layer: layer.clone(),
                key: flag.clone(),
                reason: "needs a value: --set key=value".into(),
            })?;
            let text = assignment(&layer, key.trim(), value.trim())?;
            figment = figment.merge(Layer { name: layer, text });
        }
        let mut config: Config = figment.extract().map_err(parse_error)?;
        config.layers = figment;
        config.validate()?;
        if let Some(path) = config.policy.file.clone() {
            config.policy = read_policy_file(&path, &config.policy)?;
        }
        Ok(config)
    }

    /// The name of the layer `key`'s value came from. An array (`policy.rules`) comes whole
    /// from one layer, so a key inside one (`policy.rules[0] (x).when`) is its array's.
    pub fn layer_of(&self, key: &str) -> String {
        let path = key.split('[').next().unwrap_or(key);
        self.layers
            .find_metadata(path)
            .map_or_else(|| "the configuration".to_owned(), |m| m.name.to_string())
    }

    /// A configuration error for `key`, naming the layer its value came from.
    pub fn invalid(&self, key: &str, reason: String) -> Error {
        Error::Config {
            layer: self.layer_of(key),
            key: key.to_owned(),
            reason,
        }
    }

    /// Checks every value the types allow but the engine cannot run with: every number
    /// against its bounds, then the policy's thresholds and rules. Rules' feature names are
    /// checked where features are known, when the policy is compiled.
    fn validate(&self) -> Result<()> {
        for (key, value, least, most) in self.counts() {
            if !(least..=most).contains(&value) {
                return Err(self.invalid(key, format!("is {value}, outside {least}..={most}")));
            }
        }
        for (key, value, least, most) in self.durations() {
            if !(least..=most).contains(&value) {
                return Err(self.invalid(
                    key,
                    format!(
                        "is {}, outside {}..={}",
                        shown(value),
                        shown(least),
                        shown(most)
                    ),
                ));
            }
        }
        let max_amount = self.engine.max_amount;
        if !(max_amount > 0.0 && max_amount <= MAX_AMOUNT) {
            return Err(self.invalid(
                "engine.max_amount",
                format!("is {max_amount}, outside (0, {MAX_AMOUNT:e}]"),
            ));
        }
        self.validate_policy()
    }

    /// Every count with its least and greatest allowed value.
    fn counts(&self) -> [(&'static str, u64, u64, u64); 10] {
        let e = &self.engine;
        [
            (
                "engine.max_record_bytes",
                e.max_record_bytes as u64,
                64,
                16 << 20,
            ),
            (
                "engine.dead_letter_raw_bytes",
                e.dead_letter_raw_bytes as u64,
                0,
                1 << 20,
            ),
            // A source batch must fit; beyond 16M records in flight is memory, not speed.
            (
                "engine.max_in_flight",
                e.max_in_flight as u64,
                MAX_BATCH as u64,
                1 << 24,
            ),
            (
                "engine.passivation.max_active",
                e.passivation.max_active as u64,
                1,
                100_000_000,
            ),
            (
                "models.max_nodes",
                self.models.max_nodes as u64,
                1,
                16_000_000,
            ),
            (
                "fluvio.batch_size",
                self.fluvio.batch_size as u64,
                1,
                64 << 20,
            ),
            (
                "webhook.batch_size",
                self.webhook.batch_size as u64,
                1,
                10_000,
            ),
            ("console.recent", self.console.recent as u64, 1, 10_000_000),
            (
                "console.stream_buffer",
                self.console.stream_buffer as u64,
                1,
                1 << 20,
            ),
            (
                "webhook.concurrency",
                self.webhook.concurrency as u64,
                1,
                256,
            ),
        ]
    }

    /// Every duration with its least and greatest allowed value; the greatest keeps
    /// `Instant::now() + d` from overflowing anywhere it is used.
    fn durations(&self) -> [(&'static str, Duration, Duration, Duration); 16] {
        const ZERO: Duration = Duration::ZERO;
        const MS: Duration = Duration::from_millis(1);
        const MINUTE: Duration = Duration::from_secs(60);
        const HOUR: Duration = Duration::from_secs(3_600);
        const DAY: Duration = Duration::from_secs(86_400);
        let e = &self.engine;
        [
            ("engine.late_tolerance", e.late_tolerance, ZERO, 30 * DAY),
            ("engine.repeat_horizon", e.repeat_horizon, ZERO, 30 * DAY),
            (
                "engine.idle_partition_timeout",
                e.idle_partition_timeout,
                MS,
                DAY,
            ),
            (
                "engine.max_future_skew",
                e.max_future_skew,
                ZERO,
                3_650 * DAY,
            ),
            ("engine.shutdown_deadline", e.shutdown_deadline, MS, DAY),
            (
                "engine.checkpoint_interval",
                e.checkpoint_interval,
                10 * MS,
                DAY,
            ),
            (
                "engine.latency_budget.fraud",
                e.latency_budget.fraud,
                ZERO,
                HOUR,
            ),
            (
                "engine.latency_budget.churn",
                e.latency_budget.churn,
                ZERO,
                HOUR,
            ),
            ("engine.passivation.idle", e.passivation.idle, MS, 30 * DAY),
            (
                "models.watch_interval",
                self.models.watch_interval,
                ZERO,
                DAY,
            ),
            (
                "policy.churn.cooldown",
                self.policy.churn.cooldown,
                ZERO,
                366 * DAY,
            ),
            ("fluvio.linger", self.fluvio.linger, ZERO, MINUTE),
            ("webhook.timeout", self.webhook.timeout, MS, HOUR),
            ("webhook.deadline", self.webhook.deadline, ZERO, 30 * DAY),
            ("webhook.max_backoff", self.webhook.max_backoff, MS, HOUR),
            (
                "fluvio.commit_interval",
                self.fluvio.commit_interval,
                10 * MS,
                DAY,
            ),
        ]
    }

    /// Thresholds are probabilities, alert is below freeze, and every rule is well formed.
    fn validate_policy(&self) -> Result<()> {
        self.policy
            .validate("policy.", &self.policy.lists, &|key: &str, reason| {
                self.invalid(key, reason)
            })?;
        for (i, route) in self.sinks.iter().enumerate() {
            if route.decisions.is_empty() {
                return Err(self.invalid(
                    &format!("sinks[{i}].decisions"),
                    "is empty; name the decision kinds this sink takes".into(),
                ));
            }
            let webhook = route.webhook(&self.webhook);
            if !(1..=10_000).contains(&webhook.batch_size)
                || !(1..=256).contains(&webhook.concurrency)
            {
                return Err(self.invalid(
                    &format!("sinks[{i}]"),
                    format!(
                        "batch_size {} or concurrency {} is outside 1..=10000 and 1..=256",
                        webhook.batch_size, webhook.concurrency
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// An error naming `key` in the file at `path` (a policy file's keys are its own, without
/// `policy.`).
pub fn invalid_in(path: &Path) -> impl Fn(&str, String) -> Error {
    let layer = path.display().to_string();
    move |key: &str, reason: String| Error::Config {
        layer: layer.clone(),
        key: key.to_owned(),
        reason,
    }
}

/// Reads a policy file, the keys of a `[policy]` table at its top level, and validates it: its
/// rules may test the lists of `engine` (the policy of the engine's configuration), whose
/// `lists`, `file`, `watch_interval` and `shadow` it keeps. Errors name the file and the key.
pub fn read_policy_file(path: &Path, engine: &PolicyConfig) -> Result<PolicyConfig> {
    let text = std::fs::read_to_string(path).map_err(|cause| Error::ConfigRead {
        path: path.to_owned(),
        cause,
    })?;
    let invalid = invalid_in(path);
    let mut policy: PolicyConfig = serde_path_to_error::deserialize(toml::Deserializer::new(&text))
        .map_err(|e| {
            let key = e.path().to_string();
            invalid(&key, format!("is not valid: {}", e.inner().message()))
        })?;
    for (key, set) in [
        ("lists", !policy.lists.is_empty()),
        ("file", policy.file.is_some()),
        ("watch_interval", policy.watch_interval.is_some()),
        ("shadow", policy.shadow.is_some()),
    ] {
        if set {
            return Err(invalid(
                key,
                "belongs in the engine's configuration ([policy]), not in a policy file".into(),
            ));
        }
    }
    policy.validate("", &engine.lists, &invalid)?;
    policy.lists = engine.lists.clone();
    policy.file = engine.file.clone();
    policy.watch_interval = engine.watch_interval;
    policy.shadow = engine.shadow.clone();
    Ok(policy)
}

/// A layer that does not parse, or a key that is unknown or of the wrong type, as an error
/// naming the layer and the key (`engine.max_in_flight`, without figment's profile).
fn parse_error(error: figment::Error) -> Error {
    match (&error.metadata, error.path.is_empty()) {
        (Some(layer), false) => Error::Config {
            layer: layer.name.to_string(),
            key: error.path.join("."),
            reason: format!("is not valid: {}", error.kind),
        },
        _ => Error::ConfigParse(Box::new(error)),
    }
}

fn shown(d: Duration) -> impl Display {
    humantime::format_duration(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layered(env: &[(&str, &str)], set: &[&str]) -> Result<Config> {
        Config::load(&Layers {
            file: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            set: set.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn builtin_configuration_is_valid_and_documented_values_hold() {
        let c = Config::builtin();
        assert_eq!(c.engine.max_record_bytes, 65_536);
        assert_eq!(c.policy.churn.cooldown, Duration::from_secs(7 * 86_400));
        assert_eq!(c.metrics.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.policy.rules[0].name, "new-country-over-max");
        assert_eq!(c.fluvio.consumer, "vigil");
    }

    #[test]
    fn fraud_thresholds_are_probabilities_or_alert_budgets_with_alert_the_wider() {
        let c = Config::parse_layered(
            "[policy.fraud]\nfreeze = { at_alert_rate = 0.0005 }\nalert = 0.5\n",
            "b.toml",
        )
        .unwrap();
        assert_eq!(c.policy.fraud.freeze.budget(), Some(0.0005));
        assert_eq!(
            c.policy.fraud_budgets().collect::<Vec<_>>(),
            [("policy.fraud.freeze", 0.0005)]
        );
        let err = |text: &str| {
            Config::parse_layered(text, "b.toml")
                .unwrap_err()
                .to_string()
        };
        let narrower = err(
            "[policy.fraud]\nfreeze = { at_alert_rate = 0.005 }\nalert = { at_alert_rate = 0.001 }\n",
        );
        assert!(
            narrower.contains("`policy.fraud.alert`") && narrower.contains("wider threshold"),
            "{narrower}"
        );
        let rate = err("[policy.fraud]\nfreeze = { at_alert_rate = 2 }\nalert = 0.5\n");
        assert!(
            rate.contains("`policy.fraud.freeze.at_alert_rate` is 2"),
            "{rate}"
        );
        let typo = err("[policy.fraud]\nfreeze = { at_rate = 0.1 }\nalert = 0.5\n");
        assert!(
            typo.contains("b.toml") && typo.contains("a probability, or { at_alert_rate = RATE }"),
            "{typo}"
        );
    }

    #[test]
    fn a_file_overrides_only_what_it_sets() {
        let c = Config::parse_layered("[policy.fraud]\nfreeze = 0.99\nalert = 0.5\n", "f.toml")
            .unwrap();
        assert_eq!(
            (c.policy.fraud.freeze, c.policy.fraud.alert),
            (Threshold::Probability(0.99), Threshold::Probability(0.5))
        );
        assert_eq!(
            c.policy.churn.outreach,
            Config::builtin().policy.churn.outreach
        );
    }

    #[test]
    fn environment_then_flags_override_the_file_in_that_order() {
        let c = layered(
            &[
                ("VIGIL_METRICS__LISTEN", "127.0.0.1:9100"),
                ("VIGIL_ENGINE__MAX_IN_FLIGHT", "2048"),
            ],
            &["engine.max_in_flight=8192", "engine.late_tolerance=1m"],
        )
        .unwrap();
        assert_eq!(c.metrics.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(
            c.engine.max_in_flight, 8192,
            "--set wins over the environment"
        );
        assert_eq!(c.engine.late_tolerance, Duration::from_secs(60));
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
        let err = layered(&[], &["engine.max_in_flite=5"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--set engine.max_in_flite=5") && err.contains("max_in_flite"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_their_key_and_layer() {
        let err = Config::parse_layered("[policy.churn]\noutreach = 3\n", "v.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("v.toml") && err.contains("`policy.churn.outreach` is 3"),
            "{err}"
        );
        let rule = "[[policy.rules]]\nname = \"x\"\nat_least = \"freeze\"\nwhen = [{ feature = \"amount_over_max\" }]\n";
        let err = Config::parse_layered(rule, "v.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("v.toml") && err.contains("needs `above` or `below`"),
            "{err}"
        );
        let err = layered(&[("VIGIL_ENGINE__MAX_IN_FLIGHT", "lots")], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("VIGIL_ENGINE__MAX_IN_FLIGHT") && err.contains("max_in_flight"),
            "{err}"
        );
    }

    #[test]
    fn numbers_out_of_bounds_are_configuration_errors_not_panics() {
        let err = layered(&[], &["engine.max_in_flight=2305843009213693952"]).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Configuration);
        let err = err.to_string();
        assert!(
            err.contains("--set engine.max_in_flight=2305843009213693952")
                && err.contains(
                    "`engine.max_in_flight` is 2305843009213693952, outside 1024..=16777216"
                ),
            "{err}"
        );
        let err = layered(&[("VIGIL_ENGINE__CHECKPOINT_INTERVAL", "100000y")], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("engine.checkpoint_interval"), "{err}");
        assert!(layered(&[], &["engine.max_in_flight=512"]).is_err());
    }
}
