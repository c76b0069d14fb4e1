//! Customer profiles from a live Fluvio topic (`FLUVIO_ENDPOINT`), followed while the engine
//! runs: every customer starts as a VIP whose freezes need a score of 1 (so none is frozen),
//! then, mid-stream, a profile update makes them standard, and from the next events on they are
//! frozen exactly as without profiles. Skipped, saying so, when `FLUVIO_ENDPOINT` is unset.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use vigil_engine::config::TierPolicy;
use vigil_engine::decision::{Decision, DecisionKind};
use vigil_scenario::{Generator, Scenario};
use vigil_tests::fluvio::{
    committed, decisions, endpoint, options, read_topic, run, unique_prefix,
};
use vigil_tests::{fixture, run_to_files, test_config, write_lines};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_topic_is_followed_live_and_an_update_changes_the_next_decisions() {
    if endpoint().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("profiles");
    let mut config = test_config();
    config.fluvio.consumer = prefix.clone();
    config.fluvio.commit_interval = Duration::from_millis(100);
    config.policy.tiers = BTreeMap::from([(
        "vip".to_owned(),
        TierPolicy {
            freeze_at_least: 1.0,
        },
    )]);
    let fluvio = vigil_fluvio::client::connect(&config.fluvio).await.unwrap();
    vigil_fluvio::topics::create_topics(&fluvio, &prefix, 2)
        .await
        .unwrap();

    // The scenario's events (its malformed records aside: they decide nothing) in two halves,
    // and what the embedded engine decides without profiles: the freezes of the second half
    // are the ones expected once profiles change.
    let scenario = fixture("fluvio.toml");
    let records: Vec<String> = Generator::new(Scenario::load(&scenario).unwrap())
        .filter(|r| !r.malformed)
        .map(|r| String::from_utf8(r.payload.to_vec()).unwrap())
        .collect();
    let (first, second) = records.split_at(records.len() / 2);
    let event_id = |raw: &String| -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(raw).ok()?;
        Some(v["event_id"].as_str()?.to_owned())
    };
    let second_ids: BTreeSet<String> = second.iter().filter_map(event_id).collect();
    let plain = run_to_files(&format!("generate:{}", scenario.display()), dir.path()).await;
    let freezes = |ds: &mut dyn Iterator<Item = &Decision>| -> BTreeSet<String> {
        ds.filter(|d| d.decision == DecisionKind::Freeze && second_ids.contains(&d.event_id))
            .map(|d| d.decision_id.clone())
            .collect()
    };
    let expected_freezes = freezes(&mut plain.decisions.iter());
    assert!(!expected_freezes.is_empty());

    let customers: BTreeSet<String> = records
        .iter()
        .filter_map(|raw| {
            let v: serde_json::Value = serde_json::from_str(raw).ok()?;
            Some(v["customer_id"].as_str()?.to_owned())
        })
        .collect();
    let profiles = |tier: &str| -> Vec<String> {
        customers
            .iter()
            .map(|c| format!(r#"{{"customer_id":"{c}","tier":"{tier}","marketing_consent":true,"channels":{{"email":true}}}}"#))
            .collect()
    };
    let produce = |from: String, to: String| {
        let config = config.clone();
        async move {
            vigil_fluvio::produce::produce(&vigil::connectors(), &from, &to, None, &config)
                .await
                .unwrap()
        }
    };
    let (events, profile_topic) = (
        format!("fluvio:{prefix}-events"),
        format!("fluvio:{prefix}-profiles"),
    );
    let vip = produce(
        write_lines(&dir.path().join("vip.jsonl"), &profiles("vip")),
        profile_topic.clone(),
    )
    .await;
    assert_eq!(vip.unkeyed, 0, "profile records are keyed by customer id");
    produce(
        write_lines(&dir.path().join("first.jsonl"), first),
        events.clone(),
    )
    .await;

    let mut run_options = options(&prefix, &config, None, records.len() as u64);
    run_options.profiles = Some(profile_topic.clone());
    let engine = tokio::spawn(run(run_options));

    // Once the first half is decided, every customer becomes standard, then the second half
    // comes.
    let events_topic = format!("{prefix}-events");
    for _ in 0..600 {
        if committed(&fluvio, &prefix, &events_topic).await >= first.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    produce(
        write_lines(&dir.path().join("standard.jsonl"), &profiles("standard")),
        profile_topic,
    )
    .await;
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
    let in_first = |d: &&Decision| !second_ids.contains(&d.event_id) && !d.event_id.is_empty();
    assert!(
        !published
            .iter()
            .filter(in_first)
            .any(|d| d.decision == DecisionKind::Freeze),
        "a VIP was frozen"
    );
    assert!(published
        .iter()
        .filter(in_first)
        .any(|d| d.rules.iter().any(|r| &**r == "tier:vip")));
    assert_eq!(freezes(&mut published.iter()), expected_freezes);
}
