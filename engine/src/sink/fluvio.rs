//! The Fluvio sink (`fluvio:TOPIC`): records keyed by customer id (so a customer's decisions
//! stay on one partition, in order), produced in batches tuned by `fluvio.batch_size` and
//! `fluvio.linger`. `flush` waits until the cluster has acknowledged everything sent, which is
//! what lets the publisher checkpoint after it. A producer error sticks in the client until it
//! is cleared, so a failed flush clears it and reports the failure.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use fluvio::{Fluvio, RecordKey, TopicProducerConfigBuilder, TopicProducerPool};

use super::{Sink, SinkError, SinkRecord};
use crate::broker;
use crate::config::FluvioConfig;

pub struct FluvioSink {
    producer: TopicProducerPool,
    spec: String,
    /// Kept so the connection lives as long as the producer.
    _fluvio: Arc<Fluvio>,
}

impl FluvioSink {
    pub async fn open(topic: &str, settings: &FluvioConfig) -> anyhow::Result<Self> {
        let fluvio = broker::connect(settings).await?;
        let config = TopicProducerConfigBuilder::default()
            .batch_size(settings.batch_size)
            .linger(settings.linger)
            .build()
            .context("invalid Fluvio producer settings")?;
        let producer = fluvio
            .topic_producer_with_config(topic, config)
            .await
            .with_context(|| format!("cannot produce to Fluvio topic `{topic}`"))?;
        Ok(FluvioSink {
            producer,
            spec: format!("fluvio:{topic}"),
            _fluvio: fluvio,
        })
    }

    fn error(&self, detail: impl std::fmt::Display) -> SinkError {
        SinkError::Write {
            spec: self.spec.clone(),
            source: std::io::Error::other(detail.to_string()),
        }
    }
}

#[async_trait]
impl Sink for FluvioSink {
    async fn send(&mut self, batch: &[SinkRecord]) -> Result<(), SinkError> {
        for record in batch {
            let key = if record.key.is_empty() {
                RecordKey::NULL
            } else {
                RecordKey::from(record.key.to_vec())
            };
            let sent = self.producer.send(key, record.value.to_vec()).await;
            sent.map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        if let Err(e) = self.producer.flush().await {
            self.producer.clear_errors().await;
            return Err(self.error(e));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.spec.clone()
    }
}
