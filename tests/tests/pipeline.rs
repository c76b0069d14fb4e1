//! The whole pipeline on a seeded scenario: what risk teams rely on, checked against what the
//! generator injected.

use std::collections::{BTreeMap, HashMap, HashSet};

use vigil_engine::decision::{Decision, DecisionKind};
use vigil_scenario::{Generator, Scenario};
use vigil_tests::{fixture, run_to_files, Published};

/// The scenario, its ground truth, and the malformed payloads the generator emitted.
fn truth() -> (vigil_scenario::GroundTruth, Vec<String>) {
    let mut generator = Generator::new(Scenario::load(&fixture("e2e.toml")).unwrap());
    let malformed = generator
        .by_ref()
        .filter(|r| r.malformed)
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .collect();
    (generator.truth().clone(), malformed)
}

async fn run_e2e() -> Published {
    let dir = tempfile::tempdir().unwrap();
    let source = format!("generate:{}", fixture("e2e.toml").display());
    run_to_files(&source, dir.path()).await
}

fn customers_with(published: &Published, kinds: &[DecisionKind]) -> HashSet<String> {
    published
        .decisions
        .iter()
        .filter(|d| kinds.contains(&d.decision))
        .map(|d| d.customer_id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_scenario_end_to_end() {
    let (truth, malformed) = truth();
    let published = run_e2e().await;
    let fraud_flagged = customers_with(&published, &[DecisionKind::Freeze, DecisionKind::Alert]);

    // Every account takeover is caught.
    let missed: Vec<&String> = truth
        .account_takeover
        .iter()
        .filter(|c| !fraud_flagged.contains(*c))
        .collect();
    assert!(
        missed.is_empty(),
        "account takeovers without freeze or alert: {missed:?}"
    );

    // At most 2% of benign customers are flagged.
    let injected: HashSet<&String> = truth
        .account_takeover
        .iter()
        .chain(&truth.card_testing)
        .collect();
    let benign_customers = 2000 - injected.len();
    let benign_flagged = fraud_flagged
        .iter()
        .filter(|c| !injected.contains(c))
        .count();
    assert!(
        benign_flagged * 50 <= benign_customers,
        "{benign_flagged} of {benign_customers} benign customers flagged"
    );

    // Outreach goes to the churn cohort only. (Its drifters never go quiet here, so the model,
    // which gives the probability of no activity at all in the next 30 days, reaches few of
    // them; `timers.rs` checks that those who leave are reached.)
    let outreached = customers_with(&published, &[DecisionKind::Outreach]);
    let strays: Vec<&String> = outreached
        .iter()
        .filter(|c| !truth.churners.contains(*c))
        .collect();
    assert!(
        strays.is_empty(),
        "outreach outside the churn cohort: {strays:?}"
    );

    // Nobody gets two outreaches inside the 7-day cooldown.
    let mut outreach_times: HashMap<&str, Vec<i64>> = HashMap::new();
    for d in published
        .decisions
        .iter()
        .filter(|d| d.decision == DecisionKind::Outreach)
    {
        outreach_times
            .entry(&d.customer_id)
            .or_default()
            .push(d.timer_ts.unwrap_or(d.event_ts));
    }
    for (customer, mut times) in outreach_times {
        times.sort_unstable();
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= 7 * 86_400_000,
                "{customer} got outreach {} ms apart",
                pair[1] - pair[0]
            );
        }
    }

    // Every malformed record is in the dead-letter output, once, with a reason.
    assert_eq!(published.dead_letters.len() as u64, truth.malformed);
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for raw in &malformed {
        *expected.entry(raw.clone()).or_default() += 1;
    }
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for letter in &published.dead_letters {
        assert!(letter["reason"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(letter["detail"].as_str().is_some_and(|d| !d.is_empty()));
        let mut raw = match letter["raw"].as_str() {
            Some(raw) => raw.to_owned(),
            None => {
                let hex = letter["raw_hex"].as_str().expect("raw or raw_hex");
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        // A long record keeps its start and its whole length: find the one it is.
        if let Some(len) = letter["raw_bytes"].as_u64() {
            let whole: Vec<&String> = expected
                .keys()
                .filter(|e| e.len() as u64 == len && e.starts_with(&raw))
                .collect();
            assert_eq!(whole.len(), 1, "one record of {len} bytes starts so");
            raw = whole[0].clone();
        }
        *got.entry(raw).or_default() += 1;
    }
    assert_eq!(got, expected);

    // Every record is accounted for.
    let s = &published.summary;
    assert_eq!(s.records, s.scored + s.dead_letters);

    // Every decision names its model and, when scored, its reasons.
    for d in &published.decisions {
        let id = match d.timer_ts {
            Some(at) => Decision::id_for_timer(&d.customer_id, at, d.decision),
            None => Decision::id_for(&d.customer_id, &d.event_id, d.event_ts, d.decision),
        };
        assert_eq!(d.decision_id, id);
        if d.score.is_some() {
            assert!(d.model.is_some() && !d.reasons.is_empty(), "{d:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_input_twice_yields_identical_decision_ids() {
    let ids = |p: &Published| {
        let mut ids: Vec<String> = p.decisions.iter().map(|d| d.decision_id.clone()).collect();
        ids.sort();
        ids
    };
    let first = run_e2e().await;
    let second = run_e2e().await;
    assert!(!first.decisions.is_empty());
    assert_eq!(ids(&first), ids(&second));
}
