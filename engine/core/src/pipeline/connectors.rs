//! The one registry of sources and sinks: a spec's prefix (`file:`, `fluvio:`, `generate:`…)
//! names the connector, and its constructor opens it from the rest of the spec. The engine
//! registers its built-in connectors here; a connector from another crate (Fluvio, the
//! scenario generator) is added with `source` or `sink`, and the pipeline never changes.
//!
//! | spec | source |
//! |---|---|
//! | `file:PATH` | a JSON Lines file, one record per line; with a column mapping, a CSV file |
//! | `-` | JSON Lines on standard input |
//!
//! | spec | sink |
//! |---|---|
//! | `stdout`, `stderr` | JSON lines on standard output or error |
//! | `file:PATH` | JSON lines appended to a file (created with its folders) |
//! | `discard` | counted and dropped, for load tests that measure the engine alone |

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::{Config, FluvioConfig, WebhookConfig};
use crate::error::{Error, Result};
use crate::sink::file::JsonLinesSink;
use crate::sink::Sink;
use crate::source::csv::CsvSource;
use crate::source::file::LineSource;
use crate::source::{Source, SourceOptions};

/// A connector being opened: what its constructor returns.
pub type Opening<T> = Pin<Box<dyn Future<Output = Result<Box<T>>> + Send>>;
/// Opens a source from the part of its spec after the prefix.
pub type OpenSource = Arc<dyn Fn(String, SourceOptions) -> Opening<dyn Source> + Send + Sync>;
/// Opens a sink from the part of its spec after the prefix.
pub type OpenSink = Arc<dyn Fn(String, SinkOptions) -> Opening<dyn Sink> + Send + Sync>;

/// What a sink is opened with besides its spec: the settings of the connectors that have
/// them, and the registry itself, for a sink that writes on to another (a webhook's
/// undeliverable output).
#[derive(Clone)]
pub struct SinkOptions {
    pub fluvio: FluvioConfig,
    pub webhook: WebhookConfig,
    pub connectors: Connectors,
}

/// One connector: how its spec is written, and how it is opened.
#[derive(Clone)]
struct Entry<F> {
    usage: &'static str,
    open: F,
}

/// Sources and sinks by spec prefix.
#[derive(Clone)]
pub struct Connectors {
    sources: BTreeMap<&'static str, Entry<OpenSource>>,
    sinks: BTreeMap<&'static str, Entry<OpenSink>>,
}

/// `file:PATH` → (`file`, `PATH`); a spec without a colon (`-`, `stdout`) is all prefix.
fn split(spec: &str) -> (&str, &str) {
    spec.split_once(':').unwrap_or((spec, ""))
}

impl Connectors {
    /// The engine's own connectors: files and standard streams.
    pub fn builtin() -> Connectors {
        Connectors {
            sources: BTreeMap::new(),
            sinks: BTreeMap::new(),
        }
        .source("file", "file:PATH", |path, options| {
            Box::pin(async move {
                let line = options.resume_line();
                let limit = options.max_record_bytes;
                let source: Box<dyn Source> = match &options.mapping {
                    Some(mapping) => Box::new(CsvSource::open(&path, mapping, line, limit).await?),
                    None => Box::new(LineSource::open(&path, limit).await?.resume_at(line)),
                };
                Ok(source)
            })
        })
        .source("-", "-", |_, options| {
            Box::pin(async move {
                let limit = options.max_record_bytes;
                let source: Box<dyn Source> =
                    Box::new(LineSource::stdin(limit).resume_at(options.resume_line()));
                Ok(source)
            })
        })
        .sink("stdout", "stdout", |_, _| {
            Box::pin(async { Ok(Box::new(JsonLinesSink::stdout()) as Box<dyn Sink>) })
        })
        .sink("stderr", "stderr", |_, _| {
            Box::pin(async { Ok(Box::new(JsonLinesSink::stderr()) as Box<dyn Sink>) })
        })
        .sink("discard", "discard", |_, _| {
            Box::pin(async { Ok(Box::new(JsonLinesSink::discard()) as Box<dyn Sink>) })
        })
        .sink("file", "file:PATH", |path, _| {
            Box::pin(
                async move { Ok(Box::new(JsonLinesSink::append(&path).await?) as Box<dyn Sink>) },
            )
        })
    }

    /// Adds (or replaces) the source for specs starting `prefix:`; `usage` shows its form.
    pub fn source(
        mut self,
        prefix: &'static str,
        usage: &'static str,
        open: impl Fn(String, SourceOptions) -> Opening<dyn Source> + Send + Sync + 'static,
    ) -> Self {
        let open: OpenSource = Arc::new(open);
        self.sources.insert(prefix, Entry { usage, open });
        self
    }

    /// Adds (or replaces) the sink for specs starting `prefix:`; `usage` shows its form.
    pub fn sink(
        mut self,
        prefix: &'static str,
        usage: &'static str,
        open: impl Fn(String, SinkOptions) -> Opening<dyn Sink> + Send + Sync + 'static,
    ) -> Self {
        let open: OpenSink = Arc::new(open);
        self.sinks.insert(prefix, Entry { usage, open });
        self
    }

    /// Opens the source `spec` names. A column mapping reads `file:` sources only.
    pub async fn open_source(&self, spec: &str, options: SourceOptions) -> Result<Box<dyn Source>> {
        let (prefix, rest) = split(spec);
        let entry = self.sources.get(prefix).ok_or_else(|| Error::UnknownSpec {
            role: "source",
            spec: spec.to_owned(),
            expected: usages(&self.sources),
        })?;
        if options.mapping.is_some() && prefix != "file" {
            return Err(Error::Config {
                layer: "the command line".into(),
                key: "mapping".into(),
                reason: format!("reads CSV files only (file:PATH), not `{spec}`"),
            });
        }
        (entry.open)(rest.to_owned(), options).await
    }

    /// Opens the sink `spec` names, with `config`'s settings.
    pub async fn open_sink(&self, spec: &str, config: &Config) -> Result<Box<dyn Sink>> {
        let options = SinkOptions {
            fluvio: config.fluvio.clone(),
            webhook: config.webhook.clone(),
            connectors: self.clone(),
        };
        self.open_sink_with(spec, options).await
    }

    /// Opens the sink `spec` names, with these settings.
    pub async fn open_sink_with(&self, spec: &str, options: SinkOptions) -> Result<Box<dyn Sink>> {
        let (_, rest) = split(spec);
        (self.sink_entry(spec)?.open)(rest.to_owned(), options).await
    }

    /// Checks that some connector opens sinks like `spec`, without opening one; the error
    /// lists those there are.
    pub fn check_sink(&self, spec: &str) -> Result<()> {
        self.sink_entry(spec).map(|_| ())
    }

    fn sink_entry(&self, spec: &str) -> Result<&Entry<OpenSink>> {
        let (prefix, _) = split(spec);
        self.sinks.get(prefix).ok_or_else(|| Error::UnknownSpec {
            role: "sink",
            spec: spec.to_owned(),
            expected: usages(&self.sinks),
        })
    }
}

fn usages<F>(entries: &BTreeMap<&'static str, Entry<F>>) -> String {
    entries
        .values()
        .map(|e| e.usage)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_prefix_lists_every_registered_connector() {
        let connectors = Connectors::builtin();
        let config = Config::builtin();
        let err = connectors
            .open_sink("kafka:decisions", &config)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), crate::error::ErrorKind::Configuration);
        assert_eq!(
            err.to_string(),
            "unknown sink `kafka:decisions`: expected discard, file:PATH, stderr, stdout"
        );
        let err = connectors
            .open_source("generate:x.toml", SourceOptions::new(&config))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("expected -, file:PATH"), "{err}");
    }

    #[tokio::test]
    async fn a_registered_connector_is_found_by_its_prefix() {
        let connectors = Connectors::builtin().sink("null", "null:NAME", |name, _| {
            Box::pin(async move {
                assert_eq!(name, "x");
                Ok(Box::new(JsonLinesSink::discard()) as Box<dyn Sink>)
            })
        });
        let sink = connectors
            .open_sink("null:x", &Config::builtin())
            .await
            .unwrap();
        assert_eq!(sink.describe(), "discard");
    }
}
