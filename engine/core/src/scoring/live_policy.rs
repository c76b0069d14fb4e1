//! The policy in force, and the watcher that swaps in a new version of the policy file while
//! the engine runs (`policy.file`). Like the models, the policy lives behind an `ArcSwap`: each
//! event (or inactivity check) loads it once and is decided by that one version from start to
//! end, so every decision names exactly the `name@version` that made it, whatever swap
//! happens meanwhile.
//!
//! A changed file is read and validated (`config::read_policy_file`: thresholds, checks, rules
//! naming features and lists the engine knows, tiers, channels), compiled, and checked against
//! what is running: its version must be newer than the one serving, its inactivity checks the
//! same (the router's timers are scheduled by them), and every fraud model in force must record
//! a threshold for each alert budget it names. Only then is it swapped in. A refused file is
//! logged with the reason and counted, and the policy in force keeps serving; it is not read
//! again until it changes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use vigil_models::ModelKind;

use super::lists::List;
use super::models::{stamp, unrecorded_budget, FileStamp, LiveModels, Role};
use super::policy::Policy;
use crate::config::{read_policy_file, PolicyConfig};
use crate::error::{Error, Result};
use crate::telemetry::{PolicyRejected, PolicySwapped, Telemetry};

/// The policy in force.
pub struct LivePolicy(ArcSwap<Policy>);

impl LivePolicy {
    pub fn new(policy: Policy) -> LivePolicy {
        LivePolicy(ArcSwap::from_pointee(policy))
    }

    /// The policy in force now; hold it for the whole of one decision.
    pub fn current(&self) -> Guard<Arc<Policy>> {
        self.0.load()
    }

    fn swap(&self, policy: Policy) -> Arc<Policy> {
        self.0.swap(Arc::new(policy))
    }
}

/// Polls the policy file and swaps in each valid new version.
pub struct PolicyWatcher {
    path: PathBuf,
    /// The policy serving, for the checks a new version must pass; its lists and settings
    /// are the engine's, which a file cannot change.
    serving: PolicyConfig,
    lists: Vec<Arc<List>>,
    seen: Option<FileStamp>,
    telemetry: Telemetry,
}

impl PolicyWatcher {
    /// Watches `path`, the file `serving` was read from, as it is now.
    pub fn new(
        path: PathBuf,
        serving: PolicyConfig,
        lists: Vec<Arc<List>>,
        telemetry: Telemetry,
    ) -> Self {
        let seen = stamp(&path);
        PolicyWatcher {
            path,
            serving,
            lists,
            seen,
            telemetry,
        }
    }

    /// Checks every `interval` until dropped.
    pub async fn run(mut self, live: Arc<LivePolicy>, models: Arc<LiveModels>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.check(&live, &models);
        }
    }

    /// Swaps in the file's policy if it changed and passes every check.
    pub fn check(&mut self, live: &LivePolicy, models: &LiveModels) {
        let now = stamp(&self.path);
        if now.is_none() || now == self.seen {
            return;
        }
        self.seen = now;
        match self.load(models) {
            Ok((config, policy)) => {
                let label = policy.label().clone();
                let old = live.swap(policy);
                self.serving = config;
                self.telemetry.emit(PolicySwapped {
                    from: old.label(),
                    to: &label,
                });
            }
            Err(error) => self.telemetry.emit(PolicyRejected {
                path: &self.path,
                error: &error,
            }),
        }
    }

    fn load(&self, models: &LiveModels) -> Result<(PolicyConfig, Policy)> {
        let config = read_policy_file(&self.path, &self.serving)?;
        let layer = self.path.display().to_string();
        let invalid = |key: &str, reason: String| Error::Config {
            layer: layer.clone(),
            key: key.to_owned(),
            reason,
        };
        if config.version <= self.serving.version {
            return Err(invalid(
                "version",
                format!(
                    "is {}, not newer than the version serving ({}@{}): give every change a new version",
                    config.version, self.serving.name, self.serving.version
                ),
            ));
        }
        if config.churn.inactivity_checks() != self.serving.churn.inactivity_checks() {
            return Err(invalid(
                "churn.check_after",
                "differs from the checks in force; inactivity checks are scheduled by them, so changing them needs a restart".into(),
            ));
        }
        let set = models.current();
        let budgets: Vec<(&str, f64)> = config.fraud_budgets().collect();
        for role in [Role::Champion, Role::Challenger] {
            let Some(model) = set.get(ModelKind::Fraud, role) else {
                continue;
            };
            if let Some((key, rate)) = unrecorded_budget(model, &budgets) {
                return Err(invalid(
                    key.trim_start_matches("policy."),
                    format!(
                        "asks for alert rate {rate}, for which the {} {} records no threshold",
                        role.name(),
                        model.label()
                    ),
                ));
            }
        }
        let policy = Policy::compile(&config, self.lists.clone(), "", &invalid)?;
        Ok((config, policy))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::SystemTime;

    use super::*;
    use crate::config::{Config, Layers};
    use crate::scoring::models::ModelSet;

    /// A complete policy file: `name@version`, alerting at `alert`, with `rule_feature` in
    /// its one rule.
    fn write(path: &Path, version: u32, alert: f64, rule_feature: &str) {
        let text = format!(
            r#"
            name = "desk"
            version = {version}
            [fraud]
            freeze = 0.95
            alert = {alert}
            [churn]
            outreach = 0.9
            cooldown = "7d"
            check_after = ["7d", "14d", "30d", "60d", "90d"]
            channels = ["push", "email", "sms"]
            [[rules]]
            name = "burst"
            at_least = "alert"
            when = [{{ feature = "{rule_feature}", above = 5.0 }}]
            "#
        );
        let staging = path.with_extension("staging");
        std::fs::write(&staging, text).unwrap();
        std::fs::rename(staging, path).unwrap();
        // A new file is told from the old by its modification time and length; move the time
        // on so two writes within the clock's resolution still differ.
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() + Duration::from_secs(u64::from(version)))
            .unwrap();
    }

    #[test]
    fn a_new_version_is_swapped_in_and_a_bad_one_refused_while_the_old_serves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        write(&path, 1, 0.5, "payments_1m");
        let config = Config::load(&Layers {
            set: vec![format!("policy.file={}", path.display())],
            ..Layers::default()
        })
        .unwrap();
        assert_eq!(
            (config.policy.name.as_str(), config.policy.version),
            ("desk", 1)
        );
        let live = LivePolicy::new(Policy::new(&config).unwrap());
        let models = LiveModels::new(ModelSet::load(&config).unwrap());
        let mut watcher = PolicyWatcher::new(
            path.clone(),
            config.policy.clone(),
            Vec::new(),
            Telemetry::new(),
        );
        let serving = || live.current().label().to_string();
        assert_eq!(serving(), "desk@1");
        watcher.check(&live, &models);
        assert_eq!(serving(), "desk@1", "an unchanged file is not read again");

        write(&path, 2, 0.6, "payments_1m");
        watcher.check(&live, &models);
        assert_eq!(serving(), "desk@2");

        let refused = |version, alert, feature: &str| {
            write(&path, version, alert, feature);
            watcher.load(&models).map(|_| ()).unwrap_err().to_string()
        };
        let err = refused(3, 0.6, "payments_2m");
        assert!(
            err.contains("policy.toml") && err.contains("rules[0] (burst).when.feature"),
            "{err}"
        );
        let err = refused(2, 0.7, "payments_1m");
        assert!(err.contains("`version`") && err.contains("desk@2"), "{err}");
        let err = refused(3, 0.99, "payments_1m");
        assert!(
            err.contains("`fraud.alert`") && err.contains("wider threshold"),
            "{err}"
        );
        watcher.check(&live, &models);
        assert_eq!(serving(), "desk@2", "the policy in force keeps serving");
    }
}
