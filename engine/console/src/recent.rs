//! The recent decisions the console serves: a bounded ring, newest last, kept by one task that
//! follows the engine's published decisions, and the filters the API and the live stream
//! share (`kind`, `customer`, `since`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use vigil_engine::decision::{Decision, DecisionKind};
use vigil_engine::publish::Published;

/// The most decisions one request returns.
pub const MAX_LIMIT: usize = 1_000;
const DEFAULT_LIMIT: usize = 100;

/// Which decisions a request wants.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    /// Decision kinds, comma-separated (`freeze,alert`).
    pub kind: Option<String>,
    /// One customer's decisions.
    pub customer: Option<String>,
    /// Decided at or after this time, ms since the epoch.
    pub since: Option<i64>,
    /// How many, newest first (100 by default, at most 1,000).
    pub limit: Option<usize>,
}

/// A `Filter` checked and ready to apply.
#[derive(Debug, Clone)]
pub struct Matcher {
    kinds: Vec<DecisionKind>,
    customer: Option<String>,
    since: Option<i64>,
    pub limit: usize,
}

impl Filter {
    /// The matcher, or the reason a parameter is wrong, naming it.
    pub fn matcher(self) -> Result<Matcher, String> {
        let kinds = match self.kind.as_deref().filter(|k| !k.is_empty()) {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|name| {
                    DecisionKind::ALL
                        .into_iter()
                        .find(|k| k.name() == name.trim())
                        .ok_or_else(|| {
                            format!(
                                "`kind`: {name:?} is not one of {}",
                                DecisionKind::ALL.map(DecisionKind::name).join(", ")
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(format!("`limit`: {limit} is outside 1..={MAX_LIMIT}"));
        }
        Ok(Matcher {
            kinds,
            customer: self.customer.filter(|c| !c.is_empty()),
            since: self.since,
            limit,
        })
    }
}

impl Matcher {
    pub fn matches(&self, d: &Decision) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&d.decision))
            && self.customer.as_deref().is_none_or(|c| c == d.customer_id)
            && self.since.is_none_or(|since| d.decided_ts >= since)
    }
}

/// The newest decisions, at most `capacity`.
pub struct Recent {
    ring: Mutex<VecDeque<Arc<Decision>>>,
    capacity: usize,
}

impl Recent {
    pub fn new(capacity: usize) -> Recent {
        Recent {
            ring: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }

    /// Keeps the ring from `decisions` until the engine stops publishing.
    pub async fn keep(self: Arc<Self>, mut decisions: Receiver<Published>) {
        loop {
            match decisions.recv().await {
                Ok(published) => self.push(published.decision),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "The console's recent decisions fell behind the engine and miss some."
                    );
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    pub fn push(&self, decision: Arc<Decision>) {
        let mut ring = self.ring.lock().expect("recent lock");
        if ring.len() == self.capacity {
            ring.pop_front();
        }
        ring.push_back(decision);
    }

    /// The newest decisions `matcher` matches, newest first.
    pub fn query(&self, matcher: &Matcher) -> Vec<Arc<Decision>> {
        let ring = self.ring.lock().expect("recent lock");
        ring.iter()
            .rev()
            .filter(|d| matcher.matches(d))
            .take(matcher.limit)
            .cloned()
            .collect()
    }

    /// The decision `decision_id`, if it is still among the recent ones.
    pub fn find(&self, decision_id: &str) -> Option<Arc<Decision>> {
        let ring = self.ring.lock().expect("recent lock");
        ring.iter()
            .rev()
            .find(|d| d.decision_id == decision_id)
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.ring.lock().expect("recent lock").len()
    }
}
