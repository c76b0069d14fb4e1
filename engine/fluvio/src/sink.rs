//! The Fluvio sink (`fluvio:TOPIC`): records keyed by customer id (so a customer's decisions
//! stay on one partition, in order), produced in batches tuned by `fluvio.batch_size` and
//! `fluvio.linger`. `flush` waits until the cluster has acknowledged everything sent, which is
//! what lets the publisher checkpoint after it. A producer error sticks in the client until it
//! is cleared, so a failed flush clears it and reports the failure.

use std::sync::Arc;

use async_trait::async_trait;
use fluvio::{
    Fluvio, FluvioError, ProducerError, RecordKey, TopicProducerConfigBuilder, TopicProducerPool,
};
use vigil_engine::config::FluvioConfig;
use vigil_engine::sink::{Sink, SinkRecord};

use crate::client;
use crate::error::{Error, Result};

pub struct FluvioSink {
    producer: TopicProducerPool,
    spec: String,
    /// Kept so the connection lives as long as the producer.
    _fluvio: Arc<Fluvio>,
}

impl FluvioSink {
    pub async fn open(topic: &str, settings: &FluvioConfig) -> Result<Self> {
        let fluvio = client::connect(settings).await?;
        let config = TopicProducerConfigBuilder::default()
            .batch_size(settings.batch_size)
            .linger(settings.linger)
            .build()
            .map_err(|e| Error::Refused {
                what: "invalid Fluvio producer settings".into(),
                detail: e.to_string(),
            })?;
        let producer = fluvio
            .topic_producer_with_config(topic, config)
            .await
            .map_err(|e| Error::Refused {
                what: format!("cannot produce to Fluvio topic `{topic}`"),
                detail: format!("{e:#}"),
            })?;
        Ok(FluvioSink {
            producer,
            spec: format!("fluvio:{topic}"),
            _fluvio: fluvio,
        })
    }

    /// A producer failure, by what it means: a record too large for the cluster can never be
    /// delivered, a bad producer setting is configuration, anything else may pass on retry.
    fn error(&self, error: anyhow::Error) -> vigil_engine::Error {
        let what = format!("cannot write to sink {}", self.spec);
        let detail = format!("{error:#}");
        let producer = error.downcast_ref::<ProducerError>().or_else(|| {
            match error.downcast_ref::<FluvioError>() {
                Some(FluvioError::Producer(p)) => Some(p),
                _ => None,
            }
        });
        let error = match producer {
            Some(ProducerError::RecordTooLarge(..)) => Error::Unacceptable { what, detail },
            Some(ProducerError::InvalidConfiguration(_)) => Error::Refused { what, detail },
            _ => Error::Client { what, detail },
        };
        error.into()
    }
}

#[async_trait]
impl Sink for FluvioSink {
    async fn send(&mut self, batch: &[SinkRecord]) -> vigil_engine::Result<()> {
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

    async fn flush(&mut self) -> vigil_engine::Result<()> {
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
