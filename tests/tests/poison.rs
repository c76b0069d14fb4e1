//! Poison events: an event that makes its customer's processing fail is tried again after the
//! customer is restarted from its last good state, then dead-lettered with the reason. The
//! customer keeps the state from before the poison event: every later event's features equal
//! those of a history without it. A transient failure (`poison-once-`) succeeds on the retry.
//! Faults are injected through the engine's `after_features` seam, which only tests set: no
//! build of the engine has a way to make an event fail on purpose.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use vigil_engine::event::Event;
use vigil_engine::pipeline;
use vigil_engine::scoring::AfterFeatures;
use vigil_models::ModelKind;
use vigil_tests::{bits, offline_features, read_lines, test_config, FeatureBits};

const START: i64 = 1_780_000_000_000;

fn payment(id: &str, customer: &str, minute: i64, amount: f64, merchant: &str) -> String {
    format!(
        r#"{{"schema":1,"event_id":"{id}","customer_id":"{customer}","ts":{},"kind":"payment","amount":{amount},"currency":"EUR","country":"FR","lat":48.85,"lon":2.35,"merchant":"{merchant}","mcc":"5411"}}"#,
        START + minute * 60_000
    )
}

/// Two customers' payments; `c-1`'s 11th is poison, `c-2`'s 6th fails once.
fn history(with_poison: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..20 {
        let amount = 20.0 + (i % 7) as f64 * 13.0;
        if i == 10 && with_poison {
            lines.push(payment("poison-1", "c-1", i * 7, 9_000.0, "m-new"));
        }
        lines.push(payment(&format!("a-{i}"), "c-1", i * 7 + 1, amount, "m-1"));
        let id = if i == 5 {
            "poison-once-2".to_owned()
        } else {
            format!("b-{i}")
        };
        lines.push(payment(&id, "c-2", i * 5 + 2, amount * 2.0, "m-2"));
    }
    lines
}

fn write(dir: &Path, name: &str, lines: &[String]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    format!("file:{}", path.display())
}

/// Panics on every event whose id starts `poison-`, and only on the first try for those that
/// start `poison-once-`, as a transient fault would.
fn poison() -> AfterFeatures {
    let failed_once = Mutex::new(Vec::<String>::new());
    Arc::new(move |event: &Event| {
        let Some(rest) = event.event_id.strip_prefix("poison-") else {
            return;
        };
        if rest.starts_with("once-") {
            let mut failed = failed_once.lock().unwrap_or_else(|e| e.into_inner());
            if failed.contains(&event.event_id) {
                return;
            }
            failed.push(event.event_id.clone());
        }
        panic!("injected fault on {}", event.event_id);
    })
}

#[tokio::test]
async fn a_poison_event_is_retried_then_dead_lettered_and_the_customer_keeps_its_last_good_state() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "events.jsonl", &history(true));
    let dead_letters: PathBuf = dir.path().join("dead-letters.jsonl");
    let mut options = vigil_tests::run_options(
        test_config(),
        &input,
        "discard",
        &format!("file:{}", dead_letters.display()),
    );
    let (audits, mut rx) = mpsc::unbounded_channel();
    options.audit = Some(audits);
    options.after_features = Some(poison());
    let summary = pipeline::run(options, std::future::pending())
        .await
        .unwrap();

    // Nothing lost: 41 records, 40 scored, the poison one dead-lettered once with the reason.
    assert_eq!(
        (summary.records, summary.scored, summary.dead_letters),
        (41, 40, 1)
    );
    let letters = read_lines(&dead_letters);
    assert_eq!(letters.len(), 1);
    let letter: serde_json::Value = serde_json::from_str(&letters[0]).unwrap();
    assert_eq!(letter["reason"], "actor_failure");
    let detail = letter["detail"].as_str().unwrap();
    assert!(
        detail.contains("failed 2 times") && detail.contains("injected fault on poison-1"),
        "{detail}"
    );
    assert!(letter["raw"].as_str().unwrap().contains("\"poison-1\""));

    let mut live = FeatureBits::new();
    while let Some(audit) = rx.recv().await {
        let features = bits(&audit.features);
        assert!(
            live.insert(audit.event_id, features).is_none(),
            "scored twice"
        );
    }
    assert!(
        live.contains_key("poison-once-2"),
        "the transient failure succeeded on retry"
    );
    assert!(!live.contains_key("poison-1"));

    // The state after the poison event is the state before it: features equal those of the
    // same history without the poison event, bit for bit.
    let clean = write(dir.path(), "clean.jsonl", &history(false));
    let offline = offline_features(&clean, None, ModelKind::Fraud).await;
    assert_eq!(live, offline);
}
