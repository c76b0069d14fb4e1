//! Inactivity checks: event-time timers that score a customer for churn when nothing has come
//! from them. A customer's checks come due `policy.churn.check_after` after their newest
//! activity of any kind; any newer activity starts the list again. A check fires once the
//! watermark (`pipeline::watermark`) passes it, with the churn features as of the check's own
//! time, so where it fires in the stream does not change what it decides.
//!
//! A customer's actor fires its due checks whenever it learns a watermark: from each event,
//! before the event is folded in, and from the router's wake-ups for customers who send
//! nothing. Because every event carries the watermark of the stream before it, a check fires
//! at the same place among the customer's events on every run, and the customer's state
//! records how many have fired, so a replay or a restart fires none twice.

use std::time::Instant;

use vigil_models::Model;

use super::decide::{reach, reason_codes, scored, CustomerState};
use super::policy::Policy;
use super::Scoring;
use crate::decision::{Decision, DecisionKind, Trigger};
use crate::event::{wall_clock_ms, SCHEMA_VERSION};
use crate::outcome::{Fired, TimerOutcome};

impl CustomerState {
    /// When the customer's next inactivity check is due, if one is left.
    pub fn inactivity_due(&self, checks_ms: &[i64]) -> Option<i64> {
        let newest = self.features.as_ref()?.newest_ts();
        checks_ms
            .get(usize::from(self.checks_fired))
            .map(|after| newest.saturating_add(*after))
    }

    /// Fires every inactivity check due at or before `watermark`, oldest first, handing each
    /// one's result to `fired`. Returns how many fired.
    pub fn fire_due(
        &mut self,
        customer_id: &str,
        watermark: i64,
        scoring: &Scoring,
        mut fired: impl FnMut(Fired),
    ) -> usize {
        let policy = scoring.policy.current();
        let checks = policy.inactivity_checks_ms();
        let mut count = 0;
        while let Some(due) = self.inactivity_due(checks).filter(|due| *due <= watermark) {
            self.checks_fired += 1;
            count += 1;
            fired(self.check(customer_id, due, scoring, &policy));
        }
        count
    }

    /// One inactivity check at `timer_ts`: the churn champion scores the features as of then,
    /// and the policy decides on outreach under the cooldown that event-triggered outreach
    /// shares.
    fn check(
        &mut self,
        customer_id: &str,
        timer_ts: i64,
        scoring: &Scoring,
        policy: &Policy,
    ) -> Fired {
        let started = Instant::now();
        let features = self
            .features
            .as_ref()
            .expect("a check is due only with features");
        let newest = features.newest_ts();
        let v = features.churn_at(timer_ts);
        let models = scoring.models.current();
        let model: &Model = &models.churn;
        let Some(probability) = scored(model, &v, scoring) else {
            return Fired {
                timer_ts,
                outcome: TimerOutcome::ModelError,
                decision: None,
            };
        };
        let outcome = if policy.outreach(probability, timer_ts, self.last_outreach_ts) {
            TimerOutcome::Outreach
        } else if policy.wants_outreach(probability) {
            TimerOutcome::Cooldown
        } else {
            TimerOutcome::NoAction
        };
        let decision = (outcome == TimerOutcome::Outreach).then(|| {
            self.last_outreach_ts = Some(timer_ts);
            let profile = scoring.profile_of(customer_id);
            let (kind, channel, suppressed) = reach(policy, Some(DecisionKind::Outreach), &profile);
            let kind = kind.expect("outreach is reached or suppressed, never dropped");
            Box::new(Decision {
                schema: SCHEMA_VERSION,
                decision_id: Decision::id_for_timer(customer_id, timer_ts, kind),
                decision: kind,
                customer_id: customer_id.to_owned(),
                event_id: String::new(),
                event_ts: newest,
                trigger: Trigger::Inactivity,
                timer_ts: Some(timer_ts),
                decided_ts: wall_clock_ms(),
                score: Some(probability),
                model: Some(model.label()),
                reasons: reason_codes(model, &v),
                rules: Vec::new(),
                channel,
                suppressed,
                policy: Some(policy.label().clone()),
                degraded: false,
                degraded_reason: None,
                latency_us: started.elapsed().as_micros() as u64,
            })
        });
        Fired {
            timer_ts,
            outcome,
            decision,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::config::Config;
    use crate::decode::decode;
    use crate::event::{Inbound, Position};
    use crate::outcome::Outcome;
    use crate::pipeline::watermark::NO_WATERMARK;
    use crate::telemetry::Telemetry;

    const DAY: i64 = 86_400_000;
    const T0: i64 = 1_780_000_000_000;

    /// Scoring that wants outreach at any score, with a ten-day cooldown.
    fn scoring() -> Scoring {
        let mut config = Config::builtin();
        config.policy.churn.outreach = 0.0;
        config.policy.churn.cooldown = Duration::from_secs(10 * 86_400);
        Scoring::from_config(&config, Telemetry::new()).unwrap()
    }

    fn login(id: &str, ts: i64) -> Inbound {
        inbound(format!(
            r#"{{"schema":1,"event_id":"{id}","customer_id":"c-1","ts":{ts},"kind":"login"}}"#
        ))
    }

    /// A payment: scored for fraud, so it earns no outreach of its own.
    fn payment(id: &str, ts: i64) -> Inbound {
        inbound(format!(
            r#"{{"schema":1,"event_id":"{id}","customer_id":"c-1","ts":{ts},"kind":"payment","amount":12.5,"currency":"EUR","country":"FR","merchant":"m-1","mcc":"5411"}}"#
        ))
    }

    fn inbound(raw: String) -> Inbound {
        Inbound {
            watermark: NO_WATERMARK,
            event: decode(raw.as_bytes(), 65_536).unwrap(),
            position: Position {
                partition: 0,
                offset: 0,
            },
            ingested: Instant::now(),
            raw: Bytes::from(raw),
        }
    }

    fn fire(state: &mut CustomerState, watermark: i64, scoring: &Scoring) -> Vec<Fired> {
        let mut fired = Vec::new();
        state.fire_due("c-1", watermark, scoring, |f| fired.push(f));
        fired
    }

    #[test]
    fn a_quiet_customer_is_checked_at_each_interval_in_order_under_the_cooldown() {
        let scoring = scoring();
        let mut state = CustomerState::default();
        assert_eq!(
            state.inactivity_due(scoring.policy.current().inactivity_checks_ms()),
            None
        );
        state.process(&payment("e-1", T0), &scoring);
        let policy = scoring.policy.current();
        let checks = policy.inactivity_checks_ms();
        assert_eq!(state.inactivity_due(checks), Some(T0 + 7 * DAY));
        assert!(fire(&mut state, T0 + 7 * DAY - 1, &scoring).is_empty());

        let fired = fire(&mut state, T0 + 100 * DAY, &scoring);
        let at: Vec<i64> = fired.iter().map(|f| (f.timer_ts - T0) / DAY).collect();
        assert_eq!(at, [7, 14, 30, 60, 90]);
        let outcomes: Vec<TimerOutcome> = fired.iter().map(|f| f.outcome).collect();
        use TimerOutcome::*;
        // Day 14 is within ten days of day 7's outreach.
        assert_eq!(outcomes, [Outreach, Cooldown, Outreach, Outreach, Outreach]);
        let first = fired[0].decision.as_deref().unwrap();
        assert_eq!(first.trigger, Trigger::Inactivity);
        assert_eq!(first.timer_ts, Some(T0 + 7 * DAY));
        assert_eq!(first.event_ts, T0);
        assert_eq!(
            first.decision_id,
            format!("c-1/inactivity@{}/outreach", T0 + 7 * DAY)
        );
        assert!(first.score.is_some() && !first.reasons.is_empty());
        // Every check has fired; none is left, and none fires twice.
        assert_eq!(state.inactivity_due(checks), None);
        assert!(fire(&mut state, T0 + 1_000 * DAY, &scoring).is_empty());
    }

    #[test]
    fn activity_starts_the_checks_again_and_a_late_event_does_not() {
        let scoring = scoring();
        let policy = scoring.policy.current();
        let checks = policy.inactivity_checks_ms();
        let mut state = CustomerState::default();
        // The login earns outreach, which starts the cooldown the checks share.
        let outreach = |outcome: Outcome| match outcome {
            Outcome::Scored { decision, .. } => decision.map(|d| d.trigger),
            Outcome::Rejected { .. } => panic!("scored"),
        };
        assert_eq!(
            outreach(state.process(&login("e-1", T0), &scoring)),
            Some(Trigger::Event)
        );
        let fired = fire(&mut state, T0 + 8 * DAY, &scoring);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].outcome, TimerOutcome::Cooldown);
        assert_eq!(state.inactivity_due(checks), Some(T0 + 14 * DAY));
        // Within the late tolerance of the newest event, but older: no new activity.
        state.process(&login("e-2", T0 - 60_000), &scoring);
        assert_eq!(state.inactivity_due(checks), Some(T0 + 14 * DAY));
        assert_eq!(
            outreach(state.process(&login("e-3", T0 + 12 * DAY), &scoring)),
            Some(Trigger::Event)
        );
        assert_eq!(state.inactivity_due(checks), Some(T0 + 19 * DAY));
        // Day 12's event-triggered outreach holds the check at day 19.
        let fired = fire(&mut state, T0 + 19 * DAY, &scoring);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].outcome, TimerOutcome::Cooldown);
    }

    #[test]
    fn checks_fired_survive_encoding_and_are_rolled_back_with_a_failed_event() {
        let scoring = scoring();
        let policy = scoring.policy.current();
        let checks = policy.inactivity_checks_ms();
        let mut state = CustomerState::default();
        state.process(&payment("e-1", T0), &scoring);
        fire(&mut state, T0 + 20 * DAY, &scoring);
        let mut restored = CustomerState::decode(&state.encode()).unwrap();
        assert_eq!(restored.inactivity_due(checks), Some(T0 + 30 * DAY));
        let point = restored.restore_point();
        restored.process(&login("e-2", T0 + 21 * DAY), &scoring);
        assert_eq!(restored.inactivity_due(checks), Some(T0 + 28 * DAY));
        restored.rollback(&point);
        assert_eq!(restored.inactivity_due(checks), Some(T0 + 30 * DAY));
    }

    #[test]
    fn a_profile_update_between_two_checks_changes_the_next_decision() {
        use crate::decision::{DecisionKind, Suppressed};
        use crate::profile::{Channel, ProfileBook};
        use std::sync::Arc;

        let mut scoring = scoring();
        let store = Arc::new(crate::state::store::StateStore::open(None).unwrap());
        let config = Config::builtin();
        let book = Arc::new(ProfileBook::new(store, &config.profiles, Telemetry::new()));
        let update = |json: &str| {
            let update = crate::profile::parse(json.as_bytes()).unwrap();
            book.store(&[update], "test", &Default::default()).unwrap();
        };
        update(r#"{"customer_id":"c-1","marketing_consent":false,"channels":{"push":true}}"#);
        scoring.profiles = Some(book.clone());
        let mut state = CustomerState::default();
        state.process(&payment("e-1", T0), &scoring);

        let kind = |fired: &[Fired]| {
            let d = fired[0].decision.as_deref().unwrap();
            (d.decision, d.channel, d.suppressed)
        };
        let first = fire(&mut state, T0 + 7 * DAY, &scoring);
        assert_eq!(
            kind(&first),
            (
                DecisionKind::OutreachSuppressed,
                None,
                Some(Suppressed::NoConsent)
            )
        );
        // The customer consents; the next check (past the ten-day cooldown) reaches them.
        update(r#"{"customer_id":"c-1","marketing_consent":true,"channels":{"push":true}}"#);
        let next = fire(&mut state, T0 + 30 * DAY, &scoring);
        assert_eq!(next.len(), 2, "day 14 is in the cooldown, day 30 is not");
        assert_eq!(next[0].decision, None);
        assert_eq!(
            kind(&next[1..]),
            (DecisionKind::Outreach, Some(Channel::Push), None)
        );
    }
}
