//! `vigil tail`: follows a decision stream for people: one readable line per decision, newest
//! last, optionally only one kind of decision or one customer. It reads every partition with its
//! own stream and no consumer offset, so tailing never moves anyone's progress.

use std::pin::Pin;

use fluvio::consumer::ConsumerConfigExtBuilder;
use fluvio::Offset;
use futures_util::stream::{self, Stream, StreamExt};
use vigil_engine::config::FluvioConfig;
use vigil_engine::decision::{Decision, DecisionKind};

use crate::client;
use crate::error::{Error, Result};

/// Which decisions to show.
#[derive(Debug, Clone, Default)]
pub struct TailFilter {
    pub decision: Option<DecisionKind>,
    pub customer: Option<String>,
    /// Start from the beginning of the topic instead of new decisions only.
    pub from_beginning: bool,
}

/// One decision as a line a risk analyst can read.
pub fn render(d: &Decision) -> String {
    let reasons: Vec<String> = d
        .reasons
        .iter()
        .map(|r| format!("{} {:+.2}", r.feature, r.contribution))
        .collect();
    let score = d
        .score
        .map_or("rules only".to_owned(), |s| format!("score {s:.4}"));
    let mut line = format!(
        "{:<8} {} event {} at {} | {score} {}",
        d.decision.name().to_uppercase(),
        d.customer_id,
        d.event_id,
        humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(d.event_ts.max(0) as u64)
        ),
        d.model.as_deref().unwrap_or(""),
    );
    if !reasons.is_empty() {
        line += &format!(" | {}", reasons.join(", "));
    }
    if !d.rules.is_empty() {
        line += &format!(" | rules: {}", d.rules.join(", "));
    }
    if d.degraded {
        line += " | DEGRADED";
    }
    line
}

impl TailFilter {
    pub fn accepts(&self, d: &Decision) -> bool {
        self.decision.is_none_or(|k| d.decision == k)
            && self.customer.as_ref().is_none_or(|c| *c == d.customer_id)
    }
}

/// Prints matching decisions from `topic` until interrupted.
pub async fn tail(topic: &str, filter: TailFilter, settings: &FluvioConfig) -> Result<()> {
    let fluvio = client::connect(settings).await?;
    let partitions = client::partition_count(&fluvio, topic).await?;
    let mut streams = Vec::new();
    for partition in 0..partitions {
        let config = ConsumerConfigExtBuilder::default()
            .topic(topic.to_owned())
            .partition(partition)
            .offset_start(if filter.from_beginning {
                Offset::beginning()
            } else {
                Offset::end()
            })
            .build()
            .map_err(|e| Error::client("invalid consumer settings", e))?;
        let stream = fluvio.consumer_with_config(config).await.map_err(|e| {
            Error::client(format!("cannot consume `{topic}` partition {partition}"), e)
        })?;
        let boxed: Pin<Box<dyn Stream<Item = _> + Send>> = Box::pin(stream);
        streams.push(boxed);
    }
    let mut merged = stream::select_all(streams);
    while let Some(item) = merged.next().await {
        let record = item.map_err(|code| Error::client(format!("reading `{topic}`"), code))?;
        match serde_json::from_slice::<Decision>(record.value()) {
            Ok(d) if filter.accepts(&d) => println!("{}", render(&d)),
            Ok(_) => {}
            Err(e) => eprintln!("(not a decision at offset {}: {e})", record.offset()),
        }
    }
    Ok(())
}
