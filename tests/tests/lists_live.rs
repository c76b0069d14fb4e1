//! List changes from a live Fluvio topic (`FLUVIO_ENDPOINT`), followed while the engine runs:
//! a merchant added to a block list mid-stream is frozen from the next payment on, and not
//! before. Skipped, saying so, when `FLUVIO_ENDPOINT` is unset.

use std::collections::{BTreeMap, BTreeSet};

use vigil_engine::config::ListConfig;
use vigil_engine::decision::{Decision, DecisionKind};
use vigil_engine::scoring::lists::{ListAction, ListField};
use vigil_tests::fluvio::mid_stream;
use vigil_tests::test_config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_blocked_mid_stream_is_frozen_from_the_next_payment_on() {
    let mut config = test_config();
    let Some(test) = mid_stream("lists", &mut config).await else {
        return;
    };
    let empty = test.dir.path().join("bad.txt");
    std::fs::write(&empty, "").unwrap();
    config.policy.lists.insert(
        "bad_merchants".into(),
        ListConfig {
            file: empty,
            field: ListField::Merchant,
            action: Some(ListAction::Block),
        },
    );
    let payment = |raw: &String| -> Option<(String, String)> {
        let v: serde_json::Value = serde_json::from_str(raw).ok()?;
        (v["kind"] == "payment").then_some(())?;
        Some((
            v["event_id"].as_str()?.to_owned(),
            v["merchant"].as_str()?.to_owned(),
        ))
    };
    // The merchant most paid at in both halves.
    let mut counts = BTreeMap::<String, [usize; 2]>::new();
    for (half, records) in [&test.first, &test.second].into_iter().enumerate() {
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
    let (before, after) = (at(&test.first), at(&test.second));
    assert!(!before.is_empty() && !after.is_empty());

    let topic = format!("fluvio:{}-lists", test.prefix);
    let change = format!(r#"{{"list":"bad_merchants","value":"{merchant}"}}"#);
    let published = test
        .run_with_change(
            &config,
            |options| options.lists = Some(topic),
            "lists",
            &[change],
        )
        .await;
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
