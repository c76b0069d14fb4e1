//! Live stream clients: each holds a receiver of the engine's published decisions and turns
//! them into Server-Sent Events, and is counted while connected (`vigil_console_stream_clients`)
//! and when dropped for falling behind (`vigil_console_stream_dropped_total`).
//!
//! Decisions go out as the JSON records the sinks got, never encoded again, and those waiting
//! when the client is ready are written together in one chunk (up to `CHUNK_BYTES`): under
//! load a client costs a write per chunk, not per decision. A quiet stream sends a comment every
//! `KEEP_ALIVE` so that proxies keep it open.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;
use vigil_engine::publish::Published;

use crate::recent::Matcher;

const KEEP_ALIVE: Duration = Duration::from_secs(15);
const CHUNK_BYTES: usize = 256 * 1024;

pub const STREAM_CLIENTS: &str = "vigil_console_stream_clients";
pub const STREAM_DROPPED: &str = "vigil_console_stream_dropped_total";

/// One connected stream client.
pub(crate) struct StreamClient {
    decisions: Receiver<Published>,
    /// The console's count of connected clients, this one included.
    connected: Arc<AtomicU64>,
}

impl StreamClient {
    pub fn new(decisions: Receiver<Published>, connected: Arc<AtomicU64>) -> StreamClient {
        let now = connected.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!(STREAM_CLIENTS).set(now as f64);
        StreamClient {
            decisions,
            connected,
        }
    }

    /// The events for this client: the decisions `matcher` matches, until it falls behind
    /// (then `event: dropped`, and the end) or the engine stops publishing.
    pub fn events(self, matcher: Matcher) -> impl Stream<Item = Result<Bytes, Infallible>> {
        futures_util::stream::unfold(Some((self, matcher)), |state| async move {
            let (mut client, matcher) = state?;
            let mut chunk = BytesMut::new();
            loop {
                let received = match tokio::time::timeout(KEEP_ALIVE, client.decisions.recv()).await
                {
                    Err(_) => {
                        let alive = Bytes::from_static(b": keep-alive\n\n");
                        return Some((Ok(alive), Some((client, matcher))));
                    }
                    Ok(received) => received,
                };
                let mut next = Some(received);
                while let Some(received) = next.take() {
                    match received {
                        Ok(published) => {
                            if matcher.matches(&published.decision) {
                                chunk.put_slice(b"event: decision\ndata: ");
                                chunk.put_slice(&published.json);
                                chunk.put_slice(b"\n\n");
                            }
                        }
                        Err(RecvError::Lagged(missed)) => {
                            client.dropped(missed);
                            chunk.put_slice(format!(
                                "event: dropped\ndata: this client fell {missed} decisions behind and is dropped; reconnect, and read /api/decisions for what it missed\n\n"
                            ).as_bytes());
                            return Some((Ok(chunk.freeze()), None));
                        }
                        Err(RecvError::Closed) => {
                            return (!chunk.is_empty()).then(|| (Ok(chunk.freeze()), None));
                        }
                    }
                    if chunk.len() < CHUNK_BYTES {
                        next = match client.decisions.try_recv() {
                            Ok(published) => Some(Ok(published)),
                            Err(TryRecvError::Empty) => None,
                            Err(TryRecvError::Lagged(missed)) => {
                                Some(Err(RecvError::Lagged(missed)))
                            }
                            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                        };
                    }
                }
                if !chunk.is_empty() {
                    return Some((Ok(chunk.freeze()), Some((client, matcher))));
                }
            }
        })
    }

    /// The client fell `missed` decisions behind and is cut off.
    fn dropped(&self, missed: u64) {
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
