//! 10% malformed input: every broken record reaches the dead-letter output exactly once, at its
//! own source offset, with a reason; every good one is scored; nothing is lost and no decision
//! is published twice.

use std::collections::{BTreeSet, HashSet};

use vigil_scenario::{Generator, Scenario};
use vigil_tests::{fixture, run_to_files};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_record_in_ten_broken_loses_nothing() {
    let generator = Generator::new(Scenario::load(&fixture("bad-input.toml")).unwrap());
    let (mut total, mut broken) = (0u64, BTreeSet::new());
    for (offset, record) in generator.enumerate() {
        total += 1;
        if record.malformed {
            broken.insert(offset as u64);
        }
    }
    assert!(
        broken.len() as f64 > total as f64 * 0.09,
        "{} of {total}",
        broken.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let source = format!("generate:{}", fixture("bad-input.toml").display());
    let published = run_to_files(&source, dir.path()).await;
    let s = &published.summary;
    assert_eq!(s.records, total);
    assert_eq!(s.scored + s.dead_letters, total);
    assert_eq!(s.dead_letters, broken.len() as u64);

    let mut reasons = HashSet::new();
    let offsets: BTreeSet<u64> = published
        .dead_letters
        .iter()
        .map(|letter| {
            let reason = letter["reason"].as_str().unwrap().to_owned();
            assert!(!letter["detail"].as_str().unwrap().is_empty());
            reasons.insert(reason);
            letter["source"]["offset"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(offsets, broken);
    assert!(reasons.len() >= 5, "{reasons:?}");

    let ids: HashSet<&str> = published
        .decisions
        .iter()
        .map(|d| d.decision_id.as_str())
        .collect();
    assert_eq!(ids.len(), published.decisions.len());
}
