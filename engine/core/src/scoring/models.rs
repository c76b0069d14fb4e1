//! The engine's models: a champion fraud and churn model, and optionally a challenger for
//! each, loaded from the configured artifacts and checked against the features this engine
//! computes before any event is scored.
//!
//! The set in force lives behind an `ArcSwap`: each event's actor loads it once (a few
//! nanoseconds, no lock) and scores with that one version from start to end. The
//! `ModelWatcher` polls the artifact files and, when one changes, validates the new artifact
//! (kind, feature names and order, weights, a smoke score, a threshold for every alert budget
//! the policy names) before swapping it in. The stream
//! never pauses, and a bad artifact is rejected with the reason while the old model keeps
//! serving.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, Guard};
use vigil_models::{Model, ModelArtifact, ModelKind};

use super::features::{CHURN_FEATURES, FRAUD_FEATURES};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::telemetry::{ModelLoaded, ModelRejected, ModelRetired, Telemetry};

/// Whether a model's decisions are acted on (champion) or only compared (challenger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Champion,
    Challenger,
}

impl Role {
    /// The `role` label of `vigil_model_info`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Champion => "champion",
            Role::Challenger => "challenger",
        }
    }
}

/// The models in force at one moment.
#[derive(Debug, Clone)]
pub struct ModelSet {
    pub fraud: Model,
    pub churn: Model,
    pub fraud_challenger: Option<Model>,
    pub churn_challenger: Option<Model>,
}

impl ModelSet {
    /// Loads every configured artifact; any that fails stops the engine from starting.
    pub fn load(config: &Config) -> Result<ModelSet> {
        let optional = |file: Option<ArtifactFile>| file.map(|f| f.load()).transpose();
        Ok(ModelSet {
            fraud: ArtifactFile::champion(config, ModelKind::Fraud).load()?,
            churn: ArtifactFile::champion(config, ModelKind::Churn).load()?,
            fraud_challenger: optional(ArtifactFile::challenger(config, ModelKind::Fraud))?,
            churn_challenger: optional(ArtifactFile::challenger(config, ModelKind::Churn))?,
        })
    }

    /// Every model with its role, for `vigil_model_info`.
    pub fn roles(&self) -> impl Iterator<Item = (&Model, Role)> {
        [
            Some((&self.fraud, Role::Champion)),
            Some((&self.churn, Role::Champion)),
            self.fraud_challenger
                .as_ref()
                .map(|m| (m, Role::Challenger)),
            self.churn_challenger
                .as_ref()
                .map(|m| (m, Role::Challenger)),
        ]
        .into_iter()
        .flatten()
    }

    /// The model serving as `kind`'s `role`, if any.
    pub fn get(&self, kind: ModelKind, role: Role) -> Option<&Model> {
        match (kind, role) {
            (ModelKind::Fraud, Role::Champion) => Some(&self.fraud),
            (ModelKind::Churn, Role::Champion) => Some(&self.churn),
            (ModelKind::Fraud, Role::Challenger) => self.fraud_challenger.as_ref(),
            (ModelKind::Churn, Role::Challenger) => self.churn_challenger.as_ref(),
        }
    }

    /// This set with `model` serving as `kind`'s `role`; returns the model it replaces.
    fn with(&self, kind: ModelKind, role: Role, model: Model) -> (ModelSet, Option<Model>) {
        let mut next = self.clone();
        let replaced = match (kind, role) {
            (ModelKind::Fraud, Role::Champion) => Some(std::mem::replace(&mut next.fraud, model)),
            (ModelKind::Churn, Role::Champion) => Some(std::mem::replace(&mut next.churn, model)),
            (ModelKind::Fraud, Role::Challenger) => next.fraud_challenger.replace(model),
            (ModelKind::Churn, Role::Challenger) => next.churn_challenger.replace(model),
        };
        (next, replaced)
    }
}

/// A swapped-in artifact must say it is another model: the same `name@version` as the one
/// serving would make decisions from two different models indistinguishable.
fn newer_than(model: &Model, serving: Option<&str>, path: &Path) -> Result<()> {
    match serving {
        Some(label) if *label == *model.label() => Err(Error::ModelCheck {
            path: path.to_owned(),
            detail: format!(
                "is labelled {label}, the label of the model already serving; give a changed model a new version"
            ),
        }),
        _ => Ok(()),
    }
}

/// The model set the actors score with, swappable while they run.
#[derive(Debug)]
pub struct LiveModels(ArcSwap<ModelSet>);

impl LiveModels {
    pub fn new(models: ModelSet) -> LiveModels {
        LiveModels(ArcSwap::from_pointee(models))
    }

    /// The set in force now; hold it for the whole event so one version scores it.
    pub fn current(&self) -> Guard<Arc<ModelSet>> {
        self.0.load()
    }

    /// Puts `model` in force as `kind`'s `role`; returns the model it replaced.
    pub fn swap(&self, kind: ModelKind, role: Role, model: Model) -> Option<Model> {
        let mut replaced = None;
        self.0.rcu(|set| {
            let (next, old) = set.with(kind, role, model.clone());
            replaced = old;
            next
        });
        replaced
    }
}

/// One artifact file, the place in the set it fills, and the alert budgets (with the policy
/// keys that name them) it must record.
#[derive(Debug, Clone)]
struct ArtifactFile {
    path: PathBuf,
    kind: ModelKind,
    role: Role,
    budgets: Vec<(&'static str, f64)>,
    max_nodes: usize,
}

impl ArtifactFile {
    fn champion(config: &Config, kind: ModelKind) -> ArtifactFile {
        let path = match kind {
            ModelKind::Fraud => config.models.fraud_path(),
            ModelKind::Churn => config.models.churn_path(),
        };
        ArtifactFile::new(config, path, kind, Role::Champion)
    }

    fn challenger(config: &Config, kind: ModelKind) -> Option<ArtifactFile> {
        let path = match kind {
            ModelKind::Fraud => config.models.fraud_challenger.clone(),
            ModelKind::Churn => config.models.churn_challenger.clone(),
        }?;
        Some(ArtifactFile::new(config, path, kind, Role::Challenger))
    }

    fn new(config: &Config, path: PathBuf, kind: ModelKind, role: Role) -> ArtifactFile {
        let budgets = match kind {
            ModelKind::Fraud => config.policy.fraud_budgets().collect(),
            ModelKind::Churn => Vec::new(),
        };
        ArtifactFile {
            path,
            kind,
            role,
            budgets,
            max_nodes: config.models.max_nodes,
        }
    }

    fn load(&self) -> Result<Model> {
        load_checked(&self.path, self.kind, &self.budgets, self.max_nodes)
    }
}

/// Reads an artifact, checks it against the engine's features, gives it smoke scores (vectors
/// at the training means and three standard deviations either side must score probabilities),
/// and makes sure it records a threshold for each alert budget in `budgets` (policy key, rate).
/// A tree or boosted model of more than `max_nodes` nodes (`models.max_nodes`) is refused.
pub fn load_checked(
    path: &Path,
    kind: ModelKind,
    budgets: &[(&str, f64)],
    max_nodes: usize,
) -> Result<Model> {
    let names: &[&str] = match kind {
        ModelKind::Fraud => &FRAUD_FEATURES,
        ModelKind::Churn => &CHURN_FEATURES,
    };
    let model = ModelArtifact::load_within(path, kind, names, max_nodes)?;
    // Probes: the training means, and three spreads either side of them in every feature.
    let standardizer = &model.artifact().standardizer;
    for spread in [0.0, 3.0, -3.0] {
        let probe: Vec<f64> = standardizer
            .mean
            .iter()
            .zip(&standardizer.scale)
            .map(|(mean, scale)| mean + spread * scale)
            .collect();
        let probability = model.probability(&probe);
        if !(0.0..=1.0).contains(&probability) {
            return Err(Error::ModelCheck {
                path: path.to_owned(),
                detail: format!(
                    "scores {probability} on its training means {spread:+} standard deviations, not a probability"
                ),
            });
        }
    }
    if let Some((key, rate)) = unrecorded_budget(&model, budgets) {
        let recorded: Vec<String> = model
            .artifact()
            .alert_budgets
            .iter()
            .filter(|b| b.threshold.is_some())
            .map(|b| b.max_alert_rate.to_string())
            .collect();
        return Err(Error::ModelCheck {
            path: path.to_owned(),
            detail: format!(
                "{key} asks for alert rate {rate}, and the model records no threshold for it \
                 (it records: {}); retrain it with that budget or set a probability",
                if recorded.is_empty() {
                    "none".into()
                } else {
                    recorded.join(", ")
                }
            ),
        });
    }
    Ok(model)
}

/// The first alert budget in `budgets` (policy key, rate) that `model` records no threshold for.
pub(super) fn unrecorded_budget<'a>(
    model: &Model,
    budgets: &[(&'a str, f64)],
) -> Option<(&'a str, f64)> {
    budgets
        .iter()
        .copied()
        .find(|&(_, rate)| model.artifact().threshold_at(rate).is_none())
}

/// Polls the artifact files and swaps in each valid new version.
pub struct ModelWatcher {
    files: Vec<(ArtifactFile, Option<FileStamp>)>,
    telemetry: Telemetry,
    counts: Arc<WatchCounts>,
}

/// What a watcher has done so far, for the run summary.
#[derive(Debug, Default)]
pub struct WatchCounts {
    pub swaps: AtomicU64,
    pub rejections: AtomicU64,
}

/// What tells a changed file from the one last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStamp {
    modified: SystemTime,
    len: u64,
}

pub(super) fn stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: meta.modified().ok()?,
        len: meta.len(),
    })
}

impl ModelWatcher {
    /// Watches the files `config` names, as they are now: made before the models are loaded from
    /// them, so that a file replaced while they load is loaded again.
    pub fn new(config: &Config, telemetry: Telemetry) -> Self {
        let files = [
            Some(ArtifactFile::champion(config, ModelKind::Fraud)),
            Some(ArtifactFile::champion(config, ModelKind::Churn)),
            ArtifactFile::challenger(config, ModelKind::Fraud),
            ArtifactFile::challenger(config, ModelKind::Churn),
        ]
        .into_iter()
        .flatten()
        .map(|file| {
            let seen = stamp(&file.path);
            (file, seen)
        })
        .collect();
        ModelWatcher {
            files,
            telemetry,
            counts: Arc::default(),
        }
    }

    /// Counts that stay readable after the watcher is gone.
    pub fn counts(&self) -> Arc<WatchCounts> {
        self.counts.clone()
    }

    /// Checks every `interval`, swapping into `live`, until dropped.
    pub async fn run(mut self, live: Arc<LiveModels>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.check(&live);
        }
    }

    /// Loads each artifact whose file changed since it was last seen. A rejected file is not
    /// read again until it changes again.
    pub fn check(&mut self, live: &LiveModels) {
        for (file, seen) in &mut self.files {
            let now = stamp(&file.path);
            if now.is_none() || now == *seen {
                continue;
            }
            *seen = now;
            let serving = live.current().get(file.kind, file.role).map(Model::label);
            match file.load().and_then(|model| {
                newer_than(&model, serving.as_deref(), &file.path).map(|()| model)
            }) {
                Ok(model) => {
                    let label = model.label();
                    let replaced = live.swap(file.kind, file.role, model);
                    if let Some(old) = replaced.filter(|old| old.label() != label) {
                        self.telemetry.emit(ModelRetired {
                            label: &old.label(),
                            role: file.role.name(),
                        });
                    }
                    self.telemetry.emit(ModelLoaded {
                        label: &label,
                        role: file.role.name(),
                    });
                    self.counts.swaps.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    self.telemetry.emit(ModelRejected {
                        path: &file.path,
                        error: &error,
                    });
                    self.counts.rejections.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::shipped_artifact;
    use vigil_models::{AlertRate, Threshold};

    fn write_version(path: &Path, version: u32) {
        let text = std::fs::read_to_string(shipped_artifact("fraud.json")).unwrap();
        let mut artifact = ModelArtifact::from_json(&text, "shipped").unwrap();
        artifact.version = version;
        artifact.save(path).unwrap();
    }

    #[test]
    fn a_rejected_artifact_is_not_retried_until_it_changes_and_the_old_model_serves_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let fraud = dir.path().join("fraud.json");
        write_version(&fraud, 1);
        let mut config = Config::builtin();
        config.models.fraud = Some(fraud.clone());
        let mut watcher = ModelWatcher::new(&config, Telemetry::new());
        let live = LiveModels::new(ModelSet::load(&config).unwrap());
        let counts = watcher.counts();
        let serving = || live.current().fraud.label().to_string();

        watcher.check(&live);
        assert_eq!(counts.swaps.load(Ordering::Relaxed), 0, "unchanged file");

        std::fs::write(&fraud, "{\"name\": \"fraud-gbdt\"").unwrap();
        watcher.check(&live);
        watcher.check(&live);
        assert_eq!(
            counts.rejections.load(Ordering::Relaxed),
            1,
            "rejected once"
        );
        assert_eq!(serving(), "fraud-gbdt@1");

        write_version(&fraud, 2);
        watcher.check(&live);
        assert_eq!(counts.swaps.load(Ordering::Relaxed), 1);
        assert_eq!(serving(), "fraud-gbdt@2");
        assert!(live.current().fraud_challenger.is_none());

        // A changed file under the label already serving is refused: decisions citing
        // fraud-gbdt@2 must all come from one model.
        let text = std::fs::read_to_string(&fraud).unwrap();
        std::fs::write(
            &fraud,
            text.replacen("\"trained_at\": \"", "\"trained_at\": \"x", 1),
        )
        .unwrap();
        watcher.check(&live);
        assert_eq!(counts.rejections.load(Ordering::Relaxed), 2);
        assert_eq!(counts.swaps.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_model_without_a_threshold_for_a_budget_the_policy_names_is_refused() {
        let mut config = Config::builtin();
        config.models.fraud = Some(shipped_artifact("fraud.json"));
        config.policy.fraud.freeze = Threshold::Budget(AlertRate {
            at_alert_rate: 0.0005,
        });
        let set = ModelSet::load(&config).unwrap();
        let recorded = set.fraud.artifact().threshold_at(0.0005).unwrap();
        assert!((0.0..=1.0).contains(&recorded));

        config.policy.fraud.freeze = Threshold::Budget(AlertRate {
            at_alert_rate: 0.0003,
        });
        let err = ModelSet::load(&config).unwrap_err().to_string();
        assert!(
            err.contains("policy.fraud.freeze asks for alert rate 0.0003")
                && err.contains("it records: 0.0001, 0.0002, 0.0005"),
            "{err}"
        );
    }
}
