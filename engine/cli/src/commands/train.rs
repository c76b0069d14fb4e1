//! `vigil train`: fit a fraud or churn model on labelled history and write its artifact.

use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;
use vigil::train::{self, TrainOptions};
use vigil_models::{Family, ModelKind};

use super::{parse_event_time, ConfigArgs};

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Fraud,
    Churn,
}

#[derive(Clone, Copy, ValueEnum)]
enum AlgorithmArg {
    /// Logistic regression (linfa-logistic); reasons are weight × standardised value.
    Logistic,
    /// Decision tree (linfa-trees); reasons are the decision path's moves.
    Tree,
    /// Gradient-boosted trees (histogram boosting, log-loss); reasons are every tree's path.
    Gbdt,
}

#[derive(clap::Args)]
pub struct TrainArgs {
    #[arg(long, value_enum)]
    kind: KindArg,
    /// Labelled history: generate:SCENARIO.toml, file:EVENTS.jsonl or -.
    #[arg(long)]
    input: String,
    /// Where to write the model artifact (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Model family.
    #[arg(long, value_enum, default_value = "gbdt")]
    algorithm: AlgorithmArg,
    /// Deepest a tree may grow (--algorithm tree, gbdt).
    #[arg(long, default_value_t = 8)]
    max_depth: usize,
    /// Leaves per boosted tree (--algorithm gbdt).
    #[arg(long, default_value_t = 31)]
    max_leaves: usize,
    /// Most boosting rounds; early stopping on the last tenth of the training rows usually
    /// ends sooner (--algorithm gbdt).
    #[arg(long, default_value_t = 500)]
    max_rounds: usize,
    /// Shrinkage of each boosted tree (--algorithm gbdt).
    #[arg(long, default_value_t = 0.1)]
    learning_rate: f64,
    /// Model name; defaults to the kind and family: fraud-gbdt, churn-lr, fraud-tree...
    #[arg(long)]
    name: Option<String>,
    /// Model version; defaults to one more than the artifact at --out.
    #[arg(long)]
    version: Option<u32>,
    /// Share of the history, by event time, held out for evaluation.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
    /// Hold out everything from this event time on instead (UTC: 2019-01-03, 2019-01-03 12:00:00
    /// or RFC 3339).
    #[arg(long, value_parser = parse_event_time, conflicts_with = "holdout")]
    holdout_from: Option<i64>,
    /// Column mapping (TOML) for a CSV --input file:PATH, e.g. models/mappings/sparkov.toml.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// Also write the matrix trained and evaluated on as CSV: features, label, event time,
    /// customer, holdout flag and the trained model's score (see models/compare/).
    #[arg(long, value_name = "PATH.csv")]
    export_features: Option<PathBuf>,
    /// Churn point in time: at each of these times (comma-separated, UTC), every customer
    /// active before it is one row with features as of it, labelled by --horizon. Later times
    /// are held out first (with --holdout-from, the times at or after it).
    #[arg(long, value_parser = parse_event_time, value_delimiter = ',', requires = "horizon")]
    score_at: Vec<i64>,
    /// With --score-at: a customer doing nothing for this long after a score time churned.
    #[arg(long, value_parser = humantime::parse_duration, requires = "score_at")]
    horizon: Option<std::time::Duration>,
    /// Analysts' verdicts from the risk console (its feedback file, console.feedback), joined
    /// onto the history by event id: each replaces the fraud label of the payment it is about,
    /// or gives it one (--kind fraud).
    #[arg(long, value_name = "FEEDBACK.jsonl")]
    labels: Option<PathBuf>,
    /// Late tolerance, and the thresholds the evaluation reports at.
    #[command(flatten)]
    config: ConfigArgs,
}

pub async fn execute(args: TrainArgs) -> anyhow::Result<()> {
    let options = TrainOptions {
        kind: match args.kind {
            KindArg::Fraud => ModelKind::Fraud,
            KindArg::Churn => ModelKind::Churn,
        },
        input: args.input,
        out: args.out.clone(),
        family: match args.algorithm {
            AlgorithmArg::Logistic => Family::Logistic { alpha: 1.0 },
            AlgorithmArg::Tree => Family::Tree {
                max_depth: args.max_depth,
                min_leaf: 5.0,
            },
            AlgorithmArg::Gbdt => Family::Gbdt {
                learning_rate: args.learning_rate,
                max_rounds: args.max_rounds,
                max_leaves: args.max_leaves,
                max_depth: args.max_depth,
            },
        },
        name: args.name,
        version: args.version,
        holdout: args.holdout,
        holdout_from: args.holdout_from,
        mapping: args.mapping,
        export_features: args.export_features,
        score_at: args.score_at,
        horizon: args.horizon.map(|h| h.as_millis() as i64),
        labels: args.labels,
        config: args.config.load()?,
    };
    let artifact = train::train(options).await.context("training failed")?;
    eprintln!("{}", train::describe(&artifact)?);
    eprintln!("Wrote {}.", args.out.display());
    Ok(())
}
