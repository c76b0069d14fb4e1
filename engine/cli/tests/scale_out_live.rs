//! Scale-out on a live cluster (`FLUVIO_ENDPOINT`), with the real `vigil` binary:
//! - three instances (`--instance I/3`) on a 6-partition topic decide every event exactly once,
//!   and decide what one instance decides;
//! - when the instance count changes, a state directory kept for other partitions is refused,
//!   and new instances rebuild their state from the log (`--rebuild`), publishing only what was
//!   not decided before;
//! - an instance killed with SIGKILL mid-stream resumes its partitions from its checkpoint with
//!   nothing lost.
//!
//! Skipped, saying so, without a cluster.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{by_id, fixture, live, settled_ends, succeed, unique_prefix, vigil, Decisions};
use vigil_engine::config::Config;
use vigil_engine::event::Offsets;
use vigil_fluvio::client;

/// One test's topics and files.
struct Cluster {
    prefix: String,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Cluster {
    fn new(test: &str) -> Cluster {
        let prefix = unique_prefix(test);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("vigil.toml");
        std::fs::write(
            &config,
            format!(
                r#"
                [engine]
                checkpoint_interval = "200ms"
                [engine.latency_budget]
                fraud = "60s"
                churn = "60s"
                # An inactivity check fires when the watermark, the slowest of an instance's
                # partitions, passes it; how far each partition has been read differs with the
                # layout, so checks near it can fire in one layout and not another. These tests
                # compare every event's decision, so they leave the checks out.
                [policy.churn]
                check_after = []
                [fluvio]
                consumer = "{prefix}"
                commit_interval = "100ms"
                [metrics]
                listen = "127.0.0.1:0"
                "#
            ),
        )
        .unwrap();
        succeed(
            vigil(&["topics", "create", "--partitions", "6", "--prefix", &prefix])
                .output()
                .unwrap(),
            "topics create",
        );
        Cluster {
            prefix,
            dir,
            config,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn topic(&self, role: &str) -> String {
        format!("fluvio:{}-{role}", self.prefix)
    }

    /// `vigil produce` of a JSON Lines file to the events topic, at `rate` when given.
    fn produce(&self, file: &Path, rate: Option<u64>) -> Child {
        let mut command = vigil(&["produce", "--from"]);
        command
            .arg(format!("file:{}", file.display()))
            .args(["--to", &self.topic("events")]);
        if let Some(rate) = rate {
            command.args(["--rate", &rate.to_string()]);
        }
        command.stderr(Stdio::piped()).spawn().unwrap()
    }

    /// `vigil run` from the events topic to the decision topics, as `instance` with `state`,
    /// reading at most `records` when given.
    fn run(&self, instance: &str, state: &str, records: Option<u64>, extra: &[&str]) -> Child {
        let mut command = vigil(&["run", "--quiet", "--source", &self.topic("events")]);
        command
            .args(["--sink", &self.topic("decisions")])
            .args(["--dead-letter", &self.topic("dead-letters")])
            .args(["--instance", instance])
            .arg("--state-dir")
            .arg(self.path(state))
            .arg("--config")
            .arg(&self.config)
            .args(extra);
        if let Some(records) = records {
            command.args(["--max-records", &records.to_string()]);
        }
        command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// What one engine decides on `events`, from the file to a file.
    fn expected(&self, events: &Path) -> Decisions {
        let out = self.path("expected.jsonl");
        let _ = std::fs::remove_file(&out);
        succeed(
            vigil(&["run", "--quiet", "--source"])
                .arg(format!("file:{}", events.display()))
                .arg("--sink")
                .arg(format!("file:{}", out.display()))
                .arg("--dead-letter")
                .arg(format!(
                    "file:{}",
                    self.path("expected-dead.jsonl").display()
                ))
                .arg("--config")
                .arg(&self.config)
                .stdout(Stdio::null())
                .output()
                .unwrap(),
            "single engine",
        );
        let (decisions, twice) = by_id(std::fs::read_to_string(out).unwrap().lines());
        assert!(twice.is_empty());
        decisions
    }

    /// Every decision on the decisions topic by id, and the ids published more than once (each
    /// time the same decision). Read once the partitions' ends have settled, since `tail
    /// --to-end` reads up to the ends the cluster's metadata gives.
    async fn published(&self) -> (Decisions, Vec<String>) {
        let fluvio = client::connect(&Config::builtin().fluvio).await.unwrap();
        settled_ends(&fluvio, &format!("{}-decisions", self.prefix)).await;
        let spec = self.topic("decisions");
        let tail = succeed(
            vigil(&["tail", &spec, "--from-beginning", "--to-end", "--json"])
                .output()
                .unwrap(),
            "tail",
        );
        let text = String::from_utf8(tail.stdout).unwrap();
        by_id(text.lines())
    }

    /// Records in the events topic on the partitions `p % of == index`.
    async fn share(&self, index: u32, of: u32) -> u64 {
        let fluvio = client::connect(&Config::builtin().fluvio).await.unwrap();
        let ends: Offsets = settled_ends(&fluvio, &format!("{}-events", self.prefix)).await;
        ends.iter()
            .filter(|(p, _)| *p % of == index)
            .map(|(_, end)| end)
            .sum()
    }
}

fn finish(child: Child, what: &str) -> String {
    let out = succeed(child.wait_with_output().unwrap(), what);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_same(published: &Decisions, expected: &Decisions, what: &str) {
    let missing: Vec<_> = expected
        .keys()
        .filter(|id| !published.contains_key(*id))
        .collect();
    let extra: Vec<_> = published
        .keys()
        .filter(|id| !expected.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} decisions missing, e.g. {:?}; {} extra, e.g. {:?}",
        missing.len(),
        missing.iter().take(3).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(
        published, expected,
        "{what}: same decisions, field for field"
    );
}

/// The scenario as JSON lines: all of it, and its first and second halves.
fn events(cluster: &Cluster) -> [PathBuf; 3] {
    let all = cluster.path("all.jsonl");
    succeed(
        vigil(&["produce", "--from"])
            .arg(format!("generate:{}", fixture("fluvio.toml").display()))
            .arg("--to")
            .arg(format!("file:{}", all.display()))
            .output()
            .unwrap(),
        "produce to a file",
    );
    // Malformed records include invalid UTF-8, so the file is split as bytes.
    let bytes = std::fs::read(&all).unwrap();
    let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let halves = [cluster.path("first.jsonl"), cluster.path("second.jsonl")];
    for (path, half) in halves.iter().zip([first, second]) {
        std::fs::write(path, half.concat()).unwrap();
    }
    let [first, second] = halves;
    [all, first, second]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_decide_once_and_a_new_count_rebuilds_from_the_log() {
    if !live("scale-out") {
        return;
    }
    let cluster = Cluster::new("scale");
    let [all, first, second] = events(&cluster);

    // Three instances on the first half: every event decided once, as by one engine. They
    // run on for a while once they have read everything, as a deployment would, so their
    // consumer offsets catch up with what they published.
    finish(cluster.produce(&first, None), "produce");
    let mut instances = Vec::new();
    for i in 0..3 {
        let state = format!("i{i}of3");
        instances.push(cluster.run(&format!("{i}/3"), &state, None, &["--duration", "15s"]));
    }
    for (i, instance) in instances.into_iter().enumerate() {
        finish(instance, &format!("instance {i}/3"));
    }
    let (published, twice) = cluster.published().await;
    assert!(twice.is_empty(), "decided twice: {twice:?}");
    assert_same(&published, &cluster.expected(&first), "three instances");

    // Two instances now: the state kept for partitions 0 and 3 is refused for 0, 2 and 4.
    let refused = cluster
        .run("0/2", "i0of3", Some(1), &[])
        .wait_with_output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("partitions [0, 3], but this run reads [0, 2, 4]"),
        "{stderr}"
    );

    // Rebuilt from the log into new directories, they publish the second half's decisions
    // and none of the first's again.
    finish(cluster.produce(&second, None), "produce");
    let mut instances = Vec::new();
    for i in 0..2 {
        let records = cluster.share(i, 2).await;
        let state = format!("i{i}of2");
        instances.push(cluster.run(&format!("{i}/2"), &state, Some(records), &["--rebuild"]));
    }
    for (i, instance) in instances.into_iter().enumerate() {
        let stderr = finish(instance, &format!("instance {i}/2"));
        assert!(stderr.contains("Rebuilt from the log: "), "{stderr}");
    }
    let (published, twice) = cluster.published().await;
    assert!(twice.is_empty(), "decided twice: {twice:?}");
    assert_same(&published, &cluster.expected(&all), "rebuilt as two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_resumes_its_partitions_from_its_checkpoint() {
    if !live("scale-out kill") {
        return;
    }
    let cluster = Cluster::new("kill");
    let [all, _, _] = events(&cluster);

    // Instance 1 of 3 follows a paced producer and is killed part-way.
    let producer = cluster.produce(&all, Some(3_000));
    let mut victim = cluster.run("1/3", "i1of3", None, &[]);
    let checkpoint = cluster
        .path("i1of3")
        .join(format!("checkpoint-fluvio_{}-events.json", cluster.prefix));
    let resumed = |path: &Path| -> u64 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|c| c["resume"].as_object().cloned())
            .map_or(0, |resume| resume.values().filter_map(|v| v.as_u64()).sum())
    };
    while resumed(&checkpoint) < 2_000 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    finish(producer, "produce");

    // Restarted, it reads on from its checkpoint; the others read their shares.
    let mine = cluster.share(1, 3).await;
    let left = mine - resumed(&checkpoint);
    assert!(
        left > 0 && left < mine,
        "killed part-way: {left} of {mine} left"
    );
    let mut instances = vec![cluster.run("1/3", "i1of3", Some(left), &[])];
    for i in [0, 2] {
        let records = cluster.share(i, 3).await;
        instances.push(cluster.run(&format!("{i}/3"), &format!("i{i}of3"), Some(records), &[]));
    }
    for instance in instances {
        finish(instance, "instance");
    }
    // Nothing lost; what the killed instance published again is the same decision.
    let (published, _) = cluster.published().await;
    assert_same(&published, &cluster.expected(&all), "killed and restarted");
}
