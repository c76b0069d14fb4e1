//! `AmountSketch`: a customer's payment amounts as a fixed log-bucket histogram, for the
//! median and a high percentile of their history in 128 bytes.
//!
//! Bucket `b` holds amounts with `ln(1 + amount)` in `[b/4, (b+1)/4)`, so neighbouring bucket
//! edges differ by 28% and 64 buckets reach about 8.9 million; larger amounts share the last
//! bucket. A quantile interpolates inside its bucket on the same log scale, so it is within
//! one bucket of the exact one. Counts are 16-bit: when one would overflow, every count is
//! halved, which keeps the shape and lets a long history slowly give way to recent habits.

const BUCKETS: usize = 64;
/// Buckets per unit of `ln(1 + amount)`.
const SCALE: f64 = 4.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AmountSketch {
    #[serde(with = "super::fixed_array")]
    counts: [u16; BUCKETS],
}

impl Default for AmountSketch {
    fn default() -> Self {
        AmountSketch {
            counts: [0; BUCKETS],
        }
    }
}

impl AmountSketch {
    /// Remembers an amount, given as `ln(1 + amount)`.
    pub fn insert_log(&mut self, log_amount: f64) {
        let b = bucket(log_amount);
        if self.counts[b] == u16::MAX {
            for count in &mut self.counts {
                *count /= 2;
            }
        }
        self.counts[b] += 1;
    }

    /// `ln(1 + amount)` for the amount below which a share `q` (0 to 1) of the remembered
    /// amounts fall; `None` before the first amount.
    pub fn log_quantile(&self, q: f64) -> Option<f64> {
        let total: u32 = self.counts.iter().map(|&c| u32::from(c)).sum();
        if total == 0 {
            return None;
        }
        let target = q.clamp(0.0, 1.0) * f64::from(total);
        let mut below = 0.0;
        for (b, &count) in self.counts.iter().enumerate() {
            let count = f64::from(count);
            if count > 0.0 && below + count >= target {
                let within = ((target - below) / count).clamp(0.0, 1.0);
                return Some((b as f64 + within) / SCALE);
            }
            below += count;
        }
        unreachable!("the target is at most the total")
    }
}

fn bucket(log_amount: f64) -> usize {
    // NaN and negative amounts never reach the features (decoding refuses them); they would
    // land in bucket 0.
    ((log_amount.max(0.0) * SCALE) as usize).min(BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantile(sketch: &AmountSketch, q: f64) -> Option<f64> {
        sketch.log_quantile(q).map(f64::exp_m1)
    }

    #[test]
    fn quantiles_are_within_one_bucket_of_the_exact_ones() {
        let mut sketch = AmountSketch::default();
        assert_eq!(quantile(&sketch, 0.5), None);
        let amounts: Vec<f64> = (1..=1000).map(f64::from).collect();
        for &a in &amounts {
            sketch.insert_log(a.ln_1p());
        }
        for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.1, 100.0)] {
            let got = quantile(&sketch, q).unwrap();
            let ratio = (1.0 + got) / (1.0 + exact);
            assert!(
                (1.0 / 1.29..1.29).contains(&ratio),
                "q{q}: {got} against {exact}"
            );
        }
    }

    #[test]
    fn one_amount_is_every_quantile_give_or_take_its_bucket() {
        let mut sketch = AmountSketch::default();
        sketch.insert_log(40.0_f64.ln_1p());
        let (lo, hi) = (
            quantile(&sketch, 0.0).unwrap(),
            quantile(&sketch, 1.0).unwrap(),
        );
        assert!(lo <= 40.0 && 40.0 <= hi && (1.0 + hi) / (1.0 + lo) < 1.29);
    }

    #[test]
    fn a_saturated_bucket_halves_every_count_and_keeps_the_shape() {
        let mut sketch = AmountSketch::default();
        for _ in 0..u16::MAX {
            sketch.insert_log(10.0_f64.ln_1p());
        }
        for _ in 0..1000 {
            sketch.insert_log(1000.0_f64.ln_1p());
        }
        sketch.insert_log(10.0_f64.ln_1p());
        assert_eq!(sketch.counts[bucket(10.0_f64.ln_1p())], u16::MAX / 2 + 1);
        assert_eq!(sketch.counts[bucket(1000.0_f64.ln_1p())], 500);
        assert!(quantile(&sketch, 0.5).unwrap() < 15.0);
    }
}
