//! Inactivity timers end to end: customers who go quiet are scored for churn when their checks
//! come due, as the watermark passes them, and those likely to have left get an outreach that
//! says `"trigger":"inactivity"`; customers who stay active get none; the cooldown holds across
//! outreach from events and from timers; each check's score is what the same feature code and
//! model give offline; and a run that passivates nearly everyone fires the same checks with the
//! same results as one that passivates no one.

use std::collections::BTreeMap;
use std::path::Path;

use vigil_engine::config::Config;
use vigil_engine::decision::{Decision, DecisionKind, Trigger};
use vigil_engine::decode::decode;
use vigil_engine::pipeline;
use vigil_engine::publish::RunSummary;
use vigil_engine::scoring::features::CustomerFeatures;
use vigil_engine::scoring::models::ModelSet;
use vigil_scenario::{Generator, Scenario};
use vigil_tests::{fixture, read_lines, test_config};

const DAY: i64 = 86_400_000;

async fn run(config: Config, dir: &Path) -> (RunSummary, Vec<Decision>) {
    run_scenario(config, dir, &fixture("silent.toml")).await
}

async fn run_scenario(config: Config, dir: &Path, scenario: &Path) -> (RunSummary, Vec<Decision>) {
    let decisions = dir.join("decisions.jsonl");
    let options = vigil_tests::run_options(
        config,
        &format!("generate:{}", scenario.display()),
        &format!("file:{}", decisions.display()),
        "discard",
    );
    let summary = pipeline::run(options, std::future::pending())
        .await
        .unwrap();
    let published = read_lines(&decisions)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (summary, published)
}

/// Each customer's activity times, in order, from the scenario itself.
fn activity() -> (BTreeMap<String, Vec<i64>>, i64) {
    let mut by_customer: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut newest = i64::MIN;
    for record in Generator::new(Scenario::load(&fixture("silent.toml")).unwrap()) {
        let v: serde_json::Value = serde_json::from_slice(&record.payload).unwrap();
        let (Some(customer), Some(ts)) = (v["customer_id"].as_str(), v["ts"].as_i64()) else {
            continue;
        };
        by_customer.entry(customer.to_owned()).or_default().push(ts);
        newest = newest.max(ts);
    }
    for times in by_customer.values_mut() {
        times.sort_unstable();
    }
    (by_customer, newest)
}

/// When an outreach was made, in event time: the event's, or the check's.
fn outreach_at(d: &Decision) -> i64 {
    d.timer_ts.unwrap_or(d.event_ts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_customers_get_inactivity_outreach_and_active_ones_none() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, decisions) = run(test_config(), dir.path()).await;
    let (activity, newest) = activity();
    let watermark = newest - Config::builtin().engine.late_tolerance.as_millis() as i64;
    let inactivity: Vec<&Decision> = decisions
        .iter()
        .filter(|d| d.trigger == Trigger::Inactivity)
        .collect();
    assert!(summary.timers_fired > inactivity.len() as u64);

    let mut silent = 0;
    for (customer, times) in &activity {
        let last = *times.last().unwrap();
        let theirs: Vec<&&Decision> = inactivity
            .iter()
            .filter(|d| &d.customer_id == customer)
            .collect();
        for d in &theirs {
            assert_eq!(d.decision, DecisionKind::Outreach);
            assert!(d.event_id.is_empty() && d.score.is_some(), "{d:?}");
            // The customer was quiet from the event the decision names to the check.
            let since = d.event_ts;
            let check = d.timer_ts.unwrap();
            assert!(times.contains(&since), "{d:?}");
            assert!(
                !times.iter().any(|t| *t > since && *t < check),
                "{customer} was active before {check}: {d:?}"
            );
            assert!(
                [7, 14, 30, 60, 90].contains(&((check - since) / DAY)),
                "{d:?}"
            );
            assert!(check <= watermark);
        }
        // Gone quiet for good at least 30 days before the end: the 30-day check came due.
        if last + 30 * DAY <= watermark {
            silent += 1;
            assert!(
                theirs.iter().any(|d| d.event_ts == last),
                "{customer}, silent since {last}, got no inactivity outreach"
            );
        }
        // Never quiet for 14 days: no check past the 7-day one ever came due, and at 7 days
        // the model does not call them gone.
        let gaps = times
            .windows(2)
            .map(|w| w[1] - w[0])
            .chain([watermark - last]);
        if gaps.max().unwrap() < 14 * DAY {
            assert!(theirs.is_empty(), "{customer} stayed active: {theirs:?}");
        }
    }
    assert!(silent >= 100, "{silent} silent customers");

    // Online and offline agree: each check's score is the shipped model's on the churn features
    // as of the check, from the customer's events up to the one the decision names, computed
    // outside the engine by the same feature code.
    let config = Config::builtin();
    let model = ModelSet::load(&config).unwrap().churn;
    let tolerance = config.engine.late_tolerance.as_millis() as i64;
    let mut customers: BTreeMap<String, CustomerFeatures> = BTreeMap::new();
    let mut offline: BTreeMap<&str, f64> = BTreeMap::new();
    for record in Generator::new(Scenario::load(&fixture("silent.toml")).unwrap()) {
        let Ok(event) = decode(&record.payload, config.engine.max_record_bytes) else {
            continue;
        };
        let features = customers
            .entry(event.customer_id.clone())
            .or_insert_with(|| CustomerFeatures::new(event.ts));
        let _ = features.observe(&event, tolerance);
        for d in inactivity
            .iter()
            .filter(|d| d.customer_id == event.customer_id && d.event_ts == features.newest_ts())
        {
            let v = features.churn_at(d.timer_ts.unwrap());
            offline.insert(&d.decision_id, model.score(&v).probability);
        }
    }
    for d in &inactivity {
        assert_eq!(
            offline.get(d.decision_id.as_str()).map(|p| p.to_bits()),
            d.score.map(f64::to_bits),
            "{d:?}"
        );
    }

    // One cooldown for outreach from events and from checks alike.
    let cooldown = Config::builtin().policy.churn.cooldown.as_millis() as i64;
    let mut outreach: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for d in decisions
        .iter()
        .filter(|d| d.decision == DecisionKind::Outreach)
    {
        outreach
            .entry(d.customer_id.as_str())
            .or_default()
            .push(outreach_at(d));
    }
    for (customer, mut times) in outreach {
        times.sort_unstable();
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= cooldown,
                "{customer}: outreach at {} and {}",
                pair[0],
                pair[1]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passivated_customers_fire_their_checks_exactly_as_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    // A threshold low enough that checks at every interval publish.
    let mut config = test_config();
    config.policy.churn.outreach = 0.2;
    let (live, kept) = run(config.clone(), &dir.path().join("live")).await;
    assert_eq!(live.passivations, 0);
    // Paced over about three seconds, so that sweeps, saves and wake-ups interleave with the
    // stream as they do live.
    let paced = dir.path().join("paced.toml");
    let text = std::fs::read_to_string(fixture("silent.toml")).unwrap();
    std::fs::write(
        &paced,
        text.replace("span = \"120d\"", "span = \"120d\"\nrate = 20000"),
    )
    .unwrap();
    config.engine.passivation.max_active = 20;
    let (passivating, decisions) =
        run_scenario(config, &dir.path().join("passivating"), &paced).await;
    assert!(
        passivating.passivations > 1_000,
        "{} passivations",
        passivating.passivations
    );
    let substance = |decisions: &[Decision]| {
        let mut s: Vec<(String, Option<u64>, Option<i64>)> = decisions
            .iter()
            .map(|d| (d.decision_id.clone(), d.score.map(f64::to_bits), d.timer_ts))
            .collect();
        s.sort();
        s
    };
    let fired = |d: &[Decision]| {
        d.iter()
            .filter(|d| d.trigger == Trigger::Inactivity)
            .count()
    };
    assert!(fired(&kept) > 200, "{} inactivity decisions", fired(&kept));
    assert_eq!(passivating.timers_fired, live.timers_fired);
    assert_eq!(substance(&decisions), substance(&kept));
}

/// Quiet customers read from a file far faster than their actors process them, then one jump of
/// the watermark past every check: each check fires, however far the actors lag behind the
/// reading when the file ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watermark_jump_at_the_end_of_a_file_fires_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let t0: i64 = 1_780_272_000_000;
    let mut lines = String::new();
    for i in 0..5_000 {
        lines.push_str(&format!(
            r#"{{"schema":1,"event_id":"e-{i}","customer_id":"c-{i}","ts":{},"kind":"login"}}"#,
            t0 + i * 10
        ));
        lines.push('\n');
    }
    for j in 0..500 {
        lines.push_str(&format!(
            r#"{{"schema":1,"event_id":"a-{j}","customer_id":"a-{}","ts":{},"kind":"login"}}"#,
            j % 50,
            t0 + 8 * DAY + j * 10
        ));
        lines.push('\n');
    }
    std::fs::write(&events, lines).unwrap();
    for max_active in [100_000, 100] {
        let mut config = test_config();
        config.engine.passivation.max_active = max_active;
        let options = vigil_tests::run_options(
            config,
            &format!("file:{}", events.display()),
            "discard",
            "discard",
        );
        let summary = pipeline::run(options, std::future::pending())
            .await
            .unwrap();
        assert_eq!(summary.timers_fired, 5_000, "cap {max_active}");
    }
}
