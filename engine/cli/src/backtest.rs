//! `vigil replay --policy CANDIDATE.toml`: a policy backtest. Labelled history runs through the
//! full engine twice with the models in force, once under today's policy and once under the
//! candidate (a policy file, validated as the engine would load it), with no side effects. The
//! report compares the two: how each decides (counts per action, precision and recall of each
//! fraud action against the labels, the alert rate on good payments), which rules fired how
//! often and how precisely (counted from the decisions each run wrote), and the decision diff,
//! event by event.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::sync::mpsc;
use vigil_models::ModelKind;

use vigil_engine::config::{read_policy_file, Config};
use vigil_engine::decision::{Decision, DecisionKind};
use vigil_engine::pipeline::{self, RunOptions};

use crate::connectors;

/// At most this many changed events are listed in the report; all are counted.
const LISTED_CHANGES: usize = 1000;

#[derive(Debug, Clone)]
pub struct BacktestOptions {
    /// Labelled history (`file:…`, `generate:…`).
    pub input: String,
    pub mapping: Option<PathBuf>,
    /// The candidate policy file.
    pub policy: PathBuf,
    /// The JSON report; each run's decisions go beside it.
    pub report: PathBuf,
    /// Today's configuration, its policy included.
    pub config: Config,
}

#[derive(Debug, Serialize)]
pub struct BacktestReport {
    pub input: String,
    pub records: u64,
    /// Payments with a fraud label.
    pub labelled_payments: u64,
    pub labelled_fraud: u64,
    pub current: PolicyRun,
    pub candidate: PolicyRun,
    pub diff: PolicyDiff,
}

/// One policy's decisions over the history.
#[derive(Debug, Serialize)]
pub struct PolicyRun {
    /// `name@version`.
    pub policy: String,
    pub decisions_file: PathBuf,
    pub decisions: BTreeMap<&'static str, u64>,
    /// Freeze, and alert or freeze, against the fraud labels.
    pub actions: BTreeMap<&'static str, ActionQuality>,
    /// Good (labelled not fraud) payments acted on, as a share of all good payments.
    pub alert_rate: Option<f64>,
    /// Per rule (and `list:`/`tier:` cause), the decisions citing it.
    pub rules: BTreeMap<String, RuleStats>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ActionQuality {
    pub decided: u64,
    /// Of the decided payments with a label, the share that were fraud.
    pub precision: Option<f64>,
    /// Of the labelled fraud payments, the share decided so.
    pub recall: Option<f64>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct RuleStats {
    pub fired: u64,
    /// Of the labelled payments it fired on, the share that were fraud.
    pub precision: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct PolicyDiff {
    pub events_changed: u64,
    /// `"alert → freeze"` style transitions and how often each happened.
    pub transitions: BTreeMap<String, u64>,
    pub changes: Vec<PolicyChange>,
}

#[derive(Debug, Serialize)]
pub struct PolicyChange {
    pub customer_id: String,
    pub event_id: String,
    pub event_ts: i64,
    pub current: Option<DecisionKind>,
    pub candidate: Option<DecisionKind>,
    pub label: Option<bool>,
}

/// What a decision was about: the same event (or inactivity check) in both runs.
type Occasion = (String, String, i64);

fn occasion(d: &Decision) -> Occasion {
    (
        d.customer_id.clone(),
        d.event_id.clone(),
        d.timer_ts.unwrap_or(d.event_ts),
    )
}

/// Runs both policies over the history and writes the report.
pub async fn backtest(options: BacktestOptions) -> anyhow::Result<BacktestReport> {
    let current_config = options.config.clone();
    let mut candidate_config = options.config.clone();
    candidate_config.policy = read_policy_file(&options.policy, &options.config.policy)?;
    let beside = |suffix: &str| options.report.with_extension(suffix);
    let (current, labels, records) =
        run_policy(&options, current_config, &beside("current.decisions.jsonl")).await?;
    let (candidate, _, _) = run_policy(
        &options,
        candidate_config,
        &beside("candidate.decisions.jsonl"),
    )
    .await?;
    let labelled_payments = labels.len() as u64;
    let labelled_fraud = labels.values().filter(|l| **l).count() as u64;
    let report = BacktestReport {
        input: options.input.clone(),
        records,
        labelled_payments,
        labelled_fraud,
        diff: policy_diff(&current, &candidate, &labels),
        current: policy_run(&current, &labels),
        candidate: policy_run(&candidate, &labels),
    };
    let json = serde_json::to_string_pretty(&report).expect("reports serialize");
    std::fs::write(&options.report, json + "\n")
        .with_context(|| format!("cannot write the report {}", options.report.display()))?;
    Ok(report)
}

/// One run's decisions, by occasion.
struct Decided {
    policy: String,
    file: PathBuf,
    decisions: HashMap<Occasion, Decision>,
}

/// Runs the history under `config`'s policy; returns its decisions, the payments' fraud labels
/// and the records read.
async fn run_policy(
    options: &BacktestOptions,
    mut config: Config,
    decisions_file: &Path,
) -> anyhow::Result<(Decided, HashMap<Occasion, bool>, u64)> {
    config.models.watch_interval = Duration::ZERO;
    config.policy.watch_interval = None;
    let policy = format!("{}@{}", config.policy.name, config.policy.version);
    match std::fs::remove_file(decisions_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot clear {}", decisions_file.display()))
        }
        _ => {}
    }
    let mut run = RunOptions::new(
        config,
        &options.input,
        &format!("file:{}", decisions_file.display()),
        "discard",
    );
    run.connectors = connectors();
    run.mapping = options.mapping.clone();
    let (audits, mut audit_rx) = mpsc::unbounded_channel();
    run.audit = Some(audits);
    let collect = tokio::spawn(async move {
        let mut labels = HashMap::new();
        while let Some(a) = audit_rx.recv().await {
            if let (ModelKind::Fraud, Some(label)) = (a.kind, a.label) {
                labels.insert((a.customer_id, a.event_id, a.event_ts), label);
            }
        }
        labels
    });
    let summary = pipeline::run(run, std::future::pending()).await?;
    let labels = collect.await.context("audit collector failed")?;
    let text = std::fs::read_to_string(decisions_file).unwrap_or_default();
    let mut decisions = HashMap::new();
    for line in text.lines() {
        let d: Decision = serde_json::from_str(line).with_context(|| {
            format!("a decision in {} does not parse", decisions_file.display())
        })?;
        decisions.insert(occasion(&d), d);
    }
    Ok((
        Decided {
            policy,
            file: decisions_file.to_owned(),
            decisions,
        },
        labels,
        summary.records,
    ))
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn policy_run(run: &Decided, labels: &HashMap<Occasion, bool>) -> PolicyRun {
    let mut counts = [0u64; DecisionKind::COUNT];
    let mut rules: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for (key, d) in &run.decisions {
        counts[d.decision.index()] += 1;
        let label = labels.get(key);
        for rule in &d.rules {
            let entry = rules.entry(rule.to_string()).or_default();
            entry.0 += 1;
            entry.1 += u64::from(label.is_some());
            entry.2 += u64::from(label == Some(&true));
        }
    }
    let fraud = labels.values().filter(|l| **l).count() as u64;
    let good = labels.len() as u64 - fraud;
    let acted = |at_least: DecisionKind| {
        let decided: Vec<Option<&bool>> = run
            .decisions
            .iter()
            .filter(|(_, d)| d.decision >= at_least)
            .map(|(key, _)| labels.get(key))
            .collect();
        let labelled = decided.iter().filter(|l| l.is_some()).count() as u64;
        let caught = decided.iter().filter(|l| **l == Some(&true)).count() as u64;
        ActionQuality {
            decided: decided.len() as u64,
            precision: share(caught, labelled),
            recall: share(caught, fraud),
        }
    };
    let good_acted = run
        .decisions
        .iter()
        .filter(|(key, d)| d.decision >= DecisionKind::Alert && labels.get(*key) == Some(&false))
        .count() as u64;
    PolicyRun {
        policy: run.policy.clone(),
        decisions_file: run.file.clone(),
        decisions: DecisionKind::ALL
            .iter()
            .map(|d| (d.name(), counts[d.index()]))
            .collect(),
        actions: BTreeMap::from([
            ("freeze", acted(DecisionKind::Freeze)),
            ("alert_or_freeze", acted(DecisionKind::Alert)),
        ]),
        alert_rate: share(good_acted, good),
        rules: rules
            .into_iter()
            .map(|(rule, (fired, labelled, fraud))| {
                let stats = RuleStats {
                    fired,
                    precision: share(fraud, labelled),
                };
                (rule, stats)
            })
            .collect(),
    }
}

fn policy_diff(
    current: &Decided,
    candidate: &Decided,
    labels: &HashMap<Occasion, bool>,
) -> PolicyDiff {
    let mut occasions: Vec<&Occasion> = current
        .decisions
        .keys()
        .chain(candidate.decisions.keys())
        .collect();
    occasions.sort_by(|a, b| (a.2, &a.0, &a.1).cmp(&(b.2, &b.0, &b.1)));
    occasions.dedup();
    let name = |d: Option<DecisionKind>| d.map_or("none", DecisionKind::name);
    let mut diff = PolicyDiff {
        events_changed: 0,
        transitions: BTreeMap::new(),
        changes: Vec::new(),
    };
    for key in occasions {
        let was = current.decisions.get(key).map(|d| d.decision);
        let now = candidate.decisions.get(key).map(|d| d.decision);
        if was == now {
            continue;
        }
        diff.events_changed += 1;
        *diff
            .transitions
            .entry(format!("{} → {}", name(was), name(now)))
            .or_insert(0) += 1;
        if diff.changes.len() < LISTED_CHANGES {
            diff.changes.push(PolicyChange {
                customer_id: key.0.clone(),
                event_id: key.1.clone(),
                event_ts: key.2,
                current: was,
                candidate: now,
                label: labels.get(key).copied(),
            });
        }
    }
    diff
}

/// The lines `vigil replay --policy` prints.
pub fn describe(report: &BacktestReport) -> String {
    let mut out = format!(
        "Backtested {} records, {} labelled payments ({} fraud).\n",
        report.records, report.labelled_payments, report.labelled_fraud
    );
    let pct = |v: Option<f64>| {
        v.map_or("-".to_owned(), |v| match v * 100.0 {
            p if p > 0.0 && p < 1.0 => format!("{p:.3}%"),
            p => format!("{p:.1}%"),
        })
    };
    for (role, run) in [
        ("current", &report.current),
        ("candidate", &report.candidate),
    ] {
        let actions: Vec<String> = run
            .actions
            .iter()
            .map(|(a, q)| {
                format!(
                    "{a} {} (precision {}, recall {})",
                    q.decided,
                    pct(q.precision),
                    pct(q.recall)
                )
            })
            .collect();
        out += &format!(
            "{role} {}: {}; alert rate on good payments {}\n",
            run.policy,
            actions.join(", "),
            pct(run.alert_rate)
        );
        for (rule, stats) in &run.rules {
            out += &format!(
                "  {rule}: fired {}, precision {}\n",
                stats.fired,
                pct(stats.precision)
            );
        }
    }
    let transitions: Vec<String> = report
        .diff
        .transitions
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    out += &format!(
        "candidate decides {} events differently: {}\n",
        report.diff.events_changed,
        if transitions.is_empty() {
            "none".to_owned()
        } else {
            transitions.join(", ")
        }
    );
    out
}
