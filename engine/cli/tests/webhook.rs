//! Decisions delivered to webhooks, against real HTTP receivers on 127.0.0.1 that verify every
//! signature: steady delivery gets every decision there once; a receiver that fails, throttles
//! and drops connections loses nothing; a short deadline parks what it cannot deliver and the
//! delivered and parked decisions account for every one, once; a receiver that refuses with a
//! 400 gets everything parked at once while the engine goes on; `kill -9` during an outage
//! followed by a restart delivers everything; and a rate limit paces the requests. Runs the real `vigil` binary on the paced
//! generator source.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::Duration;

use common::fixture;
use common::receiver::{Answer, Receiver};

const SECRET: &str = "whsec-test-2f8a";
const ALL_KINDS: &str = r#"["freeze", "alert", "outreach", "outreach_suppressed"]"#;

/// Configuration: every payment decided (alert at 0), checkpoints often, and one webhook sink
/// taking every decision kind, with `webhook` keys added.
fn config(dir: &Path, receiver: &Receiver, webhook: &str) -> PathBuf {
    let path = dir.join("vigil.toml");
    let parked = dir.join("parked.jsonl");
    std::fs::write(
        &path,
        format!(
            r#"
            [engine]
            checkpoint_interval = "300ms"
            [engine.latency_budget]
            fraud = "60s"
            churn = "60s"
            [policy.fraud]
            alert = 0.0
            [metrics]
            listen = "127.0.0.1:0"
            [webhook]
            max_backoff = "500ms"
            undeliverable = "file:{parked}"
            {webhook}
            [[sinks]]
            sink = "webhook:{url}"
            decisions = {ALL_KINDS}
            "#,
            parked = parked.display(),
            url = receiver.url(),
        ),
    )
    .unwrap();
    path
}

fn start(dir: &Path, config: &Path) -> Child {
    common::run_in(dir, &fixture("webhook.toml"), config)
        .env("VIGIL_WEBHOOK_SECRET", SECRET)
        .spawn()
        .unwrap()
}

async fn finish(child: Child) -> Output {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "vigil failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every decision id the engine published to its decision file.
fn published(dir: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(dir.join("decisions.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let d: serde_json::Value = serde_json::from_str(l).unwrap();
            d["decision_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// The parked batches, and every decision id in them (each once: a parked decision was parked
/// in one batch only).
fn parked(dir: &Path) -> (Vec<serde_json::Value>, BTreeSet<String>) {
    let text = std::fs::read_to_string(dir.join("parked.jsonl")).unwrap_or_default();
    let batches: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut ids = BTreeSet::new();
    for batch in &batches {
        for d in batch["decisions"].as_array().unwrap() {
            let id = d["decision_id"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "{id} parked twice");
        }
    }
    (batches, ids)
}

async fn run_against(receiver: &Receiver, webhook: &str) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), receiver, webhook);
    let out = finish(start(dir.path(), &config)).await;
    (dir, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_arrives_once_with_a_signature_that_verifies() {
    let receiver = Receiver::start(SECRET, Box::new(|_| Answer::Accept)).await;
    let (dir, _) = run_against(&receiver, "").await;
    let published = published(dir.path());
    assert!(published.len() > 5_000, "{} decisions", published.len());
    assert_eq!(receiver.ids(), published);
    assert_eq!(receiver.bad_signatures(), 0);
    assert!(parked(dir.path()).0.is_empty());
    // Batches of at most 100, and each decision once.
    assert!(receiver.accepted_requests() >= published.len() as u64 / 100);
    assert_eq!(receiver.duplicates(), 0);
    // Outreach and alert decisions alike, exactly as published.
    let decision = receiver.decisions().into_values().next().unwrap();
    assert!(decision["score"].is_number() && decision["model"].is_string());
}

/// 500 for 2 s, then 429 with `Retry-After: 1` for 2 s, then connections dropped mid-request
/// for 2 s, then accepted.
fn chaos(since: Duration) -> Answer {
    match since.as_millis() {
        0..2_000 => Answer::Status(500),
        2_000..4_000 => Answer::Throttle(1),
        4_000..6_000 => Answer::Drop,
        _ => Answer::Accept,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_throttles_and_drops_connections_loses_nothing() {
    let receiver = Receiver::start(SECRET, Box::new(chaos)).await;
    let (dir, _) = run_against(&receiver, r#"deadline = "2m""#).await;
    let published = published(dir.path());
    eprintln!(
        "chaos: {} decisions published, {} delivered, {} parked; {} requests, {} accepted, {} duplicates, {} bad signatures",
        published.len(),
        receiver.ids().len(),
        parked(dir.path()).1.len(),
        receiver.requests(),
        receiver.accepted_requests(),
        receiver.duplicates(),
        receiver.bad_signatures()
    );
    assert_eq!(receiver.ids(), published);
    assert!(parked(dir.path()).0.is_empty());
    assert_eq!(receiver.bad_signatures(), 0);
    // It took retries through every failure to get there.
    assert!(
        receiver.requests() > receiver.accepted_requests() + 6,
        "{} requests, {} accepted",
        receiver.requests(),
        receiver.accepted_requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_misses_its_deadline_is_parked_and_everything_is_accounted_for_once() {
    // Down for the first 3 s, with a deadline of 1 s: the first batches are parked, the later
    // ones delivered.
    let down = |since: Duration| {
        if since < Duration::from_secs(3) {
            Answer::Status(503)
        } else {
            Answer::Accept
        }
    };
    let receiver = Receiver::start(SECRET, Box::new(down)).await;
    let (dir, _) = run_against(&receiver, r#"deadline = "1s""#).await;
    let published = published(dir.path());
    let (batches, parked) = parked(dir.path());
    let delivered = receiver.ids();
    eprintln!(
        "deadline: {} decisions published, {} delivered, {} parked in {} batches",
        published.len(),
        delivered.len(),
        parked.len(),
        batches.len()
    );
    assert!(!parked.is_empty() && !delivered.is_empty());
    assert!(delivered.is_disjoint(&parked), "delivered and parked");
    assert_eq!(
        delivered.union(&parked).cloned().collect::<BTreeSet<_>>(),
        published,
        "{} delivered + {} parked of {} published",
        delivered.len(),
        parked.len(),
        published.len()
    );
    for batch in &batches {
        let error = batch["error"].as_str().unwrap();
        assert!(
            error.contains("503") && error.contains("gave up after"),
            "{error}"
        );
        assert_eq!(batch["endpoint"], receiver.url());
        assert!(batch["attempts"].as_u64().unwrap() >= 2);
        assert_eq!(batch["idempotency_key"].as_str().unwrap().len(), 32);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_parks_every_batch_at_once_with_the_error_and_the_engine_goes_on() {
    let receiver = Receiver::start(SECRET, Box::new(|_| Answer::Status(400))).await;
    let (dir, _) = run_against(&receiver, r#"deadline = "10m""#).await;
    let published = published(dir.path());
    let (batches, parked) = parked(dir.path());
    assert_eq!(parked, published);
    assert!(receiver.ids().is_empty());
    for batch in &batches {
        assert_eq!(batch["attempts"], 1, "{batch}");
        let error = batch["error"].as_str().unwrap();
        assert!(error.starts_with("HTTP 400 Bad Request"), "{error}");
    }
    // One request per batch: a 400 is never sent again.
    assert_eq!(receiver.requests(), batches.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_an_outage_then_a_restart_delivers_every_decision() {
    let receiver = Receiver::start(SECRET, Box::new(|_| Answer::Status(503))).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &receiver, r#"deadline = "10m""#);
    let mut first = start(dir.path(), &config);
    // Let it fail a few batches, well inside the deadline, then kill it.
    for _ in 0..1_200 {
        if receiver.requests() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        receiver.requests() >= 5,
        "the engine sent nothing in a minute"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let before = published(dir.path());
    assert!(!before.is_empty(), "nothing was decided before the kill");
    assert!(receiver.ids().is_empty());

    receiver.answer_with(Box::new(|_| Answer::Accept));
    finish(start(dir.path(), &config)).await;
    let published = published(dir.path());
    let delivered = receiver.ids();
    let missing: Vec<&String> = published.difference(&delivered).collect();
    assert!(
        missing.is_empty(),
        "{} of {} published decisions never delivered, e.g. {:?}",
        missing.len(),
        published.len(),
        missing.first()
    );
    assert!(parked(dir.path()).0.is_empty());
    assert_eq!(receiver.bad_signatures(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_paces_requests_to_an_endpoint() {
    let receiver = Receiver::start(SECRET, Box::new(|_| Answer::Accept)).await;
    let (dir, _) = run_against(&receiver, "rate_limit = 100\nbatch_size = 5").await;
    assert_eq!(receiver.ids(), published(dir.path()));
    // Batches of 5 make well over a thousand requests; a token bucket of 100 a second, which
    // starts full, lets through one per 10 ms beyond the first 100. Unlimited, they come as
    // fast as the paced scenario (about 6 s).
    let requests = receiver.accepted_requests();
    assert!(requests > 1_000, "{requests} requests");
    let least = Duration::from_secs_f64((requests - 100) as f64 / 100.0);
    assert!(
        receiver.accepting_for() >= least.mul_f64(0.95),
        "{requests} requests in {:?}",
        receiver.accepting_for()
    );
}
