//! Customer profiles end to end: a profile file joined into a generated scenario's decisions.
//! Outreach goes only to customers who consented, on the channel their profile and the policy
//! choose, and everyone else's is published as `outreach_suppressed` with the reason, without
//! changing when outreach is due; a tier's floor turns its customers' low-score freezes into
//! alerts that say why; malformed profile records are dead-lettered naming the field.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use vigil_engine::config::TierPolicy;
use vigil_engine::decision::{Decision, DecisionKind, Suppressed};
use vigil_engine::profile::Channel;
use vigil_tests::{fixture, run_to_files_with, scenario_records, test_config, Published};

/// Every customer id in a scenario, in order.
fn customers(scenario: &str) -> BTreeSet<String> {
    scenario_records(scenario)
        .filter_map(|v| Some(v["customer_id"].as_str()?.to_owned()))
        .collect()
}

/// Writes `lines` as a profile file in `dir`, and returns its source spec.
fn profile_file(dir: &Path, lines: &[String]) -> String {
    let path = dir.join("profiles.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    format!("file:{}", path.display())
}

async fn run(
    scenario: &str,
    dir: &Path,
    config: vigil_engine::config::Config,
    profiles: Option<String>,
) -> Published {
    let source = format!("generate:{}", fixture(scenario).display());
    run_to_files_with(config, &source, dir, profiles).await
}

/// What a decision was about, whatever its kind: the same event or check gets the same key.
fn occasion(d: &Decision) -> (String, String, Option<i64>) {
    (d.customer_id.clone(), d.event_id.clone(), d.timer_ts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outreach_goes_only_to_consenting_customers_on_their_channel() {
    let dir = tempfile::tempdir().unwrap();
    let plain = run(
        "silent.toml",
        &dir.path().join("plain"),
        test_config(),
        None,
    )
    .await;

    // Every third customer consents and is reachable by e-mail only (preferring SMS, which
    // does not reach them); every third has a profile without consent; the rest have none.
    let mut consenting = BTreeSet::new();
    let mut lines = Vec::new();
    for (i, customer) in customers("silent.toml").into_iter().enumerate() {
        match i % 3 {
            0 => {
                lines.push(format!(r#"{{"customer_id":"{customer}","tier":"standard","marketing_consent":true,"preferred_channel":"sms","channels":{{"email":true,"sms":false}}}}"#));
                consenting.insert(customer);
            }
            1 => lines.push(format!(r#"{{"customer_id":"{customer}","marketing_consent":false,"channels":{{"email":true}}}}"#)),
            _ => {}
        }
    }
    lines.push(r#"{"customer_id":"c-broken","signup_ts":"last year"}"#.into());
    lines.push(r#"{"customer_id":"c-broken","home_country":"France"}"#.into());
    let profiles = profile_file(dir.path(), &lines);
    let with = run(
        "silent.toml",
        &dir.path().join("profiles"),
        test_config(),
        Some(profiles),
    )
    .await;

    let outreach: Vec<&Decision> = with
        .decisions
        .iter()
        .filter(|d| d.decision == DecisionKind::Outreach)
        .collect();
    let suppressed: Vec<&Decision> = with
        .decisions
        .iter()
        .filter(|d| d.decision == DecisionKind::OutreachSuppressed)
        .collect();
    assert!(
        !outreach.is_empty() && !suppressed.is_empty(),
        "{} outreach, {} suppressed",
        outreach.len(),
        suppressed.len()
    );
    for d in &outreach {
        assert!(
            consenting.contains(&d.customer_id),
            "outreach to {} without consent",
            d.customer_id
        );
        assert_eq!(d.channel, Some(Channel::Email), "{d:?}");
        assert_eq!(d.suppressed, None);
    }
    for d in &suppressed {
        assert!(
            !consenting.contains(&d.customer_id),
            "{} consented",
            d.customer_id
        );
        assert_eq!(
            (d.suppressed, d.channel),
            (Some(Suppressed::NoConsent), None),
            "{d:?}"
        );
        assert!(
            d.decision_id.ends_with("/outreach_suppressed"),
            "{}",
            d.decision_id
        );
    }
    // Profiles decide who is contacted and how, never when outreach is due.
    let due = |decisions: &[Decision], kinds: &[DecisionKind]| -> BTreeSet<_> {
        decisions
            .iter()
            .filter(|d| kinds.contains(&d.decision))
            .map(occasion)
            .collect()
    };
    assert_eq!(
        due(
            &with.decisions,
            &[DecisionKind::Outreach, DecisionKind::OutreachSuppressed]
        ),
        due(&plain.decisions, &[DecisionKind::Outreach])
    );
    // The two malformed records are dead letters naming their field; nothing else is.
    let fields: Vec<&str> = with
        .dead_letters
        .iter()
        .filter_map(|l| l["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["signup_ts", "home_country"],
        "{:?}",
        with.dead_letters
    );
    assert_eq!(with.summary.dead_letters, plain.summary.dead_letters + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vip_floor_turns_their_low_score_freezes_into_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let plain = run("e2e.toml", &dir.path().join("plain"), test_config(), None).await;
    let frozen: BTreeSet<String> = plain
        .decisions
        .iter()
        .filter(|d| d.decision == DecisionKind::Freeze)
        .map(|d| d.customer_id.clone())
        .collect();
    assert!(frozen.len() >= 4, "{} customers frozen", frozen.len());
    // Half the frozen customers are VIPs, whose freezes need a score of at least 0.999.
    let vips: BTreeSet<String> = frozen.iter().step_by(2).cloned().collect();
    let lines: Vec<String> = vips
        .iter()
        .map(|c| format!(r#"{{"customer_id":"{c}","tier":"vip","home_country":"US"}}"#))
        .collect();
    let mut config = test_config();
    config.policy.tiers = BTreeMap::from([(
        "vip".to_owned(),
        TierPolicy {
            freeze_at_least: 0.999,
        },
    )]);
    let profiles = profile_file(dir.path(), &lines);
    let with = run("e2e.toml", &dir.path().join("vip"), config, Some(profiles)).await;

    let by_occasion = |p: &Published| -> BTreeMap<_, Decision> {
        p.decisions
            .iter()
            .filter(|d| d.decision >= DecisionKind::Alert)
            .map(|d| (occasion(d), d.clone()))
            .collect()
    };
    let (before, after) = (by_occasion(&plain), by_occasion(&with));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    let mut lowered = 0;
    for (key, was) in &before {
        let now = &after[key];
        let vip = vips.contains(&was.customer_id);
        if vip && was.decision == DecisionKind::Freeze && was.score.is_none_or(|s| s < 0.999) {
            lowered += 1;
            assert_eq!(now.decision, DecisionKind::Alert, "{now:?}");
            assert!(now.rules.iter().any(|r| &**r == "tier:vip"), "{now:?}");
        } else {
            assert_eq!(now.decision, was.decision, "{now:?}");
            assert!(!now.rules.iter().any(|r| &**r == "tier:vip"));
        }
    }
    assert!(lowered > 0, "no VIP freeze was below the floor");
}
