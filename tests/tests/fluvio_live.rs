//! The Fluvio adapter against a live cluster (`FLUVIO_ENDPOINT`, e.g. the one `.ci/run` starts):
//! round trip, restart, a pause in the stream, and two instances splitting the partitions.
//! Skipped, saying so, when `FLUVIO_ENDPOINT` is unset.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use vigil_engine::decision::Decision;
use vigil_engine::pipeline::RunOptions;
use vigil_engine::source::PartitionChoice;
use vigil_tests::fluvio::{
    committed, dead_letters, live, options, published, run, scenario_source,
};
use vigil_tests::test_config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_decides_every_event_and_keys_decisions_by_customer() {
    let mut config = test_config();
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
async fn an_engine_idle_past_its_commit_interval_stores_its_offsets_and_reads_on() {
    let mut config = test_config();
    config.fluvio.commit_interval = Duration::from_millis(100);
    let Some(live) = live("idle", &mut config).await else {
        return;
    };
    let topic = format!("{}-events", live.prefix);
    let first = live.produced;

    // Once the engine has read the first load it has nothing to read for a while; the same
    // records are then sent again.
    let pause = {
        let (fluvio, config, prefix, topic) = (
            live.fluvio.clone(),
            config.clone(),
            live.prefix.clone(),
            topic.clone(),
        );
        tokio::spawn(async move {
            let mut stored = 0;
            for _ in 0..300 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                stored = committed(&fluvio, &prefix, &topic).await;
                if stored == first {
                    break;
                }
            }
            vigil_fluvio::produce::produce(
                &vigil::connectors(),
                &scenario_source(),
                &format!("fluvio:{topic}"),
                None,
                &config,
            )
            .await
            .unwrap();
            stored
        })
    };
    let summary = run(options(&live.prefix, &config, None, 2 * first)).await;

    assert_eq!(
        pause.await.unwrap(),
        first,
        "while idle, the engine stored its consumer offsets up to its last record"
    );
    assert_eq!(summary.records, 2 * first, "it read on after the pause");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_engine_leaves_no_event_unscored() {
    let mut config = test_config();
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
    // A decision's id names its customer and event, so a re-read event that is decided again
    // carries the same id and consumers de-duplicate it.
    let (published, _) = published(&live).await;
    assert!(!published.is_empty());
    for (_, _, d) in &published {
        assert_eq!(
            d.decision_id,
            Decision::id_for(&d.customer_id, &d.event_id, d.event_ts, d.decision)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_disjoint_partitions_decide_everything_once() {
    let mut config = test_config();
    let Some(live) = live("split", &mut config).await else {
        return;
    };

    let instance = |partition: u32| {
        let mut config = config.clone();
        config.fluvio.consumer = format!("{}-{partition}", live.prefix);
        RunOptions {
            partitions: PartitionChoice::Listed(vec![partition]),
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
