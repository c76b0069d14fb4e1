//! An engine with its risk console, in-process, for the console's API and browser tests.

use std::path::Path;

use async_trait::async_trait;
use tokio::sync::oneshot;
use vigil_engine::config::Config;
use vigil_engine::pipeline::lookout::Lookout;
use vigil_engine::pipeline::{self, Endpoints};
use vigil_engine::publish::RunSummary;
use vigil_engine::source::{Source, SourceRecord};
use vigil_scenario::{GeneratorSource, Scenario};

use crate::fixture;

/// A scenario's records, then nothing until the run is stopped: a source that stays open like
/// a live topic, so that the engine can be asked about customers once everything is decided.
struct Lingering {
    scenario: GeneratorSource,
    done: bool,
}

#[async_trait]
impl Source for Lingering {
    async fn next_batch(&mut self, batch: &mut Vec<SourceRecord>) -> vigil_engine::Result<bool> {
        if self.done {
            std::future::pending::<()>().await;
        }
        self.done = !self.scenario.next_batch(batch).await?;
        Ok(true)
    }

    fn describe(&self) -> String {
        "lingering generator".to_owned()
    }
}

/// An engine with its console, on a scenario it decides and then lingers on.
pub struct Engine {
    pub console: vigil_console::Console,
    stop: oneshot::Sender<()>,
    run: tokio::task::JoinHandle<vigil_engine::Result<RunSummary>>,
}

impl Engine {
    /// The fixture `scenario` through an engine with `config`, its decisions to
    /// `dir/decisions.jsonl` and its console's verdicts to `dir/feedback.jsonl`.
    pub async fn start(mut config: Config, scenario: &str, dir: &Path) -> Engine {
        config.console.listen = "127.0.0.1:0".parse().unwrap();
        config.console.feedback = format!("file:{}", dir.join("feedback.jsonl").display());
        let lookout = Lookout::new(config.console.stream_buffer);
        let console = vigil_console::serve(&config, lookout.clone(), vigil::connectors())
            .await
            .unwrap();
        let mut options = crate::run_options(
            config,
            "lingering",
            &format!("file:{}", dir.join("decisions.jsonl").display()),
            "discard",
        );
        options.lookout = Some(lookout);
        let path = fixture(scenario);
        let source = Lingering {
            scenario: GeneratorSource::new(Scenario::load(&path).unwrap(), scenario.to_owned()),
            done: false,
        };
        let endpoints = Endpoints {
            source: Some(Box::new(source)),
            ..Endpoints::default()
        };
        let (stop, stopped) = oneshot::channel();
        let run = tokio::spawn(pipeline::run_with(options, endpoints, async move {
            let _ = stopped.await;
        }));
        Engine { console, stop, run }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.console.address)
    }

    /// Stops the run, once what was taken in is published.
    pub async fn stop(self) -> RunSummary {
        let _ = self.stop.send(());
        self.run.await.unwrap().unwrap()
    }
}
