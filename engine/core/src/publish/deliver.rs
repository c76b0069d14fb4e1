//! Delivering a batch to a sink, by what its errors say. An `External` failure (a broker that
//! is down, a full disk) is retried with exponential backoff and jitter until the sink takes
//! the batch: nothing is dropped, the in-flight permits the publisher holds meanwhile stop the
//! source, and the checkpoint does not move past the undelivered batch. A batch refused as
//! `InvalidInput` is sent again record by record, so that only the records the sink can never
//! take are handed back, to be dead-lettered. Any other error stops the run.
//!
//! A retried batch may be delivered twice; decision ids make that harmless.

use std::time::Duration;

use rand::Rng;

use crate::error::{Error, ErrorKind, Result};
use crate::sink::{Sink, SinkRecord};
use crate::telemetry::{SinkFailed, Telemetry};

/// First and longest wait between attempts to deliver a batch to a failing sink.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Delivers `batch`; returns the records the sink refused for good, by index, with why.
pub async fn deliver(
    sink: &mut dyn Sink,
    batch: &[SinkRecord],
    telemetry: &Telemetry,
) -> Result<Vec<(usize, Error)>> {
    match deliver_retrying(sink, batch, telemetry).await {
        Ok(()) => Ok(Vec::new()),
        Err(error) if error.kind() == ErrorKind::InvalidInput => {
            let mut refused = Vec::new();
            for (index, record) in batch.iter().enumerate() {
                match deliver_retrying(sink, std::slice::from_ref(record), telemetry).await {
                    Ok(()) => {}
                    Err(error) if error.kind() == ErrorKind::InvalidInput => {
                        refused.push((index, error))
                    }
                    Err(error) => return Err(error),
                }
            }
            Ok(refused)
        }
        Err(error) => Err(error),
    }
}

/// Sends and flushes `batch`, retrying external failures until the sink takes it.
async fn deliver_retrying(
    sink: &mut dyn Sink,
    batch: &[SinkRecord],
    telemetry: &Telemetry,
) -> Result<()> {
    let mut wait = RETRY_FIRST;
    loop {
        let attempt = async {
            sink.send(batch).await?;
            sink.flush().await
        }
        .await;
        let error = match attempt {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == ErrorKind::External => error,
            Err(error) => return Err(error),
        };
        let jittered = wait.mul_f64(rand::thread_rng().gen_range(0.5..1.5));
        telemetry.emit(SinkFailed {
            sink: &sink.describe(),
            error: &error,
            retry_in: jittered,
        });
        tokio::time::sleep(jittered).await;
        wait = (wait * 2).min(RETRY_MAX);
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use bytes::Bytes;

    use super::*;

    /// A sink that refuses its first `failures` flushes, as a sink whose broker is down would,
    /// and refuses for good any record whose value starts with `huge`.
    struct RecoveringSink {
        failures: usize,
        buffered: Vec<SinkRecord>,
        delivered: Vec<Bytes>,
    }

    #[async_trait]
    impl Sink for RecoveringSink {
        async fn send(&mut self, batch: &[SinkRecord]) -> Result<()> {
            if batch.iter().any(|r| r.value.starts_with(b"huge")) {
                return Err(Error::Connector {
                    kind: ErrorKind::InvalidInput,
                    what: "recovering".into(),
                    cause: "record larger than the topic allows".into(),
                });
            }
            self.buffered.extend_from_slice(batch);
            Ok(())
        }

        async fn flush(&mut self) -> Result<()> {
            if self.failures > 0 {
                self.failures -= 1;
                self.buffered.clear();
                return Err(Error::Io {
                    what: "cannot write to sink recovering".into(),
                    cause: std::io::Error::other("broker unavailable"),
                });
            }
            self.delivered
                .extend(self.buffered.drain(..).map(|r| r.value));
            Ok(())
        }

        fn describe(&self) -> String {
            "recovering".into()
        }
    }

    fn batch(values: &[&str]) -> Vec<SinkRecord> {
        values
            .iter()
            .map(|v| SinkRecord {
                key: Bytes::from_static(b"c-1"),
                value: Bytes::from(v.to_string()),
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_sink_gets_the_whole_batch_once_it_recovers() {
        let mut sink = RecoveringSink {
            failures: 3,
            buffered: Vec::new(),
            delivered: Vec::new(),
        };
        let batch = batch(&["d0", "d1", "d2", "d3", "d4"]);
        let started = tokio::time::Instant::now();
        let refused = deliver(&mut sink, &batch, &Telemetry::new()).await.unwrap();
        assert!(refused.is_empty());
        let expected: Vec<Bytes> = batch.iter().map(|r| r.value.clone()).collect();
        assert_eq!(sink.delivered, expected);
        // Three backoffs of about 100, 200 and 400 ms, each jittered by ±50%.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(350) && waited <= Duration::from_millis(1050),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_records_a_sink_refuses_for_good_are_handed_back() {
        let mut sink = RecoveringSink {
            failures: 0,
            buffered: Vec::new(),
            delivered: Vec::new(),
        };
        let batch = batch(&["d0", "huge d1", "d2"]);
        let refused = deliver(&mut sink, &batch, &Telemetry::new()).await.unwrap();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, 1);
        assert_eq!(refused[0].1.kind(), ErrorKind::InvalidInput);
        assert_eq!(sink.delivered, vec![Bytes::from("d0"), Bytes::from("d2")]);
    }

    #[tokio::test]
    async fn a_configuration_error_stops_delivery_at_once() {
        struct Misconfigured;
        #[async_trait]
        impl Sink for Misconfigured {
            async fn send(&mut self, _: &[SinkRecord]) -> Result<()> {
                Err(Error::Connector {
                    kind: ErrorKind::Configuration,
                    what: "misconfigured".into(),
                    cause: "topic does not exist".into(),
                })
            }
            async fn flush(&mut self) -> Result<()> {
                Ok(())
            }
            fn describe(&self) -> String {
                "misconfigured".into()
            }
        }
        let err = deliver(&mut Misconfigured, &batch(&["d0"]), &Telemetry::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
    }
}
