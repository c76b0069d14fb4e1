//! Where analysts' verdicts go: the feedback sink (`console.feedback`, a file or a Fluvio
//! topic), opened at the first verdict so that a console nobody gives verdicts in leaves
//! nothing behind, and flushed after every verdict, which is only acknowledged once written.

use vigil_engine::config::Config;
use vigil_engine::feedback::Feedback;
use vigil_engine::pipeline::connectors::Connectors;
use vigil_engine::sink::{Sink, SinkRecord};

pub(crate) struct Verdicts {
    config: Config,
    connectors: Connectors,
    sink: Option<Box<dyn Sink>>,
}

impl Verdicts {
    /// Verdicts to `config`'s `console.feedback`, which `connectors` must know how to open.
    pub fn new(config: &Config, connectors: Connectors) -> vigil_engine::Result<Verdicts> {
        connectors
            .check_sink(&config.console.feedback)
            .map_err(|e| config.invalid("console.feedback", e.to_string()))?;
        Ok(Verdicts {
            config: config.clone(),
            connectors,
            sink: None,
        })
    }

    /// Writes `feedback` and flushes it, or says why it is not recorded.
    pub async fn record(&mut self, feedback: &Feedback) -> Result<(), String> {
        let spec = &self.config.console.feedback;
        let sink = match &mut self.sink {
            Some(sink) => sink,
            None => {
                let opened = self
                    .connectors
                    .open_sink(spec, &self.config)
                    .await
                    .map_err(|e| format!("console.feedback ({spec}) cannot be opened: {e}"))?;
                self.sink.insert(opened)
            }
        };
        let record = SinkRecord {
            key: feedback.customer_id.clone().into(),
            value: serde_json::to_vec(feedback)
                .expect("feedback serialises")
                .into(),
        };
        let written = match sink.send(&[record]).await {
            Ok(()) => sink.flush().await,
            Err(e) => Err(e),
        };
        written.map_err(|e| format!("the verdict was not written to {spec}: {e}"))
    }
}
