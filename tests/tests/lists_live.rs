//! List changes from a live Fluvio topic (`FLUVIO_ENDPOINT`), followed while the engine runs:
//! a merchant added to a block list mid-stream is frozen from the next payment on, and not
//! before. Skipped, saying so, when `FLUVIO_ENDPOINT` is unset.

use std::collections::BTreeSet;
use std::time::Duration;

use vigil_engine::config::ListConfig;
use vigil_engine::decision::{Decision, DecisionKind};
use vigil_engine::scoring::lists::{ListAction, ListField};
use vigil_scenario::{Generator, Scenario};
use vigil_tests::fluvio::{
    committed, decisions, endpoint, options, read_topic, run, unique_prefix,
};
use vigil_tests::{fixture, test_config, write_lines};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_blocked_mid_stream_is_frozen_from_the_next_payment_on() {
    if endpoint().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("lists");
    let mut config = test_config();
    config.fluvio.consumer = prefix.clone();
    config.fluvio.commit_interval = Duration::from_millis(100);
    let empty = dir.path().join("bad.txt");
    std::fs::write(&empty, "").unwrap();
    config.policy.lists.insert(
        "bad_merchants".into(),
        ListConfig {
            file: empty,
            field: ListField::Merchant,
            action: Some(ListAction::Block),
        },
    );
    let fluvio = vigil_fluvio::client::connect(&config.fluvio).await.unwrap();
    vigil_fluvio::topics::create_topics(&fluvio, &prefix, 2)
        .await
        .unwrap();

    let records: Vec<String> = Generator::new(Scenario::load(&fixture("fluvio.toml")).unwrap())
        .filter(|r| !r.malformed)
        .map(|r| String::from_utf8(r.payload.to_vec()).unwrap())
        .collect();
    let (first, second) = records.split_at(records.len() / 2);
    let payment = |raw: &String| -> Option<(String, String)> {
        let v: serde_json::Value = serde_json::from_str(raw).ok()?;
        (v["kind"] == "payment").then_some(())?;
        Some((
            v["event_id"].as_str()?.to_owned(),
            v["merchant"].as_str()?.to_owned(),
        ))
    };
    // The merchant most paid at in both halves.
    let mut counts = std::collections::BTreeMap::<String, [usize; 2]>::new();
    for (half, records) in [first, second].into_iter().enumerate() {
        for (_, merchant) in records.iter().filter_map(payment) {
            counts.entry(merchant).or_default()[half] += 1;
        }
    }
    let (merchant, _) = counts
        .into_iter()
        .max_by_key(|(_, [a, b])| *a.min(b))
        .unwrap();
    let at = |half: &[String]| -> BTreeSet<String> {
        half.iter()
            .filter_map(payment)
            .filter(|(_, m)| *m == merchant)
            .map(|(e, _)| e)
            .collect()
    };
    let (before, after) = (at(first), at(second));
    assert!(!before.is_empty() && !after.is_empty());

    let produce = |from: String, to: String| {
        let config = config.clone();
        async move {
            vigil_fluvio::produce::produce(&vigil::connectors(), &from, &to, None, &config)
                .await
                .unwrap()
        }
    };
    let events = format!("fluvio:{prefix}-events");
    let changes = format!("fluvio:{prefix}-lists");
    produce(
        write_lines(&dir.path().join("first.jsonl"), first),
        events.clone(),
    )
    .await;
    let mut run_options = options(&prefix, &config, None, records.len() as u64);
    run_options.lists = Some(changes.clone());
    let engine = tokio::spawn(run(run_options));
    let events_topic = format!("{prefix}-events");
    for _ in 0..600 {
        if committed(&fluvio, &prefix, &events_topic).await >= first.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let change = format!(r#"{{"list":"bad_merchants","value":"{merchant}"}}"#);
    let produced = produce(
        write_lines(&dir.path().join("change.jsonl"), &[change]),
        changes,
    )
    .await;
    assert_eq!(produced.unkeyed, 0, "list changes are keyed by value");
    tokio::time::sleep(Duration::from_secs(2)).await;
    produce(
        write_lines(&dir.path().join("second.jsonl"), second),
        events,
    )
    .await;
    let summary = engine.await.unwrap();
    assert_eq!(summary.records, records.len() as u64);

    let published: Vec<Decision> =
        decisions(&read_topic(&fluvio, &format!("{prefix}-decisions")).await)
            .into_iter()
            .map(|(_, _, d)| d)
            .collect();
    let blocked = |d: &&Decision| d.rules.iter().any(|r| &**r == "list:bad_merchants");
    let frozen: BTreeSet<String> = published
        .iter()
        .filter(blocked)
        .inspect(|d| assert_eq!(d.decision, DecisionKind::Freeze))
        .map(|d| d.event_id.clone())
        .collect();
    assert_eq!(
        frozen, after,
        "every later payment there, and no earlier one"
    );
}
