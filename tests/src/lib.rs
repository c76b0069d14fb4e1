//! Helpers for Vigil's end-to-end tests: running the whole pipeline on the embedded source
//! and sinks, and reading back what it published.

pub mod console;
pub mod fluvio;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vigil::train::{self, TrainOptions};
use vigil_engine::config::{Config, LatencyBudget};
use vigil_engine::decision::Decision;
use vigil_engine::outcome::Audit;
use vigil_engine::pipeline::{self, RunOptions};
use vigil_engine::publish::RunSummary;
use vigil_models::{Family, ModelArtifact, ModelKind};
use vigil_scenario::{Generator, Scenario};

/// A test fixture's path.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The records of the fixture `scenario` that are JSON (the malformed ones left out), in order.
pub fn scenario_records(scenario: &str) -> impl Iterator<Item = serde_json::Value> {
    Generator::new(Scenario::load(&fixture(scenario)).expect("scenario loads"))
        .filter_map(|r| serde_json::from_slice(&r.payload).ok())
}

/// The payments of the fixture `scenario`, in order.
pub fn scenario_payments(scenario: &str) -> impl Iterator<Item = serde_json::Value> {
    scenario_records(scenario).filter(|v| v["kind"] == "payment")
}

/// `binary` on the PATH, if it is there: for tests that drive a system tool and say they
/// were skipped without it.
pub fn on_path(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(binary))
        .find(|candidate| candidate.is_file())
}

/// What one run published.
pub struct Published {
    pub summary: RunSummary,
    pub decisions: Vec<Decision>,
    pub dead_letters: Vec<serde_json::Value>,
}

/// The built-in configuration with a latency budget that a debug build on a busy machine never
/// misses: these tests judge decisions, and a rules-only (degraded) decision is a different one.
pub fn test_config() -> Config {
    let mut config = Config::builtin();
    config.engine.latency_budget = LatencyBudget::uniform(std::time::Duration::from_secs(60));
    config
}

/// A run through every connector the `vigil` binary has, as the CLI would set it up.
pub fn run_options(config: Config, source: &str, sink: &str, dead_letter: &str) -> RunOptions {
    RunOptions {
        connectors: vigil::connectors(),
        ..RunOptions::new(config, source, sink, dead_letter)
    }
}

/// The shipped fraud model written to `path` as `{name}@{version}`, through a rename so that a
/// watching engine never sees half a file.
pub fn write_shipped_fraud(path: &Path, name: &str, version: u32) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/artifacts/fraud.json");
    let text = std::fs::read_to_string(shipped).expect("shipped fraud artifact");
    let mut artifact = ModelArtifact::from_json(&text, "shipped").expect("shipped artifact parses");
    artifact.name = name.into();
    artifact.version = version;
    let staging = path.with_extension("staging");
    artifact.save(&staging).expect("write staging artifact");
    std::fs::rename(staging, path).expect("rename artifact into place");
}

/// A complete policy file `name@version` at `path`: fraud thresholds `freeze` and `alert`, the
/// built-in churn policy, and `rules` (`[[rules]]` tables). Written through a rename, its time
/// moved on by `version` seconds, so that a watching engine tells it from the file before
/// even within the clock's resolution.
pub fn write_policy(
    path: &Path,
    name: &str,
    version: u32,
    (freeze, alert): (f64, f64),
    rules: &str,
) {
    let text = format!(
        r#"
        name = "{name}"
        version = {version}
        [fraud]
        freeze = {freeze}
        alert = {alert}
        [churn]
        outreach = 0.9
        cooldown = "7d"
        check_after = ["7d", "14d", "30d", "60d", "90d"]
        channels = ["push", "email", "sms"]
        {rules}
        "#
    );
    let staging = path.with_extension("staging");
    std::fs::write(&staging, text).expect("write staging policy");
    let file = std::fs::File::options()
        .write(true)
        .open(&staging)
        .expect("open staging policy");
    file.set_modified(
        std::time::SystemTime::now() + std::time::Duration::from_secs(u64::from(version)),
    )
    .expect("move the policy file's time on");
    std::fs::rename(staging, path).expect("rename policy into place");
}

/// Runs the generated scenario `fixture` with `config` to `decisions` (a JSON-lines file),
/// discarding dead letters, and returns the summary with every scored event's audit record.
pub async fn run_audited(
    config: Config,
    fixture_name: &str,
    decisions: &Path,
) -> (RunSummary, Vec<Audit>) {
    let mut options = run_options(
        config,
        &format!("generate:{}", fixture(fixture_name).display()),
        &format!("file:{}", decisions.display()),
        "discard",
    );
    let (audits, mut rx) = tokio::sync::mpsc::unbounded_channel();
    options.audit = Some(audits);
    let summary = pipeline::run(options, std::future::pending())
        .await
        .expect("pipeline run");
    let mut audits = Vec::new();
    while let Some(audit) = rx.recv().await {
        audits.push(audit);
    }
    (summary, audits)
}

/// Runs the pipeline from `source` to files in `dir` with the test configuration.
pub async fn run_to_files(source: &str, dir: &Path) -> Published {
    run_to_files_with(test_config(), source, dir, None).await
}

/// Runs the pipeline from `source` to files in `dir` with `config`, and with customer profiles
/// from the source spec `profiles` when given.
pub async fn run_to_files_with(
    config: Config,
    source: &str,
    dir: &Path,
    profiles: Option<String>,
) -> Published {
    run_with_reference(config, source, dir, profiles, None).await
}

/// `run_to_files_with`, the policy's lists changed by the source spec `lists`.
pub async fn run_to_files_with_lists(
    config: Config,
    source: &str,
    dir: &Path,
    lists: &str,
) -> Published {
    run_with_reference(config, source, dir, None, Some(lists.to_owned())).await
}

async fn run_with_reference(
    config: Config,
    source: &str,
    dir: &Path,
    profiles: Option<String>,
    lists: Option<String>,
) -> Published {
    let decisions = dir.join("decisions.jsonl");
    let dead_letters = dir.join("dead-letters.jsonl");
    let mut options = run_options(
        config,
        source,
        &format!("file:{}", decisions.display()),
        &format!("file:{}", dead_letters.display()),
    );
    options.profiles = profiles;
    options.lists = lists;
    let summary = pipeline::run(options, std::future::pending())
        .await
        .expect("pipeline run");
    Published {
        summary,
        decisions: read_lines(&decisions)
            .iter()
            .map(|l| serde_json::from_str(l).expect("decision JSON"))
            .collect(),
        dead_letters: read_lines(&dead_letters)
            .iter()
            .map(|l| serde_json::from_str(l).expect("dead-letter JSON"))
            .collect(),
    }
}

/// What a run wrote to its decision and shadow outputs.
pub struct Shadowed {
    pub summary: RunSummary,
    pub decisions: Vec<serde_json::Value>,
    pub shadow: Vec<serde_json::Value>,
}

/// Runs the fixture `scenario` with `config`, its decisions and shadow decisions to files in
/// `dir`, dead letters discarded.
pub async fn run_with_shadow(config: Config, scenario: &str, dir: &Path) -> Shadowed {
    let spec = |name: &str| format!("file:{}", dir.join(name).display());
    let mut options = run_options(
        config,
        &format!("generate:{}", fixture(scenario).display()),
        &spec("decisions.jsonl"),
        "discard",
    );
    options.shadow = spec("shadow.jsonl");
    let summary = pipeline::run(options, std::future::pending())
        .await
        .expect("pipeline run");
    let parse = |name: &str| -> Vec<serde_json::Value> {
        read_lines(&dir.join(name))
            .iter()
            .map(|l| serde_json::from_str(l).expect("decision JSON"))
            .collect()
    };
    Shadowed {
        summary,
        decisions: parse("decisions.jsonl"),
        shadow: parse("shadow.jsonl"),
    }
}

/// Writes `lines` to `path`, one per line, and returns its `file:` spec.
pub fn write_lines(path: &Path, lines: &[String]) -> String {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).expect("write lines");
    format!("file:{}", path.display())
}

/// The lines of a JSON-lines file, none when it does not exist.
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Event id → feature values as bits, for comparing features exactly.
pub type FeatureBits = BTreeMap<String, Vec<u64>>;

pub fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// The `kind` features `vigil train` computes for every event of `input`.
pub async fn offline_features(
    input: &str,
    mapping: Option<PathBuf>,
    kind: ModelKind,
) -> FeatureBits {
    let options = TrainOptions {
        kind,
        input: input.to_owned(),
        out: PathBuf::new(),
        family: Family::Logistic { alpha: 1.0 },
        name: None,
        version: None,
        holdout: 0.2,
        holdout_from: None,
        mapping,
        export_features: None,
        score_at: Vec::new(),
        horizon: None,
        labels: None,
        config: test_config(),
    };
    let mut features = FeatureBits::new();
    train::featurize(&options, |event, values, _| {
        features.insert(event.event_id.clone(), bits(values));
    })
    .await
    .expect("history featurizes");
    features
}
