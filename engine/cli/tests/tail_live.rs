//! `vigil tail` against a live cluster (`FLUVIO_ENDPOINT`): the real binary publishes tens of
//! thousands of decisions in 1 MiB producer batches, the size at which the plain Fluvio client
//! skips the rest of a batch when a fetch ends inside it. Tail must print every one of them,
//! as many as the partitions' high watermarks add up to, and a tail killed mid-stream and
//! resumed under its consumer name must leave nothing out. Skipped, saying so, without a
//! cluster.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{fixture, live, settled_ends, succeed, unique_prefix, vigil};
use fluvio::consumer::ConsumerConfigExtBuilder;
use fluvio::{Fluvio, Offset};
use futures_util::StreamExt;
use vigil_engine::config::Config;
use vigil_engine::decision::Decision;
use vigil_fluvio::client;

/// `vigil tail` over the whole topic as JSON, with a tally, and `extra` arguments.
fn whole_topic(spec: &str, extra: &[&str]) -> Output {
    let args = [
        "tail",
        spec,
        "--from-beginning",
        "--to-end",
        "--json",
        "--count",
    ];
    succeed(
        vigil(&args).args(extra).output().unwrap(),
        &format!("tail {extra:?}"),
    )
}

/// Decision ids of JSON lines, asserting each line is a decision.
fn ids(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|line| {
            serde_json::from_str::<Decision>(line)
                .unwrap_or_else(|e| panic!("not a decision ({e}): {line}"))
                .decision_id
        })
        .collect()
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// How many records the plain client delivers reading every partition from the beginning
/// until it has been quiet for 3 s.
async fn plain_client_count(fluvio: &Arc<Fluvio>, topic: &str, partitions: u32) -> u64 {
    let mut count = 0;
    for partition in 0..partitions {
        let config = ConsumerConfigExtBuilder::default()
            .topic(topic.to_owned())
            .partition(partition)
            .offset_start(Offset::beginning())
            .build()
            .unwrap();
        let mut stream = fluvio.consumer_with_config(config).await.unwrap();
        while let Ok(Some(record)) =
            tokio::time::timeout(Duration::from_secs(3), stream.next()).await
        {
            record.unwrap();
            count += 1;
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_every_decision_and_resumes_where_it_was_killed() {
    if !live("tail") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("tail");
    let topic = format!("{prefix}-decisions");
    let spec = format!("fluvio:{topic}");

    succeed(
        vigil(&["topics", "create", "--partitions", "2", "--prefix", &prefix])
            .output()
            .unwrap(),
        "topics create",
    );
    let scenario = format!("generate:{}", fixture("decisions.toml").display());
    let dead_letters = format!("file:{}", dir.path().join("dead-letters.jsonl").display());
    succeed(
        vigil(&[
            "run",
            "--quiet",
            "--source",
            &scenario,
            "--sink",
            &spec,
            "--dead-letter",
            &dead_letters,
        ])
        .args([
            "--set",
            "fluvio.batch_size=1048576",
            "--set",
            "fluvio.linger=\"50ms\"",
        ])
        .args([
            "--set",
            "policy.fraud.alert=0",
            "--set",
            "metrics.listen=\"127.0.0.1:0\"",
        ])
        .args(["--set", "engine.latency_budget.fraud=\"60s\""])
        .output()
        .unwrap(),
        "vigil run",
    );

    let fluvio = client::connect(&Config::builtin().fluvio).await.unwrap();
    let published = settled_ends(&fluvio, &topic).await.values().sum::<u64>();
    assert!(published > 20_000, "every payment is decided: {published}");
    let plain = plain_client_count(&fluvio, &topic, 2).await;
    eprintln!("{topic}: {published} decisions published; the plain client read {plain}");

    // From the beginning to the end: every decision, once.
    let all = whole_topic(&spec, &[]);
    let stderr = String::from_utf8_lossy(&all.stderr);
    eprintln!("{}", stderr.trim());
    assert!(
        !stderr.contains("INFO"),
        "tail logs only warnings by default: {stderr}"
    );
    let all_ids = ids(&lines(&all.stdout));
    let distinct: BTreeSet<&String> = all_ids.iter().collect();
    assert_eq!(
        all_ids.len() as u64,
        published,
        "tail printed every decision"
    );
    assert_eq!(distinct.len(), all_ids.len(), "and none twice");
    assert!(
        stderr.contains(&format!("tail: {published} decisions (")),
        "the tally counts them: {stderr}"
    );

    // A filter: only freezes, and the tally agrees with what was printed.
    let freezes = whole_topic(&spec, &["--decision", "freeze"]);
    let freeze_lines = lines(&freezes.stdout);
    let expected_freezes = all_ids.iter().filter(|id| id.ends_with("/freeze")).count();
    assert_eq!(freeze_lines.len(), expected_freezes);
    assert!(ids(&freeze_lines).iter().all(|id| id.ends_with("/freeze")));
    assert!(String::from_utf8_lossy(&freezes.stderr)
        .contains(&format!("freeze {expected_freezes}, alert 0, outreach 0")));

    // Killed mid-stream under a consumer name, then resumed: nothing missed.
    let consumer = format!("{prefix}-analyst");
    let mut first = vigil(&[
        "tail",
        &spec,
        "--consumer",
        &consumer,
        "--from-beginning",
        "--json",
    ])
    .args(["--set", "fluvio.commit_interval=\"100ms\""])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut reader = BufReader::new(first.stdout.take().unwrap());
    let mut first_lines = Vec::new();
    for stop in [all_ids.len() / 3, 2 * all_ids.len() / 3] {
        while first_lines.len() < stop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).unwrap() > 0, "tail ended early");
            first_lines.push(line.trim_end().to_owned());
        }
        // Let the consumer offset catch up with what was printed.
        std::thread::sleep(Duration::from_millis(700));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    // What it wrote before dying was printed too, but for a line cut short by the kill.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || !line.ends_with('\n') {
            break;
        }
        first_lines.push(line.trim_end().to_owned());
    }
    let resumed = succeed(
        vigil(&["tail", &spec, "--consumer", &consumer, "--to-end", "--json"])
            .output()
            .unwrap(),
        "tail --consumer (resumed)",
    );
    let resumed_lines = lines(&resumed.stdout);
    assert!(
        resumed_lines.len() < all_ids.len() - all_ids.len() / 3,
        "the resumed tail started from the stored offset, not the beginning: {} of {}",
        resumed_lines.len(),
        all_ids.len()
    );
    let seen: BTreeSet<String> = ids(&first_lines)
        .into_iter()
        .chain(ids(&resumed_lines))
        .collect();
    let missed: Vec<&&String> = distinct.iter().filter(|id| !seen.contains(**id)).collect();
    assert!(
        missed.is_empty(),
        "{} decisions never printed across the kill, e.g. {:?}",
        missed.len(),
        missed.first()
    );
    eprintln!(
        "killed after {} lines, resumed with {}: {} printed twice",
        first_lines.len(),
        resumed_lines.len(),
        first_lines.len() + resumed_lines.len() - all_ids.len()
    );
}
