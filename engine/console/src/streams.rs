//! Live stream clients: each holds a receiver of the engine's published decisions, and is
//! counted while connected (`vigil_console_stream_clients`) and when dropped for falling
//! behind (`vigil_console_stream_dropped_total`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast::Receiver;
use vigil_engine::decision::Decision;

pub const STREAM_CLIENTS: &str = "vigil_console_stream_clients";
pub const STREAM_DROPPED: &str = "vigil_console_stream_dropped_total";

/// One connected stream client.
pub(crate) struct StreamClient {
    pub decisions: Receiver<Arc<Decision>>,
    /// The console's count of connected clients, this one included.
    connected: Arc<AtomicU64>,
}

impl StreamClient {
    pub fn new(decisions: Receiver<Arc<Decision>>, connected: Arc<AtomicU64>) -> StreamClient {
        let now = connected.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!(STREAM_CLIENTS).set(now as f64);
        StreamClient {
            decisions,
            connected,
        }
    }

    /// The client fell `missed` decisions behind and is cut off.
    pub fn dropped(&self, missed: u64) {
        tracing::warn!(
            missed,
            "A console stream client fell behind and is dropped."
        );
        metrics::counter!(STREAM_DROPPED).increment(1);
    }
}

impl Drop for StreamClient {
    fn drop(&mut self) {
        let now = self.connected.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!(STREAM_CLIENTS).set(now as f64);
    }
}
