//! `vigil replay`: labelled history through the full engine (decoder, router, customer
//! actors, features, models, policy and latency budget) with a candidate model as champion
//! and optionally a second one as challenger, with no side effects: the decisions go to files
//! of the run's own, the state store is temporary, no metrics listener is opened and no model
//! file is watched.
//!
//! Every scored event is audited (features, label, both scores and both actions). From that
//! the report measures each model's quality against the labels (AUPRC, ROC AUC, recall at a 1%
//! alert rate on good traffic) and, with a challenger, which events and customers would be
//! decided differently and how quality moves. With analysts' verdicts (`labels`, the console's
//! feedback file), it also reports, per fraud action, the precision analysts confirmed.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::sync::mpsc;
use vigil_models::{AlertBudgetPoint, Evaluation, ModelArtifact, ModelKind, Threshold};

use vigil_engine::config::Config;
use vigil_engine::decision::DecisionKind;
use vigil_engine::feedback::{FeedbackLabels, Verdict};
use vigil_engine::outcome::Audit;
use vigil_engine::pipeline::{self, RunOptions};
use vigil_engine::publish::RunSummary;

use crate::connectors;

/// The alert budget on good traffic at which recall is reported.
pub const MAX_ALERT_RATE: f64 = 0.01;

/// At most this many changed events are listed in the report; all are counted.
const LISTED_CHANGES: usize = 1000;

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Labelled history (`file:…`, `generate:…`).
    pub input: String,
    pub mapping: Option<PathBuf>,
    /// The candidate champion; its kind says which model it replaces.
    pub model: PathBuf,
    pub challenger: Option<PathBuf>,
    /// The JSON report; decisions, shadow decisions and dead letters go beside it.
    pub report: PathBuf,
    /// Analysts' verdicts (the console's feedback file), for the precision they confirmed.
    pub labels: Option<PathBuf>,
    pub config: Config,
}

/// The replay report.
#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub input: String,
    pub kind: ModelKind,
    pub records: u64,
    pub scored: u64,
    pub dead_letters: u64,
    pub elapsed_s: f64,
    pub events_per_second: f64,
    /// Where the run's outputs are.
    pub decisions_file: PathBuf,
    pub shadow_file: Option<PathBuf>,
    pub dead_letters_file: PathBuf,
    pub champion: ModelReport,
    pub challenger: Option<ModelReport>,
    pub diff: Option<DecisionDiff>,
}

/// One model's decisions (on the replayed kind's events) and quality over the replay.
#[derive(Debug, Serialize)]
pub struct ModelReport {
    pub model: String,
    pub decisions: BTreeMap<&'static str, u64>,
    /// Against the labels of the events this model scored; `None` without labels.
    pub quality: Option<Quality>,
    /// Per fraud action, how analysts found the decisions they gave a verdict on; `None`
    /// without `--labels`.
    pub confirmed: Option<BTreeMap<&'static str, Reviewed>>,
}

/// The decisions of one action that analysts reviewed, and what they found.
#[derive(Debug, Default, Serialize)]
pub struct Reviewed {
    pub decisions: u64,
    pub reviewed: u64,
    pub confirmed_fraud: u64,
    pub false_positive: u64,
    pub released: u64,
    /// Confirmed fraud of those reviewed; `None` when none were.
    pub confirmed_precision: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Quality {
    /// Ranking quality, and the operating point at the configured alert (fraud) or outreach
    /// (churn) threshold.
    pub evaluation: Evaluation,
    /// Recall when at most 1% of good events may alert, at the best threshold in hindsight.
    pub at_alert_budget: AlertBudgetPoint,
    /// The model's own alert-budget thresholds (chosen on its calibration rows at training)
    /// applied to the replay: how far the budgets held, and what they caught.
    pub at_model_budgets: Vec<BudgetReplay>,
    /// Labelled positives the model froze or alerted on, of all labelled positives.
    pub positives_actioned: u64,
    pub positives: u64,
}

/// One of the model's recorded alert budgets, on the replayed events.
#[derive(Debug, Serialize)]
pub struct BudgetReplay {
    /// The budget: the share of good traffic the threshold was chosen to alert on.
    pub max_alert_rate: f64,
    pub threshold: f64,
    /// The share of good replayed events at or above the threshold.
    pub alert_rate: f64,
    pub precision: f64,
    pub recall: f64,
    /// Recall at this threshold on the calibration rows, when it was chosen.
    pub validation_recall: f64,
}

/// How the challenger would have decided differently.
#[derive(Debug, Serialize)]
pub struct DecisionDiff {
    pub events_changed: u64,
    pub customers_changed: u64,
    /// `"none → alert"` style transitions and how often each happened.
    pub transitions: BTreeMap<String, u64>,
    /// Challenger minus champion.
    pub auprc_delta: Option<f64>,
    pub recall_at_alert_budget_delta: Option<f64>,
    /// The first changed events, in publication order.
    pub changes: Vec<Change>,
}

#[derive(Debug, Serialize)]
pub struct Change {
    pub event_id: String,
    pub customer_id: String,
    pub event_ts: i64,
    pub champion: Option<DecisionKind>,
    pub challenger: Option<DecisionKind>,
    pub label: Option<bool>,
}

/// Runs the replay and writes its report and outputs.
pub async fn replay(options: ReplayOptions) -> anyhow::Result<ReplayReport> {
    let champion = read_artifact(&options.model)?;
    let kind = champion.kind;
    let mut artifacts = (champion, None);
    if let Some(path) = &options.challenger {
        let challenger = read_artifact(path)?;
        anyhow::ensure!(
            challenger.kind == kind,
            "the challenger {} is a {} model, the champion {} a {kind} model",
            path.display(),
            challenger.kind,
            options.model.display()
        );
        artifacts.1 = Some(challenger);
    }
    let mut config = options.config.clone();
    let models = &mut config.models;
    models.watch_interval = Duration::ZERO;
    match kind {
        ModelKind::Fraud => {
            models.fraud = Some(options.model.clone());
            models.fraud_challenger = options.challenger.clone();
        }
        ModelKind::Churn => {
            models.churn = Some(options.model.clone());
            models.churn_challenger = options.challenger.clone();
        }
    }

    let beside = |suffix: &str| options.report.with_extension(suffix);
    let decisions_file = beside("decisions.jsonl");
    let shadow_file = options.challenger.as_ref().map(|_| beside("shadow.jsonl"));
    let dead_letters_file = beside("dead-letters.jsonl");
    // A replay starts afresh: file sinks append, so clear what an earlier replay left.
    for file in [
        Some(&decisions_file),
        shadow_file.as_ref(),
        Some(&dead_letters_file),
    ]
    .into_iter()
    .flatten()
    {
        remove_if_present(file)?;
    }
    let spec = |path: &Path| format!("file:{}", path.display());
    let mut run = RunOptions::new(
        config,
        &options.input,
        &spec(&decisions_file),
        &spec(&dead_letters_file),
    );
    run.connectors = connectors();
    run.mapping = options.mapping.clone();
    if let Some(shadow) = &shadow_file {
        run.shadow = spec(shadow);
    }
    let (audits, mut audit_rx) = mpsc::unbounded_channel();
    run.audit = Some(audits);
    let collect = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(audit) = audit_rx.recv().await {
            all.push(audit);
        }
        all
    });
    let summary = pipeline::run(run, std::future::pending()).await?;
    let audits = collect.await.context("audit collector failed")?;
    let verdicts = options
        .labels
        .as_deref()
        .map(FeedbackLabels::read)
        .transpose()?;

    let report = build_report(
        &options,
        kind,
        (&artifacts.0, artifacts.1.as_ref()),
        (&summary, &audits, verdicts.as_ref()),
        (decisions_file, shadow_file, dead_letters_file),
    );
    let json = serde_json::to_string_pretty(&report).expect("reports serialize");
    std::fs::write(&options.report, json + "\n")
        .with_context(|| format!("cannot write the report {}", options.report.display()))?;
    Ok(report)
}

/// An artifact, for its kind, `name@version` and alert budgets; the engine checks it fully
/// when it loads it.
fn read_artifact(path: &Path) -> anyhow::Result<ModelArtifact> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read model artifact {}", path.display()))?;
    Ok(ModelArtifact::from_json(
        &text,
        &path.display().to_string(),
    )?)
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot clear {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn build_report(
    options: &ReplayOptions,
    kind: ModelKind,
    (champion_artifact, challenger_artifact): (&ModelArtifact, Option<&ModelArtifact>),
    (summary, audits, verdicts): (&RunSummary, &[Audit], Option<&FeedbackLabels>),
    (decisions_file, shadow_file, dead_letters_file): (PathBuf, Option<PathBuf>, PathBuf),
) -> ReplayReport {
    // Only the replayed kind's events: the other kind's champion is the configured one.
    let audits: Vec<&Audit> = audits.iter().filter(|a| a.kind == kind).collect();
    let threshold = options.config.policy.threshold(kind);
    let champion = model_report(
        champion_artifact,
        (threshold, verdicts),
        &audits,
        |a| a.score,
        |a| a.decision,
    );
    let challenger = challenger_artifact.map(|artifact| {
        model_report(
            artifact,
            (threshold, verdicts),
            &audits,
            |a| a.challenger_score,
            |a| a.challenger_decision,
        )
    });
    let diff = challenger
        .as_ref()
        .map(|challenger| diff(&audits, &champion, challenger));
    ReplayReport {
        input: options.input.clone(),
        kind,
        records: summary.records,
        scored: summary.scored,
        dead_letters: summary.dead_letters,
        elapsed_s: summary.elapsed.as_secs_f64(),
        events_per_second: summary.events_per_second(),
        decisions_file,
        shadow_file,
        dead_letters_file,
        champion,
        challenger,
        diff,
    }
}

fn model_report(
    artifact: &ModelArtifact,
    (threshold, verdicts): (Threshold, Option<&FeedbackLabels>),
    audits: &[&Audit],
    score: impl Fn(&Audit) -> Option<f64>,
    decision: impl Fn(&Audit) -> Option<DecisionKind>,
) -> ModelReport {
    // Both models' decisions counted alike: on the replayed kind's events only.
    let mut counts = [0u64; DecisionKind::COUNT];
    for d in audits.iter().filter_map(|a| decision(a)) {
        counts[d.index()] += 1;
    }
    let scored: Vec<(f64, bool)> = audits
        .iter()
        .filter_map(|a| Some((score(a)?, a.label?)))
        .collect();
    let positives = scored.iter().filter(|(_, y)| *y).count() as u64;
    let positives_actioned = audits
        .iter()
        .filter(|a| a.label == Some(true) && decision(a).is_some())
        .count() as u64;
    // A budget the artifact has no threshold for flags nothing (the engine would not load it).
    let threshold = threshold.resolve(artifact).unwrap_or(1.0);
    let quality = (!scored.is_empty()).then(|| Quality {
        evaluation: Evaluation::of(&scored, threshold),
        at_alert_budget: AlertBudgetPoint::of(&scored, MAX_ALERT_RATE),
        at_model_budgets: artifact
            .alert_budgets
            .iter()
            .filter_map(|budget| {
                let threshold = budget.threshold?;
                let replayed = Evaluation::of(&scored, threshold);
                Some(BudgetReplay {
                    max_alert_rate: budget.max_alert_rate,
                    threshold,
                    alert_rate: replayed.negative_alert_rate,
                    precision: replayed.precision,
                    recall: replayed.recall,
                    validation_recall: budget.recall,
                })
            })
            .collect(),
        positives_actioned,
        positives,
    });
    ModelReport {
        model: artifact.label(),
        decisions: DecisionKind::ALL
            .iter()
            .map(|d| (d.name(), counts[d.index()]))
            .collect(),
        quality,
        confirmed: verdicts.map(|verdicts| confirmed(audits, verdicts, decision)),
    }
}

/// Per fraud action, what analysts found of the decisions they reviewed.
fn confirmed(
    audits: &[&Audit],
    verdicts: &FeedbackLabels,
    decision: impl Fn(&Audit) -> Option<DecisionKind>,
) -> BTreeMap<&'static str, Reviewed> {
    let mut by_action = BTreeMap::new();
    for action in [DecisionKind::Freeze, DecisionKind::Alert] {
        let mut r = Reviewed::default();
        for a in audits.iter().filter(|a| decision(a) == Some(action)) {
            r.decisions += 1;
            let Some(verdict) = verdicts.verdict(&a.event_id) else {
                continue;
            };
            r.reviewed += 1;
            *match verdict {
                Verdict::ConfirmedFraud => &mut r.confirmed_fraud,
                Verdict::FalsePositive => &mut r.false_positive,
                Verdict::Released => &mut r.released,
            } += 1;
        }
        r.confirmed_precision =
            (r.reviewed > 0).then(|| r.confirmed_fraud as f64 / r.reviewed as f64);
        by_action.insert(action.name(), r);
    }
    by_action
}

fn diff(audits: &[&Audit], champion: &ModelReport, challenger: &ModelReport) -> DecisionDiff {
    let mut transitions = BTreeMap::new();
    let mut customers = HashSet::new();
    let mut changes = Vec::new();
    let mut events_changed = 0;
    let name = |d: Option<DecisionKind>| d.map_or("none", DecisionKind::name);
    for a in audits
        .iter()
        .filter(|a| a.challenger_score.is_some() && a.decision != a.challenger_decision)
    {
        events_changed += 1;
        customers.insert(a.customer_id.as_str());
        *transitions
            .entry(format!(
                "{} → {}",
                name(a.decision),
                name(a.challenger_decision)
            ))
            .or_insert(0) += 1;
        if changes.len() < LISTED_CHANGES {
            changes.push(Change {
                event_id: a.event_id.clone(),
                customer_id: a.customer_id.clone(),
                event_ts: a.event_ts,
                champion: a.decision,
                challenger: a.challenger_decision,
                label: a.label,
            });
        }
    }
    let delta = |f: fn(&Quality) -> f64| {
        Some(f(challenger.quality.as_ref()?) - f(champion.quality.as_ref()?))
    };
    DecisionDiff {
        events_changed,
        customers_changed: customers.len() as u64,
        transitions,
        auprc_delta: delta(|q| q.evaluation.auprc),
        recall_at_alert_budget_delta: delta(|q| q.at_alert_budget.recall),
        changes,
    }
}

/// The lines `vigil replay` prints.
pub fn describe(report: &ReplayReport) -> String {
    let mut out = format!(
        "Replayed {} records ({} scored, {} dead letters) in {:.1} s ({:.0} events/s).\n",
        report.records,
        report.scored,
        report.dead_letters,
        report.elapsed_s,
        report.events_per_second
    );
    for (role, model) in [
        ("champion", Some(&report.champion)),
        ("challenger", report.challenger.as_ref()),
    ] {
        let Some(model) = model else { continue };
        let decisions: Vec<String> = model
            .decisions
            .iter()
            .map(|(d, n)| format!("{d} {n}"))
            .collect();
        out += &format!("{role} {}: {}", model.model, decisions.join(", "));
        match &model.quality {
            Some(q) => {
                out += &format!(
                    "; {} labelled positives of {} events: AUPRC {:.3}, ROC AUC {:.3}, recall {:.3} at ≤{:.0}% alert rate on good traffic, {} positives actioned\n",
                    q.positives,
                    q.evaluation.rows,
                    q.evaluation.auprc,
                    q.evaluation.roc_auc,
                    q.at_alert_budget.recall,
                    MAX_ALERT_RATE * 100.0,
                    q.positives_actioned
                )
            }
            None => out += "; no labels, so no quality figures\n",
        }
        for (action, r) in model.confirmed.iter().flatten() {
            if let Some(precision) = r.confirmed_precision {
                out += &format!(
                    "  analysts reviewed {} of its {} {action} decisions: {:.1}% confirmed fraud ({} confirmed, {} false positives, {} released)\n",
                    r.reviewed,
                    r.decisions,
                    precision * 100.0,
                    r.confirmed_fraud,
                    r.false_positive,
                    r.released
                );
            }
        }
    }
    if let Some(diff) = &report.diff {
        out += &format!(
            "challenger decides {} events of {} customers differently",
            diff.events_changed, diff.customers_changed
        );
        if let (Some(auprc), Some(recall)) = (diff.auprc_delta, diff.recall_at_alert_budget_delta) {
            out += &format!("; AUPRC {auprc:+.3}, recall at the alert budget {recall:+.3}");
        }
        out += "\n";
    }
    out
}
