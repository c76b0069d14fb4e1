//! Kill -9 mid-stream and restart: the engine resumes from its last checkpoint (customer state
//! and source offsets written together), so no event goes unscored and every decision, including
//! those published twice around the crash, is the one an uninterrupted run makes, with the same
//! id, inactivity checks' decisions included. Runs the real `vigil` binary on the paced
//! generator source.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/passivation.toml")
}

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("vigil.toml");
    std::fs::write(
        &path,
        r#"
        [engine]
        checkpoint_interval = "300ms"
        [engine.latency_budget]
        fraud = "60s"
        churn = "60s"
        [engine.passivation]
        max_active = 50
        # Low enough that inactivity checks publish outreach.
        [policy.churn]
        outreach = 0.2
        [metrics]
        listen = "127.0.0.1:0"
        "#,
    )
    .unwrap();
    path
}

fn start(dir: &Path, config: &Path) -> Child {
    common::run_in(dir, &scenario(), config).spawn().unwrap()
}

fn finish(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "vigil failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every published decision by id, without when and how fast it was made; panics if one id
/// was published with two different contents.
fn decisions(dir: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir.join("decisions.jsonl")).unwrap_or_default();
    common::by_id(text.lines()).0
}

fn dead_letter_offsets(dir: &Path) -> BTreeSet<u64> {
    let text = std::fs::read_to_string(dir.join("dead-letters.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["source"]["offset"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn a_killed_engine_resumes_without_losing_or_changing_a_decision() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let whole = dir.path().join("whole");
    finish(start(&whole, &config));

    let crashed = dir.path().join("crashed");
    let mut child = start(&crashed, &config);
    std::thread::sleep(Duration::from_millis(2_000));
    child.kill().unwrap(); // SIGKILL: no drain, no final checkpoint
    child.wait().unwrap();
    let before_restart = decisions(&crashed).len();
    finish(start(&crashed, &config));

    let expected = decisions(&whole);
    assert!(expected.len() > 100, "{} decisions", expected.len());
    let inactivity = expected
        .values()
        .filter(|d| d.contains(r#""trigger":"inactivity""#))
        .count();
    assert!(inactivity >= 5, "{inactivity} inactivity decisions");
    assert!(
        before_restart > 0 && before_restart < expected.len(),
        "{before_restart} of {} decisions before the kill",
        expected.len()
    );
    assert_eq!(decisions(&crashed), expected);
    assert_eq!(dead_letter_offsets(&crashed), dead_letter_offsets(&whole));
}
