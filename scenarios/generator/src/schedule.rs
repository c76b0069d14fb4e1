//! The wall-clock schedule of a paced scenario: when each record is meant to be sent. A fixed
//! `rate` is one endless steady stretch; `phases` are stretches that hold a rate or ramp it
//! linearly, followed by an endless tail at the last phase's final rate (for the injected and
//! malformed records that ride on top of the benign count).
//!
//! Record n (from 0) is due when the cumulative count of the rate curve reaches n, so the
//! schedule answers both "when is record n due" (`intended`) and "how many are due by now"
//! (`due`) exactly, without drift.

use std::time::Duration;

use crate::scenario::Scenario;

/// One stretch of the rate curve.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    /// Seconds from the start of the run.
    start: f64,
    /// Records per second at the start.
    rate: f64,
    /// Half the rate's change per second: the count in the stretch after t s is
    /// `rate·t + slope·t²`.
    slope: f64,
    /// Records due before the stretch begins.
    before: f64,
}

impl Stretch {
    fn count_at(&self, t: f64) -> f64 {
        self.rate * t + self.slope * t * t
    }

    /// Seconds into the stretch at which its count reaches `c`; the numerically stable root
    /// of `slope·t² + rate·t − c = 0`, valid for ramps up, ramps down and steady rates.
    fn time_of(&self, c: f64) -> f64 {
        if c <= 0.0 {
            return 0.0;
        }
        let root = (self.rate * self.rate + 4.0 * self.slope * c)
            .max(0.0)
            .sqrt();
        2.0 * c / (self.rate + root)
    }
}

/// When each record of a paced scenario is due.
#[derive(Debug, Clone)]
pub struct Schedule {
    stretches: Vec<Stretch>,
    /// Records per second after the last stretch.
    tail_rate: f64,
    /// Where the tail begins: seconds, and records due before it.
    tail_start: f64,
    tail_before: f64,
}

impl Schedule {
    /// The scenario's schedule, or `None` when it sends as fast as the engine takes records.
    pub fn of(scenario: &Scenario) -> Option<Schedule> {
        if scenario.phases.is_empty() {
            let rate = scenario.rate.filter(|&r| r > 0)? as f64;
            return Some(Schedule {
                stretches: Vec::new(),
                tail_rate: rate,
                tail_start: 0.0,
                tail_before: 0.0,
            });
        }
        let (mut start, mut before) = (0.0, 0.0);
        let mut stretches = Vec::with_capacity(scenario.phases.len());
        for phase in &scenario.phases {
            let duration = phase.duration.as_secs_f64();
            let stretch = Stretch {
                start,
                rate: phase.rate,
                slope: (phase.end_rate() - phase.rate) / (2.0 * duration),
                before,
            };
            before += stretch.count_at(duration);
            start += duration;
            stretches.push(stretch);
        }
        let last = scenario.phases.last().expect("phases are not empty");
        let tail_rate = if last.end_rate() > 0.0 {
            last.end_rate()
        } else {
            last.rate
        };
        Some(Schedule {
            stretches,
            tail_rate,
            tail_start: start,
            tail_before: before,
        })
    }

    /// When record `n` is due, from the start of the run.
    pub fn intended(&self, n: u64) -> Duration {
        let n = n as f64;
        let seconds = match self.stretches.iter().rev().find(|s| s.before <= n) {
            Some(s) if n < self.tail_before => s.start + s.time_of(n - s.before),
            _ => self.tail_start + (n - self.tail_before) / self.tail_rate,
        };
        Duration::from_secs_f64(seconds)
    }

    /// How many records are due `elapsed` after the start (record 0 is due at once).
    pub fn due(&self, elapsed: Duration) -> u64 {
        let t = elapsed.as_secs_f64();
        let count = if t >= self.tail_start {
            self.tail_before + (t - self.tail_start) * self.tail_rate
        } else {
            let s = self
                .stretches
                .iter()
                .rev()
                .find(|s| s.start <= t)
                .expect("the first stretch starts at 0");
            s.before + s.count_at(t - s.start)
        };
        // A hair of tolerance so that `due(intended(n))` always counts record n.
        (count + 1e-6).floor() as u64 + 1
    }

    /// Records per second the schedule asks for `elapsed` after the start.
    pub fn rate_at(&self, elapsed: Duration) -> f64 {
        let t = elapsed.as_secs_f64();
        match self.stretches.iter().rev().find(|s| s.start <= t) {
            Some(s) if t < self.tail_start => s.rate + 2.0 * s.slope * (t - s.start),
            _ => self.tail_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(extra: &str) -> Scenario {
        Scenario::parse(
            &format!(
                r#"
                seed = 1
                customers = 10
                start = "2026-11-01T00:00:00Z"
                span = "1d"
                {extra}
                "#
            ),
            "schedule.toml",
        )
        .unwrap()
    }

    const RAMP_HOLD_SPIKE: &str = r#"
        [[phases]]
        duration = "10s"
        rate = 0
        to_rate = 1000
        [[phases]]
        duration = "5s"
        rate = 1000
        [[phases]]
        duration = "2s"
        rate = 10000
    "#;

    #[test]
    fn a_fixed_rate_spaces_records_evenly_and_unpaced_has_no_schedule() {
        let s = Schedule::of(&scenario("events = 10\nrate = 200")).unwrap();
        assert_eq!(s.intended(0), Duration::ZERO);
        assert_eq!(s.intended(200), Duration::from_secs(1));
        assert_eq!(s.due(Duration::from_millis(999)), 200);
        assert_eq!(s.due(Duration::from_secs(1)), 201);
        assert!(Schedule::of(&scenario("events = 10")).is_none());
    }

    #[test]
    fn phases_ramp_hold_and_spike() {
        let s = Schedule::of(&scenario(RAMP_HOLD_SPIKE)).unwrap();
        // The ramp releases 5,000 records in 10 s, a quarter of them in its first half.
        assert!((s.intended(1_250).as_secs_f64() - 5.0).abs() < 1e-6);
        assert!((s.intended(5_000).as_secs_f64() - 10.0).abs() < 1e-6);
        // Then 1,000/s for 5 s, then 10,000/s.
        assert!((s.intended(7_500).as_secs_f64() - 12.5).abs() < 1e-6);
        assert!((s.intended(20_000).as_secs_f64() - 16.0).abs() < 1e-6);
        // Past the phases, the last rate goes on.
        assert!((s.intended(35_000).as_secs_f64() - 17.5).abs() < 1e-6);
        assert_eq!(s.rate_at(Duration::from_secs(5)), 500.0);
        assert_eq!(s.rate_at(Duration::from_secs(16)), 10_000.0);
    }

    #[test]
    fn due_and_intended_agree_everywhere() {
        let s = Schedule::of(&scenario(RAMP_HOLD_SPIKE)).unwrap();
        for n in (1..40_000).step_by(97) {
            let at = s.intended(n);
            assert!(
                s.due(at) > n,
                "record {n} is not due at its own time {at:?}"
            );
            assert!(
                s.due(at.saturating_sub(Duration::from_micros(200))) <= n,
                "record {n} is due before {at:?}"
            );
        }
    }
}
