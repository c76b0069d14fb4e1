//! Helpers for the live Fluvio tests: each test gets its own topics loaded with a seeded
//! scenario by `produce`, runs the engine from and to Fluvio, reads the topics back and compares
//! with what the embedded source and file sinks decide for the same scenario. Without
//! `FLUVIO_ENDPOINT` the tests say they were skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{fixture, run_to_files};
use fluvio::Fluvio;
use vigil_engine::config::Config;
use vigil_engine::decision::Decision;
use vigil_engine::pipeline::{self, RunOptions};
use vigil_engine::publish::RunSummary;
use vigil_fluvio::client;
use vigil_fluvio::reader::{PartitionReader, Start};

pub fn endpoint() -> Option<String> {
    match std::env::var("FLUVIO_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            eprintln!(
                "skipped: FLUVIO_ENDPOINT is not set, so the live Fluvio tests did not run. {}",
                client::GET_A_CLUSTER
            );
            None
        }
    }
}

pub fn scenario_source() -> String {
    format!("generate:{}", fixture("fluvio.toml").display())
}

/// A fresh topic prefix per test run, so tests and reruns never share topics.
pub fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("t{}-{test}", nanos % 1_000_000_000)
}

/// Creates the topics and loads the scenario into `{prefix}-events`; returns the record count.
pub async fn load_scenario(prefix: &str, config: &Config) -> (Arc<Fluvio>, u64) {
    let fluvio = client::connect(&config.fluvio).await.unwrap();
    vigil_fluvio::topics::create_topics(&fluvio, prefix, 2)
        .await
        .unwrap();
    let produced = vigil_fluvio::produce::produce(
        &vigil::connectors(),
        &scenario_source(),
        &format!("fluvio:{prefix}-events"),
        None,
        config,
    )
    .await
    .unwrap();
    (fluvio, produced.records)
}

/// A topic's records per partition: (key, value).
pub type TopicRecords = BTreeMap<u32, Vec<(Vec<u8>, Vec<u8>)>>;

/// Every record of a topic, per partition: (key, value), through the gap-free reader.
/// Partition end offsets in the cluster's metadata trail the SPU by a moment, so a partition is
/// read until it stays quiet.
pub async fn read_topic(fluvio: &Arc<Fluvio>, topic: &str) -> TopicRecords {
    const QUIET: Duration = Duration::from_secs(3);
    let partitions = client::partition_count(fluvio, topic).await.unwrap();
    let starts = client::start_offsets(fluvio, topic).await.unwrap();
    let mut all = BTreeMap::new();
    for partition in 0..partitions {
        let start = Start::At(starts.get(&partition).copied().unwrap_or(0));
        let mut reader = PartitionReader::new(fluvio.clone(), topic, partition, start, None);
        let mut records = Vec::new();
        while let Ok(read) = tokio::time::timeout(QUIET, reader.next()).await {
            let record = read.unwrap();
            records.push((
                record.key().unwrap_or_default().to_vec(),
                record.value().to_vec(),
            ));
        }
        all.insert(partition, records);
    }
    all
}

pub fn decisions(records: &TopicRecords) -> Vec<(u32, Vec<u8>, Decision)> {
    records
        .iter()
        .flat_map(|(&p, rs)| {
            rs.iter()
                .map(move |(k, v)| (p, k.clone(), serde_json::from_slice::<Decision>(v).unwrap()))
        })
        .collect()
}

/// What the embedded pipeline publishes for the same scenario.
pub struct Expected {
    pub decision_ids: BTreeSet<String>,
    /// The dead letters, without where they were read from, sorted (several are identical).
    pub dead_letters: Vec<String>,
}

pub async fn expected() -> Expected {
    let dir = tempfile::tempdir().unwrap();
    let published = run_to_files(&scenario_source(), dir.path()).await;
    Expected {
        decision_ids: published
            .decisions
            .iter()
            .map(|d| d.decision_id.clone())
            .collect(),
        dead_letters: {
            let mut letters: Vec<String> =
                published.dead_letters.iter().map(without_source).collect();
            letters.sort();
            letters
        },
    }
}

/// A dead letter minus its source position, which differs between sources.
pub fn without_source(letter: &serde_json::Value) -> String {
    let mut letter = letter.clone();
    letter.as_object_mut().unwrap().remove("source");
    letter.to_string()
}

pub async fn dead_letters(fluvio: &Arc<Fluvio>, topic: &str) -> Vec<String> {
    read_topic(fluvio, topic)
        .await
        .values()
        .flatten()
        .map(|(_, v)| without_source(&serde_json::from_slice(v).unwrap()))
        .collect()
}

/// One past each stored consumer offset of `consumer` on `topic`, summed over partitions: the
/// records it has committed.
pub async fn committed(fluvio: &Fluvio, consumer: &str, topic: &str) -> u64 {
    let offsets = fluvio.consumer_offsets().await.unwrap();
    offsets
        .iter()
        .filter(|c| c.topic == topic && c.consumer_id.starts_with(consumer))
        .map(|c| (c.offset + 1).max(0) as u64)
        .sum()
}

pub fn options(
    prefix: &str,
    config: &Config,
    state_dir: Option<&Path>,
    max_records: u64,
) -> RunOptions {
    RunOptions {
        state_dir: state_dir.map(Path::to_owned),
        max_records: Some(max_records),
        ..crate::run_options(
            config.clone(),
            &format!("fluvio:{prefix}-events"),
            &format!("fluvio:{prefix}-decisions"),
            &format!("fluvio:{prefix}-dead-letters"),
        )
    }
}

pub async fn run(options: RunOptions) -> RunSummary {
    tokio::time::timeout(
        Duration::from_secs(120),
        pipeline::run(options, std::future::pending()),
    )
    .await
    .expect("run finished within 2 minutes")
    .unwrap()
}

/// A live test's topics, loaded with the scenario, and what the embedded run decides for it.
pub struct Live {
    pub prefix: String,
    pub fluvio: Arc<Fluvio>,
    pub produced: u64,
    pub expected: Expected,
}

/// Sets up a live test on its own topics; `None` (after saying so) without a cluster.
pub async fn live(test: &str, config: &mut Config) -> Option<Live> {
    endpoint()?;
    let prefix = unique_prefix(test);
    config.fluvio.consumer = prefix.clone();
    let (fluvio, produced) = load_scenario(&prefix, config).await;
    Some(Live {
        prefix,
        fluvio,
        produced,
        expected: expected().await,
    })
}

/// The decisions on the test's decision topic, and their distinct ids.
pub async fn published(live: &Live) -> (Vec<(u32, Vec<u8>, Decision)>, BTreeSet<String>) {
    let published =
        decisions(&read_topic(&live.fluvio, &format!("{}-decisions", live.prefix)).await);
    let ids = published
        .iter()
        .map(|(_, _, d)| d.decision_id.clone())
        .collect();
    (published, ids)
}

/// A live test that changes reference data (profiles, lists) mid-stream: its own topics, and
/// the `fluvio.toml` scenario's events (malformed records aside) in two halves.
pub struct MidStream {
    pub dir: tempfile::TempDir,
    pub prefix: String,
    pub fluvio: Arc<Fluvio>,
    pub first: Vec<String>,
    pub second: Vec<String>,
}

/// Sets up a mid-stream test on its own topics; `None` (after saying so) without a cluster.
pub async fn mid_stream(test: &str, config: &mut Config) -> Option<MidStream> {
    endpoint()?;
    let prefix = unique_prefix(test);
    config.fluvio.consumer = prefix.clone();
    config.fluvio.commit_interval = Duration::from_millis(100);
    let fluvio = client::connect(&config.fluvio).await.unwrap();
    vigil_fluvio::topics::create_topics(&fluvio, &prefix, 2)
        .await
        .unwrap();
    let mut records: Vec<String> = vigil_scenario::Generator::new(
        vigil_scenario::Scenario::load(&fixture("fluvio.toml")).unwrap(),
    )
    .filter(|r| !r.malformed)
    .map(|r| String::from_utf8(r.payload.to_vec()).unwrap())
    .collect();
    let second = records.split_off(records.len() / 2);
    Some(MidStream {
        dir: tempfile::tempdir().unwrap(),
        prefix,
        fluvio,
        first: records,
        second,
    })
}

impl MidStream {
    /// Writes `lines` to a file and produces them to the test's `{prefix}-{role}` topic.
    pub async fn produce(
        &self,
        config: &Config,
        role: &str,
        lines: &[String],
    ) -> vigil_fluvio::produce::Produced {
        let file = self
            .dir
            .path()
            .join(format!("{role}-{}.jsonl", lines.len()));
        vigil_fluvio::produce::produce(
            &vigil::connectors(),
            &crate::write_lines(&file, lines),
            &format!("fluvio:{}-{role}", self.prefix),
            None,
            config,
        )
        .await
        .unwrap()
    }

    /// Runs the engine (its options set by `tweak`) on the first half, produces `change` to
    /// `role` once that half is decided, then the second half, and returns what the engine
    /// published.
    pub async fn run_with_change(
        &self,
        config: &Config,
        tweak: impl FnOnce(&mut RunOptions),
        role: &str,
        change: &[String],
    ) -> Vec<Decision> {
        self.produce(config, "events", &self.first).await;
        let total = (self.first.len() + self.second.len()) as u64;
        let mut run_options = options(&self.prefix, config, None, total);
        tweak(&mut run_options);
        let engine = tokio::spawn(run(run_options));
        let events = format!("{}-events", self.prefix);
        for _ in 0..600 {
            if committed(&self.fluvio, &self.prefix, &events).await >= self.first.len() as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let changed = self.produce(config, role, change).await;
        assert_eq!(changed.unkeyed, 0, "reference records are keyed");
        // The follower reads a change within milliseconds; the engine has nothing to read
        // meanwhile.
        tokio::time::sleep(Duration::from_secs(2)).await;
        self.produce(config, "events", &self.second).await;
        let summary = engine.await.unwrap();
        assert_eq!(summary.records, total);
        decisions(&read_topic(&self.fluvio, &format!("{}-decisions", self.prefix)).await)
            .into_iter()
            .map(|(_, _, d)| d)
            .collect()
    }
}
