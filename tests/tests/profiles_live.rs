//! Customer profiles from a live Fluvio topic (`FLUVIO_ENDPOINT`), followed while the engine
//! runs: every customer starts as a VIP whose freezes need a score of 1 (so none is frozen),
//! then, mid-stream, a profile update makes them standard, and from the next events on they are
//! frozen exactly as without profiles. Skipped, saying so, when `FLUVIO_ENDPOINT` is unset.

use std::collections::{BTreeMap, BTreeSet};

use vigil_engine::config::TierPolicy;
use vigil_engine::decision::{Decision, DecisionKind};
use vigil_tests::fluvio::mid_stream;
use vigil_tests::{fixture, run_to_files, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_topic_is_followed_live_and_an_update_changes_the_next_decisions() {
    let mut config = test_config();
    config.policy.tiers = BTreeMap::from([(
        "vip".to_owned(),
        TierPolicy {
            freeze_at_least: 1.0,
        },
    )]);
    let Some(test) = mid_stream("profiles", &mut config).await else {
        return;
    };
    // What the embedded engine decides without profiles: the freezes of the second half are
    // the ones expected once profiles change.
    let event_id = |raw: &String| -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(raw).ok()?;
        Some(v["event_id"].as_str()?.to_owned())
    };
    let second_ids: BTreeSet<String> = test.second.iter().filter_map(event_id).collect();
    let scenario = format!("generate:{}", fixture("fluvio.toml").display());
    let plain = run_to_files(&scenario, &test.dir.path().join("plain")).await;
    let freezes = |ds: &mut dyn Iterator<Item = &Decision>| -> BTreeSet<String> {
        ds.filter(|d| d.decision == DecisionKind::Freeze && second_ids.contains(&d.event_id))
            .map(|d| d.decision_id.clone())
            .collect()
    };
    let expected_freezes = freezes(&mut plain.decisions.iter());
    assert!(!expected_freezes.is_empty());

    let customers: BTreeSet<String> = test
        .first
        .iter()
        .chain(&test.second)
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
    let vip = test.produce(&config, "profiles", &profiles("vip")).await;
    assert_eq!(vip.unkeyed, 0, "profile records are keyed by customer id");
    let topic = format!("fluvio:{}-profiles", test.prefix);
    let published = test
        .run_with_change(
            &config,
            |options| options.profiles = Some(topic),
            "profiles",
            &profiles("standard"),
        )
        .await;

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
