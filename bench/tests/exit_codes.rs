//! `vigil-bench` as SREs call it: exit code 0 when every target is met, 1 naming each missed
//! target with its measured value, 2 for a scenario it cannot use; reports land where asked.

use std::path::Path;
use std::process::{Command, Output};

fn scenario(dir: &Path, targets: &str) -> std::path::PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(
        &path,
        format!(
            r#"
            name = "tiny"
            seed = 3
            customers = 100
            events = 2000
            start = "2026-11-01T00:00:00Z"
            span = "1d"
            rate = 2000
            [malformed]
            ratio = 0.01
            [targets]
            {targets}
            "#
        ),
    )
    .unwrap();
    path
}

fn bench(dir: &Path, scenario: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil-bench"))
        .arg(scenario)
        .arg("--quiet")
        .arg("--report-dir")
        .arg(dir.join("reports"))
        .output()
        .unwrap()
}

#[test]
fn met_targets_exit_0_and_write_both_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(
        dir.path(),
        "p99 = \"30s\"\nmax_dead_letter_ratio = 0.05\nmin_throughput = 100",
    );
    let out = bench(dir.path(), &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("all 3 targets met"), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("reports/tiny.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["passed"], true);
    assert!(json["records"].as_u64().unwrap() >= 2000);
    assert!(!json["timeline"].as_array().unwrap().is_empty());
    let html = std::fs::read_to_string(dir.path().join("reports/tiny.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 4);
}

#[test]
fn an_impossible_target_exits_1_naming_it_and_its_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), "p50 = \"1us\"\nmax_dead_letter_ratio = 0.05");
    let out = bench(dir.path(), &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let missed = stdout.lines().find(|l| l.starts_with("MISS")).unwrap();
    assert!(
        missed.contains("p50") && missed.contains("≤ 0.001 ms") && missed.contains("measured"),
        "{missed}"
    );
    assert!(stdout.contains("PASS  max_dead_letter_ratio"), "{stdout}");
    assert!(stdout.contains("missed: p50"), "{stdout}");
}

#[test]
fn an_unusable_scenario_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), "p95 = \"1ms\"");
    let out = bench(dir.path(), &path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tiny.toml") && stderr.contains("p95"),
        "{stderr}"
    );
}
