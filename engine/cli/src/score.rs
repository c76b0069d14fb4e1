//! `vigil score`: the churn list a CRM team pulls. History before a time is replayed through the
//! engine's own feature code, and every customer with activity before that time is scored by
//! the churn model as of it, however long they have been quiet (`CustomerFeatures::churn_at`).
//! Given a horizon, each customer is also labelled the way a CRM team measures churn (no
//! activity of any kind within the horizon after the time), and the list's ranking is
//! evaluated: ROC AUC, AUPRC and the precision of its top tenth.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use vigil_engine::config::Config;
use vigil_engine::scoring::models::load_checked;
use vigil_models::{Evaluation, ModelKind};

use crate::history::{replay_events, CustomerHistories};

#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Source spec of the history (`file:…` with a mapping, `generate:…`, `-`).
    pub input: String,
    pub mapping: Option<PathBuf>,
    /// Score as of this event time (ms); only events before it are read into the features.
    pub at: i64,
    /// Label each customer churned when they have no activity in `[at, at + horizon)` (ms).
    pub horizon: Option<i64>,
    /// The churn model artifact.
    pub model: PathBuf,
    pub config: Config,
}

/// One customer's line of the list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerScore {
    pub customer_id: String,
    pub score: f64,
    /// The feature that raised the score most, when one raised it.
    pub top_reason: Option<String>,
    /// With a horizon: no activity within it.
    #[serde(skip)]
    pub churned: Option<bool>,
}

/// How well the list ranks the customers who churned within the horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuality {
    pub customers: usize,
    pub churned: usize,
    pub roc_auc: f64,
    pub auprc: f64,
    /// Share of churners among the tenth of customers scored highest.
    pub top_tenth_precision: f64,
}

#[derive(Debug, Clone)]
pub struct ScoreReport {
    /// Highest score first.
    pub customers: Vec<CustomerScore>,
    /// Records that did not decode, and events refused as late.
    pub rejected: u64,
    pub model: String,
    pub quality: Option<ListQuality>,
}

pub async fn score(options: &ScoreOptions) -> anyhow::Result<ScoreReport> {
    let model = load_checked(
        &options.model,
        ModelKind::Churn,
        &[],
        options.config.models.max_nodes,
    )
    .with_context(|| format!("cannot load the churn model {}", options.model.display()))?;
    let horizon_end = options.horizon.map(|h| options.at.saturating_add(h));
    let mut customers = CustomerHistories::new(&options.config);
    let mut active: HashSet<String> = HashSet::new();
    let undecodable = replay_events(
        &options.input,
        options.mapping.clone(),
        &options.config,
        |event| {
            if event.ts < options.at {
                customers.observe(&event);
            } else if horizon_end.is_some_and(|end| event.ts < end) {
                active.insert(event.customer_id);
            }
        },
    )
    .await?;

    let mut scored: Vec<CustomerScore> = customers
        .iter()
        .map(|(customer_id, features)| {
            let score = model.score(&features.churn_at(options.at));
            let top_reason = score
                .reasons()
                .first()
                .filter(|r| r.contribution > 0.0)
                .map(|r| model.feature_name(r.feature).to_owned());
            let churned = options.horizon.map(|_| !active.contains(customer_id));
            CustomerScore {
                customer_id: customer_id.clone(),
                score: score.probability,
                top_reason,
                churned,
            }
        })
        .collect();
    // Highest first; ties by id, so the list is the same from run to run.
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.customer_id.cmp(&b.customer_id))
    });
    let quality = options.horizon.map(|_| quality(&scored));
    Ok(ScoreReport {
        customers: scored,
        rejected: undecodable + customers.late(),
        model: model.label().to_string(),
        quality,
    })
}

/// The ranking quality of `scored` (highest first) against its churn labels.
fn quality(scored: &[CustomerScore]) -> ListQuality {
    let labelled: Vec<(f64, bool)> = scored
        .iter()
        .map(|c| (c.score, c.churned == Some(true)))
        .collect();
    let evaluation = Evaluation::of(&labelled, 0.5);
    let tenth = labelled.len().div_ceil(10);
    let churned_in_top = labelled[..tenth].iter().filter(|(_, y)| *y).count();
    ListQuality {
        customers: labelled.len(),
        churned: evaluation.positives,
        roc_auc: evaluation.roc_auc,
        auprc: evaluation.auprc,
        top_tenth_precision: churned_in_top as f64 / tenth.max(1) as f64,
    }
}

/// Writes the list as CSV, `customer_id,score,top_reason`, highest score first.
pub fn write_csv(report: &ScoreReport, path: &Path) -> anyhow::Result<()> {
    let mut out =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    for customer in &report.customers {
        out.serialize(customer)?;
    }
    out.flush()?;
    Ok(())
}

/// What `vigil score` prints after the list is written.
pub fn describe(report: &ScoreReport) -> String {
    let mut text = format!(
        "Scored {} customers with {}; {} records rejected (undecodable or late).",
        report.customers.len(),
        report.model,
        report.rejected
    );
    if let Some(q) = &report.quality {
        text.push_str(&format!(
            "\nWithin the horizon {} of {} churned: ROC AUC {:.3}, AUPRC {:.3}, precision in the top tenth {:.3}.",
            q.churned, q.customers, q.roc_auc, q.auprc, q.top_tenth_precision
        ));
    }
    text
}
