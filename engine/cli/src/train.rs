//! `vigil train`: replays labelled history through the engine's own decoder and feature code
//! (per customer, in stream order, with the same late tolerance as live), builds the training
//! matrix for one model kind, fits it with vigil-models and writes the artifact. The last part
//! of the history in event time (a share, or everything from a given time) is held out, and
//! the artifact records the model's quality on it.
//!
//! Churn can instead be trained point in time (`score_at` and `horizon`), as a CRM team means
//! churn: at each score time, every customer with activity before it is one row, with features
//! as of that time from the events before it, labelled churned when they do nothing in the
//! horizon after it.
//!
//! `featurize` is the replay itself, public so that the online/offline consistency test can
//! hold the features it computes against the live actors' for the same events.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Context;
use vigil_models::{Family, ModelArtifact, ModelKind, TrainingPlan, TrainingSet, STANDARD_BUDGETS};

use vigil_engine::config::Config;
use vigil_engine::event::{Event, EventKind};
use vigil_engine::feedback::FeedbackLabels;
use vigil_engine::scoring::features::{ChurnVector, Observation, CHURN_FEATURES, FRAUD_FEATURES};

use crate::history::{replay_events, CustomerHistories};

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub kind: ModelKind,
    /// Source spec of labelled history (`generate:…`, `file:…`, `-`).
    pub input: String,
    pub out: PathBuf,
    /// Model family and its settings.
    pub family: Family,
    /// Model name; defaults to the kind and family: `fraud-gbdt`, `churn-lr`, `fraud-tree`…
    pub name: Option<String>,
    /// Version; defaults to one more than the artifact already at `out`, else 1.
    pub version: Option<u32>,
    /// Share of the history, by event time, held out for evaluation.
    pub holdout: f64,
    /// Hold out the rows at or after this event time (ms) instead of a share.
    pub holdout_from: Option<i64>,
    /// A column mapping: the `file:` input is CSV history read through it.
    pub mapping: Option<PathBuf>,
    /// Also write the exact matrix trained and evaluated on here, as CSV.
    pub export_features: Option<PathBuf>,
    /// Churn point in time: one row per customer active before each of these times (ms),
    /// labelled by activity within `horizon` after it, instead of one row per event.
    pub score_at: Vec<i64>,
    pub horizon: Option<i64>,
    /// Analysts' verdicts (the console's feedback file), joined onto the history's fraud
    /// labels: each replaces the label of the payment it is about, or gives it one.
    pub labels: Option<PathBuf>,
    pub config: Config,
}

/// Labelled feature rows in stream order, with their event times and customers.
struct History {
    rows: Vec<f64>,
    labels: Vec<bool>,
    times: Vec<i64>,
    customers: Vec<String>,
    width: usize,
    rejected: u64,
}

pub async fn train(options: TrainOptions) -> anyhow::Result<ModelArtifact> {
    let names: &[&str] = match options.kind {
        ModelKind::Fraud => &FRAUD_FEATURES,
        ModelKind::Churn => &CHURN_FEATURES,
    };
    let history = match (options.kind, options.horizon) {
        (ModelKind::Churn, Some(horizon)) if !options.score_at.is_empty() => {
            point_in_time(&options, horizon).await?
        }
        (_, None) if options.score_at.is_empty() => replay(&options, names.len()).await?,
        _ => anyhow::bail!("--score-at and --horizon go together, and only with --kind churn"),
    };
    if history.rejected > 0 {
        tracing::warn!(
            rejected = history.rejected,
            "Some history records were invalid and skipped."
        );
    }
    let cut = cutoff(&history, options.holdout, options.holdout_from);
    let (train, holdout) = split(&history, cut);
    anyhow::ensure!(
        !train.is_empty(),
        "no labelled rows before the holdout cut in {}",
        options.input
    );
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| match options.family {
            Family::Logistic { .. } => format!("{}-lr", options.kind),
            Family::Tree { .. } => format!("{}-tree", options.kind),
            Family::Gbdt { .. } => format!("{}-gbdt", options.kind),
        });
    let plan = TrainingPlan {
        version: options
            .version
            .unwrap_or_else(|| next_version(&options.out, &name)),
        name,
        kind: options.kind,
        feature_names: names.iter().map(|n| n.to_string()).collect(),
        training_data: match &options.labels {
            Some(labels) => format!("{} with labels from {}", options.input, labels.display()),
            None => options.input.clone(),
        },
        trained_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        threshold: options.config.policy.threshold(options.kind),
        family: options.family,
        // The standard grid, and whatever the configured policy asks for beyond it.
        alert_budgets: STANDARD_BUDGETS
            .into_iter()
            .chain(options.config.policy.fraud_budgets().map(|(_, rate)| rate))
            .collect(),
    };
    let artifact = vigil_models::train(plan, &train, &holdout)?;
    artifact.save(&options.out)?;
    if let Some(path) = &options.export_features {
        export(path, names, &history, cut, &artifact)
            .with_context(|| format!("cannot write the feature export {}", path.display()))?;
    }
    Ok(artifact)
}

/// Writes every labelled row as CSV: the features in model order, then `label`, `event_ts`
/// (ms), `customer_id`, `holdout` (1 for rows at or after the cut) and `vigil_score`, the
/// trained model's probability, so another tool can be held to the same rows.
fn export(
    path: &std::path::Path,
    names: &[&str],
    history: &History,
    cut: i64,
    artifact: &ModelArtifact,
) -> anyhow::Result<()> {
    let model = artifact.clone().into_model(artifact.kind, names)?;
    let mut out = csv::Writer::from_path(path)?;
    let header = ["label", "event_ts", "customer_id", "holdout", "vigil_score"];
    out.write_record(names.iter().chain(&header))?;
    let rows = history.rows.chunks_exact(history.width);
    for (i, row) in rows.enumerate() {
        let mut record: Vec<String> = row.iter().map(f64::to_string).collect();
        record.extend([
            u8::from(history.labels[i]).to_string(),
            history.times[i].to_string(),
            history.customers[i].clone(),
            u8::from(history.times[i] >= cut).to_string(),
            model.probability(row).to_string(),
        ]);
        out.write_record(&record)?;
    }
    out.flush()?;
    Ok(())
}

async fn replay(options: &TrainOptions, width: usize) -> anyhow::Result<History> {
    let mut history = History {
        rows: Vec::new(),
        labels: Vec::new(),
        times: Vec::new(),
        customers: Vec::new(),
        width,
        rejected: 0,
    };
    let mut join = match &options.labels {
        Some(_) if options.kind != ModelKind::Fraud => {
            anyhow::bail!("--labels holds analysts' fraud verdicts; it goes with --kind fraud")
        }
        Some(path) => Some(LabelJoin::new(FeedbackLabels::read(path)?)),
        None => None,
    };
    history.rejected = featurize(options, |event, values, label| {
        let label = match &mut join {
            Some(join) => join.apply(&event.event_id, label),
            None => label,
        };
        if let Some(label) = label {
            history.rows.extend_from_slice(values);
            history.labels.push(label);
            history.times.push(event.ts);
            if options.export_features.is_some() {
                history.customers.push(event.customer_id.clone());
            }
        }
    })
    .await?;
    anyhow::ensure!(
        !history.labels.is_empty(),
        "{} holds no labelled {} rows",
        options.input,
        options.kind
    );
    if let Some(join) = join {
        tracing::info!(
            changed = join.changed,
            added = join.added,
            kept = join.kept,
            not_in_history = join.verdicts - (join.changed + join.added + join.kept),
            "Analysts' verdicts joined onto the history's labels."
        );
    }
    Ok(history)
}

/// Analysts' verdicts applied to the history's fraud labels, counted as they change a label,
/// give one to a payment without, or agree with it.
struct LabelJoin {
    labels: FeedbackLabels,
    verdicts: u64,
    changed: u64,
    added: u64,
    kept: u64,
}

impl LabelJoin {
    fn new(labels: FeedbackLabels) -> LabelJoin {
        LabelJoin {
            verdicts: labels.len() as u64,
            labels,
            changed: 0,
            added: 0,
            kept: 0,
        }
    }

    /// The label of `event_id`: the analyst's verdict when there is one, else `label`.
    fn apply(&mut self, event_id: &str, label: Option<bool>) -> Option<bool> {
        let Some(verdict) = self.labels.verdict(event_id) else {
            return label;
        };
        let fraud = verdict.is_fraud();
        match label {
            None => self.added += 1,
            Some(l) if l == fraud => self.kept += 1,
            Some(_) => self.changed += 1,
        }
        Some(fraud)
    }
}

/// One score time's rows, taken as the history passed it: each customer active before it with
/// their churn features as of it, and the customers seen active within the horizon after it.
struct Snapshot {
    at: i64,
    rows: Vec<(String, ChurnVector)>,
    active: HashSet<String>,
}

/// Churn rows point in time: at each score time, every customer active before it, with the
/// churn features as of it, labelled churned when they do nothing in `[time, time + horizon)`.
/// A score time whose horizon runs past the end of the history is left out, since who churned
/// then is not yet known. The history is read once, in stream order: an event arriving after a
/// score time's rows were taken does not change them, as it could not have live.
async fn point_in_time(options: &TrainOptions, horizon: i64) -> anyhow::Result<History> {
    let mut times = options.score_at.clone();
    times.sort_unstable();
    times.dedup();
    let mut customers = CustomerHistories::new(&options.config);
    let mut taken: Vec<Snapshot> = Vec::new();
    let mut next = 0;
    let mut newest = i64::MIN;
    let undecodable = replay_events(
        &options.input,
        options.mapping.clone(),
        &options.config,
        |event| {
            while next < times.len() && event.ts >= times[next] {
                let at = times[next];
                let rows = customers
                    .iter()
                    .map(|(id, f)| (id.clone(), f.churn_at(at)))
                    .collect();
                taken.push(Snapshot {
                    at,
                    rows,
                    active: HashSet::new(),
                });
                next += 1;
            }
            newest = newest.max(event.ts);
            for snapshot in &mut taken {
                let at = snapshot.at;
                if event.ts >= at && event.ts < at.saturating_add(horizon) {
                    snapshot.active.insert(event.customer_id.clone());
                }
            }
            customers.observe(&event);
        },
    )
    .await?;
    let mut history = History {
        rows: Vec::new(),
        labels: Vec::new(),
        times: Vec::new(),
        customers: Vec::new(),
        width: CHURN_FEATURES.len(),
        rejected: undecodable + customers.late(),
    };
    let known = |at: i64| at.saturating_add(horizon) <= newest;
    for mut snapshot in taken.into_iter().filter(|s| known(s.at)) {
        // Customers in a fixed order, so the matrix is the same from run to run.
        snapshot.rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (customer, row) in snapshot.rows {
            history.rows.extend_from_slice(&row);
            history.labels.push(!snapshot.active.contains(&customer));
            history.times.push(snapshot.at);
            history.customers.push(customer);
        }
    }
    anyhow::ensure!(
        !history.labels.is_empty(),
        "no score time in {:?} has customers before it and its whole horizon inside {}",
        options.score_at,
        options.input
    );
    Ok(history)
}

/// Replays the history through the engine's decoder and feature code, one `CustomerFeatures`
/// per customer in stream order with the live late tolerance, and hands every event that
/// yields a row of `options.kind` to `row` with its features and label. Returns how many
/// records were rejected (undecodable or too late), as live would dead-letter them.
pub async fn featurize(
    options: &TrainOptions,
    mut row: impl FnMut(&Event, &[f64], Option<bool>),
) -> anyhow::Result<u64> {
    let mut customers = CustomerHistories::new(&options.config);
    let undecodable = replay_events(
        &options.input,
        options.mapping.clone(),
        &options.config,
        |event| {
            let Some(observation) = customers.observe(&event) else {
                return;
            };
            let label = event.label.unwrap_or_default();
            match (&observation, options.kind) {
                (Observation::Fraud(v), ModelKind::Fraud) => row(&event, v, label.fraud),
                (Observation::Churn(v), ModelKind::Churn)
                    if !matches!(event.kind, EventKind::Payment(_)) =>
                {
                    row(&event, v, label.churn)
                }
                _ => {}
            }
        },
    )
    .await?;
    Ok(undecodable + customers.late())
}

/// The event time from which rows are held out: `holdout_from`, or else the time below which
/// `1 - holdout` of the rows fall.
fn cutoff(history: &History, holdout: f64, holdout_from: Option<i64>) -> i64 {
    holdout_from.unwrap_or_else(|| {
        let mut times = history.times.clone();
        times.sort_unstable();
        let cut_index = ((times.len() as f64) * (1.0 - holdout.clamp(0.0, 0.9))) as usize;
        times.get(cut_index).copied().unwrap_or(i64::MAX)
    })
}

/// Rows before `cutoff` train; rows at or after it are held out.
fn split(history: &History, cutoff: i64) -> (TrainingSet, TrainingSet) {
    let mut train = TrainingSet::new(history.width);
    let mut held = TrainingSet::new(history.width);
    for ((row, &label), &ts) in history
        .rows
        .chunks_exact(history.width)
        .zip(&history.labels)
        .zip(&history.times)
    {
        if ts < cutoff {
            train.push(row, label);
        } else {
            held.push(row, label);
        }
    }
    (train, held)
}

fn next_version(out: &std::path::Path, name: &str) -> u32 {
    std::fs::read_to_string(out)
        .ok()
        .and_then(|text| ModelArtifact::from_json(&text, "previous artifact").ok())
        .filter(|previous| previous.name == name)
        .map_or(1, |previous| previous.version + 1)
}

/// The one-paragraph report `vigil train` prints.
pub fn describe(artifact: &ModelArtifact) -> anyhow::Result<String> {
    let m = &artifact.training_metrics;
    let holdout = m.holdout.as_ref().context("no holdout rows")?;
    let mut text = format!(
        "{} ({} {}): {} training rows ({} positive), {} holdout rows ({} positive); holdout AUPRC {:.3}, ROC AUC {:.3}, at {:.4}: precision {:.3}, recall {:.3}, alert rate on negatives {:.5}",
        artifact.label(),
        artifact.kind,
        artifact.algorithm.family(),
        m.train_rows,
        m.train_positives,
        m.holdout_rows,
        m.holdout_positives,
        holdout.auprc,
        holdout.roc_auc,
        holdout.threshold,
        holdout.precision,
        holdout.recall,
        holdout.negative_alert_rate,
    );
    match &artifact.calibration {
        Some(c) => text += &format!(
            "\ncalibrated on the last {} training rows ({} positive), kept out of fitting: probability = σ({:.4} × log-odds {:+.4})",
            c.rows, c.positives, c.slope, c.offset
        ),
        None => text += &format!(
            "\nnot calibrated: the last {} training rows, kept out of fitting, hold {} positives; scores are the class-weighted model's",
            m.calibration_rows, m.calibration_positives
        ),
    }
    let budgets: Vec<String> = artifact
        .alert_budgets
        .iter()
        .map(|b| match b.threshold {
            Some(t) => format!(
                "{}% → {t:.4} (recall {:.3})",
                b.max_alert_rate * 100.0,
                b.recall
            ),
            None => format!("{}% → none", b.max_alert_rate * 100.0),
        })
        .collect();
    if !budgets.is_empty() {
        text += &format!(
            "\nalert budgets on good traffic there: {}",
            budgets.join(", ")
        );
    }
    Ok(text)
}
