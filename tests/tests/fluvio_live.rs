//! The Fluvio adapter against a live cluster (`FLUVIO_ENDPOINT`, e.g. the one `.ci/run` starts
//! from ../shared/fluvio). Each test creates its own topics, loads a seeded scenario with
//! `produce`, runs the engine from and to Fluvio, reads the topics back and compares with what
//! the embedded source and file sinks decide for the same scenario. Skipped, saying so, when
//! `FLUVIO_ENDPOINT` is unset.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fluvio::consumer::ConsumerConfigExtBuilder;
use fluvio::{Fluvio, Offset};
use futures_util::StreamExt;
use vigil_engine::broker;
use vigil_engine::config::Config;
use vigil_engine::decision::Decision;
use vigil_engine::pipeline::{self, RunOptions};
use vigil_engine::publish::RunSummary;
use vigil_tests::{fixture, run_to_files};

fn endpoint() -> Option<String> {
    match std::env::var("FLUVIO_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            eprintln!("skipped: FLUVIO_ENDPOINT is not set (start ../shared/fluvio/cluster.sh to run the live Fluvio tests)");
            None
        }
    }
}

fn scenario_source() -> String {
    format!("generate:{}", fixture("fluvio.toml").display())
}

/// A fresh topic prefix per test run, so tests and reruns never share topics.
fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("t{}-{test}", nanos % 1_000_000_000)
}

/// Creates the topics and loads the scenario into `{prefix}-events`; returns the record count.
async fn load_scenario(prefix: &str, config: &Config) -> (Arc<Fluvio>, u64) {
    let fluvio = broker::connect(&config.fluvio).await.unwrap();
    broker::create_topics(&fluvio, prefix, 2).await.unwrap();
    let produced = vigil_engine::produce::produce(
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
type TopicRecords = BTreeMap<u32, Vec<(Vec<u8>, Vec<u8>)>>;

/// Every record of a topic, per partition: (key, value). Partition end offsets in the
/// cluster's metadata trail the SPU by a moment, so a partition is read until it stays quiet.
async fn read_topic(fluvio: &Fluvio, topic: &str) -> TopicRecords {
    const QUIET: Duration = Duration::from_secs(3);
    let partitions = broker::partition_count(fluvio, topic).await.unwrap();
    let mut all = BTreeMap::new();
    for partition in 0..partitions {
        let open = |from: u64| {
            let config = ConsumerConfigExtBuilder::default()
                .topic(topic.to_owned())
                .partition(partition)
                .offset_start(Offset::absolute(from as i64).unwrap())
                .build()
                .unwrap();
            fluvio.consumer_with_config(config)
        };
        let mut records = Vec::new();
        let mut stream = Box::pin(open(0).await.unwrap());
        let mut expected = 0u64;
        while let Ok(Some(item)) = tokio::time::timeout(QUIET, stream.next()).await {
            let record = item.unwrap();
            let offset = record.offset() as u64;
            if offset > expected {
                // A fetch skipped records (see source/fluvio.rs): read again from the gap.
                stream = Box::pin(open(expected).await.unwrap());
                continue;
            }
            if offset == expected {
                records.push((
                    record.key().unwrap_or_default().to_vec(),
                    record.value().to_vec(),
                ));
                expected += 1;
            }
        }
        all.insert(partition, records);
    }
    all
}

fn decisions(records: &TopicRecords) -> Vec<(u32, Vec<u8>, Decision)> {
    records
        .iter()
        .flat_map(|(&p, rs)| {
            rs.iter()
                .map(move |(k, v)| (p, k.clone(), serde_json::from_slice::<Decision>(v).unwrap()))
        })
        .collect()
}

/// What the embedded pipeline publishes for the same scenario.
struct Expected {
    decision_ids: BTreeSet<String>,
    /// The dead letters, without where they were read from, sorted (several are identical).
    dead_letters: Vec<String>,
}

async fn expected() -> Expected {
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
fn without_source(letter: &serde_json::Value) -> String {
    let mut letter = letter.clone();
    letter.as_object_mut().unwrap().remove("source");
    letter.to_string()
}

async fn dead_letters(fluvio: &Fluvio, topic: &str) -> Vec<String> {
    read_topic(fluvio, topic)
        .await
        .values()
        .flatten()
        .map(|(_, v)| without_source(&serde_json::from_slice(v).unwrap()))
        .collect()
}

/// The built-in configuration, with a latency budget no debug build on a busy machine misses:
/// a degraded (rules-only) decision would differ from the embedded run's.
fn live_config() -> Config {
    let mut config = Config::builtin();
    config.engine.latency_budget = Duration::from_secs(60);
    config
}

fn options(
    prefix: &str,
    config: &Config,
    state_dir: Option<&Path>,
    max_records: u64,
) -> RunOptions {
    RunOptions {
        state_dir: state_dir.map(Path::to_owned),
        max_records: Some(max_records),
        ..RunOptions::new(
            config.clone(),
            &format!("fluvio:{prefix}-events"),
            &format!("fluvio:{prefix}-decisions"),
            &format!("fluvio:{prefix}-dead-letters"),
        )
    }
}

async fn run(options: RunOptions) -> RunSummary {
    tokio::time::timeout(
        Duration::from_secs(120),
        pipeline::run(options, std::future::pending()),
    )
    .await
    .expect("run finished within 2 minutes")
    .unwrap()
}

/// A live test's topics, loaded with the scenario, and what the embedded run decides for it.
struct Live {
    prefix: String,
    fluvio: Arc<Fluvio>,
    produced: u64,
    expected: Expected,
}

/// Sets up a live test on its own topics; `None` (after saying so) without a cluster.
async fn live(test: &str, config: &mut Config) -> Option<Live> {
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
async fn published(live: &Live) -> (Vec<(u32, Vec<u8>, Decision)>, BTreeSet<String>) {
    let published =
        decisions(&read_topic(&live.fluvio, &format!("{}-decisions", live.prefix)).await);
    let ids = published
        .iter()
        .map(|(_, _, d)| d.decision_id.clone())
        .collect();
    (published, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_decides_every_event_and_keys_decisions_by_customer() {
    let mut config = live_config();
    let Some(live) = live("roundtrip", &mut config).await else {
        return;
    };

    let summary = run(options(&live.prefix, &config, None, live.produced)).await;
    assert_eq!(summary.records, live.produced);

    let (published, ids) = published(&live).await;
    assert_eq!(ids, live.expected.decision_ids);
    assert_eq!(published.len(), ids.len(), "no decision published twice");
    let mut partition_of: HashMap<String, u32> = HashMap::new();
    for (partition, key, d) in &published {
        assert_eq!(
            key,
            d.customer_id.as_bytes(),
            "decision keyed by customer id"
        );
        let first = *partition_of
            .entry(d.customer_id.clone())
            .or_insert(*partition);
        assert_eq!(first, *partition, "{} on two partitions", d.customer_id);
    }
    let mut dead = dead_letters(&live.fluvio, &format!("{}-dead-letters", live.prefix)).await;
    dead.sort();
    assert_eq!(dead, live.expected.dead_letters);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_engine_leaves_no_event_unscored() {
    let mut config = live_config();
    config.fluvio.commit_interval = Duration::from_millis(50);
    let Some(live) = live("restart", &mut config).await else {
        return;
    };
    let state = tempfile::tempdir().unwrap();

    // The first run stops part-way, as a crash would, and loses its checkpoint: the second run
    // falls back to the Fluvio consumer offsets, which trail the published watermark, so some
    // events are read twice.
    let half = live.produced / 2;
    let first = run(options(&live.prefix, &config, Some(state.path()), half)).await;
    assert_eq!(first.records, half);
    let consumers = live.fluvio.consumer_offsets().await.unwrap();
    assert!(
        consumers
            .iter()
            .any(|c| c.consumer_id.starts_with(&live.prefix)),
        "the first run advanced its Fluvio consumer offsets"
    );
    for entry in std::fs::read_dir(state.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let second = run(RunOptions {
        max_records: None,
        duration: Some(Duration::from_secs(20)),
        ..options(&live.prefix, &config, Some(state.path()), 0)
    })
    .await;
    assert!(
        first.records + second.records > live.produced,
        "{} + {} records: the second run should re-read some of the first run's",
        first.records,
        second.records
    );

    // Malformed records are spread through the stream and dead-lettered whatever the customers'
    // state: every one of them came out, some twice.
    let dead = dead_letters(&live.fluvio, &format!("{}-dead-letters", live.prefix)).await;
    assert!(dead.len() >= live.expected.dead_letters.len());
    assert_eq!(
        dead.into_iter().collect::<BTreeSet<_>>(),
        live.expected
            .dead_letters
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
    );
    // A decision's id names its event, so a re-read event that is decided again carries the
    // same id and consumers de-duplicate it.
    let (published, _) = published(&live).await;
    assert!(!published.is_empty());
    for (_, _, d) in &published {
        assert_eq!(
            d.decision_id,
            format!("{}/{}", d.event_id, d.decision.name())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_disjoint_partitions_decide_everything_once() {
    let mut config = live_config();
    let Some(live) = live("split", &mut config).await else {
        return;
    };

    let instance = |partition: u32| {
        let mut config = config.clone();
        config.fluvio.consumer = format!("{}-{partition}", live.prefix);
        RunOptions {
            partitions: Some(vec![partition]),
            max_records: None,
            duration: Some(Duration::from_secs(15)),
            ..options(&live.prefix, &config, None, 0)
        }
    };
    let (a, b) = tokio::join!(run(instance(0)), run(instance(1)));
    assert_eq!(a.records + b.records, live.produced);
    assert!(a.records > 0 && b.records > 0);

    let (published, ids) = published(&live).await;
    assert_eq!(ids, live.expected.decision_ids);
    assert_eq!(
        published.len(),
        ids.len(),
        "no event decided by both instances"
    );
}
