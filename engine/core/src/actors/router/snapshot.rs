//! Checkpoints, the router's part: once the ingest loop has paused and everything in flight is
//! published, the router collects the state of every customer touched since the last
//! checkpoint (asking live actors, taking passivated ones from memory or the store), waits for
//! the publisher to write the decisions of the inactivity checks those states have fired, and
//! writes them as the store's snapshot in one transaction with the source offsets.

use std::sync::Arc;
use std::time::Instant;

use ractor::ActorProcessingErr;

use super::{CheckpointTaken, CustomerEntry, PendingCheckpoint, RouterState};
use crate::actors::customer::CustomerMsg;
use crate::outcome::Report;
use crate::state::store::Entry;

impl RouterState {
    /// Takes the waiting checkpoint once no hand-over, save or firing job is in progress: every touched
    /// customer's state (from their actor, or from memory or the store when passivated) goes
    /// into the store's snapshot with the offsets.
    pub(super) async fn try_checkpoint(&mut self) -> Result<(), ActorProcessingErr> {
        if self.handing > 0 || self.saving || self.timers.job_running || self.checkpoint.is_none() {
            return Ok(());
        }
        let PendingCheckpoint {
            offsets,
            event_times,
            reply,
        } = self.checkpoint.take().expect("checked above");
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
                    if let Some(entry) = self.unsaved.get(&id) {
                        states.push(entry.clone());
                    }
                }
            }
        }
        for (customer_id, answer) in asked {
            // An actor that died meanwhile left no state to save; its events are dead letters.
            if let Ok((state, due)) = answer.await {
                states.push(Entry {
                    customer_id,
                    state: Arc::from(state),
                    due,
                });
            }
        }
        // Every inactivity check these states record as fired was reported before the state
        // was: once the publisher has written what it heard so far, none is unpublished.
        let (flushed, published) = tokio::sync::oneshot::channel();
        if self.args.publisher.send(Report::Flush(flushed)).is_ok() {
            let _ = published.await;
        }
        let store = self.args.store.clone();
        let source = self.args.checkpoints.clone().unwrap_or_default();
        let written = tokio::task::spawn_blocking(move || {
            let bytes = store.checkpoint(&source, &offsets, &event_times, &states)?;
            Ok::<_, crate::error::Error>((states.len(), bytes))
        })
        .await?;
        let result = match written {
            Ok((customers, bytes)) => {
                for (customer_id, entry) in std::mem::take(&mut self.unsaved) {
                    self.due_stored(customer_id, entry.due);
                }
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
