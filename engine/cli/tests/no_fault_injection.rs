//! No build of `vigil` can fail an event on purpose. The fault tests make events whose id
//! starts `poison-` fail through a seam only code can reach (`RunOptions::after_features`); the
//! binary a user runs scores such events like any other, whatever else the workspace build
//! turned on.
//!
//! Checked on the binary this test build made and, when `VIGIL_RELEASE_BIN` names one (CI sets
//! it to the `vigil` that `cargo build --release --workspace` made), on that release binary.

use std::path::{Path, PathBuf};
use std::process::Command;

const EVENTS: [&str; 3] = ["poison-1", "poison-once-2", "e-3"];

fn history(dir: &Path) -> PathBuf {
    let lines: Vec<String> = EVENTS
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                r#"{{"schema":1,"event_id":"{id}","customer_id":"c-1","ts":{},"kind":"payment","amount":25.0,"currency":"EUR","country":"FR","lat":48.85,"lon":2.35,"merchant":"m-1","mcc":"5411"}}"#,
                1_780_000_000_000i64 + i as i64 * 60_000
            )
        })
        .collect();
    let path = dir.join("events.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// Runs `vigil` on the history; returns its summary line and the dead letters it wrote.
fn score(vigil: &Path, dir: &Path) -> (String, String) {
    let dead_letters = dir.join("dead-letters.jsonl");
    let out = Command::new(vigil)
        .env("VIGIL_CONSOLE__LISTEN", "127.0.0.1:0")
        .args(["run", "--quiet", "--sink", "discard"])
        .arg("--source")
        .arg(format!("file:{}", history(dir).display()))
        .arg("--dead-letter")
        .arg(format!("file:{}", dead_letters.display()))
        .args(["--set", "metrics.listen=127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{} failed: {stderr}", vigil.display());
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("Done:"))
        .unwrap_or_else(|| panic!("no summary in: {stderr}"))
        .to_owned();
    (
        summary,
        std::fs::read_to_string(dead_letters).unwrap_or_default(),
    )
}

fn assert_scores_poison_events_normally(vigil: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let (summary, dead_letters) = score(vigil, dir.path());
    assert!(
        summary.starts_with("Done: 3 records") && summary.contains("; 3 scored;"),
        "{}: {summary}",
        vigil.display()
    );
    assert!(
        summary.contains("0 dead letters"),
        "{}: {summary}",
        vigil.display()
    );
    assert_eq!(dead_letters, "", "{}", vigil.display());
}

#[test]
fn the_vigil_binary_scores_poison_events_like_any_other() {
    assert_scores_poison_events_normally(Path::new(env!("CARGO_BIN_EXE_vigil")));
}

#[test]
fn the_release_vigil_binary_scores_poison_events_like_any_other() {
    match std::env::var_os("VIGIL_RELEASE_BIN") {
        Some(path) => assert_scores_poison_events_normally(Path::new(&path)),
        None => eprintln!(
            "skipped: VIGIL_RELEASE_BIN is not set; build with `cargo build --release --workspace` \
             and set it to target/release/vigil to check the release binary"
        ),
    }
}
