//! Checkpoints, the router's part: once the ingest loop has paused and everything in flight is
//! published, the router collects the state of every customer touched since the last
//! checkpoint (asking live actors, taking passivated ones from memory or the store) and writes
//! them as the store's snapshot in one transaction with the source offsets.

use std::sync::Arc;
use std::time::Instant;

use ractor::ActorProcessingErr;

use super::{CheckpointTaken, CustomerEntry, RouterState};
use crate::actors::customer::CustomerMsg;
use crate::state::store::Entry;

impl RouterState {
    /// Takes the waiting checkpoint once no hand-over or save is in progress: every touched
    /// customer's state (from their actor, or from memory or the store when passivated) goes
    /// into the store's snapshot with the offsets.
    pub(super) async fn try_checkpoint(&mut self) -> Result<(), ActorProcessingErr> {
        if self.handing > 0 || self.saving || self.checkpoint.is_none() {
            return Ok(());
        }
        let (offsets, reply) = self.checkpoint.take().expect("checked above");
        let started = Instant::now();
        let mut states: Vec<Entry> = Vec::with_capacity(self.dirty.len());
        let mut asked = Vec::new();
        for id in self.dirty.drain() {
            match self.customers.get(&id) {
                Some(CustomerEntry::Active { actor, .. }) => {
                    let (port, answer) = ractor::concurrency::oneshot();
                    if actor
                        .send_message(CustomerMsg::Snapshot(port.into()))
                        .is_ok()
                    {
                        asked.push((id, answer));
                    }
                }
                // Passivated since the last checkpoint: its state is in memory or already
                // among the store's passivated states, which the checkpoint takes over.
                _ => {
                    if let Some(state) = self.unsaved.get(&id) {
                        states.push((id, state.clone()));
                    }
                }
            }
        }
        for (id, answer) in asked {
            // An actor that died meanwhile left no state to save; its events are dead letters.
            if let Ok(state) = answer.await {
                states.push((id, Arc::from(state)));
            }
        }
        let store = self.args.store.clone();
        let source = self.args.checkpoints.clone().unwrap_or_default();
        let written = tokio::task::spawn_blocking(move || {
            let bytes = store.checkpoint(&source, &offsets, &states)?;
            Ok::<_, crate::error::Error>((states.len(), bytes))
        })
        .await?;
        let result = match written {
            Ok((customers, bytes)) => {
                self.unsaved.clear();
                Ok(CheckpointTaken {
                    customers,
                    bytes,
                    took: started.elapsed(),
                })
            }
            Err(error) => Err(error),
        };
        let _ = reply.send(result);
        Ok(())
    }
}
