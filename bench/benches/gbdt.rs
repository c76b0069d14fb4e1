//! Gradient-boosted trees at the sizes the fraud model needs: scoring one payment with 300
//! trees of depth 6 (target: 2 µs), scoring many different payments through the node arrays and
//! through the packed form the engine uses, and training on 500k rows of 40 features (target: 60 s and
//! 1 GiB on this 2-core machine; peak memory is printed from the process's high-water mark).
//! `cargo bench -p vigil-bench --bench gbdt` prints the figures.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use linfa::prelude::*;
use ndarray::{Array1, Array2};
use vigil_bench::runner::peak_rss_mib;
use vigil_models::gbdt::{Gbdt, GbdtParams};

/// Rows whose label depends on a few features and their interactions, with the rest noise,
/// about 2% positive; the same seed gives the same rows.
fn rows(count: usize, width: usize) -> (Array2<f64>, Array1<bool>) {
    let mut state = 42u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let x = Array2::from_shape_simple_fn((count, width), &mut next);
    let y = x
        .rows()
        .into_iter()
        .map(|r| r[0] * r[1] + 0.5 * r[2] - 0.3 * r[3] * r[4] + 0.2 * next() > 0.85)
        .collect();
    (x, y)
}

fn fit(x: Array2<f64>, y: Array1<bool>, rounds: usize, depth: usize, leaves: usize) -> Gbdt {
    GbdtParams::default()
        .max_rounds(rounds)
        .early_stopping_rounds(rounds)
        .validation_fraction(0.0)
        .max_depth(depth)
        .max_leaves(leaves)
        .check()
        .unwrap()
        .fit(&Dataset::new(x, y))
        .unwrap()
}

fn gbdt(c: &mut Criterion) {
    let (x, y) = rows(20_000, 40);
    let model = fit(x.clone(), y, 300, 6, 64);
    assert_eq!(model.roots.len(), 300);
    let features = x.row(7).to_vec();
    let mut contributions = vec![0.0; 40];
    c.bench_function("gbdt: score one payment, 300 trees of depth 6", |b| {
        b.iter(|| model.log_odds(black_box(&features)))
    });
    c.bench_function("gbdt: score with reasons, 300 trees of depth 6", |b| {
        b.iter(|| model.walk(black_box(&features), &mut contributions))
    });
    // The engine scores a different customer each time: 4,096 rows, as arrays and packed.
    let payments: Vec<Vec<f64>> = (0..4096).map(|i| x.row(i).to_vec()).collect();
    let packed = model.packed();
    c.bench_function("gbdt: score 4096 payments, node arrays", |b| {
        b.iter(|| payments.iter().map(|p| model.log_odds(p)).sum::<f64>())
    });
    c.bench_function("gbdt: score 4096 payments, packed nodes", |b| {
        b.iter(|| payments.iter().map(|p| packed.log_odds(p)).sum::<f64>())
    });

    let (x, y) = rows(500_000, 40);
    let started = Instant::now();
    let trained = fit(x, y, 100, 8, 31);
    println!(
        "gbdt: trained 100 rounds on 500000 rows x 40 features in {:.1} s ({} nodes); peak RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        trained.node_count(),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = gbdt
}
criterion_main!(benches);
