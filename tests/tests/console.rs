//! The risk console's API against a running engine, in-process: authentication with analysts'
//! tokens, the decision filters checked against the decision file, the customer endpoint for a
//! live and a passivated customer (woken only when asked), verdicts written to the feedback
//! file under the analyst's name, and a stalled live-stream client that the engine never waits
//! for.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_engine::decision::Decision;
use vigil_engine::scoring::features::CHURN_FEATURES;
use vigil_scenario::{Generator, Scenario};
use vigil_tests::console::Engine;
use vigil_tests::{fixture, read_lines, test_config};

/// A request's status and JSON body, made off the runtime's threads.
async fn call(method: &str, url: String, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let (method, token) = (method.to_owned(), token.map(str::to_owned));
    tokio::task::spawn_blocking(move || {
        let mut request = ureq::request(&method, &url);
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        let response = match response {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{url}: {e}"),
        };
        let status = response.status();
        let text = response.into_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
    .await
    .unwrap()
}

/// How many records a fixture's scenario emits.
fn records_of(scenario: &str) -> u64 {
    Generator::new(Scenario::load(&fixture(scenario)).unwrap()).count() as u64
}

async fn wait_until_decided(engine: &Engine, records: u64, token: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, status) = call("GET", engine.url("/api/status"), token, None).await;
        if status["records"].as_u64() == Some(records) && status["lag_records"] == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never decided everything: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ids(decisions: &Value) -> BTreeSet<String> {
    decisions["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["decision_id"].as_str().unwrap().to_owned())
        .collect()
}

fn file_ids<'a>(decisions: impl Iterator<Item = &'a Decision>) -> BTreeSet<String> {
    decisions.map(|d| d.decision_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_a_token_filters_decisions_shows_customers_and_records_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, "ana:t-ana\nbo:t-bo\n").unwrap();
    let mut config = test_config();
    config.engine.passivation.max_active = 25;
    config.console.token_file = Some(tokens);
    config.console.recent = 100_000;
    let engine = Engine::start(config, "passivation.toml", dir.path()).await;
    let ana = Some("t-ana");

    // Authentication.
    let (status, body) = call("GET", engine.url("/api/status"), None, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    let (status, _) = call("GET", engine.url("/api/decisions"), Some("t-eve"), None).await;
    assert_eq!(status, 401);
    let (status, _) = call(
        "GET",
        engine.url("/api/status?access_token=t-bo"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, page) = call("GET", engine.url("/"), None, None).await;
    assert_eq!(status, 200, "the page itself asks for the token");
    assert!(page.as_str().unwrap().contains("Vigil"));
    assert!(engine.console.tokens_required);

    wait_until_decided(&engine, records_of("passivation.toml"), ana).await;
    let decisions: Vec<Decision> = read_lines(&dir.path().join("decisions.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(decisions.len() < 1_000, "every decision fits one answer");

    // Filters, against the decision file.
    let query = |q: &str| {
        call(
            "GET",
            engine.url(&format!("/api/decisions?limit=1000{q}")),
            ana,
            None,
        )
    };
    let freezes = file_ids(decisions.iter().filter(|d| d.decision.name() == "freeze"));
    assert!(freezes.len() >= 3, "{} freezes", freezes.len());
    assert_eq!(ids(&query("&kind=freeze").await.1), freezes);
    let fraud = file_ids(
        decisions
            .iter()
            .filter(|d| ["freeze", "alert"].contains(&d.decision.name())),
    );
    assert_eq!(ids(&query("&kind=freeze,alert").await.1), fraud);
    let customer = &decisions[decisions.len() / 2].customer_id;
    let theirs = file_ids(decisions.iter().filter(|d| &d.customer_id == customer));
    assert_eq!(
        ids(&query(&format!("&customer={customer}")).await.1),
        theirs
    );
    let since = decisions[decisions.len() / 2].decided_ts;
    let later = file_ids(decisions.iter().filter(|d| d.decided_ts >= since));
    assert_eq!(ids(&query(&format!("&since={since}")).await.1), later);
    let (_, newest) = call("GET", engine.url("/api/decisions?limit=3"), ana, None).await;
    let newest_ids: Vec<&str> = newest["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["decision_id"].as_str().unwrap())
        .collect();
    let last: Vec<&str> = decisions
        .iter()
        .rev()
        .take(3)
        .map(|d| d.decision_id.as_str())
        .collect();
    assert_eq!(newest_ids, last, "newest first, in publication order");
    for (bad, named) in [("&kind=block", "`kind`"), ("&limit=0", "`limit`")] {
        let (status, body) = query(bad).await;
        let body = body.to_string();
        assert!(
            status == 400 && body.contains(named),
            "{bad}: {status} {body}"
        );
    }

    // Customers: live, passivated, woken only when asked.
    let customer_url =
        |id: &str, wake: bool| engine.url(&format!("/api/customers/{id}?wake={wake}"));
    let (mut live, mut passivated) = (None, None);
    for i in 0..400 {
        let id = format!("c-{i:07}");
        let (status, body) = call("GET", customer_url(&id, false), ana, None).await;
        if status != 200 || body["state"].is_null() {
            continue;
        }
        let slot = if body["state"]["active"] == true {
            &mut live
        } else {
            &mut passivated
        };
        slot.get_or_insert((id, body));
        if live.is_some() && passivated.is_some() {
            break;
        }
    }
    let (live_id, live_body) = live.expect("a live customer");
    let (quiet_id, quiet_body) = passivated.expect("a passivated customer");
    for body in [&live_body, &quiet_body] {
        assert_eq!(
            body["state"]["features"].as_array().unwrap().len(),
            CHURN_FEATURES.len()
        );
        assert!(body["state"]["newest_ts"].as_i64().is_some(), "{body}");
        assert_eq!(body["state"]["payments"][0]["name"], "payments_1h");
    }
    let (_, again) = call("GET", customer_url(&quiet_id, false), ana, None).await;
    assert_eq!(
        again["state"]["active"], false,
        "looking does not wake {quiet_id}"
    );
    assert_eq!(again["state"]["features"], quiet_body["state"]["features"]);
    let (_, woken) = call("GET", customer_url(&quiet_id, true), ana, None).await;
    assert_eq!(woken["state"]["active"], true, "{woken}");
    assert_eq!(
        woken["state"]["features"], quiet_body["state"]["features"],
        "the same state, live"
    );
    let (_, after) = call("GET", customer_url(&quiet_id, false), ana, None).await;
    assert_eq!(after["state"]["active"], true);
    let (status, _) = call("GET", customer_url("c-nobody", false), ana, None).await;
    assert_eq!(status, 404);
    eprintln!("live customer {live_id}, passivated customer {quiet_id}");

    // Verdicts, recorded under the analyst's name.
    let freeze = decisions
        .iter()
        .find(|d| d.decision.name() == "freeze")
        .unwrap();
    let feedback_url = |id: &str| {
        let encoded: String = id
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        engine.url(&format!("/api/decisions/{encoded}/feedback"))
    };
    let verdict = serde_json::json!({ "verdict": "false_positive", "note": "customer called" });
    let (status, recorded) = call(
        "POST",
        feedback_url(&freeze.decision_id),
        Some("t-bo"),
        Some(verdict),
    )
    .await;
    assert_eq!(status, 201, "{recorded}");
    assert_eq!(recorded["analyst"], "bo");
    let written: Vec<Value> = read_lines(&dir.path().join("feedback.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["event_id"], freeze.event_id.as_str());
    assert_eq!(written[0]["verdict"], "false_positive");
    assert_eq!(written[0]["analyst"], "bo");
    let (status, body) = call(
        "POST",
        feedback_url(&freeze.decision_id),
        ana,
        Some(serde_json::json!({ "verdict": "maybe" })),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("verdict"), "{body}");
    let (status, _) = call(
        "POST",
        feedback_url("c-1/e-none/1/freeze"),
        ana,
        Some(serde_json::json!({ "verdict": "released" })),
    )
    .await;
    assert_eq!(status, 404);
    if let Some(outreach) = decisions.iter().find(|d| d.decision.name() == "outreach") {
        let (status, body) = call(
            "POST",
            feedback_url(&outreach.decision_id),
            ana,
            Some(serde_json::json!({ "verdict": "released" })),
        )
        .await;
        assert_eq!(status, 422, "{body}");
    }
    assert_eq!(
        read_lines(&dir.path().join("feedback.jsonl")).len(),
        1,
        "refused verdicts are not written"
    );

    let summary = engine.stop().await;
    assert_eq!(summary.records, records_of("passivation.toml"));
}

/// Opens `/api/stream` and never reads it.
fn stalled_client(address: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .write_all(
            b"GET /api/stream HTTP/1.1\r\nHost: console\r\nAccept: text/event-stream\r\n\r\n",
        )
        .unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_client_is_dropped_and_never_holds_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config();
    // Every payment decided: far more than the client's socket buffers hold.
    config.policy.fraud.alert = vigil_models::Threshold::Probability(0.0);
    config.console.stream_buffer = 2_048;
    let engine = Engine::start(config, "e2e.toml", dir.path()).await;
    let mut client = stalled_client(engine.console.address);
    let records = records_of("e2e.toml");
    let started = Instant::now();
    wait_until_decided(&engine, records, None).await;
    let decided_in = started.elapsed();
    let decisions = read_lines(&dir.path().join("decisions.jsonl")).len();
    assert!(decisions > 50_000, "{decisions} decisions");

    // Reading now, the client finds what its socket held, then that it was dropped.
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut received = Vec::new();
    let mut chunk = vec![0; 1 << 16];
    while !String::from_utf8_lossy(&received).contains("event: dropped") {
        let n = client
            .read(&mut chunk)
            .expect("the stream goes on until the drop is said");
        assert!(
            n > 0,
            "the stream ended without saying the client was dropped"
        );
        received.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&received);
    let delivered = text.matches("event: decision").count();
    eprintln!(
        "{decisions} decisions published in {decided_in:?} with a stalled client, which got {delivered} before it was dropped"
    );
    assert!(
        delivered > 0 && delivered < decisions,
        "{delivered} of {decisions}"
    );
    engine.stop().await;
}
