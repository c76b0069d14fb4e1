//! What the tests of the real `vigil` binary share: running it, checking it succeeded, reading
//! its decisions by id, and for the live ones, naming fresh topics and waiting for a topic's
//! partitions to settle. Each test binary uses part of it.
#![allow(dead_code)]

pub mod receiver;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fluvio::Fluvio;
use vigil_engine::event::Offsets;
use vigil_fluvio::client;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

pub fn vigil(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    // Engines run side by side: each serves its console on a port of its own.
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env("VIGIL_CONSOLE__LISTEN", "127.0.0.1:0");
    command
}

/// `vigil run` of the generated `scenario` with `config`, keeping its state in `dir/state` and
/// writing decisions and dead letters to `decisions.jsonl` and `dead-letters.jsonl` there;
/// standard error is kept for a failure's message.
pub fn run_in(dir: &Path, scenario: &Path, config: &Path) -> Command {
    let mut command = vigil(&["run", "--quiet", "--source"]);
    command
        .arg(format!("generate:{}", scenario.display()))
        .arg("--sink")
        .arg(format!("file:{}", dir.join("decisions.jsonl").display()))
        .arg("--dead-letter")
        .arg(format!("file:{}", dir.join("dead-letters.jsonl").display()))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--config")
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    command
}

pub fn succeed(output: Output, what: &str) -> Output {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// True when a cluster is configured; otherwise says the test was skipped.
pub fn live(test: &str) -> bool {
    if std::env::var_os("FLUVIO_ENDPOINT").is_some() {
        return true;
    }
    eprintln!(
        "skipped: FLUVIO_ENDPOINT is not set, so the live {test} test did not run. {}",
        client::GET_A_CLUSTER
    );
    false
}

/// A topic prefix no other run shares.
pub fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("t{}-{test}", nanos % 1_000_000_000)
}

/// The partitions' high watermarks once they stop moving (the metadata trails the SPU).
pub async fn settled_ends(fluvio: &Fluvio, topic: &str) -> Offsets {
    let mut last = Offsets::new();
    loop {
        let ends = client::end_offsets(fluvio, topic).await.unwrap();
        if ends == last {
            return ends;
        }
        last = ends;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Decisions by id, without when and how fast they were made.
pub type Decisions = BTreeMap<String, String>;

/// Decisions by id without `decided_ts` and `latency_us`, and the ids seen more than once;
/// panics if an id comes with two different decisions.
pub fn by_id<'a>(lines: impl Iterator<Item = &'a str>) -> (Decisions, Vec<String>) {
    let mut decisions = Decisions::new();
    let mut twice = Vec::new();
    for line in lines {
        let mut d: serde_json::Value = serde_json::from_str(line).unwrap();
        let fields = d.as_object_mut().unwrap();
        fields.remove("decided_ts");
        fields.remove("latency_us");
        let id = fields["decision_id"].as_str().unwrap().to_owned();
        let content = d.to_string();
        if let Some(earlier) = decisions.insert(id.clone(), content.clone()) {
            assert_eq!(earlier, content, "{id} published twice, differently");
            twice.push(id);
        }
    }
    (decisions, twice)
}
