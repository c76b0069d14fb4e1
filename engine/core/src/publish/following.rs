//! What the publisher shows whoever follows the run live (the risk console): every decision
//! once its sinks have it, with the JSON record they got, on a broadcast channel that never
//! waits for a follower (one that falls behind misses decisions and is told how many), and the
//! two latest once-a-second `Tick`s, from which rates are derived.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::broadcast;

use super::Tick;
use crate::decision::Decision;

/// A published decision, and its record as the sinks got it (JSON), so that followers never
/// encode it again.
#[derive(Debug, Clone)]
pub struct Published {
    pub decision: Arc<Decision>,
    pub json: Bytes,
}

/// Published decisions and progress, for followers.
pub struct Following {
    decisions: broadcast::Sender<Published>,
    /// The tick before the latest, and the latest.
    ticks: Mutex<(Option<Tick>, Option<Tick>)>,
}

impl Following {
    /// Keeps up to `backlog` decisions for followers that have not read them yet.
    pub fn new(backlog: usize) -> Following {
        Following {
            decisions: broadcast::channel(backlog.max(1)).0,
            ticks: Mutex::new((None, None)),
        }
    }

    /// Every decision published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.decisions.subscribe()
    }

    /// The latest tick and the one before it, if the run has ticked.
    pub fn ticks(&self) -> (Option<Tick>, Option<Tick>) {
        self.ticks.lock().expect("ticks lock").clone()
    }

    pub(super) fn published(&self, decisions: impl Iterator<Item = Published>) {
        for decision in decisions {
            // No follower is not an error: decisions are only for those listening.
            let _ = self.decisions.send(decision);
        }
    }

    pub(super) fn ticked(&self, tick: &Tick) {
        let mut ticks = self.ticks.lock().expect("ticks lock");
        let latest = ticks.1.replace(tick.clone());
        ticks.0 = latest;
    }
}
