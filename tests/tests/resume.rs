//! Checkpointed resume on the embedded file source: a run stopped part-way and started again
//! with the same state directory reads every record exactly once across the two runs; a
//! rebuild from the log is refused where it cannot be one.

use std::io::Write;

use vigil_engine::config::Config;
use vigil_engine::pipeline::{self, RunOptions};
use vigil_scenario::{Generator, Scenario};
use vigil_tests::fixture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_resumes_at_its_checkpoint_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let mut file = std::fs::File::create(&events).unwrap();
    let mut total = 0u64;
    for record in Generator::new(Scenario::load(&fixture("fluvio.toml")).unwrap()) {
        file.write_all(&record.payload).unwrap();
        file.write_all(b"\n").unwrap();
        total += 1;
    }
    drop(file);

    let state = dir.path().join("state");
    let letters = dir.path().join("dead-letters.jsonl");
    let run = |max_records: Option<u64>| {
        let options = RunOptions {
            state_dir: Some(state.clone()),
            max_records,
            ..vigil_tests::run_options(
                Config::builtin(),
                &format!("file:{}", events.display()),
                "discard",
                &format!("file:{}", letters.display()),
            )
        };
        pipeline::run(options, std::future::pending())
    };
    let first = run(Some(total / 3)).await.unwrap();
    let second = run(None).await.unwrap();
    assert_eq!(first.records, total / 3);
    assert_eq!(first.records + second.records, total);

    // Dead letters name their line: together the two runs name every malformed line once.
    let lines: Vec<u64> = std::fs::read_to_string(&letters)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["source"]["offset"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let mut unique = lines.clone();
    unique.dedup();
    assert_eq!(lines, unique, "dead letters in line order, none repeated");
    assert_eq!(lines.len() as u64, first.dead_letters + second.dead_letters);
    assert!(lines.iter().any(|l| *l < total / 3) && lines.iter().any(|l| *l >= total / 3));

    // A third run finds nothing left to read.
    assert_eq!(run(None).await.unwrap().records, 0);

    // A rebuild from the log is refused into a state directory that holds state, and for a
    // source with no log to rebuild from, each naming the flag and why.
    let rebuild = |state_dir: std::path::PathBuf| RunOptions {
        state_dir: Some(state_dir),
        rebuild: true,
        ..vigil_tests::run_options(
            Config::builtin(),
            &format!("file:{}", events.display()),
            "discard",
            "discard",
        )
    };
    let held = pipeline::run(rebuild(state.clone()), std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        held.contains("`--rebuild`") && held.contains("already holds"),
        "{held}"
    );
    let empty = dir.path().join("empty-state");
    let no_log = pipeline::run(rebuild(empty), std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        no_log.contains("`--rebuild`") && no_log.contains("has neither"),
        "{no_log}"
    );
}
