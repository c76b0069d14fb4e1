//! The generator: a seeded, labelled stream of schema v1 records with a benign majority that
//! has per-customer habits (home country, usual merchants, typical amounts, waking hours) and
//! skewed activity, optional hot customers, injected account takeovers, card-testing bursts,
//! fraud rings and churn cohorts, plus malformed records. `GroundTruth` records what was
//! injected, for tests and load reports.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::UNIX_EPOCH;

use rand::distributions::WeightedIndex;
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_distr::{LogNormal, Pareto};

use vigil_engine::event::{Event, EventKind, GeoPoint, Label, Payment, Place};

use crate::scenario::{FraudInjection, MalformedKind, Scenario};
use crate::world::{self, Country, COUNTRIES, FEATURES, MCCS, PAGES};

/// What the generator injected, so tests and reports can score the engine against it.
#[derive(Debug, Clone, Default)]
pub struct GroundTruth {
    pub account_takeover: Vec<String>,
    pub card_testing: Vec<String>,
    /// Members of every fraud ring.
    pub fraud_rings: Vec<String>,
    /// When each attacked customer's attack began (event time, ms): the key set is the union
    /// of the three lists above.
    pub attack_start: HashMap<String, i64>,
    pub churners: Vec<String>,
    /// Malformed records emitted so far.
    pub malformed: u64,
}

/// One generated record.
#[derive(Debug, Clone)]
pub struct GeneratedRecord {
    pub payload: Vec<u8>,
    /// Whether the record was made malformed on purpose.
    pub malformed: bool,
}

/// A customer's habits.
#[derive(Debug, Clone)]
struct Profile {
    id: String,
    home: usize,
    home_point: GeoPoint,
    merchants: [usize; 6],
    amount: LogNormal<f64>,
    /// First UTC hour of the customer's 15 waking hours.
    wake_hour: u32,
    /// Progress (0..1 of the span) at which a churner starts to drift away.
    churn_from: Option<f64>,
    /// Progress at which the customer joins; they act only from then on.
    joined: f64,
}

/// Injected events wait here until the benign clock reaches them.
struct Pending {
    ts: i64,
    seq: u64,
    event: Event,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.ts, self.seq).cmp(&(other.ts, other.seq))
    }
}

const MERCHANTS: usize = 2_000;
const TEST_MERCHANTS: usize = 10;
pub(crate) const MINUTE_MS: i64 = 60_000;

/// A deterministic, labelled event stream described by a scenario.
pub struct Generator {
    scenario: Scenario,
    rng: ChaCha8Rng,
    customers: Vec<Profile>,
    pick_customer: WeightedIndex<f64>,
    pick_kind: WeightedIndex<f64>,
    start_ms: i64,
    span_ms: i64,
    benign_emitted: u64,
    next_seq: u64,
    pending: BinaryHeap<Reverse<Pending>>,
    owed_malformed: Option<Vec<u8>>,
    truth: GroundTruth,
}

impl Generator {
    pub fn new(scenario: Scenario) -> Generator {
        let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
        let start_ms = scenario
            .start
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let span_ms = scenario.span.as_millis().max(1) as i64;
        let activity = Pareto::new(1.0, 1.8).expect("valid Pareto");
        let skew = scenario.activity_skew;
        let mut weights = Vec::with_capacity(scenario.customers as usize);
        let mut customers = Vec::with_capacity(scenario.customers as usize);
        let mut truth = GroundTruth::default();
        for i in 0..scenario.customers {
            let home = world::pick_home(&mut rng);
            let Country { lat, lon, .. } = COUNTRIES[home];
            let churn_from = rng
                .gen_bool(scenario.churn.cohort)
                .then(|| rng.gen_range(0.3..0.6));
            let joined = scenario
                .signup_spread
                .filter(|spread| *spread > 0.0)
                .map_or(0.0, |spread| rng.gen_range(0.0..spread));
            let profile = Profile {
                id: format!("c-{i:07}"),
                home,
                home_point: GeoPoint {
                    lat: lat + rng.gen_range(-0.3..0.3),
                    lon: lon + rng.gen_range(-0.3..0.3),
                },
                merchants: std::array::from_fn(|_| rng.gen_range(0..MERCHANTS)),
                amount: LogNormal::new(rng.gen_range(2.3..4.3), rng.gen_range(0.3..0.7))
                    .expect("valid log-normal"),
                wake_hour: world::wake_hour(home, &mut rng),
                churn_from,
                joined,
            };
            if churn_from.is_some() {
                truth.churners.push(profile.id.clone());
            }
            weights.push(match skew {
                Some(s) => (f64::from(i) + 1.0).powf(-s),
                None => f64::min(activity.sample(&mut rng), 50.0),
            });
            customers.push(profile);
        }
        let pick_kind = WeightedIndex::new(scenario.mix.weights()).expect("validated mix");
        let mut generator = Generator {
            pick_customer: WeightedIndex::new(&weights).expect("positive weights"),
            pick_kind,
            rng,
            customers,
            start_ms,
            span_ms,
            benign_emitted: 0,
            next_seq: 0,
            pending: BinaryHeap::new(),
            owed_malformed: None,
            truth,
            scenario,
        };
        generator.schedule_fraud();
        generator
    }

    /// What has been injected so far (customers are known up front; malformed as emitted).
    pub fn truth(&self) -> &GroundTruth {
        &self.truth
    }

    /// Records still to come: benign events, injected ones waiting, and a malformed one owed.
    pub fn remaining(&self) -> u64 {
        self.scenario.events() - self.benign_emitted
            + self.pending.len() as u64
            + u64::from(self.owed_malformed.is_some())
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    fn event_id(&mut self) -> String {
        self.next_seq += 1;
        format!("e-{:x}-{}", self.scenario.seed, self.next_seq)
    }

    fn schedule_fraud(&mut self) {
        let (ato, testing) = (
            self.scenario.fraud.account_takeover,
            self.scenario.fraud.card_testing,
        );
        for c in 0..self.customers.len() {
            // Late enough that the customer has a history to deviate from.
            let at = self.start_ms + (self.span_ms as f64 * self.rng.gen_range(0.4..0.95)) as i64;
            if self.rng.gen_bool(ato) {
                self.truth
                    .account_takeover
                    .push(self.customers[c].id.clone());
                self.truth
                    .attack_start
                    .insert(self.customers[c].id.clone(), at);
                self.inject_account_takeover(c, at);
            } else if self.rng.gen_bool(testing) {
                self.truth.card_testing.push(self.customers[c].id.clone());
                self.truth
                    .attack_start
                    .insert(self.customers[c].id.clone(), at);
                self.inject_card_testing(c, at);
            }
        }
        self.schedule_rings();
    }

    /// Fraud rings: for each ring, `ring_size` customers not otherwise attacked pay one
    /// merchant from one far country within half an hour, with cards the ring has stolen.
    fn schedule_rings(&mut self) {
        let FraudInjection {
            rings, ring_size, ..
        } = self.scenario.fraud;
        if rings == 0 {
            return;
        }
        let mut free: Vec<usize> = (0..self.customers.len())
            .filter(|&c| !self.truth.attack_start.contains_key(&self.customers[c].id))
            .collect();
        free.shuffle(&mut self.rng);
        let mut members = free.into_iter();
        for ring in 0..rings {
            let at = self.start_ms + (self.span_ms as f64 * self.rng.gen_range(0.4..0.95)) as i64;
            let country = &COUNTRIES[self.rng.gen_range(0..COUNTRIES.len())];
            let merchant = format!("m-ring{ring}");
            for c in members.by_ref().take(ring_size as usize) {
                let id = self.customers[c].id.clone();
                let mut ts = at + self.rng.gen_range(0..30 * MINUTE_MS);
                self.truth.attack_start.insert(id.clone(), ts);
                self.truth.fraud_rings.push(id.clone());
                for _ in 0..self.rng.gen_range(1..=3) {
                    let payment = Event {
                        event_id: self.event_id(),
                        customer_id: id.clone(),
                        ts,
                        kind: EventKind::Payment(Payment {
                            amount: round_cents(self.rng.gen_range(300.0..1_500.0)),
                            currency: country.currency.to_owned(),
                            country: country.code.to_owned(),
                            location: None,
                            merchant: merchant.clone(),
                            mcc: "5732".to_owned(),
                            channel: Some("online".into()),
                        }),
                        label: Some(Label {
                            fraud: Some(true),
                            churn: None,
                        }),
                    };
                    self.push_pending(payment);
                    ts += self.rng.gen_range(MINUTE_MS..5 * MINUTE_MS);
                }
            }
        }
    }

    fn push_pending(&mut self, event: Event) {
        let seq = self.next_seq;
        self.pending.push(Reverse(Pending {
            ts: event.ts,
            seq,
            event,
        }));
    }

    fn inject_account_takeover(&mut self, c: usize, at: i64) {
        let profile = self.customers[c].clone();
        let far = world::pick_far_country(profile.home, &mut self.rng);
        let country = &COUNTRIES[far];
        let place = GeoPoint {
            lat: country.lat + self.rng.gen_range(-0.2..0.2),
            lon: country.lon + self.rng.gen_range(-0.2..0.2),
        };
        let fraud = Some(Label {
            fraud: Some(true),
            churn: None,
        });
        let login = Event {
            event_id: self.event_id(),
            customer_id: profile.id.clone(),
            ts: at,
            kind: EventKind::Login {
                place: Some(Place {
                    country: Some(country.code.to_owned()),
                    location: Some(place),
                }),
            },
            label: fraud,
        };
        self.push_pending(login);
        // Well above anything the customer's habits produce.
        let ceiling = (profile.amount.sample(&mut self.rng).ln().max(0.0) + 3.0).exp();
        let mut ts = at;
        for _ in 0..self.rng.gen_range(1..=3) {
            ts += self.rng.gen_range(2 * MINUTE_MS..20 * MINUTE_MS);
            let payment = Event {
                event_id: self.event_id(),
                customer_id: profile.id.clone(),
                ts,
                kind: EventKind::Payment(Payment {
                    amount: round_cents(ceiling * self.rng.gen_range(4.0..12.0) + 500.0),
                    currency: country.currency.to_owned(),
                    country: country.code.to_owned(),
                    location: Some(place),
                    merchant: format!("m-{}", self.rng.gen_range(0..MERCHANTS)),
                    mcc: MCCS[self.rng.gen_range(0..MCCS.len())].to_owned(),
                    channel: Some("online".into()),
                }),
                label: fraud,
            };
            self.push_pending(payment);
        }
    }

    fn inject_card_testing(&mut self, c: usize, at: i64) {
        let profile = self.customers[c].clone();
        let home = &COUNTRIES[profile.home];
        let mut ts = at;
        for _ in 0..self.rng.gen_range(8..=25) {
            ts += self.rng.gen_range(2_000..8_000);
            let payment = Event {
                event_id: self.event_id(),
                customer_id: profile.id.clone(),
                ts,
                kind: EventKind::Payment(Payment {
                    amount: round_cents(self.rng.gen_range(0.5..2.5)),
                    currency: home.currency.to_owned(),
                    country: home.code.to_owned(),
                    location: None,
                    merchant: format!("m-t{}", self.rng.gen_range(0..TEST_MERCHANTS)),
                    mcc: "5999".to_owned(),
                    channel: Some("online".into()),
                }),
                label: Some(Label {
                    fraud: Some(true),
                    churn: None,
                }),
            };
            self.push_pending(payment);
        }
    }

    /// Picks the customer acting at `ts`, favouring their waking hours, thinning out churners
    /// as they drift away and never picking one who has not joined yet or has left.
    fn pick_customer(&mut self, ts: i64, progress: f64) -> (usize, f64) {
        if let Some(hot) = &self.scenario.hot {
            if self.rng.gen_bool(hot.share) {
                return (self.rng.gen_range(0..hot.customers as usize), 0.0);
            }
        }
        let hour = ((ts / (60 * MINUTE_MS)) % 24) as u32;
        let silent_at = self.scenario.churn.silent_at;
        let decay_of = |p: &Profile| {
            p.churn_from.map_or(0.0, |from| {
                ((progress - from) / (1.0 - from)).clamp(0.0, 1.0)
            })
        };
        let left = |decay: f64| silent_at.is_some_and(|at| decay >= at);
        let absent = |p: &Profile| progress < p.joined || left(decay_of(p));
        let mut c = 0;
        let mut decay = 0.0;
        for _ in 0..8 {
            c = self.pick_customer.sample(&mut self.rng);
            let p = &self.customers[c];
            let awake = (hour + 24 - p.wake_hour) % 24 < 15;
            decay = decay_of(p);
            if absent(p) {
                continue;
            }
            let asleep_skip = !awake && self.rng.gen_bool(0.95);
            let churn_skip = self.rng.gen_bool(0.8 * decay);
            if !asleep_skip && !churn_skip {
                break;
            }
        }
        // Every try fell on someone asleep or drifting: the last one acts, unless they are absent
        // (not joined yet, or left). Should nearly everyone be absent, an absent one acts after a
        // thousand tries.
        for _ in 0..1_000 {
            if !absent(&self.customers[c]) {
                break;
            }
            c = self.pick_customer.sample(&mut self.rng);
            decay = decay_of(&self.customers[c]);
        }
        (c, decay)
    }

    fn benign(&mut self, ts: i64) -> Event {
        let progress = (ts - self.start_ms) as f64 / self.span_ms as f64;
        let (c, decay) = self.pick_customer(ts, progress);
        let p = self.customers[c].clone();
        let rng = &mut self.rng;
        let mut kind = self.pick_kind.sample(rng);
        // A drifting churner trades engagement for looking at the exit.
        if decay > 0.0 && matches!(kind, 1 | 2 | 4) && rng.gen_bool(decay) {
            kind = if rng.gen_bool(0.7) { 3 } else { 5 };
        }
        let churn_label = Label {
            fraud: None,
            churn: Some(decay > 0.0),
        };
        let (kind, label) = match kind {
            0 => (
                self.benign_payment(&p),
                Label {
                    fraud: Some(false),
                    churn: None,
                },
            ),
            1 => (
                EventKind::Login {
                    place: Some(Place {
                        country: Some(COUNTRIES[p.home].code.to_owned()),
                        location: Some(p.home_point),
                    }),
                },
                churn_label,
            ),
            2 => {
                let minutes = LogNormal::new(2.2 - decay, 0.8).expect("valid").sample(rng);
                (
                    EventKind::SessionEnd {
                        duration_s: (minutes * 60.0).round(),
                    },
                    churn_label,
                )
            }
            3 => {
                let page = if decay > 0.0 && rng.gen_bool(0.5 + 0.5 * decay) {
                    if rng.gen_bool(0.6) {
                        "pricing"
                    } else {
                        "cancel"
                    }
                } else {
                    world::pick_weighted(&PAGES, rng)
                };
                (
                    EventKind::PageView {
                        page: page.to_owned(),
                    },
                    churn_label,
                )
            }
            4 => (
                EventKind::FeatureUse {
                    feature: FEATURES[rng.gen_range(0..FEATURES.len())].to_owned(),
                },
                churn_label,
            ),
            5 => (EventKind::SupportTicket, churn_label),
            6 => (EventKind::CartAdd, churn_label),
            7 => (EventKind::CartAbandon, churn_label),
            _ => (EventKind::SubscriptionChange, churn_label),
        };
        Event {
            event_id: self.event_id(),
            customer_id: p.id,
            ts,
            kind,
            label: Some(label),
        }
    }

    fn benign_payment(&mut self, p: &Profile) -> EventKind {
        let rng = &mut self.rng;
        let travelling = rng.gen_bool(0.004);
        let country = if travelling {
            world::pick_near_country(p.home, rng)
        } else {
            p.home
        };
        let c = &COUNTRIES[country];
        let location = if travelling {
            GeoPoint {
                lat: c.lat + rng.gen_range(-0.2..0.2),
                lon: c.lon + rng.gen_range(-0.2..0.2),
            }
        } else {
            GeoPoint {
                lat: p.home_point.lat + rng.gen_range(-0.05..0.05),
                lon: p.home_point.lon + rng.gen_range(-0.05..0.05),
            }
        };
        let merchant = if rng.gen_bool(0.97) {
            p.merchants[rng.gen_range(0..p.merchants.len())]
        } else {
            rng.gen_range(0..MERCHANTS)
        };
        let online = rng.gen_bool(0.3);
        EventKind::Payment(Payment {
            amount: round_cents(p.amount.sample(rng).min(5_000.0)),
            currency: c.currency.to_owned(),
            country: c.code.to_owned(),
            location: (!online).then_some(location),
            merchant: format!("m-{merchant}"),
            mcc: MCCS[merchant % MCCS.len()].to_owned(),
            channel: Some(if online { "online" } else { "pos" }.to_owned()),
        })
    }

    /// Breaks a well-formed record in one of the ways real producers do.
    fn malform(&mut self, event: &Event) -> Vec<u8> {
        let good = event.to_json();
        let kinds = &self.scenario.malformed.kinds;
        let broken = match kinds[self.rng.gen_range(0..kinds.len())] {
            MalformedKind::Truncated => good[..good.len() / 2].to_owned(),
            MalformedKind::UnsupportedSchema => good.replacen("\"schema\":1", "\"schema\":9", 1),
            MalformedKind::MissingCustomer => good.replacen(
                &format!("\"customer_id\":\"{}\",", event.customer_id),
                "",
                1,
            ),
            MalformedKind::UnknownKind => good.replacen(
                &format!("\"kind\":\"{}\"", event.kind.name()),
                "\"kind\":\"refund\"",
                1,
            ),
            MalformedKind::BadTimestamp => {
                good.replacen(&format!("\"ts\":{}", event.ts), "\"ts\":\"yesterday\"", 1)
            }
            MalformedKind::Oversized => {
                format!("{{\"schema\":1,\"padding\":\"{}\"}}", "x".repeat(70 * 1024))
            }
            MalformedKind::InvalidUtf8 => {
                let mut bytes = good.into_bytes();
                bytes.insert(1, 0xff);
                return bytes;
            }
        };
        broken.into_bytes()
    }
}

impl Iterator for Generator {
    type Item = GeneratedRecord;

    fn next(&mut self) -> Option<GeneratedRecord> {
        if let Some(payload) = self.owed_malformed.take() {
            self.truth.malformed += 1;
            return Some(GeneratedRecord {
                payload,
                malformed: true,
            });
        }
        let benign_left = self.benign_emitted < self.scenario.events();
        let next_ts = self.start_ms
            + ((self.benign_emitted as u128 * self.span_ms as u128)
                / self.scenario.events().max(1) as u128) as i64;
        let injected_first = self
            .pending
            .peek()
            .is_some_and(|Reverse(p)| !benign_left || p.ts <= next_ts);
        let event = if injected_first {
            self.pending.pop().expect("peeked").0.event
        } else if benign_left {
            self.benign_emitted += 1;
            let event = self.benign(next_ts);
            if self.rng.gen_bool(self.scenario.malformed.ratio) {
                self.owed_malformed = Some(self.malform(&event));
            }
            event
        } else {
            return None;
        };
        Some(GeneratedRecord {
            payload: event.to_json().into_bytes(),
            malformed: false,
        })
    }
}

fn round_cents(amount: f64) -> f64 {
    (amount * 100.0).round() / 100.0
}
