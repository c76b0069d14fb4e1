//! Hostile and broken input, one test per defence, each replaying an attack a crafted or broken
//! producer could send: a timestamp in microseconds, a time past the year 9999, an amount of
//! 1e308, event ids that repeat across customers, control characters in ids, a byte order mark
//! before the first record, and model artifacts with extreme values. In every case nothing is
//! lost (records in equal scored plus dead letters), the bad record gets the right reason, and
//! the customer's later events are decided as if it had never come.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use vigil_engine::config::Config;
use vigil_engine::decision::Decision;
use vigil_engine::error::ErrorKind;
use vigil_engine::pipeline;
use vigil_engine::pipeline::Endpoints;
use vigil_engine::publish::RunSummary;
use vigil_engine::scoring::features::FRAUD_FEATURES;
use vigil_engine::scoring::models::load_checked;
use vigil_engine::sink::{Sink, SinkRecord};
use vigil_models::{ModelArtifact, ModelKind, Threshold};
use vigil_tests::{read_lines, run_options, test_config, Published};

const MINUTE: i64 = 60_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn payment(customer: &str, event: &str, ts: i64, amount: f64) -> String {
    serde_json::json!({
        "schema": 1, "event_id": event, "customer_id": customer, "ts": ts, "kind": "payment",
        "amount": amount, "currency": "EUR", "country": "FR", "lat": 48.85, "lon": 2.35,
        "merchant": "m-1", "mcc": "5411", "channel": "pos"
    })
    .to_string()
}

/// Runs `input` (JSON lines, written as given) through the engine with an alert threshold of
/// 0, so every scored payment publishes a decision.
async fn run(input: &[u8], dir: &Path) -> Published {
    let source = dir.join("input.jsonl");
    std::fs::write(&source, input).unwrap();
    let mut config: Config = test_config();
    config.policy.fraud.alert = Threshold::Probability(0.0);
    let (decisions, dead_letters) = (dir.join("decisions.jsonl"), dir.join("dead-letters.jsonl"));
    let options = run_options(
        config,
        &format!("file:{}", source.display()),
        &format!("file:{}", decisions.display()),
        &format!("file:{}", dead_letters.display()),
    );
    let summary = pipeline::run(options, std::future::pending())
        .await
        .unwrap();
    let published = Published {
        summary,
        decisions: read_lines(&decisions)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        dead_letters: read_lines(&dead_letters)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    };
    let s = &published.summary;
    assert_eq!(s.records, s.scored + s.dead_letters, "nothing is lost");
    published
}

fn lines(records: &[String]) -> Vec<u8> {
    records.join("\n").into_bytes()
}

/// (reason, field, source offset) of every dead letter, in source order.
fn rejected(p: &Published) -> Vec<(String, String, u64)> {
    let mut letters: Vec<(String, String, u64)> = p
        .dead_letters
        .iter()
        .map(|l| {
            (
                l["reason"].as_str().unwrap().to_owned(),
                l["field"].as_str().unwrap_or_default().to_owned(),
                l["source"]["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    letters.sort_by_key(|l| l.2);
    letters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_future_time_is_refused_and_does_not_lock_the_customer_out() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let published = run(
        &lines(&[
            payment("c-1", "e-1", now - 60 * MINUTE, 20.0),
            // A broken clock a year ahead.
            payment("c-1", "e-2", now + 365 * 24 * 60 * MINUTE, 25.0),
            // The moment written in microseconds: past the year 9999, as is i64::MAX.
            payment("c-1", "e-3", now * 1_000, 25.0),
            payment("c-1", "e-3b", i64::MAX, 25.0),
            payment("c-1", "e-4", now - 30 * MINUTE, 9_000.0),
            payment("c-1", "e-5", now - 10 * MINUTE, 30.0),
        ]),
        dir.path(),
    )
    .await;
    assert_eq!(
        rejected(&published),
        [
            ("future_event".into(), "ts".into(), 1),
            ("invalid_value".into(), "ts".into(), 2),
            ("invalid_value".into(), "ts".into(), 3)
        ]
    );
    // The payments after it are scored, not refused as late against a clock it moved.
    let decided: Vec<&str> = published
        .decisions
        .iter()
        .map(|d| d.event_id.as_str())
        .collect();
    assert_eq!(decided, ["e-1", "e-4", "e-5"]);

    // Dead letters hold raw customer events: the file is its owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("dead-letters.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amount_of_1e308_is_refused_and_every_later_score_is_a_number() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let mut records = vec![payment("c-1", "e-0", now - 50 * MINUTE, 1e308)];
    records
        .extend((1..6).map(|i| payment("c-1", &format!("e-{i}"), now - (50 - i) * MINUTE, 40.0)));
    let published = run(&lines(&records), dir.path()).await;
    assert_eq!(
        rejected(&published),
        [("invalid_value".into(), "amount".into(), 0)]
    );
    assert_eq!(published.decisions.len(), 5);
    for d in &published.decisions {
        let score = d.score.expect("a scored decision has a score");
        assert!(score.is_finite() && (0.0..=1.0).contains(&score), "{d:?}");
        assert!(!d.degraded);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_event_ids_of_two_customers_get_two_decision_ids() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    // Card data repeats transaction numbers across cards.
    let published = run(
        &lines(&[
            payment("c-1", "t-77", now - 20 * MINUTE, 20.0),
            payment("c-2", "t-77", now - 19 * MINUTE, 20.0),
        ]),
        dir.path(),
    )
    .await;
    let mut ids: Vec<&str> = published
        .decisions
        .iter()
        .map(|d| d.decision_id.as_str())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            format!("c-1/t-77/{}/alert", now - 20 * MINUTE),
            format!("c-2/t-77/{}/alert", now - 19 * MINUTE)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_record_gets_its_first_decision_and_counts_once() {
    let now = now_ms();
    let first = payment("c-1", "e-2", now - 19 * MINUTE, 30.0);
    let history = |repeats: &[String]| {
        let mut records = vec![
            payment("c-1", "e-1", now - 20 * MINUTE, 20.0),
            first.clone(),
        ];
        records.extend_from_slice(repeats);
        records.push(payment("c-1", "e-3", now - 18 * MINUTE, 25.0));
        lines(&records)
    };
    let (once, twice) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let plain = run(&history(&[]), once.path()).await;
    // A producer's retry of e-2, then a different record reusing its id.
    let reused = payment("c-1", "e-2", now - 19 * MINUTE, 3_000.0);
    let retried = run(&history(&[first.clone(), reused]), twice.path()).await;

    let of = |p: &Published, event: &str| -> Vec<Decision> {
        p.decisions
            .iter()
            .filter(|d| d.event_id == event)
            .cloned()
            .collect()
    };
    let e2 = of(&retried, "e-2");
    assert_eq!(e2.len(), 2);
    assert_eq!(
        e2[0], e2[1],
        "the repeat gets the first decision, unchanged"
    );
    // e-3 is scored on the same features as without the repeat: e-2 counted once.
    let (plain_e3, retried_e3) = (&of(&plain, "e-3")[0], &of(&retried, "e-3")[0]);
    assert_eq!(
        (plain_e3.score, &plain_e3.reasons),
        (retried_e3.score, &retried_e3.reasons)
    );
    assert_eq!(
        rejected(&retried),
        [("reused_event_id".to_owned(), "event_id".to_owned(), 3)]
    );
}

/// A dead-letter sink whose records may be at most `limit` bytes, as a broker topic's are: a
/// larger one is refused for good.
struct SmallRecords {
    limit: usize,
    taken: Arc<Mutex<Vec<serde_json::Value>>>,
}

#[async_trait]
impl Sink for SmallRecords {
    async fn send(&mut self, batch: &[SinkRecord]) -> vigil_engine::Result<()> {
        if batch.iter().any(|r| r.value.len() > self.limit) {
            return Err(vigil_engine::Error::Connector {
                kind: ErrorKind::InvalidInput,
                what: "small-records".into(),
                cause: "record larger than the topic allows".into(),
            });
        }
        let mut taken = self.taken.lock().unwrap();
        taken.extend(
            batch
                .iter()
                .map(|r| serde_json::from_slice(&r.value).unwrap()),
        );
        Ok(())
    }

    async fn flush(&mut self) -> vigil_engine::Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        "small-records".into()
    }
}

/// Runs `input` with dead letters to a `SmallRecords` sink of `limit`; returns what it took.
async fn run_to_small_records(input: &[u8], limit: usize) -> (RunSummary, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("input.jsonl");
    std::fs::write(&source, input).unwrap();
    let taken = Arc::new(Mutex::new(Vec::new()));
    let endpoints = Endpoints {
        source: None,
        decisions: None,
        dead_letters: Some(Box::new(SmallRecords {
            limit,
            taken: taken.clone(),
        })),
    };
    let options = run_options(
        test_config(),
        &format!("file:{}", source.display()),
        "discard",
        "discard",
    );
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        pipeline::run_with(options, endpoints, std::future::pending()),
    )
    .await
    .expect("a refused dead letter never stalls the engine")
    .unwrap();
    let taken = taken.lock().unwrap().clone();
    (summary, taken)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_too_large_for_its_sink_goes_bare_or_is_dropped_never_retried() {
    let mut input = payment("c-1", "e-1", now_ms() - MINUTE, 20.0).into_bytes();
    input.extend_from_slice(b"\n");
    let garbage = vec![b'x'; 10_000];
    input.extend_from_slice(&garbage);
    input.push(b'\n');

    // 4 KiB of the record does not fit in 1 KiB records: it goes without the record's bytes.
    let (summary, taken) = run_to_small_records(&input, 1_024).await;
    assert_eq!((summary.records, summary.dead_letters), (2, 1));
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0]["reason"], "invalid_json");
    assert_eq!(taken[0]["raw"], "");
    assert_eq!(taken[0]["raw_bytes"], 10_000);
    assert_eq!(
        taken[0]["raw_sha256"].as_str().unwrap(),
        Sha256::digest(&garbage)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );

    // Not even that fits: dropped and counted, and the run goes on to the end.
    let (summary, taken) = run_to_small_records(&input, 10).await;
    assert_eq!((summary.records, summary.dead_letters), (2, 1));
    assert!(taken.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_far_over_the_size_limit_is_read_no_further_and_dead_lettered_whole() {
    let dir = tempfile::tempdir().unwrap();
    // 64 MiB of one line: the source reads 64 KiB of it, hashes and skips the rest.
    let huge = vec![b'{'; 64 << 20];
    let mut input = huge.clone();
    input.push(b'\n');
    input.extend_from_slice(payment("c-1", "e-1", now_ms() - MINUTE, 20.0).as_bytes());
    let published = run(&input, dir.path()).await;
    assert_eq!(published.decisions.len(), 1);
    let letter = &published.dead_letters[0];
    assert_eq!(letter["reason"], "oversized");
    assert_eq!(letter["raw_bytes"], 64u64 << 20);
    assert_eq!(letter["raw"].as_str().unwrap().len(), 4_096);
    assert_eq!(
        letter["raw_sha256"].as_str().unwrap(),
        Sha256::digest(&huge)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_ids_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let published = run(
        &lines(&[
            payment("c-1\n{\"forged\":true}", "e-1", now - 5 * MINUTE, 20.0),
            payment("c-1", "e-\u{1b}[2J", now - 4 * MINUTE, 20.0),
            payment("c-1", "e-3", now - 3 * MINUTE, 20.0),
        ]),
        dir.path(),
    )
    .await;
    assert_eq!(
        rejected(&published),
        [
            ("invalid_value".into(), "customer_id".into(), 0),
            ("invalid_value".into(), "event_id".into(), 1)
        ]
    );
    let detail = published.dead_letters[0]["detail"].as_str().unwrap();
    assert!(detail.contains("control character U+000A"), "{detail}");
    assert_eq!(published.decisions.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_order_mark_before_the_first_record_is_not_a_broken_record() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let mut input = b"\xEF\xBB\xBF".to_vec();
    input.extend(lines(&[
        payment("c-1", "e-1", now - 2 * MINUTE, 20.0),
        payment("c-1", "e-2", now - MINUTE, 20.0),
    ]));
    let published = run(&input, dir.path()).await;
    assert_eq!(rejected(&published), []);
    assert_eq!(published.decisions.len(), 2);
}

#[test]
fn artifacts_with_extreme_values_are_refused_naming_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/artifacts/fraud.json"),
    )
    .unwrap();
    let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut json: serde_json::Value = serde_json::from_str(&shipped).unwrap();
        edit(&mut json);
        let path = dir.path().join("fraud.json");
        std::fs::write(&path, json.to_string()).unwrap();
        load_checked(&path, ModelKind::Fraud, &[], 1_000_000)
            .unwrap_err()
            .to_string()
    };
    let err = refused(&|j| j["standardizer"]["mean"][0] = 1e300.into());
    assert!(
        err.contains("standardizer mean of `log_amount` is 1e300"),
        "{err}"
    );
    let err = refused(&|j| j["standardizer"]["scale"][3] = 5e-324.into());
    assert!(
        err.contains("standardizer scale of `payments_24h`"),
        "{err}"
    );
    let err = refused(&|j| j["algorithm"]["trees"]["value"][5] = 1e308.into());
    assert!(
        err.contains("node 5 has value 1e308, outside ±1000"),
        "{err}"
    );
    // Two million nodes: refused before it takes the engine's memory.
    let err = refused(&|j| {
        let trees = &mut j["algorithm"]["trees"];
        for field in ["feature", "left", "right"] {
            trees[field] = serde_json::json!(vec![u32::MAX; 2_000_000]);
        }
        for field in ["threshold", "value"] {
            trees[field] = serde_json::json!(vec![0.0; 2_000_000]);
        }
    });
    assert!(
        err.contains("2000000 nodes, more than the allowed 1000000"),
        "{err}"
    );

    // The shipped artifact itself passes.
    let path = dir.path().join("fraud.json");
    std::fs::write(&path, &shipped).unwrap();
    let model = load_checked(&path, ModelKind::Fraud, &[], 1_000_000).unwrap();
    assert_eq!(model.artifact().feature_names.len(), FRAUD_FEATURES.len());
    assert!(ModelArtifact::from_json(&shipped, "shipped").is_ok());
    // Under a tighter `models.max_nodes`, it is refused as well.
    let err = load_checked(&path, ModelKind::Fraud, &[], 1_000)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than the allowed 1000"), "{err}");
}
