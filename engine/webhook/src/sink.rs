//! The webhook sink: decisions POSTed to one endpoint as JSON batches
//! (`{"decisions":[…]}`, at most `batch_size` each), signed (`signature`), with an
//! `Idempotency-Key` per batch (the SHA-256 of its body, so a batch sent again, after a retry or
//! a restart, carries the same key) and each decision's own `decision_id` inside.
//!
//! `flush` returns once every decision sent to the sink is delivered or parked, so the engine's
//! checkpoint never passes one that is neither. Batches go out `concurrency` at a time through
//! one connection pool (HTTP/1.1, or HTTP/2 where TLS negotiates it), each request within
//! `timeout`, and no faster than `rate_limit` requests a second. A batch that fails with a 5xx,
//! a 429, a timeout or a lost connection is sent again after an exponential backoff with jitter
//! (at least as long as a 429's `Retry-After`) until `deadline` after its first attempt; then,
//! or at once on any other 4xx, which sending again cannot mend, it is parked: written, with
//! the last error, to the undeliverable output, where nothing is dropped and nothing is retried
//! forever.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{stream, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use metrics::{Counter, Histogram};
use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use sha2::{Digest, Sha256};
use vigil_engine::config::WebhookConfig;
use vigil_engine::error::{Error, Result};
use vigil_engine::pipeline::SinkOptions;
use vigil_engine::sink::{Sink, SinkRecord};
use vigil_engine::telemetry::{
    WEBHOOK_DELIVERED, WEBHOOK_DELIVERY_SECONDS, WEBHOOK_PARKED_BATCHES, WEBHOOK_PARKED_DECISIONS,
    WEBHOOK_REQUESTS, WEBHOOK_RETRIES,
};

use crate::signature;

/// The first wait before sending a failed batch again.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// At most this much of a refusing response's body is kept in the error.
const ERROR_BODY_BYTES: usize = 512;
/// The idempotency header, as Stripe and most CRM APIs name it.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// One endpoint, shared by every batch in flight to it.
struct Endpoint {
    url: Url,
    /// The URL without credentials or query, for logs, metrics and parked records.
    label: String,
    client: reqwest::Client,
    secret: Vec<u8>,
    limiter: Option<DefaultDirectRateLimiter>,
    settings: WebhookConfig,
    metrics: Metrics,
}

struct Metrics {
    /// By status class: 2xx, 4xx, 5xx, other (1xx, 3xx), error.
    requests: [Counter; 5],
    retries: Counter,
    parked_batches: Counter,
    parked_decisions: Counter,
    delivered: Counter,
    delivery: Histogram,
}

impl Metrics {
    fn new(endpoint: &str) -> Metrics {
        let e = endpoint.to_owned();
        Metrics {
            requests: ["2xx", "4xx", "5xx", "other", "error"].map(|status| {
                metrics::counter!(WEBHOOK_REQUESTS, "endpoint" => e.clone(), "status" => status)
            }),
            retries: metrics::counter!(WEBHOOK_RETRIES, "endpoint" => e.clone()),
            parked_batches: metrics::counter!(WEBHOOK_PARKED_BATCHES, "endpoint" => e.clone()),
            parked_decisions: metrics::counter!(WEBHOOK_PARKED_DECISIONS, "endpoint" => e.clone()),
            delivered: metrics::counter!(WEBHOOK_DELIVERED, "endpoint" => e.clone()),
            delivery: metrics::histogram!(WEBHOOK_DELIVERY_SECONDS, "endpoint" => e),
        }
    }

    fn request(&self, status: Option<StatusCode>) {
        let class = match status.map(|s| s.as_u16() / 100) {
            Some(2) => 0,
            Some(4) => 1,
            Some(5) => 2,
            Some(_) => 3,
            None => 4,
        };
        self.requests[class].increment(1);
    }
}

/// Decisions on their way to one webhook endpoint.
pub struct WebhookSink {
    endpoint: Arc<Endpoint>,
    pending: Vec<Bytes>,
    undeliverable: Box<dyn Sink>,
}

/// One batch as sent: its body and idempotency key, and how many decisions it holds.
struct Batch {
    body: Bytes,
    key: String,
    decisions: usize,
}

impl Batch {
    fn new(decisions: &[Bytes]) -> Batch {
        let size = decisions.iter().map(Bytes::len).sum::<usize>() + decisions.len() + 16;
        let mut body = BytesMut::with_capacity(size);
        body.put_slice(b"{\"decisions\":[");
        for (i, decision) in decisions.iter().enumerate() {
            if i > 0 {
                body.put_u8(b',');
            }
            body.put_slice(decision);
        }
        body.put_slice(b"]}");
        let key = hex::encode(&Sha256::digest(&body)[..16]);
        Batch {
            body: body.freeze(),
            key,
            decisions: decisions.len(),
        }
    }
}

/// What one attempt came to.
enum Attempt {
    Delivered,
    /// Worth sending again, not before `after` when the endpoint said so.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Sending again cannot mend it.
    Refused {
        error: String,
    },
}

/// A parked batch, as the undeliverable output keeps it.
#[derive(Serialize)]
struct Parked<'a> {
    endpoint: &'a str,
    idempotency_key: &'a str,
    error: &'a str,
    attempts: u32,
    /// When the first attempt was made and when the batch was parked, ms since the epoch.
    first_attempt_ts: i64,
    parked_ts: i64,
    decisions: &'a serde_json::value::RawValue,
}

impl WebhookSink {
    /// A sink for `url` with `options.webhook`'s settings, parking in its `undeliverable`
    /// output (opened through `options.connectors`). The secret comes from `secret_file` or
    /// the `secret_env` variable, never the command line; without one, this is a configuration
    /// error naming both.
    pub async fn open(url: &str, options: &SinkOptions) -> Result<WebhookSink> {
        let settings = options.webhook.clone();
        let config_error = |key: &str, reason: String| Error::Config {
            layer: format!("webhook sink `{url}`"),
            key: key.to_owned(),
            reason,
        };
        let parsed = Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                config_error(
                    "sink",
                    "is not an http:// or https:// URL with a host".into(),
                )
            })?;
        let secret = match &settings.secret_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    config_error(
                        "webhook.secret_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                text.trim_end_matches(['\n', '\r']).as_bytes().to_vec()
            }
            None => std::env::var(&settings.secret_env)
                .unwrap_or_default()
                .into_bytes(),
        };
        if secret.is_empty() {
            return Err(config_error(
                "webhook.secret_env",
                format!(
                    "names {}, which is unset or empty, and webhook.secret_file is not set: every request is signed, so a secret is needed",
                    settings.secret_env
                ),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(settings.concurrency)
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| config_error("sink", format!("cannot build an HTTP client: {e}")))?;
        let limiter = NonZeroU32::new(settings.rate_limit)
            .map(|rate| RateLimiter::direct(Quota::per_second(rate)));
        let label = {
            let mut bare = parsed.clone();
            let _ = bare.set_username("");
            let _ = bare.set_password(None);
            bare.set_query(None);
            bare.set_fragment(None);
            bare.to_string()
        };
        let undeliverable = options
            .connectors
            .open_sink_with(&settings.undeliverable, options.clone())
            .await?;
        Ok(WebhookSink {
            endpoint: Arc::new(Endpoint {
                url: parsed,
                metrics: Metrics::new(&label),
                label,
                client,
                secret,
                limiter,
                settings,
            }),
            pending: Vec::new(),
            undeliverable,
        })
    }

    /// Delivers or parks every pending decision.
    async fn settle(&mut self) -> Result<()> {
        let decisions = std::mem::take(&mut self.pending);
        let endpoint = &self.endpoint;
        let settings = &endpoint.settings;
        let batches: Vec<Batch> = decisions
            .chunks(settings.batch_size)
            .map(Batch::new)
            .collect();
        let parked: Vec<SinkRecord> = stream::iter(batches)
            .map(|batch| endpoint.deliver(batch))
            .buffer_unordered(settings.concurrency)
            .filter_map(|parked| async move { parked })
            .collect()
            .await;
        if parked.is_empty() {
            return Ok(());
        }
        self.undeliverable.send(&parked).await?;
        self.undeliverable.flush().await
    }
}

impl Endpoint {
    /// Sends `batch` until it is delivered, refused or out of time; returns the parked record
    /// when it was not delivered.
    async fn deliver(&self, batch: Batch) -> Option<SinkRecord> {
        let first = Instant::now();
        let first_ts = unix_ms();
        let deadline = first + self.settings.deadline;
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(FIRST_BACKOFF)
            .with_max_delay(self.settings.max_backoff)
            .with_jitter()
            .without_max_times()
            .build();
        let mut attempts = 0u32;
        let error = loop {
            attempts += 1;
            if let Some(limiter) = &self.limiter {
                limiter.until_ready().await;
            }
            match self.attempt(&batch).await {
                Attempt::Delivered => {
                    self.metrics.delivery.record(first.elapsed().as_secs_f64());
                    self.metrics.delivered.increment(batch.decisions as u64);
                    return None;
                }
                Attempt::Refused { error } => break error,
                Attempt::Retry { error, after } => {
                    let wait = backoff
                        .next()
                        .unwrap_or(self.settings.max_backoff)
                        .max(after.unwrap_or_default());
                    if Instant::now() + wait > deadline {
                        break format!(
                            "{error}; gave up after {attempts} attempts over {} (webhook.deadline {})",
                            humantime::format_duration(round_ms(first.elapsed())),
                            humantime::format_duration(self.settings.deadline)
                        );
                    }
                    tracing::debug!(endpoint = %self.label, %error, retry_in_ms = wait.as_millis() as u64, "Webhook batch failed; sending it again.");
                    self.metrics.retries.increment(1);
                    tokio::time::sleep(wait).await;
                }
            }
        };
        tracing::warn!(endpoint = %self.label, key = %batch.key, decisions = batch.decisions, %error, "Webhook batch parked as undeliverable.");
        self.metrics.parked_batches.increment(1);
        self.metrics
            .parked_decisions
            .increment(batch.decisions as u64);
        let decisions = &batch.body[b"{\"decisions\":".len()..batch.body.len() - 1];
        let decisions = std::str::from_utf8(decisions)
            .ok()
            .and_then(|text| serde_json::from_str::<&serde_json::value::RawValue>(text).ok())
            .expect("a batch body holds the decisions' JSON");
        let parked = Parked {
            endpoint: &self.label,
            idempotency_key: &batch.key,
            error: &error,
            attempts,
            first_attempt_ts: first_ts,
            parked_ts: unix_ms(),
            decisions,
        };
        Some(SinkRecord {
            key: Bytes::from(batch.key.clone().into_bytes()),
            value: Bytes::from(serde_json::to_vec(&parked).expect("parked batches serialize")),
        })
    }

    /// One signed POST of `batch`.
    async fn attempt(&self, batch: &Batch) -> Attempt {
        let signed = signature::sign(&self.secret, unix_ms() / 1_000, &batch.body);
        let sent = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(signature::HEADER, signed)
            .header(IDEMPOTENCY_KEY, &batch.key)
            .body(batch.body.clone())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                self.metrics.request(None);
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "failed"
                };
                return Attempt::Retry {
                    error: format!("request {what}: {}", error_chain(&e)),
                    after: None,
                };
            }
        };
        let status = response.status();
        self.metrics.request(Some(status));
        if status.is_success() {
            return Attempt::Delivered;
        }
        let after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        // The body explains the refusal; a connection lost while reading it is a failure.
        let body = match response.bytes().await {
            Ok(body) => {
                String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_BYTES)]).into_owned()
            }
            Err(e) => format!("(body lost: {})", error_chain(&e)),
        };
        let error = format!("HTTP {status}: {}", body.trim());
        if status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
        {
            Attempt::Retry { error, after }
        } else {
            Attempt::Refused { error }
        }
    }
}

#[async_trait]
impl Sink for WebhookSink {
    async fn send(&mut self, batch: &[SinkRecord]) -> Result<()> {
        self.pending.extend(batch.iter().map(|r| r.value.clone()));
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // When the undeliverable output fails, the engine sends the whole batch again before
        // its next flush, so nothing is lost by letting go of it here.
        self.settle().await
    }

    fn describe(&self) -> String {
        format!("webhook:{}", self.endpoint.label)
    }
}

/// A `Retry-After` value: seconds, or an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value.trim()).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// An error with its causes, which reqwest keeps apart ("error sending request" alone says
/// nothing).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_body_is_the_decisions_array_and_its_key_is_stable() {
        let decisions = [
            Bytes::from_static(b"{\"a\":1}"),
            Bytes::from_static(b"{\"b\":2}"),
        ];
        let batch = Batch::new(&decisions);
        assert_eq!(&batch.body[..], br#"{"decisions":[{"a":1},{"b":2}]}"#);
        assert_eq!(batch.key, Batch::new(&decisions).key);
        assert_ne!(batch.key, Batch::new(&decisions[..1]).key);
        assert_eq!(batch.key.len(), 32);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("1"), Some(Duration::from_secs(1)));
        let later = SystemTime::now() + Duration::from_secs(30);
        let waited = retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!((Duration::from_secs(28)..=Duration::from_secs(30)).contains(&waited));
        assert_eq!(
            retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
