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
//!
//! A candidate policy (`policy.shadow`) lives the same way beside the champion, in its own
//! `LivePolicy` with its own watcher: each event is decided by both, on the same scores, and
//! the candidate's decisions go only to the shadow output.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};
use vigil_models::ModelKind;

use super::lists::List;
use super::models::{stamp, unrecorded_budget, FileStamp, LiveModels, ModelSet, Role};
use super::policy::Policy;
use crate::config::{invalid_in, read_policy_file, Config, PolicyConfig};
use crate::error::Result;
use crate::telemetry::{PolicyLoaded, PolicyRejected, PolicySwapped, Telemetry};

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

/// Whether a policy's decisions are acted on (the champion, `policy.file` or the configuration's
/// own) or only compared with them (the candidate, `policy.shadow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyRole {
    Champion,
    Candidate,
}

impl PolicyRole {
    pub fn name(self) -> &'static str {
        match self {
            PolicyRole::Champion => "champion",
            PolicyRole::Candidate => "candidate",
        }
    }
}

/// Reads the policy file at `path` over the engine's policy `engine` (whose lists, already
/// loaded as `lists`, it may test), checks that every fraud model in `models` records a
/// threshold for each alert budget it names, and compiles it. Errors name the file and the key.
pub fn load_policy(
    path: &Path,
    engine: &PolicyConfig,
    lists: Vec<Arc<List>>,
    models: &ModelSet,
) -> Result<(PolicyConfig, Policy)> {
    let config = read_policy_file(path, engine)?;
    let invalid = invalid_in(path);
    let budgets: Vec<(&str, f64)> = config.fraud_budgets().collect();
    for role in [Role::Champion, Role::Challenger] {
        let Some(model) = models.get(ModelKind::Fraud, role) else {
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
    let policy = Policy::compile(&config, lists, "", &invalid)?;
    Ok((config, policy))
}

/// The candidate policy `config` names (`policy.shadow`), if it names one, as the policy file
/// it was read as and the live policy it serves in: read over the engine's policy and `lists`,
/// checked against `models` and compiled.
pub fn load_candidate(
    config: &Config,
    lists: Vec<Arc<List>>,
    models: &ModelSet,
    telemetry: &Telemetry,
) -> Result<Option<(PolicyConfig, LivePolicy)>> {
    let Some(path) = &config.policy.shadow else {
        return Ok(None);
    };
    let (candidate, policy) = load_policy(path, &config.policy, lists, models)?;
    telemetry.emit(PolicyLoaded {
        role: PolicyRole::Candidate,
        label: policy.label(),
    });
    Ok(Some((candidate, LivePolicy::new(policy))))
}

/// Polls a policy file and swaps each valid new version into the policy it serves as.
pub struct PolicyWatcher {
    path: PathBuf,
    role: PolicyRole,
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
        role: PolicyRole,
        serving: PolicyConfig,
        lists: Vec<Arc<List>>,
        telemetry: Telemetry,
    ) -> Self {
        let seen = stamp(&path);
        PolicyWatcher {
            path,
            role,
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
        let started = Instant::now();
        match self.load(models) {
            Ok((config, policy)) => {
                let label = policy.label().clone();
                let old = live.swap(policy);
                self.serving = config;
                self.telemetry.emit(PolicySwapped {
                    role: self.role,
                    from: old.label(),
                    to: &label,
                    took: started.elapsed(),
                });
            }
            Err(error) => self.telemetry.emit(PolicyRejected {
                role: self.role,
                path: &self.path,
                error: &error,
            }),
        }
    }

    /// The file's policy, if it is a valid new version of the one serving. A champion's
    /// inactivity checks must stay as they are: the router's timers are scheduled by them. A
    /// candidate decides events only, so its checks are not used.
    fn load(&self, models: &LiveModels) -> Result<(PolicyConfig, Policy)> {
        let (config, policy) = load_policy(
            &self.path,
            &self.serving,
            self.lists.clone(),
            &models.current(),
        )?;
        let invalid = invalid_in(&self.path);
        if config.version <= self.serving.version {
            return Err(invalid(
                "version",
                format!(
                    "is {}, not newer than the version serving ({}@{}): give every change a new version",
                    config.version, self.serving.name, self.serving.version
                ),
            ));
        }
        if self.role == PolicyRole::Champion
            && config.churn.inactivity_checks() != self.serving.churn.inactivity_checks()
        {
            return Err(invalid(
                "churn.check_after",
                "differs from the checks in force; inactivity checks are scheduled by them, so changing them needs a restart".into(),
            ));
        }
        Ok((config, policy))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::SystemTime;

    use super::*;
    use crate::config::Layers;

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
            PolicyRole::Champion,
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

    #[test]
    fn a_candidate_serves_beside_the_champion_and_only_a_champion_keeps_its_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("candidate.toml");
        write(&path, 1, 0.5, "payments_1m");
        let config = Config::load(&Layers {
            set: vec![format!("policy.shadow={}", path.display())],
            ..Layers::default()
        })
        .unwrap();
        assert_eq!(
            config.policy.name, "builtin",
            "the champion stays the configuration's"
        );
        let models = LiveModels::new(ModelSet::load(&config).unwrap());
        let telemetry = Telemetry::new();
        let (serving, live) = load_candidate(&config, Vec::new(), &models.current(), &telemetry)
            .unwrap()
            .expect("a candidate");
        assert_eq!(live.current().label().as_ref(), "desk@1");

        let watch = |role| {
            PolicyWatcher::new(
                path.clone(),
                role,
                serving.clone(),
                Vec::new(),
                telemetry.clone(),
            )
        };
        let (mut candidate, champion) = (watch(PolicyRole::Candidate), watch(PolicyRole::Champion));
        // Version 2 checks a quiet customer later than the champion does.
        write(&path, 2, 0.6, "payments_1m");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"90d\"]", "\"120d\"]")).unwrap();
        let err = champion.load(&models).unwrap_err().to_string();
        assert!(err.contains("`churn.check_after`"), "{err}");
        candidate.check(&live, &models);
        assert_eq!(live.current().label().as_ref(), "desk@2");

        // A policy file cannot name a candidate of its own.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("shadow = \"other.toml\"\n{text}")).unwrap();
        let err = load_candidate(&config, Vec::new(), &models.current(), &telemetry)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`shadow`") && err.contains("not in a policy file"),
            "{err}"
        );
    }
}
