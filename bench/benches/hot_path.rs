//! Microbenchmarks of the per-event work, stage by stage: decoding a record, folding it into a
//! warm customer's features, scoring it, the whole synchronous path an actor runs (features,
//! model, policy), that path when it builds a freeze decision with reason codes, the
//! decision's serialisation, and the actor's whole step (restore point included) for a
//! customer with 10 and with a million events in their 24 h window, which should cost the
//! same; and that step under the shipped policy and under a large one (50 rules: feature,
//! velocity and list rules, and 3 lists of a million entries each), alone and with the same
//! policy deciding beside it as a candidate in shadow; and the work of a policy swap (reading,
//! validating and compiling the large policy's file). `cargo bench -p vigil-bench` prints the
//! figures.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use vigil_engine::actors::customer::process_isolated;
use vigil_engine::config::{Config, LatencyBudget};
use vigil_engine::decode::decode;
use vigil_engine::event::Event;
use vigil_engine::event::Inbound;
use vigil_engine::event::Position;
use vigil_engine::outcome::Outcome;
use vigil_engine::scoring::features::{CustomerFeatures, Observation};
use vigil_engine::scoring::live_policy::{load_policy, LivePolicy};
use vigil_engine::scoring::models::ModelSet;
use vigil_engine::scoring::policy::Policy;
use vigil_engine::scoring::{CustomerState, Scoring};
use vigil_engine::telemetry::Telemetry;
use vigil_models::Threshold;

const T0: i64 = 1_763_805_600_000;

/// The customer's `i`th payment, ten minutes after the one before.
fn payment(i: i64) -> String {
    payment_at(i, T0 + i * 600_000)
}

fn payment_at(i: i64, ts: i64) -> String {
    format!(
        r#"{{"schema":1,"event_id":"e-{i}","customer_id":"c-000042","ts":{ts},"kind":"payment","amount":{}.90,"currency":"EUR","country":"FR","lat":48.85,"lon":2.35,"merchant":"m-{}","mcc":"5411","channel":"pos"}}"#,
        20 + i % 50,
        i % 6
    )
}

/// A customer with a day of history: 150 payments, ten minutes apart.
fn warm_customer(tolerance_ms: i64) -> (CustomerFeatures, i64) {
    let mut features = CustomerFeatures::new(T0);
    for i in 0..150 {
        let event = decode(payment(i).as_bytes(), 65_536).unwrap();
        features.observe(&event, tolerance_ms).unwrap();
    }
    (features, 150)
}

fn hot_path(c: &mut Criterion) {
    let config = Config::builtin();
    let tolerance = config.engine.late_tolerance.as_millis() as i64;
    let raw = payment(150);

    c.bench_function("decode payment", |b| {
        b.iter(|| decode(black_box(raw.as_bytes()), 65_536).unwrap())
    });

    let event: Event = decode(raw.as_bytes(), 65_536).unwrap();
    let (warm, _) = warm_customer(tolerance);
    c.bench_function("features: observe payment (warm customer)", |b| {
        // The same customer paying every ten minutes, on and on: the steady state, with its
        // buffers at their working size, as a live customer actor has them.
        let mut features = warm.clone();
        let mut next = event.clone();
        b.iter(|| {
            next.ts += 600_000;
            features.observe(black_box(&next), tolerance).unwrap()
        })
    });

    let models = ModelSet::load(&config).unwrap();
    let Observation::Fraud(vector) = warm.clone().observe(&event, tolerance).unwrap() else {
        unreachable!("a payment gives fraud features")
    };
    c.bench_function("score: fraud model", |b| {
        b.iter(|| models.fraud.score(black_box(&vector)))
    });

    let mut scoring_config = config.clone();
    scoring_config.engine.latency_budget = LatencyBudget::uniform(Duration::from_secs(10));
    let scoring = Scoring::new(models.clone(), &scoring_config, Telemetry::new()).unwrap();
    let takeover_raw = payment(150)
        .replace("\"amount\":20.90", "\"amount\":4800.00")
        .replace(
            "\"country\":\"FR\",\"lat\":48.85,\"lon\":2.35",
            "\"country\":\"BR\",\"lat\":-23.5,\"lon\":-46.6",
        )
        .replace("\"merchant\":\"m-0\"", "\"merchant\":\"m-unknown\"");
    let takeover = decode(takeover_raw.as_bytes(), 65_536).unwrap();
    let mut state = CustomerState::default();
    for i in 0..150 {
        let history = decode(payment(i).as_bytes(), 65_536).unwrap();
        state.process(&inbound(history, payment(i)), &scoring);
    }
    c.bench_function("process: features + model + policy + decision", |b| {
        b.iter_batched(
            || (state.clone(), inbound(event.clone(), raw.clone())),
            |(mut state, inbound)| state.process(&inbound, &scoring),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("process, isolated: restore point + the above", |b| {
        b.iter_batched(
            || (state.clone(), inbound(event.clone(), raw.clone())),
            |(mut state, inbound)| process_isolated(&mut state, &inbound, &scoring),
            BatchSize::SmallInput,
        )
    });

    let Outcome::Scored {
        decision: Some(decision),
        ..
    } = state
        .clone()
        .process(&inbound(takeover.clone(), takeover_raw.clone()), &scoring)
    else {
        panic!("a takeover payment gets a decision")
    };
    c.bench_function(
        "process: payment that is frozen (decision with reasons)",
        |b| {
            b.iter_batched(
                || {
                    (
                        state.clone(),
                        inbound(takeover.clone(), takeover_raw.clone()),
                    )
                },
                |(mut state, inbound)| state.process(&inbound, &scoring),
                BatchSize::SmallInput,
            )
        },
    );
    c.bench_function("decision: serialise to JSON", |b| {
        b.iter(|| black_box(&decision).to_json())
    });
}

/// The actor's step, restore point included, for a customer who keeps paying at the rate that
/// puts `in_window` payments in any 24 h: the per-event cost must not grow with that number.
fn busy_customer(c: &mut Criterion) {
    let mut config = Config::builtin();
    config.engine.latency_budget = LatencyBudget::uniform(Duration::from_secs(10));
    // A few million steps two hours apart run centuries ahead of the clock.
    config.engine.max_future_skew = Duration::from_secs(5_000 * 365 * 86_400);
    // The busy customer's velocity would call for decisions the quiet one never gets; with no
    // action taken, both steps do the same work apart from the windows.
    config.policy.rules.clear();
    config.policy.fraud.freeze = Threshold::Probability(1.0);
    config.policy.fraud.alert = Threshold::Probability(1.0);
    let scoring = Scoring::from_config(&config, Telemetry::new()).unwrap();
    let mut group = c.benchmark_group("actor step by payments in the 24 h window");
    for in_window in [10i64, 1_000_000] {
        let gap = 24 * 3_600_000 / in_window;
        let at = |i: i64| {
            let raw = payment_at(i, T0 + i * gap);
            inbound(decode(raw.as_bytes(), 65_536).unwrap(), raw)
        };
        let mut state = CustomerState::default();
        for i in 0..in_window.max(1_000) {
            state.process(&at(i), &scoring);
        }
        let mut next = in_window.max(1_000);
        group.bench_function(format!("{in_window} in the window"), |b| {
            b.iter_batched(
                || {
                    next += 1;
                    at(next)
                },
                |inbound| {
                    let outcome = process_isolated(&mut state, &inbound, &scoring);
                    assert!(matches!(outcome, Outcome::Scored { decision: None, .. }));
                    outcome
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// The actor's step for a warm customer's ordinary payment, which no rule fires on, under the
/// shipped policy (two rules) and under one with 50 rules and three lists of a million entries.
fn large_policy(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("[policy.fraud]\nfreeze = 0.99\nalert = 0.95\n");
    for (name, field, action, prefix) in [
        (
            "blocked_merchants",
            "merchant",
            "action = \"block\"",
            "m-blocked-",
        ),
        (
            "vetted_customers",
            "customer_id",
            "action = \"allow\"",
            "c-vetted-",
        ),
        ("watched_mccs", "mcc", "", "mcc-"),
    ] {
        let file = dir.path().join(format!("{name}.txt"));
        let values: String = (0..1_000_000).map(|i| format!("{prefix}{i}\n")).collect();
        std::fs::write(&file, values).unwrap();
        text += &format!(
            "[policy.lists.{name}]\nfile = \"{}\"\nfield = \"{field}\"\n{action}\n",
            file.display()
        );
    }
    let features = [
        "payments_1h",
        "merchants_24h",
        "amount_zscore",
        "log_speed_kmh",
        "new_mcc",
    ];
    let mut rules = String::new();
    for i in 0..50 {
        let when = match i % 3 {
            0 => format!(
                "{{ feature = \"{}\", above = {}.0 }}, {{ feature = \"amount_over_max\", above = 0.9 }}",
                features[i % features.len()],
                50 + i
            ),
            1 => format!(
                "{{ velocity = \"count\", window = \"{}m\", amount_over = {}.0, above = 5.0 }}",
                10 + i,
                100 * i
            ),
            _ => "{ in = \"watched_mccs\" }, { feature = \"payments_1m\", above = 3.0 }".to_owned(),
        };
        rules +=
            &format!("[[rules]]\nname = \"rule-{i}\"\nat_least = \"alert\"\nwhen = [{when}]\n");
    }
    text += &rules.replace("[[rules]]", "[[policy.rules]]");
    let mut large = Config::parse_layered(&text, "bench policy").unwrap();
    let mut shipped = Config::builtin();
    for config in [&mut large, &mut shipped] {
        config.engine.latency_budget = LatencyBudget::uniform(Duration::from_secs(10));
    }
    let large_scoring = || Scoring::from_config(&large, Telemetry::new()).unwrap();
    let mut shadowed = large_scoring();
    shadowed.candidate = Some(Arc::new(LivePolicy::new(Policy::new(&large).unwrap())));
    let mut group = c.benchmark_group("actor step by policy");
    for (label, scoring) in [
        (
            "shipped policy (2 rules)",
            Scoring::from_config(&shipped, Telemetry::new()).unwrap(),
        ),
        ("50 rules, 3 lists of 1M", large_scoring()),
        ("50 rules, 3 lists of 1M, and in shadow", shadowed),
    ] {
        let mut state = CustomerState::default();
        for i in 0..150 {
            let history = decode(payment(i).as_bytes(), 65_536).unwrap();
            state.process(&inbound(history, payment(i)), &scoring);
        }
        let raw = payment(150);
        let event = decode(raw.as_bytes(), 65_536).unwrap();
        group.bench_function(label, |b| {
            b.iter_batched(
                || (state.clone(), inbound(event.clone(), raw.clone())),
                |(mut state, inbound)| {
                    let outcome = state.process(&inbound, &scoring);
                    assert!(matches!(outcome, Outcome::Scored { decision: None, .. }));
                    outcome
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    // What a swap does between seeing the changed file and swapping the pointer.
    let file = dir.path().join("policy.toml");
    let churn = "[churn]\noutreach = 0.9\ncooldown = \"7d\"\ncheck_after = [\"7d\", \"14d\", \"30d\", \"60d\", \"90d\"]\nchannels = [\"push\", \"email\", \"sms\"]\n";
    std::fs::write(
        &file,
        format!(
            "name = \"large\"\nversion = 2\n[fraud]\nfreeze = 0.99\nalert = 0.95\n{churn}{rules}"
        ),
    )
    .unwrap();
    let scoring = large_scoring();
    let (lists, models) = (
        scoring.policy.current().lists().to_vec(),
        scoring.models.current(),
    );
    c.bench_function("policy swap: read, validate and compile 50 rules", |b| {
        b.iter(|| load_policy(&file, &large.policy, lists.clone(), &models).unwrap())
    });
}

fn inbound(event: Event, raw: String) -> Inbound {
    Inbound {
        watermark: vigil_engine::pipeline::watermark::NO_WATERMARK,
        event,
        position: Position {
            partition: 0,
            offset: 0,
        },
        ingested: Instant::now(),
        raw: Bytes::from(raw),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = hot_path, busy_customer, large_policy
}
criterion_main!(benches);
